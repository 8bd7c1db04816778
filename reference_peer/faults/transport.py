"""Faults of the transport area (checks: conformance/scenarios/test_transport.py).

Hooks: the server side in ``reference_peer/server/transport.py`` (TLS contexts, Host, From, the
listener), the outgoing side in ``ReferenceProvider._call`` (``reference_peer/peer.py``).
"""

from __future__ import annotations

from .registry import active, define

AREA = "transport"

CLIENT_CERT_OPTIONAL = define(
    "client-cert-optional",
    area=AREA,
    requirements=["PROTO-TRANSPORT-MTLS"],
    description="the MIMI listener does not require a client certificate (CERT_OPTIONAL) and takes the "
    "From header at its word when none is presented",
)
NO_CLIENT_AUTH = define(
    "no-client-authentication",
    area=AREA,
    requirements=["PROTO-TRANSPORT-MTLS", "PROTO-TRANSPORT-CERT-SOURCE-DOMAIN", "PROTO-TRANSPORT-PEERING-REQUIRED"],
    description="the MIMI listener never asks for a client certificate (CERT_NONE), so a peer with a certificate "
    "from any CA, or none, is admitted as whatever its From header says",
)
IGNORE_FROM_CERT_MISMATCH = define(
    "ignore-from-cert-mismatch",
    area=AREA,
    requirements=["PROTO-TRANSPORT-CERT-SOURCE-DOMAIN"],
    description="the MIMI listener accepts a From domain the client certificate does not authenticate",
)
TRUST_OWN_DOMAIN_FROM = define(
    "trust-own-domain-from",
    area=AREA,
    requirements=["PROTO-TRANSPORT-CERT-SOURCE-DOMAIN"],
    description="a request whose From names one of the server's own domains is admitted whatever the client "
    "certificate names (a forged 'loopback' origin)",
)
# Serving a Host the server does not serve is no fault: -06 §4.1 binds the requester's Host only (the
# allowed variant serve-any-host, reference_peer/faults/variants_strictness.py). The fault breaks that.
OUTGOING_HOST_ELSEWHERE = define(
    "outgoing-host-elsewhere",
    area=AREA,
    requirements=["PROTO-TRANSPORT-HOST-TARGET"],
    description="requests to peers carry a Host naming the sending provider's own domain, not the target",
)
HOST_PORT_SIGNIFICANT = define(
    "host-port-significant",
    area=AREA,
    requirements=["PROTO-TRANSPORT-HOST-TARGET"],
    description="a Host whose port differs from the listening port is refused with 421 (the port is not ignored)",
)
SERVE_CLEARTEXT = define(
    "serve-cleartext",
    area=AREA,
    requirements=["PROTO-TRANSPORT-HTTPS-ONLY"],
    description="the MIMI listener also serves cleartext HTTP on its port (sniffing the first byte), taking From "
    "at its word",
)
SELF_SIGNED_SERVER_CERT = define(
    "self-signed-server-cert",
    area=AREA,
    requirements=["PROTO-TRANSPORT-CERT-TARGET-DOMAIN"],
    description="the MIMI listener presents a self-signed certificate for its domain, which no peer's CA vouches for",
)
OUTGOING_FROM_DISPLAY_NAME = define(
    "outgoing-from-display-name",
    area=AREA,
    requirements=["PROTO-TRANSPORT-FROM-ADDR-SPEC"],
    description="requests to peers carry 'From: MIMI <mimi@domain>' (name-addr) instead of the bare addr-spec",
)
OUTGOING_FROM_LOCALPART = define(
    "outgoing-from-localpart",
    area=AREA,
    requirements=["PROTO-TRANSPORT-FROM-LOCALPART-MIMI"],
    description="requests to peers carry 'From: server@domain' instead of the fixed local-part mimi",
)
TRAILING_BYTE_IN_REQUESTS = define(
    "trailing-byte-in-requests",
    area=AREA,
    requirements=["PROTO-TRANSPORT-BODY-ENCODING"],
    description="request bodies sent to peers carry one zero byte after the encoded struct",
)


# --- server side ------------------------------------------------------------------------------


def adjust_server_context(ctx) -> None:
    """The listener's TLS context under the client-authentication faults."""
    import ssl

    if active(NO_CLIENT_AUTH):
        ctx.verify_mode = ssl.CERT_NONE
    elif active(CLIENT_CERT_OPTIONAL):
        ctx.verify_mode = ssl.CERT_OPTIONAL


def server_certificate(domain: str, cert_file, key_file):
    """The (certificate, key) files the listener presents for ``domain`` (a self-signed pair under the fault)."""
    if not active(SELF_SIGNED_SERVER_CERT):
        return cert_file, key_file
    import tempfile

    from reference_peer.pki import make_self_signed

    return make_self_signed(domain).write(tempfile.mkdtemp(prefix="mimi-fault-"), domain)


def admits_unauthenticated_from(*, tls: bool, peer_names, from_domain: str, local_domains) -> bool:
    """Whether a fault admits a From the client certificate does not authenticate."""
    if not tls:
        return active(SERVE_CLEARTEXT)
    if not peer_names:
        return active(CLIENT_CERT_OPTIONAL) or active(NO_CLIENT_AUTH)
    if active(IGNORE_FROM_CERT_MISMATCH):
        return True
    return active(TRUST_OWN_DOMAIN_FROM) and from_domain in local_domains


async def start_sniffing_listener(loop, app_factory, host: str, port: int, ssl_context, handshake_timeout: float):
    """SERVE_CLEARTEXT: one listener that runs TLS when the first byte is a TLS handshake record
    (0x16) and plain HTTP otherwise."""
    import asyncio
    from asyncio import sslproto

    class Sniffer(asyncio.Protocol):
        def connection_made(self, transport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            app = app_factory()
            if data[:1] == b"\x16":
                tls = sslproto.SSLProtocol(
                    loop, app, ssl_context, None, server_side=True, ssl_handshake_timeout=handshake_timeout
                )
                self.transport.set_protocol(tls)
                tls.connection_made(self.transport)
                buffer = tls.get_buffer(len(data))
                buffer[: len(data)] = data
                tls.buffer_updated(len(data))
            else:
                self.transport.set_protocol(app)
                app.connection_made(self.transport)
                app.data_received(data)

    return await loop.create_server(Sniffer, host, port, reuse_address=True)


# --- outgoing side ----------------------------------------------------------------------------


def outgoing(domain: str, body: bytes, options: dict) -> tuple[bytes, dict]:
    """The body and request options of a call to a peer under the outgoing faults."""
    if active(TRAILING_BYTE_IN_REQUESTS):
        body = bytes(body) + b"\x00"
    wrong_from = None
    if active(OUTGOING_FROM_DISPLAY_NAME):
        wrong_from = f"MIMI <mimi@{domain}>"
    elif active(OUTGOING_FROM_LOCALPART):
        wrong_from = f"server@{domain}"
    if wrong_from is not None:
        options = {**options, "headers": {**(options.get("headers") or {}), "From": wrong_from}}
    if active(OUTGOING_HOST_ELSEWHERE):
        options = {**options, "headers": {**(options.get("headers") or {}), "Host": domain}}
    return body, options
