"""JUnit XML for CI systems (GitLab, Jenkins, GitHub test reporters).

One ``<testsuite>`` per area, one ``<testcase>`` per check (``classname`` from the module of the
pytest node ID, ``name`` the test and its parameters). Each testcase carries ``<properties>``: one
``requirement`` property per requirement ID it names, one ``outcome:<requirement ID>`` property per
requirement it has an outcome for (its own, and a blocking rule), valued with that requirement's own
outcome (PASS, FAIL, WARN, AMBIGUOUS, NOT_APPLICABLE, HARNESS_ERROR, NOT_REACHED), plus ``verdict``
(the worst of them), ``role``, ``transcript`` and ``ambiguity`` when present. The text of a failure,
error or warning lists every requirement's outcome with its message or evidence.

Verdict mapping:

==============  =================================================================================
FAIL            ``<failure type="FAIL">``
HARNESS_ERROR   ``<error type="HARNESS_ERROR">`` (the suite broke, not the SUT)
NOT_APPLICABLE  ``<skipped message="reason">``
WARN            passed, with the message in ``<system-out>`` prefixed ``WARN:``; with
                ``warn_as_failure=True`` a ``<failure type="WARN">`` instead (for pipelines that want
                SHOULD misses to show red)
AMBIGUOUS       passed, with ``AMBIGUOUS <AMB-IDs>:`` and the message in ``<system-out>``
PASS            passed
==============  =================================================================================

Baseline marks (when results.json carries its gate): a failure the vendor baseline expects is
written as ``<skipped message="expected failure (baseline): REASON">`` with the property
``mimi_baseline=expected-failure`` (the check's own verdict stays in ``verdict``, its detail in
``<system-out>``). Skipped, not failed, so that a CI test reporter shows the run as the gate judged
it: a red test tab under a green pipeline is the confusion the baseline exists to avoid, while
skipped tests stay listed and countable. A stale entry (the check no longer fails) is the opposite:
the gate fails on it, so it becomes ``<failure type="STALE_BASELINE">`` with
``mimi_baseline=stale``; a declared-intermittent pass gets ``mimi_baseline=intermittent-pass``.

Characters XML 1.0 cannot carry (most C0 controls, which a decoded wire message may contain) are
replaced by U+FFFD.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from .model import CheckRecord, GateItemRecord, RequirementJudgement, RunResults, Verdict

# reports.baseline.Outcome values -> the mimi_baseline property
_BASELINE_MARKS = {"EXPECTED_FAILURE": "expected-failure", "STALE": "stale", "INTERMITTENT_PASS": "intermittent-pass"}
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _XML_ILLEGAL.sub("\ufffd", text)


def split_check_id(check_id: str) -> tuple[str, str]:
    """``a/b/test_x.py::Class::test_y[p]`` -> (``a.b.test_x.Class``, ``test_y[p]``), as pytest's junitxml."""
    parts = check_id.split("::")
    if len(parts) == 1:
        return "", check_id
    module = parts[0].removesuffix(".py").replace("/", ".").replace("\\", ".")
    return ".".join([module, *parts[1:-1]]), parts[-1]


def outcome_line(outcome: RequirementJudgement) -> str:
    """``REQ: OUTCOME: message`` (or the evidence of a PASS)."""
    detail = outcome.message or "; ".join(outcome.evidence)
    if outcome.ambiguity:
        detail = f"{outcome.ambiguity} {detail}".strip()
    return f"{outcome.requirement}: {outcome.outcome}" + (f": {detail}" if detail else "")


def _testcase(check: CheckRecord, warn_as_failure: bool, gate_item: GateItemRecord | None = None) -> ET.Element:
    classname, name = split_check_id(check.check_id)
    case = ET.Element("testcase", classname=_clean(classname), name=_clean(name), time=f"{check.duration_s:.3f}")
    properties = ET.SubElement(case, "properties")
    for req_id in check.requirement_ids:
        ET.SubElement(properties, "property", name="requirement", value=req_id)
    for outcome in check.scored_outcomes():
        ET.SubElement(properties, "property", name=f"outcome:{outcome.requirement}", value=str(outcome.outcome))
    ET.SubElement(properties, "property", name="verdict", value=str(check.verdict))
    ET.SubElement(properties, "property", name="role", value=check.role)
    for amb in check.ambiguity_ids:
        ET.SubElement(properties, "property", name="ambiguity", value=amb)
    if check.transcript_ref:
        ET.SubElement(properties, "property", name="transcript", value=_clean(check.transcript_ref))
    message = _clean(check.message)
    outcomes = "\n".join(f"  {outcome_line(outcome)}" for outcome in check.scored_outcomes())
    detail = _clean(f"{check.message}\nrequirements: {', '.join(check.requirement_ids)}\noutcomes:\n{outcomes}")
    mark = _BASELINE_MARKS.get(gate_item.outcome) if gate_item is not None else None
    if mark is not None:
        ET.SubElement(properties, "property", name="mimi_baseline", value=mark)
    if mark == "expected-failure":
        reason = _clean(gate_item.detail) if gate_item is not None else ""
        ET.SubElement(case, "skipped", message=f"expected failure (baseline): {reason}".rstrip(": "))
        ET.SubElement(case, "system-out").text = f"{check.verdict}: {detail}"
        return case
    if mark == "stale":
        reason = _clean(gate_item.detail) if gate_item is not None else ""
        ET.SubElement(case, "failure", type="STALE_BASELINE",
                      message=f"stale baseline entry: the check no longer fails ({check.verdict}); remove it",
                      ).text = f"baseline reason: {reason}"  # fmt: skip
        return case
    if check.verdict is Verdict.FAIL:
        ET.SubElement(case, "failure", message=message, type="FAIL").text = detail
    elif check.verdict is Verdict.HARNESS_ERROR:
        ET.SubElement(case, "error", message=message, type="HARNESS_ERROR").text = detail
    elif check.verdict is Verdict.NOT_APPLICABLE:
        ET.SubElement(case, "skipped", message=message or "not applicable")
    elif check.verdict is Verdict.WARN:
        if warn_as_failure:
            ET.SubElement(case, "failure", message=message, type="WARN").text = detail
        else:
            ET.SubElement(case, "system-out").text = f"WARN: {message}\n{_clean(outcomes)}"
    elif check.verdict is Verdict.AMBIGUOUS:
        ET.SubElement(case, "system-out").text = (
            f"AMBIGUOUS {' '.join(check.ambiguity_ids)}: {message}\n{_clean(outcomes)}"
        )
    return case


def _marks(results: RunResults) -> dict[str, str]:
    """Check ID -> its baseline mark (see the module docstring); empty for a run without a gate."""
    if results.gate is None:
        return {}
    return {item.check_id: _BASELINE_MARKS[item.outcome] for item in results.gate.items if item.outcome in _BASELINE_MARKS}


def _counts(checks: Sequence[CheckRecord], warn_as_failure: bool, marks: dict[str, str]) -> dict[str, str]:
    def mark(check: CheckRecord) -> str | None:
        return marks.get(check.check_id)

    def failed(c: CheckRecord) -> bool:
        if mark(c) == "expected-failure":
            return False
        return mark(c) == "stale" or c.verdict is Verdict.FAIL or (warn_as_failure and c.verdict is Verdict.WARN)

    failures = sum(1 for c in checks if failed(c))
    errors = sum(1 for c in checks if c.verdict is Verdict.HARNESS_ERROR and mark(c) != "expected-failure")
    skipped = sum(1 for c in checks if c.verdict is Verdict.NOT_APPLICABLE or mark(c) == "expected-failure")
    return {
        "tests": str(len(checks)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
        "time": f"{sum(c.duration_s for c in checks):.3f}",
    }


def render_junit(results: RunResults, *, warn_as_failure: bool = False) -> str:
    """The JUnit XML document (UTF-8, with declaration) for a run."""
    marks = _marks(results)
    items = {item.check_id: item for item in results.gate.items} if results.gate is not None else {}
    root = ET.Element("testsuites", name="mimi-conformance", **_counts(results.checks, warn_as_failure, marks))
    by_area: dict[str, list[CheckRecord]] = {}
    for check in results.checks:
        by_area.setdefault(check.area or "unknown", []).append(check)
    for area in sorted(by_area):
        checks = by_area[area]
        suite = ET.SubElement(root, "testsuite", name=area, timestamp=results.started_at,
                              **_counts(checks, warn_as_failure, marks))  # fmt: skip
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="suite_version", value=results.suite_version)
        ET.SubElement(properties, "property", name="seed", value=str(results.seed))
        ET.SubElement(properties, "property", name="sut_manifest_sha256", value=results.sut_manifest_sha256)
        for draft in results.draft_revisions:
            ET.SubElement(properties, "property", name="draft", value=draft)
        if results.gate is not None and results.gate.baseline_file:
            ET.SubElement(properties, "property", name="mimi_baseline_file", value=_clean(results.gate.baseline_file))
        for check in checks:
            suite.append(_testcase(check, warn_as_failure, items.get(check.check_id)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
