"""``mimi-conformance preflight``: is the SUT set up so that a run can judge it?

A run that starts against a half-configured SUT turns every setup mistake into a page of FAIL verdicts.
Preflight walks the chain a run depends on, link by link, and stops at the first broken one (each
link needs the ones before it), naming what is wrong and the fix in one sentence:

1. **manifest**: the file reads and validates; the control token's variable is set; the declared
   ``control.operations`` cover what the roles require.
2. **suite PKI**: the suite's CA (``--suite-pki DIR``, the manifest's ``suite.pki``, or a new one in
   ``OUT/suite-pki``) loads.
3. **reference address** (not for the embedded reference SUT, which reaches the peers directly): the
   gateway in front of the reference peers binds ``suite.referenceAddress``, before a ``command``/``image``
   SUT starts, so that it is told the address (the run's hand-off, ``OUT/sut``).
4. **control API**: ``GET /v1/info`` answers (a ``command``/``image`` SUT is started first, through its
   connector, and stopped at the end) and agrees with the manifest: roles, domains, operations, consent
   mode, and the operations the declared roles require (``requiredFor`` in the control API contract).
5. **TLS**: each MIMI endpoint completes mutual TLS: its certificate verifies against ``mimi.ca`` and
   names the domain, and it accepts the suite's client certificate.
6. **directory**: each endpoint gives an HTTP answer to ``GET /.well-known/mimi-protocol-directory``
   (what it answers is for the checks to judge).
7. **SUT to reference peer**: one request from the SUT reaches a reference peer, started (behind the
   reference address) exactly as a run starts it. A SUT that can be hub creates a room and adds a user of
   the reference follower (it asks the follower for key material); a follower-only SUT is added to the
   reference hub's room and sends a message (it submits it to the hub). A request the peer refuses for a
   transport rule breaks the link too, naming the rule (``--no-preflight`` lets the checks judge it).

Nothing here is a verdict on the SUT: preflight writes no results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import secrets
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:
    from .harness.connectors import ConnectedSut, ReferencePeerProcess
    from .harness.gateway import ReferenceGateway
    from .harness.manifest import SutManifest
    from .harness.suite_pki import SuitePki

Printer = Callable[[str], None]

WELL_KNOWN_PATH = "/.well-known/mimi-protocol-directory"
LINKS = ("manifest", "suite PKI", "reference address", "control API", "TLS", "directory", "SUT to reference peer")
GUIDE = "docs/vendor-guide.md"


class PreflightFailure(Exception):
    """One broken link: ``sentence`` says what is wrong and the fix."""

    def __init__(self, link: str, sentence: str) -> None:
        super().__init__(sentence)
        self.link = link
        self.sentence = sentence


@dataclasses.dataclass
class LinkResult:
    link: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok' if self.ok else 'BROKEN':<6} {self.link}: {self.detail}"


@dataclasses.dataclass
class PreflightReport:
    links: list[LinkResult] = dataclasses.field(default_factory=list)
    failure: PreflightFailure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def sentence(self) -> str | None:
        return None if self.failure is None else self.failure.sentence


def preflight(manifest: Any, *, suite_pki: Path | None, out: Path, printer: Printer = print) -> PreflightReport:
    """Walk the links in order; ``manifest`` is a SutManifest, a manifest file or ``"reference"``."""
    report = PreflightReport()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    def passed(link: str, detail: str) -> None:
        result = LinkResult(link, True, detail)
        report.links.append(result)
        printer(result.line())

    with contextlib.ExitStack() as cleanup:
        try:
            loaded = _manifest_link(manifest)
            passed("manifest", f"{_manifest_origin(loaded)} ({loaded.name}; connector {loaded.connector_type})")
            pki = _pki_link(loaded, suite_pki, out)
            passed("suite PKI", f"CA {pki.ca_cert}")
            connected, gateway = _control_link(loaded, pki, out, cleanup, passed)
            passed("control API", _describe_info(connected))
            answers = _tls_link(loaded, connected, pki)
            passed("TLS", "; ".join(f"{d} at {where}: certificate verifies, client certificate accepted"
                                    for d, (where, _) in answers.items()))
            passed("directory", "; ".join(f"{d}: GET {WELL_KNOWN_PATH} answered {status}"
                                          for d, (_, status) in answers.items()))
            passed("SUT to reference peer", _reference_link(loaded, connected, pki, out, cleanup, gateway))
        except PreflightFailure as failure:
            report.failure = failure
            report.links.append(LinkResult(failure.link, False, failure.sentence))
    return report


# --------------------------------------------------------------------------------------------
# 1. the manifest


def _manifest_origin(manifest: SutManifest) -> str:
    return str(manifest.source) if manifest.source is not None else "--sut reference"


def _manifest_link(manifest: Any) -> SutManifest:
    from .harness.manifest import ManifestError, SutManifest, load_manifest, reference_manifest

    if not isinstance(manifest, SutManifest):
        try:
            manifest = reference_manifest() if str(manifest) == "reference" else load_manifest(manifest)
        except ManifestError as exc:
            text = _one_line(str(exc))
            fix = ("give the path of your SUT manifest (--sut)" if text.startswith("cannot read")
                   else "fix the manifest (docs/sut-manifest.md lists every field)")
            raise PreflightFailure("manifest", f"{text}: {fix}") from None
    try:
        manifest.control_token()
    except ManifestError as exc:
        raise PreflightFailure("manifest", f"{exc}: export it with the control API's bearer token") from None
    from .harness.connectors import SutConfigurationError
    from .harness.sut_contract import check_manifest_operations

    try:
        check_manifest_operations(manifest)
    except SutConfigurationError as exc:
        raise PreflightFailure("manifest", _one_line(str(exc))) from None
    return manifest


def _manifest_dir(manifest: SutManifest) -> Path:
    return Path(manifest.source).resolve().parent if manifest.source is not None else Path.cwd()


# --------------------------------------------------------------------------------------------
# 2. the suite PKI


def _pki_link(manifest: SutManifest, suite_pki: Path | None, out: Path) -> SuitePki:
    from .harness.suite_pki import SuitePki, SuitePkiError

    directory, where = (suite_pki, "--suite-pki") if suite_pki is not None else (manifest.suite_pki, "suite.pki")
    try:
        if directory is None:  # as a run without one: a new suite PKI in the output folder
            return SuitePki.init(out / "suite-pki")
        return SuitePki.load(Path(directory).resolve(), out / "pki")
    except SuitePkiError as exc:
        raise PreflightFailure("suite PKI", f"{where}: {_one_line(str(exc))}") from None


# --------------------------------------------------------------------------------------------
# 3. the control API


def _control_link(manifest: SutManifest, pki: SuitePki, out: Path, cleanup: contextlib.ExitStack,
                  passed: Callable[[str, str], None]) -> tuple[ConnectedSut, ReferenceGateway | None]:
    """Start or connect the SUT exactly as a run does: the embedded reference SUT by itself (it reaches the
    reference peers directly), any other behind the reference address, which is bound first (its own
    link) so that a spawned SUT is told it. Returns the connected SUT and the gateway (None: embedded)."""
    from .harness.connectors import (
        ConnectorUnavailable,
        RunEnvironment,
        SharedSut,
        SutConfigurationError,
        SutStartError,
        make_connector,
    )
    from .harness.gateway import GatewayError

    if manifest.connector_type == "reference":
        connector = make_connector(manifest, RunEnvironment(out, pki))
        cleanup.callback(connector.stop)
        shared = None
    else:
        if manifest.connector_type == "url" and manifest.control_url is not None:
            # A SUT that runs already: plainer diagnoses than the connector's.
            _compare_info(manifest, _probe_control(manifest))
        shared = SharedSut(manifest, out, pki, workers=1)
        cleanup.callback(shared.stop)
    try:
        connected = connector.start() if shared is None else shared.start()
    except GatewayError as exc:
        raise PreflightFailure("reference address", _one_line(str(exc))) from None
    except ConnectorUnavailable as exc:
        _reference_address_passed(shared, passed)
        raise PreflightFailure("control API", f"{_one_line(str(exc))}: install it, or use the command or "
                                              "url connector (connector.type)") from None
    except SutConfigurationError as exc:
        _reference_address_passed(shared, passed)
        raise PreflightFailure("control API", _one_line(str(exc))) from None
    except SutStartError as exc:
        _reference_address_passed(shared, passed)
        started = connector if shared is None else shared.connector
        raise PreflightFailure("control API", _start_failure(manifest, started, exc)) from None
    _reference_address_passed(shared, passed)
    info = connected.info
    if info is None:
        raise PreflightFailure("control API", f"the SUT has no control API ({connected.control_unavailable}): "
                                              "give control.url")
    _compare_info(manifest, info)
    return connected, None if shared is None else shared.gateway


def _reference_address_passed(shared: Any, passed: Callable[[str, str], None]) -> None:
    if shared is not None and shared.gateway.bound is not None:
        passed("reference address", f"{_gateway_address(shared.gateway)} (every *.ref.test domain)")


def _gateway_address(gateway: ReferenceGateway) -> str:
    from .harness.connectors import _reachable_address

    return _reachable_address(gateway.bound)


def _probe_control(manifest: SutManifest) -> dict[str, Any]:
    from .harness.connectors import wait_healthy
    from .harness.control import ControlClient

    verify: Any = str(manifest.control_ca) if manifest.control_ca else True
    client = ControlClient(manifest.control_url, token=manifest.control_token(), timeout=manifest.timeouts.control,
                           verify=verify)
    try:
        return wait_healthy(client, timeout=manifest.timeouts.startup)
    except Exception as exc:  # noqa: BLE001 - whatever the reason, the sentence is the same
        raise PreflightFailure(
            "control API",
            f"the control API at {manifest.control_url} did not answer GET /v1/info within "
            f"{manifest.timeouts.startup:g}s ({_last_error(exc)}): is the adapter running there? (control.url)",
        ) from None
    finally:
        client.close()


def _start_failure(manifest: SutManifest, connector: Any, exc: BaseException) -> str:
    """One sentence for a SUT that did not start or never answered getInfo."""
    spec = manifest.connector
    message = _one_line(str(getattr(exc, "message", None) or exc))
    cause = exc.__cause__
    if manifest.connector_type == "command":
        argv0 = spec["argv"][0]
        cwd = spec.get("cwd") or str(_manifest_dir(manifest))
        if message.startswith("cannot run"):  # the connector could not spawn argv at all
            if isinstance(cause, OSError) and str(cause.filename) == str(spec.get("cwd")):
                return f"connector.cwd {cwd} does not exist: create it or fix connector.cwd"
            reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else message
            return (f"connector.argv[0] {argv0!r} cannot be run ({reason}): give a path relative to "
                    f"connector.cwd ({cwd}) or a program on PATH")
        process = getattr(connector, "process", None)
        # The connector stops a SUT that never answered, so only its message tells an early exit apart.
        if process is not None and "before its control API answered" in message:
            return (f"the SUT command exited with code {process.returncode} before its control API answered: "
                    f"{_last_line(process.tail()) or '(no stderr)'} (connector.argv runs in {cwd}; relative paths "
                    "in it are resolved from there)")
        return (f"the SUT command runs but its control API at {manifest.control_url} did not answer GET /v1/info "
                f"within {manifest.timeouts.startup:g}s (timeouts.startup): does control.url name the adapter's "
                "address?")
    if manifest.connector_type == "url":
        return (f"the control API at {manifest.control_url} did not answer GET /v1/info within "
                f"{manifest.timeouts.startup:g}s: is the adapter running? (control.url)")
    return f"the SUT did not start: {message}"


def _compare_info(manifest: SutManifest, info: dict[str, Any]) -> None:
    from .harness.connectors import SutConfigurationError
    from .harness.sut_contract import check_info_matches

    roles, said = sorted(info.get("roles", [])), sorted(manifest.roles)
    if roles != said:
        raise PreflightFailure("control API", f"GET /v1/info says roles {roles} but the manifest says {said}: "
                                              "make roles equal")
    try:
        check_info_matches(manifest, info)
    except SutConfigurationError as exc:
        raise PreflightFailure("control API", _one_line(str(exc))) from None


def _describe_info(connected: ConnectedSut) -> str:
    info = connected.info or {}
    return (f"GET /v1/info answers: roles {sorted(info.get('roles', []))}, domains "
            f"{sorted(info.get('providerDomains', []))}, {len(info.get('supportedOperations', []))} operations; "
            "agrees with the manifest")


# --------------------------------------------------------------------------------------------
# 4 and 5. TLS, mutual TLS and the directory


def _tls_link(manifest: SutManifest, connected: ConnectedSut, pki: SuitePki) -> dict[str, tuple[str, str]]:
    """domain -> (address, the directory's HTTP status line), over mutual TLS with the suite's client
    certificate; a failure is a TLS link failure, except a missing HTTP answer (the directory link)."""
    from .harness.reference_names import current

    ca = connected.ca
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        if ca is None:  # no mimi.ca (an image SUT may leave it out): the system's trust store
            context.load_default_certs()
        else:
            context.load_verify_locations(cafile=str(ca))
    except (ssl.SSLError, OSError):
        first = manifest.domains[0]
        raise PreflightFailure("TLS", f"mimi.ca ({ca}) is not a PEM certificate: give the CA that issued {first}'s "
                                      "TLS certificate") from None
    cert, key = pki.issue(current().hub)
    context.load_cert_chain(str(cert), str(key))
    answers = {}
    for domain, endpoint in connected.endpoints.items():
        answers[domain] = _probe_endpoint(domain, endpoint, context, ca, pki, manifest.timeouts.request,
                                          sender=current().hub)
    return answers


def _probe_endpoint(domain: str, endpoint: Any, context: ssl.SSLContext, ca: Path | None, pki: SuitePki,
                    timeout: float, *, sender: str) -> tuple[str, str]:
    split = urlsplit(endpoint.base_url)
    host = endpoint.connect or split.hostname or domain
    port = split.port or 443
    where = f"{host}:{port}"
    field = f"mimi.endpoints.{domain}"
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        raise PreflightFailure("TLS", f"https://{domain} at {where}: connection refused: is the server listening "
                                      f"there? ({field})") from None
    except TimeoutError:
        raise PreflightFailure("TLS", f"https://{domain} at {where}: no TCP connection within {timeout:g}s "
                                      f"(timeouts.request): is the address right? ({field})") from None
    except OSError as exc:
        raise PreflightFailure("TLS", f"https://{domain} at {where}: cannot connect ({exc.strerror or exc}): "
                                      f"fix the address ({field})") from None
    with raw:
        try:
            tls = context.wrap_socket(raw, server_hostname=domain)
        except ssl.SSLCertVerificationError as exc:
            trusted = f"mimi.ca ({ca})" if ca is not None else "the system trust store (no mimi.ca)"
            raise PreflightFailure(
                "TLS", f"{domain}'s certificate does not verify against {trusted}: {exc.verify_message}: give "
                       f"the CA that issued it, and a certificate naming {domain}") from None
        except (ssl.SSLError, OSError) as exc:
            raise PreflightFailure("TLS", _handshake_failure(domain, where, exc, pki)) from None
        with tls:
            request = (f"GET {WELL_KNOWN_PATH} HTTP/1.1\r\nHost: {domain}\r\nFrom: mimi@{sender}\r\n"
                       "Accept: */*\r\nConnection: close\r\n\r\n").encode()
            try:
                tls.sendall(request)
                answer = _read_status_line(tls)
            except (ssl.SSLError, OSError) as exc:
                raise PreflightFailure("TLS", _handshake_failure(domain, where, exc, pki)) from None
    if not answer.startswith("HTTP/"):
        if not answer:
            # Under TLS 1.3 the server judges the client certificate after the client's handshake has
            # ended: a refusal is often just a closed connection.
            raise PreflightFailure(
                "TLS", f"{domain} at {where} closed the connection without an HTTP answer, which is how a TLS 1.3 "
                       f"server refuses the suite's client certificate: trust the suite CA ({pki.ca_cert}, "
                       "MIMI_CONFORMANCE_SUITE_CA) for incoming MIMI connections")
        raise PreflightFailure("directory", f"{domain} at {where} did not answer GET {WELL_KNOWN_PATH} with HTTP "
                                            f"(it sent {answer[:60]!r}): serve MIMI over HTTPS there ({field})")
    return where, answer.split(" ", 2)[1] if answer.count(" ") else answer


def _read_status_line(tls: ssl.SSLSocket) -> str:
    data = b""
    while b"\r\n" not in data and len(data) < 4096:
        chunk = tls.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0].decode("latin-1").strip()


def _handshake_failure(domain: str, where: str, exc: BaseException, pki: SuitePki) -> str:
    text = _one_line(str(exc))
    if any(alert in text.lower() for alert in ("unknown ca", "bad certificate", "certificate required",
                                                "certificate unknown", "access denied", "handshake failure")):
        return (f"{domain} at {where} refused the suite's client certificate ({text}): trust the suite CA "
                f"({pki.ca_cert}, MIMI_CONFORMANCE_SUITE_CA) for incoming MIMI connections")
    return f"the TLS handshake with {domain} at {where} failed ({text}): serve HTTPS with mutual TLS there"


# --------------------------------------------------------------------------------------------
# 6. one request from the SUT to a reference peer


# What the SUT is asked to do, by the role it plays in preflight's room, and the control operations
# that takes: as hub it adds a reference follower's user (it asks the reference follower for key
# material); as follower, added by the reference hub, it sends a message (it submits it to the hub).
TRIGGER_OPERATIONS = {"hub": ("createUser", "createRoom", "addParticipant"), "follower": ("createUser", "sendMessage")}


def trigger_role(manifest: SutManifest) -> str:
    """The SUT's role in preflight's room: hub when it can host one."""
    return "hub" if "hub" in manifest.roles else "follower"


def _reference_link(manifest: SutManifest, connected: ConnectedSut, pki: SuitePki, out: Path,
                    cleanup: contextlib.ExitStack, gateway: ReferenceGateway | None) -> str:
    role = trigger_role(manifest)
    operations = set((connected.info or {}).get("supportedOperations", []))
    lacking = [op for op in TRIGGER_OPERATIONS[role] if op not in operations]
    if lacking:
        return f"not triggered: the SUT's control API lacks {lacking} (the first check that needs the link tells)"
    peer, address = _start_reference_peer("follower" if role == "hub" else "hub", connected, pki, out, cleanup,
                                          gateway)
    domain = peer.domains[0]
    peer_control = peer.control_client(domain)
    if peer_control is None:
        raise PreflightFailure("SUT to reference peer", f"the suite's reference peer has no control API: "
                                                        f"{peer.control_unavailable}")
    cleanup.callback(peer_control.close)
    introspection = peer.control_urls[domain]
    since = time.time()
    mark = _traffic(introspection)["last"]
    control = connected.control
    tag = secrets.token_hex(4)  # a SUT that runs on keeps what earlier preflights made
    try:
        if role == "hub":
            creator = control.call("createUser", body={"user": f"preflight-{tag}", "clients": 1}).body["user"]
            room = control.call("createRoom", body={"creator": creator, "room": f"preflight-{tag}"}).body["room"]
            guest = peer_control.call("createUser", body={"user": f"preflight-{tag}", "clients": 1}).body["user"]
            actor, adding = control, "addParticipant"
            message = None
        else:
            created = control.call("createUser", body={"user": f"preflight-{tag}", "clients": 1}).body
            guest, client = created["user"], created["clients"][0]
            creator = peer_control.call("createUser", body={"user": f"preflight-{tag}", "clients": 1}).body["user"]
            room = peer_control.call("createRoom", body={"creator": creator, "room": f"preflight-{tag}"}).body["room"]
            actor, adding = peer_control, "the reference hub's addParticipant and sendMessage"
            message = {"from": client, "content": {"base64": "cHJlZmxpZ2h0"}}  # "preflight"
    except Exception as exc:  # noqa: BLE001 - any control failure is the same broken link
        raise PreflightFailure("SUT to reference peer", f"the control API refused preflight's setup "
                                                        f"({_one_line(str(exc))}): check the adapter's log") from None
    with contextlib.suppress(Exception):  # refused or failed: fine, the link needs only a request to arrive
        actor.call("addParticipant", {"room": room}, body={"actor": creator, "user": guest})
    deadline = time.monotonic() + manifest.timeouts.poll
    next_send = 0.0
    while True:
        if message is not None and time.monotonic() >= next_send:
            # The SUT can send once it has joined (the hub's Welcome): try until a request arrives.
            next_send = time.monotonic() + 1.0
            with contextlib.suppress(Exception):
                control.call("sendMessage", {"room": room}, body=message)
        arrived = [item for item in _traffic(introspection, mark)["items"] if item["direction"] == "in"]
        if arrived:
            return (f"the SUT sent {arrived[0]['endpoint']} to {domain} through {address} "
                    f"(answered {arrived[0]['status']})")
        refused = _refusals(introspection, since)
        if refused:
            first = refused[0]
            raise PreflightFailure(
                "SUT to reference peer",
                f"the SUT's request reached {domain} but was refused: {first.get('reason')} "
                f"({first.get('detail')}; {first.get('requirement')}): fix what the SUT sends (see {GUIDE}), or run "
                "with --no-preflight to have the checks judge it")
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    unrouted = [name for name in (gateway.unrouted if gateway is not None else ()) if name != domain]
    if unrouted:
        raise PreflightFailure(
            "SUT to reference peer",
            f"the SUT connected to the reference address {address} asking for {unrouted[-1]}, which no reference "
            f"peer serves, and sent nothing to {domain} within {manifest.timeouts.poll:g}s: connect to "
            f"*.ref.test domains by their own name (TLS SNI) (see {GUIDE})")
    raise PreflightFailure(
        "SUT to reference peer",
        f"the SUT sent no request to {domain} within {manifest.timeouts.poll:g}s after {adding}: "
        f"map *.ref.test to {address} and trust {pki.ca_cert} (see {GUIDE})",
    )


def _start_reference_peer(which: str, connected: ConnectedSut, pki: SuitePki, out: Path,
                          cleanup: contextlib.ExitStack, gateway: ReferenceGateway | None
                          ) -> tuple[ReferencePeerProcess, str]:
    """The suite's reference ``which`` (hub or follower), started as a run starts it, and the address the
    SUT reaches it at."""
    from .harness.connectors import GatewayLink, ReferencePeers, RunEnvironment, SutStartError

    link = None if gateway is None else GatewayLink(gateway.routes_dir, gateway.port)
    env = RunEnvironment(out, pki, gateway=link)
    env.publish(dict(connected.endpoints))  # where the reference peer reaches the SUT (peers.yaml)
    peers = ReferencePeers(env, sut_ca=connected.ca)
    cleanup.callback(peers.stop)
    peer = peers.hub if which == "hub" else peers.follower
    try:
        peer.start()  # a run's deadline for the suite's own peer, not the SUT's
    except SutStartError as exc:
        raise PreflightFailure("SUT to reference peer", f"the suite's reference {which} did not start: "
                                                        f"{_one_line(exc.message)}") from None
    if gateway is None:
        return peer, peer.listening[peer.domains[0]]
    return peer, _gateway_address(gateway)


def _traffic(introspection: str, after: int = 2**62) -> dict[str, Any]:
    with httpx.Client(timeout=10) as client:
        return client.get(f"{introspection}/x-reference/v1/traffic", params={"after": after, "limit": 100}).json()


def _refusals(introspection: str, since: float) -> list[dict[str, Any]]:
    with httpx.Client(timeout=10) as client:
        return client.get(f"{introspection}/x-reference/v1/violations", params={"since": since}).json()["refused"]


# --------------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _last_error(exc: BaseException) -> str:
    """What the last attempt met (a poll's "last error: ..."), else the whole message."""
    text = _one_line(str(getattr(exc, "message", None) or exc))
    match = re.search(r"last error: (.*)\)$", text)
    return match.group(1) if match else text

