"""The suite's reference domains: which names its reference hub and follower use in this process.

A run has one pair of reference peers per pytest-xdist worker, so that a SUT shared by the workers
(``url``, ``command``, ``image``) can tell them apart: worker 0 (and a run without workers) uses
``hub.ref.test`` and ``follower.ref.test``, worker *k* uses ``hub-k.ref.test`` and
``follower-k.ref.test``. Every name is one label under :data:`REFERENCE_ZONE`, so a vendor maps the
whole zone (``*.ref.test``) to the suite's one reference address once, whatever ``-n`` is.

The plugin calls :func:`set_worker` in ``pytest_configure`` of a suite run (``--sut`` given), before
any scenario module is imported, so a module-level ``HUB = current().hub`` is this worker's name.
"""

from __future__ import annotations

import dataclasses
import re

REFERENCE_ZONE = "ref.test"
_WORKER = re.compile(r"^gw(\d+)$")


@dataclasses.dataclass(frozen=True)
class ReferenceDomains:
    hub: str
    follower: str

    def __iter__(self):
        return iter((self.hub, self.follower))


def reference_domains(worker_index: int = 0) -> ReferenceDomains:
    """The reference hub's and follower's domains of worker ``worker_index`` (0: the default names)."""
    if worker_index < 0:
        raise ValueError(f"worker index must be >= 0, got {worker_index}")
    suffix = "" if worker_index == 0 else f"-{worker_index}"
    return ReferenceDomains(f"hub{suffix}.{REFERENCE_ZONE}", f"follower{suffix}.{REFERENCE_ZONE}")


def worker_index(workerid: str | None) -> int:
    """``gw3`` -> 3; None (no xdist) -> 0."""
    if workerid is None:
        return 0
    match = _WORKER.match(workerid)
    if match is None:
        raise ValueError(f"unexpected pytest-xdist worker id {workerid!r}")
    return int(match.group(1))


def all_reference_domains(workers: int) -> list[str]:
    """Every reference domain a run with ``workers`` workers (0 or 1: no xdist) may use."""
    return [domain for k in range(max(workers, 1)) for domain in reference_domains(k)]


def in_reference_zone(domain: str) -> bool:
    return domain.lower().endswith("." + REFERENCE_ZONE)


_current = reference_domains(0)


def set_worker(workerid: str | None) -> ReferenceDomains:
    """Fix this process's reference domains from its xdist worker id (None: no worker)."""
    global _current
    _current = reference_domains(worker_index(workerid))
    return _current


def current() -> ReferenceDomains:
    """This process's reference domains (the default names until :func:`set_worker` says otherwise)."""
    return _current
