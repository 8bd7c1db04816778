"""The §4.1 server against real TLS connections on loopback: mTLS, Host, From, routing, limits, errors."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl

import pytest
from aiohttp import web
from transport_helpers import (
    LOOPBACK,
    http_request,
    provider,
    raw_client_context,
    raw_exchange,
    read_until_closed,
    run,
    running,
    status_of,
)

from reference_peer.server.client import PeerConnectionError, PeerTLSError
from reference_peer.server.endpoints import encode_segment
from reference_peer.server.transport import MIMI_PEER, BadRequest, MimiRequest, MimiResponse, ServerLimits
from reference_peer.wire.codec import DecodeError

TRANSPORT_LOGGER = "reference_peer.server.transport"


def recording_handler(seen: list[MimiRequest], status: int = 201):
    async def handler(request: MimiRequest) -> MimiResponse:
        seen.append(request)
        return MimiResponse(body=b"ok:" + request.body, status=status)

    return handler


# --- mutual TLS -------------------------------------------------------------------------------------


def test_a_client_with_a_ca_certificate_gets_an_answer(pki):
    """The control for the refusals below: the same raw request with a good certificate is answered."""

    async def body():
        async with running(pki, [provider(pki, "a.example")]) as server:
            response = await raw_exchange(server.port, http_request(), ctx=raw_client_context(pki, pki.pair("b.example")))
            assert status_of(response) == 200

    run(body())


@pytest.mark.parametrize("max_tls12", [False, True], ids=["tls1.3", "tls1.2"])
def test_no_client_certificate_gets_no_http_answer(pki, max_tls12):
    async def body():
        async with running(pki, [provider(pki, "a.example")]) as server:
            ctx = raw_client_context(pki, None, max_tls12=max_tls12)
            try:
                response = await raw_exchange(server.port, http_request(), ctx=ctx)
            except (ssl.SSLError, ConnectionResetError):
                response = b""  # TLS 1.2: the handshake itself fails
            assert response == b""
            assert not server.refusals  # refused at the TLS layer, never reached HTTP

    run(body())


def test_no_client_certificate_fails_the_tls12_handshake_itself(pki):
    async def body():
        async with running(pki, [provider(pki, "a.example")]) as server:
            with pytest.raises((ssl.SSLError, ConnectionResetError)):
                async with asyncio.timeout(5):
                    _, writer = await asyncio.open_connection(
                        LOOPBACK, server.port, ssl=raw_client_context(pki, None, max_tls12=True),
                        server_hostname="a.example",
                    )
                writer.close()

    run(body())


@pytest.mark.parametrize("bad", ["unknown-ca", "self-signed", "expired", "server-only"])
def test_client_certificates_the_ca_does_not_vouch_for_are_refused_in_tls(pki, bad):
    async def body():
        seen: list[MimiRequest] = []
        a = provider(pki, "a.example")
        a.register("notify", recording_handler(seen))
        async with running(pki, [a]) as server:
            ctx = raw_client_context(pki, pki.bad[bad])
            request = http_request("POST", "/v1/notify/room", body=b"x")
            try:
                response = await raw_exchange(server.port, request, ctx=ctx)
            except (ssl.SSLError, ConnectionResetError):
                response = b""
            assert response == b""
            assert seen == [] and not server.refusals

            from transport_helpers import client_for

            async with client_for(pki, pair=pki.bad[bad]) as client:
                with pytest.raises((PeerTLSError, PeerConnectionError)):
                    await client.fetch_directory(server.authority("a.example"))

    run(body())


# --- Host ---------------------------------------------------------------------------------------------


def test_host_for_a_domain_not_served_is_421(pki):
    async def body():
        async with running(pki, [provider(pki, "a.example")]) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            response = await raw_exchange(server.port, http_request(host=f"z.example:{server.port}"), ctx=ctx)
            assert status_of(response) == 421
            assert server.refusals[-1].reason == "host-not-served"
            assert server.refusals[-1].host == f"z.example:{server.port}"

    run(body())


@pytest.mark.parametrize("host", ["a.example", "a.example:1", "A.EXAMPLE:65535", "a.example.:443"])
def test_host_port_is_ignored(pki, host):
    async def body():
        async with running(pki, [provider(pki, "a.example")]) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            response = await raw_exchange(server.port, http_request(host=host), ctx=ctx)
            assert status_of(response) == 200, response

    run(body())


@pytest.mark.parametrize(
    ("extra", "host", "refused_by"),
    [([], None, "parser"), ([("Host", "a.example")], "a.example", "parser"), ([], "a.example:http", "transport")],
    ids=["missing", "repeated", "malformed"],
)
def test_missing_repeated_or_malformed_host_is_400(pki, extra, host, refused_by):
    """aiohttp's HTTP parser itself answers 400 to a missing or repeated Host (and logs it on aiohttp.server)."""

    async def body():
        async with running(pki, [provider(pki, "a.example")]) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            response = await raw_exchange(server.port, http_request(host=host, extra=extra), ctx=ctx)
            assert status_of(response) == 400
            if refused_by == "transport":
                assert server.refusals[-1].reason == "malformed-host"
            else:
                assert not server.refusals

    run(body())


def test_virtual_hosts_select_certificate_by_sni_and_refuse_a_host_the_connection_does_not_cover(pki):
    async def body():
        async with running(pki, [provider(pki, "a.example"), provider(pki, "c.example")]) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            for domain in ("a.example", "c.example"):  # each name verifies against its own certificate
                response = await raw_exchange(server.port, http_request(host=domain), ctx=ctx, sni=domain)
                assert status_of(response) == 200
                directory = json.loads(response.split(b"\r\n\r\n", 1)[1])
                assert directory["notify"] == f"https://{domain}/v1/notify/{{roomId}}"
            # TLS for c.example, then a request for a.example: that certificate does not speak for a.example.
            response = await raw_exchange(server.port, http_request(host="a.example"), ctx=ctx, sni="c.example")
            assert status_of(response) == 421
            assert server.refusals[-1].reason == "host-not-covered-by-connection"

    run(body())


# --- From and the client certificate ----------------------------------------------------------------


def test_from_naming_another_provider_than_the_certificate_is_403_and_logged(pki, caplog):
    async def body():
        seen: list[MimiRequest] = []
        a = provider(pki, "a.example")
        a.register("notify", recording_handler(seen))
        async with running(pki, [a]) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            request = http_request("POST", "/v1/notify/room", from_="mimi@c.example", body=b"x")
            with caplog.at_level(logging.WARNING, logger=TRANSPORT_LOGGER):
                response = await raw_exchange(server.port, request, ctx=ctx)
            assert status_of(response) == 403
            assert seen == []
            return server.refusals[-1]

    refusal = run(body())
    assert refusal.reason == "from-certificate-mismatch"
    records = [r for r in caplog.records if hasattr(r, "mimi_refusal")]
    assert len(records) == 1
    logged = records[0].mimi_refusal
    assert logged == refusal
    assert logged.status == 403
    assert logged.peer_cert_names == ("b.example",)
    assert logged.from_header == "mimi@c.example"
    assert logged.host == "a.example"
    assert logged.path == "/v1/notify/room"
    assert "c.example" in records[0].getMessage() and "b.example" in records[0].getMessage()


@pytest.mark.parametrize("bad", ["cn-only", "wrong-name"])
def test_a_certificate_that_does_not_name_the_from_domain_is_403(pki, bad):
    """cn-only: the CA-signed certificate has b.example only in its CN, and RFC 6125 has no CN fallback."""

    async def body():
        async with running(pki, [provider(pki, "a.example")]) as server:
            ctx = raw_client_context(pki, pki.bad[bad])
            response = await raw_exchange(server.port, http_request(from_="mimi@b.example"), ctx=ctx)
            assert status_of(response) == 403
            assert server.refusals[-1].reason == "from-certificate-mismatch"

    run(body())


@pytest.mark.parametrize(
    "from_",
    [None, "", "alice@b.example", "mimi@", "Provider B <mimi@b.example>", "<mimi@b.example>", "MIMI@b.example",
     "mimi@b.example:443"],
)
def test_missing_or_malformed_from_is_400(pki, from_):
    async def body():
        async with running(pki, [provider(pki, "a.example")]) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            response = await raw_exchange(server.port, http_request(from_=from_), ctx=ctx)
            assert status_of(response) == 400
            assert server.refusals[-1].reason == "malformed-from"

    run(body())


def test_repeated_from_is_400(pki):
    async def body():
        async with running(pki, [provider(pki, "a.example")]) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            request = http_request(extra=[("From", "mimi@b.example")])
            assert status_of(await raw_exchange(server.port, request, ctx=ctx)) == 400

    run(body())


# --- routing -------------------------------------------------------------------------------------------


def test_handler_sees_authenticated_peer_target_and_percent_decoded_variable(pki):
    room = "mimi://a.example/r/club house/ü?x=1"

    async def body():
        seen: list[MimiRequest] = []
        a = provider(pki, "a.example")
        a.register("update", recording_handler(seen, status=200))
        async with running(pki, [a]) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            path = f"/v1/update/{encode_segment(room)}?ignored=1"
            response = await raw_exchange(
                server.port, http_request("POST", path, host=f"A.example:{server.port}", body=b"\x00\x01"), ctx=ctx
            )
            assert status_of(response) == 200
            assert response.endswith(b"ok:\x00\x01")
            (request,) = seen
            assert request.endpoint == "update"
            assert request.peer_domain == "b.example"
            assert request.target_domain == "a.example"
            assert dict(request.params) == {"roomId": room} and request.value == room
            assert request.body == b"\x00\x01"
            assert request.http[MIMI_PEER] == "b.example"

    run(body())


@pytest.mark.parametrize(
    ("method", "path", "status", "reason"),
    [
        ("POST", "/v1/update/room", 404, "endpoint-not-served"),  # a known endpoint nobody registered
        ("POST", "/v1/nosuch/room", 404, "unknown-path"),
        ("POST", "/v1/notify/a/b", 404, "unknown-path"),  # an unencoded slash: not one segment
        ("POST", "/", 404, "unknown-path"),
        ("GET", "/v1/notify/room", 405, "method-not-allowed"),
        ("POST", "/.well-known/mimi-protocol-directory", 405, "method-not-allowed"),
        ("POST", "/v1/notify/%zz", 400, "malformed-path"),
        ("POST", "/v1/notify/%ff", 400, "malformed-path"),
    ],
)
def test_routing_refusals(pki, method, path, status, reason):
    async def body():
        a = provider(pki, "a.example")
        a.register("notify", recording_handler([]))
        async with running(pki, [a]) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            response = await raw_exchange(server.port, http_request(method, path, body=b"x"), ctx=ctx)
            assert status_of(response) == status
            assert server.refusals[-1].reason == reason

    run(body())


def test_proxy_download_is_a_get(pki):
    async def body():
        seen: list[MimiRequest] = []
        a = provider(pki, "a.example")
        a.register("proxyDownload", recording_handler(seen, status=200))
        async with running(pki, [a]) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            url = "https://dl.a.example/assets/1?sig=x"
            response = await raw_exchange(server.port, http_request("GET", f"/v1/proxyDownload/{encode_segment(url)}"), ctx=ctx)
            assert status_of(response) == 200
            assert seen[0].value == url

    run(body())


def test_registering_an_unknown_endpoint_name_is_an_error(pki):
    with pytest.raises(ValueError, match="unknown MIMI endpoint"):
        provider(pki, "a.example").register("submit", recording_handler([]))


# --- bodies ---------------------------------------------------------------------------------------------


def test_declared_oversized_body_is_413_before_any_body_byte_is_sent(pki):
    async def body():
        seen: list[MimiRequest] = []
        a = provider(pki, "a.example")
        a.register("notify", recording_handler(seen))
        async with running(pki, [a], ServerLimits(max_body_bytes=1024, lingering_time=0.1)) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            # 10 MB announced, nothing sent: only an early refusal can answer before the deadline.
            request = http_request("POST", "/v1/notify/room", content_length=10_000_000)
            response = await raw_exchange(server.port, request, ctx=ctx, deadline=5)
            assert status_of(response) == 413
            assert seen == []
            assert server.refusals[-1].reason == "body-too-large"

    run(body())


def test_chunked_body_is_413_as_soon_as_it_passes_the_limit(pki):
    async def body():
        seen: list[MimiRequest] = []
        a = provider(pki, "a.example")
        a.register("notify", recording_handler(seen))
        async with running(pki, [a], ServerLimits(max_body_bytes=1024, lingering_time=0.1)) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            chunk = b"x" * 2000
            # One oversized chunk and no terminating chunk: the body never ends, so only a cut-off answers.
            request = http_request("POST", "/v1/notify/room", extra=[("Transfer-Encoding", "chunked")])
            request += f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            response = await raw_exchange(server.port, request, ctx=ctx, deadline=5)
            assert status_of(response) == 413
            assert seen == []

    run(body())


def test_body_at_the_limit_is_accepted(pki):
    async def body():
        seen: list[MimiRequest] = []
        a = provider(pki, "a.example")
        a.register("notify", recording_handler(seen))
        async with running(pki, [a], ServerLimits(max_body_bytes=1024, lingering_time=0.1)) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            response = await raw_exchange(server.port, http_request("POST", "/v1/notify/r", body=b"y" * 1024), ctx=ctx)
            assert status_of(response) == 201
            assert len(seen[0].body) == 1024

    run(body())


def test_expect_100_continue_is_refused_before_the_body_is_invited(pki):
    async def body():
        a = provider(pki, "a.example")
        a.register("notify", recording_handler([]))
        async with running(pki, [a], ServerLimits(max_body_bytes=1024, lingering_time=0.1)) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            oversized = http_request("POST", "/v1/notify/r", extra=[("Expect", "100-continue")], content_length=4096)
            response = await raw_exchange(server.port, oversized, ctx=ctx)
            assert status_of(response) == 413
            assert b"100 Continue" not in response

            forged = http_request("POST", "/v1/notify/r", from_="mimi@c.example", extra=[("Expect", "100-continue")],
                                  content_length=10)
            response = await raw_exchange(server.port, forged, ctx=ctx)
            assert status_of(response) == 403 and b"100 Continue" not in response

    run(body())


def test_expect_100_continue_invites_an_acceptable_body(pki):
    async def body():
        seen: list[MimiRequest] = []
        a = provider(pki, "a.example")
        a.register("notify", recording_handler(seen))
        async with running(pki, [a]) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            async with asyncio.timeout(5):
                reader, writer = await asyncio.open_connection(LOOPBACK, server.port, ssl=ctx, server_hostname="a.example")
                try:
                    writer.write(http_request("POST", "/v1/notify/r", extra=[("Expect", "100-continue")], content_length=5))
                    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
                    writer.write(b"hello")
                    response = await read_until_closed(reader)
                finally:
                    writer.close()
            assert status_of(response) == 201
            assert seen[0].body == b"hello"

    run(body())


def test_a_body_that_stops_arriving_is_408_within_the_read_timeout(pki):
    async def body():
        a = provider(pki, "a.example")
        a.register("notify", recording_handler([]))
        async with running(pki, [a], ServerLimits(body_read_timeout=0.3, lingering_time=0.1)) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            request = http_request("POST", "/v1/notify/room", content_length=100) + b"only ten b"
            loop = asyncio.get_running_loop()
            started = loop.time()
            response = await raw_exchange(server.port, request, ctx=ctx, deadline=5)
            assert status_of(response) == 408
            assert loop.time() - started < 3

    run(body())


# --- robustness -------------------------------------------------------------------------------------------


def test_garbage_over_tls_and_plaintext_do_not_hurt_the_server(pki):
    async def body():
        async with running(pki, [provider(pki, "a.example")]) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            garbage = await raw_exchange(server.port, b"\x00\xff\xfe NOT HTTP \r\n\r\n", ctx=ctx)
            assert garbage == b"" or status_of(garbage) == 400

            reader, writer = await asyncio.open_connection(LOOPBACK, server.port)  # no TLS at all
            writer.write(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
            assert not (await read_until_closed(reader)).startswith(b"HTTP/")
            writer.close()

            response = await raw_exchange(server.port, http_request(), ctx=ctx)
            assert status_of(response) == 200

    run(body())


@pytest.mark.parametrize(
    ("raised", "status"),
    [(BadRequest("no such thing"), 400), (DecodeError("truncated", 3), 400)],
)
def test_malformed_input_errors_from_a_handler_are_4xx(pki, raised, status):
    async def body():
        a = provider(pki, "a.example")

        async def handler(request: MimiRequest) -> MimiResponse:
            raise raised

        a.register("notify", handler)
        async with running(pki, [a]) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            response = await raw_exchange(server.port, http_request("POST", "/v1/notify/r", body=b"x"), ctx=ctx)
            assert status_of(response) == status

    run(body())


def test_a_handler_bug_is_500_and_logged_with_its_traceback(pki, caplog):
    async def body():
        a = provider(pki, "a.example")

        async def handler(request: MimiRequest) -> MimiResponse:
            raise RuntimeError("handler bug")

        a.register("notify", handler)
        async with running(pki, [a]) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            with caplog.at_level(logging.ERROR, logger=TRANSPORT_LOGGER):
                response = await raw_exchange(server.port, http_request("POST", "/v1/notify/r", body=b"x"), ctx=ctx)
            assert status_of(response) == 500
            assert b"handler bug" not in response  # internals stay in the log

    run(body())
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info and isinstance(record.exc_info[1], RuntimeError)


def test_a_handler_may_stream_its_own_response(pki):
    async def body():
        a = provider(pki, "a.example")

        async def handler(request: MimiRequest) -> web.StreamResponse:
            response = web.StreamResponse(status=200)
            await response.prepare(request.http)
            await response.write(b"part1,")
            await response.write(b"part2")
            return response

        a.register("groupInfo", handler)
        async with running(pki, [a]) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            response = await raw_exchange(server.port, http_request("POST", "/v1/groupInfo/r", body=b"x"), ctx=ctx)
            assert status_of(response) == 200
            assert b"part1," in response and b"part2" in response

    run(body())


def test_a_client_that_never_starts_the_tls_handshake_is_dropped_after_the_handshake_timeout(pki):
    async def body():
        async with running(pki, [provider(pki, "a.example")], ServerLimits(handshake_timeout=0.3)) as server:
            loop = asyncio.get_running_loop()
            started = loop.time()
            reader, writer = await asyncio.open_connection(LOOPBACK, server.port)  # TCP only, then silence
            try:
                assert await read_until_closed(reader, deadline=5) == b""
            finally:
                writer.close()
            assert loop.time() - started < 3
            ctx = raw_client_context(pki, pki.pair("b.example"))
            assert status_of(await raw_exchange(server.port, http_request(), ctx=ctx)) == 200

    run(body())
