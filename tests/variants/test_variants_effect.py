"""Effect variants (issue 15, "Judge the effect, not the HTTP status"): -06 §5.3/§5.4 give failure codes
but no HTTP status for a refusing UpdateRoomResponse or SubmitMessageResponse (AMB-FAILURE-CODE-STATUS).
A hub that refuses with a 4xx instead of 200 and the code is refused all the same: the removal and
parent-room checks judge that nothing refused was applied, committed or fanned out, never the status.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_draft_latitude import assert_no_false_verdict, outcomes_of, run_checks  # noqa: E402

from reference_peer.faults import VARIANTS, overrides_for  # noqa: E402
from reference_peer.faults import variants_effect as effect_variants  # noqa: E402

# The MUST-prevent rules whose checks refuse through the SUT as hub, and the rules of the other removal
# checks the variants must leave untouched.
PREVENT = ("PROTO-REMOVAL-BLOCK-APP-SEND", "PROTO-REMOVAL-BLOCK-COMMITS", "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS",
           "POLICY-CAP-REMOVE-PARTICIPANT-NO-CLIENTS-LEFT", "PROTO-UPDATE-REMOVE-SIMULTANEOUS",
           "PROTO-UPDATE-SELF-LEAVE-CACHED", "PROTO-REMOVAL-BLOCK-APP-RECEIVE")
PARENT = ("POLICY-BASE-PARENT-STRICT-SUBSET", "POLICY-BASE-PARENT-ROOM-SET")


def _messages(checks, requirement: str) -> str:
    return " ".join(str(reqs[requirement].get("message") or reqs[requirement].get("evidence") or "")
                    for reqs in checks.values() if requirement in reqs)


def test_the_variants_are_registered_and_cite_the_ambiguity():
    for name in ("refusals-as-http-403", "refusals-as-http-400-for-invalid"):
        assert name in VARIANTS and "AMB-FAILURE-CODE-STATUS" in VARIANTS[name].permitted_by, name


def _refusal_status(variants, *args):
    """What the hub built with ``variants`` answers a refusal with at its step (None: 200 and the code)."""
    from reference_peer.peer import REFUSAL_AS_200_WITH_CODE

    return overrides_for(variants).hook(REFUSAL_AS_200_WITH_CODE, *args)


def test_refusal_status_maps_only_refusals_that_carry_no_data():
    on = [effect_variants.REFUSALS_AS_HTTP_403]
    assert _refusal_status(on, "update", "notAllowed", "") == 403
    assert _refusal_status(on, "update", "invalidProposal", "") == 403
    assert _refusal_status(on, "submitMessage", "notAllowed", "") == 403
    # wrongEpoch / epochTooOld carry the current epoch a client needs to catch up: unchanged.
    assert _refusal_status(on, "update", "wrongEpoch", "") is None
    assert _refusal_status(on, "submitMessage", "epochTooOld", "") is None
    on = [effect_variants.REFUSALS_AS_HTTP_400_FOR_INVALID]
    assert _refusal_status(on, "update", "invalidProposal", "") == 400
    assert _refusal_status(on, "update", "notAllowed", b"omits [PROTO-UPDATE-SELF-LEAVE-CACHED]") == 400
    assert _refusal_status(on, "update", "notAllowed", "a policy refusal") is None
    assert _refusal_status(on, "submitMessage", "notAllowed", "") is None
    assert _refusal_status([], "update", "notAllowed", "") is None


@pytest.mark.parametrize(("variant", "status"), [("refusals-as-http-403", "HTTP 403"),
                                                 ("refusals-as-http-400-for-invalid", "HTTP 400")])
def test_removal_checks_pass_when_the_hub_refuses_with_a_4xx(tmp_path, variant, status):
    """Every removal check PASSes; the MUST-prevent rules are judged on the refusal's effect."""
    checks = run_checks(tmp_path, "test_", variants=[variant], module="test_removal.py")
    assert_no_false_verdict(checks)
    for requirement in PREVENT:
        assert outcomes_of(checks, requirement) and set(outcomes_of(checks, requirement)) == {"PASS"}, \
            (requirement, checks)
    # The variant was exercised: some refusal the checks judged was the 4xx.
    assert status in " ".join(_messages(checks, r) for r in PREVENT), checks
    if variant == "refusals-as-http-403":
        for requirement in ("PROTO-REMOVAL-BLOCK-APP-SEND", "PROTO-REMOVAL-BLOCK-COMMITS",
                            "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS"):
            assert "HTTP 403" in _messages(checks, requirement), (requirement, checks)
    else:
        assert "HTTP 400" in _messages(checks, "PROTO-UPDATE-SELF-LEAVE-CACHED"), checks


@pytest.mark.parametrize("variant", ["refusals-as-http-403", "refusals-as-http-400-for-invalid"])
def test_parent_room_checks_pass_when_the_hub_refuses_with_a_4xx(tmp_path, variant):
    """A refusal of an outsider's addition answered with a 4xx is a refusal, not a harness error."""
    checks = run_checks(tmp_path, "dependent", variants=[variant], module="test_room_parent.py")
    assert_no_false_verdict(checks)
    for requirement in PARENT:
        assert outcomes_of(checks, requirement) == ["PASS"], (requirement, checks)
    if variant == "refusals-as-http-403":
        assert "HTTP 403" in _messages(checks, "POLICY-BASE-PARENT-STRICT-SUBSET"), checks


def test_a_hub_accepting_a_removed_members_commit_still_fails_with_the_variant(tmp_path):
    """The variant changes how a refusal looks, not what must be refused: the fault is still killed."""
    checks = run_checks(tmp_path, "commit_from_member_being_removed", variants=["refusals-as-http-403"],
                        faults=["accept-removed-member-commit"], module="test_removal.py")
    assert outcomes_of(checks, "PROTO-REMOVAL-BLOCK-COMMITS") == ["FAIL"], checks
