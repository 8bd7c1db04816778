"""Durable provider state in SQLite (stdlib ``sqlite3``).

One :class:`Store` owns one connection. It is meant for one asyncio event-loop thread: every state
operation of this package is synchronous and runs inside :meth:`Store.transaction`, so no other
coroutine can interleave with it. Never ``await`` inside a transaction.

Transactions start with ``BEGIN IMMEDIATE`` (the write lock is taken up front), so several stores
opened on the same file, in other threads or processes, serialise their writers instead of failing
with "database is locked" half-way through a read-modify-write such as a KeyPackage claim.
Nested :meth:`transaction` calls become savepoints, so a helper that opens its own transaction
joins the caller's one (the outbox enqueue in the same transaction as the state change, the
/notify dedup record in the same transaction as the processing).

Schema versions live in ``PRAGMA user_version``. ``MIGRATIONS[i]`` takes a database from version
``i`` to ``i + 1``; a later issue appends to the list and never edits an entry.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# Version 1: the first schema. Column notes:
# * times are Unix seconds (REAL where sub-second retry timing matters, INTEGER otherwise);
# * room_id '' means "any room" in consent tables (NULL cannot take part in a primary key);
# * key_packages.key_package is the bare KeyPackage encoding (not the MLSMessage wrapper), the
#   value a KeyMaterialResponse carries and the input of the KeyPackageRef hash.
_SCHEMA_V1 = """
CREATE TABLE users (
    uri             TEXT PRIMARY KEY,
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deleted')),
    search_policy   TEXT NOT NULL DEFAULT 'exact_handle'
                    CHECK (search_policy IN ('searchable', 'exact_handle', 'hidden')),
    consent_mode    TEXT CHECK (consent_mode IN ('immediate', 'quarantine', 'consent-first')),
    created_at      INTEGER NOT NULL,
    deleted_at      INTEGER
);

CREATE TABLE profile_fields (
    user_uri    TEXT NOT NULL REFERENCES users(uri) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('handle', 'nick', 'email', 'phone', 'name', 'oidc', 'vcard')),
    name        TEXT NOT NULL DEFAULT '',
    value       TEXT NOT NULL,
    position    INTEGER NOT NULL,
    PRIMARY KEY (user_uri, position)
);
CREATE INDEX profile_fields_by_value ON profile_fields(kind, value);

CREATE TABLE clients (
    uri         TEXT PRIMARY KEY,
    user_uri    TEXT NOT NULL REFERENCES users(uri) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL
);
CREATE INDEX clients_by_user ON clients(user_uri);

CREATE TABLE key_packages (
    id              INTEGER PRIMARY KEY,
    client_uri      TEXT NOT NULL REFERENCES clients(uri) ON DELETE CASCADE,
    ref             BLOB NOT NULL UNIQUE,
    key_package     BLOB NOT NULL,
    cipher_suite    INTEGER NOT NULL,
    not_before      INTEGER NOT NULL,
    not_after       INTEGER NOT NULL,
    last_resort     INTEGER NOT NULL DEFAULT 0 CHECK (last_resort IN (0, 1)),
    uploaded_at     INTEGER NOT NULL,
    claimed_by      TEXT,
    claimed_at      INTEGER,
    times_served    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX key_packages_available ON key_packages(client_uri, claimed_at, not_after);

-- Target provider: KeyPackageRef -> client, to route an incoming Welcome (§5.2, §5.5).
CREATE TABLE kp_routes (
    ref         BLOB PRIMARY KEY,
    client_uri  TEXT NOT NULL,
    user_uri    TEXT NOT NULL,
    requester   TEXT NOT NULL,
    room_id     TEXT NOT NULL DEFAULT '',
    not_after   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Hub: KeyPackageRef -> target provider domain, to fan a Welcome out (§4.3.1, §5.2).
CREATE TABLE hub_kp_routes (
    ref             BLOB PRIMARY KEY,
    provider_domain TEXT NOT NULL,
    room_id         TEXT NOT NULL,
    not_after       INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);

-- Consent (docs/extensions/consent-modes.md). Requests and decisions are kept apart so that a
-- requester's new request can never erase the target's revoke.
CREATE TABLE consent_requests (
    requester   TEXT NOT NULL,
    target      TEXT NOT NULL,
    room_id     TEXT NOT NULL DEFAULT '',
    received_at INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (requester, target, room_id)
);
CREATE TABLE consent_decisions (
    requester   TEXT NOT NULL,
    target      TEXT NOT NULL,
    room_id     TEXT NOT NULL DEFAULT '',
    decision    TEXT NOT NULL CHECK (decision IN ('grant', 'revoke')),
    decided_at  INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (requester, target, room_id)
);
-- What remote target providers told us about our local requesters (incoming updateConsent).
CREATE TABLE consent_notices (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    requester       TEXT NOT NULL,
    target          TEXT NOT NULL,
    room_id         TEXT NOT NULL DEFAULT '',
    operation       TEXT NOT NULL CHECK (operation IN ('grant', 'revoke')),
    key_packages    INTEGER NOT NULL DEFAULT 0,
    received_at     INTEGER NOT NULL
);

-- Quarantine: rooms held for a target user, and the fan-out items kept until accept or reject.
CREATE TABLE held_rooms (
    user_uri    TEXT NOT NULL,
    room_id     TEXT NOT NULL,
    requester   TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('held', 'released', 'rejected')),
    since       INTEGER NOT NULL,
    PRIMARY KEY (user_uri, room_id)
);
CREATE TABLE held_items (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_uri    TEXT NOT NULL,
    room_id     TEXT NOT NULL,
    clients     TEXT NOT NULL,
    item        BLOB NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX held_items_by_room ON held_items(user_uri, room_id, id);

-- What each local client has been given (the control API's received-messages read).
CREATE TABLE inbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    client_uri  TEXT NOT NULL,
    room_id     TEXT NOT NULL,
    item        BLOB NOT NULL,
    delivered_at INTEGER NOT NULL
);
CREATE INDEX inbox_by_client ON inbox(client_uri, id);

-- /notify duplicate suppression (§5.5): a rolling window of body hashes per hub.
CREATE TABLE notify_dedup (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    digest      BLOB NOT NULL UNIQUE,
    hub_domain  TEXT NOT NULL,
    received_at REAL NOT NULL
);

-- Fan-out and consent messages to other providers, written in the transaction that caused them.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    destination     TEXT NOT NULL,
    endpoint        TEXT NOT NULL,
    path_vars       TEXT NOT NULL,
    body            BLOB NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      REAL NOT NULL,
    finished_at     REAL
);
CREATE INDEX outbox_pending ON outbox(state, destination, id);
"""

# Version 2: the reference peer's own state (reference_peer/peer.py). Blobs are reference-peer-internal
# versioned pickles (reference_peer/peer_store.py), never read from the network:
# * peer_meta: provider-wide values (the hub's external-sender signature key);
# * peer_hub_rooms: one HubRoom per room this provider hosts;
# * peer_client_keys: a local client's identity (signature key) and its unclaimed KeyPackage privates;
# * peer_members: a local client's MLS state in one room (a SimulatedClient);
# * peer_cursors: how far each local client has consumed its inbox (fan-out items, in order);
# * peer_received: the application messages a local client decrypted (the control API's read).
_SCHEMA_V2 = """
CREATE TABLE peer_meta (
    name    TEXT PRIMARY KEY,
    value   BLOB NOT NULL
);

CREATE TABLE peer_hub_rooms (
    room_id     TEXT PRIMARY KEY,
    state       BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE peer_client_keys (
    client_uri  TEXT PRIMARY KEY,
    state       BLOB NOT NULL
);

CREATE TABLE peer_members (
    room_id     TEXT NOT NULL,
    client_uri  TEXT NOT NULL,
    state       BLOB NOT NULL,
    PRIMARY KEY (room_id, client_uri)
);

CREATE TABLE peer_cursors (
    client_uri  TEXT PRIMARY KEY,
    inbox_seq   INTEGER NOT NULL
);

CREATE TABLE peer_received (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    client_uri      TEXT NOT NULL,
    room_id         TEXT NOT NULL,
    sender          TEXT NOT NULL,
    epoch           INTEGER NOT NULL,
    data            BLOB NOT NULL,
    received_at     INTEGER NOT NULL
);
CREATE INDEX peer_received_by_client ON peer_received(client_uri, id);
"""

MIGRATIONS: tuple[str, ...] = (_SCHEMA_V1, _SCHEMA_V2)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(RuntimeError):
    """The database was written by a newer version of this code; refusing to touch it."""


class Store:
    """One SQLite connection plus the transaction discipline described in the module docstring."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None) -> None:
        self._conn = conn
        self.path = path
        self._depth = 0
        self._after_commit: list[Callable[[], None]] = []

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def memory(cls) -> Store:
        """A private in-memory database (lost on close), for tests that need no durability."""
        return cls._init(sqlite3.connect(":memory:", isolation_level=None), None)

    @classmethod
    def open(cls, path: str | Path) -> Store:
        """A durable database file (created if missing), in WAL mode."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False only so that a store may be handed to another thread once (e.g.
        # created before the event loop starts); it is never used by two threads at a time.
        conn = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            conn.close()
            raise RuntimeError(f"{path}: WAL journal mode unavailable (got {mode!r})")
        # NORMAL is durable across process crashes in WAL mode (an OS crash may lose the last
        # commits); the outbox and dedup rely only on the former.
        conn.execute("PRAGMA synchronous=NORMAL")
        return cls._init(conn, path)

    @classmethod
    def _init(cls, conn: sqlite3.Connection, path: Path | None) -> Store:
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        store = cls(conn, path)
        store._migrate()
        return store

    def _migrate(self) -> None:
        with self.transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(f"database schema version {version} is newer than {SCHEMA_VERSION}")
            for step in range(version, SCHEMA_VERSION):
                for statement in _split_statements(MIGRATIONS[step]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={step + 1}")

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    @property
    def journal_mode(self) -> str:
        return str(self._conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()

    def close(self) -> None:
        self._conn.close()

    # -- transactions ---------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        return self._conn

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; nested calls are savepoints of the outer one."""
        depth = self._depth
        savepoint = f"sp_{depth}"
        self._conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {savepoint}")
        self._depth += 1
        try:
            yield self._conn
        except BaseException:
            self._depth -= 1
            if depth == 0:
                self._conn.execute("ROLLBACK")
                self._after_commit.clear()
            else:
                self._conn.execute(f"ROLLBACK TO {savepoint}")
                self._conn.execute(f"RELEASE {savepoint}")
            raise
        self._depth -= 1
        if depth:
            self._conn.execute(f"RELEASE {savepoint}")
            return
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (e.g. SQLITE_BUSY) leaves the transaction open: end it, or the next
            # BEGIN on this connection would fail.
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            self._after_commit.clear()
            raise
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the outermost transaction commits (at once outside one); dropped
        on rollback. The outbox uses it to wake its worker only for items that really exist."""
        if self._depth == 0:
            callback()
        else:
            self._after_commit.append(callback)


def _split_statements(script: str) -> list[str]:
    # executescript() would COMMIT the open transaction; the schema has no ';' inside literals.
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


Clock = Callable[[], float]
"""Current Unix time in seconds; injected everywhere so tests never wait."""
