"""``mimi-conformance preflight`` against servers the suite did not start: a ``reference-peer serve``
process set up the way docs/vendor-guide.md tells a vendor (its own CA for its TLS certificate, the suite
CA trusted for client certificates, ``*.ref.test`` mapped to the suite's reference address), reached
through the ``url`` connector, or started by a ``command`` that configures it from the run's hand-off.
Every link holds, one line each; ``run`` preflights first; a refused request breaks the last link.
Setup mistakes are in test_setup_mistakes.py."""

from __future__ import annotations

import copy
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import conformance.preflight as preflight_module
from conformance.cli import main
from conformance.harness.suite_pki import SuitePki
from conformance.preflight import LINKS

SUT_DOMAIN = "sut.example"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclasses.dataclass
class ExternalSut:
    """A reference peer started outside the suite, and the manifest that describes it."""

    folder: Path
    document: dict[str, Any]
    suite_pki: Path
    process: subprocess.Popen[bytes]

    @property
    def manifest(self) -> Path:
        return self.folder / "sut.yaml"

    def variant(self, name: str, change=None) -> Path:
        """A manifest next to the good one (relative paths keep working), edited by ``change(document)``."""
        document = copy.deepcopy(self.document)
        if change is not None:
            change(document)
        path = self.folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_external_sut(folder: Path, *, faults: tuple[str, ...] = ()) -> ExternalSut:
    """``reference-peer serve`` as a vendor's server: certificates from ``reference-peer pki``, the suite CA
    trusted for client certificates, ``*.ref.test`` mapped to the reference address; with ``faults`` on."""
    folder.mkdir(parents=True, exist_ok=True)
    suite_pki = folder / "suite-pki"
    SuitePki.init(suite_pki)
    subprocess.run([sys.executable, "-m", "reference_peer.cli", "pki", "--out", str(folder / "certs"),
                    "--domain", SUT_DOMAIN], check=True, capture_output=True, timeout=60)
    mimi_port, control_port, reference_port = free_port(), free_port(), free_port()
    reference_address = f"127.0.0.1:{reference_port}"
    peer = {
        "listen": {"address": "127.0.0.1", "port": mimi_port},
        "tls": {"ca": str(suite_pki / "ca.pem")},
        "providers": [{"domain": SUT_DOMAIN, "cert": f"certs/{SUT_DOMAIN}.pem", "key": f"certs/{SUT_DOMAIN}.key"}],
        "consent_mode": "immediate",
        "control": {"address": "127.0.0.1", "port": control_port},
        "peers": {"*.ref.test": reference_address},
        "faults": list(faults),
    }
    (folder / "peer.yaml").write_text(yaml.safe_dump(peer, sort_keys=False), encoding="utf-8")
    log = open(folder / "sut.log", "wb")  # noqa: SIM115 - the process writes it until the fixture ends
    process = subprocess.Popen(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "reference_peer.cli", "serve", "--config", str(folder / "peer.yaml")],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    control_url = f"http://127.0.0.1:{control_port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            info = httpx.get(f"{control_url}/v1/info", timeout=2).json()
            break
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the external SUT did not start: {(folder / 'sut.log').read_text()}") from None
            time.sleep(0.1)
    document = {
        "manifestVersion": 1,
        "name": "external reference peer",
        "domains": [SUT_DOMAIN],
        "mimi": {"endpoints": {SUT_DOMAIN: f"127.0.0.1:{mimi_port}"}, "ca": "certs/ca.pem"},
        "roles": sorted(info["roles"]),
        "consentMode": "immediate",
        "control": {"url": control_url},
        "connector": {"type": "url"},
        "suite": {"pki": "suite-pki", "referenceAddress": reference_address},
        "timeouts": {"startup": 3, "request": 5, "control": 5, "poll": 5, "shutdown": 5},
    }
    sut = ExternalSut(folder, document, suite_pki, process)
    sut.variant("sut")
    return sut


@pytest.fixture(scope="module")
def external_sut(tmp_path_factory):
    sut = start_external_sut(tmp_path_factory.mktemp("external-sut"))
    yield sut
    sut.stop()


def test_every_link_holds_for_a_correctly_configured_url_sut(external_sut, tmp_path, capsys):
    code = main(["preflight", "--sut", str(external_sut.manifest), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()
    assert [line.split(":", 1)[0].split(None, 1)[1] for line in lines] == list(LINKS), captured.out
    assert all(line.startswith("ok ") for line in lines)
    assert "the SUT sent keyMaterial to follower.ref.test" in lines[-1]
    assert captured.err == ""
    assert not (tmp_path / "out" / "results.json").exists()


def test_the_embedded_reference_passes_every_link_it_has(tmp_path, capsys):
    code = main(["preflight", "--sut", "reference", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    # The embedded SUT reaches the reference peers directly: no reference address to check.
    expected = [link for link in LINKS if link != "reference address"]
    assert [line.split(":", 1)[0].split(None, 1)[1] for line in captured.out.splitlines()] == expected


def test_run_preflights_a_url_sut_then_runs_its_checks(external_sut, tmp_path, capsys):
    """``run`` preflights first, releases the reference address, and the run then binds it itself."""
    out = tmp_path / "run"
    code = main(["run", "--sut", str(external_sut.manifest), "--out", str(out), "--seed", "5", "--allow-untested",
                 "-k", "test_directory_is_served_as_json_naming_https_endpoints"])
    captured = capsys.readouterr()
    assert code in (0, 1), captured.err
    assert "preflight:" in captured.out
    assert "ok     SUT to reference peer" in captured.out
    assert (out / "results.json").exists()


def test_a_follower_sut_is_made_to_send_the_reference_hub_a_message(tmp_path, capsys, monkeypatch):
    """A follower-only SUT cannot host preflight's room: the reference hub adds a SUT user, and the SUT's
    message to the room is its request to the hub (the embedded SUT, made to play the follower here)."""
    monkeypatch.setattr(preflight_module, "trigger_role", lambda manifest: "follower")
    assert main(["preflight", "--sut", "reference", "--out", str(tmp_path / "out")]) == 0, capsys.readouterr().err
    last = capsys.readouterr().out.splitlines()[-1]
    assert "the SUT sent" in last and "to hub.ref.test" in last


# A vendor's start script: its configuration comes from what the suite hands a spawned SUT.
COMMAND_SUT = """\
import os, sys, yaml
handoff = os.environ["MIMI_CONFORMANCE_SUT_DIR"]
with open(os.path.join(handoff, "reference-peers.yaml"), encoding="utf-8") as file:
    peers = yaml.safe_load(file)
mimi_port, control_port = int(sys.argv[1]), int(sys.argv[2])
config = {
    "listen": {"address": "127.0.0.1", "port": mimi_port},
    "tls": {"ca": os.environ["MIMI_CONFORMANCE_SUITE_CA"]},
    "providers": [{"domain": "sut.example", "cert": "certs/sut.example.pem", "key": "certs/sut.example.key"}],
    "consent_mode": "immediate",
    "control": {"address": "127.0.0.1", "port": control_port},
    "peers": peers,
}
path = "command-peer.yaml"  # in the working directory, beside certs/
with open(path, "w", encoding="utf-8") as file:
    yaml.safe_dump(config, file)
os.execv(sys.executable, [sys.executable, "-m", "reference_peer.cli", "serve", "--config", path])
"""


def test_every_link_holds_for_a_command_sut_configured_from_the_handoff(external_sut, tmp_path, capsys):
    (external_sut.folder / "start-sut.py").write_text(COMMAND_SUT, encoding="utf-8")
    mimi_port, control_port = free_port(), free_port()

    def as_command(document):
        document["mimi"]["endpoints"]["sut.example"] = f"127.0.0.1:{mimi_port}"
        document["control"]["url"] = f"http://127.0.0.1:{control_port}"
        # Relative to the manifest's folder, the command's default working directory.
        document["connector"] = {"type": "command", "argv": [sys.executable, "start-sut.py", str(mimi_port),
                                                             str(control_port)]}
        document["suite"] = {"referenceAddress": "127.0.0.1:0"}  # any free port: the SUT is told which
        document["timeouts"]["startup"] = 30

    manifest = external_sut.variant("command-sut", as_command)
    code = main(["preflight", "--sut", str(manifest), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert [line.split(":", 1)[0].split(None, 1)[1] for line in captured.out.splitlines()] == list(LINKS)


def test_a_request_the_reference_peer_refuses_breaks_the_last_link_with_its_reason(tmp_path, capsys):
    """The request arrived, but breaking a transport rule: preflight names the rule and the way to have the
    checks judge it instead (--no-preflight)."""
    sut = start_external_sut(tmp_path / "sut", faults=("outgoing-from-display-name",))
    try:
        code = main(["preflight", "--sut", str(sut.manifest), "--out", str(tmp_path / "out")])
    finally:
        sut.stop()
    err = capsys.readouterr().err
    assert code == 2
    assert "the SUT's request reached follower.ref.test but was refused: malformed-from" in err
    assert "PROTO-TRANSPORT-FROM-ADDR-SPEC" in err and "--no-preflight" in err
