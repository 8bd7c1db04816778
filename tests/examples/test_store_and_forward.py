"""The store-and-forward example (examples/store_and_forward/): a server that holds no MLS state, its
adapter on the adapter kit, and a full suite run against it through the ``command`` connector.

The example's folder is followed as its README says, in a temporary copy: the server's certificate is
made there (``reference-peer pki``), and the only substitutions are free ports for the manifest's fixed
ones and the repository's location for ``PYTHONPATH``. The run must have no FAIL and no HARNESS_ERROR;
every check that does not run must say which operation, feature or role it lacks; and the checks that
run are exactly ``EXPECTED_RUN`` below, so that a change of the example, the kit or the suite shows here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "store_and_forward"
BIN_DIR = Path(sys.executable).parent
ADAPTER_MAX_LINES = 300  # issue 17's done-when: the transport class stays small
RUN_TIMEOUT = 900.0
# A NOT_APPLICABLE message names what the SUT lacks: a role, a feature, an extension, a control
# operation ("the SUT's control API has no revokeConsent") or a mode its createUser refuses.
WHY_NOT_APPLICABLE = re.compile(r"\brole\b|\bfeature|\bextension\b|control API has no \w+|\bmode\b")

# The checks that run (PASS or WARN) against the example, by check ID under conformance/scenarios/:
# the follower's keyMaterial, fan-out, consent-receipt, removal and multi-device checks and the
# transport and directory checks. Every other check is NOT_APPLICABLE: the hub role, the consent-modes
# extension, the identifierQuery and hubTransfer features and the consent operations are not there.
EXPECTED_RUN: frozenset[str] = frozenset({
    "test_consent.py::test_update_consent_grant_answered_201[sut-follower]",
    "test_consent_core.py::test_cancel_matching_no_request_answered_201[sut-follower]",
    "test_consent_core.py::test_request_consent_answered_201[sut-follower]",
    "test_discovery.py::test_directory_is_served_as_json_naming_https_endpoints",
    "test_discovery.py::test_follower_directory_lists_the_follower_endpoints",
    "test_fanout.py::test_concatenated_notify_is_processed_whole[sut-follower]",
    "test_fanout.py::test_duplicate_notify_is_answered_201[sut-follower]",
    "test_fanout.py::test_duplicate_notify_is_processed_once[sut-follower]",
    "test_fanout.py::test_echo_of_own_message_is_accepted[sut-follower]",
    "test_follower_clients.py::test_new_device_follows_the_commit_of_the_hubs_stapled_proposals[sut-follower]",
    "test_follower_clients.py::test_sut_client_named_in_a_welcome_joins_the_group[sut-follower]",
    "test_follower_clients.py::test_sut_commit_gives_the_hub_a_groupinfo_of_the_new_epoch[sut-follower]",
    "test_keymaterial.py::test_badly_signed_request_gets_no_key_package[sut-follower]",
    "test_keymaterial.py::test_deleted_user_gets_no_key_material[sut-follower]",
    "test_keymaterial.py::test_exhausted_client_makes_partial_success[sut-follower]",
    "test_keymaterial.py::test_follower_asks_the_hub_for_a_third_providers_key_material[sut-follower]",
    "test_keymaterial.py::test_key_material_lists_every_client_with_a_key_package[sut-follower]",
    "test_keymaterial.py::test_key_material_whose_path_and_body_disagree_gets_no_key_package[sut-follower]",
    "test_keymaterial.py::test_key_package_is_never_handed_out_twice[sut-follower]",
    "test_keymaterial.py::test_key_packages_use_an_acceptable_cipher_suite[sut-follower]",
    "test_keymaterial.py::test_no_expired_key_package_is_handed_out[sut-follower]",
    "test_keymaterial.py::test_required_capabilities_no_client_supports_get_no_key_package[sut-follower]",
    "test_keymaterial.py::test_sut_key_material_requests_are_well_formed[sut-follower]",
    "test_keymaterial.py::test_unknown_user_gets_no_key_material[sut-follower]",
    "test_keymaterial_last_resort.py::test_key_package_served_again_is_marked_last_resort[sut-follower]",
    "test_keymaterial_last_resort.py::test_last_resort_key_package_claimed_again_is_answered[sut-follower]",
    "test_keymaterial_last_resort.py::test_last_resort_key_package_only_after_the_one_time_ones[sut-follower]",
    "test_multi_device.py::test_follower_joins_a_new_device_by_external_commit[sut-follower]",
    "test_privacy.py::test_consent_request_for_unknown_user",
    "test_privacy.py::test_sender_identity_never_travels_in_clear[sut-follower]",
    "test_removal.py::test_banned_user_cannot_be_readded_until_unbanned[sut-follower]",
    "test_removal.py::test_removing_a_user_removes_all_its_clients[sut-follower]",
    "test_removal.py::test_self_leave_removes_every_client_of_the_user[sut-follower]",
    "test_transport.py::test_certificate_from_untrusted_ca_is_refused",
    "test_transport.py::test_chunked_request_is_served_like_one_with_content_length",
    "test_transport.py::test_cleartext_http_is_refused",
    "test_transport.py::test_directory_urls_name_a_reachable_authority",
    "test_transport.py::test_each_domain_answers_under_its_name_whatever_the_host_port",
    "test_transport.py::test_expect_100_continue_is_answered_at_once",
    "test_transport.py::test_from_naming_the_sut_itself_is_refused",
    "test_transport.py::test_from_not_authenticated_by_the_certificate_is_refused",
    "test_transport.py::test_parent_domain_certificate_does_not_authenticate_a_subdomain_from",
    "test_transport.py::test_request_naming_two_source_providers_is_refused",
    "test_transport.py::test_request_without_a_usable_host_is_refused",
    "test_transport.py::test_request_without_client_certificate_is_refused",
    "test_transport.py::test_server_certificate_authenticates_each_domain",
    "test_transport.py::test_sut_request_bodies_are_exact_encodings[sut-follower]",
    "test_transport.py::test_sut_requests_are_authenticated_as_its_domain[sut-follower]",
})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_adapter_is_at_most_300_lines() -> None:
    lines = (EXAMPLE / "adapter.py").read_text(encoding="utf-8").count("\n")
    assert lines <= ADAPTER_MAX_LINES, f"examples/store_and_forward/adapter.py has {lines} lines"


def test_adapter_imports_only_the_kit_from_the_suite() -> None:
    """The adapter is what a vendor writes: it uses the kit's public face, nothing of the suite's inside."""
    source = (EXAMPLE / "adapter.py").read_text(encoding="utf-8")
    imported = set(re.findall(r"^(?:from|import) ([\w.]+)", source, re.MULTILINE))
    assert {m for m in imported if m.startswith(("conformance", "reference_peer"))} == {"conformance.adapterkit"}


def prepared_folder(tmp: Path) -> Path:
    """The example's manifest and start script in ``tmp``, with a certificate and free ports."""
    for name in ("sut.yaml", "start-sut.sh"):
        shutil.copy(EXAMPLE / name, tmp / name)
    subprocess.run([str(BIN_DIR / "reference-peer"), "pki", "--out", str(tmp / "sut-pki"), "--domain", "saf.example"],
                   check=True, capture_output=True, timeout=120)
    manifest = yaml.safe_load((tmp / "sut.yaml").read_text(encoding="utf-8"))
    env = manifest["connector"]["env"]
    ports = {name: str(free_port()) for name in ("SAF_MIMI_PORT", "SAF_API_PORT", "SAF_CONTROL_PORT")}
    env.update(ports, PYTHONPATH=str(ROOT))
    manifest["mimi"]["endpoints"]["saf.example"] = f"127.0.0.1:{ports['SAF_MIMI_PORT']}"
    manifest["control"]["url"] = f"http://127.0.0.1:{ports['SAF_CONTROL_PORT']}"
    (tmp / "sut.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return tmp / "sut.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One suite run against the example: (results.json's checks by ID, exit code, seconds, output)."""
    folder = tmp_path_factory.mktemp("store-and-forward")
    manifest = prepared_folder(folder)
    out = folder / "out"
    env = {**os.environ, "PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"}
    started = time.monotonic()
    done = subprocess.run(
        [str(BIN_DIR / "mimi-conformance"), "run", "--sut", str(manifest), "-n", "2", "--seed", "1",
         "--allow-untested", "--out", str(out)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    results = out / "results.json"
    assert results.is_file(), f"the run wrote no results.json (exit {done.returncode}):\n{output[-4000:]}"
    checks = {c["check_id"]: c for c in json.loads(results.read_text(encoding="utf-8"))["checks"]}
    counts: dict[str, int] = {}
    for check in checks.values():
        counts[check["verdict"]] = counts.get(check["verdict"], 0) + 1
    print(f"\nthe example's run took {seconds:.0f} s, exit {done.returncode}: {dict(sorted(counts.items()))}")
    return checks, done.returncode, seconds, output


def test_run_has_no_fail_and_no_harness_error(run) -> None:
    checks, code, _seconds, output = run
    bad = {cid: c for cid, c in checks.items() if c["verdict"] in ("FAIL", "HARNESS_ERROR")}
    assert not bad, "\n".join(f"{c['verdict']} {cid}: {c['message'][:400]}" for cid, c in sorted(bad.items()))
    assert code in (0, 1), output[-3000:]


def test_every_not_applicable_says_why(run) -> None:
    checks = run[0]
    silent = {cid: c["message"] for cid, c in checks.items()
              if c["verdict"] == "NOT_APPLICABLE" and not WHY_NOT_APPLICABLE.search(c["message"] or "")}
    assert not silent, "\n".join(f"{cid}: {message!r}" for cid, message in sorted(silent.items()))


def test_the_expected_checks_run(run) -> None:
    ran = {cid.removeprefix("conformance/scenarios/") for cid, c in run[0].items() if c["verdict"] in ("PASS", "WARN")}
    assert ran == EXPECTED_RUN, (f"run but not expected: {sorted(ran - EXPECTED_RUN)}\n"
                                 f"expected but not run: {sorted(EXPECTED_RUN - ran)}")
