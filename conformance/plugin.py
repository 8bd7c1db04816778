"""The mimi-conformance pytest plugin (entry point ``pytest11: mimi_conformance``).

A *check* is a test in ``conformance/scenarios/`` (or any test when ``--sut`` is given). For
everything else the plugin is inert, so the project's own tests in ``tests/`` are unaffected.

Markers::

    @pytest.mark.requirements("PROTO-DIRECTORY-WELL-KNOWN", ...)   # required: what the check judges
    @pytest.mark.role("hub")        # the SUT role the check needs (hub | follower); none: any role
    @pytest.mark.feature("identifierQuery")   # an optional SUT feature the check needs

A check without requirement IDs, with an ID not in the catalogue, or with an unknown role or
feature is an error at collection. A check whose role or feature the SUT does not declare is
NOT_APPLICABLE before it runs.

Options: ``--sut reference|MANIFEST``, ``--seed N``, ``--mimi-results PATH`` (CheckResults as JSON
lines), ``--mimi-output DIR`` (transcripts, logs, PKI), ``--mimi-profile NAME`` (score levels by it),
``--mimi-suite-pki DIR`` (a suite PKI to reuse; overrides the manifest's ``suite.pki``).

A suite run (``--sut`` given) is prepared by the controller (the xdist controller, or the single
process) before any worker starts: the output folder, the suite PKI (one per run unless given), and,
for a ``url``/``command``/``image`` SUT, the reference gateway and the SUT itself, connected once and
shared by the workers (``conformance.harness.connectors.SharedSut``). A setup failure stops the run
with a usage error (pytest exit 4) and one sentence, never a verdict.

Fixtures: ``sut`` (the ConnectedSut), ``recorder`` (this check's), ``mimi`` (MIMI calls to the SUT
as the suite's hub domain, recorded), ``reference_peers`` (the suite's hub and follower, started on
first use), ``deadline``, ``poll_until``, ``rng`` (seeded per check), ``mimi_run``.

Each check's verdict (conformance.verdicts) is computed from its outcome, shown per area in the
terminal summary, attached to the JUnit report as the ``mimi_verdict`` property, and written to
``--mimi-results``. FAIL and HARNESS_ERROR make pytest's outcome "failed"; NOT_APPLICABLE becomes
"skipped"; WARN and AMBIGUOUS stay "passed" (they do not fail a run on their own). Results travel
on the test reports, so under pytest-xdist the controller writes one results file (each worker
has its own reference peers; the embedded reference SUT is one per worker, any other SUT is shared).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, NoReturn

import pytest

from .verdicts import (
    CheckResult,
    HarnessError,
    Judgement,
    LevelResolver,
    NotApplicable,
    Verdict,
    blocked_judgement,
    close_ledger,
    current_ledger,
    judge,
    missing_operation_line,
    open_ledger,
    strictest_profile_levels,
)

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"
ROLES = ("hub", "follower")
_STATE = pytest.StashKey["_CheckState"]()
_RUN = pytest.StashKey["MimiRun"]()
_SHARED_SUT = pytest.StashKey[Any]()
SETUP_ERROR_FILE = "setup-error.txt"  # OUT/setup-error.txt: a worker's setup failure, for the controller


@dataclasses.dataclass
class _CheckState:
    judgement: Judgement | None = None
    duration: float = 0.0
    transcript: str | None = None
    started: float = dataclasses.field(default_factory=time.time)  # wall clock, as the peers log it
    blocked_by: tuple[str, ...] = ()
    control_operations: tuple[str, ...] = ()  # what the check asked of the SUT's control API


# --------------------------------------------------------------------------------------------
# Options and configuration


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mimi-conformance", "MIMI conformance suite")
    group.addoption("--sut", default=None, metavar="reference|MANIFEST",
                    help="the system under test: 'reference' (embedded reference peer, the default) or a SUT manifest")
    group.addoption("--seed", type=int, default=None, metavar="N", help="seed of the run (default: random, recorded)")
    group.addoption("--mimi-results", default=None, metavar="PATH", help="write check results as JSON lines to PATH")
    group.addoption("--mimi-output", default=None, metavar="DIR",
                    help="the run's output dir: transcripts, logs, PKI (default: a pytest temporary dir)")
    group.addoption("--mimi-profile", default=None, metavar="NAME", help="score requirement levels by this profile")
    group.addoption("--mimi-inventory", default=None, metavar="PATH",
                    help="write the collected checks (ID, requirements, role, area, features) as JSON to PATH")
    group.addoption("--mimi-suite-pki", default=None, metavar="DIR",
                    help="the suite PKI to use (mimi-conformance pki init DIR; default: the manifest's suite.pki, "
                         "else one made for this run)")


@pytest.hookimpl(trylast=True)  # after pytest's tmp_path setup, whose folder a run defaults to
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requirements(*ids): the requirement IDs a conformance check judges")
    config.addinivalue_line("markers", "role(name): the SUT role a conformance check needs (hub or follower)")
    config.addinivalue_line("markers", "feature(*names): optional SUT features a conformance check needs")
    config.addinivalue_line("markers", "operations(*ids, hub=(), follower=(), optional=()): the SUT control "
                            "operations a conformance check needs (in every role, or only as hub / follower), "
                            "and those it uses only when the SUT offers them")
    run = MimiRun(config)
    config.stash[_RUN] = run
    if run.explicit:
        from .harness import reference_names

        reference_names.set_worker(getattr(config, "workerinput", {}).get("workerid"))
        if not hasattr(config, "workerinput"):
            _prepare_suite_run(config, run)
        else:  # a worker parses the command line afresh: take what the controller settled
            for option in _SHARED_OPTIONS:
                if config.workerinput.get(option):
                    setattr(config.option, option, config.workerinput[option])
    if not hasattr(config, "workerinput"):  # an xdist worker forwards its reports instead of recording
        config.pluginmanager.register(_ResultCollector(run), "mimi-conformance-results")


def _prepare_suite_run(config: pytest.Config, run: MimiRun) -> None:
    """In the controller, before xdist starts its workers (pytest_configure_node hands them the result):
    the output folder and the suite PKI every process of the run shares."""
    from .harness.suite_pki import SuitePki, SuitePkiError

    if not config.option.mimi_output:
        factory = getattr(config, "_tmp_path_factory", None)
        config.option.mimi_output = str(factory.mktemp("mimi-run") if factory else tempfile.mkdtemp(prefix="mimi-run-"))
    output = Path(config.option.mimi_output).resolve()
    config.option.mimi_output = str(output)
    given = config.getoption("mimi_suite_pki") or run.manifest.suite_pki
    try:
        if given:
            pki = SuitePki.load(Path(given).resolve(), output / "pki")
        else:
            pki = SuitePki.init(output / "suite-pki")
    except SuitePkiError as exc:
        raise pytest.UsageError(f"suite PKI error: {exc}") from None
    config.option.mimi_suite_pki = str(pki.directory.resolve())
    (output / SETUP_ERROR_FILE).unlink(missing_ok=True)


_SHARED_OPTIONS = ("mimi_output", "mimi_suite_pki")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist: hand each worker the output folder and suite PKI the controller settled."""
    for option in _SHARED_OPTIONS:
        value = getattr(node.config.option, option, None)
        if value:
            node.workerinput[option] = value


def worker_count(config: pytest.Config) -> int:
    """How many xdist workers the run has (0: none)."""
    value = getattr(config.option, "numprocesses", None)
    if value in ("auto", "logical"):
        return os.cpu_count() or 1
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def setup_exit(config: pytest.Config, exc: BaseException, session: pytest.Session | None = None) -> NoReturn:
    """Stop the run before any verdict: a setup failure is a usage error (exit 4), said in one sentence.
    A worker also leaves the sentence for the controller, which sets the run's exit status."""
    from .harness.connectors import setup_error_sentence

    sentence = setup_error_sentence(exc)
    output = config.getoption("mimi_output")
    if output and hasattr(config, "workerinput"):
        marker = Path(output) / SETUP_ERROR_FILE
        if not marker.exists():
            marker.write_text(sentence + "\n", encoding="utf-8")
        if session is not None:
            session.shouldstop = sentence  # xdist: the controller stops the run instead of rescheduling
    pytest.exit(sentence, returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """A url, command or image SUT is started (or connected) once, here in the controller, before xdist
    starts its workers (xdist's own sessionstart runs last)."""
    config = session.config
    run = config.stash.get(_RUN, None)
    if run is None or not run.explicit or hasattr(config, "workerinput"):
        return
    if run.manifest.connector_type == "reference" or config.option.collectonly:
        return  # the embedded SUT starts per worker; collecting needs no SUT
    from .harness.connectors import SETUP_ERRORS, SharedSut
    from .harness.suite_pki import SuitePki

    output = Path(config.option.mimi_output)
    try:
        pki = SuitePki.load(config.option.mimi_suite_pki, output / "pki")
        shared = SharedSut(run.manifest, output, pki, worker_count(config))
        config.stash[_SHARED_SUT] = shared
        shared.start()
    except SETUP_ERRORS as exc:
        setup_exit(config, exc)


def pytest_unconfigure(config: pytest.Config) -> None:
    shared = config.stash.get(_SHARED_SUT, None)
    if shared is not None:
        del config.stash[_SHARED_SUT]
        shared.stop()


class MimiRun:
    """Per-session state: options, the SUT manifest, the catalogue, results."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.sut_option: str | None = config.getoption("sut")
        seed = config.getoption("seed")
        self.seed: int = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self.results: list[CheckResult] = []
        self._manifest = None
        self._catalogue = None
        self._levels: LevelResolver | None = None
        self._results_file = None
        self.output_dir: Path | None = None
        self.sut_hosts: set[str] = set()
        # name -> control URL of the suite's reference peers, once started (to ask what blocked a check)
        self.reference_introspection: dict[str, str] = {}
        # A bad manifest or profile name is a usage error before anything is collected.
        if self.sut_option not in (None, "reference"):
            self.manifest  # noqa: B018
        if config.getoption("mimi_profile") is not None:
            self.levels  # noqa: B018

    @property
    def explicit(self) -> bool:
        """Whether --sut was given: then every collected test is a check."""
        return self.sut_option is not None

    @property
    def manifest(self):
        from .harness.manifest import ManifestError, load_manifest, reference_manifest

        if self._manifest is None:
            if self.sut_option in (None, "reference"):
                self._manifest = reference_manifest()
            else:
                try:
                    self._manifest = load_manifest(self.sut_option)
                except ManifestError as exc:
                    raise pytest.UsageError(str(exc)) from None
        return self._manifest

    @property
    def catalogue(self):
        if self._catalogue is None:
            from .catalogue import load_catalogue

            self._catalogue = load_catalogue()
        return self._catalogue

    @property
    def levels(self) -> LevelResolver:
        if self._levels is None:
            from .profiles import ProfileError, load_profiles

            catalogue_levels = {req.id: req.level for req in self.catalogue}
            try:
                profiles = load_profiles(self.catalogue)
            except ProfileError:
                profiles = {}  # profiles are read from the source tree; without them IMPLIED scores SHOULD
            name = self.config.getoption("mimi_profile")
            selected = None
            if name is not None:
                if name not in profiles:
                    raise pytest.UsageError(f"--mimi-profile: unknown profile {name!r}; known: {sorted(profiles)}")
                selected = profiles[name].requirements
            self._levels = LevelResolver(catalogue_levels, selected, strictest_profile_levels(profiles.values()))
        return self._levels

    def is_check(self, item: pytest.Item) -> bool:
        if self.explicit:
            return True
        return Path(str(item.path)).resolve().is_relative_to(SCENARIOS_DIR)

    def record(self, result: CheckResult) -> None:
        self.results.append(result)
        path = self.config.getoption("mimi_results")
        if path is None:
            return
        if self._results_file is None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._results_file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed at session end
            self._results_file.write(json.dumps(self.header()) + "\n")
        self._results_file.write(json.dumps({"kind": "check", **result.as_dict()}) + "\n")
        self._results_file.flush()

    def header(self) -> dict[str, Any]:
        from importlib.metadata import PackageNotFoundError, version

        try:
            suite_version = version("mimi-conformance")
        except PackageNotFoundError:
            suite_version = "unknown"
        manifest = self.manifest
        return {
            "kind": "run",
            "suiteVersion": suite_version,
            "drafts": sorted(self.catalogue.documents),
            "seed": self.seed,
            "sut": {"name": manifest.name, "vendor": manifest.vendor, "version": manifest.version,
                    "connector": manifest.connector_type, "manifestSha256": manifest.sha256},
            "profile": self.config.getoption("mimi_profile"),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }

    def close(self) -> None:
        if self._results_file is not None:
            self._results_file.close()
            self._results_file = None


def _run(config: pytest.Config) -> MimiRun:
    return config.stash[_RUN]


# --------------------------------------------------------------------------------------------
# Collection: every check declares what it judges


def _marker_args(item: pytest.Item, name: str) -> list[Any]:
    return [arg for marker in item.iter_markers(name) for arg in marker.args]


def requirement_ids(item: pytest.Item) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for arg in _marker_args(item, "requirements"):
        seen[arg] = None
    return tuple(seen)


def check_role(item: pytest.Item) -> str:
    roles = _marker_args(item, "role")
    return roles[0] if roles else "any"


def _problems(item: pytest.Item, run: MimiRun) -> list[str]:
    from .harness.manifest import FEATURES

    problems = []
    ids = requirement_ids(item)
    if not ids:
        problems.append('declares no requirement IDs (add @pytest.mark.requirements("PROTO-...", ...))')
    bad = [i for i in ids if not isinstance(i, str)]
    if bad:
        problems.append(f"requirement IDs must be strings, got {bad!r}")
    unknown = [i for i in ids if isinstance(i, str) and i not in run.catalogue]
    if unknown:
        problems.append(f"unknown requirement ID(s) {unknown} (not in the requirement catalogue)")
    roles = _marker_args(item, "role")
    if len(roles) > 1 or any(r not in ROLES for r in roles):
        problems.append(f"role marker must name exactly one of {list(ROLES)}, got {roles!r}")
    features = _marker_args(item, "feature")
    unknown_features = [f for f in features if f not in FEATURES]
    if unknown_features:
        problems.append(f"unknown feature(s) {unknown_features}; the vocabulary is {list(FEATURES)}")
    return problems


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    report = yield
    if not report.passed or not isinstance(collector, pytest.Module | pytest.Class):
        return report
    run = _run(collector.config)
    lines = []
    for node in report.result:
        if isinstance(node, pytest.Function) and run.is_check(node):
            lines += [f"{node.nodeid}: {problem}" for problem in _problems(node, run)]
    if lines:
        report.outcome = "failed"
        report.longrepr = "mimi-conformance: invalid check(s):\n  " + "\n  ".join(lines)
        report.result = []
    return report


def check_inventory(items: list[pytest.Item], run: MimiRun) -> list[dict[str, Any]]:
    """What each collected check judges, without running it (selftest, coverage manifest)."""
    return [
        {"id": item.nodeid, "requirements": list(requirement_ids(item)), "role": check_role(item),
         "area": _area(item), "features": list(_marker_args(item, "feature")), "operations": check_operations(item)}
        for item in items if run.is_check(item)
    ]


def check_operations(item: pytest.Item) -> dict[str, list[str]] | None:
    """The control operations a check declares for its role (``operations`` marker; None: no marker)."""
    from .operations_table import declared_operations

    markers = [(marker.args, marker.kwargs) for marker in item.iter_markers("operations")]
    return declared_operations(markers, check_role(item)) if markers else None


def pytest_collection_finish(session: pytest.Session) -> None:
    path = session.config.getoption("mimi_inventory")
    if path is not None and not hasattr(session.config, "workerinput"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(check_inventory(session.items, _run(session.config)), indent=1) + "\n")


# --------------------------------------------------------------------------------------------
# Running: gate, judge, record


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    run = _run(item.config)
    if not run.is_check(item):
        return
    item.stash[_STATE] = _CheckState()
    open_ledger(requirement_ids(item))
    manifest = run.manifest
    role = check_role(item)
    if role != "any" and role not in manifest.roles:
        raise NotApplicable(f"the SUT does not declare the {role} role (manifest roles: {list(manifest.roles)})")
    _label_for_allure(item, run)
    missing = [f for f in _marker_args(item, "feature") if f not in manifest.features]
    if missing:
        raise NotApplicable(f"the SUT does not declare the optional feature(s) {missing}")


def _label_for_allure(item: pytest.Item, run: MimiRun) -> None:
    """With allure-pytest active (``--alluredir``): epic = area, a feature per requirement, severity by level."""
    if not item.config.pluginmanager.hasplugin("allure_pytest") or not item.config.getoption("allure_report_dir", None):
        return
    from reports.allure import SEVERITY_BY_LEVEL, AllureLabels, apply_allure_labels, strictest_level

    ids = requirement_ids(item)
    levels = {}
    for requirement in ids:
        try:
            levels[requirement] = run.levels.level(requirement)
        except (KeyError, ValueError):
            continue
    severity = SEVERITY_BY_LEVEL.get(strictest_level(ids, levels) or "", "normal")
    apply_allure_labels(AllureLabels(_area(item), ids, severity, (f"role:{check_role(item)}",)))


def _skip_reason(exc: BaseException) -> str:
    return str(getattr(exc, "msg", "") or exc) or "skipped"


def _judge_excinfo(item: pytest.Item, run: MimiRun, exc: BaseException | None) -> Judgement:
    if exc is not None and isinstance(exc, pytest.skip.Exception):
        exc = NotApplicable(_skip_reason(exc))
    if exc is not None and isinstance(exc, pytest.fail.Exception):
        # pytest.fail() is how a fixture or helper says the check is broken, not the SUT.
        exc = HarnessError(f"pytest.fail: {_skip_reason(exc)}")
    try:
        return judge(exc, requirement_ids(item), run.levels, sut_hosts=run.sut_hosts, ledger=current_ledger())
    except Exception as err:  # noqa: BLE001 - the verdict logic itself must never crash a run
        return Judgement(
            Verdict.HARNESS_ERROR, f"cannot judge the outcome ({type(err).__name__}: {err}); outcome: {exc!r}"
        )


def _apply(report: pytest.TestReport, item: pytest.Item, judgement: Judgement) -> None:
    verdict = judgement.verdict
    report.sections.append(("mimi-conformance verdict", f"{verdict}: {judgement.message}".rstrip(": ")))
    if verdict is Verdict.NOT_APPLICABLE:
        report.outcome = "skipped"
        path, lineno, _ = item.location
        report.longrepr = (str(path), (lineno or 0) + 1, f"NOT_APPLICABLE: {judgement.message}")
    elif verdict in (Verdict.WARN, Verdict.AMBIGUOUS, Verdict.PASS):
        report.outcome = "passed"
        report.longrepr = None
    else:
        report.outcome = "failed"
        if report.longrepr is None:
            report.longrepr = f"{verdict}: {judgement.message}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    run = _run(item.config)
    if not run.is_check(item):
        return report
    state = item.stash.setdefault(_STATE, _CheckState())
    state.duration += report.duration
    exc = call.excinfo.value if call.excinfo is not None else None
    if call.when in ("setup", "call"):
        if exc is not None or call.when == "call":
            state.judgement = _judge_excinfo(item, run, exc)
            # Asked now, while the session's reference peers still run (the last check's teardown
            # stops them before its teardown report).
            if state.judgement.blocked_by:
                state.blocked_by = state.judgement.blocked_by
            elif state.judgement.verdict in _BLOCKABLE:
                state.judgement = _attribute_blocking(item, run, state, state.judgement, exc)
            _apply(report, item, state.judgement)
    elif call.when == "teardown":
        judgement = state.judgement or _judge_excinfo(item, run, HarnessError("the check never ran"))
        if exc is not None and not judgement.verdict.fails_run:
            # The suite's clean-up broke: the check fails the run, while what it observed stands.
            torn = _judge_excinfo(item, run, HarnessError(f"teardown failed: {type(exc).__name__}: {exc}"))
            judgement = dataclasses.replace(torn, verdict=Verdict.HARNESS_ERROR, message=torn.message
                                            or f"teardown failed: {type(exc).__name__}: {exc}")
        elif exc is not None:
            report.sections.append(("mimi-conformance", f"teardown also failed: {type(exc).__name__}: {exc}"))
        close_ledger()
        state.judgement = judgement
        if item.config.getoption("allure_report_dir", None):
            from reports.allure import set_allure_status

            set_allure_status(item.config, item.nodeid, judgement.verdict, judgement.message)
        result = CheckResult(
            check_id=item.nodeid,
            requirements=requirement_ids(item),
            role=check_role(item),
            verdict=judgement.verdict,
            message=judgement.message,
            duration=state.duration,
            transcript=state.transcript,
            area=_area(item),
            ambiguity=judgement.ambiguity,
            scored_level=judgement.scored_level,
            blocked_by=state.blocked_by,
            outcomes=judgement.outcomes,
            missing_operation=judgement.missing_operation,
            control_operations=state.control_operations,
        )
        # Carried on the report (not recorded here) so that under pytest-xdist the controller, which
        # sees every worker's reports, writes the one results file and the one summary.
        report.mimi_result = result.as_dict()
        item.user_properties.append(("mimi_verdict", str(judgement.verdict)))
        report.user_properties.append(("mimi_verdict", str(judgement.verdict)))
    return report


_BLOCKABLE = (Verdict.FAIL, Verdict.WARN, Verdict.HARNESS_ERROR)


def _attribute_blocking(
    item: pytest.Item, run: MimiRun, state: _CheckState, judgement: Judgement, exc: BaseException | None
) -> Judgement:
    """A missed check the SUT blocked by breaking a rule it does not judge (a transport rule, a missing
    directory entry) is that rule's FAIL (``conformance.harness.attribution``)."""
    from .harness import attribution

    optional = attribution.missing_optional_endpoint(exc)
    if optional is not None:
        return _judge_excinfo(item, run, NotApplicable(
            f"the SUT's directory does not list {optional!r}, an endpoint -06 leaves optional: the SUT does not offer it"))
    found = attribution.harness_blockers(exc, check_role(item))
    if run.reference_introspection:
        since = state.started - attribution.LOOKBACK_SECONDS
        found += attribution.gather(run.reference_introspection, since, run.manifest.domains)
    judged = set(requirement_ids(item))
    if not found or any(b.requirement in judged for b in found):
        return judgement
    state.blocked_by, message = attribution.blocked_message(found, judgement.message)
    return blocked_judgement(judgement, state.blocked_by, message)


class _ResultCollector:
    """Registered per session: receives every check's result from the reports (also xdist workers')."""

    def __init__(self, run: MimiRun) -> None:
        self.run = run

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "mimi_result", None)
        if data is not None and report.when == "teardown":
            self.run.record(CheckResult.from_dict(data))


def _area(item: pytest.Item) -> str:
    stem = Path(str(item.path)).stem
    return stem.removeprefix("test_")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    run = config.stash.get(_RUN, None)
    if run is None or not run.results:
        return
    per_area: dict[str, Counter[str]] = defaultdict(Counter)
    for result in run.results:
        per_area[result.area][str(result.verdict)] += 1
    terminalreporter.write_sep("=", "mimi-conformance verdicts")
    order = [str(v) for v in Verdict]
    for area in sorted(per_area):
        counts = ", ".join(f"{v} {per_area[area][v]}" for v in order if per_area[area][v])
        terminalreporter.write_line(f"{area:<20} {counts}")
    total = Counter(str(r.verdict) for r in run.results)
    terminalreporter.write_line(f"{'total':<20} " + ", ".join(f"{v} {total[v]}" for v in order if total[v]))
    for result in run.results:
        if result.verdict not in (Verdict.PASS,):
            terminalreporter.write_line(f"  {result.verdict:<14} {result.check_id}: {result.message}")
    lacking = missing_operation_line(r.missing_operation for r in run.results)
    if lacking:
        terminalreporter.write_line(lacking)
    terminalreporter.write_line(f"seed {run.seed}; SUT manifest sha256 {run.manifest.sha256}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    run = session.config.stash.get(_RUN, None)
    if run is not None:
        run.close()
    config = session.config
    output = config.getoption("mimi_output")
    if run is not None and run.explicit and output and not hasattr(config, "workerinput"):
        marker = Path(output) / SETUP_ERROR_FILE
        if marker.exists():
            # A worker could not set up its SUT: the run is a usage error, whatever the checks said.
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            sentence = marker.read_text(encoding="utf-8").strip()
            # As pytest reports its own pytest.exit(), so that a worker's sentence reads like one here.
            sys.stderr.write(f"\nExit: {sentence}\n")


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def mimi_run(request: pytest.FixtureRequest) -> MimiRun:
    return _run(request.config)


@pytest.fixture(scope="session")
def mimi_output_dir(mimi_run: MimiRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    option = mimi_run.config.getoption("mimi_output")
    directory = Path(option) if option else tmp_path_factory.mktemp("mimi-run")
    directory.mkdir(parents=True, exist_ok=True)
    mimi_run.output_dir = directory
    return directory


@pytest.fixture(scope="session")
def run_env(mimi_output_dir: Path, mimi_run: MimiRun, request: pytest.FixtureRequest):
    from .harness.connectors import GatewayLink, RunEnvironment, read_connected
    from .harness.suite_pki import SuitePki, SuitePkiError

    config = request.config
    # Under pytest-xdist each worker starts its own peers (and embedded SUT): their state, logs and
    # certificates go to a folder of their own (transcripts stay in the run's folder, named by check).
    worker = getattr(config, "workerinput", {}).get("workerid")
    directory = mimi_output_dir / "workers" / worker if worker else mimi_output_dir
    try:
        shared_pki = config.getoption("mimi_suite_pki")
        if shared_pki:  # the controller's (a suite run)
            pki = SuitePki.load(shared_pki, directory / "pki")
        else:  # checks run without --sut: a suite PKI of this process's own
            pki = SuitePki.init(directory / "suite-pki")
            pki.leaf_dir = directory / "pki"
    except SuitePkiError as exc:
        setup_exit(config, exc, request.session)
    gateway = None
    if mimi_run.explicit and mimi_run.manifest.connector_type != "reference":
        link = read_connected(mimi_output_dir)["gateway"]
        gateway = GatewayLink(Path(link["routes"]), int(link["port"]))
    return RunEnvironment(directory, pki, gateway=gateway)


@pytest.fixture(scope="session")
def sut_session(mimi_run: MimiRun, run_env, mimi_output_dir: Path, request: pytest.FixtureRequest):
    """The SUT for this process: the embedded reference peer started here (one per worker), or the
    SUT the controller connected once for the run (``OUT/sut/connected.json``), with a control client
    of this process's own."""
    from .harness.connectors import SETUP_ERRORS, connected_from_description, make_connector, read_connected

    manifest = mimi_run.manifest
    if manifest.connector_type != "reference":
        try:
            connected = connected_from_description(manifest, read_connected(mimi_output_dir))
        except SETUP_ERRORS as exc:
            setup_exit(request.config, exc, request.session)
        shared = request.config.stash.get(_SHARED_SUT, None)
        process_state = getattr(shared and shared.connector, "process_state", None)
        if process_state is not None and connected.control is not None:
            connected.control.explain_unreachable = process_state  # started by this process: its exit code
        run_env.publish(dict(connected.endpoints))  # for this worker's reference peers (peers.yaml)
        mimi_run.sut_hosts = connected.hosts
        try:
            yield connected
        finally:
            if connected.control is not None:
                connected.control.close()
        return
    connector = make_connector(manifest, run_env)
    try:
        connected = connector.start()
    except SETUP_ERRORS as exc:
        connector.stop()
        # A setup problem is reported as such, never as a verdict on the SUT.
        setup_exit(request.config, exc, request.session)
    except BaseException:
        connector.stop()  # interrupted or failed half-way: nothing it spawned may outlive the run
        raise
    mimi_run.sut_hosts = connected.hosts
    try:
        yield connected
    finally:
        connector.stop()


@pytest.fixture
def recorder(request: pytest.FixtureRequest, mimi_output_dir: Path):
    from .harness.recorder import Recorder

    item = request.node
    rec = Recorder(item.nodeid, requirement_ids(item))
    yield rec
    relative = rec.write(mimi_output_dir)
    state = item.stash.get(_STATE, None)
    if state is not None:
        state.transcript = relative


@pytest.fixture
def sut(sut_session, recorder, request: pytest.FixtureRequest):
    """The connected SUT; its control API calls during this check go to this check's recorder, and the
    operations it asks for to the check's record (``control_operations``)."""
    from .harness.control import OperationRecord

    operations = OperationRecord()
    if sut_session.control is not None:
        sut_session.control.observer = recorder.record_control
        sut_session.control.operation_record = operations
    try:
        yield sut_session
    finally:
        if sut_session.control is not None:
            sut_session.control.observer = None
            sut_session.control.operation_record = None
        state = request.node.stash.get(_STATE, None)
        if state is not None:
            state.control_operations = operations.operations


@pytest.fixture(scope="session")
def reference_peers(run_env, sut_session, request: pytest.FixtureRequest):
    """The suite's reference hub and follower, started on first use and stopped at the end of the run."""
    from .harness.connectors import ReferencePeers

    peers = ReferencePeers(run_env, sut_ca=sut_session.ca)
    peers.start()
    run = _run(request.config)
    run.reference_introspection = {
        f"the reference {role}": peer.control_urls[peer.domains[0]]
        for role, peer in (("hub", peers.hub), ("follower", peers.follower))
        if peer.control_urls.get(peer.domains[0])
    }
    try:
        yield peers
    finally:
        run.reference_introspection = {}
        peers.stop()


@pytest.fixture
def mimi(sut, run_env, recorder, mimi_run: MimiRun):
    """MIMI calls to the SUT as this worker's reference hub domain (hub.ref.test), every exchange recorded."""
    from .harness.mimi import MimiSession
    from .harness.reference_names import current

    hub = current().hub
    cert, key = run_env.pki.issue(hub)
    trust = run_env.pki.trust_bundle("trust-mimi-client", sut.ca if sut.ca != run_env.pki.ca_cert else None)
    session = MimiSession(hub, cert, key, trust, resolve=sut.resolve(), recorder=recorder,
                          timeout=mimi_run.manifest.timeouts.request)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def mimi_as(sut, run_env, recorder, mimi_run: MimiRun):
    """``mimi_as(domain)``: MIMI calls to the SUT as one of the suite's reference domains (recorded)."""
    from .harness.mimi import MimiSession

    sessions = []

    def session_for(domain: str) -> MimiSession:
        cert, key = run_env.pki.issue(domain)
        trust = run_env.pki.trust_bundle("trust-mimi-client", sut.ca if sut.ca != run_env.pki.ca_cert else None)
        session = MimiSession(domain, cert, key, trust, resolve={**run_env.resolve, **sut.resolve()},
                              recorder=recorder, timeout=mimi_run.manifest.timeouts.request)
        sessions.append(session)
        return session

    try:
        yield session_for
    finally:
        for session in sessions:
            session.close()


@pytest.fixture
def names(request: pytest.FixtureRequest, mimi_run: MimiRun):
    """``names(prefix)``: user, client and room names unique to this check in this run."""
    from .harness.actors import unique_names

    return unique_names(f"{mimi_run.seed}:{request.node.nodeid}")


def _party(name, domain, control, names, poll, introspection_url=None):
    from .harness.actors import Party

    return Party(name, domain, control, names, poll, introspection_url=introspection_url)


@pytest.fixture
def sut_party(sut, names, poll_until):
    """The SUT as a :class:`~conformance.harness.actors.Party` (its primary domain)."""
    return _party("sut", sut.primary_domain, sut.require_control(), names, poll_until)


@pytest.fixture
def ref_hub(reference_peers, recorder, names, poll_until):
    """The suite's reference hub as a Party (with traffic and state introspection)."""
    yield from _reference_party("ref-hub", reference_peers.hub, recorder, names, poll_until)


@pytest.fixture
def ref_follower(reference_peers, recorder, names, poll_until):
    """The suite's reference follower as a Party (with traffic and state introspection)."""
    yield from _reference_party("ref-follower", reference_peers.follower, recorder, names, poll_until)


def _reference_party(name, peer, recorder, names, poll):
    domain = peer.domains[0]
    control = peer.control_client(domain, observer=recorder.record_control)
    if control is None:
        from .verdicts import HarnessError

        raise HarnessError(f"the suite's {name} has no control API: {peer.control_unavailable}")
    try:
        yield _party(name, domain, control, names, poll, introspection_url=peer.control_urls[domain])
    finally:
        control.close()


@pytest.fixture
def cast(request: pytest.FixtureRequest, sut_party, names):
    """Who hosts the room and who follows it, by the SUT's role in this check (parametrise ``cast``
    indirectly with :data:`conformance.scenarios.roles.BOTH_ROLES`, or one of its entries)."""
    from .harness.actors import Cast

    role = getattr(request, "param", None)
    if role not in ROLES:
        raise pytest.UsageError(f"{request.node.nodeid}: the cast fixture needs a role parameter, got {role!r}")
    other = request.getfixturevalue("ref_follower" if role == "hub" else "ref_hub")
    hub, follower = (sut_party, other) if role == "hub" else (other, sut_party)
    return Cast(role, hub, follower, sut_party, other, names)


@pytest.fixture
def deadline(mimi_run: MimiRun):
    """A Deadline the SUT's poll timeout from now."""
    from .harness.polling import Deadline

    return Deadline.after(mimi_run.manifest.timeouts.poll)


@pytest.fixture
def poll_until(mimi_run: MimiRun, recorder):
    """``poll_until(predicate, timeout=None, interval=0.1, what=...)``: the harness poller, defaulting to
    the SUT's poll timeout, noting in the transcript what was awaited and how it ended."""
    from .harness.actors import NotThereYet
    from .harness.polling import PollTimeout
    from .harness.polling import poll_until as _poll

    def poll(predicate, timeout: float | None = None, interval: float = 0.1, *, what: str, retry_on=(),
             requirement: str | None = None):
        budget = timeout if timeout is not None else mimi_run.manifest.timeouts.poll
        recorder.note(f"waiting up to {budget:g}s for {what}")
        try:
            value = _poll(predicate, timeout=budget, interval=interval, what=what, retry_on=(NotThereYet, *retry_on))
        except PollTimeout as exc:
            recorder.note(str(exc))
            exc.requirement = requirement  # a timeout is a miss of the requirement awaited (if named)
            raise
        recorder.note(f"done waiting for {what}")
        return value

    return poll


@pytest.fixture
def rng(request: pytest.FixtureRequest, mimi_run: MimiRun) -> random.Random:
    """A random generator seeded from the run's seed and the check's ID (reproducible per check)."""
    return random.Random(f"{mimi_run.seed}:{request.node.nodeid}")

