"""Running the adapter kit: :func:`serve` (for a vendor who embeds it in an asyncio program) and
:func:`main`, the command line ``python -m conformance.adapterkit``::

    python -m conformance.adapterkit --transport MODULE:CLASS [--transport-arg K=V ...]
        --listen HOST:PORT --state DIR [--token TOKEN]

``MODULE:CLASS`` is imported and called with the ``--transport-arg`` pairs as keyword arguments
(strings); the result must be a :class:`~reference_peer.kit.transport.Transport`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from ..control.app import make_control_app
from .backend import KitBackend
from .transport import Transport

log = logging.getLogger(__name__)


async def serve(transport: Transport, *, host: str = "127.0.0.1", port: int = 0, state_dir: str | Path,
                token: str | None = None, started: asyncio.Future | None = None) -> None:
    """Serve the control API for ``transport`` until cancelled. ``started`` (optional) gets the bound
    ``(host, port)`` once the server listens (useful with ``port=0``)."""
    backend = KitBackend(transport, state_dir)
    runner = web.AppRunner(make_control_app(backend, token=token))
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][:2] if runner.addresses else (host, port)
        await backend.start()
        print(f"adapter kit serving {transport.domain} control API at http://{bound[0]}:{bound[1]}", flush=True)
        if started is not None and not started.done():
            started.set_result(tuple(bound))
        await asyncio.Event().wait()  # until cancelled
    finally:
        await backend.close()
        await runner.cleanup()


def load_transport(spec: str, pairs: Sequence[str] = ()) -> Transport:
    """``MODULE:CLASS`` called with ``K=V`` pairs as keyword arguments."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"--transport: expected MODULE:CLASS, got {spec!r}")
    arguments = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--transport-arg: expected K=V, got {pair!r}")
        arguments[key.replace("-", "_")] = value
    factory = getattr(importlib.import_module(module_name), attribute)
    transport = factory(**arguments)
    if not isinstance(transport, Transport):
        raise TypeError(f"{spec} made a {type(transport).__name__}, not a Transport")
    return transport


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.adapterkit",
                                     description="The SUT control API for a MIMI server, on a vendor's Transport.")
    parser.add_argument("--transport", required=True, metavar="MODULE:CLASS")
    parser.add_argument("--transport-arg", action="append", default=[], metavar="K=V")
    parser.add_argument("--listen", required=True, type=_listen, metavar="HOST:PORT")
    parser.add_argument("--state", required=True, metavar="DIR")
    parser.add_argument("--token", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        transport = load_transport(args.transport, args.transport_arg)
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        print(f"adapter kit: {exc}", file=sys.stderr)
        return 2
    host, port = args.listen
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(transport, host=host, port=port, state_dir=args.state, token=args.token))
    return 0


__all__ = ["load_transport", "main", "serve"]
