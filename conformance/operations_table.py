"""The operation -> checks table of docs/control-api.md, generated from the checks' ``operations`` markers.

Each check declares next to its code the SUT control operations it needs::

    @pytest.mark.operations("createUser", "sendMessage", "listReceivedMessages",
                            hub=("createRoom", "addParticipant"), optional=("listUserEvents",))

* positional: needed whatever the SUT's role in the check;
* ``hub=`` / ``follower=``: needed only in the variant where the SUT has that role (checks parametrised
  with ``conformance.scenarios.roles``); a check of no role takes neither;
* ``optional=``: used only when the SUT lists it in ``supportedOperations`` (the check runs without it).

A SUT lacking a needed operation gets the check NOT_APPLICABLE naming it. What a check actually asked
of the SUT in a run is in its record (``control_operations``); the tests hold every recorded operation to
the declared ones. ``mimi-conformance operations --write`` rewrites the block of docs/control-api.md
between the ``operations-table`` marker comments; ``--check`` fails when that block is stale;
``--suggest OUT/checks.jsonl`` prints, per check function of a run, the marker its records call for
(a start for a new check: an operation it uses only when offered must then be moved to ``optional=``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .run import ROOT_DIR, SCENARIOS_DIR

DOC_FILE = ROOT_DIR / "docs" / "control-api.md"
START = "<!-- operations-table:start -->"
END = "<!-- operations-table:end -->"
ROLE_KEYWORDS = ("hub", "follower")
MARKER_KEYWORDS = (*ROLE_KEYWORDS, "optional")
# Up to this many checks are named one by one in a cell; more are counted per area.
LISTED_CHECKS = 2


class MarkerError(ValueError):
    """An operations marker that cannot be read (an unknown keyword, a role keyword on a check of no role)."""


def declared_operations(markers: Iterable[tuple[Sequence[Any], Mapping[str, Any]]], role: str) -> dict[str, list[str]]:
    """``{"needs": [...], "optional": [...]}`` for a check of ``role`` (hub, follower or any) from the
    (args, kwargs) of its operations markers (module, class and function markers add up)."""
    needs: dict[str, None] = {}
    optional: dict[str, None] = {}
    for args, kwargs in markers:
        unknown = set(kwargs) - set(MARKER_KEYWORDS)
        if unknown:
            raise MarkerError(f"operations marker: unknown keyword(s) {sorted(unknown)}; known: {list(MARKER_KEYWORDS)}")
        if role not in ROLE_KEYWORDS and any(kwargs.get(k) for k in ROLE_KEYWORDS):
            raise MarkerError("operations marker: hub=/follower= on a check that has no role")
        for name in (*args, *kwargs.get(role, ())):
            needs.setdefault(str(name), None)
        for name in kwargs.get("optional", ()):
            optional.setdefault(str(name), None)
    return {"needs": list(needs), "optional": [name for name in optional if name not in needs]}


@dataclasses.dataclass(frozen=True)
class CheckOperations:
    check_id: str
    role: str  # hub | follower | any
    area: str
    declared: bool  # whether the check has an operations marker at all
    needs: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    @property
    def short_id(self) -> str:
        """``area::test_name[param]`` (the module path of every check is conformance/scenarios/test_<area>.py)."""
        return f"{self.area}::{self.check_id.split('::', 1)[-1]}"


def collect() -> list[CheckOperations]:
    """Every check's declared operations, from a collection of the suite (nothing runs)."""
    with tempfile.TemporaryDirectory(prefix="mimi-operations-") as tmp:
        path = Path(tmp) / "inventory.json"
        argv = [sys.executable, "-m", "pytest", str(SCENARIOS_DIR), "--collect-only", "-q", "-p", "no:cacheprovider",
                f"--rootdir={ROOT_DIR}", "--mimi-inventory", str(path)]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
        done = subprocess.run(argv, cwd=ROOT_DIR, env=env, capture_output=True, timeout=300)  # noqa: S603
        if done.returncode != 0 or not path.exists():
            raise RuntimeError(f"collecting the checks failed (pytest exit {done.returncode}):\n"
                               + done.stdout.decode(errors="replace")[-3000:])
        return from_inventory(json.loads(path.read_text(encoding="utf-8")))


def from_inventory(entries: Iterable[Mapping[str, Any]]) -> list[CheckOperations]:
    """From the plugin's ``--mimi-inventory`` entries (``operations``: None when the check has no marker)."""
    result = []
    for entry in entries:
        operations = entry.get("operations")
        result.append(CheckOperations(
            entry["id"], entry["role"], entry["area"], operations is not None,
            tuple((operations or {}).get("needs", ())), tuple((operations or {}).get("optional", ())),
        ))
    return sorted(result, key=lambda c: c.check_id)


def openapi_operations(document: Mapping[str, Any] | None = None) -> dict[str, tuple[str, ...]]:
    """operationId -> the roles that cannot do without it (``x-mimi-conformance.requiredFor``), in document order."""
    if document is None:
        from reference_peer.control import load_openapi

        document = load_openapi()
    operations: dict[str, tuple[str, ...]] = {}
    for item in document["paths"].values():
        for method in ("get", "post", "put", "patch", "delete"):
            spec = item.get(method)
            if spec is not None:
                operations[spec["operationId"]] = tuple(spec.get("x-mimi-conformance", {}).get("requiredFor", ()))
    return operations


def minimal_set(operations: Mapping[str, Sequence[str]], role: str) -> list[str]:
    return [name for name, roles in operations.items() if role in roles]


def _role_counts(checks: Sequence[CheckOperations]) -> str:
    counts = Counter(c.role for c in checks)
    parts = [f"{counts[role]} as {role}" for role in ROLE_KEYWORDS if counts[role]]
    if counts["any"]:
        parts.append(f"{counts['any']} in any role")
    return ", ".join(parts)


def _who(checks: Sequence[CheckOperations]) -> str:
    if not checks:
        return "none"
    if len(checks) <= LISTED_CHECKS:
        return "; ".join(f"`{c.short_id}`" for c in checks)
    areas = Counter(c.area for c in checks)
    return f"{len(checks)} ({_role_counts(checks)}): " + ", ".join(f"{area} {n}" for area, n in sorted(areas.items()))


def render(checks: Sequence[CheckOperations], operations: Mapping[str, Sequence[str]]) -> str:
    """The generated block, marker comments included."""
    lines = [
        START,
        "<!-- Generated by `mimi-conformance operations --write` from the checks' operations markers; do not edit. -->",
        "",
        f"{len(checks)} checks ({_role_counts(checks)}; a check run in both roles counts once per role) declare "
        "the control operations they need with an `operations` marker. A SUT that does not offer one of them "
        "gets the check NOT_APPLICABLE naming the operation.",
        "",
        "| operationId | required for | checks that need it | checks that use it only when offered |",
        "| --- | --- | --- | --- |",
    ]
    for name, roles in operations.items():
        needing = [c for c in checks if name in c.needs]
        offered = [c for c in checks if name in c.optional]
        who = _who(needing)
        if name == "getInfo":  # the client reads it before any other call, whatever the markers say
            who = "every check (supportedOperations)" + (f"; its answer is judged by {who}" if needing else "")
        lines.append(f"| `{name}` | {', '.join(roles)} | {who} | {_who(offered) if offered else ''} |")
    lines += [
        "",
        "The minimal operation set per role: what a SUT declaring the role must offer (`requiredFor`), "
        "and how many of that role's checks need nothing more.",
        "",
        "| role | minimal operation set | checks of the role that run with it alone |",
        "| --- | --- | --- |",
    ]
    for role in ROLE_KEYWORDS:
        minimal = minimal_set(operations, role)
        own = [c for c in checks if c.role in (role, "any")]
        enough = [c for c in own if set(c.needs) <= set(minimal)]
        lines.append(f"| {role} | {', '.join(f'`{name}`' for name in minimal)} | {len(enough)} of {len(own)} |")
    lines.append(END)
    return "\n".join(lines) + "\n"


def replace_block(document: str, block: str) -> str:
    """``document`` with the text between the marker comments (included) replaced by ``block``."""
    start = document.find(START)
    end = document.find(END, start)
    if start < 0 or end < 0:
        raise ValueError(f"the document has no {START} ... {END} block")
    tail = document[end + len(END):]
    return document[:start] + block.rstrip("\n") + tail


def current_block(document: str) -> str:
    start = document.find(START)
    end = document.find(END, start)
    if start < 0 or end < 0:
        raise ValueError(f"the document has no {START} ... {END} block")
    return document[start:end + len(END)] + "\n"


def marker_problems(checks: Sequence[CheckOperations], operations: Iterable[str]) -> list[str]:
    """Checks without a marker, and marker operations that are not operationIds of the contract."""
    known = set(operations)
    found = [f"{c.check_id}: no operations marker (add @pytest.mark.operations(...), see "
             "conformance/operations_table.py)" for c in checks if not c.declared]
    for check in checks:
        unknown = [name for name in (*check.needs, *check.optional) if name not in known]
        if unknown:
            found.append(f"{check.check_id}: operations marker names {unknown}, not operationIds of the contract")
    return found


def suggest_markers(records: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Check function (node ID without parameters) -> the operations marker its records' ``control_operations``
    call for: what every role variant asked first, then per role what only that role's variant asked."""
    asked: dict[str, dict[str, dict[str, None]]] = {}
    for record in records:
        if record.get("kind", "check") != "check":
            continue
        function = str(record["check_id"]).split("[", 1)[0]
        per_role = asked.setdefault(function, {})
        seen = per_role.setdefault(str(record.get("role", "any")), {})
        for name in record.get("control_operations", ()):
            seen.setdefault(name, None)
    suggestions = {}
    for function, per_role in sorted(asked.items()):
        roles = [role for role in ROLE_KEYWORDS if role in per_role]
        if len(roles) < 2:  # one variant: everything it asked is needed
            common = list(dict.fromkeys(name for seen in per_role.values() for name in seen))
            extra: dict[str, list[str]] = {}
        else:
            common = [name for name in per_role["hub"] if name in per_role["follower"]]
            extra = {role: [name for name in per_role[role] if name not in common] for role in roles}
        parts = [json.dumps(name) for name in common]
        parts += [f"{role}=({', '.join(json.dumps(n) for n in names)}{',' if len(names) == 1 else ''})"
                  for role, names in extra.items() if names]
        suggestions[function] = f"@pytest.mark.operations({', '.join(parts)})"
    return suggestions
