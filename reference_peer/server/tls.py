"""TLS contexts for §4.1's mutually authenticated HTTPS, server and client side."""

from __future__ import annotations

import os
import ssl

StrPath = str | os.PathLike[str]


def server_context(cert_file: StrPath, key_file: StrPath, ca_file: StrPath) -> ssl.SSLContext:
    """A server context that demands a client certificate chaining to ``ca_file`` (CERT_REQUIRED).

    OpenSSL checks the client chain for the TLS-client purpose, so a certificate without the
    clientAuth extended key usage fails the handshake too.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=os.fspath(ca_file))
    ctx.load_cert_chain(os.fspath(cert_file), os.fspath(key_file))
    ctx.set_alpn_protocols(["http/1.1"])  # aiohttp speaks HTTP/1.1 only
    return ctx


def client_context(cert_file: StrPath, key_file: StrPath, ca_file: StrPath) -> ssl.SSLContext:
    """A client context that presents the provider certificate and verifies the peer's name against ``ca_file``."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=os.fspath(ca_file))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(os.fspath(cert_file), os.fspath(key_file))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def is_tls_failure(exc: BaseException) -> bool:
    """Whether an ssl.SSLError (handshake or alert) sits anywhere in ``exc``'s cause/context chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError | ssl.CertificateError):
            return True
        current = current.__cause__ or current.__context__
    return False
