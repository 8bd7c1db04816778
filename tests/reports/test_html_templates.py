"""The HTML report's Jinja2 templates: autoescaping, packaging, and the CI gate with its baseline marks."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from report_builders import mixed_results

from reports.baseline import gate, parse_baseline, record_gate
from reports.html import _environment, render_html

ROOT = Path(__file__).resolve().parents[2]


def _check_id(name: str) -> str:
    return next(c.check_id for c in mixed_results().checks if c.check_id.endswith(name))


def gated(reasons: dict[str, str], baseline_file: str | None = "baseline.yaml"):
    run = mixed_results()
    baseline = parse_baseline(
        {"version": 1, "expected_failures": [{"check": _check_id(name), "reason": why} for name, why in reasons.items()]}
    )
    return record_gate(run, gate(run, baseline), baseline, baseline_file=baseline_file)


def test_autoescape_is_on_and_the_templates_are_package_data():
    assert _environment().autoescape is True
    names = {entry.name for entry in resources.files("reports").joinpath("templates").iterdir()}
    assert {"report.html.j2", "macros.html.j2", "report.css", "report.js"} <= names
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    # A data-only folder is a package of its own (setuptools warns otherwise); the wheel test checks the files.
    setuptools = pyproject["tool"]["setuptools"]
    assert "reports.templates" in setuptools["packages"]
    packaged = setuptools["package-data"]["reports.templates"]
    assert all(any(Path(name).match(pattern) for pattern in packaged) for name in names if not name.startswith("_"))
    assert any(dep.startswith("jinja2") for dep in pyproject["project"]["dependencies"])


def test_without_a_gate_there_is_no_gate_line_and_no_mark():
    page = render_html(mixed_results())
    assert 'id="gate"' not in page and "expected failure (baseline)" not in page


def test_expected_failures_are_marked_with_the_baselines_reason_escaped():
    run = gated({"test_keypackage_not_reused": "vendor bug <#42> & fixed in 2.1", "test_notify_201": "hub crash"})
    page = render_html(run)
    assert "expected failure (baseline): vendor bug &lt;#42&gt; &amp; fixed in 2.1" in page
    assert "expected failure (baseline): hub crash" in page
    assert "<#42>" not in page
    # The mark is on the waived checks only (both cards, and their lines in the traceability table).
    assert page.count('data-baseline="expected-failure"') == 4  # two cards, each with its mark
    assert page.count('<small class="baseline-mark">expected failure (baseline)</small>') == 2
    # Both failures are waived, so the gate passes and the header says so.
    assert 'data-gate="passed"' in page and "Baseline gate: passed with baseline baseline.yaml" in page


def test_the_header_shows_the_gate_outcome():
    failed = render_html(gated({}, baseline_file=None))
    assert 'data-gate="failed"' in failed
    assert (
        "Baseline gate: not passed without a baseline: 2 unexpected failures; "
        "profiles not passing: hub-core-06 (NOT_CONFORMANT), follower-core-06 (INCOMPLETE)</p>"
    ) in failed
    one_waived = render_html(gated({"test_keypackage_not_reused": "known"}))
    assert "Baseline gate: not passed with baseline baseline.yaml: 1 unexpected failure, 1 expected failure;" in one_waived
    assert (
        "with the expected failures waived, hub-core-06: CONFORMANT_WITH_WARNINGS; "
        "profiles not passing: follower-core-06 (INCOMPLETE)</p>"
    ) in one_waived


def test_a_stale_entry_is_counted_in_the_header():
    page = render_html(gated({"test_mtls_required": "was failing", "test_keypackage_not_reused": "known"}))
    assert "1 unexpected failure, 1 stale baseline entry, 1 expected failure" in page
