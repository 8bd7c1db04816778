"""``mimi-conformance selftest``: prove the verdicts with the reference peer's named faults.

The suite runs against the embedded reference SUT once clean and once per fault
(``reference_peer.faults``), each run in its own pytest process with its own SUT and peers. For each
fault the *kill matrix* says:

* **killed**: a check reported the miss *for one of the fault's requirements that it judges* (the
  checks that did are its killers): that requirement's own outcome in the check is FAIL, or WARN
  where it is scored SHOULD or MAY (a broken SHOULD is a WARN, its correct outcome). A check whose
  overall verdict is FAIL because of another of its requirements does not kill the fault;
* **collateral**: checks that reported a miss (FAIL or WARN) of a requirement the fault does not name;
* harness errors, which never count as kills.

A check the SUT *blocked* by breaking a transport rule it does not judge (a wrong From, a certificate
no CA vouches for: ``conformance.harness.attribution``) reports that rule FAIL among its outcomes,
its own requirements NOT_REACHED; it belongs to the fault when the fault names that rule, and is
collateral otherwise.

Figures: kill rate (killed faults / faults), precision (requirement misses under faults that are of
the fault's own requirements, blocked checks included / all requirement misses under faults: each
(check, requirement) outcome FAIL or WARN counts once), clean-run failures, checks no fault kills,
and wall time.

Check lines without ``outcomes`` (written before per-requirement outcomes) are read the old way: the
check's verdict is its one miss, charged to the requirements it names (or to its ``blocked_by``).
Goals (exit 0 only when all are met): kill rate 100%, precision >= 95%, no clean-run failure or
harness error, every check killed by at least one fault.

Scope of each fault's run (``--scope``): ``suite`` (default: every check, so collateral anywhere
counts), ``module`` (the modules holding the checks that judge the fault's requirements: collateral in
the fault's own neighbourhood, about a fifth of the cost; what CI runs), ``targeted`` (only the checks
that judge its requirements: a quick kill test, no precision figure).

The *variant matrix* (``selftest --variants``, :func:`variant_matrix`) proves the other side,
specificity: with an allowed variant of the reference peer on (``reference_peer.faults.VARIANTS``, a
behaviour the draft permits), no check may report a *false verdict*: a requirement outcome FAIL, WARN
or HARNESS_ERROR, AMBIGUOUS naming an AMB- ID that no variant of the run cites in its ``permitted_by``,
NOT_APPLICABLE because "nothing was observed" (the observation guard), or a check without a result.
Variants are independent behaviours, so all of them run together in ONE suite run first; without a
false verdict there, every variant is specific. Otherwise :func:`attribute` bisects: the variant set
is split in halves, each half rerun restricted to the modules of the checks with false verdicts (with
a run without any variant beside the first split, so that a false verdict the reference default also
gives is never charged to a variant), until single variants remain. False verdicts that neither half
reproduces are confirmed by rerunning that set: reproduced, they come from its variants only together
and each of them is charged; not reproduced, they are reported as unconfirmed (a goal missed, no variant
charged).
Figure: specificity = variants without a false verdict / variants (goal 100%).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from .run import ROOT_DIR, SCENARIOS_DIR

GOAL_KILL_RATE = 1.0
GOAL_PRECISION = 0.95
SCOPES = ("suite", "module", "targeted")
MISSED = ("FAIL", "WARN")  # a check that saw its requirement broken
UNOBSERVED = "nothing was observed"  # conformance.verdicts: the observation guard's reason


@dataclasses.dataclass(frozen=True)
class CheckInfo:
    id: str
    requirements: tuple[str, ...]
    role: str
    area: str


@dataclasses.dataclass
class SuiteRun:
    fault: str | None
    verdicts: dict[str, str]  # check ID -> verdict
    messages: dict[str, str]
    seconds: float
    returncode: int | None
    out: Path
    # check ID -> the transport requirements that blocked it (conformance.harness.attribution)
    blocked: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    # check ID -> requirement -> its own outcome in the check; absent for lines without ``outcomes``
    outcomes: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    # "check ID: requirement" the check ran yet never observed (the observation guard's NOT_APPLICABLE)
    unobserved: list[str] = dataclasses.field(default_factory=list)
    # check ID -> requirement -> its outcome record (outcome, message, ambiguity); absent as ``outcomes``
    records: dict[str, dict[str, dict[str, Any]]] = dataclasses.field(default_factory=dict)
    variants: tuple[str, ...] = ()

    def with_verdict(self, *verdicts: str) -> list[str]:
        return sorted(c for c, v in self.verdicts.items() if v in verdicts)

    def missed(self, check_id: str, own: Iterable[str]) -> set[str]:
        """The requirements ``check_id`` reported missed (outcome FAIL or WARN). For a line without
        outcomes: none when its verdict is no miss, else those the old way charged it to (its
        ``blocked_by``, else ``own``, the requirements it names)."""
        if check_id in self.outcomes:
            return {req for req, outcome in self.outcomes[check_id].items() if outcome in MISSED}
        if self.verdicts.get(check_id) not in MISSED:
            return set()
        return set(self.blocked.get(check_id) or own) or {"(unknown requirement)"}


@dataclasses.dataclass
class MatrixRow:
    fault: str
    area: str
    requirements: tuple[str, ...]
    killers: list[str]
    collateral: list[str]
    harness_errors: list[str]
    judged_by: list[str]  # checks that judge one of the fault's requirements
    seconds: float
    # Checks the SUT blocked by breaking one of the fault's own transport rules: they reported that
    # rule (so they count for precision), but they do not show that their own rule can fail.
    blocked: list[str] = dataclasses.field(default_factory=list)
    # Requirement misses (check, requirement) under this fault: of the fault's requirements, and of others
    own_misses: int = 0
    collateral_misses: list[str] = dataclasses.field(default_factory=list)  # "check ID: requirement"

    @property
    def killed(self) -> bool:
        return bool(self.killers)


@dataclasses.dataclass
class Matrix:
    clean: SuiteRun
    rows: list[MatrixRow]
    checks: list[CheckInfo]
    scope: str
    seconds: float
    every_fault: bool = True  # False for a --fault selection: "every check killed" is then not judged

    @property
    def targeted(self) -> bool:
        return self.scope == "targeted"

    @property
    def kill_rate(self) -> float:
        return sum(r.killed for r in self.rows) / len(self.rows) if self.rows else 0.0

    @property
    def precision(self) -> float | None:
        own = sum(r.own_misses for r in self.rows)
        total = own + sum(len(r.collateral_misses) for r in self.rows)
        return own / total if total else None

    @property
    def clean_failures(self) -> list[str]:
        """Checks the clean run failed or warned, and requirements a check of it never observed: against
        the reference SUT every check that runs judges everything it names."""
        return self.clean.with_verdict("FAIL", "WARN", "HARNESS_ERROR") + [
            f"{item} (nothing was observed)" for item in self.clean.unobserved]

    @property
    def unkilled_checks(self) -> list[str]:
        killed = {c for r in self.rows for c in r.killers}
        applicable = {c for c, v in self.clean.verdicts.items() if v != "NOT_APPLICABLE"}
        return sorted(applicable - killed)

    def goals(self) -> dict[str, bool]:
        goals = {
            "kill rate 100%": self.kill_rate >= GOAL_KILL_RATE,
            "clean run: no FAIL, WARN or HARNESS_ERROR": not self.clean_failures,
        }
        if self.every_fault:
            goals["every check killed by a fault"] = not self.unkilled_checks
        if not self.targeted:
            goals["precision >= 95%"] = (self.precision or 0.0) >= GOAL_PRECISION
        return goals

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "seconds": round(self.seconds, 1),
            "checks": len(self.checks),
            "faults": len(self.rows),
            "killRate": self.kill_rate,
            "precision": self.precision,
            "cleanFailures": self.clean_failures,
            "unkilledChecks": self.unkilled_checks if self.every_fault else None,
            "goals": self.goals(),
            "clean": {"seconds": round(self.clean.seconds, 1), "verdicts": self.clean.verdicts},
            "matrix": [
                {"fault": r.fault, "area": r.area, "requirements": list(r.requirements), "killed": r.killed,
                 "killers": r.killers, "blocked": r.blocked, "collateral": r.collateral,
                 "ownMisses": r.own_misses, "collateralMisses": r.collateral_misses,
                 "harnessErrors": r.harness_errors,
                 "judgedBy": r.judged_by, "seconds": round(r.seconds, 1)}
                for r in self.rows
            ],
        }


# --------------------------------------------------------------------------------------------
# Running the suite


# pytest plugins installed beside the suite (for the project's own tests, or ``run --alluredir``) that no
# selftest run uses: not loaded there. schemathesis and hypothesis alone are about 1.5 s of CPU at every
# pytest start, half of a mutant's start-up.
UNUSED_PLUGINS = ("schemathesis", "hypothesispytest", "allure_pytest")
BYTECODE_CACHE_ENV = "PYTHONPYCACHEPREFIX"


def _pytest_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _pytest_plugin_args() -> list[str]:
    return [arg for name in UNUSED_PLUGINS for arg in ("-p", f"no:{name}")]


@contextlib.contextmanager
def bytecode_cache(directory: Path) -> Iterator[None]:
    """While a selftest runs, where bytecode writing is off (``PYTHONDONTWRITEBYTECODE``): its processes
    (each pytest run and its SUT and peers: four Python starts per run) share one bytecode cache in
    ``directory`` (``PYTHONPYCACHEPREFIX``, never the source tree) instead of each compiling every module it
    imports from source (about 0.5 s of CPU per run: 0.3 s of pytest's start, 0.07 s of each peer's).
    Nothing changes where bytecode is written anyway, or where a cache prefix is already set."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get(BYTECODE_CACHE_ENV):
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    saved = os.environ.pop("PYTHONDONTWRITEBYTECODE")
    os.environ[BYTECODE_CACHE_ENV] = str(directory.resolve())
    try:
        yield
    finally:
        os.environ.pop(BYTECODE_CACHE_ENV, None)
        os.environ["PYTHONDONTWRITEBYTECODE"] = saved


def inventory() -> list[CheckInfo]:
    """Every check of the suite, collected without running it."""
    with tempfile.TemporaryDirectory(prefix="mimi-inventory-") as tmp:
        path = Path(tmp) / "inventory.json"
        argv = [sys.executable, "-m", "pytest", str(SCENARIOS_DIR), "--collect-only", "-q", "-p", "no:cacheprovider",
                f"--rootdir={ROOT_DIR}", "--mimi-inventory", str(path), *_pytest_plugin_args()]
        done = subprocess.run(argv, cwd=ROOT_DIR, env=_pytest_env(), capture_output=True, timeout=300)  # noqa: S603
        if done.returncode != 0 or not path.exists():
            raise RuntimeError(f"collecting the checks failed (pytest exit {done.returncode}):\n"
                               + done.stdout.decode(errors="replace")[-3000:])
        return [CheckInfo(c["id"], tuple(c["requirements"]), c["role"], c["area"]) for c in json.loads(path.read_text())]


def write_manifest(path: Path, faults: Sequence[str], *, poll: float, variants: Sequence[str] = ()) -> Path:
    from .harness.manifest import REFERENCE_FEATURES, REFERENCE_HUB_TRANSFER

    document = {
        "manifestVersion": 1,
        "name": "mimi-conformance reference peer" + (f" with fault {', '.join(faults)}" if faults else "")
        + (f" with variant {', '.join(variants)}" if variants else ""),
        "vendor": "mimi-conformance",
        "domains": ["sut.mimi.test"],
        "roles": ["hub", "follower"],
        "consentMode": "immediate",
        "features": list(REFERENCE_FEATURES),  # as reference_manifest(): what the reference SUT implements
        "hubTransfer": dict(REFERENCE_HUB_TRANSFER),
        "timeouts": {"poll": poll},
        "connector": {"type": "reference", "faults": list(faults), "variants": list(variants)},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def run_suite(
    out: Path,
    *,
    faults: Sequence[str] = (),
    variants: Sequence[str] = (),
    checks: Iterable[str] | None = None,
    workers: int = 1,
    seed: int = 1,
    poll: float = 5.0,
    timeout: float = 1800.0,
) -> SuiteRun:
    """One pytest run of the suite (or of ``checks``: check IDs or module paths) against the reference SUT
    with ``faults`` and allowed ``variants`` on."""
    out = Path(out).resolve()  # the SUT's config names files under it: a relative path would be read from elsewhere
    out.mkdir(parents=True, exist_ok=True)
    manifest = write_manifest(out / "sut.yaml", faults, poll=poll, variants=variants)
    results = out / "checks.jsonl"
    results.unlink(missing_ok=True)
    selection = [str(ROOT_DIR / c) for c in checks] if checks is not None else [str(SCENARIOS_DIR)]
    argv = [sys.executable, "-m", "pytest", *selection, "-p", "no:cacheprovider", f"--rootdir={ROOT_DIR}",
            "--sut", str(manifest), "--seed", str(seed), "--mimi-results", str(results), "--mimi-output", str(out),
            "-q", "-rN", *_pytest_plugin_args()]
    if workers > 1:
        argv += ["-n", str(workers)]
    started = time.monotonic()
    with open(out / "pytest.log", "wb") as log:
        try:
            done = subprocess.run(argv, cwd=ROOT_DIR, env=_pytest_env(), stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                  timeout=timeout)
            returncode: int | None = done.returncode
        except subprocess.TimeoutExpired:
            returncode = None
    verdicts: dict[str, str] = {}
    messages: dict[str, str] = {}
    blocked: dict[str, tuple[str, ...]] = {}
    outcomes: dict[str, dict[str, str]] = {}
    unobserved: list[str] = []
    records: dict[str, dict[str, dict[str, Any]]] = {}
    if results.exists():
        for line in results.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record.get("kind") == "check":
                verdicts[record["check_id"]] = record["verdict"]
                messages[record["check_id"]] = record.get("message", "")
                if record.get("blocked_by"):
                    blocked[record["check_id"]] = tuple(record["blocked_by"])
                if record.get("outcomes"):
                    outcomes[record["check_id"]] = {o["requirement"]: o["outcome"] for o in record["outcomes"]}
                    records[record["check_id"]] = {o["requirement"]: o for o in record["outcomes"]}
                    unobserved += [f"{record['check_id']}: {o['requirement']}" for o in record["outcomes"]
                                   if o["outcome"] == "NOT_APPLICABLE" and o.get("message", "").startswith(UNOBSERVED)]
    return SuiteRun(faults[0] if len(faults) == 1 else None, verdicts, messages, time.monotonic() - started,
                    returncode, out, blocked, outcomes, sorted(unobserved), records, tuple(variants))


# --------------------------------------------------------------------------------------------
# The matrix


def row_for(fault, run: SuiteRun, checks: Sequence[CheckInfo]) -> MatrixRow:
    own = set(fault.requirements)
    names = {c.id: set(c.requirements) for c in checks}
    judging = {c.id for c in checks if own & set(c.requirements)}
    missing = [c for c in judging if c not in run.verdicts]

    killers: list[str] = []
    blocked: list[str] = []
    collateral: list[str] = []
    own_misses = 0
    collateral_misses: list[str] = []
    for check_id in sorted(run.verdicts):
        # The check's own requirements: from the inventory, else as the run judged them.
        judged = names.get(check_id) or set(run.outcomes.get(check_id, {}))
        missed = run.missed(check_id, judged)
        if not missed:
            continue
        if check_id not in run.outcomes:  # a line without outcomes: one miss, charged the old way
            if missed & own:
                own_misses += 1
                (blocked if check_id in run.blocked else killers).append(check_id)
            else:
                collateral.append(check_id)
                collateral_misses.append(f"{check_id}: {run.verdicts[check_id]}")
            continue
        own_missed = missed & own
        own_misses += len(own_missed)
        others = sorted(missed - own)
        collateral_misses += [f"{check_id}: {req}" for req in others]
        if own_missed & judged:
            killers.append(check_id)  # it missed a fault's requirement it judges
        elif own_missed:
            blocked.append(check_id)  # it reported the fault's rule that blocked it
        if others:
            collateral.append(check_id)
    return MatrixRow(
        fault=fault.name, area=fault.area, requirements=fault.requirements,
        killers=killers,
        blocked=blocked,
        collateral=collateral,
        harness_errors=run.with_verdict("HARNESS_ERROR") + sorted(f"{c} (no result)" for c in missing),
        judged_by=sorted(judging), seconds=run.seconds,
        own_misses=own_misses, collateral_misses=collateral_misses,
    )


def kill_matrix(
    out: Path,
    *,
    fault_names: Sequence[str] | None = None,
    scope: str = "suite",
    parallel: int = 2,
    seed: int = 1,
    poll: float = 5.0,
    progress: Callable[[str], None] = lambda line: None,
) -> Matrix:
    from reference_peer.faults import REGISTRY

    started = time.monotonic()
    names = list(fault_names) if fault_names else sorted(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise KeyError(f"unknown fault(s) {unknown}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    checks = inventory()

    def one(name: str | None) -> SuiteRun:
        if name is None:
            return run_suite(out / "clean", seed=seed, poll=poll)
        fault = REGISTRY[name]
        selection = None
        judging = [c.id for c in checks if set(fault.requirements) & set(c.requirements)]
        if scope != "suite" and not judging:
            return SuiteRun(name, {}, {}, 0.0, 0, out / name)
        if scope == "targeted":
            selection = judging
        elif scope == "module":
            modules = {c.split("::")[0] for c in judging}
            selection = [c.id for c in checks if c.id.split("::")[0] in modules]
        return run_suite(out / name, faults=[name], checks=selection, seed=seed, poll=poll)

    rows: list[MatrixRow] = []
    clean: SuiteRun | None = None
    with bytecode_cache(Path(out) / ".pycache"), concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        futures = {pool.submit(one, name): name for name in [None, *names]}
        for future in concurrent.futures.as_completed(futures):
            name = futures[future]
            run = future.result()
            if name is None:
                clean = run
                bad = run.with_verdict("FAIL", "WARN", "HARNESS_ERROR")
                progress(f"clean run: {len(run.verdicts)} checks, {len(bad)} FAIL/WARN/HARNESS_ERROR ({run.seconds:.0f}s)")
                continue
            row = row_for(REGISTRY[name], run, checks)
            rows.append(row)
            state = "killed" if row.killed else "SURVIVED"
            extra = f", collateral {len(row.collateral)}" if row.collateral else ""
            extra += f", blocked {len(row.blocked)}" if row.blocked else ""
            progress(f"{name:<44} {state} by {len(row.killers)}/{len(row.judged_by)}{extra} ({run.seconds:.0f}s)")
    assert clean is not None
    rows.sort(key=lambda r: (r.area, r.fault))
    return Matrix(clean, rows, checks, scope, time.monotonic() - started, every_fault=set(names) == set(REGISTRY))


def render(matrix: Matrix) -> str:
    lines = [f"{'fault':<44} {'area':<12} {'killed':<7} killers  blocked  collateral  harness errors"]
    for r in matrix.rows:
        lines.append(f"{r.fault:<44} {r.area:<12} {'yes' if r.killed else 'NO':<7} {len(r.killers):>7}  "
                     f"{len(r.blocked):>7}  {len(r.collateral):>10}  {len(r.harness_errors):>14}")
        for c in r.collateral_misses:
            lines.append(f"    collateral: {c}")
    precision = "not measured (targeted)" if matrix.precision is None or matrix.targeted else f"{matrix.precision:.1%}"
    lines += [
        "",
        f"checks {len(matrix.checks)}, faults {len(matrix.rows)}, scope {matrix.scope}, wall time {matrix.seconds:.0f}s",
        f"kill rate {matrix.kill_rate:.1%} ({sum(r.killed for r in matrix.rows)}/{len(matrix.rows)})",
        f"precision {precision}",
        f"clean-run failures {len(matrix.clean_failures)}" + (f": {matrix.clean_failures}" if matrix.clean_failures else ""),
        f"checks no fault kills {len(matrix.unkilled_checks)}"
        + (": " + ", ".join(matrix.unkilled_checks) if matrix.unkilled_checks else "")
        if matrix.every_fault else "checks no fault kills: not judged (a selection of faults)",
    ]
    for goal, met in matrix.goals().items():
        lines.append(f"goal {'met' if met else 'MISSED'}: {goal}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Repeatability


@dataclasses.dataclass
class Repeatability:
    runs: list[SuiteRun]  # one per seed
    again: SuiteRun  # the first seed, once more
    seconds: float

    @property
    def differences(self) -> dict[str, dict[int, str]]:
        """Checks whose verdict differs between seeds: check ID -> {seed: verdict}."""
        checks = sorted({c for run in self.runs for c in run.verdicts})
        out = {}
        for check in checks:
            seen = {seed: run.verdicts.get(check, "(no result)") for seed, run in self.seeds()}
            if len(set(seen.values())) > 1:
                out[check] = seen
        return out

    @property
    def reproduced(self) -> bool:
        return self.again.verdicts == self.runs[0].verdicts

    def seeds(self) -> list[tuple[int, SuiteRun]]:
        return [(int(run.out.name.removeprefix("seed-")), run) for run in self.runs]

    def as_dict(self) -> dict[str, Any]:
        return {
            "seeds": [seed for seed, _ in self.seeds()],
            "checks": len(self.runs[0].verdicts),
            "differences": self.differences,
            "reproduced": self.reproduced,
            "seconds": round(self.seconds, 1),
            "runSeconds": {seed: round(run.seconds, 1) for seed, run in self.seeds()},
        }


def repeatability(out: Path, *, runs: int = 10, parallel: int = 2, first_seed: int = 1,
                  progress: Callable[[str], None] = lambda line: None) -> Repeatability:
    """The clean suite ``runs`` times with seeds first_seed.., then the first seed again."""
    started = time.monotonic()
    seeds = list(range(first_seed, first_seed + runs))
    results: dict[int, SuiteRun] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        futures = {pool.submit(run_suite, out / f"seed-{seed}", seed=seed): seed for seed in seeds}
        futures[pool.submit(run_suite, out / "again", seed=first_seed)] = -1
        for future in concurrent.futures.as_completed(futures):
            seed = futures[future]
            run = future.result()
            if seed >= 0:
                results[seed] = run
            counts: dict[str, int] = {}
            for verdict in run.verdicts.values():
                counts[verdict] = counts.get(verdict, 0) + 1
            label = f"seed {seed}" if seed >= 0 else f"seed {first_seed} again"
            progress(f"{label}: {counts} ({run.seconds:.0f}s)")
    again = next(f.result() for f, s in futures.items() if s == -1)
    return Repeatability([results[s] for s in seeds], again, time.monotonic() - started)


# --------------------------------------------------------------------------------------------
# The variant matrix: specificity

GOAL_SPECIFICITY = 1.0
FALSE_OUTCOMES = ("FAIL", "WARN", "HARNESS_ERROR")  # never right under a permitted behaviour
AMBIGUITY_REF = re.compile(r"AMB-[A-Z0-9]+(?:-[A-Z0-9]+)*")


def cited_ambiguities(permitted_by: str) -> frozenset[str]:
    """The AMB- IDs a variant's ``permitted_by`` cites: AMBIGUOUS naming one of them is its expected verdict."""
    return frozenset(AMBIGUITY_REF.findall(permitted_by))


@dataclasses.dataclass(frozen=True)
class FalseVerdict:
    """One requirement outcome a permitted behaviour must never cause (or a check without a result)."""

    check: str
    requirement: str  # "(check)" for a line without outcomes, "(no result)" for a check that wrote none
    outcome: str
    message: str = ""
    ambiguity: str | None = None

    @property
    def module(self) -> str:
        return self.check.split("::")[0]

    @property
    def key(self) -> tuple[str, str]:
        return self.check, self.requirement

    def __str__(self) -> str:
        outcome = f"{self.outcome} {self.ambiguity}" if self.ambiguity else self.outcome
        text = f"{self.check}: {self.requirement} {outcome}"
        return f"{text}: {self.message[:200]}" if self.message else text


def false_verdicts(run: SuiteRun, allowed_ambiguities: Iterable[str] = (),
                   expected: Iterable[str] = ()) -> list[FalseVerdict]:
    """The false verdicts of ``run``: per requirement FAIL, WARN or HARNESS_ERROR; AMBIGUOUS naming an AMB-
    ID outside ``allowed_ambiguities``; NOT_APPLICABLE "nothing was observed"; and each ``expected`` check
    that wrote no result. A line without outcomes is judged by its verdict."""
    allowed = set(allowed_ambiguities)
    found: list[FalseVerdict] = []
    for check_id in sorted(run.verdicts):
        records = run.records.get(check_id)
        if records is None and check_id in run.outcomes:
            records = {req: {"outcome": outcome} for req, outcome in run.outcomes[check_id].items()}
        if records is None:
            verdict = run.verdicts[check_id]
            if verdict in FALSE_OUTCOMES or verdict == "AMBIGUOUS":
                found.append(FalseVerdict(check_id, "(check)", verdict, run.messages.get(check_id, "")))
            continue
        for requirement, record in sorted(records.items()):
            outcome, message = record["outcome"], record.get("message") or ""
            ambiguity = record.get("ambiguity") or (AMBIGUITY_REF.search(message) or [None])[0]
            if (outcome in FALSE_OUTCOMES
                    or outcome == "AMBIGUOUS" and ambiguity not in allowed
                    or outcome == "NOT_APPLICABLE" and message.startswith(UNOBSERVED)):
                found.append(FalseVerdict(check_id, requirement, outcome, message,
                                          ambiguity if outcome == "AMBIGUOUS" else None))
    found += [FalseVerdict(c, "(no result)", "NO_RESULT", f"the run wrote no result for it (see {run.out}/pytest.log)")
              for c in sorted(set(expected) - set(run.verdicts))]
    return found


# One batch of suite runs, run concurrently: (variants on, modules to run) -> false verdicts of each run
BatchRunner = Callable[[list[tuple[tuple[str, ...], tuple[str, ...]]]], list[list[FalseVerdict]]]


@dataclasses.dataclass
class Attribution:
    by_variant: dict[str, list[FalseVerdict]]  # reproduced with this variant alone on
    together: list[tuple[tuple[str, ...], list[FalseVerdict]]]  # reproduced only by these variants together
    without_variants: list[FalseVerdict]  # reproduced with no variant on: not a variant's doing
    runs: list[tuple[tuple[str, ...], tuple[str, ...], int]]  # (variants, modules, false verdicts) per rerun
    # false verdicts neither a half nor a rerun of the same variants reproduced (flaky): charged to none
    unconfirmed: list[FalseVerdict] = dataclasses.field(default_factory=list)

    def charged(self, variant: str) -> list[FalseVerdict]:
        """Every false verdict charged to ``variant``: alone, and in each set it was only together with."""
        own = list(self.by_variant.get(variant, []))
        for names, verdicts in self.together:
            if variant in names:
                own += verdicts
        return own


def attribute(variants: Sequence[str], combined: Sequence[FalseVerdict], run_batch: BatchRunner) -> Attribution:
    """Find which variants cause the false verdicts ``combined`` (those of the run with all ``variants`` on).

    Bisection: a set of variants with false verdicts is split in halves, both rerun (one batch per level,
    so the halves run concurrently) restricted to the modules of those false verdicts; a half that still
    has false verdicts is split again, down to single variants, which are charged. The first level also
    runs no variant at all on the same modules: false verdicts it reproduces are the reference default's
    (or a flaky check's) and are charged to no variant, here or below. False verdicts of a set that neither
    half reproduces are confirmed by rerunning the set itself: those it reproduces exist only with those
    variants together, and the set is charged jointly; the others did not reproduce (``unconfirmed``)."""
    by_variant: dict[str, list[FalseVerdict]] = {}
    together: list[tuple[tuple[str, ...], list[FalseVerdict]]] = []
    unconfirmed: list[FalseVerdict] = []
    runs: list[tuple[tuple[str, ...], tuple[str, ...], int]] = []
    baseline: set[tuple[str, str]] = set()
    without: list[FalseVerdict] = []
    # (variant set, its false verdicts, whether this set's run only confirms them)
    frontier: list[tuple[tuple[str, ...], list[FalseVerdict], bool]] = (
        [(tuple(variants), list(combined), False)] if combined else [])
    first = True

    def modules_of(verdicts: Iterable[FalseVerdict]) -> tuple[str, ...]:
        return tuple(sorted({v.module for v in verdicts}))

    while frontier:
        jobs: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
        plans: list[tuple[tuple[str, ...], list[FalseVerdict], str, int]] = []  # (set, verdicts, kind, first job)
        for names, verdicts, confirm in frontier:
            if confirm:
                plans.append((names, verdicts, "confirm", len(jobs)))
                jobs.append((names, modules_of(verdicts)))
            elif len(names) <= 1:
                plans.append((names, verdicts, "charge", -1))
            else:
                half = (len(names) + 1) // 2
                plans.append((names, verdicts, "split", len(jobs)))
                jobs += [(names[:half], modules_of(verdicts)), (names[half:], modules_of(verdicts))]
        if first:  # the reference default on every module a false verdict was seen in
            first = False
            jobs.append(((), modules_of(v for _, vs, _ in frontier for v in vs)))
        results = run_batch(jobs) if jobs else []
        runs += [(names, modules, len(found)) for (names, modules), found in zip(jobs, results, strict=True)]
        if jobs and not jobs[-1][0]:
            without = results[-1]
            baseline = {v.key for v in without}
        frontier = []
        for names, verdicts, kind, index in plans:
            verdicts = [v for v in verdicts if v.key not in baseline]
            if not verdicts:
                continue
            if kind == "charge":
                if names:
                    by_variant.setdefault(names[0], []).extend(verdicts)
                continue
            if kind == "confirm":
                again = {v.key for v in results[index]}
                if reproduced := [v for v in verdicts if v.key in again]:
                    together.append((names, reproduced))
                unconfirmed += [v for v in verdicts if v.key not in again]
                continue
            explained: set[tuple[str, str]] = set()
            for offset in (0, 1):
                found = [v for v in results[index + offset] if v.key not in baseline]
                if found:
                    frontier.append((jobs[index + offset][0], found, False))
                    explained |= {v.key for v in found}
            if unexplained := [v for v in verdicts if v.key not in explained]:
                frontier.append((names, unexplained, True))
    return Attribution(by_variant, together, without, runs, unconfirmed)


@dataclasses.dataclass
class VariantRow:
    variant: str
    area: str
    permitted_by: str
    ambiguities: tuple[str, ...]  # the AMB- IDs it cites
    false: list[FalseVerdict]  # charged to it (alone or together with others)
    together_with: list[str] = dataclasses.field(default_factory=list)  # variants it was charged jointly with

    @property
    def specific(self) -> bool:
        return not self.false


@dataclasses.dataclass
class VariantMatrix:
    combined: SuiteRun
    combined_false: list[FalseVerdict]
    rows: list[VariantRow]
    attribution: Attribution | None
    checks: int
    seconds: float

    @property
    def specificity(self) -> float:
        return sum(r.specific for r in self.rows) / len(self.rows) if self.rows else 1.0

    def goals(self) -> dict[str, bool]:
        goals = {"specificity 100%": self.specificity >= GOAL_SPECIFICITY}
        if self.attribution is not None:
            goals["no false verdict with no variant on"] = not self.attribution.without_variants
            goals["every false verdict reproduced"] = not self.attribution.unconfirmed
        return goals

    def as_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for verdict in self.combined.verdicts.values():
            counts[verdict] = counts.get(verdict, 0) + 1
        return {
            "mode": "variants",
            "seconds": round(self.seconds, 1),
            "checks": self.checks,
            "variants": len(self.rows),
            "specificity": self.specificity,
            "goals": self.goals(),
            "combined": {"variants": list(self.combined.variants), "seconds": round(self.combined.seconds, 1),
                         "verdicts": counts, "falseVerdicts": [str(v) for v in self.combined_false]},
            "attribution": None if self.attribution is None else {
                "runs": [{"variants": list(names), "modules": list(modules), "falseVerdicts": n}
                         for names, modules, n in self.attribution.runs],
                "withoutVariants": [str(v) for v in self.attribution.without_variants],
                "unconfirmed": [str(v) for v in self.attribution.unconfirmed],
                "together": [{"variants": list(names), "falseVerdicts": [str(v) for v in verdicts]}
                             for names, verdicts in self.attribution.together],
            },
            "matrix": [
                {"variant": r.variant, "area": r.area, "permittedBy": r.permitted_by, "ambiguities": list(r.ambiguities),
                 "specific": r.specific, "falseVerdicts": [str(v) for v in r.false], "togetherWith": r.together_with}
                for r in self.rows
            ],
        }


def variant_matrix(
    out: Path,
    *,
    variant_names: Sequence[str] | None = None,
    parallel: int = 2,
    seed: int = 1,
    poll: float = 5.0,
    progress: Callable[[str], None] = lambda line: None,
) -> VariantMatrix:
    """The suite against the reference SUT with every (or each named) allowed variant on, in one run; on a
    false verdict, :func:`attribute` reruns subsets of the variants on the modules concerned."""
    from reference_peer.faults import VARIANTS

    started = time.monotonic()
    names = tuple(sorted(variant_names) if variant_names else sorted(VARIANTS))
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise KeyError(f"unknown variant(s) {unknown}")
    out = Path(out).resolve()
    checks = inventory()
    cited = {n: cited_ambiguities(VARIANTS[n].permitted_by) for n in names}

    def allowed(on: Sequence[str]) -> set[str]:
        return {amb for n in on for amb in cited[n]}

    combined = run_suite(out / "combined", variants=names, seed=seed, poll=poll)
    combined_false = false_verdicts(combined, allowed(names), [c.id for c in checks])
    progress(f"all {len(names)} variants together: {len(combined.verdicts)} checks, "
             f"{len(combined_false)} false verdicts ({combined.seconds:.0f}s)")

    counter = iter(range(1, 10_000))

    def run_batch(jobs: list[tuple[tuple[str, ...], tuple[str, ...]]]) -> list[list[FalseVerdict]]:
        def one(job: tuple[tuple[str, ...], tuple[str, ...]], number: int) -> list[FalseVerdict]:
            on, modules = job
            label = "none" if not on else on[0] if len(on) == 1 else f"{len(on)}-variants"
            run = run_suite(out / f"rerun-{number:02d}-{label}", variants=on, checks=modules, seed=seed, poll=poll)
            expected = [c.id for c in checks if c.id.split("::")[0] in modules]
            found = false_verdicts(run, allowed(on), expected)
            progress(f"  {', '.join(on) or 'no variant'} on {len(modules)} module(s): "
                     f"{len(found)} false verdicts ({run.seconds:.0f}s)")
            return found

        numbered = [(job, next(counter)) for job in jobs]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            return list(pool.map(lambda item: one(*item), numbered))

    attribution = attribute(names, combined_false, run_batch) if combined_false else None
    rows = []
    for name in names:
        variant = VARIANTS[name]
        false = attribution.charged(name) if attribution else []
        with_others = sorted({n for set_, _ in (attribution.together if attribution else []) if name in set_
                              for n in set_} - {name})
        rows.append(VariantRow(name, variant.area, variant.permitted_by, tuple(sorted(cited[name])), false, with_others))
    rows.sort(key=lambda r: (r.area, r.variant))
    return VariantMatrix(combined, combined_false, rows, attribution, len(checks), time.monotonic() - started)


def render_variants(matrix: VariantMatrix) -> str:
    lines = [f"{'variant':<44} {'area':<12} {'specific':<9} false verdicts"]
    for r in matrix.rows:
        lines.append(f"{r.variant:<44} {r.area:<12} {'yes' if r.specific else 'NO':<9} {len(r.false):>14}"
                     + (f"  (together with {', '.join(r.together_with)})" if r.together_with else ""))
        alone = matrix.attribution.by_variant.get(r.variant, []) if matrix.attribution else []
        for v in alone:
            lines.append(f"    false verdict: {v}")
    for names, verdicts in matrix.attribution.together if matrix.attribution else []:
        lines.append(f"only together ({', '.join(names)}), charged to each:")
        lines += [f"    false verdict: {v}" for v in verdicts]
    lines += ["", f"checks {matrix.checks}, variants {len(matrix.rows)}, all together in one run: "
                  f"{len(matrix.combined_false)} false verdicts ({matrix.combined.seconds:.0f}s); wall time {matrix.seconds:.0f}s"]
    if matrix.attribution is not None:
        lines.append(f"attribution: {len(matrix.attribution.runs)} reruns restricted to the modules concerned")
        for v in matrix.attribution.without_variants:
            lines.append(f"    with no variant on too: {v}")
        for v in matrix.attribution.unconfirmed:
            lines.append(f"    not reproduced by a rerun: {v}")
    lines.append(f"specificity {matrix.specificity:.1%} ({sum(r.specific for r in matrix.rows)}/{len(matrix.rows)})")
    for goal, met in matrix.goals().items():
        lines.append(f"goal {'met' if met else 'MISSED'}: {goal}")
    return "\n".join(lines)
