"""Reference peer configuration (``reference-peer serve --config peer.yaml``).

::

    listen:
      address: 127.0.0.1      # loopback by default
      port: 8443              # 0 picks a free port (printed at start)
    tls:
      ca: pki/ca.pem          # CA that client certificates must chain to
    providers:                # one listener can serve several providers, chosen by Host/SNI
      - domain: a.example
        aliases: []           # more names served by the same provider (its certificate must cover them)
        cert: pki/a.example.pem
        key: pki/a.example.key
    limits:
      max_body_bytes: 1048576
      body_read_timeout: 10
      handshake_timeout: 10
    storage:
      path: state/            # durable state (used by later work)
    consent_mode: immediate   # immediate | quarantine | consent-first
    faults: []                # named deliberate violations to switch on (used by later work)

Relative paths are resolved against the configuration file's directory. Unknown keys are errors, so
a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reference_peer.server.names import normalize_domain
from reference_peer.server.transport import MimiServer, Provider, ServerLimits

CONSENT_MODES = ("immediate", "quarantine", "consent-first")
_FAULT_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")


class ConfigError(ValueError):
    """A configuration problem; the message names the offending key."""


@dataclass(frozen=True)
class ProviderConfig:
    domain: str
    cert: Path
    key: Path
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class PeerConfig:
    providers: tuple[ProviderConfig, ...]
    ca: Path
    listen_address: str = "127.0.0.1"
    listen_port: int = 8443
    limits: ServerLimits = field(default_factory=ServerLimits)
    storage_path: Path | None = None
    consent_mode: str = "immediate"
    faults: tuple[str, ...] = ()

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(name for p in self.providers for name in (p.domain, *p.aliases))


def _mapping(value: Any, where: str, allowed: set[str], required: set[str] = frozenset()) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    unknown = set(value) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(map(str, unknown))}; allowed: {sorted(allowed)}")
    missing = required - set(value)
    if missing:
        raise ConfigError(f"{where}: missing key(s) {sorted(missing)}")
    return value


def _existing_file(value: Any, where: str, base: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a file path")
    path = Path(value) if os.path.isabs(value) else base / value
    if not path.is_file():
        raise ConfigError(f"{where}: file not found: {path}")
    return path


def _domain(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a domain name")
    try:
        return normalize_domain(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _number(value: Any, where: str, *, integer: bool, minimum: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        raise ConfigError(f"{where}: expected {'an integer' if integer else 'a number'}, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{where}: must be >= {minimum}, got {value!r}")
    return value


def parse_config(document: Any, base_dir: str | os.PathLike[str] = ".") -> PeerConfig:
    """Validate a parsed YAML document into a :class:`PeerConfig`."""
    base = Path(base_dir)
    top = _mapping(
        document, "config",
        {"listen", "tls", "providers", "limits", "storage", "consent_mode", "faults"},
        {"tls", "providers"},
    )

    listen = _mapping(top.get("listen", {}), "listen", {"address", "port"})
    address = listen.get("address", "127.0.0.1")
    if not isinstance(address, str) or not address:
        raise ConfigError("listen.address: expected a host address")
    port = _number(listen.get("port", 8443), "listen.port", integer=True, minimum=0)
    if port > 65535:
        raise ConfigError(f"listen.port: must be <= 65535, got {port}")

    tls = _mapping(top["tls"], "tls", {"ca"}, {"ca"})
    ca = _existing_file(tls["ca"], "tls.ca", base)

    raw_providers = top["providers"]
    if not isinstance(raw_providers, list) or not raw_providers:
        raise ConfigError("providers: expected a non-empty list")
    providers = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_providers):
        where = f"providers[{i}]"
        entry = _mapping(raw, where, {"domain", "aliases", "cert", "key"}, {"domain", "cert", "key"})
        domain = _domain(entry["domain"], f"{where}.domain")
        aliases_raw = entry.get("aliases", [])
        if not isinstance(aliases_raw, list):
            raise ConfigError(f"{where}.aliases: expected a list of domain names")
        aliases = tuple(_domain(a, f"{where}.aliases[{j}]") for j, a in enumerate(aliases_raw))
        for name in (domain, *aliases):
            if name in seen:
                raise ConfigError(f"{where}: domain {name!r} is configured twice")
            seen.add(name)
        providers.append(
            ProviderConfig(
                domain=domain,
                aliases=aliases,
                cert=_existing_file(entry["cert"], f"{where}.cert", base),
                key=_existing_file(entry["key"], f"{where}.key", base),
            )
        )

    limit_keys = {"max_body_bytes", "body_read_timeout", "handshake_timeout", "keepalive_timeout"}
    raw_limits = _mapping(top.get("limits", {}), "limits", limit_keys)
    defaults = ServerLimits()
    limits = ServerLimits(
        max_body_bytes=_number(
            raw_limits.get("max_body_bytes", defaults.max_body_bytes), "limits.max_body_bytes", integer=True, minimum=0
        ),
        **{
            key: float(_number(raw_limits.get(key, getattr(defaults, key)), f"limits.{key}", integer=False, minimum=0.001))
            for key in ("body_read_timeout", "handshake_timeout", "keepalive_timeout")
        },
    )

    storage = _mapping(top.get("storage", {}), "storage", {"path"})
    storage_path = None
    if "path" in storage:
        if not isinstance(storage["path"], str) or not storage["path"]:
            raise ConfigError("storage.path: expected a path")
        storage_path = Path(storage["path"]) if os.path.isabs(storage["path"]) else base / storage["path"]

    consent_mode = top.get("consent_mode", "immediate")
    if consent_mode not in CONSENT_MODES:
        raise ConfigError(f"consent_mode: expected one of {list(CONSENT_MODES)}, got {consent_mode!r}")

    faults_raw = top.get("faults", [])
    if not isinstance(faults_raw, list):
        raise ConfigError("faults: expected a list of fault names")
    for j, name in enumerate(faults_raw):
        if not isinstance(name, str) or not _FAULT_NAME.match(name):
            raise ConfigError(f"faults[{j}]: not a fault name: {name!r}")
    if len(set(faults_raw)) != len(faults_raw):
        raise ConfigError("faults: a fault is listed twice")

    return PeerConfig(
        providers=tuple(providers),
        ca=ca,
        listen_address=address,
        listen_port=port,
        limits=limits,
        storage_path=storage_path,
        consent_mode=consent_mode,
        faults=tuple(faults_raw),
    )


def load_config(path: str | os.PathLike[str]) -> PeerConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(document, path.parent)


def build_server(config: PeerConfig) -> MimiServer:
    """The transport server for ``config`` (no endpoint handlers registered: that is the roles' job)."""
    providers = [Provider(p.domain, p.cert, p.key, aliases=p.aliases) for p in config.providers]
    return MimiServer(
        providers, config.ca, host=config.listen_address, port=config.listen_port, limits=config.limits
    )
