"""Connectors: a command SUT is health-checked within its deadline and killed afterwards; a SUT
that never becomes healthy or dies is a bounded setup error; the image connector without Docker says so
(setup errors stop the run with exit 2: tests/harness/test_shared_sut.py)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from fake_sut import ROLE_OPERATIONS, free_port

from conformance.harness.connectors import (
    SETUP_ERRORS,
    ConnectorUnavailable,
    ImageConnector,
    RunEnvironment,
    SuitePki,
    SutConfigurationError,
    SutStartError,
    docker_unavailable_reason,
    make_connector,
)
from conformance.harness.manifest import parse_manifest

FAKE_SUT = Path(__file__).resolve().parent / "fake_sut.py"


@pytest.fixture
def env(tmp_path) -> RunEnvironment:
    return RunEnvironment(tmp_path / "run", SuitePki.create(tmp_path / "run" / "pki", ["hub.ref.test"]))


def command_manifest(tmp_path, port, *, mode="healthy", roles=("hub", "follower"), startup=10.0, operations=None):
    (tmp_path / "sut-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    document = {
        "manifestVersion": 1,
        "name": "fake SUT",
        "domains": ["sut.example"],
        "mimi": {"endpoints": {"sut.example": "127.0.0.1:1"}, "ca": "sut-ca.pem"},
        "roles": list(roles),
        "control": {"url": f"http://127.0.0.1:{port}", **({"operations": operations} if operations else {})},
        "connector": {"type": "command", "argv": [sys.executable, str(FAKE_SUT), "--control-port", str(port),
                                                  "--mode", mode]},
        "timeouts": {"startup": startup, "shutdown": 5},
    }
    return parse_manifest(document, base_dir=tmp_path)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0); its state in /proc says it is dead.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z"


def test_command_sut_is_health_checked_and_killed_at_the_end(tmp_path, env):
    connector = make_connector(command_manifest(tmp_path, free_port(), operations=ROLE_OPERATIONS), env)
    started = time.monotonic()
    connected = connector.start()
    try:
        assert time.monotonic() - started < 10
        assert connected.info["providerDomains"] == ["sut.example"]
        assert connected.control.supported_operations() == set(ROLE_OPERATIONS)
        assert connected.base_urls == {"sut.example": "https://sut.example:1"}
        assert connected.resolve() == {"sut.example": "127.0.0.1"}
        assert connected.hosts == {"sut.example"}  # never the shared loopback address
        pid = connector.process.pid
        assert connector.process.running()
    finally:
        connector.stop()
    assert not connector.process.running() and gone(pid)
    assert "fake SUT listening" in connector.process.stdout_path.read_text()
    assert connector.process.stdout_path.parent == env.output_dir / "logs"


def test_a_command_that_never_becomes_healthy_fails_within_its_deadline(tmp_path, env):
    connector = make_connector(command_manifest(tmp_path, free_port(), mode="never", startup=1.0), env)
    started = time.monotonic()
    with pytest.raises(SutStartError) as caught:
        connector.start()
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 4.0
    assert "never became healthy" in str(caught.value) and "/v1/info" in str(caught.value)
    assert not connector.process.running()
    assert isinstance(caught.value, SETUP_ERRORS)  # the run stops before any verdict


def test_a_command_that_dies_fails_at_once_with_its_stderr(tmp_path, env):
    connector = make_connector(command_manifest(tmp_path, free_port(), mode="exit", startup=30.0), env)
    started = time.monotonic()
    with pytest.raises(SutStartError) as caught:
        connector.start()
    assert time.monotonic() - started < 10  # far below the 30 s deadline: exit is noticed, not waited out
    assert "exited with code 3" in str(caught.value)
    assert "refusing to start" in str(caught.value)


def test_a_command_that_cannot_run_is_a_start_error(tmp_path, env):
    manifest = command_manifest(tmp_path, free_port())
    manifest.connector["argv"] = [str(tmp_path / "no-such-binary")]
    with pytest.raises(SutStartError, match="cannot run"):
        make_connector(manifest, env).start()


def test_manifest_and_get_info_must_agree(tmp_path, env):
    connector = make_connector(command_manifest(tmp_path, free_port(), roles=("hub",)), env)
    with pytest.raises(SutConfigurationError, match="roles: manifest \\['hub'\\], getInfo \\['follower', 'hub'\\]"):
        connector.start()
    assert not connector.process.running()


def test_image_connector_without_docker_is_unavailable_in_one_sentence(tmp_path, env, monkeypatch):
    # No engine, even on a machine that has one: the Docker SDK looks only where DOCKER_HOST says.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    reason = docker_unavailable_reason()
    assert reason is not None
    document = {"manifestVersion": 1, "name": "img", "domains": ["sut.example"], "roles": ["hub"],
                "connector": {"type": "image", "image": "example/mimi-sut:1"}}
    connector = make_connector(parse_manifest(document), env)
    assert isinstance(connector, ImageConnector)
    started = time.monotonic()
    with pytest.raises(ConnectorUnavailable) as caught:
        connector.start()
    assert time.monotonic() - started < 10
    assert str(caught.value) == reason
    assert "testcontainers" in reason or "Docker engine" in reason
    assert isinstance(caught.value, SETUP_ERRORS)  # the run stops before any verdict
    connector.stop()  # nothing started: stop is harmless
