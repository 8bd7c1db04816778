"""Peer configuration and the ``reference-peer`` command."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from transport_helpers import client_for, run

from reference_peer import cli
from reference_peer.config import ConfigError, load_config, parse_config
from reference_peer.pki import subject_alt_dns_names


def _document(pki, **overrides) -> dict:
    document = {
        "listen": {"address": "127.0.0.1", "port": 0},
        "tls": {"ca": str(pki.ca_cert)},
        "providers": [
            {"domain": "a.example", "cert": str(pki.pair("a.example").cert), "key": str(pki.pair("a.example").key)},
            {"domain": "c.example", "cert": str(pki.pair("c.example").cert), "key": str(pki.pair("c.example").key)},
        ],
        "limits": {"max_body_bytes": 2048, "body_read_timeout": 1.5},
        "storage": {"path": "state"},
        "consent_mode": "consent-first",
        "faults": ["duplicate-notify-refused"],
    }
    document.update(overrides)
    return document


def test_a_full_config_loads_with_relative_paths_resolved_against_its_file(pki, tmp_path):
    document = _document(pki)
    document["providers"][0]["cert"] = str(Path(document["providers"][0]["cert"]).relative_to(pki.directory))
    config_dir = pki.directory
    path = config_dir / "peer-test.yaml"
    path.write_text(yaml.safe_dump(document))
    config = load_config(path)
    assert config.domains == ("a.example", "c.example")
    assert config.providers[0].cert == pki.pair("a.example").cert
    assert config.limits.max_body_bytes == 2048 and config.limits.body_read_timeout == 1.5
    assert config.storage_path == config_dir / "state"
    assert config.consent_mode == "consent-first"
    assert config.faults == ("duplicate-notify-refused",)
    assert config.listen_port == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(extra=1), r"unknown key\(s\) \['extra'\]"),
        (lambda d: d["listen"].update(prot=1), r"listen: unknown key"),
        (lambda d: d.pop("providers"), r"missing key\(s\) \['providers'\]"),
        (lambda d: d.update(providers=[]), r"providers: expected a non-empty list"),
        (lambda d: d["providers"][0].update(domain="not a domain"), r"providers\[0\]\.domain"),
        (lambda d: d["providers"][1].update(domain="A.example"), r"configured twice"),
        (lambda d: d["providers"][0].update(cert="/nonexistent/a.pem"), r"providers\[0\]\.cert: file not found"),
        (lambda d: d["tls"].update(ca="missing.pem"), r"tls\.ca: file not found"),
        (lambda d: d["listen"].update(port=70000), r"listen\.port"),
        (lambda d: d["listen"].update(port="8443"), r"listen\.port: expected an integer"),
        (lambda d: d["limits"].update(max_body_bytes=-1), r"limits\.max_body_bytes"),
        (lambda d: d["limits"].update(body_read_timeout=True), r"limits\.body_read_timeout"),
        (lambda d: d.update(consent_mode="lenient"), r"consent_mode: expected one of"),
        (lambda d: d.update(faults="x"), r"faults: expected a list"),
        (lambda d: d.update(faults=["Bad Name"]), r"faults\[0\]"),
        (lambda d: d.update(faults=["x", "x"]), r"listed twice"),
        (lambda d: d.update(storage={"path": 3}), r"storage\.path"),
    ],
)
def test_invalid_configs_name_the_offending_key(pki, change, message):
    document = _document(pki)
    change(document)
    with pytest.raises(ConfigError, match=message):
        parse_config(document, pki.directory)


def test_a_config_that_is_not_yaml_or_not_there_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("providers: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(tmp_path / "list.yaml")


def test_pki_command_writes_a_ca_and_one_certificate_per_domain(tmp_path, capsys):
    out = tmp_path / "pki"
    assert cli.main(["pki", "--out", str(out), "--domain", "a.example", "--domain", "B.example"]) == 0
    assert {p.name for p in out.iterdir()} == {"ca.pem", "ca.key", "a.example.pem", "a.example.key", "b.example.pem",
                                              "b.example.key"}
    ca = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    leaf = x509.load_pem_x509_certificate((out / "b.example.pem").read_bytes())
    leaf.verify_directly_issued_by(ca)
    assert subject_alt_dns_names(leaf) == ["b.example"]
    assert stat.S_IMODE((out / "b.example.key").stat().st_mode) == 0o600
    assert "b.example" in capsys.readouterr().out


def test_pki_command_rejects_a_bad_domain(tmp_path, capsys):
    assert cli.main(["pki", "--out", str(tmp_path), "--domain", "not_a_domain"]) == 2
    assert "not a domain name" in capsys.readouterr().err


def test_serve_command_reports_config_errors_with_exit_code_2(tmp_path, capsys):
    (tmp_path / "peer.yaml").write_text("tls: {}\n")
    assert cli.main(["serve", "--config", str(tmp_path / "peer.yaml")]) == 2
    assert "configuration error" in capsys.readouterr().err


def test_serve_runs_the_configured_providers_until_stopped(pki):
    config = parse_config(_document(pki), pki.directory)

    async def body():
        stop = asyncio.Event()
        ready: asyncio.Future = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(cli.serve(config, stop=stop, on_ready=ready.set_result))
        try:
            server = await ready
            assert server.limits.max_body_bytes == 2048
            async with client_for(pki) as client:
                for domain in ("a.example", "c.example"):
                    directory = await client.fetch_directory(server.authority(domain))
                    assert json.loads(json.dumps(directory))["update"].startswith(f"https://{domain}:")
                answer = await client.request("POST", f"https://{server.authority('a.example')}/v1/notify/r", b"x")
                # The reference peer serves /notify: a roomId that is no mimi:// room URI is malformed.
                assert answer.status == 400
        finally:
            stop.set()
            await task
        assert server.port is not None

    run(body())


def test_the_console_script_serves_and_stops_cleanly_on_sigterm(pki, tmp_path):
    import re
    import select
    import signal
    import subprocess
    import sys
    import time

    script = Path(sys.executable).parent / "reference-peer"
    assert script.exists(), "pip install -e . should have installed the reference-peer console script"
    config = tmp_path / "peer.yaml"
    config.write_text(yaml.safe_dump(_document(pki, providers=_document(pki)["providers"][:1])))
    process = subprocess.Popen([str(script), "serve", "--config", str(config)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        line = ""
        while not line.startswith("serving"):  # printed once the server is listening
            remaining = deadline - time.monotonic()
            assert remaining > 0, "reference-peer did not report listening within 15 s"
            readable, _, _ = select.select([process.stdout], [], [], remaining)
            if readable:
                line = process.stdout.readline()
                assert line or process.poll() is None, process.stderr.read()
        match = re.match(r"serving a\.example at https://(a\.example:\d+) ", line)
        assert match, line

        async def fetch():
            async with client_for(pki) as client:
                return await client.fetch_directory(match.group(1))

        assert set(run(fetch())) >= {"notify", "update", "keyMaterial"}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()
