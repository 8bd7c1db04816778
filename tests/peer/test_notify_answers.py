"""The follower's notify-answer knob answers any final status, and the reference hub retries every /notify
not answered 201 (draft-ietf-mimi-protocol-06 §5.5: "If the hub server does not contain an HTTP 201 response
code, then it SHOULD retry the request"), a 2xx other than 201 included; the fault
notify-2xx-taken-as-delivered does not."""

from __future__ import annotations

import asyncio

import pytest
from peer_world import poll, world

from reference_peer.faults import overrides_for

A, B = "a.example", "b.example"


async def _texts(backend, client: str) -> list[str]:
    return [item["content"]["text"] for item in (await backend.listReceivedMessages(client))["items"]]


async def _room_with_bob(w):
    ca, cb = w.backends[A], w.backends[B]
    alice = await ca.createUser({"user": "alice"})
    bob = await cb.createUser({"user": "bob"})
    alice_c, bob_c = alice["clients"][0], bob["clients"][0]
    room = (await ca.createRoom({"creator": alice["user"], "room": "answers"}))["room"]
    assert (await ca.addParticipant(room, {"actor": alice_c, "user": bob["user"]}))["outcome"] == "accepted"

    async def joined():
        member = w.providers[B].active_member(room, bob_c)
        return member is not None and member.epoch == 1

    await poll(joined, what="bob joined")
    await poll(lambda: _settled(w), what="hub outbox drained")
    return room, alice_c, bob_c


async def _settled(w) -> bool:
    return not w.providers[A].state.outbox.records(state="pending")


ANSWERS = [(200, b"ok"), (200, b""), (202, b"queued"), (202, b""), (204, b""), (503, b"busy")]


@pytest.mark.parametrize("fault", [None, "notify-2xx-taken-as-delivered"])
def test_a_notify_answered_anything_but_201_is_retried(pki, fault):
    asyncio.run(_answers(pki, fault))


async def _answers(pki, fault):
    async with world(pki, (A, B)) as w:
        room, alice_c, bob_c = await _room_with_bob(w)
        ca, cb = w.backends[A], w.backends[B]
        hub = w.providers[A]
        for status, body in ANSWERS:
            text = f"after {status} {body!r}"
            w.providers[B].notify_refusals = [(status, None, body)]
            _, mark = w.providers[B].traffic.since(2**62)
            with hub.overrides.during(overrides_for([fault] if fault else [])):
                await ca.sendMessage(room, {"from": alice_c, "content": {"text": text}})
                await poll(lambda: _settled(w), what="hub outbox settled")
            items = w.providers[B].traffic.since(mark, limit=10**9)[0]
            statuses = [i["status"] for i in items if i["endpoint"] == "notify" and i["direction"] == "in"]
            assert statuses[0] == status, statuses
            retried = statuses[1:] == [201]
            should_retry = fault is None or status >= 300  # the fault takes any 2xx for delivered
            assert retried == should_retry, (status, statuses)
            if should_retry:
                await poll(lambda t=text: _has(cb, bob_c, t), what=f"bob reads the message refused with {status}")
            assert (text in await _texts(cb, bob_c)) == should_retry
        assert w.providers[B].notify_refusals == []


async def _has(backend, client: str, text: str) -> bool:
    return text in await _texts(backend, client)
