"""Hostile bytes into every decoder and every process_* entry point: only the library's own error
types come out (MLSError for the MLS layer, the codec's DecodeError for the bare wire decoders),
and a refused message leaves the group state unchanged."""

from __future__ import annotations

import functools
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_peer.mls import (
    Group,
    HubView,
    MLSError,
    add_proposal,
    basic_credential,
    make_key_package,
    remove_proposal,
)
from reference_peer.mls.crypto import cipher_suite
from reference_peer.mls.group import decode_message
from reference_peer.mls.leaf import decode_key_package, validate_key_package
from reference_peer.mls.tree import RatchetTree
from reference_peer.wire.codec import DecodeError
from reference_peer.wire.mls import GroupInfo, KeyPackage, MLSMessage, PublicMessage, Welcome

SETTINGS = settings(max_examples=int(os.environ.get("MLS_FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@functools.cache
def scenario() -> dict:
    """One group at epoch 1 with valid messages of every kind to mutate (built once)."""
    alice = Group.create(1, basic_credential(b"alice"))
    bundles = [make_key_package(1, basic_credential(b"m%d" % i)) for i in range(3)]
    out = alice.commit([add_proposal(b.key_package) for b in bundles])
    alice.merge_pending_commit()
    bob = Group.join(out.welcome, bundles[0])
    joiner = make_key_package(1, basic_credential(b"joiner"))
    samples = {
        "welcome": out.welcome,
        "group_info": alice.group_info(),
        "key_package": joiner.to_message(),
        "ratchet_tree": alice.tree.encode(),
        "application": alice.protect(b"x" * 40),
        "proposal": alice.propose(remove_proposal(2)),
        "private_proposal": alice.propose(remove_proposal(3), private=True),
    }
    alice.proposal_cache.clear()
    commit = alice.commit([add_proposal(joiner.key_package)])
    alice.discard_pending_commit()
    samples["commit"] = commit.commit
    private_commit = alice.commit([remove_proposal(3)], private=True)
    alice.discard_pending_commit()
    samples["private_commit"] = private_commit.commit
    return {"alice": alice, "bob": bob, "bundle": bundles[1], "samples": samples}


def snapshot(group) -> tuple:
    return (group.context, group.tree.encode(), group.interim_transcript_hash, sorted(group.proposal_cache),
            getattr(group, "secrets", None))


def mutate(data: bytes, position: int, value: int, mode: int) -> bytes:
    if not data:
        return bytes([value])
    i = position % len(data)
    if mode == 0:  # flip one byte
        return data[:i] + bytes([data[i] ^ (value or 1)]) + data[i + 1 :]
    if mode == 1:  # truncate
        return data[:i]
    if mode == 2:  # insert
        return data[:i] + bytes([value]) + data[i:]
    return data[:i] + data[i + 1 :]  # delete


SAMPLE_NAMES = ["welcome", "group_info", "key_package", "ratchet_tree", "application", "proposal", "private_proposal", "commit",
                "private_commit"]
mutations = st.tuples(st.sampled_from(SAMPLE_NAMES),
                      st.integers(0, 1 << 16), st.integers(0, 255), st.integers(0, 3))
raw_bytes = st.binary(max_size=400)


def inputs():
    return st.one_of(raw_bytes.map(lambda b: ("raw", b)),
                     mutations.map(lambda m: (m[0], mutate(scenario()["samples"][m[0]], m[1], m[2], m[3]))))


WIRE_DECODERS = [MLSMessage, PublicMessage, Welcome, GroupInfo, KeyPackage]


@SETTINGS
@given(inputs())
def test_wire_decoders_raise_only_decode_error(case) -> None:
    _, data = case
    for cls in WIRE_DECODERS:
        try:
            cls.decode(data)
        except DecodeError:
            pass


@SETTINGS
@given(inputs())
def test_mls_decoders_raise_only_mls_errors(case) -> None:
    _, data = case
    suite = cipher_suite(1)
    for decoder in (decode_message, decode_key_package, lambda d: RatchetTree.decode(suite, d),
                    lambda d: validate_key_package(suite, decode_key_package(d))):
        try:
            decoder(data)
        except MLSError:
            pass


@SETTINGS
@given(inputs())
def test_group_process_raises_only_mls_errors_and_keeps_state(case) -> None:
    _, data = case
    for name in ("bob", "alice"):
        group = scenario()[name]
        before = snapshot(group)
        try:
            group.process(data)
        except MLSError:
            assert snapshot(group) == before
        else:
            # A mutation that still authenticates would be a forgery; only unchanged bytes may pass.
            pytest.fail(f"mutated input accepted by {name}: {data.hex()[:80]}")


@SETTINGS
@given(inputs())
def test_hub_process_raises_only_mls_errors_and_keeps_state(case) -> None:
    _, data = case
    hub = HubView.from_group(scenario()["bob"])
    before = snapshot(hub)
    try:
        hub.process(data)
    except MLSError:
        assert snapshot(hub) == before


@SETTINGS
@given(inputs())
def test_join_entry_points_raise_only_mls_errors(case) -> None:
    _, data = case
    s = scenario()
    for entry in (lambda d: Group.join(d, s["bundle"]), lambda d: Group.join_external(d, basic_credential(b"x")),
                  lambda d: HubView.from_group_info(d)):
        try:
            entry(data)
        except MLSError:
            pass
