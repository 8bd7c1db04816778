"""``mimi-conformance run`` end to end against the embedded reference SUT (issue 6 item 8, issue 5
item 5): the four reports, their content, the exit code of an INCOMPLETE profile, the stale baseline
path, --allow-untested, signing; and the run's usage errors and failure paths without a real run."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cli_helpers import DISCOVERY_CHECK, HTTPS_URLS, WELL_KNOWN, check, synthetic_results

from conformance import run as run_module
from conformance.cli import main
from conformance.progress import area_of
from reports.baseline import gate, parse_baseline
from reports.model import RunResults, Verdict
from reports.schema import results_schema_errors

REPORTS = ("results.json", "junit.xml", "report.html", "summary.md")


def test_a_default_run_writes_the_four_reports_and_exits_1_while_profiles_are_incomplete(reference_runs):
    run = reference_runs["plain"]
    # The applicable profiles (both cores, and consent-immediate: the reference SUT declares that mode;
    # the other extension profiles need a mode or feature it does not declare) are INCOMPLETE (most
    # requirements have no check yet): documented exit 1.
    assert run.returncode == 1, run.stderr
    for name in REPORTS:
        assert (run.out / name).is_file(), f"{name} missing; stdout:\n{run.stdout}"
    data = json.loads((run.out / "results.json").read_text(encoding="utf-8"))
    assert results_schema_errors(data) == []
    results = RunResults.from_dict(data)
    assert results.seed == 11
    assert {c.check_id: c.verdict for c in results.checks}[DISCOVERY_CHECK] is Verdict.PASS
    assert {p.name: str(p.verdict) for p in results.profiles} == {
        "follower-core-06": "INCOMPLETE",
        "hub-core-06": "INCOMPLETE",
        "consent-immediate": "INCOMPLETE",
        # the reference SUT declares the hub-transfer extension, so its profiles apply by default
        "portability-experimental": "INCOMPLETE",
        "portability-experimental-follower": "INCOMPLETE",
        # and it declares multiDevice (it implements it), so the multi-device profile applies too
        "multi-device": "INCOMPLETE",
    }
    cases = ET.parse(run.out / "junit.xml").getroot().iter("testcase")
    verdicts = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}["verdict"] for case in cases
    }
    assert verdicts[DISCOVERY_CHECK.split("::")[-1]] == "PASS"
    assert DISCOVERY_CHECK.split("::")[-1] in (run.out / "report.html").read_text(encoding="utf-8")
    assert "INCOMPLETE" in (run.out / "summary.md").read_text(encoding="utf-8")


def test_a_run_prints_progress_per_area_the_area_table_and_the_profile_verdicts(reference_runs):
    stdout = reference_runs["plain"].stdout
    assert "seed 11 (reproduce with --seed 11)" in stdout
    assert any(line.split()[:4] == ["discovery", "1/1", "checks", "PASS"] for line in stdout.splitlines()), stdout
    table = [line.split() for line in stdout.splitlines() if line.strip().startswith(("discovery ", "total "))]
    assert ["discovery", "1", "1", "0", "0", "0", "0", "0"] in table
    assert any(line.split()[:2] == ["hub-core-06", "INCOMPLETE"] for line in stdout.splitlines())
    assert "baseline gate: not passed (profiles INCOMPLETE: " in stdout
    assert stdout.strip().splitlines()[-1].startswith("RESULT: FAIL (exit 1): ")


def test_a_signed_run_verifies_with_its_public_key(reference_runs, capsys):
    run = reference_runs["plain"]
    public_key = run.out.parent / "keys" / "signing.pem.pub"
    assert main(["verify", str(run.out / "results.json"), "--key", str(public_key)]) == 0
    assert "valid signature by key" in capsys.readouterr().out


def test_a_baseline_expecting_a_passing_check_fails_the_run_as_stale(reference_runs):
    run = reference_runs["stale"]
    # Stale beats --allow-untested: a baseline entry for a check that now passes must be removed.
    assert run.returncode == 1, run.stderr
    assert f"stale baseline entry (check no longer fails; remove it): {DISCOVERY_CHECK} [PASS]" in run.stdout
    assert "This is not a conformance claim" not in run.stdout
    assert "stale" in (run.out / "summary.md").read_text(encoding="utf-8").lower()


def test_allow_untested_exits_0_when_only_untested_requirements_keep_profiles_incomplete(reference_runs):
    run = reference_runs["untested"]
    assert run.returncode == 0, run.stdout + run.stderr
    assert "This is not a conformance claim" in run.stdout
    results = RunResults.from_json((run.out / "results.json").read_text(encoding="utf-8"))
    assert [(p.name, str(p.verdict)) for p in results.profiles] == [("follower-core-06", "INCOMPLETE")]
    assert [c.verdict for c in results.checks] == [Verdict.PASS]


def test_a_run_over_its_time_limit_is_stopped_with_its_sut_and_writes_no_reports(reference_runs):
    run = reference_runs["timeout"]
    assert run.returncode == 1
    assert "exceeded --timeout-total 3s and was stopped; no reports were written" in run.stderr
    for name in REPORTS:
        assert not (run.out / name).exists()
    # The SUT and the suite's peers run in their own process groups, named by their config under the
    # output dir: none may outlive the stopped run.
    assert processes_mentioning(str(run.out)) == []


def processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:  # the process ended while we looked
            continue
        if any(text.encode() in arg for arg in argv):
            found.append(b" ".join(argv).decode(errors="replace"))
    return found


# --------------------------------------------------------------------------------------------
# --allow-untested decides on the gated, re-scored profiles


def _only_untested(checks, baseline=None):
    results = synthetic_results(checks)
    report = gate(results, parse_baseline(baseline or {"version": 1, "expected_failures": []}))
    assert not report.passed
    return run_module.only_untested(results, report)


def test_allow_untested_accepts_untested_requirements_only():
    assert _only_untested([check("c1", Verdict.PASS, (WELL_KNOWN, HTTPS_URLS))]) is True


@pytest.mark.parametrize("verdict", [Verdict.FAIL, Verdict.HARNESS_ERROR, Verdict.NOT_APPLICABLE])
def test_allow_untested_refuses_failures_harness_errors_and_required_features_absent(verdict):
    assert _only_untested([check("c1", Verdict.PASS, (HTTPS_URLS,)), check("c2", verdict, (WELL_KNOWN,))]) is False


def test_allow_untested_accepts_a_failure_the_baseline_expects():
    baseline = {"version": 1, "expected_failures": [{"check": "c2", "reason": "known bug EX-1"}]}
    checks = [check("c1", Verdict.PASS, (HTTPS_URLS,)), check("c2", Verdict.FAIL, (WELL_KNOWN,))]
    assert _only_untested(checks, baseline) is True


# --------------------------------------------------------------------------------------------
# Usage errors (exit 2) before anything runs, and the paths where the suite itself breaks


@pytest.mark.parametrize(
    "args, message",
    [
        (["--profile", "no-such-profile"], "unknown profile(s) ['no-such-profile']"),
        (["--sut", "missing-manifest.yaml"], "cannot read SUT manifest"),
        (["-n", "0"], "at least 1"),
        (["--baseline", "missing-baseline.yaml"], "--baseline"),
        (["--sign-key", "missing-key.pem"], "--sign-key"),
        (["--timeout-total", "0"], "must be positive"),
        (["--seed", "abc"], "invalid int value"),
    ],
)
def test_run_usage_errors_exit_2_with_one_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run_module, "run_checks", _must_not_run)
    assert main(["run", "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def _must_not_run(*args, **kwargs):
    raise AssertionError("a usage error must be reported before the checks run")


MANIFEST = """\
manifestVersion: 1
name: follower-only SUT
domains: [sut.mimi.test]
roles: [follower]
connector: {type: reference}
"""


def test_profiles_apply_by_the_roles_the_sut_declares(tmp_path, monkeypatch, capsys):
    manifest = tmp_path / "sut.yaml"
    manifest.write_text(MANIFEST, encoding="utf-8")
    plan = run_module.plan_run(run_module.RunOptions(sut=str(manifest), out=tmp_path / "out"))
    assert [p.name for p in plan.profiles] == ["follower-core-06"]
    assert "--mimi-profile" in run_module.pytest_argv(plan)  # exactly one profile: its levels score the checks
    monkeypatch.setattr(run_module, "run_checks", _must_not_run)
    assert main(["run", "--sut", str(manifest), "--profile", "hub-core-06", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "['hub-core-06'] need a role, consent mode or feature the SUT does not declare" in err
    assert "SUT roles: ['follower']" in err
    # An extension profile needs what it requires: this SUT declares no consent mode.
    assert main(["run", "--sut", str(manifest), "--profile", "consent-quarantine", "--out", str(tmp_path / "o")]) == 2
    assert "['consent-quarantine'] need a role, consent mode or feature" in capsys.readouterr().err


def test_the_pytest_command_pins_the_rootdir_and_passes_the_options(tmp_path):
    plan = run_module.plan_run(run_module.RunOptions(out=tmp_path / "out", seed=42, workers=3))
    argv = run_module.pytest_argv(plan)
    assert argv[0] == str(run_module.SCENARIOS_DIR)
    assert f"--rootdir={run_module.ROOT_DIR}" in argv
    joined = " ".join(argv)
    for expected in ("-p no:cacheprovider", "--sut reference", "--seed 42", "-n 3",
                     f"--mimi-results {tmp_path / 'out' / 'checks.jsonl'}", f"--mimi-output {tmp_path / 'out'}"):
        assert expected in joined  # fmt: skip
    assert "--mimi-profile" not in argv  # two profiles apply to the reference SUT: catalogue levels


@pytest.mark.parametrize("returncode, expected", [(3, 1), (2, 1), (4, 2), (None, 1)])
def test_a_crashed_or_timed_out_run_writes_no_reports(tmp_path, monkeypatch, capsys, returncode, expected):
    def fake_run(plan, printer):
        (plan.out / "pytest.log").write_text("INTERNALERROR> boom\n", encoding="utf-8")
        return run_module.PytestOutcome(returncode, 0.1)

    monkeypatch.setattr(run_module, "run_checks", fake_run)
    assert main(["run", "--out", str(tmp_path), "--seed", "1"]) == expected
    err = capsys.readouterr().err
    assert "boom" in err
    assert not (tmp_path / "results.json").exists()


def test_a_previous_runs_reports_are_removed_before_a_run(tmp_path, monkeypatch):
    (tmp_path / "results.json").write_text("{}", encoding="utf-8")
    monkeypatch.setattr(run_module, "run_checks", lambda plan, printer: run_module.PytestOutcome(3, 0.1))
    assert main(["run", "--out", str(tmp_path), "--seed", "1"]) == 1
    assert not (tmp_path / "results.json").exists()


def test_the_area_of_a_check_is_its_module_name_without_test_():
    assert area_of(DISCOVERY_CHECK) == "discovery"
    assert area_of("conformance/scenarios/test_key_material.py::test_x[hub]") == "key_material"
