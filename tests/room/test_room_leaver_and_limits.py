"""Issue 18 steps of the room rules: a leaver is bound within its own bundle (by default; a variant may judge
the bundle by the state before it, AMB-REMOVED-WITHIN-BUNDLE)
(hub.proposal.bind-leaver-within-bundle) and max_clients allows exactly its value
(policy.constraints.max-clients-inclusive); each departs only when built with its variant or fault."""

from __future__ import annotations

import pytest
from room_world import HUB, World, ok

from reference_peer.faults import overrides_for
from reference_peer.faults.multidevice import MAX_CLIENTS_EXCLUSIVE
from reference_peer.faults.variants_rooms import LEAVER_JUDGED_BY_STATE_BEFORE_BUNDLE
from reference_peer.mls import app_data_update_proposal, self_remove_proposal
from reference_peer.room import ROLE_ADMIN, ROLE_MEMBER, default_policy
from reference_peer.room import participants as plist_mod
from reference_peer.wire.mimi import COMPONENT_PARTICIPANT_LIST, UpdateResponseCode


@pytest.fixture()
def room():
    world = World.make("b.example")
    alice = world.client(HUB, "alice", "a1")
    bob = world.client("b.example", "bob", "b1")
    world.create_room(alice)
    ok(world.add_user(alice, [bob])[0])
    return world, alice, bob


def _leave_with_update(bob) -> bytes:
    group = bob.group
    index = plist_mod.index_of(bob.participant_list(), bob.user_uri.encode())
    removal = app_data_update_proposal(int(COMPONENT_PARTICIPANT_LIST), plist_mod.make_update(removed=[index]).encode())
    return bob.proposal_messages_request(
        [group.propose(removal), group.propose(self_remove_proposal()), group.propose_update()])


def test_an_update_after_the_senders_own_removal_in_one_bundle_is_refused(room):
    world, _alice, bob = room
    response, plan = world.update(bob, _leave_with_update(bob))
    assert response.responseCode == UpdateResponseCode.notAllowed
    assert "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS" in response.errorDescription
    assert not plan.domains()


def test_the_bundle_is_accepted_when_built_with_the_variant(room):
    world, _alice, bob = room
    world.room.built_with(overrides_for([LEAVER_JUDGED_BY_STATE_BEFORE_BUNDLE]))
    ok(world.update(bob, _leave_with_update(bob))[0])


def test_max_clients_allows_exactly_its_value_unless_built_with_the_fault():
    policy = default_policy(max_clients=2)
    a, b = b"mimi://a.example/u/a", b"mimi://b.example/u/b"
    roles = {a: ROLE_ADMIN, b: ROLE_MEMBER}
    assert policy.check_constraints(roles, roles, [a, b], [a, b], 2) is None
    refusal = policy.check_constraints(roles, roles, [a, b], [a, b], 2, overrides_for([MAX_CLIENTS_EXCLUSIVE]))
    assert refusal is not None and refusal.requirement == "POLICY-BASE-MAX-CLIENTS"
