"""Scoring profiles from check verdicts.

For each profile and each requirement it scores:

1. **Which checks count.** Those citing the requirement whose role fits the profile: a check run
   with the SUT as hub counts for a hub profile, as follower for a follower profile; a check of role
   ``any`` counts for every profile, and an ``any`` profile takes checks of every role.
2. **Each check seen at the profile's level.** A FAIL of a requirement the profile scores MUST stays
   FAIL; scored SHOULD or MAY it counts as WARN (the check's own FAIL may come from a stricter level
   in another profile). A WARN stays WARN whatever the level: it is a SHOULD-level observation.
3. **The requirement takes the worst** of its checks, in the order
   FAIL > HARNESS_ERROR > WARN > AMBIGUOUS > PASS, and is UNTESTED without checks. NOT_APPLICABLE
   checks are ignored next to checks that judged it; only when all its checks are NOT_APPLICABLE is
   the requirement NOT_APPLICABLE.

The profile verdict, first match wins:

- **NOT_CONFORMANT**: a requirement is FAIL (a MUST was missed). A known MUST failure is definitive
  even when other requirements could not be judged.
- **INCOMPLETE**: a requirement is UNTESTED or HARNESS_ERROR (one broken check is enough: the
  requirement was not fully judged), or NOT_APPLICABLE while scored MUST or SHOULD (the SUT declared
  absent something the profile requires; "never silently passed"). NOT_APPLICABLE of a requirement
  scored MAY is fine: an optional feature may be absent.
- **CONFORMANT_WITH_WARNINGS**: a requirement is WARN (only SHOULD/MAY misses).
- **CONFORMANT** otherwise.

AMBIGUOUS (the SUT followed a reading the contradictory draft also allows) never makes a profile
NOT_CONFORMANT and does **not** make it INCOMPLETE: the SUT was observed, and only the draft keeps
the verdict from being PASS; holding certification back until the working group fixes its text
would punish vendors for the draft. Ambiguous requirements are counted (``requirements_ambiguous``)
and listed separately in every report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .model import (
    COUNT_KEYS,
    CheckRecord,
    ProfileInfo,
    ProfileResult,
    ProfileVerdict,
    RequirementInfo,
    RequirementOutcome,
    RequirementStatus,
    RunResults,
    Verdict,
)

# Worst first: the requirement takes the first status any of its checks has.
_STATUS_ORDER = (
    RequirementStatus.FAIL,
    RequirementStatus.HARNESS_ERROR,
    RequirementStatus.WARN,
    RequirementStatus.AMBIGUOUS,
    RequirementStatus.PASS,
    RequirementStatus.NOT_APPLICABLE,
)


def role_counts_for(profile_role: str, check_role: str) -> bool:
    """Whether a check run with the SUT in ``check_role`` counts for a profile of ``profile_role``."""
    return profile_role == "any" or check_role == "any" or check_role == profile_role


def check_status_at_level(verdict: Verdict, level: str) -> RequirementStatus:
    """One check's verdict, seen for a requirement the profile scores at ``level``."""
    if verdict is Verdict.FAIL:
        return RequirementStatus.FAIL if level == "MUST" else RequirementStatus.WARN
    return RequirementStatus(str(verdict))


def requirement_status(verdicts: Iterable[Verdict], level: str) -> RequirementStatus:
    """The worst of the checks' verdicts at ``level``; UNTESTED when there is none."""
    statuses = {check_status_at_level(verdict, level) for verdict in verdicts}
    if not statuses:
        return RequirementStatus.UNTESTED
    if statuses != {RequirementStatus.NOT_APPLICABLE}:
        # A check that did judge the requirement outweighs one that could not apply.
        statuses.discard(RequirementStatus.NOT_APPLICABLE)
    return next(status for status in _STATUS_ORDER if status in statuses)


def _leaves_incomplete(status: RequirementStatus, level: str) -> bool:
    if status in (RequirementStatus.UNTESTED, RequirementStatus.HARNESS_ERROR):
        return True
    return status is RequirementStatus.NOT_APPLICABLE and level != "MAY"


def profile_verdict(outcomes: Iterable[RequirementOutcome]) -> ProfileVerdict:
    outcomes = list(outcomes)
    if any(outcome.status is RequirementStatus.FAIL for outcome in outcomes):
        return ProfileVerdict.NOT_CONFORMANT
    if any(_leaves_incomplete(outcome.status, outcome.level) for outcome in outcomes):
        return ProfileVerdict.INCOMPLETE
    if any(outcome.status is RequirementStatus.WARN for outcome in outcomes):
        return ProfileVerdict.CONFORMANT_WITH_WARNINGS
    return ProfileVerdict.CONFORMANT


def score_profile(profile: ProfileInfo, checks: Sequence[CheckRecord]) -> ProfileResult:
    """Score one profile from all the checks of a run."""
    relevant = [check for check in checks if role_counts_for(profile.role, check.role)]
    by_requirement: dict[str, list[CheckRecord]] = {}
    for check in relevant:
        for req_id in check.scored_requirement_ids:
            by_requirement.setdefault(req_id, []).append(check)
    outcomes = []
    for req_id, level in profile.requirements.items():
        judged_by = by_requirement.get(req_id, [])
        outcomes.append(
            RequirementOutcome(
                id=req_id,
                level=level,
                status=requirement_status((check.verdict for check in judged_by), level),
                check_ids=tuple(dict.fromkeys(check.check_id for check in judged_by)),
            )
        )
    scored_checks = [check for check in relevant if any(req in profile.requirements for req in check.scored_requirement_ids)]
    counts = dict.fromkeys(COUNT_KEYS, 0)
    counts["requirements"] = len(outcomes)
    for outcome in outcomes:
        counts[f"requirements_{outcome.status.lower()}"] += 1
    counts["checks"] = len(scored_checks)
    for check in scored_checks:
        counts[f"checks_{check.verdict.lower()}"] += 1
    return ProfileResult(
        name=profile.name,
        title=profile.title,
        role=profile.role,
        drafts=tuple(profile.drafts),
        verdict=profile_verdict(outcomes),
        counts=counts,
        requirements=tuple(outcomes),
    )


def score_run(
    *,
    suite_version: str,
    draft_revisions: Sequence[str],
    sut_manifest: Mapping[str, Any],
    seed: int,
    started_at: str,
    ended_at: str,
    checks: Sequence[CheckRecord],
    profiles: Sequence[ProfileInfo],
    requirements: Iterable[RequirementInfo],
) -> RunResults:
    """Build the results of a run: score every selected profile and keep the requirements involved.

    ``requirements`` may be the whole catalogue; only those a profile scores or a check cites are kept.
    """
    involved = {req_id for profile in profiles for req_id in profile.requirements}
    involved |= {req_id for check in checks for req_id in (*check.requirement_ids, *check.blocked_by)}
    kept = tuple(sorted((req for req in requirements if req.id in involved), key=lambda req: req.id))
    return RunResults(
        suite_version=suite_version,
        draft_revisions=tuple(draft_revisions),
        sut_manifest=dict(sut_manifest),
        seed=seed,
        started_at=started_at,
        ended_at=ended_at,
        checks=tuple(checks),
        profiles=tuple(score_profile(profile, checks) for profile in profiles),
        requirements=kept,
    )


def rescore(results: RunResults, checks: Sequence[CheckRecord] | None = None) -> tuple[ProfileResult, ...]:
    """Score the profiles recorded in ``results`` again, from its checks or from ``checks`` instead.

    ``verify`` uses it to refuse a file whose profile verdicts do not follow from its checks; baseline
    gating uses it with expected failures waived.
    """
    use = results.checks if checks is None else checks
    return tuple(score_profile(profile.info, use) for profile in results.profiles)
