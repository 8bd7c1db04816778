"""The generated struct decoders/encoders against a plain interpreter of the same field lists.

The interpreter below is the codec's original, unoptimised struct loop (per-codec ``decode`` and
``encode`` for everything that is not a struct, vector or optional). On valid, mutated and random
input both must agree exactly: the same value and leniencies, or a DecodeError with the same path
and reason.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_peer.wire.codec import (
    DEFAULT_SCOPE,
    Codec,
    DecodeError,
    EncodeError,
    Implicit,
    Leniency,
    Optional,
    Scope,
    Struct,
    StructCodec,
    Vector,
    _Ctx,
    alternative_sites,
    read_varint,
    write_varint,
)
from reference_peer.wire.strategies import mutations_of, values_of, wire_structs

STRUCTS = wire_structs()
DIFF = settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def reference_decode(codec: Codec, ctx: _Ctx) -> Any:
    if isinstance(codec, StructCodec):
        values: dict[str, Any] = {}
        ctx.scopes.append(values)
        name = ""
        try:
            for name, fld in codec.fields:
                if fld.when is not None and not fld.when.holds(ctx.scopes, ctx.defaults):
                    values[name] = None
                    continue
                if fld.alt is not None and fld.alt_id in ctx.forced:
                    values[name] = reference_decode(fld.alt.codec, ctx)
                    ctx.leniencies.append(Leniency(fld.alt.ambiguity, f"{codec.name}.{name}", fld.alt.detail))
                else:
                    values[name] = reference_decode(fld.codec, ctx)
        except DecodeError as exc:
            exc.push(name)
            raise
        finally:
            ctx.scopes.pop()
        return codec.cls(**values)
    if isinstance(codec, Vector):
        n = read_varint(ctx)
        end = ctx.pos + n
        if end > len(ctx.buf):
            raise DecodeError(f"truncated: vector of {n} bytes, {len(ctx.buf) - ctx.pos} left", ctx.pos)
        items: list[Any] = []
        outer, ctx.buf = ctx.buf, ctx.buf[:end]
        try:
            while ctx.pos < end:
                try:
                    items.append(reference_decode(codec.elem, ctx))
                except DecodeError as exc:
                    exc.push(f"[{len(items)}]")
                    raise
        finally:
            ctx.buf = outer
        return items
    if isinstance(codec, Optional):
        pos = ctx.pos
        if pos >= len(ctx.buf):
            raise DecodeError("truncated: need an optional presence octet", pos)
        flag = ctx.buf[pos]
        ctx.pos = pos + 1
        if flag == 0:
            return None
        if flag != 1:
            raise DecodeError(f"optional presence octet must be 0 or 1, got {flag}", pos)
        return reference_decode(codec.elem, ctx)
    if isinstance(codec, Implicit):
        return codec.convert(Scope(ctx.scopes, ctx.defaults).get(codec.key))
    return codec.decode(ctx)


def reference_encode(codec: Codec, out: bytearray, value: Any, scope: list[dict[str, Any]]) -> None:
    if isinstance(codec, StructCodec):
        values = value.__dict__
        scope.append(values)
        try:
            for name, fld in codec.fields:
                item = values[name]
                if fld.when is not None and not fld.when.holds(scope, DEFAULT_SCOPE):
                    assert item is None
                    continue
                reference_encode(fld.codec, out, item, scope)
        finally:
            scope.pop()
    elif isinstance(codec, Vector):
        body = bytearray()
        for item in value:
            reference_encode(codec.elem, body, item, scope)
        write_varint(out, len(body))
        out += body
    elif isinstance(codec, Optional):
        if value is None:
            out.append(0)
        else:
            out.append(1)
            reference_encode(codec.elem, out, value, scope)
    else:
        codec.encode(out, value, scope)


def outcome(codec: Codec, data: bytes, forced: frozenset[int], use_reference: bool) -> tuple:
    view = memoryview(data).toreadonly()
    ctx = _Ctx(view, forced, DEFAULT_SCOPE)
    try:
        value = reference_decode(codec, ctx) if use_reference else codec.decode(ctx)
        if ctx.pos != len(view):
            return ("trailing", ctx.pos)
    except DecodeError as exc:
        return ("error", exc.path, exc.reason, exc.offset)
    return ("ok", value, tuple(ctx.leniencies))


def assert_same(cls: type[Struct], data: bytes) -> None:
    codec = cls.__wire__
    for forced in [frozenset(), *(frozenset({site}) for site in alternative_sites(codec))]:
        assert outcome(codec, data, forced, False) == outcome(codec, data, forced, True)


@pytest.mark.parametrize("cls", STRUCTS, ids=lambda c: c.__name__)
def test_generated_coders_match_the_interpreter(cls: type[Struct]) -> None:
    @DIFF
    @given(values_of(cls, max_depth=4), st.data())
    def check(value: Struct, data: st.DataObject) -> None:
        out = bytearray()
        reference_encode(cls.__wire__, out, value, [])
        encoded = value.encode()
        assert encoded == bytes(out)
        assert_same(cls, encoded)
        assert_same(cls, data.draw(st.one_of(mutations_of(cls), st.binary(max_size=64)), label="bytes"))

    check()


def test_generated_encoder_reports_paths_like_before() -> None:
    from reference_peer.wire.mimi import Frank

    with pytest.raises(EncodeError, match=r"^Frank.server_frank: opaque\[32\] needs exactly 32 bytes$"):
        Frank(server_frank=b"short", franking_signature_ciphersuite=1, franking_integrity_signature=b"").encode()
    with pytest.raises(EncodeError, match=r"^Frank.franking_signature_ciphersuite: 70000 out of range for uint16$"):
        Frank(server_frank=bytes(32), franking_signature_ciphersuite=70000, franking_integrity_signature=b"").encode()
    with pytest.raises(EncodeError, match=r"^Frank expected, got str$"):
        Frank.__wire__.encode(bytearray(), "x", [])


def test_structs_too_deep_to_generate_fall_back_to_the_interpreter() -> None:
    from reference_peer.wire.codec import uint8, vector, wire

    spec: Any = uint8
    for _ in range(12):  # more nested loops than CPython compiles in one function
        spec = vector(spec)

    class Deep(Struct):
        """Test-only: twelve nested vectors."""

        x: list = wire(spec)

    value = Deep(x=[[[[[[[[[[[[1, 2]]]]]]]]]]]])
    assert Deep.__wire__.decode_fn.__qualname__.startswith("_interpreted_decoder")
    assert Deep.decode(value.encode()) == value
    bad = bytearray(value.encode())
    bad[11] = 9  # the innermost vector claims 9 bytes, its parent holds 3
    with pytest.raises(DecodeError) as info:
        Deep.decode(bytes(bad))
    assert info.value.path.startswith("Deep.x[0]")
