"""docs/peer-config.md lists every key of peer.yaml that the reference peer's parser accepts.

The accepted keys are read from the parser itself: each section is given an unknown key, and the
parser's error names the keys it allows there ("<section>: unknown key(s) [...]; allowed: [...]").
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from reference_peer.config import ConfigError, parse_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "peer-config.md"
_ALLOWED = re.compile(r"^(?P<where>[\w\[\]]+): unknown key\(s\) \[[^\]]*\]; allowed: (?P<allowed>\[[^\]]*\])")
UNKNOWN = "no_such_key_anywhere"


def _allowed(document: dict, base: Path) -> tuple[str, list[str]] | None:
    """The section and keys the parser names when ``document`` holds one unknown key, or None."""
    try:
        parse_config(document, base)
    except ConfigError as exc:
        match = _ALLOWED.match(str(exc))
        if match:
            return match.group("where"), ast.literal_eval(match.group("allowed"))
    return None


def accepted_keys(base: Path) -> set[str]:
    """Every dotted key the parser accepts (``providers[].cert`` for the keys of a list's entries)."""
    (base / "ca.pem").write_text("not read before the keys are checked\n")
    provider = {"domain": "a.example", "cert": "ca.pem", "key": "ca.pem"}
    valid = {"tls": {"ca": "ca.pem"}, "providers": [provider]}
    found = _allowed({**valid, UNKNOWN: 1}, base)
    assert found is not None and found[0] == "config", "the parser no longer names the allowed top-level keys"
    keys = set(found[1])
    for section in found[1]:
        if section == "providers":
            probe = {**valid, "providers": [{**provider, UNKNOWN: 1}]}
            prefix = "providers[]"
        elif section == "tls":
            probe = {**valid, "tls": {"ca": "ca.pem", UNKNOWN: 1}}
            prefix = "tls"
        else:
            probe = {**valid, section: {UNKNOWN: 1}}
            prefix = section
        nested = _allowed(probe, base)
        if nested is not None and nested[0] in (section, "providers[0]"):
            keys.update(f"{prefix}.{key}" for key in nested[1])
    return keys


def test_parser_probe_finds_the_sections(tmp_path) -> None:
    keys = accepted_keys(tmp_path)
    assert {"listen.port", "tls.ca", "providers[].cert", "control.token", "hub_transfer.accepts_from"} <= keys


def test_every_accepted_key_is_documented(tmp_path) -> None:
    doc = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([^`]+)` \|", doc, re.MULTILINE))
    missing = sorted(accepted_keys(tmp_path) - documented)
    assert not missing, f"docs/peer-config.md does not list these peer.yaml keys: {missing}"


@pytest.mark.parametrize("key", ["advertise.port"])
def test_documented_keys_the_design_adds(tmp_path, key) -> None:
    """Keys the documentation promises must exist in the parser too (a doc ahead of the code is a bug)."""
    assert key in accepted_keys(tmp_path), f"docs/peer-config.md documents {key}, which the parser refuses"
