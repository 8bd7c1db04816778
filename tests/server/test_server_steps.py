"""The server's named steps (reference_peer.overrides): a server built with overrides departs from exactly
those steps, and a server built without behaves as before (the allowed variants of
reference_peer/faults/variants_server.py and the directory faults)."""

from __future__ import annotations

import json
import ssl

import pytest
from transport_helpers import LOOPBACK, http_request, provider, raw_client_context, raw_exchange, run, status_of

from reference_peer.faults import overrides_for
from reference_peer.overrides import Overrides
from reference_peer.server.endpoints import ENDPOINTS, directory_document, match_endpoint
from reference_peer.server.transport import MimiRequest, MimiResponse, MimiServer


async def _ok(request: MimiRequest) -> MimiResponse:
    return MimiResponse(body=b"ok", status=201)


def _body(response: bytes) -> bytes:
    return response.partition(b"\r\n\r\n")[2]


def _headers(response: bytes) -> dict[str, str]:
    head = response.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head)}


def test_the_default_directory_lists_every_endpoint_under_v1_in_catalogue_order():
    document = directory_document("a.example:1")
    assert list(document) == [name for name in ENDPOINTS if name != "hubTransfer"]
    assert all(url.startswith("https://a.example:1/v1/") for url in document.values())


@pytest.mark.parametrize(
    ("name", "missing"),
    [("directory-omits-proxy-download", "proxyDownload"), ("directory-omits-notify", "notify"),
     ("without-identifier-query", "identifierQuery"), ("directory-omits-hub-transfer", "hubTransfer")],
)
def test_a_directory_built_to_omit_an_endpoint_omits_only_that_one(name, missing):
    full = directory_document("a.example", ("hubTransfer",))
    document = directory_document("a.example", ("hubTransfer",), overrides_for([name]))
    assert set(full) - set(document) == {missing}


def test_the_variants_reorder_and_move_the_directory():
    overrides = overrides_for(["directory-members-reversed", "directory-other-path-prefix"])
    document = directory_document("a.example", (), overrides)
    assert list(document) == list(reversed(list(directory_document("a.example"))))
    assert document["notify"] == "https://a.example/mimi/v1/notify/{roomId}"
    assert match_endpoint("/mimi/v1/notify/x", "/mimi/v1/") == (ENDPOINTS["notify"], "x")
    assert match_endpoint("/v1/notify/x", "/mimi/v1/") is None


def _server(pki, overrides: Overrides) -> MimiServer:
    a = provider(pki, "a.example")
    a.register("notify", _ok)
    return MimiServer([a], pki.ca_cert, host=LOOPBACK, port=0, overrides=overrides)


def test_a_server_built_with_another_path_prefix_serves_only_the_paths_its_directory_lists(pki):
    async def body():
        server = _server(pki, overrides_for(["directory-other-path-prefix", "directory-json-charset-and-caching"]))
        async with server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            directory = await raw_exchange(server.port, http_request(), ctx=ctx)
            assert status_of(directory) == 200
            headers = _headers(directory)
            assert headers["content-type"] == "application/json; charset=utf-8"
            assert headers["cache-control"] == "public, max-age=3600"
            template = json.loads(_body(directory))["notify"]
            assert template == "https://a.example/mimi/v1/notify/{roomId}"  # the Host sent names no port
            moved = await raw_exchange(server.port, http_request("POST", "/mimi/v1/notify/x", body=b"x"), ctx=ctx)
            assert status_of(moved) == 201
            default = await raw_exchange(server.port, http_request("POST", "/v1/notify/x", body=b"x"), ctx=ctx)
            assert status_of(default) == 404

    run(body())


def test_a_server_built_without_overrides_answers_the_directory_as_plain_json(pki):
    async def body():
        async with _server(pki, Overrides()) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            directory = await raw_exchange(server.port, http_request(), ctx=ctx)
            assert _headers(directory)["content-type"] == "application/json"
            assert "cache-control" not in _headers(directory)

    run(body())


def test_a_tls13_only_server_refuses_tls12_and_answers_tls13(pki):
    async def body():
        async with _server(pki, overrides_for(["server-tls13-only"])) as server:
            answered = await raw_exchange(server.port, http_request(),
                                          ctx=raw_client_context(pki, pki.pair("b.example")))
            assert status_of(answered) == 200
            with pytest.raises((ssl.SSLError, ConnectionResetError)):
                await raw_exchange(server.port, http_request(),
                                   ctx=raw_client_context(pki, pki.pair("b.example"), max_tls12=True))

    run(body())


def _keep_alive(request: bytes) -> bytes:
    return request.replace(b"Connection: close\r\n", b"")


def test_a_server_built_to_close_every_connection_says_so(pki):
    async def body():
        async with _server(pki, overrides_for(["server-closes-every-connection"])) as server:
            ctx = raw_client_context(pki, pki.pair("b.example"))
            # Requests that ask for a persistent connection: the server closes anyway (else a timeout).
            answered = await raw_exchange(server.port, _keep_alive(http_request()), ctx=ctx)
            refused = await raw_exchange(server.port, _keep_alive(http_request("POST", "/v1/nowhere/x", body=b"x")),
                                         ctx=ctx)
            assert [status_of(answered), status_of(refused)] == [200, 404]
            assert _headers(answered)["connection"] == _headers(refused)["connection"] == "close"

    run(body())
