"""The discovery check end to end: PASS against the embedded reference peer (spawned by the
reference connector), and against fake SUTs (url connector) whose directories are wrong: 404 is
FAIL, http URLs WARN (the profiles score PROTO-DIRECTORY-HTTPS-URLS at SHOULD), a missing colon
AMBIGUOUS with AMB-DIRECTORY-JSON."""

from __future__ import annotations

import json
import textwrap

import pytest
from fake_sut import ROLE_OPERATIONS, FakeServer, free_port, info_document, tls_server_context

from conformance.plugin import SCENARIOS_DIR
from reference_peer.pki import write_test_pki

pytest_plugins = ["pytester"]

DISCOVERY = SCENARIOS_DIR / "test_discovery.py"
CHECK = "test_directory_is_served_as_json_naming_https_endpoints"


def run_check(pytester, tmp_path, *args, check: str = CHECK):
    out = tmp_path / "results.jsonl"
    # In-process: the check's own MIMI and control calls carry their timeouts, so this cannot hang.
    pytester.runpytest(f"{DISCOVERY}::{check}", "-p", "no:cacheprovider", "--mimi-results", str(out),
                       "--mimi-output", str(tmp_path / "run"), *args)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    (result,) = [line for line in lines if line["kind"] == "check"]
    assert result["check_id"].endswith(check)
    return result


def test_discovery_passes_against_the_reference_peer(pytester, tmp_path, reference_peer_serves):
    if reference_peer_serves is not None:
        pytest.skip(f"reference-peer serve does not work in this tree: {reference_peer_serves}")
    check = run_check(pytester, tmp_path)
    assert check["verdict"] == "PASS", check
    transcript = json.loads((tmp_path / "run" / check["transcript"]).read_text())
    (exchange,) = [e for e in transcript["exchanges"] if e["kind"] == "mimi"]
    assert exchange["request"]["url"].endswith("/.well-known/mimi-protocol-directory")
    assert exchange["request"]["headers"]["From"] == "mimi@hub.ref.test"
    assert exchange["response"]["status"] == 200
    assert set(exchange["response"]["decoded"]["json"]) >= {"notify", "update", "keyMaterial"}


ENDPOINTS = ["keyMaterial", "update", "notify", "submitMessage", "groupInfo", "requestConsent", "updateConsent",
             "identifierQuery", "reportAbuse", "proxyDownload"]
VARIABLE = {"keyMaterial": "targetUser", "requestConsent": "targetDomain", "updateConsent": "requesterDomain",
            "identifierQuery": "domain", "proxyDownload": "downloadUrl"}


def directory(scheme="https"):
    return {name: f"{scheme}://sut.example/v1/{name}/{{{VARIABLE.get(name, 'roomId')}}}" for name in ENDPOINTS}


def without(name: str) -> bytes:
    document = directory()
    del document[name]
    return json.dumps(document).encode()


def missing_colon() -> bytes:
    text = json.dumps(directory(), indent=2)
    return text.replace('"notify": ', '"notify" ').encode()


@pytest.fixture
def fake_sut(tmp_path):
    """Start a fake SUT (MIMI over TLS, control over HTTP) serving the given directory; return a manifest."""
    servers = []

    def start(status: int, body: bytes, roles: tuple[str, ...] = ("hub", "follower")) -> str:
        _, files = write_test_pki(tmp_path / "sut-pki", ["sut.example"])
        mimi = FakeServer(
            {"/.well-known/mimi-protocol-directory": (status, body, "application/json")},
            tls=tls_server_context(files["sut.example"].cert, files["sut.example"].key, files.ca_cert),
        )
        info = info_document(["sut.example"], list(roles), ROLE_OPERATIONS)
        control = FakeServer({"/v1/info": (200, json.dumps(info).encode(), "application/json")})
        servers.extend([mimi, control])
        manifest = tmp_path / "sut.yaml"
        manifest.write_text(textwrap.dedent(f"""
            manifestVersion: 1
            name: fake SUT
            domains: [sut.example]
            mimi: {{endpoints: {{sut.example: "127.0.0.1:{mimi.port}"}}, ca: {files.ca_cert}}}
            roles: [{", ".join(roles)}]
            control: {{url: "http://127.0.0.1:{control.port}"}}
            connector: {{type: url}}
            suite: {{referenceAddress: "127.0.0.1:{free_port()}"}}
            timeouts: {{startup: 5, request: 5}}
        """))
        return str(manifest)

    yield start
    for server in servers:
        server.stop()


@pytest.mark.parametrize(
    ("status", "body", "verdict", "words"),
    [
        (200, json.dumps(directory()).encode(), "PASS", ""),
        (404, b"{}", "FAIL", "answered HTTP 404"),
        (200, b"[1, 2]", "FAIL", "must be a JSON object"),
        (200, json.dumps(directory("http")).encode(), "WARN", "not an https URL"),
        (200, missing_colon(), "AMBIGUOUS", "AMB-DIRECTORY-JSON"),
    ],
    ids=["good", "not-found", "not-an-object", "http-urls", "missing-colon"],
)
def test_discovery_judges_a_fake_sut(pytester, tmp_path, fake_sut, status, body, verdict, words):
    check = run_check(pytester, tmp_path, "--sut", fake_sut(status, body))
    assert check["verdict"] == verdict, check
    assert words in check["message"]


def test_a_missing_endpoint_fails_only_when_the_declared_roles_need_it(pytester, tmp_path, fake_sut):
    # The directory check judges the document; which endpoints a role needs is the role checks' part.
    check = run_check(pytester, tmp_path, "--sut", fake_sut(200, without("update")))
    assert check["verdict"] == "PASS", check
    hub_check = "test_hub_directory_lists_the_hub_endpoints"
    check = run_check(pytester, tmp_path, "--sut", fake_sut(200, without("update")), check=hub_check)
    assert check["verdict"] == "FAIL", check
    assert "has no entry for ['update']" in check["message"]
    check = run_check(pytester, tmp_path, "--sut", fake_sut(200, without("update"), roles=("follower",)),
                      check=hub_check)
    assert check["verdict"] == "NOT_APPLICABLE", check
    assert "hub role" in check["message"]
