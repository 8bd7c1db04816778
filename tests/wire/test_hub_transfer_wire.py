"""Hub-transfer extension structs (docs/extensions/hub-transfer.md §3-§6, §11): round trips, strict
decoding, layouts pinned to hand-computed bytes, the default component, redirects, signatures."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from wire_samples import application, basic_credential, group_info, public, uri

from reference_peer.mls.crypto import cipher_suite, vl
from reference_peer.wire import hub_transfer
from reference_peer.wire.codec import DecodeError, EncodeError, Struct
from reference_peer.wire.hub_transfer import (
    ABORT_LABEL,
    ACCEPT_LABEL,
    CAP_TRANSFER_HUB,
    DIRECTORY_KEY,
    HANDOFF_LABEL,
    HUB_REDIRECT_MEDIA_TYPE,
    MIMI_HUB_COMPONENT_ID,
    MIMI_HUB_COMPONENT_ID_32,
    PREPARE_LABEL,
    REQUEST_LABEL,
    HubData,
    HubHandoff,
    HubHandoffTBS,
    HubRedirect,
    HubState,
    HubTransferAbort,
    HubTransferAbortTBS,
    HubTransferAcceptance,
    HubTransferAcceptTBS,
    HubTransferCode,
    HubTransferMessage,
    HubTransferMessageType,
    HubTransferPrepare,
    HubTransferPrepareTBS,
    HubTransferRequest,
    HubTransferRequestTBS,
    HubTransferResponse,
    HubUpdate,
    KeyPackageRoute,
    UndeliveredFanout,
    component_operation_label,
    hub_data_problems,
    initial_hub_data,
    read_hub_data,
    read_hub_redirect,
    safe_sign_with_label,
    safe_verify_with_label,
    sign_hub_handoff,
    sign_hub_transfer_abort,
    sign_hub_transfer_acceptance,
    sign_hub_transfer_prepare,
    sign_hub_transfer_request,
    verify_hub_handoff,
    verify_hub_transfer_abort,
    verify_hub_transfer_acceptance,
    verify_hub_transfer_prepare,
    verify_hub_transfer_request,
)
from reference_peer.wire.hub_transfer_strategies import hub_data, hub_redirects
from reference_peer.wire.identity import MimiUriError
from reference_peer.wire.mimi import FanoutMessage, PendingProposal
from reference_peer.wire.mls import AppDataDictionary, ComponentData, ContentType, ExternalSender
from reference_peer.wire.ratchet_tree_options import RatchetTreeOption, RatchetTreeRepresentation
from reference_peer.wire.strategies import values_of, wire_structs

STRUCTS = sorted(
    (
        obj
        for obj in vars(hub_transfer).values()
        if inspect.isclass(obj) and issubclass(obj, Struct) and obj.__module__ == hub_transfer.__name__
    ),
    key=lambda cls: cls.__name__,
)
EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
SUITE = cipher_suite(1)

ROOM = "mimi://a.example/r/clubhouse"
OLD_HUB = "mimi://a.example"
NEW_HUB = "mimi://b.example"
TRANSFER_ID = bytes(range(16))
NO_EXTENSIONS = AppDataDictionary(component_data=[])


# --------------------------------------------------------------------------------------------
# Hand-built values


def full_tree() -> RatchetTreeOption:
    return RatchetTreeOption(representation=RatchetTreeRepresentation.full, ratchet_tree=[])


def request_tbs(**changes: Any) -> HubTransferRequestTBS:
    values = dict(
        room_id=uri(ROOM),
        group_id=b"group",
        target=uri(NEW_HUB),
        generation=0,
        not_after=1_700_000_600_000,
        initiator=uri("mimi://a.example/u/alice"),
        initiator_leaf_index=2,
    )
    return HubTransferRequestTBS(**(values | changes))


def accept_tbs(new_hub_key: bytes = b"B-key") -> HubTransferAcceptTBS:
    return HubTransferAcceptTBS(
        room_id=uri(ROOM),
        group_id=b"group",
        transfer_id=TRANSFER_ID,
        generation=1,
        old_hub=uri(OLD_HUB),
        new_hub=uri(NEW_HUB),
        not_after=1_700_000_600_000,
        new_hub_sender=ExternalSender(signature_key=new_hub_key, credential=basic_credential(NEW_HUB.encode())),
    )


def prepare_tbs(old_hub_key: bytes = b"A-key") -> HubTransferPrepareTBS:
    return HubTransferPrepareTBS(
        request=HubTransferRequest(content=request_tbs(), signature=b"req-sig"),
        transfer_id=TRANSFER_ID,
        cipher_suite=1,
        old_hub_sender=ExternalSender(signature_key=old_hub_key, credential=basic_credential(OLD_HUB.encode())),
        group_info=group_info(),
        ratchet_tree_option=full_tree(),
        requested_not_after=1_700_000_900_000,
    )


def handoff_tbs() -> HubHandoffTBS:
    return HubHandoffTBS(
        room_id=uri(ROOM),
        group_id=b"group",
        transfer_id=TRANSFER_ID,
        generation=2,
        cutover_epoch=9,
        old_hub=uri(OLD_HUB),
        new_hub=uri(NEW_HUB),
        group_info=group_info(),
        ratchet_tree_option=full_tree(),
        pending_proposals=[PendingProposal(proposal=public(ContentType.proposal), hub_accepted_time=5)],
        routes=[KeyPackageRoute(kp_ref=b"kp-ref", provider=uri("mimi://c.example"), not_after=77)],
        undelivered=[
            UndeliveredFanout(
                destination=uri("mimi://c.example"),
                messages=[
                    FanoutMessage(timestamp=1, message=application(), frank=None),
                    FanoutMessage(timestamp=2, message=public(ContentType.commit), externalProposals=[]),
                ],
            )
        ],
        last_accepted_timestamp=1_700_000_000_123,
        handoff_extensions=NO_EXTENSIONS,
    )


def abort_tbs() -> HubTransferAbortTBS:
    return HubTransferAbortTBS(room_id=uri(ROOM), transfer_id=TRANSFER_ID, reason=b"cut-over deadline passed")


def transferring() -> HubData:
    return HubData(
        room_id=uri(ROOM),
        hub=uri(OLD_HUB),
        generation=1,
        state=HubState.transferring,
        target=uri(NEW_HUB),
        transfer_id=TRANSFER_ID,
        not_after=1_700_000_600_000,
        request=HubTransferRequest(content=request_tbs(), signature=b"req-sig"),
        acceptance=HubTransferAcceptance(content=accept_tbs(), signature=b"acc-sig"),
    )


def messages() -> dict[HubTransferMessageType, HubTransferMessage]:
    T = HubTransferMessageType
    return {
        T.request: HubTransferMessage(
            msg_type=T.request, request=HubTransferRequest(content=request_tbs(), signature=b"s")
        ),
        T.prepare: HubTransferMessage(
            msg_type=T.prepare, prepare=HubTransferPrepare(content=prepare_tbs(), signature=b"s")
        ),
        T.handoff: HubTransferMessage(msg_type=T.handoff, handoff=HubHandoff(content=handoff_tbs(), signature=b"s")),
        T.abort: HubTransferMessage(msg_type=T.abort, abort=HubTransferAbort(content=abort_tbs(), signature=b"s")),
    }


# --------------------------------------------------------------------------------------------
# Code points


def test_code_points_and_names_of_section_3() -> None:
    assert CAP_TRANSFER_HUB == 0xF0A8 and MIMI_HUB_COMPONENT_ID == 0xF0A9 and MIMI_HUB_COMPONENT_ID_32 == 0x8000F0A9
    assert DIRECTORY_KEY == "hubTransfer"
    assert HUB_REDIRECT_MEDIA_TYPE == "application/vnd.mimi-conformance.hub-redirect"
    assert (PREPARE_LABEL, ACCEPT_LABEL, HANDOFF_LABEL, ABORT_LABEL, REQUEST_LABEL) == (
        "HubTransferPrepareTBS", "HubTransferAcceptTBS", "HubHandoffTBS", "HubTransferAbortTBS", "HubTransferRequestTBS",
    )  # fmt: skip
    assert HubUpdate is HubData
    assert [int(s) for s in HubState] == [0, 1, 2]
    assert [m.name for m in HubTransferMessageType] == ["reserved", "request", "prepare", "handoff", "abort"]
    assert [(c.name, int(c)) for c in HubTransferCode][-3:] == [("badSignature", 8), ("notHub", 9), ("busy", 10)]


def test_every_struct_of_the_document_is_defined_and_discovered_by_the_generic_wire_tests() -> None:
    names = {cls.__name__ for cls in STRUCTS}
    assert names == {
        "HubData", "HubTransferRequestTBS", "HubTransferRequest", "HubTransferPrepareTBS", "HubTransferPrepare",
        "HubTransferAcceptTBS", "HubTransferAcceptance", "KeyPackageRoute", "UndeliveredFanout", "HubHandoffTBS",
        "HubHandoff", "HubTransferAbortTBS", "HubTransferAbort", "HubTransferMessage", "HubTransferResponse", "HubRedirect",
    }  # fmt: skip
    assert set(STRUCTS) <= set(wire_structs())
    assert all(cls.__doc__ and "§" in cls.__doc__ for cls in STRUCTS)


# --------------------------------------------------------------------------------------------
# Round trips


def assert_round_trip(value: Struct) -> None:
    data = value.encode()
    decoded = type(value).decode(data)
    assert decoded == value
    assert decoded.encode() == data


@pytest.mark.parametrize("cls", STRUCTS, ids=lambda c: c.__name__)
def test_generated_values_round_trip(cls: type[Struct]) -> None:
    @EXAMPLES
    @given(values_of(cls, max_depth=5))
    def check(value: Struct) -> None:
        assert_round_trip(value)

    check()


@EXAMPLES
@given(hub_data())
def test_well_formed_hub_data_round_trips_and_reads_back_from_the_dictionary(value: HubData) -> None:
    assert hub_data_problems(value) == []
    assert_round_trip(value)
    dictionary = AppDataDictionary(
        component_data=[
            ComponentData(component_id=0x22, data=b"\x00"),
            ComponentData(component_id=MIMI_HUB_COMPONENT_ID, data=value.encode()),
        ]
    )
    assert read_hub_data(dictionary, value.room_id) == value


@EXAMPLES
@given(hub_redirects)
def test_redirects_round_trip_and_are_recognized_for_their_room(redirect: HubRedirect) -> None:
    assert_round_trip(redirect)
    assert read_hub_redirect(HUB_REDIRECT_MEDIA_TYPE, redirect.encode(), redirect.room_id) == redirect


@pytest.mark.parametrize(
    "value",
    [
        initial_hub_data(ROOM, OLD_HUB),
        initial_hub_data(ROOM, NEW_HUB).replace(generation=2, previous_hub=uri(OLD_HUB), last_transfer_id=TRANSFER_ID),
        transferring(),
        *messages().values(),
        HubTransferResponse(
            msg_type=HubTransferMessageType.request,
            code=HubTransferCode.accepted,
            error_description=b"",
            transfer_id=TRANSFER_ID,
        ),
        HubTransferResponse(
            msg_type=HubTransferMessageType.prepare,
            code=HubTransferCode.accepted,
            error_description=b"ok",
            acceptance=HubTransferAcceptance(content=accept_tbs(), signature=b"s"),
        ),
        HubTransferResponse(
            msg_type=HubTransferMessageType.handoff, code=HubTransferCode.replayed, error_description=b"seen"
        ),
        HubRedirect(room_id=uri(ROOM), hub=uri(NEW_HUB), generation=2, epoch=9),
    ],
    ids=lambda v: type(v).__name__,
)
def test_hand_built_values_round_trip(value: Struct) -> None:
    assert_round_trip(value)


def test_each_message_type_carries_only_its_own_arm() -> None:
    arms = {"request", "prepare", "handoff", "abort"}
    for msg_type, message in messages().items():
        decoded = HubTransferMessage.decode(message.encode())
        assert decoded.msg_type is msg_type
        assert [arm for arm in sorted(arms) if getattr(decoded, arm) is not None] == [msg_type.name]
    with pytest.raises(EncodeError, match="HubTransferMessage.prepare is set but its select"):
        messages()[HubTransferMessageType.request].replace(
            prepare=messages()[HubTransferMessageType.prepare].prepare
        ).encode()


@pytest.mark.parametrize("msg_type", list(HubTransferMessageType), ids=lambda t: t.name)
@pytest.mark.parametrize("code", list(HubTransferCode), ids=lambda c: c.name)
def test_response_body_follows_both_message_type_and_code(
    msg_type: HubTransferMessageType, code: HubTransferCode
) -> None:
    head = bytes([msg_type, code]) + vl(b"why")
    accepted = code == HubTransferCode.accepted
    if accepted and msg_type == HubTransferMessageType.request:
        body = TRANSFER_ID
        expected = {"transfer_id": TRANSFER_ID}
    elif accepted and msg_type == HubTransferMessageType.prepare:
        acceptance = HubTransferAcceptance(content=accept_tbs(), signature=b"s")
        body = acceptance.encode()
        expected = {"acceptance": acceptance}
    else:
        body = b""
        expected = {}
    response = HubTransferResponse.decode(head + body)
    assert (response.msg_type, response.code, response.error_description) == (msg_type, code, b"why")
    assert {
        name: getattr(response, name) for name in ("transfer_id", "acceptance") if getattr(response, name) is not None
    } == expected
    assert response.encode() == head + body
    if body:
        with pytest.raises(DecodeError):
            HubTransferResponse.decode(head)  # the arm the select requires is missing
    else:
        with pytest.raises(DecodeError, match="trailing"):
            HubTransferResponse.decode(head + TRANSFER_ID)  # no arm: the 16 octets are trailing


# --------------------------------------------------------------------------------------------
# Known answers, written out from the presentation-language rules


def test_hub_data_known_answer() -> None:
    value = HubData(
        room_id=uri(ROOM),
        hub=uri(NEW_HUB),
        generation=0x01020304,
        state=HubState.stable,
        previous_hub=uri(OLD_HUB),
        last_transfer_id=TRANSFER_ID,
    )
    expected = (
        b"\x1c" + b"mimi://a.example/r/clubhouse"  # room_id: IdentifierUri{opaque uri<V>}, 28 octets
        + b"\x10" + b"mimi://b.example"  # hub, 16 octets
        + b"\x01\x02\x03\x04"  # generation: uint32
        + b"\x01"  # state: stable(1)
        + b"\x01" + b"\x10" + b"mimi://a.example"  # previous_hub: optional<IdentifierUri>, present
        + b"\x10" + bytes(range(16))  # last_transfer_id<V>, 16 octets
    )  # fmt: skip
    assert value.encode() == expected
    assert HubData.decode(expected) == value
    initial = initial_hub_data(ROOM, OLD_HUB)
    assert (
        initial.encode()
        == b"\x1cmimi://a.example/r/clubhouse" + b"\x10mimi://a.example" + bytes(4) + b"\x01" + b"\x00" + b"\x00"
    )


def test_hub_redirect_known_answer() -> None:
    room = "mimi://a.example/r/" + "x" * 51  # 70 octets: a two-octet varint length
    value = HubRedirect(room_id=uri(room), hub=uri(NEW_HUB), generation=2, epoch=0x0102030405060708)
    expected = (
        b"\x40\x46" + room.encode()  # room_id: 70 = 0b01 prefix, 14-bit length 0x0046
        + b"\x10" + b"mimi://b.example"  # hub
        + b"\x00\x00\x00\x02"  # generation: uint32
        + b"\x01\x02\x03\x04\x05\x06\x07\x08"  # epoch: uint64
    )  # fmt: skip
    assert value.encode() == expected
    assert HubRedirect.decode(expected) == value


# --------------------------------------------------------------------------------------------
# Strict decoding


def decode_error(cls: type[Struct], data: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        cls.decode(data)
    return info.value


def test_trailing_bytes_are_refused() -> None:
    for value in [
        initial_hub_data(ROOM, OLD_HUB),
        transferring(),
        *messages().values(),
        HubRedirect(room_id=uri(ROOM), hub=uri(NEW_HUB), generation=0, epoch=0),
    ]:
        assert "trailing" in decode_error(type(value), value.encode() + b"\x00").reason


def test_truncation_is_refused_at_every_length() -> None:
    data = transferring().encode()
    for end in range(len(data)):
        decode_error(HubData, data[:end])


def test_unknown_enum_values_are_refused_with_their_path() -> None:
    data = bytearray(initial_hub_data(ROOM, OLD_HUB).encode())
    state_at = len(data) - 3  # state, previous_hub presence octet, empty last_transfer_id
    data[state_at] = 3
    assert decode_error(HubData, bytes(data)).path == "HubData.state"
    assert decode_error(HubTransferMessage, b"\x05").path == "HubTransferMessage.msg_type"
    assert decode_error(HubTransferResponse, b"\x01\x0b\x00").path == "HubTransferResponse.code"
    assert decode_error(HubTransferResponse, b"\x07\x00\x00").path == "HubTransferResponse.msg_type"


def test_transfer_id_must_be_exactly_16_octets() -> None:
    head = bytes([HubTransferMessageType.request, HubTransferCode.accepted]) + b"\x00"
    assert decode_error(HubTransferResponse, head + bytes(15)).path == "HubTransferResponse.transfer_id"
    assert "trailing" in decode_error(HubTransferResponse, head + bytes(17)).reason
    for cls, value in [(HubTransferAbortTBS, abort_tbs()), (HubHandoffTBS, handoff_tbs()), (HubData, transferring())]:
        with pytest.raises(EncodeError, match=r"transfer_id: opaque\[16\] needs exactly 16 bytes"):
            value.replace(transfer_id=bytes(15)).encode()
        short = value.encode().replace(TRANSFER_ID, TRANSFER_ID[:15], 1)
        decode_error(cls, short)  # every later field shifts: the value no longer fits


def test_optional_presence_octet_and_varints_are_canonical() -> None:
    data = bytearray(initial_hub_data(ROOM, OLD_HUB).encode())
    data[-2] = 2  # previous_hub presence octet
    assert decode_error(HubData, bytes(data)).path == "HubData.previous_hub"
    redirect = HubRedirect(room_id=uri(ROOM), hub=uri(NEW_HUB), generation=0, epoch=0).encode()
    non_minimal = b"\x40\x1c" + redirect[1:]  # 28 written in two octets
    assert "non-minimal" in decode_error(HubRedirect, non_minimal).reason


def test_select_arm_of_another_state_cannot_be_encoded() -> None:
    with pytest.raises(EncodeError, match="HubData.target is set but its select"):
        initial_hub_data(ROOM, OLD_HUB).replace(target=uri(NEW_HUB)).encode()
    with pytest.raises(EncodeError, match="HubData.request is required"):
        transferring().replace(request=None).encode()


def test_reserved_values_decode_with_no_arm() -> None:
    # As for every reserved enum value of the other wire modules: the layout is empty and
    # refusing the value is the receiver's job (hub_data_problems for the component).
    assert HubTransferMessage.decode(b"\x00") == HubTransferMessage(msg_type=HubTransferMessageType.reserved)
    reserved = HubData.decode(b"\x01r\x01h" + bytes(4) + b"\x00")
    assert reserved.state is HubState.reserved and hub_data_problems(reserved) != []


# --------------------------------------------------------------------------------------------
# The component's default and shape


def test_absent_component_reads_as_the_room_authority_at_generation_zero() -> None:
    expected = initial_hub_data(ROOM, OLD_HUB)
    assert read_hub_data(None, ROOM) == expected
    assert read_hub_data(NO_EXTENSIONS, uri(ROOM)) == expected
    assert read_hub_data({0x22: b"\x00"}, ROOM) == expected
    assert expected.previous_hub is None and expected.last_transfer_id == b"" and expected.state is HubState.stable
    with pytest.raises(MimiUriError):
        read_hub_data(None, "https://a.example/r/clubhouse")


def test_present_component_is_decoded_strictly() -> None:
    value = transferring()
    assert read_hub_data({MIMI_HUB_COMPONENT_ID: value.encode()}, ROOM) == value
    with pytest.raises(DecodeError):
        read_hub_data({MIMI_HUB_COMPONENT_ID: value.encode() + b"\x00"}, ROOM)
    twice = AppDataDictionary(
        component_data=[ComponentData(component_id=MIMI_HUB_COMPONENT_ID, data=value.encode())] * 2
    )
    with pytest.raises(DecodeError, match="2 app_data_dictionary entries"):
        read_hub_data(twice, ROOM)
    assert (
        read_hub_data({MIMI_HUB_COMPONENT_ID_32: value.encode()}, ROOM, component_id=MIMI_HUB_COMPONENT_ID_32) == value
    )


def test_last_transfer_id_is_empty_or_16_octets() -> None:
    stable = initial_hub_data(ROOM, NEW_HUB)
    assert hub_data_problems(stable) == [] and hub_data_problems(stable.replace(last_transfer_id=TRANSFER_ID)) == []
    assert hub_data_problems(transferring()) == []
    (problem,) = hub_data_problems(stable.replace(last_transfer_id=bytes(5)))
    assert "5 octets" in problem


# --------------------------------------------------------------------------------------------
# Redirect recognition (§3.4)


def test_redirect_needs_the_media_type_and_the_requested_room() -> None:
    redirect = HubRedirect(room_id=uri(ROOM), hub=uri(NEW_HUB), generation=2, epoch=9)
    body = redirect.encode()
    assert read_hub_redirect(HUB_REDIRECT_MEDIA_TYPE, body, ROOM) == redirect
    assert (
        read_hub_redirect("Application/Vnd.Mimi-Conformance.Hub-Redirect; charset=binary", body, uri(ROOM)) == redirect
    )
    assert read_hub_redirect(None, body, ROOM) is None  # a bare HTTP/2 421
    assert read_hub_redirect("application/octet-stream", body, ROOM) is None
    assert read_hub_redirect(HUB_REDIRECT_MEDIA_TYPE, body, "mimi://a.example/r/other") is None
    assert read_hub_redirect(HUB_REDIRECT_MEDIA_TYPE, body + b"\x00", ROOM) is None
    assert read_hub_redirect(HUB_REDIRECT_MEDIA_TYPE, b"", ROOM) is None


# --------------------------------------------------------------------------------------------
# Signatures


def key_pair() -> tuple[bytes, bytes]:
    return SUITE.generate_signature_key_pair()


SERVER_SIGNED: list[tuple[str, Callable[[], Struct], Callable[..., Struct], Callable[..., bool], type[Struct]]] = [
    (PREPARE_LABEL, prepare_tbs, sign_hub_transfer_prepare, verify_hub_transfer_prepare, HubTransferPrepare),
    (ACCEPT_LABEL, accept_tbs, sign_hub_transfer_acceptance, verify_hub_transfer_acceptance, HubTransferAcceptance),
    (HANDOFF_LABEL, handoff_tbs, sign_hub_handoff, verify_hub_handoff, HubHandoff),
    (ABORT_LABEL, abort_tbs, sign_hub_transfer_abort, verify_hub_transfer_abort, HubTransferAbort),
]


def each_changed_content_byte(signed: Struct) -> list[Struct]:
    """The signed value with one content byte changed, for every position where the result still
    decodes strictly (content is the first field, so it is the encoding's prefix)."""
    data = signed.encode()
    variants = []
    for at in range(len(signed.content.encode())):
        changed = bytearray(data)
        changed[at] ^= 0x01
        try:
            variants.append(type(signed).decode(bytes(changed)))
        except DecodeError:
            continue
    return variants


@pytest.mark.parametrize(
    ("label", "content", "sign", "verify", "cls"), SERVER_SIGNED, ids=[s[0] for s in SERVER_SIGNED]
)
def test_server_signatures_are_rfc9420_sign_with_label(
    label: str, content: Callable[[], Struct], sign, verify, cls
) -> None:
    priv, pub = key_pair()
    tbs = content()
    signed = sign(SUITE, priv, tbs)
    assert isinstance(signed, cls) and signed.content == tbs
    # Ed25519 is deterministic: the signature pins the signed bytes.
    assert signed.signature == SUITE.sign(priv, vl(b"MLS 1.0 " + label.encode()) + vl(tbs.encode()))
    decoded = cls.decode(signed.encode())
    assert verify(SUITE, decoded, pub)
    assert not verify(SUITE, decoded, key_pair()[1]), "a wrong key verified"
    assert not verify(SUITE, decoded.replace(signature=bytes(len(signed.signature))), pub)
    changed = each_changed_content_byte(signed)
    assert len(changed) > 10
    assert not any(verify(SUITE, variant, pub) for variant in changed), "a changed byte verified"


def test_server_labels_separate_the_messages() -> None:
    priv, pub = key_pair()
    abort = sign_hub_transfer_abort(SUITE, priv, abort_tbs())
    assert not SUITE.verify_with_label(pub, HANDOFF_LABEL, abort.content.encode(), abort.signature)
    assert SUITE.verify_with_label(pub, ABORT_LABEL, abort.content.encode(), abort.signature)


def test_acceptance_verifies_with_the_key_it_carries() -> None:
    priv, pub = key_pair()
    acceptance = sign_hub_transfer_acceptance(SUITE, priv, accept_tbs(new_hub_key=pub))
    assert verify_hub_transfer_acceptance(SUITE, acceptance, acceptance.content.new_hub_sender.signature_key)


def test_server_signatures_with_an_ecdsa_suite() -> None:
    p256 = cipher_suite(2)
    priv, pub = p256.generate_signature_key_pair()
    handoff = sign_hub_handoff(p256, priv, handoff_tbs())
    assert verify_hub_handoff(p256, HubHandoff.decode(handoff.encode()), pub)
    assert not verify_hub_handoff(p256, handoff.replace(content=handoff.content.replace(cutover_epoch=10)), pub)


def test_component_operation_label_of_mls_extensions_09() -> None:
    assert component_operation_label(MIMI_HUB_COMPONENT_ID, REQUEST_LABEL) == (
        b"\x0dMLS Component" + b"\xf0\xa9" + b"\x15HubTransferRequestTBS"
    )


def test_request_signature_is_safe_sign_with_label_for_mimi_hub() -> None:
    priv, pub = key_pair()
    tbs = request_tbs()
    request = sign_hub_transfer_request(SUITE, priv, tbs)
    # -09 §4.3: SignWithLabel(key, ComponentOperationLabel, Content), so the SignContent label is
    # "MLS 1.0 " followed by the encoded ComponentOperationLabel.
    label = b"MLS 1.0 " + b"\x0dMLS Component\xf0\xa9\x15HubTransferRequestTBS"
    assert request.signature == SUITE.sign(priv, vl(label) + vl(tbs.encode()))
    decoded = HubTransferMessage.decode(
        HubTransferMessage(msg_type=HubTransferMessageType.request, request=request).encode()
    ).request
    assert verify_hub_transfer_request(SUITE, decoded, pub)
    assert not verify_hub_transfer_request(SUITE, decoded, key_pair()[1])
    assert not verify_hub_transfer_request(SUITE, decoded, pub, component_id=0xF0AA)
    assert not verify_hub_transfer_request(SUITE, decoded.replace(content=tbs.replace(initiator_leaf_index=3)), pub)
    assert not any(verify_hub_transfer_request(SUITE, variant, pub) for variant in each_changed_content_byte(request))
    # Not interchangeable with a plain MLS signature over the same content and label.
    plain = SUITE.sign_with_label(priv, REQUEST_LABEL, tbs.encode())
    assert not verify_hub_transfer_request(SUITE, decoded.replace(signature=plain), pub)


def test_request_signature_for_a_32_bit_component_id() -> None:
    priv, pub = key_pair()
    tbs = request_tbs()
    request = sign_hub_transfer_request(SUITE, priv, tbs, component_id=MIMI_HUB_COMPONENT_ID_32)
    # The editor's copy: SignWithLabel(key, "ComponentOperationLabel", {label, uint32 component_id, context}).
    wrapped = vl(REQUEST_LABEL.encode()) + b"\x80\x00\xf0\xa9" + vl(tbs.encode())
    assert request.signature == SUITE.sign(priv, vl(b"MLS 1.0 ComponentOperationLabel") + vl(wrapped))
    assert verify_hub_transfer_request(SUITE, request, pub, component_id=MIMI_HUB_COMPONENT_ID_32)
    assert not verify_hub_transfer_request(SUITE, request, pub)


def test_safe_sign_with_label_is_bound_to_the_component() -> None:
    priv, pub = key_pair()
    signature = safe_sign_with_label(SUITE, priv, 0x0020, "Label", b"content")
    assert safe_verify_with_label(SUITE, pub, 0x0020, "Label", b"content", signature)
    assert not safe_verify_with_label(SUITE, pub, 0x0021, "Label", b"content", signature)
    assert not safe_verify_with_label(SUITE, pub, 0x0020, "Label2", b"content", signature)
    assert not safe_verify_with_label(SUITE, pub, 0x0020, "Label", b"content!", signature)
