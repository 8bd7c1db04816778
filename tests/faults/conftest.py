"""Prints the kill matrix (test_fault_kills.py) in the terminal summary, where output capture cannot
swallow it: the module hands its rendering to the ``kill_matrix_texts`` fixture."""

import os

import pytest

_TEXTS = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def selftest_parallel() -> int:
    """How many suite runs the kill matrix, the variant matrix and the mutation sample keep going at
    once. Three on two cores: a run spends much of its time waiting on poll windows and timeouts, so
    measured on 20 faults three took 150 s where two took 208-232 s (four gained nothing more)."""
    return int(os.environ.get("MIMI_SELFTEST_PARALLEL", "3"))


@pytest.fixture(scope="session")
def kill_matrix_texts(pytestconfig) -> list:
    return pytestconfig.stash.setdefault(_TEXTS, [])


def pytest_terminal_summary(terminalreporter, config) -> None:
    for text in config.stash.get(_TEXTS, []):
        terminalreporter.write_sep("=", "fault kill matrix")
        terminalreporter.write_line(text)
