"""Tolerant decoding of the drafts' alternative layouts: strict rejects, tolerant accepts and names the AMB ID."""

from __future__ import annotations

import pytest
from wire_samples import application, basic_credential, frank, public, uri

from reference_peer.wire.codec import DecodeError, Struct
from reference_peer.wire.mimi import (
    AbuseReport,
    AbuseType,
    FanoutMessage,
    GroupInfoRequest,
    GroupInfoRequestTBS,
    HandshakeBundle,
    Protocol,
    UpdateRequest,
    Uri,
)
from reference_peer.wire.mls import AppDataDictionary, ContentType, Node, NodeType, ParentNode
from reference_peer.wire.ratchet_tree_options import RatchetTreeOption, RatchetTreeRepresentation
from reference_peer.wire.room_policy import (
    AssetPolicy,
    AssetUploadLocation,
    BaseRoomPolicy,
    Bool,
    DownloadPrivacy,
    DownloadPrivacyType,
    LinkPreviewPolicy,
    MediaType,
    Optionality,
)
from reference_peer.wire.strategies import wire_structs

TESTED_ALTERNATIVES = {
    ("FanoutMessage", "protocol", "AMB-PROTOCOL-CONTEXT"),
    ("UpdateRequest", "protocol", "AMB-PROTOCOL-CONTEXT"),
    ("GroupInfoRequest", "joiningCode", "AMB-GROUPINFO-JOININGCODE"),
    ("GroupInfoRequestTBS", "joiningCode", "AMB-GROUPINFO-JOININGCODE"),
    ("AbuseReport", "reportingUser", "AMB-ABUSE-REPORTINGUSER-OPTIONAL"),
    ("BaseRoomPolicy", "parent_room", "AMB-POLICY-URI-VECTOR"),
    ("LinkPreviewPolicy", "link_preview_proxy", "AMB-POLICY-URI-VECTOR"),
    ("RatchetTreeOption", "ratchet_tree", "AMB-RATCHET-TREE-NODE-OPTIONAL"),
    ("AssetPolicy", "permitted_media_types", "AMB-ASSET-PERMITTED-MEDIA-TYPES"),
}


def test_every_declared_alternative_has_a_test_here() -> None:
    declared = {
        (cls.__name__, name, fld.alt.ambiguity)
        for cls in wire_structs()
        for name, fld in cls.__wire__.fields
        if fld.alt is not None
    }
    assert declared == TESTED_ALTERNATIVES


def _strict_rejects_tolerant_accepts(cls: type[Struct], data: bytes, ambiguity: str, field: str) -> Struct:
    with pytest.raises(DecodeError):
        cls.decode(data)
    decoded = cls.decode_tolerant(data)
    assert [(lc.ambiguity, lc.path) for lc in decoded.leniencies] == [(ambiguity, f"{cls.__name__}.{field}")]
    return decoded.value


def test_fanout_with_an_explicit_protocol_octet() -> None:
    fanout = FanoutMessage(timestamp=42, message=application(), frank=frank())
    as_written = fanout.encode()
    explicit = as_written[:8] + bytes([Protocol.mls10]) + as_written[8:]
    value = _strict_rejects_tolerant_accepts(FanoutMessage, explicit, "AMB-PROTOCOL-CONTEXT", "protocol")
    assert value == fanout
    assert FanoutMessage.decode_tolerant(as_written).leniencies == ()


def test_update_request_with_an_explicit_protocol_octet() -> None:
    update = UpdateRequest(bundle=HandshakeBundle(proposalOrCommit=public(ContentType.proposal), moreProposals=[]))
    explicit = bytes([Protocol.mls10]) + update.encode()
    assert _strict_rejects_tolerant_accepts(UpdateRequest, explicit, "AMB-PROTOCOL-CONTEXT", "protocol") == update


def _group_info_request_fields() -> dict:
    return dict(
        protocol=Protocol.mls10,
        cipher_suite=1,
        requestingSignatureKey=b"pk",
        requestingCredential=basic_credential(),
        groupInfoPublicKey=b"hpke",
    )


def test_group_info_request_with_an_optional_joining_code_as_in_the_tbs() -> None:
    request = GroupInfoRequest(joiningCode=b"code", signature=b"sig", **_group_info_request_fields())
    as_written_tbs = request.tbs_as_written()
    assert as_written_tbs == request.tbs().encode()[: -len(b"\x04code")] + b"\x01\x04code"
    value = _strict_rejects_tolerant_accepts(
        GroupInfoRequest, as_written_tbs + b"\x03sig", "AMB-GROUPINFO-JOININGCODE", "joiningCode"
    )
    assert value == request
    tbs = _strict_rejects_tolerant_accepts(GroupInfoRequestTBS, as_written_tbs, "AMB-GROUPINFO-JOININGCODE", "joiningCode")
    assert tbs == request.tbs()


def test_absent_optional_joining_code_reads_as_an_empty_code_in_both_layouts() -> None:
    request = GroupInfoRequest(joiningCode=b"", signature=b"sig", **_group_info_request_fields())
    as_written_tbs = request.tbs_as_written()
    assert as_written_tbs == request.tbs().encode()  # absent (0x00) and empty (0x00) are the same octet
    data = as_written_tbs + b"\x03sig"
    assert GroupInfoRequest.decode(data) == request
    assert GroupInfoRequest.decode_tolerant(data).leniencies == ()


def test_abuse_report_with_an_optional_reporting_user() -> None:
    report = AbuseReport(
        reportingUser=uri("mimi://a.example/u/alice"),
        allegedAbuserUri=uri("mimi://b.example/u/mallory"),
        reasonCode=AbuseType.reserved,
        note=b"",
        messages=[],
        abuse_extensions=AppDataDictionary(component_data=[]),
    )
    data = b"\x01" + report.encode()
    assert _strict_rejects_tolerant_accepts(AbuseReport, data, "AMB-ABUSE-REPORTINGUSER-OPTIONAL", "reportingUser") == report
    # An absent optional (0x00) has the bytes of an empty uri: the strict reading of an anonymous report.
    anonymous = b"\x00" + report.encode()[len(report.reportingUser.encode()) :]
    assert AbuseReport.decode(anonymous) == report.replace(reportingUser=uri(""))
    assert AbuseReport.decode_tolerant(anonymous).leniencies == ()


def test_policy_uri_fields_as_a_bare_uri() -> None:
    proxy = Uri(uri=b"https://preview.example/p")
    policy = LinkPreviewPolicy(
        autodetect_hyperlinks_in_text=Optionality.optional,
        send_link_previews=Optionality.optional,
        automatic_link_previews=Optionality.optional,
        link_preview_proxy_use=Optionality.required,
        link_preview_proxy=[proxy],
    )
    bare = policy.encode()[:4] + proxy.encode()
    value = _strict_rejects_tolerant_accepts(LinkPreviewPolicy, bare, "AMB-POLICY-URI-VECTOR", "link_preview_proxy")
    assert value == policy
    base = BaseRoomPolicy(
        fixed_membership=Bool.false,
        parent_dependant=Bool.true,
        parent_room=[Uri(uri=b"mimi://hub.example/r/parent")],
        multi_device=Bool.true,
        max_clients=None,
        max_users=None,
        pseudonyms_allowed=Bool.false,
        persistent_room=Bool.true,
        discoverable=Bool.false,
        policy_component_ids=[],
    )
    vector = base.encode()
    bare = vector[:2] + base.parent_room[0].encode() + vector[2 + 1 + len(base.parent_room[0].encode()) :]
    assert _strict_rejects_tolerant_accepts(BaseRoomPolicy, bare, "AMB-POLICY-URI-VECTOR", "parent_room") == base


def test_ratchet_tree_option_with_bare_nodes() -> None:
    node = Node(node_type=NodeType.parent, parent_node=ParentNode(encryption_key=b"k", parent_hash=b"", unmerged_leaves=[]))
    nodes = node.encode()
    data = bytes([RatchetTreeRepresentation.full, len(nodes)]) + nodes
    value = _strict_rejects_tolerant_accepts(RatchetTreeOption, data, "AMB-RATCHET-TREE-NODE-OPTIONAL", "ratchet_tree")
    assert value.ratchet_tree == [node]
    # The strict layout (the ratchet_tree extension's optional<Node>) has a presence octet per node.
    strict = RatchetTreeOption(representation=RatchetTreeRepresentation.full, ratchet_tree=[node, None])
    assert strict.encode() == bytes([1, len(nodes) + 2, 1]) + nodes + b"\x00"


def test_asset_policy_with_an_optional_list_of_permitted_media_types() -> None:
    policy = AssetPolicy(
        asset_upload_location=AssetUploadLocation.localProvider,
        upload_domains=[],
        download_privacy=DownloadPrivacy(
            allowed_download_types=[DownloadPrivacyType.hubProxy],
            forbidden_download_types=[],
            default_download_type=DownloadPrivacyType.hubProxy,
        ),
        max_image=1,
        max_audio=2,
        max_video=3,
        max_attachment=4,
        forbidden_media_types=[],
        permitted_media_types=[],
    )
    prefix = policy.encode()[:-1]  # everything before the (empty) permitted_media_types vector
    text_plain = MediaType(media_type=b"text/plain", parameters=[]).encode()
    data = prefix + b"\x01" + bytes([len(text_plain)]) + text_plain
    value = _strict_rejects_tolerant_accepts(
        AssetPolicy, data, "AMB-ASSET-PERMITTED-MEDIA-TYPES", "permitted_media_types"
    )
    assert value.permitted_media_types == [MediaType(media_type=b"text/plain", parameters=[])]
