"""Faults of the transport area (checks: conformance/scenarios/test_transport.py).

Hooks: the server side in ``reference_peer/server/transport.py`` (TLS contexts, Host, From, the
listener), the outgoing side in ``ReferenceProvider._call`` (``reference_peer/peer.py``).
"""

from __future__ import annotations

import functools

from .registry import define

AREA = "transport"


# --- server side: hooks of the steps in reference_peer/server/transport.py (one per fault) -----


def _verify_mode(name: str):
    """server.tls.require-client-certificate: the listener asks for a client certificate otherwise."""
    import ssl

    return getattr(ssl, name)


def _self_signed_certificate(domain: str, cert_file, key_file):
    """server.tls.present-ca-certificate: a self-signed (certificate, key) pair for ``domain``."""
    import tempfile

    from reference_peer.pki import make_self_signed

    return make_self_signed(domain).write(tempfile.mkdtemp(prefix="mimi-fault-"), domain)


# server.admit.from-authenticated: True admits a From the client certificate does not authenticate.
def _admit_cleartext(*, tls: bool, peer_names, from_domain: str, local_domains):
    return True if not tls else None


def _admit_without_certificate(*, tls: bool, peer_names, from_domain: str, local_domains):
    return True if tls and not peer_names else None


def _admit_mismatched_certificate(*, tls: bool, peer_names, from_domain: str, local_domains):
    return True if tls and peer_names else None


def _admit_own_domain_from(*, tls: bool, peer_names, from_domain: str, local_domains):
    return True if tls and peer_names and from_domain in local_domains else None


def _admit_parent_domain_certificate(*, tls: bool, peer_names, from_domain: str, local_domains):
    """A suffix match: a certificate for ref.test 'authenticates' hub.ref.test (RFC 6125 matches exactly)."""
    return True if tls and any(from_domain.endswith("." + name.lower()) for name in peer_names) else None


async def start_sniffing_listener(loop, app_factory, host: str, port: int, ssl_context, handshake_timeout: float):
    """server.listen.tls-only under SERVE_CLEARTEXT: one listener that runs TLS when the first byte is a
    TLS handshake record (0x16) and plain HTTP otherwise."""
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


_REQUIRE_CLIENT_CERT = "server.tls.require-client-certificate"
_FROM_AUTHENTICATED = "server.admit.from-authenticated"

CLIENT_CERT_OPTIONAL = define(
    "client-cert-optional",
    area=AREA,
    requirements=["PROTO-TRANSPORT-MTLS"],
    description="the MIMI listener does not require a client certificate (CERT_OPTIONAL) and takes the "
    "From header at its word when none is presented",
    hooks={_REQUIRE_CLIENT_CERT: functools.partial(_verify_mode, "CERT_OPTIONAL"),
           _FROM_AUTHENTICATED: _admit_without_certificate},
)
NO_CLIENT_AUTH = define(
    "no-client-authentication",
    area=AREA,
    requirements=["PROTO-TRANSPORT-MTLS", "PROTO-TRANSPORT-CERT-SOURCE-DOMAIN", "PROTO-TRANSPORT-PEERING-REQUIRED"],
    description="the MIMI listener never asks for a client certificate (CERT_NONE), so a peer with a certificate "
    "from any CA, or none, is admitted as whatever its From header says",
    hooks={_REQUIRE_CLIENT_CERT: functools.partial(_verify_mode, "CERT_NONE"),
           _FROM_AUTHENTICATED: _admit_without_certificate},
)
IGNORE_FROM_CERT_MISMATCH = define(
    "ignore-from-cert-mismatch",
    area=AREA,
    requirements=["PROTO-TRANSPORT-CERT-SOURCE-DOMAIN"],
    description="the MIMI listener accepts a From domain the client certificate does not authenticate",
    hooks={_FROM_AUTHENTICATED: _admit_mismatched_certificate},
)
TRUST_OWN_DOMAIN_FROM = define(
    "trust-own-domain-from",
    area=AREA,
    requirements=["PROTO-TRANSPORT-CERT-SOURCE-DOMAIN"],
    description="a request whose From names one of the server's own domains is admitted whatever the client "
    "certificate names (a forged 'loopback' origin)",
    hooks={_FROM_AUTHENTICATED: _admit_own_domain_from},
)
FROM_PARENT_DOMAIN_CERT = define(
    "from-parent-domain-cert",
    area=AREA,
    requirements=["PROTO-TRANSPORT-CERT-SOURCE-DOMAIN"],
    description="the MIMI listener matches the From domain against the client certificate by suffix: a "
    "certificate naming a parent domain (ref.test) is taken to authenticate any subdomain (hub.ref.test)",
    hooks={_FROM_AUTHENTICATED: _admit_parent_domain_certificate},
)
# keymaterial.target.path-matches-body (reference_peer/peer.py): the user served when the path and the
# body's targetUser disagree (the check: test_transport.py, incoming keyMaterial whose path and body disagree).
KEYMAT_TRUST_BODY_TARGET = define(
    "keymat-trust-body-target",
    area=AREA,
    requirements=["PROTO-KEYMAT-TARGET-IN-PATH"],
    description="a keyMaterial request whose path names another user than its targetUser is answered for the "
    "body's targetUser (the path is ignored)",
    hooks={"keymaterial.target.path-matches-body": lambda *, path_target, body_target: body_target},
)
KEYMAT_TRUST_PATH_TARGET = define(
    "keymat-trust-path-target",
    area=AREA,
    requirements=["PROTO-KEYMAT-TARGET-IN-PATH"],
    description="a keyMaterial request whose path names another user than its targetUser is answered for the "
    "path's user (the body's targetUser is ignored)",
    hooks={"keymaterial.target.path-matches-body": lambda *, path_target, body_target: path_target},
)
# Serving a Host the server does not serve is no fault: -06 §4.1 binds the requester's Host only (the
# allowed variant serve-any-host, reference_peer/faults/variants_strictness.py). The fault breaks that.
OUTGOING_HOST_ELSEWHERE = define(
    "outgoing-host-elsewhere",
    area=AREA,
    requirements=["PROTO-TRANSPORT-HOST-TARGET"],
    description="requests to peers carry a Host naming the sending provider's own domain, not the target",
    hooks={"provider.call.host-names-target": lambda domain: domain},  # the Host header ReferenceProvider sends
)
HOST_PORT_SIGNIFICANT = define(
    "host-port-significant",
    area=AREA,
    requirements=["PROTO-TRANSPORT-HOST-TARGET"],
    description="a Host whose port differs from the listening port is refused with 421 (the port is not ignored)",
    departs=("server.host.ignore-port",),
)
SERVE_CLEARTEXT = define(
    "serve-cleartext",
    area=AREA,
    requirements=["PROTO-TRANSPORT-HTTPS-ONLY"],
    description="the MIMI listener also serves cleartext HTTP on its port (sniffing the first byte), taking From "
    "at its word",
    hooks={"server.listen.tls-only": start_sniffing_listener, _FROM_AUTHENTICATED: _admit_cleartext},
)
SELF_SIGNED_SERVER_CERT = define(
    "self-signed-server-cert",
    area=AREA,
    requirements=["PROTO-TRANSPORT-CERT-TARGET-DOMAIN"],
    description="the MIMI listener presents a self-signed certificate for its domain, which no peer's CA vouches for",
    hooks={"server.tls.present-ca-certificate": _self_signed_certificate},
)
OUTGOING_FROM_DISPLAY_NAME = define(
    "outgoing-from-display-name",
    area=AREA,
    requirements=["PROTO-TRANSPORT-FROM-ADDR-SPEC"],
    description="requests to peers carry 'From: MIMI <mimi@domain>' (name-addr) instead of the bare addr-spec",
    hooks={"provider.call.from-mimi-addr-spec": lambda domain: f"MIMI <mimi@{domain}>"},  # the From header sent
)
OUTGOING_FROM_LOCALPART = define(
    "outgoing-from-localpart",
    area=AREA,
    requirements=["PROTO-TRANSPORT-FROM-LOCALPART-MIMI"],
    description="requests to peers carry 'From: server@domain' instead of the fixed local-part mimi",
    hooks={"provider.call.from-mimi-addr-spec": lambda domain: f"server@{domain}"},
)
TRAILING_BYTE_IN_REQUESTS = define(
    "trailing-byte-in-requests",
    area=AREA,
    requirements=["PROTO-TRANSPORT-BODY-ENCODING"],
    description="request bodies sent to peers carry one zero byte after the encoded struct",
    hooks={"provider.call.body-as-encoded": lambda body: bytes(body) + b"\x00"},  # the body sent
)
# Issue 18 (mutants of MimiServer._admit and api_prefix): the listener's own refusals and the directory's URLs.
BODY_LIMIT_ONE_BYTE = define(
    "body-limit-one-byte",
    area=AREA,
    requirements=["PROTO-TRANSPORT-HTTPS-ONLY"],
    description="the MIMI listener refuses any request whose Content-Length passes 1 byte with 413, so it serves "
    "no MIMI request body over HTTPS",
    hooks={"server.admit.body-limit": lambda limit: 1},
)
CHUNKED_BODY_READ_AS_EMPTY = define(
    "chunked-body-read-as-empty",
    area=AREA,
    requirements=["PROTO-TRANSPORT-HTTPS-ONLY"],
    description="the MIMI listener takes the body of a request without Content-Length (Transfer-Encoding: chunked) "
    "as empty, so a well-formed chunked MIMI request is refused as undecodable",
    departs=("server.read.chunked-body",),
)
DIRECTORY_AT_OTHER_PATH = define(
    "directory-at-other-path",
    area=AREA,
    requirements=["PROTO-DIRECTORY-WELL-KNOWN"],
    description="the directory is served at /.well-known/mimi-directory; the mimi-protocol-directory "
    "well-known URI answers 404",
    hooks={"server.route.directory": lambda: "/.well-known/mimi-directory"},
)
DIRECTORY_URLS_WITHOUT_PATH_SLASH = define(
    "directory-urls-without-path-slash",
    area=AREA,
    requirements=["PROTO-DIRECTORY-HTTPS-URLS"],
    description="the directory's URLs run the path prefix into the authority (https://a.example:8443v1/notify/...), "
    "a port no peer can connect to",
    hooks={"server.route.v1-paths": lambda: "v1/"},
)


def _first_served_for_unusable_host(hosts, served_names):
    """server.host.refuse-missing-or-malformed: no Host, several, or one that does not parse names the first
    served provider (the rest of the Host check then admits it)."""
    from reference_peer.server.names import MalformedHost, parse_host

    if len(hosts) == 1:
        try:
            parse_host(hosts[0])
            return None
        except MalformedHost:
            pass
    return [served_names[0]]


# Issue 18 (mutants of MimiServer._check_host, _check_from and _expect): refusals no check provoked.
UNUSABLE_HOST_SERVED = define(
    "unusable-host-served",
    area=AREA,
    requirements=["PROTO-TRANSPORT-HOST-TARGET"],
    description="a request with no Host header, or one whose Host does not parse, is served as addressed to the "
    "server's first provider instead of being refused",
    hooks={"server.host.refuse-missing-or-malformed": _first_served_for_unusable_host},
)
REPEATED_FROM_FIRST_TAKEN = define(
    "repeated-from-first-taken",
    area=AREA,
    requirements=["PROTO-TRANSPORT-CERT-SOURCE-DOMAIN"],
    description="a request with two From field lines is taken to come from the first one's domain (the second, "
    "which the client certificate does not authenticate, is ignored)",
    departs=("server.from.refuse-repeated",),
)
NO_100_CONTINUE = define(
    "no-100-continue",
    area=AREA,
    requirements=["PROTO-TRANSPORT-HTTPS-ONLY"],
    description="an HTTP/1.1 request with Expect: 100-continue is never answered 100 Continue: the listener waits "
    "for a body the client has been told to hold back",
    departs=("server.expect.send-continue",),
)
