"""The ``mimi-conformance`` command.

Subcommands: ``run`` (run the suite against a SUT and write the reports), ``profiles``,
``requirements`` (also ``--diff A B`` between two catalogue revisions), ``verify`` (a signed
results.json), ``diff`` (two results.json), ``keygen`` (an Ed25519 key pair for ``run --sign-key``),
``pki init`` (the suite CA the reference peers use, kept across runs), ``preflight`` (is a SUT set up
for a run: each link from the manifest to a request the SUT sends a reference peer),
``list`` (the checks, without running them), ``completion`` (a shell completion script), ``operations``
(the operation -> checks table of docs/control-api.md).
Exit codes: 0 success, 1 failure, 2 usage error; never a count. The README documents the contract.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _error(message: str) -> None:
    print(f"mimi-conformance: {message}", file=sys.stderr)


def _load_catalogue_and_profiles():
    from .catalogue import load_catalogue
    from .profiles import load_profiles

    catalogue = load_catalogue()
    return catalogue, load_profiles(catalogue)


def _catalogue_revision(spec: str):
    """``requirements --diff`` operands: an existing directory is loaded as a whole catalogue;
    anything else must be a document ID of the packaged catalogue. Returns (label, requirements)."""
    from .catalogue import CatalogueError, load_catalogue

    path = Path(spec)
    if path.is_dir():
        try:
            return str(path), list(load_catalogue(path))
        except CatalogueError as exc:
            raise ValueError(f"{spec}: {exc}") from None
    catalogue = load_catalogue()
    if spec not in catalogue.documents:
        known = ", ".join(sorted(catalogue.documents))
        raise ValueError(f"{spec!r} is neither a catalogue directory nor a document ID of the catalogue ({known})")
    return spec, catalogue.from_document(spec)


def _cmd_requirements(args: argparse.Namespace) -> int:
    if args.diff:
        if args.profile:
            _error("requirements: --diff and --profile cannot be combined")
            return 2
        from reports.diff import diff_catalogues, format_catalogue_diff, requirement_infos

        try:
            (old_label, old), (new_label, new) = (_catalogue_revision(spec) for spec in args.diff)
        except ValueError as exc:
            _error(f"requirements --diff: {exc}")
            return 2
        diff = diff_catalogues(requirement_infos(old), requirement_infos(new))
        print(format_catalogue_diff(diff, old_label, new_label))
        return 0
    catalogue, profiles = _load_catalogue_and_profiles()
    wanted = None
    if args.profile:
        if args.profile not in profiles:
            _error(f"requirements: unknown profile {args.profile!r}; known: {', '.join(sorted(profiles))}")
            return 2
        wanted = set(profiles[args.profile].requirements)
    shown = [req for req in catalogue.requirements.values() if wanted is None or req.id in wanted]
    width = max((len(req.id) for req in shown), default=0)
    for req in shown:
        print(f"{req.id:<{width}}  {req.level:<8} {req.area:<12} {req.role:<8} {req.source} §{req.section}")
    return 0


def _cmd_profiles(args: argparse.Namespace) -> int:
    _, profiles = _load_catalogue_and_profiles()
    width = max((len(name) for name in profiles), default=0)
    for profile in profiles.values():
        print(f"{profile.name:<{width}}  {profile.role:<9} {len(profile.requirements):>4} requirements  {profile.title}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .run import RunOptions, execute

    options = RunOptions(
        sut=args.sut,
        profiles=args.profile or (),
        out=Path(args.out),
        baseline=Path(args.baseline) if args.baseline else None,
        seed=args.seed,
        workers=args.workers,
        sign_key=Path(args.sign_key) if args.sign_key else None,
        timeout_total=args.timeout_total,
        allow_untested=args.allow_untested,
        select=args.select,
        requirements=args.requirement or (),
        areas=args.area or (),
        last_failed=args.last_failed,
        suite_pki=Path(args.suite_pki) if args.suite_pki else None,
        preflight=not args.no_preflight,
        alluredir=Path(args.alluredir) if args.alluredir else None,
    )
    if args.format != "jsonl":
        return execute(options)
    # JSON lines: stdout carries only the check records and the final result line; the human lines go to stderr.
    options.on_check = lambda record: print(json.dumps(record), flush=True)
    code = execute(options, printer=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(_result_line(code, options.out)), flush=True)
    return code


def _result_line(code: int, out: Path) -> dict:
    """The last line of ``run --format jsonl``: the exit code and, when the run wrote its reports, a summary."""
    from collections import Counter

    line: dict = {"kind": "result", "exit": code}
    results_file = Path(out) / "results.json"
    # Only a run that got past its plan (exit 0 or 1) cleared the previous reports: otherwise the file is old.
    if code in (0, 1) and results_file.is_file():
        results = json.loads(results_file.read_text(encoding="utf-8"))
        line["checks"] = len(results.get("checks", []))
        line["verdicts"] = dict(Counter(check["verdict"] for check in results.get("checks", [])))
        line["profiles"] = {profile["name"]: profile["verdict"] for profile in results.get("profiles", [])}
        if results.get("gate") is not None:
            line["gate_passed"] = results["gate"]["passed"]
        line["results"] = str(results_file)
    return line


def _selection(args: argparse.Namespace):
    from .selection import Selection

    return Selection(args.select, tuple(args.requirement or ()), tuple(args.area or ()))


def _cmd_list(args: argparse.Namespace) -> int:
    from .selection import SelectionError, select_checks

    manifest = None
    if args.sut is not None:
        from .harness.manifest import ManifestError, load_manifest, reference_manifest

        try:
            manifest = reference_manifest() if args.sut == "reference" else load_manifest(args.sut)
        except ManifestError as exc:
            _error(f"list: --sut: {exc}")
            return 2
    try:
        checks = select_checks(_selection(args), manifest=manifest)
    except SelectionError as exc:
        _error(f"list: {exc}")
        return 2
    if args.json:
        print(json.dumps([check.as_dict() for check in checks], indent=1))
        return 0
    # The requirements last: the one column whose width varies a lot is then never padded.
    rows = [("ID", "AREA", "ROLE", "FEATURES", "REQUIREMENTS")] + [
        (c.id, c.area, c.role, ",".join(c.features) or "-", ",".join(c.requirements)) for c in checks
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for *aligned, last in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(aligned, widths, strict=True)) + "  " + last)
    return 0


def _cmd_completion(args: argparse.Namespace) -> int:
    import shtab

    print(shtab.complete(build_parser(), shell=args.shell))
    return 0


def _cmd_preflight(args: argparse.Namespace) -> int:
    from .preflight import preflight

    report = preflight(args.sut, suite_pki=Path(args.suite_pki) if args.suite_pki else None, out=Path(args.out))
    if report.ok:
        return 0
    _error(f"preflight: {report.sentence}")
    return 2


def _cmd_verify(args: argparse.Namespace) -> int:
    from reports.signing import verify_file

    code, message = verify_file(Path(args.file), trusted_key_file=Path(args.key) if args.key else None)
    if code == 2:
        _error(f"verify: {message}")
    else:
        print(message)
    return code


def _cmd_diff(args: argparse.Namespace) -> int:
    from reports.diff import diff_results_files

    code, text = diff_results_files(Path(args.old), Path(args.new), fail_on_regression=args.fail_on_regression,
                                    warn=lambda line: print(f"diff: {line}", file=sys.stderr))  # fmt: skip
    if code == 2:
        _error(f"diff: {text}")
    else:
        print(text)
    return code


def _cmd_baseline_init(args: argparse.Namespace) -> int:
    from reports.baseline import render_baseline
    from reports.model import RunResults
    from reports.schema import ResultsSchemaError

    try:
        results = RunResults.from_json(Path(args.results).read_bytes())
    except (OSError, ResultsSchemaError) as exc:
        _error(f"baseline init: {args.results}: {exc}")
        return 2
    out = Path(args.output)
    if out.exists() and not args.force:
        _error(f"baseline init: {out} exists; pass --force to overwrite it")
        return 2
    text = render_baseline(results, origin=str(args.results))
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        _error(f"baseline init: cannot write {out}: {exc}")
        return 2
    count = sum(1 for check in results.checks if check.verdict.is_failure)
    print(f"wrote {out}: {count} expected failure{'' if count == 1 else 's'}, each with a TODO reason to replace")
    return 0


def _cmd_keygen(args: argparse.Namespace) -> int:
    from reports.signing import generate_key, key_id, save_private_key, save_public_key

    private_path = Path(args.out)
    public_path = private_path.with_name(private_path.name + ".pub")
    existing = [str(p) for p in (private_path, public_path) if p.exists()]
    if existing and not args.force:
        _error(f"keygen: {', '.join(existing)} already exist(s); pass --force to overwrite")
        return 2
    if not private_path.parent.is_dir():
        _error(f"keygen: no such directory: {private_path.parent}")
        return 2
    key = generate_key()
    save_private_key(key, private_path)
    save_public_key(key, public_path)
    print(f"private key {private_path} (keep it secret), public key {public_path}, key id {key_id(key)}")
    return 0


def _cmd_pki_init(args: argparse.Namespace) -> int:
    from .harness.suite_pki import CA_KEY, SuitePki, SuitePkiError

    directory = Path(args.dir)
    try:
        pki = SuitePki.init(directory, force=args.force)
    except SuitePkiError as exc:
        _error(f"pki init: {exc}")
        return 2
    print(f"suite PKI in {directory}: {'reused' if pki.reused else 'made a new CA'}")
    print(f"  CA certificate  {pki.ca_cert}")
    print(f"  CA key          {directory / CA_KEY} (mode 0600)")
    print(f"give your server {pki.ca_cert} to trust; keep {directory / CA_KEY} private")
    return 0


def _cmd_selftest(args: argparse.Namespace) -> int:
    from reference_peer.faults import REGISTRY, VARIANTS

    from .selftest import kill_matrix, render

    unknown = [name for name in args.fault or () if name not in REGISTRY]
    if unknown:
        _error(f"selftest: unknown fault(s) {unknown}; 'reference-peer faults' lists them")
        return 2
    unknown = [name for name in args.variant or () if name not in VARIANTS]
    if unknown:
        _error(f"selftest: unknown variant(s) {unknown}; 'reference-peer variants' lists them")
        return 2
    variants = args.variants or bool(args.variant)
    if variants and (args.fault or args.repeat):
        _error("selftest: --variants/--variant cannot be combined with --fault or --repeat")
        return 2
    if args.parallel < 1:
        _error("selftest: -j must be at least 1")
        return 2
    out = Path(args.out)
    progress = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else print
    if args.mutants:
        return _selftest_mutants(args, out, progress)
    if variants:
        from .selftest import render_variants, variant_matrix

        result = variant_matrix(out / "variants", variant_names=args.variant, parallel=args.parallel, seed=args.seed,
                                progress=progress)
        document = result.as_dict()
        out.mkdir(parents=True, exist_ok=True)
        (out / "selftest.json").write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        print(json.dumps(document, indent=1) if args.json else render_variants(result))
        return 0 if all(result.goals().values()) else 1
    if args.repeat:
        from .selftest import repeatability

        result = repeatability(out / "repeatability", runs=args.repeat, parallel=args.parallel, first_seed=args.seed,
                               progress=progress)
        document = result.as_dict()
        print(json.dumps(document, indent=1) if args.json else
              f"{args.repeat} seeds, {document['checks']} checks: {len(result.differences)} verdict differences "
              f"between seeds; seed {args.seed} reproduced: {'yes' if result.reproduced else 'NO'} "
              f"({result.seconds:.0f}s)" + "".join(f"\n  {c}: {v}" for c, v in result.differences.items()))
        return 0 if not result.differences and result.reproduced else 1
    matrix = kill_matrix(out, fault_names=args.fault, scope=args.scope, parallel=args.parallel,
                         seed=args.seed, progress=progress)
    document = matrix.as_dict()
    out.mkdir(parents=True, exist_ok=True)
    (out / "selftest.json").write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(document, indent=1) if args.json else render(matrix))
    return 0 if all(matrix.goals().values()) else 1


def _selftest_mutants(args: argparse.Namespace, out: Path, progress) -> int:
    """``selftest --mutants``: conformance.mutation."""
    from .mutation import render as render_mutants
    from .mutation import rule_modules, run_mutants

    if args.fault or args.variant or args.variants or args.repeat:
        _error("selftest: --mutants cannot be combined with --fault, --variants or --repeat")
        return 2
    if args.sample is not None and args.sample < 1:
        _error("selftest: --sample must be at least 1")
        return 2
    if args.budget is not None and args.budget <= 0:
        _error("selftest: --budget must be a positive number of minutes")
        return 2
    unknown = sorted(set(args.module or ()) - set(rule_modules()))
    if unknown:
        _error(f"selftest: not rule module(s) {unknown}; rule modules: {', '.join(rule_modules())}")
        return 2
    try:
        report = run_mutants(out / "mutants", size=args.sample, seed=args.seed, modules=args.module,
                             parallel=args.parallel, timeout=args.mutant_timeout, only=args.mutant or (),
                             reach=not args.no_reach, resume=args.resume,
                             budget=None if args.budget is None else args.budget * 60.0, progress=progress)
    except KeyError as exc:
        _error(f"selftest: {exc.args[0]}")
        return 2
    document = report.as_dict()
    out.mkdir(parents=True, exist_ok=True)
    (out / "selftest.json").write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(document, indent=1) if args.json else render_mutants(report))
    return 0 if all(report.goals().values()) else 1


def _cmd_coverage(args: argparse.Namespace) -> int:
    from .catalogue import load_catalogue
    from .coverage import (
        MANIFEST_FILE,
        build_manifest,
        load_exclusions,
        problems,
        render_manifest,
        stale_lines,
        summary,
    )
    from .profiles import load_profiles
    from .selftest import inventory

    exclusions = load_exclusions()
    manifest = build_manifest(inventory(), load_profiles(load_catalogue()), exclusions)
    text = render_manifest(manifest)
    for line in summary(manifest):
        print(line)
    if args.write:
        MANIFEST_FILE.parent.mkdir(parents=True, exist_ok=True)
        MANIFEST_FILE.write_text(text, encoding="utf-8")
        print(f"wrote {MANIFEST_FILE}")
    found = problems(manifest, exclusions)
    if args.check and (not MANIFEST_FILE.exists() or MANIFEST_FILE.read_text(encoding="utf-8") != text):
        current = MANIFEST_FILE.read_text(encoding="utf-8") if MANIFEST_FILE.exists() else ""
        diff = list(stale_lines(current, text))
        found.append(f"{MANIFEST_FILE.name} is stale: run `mimi-conformance coverage --write` ({len(diff)} diff lines)")
        for line in diff[:40]:
            print(line)
    for problem in found:
        _error(f"coverage: {problem}")
    return 1 if found else 0


def _cmd_operations(args: argparse.Namespace) -> int:
    from .operations_table import (
        DOC_FILE,
        collect,
        current_block,
        marker_problems,
        openapi_operations,
        render,
        suggest_markers,
    )
    from .operations_table import replace_block as with_block

    if args.suggest:
        try:
            lines = Path(args.suggest).read_text(encoding="utf-8").splitlines()
            suggestions = suggest_markers(json.loads(line) for line in lines if line.strip())
        except (OSError, ValueError, KeyError) as exc:
            _error(f"operations --suggest: cannot read {args.suggest}: {exc}")
            return 2
        for function, marker in suggestions.items():
            print(f"{function}\n    {marker}")
        return 0
    checks = collect()
    operations = openapi_operations()
    block = render(checks, operations)
    found = marker_problems(checks, operations)
    if args.write:
        DOC_FILE.write_text(with_block(DOC_FILE.read_text(encoding="utf-8"), block), encoding="utf-8")
        print(f"wrote the operations table of {DOC_FILE.name}")
    elif not args.check:
        print(block, end="")
    if args.check and current_block(DOC_FILE.read_text(encoding="utf-8")) != block:
        found.append(f"the operations table of {DOC_FILE.name} is stale: run `mimi-conformance operations --write`")
    for problem in found:
        _error(f"operations: {problem}")
    return 1 if found else 0


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def version_text() -> str:
    """``--version``: the installed version and the source documents (draft revisions) the suite judges."""
    from importlib.metadata import PackageNotFoundError, version

    from .catalogue import load_catalogue

    try:
        number = version("mimi-conformance")
    except PackageNotFoundError:  # imported from a checkout that was never pip-installed
        number = "(not installed)"
    documents = list(load_catalogue().documents.values())
    width = max((len(doc.id) for doc in documents), default=0)
    return "\n".join([f"mimi-conformance {number}", "judges:", *(f"  {doc.id:<{width}}  {doc.title}" for doc in documents)])


class _VersionAction(argparse.Action):
    """Like argparse's "version" action, but the text (which reads the catalogue) is built only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            print(version_text(), flush=True)
        except BrokenPipeError:  # piped into `head` and closed early: not an error
            sys.stderr.close()
        parser.exit(0)


class _OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors are one line on stderr (exit 2), not argparse's usage block."""

    def error(self, message: str):  # type: ignore[override]
        text = f"{self.prog}: {message} (see {self.prog} --help)\n"
        if self.prog.endswith(" run"):  # every exit path of `run` ends with its RESULT line
            sys.stderr.write(text)
            print(f"RESULT: ERROR (exit 2): {message}")
            self.exit(2)
        self.exit(2, text)


def _complete_paths(parser: argparse.ArgumentParser, files: tuple[str, ...] = (), dirs: tuple[str, ...] = ()) -> None:
    """Let ``completion`` scripts offer file or folder names for these options (by their dest)."""
    import shtab

    for action in parser._actions:  # argparse keeps no public list of a parser's options
        if action.dest in files:
            action.complete = shtab.FILE  # type: ignore[attr-defined]
        elif action.dest in dirs:
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]


def _add_selection_options(parser: argparse.ArgumentParser, verb: str) -> None:
    """-k, --requirement and --area, shared by ``run`` and ``list``: every given option must hold."""
    parser.add_argument("-k", dest="select", metavar="EXPRESSION",
                        help=f"{verb} only the checks whose ID matches (a pytest -k expression)"
                             + ("; the requirements only the others judge are then UNTESTED" if verb == "run" else ""))
    parser.add_argument("--requirement", action="append", metavar="ID",
                        help=f"{verb} only the checks judging this requirement ID, or any ID starting with it when it "
                             "ends in '-' (e.g. PROTO-KEYMAT-; repeatable)")
    parser.add_argument("--area", action="append", metavar="NAME",
                        help=f"{verb} only the checks of this area: the scenario module without test_, e.g. transport "
                             "(repeatable)")


def build_parser() -> argparse.ArgumentParser:
    from .run import DEFAULT_OUT, DEFAULT_TIMEOUT_TOTAL

    parser = _OneLineErrorParser(prog="mimi-conformance", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_VersionAction,
                        help="print the version and the draft revisions the suite judges, then exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineErrorParser)

    run = sub.add_parser("run", help="run the suite against a SUT and write the reports")
    run.add_argument("--sut", default="reference", metavar="reference|MANIFEST",
                     help="'reference' (the embedded reference peer, default) or a SUT manifest file")
    run.add_argument("--profile", action="append", metavar="NAME",
                     help="score this profile (repeatable; default: every profile whose role the SUT declares)")
    run.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR", help=f"output directory (default: {DEFAULT_OUT})")
    run.add_argument("--baseline", metavar="FILE", help="vendor baseline of expected failures (YAML)")
    run.add_argument("--seed", type=int, metavar="N", help="seed of the run (default: random, printed)")
    run.add_argument("-n", dest="workers", type=int, default=1, metavar="WORKERS",
                     help="run checks in parallel in WORKERS processes (pytest-xdist; default 1)")
    run.add_argument("--sign-key", metavar="FILE", help="Ed25519 private key (PEM) to sign results.json with")
    run.add_argument("--timeout-total", type=_positive_seconds, default=DEFAULT_TIMEOUT_TOTAL, metavar="SECONDS",
                     help=f"stop the run after this long (default {DEFAULT_TIMEOUT_TOTAL:g})")
    run.add_argument("--allow-untested", action="store_true",
                     help="exit 0 when profiles are INCOMPLETE only because requirements have no check yet "
                          "(verdicts unchanged; for demos and suite development, never for certification)")
    _add_selection_options(run, "run")
    run.add_argument("--last-failed", action="store_true",
                     help="run only the checks the previous run in the same --out did not PASS (nor find "
                          "NOT_APPLICABLE), read from OUT/results.json or OUT/checks.jsonl")
    run.add_argument("--format", choices=("text", "jsonl"), default="text",
                     help="jsonl: each check's record as one JSON line on stdout as it finishes, then a "
                          '{"kind": "result", "exit": N, ...} line; the human lines go to stderr')
    run.add_argument("--suite-pki", metavar="DIR",
                     help="the suite PKI to use (mimi-conformance pki init DIR; default: the manifest's suite.pki, "
                          "else a new one in OUT/suite-pki)")
    run.add_argument("--alluredir", metavar="DIR",
                     help="also write allure results to DIR (needs allure-pytest; view with 'allure serve DIR')")
    run.add_argument("--no-preflight", action="store_true",
                     help="skip the preflight a run makes first for a SUT that is not the embedded reference")
    _complete_paths(run, files=("sut", "baseline", "sign_key"), dirs=("out", "suite_pki", "alluredir"))
    run.set_defaults(func=_cmd_run)

    listing = sub.add_parser("list", help="list the checks without running them: ID, area, role, requirements, "
                                          "features")
    listing.add_argument("--json", action="store_true", help="print a JSON array of the checks")
    listing.add_argument("--sut", metavar="reference|MANIFEST",
                         help="only the checks a run against this SUT judges (its roles and features)")
    _add_selection_options(listing, "list")
    _complete_paths(listing, files=("sut",))
    listing.set_defaults(func=_cmd_list)

    check = sub.add_parser("preflight", help="check that a SUT is set up for a run, link by link, without "
                                             "running any check")
    check.add_argument("--sut", required=True, metavar="reference|MANIFEST", help="'reference' or a SUT manifest file")
    check.add_argument("--suite-pki", metavar="DIR", help="the suite PKI to use (default: the manifest's suite.pki, "
                                                          "else a new one in OUT/suite-pki)")
    check.add_argument("--out", default="mimi-conformance-preflight", metavar="DIR",
                       help="where preflight writes its PKI leaves, logs and peers (default: mimi-conformance-preflight)")
    _complete_paths(check, files=("sut",), dirs=("suite_pki", "out"))
    check.set_defaults(func=_cmd_preflight)

    reqs = sub.add_parser("requirements", help="list the requirement catalogue, or diff two revisions")
    reqs.add_argument("--profile", help="only the requirements of this profile")
    reqs.add_argument("--diff", nargs=2, metavar=("A", "B"),
                      help="requirements added, removed and changed from A to B; each a catalogue directory "
                           "or a document ID of the packaged catalogue")
    reqs.set_defaults(func=_cmd_requirements)

    profiles = sub.add_parser("profiles", help="list the requirement profiles")
    profiles.set_defaults(func=_cmd_profiles)

    verify = sub.add_parser("verify", help="verify a signed results.json")
    verify.add_argument("file", metavar="FILE")
    verify.add_argument("--key", metavar="PUBKEY", help="the publisher's public key (PEM or hex) the signer must match")
    verify.set_defaults(func=_cmd_verify)

    diff = sub.add_parser("diff", help="verdict changes between two results.json files")
    diff.add_argument("old", metavar="A")
    diff.add_argument("new", metavar="B")
    diff.add_argument("--fail-on-regression", action="store_true", help="exit 1 when a verdict got worse")
    diff.set_defaults(func=_cmd_diff)

    selftest = sub.add_parser("selftest", help="run the suite against the reference SUT clean and once per fault: "
                                                 "the kill matrix (with --variants: the variant matrix)")
    selftest.add_argument("--json", action="store_true", help="print the matrix as JSON (progress goes to stderr)")
    selftest.add_argument("--fault", action="append", metavar="NAME", help="only this fault (repeatable)")
    selftest.add_argument("--scope", choices=("suite", "module", "targeted"), default="suite",
                          help="checks run per fault: suite (all, default), module (the modules of the checks judging "
                               "its requirements), targeted (only those checks: fast, no precision figure)")
    selftest.add_argument("-j", dest="parallel", type=int, default=2, metavar="RUNS",
                          help="suite runs at a time (default 2)")
    selftest.add_argument("--repeat", type=int, default=0, metavar="N",
                          help="instead of the matrix: the clean suite with N seeds (from --seed), then the first "
                               "seed again; reports verdict differences (the goal is none) and whether it reproduced")
    selftest.add_argument("--variants", action="store_true",
                          help="instead of the kill matrix: the variant matrix (specificity): the suite with every "
                               "allowed variant on in one run, false verdicts attributed to variants by reruns")
    selftest.add_argument("--variant", action="append", metavar="NAME",
                          help="the variant matrix of only this allowed variant (repeatable; implies --variants)")
    selftest.add_argument("--mutants", action="store_true",
                          help="instead of the kill matrix: generated mutants of the reference peer's rule modules, "
                               "each run (in the SUT only) with the checks judging its requirements "
                               "(docs/mutation.md); the strict score against conformance/mutant-triage.yaml")
    selftest.add_argument("--sample", type=int, default=None, metavar="N",
                          help="with --mutants: a seeded sample of N mutants (by --seed; default: all of them)")
    selftest.add_argument("--module", action="append", metavar="M",
                          help="with --mutants: only this rule module, e.g. reference_peer.room.hub_members (repeatable)")
    selftest.add_argument("--mutant", action="append", metavar="ID",
                          help="with --mutants: only this mutant (module:function:operator:n; repeatable), e.g. to "
                               "confirm a triage entry")
    selftest.add_argument("--mutant-timeout", type=float, default=300.0, metavar="SECONDS",
                          help="with --mutants: time bound of one mutant's run (default 300)")
    selftest.add_argument("--no-reach", action="store_true",
                          help="with --mutants: run every mutant, even those on code the SUT never runs in a clean "
                               "run of the checks (by default one coverage-measured clean run skips them: they survive)")
    selftest.add_argument("--resume", action="store_true",
                          help="with --mutants: reuse the results recorded in --out under the same code; run the rest")
    selftest.add_argument("--budget", type=float, default=None, metavar="MINUTES",
                          help="with --mutants: start no mutant after this many minutes (the report covers those "
                               "that ran, a seeded random sample; --resume runs the rest later)")
    selftest.add_argument("--seed", type=int, default=1, metavar="N", help="seed of every run (default 1)")
    selftest.add_argument("--out", default="mimi-selftest", metavar="DIR",
                          help="output directory: one folder per run, selftest.json (default: mimi-selftest)")
    selftest.set_defaults(func=_cmd_selftest)

    coverage = sub.add_parser("coverage", help="which checks judge each profile requirement (the coverage manifest)")
    coverage.add_argument("--write", action="store_true", help="regenerate profiles/coverage/coverage.yaml")
    coverage.add_argument("--check", action="store_true", help="exit 1 when the checked-in manifest is stale")
    coverage.set_defaults(func=_cmd_coverage)

    operations = sub.add_parser("operations", help="which checks need each control operation (the table of "
                                "docs/control-api.md, from the checks' operations markers)")
    operations.add_argument("--write", action="store_true", help="rewrite the generated block of docs/control-api.md")
    operations.add_argument("--check", action="store_true",
                            help="exit 1 when the block is stale or a check's marker is missing or wrong")
    operations.add_argument("--suggest", metavar="CHECKS_JSONL",
                            help="print the markers a run's records (OUT/checks.jsonl) call for, per check function")
    operations.set_defaults(func=_cmd_operations)

    baseline = sub.add_parser("baseline", help="vendor baselines of expected failures")
    baseline_sub = baseline.add_subparsers(dest="baseline_command", required=True, parser_class=_OneLineErrorParser)
    baseline_init = baseline_sub.add_parser("init", help="write a baseline expecting every failing check of a run")
    baseline_init.add_argument("results", metavar="RESULTS_JSON", help="the run's results.json")
    baseline_init.add_argument("-o", "--output", default="mimi-baseline.yaml", metavar="FILE",
                               help="the baseline to write (default: mimi-baseline.yaml)")
    baseline_init.add_argument("--force", action="store_true", help="overwrite FILE when it exists")
    baseline_init.set_defaults(func=_cmd_baseline_init)

    keygen = sub.add_parser("keygen", help="write an Ed25519 key pair: OUT (private) and OUT.pub")
    keygen.add_argument("out", metavar="OUT")
    keygen.add_argument("--force", action="store_true", help="overwrite existing key files")
    keygen.set_defaults(func=_cmd_keygen)

    completion = sub.add_parser("completion", help="print a shell completion script (bash, zsh or tcsh)")
    completion.add_argument("shell", choices=("bash", "zsh", "tcsh"))
    completion.set_defaults(func=_cmd_completion)

    pki = sub.add_parser("pki", help="the suite PKI: the CA the suite's reference peers use, kept across runs")
    pki_sub = pki.add_subparsers(dest="pki_command", required=True, parser_class=_OneLineErrorParser)
    pki_init = pki_sub.add_parser("init", help="make the suite CA in DIR (ca.pem, ca.key), or reuse the one there")
    pki_init.add_argument("dir", metavar="DIR")
    pki_init.add_argument("--force", action="store_true", help="make a new CA even when DIR holds one")
    pki_init.set_defaults(func=_cmd_pki_init)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 for --help; keep that contract explicit
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:  # the run's pytest process group is already stopped (conformance.run)
        _error("interrupted")
        return 1


if __name__ == "__main__":
    sys.exit(main())
