"""What each local client has been given: the fan-out items the provider delivered to it.

The control API's "read what a local client received" reads this; quarantine (consent.py) writes
into it only on release, in the same transaction that deletes the held items, so a released item
lands exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .store import Clock, Store


@dataclass(frozen=True)
class InboxItem:
    seq: int
    client_uri: str
    room_id: str
    item: bytes


class Inbox:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def deliver(self, room_id: str, clients: Iterable[str], item: bytes) -> None:
        now = int(self._clock())
        with self._store.transaction() as conn:
            conn.executemany(
                "INSERT INTO inbox (client_uri, room_id, item, delivered_at) VALUES (?, ?, ?, ?)",
                [(client, room_id, bytes(item), now) for client in clients],
            )

    def read(self, client_uri: str, *, after: int = 0) -> list[InboxItem]:
        """Items for ``client_uri`` in delivery order; ``after`` is the last seq already read."""
        rows = self._store.conn.execute(
            "SELECT id, client_uri, room_id, item FROM inbox WHERE client_uri = ? AND id > ? ORDER BY id",
            (client_uri, after),
        ).fetchall()
        return [InboxItem(seq, client, room, bytes(item)) for seq, client, room, item in rows]
