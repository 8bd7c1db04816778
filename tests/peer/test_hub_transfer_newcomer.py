"""Newcomer discovery between reference peers (docs/extensions/hub-transfer.md §13): a room of a.example
moved to b.example; c.example holds only the room ID and joins it with the control API's joinRoom."""

from __future__ import annotations

import asyncio

from transfer_world import A, B, C, now, poll, transfer_world

from reference_peer.faults import overrides_for
from reference_peer.faults.transfer_newcomer import (
    NEWCOMER_ANY_HUB_SENDER,
    NEWCOMER_IGNORES_REDIRECT,
    NEWCOMER_SKIPS_HUB_CHECK,
)
from reference_peer.newcomer import Located, hub_problem


async def _moved_room(w):
    a, c = w.backends[A], w.backends[C]
    alice = await a.createUser({"user": "alice"})
    carol = await c.createUser({"user": "carol"})
    room = (await a.createRoom({"creator": alice["user"]}))["room"]
    added = await a.addParticipant(room, {"actor": alice["user"], "user": carol["user"], "withoutClients": True})
    assert added["outcome"] == "accepted" and "keyMaterial" not in added, added
    assert room not in w.providers[C].known_rooms()  # c was never told
    started = await a.startHubTransfer(room, {"actor": alice["user"], "newHub": B})
    assert started["outcome"] == "started", started
    await poll(lambda: now(w.providers[B].hub_rooms.get(room) is not None
                              and w.providers[A].hub_rooms[room].moved is not None), timeout=20, what="b hosts")
    return room, carol


def test_newcomer_follows_the_redirect_and_joins(pki):
    asyncio.run(_follows(pki))


async def _follows(pki):
    async with transfer_world(pki) as w:
        room, carol = await _moved_room(w)
        c = w.backends[C]
        mark = w.providers[C].traffic.last
        joined = await c.joinRoom(room, {"client": carol["clients"][0]})
        assert joined["outcome"] == "accepted", joined
        view = await c.getRoom(room)
        assert view["hubDomain"] == B
        items, _ = w.providers[C].traffic.since(mark)
        out = [(i["endpoint"], i["peer"], i["status"]) for i in items if i["direction"] == "out" and i["value"] == room]
        assert out[:3] == [("groupInfo", A, 421), ("groupInfo", B, 200), ("update", B, 200)], out


def test_newcomer_fault_stops_at_the_authority(pki):
    asyncio.run(_faulty(pki))


async def _faulty(pki):
    async with transfer_world(pki) as w:
        room, carol = await _moved_room(w)
        with w.providers[C].overrides.during(overrides_for([NEWCOMER_IGNORES_REDIRECT])):
            joined = await w.backends[C].joinRoom(room, {"client": carol["clients"][0]})
        assert joined["outcome"] == "rejectedByHub" and joined["hubResponse"]["httpStatus"] == 421, joined


def test_hub_check_refuses_a_groupinfo_naming_another_hub(pki):
    asyncio.run(_hub_check(pki))


async def _hub_check(pki):
    async with transfer_world(pki) as w:
        room, _carol = await _moved_room(w)
        hub_room = w.providers[B].hub_rooms[room]
        group = hub_room.view
        answer = type("Answer", (), {"hub_sender": w.providers[B].identity.external_sender})()
        assert hub_problem(group, answer, room, Located(B, 2, 1)) is None
        assert "names" in hub_problem(group, answer, room, Located(C, 2, 1))
        assert "generation" in hub_problem(group, answer, room, Located(B, 3, 1))
        # hub_sender another provider's entry (the old hub's, still listed in the cut-over epoch): refused, except
        # under newcomer-accepts-any-hub-sender
        old = type("Answer", (), {"hub_sender": w.providers[A].identity.external_sender})()
        assert "hub_sender" in hub_problem(group, old, room, Located(B, 2, 1))
        assert hub_problem(group, old, room, Located(B, 2, 1, overrides=overrides_for([NEWCOMER_ANY_HUB_SENDER]))) is None


def test_newcomer_refuses_a_redirect_its_groupinfo_does_not_confirm(pki):
    asyncio.run(_false_hint(pki))


async def _false_hint(pki):
    """a.example's redirect claims generation + 5: c.example fetches b.example's GroupInfo and does not commit
    there; under newcomer-skips-hub-check it does."""
    async with transfer_world(pki) as w:
        room, carol = await _moved_room(w)
        w.providers[A].transfers.inflate_redirect_generation = 5
        c, mark = w.backends[C], w.providers[C].traffic.last
        refused = await c.joinRoom(room, {"client": carol["clients"][0]})
        assert refused["outcome"] != "accepted", refused
        items, _ = w.providers[C].traffic.since(mark)
        out = [(i["endpoint"], i["peer"]) for i in items if i["direction"] == "out" and i["value"] == room]
        assert ("groupInfo", B) in out and ("update", B) not in out, out
        with w.providers[C].overrides.during(overrides_for([NEWCOMER_SKIPS_HUB_CHECK])):
            joined = await c.joinRoom(room, {"client": carol["clients"][0]})
        assert joined["outcome"] == "accepted", joined
