"""A role whose maximum_active_participants_constraint is 0 has no client in the room's MLS group
(draft-ietf-mimi-room-policy-04 §3), judged where the hub alone decides it: a roles_list update that would set the
constraint to 0 on a role whose user still has a client.

room-policy-04 §3: "If the maximum number of active participants is zero, then no participants are allowed to have
clients in the room's MLS group." (POLICY-ROLE-MAX-ACTIVE-ZERO). The update is committed by a reference-follower
admin whose role holds canChangeRoleDefinitions (§8.6), so the change itself is authorized; only the resulting
group breaks the rule (the member bob keeps his client, and the commit removes none). The hub must not accept it:
any refusal (AMB-FAILURE-CODE-STATUS), judged by its effect (the role list unchanged at getRoom, nothing fanned
out). A hub that also refuses the same admin's valid roles_list update (a description change) shows nothing about
this rule: NOT_APPLICABLE.
"""

from __future__ import annotations

import pytest

from conformance.scenarios.roles import as_hub
from conformance.scenarios.test_removal import _post_update, _synced_state
from conformance.scenarios.test_room_policy_matrix import (
    ADMIN,
    MEMBER,
    _add,
    _member_role_field,
    _member_role_update,
    _policy_room,
    _refused_unchanged,
    _roles,
    _roles_update,
)
from conformance.verdicts import judging, not_applicable, observed

MAX_ACTIVE_ZERO = "POLICY-ROLE-MAX-ACTIVE-ZERO"


def _zero_active_update(member_state):
    """A roles_list AppDataUpdate whose member role has maximum_active_participants_constraint 0."""
    return _member_role_update(member_state, lambda role: setattr(role, "maximum_active_participants_constraint", 0))


def _member_max_active(cast, room: str):
    """The member role's maxActiveParticipants at getRoom; "absent" when the role is not reported."""
    return _member_role_field(cast, room, "maxActiveParticipants", missing="absent")


@pytest.mark.requirements(MAX_ACTIVE_ZERO)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_roles_update_leaving_a_client_in_a_zero_active_role_is_refused(cast, sut, ref_follower, mimi_as,
                                                                        poll_until, recorder):
    """dave (admin, canChangeRoleDefinitions) commits a roles_list AppDataUpdate setting the member role's
    maximum_active_participants_constraint to 0 while bob, a member, has a client in the group and the commit
    removes none: room-policy-04 §3, "If the maximum number of active participants is zero, then no participants
    are allowed to have clients in the room's MLS group", so the hub refuses it, the role list unchanged. Then
    dave's valid roles_list update (a description change) is accepted, which shows the refusal was this rule's."""
    room, alice = _policy_room(cast, {"roles": _roles(admin_extra=("canChangeRoleDefinitions",))})
    dave = ref_follower.create_user("dave")
    bob = ref_follower.create_user("bob")
    _add(cast, room, alice, dave, role=ADMIN)
    _add(cast, room, alice, bob)
    entry = cast.hub.participants(room).get(bob.uri)
    if entry is None or entry.get("role") != MEMBER or not entry.get("clients"):
        not_applicable(f"set-up failed: bob is not a member (role {MEMBER}) with a client at the SUT: {entry}")
    before = _member_max_active(cast, room)
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    out = dave_state.commit([_zero_active_update(dave_state)])
    recorder.note("dave (admin, canChangeRoleDefinitions) commits a roles_list AppDataUpdate setting the member "
                  "role's maximum_active_participants_constraint to 0 while bob (member) has a client")

    def constraint_kept() -> str | None:
        after = _member_max_active(cast, room)
        return None if after == before else (f"the member role's maxActiveParticipants changed from {before!r} to "
                                             f"{after!r}")

    said = _refused_unchanged(MAX_ACTIVE_ZERO, cast, sut, ref_follower, mimi_as, recorder, room, alice, dave,
                              out.request, "a roles_list AppDataUpdate setting maximum_active_participants_constraint "
                              "0 on the member role while the member bob has a client in the group",
                              unchanged=constraint_kept)
    if said is None:
        return
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    out = dave_state.commit([_roles_update(dave_state, b"redefined by dave")])
    recorder.note("dave commits a valid roles_list AppDataUpdate (the member role's description)")
    with judging(MAX_ACTIVE_ZERO):
        answer = _post_update(mimi_as, sut, room, out.request, MAX_ACTIVE_ZERO)
    recorder.note(f"the hub answered {answer.label}")
    if answer.refused:
        not_applicable(f"the hub also refused ({answer.label}) dave's valid roles_list update (a description "
                       "change), so its refusal of the zero-active update shows nothing about this rule")
    observed(MAX_ACTIVE_ZERO, f"the hub {said}, the member role's constraint unchanged; it accepted dave's valid "
                              "roles_list update")
