"""Faults of the hub-transfer extension (docs/extensions/hub-transfer.md), old hub side, up to the
cut-over (checks: conformance/scenarios/test_hub_transfer_request.py)."""

from __future__ import annotations

from .registry import define

AREA = "portability"

DIRECTORY_OMITS_HUB_TRANSFER = define(
    "directory-omits-hub-transfer",
    area=AREA,
    requirements=["EXT-HUBXFER-DIRECTORY"],
    description="the provider serves POST /hubTransfer/{roomId} but its directory has no hubTransfer key",
    departs=("directory.document.list-hub-transfer",),
)
CUTOVER_TIMEOUT_UNDECLARED = define(
    "cutover-timeout-undeclared",
    area=AREA,
    requirements=["EXT-HUBXFER-DECLARED"],
    description="the old hub's prepare asks for a cut-over deadline three times the cutover_timeout_ms its "
    "manifest declares",
    hooks={"transfer.prepare.declared-timeout": lambda timeout_ms: timeout_ms * 3},
)
HUB_COMPONENT_MISSING_AT_CREATION = define(
    "hub-component-missing-at-creation",
    area=AREA,
    requirements=["EXT-HUBXFER-COMPONENT-AT-CREATION"],
    description="rooms the hub creates carry no mimi_hub component (the section 4.1 default still applies)",
    departs=("control.create-room.hub-component",),
)
ABORT_KEEPS_GENERATION = define(
    "abort-keeps-generation",
    area=AREA,
    requirements=["EXT-HUBXFER-COMPONENT-GENERATION"],
    description="the abort mimi_hub update carries the current generation instead of generation + 1",
    hooks={"transfer.abort.next-generation": lambda data, current: data.replace(generation=current.generation)},
)
ABORT_NAMES_PREVIOUS_HUB = define(
    "abort-names-previous-hub",
    area=AREA,
    requirements=["EXT-HUBXFER-COMPONENT-TRANSITIONS"],
    description="the abort mimi_hub update sets previous_hub to the target (an abort leaves it absent)",
    hooks={"transfer.abort.no-previous-hub": lambda data, current: data.replace(previous_hub=current.target)},
)
MEMBER_MAY_CHANGE_HUB_COMPONENT = define(
    "member-may-change-hub-component",
    area=AREA,
    requirements=["EXT-HUBXFER-COMPONENT-SENDER"],
    description="the hub accepts a member's mimi_hub AppDataUpdate, as a proposal or by value in a commit",
    departs=("hub.mimi-hub.only-hub-sender",),
)
TRANSFER_WITHOUT_CAPABILITY = define(
    "transfer-without-capability",
    area=AREA,
    requirements=["EXT-HUBXFER-CAP-REQUIRED", "EXT-HUBXFER-REQUEST-REFUSED"],
    description="the hub does not check canTransferHub: it prepares the transfer (and answers the target's "
    "verdict) for a request whose initiator's role lacks the capability",
    departs=("transfer.request.needs-capability",),
)
INITIATOR_LEAF_UNCHECKED = define(
    "transfer-initiator-leaf-unchecked",
    area=AREA,
    requirements=["EXT-HUBXFER-CAP-REQUIRED"],
    description="the hub does not check that the leaf at initiator_leaf_index holds a credential of the "
    "initiator: a member without canTransferHub signs a request naming a user who holds it and the hub "
    "prepares and begins the transfer",
    departs=("transfer.verify.initiator-leaf-credential",),
)
REQUEST_SIGNATURE_UNCHECKED = define(
    "transfer-request-signature-unchecked",
    area=AREA,
    requirements=["EXT-HUBXFER-CAP-REQUIRED", "EXT-HUBXFER-REQUEST-REFUSED"],
    description="the hub does not verify a transfer request's signature: a request from an admin's leaf with a "
    "corrupted signature is prepared (the target's verdict is answered) instead of refused notAllowed",
    departs=("transfer.verify.request-signature",),
)
REQUEST_GROUP_UNCHECKED = define(
    "transfer-request-group-unchecked",
    area=AREA,
    requirements=["EXT-HUBXFER-CAP-REQUIRED", "EXT-HUBXFER-REQUEST-REFUSED"],
    description="the hub does not check a transfer request's group_id: a request signed by an admin's leaf that "
    "names the room but another MLS group is prepared (the target's verdict is answered) instead of refused "
    "notAllowed",
    departs=("transfer.verify.request-names-its-group",),
)
VALID_REQUEST_REFUSED = define(
    "valid-transfer-request-refused",
    area=AREA,
    requirements=["EXT-HUBXFER-BEGIN-PROPOSALS"],
    description="the hub refuses (notAllowed) every transfer request, also one that verifies from an admin holding "
    "canTransferHub to an accepting target: it never begins a transfer",
    departs=("transfer.verify.valid-request-accepted",),
)
BEGIN_AFTER_STALE_REQUEST = define(
    "transfer-begins-after-stale-request",
    area=AREA,
    requirements=["EXT-HUBXFER-CAP-REQUIRED"],
    description="the hub does not verify the request again when a commit landed while the target held the "
    "prepare: it begins the transfer although the initiator was removed meanwhile",
    departs=("transfer.request.reverify-after-prepare",),
)
REFUSED_REQUEST_STILL_PREPARES = define(
    "refused-request-still-prepares",
    area=AREA,
    requirements=["EXT-HUBXFER-REQUEST-REFUSED"],
    description="the hub sends a prepare to the target for a request it then refuses (notAllowed)",
    departs=("transfer.request.refused-sends-nothing",),
)
REQUEST_FROM_ANY_PROVIDER = define(
    "request-from-any-provider",
    area=AREA,
    requirements=["EXT-HUBXFER-REQUEST-SOURCE"],
    description="the hub processes a request message whose mTLS peer is not the initiator's provider",
    departs=("transfer.request.from-initiator-provider",),
)
BEGIN_DESPITE_DECLINE = define(
    "begin-despite-decline",
    area=AREA,
    requirements=["EXT-HUBXFER-DECLINE-CHANGES-NOTHING", "EXT-HUBXFER-CONSENT-FIRST"],
    description="when the target declines or cannot be reached, the hub proposes the begin anyway, with an "
    "acceptance it made up itself",
    hooks={"transfer.begin.after-consent": lambda *args: made_up_acceptance(*args)},
)
ACCEPTANCE_NEW_HUB_UNCHECKED = define(
    "acceptance-new-hub-unchecked",
    area=AREA,
    requirements=["EXT-HUBXFER-CONSENT-FIRST"],
    description="the hub does not check that the acceptance's new_hub names the target it sent the prepare to: it "
    "proposes the begin with a validly signed acceptance naming another provider as new hub",
    departs=("transfer.prepare.acceptance-names-target",),
)
ACCEPTANCE_DEADLINE_UNCHECKED = define(
    "acceptance-deadline-unchecked",
    area=AREA,
    requirements=["EXT-HUBXFER-CONSENT-FIRST"],
    description="the hub does not check that the acceptance's not_after is no later than the requested_not_after "
    "of its prepare: it proposes the begin with a validly signed acceptance granting itself a later deadline",
    departs=("transfer.prepare.acceptance-within-deadline",),
)
SECOND_TRANSFER_WHILE_BUSY = define(
    "second-transfer-while-busy",
    area=AREA,
    requirements=["EXT-HUBXFER-ONE-AT-A-TIME"],
    description="while the begin proposals of a transfer are pending, the hub processes a second request",
    departs=("transfer.request.one-at-a-time",),
)
BEGIN_PROPOSALS_OPTIONAL = define(
    "begin-proposals-optional",
    area=AREA,
    requirements=["EXT-HUBXFER-PENDING-REQUIRED"],
    description="the hub accepts a commit in the begin proposals' epoch that does not include them",
    departs=("transfer.begin.proposals-required",),
)
BEGIN_SENDERS_PREPENDED = define(
    "begin-senders-prepended",
    area=AREA,
    requirements=["EXT-HUBXFER-BEGIN-PROPOSALS"],
    description="the begin GroupContextExtensions proposal puts the target's new_hub_sender first in "
    "external_senders instead of appending it",
    hooks={"transfer.begin.appends-target-sender": lambda senders: [senders[-1], *senders[:-1]]},
)
TARGET_MISSES_BEGIN_BUNDLE = define(
    "target-misses-begin-bundle",
    area=AREA,
    requirements=["EXT-HUBXFER-TARGET-FANOUT"],
    description="the hub fans the begin proposals out to the followers but not to the target",
    departs=("transfer.begin.fans-out-to-target",),
)


def _cutover_commit_not_to_target(room, plan) -> None:
    """Drop the target's delivery of a commit planned once the room has moved (the cut-over commit)."""
    transfer = room.transfer
    if transfer is not None and transfer.phase == "moved" and transfer.target not in room.active_providers():
        plan.deliveries.pop(transfer.target, None)


CUTOVER_COMMIT_NOT_TO_TARGET = define(
    "cutover-commit-not-to-target",
    area=AREA,
    requirements=["EXT-HUBXFER-TARGET-FANOUT"],
    description="the hub fans the cut-over commit out to the followers but not to the target",
    hooks={"hub.fanout.commit-to-transfer-target": _cutover_commit_not_to_target},
)
WINDOW_REFUSES_MESSAGES = define(
    "window-refuses-messages",
    area=AREA,
    requirements=["EXT-HUBXFER-WINDOW-NORMAL"],
    description="during the transfer window the hub answers every submitMessage notAllowed",
    departs=("hub.transfer-window.serve-messages",),
)
WINDOW_ADMITS_NEW_PROVIDER = define(
    "window-admits-new-provider",
    area=AREA,
    requirements=["EXT-HUBXFER-WINDOW-NO-NEW-PROVIDERS"],
    description="during the transfer window the hub accepts a commit giving a new provider its first participant",
    departs=("hub.transfer-window.no-new-providers",),
)
WINDOW_REFUSES_ADDS = define(
    "window-refuses-adds",
    area=AREA,
    requirements=["EXT-HUBXFER-WINDOW-NORMAL"],
    description="during the transfer window the hub refuses every commit with an Add, even of a user at a provider "
    "already in the room",
    hooks={"hub.transfer-window.accepts-commits": lambda old, new, applied: _refuse_adds(applied)},
)
ABORT_NEVER_AT_NOT_AFTER = define(
    "abort-never-at-not-after",
    area=AREA,
    requirements=["EXT-HUBXFER-ABORT-ON-TIMEOUT"],
    description="the old hub leaves a transfer whose cut-over was not committed by not_after in its window: "
    "it never proposes the abort",
    departs=("transfer.abort.at-not-after",),
)
ABORT_KEEPS_TARGET_SENDER = define(
    "abort-keeps-target-sender",
    area=AREA,
    requirements=["EXT-HUBXFER-ABORT-ON-TIMEOUT"],
    description="the abort at not_after proposes the mimi_hub abort without the GroupContextExtensions "
    "proposal removing the target's external_senders entry",
    departs=("transfer.abort.removes-target-sender",),
)
ABORT_NOT_SENT_TO_TARGET = define(
    "abort-not-sent-to-target",
    area=AREA,
    requirements=["EXT-HUBXFER-ABORT-NOTIFIES-TARGET"],
    description="the hub aborts a transfer without sending the signed abort message to the target",
    departs=("transfer.abort.notifies-target",),
)


def made_up_acceptance(provider, room_id: str, room, request, transfer_id: bytes, target: str, not_after: int):
    """For BEGIN_DESPITE_DECLINE: an acceptance the old hub signs itself, naming its own external sender."""
    from ..mls.crypto import cipher_suite
    from ..room.transfer import provider_uri
    from ..wire.hub_transfer import HubTransferAcceptTBS, sign_hub_transfer_acceptance
    from ..wire.identity import IdentifierUri

    content = HubTransferAcceptTBS(
        room_id=IdentifierUri(uri=room_id.encode()), group_id=room.group_id, transfer_id=transfer_id,
        generation=request.content.generation + 1, old_hub=provider_uri(provider.domain),
        new_hub=provider_uri(target), not_after=not_after, new_hub_sender=provider.identity.external_sender,
    )
    return sign_hub_transfer_acceptance(cipher_suite(room.view.suite.suite_id), provider.identity.signature_priv, content)


def _refuse_adds(applied) -> None:
    """window-refuses-adds: refuse the commit (notAllowed) when it carries an Add."""
    from ..room.hub_records import _not_allowed
    from ..room.policy import Refusal
    from ..wire.mls import ProposalType

    if any(e.proposal.proposal_type == ProposalType.add for e in applied):
        raise _not_allowed(Refusal("an Add during the transfer window", "EXT-HUBXFER-WINDOW-NORMAL"))
