"""Setup mistakes are never verdicts: each one, made the way a vendor would make it, stops
``mimi-conformance preflight`` (or ``run``, which preflights first) with exit 2, one sentence on stderr
that names what is wrong and the fix, and no results.json.

One correctly configured external SUT (``reference-peer serve``, see test_preflight.py) serves every
case that needs a server; each case breaks one thing in a copy of its manifest, or in what the suite is
given. Control-only cases use tests/harness/fake_sut.py as a ``command`` SUT.
"""

from __future__ import annotations

import dataclasses
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_preflight import ExternalSut, free_port, start_external_sut

from conformance.cli import main
from conformance.harness.suite_pki import SuitePki

FAKE_SUT = Path(__file__).resolve().parent.parent / "harness" / "fake_sut.py"
UNSET_TOKEN_VARIABLE = "MIMI_CONFORMANCE_TEST_TOKEN_NEVER_SET"


@dataclasses.dataclass(frozen=True)
class Mistake:
    name: str
    diagnosis: str | tuple[str, ...]  # a distinctive fragment of the sentence (any of a tuple)
    change: Callable[[dict[str, Any], ExternalSut], None] | None = None  # edits a copy of the good manifest
    command: str = "preflight"  # or "run" (which preflights first)
    extra: Callable[[ExternalSut, Path], list[str]] | None = None  # more arguments
    # "preflight": stopped before pytest; "harness": run --no-preflight, stopped by the plugin (pytest exit 4)
    stopped_by: str = "preflight"
    environment: dict[str, str] = dataclasses.field(default_factory=dict)  # set for this mistake only


def _set(*path: str, value: Any) -> Callable[[dict[str, Any], ExternalSut], None]:
    def change(document: dict[str, Any], sut: ExternalSut) -> None:
        node = document
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value(sut) if callable(value) else value

    return change


def _not_pem(document: dict[str, Any], sut: ExternalSut) -> None:
    (sut.folder / "not-a-ca.pem").write_text("this is the CA, trust me\n", encoding="utf-8")
    document["mimi"]["ca"] = "not-a-ca.pem"


def _control_down(document: dict[str, Any], sut: ExternalSut) -> None:
    document["control"]["url"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    document["timeouts"]["startup"] = 1


def _command(*args: str, startup: float = 20, **connector: Any) -> Callable[[dict[str, Any], ExternalSut], None]:
    """A command SUT on a fresh control port (a long startup deadline: these SUTs fail before it)."""

    def change(document: dict[str, Any], sut: ExternalSut) -> None:
        port = free_port()
        argv = [a.replace("{port}", str(port)).replace("{python}", sys.executable).replace("{fake}", str(FAKE_SUT))
                for a in args]
        document["connector"] = {"type": "command", "argv": argv, **connector}
        document["control"] = {"url": f"http://127.0.0.1:{port}"}
        document["suite"] = {"referenceAddress": "127.0.0.1:0"}
        document["timeouts"]["startup"] = startup

    return change


FAKE = ("{python}", "{fake}", "--control-port", "{port}")
NO_PREFLIGHT = ["--no-preflight", "-k", "test_directory_is_served_as_json_naming_https_endpoints"]


def _image(document: dict[str, Any], sut: ExternalSut) -> None:
    for key in ("mimi", "control"):
        document.pop(key)
    document["connector"] = {"type": "image", "image": "example/mimi-server:1"}
    document["suite"] = {"referenceAddress": "127.0.0.1:0"}


def _other_suite_pki(sut: ExternalSut, tmp: Path) -> list[str]:
    # A suite CA the SUT was never told to trust: its client certificates are refused.
    return ["--suite-pki", str(SuitePki.init(tmp / "another-suite-pki").directory)]


def _empty_folder(tmp: Path) -> Path:
    (tmp / "empty").mkdir(exist_ok=True)
    return tmp / "empty"


def _empty_pki_folder(document: dict[str, Any], sut: ExternalSut) -> None:
    (sut.folder / "empty").mkdir(exist_ok=True)
    document["suite"]["pki"] = "empty"


def _moved_reference_address(document: dict[str, Any], sut: ExternalSut) -> None:
    # The SUT still maps *.ref.test to the address it was configured with; the suite listens elsewhere.
    document["suite"]["referenceAddress"] = f"127.0.0.1:{free_port()}"
    document["timeouts"]["poll"] = 2


MISTAKES = [
    Mistake("mimi.ca is not a PEM certificate", "is not a PEM certificate: give the CA that issued", _not_pem),
    Mistake("mimi.ca is a CA that did not issue the SUT's certificate", "certificate does not verify against mimi.ca",
            _set("mimi", "ca", value="suite-pki/ca.pem")),
    Mistake("the MIMI port has nothing listening", "connection refused: is the server listening there?",
            _set("mimi", "endpoints", "sut.example", value=lambda _: f"127.0.0.1:{free_port()}"), command="run"),
    Mistake("the control API is down", "did not answer GET /v1/info within 1s (ControlUnreachable",
            _control_down),
    Mistake("a command SUT never becomes healthy", "(timeouts.startup)", _command(*FAKE, "--mode", "never", startup=1)),
    Mistake("a command SUT exits at once", "exited with code 3 before its control API answered",
            _command(*FAKE, "--mode", "exit")),
    Mistake("argv[0] is not found", "connector.argv[0] './no-such-server' cannot be run",
            _command("./no-such-server", "--control-port", "{port}")),
    Mistake("connector.cwd is not found", "does not exist: create it or fix connector.cwd",
            _command(*FAKE, cwd="no-such-folder")),
    Mistake("a relative config path in argv is not in the manifest's folder", "configs/peer.yaml",
            _command("{python}", "-m", "reference_peer.cli", "serve", "--config", "configs/peer.yaml")),
    Mistake("the url SUT does not trust the suite CA", "refuses the suite's client certificate: trust the suite CA", extra=_other_suite_pki),
    Mistake("the SUT cannot reach the reference address", "sent no request to follower.ref.test within 2s",
            _moved_reference_address),
    Mistake("getInfo roles differ from the manifest", "GET /v1/info says roles ['follower', 'hub'] but the manifest "
            "says ['hub']", _set("roles", value=["hub"])),
    Mistake("control.operations differ from getInfo", "control.operations: only in manifest [], only in getInfo",
            _set("control", "operations", value=["getInfo", "createUser", "createRoom", "getRoom", "addParticipant",
                                                  "sendMessage", "listReceivedMessages"])),
    Mistake("control.tokenEnv is unset", f"{UNSET_TOKEN_VARIABLE} is not set: export it",
            _set("control", "tokenEnv", value=UNSET_TOKEN_VARIABLE), command="run"),
    Mistake("an invalid manifest field", "features[0]: 'telepathy' is not one of", _set("features", value=["telepathy"])),
    Mistake("an unknown profile", "--profile: unknown profile(s) ['no-such-profile']", command="run",
            extra=lambda sut, tmp: ["--profile", "no-such-profile"]),
    Mistake("suite.pki names a folder without a PKI", "suite.pki: there is no suite PKI in", _empty_pki_folder),
    Mistake("suite.referenceAddress is in use", "cannot listen on suite.referenceAddress",
            _set("suite", "referenceAddress", value=lambda _: f"127.0.0.1:{_BUSY.getsockname()[1]}")),
    # No engine, even on a machine that has one: the Docker SDK looks only where DOCKER_HOST says.
    Mistake("the image connector without testcontainers or a Docker engine", ("testcontainers", "Docker engine"),
            _image, environment={"DOCKER_HOST": "unix:///nonexistent/docker.sock"}),
    # Without preflight the harness finds the same mistakes, and run still says them in one sentence.
    Mistake("without preflight: a command SUT exits at once", "the SUT did not start: sut exited with code 3",
            _command(*FAKE, "--mode", "exit"), command="run", extra=lambda sut, tmp: NO_PREFLIGHT,
            stopped_by="harness"),
    Mistake("without preflight: --suite-pki names a folder without a PKI", "suite PKI error: there is no suite PKI in",
            command="run", extra=lambda sut, tmp: ["--suite-pki", str(_empty_folder(tmp)), *NO_PREFLIGHT],
            stopped_by="harness"),
    Mistake("without preflight: getInfo roles differ", "SUT configuration error: the SUT manifest and GET /v1/info "
            "disagree: roles", _set("roles", value=["hub"]), command="run", extra=lambda sut, tmp: NO_PREFLIGHT,
            stopped_by="harness"),
]

_BUSY = socket.socket()  # a listening socket holding an address, for the "in use" case


@pytest.fixture(scope="module")
def external_sut(tmp_path_factory):
    sut = start_external_sut(tmp_path_factory.mktemp("external-sut"))
    _BUSY.bind(("127.0.0.1", 0))
    _BUSY.listen()
    yield sut
    _BUSY.close()
    sut.stop()


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.name for m in MISTAKES])
def test_a_setup_mistake_stops_with_one_sentence_and_no_results(mistake: Mistake, external_sut, tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.delenv(UNSET_TOKEN_VARIABLE, raising=False)
    for name, value in mistake.environment.items():
        monkeypatch.setenv(name, value)
    manifest = external_sut.variant(mistake.name.replace(" ", "-").replace("/", "-"),
                                    (lambda d: mistake.change(d, external_sut)) if mistake.change else None)
    out = tmp_path / "out"
    args = [mistake.command, "--sut", str(manifest), "--out", str(out)]
    args += mistake.extra(external_sut, tmp_path) if mistake.extra else []

    code = main(args)

    captured = capsys.readouterr()
    assert code == 2, captured.out + captured.err
    fragments = mistake.diagnosis if isinstance(mistake.diagnosis, tuple) else (mistake.diagnosis,)
    assert any(fragment in captured.err for fragment in fragments), captured.err
    assert len(captured.err.strip().splitlines()) == 1, captured.err  # one sentence, not a log tail
    assert not (out / "results.json").exists()
    if mistake.stopped_by == "preflight":
        assert not (out / "pytest.log").exists()  # pytest never started
    else:
        assert (out / "pytest.log").exists()
        checks = out / "checks.jsonl"
        assert not checks.exists() or '"kind": "check"' not in checks.read_text(encoding="utf-8")


def test_the_good_manifest_passes_so_each_mistake_is_the_only_difference(external_sut, tmp_path, capsys):
    assert main(["preflight", "--sut", str(external_sut.manifest), "--out", str(tmp_path / "out")]) == 0, \
        capsys.readouterr().err
