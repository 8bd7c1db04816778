"""Durable outbox and its delivery worker: retries, Retry-After, order, give-up, crash resume.
The clock and sleep are fake: no test waits in real time."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from provider_helpers import T0, FakeClock

from reference_peer.provider.dedup import NotifyDedup
from reference_peer.provider.outbox import (
    DeliveryResult,
    Outbox,
    OutboxItem,
    OutboxWorker,
    RetryPolicy,
    parse_retry_after,
)
from reference_peer.provider.store import Store


class FakePeers:
    """Answers per destination from a script (default 201) and logs every send with its time."""

    def __init__(self, clock: FakeClock, script: dict[str, list] | None = None) -> None:
        self.clock = clock
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.log: list[tuple[float, str, bytes]] = []

    async def send(self, item: OutboxItem) -> DeliveryResult:
        self.log.append((self.clock(), item.destination, item.body))
        answers = self.script.get(item.destination)
        answer = answers.pop(0) if answers else 201
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, tuple):
            return DeliveryResult(answer[0], retry_after=answer[1])
        return DeliveryResult(answer)

    def bodies(self, destination: str) -> list[bytes]:
        return [body for _, dest, body in self.log if dest == destination]


def setup(script=None, policy=None, store=None, seed=7):
    clock = FakeClock()
    store = store or Store.memory()
    outbox = Outbox(store, clock)
    peers = FakePeers(clock, script)
    worker = OutboxWorker(outbox, peers.send, policy=policy, clock=clock, sleep=clock.sleep, rng=random.Random(seed))
    return clock, outbox, peers, worker


def test_delivered_only_after_201_and_in_order_per_destination():
    clock, outbox, peers, worker = setup({"b.example": [500, 503]})
    for n in range(3):
        outbox.enqueue("b.example", "notify", b"b%d" % n, path_vars={"roomId": "r"})
        outbox.enqueue("c.example", "notify", b"c%d" % n)
    asyncio.run(worker.drain())
    assert peers.bodies("b.example") == [b"b0", b"b0", b"b0", b"b1", b"b2"]  # b1 waited for b0
    assert peers.bodies("c.example") == [b"c0", b"c1", b"c2"]  # not held up by b.example
    assert all(r.state == "delivered" and r.last_status == 201 for r in outbox.records())
    # c.example finished before b.example's first retry was due.
    c_done = max(t for t, d, _ in peers.log if d == "c.example")
    b_retry = [t for t, d, _ in peers.log if d == "b.example"][1]
    assert c_done < b_retry


@pytest.mark.parametrize("status", [200, 202, 204, 400, 404, 429, 500])
def test_any_status_other_than_201_is_retried(status):
    clock, outbox, peers, worker = setup({"b.example": [status]})
    item = outbox.enqueue("b.example", "notify", b"x")
    asyncio.run(worker.run_once())
    assert outbox.record(item).state == "pending"
    assert outbox.record(item).last_status == status
    asyncio.run(worker.drain())
    assert outbox.record(item).state == "delivered"
    assert len(peers.log) == 2


def test_network_errors_are_retried():
    clock, outbox, peers, worker = setup({"b.example": [ConnectionResetError("reset"), TimeoutError()]})
    item = outbox.enqueue("b.example", "notify", b"x")
    asyncio.run(worker.drain())
    record = outbox.record(item)
    assert record.state == "delivered" and record.attempts == 3


def test_exponential_backoff_with_seeded_jitter():
    policy = RetryPolicy(base_delay=2.0, max_delay=20.0, jitter=0.5, max_attempts=10)
    clock, outbox, peers, worker = setup({"b.example": [500] * 6}, policy=policy)
    outbox.enqueue("b.example", "notify", b"x")
    asyncio.run(worker.drain())
    delays = worker.stats.delays
    nominal = [2.0, 4.0, 8.0, 16.0, 20.0, 20.0]
    assert len(delays) == 6
    for delay, d in zip(delays, nominal, strict=True):
        assert d * 0.5 <= delay <= d
    send_times = [t for t, _, _ in peers.log]
    gaps = [b - a for a, b in zip(send_times, send_times[1:], strict=False)]
    assert gaps == pytest.approx(delays, abs=1e-5)  # the clock is ~1.8e9 s: float resolution ~1e-7
    # Same seed, same delays; another seed, other delays.
    _, outbox2, _, worker2 = setup({"b.example": [500] * 6}, policy=policy)
    outbox2.enqueue("b.example", "notify", b"x")
    asyncio.run(worker2.drain())
    assert worker2.stats.delays == delays
    _, outbox3, _, worker3 = setup({"b.example": [500] * 6}, policy=policy, seed=8)
    outbox3.enqueue("b.example", "notify", b"x")
    asyncio.run(worker3.drain())
    assert worker3.stats.delays != delays


def test_retry_after_seconds_is_honoured():
    clock, outbox, peers, worker = setup({"b.example": [(503, "120")]})
    outbox.enqueue("b.example", "notify", b"x")
    asyncio.run(worker.drain())
    (t1, _, _), (t2, _, _) = peers.log
    assert t2 - t1 == 120


def test_retry_after_http_date_is_honoured():
    when = datetime.fromtimestamp(T0 + 300, tz=UTC)  # setup()'s clock starts at T0
    clock, outbox, peers, worker = setup({"b.example": [(429, format_datetime(when, usegmt=True))]})
    outbox.enqueue("b.example", "notify", b"x")
    asyncio.run(worker.drain())
    (t1, _, _), (t2, _, _) = peers.log
    assert t2 - t1 == 300


def test_parse_retry_after():
    assert parse_retry_after("7", 0) == 7
    assert parse_retry_after(3.5, 0) == 3.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 - 60) == 60
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 + 60) == 0  # in the past: now
    assert parse_retry_after("soon", 0) is None
    assert parse_retry_after(None, 0) is None


def test_huge_retry_after_is_capped():
    policy = RetryPolicy(max_retry_after=60)
    clock, outbox, peers, worker = setup({"b.example": [(503, "86400")]}, policy=policy)
    outbox.enqueue("b.example", "notify", b"x")
    asyncio.run(worker.drain())
    assert peers.log[1][0] - peers.log[0][0] == 60


def test_gives_up_after_the_bound_records_it_and_moves_on():
    policy = RetryPolicy(max_attempts=3)
    clock, outbox, peers, worker = setup({"b.example": [500, 502, 503]}, policy=policy)
    first = outbox.enqueue("b.example", "notify", b"first")
    second = outbox.enqueue("b.example", "notify", b"second")
    asyncio.run(worker.drain())
    failed = outbox.record(first)
    assert (failed.state, failed.attempts, failed.last_status) == ("failed", 3, 503)
    assert "gave up after 3 attempt(s)" in failed.last_error
    assert outbox.record(second).state == "delivered"
    assert peers.bodies("b.example") == [b"first"] * 3 + [b"second"]


def test_gives_up_after_max_age():
    policy = RetryPolicy(base_delay=10, jitter=0, max_attempts=100, max_age=25)
    clock, outbox, peers, worker = setup({"b.example": [500] * 100}, policy=policy)
    item = outbox.enqueue("b.example", "notify", b"x")
    asyncio.run(worker.drain())
    assert outbox.record(item).state == "failed"
    assert [t - peers.log[0][0] for t, _, _ in peers.log] == [0, 10, 30]  # 30 >= 25: give up


def test_enqueue_joins_the_callers_transaction_and_is_idempotent():
    store = Store.memory()
    clock, outbox, peers, worker = setup(store=store)
    with pytest.raises(RuntimeError), store.transaction():
        outbox.enqueue("b.example", "notify", b"lost")
        raise RuntimeError("state change failed")
    assert outbox.records() == []
    a = outbox.enqueue("b.example", "notify", b"x", idempotency_key="k1")
    b = outbox.enqueue("b.example", "notify", b"x", idempotency_key="k1")
    assert a == b and len(outbox.records()) == 1


def test_crash_between_send_and_mark_resends_after_restart_and_dedup_makes_it_once(tmp_path):
    path = tmp_path / "hub.sqlite"
    clock = FakeClock()
    follower = NotifyDedup(Store.memory(), clock)
    processed: list[bytes] = []
    crash_now = asyncio.Event()

    async def send_then_crash(item: OutboxItem) -> DeliveryResult:
        if follower.record_if_new("hub.example", item.body):
            processed.append(item.body)
        if item.body == b"m2":
            crash_now.set()
            await asyncio.Event().wait()  # the process dies before it reads the 201
        return DeliveryResult(201)

    async def first_life() -> None:
        store = Store.open(path)
        outbox = Outbox(store, clock)
        for n in range(1, 4):
            outbox.enqueue("b.example", "notify", b"m%d" % n)
        worker = OutboxWorker(outbox, send_then_crash, clock=clock, sleep=clock.sleep)
        task = asyncio.ensure_future(worker.drain())
        await crash_now.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        store.close()

    asyncio.run(first_life())
    store = Store.open(path)
    outbox = Outbox(store, clock)
    states = [(r.item.body, r.state) for r in outbox.records()]
    assert states == [(b"m1", "delivered"), (b"m2", "pending"), (b"m3", "pending")]  # no 201 seen for m2

    resent: list[bytes] = []

    async def send_after_restart(item: OutboxItem) -> DeliveryResult:
        resent.append(item.body)
        if follower.record_if_new("hub.example", item.body):
            processed.append(item.body)
        return DeliveryResult(201)

    asyncio.run(OutboxWorker(outbox, send_after_restart, clock=clock, sleep=clock.sleep).drain())
    assert resent == [b"m2", b"m3"]  # at-least-once: m2 is sent again, byte-identical
    assert processed == [b"m1", b"m2", b"m3"]  # exactly-once at the follower thanks to dedup
    assert all(r.state == "delivered" for r in outbox.records())
    assert outbox.records()[1].attempts == 2
    store.close()


def test_run_loop_wakes_on_commit_and_stops():
    store = Store.memory()
    clock, outbox, peers, worker = setup({"b.example": [500]}, store=store)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.ensure_future(worker.run(stop))
        await asyncio.sleep(0)
        with store.transaction():
            outbox.enqueue("b.example", "notify", b"x")
            for _ in range(5):
                await asyncio.sleep(0)
            assert peers.log == []  # not woken before the commit
        for _ in range(200):
            if outbox.records(state="delivered"):
                break
            await asyncio.sleep(0)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert [r.state for r in outbox.records()] == ["delivered"]
    assert len(peers.log) == 2


def test_purge_finished_keeps_pending_and_recent_items():
    clock, outbox, peers, worker = setup({"c.example": [500]})
    old = outbox.enqueue("b.example", "notify", b"old")
    asyncio.run(worker.run_once())
    clock.advance(100)
    recent = outbox.enqueue("b.example", "notify", b"recent")
    pending = outbox.enqueue("c.example", "notify", b"pending")
    asyncio.run(worker.run_once())
    assert outbox.purge_finished(older_than=50) == 1
    assert [r.item.id for r in outbox.records()] == [recent, pending]
    assert old not in [r.item.id for r in outbox.records()]


def test_an_attempt_that_never_answers_times_out_and_is_retried():
    clock = FakeClock()
    outbox = Outbox(Store.memory(), clock)
    calls = []

    async def hang_then_answer(item: OutboxItem) -> DeliveryResult:
        calls.append(item.id)
        if len(calls) == 1:
            await asyncio.Event().wait()
        return DeliveryResult(201)

    policy = RetryPolicy(attempt_timeout=0.01)  # real loop time: wait_for cannot use the fake clock
    worker = OutboxWorker(outbox, hang_then_answer, policy=policy, clock=clock, sleep=clock.sleep)
    item = outbox.enqueue("b.example", "notify", b"x")
    asyncio.run(worker.drain())
    record = outbox.record(item)
    assert (record.state, record.attempts) == ("delivered", 2)
