"""The kill matrix reads per-requirement outcomes: a fault is killed by a miss of *its* requirement."""

from __future__ import annotations

from pathlib import Path

from conformance.selftest import CheckInfo, Matrix, SuiteRun, row_for
from reference_peer.faults.registry import Fault

FROM, NOREUSE, HTTPS = "PROTO-TRANSPORT-FROM-ADDR-SPEC", "PROTO-KEYMAT-NO-REUSE", "PROTO-DIRECTORY-HTTPS-URLS"
CHECKS = [CheckInfo("t::three", (FROM, NOREUSE, HTTPS), "hub", "transport"),
          CheckInfo("t::reuse", (NOREUSE,), "hub", "keymaterial")]  # fmt: skip


def run(verdicts, outcomes, blocked=None):
    return SuiteRun("f", verdicts, {}, 1.0, 1, Path("."), blocked=blocked or {}, outcomes=outcomes)


def test_a_check_failing_another_requirement_does_not_kill_the_fault():
    fault = Fault("keypackage-reuse", "keymaterial", (NOREUSE,), "")
    # t::three FAILs, but for FROM; NOREUSE held there. t::reuse saw NOREUSE hold too: the fault survives.
    result = run({"t::three": "FAIL", "t::reuse": "PASS"},
                 {"t::three": {FROM: "FAIL", NOREUSE: "PASS", HTTPS: "PASS"}, "t::reuse": {NOREUSE: "PASS"}})
    row = row_for(fault, result, CHECKS)
    assert not row.killed
    assert row.collateral == ["t::three"]
    assert (row.own_misses, row.collateral_misses) == (0, [f"t::three: {FROM}"])


def test_a_miss_of_the_faults_requirement_kills_it_and_other_misses_are_collateral_per_requirement():
    fault = Fault("keypackage-reuse", "keymaterial", (NOREUSE,), "")
    result = run({"t::three": "FAIL", "t::reuse": "FAIL"},
                 {"t::three": {FROM: "PASS", NOREUSE: "FAIL", HTTPS: "WARN"}, "t::reuse": {NOREUSE: "FAIL"}})
    row = row_for(fault, result, CHECKS)
    assert row.killers == ["t::reuse", "t::three"]
    assert row.own_misses == 2 and row.collateral_misses == [f"t::three: {HTTPS}"]
    matrix = Matrix(run({}, {}), [row], CHECKS, "suite", 1.0)
    assert matrix.precision == 2 / 3


def test_a_should_miss_kills_a_should_fault_while_the_check_verdict_is_warn():
    fault = Fault("http-urls", "discovery", (HTTPS,), "")
    result = run({"t::three": "WARN"}, {"t::three": {FROM: "PASS", NOREUSE: "PASS", HTTPS: "WARN"}})
    assert row_for(fault, result, CHECKS).killers == ["t::three"]


def test_not_reached_and_not_applicable_are_no_kill():
    fault = Fault("keypackage-reuse", "keymaterial", (NOREUSE,), "")
    result = run({"t::three": "FAIL"}, {"t::three": {FROM: "FAIL", NOREUSE: "NOT_REACHED", HTTPS: "NOT_REACHED"}})
    row = row_for(fault, result, CHECKS)
    assert not row.killed and row.collateral == ["t::three"]


def test_a_check_blocked_by_the_faults_rule_reports_it_in_its_outcomes():
    fault = Fault("outgoing-from", "transport", (FROM,), "")
    checks = [CheckInfo("t::reuse", (NOREUSE,), "hub", "keymaterial")]
    result = run({"t::reuse": "FAIL"}, {"t::reuse": {NOREUSE: "NOT_REACHED", FROM: "FAIL"}},
                 blocked={"t::reuse": (FROM,)})
    row = row_for(fault, result, checks)
    assert (row.killers, row.blocked, row.collateral, row.own_misses) == ([], ["t::reuse"], [], 1)


def test_lines_without_outcomes_are_read_the_old_way():
    fault = Fault("keypackage-reuse", "keymaterial", (NOREUSE,), "")
    result = run({"t::three": "FAIL", "t::reuse": "PASS"}, {})
    row = row_for(fault, result, CHECKS)
    assert row.killers == ["t::three"]  # the check's verdict, charged to every requirement it names
    assert (row.own_misses, row.collateral_misses) == (1, [])


def test_a_clean_run_requirement_never_observed_is_a_clean_run_failure():
    """The observation guard in the kill matrix: against the reference SUT a check that runs observes
    every requirement it names, so "nothing was observed" there is a defect of the check."""
    clean = SuiteRun(None, {"t::reuse": "NOT_APPLICABLE"}, {}, 1.0, 0, Path("."),
                     outcomes={"t::reuse": {NOREUSE: "NOT_APPLICABLE"}}, unobserved=[f"t::reuse: {NOREUSE}"])
    matrix = Matrix(clean, [], CHECKS, "suite", 1.0)
    assert matrix.clean_failures == [f"t::reuse: {NOREUSE} (nothing was observed)"]
    assert not matrix.goals()["clean run: no FAIL, WARN or HARNESS_ERROR"]
