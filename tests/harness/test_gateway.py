"""The reference gateway: one address for every reference peer, routed by the ClientHello's server
name, with TLS (mutual TLS included) passing through untouched; anything else is closed, boundedly."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest

from conformance.harness.gateway import GatewayError, ReferenceGateway, server_name, split_address
from reference_peer.pki import write_test_pki

DOMAINS = ["hub.ref.test", "follower-1.ref.test", "sut.example"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return write_test_pki(tmp_path_factory.mktemp("pki"), DOMAINS)[1]


class MutualTlsServer:
    """Accepts TLS connections requiring a client certificate; answers ``<own name> <client's name>``."""

    def __init__(self, pki, domain: str) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_cert))
        self.context.load_cert_chain(str(pki[domain].cert), str(pki[domain].key))
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.domain = domain
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.context.wrap_socket(raw, server_side=True) as tls:
                    request = tls.recv(1024)
                    client = [name for kind, name in tls.getpeercert()["subjectAltName"] if kind == "DNS"][0]
                    tls.sendall(f"{self.domain} {client} {request.decode()}".encode())
            except (OSError, ssl.SSLError):
                continue

    def close(self) -> None:
        self.sock.close()


def tls_call(pki, address: str, server: str, client: str, payload: bytes = b"hello") -> str:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki[client].cert), str(pki[client].key))
    host, port = split_address(address)
    with socket.create_connection((host, port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=server) as tls:
        tls.sendall(payload)
        return tls.recv(1024).decode()


@pytest.fixture
def gateway(tmp_path):
    gw = ReferenceGateway("127.0.0.1:0", tmp_path / "routes")
    gw.start()
    yield gw
    gw.stop()


def test_routes_by_server_name_with_mutual_tls_passing_through(pki, gateway):
    hub, follower = MutualTlsServer(pki, "hub.ref.test"), MutualTlsServer(pki, "follower-1.ref.test")
    try:
        gateway.add_route("hub.ref.test", f"127.0.0.1:{hub.port}")
        gateway.add_route("follower-1.ref.test", f"127.0.0.1:{follower.port}")
        # The backends verify the caller's certificate: it reached them untouched.
        assert tls_call(pki, gateway.bound, "hub.ref.test", "sut.example") == "hub.ref.test sut.example hello"
        assert tls_call(pki, gateway.bound, "follower-1.ref.test", "sut.example", b"x") == \
            "follower-1.ref.test sut.example x"
        gateway.remove_route("hub.ref.test")
        with pytest.raises((ssl.SSLError, OSError)):
            tls_call(pki, gateway.bound, "hub.ref.test", "sut.example")
    finally:
        hub.close()
        follower.close()


def test_a_route_written_by_another_process_is_seen_at_the_next_connection(pki, gateway):
    from conformance.harness.gateway import write_route

    hub = MutualTlsServer(pki, "hub.ref.test")
    try:
        write_route(gateway.routes_dir, "hub.ref.test", f"127.0.0.1:{hub.port}")
        assert tls_call(pki, gateway.bound, "hub.ref.test", "sut.example").startswith("hub.ref.test ")
    finally:
        hub.close()


def test_unknown_server_name_is_closed_and_noted(pki, gateway):
    with pytest.raises((ssl.SSLError, OSError)):
        tls_call(pki, gateway.bound, "nobody.ref.test", "sut.example")
    assert "nobody.ref.test" in gateway.unrouted
    # A name that would leave the routes folder is never looked up as a path.
    with pytest.raises((ssl.SSLError, OSError, ValueError)):
        tls_call(pki, gateway.bound, "..", "sut.example")


def closed_within(address: str, payload: bytes, seconds: float) -> float:
    host, port = split_address(address)
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=seconds + 5) as sock:
        if payload:
            sock.sendall(payload)
        assert sock.recv(1024) == b""  # closed without an answer
    return time.monotonic() - started


def test_garbage_and_oversized_and_slow_client_hellos_are_closed_boundedly(gateway):
    assert closed_within(gateway.bound, b"GET / HTTP/1.1\r\nHost: hub.ref.test\r\n\r\n", 1) < 1
    # A record header promising more than the bound, then filler: closed once 16 KiB arrived.
    oversized = bytes([0x16, 3, 1, 0xFF, 0xFF]) + bytes(17 * 1024)
    assert closed_within(gateway.bound, oversized, 1) < 2
    # Half a ClientHello and then silence: cut off after the 5 s bound.
    elapsed = closed_within(gateway.bound, bytes([0x16, 3, 1, 0, 200, 1, 0]), 6)
    assert 4.5 <= elapsed < 7


def test_server_name_parser():
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="hub-3.ref.test")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert server_name(hello) == "hub-3.ref.test"
    with pytest.raises(ValueError):
        server_name(b"\x17\x03\x03\x00\x05hello")


def test_an_address_in_use_is_a_setup_error_naming_the_manifest_field(tmp_path, gateway):
    with pytest.raises(GatewayError, match="suite.referenceAddress"):
        ReferenceGateway(gateway.bound, tmp_path / "other").start()
