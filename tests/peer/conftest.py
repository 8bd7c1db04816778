from __future__ import annotations

import pytest

from reference_peer.pki import write_test_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    _, files = write_test_pki(tmp_path_factory.mktemp("peer-pki"), ["a.example", "b.example", "c.example"])
    return files


def pytest_terminal_summary(terminalreporter):
    """The fuzzing and schemathesis counts (test_peer_fuzz, test_peer_control_schemathesis), when they ran."""
    from fuzz_helpers import STATS

    lines = STATS.lines()
    if lines:
        terminalreporter.section("reference peer bad-input counts")
        for line in lines:
            terminalreporter.write_line(line)
