"""The outgoing side of the §4.1 transport: calls to peer providers over HTTPS with mutual TLS, on httpx.

A misbehaving peer (silent, trickling, huge, resetting, speaking garbage, failing TLS) becomes one of
the :class:`PeerError` subclasses within a bounded time: every request runs under one overall
deadline and reads at most ``max_response_bytes``. HTTP error statuses are *not* exceptions: they are
answers, returned in :class:`PeerReply` for the caller to judge.

Peers are named by authority (``a.example`` or ``a.example:8443``). ``resolve`` maps domains to
addresses without DNS (the suite runs every provider on loopback), and ``connect`` (a function of the
host) does the same from a table that may change (the reference peer's ``peers`` entries): the request
then connects to the mapped address while TLS still verifies, and Host still names, the domain.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..overrides import NO_OVERRIDES, Overrides, step
from .endpoints import DIRECTORY_PATH, ENDPOINTS, expand_template
from .names import MIMI_LOCAL_PART, normalize_domain
from .tls import StrPath, client_context, is_tls_failure

# httpcore 1.0 runs ``import sniffio`` for every lock, event and semaphore it makes (several per
# request) and falls back to asyncio when that fails. sniffio is optional (anyio 4 no longer requires
# it): when absent, each attempt was a failed import searching all of sys.path, about 0.2 ms, a fifth
# of the client's CPU per request. Recording the absence once (a None entry in sys.modules) makes
# later attempts fail at once, with the same outcome. Nothing changes when sniffio is installed.
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024


class PeerError(Exception):
    """A call to a peer produced no usable HTTP answer."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(f"{message} ({url})" if url else message)
        self.url = url


class PeerTLSError(PeerError):
    """The TLS handshake failed or the peer aborted it: certificate rejected either way, no shared protocol."""


class PeerTimeout(PeerError):
    """No complete answer within the deadline (silent, slow or trickling peer)."""


class PeerConnectionError(PeerError):
    """Connection refused, reset or closed before an answer."""


class PeerResponseTooLarge(PeerError):
    """The response body exceeds ``max_response_bytes``; reading stopped there."""


class PeerProtocolError(PeerError):
    """The peer answered with something that is not valid HTTP."""


class PeerDirectoryError(PeerError):
    """The peer's §5.1 directory could not be fetched, is not a JSON object, lacks an endpoint asked
    for, or names one with an unusable URL template.

    ``missing``: the endpoints asked for that the directory does not list; ``bad_templates``:
    endpoint -> why its template is unusable (every one asked for, not only the first); both empty
    when the document itself could not be had (``unusable``)."""

    def __init__(self, message: str, *, url: str | None = None, missing: tuple[str, ...] = (),
                 bad_templates: Mapping[str, str] | None = None) -> None:
        super().__init__(message, url=url)
        self.missing = tuple(missing)
        self.bad_templates = dict(bad_templates or {})

    @property
    def unusable(self) -> bool:
        """The document itself could not be had (no 200, not JSON, not a JSON object)."""
        return not self.missing and not self.bad_templates


@dataclass(frozen=True)
class ClientLimits:
    timeout: float = 10.0  # the whole exchange: connect, send, and read the full response
    connect_timeout: float = 5.0
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


@dataclass(frozen=True)
class PeerReply:
    status: int
    headers: httpx.Headers
    body: bytes
    url: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Exchange:
    """One request as the observer sees it (for the harness recorder); ``error`` set when it failed."""

    method: str
    url: str
    request_headers: Mapping[str, str]
    request_body: bytes
    status: int | None = None
    response_headers: Mapping[str, str] = field(default_factory=dict)
    response_body: bytes = b""
    error: PeerError | None = None
    elapsed: float = 0.0


FROM_LOCALPART_EXACTLY_MIMI = step(
    "client.from.localpart-exactly-mimi", "PROTO-TRANSPORT-FROM-LOCALPART-MIMI",
    summary="requests to peers carry From: mimi@<domain> (the local part is exactly mimi; -06 §4.1 asks only "
            "that it contain mimi)",
)


class MimiClient:
    """Calls peers as provider ``domain``: presents its certificate and sends ``From: mimi@<domain>``.

    ::

        async with MimiClient("b.example", cert, key, ca, resolve={"a.example": "127.0.0.1"}) as client:
            reply = await client.call("a.example:8443", "notify", "mimi://a.example/r/room", body)
    """

    def __init__(
        self,
        domain: str,
        cert_file: StrPath,
        key_file: StrPath,
        ca_file: StrPath,
        *,
        limits: ClientLimits | None = None,
        resolve: Mapping[str, str] | None = None,
        connect: Callable[[str], str | None] | None = None,
        observer: Callable[[Exchange], None] | None = None,
        overrides: Overrides = NO_OVERRIDES,
    ) -> None:
        self.domain = normalize_domain(domain)
        self.overrides = overrides
        self.limits = limits or ClientLimits()
        # -06 §4.1: the local part "MUST contain the fixed string mimi" (AMB-FROM-LOCALPART-CONTAINS).
        local = "mimi-server" if self.overrides.departs(FROM_LOCALPART_EXACTLY_MIMI) else MIMI_LOCAL_PART
        self.from_header = f"{local}@{self.domain}"
        self._ssl_context = client_context(cert_file, key_file, ca_file)
        self._resolve = {normalize_domain(k): v for k, v in (resolve or {}).items()}
        # Consulted per request, before ``resolve``: a routing table that may change while running.
        self._connect = connect
        self._observer = observer
        # One connection pool per target authority: with ``resolve`` several domains can share an
        # address and port, and a pooled connection whose certificate names one domain must never
        # carry a request for another.
        self._pools: dict[tuple[str, int], httpx.AsyncClient] = {}
        self._directories: dict[str, dict[str, Any]] = {}

    async def aclose(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            await pool.aclose()

    async def __aenter__(self) -> MimiClient:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    def _pool(self, host: str, port: int) -> httpx.AsyncClient:
        # Every request to a peer goes out through a pool, From: mimi@<own domain> (PROTO-TRANSPORT-FROM-LOCALPART-MIMI):
        # a user's grant queued for the requester's provider reaches it (EXT-CONSENT-FIRST-GRANT-SENT) only through one.
        key = (host, port)
        pool = self._pools.get(key)
        if pool is None:
            pool = httpx.AsyncClient(
                verify=self._ssl_context,
                follow_redirects=False,
                trust_env=False,  # never route peer traffic through an environment proxy
            )
            self._pools[key] = pool
        return pool

    async def request(
        self,
        method: str,
        url: str,
        body: bytes = b"",
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        max_response_bytes: int | None = None,
    ) -> PeerReply:
        """One HTTPS exchange with a peer. Raises a :class:`PeerError` subclass instead of hanging or over-reading.

        ``headers`` override the defaults, From and Host included: negative tests send a wrong From this way.
        """
        # Every request to a peer goes out here (PROTO-TRANSPORT-FROM-LOCALPART-MIMI): a user's grant queued for the
        # requester's provider reaches it (EXT-CONSENT-FIRST-GRANT-SENT) only if this sends it.
        target = httpx.URL(url)
        if target.scheme != "https":
            raise PeerError(f"MIMI peers are reached over https only, not {target.scheme!r}", url=url)
        host = target.host.lower()
        port = target.port or 443
        deadline = self.limits.timeout if timeout is None else timeout
        cap = self.limits.max_response_bytes if max_response_bytes is None else max_response_bytes
        send_headers = {
            "From": self.from_header,
            "Host": target.netloc.decode("ascii"),
            "Accept-Encoding": "identity",  # the size cap counts wire bytes; no decompression bombs
        }
        if body or method.upper() not in ("GET", "HEAD"):
            send_headers["Content-Type"] = "application/octet-stream"
        send_headers.update(headers or {})
        connect_url = target
        extensions = {}
        address = (self._connect(host) if self._connect is not None else None) or self._resolve.get(host)
        if address:
            connect_url = target.copy_with(host=address)
            extensions["sni_hostname"] = host
        started = time.monotonic()
        status: int | None = None
        response_headers: httpx.Headers = httpx.Headers()
        received = bytearray()
        try:
            try:
                async with asyncio.timeout(deadline):
                    async with self._pool(host, port).stream(
                        method, connect_url, content=body, headers=send_headers, extensions=extensions,
                        timeout=self._phase_timeouts(deadline),
                    ) as response:
                        status, response_headers = response.status_code, response.headers
                        declared = response.headers.get("content-length")
                        if declared is not None and declared.isdigit() and int(declared) > cap:
                            raise PeerResponseTooLarge(
                                f"peer declares a {declared}-byte body, over the {cap}-byte cap", url=url
                            )
                        async for chunk in response.aiter_raw():
                            received += chunk
                            if len(received) > cap:
                                raise PeerResponseTooLarge(f"response body passed the {cap}-byte cap", url=url)
            except TimeoutError:
                raise PeerTimeout(f"no complete response within {deadline}s", url=url) from None
            except httpx.TimeoutException as exc:
                phase = {
                    "ConnectTimeout": "no connection and TLS handshake within "
                                      f"{self._phase_timeouts(deadline).connect:g}s",
                    "ReadTimeout": f"the peer sent nothing for {deadline:g}s",
                    "WriteTimeout": f"the peer took nothing for {deadline:g}s",
                }.get(type(exc).__name__, "timed out")
                raise PeerTimeout(f"{type(exc).__name__}: {phase}" + (f" ({exc})" if str(exc) else ""),
                                  url=url) from exc
            except httpx.TransportError as exc:
                raise _classify(exc, url, status, response_headers, len(received)) from exc
            except OSError as exc:
                # Not every socket or TLS error passes through httpx's mapping: a TLS 1.3 alert
                # read after the handshake (a refused client certificate) surfaces as ssl.SSLError.
                raise _classify(exc, url, status, response_headers, len(received)) from exc
        except PeerError as error:
            self._observe(method, url, send_headers, body, status, response_headers, bytes(received), error, started)
            raise
        self._observe(method, url, send_headers, body, status, response_headers, bytes(received), None, started)
        assert status is not None
        return PeerReply(status=status, headers=response_headers, body=bytes(received), url=url)

    def _phase_timeouts(self, deadline: float) -> httpx.Timeout:
        # httpx's own connect timeout must fire before the overall deadline: httpcore closes a
        # half-open TLS connection on its own timeout, but leaks the socket when cancelled mid-handshake.
        return httpx.Timeout(deadline, connect=min(self.limits.connect_timeout, deadline * 0.8))

    def _observe(self, method, url, headers, body, status, response_headers, response_body, error, started) -> None:
        """Every exchange with a peer ends here (the observer records it), a new hub's fan-out of a room it
        took over included (EXT-HUBXFER-NEWHUB-SERVES: the follower's submitMessage is sequenced and delivered)."""
        if self._observer is None:
            return
        self._observer(
            Exchange(
                method=method, url=url, request_headers=dict(headers), request_body=body, status=status,
                response_headers=dict(response_headers), response_body=response_body, error=error,
                elapsed=time.monotonic() - started,
            )
        )

    async def fetch_directory(self, peer: str, *, refresh: bool = False) -> dict[str, Any]:
        """The peer's §5.1 directory, a JSON object (cached per peer authority).

        -06 models the directory on ACME's (RFC 8555 §7.1.1), which may carry a ``meta`` object and
        other members: every member is kept as it is and none is judged here. Only the templates a
        caller uses are validated, by :meth:`endpoint_url` / :meth:`endpoint_urls`."""
        # Every call to a peer's endpoint starts here (PROTO-TRANSPORT-FROM-LOCALPART-MIMI): a user's grant queued
        # for the requester's provider reaches it (EXT-CONSENT-FIRST-GRANT-SENT) only through its directory.
        if not refresh and peer in self._directories:
            return self._directories[peer]
        url = f"https://{peer}{DIRECTORY_PATH}"
        reply = await self.request("GET", url)
        if reply.status != 200:
            raise PeerDirectoryError(f"directory answered {reply.status}", url=url)
        try:
            document = json.loads(reply.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PeerDirectoryError(f"directory is not valid JSON: {exc}", url=url) from None
        if not isinstance(document, dict):
            raise PeerDirectoryError("directory is not a JSON object", url=url)
        self._directories[peer] = document
        return document

    async def endpoint_urls(self, peer: str, values: Mapping[str, str]) -> dict[str, str]:
        """The URLs of several endpoints (endpoint -> path variable value) from ``peer``'s directory.

        Raises one :class:`PeerDirectoryError` naming *every* endpoint asked for that is missing or
        whose template is unusable (not a string, no ``{variable}``), not only the first."""
        # Every call to a peer's endpoint takes its URL here (PROTO-TRANSPORT-FROM-LOCALPART-MIMI): a user's grant
        # queued for the requester's provider reaches it (EXT-CONSENT-FIRST-GRANT-SENT) only at such a URL.
        for endpoint in values:
            if endpoint not in ENDPOINTS:
                raise ValueError(f"unknown MIMI endpoint {endpoint!r}")
        directory = await self.fetch_directory(peer)
        where = f"https://{peer}{DIRECTORY_PATH}"
        urls: dict[str, str] = {}
        missing: list[str] = []
        bad: dict[str, str] = {}
        for endpoint, value in values.items():
            if endpoint not in directory:
                missing.append(endpoint)
                continue
            template = directory[endpoint]
            if not isinstance(template, str):
                bad[endpoint] = f"the URL template is not a string: {json.dumps(template)[:80]}"
                continue
            try:
                urls[endpoint] = expand_template(template, value)
            except ValueError as exc:
                bad[endpoint] = str(exc)
        if missing or bad:
            problems = [f"directory has no {e!r} entry" for e in missing]
            problems += [f"directory entry {e!r} is unusable: {why}" for e, why in bad.items()]
            raise PeerDirectoryError("; ".join(problems), url=where, missing=tuple(missing), bad_templates=bad)
        return urls

    async def endpoint_url(self, peer: str, endpoint: str, value: str) -> str:
        return (await self.endpoint_urls(peer, {endpoint: value}))[endpoint]

    async def call(self, peer: str, endpoint: str, value: str, body: bytes = b"", **options) -> PeerReply:
        """Call ``endpoint`` (a §5.1 directory key) of ``peer`` with path variable ``value`` and a binary body.

        The URL comes from the peer's directory; the method from the endpoint (GET for proxyDownload,
        POST otherwise). ``options`` are passed to :meth:`request` (``timeout``, ``max_response_bytes``, ``headers``).
        """
        url = await self.endpoint_url(peer, endpoint, value)
        return await self.request(ENDPOINTS[endpoint].method, url, body, **options)


_CERTIFICATE_ALERTS = ("unknown ca", "bad certificate", "certificate required", "certificate unknown",
                       "unsupported certificate", "access denied", "certificate revoked", "certificate expired")


def _describe(exc: BaseException) -> str:
    """``Type: message``; for an exception without a message, the first cause that has one."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if not str(exc):
        cause = exc.__cause__ or exc.__context__
        while cause is not None and not str(cause):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            text += f" ({type(cause).__name__}: {cause})"
    return text


def _classify(
    exc: Exception, url: str, status: int | None = None, headers: httpx.Headers | None = None,
    received: int = 0,
) -> PeerError:
    text = _describe(exc)
    if status is not None:
        # The answer had started: say how far it got (a reset mid-body is not a rejected certificate).
        declared = (headers or {}).get("content-length")
        of = f" of {declared} declared" if declared else ""
        text += f"; after HTTP {status} and {received}{of} body bytes"
    if is_tls_failure(exc):
        if "alert" in text.lower() and any(alert in text.lower() for alert in _CERTIFICATE_ALERTS):
            text += " (the peer refused our client certificate)"
        return PeerTLSError(f"TLS failure: {text}", url=url)
    if isinstance(exc, httpx.ConnectError | ConnectionRefusedError):
        return PeerConnectionError(f"cannot connect: {text}", url=url)
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.CloseError | OSError):
        if status is not None:
            return PeerConnectionError(f"connection broken in the middle of the answer: {text}", url=url)
        # Under TLS 1.3 a server verifies the client certificate after the client's handshake has
        # finished, and asyncio servers close without an alert: a rejected certificate looks like this.
        return PeerConnectionError(
            f"connection broken before a complete response (with TLS 1.3 this is also how a server "
            f"rejects our client certificate): {text}",
            url=url,
        )
    if isinstance(exc, httpx.RemoteProtocolError):
        return PeerProtocolError(f"not a valid HTTP answer: {text}", url=url)
    return PeerConnectionError(text, url=url)
