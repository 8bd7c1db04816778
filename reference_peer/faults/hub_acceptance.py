"""Faults of the hub's acceptance of valid changes (checks: conformance/scenarios/test_hub_accepts_valid_changes.py):
a hub that refuses what the draft has it accept, so that the positive controls are seen to fail; a hub that takes
on submitMessage a handshake it must refuse (check: conformance/scenarios/test_submit_framing.py); and a hub that
accepts a commit leaving it out of external_senders (check: conformance/scenarios/test_hub_in_external_senders.py)."""

from ..mls.group import AppliedProposal
from ..room.naming import domain_of_uri
from ..room.participants import ChangeKind, ParticipantChange
from ..room.policy import PolicyError
from ..wire.mls import ContentType, ProposalType
from .registry import define

AREA = "room-state"


def _refuse_public_handshake(message: object) -> None:
    raise PolicyError("a PublicMessage proposalOrCommit is not taken")


def _adds(applied: list[AppliedProposal]) -> bool:
    return any(entry.proposal.proposal_type == ProposalType.add for entry in applied)


def _refuse_every_add(room: object, sender_domain: str, applied: list[AppliedProposal]) -> None:
    if _adds(applied):
        raise PolicyError("a commit adding clients is not taken")


def _refuse_adds_to_dependent_rooms(room: object, sender_domain: str, applied: list[AppliedProposal]) -> None:
    if _adds(applied) and room.parent_room is not None:  # type: ignore[attr-defined]
        raise PolicyError("a commit adding clients to a parent-dependent room is not taken")


def _refuse_follower_adds(room: object, sender_domain: str, applied: list[AppliedProposal]) -> None:
    if _adds(applied) and sender_domain != domain_of_uri(room.room_uri):  # type: ignore[attr-defined]
        raise PolicyError("a commit adding clients from a follower provider's client is not taken")


def _refuse_plist_additions(room: object, changes: list[ParticipantChange]) -> None:
    if any(change.kind is ChangeKind.add for change in changes):
        raise PolicyError("a participant-list addition is not taken")


def _refuse_groupinfo(room: object, info: object) -> None:
    raise PolicyError("the committer's GroupInfo is not taken")


def _keep_previous_groupinfo(room: object, info: object) -> None:
    previous = room.group_info  # type: ignore[attr-defined]  # still the epoch before the commit's
    if previous is not None:
        for field in ("group_context", "extensions", "confirmation_tag", "signer", "signature"):
            setattr(info, field, getattr(previous, field))


def _relabel_as_application(private_message: object) -> None:
    if private_message is not None:
        private_message.content_type = ContentType.application  # type: ignore[attr-defined]


REFUSE_PUBLIC_HANDSHAKES = define(
    "refuse-public-handshakes",
    area=AREA,
    requirements=["POLICY-CAP-ADD-PARTICIPANT-CLIENTS", "PROTO-UPDATE-HANDSHAKE-FRAMING"],
    description="the hub answers invalidProposal to every UpdateRequest whose proposalOrCommit is a PublicMessage "
    "(the framing -06 section 5.3 defines), its own clients' included: no valid change is ever accepted",
    hooks={"hub.update.take-up-public-handshake": _refuse_public_handshake},
)
REFUSE_VALID_ADDS = define(
    "refuse-valid-adds",
    area=AREA,
    requirements=["POLICY-CAP-ADD-PARTICIPANT-CLIENTS"],
    description="the hub answers invalidProposal to every valid commit adding clients (with its Welcome), even by "
    "a canAddParticipant holder, so no user is ever added to its rooms",
    hooks={"hub.commit.accept-authorized-add": _refuse_every_add},
)
REFUSE_FOLLOWER_ADDS = define(
    "refuse-follower-adds",
    area=AREA,
    requirements=["POLICY-CAP-ADD-PARTICIPANT-CLIENTS"],
    description="the hub answers invalidProposal to a valid commit adding clients when a follower provider's "
    "client (a canAddParticipant holder) sends it; its own clients' adds are accepted",
    hooks={"hub.commit.accept-authorized-add": _refuse_follower_adds},
)
REFUSE_ADDS_TO_DEPENDENT_ROOMS = define(
    "refuse-adds-to-dependent-rooms",
    area=AREA,
    requirements=["POLICY-CAP-ADD-PARTICIPANT-CLIENTS"],
    description="the hub answers invalidProposal to every valid commit adding clients to a parent-dependent room, "
    "even a canAddParticipant holder's add of a participant of the parent room, so the room admits nobody",
    hooks={"hub.commit.accept-authorized-add": _refuse_adds_to_dependent_rooms},
)
REFUSE_PLIST_ADDITIONS = define(
    "refuse-plist-additions",
    area=AREA,
    requirements=["POLICY-CAP-ADD-PARTICIPANT-CLIENTS"],
    description="the hub answers invalidProposal to every commit whose participant-list update adds a user, even "
    "one by a canAddParticipant holder, so no user (and none of its clients) is ever added to its rooms",
    hooks={"hub.commit.accept-authorized-plist-changes": _refuse_plist_additions},
)
REFUSE_COMMITTERS_GROUPINFO = define(
    "refuse-committers-groupinfo",
    area=AREA,
    requirements=["POLICY-CAP-ADD-PARTICIPANT-CLIENTS"],
    description="the hub answers invalidProposal to every commit once it has verified the committer's GroupInfo of "
    "the new epoch, so no valid commit (an authorized add among them) is ever accepted",
    hooks={"hub.commit.take-committers-groupinfo": _refuse_groupinfo},
)
KEEP_PREVIOUS_GROUPINFO = define(
    "keep-previous-groupinfo",
    area=AREA,
    requirements=["POLICY-OPS-COMMITTER-PROVIDES-GROUPINFO"],
    description="the hub accepts a valid commit but keeps the GroupInfo of the epoch before it instead of the "
    "committer's GroupInfo of the new epoch, so the GroupInfo it serves to new clients is stale "
    "(check: conformance/scenarios/test_committer_groupinfo.py)",
    hooks={"hub.commit.take-committers-groupinfo": _keep_previous_groupinfo},
)
SUBMIT_TAKES_PRIVATE_HANDSHAKES = define(
    "submit-takes-private-handshakes",
    area="fanout",
    requirements=["PROTO-SUBMIT-PRIVATEMESSAGE-ONLY"],
    description="the hub takes a submitMessage whose appMessage is a PrivateMessage of content type proposal or commit "
    "as if it were an application message: it answers accepted and fans it out",
    hooks={"hub.submit.application-privatemessage-only": _relabel_as_application},
)
ACCEPT_COMMIT_DROPPING_HUB_SENDER = define(
    "accept-commit-dropping-hub-sender",
    area=AREA,
    requirements=["PROTO-EXTSENDERS-HUB-CERT"],
    description="the hub accepts a member's commit whose GroupContextExtensions leave the hub's own entry out of "
    "external_senders",
    departs=("hub.commit.keep-hub-in-external-senders",),
)
