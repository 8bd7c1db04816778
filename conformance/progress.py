"""A small pytest plugin the ``mimi-conformance run`` command loads into its pytest subprocess
(``-p conformance.progress``): it writes how many checks were collected per area to the file named
by the ``MIMI_CONFORMANCE_PROGRESS`` environment variable, so the command can print a progress line
as each area completes while it tails the results file. Without that variable it does nothing.

One JSON line: ``{"kind": "collected", "areas": {"discovery": 1, ...}}``. Under pytest-xdist the
controller does not collect; it writes the line when the first worker reports its collection (every
worker collects the same checks).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import PurePosixPath

import pytest

PROGRESS_ENV = "MIMI_CONFORMANCE_PROGRESS"
_written = False


def area_of(node_id: str) -> str:
    """The area of a check, as the mimi-conformance plugin names it: its module's name without ``test_``."""
    return PurePosixPath(node_id.split("::", 1)[0]).stem.removeprefix("test_")


def _write(node_ids: Iterable[str]) -> None:
    global _written
    path = os.environ.get(PROGRESS_ENV)
    if not path or _written:
        return
    _written = True
    areas = Counter(area_of(node_id) for node_id in node_ids)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps({"kind": "collected", "areas": dict(sorted(areas.items()))}) + "\n")


def pytest_collection_finish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller reports for the run
        return
    if session.config.pluginmanager.hasplugin("dsession"):  # xdist controller: collected nothing itself
        return
    _write(item.nodeid for item in session.items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids) -> None:
    _write(ids)
