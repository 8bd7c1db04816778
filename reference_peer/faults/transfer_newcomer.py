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
NEWCOMER_ANY_HUB_SENDER = define(
    "newcomer-accepts-any-hub-sender",
    area=AREA,
    requirements=["EXT-HUBXFER-NEWCOMER-DISCOVERY"],
    description="a provider joining a room it knows only by its ID accepts a GroupInfoResponse whose hub_sender "
    "key is any external_senders entry's (another provider's, such as the old hub's), not necessarily the entry "
    "whose credential names the hub that served it",
    departs=("transfer.newcomer.hub-sender-names-hub",),
)
NEWCOMER_GIVES_UP_ON_503 = define(
    "newcomer-gives-up-on-503",
    area=AREA,
    requirements=["EXT-HUBXFER-FOLLOWER-503-RETRY"],
    description="a provider joining a room it knows only by its ID takes the 503 (Retry-After) of the hub a "
    "HubRedirect names, a new hub before its handoff, as the final answer: the join fails, no retry",
    departs=("transfer.newcomer.retries-503",),
)
NEWCOMER_FOLLOWS_ENDLESS_REDIRECTS = define(
    "newcomer-follows-endless-redirects",
    area=AREA,
    requirements=["EXT-HUBXFER-NEWCOMER-DISCOVERY"],
    description="a provider joining a room it knows only by its ID follows HubRedirects with no hop limit (not at "
    "most 8): on a redirect loop it asks for groupInfo again and again",
    departs=("transfer.newcomer.hop-limit",),
)
