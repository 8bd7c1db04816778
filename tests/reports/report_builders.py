"""Synthetic results for the reports tests: a small catalogue, two profiles, and a check builder."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from reports.model import (
    CheckRecord,
    ProfileInfo,
    RequirementInfo,
    RequirementJudgement,
    RequirementVerdict,
    RunResults,
    Verdict,
)
from reports.scoring import score_run

REQUIREMENTS = (
    RequirementInfo(
        id="PROTO-TRANSPORT-MTLS",
        source="draft-ietf-mimi-protocol-06",
        section="4.1",
        text="Servers MUST authenticate each other with mutually-authenticated TLS.",
        level="MUST",
        area="transport",
        role="any",
    ),
    RequirementInfo(
        id="PROTO-DIRECTORY-HTTPS-URLS",
        source="draft-ietf-mimi-protocol-06",
        section="4.2",
        text="Endpoint URLs in the directory SHOULD use the https scheme.",
        level="SHOULD",
        area="discovery",
        role="any",
    ),
    RequirementInfo(
        id="PROTO-KEYMAT-NO-REUSE",
        source="draft-ietf-mimi-protocol-06",
        section="5.3",
        text="A KeyPackage MUST NOT be returned twice <unless> it is a last resort & flagged.",
        level="MUST",
        negative=True,
        area="keymaterial",
        role="any",
    ),
    RequirementInfo(
        id="PROTO-FANOUT-NOTIFY-201",
        source="draft-ietf-mimi-protocol-06",
        section="5.8",
        text="The follower MUST answer a notify with 201 Created.",
        level="MUST",
        area="fanout",
        role="follower",
    ),
    RequirementInfo(
        id="PROTO-IDQUERY-PARTIALNAME",
        source="draft-ietf-mimi-protocol-06",
        section="5.10",
        text="A provider MAY support partial name search.",
        level="MAY",
        area="discovery",
        role="any",
    ),
    RequirementInfo(
        id="PROTO-TRANSPORT-HTTPS-ONLY",
        source="draft-ietf-mimi-protocol-06",
        section="4.1",
        text="MIMI servers exchange MIMI requests only over HTTPS (TLS), never over cleartext HTTP.",
        level="IMPLIED",
        area="transport",
        role="any",
        derived_from="MIMI servers communicate using HTTPS. [...] The MIMI transport is based on HTTPS over "
        "mutually-authenticated TLS.",
    ),
)

HUB_PROFILE = ProfileInfo(
    name="hub-core-06",
    title="MIMI hub core (protocol-06)",
    role="hub",
    drafts=("draft-ietf-mimi-protocol-06",),
    requirements={
        "PROTO-TRANSPORT-MTLS": "MUST",
        "PROTO-DIRECTORY-HTTPS-URLS": "SHOULD",
        "PROTO-KEYMAT-NO-REUSE": "MUST",
    },
)

FOLLOWER_PROFILE = ProfileInfo(
    name="follower-core-06",
    title="MIMI follower core (protocol-06)",
    role="follower",
    drafts=("draft-ietf-mimi-protocol-06",),
    requirements={"PROTO-TRANSPORT-MTLS": "MUST", "PROTO-FANOUT-NOTIFY-201": "MUST"},
)

MANIFEST = {
    "manifestVersion": 1,
    "name": "Example Server",
    "vendor": "Example Inc.",
    "version": "1.2.3",
    "domains": ["sut.example"],
    "roles": ["hub", "follower"],
    "connector": {"kind": "reference"},
}


def check(
    name: str,
    verdict: Verdict | str,
    requirements: Sequence[str],
    *,
    role: str = "hub",
    area: str = "transport",
    message: str = "",
    duration_s: float = 0.25,
    transcript_ref: str | None = None,
    ambiguity_ids: Sequence[str] = (),
    outcomes: Sequence[RequirementJudgement] = (),
    blocked_by: Sequence[str] = (),
) -> CheckRecord:
    """A check; without ``outcomes`` every requirement gets the verdict (as a 1.x file reads)."""
    verdict = Verdict(verdict)
    if verdict is Verdict.AMBIGUOUS and not ambiguity_ids:
        ambiguity_ids = ("AMB-EXAMPLE",)
    return CheckRecord(
        check_id=f"conformance/scenarios/test_{area.replace('-', '_')}.py::{name}",
        requirement_ids=tuple(requirements),
        role=role,
        area=area,
        verdict=verdict,
        message=message,
        duration_s=duration_s,
        transcript_ref=transcript_ref,
        ambiguity_ids=tuple(ambiguity_ids),
        outcomes=tuple(outcomes),
        blocked_by=tuple(blocked_by),
    )


def judged(requirement: str, outcome: str, message: str = "", *, evidence: Sequence[str] = (),
           level: str | None = None, ambiguity: str | None = None) -> RequirementJudgement:  # fmt: skip
    """One requirement's outcome in a check."""
    return RequirementJudgement(requirement, RequirementVerdict(outcome), message, level, tuple(evidence), ambiguity)


def v1_document(document: dict, version: str = "1.1.0") -> dict:
    """``document`` (a 2.0.0 results dict) as schema ``version`` (1.x) wrote it: no outcomes, no
    not-reached count, no derived_from. Only meaningful for checks whose outcomes all equal their verdict."""
    document["schema_version"] = version
    document["$schema"] = document["$schema"].rsplit("/", 1)[0] + "/" + version
    for item in document["checks"]:
        del item["outcomes"]
        if version == "1.0.0":
            item.pop("blocked_by", None)
    for profile in document["profiles"]:
        del profile["counts"]["requirements_not_reached"]
    for req in document["requirements"]:
        req.pop("derived_from", None)
    return document


def hub_checks(**verdicts: str) -> list[CheckRecord]:
    """One hub check per hub-profile requirement, PASS unless overridden: mtls=, https=, reuse=."""
    return [
        check("test_mtls_required", verdicts.get("mtls", "PASS"), ["PROTO-TRANSPORT-MTLS"]),
        check("test_directory_https", verdicts.get("https", "PASS"), ["PROTO-DIRECTORY-HTTPS-URLS"], area="discovery"),
        check(
            "test_keypackage_not_reused", verdicts.get("reuse", "PASS"), ["PROTO-KEYMAT-NO-REUSE"], area="keymaterial"
        ),
    ]


def results(
    checks: Sequence[CheckRecord],
    profiles: Sequence[ProfileInfo] = (HUB_PROFILE,),
    *,
    manifest: Mapping[str, object] = MANIFEST,
) -> RunResults:
    return score_run(
        suite_version="0.1.0",
        draft_revisions=["draft-ietf-mimi-protocol-06"],
        sut_manifest=manifest,
        seed=1234,
        started_at="2026-11-22T23:00:00Z",
        ended_at="2026-11-22T23:01:30.5Z",
        checks=checks,
        profiles=profiles,
        requirements=REQUIREMENTS,
    )


def mixed_results() -> RunResults:
    """A run with every check verdict, both profiles, and one transcript reference."""
    checks = [
        check(
            "test_mtls_required",
            "PASS",
            ["PROTO-TRANSPORT-MTLS"],
            transcript_ref="transcripts/mtls.json",
            message="client certificate required",
        ),
        check(
            "test_directory_https",
            "WARN",
            ["PROTO-DIRECTORY-HTTPS-URLS"],
            area="discovery",
            message="directory lists http://sut.example/notify",
        ),
        check(
            "test_keypackage_not_reused",
            "FAIL",
            ["PROTO-KEYMAT-NO-REUSE"],
            area="keymaterial",
            message="KeyPackage <kp-1> returned twice & not last resort",
            transcript_ref="transcripts/reuse.json",
        ),
        check(
            "test_notify_201",
            "HARNESS_ERROR",
            ["PROTO-FANOUT-NOTIFY-201"],
            role="follower",
            area="fanout",
            message="reference hub crashed: OSError",
        ),
        check(
            "test_partial_name",
            "NOT_APPLICABLE",
            ["PROTO-IDQUERY-PARTIALNAME"],
            area="discovery",
            message="SUT declares no partial name search",
        ),
        check(
            "test_mtls_as_follower",
            "AMBIGUOUS",
            ["PROTO-TRANSPORT-MTLS"],
            role="follower",
            message="SAN read through the -06 alternative layout",
            ambiguity_ids=["AMB-CERT-SAN"],
        ),
    ]
    return results(checks, (HUB_PROFILE, FOLLOWER_PROFILE))


def write_transcript(directory: Path, ref: str) -> Path:
    """A transcript file in the recorder's format (see reports/html.py) with one exchange."""
    path = directory / ref
    path.parent.mkdir(parents=True, exist_ok=True)
    body = bytes([0x00, 0x01, 0x02]) + b"<mimi & co>" + bytes(range(0xF0, 0xF6))
    transcript = {
        "check_id": "conformance/scenarios/test_transport.py::test_mtls_required",
        "exchanges": [
            {
                "label": "identifierQuery to the SUT",
                "from": "hub.reference.example",
                "to": "sut.example",
                "started_at": "2026-11-22T23:00:01Z",
                "request": {
                    "method": "POST",
                    "url": "https://sut.example/v1/identifierQuery/mimi%3A%2F%2Fsut.example",
                    "headers": [["From", "mimi@hub.reference.example"], ["Content-Type", "application/mimi"]],
                    "body_hex": body.hex(),
                    "decoded": {"struct": "IdentifierRequest", "searchIdentifiers": ["<script>alert(1)</script>"]},
                },
                "response": {
                    "status": 403,
                    "headers": [["Content-Length", "0"]],
                    "body_hex": "",
                    "decoded": None,
                },
            }
        ],
    }
    path.write_text(json.dumps(transcript), encoding="utf-8")
    return path
