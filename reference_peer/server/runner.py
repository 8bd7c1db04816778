"""Run a :class:`MimiServer` on its own event loop in a background thread, for synchronous callers
(pytest scenarios, the ``mimi-conformance`` harness) that cannot ``await``.

::

    with BackgroundServer(MimiServer([provider], ca_file)) as running:
        port = running.server.port
        answer = running.call(some_coroutine(), timeout=5)   # runs on the server's loop
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .transport import MimiServer

T = TypeVar("T")


class BackgroundServer:
    def __init__(self, server: MimiServer, *, start_timeout: float = 10.0, stop_timeout: float = 10.0) -> None:
        self.server = server
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> MimiServer:
        if self._thread is not None:
            raise RuntimeError("already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"mimi-server-{id(self):x}", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self.call(self.server.start(), timeout=self.start_timeout)
        except BaseException:
            self._shutdown_loop()
            raise
        return self.server

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the server's loop and wait for it at most ``timeout`` seconds (then cancel it)."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("not started")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"coroutine did not finish within {timeout}s") from None

    def stop(self) -> None:
        if self._loop is None:
            return
        try:
            self.call(self.server.stop(), timeout=self.stop_timeout)
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(self.stop_timeout)
        if not thread.is_alive():
            loop.close()

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
