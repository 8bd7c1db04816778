"""The reference peer as a container image (docker/), run through the ``image`` connector: the same
verdicts as the embedded reference SUT, check for check.

Needs a Docker engine, the ``testcontainers`` package and the image ``mimi-reference-sut:local``
(``make image`` installs and starts the engine where root with apt-get can, and builds the image with
no registry). Without them the test skips and says why; with ``MIMI_IMAGE_SUT_REQUIRED=1`` (CI) it fails.
``MIMI_IMAGE_SUT_SELECTION`` (a pytest -k expression) narrows both runs; by default they run every check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.harness.connectors import docker_unavailable_reason

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFEST = REPO_ROOT / "docker" / "reference-sut.yaml"
IMAGE = "mimi-reference-sut:local"


def _missing() -> str | None:
    reason = docker_unavailable_reason()
    if reason is not None:
        return reason
    import docker

    try:
        docker.from_env(timeout=10).images.get(IMAGE)
    except docker.errors.ImageNotFound:
        return f"the image {IMAGE} is not built here (make image)"
    return None


@pytest.fixture(scope="module")
def engine_and_image() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("MIMI_IMAGE_SUT_REQUIRED") == "1":
        pytest.fail(f"MIMI_IMAGE_SUT_REQUIRED=1 but {reason}")
    pytest.skip(reason)


def _run(out: Path, *sut: str) -> dict[str, str]:
    selection = os.environ.get("MIMI_IMAGE_SUT_SELECTION")
    argv = [sys.executable, "-m", "conformance.cli", "run", *sut, "-n", "2", "--seed", "1", "--allow-untested",
            "--out", str(out), *(["-k", selection] if selection else [])]
    result = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {check["check_id"]: check["verdict"] for check in json.loads((out / "results.json").read_text())["checks"]}


def test_the_image_sut_gets_the_embedded_suts_verdicts(engine_and_image, tmp_path):
    from_image = _run(tmp_path / "image", "--sut", str(MANIFEST))
    embedded = _run(tmp_path / "embedded")
    assert from_image, "the image run judged no check"
    differences = {check: (from_image.get(check), embedded.get(check))
                   for check in sorted(set(from_image) | set(embedded)) if from_image.get(check) != embedded.get(check)}
    assert not differences, f"image vs embedded verdicts differ: {differences}"
    log = (tmp_path / "image" / "logs" / "sut.container.log").read_text(encoding="utf-8")
    assert "serving sut.mimi.test at https://sut.mimi.test:8443 (listening on 127.0.0.1:8443)" in log
