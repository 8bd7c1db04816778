"""reference_peer/peer-config.schema.json: it describes every key the parser accepts, and it accepts the
configurations the docs and the harness use (parse_config enforces it after its own checks)."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from reference_peer.config import ConfigError, config_schema, parse_config, schema_errors

ROOT = Path(__file__).resolve().parents[2]


def _doc_probe():
    """tests/byo/test_peer_config_doc.py's probe of the keys the parser accepts (one source of truth)."""
    spec = importlib.util.spec_from_file_location("peer_config_doc_probe", ROOT / "tests/byo/test_peer_config_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.accepted_keys


def schema_keys(schema: dict, prefix: str = "") -> set[str]:
    """Every dotted key the schema describes (``providers[].cert`` for the keys of a list's entries)."""
    keys = set()
    for name, sub in schema.get("properties", {}).items():
        key = f"{prefix}{name}"
        keys.add(key)
        keys |= schema_keys(sub, f"{key}.")
        if isinstance(sub.get("items"), dict):
            keys |= schema_keys(sub["items"], f"{key}[].")
    return keys


def test_the_schema_is_draft_2020_12_and_documents_every_key():
    schema = config_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)

    def walk(node: dict, path: str) -> None:
        for name, sub in node.get("properties", {}).items():
            assert sub.get("description"), f"{path}{name} has no description"
            walk(sub, f"{path}{name}.")
            if isinstance(sub.get("items"), dict):
                walk(sub["items"], f"{path}{name}[].")

    walk(schema, "")


def test_the_schema_names_exactly_the_keys_the_parser_accepts(tmp_path):
    assert schema_keys(config_schema()) == _doc_probe()(tmp_path)


def test_defaults_in_the_schema_match_its_descriptions():
    def walk(node: dict) -> None:
        for sub in node.get("properties", {}).values():
            if "default" in sub and sub["default"] not in (None, [], {}):
                assert f"Default: {sub['default']}" in sub["description"], sub["description"]
            walk(sub)
            if isinstance(sub.get("items"), dict):
                walk(sub["items"])

    walk(config_schema())


def _guide_peer_yaml() -> dict:
    guide = (ROOT / "docs/vendor-guide.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- guide: file=peer.yaml -->\n```yaml\n(.*?)```", guide, re.S)
    assert block, "docs/vendor-guide.md no longer has its peer.yaml block"
    return yaml.safe_load(block.group(1))


def _docstring_example() -> dict:
    import reference_peer.config as config_module

    text = config_module.__doc__.split("::", 1)[1].split("\n\n", 2)[1]
    return yaml.safe_load(text)


def _harness_shaped() -> dict:
    """The shape conformance/harness/connectors.py writes for the suite's reference peers."""
    return {
        "listen": {"address": "127.0.0.1", "port": 0},
        "tls": {"ca": "/run/suite-ca.pem"},
        "providers": [{"domain": "hub.ref.test", "cert": "/run/hub.pem", "key": "/run/hub.key"}],
        "storage": {"path": "/run/state"},
        "consent_mode": "immediate",
        "faults": ["keymaterial.keypackage-reuse"],
        "variants": [],
        "control": {"address": "127.0.0.1", "port": 0},
        "peers_file": "/run/peers.yaml",
        "resolve": {"sut.example": "127.0.0.1"},
        "hub_transfer": {
            "accepts_from": "any",
            "cutover_timeout_ms": 8000,
            "prepare_timeout_ms": 5000,
            "redirect_retention_days": 30,
        },
        "advertise": {"port": 7443},
    }


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(_guide_peer_yaml, id="vendor-guide"),
        pytest.param(_docstring_example, id="config-docstring"),
        pytest.param(_harness_shaped, id="harness"),
    ],
)
def test_the_schema_accepts_the_documented_and_generated_configs(document):
    assert schema_errors(document()) == []


def test_the_vendor_guide_config_parses(tmp_path):
    """Its files exist in a prepared folder: the parser's checks and then the schema accept it."""
    document = _guide_peer_yaml()
    for relative in (document["tls"]["ca"], document["providers"][0]["cert"], document["providers"][0]["key"]):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("not read while parsing\n")
    config = parse_config(document, tmp_path)
    assert config.providers[0].domain == "sut.example" and config.hub_transfer is not None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["providers"][0].update(cert=7), "providers[0].cert: 7 is not of type 'string'"),
        (lambda d: d.update(consent_mode="later"), "consent_mode: 'later' is not one of"),
        (lambda d: d["listen"].update(port=70000), "listen.port: 70000 is greater than the maximum of 65535"),
        (lambda d: d.update(extra=1), "config: Additional properties are not allowed ('extra' was unexpected)"),
    ],
)
def test_schema_errors_name_the_key_path(change, message):
    document = _harness_shaped()
    change(document)
    assert any(error.startswith(message) for error in schema_errors(document)), schema_errors(document)


def test_the_parsers_own_message_comes_first(tmp_path):
    """The hand-written checks run before the schema, so their messages (key path and what is wrong) stay."""
    document = {"tls": {"ca": "ca.pem"}, "providers": [{"domain": "a.example", "cert": "c", "key": "k"}],
                "listen": {"port": 70000}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"^listen\.port: must be <= 65535, got 70000$"):
        parse_config(document, tmp_path)


def test_the_schema_is_package_data_and_linked_from_the_docs():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "peer-config.schema.json" in pyproject["tool"]["setuptools"]["package-data"]["reference_peer"]
    assert "reference_peer/peer-config.schema.json" in (ROOT / "docs/peer-config.md").read_text(encoding="utf-8")
