"""`reference-peer faults | head` and the other listings: a reader that goes away early is not an error."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("command", ["faults", "variants", "steps"])
def test_a_closed_pipe_ends_quietly_with_exit_0(command):
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "reference_peer.cli", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()  # like `| head` that has read enough: every write now fails with EPIPE
    _, stderr = process.communicate(timeout=60)
    assert stderr.decode() == ""  # no BrokenPipeError traceback, no "Exception ignored" at exit
    assert process.returncode == 0


def test_a_pipe_read_to_the_end_gets_everything():
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "reference_peer.cli", "faults"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stderr == ""
    assert len(done.stdout.splitlines()) > 5
