"""The SUT manifest: what a system under test is, claims and needs (docs/sut-manifest.md).

A manifest is YAML or JSON, validated against ``sut-manifest.schema.json`` (JSON Schema 2020-12).
Every error names the field (``connector.argv: ...``). :func:`load_manifest` returns a
:class:`SutManifest` with defaults filled in, relative paths resolved against the manifest's
folder, and the SHA-256 of the manifest's canonical JSON (recorded in every result).

``--sut reference`` (the default) is :func:`reference_manifest`: the embedded reference peer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).resolve().parent / "sut-manifest.schema.json"
REFERENCE_SUT_DOMAIN = "sut.mimi.test"
DEFAULT_REFERENCE_ADDRESS = "127.0.0.1:7443"
CONNECTOR_TYPES = ("reference", "url", "command", "image")
FEATURES = (
    "proxyDownload",
    "ohttp",
    "franking",
    "minimalMetadataRooms",
    "identifierQuery",
    "reportAbuse",
    "hubTransfer",
    "multiDevice",
    "semiPrivateMessage",
)


class ManifestError(ValueError):
    """The manifest is unreadable or invalid; the message names the file and the field."""


@dataclasses.dataclass(frozen=True)
class Timeouts:
    startup: float = 60.0  # until the SUT answers GET /v1/info (command, image, reference)
    request: float = 10.0  # one MIMI exchange with the SUT
    control: float = 10.0  # one control API call
    poll: float = 10.0  # default deadline for polls waiting on the SUT
    shutdown: float = 10.0  # SIGTERM -> SIGKILL grace


@dataclasses.dataclass(frozen=True)
class MimiEndpoint:
    """Where to reach one provider domain: ``base_url`` names the domain; ``connect`` overrides DNS."""

    domain: str
    base_url: str  # https://<domain>[:port]
    connect: str | None = None  # an address to connect to instead of resolving the domain


@dataclasses.dataclass(frozen=True)
class SutManifest:
    name: str
    domains: tuple[str, ...]
    roles: tuple[str, ...]
    connector: Mapping[str, Any]
    vendor: str | None = None
    version: str | None = None
    endpoints: Mapping[str, MimiEndpoint] = dataclasses.field(default_factory=dict)
    ca: Path | None = None
    consent_mode: str = "none"
    features: tuple[str, ...] = ()
    hub_transfer: Mapping[str, Any] | None = None  # the hubTransfer block (hub-transfer extension section 17)
    control_url: str | None = None
    control_token_env: str | None = None
    control_ca: Path | None = None
    control_operations: tuple[str, ...] | None = None
    timeouts: Timeouts = dataclasses.field(default_factory=Timeouts)
    suite_pki: Path | None = None  # suite.pki: a suite PKI folder to reuse (None: one per run)
    reference_address: str = DEFAULT_REFERENCE_ADDRESS  # suite.referenceAddress: host:port of the gateway
    source: Path | None = None
    sha256: str = ""
    document: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def connector_type(self) -> str:
        return str(self.connector["type"])

    def control_token(self) -> str | None:
        """The bearer token from the environment variable the manifest names (never stored in it)."""
        if not self.control_token_env:
            return None
        token = os.environ.get(self.control_token_env)
        if not token:
            raise ManifestError(f"control.tokenEnv: environment variable {self.control_token_env} is not set")
        return token


def canonical_sha256(document: Any) -> str:
    """SHA-256 of the canonical JSON form (sorted keys, no whitespace, UTF-8)."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def load_schema() -> dict[str, Any]:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return schema


def _field(path: Any) -> str:
    parts = list(path)
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def validate_document(document: Any, origin: str = "manifest") -> None:
    """Raise :class:`ManifestError` listing every schema violation with the field it concerns."""
    schema = load_schema()
    errors = []
    connector = document.get("connector") if isinstance(document, dict) else None
    branch = None
    if isinstance(connector, dict) and connector.get("type") in CONNECTOR_TYPES:
        branch = schema["properties"]["connector"]["oneOf"][CONNECTOR_TYPES.index(connector["type"])]
        # Validated on its own, the branch still needs the schema's $defs (mimiPort: {"$ref": "#/$defs/port"}).
        branch = {**branch, "$defs": schema.get("$defs", {})}
    for err in Draft202012Validator(schema).iter_errors(document):
        path = list(err.absolute_path)
        if branch is not None and path == ["connector"] and err.validator == "oneOf":
            continue  # replaced by the errors of the branch the manifest chose (clearer messages)
        errors.append((path, err.message))
    if branch is not None:
        for err in Draft202012Validator(branch).iter_errors(connector):
            errors.append((["connector", *err.absolute_path], err.message))
    elif isinstance(connector, dict):
        errors = [e for e in errors if e[0] != ["connector"]]
        errors.append(
            (["connector", "type"], f"expected one of {list(CONNECTOR_TYPES)}, got {connector.get('type')!r}")
        )
    if errors:
        errors.sort(key=lambda e: [str(p) for p in e[0]])
        lines = "\n".join(f"  - {_field(path)}: {message}" for path, message in errors)
        raise ManifestError(f"{origin}: invalid SUT manifest:\n{lines}")


def _resolve(base: Path, value: str | None, where: str) -> Path | None:
    if value is None:
        return None
    path = Path(value) if os.path.isabs(value) else base / value
    if not path.is_file():
        raise ManifestError(f"{where}: file not found: {path}")
    return path


def _endpoint(domain: str, value: str) -> MimiEndpoint:
    if value.startswith("https://"):
        return MimiEndpoint(domain, value.rstrip("/"))
    host, _, port = value.rpartition(":")
    return MimiEndpoint(domain, f"https://{domain}:{port}", host.strip("[]"))


def parse_manifest(document: Any, *, base_dir: Path | str = ".", origin: str = "manifest") -> SutManifest:
    validate_document(document, origin)
    base = Path(base_dir)
    domains = tuple(document["domains"])
    mimi = document.get("mimi")
    endpoints: dict[str, MimiEndpoint] = {}
    ca = None
    if mimi is not None:
        for domain, value in mimi["endpoints"].items():
            if domain not in domains:
                raise ManifestError(
                    f"{origin}: mimi.endpoints.{domain}: not one of the manifest's domains {list(domains)}"
                )
            endpoints[domain] = _endpoint(domain, value)
        missing = [d for d in domains if d not in endpoints]
        if missing:
            raise ManifestError(f"{origin}: mimi.endpoints: no endpoint for domain(s) {missing}")
        ca = _resolve(base, mimi["ca"], f"{origin}: mimi.ca")
    control = document.get("control") or {}
    connector = dict(document["connector"])
    if connector["type"] == "command":
        # Relative argv and files in it mean the manifest's folder, wherever the suite is started from.
        cwd = connector.get("cwd", ".")
        connector["cwd"] = cwd if os.path.isabs(cwd) else os.path.abspath(base / cwd)
    suite = document.get("suite") or {}
    reference_address = suite.get("referenceAddress", DEFAULT_REFERENCE_ADDRESS)
    _, _, port = reference_address.rpartition(":")
    if int(port) > 65535:
        raise ManifestError(f"{origin}: suite.referenceAddress: port {port} is above 65535")
    if int(port) == 0 and connector["type"] == "url":
        raise ManifestError(
            f"{origin}: suite.referenceAddress: port 0 is not allowed for a url SUT: "
            "a url SUT is configured before the run: give a fixed port"
        )
    suite_pki = None
    if suite.get("pki") is not None:
        suite_pki = Path(os.path.abspath(base / suite["pki"]))
    operations = control.get("operations")
    return SutManifest(
        name=document["name"],
        vendor=document.get("vendor"),
        version=document.get("version"),
        domains=domains,
        roles=tuple(document["roles"]),
        connector=connector,
        endpoints=endpoints,
        ca=ca,
        consent_mode=document.get("consentMode", "none"),
        features=tuple(document.get("features", ())),
        hub_transfer=document.get("hubTransfer"),
        control_url=control.get("url", "").rstrip("/") or None,
        control_token_env=control.get("tokenEnv"),
        control_ca=_resolve(base, control.get("ca"), f"{origin}: control.ca"),
        control_operations=tuple(operations) if operations is not None else None,
        timeouts=Timeouts(**document.get("timeouts", {})),
        suite_pki=suite_pki,
        reference_address=reference_address,
        sha256=canonical_sha256(document),
        document=document,
    )


def load_manifest(path: str | os.PathLike[str]) -> SutManifest:
    """Read a YAML or JSON manifest file (JSON is YAML, so one parser reads both)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"cannot read SUT manifest {path}: {exc.strerror or exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: not valid YAML or JSON: {exc}") from None
    manifest = parse_manifest(document, base_dir=path.parent, origin=str(path))
    return dataclasses.replace(manifest, source=path)


# How the reference peer runs the hub-transfer extension in a suite run, as SUT and as the suite's own
# peers (their peer.yaml ``hub_transfer``). The cut-over deadline is short so that an abort check
# finishes quickly, and long enough that a transfer on a loaded machine never aborts by accident.
REFERENCE_HUB_TRANSFER: Mapping[str, Any] = {
    "roles": ["old-hub", "new-hub", "follower"],
    "accepts_from": "any",
    "cutover_timeout_ms": 8000,
    "prepare_timeout_ms": 5000,
    "redirect_retention_days": 30,
    "component_id": "0xF0A9",
}


REFERENCE_FEATURES = ("identifierQuery", "proxyDownload", "multiDevice", "hubTransfer")


def reference_manifest(*, faults: tuple[str, ...] = (), consent_mode: str = "immediate") -> SutManifest:
    """The embedded reference peer as SUT (``--sut reference``)."""
    document: dict[str, Any] = {
        "manifestVersion": 1,
        "name": "mimi-conformance reference peer",
        "vendor": "mimi-conformance",
        "domains": [REFERENCE_SUT_DOMAIN],
        "roles": ["hub", "follower"],
        "consentMode": consent_mode,
        # What the reference peer implements of the optional features (the checks gated on them run).
        "features": list(REFERENCE_FEATURES),
        "hubTransfer": dict(REFERENCE_HUB_TRANSFER),
        "connector": {"type": "reference", **({"faults": list(faults)} if faults else {})},
    }
    return parse_manifest(document, origin="--sut reference")
