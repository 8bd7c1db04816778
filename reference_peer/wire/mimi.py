"""draft-ietf-mimi-protocol-06 wire structs (§5.2–§5.9, §6.1, §7.5, §7.6) and component IDs (§10).

Field names are the draft's own (camelCase where it uses it) so that error paths read like the
draft: ``FanoutMessage.message.wire_format``. MLS objects inside them are the RFC 9420 structs of
:mod:`reference_peer.wire.mls`. Where the draft contradicts itself, the strict layout is one
reading and ``alt=`` declares the other, accepted only by tolerant decoding; the IDs name the
entries of docs/spec-ambiguities.md. Readings that change no byte carry the ID in a comment:

- AMB-STRING-TYPE: ``string`` is read as UTF-8 in ``opaque<V>`` (codec ``utf8``).
- AMB-ROOMID-TYPE: ``RoomId`` (never defined) is read as ``IdentifierUri``.
- AMB-IDENTIFIERURI-CASE: ``IdentifierURI`` in SubmitMessageRequest is ``IdentifierUri``.
- AMB-SUBMIT-SUCCESS-CASE: SubmitMessageResponse's ``case success`` is ``accepted(0)``.
- AMB-QUERYELEMENT-SELECT: QueryElement's ``select(type)`` is ``select(searchType)``.
- AMB-GROUPINFO-VERSION-FIELD: GroupInfoResponse(TBS) selects on ``protocol`` but names the
  field ``version``; the field keeps the name ``version`` and the select reads it.
- AMB-HANDSHAKE-SELECT / AMB-FANOUT-SELECT: the selects read the MLSMessage's framed content type
  (and ``welcome`` for an mls_welcome), see ``_handshake_content_type`` and ``_fanout_kind``.
- AMB-KEYMATERIAL-ROOMID-OPTIONAL: outside a room, ``KeyMaterialRequest.roomId`` is an empty uri.

Alternative layouts accepted by tolerant decoding (each recorded as a Leniency):

- AMB-PROTOCOL-CONTEXT: an explicit protocol octet in UpdateRequest and FanoutMessage.
- AMB-GROUPINFO-JOININGCODE: ``optional<opaque<V>>`` joiningCode in GroupInfoRequest and its TBS.
- AMB-ABUSE-REPORTINGUSER-OPTIONAL: ``optional<IdentifierUri>`` reportingUser in AbuseReport.
- AMB-FANOUT-SELECT: nothing after a FanoutMessage's message where the select on ``wire_format``,
  read literally, matches no case (no ``frank``, ``moreProposals`` or ``externalProposals``).

A /notify body is a sequence: :func:`decode_fanout_sequence_tolerant` reads it with one reading for
every FanoutMessage of the body (a SUT takes one reading), as the reference peers accept it.
"""

from __future__ import annotations

import enum

from .codec import (
    Decoded,
    DecodeError,
    Enum8,
    Implicit,
    Leniency,
    Scope,
    Struct,
    Utf8,
    case,
    encode_value,
    fixed,
    opaque,
    opaque_view,
    optional,
    uint16,
    uint32,
    uint64,
    utf8,
    vector,
    wire,
)
from .identity import IdentifierUri
from .mls import (
    AppDataDictionary,
    Capabilities,
    ContentType,
    Credential,
    ExternalSender,
    GroupInfo,
    HPKECiphertext,
    KeyPackage,
    MLSMessage,
    RequiredCapabilities,
    Welcome,
    WireFormat,
)
from .ratchet_tree_options import PartialGroupInfo, RatchetTreeOption

# --------------------------------------------------------------------------------------------
# Common (§5)


class Protocol(Enum8):
    """§5: ``enum { reserved(0), mls10(1), (255) } Protocol``."""

    reserved = 0
    mls10 = 1


class MimiComponentId(enum.IntEnum):
    """§10: MLS application component IDs registered by protocol-06 (names only; wire is uint16).

    §5.4.1 calls 0x0021 ``franking_agent`` while §10.2 registers it as ``franking_signature_key``
    (AMB-FRANKING-COMPONENT-NAME); both names map to the same value.
    """

    frank_aad = 0x0020
    franking_signature_key = 0x0021
    franking_agent = 0x0021
    participant_list = 0x0022
    room_metadata = 0x0023


COMPONENT_FRANK_AAD = MimiComponentId.frank_aad
COMPONENT_FRANKING_SIGNATURE_KEY = MimiComponentId.franking_signature_key
COMPONENT_PARTICIPANT_LIST = MimiComponentId.participant_list
COMPONENT_ROOM_METADATA = MimiComponentId.room_metadata


def _implicit_protocol() -> object:
    """The ``protocol`` that some structs select on without carrying it (AMB-PROTOCOL-CONTEXT)."""
    return wire(Implicit("protocol", Protocol), alt=(Protocol, "AMB-PROTOCOL-CONTEXT", "explicit protocol octet"))


def _mls10() -> object:
    return case("protocol", Protocol.mls10)


# --------------------------------------------------------------------------------------------
# §5.2 keyMaterial


class KeyMaterialUserCode(Enum8):
    """§5.2 KeyMaterialUserCode."""

    success = 0
    partialSuccess = 1
    incompatibleProtocol = 2
    noCompatibleMaterial = 3
    userUnknown = 4
    noConsent = 5
    noConsentForThisRoom = 6
    userDeleted = 7


class KeyMaterialClientCode(Enum8):
    """§5.2 KeyMaterialClientCode."""

    success = 0
    keyMaterialExhausted = 1
    nothingCompatible = 2


class KeyMaterialRequestTBS(Struct):
    """§5.2 KeyMaterialRequestTBS: the request without its signature."""

    protocol: Protocol = wire(Protocol)
    requestingUser: IdentifierUri = wire(IdentifierUri)
    targetUser: IdentifierUri = wire(IdentifierUri)
    roomId: IdentifierUri = wire(IdentifierUri)
    acceptableCiphersuites: list[int] = wire(vector(uint16), when=_mls10())
    requiredCapabilities: RequiredCapabilities = wire(RequiredCapabilities, when=_mls10())
    requesterSignatureKey: bytes = wire(opaque, when=_mls10())
    requesterCredential: Credential = wire(Credential, when=_mls10())


class KeyMaterialRequest(Struct):
    """§5.2 KeyMaterialRequest (POST /keyMaterial/{targetUser})."""

    protocol: Protocol = wire(Protocol)
    requestingUser: IdentifierUri = wire(IdentifierUri)
    targetUser: IdentifierUri = wire(IdentifierUri)
    roomId: IdentifierUri = wire(IdentifierUri)
    acceptableCiphersuites: list[int] = wire(vector(uint16), when=_mls10())
    requiredCapabilities: RequiredCapabilities = wire(RequiredCapabilities, when=_mls10())
    requesterSignatureKey: bytes = wire(opaque, when=_mls10())
    requesterCredential: Credential = wire(Credential, when=_mls10())
    key_material_request_signature: bytes = wire(opaque, when=_mls10())

    def tbs(self) -> KeyMaterialRequestTBS:
        """The signed part (§5.2: SignWithLabel(..., "KeyMaterialRequestTBS", ...))."""
        values = {name: getattr(self, name) for name, _ in KeyMaterialRequestTBS.__wire__.fields}
        return KeyMaterialRequestTBS(**values)


def _client_material(scope: Scope) -> tuple[object, object]:
    """ClientKeyMaterial nests select(clientStatus) in select(protocol); protocol comes from the
    enclosing KeyMaterialResponse (or the room's protocol when decoded alone)."""
    return scope.get("protocol"), scope.get("clientStatus")


class ClientKeyMaterial(Struct):
    """§5.2 ClientKeyMaterial (one per client of the target user)."""

    clientStatus: KeyMaterialClientCode = wire(KeyMaterialClientCode)
    clientUri: IdentifierUri = wire(IdentifierUri)
    keyPackage: KeyPackage = wire(
        KeyPackage, when=case(_client_material, (Protocol.mls10, KeyMaterialClientCode.success))
    )
    clientCapabilities: Capabilities | None = wire(
        optional(Capabilities), when=case(_client_material, (Protocol.mls10, KeyMaterialClientCode.nothingCompatible))
    )


class KeyMaterialResponse(Struct):
    """§5.2 KeyMaterialResponse."""

    protocol: Protocol = wire(Protocol)
    userStatus: KeyMaterialUserCode = wire(KeyMaterialUserCode)
    userUri: IdentifierUri = wire(IdentifierUri)
    clients: list[ClientKeyMaterial] = wire(vector(ClientKeyMaterial))


# --------------------------------------------------------------------------------------------
# §5.3 update


class GroupInfoRepresentation(Enum8):
    """§5.3 GroupInfoRepresentation."""

    reserved = 0
    full = 1
    partial = 2


class GroupInfoOption(Struct):
    """§5.3 GroupInfoOption: the full GroupInfo or the PartialGroupInfo of ratchet-tree-options."""

    representation: GroupInfoRepresentation = wire(GroupInfoRepresentation)
    groupInfo: GroupInfo = wire(GroupInfo, when=case("representation", GroupInfoRepresentation.full))
    partialGroupInfo: PartialGroupInfo = wire(
        PartialGroupInfo, when=case("representation", GroupInfoRepresentation.partial)
    )


def _handshake_content_type(scope: Scope) -> ContentType | None:
    """HandshakeBundle selects on ``proposalOrCommit.content.content_type``: read as the
    MLSMessage's framed content type (AMB-HANDSHAKE-SELECT)."""
    message = scope.get("proposalOrCommit")
    return message.content_type() if message is not None else None


_IS_COMMIT = case(_handshake_content_type, ContentType.commit)
_IS_PROPOSAL = case(_handshake_content_type, ContentType.proposal)


class HandshakeBundle(Struct):
    """§5.3 HandshakeBundle."""

    proposalOrCommit: MLSMessage = wire(MLSMessage)
    welcome: Welcome | None = wire(optional(Welcome), when=_IS_COMMIT)
    groupInfoOption: GroupInfoOption = wire(GroupInfoOption, when=_IS_COMMIT)
    ratchetTreeOption: RatchetTreeOption = wire(RatchetTreeOption, when=_IS_COMMIT)
    moreProposals: list[MLSMessage] = wire(vector(MLSMessage), when=_IS_PROPOSAL)


class UpdateRequest(Struct):
    """§5.3 UpdateRequest (POST /update/{roomId}); selects on ``room.protocol`` (AMB-PROTOCOL-CONTEXT)."""

    protocol: Protocol = _implicit_protocol()
    bundle: HandshakeBundle = wire(HandshakeBundle, when=_mls10())


class UpdateResponseCode(Enum8):
    """§5.3 UpdateResponseCode."""

    success = 0
    wrongEpoch = 1
    notAllowed = 2
    invalidProposal = 3


class UpdateRoomResponse(Struct):
    """§5.3 UpdateRoomResponse; ``string errorDescription`` is UTF-8 ``opaque<V>`` (AMB-STRING-TYPE)."""

    responseCode: UpdateResponseCode = wire(UpdateResponseCode)
    errorDescription: str = wire(utf8)
    accepted_timestamp: int = wire(uint64, when=case("responseCode", UpdateResponseCode.success))
    currentEpoch: int = wire(uint64, when=case("responseCode", UpdateResponseCode.wrongEpoch))
    # ProposalRef is RFC 9420's HashReference: opaque<V>.
    invalidProposals: list[bytes] = wire(vector(opaque), when=case("responseCode", UpdateResponseCode.invalidProposal))


# --------------------------------------------------------------------------------------------
# §5.4 submitMessage and §5.4.1 franking


class SubmitMessageRequest(Struct):
    """§5.4 SubmitMessageRequest (POST /submitMessage/{roomId})."""

    protocol: Protocol = wire(Protocol)
    appMessage: MLSMessage = wire(MLSMessage, when=_mls10())
    sendingUri: IdentifierUri = wire(IdentifierUri, when=_mls10())  # "IdentifierURI" (AMB-IDENTIFIERURI-CASE)


class SubmitResponseCode(Enum8):
    """§5.4 SubmitResponseCode."""

    accepted = 0
    notAllowed = 1
    epochTooOld = 2


class Frank(Struct):
    """§5.4 Frank."""

    server_frank: bytes = wire(fixed(32))
    franking_signature_ciphersuite: int = wire(uint16)
    franking_integrity_signature: bytes = wire(opaque)


def _submit_status(scope: Scope) -> object:
    return scope.get("statusCode")


class SubmitMessageResponse(Struct):
    """§5.4 SubmitMessageResponse; ``case success`` is ``accepted`` (AMB-SUBMIT-SUCCESS-CASE)."""

    protocol: Protocol = wire(Protocol)
    statusCode: SubmitResponseCode = wire(SubmitResponseCode, when=_mls10())
    accepted_timestamp: int = wire(uint64, when=case("statusCode", SubmitResponseCode.accepted))
    frank: Frank | None = wire(optional(Frank), when=case("statusCode", SubmitResponseCode.accepted))
    currentEpoch: int = wire(uint64, when=case("statusCode", SubmitResponseCode.epochTooOld))


class FrankAAD(Struct):
    """§5.4.1 FrankAAD: the frank_aad Safe AAD component (0x0020)."""

    franking_tag: bytes = wire(fixed(32))


class FrankingAgentData(Struct):
    """§5.4.1 FrankingAgentData: the franking_agent GroupContext component (0x0021)."""

    franking_signature_key: bytes = wire(opaque)
    credential: Credential = wire(Credential)


class ServerFrankingContext(Struct):
    """§5.4.1.2 ServerFrankingContext."""

    sender_uri: IdentifierUri = wire(IdentifierUri)
    room_uri: IdentifierUri = wire(IdentifierUri)
    accepted_timestamp: int = wire(uint64)


class FrankingIntegrityTBS(Struct):
    """§5.4.1.2 FrankingIntegrityTBS."""

    server_frank: bytes = wire(fixed(32))
    franking_signature_ciphersuite: int = wire(uint16)
    context: ServerFrankingContext = wire(ServerFrankingContext)


# --------------------------------------------------------------------------------------------
# §5.5 notify


def _fanout_kind(scope: Scope) -> str | None:
    """FanoutMessage selects on ``message.wire_format`` with cases application/welcome/proposal/
    commit: welcome for an mls_welcome, otherwise the framed content type (AMB-FANOUT-SELECT)."""
    message = scope.get("message")
    if message is None:
        return None
    if message.wire_format == _WELCOME:
        return "welcome"
    return _CONTENT_KIND.get(message.content_type())


# Module constants: enum member lookups are slow on this hot path (four selects per message).
_WELCOME = WireFormat.mls_welcome
_CONTENT_KIND = {member: member.name for member in ContentType}


_NO_ARM = "nothing after the message: the select on wire_format, read literally, matches no case (no {})"


class FanoutMessage(Struct):
    """§5.5 FanoutMessage (POST /notify/{roomId}, one or more concatenated)."""

    timestamp: int = wire(uint64)
    protocol: Protocol = _implicit_protocol()
    message: MLSMessage = wire(MLSMessage, when=_mls10())
    frank: Frank | None = wire(optional(Frank), when=case(_fanout_kind, "application"))
    ratchetTreeOption: RatchetTreeOption = wire(RatchetTreeOption, when=case(_fanout_kind, "welcome"))
    moreProposals: list[MLSMessage] = wire(vector(MLSMessage), when=case(_fanout_kind, "proposal"))
    externalProposals: list[MLSMessage] = wire(vector(MLSMessage), when=case(_fanout_kind, "commit"))


_ARM_FIELD = {"application": "frank", "proposal": "moreProposals", "commit": "externalProposals"}
_NO_ARM_CODEC: list = []  # the no-arm reading's struct, built on first use (kept out of the struct catalogue)


def _no_arm_codec():
    """AMB-FANOUT-SELECT's literal reading: nothing after a PublicMessage or PrivateMessage (no case of the
    select on ``wire_format`` matches it); a Welcome keeps its ratchetTreeOption."""
    if not _NO_ARM_CODEC:
        class FanoutMessageWithoutArm(Struct):
            timestamp: int = wire(uint64)
            protocol: Protocol = _implicit_protocol()
            message: MLSMessage = wire(MLSMessage, when=_mls10())
            ratchetTreeOption: RatchetTreeOption = wire(RatchetTreeOption, when=case(_fanout_kind, "welcome"))

        _NO_ARM_CODEC.append(FanoutMessageWithoutArm.__wire__)
    return _NO_ARM_CODEC[0]


def _as_fanout(value) -> tuple[FanoutMessage, Leniency | None]:
    """A FanoutMessageWithoutArm as the FanoutMessage the as-written layout encodes, and its leniency."""
    fanout = FanoutMessage(timestamp=value.timestamp, protocol=value.protocol, message=value.message,
                           ratchetTreeOption=value.ratchetTreeOption)
    kind = _fanout_kind_of(fanout)
    if kind == "proposal":
        fanout = fanout.replace(moreProposals=[])
    elif kind == "commit":
        fanout = fanout.replace(externalProposals=[])
    if kind not in _ARM_FIELD:
        return fanout, None
    return fanout, Leniency("AMB-FANOUT-SELECT", f"FanoutMessage.{_ARM_FIELD[kind]}", _NO_ARM.format(_ARM_FIELD[kind]))


def _fanout_readings() -> list[tuple[object, frozenset[int]]]:
    """(struct codec, forced alternatives) for each reading tolerant /notify decoding tries, in order:
    the explicit protocol octet, no arm, both."""
    explicit = frozenset(f.alt_id for _, f in FanoutMessage.__wire__.fields if f.alt is not None)
    no_arm = _no_arm_codec()
    both = frozenset(f.alt_id for _, f in no_arm.fields if f.alt is not None)
    return [(FanoutMessage.__wire__, explicit), (no_arm, frozenset()), (no_arm, both)]


def _fanout_kind_of(message: FanoutMessage) -> str | None:
    if message.message is None:
        return None
    if message.message.wire_format == _WELCOME:
        return "welcome"
    return _CONTENT_KIND.get(message.message.content_type())


def decode_fanout_sequence_tolerant(data: bytes | bytearray | memoryview, *, scope=None) -> Decoded:
    """A /notify body (one or more FanoutMessages) decoded as written, else with one accepted reading
    for the whole body (AMB-PROTOCOL-CONTEXT's explicit protocol octet, AMB-FANOUT-SELECT's no arm, or
    both): ``Decoded(messages, leniencies)``, each leniency once. The messages are those the as-written
    layout encodes (``encode()`` gives the reference bytes). Raises the as-written DecodeError when no
    reading fits."""
    try:
        return Decoded(FanoutMessage.decode_sequence(data, scope=scope), ())
    except DecodeError as first:
        from .codec import DEFAULT_SCOPE, _Ctx

        view = memoryview(data).toreadonly()
        for codec, forced in _fanout_readings():
            ctx = _Ctx(view, forced, dict(scope) if scope else DEFAULT_SCOPE)
            items: list[FanoutMessage] = []
            found: list[Leniency] = []
            try:
                while ctx.pos < len(view):
                    value = codec.decode(ctx)
                    if codec is not FanoutMessage.__wire__:
                        value, leniency = _as_fanout(value)
                        if leniency is not None:
                            found.append(leniency)
                    items.append(value)
            except DecodeError:
                continue
            if not items or (codec is not FanoutMessage.__wire__ and not found):
                continue
            leniencies: list[Leniency] = []
            for leniency in [*(lc._replace(path=lc.path.replace("WithoutArm", "")) for lc in ctx.leniencies), *found]:
                if leniency not in leniencies:
                    leniencies.append(leniency)
            return Decoded(items, tuple(leniencies))
        raise first from None


# --------------------------------------------------------------------------------------------
# §5.6 groupInfo


_JOINING_CODE_ALT = (
    optional(opaque),
    "AMB-GROUPINFO-JOININGCODE",
    "joiningCode as optional<opaque<V>> (the TBS as written)",
)


class GroupInfoRequestTBS(Struct):
    """§5.6 GroupInfoRequestTBS; joiningCode read as in the request, ``opaque<V>`` (AMB-GROUPINFO-JOININGCODE).

    As written the TBS has ``optional opaque joiningCode<V>``; :meth:`GroupInfoRequest.tbs_as_written`
    gives those bytes, for checking a signature made over that layout.
    """

    protocol: Protocol = wire(Protocol)
    cipher_suite: int = wire(uint16, when=_mls10())
    requestingSignatureKey: bytes = wire(opaque, when=_mls10())
    requestingCredential: Credential = wire(Credential, when=_mls10())
    groupInfoPublicKey: bytes = wire(opaque, when=_mls10())
    joiningCode: bytes | None = wire(opaque, when=_mls10(), alt=_JOINING_CODE_ALT)


class GroupInfoRequest(Struct):
    """§5.6 GroupInfoRequest (POST /groupInfo/{roomId})."""

    protocol: Protocol = wire(Protocol)
    cipher_suite: int = wire(uint16, when=_mls10())
    requestingSignatureKey: bytes = wire(opaque, when=_mls10())
    requestingCredential: Credential = wire(Credential, when=_mls10())
    groupInfoPublicKey: bytes = wire(opaque, when=_mls10())
    joiningCode: bytes | None = wire(opaque, when=_mls10(), alt=_JOINING_CODE_ALT)
    signature: bytes = wire(opaque, when=_mls10())

    def tbs(self) -> GroupInfoRequestTBS:
        """The signed part (§5.6: SignWithLabel(requestingSignatureKey, "GroupInfoRequestTBS", ...))."""
        values = {name: getattr(self, name) for name, _ in GroupInfoRequestTBS.__wire__.fields}
        return GroupInfoRequestTBS(**values)

    def tbs_as_written(self) -> bytes:
        """The TBS bytes with §5.6's ``optional opaque joiningCode<V>`` (absent when the code is empty)."""
        tbs = self.tbs()
        if tbs.protocol != Protocol.mls10:
            return tbs.encode()
        code = bytes(tbs.joiningCode or b"")
        head = tbs.replace(joiningCode=b"").encode()[:-1]  # everything before the empty joiningCode
        return head + (encode_value(optional(opaque), code or None))


class GroupInfoCode(Enum8):
    """§5.6 GroupInfoCode."""

    reserved = 0
    success = 1
    notAuthorized = 2
    noSuchRoom = 3


class PendingProposal(Struct):
    """§5.6 PendingProposal."""

    proposal: MLSMessage = wire(MLSMessage)
    hub_accepted_time: int = wire(uint64)


class GroupInfoRatchetTreeTBE(Struct):
    """§5.6 GroupInfoRatchetTreeTBE: the plaintext of encrypted_groupinfo_and_tree."""

    groupInfo: GroupInfo = wire(GroupInfo)
    ratchetTreeOption: RatchetTreeOption = wire(RatchetTreeOption)
    pending_proposals: list[PendingProposal] = wire(vector(PendingProposal))


_VERSION_MLS10 = case("version", Protocol.mls10)  # AMB-GROUPINFO-VERSION-FIELD


class GroupInfoResponseTBS(Struct):
    """§5.6 GroupInfoResponseTBS; ``select (protocol)`` reads the ``version`` field."""

    version: Protocol = wire(Protocol)
    room_id: bytes = wire(opaque)
    status: GroupInfoCode = wire(GroupInfoCode)
    cipher_suite: int = wire(uint16, when=_VERSION_MLS10)
    hub_sender: ExternalSender = wire(ExternalSender, when=_VERSION_MLS10)
    encrypted_groupinfo_and_tree: HPKECiphertext = wire(HPKECiphertext, when=_VERSION_MLS10)


def _success_and_mls10(scope: Scope) -> bool:
    return scope.get("status") == GroupInfoCode.success and scope.get("version") == Protocol.mls10


_GROUPINFO_BODY = case(_success_and_mls10, True)


class GroupInfoResponse(Struct):
    """§5.6 GroupInfoResponse; ``select (protocol)`` reads the ``version`` field."""

    version: Protocol = wire(Protocol)
    room_id: bytes = wire(opaque)
    status: GroupInfoCode = wire(GroupInfoCode)
    cipher_suite: int = wire(uint16, when=_GROUPINFO_BODY)
    hub_sender: ExternalSender = wire(ExternalSender, when=_GROUPINFO_BODY)
    encrypted_groupinfo_and_tree: HPKECiphertext = wire(HPKECiphertext, when=_GROUPINFO_BODY)
    signature: bytes = wire(opaque, when=_GROUPINFO_BODY)

    def tbs(self) -> GroupInfoResponseTBS:
        """The signed part (§5.6: SignWithLabel(hub_sender.signature_key, "GroupInfoResponseTBS", ...))."""
        values = {name: getattr(self, name) for name, _ in GroupInfoResponseTBS.__wire__.fields}
        return GroupInfoResponseTBS(**values)


# --------------------------------------------------------------------------------------------
# §5.7 consent


class ConsentOperation(Enum8):
    """§5.7 ConsentOperation."""

    cancel = 0
    request = 1
    grant = 2
    revoke = 3


class ConsentEntry(Struct):
    """§5.7 ConsentEntry (requestConsent / updateConsent body); RoomId read as IdentifierUri (AMB-ROOMID-TYPE)."""

    consentOperation: ConsentOperation = wire(ConsentOperation)
    requesterUri: IdentifierUri = wire(IdentifierUri)
    targetUri: IdentifierUri = wire(IdentifierUri)
    roomId: IdentifierUri | None = wire(optional(IdentifierUri))
    clientKeyPackages: list[KeyPackage] = wire(
        vector(KeyPackage), when=case("consentOperation", ConsentOperation.grant)
    )
    consent_extensions: AppDataDictionary = wire(AppDataDictionary)

    def scope(self) -> ConsentScope:
        return ConsentScope(requesterUri=self.requesterUri, targetUri=self.targetUri, roomId=self.roomId)


class ConsentScope(Struct):
    """§5.7 ConsentScope: what a cancel must match; RoomId read as IdentifierUri (AMB-ROOMID-TYPE)."""

    requesterUri: IdentifierUri = wire(IdentifierUri)
    targetUri: IdentifierUri = wire(IdentifierUri)
    roomId: IdentifierUri | None = wire(optional(IdentifierUri))


# --------------------------------------------------------------------------------------------
# §5.8 identifierQuery


class SearchIdentifierType(Enum8):
    """§5.8 SearchIdentifierType."""

    reserved = 0
    handle = 1
    nick = 2
    email = 3
    phone = 4
    partialName = 5
    wholeProfile = 6
    oidcStdClaim = 7
    vcardField = 8


class QueryElement(Struct):
    """§5.8 QueryElement; ``select(type)`` read as ``select(searchType)`` (AMB-QUERYELEMENT-SELECT)."""

    searchType: SearchIdentifierType = wire(SearchIdentifierType)
    claimName: bytes = wire(opaque, when=case("searchType", SearchIdentifierType.oidcStdClaim))
    propertyName: bytes = wire(opaque, when=case("searchType", SearchIdentifierType.vcardField))
    searchValue: bytes = wire(opaque)  # "a UTF8 string", but opaque as written


class IdentifierRequest(Struct):
    """§5.8 IdentifierRequest (POST /identifierQuery/{domain})."""

    query_elements: list[QueryElement] = wire(vector(QueryElement))
    id_request_extensions: AppDataDictionary = wire(AppDataDictionary)


class IdentifierQueryCode(Enum8):
    """§5.8 IdentifierQueryCode."""

    success = 0
    notFound = 1
    ambiguous = 2
    forbidden = 3
    unsupportedField = 4


class FieldSource(Enum8):
    """§5.8 FieldSource."""

    reserved = 0
    oidcStdClaim = 7
    vcardField = 8


class ProfileField(Struct):
    """§5.8 ProfileField; ``string fieldName`` is UTF-8 ``opaque<V>`` (AMB-STRING-TYPE)."""

    fieldSource: FieldSource = wire(FieldSource)
    fieldName: str = wire(utf8)
    fieldValue: bytes = wire(opaque)


class UserProfile(Struct):
    """§5.8 UserProfile."""

    stableUri: IdentifierUri = wire(IdentifierUri)
    fields: list[ProfileField] = wire(vector(ProfileField))


class IdentifierResponse(Struct):
    """§5.8 IdentifierResponse."""

    responseCode: IdentifierQueryCode = wire(IdentifierQueryCode)
    uri: list[IdentifierUri] = wire(vector(IdentifierUri))
    foundProfiles: list[UserProfile] = wire(vector(UserProfile))
    id_response_extensions: AppDataDictionary = wire(AppDataDictionary)


# --------------------------------------------------------------------------------------------
# §5.9 reportAbuse


class AbusiveMessage(Struct):
    """§5.9 AbusiveMessage."""

    message_content: bytes = wire(opaque_view)  # a whole message: kept as a view of the input
    frank: Frank = wire(Frank)
    accepted_timestamp: int = wire(uint64)


class AbuseType(Enum8):
    """§5.9 AbuseType: only ``reserved(0)`` is defined in -06."""

    reserved = 0


class AbuseReport(Struct):
    """§5.9 AbuseReport (POST /reportAbuse/{roomId})."""

    # "optionally contains" in the prose; an empty uri when anonymous (AMB-ABUSE-REPORTINGUSER-OPTIONAL).
    reportingUser: IdentifierUri | None = wire(
        IdentifierUri,
        alt=(optional(IdentifierUri), "AMB-ABUSE-REPORTINGUSER-OPTIONAL", "reportingUser as optional<IdentifierUri>"),
    )
    allegedAbuserUri: IdentifierUri = wire(IdentifierUri)
    reasonCode: AbuseType = wire(AbuseType)
    note: bytes = wire(opaque)  # "a UTF8 human-readable string", but opaque as written
    messages: list[AbusiveMessage] = wire(vector(AbusiveMessage))
    abuse_extensions: AppDataDictionary = wire(AppDataDictionary)


# --------------------------------------------------------------------------------------------
# §6.1 minimal-metadata rooms (PseudonymousCredential and its TBS are in identity.py)


class IdentityLinkTBE(Struct):
    """§6.1 IdentityLinkTBE: the plaintext of identity_link_ciphertext."""

    pseudonymous_credential_signature: bytes = wire(opaque)
    client_credential: Credential = wire(Credential)


# --------------------------------------------------------------------------------------------
# §7.5 participant list


class UserRolePair(Struct):
    """§7.5 UserRolePair."""

    user: bytes = wire(opaque)
    role_index: int = wire(uint32)


class ParticipantListData(Struct):
    """§7.5 ParticipantListData: the participant_list component (0x0022)."""

    participants: list[UserRolePair] = wire(vector(UserRolePair))


class UserindexRolePair(Struct):
    """§7.5 UserindexRolePair."""

    user_index: int = wire(uint32)
    role_index: int = wire(uint32)


class ParticipantListUpdate(Struct):
    """§7.5 ParticipantListUpdate: the AppDataUpdate for the participant list (applied in this order)."""

    changedRoleParticipants: list[UserindexRolePair] = wire(vector(UserindexRolePair))
    removedIndices: list[int] = wire(vector(uint32))
    addedParticipants: list[UserRolePair] = wire(vector(UserRolePair))


# --------------------------------------------------------------------------------------------
# §7.6 room metadata


class Uri(Struct):
    """§7.6 Uri: ``struct { opaque uri<V>; }`` (a valid URI, e.g. a MIMI URI)."""

    uri: bytes = wire(opaque)


class UTF8String(Struct):
    """§7.6 UTF8String: valid UTF-8 without NUL characters."""

    string: str = wire(Utf8(allow_nul=False))


class RichDescription(Struct):
    """§7.6 RichDescription (an empty media_type means text/plain;charset=utf-8)."""

    media_type: bytes = wire(opaque)
    language_tag: bytes = wire(opaque)
    description_content: bytes = wire(opaque)


class RoomMetaData(Struct):
    """§7.6 RoomMetaData: the room_metadata component (0x0023) and its RoomMetaUpdate."""

    room_uri: Uri = wire(Uri)
    room_name: UTF8String = wire(UTF8String)
    room_descriptions: list[RichDescription] = wire(vector(RichDescription))
    room_avatar: Uri = wire(Uri)
    room_subject: UTF8String = wire(UTF8String)
    room_mood: UTF8String = wire(UTF8String)


RoomMetaUpdate = RoomMetaData
