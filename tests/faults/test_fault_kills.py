"""The kill matrix: the suite against the reference SUT, clean and once per named fault.

A check that cannot fail is a defect: every fault must be killed (a check judging one of its
requirements reports the miss: FAIL, or WARN for a requirement scored SHOULD), every check must be
killed by some fault, the clean run must have no FAIL, WARN or HARNESS_ERROR, and misses reported under
a fault must belong to its own requirements (precision).
This is ``mimi-conformance selftest --scope module`` as a test (every fault; per fault the modules of
the checks judging it, so collateral is measured in the fault's neighbourhood: the whole cross product
takes about five times as long, see ``mimi-conformance selftest``); the matrix is computed once.
"""

from __future__ import annotations

import pytest

from conformance.selftest import GOAL_PRECISION, kill_matrix, render
from reference_peer.faults import REGISTRY


@pytest.fixture(scope="module")
def matrix(tmp_path_factory, kill_matrix_texts, selftest_parallel):
    result = kill_matrix(tmp_path_factory.mktemp("selftest"), parallel=selftest_parallel, scope="module")
    kill_matrix_texts.append(render(result))
    return result


def test_the_clean_run_has_no_miss_and_no_harness_error(matrix) -> None:
    assert matrix.clean.verdicts, f"the clean run produced no results (see {matrix.clean.out}/pytest.log)"
    problems = {c: f"{matrix.clean.verdicts[c]}: {matrix.clean.messages[c]}" for c in matrix.clean_failures}
    assert not problems, problems


@pytest.mark.parametrize("fault", sorted(REGISTRY))
def test_fault_is_killed_by_a_check_judging_its_requirements(matrix, fault: str) -> None:
    (row,) = [r for r in matrix.rows if r.fault == fault]
    assert row.judged_by, f"no check judges any of {fault}'s requirements {row.requirements}"
    assert row.killed, (
        f"{fault} survived: none of {row.judged_by} reported a miss; harness errors: {row.harness_errors}; "
        f"verdicts: { {c: matrix.clean.verdicts.get(c) for c in row.judged_by} }"
    )


def test_every_check_fails_under_at_least_one_fault(matrix) -> None:
    assert not matrix.unkilled_checks, f"checks no fault makes FAIL: {matrix.unkilled_checks}"


def test_failures_under_a_fault_belong_to_its_requirements(matrix) -> None:
    collateral = {r.fault: r.collateral for r in matrix.rows if r.collateral}
    assert matrix.precision is None or matrix.precision >= GOAL_PRECISION, (
        f"precision {matrix.precision:.1%} < {GOAL_PRECISION:.0%}; collateral failures: {collateral}"
    )
