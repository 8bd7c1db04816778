"""Hostile SUTs: the suite against servers that misbehave on purpose ("Prove the verdicts", part 3).

Each case starts a hostile SUT (tests/hostile/hostile_sut.py) and runs two real checks against it
in a separate pytest process, as a vendor would (``--sut manifest --mimi-results``):

* the discovery check ``test_directory_is_served_as_json_naming_https_endpoints``
  (conformance/scenarios/test_discovery.py: GET of the directory over mutual TLS), and
* ``test_a_room_created_on_the_sut_is_hosted_there`` (hostile_checks.py: createUser, createRoom and
  getRoom through the ``sut_party`` fixture, i.e. ``sut.require_control()``).

Per case the test asserts that the run ends within ``RUN_BOUND`` seconds (a hard kill at
``HARD_KILL`` would show a hang as a failure, never as a stuck test run), that each check's own
duration stays within ``CHECK_BOUND`` (derived from the manifest's timeouts), and that each check
ends with the expected verdict and a message naming what happened. A check the misbehaviour does
not reach is expected to PASS (the harness must blame precisely), and a control API answering 501
makes the control check NOT_APPLICABLE (docs/control-api.md: 501 means "not implemented"). A control
API that never answers getInfo is a set-up problem, never a verdict: the run stops before any check
with pytest's usage-error exit (4), no check result, and one sentence naming what happened.

The cases run in parallel (each pytest process mostly waits on timeouts); the table of results
is printed at the end of the module, and written to ``hostile-suts.txt`` in the module's temp dir.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hostile_sut import HostileSut, make_tls_files

from conformance.plugin import SCENARIOS_DIR

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DIRECTORY = "test_directory_is_served_as_json_naming_https_endpoints"
ROOM = "test_a_room_created_on_the_sut_is_hosted_there"
CHECKS = [f"{SCENARIOS_DIR / 'test_discovery.py'}::{DIRECTORY}", str(HERE / "hostile_checks.py")]

TIMEOUTS = {"startup": 3, "request": 2, "control": 2, "poll": 2, "shutdown": 2}
# A check's worst case: the startup health check (its deadline plus one last probe), one MIMI
# exchange with the session's own guard (request + 5 s), three control calls; plus 5 s of slack
# for a loaded machine.
CHECK_BOUND = TIMEOUTS["startup"] + TIMEOUTS["control"] + TIMEOUTS["request"] + 5 + 3 * TIMEOUTS["control"] + 5
# The whole pytest process: interpreter and plugin start (several seconds on a busy 2-core box),
# both checks, and the SUT's shutdown grace.
RUN_BOUND = 60.0
HARD_KILL = 150.0
WORKERS = 6

FAIL, HARNESS_ERROR, PASS, NOT_APPLICABLE = "FAIL", "HARNESS_ERROR", "PASS", "NOT_APPLICABLE"
SETUP_ERROR = "setup error"  # not a verdict: the run stops before any check (pytest exit 4)


@dataclasses.dataclass(frozen=True)
class Expect:
    verdict: str
    words: tuple[str, ...] = ()  # each must appear in the message (case-insensitive); "a|b": either a or b


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    misbehaviour: str
    directory: Expect
    room: Expect
    mimi: str = "good"
    control: str = "good"
    info: str = "good"
    connector: str = "url"


def ok() -> Expect:
    return Expect(PASS)


def never_healthy(*words: str) -> Expect:
    return Expect(SETUP_ERROR, ("never became healthy", "/v1/info", *words))


CASES = [
    # --- reaching the MIMI server -----------------------------------------------------------
    Case("mimi-refused", "nothing listening on the MIMI port", mimi="refuse",
         directory=Expect(FAIL, ("cannot connect",)), room=ok()),
    Case("handshake-stall", "TCP accepted, TLS handshake never answered", mimi="stall-handshake",
         directory=Expect(FAIL, ("PeerTimeout", "no connection and TLS handshake within")), room=ok()),
    Case("plaintext", "TLS handshake failure (cleartext HTTP on the MIMI port)", mimi="plaintext",
         directory=Expect(FAIL, ("TLS failure",)), room=ok()),
    Case("untrusted-cert", "TLS handshake failure (certificate from an unknown CA)", mimi="untrusted-cert",
         directory=Expect(FAIL, ("TLS failure", "certificate verify failed")), room=ok()),
    Case("wrong-name", "wrong certificate name (CA-signed, for other.example)", mimi="wrong-name",
         directory=Expect(FAIL, ("TLS failure", "Hostname mismatch")), room=ok()),
    Case("rejects-client-cert", "server rejects the suite's client certificate", mimi="reject-client-cert",
         # TLS 1.3: the alert, or a reset that overtakes it; either way the message says what it may mean.
         directory=Expect(FAIL, ("refused our client certificate|how a server rejects our client certificate",)),
         room=ok()),
    # --- the same misbehaviour from the MIMI server (discovery) and the control API (operations) --
    Case("silent", "a response that never comes", mimi="silent", control="silent",
         directory=Expect(FAIL, ("no complete response within 2",)),
         room=Expect(HARNESS_ERROR, ("control API", "createUser", "no complete answer within 2"))),
    Case("trickle-head", "a trickling response (status line and headers, 1 byte / 0.3 s)",
         mimi="trickle", control="trickle",
         directory=Expect(FAIL, ("no complete response within 2",)),
         room=Expect(HARNESS_ERROR, ("createUser", "no complete answer within 2"))),
    Case("trickle-body", "a trickling response (body, 1 byte / 0.3 s)", mimi="trickle-body", control="trickle-body",
         directory=Expect(FAIL, ("no complete response within 2",)),
         room=Expect(HARNESS_ERROR, ("createUser", "no complete answer within 2"))),
    Case("endless-body", "an endless (chunked) body", mimi="endless-body", control="endless-body",
         directory=Expect(FAIL, ("PeerResponseTooLarge", "byte cap")),
         room=Expect(HARNESS_ERROR, ("createUser", "byte cap"))),
    Case("endless-headers", "endless header lines", mimi="endless-headers", control="endless-headers",
         directory=Expect(FAIL, ("not a valid HTTP answer",)),
         room=Expect(HARNESS_ERROR, ("createUser", "not a valid HTTP answer"))),
    Case("huge-declared", "a 10 MiB body (Content-Length: 10485760)", mimi="huge-declared", control="huge-declared",
         directory=Expect(FAIL, ("10485760-byte body", "cap")),
         room=Expect(HARNESS_ERROR, ("createUser", "10485760-byte body", "cap"))),
    Case("huge-chunked", "a 10 MiB body (chunked, size not declared)", mimi="huge-chunked", control="huge-chunked",
         directory=Expect(FAIL, ("PeerResponseTooLarge", "byte cap")),
         room=Expect(HARNESS_ERROR, ("createUser", "byte cap"))),
    Case("garbage", "garbage bytes instead of HTTP", mimi="garbage", control="garbage",
         directory=Expect(FAIL, ("not a valid HTTP answer",)),
         room=Expect(HARNESS_ERROR, ("createUser", "not a valid HTTP answer"))),
    Case("http-500", "HTTP 500 with an HTML body", mimi="500", control="500",
         directory=Expect(FAIL, ("HTTP 500",)),
         room=Expect(HARNESS_ERROR, ("createUser", "HTTP 500"))),
    Case("redirect-loop", "a redirect loop (302 to the same URL)", mimi="redirect", control="redirect",
         directory=Expect(FAIL, ("HTTP 302",)),
         room=Expect(HARNESS_ERROR, ("createUser", "HTTP 302 redirect", "not followed"))),
    Case("reset-mid-body", "TCP reset mid-body (1000 of 100000 bytes)", mimi="reset", control="reset",
         directory=Expect(FAIL, ("connection broken in the middle of the answer", "1000 of 100000")),
         room=Expect(HARNESS_ERROR, ("createUser", "reset"))),
    Case("close-mid-body", "connection closed mid-body (1000 of 100000 bytes)", mimi="close-mid-body",
         control="close-mid-body",
         directory=Expect(FAIL, ("not a valid HTTP answer", "1000 of 100000")),
         room=Expect(HARNESS_ERROR, ("createUser", "received 1000 bytes, expected 100000"))),
    # --- the directory ------------------------------------------------------------------------
    Case("directory-missing", "missing directory (404)", mimi="404",
         directory=Expect(FAIL, ("HTTP 404",)), room=ok()),
    Case("directory-invalid", "invalid directory (200, not JSON)", mimi="not-json",
         directory=Expect(FAIL, ("not a JSON object",)), room=ok()),
    # --- the control API ----------------------------------------------------------------------
    Case("control-down", "control API down (nothing listening)", control="down", info="down",
         directory=never_healthy("ConnectError"), room=never_healthy("ConnectError")),
    Case("info-nonsense", "control API answers nonsense (getInfo: 200, not JSON)", info="not-json",
         directory=never_healthy("not JSON"), room=never_healthy("not JSON")),
    Case("info-silent", "control API never answers getInfo", info="silent",
         directory=never_healthy("no complete answer within 2"), room=never_healthy("no complete answer within 2")),
    Case("info-wrong-shape", "control API answers getInfo with a JSON array", info="wrong-shape",
         directory=never_healthy("JSON array"), room=never_healthy("JSON array")),
    Case("ops-nonsense", "control API answers operations with nonsense (200, not JSON)", control="not-json",
         directory=ok(), room=Expect(HARNESS_ERROR, ("createUser", "not JSON"))),
    Case("ops-wrong-shape", "control API answers createUser with a JSON array", control="wrong-shape",
         directory=ok(), room=Expect(HARNESS_ERROR, ("createUser", "JSON array", "contract has an object"))),
    Case("ops-501", "control API answers 501 to every operation", control="501",
         directory=ok(), room=Expect(NOT_APPLICABLE, ("createUser", "501 not implemented"))),
    # --- a spawned SUT (command connector) ------------------------------------------------------
    Case("command-crash", "SUT process dies at the first MIMI connection (command connector)", mimi="crash",
         connector="command",
         directory=Expect(FAIL, ("SUT misbehaviour",)),
         room=Expect(HARNESS_ERROR, ("getInfo|createUser", "ConnectError", "SUT process has exited with code 7",
                                     "crashing on purpose"))),
    Case("command-info-garbage", "spawned SUT's control API speaks garbage (command connector)",
         info="garbage", connector="command",
         directory=never_healthy("not a valid HTTP answer"), room=never_healthy("not a valid HTTP answer")),
]


@dataclasses.dataclass
class Outcome:
    case: Case
    seconds: float
    returncode: int | None
    results: dict[str, dict]  # check name -> its result line
    output: str
    leftover: str | None = None  # a command SUT still listening after the run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def write_manifest(path: Path, ca: Path, mimi_port: int, control_port: int, connector: str) -> None:
    path.write_text(textwrap.dedent(f"""
        manifestVersion: 1
        name: hostile SUT
        domains: [sut.example]
        mimi: {{endpoints: {{sut.example: "127.0.0.1:{mimi_port}"}}, ca: "{ca}"}}
        roles: [hub, follower]
        control: {{url: "http://127.0.0.1:{control_port}"}}
        connector: {connector}
        suite: {{referenceAddress: "127.0.0.1:{free_port()}"}}
        timeouts: {json.dumps(TIMEOUTS)}
    """))


def run_suite(directory: Path, manifest: Path) -> tuple[float, int | None, dict[str, dict], str]:
    results = directory / "results.jsonl"
    argv = [sys.executable, "-m", "pytest", *CHECKS, "-p", "no:cacheprovider", "-p", "conformance.plugin", "-q",
            "--sut", str(manifest), "--mimi-results", str(results), "--mimi-output", str(directory / "run")]
    # Only the suite's own plugin: the project's venv also has hypothesis and schemathesis, whose
    # plugins cost seconds to import in each of the many pytest processes.
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=HARD_KILL)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
    seconds = time.monotonic() - started
    checks = {}
    if results.exists():
        for line in results.read_text().splitlines():
            record = json.loads(line)
            if record["kind"] == "check":
                checks[record["check_id"].rsplit("::", 1)[-1]] = record
    return seconds, process.returncode, checks, output.decode(errors="replace")


def run_case(case: Case, base: Path, ca: Path, tls) -> Outcome:
    directory = base / case.id
    directory.mkdir()
    manifest = directory / "sut.yaml"
    if case.connector == "url":
        with HostileSut(mimi=case.mimi, control=case.control, info_mode=case.info, tls=tls) as sut:
            write_manifest(manifest, ca, sut.mimi_port, sut.control_port, "{type: url}")
            seconds, code, checks, output = run_suite(directory, manifest)
        return Outcome(case, seconds, code, checks, output)
    mimi_port, control_port = free_port(), free_port()
    argv = [sys.executable, str(HERE / "hostile_sut.py"), "--mimi-port", str(mimi_port), "--control-port",
            str(control_port), "--cert", str(tls.cert), "--key", str(tls.key), "--mimi", case.mimi,
            "--control", case.control, "--info", case.info]
    write_manifest(manifest, ca, mimi_port, control_port, json.dumps({"type": "command", "argv": argv}))
    seconds, code, checks, output = run_suite(directory, manifest)
    leftover = None
    if listening(control_port):  # the connector must have ended the process group
        leftover = f"the spawned SUT still listens on {control_port} after the run"
    return Outcome(case, seconds, code, checks, output, leftover)


def shorten(message: str) -> str:
    """A verdict message for the table: without URLs, ports and the prefixes every row repeats."""
    message = message.removeprefix("SUT misbehaviour: ")
    message = re.sub(r" \(https://[^)]*\)", "", message)
    message = re.sub(r"GET http://127\.0\.0\.1:\d+/v1/info", "GET /v1/info", message)
    message = re.sub(r"https://sut\.example:\d+", "", message)
    message = message.replace("the SUT never became healthy: timed out after 3s waiting for GET /v1/info to answer",
                              "never healthy (3 s):")
    return message if len(message) <= 150 else message[:147] + "..."


def table(outcomes: list[Outcome]) -> str:
    lines = [f"{'misbehaviour':<66} {'verdicts (directory / room)':<30} {'run s':>6} {'checks s':>9}  diagnosis",
             "-" * 160]
    for outcome in outcomes:
        checks = [outcome.results.get(name, {}) for name in (DIRECTORY, ROOM)]
        verdicts = " / ".join(c.get("verdict", "(none)") for c in checks)
        durations = "/".join(f"{c.get('duration', 0):.1f}" for c in checks)
        messages = [c.get("message", "") for c in checks]
        failing = [m for m in messages if m] or ["(no message)"]
        if not outcome.results:  # a set-up problem: no verdict, the run's one sentence instead
            verdicts = f"no verdict (exit {outcome.returncode})"
            failing = [line for line in outcome.output.splitlines() if "never became healthy" in line][-1:] or failing
        diagnosis = " | ".join(shorten(m) for m in dict.fromkeys(failing))
        lines.append(f"{outcome.case.misbehaviour[:66]:<66} {verdicts:<30} {outcome.seconds:6.1f} {durations:>9}  "
                     f"{diagnosis}")
    lines.append(f"bounds: run < {RUN_BOUND:g} s, each check < {CHECK_BOUND:g} s; manifest timeouts {TIMEOUTS}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, hostile_tables) -> dict[str, Outcome]:
    base = tmp_path_factory.mktemp("hostile")
    ca, tls = make_tls_files(base / "pki")
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(run_case, case, base, ca, tls) for case in CASES]
        done = [future.result() for future in futures]
    text = table(done)
    (base / "hostile-suts.txt").write_text(text + "\n")
    hostile_tables.append(f"{text}\n(also in {base / 'hostile-suts.txt'})")
    return {outcome.case.id: outcome for outcome in done}


def test_the_cases_cover_the_misbehaviours_of_the_issue():
    assert len(CASES) >= 15
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_sut_gets_a_bounded_verdict_that_names_the_misbehaviour(case: Case, outcomes):
    outcome = outcomes[case.id]
    context = f"{case.misbehaviour}: run of {outcome.seconds:.1f}s, exit {outcome.returncode}\n{outcome.output[-3000:]}"
    assert outcome.seconds < RUN_BOUND, context
    assert outcome.leftover is None, outcome.leftover
    if case.directory.verdict == SETUP_ERROR:
        assert outcome.returncode == 4, context  # pytest's usage error: a set-up problem, reported as such
        assert outcome.results == {}, f"a set-up problem produced verdicts\n{context}"
        output = outcome.output.lower()
        for word in case.directory.words:
            assert any(w.lower() in output for w in word.split("|")), (word, context)
        return
    assert outcome.returncode in (0, 1), context  # 0: all passed, 1: some failed; never a crash or usage error
    for name, expect in ((DIRECTORY, case.directory), (ROOM, case.room)):
        assert name in outcome.results, f"no result for {name}\n{context}"
        result = outcome.results[name]
        assert result["duration"] < CHECK_BOUND, (name, result)
        assert result["verdict"] == expect.verdict, (name, result)
        for word in expect.words:
            message = result["message"].lower()
            assert any(w.lower() in message for w in word.split("|")), (name, word, result["message"])
