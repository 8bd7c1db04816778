"""The subcommands that need no run: profiles, requirements (and --diff), verify, diff, keygen, and the
command's own usage errors. Exit codes 0/1/2 and outputs, on synthetic results files."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from cli_helpers import HTTPS_URLS, WELL_KNOWN, check, synthetic_results, write_results

from conformance.catalogue import PACKAGE_REQUIREMENTS_DIR
from conformance.cli import main
from reports.model import Verdict
from reports.signing import generate_key, save_private_key, save_public_key, sign

PROTOCOL = "draft-ietf-mimi-protocol-06"


def run_cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --------------------------------------------------------------------------------------------
# The command itself


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["diff", "only-one.json"], ["verify"]])
def test_usage_errors_of_the_command_exit_2_with_one_line(capsys, args):
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("mimi-conformance")


def test_help_exits_0(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for command in ("run", "requirements", "profiles", "verify", "diff", "keygen"):
        assert command in out


# --------------------------------------------------------------------------------------------
# profiles, requirements


def test_profiles_lists_every_profile_with_its_role(capsys):
    code, out, _ = run_cli(capsys, "profiles")
    assert code == 0
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()}
    assert rows == {
        "follower-core-06": "follower",
        "hub-core-06": "hub",
        "consent-immediate": "any",
        "consent-quarantine": "any",
        "consent-first": "any",
        "privacy-minimal-metadata-06": "hub",
        "multi-device": "hub",
        "portability-experimental": "hub",
        "portability-experimental-follower": "follower",
    }


def test_requirements_of_a_profile_and_an_unknown_profile(capsys):
    code, out, _ = run_cli(capsys, "requirements", "--profile", "follower-core-06")
    assert code == 0
    ids = {line.split()[0] for line in out.splitlines()}
    assert "PROTO-DIRECTORY-FOLLOWER-ENDPOINTS" in ids and "PROTO-DIRECTORY-HUB-ENDPOINTS" not in ids
    code, _, err = run_cli(capsys, "requirements", "--profile", "nope")
    assert code == 2 and "unknown profile 'nope'" in err


def test_requirements_diff_of_a_document_with_itself_reports_no_change(capsys):
    code, out, _ = run_cli(capsys, "requirements", "--diff", PROTOCOL, PROTOCOL)
    assert code == 0
    assert out.strip() == f"no requirement changed between {PROTOCOL} and {PROTOCOL}"


def test_requirements_diff_between_two_catalogue_directories(tmp_path, capsys):
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(PACKAGE_REQUIREMENTS_DIR, old)
    shutil.copytree(PACKAGE_REQUIREMENTS_DIR, new)
    path = new / f"{PROTOCOL}.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    changed = document["requirements"][0]
    changed["text"] = "A changed sentence that MUST differ."
    added = dict(document["requirements"][1], id="PROTO-TRANSPORT-ADDED-FOR-TEST")
    document["requirements"].append(added)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    code, out, err = run_cli(capsys, "requirements", "--diff", str(old), str(new))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"requirements {old} -> {new}: 1 added, 0 removed, 1 changed"
    assert any(line.startswith("+ PROTO-TRANSPORT-ADDED-FOR-TEST ") for line in lines)
    assert f"~ {changed['id']}" in lines


@pytest.mark.parametrize(
    "args, message",
    [
        (["--diff", "draft-nope-00", PROTOCOL], "neither a catalogue directory nor a document ID"),
        (["--diff", PROTOCOL, PROTOCOL, "--profile", "hub-core-06"], "cannot be combined"),
    ],
)
def test_requirements_diff_usage_errors(capsys, args, message):
    code, _, err = run_cli(capsys, "requirements", *args)
    assert code == 2
    assert message in err


def test_requirements_diff_of_an_invalid_catalogue_directory_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "broken").mkdir()
    code, _, err = run_cli(capsys, "requirements", "--diff", str(tmp_path / "broken"), PROTOCOL)
    assert code == 2
    assert "no requirement catalogue files" in err


# --------------------------------------------------------------------------------------------
# keygen, verify


def test_keygen_writes_a_key_pair_and_refuses_to_overwrite_it(tmp_path, capsys):
    key = tmp_path / "k.pem"
    code, out, _ = run_cli(capsys, "keygen", str(key))
    assert code == 0 and "key id" in out
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert (tmp_path / "k.pem.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert key.stat().st_mode & 0o077 == 0
    before = key.read_bytes()
    code, _, err = run_cli(capsys, "keygen", str(key))
    assert code == 2 and "already exist" in err
    assert key.read_bytes() == before
    assert run_cli(capsys, "keygen", str(key), "--force")[0] == 0
    assert key.read_bytes() != before


@pytest.fixture
def signed_results(tmp_path):
    key = generate_key()
    save_private_key(key, tmp_path / "key.pem")
    save_public_key(key, tmp_path / "key.pub")
    results = sign(synthetic_results([check("c1", Verdict.PASS)]), key)
    return write_results(tmp_path / "results.json", results), tmp_path / "key.pub"


def test_verify_accepts_a_signed_file_with_and_without_the_publishers_key(signed_results, capsys):
    path, public_key = signed_results
    code, out, _ = run_cli(capsys, "verify", str(path))
    assert code == 0 and "valid signature by key" in out
    assert run_cli(capsys, "verify", str(path), "--key", str(public_key))[0] == 0


def test_verify_rejects_a_changed_file_an_unsigned_file_and_a_foreign_key(signed_results, tmp_path, capsys):
    path, _ = signed_results
    data = json.loads(path.read_text())
    data["seed"] = 8
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(data))
    code, out, _ = run_cli(capsys, "verify", str(tampered))
    assert code == 1 and "changed after signing" in out
    unsigned = write_results(tmp_path / "unsigned.json", synthetic_results([check("c1", Verdict.PASS)]))
    code, out, _ = run_cli(capsys, "verify", str(unsigned))
    assert code == 1 and "not signed" in out
    save_public_key(generate_key(), tmp_path / "other.pub")
    code, out, _ = run_cli(capsys, "verify", str(path), "--key", str(tmp_path / "other.pub"))
    assert code == 1 and "not a trusted key" in out


def test_verify_usage_errors(signed_results, tmp_path, capsys):
    path, _ = signed_results
    code, _, err = run_cli(capsys, "verify", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read" in err
    (tmp_path / "garbage.pub").write_text("not a key")
    code, _, err = run_cli(capsys, "verify", str(path), "--key", str(tmp_path / "garbage.pub"))
    assert code == 2 and "Ed25519 public key" in err


# --------------------------------------------------------------------------------------------
# diff


@pytest.fixture
def two_runs(tmp_path):
    old = synthetic_results([check("c1", Verdict.PASS, (WELL_KNOWN,)), check("c2", Verdict.PASS, (HTTPS_URLS,))])
    new = synthetic_results([check("c1", Verdict.FAIL, (WELL_KNOWN,)), check("c2", Verdict.PASS, (HTTPS_URLS,))])
    return write_results(tmp_path / "old.json", old), write_results(tmp_path / "new.json", new)


def test_diff_reports_the_verdicts_that_moved_and_exits_0(two_runs, capsys):
    old, new = two_runs
    code, out, _ = run_cli(capsys, "diff", str(old), str(new))
    assert code == 0
    assert "  c1: PASS -> FAIL  (regression)" in out.splitlines()
    assert "c2" not in out
    assert "  in hub-core-06: PASS -> FAIL" in out.splitlines()


def test_diff_fails_on_a_regression_only_when_asked(two_runs, capsys):
    old, new = two_runs
    assert run_cli(capsys, "diff", str(old), str(new), "--fail-on-regression")[0] == 1
    assert run_cli(capsys, "diff", str(new), str(old), "--fail-on-regression")[0] == 0
    code, out, _ = run_cli(capsys, "diff", str(old), str(old), "--fail-on-regression")
    assert code == 0 and out.strip() == "no verdict changed"


def test_diff_of_a_file_that_is_not_results_is_a_usage_error(two_runs, tmp_path, capsys):
    old, _ = two_runs
    (tmp_path / "not-results.json").write_text('{"hello": 1}')
    for other in ("not-results.json", "missing.json"):
        code, _, err = run_cli(capsys, "diff", str(old), str(tmp_path / other))
        assert code == 2 and other in err


# --------------------------------------------------------------------------------------------
# results schema 1.x files (one verdict per check) still verify and diff


def _as_schema_1(path, key=None):
    """Rewrite ``path`` as schema 1.1.0 wrote it (no per-requirement outcomes), signed with ``key``."""
    from reports.signing import key_id, raw_public_key, signed_bytes

    data = json.loads(path.read_text())
    data.pop("signature", None)
    data["schema_version"] = "1.1.0"
    data["$schema"] = data["$schema"].rsplit("/", 1)[0] + "/1.1.0"
    for item in data["checks"]:
        del item["outcomes"]
    for profile in data["profiles"]:
        del profile["counts"]["requirements_not_reached"]
    for req in data["requirements"]:
        req.pop("derived_from", None)
    if key is not None:
        data["signature"] = {"algorithm": "Ed25519", "canonicalization": "json-sorted-keys-compact-utf8",
                             "public_key": raw_public_key(key).hex(), "key_id": key_id(key),
                             "value": key.sign(signed_bytes(data, "json-sorted-keys-compact-utf8")).hex()}  # fmt: skip
    path.write_text(json.dumps(data))
    return path


def test_verify_accepts_a_signed_schema_1_file(tmp_path, capsys):
    key = generate_key()
    path = write_results(tmp_path / "old.json", synthetic_results([check("c1", Verdict.FAIL)]))
    _as_schema_1(path, key)
    code, out, _ = run_cli(capsys, "verify", str(path))
    assert code == 0 and "valid signature by key" in out, out


def test_diff_between_a_schema_1_file_and_a_schema_2_file(two_runs, capsys):
    old, new = two_runs
    _as_schema_1(old)
    code, out, _ = run_cli(capsys, "diff", str(old), str(new), "--fail-on-regression")
    assert code == 1
    assert "  c1: PASS -> FAIL  (regression)" in out.splitlines()
    assert "c2" not in out
