"""Blaming a check the SUT blocked on the transport rule it broke, and how the kill matrix counts it."""

from __future__ import annotations

from pathlib import Path

from conformance.harness.attribution import CERT_TARGET_REQUIREMENT, blocked_message, blockers
from conformance.selftest import CheckInfo, SuiteRun, row_for
from reference_peer.faults.registry import Fault

SUT = "sut.mimi.test"


def refusal(requirement: str, *, names=(SUT,), from_header=f"server@{SUT}") -> dict:
    return {"status": 400, "reason": "malformed-from", "detail": "From local-part must be exactly 'mimi'",
            "method": "POST", "path": "/v1/keyMaterial/x", "from_header": from_header,
            "peer_cert_names": list(names), "requirement": requirement, "time": 1.0}


def test_a_refusal_of_the_sut_names_its_rule():
    found = blockers({"refused": [refusal("PROTO-TRANSPORT-FROM-LOCALPART-MIMI")]}, "the reference hub", [SUT])
    assert [b.requirement for b in found] == ["PROTO-TRANSPORT-FROM-LOCALPART-MIMI"]
    assert "the reference hub refused the SUT's POST /v1/keyMaterial/x with 400" in found[0].evidence


def test_refusals_of_other_peers_blame_nothing():
    # The suite's own hub and follower also talk to each other (on worker k: hub-k.ref.test).
    for peer in ("hub.ref.test", "hub-1.ref.test"):
        other = refusal("PROTO-TRANSPORT-BODY-ENCODING", names=(peer,), from_header=f"mimi@{peer}")
        assert blockers({"refused": [other]}, "the reference follower", [SUT]) == []


def test_a_refusal_is_matched_by_from_when_no_certificate_names_the_sut():
    unauthenticated = refusal("PROTO-TRANSPORT-CERT-SOURCE-DOMAIN", names=(), from_header=f"mimi@{SUT.upper()}")
    assert len(blockers({"refused": [unauthenticated]}, "the reference hub", [SUT])) == 1


def test_only_certificate_failures_of_requests_to_the_sut_blame_its_certificate():
    failed = [
        {"endpoint": "keyMaterial", "peer": SUT, "error": "PeerTLSError: [SSL: CERTIFICATE_VERIFY_FAILED] self-signed"},
        {"endpoint": "notify", "peer": SUT, "error": "PeerTimeout: no answer within 2s"},  # not a rule
        {"endpoint": "notify", "peer": "follower.ref.test", "error": "CERTIFICATE_VERIFY_FAILED"},  # not the SUT
    ]
    found = blockers({"failed": failed}, "the reference hub", [SUT])
    assert [b.requirement for b in found] == [CERT_TARGET_REQUIREMENT]


def test_the_message_leads_with_the_evidence_and_keeps_what_the_check_saw():
    found = blockers({"refused": [refusal("PROTO-TRANSPORT-FROM-LOCALPART-MIMI")] * 5}, "the reference hub", [SUT])
    requirements, message = blocked_message(found, "the room never arrived")
    assert requirements == ("PROTO-TRANSPORT-FROM-LOCALPART-MIMI",)
    assert message.startswith("blocked by PROTO-TRANSPORT-FROM-LOCALPART-MIMI: the reference hub refused")
    assert message.endswith("it saw: the room never arrived")


def test_the_kill_matrix_counts_a_check_blocked_by_the_faults_own_rule_as_its_own():
    fault = Fault("outgoing-from-localpart", "transport", ("PROTO-TRANSPORT-FROM-LOCALPART-MIMI",), "")
    checks = [CheckInfo("t::from_localpart", ("PROTO-TRANSPORT-FROM-LOCALPART-MIMI",), "any", "transport"),
              CheckInfo("t::consent", ("EXT-CONSENT-IMMEDIATE-DELIVERY",), "hub", "consent"),
              CheckInfo("t::removal", ("PROTO-REMOVE-X",), "hub", "removal")]
    run = SuiteRun("outgoing-from-localpart",
                   {"t::from_localpart": "FAIL", "t::consent": "FAIL", "t::removal": "FAIL"}, {}, 1.0, 1,
                   Path("."), blocked={"t::consent": ("PROTO-TRANSPORT-FROM-LOCALPART-MIMI",),
                                       "t::removal": ("PROTO-TRANSPORT-BODY-ENCODING",)})
    row = row_for(fault, run, checks)
    assert row.killers == ["t::from_localpart"]
    assert row.blocked == ["t::consent"]
    assert row.collateral == ["t::removal"]  # blocked by a rule the fault does not name


def test_a_missing_directory_entry_blocks_by_the_rule_of_the_role_that_needs_it():
    from conformance.harness.attribution import harness_blockers
    from conformance.verdicts import SutMisbehaviour
    from reference_peer.server.client import PeerDirectoryError

    try:
        try:
            raise PeerDirectoryError("directory has no 'proxyDownload' entry", url=f"https://{SUT}/x")
        except PeerDirectoryError as inner:
            raise SutMisbehaviour(f"PeerDirectoryError: {inner}") from inner
    except SutMisbehaviour as outer:
        found = harness_blockers(outer, "any")
    assert [b.requirement for b in found] == ["PROTO-DIRECTORY-HUB-ENDPOINTS"]
    assert found[0].evidence == "the SUT's directory has no 'proxyDownload' entry"
    # keyMaterial is needed from both roles: the check's role decides whose rule it was
    keymat = Exception("directory has no 'keyMaterial' entry")
    assert [b.requirement for b in harness_blockers(keymat, "follower")] == ["PROTO-DIRECTORY-FOLLOWER-ENDPOINTS"]
    assert [b.requirement for b in harness_blockers(Exception("directory has no 'hubTransfer' entry"), "hub")] == [
        "EXT-HUBXFER-DIRECTORY"]
    assert harness_blockers(Exception("timed out"), "hub") == []


def test_a_directory_error_of_any_workers_reference_peer_blames_nothing():
    from conformance.harness.attribution import directory_blockers, harness_blockers
    from conformance.verdicts import SutMisbehaviour
    from reference_peer.server.client import PeerDirectoryError

    for host in ("hub.ref.test", "follower-2.ref.test"):
        error = PeerDirectoryError("directory has no 'notify' entry", url=f"https://{host}:7443/x", missing=("notify",))
        assert directory_blockers(error, "any") == []
        try:
            try:
                raise error
            except PeerDirectoryError as inner:
                raise SutMisbehaviour(f"PeerDirectoryError: {inner}") from inner
        except SutMisbehaviour as outer:
            assert harness_blockers(outer, "any") == []
    of_the_sut = PeerDirectoryError("directory has no 'notify' entry", url=f"https://{SUT}/x", missing=("notify",))
    assert [b.requirement for b in directory_blockers(of_the_sut, "follower")] == ["PROTO-DIRECTORY-FOLLOWER-ENDPOINTS"]


def test_a_rule_a_peer_saw_the_sut_break_blocks_too():
    seen = {"requirement": "PROTO-GROUPINFO-ENCRYPTED-TO-REQUESTER", "peer": SUT, "evidence": "does not open",
            "time": 1.0}
    other = dict(seen, peer="hub.ref.test")
    found = blockers({"observed": [seen, other]}, "the reference follower", [SUT])
    assert [b.requirement for b in found] == ["PROTO-GROUPINFO-ENCRYPTED-TO-REQUESTER"]
    assert found[0].evidence == "the reference follower saw the SUT break it: does not open"


def test_the_suites_own_failed_certificate_check_blocks_by_the_certificate_rule():
    from conformance.harness.attribution import harness_blockers

    found = harness_blockers(Exception("SUT misbehaviour: PeerTLSError: [SSL: CERTIFICATE_VERIFY_FAILED] self-signed"),
                             "hub")
    assert [b.requirement for b in found] == [CERT_TARGET_REQUIREMENT]
