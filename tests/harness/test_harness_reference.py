"""The reference connector and the suite's own reference hub and follower, as spawned processes."""

from __future__ import annotations

import pytest
import yaml

from conformance.harness.connectors import (
    REFERENCE_FOLLOWER_DOMAIN,
    REFERENCE_HUB_DOMAIN,
    ReferencePeers,
    RunEnvironment,
    SuitePki,
    make_connector,
)
from conformance.harness.manifest import REFERENCE_SUT_DOMAIN, reference_manifest
from conformance.harness.mimi import MimiSession
from conformance.harness.recorder import Recorder


@pytest.fixture
def env(tmp_path, reference_peer_serves) -> RunEnvironment:
    if reference_peer_serves is not None:
        pytest.skip(f"reference-peer serve does not work in this tree: {reference_peer_serves}")
    return RunEnvironment(
        tmp_path, SuitePki.create(tmp_path / "pki", [REFERENCE_HUB_DOMAIN, REFERENCE_FOLLOWER_DOMAIN])
    )


def test_reference_sut_and_reference_peers_reach_each_other(env):
    connector = make_connector(reference_manifest(), env)
    sut = connector.start()
    peers = ReferencePeers(env, sut_ca=sut.ca)
    try:
        assert sut.domains == (REFERENCE_SUT_DOMAIN,)
        assert sut.base_urls[REFERENCE_SUT_DOMAIN].startswith(f"https://{REFERENCE_SUT_DOMAIN}:")
        if sut.control is None:
            assert sut.control_unavailable  # an older reference peer: the reason is stated
        else:
            assert REFERENCE_SUT_DOMAIN in sut.info["providerDomains"]
            assert "getInfo" in sut.control.supported_operations()
        peers.start()
        book = yaml.safe_load(env.peers_file.read_text())
        assert set(book) == {REFERENCE_SUT_DOMAIN, REFERENCE_HUB_DOMAIN, REFERENCE_FOLLOWER_DOMAIN}
        # The follower's identity, trusting the run CA, reads the hub's directory over mutual TLS.
        recorder = Recorder("probe")
        cert, key = env.pki.issue(REFERENCE_FOLLOWER_DOMAIN)
        session = MimiSession(REFERENCE_FOLLOWER_DOMAIN, cert, key, env.pki.ca_cert, resolve=env.resolve,
                              recorder=recorder, timeout=10)
        try:
            hub_url = peers.hub.endpoints[REFERENCE_HUB_DOMAIN].base_url
            reply = session.get(hub_url + "/.well-known/mimi-protocol-directory")
        finally:
            session.close()
        assert reply.status == 200
        assert recorder.entries[0]["request"]["headers"]["From"] == f"mimi@{REFERENCE_FOLLOWER_DOMAIN}"
    finally:
        peers.stop()
        connector.stop()
    for process in (peers.hub.process, peers.follower.process, connector.peer.process):
        assert not process.running()


def test_optional_config_sections_an_older_peer_refuses_are_left_out(tmp_path, monkeypatch):
    from conformance.harness.connectors import ReferencePeerProcess, SutStartError
    from reference_peer import config as peer_config

    env = RunEnvironment(tmp_path, SuitePki.create(tmp_path / "pki", [REFERENCE_HUB_DOMAIN]))
    seen = []

    def older_parser(document, base_dir="."):
        seen.append(sorted(document))
        unknown = sorted({"control", "peers_file"} & set(document))
        if unknown:
            raise peer_config.ConfigError(f"config: unknown key(s) {unknown}; allowed: [...]")

    monkeypatch.setattr(peer_config, "parse_config", older_parser)
    peer = ReferencePeerProcess("old", [REFERENCE_HUB_DOMAIN], env, trust=env.pki.ca_cert)
    config = peer._supported_config(tmp_path)
    assert "control" not in config and "peers_file" not in config and "resolve" in config
    assert len(seen) == 2

    def refusing_parser(document, base_dir="."):
        raise peer_config.ConfigError("limits.max_body_bytes: must be >= 0")

    monkeypatch.setattr(peer_config, "parse_config", refusing_parser)
    with pytest.raises(SutStartError, match="refused: limits.max_body_bytes"):
        peer._supported_config(tmp_path)


def test_a_reference_peer_started_again_in_the_same_folder_starts_from_empty_state(env):
    """A second run into the same output folder with the same seed makes the same names: the embedded
    processes must not meet the first run's users (409 "exists" would be a harness error)."""
    from conformance.harness.connectors import ReferencePeerProcess

    for _ in range(2):
        peer = ReferencePeerProcess("again", [REFERENCE_HUB_DOMAIN], env, trust=env.pki.ca_cert)
        peer.start()
        try:
            control = peer.control_client(REFERENCE_HUB_DOMAIN)
            assert control is not None
            try:
                created = control.call("createUser", body={"user": f"mimi://{REFERENCE_HUB_DOMAIN}/u/same"})
            finally:
                control.close()
            assert created.status == 201, created.body
        finally:
            peer.stop()
