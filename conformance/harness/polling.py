"""Waiting for effects: always a poll with a deadline, never a bare sleep.

``poll_until(fn, timeout=..., interval=..., what=...)`` calls ``fn`` until it returns something
truthy, and returns that value. When the deadline passes it raises :class:`PollTimeout`, whose
message names what was awaited and the last value (or exception) seen, so a failure reads
"timed out after 5.0s waiting for Bob's client to receive the message (last: [])".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

# The one primitive that blocks: an Event nobody sets, so a wait is interruptible by design and
# there is exactly one place that pauses (never a bare time.sleep in the harness).
_never_set = threading.Event()


def pause(seconds: float) -> None:
    """Block for ``seconds`` (only the pollers in this module call it)."""
    if seconds > 0:
        _never_set.wait(seconds)


class PollTimeout(TimeoutError):
    """The awaited condition did not hold before the deadline."""

    def __init__(self, what: str, timeout: float, last: Any = None, last_error: BaseException | None = None) -> None:
        detail = f"last error: {type(last_error).__name__}: {last_error}" if last_error else f"last: {last!r}"
        super().__init__(f"timed out after {timeout:g}s waiting for {what} ({detail})")
        self.what = what
        self.timeout = timeout
        self.last = last
        self.last_error = last_error
        self.requirement: str | None = None  # the requirement awaited, when the check names it


@dataclass(frozen=True)
class Deadline:
    """A point in monotonic time; ``remaining()`` never goes below zero."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.at


def poll_until(
    fn: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.1,
    what: str,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``fn`` until it returns a truthy value; return it. Exceptions in ``retry_on`` count as "not yet".

    ``fn`` is always called at least once, and once more at the deadline, so a condition that
    becomes true just in time is seen.
    """
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    if interval <= 0:
        raise ValueError("interval must be positive")
    deadline = Deadline.after(timeout)
    last: Any = None
    last_error: BaseException | None = None
    while True:
        try:
            last = fn()
            last_error = None
            if last:
                return last
        except retry_on as exc:
            last_error = exc
        if deadline.expired():
            raise PollTimeout(what, timeout, last, last_error)
        pause(min(interval, deadline.remaining()))
