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
      path: state/            # directory of the durable state: one SQLite file per provider,
                              # <domain>.sqlite; absent: in memory (lost at exit)
    consent_mode: immediate   # immediate | quarantine | consent-first
    faults: []                # named deliberate violations to switch on (reference-peer faults lists them)
    variants: []              # allowed variants the draft permits (reference-peer variants lists them)
    control:                  # the SUT control API (HTTP+JSON), one listener per provider
      address: 127.0.0.1      # loopback by default: the API acts for users and must not be exposed
      port: 0                 # the first provider's port (the next ones +1, +2...); 0 picks free ports
      token: null             # when set, every call needs "Authorization: Bearer <token>"
    peers:                    # where peer providers are reached (domain: host:port); default: the domain
      b.example: b.example:8443
      "*.ref.test": 127.0.0.1:7443  # a wildcard: any domain of exactly one more label in the zone
                              # (hub.ref.test, not a.hub.ref.test); an exact key wins over a wildcard.
                              # A host other than the domain is only where to connect: TLS SNI, the
                              # certificate check and Host still name the domain
    peers_file: peers.yaml    # optional, same shape, re-read whenever it changes (harness-written);
                              # its entries win over those of peers (exact before wildcard still)
    resolve:                  # domain: IP address, instead of DNS (TLS and Host still use the domain)
      b.example: 127.0.0.1
    advertise:                # how peers reach this listener when it sits behind a gateway; absent: as listening
      port: 7443              # the port put in every URL this peer publishes about itself (its directory)
    asset_hosts: []           # asset-server hosts of peer providers that proxyDownload may fetch from
    outbox:                   # /notify delivery retries (exponential backoff, Retry-After honoured)
      base_delay: 0.5
      max_delay: 30
      max_attempts: 1000      # then the item is given up (logged as failed)
    hub_transfer:             # the hub-transfer extension (docs/extensions/hub-transfer.md); absent: off
      accepts_from: any       # as target: any, or a list of old-hub domains whose prepares it accepts
      cutover_timeout_ms: 600000   # window from the acceptance to the cut-over deadline (not_after)
      prepare_timeout_ms: 30000    # how long the old hub waits for the target's acceptance
      redirect_retention_days: 30

Relative paths are resolved against the configuration file's directory. Unknown keys are errors, so
a typo never silently falls back to a default.

``reference_peer/peer-config.schema.json`` (JSON Schema 2020-12) describes every key, for editors and
other tools. :func:`parse_config` runs the hand-written checks first (their messages name the key and
what is wrong, and they check what a schema cannot: files, domain names, fault names), then the
schema, so that a document the schema refuses is never served.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from reference_peer.overrides import NO_OVERRIDES, Overrides
from reference_peer.room.transfer_settings import HubTransferSettings
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
class ControlConfig:
    address: str = "127.0.0.1"
    port: int = 0
    token: str | None = None


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
    variants: tuple[str, ...] = ()
    control: ControlConfig = field(default_factory=lambda: ControlConfig())
    peers: Mapping[str, str] = field(default_factory=dict)
    peers_file: Path | None = None
    resolve: Mapping[str, str] = field(default_factory=dict)
    advertise_port: int | None = None  # the port this peer's published URLs name (None: the listening port)
    asset_hosts: tuple[str, ...] = ()
    outbox_base_delay: float = 0.5
    outbox_max_delay: float = 30.0
    outbox_max_attempts: int = 1000
    hub_transfer: HubTransferSettings | None = None  # None: the extension is off

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


def _normalized(value: Any, where: str, normalize, expected: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected {expected}")
    try:
        return normalize(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _domain(value: Any, where: str) -> str:
    return _normalized(value, where, normalize_domain, "a domain name")


def _number(value: Any, where: str, *, integer: bool, minimum: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        raise ConfigError(f"{where}: expected {'an integer' if integer else 'a number'}, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{where}: must be >= {minimum}, got {value!r}")
    return value


WILDCARD_PREFIX = "*."


def normalize_peer_key(key: str) -> str:
    """A ``peers`` key, lower-cased: a domain, or ``*.<zone>`` for every domain one label under the zone.

    Raises ValueError for anything else (``*`` only as the whole first label)."""
    if key.startswith(WILDCARD_PREFIX):
        return WILDCARD_PREFIX + normalize_domain(key[len(WILDCARD_PREFIX):])
    return normalize_domain(key)


def _peer_key(value: Any, where: str) -> str:
    return _normalized(value, where, normalize_peer_key, "a domain name or *.<zone>")


def _authority(value: Any, where: str) -> str:
    if not isinstance(value, str) or not re.match(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$", value):
        raise ConfigError(f"{where}: expected host or host:port, got {value!r}")
    return value


SCHEMA_FILE = "peer-config.schema.json"


@cache
def config_schema() -> dict[str, Any]:
    """peer-config.schema.json, shipped next to this module."""
    return json.loads(resources.files("reference_peer").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


def schema_errors(document: Any) -> list[str]:
    """What the schema refuses in ``document``, each as ``<key path>: <why>`` (``providers[0].cert: ...``)."""
    errors = []
    for error in sorted(Draft202012Validator(config_schema()).iter_errors(document), key=lambda e: list(map(str, e.path))):
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
        errors.append(f"{where.lstrip('.') or 'config'}: {error.message}")
    return errors


def parse_config(document: Any, base_dir: str | os.PathLike[str] = ".") -> PeerConfig:
    """Validate a parsed YAML document into a :class:`PeerConfig`."""
    config = _checked_config(document, base_dir)
    errors = schema_errors(document)
    if errors:  # the hand-written checks passed it, so the schema is the stricter: it wins
        raise ConfigError(errors[0])
    return config


def _checked_config(document: Any, base_dir: str | os.PathLike[str]) -> PeerConfig:
    base = Path(base_dir)
    top = _mapping(
        document, "config",
        {
            "listen", "tls", "providers", "limits", "storage", "consent_mode", "faults", "variants",
            "control", "peers", "peers_file", "resolve", "asset_hosts", "outbox", "hub_transfer",
            "advertise",
        },
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
    from reference_peer.faults import REGISTRY

    unknown_faults = [name for name in faults_raw if name not in REGISTRY]
    if unknown_faults:
        raise ConfigError(f"faults: unknown fault(s) {unknown_faults}; 'reference-peer faults' lists them")

    from reference_peer.faults import VARIANTS

    variants_raw = top.get("variants", [])
    if not isinstance(variants_raw, list) or not all(isinstance(v, str) for v in variants_raw):
        raise ConfigError("variants: expected a list of variant names")
    if len(set(variants_raw)) != len(variants_raw):
        raise ConfigError("variants: a variant is listed twice")
    unknown_variants = [name for name in variants_raw if name not in VARIANTS]
    if unknown_variants:
        raise ConfigError(f"variants: unknown variant(s) {unknown_variants}; 'reference-peer variants' lists them")

    raw_control = _mapping(top.get("control", {}) or {}, "control", {"address", "port", "token"})
    control_address = raw_control.get("address", "127.0.0.1")
    if not isinstance(control_address, str) or not control_address:
        raise ConfigError("control.address: expected a host address")
    control_port = _number(raw_control.get("port", 0), "control.port", integer=True, minimum=0)
    if control_port > 65535:
        raise ConfigError(f"control.port: must be <= 65535, got {control_port}")
    token = raw_control.get("token")
    if token is not None and (not isinstance(token, str) or not token):
        raise ConfigError("control.token: expected a non-empty string")

    peers = {
        _peer_key(k, f"peers.{k}"): _authority(v, f"peers.{k}")
        for k, v in _mapping(top.get("peers", {}) or {}, "peers", set(top.get("peers", {}) or {})).items()
    }
    advertise = _mapping(top.get("advertise", {}) or {}, "advertise", {"port"})
    advertise_port = None
    if "port" in advertise:
        advertise_port = _number(advertise["port"], "advertise.port", integer=True, minimum=1)
        if advertise_port > 65535:
            raise ConfigError(f"advertise.port: must be <= 65535, got {advertise_port}")
    peers_file = None
    if top.get("peers_file") is not None:
        raw = top["peers_file"]
        if not isinstance(raw, str) or not raw:
            raise ConfigError("peers_file: expected a path")
        peers_file = Path(raw) if os.path.isabs(raw) else base / raw
    resolve_raw = _mapping(top.get("resolve", {}) or {}, "resolve", set(top.get("resolve", {}) or {}))
    resolve = {}
    for key, value in resolve_raw.items():
        if not isinstance(value, str) or not value:
            raise ConfigError(f"resolve.{key}: expected an IP address")
        resolve[_domain(key, f"resolve.{key}")] = value
    asset_raw = top.get("asset_hosts", [])
    if not isinstance(asset_raw, list):
        raise ConfigError("asset_hosts: expected a list of host names")
    asset_hosts = tuple(_domain(h, f"asset_hosts[{i}]") for i, h in enumerate(asset_raw))
    outbox = _mapping(top.get("outbox", {}) or {}, "outbox", {"base_delay", "max_delay", "max_attempts"})
    max_attempts = _number(outbox.get("max_attempts", 1000), "outbox.max_attempts", integer=True, minimum=1)
    base_delay = float(_number(outbox.get("base_delay", 0.5), "outbox.base_delay", integer=False, minimum=0.001))
    max_delay = float(_number(outbox.get("max_delay", 30.0), "outbox.max_delay", integer=False, minimum=0.001))

    hub_transfer = _hub_transfer(top.get("hub_transfer")) if "hub_transfer" in top else None

    return PeerConfig(
        hub_transfer=hub_transfer,
        control=ControlConfig(control_address, control_port, token),
        peers=peers,
        peers_file=peers_file,
        advertise_port=advertise_port,
        resolve=resolve,
        asset_hosts=asset_hosts,
        outbox_base_delay=base_delay,
        outbox_max_delay=max(max_delay, base_delay),
        outbox_max_attempts=max_attempts,
        providers=tuple(providers),
        ca=ca,
        listen_address=address,
        listen_port=port,
        limits=limits,
        storage_path=storage_path,
        consent_mode=consent_mode,
        faults=tuple(faults_raw),
        variants=tuple(variants_raw),
    )


def _hub_transfer(value: Any) -> HubTransferSettings:
    """The ``hub_transfer`` section: present (even empty) switches the extension on."""
    raw = _mapping(value or {}, "hub_transfer", {
        "accepts_from", "cutover_timeout_ms", "prepare_timeout_ms", "redirect_retention_days",
    })
    accepts = raw.get("accepts_from", "any")
    if accepts == "any":
        accepts_from = None
    elif isinstance(accepts, list):
        accepts_from = tuple(_domain(d, f"hub_transfer.accepts_from[{i}]") for i, d in enumerate(accepts))
    else:
        raise ConfigError("hub_transfer.accepts_from: expected 'any' or a list of domains")
    defaults = HubTransferSettings()
    return HubTransferSettings(
        accepts_from=accepts_from,
        cutover_timeout_ms=_number(raw.get("cutover_timeout_ms", defaults.cutover_timeout_ms),
                                   "hub_transfer.cutover_timeout_ms", integer=True, minimum=1),
        prepare_timeout_ms=_number(raw.get("prepare_timeout_ms", defaults.prepare_timeout_ms),
                                   "hub_transfer.prepare_timeout_ms", integer=True, minimum=1),
        redirect_retention_days=_number(raw.get("redirect_retention_days", defaults.redirect_retention_days),
                                        "hub_transfer.redirect_retention_days", integer=True, minimum=0),
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


def build_server(config: PeerConfig, overrides: Overrides = NO_OVERRIDES) -> MimiServer:
    """The transport server for ``config`` (no endpoint handlers registered: that is the roles' job)."""
    providers = [Provider(p.domain, p.cert, p.key, aliases=p.aliases) for p in config.providers]
    return MimiServer(
        providers, config.ca, host=config.listen_address, port=config.listen_port, limits=config.limits,
        overrides=overrides, advertise_port=config.advertise_port,
    )
