from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from report_builders import check, hub_checks, mixed_results, results

from reports.allure import AllureLabels, allure_labels, apply_allure_labels
from reports.badge import BADGE_COLOURS, render_badge
from reports.baseline import gate, parse_baseline
from reports.junit import render_junit, split_check_id
from reports.markdown import md_cell, render_markdown
from reports.model import ProfileVerdict

SVG = "{http://www.w3.org/2000/svg}"

# --- JUnit -----------------------------------------------------------------------------------


def junit_root(**kwargs) -> ET.Element:
    return ET.fromstring(render_junit(mixed_results(), **kwargs).encode("utf-8"))


def test_junit_totals_map_verdicts():
    root = junit_root()
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "6", "failures": "1", "errors": "1", "skipped": "1"}  # fmt: skip
    assert len(root.findall(".//testcase/failure")) == 1
    assert len(root.findall(".//testcase/error")) == 1
    assert len(root.findall(".//testcase/skipped")) == 1


def test_junit_one_suite_per_area_with_consistent_counts():
    root = junit_root()
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    assert sorted(suites) == ["discovery", "fanout", "keymaterial", "transport"]
    for suite in suites.values():
        assert int(suite.get("tests")) == len(suite.findall("testcase"))
        assert int(suite.get("failures")) == len(suite.findall("testcase/failure"))
    assert suites["keymaterial"].find("testcase/failure").get("message") == (
        "KeyPackage <kp-1> returned twice & not last resort"
    )


def test_junit_testcase_names_and_properties():
    case = junit_root().find(".//testcase[@name='test_keypackage_not_reused']")
    assert case.get("classname") == "conformance.scenarios.test_keymaterial"
    props = [(p.get("name"), p.get("value")) for p in case.find("properties")]
    assert ("requirement", "PROTO-KEYMAT-NO-REUSE") in props
    assert ("verdict", "FAIL") in props
    assert ("transcript", "transcripts/reuse.json") in props


def test_junit_warn_is_a_pass_with_a_note_or_a_failure_with_the_flag():
    case = junit_root().find(".//testcase[@name='test_directory_https']")
    assert case.find("failure") is None
    assert case.find("system-out").text.startswith("WARN: ")
    strict = junit_root(warn_as_failure=True)
    assert strict.get("failures") == "2"
    assert strict.find(".//testcase[@name='test_directory_https']/failure").get("type") == "WARN"


def test_junit_ambiguous_passes_with_its_ids():
    case = junit_root().find(".//testcase[@name='test_mtls_as_follower']")
    assert case.find("failure") is None and case.find("error") is None
    assert case.find("system-out").text.startswith("AMBIGUOUS AMB-CERT-SAN: ")


def test_junit_survives_control_characters_in_messages():
    run = results([check("test_x", "FAIL", ["PROTO-TRANSPORT-MTLS"], message="bad byte \x00\x1b here")])
    root = ET.fromstring(render_junit(run).encode("utf-8"))
    assert root.find(".//failure").get("message") == "bad byte \ufffd\ufffd here"


def test_split_check_id():
    assert split_check_id("a/b/test_x.py::Cls::test_y[p-1]") == ("a.b.test_x.Cls", "test_y[p-1]")
    assert split_check_id("plain") == ("", "plain")


# --- Markdown --------------------------------------------------------------------------------


def test_markdown_summary_lists_profiles_and_failures():
    text = render_markdown(mixed_results())
    assert text.startswith("## MIMI conformance: Example Server 1.2.3\n")
    assert "| MIMI hub core (protocol-06) (`hub-core-06`) | ❌ NOT_CONFORMANT | 3 | 1 | 1 | 1 | 0 | 0 | 0 |" in text
    assert "⏸️ INCOMPLETE" in text
    assert "### Failures (2)" in text
    assert "KeyPackage &lt;kp-1&gt; returned twice & not last resort" in text
    assert "### Warnings (1)" in text
    assert "### Ambiguous (the draft contradicts itself; not a failure) (1)" in text


def test_markdown_table_rows_have_a_stable_column_count():
    run = results([check("test_pipe", "FAIL", ["PROTO-TRANSPORT-MTLS"], message="a | b\nc")])
    rows = [line for line in render_markdown(run).splitlines() if line.startswith("| FAIL")]
    assert rows == ["| FAIL | PROTO-TRANSPORT-MTLS | conformance/scenarios/test_transport.py::test_pipe | a \\| b c "
                    "| “Servers MUST authenticate each other with mutually-authenticated TLS.” |"]


def test_markdown_caps_long_lists():
    many = [check(f"test_{n}", "FAIL", ["PROTO-TRANSPORT-MTLS"]) for n in range(30)]
    text = render_markdown(results(many), limit=10)
    assert "…and 20 more" in text
    assert text.count("| FAIL |") == 10


def test_markdown_gate_section():
    run = results(hub_checks())
    report = gate(run, parse_baseline({"version": 1, "expected_failures": [
        {"check": run.checks[2].check_id, "reason": "fixed in 2.4"}]}))  # fmt: skip
    text = render_markdown(run, gate=report)
    assert "### Baseline gate: not passed" in text
    assert "Stale baseline entries (now passing: remove them): 1" in text


def test_md_cell():
    assert md_cell("x|y\n<b>") == "x\\|y &lt;b&gt;"


# --- Badge -----------------------------------------------------------------------------------


@pytest.mark.parametrize("verdict", list(ProfileVerdict))
def test_badge_is_well_formed_svg_coloured_by_verdict(verdict):
    profile = mixed_results().profiles[0]
    profile = profile.__class__(**{**profile.__dict__, "verdict": verdict, "name": "hub-core-06<&>"})
    root = ET.fromstring(render_badge(profile))
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title").text == f"MIMI hub-core-06<&>: {verdict}"
    fills = [rect.get("fill") for rect in root.iter(f"{SVG}rect")]
    assert BADGE_COLOURS[verdict] in fills
    assert len({BADGE_COLOURS[v] for v in ProfileVerdict}) == 4
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts[0] == "MIMI hub-core-06<&>"
    assert int(root.get("width")) > 0


# --- Allure ----------------------------------------------------------------------------------


def test_allure_labels_from_area_requirements_and_level():
    record = check("test_x", "FAIL", ["PROTO-DIRECTORY-HTTPS-URLS", "PROTO-TRANSPORT-MTLS"], area="transport")
    labels = allure_labels(record, {"PROTO-TRANSPORT-MTLS": "MUST", "PROTO-DIRECTORY-HTTPS-URLS": "SHOULD"})
    assert labels == AllureLabels(
        epic="transport",
        features=("PROTO-DIRECTORY-HTTPS-URLS", "PROTO-TRANSPORT-MTLS"),
        severity="critical",
        tags=("role:hub",),
    )
    assert allure_labels(record, {"PROTO-DIRECTORY-HTTPS-URLS": "SHOULD"}).severity == "normal"
    assert allure_labels(record, {"PROTO-DIRECTORY-HTTPS-URLS": "MAY"}).severity == "minor"


def test_reports_allure_does_not_import_allure_at_import_time():
    import subprocess
    import sys

    code = "import sys, reports.allure; print('allure' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_apply_allure_labels_without_allure_installed():
    try:
        import allure  # noqa: F401
    except ImportError:
        assert apply_allure_labels(AllureLabels("e", ("F",), "normal", ())) is False
    else:
        pytest.skip("allure-pytest is installed; the fallback path is not reachable")


def test_badges_inlined_in_one_page_do_not_share_a_clip_path():
    profile = mixed_results().profiles[0]
    ids = set()
    for verdict in ProfileVerdict:
        root = ET.fromstring(render_badge(profile.__class__(**{**profile.__dict__, "verdict": verdict})))
        (clip,) = root.iter(f"{SVG}clipPath")
        assert root.find(f"{SVG}g").get("clip-path") == f"url(#{clip.get('id')})"
        ids.add(clip.get("id"))
    assert len(ids) == len(ProfileVerdict)
