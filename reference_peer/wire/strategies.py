"""Hypothesis strategies derived from the codec descriptions (tests only; hypothesis is a dev dependency).

``values_of(SomeStruct)`` generates valid values of any struct without per-struct code: it walks
the :class:`StructCodec` fields in order, keeps the chain of enclosing structs' values exactly as
the decoder does, and evaluates each field's ``when`` against what it has drawn so far. Selects
on earlier fields, on enclosing structs and callable selectors (``FanoutMessage``'s
``message.content_type()``) therefore all come out consistent. Nesting is bounded: below
``max_depth`` vectors are empty and optionals absent, so values stay small.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from .codec import (
    DEFAULT_SCOPE,
    Codec,
    Empty,
    EnumCodec,
    Fixed,
    Implicit,
    Opaque,
    Optional,
    Scope,
    Struct,
    StructCodec,
    UInt,
    Utf8,
    Vector,
    as_codec,
)

MAX_BLOB = 24
MAX_ITEMS = 3


def values_of(spec: Any, *, max_depth: int = 6) -> st.SearchStrategy[Any]:
    """Valid values of a struct (or any codec spec) as the codec would decode them."""
    codec = as_codec(spec)

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        return _draw(draw, codec, [], 0, max_depth)

    return build()


def encodings_of(spec: type[Struct], *, max_depth: int = 6) -> st.SearchStrategy[bytes]:
    """Valid encodings of a struct."""
    return values_of(spec, max_depth=max_depth).map(lambda value: value.encode())


@st.composite
def mutations_of(draw: st.DrawFn, spec: type[Struct], max_depth: int = 4) -> bytes:
    """A valid encoding with one to three bytes flipped, inserted or deleted, or cut short."""
    data = bytearray(draw(encodings_of(spec, max_depth=max_depth)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(min_value=0, max_value=len(data)))
        if op == "insert":
            data.insert(at, draw(st.integers(0, 255)))
        elif not data:
            continue
        elif op == "flip":
            data[at % len(data)] ^= draw(st.integers(1, 255))
        elif op == "delete":
            del data[at % len(data)]
        else:
            del data[at:]
    return bytes(data)


def _draw(draw: st.DrawFn, codec: Codec, chain: list[dict[str, Any]], depth: int, max_depth: int) -> Any:
    if isinstance(codec, StructCodec):
        values: dict[str, Any] = {}
        chain.append(values)
        try:
            for name, fld in codec.fields:
                if fld.when is not None and not fld.when.holds(chain, DEFAULT_SCOPE):
                    values[name] = None
                    continue
                values[name] = _draw(draw, fld.codec, chain, depth + 1, max_depth)
        finally:
            chain.pop()
        return codec.cls(**values)
    if isinstance(codec, Implicit):
        # The struct does not carry it: decoding reads it from the enclosing scope.
        return codec.convert(Scope(chain, DEFAULT_SCOPE).get(codec.key))
    if isinstance(codec, EnumCodec):
        return draw(st.sampled_from(list(codec.cls)))
    if isinstance(codec, UInt):
        return draw(st.integers(min_value=0, max_value=codec.max))
    if isinstance(codec, Utf8):
        alphabet = st.characters(codec="utf-8", exclude_characters=None if codec.allow_nul else "\x00")
        return draw(st.text(alphabet=alphabet, max_size=MAX_BLOB // 2))
    if isinstance(codec, Opaque):
        return draw(st.binary(max_size=MAX_BLOB))
    if isinstance(codec, Fixed):
        return draw(st.binary(min_size=codec.size, max_size=codec.size))
    if isinstance(codec, Vector):
        limit = MAX_ITEMS if depth < max_depth else 0
        count = draw(st.integers(min_value=0, max_value=limit))
        return [_draw(draw, codec.elem, chain, depth + 1, max_depth) for _ in range(count)]
    if isinstance(codec, Optional):
        if depth >= max_depth or not draw(st.booleans()):
            return None
        return _draw(draw, codec.elem, chain, depth + 1, max_depth)
    if isinstance(codec, Empty):
        return None
    raise TypeError(f"no strategy for codec {codec!r} ({type(codec).__name__}); teach strategies._draw about it")


WIRE_MODULES = ("mls", "identity", "mimi", "ratchet_tree_options", "room_policy")


def wire_structs() -> list[type[Struct]]:
    """Every Struct subclass defined in the wire package's modules (found, not listed, so that a
    struct added later is covered by the generic tests without new test code)."""
    import importlib
    import pkgutil

    from . import __path__ as package_path

    names = {info.name for info in pkgutil.iter_modules(package_path)} - {"codec", "strategies"}
    found: dict[str, type[Struct]] = {}
    for name in sorted(names):
        module = importlib.import_module(f"{__package__}.{name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Struct) and obj is not Struct and obj.__module__ == module.__name__:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[key] for key in sorted(found)]
