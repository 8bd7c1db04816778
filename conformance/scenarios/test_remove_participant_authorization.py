"""Removing another participant from the participant list needs both halves of room-policy-04 §8.1.2's rule: the
canRemoveParticipant capability and an authorized_role_changes entry, from the target's current role, whose
target_role_indexes include 0 (POLICY-CAP-REMOVE-PARTICIPANT-AUTHZ).

room-policy-04 §8.1.2: "canRemoveParticipant - the holder of this capability can propose removing another
participant ... A proposer holding this capability consults its role's authorized_role_changes entries for an
entry where from_role_index matches the target user's current role; if the target_role_indexes for that entry
contains zero, and the minimum_participants_constraint and minimum_active_participants_constraint are satisfied,
the proposal is authorized."

The SUT is the hub; the room is created with an explicit policy (a SUT that cannot host it makes the check
NOT_APPLICABLE). The proposals judged are participant-list AppDataUpdates built by the suite's reference-follower
clients and sent to the SUT's /update as follower.ref.test. A refusal is any refusal (AMB-FAILURE-CODE-STATUS) and
is judged by its effect: nothing applied or fanned out. A positive control (the same kind of removal within the
rule) must be accepted, else the refusals cannot be laid on the rule and the check is NOT_APPLICABLE.
"""

from __future__ import annotations

import pytest

from conformance.scenarios.roles import as_hub
from conformance.scenarios.test_removal import _post_update, _synced_state, setting_up
from conformance.scenarios.test_room_policy_matrix import (
    _MEMBER_CAPABILITIES,
    ADMIN,
    MEMBER,
    _add,
    _policy_room,
    _refused_unchanged,
    _roles,
    _roles_at_hub,
)
from conformance.verdicts import not_applicable, observed
from reference_peer.mls import app_data_update_proposal
from reference_peer.room import participants as plist_mod
from reference_peer.wire.mimi import COMPONENT_PARTICIPANT_LIST

REMOVE_AUTHZ = "POLICY-CAP-REMOVE-PARTICIPANT-AUTHZ"
REMOVER = 4  # canRemoveParticipant, but an authorized_role_changes entry only from member (2) to 0


def _removal_proposal(state, user: str, who: str):
    index = plist_mod.index_of(state.participant_list(), user.encode())
    if index is None:
        not_applicable(f"set-up failed: {who}'s client does not list {user} in the participant list")
    update = plist_mod.make_update(removed=[index])
    return app_data_update_proposal(int(COMPONENT_PARTICIPANT_LIST), update.encode())


@pytest.mark.requirements(REMOVE_AUTHZ)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_removing_another_participant_needs_the_capability_and_an_entry_to_0(cast, sut, ref_follower, mimi_as,
                                                                             poll_until, recorder):
    """Bob, a member whose role has an authorized_role_changes entry member -> 0 but no canRemoveParticipant,
    proposes carol's (a member's) removal from the participant list: refused. Erin, whose role holds
    canRemoveParticipant but an entry only from member to 0, proposes dave's (an admin's) removal: refused (the
    catalogue's "an ordinary user with canRemoveParticipant but no (3,[0]) entry cannot remove an admin"). Then
    erin proposes carol's removal, which both halves authorize: accepted (the positive control)."""
    roles = _roles(member={"authorizedRoleChanges": [{"from": MEMBER, "to": [0]}]})
    roles.append({"index": REMOVER, "name": "remover",
                  "capabilities": [*_MEMBER_CAPABILITIES, "canRemoveParticipant"],
                  "authorizedRoleChanges": [{"from": MEMBER, "to": [0]}]})
    roles[ADMIN]["authorizedRoleChanges"][0]["to"].append(REMOVER)  # alice adds erin as remover
    room, alice = _policy_room(cast, {"roles": roles})
    dave = ref_follower.create_user("dave")
    bob = ref_follower.create_user("bob")
    carol = ref_follower.create_user("carol")
    erin = ref_follower.create_user("erin")
    _add(cast, room, alice, dave, role=ADMIN)
    _add(cast, room, alice, bob)
    _add(cast, room, alice, carol)
    _add(cast, room, alice, erin, role=REMOVER)
    listed = _roles_at_hub(cast, room)
    if (listed.get(bob.uri), listed.get(carol.uri), listed.get(erin.uri), listed.get(dave.uri)) != (
            MEMBER, MEMBER, REMOVER, ADMIN):
        not_applicable(f"set-up failed: the SUT does not list bob, carol, erin, dave with roles "
                       f"{MEMBER}, {MEMBER}, {REMOVER}, {ADMIN}: {listed}")
    evidence = []
    for actor, target, why in (
            (bob, carol, "bob (member: an entry member -> 0, no canRemoveParticipant) removing carol (member)"),
            (erin, dave, "erin (canRemoveParticipant, an entry only from member to 0) removing dave (admin)")):
        state = _synced_state(ref_follower, cast.hub, room, actor.client, poll_until)
        body = state.proposals_request([_removal_proposal(state, target.uri, actor.uri)])
        what = f"a participant-list AppDataUpdate proposal by {why}"
        recorder.note(what)
        said = _refused_unchanged(REMOVE_AUTHZ, cast, sut, ref_follower, mimi_as, recorder, room, alice, dave
                                  if target is not dave else carol, body, what, unchanged=lambda: None)
        if said is None:
            return
        evidence.append(said)
    state = _synced_state(ref_follower, cast.hub, room, erin.client, poll_until)
    body = state.proposals_request([_removal_proposal(state, carol.uri, erin.uri)])
    recorder.note("erin (canRemoveParticipant, an entry member -> 0) proposes carol's (member) removal")
    with setting_up("the positive control: erin's authorized removal of carol"):
        answer = _post_update(mimi_as, sut, room, body, REMOVE_AUTHZ)
    recorder.note(f"the hub answered {answer.label}")
    if answer.refused:
        not_applicable(f"the hub also refused ({answer.label}) erin's removal of carol, which her role authorizes: "
                       "the refusals cannot be laid on the rule")
    observed(REMOVE_AUTHZ, "the hub " + "; ".join(evidence) + f"; it accepted ({answer.label}) erin's authorized "
             "removal of carol")
