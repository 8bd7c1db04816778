"""Per-requirement verdicts against SUTs that differ from the reference default (issue 14, "Done when").

Each case runs a few checks of the suite, in their own pytest process, against the reference SUT
built with an allowed variant, another consent mode, or one fault, and asserts what a reader of
draft-ietf-mimi-protocol-06 expects for each requirement: a latitude the draft leaves never makes a
requirement FAIL, and a fault makes only the requirement it breaks FAIL.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conformance.harness.manifest import REFERENCE_FEATURES, REFERENCE_HUB_TRANSFER
from conformance.selftest import ROOT_DIR, SCENARIOS_DIR, _pytest_env

MISSED = ("FAIL", "WARN", "HARNESS_ERROR")


def run_checks(tmp: Path, selection: str, *, consent_mode: str = "immediate", faults=(), variants=(),
               module: str | None = None) -> dict[str, dict[str, dict]]:
    """check ID -> requirement -> its outcome, for the checks ``selection`` (pytest -k) picks."""
    manifest = {
        "manifestVersion": 1, "name": "reference peer variant", "vendor": "mimi-conformance",
        "domains": ["sut.mimi.test"], "roles": ["hub", "follower"], "consentMode": consent_mode,
        "features": list(REFERENCE_FEATURES), "hubTransfer": dict(REFERENCE_HUB_TRANSFER), "timeouts": {"poll": 5.0},
        "connector": {"type": "reference", "faults": list(faults), "variants": list(variants)},
    }
    (tmp / "sut.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    target = SCENARIOS_DIR / module if module else SCENARIOS_DIR
    argv = [sys.executable, "-m", "pytest", str(target), "-k", selection, "-p", "no:cacheprovider",
            f"--rootdir={ROOT_DIR}", "--sut", str(tmp / "sut.yaml"), "--seed", "7",
            "--mimi-results", str(tmp / "checks.jsonl"), "--mimi-output", str(tmp / "out"), "-q"]
    done = subprocess.run(argv, cwd=ROOT_DIR, env=_pytest_env(), capture_output=True, timeout=900)  # noqa: S603
    lines = (tmp / "checks.jsonl").read_text().splitlines() if (tmp / "checks.jsonl").exists() else []
    checks = {}
    for line in lines:
        data = json.loads(line)
        if data.get("kind") == "check":
            checks[data["check_id"]] = {o["requirement"]: o for o in data["outcomes"]}
    assert checks, f"no check ran (pytest exit {done.returncode}):\n{done.stdout.decode()[-3000:]}"
    return checks


def outcomes_of(checks, requirement: str) -> list[str]:
    return [reqs[requirement]["outcome"] for reqs in checks.values() if requirement in reqs]


def assert_no_false_verdict(checks) -> None:
    bad = {check: {r: o["outcome"] + ": " + o.get("message", "") for r, o in reqs.items() if o["outcome"] in MISSED}
           for check, reqs in checks.items()}
    bad = {check: reqs for check, reqs in bad.items() if reqs}
    assert not bad, f"a permitted behaviour was judged a miss: {json.dumps(bad, indent=1)}"


def test_consent_required_by_default_is_granted_through_the_control_api(tmp_path):
    """-06 §5.2 lets a target answer noConsent; the SUT offers grantConsent, so the core key-material
    requirements are judged after a grant, never failed for wanting consent."""
    checks = run_checks(tmp_path, "lists_every_client or expired or handed_out_twice", consent_mode="consent-first",
                        module="test_keymaterial.py")
    assert_no_false_verdict(checks)
    for requirement in ("PROTO-KEYMAT-PUBLICATION-POINT", "PROTO-KEYMAT-CLIENTS-ENUMERATED"):
        assert "PASS" in outcomes_of(checks, requirement), (requirement, checks)


def test_directory_with_a_meta_object_passes_the_directory_checks(tmp_path):
    """-06 §5.1 follows ACME, whose directory has a 'meta' object: the directory checks ignore it."""
    checks = run_checks(tmp_path, "directory", variants=["directory-meta-member"], module="test_discovery.py")
    assert_no_false_verdict(checks)
    for requirement in ("PROTO-DIRECTORY-WELL-KNOWN", "PROTO-DIRECTORY-HTTPS-URLS"):
        assert outcomes_of(checks, requirement) and set(outcomes_of(checks, requirement)) == {"PASS"}, checks


def test_a_server_without_identifier_query_is_not_applicable_not_failed(tmp_path):
    """identifierQuery is no obligation (-06 §5.8): with no directory entry and a 404 on the path, its
    checks are NOT_APPLICABLE and the follower's directory still has what every peer needs."""
    checks = run_checks(tmp_path, "identifier_query or follower_directory", variants=["without-identifier-query"],
                        module="test_discovery.py")
    assert_no_false_verdict(checks)
    query_checks = {c: reqs for c, reqs in checks.items() if "identifier_query" in c}
    assert query_checks
    for reqs in query_checks.values():
        assert {o["outcome"] for o in reqs.values()} == {"NOT_APPLICABLE"}, reqs
    assert outcomes_of(checks, "PROTO-DIRECTORY-FOLLOWER-ENDPOINTS") == ["PASS"]


def test_an_expired_key_package_fails_no_expired_only(tmp_path):
    """-06 §5.2: 'The target provider MUST NOT provide expired keying material'."""
    checks = run_checks(tmp_path, "expired", faults=["keymat-serve-expired"], module="test_keymaterial.py")
    assert "FAIL" in outcomes_of(checks, "PROTO-KEYMAT-NO-EXPIRED"), checks
    for check, reqs in checks.items():
        others = {r: o["outcome"] for r, o in reqs.items() if r != "PROTO-KEYMAT-NO-EXPIRED"}
        assert not set(others.values()) & {"FAIL", "HARNESS_ERROR"}, (check, others)


def test_one_broken_requirement_of_a_multi_requirement_check_is_charged_alone(tmp_path):
    """A From header whose local part does not contain 'mimi' breaks §4.1's local-part rule only: the same
    check's other requirements (providers identified, Host naming the target, addr-spec, mutual TLS, the
    certificate naming the source) are not charged with it (before per-requirement outcomes, all were FAIL)."""
    checks = run_checks(tmp_path, "authenticated_as_its_domain", faults=["outgoing-from-localpart"], module="test_transport.py")
    assert len(checks) == 2  # the SUT as hub and as follower
    for reqs in checks.values():
        assert len(reqs) >= 5
        assert reqs["PROTO-TRANSPORT-FROM-LOCALPART-MIMI"]["outcome"] == "FAIL", reqs
        others = {r: o["outcome"] for r, o in reqs.items() if r != "PROTO-TRANSPORT-FROM-LOCALPART-MIMI"}
        assert set(others.values()) <= {"PASS", "NOT_REACHED"}, others


def test_bodies_on_consent_answers_are_not_judged(tmp_path):
    """-06 §5.7 names only the status of consent answers; a body beside the 201 is no miss."""
    checks = run_checks(tmp_path, "answered_201", variants=["consent-request-answer-with-body",
                                                             "consent-update-answer-with-body"])
    assert_no_false_verdict(checks)
    for requirement in ("PROTO-CONSENT-REQUEST-RESPONSE", "PROTO-CONSENT-UPDATE-RESPONSE"):
        assert "PASS" in outcomes_of(checks, requirement), (requirement, checks)


@pytest.mark.parametrize("variant", ["directory-meta-member", "without-identifier-query",
                                     "consent-request-answer-with-body", "consent-update-answer-with-body"])
def test_variants_are_listed_with_what_permits_them(variant):
    from reference_peer.faults import REGISTRY, VARIANTS

    assert variant in VARIANTS and variant not in REGISTRY
    assert "-06" in VARIANTS[variant].permitted_by or "RFC" in VARIANTS[variant].permitted_by
