"""Real ``mimi-conformance run`` invocations against the embedded reference SUT, started together in
one session fixture so that the three runs the CLI tests need cost about the time of one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import DISCOVERY_CHECK, Invocation, mimi_conformance

STALE_BASELINE = f"""\
version: 1
expected_failures:
  - check: "{DISCOVERY_CHECK}"
    reason: "listed as failing although the reference SUT passes it: the gate must call the entry stale"
"""


@pytest.fixture(scope="session")
def reference_runs(tmp_path_factory) -> dict[str, Invocation]:
    """Real runs against the embedded reference SUT, run concurrently (each with its own output dir).

    ``plain``: the defaults, signed with a fresh key (the key pair is in ``<tmp>/keys``).
    ``stale``: a baseline expecting the discovery check to fail, with --allow-untested (which must not
    hide a stale entry). ``untested``: --allow-untested alone, one profile. ``timeout``: stopped by
    --timeout-total long before the check can finish.
    """
    base = tmp_path_factory.mktemp("cli-runs")
    keys = base / "keys"
    keys.mkdir()
    keygen = subprocess.run([sys.executable, "-m", "conformance.cli", "keygen", str(keys / "signing.pem")],
                            capture_output=True, text=True, timeout=60)
    assert keygen.returncode == 0, keygen.stderr
    baseline = base / "baseline.yaml"
    baseline.write_text(STALE_BASELINE, encoding="utf-8")
    only = ("-k", DISCOVERY_CHECK.split("::")[-1])  # one check: these runs test the command, not the checks
    specs = {
        "plain": ("run", "--out", str(base / "plain"), "--seed", "11", "--sign-key", str(keys / "signing.pem"), *only),
        "stale": ("run", "--out", str(base / "stale"), "--seed", "12", "--baseline", str(baseline), "--allow-untested",
                  *only),
        "untested": ("run", "--out", str(base / "untested"), "--seed", "13", "--allow-untested",
                     "--profile", "follower-core-06", *only),
        "timeout": ("run", "--out", str(base / "timeout"), "--seed", "14", "--timeout-total", "3"),
    }  # fmt: skip
    # A working directory other than the repository: check IDs must not depend on it.
    started = {name: (args, mimi_conformance(*args, cwd=base)) for name, args in specs.items()}
    runs = {}
    for name, (args, process) in started.items():
        stdout, stderr = process.communicate(timeout=240)
        runs[name] = Invocation(args, process.returncode, stdout, stderr, Path(args[2]))
    return runs
