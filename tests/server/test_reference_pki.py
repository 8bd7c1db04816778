"""The test PKI: provider certificates fit §4.1 mutual TLS, and the wrong ones are wrong in exactly one way."""

from __future__ import annotations

import datetime as dt
import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from reference_peer.pki import (
    CertificateAuthority,
    make_self_signed,
    make_unknown_ca_cert,
    subject_alt_dns_names,
    write_test_pki,
)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create()


def _eku(cert: x509.Certificate) -> set:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_provider_certificate_is_a_ca_signed_server_and_client_leaf(ca):
    leaf = ca.issue_provider("a.example", extra_names=["mimi.a.example"])
    leaf.cert.verify_directly_issued_by(ca.cert)
    assert subject_alt_dns_names(leaf.cert) == ["a.example", "mimi.a.example"]
    assert _eku(leaf.cert) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert leaf.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    now = dt.datetime.now(dt.UTC)
    assert leaf.cert.not_valid_before_utc < now < leaf.cert.not_valid_after_utc


def test_ca_certificate_is_a_ca(ca):
    constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert ca.cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


def test_wrong_certificates_are_wrong_in_the_intended_way(ca):
    now = dt.datetime.now(dt.UTC)
    expired = ca.issue_expired("b.example").cert
    assert expired.not_valid_after_utc < now and subject_alt_dns_names(expired) == ["b.example"]
    future = ca.issue_not_yet_valid("b.example").cert
    assert future.not_valid_before_utc > now
    assert subject_alt_dns_names(ca.issue_wrong_name("b.example").cert) == ["not-b.example"]
    cn_only = ca.issue_cn_only("b.example").cert
    assert subject_alt_dns_names(cn_only) == []
    assert cn_only.subject.rfc4514_string() == "CN=b.example"
    assert _eku(ca.issue_server_only("b.example").cert) == {ExtendedKeyUsageOID.SERVER_AUTH}

    self_signed = make_self_signed("b.example").cert
    assert self_signed.issuer == self_signed.subject
    self_signed.verify_directly_issued_by(self_signed)
    with pytest.raises(ValueError):
        self_signed.verify_directly_issued_by(ca.cert)

    stranger = make_unknown_ca_cert("b.example").cert
    assert subject_alt_dns_names(stranger) == ["b.example"]
    with pytest.raises(ValueError):  # issuer name differs from our CA's
        stranger.verify_directly_issued_by(ca.cert)


def test_write_test_pki_writes_pem_files_with_private_keys_unreadable_by_others(tmp_path):
    ca, files = write_test_pki(tmp_path, ["a.example", "b.example"])
    assert files.ca_cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    for domain in ("a.example", "b.example"):
        cert = x509.load_pem_x509_certificate(files[domain].cert.read_bytes())
        cert.verify_directly_issued_by(ca.cert)
        assert subject_alt_dns_names(cert) == [domain]
        assert files[domain].key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
        assert stat.S_IMODE(files[domain].key.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.ca_key.stat().st_mode) == 0o600


def test_write_test_pki_refuses_duplicate_domains(tmp_path):
    with pytest.raises(ValueError, match="duplicate"):
        write_test_pki(tmp_path, ["a.example", "A.example"])
