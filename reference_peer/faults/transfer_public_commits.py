"""Faults of the hub-transfer extension (docs/extensions/hub-transfer.md section 4.2, item 5): which
commits may carry a mimi_hub update (checks: conformance/scenarios/test_hub_transfer_public_commits.py)."""

from __future__ import annotations

from .registry import define

AREA = "portability"

EXTERNAL_COMMIT_HUB_UPDATE_ACCEPTED = define(
    "external-commit-hub-update-accepted",
    area=AREA,
    requirements=["EXT-HUBXFER-PUBLIC-COMMITS"],
    description="the hub accepts an external commit carrying a mimi_hub AppDataUpdate by value (it neither "
    "refuses the external commit nor holds the joiner to the hub-only sender rule); member commits and "
    "proposals of mimi_hub are still refused",
    departs=("hub.mimi-hub.no-external-commit-update",),
)
