"""draft-ietf-mimi-room-policy-04 wire structs (§3–§7, Appendix B) and registry values (§10).

Readings where the draft is inconsistent (IDs of docs/spec-ambiguities.md):

- AMB-OPTIONALITY-MANDATORY: ``Optionality`` is ``optional(0), required(1), forbidden(2)`` but the
  selects say ``case mandatory``; read as ``required`` (no byte changes).
- AMB-POLICY-UNDEFINED-TYPES: ``Component``/``ComponentID`` read as uint16 (mls-extensions-09),
  ``WireFormats`` as RFC 9420's uint16 WireFormat, ``ContentType`` as RFC 9420's uint8 ContentType,
  ``unit64`` as uint64, and ``MediaType`` as mls-extensions-09 §6.2.2's struct.
- AMB-PENDING-PROPOSAL-EXTENSION-CASE: PendingProposalPolicy has ``case extension`` but the enum has
  no such value; that arm can never be selected and is not modelled.
- AMB-POLICY-URI-VECTOR: ``Uri parent_room<V>`` and ``Uri link_preview_proxy<V>`` are vectors as
  written, though the prose names one URI; tolerant decoding also accepts a bare ``Uri``.
- AMB-ASSET-PERMITTED-MEDIA-TYPES: ``optional<MediaType> permitted_media_types<V>`` is, as written,
  a vector of optionals; the text ("If present, permitted_media_types is a list") means an optional
  list. Strict reads it as written; tolerant also accepts ``optional<MediaType<V>>``.

Registered IDs are uint16 on the wire; :class:`Capability` and :class:`PolicyComponentId` only
give them names. Component IDs are the draft's *suggested* values (AMB-MLS-EXT-CODEPOINTS).
"""

from __future__ import annotations

import enum
from typing import Any

from .codec import (
    Codec,
    EncodeError,
    Enum8,
    Struct,
    _Ctx,
    case,
    opaque,
    optional,
    uint8,
    uint16,
    uint32,
    uint64,
    vector,
    wire,
)
from .mimi import Uri

# --------------------------------------------------------------------------------------------
# Registries (§10)


class PolicyComponentId(enum.IntEnum):
    """§10.1 MLS application components (suggested values; names only, wire is uint16)."""

    mls_operational_policy = 0x0024
    roles_list = 0x0025
    preauth_list = 0x0026
    base_room_policy = 0x0027
    status_notification_policy = 0x0028
    join_link_policy = 0x0029
    join_links = 0x002A
    link_preview_policy = 0x002B
    asset_policy = 0x002C
    logging_policy = 0x002D
    chat_history_policy = 0x002E
    bot_policy = 0x002F
    message_expiration_policy = 0x0030


class Capability(enum.IntEnum):
    """§10.2 MIMI Role Capabilities registry (names only; the wire field is a uint16 CapabilityType)."""

    canAddParticipant = 0x0000
    canRemoveParticipant = 0x0001
    canAddOwnClient = 0x0002
    canRemoveOwnClient = 0x0003
    canOpenJoin = 0x0004
    canJoinIfPreauthorized = 0x0005
    canRemoveSelf = 0x0006
    canCreateJoinCode = 0x0007  # reserved
    canDeleteJoinCode = 0x0008  # reserved
    canUseJoinCode = 0x0009
    canBan = 0x000A
    canUnBan = 0x000B
    canKick = 0x000C
    canKnock = 0x000D  # reserved
    canAcceptKnock = 0x000E  # reserved
    canChangeUserRole = 0x000F
    canChangeOwnRole = 0x0010
    canCreateSubgroup = 0x0011  # reserved
    canSendMessage = 0x0100
    canReceiveMessage = 0x0101
    canCopyMessage = 0x0102
    canReportAbuse = 0x0103
    canReplyToMessage = 0x0104
    canReactToMessage = 0x0105
    canEditReaction = 0x0106
    canDeleteOwnReaction = 0x0107
    canDeleteOtherReaction = 0x0108
    canEditOwnMessage = 0x0109
    canDeleteOwnMessage = 0x010A
    canDeleteOtherMessage = 0x010B
    canStartTopic = 0x010C
    canReplyInTopic = 0x010D
    canEditOwnTopic = 0x010E
    canEditOtherTopic = 0x010F
    canSendDirectMessage = 0x0110  # reserved
    canTargetMessage = 0x0111  # reserved
    canUploadImage = 0x0200
    canUploadAudio = 0x0201
    canUploadVideo = 0x0202
    canUploadAttachment = 0x0203
    canDownloadImage = 0x0204
    canDownloadAudio = 0x0205
    canDownloadVideo = 0x0206
    canDownloadAttachment = 0x0207
    canSendLink = 0x0208
    canSendLinkPreview = 0x0209
    canFollowLink = 0x020A
    canCopyLink = 0x020B
    canChangeRoomName = 0x0300
    canChangeRoomDescription = 0x0301
    canChangeRoomAvatar = 0x0302
    canChangeRoomSubject = 0x0303
    canChangeRoomMood = 0x0304
    canChangeOwnName = 0x0380  # reserved
    canChangeOwnPresence = 0x0381  # reserved
    canChangeOwnMood = 0x0382  # reserved
    canChangeOwnAvatar = 0x0383  # reserved
    canStartCall = 0x0400
    canJoinCall = 0x0401
    canSendAudio = 0x0402
    canReceiveAudio = 0x0403
    canSendVideo = 0x0404
    canReceiveVideo = 0x0405
    canShareScreen = 0x0406
    canViewSharedScreen = 0x0407
    canCreateRoom = 0x0500  # reserved
    canDestroyRoom = 0x0501
    canChangeRoomMembershipStyle = 0x0502
    canChangeRoleDefinitions = 0x0503
    canChangePreauthorizedUserList = 0x0504
    canChangeOtherPolicyAttribute = 0x0505  # reserved
    canChangeMlsOperationalPolicies = 0x0600  # reserved
    canSendMLSReinitProposal = 0x0601
    canSendMLSUpdateProposal = 0x0602  # reserved
    canSendMLSPSKProposal = 0x0603  # reserved
    canSendMLSExternalProposal = 0x0604  # reserved
    canSendMLSExternalCommit = 0x0605  # reserved


RESERVED_CAPABILITIES = frozenset(
    {
        Capability.canCreateJoinCode,
        Capability.canDeleteJoinCode,
        Capability.canKnock,
        Capability.canAcceptKnock,
        Capability.canCreateSubgroup,
        Capability.canSendDirectMessage,
        Capability.canTargetMessage,
        Capability.canChangeOwnName,
        Capability.canChangeOwnPresence,
        Capability.canChangeOwnMood,
        Capability.canChangeOwnAvatar,
        Capability.canCreateRoom,
        Capability.canChangeOtherPolicyAttribute,
        Capability.canChangeMlsOperationalPolicies,
        Capability.canSendMLSUpdateProposal,
        Capability.canSendMLSPSKProposal,
        Capability.canSendMLSExternalProposal,
        Capability.canSendMLSExternalCommit,
    }
)

# Role indexes with a fixed meaning (§3, §8.1.3).
ROLE_INDEX_NON_PARTICIPANT = 0
ROLE_INDEX_BANNED = 1
BANNED_ROLE_NAME = b"banned"


# --------------------------------------------------------------------------------------------
# Common types (Appendix B)


class _BareUriAsList(Codec):
    """A single ``Uri`` read as a one-element list: the prose's reading of ``Uri x<V>`` fields that
    name one URI (AMB-POLICY-URI-VECTOR); used only as a tolerant alternative."""

    name = "Uri (bare)"

    def decode(self, ctx: _Ctx) -> list[Uri]:
        return [Uri.__wire__.decode(ctx)]

    def encode(self, out: bytearray, value: Any, scope: list[dict[str, Any]]) -> None:
        if not isinstance(value, list) or len(value) != 1:
            raise EncodeError("a bare Uri needs a list of exactly one Uri")
        Uri.__wire__.encode(out, value[0], scope)


def _uri_or_bare_uri(**kwargs: Any) -> Any:
    return wire(vector(Uri), alt=(_BareUriAsList(), "AMB-POLICY-URI-VECTOR", "a single Uri without the vector prefix"), **kwargs)


class Bool(Enum8):
    """Appendix B ``enum { false(0), true(1) } bool``."""

    false = 0
    true = 1


class Optionality(Enum8):
    """§6.1 Optionality; selects spell ``required`` as ``mandatory`` (AMB-OPTIONALITY-MANDATORY)."""

    optional = 0
    required = 1
    forbidden = 2


_NOT_FORBIDDEN = (Optionality.required, Optionality.optional)


class DomainName(Struct):
    """§6.4 DomainName."""

    domain: bytes = wire(opaque)


class Parameter(Struct):
    """mls-extensions-09 §6.2.2 Parameter of a MediaType (AMB-POLICY-UNDEFINED-TYPES)."""

    parameter_name: bytes = wire(opaque)
    parameter_value: bytes = wire(opaque)


class MediaType(Struct):
    """mls-extensions-09 §6.2.2 MediaType, used by §6.4 and §7 (AMB-POLICY-UNDEFINED-TYPES)."""

    media_type: bytes = wire(opaque)
    parameters: list[Parameter] = wire(vector(Parameter))


# --------------------------------------------------------------------------------------------
# §3 roles


class SingleSourceRoleChangeTargets(Struct):
    """§3 SingleSourceRoleChangeTargets."""

    from_role_index: int = wire(uint32)
    target_role_indexes: list[int] = wire(vector(uint32))


class Role(Struct):
    """§3 Role; role_capabilities are CapabilityType (uint16) values, named by :class:`Capability`."""

    role_index: int = wire(uint32)
    role_name: bytes = wire(opaque)
    role_description: bytes = wire(opaque)
    role_capabilities: list[int] = wire(vector(uint16))
    minimum_participants_constraint: int = wire(uint32)
    maximum_participants_constraint: int | None = wire(optional(uint32))
    minimum_active_participants_constraint: int = wire(uint32)
    maximum_active_participants_constraint: int | None = wire(optional(uint32))
    authorized_role_changes: list[SingleSourceRoleChangeTargets] = wire(vector(SingleSourceRoleChangeTargets))


class RoleData(Struct):
    """§3 RoleData: the roles_list component and its RoleUpdate."""

    roles: list[Role] = wire(vector(Role))


RoleUpdate = RoleData


# --------------------------------------------------------------------------------------------
# §4 preauthorization


class ClaimId(Struct):
    """§4 ClaimId; credential_type is an MLS CredentialType (uint16, an open registry)."""

    credential_type: int = wire(uint16)
    id: bytes = wire(opaque)


class Claim(Struct):
    """§4 Claim."""

    claim_id: ClaimId = wire(ClaimId)
    claim_value: bytes = wire(opaque)


class PreAuthRoleEntry(Struct):
    """§4 PreAuthRoleEntry: all claims of the claimset must match."""

    claimset: list[Claim] = wire(vector(Claim))
    target_role: Role = wire(Role)


class PreAuthData(Struct):
    """§4 PreAuthData: the preauth_list component and its PreAuthUpdate."""

    preauthorized_entries: list[PreAuthRoleEntry] = wire(vector(PreAuthRoleEntry))


PreAuthUpdate = PreAuthData


# --------------------------------------------------------------------------------------------
# §5 base room policy


class BaseRoomPolicy(Struct):
    """§5 BaseRoomPolicy (BaseRoomData / BaseRoomUpdate); ``Component`` read as uint16."""

    fixed_membership: Bool = wire(Bool)
    parent_dependant: Bool = wire(Bool)
    parent_room: list[Uri] = _uri_or_bare_uri()
    multi_device: Bool = wire(Bool)
    max_clients: int | None = wire(optional(uint32))
    max_users: int | None = wire(optional(uint32))
    pseudonyms_allowed: Bool = wire(Bool)
    persistent_room: Bool = wire(Bool)
    discoverable: Bool = wire(Bool)
    policy_component_ids: list[int] = wire(vector(uint16))


# --------------------------------------------------------------------------------------------
# §6 other policy components


class StatusNotificationPolicy(Struct):
    """§6.1 StatusNotificationPolicy."""

    delivery_notifications: Optionality = wire(Optionality)
    read_receipts: Optionality = wire(Optionality)


class JoinLinkPolicy(Struct):
    """§6.2 JoinLinkPolicy."""

    on_request: Bool = wire(Bool)
    join_link: bytes = wire(opaque)
    multiuser: Bool = wire(Bool)
    expiration: int = wire(uint32)


class JoinLink(Struct):
    """§6.2 JoinLink."""

    join_link: bytes = wire(opaque)


class JoinLinksData(Struct):
    """§6.2 ``JoinLink JoinLinksData<V>``: a bare vector, modelled as a one-field struct (same bytes)."""

    join_links: list[JoinLink] = wire(vector(JoinLink))


class JoinLinksUpdate(Struct):
    """§6.2 JoinLinksUpdate."""

    removedIndices: list[int] = wire(vector(uint32))
    added_links: list[JoinLink] = wire(vector(JoinLink))


class LinkPreviewPolicy(Struct):
    """§6.3 LinkPreviewPolicy."""

    autodetect_hyperlinks_in_text: Optionality = wire(Optionality)
    send_link_previews: Optionality = wire(Optionality)
    automatic_link_previews: Optionality = wire(Optionality)
    link_preview_proxy_use: Optionality = wire(Optionality)
    link_preview_proxy: list[Uri] = _uri_or_bare_uri(when=case("link_preview_proxy_use", *_NOT_FORBIDDEN))


class AssetUploadLocation(Enum8):
    """§6.4 AssetUploadLocation."""

    unspecified = 0
    localProvider = 1
    hub = 2


class ProviderAssetUploadDomains(Struct):
    """§6.4 ProviderAssetUploadDomains."""

    provider: DomainName = wire(DomainName)
    asset_upload_destinations: list[DomainName] = wire(vector(DomainName))


class DownloadPrivacyType(Enum8):
    """§6.4 DownloadPrivacyType."""

    direct = 0
    hubProxy = 1
    ohttp = 2


class DownloadPrivacy(Struct):
    """§6.4 DownloadPrivacy."""

    allowed_download_types: list[DownloadPrivacyType] = wire(vector(DownloadPrivacyType))
    forbidden_download_types: list[DownloadPrivacyType] = wire(vector(DownloadPrivacyType))
    default_download_type: DownloadPrivacyType = wire(DownloadPrivacyType)


class AssetPolicy(Struct):
    """§6.4 AssetPolicy; permitted_media_types as written (AMB-ASSET-PERMITTED-MEDIA-TYPES)."""

    asset_upload_location: AssetUploadLocation = wire(AssetUploadLocation)
    upload_domains: list[ProviderAssetUploadDomains] = wire(vector(ProviderAssetUploadDomains))
    download_privacy: DownloadPrivacy = wire(DownloadPrivacy)
    max_image: int = wire(uint64)
    max_audio: int = wire(uint64)
    max_video: int = wire(uint64)
    max_attachment: int = wire(uint64)
    forbidden_media_types: list[MediaType] = wire(vector(MediaType))
    permitted_media_types: list = wire(
        vector(optional(MediaType)),
        alt=(optional(vector(MediaType)), "AMB-ASSET-PERMITTED-MEDIA-TYPES", "permitted_media_types as optional<MediaType<V>>"),
    )


class LoggingPolicy(Struct):
    """§6.5 LoggingPolicy."""

    logging: Optionality = wire(Optionality)
    logging_clients: list[Uri] = wire(vector(Uri), when=case("logging", *_NOT_FORBIDDEN))
    machine_readable_policy: Uri = wire(Uri, when=case("logging", *_NOT_FORBIDDEN))
    human_readable_policy: Uri = wire(Uri, when=case("logging", *_NOT_FORBIDDEN))


class HistoryPolicy(Struct):
    """§6.6 HistoryPolicy."""

    history_sharing: Optionality = wire(Optionality)
    roles_that_can_share: list[int] = wire(vector(uint32), when=case("history_sharing", *_NOT_FORBIDDEN))
    automatically_share: Bool = wire(Bool, when=case("history_sharing", *_NOT_FORBIDDEN))
    max_time_period: int = wire(uint32, when=case("history_sharing", *_NOT_FORBIDDEN))


class Bot(Struct):
    """§6.7 Bot."""

    name: bytes = wire(opaque)
    description: bytes = wire(opaque)
    homepage: Uri = wire(Uri)
    local_client_bot: Bool = wire(Bool)
    bot_role_index: int = wire(uint32)
    can_target_message_in_group: Bool = wire(Bool)
    per_user_content: Bool = wire(Bool)


class BotPolicy(Struct):
    """§6.7 BotPolicy."""

    allowed_bots: list[Bot] = wire(vector(Bot))


class MessageExpiration(Struct):
    """§6.8 MessageExpiration."""

    expiring_messages: Optionality = wire(Optionality)
    min_expiration_duration: int = wire(uint32, when=case("expiring_messages", *_NOT_FORBIDDEN))
    max_expiration_duration: int = wire(uint32, when=case("expiring_messages", *_NOT_FORBIDDEN))
    default_expiration_duration: int | None = wire(
        optional(uint32), when=case("expiring_messages", *_NOT_FORBIDDEN)
    )


# --------------------------------------------------------------------------------------------
# §7 operational MLS parameters


class ExtendedCapabilities(Struct):
    """§7.1 ExtendedCapabilities (undefined element types per AMB-POLICY-UNDEFINED-TYPES)."""

    versions: list[int] = wire(vector(uint16))
    cipher_suites: list[int] = wire(vector(uint16))
    extensions: list[int] = wire(vector(uint16))
    proposals: list[int] = wire(vector(uint16))
    credentials: list[int] = wire(vector(uint16))
    wire_formats: list[int] = wire(vector(uint16))
    component_ids: list[int] = wire(vector(uint16))
    safe_aad_types: list[int] = wire(vector(uint16))
    media_types: list[MediaType] = wire(vector(MediaType))
    content_types: list[int] = wire(vector(uint8))


class PendingProposalStrategy(Enum8):
    """§7.1 PendingProposalStrategy."""

    unspecified = 0
    immediate_commit = 1
    random_delay = 2


class PendingProposalPolicy(Struct):
    """§7.1 PendingProposalPolicy (the unreachable ``case extension`` is not modelled)."""

    pending_proposal_strategy: PendingProposalStrategy = wire(PendingProposalStrategy)
    minimum_delay_ms: int = wire(uint64, when=case("pending_proposal_strategy", PendingProposalStrategy.random_delay))
    maximum_delay_ms: int = wire(uint64, when=case("pending_proposal_strategy", PendingProposalStrategy.random_delay))


class MinDefaultMaxTime(Struct):
    """§7.1 MinDefaultMaxTime."""

    minimum_time: int = wire(uint64)
    default_time: int = wire(uint64)
    maximum_time: int = wire(uint64)


class AppMessagePolicy(Struct):
    """§7.1 AppMessagePolicy."""

    epoch_tolerance: int = wire(uint8)
    pad_to_size: int = wire(uint16)
    max_generations_skipahead: int = wire(uint32)


class OperationalParameters(Struct):
    """§7.1 OperationalParameters: the mls_operational_policy component (``unit64`` read as uint64)."""

    mandatory_capabilities: ExtendedCapabilities = wire(ExtendedCapabilities)
    default_capabilities: ExtendedCapabilities = wire(ExtendedCapabilities)
    forbidden_capabilities: ExtendedCapabilities = wire(ExtendedCapabilities)
    handshake_formats: list[int] = wire(vector(uint16))
    external_proposal_allowed: Bool = wire(Bool)
    external_commit_allowed: Bool = wire(Bool)
    pending_proposal_policy: PendingProposalPolicy = wire(PendingProposalPolicy)
    LeafNode_update_time: MinDefaultMaxTime = wire(MinDefaultMaxTime)
    app_message_policy: AppMessagePolicy = wire(AppMessagePolicy)
    max_kp_lifetime: int = wire(uint64)
    max_credential_lifetime: int = wire(uint64)
    resumption_psk_lifetime: int = wire(uint64)
    sender_nonce_keypair_lifetime: MinDefaultMaxTime = wire(MinDefaultMaxTime)
    max_keypairs: int = wire(uint32)
    buffer_incoming_message_time: MinDefaultMaxTime = wire(MinDefaultMaxTime)
    max_buffered_messages: int = wire(uint32)
