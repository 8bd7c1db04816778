"""The contract of ``mimi-conformance run``'s terminal output (issue 20): one final ``RESULT:`` line that
agrees with the exit code on every exit path, no profile listed twice, aligned tables without colour
codes, the non-passing checks grouped by cause, and progress while waiting."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from cli_helpers import HTTPS_URLS, OTHER_MUST, WELL_KNOWN, check, synthetic_results

from conformance import run as run_module
from conformance.cli import main
from reports.model import CheckRecord, ProfileInfo, Verdict

# --------------------------------------------------------------------------------------------
# The final line on every exit path (the checks themselves are replaced: these test the command)


def _fake_run(returncode, log="", checks=()):
    """A run_checks stand-in: pytest "ended" with ``returncode``; the scored results are ``checks``."""

    def fake_run_checks(plan, printer):
        (plan.out / run_module.PYTEST_LOG).write_text(log, encoding="utf-8")
        return run_module.PytestOutcome(returncode, 0.1)

    return fake_run_checks


def _run(monkeypatch, capsys, tmp_path, *args, returncode=0, log="", checks=()):
    monkeypatch.setattr(run_module, "run_checks", _fake_run(returncode, log))
    monkeypatch.setattr(run_module, "build_results", lambda plan, found, started, ended: synthetic_results(checks))
    code = main(["run", "--out", str(tmp_path / "out"), "--seed", "3", "--profile", "hub-core-06", *args])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert [line for line in lines if line.startswith("RESULT:")] == [lines[-1]], captured.out
    assert f"(exit {code}" in lines[-1]
    assert "\x1b" not in captured.out  # no colour or control codes outside a terminal
    return code, captured.out, captured.err


ALL_PASS = [check("c1", Verdict.PASS, (WELL_KNOWN, HTTPS_URLS)), check("c2", Verdict.PASS, (OTHER_MUST,), "transport")]
UNTESTED_ONLY = [check("c1", Verdict.PASS, (WELL_KNOWN, HTTPS_URLS))]


def test_a_passing_run_ends_with_pass_exit_0(monkeypatch, capsys, tmp_path):
    code, out, _ = _run(monkeypatch, capsys, tmp_path, checks=ALL_PASS)
    assert code == 0
    assert out.splitlines()[-1] == "RESULT: PASS (exit 0): 1 profile CONFORMANT"
    assert "baseline gate: passed" in out


def test_allow_untested_ends_with_pass_exit_0_and_says_it_is_no_conformance_claim(monkeypatch, capsys, tmp_path):
    code, out, _ = _run(monkeypatch, capsys, tmp_path, "--allow-untested", checks=UNTESTED_ONLY)
    assert code == 0
    assert out.splitlines()[-1] == (
        "RESULT: PASS (exit 0, --allow-untested): every check passed; 1 profile INCOMPLETE only for untested "
        "requirements: not a conformance claim"
    )
    # The gate is named for what it is: never a "FAILED" above an exit 0.
    assert "gate: FAILED" not in out
    assert "baseline gate: not passed (profiles INCOMPLETE: hub-core-06)" in out


def test_a_failing_run_ends_with_fail_exit_1_naming_why(monkeypatch, capsys, tmp_path):
    checks = [*ALL_PASS, check("c3", Verdict.FAIL, (OTHER_MUST,), "transport"), check("c4", Verdict.HARNESS_ERROR)]
    code, out, _ = _run(monkeypatch, capsys, tmp_path, checks=checks)
    assert code == 1
    assert out.splitlines()[-1] == "RESULT: FAIL (exit 1): 2 unexpected failures, 1 profile NOT_CONFORMANT"
    assert "baseline gate: not passed (2 unexpected failures; profiles NOT_CONFORMANT: hub-core-06)" in out


def test_without_allow_untested_untested_requirements_fail_the_run(monkeypatch, capsys, tmp_path):
    code, out, _ = _run(monkeypatch, capsys, tmp_path, checks=UNTESTED_ONLY)
    assert code == 1
    assert out.splitlines()[-1] == "RESULT: FAIL (exit 1): 1 profile INCOMPLETE"


def test_a_usage_error_ends_with_error_exit_2_and_one_line_on_stderr(monkeypatch, capsys, tmp_path):
    code, out, err = _run(monkeypatch, capsys, tmp_path, "--profile", "no-such-profile")
    assert code == 2
    assert out.splitlines()[-1].startswith("RESULT: ERROR (exit 2): --profile: unknown profile(s) ['no-such-profile']")
    assert len(err.strip().splitlines()) == 1


def test_a_setup_error_reported_by_the_harness_ends_with_error_exit_2_and_its_sentence(monkeypatch, capsys, tmp_path):
    sentence = "the SUT's control API at https://sut.mimi.test:9443 does not answer"
    code, out, err = _run(monkeypatch, capsys, tmp_path, returncode=4, log=f"Exit: {sentence}\n")
    assert code == 2
    assert out.splitlines()[-1] == f"RESULT: ERROR (exit 2): {sentence}"
    assert sentence in err


def test_a_timed_out_run_ends_with_error_exit_1(monkeypatch, capsys, tmp_path):
    code, out, err = _run(monkeypatch, capsys, tmp_path, "--timeout-total", "5", returncode=None, log="slow\n")
    assert code == 1
    assert out.splitlines()[-1].startswith("RESULT: ERROR (exit 1): the run timed out: it exceeded --timeout-total 5s")
    assert "slow" in err  # the log's tail, for the CI maintainer


def test_a_crashed_suite_ends_with_error_exit_1(monkeypatch, capsys, tmp_path):
    code, out, _ = _run(monkeypatch, capsys, tmp_path, returncode=3, log="INTERNALERROR> boom\n")
    assert code == 1
    assert out.splitlines()[-1] == "RESULT: ERROR (exit 1): the suite itself failed (pytest exit 3); no reports were written"


def test_the_waiting_line_comes_at_once(monkeypatch, capsys, tmp_path):
    _, out, _ = _run(monkeypatch, capsys, tmp_path, checks=ALL_PASS)
    assert "waiting for the SUT (starting the embedded reference SUT) and the first checks ..." in out


def test_each_profile_is_listed_once_with_raw_and_baseline_verdicts(monkeypatch, capsys, tmp_path):
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text('version: 1\nexpected_failures:\n  - check: c3\n    reason: "known bug EX-1"\n', encoding="utf-8")
    checks = [*ALL_PASS, check("c3", Verdict.FAIL, (OTHER_MUST,), "transport")]
    code, out, _ = _run(monkeypatch, capsys, tmp_path, "--baseline", str(baseline), checks=checks)
    assert code == 0
    assert out.splitlines()[-1] == "RESULT: PASS (exit 0): 1 profile CONFORMANT"
    rows = [line.split() for line in out.splitlines() if line.split()[:1] == ["hub-core-06"]]
    # one table row: the verdict as scored, then with the baseline's expected failure waived
    assert len(rows) == 1 and rows[0][:3] == ["hub-core-06", "NOT_CONFORMANT", "CONFORMANT"], out
    assert "expected failure (baseline): c3 [FAIL] known bug EX-1" in out


def test_a_real_transport_run_ends_with_its_result_line(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "run", "-k", "transport", "--out", str(tmp_path / "out"),
         "--seed", "21", "--profile", "hub-core-06"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    lines = run.stdout.strip().splitlines()
    # Most hub requirements have no transport check: INCOMPLETE, exit 1, and the last line says so.
    assert run.returncode == 1, run.stdout + run.stderr
    assert lines[-1] == "RESULT: FAIL (exit 1): 1 profile INCOMPLETE"
    assert any(line.split()[:2] == ["transport", "11/11"] or line.split()[:1] == ["transport"] for line in lines)
    assert "\x1b" not in run.stdout


# --------------------------------------------------------------------------------------------
# Failures grouped by cause


def _failure(index: int, message: str, verdict: Verdict = Verdict.FAIL) -> CheckRecord:
    return CheckRecord(f"conformance/scenarios/test_x.py::test_{index}", (WELL_KNOWN,), "hub", "x", verdict, message)


def test_a_hundred_failures_with_three_causes_print_as_three_lines():
    checks = [
        *(_failure(i, f"control API: createUser: HTTP 500 for alice-{i:06x}a at 127.0.0.1:{40000 + i}")
          for i in range(62)),
        *(_failure(100 + i, f"no answer from room-{i:04d}ab after {1 + i / 100:.2f}s (id {i:08x}ffee)")
          for i in range(30)),
        *(_failure(200 + i, f"report in /tmp/pytest-of-ci/pytest-{i}/out.json: bad {i:032x}", Verdict.HARNESS_ERROR)
          for i in range(8)),
        _failure(300, "fine", Verdict.PASS),
        _failure(301, "the SUT lacks sendMessage", Verdict.NOT_APPLICABLE),
    ]  # fmt: skip
    lines = run_module.failure_group_lines(checks)
    assert lines[0] == "non-passing checks by cause (100 in 3 groups):"
    assert lines[1:] == [
        "  62 checks FAIL: control API: createUser: HTTP 500 for alice-<id> at <ip>:<port> "
        "(e.g. conformance/scenarios/test_x.py::test_0)",
        "  30 checks FAIL: no answer from room-<id> after <n>s (id <hex>) (e.g. conformance/scenarios/test_x.py::test_100)",
        "  8 checks HARNESS_ERROR: report in <path>: bad <hex> (e.g. conformance/scenarios/test_x.py::test_200)",
    ]


def test_many_causes_stop_after_ten_groups_pointing_at_the_summary():
    checks = [_failure(i, f"cause number {word}") for i, word in enumerate("abcdefghijklmno")]
    lines = run_module.failure_group_lines(checks, more_in="out/summary.md")
    assert len(lines) == 1 + 10 + 1
    assert lines[-1] == "  ... and 5 more causes, 5 checks (see out/summary.md)"


def test_warnings_come_after_failures_and_a_clean_run_prints_no_group():
    lines = run_module.failure_group_lines([_failure(1, "late", Verdict.WARN), _failure(2, "broken")])
    assert [line.split()[2] for line in lines[1:]] == ["FAIL:", "WARN:"]
    assert run_module.failure_group_lines([_failure(3, "ok", Verdict.PASS)]) == []


def test_normalising_keeps_status_codes_and_words():
    assert run_module.normalise_message("HTTP 404 from /v1/rooms on port 443\nsecond line") == (
        "HTTP 404 from <path> on port 443"
    )


# --------------------------------------------------------------------------------------------
# Aligned tables, also for long names


def test_the_area_table_stays_in_columns_with_a_long_area_name():
    long_area = "a_rather_long_area_name_for_the_table"
    checks = [check("c1", Verdict.PASS, area="discovery"), check("c2", Verdict.FAIL, area=long_area)]
    lines = run_module.area_table(checks)
    rows = [line for line in lines if line.split()[0] in ("discovery", long_area, "total")]
    assert len(rows) == 3
    # right-aligned numbers: every column ends where its header ends
    header = lines[0]
    for name in ("checks", "PASS", "FAIL", "HARNESS_ERROR"):
        end = header.index(name) + len(name)
        assert {row[:end].split()[-1].isdigit() and row[end:end + 1] in (" ", "") for row in rows} == {True}, lines


def test_the_profile_table_stays_in_columns_with_a_long_profile_name():
    long_name = "a-vendor-profile-with-a-very-long-name-indeed"
    profiles = [
        ProfileInfo("hub-core-06", "hub", "hub", ("draft-ietf-mimi-protocol-06",), {WELL_KNOWN: "MUST"}),
        ProfileInfo(long_name, "long", "hub", ("draft-ietf-mimi-protocol-06",), {WELL_KNOWN: "MUST"}),
    ]
    scored = [synthetic_results([check("c1", Verdict.PASS)], profile).profiles[0] for profile in profiles]
    results = dataclasses.replace(synthetic_results([check("c1", Verdict.PASS)]), profiles=tuple(scored))
    lines = run_module.profile_lines(results)
    rows = [line for line in lines if line.split()[0] in ("profile", "hub-core-06", long_name)]
    assert len(rows) == 3, lines
    assert len({row.index("verdict" if row.split()[0] == "profile" else "CONFORMANT") for row in rows}) == 1, lines
    assert len({row.rindex(row.split()[-1]) + len(row.split()[-1]) for row in rows}) == 1, lines  # right-aligned


# --------------------------------------------------------------------------------------------
# Progress: heartbeat lines when the output is not a terminal


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_heartbeat_lines_fill_silences_only():
    clock, lines = FakeClock(), []
    display = run_module.ProgressDisplay(lines.append, heartbeat=0.05, clock=clock)
    clock.now += 0.01
    display.tick()
    assert lines == []  # not yet
    clock.now += 0.05
    display.tick()
    assert lines == ["  ... waiting for the SUT and the checks to start, 0 s"]
    display.areas.collected({"discovery": 1, "transport": 2})
    display.areas.check_done({"area": "discovery", "verdict": "PASS", "duration": 0.5})
    assert lines[-1].split()[:4] == ["discovery", "1/1", "checks", "PASS"]
    display.tick()
    assert len(lines) == 2  # an area line just printed: no heartbeat on top of it
    display.areas.check_done({"area": "transport", "verdict": "FAIL", "duration": 0.5})
    clock.now += 0.06
    display.tick()
    assert lines[-1] == "  ... 2/3 checks, 0 s"
    display.close()
    assert lines[-1].split()[:2] == ["transport", "1/2"] and lines[-1].endswith("(incomplete)")


def test_area_lines_are_aligned_to_the_longest_area_name():
    lines = []
    progress = run_module.AreaProgress(lines.append)
    progress.collected({"a_long_area_name": 1, "x": 1})
    progress.check_done({"area": "x", "verdict": "PASS"})
    progress.check_done({"area": "a_long_area_name", "verdict": "PASS"})
    assert len({line.index("1/1") for line in lines}) == 1, lines


def test_no_live_line_when_the_printer_is_not_the_terminal():
    assert run_module._terminal_console(lambda line: None) is None


@pytest.mark.parametrize("verdicts, expected", [
    (["CONFORMANT"] * 3, "3 profiles CONFORMANT"),
    (["INCOMPLETE", "NOT_CONFORMANT", "INCOMPLETE"], "1 profile NOT_CONFORMANT, 2 profiles INCOMPLETE"),
])  # fmt: skip
def test_profile_verdicts_are_counted_in_words(verdicts, expected):
    from reports.model import ProfileVerdict

    assert run_module._counted([ProfileVerdict(v) for v in verdicts]) == expected


def test_an_option_the_parser_refuses_also_ends_with_the_result_line(capsys):
    assert main(["run", "--seed", "abc"]) == 2
    captured = capsys.readouterr()
    assert captured.out.strip().splitlines()[-1] == "RESULT: ERROR (exit 2): argument --seed: invalid int value: 'abc'"
    assert captured.err.count("\n") == 1 and "see mimi-conformance run --help" in captured.err
