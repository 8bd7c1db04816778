"""The adapter kit's durable client store: the users and clients it made, each client's key template
(a :class:`SimulatedClient` with its credential, signature key and KeyPackage bundles), one
SimulatedClient per (client, room) with the MLS group state, and the application messages the clients
decrypted (with cursors for listReceivedMessages).

Everything lives in one SQLite file under the kit's state directory, so a restarted kit keeps its
clients and their groups. The MLS state is kept as the reference peer's internal blobs
(``peer_store.dump_blob``): written and read only by this store, never by anything received.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..mls.leaf import is_last_resort, make_key_package
from ..peer_store import dump_blob, load_blob
from ..room import SimulatedClient
from ..wire.codec import DecodeError, EncodeError
from ..wire.identity import MimiUri
from ..wire.mimi import FanoutMessage, Protocol
from ..wire.mls import WireFormat

log = logging.getLogger(__name__)

STORE_FILE = "kit-clients.sqlite3"
MLS10 = {"protocol": Protocol.mls10}  # the decoding scope of FanoutMessages
SCHEMA = """
CREATE TABLE IF NOT EXISTS kit_users (user_uri TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS kit_clients (client_uri TEXT PRIMARY KEY, user_uri TEXT NOT NULL, keys BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS kit_members (
    room_id TEXT NOT NULL, client_uri TEXT NOT NULL, state BLOB NOT NULL, PRIMARY KEY (room_id, client_uri));
CREATE TABLE IF NOT EXISTS kit_received (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, client_uri TEXT NOT NULL, room_id TEXT NOT NULL, sender TEXT NOT NULL,
    epoch INTEGER NOT NULL, data BLOB NOT NULL, received_at INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class ReceivedMessage:
    seq: int  # the cursor after this message
    room: str
    sender: str  # the sending client's credential identity
    epoch: int
    data: bytes
    received_at: int  # milliseconds since the epoch


class KitClients:
    """The kit's clients, loaded from ``state_dir`` (created when missing) and written through."""

    def __init__(self, state_dir: str | Path) -> None:
        directory = Path(state_dir)
        directory.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(directory / STORE_FILE, isolation_level=None)
        self.conn.executescript(SCHEMA)
        self.users: set[str] = {user for (user,) in self.conn.execute("SELECT user_uri FROM kit_users")}
        self.owner: dict[str, str] = {}  # client URI -> user URI
        self.keys: dict[str, SimulatedClient] = {}  # client URI -> its key template
        for client, user, keys in self.conn.execute("SELECT client_uri, user_uri, keys FROM kit_clients"):
            self.owner[client] = user
            self.keys[client] = load_blob(keys)
        self.members: dict[tuple[str, str], SimulatedClient] = {
            (room, client): load_blob(state)
            for room, client, state in self.conn.execute("SELECT room_id, client_uri, state FROM kit_members")
        }

    def close(self) -> None:
        self.conn.close()

    # -- users and clients ----------------------------------------------------------------------------

    def add_user(self, user: str) -> None:
        self.conn.execute("INSERT OR IGNORE INTO kit_users (user_uri) VALUES (?)", (user,))
        self.users.add(user)

    def delete_user(self, user: str) -> None:
        for client in self.clients_of(user):
            self.delete_client(client)
        self.conn.execute("DELETE FROM kit_users WHERE user_uri = ?", (user,))
        self.users.discard(user)

    def clients_of(self, user: str) -> list[str]:
        return sorted(client for client, owner in self.owner.items() if owner == user)

    def add_client(self, user: str, client: str) -> SimulatedClient:
        """A new client of ``user``: its credential and signature key (KeyPackages come with publish)."""
        parsed = MimiUri.parse(client)
        name = client.rsplit("/", 1)[1]
        keys = SimulatedClient(parsed.domain, parsed.user or name, name)
        self.owner[client] = user
        self.save_keys(client, keys)
        return keys

    def save_keys(self, client: str, keys: SimulatedClient) -> None:
        self.keys[client] = keys
        self.conn.execute("INSERT OR REPLACE INTO kit_clients (client_uri, user_uri, keys) VALUES (?, ?, ?)",
                          (client, self.owner[client], dump_blob(keys)))

    def make_key_packages(self, client: str, count: int, *, last_resort: bool,
                          lifetime_seconds: int | None = None, replace: bool = False) -> tuple[list[bytes], bytes | None]:
        """``count`` new one-time KeyPackages of ``client`` and, with ``last_resort``, a new last-resort one
        (the old one is withdrawn either way); with ``replace`` the unused one-time ones are forgotten.
        Returns their TLS bytes (one-time, last resort or None)."""
        keys = self.keys[client]
        lifetime = {} if lifetime_seconds is None else {"lifetime_seconds": lifetime_seconds}
        for ref, bundle in list(keys.key_packages.items()):
            if replace or is_last_resort(bundle.key_package):
                del keys.key_packages[ref]

        def new(last: bool):
            bundle = make_key_package(keys.suite_id, keys.credential, keys.signature_priv, last_resort=last,
                                      leaf_extensions=keys.leaf_extensions(), **lifetime)
            keys.key_packages[bundle.ref()] = bundle
            return bundle.key_package.encode()

        one_time = [new(False) for _ in range(count)]
        spare = new(True) if last_resort else None
        self.save_keys(client, keys)
        return one_time, spare

    def delete_client(self, client: str) -> None:
        for table in ("kit_clients", "kit_members", "kit_received"):
            self.conn.execute(f"DELETE FROM {table} WHERE client_uri = ?", (client,))  # noqa: S608 - fixed names
        self.owner.pop(client, None)
        self.keys.pop(client, None)
        for key in [k for k in self.members if k[1] == client]:
            del self.members[key]

    # -- per-room MLS state ---------------------------------------------------------------------------

    def new_member(self, client: str) -> SimulatedClient:
        """A fresh per-room MLS client: the client's credential and signature key, no group."""
        return self.keys[client].fresh_member()

    def active_member(self, room: str, client: str) -> SimulatedClient | None:
        member = self.members.get((room, client))
        if member is None or member.group is None or member.removed:
            return None
        return member

    def save_member(self, room: str, client: str, member: SimulatedClient) -> None:
        self.members[(room, client)] = member
        self.conn.execute("INSERT OR REPLACE INTO kit_members (room_id, client_uri, state) VALUES (?, ?, ?)",
                          (room, client, dump_blob(member)))

    def rooms(self) -> set[str]:
        return {room for room, _ in self.members}

    def room_members(self, room: str) -> list[tuple[str, SimulatedClient]]:
        return sorted((client, m) for (r, client), m in self.members.items()
                      if r == room and self.active_member(r, client) is not None)

    # -- what the server delivered --------------------------------------------------------------------

    def deliver(self, client: str, room: str, fanout: bytes) -> list[str]:
        """Process one delivery for ``client`` (one or more FanoutMessages); returns each message's outcome."""
        try:
            messages = FanoutMessage.decode_sequence(bytes(fanout), scope=MLS10)
        except (DecodeError, EncodeError) as exc:
            log.warning("undecodable delivery for %s in %s: %s", client, room, exc)
            return [f"error: {exc}"]
        return [self._consume(client, room, message) for message in messages]

    def _consume(self, client: str, room: str, message: FanoutMessage) -> str:
        keys = self.keys.get(client)
        if keys is None:
            return "ignored"
        member = self.members.get((room, client))
        mine: list[bytes] = []
        if message.message.wire_format == WireFormat.mls_welcome:
            mine = [bytes(s.new_member) for s in message.message.welcome.secrets
                    if bytes(s.new_member) in keys.key_packages]
            if not mine:
                return "ignored"
            if member is None or member.group is None or member.removed:
                member = self.new_member(client)
            member.key_packages[mine[0]] = keys.key_packages[mine[0]]
        elif member is None:
            return "ignored"
        try:
            outcome = member.receive(message)
        except Exception as exc:  # a bug, not bad input (MLS errors are outcomes): log it, keep serving
            log.exception("%s failed on a delivery for %s", client, room)
            outcome = f"error: {type(exc).__name__}: {exc}"
        if outcome == "joined":
            for ref in mine:
                if not is_last_resort(keys.key_packages[ref].key_package):  # a last-resort one serves again
                    keys.key_packages.pop(ref, None)
            self.save_keys(client, keys)
        elif outcome.startswith("error"):
            log.warning("%s could not process a delivery for %s: %s", client, room, outcome)
        now = int(time.time() * 1000)
        for entry in member.inbox:
            self.conn.execute(
                "INSERT INTO kit_received (client_uri, room_id, sender, epoch, data, received_at) VALUES (?, ?, ?, ?, ?, ?)",
                (client, room, entry.sender_identity.decode("utf-8", "replace"), entry.epoch, bytes(entry.data),
                 entry.timestamp or now),
            )
        member.inbox = []
        if member.group is not None:
            self.save_member(room, client, member)
        return outcome

    def received(self, client: str, *, room: str | None = None, after: int = 0, limit: int = 100) -> list[ReceivedMessage]:
        rows = self.conn.execute(
            "SELECT seq, room_id, sender, epoch, data, received_at FROM kit_received "
            "WHERE client_uri = ? AND seq > ? AND (? IS NULL OR room_id = ?) ORDER BY seq LIMIT ?",
            (client, after, room, room, limit),
        ).fetchall()
        return [ReceivedMessage(r[0], r[1], r[2], r[3], bytes(r[4]), r[5]) for r in rows]

    def all_clients(self) -> Iterable[str]:
        return sorted(self.keys)


__all__ = ["STORE_FILE", "KitClients", "ReceivedMessage"]
