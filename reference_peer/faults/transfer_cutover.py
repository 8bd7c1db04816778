"""Faults of the hub-transfer extension (docs/extensions/hub-transfer.md), old hub side from the cut-over
on: cut-over, handoff, redirect, in-flight messages (checks: conformance/scenarios/test_hub_transfer_cutover.py)."""

from __future__ import annotations

from .registry import define

AREA = "portability"

CUTOVER_BEFORE_DELIVERY = define(
    "cutover-before-delivery",
    area=AREA,
    requirements=["EXT-HUBXFER-CUTOVER-AFTER-DELIVERY"],
    description="the old hub proposes the cut-over as soon as it accepts the begin commit, without waiting "
    "for the followers' and the target's 201 for it",
    departs=("transfer.cutover.after-delivery",),
)
CUTOVER_OMITS_PENDING = define(
    "cutover-omits-pending",
    area=AREA,
    requirements=["EXT-HUBXFER-CUTOVER-INCLUDES-PENDING", "EXT-HUBXFER-REMOVAL-PRESERVED"],
    description="while the cut-over proposal is pending, the old hub does not require the other pending "
    "proposals (an admin's Remove, say) in the cut-over commit, so a removal can miss the cut-over epoch",
    departs=("hub.cutover.require-pending",),
)
CUTOVER_TAKEN_AS_ABORT = define(
    "cutover-commit-taken-as-abort",
    area=AREA,
    requirements=["EXT-HUBXFER-HANDOFF-SENT", "EXT-HUBXFER-OLDHUB-REDIRECT"],
    description="the old hub reads the committed cut-over (mimi_hub naming the new hub) as an abort: it never "
    "records the room as moved, hands it off or redirects",
    departs=("transfer.commit.cutover-moves-the-room",),
)
OLDHUB_TAKES_REQUESTS_AFTER_CUTOVER = define(
    "oldhub-takes-requests-after-cutover",
    area=AREA,
    requirements=["EXT-HUBXFER-REQUEST-REFUSED", "EXT-HUBXFER-OLDHUB-NO-ACCEPT"],
    description="after the cut-over the old hub still processes a hubTransfer request for the room as its hub: "
    "instead of notHub it verifies the request and sends the target a prepare",
    departs=("transfer.request.refused-after-cutover",),
)
NO_HANDOFF = define(
    "cutover-no-handoff",
    area=AREA,
    requirements=["EXT-HUBXFER-HANDOFF-SENT"],
    description="after accepting the cut-over commit the old hub never sends the handoff",
    departs=("transfer.handoff.sent",),
)
HANDOFF_DROPS_MESSAGES = define(
    "handoff-drops-undelivered-messages",
    area=AREA,
    requirements=["EXT-HUBXFER-HANDOFF-CONTENT", "EXT-HUBXFER-INFLIGHT-EXACTLY-ONCE"],
    description="the handoff snapshot takes the undelivered application messages out of the outbox but "
    "leaves them out of the handoff's undelivered lists (handshakes are handed over): they are lost",
    hooks={"transfer.handoff.carries-undelivered": lambda undelivered: without_application_messages(undelivered)},
)
HANDOFF_OMITS_ROUTES = define(
    "handoff-omits-routes",
    area=AREA,
    requirements=["EXT-HUBXFER-HANDOFF-CONTENT"],
    description="the handoff carries no KeyPackageRef routes",
    departs=("transfer.handoff.carries-routes",),
)
HANDOFF_REBUILT_ON_RETRY = define(
    "handoff-rebuilt-on-retry",
    area=AREA,
    # The rebuilt snapshot no longer holds what the first attempt handed over, so the in-flight
    # messages are not delivered once either.
    requirements=["EXT-HUBXFER-HANDOFF-RETRY-IDENTICAL", "EXT-HUBXFER-INFLIGHT-EXACTLY-ONCE"],
    description="every handoff attempt is built afresh (a new snapshot: what the first attempt handed over "
    "is missing from the retry) instead of resending the first attempt's bytes",
    departs=("transfer.handoff.retry-identical",),
)
OLDHUB_KEEPS_FANOUT = define(
    "oldhub-keeps-fanout",
    area=AREA,
    requirements=["EXT-HUBXFER-OLDHUB-STOPS-FANOUT"],
    description="the handoff snapshot copies the undelivered /notify items but leaves them in the outbox: "
    "the old hub keeps retrying them after the new hub accepted the handoff",
    departs=("transfer.handoff.stops-fanout",),
)
ROLLBACK_AFTER_CUTOVER = define(
    "rollback-after-cutover",
    area=AREA,
    requirements=["EXT-HUBXFER-NO-ROLLBACK"],
    description="when the new hub does not accept its handoff, the old hub proposes a mimi_hub update "
    "naming itself hub again (generation + 1), after the cut-over commit",
    hooks={"transfer.handoff.no-rollback": lambda service, room_id, room: roll_back(service, room_id, room)},
)
OLDHUB_SERVES_AFTER_CUTOVER = define(
    "oldhub-serves-after-cutover",
    area=AREA,
    requirements=["EXT-HUBXFER-OLDHUB-NO-ACCEPT", "EXT-HUBXFER-OLDHUB-REDIRECT"],
    description="after the cut-over the old hub keeps serving the room's update, submitMessage and groupInfo "
    "requests from its last state instead of redirecting them",
    departs=("transfer.gate.oldhub-redirects",),
)
OLDHUB_GROUPINFO_NOT_REDIRECTED = define(
    "oldhub-groupinfo-not-redirected",
    area=AREA,
    requirements=["EXT-HUBXFER-OLDHUB-REDIRECT"],
    description="after the cut-over the old hub answers groupInfo for the room with a plain refusal "
    "(200, notAuthorized) instead of 421 and a HubRedirect",
    hooks={"transfer.old-hub.redirect-groupinfo": lambda provider, room_id: plain_groupinfo_refusal(provider, room_id)},
)
REDIRECT_NAMES_BEGIN_EPOCH = define(
    "redirect-names-begin-epoch",
    area=AREA,
    requirements=["EXT-HUBXFER-OLDHUB-REDIRECT-SHAPE"],
    description="the old hub's HubRedirect carries the begin epoch (cut-over epoch - 1) instead of the "
    "cut-over epoch",
    hooks={"transfer.gate.redirect-names-cutover-epoch": lambda moved: moved.replace(epoch=moved.epoch - 1)},
)


# -- helpers the hooks call (kept here so the hooks stay one line in the reference peer) ------------


def without_application_messages(undelivered: dict) -> dict:
    """HANDOFF_DROPS_MESSAGES: the undelivered FanoutMessages per destination, application messages removed."""
    from ..wire.mls import ContentType

    def application(message) -> bool:
        private = message.message.private_message
        return private is not None and private.content_type == ContentType.application

    return {dest: [m for m in messages if not application(m)] for dest, messages in undelivered.items()}


def roll_back(service, room_id: str, room) -> None:
    """ROLLBACK_AFTER_CUTOVER: once per transfer, a mimi_hub update (stable, hub = this provider,
    generation + 1) proposed by the old hub after the cut-over, fanned out like any hub proposal (the hook
    of step transfer.handoff.no-rollback, called when a handoff attempt was not accepted)."""
    transfer = room.transfer
    if transfer is None or getattr(transfer, "_rolled_back", False):
        return
    from ..mls import app_data_update_proposal
    from ..room.transfer import current_hub_data, provider_uri
    from ..wire.hub_transfer import MIMI_HUB_COMPONENT_ID, HubData, HubState

    current = current_hub_data(room.view.app_data(), room_id)
    back = HubData(room_id=current.room_id, hub=provider_uri(service.p.domain), generation=current.generation + 1,
                   state=HubState.stable, previous_hub=None, last_transfer_id=transfer.transfer_id)
    transfer._rolled_back = True
    plan = room.issue_hub_proposals([app_data_update_proposal(MIMI_HUB_COMPONENT_ID, back.encode())],
                                    service._stamp(room), "roll back the transfer (a deliberate fault)")
    service.p.commit_room_change(room_id, room, plan)


def plain_groupinfo_refusal(provider, room_id: str):
    """OLDHUB_GROUPINFO_NOT_REDIRECTED: a 200 GroupInfo refusal for a room that moved away, else None."""
    room = provider.hub_rooms.get(room_id)
    if room is None or room.moved is None:
        return None
    from ..room.hub import group_info_refusal
    from ..server.transport import MimiResponse

    return MimiResponse(group_info_refusal(room_id.encode()).encode())
WINDOW_RULE_OUTLIVES_ABORT = define(
    "window-rule-outlives-abort",
    area=AREA,
    requirements=["EXT-HUBXFER-WINDOW-NO-NEW-PROVIDERS"],
    description="after an aborted transfer (or a cut-over) the hub keeps applying the window's rule: it refuses, "
    "for good, any commit giving a provider other than the transfer's target its first participant",
    departs=("hub.transfer-window.ends-with-abort",),
)
