"""Suite benchmark: the whole suite against the embedded reference SUT, as ``mimi-conformance run`` does it.

Figures, not pass/fail (``make bench``). Issue 5's goal: the full suite in both roles, with pytest-xdist
on a 2-core machine, in under 120 s.

Printed: wall time of ``mimi-conformance run -n WORKERS`` (start-up of the SUT and the suite's peers
included), the number of checks and checks/s, the summed check durations, the time the SUT spent in its
own handlers (MIMI endpoints and control API; each reference peer prints a ``handler time:`` line at
shutdown), and the harness overhead: the share of the checks' time spent outside the SUT's handlers (in
the suite's own code, its reference peers, TLS and the network stack).

    python benchmarks/bench_suite.py [-n 2] [--seed 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HANDLER_LINE = re.compile(r"^handler time: mimi ([\d.]+)s over (\d+) requests, control ([\d.]+)s over (\d+) requests",
                          re.MULTILINE)


def handler_seconds(out: Path, name: str) -> tuple[float, float, int]:
    """(MIMI seconds, control seconds, requests) summed over every ``<name>.stdout.log`` under ``out``."""
    mimi = control = 0.0
    requests = 0
    for log in out.rglob(f"{name}.stdout.log"):
        for match in HANDLER_LINE.finditer(log.read_text(errors="replace")):
            mimi += float(match.group(1))
            control += float(match.group(3))
            requests += int(match.group(2)) + int(match.group(4))
    return mimi, control, requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", dest="workers", type=int, default=2, help="pytest-xdist workers (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="keep the run's output here (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        out = args.out or Path(tmp) / "run"
        argv = [sys.executable, "-m", "conformance.cli", "run", "--out", str(out), "-n", str(args.workers),
                "--seed", str(args.seed), "--allow-untested"]
        started = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True)  # noqa: S603 - our own interpreter
        wall = time.monotonic() - started
        checks = [json.loads(line) for line in (out / "checks.jsonl").read_text().splitlines()[1:]]
        durations = sum(c.get("duration", 0.0) for c in checks)
        verdicts: dict[str, int] = {}
        for check in checks:
            verdicts[check["verdict"]] = verdicts.get(check["verdict"], 0) + 1
        sut_mimi, sut_control, sut_requests = handler_seconds(out, "sut")
        sut = sut_mimi + sut_control
        print(f"mimi-conformance run -n {args.workers} (exit {done.returncode}): wall {wall:.1f}s, "
              f"{len(checks)} checks, {len(checks) / wall:.2f} checks/s")
        print("verdicts: " + ", ".join(f"{v} {n}" for v, n in sorted(verdicts.items())))
        print(f"summed check durations {durations:.1f}s over {args.workers} workers; "
              f"start-up and teardown {max(0.0, wall - durations / args.workers):.1f}s of the wall time")
        print(f"SUT handler time {sut:.2f}s (MIMI {sut_mimi:.2f}s, control {sut_control:.2f}s, {sut_requests} requests)")
        if durations:
            print(f"harness overhead: {1 - sut / durations:.1%} of the checks' time is spent outside the SUT's handlers")
        if done.returncode not in (0, 1):
            print(done.stdout[-2000:], done.stderr[-2000:], sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
