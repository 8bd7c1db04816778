"""The fault registry: named deliberate violations of the reference peer, switched on by configuration.

A fault exists to prove that the checks judging a rule can fail: with the fault on, the reference
peer breaks exactly that rule (and, ideally, nothing else). Each fault names the requirement IDs it
breaks; the self-test (``mimi-conformance selftest``) expects checks of those requirements to FAIL.
An allowed variant is the opposite: a behaviour the draft permits, with which every check must pass.

Both are *overrides*: named departures from the steps the rule code declares
(:mod:`reference_peer.overrides`). ``departs`` lists the steps performed otherwise; ``hooks`` gives
the functions that replace or extend a step. :func:`overrides_for` turns names into the
:class:`~reference_peer.overrides.Overrides` a peer is built with; nothing here is process-wide.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping

from ..overrides import STEPS, Overrides, UnknownStep

NAME = re.compile(r"^[a-z][a-z0-9-]*$")


@dataclasses.dataclass(frozen=True)
class Fault:
    name: str
    area: str
    requirements: tuple[str, ...]
    description: str
    departs: tuple[str, ...] = ()
    hooks: Mapping[str, Callable] = dataclasses.field(default_factory=dict)


REGISTRY: dict[str, Fault] = {}


@dataclasses.dataclass(frozen=True)
class Variant:
    """An allowed variant: a behaviour that differs from the reference default in a way the draft
    permits (``permitted_by``: the sentence, section or AMB- ID). Every check must still pass with it on."""

    name: str
    area: str
    permitted_by: str
    description: str
    departs: tuple[str, ...] = ()
    hooks: Mapping[str, Callable] = dataclasses.field(default_factory=dict)


VARIANTS: dict[str, Variant] = {}


def define_variant(name: str, *, area: str, permitted_by: str, description: str, departs: Iterable[str] = (),
                   hooks: Mapping[str, Callable] | None = None) -> str:
    """Register an allowed variant; returns its name. Switched on like a fault (``variants:`` in peer.yaml)."""
    if not NAME.match(name):
        raise ValueError(f"variant name {name!r} is not lower-case words joined by '-'")
    if name in VARIANTS or name in REGISTRY:
        raise ValueError(f"variant {name!r} is defined twice (or is also a fault)")
    if len(permitted_by) < 10:
        raise ValueError(f"variant {name!r} must cite what permits it")
    VARIANTS[name] = Variant(name, area, permitted_by, description, tuple(departs), dict(hooks or {}))
    return name


class UnknownFault(KeyError):
    def __str__(self) -> str:
        return f"unknown fault {self.args[0]!r}; known: {sorted(REGISTRY)}"


def define(name: str, *, area: str, requirements: Iterable[str], description: str, departs: Iterable[str] = (),
           hooks: Mapping[str, Callable] | None = None) -> str:
    """Register a fault; returns its name (for use as a module constant)."""
    if not NAME.match(name):
        raise ValueError(f"fault name {name!r} is not lower-case words joined by '-'")
    if name in REGISTRY or name in VARIANTS:
        raise ValueError(f"fault {name!r} is defined twice (or is also a variant)")
    requirements = tuple(requirements)
    if not requirements:
        raise ValueError(f"fault {name!r} names no requirement it breaks")
    REGISTRY[name] = Fault(name, area, requirements, description, tuple(departs), dict(hooks or {}))
    return name


def _rule_modules() -> None:
    """Import every module that declares steps (the steps a fault names are checked against them)."""
    import importlib

    for module in ("reference_peer.peer", "reference_peer.control.backend", "reference_peer.control.policy_json",
                   "reference_peer.server.transport", "reference_peer.hub_transfer", "reference_peer.newcomer"):
        importlib.import_module(module)


def departures_of(name: str) -> dict[str, tuple[Callable, ...]]:
    """The steps fault or variant ``name`` departs from: step name -> its hooks (empty: no hook)."""
    entry = REGISTRY.get(name) or VARIANTS.get(name)
    if entry is None:
        raise UnknownFault(name)
    out: dict[str, tuple[Callable, ...]] = {step_name: () for step_name in entry.departs}
    for step_name, hook in entry.hooks.items():
        out[step_name] = (hook,)
    return out


def overrides_for(names: Iterable[str]) -> Overrides:
    """The overrides a peer switched to faults and variants ``names`` is built with; unknown names
    raise :class:`UnknownFault`, a fault naming an undeclared step raises :class:`UnknownStep`."""
    _rule_modules()
    parts = []
    for name in names:
        departures = departures_of(name)
        for step_name in departures:
            if step_name not in STEPS:
                raise UnknownStep(step_name)
        parts.append((name, departures))
    return Overrides.of(parts)
