"""Faults of the hub-transfer extension (docs/extensions/hub-transfer.md): members' support of mimi_hub
(checks: conformance/scenarios/test_hub_transfer_member_support.py)."""

from __future__ import annotations

from .registry import define

AREA = "portability"

TRANSFER_IGNORES_MEMBER_SUPPORT = define(
    "transfer-ignores-member-support",
    area=AREA,
    requirements=["EXT-HUBXFER-ALL-MEMBERS-SUPPORT"],
    description="the hub skips the section 5.1 app_components test: it prepares and begins a transfer although "
    "a member's LeafNode does not list mimi_hub in its app_components",
    departs=("transfer.verify.all-members-support",),
)
