"""One defect per request: each refusal carries the specific code (and requirement) it should."""

from __future__ import annotations

import pytest
from room_world import HUB, World, ok

from reference_peer.mls import (
    Crafter,
    Tamper,
    add_proposal,
    app_data_update_proposal,
    external_proposal,
    forged_external_proposal,
    remove_proposal,
)
from reference_peer.mls.group import decode_message
from reference_peer.room import ROLE_ADMIN, ROLE_MEMBER, default_policy, make_update
from reference_peer.wire.identity import IdentifierUri
from reference_peer.wire.mimi import (
    COMPONENT_PARTICIPANT_LIST,
    GroupInfoOption,
    GroupInfoRepresentation,
    SubmitMessageRequest,
    SubmitResponseCode,
    UpdateRequest,
    UpdateResponseCode,
)
from reference_peer.wire.ratchet_tree_options import PartialGroupInfo, RatchetTreePresence


@pytest.fixture()
def room():
    world = World.make("b.example", "c.example")
    alice1 = world.client(HUB, "alice", "a1")
    bob1 = world.client("b.example", "bob", "b1")
    world.create_room(alice1)
    ok(world.add_user(alice1, [bob1])[0])
    ok(world.commit(alice1, alice1.commit())[0])  # the hub's external_senders proposal
    return world, alice1, bob1


def plist_update(**kwargs) -> object:
    return app_data_update_proposal(int(COMPONENT_PARTICIPANT_LIST), make_update(**kwargs).encode())


def careless_commit(client, proposals):
    """A commit from a client that does not apply participant-list rules (its handler is left out, so
    the list component is simply replaced): the hub's own apply must catch the defect."""
    handlers = client.group.app_data_handlers
    client.group.app_data_handlers = {}
    try:
        return Crafter(client.group).commit(proposals, validate=False)
    finally:
        client.group.app_data_handlers = handlers


def test_two_commits_for_one_epoch(room):
    world, alice1, bob1 = room
    epoch = world.room.epoch
    first, second = alice1.commit(), bob1.commit()
    ok(world.commit(alice1, first)[0])
    response, plan = world.commit(bob1, second)
    assert response.responseCode == UpdateResponseCode.wrongEpoch
    assert response.currentEpoch == epoch + 1 and plan.domains() == set()


def test_commit_for_a_future_epoch(room):
    world, alice1, _ = room
    crafted = Crafter(alice1.group).commit([], tamper=Tamper(epoch_delta=1))
    response, _ = world.update(alice1, alice1.wrap_commit(crafted.commit))
    assert response.responseCode == UpdateResponseCode.wrongEpoch
    assert response.currentEpoch == world.room.epoch


def test_commit_with_a_bad_signature(room):
    world, alice1, _ = room
    epoch = world.room.epoch
    crafted = Crafter(alice1.group).commit([], tamper=Tamper(bad_signature=True))
    response, plan = world.update(alice1, alice1.wrap_commit(crafted.commit))
    assert response.responseCode == UpdateResponseCode.invalidProposal
    assert "CryptoError" in response.errorDescription or "signature" in response.errorDescription
    assert world.room.epoch == epoch and plan.domains() == set()


def test_commit_sent_by_another_provider(room):
    world, alice1, _ = room
    response, _ = world.update(alice1, alice1.commit().request, domain="c.example")
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "PROTO-ROOMSTATE-PUBLICMESSAGE-AUTH" in response.errorDescription


def test_groupinfo_that_does_not_match_the_commit(room):
    world, alice1, _ = room
    outgoing = alice1.commit()
    request = alice1.wrap_commit(outgoing.commit)  # the current epoch's GroupInfo, not the new one
    response, _ = world.update(alice1, request)
    assert response.responseCode == UpdateResponseCode.invalidProposal
    assert "GroupInfo" in response.errorDescription


def test_member_cannot_add_a_user(room):
    world, _, bob1 = room
    carol = world.client("c.example", "carol", "c1")
    response, _ = world.add_user(bob1, [carol])
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "POLICY-CAP-ADD-PARTICIPANT-ROLE-CHANGE" in response.errorDescription


def test_admin_cannot_add_into_a_role_it_may_not_grant():
    world = World.make("b.example")
    alice1 = world.client(HUB, "alice", "a1")
    world.create_room(alice1)
    bob1 = world.client("b.example", "bob", "b1")
    response, _ = world.add_user(alice1, [bob1], role=7)
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "POLICY-ROLE-ONE-ROLE-PER-USER" in response.errorDescription


def test_clients_without_the_participant_list_add(room):
    world, alice1, _ = room
    carol = world.client("c.example", "carol", "c1")
    response, _ = world.commit(alice1, alice1.add_users([carol.make_key_package().key_package]))
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "PROTO-UPDATE-ADD-PLIST-FIRST" in response.errorDescription


def test_participant_removed_but_clients_kept(room):
    world, alice1, bob1 = room
    index = [bytes(p.user) for p in alice1.participant_list().participants].index(bob1.user_uri.encode())
    response, _ = world.commit(alice1, alice1.commit([plist_update(removed=[index])]))
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "POLICY-CAP-REMOVE-PARTICIPANT-NO-CLIENTS-LEFT" in response.errorDescription


def test_user_touched_twice_in_one_commit(room):
    world, alice1, bob1 = room
    index = [bytes(p.user) for p in alice1.participant_list().participants].index(bob1.user_uri.encode())
    proposals = [
        plist_update(role_changes=[(index, ROLE_ADMIN)]),
        plist_update(removed=[index]),
        remove_proposal(alice1.leaf_of(bob1)),
    ]
    out = careless_commit(alice1, proposals)
    response, _ = world.update(alice1, alice1.wrap_commit(out.commit))
    assert response.responseCode == UpdateResponseCode.invalidProposal
    assert "more than once" in response.errorDescription


def test_adding_a_user_already_present(room):
    world, alice1, bob1 = room
    out = careless_commit(alice1, [plist_update(added=[(bob1.user_uri.encode(), ROLE_MEMBER)])])
    response, _ = world.update(alice1, alice1.wrap_commit(out.commit))
    assert response.responseCode == UpdateResponseCode.invalidProposal
    assert "already in the participant list" in response.errorDescription


def test_proposal_with_a_bad_signature(room):
    world, alice1, bob1 = room
    crafted = Crafter(alice1.group).proposal(remove_proposal(alice1.leaf_of(bob1)), bad_signature=True)
    response, _ = world.update(alice1, alice1.proposal_messages_request([crafted]))
    assert response.responseCode == UpdateResponseCode.invalidProposal
    assert len(response.invalidProposals) == 1


def test_max_users_of_a_custom_policy():
    world = World.make("b.example", "c.example")
    alice1 = world.client(HUB, "alice", "a1")
    world.create_room(alice1, policy=default_policy(max_users=2))
    ok(world.add_user(alice1, [world.client("b.example", "bob", "b1")])[0])
    response, _ = world.add_user(alice1, [world.client("c.example", "carol", "c1")])
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "POLICY-BASE-MAX-USERS" in response.errorDescription


def test_max_clients_of_a_custom_policy():
    world = World.make("b.example")
    alice1 = world.client(HUB, "alice", "a1")
    world.create_room(alice1, policy=default_policy(max_clients=2))
    bob1, bob2 = world.client("b.example", "bob", "b1"), world.client("b.example", "bob", "b2")
    response, _ = world.add_user(alice1, [bob1, bob2])
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "POLICY-BASE-MAX-CLIENTS" in response.errorDescription


# -- submitMessage ---------------------------------------------------------------------------------


def test_message_from_an_older_epoch(room):
    world, alice1, bob1 = room
    old = bob1.send(b"late")
    ok(world.commit(alice1, alice1.commit())[0])
    response, plan = world.room.handle_submit("b.example", old, world.now())
    assert response.statusCode == SubmitResponseCode.epochTooOld
    assert response.currentEpoch == world.room.epoch and plan.domains() == set()


def test_message_for_a_future_epoch(room):
    world, alice1, _ = room
    crafted = Crafter(alice1.group).application(b"from the future", epoch=world.room.epoch + 1)
    request = SubmitMessageRequest(
        protocol=1, appMessage=decode_message(crafted), sendingUri=IdentifierUri(uri=alice1.user_uri.encode())
    )
    response, plan = world.room.handle_submit(HUB, request.encode(), world.now())
    assert response.statusCode == SubmitResponseCode.notAllowed and plan.domains() == set()


def test_sending_uri_of_another_provider_or_a_non_participant(room):
    world, alice1, bob1 = room
    message = SubmitMessageRequest.decode(bob1.send(b"spoof"))
    as_alice = message.replace(sendingUri=IdentifierUri(uri=alice1.user_uri.encode())).encode()
    response, _ = world.room.handle_submit("b.example", as_alice, world.now())
    assert response.statusCode == SubmitResponseCode.notAllowed
    as_carol = message.replace(sendingUri=IdentifierUri(uri=b"mimi://b.example/u/carol")).encode()
    response, _ = world.room.handle_submit("b.example", as_carol, world.now())
    assert response.statusCode == SubmitResponseCode.notAllowed
    # The unmodified request is accepted: the refusals above are due to sendingUri alone.
    response, _ = world.room.handle_submit("b.example", message.encode(), world.now())
    assert response.statusCode == SubmitResponseCode.accepted


def test_handshake_on_submit_and_garbage(room):
    world, alice1, _ = room
    proposal = alice1.group.propose(
        add_proposal(world.client("c.example", "carol", "c1").make_key_package().key_package)
    )
    request = SubmitMessageRequest(
        protocol=1, appMessage=decode_message(proposal), sendingUri=IdentifierUri(uri=alice1.user_uri.encode())
    ).encode()
    response, _ = world.room.handle_submit(HUB, request, world.now())
    assert response.statusCode == SubmitResponseCode.notAllowed
    response, _ = world.room.handle_submit(HUB, b"\x01\x00garbage", world.now())
    assert response.statusCode == SubmitResponseCode.notAllowed


def test_role_without_send_permission():
    world = World.make("b.example")
    policy = default_policy()
    member = policy.role(ROLE_MEMBER)
    policy.roles.roles[ROLE_MEMBER] = member.replace(
        role_capabilities=[c for c in member.role_capabilities if c != 0x0100]
    )
    alice1 = world.client(HUB, "alice", "a1")
    world.create_room(alice1, policy=policy)
    bob1 = world.client("b.example", "bob", "b1")
    ok(world.add_user(alice1, [bob1])[0])
    response, _ = world.submit(bob1, b"may I?")
    assert response.statusCode == SubmitResponseCode.notAllowed
    assert world.submit(alice1, b"I may")[0].statusCode == SubmitResponseCode.accepted


def test_forged_external_proposal(room):
    world, alice1, bob1 = room
    forged = forged_external_proposal(alice1.group, remove_proposal(alice1.leaf_of(bob1)))
    response, plan = world.update(alice1, alice1.proposal_messages_request([forged]))
    assert response.responseCode == UpdateResponseCode.invalidProposal and plan.domains() == set()


def follower_proposal(world, domain, proposal) -> bytes:
    """An external proposal by a follower provider listed in external_senders."""
    senders = world.room.view.external_senders()
    index = next(i for i, s in enumerate(senders) if bytes(s.credential.identity) == f"mimi://{domain}".encode())
    return external_proposal(1, world.room.group_id, world.room.epoch, index, world.follower_keys[domain], proposal)


def test_follower_removes_its_own_user_but_not_others(room):
    world, alice1, bob1 = room
    carol = world.client("c.example", "carol", "c1")
    ok(world.add_user(alice1, [carol])[0])
    ok(world.commit(alice1, alice1.commit())[0])  # c.example joins external_senders
    plist = [bytes(p.user) for p in alice1.participant_list().participants]
    # c.example may not take bob (of b.example) out of the room...
    others = [follower_proposal(world, "c.example", remove_proposal(alice1.leaf_of(bob1)))]
    response, _ = world.update(alice1, alice1.proposal_messages_request(others), domain="c.example")
    assert response.responseCode == UpdateResponseCode.notAllowed, response
    others = [follower_proposal(world, "c.example", plist_update(removed=[plist.index(bob1.user_uri.encode())]))]
    response, _ = world.update(alice1, alice1.proposal_messages_request(others), domain="c.example")
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "PROTO-PLIST-CHANGES-AUTHORIZED-SEPARATELY" in response.errorDescription
    # ...nor send b.example's proposals.
    own = [follower_proposal(world, "b.example", remove_proposal(alice1.leaf_of(bob1)))]
    response, _ = world.update(alice1, alice1.proposal_messages_request(own), domain="c.example")
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "PROTO-ROOMSTATE-PUBLICMESSAGE-AUTH" in response.errorDescription
    # b.example removes its deleted user bob: his client and his entry; alice commits it.
    own = [
        follower_proposal(world, "b.example", remove_proposal(alice1.leaf_of(bob1))),
        follower_proposal(world, "b.example", plist_update(removed=[plist.index(bob1.user_uri.encode())])),
    ]
    ok(world.update(alice1, alice1.proposal_messages_request(own), domain="b.example")[0])
    ok(world.commit(alice1, alice1.commit())[0])
    assert bob1.removed and bob1.user_uri.encode() not in world.room.roles()


def test_partial_group_info_is_rebuilt_by_the_hub(room):
    world, alice1, bob1 = room
    outgoing = alice1.commit()
    request = UpdateRequest.decode(outgoing.request, scope={"protocol": 1})
    full = request.bundle.groupInfoOption.groupInfo
    partial = PartialGroupInfo(
        ratchet_tree_presence=RatchetTreePresence.no_ratchet_tree,
        group_info_extensions=full.extensions,
        signature=full.signature,
    )
    option = GroupInfoOption(representation=GroupInfoRepresentation.partial, partialGroupInfo=partial)
    bundle = request.bundle.replace(groupInfoOption=option)
    response, _ = world.room.handle_update(HUB, request.replace(bundle=bundle).encode(), world.now())
    ok(response)
    alice1.commit_accepted()
    assert world.room.group_info.encode() == full.encode()
    # A partial GroupInfo whose signature does not match is refused.
    outgoing = alice1.commit()
    request = UpdateRequest.decode(outgoing.request, scope={"protocol": 1})
    partial = partial.replace(group_info_extensions=request.bundle.groupInfoOption.groupInfo.extensions)
    option = GroupInfoOption(representation=GroupInfoRepresentation.partial, partialGroupInfo=partial)
    response, _ = world.room.handle_update(
        HUB, request.replace(bundle=request.bundle.replace(groupInfoOption=option)).encode(), world.now()
    )
    assert response.responseCode == UpdateResponseCode.invalidProposal
    assert "signature" in response.errorDescription
