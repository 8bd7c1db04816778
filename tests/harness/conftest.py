"""Harness tests run checks in-process with pytester, which restores sys.modules after each run.
A module first imported inside such a run is imported afresh by the next one, and `cryptography`'s
Rust bindings refuse the second copy of its classes ("curve must be an EllipticCurve instance").
Importing what the checks use here keeps one copy for the whole session."""

import pytest

import conformance.harness.connectors  # noqa: F401
import conformance.harness.mimi  # noqa: F401
import conformance.plugin  # noqa: F401
import reference_peer.pki  # noqa: F401
import reference_peer.server.client  # noqa: F401
import reference_peer.wire.directory  # noqa: F401


@pytest.fixture(scope="session")
def reference_peer_serves(tmp_path_factory) -> str | None:
    """None when `reference-peer serve` works in this tree, else why not (tests needing it skip)."""
    from conformance.harness.connectors import REFERENCE_HUB_DOMAIN, ReferencePeerProcess, RunEnvironment, SuitePki
    from conformance.verdicts import SutMisbehaviour

    directory = tmp_path_factory.mktemp("probe")
    env = RunEnvironment(directory, SuitePki.create(directory / "pki", [REFERENCE_HUB_DOMAIN]))
    peer = ReferencePeerProcess("probe", [REFERENCE_HUB_DOMAIN], env, trust=env.pki.ca_cert, startup_timeout=30)
    try:
        peer.start()
    except SutMisbehaviour as exc:
        return str(exc)
    finally:
        peer.stop()
    return None
