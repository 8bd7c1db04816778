"""The pytest plugin: collection errors for undeclared or unknown requirement IDs, inertness for
ordinary tests, per-check verdicts (results file, terminal summary, pytest outcomes), role and
feature gating."""

from __future__ import annotations

import json
import textwrap

import pytest
from fake_sut import free_port

pytest_plugins = ["pytester"]

MUST_ID = "PROTO-TRANSPORT-FROM-ADDR-SPEC"  # catalogue level MUST
SHOULD_ID = "PROTO-FANOUT-RETRY-NON-201"  # catalogue level SHOULD
IMPLIED_MUST = "PROTO-DIRECTORY-WELL-KNOWN"  # IMPLIED; the shipped profiles score it MUST
IMPLIED_SHOULD = "PROTO-DIRECTORY-HTTPS-URLS"  # IMPLIED; the shipped profiles score it SHOULD


def results(path):
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["kind"] == "run"
    assert all(line["kind"] == "check" for line in lines[1:])
    ids = [line["check_id"] for line in lines[1:]]
    assert len(ids) == len(set(ids)), f"a check recorded twice: {ids}"
    return lines[0], {line["check_id"].split("::")[-1]: line for line in lines[1:]}


def test_a_check_without_requirement_ids_is_a_collection_error(pytester):
    pytester.makepyfile(test_checks="def test_unmarked():\n    pass\n")
    result = pytester.runpytest("--sut", "reference")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting test_checks.py*", "*test_unmarked: declares no requirement IDs*"])


def test_an_unknown_requirement_id_is_a_collection_error(pytester):
    pytester.makepyfile(test_checks=f"""
        import pytest

        @pytest.mark.requirements("{MUST_ID}", "PROTO-NO-SUCH-THING")
        def test_typo():
            pass
    """)
    result = pytester.runpytest("--sut", "reference")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*test_typo: unknown requirement ID(s) *PROTO-NO-SUCH-THING* (not in the requirement catalogue)"]
    )


def test_a_bad_role_or_feature_is_a_collection_error(pytester):
    pytester.makepyfile(test_checks=f"""
        import pytest

        @pytest.mark.requirements("{MUST_ID}")
        @pytest.mark.role("relay")
        def test_role():
            pass

        @pytest.mark.requirements("{MUST_ID}")
        @pytest.mark.feature("telepathy")
        def test_feature():
            pass
    """)
    result = pytester.runpytest("--sut", "reference")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*test_role: role marker must name exactly one of*", "*test_feature: unknown feature*"]
    )


def test_the_plugin_is_inert_for_ordinary_tests(pytester):
    pytester.makepyfile(test_plain="def test_unmarked():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "mimi-conformance verdicts" not in result.stdout.str()


CHECKS = f"""
import pytest

from conformance.verdicts import SutMisbehaviour, ambiguous, fail, not_applicable, observed

@pytest.fixture
def broken_fixture():
    raise ValueError("fixture bug")

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown bug")

@pytest.mark.requirements("{MUST_ID}")
def test_pass(recorder):
    recorder.note("all good")
    observed("{MUST_ID}", "all good")

@pytest.mark.requirements("{MUST_ID}")
def test_must_assert():
    assert 1 == 2, "the SUT answered 1"

@pytest.mark.requirements("{SHOULD_ID}")
def test_should_assert():
    assert False, "no retry"

@pytest.mark.requirements("{IMPLIED_MUST}")
def test_implied_must():
    fail("no directory")

@pytest.mark.requirements("{IMPLIED_SHOULD}")
def test_implied_should():
    fail("http URL")

@pytest.mark.requirements("{MUST_ID}", "{SHOULD_ID}")
def test_fail_names_the_should():
    fail("only the SHOULD part", requirement="{SHOULD_ID}")

@pytest.mark.requirements("{MUST_ID}")
def test_not_applicable():
    not_applicable("no franking here")

@pytest.mark.requirements("{MUST_ID}")
def test_skip():
    pytest.skip("skipped for a reason")

@pytest.mark.requirements("{MUST_ID}")
def test_ambiguous():
    ambiguous("AMB-DIRECTORY-JSON", "missing colon")

@pytest.mark.requirements("{MUST_ID}")
def test_harness_bug():
    raise RuntimeError("suite bug")

@pytest.mark.requirements("{MUST_ID}")
def test_fixture_bug(broken_fixture):
    pass

@pytest.mark.requirements("{MUST_ID}")
def test_teardown_bug(broken_teardown):
    observed("{MUST_ID}", "the call itself held")

@pytest.mark.requirements("{SHOULD_ID}")
def test_sut_misbehaviour():
    raise SutMisbehaviour("connection reset")

@pytest.mark.requirements("{MUST_ID}")
@pytest.mark.feature("franking")
def test_needs_franking():
    raise AssertionError("must not run")

@pytest.mark.requirements("{MUST_ID}")
def test_poll_timeout(poll_until, deadline):
    assert not deadline.expired()
    poll_until(lambda: [], timeout=0.2, interval=0.05, what="the Welcome to reach Bob")
"""

EXPECTED = {
    "test_pass": "PASS",
    "test_must_assert": "FAIL",
    "test_should_assert": "WARN",
    "test_implied_must": "FAIL",
    "test_implied_should": "WARN",
    "test_fail_names_the_should": "WARN",
    "test_not_applicable": "NOT_APPLICABLE",
    "test_skip": "NOT_APPLICABLE",
    "test_ambiguous": "AMBIGUOUS",
    "test_harness_bug": "HARNESS_ERROR",
    "test_fixture_bug": "HARNESS_ERROR",
    "test_teardown_bug": "HARNESS_ERROR",
    "test_sut_misbehaviour": "FAIL",
    "test_needs_franking": "NOT_APPLICABLE",
    "test_poll_timeout": "FAIL",
}


def test_verdicts_are_computed_recorded_and_summarised(pytester, tmp_path):
    pytester.makepyfile(test_verdicts=CHECKS)
    out = tmp_path / "results.jsonl"
    result = pytester.runpytest("--sut", "reference", "--seed", "42", "--mimi-results", str(out),
                                "--mimi-output", str(tmp_path / "run"))
    header, checks = results(out)
    assert {name: check["verdict"] for name, check in checks.items()} == EXPECTED
    assert header["seed"] == 42 and len(header["sut"]["manifestSha256"]) == 64
    assert "draft-ietf-mimi-protocol-06" in header["drafts"]
    assert checks["test_must_assert"]["message"].startswith("the SUT answered 1")
    assert checks["test_must_assert"]["scored_level"] == "MUST"
    assert checks["test_implied_should"]["scored_level"] == "SHOULD"
    assert checks["test_not_applicable"]["message"] == "no franking here"
    assert checks["test_skip"]["message"] == "skipped for a reason"
    assert checks["test_ambiguous"]["ambiguity"] == "AMB-DIRECTORY-JSON"
    assert "fixture bug" in checks["test_fixture_bug"]["message"]
    assert "teardown bug" in checks["test_teardown_bug"]["message"]
    assert "franking" in checks["test_needs_franking"]["message"]
    assert "waiting for the Welcome to reach Bob" in checks["test_poll_timeout"]["message"]
    notes = json.loads((tmp_path / "run" / checks["test_poll_timeout"]["transcript"]).read_text())["exchanges"]
    assert [n["text"] for n in notes][0] == "waiting up to 0.2s for the Welcome to reach Bob"
    transcript = checks["test_pass"]["transcript"]
    assert json.loads((tmp_path / "run" / transcript).read_text())["exchanges"][0]["text"] == "all good"
    # FAIL and HARNESS_ERROR fail pytest; NOT_APPLICABLE skips; WARN and AMBIGUOUS pass.
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 5  # must_assert, implied_must, harness_bug, sut_misbehaviour, poll_timeout
    assert outcomes["errors"] == 2  # fixture_bug (setup), teardown_bug (teardown)
    assert outcomes["skipped"] == 3
    assert outcomes["passed"] == 6  # pass, 3 WARN, AMBIGUOUS, teardown_bug's call
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*mimi-conformance verdicts*",
        "verdicts * PASS 1, FAIL 4, WARN 3, NOT_APPLICABLE 3, HARNESS_ERROR 3, AMBIGUOUS 1",
        "total * PASS 1, FAIL 4, WARN 3, NOT_APPLICABLE 3, HARNESS_ERROR 3, AMBIGUOUS 1",
        "seed 42; SUT manifest sha256 *",
    ])


def test_a_profile_decides_the_level(pytester, tmp_path):
    pytester.makepyfile(test_levels=f"""
        import pytest

        @pytest.mark.requirements("{IMPLIED_MUST}")
        def test_implied():
            assert False
    """)
    out = tmp_path / "r.jsonl"
    pytester.runpytest("--sut", "reference", "--mimi-profile", "hub-core-06", "--mimi-results", str(out))
    _, checks = results(out)
    assert checks["test_implied"]["verdict"] == "FAIL"
    result = pytester.runpytest("--sut", "reference", "--mimi-profile", "no-such-profile")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*unknown profile 'no-such-profile'*"])


def test_role_gating_and_a_bad_manifest(pytester, tmp_path):
    from fake_sut import ROLE_OPERATIONS, FakeServer, info_document

    # A url SUT is connected before any check runs: its control API has to answer.
    info = info_document(["sut.example"], ["hub"], ROLE_OPERATIONS)
    control = FakeServer({"/v1/info": (200, json.dumps(info).encode(), "application/json")})
    (tmp_path / "ca.pem").write_text("x")
    manifest = tmp_path / "sut.yaml"
    manifest.write_text(textwrap.dedent(f"""
        manifestVersion: 1
        name: hub-only SUT
        domains: [sut.example]
        mimi: {{endpoints: {{sut.example: "127.0.0.1:1"}}, ca: ca.pem}}
        roles: [hub]
        control: {{url: "http://127.0.0.1:{control.port}"}}
        connector: {{type: url}}
        suite: {{referenceAddress: "127.0.0.1:{free_port()}"}}
    """))
    pytester.makepyfile(test_roles=f"""
        import pytest

        @pytest.mark.requirements("{MUST_ID}")
        @pytest.mark.role("follower")
        def test_follower_only():
            raise AssertionError("must not run")

        @pytest.mark.requirements("{MUST_ID}")
        @pytest.mark.role("hub")
        def test_hub_only():
            from conformance.verdicts import observed
            observed("{MUST_ID}", "ran")
    """)
    out = tmp_path / "r.jsonl"
    try:
        pytester.runpytest("--sut", str(manifest), "--mimi-results", str(out))
    finally:
        control.stop()
    _, checks = results(out)
    assert checks["test_follower_only"]["verdict"] == "NOT_APPLICABLE"
    assert "follower role" in checks["test_follower_only"]["message"]
    assert checks["test_hub_only"]["verdict"] == "PASS"
    manifest.write_text("manifestVersion: 1\nname: broken\n")
    result = pytester.runpytest("--sut", str(manifest))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*invalid SUT manifest*", "*'domains' is a required property*"])


def test_an_image_connector_that_cannot_run_stops_the_run_before_any_verdict(pytester, tmp_path, monkeypatch):
    from conformance.harness.connectors import docker_unavailable_reason

    # No engine, even on a machine that has one: the Docker SDK looks only where DOCKER_HOST says.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    reason = docker_unavailable_reason()
    assert reason is not None
    manifest = tmp_path / "sut.yaml"
    manifest.write_text(textwrap.dedent("""
        manifestVersion: 1
        name: containerised SUT
        domains: [sut.example]
        roles: [hub]
        connector: {type: image, image: "example/mimi-sut:1"}
    """))
    pytester.makepyfile(test_image=f"""
        import pytest

        @pytest.mark.requirements("{MUST_ID}")
        def test_needs_the_sut(sut):
            raise AssertionError("must not run")

        @pytest.mark.requirements("{MUST_ID}")
        def test_also_needs_the_sut(sut):
            raise AssertionError("must not run")
    """)
    out = tmp_path / "r.jsonl"
    result = pytester.runpytest("--sut", str(manifest), "--mimi-results", str(out))
    # A setup problem, not the SUT's non-conformance: a usage error with the reason, no check results.
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*the SUT's connector cannot run here: {reason}*"])
    assert not out.exists()


def test_manifest_and_info_disagreeing_stops_the_run_with_a_usage_error(pytester, tmp_path):
    from fake_sut import FakeServer, info_document

    info = info_document(["sut.example"], ["hub", "follower"], ["getInfo"])
    control = FakeServer({"/v1/info": (200, json.dumps(info).encode(), "application/json")})
    (tmp_path / "ca.pem").write_text("x")
    manifest = tmp_path / "sut.yaml"
    manifest.write_text(textwrap.dedent(f"""
        manifestVersion: 1
        name: hub-only SUT
        domains: [sut.example]
        mimi: {{endpoints: {{sut.example: "127.0.0.1:1"}}, ca: ca.pem}}
        roles: [hub]
        control: {{url: "http://127.0.0.1:{control.port}"}}
        connector: {{type: url}}
        suite: {{referenceAddress: "127.0.0.1:{free_port()}"}}
    """))
    pytester.makepyfile(test_mismatch=f"""
        import pytest

        @pytest.mark.requirements("{MUST_ID}")
        def test_needs_the_sut(sut):
            pass
    """)
    try:
        result = pytester.runpytest("--sut", str(manifest))
    finally:
        control.stop()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*SUT configuration error: the SUT manifest and GET /v1/info disagree: roles*"])


def test_results_are_collected_once_under_xdist(pytester, tmp_path):
    pytester.makepyfile(test_parallel=f"""
        import pytest

        @pytest.mark.requirements("{MUST_ID}")
        @pytest.mark.parametrize("n", range(4))
        def test_many(n):
            from conformance.verdicts import expect
            expect("{MUST_ID}", n != 3, "three")
    """)
    out = tmp_path / "r.jsonl"
    result = pytester.runpytest("-n", "2", "--sut", "reference", "--mimi-results", str(out))
    _, checks = results(out)
    assert sorted((name, c["verdict"]) for name, c in checks.items()) == [
        ("test_many[0]", "PASS"), ("test_many[1]", "PASS"), ("test_many[2]", "PASS"), ("test_many[3]", "FAIL"),
    ]
    result.stdout.fnmatch_lines(["total * PASS 3, FAIL 1"])


def test_allure_results_carry_area_requirement_and_severity_labels(pytester):
    pytest.importorskip("allure_pytest")
    pytester.makepyfile(test_transport="""
import pytest

@pytest.mark.requirements("PROTO-TRANSPORT-MTLS", "PROTO-DIRECTORY-HTTPS-URLS")
@pytest.mark.role("hub")
def test_labelled():
    pass
""")
    result = pytester.runpytest_subprocess("--sut", "reference", "--alluredir", "allure", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    import json

    (document,) = [json.loads(p.read_text()) for p in (pytester.path / "allure").glob("*-result.json")]
    labels = {(label["name"], label["value"]) for label in document["labels"]}
    assert ("epic", "transport") in labels
    assert {("feature", "PROTO-TRANSPORT-MTLS"), ("feature", "PROTO-DIRECTORY-HTTPS-URLS")} <= labels
    assert ("severity", "critical") in labels  # MUST (mTLS) is the strictest level judged
    assert ("tag", "role:hub") in labels
