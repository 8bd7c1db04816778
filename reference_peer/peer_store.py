"""The reference peer's own durable state, next to the provider state in the same SQLite store
(tables added by migration 2 of ``provider/store.py``).

HubRoom and SimulatedClient objects hold MLS state (secrets, trees, callables) that no standard
encodes; they are kept as *reference-peer-internal* pickles prefixed by a magic and a format
version. A blob of another version is refused (``ValueError``), never misread. The blobs are written
and read only by this process's own database: nothing received from a peer is ever unpickled.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from dataclasses import dataclass

from .provider.store import Clock, Store

BLOB_MAGIC = b"RPSTATE"
BLOB_VERSION = 1


def dump_blob(value: object) -> bytes:
    return BLOB_MAGIC + bytes([BLOB_VERSION]) + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def load_blob(data: bytes) -> object:
    head = len(BLOB_MAGIC)
    data = bytes(data)
    if data[:head] != BLOB_MAGIC or len(data) <= head:
        raise ValueError("not a reference-peer state blob")
    if data[head] != BLOB_VERSION:
        raise ValueError(f"state blob has format version {data[head]}, this code reads {BLOB_VERSION}")
    return pickle.loads(data[head + 1 :])


@dataclass(frozen=True)
class ReceivedRow:
    seq: int
    client_uri: str
    room_id: str
    sender: str
    epoch: int
    data: bytes
    received_at: int


class PeerStore:
    """Typed access to the peer_* tables. Every write joins the caller's transaction when there is one."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    # -- provider-wide values ----------------------------------------------------------------------

    def meta(self, name: str) -> object | None:
        row = self.store.conn.execute("SELECT value FROM peer_meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else load_blob(row[0])

    def set_meta(self, name: str, value: object) -> None:
        with self.store.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO peer_meta (name, value) VALUES (?, ?)", (name, dump_blob(value)))

    # -- hub rooms ---------------------------------------------------------------------------------

    def save_hub_room(self, room_id: str, room: object) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO peer_hub_rooms (room_id, state, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (room_id) DO UPDATE SET state = excluded.state",
                (room_id, dump_blob(room), int(self.clock())),
            )

    def hub_rooms(self) -> Iterator[tuple[str, object]]:
        for room_id, state in self.store.conn.execute("SELECT room_id, state FROM peer_hub_rooms ORDER BY created_at"):
            yield room_id, load_blob(state)

    # -- local clients -----------------------------------------------------------------------------

    def save_client_keys(self, client_uri: str, keys: object) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO peer_client_keys (client_uri, state) VALUES (?, ?)",
                (client_uri, dump_blob(keys)),
            )

    def delete_client(self, client_uri: str) -> None:
        with self.store.transaction() as conn:
            for table in ("peer_client_keys", "peer_members", "peer_cursors", "peer_received"):
                conn.execute(f"DELETE FROM {table} WHERE client_uri = ?", (client_uri,))  # noqa: S608 - fixed names

    def client_keys(self) -> Iterator[tuple[str, object]]:
        for uri, state in self.store.conn.execute("SELECT client_uri, state FROM peer_client_keys"):
            yield uri, load_blob(state)

    def save_member(self, room_id: str, client_uri: str, member: object) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO peer_members (room_id, client_uri, state) VALUES (?, ?, ?)",
                (room_id, client_uri, dump_blob(member)),
            )

    def members(self) -> Iterator[tuple[str, str, object]]:
        for room_id, uri, state in self.store.conn.execute("SELECT room_id, client_uri, state FROM peer_members"):
            yield room_id, uri, load_blob(state)

    def cursor(self, client_uri: str) -> int:
        row = self.store.conn.execute("SELECT inbox_seq FROM peer_cursors WHERE client_uri = ?", (client_uri,)).fetchone()
        return 0 if row is None else int(row[0])

    def set_cursor(self, client_uri: str, seq: int) -> None:
        with self.store.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO peer_cursors (client_uri, inbox_seq) VALUES (?, ?)", (client_uri, seq))

    # -- what local clients decrypted -----------------------------------------------------------------

    def add_received(self, client_uri: str, room_id: str, sender: str, epoch: int, data: bytes, at: int) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO peer_received (client_uri, room_id, sender, epoch, data, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (client_uri, room_id, sender, epoch, bytes(data), at),
            )

    def received(self, client_uri: str, *, room_id: str | None = None, after: int = 0, limit: int = 100) -> list[ReceivedRow]:
        rows = self.store.conn.execute(
            "SELECT id, client_uri, room_id, sender, epoch, data, received_at FROM peer_received "
            "WHERE client_uri = ? AND id > ? AND (? IS NULL OR room_id = ?) ORDER BY id LIMIT ?",
            (client_uri, after, room_id, room_id, limit),
        ).fetchall()
        return [ReceivedRow(r[0], r[1], r[2], r[3], r[4], bytes(r[5]), r[6]) for r in rows]
