"""Helpers of the CLI tests: synthetic results files (for verify/diff, no run needed) and a way to
start ``mimi-conformance`` as a subprocess."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from reports.model import CheckRecord, ProfileInfo, RequirementInfo, RunResults, Verdict
from reports.scoring import score_run

DISCOVERY_CHECK = "conformance/scenarios/test_discovery.py::test_directory_is_served_as_json_naming_https_endpoints"
WELL_KNOWN = "PROTO-DIRECTORY-WELL-KNOWN"
HTTPS_URLS = "PROTO-DIRECTORY-HTTPS-URLS"
OTHER_MUST = "PROTO-TRANSPORT-MTLS"

SYNTHETIC_REQUIREMENTS = (
    RequirementInfo(WELL_KNOWN, "draft-ietf-mimi-protocol-06", "5.1", "The directory is served.", "IMPLIED",
                    area="discovery"),
    RequirementInfo(HTTPS_URLS, "draft-ietf-mimi-protocol-06", "5.1", "URLs use https.", "IMPLIED", area="discovery"),
    RequirementInfo(OTHER_MUST, "draft-ietf-mimi-protocol-06", "4.1", "Mutual TLS.", "MUST", area="transport"),
)
SYNTHETIC_PROFILE = ProfileInfo(
    name="hub-core-06",
    title="MIMI hub core",
    role="hub",
    drafts=("draft-ietf-mimi-protocol-06",),
    requirements={WELL_KNOWN: "MUST", HTTPS_URLS: "SHOULD", OTHER_MUST: "MUST"},
)


def check(check_id: str, verdict: Verdict, requirements: Sequence[str] = (WELL_KNOWN,), area: str = "discovery"):
    return CheckRecord(check_id, tuple(requirements), "any", area, verdict, message=f"{verdict} here")


def synthetic_results(checks: Sequence[CheckRecord], profile: ProfileInfo = SYNTHETIC_PROFILE) -> RunResults:
    return score_run(
        suite_version="0.1.0",
        draft_revisions=["draft-ietf-mimi-protocol-06"],
        sut_manifest={"name": "synthetic SUT", "roles": ["hub"]},
        seed=7,
        started_at="2026-11-22T23:00:00.000Z",
        ended_at="2026-11-22T23:00:01.000Z",
        checks=checks,
        profiles=[profile],
        requirements=SYNTHETIC_REQUIREMENTS,
    )


def write_results(path: Path, results: RunResults) -> Path:
    path.write_text(results.to_json() + "\n", encoding="utf-8")
    return path


def mimi_conformance(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "conformance.cli", *args],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@dataclasses.dataclass
class Invocation:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    out: Path
