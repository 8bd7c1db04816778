"""A throw-away test PKI for MIMI providers: one CA, and per-provider certificates.

Provider certificates carry the provider domain as a subjectAltName dNSName and both serverAuth and
clientAuth extended key usages, because §4.1 of draft-ietf-mimi-protocol-06 runs every exchange over
mutually authenticated TLS: the same certificate serves a provider's listener and its outgoing calls.

ECDSA P-256 keeps generation in the milliseconds, so tests can make a fresh PKI per session.
The ``issue_*``/``make_*`` helpers for wrong certificates exist for negative tests.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# A small backdating absorbs clock skew between the test process and whatever verifies the certificate.
_BACKDATE = dt.timedelta(minutes=5)
DEFAULT_LEAF_DAYS = 30
DEFAULT_CA_DAYS = 365


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True)
class CertifiedKey:
    """A certificate and its private key, with PEM forms and a writer."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def dns_names(self) -> list[str]:
        return subject_alt_dns_names(self.cert)

    def write(self, directory: str | os.PathLike[str], stem: str) -> tuple[Path, Path]:
        """Write ``<stem>.pem`` (certificate) and ``<stem>.key`` (key, mode 0600); return both paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        cert_path = directory / f"{stem}.pem"
        key_path = directory / f"{stem}.key"
        cert_path.write_bytes(self.cert_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(self.key_pem)
        return cert_path, key_path


def subject_alt_dns_names(cert: x509.Certificate) -> list[str]:
    """The subjectAltName dNSName entries of ``cert`` (empty when it has no SAN extension)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.DNSName)


def _validity(not_before: dt.datetime | None, not_after: dt.datetime | None, days: int) -> tuple[dt.datetime, dt.datetime]:
    start = not_before if not_before is not None else _now() - _BACKDATE
    end = not_after if not_after is not None else start + _BACKDATE + dt.timedelta(days=days)
    return start, end


def _ca_certificate(
    key: ec.EllipticCurvePrivateKey, common_name: str, issuer: CertifiedKey | None, days: int
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start, end = _validity(None, None, days)
    signing_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256())


@dataclass
class CertificateAuthority:
    """A test CA that issues provider certificates (TLS server and client)."""

    root: CertifiedKey
    issued: list[CertifiedKey] = field(default_factory=list)

    @classmethod
    def create(cls, common_name: str = "MIMI conformance test CA", days: int = DEFAULT_CA_DAYS) -> CertificateAuthority:
        key = _new_key()
        return cls(CertifiedKey(_ca_certificate(key, common_name, None, days), key))

    @classmethod
    def load(cls, cert_file: str | os.PathLike[str], key_file: str | os.PathLike[str]) -> CertificateAuthority:
        """A CA written earlier (``ca.pem``, ``ca.key``), to issue more certificates from.

        Raises ValueError when either file is not what it should be: not PEM, not a CA certificate,
        not an EC key, or a key that does not belong to the certificate."""
        cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
        key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_file} is not an EC private key")
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.ca:
            raise ValueError(f"{cert_file} is not a CA certificate")
        if key.public_key().public_numbers() != cert.public_key().public_numbers():
            raise ValueError(f"{key_file} does not belong to {cert_file}")
        return cls(CertifiedKey(cert, key))

    @property
    def cert(self) -> x509.Certificate:
        return self.root.cert

    def issue(
        self,
        dns_names: Sequence[str],
        *,
        common_name: str | None = None,
        ip_addresses: Iterable[str] = (),
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        days: int = DEFAULT_LEAF_DAYS,
        server_auth: bool = True,
        client_auth: bool = True,
        include_san: bool = True,
    ) -> CertifiedKey:
        """Issue a leaf certificate. Everything is overridable so negative tests can break one property."""
        key = _new_key()
        cn = common_name if common_name is not None else (dns_names[0] if dns_names else "mimi test leaf")
        start, end = _validity(not_before, not_after, days)
        usages = []
        if server_auth:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        if client_auth:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.root.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root.key.public_key()), critical=False
            )
        )
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        general_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        general_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
        if include_san and general_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(general_names), critical=False)
        leaf = CertifiedKey(builder.sign(self.root.key, hashes.SHA256()), key)
        self.issued.append(leaf)
        return leaf

    def issue_provider(self, domain: str, extra_names: Sequence[str] = (), **overrides) -> CertifiedKey:
        """The normal provider certificate: SAN dNSName ``domain`` (plus ``extra_names``), server+client auth."""
        return self.issue([domain, *extra_names], **overrides)

    # --- deliberately wrong certificates -------------------------------------------------------------

    def issue_wrong_name(self, domain: str, wrong_name: str | None = None) -> CertifiedKey:
        """Valid and CA-signed, but its only name is not ``domain``."""
        return self.issue([wrong_name or f"not-{domain}"])

    def issue_expired(self, domain: str) -> CertifiedKey:
        """Correct name and issuer, validity ended yesterday."""
        now = _now()
        return self.issue([domain], not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1))

    def issue_not_yet_valid(self, domain: str) -> CertifiedKey:
        now = _now()
        return self.issue([domain], not_before=now + dt.timedelta(days=1), not_after=now + dt.timedelta(days=30))

    def issue_cn_only(self, domain: str) -> CertifiedKey:
        """The domain only in the subject CN, no subjectAltName: RFC 6125 forbids a CN fallback."""
        return self.issue([], common_name=domain, include_san=False)

    def issue_server_only(self, domain: str) -> CertifiedKey:
        """extendedKeyUsage serverAuth only: not acceptable as a TLS client certificate."""
        return self.issue([domain], client_auth=False)

    def write(self, directory: str | os.PathLike[str], stem: str = "ca") -> tuple[Path, Path]:
        return self.root.write(directory, stem)


def make_self_signed(domain: str, days: int = DEFAULT_LEAF_DAYS) -> CertifiedKey:
    """A provider-looking certificate for ``domain`` signed by its own key (no CA vouches for it)."""
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    start, end = _validity(None, None, days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertifiedKey(cert, key)


def make_unknown_ca_cert(domain: str) -> CertifiedKey:
    """A well-formed provider certificate for ``domain`` from a CA nobody was told to trust."""
    return CertificateAuthority.create("MIMI unknown test CA").issue_provider(domain)


@dataclass(frozen=True)
class ProviderFiles:
    domain: str
    cert: Path
    key: Path


@dataclass(frozen=True)
class PkiFiles:
    """Where :func:`write_test_pki` put things."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    providers: dict[str, ProviderFiles]

    def __getitem__(self, domain: str) -> ProviderFiles:
        return self.providers[domain]


def write_test_pki(
    directory: str | os.PathLike[str],
    domains: Sequence[str],
    ca: CertificateAuthority | None = None,
    days: int = DEFAULT_LEAF_DAYS,
) -> tuple[CertificateAuthority, PkiFiles]:
    """Make (or reuse) a CA and one provider certificate per domain; write ``ca.pem``, ``ca.key``,
    ``<domain>.pem`` and ``<domain>.key`` into ``directory``."""
    if len(set(d.lower() for d in domains)) != len(domains):
        raise ValueError(f"duplicate domains in {list(domains)}")
    ca = ca or CertificateAuthority.create()
    ca_cert, ca_key = ca.write(directory)
    providers = {}
    for domain in domains:
        cert, key = ca.issue_provider(domain, days=days).write(directory, domain)
        providers[domain] = ProviderFiles(domain, cert, key)
    return ca, PkiFiles(Path(directory), ca_cert, ca_key, providers)
