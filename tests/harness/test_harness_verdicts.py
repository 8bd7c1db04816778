"""Verdict mapping: the level of the judged requirement decides FAIL or WARN; the origin of an
exception decides FAIL (the SUT) or HARNESS_ERROR (the suite)."""

from __future__ import annotations

import pytest

from conformance.harness.control import ControlTimeout, NotSupported
from conformance.harness.polling import PollTimeout
from conformance.verdicts import (
    Ambiguous,
    CheckResult,
    HarnessError,
    LevelResolver,
    NotApplicable,
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


def test_normal_return_is_pass():
    assert verdict(None).verdict is Verdict.PASS


@pytest.mark.parametrize(
    ("requirements", "expected"),
    [
        (("R-MUST",), Verdict.FAIL),
        (("R-SHOULD",), Verdict.WARN),
        (("R-MAY",), Verdict.WARN),
        (("R-IMPLIED",), Verdict.FAIL),  # a profile scores it MUST
        (("R-IMPLIED-FREE",), Verdict.WARN),  # no profile scores it: SHOULD
        (("R-SHOULD", "R-MUST"), Verdict.FAIL),  # the strictest judged level counts
    ],
)
def test_assertion_failure_is_scored_by_level(requirements, expected):
    result = verdict(AssertionError("nope"), requirements)
    assert result.verdict is expected
    assert result.message == "nope"


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
