"""An accepted, uncommitted participant-list change is the state later proposals are judged in
(draft-ietf-mimi-protocol-06 §7.1).

The SUT is the hub. The room is created with an explicit policy (a SUT that cannot host it makes the check
NOT_APPLICABLE). The proposals judged are built by the suite's reference-follower clients from their MLS state
and sent to the SUT's /update as follower.ref.test. A refusal is read the way AMB-FAILURE-CODE-STATUS accepts (any
non-2xx status, or any code other than success).
"""

from __future__ import annotations

import pytest

from conformance.scenarios.roles import as_hub
from conformance.scenarios.test_removal import _plist_removal, _post_update, _synced_state
from conformance.scenarios.test_room_policy_matrix import ADMIN, MEMBER, _add, _policy_room, _roles, _roles_at_hub
from conformance.verdicts import fail, judging, not_applicable, observed
from reference_peer.mls import app_data_update_proposal, remove_proposal
from reference_peer.room import participants as plist_mod
from reference_peer.wire.mimi import COMPONENT_PARTICIPANT_LIST

APPLIED_ON_ACCEPT = "PROTO-ROOMSTATE-APPLIED-ON-ACCEPT"


@pytest.mark.requirements(APPLIED_ON_ACCEPT)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_later_proposal_is_judged_in_the_list_a_pending_removal_left(cast, sut, ref_follower, mimi_as, poll_until,
                                                                      recorder):
    """-06 §7.1: "As soon as the Hub accepts an event that changes the room state, its effect is applied to the
    room state and future events are validated in the context of that new state. The room state is thus changed
    based on events, even if the MLS proposal implementing the event was not yet committed by a client." The
    participant list holds alice, dave, carol, erin and bob in that order (dave and erin admins, carol and bob
    members). Dave proposes carol's removal (her participant-list entry and her client), which the hub accepts and
    nobody commits. In the list that removal left, bob is at the index erin held before it. Erin then proposes the
    role change of that index to admin: in the new state it is bob's change from member to admin, which erin's role
    authorizes (canChangeUserRole, an entry member -> admin), so the hub must accept it. A hub judging it in the
    committed list would read it as erin changing her own role, which no role authorizes (room-policy-04 §8.1.3
    canChangeUserRole: "the role of another participant (but not itself)")."""
    room, alice = _policy_room(cast, {"roles": _roles()})
    dave = ref_follower.create_user("dave")
    carol = ref_follower.create_user("carol")
    erin = ref_follower.create_user("erin")
    bob = ref_follower.create_user("bob")
    _add(cast, room, alice, dave, role=ADMIN)
    _add(cast, room, alice, carol)
    _add(cast, room, alice, erin, role=ADMIN)
    _add(cast, room, alice, bob)
    listed = _roles_at_hub(cast, room)
    wanted = {dave.uri: ADMIN, carol.uri: MEMBER, erin.uri: ADMIN, bob.uri: MEMBER}
    if any(listed.get(user) != role for user, role in wanted.items()):
        not_applicable(f"set-up failed: the SUT does not list dave and erin as admins and carol and bob as members: "
                       f"{listed}")
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    erin_state = _synced_state(ref_follower, cast.hub, room, erin.client, poll_until)
    committed = erin_state.participant_list()
    at = {user: plist_mod.index_of(committed, user.uri.encode()) for user in (carol, erin, bob)}
    if None in at.values() or not at[carol] < at[erin] == at[bob] - 1:
        not_applicable(f"the SUT's participant list does not hold carol before erin and bob right after erin "
                       f"(indexes {[(u.uri, i) for u, i in at.items()]}), the order this check needs")
    leaves = dave_state.leaves_of_user(carol.uri.encode())
    if not leaves:
        not_applicable(f"set-up failed: dave's client does not see carol's client in the group of {room}")
    removal = dave_state.proposals_request([_plist_removal(dave_state, carol.uri.encode()),
                                            *[remove_proposal(leaf) for leaf in leaves]])
    answer = _post_update(mimi_as, sut, room, removal, APPLIED_ON_ACCEPT)
    recorder.note(f"dave proposes carol's removal (not committed): {answer.label}")
    if not answer.accepted:
        not_applicable(f"set-up failed: the hub refused ({answer.label}) dave's proposals removing carol, so no "
                       "accepted uncommitted change is there to judge later proposals in")
    index = at[erin]  # bob's index once carol's entry is gone
    update = plist_mod.make_update(role_changes=[(index, ADMIN)]).encode()
    body = erin_state.proposals_request([app_data_update_proposal(int(COMPONENT_PARTICIPANT_LIST), update)])
    recorder.note(f"erin proposes the change of index {index} (bob once carol is removed, erin herself before) to "
                  "admin")
    with judging(APPLIED_ON_ACCEPT):
        answer = _post_update(mimi_as, sut, room, body, APPLIED_ON_ACCEPT)
    recorder.note(f"the hub answered {answer.label}")
    if not answer.accepted:
        fail(f"the hub refused ({answer.label}) erin's proposal changing index {index} to admin: in the list dave's "
             "accepted removal of carol left, that index is bob, a member whose change to admin erin's role "
             "authorizes; only in the committed list is it erin's own entry", requirement=APPLIED_ON_ACCEPT)
    observed(APPLIED_ON_ACCEPT, f"after accepting dave's uncommitted removal of carol, the hub accepted ({answer.label}) "
             f"erin's proposal changing index {index}, bob's in the new list (erin's own in the committed one), to "
             "admin")
