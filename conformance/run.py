"""``mimi-conformance run``: run the checks in a pytest subprocess, then score and write the reports.

Steps:

1. **Plan** (:func:`plan_run`): load the SUT manifest (``reference`` or a file), the catalogue and the
   profiles; select the profiles (named ones, or every profile whose role the SUT declares); read the
   baseline and the signing key; pick the seed. Any problem here is a usage error (exit 2) before
   anything runs.
1b. **Preflight** (:mod:`conformance.preflight`, not for the embedded reference SUT, skipped with
   ``--no-preflight``): each link from the manifest to a request the SUT sends a reference peer. A broken
   link is a usage error (exit 2, its one sentence) and pytest never starts: a setup mistake is never
   scored as non-conformance.
2. **Run** (:func:`run_checks`): ``python -m pytest`` on ``conformance/scenarios`` in its own process
   group, so a crash in a check cannot take the command down and the whole run has a bounded time
   (``--timeout-total``). The plugin writes each check as a JSON line to ``OUT/checks.jsonl``; this
   module tails it and prints a progress line as each area completes (the per-area totals come from
   :mod:`conformance.progress`). pytest's own output goes to ``OUT/pytest.log``. When the harness stops
   the run for a setup problem (pytest exit 4), its one sentence is printed and the exit is 2, no reports.
3. **Score and write** (:func:`finish_run`): checks -> ``reports.model.CheckRecord``,
   ``reports.scoring.score_run`` over the selected profiles, ``reports.baseline.gate``,
   ``reports.write.write_reports`` (results.json, junit.xml, report.html, summary.md, badges/).

Exit codes: 0 when the gate passes (every selected profile CONFORMANT or CONFORMANT_WITH_WARNINGS
once the baseline's expected failures are waived, and no stale baseline entry), 1 otherwise
(including a run that crashed or timed out: then no reports are written), 2 for usage errors.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
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
    suite_pki: Path | None = None  # a suite PKI folder (pki init) instead of the manifest's or a new one
    preflight: bool = True  # check the setup first (not for the embedded reference SUT, which the suite sets up)


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
    )


def pytest_argv(plan: RunPlan) -> list[str]:
    """The pytest command line of the run (without the interpreter)."""
    argv = [
        str(SCENARIOS_DIR),
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
    if plan.options.select:
        argv += ["-k", plan.options.select]
    if len(plan.profiles) == 1:
        argv += ["--mimi-profile", plan.profiles[0].name]
    if plan.options.suite_pki is not None:
        argv += ["--mimi-suite-pki", str(Path(plan.options.suite_pki).resolve())]
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
        return f"  {area:<16} {of:>7} checks  {shown or '-'}  ({self.seconds[area]:.1f}s)"

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
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: rely on pytest's teardown alone
        return
    marker = str(out).encode()

    def leftovers() -> list[int]:
        found = []
        for cmdline in proc.glob("[0-9]*/cmdline"):
            try:
                argv = cmdline.read_bytes().split(b"\0")
            except OSError:  # the process ended while we looked
                continue
            pid = int(cmdline.parent.name)
            if pid != os.getpid() and any(marker in arg for arg in argv) and any(b"reference_peer" in arg for arg in argv):
                found.append(pid)
        return found

    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = leftovers()
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            time.sleep(0.1)
            pids = leftovers()
        if not pids:
            return


def run_checks(plan: RunPlan, printer: Printer) -> PytestOutcome:
    plan.out.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)  # the mimi-conformance plugin loads by its entry point
    env[PROGRESS_ENV] = str(plan.out / PROGRESS_FILE)
    env["PYTHONUNBUFFERED"] = "1"
    argv = [sys.executable, "-m", "pytest", *pytest_argv(plan)]
    progress = AreaProgress(printer)
    checks_tail = _LineTail(plan.out / CHECKS_FILE)
    progress_tail = _LineTail(plan.out / PROGRESS_FILE)
    started = time.monotonic()
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
                _feed(progress, progress_tail, checks_tail)
                if returncode is not None:
                    break
                if time.monotonic() - started > plan.options.timeout_total:
                    _stop_group(process)
                    _reap_leftovers(plan.out)
                    break
        except BaseException:  # Ctrl-C or a crash here: never leave the pytest process group behind
            _stop_group(process)
            _reap_leftovers(plan.out)
            raise
    _feed(progress, progress_tail, checks_tail)
    progress.finish()
    return PytestOutcome(returncode, time.monotonic() - started)


def _feed(progress: AreaProgress, progress_tail: _LineTail, checks_tail: _LineTail) -> None:
    for line in progress_tail.read():
        data = json.loads(line)
        if data.get("kind") == "collected":
            progress.collected(data["areas"])
    for line in checks_tail.read():
        data = json.loads(line)
        if data.get("kind") == "check":
            progress.check_done(data)


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


def area_table(checks: Sequence[CheckRecord]) -> list[str]:
    per_area: dict[str, Counter[str]] = {}
    for check in checks:
        per_area.setdefault(check.area, Counter())[str(check.verdict)] += 1
    header = f"  {'area':<16} {'checks':>6}  " + " ".join(f"{v.name:>14}" for v in Verdict)
    lines = [header]
    total: Counter[str] = Counter()
    for area in sorted(per_area):
        counts = per_area[area]
        total.update(counts)
        lines.append(f"  {area:<16} {sum(counts.values()):>6}  " + " ".join(f"{counts[str(v)]:>14}" for v in Verdict))
    lines.append(f"  {'total':<16} {sum(total.values()):>6}  " + " ".join(f"{total[str(v)]:>14}" for v in Verdict))
    return lines


def profile_lines(results: RunResults) -> list[str]:
    lines = []
    width = max((len(p.name) for p in results.profiles), default=24)
    for profile in results.profiles:
        counts = profile.counts
        not_reached = counts.get("requirements_not_reached", 0)
        judged = counts["requirements"] - counts["requirements_untested"] - not_reached
        lines.append(
            f"  {profile.name:<{width}} {profile.verdict:<26} {judged}/{counts['requirements']} requirements judged "
            f"(pass {counts['requirements_pass']}, fail {counts['requirements_fail']}, "
            f"warn {counts['requirements_warn']}, untested {counts['requirements_untested']}"
            + (f", not reached {not_reached})" if not_reached else ")")
        )
    return lines


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


def execute(options: RunOptions, printer: Printer = print, error: Printer | None = None) -> int:
    """The whole ``run`` command; returns the exit code (0, 1 or 2)."""
    error = error or (lambda text: print(text, file=sys.stderr))
    try:
        plan = plan_run(options)
    except RunUsageError as exc:
        error(f"mimi-conformance run: {exc}")
        return 2
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
            error(f"mimi-conformance run: {exc}")
            return 2
        report = preflight(manifest, suite_pki=suite_pki, out=plan.out / PREFLIGHT_DIR,
                           printer=lambda line: printer("  " + line))
        if not report.ok:
            error(f"mimi-conformance run: {report.sentence}")
            return 2
    started_at = utc_timestamp(dt.datetime.now(dt.UTC))
    outcome = run_checks(plan, printer)
    ended_at = utc_timestamp(dt.datetime.now(dt.UTC))
    log = plan.out / PYTEST_LOG
    if outcome.timed_out:
        error(
            f"mimi-conformance run: the run exceeded --timeout-total {options.timeout_total:g}s and was stopped; "
            f"no reports were written (finished checks are in {plan.out / CHECKS_FILE}, pytest's output in {log}):\n"
            + _tail(log)
        )
        return 1
    # pytest: 0 all passed, 1 some checks failed, 5 nothing collected: a run that completed.
    # 4 is a usage error (bad manifest, SUT configuration); 2 (interrupted, e.g. a check that does
    # not collect) and 3 (internal error) mean the suite itself broke.
    if outcome.returncode == 4:
        sentence = setup_error_sentence(log)
        if sentence is not None:
            error(f"mimi-conformance run: {sentence}")
        else:
            error(f"mimi-conformance run: usage error reported by the harness (see {log}):\n" + _tail(log))
        return 2
    if outcome.returncode not in (0, 1, 5):
        error(
            f"mimi-conformance run: the suite itself failed (pytest exit {outcome.returncode}); no reports were "
            f"written. pytest's output is in {log}:\n" + _tail(log)
        )
        return 1
    try:
        header, checks = read_checks_file(plan.out / CHECKS_FILE)
    except ValueError as exc:
        error(f"mimi-conformance run: cannot read the check results: {exc}")
        return 1
    if header is not None and header.get("seed") != plan.seed:
        error(f"mimi-conformance run: {CHECKS_FILE} is not from this run (seed {header.get('seed')} != {plan.seed})")
        return 1
    results = build_results(plan, checks, started_at, ended_at)
    report = gate(results, plan.baseline)
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
    printer("profile verdicts:")
    for line in profile_lines(results):
        printer(line)
    for line in format_gate_report(report).splitlines():
        printer(line)
    printer("reports: " + ", ".join(str(written[k]) for k in ("results", "junit", "html", "markdown")))
    if report.passed:
        return 0
    if options.allow_untested and only_untested(results, report):
        printer(
            "--allow-untested: exit 0 although the profiles are INCOMPLETE: requirements without a check are "
            "untested, every check that ran passed the gate. This is not a conformance claim."
        )
        return 0
    return 1
