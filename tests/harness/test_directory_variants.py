"""Directory variants against small fake SUTs (draft-ietf-mimi-protocol-06 §5.1, modelled on ACME's
directory, RFC 8555 §7.1.1): members that are not endpoint names (``meta``) are kept and never judged,
so the directory checks PASS; every bad template is reported at once, each under the requirement it
breaks; a directory a check needs but cannot use blocks it (or, for an optional endpoint, makes it
NOT_APPLICABLE) instead of failing the check's own requirement."""

from __future__ import annotations

import json

import pytest
from test_harness_discovery import directory, fake_sut, run_check  # noqa: F401  (fake_sut: a fixture)

from conformance.harness.mimi import block_on_directory
from conformance.verdicts import Blocked, NotApplicable
from reference_peer.server.client import PeerDirectoryError

pytest_plugins = ["pytester"]

META = {"meta": {"termsOfService": "https://sut.example/tos", "website": "https://sut.example/",
                 "caaIdentities": ["sut.example"]}, "version": 2}
DIRECTORY_CHECKS = ("test_directory_is_served_as_json_naming_https_endpoints",
                    "test_hub_directory_lists_the_hub_endpoints",
                    "test_follower_directory_lists_the_follower_endpoints")


def _outcomes(check: dict) -> dict[str, str]:
    return {o["requirement"]: o["outcome"] for o in check["outcomes"]}


@pytest.mark.parametrize("check_name", DIRECTORY_CHECKS)
def test_a_meta_object_and_other_members_leave_the_directory_checks_passing(pytester, tmp_path, fake_sut,  # noqa: F811
                                                                             check_name):
    body = json.dumps({**directory(), **META}).encode()
    check = run_check(pytester, tmp_path, "--sut", fake_sut(200, body), check=check_name)
    assert check["verdict"] == "PASS", check
    assert set(_outcomes(check).values()) == {"PASS"}, check


def test_two_bad_templates_are_both_reported_and_https_urls_still_pass(pytester, tmp_path, fake_sut):  # noqa: F811
    document = {**directory(), **META}
    document["notify"] = {"url": "https://sut.example/v1/notify"}  # not a string
    document["groupInfo"] = "https://sut.example/v1/groupInfo"  # no {roomId}
    check = run_check(pytester, tmp_path, "--sut", fake_sut(200, json.dumps(document).encode()))
    outcomes = _outcomes(check)
    assert outcomes["PROTO-DIRECTORY-HTTPS-URLS"] == "PASS", check  # every URL that is one is https
    assert outcomes["PROTO-DIRECTORY-WELL-KNOWN"] in ("FAIL", "WARN"), check
    assert "notify:" in check["message"] and "groupInfo:" in check["message"], check


def test_two_http_urls_are_both_reported_under_the_https_rule_only(pytester, tmp_path, fake_sut):  # noqa: F811
    document = directory()
    for name in ("reportAbuse", "proxyDownload"):
        document[name] = document[name].replace("https://", "http://")
    check = run_check(pytester, tmp_path, "--sut", fake_sut(200, json.dumps(document).encode()))
    outcomes = _outcomes(check)
    assert outcomes["PROTO-DIRECTORY-WELL-KNOWN"] == "PASS", check
    assert outcomes["PROTO-DIRECTORY-HTTPS-URLS"] in ("FAIL", "WARN"), check
    assert "reportAbuse" in check["message"] and "proxyDownload" in check["message"], check


SUT_DIRECTORY = "https://sut.example:8443/.well-known/mimi-protocol-directory"


def test_a_bad_template_a_check_needs_blocks_it_by_the_directory_rule():
    error = PeerDirectoryError("two bad", url=SUT_DIRECTORY,
                               bad_templates={"notify": "not a string", "update": "no variable"})
    with pytest.raises(Blocked) as caught:
        block_on_directory(error, "any")
    assert caught.value.requirement == "PROTO-DIRECTORY-WELL-KNOWN"
    assert "'notify'" in caught.value.message and "'update'" in caught.value.message


def test_a_missing_endpoint_blocks_by_its_role_rule_and_an_optional_one_is_not_applicable():
    with pytest.raises(Blocked) as caught:
        block_on_directory(PeerDirectoryError("directory has no 'notify' entry", url=SUT_DIRECTORY,
                                              missing=("notify",)), "follower")
    assert caught.value.requirement == "PROTO-DIRECTORY-FOLLOWER-ENDPOINTS"
    with pytest.raises(NotApplicable, match="identifierQuery"):
        block_on_directory(PeerDirectoryError("directory has no 'identifierQuery' entry", url=SUT_DIRECTORY,
                                              missing=("identifierQuery",)), "any")


def test_an_unreadable_directory_blocks_and_the_suites_own_peers_never_do():
    with pytest.raises(Blocked) as caught:
        block_on_directory(PeerDirectoryError("directory answered 500", url=SUT_DIRECTORY), "any")
    assert caught.value.requirement == "PROTO-DIRECTORY-WELL-KNOWN"
    block_on_directory(PeerDirectoryError("directory answered 500",
                                          url="https://hub.ref.test:1/.well-known/mimi-protocol-directory"), "any")
