"""Room-level rules of the hub-transfer extension (docs/extensions/hub-transfer.md), no HTTP here.

* :class:`OutgoingTransfer`: the old hub's record of one transfer of a room it hosts (from the
  acceptance to the handoff or the abort), kept on the :class:`~reference_peer.room.hub.HubRoom`.
* :class:`IncomingTransfer`: the target's record of a transfer it accepted (the public group state it
  tracks from the handshake fan-out, until it takes the room over or discards the transfer).
* small, named rule functions (one per rule of the document, so a fault can later switch one off):
  :func:`verify_request`, :func:`begin_hub_data`, :func:`cutover_hub_data`, :func:`abort_hub_data`,
  :func:`hub_of_record`.
"""

from __future__ import annotations

import dataclasses

from ..mls.crypto import cipher_suite
from ..mls.leaf import leaf_app_components
from ..overrides import NO_OVERRIDES, Overrides, step
from ..wire.codec import DecodeError, EncodeError
from ..wire.hub_transfer import (
    CAP_TRANSFER_HUB,
    MIMI_HUB_COMPONENT_ID,
    HubData,
    HubState,
    HubTransferAcceptance,
    HubTransferCode,
    HubTransferRequest,
    read_hub_data,
    verify_hub_transfer_request,
)
from ..wire.identity import IdentifierUri, MimiUri
from ..wire.mimi import COMPONENT_PARTICIPANT_LIST
from ..wire.mls import ExternalSender
from ..wire.room_policy import ROLE_INDEX_NON_PARTICIPANT, Bool
from .naming import domain_of_uri, user_of_credential

# Phases of an outgoing transfer (old hub).
BEGUN = "begun"  # begin proposals fanned out, begin commit not yet accepted
BEGIN_COMMITTED = "begin-committed"  # E_b exists; waiting for its delivery before the cut-over
CUTOVER_PROPOSED = "cutover-proposed"
MOVED = "moved"  # cut-over commit accepted: the room belongs to the new hub
HANDED_OFF = "handed-off"  # the new hub accepted the handoff
ABORT_PROPOSED = "abort-proposed"
ABORTED = "aborted"
WINDOW = (BEGUN, BEGIN_COMMITTED, CUTOVER_PROPOSED, ABORT_PROPOSED)


def provider_uri(domain: str) -> IdentifierUri:
    return IdentifierUri.from_uri(MimiUri.for_provider(domain))


@dataclasses.dataclass
class OutgoingTransfer:
    """The old hub's state of one transfer."""

    transfer_id: bytes
    target: str  # the new hub's domain
    request: HubTransferRequest
    acceptance: HubTransferAcceptance
    not_after: int  # ms
    phase: str = BEGUN
    begin_epoch: int | None = None
    begin_watermark: int = 0  # outbox ids above this were queued after the begin proposals
    begin_upto: int = 0  # outbox ids up to this carry the fan-out up to the begin commit
    cutover_generation: int | None = None
    cutover_epoch: int | None = None
    handoff: bytes | None = None  # the encoded HubTransferMessage, sent byte-identical on every retry
    handoff_attempts: int = 0
    next_handoff_at: float = 0.0
    handoff_status: str = ""
    abort_sent: bool = False

    @property
    def in_window(self) -> bool:
        return self.phase in WINDOW


@dataclasses.dataclass
class IncomingTransfer:
    """The target's state of one accepted transfer."""

    room_id: str
    transfer_id: bytes
    old_hub: str  # domain
    group_id: bytes
    old_hub_sender: ExternalSender
    acceptance: HubTransferAcceptance
    not_after: int  # ms
    view: object | None = None  # the tracked HubView (public state from the prepare on), None if lost
    state: str = "accepted"  # accepted | handed-over | discarded
    handoff: bytes | None = None  # the accepted handoff message, for byte-identical repeats
    cutover_seen: bool = False
    lost: str = ""  # why the tracked view could not follow the fan-out (the handoff's GroupInfo is then used)


# -- rules ------------------------------------------------------------------------------------------


# The named steps of the section 5.1 test (reference_peer.overrides); the caller passes its peer's overrides.
DEPENDENT_ROOM_STAYS = step(
    "transfer.verify.dependent-room-stays", "EXT-HUBXFER-PARENT-DEPENDENT",
    summary="a transfer request for a parent-dependent room is refused (notAllowed)",
)
PARENT_ROOM_STAYS = step(
    "transfer.verify.parent-room-stays", "EXT-HUBXFER-PARENT-DEPENDENT",
    summary="a transfer request for a room that has parent-dependent rooms on its hub is refused (notAllowed)",
)
INITIATOR_LEAF_CREDENTIAL = step(
    "transfer.verify.initiator-leaf-credential", "EXT-HUBXFER-CAP-REQUIRED",
    summary="a transfer request whose initiator_leaf_index leaf holds no credential of the initiator does not "
    "verify (notAllowed): the signing leaf's user, not the named one, is the one whose role counts",
)
REQUEST_SIGNATURE = step(
    "transfer.verify.request-signature", "EXT-HUBXFER-CAP-REQUIRED", "EXT-HUBXFER-REQUEST-REFUSED",
    summary="a transfer request whose signature does not verify with the initiator_leaf_index leaf's signature key "
    "does not verify (notAllowed)",
)
REQUEST_NAMES_ITS_GROUP = step(
    "transfer.verify.request-names-its-group", "EXT-HUBXFER-CAP-REQUIRED", "EXT-HUBXFER-REQUEST-REFUSED",
    summary="a transfer request whose group_id is not the room's MLS group ID does not verify (notAllowed), "
    "even when its signature verifies",
)
VALID_REQUEST_ACCEPTED = step(
    "transfer.verify.valid-request-accepted", "EXT-HUBXFER-BEGIN-PROPOSALS",
    summary="a transfer request that verifies and breaks no other rule of section 5.1 is accepted (the hub goes on "
    "to the prepare and, with the target's acceptance, the begin proposals)",
)
ALL_MEMBERS_SUPPORT = step(
    "transfer.verify.all-members-support", "EXT-HUBXFER-ALL-MEMBERS-SUPPORT",
    summary="a transfer request is refused (notAllowed) while a member's LeafNode does not list mimi_hub in "
    "its app_components",
)


def hub_of_record(app_data: dict[int, bytes] | None, room_id: str) -> HubData | None:
    """The committed mimi_hub component (section 7), or None when it is absent or unreadable (the room
    ID's authority is then the hub)."""
    if not app_data or MIMI_HUB_COMPONENT_ID not in app_data:
        return None
    try:
        return read_hub_data(app_data, room_id)
    except (DecodeError, EncodeError, ValueError):
        return None


def hub_domain(data: HubData) -> str | None:
    return domain_of_uri(bytes(data.hub.uri))


def current_hub_data(app_data: dict[int, bytes], room_id: str) -> HubData:
    """The component, or its section 4.1 default when absent."""
    return read_hub_data(app_data, room_id)


def dependent_rooms(room_uri: str, hosted) -> list[str]:
    """The parent-dependent rooms of ``room_uri`` among ``hosted`` (room ID -> HubRoom, one provider's)."""
    return sorted(r for r, room in hosted.items() if getattr(room, "parent_room", None) == room_uri)


def verify_request(view, room_uri: str, request: HubTransferRequest, now: int, *, hub: str,
                   dependents: list[str] | tuple = (), overrides: Overrides = NO_OVERRIDES,
                   ) -> tuple[HubTransferCode, str]:
    """Section 5.1 in the epoch of ``view`` (a HubView of the room whose hub is ``hub``): (accepted, "")
    or the refusal code and why. Used by the hub on a request and by the target on a prepare.
    ``dependents``: the room's parent-dependent rooms the hub hosts (the hub passes them).
    ``overrides``: the verifying peer's."""
    from . import participants as plist_mod
    from .policy import PolicyError, RoomPolicy

    content = request.content
    try:
        current = current_hub_data(view.app_data(), room_uri)
        roles = plist_mod.roles_by_user(plist_mod.decode_list(view.app_data().get(int(COMPONENT_PARTICIPANT_LIST))))
        policy = RoomPolicy.from_components(view.app_data())
    except (DecodeError, EncodeError, ValueError, PolicyError) as exc:
        return HubTransferCode.notAllowed, f"unreadable room state: {exc}"
    if bytes(content.room_id.uri) != room_uri.encode() or (bytes(content.group_id) != bytes(view.group_id)
                                                           and not overrides.departs(REQUEST_NAMES_ITS_GROUP)):
        return HubTransferCode.notAllowed, "the request names another room or group"
    if current.state != HubState.stable:
        return HubTransferCode.busy, "a transfer of the room is in its window [EXT-HUBXFER-ONE-AT-A-TIME]"
    if content.generation != current.generation:
        return HubTransferCode.staleGeneration, f"generation {content.generation}, the room is at {current.generation}"
    if content.not_after < now:
        return HubTransferCode.staleGeneration, "the request has expired"
    target = domain_of_uri(bytes(content.target.uri))
    if target is None or target == hub:
        return HubTransferCode.notAllowed, "the target is not another provider"
    leaf = view.tree.leaf(content.initiator_leaf_index)
    if leaf is None or (user_of_credential(leaf.credential, overrides) != bytes(content.initiator.uri)
                        and not overrides.departs(INITIATOR_LEAF_CREDENTIAL)):
        return HubTransferCode.notAllowed, "the initiator's leaf does not hold a credential of the initiator"
    if not verify_hub_transfer_request(cipher_suite(view.suite.suite_id), request, bytes(leaf.signature_key)) \
            and not overrides.departs(REQUEST_SIGNATURE):
        return HubTransferCode.notAllowed, "the request signature does not verify"
    role = roles.get(bytes(content.initiator.uri), ROLE_INDEX_NON_PARTICIPANT)
    if not policy.has(role, CAP_TRANSFER_HUB):  # type: ignore[arg-type]
        return HubTransferCode.notAllowed, f"role {role} lacks canTransferHub [EXT-HUBXFER-CAP-REQUIRED]"
    if policy.base.parent_dependant == Bool.true and not overrides.departs(DEPENDENT_ROOM_STAYS):
        return HubTransferCode.notAllowed, "a parent-dependent room cannot move [EXT-HUBXFER-PARENT-DEPENDENT]"
    if dependents and not overrides.departs(PARENT_ROOM_STAYS):
        return HubTransferCode.notAllowed, f"the room has dependent rooms {dependents} [EXT-HUBXFER-PARENT-DEPENDENT]"
    lacking = [i for i, leaf in view.members() if MIMI_HUB_COMPONENT_ID not in (leaf_app_components(leaf) or ())]
    if lacking and not overrides.departs(ALL_MEMBERS_SUPPORT):
        return HubTransferCode.notAllowed, (f"the LeafNodes of leaves {lacking} do not list mimi_hub in their "
                                            "app_components [EXT-HUBXFER-ALL-MEMBERS-SUPPORT]")
    if overrides.departs(VALID_REQUEST_ACCEPTED):
        return HubTransferCode.notAllowed, "refused although it verifies"
    return HubTransferCode.accepted, ""


def begin_hub_data(current: HubData, transfer: OutgoingTransfer) -> HubData:
    """Section 4.2 begin: stable(A) -> transferring(A, B), generation + 1 (EXT-HUBXFER-COMPONENT-GENERATION)."""
    return HubData(
        room_id=current.room_id,
        hub=current.hub,
        generation=current.generation + 1,
        state=HubState.transferring,
        target=provider_uri(transfer.target),
        transfer_id=transfer.transfer_id,
        not_after=transfer.not_after,
        request=transfer.request,
        acceptance=transfer.acceptance,
    )


def cutover_hub_data(current: HubData) -> HubData:
    """Section 4.2 cut-over: transferring(A, B) -> stable(hub = B, previous_hub = A), generation + 1
    (EXT-HUBXFER-COMPONENT-GENERATION)."""
    return HubData(
        room_id=current.room_id,
        hub=current.target,
        generation=current.generation + 1,
        state=HubState.stable,
        previous_hub=current.hub,
        last_transfer_id=bytes(current.transfer_id),
    )


def abort_hub_data(current: HubData) -> HubData:
    """Section 4.2 abort: transferring(A, B) -> stable(hub = A), previous_hub absent, generation + 1
    (EXT-HUBXFER-COMPONENT-GENERATION)."""
    return HubData(
        room_id=current.room_id,
        hub=current.hub,
        generation=current.generation + 1,
        state=HubState.stable,
        previous_hub=None,
        last_transfer_id=bytes(current.transfer_id),
    )


def sender_domain(sender: ExternalSender) -> str | None:
    return domain_of_uri(bytes(sender.credential.identity or b""))
