"""Leaving, removing single clients, banning, external_senders upkeep and external joins."""

from __future__ import annotations

import pytest
from room_world import HUB, World, accepted, ok

from reference_peer.mls import remove_proposal, self_remove_proposal
from reference_peer.mls.tree import RatchetTree
from reference_peer.room import ROLE_MEMBER, group_info_refusal, open_group_info_response
from reference_peer.room.follower import SimulatedClient
from reference_peer.wire.mimi import GroupInfoCode, SubmitResponseCode, UpdateRequest, UpdateResponseCode
from reference_peer.wire.mls import MLSMessage, ProposalType, WireFormat
from reference_peer.wire.room_policy import ROLE_INDEX_BANNED


@pytest.fixture()
def room():
    world = World.make("b.example", "c.example")
    alice1 = world.client(HUB, "alice", "a1")
    bob1, bob2 = world.client("b.example", "bob", "b1"), world.client("b.example", "bob", "b2")
    carol = world.client("c.example", "carol", "c1")
    world.create_room(alice1)
    ok(world.add_user(alice1, [bob1, bob2])[0])
    ok(world.add_user(alice1, [carol])[0])
    # Commit the hub's pending external_senders proposal so that each test starts from a clean epoch.
    ok(world.commit(alice1, alice1.commit())[0])
    return world, alice1, bob1, bob2, carol


def sender_domains(world: World) -> set[bytes]:
    return {bytes(s.credential.identity) for s in world.room.view.external_senders()}


def test_follower_external_senders_added_on_join(room):
    world, *_ = room
    assert sender_domains(world) == {b"mimi://a.example", b"mimi://b.example", b"mimi://c.example"}


def test_self_leave_is_cached_and_forced_into_the_next_commit(room):
    world, alice1, bob1, bob2, carol = room
    request = bob1.self_leave_request()
    response, plan = world.update(bob1, request)
    ok(response)
    assert plan.domains() == {HUB, "b.example", "c.example"}
    # moreProposals are fanned out exactly as received (PROTO-FANOUT-MOREPROPOSALS-SAME).
    sent_more = [m.encode() for m in plan.messages_for("c.example")[0].moreProposals]
    assert sent_more == [m.encode() for m in UpdateRequest.decode(request, scope={"protocol": 1}).bundle.moreProposals]
    assert len(sent_more) == 2  # Remove of bob2 and the participant-list removal, after bob1's SelfRemove
    assert all(e.required for e in world.room.pending)
    # A commit that leaves the cached proposals out is refused.
    outgoing = alice1.commit(include_cached=False)
    response, plan = world.commit(alice1, outgoing)
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "PROTO-UPDATE-SELF-LEAVE-CACHED" in response.errorDescription and plan.domains() == set()
    # Bob may not commit meanwhile, nor send messages.
    response, _ = world.commit(bob2, bob2.commit(include_cached=False))
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "PROTO-REMOVAL-BLOCK-COMMITS" in response.errorDescription
    assert world.submit(bob2, b"x")[0].statusCode == SubmitResponseCode.notAllowed
    # ...nor propose anything but its own removal.
    response, _ = world.update(bob2, bob2.proposals_request([remove_proposal(alice1.group.own_leaf)]))
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS" in response.errorDescription
    # Carol (another follower) commits them: accepted; bob's clients and entry are gone.
    response, plan = world.commit(carol, carol.commit())
    ok(response)
    assert bob1.removed and bob2.removed
    assert bob1.user_uri.encode() not in world.room.roles()
    assert "b.example" in plan.domains()
    # b.example's last participant left: the hub proposes dropping its external_senders entry (MUST)...
    assert [e.proposal_type for e in world.room.pending] == [ProposalType.group_context_extensions]
    # ...and refuses a commit that leaves it out.
    response, _ = world.commit(alice1, alice1.commit(include_cached=False))
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "PROTO-EXTSENDERS-REMOVE-LAST-FOLLOWER" in response.errorDescription
    ok(world.commit(alice1, alice1.commit())[0])
    assert sender_domains(world) == {b"mimi://a.example", b"mimi://c.example"}
    assert carol.group.external_senders() == world.room.view.external_senders()


def test_remove_one_own_client(room):
    world, alice1, bob1, bob2, carol = room
    # bob removes his own second client (canRemoveOwnClient); he stays a participant.
    response, _ = world.commit(bob1, bob1.commit([remove_proposal(bob1.leaf_of(bob2))]))
    ok(response)
    assert bob2.removed and not bob1.removed
    assert world.room.roles()[bob1.user_uri.encode()] == ROLE_MEMBER
    accepted(world.submit(bob1, b"one device now")[0])
    assert [e.data for e in carol.inbox] == [b"one device now"]


def test_member_cannot_kick_another_users_client(room):
    world, alice1, bob1, bob2, carol = room
    response, _ = world.commit(bob1, bob1.commit([remove_proposal(bob1.leaf_of(carol))]))
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "POLICY-CAP-KICK-KEEPS-PARTICIPANT" in response.errorDescription
    # An admin may kick (canKick): carol stays listed but inactive.
    ok(world.commit(alice1, alice1.commit([remove_proposal(alice1.leaf_of(carol))]))[0])
    assert carol.user_uri.encode() in world.room.roles() and carol.removed
    assert "c.example" not in world.room.active_providers()


def test_self_remove_is_pending_in_group_info_and_external_join(room):
    world, alice1, bob1, bob2, carol = room
    ok(world.update(bob2, bob2.proposals_request([self_remove_proposal()]))[0])
    bob3 = world.client("b.example", "bob", "b3")
    hpke_priv, hpke_pub = world.room.view.suite.generate_hpke_key_pair()
    response = world.room.group_info_response("b.example", bob3.group_info_request(hpke_pub), world.now())
    assert response.status == GroupInfoCode.success
    tbe = open_group_info_response(response, hpke_priv)
    pending = [p.proposal.public_message.content.proposal.proposal_type for p in tbe.pending_proposals]
    assert pending == [ProposalType.self_remove]
    assert tbe.groupInfo.group_context.epoch == world.room.epoch
    tree = RatchetTree.from_wire(world.room.view.suite, tbe.ratchetTreeOption.ratchet_tree).encode()
    request = bob3.join_external(_group_info_bytes(tbe.groupInfo), tree)
    response, plan = world.update(bob3, request)
    ok(response)
    assert bob3.epoch == world.room.epoch == alice1.epoch == carol.epoch
    # The external commit could not carry the SelfRemove: the hub regenerated a Remove of bob2.
    assert [e.proposal_type for e in world.room.pending] == [ProposalType.remove]
    ok(world.commit(carol, carol.commit())[0])
    assert bob2.removed and not bob3.removed and bob3.epoch == world.room.epoch
    accepted(world.submit(bob3, b"new phone")[0])
    assert [e.data for e in alice1.inbox][-1] == b"new phone"


def _group_info_bytes(info) -> bytes:
    return MLSMessage(version=1, wire_format=WireFormat.mls_group_info, group_info=info).encode()


def test_group_info_refused_to_non_participants_and_bad_signatures(room):
    world, alice1, bob1, *_ = room
    _, hpke_pub = world.room.view.suite.generate_hpke_key_pair()
    dave = SimulatedClient("c.example", "dave", "d1")
    response = world.room.group_info_response("c.example", dave.group_info_request(hpke_pub), world.now())
    assert response.status == GroupInfoCode.notAuthorized and response.encrypted_groupinfo_and_tree is None
    request = SimulatedClient("b.example", "bob", "b9").group_info_request(hpke_pub)
    forged = request.replace(signature=bytes([request.signature[0] ^ 1]) + bytes(request.signature[1:]))
    assert world.room.group_info_response("b.example", forged, world.now()).status == GroupInfoCode.notAuthorized
    # A real participant's request from the wrong provider is refused too.
    assert world.room.group_info_response("c.example", request, world.now()).status == GroupInfoCode.notAuthorized
    assert world.room.group_info_response("b.example", request, world.now()).status == GroupInfoCode.success
    # A key that is not an X25519 public key: refused, not a crash.
    assert (
        world.room.group_info_response(
            "b.example", SimulatedClient("b.example", "bob", "b8").group_info_request(b"\x01"), world.now()
        ).status
        == GroupInfoCode.notAuthorized
    )
    # An unknown room gets the same answer as a refusal (existence does not leak).
    unknown = group_info_refusal(b"mimi://a.example/r/nope")
    assert unknown.status == GroupInfoCode.notAuthorized and unknown.encrypted_groupinfo_and_tree is None


def test_ban_and_unban(room):
    world, alice1, bob1, bob2, carol = room
    bob = bob1.user_uri.encode()
    # A ban that keeps the user's clients is refused: ban and removal go together.
    response, _ = world.commit(alice1, alice1.change_role(bob, ROLE_INDEX_BANNED))
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "POLICY-CAP-BAN-REMOVES-CLIENTS" in response.errorDescription
    # A member cannot ban.
    response, _ = world.commit(carol, carol.change_role(bob, ROLE_INDEX_BANNED, remove_clients=True))
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "POLICY-CAP-BAN-AUTHZ" in response.errorDescription
    ok(world.commit(alice1, alice1.change_role(bob, ROLE_INDEX_BANNED, remove_clients=True))[0])
    assert world.room.roles()[bob] == ROLE_INDEX_BANNED and bob1.removed and bob2.removed
    # A banned user's clients cannot be re-added...
    kp = bob1.make_key_package()
    response, _ = world.commit(alice1, alice1.add_users([kp.key_package]))
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "POLICY-ROLE-MAX-ACTIVE-ZERO" in response.errorDescription
    # ...until an admin unbans (1 -> member); then the admin may add the clients again.
    ok(world.commit(alice1, alice1.change_role(bob, ROLE_MEMBER))[0])
    kp = bob1.make_key_package()
    world.room.record_key_package(kp.ref(), "b.example")
    ok(world.commit(alice1, alice1.add_users([kp.key_package]))[0])
    assert not bob1.removed and bob1.epoch == world.room.epoch
