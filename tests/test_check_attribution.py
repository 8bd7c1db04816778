"""Every miss in a check that judges several requirements names the requirement it breaks.

conformance/verdicts.py reports an unattributed miss in such a check as a check bug (HARNESS_ERROR) when
it happens; this test finds them before they happen, by reading the scenario modules: inside a check
function whose requirements marker names two or more IDs, every ``assert``, every ``fail(...)`` and
every ``poll_until(...)`` must name its requirement (``requirement=``) or sit inside a
``with judging(REQ):`` block (or a set-up block that decides its own outcome, ``setting_up``).
Helpers called by checks take the requirement as a parameter.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).resolve().parents[1] / "conformance" / "scenarios"
CALLS_NEEDING_A_REQUIREMENT = {"fail", "poll_until"}


def _requirement_count(function: ast.FunctionDef) -> int:
    for decorator in function.decorator_list:
        if isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute) \
                and decorator.func.attr == "requirements":
            return len(decorator.args)
    return 0


# Blocks that decide the outcome of what fails inside them: judging(REQ) names the requirement,
# setting_up(...) and _precondition(...) turn a set-up step that never completes into their own outcome.
ATTRIBUTING_BLOCKS = {"judging", "setting_up", "_precondition"}


def _is_judging_block(node: ast.With) -> bool:
    return any(isinstance(item.context_expr, ast.Call) and isinstance(item.context_expr.func, ast.Name)
               and item.context_expr.func.id in ATTRIBUTING_BLOCKS for item in node.items)


_HANDLED = {"PollTimeout", "TimeoutError", "Exception", "BaseException", "AssertionError"}


def _handles_misses(node: ast.Try) -> bool:
    """A try whose handlers turn a poll timeout or an assert into an outcome of the check's choosing."""
    names = set()
    for handler in node.handlers:
        if handler.type is None:
            return True
        for item in handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]:
            names.add(item.id if isinstance(item, ast.Name) else getattr(item, "attr", ""))
    return bool(names & _HANDLED)


def _unattributed(node: ast.AST, path: Path) -> list[str]:
    """Misses below ``node`` that name no requirement (not descending into judging() blocks, nested
    defs, or the body of a try that handles them itself)."""
    found = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.With) and _is_judging_block(child):
            continue
        if isinstance(child, ast.Try) and _handles_misses(child):
            for part in (*child.handlers, *child.orelse, *child.finalbody):
                found += _unattributed(part, path) if not isinstance(part, ast.stmt) else _unattributed(
                    ast.Module(body=[part], type_ignores=[]), path)
            continue
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        if isinstance(child, ast.Assert):
            found.append(f"{path.name}:{child.lineno}: assert")
        if isinstance(child, ast.Call):
            name = child.func.id if isinstance(child.func, ast.Name) else None
            if name in CALLS_NEEDING_A_REQUIREMENT and not any(k.arg == "requirement" for k in child.keywords):
                found.append(f"{path.name}:{child.lineno}: {name}() without requirement=")
        found += _unattributed(child, path)
    return found


def _checks():
    for path in sorted(SCENARIOS.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                yield path, node


def test_scenario_modules_are_found():
    assert len(list(_checks())) > 100


def test_every_miss_in_a_multi_requirement_check_names_its_requirement():
    problems = []
    for path, function in _checks():
        if _requirement_count(function) >= 2:
            problems += [f"{p} in {function.name}" for p in _unattributed(function, path)]
    assert not problems, "unattributed misses in multi-requirement checks:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("source, expected", [
    ("@pytest.mark.requirements(A, B)\ndef test_x():\n    assert x\n", 1),
    ("@pytest.mark.requirements(A, B)\ndef test_x():\n    with judging(A):\n        assert x\n", 0),
    ("@pytest.mark.requirements(A, B)\ndef test_x():\n    fail('m')\n    fail('m', requirement=B)\n", 1),
    ("@pytest.mark.requirements(A, B)\ndef test_x(poll_until):\n    poll_until(f, what='w')\n", 1),
    ("@pytest.mark.requirements(A, B)\ndef test_x(poll_until):\n    try:\n        poll_until(f, what='w')\n"
     "    except PollTimeout:\n        fail('m', requirement=A)\n", 0),
])
def test_the_reader_finds_unattributed_misses(source, expected):
    function = ast.parse(source).body[0]
    assert _requirement_count(function) == 2
    assert len(_unattributed(function, Path("m.py"))) == expected
