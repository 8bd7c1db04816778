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
"""

from __future__ import annotations

import dataclasses
import enum
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

    __slots__ = ("buf", "pos", "forced", "leniencies", "scopes", "defaults")

    def __init__(self, buf: memoryview, forced: frozenset[int], defaults: dict[str, Any]) -> None:
        self.buf = buf
        self.pos = 0
        self.forced = forced
        self.leniencies: list[Leniency] = []
        self.scopes: list[dict[str, Any]] = []
        self.defaults = defaults

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
        for values in reversed(self._chain):
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
    buf = ctx.buf
    pos = ctx.pos
    if pos >= len(buf):
        raise DecodeError("truncated: need a length prefix", pos)
    first = buf[pos]
    prefix = first >> 6
    if prefix == 0:
        ctx.pos = pos + 1
        return first
    if prefix == 1:
        if pos + 2 > len(buf):
            raise DecodeError("truncated: 2-byte length prefix", pos)
        value = ((first & 0x3F) << 8) | buf[pos + 1]
        if value < 64:
            raise DecodeError(f"non-minimal length prefix for {value}", pos)
        ctx.pos = pos + 2
        return value
    if prefix == 2:
        if pos + 4 > len(buf):
            raise DecodeError("truncated: 4-byte length prefix", pos)
        value = int.from_bytes(buf[pos : pos + 4], "big") & 0x3FFFFFFF
        if value < 16384:
            raise DecodeError(f"non-minimal length prefix for {value}", pos)
        ctx.pos = pos + 4
        return value
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
    """A field the as-written struct does not carry: takes its value from the scope."""

    __slots__ = ("key", "name")

    def __init__(self, key: str) -> None:
        self.key = key
        self.name = f"implicit({key})"

    def decode(self, ctx: _Ctx) -> Any:
        return Scope(ctx.scopes, ctx.defaults).get(self.key)

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
    __slots__ = ("cls", "name", "fields", "simple")

    def __init__(self, cls: type[Struct], fields: list[tuple[str, WireField]]) -> None:
        self.cls = cls
        self.name = cls.__name__
        self.fields = fields
        self.simple = all(f.when is None and f.alt is None for _, f in fields)

    def decode(self, ctx: _Ctx) -> Struct:
        values: dict[str, Any] = {}
        scopes = ctx.scopes
        scopes.append(values)
        name = ""
        try:
            if self.simple:
                for name, fld in self.fields:
                    values[name] = fld.codec.decode(ctx)
            else:
                for name, fld in self.fields:
                    if fld.when is not None and not fld.when.holds(scopes, ctx.defaults):
                        values[name] = None
                        continue
                    if fld.alt is not None and fld.alt_id in ctx.forced:
                        values[name] = fld.alt.codec.decode(ctx)
                        ctx.leniencies.append(Leniency(fld.alt.ambiguity, f"{self.name}.{name}", fld.alt.detail))
                    else:
                        values[name] = fld.codec.decode(ctx)
        except DecodeError as exc:
            exc.push(name)
            raise
        finally:
            scopes.pop()
        return self.cls(**values)

    def encode(self, out: bytearray, value: Any, scope: list[dict[str, Any]]) -> None:
        if not isinstance(value, self.cls):
            raise EncodeError(f"{self.name} expected, got {type(value).__name__}")
        values = value.__dict__
        scope.append(values)
        try:
            for name, fld in self.fields:
                item = values[name]
                if fld.when is not None and not fld.when.holds(scope, DEFAULT_SCOPE):
                    if item is not None:
                        raise EncodeError(f"{self.name}.{name} is set but its select ({fld.when.describe()}) does not hold")
                    continue
                if item is None and not isinstance(fld.codec, (Optional, Implicit, Empty)):
                    raise EncodeError(f"{self.name}.{name} is required")
                try:
                    fld.codec.encode(out, item, scope)
                except EncodeError as exc:
                    if str(exc).startswith(f"{self.name}."):
                        raise
                    raise EncodeError(f"{self.name}.{name}: {exc}") from None
        finally:
            scope.pop()


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
            needs_default = spec.when is not None or isinstance(spec.codec, (Optional, Implicit, Empty))
            setattr(
                cls,
                name,
                dataclasses.field(default=None, kw_only=True) if needs_default else dataclasses.field(kw_only=True),
            )
        dataclasses.dataclass(cls, eq=True, repr=False)
        cls.__wire__ = StructCodec(cls, fields)

    # -- decoding ------------------------------------------------------------------------

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, *, scope: dict[str, Any] | None = None) -> Any:
        """Strict decode of exactly one value; trailing bytes are an error."""
        value, _ = _decode_with(cls.__wire__, data, frozenset(), scope)
        return value

    @classmethod
    def decode_tolerant(cls, data: bytes | bytearray | memoryview, *, scope: dict[str, Any] | None = None) -> Decoded:
        """Decode, accepting the alternative layouts the drafts allow; report each one used."""
        try:
            return Decoded(*_decode_with(cls.__wire__, data, frozenset(), scope))
        except DecodeError as first:
            for alt_id in alternative_sites(cls.__wire__):
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


def _decode_with(codec: Codec, data: Any, forced: frozenset[int], scope: dict[str, Any] | None) -> tuple[Any, tuple[Leniency, ...]]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"bytes expected, got {type(data).__name__}")
    view = memoryview(data).toreadonly()
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
