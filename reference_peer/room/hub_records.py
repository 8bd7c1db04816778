"""The records and answers the hub's rules share: the hub's identity, the fan-out plan, the pending
proposals, and the response builders (every refusal is an answer, never an exception)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from ..wire.identity import IdentifierUri
from ..wire.mimi import (
    FanoutMessage,
    GroupInfoCode,
    GroupInfoResponse,
    Protocol,
    SubmitMessageResponse,
    SubmitResponseCode,
    UpdateResponseCode,
    UpdateRoomResponse,
)
from ..wire.mls import ExternalSender
from .naming import domain_of_uri
from .policy import Refusal

MLS10 = {"protocol": Protocol.mls10}
# Room-policy-04 §5 (parent-dependent rooms): the rooms each provider hosts, by its domain, so that a
# dependent room can read its parent's participant list. Registered by the provider's control backend
# (ReferenceBackend); never persisted.
HOSTED_ROOMS: dict[str, dict] = {}
GROUPINFO_LABEL = "GroupInfo and ratchet_tree encryption"
# Leaf maps kept for recognising commits and proposals from removed clients (their stale epochs).
LEAF_HISTORY_EPOCHS = 16


@dataclasses.dataclass(frozen=True)
class HubIdentity:
    """The hub provider's name and its external-sender key (also the GroupInfoResponse signer)."""

    domain: str
    signature_priv: bytes
    external_sender: ExternalSender


@dataclasses.dataclass
class FanoutPlan:
    """What to send after an accepted request: per provider domain, FanoutMessages in order
    (PROTO-FANOUT-ORDERED). The hub's own domain appears like any other provider with participants."""

    deliveries: dict[str, list[FanoutMessage]] = dataclasses.field(default_factory=dict)

    def add(self, domain: str, message: FanoutMessage) -> None:
        self.deliveries.setdefault(domain, []).append(message)

    def domains(self) -> set[str]:
        return set(self.deliveries)

    def messages_for(self, domain: str) -> list[FanoutMessage]:
        return list(self.deliveries.get(domain, []))

    def body_for(self, domain: str) -> bytes:
        """The /notify body for one provider: the FanoutMessages concatenated (§5.5)."""
        return b"".join(m.encode() for m in self.deliveries.get(domain, []))


@dataclasses.dataclass
class PendingEntry:
    """A proposal the hub accepted in the current epoch (§5.6 PendingProposal)."""

    message: bytes
    ref: bytes
    accepted: int
    sender_user: bytes | None
    proposal_type: int
    required: bool = False  # the next commit must include it by reference
    why_required: str = ""


class _Refused(Exception):
    """Internal: carries the response to give."""

    def __init__(self, code: UpdateResponseCode, description: str, *, invalid: Iterable[bytes] = ()) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.invalid = list(invalid)


def _not_allowed(refusal: Refusal | str) -> _Refused:
    return _Refused(UpdateResponseCode.notAllowed, str(refusal))


def update_response(
    code: UpdateResponseCode, description: str = "", *, accepted: int = 0, epoch: int = 0, invalid: Iterable[bytes] = ()
) -> UpdateRoomResponse:
    fields: dict[str, object] = {"responseCode": code, "errorDescription": description}
    if code == UpdateResponseCode.success:
        fields["accepted_timestamp"] = accepted
    elif code == UpdateResponseCode.wrongEpoch:
        fields["currentEpoch"] = epoch
    elif code == UpdateResponseCode.invalidProposal:
        fields["invalidProposals"] = list(invalid)
    return UpdateRoomResponse(**fields)


def submit_response(code: SubmitResponseCode, *, accepted: int = 0, epoch: int = 0) -> SubmitMessageResponse:
    fields: dict[str, object] = {"protocol": Protocol.mls10, "statusCode": code}
    if code == SubmitResponseCode.accepted:
        fields.update(accepted_timestamp=accepted, frank=None)
    elif code == SubmitResponseCode.epochTooOld:
        fields["currentEpoch"] = epoch
    return SubmitMessageResponse(**fields)


def group_info_refusal(room_id: bytes, code: GroupInfoCode = GroupInfoCode.notAuthorized) -> GroupInfoResponse:
    """The answer for a requester who may not see the room, and for an unknown room (notAuthorized
    rather than noSuchRoom, so that room existence does not leak: PROTO-GROUPINFO-NO-SUCH-ROOM)."""
    return GroupInfoResponse(version=Protocol.mls10, room_id=bytes(room_id), status=code)


def sender_domain_of(uri: IdentifierUri) -> str | None:
    return domain_of_uri(bytes(uri.uri))
