"""Named steps of the reference peer's rules, and the overrides a peer instance is built with.

A rule module declares the steps a peer may perform differently with :func:`step`, each tagged with
the requirement IDs it enforces (as openmls names its validation rules)::

    REFUSE_STALE_EPOCH = step("hub.submit.refuse-stale-epoch", "PROTO-SUBMIT-EPOCH-TOO-OLD",
                              summary="an application message of an older epoch is refused (epochTooOld)")

and asks its *own* :class:`Overrides` at that point::

    if pm.epoch < self.epoch and not self.overrides.departs(REFUSE_STALE_EPOCH): ...
    plan = self.overrides.hook(FANOUT_PLAN, self, request) or plan

A peer gets its overrides when it is built (``ReferenceProvider(options, overrides=...)``, as
Complement builds a server from options); nothing here is process-wide and rule code never imports a
fault or a variant. Deliberate faults and allowed variants (``reference_peer.faults``) are named sets
of departures from these steps; :func:`reference_peer.faults.overrides_for` turns names into an
:class:`Overrides`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

STEP_NAME = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$")


@dataclasses.dataclass(frozen=True)
class Step:
    """One named step of a rule: where a peer may be built to behave otherwise."""

    name: str
    requirements: tuple[str, ...]
    summary: str


STEPS: dict[str, Step] = {}


def step(name: str, *requirements: str, summary: str) -> Step:
    """Declare a named step (module level, once). ``name`` is dotted: ``<component>.<operation>.<rule>``."""
    if not STEP_NAME.match(name):
        raise ValueError(f"step name {name!r} is not dotted lower-case words (component.operation.rule)")
    if name in STEPS:
        raise ValueError(f"step {name!r} is declared twice")
    if not summary:
        raise ValueError(f"step {name!r} needs a summary")
    declared = Step(name, tuple(requirements), summary)
    STEPS[name] = declared
    return declared


class UnknownStep(KeyError):
    def __str__(self) -> str:
        return f"unknown step {self.args[0]!r}"


Hook = Callable[..., Any]


class Overrides:
    """The departures a peer instance was built with, shared by every rule object of that peer.

    ``departures``: step name -> the hooks that replace or extend it (an empty tuple when the step is
    simply not performed, or performed the other way the rule code names). ``sources``: the fault and
    variant names the departures came from (introspection and logs only; rule code never reads them).
    :meth:`during` adds departures for one block (a test or a check), on this peer only."""

    def __init__(self, departures: Mapping[str, tuple[Hook, ...]] | None = None, sources: Iterable[str] = (),
                 *, frozen: bool = False) -> None:
        self._base = dict(departures or {})
        self._base_sources = tuple(sources)
        self._layers: list[Overrides] = []
        self._frozen = frozen

    @property
    def departures(self) -> dict[str, tuple[Hook, ...]]:
        merged = dict(self._base)
        for layer in self._layers:
            for name, hooks in layer.departures.items():
                merged[name] = merged.get(name, ()) + hooks
        return merged

    @property
    def sources(self) -> tuple[str, ...]:
        return self._base_sources + tuple(s for layer in self._layers for s in layer.sources)

    def departs(self, at: Step) -> bool:
        """Whether this peer performs step ``at`` otherwise than the reference default."""
        if at.name not in STEPS:
            raise UnknownStep(at.name)
        return at.name in self._base or any(layer.departs(at) for layer in self._layers)

    def hook(self, at: Step, *args: Any, **kwargs: Any) -> Any:
        """Call the hooks given for step ``at`` in order; the first result that is not None, else None
        (None also when the step has no hook: the caller keeps its default)."""
        if at.name not in STEPS:
            raise UnknownStep(at.name)
        for hook in self.departures.get(at.name, ()):
            result = hook(*args, **kwargs)
            if result is not None:
                return result
        return None

    @contextlib.contextmanager
    def during(self, extra: Overrides) -> Iterator[None]:
        """Add ``extra``'s departures to this peer's for the block (as Complement overrides a server
        for one test); the shared default :data:`NO_OVERRIDES` cannot be changed this way."""
        if self._frozen:
            raise RuntimeError("NO_OVERRIDES is shared by every peer built without overrides; build the "
                               "peer with its own Overrides() to change it for a block")
        self._layers.append(extra)
        try:
            yield
        finally:
            self._layers.remove(extra)

    def __bool__(self) -> bool:
        return bool(self._base) or any(self._layers)

    def __repr__(self) -> str:
        return f"Overrides(sources={self.sources!r}, steps={sorted(self.departures)!r})"

    @classmethod
    def of(cls, parts: Iterable[tuple[str, Mapping[str, tuple[Hook, ...]]]]) -> Overrides:
        """Merge ``(source, {step name: hooks})`` pairs; hooks of one step keep the order given."""
        merged: dict[str, tuple[Hook, ...]] = {}
        sources = []
        for source, departures in parts:
            sources.append(source)
            for name, hooks in departures.items():
                merged[name] = merged.get(name, ()) + tuple(hooks)
        return cls(merged, sources)


NO_OVERRIDES = Overrides(frozen=True)  # the default of rule objects built alone (unit tests)


class BuiltWith:
    """Mixin for rule objects the peer keeps and persists (hub rooms, simulated clients): they carry
    the overrides of the peer that holds them. The overrides are never pickled; the holder hands its
    own to every object it makes or loads (``built_with``), so a stored room never carries a fault
    from the process that wrote it."""

    overrides: Overrides = NO_OVERRIDES

    def built_with(self, overrides: Overrides):
        self.overrides = overrides
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("overrides", None)
        return state
