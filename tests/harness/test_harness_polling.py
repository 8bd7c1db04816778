"""poll_until: returns what the predicate found, or times out within its deadline naming what it awaited."""

from __future__ import annotations

import time

import pytest

from conformance.harness.polling import Deadline, PollTimeout, poll_until


def test_returns_the_first_truthy_value():
    calls = iter([None, [], {"n": 1}])
    assert poll_until(lambda: next(calls), timeout=2, interval=0.01, what="a value") == {"n": 1}


def test_timeout_names_what_was_awaited_and_the_last_value():
    started = time.monotonic()
    with pytest.raises(PollTimeout) as caught:
        poll_until(lambda: [], timeout=0.3, interval=0.05, what="Bob's client to receive the message")
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 1.5
    message = str(caught.value)
    assert "waiting for Bob's client to receive the message" in message
    assert "after 0.3s" in message
    assert "last: []" in message


def test_retry_on_counts_exceptions_as_not_yet_and_reports_the_last_one():
    with pytest.raises(PollTimeout) as caught:
        poll_until(lambda: 1 / 0, timeout=0.2, interval=0.05, what="division", retry_on=(ZeroDivisionError,))
    assert "ZeroDivisionError" in str(caught.value)


def test_other_exceptions_propagate_at_once():
    started = time.monotonic()
    with pytest.raises(KeyError):
        poll_until(lambda: {}["x"], timeout=5, what="a key")
    assert time.monotonic() - started < 1


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        poll_until(lambda: True, timeout=0, what="x")
    with pytest.raises(ValueError):
        poll_until(lambda: True, timeout=1, interval=0, what="x")


def test_deadline_remaining_never_negative():
    deadline = Deadline.after(0.0)
    assert deadline.expired()
    assert deadline.remaining() == 0.0
