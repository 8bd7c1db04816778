"""The baseline in the artifacts: results.json records (and signs) the gate, the baseline and the run's
selection; JUnit marks expected failures; ``baseline init`` writes a baseline the run then passes."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET

from report_builders import check, hub_checks, results

from reports.baseline import (
    PLACEHOLDER_REASON,
    gate,
    load_baseline,
    parse_baseline,
    record_gate,
    render_baseline,
)
from reports.diff import comparability_warning, diff_results_files
from reports.junit import render_junit
from reports.model import RunResults
from reports.schema import results_schema_errors
from reports.signing import generate_key, sign, verify

REUSE = "conformance/scenarios/test_keymaterial.py::test_keypackage_not_reused"
MTLS = "conformance/scenarios/test_transport.py::test_mtls_required"


def gated(run: RunResults, entries: list[dict], **options) -> RunResults:
    baseline = parse_baseline({"version": 1, "expected_failures": entries})
    return record_gate(run, gate(run, baseline), baseline, baseline_file="vendor/baseline.yaml", **options)


def expected_reuse_and_stale_mtls() -> RunResults:
    run = results(hub_checks(reuse="FAIL"))
    return gated(
        run,
        [{"check": REUSE, "reason": "fixed in 2.4 (EX-123)"}, {"check": MTLS, "reason": "was broken"}],
        selection={"k": "transport or keymaterial"},
        allow_untested=True,
    )


def test_results_json_records_the_baseline_the_gate_and_the_selection_and_validates():
    document = json.loads(expected_reuse_and_stale_mtls().to_json())
    assert results_schema_errors(document) == []
    assert document["schema_version"] == "2.1.0"
    assert document["run_options"] == {"selection": {"k": "transport or keymaterial"}, "allow_untested": True}
    gate_record = document["gate"]
    assert gate_record["passed"] is False  # the stale mtls entry fails the gate
    assert gate_record["baseline_file"] == "vendor/baseline.yaml"
    assert gate_record["baseline"] == [
        {"check": REUSE, "reason": "fixed in 2.4 (EX-123)", "intermittent": False},
        {"check": MTLS, "reason": "was broken", "intermittent": False},
    ]
    outcomes = {item["check_id"]: (item["outcome"], item["verdict"]) for item in gate_record["items"]}
    assert outcomes == {REUSE: ("EXPECTED_FAILURE", "FAIL"), MTLS: ("STALE", "PASS")}
    assert gate_record["profile_verdicts"] == {"hub-core-06": "CONFORMANT"}


def test_the_gate_reads_back_and_a_2_0_0_file_still_reads_without_it():
    run = expected_reuse_and_stale_mtls()
    again = RunResults.from_json(run.to_json())
    assert again.gate == run.gate and again.run_options == run.run_options
    assert again.gate.expected_failure(REUSE).detail == "fixed in 2.4 (EX-123)"
    old = json.loads(results(hub_checks()).to_json())
    old["schema_version"] = "2.0.0"
    old["$schema"] = old["$schema"].replace("2.1.0", "2.0.0")
    assert results_schema_errors(old) == []
    assert RunResults.from_dict(old).gate is None


def test_a_bad_gate_record_is_a_schema_error():
    document = json.loads(expected_reuse_and_stale_mtls().to_json())
    document["gate"]["items"][0]["outcome"] = "FORGIVEN"
    assert results_schema_errors(document)


def test_the_signature_covers_the_baseline_and_the_selection():
    signed = sign(expected_reuse_and_stale_mtls(), generate_key())
    assert verify(signed.to_json())[0]
    for tamper in (
        lambda d: d["gate"]["baseline"][0].update(reason="waived by someone else"),
        lambda d: d["run_options"]["selection"].update(k="transport"),
        lambda d: d["run_options"].update(allow_untested=False),
        lambda d: d["gate"].update(passed=True),
    ):
        document = json.loads(signed.to_json())
        tamper(document)
        assert not verify(json.dumps(document))[0]


def test_junit_shows_an_expected_failure_as_skipped_with_the_reason_and_a_stale_entry_as_a_failure():
    root = ET.fromstring(render_junit(expected_reuse_and_stale_mtls()))
    cases = {case.get("name"): case for case in root.iter("testcase")}
    reuse, mtls = cases["test_keypackage_not_reused"], cases["test_mtls_required"]

    def prop(case: ET.Element, name: str) -> str | None:
        return next((p.get("value") for p in case.iter("property") if p.get("name") == name), None)

    assert prop(reuse, "mimi_baseline") == "expected-failure"
    assert prop(reuse, "verdict") == "FAIL"  # the check's own verdict is kept
    assert reuse.find("failure") is None
    assert reuse.find("skipped").get("message") == "expected failure (baseline): fixed in 2.4 (EX-123)"
    assert prop(mtls, "mimi_baseline") == "stale"
    assert mtls.find("failure").get("type") == "STALE_BASELINE"
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("3", "1", "1")
    assert prop(cases["test_directory_https"], "mimi_baseline") is None


def test_junit_without_a_gate_is_unchanged():
    run = results(hub_checks(reuse="FAIL"))
    assert render_junit(run) == render_junit(dataclasses.replace(run, gate=None, run_options=None))
    assert ET.fromstring(render_junit(run)).get("failures") == "1"


def test_baseline_init_lists_every_failing_check_and_the_run_then_passes_the_gate(tmp_path):
    run = results([*hub_checks(reuse="FAIL", https="WARN"),
                   check("test_mtls_broken", "HARNESS_ERROR", ["PROTO-TRANSPORT-MTLS"])])  # fmt: skip
    assert not gate(run).passed
    path = tmp_path / "baseline.yaml"
    path.write_text(render_baseline(run, origin="out/results.json"), encoding="utf-8")
    baseline = load_baseline(path)
    assert list(baseline.entries) == [REUSE, "conformance/scenarios/test_transport.py::test_mtls_broken"]
    assert {entry.reason for entry in baseline.entries.values()} == {PLACEHOLDER_REASON}
    assert gate(run, baseline).passed


def test_baseline_init_of_a_clean_run_is_an_empty_valid_baseline():
    assert parse_baseline(__import__("yaml").safe_load(render_baseline(results(hub_checks())))).entries == {}


def test_diff_warns_once_when_the_runs_tested_different_manifests_or_suite_versions(tmp_path):
    old = results(hub_checks())
    other_sut = results(hub_checks(), manifest={"name": "another server", "roles": ["hub"]})
    newer_suite = dataclasses.replace(old, suite_version="0.2.0")
    assert comparability_warning(old, old) is None
    assert "different SUT manifests" in comparability_warning(old, other_sut)
    assert "different suite versions (0.1.0 vs 0.2.0)" in comparability_warning(old, newer_suite)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(old.to_json(), encoding="utf-8")
    b.write_text(other_sut.to_json(), encoding="utf-8")
    warnings: list[str] = []
    assert diff_results_files(a, b, warn=warnings.append)[0] == 0  # the exit code is unchanged
    assert len(warnings) == 1 and "\n" not in warnings[0]
