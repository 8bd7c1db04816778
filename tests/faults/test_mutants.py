"""The mutation engine (conformance.mutation): operators, stable IDs, mapping, the SUT-only loading, and
(with ``MIMI_MUTATION_SAMPLE=1``) the seeded CI sample against the triage file."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance import mutation
from conformance.mutation import GOAL_STRICT_SCORE, Mutant, MutantResult, MutationReport, mutations_of

SOURCE = '''\
import os

LIMIT = 3  # module level: never mutated


def check(a, b, items):
    if a < b and b != 0:
        raise ValueError("bad")
    while a >= 1 or False:
        a -= 1
    return a in items, b is None


class Rules:
    KIND = 7  # class level: never mutated

    @staticmethod
    def decorated(x: int = 5) -> bool:  # defaults and annotations run at import: never mutated
        return x <= 2
'''


def by_operator(mutants: list[Mutant]) -> dict[str, list[Mutant]]:
    out: dict[str, list[Mutant]] = {}
    for m in mutants:
        out.setdefault(m.operator, []).append(m)
    return out


def test_each_operator_makes_its_mutation():
    mutants = mutations_of("pkg.mod", SOURCE)
    ops = by_operator(mutants)
    assert set(ops) == set(mutation.OPERATORS)
    replaced = {(m.operator, m.original, m.replacement) for m in mutants}
    assert ("negate-if", "a < b and b != 0", "not (a < b and b != 0)") in replaced
    assert ("negate-while", "a >= 1 or False", "not (a >= 1 or False)") in replaced
    assert ("drop-and", "a < b and b != 0", "(b != 0)") in replaced
    assert ("drop-and", "a < b and b != 0", "(a < b)") in replaced
    assert ("drop-or", "a >= 1 or False", "(False)") in replaced
    assert ("flip-compare", "a < b", "(a <= b)") in replaced
    assert ("flip-compare", "b != 0", "(b == 0)") in replaced
    assert ("flip-compare", "a >= 1", "(a > 1)") in replaced
    assert ("flip-compare", "b is None", "(b is not None)") in replaced
    assert ("flip-compare", "x <= 2", "(x < 2)") in replaced
    assert ("flip-in", "a in items", "(a not in items)") in replaced
    assert ("raise-to-pass", 'raise ValueError("bad")', "pass") in replaced
    assert ("flip-bool", "False", "True") in replaced
    assert ("int-plus", "0", "(1)") in replaced and ("int-minus", "0", "(-1)") in replaced


def test_only_function_bodies_are_mutated():
    mutants = mutations_of("pkg.mod", SOURCE)
    lines = SOURCE.splitlines()
    for m in mutants:
        assert "never mutated" not in lines[m.line - 1], m.id
    originals = {m.original for m in mutants if m.operator.startswith("int-")}
    assert "3" not in originals and "7" not in originals and "5" not in originals
    assert {m.function for m in mutants} == {"check", "Rules.decorated"}


def test_every_mutant_compiles_and_changes_only_its_span():
    for m in mutations_of("pkg.mod", SOURCE):
        mutated = m.apply(SOURCE)
        compile(mutated, "mod.py", "exec")
        assert mutated != SOURCE
        before = SOURCE.splitlines()
        after = mutated.splitlines()
        if m.span[0] == m.span[2] and m.operator != "raise-to-pass":
            assert len(before) == len(after)
            assert [i for i, (x, y) in enumerate(zip(before, after, strict=True)) if x != y] == [m.span[0] - 1]


def test_ids_are_stable_and_unique():
    first = mutations_of("pkg.mod", SOURCE)
    again = mutations_of("pkg.mod", SOURCE)
    assert [m.id for m in first] == [m.id for m in again]
    assert len({m.id for m in first}) == len(first)
    assert all(m.id.startswith("pkg.mod:") and m.id.count(":") == 3 for m in first)
    # An edit below a site leaves its ID alone.
    edited = mutations_of("pkg.mod", SOURCE + "\n\ndef more(y):\n    return y > 1\n")
    assert {m.id for m in first} <= {m.id for m in edited}


def test_the_mutated_source_is_the_generation_snapshot():
    m = next(m for m in mutations_of("pkg.mod", SOURCE) if m.operator == "raise-to-pass")
    with pytest.raises(ValueError, match="source changed"):
        m.apply(SOURCE.replace('raise ValueError("bad")', 'raise ValueError("other")'))


def test_rule_modules_are_the_step_users_outside_the_excluded_packages():
    modules = mutation.rule_modules()
    assert "reference_peer.room.hub_members" in modules  # uses steps declared in hub_steps
    assert "reference_peer.peer" in modules
    assert not [m for m in modules if m.startswith(("reference_peer.faults", "reference_peer.control",
                                                    "reference_peer.mls", "reference_peer.wire"))]
    assert "reference_peer.cli" not in modules and "reference_peer.config" not in modules


def test_mutants_map_to_the_steps_of_their_function():
    from reference_peer.overrides import STEPS

    module = "reference_peer.room.hub_members"
    source = Path(mutation.PEER_ROOT / "room" / "hub_members.py").read_text(encoding="utf-8")
    mapped = mutation.map_mutants(mutations_of(module, source), source, ())
    assert mapped
    tree = ast.parse(source)
    for m in mapped:
        assert m.mapped_by in ("steps", "callers", "comments", "unmapped")
        assert m.requirements, m.id
        for name in m.steps:
            assert set(STEPS[name].requirements) <= set(m.requirements)
        if m.mapped_by == "steps":
            function = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                            and n.name == m.function.rsplit(".", 1)[-1])
            names = {n.id for n in ast.walk(function) if isinstance(n, ast.Name)} | {
                n.attr for n in ast.walk(function) if isinstance(n, ast.Attribute)}
            assert any(g in names for g, s in mutation.module_steps(module).items()
                       if s.name in m.steps for g in [g.rsplit(".", 1)[-1]])


def test_helpers_without_steps_map_by_their_callers_or_comments():
    module = "reference_peer.room.hub_members"
    source = (
        "from reference_peer.room.hub_steps import *  # noqa\n"
        + Path(mutation.PEER_ROOT / "room" / "hub_members.py").read_text(encoding="utf-8")
        + "\n\ndef _helper_for_test(x):\n    return x > 1\n"
        + "\n\ndef _commented_for_test(x):\n    # PROTO-FAKE-REQ applies here\n    return x > 1\n"
    )
    mapped = {m.function: m for m in mutation.map_mutants(mutations_of(module, source), source, ["PROTO-FAKE-REQ"])}
    assert mapped["_commented_for_test"].mapped_by == "comments"
    assert mapped["_commented_for_test"].requirements == ("PROTO-FAKE-REQ",)
    assert mapped["_helper_for_test"].mapped_by == "unmapped"  # no caller, no comment: the module's steps
    assert mapped["_helper_for_test"].requirements


def test_a_function_with_steps_also_maps_the_requirements_written_in_it():
    """A rule that refers to a step and names another requirement (in a refusal or comment) is judged by
    the checks of both: the written IDs count beside the step's."""
    from reference_peer.room.hub_steps import SINGLE_DEVICE

    module = "reference_peer.room.hub_members"
    source = (
        Path(mutation.PEER_ROOT / "room" / "hub_members.py").read_text(encoding="utf-8")
        + "\n\ndef _stepped_for_test(x):\n    # PROTO-FAKE-REQ applies here too\n"
        + "    return SINGLE_DEVICE if x > 1 else None\n"
    )
    mapped = {m.function: m for m in mutation.map_mutants(mutations_of(module, source), source, ["PROTO-FAKE-REQ"])}
    assert mapped["_stepped_for_test"].mapped_by == "steps"
    assert set(mapped["_stepped_for_test"].requirements) == {*SINGLE_DEVICE.requirements, "PROTO-FAKE-REQ"}


def test_the_sample_is_seeded_and_sorted():
    mutants = mutations_of("pkg.mod", SOURCE)
    a = mutation.sample(mutants, 5, seed=1)
    assert a == mutation.sample(list(reversed(mutants)), 5, seed=1)
    assert [m.id for m in a] == sorted(m.id for m in a)
    assert mutation.sample(mutants, None, seed=1) == sorted(mutants, key=lambda m: m.id)


def _shim_run(tmp_path: Path, peer: str, module: str) -> str:
    """A process whose command line looks like ``reference_peer.cli serve --config RUN/peers/<peer>/peer.yaml``
    (as the harness starts the SUT and the suite's peers): which file does it import ``module`` from?"""
    shim = mutation.install_shim(tmp_path / "shim")
    config = tmp_path / "run" / "peers" / peer / "peer.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    code = f"import {module} as m; print(m.__file__); print(getattr(m, 'MUTATED_BY_TEST', 'clean'))"
    env = {**os.environ, "PYTHONPATH": str(shim)}
    done = subprocess.run([sys.executable, "-c", code, "reference_peer.cli", "serve", "--config", str(config)],  # noqa: S603
                          env=env, capture_output=True, text=True, timeout=60, cwd=mutation.ROOT_DIR)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_only_the_sut_process_loads_the_mutant(tmp_path):
    module = "reference_peer.room.hub_members"
    source = Path(mutation.PEER_ROOT / "room" / "hub_members.py").read_text(encoding="utf-8")
    m = mutations_of(module, source)[0]
    written = mutation.prepare(m, tmp_path / "run")
    # Tag the mutated file so the test can see which one was imported.
    written.write_text(written.read_text(encoding="utf-8") + "\nMUTATED_BY_TEST = 'mutant'\n", encoding="utf-8")
    sut = _shim_run(tmp_path, "sut", module)
    assert str(written) in sut and "mutant" in sut.split()[-1]
    for peer in ("ref-hub", "ref-follower"):
        out = _shim_run(tmp_path, peer, module)
        assert str(mutation.PEER_ROOT) in out and out.split()[-1] == "clean"
    events = mutation.loaded(tmp_path / "run")
    assert events["mutant"] == ["sut"] and events["imported"] == ["sut"]
    assert sorted(events["clean"]) == ["ref-follower", "ref-hub"]


def test_a_process_of_a_run_without_a_mutant_is_untouched(tmp_path):
    out = _shim_run(tmp_path, "sut", "reference_peer.room.hub_members")
    assert out.split()[-1] == "clean"
    assert not (tmp_path / "run" / mutation.LOADED_LOG).exists()


def _result(mutant_id: str, outcome: str) -> MutantResult:
    module, function, operator, ordinal = mutant_id.split(":")
    m = Mutant(module, 1, 0, operator, function, "a", "b", (1, 0, 1, 1), ordinal=int(ordinal))
    return MutantResult(m, outcome, [], [], [], [], 0.0)


def test_strict_score_counts_equivalents_and_stillborns_out():
    results = [_result("m:f:flip-bool:0", "killed"), _result("m:f:flip-bool:1", "killed"),
               _result("m:f:flip-bool:2", "survived"), _result("m:f:flip-bool:3", "collateral"),
               _result("m:f:flip-bool:4", "stillborn")]
    triage = {"m:f:flip-bool:2": {"equivalent": "the value is never read"}, "m:f:flip-bool:3": {"gap": "no check"}}
    report = MutationReport(results, 10, triage, 1.0, 1, 5)
    assert report.equivalent == ["m:f:flip-bool:2"]
    assert report.strict_score == pytest.approx(2 / 3)
    assert report.untriaged == []
    assert not all(report.goals().values())
    assert report.as_dict()["killed"] == 2


def test_permitted_mutants_leave_the_score_and_are_counted_apart():
    """A mutant whose change the draft allows is out of the denominator like an equivalent one, but
    reported on its own (it is observable, so it must not be mistaken for dead code)."""
    results = [_result("m:f:flip-bool:0", "killed"), _result("m:f:flip-bool:1", "survived"),
               _result("m:f:flip-bool:2", "collateral"), _result("m:f:flip-bool:3", "survived")]
    triage = {"m:f:flip-bool:1": {"permitted": "-06 names no status for it"},
              "m:f:flip-bool:2": {"equivalent": "never read"}, "m:f:flip-bool:3": {"gap": "no check"}}
    report = MutationReport(results, 10, triage, 1.0, 1, 4)
    assert report.permitted == ["m:f:flip-bool:1"] and report.equivalent == ["m:f:flip-bool:2"]
    assert report.strict_score == pytest.approx(1 / 2)
    assert report.as_dict()["permitted"] == 1
    assert "permitted 1" in mutation.render(report)


def test_provider_local_mutants_leave_the_score_and_the_report_gives_it_with_them_counted():
    """A mutant whose change only the provider's own clients see (the client-to-provider interactions -06 §3
    leaves out, reached by the suite through its control API) leaves the strict score, is counted apart, and
    the report also gives the score with it counted as a survivor."""
    results = [_result("m:f:flip-bool:0", "killed"), _result("m:f:flip-bool:1", "collateral"),
               _result("m:f:flip-bool:2", "survived"), _result("m:f:flip-bool:3", "killed")]
    triage = {"m:f:flip-bool:1": {"provider-local": "createUser answers 500"},
              "m:f:flip-bool:2": {"gap": "no check"}}
    report = MutationReport(results, 10, triage, 1.0, 1, 4)
    assert report.provider_local == ["m:f:flip-bool:1"]
    assert report.strict_score == pytest.approx(2 / 3)
    assert report.score_counting_provider_local == pytest.approx(2 / 4)
    assert report.as_dict()["providerLocal"] == 1
    assert "provider-local 1" in mutation.render(report) and "50.0% with provider-local counted" in mutation.render(report)


def test_a_killed_mutant_is_never_unscored():
    report = MutationReport([_result("m:f:flip-bool:0", "killed")], 1,
                            {"m:f:flip-bool:0": {"permitted": "stale entry"}}, 1.0, 1, 1)
    assert report.permitted == [] and report.strict_score == 1.0


def test_the_triage_file_is_well_formed():
    triage = mutation.load_triage()
    for mutant_id, entry in triage.items():
        module, function, operator, ordinal = mutant_id.split(":")
        assert module.startswith("reference_peer.") and function and ordinal.isdigit()
        assert operator in mutation.OPERATORS
        assert set(entry) <= set(mutation.TRIAGE_KINDS) and all(entry.values())


def test_a_malformed_triage_entry_is_refused(tmp_path):
    path = tmp_path / "triage.yaml"
    path.write_text("mutants:\n  'm:f:flip-bool:0': {maybe: later}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="one of"):
        mutation.load_triage(path)
    path.write_text("mutants:\n  'm:f:flip-bool:0': {gap: a}\n  'm:f:flip-bool:0': {equivalent: b}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="given twice"):  # plain YAML would keep the second silently
        mutation.load_triage(path)


SAMPLE_SIZE, SAMPLE_SEED, SAMPLE_BUDGET = 60, 1, 8 * 60


@pytest.mark.skipif(os.environ.get("MIMI_MUTATION_SAMPLE") != "1",
                    reason="the seeded mutation sample runs only with MIMI_MUTATION_SAMPLE=1")
def test_mutation_sample(tmp_path, selftest_parallel):
    started = time.monotonic()
    report = mutation.run_mutants(tmp_path / "mutants", size=SAMPLE_SIZE, seed=SAMPLE_SEED, parallel=selftest_parallel)
    text = mutation.render(report)
    print(text)
    assert len(report.results) == SAMPLE_SIZE
    assert report.strict_score is not None and report.strict_score >= GOAL_STRICT_SCORE, text
    elapsed = time.monotonic() - started
    print(f"mutation sample: {elapsed:.0f}s (budget {SAMPLE_BUDGET}s on 2 cores)")


SEAM = '''\
def rule(self, c, x):
    if not self.overrides.departs(STEP) and c:
        return 1
    if self.overrides.departs(OTHER) and c:
        return 2
    return self.overrides.hook(HOOK, x) or x
'''


def test_seam_neutral_drops_are_not_generated():
    drops = {(m.original, m.replacement) for m in mutations_of("pkg.mod", SEAM) if m.operator.startswith("drop-")}
    assert drops == {
        ("not self.overrides.departs(STEP) and c", "(not self.overrides.departs(STEP))"),  # c dropped: always taken
        ("self.overrides.departs(OTHER) and c", "(c)"),  # the guard dropped: as if the fault were on
        ("self.overrides.hook(HOOK, x) or x", "(self.overrides.hook(HOOK, x))"),  # the default dropped
    }


def test_the_command_line_refuses_what_it_cannot_run(capsys, tmp_path):
    from conformance.cli import main

    assert main(["selftest", "--mutants", "--module", "reference_peer.cli", "--out", str(tmp_path)]) == 2
    assert "not rule module" in capsys.readouterr().err
    assert main(["selftest", "--mutants", "--fault", "x", "--out", str(tmp_path)]) == 2
    assert main(["selftest", "--mutants", "--sample", "0", "--out", str(tmp_path)]) == 2
    assert main(["selftest", "--mutants", "--budget", "0", "--out", str(tmp_path)]) == 2


def test_no_rule_module_reads_its_own_location():
    """The SUT loads a mutant from another folder: a rule module that found its data by ``__file__`` would
    behave differently for that reason alone."""
    for module in mutation.rule_modules():
        path = mutation.ROOT_DIR.joinpath(*module.split(".")).with_suffix(".py")
        assert "__file__" not in path.read_text(encoding="utf-8"), module


def test_a_run_that_never_started_the_sut_is_an_error_not_a_stillborn(tmp_path):
    from conformance.selftest import CheckInfo, SuiteRun

    m = Mutant("reference_peer.x", 1, 0, "flip-bool", "f", "True", "False", (1, 0, 1, 4), requirements=("REQ-A",))
    checks = [CheckInfo("c.py::t", ("REQ-A",), "hub", "x")]
    empty = SuiteRun(None, {}, {}, 1.0, 4, tmp_path)
    assert mutation.classify(m, empty, checks, loaded_events={})[0] == "error"
    assert mutation.classify(m, empty, checks, loaded_events={"mutant": ["sut"]})[0] == "stillborn"
    failed = SuiteRun(None, {"c.py::t": "FAIL"}, {}, 1.0, 1, tmp_path, outcomes={"c.py::t": {"REQ-A": "FAIL"}})
    assert mutation.classify(m, failed, checks, loaded_events={"mutant": ["sut"], "imported": ["sut"]})[0] == "killed"
    passed = SuiteRun(None, {"c.py::t": "PASS"}, {}, 1.0, 0, tmp_path, outcomes={"c.py::t": {"REQ-A": "PASS"}})
    assert mutation.classify(m, passed, checks, loaded_events={"mutant": ["sut"], "imported": ["sut"]})[0] == "survived"


def test_a_sweeps_processes_share_a_bytecode_cache_outside_the_tree(tmp_path, monkeypatch):
    """Where bytecode writing is off, the runs' processes share one cache in the sweep's folder (instead of
    each compiling every module it imports); the environment is restored after; nothing changes elsewhere."""
    from conformance.selftest import bytecode_cache

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    with bytecode_cache(tmp_path / ".pycache"):
        assert os.environ["PYTHONPYCACHEPREFIX"] == str((tmp_path / ".pycache").resolve())
        assert "PYTHONDONTWRITEBYTECODE" not in os.environ
    assert os.environ["PYTHONDONTWRITEBYTECODE"] == "1" and "PYTHONPYCACHEPREFIX" not in os.environ
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE")
    with bytecode_cache(tmp_path / "other"):  # bytecode is written anyway: left alone
        assert "PYTHONPYCACHEPREFIX" not in os.environ
    assert not (tmp_path / "other").exists()


def test_the_plugins_a_selftest_run_leaves_out_are_unused_by_the_suite():
    """A selftest run starts pytest without UNUSED_PLUGINS (their import is most of pytest's start-up): no
    module of the suite may need hypothesis or schemathesis, and allure only for ``run --alluredir``, which
    a selftest never passes."""
    from conformance import selftest
    from conformance.selftest import UNUSED_PLUGINS, _pytest_plugin_args

    assert _pytest_plugin_args() == [arg for name in UNUSED_PLUGINS for arg in ("-p", f"no:{name}")]
    for path in (mutation.ROOT_DIR / "conformance").rglob("*.py"):
        imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                    if isinstance(node, ast.Import | ast.ImportFrom)
                    for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
        assert not imported & {"hypothesis", "schemathesis"}, path
    assert '"--alluredir"' not in Path(selftest.__file__).read_text(encoding="utf-8")


def test_the_reach_run_measures_the_sut_only(tmp_path):
    """With ``reach.json`` in the run folder the SUT records the rule lines it runs (coverage.py, saved at
    exit); the suite's own peers record nothing."""
    pytest.importorskip("coverage")
    import coverage

    module = "reference_peer.room.hub_members"
    path = str((mutation.PEER_ROOT / "room" / "hub_members.py").resolve())
    data_file = tmp_path / "run" / "reach.coverage"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / mutation.REACH_FILE).write_text(
        f'{{"data": "{data_file}", "include": ["{path}"]}}', encoding="utf-8")
    assert _shim_run(tmp_path, "ref-hub", module).split()[-1] == "clean"
    assert not data_file.exists()
    _shim_run(tmp_path, "sut", module)
    data = coverage.CoverageData(basename=str(data_file))
    data.read()
    assert data.lines(path)  # the import ran the module's top level
    assert mutation.loaded(tmp_path / "run") == {"clean": ["ref-hub"], "reach": ["sut"]}


def test_a_mutant_on_code_the_sut_never_ran_is_not_reached():
    m = Mutant("reference_peer.room.hub_members", 10, 4, "flip-bool", "f", "True", "False", (10, 4, 12, 9))
    assert mutation._reached(m, None)  # nothing measured: every mutant runs
    assert not mutation._reached(m, {m.path.resolve(): {9, 13}})
    assert mutation._reached(m, {m.path.resolve(): {12}})  # any line of its span


def _fake_sweep(monkeypatch, ran: list[str]):
    def fake(mutant, out, checks, **kwargs):
        ran.append(mutant.id)
        return MutantResult(mutant, "killed", ["c (REQ)"], [], [], ["c"], 1.0)

    monkeypatch.setattr(mutation, "run_mutant", fake)


def test_a_budget_stops_the_sweep_and_a_resume_runs_the_rest(tmp_path, monkeypatch):
    ran: list[str] = []
    _fake_sweep(monkeypatch, ran)
    kwargs = dict(modules=["reference_peer.room.hub_fanout"], parallel=1, clean_diff=False, reach=False)
    cut = mutation.run_mutants(tmp_path, budget=0.0, **kwargs)
    assert cut.results == [] and len(cut.not_run) == cut.chosen > 0 and ran == []
    assert not cut.goals()["every mutant of the sample ran (no budget cut)"]
    full = mutation.run_mutants(tmp_path, **kwargs)
    assert len(ran) == full.chosen and all(full.goals().values())
    # The seed's ranking, not ID order: a budget-cut sweep has run a seeded random sample.
    rank = sorted(ran, key=lambda i: mutation.hashlib.sha256(f"1:{i}".encode()).hexdigest())
    assert ran == rank
    ran.clear()
    resumed = mutation.run_mutants(tmp_path, resume=True, **kwargs)
    assert ran == [] and [r.mutant.id for r in resumed.results] == [r.mutant.id for r in full.results]
    assert resumed.count("killed") == full.chosen


def test_a_resume_never_reuses_a_result_recorded_under_other_code(tmp_path):
    m = Mutant("reference_peer.room.hub_members", 1, 0, "flip-bool", "f", "True", "False", (1, 0, 1, 4))
    mutation.record_result(MutantResult(m, "survived", [], [], [], ["c"], 2.0, "n"), tmp_path, "aaaa")
    again = mutation.recorded_result(m, tmp_path, "aaaa")
    assert again is not None and (again.outcome, again.checks, again.note) == ("survived", ["c"], "n")
    assert mutation.recorded_result(m, tmp_path, "bbbb") is None
