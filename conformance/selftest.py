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
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
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


def _pytest_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def inventory() -> list[CheckInfo]:
    """Every check of the suite, collected without running it."""
    with tempfile.TemporaryDirectory(prefix="mimi-inventory-") as tmp:
        path = Path(tmp) / "inventory.json"
        argv = [sys.executable, "-m", "pytest", str(SCENARIOS_DIR), "--collect-only", "-q", "-p", "no:cacheprovider",
                f"--rootdir={ROOT_DIR}", "--mimi-inventory", str(path)]
        done = subprocess.run(argv, cwd=ROOT_DIR, env=_pytest_env(), capture_output=True, timeout=300)  # noqa: S603
        if done.returncode != 0 or not path.exists():
            raise RuntimeError(f"collecting the checks failed (pytest exit {done.returncode}):\n"
                               + done.stdout.decode(errors="replace")[-3000:])
        return [CheckInfo(c["id"], tuple(c["requirements"]), c["role"], c["area"]) for c in json.loads(path.read_text())]


def write_manifest(path: Path, faults: Sequence[str], *, poll: float) -> Path:
    from .harness.manifest import REFERENCE_HUB_TRANSFER

    document = {
        "manifestVersion": 1,
        "name": "mimi-conformance reference peer" + (f" with fault {', '.join(faults)}" if faults else ""),
        "vendor": "mimi-conformance",
        "domains": ["sut.mimi.test"],
        "roles": ["hub", "follower"],
        "consentMode": "immediate",
        "features": ["hubTransfer"],  # as reference_manifest(): the reference SUT runs the hub-transfer extension
        "hubTransfer": dict(REFERENCE_HUB_TRANSFER),
        "timeouts": {"poll": poll},
        "connector": {"type": "reference", "faults": list(faults)},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def run_suite(
    out: Path,
    *,
    faults: Sequence[str] = (),
    checks: Iterable[str] | None = None,
    workers: int = 1,
    seed: int = 1,
    poll: float = 5.0,
    timeout: float = 1800.0,
) -> SuiteRun:
    """One pytest run of the suite (or of ``checks``) against the reference SUT with ``faults`` on."""
    out = Path(out).resolve()  # the SUT's config names files under it: a relative path would be read from elsewhere
    out.mkdir(parents=True, exist_ok=True)
    manifest = write_manifest(out / "sut.yaml", faults, poll=poll)
    results = out / "checks.jsonl"
    results.unlink(missing_ok=True)
    selection = [str(ROOT_DIR / c) for c in checks] if checks is not None else [str(SCENARIOS_DIR)]
    argv = [sys.executable, "-m", "pytest", *selection, "-p", "no:cacheprovider", f"--rootdir={ROOT_DIR}",
            "--sut", str(manifest), "--seed", str(seed), "--mimi-results", str(results), "--mimi-output", str(out),
            "-q", "-rN"]
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
                    unobserved += [f"{record['check_id']}: {o['requirement']}" for o in record["outcomes"]
                                   if o["outcome"] == "NOT_APPLICABLE" and o.get("message", "").startswith(UNOBSERVED)]
    return SuiteRun(faults[0] if len(faults) == 1 else None, verdicts, messages, time.monotonic() - started,
                    returncode, out, blocked, outcomes, sorted(unobserved))


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
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
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
