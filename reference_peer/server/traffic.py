"""A bounded in-memory log of the MIMI requests a provider received and sent.

The suite reads it from its *own* reference peers (``GET /x-reference/v1/traffic``) to judge what a
SUT sent them: the bytes of a fan-out, whether a follower was told a sender's URI, where a Welcome
went. It is never read from a SUT.
"""

from __future__ import annotations

import base64
import collections
import threading
import time
from typing import Any


class TrafficLog:
    def __init__(self, capacity: int = 20_000) -> None:
        self._items: collections.deque[dict[str, Any]] = collections.deque(maxlen=capacity)
        self._seq = 0
        self._lock = threading.Lock()

    def add(
        self,
        direction: str,
        *,
        endpoint: str,
        peer: str,
        value: str,
        request: bytes,
        status: int | None,
        response: bytes = b"",
        error: str | None = None,
        readings: list[dict[str, str]] | None = None,
    ) -> None:
        with self._lock:
            self._seq += 1
            self._items.append({
                "seq": self._seq,
                "direction": direction,  # "in": a peer called us; "out": we called a peer
                "endpoint": endpoint,
                "peer": peer,  # the other provider's domain
                "value": value,  # the endpoint's path variable (room, user, ...)
                "request": base64.b64encode(bytes(request)).decode(),
                "status": status,
                "response": base64.b64encode(bytes(response)).decode(),
                "error": error,
                # The ambiguity register's readings (AMB- ID, field path, detail) this peer took to
                # decode the request (tolerant decoding); empty when it decoded as written.
                "readings": list(readings or ()),
                "time": time.time(),
            })

    def since(self, after: int = 0, limit: int = 1000) -> tuple[list[dict[str, Any]], int]:
        """Records with ``seq > after`` (oldest first, at most ``limit``) and the sequence number to ask after next."""
        with self._lock:
            items = [item for item in self._items if item["seq"] > after][:limit]
            # Nothing newer: the newest sequence number so far (never beyond it), so that asking
            # with a huge ``after`` gives a mark to read on from.
            return items, (items[-1]["seq"] if items else max(0, min(after, self._seq)))

    @property
    def last(self) -> int:
        return self._seq


class ViolationLog:
    """Rules a peer was seen breaking while this provider processed what it sent (a GroupInfo that does
    not open with the requester's key, ...), each with the requirement ID. The suite reads it from its
    own reference peers to say which rule blocked a check; it is never read from a SUT."""

    def __init__(self, capacity: int = 1000) -> None:
        self._items: collections.deque[dict[str, Any]] = collections.deque(maxlen=capacity)
        self._lock = threading.Lock()

    def add(self, requirement: str, *, peer: str, evidence: str) -> None:
        with self._lock:
            self._items.append({"requirement": requirement, "peer": peer, "evidence": evidence, "time": time.time()})

    def since(self, moment: float) -> list[dict[str, Any]]:
        with self._lock:
            return [item for item in self._items if item["time"] >= moment]


class HandlerClock:
    """Time spent inside this process's own handlers (MIMI endpoints, control API), for the suite's
    benchmark of harness overhead; printed at shutdown as one ``handler time:`` line."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {"mimi": 0.0, "control": 0.0}
        self.calls: dict[str, int] = {"mimi": 0, "control": 0}

    def add(self, kind: str, seconds: float) -> None:
        self.seconds[kind] += seconds
        self.calls[kind] += 1

    def line(self) -> str:
        return "handler time: " + ", ".join(
            f"{kind} {self.seconds[kind]:.3f}s over {self.calls[kind]} requests" for kind in self.seconds
        )


HANDLER_CLOCK = HandlerClock()
