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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .model import ProfileVerdict, RunResults, Verdict
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


def exit_code(report: GateReport) -> int:
    """0 when the run passes the gate, 1 otherwise. Never a count."""
    return 0 if report.passed else 1


def format_gate_report(report: GateReport) -> str:
    """Plain-text lines for the terminal: what fails the run first."""
    lines = []
    labels = {
        Outcome.UNEXPECTED_FAILURE: "unexpected failure",
        Outcome.STALE: "stale baseline entry (check no longer fails; remove it)",
        Outcome.EXPECTED_FAILURE: "expected failure (baseline)",
        Outcome.INTERMITTENT_PASS: "declared intermittent, passed this time",
        Outcome.NOT_RUN: "baseline entry for a check that did not run",
    }
    for outcome in Outcome:
        for item in report.of(outcome):
            verdict = item.verdict or "not run"
            lines.append(f"{labels[outcome]}: {item.check_id} [{verdict}] {item.detail}".rstrip())
    for name, verdict in report.profile_verdicts.items():
        lines.append(f"profile {name}: {verdict}" + ("" if verdict.passes else " (fails the run)"))
    lines.append("gate: PASSED" if report.passed else "gate: FAILED")
    return "\n".join(lines)
