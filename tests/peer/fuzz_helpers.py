"""Helpers for the bad-input tests of the assembled reference peer (issue 4, items 4 and 6).

* :class:`FuzzWorld`: the in-process world of ``peer_world`` (a hub ``a.example`` and a follower
  ``b.example`` behind one mTLS MimiServer) on a loop in a background thread, so that synchronous
  hypothesis tests can drive it. Its setup runs a real exchange (room, join, message, external join,
  consent, key material) and records every request body the providers received: those are the valid
  bodies the fuzzer mutates.
* :func:`raw_exchange`: one HTTP/1.1 request over mutual TLS, written byte by byte, so that headers the
  usual clients refuse to send (duplicates, a Content-Length that lies) reach the server.
* :func:`state_snapshot`: everything observable of a provider (all its SQLite tables, its rooms and
  clients in memory), for the "a refused request changes nothing" check.
* :data:`STATS`: counts the terminal-summary hook in ``conftest.py`` prints.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import socket
import ssl
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from peer_world import poll, world

from reference_peer.server.endpoints import DIRECTORY_PATH, encode_segment
from reference_peer.server.transport import MimiRequest, ServerLimits

T = TypeVar("T")
A, B = "a.example", "b.example"

# Small enough that the oversized-body tests stay cheap, large enough for every real MIMI body here.
FUZZ_MAX_BODY_BYTES = 64 * 1024
# A body that never arrives (a Content-Length that lies upwards) is answered 408 after this long.
FUZZ_BODY_READ_TIMEOUT = 0.3


# -- counts for the terminal summary ------------------------------------------------------------


@dataclass
class EndpointStats:
    examples: int = 0
    statuses: collections.Counter = field(default_factory=collections.Counter)  # "2xx", "4xx", ...
    refusals: int = 0
    refusals_unchanged: int = 0


@dataclass
class Stats:
    fuzz: dict[str, EndpointStats] = field(default_factory=lambda: collections.defaultdict(EndpointStats))
    schemathesis: dict[str, collections.Counter] = field(default_factory=lambda: collections.defaultdict(collections.Counter))

    def lines(self) -> list[str]:
        out: list[str] = []
        if self.fuzz:
            total = EndpointStats()
            out.append("MIMI endpoint fuzzing (examples, statuses, refusals with unchanged state):")
            for name in sorted(self.fuzz):
                s = self.fuzz[name]
                total.examples += s.examples
                total.statuses.update(s.statuses)
                total.refusals += s.refusals
                total.refusals_unchanged += s.refusals_unchanged
                out.append(f"  {name:<24} {s.examples:>4} examples  {_classes(s.statuses)}  "
                           f"refusals {s.refusals_unchanged}/{s.refusals} unchanged")
            out.append(f"  {'total':<24} {total.examples:>4} examples  {_classes(total.statuses)}  "
                       f"refusals {total.refusals_unchanged}/{total.refusals} unchanged")
        if self.schemathesis:
            out.append("Control API schemathesis (requests per operation, statuses):")
            total_statuses: collections.Counter = collections.Counter()
            for op in sorted(self.schemathesis):
                statuses = self.schemathesis[op]
                total_statuses.update(statuses)
                detail = " ".join(f"{code}:{n}" for code, n in sorted(statuses.items()))
                out.append(f"  {op:<24} {sum(statuses.values()):>4} requests  {detail}")
            detail = " ".join(f"{code}:{n}" for code, n in sorted(total_statuses.items()))
            out.append(f"  {'total':<24} {sum(total_statuses.values()):>4} requests  {detail}")
        return out


def _classes(statuses: collections.Counter) -> str:
    return " ".join(f"{k}:{statuses.get(k, 0)}" for k in ("2xx", "4xx", "5xx", "none"))


STATS = Stats()


# -- one raw request over mutual TLS -----------------------------------------------------------


@dataclass(frozen=True)
class RawReply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def client_tls(files, ca_file) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file))
    context.load_cert_chain(str(files.cert), str(files.key))
    return context


def request_bytes(method: str, target: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def raw_exchange(
    port: int, server_name: str, context: ssl.SSLContext, head: bytes, body: bytes = b"", *, timeout: float = 10.0
) -> RawReply | None:
    """Send ``head`` then ``body`` on a fresh TLS connection (SNI ``server_name``) and read one answer.
    None when the connection ends without an HTTP status line (which the tests count as a crash)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            with contextlib.suppress(OSError):  # the server may answer (413) and close before we finish
                tls.sendall(head + body)
            data = bytearray()
            with contextlib.suppress(OSError):
                while chunk := tls.recv(65536):
                    data += chunk
                    reply = _parse_reply(bytes(data))
                    if reply is not None:
                        return reply
    return _parse_reply(bytes(data), complete=True)


def _parse_reply(data: bytes, *, complete: bool = False) -> RawReply | None:
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return None
    headers = [(k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    declared = next((v for k, v in headers if k == "content-length"), None)
    if declared is not None and declared.isdigit():
        if len(rest) < int(declared):
            return None if not complete else RawReply(int(parts[1]), headers, rest)
        rest = rest[: int(declared)]
    elif not complete:
        return None  # no length: the body ends with the connection
    return RawReply(int(parts[1]), headers, rest)


def endpoint_path(endpoint: str | None, value: str = "") -> str:
    return DIRECTORY_PATH if endpoint is None else f"/v1/{endpoint}/{encode_segment(value)}"


# -- observable state --------------------------------------------------------------------------


def state_snapshot(provider) -> dict[str, Any]:
    """Every row of every table of the provider's store, and its rooms and clients in memory.
    Run on the world's loop (the SQLite connection belongs to that thread)."""
    conn = provider.state.store.conn
    tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    snapshot: dict[str, Any] = {
        f"table {name}": sorted((tuple(row) for row in conn.execute(f'SELECT * FROM "{name}"')), key=repr)
        for name in tables
    }
    for room_id, room in provider.hub_rooms.items():
        snapshot[f"hub room {room_id}"] = {
            "epoch": room.epoch,
            "participants": repr(room.participant_list()),
            "pending": [(p.ref, p.message, p.required) for p in room.pending],
            "kp_providers": dict(room.kp_providers),
            "removed_users": set(room.removed_users),
            "provider_senders": sorted(room.provider_senders),
        }
    snapshot["members"] = {
        key: (m.group.epoch if m.group is not None else None, m.removed) for key, m in provider.members.items()
    }
    snapshot["client key packages"] = {uri: set(keys.key_packages) for uri, keys in provider.client_keys.items()}
    return snapshot


def describe_difference(before: dict[str, Any], after: dict[str, Any], where: str = "") -> str:
    """The differing leaves of two (nested) snapshots, briefly."""
    out = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            out.append(describe_difference(old, new, f"{where}{key} / "))
        else:
            out.append(f"{where}{key}: {old!r:.400} -> {new!r:.400}")
    return "; ".join(out)


# -- the world, on a background loop -----------------------------------------------------------


@dataclass(frozen=True)
class Captured:
    endpoint: str
    value: str
    peer_domain: str
    body: bytes


class FuzzWorld:
    """``peer_world.world(pki, (A, B))`` served from a background thread, with the bodies of a real
    exchange captured per endpoint and the outbox workers stopped afterwards (so that between two
    requests nothing but the requests themselves can change the providers' state)."""

    def __init__(self, pki) -> None:
        self.pki = pki
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-world", daemon=True)
        self.stack = contextlib.AsyncExitStack()
        self.captured: dict[str, list[Captured]] = collections.defaultdict(list)
        self.facts: dict[str, str] = {}
        self.fresh: dict[str, list[bytes]] = {}  # valid current-epoch bodies, per endpoint
        self.contexts = {d: client_tls(pki.providers[d], pki.ca_cert) for d in (A, B)}

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> FuzzWorld:
        self.thread.start()
        self.run(self._start(), timeout=120)
        return self

    def close(self) -> None:
        try:
            self.run(self.stack.aclose())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    async def _start(self) -> None:
        self.w = await self.stack.enter_async_context(world(self.pki, (A, B)))
        # The configured limits of this world (read per request by the transport).
        self.w.server.limits = ServerLimits(max_body_bytes=FUZZ_MAX_BODY_BYTES, body_read_timeout=FUZZ_BODY_READ_TIMEOUT)
        self.port = self.w.server.port
        originals = {}
        for domain, provider in self.w.providers.items():
            for endpoint in provider.transport.registered:
                handler = provider.transport.handler(endpoint)
                originals[(domain, endpoint)] = handler
                provider.transport.register(endpoint, self._recording(handler))
        try:
            await self._exchange()
        finally:
            for (domain, endpoint), handler in originals.items():
                self.w.providers[domain].transport.register(endpoint, handler)
        for provider in self.w.providers.values():
            await _stop_outbox_worker(provider)

    def _recording(self, handler):
        async def record(request: MimiRequest):
            self.captured[request.endpoint].append(Captured(request.endpoint, request.value, request.peer_domain, request.body))
            return await handler(request)

        return record

    async def _exchange(self) -> None:
        """A real exchange touching every endpoint a backend drives (the others are built in the tests)."""
        ca, cb = self.w.backends[A], self.w.backends[B]
        alice = await ca.createUser({"user": "alice"})
        amy = await ca.createUser({"user": "amy"})
        bob = await cb.createUser({"user": "bob"})
        room = (await ca.createRoom({"creator": alice["user"], "room": "fuzzroom"}))["room"]
        bob_c = bob["clients"][0]
        # bob as an admin (role 3), so that a follower's client can commit an add.
        assert (await ca.addParticipant(room, {"actor": alice["user"], "user": bob["user"], "role": 3}))["outcome"] == "accepted"
        await poll(lambda: _joined(self.w.providers[B], room, bob_c), what="bob joined")
        assert (await cb.sendMessage(room, {"from": bob_c, "content": {"text": "hello"}}))["outcome"] == "accepted"
        # keyMaterial b -> a for a user of the hub, then the commit adding her (update b -> a).
        assert (await cb.addParticipant(room, {"actor": bob_c, "user": amy["user"]}))["outcome"] == "accepted"
        # groupInfo and an external commit (update) from b.example.
        tablet = await cb.addClient(bob["user"], {"client": "tablet"})
        assert tablet["rooms"][0]["outcome"] == "accepted", tablet
        await cb.requestConsent(bob["user"], {"target": alice["user"]})
        await poll(lambda: _outbox_settled(self.w), what="b's requestConsent delivered")
        await ca.grantConsent(alice["user"], {"requester": bob["user"]})
        await poll(lambda: _outbox_settled(self.w), what="every outbox drained")
        self.facts.update(room=room, alice=alice["user"], amy=amy["user"], bob=bob["user"], bob_client=bob_c)
        # Valid bodies of the room's current epoch, made by copies of bob's client and never sent: the
        # captured ones are for past epochs (refused early), mutations of these reach the deeper checks.
        bob_member = self.w.providers[B].active_member(room, bob_c)
        self.fresh["update"] = [
            copy.deepcopy(bob_member).self_leave_request(),
            copy.deepcopy(bob_member).remove_user(amy["user"].encode()).request,
        ]
        self.fresh["submitMessage"] = [copy.deepcopy(bob_member).send(b"fresh")]

    def snapshot(self) -> dict[str, Any]:
        async def take():
            return {domain: state_snapshot(p) for domain, p in self.w.providers.items()}

        return self.run(take())

    def request(
        self, sender: str, target_domain: str, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> RawReply | None:
        head = request_bytes(method, path, headers)
        return raw_exchange(self.port, target_domain, self.contexts[sender], head, body)

    def standard_headers(self, sender: str, target_domain: str, body: bytes, *, method: str = "POST") -> list[tuple[str, str]]:
        headers = [("Host", f"{target_domain}:{self.port}"), ("From", f"mimi@{sender}")]
        if method != "GET":
            headers += [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))]
        return [*headers, ("Connection", "close")]

    def alive(self) -> bool:
        """The server still answers a well-formed request (the directory) from each peer."""
        for sender, target in ((B, A), (A, B)):
            reply = self.request(sender, target, "GET", DIRECTORY_PATH, self.standard_headers(sender, target, b"", method="GET"), b"")
            if reply is None or reply.status != 200:
                return False
        return True


async def _stop_outbox_worker(provider) -> None:
    # The outbox worker is the only background writer; stopped, two snapshots differ only by requests.
    if provider._worker_task is not None:  # noqa: SLF001 - the provider has no public pause
        provider._worker_stop.set()  # noqa: SLF001
        await asyncio.wait_for(provider._worker_task, 10)  # noqa: SLF001
        provider._worker_task = None  # noqa: SLF001


async def _joined(provider, room: str, client: str) -> bool:
    return provider.active_member(room, client) is not None


async def _outbox_settled(w) -> bool:
    return all(not p.state.outbox.records(state="pending") for p in w.providers.values())
