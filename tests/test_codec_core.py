"""The TLS-PL codec core: varints, vectors, optionals, enums, selects, error paths, leniencies."""

from __future__ import annotations

import pytest

from reference_peer.wire.codec import (
    DecodeError,
    EncodeError,
    Enum8,
    Implicit,
    Struct,
    _Ctx,
    case,
    decode_value,
    encode_value,
    opaque,
    opaque_view,
    optional,
    read_varint,
    uint8,
    uint16,
    uint32,
    vector,
    wire,
    write_varint,
)


class Color(Enum8):
    red = 1
    green = 2


class Inner(Struct):
    color: Color = wire(Color)
    blob: bytes = wire(opaque)


class Outer(Struct):
    kind: int = wire(uint8)
    items: list[Inner] = wire(vector(Inner))
    maybe: int | None = wire(optional(uint32))
    extra: bytes = wire(opaque, when=case("kind", 7))


class WithImplicit(Struct):
    protocol: int = wire(Implicit("protocol"), alt=(uint8, "AMB-TEST", "explicit protocol octet"))
    body: bytes = wire(opaque_view)


@pytest.mark.parametrize(
    ("n", "encoded"),
    [(0, "00"), (63, "3f"), (64, "4040"), (16383, "7fff"), (16384, "80004000"), ((1 << 30) - 1, "bfffffff")],
)
def test_varint_boundaries_roundtrip(n: int, encoded: str) -> None:
    out = bytearray()
    write_varint(out, n)
    assert out.hex() == encoded
    ctx = _Ctx(memoryview(bytes(out)), frozenset(), {})
    assert read_varint(ctx) == n and ctx.pos == len(out)


def test_varint_above_maximum_cannot_be_encoded() -> None:
    with pytest.raises(EncodeError):
        write_varint(bytearray(), 1 << 30)


@pytest.mark.parametrize("encoded", ["4001", "4000", "80000001", "80003fff"])
def test_non_minimal_varint_rejected(encoded: str) -> None:
    with pytest.raises(DecodeError, match="non-minimal"):
        decode_value(opaque, bytes.fromhex(encoded) + b"\x00" * 64)


def test_varint_prefix_11_rejected() -> None:
    with pytest.raises(DecodeError, match="0b11"):
        decode_value(opaque, bytes.fromhex("c0000000"))


def test_error_path_names_nested_field() -> None:
    value = Outer(kind=1, items=[Inner(color=Color.red, blob=b"a"), Inner(color=Color.green, blob=b"b")], maybe=None)
    data = bytearray(value.encode())
    data[5] = 9  # the second Inner's color
    with pytest.raises(DecodeError) as info:
        Outer.decode(bytes(data))
    assert info.value.path == "Outer.items[1].color"
    assert "not a Color" in str(info.value)


def test_trailing_bytes_and_truncation() -> None:
    data = Outer(kind=7, items=[], maybe=5, extra=b"xyz").encode()
    assert Outer.decode(data).extra == b"xyz"
    with pytest.raises(DecodeError, match="trailing"):
        Outer.decode(data + b"\x00")
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            Outer.decode(data[:cut])


def test_element_may_not_overrun_its_vector() -> None:
    # vector says 2 bytes; the element inside claims a 5-byte blob
    data = bytes([1, 2, 1, 5]) + b"abcde" + b"\x00"
    with pytest.raises(DecodeError, match="truncated") as info:
        Outer.decode(data)
    assert info.value.path.startswith("Outer.items[0]")


def test_optional_presence_octet_must_be_0_or_1() -> None:
    data = bytearray(Outer(kind=1, items=[], maybe=None).encode())
    data[2] = 2
    with pytest.raises(DecodeError, match="0 or 1"):
        Outer.decode(bytes(data))


def test_select_mismatch_is_an_encode_error() -> None:
    with pytest.raises(EncodeError, match="select"):
        Outer(kind=1, items=[], maybe=None, extra=b"x").encode()
    with pytest.raises(EncodeError, match="required"):
        Outer(kind=7, items=[], maybe=None).encode()


def test_out_of_range_enum_encodes_but_does_not_decode() -> None:
    data = encode_value(Inner, Inner(color=200, blob=b""))  # crafting a negative case is allowed
    with pytest.raises(DecodeError, match="not a Color"):
        Inner.decode(data)


def test_uint_range_checked_on_encode() -> None:
    with pytest.raises(EncodeError):
        encode_value(uint16, 70000)


def test_zero_copy_view_shares_the_input_buffer() -> None:
    payload = bytes(range(256)) * 64
    data = WithImplicit(body=payload).encode()
    decoded = WithImplicit.decode(data)
    assert isinstance(decoded.body, memoryview)
    assert decoded.body.obj is data  # a slice of the input, not a copy
    assert decoded.body == payload
    assert decoded.protocol == 1  # the room's protocol (MLS 1.0) from the default scope


def test_tolerant_decoding_records_the_leniency_it_used() -> None:
    explicit = bytes([1]) + WithImplicit(body=b"hi").encode()
    with pytest.raises(DecodeError):
        WithImplicit.decode(explicit)
    decoded = WithImplicit.decode_tolerant(explicit)
    assert decoded.value.body == b"hi"
    assert [(lc.ambiguity, lc.path) for lc in decoded.leniencies] == [("AMB-TEST", "WithImplicit.protocol")]
    clean = WithImplicit.decode_tolerant(WithImplicit(body=b"hi").encode())
    assert clean.leniencies == ()


def test_decode_sequence_reads_concatenated_values() -> None:
    one = Inner(color=Color.red, blob=b"1")
    two = Inner(color=Color.green, blob=b"22")
    assert Inner.decode_sequence(one.encode() + two.encode()) == [one, two]
    with pytest.raises(DecodeError) as info:
        Inner.decode_sequence(one.encode() + b"\x09")
    assert info.value.path.startswith("Inner[1]")


def test_repr_and_as_dict_are_readable() -> None:
    value = Outer(kind=7, items=[Inner(color=Color.red, blob=b"\xff" * 40)], maybe=None, extra=b"")
    assert "Color.red" in repr(value) and "+24" in repr(value)
    assert value.as_dict()["items"][0] == {"color": "red", "blob": "ff" * 40}


def test_prefix_reader_reads_values_in_sequence_and_reports_truncation() -> None:
    from reference_peer.wire.codec import PrefixReader

    data = Inner(color=Color.green, blob=b"ab").encode() + b"\x00\x00"
    reader = PrefixReader(data)
    assert reader.value(Inner) == Inner(color=Color.green, blob=b"ab")
    assert reader.remaining == 2 and reader.fixed(2) == b"\x00\x00" and reader.remaining == 0
    with pytest.raises(DecodeError, match="truncated"):
        PrefixReader(b"\x05ab").opaque()
