"""What changed between two runs, and between two catalogue revisions.

``mimi-conformance diff OLD.json NEW.json`` (:func:`diff_results_files`): changes grouped by
requirement: for each requirement, the checks whose outcome *for that requirement* changed, appeared
or disappeared (a check whose verdict is unchanged may still have moved one of its requirements;
a check that now fails one requirement is not reported against the others it still passes), and
how each profile's status for it moved; then the profile verdicts that moved. Either file may be
schema 1.x: its checks are read as 1.x scored them (every requirement with the check's verdict).

``mimi-conformance requirements --diff A B`` (:func:`diff_catalogues`): requirements added,
removed, and changed (text, level, negation, section, area, role) between two catalogue revisions,
matched by their stable IDs. The source document id is not compared: that it differs is the point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .model import ProfileVerdict, RequirementInfo, RequirementStatus, RequirementVerdict, RunResults
from .schema import ResultsSchemaError

# Higher is better; used only to call a change a regression or an improvement.
_VERDICT_RANK = {
    RequirementVerdict.FAIL: 0,
    RequirementVerdict.HARNESS_ERROR: 1,
    RequirementVerdict.NOT_REACHED: 1,
    RequirementVerdict.WARN: 2,
    RequirementVerdict.AMBIGUOUS: 3,
    RequirementVerdict.NOT_APPLICABLE: 3,
    RequirementVerdict.PASS: 4,
}
_PROFILE_RANK = {
    ProfileVerdict.NOT_CONFORMANT: 0,
    ProfileVerdict.INCOMPLETE: 1,
    ProfileVerdict.CONFORMANT_WITH_WARNINGS: 2,
    ProfileVerdict.CONFORMANT: 3,
}


@dataclass(frozen=True)
class CheckChange:
    """How one check's outcome for one requirement moved."""

    check_id: str
    old: RequirementVerdict | None  # None: the check is new (or had no outcome for the requirement)
    new: RequirementVerdict | None  # None: the check is gone (or has no outcome for it any more)

    @property
    def regression(self) -> bool:
        if self.old is None or self.new is None:
            return False
        return _VERDICT_RANK[self.new] < _VERDICT_RANK[self.old]


@dataclass(frozen=True)
class StatusChange:
    profile: str
    old: RequirementStatus | None  # None: the profile did not score it before
    new: RequirementStatus | None


@dataclass(frozen=True)
class RequirementChanges:
    requirement_id: str
    checks: tuple[CheckChange, ...]
    statuses: tuple[StatusChange, ...]


@dataclass(frozen=True)
class ProfileChange:
    profile: str
    old: ProfileVerdict | None
    new: ProfileVerdict | None

    @property
    def regression(self) -> bool:
        if self.old is None or self.new is None:
            return False
        return _PROFILE_RANK[self.new] < _PROFILE_RANK[self.old]


@dataclass(frozen=True)
class ResultsDiff:
    requirements: tuple[RequirementChanges, ...]
    profiles: tuple[ProfileChange, ...]

    @property
    def empty(self) -> bool:
        return not self.requirements and not self.profiles

    @property
    def regressions(self) -> bool:
        return any(change.regression for change in self.profiles) or any(
            change.regression for req in self.requirements for change in req.checks
        )


def diff_results(old: RunResults, new: RunResults) -> ResultsDiff:
    old_checks = {check.check_id: check for check in old.checks}
    new_checks = {check.check_id: check for check in new.checks}
    per_requirement: dict[str, list[CheckChange]] = {}
    for check_id in sorted(old_checks.keys() | new_checks.keys()):
        before, after = old_checks.get(check_id), new_checks.get(check_id)
        old_outcomes = {o.requirement: o.outcome for o in before.scored_outcomes()} if before else {}
        new_outcomes = {o.requirement: o.outcome for o in after.scored_outcomes()} if after else {}
        for req_id in sorted(old_outcomes.keys() | new_outcomes.keys()):
            old_outcome, new_outcome = old_outcomes.get(req_id), new_outcomes.get(req_id)
            if old_outcome != new_outcome:
                per_requirement.setdefault(req_id, []).append(CheckChange(check_id, old_outcome, new_outcome))

    def statuses(results: RunResults) -> dict[tuple[str, str], RequirementStatus]:
        return {(p.name, o.id): o.status for p in results.profiles for o in p.requirements}

    old_status, new_status = statuses(old), statuses(new)
    status_changes: dict[str, list[StatusChange]] = {}
    for profile, req_id in sorted(old_status.keys() | new_status.keys()):
        before, after = old_status.get((profile, req_id)), new_status.get((profile, req_id))
        if before != after:
            status_changes.setdefault(req_id, []).append(StatusChange(profile, before, after))

    requirement_changes = tuple(
        RequirementChanges(req_id, tuple(per_requirement.get(req_id, ())), tuple(status_changes.get(req_id, ())))
        for req_id in sorted(per_requirement.keys() | status_changes.keys())
    )
    old_profiles = {p.name: p.verdict for p in old.profiles}
    new_profiles = {p.name: p.verdict for p in new.profiles}
    profile_changes = tuple(
        ProfileChange(name, old_profiles.get(name), new_profiles.get(name))
        for name in sorted(old_profiles.keys() | new_profiles.keys())
        if old_profiles.get(name) != new_profiles.get(name)
    )
    return ResultsDiff(requirements=requirement_changes, profiles=profile_changes)


def _arrow(old: object, new: object) -> str:
    return f"{old if old is not None else '(absent)'} -> {new if new is not None else '(absent)'}"


def format_results_diff(diff: ResultsDiff) -> str:
    if diff.empty:
        return "no verdict changed"
    lines = []
    for change in diff.profiles:
        mark = "  (regression)" if change.regression else ""
        lines.append(f"profile {change.profile}: {_arrow(change.old, change.new)}{mark}")
    for req in diff.requirements:
        lines.append(f"{req.requirement_id}")
        for status in req.statuses:
            lines.append(f"  in {status.profile}: {_arrow(status.old, status.new)}")
        for check in req.checks:
            mark = "  (regression)" if check.regression else ""
            lines.append(f"  {check.check_id}: {_arrow(check.old, check.new)}{mark}")
    return "\n".join(lines)


def comparability_warning(old: RunResults, new: RunResults) -> str | None:
    """One line when the two runs are not like for like (another SUT manifest, another suite
    version): their verdicts may differ for that reason rather than through the SUT. None otherwise."""
    differences = []
    if old.sut_manifest_sha256 != new.sut_manifest_sha256:
        differences.append(
            f"different SUT manifests (sha256 {old.sut_manifest_sha256[:12]}... vs {new.sut_manifest_sha256[:12]}...)"
        )
    if old.suite_version != new.suite_version:
        differences.append(f"different suite versions ({old.suite_version} vs {new.suite_version})")
    if not differences:
        return None
    return "warning: the runs tested " + " and ".join(differences) + "; changes may not come from the SUT alone"


def diff_results_files(
    old_path: Path, new_path: Path, *, fail_on_regression: bool = False, warn: Callable[[str], None] | None = None
) -> tuple[int, str]:
    """For ``mimi-conformance diff OLD NEW``: (exit code, text). Exit 0 when compared (1 with
    ``fail_on_regression`` and a verdict got worse), 2 when a file cannot be read or is not results.
    ``warn`` receives :func:`comparability_warning`'s line, if any; it does not change the exit code."""
    loaded = []
    for path in (old_path, new_path):
        try:
            loaded.append(RunResults.from_json(Path(path).read_bytes()))
        except (OSError, ResultsSchemaError) as exc:
            return 2, f"{path}: {exc}"
    warning = comparability_warning(*loaded)
    if warning is not None and warn is not None:
        warn(warning)
    diff = diff_results(*loaded)
    return (1 if fail_on_regression and diff.regressions else 0), format_results_diff(diff)


# --------------------------------------------------------------------------------------------
# Catalogue revisions

_COMPARED_FIELDS = ("text", "level", "negative", "section", "area", "role")


@dataclass(frozen=True)
class RequirementChange:
    id: str
    fields: tuple[tuple[str, object, object], ...]  # (field, old, new)


@dataclass(frozen=True)
class CatalogueDiff:
    added: tuple[RequirementInfo, ...]
    removed: tuple[RequirementInfo, ...]
    changed: tuple[RequirementChange, ...]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _normalised(field_name: str, value: object) -> object:
    # Catalogue sentences are folded YAML; line breaks are not a change of text.
    return " ".join(value.split()) if field_name == "text" and isinstance(value, str) else value


def diff_catalogues(old: Iterable[RequirementInfo], new: Iterable[RequirementInfo]) -> CatalogueDiff:
    before = {req.id: req for req in old}
    after = {req.id: req for req in new}
    changed = []
    for req_id in sorted(before.keys() & after.keys()):
        fields = tuple(
            (name, getattr(before[req_id], name), getattr(after[req_id], name))
            for name in _COMPARED_FIELDS
            if _normalised(name, getattr(before[req_id], name)) != _normalised(name, getattr(after[req_id], name))
        )
        if fields:
            changed.append(RequirementChange(req_id, fields))
    return CatalogueDiff(
        added=tuple(after[req_id] for req_id in sorted(after.keys() - before.keys())),
        removed=tuple(before[req_id] for req_id in sorted(before.keys() - after.keys())),
        changed=tuple(changed),
    )


def format_catalogue_diff(diff: CatalogueDiff, old_label: str = "A", new_label: str = "B") -> str:
    if diff.empty:
        return f"no requirement changed between {old_label} and {new_label}"
    lines = [f"requirements {old_label} -> {new_label}: {len(diff.added)} added, {len(diff.removed)} removed, "
             f"{len(diff.changed)} changed"]  # fmt: skip
    for req in diff.added:
        lines.append(f"+ {req.id} [{req.keyword}] §{req.section}: {req.text}")
    for req in diff.removed:
        lines.append(f"- {req.id} [{req.keyword}] §{req.section}: {req.text}")
    for change in diff.changed:
        lines.append(f"~ {change.id}")
        for name, old_value, new_value in change.fields:
            lines.append(f"    {name}: {old_value!r} -> {new_value!r}")
    return "\n".join(lines)


def requirement_infos(items: Sequence[object]) -> list[RequirementInfo]:
    """Adapt catalogue objects with the RequirementInfo attributes (e.g. conformance's Requirement)."""
    return [
        RequirementInfo(
            id=item.id,  # type: ignore[attr-defined]
            source=item.source,  # type: ignore[attr-defined]
            section=item.section,  # type: ignore[attr-defined]
            text=item.text,  # type: ignore[attr-defined]
            level=item.level,  # type: ignore[attr-defined]
            negative=bool(getattr(item, "negative", False)),
            area=getattr(item, "area", ""),
            role=getattr(item, "role", "any"),
            derived_from=getattr(item, "derived_from", None) or None,
        )
        for item in items
    ]
