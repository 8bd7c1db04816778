"""The configuration keys the assembled peer adds: control listener, peer addresses, outbox retry."""

from __future__ import annotations

import pytest

from reference_peer.config import ConfigError, parse_config
from reference_peer.peer import PeerBook, providers_from_config


def document(pki, **extra):
    files = pki.providers["a.example"]
    return {
        "tls": {"ca": str(pki.ca_cert)},
        "providers": [{"domain": "a.example", "cert": str(files.cert), "key": str(files.key)}],
        **extra,
    }


def test_peer_keys_parse(pki, tmp_path):
    config = parse_config(
        document(
            pki,
            control={"address": "127.0.0.1", "port": 8480, "token": "s3cret"},
            peers={"b.example": "127.0.0.1:9443"},
            peers_file="peers.yaml",
            resolve={"b.example": "127.0.0.1"},
            asset_hosts=["assets.b.example"],
            outbox={"base_delay": 0.1, "max_delay": 2, "max_attempts": 50},
            storage={"path": "state"},
            consent_mode="quarantine",
        ),
        tmp_path,
    )
    assert (config.control.port, config.control.token) == (8480, "s3cret")
    assert config.peers == {"b.example": "127.0.0.1:9443"}
    assert config.peers_file == tmp_path / "peers.yaml"
    assert config.asset_hosts == ("assets.b.example",)
    assert (config.outbox_base_delay, config.outbox_max_delay, config.outbox_max_attempts) == (0.1, 2.0, 50)
    [provider] = providers_from_config(config)
    try:
        assert provider.options.storage_path == tmp_path / "state" / "a.example.sqlite"
        assert provider.options.consent_mode == "quarantine"
        assert provider.options.retry.max_attempts == 50
        # An address entry says where to connect; the peer is still addressed by its domain.
        assert provider.authority("b.example") == "b.example:9443"
        assert provider.options.peers.connect_address("b.example") == "127.0.0.1"
        assert provider.authority("c.example") == "c.example"  # unlisted: its own name
    finally:
        provider.state.close()


def test_peers_file_is_reread_when_it_changes(tmp_path):
    path = tmp_path / "peers.yaml"
    book = PeerBook({"b.example": "b.example:1"}, path)
    assert book.authority("b.example") == "b.example:1"
    path.write_text("b.example: b.example:2\n")
    assert book.authority("b.example") == "b.example:2"
    path.write_text("b.example: b.example:33\n")
    assert book.authority("b.example") == "b.example:33"


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"control": {"port": 70000}}, r"control\.port"),
        ({"control": {"token": ""}}, r"control\.token"),
        ({"control": {"bind": "x"}}, r"control: unknown"),
        ({"peers": {"b.example": "not a host:port"}}, r"peers\.b\.example"),
        ({"resolve": {"b.example": 3}}, r"resolve\.b\.example"),
        ({"outbox": {"max_attempts": 0}}, r"outbox\.max_attempts"),
        ({"asset_hosts": "x"}, r"asset_hosts"),
    ],
)
def test_bad_peer_keys_are_config_errors(pki, tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(document(pki, **extra), tmp_path)
