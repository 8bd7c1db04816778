"""Which checks a ``list`` shows or a ``run`` runs: the inventory and the selection options.

The inventory is what pytest collects (``--collect-only`` with the plugin's ``--mimi-inventory``),
so a check's ID, area, role, requirements and features are exactly what a run would record. A
selection (``-k``, ``--requirement``, ``--area``, ``--last-failed``) is resolved here to check IDs
(pytest node IDs), which ``run`` then passes to pytest: what runs is exactly what was selected, and
a selection matching nothing is refused before anything starts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

# Verdicts a previous run may leave without --last-failed picking the check up again.
_SETTLED_VERDICTS = frozenset({"PASS", "NOT_APPLICABLE"})
_COLLECT_TIMEOUT = 300.0


class SelectionError(Exception):
    """A selection that cannot be resolved or matches no check: a usage error (exit 2)."""


@dataclasses.dataclass(frozen=True)
class CheckEntry:
    """One check of the inventory, as the plugin describes it."""

    id: str
    area: str
    role: str
    requirements: tuple[str, ...]
    features: tuple[str, ...]

    @classmethod
    def from_inventory(cls, data: dict[str, Any]) -> CheckEntry:
        return cls(data["id"], data["area"], data["role"], tuple(data["requirements"]), tuple(data.get("features", ())))

    def applies_to(self, manifest: Any) -> bool:
        """Whether a run against this SUT judges the check (the plugin's rule: else NOT_APPLICABLE)."""
        role_fits = self.role == "any" or self.role in manifest.roles
        return role_fits and all(feature in manifest.features for feature in self.features)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "area": self.area, "role": self.role,
                "requirements": list(self.requirements), "features": list(self.features)}


@dataclasses.dataclass(frozen=True)
class Selection:
    """The selection options of ``list`` and ``run``; every given option must hold (AND)."""

    keyword: str | None = None  # a pytest -k expression
    requirements: tuple[str, ...] = ()  # requirement IDs, or prefixes ending in '-'
    areas: tuple[str, ...] = ()  # module names without test_
    last_failed: bool = False

    @property
    def active(self) -> bool:
        return bool(self.keyword or self.requirements or self.areas or self.last_failed)

    def describe(self) -> str:
        """The selection as it was typed, for messages."""
        parts = [f"-k {self.keyword}"] if self.keyword else []
        parts += [f"--requirement {value}" for value in self.requirements]
        parts += [f"--area {value}" for value in self.areas]
        parts += ["--last-failed"] if self.last_failed else []
        return " ".join(parts)


def requirement_matches(pattern: str, requirement_id: str) -> bool:
    """An exact requirement ID, or a prefix when the pattern ends in '-' (``PROTO-KEYMAT-``)."""
    return requirement_id.startswith(pattern) if pattern.endswith("-") else requirement_id == pattern


def _pytest_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)  # the plugin loads by its entry point
    return env


def collect_checks(keyword: str | None = None) -> list[CheckEntry]:
    """The suite's checks (those matching the -k expression, when given), collected without running."""
    from .run import ROOT_DIR, SCENARIOS_DIR

    with tempfile.TemporaryDirectory(prefix="mimi-inventory-") as tmp:
        path = Path(tmp) / "inventory.json"
        # The same isolation as a run's pytest (no config file, no cache), so the IDs are a run's IDs.
        argv = [sys.executable, "-m", "pytest", str(SCENARIOS_DIR), "--collect-only", "-q", "-p", "no:cacheprovider",
                "-c", os.devnull, f"--rootdir={ROOT_DIR}", "--mimi-inventory", str(path)]
        if keyword:
            argv += ["-k", keyword]
        done = subprocess.run(argv, cwd=ROOT_DIR, env=_pytest_env(), capture_output=True, text=True,  # noqa: S603
                              timeout=_COLLECT_TIMEOUT)
        if done.returncode == 4:  # a usage error: for us, a -k expression pytest cannot parse
            reason = next((line.removeprefix("ERROR: ") for line in done.stderr.splitlines() + done.stdout.splitlines()
                           if line.startswith("ERROR: ")), "pytest refused it")
            raise SelectionError(f"-k {keyword}: {reason}")
        # 5: nothing collected (a -k matching no check), an empty inventory rather than an error.
        if done.returncode not in (0, 5) or not path.exists():
            raise RuntimeError(f"collecting the checks failed (pytest exit {done.returncode}):\n"
                               + (done.stdout + done.stderr)[-3000:])
        return [CheckEntry.from_inventory(item) for item in json.loads(path.read_text(encoding="utf-8"))]


def previous_failures(out: Path) -> set[str]:
    """The checks of the previous run in ``out`` whose verdict was not PASS or NOT_APPLICABLE: from
    results.json, else from checks.jsonl (a run that stopped before the reports)."""
    from .run import CHECKS_FILE

    results, checks_file = out / "results.json", out / CHECKS_FILE
    records: Iterable[dict[str, Any]]
    try:
        if results.is_file():
            records = json.loads(results.read_text(encoding="utf-8")).get("checks", [])
        elif checks_file.is_file():
            lines = checks_file.read_text(encoding="utf-8").splitlines()
            records = [data for data in map(json.loads, filter(str.strip, lines)) if data.get("kind") == "check"]
        else:
            raise SelectionError(f"--last-failed: no previous run is recorded in {out} (neither results.json nor "
                                 f"{CHECKS_FILE}); run once with the same --out first")
    except (OSError, ValueError, AttributeError) as exc:
        raise SelectionError(f"--last-failed: cannot read the previous run in {out}: {exc}") from None
    return {record["check_id"] for record in records if record.get("verdict") not in _SETTLED_VERDICTS}


def select_checks(selection: Selection, *, out: Path | None = None, manifest: Any = None) -> list[CheckEntry]:
    """The checks the selection picks (all when it is empty), in collection order; only those that
    apply to ``manifest`` when given. Raises :class:`SelectionError` when it matches none."""
    everything = collect_checks(selection.keyword)
    chosen = everything
    if selection.requirements:
        chosen = [check for check in chosen
                  if any(requirement_matches(p, r) for p in selection.requirements for r in check.requirements)]
    if selection.areas:
        chosen = [check for check in chosen if check.area in selection.areas]
    if selection.last_failed:
        failed = previous_failures(out if out is not None else Path.cwd())
        chosen = [check for check in chosen if check.id in failed]
    if manifest is not None:
        chosen = [check for check in chosen if check.applies_to(manifest)]
    if not chosen and (selection.active or manifest is not None):
        raise SelectionError(_no_match_sentence(selection, everything, manifest))
    return chosen


def _no_match_sentence(selection: Selection, collected: Sequence[CheckEntry], manifest: Any) -> str:
    described = selection.describe() or "the whole suite"
    hints = []
    if selection.keyword and any(part.isupper() and "-" in part for part in selection.keyword.split()):
        hints.append("-k matches check names; select requirement IDs with --requirement")
    unknown_areas = sorted(set(selection.areas) - {check.area for check in collected})
    if unknown_areas and not selection.keyword:
        known = sorted({check.area for check in collected})
        hints.append(f"unknown area(s) {', '.join(unknown_areas)}; the areas are {', '.join(known)}")
    unjudged = [pattern for pattern in selection.requirements
                if not any(requirement_matches(pattern, r) for check in collected for r in check.requirements)]
    if unjudged and not selection.keyword:
        hints.append(f"no check judges {', '.join(unjudged)}; `mimi-conformance requirements` lists the IDs")
    if selection.last_failed:
        hints.append("the previous run recorded no failing check among them")
    if manifest is not None:
        hints.append(f"or none applies to the SUT (roles {list(manifest.roles)}, features {list(manifest.features)})")
    return f"warning: no check matches {described}" + (f" ({'; '.join(hints)})" if hints else "")
