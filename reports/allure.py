"""Allure labels for a check, so that ``pytest --alluredir`` gives a report organised by the spec.

epic = area, feature = each judged requirement ID, severity from the strictest level at which the
run scores those requirements (MUST -> critical, SHOULD -> normal, MAY -> minor). The mapping is
plain data; :func:`apply_allure_labels` is for the pytest plugin and imports allure only when
called, so allure-pytest stays optional.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .model import CheckRecord

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
