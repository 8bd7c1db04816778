"""RFC 9420 (MLS 1.0) wire structs, plus the draft-ietf-mls-extensions-09 structs MIMI uses.

Layouts only: the cryptography and the validity rules live in ``reference_peer.mls``. Field
names follow RFC 9420 so that error paths read like the RFC (``MLSMessage.public_message.content``).
Values marked "suggested" are the extensions draft's own suggestions; they are listed in
docs/spec-ambiguities.md (AMB-MLS-EXT-CODEPOINTS).
"""

from __future__ import annotations

import enum

from .codec import (
    Empty,
    Enum8,
    Enum16,
    Scope,
    Struct,
    case,
    opaque,
    opaque_view,
    optional,
    uint16,
    uint32,
    uint64,
    vector,
    wire,
)
from .identity import PseudonymousCredential

# --------------------------------------------------------------------------------------------
# Enumerations


class ProtocolVersion(Enum16):
    reserved = 0
    mls10 = 1


class WireFormat(Enum16):
    reserved = 0
    mls_public_message = 1
    mls_private_message = 2
    mls_welcome = 3
    mls_group_info = 4
    mls_key_package = 5


class ContentType(Enum8):
    reserved = 0
    application = 1
    proposal = 2
    commit = 3


class SenderType(Enum8):
    reserved = 0
    member = 1
    external = 2
    new_member_proposal = 3
    new_member_commit = 4


class ProposalType(Enum16):
    reserved = 0
    add = 1
    update = 2
    remove = 3
    psk = 4
    reinit = 5
    external_init = 6
    group_context_extensions = 7
    app_data_update = 8  # mls-extensions-09, suggested
    app_ephemeral = 9  # mls-extensions-09, suggested
    self_remove = 10  # mls-extensions-09, suggested


class CredentialType(Enum16):
    reserved = 0
    basic = 1
    x509 = 2
    # No value is assigned for protocol-06 §6.1's PseudonymousCredential; the suite uses one from
    # RFC 9420 §17.1's private-use range (AMB-PSEUDONYM-CREDTYPE).
    mimi_pseudonymous = 0xF0A1


class LeafNodeSource(Enum8):
    reserved = 0
    key_package = 1
    update = 2
    commit = 3


class ProposalOrRefType(Enum8):
    reserved = 0
    proposal = 1
    reference = 2


class NodeType(Enum8):
    reserved = 0
    leaf = 1
    parent = 2


class PSKType(Enum8):
    reserved = 0
    external = 1
    resumption = 2
    application = 3  # mls-extensions-09


class ResumptionPSKUsage(Enum8):
    reserved = 0
    application = 1
    reinit = 2
    branch = 3


class AppDataUpdateOperation(Enum8):
    invalid = 0
    update = 1
    remove = 2


class ExtensionType(enum.IntEnum):
    """Names for known extension types; the wire field stays a plain uint16."""

    application_id = 1
    ratchet_tree = 2
    required_capabilities = 3
    external_pub = 4
    external_senders = 5
    app_data_dictionary = 6  # mls-extensions-09, suggested
    supported_wire_formats = 7
    required_wire_formats = 8


class CipherSuite(enum.IntEnum):
    """Names for RFC 9420 cipher suites; the wire field stays a plain uint16."""

    MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 = 1
    MLS_128_DHKEMP256_AES128GCM_SHA256_P256 = 2
    MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 = 3
    MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448 = 4
    MLS_256_DHKEMP521_AES256GCM_SHA512_P521 = 5
    MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448 = 6
    MLS_256_DHKEMP384_AES256GCM_SHA384_P384 = 7


# --------------------------------------------------------------------------------------------
# Basic structs


class HPKECiphertext(Struct):
    kem_output: bytes = wire(opaque)
    ciphertext: bytes = wire(opaque)


class Certificate(Struct):
    cert_data: bytes = wire(opaque)


class Credential(Struct):
    credential_type: CredentialType = wire(CredentialType)
    identity: bytes = wire(opaque, when=case("credential_type", CredentialType.basic))
    certificates: list[Certificate] = wire(vector(Certificate), when=case("credential_type", CredentialType.x509))
    pseudonymous: PseudonymousCredential = wire(
        PseudonymousCredential, when=case("credential_type", CredentialType.mimi_pseudonymous)
    )


class Capabilities(Struct):
    versions: list[int] = wire(vector(uint16))
    cipher_suites: list[int] = wire(vector(uint16))
    extensions: list[int] = wire(vector(uint16))
    proposals: list[int] = wire(vector(uint16))
    credentials: list[int] = wire(vector(uint16))


class Lifetime(Struct):
    not_before: int = wire(uint64)
    not_after: int = wire(uint64)


class Extension(Struct):
    extension_type: int = wire(uint16)
    extension_data: bytes = wire(opaque)


class RequiredCapabilities(Struct):
    extension_types: list[int] = wire(vector(uint16))
    proposal_types: list[int] = wire(vector(uint16))
    credential_types: list[int] = wire(vector(uint16))


class ExternalSender(Struct):
    signature_key: bytes = wire(opaque)
    credential: Credential = wire(Credential)


class LeafNode(Struct):
    encryption_key: bytes = wire(opaque)
    signature_key: bytes = wire(opaque)
    credential: Credential = wire(Credential)
    capabilities: Capabilities = wire(Capabilities)
    leaf_node_source: LeafNodeSource = wire(LeafNodeSource)
    lifetime: Lifetime = wire(Lifetime, when=case("leaf_node_source", LeafNodeSource.key_package))
    parent_hash: bytes = wire(opaque, when=case("leaf_node_source", LeafNodeSource.commit))
    extensions: list[Extension] = wire(vector(Extension))
    signature: bytes = wire(opaque)


class KeyPackage(Struct):
    version: ProtocolVersion = wire(ProtocolVersion)
    cipher_suite: int = wire(uint16)
    init_key: bytes = wire(opaque)
    leaf_node: LeafNode = wire(LeafNode)
    extensions: list[Extension] = wire(vector(Extension))
    signature: bytes = wire(opaque)


class ParentNode(Struct):
    encryption_key: bytes = wire(opaque)
    parent_hash: bytes = wire(opaque)
    unmerged_leaves: list[int] = wire(vector(uint32))


class Node(Struct):
    node_type: NodeType = wire(NodeType)
    leaf_node: LeafNode = wire(LeafNode, when=case("node_type", NodeType.leaf))
    parent_node: ParentNode = wire(ParentNode, when=case("node_type", NodeType.parent))


# The ratchet_tree extension's content and RatchetTreeOption's ``Node ratchet_tree<V>`` element.
RatchetTree = vector(optional(Node))


# --------------------------------------------------------------------------------------------
# Proposals and commits


class Add(Struct):
    key_package: KeyPackage = wire(KeyPackage)


class Update(Struct):
    leaf_node: LeafNode = wire(LeafNode)


class Remove(Struct):
    removed: int = wire(uint32)


class PreSharedKeyID(Struct):
    psktype: PSKType = wire(PSKType)
    component_id: int = wire(uint16, when=case("psktype", PSKType.application))
    psk_id: bytes = wire(opaque, when=case("psktype", PSKType.external, PSKType.application))
    usage: ResumptionPSKUsage = wire(ResumptionPSKUsage, when=case("psktype", PSKType.resumption))
    psk_group_id: bytes = wire(opaque, when=case("psktype", PSKType.resumption))
    psk_epoch: int = wire(uint64, when=case("psktype", PSKType.resumption))
    psk_nonce: bytes = wire(opaque)


class PreSharedKey(Struct):
    psk: PreSharedKeyID = wire(PreSharedKeyID)


class ReInit(Struct):
    group_id: bytes = wire(opaque)
    version: ProtocolVersion = wire(ProtocolVersion)
    cipher_suite: int = wire(uint16)
    extensions: list[Extension] = wire(vector(Extension))


class ExternalInit(Struct):
    kem_output: bytes = wire(opaque)


class GroupContextExtensions(Struct):
    extensions: list[Extension] = wire(vector(Extension))


class AppDataUpdate(Struct):
    """draft-ietf-mls-extensions-09 §4.7; ComponentID is uint16 in -09 (uint32 in -08)."""

    component_id: int = wire(uint16)
    op: AppDataUpdateOperation = wire(AppDataUpdateOperation)
    update: bytes = wire(opaque, when=case("op", AppDataUpdateOperation.update))


class AppEphemeral(Struct):
    component_id: int = wire(uint16)
    data: bytes = wire(opaque)


class Proposal(Struct):
    proposal_type: ProposalType = wire(ProposalType)
    add: Add = wire(Add, when=case("proposal_type", ProposalType.add))
    update: Update = wire(Update, when=case("proposal_type", ProposalType.update))
    remove: Remove = wire(Remove, when=case("proposal_type", ProposalType.remove))
    psk: PreSharedKey = wire(PreSharedKey, when=case("proposal_type", ProposalType.psk))
    reinit: ReInit = wire(ReInit, when=case("proposal_type", ProposalType.reinit))
    external_init: ExternalInit = wire(ExternalInit, when=case("proposal_type", ProposalType.external_init))
    group_context_extensions: GroupContextExtensions = wire(
        GroupContextExtensions, when=case("proposal_type", ProposalType.group_context_extensions)
    )
    app_data_update: AppDataUpdate = wire(AppDataUpdate, when=case("proposal_type", ProposalType.app_data_update))
    app_ephemeral: AppEphemeral = wire(AppEphemeral, when=case("proposal_type", ProposalType.app_ephemeral))
    self_remove: None = wire(Empty(), when=case("proposal_type", ProposalType.self_remove))


class ProposalOrRef(Struct):
    type: ProposalOrRefType = wire(ProposalOrRefType)
    proposal: Proposal = wire(Proposal, when=case("type", ProposalOrRefType.proposal))
    reference: bytes = wire(opaque, when=case("type", ProposalOrRefType.reference))


class UpdatePathNode(Struct):
    encryption_key: bytes = wire(opaque)
    encrypted_path_secret: list[HPKECiphertext] = wire(vector(HPKECiphertext))


class UpdatePath(Struct):
    leaf_node: LeafNode = wire(LeafNode)
    nodes: list[UpdatePathNode] = wire(vector(UpdatePathNode))


class Commit(Struct):
    proposals: list[ProposalOrRef] = wire(vector(ProposalOrRef))
    path: UpdatePath | None = wire(optional(UpdatePath))


# --------------------------------------------------------------------------------------------
# Framing


class Sender(Struct):
    sender_type: SenderType = wire(SenderType)
    leaf_index: int = wire(uint32, when=case("sender_type", SenderType.member))
    sender_index: int = wire(uint32, when=case("sender_type", SenderType.external))


class FramedContent(Struct):
    group_id: bytes = wire(opaque)
    epoch: int = wire(uint64)
    sender: Sender = wire(Sender)
    authenticated_data: bytes = wire(opaque)
    content_type: ContentType = wire(ContentType)
    application_data: bytes = wire(opaque_view, when=case("content_type", ContentType.application))
    proposal: Proposal = wire(Proposal, when=case("content_type", ContentType.proposal))
    commit: Commit = wire(Commit, when=case("content_type", ContentType.commit))


def _framed_content_type(scope: Scope) -> ContentType:
    """FramedContentAuthData selects on the content type of the enclosing message."""
    try:
        return scope.get("content_type")
    except KeyError:
        return scope.get("content").content_type


class FramedContentAuthData(Struct):
    signature: bytes = wire(opaque)
    confirmation_tag: bytes = wire(opaque, when=case(_framed_content_type, ContentType.commit))


def _sender_is_member(scope: Scope) -> bool:
    return scope.get("content").sender.sender_type == SenderType.member


class PublicMessage(Struct):
    content: FramedContent = wire(FramedContent)
    auth: FramedContentAuthData = wire(FramedContentAuthData)
    membership_tag: bytes = wire(opaque, when=case(_sender_is_member, True))


class PrivateMessage(Struct):
    group_id: bytes = wire(opaque)
    epoch: int = wire(uint64)
    content_type: ContentType = wire(ContentType)
    authenticated_data: bytes = wire(opaque)
    encrypted_sender_data: bytes = wire(opaque)
    ciphertext: bytes = wire(opaque_view)


class EncryptedGroupSecrets(Struct):
    new_member: bytes = wire(opaque)  # KeyPackageRef
    encrypted_group_secrets: HPKECiphertext = wire(HPKECiphertext)


class Welcome(Struct):
    cipher_suite: int = wire(uint16)
    secrets: list[EncryptedGroupSecrets] = wire(vector(EncryptedGroupSecrets))
    encrypted_group_info: bytes = wire(opaque_view)


class GroupContext(Struct):
    version: ProtocolVersion = wire(ProtocolVersion)
    cipher_suite: int = wire(uint16)
    group_id: bytes = wire(opaque)
    epoch: int = wire(uint64)
    tree_hash: bytes = wire(opaque)
    confirmed_transcript_hash: bytes = wire(opaque)
    extensions: list[Extension] = wire(vector(Extension))


class GroupInfo(Struct):
    group_context: GroupContext = wire(GroupContext)
    extensions: list[Extension] = wire(vector(Extension))
    confirmation_tag: bytes = wire(opaque)
    signer: int = wire(uint32)
    signature: bytes = wire(opaque)


class PathSecret(Struct):
    path_secret: bytes = wire(opaque)


class GroupSecrets(Struct):
    joiner_secret: bytes = wire(opaque)
    path_secret: PathSecret | None = wire(optional(PathSecret))
    psks: list[PreSharedKeyID] = wire(vector(PreSharedKeyID))


class MLSMessage(Struct):
    version: ProtocolVersion = wire(ProtocolVersion)
    wire_format: WireFormat = wire(WireFormat)
    public_message: PublicMessage = wire(PublicMessage, when=case("wire_format", WireFormat.mls_public_message))
    private_message: PrivateMessage = wire(PrivateMessage, when=case("wire_format", WireFormat.mls_private_message))
    welcome: Welcome = wire(Welcome, when=case("wire_format", WireFormat.mls_welcome))
    group_info: GroupInfo = wire(GroupInfo, when=case("wire_format", WireFormat.mls_group_info))
    key_package: KeyPackage = wire(KeyPackage, when=case("wire_format", WireFormat.mls_key_package))

    def content_type(self) -> ContentType | None:
        """The content type a MIMI select sees: None for Welcome, GroupInfo and KeyPackage."""
        if self.public_message is not None:
            return self.public_message.content.content_type
        if self.private_message is not None:
            return self.private_message.content_type
        return None


# --------------------------------------------------------------------------------------------
# draft-ietf-mls-extensions-09: application components


class ComponentData(Struct):
    component_id: int = wire(uint16)
    data: bytes = wire(opaque)


class AppDataDictionary(Struct):
    component_data: list[ComponentData] = wire(vector(ComponentData))


class SafeAADItem(Struct):
    component_id: int = wire(uint16)
    aad_item_data: bytes = wire(opaque)


class SafeAAD(Struct):
    aad_items: list[SafeAADItem] = wire(vector(SafeAADItem))


class ComponentsList(Struct):
    """-09 §5: the content of the ``safe_aad`` and ``app_components`` components. In a LeafNode's
    app_data_dictionary, ``app_components`` lists the components the client supports; in the
    GroupContext, the components every member must support."""

    component_ids: list[int] = wire(vector(uint16))


class MlsComponentId(enum.IntEnum):
    """-09 §7.5 "MLS Component Types", initial contents (suggested values; names only, the wire is a
    uint16 ComponentID, AMB-MLS-EXT-CODEPOINTS)."""

    app_components = 0x0001  # LN, GC: a ComponentsList
    safe_aad = 0x0002  # LN, GC: a ComponentsList
    content_media_types = 0x0003  # LN, GC
    last_resort_key_package = 0x0004  # KP
    app_ack = 0x0005  # AE


COMPONENT_APP_COMPONENTS = MlsComponentId.app_components
