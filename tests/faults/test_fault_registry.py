"""The fault registry: definitions are complete and every fault is wired to a place in the code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conformance.catalogue import load_catalogue
from reference_peer import faults
from reference_peer.config import ConfigError, parse_config
from reference_peer.faults import REGISTRY, UnknownFault, activate, active, active_faults, faults_on
from reference_peer.faults.registry import define

PEER_DIR = Path(faults.__file__).resolve().parent.parent


def test_every_fault_names_known_requirements_and_a_description() -> None:
    catalogue = load_catalogue()
    for fault in REGISTRY.values():
        unknown = [r for r in fault.requirements if r not in catalogue]
        assert not unknown, f"{fault.name} names unknown requirement(s) {unknown}"
        assert len(fault.description) > 15, fault.name


def _hook_sites() -> dict[str, list[str]]:
    """Fault names (or module constants holding them) passed to active(...) anywhere in reference_peer/
    (fault modules may hold the hook logic themselves; the kill matrix proves the hooks are reached)."""
    constants = {}
    for module in (PEER_DIR / "faults").glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "define":
                name = node.value.args[0].value
                for target in node.targets:
                    constants[target.id] = name
    sites: dict[str, list[str]] = {}
    for path in PEER_DIR.rglob("*.py"):
        if path.name == "registry.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "active" and node.args:
                arg = node.args[0]
                name = arg.value if isinstance(arg, ast.Constant) else constants.get(getattr(arg, "id", getattr(arg, "attr", "")))
                if name is not None:
                    sites.setdefault(name, []).append(f"{path.relative_to(PEER_DIR)}:{node.lineno}")
    return sites


def test_every_fault_is_hooked_into_the_reference_peer() -> None:
    sites = _hook_sites()
    unhooked = sorted(set(REGISTRY) - set(sites))
    assert not unhooked, f"faults defined but never asked for with active(...): {unhooked}"
    unknown = sorted(set(sites) - set(REGISTRY))
    assert not unknown, f"active(...) asks for undefined faults: {unknown}"


def test_activate_switches_exactly_the_named_faults_and_refuses_unknown_ones() -> None:
    name = next(iter(REGISTRY))
    with faults_on(name):
        assert active(name) and active_faults() == {name}
    assert not active(name)
    with pytest.raises(UnknownFault, match="no-such-fault"):
        activate(["no-such-fault"])
    with pytest.raises(UnknownFault):
        active("no-such-fault")
    assert active_faults() == frozenset()


def test_define_refuses_bad_names_duplicates_and_faults_without_requirements() -> None:
    name = next(iter(REGISTRY))
    with pytest.raises(ValueError, match="twice"):
        define(name, area="x", requirements=["PROTO-TRANSPORT-MTLS"], description="duplicate")
    with pytest.raises(ValueError, match="lower-case"):
        define("Bad_Name", area="x", requirements=["PROTO-TRANSPORT-MTLS"], description="bad")
    with pytest.raises(ValueError, match="no requirement"):
        define("fresh-name-without-requirements", area="x", requirements=[], description="none")


def test_peer_config_refuses_an_unknown_fault(tmp_path: Path) -> None:
    for name in ("ca.pem", "a.pem", "a.key"):
        (tmp_path / name).write_text("not read by parse_config")
    base = {"tls": {"ca": "ca.pem"}, "providers": [{"domain": "a.example", "cert": "a.pem", "key": "a.key"}]}
    with pytest.raises(ConfigError, match="unknown fault"):
        parse_config({**base, "faults": ["no-such-fault"]}, tmp_path)
    config = parse_config({**base, "faults": [next(iter(REGISTRY))]}, tmp_path)
    assert config.faults == (next(iter(REGISTRY)),)
