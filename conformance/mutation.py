"""``mimi-conformance selftest --mutants``: generated mutants of the reference peer's rule code.

The kill matrix (:mod:`conformance.selftest`) proves that each check catches its own named fault. This
measures the checks against bugs nobody wrote a fault for: single-site mutations of the reference peer's
*rule modules* (the modules whose code uses named steps, :func:`reference_peer.overrides.step`), each
run with the checks judging the requirements its rule is tagged with.

Generation (:func:`generate`): the project's own AST operators, applied only inside functions:

* ``negate-if`` / ``negate-while``: the condition ``c`` becomes ``not (c)``;
* ``drop-and`` / ``drop-or``: one operand of a boolean ``and`` / ``or`` is dropped (except where the
  fault seam makes the drop neutral in the clean peer, :func:`_seam_neutral`: ``not departs(S) and c`` ->
  ``c``, ``hook(S, x) or x`` -> ``x``, ``departs(S) and c`` -> ``departs(S)``: equivalent by construction);
* ``flip-compare``: ``<``/``<=``, ``>``/``>=``, ``==``/``!=``, ``is``/``is not`` swapped;
* ``flip-in``: ``in`` / ``not in`` swapped;
* ``raise-to-pass``: a ``raise X`` that is a statement of an ``if`` branch (a validation) becomes ``pass``;
* ``int-plus`` / ``int-minus``: an integer constant +1 / -1;
* ``flip-bool``: ``True`` / ``False`` swapped.

A mutant's ID is ``module:function:operator:n`` (the n-th site of that operator in that function, in
source order, from 0): it stays the same through edits of other functions, so the triage file does not
go stale when unrelated rule code moves. Each mutant is mapped to the requirements of the steps its
enclosing function refers to (names bound to :class:`~reference_peer.overrides.Step` objects in the
module); a function that refers to none by the steps of the module's functions calling it (up to three
calls away: a helper is judged by the rules that use it), else by the requirement IDs written in its
source (comments, docstring); failing all three it is ``unmapped`` and gets the requirements of every step of its
module. The checks run for a mutant are those naming one of its requirements (as ``selftest --scope
targeted`` picks a fault's).

Execution (:func:`run_mutants`): ONLY the SUT process loads the mutated module. The pytest run gets a
``sitecustomize`` shim on ``PYTHONPATH`` (:data:`SHIM`); in every process it does nothing, except in a
``reference_peer.cli serve --config OUT/peers/sut/peer.yaml`` whose run folder ``OUT`` holds a
``mutant.json``: there it puts an import finder first on ``sys.meta_path`` that loads the mutated source
for that one module, and appends to ``OUT/mutant-loaded.log`` what it did (so a run proves that the SUT
ran the mutant and that the suite's own peers, ``peers/ref-hub`` and ``peers/ref-follower``, did not).

Outcome per mutant (:func:`classify`, from :func:`conformance.selftest.row_for`): ``killed`` (a check
reported a miss of one of the mutant's requirements that it judges), ``collateral`` (only other misses
or harness errors), ``survived`` (clean), ``stillborn`` (the SUT did not start, or never imported the
module: not counted), ``timeout`` (the run exceeded its bound: counted, not a kill), ``error`` (pytest ran
no check and never started the SUT, e.g. a check renamed since the inventory: the engine's failure, not
counted, and a goal missed). A clean-run diff
(:func:`clean_run_diff`) then reruns once without a mutant every check that missed under one: a check
that misses clean too kills nothing.

Triage (``conformance/mutant-triage.yaml``): per mutant ID ``equivalent: <reason>``, ``permitted: <the
draft's latitude>``, ``provider-local: <the client-to-provider operation that alone changes>``, ``gap:
<missing check>`` or ``closed-by: <check>``. Strict score = killed / (mutants - stillborn - equivalent -
permitted - provider-local); the report also gives it with provider-local counted as survivors.
"""

from __future__ import annotations

import ast
import concurrent.futures
import dataclasses
import hashlib
import importlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from .run import ROOT_DIR

PEER_ROOT = ROOT_DIR / "reference_peer"
TRIAGE_FILE = ROOT_DIR / "conformance" / "mutant-triage.yaml"
GOAL_STRICT_SCORE = 0.90
# Not rule code: the faults and variants, the control API, the command line and configuration, the MLS
# crypto and the wire codecs (brief of issue 18).
EXCLUDED = ("reference_peer/faults/", "reference_peer/control/", "reference_peer/mls/", "reference_peer/wire/",
            "reference_peer/cli.py", "reference_peer/config.py", "reference_peer/overrides.py")
OPERATORS = ("negate-if", "negate-while", "drop-and", "drop-or", "flip-compare", "flip-in", "raise-to-pass",
             "int-plus", "int-minus", "flip-bool")
OUTCOMES = ("killed", "collateral", "survived", "timeout", "stillborn", "error")
TRIAGE_KINDS = ("equivalent", "permitted", "provider-local", "gap", "closed-by")
# Out of the score: no conforming observer can tell the mutant from the clean peer (equivalent); it can,
# but the draft leaves that latitude, so a check killing it would fail a conformant server (permitted); or
# only the provider's own clients can, through the client-to-provider interactions the draft leaves out
# (-06 §3: "the MIMI protocol only defines interactions between service providers' servers"), which the
# suite reaches only through its control API, whose failures are set-up errors, never verdicts
# (provider-local). Each is counted apart, and the report also gives the score with provider-local counted.
UNSCORED_KINDS = ("equivalent", "permitted", "provider-local")
REQUIREMENT_TOKEN = re.compile(r"\b[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+\b")
_FLIP_COMPARE: dict[type, type] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
                                   ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_FLIP_IN: dict[type, type] = {ast.In: ast.NotIn, ast.NotIn: ast.In}


@dataclasses.dataclass(frozen=True)
class Mutant:
    module: str  # dotted name, e.g. reference_peer.room.hub_members
    line: int  # 1-based, in the clean source
    col: int  # 0-based UTF-8 byte offset (as ast gives it)
    operator: str
    function: str  # qualified name of the enclosing function
    original: str  # the source text replaced
    replacement: str  # the text put in its place
    span: tuple[int, int, int, int]  # (line, col, end line, end col) of the text replaced
    steps: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    mapped_by: str = "steps"  # steps | callers | comments | unmapped
    ordinal: int = 0  # the n-th site of ``operator`` in ``function`` (source order): the ID's last part
    # The clean module source the mutant was generated from (the tree may change during a sweep).
    source: str = dataclasses.field(default="", compare=False, repr=False)

    @property
    def id(self) -> str:
        return f"{self.module}:{self.function}:{self.operator}:{self.ordinal}"

    @property
    def path(self) -> Path:
        return ROOT_DIR.joinpath(*self.module.split(".")).with_suffix(".py")

    def describe(self) -> str:
        original = " ".join(self.original.split())
        return f"{original[:70]} -> {' '.join(self.replacement.split())[:70]}"

    def apply(self, source: str) -> str:
        """``source`` (the clean module) with this mutation made: the span replaced, nothing else moved."""
        lines = source.encode("utf-8").splitlines(keepends=True)
        start = sum(len(x) for x in lines[: self.span[0] - 1]) + self.span[1]
        stop = sum(len(x) for x in lines[: self.span[2] - 1]) + self.span[3]
        data = source.encode("utf-8")
        if data[start:stop].decode("utf-8") != self.original:
            raise ValueError(f"{self.id}: the source changed since the mutant was generated")
        return (data[:start] + self.replacement.encode("utf-8") + data[stop:]).decode("utf-8")


# --------------------------------------------------------------------------------------------
# Generation


def rule_modules(root: Path = PEER_ROOT) -> list[str]:
    """The reference peer's rule modules: those whose globals hold a named step (declared or imported),
    outside :data:`EXCLUDED`. Sorted, so generation is deterministic."""
    from reference_peer.overrides import Step

    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).as_posix()
        if "__pycache__" in rel or any(rel.startswith(x) if x.endswith("/") else rel == x for x in EXCLUDED):
            continue
        name = rel.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
        module = importlib.import_module(name)
        if any(isinstance(v, Step) for v in vars(module).values()):
            found.append(name)
    return found


def _segment(lines: list[bytes], node: ast.AST) -> str:
    start, end = node.lineno, node.end_lineno  # type: ignore[attr-defined]
    if start == end:
        return lines[start - 1][node.col_offset:node.end_col_offset].decode("utf-8")  # type: ignore[attr-defined]
    parts = [lines[start - 1][node.col_offset:]] + lines[start:end - 1] + [lines[end - 1][:node.end_col_offset]]  # type: ignore[attr-defined]
    return b"".join(parts).decode("utf-8")


def _sites(tree: ast.Module) -> Iterable[tuple[ast.AST, str, list[ast.AST]]]:
    """(node, enclosing function's qualified name, ancestors) for every node inside a function body:
    decorators, defaults and annotations (run at import) and class bodies are not function code."""

    def visit(node: ast.AST, qualname: str, inside: bool, ancestors: list[ast.AST]) -> Iterable[tuple[ast.AST, str, list[ast.AST]]]:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{qualname}.{node.name}" if qualname else node.name
            function = not isinstance(node, ast.ClassDef)
            for statement in node.body:
                yield from visit(statement, name, function, [*ancestors, node])
            return
        if inside:
            yield node, qualname, ancestors
        for field, value in ast.iter_fields(node):
            if field in ("annotation", "returns"):
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    yield from visit(child, qualname, inside, [*ancestors, node])

    yield from visit(tree, "", False, [])


def _paren(node: ast.AST) -> str:
    return f"({ast.unparse(node)})"


def mutations_of(module: str, source: str) -> list[Mutant]:
    """Every mutant of one module's source (unmapped: :func:`generate` maps them)."""
    tree = ast.parse(source)
    lines = source.encode("utf-8").splitlines(keepends=True)
    out: dict[tuple[int, int, str], Mutant] = {}

    def add(node: ast.AST, operator: str, function: str, replacement: str, at: ast.AST | None = None) -> None:
        at = at or node
        mutant = Mutant(module, at.lineno, at.col_offset, operator, function, _segment(lines, node),  # type: ignore[attr-defined]
                        replacement, (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset),  # type: ignore[attr-defined]
                        source=source)
        out.setdefault((mutant.line, mutant.col, operator), mutant)

    seen: set[int] = set()
    for node, function, ancestors in _sites(tree):
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ast.If | ast.While):
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                continue
            add(node.test, "negate-if" if isinstance(node, ast.If) else "negate-while", function,
                f"not ({_segment(lines, node.test)})")
            for statement in [*node.body, *node.orelse] if isinstance(node, ast.If) else []:
                if isinstance(statement, ast.Raise) and statement.exc is not None:
                    add(statement, "raise-to-pass", function, "pass")
        elif isinstance(node, ast.BoolOp) and len(node.values) >= 2:
            operator = "drop-and" if isinstance(node.op, ast.And) else "drop-or"
            for index, dropped in enumerate(node.values):
                rest = node.values[:index] + node.values[index + 1:]
                if _seam_neutral(node.op, dropped, rest):
                    continue
                kept = rest[0] if len(rest) == 1 else ast.BoolOp(op=node.op, values=rest)
                add(node, operator, function, _paren(kept), at=dropped)
        elif isinstance(node, ast.Compare):
            for index, op in enumerate(node.ops):
                table = _FLIP_IN if type(op) in _FLIP_IN else _FLIP_COMPARE if type(op) in _FLIP_COMPARE else None
                if table is None:
                    continue
                ops = list(node.ops)
                ops[index] = table[type(op)]()
                changed = ast.Compare(left=node.left, ops=ops, comparators=node.comparators)
                add(node, "flip-in" if table is _FLIP_IN else "flip-compare", function, _paren(changed),
                    at=node.comparators[index])
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            add(node, "flip-bool", function, repr(not node.value))
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            if any(isinstance(a, ast.JoinedStr) for a in ancestors):
                continue
            add(node, "int-plus", function, f"({node.value + 1})")
            add(node, "int-minus", function, f"({node.value - 1})")
    ordered = sorted(out.values(), key=lambda m: (m.line, m.col, m.operator))
    counts: dict[tuple[str, str], int] = {}
    numbered = []
    for mutant in ordered:
        key = (mutant.function, mutant.operator)
        numbered.append(dataclasses.replace(mutant, ordinal=counts.get(key, 0)))
        counts[key] = counts.get(key, 0) + 1
    return numbered


def _seam_value(node: ast.AST) -> bool | None:
    """The truth of a fault-seam operand in the clean peer: ``<...>overrides.departs(...)`` is False and
    ``<...>overrides.hook(...)`` None (no departure configured), ``not`` of either True; None for any
    other operand."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _seam_value(node.operand)
        return None if inner is None else not inner
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("departs", "hook")
            and ast.unparse(node.func.value).split(".")[-1] == "overrides"):
        return False
    return None


def _seam_neutral(op: ast.boolop, dropped: ast.expr, rest: Sequence[ast.expr]) -> bool:
    """Whether dropping ``dropped`` from a boolean operation cannot change it in the clean peer (a *seam-neutral*
    mutant, not generated): the dropped operand is the fault seam's identity (``not departs()`` in an
    ``and``, ``departs()``/``hook()`` in an ``or``), or an operand kept decides it alone (``departs()`` in
    an ``and`` is always False, ``not departs()`` in an ``or`` always True)."""
    identity = isinstance(op, ast.Or) is False  # and: True is the identity; or: False
    if _seam_value(dropped) is identity:
        return True
    return any(_seam_value(kept) is (not identity) for kept in rest)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _functions(tree: ast.Module) -> dict[str, ast.AST]:
    """Qualified name -> function node (as :func:`_sites` names them)."""
    found: dict[str, ast.AST] = {}

    def walk(node: ast.AST, qualname: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{qualname}.{child.name}" if qualname else child.name
                if not isinstance(child, ast.ClassDef):
                    found[name] = child
                walk(child, name)
            else:
                walk(child, qualname)

    walk(tree, "")
    return found


def module_steps(module: str) -> dict[str, Any]:
    """Global name -> Step for the steps a module can refer to (declared there or imported)."""
    from reference_peer.overrides import Step

    namespace = vars(importlib.import_module(module))
    steps = {name: value for name, value in namespace.items() if isinstance(value, Step)}
    # ``hub_steps.REFUSE_X``: steps reached through an imported module of steps
    for name, value in namespace.items():
        if isinstance(value, type(os)) and getattr(value, "__name__", "").startswith("reference_peer."):
            for attr, inner in vars(value).items():
                if isinstance(inner, Step):
                    steps[f"{name}.{attr}"] = inner
    return steps


def map_mutants(mutants: Sequence[Mutant], source: str, known_requirements: Iterable[str]) -> list[Mutant]:
    """Each mutant with the steps its enclosing function refers to (or its callers') and their requirements
    plus the requirement IDs written in that function's source; else those IDs alone; else ``unmapped``
    with every step of the module."""
    if not mutants:
        return []
    module = mutants[0].module
    steps = module_steps(module)
    known = set(known_requirements)
    tree = ast.parse(source)
    functions = _functions(tree)
    all_steps = sorted({s.name for s in steps.values()})
    all_requirements = tuple(sorted({r for s in steps.values() for r in s.requirements}))
    cache: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {}
    direct: dict[str, set[str]] = {}  # function -> steps it refers to itself
    calls: dict[str, set[str]] = {}  # function -> the simple names it calls
    for qualname, node in functions.items():
        direct[qualname] = set()
        calls[qualname] = set()
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in steps:
                direct[qualname].add(steps[sub.id].name)
            elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and f"{sub.value.id}.{sub.attr}" in steps:
                direct[qualname].add(steps[f"{sub.value.id}.{sub.attr}"].name)
            if isinstance(sub, ast.Call):
                target = sub.func
                calls[qualname].add(target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", ""))

    def callers_steps(function: str, depth: int = 3) -> set[str]:
        """The steps of the module's functions that call ``function`` (by its simple name), up to
        ``depth`` calls away: a helper is judged by the rules that use it."""
        frontier, seen, found = {function}, {function}, set()
        for _ in range(depth):
            names = {f.rsplit(".", 1)[-1] for f in frontier}
            frontier = {f for f, called in calls.items() if f not in seen and called & names}
            seen |= frontier
            found |= {n for f in frontier for n in direct[f]}
            if found:
                break
        return found

    def of(function: str) -> tuple[tuple[str, ...], tuple[str, ...], str]:
        if function in cache:
            return cache[function]
        node = functions.get(function)
        used: set[str] = set()
        text = ""
        if node is not None:
            text = ast.get_source_segment(source, node) or ""
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and sub.id in steps:
                    used.add(steps[sub.id].name)
                elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name):
                    key = f"{sub.value.id}.{sub.attr}"
                    if key in steps:
                        used.add(steps[key].name)
        by_name = {s.name: s for s in steps.values()}
        if not used:
            used = callers_steps(function)
            how = "callers"
        else:
            how = "steps"
        # The IDs written in the function count beside its steps': a rule that names a requirement in
        # its refusal or comment enforces it even where the step it refers to is tagged otherwise.
        written = {t for t in REQUIREMENT_TOKEN.findall(text) if t in known}
        if used:
            result = (tuple(sorted(used)), tuple(sorted(written | {r for n in used for r in by_name[n].requirements})),
                      how)
        else:
            result = ((), tuple(sorted(written)), "comments") if written else (tuple(all_steps), all_requirements,
                                                                                 "unmapped")
        cache[function] = result
        return result

    mapped = []
    for mutant in mutants:
        used, requirements, how = of(mutant.function)
        mapped.append(dataclasses.replace(mutant, steps=used, requirements=requirements, mapped_by=how))
    return mapped


def generate(modules: Sequence[str] | None = None, known_requirements: Iterable[str] = ()) -> list[Mutant]:
    """Every mapped mutant of the rule modules (or of ``modules``), in a stable order."""
    known = list(known_requirements)
    mutants: list[Mutant] = []
    for module in modules or rule_modules():
        path = ROOT_DIR.joinpath(*module.split(".")).with_suffix(".py")
        source = path.read_text(encoding="utf-8")
        mutants += map_mutants(mutations_of(module, source), source, known)
    return mutants


def sample(mutants: Sequence[Mutant], size: int | None, seed: int) -> list[Mutant]:
    """A seeded sample of ``size`` mutants (all of them when ``size`` is None), in ID order: the ``size``
    mutants whose ``sha256(seed:ID)`` is lowest. The same seed picks the same mutants, and an edit of the
    rule code changes the sample only where it adds, removes or moves mutants (a random draw from the
    whole list would change all of it with the count)."""
    ordered = sorted(mutants, key=lambda m: m.id)
    if size is None or size >= len(ordered):
        return ordered
    rank = sorted(ordered, key=lambda m: hashlib.sha256(f"{seed}:{m.id}".encode()).hexdigest())
    return sorted(rank[:size], key=lambda m: m.id)


# --------------------------------------------------------------------------------------------
# Loading the mutant in the SUT process only

MUTANT_FILE = "mutant.json"  # in the run folder: which module, from which source
BYTECODE_CACHE = ".pycache"  # in the sweep's folder: the bytecode its processes share (selftest.bytecode_cache)
LOADED_LOG = "mutant-loaded.log"  # in the run folder: what the shim did, one line per event
SHIM = '''\
"""mimi-conformance mutation shim (conformance/mutation.py): loads a mutant in the SUT process only."""
import json as _json
import os as _os
import sys as _sys


def _mimi_mutant():
    try:
        with open("/proc/self/cmdline", "rb") as handle:
            argv = [a.decode("utf-8", "replace") for a in handle.read().split(b"\\0") if a]
    except OSError:
        argv = list(_sys.argv)
    if "reference_peer.cli" not in argv or "serve" not in argv or "--config" not in argv:
        return
    index = argv.index("--config") + 1
    if index >= len(argv):
        return
    config = _os.path.abspath(argv[index])
    peer_dir = _os.path.dirname(config)
    run_dir = _os.path.dirname(_os.path.dirname(peer_dir))
    spec_file = _os.path.join(run_dir, "mutant.json")
    reach_file = _os.path.join(run_dir, "reach.json")
    if not _os.path.exists(spec_file) and not _os.path.exists(reach_file):
        return
    log = _os.path.join(run_dir, "mutant-loaded.log")
    name = _os.path.basename(peer_dir)
    if name != "sut":
        with open(log, "a") as handle:
            handle.write(f"clean {_os.getpid()} {name}\\n")
        return
    if _os.path.exists(reach_file):
        # The clean reach run: record which lines of the rule modules the SUT runs (saved at its exit).
        with open(reach_file) as handle:
            reach = _json.load(handle)
        import atexit
        import coverage

        cov = coverage.Coverage(data_file=reach["data"], include=reach["include"], config_file=False)
        cov.start()

        def _save():
            cov.stop()
            cov.save()

        atexit.register(_save)
        with open(log, "a") as handle:
            handle.write(f"reach {_os.getpid()} {name}\\n")
        return
    with open(spec_file) as handle:
        spec = _json.load(handle)
    import importlib.util

    class _MutantFinder:
        @staticmethod
        def find_spec(fullname, path=None, target=None):
            if fullname != spec["module"]:
                return None
            with open(log, "a") as handle:
                handle.write(f"imported {_os.getpid()} {name} {fullname} {spec['id']}\\n")
            return importlib.util.spec_from_file_location(fullname, spec["source"])

    _sys.meta_path.insert(0, _MutantFinder)
    with open(log, "a") as handle:
        handle.write(f"mutant {_os.getpid()} {name} {spec['id']}\\n")


_mimi_mutant()
del _mimi_mutant
'''


def install_shim(directory: Path) -> Path:
    """Write the ``sitecustomize`` shim into ``directory`` (to be put first on ``PYTHONPATH``)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(SHIM, encoding="utf-8")
    return directory


def prepare(mutant: Mutant, run_dir: Path) -> Path:
    """Write the mutated module and ``mutant.json`` into ``run_dir``: the SUT of a run with
    ``--mimi-output run_dir`` then loads it. Raises SyntaxError when the mutant does not compile."""
    run_dir.mkdir(parents=True, exist_ok=True)
    mutated = mutant.apply(mutant.source or mutant.path.read_text(encoding="utf-8"))
    compile(mutated, str(mutant.path), "exec")
    source = run_dir / "mutant-src" / mutant.path.name
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(mutated, encoding="utf-8")
    (run_dir / LOADED_LOG).unlink(missing_ok=True)
    (run_dir / MUTANT_FILE).write_text(json.dumps({"id": mutant.id, "module": mutant.module, "source": str(source)}),
                                       encoding="utf-8")
    return source


def loaded(run_dir: Path) -> dict[str, list[str]]:
    """What the shim logged in ``run_dir``: event (mutant, imported, clean) -> the peer folder names."""
    events: dict[str, list[str]] = {}
    path = run_dir / LOADED_LOG
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) >= 3:
                events.setdefault(parts[0], []).append(parts[2])
    return events


# --------------------------------------------------------------------------------------------
# Running and classifying


@dataclasses.dataclass
class MutantResult:
    mutant: Mutant
    outcome: str
    killers: list[str]
    collateral: list[str]
    harness_errors: list[str]
    checks: list[str]  # the checks run
    seconds: float
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        m = self.mutant
        return {"id": m.id, "outcome": self.outcome, "function": m.function, "line": m.line, "col": m.col,
                "change": m.describe(),
                "mappedBy": m.mapped_by, "steps": list(m.steps), "requirements": list(m.requirements),
                "checks": len(self.checks), "killers": self.killers, "collateral": self.collateral,
                "harnessErrors": self.harness_errors, "seconds": round(self.seconds, 1), "note": self.note}


@dataclasses.dataclass(frozen=True)
class _FaultLike:
    """What :func:`conformance.selftest.row_for` reads of a fault."""

    name: str
    area: str
    requirements: tuple[str, ...]


def judging_checks(requirements: Iterable[str], checks: Sequence[Any]) -> list[str]:
    """The checks naming one of ``requirements`` (as ``selftest --scope targeted`` picks a fault's)."""
    own = set(requirements)
    return [c.id for c in checks if own & set(c.requirements)]


def classify(mutant: Mutant, run: Any, checks: Sequence[Any], *, loaded_events: dict[str, list[str]],
             timed_out: bool = False) -> tuple[str, Any, str]:
    """(outcome, matrix row, note) of one mutant's run."""
    from .selftest import row_for

    row = row_for(_FaultLike(mutant.id, mutant.module, mutant.requirements), run, checks)
    if not run.verdicts and not timed_out:
        if "sut" in loaded_events.get("mutant", []):
            return "stillborn", row, "the SUT did not start (no check wrote a result)"
        # pytest ran nothing before the SUT was started (a check renamed since the inventory, a usage
        # error): the engine's problem, never the mutant's
        return "error", row, f"the run ran no check and never started the SUT (see {run.out}/pytest.log)"
    if "sut" not in loaded_events.get("imported", []):
        return "stillborn", row, "the SUT never imported the mutated module"
    if row.killers:
        return "killed", row, ""
    if timed_out:
        return "timeout", row, "the run exceeded its time bound"
    if row.collateral or row.harness_errors or row.blocked:
        return "collateral", row, ""
    return "survived", row, ""


def _kill_leftovers(marker: str) -> None:
    """Stop the processes of a timed-out run (its SUT and peers, found by their folder in the command line)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover
        return
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in process.info["cmdline"] or ()):
                process.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue


REACH_FILE = "reach.json"  # in the reach run's folder: where the SUT's coverage goes, of which files
NOT_REACHED = "not reached: the SUT never ran this code in the clean run of the checks (no run needed)"
RESULT_FILE = "result.json"  # in a mutant's run folder: its result, reused by a resumed sweep


def reached_lines(checks: Sequence[str], modules: Sequence[str], out: Path, *, seed: int, poll: float,
                  timeout: float, progress: Callable[[str], None] = lambda line: None) -> dict[Path, set[int]] | None:
    """The lines of ``modules`` the SUT runs in one clean run of ``checks`` (coverage.py in the SUT only, by
    the shim), or None when that cannot be measured (coverage.py missing, the run failed): then every mutant
    runs. A mutant none of whose lines the SUT runs cannot change what any check observes, so it survives
    without a run of its own (the usual coverage filter of mutation testing)."""
    from .selftest import run_suite

    try:
        import coverage
    except ImportError:
        progress("coverage.py is not installed: no reach filter, every mutant runs")
        return None
    paths = {m: ROOT_DIR.joinpath(*m.split(".")).with_suffix(".py").resolve() for m in modules}
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data_file = out / "reach.coverage"
    data_file.unlink(missing_ok=True)
    (out / REACH_FILE).write_text(json.dumps({"data": str(data_file), "include": [str(p) for p in paths.values()]}),
                                  encoding="utf-8")
    run = run_suite(out, checks=sorted(set(checks)), seed=seed, poll=poll, timeout=timeout)
    if not data_file.exists() or not run.verdicts or run.returncode is None:
        progress(f"the reach run measured nothing (see {out}/pytest.log): no reach filter, every mutant runs")
        return None
    data = coverage.CoverageData(basename=str(data_file))
    data.read()
    measured = {Path(f).resolve(): set(data.lines(f) or ()) for f in data.measured_files()}
    return {p: measured.get(p, set()) for p in paths.values()}


def _reached(mutant: Mutant, lines: dict[Path, set[int]] | None) -> bool:
    if lines is None:
        return True
    ran = lines.get(mutant.path.resolve(), set())
    return any(line in ran for line in range(mutant.span[0], mutant.span[2] + 1))


def code_fingerprint() -> str:
    """A digest of the code a mutant's result depends on (the peer, the checks, the harness); a resumed
    sweep reuses only results recorded under the same digest. The triage file is not part of it."""
    digest = hashlib.sha256()
    for folder in (PEER_ROOT, ROOT_DIR / "conformance"):
        for path in sorted(folder.rglob("*")):
            if path.suffix in (".py", ".yaml", ".json") and path.is_file() and path != TRIAGE_FILE \
                    and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT_DIR)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _run_dir(mutant: Mutant, out: Path) -> Path:
    return (out / mutant.id.replace(":", "_").replace(".", "_")).resolve()


def recorded_result(mutant: Mutant, out: Path, fingerprint: str) -> MutantResult | None:
    """The result a sweep recorded for ``mutant`` under the same code, if any."""
    path = _run_dir(mutant, out) / RESULT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("fingerprint") != fingerprint or data.get("id") != mutant.id:
        return None
    return MutantResult(mutant, data["outcome"], data["killers"], data["collateral"], data["harnessErrors"],
                        data.get("checkIds", []), data["seconds"], data.get("note", ""))


def record_result(result: MutantResult, out: Path, fingerprint: str) -> None:
    run_dir = _run_dir(result.mutant, out)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RESULT_FILE).write_text(json.dumps({**result.as_dict(), "checkIds": result.checks,
                                                   "fingerprint": fingerprint}, indent=1), encoding="utf-8")


def run_mutant(mutant: Mutant, out: Path, checks: Sequence[Any], *, seed: int = 1, poll: float = 5.0,
               timeout: float = 300.0, reach: dict[Path, set[int]] | None = None) -> MutantResult:
    from .selftest import SuiteRun, run_suite

    run_dir = _run_dir(mutant, out)
    selection = judging_checks(mutant.requirements, checks)
    started = time.monotonic()
    if not selection:
        return MutantResult(mutant, "survived", [], [], [], [], 0.0, "no check names its requirements")
    try:
        prepare(mutant, run_dir)
    except SyntaxError as exc:
        return MutantResult(mutant, "stillborn", [], [], [], selection, 0.0, f"does not compile: {exc}")
    except ValueError as exc:  # the module was edited since generation: not this mutant any more
        return MutantResult(mutant, "stillborn", [], [], [], selection, 0.0, str(exc))
    if not _reached(mutant, reach):
        return MutantResult(mutant, "survived", [], [], [], selection, 0.0, NOT_REACHED)
    run: SuiteRun = run_suite(run_dir, checks=selection, seed=seed, poll=poll, timeout=timeout)
    timed_out = run.returncode is None
    if timed_out:
        _kill_leftovers(str(run_dir))
    events = loaded(run_dir)
    outcome, row, note = classify(mutant, run, checks, loaded_events=events, timed_out=timed_out)
    if events.get("mutant", []) and set(events.get("mutant", [])) != {"sut"}:
        raise RuntimeError(f"{mutant.id}: a process other than the SUT loaded the mutant: {events}")
    return MutantResult(mutant, outcome, row.killers, row.collateral + row.blocked, row.harness_errors, selection,
                        time.monotonic() - started, note)


@dataclasses.dataclass
class MutationReport:
    results: list[MutantResult]
    generated: int
    triage: dict[str, dict[str, str]]
    seconds: float
    seed: int | None
    sample_size: int | None
    failing_clean: list[str] = dataclasses.field(default_factory=list)  # checks that miss without a mutant
    # triage entries naming no generated mutant (their lines moved or the code changed): to move or drop
    stale: list[str] = dataclasses.field(default_factory=list)
    chosen: int | None = None  # the mutants of the sample (or sweep), run or not
    not_run: list[str] = dataclasses.field(default_factory=list)  # left when the budget ran out
    fingerprint: str = ""

    def count(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.results)

    def _unscored(self, kind: str) -> list[str]:
        return [r.mutant.id for r in self.results
                if r.outcome not in ("killed", "stillborn", "error") and kind in self.triage.get(r.mutant.id, {})]

    @property
    def equivalent(self) -> list[str]:
        return self._unscored("equivalent")

    @property
    def permitted(self) -> list[str]:
        return self._unscored("permitted")

    @property
    def provider_local(self) -> list[str]:
        return self._unscored("provider-local")

    @property
    def strict_score(self) -> float | None:
        counted = (len(self.results) - self.count("stillborn") - self.count("error") - len(self.equivalent)
                   - len(self.permitted) - len(self.provider_local))
        return self.count("killed") / counted if counted else None

    @property
    def score_counting_provider_local(self) -> float | None:
        """The strict score with the provider-local mutants left in the denominator as survivors: what the
        score would be if the control API's failures were judged (they are not: set-up errors)."""
        counted = (len(self.results) - self.count("stillborn") - self.count("error") - len(self.equivalent)
                   - len(self.permitted))
        return self.count("killed") / counted if counted else None

    @property
    def untriaged(self) -> list[str]:
        return [r.mutant.id for r in self.results if r.outcome not in ("killed", "stillborn", "error")
                and r.mutant.id not in self.triage]

    def goals(self) -> dict[str, bool]:
        return {f"strict score >= {GOAL_STRICT_SCORE:.0%}": (self.strict_score or 0.0) >= GOAL_STRICT_SCORE,
                "every mutant's run ran its checks (no error)": not self.count("error"),
                "every mutant of the sample ran (no budget cut)": not self.not_run}

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": "mutants",
            "seconds": round(self.seconds, 1),
            "generated": self.generated,
            "sample": self.sample_size,
            "seed": self.seed,
            "mutants": len(self.results),
            "chosen": self.chosen if self.chosen is not None else len(self.results),
            "notRun": len(self.not_run),
            "notReached": sum(r.note == NOT_REACHED for r in self.results),
            "codeFingerprint": self.fingerprint,
            **{outcome: self.count(outcome) for outcome in OUTCOMES},
            "equivalent": len(self.equivalent),
            "permitted": len(self.permitted),
            "providerLocal": len(self.provider_local),
            "strictScore": self.strict_score,
            "scoreCountingProviderLocal": self.score_counting_provider_local,
            "untriaged": self.untriaged,
            "failingClean": self.failing_clean,
            "staleTriage": self.stale,
            "goals": self.goals(),
            "results": [{**r.as_dict(), "triage": self.triage.get(r.mutant.id)} for r in self.results],
        }


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a repeated key: plain YAML keeps the last of two entries for one mutant, so
    a second triage of a mutant would silently replace the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ValueError(f"line {key_node.start_mark.line + 1}: {key!r} is given twice")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_triage(path: Path = TRIAGE_FILE) -> dict[str, dict[str, str]]:
    """Mutant ID -> {kind: text}, kind one of :data:`TRIAGE_KINDS`."""
    if not path.exists():
        return {}
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}  # noqa: S506 (a SafeLoader)
    mutants = data.get("mutants") or {}
    triage: dict[str, dict[str, str]] = {}
    for mutant_id, entry in mutants.items():
        if not isinstance(entry, dict) or not entry or set(entry) - set(TRIAGE_KINDS):
            raise ValueError(f"{path}: {mutant_id}: an entry is one of {TRIAGE_KINDS} with its text, got {entry!r}")
        triage[str(mutant_id)] = {str(k): str(v) for k, v in entry.items()}
    return triage


# Below this many mutants the reach run costs more than it saves: it runs every selected check once (about
# 150 s for the CI sample's), and about one mutant in eight is on code the SUT never runs.
REACH_MINIMUM = 300


def run_mutants(out: Path, *, size: int | None = None, seed: int = 1, modules: Sequence[str] | None = None,
                parallel: int = 2, timeout: float = 300.0, poll: float = 5.0, triage_file: Path = TRIAGE_FILE,
                clean_diff: bool = True, only: Sequence[str] = (), reach: bool = True, resume: bool = False,
                budget: float | None = None, progress: Callable[[str], None] = lambda line: None) -> MutationReport:
    """Generate, sample and run the mutants (of the sample, only those whose ID is in ``only`` when it is
    given: to confirm a triage entry); ``out`` gets one folder per mutant, each with its ``result.json``.
    ``reach``: first one clean run measuring which lines the SUT runs (:func:`reached_lines`). ``resume``:
    reuse the results recorded in ``out`` under the same code (:func:`code_fingerprint`). ``budget``
    (seconds): start no mutant after it; the report then covers the mutants that ran, and a resumed sweep
    runs the rest. Mutants start in the seed's order (:func:`sample`'s ranking), so those that ran within a
    budget are a seeded random sample of the whole."""
    from .selftest import bytecode_cache

    out = Path(out).resolve()
    with bytecode_cache(out / BYTECODE_CACHE):
        return _run_mutants(out, size=size, seed=seed, modules=modules, parallel=parallel, timeout=timeout, poll=poll,
                            triage_file=triage_file, clean_diff=clean_diff, only=only, reach=reach, resume=resume,
                            budget=budget, progress=progress)


def _run_mutants(out: Path, *, size: int | None, seed: int, modules: Sequence[str] | None, parallel: int,
                 timeout: float, poll: float, triage_file: Path, clean_diff: bool, only: Sequence[str],
                 reach: bool, resume: bool, budget: float | None, progress: Callable[[str], None]) -> MutationReport:
    from .selftest import inventory

    started = time.monotonic()
    checks = inventory()
    known = {r for c in checks for r in c.requirements}
    mutants = generate(modules, known)
    chosen = sample(mutants, size, seed)
    if only:
        unknown = sorted(set(only) - {m.id for m in chosen})
        if unknown:
            raise KeyError(f"no such mutant (in this sample): {unknown}")
        chosen = [m for m in chosen if m.id in set(only)]
    progress(f"{len(mutants)} mutants generated in {len(modules or rule_modules())} module(s); running {len(chosen)}")
    shim = install_shim(out / "shim")
    # Every process of the runs gets the shim; it acts only in a SUT whose run folder holds a mutant.json.
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(shim), *filter(None, [before])])
    results: list[MutantResult] = []
    failing_clean: list[str] = []
    fingerprint = code_fingerprint()
    pending = list(chosen)
    if resume:
        recorded = {m.id: recorded_result(m, out, fingerprint) for m in chosen}
        results = [r for r in recorded.values() if r is not None]
        pending = [m for m in chosen if recorded[m.id] is None]
        progress(f"resumed: {len(results)} result(s) recorded under this code, {len(pending)} to run")
    deadline = None if budget is None else time.monotonic() + budget
    not_run: list[str] = []

    def one(mutant: Mutant, lines: dict[Path, set[int]] | None) -> MutantResult | None:
        if deadline is not None and time.monotonic() > deadline:
            not_run.append(mutant.id)
            return None
        result = run_mutant(mutant, out, checks, seed=seed, poll=poll, timeout=timeout, reach=lines)
        record_result(result, out, fingerprint)
        return result

    try:
        lines = None
        if reach and len(pending) >= REACH_MINIMUM:
            lines = reached_lines([c for m in pending for c in judging_checks(m.requirements, checks)],
                                  sorted({m.module for m in pending}), out / "reach", seed=seed, poll=poll,
                                  timeout=max(timeout, 1800.0), progress=progress)
            if lines is not None:
                unreached = sum(not _reached(m, lines) for m in pending)
                progress(f"reach run: {unreached} of {len(pending)} mutants are on code the SUT never runs")
        # In the seed's ranking: a sweep cut short by its budget has run a seeded random sample.
        rank = {m.id: hashlib.sha256(f"{seed}:{m.id}".encode()).hexdigest() for m in pending}
        pending.sort(key=lambda m: rank[m.id])
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            futures = {pool.submit(one, m, lines): m for m in pending}
            for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
                result = future.result()
                if result is None:
                    continue
                results.append(result)
                extra = (f" by {', '.join(result.killers)}" if result.killers
                         else f" ({result.note})" if result.note else "")
                progress(f"[{done}/{len(chosen)}] {result.mutant.id:<64} {result.outcome}{extra} ({result.seconds:.0f}s)")
        results.sort(key=lambda r: r.mutant.id)
        if clean_diff:
            failing_clean = clean_run_diff(results, out / "clean-diff", seed=seed, poll=poll, timeout=timeout)
            if failing_clean:
                progress(f"clean-run diff: {len(failing_clean)} check(s) miss without a mutant too: {failing_clean}")
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before
    triage = load_triage(triage_file)
    report = MutationReport(results, len(mutants), triage, time.monotonic() - started, seed, size, failing_clean,
                            stale=sorted(set(triage) - {m.id for m in mutants}) if modules is None else [],
                            chosen=len(chosen), not_run=sorted(not_run), fingerprint=fingerprint)
    return report


def clean_run_diff(results: list[MutantResult], out: Path, *, seed: int, poll: float, timeout: float) -> list[str]:
    """Rerun once, without a mutant, every check that missed or erred under some mutant: a check that misses
    clean too (a flaky or a broken check) kills nothing; its kills and misses are struck from the results
    (a mutant left without a killer is collateral, or survived). Returns those checks."""
    from .selftest import run_suite

    flagged = sorted({c.split(" (")[0] for r in results for c in r.killers + r.collateral + r.harness_errors})
    if not flagged:
        return []
    clean = run_suite(out, checks=flagged, seed=seed, poll=poll, timeout=timeout)
    # Only a miss seen clean strikes a check: a check without a clean result (a run that failed to start)
    # proves nothing either way.
    bad = set(clean.with_verdict("FAIL", "WARN", "HARNESS_ERROR"))
    for r in results:
        if not bad & {c.split(" (")[0] for c in r.killers + r.collateral + r.harness_errors}:
            continue
        r.killers = [c for c in r.killers if c not in bad]
        r.collateral = [c for c in r.collateral if c not in bad]
        r.harness_errors = [c for c in r.harness_errors if c.split(" (")[0] not in bad]
        if r.outcome == "killed" and not r.killers:
            r.outcome = "collateral" if r.collateral or r.harness_errors else "survived"
            r.note = "its killers miss without the mutant too (clean-run diff)"
        elif r.outcome == "collateral" and not r.collateral and not r.harness_errors:
            r.outcome = "survived"
            r.note = "its misses happen without the mutant too (clean-run diff)"
    return sorted(bad)


def render(report: MutationReport) -> str:
    lines = [f"{'mutant':<64} {'outcome':<11} {'checks':>6}  change / killers / triage"]
    for r in report.results:
        lines.append(f"{r.mutant.id:<64} {r.outcome:<11} {len(r.checks):>6}  {r.mutant.describe()}")
        if r.killers:
            lines.append(f"    killed by: {', '.join(r.killers[:3])}" + (" ..." if len(r.killers) > 3 else ""))
        if r.outcome in ("collateral", "survived", "timeout"):
            triage = report.triage.get(r.mutant.id)
            lines.append("    triage: " + (", ".join(f"{k}: {v}" for k, v in triage.items()) if triage else "NONE"))
            for c in (r.collateral + r.harness_errors)[:3]:
                lines.append(f"    other: {c}")
        if r.note and r.outcome in ("stillborn", "error"):
            lines.append(f"    {r.note}")
    score = "n/a" if report.strict_score is None else f"{report.strict_score:.1%}"
    with_local = ("n/a" if report.score_counting_provider_local is None
                  else f"{report.score_counting_provider_local:.1%}")
    lines += [
        "",
        f"generated {report.generated}, run {len(report.results)}"
        + (f" (sample {report.sample_size}, seed {report.seed})" if report.sample_size else "")
        + (f"; {len(report.not_run)} not run (the budget ran out)" if report.not_run else ""),
        f"not reached (survived without a run: the SUT never ran their code) "
        f"{sum(r.note == NOT_REACHED for r in report.results)}",
        "  ".join(f"{o} {report.count(o)}" for o in OUTCOMES)
        + f"  equivalent {len(report.equivalent)}  permitted {len(report.permitted)}"
        + f"  provider-local {len(report.provider_local)}",
        f"strict score {score} (killed / (mutants - stillborn - equivalent - permitted - provider-local)); "
        f"{with_local} with provider-local counted as survivors; wall time {report.seconds:.0f}s",
        f"untriaged survivors {len(report.untriaged)}" + (f": {report.untriaged}" if report.untriaged else ""),
        f"stale triage entries (no such mutant any more) {len(report.stale)}" + (f": {report.stale}" if report.stale else ""),
        f"checks that miss without a mutant too (clean-run diff) {len(report.failing_clean)}"
        + (f": {report.failing_clean}" if report.failing_clean else ""),
    ]
    for goal, met in report.goals().items():
        lines.append(f"goal {'met' if met else 'MISSED'}: {goal}")
    return "\n".join(lines)


__all__ = ["Mutant", "MutantResult", "MutationReport", "generate", "install_shim", "load_triage", "mutations_of",
           "map_mutants", "prepare", "render", "rule_modules", "run_mutants", "sample"]
