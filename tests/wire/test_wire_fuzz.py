"""Random and mutated bytes into every decoder: only DecodeError, never IndexError, struct.error...

A strict decode that succeeds on mutated bytes must re-encode to exactly those bytes: the strict
decoder accepts only the canonical encoding (minimal varints, presence octets 0/1, known enum
values, no trailing bytes).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_peer.wire.codec import DecodeError, Struct
from reference_peer.wire.strategies import mutations_of, wire_structs

STRUCTS = wire_structs()
FUZZ = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def _decode_everything(cls: type[Struct], data: bytes) -> None:
    try:
        value = cls.decode(data)
    except DecodeError:
        value = None
    if value is not None:
        assert value.encode() == data, "strict decoding accepted a non-canonical encoding"
    try:
        decoded = cls.decode_tolerant(data)
    except DecodeError:
        decoded = None
    if value is not None:
        assert decoded is not None and decoded.value == value and decoded.leniencies == ()
    try:
        cls.decode_sequence(data)
    except DecodeError:
        pass


@pytest.mark.parametrize("cls", STRUCTS, ids=lambda c: c.__name__)
def test_random_and_mutated_bytes_raise_only_decode_errors(cls: type[Struct]) -> None:
    @FUZZ
    @given(st.one_of(st.binary(max_size=96), mutations_of(cls)))
    def check(data: bytes) -> None:
        _decode_everything(cls, data)

    check()


def test_mutation_really_breaks_some_encodings() -> None:
    """Guard against a fuzz test that never reaches an error path."""
    from reference_peer.wire.mimi import KeyMaterialResponse

    seen_errors: list[str] = []

    @settings(FUZZ, max_examples=60)
    @given(mutations_of(KeyMaterialResponse))
    def check(data: bytes) -> None:
        try:
            KeyMaterialResponse.decode(data)
        except DecodeError as exc:
            seen_errors.append(exc.path)

    check()
    assert seen_errors and all(path.startswith("KeyMaterialResponse") for path in seen_errors)
