"""Fixtures shared by test folders. (tests/ is a package, tests/__init__.py, so that pytest puts the repository root,
not tests/, on sys.path for this file: tests/reports would otherwise shadow the reports package.)"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def embedded_verdicts(tmp_path_factory) -> Callable[[str], dict[str, str]]:
    """Verdicts (check ID -> verdict) of a full run of the embedded reference SUT with ``-n 2`` and a
    seed, run once per seed and session: the image SUT's and the vendor guide's runs are each judged
    against it, and a full run takes about a minute on two cores."""
    runs: dict[str, dict[str, str]] = {}

    def verdicts(seed: str) -> dict[str, str]:
        if seed not in runs:
            out = tmp_path_factory.mktemp(f"embedded-seed-{seed}") / "out"
            argv = [sys.executable, "-m", "conformance.cli", "run", "-n", "2", "--seed", seed, "--allow-untested",
                    "--out", str(out)]
            done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800)  # noqa: S603
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            results = json.loads((out / "results.json").read_text(encoding="utf-8"))
            runs[seed] = {check["check_id"]: check["verdict"] for check in results["checks"]}
        return runs[seed]

    return verdicts
