"""Requirement profiles: which requirements are scored, for which role, at which level.

Profiles live in the top-level ``profiles/`` folder of the source tree, one ``<name>.yaml`` per profile,
validated against ``profiles/profile.schema.json``. A wheel ships that folder as the package
``conformance.bundled_profiles`` (pyproject.toml), which is read when present: see :data:`PROFILES_DIR`.
On top of the schema, :func:`load_profiles` checks every profile against the catalogue:

- every requirement ID exists in the catalogue;
- its source document is one of the profile's ``drafts``, and every listed draft is in the catalogue;
- its role fits the profile's role (a hub profile takes ``hub`` and ``any`` requirements, a follower
  profile ``follower`` and ``any``, an ``any`` profile only ``any``);
- it is testable (a requirement no check can fail must not be scored) and not removed.

Any violation raises :class:`ProfileError` naming the profile file and the requirement.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from .catalogue import Catalogue, CatalogueError, load_yaml
from .harness.manifest import FEATURES

SOURCE_TREE_PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
# Only a wheel install has this folder (an editable install maps the package onto the source tree's
# profiles/ without creating it), so a checkout always reads and writes the source tree's profiles.
PACKAGED_PROFILES_DIR = Path(__file__).resolve().parent / "bundled_profiles"
PROFILES_DIR = PACKAGED_PROFILES_DIR if PACKAGED_PROFILES_DIR.is_dir() else SOURCE_TREE_PROFILES_DIR
PROFILE_SCHEMA_FILE_NAME = "profile.schema.json"
SCORED_LEVELS = ("MUST", "SHOULD", "MAY")


class ProfileError(ValueError):
    """A profile is invalid or does not fit the catalogue; the message names the file and the entry."""


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    description: str
    drafts: list[str]
    role: str  # hub | follower | any
    requirements: dict[str, str]  # requirement ID -> scored level (MUST | SHOULD | MAY)
    file: Path | None = field(default=None, compare=False)
    # What a SUT must declare for the profile to apply by default: {"consentMode": ..., "features": [...]}.
    requires: dict[str, Any] = field(default_factory=dict)

    def applies_to(self, roles: Sequence[str], consent_mode: str, features: Sequence[str]) -> bool:
        """Whether a SUT declaring these roles, this consent mode and these features is scored by it."""
        if self.role != "any" and self.role not in roles:
            return False
        if "consentMode" in self.requires and self.requires["consentMode"] != consent_mode:
            return False
        return all(feature in features for feature in self.requires.get("features", ()))

    def scored_at(self, level: str) -> list[str]:
        return [req_id for req_id, scored in self.requirements.items() if scored == level]


def role_fits(profile_role: str, requirement_role: str) -> bool:
    """Whether a requirement of ``requirement_role`` may be scored in a profile for ``profile_role``."""
    return requirement_role == "any" or requirement_role == profile_role


def load_profile_schema() -> dict[str, Any]:
    with (PROFILES_DIR / PROFILE_SCHEMA_FILE_NAME).open(encoding="utf-8") as handle:
        schema = json.load(handle)
    Draft202012Validator.check_schema(schema)
    return schema


def _check_against_catalogue(profile: Profile, catalogue: Catalogue, file_name: str) -> None:
    for draft in profile.drafts:
        if draft not in catalogue.documents:
            known = ", ".join(sorted(catalogue.documents))
            raise ProfileError(f"{file_name}: draft {draft!r} is not in the requirement catalogue (known: {known})")
    for req_id in profile.requirements:
        label = f"{file_name}: requirement {req_id}"
        req = catalogue.requirements.get(req_id)
        if req is None:
            raise ProfileError(f"{label}: unknown requirement ID (not in the catalogue)")
        if req.source not in profile.drafts:
            raise ProfileError(f"{label}: comes from {req.source}, which is not in the profile's drafts")
        if not role_fits(profile.role, req.role):
            raise ProfileError(f"{label}: requirement role {req.role!r} does not fit profile role {profile.role!r}")
        if not req.testable:
            raise ProfileError(f"{label}: marked testable: false, so no check could ever fail it")
        if req.removed is not None:
            raise ProfileError(f"{label}: removed in revision {req.removed} of {req.source}")


def load_profiles(catalogue: Catalogue, directory: Path | None = None) -> dict[str, Profile]:
    """Load, validate and cross-check every ``*.yaml`` profile; returns them by name."""
    directory = Path(directory) if directory is not None else PROFILES_DIR
    if not directory.is_dir():
        raise ProfileError(
            f"profiles directory not found: {directory} (a checkout reads profiles/, a wheel install "
            "conformance/bundled_profiles/; reinstall mimi-conformance)"
        )
    validator = Draft202012Validator(load_profile_schema())
    profiles: dict[str, Profile] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            data = load_yaml(path)
        except CatalogueError as exc:
            raise ProfileError(str(exc)) from exc
        errors = sorted(validator.iter_errors(data), key=lambda err: list(err.absolute_path))
        if errors:
            lines = [f"  - {'/'.join(map(str, err.absolute_path)) or '(top level)'}: {err.message}" for err in errors]
            raise ProfileError(f"{path.name}: does not match {PROFILE_SCHEMA_FILE_NAME}:\n" + "\n".join(lines))
        if data["name"] != path.stem:
            raise ProfileError(f"{path.name}: profile name {data['name']!r} does not match the file name")
        profile = Profile(
            name=data["name"],
            title=data["title"],
            description=" ".join(data["description"].split()),
            drafts=list(data["drafts"]),
            role=data["role"],
            requirements=dict(data["requirements"]),
            file=path,
            requires=dict(data.get("requires", {})),
        )
        unknown_features = set(profile.requires.get("features", ())) - set(FEATURES)
        if unknown_features:
            raise ProfileError(f"{path.name}: requires.features: unknown feature(s) {sorted(unknown_features)}")
        _check_against_catalogue(profile, catalogue, path.name)
        profiles[profile.name] = profile
    if not profiles:
        raise ProfileError(f"no profiles (*.yaml) in {directory}")
    return profiles
