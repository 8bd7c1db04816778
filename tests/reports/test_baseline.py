from __future__ import annotations

import pytest
from report_builders import FOLLOWER_PROFILE, HUB_PROFILE, check, hub_checks, results

from reports.baseline import (
    EMPTY_BASELINE,
    BaselineError,
    Outcome,
    exit_code,
    format_gate_report,
    gate,
    load_baseline,
    parse_baseline,
)

REUSE = "conformance/scenarios/test_keymaterial.py::test_keypackage_not_reused"
MTLS = "conformance/scenarios/test_transport.py::test_mtls_required"


def baseline(*entries: dict):
    return parse_baseline({"version": 1, "expected_failures": list(entries)})


def test_clean_run_without_baseline_exits_0():
    report = gate(results(hub_checks()))
    assert report.items == ()
    assert exit_code(report) == 0


def test_warnings_do_not_fail_the_run():
    assert exit_code(gate(results(hub_checks(https="WARN")))) == 0


def test_unexpected_failure_fails_the_run():
    report = gate(results(hub_checks(reuse="FAIL")))
    assert [item.outcome for item in report.items] == [Outcome.UNEXPECTED_FAILURE]
    assert exit_code(report) == 1


def test_expected_failure_that_still_fails_passes_the_gate():
    report = gate(results(hub_checks(reuse="FAIL")), baseline({"check": REUSE, "reason": "fixed in 2.4"}))
    assert [(i.check_id, i.outcome) for i in report.items] == [(REUSE, Outcome.EXPECTED_FAILURE)]
    assert report.profile_verdicts == {"hub-core-06": "CONFORMANT"}
    assert exit_code(report) == 0


def test_baselined_harness_error_is_expected_too():
    report = gate(results(hub_checks(reuse="HARNESS_ERROR")), baseline({"check": REUSE, "reason": "peer flaky"}))
    assert exit_code(report) == 0


def test_listed_check_that_now_passes_is_stale_and_fails_the_run():
    report = gate(results(hub_checks()), baseline({"check": REUSE, "reason": "fixed in 2.4"}))
    assert [(i.check_id, i.outcome) for i in report.items] == [(REUSE, Outcome.STALE)]
    assert exit_code(report) == 1
    assert "stale baseline entry" in format_gate_report(report)


def test_listed_check_that_now_only_warns_is_stale():
    report = gate(results(hub_checks(mtls="WARN")), baseline({"check": MTLS, "reason": "r"}))
    assert report.of(Outcome.STALE)
    assert exit_code(report) == 1


def test_intermittent_entry_allows_both_outcomes():
    entry = {"check": REUSE, "reason": "times out under load", "intermittent": True}
    passing = gate(results(hub_checks()), baseline(entry))
    assert [i.outcome for i in passing.items] == [Outcome.INTERMITTENT_PASS]
    assert exit_code(passing) == 0
    failing = gate(results(hub_checks(reuse="FAIL")), baseline(entry))
    assert [i.outcome for i in failing.items] == [Outcome.EXPECTED_FAILURE]
    assert exit_code(failing) == 0


def test_entries_for_checks_not_run_are_reported_without_failing():
    report = gate(results(hub_checks()), baseline({"check": "gone::test_old", "reason": "r"}))
    assert [(i.check_id, i.outcome, i.verdict) for i in report.items] == [("gone::test_old", Outcome.NOT_RUN, None)]
    assert exit_code(report) == 0


def test_incomplete_profile_fails_the_run_even_without_failures():
    report = gate(results(hub_checks()[:2]))  # a requirement no check judges
    assert report.profile_verdicts == {"hub-core-06": "INCOMPLETE"}
    assert report.failing_profiles == ["hub-core-06"]
    assert exit_code(report) == 1


def test_a_baseline_only_waives_its_own_checks():
    checks = [*hub_checks(reuse="FAIL"), check("test_notify", "FAIL", ["PROTO-FANOUT-NOTIFY-201"], role="follower")]
    run = results([*checks, check("test_mtls_f", "PASS", ["PROTO-TRANSPORT-MTLS"], role="follower")],
                  (HUB_PROFILE, FOLLOWER_PROFILE))  # fmt: skip
    report = gate(run, baseline({"check": REUSE, "reason": "r"}))
    assert report.profile_verdicts == {"hub-core-06": "CONFORMANT", "follower-core-06": "NOT_CONFORMANT"}
    assert [i.outcome for i in report.items] == [Outcome.EXPECTED_FAILURE, Outcome.UNEXPECTED_FAILURE]
    assert exit_code(report) == 1


def test_exit_code_is_never_a_count():
    many = [check(f"test_{n}", "FAIL", ["PROTO-TRANSPORT-MTLS"]) for n in range(300)]
    assert exit_code(gate(results(many), EMPTY_BASELINE)) == 1


def test_load_baseline_from_yaml(tmp_path):
    path = tmp_path / "baseline.yaml"
    path.write_text(f"version: 1\nexpected_failures:\n  - check: '{REUSE}'\n    reason: fixed in 2.4\n"
                    "    intermittent: true\n")  # fmt: skip
    loaded = load_baseline(path)
    assert loaded.entries[REUSE].reason == "fixed in 2.4"
    assert loaded.entries[REUSE].intermittent is True


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"version": 1, "expected_failures": [{"check": REUSE}]}, "needs a reason"),
        ({"version": 1, "expected_failures": [{"check": REUSE, "reason": "  "}]}, "needs a reason"),
        ({"version": 1, "expected_failures": [{"check": REUSE, "reason": "r", "why": "x"}]}, "unknown keys"),
        ({"version": 1, "expected_failures": [{"check": REUSE, "reason": "r"}] * 2}, "listed twice"),
        (
            {"version": 1, "expected_failures": [{"check": REUSE, "reason": "r", "intermittent": "yes"}]},
            "true or false",
        ),
        ({"version": 2, "expected_failures": []}, "'version' must be 1"),
        (["not", "a", "mapping"], "expected a mapping"),
    ],
)
def test_invalid_baselines_are_refused(data, message):
    with pytest.raises(BaselineError, match=message):
        parse_baseline(data)


def test_unreadable_baseline_file(tmp_path):
    with pytest.raises(BaselineError):
        load_baseline(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("version: [1\n")
    with pytest.raises(BaselineError):
        load_baseline(tmp_path / "bad.yaml")
