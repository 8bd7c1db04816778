"""The results data model: plain dataclasses, independent of the suite that fills them.

``reports`` sits below ``conformance`` (``reports <- conformance -> reference_peer``): nothing here
imports the suite. The suite hands requirement and profile information over as
:class:`RequirementInfo` and :class:`ProfileInfo`, and each check's outcome as a :class:`CheckRecord`;
:func:`reports.scoring.score_run` turns them into a :class:`RunResults`, which is what
``results.json`` holds (validated by ``results.schema.json``, see :mod:`reports.schema`).

A results file is self-contained: besides the checks and the profile verdicts it carries the
requirements it judged (ID, sentence, level) and, per profile, the level at which each requirement
was scored, so the HTML report, ``verify`` (which re-scores) and ``diff`` need nothing else.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1.1.0"
# Versions this reader accepts: 1.1.0 only added the optional check field blocked_by.
READABLE_SCHEMA_VERSIONS = ("1.1.0", "1.0.0")
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
    """How one requirement of one profile came out: the worst of its checks, seen at the profile's level."""

    PASS = "PASS"
    FAIL = "FAIL"  # missed, scored MUST by the profile
    WARN = "WARN"  # missed, scored SHOULD or MAY (or a check warned)
    HARNESS_ERROR = "HARNESS_ERROR"  # a check of it broke: not judged
    UNTESTED = "UNTESTED"  # no check of the profile's role cites it
    NOT_APPLICABLE = "NOT_APPLICABLE"  # every check declared not applicable
    AMBIGUOUS = "AMBIGUOUS"  # the SUT followed a reading the draft also allows


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

    @property
    def keyword(self) -> str:
        if self.level == "IMPLIED":
            return "IMPLIED"
        return f"{self.level} NOT" if self.negative else self.level

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "section": self.section,
            "text": self.text,
            "level": self.level,
            "negative": self.negative,
            "area": self.area,
            "role": self.role,
        }

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
class CheckRecord:
    """One check's outcome, as the results writer hands it over."""

    check_id: str  # the pytest node ID, stable across runs
    requirement_ids: tuple[str, ...]
    role: str  # the role the SUT played: hub | follower | any
    area: str
    verdict: Verdict
    message: str = ""
    duration_s: float = 0.0
    transcript_ref: str | None = None  # transcript JSON path, relative to the results file's folder
    ambiguity_ids: tuple[str, ...] = ()
    # Transport requirements the SUT broke, which kept the check from judging its own: the check is
    # then scored against these instead of requirement_ids (conformance.harness.attribution).
    blocked_by: tuple[str, ...] = ()

    @property
    def scored_requirement_ids(self) -> tuple[str, ...]:
        return self.blocked_by or self.requirement_ids

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
        }
        if self.blocked_by:  # omitted when empty: an unblocked check reads the same as in schema 1.0.0
            data["blocked_by"] = list(self.blocked_by)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckRecord:
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
            counts=dict(data["counts"]),
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
        return {
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
            schema_version=data["schema_version"],
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
