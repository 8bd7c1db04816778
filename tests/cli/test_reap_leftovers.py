"""conformance.run._reap_leftovers: after an interrupted run, the reference peers it spawned in sessions of
their own are stopped (found with psutil by a command line naming reference_peer and the run's folder)."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from conformance.run import _reap_leftovers

SLEEPER = "import sys, time; time.sleep(120)"


def _spawn(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SLEEPER, *argv], start_new_session=True)  # noqa: S603


def test_leftover_peers_of_this_run_are_stopped_and_others_kept(tmp_path):
    out = tmp_path / "run-out"
    leftover = _spawn("reference_peer", "--config", str(out / "peers" / "hub" / "peer.yaml"))
    other_run = _spawn("reference_peer", "--config", str(tmp_path / "other" / "peer.yaml"))
    not_a_peer = _spawn("something-else", str(out))
    try:
        time.sleep(0.3)  # let the command lines be visible
        started = time.monotonic()
        _reap_leftovers(out, grace=5.0)
        assert time.monotonic() - started < 5.0  # SIGTERM sufficed: no wait for the SIGKILL round
        # Gone (psutil reaped it, being our child here; in a run the peers are pytest's grandchildren).
        assert not psutil.pid_exists(leftover.pid) or psutil.Process(leftover.pid).status() == psutil.STATUS_ZOMBIE
        assert other_run.poll() is None and not_a_peer.poll() is None
    finally:
        for process in (leftover, other_run, not_a_peer):
            process.kill()
            process.wait()


def test_nothing_to_reap_returns_at_once(tmp_path):
    started = time.monotonic()
    _reap_leftovers(tmp_path / "nothing-ran-here", grace=5.0)
    assert time.monotonic() - started < 2.0
