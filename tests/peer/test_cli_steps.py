"""``reference-peer steps``: every declared rule step with its requirement IDs, and the faults and
variants that depart from it."""

from __future__ import annotations

import pytest

from reference_peer import cli
from reference_peer.faults import REGISTRY, VARIANTS, Fault, Variant
from reference_peer.overrides import STEPS, Step


def _blocks(output: str) -> dict[str, list[str]]:
    """Step name -> the lines printed for it (its own line first)."""
    blocks: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines():
        if not line.startswith(" "):
            current = line.split()[0]
            blocks[current] = [line]
        else:
            blocks[current].append(line)
    return blocks


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch):
    """A step, a fault that departs from it, a variant that hooks it, and a fault naming a step nobody declared."""
    monkeypatch.setitem(STEPS, "test.cli.planted-rule", Step("test.cli.planted-rule", ("PROTO-X", "PROTO-Y"),
                                                             "a planted rule"))
    monkeypatch.setitem(REGISTRY, "zz-planted-fault", Fault("zz-planted-fault", "test", ("PROTO-X",), "planted fault",
                                                            departs=("test.cli.planted-rule", "test.cli.ghost")))
    monkeypatch.setitem(VARIANTS, "zz-planted-variant", Variant("zz-planted-variant", "test", "a planted permission",
                                                                "planted variant",
                                                                hooks={"test.cli.planted-rule": lambda *a: None}))


def test_steps_lists_each_step_with_its_requirements_and_departures(planted, capsys) -> None:
    assert cli.main(["steps"]) == 0
    blocks = _blocks(capsys.readouterr().out)
    assert blocks["test.cli.planted-rule"] == [
        f"{'test.cli.planted-rule':<56} PROTO-X PROTO-Y",
        "    departed from by: fault zz-planted-fault, variant zz-planted-variant+hook",
    ]
    assert blocks["test.cli.ghost"][0].endswith("(not declared by any rule module)")
    assert blocks["test.cli.ghost"][1] == "    departed from by: fault zz-planted-fault"
    steps = cli.declared_steps()
    assert set(steps) <= set(blocks)
    for name, declared in steps.items():
        assert blocks[name][0].split()[1:] == list(declared.requirements), name
        assert blocks[name][-1].startswith("    departed from by: "), name
    assert list(blocks)[: len(steps)] == sorted(steps)


def test_steps_verbose_prints_each_summary(planted, capsys) -> None:
    assert cli.main(["-v", "steps"]) == 0
    blocks = _blocks(capsys.readouterr().out)
    assert blocks["test.cli.planted-rule"][1] == "    a planted rule"
    for name, declared in cli.declared_steps().items():
        assert blocks[name][1] == f"    {declared.summary}", name
