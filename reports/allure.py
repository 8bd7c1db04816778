"""Allure labels for a check, so that ``pytest --alluredir`` gives a report organised by the spec.

epic = area, feature = each judged requirement ID, severity from the strictest level at which the
run scores those requirements (MUST -> critical, SHOULD -> normal, MAY -> minor). The mapping is
plain data; :func:`apply_allure_labels` is for the pytest plugin and imports allure only when
called, so allure-pytest stays optional.

Status: allure-pytest derives a test's status from the exception: AssertionError is "failed",
anything else "broken". The suite's checks report a SUT's violation through its own exceptions, so
left alone allure would show every SUT failure as broken (the suite's fault). The plugin therefore
sets the status from the verdict once it is final (:func:`set_allure_status`): FAIL "failed" (the
SUT), HARNESS_ERROR "broken" (the suite), NOT_APPLICABLE "skipped", PASS/WARN/AMBIGUOUS "passed".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .model import CheckRecord, Verdict

STATUS_BY_VERDICT = {
    Verdict.PASS: "passed",
    Verdict.WARN: "passed",
    Verdict.AMBIGUOUS: "passed",
    Verdict.FAIL: "failed",
    Verdict.HARNESS_ERROR: "broken",
    Verdict.NOT_APPLICABLE: "skipped",
}
SEVERITY_BY_LEVEL = {"MUST": "critical", "SHOULD": "normal", "MAY": "minor"}
_LEVEL_ORDER = ("MUST", "SHOULD", "MAY")


@dataclass(frozen=True)
class AllureLabels:
    epic: str
    features: tuple[str, ...]
    severity: str  # an allure severity_level value: blocker | critical | normal | minor | trivial
    tags: tuple[str, ...]


def strictest_level(requirement_ids: tuple[str, ...], levels: Mapping[str, str]) -> str | None:
    known = {levels[req] for req in requirement_ids if req in levels}
    return next((level for level in _LEVEL_ORDER if level in known), None)


def allure_labels(check: CheckRecord, levels: Mapping[str, str]) -> AllureLabels:
    """Labels for ``check``; ``levels`` maps requirement ID -> the level it is scored at in this run
    (a requirement missing from ``levels``, e.g. IMPLIED and unscored, does not raise the severity)."""
    level = strictest_level(check.requirement_ids, levels)
    tags = [f"role:{check.role}", *check.ambiguity_ids]
    return AllureLabels(
        epic=check.area or "unknown",
        features=tuple(check.requirement_ids),
        severity=SEVERITY_BY_LEVEL.get(level or "", "normal"),
        tags=tuple(tags),
    )


def apply_allure_labels(labels: AllureLabels) -> bool:
    """Attach ``labels`` to the running test through ``allure.dynamic``; False when allure is not installed."""
    try:
        import allure
    except ImportError:
        return False
    allure.dynamic.epic(labels.epic)
    for feature in labels.features:
        allure.dynamic.feature(feature)
    allure.dynamic.severity(allure.severity_level(labels.severity))
    allure.dynamic.tag(*labels.tags)
    return True


def set_allure_status(config: object, nodeid: str, verdict: Verdict, message: str) -> bool:
    """Set the allure status of the running test ``nodeid`` from its verdict (see the module docstring).

    allure-pytest has no public call for this: its listener (registered as ``allure_listener``) holds
    the test result until the test's log finishes, so the status is set there. False when allure is
    not active or its internals changed (the status then stays allure's own guess)."""
    listener = config.pluginmanager.getplugin("allure_listener")  # type: ignore[attr-defined]
    if listener is None:
        return False
    try:
        from allure_commons.model2 import Status, StatusDetails

        result = listener.allure_logger.get_test(listener._cache.get(nodeid))
        if result is None:
            return False
        result.status = getattr(Status, STATUS_BY_VERDICT[verdict].upper())
        if verdict is not Verdict.PASS:
            trace = result.statusDetails.trace if result.statusDetails is not None else None
            result.statusDetails = StatusDetails(message=f"{verdict}: {message}".rstrip(": "), trace=trace)
    except (AttributeError, ImportError, KeyError):
        return False
    return True
