"""Allowed variants of the reference peer (order and timing of fan-out): behaviours the draft permits that
differ from the reference default (see :func:`.registry.define_variant`). Every check must pass with each
of them on (or end AMBIGUOUS with the ambiguity ID of the variant's reading).

Each variant (and the fault) names the steps it departs from: the hub's outbox (``reference_peer/provider/
outbox.py``: parallel sending), its delivery (``ReferenceProvider._deliver_item``: retry pacing) and the hub
room (``reference_peer/room/hub.py``: the commit's stamp, for the fault).
"""

from __future__ import annotations

import random

from .registry import define, define_variant

AREA = "fanout"

NOTIFY_IN_PARALLEL = define_variant(
    "notify-in-parallel", area=AREA,
    permitted_by="-06 §5.5: 'The hub need not wait for a response before sending the next fanout message' "
                 "(the order a follower sees is then the one the FanoutMessage timestamps and epochs give: "
                 "AMB-FANOUT-ORDER-PARALLEL)",
    description="as hub, sends each due /notify to a provider as soon as it is due, in enqueue order, without "
                "waiting for the answer to the previous one (several /notify to one provider in flight at once); "
                "a /notify carrying a commit, or a retry, waits for the earlier ones and holds the later ones "
                "(room-policy-04 §7: proposals before their commit, the commit before its epoch's messages); "
                "rooms in a hub transfer keep the default order",
    departs=("outbox.send.one-in-flight",),
)
SLOW_NOTIFY_RETRY = define_variant(
    "slow-notify-retry", area=AREA,
    permitted_by="-06 §5.5: 'it SHOULD retry the request, respecting any guidance provided by the server in "
                 "HTTP header fields such as Retry-After' sets no deadline for the retry; Retry-After "
                 "(RFC 9110 §10.2.3) is the least time to wait",
    description="as hub, retries a /notify the follower answered with anything but 201 only after 20 to 30 s "
                "(or after the Retry-After, when that is longer); rooms in a hub transfer keep the default pacing",
    hooks={"hub.notify.retry-refused": lambda status, retry_after, room: slow_retry(status, retry_after, room)},
)

SLOW_RETRY_RANGE_S = (20.0, 30.0)

# The fault that proves the order check's stamp reading can fail (with notify-in-parallel the order is the
# one the stamps and epochs give: a stamp that contradicts the epochs is a miss under both readings).
COMMIT_STAMP_LAG_MS = 3000


def commit_stamped_late(now: int) -> int:
    """COMMIT_STAMPED_LATE, at step hub.fanout.stamp-commit-at-acceptance: the timestamp of a commit's
    FanoutMessage, 3 s after its acceptance time ``now``."""
    return now + COMMIT_STAMP_LAG_MS


COMMIT_STAMPED_LATE = define(
    "fanout-commit-stamped-late", area=AREA, requirements=["PROTO-FANOUT-ORDERED"],
    description="as hub, stamps the FanoutMessage of a commit 3 s after it accepted the commit, so by the stamps "
                "the messages of the epoch it starts come before it (the /notify still go out in order)",
    hooks={"hub.fanout.stamp-commit-at-acceptance": commit_stamped_late},
)


# notify-in-parallel departs from step outbox.send.one-in-flight: the outbox (reference_peer/provider/outbox.py)
# then sends each due /notify without waiting for the previous answer (a commit, a retry, another endpoint or a
# room the worker's serial_room names still wait).


def room_in_transfer(room) -> bool:
    """Whether a hub room (a HubRoom, or None) takes part in a hub transfer (started, moved, or taken over):
    its fan-out keeps the default order and pacing under both variants, since the hub-transfer extension's
    handoff (the undelivered lists) and its checks rest on them."""
    return room is not None and (room.transfer is not None or room.moved is not None or bool(room.min_timestamp))


def slow_retry(status: int | None, retry_after, room=None):
    """SLOW_NOTIFY_RETRY, at step hub.notify.retry-refused (``ReferenceProvider._deliver_item``, for a /notify
    not answered 201): what the outbox acts on, (status, retry_after). A refusal (an HTTP answer other than
    201) is retried after 20 to 30 s, or after the peer's Retry-After when that is longer. None (the default
    pacing) for no answer at all, and for a room in a hub transfer (``room``: the HubRoom, with a transfer
    started, moved, or taken over): the transfer checks stage refusals with timing of their own."""
    if status is None or status == 201 or room_in_transfer(room):
        return None
    import time

    from ..provider.outbox import parse_retry_after

    low, high = SLOW_RETRY_RANGE_S
    given = parse_retry_after(retry_after, time.time()) or 0.0
    return status, max(given, random.uniform(low, high))  # noqa: S311 - pacing, not security
