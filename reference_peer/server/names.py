"""Provider identity checks of §4.1 (draft-ietf-mimi-protocol-06): From, Host, and RFC 6125 name matching.

Pure functions with no I/O, so the rules are unit-testable and the server and client share them.
"""

from __future__ import annotations

import re

from cryptography import x509

from reference_peer.pki import subject_alt_dns_names

MIMI_LOCAL_PART = "mimi"

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_PORT = re.compile(r"^[0-9]{1,5}$")


class IdentityError(ValueError):
    """Base for the parse errors below; the message says what is wrong, for the 400 body and the log."""


class MalformedFrom(IdentityError):
    """``requirement`` names the §4.1 rule the value breaks, so a refusal can cite it."""

    def __init__(self, message: str, requirement: str) -> None:
        super().__init__(message)
        self.requirement = requirement


class MalformedHost(IdentityError):
    pass


def normalize_domain(name: str) -> str:
    """Lower-case ``name`` and check it is a DNS host name made of LDH labels (A-labels for IDNs).

    Raises ValueError otherwise: IP literals, empty labels, underscores and over-long names are not
    provider domains.
    """
    if not name or len(name) > 253:
        raise ValueError(f"not a domain name: {name!r}")
    lowered = name.lower()
    labels = lowered.split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"not a domain name: {name!r}")
    if labels[-1].isdigit():  # 192.0.2.1 is an address, not a domain
        raise ValueError(f"not a domain name: {name!r}")
    return lowered


def parse_from(value: str | None) -> str:
    """The provider domain in a §4.1 From header value, lower-cased.

    §4.1: the mailbox MUST use the addr-spec form and the local-part MUST be the fixed string ``mimi``.
    So ``mimi@a.example`` is accepted; a display name, angle brackets, comments, a quoted local-part,
    another local-part (``MIMI`` included: local-parts are case-sensitive) or a non-DNS domain is not.
    """
    if value is None:
        raise MalformedFrom("missing From header", "PROTO-TRANSPORT-IDENTIFY-PROVIDERS")
    text = value.strip()
    if not text or any(c.isspace() or c in '<>()",;:[]\\' for c in text):
        raise MalformedFrom(f"From is not a bare addr-spec: {value!r}", "PROTO-TRANSPORT-FROM-ADDR-SPEC")
    local, sep, domain = text.rpartition("@")
    if not sep:
        raise MalformedFrom(f"From has no '@': {value!r}", "PROTO-TRANSPORT-FROM-ADDR-SPEC")
    if local != MIMI_LOCAL_PART:
        raise MalformedFrom(
            f"From local-part must be exactly {MIMI_LOCAL_PART!r}, got {local!r}", "PROTO-TRANSPORT-FROM-LOCALPART-MIMI"
        )
    try:
        return normalize_domain(domain)
    except ValueError:
        raise MalformedFrom(f"From domain is not a DNS name: {domain!r}", "PROTO-TRANSPORT-FROM-ADDR-SPEC") from None


def parse_host(value: str | None) -> tuple[str, int | None]:
    """Split a Host header into (lower-cased domain, port or None). §4.1: the port plays no part in
    naming the target provider, so callers use only the domain. A trailing root dot is dropped."""
    if value is None or not value.strip():
        raise MalformedHost("missing Host header")
    text = value.strip()
    if text.startswith("["):  # IPv6 literal: well-formed, but never a provider domain
        end = text.find("]")
        if end < 0:
            raise MalformedHost(f"unterminated IPv6 literal in Host: {value!r}")
        host, rest = text[: end + 1], text[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else None
        if rest and port_text is None:
            raise MalformedHost(f"malformed Host: {value!r}")
    else:
        host, sep, port_text = text.partition(":")
        if not sep:
            port_text = None
    port = None
    if port_text is not None:
        if not _PORT.match(port_text) or not 0 < int(port_text) < 65536:
            raise MalformedHost(f"malformed port in Host: {value!r}")
        port = int(port_text)
    if host.endswith(".") and not host.startswith("["):
        host = host[:-1]
    if not host:
        raise MalformedHost(f"empty host in Host: {value!r}")
    return host.lower(), port


def dns_id_matches(domain: str, presented: str) -> bool:
    """RFC 6125 §6.4 DNS-ID match of a reference ``domain`` against one presented dNSName.

    Case-insensitive. A wildcard is honoured only as the whole left-most label (``*.example.com``),
    matching exactly one label, and never for fewer than two remaining labels; partial wildcards
    (``f*.example.com``) match nothing, as RFC 9525 (which updates RFC 6125) requires.
    """
    reference = domain.lower().rstrip(".")
    name = presented.lower().rstrip(".")
    if not reference or not name:
        return False
    if "*" not in name:
        return reference == name
    first, _, rest = name.partition(".")
    if first != "*" or "*" in rest or rest.count(".") < 1:
        return False
    ref_first, _, ref_rest = reference.partition(".")
    return bool(ref_first) and ref_rest == rest


def certificate_authenticates(domain: str, dns_names: list[str] | tuple[str, ...]) -> bool:
    """Whether any presented subjectAltName dNSName authenticates ``domain``; the CN is never consulted."""
    return any(dns_id_matches(domain, name) for name in dns_names)


def peer_dns_names(der: bytes | None) -> list[str]:
    """subjectAltName dNSNames of a DER certificate (empty when absent or unparsable)."""
    if not der:
        return []
    try:
        return subject_alt_dns_names(x509.load_der_x509_certificate(der))
    except ValueError:
        return []
