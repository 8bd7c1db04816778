"""The fault registry: definitions are complete, and names become the overrides a peer is built with
(that every fault departs from a declared step is tests/test_seam.py's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.catalogue import load_catalogue
from reference_peer.config import ConfigError, parse_config
from reference_peer.faults import REGISTRY, UnknownFault, overrides_for
from reference_peer.faults.registry import define


def test_every_fault_names_known_requirements_and_a_description() -> None:
    catalogue = load_catalogue()
    for fault in REGISTRY.values():
        unknown = [r for r in fault.requirements if r not in catalogue]
        assert not unknown, f"{fault.name} names unknown requirement(s) {unknown}"
        assert len(fault.description) > 15, fault.name


def test_overrides_for_builds_the_departures_of_exactly_the_named_faults() -> None:
    name = next(iter(REGISTRY))
    overrides = overrides_for([name])
    assert overrides.sources == (name,)
    assert set(overrides.departures) == set(REGISTRY[name].departs) | set(REGISTRY[name].hooks)
    assert not overrides_for([]).departures
    with pytest.raises(UnknownFault, match="no-such-fault"):
        overrides_for(["no-such-fault"])


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
