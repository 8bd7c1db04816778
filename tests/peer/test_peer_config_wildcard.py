"""Wildcard ``peers`` keys (``*.<zone>``) and ``advertise.port``: a reference peer behind a gateway.

A vendor points its peer at the suite's one reference address with ``"*.ref.test": host:port``; the
reference peers behind that gateway publish the gateway's port. Both must keep each peer's domain in
TLS SNI, the certificate check and Host.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

from reference_peer.config import ConfigError, parse_config
from reference_peer.peer import PeerBook
from reference_peer.server.client import ClientLimits, MimiClient
from reference_peer.server.endpoints import DIRECTORY_PATH
from reference_peer.server.transport import MimiRequest, MimiResponse, MimiServer, Provider


def document(pki, **extra):
    files = pki.providers["a.example"]
    return {
        "tls": {"ca": str(pki.ca_cert)},
        "providers": [{"domain": "a.example", "cert": str(files.cert), "key": str(files.key)}],
        **extra,
    }


def run(coro, deadline: float = 20.0):
    async def bounded():
        async with asyncio.timeout(deadline):
            return await coro

    return asyncio.run(bounded())


# --- parsing ---------------------------------------------------------------------------------------


def test_wildcard_and_advertise_keys_parse(pki, tmp_path):
    config = parse_config(
        document(pki, peers={"*.Ref.Test": "127.0.0.1:7443", "hub.ref.test": "hub.ref.test:9000"},
                 advertise={"port": 7443}),
        tmp_path,
    )
    assert config.peers == {"*.ref.test": "127.0.0.1:7443", "hub.ref.test": "hub.ref.test:9000"}
    assert config.advertise_port == 7443
    assert parse_config(document(pki), tmp_path).advertise_port is None


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"peers": {"*ref.test": "127.0.0.1:7443"}}, r"peers\.\*ref\.test"),
        ({"peers": {"a.*.test": "127.0.0.1:7443"}}, r"peers\.a\.\*\.test"),
        ({"peers": {"*.*.test": "127.0.0.1:7443"}}, r"peers\.\*\.\*\.test"),
        ({"peers": {"*.ref.test": "not an authority"}}, r"peers\.\*\.ref\.test"),
        ({"advertise": {"port": 0}}, r"advertise\.port"),
        ({"advertise": {"port": 70000}}, r"advertise\.port"),
        ({"advertise": {"port": "7443"}}, r"advertise\.port: expected an integer"),
        ({"advertise": {"host": "gw"}}, r"advertise: unknown key"),
    ],
)
def test_bad_wildcard_and_advertise_keys_are_config_errors(pki, tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(document(pki, **extra), tmp_path)


# --- lookup ----------------------------------------------------------------------------------------


def test_a_wildcard_covers_exactly_one_more_label():
    book = PeerBook({"*.ref.test": "127.0.0.1:7443"})
    assert book.route("hub.ref.test") == book.route("FOLLOWER-3.ref.test") == "127.0.0.1:7443"
    assert book.route("ref.test") is None
    assert book.route("a.hub.ref.test") is None
    assert book.authority("a.hub.ref.test") == "a.hub.ref.test"  # unlisted: its own name


def test_an_address_entry_keeps_the_domain_and_says_where_to_connect():
    book = PeerBook({"*.ref.test": "127.0.0.1:7443", "b.example": "b.example:8443", "c.example": "gw.internal"})
    assert (book.authority("hub.ref.test"), book.connect_address("hub.ref.test")) == ("hub.ref.test:7443", "127.0.0.1")
    assert (book.authority("b.example"), book.connect_address("b.example")) == ("b.example:8443", None)
    assert (book.authority("c.example"), book.connect_address("c.example")) == ("c.example", "gw.internal")
    assert book.connect_address("127.0.0.1") is None  # not a domain: nothing configured


def test_exact_keys_win_over_wildcards_and_the_file_over_the_mapping(tmp_path):
    path = tmp_path / "peers.yaml"
    book = PeerBook({"*.ref.test": "127.0.0.1:1", "hub.ref.test": "hub.ref.test:2"}, path)
    assert book.route("hub.ref.test") == "hub.ref.test:2"
    assert book.route("follower.ref.test") == "127.0.0.1:1"
    # The file's wildcard loses to the mapping's exact key, and beats the mapping's wildcard.
    path.write_text('"*.ref.test": 127.0.0.1:3\n')
    assert book.route("hub.ref.test") == "hub.ref.test:2"
    assert book.route("follower.ref.test") == "127.0.0.1:3"
    path.write_text('"*.ref.test": 127.0.0.1:3\nhub.ref.test: hub.ref.test:4\nnot_a_key!: x\n')
    assert book.route("hub.ref.test") == "hub.ref.test:4"  # a bad key in the file is left out, not fatal


# --- served: a peer behind a gateway ------------------------------------------------------------------


@contextlib.asynccontextmanager
async def forwarder(target_port: int):
    """A TCP gateway on a free loopback port that passes bytes through to ``target_port`` untouched."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(reader, writer):
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def echoing_provider(pki, domain: str) -> Provider:
    """``domain``'s provider, whose /notify answers with what the request arrived as: the provider it
    reached, the caller's certified domain and the Host header."""
    files = pki.providers[domain]
    provider = Provider(domain, files.cert, files.key)

    async def notify(request: MimiRequest) -> MimiResponse:
        seen = {"target": request.target_domain, "peer": request.peer_domain, "host": request.http.headers["Host"]}
        return MimiResponse(json.dumps(seen).encode(), status=201)

    provider.register("notify", notify)
    return provider


def test_the_directory_names_the_advertised_port(pki):
    async def body():
        server = MimiServer([echoing_provider(pki, "b.example")], pki.ca_cert, port=0, advertise_port=7443)
        async with server:
            assert server.base_url("b.example") == "https://b.example:7443"
            assert server.authority("b.example") == f"b.example:{server.port}"  # where it listens
            a = pki.providers["a.example"]
            async with MimiClient("a.example", a.cert, a.key, pki.ca_cert, resolve={"b.example": "127.0.0.1"},
                                  limits=ClientLimits(timeout=5.0)) as client:
                reply = await client.request("GET", f"https://b.example:{server.port}{DIRECTORY_PATH}")
        assert reply.status == 200
        assert json.loads(reply.body)["notify"].startswith("https://b.example:7443/")

    run(body())


@pytest.mark.parametrize("key", ["*.example", "b.example"])
def test_a_call_through_a_gateway_keeps_the_domain_in_sni_certificate_and_host(pki, key):
    """The caller's entry names the gateway's address; the peer behind it advertises the gateway's
    port. The call reaches the right provider by its name (the server picks the certificate by SNI
    and refuses a Host it does not serve or a certificate that does not cover it)."""
    a = pki.providers["a.example"]

    async def body():
        providers = [echoing_provider(pki, "c.example"), echoing_provider(pki, "b.example")]
        server = MimiServer(providers, pki.ca_cert, port=0)
        async with server, forwarder(server.port) as gateway_port:
            server.advertise_port = gateway_port
            book = PeerBook({key: f"127.0.0.1:{gateway_port}"})
            async with MimiClient("a.example", a.cert, a.key, pki.ca_cert, connect=book.connect_address,
                                  limits=ClientLimits(timeout=5.0)) as client:
                authority = book.authority("b.example")
                directory = await client.fetch_directory(authority)
                reply = await client.call(authority, "notify", "room", b"x")
        assert authority == f"b.example:{gateway_port}"
        assert directory["notify"].startswith(f"https://b.example:{gateway_port}/")
        assert reply.status == 201, reply.body
        assert json.loads(reply.body) == {"target": "b.example", "peer": "a.example", "host": authority}

    run(body())
