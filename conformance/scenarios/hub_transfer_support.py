"""What the hub-transfer checks (docs/extensions/hub-transfer.md) share: the manifest gate.

A SUT takes part in a transfer in the roles its manifest's ``hubTransfer.roles`` declares (old-hub,
new-hub, follower; section 17). A check of an undeclared role is NOT_APPLICABLE, never PASS
(EXT-HUBXFER-DECLARED).
"""

from __future__ import annotations

from typing import Any

from conformance.verdicts import not_applicable

DECLARED = "EXT-HUBXFER-DECLARED"


def transfer_settings(sut: Any, role: str) -> dict[str, Any]:
    """The SUT manifest's hubTransfer block, when it declares ``role``; NOT_APPLICABLE otherwise."""
    block = sut.manifest.hub_transfer
    if "hubTransfer" not in sut.manifest.features or not block:
        not_applicable("the SUT manifest declares no hubTransfer feature and block (extension section 17)")
    if role not in block.get("roles", ()):
        not_applicable(f"the SUT manifest's hubTransfer.roles {block.get('roles')} lacks {role!r}")
    return dict(block)
