"""Room policy: the authorization matrix of role changes and role definitions, and the room's and its roles'
size bounds, each judged on both sides of the rule where the draft gives both (draft-ietf-mimi-room-policy-04
§3, §5, §8.1.3, §8.6).

The SUT is the hub. Each room is created with an explicit policy (a SUT that cannot host it makes the check
NOT_APPLICABLE). Commits judged here are either built by the suite's reference-follower clients from their
MLS state (``ref_follower.member_state``) and sent to the SUT's /update as follower.ref.test, or asked of
the SUT's own client through the control API. A refusal is read the way AMB-FAILURE-CODE-STATUS accepts
(notAllowed, or any non-2xx status with or without a body) and judged by its effect: the change did not
happen (the room's participant list and policy as getRoom reports them, its epoch, nothing fanned out).
"""

from __future__ import annotations

import pytest

from conformance.harness.control import ControlProblem
from conformance.scenarios.roles import as_hub
from conformance.scenarios.test_removal import (
    _handshake_bytes,
    _message_sentinel,
    _post_update,
    _synced_state,
    judge_not_applied,
    setting_up,
    setup_add,
)
from conformance.verdicts import fail, judging, miss, not_applicable, observed
from reference_peer.mls import app_data_update_proposal
from reference_peer.room.policy import COMPONENT_ROLES
from reference_peer.wire.room_policy import RoleData

CHANGE_USER_ROLE = "POLICY-CAP-CHANGE-USER-ROLE"
CHANGE_ROLE_DEFINITIONS = "POLICY-CAP-CHANGE-ROLE-DEFINITIONS"
MAX_USERS = "POLICY-BASE-MAX-USERS"
MIN_PARTICIPANTS = "POLICY-ROLE-MIN-PARTICIPANTS"

MEMBER = 2
ADMIN = 3

_MEMBER_CAPABILITIES = ["canSendMessage", "canReceiveMessage", "canRemoveSelf", "canAddOwnClient",
                        "canRemoveOwnClient"]
_ADMIN_CAPABILITIES = _MEMBER_CAPABILITIES + ["canAddParticipant", "canRemoveParticipant", "canBan", "canUnBan",
                                              "canKick", "canChangeUserRole"]


def _roles(*, member: dict | None = None, admin_extra: tuple[str, ...] = ()) -> list[dict]:
    """Roles 0 (no participant), 1 (banned), 2 (member: no capability over others) and 3 (admin: adds,
    removes, bans and changes roles between member and admin), with ``member``'s extra constraints and
    ``admin_extra`` capabilities."""
    return [
        {"index": 0, "name": "no-participant", "capabilities": [], "maxActiveParticipants": 0},
        {"index": 1, "name": "banned", "capabilities": [], "maxActiveParticipants": 0},
        {"index": MEMBER, "name": "member", "capabilities": list(_MEMBER_CAPABILITIES), **(member or {})},
        {"index": ADMIN, "name": "admin", "capabilities": _ADMIN_CAPABILITIES + list(admin_extra),
         "authorizedRoleChanges": [{"from": 0, "to": [MEMBER, ADMIN]}, {"from": 1, "to": [0, MEMBER]},
                                   {"from": MEMBER, "to": [0, 1, ADMIN]}, {"from": ADMIN, "to": [0, 1, MEMBER]}]},
    ]


def _policy_room(cast, policy: dict):
    """A room on the SUT hub with ``policy``, created by the SUT's user alice (its admin); (room, alice)."""
    alice = cast.hub.create_user("alice")
    try:
        room = cast.hub.create_room(alice, policy=policy, creatorRole=ADMIN)
    except ControlProblem as exc:
        if exc.status in (400, 422):
            not_applicable(f"the SUT does not host a room with policy {policy}: {exc}")
        raise
    return room, alice


def _roles_at_hub(cast, room: str) -> dict[str, int]:
    """user URI -> role index in the SUT hub's participant list (getRoom)."""
    return {user: entry["role"] for user, entry in cast.hub.participants(room).items()}


def _add(cast, room, alice, user, **extra) -> None:
    setup_add(cast.hub, room, alice, user, hub=cast.hub, **extra)


# -- role changes --------------------------------------------------------------------------------


@pytest.mark.requirements(CHANGE_USER_ROLE)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_role_change_needs_can_change_user_role(cast, sut, ref_follower, mimi_as, poll_until, recorder):
    """room-policy-04 §8.1.3: "canChangeUserRole - the holder of this capability is authorized to change the
    role of another participant (but not itself), according to the holder's authorized_role_changes list,
    from a role represented by an entry where the target's current role matches from_role_index to any of the
    non-zero target_role_indexes in the same element of authorized_role_changes." An admin (canChangeUserRole,
    member -> admin authorized) changes carol from member to admin: accepted. A member, whose role lacks
    canChangeUserRole, changes carol back to member: not authorized, so refused, and carol stays admin."""
    room, alice = _policy_room(cast, {"roles": _roles()})
    dave = ref_follower.create_user("dave")
    bob = ref_follower.create_user("bob")
    carol = ref_follower.create_user("carol")
    _add(cast, room, alice, dave, role=ADMIN)
    _add(cast, room, alice, bob)
    _add(cast, room, alice, carol)
    if _roles_at_hub(cast, room).get(carol.uri) != MEMBER:
        not_applicable(f"set-up failed: carol is not listed as a member (role {MEMBER}) at the SUT: "
                       f"{_roles_at_hub(cast, room)}")
    # accepted within the rule: the admin's role change of another participant
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    out = dave_state.change_role(carol.uri.encode(), ADMIN)
    recorder.note("dave (admin, canChangeUserRole) commits carol's role change member -> admin")
    with judging(CHANGE_USER_ROLE):
        answer = _post_update(mimi_as, sut, room, out.request, CHANGE_USER_ROLE)
    recorder.note(f"the hub answered {answer.label}")
    if answer.refused:
        fail(f"the hub refused ({answer.label}) a commit by an admin, whose role holds canChangeUserRole and "
             "authorizes member -> admin, changing carol from member to admin", requirement=CHANGE_USER_ROLE)
    role = _roles_at_hub(cast, room).get(carol.uri)
    if role != ADMIN:
        fail(f"the hub accepted the admin's change of carol to admin but lists her with role {role}",
             requirement=CHANGE_USER_ROLE)
    # refused outside the rule: a member's role change of another participant (carol's own client, which took
    # dave's commit from the hub, witnesses the fan-out; dave's client did not make the commit the suite sent)
    bob_state = _synced_state(ref_follower, cast.hub, room, bob.client, poll_until)
    out = bob_state.change_role(carol.uri.encode(), MEMBER)
    recorder.note("bob (member, no canChangeUserRole) commits carol's role change admin -> member")
    epoch, mark = cast.hub.room(room)["epoch"], ref_follower.traffic_mark()
    with judging(CHANGE_USER_ROLE):
        answer = _post_update(mimi_as, sut, room, out.request, CHANGE_USER_ROLE)
    recorder.note(f"the hub answered {answer.label}")
    if answer.accepted:
        miss(CHANGE_USER_ROLE, "the hub accepted a commit by a member, whose role lacks canChangeUserRole, "
                               "changing another participant's (carol's) role")
        return
    what = "a member's commit changing carol's role"
    with judging(CHANGE_USER_ROLE):
        effect = judge_not_applied(CHANGE_USER_ROLE, ref_follower, mark, _handshake_bytes(out.request), what,
                                   sentinel=_message_sentinel(cast, room, alice, carol.client, b"after the refusal"),
                                   epoch_before=epoch, sut_party=cast.hub, room=room)
        role = _roles_at_hub(cast, room).get(carol.uri)
        if role != ADMIN:
            fail(f"the hub refused {what} but lists carol with role {role}", requirement=CHANGE_USER_ROLE)
    observed(CHANGE_USER_ROLE, f"the hub accepted an admin's change of carol to admin, and refused "
                               f"({answer.label}) {what} back to member; {effect}, carol stayed admin")


# -- role definitions ----------------------------------------------------------------------------


def _roles_update(member_state, description: bytes):
    """A roles_list AppDataUpdate replacing the room's RoleData with one whose member role has
    ``description`` (room-policy-04 §3: the update "completely replaces the value of the data field")."""
    data = member_state.group.app_data().get(COMPONENT_ROLES)
    if data is None:
        not_applicable("the SUT's room has no roles_list component (0x0025) in its app_data_dictionary, so no "
                       "update of it can be judged")
    roles = RoleData.decode(bytes(data))
    for role in roles.roles:
        if role.role_index == MEMBER:
            role.role_description = description
    return app_data_update_proposal(COMPONENT_ROLES, roles.encode())


def _member_description(cast, room: str) -> str | None:
    policy = (cast.hub.room(room) or {}).get("policy") or {}
    for role in policy.get("roles") or []:
        if role.get("index") == MEMBER:
            return role.get("description")
    return None


@pytest.mark.requirements(CHANGE_ROLE_DEFINITIONS)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_role_definitions_change_needs_the_capability(cast, sut, ref_follower, mimi_as, poll_until, recorder):
    """room-policy-04 §8.6: "canChangeRoleDefinitions - the holder is authorized to make changes to the
    definitions of the Roles component." A member, whose role lacks it, commits a roles_list AppDataUpdate:
    refused, the role list unchanged. An admin whose role holds it commits the same kind of update: accepted
    (§3: "If the contents of the update field are valid and if the proposer is authorized to generate such an
    update, the value of the update field completely replaces the value of the data field")."""
    room, alice = _policy_room(cast, {"roles": _roles(admin_extra=("canChangeRoleDefinitions",))})
    dave = ref_follower.create_user("dave")
    bob = ref_follower.create_user("bob")
    _add(cast, room, alice, dave, role=ADMIN)
    _add(cast, room, alice, bob)
    # refused outside the rule
    bob_state = _synced_state(ref_follower, cast.hub, room, bob.client, poll_until)
    before = _member_description(cast, room)
    out = bob_state.commit([_roles_update(bob_state, b"redefined by bob")])
    recorder.note("bob (member, no canChangeRoleDefinitions) commits a roles_list AppDataUpdate")
    epoch, mark = cast.hub.room(room)["epoch"], ref_follower.traffic_mark()
    with judging(CHANGE_ROLE_DEFINITIONS):
        answer = _post_update(mimi_as, sut, room, out.request, CHANGE_ROLE_DEFINITIONS)
    recorder.note(f"the hub answered {answer.label}")
    if answer.accepted:
        miss(CHANGE_ROLE_DEFINITIONS, "the hub accepted a roles_list AppDataUpdate committed by a member whose role "
                                      "lacks canChangeRoleDefinitions")
        return
    what = "a member's roles_list AppDataUpdate"
    with judging(CHANGE_ROLE_DEFINITIONS):
        effect = judge_not_applied(CHANGE_ROLE_DEFINITIONS, ref_follower, mark, _handshake_bytes(out.request), what,
                                   sentinel=_message_sentinel(cast, room, alice, dave.client, b"after the refusal"),
                                   epoch_before=epoch, sut_party=cast.hub, room=room)
        after = _member_description(cast, room)
        if after != before:
            fail(f"the hub refused {what} but the member role's description changed from {before!r} to "
                 f"{after!r}", requirement=CHANGE_ROLE_DEFINITIONS)
    # accepted within the rule
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    out = dave_state.commit([_roles_update(dave_state, b"redefined by dave")])
    recorder.note("dave (admin, canChangeRoleDefinitions) commits a roles_list AppDataUpdate")
    with judging(CHANGE_ROLE_DEFINITIONS):
        accepted = _post_update(mimi_as, sut, room, out.request, CHANGE_ROLE_DEFINITIONS)
    recorder.note(f"the hub answered {accepted.label}")
    if accepted.refused:
        fail(f"the hub refused ({accepted.label}) a valid roles_list AppDataUpdate committed by an admin whose role "
             "holds canChangeRoleDefinitions", requirement=CHANGE_ROLE_DEFINITIONS)
    observed(CHANGE_ROLE_DEFINITIONS, f"the hub refused ({answer.label}) {what}: {effect}, the role list unchanged; "
                                      "it accepted the same kind of update from an admin holding "
                                      "canChangeRoleDefinitions")


# -- bounds --------------------------------------------------------------------------------------


def _limit_refused_without_limit(cast, ref_follower, result: dict) -> None:
    """alice's add of a second user to a room with max_users 2 (exactly the limit) was not accepted: a miss
    when the SUT adds one to the same room without max_users, else nothing to judge."""
    control = cast.hub.create_user("alice")
    try:
        other = cast.hub.create_room(control, policy={"roles": _roles()}, creatorRole=ADMIN)
    except ControlProblem:
        other = None
    if other is not None and cast.hub.add(other, control, ref_follower.create_user("bob")).get("outcome") == "accepted":
        fail(f"the hub refused ({result.get('outcome')}) to add a second user to a room with max_users 2 (the list "
             "would hold exactly max_users entries), while it added one to the same room without max_users",
             requirement=MAX_USERS)
    not_applicable(f"set-up failed: the SUT did not add bob as the second user ({result.get('outcome')}), nor "
                   "shown it would without max_users; nothing to judge")


@pytest.mark.requirements(MAX_USERS)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "removeParticipant", "getRoom")
def test_max_users_caps_the_non_banned_entries(cast, ref_follower, recorder):
    """room-policy-04 §5: "Likewise when max_users has a value, the room MUST NOT have more non-banned entries
    in the participant list than that value." In a room with max_users 2 the hub lets the list reach 2
    non-banned users (the value is allowed); after each ban the next add brings it back to 2 (a banned entry
    does not count); with three banned entries and two non-banned ones, the add of another user, which would
    make three non-banned entries, is not applied (banned entries do not raise the limit either)."""
    room, alice = _policy_room(cast, {"roles": _roles(), "base": {"maxUsers": 2}})
    users = [ref_follower.create_user(name) for name in ("bob", "carol", "dave", "erin", "frank")]
    for i, user in enumerate(users[:4]):
        if i:
            banned = users[i - 1]
            outcome = cast.hub.remove(room, alice, banned, mode="ban").get("outcome")
            if (cast.hub.participants(room).get(banned.uri) or {}).get("role") != 1:
                not_applicable(f"set-up failed: the SUT did not ban {banned.uri} ({outcome}), so the list holds no "
                               "banned entry to judge max_users with")
        result = cast.hub.add(room, alice, user)
        recorder.note(f"alice adds {user.uri} ({i} banned entries, 1 other non-banned): {result.get('outcome')}")
        if result.get("outcome") != "accepted":
            if not i:
                _limit_refused_without_limit(cast, ref_follower, result)
            fail(f"the hub refused ({result.get('outcome')}) to add {user.uri} to a room with max_users 2 holding "
                 f"one non-banned and {i} banned entries: the list would hold exactly 2 non-banned entries",
                 requirement=MAX_USERS)
    listed = cast.hub.participants(room)
    non_banned = sorted(u for u, entry in listed.items() if entry["role"] != 1)
    if len(non_banned) != 2:
        not_applicable(f"set-up failed: the room lists {len(non_banned)} non-banned users, not 2: {non_banned}")
    result = cast.hub.add(room, alice, users[4])
    recorder.note(f"alice adds {users[4].uri}, a third non-banned user: {result.get('outcome')}")
    with setting_up("the room's participant list after the add beyond max_users"):
        listed = cast.hub.participants(room)
    non_banned = sorted(u for u, entry in listed.items() if entry["role"] != 1)
    if users[4].uri in listed or len(non_banned) > 2:
        miss(MAX_USERS, f"the room with max_users 2 (and 3 banned entries) lists {len(non_banned)} non-banned users "
                        f"after another was added ({result.get('outcome')}): {non_banned}")
        return
    observed(MAX_USERS, "in a room with max_users 2 the list reached 2 non-banned users, and again after each of 3 "
                        "bans; the add of a third non-banned user was not applied "
                        f"({result.get('outcome')})")


@pytest.mark.requirements(MIN_PARTICIPANTS)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "removeParticipant")
def test_min_active_participants_bounds_removals(cast, ref_follower, recorder):
    """room-policy-04 §3: "Each Role also can contain constraints on the minimum and maximum number of
    participants, and the minimum and maximum number of active participants." A change that would leave a
    role with fewer active users than its minimum is not authorized; a change leaving exactly the minimum
    is. With the member role's minimum_active_participants_constraint 1 and two active members, removing
    one (leaving exactly 1) is accepted and removing the other (leaving 0) is refused."""
    room, alice = _policy_room(cast, {"roles": _roles(member={"minActiveParticipants": 1})})
    bob = ref_follower.create_user("bob")
    carol = ref_follower.create_user("carol")
    _add(cast, room, alice, bob)
    _add(cast, room, alice, carol)
    roles = _roles_at_hub(cast, room)
    if roles.get(bob.uri) != MEMBER or roles.get(carol.uri) != MEMBER:
        not_applicable(f"set-up failed: bob and carol are not both members (role {MEMBER}) at the SUT: {roles}")
    result = cast.hub.remove(room, alice, carol)
    recorder.note(f"alice removes carol, leaving exactly one active member (the minimum): {result.get('outcome')}")
    if carol.uri in cast.hub.participants(room):
        fail(f"the hub did not remove carol ({result.get('outcome')}: {result.get('hubResponse') or result}) "
             "though the member role keeps one active user, exactly its minimum_active_participants_constraint",
             requirement=MIN_PARTICIPANTS)
    result = cast.hub.remove(room, alice, bob)
    recorder.note(f"alice removes bob, which would leave no active member (minimum 1): {result.get('outcome')}")
    listed = cast.hub.participants(room)
    entry = listed.get(bob.uri)
    if entry is None or entry["role"] != MEMBER or not entry.get("clients"):
        miss(MIN_PARTICIPANTS, f"the member role (minimum_active_participants_constraint 1) was left with no "
                               f"active user: bob's removal was applied ({result.get('outcome')}), bob is listed as "
                               f"{entry}")
        return
    observed(MIN_PARTICIPANTS, f"removing one of two active members (leaving the minimum 1) was accepted; removing "
                               f"the last was not applied ({result.get('outcome')}), bob stays an active member")
