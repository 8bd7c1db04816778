"""Listing and selecting checks: ``list``, ``run --requirement/--area/--last-failed`` (with -k), a
selection matching nothing (exit 2 before anything runs), ``run --format jsonl`` and ``completion``.

Selections are resolved on the collected inventory: most tests look at the plan (no check runs);
one real run covers --last-failed with --format jsonl end to end."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from cli_helpers import DISCOVERY_CHECK, WELL_KNOWN, check, mimi_conformance, synthetic_results, write_results

from conformance import run as run_module
from conformance.cli import main
from reports.model import Verdict

DISCOVERY_MODULE = "conformance/scenarios/test_discovery.py::"
TRANSPORT_MODULE = "conformance/scenarios/test_transport.py::"


def run_cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _must_not_run(plan, printer):
    raise AssertionError("a refused selection must not start pytest")


def _plan(tmp_path, **options):
    return run_module.plan_run(run_module.RunOptions(out=tmp_path / "out", seed=1, **options))


# --------------------------------------------------------------------------------------------
# list


def test_list_prints_an_aligned_table_of_the_checks_of_an_area(capsys):
    code, out, _ = run_cli(capsys, "list", "--area", "discovery")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["ID", "AREA", "ROLE", "FEATURES", "REQUIREMENTS"]
    assert rows and all(row.startswith(DISCOVERY_MODULE) for row in rows)
    # Aligned: every column starts at the same offset on every line.
    for column in ("AREA", "ROLE", "FEATURES", "REQUIREMENTS"):
        offset = header.index(column)
        assert all(row[offset - 2:offset] == "  " and row[offset] != " " for row in rows), column
    directory_row = next(row for row in rows if row.startswith(DISCOVERY_CHECK))
    assert directory_row.split()[1:4] == ["discovery", "any", "-"]
    assert WELL_KNOWN in directory_row.split()[4].split(",")


def test_list_json_is_an_array_of_checks_filtered_by_requirement_prefix_and_sut(capsys):
    code, out, _ = run_cli(capsys, "list", "--json", "--requirement", "PROTO-KEYMAT-", "--sut", "reference")
    assert code == 0
    checks = json.loads(out)
    assert checks and isinstance(checks, list)
    for entry in checks:
        assert set(entry) == {"id", "area", "role", "requirements", "features"}
        assert any(requirement.startswith("PROTO-KEYMAT-") for requirement in entry["requirements"])
    code, out, _ = run_cli(capsys, "list", "--json", "--area", "discovery", "-k", "identifier_query")
    assert code == 0
    ids = [entry["id"] for entry in json.loads(out)]
    assert ids and all(i.startswith(DISCOVERY_MODULE) and "identifier_query" in i for i in ids)


@pytest.mark.parametrize("selection, hint", [
    (["-k", "PROTO-KEYMAT-NO-REUSE"], "select requirement IDs with --requirement"),
    (["--area", "nope"], "unknown area(s) nope"),
    (["--requirement", "PROTO-NOPE"], "no check judges PROTO-NOPE"),
])  # fmt: skip
def test_list_of_a_selection_matching_nothing_warns_and_exits_2(capsys, selection, hint):
    code, out, err = run_cli(capsys, "list", *selection)
    assert code == 2 and out == ""
    assert f"warning: no check matches {' '.join(selection)}" in err and hint in err


def test_list_with_an_unparsable_k_expression_is_a_usage_error(capsys):
    code, _, err = run_cli(capsys, "list", "-k", "and or")
    assert code == 2 and "-k and or" in err


# --------------------------------------------------------------------------------------------
# run: the selection is exact, by check ID


def test_run_area_requirement_and_k_select_exactly_by_check_id(tmp_path):
    plan = _plan(tmp_path, areas=["discovery"])
    assert plan.checks and all(check_id.startswith(DISCOVERY_MODULE) for check_id in plan.checks)
    argv = run_module.pytest_argv(plan)
    assert argv[: len(plan.checks)] == list(plan.checks)  # node IDs instead of the scenarios folder
    assert str(run_module.SCENARIOS_DIR) not in argv and "-k" not in argv
    assert plan.options.selection() == {"area": ["discovery"]}

    exact = _plan(tmp_path, requirements=[WELL_KNOWN])
    assert DISCOVERY_CHECK in exact.checks
    prefix = _plan(tmp_path, requirements=["PROTO-TRANSPORT-"])
    assert prefix.checks and all(check_id.startswith(TRANSPORT_MODULE) for check_id in prefix.checks)

    # Combined with -k: both hold.
    both = _plan(tmp_path, areas=["discovery"], select="identifier_query")
    assert both.checks and set(both.checks) < set(plan.checks)
    assert all("identifier_query" in check_id for check_id in both.checks)


def test_run_last_failed_selects_the_checks_the_previous_run_did_not_pass(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    previous = [check(DISCOVERY_CHECK, Verdict.FAIL),
                check(TRANSPORT_MODULE + "test_request_without_client_certificate_is_refused", Verdict.PASS)]
    write_results(out / "results.json", synthetic_results(previous))
    plan = _plan(tmp_path, last_failed=True)
    assert plan.checks == (DISCOVERY_CHECK,)
    assert plan.options.selection() == {"last-failed": True}


@pytest.mark.parametrize("selection", [
    ["-k", "PROTO-KEYMAT-NO-REUSE"],
    ["--requirement", "PROTO-NO-SUCH-REQUIREMENT"],
    ["--area", "nope"],
    ["--requirement", "PROTO-KEYMAT-", "--area", "transport"],  # each matches, not both
])  # fmt: skip
def test_run_of_a_selection_matching_nothing_exits_2_before_anything_runs(tmp_path, monkeypatch, capsys, selection):
    monkeypatch.setattr(run_module, "run_checks", _must_not_run)
    code, out, err = run_cli(capsys, "run", "--out", str(tmp_path / "out"), *selection)
    assert code == 2
    assert f"warning: no check matches {' '.join(selection)}" in err
    assert out.splitlines()[-1].startswith("RESULT: ERROR (exit 2)")
    assert not (tmp_path / "out").exists()


def test_run_last_failed_without_a_previous_run_or_failure_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run_module, "run_checks", _must_not_run)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "run", "--out", str(out), "--last-failed")
    assert code == 2 and f"--last-failed: no previous run is recorded in {out}" in err
    out.mkdir()
    write_results(out / "results.json", synthetic_results([check(DISCOVERY_CHECK, Verdict.PASS)]))
    code, _, err = run_cli(capsys, "run", "--out", str(out), "--last-failed")
    assert code == 2 and "warning: no check matches --last-failed" in err


# --------------------------------------------------------------------------------------------
# run --format jsonl (a real run of one check)


def test_run_jsonl_streams_check_records_then_the_result_on_stdout_only(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    write_results(out / "results.json", synthetic_results([check(DISCOVERY_CHECK, Verdict.FAIL)]))
    process = mimi_conformance("run", "--out", str(out), "--seed", "5", "--last-failed", "--format", "jsonl")
    stdout, stderr = process.communicate(timeout=600)
    lines = [json.loads(line) for line in stdout.splitlines()]  # every stdout line is JSON
    *checks, result = lines
    assert [record["kind"] for record in checks] == ["check"]
    assert checks[0]["check_id"] == DISCOVERY_CHECK and checks[0]["verdict"] == "PASS"
    assert result["kind"] == "result" and result["exit"] == process.returncode
    assert result["checks"] == 1 and result["verdicts"] == {"PASS": 1}
    assert "hub-core-06" in result["profiles"]
    assert "seed 5" in stderr and "RESULT:" in stderr  # the human lines went to stderr
    recorded = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert recorded["run_options"]["selection"] == {"last-failed": True}


# --------------------------------------------------------------------------------------------
# completion


def test_completion_scripts_are_generated_from_the_parser(capsys):
    code, script, _ = run_cli(capsys, "completion", "bash")
    assert code == 0
    for word in ("list", "completion", "--requirement", "--last-failed", "--format"):
        assert word in script
    assert "_shtab_mimi_conformance_run___sut_COMPGEN=_shtab_compgen_files" in script  # paths complete as files
    checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    code, script, _ = run_cli(capsys, "completion", "zsh")
    assert code == 0 and script.startswith("#compdef mimi-conformance")
    if shutil.which("zsh"):
        checked = subprocess.run(["zsh", "-n"], input=script, text=True, capture_output=True)
        assert checked.returncode == 0, checked.stderr
    code, script, _ = run_cli(capsys, "completion", "tcsh")
    assert code == 0 and "complete mimi-conformance" in script
    code, _, err = run_cli(capsys, "completion", "fish")
    assert code == 2 and "invalid choice" in err
