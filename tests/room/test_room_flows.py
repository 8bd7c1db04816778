"""End-to-end room flows without HTTP: a hub (a.example), followers b.example and c.example."""

from __future__ import annotations

import pytest
from room_world import HUB, World, accepted, ok

from reference_peer.room import ROLE_MEMBER
from reference_peer.wire.mimi import FanoutMessage, SubmitMessageRequest, SubmitResponseCode, UpdateResponseCode


@pytest.fixture()
def world() -> World:
    return World.make("b.example", "c.example")


@pytest.fixture()
def room_ab(world):
    """alice (hub, 2 clients) created the room and added bob (b.example, 2 clients)."""
    alice1, alice2 = world.client(HUB, "alice", "a1"), world.client(HUB, "alice", "a2")
    bob1, bob2 = world.client("b.example", "bob", "b1"), world.client("b.example", "bob", "b2")
    world.create_room(alice1)
    # alice's second client: her own client, added by alice1 (canAddOwnClient).
    kp = alice2.make_key_package()
    ok(world.commit(alice1, alice1.add_users([kp.key_package]))[0])
    response, plan = world.add_user(alice1, [bob1, bob2])
    ok(response)
    return world, plan, alice1, alice2, bob1, bob2


def test_create_add_with_welcome_routed_only_to_the_joiners_provider(room_ab):
    world, plan, alice1, alice2, bob1, bob2 = room_ab
    welcomes = {d: [m for m in plan.messages_for(d) if m.message.welcome is not None] for d in plan.domains()}
    assert {d for d, ms in welcomes.items() if ms} == {"b.example"}
    assert welcomes["b.example"][0].ratchetTreeOption is not None
    assert bob1.group is not None and bob2.group is not None
    assert bob1.epoch == alice1.epoch == alice2.epoch == world.room.epoch
    # Everyone sees the same participant list: alice admin, bob member.
    assert bob1.participant_list() == alice2.participant_list() == world.room.participant_list()
    assert world.room.roles()[bob1.user_uri.encode()] == ROLE_MEMBER
    assert world.room.active_providers() == {HUB, "b.example"}


def test_messages_both_ways_are_byte_identical_and_carry_no_sender(room_ab):
    world, _, alice1, alice2, bob1, bob2 = room_ab
    request_bytes = bob1.send(b"hello from bob")
    response, plan = world.submit(bob1, b"", request=request_bytes)
    accepted(response)
    assert plan.domains() == {HUB, "b.example"}  # c.example has no participant
    sent = [m.message.encode() for d in plan.domains() for m in plan.messages_for(d)]
    original = SubmitMessageRequest.decode(request_bytes).appMessage.encode()
    assert all(s == original for s in sent)
    for domain in plan.domains():
        body = plan.body_for(domain)
        assert bob1.user_uri.encode() not in body and bob1.uri.encode() not in body
        assert all(m.timestamp == response.accepted_timestamp for m in plan.messages_for(domain))
    assert [e.data for e in alice1.inbox] == [b"hello from bob"] == [e.data for e in alice2.inbox]
    assert [e.data for e in bob2.inbox] == [b"hello from bob"]
    assert alice1.inbox[0].sender_identity == bob1.uri.encode()
    assert bob1.inbox == []  # its own echo is recognised, not an error
    assert bob1.errors == []
    accepted(world.submit(alice2, b"hi bob")[0])
    assert [e.data for e in bob1.inbox] == [b"hi bob"]
    assert [e.data for e in bob2.inbox] == [b"hello from bob", b"hi bob"]


def test_no_fanout_to_a_provider_without_active_participants(room_ab):
    world, _, alice1, *_ = room_ab
    carol = world.client("c.example", "carol", "c1")
    _, plan = world.submit(alice1, b"before carol")
    assert "c.example" not in plan.domains()
    assert not any(d == "c.example" for d, _ in world.sent)
    ok(world.add_user(alice1, [carol])[0])
    _, plan = world.submit(alice1, b"after carol")
    assert "c.example" in plan.domains()
    assert [e.data for e in carol.inbox] == [b"after carol"]


def test_remove_user_removes_all_clients_and_blocks_them(room_ab):
    world, _, alice1, alice2, bob1, bob2 = room_ab
    late_commit = bob2.commit([]).request  # made before the removal, sent after it
    response, plan = world.commit(alice1, alice1.remove_user(bob1.user_uri.encode()))
    ok(response)
    assert "b.example" in plan.domains()  # the removed user's provider gets the removal commit
    assert bob1.removed and bob2.removed
    assert bob1.user_uri.encode() not in world.room.roles()
    assert world.room.active_providers() == {HUB}
    response, plan = world.room.handle_update("b.example", late_commit, world.now())
    assert response.responseCode == UpdateResponseCode.notAllowed, response
    assert "PROTO-REMOVAL-BLOCK-COMMITS" in response.errorDescription
    assert plan.domains() == set()
    # The rest of the room goes on, without b.example.
    response, plan = world.submit(alice2, b"bye bob")
    accepted(response)
    assert plan.domains() == {HUB}
    assert [e.data for e in alice1.inbox] == [b"bye bob"]


def test_removed_users_messages_are_refused(room_ab):
    world, _, alice1, alice2, bob1, bob2 = room_ab
    late_message = bob2.send(b"still here?")  # encrypted in bob's last epoch
    ok(world.commit(alice1, alice1.remove_user(bob1.user_uri.encode()))[0])
    response, plan = world.room.handle_submit("b.example", late_message, world.now())
    assert response.statusCode == SubmitResponseCode.notAllowed and plan.domains() == set()


def test_fanout_messages_decode_as_concatenated_notify_bodies(room_ab):
    world, plan, *_ = room_ab
    body = plan.body_for("b.example")
    messages = FanoutMessage.decode_sequence(body, scope={"protocol": 1})
    kinds = ["welcome" if m.message.welcome is not None else m.message.content_type().name for m in messages]
    # The commit (with the hub's external_senders proposal stapled), the Welcome, then that proposal
    # again for the joiners, who were not members when the commit went out.
    assert kinds == ["commit", "welcome", "proposal"]
    assert [p.encode() for p in messages[0].externalProposals] == [messages[2].message.encode()]


def test_refused_update_is_an_answer_not_an_exception(world):
    alice1 = world.client(HUB, "alice", "a1")
    world.create_room(alice1)
    response, plan = world.room.handle_update(HUB, b"\x00\x01garbage", world.now())
    assert response.responseCode == UpdateResponseCode.invalidProposal and plan.domains() == set()
