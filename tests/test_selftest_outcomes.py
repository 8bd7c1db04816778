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


# --------------------------------------------------------------------------------------------
# The variant matrix: false verdicts and their attribution to variants

def _fv(check, requirement="R", outcome="FAIL"):
    from conformance.selftest import FalseVerdict

    return FalseVerdict(f"conformance/scenarios/{check}", requirement, outcome)


def _fake_runner(causes, *, calls=None, baseline=()):
    """A BatchRunner: each false verdict in ``causes`` appears when its variant set (all of them) is on and
    its module runs; ``baseline`` ones appear whatever is on."""
    def run_batch(jobs):
        results = []
        for on, modules in jobs:
            if calls is not None:
                calls.append((on, modules))
            found = [v for needed, verdicts in causes for v in verdicts if set(needed) <= set(on)] + list(baseline)
            results.append([v for v in found if v.module in modules])
        return results
    return run_batch


def test_false_verdicts_of_a_run():
    from conformance.selftest import false_verdicts

    unobserved = "nothing was observed for it"
    records = {
        "m.py::ok": {"A": {"outcome": "PASS"}, "B": {"outcome": "NOT_APPLICABLE", "message": "no identifierQuery"}},
        "m.py::amb": {"A": {"outcome": "AMBIGUOUS", "ambiguity": "AMB-OWN", "message": "AMB-OWN: read"},
                      "B": {"outcome": "AMBIGUOUS", "ambiguity": "AMB-OTHER", "message": "AMB-OTHER: read"}},
        "m.py::bad": {"A": {"outcome": "WARN"}, "B": {"outcome": "NOT_APPLICABLE", "message": unobserved},
                      "C": {"outcome": "NOT_REACHED"}},
    }
    verdicts = {"m.py::ok": "PASS", "m.py::amb": "AMBIGUOUS", "m.py::bad": "WARN", "m.py::old": "HARNESS_ERROR"}
    run = SuiteRun(None, verdicts, {"m.py::old": "boom"}, 1.0, 1, Path("."),
                   outcomes={c: {r: o["outcome"] for r, o in rs.items()} for c, rs in records.items()}, records=records)
    found = false_verdicts(run, {"AMB-OWN"}, ["m.py::ok", "m.py::gone"])
    assert [(v.check, v.requirement, v.outcome) for v in found] == [
        ("m.py::amb", "B", "AMBIGUOUS"), ("m.py::bad", "A", "WARN"), ("m.py::bad", "B", "NOT_APPLICABLE"),
        ("m.py::old", "(check)", "HARNESS_ERROR"), ("m.py::gone", "(no result)", "NO_RESULT")]
    assert found[0].ambiguity == "AMB-OTHER"


def test_cited_ambiguities():
    from conformance.selftest import cited_ambiguities

    assert cited_ambiguities("-06 §5.7; AMB-CONSENT-STATUS and AMB-X2") == {"AMB-CONSENT-STATUS", "AMB-X2"}
    assert cited_ambiguities("-06 §5.1 lists URIs only") == frozenset()


def test_bisection_finds_the_one_variant_with_false_verdicts_on_its_modules_only():
    from conformance.selftest import attribute

    names = tuple(f"v{i}" for i in range(8))
    bad = [_fv("test_a.py::x"), _fv("test_a.py::y", "S", "WARN")]
    calls = []
    result = attribute(names, bad, _fake_runner([(("v5",), bad)], calls=calls))
    assert result.by_variant == {"v5": bad}
    assert not result.together and not result.without_variants
    assert {modules for _, modules in calls} == {("conformance/scenarios/test_a.py",)}
    # first level: both halves and no variant at all; then 2 runs per level down to v5 alone
    assert calls[:3] == [(names[:4], ("conformance/scenarios/test_a.py",)),
                         (names[4:], ("conformance/scenarios/test_a.py",)), ((), ("conformance/scenarios/test_a.py",))]
    assert len(calls) == 3 + 2 + 2
    assert result.charged("v5") == bad and result.charged("v4") == []


def test_bisection_charges_two_variants_separately_and_restricts_each_branch_to_its_modules():
    from conformance.selftest import attribute

    names = ("a", "b", "c", "d")
    in_a, in_d = [_fv("test_one.py::x")], [_fv("test_two.py::y")]
    calls = []
    result = attribute(names, in_a + in_d, _fake_runner([(("a",), in_a), (("d",), in_d)], calls=calls))
    assert result.by_variant == {"a": in_a, "d": in_d}
    assert (("a",), ("conformance/scenarios/test_one.py",)) in calls
    assert (("d",), ("conformance/scenarios/test_two.py",)) in calls


def test_false_verdicts_only_together_are_charged_to_the_set():
    from conformance.selftest import attribute

    names = ("a", "b", "c", "d")
    joint = [_fv("test_one.py::x")]
    calls = []
    result = attribute(names, joint, _fake_runner([(("b", "c"), joint)], calls=calls))
    # neither {a, b} nor {c, d} reproduces it; the four again do: they are charged together
    assert calls[-1] == (names, ("conformance/scenarios/test_one.py",))
    assert result.together == [(names, joint)] and not result.by_variant and not result.unconfirmed
    assert result.charged("a") == joint and result.charged("d") == joint


def test_a_false_verdict_no_rerun_reproduces_is_unconfirmed_and_charged_to_no_variant():
    from conformance.selftest import VariantMatrix, VariantRow, attribute

    once = [_fv("test_one.py::flaky")]
    result = attribute(("a", "b", "c"), once, _fake_runner([]))
    assert result.unconfirmed == once and not result.together and not result.by_variant
    matrix = VariantMatrix(run({}, {}), once, [VariantRow("a", "wire", "-06 §5", (), [])], result, 1, 1.0)
    assert matrix.specificity == 1.0 and not matrix.goals()["every false verdict reproduced"]


def test_a_false_verdict_the_reference_default_also_gives_is_charged_to_no_variant():
    from conformance.selftest import attribute

    clean = [_fv("test_one.py::flaky")]
    own = [_fv("test_one.py::x")]
    result = attribute(("a", "b"), clean + own, _fake_runner([(("b",), own)], baseline=clean))
    assert result.by_variant == {"b": own}
    assert result.without_variants == clean
    # a single variant: no split, only the run without variants
    calls = []
    result = attribute(("a",), clean, _fake_runner([], baseline=clean, calls=calls))
    assert calls == [((), ("conformance/scenarios/test_one.py",))] and result.by_variant == {}


def test_no_false_verdict_in_the_combined_run_needs_no_rerun():
    from conformance.selftest import attribute

    calls = []
    result = attribute(("a", "b"), [], _fake_runner([], calls=calls))
    assert calls == [] and result.by_variant == {} and result.runs == []


def test_specificity_of_the_variant_matrix():
    from conformance.selftest import Attribution, VariantMatrix, VariantRow

    bad = [_fv("test_one.py::x")]
    rows = [VariantRow("a", "wire", "-06 §5", (), []), VariantRow("b", "wire", "-06 §5", (), bad)]
    matrix = VariantMatrix(run({}, {}), bad, rows, Attribution({"b": bad}, [], [], []), 160, 1.0)
    assert matrix.specificity == 0.5
    assert matrix.goals() == {"specificity 100%": False, "no false verdict with no variant on": True,
                              "every false verdict reproduced": True}
    assert matrix.as_dict()["matrix"][1]["falseVerdicts"] == [str(bad[0])]


def test_selftest_variant_usage_errors(capsys):
    from conformance.cli import main

    assert main(["selftest", "--variant", "no-such-variant"]) == 2
    assert "unknown variant" in capsys.readouterr().err
    assert main(["selftest", "--variants", "--repeat", "2"]) == 2
    assert main(["selftest", "--variants", "-j", "0"]) == 2
