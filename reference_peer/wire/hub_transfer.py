"""The project's hub-transfer extension (`mimi-hub-transfer`, version 01): wire structs, code
points and signatures (docs/extensions/hub-transfer.md §3-§6, §11).

Names are the document's own, so error paths read like it (``HubData.request.content.target``).
RFC 9420 objects inside these structs are those of :mod:`reference_peer.wire.mls`, the -06 ones
those of :mod:`reference_peer.wire.mimi`. Every code point is provisional and private-use.

Readings where the document leaves a choice:

- ``opaque error_description<V>`` and ``opaque reason<V>`` are "UTF-8, for logs only": kept as
  bytes (as mimi.py keeps opaque-as-written text), so log text never makes a message undecodable.
- ``HubData.last_transfer_id`` is "0 or 16 octets": a validity rule (:func:`hub_data_problems`),
  not a wire rule; the fixed ``transfer_id[16]`` fields are enforced by the codec.
- ``reserved(0)`` of ``HubState`` and ``HubTransferMessageType`` decodes with no select arm, as
  every reserved enum value does in the other wire modules; refusing it is the receiver's job.
- ``SafeSignWithLabel`` is draft-ietf-mls-extensions-09 §4.3 for the 16-bit ComponentID the suite
  reads (AMB-MLS-EXT-CODEPOINTS); for the 32-bit 0x8000F0A9 of §3.2 it is the editor's-copy
  construction. See :func:`safe_sign_with_label`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from .codec import (
    DecodeError,
    Enum8,
    Scope,
    Struct,
    case,
    encode_value,
    fixed,
    opaque,
    optional,
    uint16,
    uint32,
    uint64,
    vector,
    wire,
)
from .identity import IdentifierUri, MimiUri
from .mimi import FanoutMessage, PendingProposal
from .mls import AppDataDictionary, ExternalSender, GroupInfo
from .ratchet_tree_options import RatchetTreeOption

# --------------------------------------------------------------------------------------------
# §3 Code points, endpoint, media type, labels

CAP_TRANSFER_HUB = 0xF0A8  # §3.1 canTransferHub (MIMI Role Capabilities, private use)
MIMI_HUB_COMPONENT_ID = 0xF0A9  # §3.2 mimi_hub, in the uint16 ComponentID the suite reads
MIMI_HUB_COMPONENT_ID_32 = 0x8000F0A9  # §3.2 the same component for a SUT on 32-bit ComponentIDs
DIRECTORY_KEY = "hubTransfer"  # §3.3 the directory entry: POST /hubTransfer/{roomId}
HUB_REDIRECT_MEDIA_TYPE = "application/vnd.mimi-conformance.hub-redirect"  # §3.4, with HTTP 421
TRANSFER_ID_LENGTH = 16

# §3.5 signature labels: RFC 9420 SignWithLabel for server keys ...
PREPARE_LABEL = "HubTransferPrepareTBS"
ACCEPT_LABEL = "HubTransferAcceptTBS"
HANDOFF_LABEL = "HubHandoffTBS"
ABORT_LABEL = "HubTransferAbortTBS"
# ... and SafeSignWithLabel(mimi_hub, ...) for the initiator's leaf key.
REQUEST_LABEL = "HubTransferRequestTBS"


# --------------------------------------------------------------------------------------------
# §5.1 The initiator's request


class HubTransferRequestTBS(Struct):
    """§5.1 HubTransferRequestTBS: what the initiator's client signs."""

    room_id: IdentifierUri = wire(IdentifierUri)
    group_id: bytes = wire(opaque)
    target: IdentifierUri = wire(IdentifierUri)  # provider URI of the proposed new hub
    generation: int = wire(uint32)  # the current HubData.generation (0 if absent)
    not_after: int = wire(uint64)  # ms
    initiator: IdentifierUri = wire(IdentifierUri)
    initiator_leaf_index: int = wire(uint32)


class HubTransferRequest(Struct):
    """§5.1 HubTransferRequest; signature = SafeSignWithLabel(0xF0A9, leaf key, "HubTransferRequestTBS", content)."""

    content: HubTransferRequestTBS = wire(HubTransferRequestTBS)
    signature: bytes = wire(opaque)


# --------------------------------------------------------------------------------------------
# §5.2 Prepare and accept (hub to hub)


class HubTransferPrepareTBS(Struct):
    """§5.2 HubTransferPrepareTBS."""

    request: HubTransferRequest = wire(HubTransferRequest)
    transfer_id: bytes = wire(fixed(TRANSFER_ID_LENGTH))
    cipher_suite: int = wire(uint16)
    old_hub_sender: ExternalSender = wire(ExternalSender)  # A's entry in external_senders
    group_info: GroupInfo = wire(GroupInfo)  # current epoch, without ratchet_tree
    ratchet_tree_option: RatchetTreeOption = wire(RatchetTreeOption)  # representation full
    requested_not_after: int = wire(uint64)  # ms; latest cut-over deadline A proposes


class HubTransferPrepare(Struct):
    """§5.2 HubTransferPrepare; signature = SignWithLabel(old_hub_sender.signature_key, "HubTransferPrepareTBS", content)."""

    content: HubTransferPrepareTBS = wire(HubTransferPrepareTBS)
    signature: bytes = wire(opaque)


class HubTransferAcceptTBS(Struct):
    """§5.2 HubTransferAcceptTBS."""

    room_id: IdentifierUri = wire(IdentifierUri)
    group_id: bytes = wire(opaque)
    transfer_id: bytes = wire(fixed(TRANSFER_ID_LENGTH))
    generation: int = wire(uint32)  # of the begin update: request generation + 1
    old_hub: IdentifierUri = wire(IdentifierUri)
    new_hub: IdentifierUri = wire(IdentifierUri)
    not_after: int = wire(uint64)  # ms; <= requested_not_after
    new_hub_sender: ExternalSender = wire(ExternalSender)  # B's signing key and a credential naming B


class HubTransferAcceptance(Struct):
    """§5.2 HubTransferAcceptance; signature = SignWithLabel(content.new_hub_sender.signature_key, "HubTransferAcceptTBS", content)."""

    content: HubTransferAcceptTBS = wire(HubTransferAcceptTBS)
    signature: bytes = wire(opaque)


# --------------------------------------------------------------------------------------------
# §4.1 The hub component


class HubState(Enum8):
    """§4.1 HubState."""

    reserved = 0
    stable = 1
    transferring = 2


_STABLE = case("state", HubState.stable)
_TRANSFERRING = case("state", HubState.transferring)


class HubData(Struct):
    """§4.1 HubData: the ``mimi_hub`` GroupContext component (0xF0A9) and its HubUpdate."""

    room_id: IdentifierUri = wire(IdentifierUri)  # never changes
    hub: IdentifierUri = wire(IdentifierUri)  # provider URI of the room's hub
    generation: int = wire(uint32)  # +1 on every committed change of this component
    state: HubState = wire(HubState)
    previous_hub: IdentifierUri | None = wire(optional(IdentifierUri), when=_STABLE)
    last_transfer_id: bytes = wire(opaque, when=_STABLE)  # 0 or 16 octets
    target: IdentifierUri = wire(IdentifierUri, when=_TRANSFERRING)
    transfer_id: bytes = wire(fixed(TRANSFER_ID_LENGTH), when=_TRANSFERRING)
    not_after: int = wire(uint64, when=_TRANSFERRING)  # ms; cut-over deadline, from the acceptance
    request: HubTransferRequest = wire(HubTransferRequest, when=_TRANSFERRING)
    acceptance: HubTransferAcceptance = wire(HubTransferAcceptance, when=_TRANSFERRING)


# §4.1: the AppDataUpdate ``update`` for mimi_hub replaces the whole value.
HubUpdate = HubData


# --------------------------------------------------------------------------------------------
# §6.4 Handoff


class KeyPackageRoute(Struct):
    """§6.4 KeyPackageRoute: one unexpired Welcome routing entry (-06 §4.3.1)."""

    kp_ref: bytes = wire(opaque)  # a KeyPackageRef A claimed for this room
    provider: IdentifierUri = wire(IdentifierUri)  # provider URI the KeyPackage came from
    not_after: int = wire(uint64)  # the KeyPackage's leaf_node lifetime not_after


class UndeliveredFanout(Struct):
    """§6.4 UndeliveredFanout: one destination's backlog, in fan-out order, bytes unchanged."""

    destination: IdentifierUri = wire(IdentifierUri)
    messages: list[FanoutMessage] = wire(vector(FanoutMessage))


class HubHandoffTBS(Struct):
    """§6.4 HubHandoffTBS."""

    room_id: IdentifierUri = wire(IdentifierUri)
    group_id: bytes = wire(opaque)
    transfer_id: bytes = wire(fixed(TRANSFER_ID_LENGTH))
    generation: int = wire(uint32)  # of the committed cut-over HubData
    cutover_epoch: int = wire(uint64)  # E_c
    old_hub: IdentifierUri = wire(IdentifierUri)
    new_hub: IdentifierUri = wire(IdentifierUri)
    group_info: GroupInfo = wire(GroupInfo)  # epoch E_c, without ratchet_tree
    ratchet_tree_option: RatchetTreeOption = wire(RatchetTreeOption)  # representation full
    pending_proposals: list[PendingProposal] = wire(vector(PendingProposal))  # valid in E_c
    routes: list[KeyPackageRoute] = wire(vector(KeyPackageRoute))
    undelivered: list[UndeliveredFanout] = wire(vector(UndeliveredFanout))
    last_accepted_timestamp: int = wire(uint64)
    handoff_extensions: AppDataDictionary = wire(AppDataDictionary)  # empty in version 01


class HubHandoff(Struct):
    """§6.4 HubHandoff; signature = SignWithLabel(A's external_senders key, "HubHandoffTBS", content)."""

    content: HubHandoffTBS = wire(HubHandoffTBS)
    signature: bytes = wire(opaque)


# --------------------------------------------------------------------------------------------
# §11 Abort


class HubTransferAbortTBS(Struct):
    """§11 HubTransferAbortTBS."""

    room_id: IdentifierUri = wire(IdentifierUri)
    transfer_id: bytes = wire(fixed(TRANSFER_ID_LENGTH))
    reason: bytes = wire(opaque)  # UTF-8, for logs only


class HubTransferAbort(Struct):
    """§11 HubTransferAbort; signature = SignWithLabel(A's external_senders key, "HubTransferAbortTBS", content)."""

    content: HubTransferAbortTBS = wire(HubTransferAbortTBS)
    signature: bytes = wire(opaque)


# --------------------------------------------------------------------------------------------
# §6.1 Messages on the hubTransfer endpoint


class HubTransferMessageType(Enum8):
    """§6.1 HubTransferMessageType."""

    reserved = 0
    request = 1
    prepare = 2
    handoff = 3
    abort = 4


class HubTransferMessage(Struct):
    """§6.1 HubTransferMessage: the body of POST /hubTransfer/{roomId}."""

    msg_type: HubTransferMessageType = wire(HubTransferMessageType)
    request: HubTransferRequest = wire(HubTransferRequest, when=case("msg_type", HubTransferMessageType.request))
    prepare: HubTransferPrepare = wire(HubTransferPrepare, when=case("msg_type", HubTransferMessageType.prepare))
    handoff: HubHandoff = wire(HubHandoff, when=case("msg_type", HubTransferMessageType.handoff))
    abort: HubTransferAbort = wire(HubTransferAbort, when=case("msg_type", HubTransferMessageType.abort))


class HubTransferCode(Enum8):
    """§6.1 HubTransferCode."""

    accepted = 0
    declined = 1
    notAllowed = 2
    noSuchRoom = 3
    unknownTransfer = 4
    staleGeneration = 5
    wrongEpoch = 6
    replayed = 7
    badSignature = 8
    notHub = 9
    busy = 10


def _type_and_code(scope: Scope) -> tuple[object, object]:
    """HubTransferResponse nests select(code) inside select(msg_type): both read together."""
    return scope.get("msg_type"), scope.get("code")


class HubTransferResponse(Struct):
    """§6.1 HubTransferResponse: the body of every decodable hubTransfer answer (HTTP 200)."""

    msg_type: HubTransferMessageType = wire(HubTransferMessageType)  # echoes the request
    code: HubTransferCode = wire(HubTransferCode)
    error_description: bytes = wire(opaque)  # UTF-8, for logs only
    transfer_id: bytes = wire(
        fixed(TRANSFER_ID_LENGTH),
        when=case(_type_and_code, (HubTransferMessageType.request, HubTransferCode.accepted)),
    )
    acceptance: HubTransferAcceptance = wire(
        HubTransferAcceptance,
        when=case(_type_and_code, (HubTransferMessageType.prepare, HubTransferCode.accepted)),
    )


# --------------------------------------------------------------------------------------------
# §3.4 The redirect answer


class HubRedirect(Struct):
    """§3.4 HubRedirect: the body of a 421 with media type HUB_REDIRECT_MEDIA_TYPE."""

    room_id: IdentifierUri = wire(IdentifierUri)  # the room ID of the refused request
    hub: IdentifierUri = wire(IdentifierUri)  # provider URI of the hub to use instead
    generation: int = wire(uint32)  # HubData.generation of the component that names that hub
    epoch: int = wire(uint64)  # the cut-over epoch (old hub) or the current epoch (target)


def read_hub_redirect(
    content_type: str | None, body: bytes, room_id: IdentifierUri | MimiUri | str
) -> HubRedirect | None:
    """§3.4: the HubRedirect of a 421 answer, or None when the 421 keeps its plain HTTP meaning.

    A redirect needs both the media type (parameters and case ignored) and a body that decodes
    strictly with ``room_id`` equal to the requested room, because HTTP/2 also sends bare 421s.
    """
    if content_type is None or content_type.split(";", 1)[0].strip().lower() != HUB_REDIRECT_MEDIA_TYPE:
        return None
    try:
        redirect = HubRedirect.decode(body)
    except DecodeError:
        return None
    return redirect if bytes(redirect.room_id.uri) == bytes(_identifier(room_id).uri) else None


# --------------------------------------------------------------------------------------------
# §4.1 Convenience: the component's value and its default


def _identifier(uri: IdentifierUri | MimiUri | str) -> IdentifierUri:
    if isinstance(uri, IdentifierUri):
        return uri
    return IdentifierUri.from_uri(uri)


def initial_hub_data(
    room_id: IdentifierUri | MimiUri | str, hub_provider_uri: IdentifierUri | MimiUri | str
) -> HubData:
    """§4.1 the component a hub puts in every room it creates (and the value of an absent one)."""
    return HubData(
        room_id=_identifier(room_id),
        hub=_identifier(hub_provider_uri),
        generation=0,
        state=HubState.stable,
        previous_hub=None,
        last_transfer_id=b"",
    )


def read_hub_data(
    app_data_dictionary: AppDataDictionary | Mapping[int, bytes] | None,
    room_id: IdentifierUri | MimiUri | str,
    *,
    component_id: int = MIMI_HUB_COMPONENT_ID,
) -> HubData:
    """The committed ``mimi_hub`` value, strictly decoded, or §4.1's default when it is absent:
    ``room_id`` and, as ``hub``, the provider URI of the room ID's authority.

    Takes the GroupContext's AppDataDictionary or a ``{component_id: data}`` mapping (as
    ``PublicGroup.app_data()`` gives). Raises :class:`DecodeError` for a malformed value or a
    dictionary with more than one entry for the component.
    """
    if isinstance(app_data_dictionary, AppDataDictionary):
        entries = [c.data for c in app_data_dictionary.component_data if c.component_id == component_id]
        if len(entries) > 1:
            raise DecodeError(f"{len(entries)} app_data_dictionary entries for component 0x{component_id:04x}")
        data = entries[0] if entries else None
    elif app_data_dictionary is not None:
        data = app_data_dictionary.get(component_id)
    else:
        data = None
    if data is not None:
        return HubData.decode(data)
    room = _identifier(room_id)
    authority = MimiUri.for_provider(room.parsed().domain)
    return initial_hub_data(room, authority)


def hub_data_problems(value: HubData) -> list[str]:
    """Shape rules of §4.1 that the wire layout cannot carry (empty when the value is well formed):
    a known state, and a ``last_transfer_id`` of 0 or 16 octets. The transition rules of §4.2
    depend on the group and belong to the room logic."""
    problems = []
    if value.state not in (HubState.stable, HubState.transferring):
        problems.append(f"state {int(value.state)} is neither stable nor transferring")
    if value.state == HubState.stable and len(value.last_transfer_id) not in (0, TRANSFER_ID_LENGTH):
        problems.append(f"last_transfer_id has {len(value.last_transfer_id)} octets, not 0 or {TRANSFER_ID_LENGTH}")
    return problems


# --------------------------------------------------------------------------------------------
# §3.5 Signatures


class LabelSigner(Protocol):
    """What the helpers need of a cipher suite: ``reference_peer.mls.crypto.CipherSuite`` (kept as
    a protocol so that the wire layer does not import the MLS layer)."""

    def sign_with_label(self, private: bytes, label: bytes | str, content: bytes) -> bytes: ...

    def verify_with_label(self, public: bytes, label: bytes | str, content: bytes, signature: bytes) -> bool: ...


_COMPONENT_BASE_LABEL = b"MLS Component"
_EDITORS_COPY_LABEL = "ComponentOperationLabel"


def component_operation_label(component_id: int, label: bytes | str) -> bytes:
    """mls-extensions-09 §4.1 ComponentOperationLabel
    ``{opaque base_label<V> = "MLS Component"; uint16 component_id; opaque label<V>}``, encoded."""
    raw = label.encode() if isinstance(label, str) else bytes(label)
    return encode_value(opaque, _COMPONENT_BASE_LABEL) + encode_value(uint16, component_id) + encode_value(opaque, raw)


def _safe_label_and_content(component_id: int, label: bytes | str, content: bytes) -> tuple[bytes | str, bytes]:
    """The (label, content) given to RFC 9420 SignWithLabel by SafeSignWithLabel.

    -09 §4.3: SignWithLabel(key, ComponentOperationLabel, Content). A ComponentID above 16 bits
    can only come from the editor's copy with ``uint32 ComponentID`` (the 0x8000F0A9 of §3.2),
    whose SafeSignWithLabel is SignWithLabel(key, "ComponentOperationLabel",
    ``{opaque label<V> = Label; uint32 component_id; opaque context<V> = Content}``).
    """
    if component_id <= 0xFFFF:
        return component_operation_label(component_id, label), bytes(content)
    raw = label.encode() if isinstance(label, str) else bytes(label)
    wrapped = encode_value(opaque, raw) + encode_value(uint32, component_id) + encode_value(opaque, bytes(content))
    return _EDITORS_COPY_LABEL, wrapped


def safe_sign_with_label(
    suite: LabelSigner, signature_priv: bytes, component_id: int, label: bytes | str, content: bytes
) -> bytes:
    """draft-ietf-mls-extensions SafeSignWithLabel (see :func:`_safe_label_and_content` for the revision)."""
    safe_label, safe_content = _safe_label_and_content(component_id, label, content)
    return suite.sign_with_label(signature_priv, safe_label, safe_content)


def safe_verify_with_label(
    suite: LabelSigner, public_key: bytes, component_id: int, label: bytes | str, content: bytes, signature: bytes
) -> bool:
    """draft-ietf-mls-extensions SafeVerifyWithLabel."""
    safe_label, safe_content = _safe_label_and_content(component_id, label, content)
    return suite.verify_with_label(public_key, safe_label, safe_content, signature)


def sign_hub_transfer_request(
    suite: LabelSigner,
    signature_priv: bytes,
    content: HubTransferRequestTBS,
    *,
    component_id: int = MIMI_HUB_COMPONENT_ID,
) -> HubTransferRequest:
    """§5.1: signed by the initiator's leaf key with SafeSignWithLabel(mimi_hub, "HubTransferRequestTBS", ...)."""
    signature = safe_sign_with_label(suite, signature_priv, component_id, REQUEST_LABEL, content.encode())
    return HubTransferRequest(content=content, signature=signature)


def verify_hub_transfer_request(
    suite: LabelSigner, request: HubTransferRequest, public_key: bytes, *, component_id: int = MIMI_HUB_COMPONENT_ID
) -> bool:
    """§5.1: ``public_key`` is the signature key of the leaf at ``initiator_leaf_index``."""
    return safe_verify_with_label(
        suite, public_key, component_id, REQUEST_LABEL, request.content.encode(), request.signature
    )


def sign_hub_transfer_prepare(
    suite: LabelSigner, signature_priv: bytes, content: HubTransferPrepareTBS
) -> HubTransferPrepare:
    """§5.2: signed by A's external_senders key (``content.old_hub_sender``)."""
    return HubTransferPrepare(
        content=content, signature=suite.sign_with_label(signature_priv, PREPARE_LABEL, content.encode())
    )


def verify_hub_transfer_prepare(suite: LabelSigner, prepare: HubTransferPrepare, public_key: bytes) -> bool:
    """§5.2: ``public_key`` is ``old_hub_sender.signature_key`` once that entry is known to be in
    the GroupInfo's external_senders and to name A (the caller's check)."""
    return suite.verify_with_label(public_key, PREPARE_LABEL, prepare.content.encode(), prepare.signature)


def sign_hub_transfer_acceptance(
    suite: LabelSigner, signature_priv: bytes, content: HubTransferAcceptTBS
) -> HubTransferAcceptance:
    """§5.2: signed by B with the key of ``content.new_hub_sender``."""
    return HubTransferAcceptance(
        content=content, signature=suite.sign_with_label(signature_priv, ACCEPT_LABEL, content.encode())
    )


def verify_hub_transfer_acceptance(suite: LabelSigner, acceptance: HubTransferAcceptance, public_key: bytes) -> bool:
    """§5.2, §4.2: ``public_key`` is ``acceptance.content.new_hub_sender.signature_key`` (the
    appended external_senders entry's key when a begin commit is checked)."""
    return suite.verify_with_label(public_key, ACCEPT_LABEL, acceptance.content.encode(), acceptance.signature)


def sign_hub_handoff(suite: LabelSigner, signature_priv: bytes, content: HubHandoffTBS) -> HubHandoff:
    """§6.4: signed by A's external_senders key."""
    return HubHandoff(content=content, signature=suite.sign_with_label(signature_priv, HANDOFF_LABEL, content.encode()))


def verify_hub_handoff(suite: LabelSigner, handoff: HubHandoff, public_key: bytes) -> bool:
    """§6.4, §12: ``public_key`` is the old hub's external_senders key."""
    return suite.verify_with_label(public_key, HANDOFF_LABEL, handoff.content.encode(), handoff.signature)


def sign_hub_transfer_abort(
    suite: LabelSigner, signature_priv: bytes, content: HubTransferAbortTBS
) -> HubTransferAbort:
    """§11: signed by A's external_senders key."""
    return HubTransferAbort(
        content=content, signature=suite.sign_with_label(signature_priv, ABORT_LABEL, content.encode())
    )


def verify_hub_transfer_abort(suite: LabelSigner, abort: HubTransferAbort, public_key: bytes) -> bool:
    """§11: ``public_key`` is the current hub's external_senders key."""
    return suite.verify_with_label(public_key, ABORT_LABEL, abort.content.encode(), abort.signature)
