"""The control backend behind the real control API layer with response validation on: every answer
of the operations the reference peer implements matches the contract (a violation would be a 500)."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from peer_world import control_listeners, poll, world

from reference_peer.control import load_openapi
from reference_peer.control.app import build_operations, implemented_operations

A, B = "a.example", "b.example"


def seg(uri: str) -> str:
    return quote(uri, safe="")


def test_every_implemented_operation_answers_as_the_contract_says(pki):
    asyncio.run(_operations(pki))


async def _operations(pki):
    async with world(pki, (A, B)) as w, control_listeners(w, validate_responses=True) as (http, url):

        async def call(domain, method, path, expect, **kwargs):
            reply = await http.request(method, url[domain] + path, **kwargs)
            assert reply.status_code == expect, (method, path, reply.status_code, reply.text)
            return reply.json()

        info = await call(A, "GET", "/v1/info", 200)
        assert info["providerDomains"] == [A]
        operations = build_operations(load_openapi())
        assert sorted(info["supportedOperations"]) == sorted(implemented_operations(w.backends[A], operations))
        assert "startHubTransfer" not in info["supportedOperations"]
        alice = await call(A, "POST", "/v1/users", 201, json={"user": "alice", "clients": 2})
        bob = await call(B, "POST", "/v1/users", 201, json={"user": "bob"})
        await call(A, "POST", "/v1/users", 409, json={"user": "alice"})
        room = (await call(A, "POST", "/v1/rooms", 201, json={"creator": alice["clients"][0], "name": "x"}))["room"]
        await call(A, "GET", f"/v1/rooms/{seg('mimi://a.example/r/nope')}", 404)
        added = await call(A, "POST", f"/v1/rooms/{seg(room)}/participants", 200,
                           json={"actor": alice["user"], "user": bob["user"]})
        assert added["outcome"] == "accepted"
        bob_c = bob["clients"][0]
        await poll(lambda: _joined(w.providers[B], room, bob_c), what="bob joined")
        assert len((await call(B, "GET", f"/v1/rooms/{seg(room)}", 200))["participants"]) == 2
        assert (await call(A, "GET", "/v1/rooms", 200))["rooms"][0]["room"] == room
        sent = await call(A, "POST", f"/v1/rooms/{seg(room)}/messages", 200,
                          json={"from": alice["clients"][0], "content": {"base64": "aGk="}})
        assert sent["outcome"] == "accepted"

        async def bob_has_message():
            page = await call(B, "GET", f"/v1/clients/{seg(bob_c)}/messages", 200, params={"room": room})
            return page["items"]

        items = await poll(bob_has_message, what="bob reads")
        assert items[0]["content"]["base64"] == "aGk=" and items[0]["senderUser"] == alice["user"]
        first = await call(B, "GET", f"/v1/clients/{seg(bob_c)}/messages", 200)
        assert first["items"] == items
        page = await call(B, "GET", f"/v1/clients/{seg(bob_c)}/messages", 200, params={"after": first["next"]})
        assert page["items"] == [] and page["next"] == first["next"]
        await call(B, "GET", f"/v1/clients/{seg(bob_c)}/messages", 400, params={"after": "not-a-cursor!"})
        await call(B, "POST", f"/v1/users/{seg(bob['user'])}/consent/request", 200, json={"target": alice["user"]})
        await call(A, "GET", f"/v1/users/{seg(alice['user'])}/events", 200)
        async def alice_state():
            return (await call(A, "GET", f"/v1/users/{seg(alice['user'])}/consent", 200))["entries"]

        pending = {"requester": bob["user"], "target": alice["user"], "state": "pending"}
        await poll(lambda: _contains(alice_state(), pending), what="bob's request pending at a.example")
        await call(A, "POST", f"/v1/users/{seg(alice['user'])}/consent/grant", 200, json={"requester": bob["user"]})
        assert await alice_state() == [{**pending, "state": "granted"}]
        left = await call(B, "POST", f"/v1/rooms/{seg(room)}/leave", 200, json={"actor": bob_c})
        assert left["outcome"] == "accepted"
        removed = await call(A, "DELETE", f"/v1/rooms/{seg(room)}/participants/{seg(bob['user'])}", 200,
                             params={"actor": alice["user"]})
        assert removed["outcome"] == "accepted", removed  # commits bob's cached self-leave proposals
        assert [p["user"] for p in (await call(A, "GET", f"/v1/rooms/{seg(room)}", 200))["participants"]] == [
            alice["user"]
        ]
        await call(A, "POST", f"/v1/rooms/{seg(room)}/hubTransfer", 501, json={"actor": alice["user"], "newHub": B})
        status = await call(A, "POST", f"/v1/clients/{seg(alice['clients'][1])}/keyPackages", 200,
                            json={"count": 3, "replace": True})
        assert status == {"client": alice["clients"][1], "published": 3, "available": 3, "lastResort": True}
        status = await call(A, "POST", f"/v1/clients/{seg(alice['clients'][1])}/keyPackages", 200,
                            json={"count": 2, "lastResort": False, "lifetimeSeconds": 3600})
        assert status == {"client": alice["clients"][1], "published": 2, "available": 5, "lastResort": False}
        await call(A, "DELETE", f"/v1/clients/{seg(alice['clients'][1])}", 200)
        await call(B, "DELETE", f"/v1/users/{seg(bob['user'])}", 200)
        await call(B, "DELETE", f"/v1/users/{seg(bob['user'])}", 404)


async def _contains(entries, entry) -> bool:
    return entry in await entries


async def _joined(provider, room, client) -> bool:
    return provider.active_member(room, client) is not None


def test_client_removal_ban_and_unban_through_the_control_api(pki):
    asyncio.run(_ban(pki))


async def _ban(pki):
    async with world(pki, (A, B)) as w, control_listeners(w, validate_responses=True) as (http, url):

        async def call(domain, method, path, expect=200, **kwargs):
            reply = await http.request(method, url[domain] + path, **kwargs)
            assert reply.status_code == expect, (method, path, reply.status_code, reply.text)
            return reply.json()

        alice = await call(A, "POST", "/v1/users", 201, json={"user": "alice"})
        bob = await call(B, "POST", "/v1/users", 201, json={"user": "bob", "clients": 2})
        bob_1, bob_2 = bob["clients"]
        room = (await call(A, "POST", "/v1/rooms", 201, json={"creator": alice["user"]}))["room"]
        added = await call(A, "POST", f"/v1/rooms/{seg(room)}/participants", json={"actor": alice["user"], "user": bob["user"]})
        assert added["outcome"] == "accepted" and len(added["keyMaterial"]["clients"]) == 2

        async def bob_clients_in_room():
            info = await call(A, "GET", f"/v1/rooms/{seg(room)}")
            return sorted(c for p in info["participants"] if p["user"] == bob["user"] for c in p["clients"])

        assert await bob_clients_in_room() == [bob_1, bob_2]
        await poll(lambda: _joined(w.providers[B], room, bob_2), what="bob's second client joined")
        removed = await call(B, "POST", f"/v1/rooms/{seg(room)}/clients/{seg(bob_2)}/remove", json={"actor": bob_1})
        assert removed["outcome"] == "accepted", removed
        assert await bob_clients_in_room() == [bob_1]
        tablet = await call(B, "POST", f"/v1/users/{seg(bob['user'])}/clients", 201, json={"client": "tablet"})
        assert [r["outcome"] for r in tablet["rooms"]] == ["accepted"], tablet
        assert await bob_clients_in_room() == sorted([bob_1, tablet["client"]])

        banned = await call(A, "DELETE", f"/v1/rooms/{seg(room)}/participants/{seg(bob['user'])}",
                            params={"actor": alice["user"], "mode": "ban"})
        assert banned["outcome"] == "accepted", banned
        info = await call(A, "GET", f"/v1/rooms/{seg(room)}")
        assert {"user": bob["user"], "role": 1, "clients": []} in info["participants"]
        await call(A, "POST", f"/v1/rooms/{seg(room)}/unban", 409,
                   json={"actor": alice["user"], "user": alice["user"], "role": 2})
        unbanned = await call(A, "POST", f"/v1/rooms/{seg(room)}/unban",
                              json={"actor": alice["user"], "user": bob["user"], "role": 0})
        assert unbanned["outcome"] == "accepted", unbanned
        info = await call(A, "GET", f"/v1/rooms/{seg(room)}")
        assert [p["user"] for p in info["participants"]] == [alice["user"]]
