"""The suite PKI (``mimi-conformance pki init``): one CA kept across runs, its key never handed out."""

from __future__ import annotations

import stat

import pytest
from cryptography import x509

from conformance import cli
from conformance.harness.suite_pki import SuitePki, SuitePkiError
from reference_peer.pki import subject_alt_dns_names


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_makes_a_ca_with_a_private_key_and_a_readme(tmp_path):
    pki = SuitePki.init(tmp_path / "suite")
    assert not pki.reused
    assert {p.name for p in pki.directory.iterdir()} == {"ca.pem", "ca.key", "README.txt"}
    assert _mode(pki.directory / "ca.key") == 0o600
    assert pki.ca_cert == pki.directory / "ca.pem"
    assert pki.leaf_dir == pki.directory / "leaves"
    assert x509.load_pem_x509_certificate(pki.ca_cert.read_bytes()) == pki.ca.cert
    readme = (pki.directory / "README.txt").read_text()
    assert "ca.pem" in readme and "ca.key" in readme and "Never give it to the server" in readme


def test_init_twice_reuses_and_force_renews(tmp_path):
    first = SuitePki.init(tmp_path)
    again = SuitePki.init(tmp_path)
    assert again.reused and again.ca.cert == first.ca.cert
    leaf, _ = again.issue("hub.ref.test")
    renewed = SuitePki.init(tmp_path, force=True)
    assert not renewed.reused and renewed.ca.cert != first.ca.cert
    assert not leaf.exists()  # leaves of the replaced CA go with it
    assert _mode(tmp_path / "ca.key") == 0o600


def test_leaves_and_bundles_go_to_the_leaf_dir_only(tmp_path):
    SuitePki.init(tmp_path / "suite")
    before = sorted(p.name for p in (tmp_path / "suite").iterdir())
    pki = SuitePki.load(tmp_path / "suite", tmp_path / "run" / "pki")
    cert, key = pki.issue("hub.ref.test")
    bundle = pki.trust_bundle("trust-mimi-client")
    assert {cert.parent, key.parent, bundle.parent} == {tmp_path / "run" / "pki"}
    assert sorted(p.name for p in (tmp_path / "suite").iterdir()) == before
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    leaf.verify_directly_issued_by(pki.ca.cert)
    assert subject_alt_dns_names(leaf) == ["hub.ref.test"]
    assert _mode(key) == 0o600
    assert pki.issue("hub.ref.test") == (cert, key)  # made once


def test_publish_trust_writes_the_ca_certificate_and_no_key(tmp_path):
    pki = SuitePki.init(tmp_path / "suite")
    published = pki.publish_trust(tmp_path / "sut")
    assert published == tmp_path / "sut" / "suite-ca.pem"
    text = published.read_text()
    assert "PRIVATE KEY" not in text and text.count("BEGIN CERTIFICATE") == 1
    assert x509.load_pem_x509_certificate(text.encode()) == pki.ca.cert
    assert [p.name for p in (tmp_path / "sut").iterdir()] == ["suite-ca.pem"]


def test_create_keeps_the_api_the_harness_uses(tmp_path):
    pki = SuitePki.create(tmp_path, ["hub.ref.test", "follower.ref.test"])
    assert pki.leaf_dir == pki.directory == tmp_path
    assert set(pki.certs) == {"hub.ref.test", "follower.ref.test"}
    assert pki.issue("sut.example")[0] == tmp_path / "sut.example.pem"
    assert pki.trust_bundle("both", pki.ca_cert).read_text().count("BEGIN CERTIFICATE") == 2


def _break(directory, what: str) -> None:
    if what == "absent":
        return
    if what == "no key":
        (directory / "ca.key").unlink()
    elif what == "no cert":
        (directory / "ca.pem").unlink()
    elif what == "not pem":
        (directory / "ca.pem").write_text("hello\n")
    elif what == "key not pem":
        (directory / "ca.key").write_text("hello\n")
    elif what == "other key":
        other = SuitePki.init(directory / "other")
        (directory / "ca.key").write_bytes((other.directory / "ca.key").read_bytes())
    elif what == "leaf as ca":
        pki = SuitePki.load(directory, directory / "leaves")
        cert, key = pki.issue("hub.ref.test")
        (directory / "ca.pem").write_bytes(cert.read_bytes())
        (directory / "ca.key").write_bytes(key.read_bytes())


@pytest.mark.parametrize(
    "what, message",
    [
        ("absent", r"there is no suite PKI in .*: run `mimi-conformance pki init .*`\.$"),
        ("no key", r"ca\.key is missing: run `mimi-conformance pki init .* --force`"),
        ("no cert", r"ca\.pem is missing: run `mimi-conformance pki init .* --force`"),
        ("not pem", r"ca\.pem is not a PEM certificate: run"),
        ("key not pem", r"ca\.key is not an unencrypted PEM private key: run"),
        ("other key", r"ca\.key does not belong to .*ca\.pem: run"),
        ("leaf as ca", r"ca\.pem is not a CA certificate: run"),
    ],
)
def test_load_errors_are_one_sentence_naming_the_fix(tmp_path, what, message):
    directory = tmp_path / "suite"
    if what != "absent":
        SuitePki.init(directory)
    _break(directory, what)
    with pytest.raises(SuitePkiError, match=message) as caught:
        SuitePki.load(directory, tmp_path / "leaves")
    assert "\n" not in str(caught.value) and str(caught.value).endswith(".")


def test_init_refuses_half_a_pki_without_force(tmp_path):
    SuitePki.init(tmp_path)
    (tmp_path / "ca.key").unlink()
    with pytest.raises(SuitePkiError, match=r"holds ca\.pem without ca\.key: run `mimi-conformance pki init .* --force`"):
        SuitePki.init(tmp_path)
    assert not SuitePki.init(tmp_path, force=True).reused


# --- the command -----------------------------------------------------------------------------------


def test_pki_init_command_prints_the_paths_and_what_to_give_the_server(tmp_path, capsys):
    directory = tmp_path / "suite"
    assert cli.main(["pki", "init", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "made a new CA" in out
    assert f"give your server {directory / 'ca.pem'} to trust; keep {directory / 'ca.key'} private" in out
    assert cli.main(["pki", "init", str(directory)]) == 0
    assert "reused" in capsys.readouterr().out
    assert cli.main(["pki", "init", str(directory), "--force"]) == 0
    assert "made a new CA" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["a file", "under a file", "half a pki"])
def test_pki_init_command_exits_2_with_one_line(tmp_path, capsys, case):
    target = tmp_path / "suite"
    if case == "a file":
        target.write_text("x")
    elif case == "under a file":  # cannot be made: its parent is a file (unwritable even for root)
        (tmp_path / "file").write_text("x")
        target = tmp_path / "file" / "suite"
    else:
        SuitePki.init(target)
        (target / "ca.key").unlink()
    assert cli.main(["pki", "init", str(target)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mimi-conformance: pki init: ")
