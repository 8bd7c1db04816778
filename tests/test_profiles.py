"""Profiles: the shipped ones validate and fit the catalogue; the loader rejects unknown IDs, role
mismatches, untestable requirements, undeclared drafts and schema violations."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from conformance.catalogue import Catalogue, load_catalogue
from conformance.profiles import (
    SOURCE_TREE_PROFILES_DIR,
    ProfileError,
    load_profile_schema,
    load_profiles,
    role_fits,
)

TEST_DRAFT = "draft-test-06"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(scope="module")
def profiles(catalogue):
    return load_profiles(catalogue)


@pytest.fixture()
def small_catalogue(tmp_path) -> Catalogue:
    """A three-requirement catalogue: a hub MUST, a follower SHOULD, an untestable any MAY."""
    directory = tmp_path / "requirements"
    directory.mkdir()
    (directory / f"{TEST_DRAFT}.yaml").write_text(
        textwrap.dedent(
            f"""\
            document:
              id: {TEST_DRAFT}
              title: A test document
              revision: "06"
              kind: ietf-draft
              id_prefix: PROTO
              source: {{repo: example/repo, path: draft.txt, commit: 0123abc}}
              date: null
            requirements:
              - {{id: PROTO-TEST-HUB, section: "1", text: The hub MUST do this thing., level: MUST, area: fanout,
                 role: hub, introduced: "06", removed: null, testable: true, how: Observe the hub doing it.}}
              - {{id: PROTO-TEST-FOLLOWER, section: "2", text: A follower SHOULD do that., level: SHOULD,
                 area: fanout, role: follower, introduced: "06", removed: null, testable: true,
                 how: Observe the follower doing it.}}
              - {{id: PROTO-TEST-PERMISSION, section: "3", text: Any server MAY do something else., level: MAY,
                 area: transport, role: any, introduced: "06", removed: null, testable: false,
                 how: A permission cannot be failed.}}
            """
        ),
        encoding="utf-8",
    )
    return load_catalogue(directory)


def write_profile(
    directory: Path, name: str, role: str, requirements: dict[str, str], drafts: tuple[str, ...] = (TEST_DRAFT,)
) -> Path:
    directory.mkdir(exist_ok=True)
    lines = [
        f"name: {name}",
        "title: A test profile",
        "description: A profile written by the tests.",
        "drafts: [" + ", ".join(drafts) + "]",
        f"role: {role}",
        "requirements:",
    ] + [f"  {req_id}: {level}" for req_id, level in requirements.items()]
    path = directory / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- the shipped profiles --------------------------------------------------------------------------


def test_core_profiles_exist_with_their_roles(profiles):
    assert profiles["hub-core-06"].role == "hub"
    assert profiles["follower-core-06"].role == "follower"
    for name in ("hub-core-06", "follower-core-06"):
        assert "draft-ietf-mimi-protocol-06" in profiles[name].drafts
        assert len(profiles[name].requirements) >= 50


def test_every_profile_requirement_exists_fits_the_role_and_is_testable(profiles, catalogue):
    for profile in profiles.values():
        for req_id, scored in profile.requirements.items():
            req = catalogue.requirements[req_id]
            assert role_fits(profile.role, req.role), (profile.name, req_id)
            assert req.testable and req.source in profile.drafts, (profile.name, req_id)
            assert scored in ("MUST", "SHOULD", "MAY")


def test_core_profiles_keep_the_drafts_2119_levels(profiles, catalogue):
    for name in ("hub-core-06", "follower-core-06"):
        for req_id, scored in profiles[name].requirements.items():
            level = catalogue.requirements[req_id].level
            if level != "IMPLIED":
                assert scored == level, (name, req_id, level, scored)


def test_core_profiles_cover_the_central_musts(profiles):
    hub = profiles["hub-core-06"].requirements
    follower = profiles["follower-core-06"].requirements
    for req_id in (
        "PROTO-TRANSPORT-MTLS",
        "PROTO-REMOVAL-BLOCK-APP-SEND",
        "PROTO-REMOVAL-BLOCK-COMMITS",
        "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS",
        "PROTO-FANOUT-MOREPROPOSALS-SAME",
        "PROTO-EXTSENDERS-PRESENT",
    ):
        assert hub.get(req_id) == "MUST", req_id
    for req_id in (
        "PROTO-TRANSPORT-MTLS",
        "PROTO-FANOUT-DUP-NOTIFY-201",
        "PROTO-KEYMAT-NO-REUSE",
        "PROTO-KEYMAT-VIA-HUB",
    ):
        assert follower.get(req_id) == "MUST", req_id
    assert "PROTO-FANOUT-DUP-NOTIFY-201" not in hub  # a follower-only requirement


def test_profile_files_are_named_after_their_profile(profiles):
    for profile in profiles.values():
        assert profile.file == SOURCE_TREE_PROFILES_DIR / f"{profile.name}.yaml"


def test_scored_levels_are_counted(profiles):
    counts = Counter(profiles["hub-core-06"].requirements.values())
    assert counts["MUST"] == len(profiles["hub-core-06"].scored_at("MUST")) > 0


# --- the loader rejects bad profiles -----------------------------------------------------------------


def test_loader_accepts_a_valid_profile(tmp_path, small_catalogue):
    write_profile(tmp_path / "p", "test-hub", "hub", {"PROTO-TEST-HUB": "MUST"})
    loaded = load_profiles(small_catalogue, tmp_path / "p")
    assert loaded["test-hub"].requirements == {"PROTO-TEST-HUB": "MUST"}


def test_loader_rejects_an_unknown_requirement_id(tmp_path, small_catalogue):
    write_profile(tmp_path / "p", "test-hub", "hub", {"PROTO-TEST-HUB": "MUST", "PROTO-TEST-NOWHERE": "MUST"})
    with pytest.raises(ProfileError, match=r"test-hub\.yaml: requirement PROTO-TEST-NOWHERE: unknown requirement"):
        load_profiles(small_catalogue, tmp_path / "p")


def test_loader_rejects_a_requirement_of_another_role(tmp_path, small_catalogue):
    write_profile(tmp_path / "p", "test-hub", "hub", {"PROTO-TEST-FOLLOWER": "SHOULD"})
    with pytest.raises(ProfileError, match=r"PROTO-TEST-FOLLOWER: requirement role 'follower' does not fit .*'hub'"):
        load_profiles(small_catalogue, tmp_path / "p")


def test_an_any_profile_takes_only_role_neutral_requirements(tmp_path, small_catalogue):
    write_profile(tmp_path / "p", "test-any", "any", {"PROTO-TEST-HUB": "MUST"})
    with pytest.raises(ProfileError, match="does not fit"):
        load_profiles(small_catalogue, tmp_path / "p")
    assert role_fits("hub", "any") and role_fits("follower", "any") and role_fits("any", "any")
    assert not role_fits("any", "hub") and not role_fits("follower", "hub")


def test_loader_rejects_an_untestable_requirement(tmp_path, small_catalogue):
    write_profile(tmp_path / "p", "test-any", "any", {"PROTO-TEST-PERMISSION": "MAY"})
    with pytest.raises(ProfileError, match=r"PROTO-TEST-PERMISSION: marked testable: false"):
        load_profiles(small_catalogue, tmp_path / "p")


def test_loader_rejects_a_requirement_from_an_undeclared_draft(tmp_path, catalogue):
    write_profile(
        tmp_path / "p", "test-hub", "hub", {"POLICY-BASE-MAX-USERS": "MUST"}, drafts=("draft-ietf-mimi-protocol-06",)
    )
    with pytest.raises(ProfileError, match=r"POLICY-BASE-MAX-USERS: comes from draft-ietf-mimi-room-policy-04"):
        load_profiles(catalogue, tmp_path / "p")


def test_loader_rejects_a_draft_missing_from_the_catalogue(tmp_path, small_catalogue):
    write_profile(tmp_path / "p", "test-hub", "hub", {"PROTO-TEST-HUB": "MUST"}, drafts=(TEST_DRAFT, "draft-x-01"))
    with pytest.raises(ProfileError, match=r"draft 'draft-x-01' is not in the requirement catalogue"):
        load_profiles(small_catalogue, tmp_path / "p")


def test_loader_rejects_an_unscorable_level(tmp_path, small_catalogue):
    write_profile(tmp_path / "p", "test-hub", "hub", {"PROTO-TEST-HUB": "IMPLIED"})
    with pytest.raises(ProfileError, match=r"test-hub\.yaml: does not match profile\.schema\.json"):
        load_profiles(small_catalogue, tmp_path / "p")


def test_loader_rejects_a_profile_not_named_after_its_file(tmp_path, small_catalogue):
    path = write_profile(tmp_path / "p", "test-hub", "hub", {"PROTO-TEST-HUB": "MUST"})
    path.rename(path.with_name("other-name.yaml"))
    with pytest.raises(ProfileError, match=r"other-name\.yaml: profile name 'test-hub' does not match"):
        load_profiles(small_catalogue, tmp_path / "p")


def test_loader_rejects_a_requirement_listed_twice(tmp_path, small_catalogue):
    path = write_profile(tmp_path / "p", "test-hub", "hub", {"PROTO-TEST-HUB": "MUST"})
    path.write_text(path.read_text(encoding="utf-8") + "  PROTO-TEST-HUB: SHOULD\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"duplicate key 'PROTO-TEST-HUB'"):
        load_profiles(small_catalogue, tmp_path / "p")


def test_loader_rejects_an_empty_directory(tmp_path, small_catalogue):
    (tmp_path / "p").mkdir()
    with pytest.raises(ProfileError, match="no profiles"):
        load_profiles(small_catalogue, tmp_path / "p")


@pytest.mark.parametrize(
    "bad",
    [
        {"role": "client"},
        {"drafts": []},
        {"requirements": {}},
        {"requirements": {"PROTO-5-3": "MUST"}},
        {"name": "Hub Core"},
        {"extra": True},
    ],
)
def test_profile_schema_rejects_bad_profiles(bad):
    validator = Draft202012Validator(load_profile_schema())
    good = {
        "name": "p",
        "title": "A profile",
        "description": "A profile for the tests.",
        "drafts": [TEST_DRAFT],
        "role": "hub",
        "requirements": {"PROTO-TEST-HUB": "MUST"},
    }
    assert list(validator.iter_errors(good)) == []
    assert list(validator.iter_errors({**good, **bad})), f"schema accepted {bad}"


def test_extension_profiles_apply_only_to_suts_declaring_their_mode_or_feature() -> None:
    from conformance.catalogue import load_catalogue
    from conformance.profiles import load_profiles

    profiles = load_profiles(load_catalogue())
    roles = ("hub", "follower")

    def applicable(consent_mode: str, features: tuple[str, ...]) -> set[str]:
        return {name for name, p in profiles.items() if p.applies_to(roles, consent_mode, features)}

    core = {"hub-core-06", "follower-core-06"}
    assert applicable("none", ()) == core
    assert applicable("quarantine", ()) == core | {"consent-quarantine"}
    assert applicable("consent-first", ("hubTransfer",)) == core | {
        "consent-first",
        "portability-experimental",
        "portability-experimental-follower",
    }
    assert "multi-device" not in {n for n, p in profiles.items() if p.applies_to(("follower",), "none", ("multiDevice",))}


def test_a_profile_requiring_an_unknown_feature_is_rejected(tmp_path) -> None:
    import shutil

    import pytest

    from conformance.catalogue import load_catalogue
    from conformance.profiles import ProfileError, load_profiles

    source = Path(__file__).resolve().parents[1] / "profiles"
    shutil.copy(source / "profile.schema.json", tmp_path)
    text = (source / "multi-device.yaml").read_text(encoding="utf-8").replace("[multiDevice]", "[teleportation]")
    (tmp_path / "multi-device.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError, match="teleportation"):
        load_profiles(load_catalogue(), tmp_path)
