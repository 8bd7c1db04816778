"""Faults of the hub's acceptance of valid changes (checks: conformance/scenarios/test_hub_accepts_valid_changes.py):
a hub that refuses what the draft has it accept, so that the positive controls are seen to fail."""

from ..mls.group import AppliedProposal
from ..room.naming import domain_of_uri
from ..room.policy import PolicyError
from ..wire.mls import ProposalType
from .registry import define

AREA = "room-state"


def _refuse_public_handshake(message: object) -> None:
    raise PolicyError("a PublicMessage proposalOrCommit is not taken")


def _adds(applied: list[AppliedProposal]) -> bool:
    return any(entry.proposal.proposal_type == ProposalType.add for entry in applied)


def _refuse_every_add(room: object, sender_domain: str, applied: list[AppliedProposal]) -> None:
    if _adds(applied):
        raise PolicyError("a commit adding clients is not taken")


def _refuse_follower_adds(room: object, sender_domain: str, applied: list[AppliedProposal]) -> None:
    if _adds(applied) and sender_domain != domain_of_uri(room.room_uri):  # type: ignore[attr-defined]
        raise PolicyError("a commit adding clients from a follower provider's client is not taken")


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
