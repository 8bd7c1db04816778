"""``reference-peer serve --exit-with-parent``: a peer the harness started in a session of its own
stops by itself when the harness is killed outright (SIGKILL: no teardown ran), instead of idling as
an orphan; without the flag it stays (a vendor's long-running peer must not depend on its launcher)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import yaml

from reference_peer.cli import ORPHAN_POLL_SECONDS

START_TIMEOUT = 60.0  # a deadline, not a wait: start-up is mostly imports, slow on a loaded machine

# The launcher plays the harness: it starts the peer in a new session (as ManagedProcess does), prints
# its PID, and waits to be killed.
LAUNCHER = """
import subprocess, sys, time
peer = subprocess.Popen(sys.argv[1:], start_new_session=True, stdout=subprocess.DEVNULL, stderr=open(sys.argv[-1] + ".log", "wb"))
print(peer.pid, flush=True)
time.sleep(600)
"""


def _config(pki, tmp_path) -> str:
    files = pki.providers["a.example"]
    path = tmp_path / "peer.yaml"
    path.write_text(yaml.safe_dump({
        "listen": {"address": "127.0.0.1", "port": 0},
        "tls": {"ca": str(pki.ca_cert)},
        "providers": [{"domain": "a.example", "cert": str(files.cert), "key": str(files.key)}],
        "storage": {"path": str(tmp_path / "state")},
    }))
    return str(path)


def _launch(pki, tmp_path, *flags: str) -> tuple[subprocess.Popen, psutil.Process]:
    config = _config(pki, tmp_path)
    argv = [sys.executable, "-m", "reference_peer.cli", "serve", *flags, "--config", config]
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, *argv], stdout=subprocess.PIPE, text=True)  # noqa: S603
    peer = psutil.Process(int(launcher.stdout.readline()))
    return launcher, peer


def _wait_started(peer: psutil.Process, log_path: str) -> None:
    """Until the peer runs its event loop (it then logs nothing more; its imports take the time)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not peer.is_running():
            with open(log_path, encoding="utf-8", errors="replace") as log:
                raise AssertionError(f"the peer did not start: {log.read()[-2000:]}")
        connections = peer.net_connections(kind="tcp") if hasattr(peer, "net_connections") else peer.connections("tcp")
        if any(c.status == psutil.CONN_LISTEN for c in connections):
            return
        time.sleep(0.1)
    raise AssertionError(f"the peer did not listen within {START_TIMEOUT:.0f} s")


@pytest.mark.parametrize("flags, stops", [(("--exit-with-parent",), True), ((), False)],
                         ids=["exit-with-parent", "without-the-flag"])
def test_peer_stops_when_its_launcher_is_killed(pki, tmp_path, flags, stops) -> None:
    launcher, peer = _launch(pki, tmp_path, *flags)
    try:
        _wait_started(peer, str(tmp_path / "peer.yaml.log"))
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        try:
            # Stopping takes one poll and a graceful shutdown; staying is seen after a few polls.
            peer.wait(timeout=30 if stops else 6 * ORPHAN_POLL_SECONDS)
            stopped = True
        except psutil.TimeoutExpired:
            stopped = False
        assert stopped is stops, json.dumps({"flags": flags, "stopped": stopped})
    finally:
        if peer.is_running():
            os.kill(peer.pid, signal.SIGKILL)
        launcher.kill()


def test_peer_whose_named_starter_is_not_its_parent_stops(pki, tmp_path) -> None:
    """The harness names its PID: a starter that died while the peer was still importing (the peer
    already re-parented when it first looks) is noticed. Here the named PID is simply not the parent."""
    launcher, peer = _launch(pki, tmp_path, "--exit-with-parent", str(os.getpid()))
    try:
        # It stops on its first look, with its launcher alive (which never reaps it: a zombie is gone too).
        deadline = time.monotonic() + START_TIMEOUT
        while peer.is_running() and peer.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not peer.is_running() or peer.status() == psutil.STATUS_ZOMBIE, "the peer kept running"
        assert launcher.poll() is None
    finally:
        if peer.is_running():
            os.kill(peer.pid, signal.SIGKILL)
        launcher.kill()
