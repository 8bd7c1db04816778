"""Verdict mapping: the level of the judged requirement decides FAIL or WARN; the origin of an
exception decides FAIL (the SUT) or HARNESS_ERROR (the suite)."""

from __future__ import annotations

import pytest

from conformance.harness.control import ControlTimeout, NotSupported
from conformance.harness.polling import PollTimeout
from conformance.verdicts import (
    Ambiguous,
    Blocked,
    CheckResult,
    HarnessError,
    Ledger,
    LevelResolver,
    NotApplicable,
    Outcome,
    RequirementMissed,
    SutMisbehaviour,
    Verdict,
    Warned,
    judge,
    strictest_profile_levels,
)
from reference_peer.server.client import PeerTimeout

LEVELS = LevelResolver(
    {"R-MUST": "MUST", "R-SHOULD": "SHOULD", "R-MAY": "MAY", "R-IMPLIED": "IMPLIED", "R-IMPLIED-FREE": "IMPLIED"},
    implied_levels={"R-IMPLIED": "MUST"},
)


def verdict(exc, requirements=("R-MUST",), **kwargs):
    return judge(exc, requirements, LEVELS, **kwargs)


def test_normal_return_with_an_observation_is_pass():
    ledger = Ledger(("R-MUST",))
    ledger.observations["R-MUST"] = ["seen"]
    result = verdict(None, ledger=ledger)
    assert result.verdict is Verdict.PASS
    assert [(o.requirement, o.outcome, o.evidence) for o in result.outcomes] == [("R-MUST", Outcome.PASS, ("seen",))]


def test_normal_return_without_an_observation_is_not_applicable():
    """The observation guard: a PASS rests on something the check saw."""
    result = verdict(None)
    assert result.verdict is Verdict.NOT_APPLICABLE
    assert "nothing was observed" in result.message


@pytest.mark.parametrize(
    ("requirements", "expected"),
    [
        (("R-MUST",), Verdict.FAIL),
        (("R-SHOULD",), Verdict.WARN),
        (("R-MAY",), Verdict.WARN),
        (("R-IMPLIED",), Verdict.FAIL),  # a profile scores it MUST
        (("R-IMPLIED-FREE",), Verdict.WARN),  # no profile scores it: SHOULD
    ],
)
def test_assertion_failure_is_scored_by_level(requirements, expected):
    result = verdict(AssertionError("nope"), requirements)
    assert result.verdict is expected
    assert result.message == "nope"


def test_an_unattributed_miss_in_a_multi_requirement_check_is_a_check_bug():
    result = verdict(AssertionError("nope"), ("R-SHOULD", "R-MUST"))
    assert result.verdict is Verdict.HARNESS_ERROR
    assert "names no requirement" in result.message


def test_a_named_requirement_decides_the_level():
    assert verdict(RequirementMissed("x", "R-SHOULD"), ("R-MUST", "R-SHOULD")).verdict is Verdict.WARN
    assert verdict(RequirementMissed("x", "R-MUST"), ("R-MUST", "R-SHOULD")).verdict is Verdict.FAIL


def test_naming_an_undeclared_requirement_is_a_check_bug():
    result = verdict(RequirementMissed("x", "R-SHOULD"), ("R-MUST",))
    assert result.verdict is Verdict.HARNESS_ERROR
    assert "does not declare" in result.message


def test_profile_level_overrides_catalogue_level():
    levels = LevelResolver({"R": "MUST"}, profile_levels={"R": "SHOULD"})
    assert judge(AssertionError(), ("R",), levels).verdict is Verdict.WARN


def test_poll_timeout_in_a_check_is_a_missed_requirement():
    assert verdict(PollTimeout("the Welcome", 1.0)).verdict is Verdict.FAIL
    assert verdict(PollTimeout("the Welcome", 1.0), ("R-SHOULD",)).verdict is Verdict.WARN


def test_explicit_outcomes():
    assert verdict(Warned("meh")).verdict is Verdict.WARN
    na = verdict(NotApplicable("no identifierQuery"))
    assert (na.verdict, na.message) == (Verdict.NOT_APPLICABLE, "no identifierQuery")
    amb = verdict(Ambiguous("AMB-DIRECTORY-JSON", "colon"))
    assert (amb.verdict, amb.ambiguity) == (Verdict.AMBIGUOUS, "AMB-DIRECTORY-JSON")
    assert verdict(HarnessError("broke")).verdict is Verdict.HARNESS_ERROR


def test_ambiguity_needs_an_amb_id():
    with pytest.raises(ValueError):
        Ambiguous("DIRECTORY-JSON", "x")


def test_sut_misbehaviour_fails_whatever_the_level():
    result = verdict(SutMisbehaviour("reset by peer"), ("R-SHOULD",))
    assert result.verdict is Verdict.FAIL
    assert "reset by peer" in result.message


def test_peer_error_blames_the_sut_only_for_sut_urls():
    sut = verdict(PeerTimeout("silent", url="https://sut.example:8443/x"), sut_hosts={"sut.example"})
    assert sut.verdict is Verdict.FAIL
    ours = verdict(PeerTimeout("silent", url="https://hub.ref.test:9000/x"), sut_hosts={"sut.example"})
    assert ours.verdict is Verdict.HARNESS_ERROR


def test_control_api_outcomes():
    assert verdict(NotSupported("not declared", operation="createRoom")).verdict is Verdict.NOT_APPLICABLE
    # docs/control-api.md: a broken control call is never a verdict on the MIMI server
    assert verdict(ControlTimeout("slow", operation="createRoom")).verdict is Verdict.HARNESS_ERROR


def test_any_other_exception_is_a_harness_error():
    result = verdict(KeyError("oops"))
    assert result.verdict is Verdict.HARNESS_ERROR
    assert "KeyError" in result.message


def test_strictest_profile_levels():
    class P:
        def __init__(self, requirements):
            self.requirements = requirements

    levels = strictest_profile_levels([P({"A": "SHOULD", "B": "MAY"}), P({"A": "MUST"})])
    assert levels == {"A": "MUST", "B": "MAY"}


def test_check_result_as_dict_is_json_ready():
    result = CheckResult("id", ("R-MUST",), "hub", Verdict.WARN, "m", 0.1234567, "transcripts/x.json", "discovery")
    data = result.as_dict()
    assert data["verdict"] == "WARN"
    assert data["requirements"] == ["R-MUST"]
    assert data["duration"] == 0.123457


def test_blocked_is_a_fail_scored_against_the_rule_that_blocked_the_check():
    from conformance.verdicts import Blocked

    judgement = judge(Blocked("PROTO-TRANSPORT-MTLS", "no TLS"), ("PROTO-KEYMAT-NO-REUSE",), LevelResolver({}))
    assert judgement.verdict is Verdict.FAIL and judgement.blocked_by == ("PROTO-TRANSPORT-MTLS",)
    assert judgement.message.startswith("blocked by PROTO-TRANSPORT-MTLS: no TLS")
    own = judge(Blocked("PROTO-KEYMAT-NO-REUSE", "x"), ("PROTO-KEYMAT-NO-REUSE",), LevelResolver({}))
    assert own.verdict is Verdict.HARNESS_ERROR  # a check may not be blocked by a rule it judges


# --------------------------------------------------------------------------------------------
# Per-requirement outcomes


def _outcomes(judgement):
    return {o.requirement: o.outcome for o in judgement.outcomes}


def test_one_miss_is_charged_to_its_requirement_alone():
    ledger = Ledger(("A", "B", "C"))
    ledger.observations["A"] = ["held"]
    levels = LevelResolver({"A": "MUST", "B": "MUST", "C": "MUST"})
    result = judge(RequirementMissed("B broke", "B"), ("A", "B", "C"), levels, ledger=ledger)
    assert _outcomes(result) == {"A": Outcome.PASS, "B": Outcome.FAIL, "C": Outcome.NOT_REACHED}
    assert result.verdict is Verdict.FAIL and result.message.startswith("B: B broke")


def test_a_should_miss_leaves_the_must_requirements_pass():
    ledger = Ledger(("M", "S"))
    ledger.observations["M"] = ["held"]
    ledger.misses["S"] = ["late"]
    levels = LevelResolver({"M": "MUST", "S": "SHOULD"})
    result = judge(None, ("M", "S"), levels, ledger=ledger)
    assert _outcomes(result) == {"M": Outcome.PASS, "S": Outcome.WARN}
    assert result.verdict is Verdict.WARN


def test_soft_misses_of_two_requirements_are_both_reported():
    ledger = Ledger(("A", "B"))
    ledger.misses["A"] = ["a broke"]
    ledger.misses["B"] = ["b broke"]
    result = judge(None, ("A", "B"), LevelResolver({"A": "MUST", "B": "MUST"}), ledger=ledger)
    assert _outcomes(result) == {"A": Outcome.FAIL, "B": Outcome.FAIL}
    assert "A: a broke" in result.message and "B: b broke" in result.message


def test_a_judging_block_attributes_asserts_and_poll_timeouts():
    from conformance import verdicts

    verdicts.open_ledger(("A", "B"))
    try:
        with pytest.raises(PollTimeout) as caught, verdicts.judging("B"):
            raise PollTimeout("the Welcome", 1.0)
        result = judge(caught.value, ("A", "B"), LevelResolver({"A": "MUST", "B": "SHOULD"}),
                       ledger=verdicts.current_ledger())
    finally:
        verdicts.close_ledger()
    assert _outcomes(result) == {"A": Outcome.NOT_REACHED, "B": Outcome.WARN}


def test_observed_and_expect_write_to_the_running_check():
    from conformance import verdicts

    ledger = verdicts.open_ledger(("A", "B"))
    try:
        verdicts.observed("A", "one")
        verdicts.expect("B", True, "never shown", evidence="two")
        with pytest.raises(RequirementMissed):
            verdicts.expect("B", False, "b broke")
        with pytest.raises(HarnessError, match="does not declare"):
            verdicts.observed("Z")
    finally:
        verdicts.close_ledger()
    assert ledger.observations == {"A": ["one"], "B": ["two"]}


def test_requirement_level_not_applicable_lets_the_check_go_on():
    from conformance import verdicts

    ledger = verdicts.open_ledger(("A", "B"))
    try:
        verdicts.not_applicable("no grant offered", requirement="A")
        verdicts.observed("B", "held")
    finally:
        verdicts.close_ledger()
    result = judge(None, ("A", "B"), LevelResolver({"A": "MUST", "B": "MUST"}), ledger=ledger)
    assert _outcomes(result) == {"A": Outcome.NOT_APPLICABLE, "B": Outcome.PASS}
    assert result.verdict is Verdict.PASS


def test_a_block_keeps_what_was_observed_and_fails_the_blocking_rule():
    ledger = Ledger(("A", "B"))
    ledger.observations["A"] = ["held"]
    result = judge(Blocked("RULE", "no TLS"), ("A", "B"), LevelResolver({}), ledger=ledger)
    assert _outcomes(result) == {"A": Outcome.PASS, "B": Outcome.NOT_REACHED, "RULE": Outcome.FAIL}
    assert result.blocked_by == ("RULE",)


def test_a_harness_error_after_an_observation_keeps_the_observation():
    ledger = Ledger(("A", "B"))
    ledger.observations["A"] = ["held"]
    result = judge(KeyError("oops"), ("A", "B"), LevelResolver({}), ledger=ledger)
    assert _outcomes(result) == {"A": Outcome.PASS, "B": Outcome.HARNESS_ERROR}
    assert result.verdict is Verdict.HARNESS_ERROR


def test_blocked_judgement_turns_misses_into_not_reached():
    from conformance.verdicts import blocked_judgement

    ledger = Ledger(("A", "B"))
    ledger.observations["A"] = ["held"]
    missed = judge(RequirementMissed("x", "B"), ("A", "B"), LevelResolver({"A": "MUST", "B": "MUST"}), ledger=ledger)
    result = blocked_judgement(missed, ("RULE",), "blocked by RULE")
    assert _outcomes(result) == {"A": Outcome.PASS, "B": Outcome.NOT_REACHED, "RULE": Outcome.FAIL}
