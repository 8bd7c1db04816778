"""The outgoing client: directory, calls by endpoint name, and a clear bounded error for every misbehaving peer."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from transport_helpers import LOOPBACK, client_for, provider, run, running

from reference_peer.server.client import (
    ClientLimits,
    Exchange,
    PeerConnectionError,
    PeerDirectoryError,
    PeerError,
    PeerProtocolError,
    PeerResponseTooLarge,
    PeerTimeout,
    PeerTLSError,
)
from reference_peer.server.tls import server_context
from reference_peer.server.transport import MimiRequest, MimiResponse

FAST = ClientLimits(timeout=0.5, connect_timeout=0.5)
BOUND = 3.0  # a 0.5 s deadline that fires later than this is a defect


@contextlib.asynccontextmanager
async def canned_peer(pki, behave: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]], *,
                      tls: bool = True, domain: str = "a.example") -> AsyncIterator[int]:
    """A TLS (mutual) listener that reads the request head and then does whatever ``behave`` does."""
    pair = pki.pair(domain)
    ctx = server_context(pair.cert, pair.key, pki.ca_cert) if tls else None
    handlers: set[asyncio.Task] = set()

    async def on_connect(reader, writer):
        handlers.add(asyncio.current_task())
        try:
            with contextlib.suppress(Exception):
                await reader.readuntil(b"\r\n\r\n")
                await behave(reader, writer)
        finally:
            writer.transport.abort()  # no TLS goodbye: the peer under test may be wedged

    server = await asyncio.start_server(on_connect, LOOPBACK, 0, ssl=ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        async with asyncio.timeout(5):
            await asyncio.gather(*handlers, return_exceptions=True)
            await server.wait_closed()


def reply(data: bytes):
    async def behave(reader, writer):
        writer.write(data)
        await writer.drain()

    return behave


async def never_answer(reader, writer):
    await asyncio.Event().wait()


def directory_reply(body: bytes, status: str = "200 OK") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


# --- the normal path ------------------------------------------------------------------------------------


def test_call_by_endpoint_name_reaches_the_handler_with_from_and_binary_body(pki):
    room = "mimi://a.example/r/clubhouse"

    async def body():
        seen: list[MimiRequest] = []
        exchanges: list[Exchange] = []
        a = provider(pki, "a.example")

        async def notify(request: MimiRequest) -> MimiResponse:
            seen.append(request)
            return MimiResponse(status=201)

        async def download(request: MimiRequest) -> MimiResponse:
            return MimiResponse(body=b"asset:" + request.value.encode())

        a.register("notify", notify)
        a.register("proxyDownload", download)
        async with running(pki, [a]) as server, client_for(pki, observer=exchanges.append) as client:
            peer = server.authority("a.example")
            directory = await client.fetch_directory(peer)
            assert directory["notify"] == f"https://{peer}/v1/notify/{{roomId}}"
            assert len(directory) == 10

            payload = bytes(range(256))
            answer = await client.call(peer, "notify", room, payload)
            assert answer.status == 201 and answer.ok and answer.body == b""
            (request,) = seen
            assert request.peer_domain == "b.example" and request.value == room and request.body == payload
            assert request.http.headers["From"] == "mimi@b.example"
            assert request.http.headers["Host"] == peer

            answer = await client.call(peer, "proxyDownload", "https://dl.a.example/x")
            assert answer.body == b"asset:https://dl.a.example/x"

            answer = await client.call(peer, "update", room, b"x")  # not registered there
            assert answer.status == 404 and not answer.ok

        assert [(e.method, e.status) for e in exchanges] == [("GET", 200), ("POST", 201), ("GET", 200), ("POST", 404)]
        assert exchanges[1].request_body == payload and exchanges[1].error is None

    run(body())


def test_an_unknown_endpoint_name_is_a_caller_error(pki):
    async def body():
        async with client_for(pki) as client:
            with pytest.raises(ValueError, match="unknown MIMI endpoint"):
                await client.call("a.example:1", "submit", "x")

    run(body())


# --- misbehaving peers --------------------------------------------------------------------------------------


async def timed(awaitable) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        await awaitable
    except BaseException as exc:  # noqa: BLE001 - the caller asserts on the type
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def test_timeout_fires_against_a_server_that_never_answers(pki):
    async def body():
        release = asyncio.Event()
        a = provider(pki, "a.example")

        async def hang(request: MimiRequest) -> MimiResponse:
            await release.wait()
            return MimiResponse()

        a.register("notify", hang)
        try:
            async with running(pki, [a]) as server, client_for(pki, limits=FAST) as client:
                url = f"https://{server.authority('a.example')}/v1/notify/room"
                elapsed, error = await timed(client.request("POST", url, b"x"))
                assert isinstance(error, PeerTimeout), error
                assert elapsed < BOUND
                release.set()  # let the server shut down promptly
        finally:
            release.set()

    run(body())


def test_timeout_fires_against_a_listener_that_never_starts_tls(pki):
    async def body():
        async with canned_peer(pki, never_answer, tls=False) as port, client_for(pki, limits=FAST) as client:
            elapsed, error = await timed(client.fetch_directory(f"a.example:{port}"))
            assert isinstance(error, PeerTimeout), error
            assert elapsed < BOUND

    run(body())


def test_a_trickling_response_is_cut_off_by_the_deadline(pki):
    async def body():
        async def trickle(reader, writer):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(1000):  # one byte every 20 ms: each read is quick, the whole never arrives in time
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.02)

        async with canned_peer(pki, trickle) as port, client_for(pki, limits=FAST) as client:
            elapsed, error = await timed(client.request("GET", f"https://a.example:{port}/v1/proxyDownload/x"))
            assert isinstance(error, PeerTimeout), error
            assert elapsed < BOUND

    run(body())


def test_a_declared_oversized_response_is_refused_without_reading_it(pki):
    async def body():
        async def huge(reader, writer):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n" + b"x" * 1000)
            await writer.drain()
            await asyncio.Event().wait()  # the promised 100 MB never come: only the header can trip the cap

        limits = ClientLimits(timeout=5.0, max_response_bytes=64 * 1024)
        async with canned_peer(pki, huge) as port, client_for(pki, limits=limits) as client:
            elapsed, error = await timed(client.request("GET", f"https://a.example:{port}/x"))
            assert isinstance(error, PeerResponseTooLarge), error
            assert elapsed < BOUND

    run(body())


def test_an_undeclared_oversized_response_is_cut_off_at_the_cap(pki):
    async def body():
        a = provider(pki, "a.example")

        async def stream(request: MimiRequest) -> web.StreamResponse:
            response = web.StreamResponse(status=200)  # chunked: no Content-Length to check up front
            await response.prepare(request.http)
            for _ in range(16):
                await response.write(b"z" * 8192)
            await response.write_eof()
            return response

        a.register("groupInfo", stream)
        async with running(pki, [a]) as server:
            peer = server.authority("a.example")
            small = ClientLimits(timeout=5.0, max_response_bytes=32 * 1024)
            async with client_for(pki, limits=small) as client:
                await client.fetch_directory(peer)
                with pytest.raises(PeerResponseTooLarge):
                    await client.call(peer, "groupInfo", "room", b"x")
            async with client_for(pki) as client:  # control: under the default cap the same answer is read whole
                answer = await client.call(peer, "groupInfo", "room", b"x")
                assert answer.body == b"z" * 8192 * 16

    run(body())


def test_connection_refused_is_a_connection_error(pki):
    async def body():
        with socket.socket() as probe:  # a port that was free a moment ago and has no listener
            probe.bind((LOOPBACK, 0))
            port = probe.getsockname()[1]
        async with client_for(pki, limits=FAST) as client:
            elapsed, error = await timed(client.fetch_directory(f"a.example:{port}"))
            assert isinstance(error, PeerConnectionError), error
            assert elapsed < BOUND

    run(body())


def test_a_peer_that_closes_without_answering_is_a_clear_error(pki):
    async def body():
        async def hang_up(reader, writer):
            transport = writer.transport
            transport.abort()

        async with canned_peer(pki, hang_up) as port, client_for(pki, limits=FAST) as client:
            elapsed, error = await timed(client.fetch_directory(f"a.example:{port}"))
            assert isinstance(error, PeerConnectionError | PeerProtocolError), error
            assert elapsed < BOUND

    run(body())


def test_a_garbage_answer_is_a_protocol_error(pki):
    async def body():
        async with canned_peer(pki, reply(b"SSH-2.0-OpenSSH\r\n\r\n")) as port, client_for(pki, limits=FAST) as client:
            with pytest.raises(PeerProtocolError):
                await client.fetch_directory(f"a.example:{port}")

    run(body())


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (directory_reply(b"{not json"), "not valid JSON"),
        (directory_reply(b'["a", "b"]'), "not a JSON object"),
        (directory_reply(b'"a string"'), "not a JSON object"),
        (directory_reply(b"{}", status="404 Not Found"), "answered 404"),
    ],
)
def test_a_broken_directory_is_a_directory_error(pki, answer, message):
    async def body():
        async with canned_peer(pki, reply(answer)) as port, client_for(pki, limits=FAST) as client:
            with pytest.raises(PeerDirectoryError, match=message):
                await client.fetch_directory(f"a.example:{port}")

    run(body())


def test_a_directory_without_the_endpoint_is_a_directory_error(pki):
    async def body():
        answer = directory_reply(b'{"notify": "https://a.example/v1/notify/{roomId}"}')
        async with canned_peer(pki, reply(answer)) as port, client_for(pki, limits=FAST) as client:
            with pytest.raises(PeerDirectoryError, match="no 'update' entry"):
                await client.call(f"a.example:{port}", "update", "room")

    run(body())


# --- TLS failures ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["unknown-ca", "wrong-name", "expired"])
def test_a_server_certificate_we_cannot_verify_is_a_tls_error(pki, bad):
    """The server for a.example presents a certificate that an honest a.example would not."""

    async def body():
        pair = pki.bad[bad]
        from reference_peer.server.transport import Provider

        impostor = Provider("a.example", pair.cert, pair.key)
        async with running(pki, [impostor]) as server, client_for(pki, limits=FAST) as client:
            elapsed, error = await timed(client.fetch_directory(server.authority("a.example")))
            assert isinstance(error, PeerTLSError), error
            assert elapsed < BOUND

    run(body())


def test_our_client_certificate_rejected_by_the_server_is_reported(pki):
    """With TLS 1.3 the server rejects our certificate after our side of the handshake completed; asyncio
    servers then close without an alert, so the client sees the connection drop before any answer."""

    async def body():
        async with running(pki, [provider(pki, "a.example")]) as server:
            async with client_for(pki, pair=pki.bad["unknown-ca"], limits=FAST) as client:
                elapsed, error = await timed(client.fetch_directory(server.authority("a.example")))
                assert isinstance(error, PeerTLSError | PeerConnectionError), error
                assert "client certificate" in str(error) or isinstance(error, PeerTLSError)
                assert elapsed < BOUND

    run(body())


def test_plain_http_urls_are_refused(pki):
    async def body():
        async with client_for(pki) as client:
            with pytest.raises(PeerError, match="https only"):
                await client.request("GET", "http://a.example/x")

    run(body())
