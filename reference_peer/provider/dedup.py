"""/notify duplicate detection (protocol-06 §5.5).

"A duplicate request [is] a request from the same hub server with the same request body as a
previous /notify request": the follower MUST answer 201 and SHOULD process only the first. The
draft's NOTE suggests "a rolling list of hashes of recent messages"; this keeps
SHA-256(len(hub) || hub || body) in SQLite, at most ``window`` rows (the oldest go first), so it is
bounded and, on a durable store, survives restarts.

Use it in the same transaction as the processing, so that a crash cannot record a body as seen
without its effects (or the reverse)::

    with store.transaction():
        if not dedup.record_if_new(hub_domain, body):
            return 201          # duplicate: accepted, not processed again
        process(body)
"""

from __future__ import annotations

import hashlib

from .store import Clock, Store

DEFAULT_WINDOW = 100_000


def notify_digest(hub_domain: str, body: bytes) -> bytes:
    hub = hub_domain.lower().encode()
    return hashlib.sha256(len(hub).to_bytes(2, "big") + hub + bytes(body)).digest()


class NotifyDedup:
    def __init__(self, store: Store, clock: Clock, *, window: int = DEFAULT_WINDOW) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self._store = store
        self._clock = clock
        self.window = window

    def is_duplicate(self, hub_domain: str, body: bytes) -> bool:
        row = self._store.conn.execute(
            "SELECT 1 FROM notify_dedup WHERE digest = ?", (notify_digest(hub_domain, body),)
        ).fetchone()
        return row is not None

    def record_if_new(self, hub_domain: str, body: bytes) -> bool:
        """Record (hub, body); True if it was new, False if it is a duplicate within the window."""
        digest = notify_digest(hub_domain, body)
        with self._store.transaction() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO notify_dedup (digest, hub_domain, received_at) VALUES (?, ?, ?)",
                (digest, hub_domain.lower(), self._clock()),
            )
            if cur.rowcount == 0:
                return False
            newest = cur.lastrowid
            conn.execute("DELETE FROM notify_dedup WHERE seq <= ?", (newest - self.window,))
            return True

    def __len__(self) -> int:
        return int(self._store.conn.execute("SELECT COUNT(*) FROM notify_dedup").fetchone()[0])
