"""One test PKI per session for the transport tests (see transport_helpers for the rest)."""

from __future__ import annotations

import pytest
from transport_helpers import Pair, TestPki

from reference_peer.pki import make_self_signed, make_unknown_ca_cert, write_test_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> TestPki:
    directory = tmp_path_factory.mktemp("pki")
    ca, files = write_test_pki(directory, ["a.example", "b.example", "c.example"])
    bad = {
        "unknown-ca": make_unknown_ca_cert("b.example"),
        "self-signed": make_self_signed("b.example"),
        "expired": ca.issue_expired("b.example"),
        "cn-only": ca.issue_cn_only("b.example"),
        "wrong-name": ca.issue_wrong_name("b.example"),
        "server-only": ca.issue_server_only("b.example"),
    }
    pairs = {name: Pair(*cert.write(directory, f"bad-{name}")) for name, cert in bad.items()}
    return TestPki(ca, files, directory, pairs)
