"""protocol-06 structs: layouts pinned to hand-computed bytes, selects, scope chain, error paths."""

from __future__ import annotations

import pytest
from wire_samples import application, basic_credential, frank, group_info, public, uri, welcome

from reference_peer.wire.codec import DecodeError, EncodeError
from reference_peer.wire.mimi import (
    ClientKeyMaterial,
    ConsentEntry,
    ConsentOperation,
    ConsentScope,
    FanoutMessage,
    GroupInfoCode,
    GroupInfoOption,
    GroupInfoRepresentation,
    GroupInfoResponse,
    HandshakeBundle,
    KeyMaterialClientCode,
    KeyMaterialRequest,
    KeyMaterialResponse,
    KeyMaterialUserCode,
    MimiComponentId,
    Protocol,
    QueryElement,
    RoomMetaData,
    SearchIdentifierType,
    SubmitMessageResponse,
    SubmitResponseCode,
    UpdateRequest,
    UpdateResponseCode,
    UpdateRoomResponse,
    UTF8String,
)
from reference_peer.wire.mls import AppDataDictionary, Capabilities, ContentType, RequiredCapabilities
from reference_peer.wire.ratchet_tree_options import RatchetTreeOption, RatchetTreeRepresentation

NO_EXTENSIONS = AppDataDictionary(component_data=[])


def test_component_ids_are_the_registered_values() -> None:
    assert [int(MimiComponentId[n]) for n in ("frank_aad", "franking_signature_key", "participant_list", "room_metadata")] == [
        0x20, 0x21, 0x22, 0x23,
    ]  # fmt: skip
    assert MimiComponentId.franking_agent is MimiComponentId.franking_signature_key


def test_consent_scope_bytes() -> None:
    scope = ConsentScope(requesterUri=uri("mimi://a/u/x"), targetUri=uri("mimi://b/u/y"), roomId=None)
    assert scope.encode() == b"\x0cmimi://a/u/x" + b"\x0cmimi://b/u/y" + b"\x00"
    with_room = scope.replace(roomId=uri("r"))
    assert with_room.encode().endswith(b"\x01\x01r")


def test_consent_entry_carries_key_packages_only_for_grant() -> None:
    base = dict(requesterUri=uri("a"), targetUri=uri("b"), roomId=None, consent_extensions=NO_EXTENSIONS)
    request = ConsentEntry(consentOperation=ConsentOperation.request, **base)
    assert request.encode() == bytes([1, 1]) + b"a" + bytes([1]) + b"b" + bytes([0, 0])
    grant = ConsentEntry(consentOperation=ConsentOperation.grant, clientKeyPackages=[], **base)
    assert grant.encode() == bytes([2, 1]) + b"a" + bytes([1]) + b"b" + bytes([0, 0, 0])
    with pytest.raises(EncodeError, match="required"):
        ConsentEntry(consentOperation=ConsentOperation.grant, **base).encode()
    assert request.scope() == ConsentScope(requesterUri=uri("a"), targetUri=uri("b"), roomId=None)


@pytest.mark.parametrize(
    ("message", "field", "value"),
    [
        (application(), "frank", None),
        (application(), "frank", frank()),
        (welcome(), "ratchetTreeOption", RatchetTreeOption(representation=RatchetTreeRepresentation.distributionService)),
        (public(ContentType.proposal), "moreProposals", [public(ContentType.proposal)]),
        (public(ContentType.commit), "externalProposals", [public(ContentType.proposal)]),
    ],
)
def test_fanout_select_follows_welcome_or_content_type(message, field, value) -> None:
    fanout = FanoutMessage(timestamp=1_700_000_000_000, message=message, **{field: value})
    data = fanout.encode()
    assert data[:8] == (1_700_000_000_000).to_bytes(8, "big")
    assert data[8:].startswith(message.encode())  # no protocol octet as written (AMB-PROTOCOL-CONTEXT)
    decoded = FanoutMessage.decode(data)
    assert decoded == fanout and decoded.protocol is Protocol.mls10 and fanout.protocol is Protocol.mls10


def test_fanout_rejects_a_branch_the_message_does_not_select() -> None:
    with pytest.raises(EncodeError, match="select"):
        FanoutMessage(timestamp=1, message=welcome(), frank=frank()).encode()


def test_fanout_error_path_names_the_wire_format() -> None:
    data = bytearray(FanoutMessage(timestamp=1, message=application()).encode())
    data[11] = 0x09  # wire_format low octet: 9 is not a WireFormat
    with pytest.raises(DecodeError) as info:
        FanoutMessage.decode(bytes(data))
    assert info.value.path == "FanoutMessage.message.wire_format"


def test_fanout_for_another_protocol_carries_no_message() -> None:
    assert FanoutMessage.decode((5).to_bytes(8, "big"), scope={"protocol": 2}).message is None


def test_fanout_large_ciphertext_is_a_zero_copy_view() -> None:
    payload = bytes(range(256)) * 4096
    data = FanoutMessage(timestamp=1, message=application(payload), frank=frank()).encode()
    ciphertext = FanoutMessage.decode(data).message.private_message.ciphertext
    assert isinstance(ciphertext, memoryview) and ciphertext.obj is data and ciphertext == payload


def test_client_key_material_sees_the_enclosing_response_protocol() -> None:
    client = ClientKeyMaterial(
        clientStatus=KeyMaterialClientCode.nothingCompatible,
        clientUri=uri("mimi://b/d/c1"),
        clientCapabilities=Capabilities(versions=[1], cipher_suites=[1], extensions=[], proposals=[], credentials=[1]),
    )
    response = KeyMaterialResponse(
        protocol=Protocol.mls10, userStatus=KeyMaterialUserCode.noCompatibleMaterial, userUri=uri("u"), clients=[client]
    )
    assert KeyMaterialResponse.decode(response.encode()) == response
    # With protocol reserved(0) in the enclosing struct, the client's select(protocol) branch is absent.
    bare = ClientKeyMaterial(clientStatus=KeyMaterialClientCode.nothingCompatible, clientUri=uri("c"))
    other = KeyMaterialResponse(
        protocol=Protocol.reserved, userStatus=KeyMaterialUserCode.success, userUri=uri("u"), clients=[bare]
    )
    assert other.encode().endswith(b"\x02\x01c")  # clients<V>: status octet + uri, nothing else
    assert KeyMaterialResponse.decode(other.encode()) == other
    with pytest.raises(EncodeError, match="select"):
        other.replace(clients=[client]).encode()


def test_key_material_request_tbs_drops_only_the_signature() -> None:
    request = KeyMaterialRequest(
        protocol=Protocol.mls10,
        requestingUser=uri("a"),
        targetUser=uri("b"),
        roomId=uri("r"),
        acceptableCiphersuites=[1],
        requiredCapabilities=RequiredCapabilities(extension_types=[], proposal_types=[], credential_types=[]),
        requesterSignatureKey=b"pk",
        requesterCredential=basic_credential(),
        key_material_request_signature=b"sig",
    )
    assert request.encode() == request.tbs().encode() + b"\x03sig"


def test_handshake_bundle_select_reads_the_message_content_type() -> None:
    commit = HandshakeBundle(
        proposalOrCommit=public(ContentType.commit),
        welcome=None,
        groupInfoOption=GroupInfoOption(representation=GroupInfoRepresentation.full, groupInfo=group_info()),
        ratchetTreeOption=RatchetTreeOption(representation=RatchetTreeRepresentation.outOfBand, tree_signature=b"s"),
    )
    update = UpdateRequest(bundle=commit)
    assert update.encode() == commit.encode()
    assert UpdateRequest.decode(update.encode()) == update
    proposal = HandshakeBundle(proposalOrCommit=public(ContentType.proposal), moreProposals=[])
    assert proposal.encode() == public(ContentType.proposal).encode() + b"\x00"
    with pytest.raises(EncodeError, match="select"):
        proposal.replace(welcome=None, moreProposals=None, ratchetTreeOption=commit.ratchetTreeOption).encode()


def test_update_room_response_error_description_is_utf8() -> None:
    response = UpdateRoomResponse(responseCode=UpdateResponseCode.wrongEpoch, errorDescription="époque", currentEpoch=9)
    data = response.encode()
    assert data == b"\x01\x07" + "époque".encode() + (9).to_bytes(8, "big")
    bad = data[:2] + b"\xff" + data[3:]
    with pytest.raises(DecodeError, match="UTF-8") as info:
        UpdateRoomResponse.decode(bad)
    assert info.value.path == "UpdateRoomResponse.errorDescription"


def test_submit_response_accepted_carries_timestamp_and_optional_frank() -> None:
    accepted = SubmitMessageResponse(
        protocol=Protocol.mls10, statusCode=SubmitResponseCode.accepted, accepted_timestamp=3, frank=None
    )
    assert accepted.encode() == b"\x01\x00" + (3).to_bytes(8, "big") + b"\x00"
    too_old = SubmitMessageResponse(protocol=Protocol.mls10, statusCode=SubmitResponseCode.epochTooOld, currentEpoch=4)
    assert too_old.encode() == b"\x01\x02" + (4).to_bytes(8, "big")
    denied = SubmitMessageResponse(protocol=Protocol.mls10, statusCode=SubmitResponseCode.notAllowed)
    assert SubmitMessageResponse.decode(denied.encode()) == denied


@pytest.mark.parametrize("status", [GroupInfoCode.notAuthorized, GroupInfoCode.noSuchRoom])
def test_group_info_failure_carries_no_body(status: GroupInfoCode) -> None:
    response = GroupInfoResponse(version=Protocol.mls10, room_id=b"r", status=status)
    assert response.encode() == bytes([1, 1]) + b"r" + bytes([status])


def test_query_element_selects_on_search_type() -> None:
    claim = QueryElement(searchType=SearchIdentifierType.oidcStdClaim, claimName=b"given_name", searchValue=b"Ann")
    assert claim.encode() == b"\x07\x0agiven_name\x03Ann"
    handle = QueryElement(searchType=SearchIdentifierType.handle, searchValue=b"im:a@b")
    assert QueryElement.decode(handle.encode()) == handle


def test_utf8_string_forbids_nul() -> None:
    with pytest.raises(DecodeError, match="NUL") as info:
        RoomMetaData.decode(b"\x00" + b"\x01\x00" + b"\x00" + b"\x00" + b"\x00" + b"\x00")
    assert info.value.path == "RoomMetaData.room_name.string"
    assert UTF8String.decode(b"\x02ok").string == "ok"


def test_decoding_from_a_slice_or_a_bytearray_reads_the_same_positions() -> None:
    fanout = FanoutMessage(timestamp=5, message=application(b"x" * 300), frank=frank())
    data = fanout.encode()
    framed = b"JUNK" + data + b"TAIL"
    assert FanoutMessage.decode(memoryview(framed)[4:-4]) == fanout
    mutable = bytearray(data)
    ciphertext = FanoutMessage.decode(mutable).message.private_message.ciphertext
    assert ciphertext == b"x" * 300 and ciphertext.readonly and ciphertext.obj is mutable
