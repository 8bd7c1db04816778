"""In-process world for the hub-transfer tests: the peer world with the extension switched on."""

from __future__ import annotations

from peer_world import poll, world

from reference_peer.room.transfer_settings import HubTransferSettings

A, B, C = "a.example", "b.example", "c.example"


async def now(value):
    """``value`` as an awaitable, for ``poll`` over plain state."""
    return value


async def room_on_a_with_c_members(w, alice, users):
    """A room ``alice`` creates on a.example with the c.example ``users`` added; returns once their
    clients have joined."""
    room = (await w.backends[A].createRoom({"creator": alice["user"]}))["room"]
    for user in users:
        added = await w.backends[A].addParticipant(room, {"actor": alice["user"], "user": user["user"]})
        assert added["outcome"] == "accepted", added
    for user in users:
        client = user["clients"][0]
        await poll(lambda client=client: now(w.providers[C].active_member(room, client)), what="joined")
    return room


def transfer_world(pki, domains=("a.example", "b.example", "c.example"), *, settings=None):
    """``settings``: for every provider, or a dict domain -> settings; by default quick handoff retries."""
    return world(pki, domains, hub_transfer=settings or HubTransferSettings(handoff_retry_ms=100))


__all__ = ["A", "B", "C", "now", "poll", "room_on_a_with_c_members", "transfer_world"]
