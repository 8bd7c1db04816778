"""Faults of the hub-transfer extension (docs/extensions/hub-transfer.md), follower side.

Checks: conformance/scenarios/test_hub_transfer_follower.py. Each fault breaks one follower rule of
sections 5.1, 7, 9 and 10; the hooks sit where the reference peer applies the rule
(``reference_peer/peer.py``: hub_of, _room_call, notify_allowed, handle_notify;
``reference_peer/hub_transfer.py``: after_intake; ``reference_peer/control/backend.py``:
startHubTransfer). The helpers below hold the faulty behaviour so that each hook is one line.
"""

from __future__ import annotations

import logging
import time

from .registry import define

AREA = "portability"
log = logging.getLogger(__name__)

REQUEST_TO_TARGET = define(
    "follower-transfer-request-to-target",
    area=AREA,
    requirements=["EXT-HUBXFER-FOLLOWER-SENDS-REQUEST"],
    description="a follower whose user starts a transfer sends the HubTransferRequest to the proposed new "
    "hub's hubTransfer endpoint instead of the room's hub-of-record",
    departs=("control.start-hub-transfer.request-to-hub",),
)
HUB_FROM_AUTHORITY = define(
    "follower-hub-from-authority",
    area=AREA,
    requirements=["EXT-HUBXFER-FOLLOWER-HUB-FROM-COMPONENT", "EXT-HUBXFER-FOLLOWER-RETARGET"],
    description="a follower takes a room's hub from the room ID's authority, ignoring the committed "
    "mimi_hub component (it still follows redirects)",
    departs=("follower.room.hub-from-component",),
)
OLD_HUB_FIRST = define(
    "follower-requests-to-old-hub",
    area=AREA,
    requirements=["EXT-HUBXFER-FOLLOWER-RETARGET"],
    description="after a cut-over a follower keeps sending the room's requests to the previous hub first "
    "and reaches the new hub only through its redirect (its hub-of-record is right)",
    hooks={"follower.room.request-to-hub-of-record": lambda provider, room_id, hub: first_hub(provider, room_id, hub)},
)
REFUSE_TARGET_NOTIFY = define(
    "follower-refuses-target-notify",
    area=AREA,
    requirements=["EXT-HUBXFER-FOLLOWER-ACCEPT-TARGET"],
    description="during the transfer window a follower refuses /notify from the target named in the "
    "committed mimi_hub component (403), unless it carries a commit (the handed-over backlog bringing the "
    "cut-over commit is still taken, so the transfer itself completes)",
    hooks={"follower.notify.accept-transfer-target": lambda body: refuses_target_notify(body)},
)
ACCEPT_STALE_NOTIFY = define(
    "follower-accepts-stale-notify",
    area=AREA,
    requirements=["EXT-HUBXFER-FOLLOWER-STALE-NOTIFY"],
    description="after a cut-over a follower accepts /notify from the previous hub for any epoch, "
    "not only up to the cut-over epoch",
    departs=("transfer.follower.refuses-stale-notify",),
)
ACCEPT_STRANGER_NOTIFY_UNKNOWN_ROOM = define(
    "follower-accepts-stranger-notify-unknown-room",
    area=AREA,
    requirements=["EXT-HUBXFER-FOLLOWER-STALE-NOTIFY"],
    description="a follower answers 201 to /notify from any provider for a room it holds no state of, "
    "whatever the body (not only a Welcome, by which a moved room's hub may reach a newcomer)",
    departs=("follower.notify.unknown-room-welcome-only",),
)
REDIRECT_MOVES_HUB = define(
    "follower-redirect-moves-hub",
    area=AREA,
    requirements=["EXT-HUBXFER-FOLLOWER-REDIRECT-NOT-AUTHORITY"],
    description="a follower makes the hub named in a HubRedirect its hub-of-record for the room, "
    "without a committed mimi_hub component",
    # ReferenceProvider.hub_of asks the first; _room_call asks the second on each redirect (it records it)
    hooks={"follower.room.redirect-not-authority": lambda room_id: _redirected.get(room_id),
           "follower.room.resend-after-redirect": lambda *args: record_redirect(*args)},
)
NO_REDIRECT_RESEND = define(
    "follower-no-redirect-resend",
    area=AREA,
    requirements=["EXT-HUBXFER-FOLLOWER-REDIRECT-RESEND"],
    description="a follower does not resend a redirected request to the hub the redirect names; it waits "
    "until a committed component moves its hub-of-record and resubmits there",
    hooks={"follower.room.resend-after-redirect": lambda *args: wait_for_component(*args)},
)
REDIRECT_TAKEN_AS_ACCEPTED = define(
    "follower-redirect-taken-as-accepted",
    area=AREA,
    requirements=["EXT-HUBXFER-FOLLOWER-REFUSED-NOT-SENT", "EXT-HUBXFER-FOLLOWER-REDIRECT-RESEND"],
    description="a follower takes a submitMessage answered 421 with a HubRedirect as accepted: it "
    "neither resends nor resubmits the message",
    hooks={"follower.room.resend-after-redirect": lambda *args: taken_as_accepted(*args)},
)
GIVE_UP_ON_503 = define(
    "follower-gives-up-on-503",
    area=AREA,
    requirements=["EXT-HUBXFER-FOLLOWER-503-RETRY"],
    description="a follower does not retry a room request the new hub answered 503 (Retry-After): the "
    "request fails",
    departs=("follower.room.retry-503",),
)
CROSS_HUB_DUPLICATE_REFUSED = define(
    "follower-refuses-cross-hub-duplicate",
    area=AREA,
    requirements=["EXT-HUBXFER-FOLLOWER-DEDUP"],
    description="a follower answers 409 to a /notify whose FanoutMessages it already received from the "
    "other hub of a transfer, instead of 201",
    hooks={"follower.notify.cross-hub-duplicate-201": lambda: 409},
)
REINIT_AFTER_TRANSFER = define(
    "follower-reinit-after-transfer",
    area=AREA,
    requirements=["EXT-HUBXFER-NO-REINIT"],
    description="after processing a cut-over commit a follower's client proposes a ReInit of the group "
    "to the new hub",
    hooks={"transfer.follower.no-reinit": lambda service, room_id: after_intake(service, room_id)},
)
FAILS_ON_CUTOVER_PROPOSAL = define(
    "follower-fails-on-cutover-proposal",
    area=AREA,
    requirements=["PROTO-FANOUT-NOTIFY-201"],
    description="a follower fails (HTTP 500, nothing taken in) on the first /notify that leaves a cut-over or "
    "abort proposal of mimi_hub cached at one of its clients; the hub's retry is taken",
    hooks={"transfer.follower.takes-transfer-proposals": lambda service, room_id: fail_on_cutover(service, room_id)},
)
CLIENTS_OMIT_HUB_COMPONENT = define(
    "follower-clients-omit-hub-component",
    area=AREA,
    requirements=["EXT-HUBXFER-FOLLOWER-CLIENTS-LIST-HUB"],
    description="the provider's clients process the mimi_hub component but do not list it in their LeafNodes' "
    "app_components (so a hub must refuse every transfer of a room they are in)",
    hooks={"transfer.follower.clients-list-hub-component": lambda client: omit_hub_component(client)},
)

# follower-redirect-moves-hub: room ID -> the domain a redirect named (the faulty hub-of-record).
_redirected: dict[str, str] = {}
# follower-reinit-after-transfer: rooms whose ReInit was already proposed.
_reinit_sent: set[str] = set()
# follower-fails-on-cutover-proposal: (room ID, proposal ref) already failed on once.
_failed_cutovers: set[tuple[str, bytes]] = set()


def record_redirect(provider, room_id: str, hub: str, target: str, reply) -> None:
    """follower-redirect-moves-hub: the hub a redirect named for the room is kept, to be taken as its
    hub-of-record (returns None: the request is resent to ``target`` as the rule says)."""
    _redirected[room_id] = target


def fail_on_cutover(service, room_id: str) -> None:
    """follower-fails-on-cutover-proposal: raise (the /notify is answered 500 and rolled back) the first time
    a local member of a room this provider follows holds a cached stable mimi_hub update."""
    from ..hub_transfer_follower import _hub_updates
    from ..wire.hub_transfer import HubState

    provider = service.p
    if room_id in provider.hub_rooms:
        return
    for (room, client), member in list(provider.members.items()):
        if room != room_id or provider.active_member(room, client) is None:
            continue
        for ref, data in _hub_updates(member.group):
            if data.state == HubState.stable and (room_id, bytes(ref)) not in _failed_cutovers:
                _failed_cutovers.add((room_id, bytes(ref)))
                raise RuntimeError(f"fault {FAILS_ON_CUTOVER_PROPOSAL}: cannot take the cut-over proposal in")


def omit_hub_component(client) -> None:
    """follower-clients-omit-hub-component: the client's LeafNodes list every component but mimi_hub."""
    from ..wire.hub_transfer import MIMI_HUB_COMPONENT_ID

    client.app_components = tuple(c for c in client.app_components if c != MIMI_HUB_COMPONENT_ID)


def refuses_target_notify(body: bytes) -> bool:
    """follower-refuses-target-notify: refuse the target's /notify in the window unless it carries a commit."""
    from ..wire.codec import DecodeError, EncodeError
    from ..wire.mimi import FanoutMessage, Protocol
    from ..wire.mls import ContentType

    try:
        messages = FanoutMessage.decode_sequence(body, scope={"protocol": Protocol.mls10})
    except (DecodeError, EncodeError):
        return True
    return not any(m.message.public_message is not None
                   and m.message.public_message.content.content_type == ContentType.commit for m in messages)


def first_hub(provider, room_id: str, hub: str) -> str:
    """follower-requests-to-old-hub: where a follower sends a room request first (the previous hub)."""
    data = provider.room_hub_data(room_id)
    previous = getattr(data, "previous_hub", None) if data is not None else None
    if previous is None:
        return hub
    from ..room.naming import domain_of_uri

    return domain_of_uri(bytes(previous.uri)) or hub


# The hooks of step follower.room.resend-after-redirect (ReferenceProvider._room_call): a follower got a
# HubRedirect from ``hub`` naming ``target``; a faulty follower's coroutine gives (reply, _) to return to its
# caller, or (None, hub) to send to instead.


async def taken_as_accepted(provider, room_id: str, hub: str, target: str, reply):
    """follower-redirect-taken-as-accepted: the 421 is taken for an accepted submitMessage."""
    return _accepted_reply(reply), target


async def wait_for_component(provider, room_id: str, hub: str, target: str, reply):
    """follower-no-redirect-resend: waits for a committed component instead of resending."""
    import asyncio

    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        current = provider.hub_of(room_id)
        if current != hub:
            return None, current
        await asyncio.sleep(0.05)
    return reply, target


def _accepted_reply(reply):
    """A 200 SubmitMessageResponse(accepted) standing in for the 421 (follower-redirect-taken-as-accepted)."""
    from ..server.client import PeerReply
    from ..wire.mimi import Protocol, SubmitMessageResponse, SubmitResponseCode

    body = SubmitMessageResponse(protocol=Protocol.mls10, statusCode=SubmitResponseCode.accepted,
                                 accepted_timestamp=int(time.time() * 1000), frank=None).encode()
    import dataclasses

    import httpx

    return dataclasses.replace(reply, status=200, headers=httpx.Headers({}), body=body) if isinstance(reply, PeerReply) \
        else reply


def after_intake(service, room_id: str) -> None:
    """follower-reinit-after-transfer: once a local client has processed a cut-over, a copy of it proposes
    a ReInit of the group to the new hub (the client itself stays as it was). The hook of step
    transfer.follower.no-reinit, called after every intake."""
    if room_id in _reinit_sent:
        return
    provider = service.p
    if room_id in provider.hub_rooms:
        return
    data = provider.room_hub_data(room_id)
    if data is None or getattr(data, "previous_hub", None) is None:
        return
    member = next((provider.active_member(r, c) for (r, c) in list(provider.members)
                   if r == room_id and provider.active_member(r, c) is not None), None)
    if member is None:
        return
    _reinit_sent.add(room_id)
    import copy

    from ..wire.mls import Proposal as WireProposal
    from ..wire.mls import ProposalType, ProtocolVersion, ReInit

    twin = copy.deepcopy(member)
    group = twin.group
    proposal = WireProposal(proposal_type=ProposalType.reinit, reinit=ReInit(
        group_id=bytes(group.group_id) + b"-reinit", version=ProtocolVersion.mls10,
        cipher_suite=group.suite.suite_id, extensions=list(group.context.extensions)))
    try:
        body = twin.proposals_request([proposal])
    except Exception as exc:  # noqa: BLE001 - a fault's side effect must not break the peer
        log.warning("fault %s: cannot build the ReInit proposal: %s", REINIT_AFTER_TRANSFER, exc)
        return

    async def send() -> None:
        try:
            await provider.send_update(room_id, body)
        except Exception as exc:  # noqa: BLE001
            log.warning("fault %s: ReInit proposal not sent: %s", REINIT_AFTER_TRANSFER, exc)

    service._spawn(send())  # noqa: SLF001
