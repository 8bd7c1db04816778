"""Helpers for the transport tests: real servers on 127.0.0.1 ephemeral ports, clients that reach them,
and raw HTTP over TLS for requests no well-behaved client would send."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from reference_peer.pki import CertificateAuthority, PkiFiles
from reference_peer.server.client import ClientLimits, MimiClient
from reference_peer.server.transport import MimiServer, Provider, ServerLimits

LOOPBACK = "127.0.0.1"
TEST_DEADLINE = 20.0  # no single test may run longer, whatever the code under test does


def run(coro: Awaitable, deadline: float = TEST_DEADLINE):
    """Run an async test body with a hard deadline."""

    async def bounded():
        async with asyncio.timeout(deadline):
            return await coro

    return asyncio.run(bounded())


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class TestPki:
    ca: CertificateAuthority
    files: PkiFiles
    directory: Path
    bad: dict[str, Pair]  # deliberately wrong client certificates, all claiming b.example

    __test__ = False  # not a test class

    @property
    def ca_cert(self) -> Path:
        return self.files.ca_cert

    def pair(self, domain: str) -> Pair:
        return Pair(self.files[domain].cert, self.files[domain].key)


def provider(pki: TestPki, domain: str, **kwargs) -> Provider:
    pair = pki.pair(domain)
    return Provider(domain, pair.cert, pair.key, **kwargs)


@contextlib.asynccontextmanager
async def running(pki: TestPki, providers: list[Provider], limits: ServerLimits | None = None) -> AsyncIterator[MimiServer]:
    server = MimiServer(providers, pki.ca_cert, host=LOOPBACK, port=0, limits=limits)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def client_for(pki: TestPki, domain: str = "b.example", pair: Pair | None = None, **kwargs) -> MimiClient:
    """A MimiClient acting as ``domain`` that reaches every test domain on loopback."""
    pair = pair or pki.pair(domain)
    kwargs.setdefault("limits", ClientLimits(timeout=5.0, connect_timeout=2.0))
    resolve = {d: LOOPBACK for d in ("a.example", "b.example", "c.example", "z.example")}
    return MimiClient(domain, pair.cert, pair.key, pki.ca_cert, resolve=resolve, **kwargs)


def raw_client_context(pki: TestPki, pair: Pair | None, *, max_tls12: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    if max_tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if pair is not None:
        ctx.load_cert_chain(str(pair.cert), str(pair.key))
    return ctx


async def read_until_closed(reader: asyncio.StreamReader, deadline: float = 5.0) -> bytes:
    """Everything the server sends until it closes; a reset after some bytes keeps those bytes."""
    data = bytearray()
    async with asyncio.timeout(deadline):
        try:
            while chunk := await reader.read(65536):
                data += chunk
        except (ConnectionResetError, ssl.SSLError):
            pass
    return bytes(data)


async def raw_exchange(
    port: int,
    request: bytes,
    *,
    ctx: ssl.SSLContext,
    sni: str = "a.example",
    then: Callable[[asyncio.StreamWriter], Awaitable[None]] | None = None,
    deadline: float = 5.0,
) -> bytes:
    """Send ``request`` bytes over TLS and return the server's bytes until it closes the connection.

    The writer stays open while reading, so a server that waits for more request bytes is caught by
    ``deadline`` (TimeoutError) rather than by our own half-close.
    """
    async with asyncio.timeout(deadline):
        reader, writer = await asyncio.open_connection(LOOPBACK, port, ssl=ctx, server_hostname=sni)
    try:
        writer.write(request)
        await writer.drain()
        if then is not None:
            await then(writer)
        return await read_until_closed(reader, deadline)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def status_of(response: bytes) -> int:
    """The status code of a raw HTTP/1.1 response; fails the test on anything else."""
    head = response.split(b"\r\n", 1)[0]
    assert head.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), f"not an HTTP response: {response[:200]!r}"
    return int(head.split()[1])


def http_request(
    method: str = "GET",
    path: str = "/.well-known/mimi-protocol-directory",
    *,
    host: str | None = "a.example",
    from_: str | None = "mimi@b.example",
    extra: list[tuple[str, str]] = (),
    body: bytes = b"",
    content_length: int | None = None,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1"]
    if host is not None:
        lines.append(f"Host: {host}")
    if from_ is not None:
        lines.append(f"From: {from_}")
    lines += [f"{k}: {v}" for k, v in extra]
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    elif body:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
