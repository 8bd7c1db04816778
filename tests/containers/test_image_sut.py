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
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _manifest_on_free_ports(folder: Path) -> tuple[Path, int]:
    """docker/reference-sut.yaml with MIMI and the control API on free ports: the container shares the
    host's network, where 8443 and 8480 may be taken (another run, the vendor guide's example server)."""
    document = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    mimi_port, control_port = _free_port(), _free_port()
    document["connector"].update(mimiPort=mimi_port, controlPort=control_port)
    document["control"]["url"] = f"http://127.0.0.1:{control_port}"
    manifest = folder / "reference-sut.yaml"
    manifest.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return manifest, mimi_port


def _run(out: Path, *sut: str) -> dict[str, str]:
    selection = os.environ.get("MIMI_IMAGE_SUT_SELECTION")
    argv = [sys.executable, "-m", "conformance.cli", "run", *sut, "-n", "2", "--seed", "1", "--allow-untested",
            "--out", str(out), *(["-k", selection] if selection else [])]
    result = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {check["check_id"]: check["verdict"] for check in json.loads((out / "results.json").read_text())["checks"]}


def test_the_image_sut_gets_the_embedded_suts_verdicts(engine_and_image, embedded_verdicts, tmp_path):
    manifest, mimi_port = _manifest_on_free_ports(tmp_path)
    from_image = _run(tmp_path / "image", "--sut", str(manifest))
    # The full embedded run is shared with the vendor guide's test; a narrowed one is run here.
    embedded = _run(tmp_path / "embedded") if os.environ.get("MIMI_IMAGE_SUT_SELECTION") else embedded_verdicts("1")
    assert from_image, "the image run judged no check"
    differences = {check: (from_image.get(check), embedded.get(check))
                   for check in sorted(set(from_image) | set(embedded)) if from_image.get(check) != embedded.get(check)}
    assert not differences, f"image vs embedded verdicts differ: {differences}"
    log = (tmp_path / "image" / "logs" / "sut.container.log").read_text(encoding="utf-8")
    assert f"serving sut.mimi.test at https://sut.mimi.test:{mimi_port} (listening on 127.0.0.1:{mimi_port})" in log
