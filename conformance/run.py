"""``mimi-conformance run``: run the checks in a pytest subprocess, then score and write the reports.

Steps:

1. **Plan** (:func:`plan_run`): load the SUT manifest (``reference`` or a file), the catalogue and the
   profiles; select the profiles (named ones, or every profile whose role the SUT declares); read the
   baseline and the signing key; pick the seed; resolve a check selection (-k, --requirement, --area,
   --last-failed) to check IDs on the collected inventory (:mod:`conformance.selection`). Any problem
   here is a usage error (exit 2) before anything runs.
1b. **Preflight** (:mod:`conformance.preflight`, not for the embedded reference SUT, skipped with
   ``--no-preflight``): each link from the manifest to a request the SUT sends a reference peer. A broken
   link is a usage error (exit 2, its one sentence) and pytest never starts: a setup mistake is never
   scored as non-conformance.
2. **Run** (:func:`run_checks`): ``python -m pytest`` on ``conformance/scenarios`` in its own process
   group, so a crash in a check cannot take the command down and the whole run has a bounded time
   (``--timeout-total``). The plugin writes each check as a JSON line to ``OUT/checks.jsonl``; this
   module tails it and prints a progress line as each area completes (the per-area totals come from
   :mod:`conformance.progress`), with a live status line on a terminal or a heartbeat line in a silence
   of :data:`HEARTBEAT_SECONDS` otherwise (:class:`ProgressDisplay`). pytest's own output goes to ``OUT/pytest.log``. When the harness stops
   the run for a setup problem (pytest exit 4), its one sentence is printed and the exit is 2, no reports.
3. **Score and write** (:func:`finish_run`): checks -> ``reports.model.CheckRecord``,
   ``reports.scoring.score_run`` over the selected profiles, ``reports.baseline.gate``,
   ``reports.write.write_reports`` (results.json, junit.xml, report.html, summary.md, badges/).

Exit codes: 0 when the gate passes (every selected profile CONFORMANT or CONFORMANT_WITH_WARNINGS
once the baseline's expected failures are waived, and no stale baseline entry), 1 otherwise
(including a run that crashed or timed out: then no reports are written), 2 for usage errors.
Whatever the exit, the last line printed is ``RESULT: PASS|FAIL|ERROR (exit N): why`` (:func:`result_line`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reports.baseline import (
    EMPTY_BASELINE,
    Baseline,
    BaselineError,
    GateReport,
    Outcome,
    format_gate_report,
    gate,
    load_baseline,
    record_gate,
)
from reports.diff import requirement_infos
from reports.model import (
    CheckRecord,
    ProfileInfo,
    ProfileVerdict,
    RequirementStatus,
    RunResults,
    Verdict,
    load_check_file,
    utc_timestamp,
)
from reports.scoring import rescore, score_run

from .progress import PROGRESS_ENV

if TYPE_CHECKING:
    from .harness.manifest import SutManifest
    from .profiles import Profile

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"
# Check IDs are pytest node IDs relative to the rootdir; pinning it to the folder holding the
# `conformance` package keeps them stable ("conformance/scenarios/test_x.py::test_y") whatever the
# caller's working directory, so baselines and diffs keep matching.
ROOT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path("mimi-conformance-results")
DEFAULT_TIMEOUT_TOTAL = 30 * 60.0
INTERRUPT_GRACE = 20.0  # after SIGINT, time for pytest's teardown to stop the SUT and peers
CHECKS_FILE = "checks.jsonl"
PYTEST_LOG = "pytest.log"
PROGRESS_FILE = ".progress.jsonl"
PREFLIGHT_DIR = "preflight"
# Everything a previous run wrote here is removed first, so a failed run never leaves old reports
# that look current.
_PREVIOUS_OUTPUTS = ("results.json", "junit.xml", "report.html", "summary.md", CHECKS_FILE, PYTEST_LOG, PROGRESS_FILE)
_PREVIOUS_DIRS = ("badges", "transcripts")

Printer = Callable[[str], None]


class RunUsageError(Exception):
    """A usage error of ``run`` (bad option, unknown profile, unreadable manifest/baseline/key): exit 2."""


@dataclasses.dataclass
class RunOptions:
    sut: str = "reference"
    profiles: Sequence[str] = ()
    out: Path = DEFAULT_OUT
    baseline: Path | None = None
    seed: int | None = None
    workers: int = 1
    sign_key: Path | None = None
    timeout_total: float = DEFAULT_TIMEOUT_TOTAL
    allow_untested: bool = False
    select: str | None = None  # a pytest -k expression: only the matching checks run
    requirements: Sequence[str] = ()  # only the checks judging these requirement IDs (or 'PREFIX-')
    areas: Sequence[str] = ()  # only the checks of these areas (module names without test_)
    last_failed: bool = False  # only the checks the previous run in `out` did not PASS (or find NOT_APPLICABLE)
    # Called with each check's record (a line of checks.jsonl) as it finishes: `run --format jsonl`.
    on_check: Callable[[dict[str, Any]], None] | None = None
    suite_pki: Path | None = None  # a suite PKI folder (pki init) instead of the manifest's or a new one
    preflight: bool = True  # check the setup first (not for the embedded reference SUT, which the suite sets up)
    alluredir: Path | None = None  # allure-pytest writes its results here (run --alluredir)

    def selection(self) -> dict[str, Any]:
        """The check selection as given, recorded in results.json (``run_options.selection``); add
        every selecting option here, keyed by its option name."""
        given = {"k": self.select, "requirement": list(self.requirements), "area": list(self.areas),
                 "last-failed": self.last_failed}
        return {option: value for option, value in given.items() if value}


@dataclasses.dataclass
class RunPlan:
    options: RunOptions
    out: Path
    seed: int
    manifest: Any  # conformance.harness.manifest.SutManifest
    catalogue: Any  # conformance.catalogue.Catalogue
    profiles: list[ProfileInfo]
    baseline: Baseline
    signing_key: Any  # Ed25519PrivateKey | None
    checks: tuple[str, ...] | None = None  # the selected check IDs (pytest node IDs); None: the whole suite


def _profile_info(profile: Any) -> ProfileInfo:
    return ProfileInfo(
        name=profile.name,
        title=profile.title,
        role=profile.role,
        drafts=tuple(profile.drafts),
        requirements=dict(profile.requirements),
    )


def profile_applies(profile: Profile, manifest: SutManifest) -> bool:
    """A profile applies to a SUT that declares its role (an ``any`` profile to every SUT) and what the
    profile requires: the extension profiles apply only to SUTs declaring that consent mode or feature."""
    return profile.applies_to(manifest.roles, manifest.consent_mode, manifest.features)


def plan_run(options: RunOptions) -> RunPlan:
    """Everything the run needs, checked before anything starts; raises :class:`RunUsageError`."""
    from .catalogue import CatalogueError, load_catalogue
    from .harness.manifest import ManifestError, load_manifest, reference_manifest
    from .profiles import ProfileError, load_profiles

    if options.workers < 1:
        raise RunUsageError(f"-n: the number of workers must be at least 1, got {options.workers}")
    if options.timeout_total <= 0:
        raise RunUsageError(f"--timeout-total: must be a positive number of seconds, got {options.timeout_total:g}")
    if options.workers > 1:
        try:
            import xdist  # noqa: F401
        except ImportError:
            raise RunUsageError("-n: running checks in parallel needs pytest-xdist (pip install pytest-xdist)") from None
    if options.alluredir is not None:
        try:
            import allure_pytest  # noqa: F401
        except ImportError:
            raise RunUsageError("--alluredir: writing allure results needs allure-pytest (pip install allure-pytest)") from None
    try:
        manifest = reference_manifest() if options.sut == "reference" else load_manifest(options.sut)
    except ManifestError as exc:
        raise RunUsageError(f"--sut: {exc}") from None
    try:
        catalogue = load_catalogue()
        all_profiles = load_profiles(catalogue)
    except (CatalogueError, ProfileError) as exc:
        raise RunUsageError(f"cannot load the catalogue or the profiles: {exc}") from None
    if options.profiles:
        unknown = [name for name in options.profiles if name not in all_profiles]
        if unknown:
            raise RunUsageError(f"--profile: unknown profile(s) {unknown}; known: {', '.join(sorted(all_profiles))}")
        selected = [all_profiles[name] for name in dict.fromkeys(options.profiles)]
        misfit = [p.name for p in selected if not profile_applies(p, manifest)]
        if misfit:
            raise RunUsageError(
                f"--profile: {misfit} need a role, consent mode or feature the SUT does not declare (SUT roles: "
                f"{list(manifest.roles)}, consent mode: {manifest.consent_mode}, features: {list(manifest.features)})"
            )
    else:
        selected = [p for p in all_profiles.values() if profile_applies(p, manifest)]
        if not selected:
            raise RunUsageError(f"no profile applies to the SUT's roles {list(manifest.roles)}")
    baseline = EMPTY_BASELINE
    if options.baseline is not None:
        try:
            baseline = load_baseline(options.baseline)
        except BaselineError as exc:
            raise RunUsageError(f"--baseline: {exc}") from None
    signing_key = None
    if options.sign_key is not None:
        from reports.signing import SigningKeyError, load_private_key

        try:
            signing_key = load_private_key(options.sign_key)
        except SigningKeyError as exc:
            raise RunUsageError(f"--sign-key: {exc}") from None
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**32)
    out = Path(options.out).resolve()
    if out.exists() and not out.is_dir():
        raise RunUsageError(f"--out: {out} exists and is not a directory")
    if options.suite_pki is not None and not Path(options.suite_pki).is_dir():
        raise RunUsageError(f"--suite-pki: {options.suite_pki} is not a folder: create it with "
                            f"mimi-conformance pki init {options.suite_pki}")
    return RunPlan(
        options=options,
        out=out,
        seed=seed,
        manifest=manifest,
        catalogue=catalogue,
        profiles=[_profile_info(p) for p in selected],
        baseline=baseline,
        signing_key=signing_key,
        checks=_selected_checks(options, out),
    )


def _selected_checks(options: RunOptions, out: Path) -> tuple[str, ...] | None:
    """The check IDs a selection picks, resolved on the collected inventory (so pytest runs exactly
    those); None without a selection. A selection matching no check is a usage error."""
    from .selection import Selection, SelectionError, select_checks

    selection = Selection(options.select, tuple(options.requirements), tuple(options.areas), options.last_failed)
    if not selection.active:
        return None
    try:
        return tuple(check.id for check in select_checks(selection, out=out))
    except SelectionError as exc:
        raise RunUsageError(str(exc)) from None


def pytest_argv(plan: RunPlan) -> list[str]:
    """The pytest command line of the run (without the interpreter)."""
    # The selected checks by ID (pytest accepts node IDs, relative to the rootdir, as arguments).
    targets = list(plan.checks) if plan.checks is not None else [str(SCENARIOS_DIR)]
    argv = [
        *targets,
        "-p", "no:cacheprovider",
        # No configuration file: a pytest.ini or pyproject.toml above the install (a vendor's repository
        # holding the venv) must not add options to the suite's run. The plugin registers its markers.
        "-c", os.devnull,
        "-p", "conformance.progress",
        f"--rootdir={ROOT_DIR}",
        "--sut", plan.options.sut if plan.options.sut == "reference" else str(Path(plan.options.sut).resolve()),
        "--seed", str(plan.seed),
        "--mimi-results", str(plan.out / CHECKS_FILE),
        "--mimi-output", str(plan.out),
        "-rN",  # the plugin's verdict summary is what matters in the log
    ]  # fmt: skip
    if plan.options.workers > 1:
        argv += ["-n", str(plan.options.workers)]
    if plan.options.select and plan.checks is None:  # a plan made without resolving the selection
        argv += ["-k", plan.options.select]
    if len(plan.profiles) == 1:
        argv += ["--mimi-profile", plan.profiles[0].name]
    if plan.options.suite_pki is not None:
        argv += ["--mimi-suite-pki", str(Path(plan.options.suite_pki).resolve())]
    if plan.options.alluredir is not None:
        argv += ["--alluredir", str(Path(plan.options.alluredir).resolve())]
    return argv


# --------------------------------------------------------------------------------------------
# Running pytest, with progress


class _LineTail:
    """The complete lines appended to a file since the last read (the file may not exist yet)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def read(self) -> list[str]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        return [line.decode("utf-8") for line in lines if line.strip()]


class AreaProgress:
    """Counts finished checks per area and prints one line per area once all its checks are done."""

    def __init__(self, printer: Printer) -> None:
        self.printer = printer
        self.totals: dict[str, int] | None = None
        self.verdicts: dict[str, Counter[str]] = {}
        self.seconds: Counter[str] = Counter()
        self.printed: set[str] = set()

    @property
    def done(self) -> int:
        return sum(sum(counts.values()) for counts in self.verdicts.values())

    @property
    def total(self) -> int | None:
        return None if self.totals is None else sum(self.totals.values())

    def collected(self, totals: dict[str, int]) -> None:
        self.totals = totals
        self._print_finished()

    def check_done(self, record: dict[str, Any]) -> None:
        area = record.get("area", "")
        self.verdicts.setdefault(area, Counter())[record["verdict"]] += 1
        self.seconds[area] += float(record.get("duration", 0.0))
        self._print_finished()

    def _line(self, area: str, total: int | None) -> str:
        counts = self.verdicts.get(area, Counter())
        done = sum(counts.values())
        shown = ", ".join(f"{v} {counts[v]}" for v in Verdict if counts[str(v)])
        of = f"{done}/{total}" if total is not None else f"{done}"
        # Wide enough for the longest area name of the run, so the lines stay in columns.
        width = max((len(name) for name in [*(self.totals or {}), *self.verdicts]), default=16)
        return f"  {area:<{width}} {of:>7} checks  {shown or '-'}  ({self.seconds[area]:.1f}s)"

    def _print_finished(self) -> None:
        if self.totals is None:
            return
        for area, total in self.totals.items():
            if area not in self.printed and sum(self.verdicts.get(area, Counter()).values()) >= total:
                self.printed.add(area)
                self.printer(self._line(area, total))

    def finish(self) -> None:
        """Areas not complete when pytest ended (a crash, a timeout): print what is known, marked."""
        totals = self.totals or {}
        for area in sorted(set(totals) | set(self.verdicts)):
            if area not in self.printed:
                self.printed.add(area)
                self.printer(self._line(area, totals.get(area)) + "  (incomplete)")


HEARTBEAT_SECONDS = 15.0


class ProgressDisplay:
    """The run's progress while pytest works: the per-area lines and, between them, either a live status
    line redrawn in place (a terminal) or a plain heartbeat line at most every ``heartbeat`` seconds
    without other output (a pipe, a CI log), so a slow SUT never looks like a hung run."""

    def __init__(
        self,
        printer: Printer,
        *,
        heartbeat: float = HEARTBEAT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        live_console: Any = None,  # a rich Console on a terminal: a live line instead of heartbeats
    ) -> None:
        self.printer = printer
        self.heartbeat = heartbeat
        self.clock = clock
        self.areas = AreaProgress(self.line)
        self.started = self.last_output = clock()
        self._live = None
        if live_console is not None:
            from rich.live import Live
            from rich.text import Text

            self._live = Live(Text(self.status()), console=live_console, transient=True, refresh_per_second=4)
            self._live.start()

    def status(self) -> str:
        elapsed = self.clock() - self.started
        total = self.areas.total
        if total is None:
            return f"  ... waiting for the SUT and the checks to start, {elapsed:.0f} s"
        return f"  ... {self.areas.done}/{total} checks, {elapsed:.0f} s"

    def line(self, text: str) -> None:
        if self._live is not None:
            from rich.text import Text

            self._live.console.print(Text(text), soft_wrap=True)  # printed above the live line
        else:
            self.printer(text)
        self.last_output = self.clock()

    def tick(self) -> None:
        if self._live is not None:
            from rich.text import Text

            self._live.update(Text(self.status()))
        elif self.clock() - self.last_output >= self.heartbeat:
            self.line(self.status())

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.areas.finish()


def _terminal_console(printer: Printer) -> Any:
    """A rich Console for the live line when the output is the default ``print`` to a terminal, else None
    (pipes, CI logs and tests get plain lines, no control codes)."""
    if printer is not print:
        return None
    from rich.console import Console

    console = Console()
    return console if console.is_terminal and not console.is_dumb_terminal else None


@dataclasses.dataclass
class PytestOutcome:
    returncode: int | None  # None: killed at the time limit
    elapsed: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGINT first (pytest tears down: the SUT and the suite's peers, in their own process groups,
    are stopped by their fixtures), then SIGKILL to the whole group if it does not end in time."""
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=INTERRUPT_GRACE)
        return
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _reap_leftovers(out: Path, grace: float = 5.0) -> None:
    """Stop reference peers the stopped run spawned in sessions of their own (a reference SUT, the
    suite's peers), found by a command line naming reference_peer and the run's output folder:
    pytest's own teardown normally stops them, but not when it was interrupted at a bad moment or
    killed after INTERRUPT_GRACE."""
    import psutil  # here, not at the top: only an interrupted run needs it

    marker = str(out)

    def leftovers() -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter(["cmdline"]):
            argv = process.info["cmdline"] or []  # None or [] when access is denied or it is a zombie
            if (
                process.pid != os.getpid()
                and any(marker in arg for arg in argv)
                and any("reference_peer" in arg for arg in argv)
            ):
                found.append(process)
        return found

    for sig in (signal.SIGTERM, signal.SIGKILL):
        processes = leftovers()
        for process in processes:
            try:
                process.send_signal(sig)
            except psutil.NoSuchProcess:  # it ended while we looked
                pass
        _, alive = psutil.wait_procs(processes, timeout=grace)
        if not alive:
            return


def run_checks(plan: RunPlan, printer: Printer) -> PytestOutcome:
    plan.out.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)  # the mimi-conformance plugin loads by its entry point
    env[PROGRESS_ENV] = str(plan.out / PROGRESS_FILE)
    env["PYTHONUNBUFFERED"] = "1"
    argv = [sys.executable, "-m", "pytest", *pytest_argv(plan)]
    display = ProgressDisplay(printer, live_console=_terminal_console(printer))
    checks_tail = _LineTail(plan.out / CHECKS_FILE)
    progress_tail = _LineTail(plan.out / PROGRESS_FILE)
    started = time.monotonic()
    try:
        with open(plan.out / PYTEST_LOG, "wb") as log:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                argv, cwd=ROOT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            returncode: int | None = None
            try:
                while True:
                    try:
                        returncode = process.wait(timeout=0.2)
                    except subprocess.TimeoutExpired:
                        returncode = None
                    _feed(display.areas, progress_tail, checks_tail, plan.options.on_check)
                    if returncode is not None:
                        break
                    display.tick()
                    if time.monotonic() - started > plan.options.timeout_total:
                        _stop_group(process)
                        _reap_leftovers(plan.out)
                        break
            except BaseException:  # Ctrl-C or a crash here: never leave the pytest process group behind
                _stop_group(process)
                _reap_leftovers(plan.out)
                raise
        _feed(display.areas, progress_tail, checks_tail, plan.options.on_check)
    finally:
        display.close()
    return PytestOutcome(returncode, time.monotonic() - started)


def _feed(progress: AreaProgress, progress_tail: _LineTail, checks_tail: _LineTail,
          on_check: Callable[[dict[str, Any]], None] | None = None) -> None:
    for line in progress_tail.read():
        data = json.loads(line)
        if data.get("kind") == "collected":
            progress.collected(data["areas"])
    for line in checks_tail.read():
        data = json.loads(line)
        if data.get("kind") == "check":
            progress.check_done(data)
            if on_check is not None:
                on_check(data)


# --------------------------------------------------------------------------------------------
# Scoring and reports


def read_checks_file(path: Path) -> tuple[dict[str, Any] | None, list[CheckRecord]]:
    """The plugin's JSON-lines file: its ``run`` header (None if absent) and its checks."""
    if not path.exists():
        return None, []
    return load_check_file(path)


def _suite_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mimi-conformance")
    except PackageNotFoundError:
        return "unknown"


def _json_safe(document: Any) -> Any:
    # A YAML manifest may hold values JSON has no type for (dates); results.json records them as text.
    return json.loads(json.dumps(document, default=str))


def build_results(plan: RunPlan, checks: Sequence[CheckRecord], started_at: str, ended_at: str) -> RunResults:
    return score_run(
        suite_version=_suite_version(),
        draft_revisions=sorted(plan.catalogue.documents),
        sut_manifest=_json_safe(dict(plan.manifest.document)),
        seed=plan.seed,
        started_at=started_at,
        ended_at=ended_at,
        checks=checks,
        profiles=plan.profiles,
        requirements=requirement_infos(list(plan.catalogue)),
    )


def only_untested(results: RunResults, report: GateReport) -> bool:
    """Whether the gate failed only because requirements have no check yet (``--allow-untested``).

    True when nothing fails the run item by item (no unexpected failure, no stale entry) and every
    failing profile is INCOMPLETE solely through UNTESTED requirements (with expected failures waived,
    as the gate scores): no HARNESS_ERROR, no NOT_APPLICABLE at MUST/SHOULD, no FAIL.
    """
    if any(item.outcome.fails_run for item in report.items):
        return False
    waived_ids = {item.check_id for item in report.items if item.outcome is Outcome.EXPECTED_FAILURE}
    waived = [c.waived() if c.check_id in waived_ids else c for c in results.checks]
    for profile in rescore(results, waived):
        if profile.verdict.passes:
            continue
        if profile.verdict is not ProfileVerdict.INCOMPLETE:
            return False
        for outcome in profile.requirements:
            blocking = outcome.status in (
                RequirementStatus.HARNESS_ERROR,
                RequirementStatus.FAIL,
                RequirementStatus.NOT_REACHED,
            ) or (outcome.status is RequirementStatus.NOT_APPLICABLE and outcome.level != "MAY")
            if blocking:
                return False
    return True


def render_table(table: Any) -> list[str]:
    """A rich Table as plain text lines: no colour or control codes (CI logs, pipes), and no width limit
    so long area and profile names never wrap or squeeze the columns."""
    import io

    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, force_terminal=False, no_color=True, highlight=False, width=10_000).print(table)
    return [line.rstrip() for line in buffer.getvalue().splitlines()]


def _plain_table(*headers: str, right: Sequence[str] = ()) -> Any:
    from rich.box import Box
    from rich.table import Table

    # rich's SIMPLE_HEAD drawn in ASCII: a CI log in any encoding shows the rule under the header.
    ascii_head = Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)
    table = Table(box=ascii_head, show_edge=False, pad_edge=False, padding=(0, 1))
    for header in headers:
        table.add_column(header, justify="right" if header in right else "left", no_wrap=True)
    return table


def area_table(checks: Sequence[CheckRecord]) -> list[str]:
    per_area: dict[str, Counter[str]] = {}
    for check in checks:
        per_area.setdefault(check.area, Counter())[str(check.verdict)] += 1
    verdicts = [str(v) for v in Verdict]
    table = _plain_table("area", "checks", *verdicts, right=("checks", *verdicts))
    total: Counter[str] = Counter()
    for area in sorted(per_area):
        counts = per_area[area]
        total.update(counts)
        table.add_row(area, str(sum(counts.values())), *(str(counts[v]) for v in verdicts))
    table.add_row("total", str(sum(total.values())), *(str(total[v]) for v in verdicts))
    return ["  " + line for line in render_table(table)]


def profile_lines(results: RunResults, gated: Mapping[str, ProfileVerdict] | None = None) -> list[str]:
    """One table row per profile: its verdict as scored and, when a baseline changed any, its verdict
    with the baseline's expected failures waived (what the gate decides on)."""
    gated = gated or {}
    waived = any(gated.get(p.name, p.verdict) != p.verdict for p in results.profiles)
    numbers = ("judged", "pass", "fail", "warn", "untested", "not reached")
    headers = ("profile", "verdict", *(("with baseline",) if waived else ()), *numbers)
    table = _plain_table(*headers, right=numbers)
    for profile in results.profiles:
        counts = profile.counts
        not_reached = counts.get("requirements_not_reached", 0)
        judged = counts["requirements"] - counts["requirements_untested"] - not_reached
        table.add_row(
            profile.name,
            str(profile.verdict),
            *((str(gated.get(profile.name, profile.verdict)),) if waived else ()),
            f"{judged}/{counts['requirements']}",
            str(counts["requirements_pass"]),
            str(counts["requirements_fail"]),
            str(counts["requirements_warn"]),
            str(counts["requirements_untested"]),
            str(not_reached),
        )
    return ["  " + line for line in render_table(table)]


# Parts of a check message that differ between checks failing for the same reason: random names,
# IDs, ports, addresses, paths, timings. Order matters: the specific forms before the general ones.
_VOLATILE_PARTS = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    (re.compile(r"(?:/[\w.@+-]+){2,}/?"), "<path>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"), "<ip>"),
    (re.compile(r"(?<=[\w\]>]):\d{2,5}\b"), ":<port>"),
    (re.compile(r"\b(?:0x)?(?=[0-9a-f]*\d)[0-9a-f]{8,}\b", re.I), "<hex>"),
    (re.compile(r"\b([A-Za-z]+[-_.])(?=[A-Za-z0-9]*\d)[A-Za-z0-9]{4,}\b"), r"\1<id>"),
    (re.compile(r"\b\d+\.\d+|\b\d{4,}"), "<n>"),  # timings, counters; not a 3-digit HTTP status
)
MAX_FAILURE_GROUPS = 10
_MESSAGE_WIDTH = 160


def normalise_message(message: str) -> str:
    """The cause of a check's outcome without what varies between checks with the same cause: its first
    line, with IDs, ports, addresses, paths, random names and hex replaced by placeholders."""
    first = message.strip().splitlines()[0] if message.strip() else "(no message)"
    for pattern, placeholder in _VOLATILE_PARTS:
        first = pattern.sub(placeholder, first)
    return first if len(first) <= _MESSAGE_WIDTH else first[: _MESSAGE_WIDTH - 3] + "..."


def failure_groups(checks: Sequence[CheckRecord]) -> list[tuple[Verdict, str, list[CheckRecord]]]:
    """The non-passing checks grouped by verdict and normalised message: failures first, then by size.
    NOT_APPLICABLE checks are left out: the missing-operation line and the profiles account for them."""
    groups: dict[tuple[Verdict, str], list[CheckRecord]] = {}
    for check in checks:
        if check.verdict in (Verdict.PASS, Verdict.NOT_APPLICABLE):
            continue
        groups.setdefault((check.verdict, normalise_message(check.message)), []).append(check)
    ordered = sorted(groups.items(), key=lambda item: (not item[0][0].is_failure, -len(item[1]), item[0][1]))
    return [(verdict, message, members) for (verdict, message), members in ordered]


def failure_group_lines(checks: Sequence[CheckRecord], more_in: str = "summary.md",
                        limit: int = MAX_FAILURE_GROUPS) -> list[str]:
    """ "62 checks FAIL: <cause> (e.g. <check>)" per cause, at most ``limit`` of them."""
    groups = failure_groups(checks)
    if not groups:
        return []
    count = sum(len(members) for _, _, members in groups)
    lines = [f"non-passing checks by cause ({count} in {len(groups)} group{'' if len(groups) == 1 else 's'}):"]
    for verdict, message, members in groups[:limit]:
        many = len(members)
        lines.append(f"  {many} check{'' if many == 1 else 's'} {verdict}: {message} (e.g. {members[0].check_id})")
    if len(groups) > limit:
        hidden = sum(len(members) for _, _, members in groups[limit:])
        lines.append(f"  ... and {len(groups) - limit} more causes, {hidden} checks (see {more_in})")
    return lines


def _counted(verdicts: Sequence[ProfileVerdict]) -> str:
    """ "3 profiles CONFORMANT" or "1 profile NOT_CONFORMANT, 2 profiles INCOMPLETE"."""
    counts = Counter(verdicts)
    return ", ".join(
        f"{n} profile{'' if n == 1 else 's'} {verdict}" for verdict in ProfileVerdict if (n := counts[verdict])
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def result_line(code: int, text: str, *, error: bool = False, note: str = "") -> str:
    """The run's last line, which states its exit code: ``RESULT: PASS (exit 0): ...``, ``RESULT: FAIL
    (exit 1): ...``, or ``RESULT: ERROR (exit N): ...`` when the run could not judge the SUT."""
    status = "ERROR" if error else ("PASS" if code == 0 else "FAIL")
    return f"RESULT: {status} (exit {code}{', ' + note if note else ''}): {text}"


def verdict_result_line(report: GateReport, allowed_untested: bool) -> tuple[int, str]:
    """The exit code and final line of a run that was scored."""
    verdicts = list(report.profile_verdicts.values())
    if report.passed:
        return 0, result_line(0, _counted(verdicts) or "no profile selected")
    if allowed_untested:
        failing = [v for v in verdicts if not v.passes]
        return 0, result_line(
            0,
            f"every check passed; {_counted(failing)} only for untested requirements: not a conformance claim",
            note="--allow-untested",
        )
    reasons = []
    if unexpected := len(report.of(Outcome.UNEXPECTED_FAILURE)):
        reasons.append(_plural(unexpected, "unexpected failure"))
    if stale := len(report.of(Outcome.STALE)):
        reasons.append(f"{stale} stale baseline entr{'y' if stale == 1 else 'ies'}")
    reasons.append(_counted([v for v in verdicts if not v.passes]))
    return 1, result_line(1, ", ".join(r for r in reasons if r))


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in text[-lines:])


def _run_pki(options: RunOptions, manifest: Any, out: Path) -> Path | None:
    """The suite PKI folder the run will use, so that preflight checks the same CA: the option's, the
    manifest's, else the run's own (OUT/suite-pki, made here if absent; the run reuses it)."""
    chosen = options.suite_pki or manifest.suite_pki
    if chosen is not None:
        return Path(chosen)
    from .harness.suite_pki import SuitePki

    return SuitePki.init(out / "suite-pki").directory


def setup_error_sentence(log: Path) -> str | None:
    """The harness's one sentence when it stopped the run for a setup problem (pytest exit 4), else None.

    The plugin stops with ``pytest.exit(sentence)``, which pytest logs as ``Exit: <sentence>``, or with a
    ``pytest.UsageError``, logged as ``ERROR: <sentence>``."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for marker in ("Exit: ", "ERROR: "):
        for line in lines:
            if line.startswith(marker) and line[len(marker):].strip():
                return line[len(marker):].strip()
    return None


def _clear_previous_outputs(out: Path) -> None:
    import shutil

    for name in _PREVIOUS_OUTPUTS:
        (out / name).unlink(missing_ok=True)
    for name in _PREVIOUS_DIRS:
        if (out / name).is_dir():
            shutil.rmtree(out / name)


# What the run does first for each connector type, while nothing else is printed.
_STARTING = {
    "reference": "starting the embedded reference SUT",
    "url": "connecting to it",
    "command": "starting its command",
    "image": "starting its container image",
}


def execute(options: RunOptions, printer: Printer = print, error: Printer | None = None) -> int:
    """The whole ``run`` command; returns the exit code (0, 1 or 2).

    Every path ends with one ``RESULT:`` line on the output stating that exit code (:func:`result_line`),
    so the last line of a CI log says what happened; the error itself goes to ``error`` (stderr)."""
    error = error or (lambda text: print(text, file=sys.stderr))

    def stop(code: int, sentence: str, detail: str = "") -> int:
        error(f"mimi-conformance run: {sentence}{detail}")
        printer(result_line(code, sentence, error=True))
        return code

    try:
        plan = plan_run(options)
    except RunUsageError as exc:
        return stop(2, str(exc))
    manifest = plan.manifest
    printer(f"SUT: {manifest.name} (roles {', '.join(manifest.roles)}; connector {manifest.connector_type})")
    printer(f"profiles: {', '.join(p.name for p in plan.profiles)}")
    printer(f"seed {plan.seed} (reproduce with --seed {plan.seed}); output {plan.out}")
    plan.out.mkdir(parents=True, exist_ok=True)
    _clear_previous_outputs(plan.out)
    if options.preflight and manifest.connector_type != "reference":
        from .harness.suite_pki import SuitePkiError
        from .preflight import preflight

        printer("preflight:")
        try:
            suite_pki = _run_pki(options, manifest, plan.out)
        except SuitePkiError as exc:
            return stop(2, str(exc))
        report = preflight(manifest, suite_pki=suite_pki, out=plan.out / PREFLIGHT_DIR,
                           printer=lambda line: printer("  " + line))
        if not report.ok:
            return stop(2, report.sentence)
    printer(f"waiting for the SUT ({_STARTING.get(manifest.connector_type, 'starting it')}) and the first checks ...")
    started_at = utc_timestamp(dt.datetime.now(dt.UTC))
    try:
        outcome = run_checks(plan, printer)
    except KeyboardInterrupt:
        printer(result_line(1, "interrupted; no reports were written", error=True))
        raise
    ended_at = utc_timestamp(dt.datetime.now(dt.UTC))
    log = plan.out / PYTEST_LOG
    if outcome.timed_out:
        return stop(
            1,
            f"the run timed out: it exceeded --timeout-total {options.timeout_total:g}s and was stopped; "
            "no reports were written",
            f" (finished checks are in {plan.out / CHECKS_FILE}, pytest's output in {log}):\n" + _tail(log),
        )
    # pytest: 0 all passed, 1 some checks failed, 5 nothing collected: a run that completed.
    # 4 is a usage error (bad manifest, SUT configuration); 2 (interrupted, e.g. a check that does
    # not collect) and 3 (internal error) mean the suite itself broke.
    if outcome.returncode == 4:
        sentence = setup_error_sentence(log)
        if sentence is not None:
            return stop(2, sentence)
        return stop(2, f"usage error reported by the harness (see {log})", ":\n" + _tail(log))
    if outcome.returncode not in (0, 1, 5):
        return stop(
            1,
            f"the suite itself failed (pytest exit {outcome.returncode}); no reports were written",
            f". pytest's output is in {log}:\n" + _tail(log),
        )
    try:
        header, checks = read_checks_file(plan.out / CHECKS_FILE)
    except ValueError as exc:
        return stop(1, f"cannot read the check results: {exc}")
    if header is not None and header.get("seed") != plan.seed:
        return stop(1, f"{CHECKS_FILE} is not from this run (seed {header.get('seed')} != {plan.seed})")
    results = build_results(plan, checks, started_at, ended_at)
    report = gate(results, plan.baseline)
    # results.json (and its signature) records the gate, the baseline and the selection it was run with.
    results = record_gate(results, report, plan.baseline,
                          baseline_file=str(options.baseline) if options.baseline is not None else None,
                          selection=options.selection(), allow_untested=options.allow_untested)
    from reports.write import write_reports

    written = write_reports(results, plan.out, signing_key=plan.signing_key, gate=report)
    printer("")
    printer(f"{len(checks)} check{'' if len(checks) == 1 else 's'} in {outcome.elapsed:.1f}s")
    for line in area_table(checks):
        printer(line)
    from .verdicts import missing_operation_line

    lacking = missing_operation_line(check.missing_operation for check in checks)
    if lacking:
        printer(lacking)
    for line in failure_group_lines(checks, more_in=str(written["markdown"])):
        printer(line)
    printer("profile verdicts:")
    for line in profile_lines(results, report.profile_verdicts):
        printer(line)
    for line in format_gate_report(report, itemise_unexpected=False).splitlines():
        printer(line)
    printer("reports: " + ", ".join(str(written[k]) for k in ("results", "junit", "html", "markdown")))
    allowed_untested = options.allow_untested and not report.passed and only_untested(results, report)
    if allowed_untested:
        printer(
            "--allow-untested: exit 0 although the profiles are INCOMPLETE: requirements without a check are "
            "untested, every check that ran passed the gate. This is not a conformance claim."
        )
    code, line = verdict_result_line(report, allowed_untested)
    printer(line)
    return code
