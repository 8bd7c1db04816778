"""A user whose removal from the participant list is accepted, not yet committed, and not accompanied by any
Remove proposal, is bound by the removal rule (-06 §5.3), whatever its role still holds in the meantime.

-06 §5.3: once a user's removal is accepted, the hub "MUST prevent it from sending any proposals except for
Remove and SelfRemove [I-D.ietf-mls-extensions] proposals for its users in that group." (PROTO-REMOVAL-ONLY-
REMOVE-PROPOSALS). -06 §7.1: a proposal takes effect for the hub's authorization once accepted.

test_hub_authorization.py::test_admin_being_removed_loses_its_capabilities removes the admin by the
participant-list removal *and* the Remove proposals of his clients; here the admin's removal is the
participant-list AppDataUpdate alone (the user's removal; the Removes of his clients may come with the commit),
and what he then proposes is a participant-list AppDataUpdate removing another member (a change his admin role
would authorize, but not a removal "for its users") and a Remove of that member's client. Each is refused (any
refusal, AMB-FAILURE-CODE-STATUS) and not fanned out. What the sentence leaves him is then accepted: the Remove of
his own other client, a Remove "for its users" that his role authorizes (canRemoveOwnClient, room-policy-04
§8.1.2), as a leave with several clients needs. A hub that does not take a participant-list removal without its
Removes as a proposal makes the check NOT_APPLICABLE (the draft does not make it accept one).
"""

from __future__ import annotations

import pytest

from conformance.scenarios.roles import as_hub
from conformance.scenarios.test_hub_authorization import judge_each_proposal_refused
from conformance.scenarios.test_removal import (
    _post_update,
    _synced_state,
    setting_up,
)
from conformance.scenarios.test_room_policy_matrix import ADMIN, _add, _policy_room, _roles
from conformance.verdicts import expect, judging, not_applicable
from reference_peer.mls import app_data_update_proposal, remove_proposal
from reference_peer.room import participants as plist_mod
from reference_peer.wire.mimi import COMPONENT_PARTICIPANT_LIST

ONLY_REMOVE_PROPOSALS = "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS"


def _removal_update(plist, user: str, who: str):
    """The ParticipantListUpdate removing ``user`` from ``plist`` (the list as the proposer reads it)."""
    index = plist_mod.index_of(plist, user.encode())
    if index is None:
        not_applicable(f"set-up failed: {who}'s client does not list {user} in the participant list")
    return plist_mod.make_update(removed=[index])


def _proposal(update):
    return app_data_update_proposal(int(COMPONENT_PARTICIPANT_LIST), update.encode())


@pytest.mark.requirements(ONLY_REMOVE_PROPOSALS)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_user_whose_listed_removal_is_pending_may_not_remove_others(cast, sut, ref_follower, mimi_as, poll_until,
                                                                    recorder):
    """Dave (admin) proposes only bob's participant-list removal; the hub accepts it. Bob (admin: canKick,
    canRemoveParticipant, and an authorized change from member to 0) then proposes a participant-list
    AppDataUpdate removing carol, then a Remove of carol's client: -06 §5.3 makes the hub "prevent it from
    sending any proposals except for Remove and SelfRemove ... proposals for its users", so each is refused and
    not fanned out. Bob's proposal of the Remove of his own other client, which the sentence leaves him and his
    role authorizes (canRemoveOwnClient), is then accepted."""
    room, alice = _policy_room(cast, {"roles": _roles()})
    dave = ref_follower.create_user("dave")
    bob = ref_follower.create_user("bob", clients=2)
    carol = ref_follower.create_user("carol")
    _add(cast, room, alice, dave, role=ADMIN)
    _add(cast, room, alice, bob, role=ADMIN)
    _add(cast, room, alice, carol)
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    bob_state = _synced_state(ref_follower, cast.hub, room, bob.client, poll_until)
    bobs_removal = _removal_update(dave_state.participant_list(), bob.uri, "dave")
    body = dave_state.proposals_request([_proposal(bobs_removal)])
    recorder.note(f"dave proposes {bob.uri}'s participant-list removal alone (not committed, no Remove proposal)")
    with setting_up("dave's participant-list proposal removing bob"):
        answer = _post_update(mimi_as, sut, room, body, ONLY_REMOVE_PROPOSALS)
    if answer.refused:
        not_applicable(f"the hub refused ({answer.label}) the admin dave's participant-list proposal removing bob "
                       "without Remove proposals of his clients, so bob's removal was never accepted")
    carol_leaves = bob_state.leaves_of_user(carol.uri.encode())
    if not carol_leaves:
        not_applicable(f"set-up failed: bob's client does not see carol's client in the group of {room}")
    # -06 §7.1: the accepted proposal's effect applies at once, so bob's update indexes the list without him.
    accepted_list, _ = plist_mod.apply_update(bob_state.participant_list(), bobs_removal, set())
    judge_each_proposal_refused(
        ONLY_REMOVE_PROPOSALS,
        (("a participant-list AppDataUpdate by bob (admin, canRemoveParticipant) removing carol while his own "
          "listed removal is pending", _proposal(_removal_update(accepted_list, carol.uri, "bob"))),
         ("a Remove proposal of carol's client by bob (admin, canKick) while his own listed removal is pending",
          remove_proposal(carol_leaves[0]))),
        proposer=bob_state, witness=dave.client, cast=cast, sut=sut, mimi_as=mimi_as, ref_follower=ref_follower,
        recorder=recorder, room=room, sender=alice)
    own = [leaf for leaf in bob_state.leaves_of_user(bob.uri.encode()) if leaf != bob_state.group.own_leaf]
    if not own:
        not_applicable(f"set-up failed: bob's client does not see his second client in the group of {room}")
    recorder.note("a Remove proposal of bob's own second client by bob (canRemoveOwnClient) while his listed "
                  "removal is pending")
    with judging(ONLY_REMOVE_PROPOSALS):
        answer = _post_update(mimi_as, sut, room, bob_state.proposals_request([remove_proposal(own[0])]),
                              ONLY_REMOVE_PROPOSALS)
    recorder.note(f"the hub answered {answer.label}")
    expect(ONLY_REMOVE_PROPOSALS, answer.accepted,
           f"the hub refused ({answer.label}) the Remove of bob's own second client, a Remove proposal for his "
           "user, which -06 §5.3 leaves a user whose removal is pending and his role (canRemoveOwnClient) authorizes",
           evidence="it accepted bob's Remove proposal of his own second client")
