"""Faults of the fanout area (checks: conformance/scenarios/test_fanout.py)."""

import asyncio

from .registry import define

AREA = "fanout"

COMMIT_OVERTAKEN = define(
    "fanout-commit-overtaken", area=AREA, requirements=["PROTO-FANOUT-ORDERED", "POLICY-OPS-DELIVERY-ORDER"],
    description="as hub, holds back a commit-only /notify body and, when the next body for that provider is "
    "an application message, sends the commit after it, so a message of the new epoch arrives before the "
    "commit that starts it (a commit nothing overtakes within half a second goes out as usual)",
    hooks={"hub.fanout.queue-in-order": lambda *args: notify_bodies(*args)},
)
NO_LOCAL_DELIVERY_OF_FOLLOWER_MESSAGES = define(
    "no-local-delivery-of-follower-messages", area=AREA, requirements=["PROTO-FANOUT-TO-ACTIVE-PROVIDERS"],
    description="as hub, fans an application message a follower submitted out to the other providers but "
    "never delivers it to its own local clients in the room",
    departs=("hub.fanout.local-clients-get-followers-messages",),
)
WELCOME_TO_EVERY_PROVIDER = define(
    "welcome-to-every-provider", area=AREA,
    requirements=["PROTO-FANOUT-WELCOME-ROUTING", "PROTO-KEYMAT-KPREF-HUB-PROVIDER"],
    description="as hub, sends each Welcome to every provider with participants, not only to the joiners' ones",
    departs=("hub.fanout.route-welcome-to-joiners",),
)
ACCEPT_STALE_MESSAGE = define(
    "accept-stale-epoch-message", area=AREA, requirements=["PROTO-SUBMIT-EPOCH-TOO-OLD"],
    description="as hub, accepts (and fans out) an application message of an epoch older than the room's",
    departs=("hub.submit.refuse-stale-epoch",),
)
ACCEPT_FUTURE_MESSAGE = define(
    "accept-future-epoch-message", area=AREA, requirements=["PROTO-SUBMIT-FUTURE-EPOCH-NOT-ALLOWED"],
    description="as hub, accepts (and fans out) an application message claiming an epoch after the room's",
    departs=("hub.submit.refuse-future-epoch",),
)
SECOND_COMMIT_FOR_EPOCH = define(
    "accept-second-commit-for-epoch", area=AREA, requirements=["PROTO-UPDATE-WRONG-EPOCH"],
    description="as hub, accepts a second commit built on the epoch the previous commit just ended "
    "(forking the room onto the later commit)",
    departs=("hub.update.refuse-superseded-epoch-commit",),
)
MESSAGE_STAMP_LAG_MS = 1500  # fanout-timestamp-not-acceptance
TIMESTAMP_NOT_ACCEPTANCE = define(
    "fanout-timestamp-not-acceptance", area=AREA, requirements=["PROTO-FANOUT-TIMESTAMP-IS-ACCEPTANCE"],
    description="as hub, stamps fanned-out application messages with a time 1.5 s after the accepted_timestamp "
    "it answered the submitter",
    hooks={"hub.submit.stamp-at-acceptance": lambda now: now + MESSAGE_STAMP_LAG_MS},
)
NOTIFY_NOT_RETRIED = define(
    "notify-not-retried", area=AREA,
    requirements=["PROTO-FANOUT-RETRY-NON-201", "PROTO-FANOUT-SUCCESS-IS-COMMITMENT"],
    description="as hub, drops a /notify the follower answered with anything but 201 (no retry)",
    # step hub.notify.retry-refused (peer.py _deliver_item): (status, retry_after) the outbox acts on
    hooks={"hub.notify.retry-refused": lambda status, retry_after, room: (201, None)},  # taken for delivered
    departs=("outbox.send.delivered-only-on-201",),  # and the outbox takes any answer for delivered
)
NOTIFY_2XX_DELIVERED = define(
    "notify-2xx-taken-as-delivered", area=AREA,
    requirements=["PROTO-FANOUT-RETRY-NON-201", "PROTO-FANOUT-SUCCESS-IS-COMMITMENT"],
    description="as hub, takes a /notify answered with any 2xx (200, 202, 204...) for delivered and retries only "
    "3xx-5xx answers (-06 §5.5 retries anything but 201)",
    # step hub.notify.retry-refused (peer.py _deliver_item): None leaves the answer as it came
    hooks={"hub.notify.retry-refused": lambda status, retry_after, room: (201, None) if 200 <= status < 300 else None},
)
RETRY_AFTER_IGNORED = define(
    "retry-after-ignored", area=AREA, requirements=["PROTO-FANOUT-RETRY-AFTER-RESPECTED"],
    description="as hub, retries a refused /notify after 0.1 s whatever Retry-After said",
    hooks={"hub.notify.retry-refused": lambda status, retry_after, room: (status, 0.1)},
)
RETRY_AFTER_DATE_IGNORED = define(
    "retry-after-http-date-ignored", area=AREA, requirements=["PROTO-FANOUT-RETRY-AFTER-RESPECTED"],
    description="as hub, retries a /notify refused with a Retry-After in the HTTP-date form after 0.1 s (a "
    "delay-seconds one is respected)",
    hooks={"hub.notify.retry-refused": lambda status, retry_after, room: (
        (status, 0.1) if retry_after is not None and not str(retry_after).strip().isdigit() else None)},
)
DUPLICATE_NOTIFY_REFUSED = define(
    "duplicate-notify-refused", area=AREA, requirements=["PROTO-FANOUT-DUP-NOTIFY-201"],
    description="as follower, answers a byte-identical repeated /notify with 409 instead of 201",
    hooks={"follower.notify.duplicate-answered-201": lambda: 409},
)
DUPLICATE_NOTIFY_PROCESSED_TWICE = define(
    "duplicate-notify-processed-twice", area=AREA, requirements=["PROTO-FANOUT-DUP-NOTIFY-PROCESS-ONCE"],
    description="as follower, processes a repeated /notify again: its clients list the messages twice",
    hooks={"follower.notify.duplicate-processed-once": lambda *args: process_duplicate_again(*args)},
)
OWN_ECHO_REFUSED = define(
    "own-message-echo-refused", area=AREA, requirements=["PROTO-FANOUT-NOT-ECHOED-REQUIRED"],
    description="as follower, answers 409 to a /notify that only echoes its own client's application message",
    hooks={"follower.notify.accept-own-echo": lambda *args: refuse_own_echo(*args)},
)
CONCATENATED_TRUNCATED = define(
    "concatenated-notify-truncated", area=AREA, requirements=["PROTO-FANOUT-CONCATENATED-MESSAGES"],
    description="as follower, processes only the first application message of a /notify body with several",
    hooks={"follower.notify.process-every-message": lambda messages: intake_messages(messages)},
)
# Faults of the follower's MLS clients (checks: conformance/scenarios/test_follower_clients.py).
WELCOME_NOT_JOINED = define(
    "follower-welcome-not-joined", area=AREA, requirements=["PROTO-KEYMAT-KPREF-TARGET-CLIENT"],
    description="as follower, answers 201 to a /notify carrying a Welcome for its clients' KeyPackages but no client "
    "joins the group from it",
    departs=("follower.welcome.join",),
)
STAPLED_PROPOSALS_DROPPED = define(
    "follower-stapled-proposals-dropped", area=AREA, requirements=["PROTO-GROUPINFO-FOLLOWER-JOIN-NEW-DEVICE"],
    description="as follower, its clients drop the hub's proposals stapled to a commit's FanoutMessage "
    "(externalProposals), so they cannot follow the next commit that includes them",
    departs=("follower.commit.stapled-proposals",),
)
COMMIT_GROUPINFO_OF_OLD_EPOCH = define(
    "follower-commit-groupinfo-of-old-epoch", area=AREA, requirements=["POLICY-OPS-COMMITTER-PROVIDES-GROUPINFO"],
    description="as follower, its clients' commits carry the GroupInfo of the epoch the commit ends, not of the "
    "epoch it starts",
    departs=("follower.commit.groupinfo-new-epoch",),
)


# -- hooks (of the steps in reference_peer/peer.py; each is given only to its own fault) ---------------


def _is_application(message) -> bool:
    from ..wire.mls import ContentType

    pm = message.message.private_message
    return pm is not None and pm.content_type == ContentType.application


def _is_commit_only(messages) -> bool:
    from ..wire.mls import ContentType

    return bool(messages) and all(
        m.message.public_message is not None and m.message.public_message.content.content_type == ContentType.commit
        for m in messages
    )


OVERTAKE_WINDOW_S = 0.5  # how long a held commit waits for an application message to overtake it


def notify_bodies(provider, room_id: str, domain: str, messages, body: bytes) -> list[bytes]:
    """COMMIT_OVERTAKEN: the /notify bodies to queue for ``domain`` (hub side), reordered (an application
    message overtakes the commit-only body before it). The fault breaks only the order: a commit nothing
    overtakes still goes out, so checks that merely wait for an epoch are not starved by it."""
    held = provider.__dict__.setdefault("_fault_held_commits", {})
    key = (domain, room_id)
    if _is_commit_only(messages) and key not in held:
        held[key] = body

        def release() -> None:
            if held.get(key) is body:
                provider.state.queue_notify(domain, room_id, held.pop(key))

        asyncio.get_running_loop().call_later(OVERTAKE_WINDOW_S, release)
        return []
    if key not in held:
        return [body]
    commit = held.pop(key)
    return [body, commit] if all(_is_application(m) for m in messages) else [commit, body]


def refuse_own_echo(provider, room_id: str, messages) -> bool:
    """OWN_ECHO_REFUSED (follower): whether to refuse a /notify that only echoes a local client's own
    application message."""
    if not messages or not all(_is_application(m) for m in messages):
        return False
    sent = set()
    for (room, _client), member in provider.members.items():
        if room == room_id:
            sent |= member._sent  # noqa: SLF001 - the client's own ciphertexts
    if not all(m.message.encode() in sent for m in messages):
        return False
    refused = provider.__dict__.setdefault("_fault_refused_echoes", set())
    key = b"".join(m.encode() for m in messages)
    if key in refused:
        return False  # refused once: the hub's retry goes through, so later fan-out is not blocked
    refused.add(key)
    return True


def intake_messages(messages):
    """CONCATENATED_TRUNCATED (follower): the FanoutMessages of a new /notify body that get processed."""
    out, seen_application = [], False
    for message in messages:
        if _is_application(message):
            if seen_application:
                continue
            seen_application = True
        out.append(message)
    return out


def process_duplicate_again(provider, room_id: str, messages) -> None:
    """DUPLICATE_NOTIFY_PROCESSED_TWICE (follower): a duplicate /notify's application messages are listed
    again by the clients that got them (answered 201 all the same)."""
    stamps = {m.timestamp for m in messages if _is_application(m)}
    for (room, client), _member in list(provider.members.items()):
        if room != room_id:
            continue
        for row in provider.peer_store.received(client, room_id=room_id, limit=100_000):
            if row.received_at in stamps:
                provider.peer_store.add_received(client, room_id, row.sender, row.epoch, row.data, row.received_at)
