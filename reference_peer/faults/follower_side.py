"""Faults of a provider acting as follower: the /notify it takes, the room requests of its own clients
(checks: conformance/scenarios/test_hub_transfer_follower.py, test_hub_transfer_old_hub_clients.py,
test_hub_transfer_discarded_target.py, test_transfer_target_notify.py).

Hooks: ``ReferenceProvider.handle_notify``, ``._is_transfer_target_only`` and ``._room_call`` (``reference_peer/peer.py``).
"""

from __future__ import annotations

from .registry import define

AREA = "follower-side"

ACCEPT_NOTIFY_FROM_ANY_PROVIDER = define(
    "follower-accepts-notify-from-any-provider",
    area=AREA,
    requirements=["EXT-HUBXFER-FOLLOWER-STALE-NOTIFY"],
    description="a follower takes /notify for a room from any provider, not only from the room's hub (and, in "
    "a transfer, its target or previous hub)",
    departs=("follower.notify.refuse-other-senders",),
)


def _to_self_if_moved_away(provider, room_id: str, hub: str):
    """follower.room.request-to-hub-of-record: a room this provider hosted and moved away goes to itself."""
    room = provider.hub_rooms.get(room_id)
    return provider.domain if room is not None and room.moved is not None else None


async def _own_redirect_is_final(provider, room_id: str, hub: str, target: str, reply):
    """follower.room.resend-after-redirect: a redirect this provider answered itself is returned as the answer."""
    return (reply, target) if provider.is_local_domain(hub) else (None, target)


OLD_HUB_KEEPS_OWN_CLIENTS = define(
    "old-hub-keeps-its-clients-requests",
    area=AREA,
    requirements=["EXT-HUBXFER-FOLLOWER-RETARGET"],
    description="after the cut-over the old hub sends its own clients' room requests for the room to itself "
    "and takes its own 421 HubRedirect as the answer: they never reach the new hub",
    hooks={"follower.room.request-to-hub-of-record": _to_self_if_moved_away,
           "follower.room.resend-after-redirect": _own_redirect_is_final},
)
TARGET_KEEPS_DISCARDED_TRANSFER = define(
    "target-keeps-discarded-transfer",
    area=AREA,
    requirements=["EXT-HUBXFER-TARGET-EXPIRES"],
    description="a target with no client in the room still acts as the transfer's target after the transfer was "
    "discarded (aborted or expired): it answers the room's /notify 201 and delivers nothing",
    departs=("transfer.target.target-only-while-accepted",),
)
TARGET_ANSWERS_NOTIFY_200 = define(
    "target-answers-notify-200",
    area=AREA,
    requirements=["EXT-HUBXFER-TARGET-NOTIFY-201"],
    description="a transfer's target answers the old hub's /notify of the room during the window 200 instead "
    "of 201 (it keeps the public state all the same)",
    hooks={"transfer.target.notify-answered-201": lambda: 200},
)
