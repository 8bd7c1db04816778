"""The hub-transfer extension between reference peers (docs/extensions/hub-transfer.md): a.example (old
hub A) moves a room to b.example (new hub B) with c.example as a follower with members."""

from __future__ import annotations

import asyncio
import base64

from transfer_world import A, B, C, now, poll, room_on_a_with_c_members, transfer_world

from reference_peer.room.transfer_settings import HubTransferSettings
from reference_peer.server.client import MimiClient
from reference_peer.wire.hub_transfer import (
    HUB_REDIRECT_MEDIA_TYPE,
    HubTransferMessage,
    HubTransferResponse,
    read_hub_redirect,
)


async def _setup(w):
    a, c = w.backends[A], w.backends[C]
    alice = await a.createUser({"user": "alice"})
    carol = await c.createUser({"user": "carol"})
    dave = await c.createUser({"user": "dave"})
    return await room_on_a_with_c_members(w, alice, (carol, dave)), alice, carol, dave


async def _send(backend, room, client, text):
    sent = await backend.sendMessage(room, {"from": client, "content": {"base64": base64.b64encode(text).decode()}})
    assert sent["outcome"] == "accepted", sent
    return sent


async def _texts(backend, client, room):
    page = await backend.listReceivedMessages(client, room=room)
    return [base64.b64decode(i["content"]["base64"]) for i in page["items"]]


def test_transfer_end_to_end(pki):
    asyncio.run(_end_to_end(pki))


async def _end_to_end(pki):
    async with transfer_world(pki) as w:
        a, b, c = (w.backends[d] for d in (A, B, C))
        room, alice, carol, dave = await _setup(w)
        before = await a.getRoom(room)
        assert before["hubGeneration"] == 0 and before["hubState"] == {"state": "stable"}
        await _send(c, room, carol["clients"][0], b"before-1")
        await _send(a, room, alice["clients"][0], b"before-2")
        started = await a.startHubTransfer(room, {"actor": alice["user"], "newHub": B})
        assert started["outcome"] == "started" and started["code"] == "accepted", started
        assert len(started["transferId"]) == 32

        async def moved():
            room_c = await c.getRoom(room)
            return room_c["hubDomain"] == B and room_c

        after_c = await poll(moved, timeout=20, what="c follows b")
        assert after_c["hubGeneration"] == 2
        await poll(lambda: now(w.providers[B].hub_rooms.get(room) is not None), timeout=20, what="b hosts")
        room_b = await b.getRoom(room)
        assert room_b["hostedHere"] and room_b["groupId"] == before["groupId"]
        assert room_b["epoch"] >= before["epoch"] + 2
        assert [(p["user"], p["role"]) for p in room_b["participants"]] == [
            (p["user"], p["role"]) for p in before["participants"]
        ]
        assert w.providers[A].transfers.handoffs_sent
        # Messages after the cut-over: from the follower (to B) and from the old hub's own user (to B).
        await _send(c, room, carol["clients"][0], b"after-1")
        await _send(a, room, alice["clients"][0], b"after-2")
        expected_dave = [b"before-1", b"before-2", b"after-1", b"after-2"]

        async def dave_has_all():
            got = await _texts(c, dave["clients"][0], room)
            return got if len(got) >= len(expected_dave) else None

        assert await poll(dave_has_all, timeout=20, what="dave reads") == expected_dave
        alice_got = await poll(lambda: _at_least(a, alice["clients"][0], room, 2), timeout=20, what="alice reads")
        assert alice_got == [b"before-1", b"after-1"]
        # B sequences the next epoch: a commit after the cut-over carries B's removal of A (6.5).
        removed = await a.removeParticipant(room, dave["user"], alice["user"])
        assert removed["outcome"] == "accepted", removed
        room_b = await b.getRoom(room)
        assert A not in room_b["externalSenders"] and B in room_b["externalSenders"]
        # The old hub redirects (421, media type, decodable body naming B).
        client = MimiClient(C, pki.providers[C].cert, pki.providers[C].key, pki.ca_cert,
                            resolve={A: "127.0.0.1"})
        try:
            reply = await client.call(w.server.authority(A), "submitMessage", room, b"\x00\x01")
            assert reply.status == 421
            assert reply.headers.get("content-type", "").startswith(HUB_REDIRECT_MEDIA_TYPE)
            redirect = read_hub_redirect(reply.headers.get("content-type"), reply.body, room)
            assert redirect is not None and bytes(redirect.hub.uri) == b"mimi://b.example"
            assert redirect.generation == 2
            message = w.providers[C].transfers.make_request(
                room, w.providers[C].active_member(room, carol["clients"][0]), C)
            reply = await client.call(w.server.authority(A), "hubTransfer", room, message.encode())
            assert reply.status == 200 and HubTransferResponse.decode(reply.body).code.name == "notHub"
            reply = await client.call(w.server.authority(A), "hubTransfer", room, b"\xff\xff")
            assert reply.status == 400
        finally:
            await client.aclose()


async def _at_least(backend, client, room, n):
    got = await _texts(backend, client, room)
    return got if len(got) >= n else None


def test_refused_by_capability_and_busy(pki):
    asyncio.run(_refusals(pki))


async def _refusals(pki):
    async with transfer_world(pki, settings={A: HubTransferSettings(), B: HubTransferSettings(),
                                             C: HubTransferSettings()}) as w:
        a, c = w.backends[A], w.backends[C]
        room, alice, carol, dave = await _setup(w)
        refused = await c.startHubTransfer(room, {"actor": carol["user"], "newHub": B})  # a member, no capability
        assert refused["outcome"] == "rejected" and refused["code"] == "notAllowed", refused
        assert (await a.getRoom(room))["hubGeneration"] == 0
        for provider in w.providers.values():  # hold the window open: nobody commits the cut-over
            provider.transfers.autocommit.discard("cutover")
        started = await a.startHubTransfer(room, {"actor": alice["user"], "newHub": B})
        assert started["outcome"] == "started", started
        busy = await a.startHubTransfer(room, {"actor": alice["user"], "newHub": C})
        assert busy["outcome"] == "rejected" and busy["code"] in ("busy", "staleGeneration"), busy


def test_abort_on_timeout_and_503_before_handoff(pki):
    asyncio.run(_abort(pki))


async def _abort(pki):
    quick = HubTransferSettings(cutover_timeout_ms=1500)
    async with transfer_world(pki, settings=quick) as w:
        a, b, c = (w.backends[d] for d in (A, B, C))
        room, alice, carol, dave = await _setup(w)
        for provider in w.providers.values():
            provider.transfers.autocommit.discard("cutover")
        started = await a.startHubTransfer(room, {"actor": alice["user"], "newHub": B})
        assert started["outcome"] == "started", started

        async def transferring():
            state = (await c.getRoom(room))["hubState"]
            return state["state"] == "transferring" and state

        assert (await poll(transferring, timeout=10, what="begin committed"))["target"] == B
        # The target during the window answers 421 naming the current hub (8.3).
        client = MimiClient(C, pki.providers[C].cert, pki.providers[C].key, pki.ca_cert, resolve={B: "127.0.0.1"})
        try:
            reply = await client.call(w.server.authority(B), "submitMessage", room, b"\x00")
            assert reply.status == 421
            redirect = read_hub_redirect(reply.headers.get("content-type"), reply.body, room)
            assert redirect is not None and bytes(redirect.hub.uri) == b"mimi://a.example"
        finally:
            await client.aclose()

        async def aborted():
            data = await c.getRoom(room)
            return data["hubState"]["state"] == "stable" and data["hubGeneration"] == 2 and data

        after = await poll(aborted, timeout=20, what="abort committed")
        assert after["hubDomain"] == A and B not in after["externalSenders"]
        await poll(lambda: now(w.providers[B].transfers.incoming[room].state == "discarded"), timeout=10,
                   what="b discarded the transfer")
        # The room still works on A.
        sent = await _send(c, room, carol["clients"][0], b"after abort")
        assert sent["outcome"] == "accepted"
        # A later handoff for the transfer is unknownTransfer at B (EXT-HUBXFER-TARGET-EXPIRES).
        answer = w.providers[B].transfers.process_handoff(
            room, _fake_handoff(w, room), A, b"x")
        assert answer.code.name == "unknownTransfer"


def _fake_handoff(w, room):
    from reference_peer.wire.hub_transfer import HubHandoff, HubHandoffTBS  # noqa: F401

    incoming = w.providers[B].transfers.incoming[room]

    class Content:
        transfer_id = incoming.transfer_id
        room_id = type("U", (), {"uri": room.encode()})()

    class Handoff:
        content = Content()

    return Handoff()


def test_503_from_new_hub_before_handoff(pki):
    asyncio.run(_before_handoff(pki))


async def _before_handoff(pki):
    async with transfer_world(pki) as w:
        a, b, c = (w.backends[d] for d in (A, B, C))
        room, alice, carol, dave = await _setup(w)
        w.providers[A].transfers.hold_handoff = True  # A withholds the handoff until released
        started = await a.startHubTransfer(room, {"actor": alice["user"], "newHub": B})
        assert started["outcome"] == "started", started
        await poll(lambda: now(w.providers[B].transfers.incoming[room].cutover_seen), timeout=20,
                   what="b saw the cut-over")
        client = MimiClient(C, pki.providers[C].cert, pki.providers[C].key, pki.ca_cert, resolve={B: "127.0.0.1"})
        try:
            reply = await client.call(w.server.authority(B), "submitMessage", room, b"\x00")
            assert reply.status == 503 and reply.headers.get("retry-after")
        finally:
            await client.aclose()
        # A follower's message now waits for B (503 honoured), then goes through once the handoff is in.
        sending = asyncio.create_task(c.sendMessage(room, {"from": carol["clients"][0],
                                                           "content": {"base64": base64.b64encode(b"x").decode()}}))
        await poll(lambda: now(sum(t["status"] == 503 for t in w.providers[B].traffic.since(0)[0]) >= 2),
                   timeout=10, what="c's submit answered 503 by b")
        w.providers[A].transfers.hold_handoff = False
        result = await asyncio.wait_for(sending, 30)
        assert result["outcome"] == "accepted", result
        assert HubTransferMessage.decode(w.providers[A].transfers.handoffs_sent[0]).msg_type.name == "handoff"
