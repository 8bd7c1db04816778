"""Prefix decoding on top of the wire codec, which itself only decodes whole values strictly.

RFC 9420 needs "decode one struct, then continue" in three places the codec's struct language does
not express: PrivateMessageContent (content, auth, then zero padding to the end), the
AuthenticatedContent of the transcript-hash vectors, and variable-length headers. This is the one
place that touches the codec's decoding context (``_Ctx``), so a change there is fixed here only.
"""

from __future__ import annotations

from typing import Any

from ..wire.codec import DEFAULT_SCOPE, _Ctx, as_codec, read_varint


class PrefixReader:
    """Reads values one after another from a buffer; every failure is the codec's DecodeError."""

    def __init__(self, data: bytes | memoryview) -> None:
        self._ctx = _Ctx(memoryview(data).toreadonly(), frozenset(), DEFAULT_SCOPE)

    @property
    def pos(self) -> int:
        return self._ctx.pos

    @property
    def remaining(self) -> int:
        return len(self._ctx.buf) - self._ctx.pos

    def value(self, spec: Any) -> Any:
        """One value of a wire type (a Struct class or a codec)."""
        return as_codec(spec).decode(self._ctx)

    def varint(self) -> int:
        return read_varint(self._ctx)

    def opaque(self) -> bytes:
        return bytes(self._ctx.take(read_varint(self._ctx)))

    def fixed(self, n: int) -> bytes:
        return bytes(self._ctx.take(n))
