"""EXT-HUBXFER-ALL-MEMBERS-SUPPORT between reference peers: a.example (hub) refuses to move a room to
b.example while a c.example member's LeafNode lists no mimi_hub in its app_components (the
``lacking_hub_component`` knob), accepts once that member is removed, and skips the test under the fault
transfer-ignores-member-support."""

from __future__ import annotations

import asyncio

from transfer_world import A, B, C, room_on_a_with_c_members, transfer_world

from reference_peer.faults import overrides_for
from reference_peer.faults.transfer_member_support import TRANSFER_IGNORES_MEMBER_SUPPORT
from reference_peer.mls import leaf_app_components
from reference_peer.wire.hub_transfer import MIMI_HUB_COMPONENT_ID


async def _room_with_unsupporting_member(w):
    a, c = w.backends[A], w.backends[C]
    alice = await a.createUser({"user": "alice"})
    w.providers[C].transfers.lacking_hub_component = {"mimi://c.example/u/carol"}
    try:
        carol = await c.createUser({"user": "carol"})
    finally:
        w.providers[C].transfers.lacking_hub_component = set()
    dave = await c.createUser({"user": "dave"})
    room = await room_on_a_with_c_members(w, alice, (carol, dave))
    return room, alice, carol, dave


def _lacking(w, room) -> list[int]:
    view = w.providers[A].hub_rooms[room].view
    return [i for i, leaf in view.members() if MIMI_HUB_COMPONENT_ID not in (leaf_app_components(leaf) or ())]


def test_refused_while_a_member_lacks_mimi_hub(pki):
    asyncio.run(_refused(pki))


async def _refused(pki):
    async with transfer_world(pki) as w:
        a = w.backends[A]
        room, alice, carol, _ = await _room_with_unsupporting_member(w)
        assert len(_lacking(w, room)) == 1
        seen_before = set(w.providers[B].transfers.seen_transfer_ids)
        started = await a.startHubTransfer(room, {"actor": alice["user"], "newHub": B})
        assert started["outcome"] == "rejected" and started["code"] == "notAllowed", started
        assert "EXT-HUBXFER-ALL-MEMBERS-SUPPORT" in started.get("detail", ""), started
        assert w.providers[B].transfers.seen_transfer_ids == seen_before  # no prepare reached the target
        removed = await a.removeParticipant(room, carol["user"], alice["user"])
        assert removed["outcome"] == "accepted", removed
        assert _lacking(w, room) == []
        started = await a.startHubTransfer(room, {"actor": alice["user"], "newHub": B})
        assert started["outcome"] == "started", started


def test_fault_skips_the_member_test(pki):
    asyncio.run(_fault(pki))


def _built_with(provider, overrides) -> None:
    """``provider`` as if built with ``overrides`` (the world builds its peers without): the provider
    and the rule objects it holds."""
    provider.overrides = overrides
    for held in (*provider.hub_rooms.values(), *provider.members.values(), *provider.client_keys.values()):
        held.built_with(overrides)


async def _fault(pki):
    async with transfer_world(pki) as w:
        room, alice, _, _ = await _room_with_unsupporting_member(w)
        fault = overrides_for([TRANSFER_IGNORES_MEMBER_SUPPORT])
        for domain in (A, B):  # the hub and the target, both built with the fault
            _built_with(w.providers[domain], fault)
        started = await w.backends[A].startHubTransfer(room, {"actor": alice["user"], "newHub": B})
        # The hub prepares: the target (built with the same fault) accepts, and the transfer starts.
        assert started["outcome"] == "started", started
