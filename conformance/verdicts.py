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

Each requirement a check names gets its own outcome (:class:`Outcome`); the check's verdict is the
worst of them. A check judges through this module's functions, which write to the running check's
:class:`Ledger` (the plugin opens one per check):

* :func:`observed` (or :func:`expect` with a true condition) -> the check saw ``requirement`` hold.
  **A requirement is PASS only on an observation** (the observation guard): a check that ends
  normally without one for a requirement reports it NOT_APPLICABLE ("nothing was observed").
* :func:`fail` (or :func:`expect` with a false condition) -> ``requirement`` missed; the check stops.
  Scored by level: MUST -> FAIL, SHOULD/MAY -> WARN. :func:`miss` records a miss and goes on.
* ``assert``, a poll timeout, an unnamed :func:`fail` -> a miss of the requirement of the innermost
  :func:`judging` block, or of the check's only requirement. In a check naming several requirements,
  an unattributed miss is a check bug (HARNESS_ERROR), never a guess.
* :func:`warn` -> WARN whatever the level (a SHOULD-only observation inside a MUST check).
* :func:`blocked` -> FAIL scored against another rule the SUT broke that the check needs
  (``blocked_by``); the check's own requirements not yet observed are NOT_REACHED.
* :func:`not_applicable` -> NOT_APPLICABLE with the reason (for one requirement with ``requirement=``,
  and the check goes on; otherwise the whole check stops). A control operation the SUT lacks
  (``operation=``, or the control client's :class:`~conformance.harness.control.NotSupported`) is kept in
  ``CheckResult.missing_operation`` and counted per operation in the run's summary.
* :func:`ambiguous` -> AMBIGUOUS with the ambiguity ID, for the named (or attributed) requirement.
* :class:`SutMisbehaviour` (raised by the harness: timeout, garbage, reset, a SUT that does not
  start) -> FAIL of the attributed requirement (or of every requirement not yet judged) with the
  diagnosis: a SUT that cannot be talked to fails.
* A :class:`reference_peer.server.client.PeerError` about a SUT URL -> as SutMisbehaviour; about one
  of the suite's own peers -> HARNESS_ERROR.
* Anything else -> HARNESS_ERROR for every requirement not yet observed.

When a check stops, requirements it already observed keep their PASS and those it never reached are
NOT_REACHED: one miss is charged to the requirement it breaks, not to the others.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import re
import threading
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


class Outcome(enum.StrEnum):
    """How one requirement named by one check came out."""

    PASS = "PASS"  # observed to hold
    FAIL = "FAIL"  # missed, scored MUST
    WARN = "WARN"  # missed, scored SHOULD or MAY (or the check warned)
    AMBIGUOUS = "AMBIGUOUS"  # the SUT followed a reading the draft also allows
    NOT_APPLICABLE = "NOT_APPLICABLE"  # could not apply, or nothing was observed for it
    HARNESS_ERROR = "HARNESS_ERROR"  # the suite broke before judging it
    NOT_REACHED = "NOT_REACHED"  # the check stopped (another requirement's miss, a block) before judging it


# Worst first: a check's verdict is the first of these any of its requirements has.
OUTCOME_ORDER = (Outcome.FAIL, Outcome.HARNESS_ERROR, Outcome.WARN, Outcome.AMBIGUOUS, Outcome.PASS,
                 Outcome.NOT_APPLICABLE, Outcome.NOT_REACHED)


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

    def __init__(self, message: str, requirement: str | None = None) -> None:
        super().__init__(message)
        self.requirement = requirement


class NotApplicable(CheckOutcome):
    """The check cannot apply to this SUT: a feature, role or control operation it declares absent.
    ``operation``: the control operation the SUT lacks, when that is the reason (counted per run)."""

    def __init__(self, reason: str, *, operation: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.operation = operation


class Ambiguous(CheckOutcome):
    """The SUT followed a reading the draft also allows; ``ambiguity`` is the AMB- ID."""

    def __init__(self, ambiguity: str, message: str, requirement: str | None = None) -> None:
        if not AMBIGUITY_ID.match(ambiguity):
            raise ValueError(f"not an ambiguity ID (AMB-...): {ambiguity!r}")
        super().__init__(f"{ambiguity}: {message}")
        self.ambiguity = ambiguity
        self.requirement = requirement


class SutMisbehaviour(CheckOutcome):
    """The harness caught the SUT misbehaving (timeout, garbage, reset, never healthy): FAIL with a diagnosis."""

    def __init__(self, message: str, requirement: str | None = None) -> None:
        super().__init__(message)
        self.requirement = requirement


class HarnessError(CheckOutcome):
    """The suite itself broke (or a precondition the suite owns failed): HARNESS_ERROR."""


class Blocked(CheckOutcome):
    """The SUT broke a rule the check does not judge but needs (``requirement``), so the check could
    not judge its own: FAIL scored against that rule (``blocked_by``)."""

    def __init__(self, requirement: str, message: str) -> None:
        super().__init__(message)
        self.requirement = requirement


# --------------------------------------------------------------------------------------------
# The ledger: what the running check observed, per requirement


@dataclasses.dataclass
class Ledger:
    """Per-requirement evidence of one running check (opened by the plugin; see the module docstring)."""

    requirements: tuple[str, ...]
    observations: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    misses: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # soft misses (miss())
    warnings: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    inapplicable: dict[str, str] = dataclasses.field(default_factory=dict)
    ambiguities: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    active: list[str] = dataclasses.field(default_factory=list)  # judging() blocks, innermost last

    def attribute(self, named: str | None = None) -> str | None:
        """The requirement a miss without a name belongs to: the innermost judging() block, or the only one."""
        if named is not None:
            return named
        if self.active:
            return self.active[-1]
        if len(self.requirements) == 1:
            return self.requirements[0]
        return None

    def _known(self, requirement: str, what: str) -> str:
        if requirement not in self.requirements:
            raise CheckBug(f"{what} names {requirement}, which the check does not declare in its requirements marker")
        return requirement


class CheckBug(HarnessError):
    """The check itself is wrong (an unattributed miss, a requirement it does not declare)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"check bug: {message}")


_LOCK = threading.Lock()
_current: Ledger | None = None


def open_ledger(requirements: Sequence[str]) -> Ledger:
    """Start a check's ledger (the plugin calls this before each check; checks run one at a time per process)."""
    global _current
    with _LOCK:
        _current = Ledger(tuple(requirements))
        return _current


def close_ledger() -> Ledger | None:
    global _current
    with _LOCK:
        ledger, _current = _current, None
        return ledger


def current_ledger() -> Ledger | None:
    return _current


def observed(requirement: str, what: str = "") -> None:
    """The check saw ``requirement`` hold (``what``: the evidence, for the report). Without an
    observation a requirement is never PASS."""
    ledger = _current
    if ledger is not None:
        ledger.observations.setdefault(ledger._known(requirement, "observed()"), []).append(what)


def expect(requirement: str, condition: object, message: str, *, evidence: str = "") -> None:
    """``requirement`` held if ``condition`` is true (an observation), else it was missed (the check stops)."""
    if condition:
        observed(requirement, evidence or f"not: {message}")
    else:
        fail(message, requirement=requirement)


def fail(message: str, *, requirement: str | None = None) -> None:
    """The SUT missed ``requirement`` (default: the innermost judging() block's, or the check's only one)."""
    ledger = _current
    if ledger is not None and requirement is not None:
        ledger._known(requirement, "fail()")
    raise RequirementMissed(message, requirement)


def miss(requirement: str, message: str) -> None:
    """The SUT missed ``requirement``; the check goes on to judge the others."""
    ledger = _current
    if ledger is None:
        raise RequirementMissed(message, requirement)
    ledger.misses.setdefault(ledger._known(requirement, "miss()"), []).append(message)


@contextlib.contextmanager
def judging(requirement: str):
    """Attribute the misses inside (asserts, poll timeouts, unnamed fail()) to ``requirement``."""
    ledger = _current
    if ledger is None:
        yield
        return
    ledger.active.append(ledger._known(requirement, "judging()"))
    try:
        yield
    except (AssertionError, TimeoutError, RequirementMissed, Warned, Ambiguous, SutMisbehaviour) as exc:
        # Name the requirement on the way out, while the block is still known.
        if getattr(exc, "requirement", None) is None:
            try:
                exc.requirement = requirement
            except AttributeError:  # pragma: no cover - exceptions with slots
                pass
        raise
    finally:
        ledger.active.pop()


def blocked(requirement: str, message: str) -> None:
    raise Blocked(requirement, message)


def warn(message: str, *, requirement: str | None = None) -> None:
    raise Warned(message, requirement)


def not_applicable(reason: str, *, requirement: str | None = None, operation: str | None = None) -> None:
    """The whole check cannot apply (it stops); with ``requirement``, only that one, and the check goes on.
    ``operation``: the control operation the SUT lacks, when that is why (the run counts them)."""
    ledger = _current
    if requirement is not None and ledger is not None:
        ledger.inapplicable[ledger._known(requirement, "not_applicable()")] = reason
        return
    raise NotApplicable(reason, operation=operation)


def ambiguous(ambiguity: str, message: str, *, requirement: str | None = None) -> None:
    raise Ambiguous(ambiguity, message, requirement)


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


def missing_operation_counts(operations: Iterable[str | None]) -> list[tuple[str, int]]:
    """(operation, checks not run for lack of it), most first, then by name; Nones are left out."""
    counts: dict[str, int] = {}
    for operation in operations:
        if operation:
            counts[operation] = counts.get(operation, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def missing_operation_line(operations: Iterable[str | None]) -> str | None:
    """The run summary's line "not run for lack of a control operation: sendMessage 12, createRoom 3",
    or None when no check lacked one."""
    counts = missing_operation_counts(operations)
    if not counts:
        return None
    return "not run for lack of a control operation: " + ", ".join(f"{op} {n}" for op, n in counts)


@dataclasses.dataclass(frozen=True)
class RequirementResult:
    """One requirement's outcome in one check, with the evidence or the reason."""

    requirement: str
    outcome: Outcome
    message: str = ""  # why it missed, or why it was not judged
    level: str | None = None  # the level that decided FAIL/WARN
    evidence: tuple[str, ...] = ()  # what the check observed (observed())
    ambiguity: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"requirement": self.requirement, "outcome": str(self.outcome)}
        if self.message:
            data["message"] = self.message
        if self.level:
            data["level"] = self.level
        if self.evidence:
            data["evidence"] = list(self.evidence)
        if self.ambiguity:
            data["ambiguity"] = self.ambiguity
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RequirementResult:
        return cls(data["requirement"], Outcome(data["outcome"]), data.get("message", ""), data.get("level"),
                   tuple(data.get("evidence", ())), data.get("ambiguity"))


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
    # Per requirement (the check's own, then any blocking rule): its outcome
    outcomes: tuple[RequirementResult, ...] = ()
    # NOT_APPLICABLE because the SUT lacks this control operation (omitted from the record otherwise)
    missing_operation: str | None = None
    # The operationIds the check asked of the SUT's control API, first asked first
    # (harness.control.OperationRecord); the operations marker declares them (conformance.operations_table)
    control_operations: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["requirements"] = tuple(values.get("requirements", ()))
        values["blocked_by"] = tuple(values.get("blocked_by", ()))
        values["control_operations"] = tuple(values.get("control_operations", ()))
        values["verdict"] = Verdict(values["verdict"])
        values["outcomes"] = tuple(RequirementResult.from_dict(o) for o in values.get("outcomes", ()))
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["requirements"] = list(self.requirements)
        data["blocked_by"] = list(self.blocked_by)
        data["control_operations"] = list(self.control_operations)
        data["verdict"] = str(self.verdict)
        data["duration"] = round(self.duration, 6)
        data["outcomes"] = [o.as_dict() for o in self.outcomes]
        if self.missing_operation is None:
            del data["missing_operation"]
        return data


@dataclasses.dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    message: str
    ambiguity: str | None = None
    scored_level: str | None = None
    blocked_by: tuple[str, ...] = ()
    outcomes: tuple[RequirementResult, ...] = ()
    missing_operation: str | None = None  # the control operation the SUT lacks, when that made it NOT_APPLICABLE


def _host_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return (urlsplit(url).hostname or "").lower() or None
    except ValueError:
        return None


@dataclasses.dataclass
class _Stop:
    """How a check stopped, before it is spread over its requirements."""

    kind: Outcome  # the outcome of the attributed requirement (or of every unjudged one)
    message: str
    requirement: str | None = None  # the requirement it belongs to; None: every requirement not yet judged
    level: str | None = None
    ambiguity: str | None = None
    blocked_by: tuple[str, ...] = ()
    unjudged: Outcome = Outcome.NOT_REACHED  # what the requirements it does not belong to become
    missing_operation: str | None = None


def _classify(exc: BaseException, requirements: Sequence[str], ledger: Ledger, levels: LevelResolver,
              sut_hosts: Iterable[str]) -> _Stop:
    # Imported here so that this module stays importable without the reference peer's dependencies.
    from reference_peer.server.client import PeerError

    from .harness.control import ControlApiError, NotSupported

    if isinstance(exc, NotApplicable | NotSupported):
        return _Stop(Outcome.NOT_APPLICABLE, getattr(exc, "reason", None) or str(exc), unjudged=Outcome.NOT_APPLICABLE,
                     missing_operation=exc.operation)
    if isinstance(exc, Blocked):
        if exc.requirement in requirements:
            return _Stop(Outcome.HARNESS_ERROR, f"check bug: blocked() names {exc.requirement}, which the check judges",
                         unjudged=Outcome.HARNESS_ERROR)
        return _Stop(Outcome.NOT_REACHED, f"blocked by {exc.requirement}: {exc.message}. The check's own requirements "
                     "were not judged", level="MUST", blocked_by=(exc.requirement,))
    if isinstance(exc, HarnessError):
        return _Stop(Outcome.HARNESS_ERROR, exc.message, unjudged=Outcome.HARNESS_ERROR)
    if isinstance(exc, ControlApiError):
        # docs/control-api.md: the control API is the vendor's adapter and is never scored; a broken
        # control call means the check could not be run, so it is not a verdict on the MIMI server.
        return _Stop(Outcome.HARNESS_ERROR, f"control API: {exc}", unjudged=Outcome.HARNESS_ERROR)
    named = ledger.attribute(getattr(exc, "requirement", None))
    if named is not None and named not in requirements:
        return _Stop(Outcome.HARNESS_ERROR, f"check bug: {type(exc).__name__} names {named}, which the check does "
                     "not declare in its requirements marker", unjudged=Outcome.HARNESS_ERROR)
    if isinstance(exc, Ambiguous):
        if named is None:
            return _unattributed(exc, requirements)
        return _Stop(Outcome.AMBIGUOUS, exc.message, named, ambiguity=exc.ambiguity)
    if isinstance(exc, Warned):
        if named is None:
            return _unattributed(exc, requirements)
        return _Stop(Outcome.WARN, exc.message, named, level="SHOULD")
    is_sut_peer_error = isinstance(exc, PeerError) and _host_of(exc.url) in {h.lower() for h in sut_hosts}
    if isinstance(exc, SutMisbehaviour) or is_sut_peer_error:
        detail = exc.message if isinstance(exc, SutMisbehaviour) else f"{type(exc).__name__}: {exc}"
        # A SUT that cannot be talked to fails whatever the level: every requirement the check was
        # still to judge, unless the check knows which one it was judging.
        return _Stop(Outcome.FAIL, f"SUT misbehaviour: {detail}", named, level="MUST", unjudged=Outcome.NOT_REACHED)
    if isinstance(exc, PeerError):
        return _Stop(Outcome.HARNESS_ERROR, f"a reference peer of the suite failed: {type(exc).__name__}: {exc}",
                     unjudged=Outcome.HARNESS_ERROR)
    if isinstance(exc, RequirementMissed | AssertionError | TimeoutError):
        if named is None:
            return _unattributed(exc, requirements)
        try:
            level = levels.level(named)
        except (KeyError, ValueError) as err:
            return _Stop(Outcome.HARNESS_ERROR, f"cannot score the miss: {err}", unjudged=Outcome.HARNESS_ERROR)
        outcome = Outcome.FAIL if level == "MUST" else Outcome.WARN
        return _Stop(outcome, str(exc) or type(exc).__name__, named, level=level)
    return _Stop(Outcome.HARNESS_ERROR, f"{type(exc).__name__}: {exc}", unjudged=Outcome.HARNESS_ERROR)


def _unattributed(exc: BaseException, requirements: Sequence[str]) -> _Stop:
    return _Stop(Outcome.HARNESS_ERROR,
                 f"check bug: a miss ({type(exc).__name__}: {exc}) names no requirement in a check judging "
                 f"{len(requirements)} ({', '.join(requirements)}); name it with fail(requirement=...) or judging()",
                 unjudged=Outcome.HARNESS_ERROR)


def _scored(levels: LevelResolver, requirement: str) -> str:
    try:
        return levels.level(requirement)
    except (KeyError, ValueError):
        return "MUST"


def judge(
    exc: BaseException | None,
    requirements: Sequence[str],
    levels: LevelResolver,
    *,
    sut_hosts: Iterable[str] = (),
    ledger: Ledger | None = None,
) -> Judgement:
    """The per-requirement outcomes, and the verdict, of a check that ended with ``exc`` (None: normally)."""
    ledger = ledger if ledger is not None else Ledger(tuple(requirements))
    stop = _classify(exc, requirements, ledger, levels, sut_hosts) if exc is not None else None
    results: list[RequirementResult] = []
    for req in requirements:
        evidence = tuple(ledger.observations.get(req, ()))
        if req in ledger.misses:
            level = _scored(levels, req)
            results.append(RequirementResult(req, Outcome.FAIL if level == "MUST" else Outcome.WARN,
                                             "; ".join(ledger.misses[req]), level, evidence))
        elif stop is not None and (stop.requirement == req or (stop.requirement is None and not evidence
                                                                and stop.kind is not Outcome.NOT_REACHED)):
            # An unattributed stop (SUT misbehaviour, harness error, a whole-check NOT_APPLICABLE)
            # falls on every requirement not yet observed.
            results.append(RequirementResult(req, stop.kind, stop.message, stop.level, evidence, stop.ambiguity))
        elif req in ledger.ambiguities:
            amb, message = ledger.ambiguities[req]
            results.append(RequirementResult(req, Outcome.AMBIGUOUS, message, None, evidence, amb))
        elif req in ledger.warnings:
            results.append(RequirementResult(req, Outcome.WARN, "; ".join(ledger.warnings[req]), "SHOULD", evidence))
        elif evidence:
            results.append(RequirementResult(req, Outcome.PASS, "", None, evidence))
        elif req in ledger.inapplicable:
            results.append(RequirementResult(req, Outcome.NOT_APPLICABLE, ledger.inapplicable[req]))
        elif stop is None:
            results.append(RequirementResult(req, Outcome.NOT_APPLICABLE,
                                             "nothing was observed: the check never saw it hold"))
        else:
            reason = stop.message if stop.unjudged is not Outcome.NOT_REACHED else (
                f"not reached: the check stopped first ({stop.requirement or 'see the check'}: {stop.message})")
            results.append(RequirementResult(req, stop.unjudged, reason))
    if stop is not None:
        for rule in stop.blocked_by:
            results.append(RequirementResult(rule, Outcome.FAIL, stop.message, "MUST"))
    return _verdict_of(results, stop)


_VERDICT_OF = {Outcome.FAIL: Verdict.FAIL, Outcome.HARNESS_ERROR: Verdict.HARNESS_ERROR, Outcome.WARN: Verdict.WARN,
               Outcome.AMBIGUOUS: Verdict.AMBIGUOUS, Outcome.PASS: Verdict.PASS,
               Outcome.NOT_APPLICABLE: Verdict.NOT_APPLICABLE, Outcome.NOT_REACHED: Verdict.NOT_APPLICABLE}


def _verdict_of(results: Sequence[RequirementResult], stop: _Stop | None) -> Judgement:
    present = {r.outcome for r in results}
    worst = next((o for o in OUTCOME_ORDER if o in present), Outcome.NOT_APPLICABLE)
    deciding = [r for r in results if r.outcome is worst]
    if stop is not None and stop.blocked_by:
        message = stop.message
    elif worst is Outcome.PASS:
        message = ""
    elif len(results) == 1 or len({r.message for r in deciding}) == 1 and worst is not Outcome.FAIL \
            and worst is not Outcome.WARN:
        message = deciding[0].message
    else:
        # A miss names the requirement it breaks.
        message = "; ".join(dict.fromkeys(f"{r.requirement}: {r.message}" for r in deciding if r.message))
    levels = [r.level for r in deciding if r.level]
    ambiguity = next((r.ambiguity for r in deciding if r.ambiguity), None)
    # Counted only when the lacking operation is what kept the whole check from its verdict.
    missing = stop.missing_operation if stop is not None and worst is Outcome.NOT_APPLICABLE else None
    return Judgement(_VERDICT_OF[worst], message, ambiguity=ambiguity, scored_level=levels[0] if levels else None,
                     blocked_by=stop.blocked_by if stop is not None else (), outcomes=tuple(results),
                     missing_operation=missing)


def blocked_judgement(judgement: Judgement, rules: Sequence[str], message: str) -> Judgement:
    """``judgement`` turned into a FAIL of the blocking ``rules``: what the check observed keeps its
    PASS; the rest of its own requirements were not reached."""
    kept = [r for r in judgement.outcomes if r.requirement not in rules]
    results = [r if r.outcome is Outcome.PASS else RequirementResult(
        r.requirement, Outcome.NOT_REACHED, f"not reached: blocked by {', '.join(rules)}", None, r.evidence)
        for r in kept]
    results += [RequirementResult(rule, Outcome.FAIL, message, "MUST") for rule in rules]
    return Judgement(Verdict.FAIL, message, scored_level="MUST", blocked_by=tuple(rules), outcomes=tuple(results))
