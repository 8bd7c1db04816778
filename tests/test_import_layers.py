"""Import layers: the contracts in .importlinter (run with import-linter) and no import cycle inside
reference_peer (checked here with grimp, the graph library import-linter is built on).

What counts as an import for the cycle check: every import grimp finds, at module level or inside a
function (a lazy import hides a cycle at load time, but the two modules still depend on each other,
and the seam promises that rule code depends on no fault), except those under ``if TYPE_CHECKING:``
(for the type checker only). The failure message marks each edge of a cycle ``lazy`` or ``module``.
"""

from __future__ import annotations

import ast
import configparser
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".importlinter"
# Modules of reference_peer that may import reference_peer.faults: the faults themselves and the
# entry points that turn configured names into overrides (cli) or validate them (config).
MAY_IMPORT_FAULTS = {"reference_peer.faults", "reference_peer.cli", "reference_peer.config"}


def _lint_imports() -> list[str]:
    script = Path(sys.executable).parent / "lint-imports"
    command = [str(script)] if script.exists() else [shutil.which("lint-imports") or "lint-imports"]
    return [*command, "--no-cache", "--no-logo"]  # run in ROOT, it reads ROOT/.importlinter


@pytest.mark.parametrize("contract", ["layers", "seam"])
def test_import_contract_is_kept(contract: str) -> None:
    """``layers``: reports <- conformance -> reference_peer (reports and reference_peer import neither
    conformance nor each other). ``seam``: no rule module of reference_peer imports reference_peer.faults."""
    result = subprocess.run([*_lint_imports(), "--contract", contract], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, f"import contract {contract!r} broken:\n{result.stdout}\n{result.stderr}"


def test_the_seam_contract_lists_every_rule_module() -> None:
    """The seam contract's sources are every top-level module of reference_peer but the faults and the
    entry points, so a module added later is covered."""
    parser = configparser.ConfigParser()
    parser.read(CONFIG)
    sources = set(parser["importlinter:contract:seam"]["source_modules"].split())
    graph = _graph()
    top_level = {m for m in graph.find_children("reference_peer")}
    assert sources == top_level - MAY_IMPORT_FAULTS


@cache
def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("reference_peer", exclude_type_checking_imports=True, cache_dir=None)


def _strongly_connected(nodes: set[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(edges[succ]))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _module_file(module: str) -> Path:
    path = ROOT.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _function_level_lines(module: str) -> set[int]:
    """Line numbers of the import statements inside a function of ``module``."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(_module_file(module).read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    lines.add(inner.lineno)
    return lines


def import_cycles() -> list[str]:
    """Each cycle of reference_peer as lines: its modules, then each import inside it (file:line)."""
    graph = _graph()
    nodes = set(graph.modules)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) & nodes for m in nodes}
    report = []
    for component in _strongly_connected(nodes, edges):
        members = set(component)
        report.append(f"cycle of {len(component)}: {', '.join(component)}")
        for importer in component:
            lazy_lines = _function_level_lines(importer)
            for imported in sorted(edges[importer] & members):
                for detail in graph.get_import_details(importer=importer, imported=imported):
                    kind = "lazy" if detail["line_number"] in lazy_lines else "module"
                    where = _module_file(importer).relative_to(ROOT)
                    report.append(f"    {where}:{detail['line_number']} ({kind}) {importer} -> {imported}: "
                                  f"{detail['line_contents']}")
    return report


def test_no_import_cycle_inside_reference_peer() -> None:
    cycles = import_cycles()
    assert not cycles, "import cycles between modules of reference_peer:\n" + "\n".join(cycles)


if __name__ == "__main__":  # python tests/test_import_layers.py: print today's cycles
    print("\n".join(import_cycles()) or "no import cycle")
