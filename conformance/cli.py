"""The ``mimi-conformance`` command.

Subcommands so far: ``run`` (until the harness exists it prints the catalogue and the profiles
it would score), ``requirements`` and ``profiles``. Exit codes: 0 success, 1 failure, 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter


def _cmd_requirements(args: argparse.Namespace) -> int:
    from .catalogue import load_catalogue
    from .profiles import load_profiles

    catalogue = load_catalogue()
    wanted = None
    if args.profile:
        profiles = load_profiles(catalogue)
        if args.profile not in profiles:
            print(f"unknown profile {args.profile!r}; known: {', '.join(sorted(profiles))}", file=sys.stderr)
            return 2
        wanted = set(profiles[args.profile].requirements)
    shown = [req for req in catalogue.requirements.values() if wanted is None or req.id in wanted]
    width = max((len(req.id) for req in shown), default=0)
    for req in shown:
        print(f"{req.id:<{width}}  {req.level:<8} {req.area:<12} {req.role:<8} {req.source} §{req.section}")
    return 0


def _cmd_profiles(args: argparse.Namespace) -> int:
    from .catalogue import load_catalogue
    from .profiles import load_profiles

    for profile in load_profiles(load_catalogue()).values():
        print(f"{profile.name:<32} {profile.role:<9} {len(profile.requirements):>4} requirements  {profile.title}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .catalogue import load_catalogue
    from .profiles import load_profiles

    catalogue = load_catalogue()
    print(f"Requirement catalogue: {len(catalogue.requirements)} requirements")
    per_doc = Counter(req.source for req in catalogue.requirements.values())
    for source, count in sorted(per_doc.items()):
        print(f"  {source:<48} {count:>4}")
    profiles = load_profiles(catalogue)
    print(f"Profiles: {len(profiles)}")
    for profile in profiles.values():
        print(f"  {profile.name:<32} {profile.role:<9} {len(profile.requirements):>4} requirements")
    print("The scenario harness is not built yet: nothing was run against the SUT.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mimi-conformance", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the suite against a SUT")
    run.add_argument("--sut", default="reference", help="'reference' (embedded) or a SUT manifest file")
    run.set_defaults(func=_cmd_run)
    reqs = sub.add_parser("requirements", help="list the requirement catalogue")
    reqs.add_argument("--profile", help="only the requirements of this profile")
    reqs.set_defaults(func=_cmd_requirements)
    profiles = sub.add_parser("profiles", help="list the requirement profiles")
    profiles.set_defaults(func=_cmd_profiles)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors; keep that contract explicit
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
