"""Durable outbox for messages to other providers (fan-out, consent), with retries.

Writing
-------
:meth:`Outbox.enqueue` inserts a row on the store's connection. Called inside the
``store.transaction()`` of the state change that causes it, the message exists if and only if the
change committed. The worker is woken only after that commit.

Delivering
----------
:class:`OutboxWorker` sends through an injected ``async send(item) -> DeliveryResult``. Per
destination domain, only the oldest pending item is ever in flight, so each destination receives
its items in enqueue order; destinations proceed independently. An item is marked delivered only
after a 201 (§5.5: "If the hub server does not [receive] an HTTP 201 response code, then it SHOULD
retry the request, respecting ... Retry-After"). Anything else (another status, an exception from
``send``: network errors, timeouts) is retried after ``Retry-After`` when the peer gave one
(delta-seconds or HTTP-date), otherwise after an exponential backoff with jitter from a seeded RNG.
After ``max_attempts`` attempts (or ``max_age`` seconds) the item is marked ``failed`` with its last
status and error, and the destination moves on to its next item.

Delivery guarantee
------------------
At-least-once. The attempt counter is written before the send and ``delivered`` only after the
201, so a crash between the peer's 201 and our commit leaves the item pending: it is sent again on
restart (a new worker on the reopened store resumes every pending item). The receiving follower's
/notify dedup (same hub, byte-identical body: dedup.py) turns that into exactly-once processing end
to end, which is why a resent body must be byte-identical: the outbox stores the body, never
re-encodes it.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC

from ..overrides import NO_OVERRIDES, Overrides, step
from .store import Clock, Store

# The steps of the outbox's sending rules (reference_peer.overrides). Performed otherwise (variant
# notify-in-parallel), due /notify items go out without waiting for the answer to the previous one.
ONE_IN_FLIGHT = step(
    "outbox.send.one-in-flight", "PROTO-FANOUT-ORDERED",
    summary="per destination only the oldest pending item is in flight: the next is sent after the previous "
            "one's answer, in enqueue order")
DELIVERED_ONLY_ON_201 = step(
    "outbox.send.delivered-only-on-201", "PROTO-FANOUT-RETRY-NON-201", "PROTO-FANOUT-SUCCESS-IS-COMMITMENT",
    summary="an item is delivered only when its send is answered 201; any other answer, or none, is retried "
            "(-06 §5.5)")


def _carries_commit(body: bytes) -> bool:
    """Whether a /notify body carries a commit (sent in parallel, nothing goes after it to the same
    provider until it is delivered)."""
    from ..wire.mimi import FanoutMessage, Protocol
    from ..wire.mls import ContentType

    try:
        messages = FanoutMessage.decode_sequence(body, scope={"protocol": Protocol.mls10})
    except Exception:  # noqa: BLE001 - not a fan-out body: nothing to keep in order behind it
        return False
    return any(m.message.public_message is not None
               and m.message.public_message.content.content_type == ContentType.commit for m in messages)


@dataclass(frozen=True)
class OutboxItem:
    id: int
    destination: str
    endpoint: str  # directory name: "notify", "updateConsent", ...
    path_vars: Mapping[str, str]
    body: bytes
    idempotency_key: str
    attempts: int  # attempts made before this one


@dataclass(frozen=True)
class OutboxRecord:
    """An item and its delivery bookkeeping (for the control API and tests)."""

    item: OutboxItem
    state: str  # pending | delivered | failed
    attempts: int
    next_attempt_at: float
    last_status: int | None
    last_error: str | None


@dataclass(frozen=True)
class DeliveryResult:
    status: int | None  # None: no HTTP response (network error, timeout)
    retry_after: str | float | None = None  # the Retry-After header value, if any
    error: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    base_delay: float = 1.0
    max_delay: float = 300.0
    jitter: float = 0.5  # a delay d becomes uniform in [d * (1 - jitter), d]
    max_attempts: int = 12
    max_age: float | None = None  # seconds since enqueue after which the item is given up
    max_retry_after: float = 3600.0  # a larger Retry-After is capped
    attempt_timeout: float | None = 60.0  # an attempt still waiting after this long counts as a network error

    def backoff(self, attempts: int, rng: random.Random) -> float:
        """Delay after the ``attempts``-th failed attempt (1-based)."""
        delay = min(self.max_delay, self.base_delay * 2 ** (attempts - 1))
        return delay * (1 - self.jitter) + rng.random() * delay * self.jitter


def parse_retry_after(value: str | float | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date); None if absent or
    unparseable. The worker waits that long before the retry (PROTO-FANOUT-RETRY-AFTER-RESPECTED)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return max(0.0, float(value))
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


_COLUMNS = (
    "id, destination, endpoint, path_vars, body, idempotency_key, attempts, state, next_attempt_at, "
    "last_status, last_error"
)


def _record(row) -> OutboxRecord:
    rid, dest, endpoint, path_vars, body, key, attempts, state, next_at, last_status, last_error = row
    item = OutboxItem(rid, dest, endpoint, json.loads(path_vars), bytes(body), key, attempts)
    return OutboxRecord(item, state, attempts, next_at, last_status, last_error)


class Outbox:
    def __init__(self, store: Store, clock: Clock, *, overrides: Overrides = NO_OVERRIDES) -> None:
        self._store = store
        self._clock = clock
        self.overrides = overrides  # the provider's; its worker sends by them
        self._listeners: list[Callable[[], None]] = []

    def add_listener(self, callback: Callable[[], None]) -> None:
        """``callback`` runs after a transaction that enqueued something commits."""
        self._listeners.append(callback)

    def _notify(self) -> None:
        for callback in self._listeners:
            callback()

    def enqueue(
        self,
        destination: str,
        endpoint: str,
        body: bytes,
        *,
        path_vars: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Add an item (joining the caller's transaction, if any); an item with the same
        idempotency key is not added twice. Returns the item's id. Every /notify a hub sends is queued
        here, a new hub's fan-out of a room it took over included (EXT-HUBXFER-NEWHUB-SERVES: the
        follower's submitMessage is sequenced and delivered)."""
        key = idempotency_key or uuid.uuid4().hex
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO outbox (destination, endpoint, path_vars, body, idempotency_key, "
                "next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    destination.lower(),
                    endpoint,
                    json.dumps(dict(path_vars or {}), sort_keys=True),
                    bytes(body),
                    key,
                    self._clock(),
                    self._clock(),
                ),
            )
            row = conn.execute("SELECT id FROM outbox WHERE idempotency_key = ?", (key,)).fetchone()
        self._store.after_commit(self._notify)
        return int(row[0])

    def record(self, item_id: int) -> OutboxRecord:
        row = self._store.conn.execute(f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise KeyError(item_id)
        return _record(row)

    def records(self, state: str | None = None, destination: str | None = None) -> list[OutboxRecord]:
        rows = self._store.conn.execute(
            f"SELECT {_COLUMNS} FROM outbox "
            "WHERE (? IS NULL OR state = ?) AND (? IS NULL OR destination = ?) ORDER BY id",
            (state, state, destination, destination),
        ).fetchall()
        return [_record(r) for r in rows]

    def heads(self) -> list[OutboxRecord]:
        """The oldest pending item of each destination (the only ones that may be sent)."""
        rows = self._store.conn.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE id IN "
            "(SELECT MIN(id) FROM outbox WHERE state = 'pending' GROUP BY destination) ORDER BY id"
        ).fetchall()
        return [_record(r) for r in rows]

    def head(self, destination: str) -> OutboxRecord | None:
        row = self._store.conn.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE state = 'pending' AND destination = ? ORDER BY id LIMIT 1",
            (destination,),
        ).fetchone()
        return None if row is None else _record(row)

    def purge_finished(self, older_than: float) -> int:
        """Delete delivered and failed items finished more than ``older_than`` seconds ago."""
        with self._store.transaction() as conn:
            return conn.execute(
                "DELETE FROM outbox WHERE state != 'pending' AND finished_at < ?", (self._clock() - older_than,)
            ).rowcount

    # -- bookkeeping used by the worker -----------------------------------------------------------

    def _start_attempt(self, item_id: int) -> None:
        with self._store.transaction() as conn:
            conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", (item_id,))

    def _finish(self, item_id: int, state: str, status: int | None, error: str | None) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET state = ?, last_status = ?, last_error = ?, finished_at = ? WHERE id = ?",
                (state, status, error, self._clock(), item_id),
            )

    def _reschedule(self, item_id: int, at: float, status: int | None, error: str | None) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET next_attempt_at = ?, last_status = ?, last_error = ? WHERE id = ?",
                (at, status, error, item_id),
            )

    def _created_at(self, item_id: int) -> float:
        return float(self._store.conn.execute("SELECT created_at FROM outbox WHERE id = ?", (item_id,)).fetchone()[0])


Send = Callable[[OutboxItem], Awaitable[DeliveryResult]]
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class WorkerStats:
    attempts: int = 0
    delivered: int = 0
    failed: int = 0
    delays: list[float] = field(default_factory=list)  # every retry delay chosen, in order


class OutboxWorker:
    """Delivers an :class:`Outbox`. Run exactly one worker per store."""

    def __init__(
        self,
        outbox: Outbox,
        send: Send,
        *,
        policy: RetryPolicy | None = None,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        overrides: Overrides | None = None,
    ) -> None:
        self.outbox = outbox
        self.overrides = outbox.overrides if overrides is None else overrides
        self._send = send
        self.policy = policy or RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random(0)
        self._wake = asyncio.Event()
        self.stats = WorkerStats()
        self._in_flight: dict[int, asyncio.Task] = {}  # notify-in-parallel: items sent, answer not yet in
        self.serial_room: Callable[[str], bool] | None = None  # notify-in-parallel: rooms kept in order
        outbox.add_listener(self.wake)

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        """Send every due head-of-line item, each destination until its next item is not due or
        fails. Returns the number of attempts made."""
        if self.overrides.departs(ONE_IN_FLIGHT):
            return self._launch_parallel()
        now = self._clock()
        due = [rec.item.destination for rec in self.outbox.heads() if rec.next_attempt_at <= now]
        counts = await asyncio.gather(*(self._drain_destination(dest) for dest in due))
        return sum(counts)

    def _parallel_candidates(self) -> list[OutboxRecord]:
        """notify-in-parallel: the pending items not in flight that may be sent without waiting for the
        answer to an earlier one. Plain first attempts of /notify go out side by side; a barrier (another
        endpoint, a /notify carrying a commit, or one already tried and awaiting its retry) goes out only
        once every earlier item of its destination is delivered, and holds every later one until it is
        (so the proposals a commit references, and the commit, arrive in order: room-policy-04 §7)."""
        out: list[OutboxRecord] = []
        blocked: set[str] = set()
        earlier: set[str] = set()  # destinations with an earlier item still pending
        for rec in self.outbox.records("pending"):
            item = rec.item
            if item.destination in blocked:
                continue
            retrying = rec.attempts > (1 if item.id in self._in_flight else 0)  # a refused one, or its retry
            room = next(iter(item.path_vars.values()), "")
            barrier = (item.endpoint != "notify" or not self.overrides.departs(ONE_IN_FLIGHT) or retrying
                       or _carries_commit(item.body)
                       or (self.serial_room is not None and self.serial_room(room)))
            if barrier:
                blocked.add(item.destination)
                if item.destination in earlier:
                    continue  # waits for the earlier items' delivery
            if item.id not in self._in_flight:
                out.append(rec)
            earlier.add(item.destination)
        return out

    def _launch_parallel(self) -> int:
        """notify-in-parallel: start every due item in enqueue order, each without waiting for the answer
        to the previous one; a finished attempt wakes the worker (retries are rescheduled as usual)."""
        now = self._clock()
        launched = 0
        for rec in self._parallel_candidates():
            if rec.next_attempt_at > now:
                continue
            task = asyncio.ensure_future(self._attempt(rec.item))
            self._in_flight[rec.item.id] = task
            task.add_done_callback(lambda _t, item_id=rec.item.id: self._landed(item_id))
            launched += 1
        return launched

    def _landed(self, item_id: int) -> None:
        self._in_flight.pop(item_id, None)
        self.wake()

    async def _drain_destination(self, destination: str) -> int:
        """Send ``destination``'s due items, oldest first, until one is not due or fails. Every queued request
        leaves this way: the /notify fan-out and the consent requests and grants (PROTO-CONSENT-DIRECT,
        EXT-CONSENT-FIRST-GRANT-SENT)."""
        attempts = 0
        while True:
            rec = self.outbox.head(destination)
            if rec is None or rec.next_attempt_at > self._clock():
                return attempts
            attempts += 1
            if not await self._attempt(rec.item):
                return attempts

    async def _attempt(self, item: OutboxItem) -> bool:
        """One send; True if delivered. Bookkeeping before and after, never across the await."""
        self.outbox._start_attempt(item.id)
        self.stats.attempts += 1
        attempt_no = item.attempts + 1
        try:
            if self.policy.attempt_timeout is None:
                result = await self._send(item)
            else:
                result = await asyncio.wait_for(self._send(item), self.policy.attempt_timeout)
        except Exception as exc:  # any failure to get a response is retried like a non-201
            result = DeliveryResult(None, error=f"{type(exc).__name__}: {exc}")
        now = self._clock()
        if result.status == 201 or self.overrides.departs(DELIVERED_ONLY_ON_201):  # a fault's: any answer delivers
            self.outbox._finish(item.id, "delivered", 201, None)
            self.stats.delivered += 1
            return True
        error = result.error or f"HTTP {result.status}"
        too_old = self.policy.max_age is not None and now - self.outbox._created_at(item.id) >= self.policy.max_age
        if attempt_no >= self.policy.max_attempts or too_old:
            reason = f"gave up after {attempt_no} attempt(s): {error}"
            self.outbox._finish(item.id, "failed", result.status, reason)
            self.stats.failed += 1
            return False
        retry_after = parse_retry_after(result.retry_after, now)
        if retry_after is not None:
            delay = min(retry_after, self.policy.max_retry_after)
        else:
            delay = self.policy.backoff(attempt_no, self._rng)
        self.stats.delays.append(delay)
        self.outbox._reschedule(item.id, now + delay, result.status, error)
        return False

    def next_due_in(self) -> float | None:
        """Seconds until the earliest pending head is due (0 if overdue); None if nothing pending."""
        heads = self._parallel_candidates() if self.overrides.departs(ONE_IN_FLIGHT) else self.outbox.heads()
        if not heads:
            return None
        return max(0.0, min(rec.next_attempt_at for rec in heads) - self._clock())

    async def drain(self, *, max_rounds: int = 100_000) -> None:
        """Deliver or give up on everything pending, sleeping (injected sleep) between rounds."""
        for _ in range(max_rounds):
            await self.run_once()
            delay = self.next_due_in()
            if delay is None:
                return
            if delay > 0:
                await self._sleep(delay)
        raise RuntimeError(f"outbox not drained after {max_rounds} rounds")

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set: deliver what is due, then wait for the next due time or a
        new item, whichever comes first. Pending items of a previous run are resumed at once."""
        while not stop.is_set():
            self._wake.clear()
            await self.run_once()
            delay = self.next_due_in()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            if delay is not None:
                waiters.append(asyncio.ensure_future(self._sleep(delay)))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        for task in list(self._in_flight.values()):  # notify-in-parallel: attempts still waiting for an answer
            task.cancel()
