"""The MIMI transport of draft-ietf-mimi-protocol-06 §4.1: HTTPS with mutual TLS, on aiohttp.

Every request passes these checks, in this order, before any endpoint code runs:

1. TLS: the client presents a certificate chaining to the configured CA (CERT_REQUIRED), or the
   handshake fails and no HTTP exchange happens.
2. Host names a domain this server serves, and the certificate this connection presented (chosen by
   SNI) covers it. Otherwise **421 Misdirected Request** (RFC 9110 §15.5.20: "not able to produce a
   response for this combination of scheme and authority"). The Host port is ignored (§4.1).
   A missing, repeated or unparsable Host is **400**.
3. From is exactly one ``mimi@<domain>`` addr-spec. Missing, repeated or malformed: **400**.
4. The client certificate authenticates the From domain (RFC 6125 DNS-ID against subjectAltName
   dNSNames; the CN is never used). Otherwise **403 Forbidden**: the request is well-formed but the
   peer is not who it says it is.
5. Routing: unknown path or an endpoint with no registered handler **404**; wrong method **405**;
   a malformed path variable (bad percent-escape, not UTF-8) **400**.
6. Body: a Content-Length over the limit is refused **413** before reading anything; a chunked body
   is refused **413** as soon as it passes the limit; a body that does not arrive within the read
   timeout is **408**. Both close the connection. With ``Expect: 100-continue``, checks 2-6 run
   before the server sends ``100 Continue``, so a refused body is never invited.
7. The handler: :class:`MimiHTTPError` becomes its status, a wire DecodeError becomes **400**, any
   other exception is a bug: **500**, logged with its traceback.

Every refusal is logged on ``reference_peer.server.transport`` with a structured ``mimi_refusal``
attribute (:class:`Refusal`) and kept in :attr:`MimiServer.refusals`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType

from aiohttp import web
from cryptography import x509

from reference_peer.overrides import NO_OVERRIDES, Overrides, step
from reference_peer.pki import subject_alt_dns_names
from reference_peer.wire.codec import DecodeError

from .endpoints import (
    DIRECTORY_PATH,
    ENDPOINTS,
    Endpoint,
    PathError,
    api_prefix,
    decode_segment,
    directory_json,
    match_endpoint,
)
from .names import (
    MalformedFrom,
    MalformedHost,
    certificate_authenticates,
    normalize_domain,
    parse_from,
    parse_host,
    peer_dns_names,
)
from .tls import StrPath, server_context

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024

# Set on every request that passed the §4.1 checks, for code that works on the aiohttp request.
MIMI_PEER = web.RequestKey("mimi_peer", str)  # the authenticated source provider domain
MIMI_TARGET = web.RequestKey("mimi_target", str)  # the Host domain


def _parse_from(value: str | None) -> str:
    """:func:`parse_from`, judging the local part by -06 §4.1's MUST: it "MUST contain the fixed string
    mimi" (AMB-FROM-LOCALPART-CONTAINS), so ``mimi-server@b.example`` names b.example like ``mimi@b.example``."""
    try:
        return parse_from(value)
    except MalformedFrom as exc:
        if exc.requirement != "PROTO-TRANSPORT-FROM-LOCALPART-MIMI" or value is None:
            raise
        local, _, domain = value.strip().rpartition("@")
        if "mimi" not in local:
            raise MalformedFrom(f"From local-part {local!r} does not contain the fixed string 'mimi'",
                                exc.requirement) from None
        return parse_from(f"mimi@{domain}")


class MimiHTTPError(Exception):
    """Raised by a handler to answer with an error status; ``reason`` is a short stable code for logs."""

    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        super().__init__(f"{status} {reason}: {detail}" if detail else f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.detail = detail


class BadRequest(MimiHTTPError):
    """Malformed input: the handler could not make sense of the request."""

    def __init__(self, detail: str, reason: str = "malformed-request") -> None:
        super().__init__(400, reason, detail)


@dataclass(frozen=True)
class MimiRequest:
    """What an endpoint handler gets: an authenticated, routed request with its body read."""

    endpoint: str
    peer_domain: str  # the From domain, authenticated by the client certificate
    target_domain: str  # the Host domain (one of the provider's names)
    params: Mapping[str, str]  # the path variable, percent-decoded, e.g. {"roomId": "mimi://a.example/r/x"}
    body: bytes
    http: web.Request

    @property
    def value(self) -> str:
        """The endpoint's single path variable."""
        return next(iter(self.params.values()))


@dataclass(frozen=True)
class MimiResponse:
    # No HTTP media type is defined by -06; MIMI bodies are TLS-presentation-language bytes.
    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[MimiRequest], Awaitable[MimiResponse | web.StreamResponse]]


class Provider:
    """One provider served by a :class:`MimiServer`: its domain(s), TLS identity and endpoint handlers."""

    def __init__(self, domain: str, cert_file: StrPath, key_file: StrPath, *, aliases: Iterable[str] = ()) -> None:
        self.domain = normalize_domain(domain)
        self.aliases = tuple(normalize_domain(a) for a in aliases)
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self._handlers: dict[str, Handler] = {}

    @property
    def names(self) -> tuple[str, ...]:
        return (self.domain, *self.aliases)

    def register(self, endpoint: str, handler: Handler) -> None:
        """Serve ``endpoint`` (a §5.1 directory key such as ``"notify"``) with ``handler``; replaces any previous one."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown MIMI endpoint {endpoint!r}; known: {sorted(ENDPOINTS)}")
        self._handlers[endpoint] = handler

    def unregister(self, endpoint: str) -> None:
        self._handlers.pop(endpoint, None)

    def endpoint(self, name: str) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`register`."""

        def decorate(handler: Handler) -> Handler:
            self.register(name, handler)
            return handler

        return decorate

    def handler(self, endpoint: str) -> Handler | None:
        return self._handlers.get(endpoint)

    @property
    def registered(self) -> tuple[str, ...]:
        return tuple(self._handlers)


@dataclass(frozen=True)
class ServerLimits:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    body_read_timeout: float = 10.0  # whole body, from the first read
    handshake_timeout: float = 10.0
    keepalive_timeout: float = 30.0
    shutdown_timeout: float = 2.0  # how long stop() lets in-flight handlers finish
    lingering_time: float = 1.0  # aiohttp drains an unread body this long before closing


@dataclass(frozen=True)
class Refusal:
    """One refused request, as logged."""

    status: int
    reason: str
    detail: str
    method: str
    path: str
    host: str | None
    from_header: str | None
    peer_cert_names: tuple[str, ...]
    remote: str | None
    # The transport rule the request broke, when the refusal is one a conforming peer never meets
    # (the suite blames a SUT's blocked checks on it); None for refusals of the request's content.
    requirement: str | None = None
    time: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


class _Refuse(Exception):
    def __init__(
        self, status: int, reason: str, detail: str, *, close: bool = False, headers=None, requirement: str | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.close = close
        self.headers = headers or {}
        self.requirement = requirement


@dataclass(frozen=True)
class _Admitted:
    target_domain: str
    host_port: int | None
    peer_domain: str
    endpoint: Endpoint | None = None  # None: the directory
    handler: Handler | None = None
    value: str = ""


def _cert_file_names(cert_file: Path) -> tuple[str, ...]:
    return tuple(subject_alt_dns_names(x509.load_pem_x509_certificate(cert_file.read_bytes())))


# The rules of the §4.1 transport this server performs (steps a server may be built to perform otherwise;
# reference_peer.overrides). Hooks are called with the arguments named in each summary.
PRESENT_CA_CERTIFICATE = step(
    "server.tls.present-ca-certificate", "PROTO-TRANSPORT-CERT-TARGET-DOMAIN",
    summary="the listener presents the provider's CA-issued certificate (hook(domain, cert_file, key_file) -> "
            "the (certificate, key) files to present instead)",
)
REQUIRE_CLIENT_CERTIFICATE = step(
    "server.tls.require-client-certificate", "PROTO-TRANSPORT-MTLS",
    summary="the listener requires a client certificate chaining to the CA (hook() -> another ssl.VerifyMode)",
)
TLS_ONLY = step(
    "server.listen.tls-only", "PROTO-TRANSPORT-HTTPS-ONLY",
    summary="the listener speaks TLS only and a request without TLS state is refused (hook(loop, protocol_factory, "
            "host, port, ssl_context, handshake_timeout) -> an awaitable of another listener)",
)
FROM_AUTHENTICATED = step(
    "server.admit.from-authenticated", "PROTO-TRANSPORT-CERT-SOURCE-DOMAIN", "PROTO-TRANSPORT-MTLS",
    summary="the client certificate authenticates the From domain, or 403 (hook(tls=, peer_names=, from_domain=, "
            "local_domains=) -> True to admit the request anyway)",
)
REFUSE_UNSERVED_HOST = step(
    "server.host.refuse-unserved", "PROTO-TRANSPORT-HOST-TARGET",
    summary="a Host naming a domain this server does not serve is answered 421",
)
IGNORE_HOST_PORT = step(
    "server.host.ignore-port", "PROTO-TRANSPORT-HOST-TARGET",
    summary="the port of the Host header is ignored (-06 §4.1)",
)
TLS_VERSIONS = step(
    "server.tls.versions", "PROTO-TRANSPORT-HTTPS-ONLY",
    summary="the listener negotiates TLS 1.2 or later (hook() -> another minimum ssl.TLSVersion)",
)
PERSISTENT_CONNECTIONS = step(
    "server.connection.persistent", "PROTO-TRANSPORT-HTTPS-ONLY",
    summary="the listener keeps a connection open for further requests after a response (HTTP/1.1 persistence)",
)
SERVE_DIRECTORY = step(
    "server.route.directory", "PROTO-DIRECTORY-WELL-KNOWN",
    summary="GET /.well-known/mimi-protocol-directory is answered with the directory (hook() -> another path the "
            "directory is served at instead; the well-known path is then answered 404)",
)
BODY_LIMIT = step(
    "server.admit.body-limit", "PROTO-TRANSPORT-HTTPS-ONLY",
    summary="a request is refused 413 only when its Content-Length passes the configured limit, so MIMI request "
            "bodies are served over HTTPS (hook(limit) -> another limit in bytes)",
)
READ_CHUNKED_BODY = step(
    "server.read.chunked-body", "PROTO-TRANSPORT-HTTPS-ONLY",
    summary="a request body framed without Content-Length (Transfer-Encoding: chunked, RFC 9112 §7.1) is read in "
            "full and handled as the same body with Content-Length",
)
REFUSE_UNUSABLE_HOST = step(
    "server.host.refuse-missing-or-malformed", "PROTO-TRANSPORT-HOST-TARGET",
    summary="a request with no Host, several, or one that does not parse is refused 400 (RFC 9112 §3.2) (hook(hosts, "
            "served_names) -> the Host values to take instead)",
)
REFUSE_REPEATED_FROM = step(
    "server.from.refuse-repeated", "PROTO-TRANSPORT-CERT-SOURCE-DOMAIN",
    summary="a request with more than one From field line is refused 400: it names more than one source provider "
            "(a server departing takes the first)",
)
SEND_CONTINUE = step(
    "server.expect.send-continue", "PROTO-TRANSPORT-HTTPS-ONLY",
    summary="an HTTP/1.1 request with Expect: 100-continue that passes the header checks is answered 100 Continue "
            "before its body is read, an HTTP/1.0 one never (RFC 9110 §10.1.1, §15.2)",
)
DIRECTORY_RESPONSE = step(
    "server.directory.json-response", "PROTO-DIRECTORY-WELL-KNOWN",
    summary="the directory is answered with Content-Type: application/json and no other header (hook() -> the "
            "response headers instead, Content-Type included)",
)


class MimiServer:
    """An HTTPS+mTLS listener serving one or more providers, selected by Host (and by SNI for the certificate).

    In-process use::

        server = MimiServer([provider], ca_file=pki.ca_cert)
        await server.start()          # binds; server.port is the real port when port=0
        ...
        await server.stop()

    or ``async with MimiServer(...) as server:``.
    """

    def __init__(
        self,
        providers: Iterable[Provider],
        ca_file: StrPath,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: ServerLimits | None = None,
        max_refusals_kept: int = 1000,
        overrides: Overrides = NO_OVERRIDES,
        advertise_port: int | None = None,
    ) -> None:
        self.providers = list(providers)
        # Behind a gateway peers reach this listener on another port: the one its published URLs name.
        self.advertise_port = advertise_port
        self.overrides = overrides
        if not self.providers:
            raise ValueError("a MimiServer needs at least one provider")
        self.ca_file = Path(ca_file)
        self.host = host
        self.limits = limits or ServerLimits()
        self._requested_port = port
        self._by_name: dict[str, Provider] = {}
        for provider in self.providers:
            for name in provider.names:
                if name in self._by_name:
                    raise ValueError(f"domain {name!r} is served by two providers")
                self._by_name[name] = provider
        self.refusals: collections.deque[Refusal] = collections.deque(maxlen=max_refusals_kept)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.base_events.Server | None = None
        self._ssl_context: ssl.SSLContext | None = None
        self._cert_names: dict[ssl.SSLContext, tuple[str, ...]] = {}
        self._sni_contexts: dict[str, ssl.SSLContext] = {}
        self.port: int | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    def _build_tls(self) -> ssl.SSLContext:
        self._cert_names.clear()
        self._sni_contexts.clear()
        contexts = []
        for provider in self.providers:
            files = self.overrides.hook(PRESENT_CA_CERTIFICATE, provider.domain, provider.cert_file, provider.key_file)
            ctx = server_context(*(files or (provider.cert_file, provider.key_file)), self.ca_file)
            verify_mode = self.overrides.hook(REQUIRE_CLIENT_CERTIFICATE)
            if verify_mode is not None:
                ctx.verify_mode = verify_mode
            minimum_version = self.overrides.hook(TLS_VERSIONS)
            if minimum_version is not None:
                ctx.minimum_version = minimum_version
            cert_names = _cert_file_names(provider.cert_file)
            self._cert_names[ctx] = cert_names
            uncovered = [n for n in provider.names if not certificate_authenticates(n, cert_names)]
            if uncovered:
                # Not fatal: negative tests run providers with deliberately wrong certificates.
                log.warning("certificate %s (names %s) does not cover %s", provider.cert_file, cert_names, uncovered)
            for name in provider.names:
                self._sni_contexts[name] = ctx
            contexts.append(ctx)
        default = contexts[0]
        default.sni_callback = self._select_certificate
        return default

    def _select_certificate(self, ssl_obj, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        # An unknown or absent SNI keeps the default certificate; the Host check then answers 421,
        # which tells the peer more than a failed handshake would.
        if server_name:
            ctx = self._sni_contexts.get(server_name.lower().rstrip("."))
            if ctx is not None and ctx is not ssl_obj.context:
                ssl_obj.context = ctx
        return None

    async def start(self) -> None:
        if self._listener is not None:
            raise RuntimeError("server already started")
        self._ssl_context = self._build_tls()
        app = web.Application(client_max_size=self.limits.max_body_bytes)
        app.router.add_route("*", "/{tail:.*}", self._dispatch, expect_handler=self._expect)
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            keepalive_timeout=self.limits.keepalive_timeout,
            lingering_time=self.limits.lingering_time,
            shutdown_timeout=self.limits.shutdown_timeout,
        )
        await runner.setup()
        loop = asyncio.get_running_loop()
        try:
            # loop.create_server directly (not web.TCPSite) for the TLS handshake timeout, which
            # bounds how long a silent or garbage-sending client holds a connection before HTTP starts.
            other_listener = self.overrides.hook(
                TLS_ONLY, loop, runner.server, self.host, self._requested_port, self._ssl_context,
                self.limits.handshake_timeout,
            )
            if other_listener is not None:
                self._listener = await other_listener
            else:
                self._listener = await loop.create_server(
                    runner.server,
                    self.host,
                    self._requested_port,
                    ssl=self._ssl_context,
                    ssl_handshake_timeout=self.limits.handshake_timeout,
                    reuse_address=True,
                )
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = self._listener.sockets[0].getsockname()[1]
        log.info("MIMI server listening on %s:%s for %s", self.host, self.port, ", ".join(self._by_name))

    async def stop(self) -> None:
        listener, runner = self._listener, self._runner
        self._listener = self._runner = None
        if listener is not None:
            listener.close()
        if runner is not None:
            await runner.cleanup()
        if listener is not None:
            await listener.wait_closed()

    async def __aenter__(self) -> MimiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    def provider(self, domain: str) -> Provider:
        return self._by_name[domain.lower()]

    def authority(self, domain: str) -> str:
        """``domain:port`` as a client addresses this server for ``domain``."""
        if self.port is None:
            raise RuntimeError("server not started")
        return f"{domain}:{self.port}"

    def public_authority(self, domain: str) -> str:
        """``domain:port`` as this server publishes itself: the advertised port when set, else the listening one."""
        if self.advertise_port is None:
            return self.authority(domain)
        return f"{domain}:{self.advertise_port}"

    def base_url(self, domain: str) -> str:
        return f"https://{self.public_authority(domain)}"

    # --- request pipeline -------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        context: dict = {"peer_cert_names": (), "from": None, "host": None}
        try:
            response = await self._handle(request, context)
        except _Refuse as refusal:
            response = self._refuse(request, context, refusal)
        if self.overrides.departs(PERSISTENT_CONNECTIONS) and not response.prepared:
            response.force_close()  # "Connection: close" on every response (RFC 9112 §9.6)
        return response

    def _refuse(self, request: web.Request, context: dict, refusal: _Refuse) -> web.Response:
        record = Refusal(
            status=refusal.status,
            reason=refusal.reason,
            detail=refusal.detail,
            method=request.method,
            path=request.raw_path,
            host=context["host"],
            from_header=context["from"],
            peer_cert_names=tuple(context["peer_cert_names"]),
            remote=request.remote,
            requirement=refusal.requirement,
            time=time.time(),
        )
        self.refusals.append(record)
        log.warning(
            "refused %s %s with %d (%s): %s; Host=%r From=%r peer certificate names=%s",
            record.method, record.path, record.status, record.reason, record.detail,
            record.host, record.from_header, list(record.peer_cert_names),
            extra={"mimi_refusal": record},
        )
        response = web.Response(
            status=refusal.status, text=f"{refusal.reason}: {refusal.detail}\n", headers=refusal.headers
        )
        if refusal.close:
            response.force_close()
        return response

    def _admit(self, request: web.Request, context: dict) -> _Admitted:
        """Every check that needs no body: TLS state, Host, From against the certificate, route, declared size."""
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is None and not self.overrides.departs(TLS_ONLY):
            raise _Refuse(400, "no-tls", "connection has no TLS state", close=True)
        context["tls"] = ssl_object is not None
        peer_names = peer_dns_names(ssl_object.getpeercert(binary_form=True)) if ssl_object is not None else []
        context["peer_cert_names"] = peer_names

        target_domain, host_port = self._check_host(request, context, ssl_object)
        peer_domain = self._check_from(request, context, peer_names)
        request[MIMI_PEER] = peer_domain
        request[MIMI_TARGET] = target_domain

        raw_path = request.raw_path.partition("?")[0]
        if raw_path == (self.overrides.hook(SERVE_DIRECTORY) or DIRECTORY_PATH):
            if request.method not in ("GET", "HEAD"):
                raise _Refuse(405, "method-not-allowed", f"{request.method} on the directory", headers={"Allow": "GET"})
            return _Admitted(target_domain, host_port, peer_domain)

        matched = match_endpoint(raw_path, api_prefix(self.overrides))
        if matched is None:
            raise _Refuse(404, "unknown-path", f"no MIMI endpoint at {raw_path!r}")
        endpoint, segment = matched
        if request.method != endpoint.method:
            raise _Refuse(
                405, "method-not-allowed", f"{endpoint.name} takes {endpoint.method}, got {request.method}",
                headers={"Allow": endpoint.method},
            )
        # A request at a served endpoint's URL reaches its handler: a requestConsent for a known user is
        # answered 201 (PROTO-CONSENT-REQUEST-RESPONSE), not refused as an endpoint not served.
        handler = self._by_name[target_domain].handler(endpoint.name)
        if handler is None:
            raise _Refuse(404, "endpoint-not-served", f"{target_domain} serves no {endpoint.name} endpoint")
        try:
            value = decode_segment(segment)
        except PathError as exc:
            raise _Refuse(400, "malformed-path", str(exc)) from None
        limit = self.overrides.hook(BODY_LIMIT, self.limits.max_body_bytes) or self.limits.max_body_bytes
        declared = request.content_length
        if declared is not None and declared > limit:
            raise _Refuse(413, "body-too-large", f"Content-Length {declared} exceeds the limit of {limit}", close=True)
        return _Admitted(target_domain, host_port, peer_domain, endpoint, handler, value)

    async def _expect(self, request: web.Request) -> web.StreamResponse | None:
        # Expect: 100-continue asks permission to send the body: refuse here, before inviting it.
        context: dict = {"peer_cert_names": (), "from": None, "host": None}
        try:
            self._admit(request, context)
            if request.headers.get("Expect", "").lower() != "100-continue":
                raise _Refuse(417, "expectation-failed", f"unsupported Expect: {request.headers.get('Expect')!r}")
        except _Refuse as refusal:
            return self._refuse(request, context, refusal)
        if request.version >= (1, 1):
            await self._send_continue(request)
        return None

    async def _send_continue(self, request: web.Request) -> None:
        if not self.overrides.departs(SEND_CONTINUE):
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _host_values(self, request: web.Request) -> list[str]:
        """The request's Host field values (as a server departing from REFUSE_UNUSABLE_HOST takes them)."""
        hosts = request.headers.getall("Host", [])
        other = self.overrides.hook(REFUSE_UNUSABLE_HOST, hosts, tuple(self._by_name))
        return hosts if other is None else other

    def _from_values(self, request: web.Request) -> list[str]:
        """The request's From field values (as a server departing from REFUSE_REPEATED_FROM takes them)."""
        froms = request.headers.getall("From", [])
        if self.overrides.departs(REFUSE_REPEATED_FROM):
            return froms[:1]  # a fault's: a repeated From is taken as its first line
        return froms

    async def _handle(self, request: web.Request, context: dict) -> web.StreamResponse:
        admitted = self._admit(request, context)
        if admitted.endpoint is None:
            # The directory's URLs name this server's authority, a host and a valid port, so a peer can
            # reach the endpoints through them (PROTO-DIRECTORY-HTTPS-URLS).
            authority = admitted.target_domain
            if self.advertise_port is not None:
                authority = f"{authority}:{self.advertise_port}"
            elif admitted.host_port is not None:
                authority = f"{authority}:{admitted.host_port}"
            served = self._by_name[admitted.target_domain].registered
            body = directory_json(authority, served, self.overrides)
            headers = self.overrides.hook(DIRECTORY_RESPONSE)
            if headers is not None:
                return web.Response(body=body, headers=headers)
            return web.Response(body=body, content_type="application/json")
        body = await self._read_body(request)
        mimi_request = MimiRequest(
            endpoint=admitted.endpoint.name,
            peer_domain=admitted.peer_domain,
            target_domain=admitted.target_domain,
            params=MappingProxyType({admitted.endpoint.variable: admitted.value}),
            body=body,
            http=request,
        )
        return await self._run_handler(admitted.handler, mimi_request)

    def _check_host(self, request: web.Request, context: dict, ssl_object) -> tuple[str, int | None]:
        hosts = self._host_values(request)
        context["host"] = ", ".join(hosts) or None
        if len(hosts) != 1:
            raise _Refuse(
                400, "malformed-host", "missing Host header" if not hosts else "repeated Host header",
                requirement="PROTO-TRANSPORT-IDENTIFY-PROVIDERS",
            )
        try:
            domain, port = parse_host(hosts[0])
        except MalformedHost as exc:
            raise _Refuse(400, "malformed-host", str(exc), requirement="PROTO-TRANSPORT-IDENTIFY-PROVIDERS") from None
        if domain not in self._by_name and self.overrides.departs(REFUSE_UNSERVED_HOST):
            domain = self.providers[0].domain  # -06 §4.1 obliges no refusal of a Host not served
        if port is not None and port not in (self.port, self.advertise_port) and self.overrides.departs(IGNORE_HOST_PORT):
            raise _Refuse(421, "host-port-mismatch", f"Host port {port} is not this server's port {self.port}")
        if domain not in self._by_name:
            raise _Refuse(
                421, "host-not-served", f"this server does not serve {domain!r}", requirement="PROTO-TRANSPORT-HOST-TARGET"
            )
        connection_names = self._cert_names.get(ssl_object.context, ()) if ssl_object is not None else (domain,)
        if not certificate_authenticates(domain, connection_names):
            raise _Refuse(
                421, "host-not-covered-by-connection",
                f"this connection's certificate ({list(connection_names)}) does not cover {domain!r}; check SNI",
            )
        return domain, port

    def _check_from(self, request: web.Request, context: dict, peer_names: list[str]) -> str:
        """The requesting provider's domain, from its one From header, which its client certificate must
        authenticate. Every MIMI request passes here, the directory's GET included, so a well-formed one is
        admitted (PROTO-DIRECTORY-WELL-KNOWN: the directory is served)."""
        froms = self._from_values(request)
        context["from"] = ", ".join(froms) or None
        if len(froms) > 1:
            raise _Refuse(400, "malformed-from", "repeated From header", requirement="PROTO-TRANSPORT-IDENTIFY-PROVIDERS")
        try:
            peer_domain = _parse_from(froms[0] if froms else None)
        except MalformedFrom as exc:
            raise _Refuse(400, "malformed-from", str(exc), requirement=exc.requirement) from None
        if not certificate_authenticates(peer_domain, peer_names) and not self.overrides.hook(
            FROM_AUTHENTICATED, tls=context.get("tls", True), peer_names=peer_names, from_domain=peer_domain,
            local_domains=self._by_name,
        ):
            raise _Refuse(
                403, "from-certificate-mismatch",
                f"client certificate names {peer_names} do not authenticate From domain {peer_domain!r}",
                requirement="PROTO-TRANSPORT-CERT-SOURCE-DOMAIN",
            )
        return peer_domain

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.limits.max_body_bytes
        if request.content_length is None and self.overrides.departs(READ_CHUNKED_BODY):
            return b""  # a fault's: a body without Content-Length is taken as empty
        body = bytearray()
        try:
            async with asyncio.timeout(self.limits.body_read_timeout):
                while chunk := await request.content.readany():
                    body += chunk
                    if len(body) > limit:
                        raise _Refuse(413, "body-too-large", f"body exceeds the limit of {limit} bytes", close=True)
        except TimeoutError:
            raise _Refuse(
                408, "body-timeout",
                f"body incomplete after {self.limits.body_read_timeout}s ({len(body)} bytes read)", close=True,
            ) from None
        return bytes(body)

    async def _run_handler(self, handler: Handler, mimi_request: MimiRequest) -> web.StreamResponse:
        try:
            result = await handler(mimi_request)
        except MimiHTTPError as exc:
            raise _Refuse(exc.status, exc.reason, exc.detail) from None
        except DecodeError as exc:
            raise _Refuse(
                400, "undecodable-body", f"{mimi_request.endpoint}: {exc}", requirement="PROTO-TRANSPORT-BODY-ENCODING"
            ) from None
        except Exception:
            log.exception(
                "handler for %s failed (peer %s, target %s, path %s)",
                mimi_request.endpoint, mimi_request.peer_domain, mimi_request.target_domain,
                mimi_request.http.raw_path,
            )
            return web.Response(status=500, text="internal error\n")
        # The handler's answer is the one sent: a keyMaterial request for a user whose clients have KeyPackages
        # is answered 200 with them (PROTO-KEYMAT-PUBLICATION-POINT), not replaced by an internal error.
        if isinstance(result, web.StreamResponse):
            return result
        if isinstance(result, MimiResponse):
            return web.Response(
                status=result.status, body=result.body, content_type=result.content_type, headers=result.headers
            )
        log.error("handler for %s returned %r, not a MimiResponse", mimi_request.endpoint, type(result).__name__)
        return web.Response(status=500, text="internal error\n")
