"""Settings of the hub-transfer extension (docs/extensions/hub-transfer.md), per provider.

``None`` in :class:`~reference_peer.peer.ProviderOptions` means the extension is off: no directory
entry, no ``mimi_hub`` component in new rooms, no ``startHubTransfer`` control operation. The
``hub_transfer:`` section of peer.yaml (even empty) switches it on.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HubTransferSettings:
    accepts_from: tuple[str, ...] | None = None  # as target: None accepts any old hub
    cutover_timeout_ms: int = 600_000  # section 11: 10 minutes from the acceptance
    prepare_timeout_ms: int = 30_000  # section 11: 30 s for the target's answer
    redirect_retention_days: int = 30  # section 8.2
    handoff_retry_ms: int = 500  # first handoff retry delay (doubles, capped at 30 s)
    retry_503_seconds: int = 1  # the new hub's Retry-After before the handoff

    def manifest_block(self) -> dict[str, object]:
        """The manifest's ``hub_transfer`` block (section 17) for these settings."""
        return {
            "roles": ["old-hub", "new-hub", "follower"],
            "accepts_from": "any" if self.accepts_from is None else list(self.accepts_from),
            "cutover_timeout_ms": self.cutover_timeout_ms,
            "prepare_timeout_ms": self.prepare_timeout_ms,
            "redirect_retention_days": self.redirect_retention_days,
            "component_id": "0xF0A9",
        }
