"""The coverage manifest: every profile requirement has checks or a stated exclusion, and the
checked-in profiles/coverage/coverage.yaml is what the checks and exclusions generate."""

from __future__ import annotations

from types import SimpleNamespace

from conformance.catalogue import load_catalogue
from conformance.coverage import MANIFEST_FILE, build_manifest, load_exclusions, problems, render_manifest
from conformance.profiles import Profile, load_profiles
from conformance.selftest import inventory


def test_checked_in_manifest_is_current_and_complete() -> None:
    exclusions = load_exclusions()
    manifest = build_manifest(inventory(), load_profiles(load_catalogue()), exclusions)
    assert not problems(manifest, exclusions)
    assert MANIFEST_FILE.read_text(encoding="utf-8") == render_manifest(manifest), (
        "profiles/coverage/coverage.yaml is stale: run `mimi-conformance coverage --write`"
    )


def _profile(role: str, *requirements: str) -> Profile:
    return Profile("p", "P", "", ["draft"], role, {r: "MUST" for r in requirements})


def test_only_checks_whose_role_fits_the_profile_count() -> None:
    checks = [SimpleNamespace(id="a[sut-hub]", requirements=("R1",), role="hub"),
              SimpleNamespace(id="b", requirements=("R2",), role="any")]
    manifest = build_manifest(checks, {"p": _profile("follower", "R1", "R2", "R3")}, {"R3": "why not"})
    assert manifest["p"]["R1"] == {"missing": "no check judges it and exclusions.yaml gives no reason"}
    assert manifest["p"]["R2"] == {"checks": ["b"]}
    assert manifest["p"]["R3"] == {"excluded": "why not"}
    assert problems(manifest, {"R3": "why not"}) == ["p: R1 has no check and no exclusion"]


def test_an_exclusion_of_a_judged_requirement_is_stale() -> None:
    checks = [SimpleNamespace(id="b", requirements=("R2",), role="any")]
    manifest = build_manifest(checks, {"p": _profile("hub", "R2")}, {"R2": "old reason"})
    assert problems(manifest, {"R2": "old reason"}) == [
        "exclusions.yaml: R2 is judged by checks in every profile naming it: remove it"
    ]
