"""The SUT's promises (conformance/harness/sut_contract.py) and the count of checks not run for lack of
a control operation (docs/control-api.md "What the suite enforces")."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from conformance import run as run_module
from conformance.cli import main
from conformance.harness.connectors import SutConfigurationError, check_info_matches
from conformance.harness.control import ControlClient, NotSupported
from conformance.harness.manifest import SutManifest
from conformance.harness.sut_contract import check_info_matches as contract_check_info_matches
from conformance.harness.sut_contract import (
    check_manifest_operations,
    missing_required_operations,
    required_operations,
)
from conformance.verdicts import (
    CheckResult,
    LevelResolver,
    NotApplicable,
    Verdict,
    judge,
    missing_operation_counts,
    missing_operation_line,
)
from reports.model import CheckRecord, check_record_from_line
from reports.schema import load_results_schema

pytest_plugins = ["pytester"]

MUST_ID = "PROTO-TRANSPORT-FROM-ADDR-SPEC"
HUB_OPERATIONS = ["getInfo", "createUser", "createRoom", "getRoom", "addParticipant", "sendMessage",
                  "listReceivedMessages"]


def manifest(*, roles=("hub", "follower"), consent_mode="none", operations=None):
    return SutManifest("a SUT", ("sut.example",), tuple(roles), {"type": "url"}, consent_mode=consent_mode,
                       control_operations=tuple(operations) if operations is not None else None)


def info(*, roles=("hub", "follower"), operations=HUB_OPERATIONS, consent=None):
    document = {"contractVersion": "1.1.0", "providerDomains": ["sut.example"], "roles": list(roles),
                "supportedOperations": list(operations)}
    if consent is not None:
        document["consent"] = {"extensionVersion": "01", "defaultMode": consent}
    return document


# --- requiredFor -------------------------------------------------------------------------------------


def test_required_operations_are_read_from_the_contract():
    required = required_operations()
    assert required["follower"] == ("getInfo", "createUser", "sendMessage", "listReceivedMessages")
    assert set(required["hub"]) == set(HUB_OPERATIONS)


def test_a_sut_with_what_its_roles_require_is_accepted():
    contract_check_info_matches(manifest(), info())
    check_info_matches(manifest(), info())  # the connectors' name for the same check


def test_a_role_without_its_required_operations_is_a_configuration_error_naming_them():
    lacking = [op for op in HUB_OPERATIONS if op not in ("createRoom", "getRoom")]
    with pytest.raises(SutConfigurationError) as caught:
        check_info_matches(manifest(), info(operations=lacking))
    message = str(caught.value)
    assert "role hub needs createRoom, getRoom" in message
    assert "follower" not in message.split("(")[1]  # the follower has everything it needs
    assert "remove the role from the manifest's roles" in message  # the fix


def test_a_follower_only_sut_needs_no_hub_operation():
    follower_ops = ["getInfo", "createUser", "sendMessage", "listReceivedMessages"]
    check_info_matches(manifest(roles=("follower",)), info(roles=("follower",), operations=follower_ops))
    assert missing_required_operations(["follower"], ["createUser"]) == {
        "follower": ["sendMessage", "listReceivedMessages"]}


def test_the_manifests_operations_are_held_to_required_for_before_the_sut_starts():
    check_manifest_operations(manifest())  # no control.operations: nothing to hold
    check_manifest_operations(manifest(operations=HUB_OPERATIONS))
    with pytest.raises(SutConfigurationError, match=r"the manifest's control.operations lacks .*role hub needs "
                       r"addParticipant"):
        check_manifest_operations(manifest(operations=[op for op in HUB_OPERATIONS if op != "addParticipant"]))


def test_a_disagreement_is_reported_before_required_for():
    with pytest.raises(SutConfigurationError, match=r"roles: manifest \['hub'\], getInfo \['follower', 'hub'\]"):
        check_info_matches(manifest(roles=("hub",)), info(operations=["getInfo"]))


# --- consent mode ------------------------------------------------------------------------------------


def test_a_consent_mode_differing_from_get_info_is_a_configuration_error():
    with pytest.raises(SutConfigurationError, match="consentMode: manifest quarantine, getInfo consent.defaultMode "
                       "immediate") as caught:
        check_info_matches(manifest(consent_mode="quarantine"), info(consent="immediate"))
    assert "make the manifest state what the SUT runs with" in str(caught.value)


@pytest.mark.parametrize(("declared", "reported"), [("quarantine", "quarantine"), ("none", "consent-first"),
                                                    ("quarantine", None)],
                         ids=["equal", "manifest-none", "get-info-reports-none"])
def test_consent_modes_are_compared_only_when_both_sides_state_one(declared, reported):
    check_info_matches(manifest(consent_mode=declared), info(consent=reported))


# --- missing control operations -> NOT_APPLICABLE, counted -------------------------------------------


def test_an_undeclared_operation_is_not_applicable_naming_it_in_a_field():
    judgement = judge(NotSupported("not in supportedOperations", operation="sendMessage"), (MUST_ID,),
                      LevelResolver({MUST_ID: "MUST"}))
    assert judgement.verdict is Verdict.NOT_APPLICABLE
    assert "sendMessage" in judgement.message
    assert judgement.missing_operation == "sendMessage"
    explicit = judge(NotApplicable("no deleteUser", operation="deleteUser"), (MUST_ID,), LevelResolver({}))
    assert explicit.missing_operation == "deleteUser"
    other = judge(NotApplicable("no such feature"), (MUST_ID,), LevelResolver({}))
    assert other.missing_operation is None


def test_control_client_require_raises_not_supported_naming_the_operation():
    client = ControlClient("http://127.0.0.1:1")
    client._supported = frozenset({"getInfo", "createUser"})  # as get_info() leaves it
    client.require("createUser")
    client.require("getInfo")
    with pytest.raises(NotSupported) as caught:
        client.require("deleteUser")
    assert caught.value.operation == "deleteUser"
    assert str(caught.value).startswith("deleteUser: ")
    client.close()


def test_the_missing_operation_travels_to_the_check_record_and_results_json():
    result = CheckResult("test_x.py::test_x", (MUST_ID,), "hub", Verdict.NOT_APPLICABLE, "sendMessage: ...",
                         missing_operation="sendMessage")
    line = result.as_dict()
    assert line["missing_operation"] == "sendMessage"
    assert CheckResult.from_dict(line).missing_operation == "sendMessage"
    assert "missing_operation" not in CheckResult("c", (MUST_ID,), "hub", Verdict.PASS).as_dict()
    record = check_record_from_line(line)
    assert record.missing_operation == "sendMessage"
    written = record.as_dict()
    assert CheckRecord.from_dict(written).missing_operation == "sendMessage"
    check_schema = load_results_schema()["$defs"]["check"]
    errors = list(Draft202012Validator({**check_schema, "$defs": load_results_schema()["$defs"]}).iter_errors(written))
    assert errors == []


def test_the_count_line_names_each_operation_most_first():
    operations = ["createRoom"] * 3 + ["sendMessage"] * 12 + [None, "addClient"]
    assert missing_operation_counts(operations) == [("sendMessage", 12), ("createRoom", 3), ("addClient", 1)]
    assert missing_operation_line(operations) == (
        "not run for lack of a control operation: sendMessage 12, createRoom 3, addClient 1")
    assert missing_operation_line([None, None]) is None


def test_the_plugin_summary_counts_checks_not_run_per_missing_operation(pytester, tmp_path):
    pytester.makepyfile(test_lacking=f"""
        import pytest
        from conformance.harness.control import ControlClient, NotSupported

        @pytest.mark.requirements("{MUST_ID}")
        @pytest.mark.parametrize("n", range(2))
        def test_needs_send_message(n):
            raise NotSupported("not in supportedOperations", operation="sendMessage")

        @pytest.mark.requirements("{MUST_ID}")
        def test_needs_create_room():
            raise NotSupported("not in supportedOperations", operation="createRoom")
    """)
    out = tmp_path / "r.jsonl"
    result = pytester.runpytest("--sut", "reference", "--mimi-results", str(out), "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(["not run for lack of a control operation: sendMessage 2, createRoom 1"])
    lines = [json.loads(line) for line in out.read_text().splitlines()][1:]
    assert sorted(line["missing_operation"] for line in lines) == ["createRoom", "sendMessage", "sendMessage"]


def test_the_run_command_prints_the_count_line(tmp_path, monkeypatch, capsys):
    def fake_run(plan, printer):
        result = CheckResult("conformance/scenarios/test_discovery.py::test_x", ("PROTO-DIRECTORY-WELL-KNOWN",),
                             "any", Verdict.NOT_APPLICABLE, "deleteUser: ...", area="discovery",
                             missing_operation="deleteUser")
        lines = [{"kind": "run", "seed": plan.seed}, {"kind": "check", **result.as_dict()}]
        (plan.out / run_module.CHECKS_FILE).write_text("".join(json.dumps(line) + "\n" for line in lines))
        return run_module.PytestOutcome(0, 0.1)

    monkeypatch.setattr(run_module, "run_checks", fake_run)
    main(["run", "--out", str(tmp_path), "--seed", "1"])
    out = capsys.readouterr().out
    assert "not run for lack of a control operation: deleteUser 1" in out.splitlines()
