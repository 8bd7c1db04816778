"""Vendor baselines of expected failures, and CI gating.

A baseline is YAML owned by the vendor (kept in their repository, no suite change needed)::

    version: 1
    expected_failures:
      - check: "conformance/scenarios/test_keymaterial.py::test_no_reuse[hub]"
        reason: "KeyPackage reuse fixed in 2.4 (ticket EX-123)"
      - check: "conformance/scenarios/test_fanout.py::test_retry"
        reason: "times out under load on the CI runner"
        intermittent: true

Every entry needs a non-empty reason; a check may be listed once; unknown keys are errors
(:class:`BaselineError`, a usage error: exit 2).

Gating (:func:`gate`), per check:

- FAIL or HARNESS_ERROR, not listed: **unexpected failure**, fails the run.
- FAIL or HARNESS_ERROR, listed: **expected failure**, does not fail the run.
- listed, and now PASS, WARN or AMBIGUOUS (no longer failing): **stale**, fails the run so the entry
  gets removed; unless the entry is ``intermittent: true``, in which case both outcomes are allowed
  and the pass is only reported.
- listed but NOT_APPLICABLE or not run at all: reported (the entry may be dead), does not fail.

Then per selected profile: the profile is re-scored with the expected failures waived (counted as
PASS); the run fails unless every profile is then CONFORMANT or CONFORMANT_WITH_WARNINGS. So an
INCOMPLETE profile (a requirement no check judged) fails the run, and so does a MUST failure not in
the baseline. The exit code is 0 or 1, never a count.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from .model import (
    BaselineEntryRecord,
    GateItemRecord,
    GateRecord,
    ProfileVerdict,
    RunOptionsRecord,
    RunResults,
    Verdict,
)
from .scoring import rescore

_ENTRY_KEYS = {"check", "reason", "intermittent"}


class BaselineError(ValueError):
    """The baseline file is invalid; the message names the entry."""


@dataclass(frozen=True)
class BaselineEntry:
    check: str
    reason: str
    intermittent: bool = False


@dataclass(frozen=True)
class Baseline:
    entries: Mapping[str, BaselineEntry]  # by check ID

    def __contains__(self, check_id: object) -> bool:
        return check_id in self.entries


EMPTY_BASELINE = Baseline(entries={})


def parse_baseline(data: Any, origin: str = "baseline") -> Baseline:
    if not isinstance(data, dict) or set(data) - {"version", "expected_failures"}:
        raise BaselineError(f"{origin}: expected a mapping with 'version: 1' and 'expected_failures'")
    if data.get("version") != 1:
        raise BaselineError(f"{origin}: 'version' must be 1")
    items = data.get("expected_failures") or []
    if not isinstance(items, list):
        raise BaselineError(f"{origin}: 'expected_failures' must be a list")
    entries: dict[str, BaselineEntry] = {}
    for index, item in enumerate(items):
        where = f"{origin}: expected_failures[{index}]"
        if not isinstance(item, dict):
            raise BaselineError(f"{where}: expected a mapping with check and reason")
        unknown = set(item) - _ENTRY_KEYS
        if unknown:
            raise BaselineError(f"{where}: unknown keys {sorted(unknown)} (allowed: check, reason, intermittent)")
        check, reason, intermittent = item.get("check"), item.get("reason"), item.get("intermittent", False)
        if not isinstance(check, str) or not check.strip():
            raise BaselineError(f"{where}: 'check' must be a check ID")
        if not isinstance(reason, str) or not reason.strip():
            raise BaselineError(f"{where} ({check}): every expected failure needs a reason")
        if not isinstance(intermittent, bool):
            raise BaselineError(f"{where} ({check}): 'intermittent' must be true or false")
        if check in entries:
            raise BaselineError(f"{where}: {check} is listed twice")
        entries[check] = BaselineEntry(check=check, reason=reason.strip(), intermittent=intermittent)
    return Baseline(entries=entries)


def load_baseline(path: Path) -> Baseline:
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read the baseline: {exc}") from exc
    return parse_baseline(data, str(path))


class Outcome(enum.StrEnum):
    UNEXPECTED_FAILURE = "UNEXPECTED_FAILURE"  # fails the run
    EXPECTED_FAILURE = "EXPECTED_FAILURE"
    STALE = "STALE"  # fails the run
    INTERMITTENT_PASS = "INTERMITTENT_PASS"
    NOT_RUN = "NOT_RUN"  # listed, but the check did not run or did not apply

    @property
    def fails_run(self) -> bool:
        return self in (Outcome.UNEXPECTED_FAILURE, Outcome.STALE)


@dataclass(frozen=True)
class GateItem:
    check_id: str
    outcome: Outcome
    verdict: Verdict | None  # None: not in the run
    detail: str  # the check's message, or the baseline reason


@dataclass(frozen=True)
class GateReport:
    items: tuple[GateItem, ...]
    profile_verdicts: Mapping[str, ProfileVerdict]  # as scored, expected failures waived

    @property
    def failing_profiles(self) -> list[str]:
        return [name for name, verdict in self.profile_verdicts.items() if not verdict.passes]

    def of(self, outcome: Outcome) -> list[GateItem]:
        return [item for item in self.items if item.outcome is outcome]

    @property
    def passed(self) -> bool:
        return not self.failing_profiles and not any(item.outcome.fails_run for item in self.items)


def gate(results: RunResults, baseline: Baseline = EMPTY_BASELINE) -> GateReport:
    items: list[GateItem] = []
    seen: set[str] = set()
    waived = []
    for check in results.checks:
        seen.add(check.check_id)
        entry = baseline.entries.get(check.check_id)
        if check.verdict.is_failure:
            if entry is None:
                items.append(GateItem(check.check_id, Outcome.UNEXPECTED_FAILURE, check.verdict, check.message))
                waived.append(check)
            else:
                items.append(GateItem(check.check_id, Outcome.EXPECTED_FAILURE, check.verdict, entry.reason))
                waived.append(check.waived())
            continue
        waived.append(check)
        if entry is None:
            continue
        if check.verdict is Verdict.NOT_APPLICABLE:
            items.append(GateItem(check.check_id, Outcome.NOT_RUN, check.verdict, entry.reason))
        elif entry.intermittent:
            items.append(GateItem(check.check_id, Outcome.INTERMITTENT_PASS, check.verdict, entry.reason))
        else:
            items.append(GateItem(check.check_id, Outcome.STALE, check.verdict, entry.reason))
    for check_id, entry in baseline.entries.items():
        if check_id not in seen:
            items.append(GateItem(check_id, Outcome.NOT_RUN, None, entry.reason))
    verdicts = {profile.name: profile.verdict for profile in rescore(results, waived)}
    return GateReport(items=tuple(items), profile_verdicts=verdicts)


def gate_record(report: GateReport, baseline: Baseline, baseline_file: str | None = None) -> GateRecord:
    """The gate as results.json records it."""
    return GateRecord(
        passed=report.passed,
        baseline_file=baseline_file,
        baseline=tuple(BaselineEntryRecord(e.check, e.reason, e.intermittent) for e in baseline.entries.values()),
        items=tuple(GateItemRecord(i.check_id, str(i.outcome), i.verdict, i.detail) for i in report.items),
        profile_verdicts=dict(report.profile_verdicts),
    )


def record_gate(
    results: RunResults,
    report: GateReport,
    baseline: Baseline,
    *,
    baseline_file: str | None = None,
    selection: Mapping[str, Any] | None = None,
    allow_untested: bool = False,
) -> RunResults:
    """``results`` carrying its gate, baseline and run options, so that results.json (and its signature)
    says which failures the vendor waived and what was selected."""
    return replace(
        results,
        gate=gate_record(report, baseline, baseline_file),
        run_options=RunOptionsRecord(selection=dict(selection or {}), allow_untested=allow_untested),
    )


PLACEHOLDER_REASON = "TODO: why this check is expected to fail (ticket, version that fixes it)"


def baseline_document(results: RunResults) -> dict[str, Any]:
    """A baseline expecting every failing check of ``results`` (FAIL or HARNESS_ERROR, the verdicts
    the gate fails on), each with a placeholder reason for the vendor to replace."""
    failing = [check.check_id for check in results.checks if check.verdict.is_failure]
    return {
        "version": 1,
        "expected_failures": [{"check": check_id, "reason": PLACEHOLDER_REASON} for check_id in dict.fromkeys(failing)],
    }


def render_baseline(results: RunResults, origin: str = "") -> str:
    """The YAML text of :func:`baseline_document`, with a header saying where it came from."""
    header = "# mimi-conformance baseline: expected failures; replace every TODO reason before committing.\n"
    if origin:
        header += f"# Made by 'mimi-conformance baseline init' from {origin} (seed {results.seed}).\n"
    body = yaml.safe_dump(baseline_document(results), sort_keys=False, allow_unicode=True, width=1000)
    return header + body


def exit_code(report: GateReport) -> int:
    """0 when the run passes the gate, 1 otherwise. Never a count."""
    return 0 if report.passed else 1


def format_gate_report(report: GateReport, *, itemise_unexpected: bool = True) -> str:
    """Plain-text lines for the terminal: what fails the run first, then one line on the gate.

    The profiles' verdicts are not repeated here (the caller's profile table shows them, raw and with
    the baseline waived). ``itemise_unexpected=False`` counts the unexpected failures in one line, for a
    caller that lists the failing checks grouped by cause."""
    lines = []
    labels = {
        Outcome.UNEXPECTED_FAILURE: "unexpected failure",
        Outcome.STALE: "stale baseline entry (check no longer fails; remove it)",
        Outcome.EXPECTED_FAILURE: "expected failure (baseline)",
        Outcome.INTERMITTENT_PASS: "declared intermittent, passed this time",
        Outcome.NOT_RUN: "baseline entry for a check that did not run",
    }
    for outcome in Outcome:
        items = report.of(outcome)
        if outcome is Outcome.UNEXPECTED_FAILURE and not itemise_unexpected:
            if items:
                lines.append(f"unexpected failures (not in the baseline): {len(items)}")
            continue
        for item in items:
            verdict = item.verdict or "not run"
            lines.append(f"{labels[outcome]}: {item.check_id} [{verdict}] {item.detail}".rstrip())
    lines.append(gate_line(report))
    return "\n".join(lines)


def gate_line(report: GateReport) -> str:
    """ "baseline gate: passed", or "baseline gate: not passed (...)" with what keeps it closed. The gate
    is one input of the exit code (``--allow-untested`` may still exit 0), so it is not called the result."""
    if report.passed:
        return "baseline gate: passed"
    reasons = []
    unexpected, stale = len(report.of(Outcome.UNEXPECTED_FAILURE)), len(report.of(Outcome.STALE))
    if unexpected:
        reasons.append(f"{unexpected} unexpected failure{'' if unexpected == 1 else 's'}")
    if stale:
        reasons.append(f"{stale} stale entr{'y' if stale == 1 else 'ies'}")
    by_verdict: dict[ProfileVerdict, list[str]] = {}
    for name, verdict in report.profile_verdicts.items():
        if not verdict.passes:
            by_verdict.setdefault(verdict, []).append(name)
    reasons += [f"profiles {verdict}: {', '.join(names)}" for verdict, names in by_verdict.items()]
    return f"baseline gate: not passed ({'; '.join(reasons)})"
