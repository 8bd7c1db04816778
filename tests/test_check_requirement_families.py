"""No check scores an extension requirement (``EXT-``) and a core one (``PROTO-`` etc.) together.

A check naming both would make a core profile depend on the project's extensions: a SUT without the
extension could never complete the core requirement, and extension-only behaviour (control-API events,
consent-mode specifics) would be scored against a core ID. Core requirements are judged by core checks.
"""

from __future__ import annotations

from types import SimpleNamespace

from conformance.selftest import inventory


def _mixed(checks) -> list[str]:
    out = []
    for check in checks:
        ext = sorted(r for r in check.requirements if r.startswith("EXT-"))
        core = sorted(r for r in check.requirements if not r.startswith("EXT-"))
        if ext and core:
            out.append(f"{check.id}: extension {ext} with core {core}")
    return out


def test_no_check_names_both_extension_and_core_requirements() -> None:
    checks = inventory()
    assert checks, "the inventory collected no checks"
    mixed = _mixed(checks)
    assert not mixed, "checks naming both EXT- and core requirements:\n  " + "\n  ".join(mixed)


def test_the_family_rule_itself() -> None:
    checks = [SimpleNamespace(id="a", requirements=("EXT-X", "PROTO-Y")),
              SimpleNamespace(id="b", requirements=("EXT-X", "EXT-Z")),
              SimpleNamespace(id="c", requirements=("PROTO-Y", "HUBXFER-Q"))]
    assert _mixed(checks) == ["a: extension ['EXT-X'] with core ['PROTO-Y']"]
