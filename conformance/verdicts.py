"""Verdicts of checks, and how a check produces each one.

A check (a test function in ``conformance/scenarios/``) judges one or more requirements. It ends in
exactly one verdict (DESIGN.md "Verdicts"):

=================  ==========================================================================
PASS               every judged requirement held
FAIL               a requirement scored MUST was missed (or the SUT misbehaved on the wire)
WARN               a requirement scored SHOULD (or MAY) was missed
NOT_APPLICABLE     a declared optional feature, role or control operation is absent (with reason)
HARNESS_ERROR      the suite itself broke: never blamed on the SUT
AMBIGUOUS          the draft contradicts itself (with the AMB- ID from docs/spec-ambiguities.md)
=================  ==========================================================================

How a check produces them:

* ``assert`` or :func:`fail` -> a requirement missed. The verdict depends on the level at which
  the requirement is scored (:class:`LevelResolver`): MUST -> FAIL, SHOULD/MAY -> WARN. ``fail``
  can name the one judged requirement that was missed; otherwise the strictest judged level counts.
* :func:`warn` -> WARN whatever the level (a SHOULD-only observation inside a MUST check).
* :func:`blocked` -> FAIL scored against another rule the SUT broke that the check needs
  (``blocked_by``); the check's own requirements are not judged.
* :func:`not_applicable` (or ``pytest.skip``) -> NOT_APPLICABLE with the reason.
* :func:`ambiguous` -> AMBIGUOUS with the ambiguity ID.
* :class:`SutMisbehaviour` (raised by the harness: timeout, garbage, reset, a SUT that does not
  start) -> FAIL with the diagnosis, whatever the level: a SUT that cannot be talked to fails.
* A :class:`reference_peer.server.client.PeerError` about a SUT URL -> FAIL with the diagnosis;
  about one of the suite's own peers -> HARNESS_ERROR.
* Anything else -> HARNESS_ERROR.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

AMBIGUITY_ID = re.compile(r"^AMB-[A-Z0-9]+(?:-[A-Z0-9]+)*$")


class Verdict(enum.StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    WARN = "WARN"
    NOT_APPLICABLE = "NOT_APPLICABLE"
    HARNESS_ERROR = "HARNESS_ERROR"
    AMBIGUOUS = "AMBIGUOUS"

    @property
    def fails_run(self) -> bool:
        """Whether this verdict alone makes a run fail (before any vendor baseline is applied)."""
        return self in (Verdict.FAIL, Verdict.HARNESS_ERROR)


# --------------------------------------------------------------------------------------------
# What a check raises


class CheckOutcome(Exception):
    """Base of the exceptions a check (or the harness on its behalf) raises to end with a verdict."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RequirementMissed(CheckOutcome):
    """The SUT missed a judged requirement; scored by level (MUST -> FAIL, SHOULD/MAY -> WARN)."""

    def __init__(self, message: str, requirement: str | None = None) -> None:
        super().__init__(message)
        self.requirement = requirement


class Warned(CheckOutcome):
    """WARN regardless of level."""


class NotApplicable(CheckOutcome):
    """The check cannot apply to this SUT: a feature, role or control operation it declares absent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Ambiguous(CheckOutcome):
    """The SUT followed a reading the draft also allows; ``ambiguity`` is the AMB- ID."""

    def __init__(self, ambiguity: str, message: str) -> None:
        if not AMBIGUITY_ID.match(ambiguity):
            raise ValueError(f"not an ambiguity ID (AMB-...): {ambiguity!r}")
        super().__init__(f"{ambiguity}: {message}")
        self.ambiguity = ambiguity


class SutMisbehaviour(CheckOutcome):
    """The harness caught the SUT misbehaving (timeout, garbage, reset, never healthy): FAIL with a diagnosis."""


class HarnessError(CheckOutcome):
    """The suite itself broke (or a precondition the suite owns failed): HARNESS_ERROR."""


def fail(message: str, *, requirement: str | None = None) -> None:
    """The SUT missed ``requirement`` (default: the strictest requirement the check judges)."""
    raise RequirementMissed(message, requirement)


class Blocked(CheckOutcome):
    """The SUT broke a rule the check does not judge but needs (``requirement``), so the check could
    not judge its own: FAIL scored against that rule (``blocked_by``)."""

    def __init__(self, requirement: str, message: str) -> None:
        super().__init__(message)
        self.requirement = requirement


def blocked(requirement: str, message: str) -> None:
    raise Blocked(requirement, message)


def warn(message: str) -> None:
    raise Warned(message)


def not_applicable(reason: str) -> None:
    raise NotApplicable(reason)


def ambiguous(ambiguity: str, message: str) -> None:
    raise Ambiguous(ambiguity, message)


# --------------------------------------------------------------------------------------------
# Levels


class LevelResolver:
    """The level at which a requirement is scored in this run.

    With a profile selected, the profile's level for the requirements it lists. Otherwise the
    catalogue level; IMPLIED (testable behaviour stated without a keyword) is scored at the strictest
    level any shipped profile gives it, and SHOULD when no profile scores it (no profile makes it
    mandatory, so a miss is reported without failing the run).
    """

    def __init__(
        self,
        catalogue_levels: Mapping[str, str],
        profile_levels: Mapping[str, str] | None = None,
        implied_levels: Mapping[str, str] | None = None,
    ) -> None:
        self._catalogue = dict(catalogue_levels)
        self._profile = dict(profile_levels or {})
        self._implied = dict(implied_levels or {})

    def level(self, requirement: str) -> str:
        if requirement in self._profile:
            return self._profile[requirement]
        level = self._catalogue.get(requirement)
        if level is None:
            raise KeyError(f"requirement {requirement!r} is not in the catalogue")
        if level == "IMPLIED":
            return self._implied.get(requirement, "SHOULD")
        return level

    def strictest(self, requirements: Iterable[str]) -> str:
        levels = [self.level(req) for req in requirements]
        for candidate in ("MUST", "SHOULD", "MAY"):
            if candidate in levels:
                return candidate
        raise ValueError("no requirement to score")


def strictest_profile_levels(profiles: Iterable[Any]) -> dict[str, str]:
    """requirement ID -> the strictest level any of ``profiles`` (objects with ``.requirements``) scores it."""
    order = {"MUST": 0, "SHOULD": 1, "MAY": 2}
    result: dict[str, str] = {}
    for profile in profiles:
        for req, level in profile.requirements.items():
            if req not in result or order[level] < order[result[req]]:
                result[req] = level
    return result


def verdict_for_level(level: str) -> Verdict:
    return Verdict.FAIL if level == "MUST" else Verdict.WARN


# --------------------------------------------------------------------------------------------
# Results


@dataclasses.dataclass
class CheckResult:
    """One check's result, as written (one JSON object per line) for the reports layer."""

    check_id: str  # the pytest node ID, stable across runs
    requirements: tuple[str, ...]
    role: str  # hub | follower | any
    verdict: Verdict
    message: str = ""
    duration: float = 0.0  # seconds, setup + call + teardown
    transcript: str | None = None  # path of the transcript JSON, relative to the run's output dir
    area: str = ""
    ambiguity: str | None = None
    scored_level: str | None = None  # the level that decided FAIL/WARN, when a requirement was missed
    # Transport requirements the SUT broke that kept this check from judging its own (harness.attribution)
    blocked_by: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["requirements"] = tuple(values.get("requirements", ()))
        values["blocked_by"] = tuple(values.get("blocked_by", ()))
        values["verdict"] = Verdict(values["verdict"])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["requirements"] = list(self.requirements)
        data["blocked_by"] = list(self.blocked_by)
        data["verdict"] = str(self.verdict)
        data["duration"] = round(self.duration, 6)
        return data


@dataclasses.dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    message: str
    ambiguity: str | None = None
    scored_level: str | None = None
    blocked_by: tuple[str, ...] = ()


def _host_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return (urlsplit(url).hostname or "").lower() or None
    except ValueError:
        return None


def judge(
    exc: BaseException | None,
    requirements: Sequence[str],
    levels: LevelResolver,
    *,
    sut_hosts: Iterable[str] = (),
) -> Judgement:
    """The verdict for a check that ended with ``exc`` (None: it returned normally)."""
    if exc is None:
        return Judgement(Verdict.PASS, "")
    # Imported here so that this module stays importable without the reference peer's dependencies.
    from reference_peer.server.client import PeerError

    from .harness.control import ControlApiError, NotSupported
    from .harness.polling import PollTimeout

    if isinstance(exc, NotApplicable):
        return Judgement(Verdict.NOT_APPLICABLE, exc.reason)
    if isinstance(exc, NotSupported):
        return Judgement(Verdict.NOT_APPLICABLE, str(exc))
    if isinstance(exc, Ambiguous):
        return Judgement(Verdict.AMBIGUOUS, exc.message, ambiguity=exc.ambiguity)
    if isinstance(exc, Warned):
        return Judgement(Verdict.WARN, exc.message, scored_level="SHOULD")
    if isinstance(exc, Blocked):
        if exc.requirement in requirements:
            return Judgement(Verdict.HARNESS_ERROR, f"check bug: blocked() names {exc.requirement}, which the check judges")
        return Judgement(Verdict.FAIL, f"blocked by {exc.requirement}: {exc.message}. The check's own requirements "
                         "were not judged", scored_level="MUST", blocked_by=(exc.requirement,))
    if isinstance(exc, SutMisbehaviour):
        return Judgement(Verdict.FAIL, f"SUT misbehaviour: {exc.message}")
    if isinstance(exc, HarnessError):
        return Judgement(Verdict.HARNESS_ERROR, exc.message)
    if isinstance(exc, RequirementMissed | AssertionError | PollTimeout):
        named = getattr(exc, "requirement", None)
        if named is not None and named not in requirements:
            return Judgement(
                Verdict.HARNESS_ERROR,
                f"check bug: fail() names {named}, which the check does not declare in its requirements marker",
            )
        try:
            level = levels.level(named) if named else levels.strictest(requirements)
        except (KeyError, ValueError) as err:
            return Judgement(Verdict.HARNESS_ERROR, f"cannot score the miss: {err}")
        message = str(exc) or type(exc).__name__
        return Judgement(verdict_for_level(level), message, scored_level=level)
    if isinstance(exc, PeerError):
        hosts = {h.lower() for h in sut_hosts}
        if _host_of(exc.url) in hosts:
            return Judgement(Verdict.FAIL, f"SUT misbehaviour: {type(exc).__name__}: {exc}")
        return Judgement(Verdict.HARNESS_ERROR, f"a reference peer of the suite failed: {type(exc).__name__}: {exc}")
    if isinstance(exc, ControlApiError):
        # docs/control-api.md: the control API is the vendor's adapter and is never scored; a broken
        # control call means the check could not be run, so it is not a verdict on the MIMI server.
        return Judgement(Verdict.HARNESS_ERROR, f"control API: {exc}")
    return Judgement(Verdict.HARNESS_ERROR, f"{type(exc).__name__}: {exc}")
