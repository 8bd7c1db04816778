"""In-process MIMI world for the peer tests: real ReferenceProviders behind one mTLS MimiServer on
loopback (virtual hosting by Host/SNI), driven only through their control backends."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from aiohttp import web

from reference_peer.control.app import make_control_app
from reference_peer.control.backend import ReferenceBackend
from reference_peer.control.introspection import add_introspection_routes
from reference_peer.overrides import Overrides
from reference_peer.peer import PeerBook, ProviderOptions, ReferenceProvider
from reference_peer.provider.outbox import RetryPolicy
from reference_peer.server.transport import MimiServer

FAST_RETRY = RetryPolicy(base_delay=0.05, max_delay=0.5, jitter=0.0, max_attempts=10_000)


async def poll(check: Callable[[], Awaitable[object]], *, timeout: float = 10.0, interval: float = 0.02, what: str = ""):
    """Await ``check()`` until it returns a truthy value; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last value {last!r}")
        await asyncio.sleep(interval)


@dataclass
class World:
    providers: dict[str, ReferenceProvider]
    backends: dict[str, ReferenceBackend]
    server: MimiServer
    peers: PeerBook


@contextlib.asynccontextmanager
async def world(
    pki, domains=("a.example", "b.example", "c.example"), *, storage: Path | None = None, consent: dict | None = None,
    hub_transfer=None,
):
    """Reference providers for ``domains`` on one in-process MIMI server. ``hub_transfer``: the
    extension's settings for every provider, or a dict domain -> settings (None: off)."""
    peers = PeerBook()
    providers = {}
    for domain in domains:
        files = pki.providers[domain]
        providers[domain] = ReferenceProvider(
            ProviderOptions(
                domain, files.cert, files.key, pki.ca_cert,
                storage_path=None if storage is None else storage / f"{domain}.sqlite",
                peers=peers, resolve={d: "127.0.0.1" for d in domains}, retry=FAST_RETRY,
                consent_mode=(consent or {}).get(domain, "immediate"),
                hub_transfer=hub_transfer.get(domain) if isinstance(hub_transfer, dict) else hub_transfer,
            ),
            # Its own (empty) overrides, so that a test can switch a fault on for one block and one
            # provider: ``with w.providers[d].overrides.during(overrides_for([...])):``.
            overrides=Overrides(),
        )
    server = MimiServer([p.transport for p in providers.values()], pki.ca_cert)
    await server.start()
    for domain in domains:
        peers.set(domain, server.authority(domain))
    for provider in providers.values():
        await provider.start()
    try:
        yield World(providers, {d: ReferenceBackend(p) for d, p in providers.items()}, server, peers)
    finally:
        await server.stop()  # first: no request may reach a stopped provider
        for provider in providers.values():
            await provider.stop()


@contextlib.asynccontextmanager
async def control_listeners(w: World, *, validate_responses: bool = False, introspection: bool = False):
    """Each provider's control API (and, with ``introspection``, the suite-only routes) on loopback:
    yields an HTTP client and domain -> base URL."""
    runners, urls = [], {}
    try:
        for domain, backend in w.backends.items():
            app = make_control_app(backend, validate_responses=validate_responses)
            if introspection:
                add_introspection_routes(app, w.providers[domain], w.server)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            urls[domain] = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
            yield http, urls
    finally:
        for runner in runners:
            await runner.cleanup()
