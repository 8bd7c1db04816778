"""Every case of every official RFC 9420 test-vector file (tests/vectors/mls, see PROVENANCE.md).

Each file is one test: it runs all cases, records pass/total (printed in the terminal summary by
conftest.py) and fails if any case for a provided cipher suite fails. Cases for suites this
implementation does not provide are counted as skipped, never as passed.
"""

from __future__ import annotations

import traceback

import pytest
from mls_vector_cases import RUNNERS, VECTOR_DIR, VECTOR_TALLY, load

from reference_peer.mls.crypto import is_supported


def test_every_vector_file_has_a_runner() -> None:
    files = {p.name.removesuffix(".json.gz") for p in VECTOR_DIR.glob("*.json.gz")}
    assert files == set(RUNNERS)


@pytest.mark.parametrize("name", sorted(RUNNERS))
def test_vector_file(name: str) -> None:
    cases = load(name)
    passed = skipped = 0
    failures: list[str] = []
    suite1 = 0
    for index, case in enumerate(cases):
        suite = case.get("cipher_suite")
        if suite is not None and not is_supported(suite):
            skipped += 1
            continue
        suite1 += suite in (None, 1)
        try:
            RUNNERS[name](case)
        except Exception as exc:  # every failure is reported with its case
            failures.append(f"case {index} (suite {suite}): {exc!r}\n{traceback.format_exc(limit=-2)}")
        else:
            passed += 1
    total = len(cases) - skipped
    VECTOR_TALLY[name] = (passed, total, skipped)
    assert suite1 > 0, "no case for cipher suite 0x0001 ran"
    assert not failures, f"{len(failures)}/{total} cases failed:\n" + "\n".join(failures[:5])
