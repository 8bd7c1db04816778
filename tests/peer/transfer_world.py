"""In-process world for the hub-transfer tests: the peer world with the extension switched on."""

from __future__ import annotations

from peer_world import poll, world

from reference_peer.room.transfer_settings import HubTransferSettings


def transfer_world(pki, domains=("a.example", "b.example", "c.example"), *, settings=None):
    """``settings``: for every provider, or a dict domain -> settings; by default quick handoff retries."""
    return world(pki, domains, hub_transfer=settings or HubTransferSettings(handoff_retry_ms=100))


__all__ = ["transfer_world", "poll"]
