"""Allowed variants of issue 15's strictness fixes (reference_peer/faults/variants_strictness.py).

Each case runs the checks that once judged more than their -06 sentence against the reference SUT with
the variant on, and asserts that the permitted behaviour is no miss and the affected requirement PASS.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_draft_latitude import assert_no_false_verdict, outcomes_of, run_checks  # noqa: E402


def _passes(checks, requirement: str) -> None:
    outcomes = outcomes_of(checks, requirement)
    assert outcomes and set(outcomes) == {"PASS"}, (requirement, outcomes, checks)


def test_serving_a_host_it_does_not_serve_is_no_miss(tmp_path):
    """-06 §4.1 'The target provider is indicated using a Host header' binds the requester: an SUT that
    answers a Host it does not serve is not failed; its own requests' Host is what is judged."""
    checks = run_checks(tmp_path, "host or authenticated_as_its_domain", variants=["serve-any-host"],
                        module="test_transport.py")
    assert_no_false_verdict(checks)
    _passes(checks, "PROTO-TRANSPORT-HOST-TARGET")


def test_from_local_part_containing_mimi_passes(tmp_path):
    """-06 §4.1 'the local-part of the address MUST contain the fixed string mimi' (AMB-FROM-LOCALPART-CONTAINS):
    From: mimi-server@<domain> passes."""
    checks = run_checks(tmp_path, "authenticated_as_its_domain", variants=["from-localpart-contains-mimi"],
                        module="test_transport.py")
    assert_no_false_verdict(checks)
    for requirement in ("PROTO-TRANSPORT-FROM-LOCALPART-MIMI", "PROTO-TRANSPORT-FROM-ADDR-SPEC",
                        "PROTO-TRANSPORT-IDENTIFY-PROVIDERS"):
        _passes(checks, requirement)


def test_directory_with_other_variable_names_passes_and_is_filled(tmp_path):
    """-06 §5.1 fixes no template variable name: {user}, {room}, ... pass the directory checks, and the
    suite fills them (a key-material check reaches the SUT through them)."""
    checks = run_checks(tmp_path, "directory or lists_every_client", variants=["directory-other-variable-names"])
    assert_no_false_verdict(checks)
    for requirement in ("PROTO-DIRECTORY-WELL-KNOWN", "PROTO-DIRECTORY-HTTPS-URLS", "PROTO-KEYMAT-PUBLICATION-POINT"):
        _passes(checks, requirement)


def test_hub_relaying_for_room_providers_only_and_re_encoding_passes(tmp_path):
    """-06 §5.2 'KeyPackages requested using this primitive MUST be sent via the hub provider': a hub that
    relays only for its room's providers, and re-encodes the target's answer, relays."""
    checks = run_checks(tmp_path, "relays_key_material", variants=["keymat-relay-room-providers-only"],
                        module="test_keymaterial.py")
    assert_no_false_verdict(checks)
    _passes(checks, "PROTO-KEYMAT-HUB-RELAY")


def test_request_signed_with_another_listed_suite_passes(tmp_path):
    """-06 §5.2 names no signature scheme (AMB-KEYMAT-SIGNATURE-SUITE): a request signed under a listed
    acceptable suite that is not the first is well signed, and the suite's peers serve it."""
    checks = run_checks(tmp_path, "well_formed or badly_signed", variants=["keymat-sign-with-other-listed-suite"],
                        module="test_keymaterial.py")
    assert_no_false_verdict(checks)
    for requirement in ("PROTO-KEYMAT-REQUEST-SIGNED", "PROTO-KEYMAT-SIGNATURE-CHECKED"):
        _passes(checks, requirement)
