"""The operation -> checks table of docs/control-api.md (conformance.operations_table): generated from the
checks' ``operations`` markers, current in the docs, consistent with the contract and with what the checks
actually ask of the SUT in a run (``control_operations`` of each check's record)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conformance.harness.control import ControlClient, NotSupported, OperationRecord
from conformance.operations_table import (
    DOC_FILE,
    CheckOperations,
    MarkerError,
    collect,
    current_block,
    declared_operations,
    marker_problems,
    openapi_operations,
    render,
    replace_block,
    suggest_markers,
)
from conformance.selftest import ROOT_DIR, SCENARIOS_DIR, _pytest_env

# A few checks that between them call most kinds of operation, in both roles, and use optional ones.
RECORDED_MODULES = ("test_keymaterial.py", "test_removal.py", "test_discovery.py", "test_transport.py")
RECORDED_SELECTION = ("test_key_package_is_never_handed_out_twice or test_banned_user_cannot_be_readded_until_unbanned"
                      " or test_deleted_user_is_no_longer_found or test_request_without_client_certificate_is_refused")


@pytest.fixture(scope="module")
def checks() -> list[CheckOperations]:
    return collect()


@pytest.fixture(scope="module")
def operations() -> dict[str, tuple[str, ...]]:
    return openapi_operations()


def test_the_docs_block_is_the_generated_table(checks, operations):
    block = current_block(DOC_FILE.read_text(encoding="utf-8"))
    assert block == render(checks, operations), "stale: run `mimi-conformance operations --write`"


def test_every_check_declares_operations_of_the_contract(checks, operations):
    assert checks, "no check collected"
    assert marker_problems(checks, operations) == []


def test_the_hand_written_table_does_not_contradict_the_generated_one(checks, operations):
    """The hand-written table's "required for" column and its "(cannot be omitted)" cells match requiredFor,
    and its "if omitted" column says "none" exactly for the optional operations no check needs."""
    text = DOC_FILE.read_text(encoding="utf-8")
    hand_written = text[:text.index("### Which checks need each operation")]
    rows = re.findall(r"^\| `(\w+)` \| `[A-Z]+ [^`]+` \|[^|]*\|([^|]*)\|([^|]*)\|$", hand_written, re.M)
    assert {name for name, _, _ in rows} == set(operations)
    for name, required, if_omitted in rows:
        assert tuple(r.strip() for r in required.split(",") if r.strip()) == operations[name], name
        assert ("cannot be omitted" in if_omitted) == bool(operations[name]), name
        needed = any(name in c.needs for c in checks)
        assert if_omitted.strip().startswith("none") == (not needed and not operations[name]), name


def test_markers_resolve_per_role():
    markers = [(("createUser",), {"hub": ("createRoom",), "follower": ("getRoom",), "optional": ("listUserEvents",)}),
               (("sendMessage", "createUser"), {})]
    assert declared_operations(markers, "hub") == {"needs": ["createUser", "createRoom", "sendMessage"],
                                                   "optional": ["listUserEvents"]}
    assert declared_operations(markers, "follower")["needs"] == ["createUser", "getRoom", "sendMessage"]
    with pytest.raises(MarkerError, match="no role"):
        declared_operations(markers, "any")
    with pytest.raises(MarkerError, match="unknown keyword"):
        declared_operations([((), {"hubs": ("createRoom",)})], "hub")
    # An operation needed in the check's role is not also listed as optional.
    assert declared_operations([((), {"hub": ("x",), "optional": ("x",)})], "hub") == {"needs": ["x"], "optional": []}


def test_marker_problems_name_the_missing_marker_and_the_unknown_operation():
    found = marker_problems([CheckOperations("a::t", "hub", "a", False),
                             CheckOperations("b::t", "hub", "b", True, ("createUser", "makeCoffee"))],
                            {"createUser": ("hub",)})
    assert found == ["a::t: no operations marker (add @pytest.mark.operations(...), see conformance/operations_table.py)",
                     "b::t: operations marker names ['makeCoffee'], not operationIds of the contract"]


def test_the_block_is_replaced_and_the_rest_of_the_document_kept():
    document = "intro\n<!-- operations-table:start -->\nold\n<!-- operations-table:end -->\noutro\n"
    block = "<!-- operations-table:start -->\nnew\n<!-- operations-table:end -->\n"
    updated = replace_block(document, block)
    assert updated == "intro\n" + block + "outro\n"
    assert current_block(updated) == block


def test_the_minimal_sets_and_counts_in_the_table():
    checks = [CheckOperations("conformance/scenarios/test_a.py::t[sut-hub]", "hub", "a", True, ("createUser",)),
              CheckOperations("conformance/scenarios/test_a.py::t[sut-follower]", "follower", "a", True,
                              ("createUser", "deleteUser"))]
    text = render(checks, {"createUser": ("hub", "follower"), "deleteUser": ()})
    assert "| `deleteUser` |  | `a::t[sut-follower]` |  |" in text
    assert "| hub | `createUser` | 1 of 1 |" in text
    assert "| follower | `createUser` | 0 of 1 |" in text


def test_suggested_markers_split_what_only_one_role_asked():
    records = [
        {"kind": "run"},
        {"kind": "check", "check_id": "m.py::t[sut-hub]", "role": "hub",
         "control_operations": ["createUser", "createRoom", "sendMessage"]},
        {"kind": "check", "check_id": "m.py::t[sut-follower]", "role": "follower",
         "control_operations": ["createUser", "sendMessage", "getRoom"]},
        {"kind": "check", "check_id": "m.py::u", "role": "any", "control_operations": []},
    ]
    assert suggest_markers(records) == {
        "m.py::t": '@pytest.mark.operations("createUser", "sendMessage", hub=("createRoom",), follower=("getRoom",))',
        "m.py::u": "@pytest.mark.operations()",
    }


def test_the_record_keeps_each_operation_once_in_first_asked_order():
    record = OperationRecord()
    for name in ("createUser", "createRoom", "createUser"):
        record.note(name)
    assert record.operations == ("createUser", "createRoom")


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory) -> list[dict]:
    """A few checks run against the embedded reference SUT: their records (checks.jsonl)."""
    tmp = tmp_path_factory.mktemp("operations-run")
    results = tmp / "checks.jsonl"
    argv = [sys.executable, "-m", "pytest", *(str(SCENARIOS_DIR / m) for m in RECORDED_MODULES),
            "-k", RECORDED_SELECTION, "-p", "no:cacheprovider", f"--rootdir={ROOT_DIR}", "--sut", "reference",
            "--seed", "17", "--mimi-results", str(results), "--mimi-output", str(tmp / "out"), "-q"]
    done = subprocess.run(argv, cwd=ROOT_DIR, env=_pytest_env(), capture_output=True, timeout=600)  # noqa: S603
    lines = [json.loads(line) for line in Path(results).read_text().splitlines()] if results.exists() else []
    records = [line for line in lines if line.get("kind") == "check"]
    assert records, f"no check ran (pytest exit {done.returncode}):\n{done.stdout.decode()[-3000:]}"
    return records


def test_each_recorded_operation_is_declared_by_its_check(recorded_run, checks):
    declared = {c.check_id: c for c in checks}
    assert len(recorded_run) >= 6
    ran = [r for r in recorded_run if r["verdict"] != "NOT_APPLICABLE"]
    assert ran and all(r["control_operations"] for r in ran), "a check that ran recorded no control operation"
    for record in recorded_run:
        check = declared[record["check_id"]]
        undeclared = set(record["control_operations"]) - set(check.needs) - set(check.optional)
        assert not undeclared, f"{record['check_id']} asked the SUT for {sorted(undeclared)} without declaring it"
    # Optional operations are recorded when the reference SUT offers them (it offers every one).
    assert any("getConsentState" in r["control_operations"] for r in recorded_run)


def test_the_control_client_records_what_the_check_asks_not_its_own_getinfo():
    """Calls and require() are the check's, offered or not; the getInfo the client makes to learn
    supportedOperations is not, nor is asking whether an operation is offered."""
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/info":
            body = {"contractVersion": "1.1.0", "providerDomains": ["sut.example"], "roles": ["hub"],
                    "supportedOperations": ["createUser"]}
        else:
            body = {"user": "mimi://sut.example/u/a", "clients": ["mimi://sut.example/d/a/1"]}
        # A stream, as from the network: the client reads raw chunks.
        return httpx.Response(200 if "supportedOperations" in body else 201,
                              headers={"Content-Type": "application/json"},
                              stream=httpx.ByteStream(json.dumps(body).encode()))

    client = ControlClient("http://control.invalid")
    client._http = httpx.Client(transport=httpx.MockTransport(answer))  # noqa: SLF001 - no network in a unit test
    client.operation_record = record = OperationRecord()
    assert "listUserEvents" not in client.supported_operations()
    client.create_user(user="a", clients=1)
    with pytest.raises(NotSupported):
        client.call("deleteUser", {"user": "mimi://sut.example/u/a"})
    assert record.operations == ("createUser", "deleteUser")
    client.get_info()
    assert record.operations == ("createUser", "deleteUser", "getInfo")
    client.close()
