"""The SUT manifest: schema validation with errors naming the field, defaults, paths, the hash."""

from __future__ import annotations

import json

import pytest
import yaml

from conformance.harness.manifest import ManifestError, canonical_sha256, load_manifest, reference_manifest

GOOD = {
    "manifestVersion": 1,
    "name": "Example Messenger",
    "vendor": "Example Inc.",
    "version": "4.2.0",
    "domains": ["sut.example", "alt.example"],
    "mimi": {"endpoints": {"sut.example": "127.0.0.1:8443", "alt.example": "https://alt.example:9443"}, "ca": "ca.pem"},
    "roles": ["hub", "follower"],
    "consentMode": "quarantine",
    "features": ["identifierQuery", "proxyDownload"],
    "control": {"url": "http://127.0.0.1:8480/", "tokenEnv": "SUT_TOKEN", "operations": ["getInfo", "createUser"]},
    "connector": {"type": "command", "argv": ["./run-sut", "--test"], "env": {"LOG": "debug"}, "cwd": "bin"},
    "timeouts": {"startup": 30, "request": 5},
}


def write(tmp_path, document, name="sut.yaml"):
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document) if name.endswith(".yaml") else json.dumps(document))
    return path


def errors_for(tmp_path, **changes):
    document = json.loads(json.dumps(GOOD))
    for dotted, value in changes.items():
        target = document
        *parents, last = dotted.split("__")
        for key in parents:
            target = target[key]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    with pytest.raises(ManifestError) as caught:
        load_manifest(write(tmp_path, document))
    return str(caught.value)


@pytest.mark.parametrize("name", ["sut.yaml", "sut.json"])
def test_a_good_manifest_loads_with_paths_resolved(tmp_path, name):
    manifest = load_manifest(write(tmp_path, GOOD, name))
    assert manifest.name == "Example Messenger"
    assert manifest.domains == ("sut.example", "alt.example")
    assert manifest.connector_type == "command"
    assert manifest.connector["cwd"] == str(tmp_path / "bin")
    assert manifest.ca == tmp_path / "ca.pem"
    direct = manifest.endpoints["sut.example"]
    assert (direct.base_url, direct.connect) == ("https://sut.example:8443", "127.0.0.1")
    dns = manifest.endpoints["alt.example"]
    assert (dns.base_url, dns.connect) == ("https://alt.example:9443", None)
    assert manifest.control_url == "http://127.0.0.1:8480"
    assert manifest.control_operations == ("getInfo", "createUser")
    assert manifest.timeouts.startup == 30 and manifest.timeouts.control == 10  # given, and default
    assert manifest.features == ("identifierQuery", "proxyDownload")
    assert manifest.sha256 == canonical_sha256(GOOD)


def test_the_suite_section_defaults_resolves_pki_and_refuses_port_0_for_a_url_sut(tmp_path):
    manifest = load_manifest(write(tmp_path, GOOD))
    assert (manifest.suite_pki, manifest.reference_address) == (None, "127.0.0.1:7443")
    without_cwd = {**GOOD, "connector": {"type": "command", "argv": ["./run-sut"]}}
    assert load_manifest(write(tmp_path, without_cwd)).connector["cwd"] == str(tmp_path)  # the manifest's folder
    suite = {**GOOD, "suite": {"pki": "suite-pki", "referenceAddress": "0.0.0.0:0"}}
    manifest = load_manifest(write(tmp_path, suite))
    assert (manifest.suite_pki, manifest.reference_address) == (tmp_path / "suite-pki", "0.0.0.0:0")
    url = {**suite, "connector": {"type": "url"}}
    with pytest.raises(ManifestError, match="a url SUT is configured before the run: give a fixed port"):
        load_manifest(write(tmp_path, url))
    assert "suite.referenceAddress" in errors_for(tmp_path, suite={"referenceAddress": "7443"})
    assert "suite: Additional properties are not allowed ('unknown'" in errors_for(tmp_path, suite={"unknown": 1})


def test_hash_ignores_key_order_and_formatting_but_not_content():
    reordered = dict(reversed(list(GOOD.items())))
    assert canonical_sha256(reordered) == canonical_sha256(GOOD)
    assert canonical_sha256({**GOOD, "version": "4.2.1"}) != canonical_sha256(GOOD)


def test_token_comes_from_the_named_environment_variable(tmp_path, monkeypatch):
    manifest = load_manifest(write(tmp_path, GOOD))
    monkeypatch.delenv("SUT_TOKEN", raising=False)
    with pytest.raises(ManifestError, match="SUT_TOKEN is not set"):
        manifest.control_token()
    monkeypatch.setenv("SUT_TOKEN", "s3cret")
    assert manifest.control_token() == "s3cret"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"name": ...}, "(top level)", "'name' is a required property"),
        ({"roles": ["hub", "relay"]}, "roles[1]", "'relay' is not one of"),
        ({"features": ["telepathy"]}, "features[0]", "'telepathy' is not one of"),
        ({"consentMode": "maybe"}, "consentMode", "'maybe' is not one of"),
        ({"connector__argv": "run-sut"}, "connector.argv", "is not of type 'array'"),
        ({"connector__argv": []}, "connector.argv", "should be non-empty"),
        ({"connector__type": "ftp"}, "connector.type", "expected one of"),
        ({"connector__image": "x"}, "connector", "Additional properties"),
        ({"mimi__endpoints__sut.example": "http://sut.example"}, "mimi.endpoints.sut.example", "is not valid"),
        ({"timeouts__request": 0}, "timeouts.request", "less than or equal to the minimum"),
        ({"control__url": "ftp://x"}, "control.url", "does not match"),
        ({"version": 4.2}, "version", "is not of type 'string'"),
        ({"domains": ["Not A Domain"]}, "domains[0]", "does not match"),
        ({"control": ...}, "(top level)", "'control' is a required property"),
    ],
)
def test_bad_manifests_name_the_field(tmp_path, changes, field, words):
    message = errors_for(tmp_path, **changes)
    line = next((ln for ln in message.splitlines() if ln.strip().startswith(f"- {field}:")), None)
    assert line is not None, message
    assert words in line, message


def test_endpoint_for_an_undeclared_domain_is_refused(tmp_path):
    message = errors_for(tmp_path, mimi__endpoints={"sut.example": "127.0.0.1:1", "alt.example": "127.0.0.1:2",
                                                     "other.example": "127.0.0.1:3"})
    assert "mimi.endpoints.other.example" in message


def test_a_missing_ca_file_is_named(tmp_path):
    message = errors_for(tmp_path, mimi__ca="missing.pem")
    assert "mimi.ca: file not found" in message


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ManifestError, match="cannot read SUT manifest"):
        load_manifest(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ManifestError, match="not valid YAML or JSON"):
        load_manifest(bad)


def test_the_reference_manifest():
    manifest = reference_manifest()
    assert manifest.connector_type == "reference"
    assert set(manifest.roles) == {"hub", "follower"}
    assert len(manifest.sha256) == 64
