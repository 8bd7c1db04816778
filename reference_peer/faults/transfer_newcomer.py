"""Faults of the hub-transfer extension's newcomer discovery (docs/extensions/hub-transfer.md §13;
checks: conformance/scenarios/test_hub_transfer_newcomer.py). Hooked in ``reference_peer/newcomer.py``,
which the reference follower uses when a local client joins a room it holds no state for."""

from __future__ import annotations

from .registry import define

AREA = "portability"

NEWCOMER_IGNORES_REDIRECT = define(
    "newcomer-ignores-redirect",
    area=AREA,
    requirements=["EXT-HUBXFER-NEWCOMER-DISCOVERY"],
    description="a provider joining a room it knows only by its ID treats the ID authority's 421 HubRedirect "
    "as a final refusal: it asks only the authority and never fetches groupInfo from the hub the redirect names",
    departs=("transfer.newcomer.follows-redirect",),
)
NEWCOMER_SKIPS_HUB_CHECK = define(
    "newcomer-skips-hub-check",
    area=AREA,
    requirements=["EXT-HUBXFER-NEWCOMER-DISCOVERY"],
    description="a provider joining a room it knows only by its ID accepts the hub a HubRedirect names without "
    "checking that the GroupInfo it serves names it in mimi_hub with a generation no lower than the redirect's",
    departs=("transfer.newcomer.checks-hub",),
)
