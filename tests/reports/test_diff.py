from __future__ import annotations

from dataclasses import replace

from report_builders import REQUIREMENTS, hub_checks, results

from reports.diff import diff_catalogues, diff_results, diff_results_files, format_catalogue_diff, format_results_diff
from reports.model import ProfileVerdict, RequirementStatus, Verdict

REUSE = "conformance/scenarios/test_keymaterial.py::test_keypackage_not_reused"


def test_identical_runs_have_no_changes():
    run = results(hub_checks())
    diff = diff_results(run, run)
    assert diff.empty
    assert format_results_diff(diff) == "no verdict changed"


def test_verdict_changes_are_grouped_by_requirement():
    old = results(hub_checks())
    new = results(hub_checks(reuse="FAIL"))
    diff = diff_results(old, new)
    assert [req.requirement_id for req in diff.requirements] == ["PROTO-KEYMAT-NO-REUSE"]
    (req,) = diff.requirements
    assert [(c.check_id, c.old, c.new, c.regression) for c in req.checks] == [(REUSE, Verdict.PASS, Verdict.FAIL, True)]
    assert [(s.profile, s.old, s.new) for s in req.statuses] == [
        ("hub-core-06", RequirementStatus.PASS, RequirementStatus.FAIL)
    ]
    assert [(p.profile, p.old, p.new) for p in diff.profiles] == [
        ("hub-core-06", ProfileVerdict.CONFORMANT, ProfileVerdict.NOT_CONFORMANT)
    ]
    assert diff.regressions
    text = format_results_diff(diff)
    assert "PROTO-KEYMAT-NO-REUSE" in text and f"{REUSE}: PASS -> FAIL  (regression)" in text


def test_an_improvement_is_not_a_regression():
    diff = diff_results(results(hub_checks(reuse="FAIL")), results(hub_checks()))
    assert not diff.regressions
    assert diff.requirements[0].checks[0].new == Verdict.PASS


def test_added_and_removed_checks():
    diff = diff_results(results(hub_checks()[:2]), results(hub_checks()))
    (req,) = diff.requirements
    assert (req.checks[0].old, req.checks[0].new) == (None, Verdict.PASS)
    assert "(absent) -> PASS" in format_results_diff(diff)


def test_diff_results_files_exit_codes(tmp_path):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(results(hub_checks()).to_json())
    new.write_text(results(hub_checks(mtls="FAIL")).to_json())
    assert diff_results_files(old, new)[0] == 0
    assert diff_results_files(old, new, fail_on_regression=True)[0] == 1
    assert diff_results_files(new, old, fail_on_regression=True)[0] == 0
    (tmp_path / "bad.json").write_text("{}")
    code, message = diff_results_files(old, tmp_path / "bad.json")
    assert code == 2 and "bad.json" in message


def test_catalogue_diff_added_removed_changed():
    old = list(REQUIREMENTS[:5])
    new = [
        replace(REQUIREMENTS[0], source="draft-ietf-mimi-protocol-07", section="4.2"),
        replace(REQUIREMENTS[1], level="MUST", text="Endpoint URLs in the directory MUST use the https scheme."),
        replace(
            REQUIREMENTS[2], text="A KeyPackage MUST NOT be returned twice\n  <unless> it is a last resort & flagged."
        ),
        *REQUIREMENTS[3:4],
        replace(REQUIREMENTS[4], id="PROTO-IDQUERY-NEW"),
    ]
    diff = diff_catalogues(old, new)
    assert [r.id for r in diff.added] == ["PROTO-IDQUERY-NEW"]
    assert [r.id for r in diff.removed] == ["PROTO-IDQUERY-PARTIALNAME"]
    changes = {c.id: [name for name, _, _ in c.fields] for c in diff.changed}
    # The source revision differs by design and a re-wrapped sentence is not a change.
    assert changes == {"PROTO-TRANSPORT-MTLS": ["section"], "PROTO-DIRECTORY-HTTPS-URLS": ["text", "level"]}
    text = format_catalogue_diff(diff, "-06", "-07")
    assert text.splitlines()[0] == "requirements -06 -> -07: 1 added, 1 removed, 2 changed"
    assert "    level: 'SHOULD' -> 'MUST'" in text


def test_identical_catalogues():
    assert diff_catalogues(REQUIREMENTS, REQUIREMENTS).empty
