"""Reference peer benchmark: one hub and three followers on loopback, submitMessage -> /notify fan-out.

Figures, not pass/fail (``make bench``). The goal of issue 4: the hub within 3x of a bare HTTPS echo
on the same server stack, measured in the same run.

Set-up (not timed): four :class:`ReferenceProvider` (hub ``a.example``, followers ``b/c/d.example``)
behind one :class:`MimiServer` on 127.0.0.1 with a throw-away test PKI and in-memory SQLite, as
``tests/peer/peer_world.py`` builds them; ``--clients`` users (one client each) spread round-robin
over the four providers, all in one room hosted by the hub, created and joined through the control
backend (real keyMaterial, commits and Welcomes over mutual TLS).

Workloads, each sending ``--messages`` bodies with ``--concurrency`` calls in flight:

* ``hub``: pre-built application messages (SubmitMessageRequests; the MLS encryption is done before
  the clock starts and reported apart) POSTed to the hub's /submitMessage over mTLS by the sending
  client's provider (its own :class:`MimiClient`, the hub's own clients included), senders taken
  round-robin over the providers. The hub checks, persists and queues the fan-out (outbox), its own
  clients decrypt in the request, and the outbox worker delivers one /notify per follower, where the
  follower's clients decrypt and store the message. End-to-end latency: from the start of the submit
  call to the moment the *last* follower's /notify handler has finished processing the message.
* ``echo x3``: the same bodies to a bare echo hub on a second :class:`MimiServer` (same stack: mTLS,
  the §4.1 checks, the same :class:`MimiClient`): its handler POSTs the body to the three followers'
  /notify (trivial 201 handlers), concurrently, then answers with the body. The same four HTTPS hops
  per message and the same end-to-end measurement.
* ``echo x1``: the same echo hub answering with the body, no fan-out: one HTTPS round trip.
* ``hub paced`` and ``echo x3 paced`` (``--paced`` messages): one message at a time, the next sent
  once the previous one reached every follower: the latency of a message with nothing queued.

Under load the hub answers a submit once the message is durably accepted (outbox) and fans out
afterwards, one /notify in flight per follower (per-destination order), whereas the echo fans out
inside the request: when submits arrive faster than the fan-out drains, the hub's messages queue in
its outbox and the loaded latency measures that queue (it grows with ``--messages``); the paced
workloads give the latency without it. Columns: messages/s (first submit start to last delivery),
end-to-end p50/p99, p50 of the submit call alone (ack), process CPU per message (all providers and
clients in this process: the loop is CPU-bound, so this is where a message's cost shows), and the
TLS handshakes the servers made during the workload (0: every connection was reused).

Each round runs every workload once (after a warm-up round; an untimed pre-roll re-opens pooled
connections before each world's runs); figures are medians over ``--rounds``. The ratios hub/echo x3 are
the figure of the goal (throughput as echo/hub, so that every ratio reads "times slower"). Everything
runs on one event loop in this process (one CPU does every provider's work).

    .venv/bin/python benchmarks/bench_peer.py [--messages 200] [--clients 8] [--concurrency 8] [--rounds 3]

``--profile FILE`` runs the hub workload once more under cProfile and writes the statistics to FILE
(``python -m pstats FILE``). The exit status is 0 unless a workload fails (a message not delivered
to every follower within ``--deadline`` seconds, or a refused submit).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reference_peer.control.backend import ReferenceBackend  # noqa: E402
from reference_peer.peer import PeerBook, ProviderOptions, ReferenceProvider  # noqa: E402
from reference_peer.pki import write_test_pki  # noqa: E402
from reference_peer.provider.outbox import RetryPolicy  # noqa: E402
from reference_peer.server.client import MimiClient  # noqa: E402
from reference_peer.server.transport import MimiRequest, MimiResponse, MimiServer, Provider  # noqa: E402
from reference_peer.wire.mimi import (  # noqa: E402
    FanoutMessage,
    Protocol,
    SubmitMessageRequest,
    SubmitMessageResponse,
    SubmitResponseCode,
)

HUB = "a.example"
FOLLOWERS = ("b.example", "c.example", "d.example")
DOMAINS = (HUB, *FOLLOWERS)
MLS10 = {"protocol": Protocol.mls10}
RETRY = RetryPolicy(base_delay=0.05, max_delay=0.5, jitter=0.0, max_attempts=10_000)


class WorkloadFailed(Exception):
    pass


@dataclass
class RoundResult:
    workload: str
    messages: int
    elapsed: float  # first submit start -> last message fully delivered
    latencies: list[float]  # end to end, seconds
    acks: list[float]  # submit call round trip, seconds
    cpu: float = 0.0  # process CPU seconds per message (every provider's work, this process)
    handshakes: int = 0  # TLS handshakes the server(s) made during the workload (0: every connection reused)

    @property
    def rate(self) -> float:
        return self.messages / self.elapsed

    def pct(self, q: float, values: list[float] | None = None) -> float:
        data = sorted(self.latencies if values is None else values)
        return data[min(len(data) - 1, max(0, round(q * (len(data) - 1))))]


class HandshakeCounter:
    """Counts the TLS handshakes a :class:`MimiServer` makes: wraps its SNI callback (every peer sends
    SNI), so that the workloads show whether connections are reused."""

    def __init__(self) -> None:
        self.count = 0

    def attach(self, server: MimiServer) -> None:
        select = server._select_certificate  # noqa: SLF001 - instrumentation, before start()

        def counted(ssl_obj, server_name, ctx):
            self.count += 1
            return select(ssl_obj, server_name, ctx)

        server._select_certificate = counted  # noqa: SLF001


HANDSHAKES = HandshakeCounter()


@dataclass
class Recorder:
    """Timestamps taken where a follower's /notify handler finishes (a wrapper around the registered
    handler, not a change to it): (perf_counter, domain, body). Decoding happens after the run."""

    expected_calls: int = 0
    seen: list[tuple[float, str, bytes]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    waiters: list[tuple[int, asyncio.Future]] = field(default_factory=list)

    def reset(self, expected_calls: int) -> None:
        self.expected_calls = expected_calls
        self.seen = []
        self.done = asyncio.Event()
        self.waiters = []

    async def reached(self, calls: int, timeout: float) -> None:
        """Wait until ``calls`` /notify have been recorded (the paced workloads)."""
        if len(self.seen) >= calls:
            return
        future = asyncio.get_running_loop().create_future()
        self.waiters.append((calls, future))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(future, timeout)

    def wrap(self, domain: str, handler: Callable[[MimiRequest], Awaitable[MimiResponse]]):
        async def recorded(request: MimiRequest) -> MimiResponse:
            response = await handler(request)
            if response.status == 201:
                self.seen.append((time.perf_counter(), domain, request.body))
                if len(self.seen) >= self.expected_calls:
                    self.done.set()
                for calls, future in self.waiters:
                    if len(self.seen) >= calls and not future.done():
                        future.set_result(None)
            return response

        return recorded


# -- set-up ------------------------------------------------------------------------------------------


@dataclass
class HubWorld:
    providers: dict[str, ReferenceProvider]
    server: MimiServer
    room: str
    clients: list[tuple[str, str]]  # (domain, client URI), in round-robin-over-providers order
    recorder: Recorder


async def build_hub_world(pki, n_clients: int) -> HubWorld:
    peers = PeerBook()
    providers = {
        d: ReferenceProvider(
            ProviderOptions(
                d, pki.providers[d].cert, pki.providers[d].key, pki.ca_cert, peers=peers,
                resolve={x: "127.0.0.1" for x in DOMAINS}, retry=RETRY,
            )
        )
        for d in DOMAINS
    }
    recorder = Recorder()
    for d in FOLLOWERS:
        transport = providers[d].transport
        transport.register("notify", recorder.wrap(d, transport.handler("notify")))
    server = MimiServer([p.transport for p in providers.values()], pki.ca_cert)
    HANDSHAKES.attach(server)
    await server.start()
    for d in DOMAINS:
        peers.set(d, server.authority(d))
    for p in providers.values():
        await p.start()
    backends = {d: ReferenceBackend(p) for d, p in providers.items()}
    users: list[tuple[str, str, str]] = []  # (domain, user, client)
    for i in range(n_clients):
        domain = DOMAINS[i % len(DOMAINS)]
        created = await backends[domain].createUser({"user": f"u{i}"})
        users.append((domain, created["user"], created["clients"][0]))
    creator = users[0]
    room = (await backends[HUB].createRoom({"creator": creator[1], "room": "bench"}))["room"]
    for _domain, user, _ in users[1:]:
        added = await backends[HUB].addParticipant(room, {"actor": creator[1], "user": user})
        if added.get("outcome") != "accepted":
            raise WorkloadFailed(f"set-up: adding {user} to {room} failed: {added}")
    epoch = providers[HUB].active_member(room, creator[2]).epoch
    await _wait(
        lambda: all(
            (m := providers[d].active_member(room, c)) is not None and m.epoch == epoch for d, _, c in users
        ) and not providers[HUB].state.outbox.records(state="pending"),
        30.0, "set-up: every client joined and the hub's outbox drained",
    )
    return HubWorld(providers, server, room, [(d, c) for d, _, c in users], recorder)


async def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise WorkloadFailed(f"timed out after {timeout}s: {what}")
        await asyncio.sleep(0.01)


async def stop_hub_world(w: HubWorld) -> None:
    await w.server.stop()
    for p in w.providers.values():
        await p.stop()


@dataclass
class EchoWorld:
    server: MimiServer
    clients: dict[str, MimiClient]
    recorder: Recorder


async def build_echo_world(pki) -> EchoWorld:
    transports = {d: Provider(d, pki.providers[d].cert, pki.providers[d].key) for d in DOMAINS}
    clients = {
        d: MimiClient(d, pki.providers[d].cert, pki.providers[d].key, pki.ca_cert,
                      resolve={x: "127.0.0.1" for x in DOMAINS})
        for d in DOMAINS
    }
    recorder = Recorder()
    server = MimiServer(list(transports.values()), pki.ca_cert)
    HANDSHAKES.attach(server)

    async def sink(request: MimiRequest) -> MimiResponse:
        return MimiResponse(status=201)

    async def echo_fanout(request: MimiRequest) -> MimiResponse:
        replies = await asyncio.gather(
            *(clients[HUB].call(server.authority(d), "notify", request.value, request.body) for d in FOLLOWERS)
        )
        if any(r.status != 201 for r in replies):
            return MimiResponse(status=502)
        return MimiResponse(request.body)

    async def echo(request: MimiRequest) -> MimiResponse:
        return MimiResponse(request.body)

    transports[HUB].register("submitMessage", echo_fanout)
    transports[HUB].register("update", echo)
    for d in FOLLOWERS:
        transports[d].register("notify", recorder.wrap(d, sink))
    await server.start()
    return EchoWorld(server, clients, recorder)


async def stop_echo_world(w: EchoWorld) -> None:
    await w.server.stop()
    for c in w.clients.values():
        await c.aclose()


# -- messages ----------------------------------------------------------------------------------------


@dataclass
class Batch:
    bodies: list[tuple[str, bytes]]  # (sending domain, SubmitMessageRequest body)
    keys: dict[bytes, int]  # encoded MLSMessage -> index
    protect_seconds: float  # MLS encryption + encoding, per message (excluded from the timing)


def prebuild(w: HubWorld, count: int, size: int, tag: str) -> Batch:
    bodies, keys = [], {}
    touched = set()
    start = time.perf_counter()
    for i in range(count):
        domain, client = w.clients[i % len(w.clients)]
        provider = w.providers[domain]
        member = provider.active_member(w.room, client)
        text = f"{tag} {i:06d} ".encode().ljust(size, b".")
        bodies.append((domain, member.send(text)))
        touched.add((domain, client))
    protect = (time.perf_counter() - start) / count
    for domain, client in touched:  # as sendMessage does (the sender remembers what it sent)
        provider = w.providers[domain]
        provider.save_member(w.room, client, provider.active_member(w.room, client))
    for i, (_, body) in enumerate(bodies):
        keys[SubmitMessageRequest.decode(body).appMessage.encode()] = i
    return Batch(bodies, keys, protect)


# -- workloads ---------------------------------------------------------------------------------------


async def drive(
    count: int, concurrency: int, call: Callable[[int], Awaitable[None]]
) -> tuple[float, list[float], list[float]]:
    """``call(i)`` for i in range(count), ``concurrency`` at a time. Returns (t0, starts, ack times)."""
    starts = [0.0] * count
    acks = [0.0] * count
    position = 0

    async def worker() -> None:
        nonlocal position
        while position < count:
            i = position
            position += 1
            starts[i] = time.perf_counter()
            await call(i)
            acks[i] = time.perf_counter()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return t0, starts, acks


async def collect(recorder: Recorder, deadline: float, index_of: Callable[[bytes], list[int]], count: int, what: str):
    """Per message, the time the last follower finished processing it; WorkloadFailed if some never arrive."""
    until = time.monotonic() + deadline
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(recorder.done.wait(), max(0.0, until - time.monotonic()))
        last: dict[int, float] = {}
        got: dict[int, set[str]] = {}
        for t, domain, body in recorder.seen:
            for i in index_of(body):
                got.setdefault(i, set()).add(domain)
                last[i] = max(last.get(i, 0.0), t)
        missing = [i for i in range(count) if len(got.get(i, ())) < len(FOLLOWERS)]
        if not missing:
            return [last[i] for i in range(count)]
        if time.monotonic() > until:
            detail = ", ".join(f"#{i} (at {sorted(got.get(i, ()))})" for i in missing[:10])
            raise WorkloadFailed(
                f"{what}: {len(missing)} of {count} messages not processed by every follower within {deadline}s: "
                f"{detail}{' ...' if len(missing) > 10 else ''}"
            )
        recorder.done.clear()
        await asyncio.sleep(0.05)


async def run_hub(w: HubWorld, batch: Batch, concurrency: int, deadline: float, *, paced: bool = False) -> RoundResult:
    """``paced``: one message at a time, the next sent once the previous one reached every follower."""
    count = len(batch.bodies)
    w.recorder.reset(count * len(FOLLOWERS))
    hub = w.server.authority(HUB)
    refused: list[str] = []

    async def submit(i: int) -> None:
        domain, body = batch.bodies[i]
        reply = await w.providers[domain].client.call(hub, "submitMessage", w.room, body)
        if reply.status != 200:
            refused.append(f"#{i}: HTTP {reply.status} {reply.body[:100]!r}")
        elif (code := SubmitMessageResponse.decode(reply.body).statusCode) != SubmitResponseCode.accepted:
            refused.append(f"#{i}: {code.name}")
        elif paced:
            await w.recorder.reached(len(FOLLOWERS) * (i + 1), deadline)

    def index_of(body: bytes) -> list[int]:
        return [batch.keys[m.message.encode()] for m in FanoutMessage.decode_sequence(body, scope=MLS10)]

    cpu, handshakes = time.process_time(), HANDSHAKES.count
    t0, starts, acks = await drive(count, 1 if paced else concurrency, submit)
    name = "hub paced" if paced else "hub"
    if refused:
        raise WorkloadFailed(f"{name}: {len(refused)} submits refused: {refused[:5]}")
    done = await collect(w.recorder, deadline, index_of, count, name)
    return _result(name, t0, starts, acks, done, cpu, handshakes)


async def run_echo(
    e: EchoWorld, batch: Batch, concurrency: int, deadline: float, *, fanout: bool, paced: bool = False
) -> RoundResult:
    count = len(batch.bodies)
    hub = e.server.authority(HUB)
    endpoint = "submitMessage" if fanout else "update"
    room = "mimi://a.example/r/bench"
    e.recorder.reset(count * len(FOLLOWERS))
    index = {body: i for i, (_, body) in enumerate(batch.bodies)}
    failed: list[str] = []

    async def post(i: int) -> None:
        domain, body = batch.bodies[i]
        reply = await e.clients[domain].call(hub, endpoint, room, body)
        if reply.status != 200 or reply.body != body:
            failed.append(f"#{i}: HTTP {reply.status}")
        elif paced and fanout:
            await e.recorder.reached(len(FOLLOWERS) * (i + 1), deadline)

    cpu, handshakes = time.process_time(), HANDSHAKES.count
    t0, starts, acks = await drive(count, 1 if paced else concurrency, post)
    name = ("echo x3" if fanout else "echo x1") + (" paced" if paced else "")
    if failed:
        raise WorkloadFailed(f"{name}: {len(failed)} calls failed: {failed[:5]}")
    if not fanout:
        return _result(name, t0, starts, acks, acks, cpu, handshakes)
    done = await collect(e.recorder, deadline, lambda body: [index[body]], count, name)
    return _result(name, t0, starts, acks, done, cpu, handshakes)


def _result(
    name: str, t0: float, starts: list[float], acks: list[float], done: list[float], cpu: float, handshakes: int
) -> RoundResult:
    return RoundResult(
        name, len(starts), max(done) - t0,
        [d - s for s, d in zip(starts, done, strict=True)], [a - s for s, a in zip(starts, acks, strict=True)],
        (time.process_time() - cpu) / len(starts), HANDSHAKES.count - handshakes,
    )


# -- main --------------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace, pki) -> int:
    hub_world = await build_hub_world(pki, args.clients)
    echo_world = await build_echo_world(pki)
    results: dict[str, list[RoundResult]] = {}
    protect: list[float] = []
    try:
        warm = min(args.messages, 4 * args.concurrency)
        for r in range(args.rounds + 1):  # round 0: warm-up (connections, caches), not reported
            count = warm if r == 0 else args.messages
            batch = prebuild(hub_world, count, args.size, f"r{r}")
            paced = prebuild(hub_world, min(count, args.paced), args.size, f"p{r}") if args.paced else None
            # A short untimed pre-roll before each world's runs re-opens the pooled connections
            # that idled out (httpx closes keep-alive connections idle for 5 s) while the other world ran.
            prime = prebuild(hub_world, 2 * args.concurrency, args.size, f"q{r}")
            if r:
                protect.append(batch.protect_seconds)
            rounds = []
            await run_hub(hub_world, prime, args.concurrency, args.deadline)
            if paced is not None:
                rounds.append(await run_hub(hub_world, paced, 1, args.deadline, paced=True))
            rounds.append(await run_hub(hub_world, batch, args.concurrency, args.deadline))
            await run_echo(echo_world, prime, args.concurrency, args.deadline, fanout=True)
            if paced is not None:
                rounds.append(await run_echo(echo_world, paced, 1, args.deadline, fanout=True, paced=True))
            rounds.append(await run_echo(echo_world, batch, args.concurrency, args.deadline, fanout=True))
            rounds.append(await run_echo(echo_world, batch, args.concurrency, args.deadline, fanout=False))
            if r:
                for res in rounds:
                    results.setdefault(res.workload, []).append(res)
        if args.profile:
            batch = prebuild(hub_world, args.messages, args.size, "profile")
            profiler = cProfile.Profile()
            profiler.enable()
            await run_hub(hub_world, batch, args.concurrency, args.deadline)
            profiler.disable()
            profiler.dump_stats(args.profile)
    finally:
        await stop_echo_world(echo_world)
        await stop_hub_world(hub_world)
    report(args, results, statistics.median(protect))
    return 0


def report(args: argparse.Namespace, results: dict[str, list[RoundResult]], protect: float) -> None:
    def med(name: str, fn: Callable[[RoundResult], float]) -> float:
        return statistics.median(fn(r) for r in results[name])

    print(
        f"Reference peer fan-out: hub {HUB} + followers {', '.join(FOLLOWERS)} on 127.0.0.1, mTLS, in-memory SQLite, "
        f"one event loop"
    )
    print(
        f"{args.clients} clients, {args.messages} messages of {args.size} bytes per round, concurrency "
        f"{args.concurrency}, median of {args.rounds} rounds (after a warm-up round)"
    )
    print(f"CPUs: {os.cpu_count()}, Python {platform.python_version()} ({platform.python_implementation()}), "
          f"{platform.machine()}")
    print(f"MLS protect + encode per message, client side (excluded from the timings): {protect * 1e3:.2f} ms")
    print()
    print(
        f"{'workload':<14} {'msgs/s':>8} {'p50 ms':>9} {'p99 ms':>9} {'ack p50 ms':>11} {'CPU ms/msg':>11} "
        f"{'TLS hs':>7}"
    )
    order = ("hub", "echo x3", "echo x1", "hub paced", "echo x3 paced")
    for name in sorted(results, key=lambda n: order.index(n) if n in order else len(order)):
        print(
            f"{name:<14} {med(name, lambda r: r.rate):>8.1f} {med(name, lambda r: r.pct(0.5) * 1e3):>9.2f} "
            f"{med(name, lambda r: r.pct(0.99) * 1e3):>9.2f} {med(name, lambda r: r.pct(0.5, r.acks) * 1e3):>11.2f} "
            f"{med(name, lambda r: r.cpu * 1e3):>11.2f} {med(name, lambda r: r.handshakes):>7.0f}"
        )
    print()
    pairs = [("hub", "echo x3", "  <- the figure (goal: within 3x)"), ("hub", "echo x1", "")]
    if args.paced:
        pairs.insert(1, ("hub paced", "echo x3 paced", "  (no backlog: one message in the system at a time)"))
    for hub, base, note in pairs:
        rate = med(base, lambda r: r.rate) / med(hub, lambda r: r.rate)
        p50 = med(hub, lambda r: r.pct(0.5)) / med(base, lambda r: r.pct(0.5))
        p99 = med(hub, lambda r: r.pct(0.99)) / med(base, lambda r: r.pct(0.99))
        cpu = med(hub, lambda r: r.cpu) / med(base, lambda r: r.cpu)
        print(f"{hub} / {base}: throughput {rate:.2f}x slower, p50 {p50:.2f}x, p99 {p99:.2f}x, CPU {cpu:.2f}x{note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200, help="messages per round and workload")
    parser.add_argument("--clients", type=int, default=8, help="clients in the room, over the four providers")
    parser.add_argument("--concurrency", type=int, default=8, help="submit calls in flight")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (figures are medians)")
    parser.add_argument("--size", type=int, default=256, help="application payload bytes")
    parser.add_argument("--paced", type=int, default=30, help="messages of the paced workloads (0: skip them)")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds for every message to arrive")
    parser.add_argument("--profile", metavar="FILE", help="profile one more hub round with cProfile into FILE")
    args = parser.parse_args()
    if args.clients < len(DOMAINS):
        parser.error(f"--clients must be at least {len(DOMAINS)} (a client on every provider)")
    if min(args.messages, args.concurrency, args.rounds, args.size) < 1 or args.paced < 0:
        parser.error("--messages, --concurrency, --rounds and --size must be positive, --paced not negative")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp:
        _, pki = write_test_pki(tmp, list(DOMAINS))
        try:
            return asyncio.run(bench(args, pki))
        except WorkloadFailed as exc:
            print(f"workload failed: {exc}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
