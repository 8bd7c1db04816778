"""The named steps of the room rules (reference_peer.overrides): a peer built with a fault departs from
exactly the step the fault names, and a peer built without performs the rule."""

from __future__ import annotations

import pytest
from room_world import HUB, World, accepted, ok

from reference_peer.faults import overrides_for
from reference_peer.faults.multidevice import MAX_CLIENTS_IGNORED
from reference_peer.faults.privacy import PSEUDONYMS_ACCEPTED, SUBMIT_SENDER_IN_CLEAR
from reference_peer.faults.removal import LEAVE_KEEPS_OTHER_CLIENTS, REMOVE_USER_MISSES_A_CLIENT
from reference_peer.faults.variants_rooms import (
    COMMIT_WITH_PARTIAL_GROUPINFO,
    LEAVE_WITH_REMOVE_OF_OWN_LEAF,
    PADDED_APPLICATION_MESSAGES,
    REMOVE_USER_REMOVES_FIRST,
)
from reference_peer.mls import basic_credential
from reference_peer.mls.group import decode_message
from reference_peer.overrides import NO_OVERRIDES
from reference_peer.room import ROLE_ADMIN, ROLE_MEMBER, default_policy
from reference_peer.room.naming import user_of_credential, user_of_uri
from reference_peer.wire.mimi import (
    GroupInfoRepresentation,
    SubmitMessageRequest,
    SubmitResponseCode,
    UpdateRequest,
    UpdateResponseCode,
)
from reference_peer.wire.mls import ProposalType

PSEUDONYM = "mimi://b.example/p/sparrow"


@pytest.fixture()
def room():
    world = World.make("b.example")
    alice = world.client(HUB, "alice", "a1")
    bob1, bob2 = world.client("b.example", "bob", "b1"), world.client("b.example", "bob", "b2")
    world.create_room(alice)
    ok(world.add_user(alice, [bob1, bob2])[0])
    ok(world.commit(alice, alice.commit())[0])
    return world, alice, bob1, bob2


def test_remove_user_removes_every_client_unless_built_with_the_fault(room):
    world, alice, bob1, bob2 = room
    assert len(alice.leaves_of_user(bob1.user_uri.encode())) == 2
    outgoing = alice.remove_user(bob1.user_uri.encode())
    ok(world.commit(alice, outgoing)[0])
    assert bob1.removed and bob2.removed


def test_remove_user_misses_a_client_when_built_with_the_fault(room):
    world, alice, bob1, bob2 = room
    alice.built_with(overrides_for([REMOVE_USER_MISSES_A_CLIENT]))
    response, _ = world.commit(alice, alice.remove_user(bob1.user_uri.encode()))
    # One client of the removed user stays: the hub refuses the commit.
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "POLICY-CAP-REMOVE-PARTICIPANT-NO-CLIENTS-LEFT" in response.errorDescription, response.errorDescription
    assert not bob1.removed and not bob2.removed


def _more_proposals(request: bytes) -> int:
    return len(UpdateRequest.decode(request, scope={"protocol": 1}).bundle.moreProposals)


def test_leave_removes_other_clients_unless_built_with_the_fault(room):
    _, _, bob1, _ = room
    assert _more_proposals(bob1.self_leave_request()) == 2  # Remove of bob2, participant-list removal
    bob1.built_with(overrides_for([LEAVE_KEEPS_OTHER_CLIENTS]))
    assert _more_proposals(bob1.self_leave_request()) == 1  # only the participant-list removal


def test_sender_not_in_clear_unless_built_with_the_fault(room):
    _, _, bob1, _ = room

    def aad(body: bytes) -> bytes:
        request = SubmitMessageRequest.decode(body, scope={"protocol": 1})
        return bytes(request.appMessage.private_message.authenticated_data)

    assert aad(bob1.send(b"hi")) == b""
    bob1.built_with(overrides_for([SUBMIT_SENDER_IN_CLEAR]))
    assert aad(bob1.send(b"hi")) == bob1.uri.encode()


def test_pseudonym_is_a_user_only_when_built_with_the_fault():
    assert user_of_uri(PSEUDONYM) is None
    assert user_of_uri(PSEUDONYM, NO_OVERRIDES) is None
    fault = overrides_for([PSEUDONYMS_ACCEPTED])
    assert user_of_uri(PSEUDONYM, fault) == PSEUDONYM.encode()
    assert user_of_credential(basic_credential(PSEUDONYM.encode()), fault) == PSEUDONYM.encode()
    # A client URI still names its user; the hook only answers for URIs that name none.
    assert user_of_uri("mimi://b.example/d/bob/b1", fault) == b"mimi://b.example/u/bob"


def test_max_clients_enforced_unless_built_with_the_fault():
    policy = default_policy(max_clients=2)
    a, b = b"mimi://a.example/u/a", b"mimi://b.example/u/b"
    roles = {a: ROLE_ADMIN, b: ROLE_MEMBER}
    refusal = policy.check_constraints(roles, roles, [a, b], [a, b], 3)
    assert refusal is not None and refusal.requirement == "POLICY-BASE-MAX-CLIENTS"
    assert policy.check_constraints(roles, roles, [a, b], [a, b], 3, overrides_for([MAX_CLIENTS_IGNORED])) is None


def test_a_copied_client_keeps_its_overrides(room):
    import copy
    import pickle

    _, _, bob1, _ = room
    fault = overrides_for([SUBMIT_SENDER_IN_CLEAR])
    bob1.built_with(fault)
    assert copy.copy(bob1).overrides is fault  # a per-room member made from a client's keys
    assert pickle.loads(pickle.dumps(bob1)).overrides is NO_OVERRIDES  # never stored


# -- allowed variants (reference_peer.faults.variants_rooms): every rule still holds -----------------


def test_variant_leave_with_remove_of_own_leaf(room):

    world, alice, bob1, bob2 = room
    bob1.built_with(overrides_for([LEAVE_WITH_REMOVE_OF_OWN_LEAF]))
    request = bob1.self_leave_request()
    head = UpdateRequest.decode(request, scope={"protocol": 1}).bundle.proposalOrCommit
    proposal = head.public_message.content.proposal
    assert proposal.proposal_type == ProposalType.remove and proposal.remove.removed == bob1.group.own_leaf
    ok(world.update(bob1, request)[0])
    assert world.submit(bob2, b"x")[0].statusCode == SubmitResponseCode.notAllowed  # departing
    ok(world.commit(alice, alice.commit())[0])
    assert bob1.removed and bob2.removed and bob1.user_uri.encode() not in world.room.roles()


def test_variant_remove_user_removes_first(room):

    world, alice, bob1, bob2 = room
    alice.built_with(overrides_for([REMOVE_USER_REMOVES_FIRST]))
    ok(world.commit(alice, alice.remove_user(bob1.user_uri.encode()))[0])
    assert bob1.removed and bob2.removed and bob1.user_uri.encode() not in world.room.roles()


def test_variant_padded_application_messages(room):

    world, alice, bob1, _ = room
    plain = len(SubmitMessageRequest.decode(bob1.send(b"hi"), scope={"protocol": 1}).appMessage.encode())
    bob1.built_with(overrides_for([PADDED_APPLICATION_MESSAGES]))
    body = bob1.send(b"hi")
    assert len(SubmitMessageRequest.decode(body, scope={"protocol": 1}).appMessage.encode()) > plain
    accepted(world.submit(bob1, b"", request=body)[0])
    assert [e.data for e in alice.inbox] == [b"hi"]


def test_variant_commit_with_partial_groupinfo(room):
    world, alice, bob1, bob2 = room
    bob1.built_with(overrides_for([COMMIT_WITH_PARTIAL_GROUPINFO]))
    outgoing = bob1.commit()
    option = UpdateRequest.decode(outgoing.request, scope={"protocol": 1}).bundle.groupInfoOption
    assert option.representation == GroupInfoRepresentation.partial
    ok(world.commit(bob1, outgoing)[0])
    assert world.room.view.epoch == bob1.epoch
    info = decode_message(bob1.group.group_info(ratchet_tree=False)).group_info
    assert world.room.group_info.encode() == info.encode()  # the hub rebuilt the committer's GroupInfo
