"""Scoring profiles from per-requirement outcomes.

A check names requirements and reports an outcome for each (schema 2.0.0 ``outcomes``: PASS, FAIL,
WARN, AMBIGUOUS, NOT_APPLICABLE, HARNESS_ERROR, NOT_REACHED; see ``conformance.verdicts``). Scoring
reads only these, **never the check's overall verdict**: one bad ``From`` is charged to the
requirement it breaks, not to the four others the check names; a SHOULD miss in a check leaves the
check's MUST requirements at the outcome they had. (A check read from a 1.x file has no outcomes;
each requirement it was scored against gets the check's verdict, exactly as 1.x scored it.)

For each profile and each requirement it scores:

1. **Which outcomes count.** Those of checks whose role fits the profile: a check run with the SUT
   as hub counts for a hub profile, as follower for a follower profile; a check of role ``any``
   counts for every profile, and an ``any`` profile takes checks of every role. A check blocked by
   another rule (``blocked_by``) reports that rule FAIL among its outcomes.
2. **Each outcome seen at the profile's level.** A FAIL of a requirement the profile scores MUST
   stays FAIL; scored SHOULD or MAY it counts as WARN (the run may have scored it at a stricter
   level for another profile). A WARN stays WARN whatever the level: it is a SHOULD-level observation.
3. **The requirement takes the worst** of its outcomes, in the order
   FAIL > HARNESS_ERROR > WARN > AMBIGUOUS > PASS, and is UNTESTED without any. NOT_APPLICABLE and
   NOT_REACHED outcomes are ignored next to outcomes that judged it. Only when none judged it: it is
   NOT_REACHED when some check stopped before reaching it (a miss of another requirement, a block),
   and NOT_APPLICABLE when every check declared it not applicable.

The profile verdict, first match wins:

- **NOT_CONFORMANT**: a requirement is FAIL (a MUST was missed). A known MUST failure is definitive
  even when other requirements could not be judged.
- **INCOMPLETE**: a requirement is UNTESTED, HARNESS_ERROR (one broken check is enough: the
  requirement was not fully judged) or NOT_REACHED (whatever its level: its only checks stopped
  before judging it, so it was not judged), or NOT_APPLICABLE while scored MUST or SHOULD (the SUT
  declared absent something the profile requires; "never silently passed"). NOT_APPLICABLE of a
  requirement scored MAY is fine: an optional feature may be absent.
- **CONFORMANT_WITH_WARNINGS**: a requirement is WARN (only SHOULD/MAY misses).
- **CONFORMANT** otherwise.

AMBIGUOUS (the SUT followed a reading the contradictory draft also allows) never makes a profile
NOT_CONFORMANT and does **not** make it INCOMPLETE: the SUT was observed, and only the draft keeps
the verdict from being PASS; holding certification back until the working group fixes its text
would punish vendors for the draft. Ambiguous requirements are counted (``requirements_ambiguous``)
and listed separately in every report.

Check counts (``checks_*``) still count each check once by its overall verdict: they describe the
checks, not the requirements.
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
    RequirementJudgement,
    RequirementOutcome,
    RequirementStatus,
    RequirementVerdict,
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
    RequirementStatus.NOT_REACHED,
    RequirementStatus.NOT_APPLICABLE,
)
# Outcomes that did not judge the requirement: ignored next to outcomes that did.
_UNJUDGED = {RequirementStatus.NOT_APPLICABLE, RequirementStatus.NOT_REACHED}


def role_counts_for(profile_role: str, check_role: str) -> bool:
    """Whether a check run with the SUT in ``check_role`` counts for a profile of ``profile_role``."""
    return profile_role == "any" or check_role == "any" or check_role == profile_role


def check_status_at_level(outcome: Verdict | RequirementVerdict, level: str) -> RequirementStatus:
    """One requirement's outcome in one check (or, for 1.x callers, a check's verdict), seen for a
    requirement the profile scores at ``level``."""
    if outcome == "FAIL":
        return RequirementStatus.FAIL if level == "MUST" else RequirementStatus.WARN
    return RequirementStatus(str(outcome))


def requirement_status(outcomes: Iterable[Verdict | RequirementVerdict], level: str) -> RequirementStatus:
    """The worst of the requirement's outcomes at ``level``; UNTESTED when there is none."""
    statuses = {check_status_at_level(outcome, level) for outcome in outcomes}
    if not statuses:
        return RequirementStatus.UNTESTED
    if not statuses <= _UNJUDGED:
        # An outcome that did judge the requirement outweighs those that could not apply or were not reached.
        statuses -= _UNJUDGED
    return next(status for status in _STATUS_ORDER if status in statuses)


def _leaves_incomplete(status: RequirementStatus, level: str) -> bool:
    if status in (RequirementStatus.UNTESTED, RequirementStatus.HARNESS_ERROR, RequirementStatus.NOT_REACHED):
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
    by_requirement: dict[str, list[tuple[CheckRecord, RequirementJudgement]]] = {}
    for check in relevant:
        for judgement in check.scored_outcomes():
            by_requirement.setdefault(judgement.requirement, []).append((check, judgement))
    outcomes = []
    for req_id, level in profile.requirements.items():
        judged_by = by_requirement.get(req_id, [])
        outcomes.append(
            RequirementOutcome(
                id=req_id,
                level=level,
                status=requirement_status((judgement.outcome for _, judgement in judged_by), level),
                check_ids=tuple(dict.fromkeys(check.check_id for check, _ in judged_by)),
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
    involved |= {req_id for check in checks for req_id in (*check.requirement_ids, *check.scored_requirement_ids)}
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
