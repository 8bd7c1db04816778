from __future__ import annotations

import pytest

from reference_peer.pki import write_test_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    _, files = write_test_pki(tmp_path_factory.mktemp("peer-pki"), ["a.example", "b.example", "c.example"])
    return files
