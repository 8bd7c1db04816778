"""BackgroundServer: a MimiServer usable from synchronous code."""

from __future__ import annotations

import asyncio
import socket

import pytest
from transport_helpers import LOOPBACK, client_for, provider

from reference_peer.server.runner import BackgroundServer
from reference_peer.server.transport import MimiRequest, MimiResponse, MimiServer


def test_background_server_serves_sync_callers_and_releases_its_port(pki):
    a = provider(pki, "a.example")

    async def notify(request: MimiRequest) -> MimiResponse:
        return MimiResponse(body=request.peer_domain.encode(), status=201)

    a.register("notify", notify)
    with BackgroundServer(MimiServer([a], pki.ca_cert)) as running:
        port = running.server.port
        authority = running.server.authority("a.example")

        async def call():
            async with client_for(pki, domain="c.example") as client:
                return await client.call(authority, "notify", "mimi://a.example/r/x", b"m")

        # A client on its own loop in this thread, and one on the server's loop: both work.
        assert asyncio.run(asyncio.wait_for(call(), 10)).body == b"c.example"
        assert running.call(call(), timeout=10).status == 201

        with pytest.raises(TimeoutError):
            running.call(asyncio.Event().wait(), timeout=0.2)

    with pytest.raises(ConnectionRefusedError), socket.create_connection((LOOPBACK, port), timeout=2):
        pass
