"""SUT connectors: one interface, four ways to get a SUT running and reachable.

``connector.start() -> ConnectedSut`` and ``connector.stop()``:

* ``reference``: the embedded reference peer, spawned as ``reference-peer serve --config peer.yaml``
  with certificates from the run's PKI (see :class:`ReferencePeerProcess` for what it expects).
* ``url``: a SUT that is already running; the manifest gives MIMI endpoints, CA and control URL.
* ``command``: spawn ``argv`` (own process group, stdout/stderr captured to files), poll the
  control API ``GET /v1/info`` until it answers (deadline ``timeouts.startup``), kill the group at the end.
* ``image``: a container via testcontainers, on the host's network. Where testcontainers or a Docker
  engine is missing, :class:`ConnectorUnavailable` stops the run as a setup error (exit 2).

The suite's own reference hub and follower (the peers that drive the SUT) are
:class:`ReferencePeerProcess` instances too, under this worker's reference domains
(:mod:`.reference_names`), with certificates from the suite PKI (:mod:`.suite_pki`). Behind the
reference gateway (:mod:`.gateway`) each adds its route and advertises the gateway's port.

A ``url``, ``command`` or ``image`` SUT is connected once per run by the pytest controller
(:class:`SharedSut`) and shared by the xdist workers, which read ``OUT/sut/connected.json``. What a
``command``/``image`` SUT is handed (:func:`handoff_environment`), all known before it starts:
``MIMI_CONFORMANCE_SUITE_CA`` (the suite CA certificate, never its key),
``MIMI_CONFORMANCE_REFERENCE_ADDRESS``, ``MIMI_CONFORMANCE_REFERENCE_DOMAINS`` and
``MIMI_CONFORMANCE_SUT_DIR`` (``suite-ca.pem`` and ``reference-peers.yaml``).

Setup failures (:data:`SETUP_ERRORS`) are never verdicts: the plugin stops the run with a usage error.
"""

from __future__ import annotations

import ast
import dataclasses
import ipaddress
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ..verdicts import NotApplicable, SutMisbehaviour
from . import reference_names
from .control import ControlApiError, ControlClient
from .gateway import GatewayError, ReferenceGateway, split_address, write_route
from .manifest import REFERENCE_HUB_TRANSFER, ManifestError, MimiEndpoint, SutManifest
from .polling import PollTimeout, poll_until
from .processes import ManagedProcess, ProcessExited, ProcessNotReady
from .suite_pki import SuitePki, SuitePkiError

# The default names (worker 0, and a run without workers); a worker's own are reference_names.current().
REFERENCE_HUB_DOMAIN = reference_names.reference_domains(0).hub
REFERENCE_FOLLOWER_DOMAIN = reference_names.reference_domains(0).follower

_SERVING = re.compile(r"^serving (\S+) at (https://\S+) \(listening on (\S+):(\d+)\)", re.MULTILINE)
_CONTROL = re.compile(r"^control (\S+) at (https?://\S+)", re.MULTILINE)
_UNKNOWN_KEYS = re.compile(r"^config: unknown key\(s\) (\[[^\]]*\]);")
OPTIONAL_SECTIONS = ("control", "peers_file", "resolve", "hub_transfer", "variants", "advertise")


class ConnectorUnavailable(NotApplicable):
    """This connector cannot run here (no Docker engine, no testcontainers): a setup error, exit 2."""


class SutStartError(SutMisbehaviour):
    """The SUT did not start or never became healthy within its deadline: a setup error, exit 2."""


class SutConfigurationError(ValueError):
    """The manifest and the SUT's own getInfo disagree: a usage error reported before any check runs."""


# What stops a run before any check, as a usage error (exit 2) and one sentence: never a verdict.
SETUP_ERRORS: tuple[type[BaseException], ...] = (
    SutStartError, ConnectorUnavailable, SutConfigurationError, ManifestError, SuitePkiError, GatewayError,
)


def setup_error_sentence(exc: BaseException) -> str:
    """The one sentence a setup failure stops the run with."""
    text = " ".join(str(getattr(exc, "message", None) or exc).split())
    what = {
        SutStartError: "the SUT did not start",
        ConnectorUnavailable: "the SUT's connector cannot run here",
        SutConfigurationError: "SUT configuration error",
        ManifestError: "SUT manifest error",
        SuitePkiError: "suite PKI error",
        GatewayError: "reference address error",
    }
    label = next((name for kind, name in what.items() if isinstance(exc, kind)), "setup error")
    return f"{label}: {text}"


# --------------------------------------------------------------------------------------------
# The run's environment


@dataclasses.dataclass(frozen=True)
class GatewayLink:
    """The reference gateway, as a reference peer sees it: where to add its route, which port to advertise."""

    routes_dir: Path
    port: int


@dataclasses.dataclass
class RunEnvironment:
    """What connectors need from the run: where to write, the PKI, the Python to spawn peers with, and
    where every provider of the run is reached (written to ``peers.yaml``, which reference peers re-read)."""

    output_dir: Path
    pki: SuitePki
    python: str = sys.executable
    # domain -> IP address to connect to (no DNS): the reference peers' ``resolve`` configuration.
    resolve: dict[str, str] = dataclasses.field(
        default_factory=lambda: {domain: "127.0.0.1" for domain in reference_names.current()}
    )
    # domain -> authority (domain:port) of every provider started or declared so far.
    authorities: dict[str, str] = dataclasses.field(default_factory=dict)
    # The reference gateway, when the SUT reaches the reference peers through it (not the embedded SUT).
    gateway: GatewayLink | None = None
    # The hand-off environment of a command or image SUT (handoff_environment).
    sut_env: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def peers_file(self) -> Path:
        return self.output_dir / "peers.yaml"

    def publish(self, endpoints: dict[str, MimiEndpoint]) -> None:
        """Record where ``endpoints`` are reached, for the reference peers (they re-read peers.yaml)."""
        for domain, endpoint in endpoints.items():
            self.authorities[domain] = urlsplit(endpoint.base_url).netloc
            if endpoint.connect and _is_ip(endpoint.connect):
                self.resolve.setdefault(domain, endpoint.connect)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        temporary = self.peers_file.with_suffix(".tmp")
        temporary.write_text(yaml.safe_dump(self.authorities, sort_keys=True), encoding="utf-8")
        temporary.replace(self.peers_file)  # atomic: a peer never reads half a file


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# The connected SUT


@dataclasses.dataclass
class ConnectedSut:
    manifest: SutManifest
    endpoints: dict[str, MimiEndpoint]  # domain -> where its MIMI server is
    ca: Path | None  # CA of the SUT's TLS certificate
    control: ControlClient | None
    control_unavailable: str | None = None  # why ``control`` is None
    info: dict[str, Any] | None = None  # getInfo, when the control API answered

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(self.endpoints)

    @property
    def primary_domain(self) -> str:
        return self.manifest.domains[0]

    @property
    def base_urls(self) -> dict[str, str]:
        return {d: e.base_url for d, e in self.endpoints.items()}

    @property
    def roles(self) -> tuple[str, ...]:
        return self.manifest.roles

    @property
    def features(self) -> tuple[str, ...]:
        return self.manifest.features

    @property
    def hosts(self) -> set[str]:
        """Host names and addresses that mean "the SUT" in a URL (to blame a failed exchange correctly)."""
        # Only names in URLs count: the connect address (127.0.0.1) is shared with the suite's own peers.
        hosts = set(self.endpoints)
        hosts.update((urlsplit(e.base_url).hostname or "").lower() for e in self.endpoints.values())
        hosts.discard("")
        return hosts

    def resolve(self) -> dict[str, str]:
        """domain -> connect address, for MimiClient(resolve=...)."""
        return {d: e.connect for d, e in self.endpoints.items() if e.connect}

    def require_control(self) -> ControlClient:
        if self.control is None:
            raise NotApplicable(f"no SUT control API: {self.control_unavailable}")
        return self.control


def check_info_matches(manifest: SutManifest, info: dict[str, Any]) -> None:
    """The manifest's claims must equal the SUT's getInfo (docs/control-api.md): see sut_contract."""
    from .sut_contract import check_info_matches as check  # imported here: sut_contract imports this module

    check(manifest, info)


def wait_healthy(control: ControlClient, *, timeout: float, process: ManagedProcess | None = None) -> dict[str, Any]:
    """Poll GET /v1/info until it answers; a dead process or the deadline is a :class:`SutStartError`."""

    def probe() -> dict[str, Any] | None:
        if process is not None and not process.running():
            raise SutStartError(
                f"{process.name} exited with code {process.returncode} before its control API answered; "
                f"stderr: {process.tail() or '(empty)'}"
            )
        return control.get_info(refresh=True, timeout=min(2.0, timeout))

    try:
        return poll_until(probe, timeout=timeout, interval=0.1, what=f"GET {control.base_url}/v1/info to answer",
                          retry_on=(ControlApiError,))
    except PollTimeout as exc:
        raise SutStartError(f"the SUT never became healthy: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Reference peer processes


class ReferencePeerProcess:
    """``reference-peer serve --config <generated peer.yaml>`` for ``domains``.

    What it expects from the reference peer:

    * peer.yaml keys ``listen`` (address 127.0.0.1, port 0), ``tls.ca`` (the trust bundle),
      ``providers`` (domain, cert, key), ``storage.path``, ``consent_mode``, ``faults``;
    * optional keys, left out when the peer's own parser refuses them as unknown:
      ``control: {address: 127.0.0.1, port: 0}``, ``peers_file`` (the run's peers.yaml,
      ``domain: domain:port`` of every provider, rewritten as providers start) and ``resolve``
      (``domain: 127.0.0.1`` for every provider of the run, so no DNS is needed);
    * one stdout line per domain ``serving <domain> at https://<domain>:<port> (listening on <addr>:<port>)``;
    * with a ``control`` section, one line per domain ``control <domain> at http://127.0.0.1:<port>``.
      Without one (a peer that does not take the section), the control client is unavailable and
      checks that need it are NOT_APPLICABLE with that reason.
    """

    def __init__(
        self,
        name: str,
        domains: list[str],
        env: RunEnvironment,
        *,
        trust: Path,
        consent_mode: str = "immediate",
        faults: tuple[str, ...] = (),
        variants: tuple[str, ...] = (),
        startup_timeout: float = 30.0,
        control_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.domains = domains
        self.env = env
        self.trust = trust
        self.consent_mode = consent_mode
        self.faults = faults
        self.variants = variants
        self.startup_timeout = startup_timeout
        self.control_timeout = control_timeout
        self.process: ManagedProcess | None = None
        self.endpoints: dict[str, MimiEndpoint] = {}
        self.advertised: dict[str, str] = {}  # domain -> the base URL it publishes
        self.listening: dict[str, str] = {}  # domain -> host:port it listens on
        self.control_urls: dict[str, str] = {}
        self.control_unavailable: str | None = None
        self._readiness: tuple[Any, str] | None = None  # set by launch(): (its ready test, what it waits for)

    def _config(self, workdir: Path) -> dict[str, Any]:
        providers = []
        for domain in self.domains:
            cert, key = self.env.pki.issue(domain)
            providers.append({"domain": domain, "cert": str(cert), "key": str(key)})
        config: dict[str, Any] = {
            "listen": {"address": "127.0.0.1", "port": 0},
            "tls": {"ca": str(self.trust)},
            "providers": providers,
            "storage": {"path": str(workdir / "state")},
            "consent_mode": self.consent_mode,
            "faults": list(self.faults),
            "variants": list(self.variants),
            # Optional sections (OPTIONAL_SECTIONS), dropped when this reference peer does not know them yet.
            "control": {"address": "127.0.0.1", "port": 0},
            "peers_file": str(self.env.peers_file),
            "resolve": dict(self.env.resolve),
            "hub_transfer": {k: v for k, v in REFERENCE_HUB_TRANSFER.items() if k not in ("roles", "component_id")},
        }
        if self.env.gateway is not None:
            # Behind the gateway the SUT reaches this peer at the gateway's port: publish that one.
            config["advertise"] = {"port": self.env.gateway.port}
        return config

    def _supported_config(self, workdir: Path) -> dict[str, Any]:
        """The generated configuration, without the optional sections this reference peer refuses as
        unknown keys (checked in-process with its own parser, so the spawned peer never refuses it)."""
        from reference_peer.config import ConfigError, parse_config

        config = self._config(workdir)
        for _ in range(len(OPTIONAL_SECTIONS) + 1):
            try:
                parse_config(config, workdir)
                return config
            except ConfigError as exc:
                match = _UNKNOWN_KEYS.match(str(exc))
                unknown = set(ast.literal_eval(match.group(1))) if match else set()
                if not unknown or not unknown <= set(OPTIONAL_SECTIONS):
                    raise SutStartError(f"{self.name}: the generated peer.yaml is refused: {exc}") from exc
                for key in unknown:
                    del config[key]
        raise SutStartError(f"{self.name}: cannot generate an acceptable peer.yaml")

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Spawn the peer; :meth:`wait_ready` waits for its serving lines (so several peers start at once)."""
        workdir = self.env.output_dir / "peers" / self.name
        # Each run starts from empty state: a run into the same folder with the same seed would otherwise
        # meet the users and rooms of the last one (409 "exists").
        shutil.rmtree(workdir / "state", ignore_errors=True)
        workdir.mkdir(parents=True, exist_ok=True)
        config = self._supported_config(workdir)
        with_control = "control" in config
        if not with_control:
            self.control_unavailable = "this reference peer's configuration has no control section yet"
        config_path = workdir / "peer.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        argv = [self.env.python, "-m", "reference_peer.cli", "serve", "--config", str(config_path),
                "--exit-with-parent", str(os.getpid())]
        self.process = ManagedProcess(
            self.name, argv, self.env.output_dir / "logs", env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        wanted = set(self.domains)

        def ready(text: str) -> bool:
            serving = {m.group(1): m for m in _SERVING.finditer(text)}
            control = {m.group(1): m.group(2) for m in _CONTROL.finditer(text)}
            if not wanted <= set(serving):
                return False
            if with_control and not wanted <= set(control):
                return False
            for domain in self.domains:
                match = serving[domain]
                # Where the suite itself reaches this peer: its listening port (the URL it advertises may
                # name the gateway's instead).
                self.advertised[domain] = match.group(2).rstrip("/")
                self.listening[domain] = f"{match.group(3)}:{match.group(4)}"
                self.endpoints[domain] = MimiEndpoint(domain, f"https://{domain}:{match.group(4)}", match.group(3))
                if domain in control:
                    self.control_urls[domain] = control[domain].rstrip("/")
            return True

        what = "a 'serving <domain> at ...' line for " + ", ".join(self.domains)
        if with_control:
            what += " and a 'control <domain> at ...' line"
        self._readiness = (ready, what)

    def wait_ready(self) -> None:
        """After :meth:`launch`: wait until the peer serves, then publish where it is reached."""
        assert self.process is not None and self._readiness is not None, "launch() first"
        ready, what = self._readiness
        try:
            self.process.wait_for_output(ready, timeout=self.startup_timeout, what=what)
        except (ProcessExited, ProcessNotReady) as exc:
            self.stop()
            raise SutStartError(str(exc)) from exc
        except BaseException:  # interrupted while it starts (a run's time limit): never leave it behind
            self.stop()
            raise
        self.env.publish(self.endpoints)
        if self.env.gateway is not None:
            for domain in self.domains:
                write_route(self.env.gateway.routes_dir, domain, self.listening[domain])

    def control_client(self, domain: str, observer=None) -> ControlClient | None:
        url = self.control_urls.get(domain)
        if url is None:
            return None
        return ControlClient(url, timeout=self.control_timeout, observer=observer)

    def stop(self, grace: float = 10.0) -> None:
        if self.env.gateway is not None:
            for domain in self.listening:
                (self.env.gateway.routes_dir / domain).unlink(missing_ok=True)
        if self.process is not None:
            self.process.stop(grace)


# --------------------------------------------------------------------------------------------
# Connectors


class Connector:
    """Base: ``start()`` returns the :class:`ConnectedSut`; ``stop()`` releases everything (idempotent)."""

    def __init__(self, manifest: SutManifest, env: RunEnvironment) -> None:
        self.manifest = manifest
        self.env = env
        self.connected: ConnectedSut | None = None

    def start(self) -> ConnectedSut:  # pragma: no cover - abstract
        raise NotImplementedError

    def stop(self) -> None:
        if self.connected is not None and self.connected.control is not None:
            self.connected.control.close()

    def _control(self, url: str | None) -> ControlClient | None:
        if url is None:
            return None
        verify: Any = str(self.manifest.control_ca) if self.manifest.control_ca else True
        return ControlClient(
            url, token=self.manifest.control_token(), timeout=self.manifest.timeouts.control, verify=verify
        )

    def _sut_env(self) -> dict[str, str]:
        """The hand-off (handoff_environment), or, when the run made none, the suite CA alone."""
        if self.env.sut_env:
            return dict(self.env.sut_env)
        return {"MIMI_CONFORMANCE_SUITE_CA": str(self.env.pki.publish_trust(self.env.output_dir / "sut"))}


class ReferenceConnector(Connector):
    """The embedded reference peer as SUT, under the manifest's domains, with the run's CA."""

    def __init__(self, manifest: SutManifest, env: RunEnvironment) -> None:
        super().__init__(manifest, env)
        self.peer: ReferencePeerProcess | None = None

    def start(self) -> ConnectedSut:
        for domain in self.manifest.domains:
            self.env.resolve[domain] = "127.0.0.1"
        consent = self.manifest.consent_mode if self.manifest.consent_mode != "none" else "immediate"
        self.peer = ReferencePeerProcess(
            "sut", list(self.manifest.domains), self.env, trust=self.env.pki.trust_bundle("trust-sut"),
            consent_mode=consent, faults=tuple(self.manifest.connector.get("faults", ())),
            variants=tuple(self.manifest.connector.get("variants", ())),
            startup_timeout=self.manifest.timeouts.startup, control_timeout=self.manifest.timeouts.control,
        )
        self.peer.start()
        control = self.peer.control_client(self.manifest.domains[0])
        info = None
        if control is not None:
            info = wait_healthy(control, timeout=self.manifest.timeouts.startup, process=self.peer.process)
        self.connected = ConnectedSut(
            self.manifest, dict(self.peer.endpoints), self.env.pki.ca_cert, control,
            control_unavailable=self.peer.control_unavailable, info=info,
        )
        return self.connected

    def stop(self) -> None:
        super().stop()
        if self.peer is not None:
            self.peer.stop(self.manifest.timeouts.shutdown)


class UrlConnector(Connector):
    """A SUT that is already running: nothing to start, the control API must answer now."""

    def start(self) -> ConnectedSut:
        control = self._control(self.manifest.control_url)
        info = None
        if control is not None:
            try:
                info = wait_healthy(control, timeout=self.manifest.timeouts.startup)
                check_info_matches(self.manifest, info)
            except BaseException:
                control.close()
                raise
        self.env.publish(dict(self.manifest.endpoints))
        self.connected = ConnectedSut(
            self.manifest, dict(self.manifest.endpoints), self.manifest.ca, control, info=info
        )
        return self.connected


class CommandConnector(Connector):
    """Spawn the SUT, health-check its control API with a deadline, kill its process group at the end."""

    def __init__(self, manifest: SutManifest, env: RunEnvironment) -> None:
        super().__init__(manifest, env)
        self.process: ManagedProcess | None = None

    def start(self) -> ConnectedSut:
        spec = self.manifest.connector
        child_env = {**os.environ, **self._sut_env(), **spec.get("env", {})}
        try:
            self.process = ManagedProcess(
                "sut", spec["argv"], self.env.output_dir / "logs", env=child_env, cwd=spec.get("cwd")
            )
        except OSError as exc:
            raise SutStartError(f"cannot run {spec['argv'][0]!r}: {exc}") from exc
        control = self._control(self.manifest.control_url)
        assert control is not None  # the schema requires control for the command connector
        control.explain_unreachable = self.process_state
        try:
            info = wait_healthy(control, timeout=self.manifest.timeouts.startup, process=self.process)
            check_info_matches(self.manifest, info)
        except BaseException:
            control.close()
            self.process.stop(self.manifest.timeouts.shutdown)
            raise
        self.env.publish(dict(self.manifest.endpoints))
        self.connected = ConnectedSut(
            self.manifest, dict(self.manifest.endpoints), self.manifest.ca, control, info=info
        )
        return self.connected

    def process_state(self) -> str | None:
        """Why the SUT may be unreachable: its process has exited (None while it runs)."""
        if self.process is None or self.process.running():
            return None
        return f"the SUT process has exited with code {self.process.returncode}; stderr: {self.process.tail() or '(empty)'}"

    def stop(self) -> None:
        super().stop()
        if self.process is not None:
            self.process.stop(self.manifest.timeouts.shutdown)


def docker_unavailable_reason() -> str | None:
    """Why the image connector cannot run here, or None when testcontainers and a Docker engine are present."""
    try:
        import docker  # noqa: F401 - testcontainers' own dependency
        import testcontainers.core.container  # noqa: F401
    except ImportError as exc:
        return f"the image connector needs the 'testcontainers' package, which is not installed ({exc.name})"
    try:
        import docker as docker_sdk

        docker_sdk.from_env(timeout=5).ping()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the engine means "no engine here"
        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        if "Error while fetching server API version" in str(exc):  # nothing answers there: the SDK's nested text says no more
            return f"no Docker engine is reachable from here (nothing answers at {where}; start dockerd or set DOCKER_HOST)"
        return f"no Docker engine is reachable from here (at {where}: {type(exc).__name__}: {exc})"
    return None


CONTAINER_SUT_DIR = "/mimi-conformance"
CONTAINER_TLS_DIR = "/mimi-conformance-tls"
SUT_TLS_DIR = "sut-tls"  # OUT/sut-tls: an image SUT's own certificates, when the manifest names no mimi.ca


class ImageConnector(Connector):
    """A container image via testcontainers, on the host's network (``network_mode: host``): it listens
    on 127.0.0.1 at ``mimiPort`` and ``controlPort`` and reaches the reference address at 127.0.0.1,
    so no traffic leaves this machine. The hand-off folder is mounted read-only at /mimi-conformance.
    Without ``mimi.ca`` in the manifest, the suite CA issues the SUT's certificates (one per domain,
    mounted read-only at /mimi-conformance-tls)."""

    def __init__(self, manifest: SutManifest, env: RunEnvironment) -> None:
        super().__init__(manifest, env)
        self.container: Any = None

    def start(self) -> ConnectedSut:
        reason = docker_unavailable_reason()
        if reason is not None:
            raise ConnectorUnavailable(reason)
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer

        if "TESTCONTAINERS_RYUK_DISABLED" not in os.environ:
            # Ryuk, testcontainers' reaper, is an image from a registry; this connector removes its container itself.
            testcontainers_config.ryuk_disabled = True
        spec = self.manifest.connector
        image = spec["image"]
        mimi_port, control_port = spec.get("mimiPort", 8443), spec.get("controlPort", 8480)
        container = DockerContainer(image).with_kwargs(network_mode="host")
        handoff = self._sut_env()
        sut_dir = Path(handoff.get("MIMI_CONFORMANCE_SUT_DIR") or Path(handoff["MIMI_CONFORMANCE_SUITE_CA"]).parent)
        # The hand-off folder (the CA certificate, never its key) is mounted read-only.
        handoff.update({"MIMI_CONFORMANCE_SUITE_CA": f"{CONTAINER_SUT_DIR}/suite-ca.pem",
                        "MIMI_CONFORMANCE_SUT_DIR": CONTAINER_SUT_DIR,
                        "MIMI_CONFORMANCE_SUT_DOMAINS": ",".join(self.manifest.domains),
                        "MIMI_CONFORMANCE_MIMI_PORT": str(mimi_port),
                        "MIMI_CONFORMANCE_CONTROL_PORT": str(control_port)})
        sut_ca = self.manifest.ca
        if sut_ca is None:
            tls_dir = self._issue_sut_certificates()
            container = container.with_volume_mapping(str(tls_dir), CONTAINER_TLS_DIR, "ro")
            handoff["MIMI_CONFORMANCE_SUT_TLS_DIR"] = CONTAINER_TLS_DIR
            sut_ca = self.env.pki.ca_cert
        for key, value in {**spec.get("env", {}), **handoff}.items():
            container = container.with_env(key, value)
        container = container.with_volume_mapping(str(sut_dir), CONTAINER_SUT_DIR, "ro")
        try:
            self.container = container.start()
        except Exception as exc:  # noqa: BLE001 - the engine's refusal, whatever its type, is a setup error
            self.container = None
            raise SutStartError(_container_start_failure(image, exc)) from exc
        control = self._control(f"http://127.0.0.1:{control_port}")
        assert control is not None
        control.explain_unreachable = self.container_state
        try:
            info = wait_healthy(control, timeout=self.manifest.timeouts.startup)
            check_info_matches(self.manifest, info)
        except BaseException:
            control.close()
            self.stop()
            raise
        endpoints = {d: MimiEndpoint(d, f"https://{d}:{mimi_port}", "127.0.0.1") for d in self.manifest.domains}
        self.env.publish(endpoints)
        self.connected = ConnectedSut(self.manifest, endpoints, sut_ca, control, info=info)
        return self.connected

    def _issue_sut_certificates(self) -> Path:
        """``OUT/sut-tls/<domain>.pem`` and ``.key`` for every SUT domain, issued by the suite CA."""
        tls_dir = self.env.output_dir / SUT_TLS_DIR
        tls_dir.mkdir(parents=True, exist_ok=True)
        for domain in self.manifest.domains:
            cert, key = self.env.pki.issue(domain)
            shutil.copyfile(cert, tls_dir / f"{domain}.pem")
            shutil.copyfile(key, tls_dir / f"{domain}.key")
        return tls_dir

    def container_state(self) -> str | None:
        """Why the SUT may be unreachable: its container has exited (None while it runs)."""
        if self.container is None:
            return None
        try:
            wrapped = self.container.get_wrapped_container()
            wrapped.reload()
            if wrapped.status == "running":
                return None
            tail = wrapped.logs(tail=20).decode("utf-8", "replace").strip()
            code = wrapped.attrs.get("State", {}).get("ExitCode")
        except Exception:  # noqa: BLE001 - no diagnosis is better than a crash while diagnosing
            return None
        return f"the SUT container has exited with code {code}; its log: {tail or '(empty)'}"

    def _save_logs(self) -> None:
        """The container's stdout and stderr, kept in ``OUT/logs/sut.container.log`` (it is removed at the end)."""
        try:
            logs = self.container.get_wrapped_container().logs()
        except Exception:  # noqa: BLE001 - a container already gone has no logs to keep
            return
        folder = self.env.output_dir / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "sut.container.log").write_bytes(logs)

    def stop(self) -> None:
        super().stop()
        if self.container is not None:
            self._save_logs()
            self.container.stop()
            self.container = None


def _container_start_failure(image: str, exc: BaseException) -> str:
    """One sentence for an image the engine could not run."""
    text = " ".join(str(getattr(exc, "explanation", None) or exc).split())
    # The engine pulls an image it does not have; with no registry in reach that fails.
    if type(exc).__name__ == "ImageNotFound" or "images/create" in str(exc) or "pull access denied" in text:
        return (f"the image {image!r} is not on this Docker engine and could not be pulled ({text[:200]}): "
                f"build or load it first (the reference SUT: docker/build-image.sh)")
    return f"the Docker engine could not start {image!r}: {type(exc).__name__}: {text[:300]}"


CONNECTORS: dict[str, type[Connector]] = {
    "reference": ReferenceConnector,
    "url": UrlConnector,
    "command": CommandConnector,
    "image": ImageConnector,
}


def make_connector(manifest: SutManifest, env: RunEnvironment) -> Connector:
    return CONNECTORS[manifest.connector_type](manifest, env)


class ReferencePeers:
    """The suite's own reference hub and follower, each in its own process under its own domain."""

    def __init__(self, env: RunEnvironment, *, sut_ca: Path | None, startup_timeout: float = 30.0) -> None:
        trust = env.pki.trust_bundle("trust-reference-peers", sut_ca if sut_ca != env.pki.ca_cert else None)
        names = reference_names.current()
        self.hub = ReferencePeerProcess("ref-hub", [names.hub], env, trust=trust, startup_timeout=startup_timeout)
        self.follower = ReferencePeerProcess(
            "ref-follower", [names.follower], env, trust=trust, startup_timeout=startup_timeout
        )

    def start(self) -> ReferencePeers:
        try:
            # Both spawned first, then awaited: their start-ups overlap (neither needs the other to start).
            for peer in (self.hub, self.follower):
                peer.launch()
            for peer in (self.hub, self.follower):
                peer.wait_ready()
        except BaseException as exc:
            self.stop()
            if not isinstance(exc, SutStartError):
                raise
            # A reference peer that does not start is the suite's problem, never the SUT's.
            from ..verdicts import HarnessError

            raise HarnessError(f"a reference peer of the suite did not start: {exc.message}") from exc
        return self

    def stop(self) -> None:
        for peer in (self.hub, self.follower):
            peer.stop()


# --------------------------------------------------------------------------------------------
# One SUT shared by the run's workers


SUT_DIR = "sut"  # OUT/sut: what a SUT is handed (no private key)
CONNECTED_FILE = "connected.json"  # OUT/sut/connected.json: the connected SUT, for the workers
ROUTES_DIR = "gateway-routes"  # OUT/gateway-routes/<domain>: host:port of each reference peer


def handoff_environment(sut_dir: Path, reference_address: str, reference_domains: list[str]) -> dict[str, str]:
    """The environment a command or image SUT is started with (docs/sut-manifest.md)."""
    return {
        "MIMI_CONFORMANCE_SUITE_CA": str(sut_dir / "suite-ca.pem"),
        "MIMI_CONFORMANCE_REFERENCE_ADDRESS": reference_address,
        "MIMI_CONFORMANCE_REFERENCE_DOMAINS": ",".join(reference_domains),
        "MIMI_CONFORMANCE_SUT_DIR": str(sut_dir),
    }


def write_handoff(sut_dir: Path, pki: SuitePki, reference_address: str, reference_domains: list[str]) -> None:
    """``suite-ca.pem`` (the CA certificate only) and ``reference-peers.yaml`` (every reference domain,
    and the wildcard of their zone, mapped to the one reference address)."""
    pki.publish_trust(sut_dir)
    mapping = {f"*.{reference_names.REFERENCE_ZONE}": reference_address}
    mapping.update({domain: reference_address for domain in reference_domains})
    (sut_dir / "reference-peers.yaml").write_text(yaml.safe_dump(mapping, sort_keys=False), encoding="utf-8")


def _reachable_address(bound: str) -> str:
    """A gateway bound to every interface is reached at the loopback address from this machine."""
    host, port = split_address(bound)
    return f"127.0.0.1:{port}" if host in ("0.0.0.0", "::") else bound


class SharedSut:
    """A ``url``, ``command`` or ``image`` SUT, connected (and started) once per run by the pytest
    controller, behind the reference gateway; the workers rebuild it from ``connected.json``."""

    def __init__(self, manifest: SutManifest, output_dir: Path, pki: SuitePki, workers: int) -> None:
        self.manifest = manifest
        self.output_dir = Path(output_dir)
        self.pki = pki
        self.reference_domains = reference_names.all_reference_domains(workers)
        self.gateway = ReferenceGateway(manifest.reference_address, self.output_dir / ROUTES_DIR)
        self.connector: Connector | None = None
        self.connected: ConnectedSut | None = None

    @property
    def sut_dir(self) -> Path:
        return self.output_dir / SUT_DIR

    def start(self) -> ConnectedSut:
        """Bind the reference address, write the hand-off, start or connect the SUT, describe it.
        Raises one of :data:`SETUP_ERRORS` (everything started is stopped again)."""
        try:
            address = _reachable_address(self.gateway.start())
            self.sut_dir.mkdir(parents=True, exist_ok=True)
            write_handoff(self.sut_dir, self.pki, address, self.reference_domains)
            env = RunEnvironment(
                self.output_dir, self.pki, gateway=GatewayLink(self.gateway.routes_dir, self.gateway.port),
                sut_env=handoff_environment(self.sut_dir, address, self.reference_domains),
            )
            self.connector = make_connector(self.manifest, env)
            self.connected = self.connector.start()
            self._describe(address)
        except BaseException:
            self.stop()
            raise
        return self.connected

    def _describe(self, address: str) -> None:
        assert self.connected is not None and self.connector is not None
        connected = self.connected
        process = getattr(self.connector, "process", None)
        description = {
            "connector": self.manifest.connector_type,
            "endpoints": {d: {"baseUrl": e.base_url, "connect": e.connect} for d, e in connected.endpoints.items()},
            "ca": str(connected.ca) if connected.ca is not None else None,
            "controlUrl": connected.control.base_url if connected.control is not None else None,
            "controlUnavailable": connected.control_unavailable,
            "info": connected.info,
            "process": ({"pid": process.pid, "stderr": str(process.stderr_path)} if process is not None else None),
            "gateway": {"address": address, "routes": str(self.gateway.routes_dir), "port": self.gateway.port},
        }
        temporary = self.sut_dir / f".{CONNECTED_FILE}.tmp"
        temporary.write_text(json.dumps(description, indent=1), encoding="utf-8")
        temporary.replace(self.sut_dir / CONNECTED_FILE)

    def stop(self) -> None:
        if self.connector is not None:
            self.connector.stop()
        self.gateway.stop()


def read_connected(output_dir: Path) -> dict[str, Any]:
    """The controller's description of the shared SUT (``OUT/sut/connected.json``)."""
    path = Path(output_dir) / SUT_DIR / CONNECTED_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        from ..verdicts import HarnessError

        raise HarnessError(f"the run's controller left no description of the shared SUT ({path}: {exc})") from exc


def connected_from_description(manifest: SutManifest, description: dict[str, Any]) -> ConnectedSut:
    """A worker's own view of the shared SUT: the same endpoints, its own control client."""
    endpoints = {
        domain: MimiEndpoint(domain, value["baseUrl"], value.get("connect"))
        for domain, value in description["endpoints"].items()
    }
    control = None
    if description.get("controlUrl"):
        verify: Any = str(manifest.control_ca) if manifest.control_ca else True
        control = ControlClient(description["controlUrl"], token=manifest.control_token(),
                                timeout=manifest.timeouts.control, verify=verify)
        process = description.get("process")
        if process:
            control.explain_unreachable = lambda: _process_state(process["pid"], Path(process["stderr"]))
    ca = Path(description["ca"]) if description.get("ca") else None
    return ConnectedSut(manifest, endpoints, ca, control, control_unavailable=description.get("controlUnavailable"),
                        info=description.get("info"))


def _process_state(pid: int, stderr: Path) -> str | None:
    """Why a SUT the controller spawned may be unreachable: it has exited (None while it runs)."""
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat")
        if not state.exists() or state.read_text().split(")")[-1].split()[0] != "Z":
            return None
    except ProcessLookupError:
        pass
    except OSError:
        return None
    try:
        tail = stderr.read_text(encoding="utf-8", errors="replace")[-2000:].strip()
    except OSError:
        tail = ""
    return f"the SUT process has exited; stderr: {tail or '(empty)'}"
