"""Prints the hostile-SUT table (test_hostile_suts.py) in the terminal summary, where output capture
cannot swallow it: the module hands its table to the ``hostile_tables`` fixture."""

import pytest

_TABLES = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def hostile_tables(pytestconfig) -> list:
    return pytestconfig.stash.setdefault(_TABLES, [])


def pytest_terminal_summary(terminalreporter, config) -> None:
    for text in config.stash.get(_TABLES, []):
        terminalreporter.write_sep("=", "hostile SUTs")
        terminalreporter.write_line(text)
