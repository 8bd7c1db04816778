"""Synchronous MIMI calls for checks, as one of the suite's reference domains, through the recorder.

Checks are plain synchronous pytest functions; :class:`MimiSession` owns a private event loop and a
:class:`MimiClient` whose ``observer`` is the check's recorder, so every exchange is kept. Each call
runs under the SUT's request timeout (the client enforces it and raises a ``PeerError`` subclass,
which the verdict logic turns into FAIL with a diagnosis when the URL is the SUT's).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from reference_peer.server.client import ClientLimits, MimiClient, PeerDirectoryError, PeerReply

from .recorder import Recorder

T = TypeVar("T")


class MimiSession:
    def __init__(
        self,
        domain: str,
        cert: Path,
        key: Path,
        trust: Path,
        *,
        resolve: dict[str, str],
        recorder: Recorder | None,
        timeout: float,
    ) -> None:
        self.domain = domain
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self.client = MimiClient(
            domain, cert, key, trust, limits=ClientLimits(timeout=timeout), resolve=resolve,
            observer=recorder.record_mimi if recorder is not None else None,
        )

    def run(self, coroutine: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
        """Run a coroutine on the session's loop with a deadline (the client's own is inside it)."""
        budget = (timeout if timeout is not None else self.timeout) + 5.0

        async def bounded() -> T:
            async with asyncio.timeout(budget):
                return await coroutine

        return self._loop.run_until_complete(bounded())

    def directory(self, peer: str, *, role: str = "any", refresh: bool = False) -> dict[str, Any]:
        """``peer``'s §5.1 directory, every member kept; one that cannot be had blocks the check (below)."""
        try:
            return self.run(self.client.fetch_directory(peer, refresh=refresh))
        except PeerDirectoryError as exc:
            block_on_directory(exc, role)
            raise

    def endpoint_urls(self, peer: str, values: dict[str, str], *, role: str = "any") -> dict[str, str]:
        """The URLs of the endpoints a check needs (endpoint -> path value) from ``peer``'s directory.
        A missing endpoint or an unusable template (every one is named) blocks the check."""
        try:
            return self.run(self.client.endpoint_urls(peer, values))
        except PeerDirectoryError as exc:
            block_on_directory(exc, role)
            raise

    def request(self, method: str, url: str, body: bytes = b"", **options: Any) -> PeerReply:
        return self.run(self.client.request(method, url, body, **options))

    def get(self, url: str, **options: Any) -> PeerReply:
        return self.request("GET", url, **options)

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self.client.aclose())
        finally:
            self._loop.close()


def block_on_directory(error: PeerDirectoryError, role: str = "any") -> None:
    """A check that needs the SUT's directory (an endpoint, a usable template) and cannot have it is
    blocked by the directory rule the SUT broke (``conformance.harness.attribution``), never a miss of
    its own requirement; a missing endpoint -06 leaves optional makes it NOT_APPLICABLE. Returns (for the
    caller to re-raise) when the error is not the SUT's."""
    from conformance.verdicts import blocked, not_applicable

    from .attribution import OPTIONAL_ENDPOINTS, directory_blockers

    found = directory_blockers(error, role)
    if found:
        blocked(found[0].requirement, "; ".join(dict.fromkeys(b.evidence for b in found)))
    optional = [endpoint for endpoint in getattr(error, "missing", ()) if endpoint in OPTIONAL_ENDPOINTS]
    if optional:
        not_applicable(f"the SUT's directory does not list {', '.join(map(repr, optional))}, which -06 leaves "
                       "optional: the SUT does not offer it")
