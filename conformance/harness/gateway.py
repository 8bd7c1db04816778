"""The suite's one reference address: a TLS-passthrough gateway in front of every reference peer.

A SUT that is not the embedded reference (``url``, ``command``, ``image``) reaches the suite's reference
peers at one address (the manifest's ``suite.referenceAddress``), whatever the number of xdist workers:
it maps ``*.ref.test`` there once. The gateway reads each connection's TLS ClientHello, takes the
server name (SNI) from it and forwards the raw bytes, the ClientHello included, to the reference peer
serving that domain. TLS is never terminated here, so the peer's certificate and the SUT's client
certificate (mutual TLS) pass through untouched.

Routes are files: ``<routes_dir>/<domain>`` holds ``host:port``. They are re-read for every
connection, so reference peers started by workers in other processes add theirs by writing a file
(:func:`write_route`). A connection without SNI, with an unknown one, or whose ClientHello is not
complete within 16 KiB and 5 seconds is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
import threading
from concurrent.futures import Future
from pathlib import Path

MAX_CLIENT_HELLO = 16 * 1024
CLIENT_HELLO_TIMEOUT = 5.0
_SAFE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")
_HANDSHAKE_RECORD = 0x16
_CLIENT_HELLO = 0x01
_SERVER_NAME_EXTENSION = 0x0000


class GatewayError(RuntimeError):
    """The gateway cannot run (its address is taken or invalid): a setup error, never a verdict."""


class _Incomplete(Exception):
    """More bytes are needed to read the ClientHello."""


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise GatewayError(f"suite.referenceAddress: expected host:port, got {address!r}")
    return host.strip("[]"), int(port)


def server_name(data: bytes) -> str | None:
    """The SNI host name of the TLS ClientHello at the start of ``data``; None when it has none.

    Raises :class:`_Incomplete` when ``data`` ends before the ClientHello does and ValueError when the
    bytes are not a ClientHello.
    """
    handshake = b""
    offset = 0
    # The ClientHello may span several handshake records; collect its bytes first.
    while True:
        if len(data) < offset + 5:
            raise _Incomplete
        content_type, length = data[offset], struct.unpack_from("!H", data, offset + 3)[0]
        if content_type != _HANDSHAKE_RECORD or length == 0:
            raise ValueError("not a TLS handshake record")
        if len(data) < offset + 5 + length:
            raise _Incomplete
        handshake += data[offset + 5:offset + 5 + length]
        offset += 5 + length
        if len(handshake) >= 4:
            if handshake[0] != _CLIENT_HELLO:
                raise ValueError("the first handshake message is not a ClientHello")
            if len(handshake) >= 4 + int.from_bytes(handshake[1:4], "big"):
                break
    body = memoryview(handshake)[4:4 + int.from_bytes(handshake[1:4], "big")]
    position = 2 + 32  # legacy_version, random

    def skip(width: int) -> None:
        nonlocal position
        if position + width > len(body):
            raise ValueError("truncated ClientHello")
        size = int.from_bytes(body[position:position + width], "big")
        position += width + size
        if position > len(body):
            raise ValueError("truncated ClientHello")

    skip(1)  # legacy_session_id
    skip(2)  # cipher_suites
    skip(1)  # legacy_compression_methods
    if position == len(body):
        return None  # no extensions at all
    if position + 2 > len(body):
        raise ValueError("truncated ClientHello")
    end = position + 2 + int.from_bytes(body[position:position + 2], "big")
    position += 2
    if end > len(body):
        raise ValueError("truncated ClientHello extensions")
    while position + 4 <= end:
        kind, size = struct.unpack_from("!HH", body, position)
        position += 4
        if position + size > end:
            raise ValueError("truncated ClientHello extension")
        if kind == _SERVER_NAME_EXTENSION:
            names = body[position:position + size]
            cursor = 2  # server_name_list length
            while cursor + 3 <= len(names):
                name_type, name_length = names[cursor], int.from_bytes(names[cursor + 1:cursor + 3], "big")
                name = bytes(names[cursor + 3:cursor + 3 + name_length])
                if name_type == 0 and len(name) == name_length:
                    return name.decode("ascii", "replace").lower()
                cursor += 3 + name_length
            return None
        position += size
    return None


def write_route(routes_dir: Path, domain: str, backend: str) -> None:
    """Route connections naming ``domain`` to ``backend`` (``host:port``); atomic, for other processes."""
    routes_dir.mkdir(parents=True, exist_ok=True)
    temporary = routes_dir / f".{domain}.tmp"
    temporary.write_text(backend, encoding="utf-8")
    temporary.replace(routes_dir / domain)


class ReferenceGateway:
    """``start()`` binds ``address`` and returns the bound ``host:port``; ``stop()`` closes everything."""

    def __init__(self, address: str, routes_dir: Path) -> None:
        self.address = address
        self.routes_dir = Path(routes_dir)
        self.bound: str | None = None
        self.unrouted: list[str] = []  # server names asked for without a route (a SUT's wrong name)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[asyncio.Task] = set()

    # Routes -------------------------------------------------------------------------------

    def add_route(self, domain: str, backend: str) -> None:
        write_route(self.routes_dir, domain.lower(), backend)

    def remove_route(self, domain: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.routes_dir / domain.lower()).unlink()

    def _backend(self, name: str) -> tuple[str, int] | None:
        if not _SAFE_NAME.match(name) or ".." in name:
            return None
        try:
            text = (self.routes_dir / name).read_text(encoding="utf-8").strip()
        except OSError:
            return None
        try:
            return split_address(text)
        except GatewayError:
            return None

    # Lifecycle ----------------------------------------------------------------------------

    def start(self) -> str:
        host, port = split_address(self.address)
        self.routes_dir.mkdir(parents=True, exist_ok=True)
        ready: Future[str] = Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            try:
                self._server = loop.run_until_complete(asyncio.start_server(self._handle, host, port))
            except OSError as exc:
                ready.set_exception(GatewayError(
                    f"the suite's reference gateway cannot listen on suite.referenceAddress {self.address} "
                    f"({exc.strerror or exc}): free that address or set suite.referenceAddress in the manifest"))
                loop.close()
                return
            self._loop = loop  # only a loop that serves is ever stopped from outside
            sockname = self._server.sockets[0].getsockname()
            bound_host = f"[{sockname[0]}]" if ":" in sockname[0] else sockname[0]
            ready.set_result(f"{bound_host}:{sockname[1]}")
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._shutdown())
                loop.close()

        self._thread = threading.Thread(target=run, name="mimi-reference-gateway", daemon=True)
        self._thread.start()
        self.bound = ready.result(timeout=10)
        return self.bound

    @property
    def port(self) -> int:
        if self.bound is None:
            raise GatewayError("the reference gateway is not running")
        return split_address(self.bound)[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            # Stop accepting and end the open connections first, then the loop.
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
        self._thread = None
        self._loop = None

    # Connections --------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            try:
                hello, name = await asyncio.wait_for(self._read_client_hello(reader), CLIENT_HELLO_TIMEOUT)
            except (TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError):
                return
            backend = self._backend(name) if name else None
            if backend is None:
                self.unrouted.append(name or "(no server name)")
                del self.unrouted[:-100]
                return
            try:
                upstream_reader, upstream = await asyncio.wait_for(asyncio.open_connection(*backend), 10)
            except (OSError, TimeoutError):
                return
            upstream.write(hello)
            await asyncio.gather(self._pipe(reader, upstream), self._pipe(upstream_reader, writer))
        except asyncio.CancelledError:
            # The gateway is stopping with this connection open (a kept-alive one): ending it is the
            # point, and on Python 3.11 a cancelled connection task would print a traceback.
            return
        finally:
            for stream in (writer, upstream):
                if stream is not None:
                    stream.close()
            self._connections.discard(task)

    @staticmethod
    async def _read_client_hello(reader: asyncio.StreamReader) -> tuple[bytes, str | None]:
        data = b""
        while True:
            try:
                return data, server_name(data)
            except _Incomplete:
                pass
            if len(data) >= MAX_CLIENT_HELLO:
                raise ValueError("no complete ClientHello within the size bound")
            chunk = await reader.read(MAX_CLIENT_HELLO - len(data))
            if not chunk:
                raise ConnectionError("closed before the ClientHello was complete")
            data += chunk

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(65536):
                target.write(chunk)
                await target.drain()
            if target.can_write_eof():
                target.write_eof()  # half-close: the other direction may still carry a TLS close_notify
        except (ConnectionError, OSError):
            target.close()
