"""docs/vendor-guide.md, followed literally: "Test your own server" works as written.

The marked commands and files of the guide (vendor_guide_steps.py) are run and written in a temporary
folder, with free ports for the guide's fixed ones and nothing else changed: the suite PKI, the example
server's certificate and peer.yaml, the server started as its own process (`reference-peer serve`),
preflight, a run against the `url` manifest with -n 2, then the `command` manifest with -n 2 (the suite
starts the server). Each run must judge like a run of the embedded reference SUT with the same seed:
no FAIL, no HARNESS_ERROR, and per check the same verdict.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from pathlib import Path

import pytest
from vendor_guide_steps import GUIDE, GUIDE_PORTS, GuideError, GuideRunner, Step, free_port, parse_guide

from conformance.run import DEFAULT_TIMEOUT_TOTAL

BIN_DIR = Path(sys.executable).parent
COMMAND_TIMEOUT = 600.0  # one command of the guide; a full run takes about a minute on 2 idle cores
SERVER_READY = re.compile(r"^control \S+ at https?://", re.MULTILINE)
# Checks whose verdict may differ from the embedded run because the guide's server is set up
# differently (check ID -> why). The guide's server mirrors the embedded SUT's settings, so none.
EXPECTED_DIFFERENCES: dict[str, str] = {}


def _option(command: str, name: str) -> str | None:
    words = shlex.split(command)
    return words[words.index(name) + 1] if name in words and words.index(name) + 1 < len(words) else None


def _is_suite_run(command: str) -> bool:
    return shlex.split(command)[:2] == ["mimi-conformance", "run"]


def _verdicts(out: Path) -> dict[str, str]:
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return {check["check_id"]: check["verdict"] for check in results["checks"]}


@pytest.fixture(scope="module")
def steps():
    return parse_guide(GUIDE.read_text(encoding="utf-8"))


def test_guide_marks_every_step(steps) -> None:
    """The guide marks, in order, what a vendor does; the test below follows exactly these steps."""
    kinds = [(s.kind, s.name) for s in steps]
    assert ("file", "peer.yaml") in kinds and ("file", "sut.yaml") in kinds and ("file", "sut-command.yaml") in kinds
    assert [k for k, _ in kinds].count("serve") == 1 and [k for k, _ in kinds].count("stop") == 1
    commands = [c for s in steps if s.kind == "run" for c in s.commands]
    assert commands[0].startswith("mimi-conformance pki init ")
    assert any(c.startswith("reference-peer pki ") for c in commands)
    assert any(c.startswith("mimi-conformance preflight --sut sut.yaml") for c in commands)
    runs = [c for c in commands if _is_suite_run(c)]
    assert [_option(c, "--sut") for c in runs] == ["sut.yaml", "sut-command.yaml"]
    assert all(_option(c, "-n") == "2" and _option(c, "--out") and _option(c, "--seed") for c in runs)
    serve = next(s for s in steps if s.kind == "serve")
    assert serve.commands == ["reference-peer serve --config peer.yaml"]
    # The server is stopped before the suite starts its own copy (same ports).
    order = [s.kind for s in steps]
    stop_at = order.index("stop")
    assert order.index("serve") < stop_at
    assert any(_option(c, "--sut") == "sut-command.yaml" for s in steps[stop_at:] if s.kind == "run" for c in s.commands)


def test_guide_lists_the_required_operations_of_the_contract() -> None:
    """Step 5a's table is the contract's requiredFor, per role (reference_peer/control/openapi.yaml)."""
    from reference_peer.control import load_openapi

    required: dict[str, set[str]] = {}
    for item in load_openapi()["paths"].values():
        for spec in item.values():
            if isinstance(spec, dict) and "operationId" in spec:
                for role in spec.get("x-mimi-conformance", {}).get("requiredFor", ()):
                    required.setdefault(role, set()).add(spec["operationId"])
    text = GUIDE.read_text(encoding="utf-8")
    both = re.search(r"^\| hub and follower \| (.*) \|$", text, re.MULTILINE)
    hub = re.search(r"^\| hub \| also (.*) \|$", text, re.MULTILINE)
    assert both and hub, "docs/vendor-guide.md step 5a lost its table of required operations"
    listed_both = set(re.findall(r"`(\w+)`", both.group(1)))
    listed_hub = set(re.findall(r"`(\w+)`", hub.group(1)))
    assert listed_both == required["hub"] & required["follower"]
    assert listed_hub == required["hub"] - required["follower"]
    assert required["follower"] <= listed_both


@pytest.mark.parametrize("name", ["sut.yaml", "sut-command.yaml"])
def test_guide_server_claims_what_the_embedded_sut_claims(steps, name) -> None:
    """The guide's example server is the reference peer, so its manifest claims what the embedded SUT's
    does; that is why both runs must judge alike (test_guide_run_judges_like_the_embedded_run)."""
    import yaml

    from conformance.harness.manifest import reference_manifest

    guide = yaml.safe_load(next(s.text for s in steps if s.kind == "file" and s.name == name))
    embedded = reference_manifest().document
    for key in ("roles", "consentMode", "hubTransfer"):
        assert guide.get(key) == embedded.get(key), f"{name} {key}: {guide.get(key)}, embedded {embedded.get(key)}"
    assert sorted(guide.get("features", [])) == sorted(embedded.get("features", [])), name


@pytest.mark.parametrize("command", ["mimi-conformance preflight --sut sut.yaml",
                                     "mimi-conformance run --sut sut.yaml -n 2 --seed 1 --out out"])
def test_guide_setup_mistake_is_exit_2_with_the_fix(steps, tmp_path, command) -> None:
    """The guide's first trouble-shooting row: the manifest of step 5 without step 1 (no suite PKI) is a
    set-up problem: exit 2, one sentence naming `pki init`, no results; never a verdict."""
    runner = GuideRunner(tmp_path, BIN_DIR, {}, command_timeout=120)
    runner.run(next(s for s in steps if s.kind == "run" and s.commands[0].startswith("reference-peer pki ")))
    runner.write(next(s for s in steps if s.kind == "file" and s.name == "sut.yaml"))
    (result,) = runner.run(Step("run", 0, command + "\n", exit_codes=(2,)))
    assert "pki init" in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.fixture(scope="module")
def followed(steps, tmp_path_factory):
    """Follow the guide once; record each suite run's output folder, the first broken step, the time."""
    workdir = tmp_path_factory.mktemp("vendor")
    runner = GuideRunner(workdir, BIN_DIR, {port: free_port() for port in GUIDE_PORTS},
                         command_timeout=COMMAND_TIMEOUT)
    record: dict = {"workdir": workdir, "runs": {}, "error": None, "started": time.monotonic()}
    try:
        for step in steps:
            if step.kind == "file":
                runner.write(step)
            elif step.kind == "serve":
                runner.serve(step, SERVER_READY, timeout=60)
            elif step.kind == "stop":
                runner.stop()
            else:
                for result in runner.run(step):
                    if _is_suite_run(result.command):
                        record["runs"][_option(result.command, "--sut")] = (
                            workdir / _option(result.command, "--out"), result)
    except GuideError as exc:
        record["error"] = str(exc)
    finally:
        runner.stop()
        record["seconds"] = time.monotonic() - record["started"]
        if runner.server is None and (workdir / "server.log").exists():
            record["server_log"] = (workdir / "server.log").read_text(encoding="utf-8", errors="replace")[-3000:]
    print(f"\nfollowing docs/vendor-guide.md took {record['seconds']:.0f} s: "
          + ", ".join(f"{r.command!r} {r.seconds:.0f} s" for r in runner.results))
    return record


@pytest.fixture(scope="module")
def embedded(followed, embedded_verdicts):
    """The embedded reference SUT, run like the guide's runs (-n 2, the same seed)."""
    guide_runs = [result.command for _, result in followed["runs"].values()]
    if not guide_runs:
        pytest.skip("the guide's runs did not happen")
    return embedded_verdicts(_option(guide_runs[0], "--seed"))


def test_following_the_guide_works(followed) -> None:
    assert followed["error"] is None, followed["error"]
    assert set(followed["runs"]) == {"sut.yaml", "sut-command.yaml"}


@pytest.mark.parametrize("manifest", ["sut.yaml", "sut-command.yaml"])
def test_guide_run_has_no_fail_and_no_harness_error(followed, manifest) -> None:
    if manifest not in followed["runs"]:
        pytest.fail(f"the guide's run with {manifest} did not happen: {followed['error']}")
    out, result = followed["runs"][manifest]
    timeout_total = float(_option(result.command, "--timeout-total") or DEFAULT_TIMEOUT_TOTAL)
    assert result.seconds < timeout_total, f"{result.command} took {result.seconds:.0f} s"
    assert (out / "results.json").is_file(), f"{result.command} wrote no results.json:\n{result.output[-3000:]}"
    verdicts = _verdicts(out)
    bad = {check: verdict for check, verdict in verdicts.items() if verdict in ("FAIL", "HARNESS_ERROR")}
    messages = {c["check_id"]: c["message"] for c in json.loads((out / "results.json").read_text())["checks"]}
    assert not bad, "\n".join(f"{verdict} {check}: {messages[check][:400]}" for check, verdict in sorted(bad.items()))


@pytest.mark.parametrize("manifest", ["sut.yaml", "sut-command.yaml"])
def test_guide_run_judges_like_the_embedded_run(followed, embedded, manifest) -> None:
    if manifest not in followed["runs"]:
        pytest.fail(f"the guide's run with {manifest} did not happen: {followed['error']}")
    verdicts = _verdicts(followed["runs"][manifest][0])
    differences = {
        check: (embedded.get(check), verdicts.get(check))
        for check in sorted(set(embedded) | set(verdicts))
        if embedded.get(check) != verdicts.get(check) and check not in EXPECTED_DIFFERENCES
    }
    assert not differences, "\n".join(
        f"{check}: embedded {was}, guide {now}" for check, (was, now) in differences.items())
