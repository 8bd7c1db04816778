"""A url/command/image SUT is started once per run by the controller and shared by the xdist workers;
it is handed the suite CA certificate and the reference address before it starts, never a private key;
setup mistakes stop the run as a usage error (pytest exit 4) with one sentence, never a verdict."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml
from fake_sut import free_port

FAKE_SUT = Path(__file__).resolve().parent / "fake_sut.py"
ROOT = Path(__file__).resolve().parents[2]

# Checks that note which worker ran them, its reference hub and the SUT it saw.
CHECKS = '''
import json, os
import pytest

@pytest.mark.requirements("PROTO-DIRECTORY-WELL-KNOWN")
@pytest.mark.parametrize("n", range(6))
def test_sees_the_shared_sut(sut, n, mimi_output_dir):
    from conformance.harness.reference_names import current
    record = {"worker": os.environ.get("PYTEST_XDIST_WORKER"), "hub": current().hub,
              "control": sut.control.base_url, "domains": list(sut.domains)}
    with open(mimi_output_dir / "seen.jsonl", "a") as out:
        out.write(json.dumps(record) + "\\n")
    from conformance.verdicts import observed
    observed("PROTO-DIRECTORY-WELL-KNOWN", "saw the SUT")
'''

# The SUT command: note each start and the hand-off it was given, then become the fake SUT.
LAUNCHER = '''
import json, os, runpy, sys
with open("starts.log", "a") as out:
    out.write(str(os.getpid()) + "\\n")
with open("handoff.json", "w") as out:
    json.dump({{k: v for k, v in os.environ.items() if k.startswith("MIMI_CONFORMANCE_")}}, out)
sys.argv = ["fake_sut.py", *sys.argv[1:]]
runpy.run_path({fake!r}, run_name="__main__")
'''


def write_manifest(folder: Path, *, connector: dict, reference_address: str = "127.0.0.1:0", control_port: int,
                   extra: dict | None = None) -> Path:
    (folder / "sut-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    document = {
        "manifestVersion": 1,
        "name": "fake SUT",
        "domains": ["sut.example"],
        "mimi": {"endpoints": {"sut.example": "127.0.0.1:1"}, "ca": "sut-ca.pem"},
        "roles": ["hub", "follower"],
        "control": {"url": f"http://127.0.0.1:{control_port}"},
        "connector": connector,
        "suite": {"referenceAddress": reference_address},
        "timeouts": {"startup": 20, "shutdown": 5},
        **(extra or {}),
    }
    path = folder / "sut.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def command_connector(folder: Path, port: int, mode: str = "healthy") -> dict:
    (folder / "launch.py").write_text(LAUNCHER.format(fake=str(FAKE_SUT)))
    # Relative: a command runs in the manifest's folder unless connector.cwd says otherwise.
    return {"type": "command", "argv": [sys.executable, "launch.py", "--control-port", str(port), "--mode", mode]}


def run_suite(folder: Path, manifest: Path, *extra: str, timeout: float = 240) -> subprocess.CompletedProcess:
    (folder / "test_shared.py").write_text(CHECKS)
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(folder / "test_shared.py"), "-p", "no:cacheprovider", "-q",
         "--sut", str(manifest), "--mimi-output", str(folder / "out"), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_a_command_sut_is_started_once_and_shared_by_two_workers(tmp_path):
    port = free_port()
    manifest = write_manifest(tmp_path, connector=command_connector(tmp_path, port), control_port=port)
    result = run_suite(tmp_path, manifest, "-n", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert len((tmp_path / "starts.log").read_text().split()) == 1  # one SUT for the whole run
    seen = [json.loads(line) for line in (tmp_path / "out" / "seen.jsonl").read_text().splitlines()]
    assert {record["control"] for record in seen} == {f"http://127.0.0.1:{port}"}
    assert {record["domains"][0] for record in seen} == {"sut.example"}
    by_worker = {record["worker"]: record["hub"] for record in seen}
    assert by_worker == {"gw0": "hub.ref.test", "gw1": "hub-1.ref.test"}

    handoff = json.loads((tmp_path / "handoff.json").read_text())
    out = tmp_path / "out"
    assert "MIMI_CONFORMANCE_RUN_DIR" not in handoff
    assert handoff["MIMI_CONFORMANCE_SUT_DIR"] == str(out / "sut")
    assert handoff["MIMI_CONFORMANCE_SUITE_CA"] == str(out / "sut" / "suite-ca.pem")
    assert handoff["MIMI_CONFORMANCE_REFERENCE_DOMAINS"].split(",") == [
        "hub.ref.test", "follower.ref.test", "hub-1.ref.test", "follower-1.ref.test"]
    host, _, gateway_port = handoff["MIMI_CONFORMANCE_REFERENCE_ADDRESS"].rpartition(":")
    assert host == "127.0.0.1" and int(gateway_port) > 0  # port 0: chosen before the SUT started
    peers = yaml.safe_load((out / "sut" / "reference-peers.yaml").read_text())
    assert peers["*.ref.test"] == handoff["MIMI_CONFORMANCE_REFERENCE_ADDRESS"]
    assert set(peers) == {"*.ref.test", *handoff["MIMI_CONFORMANCE_REFERENCE_DOMAINS"].split(",")}

    # Nothing handed to the SUT names or holds a private key.
    for value in handoff.values():
        assert not value.endswith(".key") and "suite-pki" not in value and "/pki" not in value
    for path in (out / "sut").rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path
    assert (out / "sut" / "suite-ca.pem").read_bytes() == (out / "suite-pki" / "ca.pem").read_bytes()


def assert_setup_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 4, output[-3000:]
    for needle in needles:
        assert needle in output, output[-3000:]
    assert " passed" not in result.stdout and " failed" not in result.stdout  # no verdict at all


def test_a_command_sut_that_dies_stops_the_run_as_a_setup_error(tmp_path):
    port = free_port()
    manifest = write_manifest(tmp_path, connector=command_connector(tmp_path, port, mode="exit"), control_port=port)
    assert_setup_error(run_suite(tmp_path, manifest, "-n", "2"), "the SUT did not start", "exited with code 3")


def test_a_taken_reference_address_is_a_setup_error_naming_the_field(tmp_path):
    port = free_port()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        manifest = write_manifest(tmp_path, connector=command_connector(tmp_path, port), control_port=port,
                                  reference_address=address)
        assert_setup_error(run_suite(tmp_path, manifest), "suite.referenceAddress", address)
    assert not (tmp_path / "starts.log").exists()  # the SUT was never started


def test_a_url_sut_that_does_not_answer_is_a_setup_error(tmp_path):
    port = free_port()
    manifest = write_manifest(tmp_path, connector={"type": "url"}, control_port=port,
                              reference_address="127.0.0.1:0", extra={"timeouts": {"startup": 1}})
    # Port 0 is refused for a url SUT before anything starts.
    assert_setup_error(run_suite(tmp_path, manifest), "give a fixed port")


def test_a_missing_suite_pki_is_a_setup_error(tmp_path):
    port = free_port()
    manifest = write_manifest(tmp_path, connector=command_connector(tmp_path, port), control_port=port)
    assert_setup_error(run_suite(tmp_path, manifest, "--mimi-suite-pki", str(tmp_path / "nowhere")),
                       "pki init")


def test_an_embedded_sut_that_cannot_start_in_a_worker_is_a_setup_error(tmp_path):
    manifest = tmp_path / "reference.yaml"
    manifest.write_text(yaml.safe_dump({
        "manifestVersion": 1, "name": "broken reference", "domains": ["sut.mimi.test"], "roles": ["hub"],
        "connector": {"type": "reference", "variants": ["no-such-variant"]},
    }))
    assert_setup_error(run_suite(tmp_path, manifest, "-n", "2"), "the SUT did not start")


# A vendor's server, played by the reference peer: configured from the hand-off alone.
VENDOR_LAUNCHER = '''
import os, sys
from pathlib import Path
import yaml

here = Path(__file__).resolve().parent
trust = here / "trust.pem"
trust.write_bytes(Path(os.environ["MIMI_CONFORMANCE_SUITE_CA"]).read_bytes() + (here / "ca.pem").read_bytes())
config = {
    "listen": {"address": "127.0.0.1", "port": int(sys.argv[1])},
    "tls": {"ca": str(trust)},
    "providers": [{"domain": "sut.example", "cert": str(here / "sut.example.pem"),
                   "key": str(here / "sut.example.key")}],
    "consent_mode": "immediate",
    "control": {"address": "127.0.0.1", "port": int(sys.argv[2])},
    "peers": {"*.ref.test": os.environ["MIMI_CONFORMANCE_REFERENCE_ADDRESS"]},
}
(here / "peer.yaml").write_text(yaml.safe_dump(config))
os.execv(sys.executable, [sys.executable, "-m", "reference_peer.cli", "serve", "--config", str(here / "peer.yaml")])
'''


def test_a_vendor_server_reaches_each_workers_reference_peers_through_the_one_address(tmp_path):
    from reference_peer.pki import write_test_pki

    write_test_pki(tmp_path, ["sut.example"])  # the vendor's own CA and certificate
    (tmp_path / "launch.py").write_text(VENDOR_LAUNCHER)
    mimi_port, control_port = free_port(), free_port()
    manifest = tmp_path / "sut.yaml"
    manifest.write_text(yaml.safe_dump({
        "manifestVersion": 1, "name": "vendor server", "domains": ["sut.example"],
        "mimi": {"endpoints": {"sut.example": f"127.0.0.1:{mimi_port}"}, "ca": "ca.pem"},
        "roles": ["hub", "follower"], "consentMode": "immediate",
        "control": {"url": f"http://127.0.0.1:{control_port}"},
        "connector": {"type": "command", "argv": [sys.executable, "launch.py", str(mimi_port), str(control_port)]},
        "suite": {"referenceAddress": "127.0.0.1:0"},
    }))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "conformance/scenarios/test_consent_core.py", "-p", "no:cacheprovider",
         "-q", "-n", "2", "--sut", str(manifest), "--mimi-output", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "FAIL" not in result.stdout and "HARNESS_ERROR" not in result.stdout
    address = yaml.safe_load((tmp_path / "out" / "sut" / "reference-peers.yaml").read_text())["*.ref.test"]
    sut_log = (tmp_path / "out" / "logs" / "sut.stderr.log").read_text()
    # The reference followers were reached at the one address, by their own names (each worker has its own).
    assert f"https://{address}/v1/" in sut_log
    assert "follower.ref.test" in sut_log or "follower-1.ref.test" in sut_log
