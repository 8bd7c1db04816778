"""The adapter kit against an in-memory store-and-forward server per follower and a hub made of the
reference peer's HubRoom (kit_world): provisioning, a remote add (keyMaterial + the Add commit), the
Welcome through fetch, messages both ways, getInfo's operations, and a restart on the same state."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import quote

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer
from kit_world import (
    HUB,
    ROOM,
    ConsentTransport,
    FakeTransport,
    HostingTransport,
    Hub,
    JoiningTransport,
    SendOnlyTransport,
)

from conformance.adapterkit import KIT_VERSION, ControlError, KitBackend, serve
from reference_peer.control.app import make_control_app
from reference_peer.wire.mls import KeyPackage

BOB = "mimi://b.example/u/bob"
CAT = "mimi://c.example/u/cat"


def run(coro):
    return asyncio.run(coro)


async def _two_kits(tmp_path):
    hub = Hub()
    bob_kit = KitBackend(FakeTransport(hub, "b.example"), tmp_path / "b")
    cat_kit = KitBackend(FakeTransport(hub, "c.example"), tmp_path / "c")
    bob = await bob_kit.createUser(body={"user": "bob"})
    cat = await cat_kit.createUser(body={"user": "cat"})
    return hub, bob_kit, cat_kit, bob["clients"][0], cat["clients"][0]


async def _bob_adds_cat(tmp_path):
    """Bob (b.example) is added by the hub's host; Bob's kit adds Cat (c.example) through the hub."""
    hub, bob_kit, cat_kit, bob_client, cat_client = await _two_kits(tmp_path)
    hub.host_adds(BOB)
    rooms = await bob_kit.listRooms()
    assert [r["room"] for r in rooms["rooms"]] == [ROOM]
    assert rooms["rooms"][0]["hubDomain"] == HUB and rooms["rooms"][0]["hostedHere"] is False
    added = await bob_kit.addParticipant(ROOM, body={"actor": BOB, "user": CAT})
    assert added["outcome"] == "accepted", added
    assert added["keyMaterial"]["userStatus"] == "success"
    assert bob_kit.transport.calls[:2] == ["key_material", "send_update"]
    return hub, bob_kit, cat_kit, bob_client, cat_client


def test_users_and_clients_are_registered_with_key_packages_uploaded(tmp_path):
    async def scenario():
        hub, bob_kit, cat_kit, bob_client, _ = await _two_kits(tmp_path)
        server = hub.servers["b.example"]
        assert server.users == {BOB} and server.clients == {bob_client: BOB}
        assert len(server.key_packages[bob_client]) == 8
        kp = KeyPackage.decode(server.key_packages[bob_client][0])
        assert bytes(kp.leaf_node.credential.identity).decode() == bob_client
        second = await bob_kit.addClient(BOB, body={"client": "laptop", "joinRooms": False})
        assert second == {"user": BOB, "client": "mimi://b.example/d/bob/laptop", "rooms": []}
        published = await bob_kit.publishKeyPackages(bob_client, body={"count": 3, "replace": True,
                                                                      "lifetimeSeconds": 3600})
        assert published == {"client": bob_client, "published": 3, "available": 3, "lastResort": True}
        lifetime = KeyPackage.decode(server.key_packages[bob_client][0]).leaf_node.lifetime
        assert lifetime.not_after - lifetime.not_before <= 3600 + 3600  # the kit's clock margin at most
        await bob_kit.deleteClient(second["client"])
        assert second["client"] not in server.clients
        await bob_kit.close()
        await cat_kit.close()

    run(scenario())


def test_remote_add_welcome_and_messages_both_ways(tmp_path):
    async def scenario():
        hub, bob_kit, cat_kit, bob_client, cat_client = await _bob_adds_cat(tmp_path)
        room = await cat_kit.getRoom(ROOM)  # the Welcome arrived through fetch and was processed
        assert {p["user"] for p in room["participants"]} == {"mimi://a.example/u/host", BOB, CAT}
        assert room["epoch"] == hub.room.epoch
        sent = await cat_kit.sendMessage(ROOM, body={"from": cat_client, "content": {"text": "hello bob"}})
        assert sent["outcome"] == "accepted", sent
        page = await bob_kit.listReceivedMessages(bob_client)
        assert [(i["content"]["text"], i["senderUser"], i["sender"]) for i in page["items"]] == [
            ("hello bob", CAT, cat_client)]
        assert (await bob_kit.listReceivedMessages(bob_client, after=page["next"]))["items"] == []
        sent = await bob_kit.sendMessage(ROOM, body={"from": bob_client, "content": {"base64": "AAE="}})
        assert sent["outcome"] == "accepted"
        page = await cat_kit.listReceivedMessages(cat_client, room=ROOM)
        assert page["items"][-1]["content"] == {"base64": "AAE=", "text": "\x00\x01"}
        removed = await bob_kit.removeParticipant(ROOM, CAT, BOB)
        assert removed["outcome"] == "accepted", removed
        assert CAT not in {p["user"] for p in (await bob_kit.getRoom(ROOM))["participants"]}
        await bob_kit.close()
        await cat_kit.close()

    run(scenario())


def test_a_restarted_kit_keeps_its_clients_and_rooms(tmp_path):
    async def scenario():
        hub, bob_kit, cat_kit, bob_client, cat_client = await _bob_adds_cat(tmp_path)
        await cat_kit.getRoom(ROOM)
        epoch = (await bob_kit.getRoom(ROOM))["epoch"]
        await bob_kit.close()
        again = KitBackend(FakeTransport(hub, "b.example"), tmp_path / "b")
        assert (await again.getRoom(ROOM))["epoch"] == epoch
        sent = await again.sendMessage(ROOM, body={"from": bob_client, "content": {"text": "still here"}})
        assert sent["outcome"] == "accepted", sent
        texts = [i["content"]["text"] for i in (await cat_kit.listReceivedMessages(cat_client))["items"]]
        assert texts == ["still here"]
        await again.close()
        await cat_kit.close()

    run(scenario())


def test_get_info_offers_only_the_operations_whose_verbs_exist(tmp_path):
    async def scenario():
        full = KitBackend(FakeTransport(Hub(), "b.example"), tmp_path / "full")
        info = await full.getInfo()
        assert info["providerDomains"] == ["b.example"] and info["roles"] == ["follower"]
        assert info["product"]["version"] == KIT_VERSION
        offered = set(info["supportedOperations"])
        assert {"addParticipant", "sendMessage", "listReceivedMessages", "removeParticipant", "leaveRoom"} <= offered
        assert not offered & {"joinRoom", "createRoom", "grantConsent", "listUserEvents", "getConsentState"}
        await full.close()
        small = KitBackend(SendOnlyTransport("d.example"), tmp_path / "small")
        info = await small.getInfo()
        assert info["supportedOperations"] == ["getInfo", "createUser", "addClient", "publishKeyPackages"]
        assert not hasattr(small, "sendMessage") and not hasattr(small, "listReceivedMessages")
        await small.close()

    run(scenario())


def test_serve_answers_the_control_api_over_http(tmp_path):
    async def scenario():
        started = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(SendOnlyTransport("d.example"), host="127.0.0.1", port=0,
                                         state_dir=tmp_path / "state", token="secret", started=started))
        host, port = await asyncio.wait_for(started, 10)
        headers = {"Authorization": "Bearer secret"}
        async with ClientSession() as session:
            async with session.get(f"http://{host}:{port}/v1/info", headers=headers) as reply:
                assert reply.status == 200
                assert "sendMessage" not in (await reply.json())["supportedOperations"]
            async with session.post(f"http://{host}:{port}/v1/rooms/mimi%3A%2F%2Fx.example%2Fr%2Fy/messages",
                                    headers=headers, json={"from": "mimi://d.example/d/a/c1",
                                                           "content": {"text": "x"}}) as reply:
                assert reply.status == 501
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run(scenario())


def test_the_poller_processes_deliveries_in_the_background(tmp_path):
    async def scenario():
        hub, bob_kit, cat_kit, bob_client, cat_client = await _bob_adds_cat(tmp_path)
        await cat_kit.getRoom(ROOM)
        await bob_kit.sendMessage(ROOM, body={"from": bob_client, "content": {"text": "ping"}})
        deadline = time.monotonic() + 5
        while not cat_kit.clients.received(cat_client) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # no read call: only the background polling can take it
        assert [m.data for m in cat_kit.clients.received(cat_client)] == [b"ping"]
        await bob_kit.close()
        await cat_kit.close()

    run(scenario())



def test_a_new_client_joins_its_users_rooms_by_external_commit(tmp_path):
    async def scenario():
        hub = Hub()
        bob_kit = KitBackend(JoiningTransport(hub, "b.example"), tmp_path / "b")
        assert "joinRoom" in (await bob_kit.getInfo())["supportedOperations"]
        await bob_kit.createUser(body={"user": "bob"})
        hub.host_adds(BOB)
        await bob_kit.listRooms()
        added = await bob_kit.addClient(BOB, body={"client": "phone"})
        assert [(r["room"], r["outcome"]) for r in added["rooms"]] == [(ROOM, "accepted")], added
        room = await bob_kit.getRoom(ROOM)
        bob = next(p for p in room["participants"] if p["user"] == BOB)
        assert sorted(bob["clients"]) == ["mimi://b.example/d/bob/c1", "mimi://b.example/d/bob/phone"]
        await bob_kit.close()

    run(scenario())


def test_create_room_through_a_hosting_transport(tmp_path):
    async def scenario():
        hub = Hub()
        bob_kit = KitBackend(HostingTransport(hub, "b.example"), tmp_path / "b")
        cat_kit = KitBackend(FakeTransport(hub, "c.example"), tmp_path / "c")
        info = await bob_kit.getInfo()
        assert info["roles"] == ["hub", "follower"] and "createRoom" in info["supportedOperations"]
        await bob_kit.createUser(body={"user": "bob"})
        cat = (await cat_kit.createUser(body={"user": "cat"}))["clients"][0]
        room = "mimi://b.example/r/den"
        created = await bob_kit.createRoom(body={"creator": BOB, "room": room})
        assert created["room"] == room and created["hostedHere"] is True
        assert [p["user"] for p in created["participants"]] == [BOB]
        assert created["externalSenders"] == [HUB]
        added = await bob_kit.addParticipant(room, body={"actor": BOB, "user": CAT})
        assert added["outcome"] == "accepted", added
        sent = await bob_kit.sendMessage(room, body={"from": "mimi://b.example/d/bob/c1", "content": {"text": "hi"}})
        assert sent["outcome"] == "accepted"
        assert [i["content"]["text"] for i in (await cat_kit.listReceivedMessages(cat))["items"]] == ["hi"]
        await bob_kit.close()
        await cat_kit.close()

    run(scenario())


def test_the_answers_over_http_match_the_contract(tmp_path):
    """The remote-add flow through the control API layer with response validation on: every answer the
    kit gives is one the contract documents (a violation would be a 500)."""

    async def scenario():
        hub = Hub()
        bob_kit = KitBackend(FakeTransport(hub, "b.example"), tmp_path / "b")
        cat_kit = KitBackend(FakeTransport(hub, "c.example"), tmp_path / "c")
        async with (TestClient(TestServer(make_control_app(bob_kit, validate_responses=True))) as bob_api,
                    TestClient(TestServer(make_control_app(cat_kit, validate_responses=True))) as cat_api):
            for api, name in ((bob_api, "bob"), (cat_api, "cat")):
                reply = await api.post("/v1/users", json={"user": name})
                assert reply.status == 201, await reply.text()
            hub.host_adds(BOB)
            room = quote(ROOM, safe="")
            reply = await bob_api.post(f"/v1/rooms/{room}/participants", json={"actor": BOB, "user": CAT})
            assert reply.status == 200 and (await reply.json())["outcome"] == "accepted", await reply.text()
            cat_client = quote("mimi://c.example/d/cat/c1", safe="")
            reply = await cat_api.post(f"/v1/rooms/{room}/messages",
                                       json={"from": "mimi://c.example/d/cat/c1", "content": {"text": "yo"}})
            assert reply.status == 200, await reply.text()
            for path in (f"/v1/rooms/{room}", "/v1/rooms", "/v1/info"):
                reply = await bob_api.get(path)
                assert reply.status == 200, await reply.text()
            reply = await bob_api.get(f"/v1/clients/{quote('mimi://b.example/d/bob/c1', safe='')}/messages")
            assert reply.status == 200 and [i["content"]["text"] for i in (await reply.json())["items"]] == ["yo"]
            reply = await cat_api.get(f"/v1/clients/{cat_client}/messages", params={"after": "x"})
            assert reply.status == 400
            reply = await bob_api.delete(f"/v1/rooms/{room}/participants/{quote(CAT, safe='')}",
                                         params={"actor": BOB})
            assert reply.status == 200 and (await reply.json())["outcome"] == "accepted", await reply.text()
        await bob_kit.close()
        await cat_kit.close()

    run(scenario())


def test_consent_operations_go_to_the_consent_verbs(tmp_path):
    async def scenario():
        kit = KitBackend(ConsentTransport("d.example"), tmp_path / "d")
        offered = set((await kit.getInfo())["supportedOperations"])
        assert {"requestConsent", "cancelConsentRequest", "grantConsent", "revokeConsent", "getConsentState",
                "listUserEvents"} <= offered
        dan = (await kit.createUser(body={"user": "dan"}))["user"]
        granted = await kit.grantConsent(dan, body={"requester": BOB})
        assert granted == {"requester": BOB, "target": dan, "action": "grant"}
        asked = await kit.requestConsent(dan, body={"target": CAT, "room": ROOM})
        assert asked == {"requester": dan, "target": CAT, "action": "request", "room": ROOM}
        state = await kit.getConsentState(dan)
        assert state == {"user": dan, "entries": [{"requester": BOB, "target": dan, "state": "granted"}]}
        first = await kit.listUserEvents(dan, limit=2)
        rest = await kit.listUserEvents(dan, after=first["next"])
        assert len(first["items"]) == 2 and len(rest["items"]) == 1 and rest["next"] == "3"
        with pytest.raises(ControlError):
            await kit.grantConsent(dan, body={"requester": BOB, "extra": 1})
        await kit.close()

    run(scenario())
