"""CLI contract of ``run --alluredir``, ``baseline init`` and the ``diff`` warning: exit codes, stderr,
the final line, and what lands in the files (allure statuses, results.json's gate and selection)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cli_helpers import DISCOVERY_CHECK, check, synthetic_results, write_results

from conformance.harness.manifest import reference_manifest
from conformance.run import only_untested
from reports.baseline import PLACEHOLDER_REASON, gate, load_baseline
from reports.model import RunResults, Verdict
from reports.schema import results_schema_errors

REFUSE_UNAUTHENTICATED = "conformance/scenarios/test_transport.py::test_request_without_client_certificate_is_refused"


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)  # fmt: skip


@pytest.fixture(scope="module")
def faulty_transport_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``-k transport --alluredir`` against the reference SUT accepting requests without a client
    certificate: exactly one transport check FAILs (the SUT's fault), the rest PASS."""
    base = tmp_path_factory.mktemp("allure-run")
    manifest = base / "sut.yaml"
    document = dict(reference_manifest(faults=("client-cert-optional",)).document)
    manifest.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    proc = cli("run", "--sut", str(manifest), "-k", "transport", "--seed", "1", "--allow-untested",
               "--out", str(base / "out"), "--alluredir", str(base / "allure"))  # fmt: skip
    return proc, base


def allure_statuses(folder: Path) -> dict[str, str]:
    results = (json.loads(path.read_text(encoding="utf-8")) for path in folder.glob("*-result.json"))
    return {item["fullName"] if "fullName" in item else item["name"]: item["status"] for item in results}


def test_alluredir_shows_a_sut_failure_as_failed_not_broken(faulty_transport_run):
    proc, base = faulty_transport_run
    assert proc.returncode == 1, proc.stderr
    assert "FAIL" in proc.stdout.strip().splitlines()[-1]
    statuses = {name.rsplit(".", 1)[-1].rsplit("#", 1)[-1]: s for name, s in allure_statuses(base / "allure").items()}
    assert statuses.pop("test_request_without_client_certificate_is_refused") == "failed"
    assert statuses and set(statuses.values()) == {"passed"}


def test_the_run_records_its_selection_and_gate_and_baseline_init_waives_its_failure(faulty_transport_run, tmp_path):
    proc, base = faulty_transport_run
    results_file = base / "out" / "results.json"
    document = json.loads(results_file.read_text(encoding="utf-8"))
    assert results_schema_errors(document) == []
    assert document["run_options"] == {"selection": {"k": "transport"}, "allow_untested": True}
    assert document["gate"]["passed"] is False
    assert [(i["check_id"], i["outcome"]) for i in document["gate"]["items"]] == [
        (REFUSE_UNAUTHENTICATED, "UNEXPECTED_FAILURE")
    ]
    baseline_file = tmp_path / "baseline.yaml"
    init = cli("baseline", "init", str(results_file), "-o", str(baseline_file))
    assert init.returncode == 0, init.stderr
    assert init.stdout.strip().splitlines()[-1].startswith(f"wrote {baseline_file}: 1 expected failure")
    baseline = load_baseline(baseline_file)
    assert list(baseline.entries) == [REFUSE_UNAUTHENTICATED]
    results = RunResults.from_json(results_file.read_bytes())
    report = gate(results, baseline)
    # With the baseline, nothing fails the -k transport run but the requirements it did not select.
    assert not any(item.outcome.fails_run for item in report.items)
    assert only_untested(results, report)


def test_alluredir_without_allure_pytest_is_a_usage_error_naming_the_install(tmp_path):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "allure_pytest.py").write_text("raise ImportError('allure-pytest is not installed')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(shadow), os.environ.get("PYTHONPATH")]))}
    proc = cli("run", "--alluredir", str(tmp_path / "allure"), "--out", str(tmp_path / "out"), env=env)
    assert proc.returncode == 2
    assert "pip install allure-pytest" in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "allure").exists()


def test_baseline_init_refuses_to_overwrite_without_force(tmp_path):
    results_file = write_results(tmp_path / "results.json", synthetic_results([check(DISCOVERY_CHECK, Verdict.FAIL)]))
    out = tmp_path / "baseline.yaml"
    first = cli("baseline", "init", str(results_file), "-o", str(out))
    assert first.returncode == 0, first.stderr
    text = out.read_text(encoding="utf-8")
    assert DISCOVERY_CHECK in text and PLACEHOLDER_REASON in text
    out.write_text("kept\n", encoding="utf-8")
    refused = cli("baseline", "init", str(results_file), "-o", str(out))
    assert refused.returncode == 2
    assert "--force" in refused.stderr.strip().splitlines()[-1]
    assert out.read_text(encoding="utf-8") == "kept\n"
    forced = cli("baseline", "init", str(results_file), "-o", str(out), "--force")
    assert forced.returncode == 0 and out.read_text(encoding="utf-8") == text


def test_baseline_init_default_output_and_a_bad_results_file(tmp_path):
    results_file = write_results(tmp_path / "results.json", synthetic_results([check(DISCOVERY_CHECK, Verdict.PASS)]))
    clean = cli("baseline", "init", str(results_file), cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.strip().splitlines()[-1].startswith("wrote mimi-baseline.yaml: 0 expected failures")
    assert load_baseline(tmp_path / "mimi-baseline.yaml").entries == {}
    (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
    bad = cli("baseline", "init", str(tmp_path / "bad.json"), "-o", str(tmp_path / "b.yaml"))
    assert bad.returncode == 2 and "baseline init:" in bad.stderr
    assert cli("baseline").returncode == 2  # the subcommand is required


def test_diff_warns_on_stderr_when_the_manifests_differ_and_keeps_its_exit_code(tmp_path):
    same = synthetic_results([check(DISCOVERY_CHECK, Verdict.PASS)])
    other = RunResults.from_dict({**json.loads(same.to_json()), "sut_manifest": {"name": "another SUT"},
                                  "sut_manifest_sha256": ""})  # fmt: skip
    a = write_results(tmp_path / "a.json", same)
    b = write_results(tmp_path / "b.json", other)
    quiet = cli("diff", str(a), str(a))
    assert quiet.returncode == 0 and quiet.stderr == ""
    warned = cli("diff", str(a), str(b))
    assert warned.returncode == 0
    assert len(warned.stderr.strip().splitlines()) == 1
    assert "different SUT manifests" in warned.stderr
    assert warned.stdout == quiet.stdout
