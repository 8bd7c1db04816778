"""Prints the kill matrix (test_fault_kills.py) in the terminal summary, where output capture cannot
swallow it: the module hands its rendering to the ``kill_matrix_texts`` fixture."""

import pytest

_TEXTS = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def kill_matrix_texts(pytestconfig) -> list:
    return pytestconfig.stash.setdefault(_TEXTS, [])


def pytest_terminal_summary(terminalreporter, config) -> None:
    for text in config.stash.get(_TEXTS, []):
        terminalreporter.write_sep("=", "fault kill matrix")
        terminalreporter.write_line(text)
