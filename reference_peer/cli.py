"""``reference-peer``: run the reference MIMI provider, or make a test PKI for it.

    reference-peer pki --out DIR --domain a.example --domain b.example
    reference-peer serve --config peer.yaml
    reference-peer faults | variants | steps    (-v for descriptions)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence

from aiohttp import web

from reference_peer.config import ConfigError, PeerConfig, load_config
from reference_peer.control.app import make_control_app
from reference_peer.control.backend import ReferenceBackend
from reference_peer.control.introspection import add_introspection_routes
from reference_peer.faults import REGISTRY as FAULTS
from reference_peer.faults import VARIANTS, overrides_for
from reference_peer.overrides import STEPS, Step
from reference_peer.peer import ReferenceProvider, providers_from_config
from reference_peer.pki import DEFAULT_LEAF_DAYS, CertificateAuthority, write_test_pki
from reference_peer.server.names import normalize_domain
from reference_peer.server.traffic import HANDLER_CLOCK
from reference_peer.server.transport import MimiServer

ORPHAN_POLL_SECONDS = 0.5

log = logging.getLogger("reference_peer")


@web.middleware
async def _timed_control(request: web.Request, handler):
    started = time.perf_counter()
    try:
        return await handler(request)
    finally:
        HANDLER_CLOCK.add("control", time.perf_counter() - started)


async def serve(
    config: PeerConfig,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[MimiServer], None] | None = None,
    on_control_ready: Callable[[str, str], None] | None = None,
) -> None:
    """Serve ``config`` until ``stop`` is set (or SIGINT/SIGTERM when run from the command line): the
    MIMI endpoints of every configured provider, their outbox workers, and one control API listener
    per provider (``on_control_ready(domain, url)`` once each listens)."""
    stop = stop or asyncio.Event()
    if config.faults:
        log.warning("deliberate faults switched on: %s", ", ".join(config.faults))
    if config.variants:
        log.warning("allowed variants switched on: %s", ", ".join(config.variants))
    overrides = overrides_for((*config.faults, *config.variants))
    providers = providers_from_config(config, overrides)
    server = MimiServer(
        [p.transport for p in providers], config.ca, host=config.listen_address, port=config.listen_port,
        limits=config.limits, overrides=overrides, advertise_port=config.advertise_port,
    )
    runners: list[web.AppRunner] = []
    started: list[ReferenceProvider] = []
    try:
        await server.start()
        for provider in providers:
            await provider.start()
            started.append(provider)
        controls = []
        for index, provider in enumerate(providers):
            app = make_control_app(ReferenceBackend(provider), token=config.control.token)
            add_introspection_routes(app, provider, server)
            app.middlewares.append(_timed_control)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            runners.append(runner)
            port = config.control.port + index if config.control.port else 0
            site = web.TCPSite(runner, config.control.address, port)
            await site.start()
            bound = runner.addresses[0][1]
            controls.append((provider.domain, f"http://{config.control.address}:{bound}"))
        if on_ready is not None:
            on_ready(server)
        if on_control_ready is not None:
            for domain, url in controls:
                on_control_ready(domain, url)
        await stop.wait()
    finally:
        print(HANDLER_CLOCK.line(), flush=True)
        # Listeners first, so that no request reaches a provider whose state is closed.
        for runner in runners:
            await runner.cleanup()
        await server.stop()
        for provider in providers:
            if provider in started:
                await provider.stop()
            else:
                provider.state.close()


async def _stop_when_orphaned(stop: asyncio.Event, parent: int) -> None:
    """``--exit-with-parent [PID]``: a peer the harness spawned in a session of its own outlives a
    harness killed outright (no teardown runs); it notices it was re-parented and stops, instead of
    idling. Given the starter's PID, a starter gone before this peer's imports finished is noticed too."""
    while not stop.is_set():
        if os.getppid() != parent:
            print("reference-peer: the process that started me is gone; stopping", file=sys.stderr, flush=True)
            stop.set()
            return
        await asyncio.sleep(ORPHAN_POLL_SECONDS)


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"reference-peer: configuration error: {exc}", file=sys.stderr)
        return 2

    def ready(server: MimiServer) -> None:
        # One parseable line per served domain, so a harness that spawns us learns the real port.
        for domain in config.domains:
            print(f"serving {domain} at {server.base_url(domain)} (listening on {server.host}:{server.port})",
                  flush=True)

    def control_ready(domain: str, url: str) -> None:
        print(f"control {domain} at {url}", flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        parent = args.exit_with_parent or os.getppid()  # 0: the flag without a PID
        watcher = asyncio.create_task(_stop_when_orphaned(stop, parent)) if args.exit_with_parent is not None else None
        try:
            await serve(config, stop=stop, on_ready=ready, on_control_ready=control_ready)
        finally:
            if watcher is not None:
                watcher.cancel()

    try:
        asyncio.run(main())
    except OSError as exc:
        print(f"reference-peer: cannot listen on {config.listen_address}:{config.listen_port}: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_pki(args: argparse.Namespace) -> int:
    try:
        domains = [normalize_domain(d) for d in args.domain]
        if args.days < 1:
            raise ValueError("--days must be at least 1")
        _, files = write_test_pki(args.out, domains, ca=CertificateAuthority.create(), days=args.days)
    except ValueError as exc:
        print(f"reference-peer: {exc}", file=sys.stderr)
        return 2
    print(f"CA certificate: {files.ca_cert}")
    print(f"CA key:         {files.ca_key}")
    for domain, provider in files.providers.items():
        print(f"{domain}: {provider.cert} {provider.key}")
    return 0


def _cmd_faults(args: argparse.Namespace) -> int:
    for fault in sorted(FAULTS.values(), key=lambda f: (f.area, f.name)):
        print(f"{fault.area:<12} {fault.name:<44} {' '.join(fault.requirements)}")
        if args.verbose:
            print(f"{'':<12} {fault.description}")
    return 0


def _cmd_variants(args: argparse.Namespace) -> int:
    for variant in sorted(VARIANTS.values(), key=lambda v: (v.area, v.name)):
        print(f"{variant.area:<12} {variant.name:<44} {variant.permitted_by}")
        if args.verbose:
            print(f"{'':<12} {variant.description}")
    return 0


def declared_steps() -> dict[str, Step]:
    """Every named step of the rule code: importing each module of reference_peer declares its steps."""
    import importlib
    import pkgutil

    import reference_peer

    for info in pkgutil.walk_packages(reference_peer.__path__, prefix="reference_peer."):
        importlib.import_module(info.name)
    return dict(STEPS)


def _cmd_steps(args: argparse.Namespace) -> int:
    """Each declared step (name, requirement IDs), then the faults and variants that depart from it
    (``+hook``: the fault gives a hook for the step, not just the departure)."""
    departing: dict[str, list[str]] = {}
    for kind, entries in (("fault", FAULTS), ("variant", VARIANTS)):
        for entry in sorted(entries.values(), key=lambda e: e.name):
            for step_name in dict.fromkeys((*entry.departs, *entry.hooks)):
                hook = "+hook" if step_name in entry.hooks else ""
                departing.setdefault(step_name, []).append(f"{kind} {entry.name}{hook}")
    steps = declared_steps()
    for name, declared in sorted(steps.items()):
        print(f"{name:<56} {' '.join(declared.requirements)}")
        if args.verbose:
            print(f"{'':<4}{declared.summary}")
        print(f"{'':<4}departed from by: {', '.join(departing.get(name, [])) or 'none'}")
    undeclared = sorted(set(departing) - set(steps))
    for name in undeclared:
        print(f"{name:<56} (not declared by any rule module)")
        print(f"{'':<4}departed from by: {', '.join(departing[name])}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reference-peer", description="The reference MIMI provider.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser("serve", help="serve MIMI over HTTPS with mutual TLS")
    serve_cmd.add_argument("--config", required=True, help="peer configuration (YAML)")
    serve_cmd.add_argument("--exit-with-parent", nargs="?", type=int, const=0, metavar="PID",
                           help="stop when the process that started this one (PID, if given) ends; the harness uses it")
    serve_cmd.set_defaults(run=_cmd_serve)

    pki_cmd = commands.add_parser("pki", help="write a test CA and one certificate per provider domain")
    pki_cmd.add_argument("--out", required=True, help="directory for the PEM files")
    pki_cmd.add_argument("--domain", action="append", required=True, help="a provider domain (repeatable)")
    pki_cmd.add_argument("--days", type=int, default=DEFAULT_LEAF_DAYS, help="provider certificate validity")
    pki_cmd.set_defaults(run=_cmd_pki)

    faults_cmd = commands.add_parser("faults", help="list the named deliberate faults (area, name, requirements)")
    faults_cmd.set_defaults(run=_cmd_faults)
    variants_cmd = commands.add_parser("variants", help="list the allowed variants (area, name, what permits it)")
    variants_cmd.set_defaults(run=_cmd_variants)
    steps_cmd = commands.add_parser(
        "steps", help="list the named rule steps (name, requirements) and the faults/variants departing from them"
    )
    steps_cmd.set_defaults(run=_cmd_steps)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        result = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit flush
    except BrokenPipeError:  # piped into `head` and closed early: not an error
        # Python's exit flush of stdout would fail again and print a warning: point stdout at devnull.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return result


if __name__ == "__main__":
    sys.exit(main())
