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
from reference_peer.room.policy import COMPONENT_BASE_POLICY, COMPONENT_ROLES
from reference_peer.wire.room_policy import BaseRoomPolicy, Bool, Capability, RoleData

CHANGE_USER_ROLE = "POLICY-CAP-CHANGE-USER-ROLE"
CHANGE_ROLE_DEFINITIONS = "POLICY-CAP-CHANGE-ROLE-DEFINITIONS"
MAX_USERS = "POLICY-BASE-MAX-USERS"
MIN_PARTICIPANTS = "POLICY-ROLE-MIN-PARTICIPANTS"

MEMBER = 2
ADMIN = 3
MODERATOR = 4

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


def _refused_unchanged(requirement: str, cast, sut, ref_follower, mimi_as, recorder, room: str, alice, witness,
                       out_request: bytes, what: str, *, unchanged) -> str | None:
    """Send ``out_request`` (``what``) to the SUT hub's /update as the suite's follower. A miss when it is accepted
    (None returned); else the evidence that nothing of it was applied or fanned out and that ``unchanged()`` (a
    failure sentence or None) holds."""
    epoch, mark = cast.hub.room(room)["epoch"], ref_follower.traffic_mark()
    with judging(requirement):
        answer = _post_update(mimi_as, sut, room, out_request, requirement)
    recorder.note(f"the hub answered {answer.label}")
    if answer.accepted:
        miss(requirement, f"the hub accepted {what}")
        return None
    with judging(requirement):
        effect = judge_not_applied(requirement, ref_follower, mark, _handshake_bytes(out_request), what,
                                   sentinel=_message_sentinel(cast, room, alice, witness.client,
                                                              f"after refusing {what}".encode()),
                                   epoch_before=epoch, sut_party=cast.hub, room=room)
        problem = unchanged()
        if problem:
            fail(f"the hub refused ({answer.label}) {what} but {problem}", requirement=requirement)
    return f"refused ({answer.label}) {what}: {effect}"


def _accepted(requirement: str, sut, mimi_as, recorder, room: str, out_request: bytes, what: str) -> None:
    """Send ``out_request`` (``what``, which the rule allows) to the SUT hub's /update as the suite's follower; a
    refusal is a miss of ``requirement``."""
    with judging(requirement):
        answer = _post_update(mimi_as, sut, room, out_request, requirement)
    recorder.note(f"the hub answered {answer.label}")
    if answer.refused:
        fail(f"the hub refused ({answer.label}) {what}", requirement=requirement)


# -- role changes --------------------------------------------------------------------------------


@pytest.mark.requirements(CHANGE_USER_ROLE)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_role_change_needs_can_change_user_role(cast, sut, ref_follower, mimi_as, poll_until, recorder):
    """room-policy-04 §8.1.3: "canChangeUserRole - the holder of this capability is authorized to change the
    role of another participant (but not itself), according to the holder's authorized_role_changes list,
    from a role represented by an entry where the target's current role matches from_role_index to any of the
    non-zero target_role_indexes in the same element of authorized_role_changes." Both halves are needed: the
    capability and the entry. An admin (canChangeUserRole, member -> admin authorized) changes carol from member
    to admin: accepted. Then each refused, carol staying admin: a member (neither) changes carol back to member;
    erin, a moderator whose authorized_role_changes holds admin -> member but whose role lacks canChangeUserRole,
    does the same; frank, another admin (canChangeUserRole), changes carol to moderator, a target his entry from
    admin lacks (his entry from 0 holds it: only the entry matching the target's current role counts)."""
    roles = _roles() + [{"index": MODERATOR, "name": "moderator", "capabilities": list(_MEMBER_CAPABILITIES),
                         "authorizedRoleChanges": [{"from": ADMIN, "to": [MEMBER]}]}]
    roles[ADMIN]["authorizedRoleChanges"][0]["to"].append(MODERATOR)  # alice adds erin as moderator
    room, alice = _policy_room(cast, {"roles": roles})
    dave = ref_follower.create_user("dave")
    bob = ref_follower.create_user("bob")
    carol = ref_follower.create_user("carol")
    erin = ref_follower.create_user("erin")
    frank = ref_follower.create_user("frank")  # dave's client cannot follow the commit the suite made as dave
    _add(cast, room, alice, dave, role=ADMIN)
    _add(cast, room, alice, bob)
    _add(cast, room, alice, carol)
    _add(cast, room, alice, erin, role=MODERATOR)
    _add(cast, room, alice, frank, role=ADMIN)
    if _roles_at_hub(cast, room).get(carol.uri) != MEMBER:
        not_applicable(f"set-up failed: carol is not listed as a member (role {MEMBER}) at the SUT: "
                       f"{_roles_at_hub(cast, room)}")
    # accepted within the rule: the admin's role change of another participant
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    out = dave_state.change_role(carol.uri.encode(), ADMIN)
    recorder.note("dave (admin, canChangeUserRole) commits carol's role change member -> admin")
    _accepted(CHANGE_USER_ROLE, sut, mimi_as, recorder, room, out.request, "a commit by an admin, whose role holds "
              "canChangeUserRole and authorizes member -> admin, changing carol from member to admin")
    role = _roles_at_hub(cast, room).get(carol.uri)
    if role != ADMIN:
        fail(f"the hub accepted the admin's change of carol to admin but lists her with role {role}",
             requirement=CHANGE_USER_ROLE)
    # refused outside the rule: a member's role change of another participant (carol's own client, which took
    # dave's commit from the hub, witnesses the fan-out; dave's client did not make the commit the suite sent)
    bob_state = _synced_state(ref_follower, cast.hub, room, bob.client, poll_until)
    out = bob_state.change_role(carol.uri.encode(), MEMBER)
    recorder.note("bob (member, no canChangeUserRole) commits carol's role change admin -> member")

    def carol_kept() -> str | None:
        role = _roles_at_hub(cast, room).get(carol.uri)
        return None if role == ADMIN else f"lists carol with role {role}"

    said = _refused_unchanged(CHANGE_USER_ROLE, cast, sut, ref_follower, mimi_as, recorder, room, alice, carol,
                              out.request, "a commit by a member, whose role lacks canChangeUserRole, changing "
                              "another participant's (carol's) role back to member", unchanged=carol_kept)
    if said is None:
        return
    evidence = [said]
    for actor, to_role, why in (
            (erin, MEMBER, "erin (moderator: an entry admin -> member, no canChangeUserRole)"),
            (frank, MODERATOR, "frank (admin: canChangeUserRole, no entry from admin to moderator)")):
        state = _synced_state(ref_follower, cast.hub, room, actor.client, poll_until)
        out = state.change_role(carol.uri.encode(), to_role)
        what = f"a commit by {why} changing carol from admin to role {to_role}"
        recorder.note(what)
        said = _refused_unchanged(CHANGE_USER_ROLE, cast, sut, ref_follower, mimi_as, recorder, room, alice, carol,
                                  out.request, what, unchanged=carol_kept)
        if said is None:
            return
        evidence.append(said)
    observed(CHANGE_USER_ROLE, "the hub accepted an admin's change of carol to admin, and " + "; ".join(evidence)
             + "; carol stayed admin")


# -- role definitions ----------------------------------------------------------------------------


def _member_role_update(member_state, edit):
    """A roles_list AppDataUpdate replacing the room's RoleData with one whose member role ``edit`` (a function
    of the RoleData entry) changed, the rest as the proposer reads it (room-policy-04 §3: the update "completely
    replaces the value of the data field")."""
    data = member_state.group.app_data().get(COMPONENT_ROLES)
    if data is None:
        not_applicable("the SUT's room has no roles_list component (0x0025) in its app_data_dictionary, so no "
                       "update of it can be judged")
    roles = RoleData.decode(bytes(data))
    for role in roles.roles:
        if role.role_index == MEMBER:
            edit(role)
    return app_data_update_proposal(COMPONENT_ROLES, roles.encode())


def _roles_update(member_state, description: bytes):
    """A roles_list AppDataUpdate whose member role has ``description``."""
    return _member_role_update(member_state, lambda role: setattr(role, "role_description", description))


def _member_role_field(cast, room: str, field: str, missing=None):
    """``field`` of the member role in the SUT hub's effective policy (getRoom); ``missing`` when the role is
    not reported."""
    policy = (cast.hub.room(room) or {}).get("policy") or {}
    for role in policy.get("roles") or []:
        if role.get("index") == MEMBER:
            return role.get(field)
    return missing


def _member_description(cast, room: str) -> str | None:
    return _member_role_field(cast, room, "description")


@pytest.mark.requirements(CHANGE_ROLE_DEFINITIONS)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_role_definitions_change_needs_the_capability(cast, sut, ref_follower, mimi_as, poll_until, recorder):
    """room-policy-04 §8.6: "canChangeRoleDefinitions - the holder is authorized to make changes to the
    definitions of the Roles component." A member, whose role lacks it, commits a roles_list AppDataUpdate:
    refused, the role list unchanged. An admin whose role holds it commits the same kind of update, then proposes
    another and commits that proposal by reference: each accepted (§3: "If the contents of the update field are valid and if the proposer is authorized to generate such an
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

    def description_kept() -> str | None:
        after = _member_description(cast, room)
        return None if after == before else f"the member role's description changed from {before!r} to {after!r}"

    said = _refused_unchanged(CHANGE_ROLE_DEFINITIONS, cast, sut, ref_follower, mimi_as, recorder, room, alice, dave,
                              out.request, "a roles_list AppDataUpdate committed by a member whose role lacks "
                              "canChangeRoleDefinitions", unchanged=description_kept)
    if said is None:
        return
    # accepted within the rule
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    out = dave_state.commit([_roles_update(dave_state, b"redefined by dave")])
    recorder.note("dave (admin, canChangeRoleDefinitions) commits a roles_list AppDataUpdate")
    _accepted(CHANGE_ROLE_DEFINITIONS, sut, mimi_as, recorder, room, out.request, "a valid roles_list AppDataUpdate "
              "committed by an admin whose role holds canChangeRoleDefinitions")
    # the same by proposal: §3 speaks of "the proposer", so the update may come as a proposal, committed later
    dave_state.commit_accepted()  # the suite's copy moves to the new epoch (it made the commit)
    body = dave_state.proposals_request([_roles_update(dave_state, b"proposed by dave")])
    recorder.note("dave proposes a roles_list AppDataUpdate (a proposal, not committed)")
    _accepted(CHANGE_ROLE_DEFINITIONS, sut, mimi_as, recorder, room, body, "a valid roles_list AppDataUpdate "
              "proposed by an admin whose role holds canChangeRoleDefinitions")
    out = dave_state.commit([])  # his cached proposal, by reference
    recorder.note("dave commits his roles_list proposal")
    _accepted(CHANGE_ROLE_DEFINITIONS, sut, mimi_as, recorder, room, out.request, "dave's commit of his valid "
              "roles_list proposal")
    observed(CHANGE_ROLE_DEFINITIONS, f"the hub {said}, the role list unchanged; it accepted the same kind of update "
                                      "from an admin holding canChangeRoleDefinitions, committed and proposed")


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


# -- base policy and unban -----------------------------------------------------------------------

MEMBERSHIP_STYLE = "POLICY-CAP-CHANGE-MEMBERSHIP-STYLE"
UNBAN = "POLICY-CAP-UNBAN-FROM-INDEX-1"


def _base_update(member_state):
    """A base_room_policy AppDataUpdate replacing the room's BaseRoomPolicy with one whose discoverable flag is
    flipped (room-policy-04 §3: the update "completely replaces the value of the data field")."""
    data = member_state.group.app_data().get(COMPONENT_BASE_POLICY)
    if data is None:
        not_applicable("the SUT's room has no base_room_policy component in its app_data_dictionary, so no update "
                       "of it can be judged")
    base = BaseRoomPolicy.decode(bytes(data))
    base.discoverable = Bool.false if base.discoverable == Bool.true else Bool.true
    return app_data_update_proposal(COMPONENT_BASE_POLICY, base.encode())


def _base_at_hub(cast, room: str):
    return ((cast.hub.room(room) or {}).get("policy") or {}).get("base")


@pytest.mark.requirements(MEMBERSHIP_STYLE)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_base_policy_change_needs_membership_style(cast, sut, ref_follower, mimi_as, poll_until, recorder):
    """room-policy-04 §8.6: "canChangeRoomMembershipStyle - the holder is authorized to modify the base room
    membership style." A member, whose role lacks it, commits a base_room_policy AppDataUpdate: refused (any
    refusal), nothing applied or fanned out, the base policy unchanged. An admin whose role holds it commits
    the same kind of update: accepted (§3: "If the contents of the update field are valid and if the proposer
    is authorized to generate such an update, the value of the update field completely replaces the value of
    the data field")."""
    room, alice = _policy_room(cast, {"roles": _roles(admin_extra=("canChangeRoomMembershipStyle",))})
    dave = ref_follower.create_user("dave")
    bob = ref_follower.create_user("bob")
    _add(cast, room, alice, dave, role=ADMIN)
    _add(cast, room, alice, bob)
    # refused outside the rule
    bob_state = _synced_state(ref_follower, cast.hub, room, bob.client, poll_until)
    before = _base_at_hub(cast, room)
    out = bob_state.commit([_base_update(bob_state)])
    recorder.note("bob (member, no canChangeRoomMembershipStyle) commits a base_room_policy AppDataUpdate")

    def base_kept() -> str | None:
        after = _base_at_hub(cast, room)
        return None if after == before else f"the base policy changed from {before} to {after}"

    said = _refused_unchanged(MEMBERSHIP_STYLE, cast, sut, ref_follower, mimi_as, recorder, room, alice, dave,
                              out.request, "a base_room_policy AppDataUpdate committed by a member whose role lacks "
                              "canChangeRoomMembershipStyle", unchanged=base_kept)
    if said is None:
        return
    # accepted within the rule
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    out = dave_state.commit([_base_update(dave_state)])
    recorder.note("dave (admin, canChangeRoomMembershipStyle) commits a base_room_policy AppDataUpdate")
    _accepted(MEMBERSHIP_STYLE, sut, mimi_as, recorder, room, out.request, "a valid base_room_policy AppDataUpdate "
              "committed by an admin whose role holds canChangeRoomMembershipStyle")
    observed(MEMBERSHIP_STYLE, f"the hub {said}, the base policy unchanged; it accepted the same kind of update from "
                               "an admin holding canChangeRoomMembershipStyle")




@pytest.mark.requirements(UNBAN)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "removeParticipant", "getRoom",
                        "sendMessage")
def test_unban_needs_can_unban_and_an_entry_from_1(cast, sut, ref_follower, mimi_as, poll_until, recorder):
    """room-policy-04 §8.1.3: "canUnban - the holder of this capability can propose to "unban" another user.
    Specifically, a successful unban changes the target user's role from role_index = 1 to another non-zero
    role_index allowed by the holder's authorized_role_changes list. [...] The authorization of this capability
    is identical to the canChangeUserRole capability, except that the from_role_index for the unbanned user MUST
    be 1", and
    canChangeUserRole authorizes a change "according to the holder's authorized_role_changes list, from a role
    represented by an entry where the target's current role matches from_role_index to any of the non-zero
    target_role_indexes in the same element". Bob is banned. Refused, each judged by effect (nothing applied or
    fanned out, bob stays banned): erin's unban of bob into member, her role (moderator) having an
    authorized_role_changes entry 1 -> member but neither canUnBan nor canChangeUserRole; dave's (admin:
    canUnBan, entry 1 -> no-participant or member) unban of bob into admin, a target his entry from 1 lacks
    though his entries from 0 and from member hold it (only the entry whose from_role_index is the target's
    current role counts). Accepted: dave's unban of bob into member."""
    roles = _roles() + [{"index": MODERATOR, "name": "moderator", "capabilities": list(_MEMBER_CAPABILITIES),
                         "authorizedRoleChanges": [{"from": 1, "to": [MEMBER]}]}]
    roles[ADMIN]["authorizedRoleChanges"][0]["to"].append(MODERATOR)  # alice adds erin as moderator
    # also from member: erin's add stays authorized for a hub that mixes up the entries (judged below)
    roles[ADMIN]["authorizedRoleChanges"][2]["to"].append(MODERATOR)
    room, alice = _policy_room(cast, {"roles": roles})
    dave = ref_follower.create_user("dave")
    erin = ref_follower.create_user("erin")
    bob = ref_follower.create_user("bob")
    _add(cast, room, alice, dave, role=ADMIN)
    _add(cast, room, alice, erin, role=MODERATOR)
    _add(cast, room, alice, bob)
    outcome = cast.hub.remove(room, alice, bob, mode="ban").get("outcome")
    listed = _roles_at_hub(cast, room)
    if listed.get(bob.uri) != 1 or listed.get(erin.uri) != MODERATOR or listed.get(dave.uri) != ADMIN:
        not_applicable(f"set-up failed: bob is not banned ({outcome}), or erin not a moderator or dave not an admin "
                       f"at the SUT: {listed}")
    evidence = []
    for actor, to_role, why in ((erin, MEMBER, "erin (moderator: an entry 1 -> member, no canUnBan)"),
                                (dave, ADMIN, "dave (admin, canUnBan, no entry from 1 to admin)")):
        state = _synced_state(ref_follower, cast.hub, room, actor.client, poll_until)
        out = state.change_role(bob.uri.encode(), to_role)
        what = f"the unban of bob into role {to_role} committed by {why}"
        recorder.note(what)

        def bob_still_banned() -> str | None:
            role = _roles_at_hub(cast, room).get(bob.uri)
            return None if role == 1 else f"lists bob with role {role}"

        said = _refused_unchanged(UNBAN, cast, sut, ref_follower, mimi_as, recorder, room, alice, dave, out.request,
                                  what, unchanged=bob_still_banned)
        if said is None:
            return
        evidence.append(said)
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    out = dave_state.change_role(bob.uri.encode(), MEMBER)
    recorder.note("dave (admin, canUnBan, entry 1 -> member) commits bob's unban into member")
    _accepted(UNBAN, sut, mimi_as, recorder, room, out.request, "dave's unban of bob into member, which his role "
              "(canUnBan, an authorized_role_changes entry 1 -> member) authorizes")
    role = _roles_at_hub(cast, room).get(bob.uri)
    if role != MEMBER:
        fail(f"the hub accepted dave's unban of bob into member but lists bob with role {role}", requirement=UNBAN)
    observed(UNBAN, "the hub " + "; ".join(evidence) + "; it accepted dave's unban of bob into member")


OPEN_JOIN_ROLE_0_ONLY = "POLICY-CAP-OPEN-JOIN-ROLE-0-ONLY"


@pytest.mark.requirements(OPEN_JOIN_ROLE_0_ONLY)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_role_update_cannot_give_open_join_to_a_non_zero_role(cast, sut, ref_follower, mimi_as, poll_until,
                                                               recorder):
    """room-policy-04 §8.1.1 (canOpenJoin): "canOpenJoin MUST NOT appear in any non-zero role." Dave, an admin
    holding canChangeRoleDefinitions, commits a roles_list AppDataUpdate that adds canOpenJoin to the member
    role: the role list it would install breaks the rule, so the hub refuses it (any refusal), nothing applied
    or fanned out, the member role's capabilities unchanged. The same update without canOpenJoin (a new
    description) is then accepted, so the refusal is canOpenJoin's."""
    room, alice = _policy_room(cast, {"roles": _roles(admin_extra=("canChangeRoleDefinitions",))})
    dave = ref_follower.create_user("dave")
    _add(cast, room, alice, dave, role=ADMIN)
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    update = _member_role_update(dave_state, lambda role: setattr(
        role, "role_capabilities", [*role.role_capabilities, int(Capability.canOpenJoin)]))
    before = _member_capabilities(cast, room)
    out = dave_state.commit([update])
    recorder.note("dave (admin, canChangeRoleDefinitions) commits a roles_list update giving canOpenJoin to role 2")

    def capabilities_kept() -> str | None:
        after = _member_capabilities(cast, room)
        return None if after == before else f"the member role's capabilities changed from {before} to {after}"

    said = _refused_unchanged(OPEN_JOIN_ROLE_0_ONLY, cast, sut, ref_follower, mimi_as, recorder, room, alice, dave,
                              out.request, f"a roles_list AppDataUpdate giving canOpenJoin to the member role (role "
                              f"{MEMBER})", unchanged=capabilities_kept)
    if said is None:
        return
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    control = dave_state.commit([_roles_update(dave_state, b"redefined by dave")])
    recorder.note("dave commits a roles_list update changing only the member role's description")
    with setting_up("dave's valid roles_list update"):
        accepted = _post_update(mimi_as, sut, room, control.request, OPEN_JOIN_ROLE_0_ONLY)
    recorder.note(f"the hub answered {accepted.label}")
    if accepted.refused:
        not_applicable(f"the hub {said}, but it also refused ({accepted.label}) a valid roles_list update by the same "
                       "admin: the refusal cannot be laid on canOpenJoin")
    observed(OPEN_JOIN_ROLE_0_ONLY, f"the hub {said}, the member role's capabilities unchanged; it accepted a valid "
                                    "roles_list update by the same admin")


def _member_capabilities(cast, room: str):
    capabilities = _member_role_field(cast, room, "capabilities", missing=False)
    return None if capabilities is False else sorted(capabilities or [])
