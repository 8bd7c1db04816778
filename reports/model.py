"""The results data model: plain dataclasses, independent of the suite that fills them.

``reports`` sits below ``conformance`` (``reports <- conformance -> reference_peer``): nothing here
imports the suite. The suite hands requirement and profile information over as
:class:`RequirementInfo` and :class:`ProfileInfo`, and each check's outcome as a :class:`CheckRecord`;
:func:`reports.scoring.score_run` turns them into a :class:`RunResults`, which is what
``results.json`` holds (validated by ``results.schema.json``, see :mod:`reports.schema`).

A results file is self-contained: besides the checks and the profile verdicts it carries the
requirements it judged (ID, the draft's sentence or, for an IMPLIED entry, the suite's paraphrase
with the draft's passage in ``derived_from``, level) and, per profile, the level at which each
requirement was scored, so the HTML report, ``verify`` (which re-scores) and ``diff`` need nothing else.

Schema 2.0.0: each check carries ``outcomes``, one :class:`RequirementJudgement` per requirement
(PASS with its evidence, FAIL/WARN with the message, NOT_REACHED, ...); scoring reads those, never
the check's verdict. Files of schema 1.x (one verdict per check) are still read: each check is
converted, every requirement it was scored against getting the check's verdict, as 1.x scored it.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "2.1.0"
# Versions this reader accepts. 2.1.0 adds the optional ``run_options`` and ``gate`` members (what
# was selected, and the baseline with the gate's outcome): a 2.0.0 file reads the same without them. 2.0.0: every check carries its per-requirement ``outcomes`` (a 1.x
# reader would score the check's verdict against every requirement it names: a major change).
# 1.x files are read by converting each check: every requirement it was scored against (its
# ``blocked_by`` rules, else its own) gets the check's verdict, exactly as 1.x scored it.
READABLE_SCHEMA_VERSIONS = ("2.1.0", "2.0.0", "1.1.0", "1.0.0")
LEGACY_SCHEMA_VERSIONS = ("1.1.0", "1.0.0")
SCHEMA_ID = f"https://mimi-conformance.invalid/schemas/results/{SCHEMA_VERSION}"


class Verdict(enum.StrEnum):
    """The verdict of one check (docs/architecture.md "Verdicts")."""

    PASS = "PASS"
    FAIL = "FAIL"
    WARN = "WARN"
    NOT_APPLICABLE = "NOT_APPLICABLE"
    HARNESS_ERROR = "HARNESS_ERROR"
    AMBIGUOUS = "AMBIGUOUS"

    @property
    def is_failure(self) -> bool:
        """Whether this verdict fails a run unless a vendor baseline expects it."""
        return self in (Verdict.FAIL, Verdict.HARNESS_ERROR)


class ProfileVerdict(enum.StrEnum):
    """The verdict of a profile, from the checks of its requirements (see :mod:`reports.scoring`)."""

    CONFORMANT = "CONFORMANT"
    CONFORMANT_WITH_WARNINGS = "CONFORMANT_WITH_WARNINGS"
    NOT_CONFORMANT = "NOT_CONFORMANT"
    INCOMPLETE = "INCOMPLETE"

    @property
    def passes(self) -> bool:
        """Whether a run whose selected profiles all have this verdict exits 0 (warnings do not fail CI)."""
        return self in (ProfileVerdict.CONFORMANT, ProfileVerdict.CONFORMANT_WITH_WARNINGS)


class RequirementStatus(enum.StrEnum):
    """How one requirement of one profile came out: the worst of its own outcomes in its checks, seen at
    the profile's level (see :mod:`reports.scoring`)."""

    PASS = "PASS"
    FAIL = "FAIL"  # missed, scored MUST by the profile
    WARN = "WARN"  # missed, scored SHOULD or MAY (or a check warned)
    HARNESS_ERROR = "HARNESS_ERROR"  # a check of it broke: not judged
    UNTESTED = "UNTESTED"  # no check of the profile's role cites it
    NOT_APPLICABLE = "NOT_APPLICABLE"  # every check declared not applicable
    AMBIGUOUS = "AMBIGUOUS"  # the SUT followed a reading the draft also allows
    NOT_REACHED = "NOT_REACHED"  # its checks all stopped before judging it: not judged


class RequirementVerdict(enum.StrEnum):
    """How one requirement named by one check came out in that check (``conformance.verdicts.Outcome``)."""

    PASS = "PASS"  # observed to hold
    FAIL = "FAIL"  # missed, scored MUST by the run
    WARN = "WARN"  # missed, scored SHOULD or MAY (or the check warned)
    AMBIGUOUS = "AMBIGUOUS"  # the SUT followed a reading the draft also allows
    NOT_APPLICABLE = "NOT_APPLICABLE"  # could not apply, or nothing was observed for it
    HARNESS_ERROR = "HARNESS_ERROR"  # the suite broke before judging it
    NOT_REACHED = "NOT_REACHED"  # the check stopped before judging it


LEVELS = ("MUST", "SHOULD", "MAY", "IMPLIED")
SCORED_LEVELS = ("MUST", "SHOULD", "MAY")
ROLES = ("hub", "follower", "any")


@dataclass(frozen=True)
class RequirementInfo:
    """One catalogue requirement, as the reports need it."""

    id: str
    source: str  # catalogue document id, e.g. "draft-ietf-mimi-protocol-06"
    section: str
    text: str  # the normative sentence
    level: str  # catalogue level: MUST | SHOULD | MAY | IMPLIED
    negative: bool = False  # MUST NOT / SHOULD NOT
    area: str = ""
    role: str = "any"
    # IMPLIED entries: ``text`` is the suite's paraphrase and this is the draft's own passage
    derived_from: str | None = None

    @property
    def keyword(self) -> str:
        if self.level == "IMPLIED":
            return "IMPLIED"
        return f"{self.level} NOT" if self.negative else self.level

    @property
    def draft_text(self) -> str:
        """The draft's own sentence: the passage an IMPLIED entry was derived from, else ``text`` (verbatim)."""
        return self.derived_from or self.text

    @property
    def paraphrase(self) -> str | None:
        """The suite's paraphrase, when ``text`` is one (an IMPLIED entry with ``derived_from``)."""
        return self.text if self.derived_from else None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "source": self.source,
            "section": self.section,
            "text": self.text,
            "level": self.level,
            "negative": self.negative,
            "area": self.area,
            "role": self.role,
        }
        if self.derived_from:
            data["derived_from"] = self.derived_from
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RequirementInfo:
        return cls(
            id=data["id"],
            source=data["source"],
            section=data["section"],
            text=data["text"],
            level=data["level"],
            negative=bool(data.get("negative", False)),
            area=data.get("area", ""),
            role=data.get("role", "any"),
            derived_from=data.get("derived_from") or None,
        )


@dataclass(frozen=True)
class ProfileInfo:
    """A profile as scoring needs it: which requirements, each at which level, for which role."""

    name: str
    title: str
    role: str  # hub | follower | any
    drafts: tuple[str, ...]
    requirements: Mapping[str, str]  # requirement ID -> scored level (MUST | SHOULD | MAY)


@dataclass(frozen=True)
class RequirementJudgement:
    """One requirement's outcome in one check (schema 2.0.0 ``checks[].outcomes[]``)."""

    requirement: str
    outcome: RequirementVerdict
    message: str = ""  # why it missed, could not apply or was not reached
    level: str | None = None  # the level that decided FAIL/WARN in the run
    evidence: tuple[str, ...] = ()  # what the check observed (PASS)
    ambiguity: str | None = None  # AMB- ID of an AMBIGUOUS outcome

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
    def from_dict(cls, data: Mapping[str, Any]) -> RequirementJudgement:
        return cls(
            requirement=data["requirement"],
            outcome=RequirementVerdict(data["outcome"]),
            message=data.get("message", "") or "",
            level=data.get("level") or None,
            evidence=tuple(data.get("evidence", ())),
            ambiguity=data.get("ambiguity") or None,
        )


@dataclass(frozen=True)
class CheckRecord:
    """One check's outcome, as the results writer hands it over.

    ``outcomes`` holds each requirement's own outcome (the check's own requirements and any
    ``blocked_by`` rule); scoring reads only these. A record without them (a 1.x file, an old
    JSON-lines file) is read as 1.x scored it: see :meth:`scored_outcomes`.
    """

    check_id: str  # the pytest node ID, stable across runs
    requirement_ids: tuple[str, ...]
    role: str  # the role the SUT played: hub | follower | any
    area: str
    verdict: Verdict
    message: str = ""
    duration_s: float = 0.0
    transcript_ref: str | None = None  # transcript JSON path, relative to the results file's folder
    ambiguity_ids: tuple[str, ...] = ()
    # Transport requirements the SUT broke, which kept the check from judging its own
    # (conformance.harness.attribution); their outcome is in ``outcomes`` (FAIL).
    blocked_by: tuple[str, ...] = ()
    outcomes: tuple[RequirementJudgement, ...] = ()
    # NOT_APPLICABLE because the SUT lacks this control operation (the run summary counts them)
    missing_operation: str | None = None

    def __post_init__(self) -> None:
        if not self.outcomes:  # a 1.x record: converted once, so that it reads back the same
            object.__setattr__(self, "outcomes", self.scored_outcomes())

    @property
    def scored_requirement_ids(self) -> tuple[str, ...]:
        """The requirements this check has an outcome for."""
        return tuple(outcome.requirement for outcome in self.scored_outcomes())

    def scored_outcomes(self) -> tuple[RequirementJudgement, ...]:
        """The per-requirement outcomes scoring uses: ``outcomes``, or for a record without them
        (schema 1.x) the check's verdict for every requirement 1.x scored it against (its
        ``blocked_by`` rules, else its own requirements)."""
        if self.outcomes:
            return self.outcomes
        return legacy_outcomes(self.blocked_by or self.requirement_ids, self.verdict, self.message, self.ambiguity_ids)

    def waived(self, reason: str = "expected failure (baseline)") -> CheckRecord:
        """This check with its failure waived (baseline gating): the check counts as passed, as it
        did before per-requirement outcomes: its FAIL, HARNESS_ERROR and NOT_REACHED outcomes become
        PASS (the vendor's baseline accepts the failure and what it kept from being judged)."""
        waived_kinds = (RequirementVerdict.FAIL, RequirementVerdict.HARNESS_ERROR, RequirementVerdict.NOT_REACHED)
        outcomes = tuple(
            RequirementJudgement(o.requirement, RequirementVerdict.PASS, reason) if o.outcome in waived_kinds else o
            for o in self.scored_outcomes()
        )
        return replace(self, verdict=Verdict.PASS, outcomes=outcomes)

    def outcome_for(self, requirement_id: str) -> RequirementJudgement | None:
        return next((o for o in self.scored_outcomes() if o.requirement == requirement_id), None)

    def as_dict(self) -> dict[str, Any]:
        data = {
            "check_id": self.check_id,
            "requirement_ids": list(self.requirement_ids),
            "role": self.role,
            "area": self.area,
            "verdict": str(self.verdict),
            "message": self.message,
            "duration_s": self.duration_s,
            "transcript_ref": self.transcript_ref,
            "ambiguity_ids": list(self.ambiguity_ids),
            "outcomes": [outcome.as_dict() for outcome in self.scored_outcomes()],
        }
        if self.blocked_by:  # omitted when empty
            data["blocked_by"] = list(self.blocked_by)
        if self.missing_operation:  # omitted when none
            data["missing_operation"] = self.missing_operation
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckRecord:
        """From a check of a results file; a 1.x check (no ``outcomes``) is converted (see :meth:`scored_outcomes`)."""
        return cls(
            check_id=data["check_id"],
            requirement_ids=tuple(data["requirement_ids"]),
            role=data["role"],
            area=data["area"],
            verdict=Verdict(data["verdict"]),
            message=data.get("message", ""),
            duration_s=float(data.get("duration_s", 0.0)),
            transcript_ref=data.get("transcript_ref"),
            ambiguity_ids=tuple(data.get("ambiguity_ids", ())),
            blocked_by=tuple(data.get("blocked_by", ())),
            outcomes=tuple(RequirementJudgement.from_dict(item) for item in data.get("outcomes", ())),
            missing_operation=data.get("missing_operation") or None,
        )


def legacy_outcomes(
    requirement_ids: Sequence[str], verdict: Verdict, message: str = "", ambiguity_ids: Sequence[str] = ()
) -> tuple[RequirementJudgement, ...]:
    """Schema 1.x scoring as per-requirement outcomes: every requirement gets the check's verdict."""
    outcome = RequirementVerdict(str(verdict))
    return tuple(
        RequirementJudgement(
            requirement=req_id,
            outcome=outcome,
            message="" if outcome is RequirementVerdict.PASS else message,
            ambiguity=ambiguity_ids[0] if outcome is RequirementVerdict.AMBIGUOUS and ambiguity_ids else None,
        )
        for req_id in requirement_ids
    )


@dataclass(frozen=True)
class RequirementOutcome:
    """One requirement of one profile: its scored level, its status and the checks that judged it."""

    id: str
    level: str  # the level the profile scores it at
    status: RequirementStatus
    check_ids: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "level": self.level, "status": str(self.status), "check_ids": list(self.check_ids)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RequirementOutcome:
        return cls(
            id=data["id"],
            level=data["level"],
            status=RequirementStatus(data["status"]),
            check_ids=tuple(data.get("check_ids", ())),
        )


# Keys of ProfileResult.counts, in display order. Requirement counts first, then check counts.
REQUIREMENT_COUNT_KEYS = tuple(f"requirements_{status.lower()}" for status in RequirementStatus)
COUNT_KEYS = ("requirements", *REQUIREMENT_COUNT_KEYS, "checks", *(f"checks_{v.lower()}" for v in Verdict))


@dataclass(frozen=True)
class ProfileResult:
    name: str
    title: str
    role: str
    drafts: tuple[str, ...]
    verdict: ProfileVerdict
    counts: Mapping[str, int]
    requirements: tuple[RequirementOutcome, ...]

    @property
    def info(self) -> ProfileInfo:
        """The profile as scored, so that a results file can be re-scored (``verify``, baseline gating)."""
        return ProfileInfo(
            name=self.name,
            title=self.title,
            role=self.role,
            drafts=self.drafts,
            requirements={outcome.id: outcome.level for outcome in self.requirements},
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "role": self.role,
            "drafts": list(self.drafts),
            "verdict": str(self.verdict),
            "counts": {key: self.counts[key] for key in COUNT_KEYS},
            "requirements": [outcome.as_dict() for outcome in self.requirements],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProfileResult:
        return cls(
            name=data["name"],
            title=data["title"],
            role=data["role"],
            drafts=tuple(data["drafts"]),
            verdict=ProfileVerdict(data["verdict"]),
            # 1.x files have no requirements_not_reached: 0, as 1.x could not produce the status
            counts={key: int(data["counts"].get(key, 0)) for key in COUNT_KEYS},
            requirements=tuple(RequirementOutcome.from_dict(item) for item in data["requirements"]),
        )


@dataclass(frozen=True)
class SignatureBlock:
    """An Ed25519 signature over the canonical encoding of everything else (see :mod:`reports.signing`)."""

    algorithm: str  # "Ed25519"
    canonicalization: str
    public_key: str  # raw 32-byte public key, lowercase hex
    key_id: str  # first 16 hex digits of SHA-256 of the raw public key
    value: str  # 64-byte signature, lowercase hex

    def as_dict(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "canonicalization": self.canonicalization,
            "public_key": self.public_key,
            "key_id": self.key_id,
            "value": self.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignatureBlock:
        return cls(**{key: data[key] for key in ("algorithm", "canonicalization", "public_key", "key_id", "value")})


def canonical_json(data: Any) -> bytes:
    """The canonical encoding used for hashes and signatures: sorted keys, no whitespace, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def manifest_sha256(manifest: Mapping[str, Any]) -> str:
    """SHA-256 of the SUT manifest *as parsed*, canonically encoded, so that anyone can recompute it
    from results.json alone (a hash of the YAML bytes could not be checked without the file)."""
    return hashlib.sha256(canonical_json(manifest)).hexdigest()


@dataclass(frozen=True)
class RunOptionsRecord:
    """How the run was invoked, as far as it changes what was judged (schema 2.1.0 ``run_options``)."""

    selection: Mapping[str, Any]  # the check selection as given (e.g. {"k": "transport"}); {} when all ran
    allow_untested: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"selection": dict(self.selection), "allow_untested": self.allow_untested}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunOptionsRecord:
        return cls(selection=dict(data.get("selection") or {}), allow_untested=bool(data.get("allow_untested")))


@dataclass(frozen=True)
class BaselineEntryRecord:
    """One expected failure of the vendor baseline the run was gated with."""

    check: str
    reason: str
    intermittent: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.check, "reason": self.reason, "intermittent": self.intermittent}


@dataclass(frozen=True)
class GateItemRecord:
    """How one check came out against the baseline (``reports.baseline.Outcome`` values)."""

    check_id: str
    outcome: str  # UNEXPECTED_FAILURE | EXPECTED_FAILURE | STALE | INTERMITTENT_PASS | NOT_RUN
    verdict: Verdict | None  # None: the check did not run
    detail: str = ""  # the check's message, or the baseline's reason

    def as_dict(self) -> dict[str, Any]:
        return {
            "check_id": self.check_id,
            "outcome": self.outcome,
            "verdict": str(self.verdict) if self.verdict is not None else None,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateItemRecord:
        verdict = data.get("verdict")
        return cls(data["check_id"], data["outcome"], Verdict(verdict) if verdict else None, data.get("detail", ""))


@dataclass(frozen=True)
class GateRecord:
    """The CI gate of the run (schema 2.1.0 ``gate``): the baseline it used and what came of it."""

    passed: bool  # the gate alone: no unexpected failure, no stale entry, every profile passes
    baseline_file: str | None  # the --baseline path as given; None: no baseline
    baseline: tuple[BaselineEntryRecord, ...]
    items: tuple[GateItemRecord, ...]
    profile_verdicts: Mapping[str, ProfileVerdict]  # re-scored with the expected failures waived

    def expected_failure(self, check_id: str) -> GateItemRecord | None:
        """The gate item of ``check_id`` when the baseline waived its failure."""
        return next((i for i in self.items if i.check_id == check_id and i.outcome == "EXPECTED_FAILURE"), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "baseline_file": self.baseline_file,
            "baseline": [entry.as_dict() for entry in self.baseline],
            "items": [item.as_dict() for item in self.items],
            "profile_verdicts": {name: str(verdict) for name, verdict in self.profile_verdicts.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateRecord:
        return cls(
            passed=bool(data["passed"]),
            baseline_file=data.get("baseline_file"),
            baseline=tuple(
                BaselineEntryRecord(e["check"], e["reason"], bool(e.get("intermittent", False)))
                for e in data.get("baseline", ())
            ),
            items=tuple(GateItemRecord.from_dict(item) for item in data.get("items", ())),
            profile_verdicts={name: ProfileVerdict(v) for name, v in (data.get("profile_verdicts") or {}).items()},
        )


@dataclass(frozen=True)
class RunResults:
    suite_version: str
    draft_revisions: tuple[str, ...]  # catalogue document ids, e.g. "draft-ietf-mimi-protocol-06"
    sut_manifest: Mapping[str, Any]
    seed: int
    started_at: str  # RFC 3339 UTC, e.g. 2026-11-22T23:00:00Z
    ended_at: str
    checks: tuple[CheckRecord, ...]
    profiles: tuple[ProfileResult, ...]
    requirements: tuple[RequirementInfo, ...]  # every requirement a profile scores or a check cites
    sut_manifest_sha256: str = ""  # filled from sut_manifest when empty
    schema_version: str = SCHEMA_VERSION
    signature: SignatureBlock | None = None
    run_options: RunOptionsRecord | None = None  # None: not recorded (a file older than 2.1.0)
    gate: GateRecord | None = None  # None: not gated, or a file older than 2.1.0

    def __post_init__(self) -> None:
        if not self.sut_manifest_sha256:
            object.__setattr__(self, "sut_manifest_sha256", manifest_sha256(self.sut_manifest))

    def requirement(self, requirement_id: str) -> RequirementInfo | None:
        return self._requirements_by_id().get(requirement_id)

    def _requirements_by_id(self) -> dict[str, RequirementInfo]:
        return {req.id: req for req in self.requirements}

    def profile(self, name: str) -> ProfileResult | None:
        return next((profile for profile in self.profiles if profile.name == name), None)

    def unsigned_dict(self) -> dict[str, Any]:
        """Everything but the signature block: exactly what a signature covers."""
        data: dict[str, Any] = {
            "$schema": SCHEMA_ID,
            "schema_version": self.schema_version,
            "suite_version": self.suite_version,
            "draft_revisions": list(self.draft_revisions),
            "sut_manifest": dict(self.sut_manifest),
            "sut_manifest_sha256": self.sut_manifest_sha256,
            "seed": self.seed,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "requirements": [req.as_dict() for req in self.requirements],
            "checks": [check.as_dict() for check in self.checks],
            "profiles": [profile.as_dict() for profile in self.profiles],
        }
        # Inside the signed content: a signature then also vouches for the selection and the baseline.
        if self.run_options is not None:
            data["run_options"] = self.run_options.as_dict()
        if self.gate is not None:
            data["gate"] = self.gate.as_dict()
        return data

    def as_dict(self) -> dict[str, Any]:
        data = self.unsigned_dict()
        if self.signature is not None:
            data["signature"] = self.signature.as_dict()
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        separators = (",", ": ") if indent is not None else (",", ":")
        return json.dumps(self.as_dict(), indent=indent, separators=separators, ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResults:
        signature = data.get("signature")
        return cls(
            # The model is the current version: a 1.x document is converted on reading (checks gain outcomes).
            schema_version=SCHEMA_VERSION,
            suite_version=data["suite_version"],
            draft_revisions=tuple(data["draft_revisions"]),
            sut_manifest=data["sut_manifest"],
            sut_manifest_sha256=data["sut_manifest_sha256"],
            seed=data["seed"],
            started_at=data["started_at"],
            ended_at=data["ended_at"],
            requirements=tuple(RequirementInfo.from_dict(item) for item in data["requirements"]),
            checks=tuple(CheckRecord.from_dict(item) for item in data["checks"]),
            profiles=tuple(ProfileResult.from_dict(item) for item in data["profiles"]),
            signature=SignatureBlock.from_dict(signature) if signature is not None else None,
            run_options=RunOptionsRecord.from_dict(data["run_options"]) if data.get("run_options") else None,
            gate=GateRecord.from_dict(data["gate"]) if data.get("gate") else None,
        )

    @classmethod
    def from_json(cls, text: str | bytes, *, validate: bool = True) -> RunResults:
        """Parse results.json; with ``validate`` (the default) it must match the schema first.

        Raises :class:`reports.schema.ResultsSchemaError` (a ``ValueError``) on invalid JSON or schema.
        """
        from .schema import ResultsSchemaError, validate_results

        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ResultsSchemaError(f"not valid JSON: {exc}") from exc
        if validate:
            validate_results(data)
        return cls.from_dict(data)


def utc_timestamp(moment: datetime.datetime) -> str:
    """An aware datetime as the schema's timestamp: UTC, millisecond precision, ``Z`` suffix."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no defined UTC time; pass an aware one")
    utc = moment.astimezone(datetime.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def check_record_from_line(data: Mapping[str, Any]) -> CheckRecord:
    """A check from one line of the plugin's JSON-lines output (``conformance.verdicts.CheckResult.as_dict``:
    ``requirements``, ``duration``, ``transcript``, ``ambiguity``), or from a :meth:`CheckRecord.as_dict`."""
    if "requirement_ids" in data:
        return CheckRecord.from_dict(data)
    ambiguity = data.get("ambiguity")
    # A line without ``outcomes`` (written before per-requirement outcomes) is scored the 1.x way.
    outcomes = tuple(RequirementJudgement.from_dict(item) for item in data.get("outcomes") or ())
    return CheckRecord(
        check_id=data["check_id"],
        requirement_ids=tuple(data["requirements"]),
        role=data["role"],
        area=data.get("area", ""),
        verdict=Verdict(data["verdict"]),
        message=data.get("message", ""),
        duration_s=float(data.get("duration", 0.0)),
        transcript_ref=data.get("transcript"),
        ambiguity_ids=(ambiguity,) if ambiguity else (),
        blocked_by=tuple(data.get("blocked_by", ())),
        outcomes=outcomes,
        missing_operation=data.get("missing_operation") or None,
    )


def load_check_file(path: Path) -> tuple[dict[str, Any] | None, list[CheckRecord]]:
    """The harness's JSON-lines file: its ``kind: run`` header (None if absent) and every check
    (blank lines skipped); a bad line raises ValueError naming it."""
    header = None
    records = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if isinstance(data, dict) and data.get("kind") == "run":
                header = data
                continue
            records.append(check_record_from_line(data))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a check record: {exc!r}") from exc
    return header, records


def load_check_lines(path: Path) -> list[CheckRecord]:
    """Every check of a JSON-lines file, without its run header."""
    return load_check_file(path)[1]
