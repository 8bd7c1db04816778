"""TLS presentation language codec (RFC 8446 §3) with RFC 9420 variable-length vectors.

One declarative description per struct drives encoding, strict and tolerant decoding, equality
and repr::

    class IdentifierUri(Struct):
        uri: bytes = wire(opaque)

    class KeyMaterialRequest(Struct):
        protocol: Protocol = wire(Protocol)
        ...
        acceptableCiphersuites: list[int] = wire(vector(uint16), when=case("protocol", Protocol.mls10))

Strict decoding rejects trailing bytes, non-minimal varints, out-of-range enums and truncation,
each with a :class:`DecodeError` naming the field path (``FanoutMessage.message.wire_format``).
Tolerant decoding additionally accepts the alternative layouts that the drafts' own
inconsistencies allow (declared per field with ``alt=``) and records each one used as a
:class:`Leniency` that names the ambiguity it relies on (docs/spec-ambiguities.md).

Large opaque fields declared ``opaque_view`` decode to read-only memoryview slices of the input
(zero copy); everything else decodes to ``bytes``.

Speed: when a struct class is created, its field list is compiled into one Python decode and one
encode function (integers, enums, opaque, fixed, optional and vector fields inlined; nested
structs called directly). The per-codec ``decode``/``encode`` methods define the behaviour and
serve every codec the generator does not inline. benchmarks/bench_codec.py measures the result.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, NamedTuple

# --------------------------------------------------------------------------------------------
# Errors and leniencies


class DecodeError(ValueError):
    """Malformed bytes. ``path`` names the field, outermost first."""

    def __init__(self, reason: str, offset: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset
        self._parts: list[str] = []

    def push(self, part: str) -> None:
        self._parts.append(part)

    @property
    def path(self) -> str:
        out = ""
        for part in reversed(self._parts):
            out += part if part.startswith("[") or not out else "." + part
        return out

    def __str__(self) -> str:
        where = f" (offset {self.offset})" if self.offset is not None else ""
        return f"{self.path or '<value>'}: {self.reason}{where}"


class EncodeError(ValueError):
    """A value that cannot be encoded (out of range, wrong type, select mismatch)."""


class Leniency(NamedTuple):
    """One departure from the as-written layout that tolerant decoding accepted."""

    ambiguity: str  # the ID of the entry in docs/spec-ambiguities.md
    path: str
    detail: str


class Decoded(NamedTuple):
    value: Any
    leniencies: tuple[Leniency, ...]


# --------------------------------------------------------------------------------------------
# Reader and decoding context


class _Ctx:
    """Per-decode state: the input, the position, the scopes of enclosing structs."""

    __slots__ = ("buf", "pos", "forced", "leniencies", "scopes", "defaults", "scope", "raw")

    def __init__(self, buf: memoryview, forced: frozenset[int], defaults: dict[str, Any]) -> None:
        self.buf = buf
        self.pos = 0
        self.forced = forced
        self.leniencies: list[Leniency] = []
        self.scopes: list[dict[str, Any]] = []
        self.defaults = defaults
        # One Scope for the whole decode: it reads ``scopes`` live, which grows and shrinks in place.
        self.scope = Scope(self.scopes, defaults)
        # Same bytes, same positions, faster to index and to copy small slices from: the input's
        # bytes object when the view covers all of it, else the view itself.
        obj = buf.obj
        self.raw = obj if type(obj) is bytes and buf.format == "B" and buf.nbytes == len(obj) else buf

    def take(self, n: int) -> memoryview:
        pos = self.pos
        end = pos + n
        if end > len(self.buf):
            raise DecodeError(f"truncated: need {n} bytes, {len(self.buf) - pos} left", pos)
        self.pos = end
        return self.buf[pos:end]


class Scope:
    """What a ``select`` can see: fields decoded so far, then enclosing structs, then defaults."""

    __slots__ = ("_chain", "_defaults")

    def __init__(self, chain: list[dict[str, Any]], defaults: dict[str, Any]) -> None:
        self._chain = chain
        self._defaults = defaults

    def get(self, name: str) -> Any:
        chain = self._chain
        if chain and name in chain[-1]:  # the usual case: a field of the struct being read
            return chain[-1][name]
        for values in reversed(chain):
            if name in values:
                return values[name]
        if name in self._defaults:
            return self._defaults[name]
        raise KeyError(name)


# The protocol of the room is not carried in some -06 structs (FanoutMessage, UpdateRequest,
# ClientKeyMaterial's select). The suite reads it as the room's protocol: MLS 1.0 (AMB-PROTOCOL-CONTEXT).
DEFAULT_SCOPE: dict[str, Any] = {"protocol": 1}


# --------------------------------------------------------------------------------------------
# Codec types


class Codec:
    """A wire type: knows how to decode from a context and encode into a bytearray."""

    name = "?"

    def decode(self, ctx: _Ctx) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, out: bytearray, value: Any, scope: list[dict[str, Any]]) -> None:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


class UInt(Codec):
    __slots__ = ("size", "name", "max")

    def __init__(self, size: int) -> None:
        self.size = size
        self.name = f"uint{size * 8}"
        self.max = (1 << (size * 8)) - 1

    def decode(self, ctx: _Ctx) -> int:
        pos = ctx.pos
        end = pos + self.size
        if end > len(ctx.buf):
            raise DecodeError(f"truncated: need {self.size} bytes for {self.name}", pos)
        ctx.pos = end
        return int.from_bytes(ctx.buf[pos:end], "big")

    def encode(self, out: bytearray, value: Any, scope: list[dict[str, Any]]) -> None:
        if not isinstance(value, int):
            raise EncodeError(f"{self.name} needs an int, got {type(value).__name__}")
        if not 0 <= value <= self.max:
            raise EncodeError(f"{value} out of range for {self.name}")
        out += int(value).to_bytes(self.size, "big")


uint8 = UInt(1)
uint16 = UInt(2)
uint32 = UInt(4)
uint64 = UInt(8)

VARINT_MAX = (1 << 30) - 1


def read_varint(ctx: _Ctx) -> int:
    """RFC 9420 §2.1.2 variable-size length; non-minimal encodings are rejected."""
    value, ctx.pos = varint_at(ctx.buf, ctx.pos)
    return value


def varint_at(buf: memoryview, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it (see :func:`read_varint`)."""
    if pos >= len(buf):
        raise DecodeError("truncated: need a length prefix", pos)
    first = buf[pos]
    prefix = first >> 6
    if prefix == 0:
        return first, pos + 1
    if prefix == 1:
        if pos + 2 > len(buf):
            raise DecodeError("truncated: 2-byte length prefix", pos)
        value = ((first & 0x3F) << 8) | buf[pos + 1]
        if value < 64:
            raise DecodeError(f"non-minimal length prefix for {value}", pos)
        return value, pos + 2
    if prefix == 2:
        if pos + 4 > len(buf):
            raise DecodeError("truncated: 4-byte length prefix", pos)
        value = int.from_bytes(buf[pos : pos + 4], "big") & 0x3FFFFFFF
        if value < 16384:
            raise DecodeError(f"non-minimal length prefix for {value}", pos)
        return value, pos + 4
    raise DecodeError("invalid length prefix 0b11", pos)


def write_varint(out: bytearray, n: int) -> None:
    if n < 64:
        out.append(n)
    elif n < 16384:
        out += (0x4000 | n).to_bytes(2, "big")
    elif n <= VARINT_MAX:
        out += (0x80000000 | n).to_bytes(4, "big")
    else:
        raise EncodeError(f"length {n} exceeds the varint maximum {VARINT_MAX}")


class Opaque(Codec):
    """``opaque x<V>``; ``view=True`` returns a zero-copy read-only memoryview."""

    __slots__ = ("view", "name")

    def __init__(self, view: bool = False) -> None:
        self.view = view
        self.name = "opaque<V>"

    def decode(self, ctx: _Ctx) -> bytes | memoryview:
        n = read_varint(ctx)
        data = ctx.take(n)
        return data if self.view else bytes(data)

    def encode(self, out: bytearray, value: Any, scope: list[dict[str, Any]]) -> None:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise EncodeError(f"opaque needs bytes, got {type(value).__name__}")
        write_varint(out, len(value))
        out += value


opaque = Opaque()
opaque_view = Opaque(view=True)


class Utf8(Opaque):
    """``opaque x<V>`` holding UTF-8 text; decodes to ``str``."""

    __slots__ = ("allow_nul",)

    def __init__(self, allow_nul: bool = True) -> None:
        super().__init__()
        self.allow_nul = allow_nul
        self.name = "utf8<V>"

    def decode(self, ctx: _Ctx) -> str:
        start = ctx.pos
        raw = super().decode(ctx)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"invalid UTF-8: {exc.reason}", start) from None
        if not self.allow_nul and "\x00" in text:
            raise DecodeError("NUL character in a string that forbids it", start)
        return text

    def encode(self, out: bytearray, value: Any, scope: list[dict[str, Any]]) -> None:
        if not isinstance(value, str):
            raise EncodeError(f"utf8 needs str, got {type(value).__name__}")
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise EncodeError(f"not encodable as UTF-8: {exc.reason}") from None
        super().encode(out, data, scope)


utf8 = Utf8()


class Fixed(Codec):
    """``opaque x[n]`` / ``uint8 x[n]``: exactly n bytes."""

    __slots__ = ("size", "name")

    def __init__(self, size: int) -> None:
        self.size = size
        self.name = f"opaque[{size}]"

    def decode(self, ctx: _Ctx) -> bytes:
        return bytes(ctx.take(self.size))

    def encode(self, out: bytearray, value: Any, scope: list[dict[str, Any]]) -> None:
        if not isinstance(value, (bytes, bytearray, memoryview)) or len(value) != self.size:
            raise EncodeError(f"{self.name} needs exactly {self.size} bytes")
        out += value


class Vector(Codec):
    """``T x<V>``: a varint byte length, then elements that must fill it exactly."""

    __slots__ = ("elem", "name")

    def __init__(self, elem: Codec) -> None:
        self.elem = elem
        self.name = f"{elem.name}<V>"

    def decode(self, ctx: _Ctx) -> list[Any]:
        n = read_varint(ctx)
        end = ctx.pos + n
        if end > len(ctx.buf):
            raise DecodeError(f"truncated: vector of {n} bytes, {len(ctx.buf) - ctx.pos} left", ctx.pos)
        items: list[Any] = []
        elem = self.elem
        # Elements are decoded against a view that ends where the vector ends, so an element
        # that overruns the vector is truncation, not a read into the next field.
        outer = ctx.buf
        ctx.buf = outer[:end]
        try:
            while ctx.pos < end:
                try:
                    items.append(elem.decode(ctx))
                except DecodeError as exc:
                    exc.push(f"[{len(items)}]")
                    raise
        finally:
            ctx.buf = outer
        return items

    def encode(self, out: bytearray, value: Any, scope: list[dict[str, Any]]) -> None:
        if not isinstance(value, (list, tuple)):
            raise EncodeError(f"vector needs a list, got {type(value).__name__}")
        body = bytearray()
        for item in value:
            self.elem.encode(body, item, scope)
        write_varint(out, len(body))
        out += body


class Optional(Codec):
    """``optional<T>``: a presence octet 0 or 1, then T if present."""

    __slots__ = ("elem", "name")

    def __init__(self, elem: Codec) -> None:
        self.elem = elem
        self.name = f"optional<{elem.name}>"

    def decode(self, ctx: _Ctx) -> Any:
        pos = ctx.pos
        if pos >= len(ctx.buf):
            raise DecodeError("truncated: need an optional presence octet", pos)
        flag = ctx.buf[pos]
        ctx.pos = pos + 1
        if flag == 0:
            return None
        if flag != 1:
            raise DecodeError(f"optional presence octet must be 0 or 1, got {flag}", pos)
        return self.elem.decode(ctx)

    def encode(self, out: bytearray, value: Any, scope: list[dict[str, Any]]) -> None:
        if value is None:
            out.append(0)
        else:
            out.append(1)
            self.elem.encode(out, value, scope)


class Enum8(enum.IntEnum):
    """Base for 1-octet TLS enums."""


class Enum16(enum.IntEnum):
    """Base for 2-octet TLS enums."""


class EnumCodec(Codec):
    __slots__ = ("cls", "uint", "name", "_members")

    def __init__(self, cls: type[enum.IntEnum]) -> None:
        self.cls = cls
        self.uint = uint16 if issubclass(cls, Enum16) else uint8
        self.name = cls.__name__
        self._members = {int(m): m for m in cls}

    def decode(self, ctx: _Ctx) -> enum.IntEnum:
        pos = ctx.pos
        raw = self.uint.decode(ctx)
        member = self._members.get(raw)
        if member is None:
            raise DecodeError(f"value {raw} is not a {self.name}", pos)
        return member

    def encode(self, out: bytearray, value: Any, scope: list[dict[str, Any]]) -> None:
        # Encoding accepts any int that fits the width, so negative checks can send
        # out-of-range values; decoding is where the enum is enforced.
        self.uint.encode(out, int(value) if isinstance(value, int) else value, scope)


class Implicit(Codec):
    """A field the as-written struct does not carry: takes its value from the scope.

    With ``kind`` (an IntEnum class), a value that is one of its members is returned as that
    member (``Protocol.mls10`` rather than ``1``); any other value is returned as it is.
    """

    __slots__ = ("key", "name", "members")

    def __init__(self, key: str, kind: type[enum.IntEnum] | None = None) -> None:
        self.key = key
        self.name = f"implicit({key})"
        self.members = {int(m): m for m in kind} if kind is not None else None

    def convert(self, value: Any) -> Any:
        if self.members is not None and isinstance(value, int):
            return self.members.get(value, value)
        return value

    def decode(self, ctx: _Ctx) -> Any:
        return self.convert(ctx.scope.get(self.key))

    def encode(self, out: bytearray, value: Any, scope: list[dict[str, Any]]) -> None:
        pass


class Empty(Codec):
    """``struct {}``."""

    name = "struct{}"

    def decode(self, ctx: _Ctx) -> None:
        return None

    def encode(self, out: bytearray, value: Any, scope: list[dict[str, Any]]) -> None:
        if value is not None:
            raise EncodeError("struct{} takes no value")


class PrefixReader:
    """Reads values one after another from a buffer, for layouts the struct language cannot say.

    RFC 9420 has a few: PrivateMessageContent (content, auth, then zero padding to the end), and
    headers read before the value they describe. Every failure is a :class:`DecodeError`.
    """

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._ctx = _Ctx(memoryview(data).toreadonly(), frozenset(), DEFAULT_SCOPE)

    @property
    def pos(self) -> int:
        return self._ctx.pos

    @property
    def remaining(self) -> int:
        return len(self._ctx.buf) - self._ctx.pos

    def value(self, spec: Any) -> Any:
        """One value of a wire type (a Struct class, an enum class or a codec)."""
        return as_codec(spec).decode(self._ctx)

    def varint(self) -> int:
        return read_varint(self._ctx)

    def opaque(self) -> bytes:
        return bytes(self._ctx.take(read_varint(self._ctx)))

    def fixed(self, n: int) -> bytes:
        return bytes(self._ctx.take(n))


def as_codec(spec: Any) -> Codec:
    if isinstance(spec, Codec):
        return spec
    if isinstance(spec, type) and issubclass(spec, Struct):
        return spec.__wire__
    if isinstance(spec, type) and issubclass(spec, enum.IntEnum):
        return EnumCodec(spec)
    raise TypeError(f"not a wire type: {spec!r}")


def vector(elem: Any) -> Vector:
    return Vector(as_codec(elem))


def optional(elem: Any) -> Optional:
    return Optional(as_codec(elem))


def fixed(size: int) -> Fixed:
    return Fixed(size)


# --------------------------------------------------------------------------------------------
# select: conditions on earlier fields (or enclosing structs)


class Case:
    """``select (selector) { case v1: case v2: ... }`` as a condition on a field.

    ``selector`` is a field name (looked up in this struct, then enclosing structs, then the
    default scope) or a callable taking a :class:`Scope`.
    """

    __slots__ = ("selector", "values", "negate")

    def __init__(self, selector: str | Callable[[Scope], Any], values: tuple[Any, ...], negate: bool = False) -> None:
        self.selector = selector
        self.values = values
        self.negate = negate

    def holds(self, chain: list[dict[str, Any]], defaults: dict[str, Any]) -> bool:
        selector = self.selector
        if selector.__class__ is str:
            # Fast path: the usual select names an earlier field of the same struct.
            values = chain[-1]
            if selector in values:
                return (values[selector] in self.values) != self.negate
        scope = Scope(chain, defaults)
        try:
            got = self.selector(scope) if callable(self.selector) else scope.get(self.selector)
        except KeyError:
            return False
        return (got in self.values) != self.negate

    def holds_in(self, scope: Scope) -> bool:
        """:meth:`holds` for a ready :class:`Scope` (what generated decoders call)."""
        try:
            got = self.selector(scope) if callable(self.selector) else scope.get(self.selector)
        except KeyError:
            return False
        return (got in self.values) != self.negate

    def describe(self) -> str:
        sel = self.selector if isinstance(self.selector, str) else getattr(self.selector, "__name__", "?")
        names = ", ".join(getattr(v, "name", str(v)) for v in self.values)
        return f"{sel} {'not in' if self.negate else 'in'} ({names})"


def case(selector: str | Callable[[Scope], Any], *values: Any) -> Case:
    return Case(selector, values)


def case_not(selector: str | Callable[[Scope], Any], *values: Any) -> Case:
    return Case(selector, values, negate=True)


class Alternative(NamedTuple):
    """A layout the drafts' inconsistency also allows; used only by tolerant decoding."""

    codec: Codec
    ambiguity: str
    detail: str


_ALT_IDS = iter(range(1, 1 << 30))


@dataclasses.dataclass(frozen=True)
class WireField:
    codec: Codec
    when: Case | None = None
    alt: Alternative | None = None
    alt_id: int = 0
    doc: str = ""


def wire(spec: Any, *, when: Case | None = None, alt: tuple[Any, str, str] | None = None, doc: str = "") -> Any:
    """Declare a struct field: its wire type, an optional ``select`` condition, an optional
    alternative layout ``(spec, ambiguity_id, detail)`` accepted by tolerant decoding."""
    alternative = Alternative(as_codec(alt[0]), alt[1], alt[2]) if alt else None
    return WireField(as_codec(spec), when, alternative, next(_ALT_IDS) if alt else 0, doc)


# --------------------------------------------------------------------------------------------
# Structs


class StructCodec(Codec):
    __slots__ = ("cls", "name", "fields", "simple", "_decode_fn", "_encode_fn", "_alt_sites")

    def __init__(self, cls: type[Struct], fields: list[tuple[str, WireField]]) -> None:
        self.cls = cls
        self.name = cls.__name__
        self.fields = fields
        self.simple = all(f.when is None and f.alt is None for _, f in fields)
        # Generated on first use, not at import: a process compiles only the coders it uses (compiling all
        # of them took about 0.3 s of every start of a peer or of the suite).
        self._decode_fn: Callable[[_Ctx], Struct] | None = None
        self._encode_fn: Callable[[bytearray, Any, list[dict[str, Any]]], None] | None = None
        self._alt_sites: list[int] | None = None

    @property
    def decode_fn(self) -> Callable[[_Ctx], Struct]:
        if self._decode_fn is None:
            self._decode_fn = _compile_struct_decoder(self)
        return self._decode_fn

    @property
    def encode_fn(self) -> Callable[[bytearray, Any, list[dict[str, Any]]], None]:
        if self._encode_fn is None:
            self._encode_fn = _compile_struct_encoder(self)
        return self._encode_fn

    def alt_sites(self) -> list[int]:
        """:func:`alternative_sites` of this struct, computed once (tolerant decoding asks often)."""
        if self._alt_sites is None:
            self._alt_sites = alternative_sites(self)
        return self._alt_sites

    def decode(self, ctx: _Ctx) -> Struct:
        return self.decode_fn(ctx)

    def encode(self, out: bytearray, value: Any, scope: list[dict[str, Any]]) -> None:
        self.encode_fn(out, value, scope)


# --------------------------------------------------------------------------------------------
# Generated decoders
#
# Each StructCodec gets a decode function generated from its field list: integers, enums, opaque,
# fixed, optional and vector fields are read inline from locals (``raw``/``buf``/``pos``/``size``);
# selects on an earlier field of the same struct compare inline; small structs made only of such
# fields ("flat") are inlined into their parent; anything else calls its codec. The behaviour
# (values, errors and their paths, leniencies) is that of the per-codec ``decode`` methods and of
# ``_interpreted_decoder``, which tests/wire/test_generated_coders.py checks on random input.


_INLINE_LEAVES = (UInt, EnumCodec, Opaque, Fixed, Empty)


def _is_leaf(codec: Codec) -> bool:
    """Read entirely inline, so nothing inside can look at the scope chain."""
    kind = type(codec)
    if kind in (Vector, Optional):
        return _is_leaf(codec.elem)
    if kind is StructCodec:
        return _is_flat_struct(codec)
    return kind in _INLINE_LEAVES


def _is_flat_struct(sc: StructCodec) -> bool:
    """A leaf struct with no struct inside: small enough to inline wherever it appears (inlining
    deeper structs would multiply the generated code and its block nesting)."""
    return _is_leaf_struct(sc) and not any(
        type(_innermost(f.codec)) is StructCodec or (f.alt is not None and type(_innermost(f.alt.codec)) is StructCodec)
        for _, f in sc.fields
    )


def _innermost(codec: Codec) -> Codec:
    while type(codec) in (Vector, Optional):
        codec = codec.elem
    return codec


def _is_leaf_struct(sc: StructCodec) -> bool:
    """Only inline fields, selects only on its own earlier fields: such a struct keeps its values
    in locals, never joins the scope chain (no code inside it could look there) and is inlined
    into the decoder of any struct that contains it."""
    earlier: set[str] = set()
    for name, fld in sc.fields:
        if not _is_leaf(fld.codec) or (fld.alt is not None and not _is_leaf(fld.alt.codec)):
            return False
        if fld.when is not None and not (isinstance(fld.when.selector, str) and fld.when.selector in earlier):
            return False
        earlier.add(name)
    return True


def _field_lines(sc: StructCodec, i: int, tag: str, env: dict[str, Any], leaf: bool) -> list[str]:
    """Decode field ``i`` of ``sc`` into its slot: a local ``f{tag}_{i}`` (leaf) or ``values[name]``."""
    name, fld = sc.fields[i]
    body: list[str] = []
    if fld.alt is not None:
        env[f"ALT_ID{tag}_{i}"] = fld.alt_id
        env[f"LENIENCY{tag}_{i}"] = Leniency(fld.alt.ambiguity, f"{sc.name}.{name}", fld.alt.detail)
        body.append(f"if ctx.forced and ALT_ID{tag}_{i} in ctx.forced:")
        body += _indent(_read_lines(fld.alt.codec, f"{tag}_a{i}", env))
        body.append(f"    ctx.leniencies.append(LENIENCY{tag}_{i})")
        body.append("else:")
        body += _indent(_read_lines(fld.codec, f"{tag}_{i}", env))
    else:
        body += _read_lines(fld.codec, f"{tag}_{i}", env)
    if fld.when is not None:
        when = fld.when
        env[f"WHEN{tag}_{i}"] = when
        env[f"VALUES{tag}_{i}"] = when.values
        test = f"{'not in' if when.negate else 'in'} VALUES{tag}_{i}"
        own = {n: j for j, (n, _) in enumerate(sc.fields[:i])}
        if isinstance(when.selector, str) and when.selector in own:
            earlier = f"f{tag}_{own[when.selector]}" if leaf else f"values{tag}[{when.selector!r}]"
            select = [f"if {earlier} {test}:"]
        elif callable(when.selector):
            env[f"SELECTOR{tag}_{i}"] = when.selector
            select = [
                "try:",
                f"    selected = SELECTOR{tag}_{i}(ctx.scope) {test}",
                "except KeyError:",
                "    selected = False",
                "if selected:",
            ]
        else:
            select = [f"if WHEN{tag}_{i}.holds_in(ctx.scope):"]
        body = select + _indent(body) + ["else:", "    v = None"]
    return [
        "try:",
        *_indent(body),
        f"    f{tag}_{i} = v" if leaf else f"    values{tag}[{name!r}] = v",
        "except DecodeError as exc:",
        f"    exc.push({name!r})",
        *([] if leaf else ["    scopes.pop()"]),
        "    raise",
    ]


def _construct_lines(sc: StructCodec, tag: str, env: dict[str, Any], leaf: bool) -> list[str]:
    """Build the instance into ``v`` from the decoded field slots."""
    env[f"CLS{tag}"] = sc.cls
    lines = []
    if leaf:
        lines.append(f"values{tag} = {{" + ", ".join(f"{n!r}: f{tag}_{j}" for j, (n, _) in enumerate(sc.fields)) + "}")
    if hasattr(sc.cls, "__post_init__"):
        return lines + [f"v = CLS{tag}(**values{tag})"]
    # Same object the dataclass __init__ would build (every field is set), without the call.
    return lines + [f"v = new_instance(CLS{tag})", f"v.__dict__ = values{tag}"]


def _compile_struct_decoder(sc: StructCodec) -> Callable[[_Ctx], Struct]:
    env: dict[str, Any] = {"DecodeError": DecodeError, "varint_at": varint_at, "new_instance": object.__new__}
    leaf = _is_leaf_struct(sc)
    lines = ["buf = ctx.buf", "raw = ctx.raw", "pos = ctx.pos", "size = len(buf)"]
    if not leaf:
        lines += ["values = {}", "scopes = ctx.scopes", "scopes.append(values)"]
    for i in range(len(sc.fields)):
        lines += _field_lines(sc, i, "", env, leaf)
    if not leaf:
        lines.append("scopes.pop()")
    lines += _construct_lines(sc, "", env, leaf)
    lines += ["ctx.pos = pos", "return v"]
    source = "def decode(ctx):\n" + "\n".join(_indent(lines)) + "\n"
    try:
        exec(compile(source, f"<decoder {sc.name}>", "exec"), env)  # noqa: S102 - generated from our own field list
    except (SyntaxError, RecursionError):  # e.g. too many nested blocks for CPython: stay correct, be slower
        return _interpreted_decoder(sc)
    return env["decode"]


def _interpreted_decoder(sc: StructCodec) -> Callable[[_Ctx], Struct]:
    """The plain field loop (the reference behaviour the generated decoders reproduce)."""

    def decode(ctx: _Ctx) -> Struct:
        values: dict[str, Any] = {}
        scopes = ctx.scopes
        scopes.append(values)
        name = ""
        try:
            for name, fld in sc.fields:
                if fld.when is not None and not fld.when.holds_in(ctx.scope):
                    values[name] = None
                    continue
                if fld.alt is not None and fld.alt_id in ctx.forced:
                    values[name] = fld.alt.codec.decode(ctx)
                    ctx.leniencies.append(Leniency(fld.alt.ambiguity, f"{sc.name}.{name}", fld.alt.detail))
                else:
                    values[name] = fld.codec.decode(ctx)
        except DecodeError as exc:
            exc.push(name)
            raise
        finally:
            scopes.pop()
        return sc.cls(**values)

    return decode


_UNPACK = {2: struct.Struct(">H").unpack_from, 4: struct.Struct(">I").unpack_from, 8: struct.Struct(">Q").unpack_from}


def _length_lines() -> list[str]:
    """Read a varint length into ``n``: one-octet lengths inline, the rest via varint_at."""
    return [
        "if pos < size:",
        "    n = raw[pos]",
        "    if n < 64:",
        "        pos += 1",
        "    else:",
        "        n, pos = varint_at(buf[:size], pos)",
        "else:",
        "    n, pos = varint_at(buf[:size], pos)",
    ]


def _indent(lines: list[str], by: str = "    ") -> list[str]:
    return [by + line for line in lines]


def _read_lines(codec: Codec, tag: str, env: dict[str, Any]) -> list[str]:
    """Source lines that read one value of ``codec`` at ``pos`` into ``v`` and advance ``pos``.

    ``size`` is where the readable input ends (a vector's end while reading its elements);
    ``ctx.buf`` ends there too whenever a codec's own ``decode`` is called.
    """
    kind = type(codec)
    if kind is UInt and codec.size == 1:
        return [
            f"if pos >= size: raise DecodeError('truncated: need 1 bytes for {codec.name}', pos)",
            "v = raw[pos]",
            "pos += 1",
        ]
    if kind is UInt:
        env[f"UNPACK_{codec.size}"] = _UNPACK[codec.size]
        return [
            f"if pos + {codec.size} > size: raise DecodeError('truncated: need {codec.size} bytes for {codec.name}', pos)",
            f"v = UNPACK_{codec.size}(raw, pos)[0]",
            f"pos += {codec.size}",
        ]
    if kind is EnumCodec:
        env[f"MEMBERS_{tag}"] = codec._members
        return _read_lines(codec.uint, tag, env) + [
            f"code, v = v, MEMBERS_{tag}.get(v)",
            f"if v is None: raise DecodeError(f'value {{code}} is not a {codec.name}', pos - {codec.uint.size})",
        ]
    if kind is Opaque:
        return [
            *_length_lines(),
            "end = pos + n",
            "if end > size: raise DecodeError(f'truncated: need {n} bytes, {size - pos} left', pos)",
            # Views slice the memoryview (zero copy); copies slice ``raw``, which is the input
            # bytes object itself when it can be (one step instead of slice-then-copy).
            "v = buf[pos:end]" if codec.view else "v = bytes(raw[pos:end])",
            "pos = end",
        ]
    if kind is Fixed:
        return [
            f"end = pos + {codec.size}",
            f"if end > size: raise DecodeError(f'truncated: need {codec.size} bytes, {{size - pos}} left', pos)",
            "v = bytes(raw[pos:end])",
            "pos = end",
        ]
    if kind is Optional:
        return [
            "if pos >= size: raise DecodeError('truncated: need an optional presence octet', pos)",
            "flag = raw[pos]",
            "pos += 1",
            "if flag == 0:",
            "    v = None",
            "elif flag != 1:",
            "    raise DecodeError(f'optional presence octet must be 0 or 1, got {flag}', pos - 1)",
            "else:",
            *_indent(_read_lines(codec.elem, tag + "o", env)),
        ]
    if kind is Vector:
        t = tag + "v"
        return [
            *_length_lines(),
            f"end_{t} = pos + n",
            f"if end_{t} > size: raise DecodeError(f'truncated: vector of {{n}} bytes, {{size - pos}} left', pos)",
            f"items_{t} = []",
            # Elements see the vector's end as the end of the input: an element that overruns
            # the vector is truncation, not a read into the next field.
            f"size_{t}, ctx_buf_{t}, size, ctx.buf = size, ctx.buf, end_{t}, buf[:end_{t}]",
            f"while pos < end_{t}:",
            "    try:",
            *_indent(_read_lines(codec.elem, t, env), "        "),
            "    except DecodeError as exc:",
            f"        exc.push(f'[{{len(items_{t})}}]')",
            "        raise",
            f"    items_{t}.append(v)",
            f"size, ctx.buf = size_{t}, ctx_buf_{t}",
            f"v = items_{t}",
        ]
    if kind is Empty:
        return ["v = None"]
    if kind is Implicit and codec.members is None:
        env[f"KEY_{tag}"] = codec.key
        return [f"v = ctx.scope.get(KEY_{tag})"]
    if kind is StructCodec and _is_flat_struct(codec):
        lines: list[str] = []
        for i in range(len(codec.fields)):
            lines += _field_lines(codec, i, tag, env, leaf=True)
        return lines + _construct_lines(codec, tag, env, leaf=True)
    if kind is StructCodec:
        env[f"SUB_{tag}"] = codec.decode_fn
        return ["ctx.pos = pos", f"v = SUB_{tag}(ctx)", "pos = ctx.pos"]
    env[f"CODEC_{tag}"] = codec.decode
    return ["ctx.pos = pos", f"v = CODEC_{tag}(ctx)", "pos = ctx.pos"]


# --------------------------------------------------------------------------------------------
# Generated encoders: the same idea for encoding. Errors read as before: "Struct.field: reason",
# "Struct.field is required", "Struct.field is set but its select (...) does not hold".


def _compile_struct_encoder(sc: StructCodec) -> Callable[[bytearray, Any, list[dict[str, Any]]], None]:
    env: dict[str, Any] = {
        "EncodeError": EncodeError,
        "DEFAULT_SCOPE": DEFAULT_SCOPE,
        "write_varint": write_varint,
        "cls": sc.cls,
    }
    own_fields = {name for name, _ in sc.fields}
    lines = [
        "def encode(out, value, scope):",
        "    if value.__class__ is not cls and not isinstance(value, cls):",
        f"        raise EncodeError(f'{sc.name} expected, got {{type(value).__name__}}')",
        "    values = value.__dict__",
        "    scope.append(values)",
        "    try:",
    ]
    for i, (name, fld) in enumerate(sc.fields):
        path = f"{sc.name}.{name}"
        body: list[str] = []
        if not isinstance(fld.codec, (Optional, Implicit, Empty)):
            body.append(f"if v is None: raise EncodeError({path + ' is required'!r})")
        body += [
            "try:",
            *_indent(_write_lines(fld.codec, str(i), env)),
            "except EncodeError as exc:",
            f"    if str(exc).startswith({sc.name + '.'!r}): raise",
            f"    raise EncodeError(f'{path}: {{exc}}') from None",
        ]
        lines.append(f"        v = values[{name!r}]")
        if fld.when is None:
            lines += _indent(body, "        ")
            continue
        when = fld.when
        env[f"WHEN_{i}"] = when
        env[f"VALUES_{i}"] = when.values
        if isinstance(when.selector, str) and when.selector in own_fields:
            test = f"values[{when.selector!r}] {'not in' if when.negate else 'in'} VALUES_{i}"
        else:
            test = f"WHEN_{i}.holds(scope, DEFAULT_SCOPE)"
        message = f"{path} is set but its select ({when.describe()}) does not hold"
        lines += [
            f"        if not ({test}):",
            f"            if v is not None: raise EncodeError({message!r})",
            "        else:",
            *_indent(body, "            "),
        ]
    if not sc.fields:
        lines.append("        pass")
    lines += ["    finally:", "        scope.pop()"]
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<encoder {sc.name}>", "exec"), env)  # noqa: S102 - generated from our own field list
    return env["encode"]


_PACK = {2: struct.Struct(">H").pack, 4: struct.Struct(">I").pack, 8: struct.Struct(">Q").pack}


def _write_lines(codec: Codec, tag: str, env: dict[str, Any]) -> list[str]:
    """Source lines that append the encoding of ``v`` (one value of ``codec``) to ``out``."""
    kind = type(codec)
    if kind is EnumCodec:
        codec = codec.uint
        kind = UInt
    if kind is UInt:
        env[f"PACK_{codec.size}"] = _PACK.get(codec.size)
        append = "out.append(v)" if codec.size == 1 else f"out += PACK_{codec.size}(v)"
        return [
            f"if not isinstance(v, int): raise EncodeError(f'{codec.name} needs an int, got {{type(v).__name__}}')",
            f"if not 0 <= v <= {codec.max}: raise EncodeError(f'{{v}} out of range for {codec.name}')",
            append,
        ]
    if kind is Opaque:
        return [
            "if not isinstance(v, (bytes, bytearray, memoryview)):",
            "    raise EncodeError(f'opaque needs bytes, got {type(v).__name__}')",
            "n = len(v)",
            "if n < 64: out.append(n)",
            "else: write_varint(out, n)",
            "out += v",
        ]
    if kind is Fixed:
        return [
            f"if not isinstance(v, (bytes, bytearray, memoryview)) or len(v) != {codec.size}:",
            f"    raise EncodeError({codec.name + ' needs exactly ' + str(codec.size) + ' bytes'!r})",
            "out += v",
        ]
    if kind is StructCodec:
        env[f"SUB_{tag}"] = codec.encode_fn
        return [f"SUB_{tag}(out, v, scope)"]
    env[f"CODEC_{tag}"] = codec.encode
    return [f"CODEC_{tag}(out, v, scope)"]


class Struct:
    """Base class for wire structs. Subclasses declare fields as ``name: T = wire(spec)``."""

    __wire__: ClassVar[StructCodec]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: list[tuple[str, WireField]] = []
        for name in cls.__dict__.get("__annotations__", {}):
            spec = cls.__dict__.get(name)
            if not isinstance(spec, WireField):
                raise TypeError(f"{cls.__name__}.{name} must be declared with wire(...)")
            fields.append((name, spec))
            if isinstance(spec.codec, Implicit):
                # What decoding yields when the bytes do not carry it: the room's value.
                default = dataclasses.field(default=spec.codec.convert(DEFAULT_SCOPE.get(spec.codec.key)), kw_only=True)
            elif spec.when is not None or isinstance(spec.codec, (Optional, Empty)):
                default = dataclasses.field(default=None, kw_only=True)
            else:
                default = dataclasses.field(kw_only=True)
            setattr(cls, name, default)
        dataclasses.dataclass(cls, eq=True, repr=False)
        cls.__wire__ = StructCodec(cls, fields)

    # -- decoding ------------------------------------------------------------------------

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, *, scope: dict[str, Any] | None = None) -> Any:
        """Strict decode of exactly one value; trailing bytes are an error."""
        value, _ = _decode_with(cls.__wire__, data, _NOTHING_FORCED, scope)
        return value

    @classmethod
    def decode_tolerant(cls, data: bytes | bytearray | memoryview, *, scope: dict[str, Any] | None = None) -> Decoded:
        """Decode, accepting the alternative layouts the drafts allow; report each one used."""
        try:
            return Decoded(*_decode_with(cls.__wire__, data, _NOTHING_FORCED, scope))
        except DecodeError as first:
            for alt_id in cls.__wire__.alt_sites():
                try:
                    return Decoded(*_decode_with(cls.__wire__, data, frozenset({alt_id}), scope))
                except DecodeError:
                    continue
            raise first from None

    @classmethod
    def decode_sequence(cls, data: bytes | bytearray | memoryview, *, scope: dict[str, Any] | None = None) -> list[Any]:
        """Strict decode of one or more concatenated values (e.g. a /notify body)."""
        view = memoryview(data).toreadonly()
        ctx = _Ctx(view, frozenset(), dict(scope) if scope else DEFAULT_SCOPE)
        items = []
        if not len(view):
            raise DecodeError("empty body: at least one value expected", 0)
        while ctx.pos < len(view):
            try:
                items.append(cls.__wire__.decode(ctx))
            except DecodeError as exc:
                exc.push(f"{cls.__name__}[{len(items)}]")
                raise
        return items

    # -- encoding ------------------------------------------------------------------------

    def encode(self) -> bytes:
        out = bytearray()
        self.__wire__.encode(out, self, [])
        return bytes(out)

    # -- views ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        parts = []
        for name, fld in self.__wire__.fields:
            value = self.__dict__[name]
            if value is None and fld.when is not None:
                continue
            parts.append(f"{name}={_short(value)}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view: bytes as hex, enums by name, absent select branches omitted."""
        out: dict[str, Any] = {}
        for name, fld in self.__wire__.fields:
            value = self.__dict__[name]
            if value is None and fld.when is not None:
                continue
            out[name] = _jsonable(value)
        return out

    def replace(self, **changes: Any) -> Any:
        """A copy with some fields changed (for crafting otherwise-valid variants)."""
        return dataclasses.replace(self, **changes)


_NOTHING_FORCED: frozenset[int] = frozenset()


def _decode_with(codec: Codec, data: Any, forced: frozenset[int], scope: dict[str, Any] | None) -> tuple[Any, tuple[Leniency, ...]]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"bytes expected, got {type(data).__name__}")
    view = memoryview(data)
    if not view.readonly:
        view = view.toreadonly()
    ctx = _Ctx(view, forced, {**DEFAULT_SCOPE, **scope} if scope else DEFAULT_SCOPE)
    try:
        value = codec.decode(ctx)
        if ctx.pos != len(view):
            raise DecodeError(f"{len(view) - ctx.pos} trailing bytes", ctx.pos)
    except DecodeError as exc:
        exc.push(codec.name)
        raise
    except RecursionError:
        raise DecodeError("nesting too deep") from None
    return value, tuple(ctx.leniencies)


def alternative_sites(codec: Codec) -> list[int]:
    """The alt_ids reachable from a codec (each tried alone by tolerant decoding)."""
    seen: set[int] = set()
    sites: list[int] = []

    def walk(c: Codec) -> None:
        if id(c) in seen:
            return
        seen.add(id(c))
        if isinstance(c, StructCodec):
            for _, fld in c.fields:
                if fld.alt is not None:
                    sites.append(fld.alt_id)
                    walk(fld.alt.codec)
                walk(fld.codec)
        elif isinstance(c, (Vector, Optional)):
            walk(c.elem)

    walk(codec)
    return sites


def walk_codecs(codec: Codec) -> Iterator[Codec]:
    """Every codec reachable from ``codec`` (for tests and documentation)."""
    seen: set[int] = set()
    stack = [codec]
    while stack:
        c = stack.pop()
        if id(c) in seen:
            continue
        seen.add(id(c))
        yield c
        if isinstance(c, StructCodec):
            stack.extend(f.codec for _, f in c.fields)
            stack.extend(f.alt.codec for _, f in c.fields if f.alt)
        elif isinstance(c, (Vector, Optional)):
            stack.append(c.elem)


def encode_value(codec: Any, value: Any) -> bytes:
    out = bytearray()
    as_codec(codec).encode(out, value, [])
    return bytes(out)


def decode_value(codec: Any, data: bytes | bytearray | memoryview) -> Any:
    value, _ = _decode_with(as_codec(codec), data, frozenset(), None)
    return value


def _short(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value[:16])
        more = f"…+{len(value) - 16}" if len(value) > 16 else ""
        return f"0x{raw.hex()}{more}"
    if isinstance(value, enum.IntEnum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, list):
        if len(value) > 4:
            return "[" + ", ".join(_short(v) for v in value[:4]) + f", …{len(value) - 4} more]"
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return repr(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Struct):
        return value.as_dict()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, enum.IntEnum):
        return value.name
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
