"""What a SUT promises before any check runs, held against what its control API says (docs/control-api.md).

* :func:`check_info_matches`: the manifest's claims (roles, domains, ``control.operations``, consent
  mode) must equal ``GET /v1/info``, and every declared role must have the operations the contract
  marks ``requiredFor`` it. A broken promise is a :class:`SutConfigurationError` (a usage error, exit 2,
  before any check), never a verdict on the SUT.
* :func:`required_operations`: per role, the operations ``x-mimi-conformance.requiredFor`` names in
  reference_peer/control/openapi.yaml (the contract, not a copy of it).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from reference_peer.control import load_openapi

from .connectors import SutConfigurationError
from .manifest import SutManifest

_METHODS = ("get", "post", "put", "patch", "delete")


@functools.cache
def required_operations() -> Mapping[str, tuple[str, ...]]:
    """role -> the operation IDs the contract says that role cannot do without, in document order."""
    required: dict[str, list[str]] = {}
    for item in load_openapi()["paths"].values():
        for method in _METHODS:
            spec = item.get(method)
            if spec is None:
                continue
            for role in spec.get("x-mimi-conformance", {}).get("requiredFor", ()):
                required.setdefault(str(role), []).append(str(spec["operationId"]))
    return {role: tuple(operations) for role, operations in required.items()}


def missing_required_operations(roles: Iterable[str], operations: Iterable[str]) -> dict[str, list[str]]:
    """role -> its requiredFor operations absent from ``operations`` (roles that lack none are left out)."""
    offered = set(operations) | {"getInfo"}  # getInfo answered, or there would be nothing to compare
    missing = {}
    for role in roles:
        absent = [op for op in required_operations().get(role, ()) if op not in offered]
        if absent:
            missing[role] = absent
    return missing


def check_required_operations(roles: Iterable[str], operations: Iterable[str], *, source: str) -> None:
    """A :class:`SutConfigurationError` naming each declared role that lacks an operation it requires."""
    missing = missing_required_operations(roles, operations)
    if not missing:
        return
    lacks = "; ".join(f"role {role} needs {', '.join(ops)}" for role, ops in missing.items())
    raise SutConfigurationError(
        f"{source} lacks control operations the declared roles require ({lacks}): implement them and list them "
        "in supportedOperations, or remove the role from the manifest's roles (docs/control-api.md, requiredFor)"
    )


def reported_consent_mode(info: Mapping[str, Any]) -> str | None:
    """The consent mode getInfo reports (``consent.defaultMode``), or None when it reports none."""
    consent = info.get("consent")
    if not isinstance(consent, Mapping):
        return None
    mode = consent.get("defaultMode")
    return str(mode) if mode is not None else None


def check_info_matches(manifest: SutManifest, info: dict[str, Any]) -> None:
    """The manifest's claims must equal the SUT's getInfo, and each declared role must have the
    operations it requires (docs/control-api.md "The manifest and /v1/info")."""
    problems = []
    if sorted(info.get("roles", [])) != sorted(manifest.roles):
        problems.append(f"roles: manifest {sorted(manifest.roles)}, getInfo {sorted(info.get('roles', []))}")
    if sorted(info.get("providerDomains", [])) != sorted(manifest.domains):
        problems.append(
            f"domains: manifest {sorted(manifest.domains)}, getInfo {sorted(info.get('providerDomains', []))}"
        )
    if manifest.control_operations is not None:
        declared = set(manifest.control_operations) | {"getInfo"}
        reported = set(info.get("supportedOperations", [])) | {"getInfo"}
        if declared != reported:
            problems.append(
                f"control.operations: only in manifest {sorted(declared - reported)}, "
                f"only in getInfo {sorted(reported - declared)}"
            )
    reported_mode = reported_consent_mode(info)
    # "none" claims nothing, and a SUT whose getInfo has no consent member reports nothing to compare.
    if manifest.consent_mode != "none" and reported_mode is not None and reported_mode != manifest.consent_mode:
        problems.append(f"consentMode: manifest {manifest.consent_mode}, getInfo consent.defaultMode {reported_mode}")
    if problems:
        raise SutConfigurationError(
            "the SUT manifest and GET /v1/info disagree: " + "; ".join(problems)
            + ": make the manifest state what the SUT runs with (docs/sut-manifest.md)"
        )
    check_required_operations(manifest.roles, info.get("supportedOperations", []),
                              source="GET /v1/info supportedOperations")


def check_manifest_operations(manifest: SutManifest) -> None:
    """Before the SUT starts: a manifest whose ``control.operations`` lacks what its roles require."""
    if manifest.control_operations is not None:
        check_required_operations(manifest.roles, manifest.control_operations, source="the manifest's control.operations")
