"""Group operations end to end between this implementation's own members and hub view."""

from __future__ import annotations

import pytest

from reference_peer.mls import (
    Crafter,
    CryptoError,
    Group,
    HubView,
    InvalidCommit,
    InvalidProposal,
    MalformedMessage,
    SecretReuse,
    Tamper,
    UnknownSender,
    UnsupportedCipherSuite,
    WrongEpoch,
    add_proposal,
    app_data_dictionary_extension,
    app_data_update_proposal,
    basic_credential,
    cipher_suite,
    external_proposal,
    external_psk_proposal,
    external_senders_extension,
    forged_external_proposal,
    gce_proposal,
    make_key_package,
    new_member_add_proposal,
    remove_proposal,
    required_capabilities_extension,
    self_remove_proposal,
    stale_key_package,
)
from reference_peer.mls.leaf import is_last_resort
from reference_peer.wire.mls import Credential, ExternalSender, ProposalType


def cred(name: str) -> Credential:
    return basic_credential(name.encode())


def make_group(n_members: int, suite: int = 1, **kwargs) -> tuple[Group, list[Group]]:
    """A group created by 'alice' with n_members-1 others added in one commit."""
    alice = Group.create(suite, cred("alice"), **kwargs)
    bundles = [make_key_package(suite, cred(f"m{i}")) for i in range(n_members - 1)]
    if not bundles:
        return alice, []
    out = alice.commit([add_proposal(b.key_package) for b in bundles])
    alice.merge_pending_commit()
    return alice, [Group.join(out.welcome, b) for b in bundles]


def assert_converged(*groups: Group) -> None:
    first = groups[0]
    for g in groups[1:]:
        assert g.epoch == first.epoch
        assert g.epoch_authenticator == first.epoch_authenticator
        assert g.context == first.context
        assert g.tree.encode() == first.tree.encode()


def deliver(message: bytes, *receivers: Group) -> None:
    for g in receivers:
        g.process(message)


@pytest.mark.parametrize("suite", [1, 2, 3, 4, 5, 6, 7])
def test_create_add_message_remove_update_in_every_provided_suite(suite: int) -> None:
    alice, (bob, carol, dave) = make_group(4, suite)
    assert_converged(alice, bob, carol, dave)
    assert alice.export_secret("mimi", b"ctx", 32) == dave.export_secret("mimi", b"ctx", 32)
    assert bob.process(alice.protect(b"hello", authenticated_data=b"aad")).application_data == b"hello"
    received = alice.process(dave.protect(b"back"))
    assert received.application_data == b"back" and received.sender.leaf_index == dave.own_leaf
    out = bob.commit([remove_proposal(carol.own_leaf)], private=True)
    bob.merge_pending_commit()
    deliver(out.commit, alice, dave)
    assert carol.process(out.commit).removed_self and not carol.active
    assert_converged(alice, bob, dave)
    update = dave.propose_update(private=True)
    deliver(update, alice, bob)
    out = alice.commit()
    alice.merge_pending_commit()
    deliver(out.commit, bob, dave)
    assert_converged(alice, bob, dave)
    assert bob.process(dave.protect(b"after update")).application_data == b"after update"


def test_unsupported_suite_is_reported_not_faked() -> None:
    with pytest.raises(UnsupportedCipherSuite):
        cipher_suite(8)
    with pytest.raises(UnsupportedCipherSuite):
        Group.create(0xF0F0, cred("x"))
    with pytest.raises(UnsupportedCipherSuite):
        make_key_package(0, cred("x"))


def test_commit_by_reference_and_by_value_both_add_members() -> None:
    alice, (bob,) = make_group(2)
    by_ref = make_key_package(1, cred("by-ref"))
    by_value = make_key_package(1, cred("by-value"))
    proposal = bob.propose(add_proposal(by_ref.key_package))
    alice.process(proposal)
    out = alice.commit([add_proposal(by_value.key_package)], force_path=False)
    assert [a.ref is not None for a in out.applied] == [True, False]
    alice.merge_pending_commit()
    bob.process(out.commit)
    joined = [Group.join(out.welcome, b) for b in (by_ref, by_value)]
    assert_converged(alice, bob, *joined)
    assert alice.tree.member_count() == 4


def test_welcome_without_ratchet_tree_needs_the_tree_out_of_band() -> None:
    alice = Group.create(1, cred("alice"))
    bob = make_key_package(1, cred("bob"))
    out = alice.commit([add_proposal(bob.key_package)], ratchet_tree_in_welcome=False)
    alice.merge_pending_commit()
    with pytest.raises(Exception) as info:
        Group.join(out.welcome, bob)
    assert "ratchet tree" in str(info.value)
    assert_converged(alice, Group.join(out.welcome, bob, ratchet_tree=alice.tree.encode()))


def test_external_join_and_resync() -> None:
    alice, (bob,) = make_group(2)
    carol, commit = Group.join_external(alice.group_info(), cred("carol"))
    deliver(commit, alice, bob)
    assert_converged(alice, bob, carol)
    assert carol.process(bob.protect(b"welcome carol")).application_data == b"welcome carol"
    # Resync: carol rejoins replacing her own old leaf.
    carol2, commit = Group.join_external(alice.group_info(), cred("carol"), remove_prior=carol.own_leaf)
    deliver(commit, alice, bob)
    assert_converged(alice, bob, carol2)
    assert alice.tree.member_count() == 3
    # The externally joined member commits like any other, keeping the credential it joined with.
    out = carol2.commit()
    carol2.merge_pending_commit()
    deliver(out.commit, alice, bob)
    assert_converged(alice, bob, carol2)
    assert carol2.own_leaf_node().credential == cred("carol")


def test_external_sender_proposal_is_accepted_and_a_forged_one_refused() -> None:
    server_priv, server_pub = cipher_suite(1).generate_signature_key_pair()
    server = ExternalSender(signature_key=server_pub, credential=cred("hub.example"))
    alice, (bob, carol) = make_group(3, extensions=[external_senders_extension([server])])
    forged = forged_external_proposal(alice, remove_proposal(carol.own_leaf))
    with pytest.raises(CryptoError):
        alice.process(forged)
    unknown_index = external_proposal(1, alice.group_id, alice.epoch, 5, server_priv, remove_proposal(carol.own_leaf))
    with pytest.raises(UnknownSender):
        alice.process(unknown_index)
    genuine = external_proposal(1, alice.group_id, alice.epoch, 0, server_priv, remove_proposal(carol.own_leaf))
    deliver(genuine, alice, bob, carol)
    out = bob.commit()
    bob.merge_pending_commit()
    alice.process(out.commit)
    assert carol.process(out.commit).removed_self
    assert_converged(alice, bob)
    # An external sender may not propose an Update.
    with pytest.raises(InvalidProposal):
        alice.process(external_proposal(1, alice.group_id, alice.epoch, 0, server_priv, self_remove_proposal()))


def test_new_member_proposal_adds_by_reference() -> None:
    alice, (bob,) = make_group(2)
    joiner = make_key_package(1, cred("joiner"))
    request = new_member_add_proposal(joiner, alice.group_id, alice.epoch)
    deliver(request, alice, bob)
    out = alice.commit()
    alice.merge_pending_commit()
    bob.process(out.commit)
    assert_converged(alice, bob, Group.join(out.welcome, joiner))


def test_self_remove_by_reference_and_not_by_value() -> None:
    alice, (bob, carol) = make_group(3)
    with pytest.raises(InvalidCommit):
        Crafter(alice).commit([self_remove_proposal()])
    leaving = carol.propose(self_remove_proposal())
    deliver(leaving, alice, bob)
    out = alice.commit()
    alice.merge_pending_commit()
    bob.process(out.commit)
    assert carol.process(out.commit).removed_self
    assert_converged(alice, bob)
    assert alice.tree.member_count() == 2


def test_app_data_update_and_group_context_extensions() -> None:
    alice, (bob,) = make_group(2, extensions=[app_data_dictionary_extension({1: b"participants-v1"})])
    assert alice.app_data() == {1: b"participants-v1"} == bob.app_data()
    proposal = bob.propose(app_data_update_proposal(1, b"participants-v2"))
    alice.process(proposal)
    out = alice.commit([app_data_update_proposal(2, b"policy-v1")])
    alice.merge_pending_commit()
    received = bob.process(out.commit)
    assert {a.proposal.proposal_type for a in received.applied} == {ProposalType.app_data_update}
    assert bob.app_data() == {1: b"participants-v2", 2: b"policy-v1"} == alice.app_data()
    out = bob.commit([app_data_update_proposal(2, None)])
    bob.merge_pending_commit()
    alice.process(out.commit)
    assert alice.app_data() == {1: b"participants-v2"}
    assert_converged(alice, bob)
    rc = required_capabilities_extension(proposal_types=[ProposalType.self_remove])
    out = alice.commit([gce_proposal([*alice.context.extensions, rc])])
    alice.merge_pending_commit()
    bob.process(out.commit)
    assert bob.required_capabilities().proposal_types == [ProposalType.self_remove]


def test_required_capabilities_refuse_an_incapable_key_package() -> None:
    rc = required_capabilities_extension(extension_types=[0xFF00])
    with pytest.raises(InvalidProposal):
        Group.create(1, cred("alice"), extensions=[rc])  # the creator itself lacks 0xFF00
    from reference_peer.mls import default_capabilities

    caps = default_capabilities([1], extensions=[0xFF00, 6])
    alice = Group.create(1, cred("alice"), extensions=[rc], capabilities=caps)
    capable = make_key_package(1, cred("capable"), capabilities=caps)
    incapable = make_key_package(1, cred("incapable"))
    with pytest.raises(InvalidProposal):
        alice.commit([add_proposal(incapable.key_package)])
    out = alice.commit([add_proposal(capable.key_package)])
    alice.merge_pending_commit()
    assert_converged(alice, Group.join(out.welcome, capable))


def test_last_resort_key_package_is_marked() -> None:
    bundle = make_key_package(1, cred("lr"), last_resort=True)
    assert is_last_resort(bundle.key_package)
    assert not is_last_resort(make_key_package(1, cred("normal")).key_package)
    alice = Group.create(1, cred("alice"))
    alice.commit([add_proposal(bundle.key_package)])


def test_external_psk_commit() -> None:
    alice, (bob,) = make_group(2)
    for g in (alice, bob):
        g.add_external_psk(b"psk-1", b"shared secret")
    out = alice.commit([external_psk_proposal(b"psk-1")])
    alice.merge_pending_commit()
    bob.process(out.commit)
    assert_converged(alice, bob)
    carol = Group.create(1, cred("carol"))
    with pytest.raises(InvalidProposal):
        carol.commit([external_psk_proposal(b"unknown")])


# (crafted defect, the member's error, whether the hub can see it without group secrets, the reason's wording)
DEFECTS = {
    "commit-bad-signature": (lambda c, kp, g: c.commit([add_proposal(kp)], tamper=Tamper(bad_signature=True)).commit, CryptoError, True, "signature"),
    "commit-bad-membership-tag": (lambda c, kp, g: c.commit([add_proposal(kp)], tamper=Tamper(bad_membership_tag=True)).commit,
                                  CryptoError, False, "membership_tag"),
    "commit-bad-confirmation-tag": (lambda c, kp, g: c.commit([add_proposal(kp)], tamper=Tamper(bad_confirmation_tag=True)).commit,
                                    CryptoError, False, "confirmation_tag"),
    "commit-wrong-epoch": (lambda c, kp, g: c.commit([add_proposal(kp)], tamper=Tamper(epoch_delta=-1)).commit, WrongEpoch, True, "epoch"),
    "commit-duplicate-add": (lambda c, kp, g: c.commit([add_proposal(kp), add_proposal(kp)], validate=False).commit, InvalidCommit, True, "two Adds"),
    "commit-missing-required-path": (lambda c, kp, g: c.commit([remove_proposal(2)], tamper=Tamper(omit_path=True)).commit,
                                     InvalidCommit, True, "requires an UpdatePath"),
    "commit-bad-parent-hash": (lambda c, kp, g: c.commit([add_proposal(kp)], tamper=Tamper(bad_parent_hash=True)).commit,
                               InvalidCommit, True, "parent_hash"),
    "proposal-wrong-epoch": (lambda c, kp, g: c.proposal(remove_proposal(2), epoch=g.epoch + 1), WrongEpoch, True, "epoch"),
    "proposal-bad-signature": (lambda c, kp, g: c.proposal(remove_proposal(2), bad_signature=True), CryptoError, True, "signature"),
    "proposal-bad-membership-tag": (lambda c, kp, g: c.proposal(remove_proposal(2), bad_membership_tag=True), CryptoError, False,
                                    "membership_tag"),
    "proposal-missing-membership-tag": (lambda c, kp, g: c.proposal(remove_proposal(2), omit_membership_tag=True), MalformedMessage,
                                        True, "membership_tag"),
    "proposal-remove-non-member": (lambda c, kp, g: c.proposal(remove_proposal(7)), InvalidProposal, True, "not a member"),
    "proposal-unknown-sender": (lambda c, kp, g: c.proposal(remove_proposal(1), sender_leaf=9), UnknownSender, True, "not a member"),
    "proposal-stale-key-package": (lambda c, kp, g: c.proposal(add_proposal(stale_key_package(1, cred("old")).key_package)),
                                   InvalidProposal, True, "lifetime"),
}


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_crafted_defects_are_refused_and_leave_state_unchanged(defect: str) -> None:
    craft, error, hub_sees, reason = DEFECTS[defect]
    alice, (bob, carol) = make_group(3)
    kp = make_key_package(1, cred("new")).key_package
    bad = craft(Crafter(alice), kp, alice)
    hub = HubView.from_group(bob)
    before = (bob.epoch_authenticator, bob.tree.encode(), bob.context, dict(bob.proposal_cache))
    with pytest.raises(error, match=reason):
        bob.process(bad)
    assert (bob.epoch_authenticator, bob.tree.encode(), bob.context, dict(bob.proposal_cache)) == before
    hub_before = (hub.context, hub.tree.encode(), dict(hub.proposal_cache))
    if hub_sees:
        with pytest.raises(error, match=reason):
            hub.process(bad)
        assert (hub.context, hub.tree.encode(), dict(hub.proposal_cache)) == hub_before
    # A valid message still goes through afterwards, for members and hub alike.
    hub = HubView.from_group(bob)
    out = alice.commit([add_proposal(kp)])
    alice.merge_pending_commit()
    deliver(out.commit, bob, carol)
    hub.process(out.commit)
    assert_converged(alice, bob, carol)
    assert hub.context == alice.context


def test_removed_sender_is_refused() -> None:
    alice, (bob, carol) = make_group(3)
    carol_key = carol.signature_priv
    removed_leaf = carol.own_leaf
    out = alice.commit([remove_proposal(removed_leaf)])
    alice.merge_pending_commit()
    bob.process(out.commit)
    # Carol's key, carol's old leaf index, the current epoch and a valid membership tag.
    stale = Crafter(alice).proposal(remove_proposal(bob.own_leaf), sender_leaf=removed_leaf, signature_priv=carol_key)
    with pytest.raises(UnknownSender):
        bob.process(stale)


def test_replayed_application_message_is_refused() -> None:
    alice, (bob,) = make_group(2)
    message = alice.protect(b"once")
    assert bob.process(message).application_data == b"once"
    with pytest.raises(SecretReuse):
        bob.process(message)


def test_hub_view_follows_the_group_without_secrets() -> None:
    server_priv, server_pub = cipher_suite(1).generate_signature_key_pair()
    alice = Group.create(1, cred("alice"), extensions=[external_senders_extension([ExternalSender(signature_key=server_pub, credential=cred("hub"))])])
    hub = HubView.from_group_info(alice.group_info())
    assert not hasattr(hub, "secrets")
    bundles = [make_key_package(1, cred(f"m{i}")) for i in range(3)]
    out = alice.commit([add_proposal(b.key_package) for b in bundles])
    alice.merge_pending_commit()
    hub.process(out.commit)
    members = [Group.join(out.welcome, b) for b in bundles]
    proposal = external_proposal(1, alice.group_id, alice.epoch, 0, server_priv, remove_proposal(members[2].own_leaf))
    for g in (hub, alice, *members):
        g.process(proposal)
    out = members[0].commit(force_path=False)
    members[0].merge_pending_commit()
    hub.process(out.commit)
    deliver(out.commit, alice, members[1])
    assert hub.context == alice.context == members[0].context
    carol, commit = Group.join_external(alice.group_info(), cred("carol"))
    hub.process(commit)
    alice.process(commit)
    assert hub.context == carol.context == alice.context
    # The hub refuses what it can check: a forged signature, a wrong epoch, a stale KeyPackage.
    for bad, error in [
        (Crafter(alice).commit([], tamper=Tamper(bad_signature=True)).commit, CryptoError),
        (Crafter(carol).proposal(remove_proposal(1), epoch=0), WrongEpoch),
        (Crafter(carol).proposal(add_proposal(stale_key_package(1, cred("old")).key_package)), InvalidProposal),
    ]:
        before = hub.context
        with pytest.raises(error):
            hub.process(bad)
        assert hub.context == before


def test_external_commit_may_only_remove_the_joiners_own_leaf() -> None:
    alice, (bob,) = make_group(2)
    hub = HubView.from_group(alice)
    _, commit = Group.join_external(alice.group_info(), cred("mallory"), remove_prior=bob.own_leaf)
    for receiver in (alice, hub):
        with pytest.raises(InvalidCommit):
            receiver.process(commit)
    assert alice.tree.member_count() == 2 and hub.tree.member_count() == 2


def test_tampered_group_info_is_refused_by_joiners_and_the_hub() -> None:
    from reference_peer.mls import InvalidWelcome
    from reference_peer.wire.mls import MLSMessage

    alice, _ = make_group(2)
    message = MLSMessage.decode(alice.group_info())
    info = message.group_info
    forged = message.replace(group_info=info.replace(group_context=info.group_context.replace(epoch=info.group_context.epoch + 5))).encode()
    with pytest.raises(InvalidWelcome):
        Group.join_external(forged, cred("eve"))
    with pytest.raises(InvalidWelcome):
        HubView.from_group_info(forged)


def test_welcome_for_someone_else_is_refused() -> None:
    from reference_peer.mls import InvalidWelcome

    alice = Group.create(1, cred("alice"))
    invited = make_key_package(1, cred("invited"))
    outsider = make_key_package(1, cred("outsider"))
    out = alice.commit([add_proposal(invited.key_package)])
    with pytest.raises(InvalidWelcome):
        Group.join(out.welcome, outsider)


def test_pending_commit_can_be_discarded() -> None:
    alice, (bob,) = make_group(2)
    epoch = alice.epoch
    out = alice.commit([remove_proposal(bob.own_leaf)])
    alice.discard_pending_commit()
    assert alice.epoch == epoch and alice.tree.member_count() == 2
    bob.process(out.commit)  # the commit itself was valid; only alice chose not to apply it
    assert bob.epoch == epoch + 1


def test_late_application_messages_of_retained_epochs_still_decrypt() -> None:
    alice, (bob,) = make_group(2)
    old_epoch = alice.epoch
    late = alice.protect(b"sent before the commit")
    too_late = alice.protect(b"sent three epochs ago")
    for _ in range(2):
        out = bob.commit()
        bob.merge_pending_commit()
        alice.process(out.commit)
    received = bob.process(late)
    assert received.application_data == b"sent before the commit" and received.epoch == old_epoch
    with pytest.raises(SecretReuse):
        bob.process(late)  # its key is consumed
    out = bob.commit()
    bob.merge_pending_commit()
    alice.process(out.commit)
    with pytest.raises(WrongEpoch):
        bob.process(too_late)  # that epoch is no longer retained
