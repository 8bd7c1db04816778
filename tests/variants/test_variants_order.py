"""Allowed variants of fan-out order and retry timing (issue 15, "Judge the draft, not the reference peer").

* ``notify-in-parallel``: -06 §5.5 "The hub need not wait for a response before sending the next fanout
  message". The order checks judge the order the FanoutMessage stamps and epochs give; a different order
  of arrival is AMBIGUOUS with AMB-FANOUT-ORDER-PARALLEL, never a miss.
* ``slow-notify-retry``: -06 §5.5 "it SHOULD retry the request, respecting ... Retry-After" sets no
  deadline; a retry 20-30 s later is awaited (bounded) and passes.

The first two cases run checks against the reference SUT with the variant on (the slow-retry one takes
about two minutes: its retries come 20-30 s apart); the others exercise the outbox hooks with a fake clock.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_draft_latitude import assert_no_false_verdict, outcomes_of, run_checks  # noqa: E402

from reference_peer.faults import VARIANTS, overrides_for  # noqa: E402
from reference_peer.faults.variants_order import (  # noqa: E402
    NOTIFY_IN_PARALLEL,
    SLOW_NOTIFY_RETRY,
    SLOW_RETRY_RANGE_S,
)
from reference_peer.provider.outbox import DeliveryResult, Outbox, OutboxWorker  # noqa: E402
from reference_peer.provider.store import Store  # noqa: E402

ORDER_AMBIGUITY = "AMB-FANOUT-ORDER-PARALLEL"


def _passed_or_order_ambiguous(checks, requirement: str) -> None:
    results = [reqs[requirement] for reqs in checks.values() if requirement in reqs]
    assert results, (requirement, checks)
    for result in results:
        assert result["outcome"] == "PASS" or (
            result["outcome"] == "AMBIGUOUS" and result.get("ambiguity") == ORDER_AMBIGUITY
        ), (requirement, result)


def test_a_hub_sending_notify_in_parallel_passes_the_fanout_checks(tmp_path):
    """With several /notify in flight at once, the fan-out checks (order, Welcome routing, stamps, retries)
    find no miss; the order is PASS, or AMBIGUOUS with AMB-FANOUT-ORDER-PARALLEL if requests overtook."""
    checks = run_checks(tmp_path, "hub_order or welcome or timestamp or retried or retry_after",
                        variants=[NOTIFY_IN_PARALLEL], module="test_fanout.py")
    assert_no_false_verdict(checks)
    _passed_or_order_ambiguous(checks, "PROTO-FANOUT-ORDERED")
    for requirement in ("PROTO-FANOUT-TO-ACTIVE-PROVIDERS", "POLICY-OPS-DELIVERY-ORDER", "PROTO-FANOUT-WELCOME-ROUTING",
                        "PROTO-FANOUT-TIMESTAMP-IS-ACCEPTANCE", "PROTO-FANOUT-RETRY-NON-201",
                        "PROTO-FANOUT-SUCCESS-IS-COMMITMENT"):
        assert set(outcomes_of(checks, requirement)) == {"PASS"}, (requirement, checks)


def test_a_slow_but_permitted_retry_is_no_miss(tmp_path):
    """A hub that retries a refused /notify only after 20-30 s (twice in the retry check) delivers the
    message; the retry checks wait for it and pass."""
    checks = run_checks(tmp_path, "retried or retry_after", variants=[SLOW_NOTIFY_RETRY], module="test_fanout.py")
    assert_no_false_verdict(checks)
    for requirement in ("PROTO-FANOUT-RETRY-NON-201", "PROTO-FANOUT-SUCCESS-IS-COMMITMENT",
                        "PROTO-FANOUT-RETRY-AFTER-RESPECTED"):
        assert outcomes_of(checks, requirement) and set(outcomes_of(checks, requirement)) == {"PASS"}, (
            requirement, checks)


def test_multi_device_checks_pass_with_parallel_notify(tmp_path):
    """A new device's external commit and the messages after it, fanned out without waiting for answers."""
    checks = run_checks(tmp_path, "sut-hub", variants=[NOTIFY_IN_PARALLEL], module="test_multi_device.py")
    assert_no_false_verdict(checks)
    assert set(outcomes_of(checks, "PROTO-GROUPINFO-NEW-DEVICE-JOIN")) == {"PASS"}, checks


def test_stamps_that_contradict_the_epochs_are_a_miss_under_both_readings(tmp_path):
    """fanout-commit-stamped-late: /notify in order, but by the stamps the new epoch's messages precede their
    commit. No reading of -06 §5.5 allows that: PROTO-FANOUT-ORDERED is missed, nothing else."""
    checks = run_checks(tmp_path, "hub_order", faults=["fanout-commit-stamped-late"], module="test_fanout.py")
    (reqs,) = checks.values()
    assert reqs["PROTO-FANOUT-ORDERED"]["outcome"] in ("FAIL", "WARN"), reqs
    assert reqs["POLICY-OPS-DELIVERY-ORDER"]["outcome"] == "PASS", reqs
    assert reqs["PROTO-FANOUT-TO-ACTIVE-PROVIDERS"]["outcome"] == "PASS", reqs


def test_a_commit_overtaken_on_the_wire_is_a_delivery_order_miss_and_order_ambiguous(tmp_path):
    """fanout-commit-overtaken: a message of the new epoch arrives before its commit, the stamps still in the
    hub's order. Room-policy-04 §7 names what is received (a miss); for -06 §5.5 the readings differ."""
    checks = run_checks(tmp_path, "hub_order", faults=["fanout-commit-overtaken"], module="test_fanout.py")
    (reqs,) = checks.values()
    assert reqs["POLICY-OPS-DELIVERY-ORDER"]["outcome"] in ("FAIL", "WARN"), reqs
    assert reqs["PROTO-FANOUT-ORDERED"]["outcome"] == "AMBIGUOUS", reqs
    assert reqs["PROTO-FANOUT-ORDERED"].get("ambiguity") == ORDER_AMBIGUITY, reqs


# -- the outbox hooks (fake clock, no network) -------------------------------------------------------------


class _HeldPeer:
    """Answers every send only when released, logging when each send started."""

    def __init__(self) -> None:
        self.started: list[bytes] = []
        self.release = asyncio.Event()

    async def send(self, item) -> DeliveryResult:
        self.started.append(item.body)
        await self.release.wait()
        return DeliveryResult(201)


def test_parallel_variant_sends_the_next_notify_before_the_previous_answer():
    async def scenario():
        outbox = Outbox(Store.memory(), lambda: 1000.0)
        peer = _HeldPeer()
        worker = OutboxWorker(outbox, peer.send, clock=lambda: 1000.0, overrides=overrides_for([NOTIFY_IN_PARALLEL]))
        for n in range(3):
            outbox.enqueue("b.example", "notify", b"n%d" % n, path_vars={"roomId": "r"})
        await worker.run_once()
        for _ in range(5):
            await asyncio.sleep(0)
        started = list(peer.started)
        peer.release.set()
        for _ in range(20):
            await asyncio.sleep(0)
        return started, [r.state for r in outbox.records()]

    started, states = asyncio.run(scenario())
    assert started == [b"n0", b"n1", b"n2"]  # all three in flight before any answer, in enqueue order
    assert states == ["delivered"] * 3


def test_parallel_variant_sends_a_later_notify_while_an_earlier_one_awaits_its_answer():
    async def scenario():
        outbox = Outbox(Store.memory(), lambda: 1000.0)
        peer = _HeldPeer()
        worker = OutboxWorker(outbox, peer.send, clock=lambda: 1000.0, overrides=overrides_for([NOTIFY_IN_PARALLEL]))
        outbox.enqueue("b.example", "notify", b"first", path_vars={"roomId": "r"})
        await worker.run_once()
        for _ in range(5):
            await asyncio.sleep(0)
        outbox.enqueue("b.example", "notify", b"second", path_vars={"roomId": "r"})
        await worker.run_once()
        for _ in range(5):
            await asyncio.sleep(0)
        started = list(peer.started)
        peer.release.set()
        for _ in range(20):
            await asyncio.sleep(0)
        return started

    assert asyncio.run(scenario()) == [b"first", b"second"]


def test_without_the_variant_the_outbox_waits_for_each_answer():
    async def scenario():
        outbox = Outbox(Store.memory(), lambda: 1000.0)
        peer = _HeldPeer()
        worker = OutboxWorker(outbox, peer.send, clock=lambda: 1000.0)
        for n in range(3):
            outbox.enqueue("b.example", "notify", b"n%d" % n, path_vars={"roomId": "r"})
        task = asyncio.ensure_future(worker.run_once())
        for _ in range(5):
            await asyncio.sleep(0)
        started = list(peer.started)
        peer.release.set()
        await task
        return started

    assert asyncio.run(scenario()) == [b"n0"]


def _paced(variants, status, retry_after, room=None):
    """(status, retry_after) a hub built with ``variants`` acts on after a /notify attempt not answered 201,
    at step hub.notify.retry-refused; None: the default (the status and the peer's Retry-After)."""
    from reference_peer.peer import RETRY_REFUSED_NOTIFY

    return overrides_for(variants).hook(RETRY_REFUSED_NOTIFY, status, retry_after, room)


@pytest.mark.parametrize("retry_after, low", [("1", SLOW_RETRY_RANGE_S[0]), ("40", 40.0), (None, SLOW_RETRY_RANGE_S[0])])
def test_slow_retry_variant_waits_20_to_30_s_or_the_longer_retry_after(retry_after, low):
    on = [SLOW_NOTIFY_RETRY]
    status, delay = _paced(on, 503, retry_after)
    assert _paced(on, 201, None) is None  # delivered: nothing to pace
    assert _paced(on, None, 0.2) is None  # no answer: default pacing
    in_transfer = type("Room", (), {"transfer": object(), "moved": None, "min_timestamp": 0})()
    assert _paced(on, 503, "1", in_transfer) is None
    assert status == 503 and low <= delay <= max(low, SLOW_RETRY_RANGE_S[1])
    assert _paced([], 503, "1") is None  # variant off: unchanged


@pytest.mark.parametrize("variant", [NOTIFY_IN_PARALLEL, SLOW_NOTIFY_RETRY])
def test_order_variants_are_listed_with_what_permits_them(variant):
    assert variant in VARIANTS and "-06 §5.5" in VARIANTS[variant].permitted_by
