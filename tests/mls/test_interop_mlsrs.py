"""Interop with mls-rs (awslabs/mls-rs through the agentvault-mls-rs-uniffi bindings, the
``mls-interop`` extra): groups shared both ways, each side joining through the other's Welcome,
application messages both directions, and each side processing the other's add, update and
remove commits. Skips with a visible reason when the extra is not installed, unless
MLS_INTEROP_REQUIRED=1 (set in CI), which turns a missing install into a failure."""

from __future__ import annotations

import os

import pytest

if os.environ.get("MLS_INTEROP_REQUIRED") == "1":
    # CI sets this after installing the extra, so a broken install fails instead of skipping.
    import mls_rs_uniffi as mls_rs
else:
    mls_rs = pytest.importorskip(
        "mls_rs_uniffi", reason="mls-rs bindings not installed: pip install -e '.[mls-interop]'", exc_type=ImportError
    )

from reference_peer.mls import Group, add_proposal, basic_credential, make_key_package, remove_proposal  # noqa: E402

LABEL, CONTEXT = b"interop", b"exporter context"


def rs_client(name: bytes):
    keys = mls_rs.generate_signature_keypair(mls_rs.CipherSuite.CURVE25519_AES128)
    return mls_rs.Client(name, keys, mls_rs.client_config_default())


def msg(data: bytes):
    return mls_rs.Message.from_bytes(data)


def rs_commit_applied(rs_group, output) -> None:
    """mls-rs applies its own commit when it processes it back (its pending-commit merge)."""
    received = rs_group.process_incoming_message(output.commit_message)
    assert received.is_commit()


def same_epoch_secret(py_group: Group, rs_group) -> bool:
    return py_group.export_secret(LABEL, CONTEXT, 32) == rs_group.export_secret(LABEL, CONTEXT, 32)


def test_python_joins_an_mls_rs_group_and_follows_its_commits() -> None:
    alice = rs_client(b"rs-alice")
    rs_group = alice.create_group(None)
    bob = make_key_package(1, basic_credential(b"py-bob"))
    out = rs_group.add_members([msg(bob.to_message())])
    rs_commit_applied(rs_group, out)
    tree = out.ratchet_tree.bytes if out.ratchet_tree else None
    py = Group.join(out.welcome_message.to_bytes(), bob, ratchet_tree=tree)
    assert same_epoch_secret(py, rs_group)
    assert py.process(rs_group.encrypt_application_message(b"from rs").to_bytes()).application_data == b"from rs"
    received = rs_group.process_incoming_message(msg(py.protect(b"from py")))
    assert received.is_application_message() and received.data == b"from py"
    bob_identity = received.sender

    # mls-rs adds another mls-rs client; Python processes the add commit.
    carol = rs_client(b"rs-carol")
    out = rs_group.add_members([carol.generate_key_package_message()])
    rs_commit_applied(rs_group, out)
    py.process(out.commit_message.to_bytes())
    carol_group = carol.join_group(out.ratchet_tree, out.welcome_message).group
    assert same_epoch_secret(py, rs_group) and same_epoch_secret(py, carol_group)

    # mls-rs update (empty commit with a path); Python processes it.
    out = rs_group.commit()
    rs_commit_applied(rs_group, out)
    py.process(out.commit_message.to_bytes())
    carol_group.process_incoming_message(out.commit_message)
    assert same_epoch_secret(py, rs_group)

    # mls-rs removes carol; Python processes the remove commit.
    carol_identity = carol.signing_identity()
    out = rs_group.remove_members([carol_identity])
    rs_commit_applied(rs_group, out)
    result = py.process(out.commit_message.to_bytes())
    assert [a.proposal.proposal_type.name for a in result.applied] == ["remove"]
    assert py.tree.member_count() == 2 and same_epoch_secret(py, rs_group)

    # And finally mls-rs removes the Python member itself.
    out = rs_group.remove_members([bob_identity])
    rs_commit_applied(rs_group, out)
    assert py.process(out.commit_message.to_bytes()).removed_self


def test_mls_rs_joins_a_python_group_and_follows_its_commits() -> None:
    py = Group.create(1, basic_credential(b"py-alice"))
    bob = rs_client(b"rs-bob")
    kp = bob.generate_key_package_message().to_bytes()
    out = py.commit([add_proposal(_key_package(kp))])
    py.merge_pending_commit()
    rs_group = bob.join_group(None, msg(out.welcome)).group
    assert same_epoch_secret(py, rs_group)
    assert rs_group.process_incoming_message(msg(py.protect(b"from py"))).data == b"from py"
    assert py.process(rs_group.encrypt_application_message(b"from rs").to_bytes()).application_data == b"from rs"

    # Python adds a second Python member and an mls-rs member in one commit; mls-rs processes it.
    carol = make_key_package(1, basic_credential(b"py-carol"))
    dave = rs_client(b"rs-dave")
    out = py.commit([add_proposal(carol.key_package), add_proposal(_key_package(dave.generate_key_package_message().to_bytes()))])
    py.merge_pending_commit()
    assert rs_group.process_incoming_message(msg(out.commit)).is_commit()
    carol_group = Group.join(out.welcome, carol)
    dave_group = dave.join_group(None, msg(out.welcome)).group
    assert same_epoch_secret(py, rs_group) and same_epoch_secret(py, dave_group) and same_epoch_secret(carol_group, rs_group)

    # Python update (commit with a path), then a Python Update proposal committed by mls-rs.
    out = py.commit()
    py.merge_pending_commit()
    for g in (rs_group, dave_group):
        g.process_incoming_message(msg(out.commit))
    carol_group.process(out.commit)
    assert same_epoch_secret(py, rs_group)
    proposal = carol_group.propose_update()
    for g in (rs_group, dave_group):
        assert g.process_incoming_message(msg(proposal)).is_received_proposal()
    py.process(proposal)
    out = rs_group.commit()
    rs_commit_applied(rs_group, out)
    for g in (py, carol_group):
        g.process(out.commit_message.to_bytes())
    dave_group.process_incoming_message(out.commit_message)
    assert same_epoch_secret(carol_group, rs_group) and same_epoch_secret(py, dave_group)

    # Python removes the mls-rs member dave; mls-rs bob processes it, dave sees itself removed.
    out = py.commit([remove_proposal(_leaf_of(py, b"rs-dave"))])
    py.merge_pending_commit()
    assert rs_group.process_incoming_message(msg(out.commit)).is_commit()
    assert dave_group.process_incoming_message(msg(out.commit)).effect.is_removed()
    carol_group.process(out.commit)
    assert same_epoch_secret(py, rs_group) and same_epoch_secret(carol_group, rs_group)
    assert rs_group.process_incoming_message(msg(carol_group.protect(b"still here"))).data == b"still here"


def _key_package(message: bytes):
    from reference_peer.mls.leaf import decode_key_package

    return decode_key_package(message)


def _leaf_of(group: Group, identity: bytes) -> int:
    return next(i for i, leaf in group.members() if leaf.credential.identity == identity)
