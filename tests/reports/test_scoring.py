from __future__ import annotations

import pytest
from report_builders import FOLLOWER_PROFILE, HUB_PROFILE, check, hub_checks, judged, mixed_results, results

from reports.model import ProfileVerdict, RequirementStatus, Verdict
from reports.scoring import requirement_status, score_profile


def hub_verdict(**verdicts: str) -> ProfileVerdict:
    return score_profile(HUB_PROFILE, hub_checks(**verdicts)).verdict


def test_all_pass_is_conformant():
    assert hub_verdict() is ProfileVerdict.CONFORMANT


def test_must_fail_is_not_conformant():
    assert hub_verdict(mtls="FAIL") is ProfileVerdict.NOT_CONFORMANT


def test_should_miss_only_is_conformant_with_warnings():
    assert hub_verdict(https="WARN") is ProfileVerdict.CONFORMANT_WITH_WARNINGS


def test_fail_of_a_requirement_scored_should_counts_as_a_warning():
    # The check's FAIL came from a stricter level elsewhere; this profile scores the requirement SHOULD.
    result = score_profile(HUB_PROFILE, hub_checks(https="FAIL"))
    assert result.verdict is ProfileVerdict.CONFORMANT_WITH_WARNINGS
    assert {o.id: o.status for o in result.requirements}["PROTO-DIRECTORY-HTTPS-URLS"] is RequirementStatus.WARN


def test_warn_on_a_must_requirement_is_a_warning_not_a_failure():
    assert hub_verdict(mtls="WARN") is ProfileVerdict.CONFORMANT_WITH_WARNINGS


def test_untested_requirement_is_incomplete():
    checks = hub_checks()[:2]  # nothing judges PROTO-KEYMAT-NO-REUSE
    result = score_profile(HUB_PROFILE, checks)
    assert result.verdict is ProfileVerdict.INCOMPLETE
    assert result.counts["requirements_untested"] == 1


def test_harness_error_only_is_incomplete():
    assert hub_verdict(reuse="HARNESS_ERROR") is ProfileVerdict.INCOMPLETE


def test_harness_error_next_to_a_pass_is_still_incomplete():
    checks = [*hub_checks(), check("test_reuse_again", "HARNESS_ERROR", ["PROTO-KEYMAT-NO-REUSE"])]
    assert score_profile(HUB_PROFILE, checks).verdict is ProfileVerdict.INCOMPLETE


def test_must_fail_wins_over_incomplete():
    assert hub_verdict(mtls="FAIL", reuse="HARNESS_ERROR") is ProfileVerdict.NOT_CONFORMANT


def test_incomplete_wins_over_warnings():
    assert hub_verdict(https="WARN", reuse="HARNESS_ERROR") is ProfileVerdict.INCOMPLETE


def test_worst_check_decides_the_requirement():
    checks = [*hub_checks(), check("test_mtls_second", "FAIL", ["PROTO-TRANSPORT-MTLS"])]
    result = score_profile(HUB_PROFILE, checks)
    assert {o.id: o.status for o in result.requirements}["PROTO-TRANSPORT-MTLS"] is RequirementStatus.FAIL
    assert result.verdict is ProfileVerdict.NOT_CONFORMANT


def test_ambiguous_is_neither_not_conformant_nor_incomplete():
    result = score_profile(HUB_PROFILE, hub_checks(mtls="AMBIGUOUS"))
    assert result.verdict is ProfileVerdict.CONFORMANT
    assert result.counts["requirements_ambiguous"] == 1
    assert result.counts["checks_ambiguous"] == 1


def test_not_applicable_on_must_or_should_is_incomplete():
    assert hub_verdict(reuse="NOT_APPLICABLE") is ProfileVerdict.INCOMPLETE
    assert hub_verdict(https="NOT_APPLICABLE") is ProfileVerdict.INCOMPLETE


def test_not_applicable_on_may_is_fine():
    profile = HUB_PROFILE.__class__(**{**HUB_PROFILE.__dict__, "requirements": {"PROTO-IDQUERY-PARTIALNAME": "MAY"}})
    checks = [check("test_partial_name", "NOT_APPLICABLE", ["PROTO-IDQUERY-PARTIALNAME"], area="discovery")]
    assert score_profile(profile, checks).verdict is ProfileVerdict.CONFORMANT


def test_not_applicable_next_to_a_pass_counts_as_pass():
    assert requirement_status([Verdict.NOT_APPLICABLE, Verdict.PASS], "MUST") is RequirementStatus.PASS


def test_checks_of_the_other_role_do_not_count():
    # A follower-role FAIL of a role-neutral requirement says nothing about the SUT as hub.
    checks = [*hub_checks(), check("test_mtls_as_follower", "FAIL", ["PROTO-TRANSPORT-MTLS"], role="follower")]
    assert score_profile(HUB_PROFILE, checks).verdict is ProfileVerdict.CONFORMANT
    follower = score_profile(FOLLOWER_PROFILE, checks)
    assert {o.id: o.status for o in follower.requirements}["PROTO-TRANSPORT-MTLS"] is RequirementStatus.FAIL


def test_counts_of_the_mixed_run():
    run = mixed_results()
    hub, follower = run.profiles
    assert hub.verdict is ProfileVerdict.NOT_CONFORMANT
    assert dict(hub.counts) == {
        "requirements": 3, "requirements_pass": 1, "requirements_fail": 1, "requirements_warn": 1,
        "requirements_harness_error": 0, "requirements_untested": 0, "requirements_not_applicable": 0,
        "requirements_ambiguous": 0, "requirements_not_reached": 0,
        "checks": 3, "checks_pass": 1, "checks_fail": 1, "checks_warn": 1, "checks_not_applicable": 0,
        "checks_harness_error": 0, "checks_ambiguous": 0,
    }  # fmt: skip
    assert follower.verdict is ProfileVerdict.INCOMPLETE
    statuses = {o.id: o.status for o in follower.requirements}
    assert statuses == {"PROTO-TRANSPORT-MTLS": RequirementStatus.AMBIGUOUS,
                        "PROTO-FANOUT-NOTIFY-201": RequirementStatus.HARNESS_ERROR}  # fmt: skip


def test_results_keep_only_the_requirements_involved():
    run = results(hub_checks())
    assert [req.id for req in run.requirements] == sorted(HUB_PROFILE.requirements)


@pytest.mark.parametrize("verdict", list(Verdict))
def test_every_check_verdict_maps_to_a_requirement_status(verdict):
    assert isinstance(requirement_status([verdict], "MUST"), RequirementStatus)


def test_a_blocked_check_scores_the_rule_that_blocked_it_not_its_own():
    # The SUT broke mTLS, so the key-material check never exercised KeyPackage reuse.
    # As a 1.x file records it: no outcomes, the check's verdict charged to blocked_by.
    blocked = check(
        "test_keypackage_not_reused", "FAIL", ["PROTO-KEYMAT-NO-REUSE"], blocked_by=["PROTO-TRANSPORT-MTLS"]
    )
    checks = [*hub_checks()[:2], blocked]
    result = score_profile(HUB_PROFILE, checks)
    status = {o.id: o.status for o in result.requirements}
    assert status["PROTO-TRANSPORT-MTLS"] is RequirementStatus.FAIL
    assert status["PROTO-KEYMAT-NO-REUSE"] is RequirementStatus.UNTESTED
    assert result.verdict is ProfileVerdict.NOT_CONFORMANT
    outcome = next(o for o in result.requirements if o.id == "PROTO-TRANSPORT-MTLS")
    assert any(c.endswith("::test_keypackage_not_reused") for c in outcome.check_ids)


MTLS, HTTPS, REUSE = "PROTO-TRANSPORT-MTLS", "PROTO-DIRECTORY-HTTPS-URLS", "PROTO-KEYMAT-NO-REUSE"


def _statuses(result):
    return {o.id: o.status for o in result.requirements}


def test_a_blocked_check_with_outcomes_leaves_its_own_requirement_not_reached():
    blocked = check("test_keypackage_not_reused", "FAIL", [REUSE], blocked_by=[MTLS],
                    outcomes=[judged(REUSE, "NOT_REACHED", "blocked"), judged(MTLS, "FAIL", "no client cert")])  # fmt: skip
    result = score_profile(HUB_PROFILE, [hub_checks()[1], blocked])
    assert _statuses(result) == {MTLS: RequirementStatus.FAIL, HTTPS: RequirementStatus.PASS,
                                 REUSE: RequirementStatus.NOT_REACHED}  # fmt: skip
    assert result.verdict is ProfileVerdict.NOT_CONFORMANT


def test_three_requirements_fail_pass_not_reached_are_scored_each_on_its_own():
    # One check names all three: MTLS missed, HTTPS observed, REUSE never reached after the miss.
    outcomes = [judged(MTLS, "FAIL", "bad From", level="MUST"),
                judged(HTTPS, "PASS", evidence=["directory: 4 https URLs"]),
                judged(REUSE, "NOT_REACHED", "stopped before: PROTO-TRANSPORT-MTLS missed")]  # fmt: skip
    one = check("test_three", "FAIL", [MTLS, HTTPS, REUSE], outcomes=outcomes)
    result = score_profile(HUB_PROFILE, [one])
    assert _statuses(result) == {MTLS: RequirementStatus.FAIL, HTTPS: RequirementStatus.PASS,
                                 REUSE: RequirementStatus.NOT_REACHED}  # fmt: skip
    assert result.verdict is ProfileVerdict.NOT_CONFORMANT
    assert result.counts["requirements_fail"] == result.counts["requirements_pass"] == 1
    assert result.counts["requirements_not_reached"] == 1
    # Not judged: without the MUST miss the profile is INCOMPLETE, never CONFORMANT.
    outcomes[0] = judged(MTLS, "PASS", evidence=["client certificate required"])
    result = score_profile(HUB_PROFILE, [check("test_three", "PASS", [MTLS, HTTPS, REUSE], outcomes=outcomes)])
    assert _statuses(result)[REUSE] is RequirementStatus.NOT_REACHED
    assert result.verdict is ProfileVerdict.INCOMPLETE


def test_not_reached_is_ignored_next_to_a_check_that_judged_it():
    stopped = check("test_three", "FAIL", [MTLS, REUSE],
                    outcomes=[judged(MTLS, "FAIL", "bad From"), judged(REUSE, "NOT_REACHED")])  # fmt: skip
    others = hub_checks(mtls="FAIL")  # mtls FAIL as well, so only REUSE's status is in question
    result = score_profile(HUB_PROFILE, [stopped, *others])
    assert _statuses(result)[REUSE] is RequirementStatus.PASS
    assert requirement_status(["NOT_REACHED", "NOT_APPLICABLE"], "MAY") is RequirementStatus.NOT_REACHED
    assert requirement_status(["NOT_APPLICABLE"], "MAY") is RequirementStatus.NOT_APPLICABLE


def test_a_should_miss_in_a_check_with_must_requirements_leaves_the_must_ones_pass():
    # The check's verdict is WARN (the worst of its outcomes); its MUST requirements held.
    outcomes = [judged(MTLS, "PASS", evidence=["client certificate required"]),
                judged(HTTPS, "WARN", "directory lists http://sut.example/notify", level="SHOULD"),
                judged(REUSE, "PASS", evidence=["3 KeyPackages served, all distinct"])]  # fmt: skip
    result = score_profile(HUB_PROFILE, [check("test_one", "WARN", [MTLS, HTTPS, REUSE], outcomes=outcomes)])
    assert _statuses(result) == {MTLS: RequirementStatus.PASS, HTTPS: RequirementStatus.WARN,
                                 REUSE: RequirementStatus.PASS}  # fmt: skip
    assert result.verdict is ProfileVerdict.CONFORMANT_WITH_WARNINGS


def test_one_bad_requirement_is_not_charged_to_the_others_of_its_check():
    outcomes = [judged(MTLS, "FAIL", "From is not an addr-spec"), judged(REUSE, "PASS", evidence=["distinct"])]
    result = score_profile(HUB_PROFILE, [check("test_from", "FAIL", [MTLS, REUSE], outcomes=outcomes),
                                         hub_checks()[1]])  # fmt: skip
    assert _statuses(result)[REUSE] is RequirementStatus.PASS
    assert _statuses(result)[MTLS] is RequirementStatus.FAIL


def test_a_fail_outcome_is_seen_at_the_profile_level():
    # The run scored HTTPS at MUST (another profile); this profile scores it SHOULD: WARN.
    outcomes = [judged(HTTPS, "FAIL", "http URL", level="MUST"), judged(MTLS, "PASS", evidence=["ok"])]
    result = score_profile(HUB_PROFILE, [check("test_x", "FAIL", [MTLS, HTTPS], outcomes=outcomes), hub_checks()[2]])
    assert _statuses(result) == {MTLS: RequirementStatus.PASS, HTTPS: RequirementStatus.WARN,
                                 REUSE: RequirementStatus.PASS}  # fmt: skip
