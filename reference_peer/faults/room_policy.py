"""Faults of the room-policy authorization matrix: role changes, role definitions, and the room's and roles'
size bounds (checks: conformance/scenarios/test_room_policy_matrix.py)."""

from .registry import define

AREA = "room-policy"

CHANGE_USER_ROLE_UNCHECKED = define(
    "change-user-role-unchecked", area=AREA, requirements=["POLICY-CAP-CHANGE-USER-ROLE"],
    description="as hub, accepts a participant-list role change of another participant by a role that lacks "
    "canChangeUserRole (or an authorized_role_changes entry for it)",
    departs=("policy.authorize.change-user-role",),
)
ROLE_DEFINITIONS_UNCHECKED = define(
    "role-definitions-unchecked", area=AREA, requirements=["POLICY-CAP-CHANGE-ROLE-DEFINITIONS"],
    description="as hub, accepts a roles_list AppDataUpdate from a role that lacks canChangeRoleDefinitions",
    departs=("hub.commit.require-role-definitions-capability",),
)


def _zero_active_as_unbounded(policy) -> None:
    """Read every non-zero role's maximum_active_participants_constraint 0 as no bound (in place)."""
    for role in policy.roles.roles:
        if role.role_index > 1 and role.maximum_active_participants_constraint == 0:
            role.maximum_active_participants_constraint = None


ZERO_ACTIVE_ROLE_KEEPS_CLIENTS = define(
    "zero-active-role-keeps-clients", area=AREA, requirements=["POLICY-ROLE-MAX-ACTIVE-ZERO"],
    description="as hub, lets clients stay in the group for a user whose role has maximum_active_participants_"
    "constraint 0 (e.g. accepts a roles_list update setting it on a role whose users have clients)",
    hooks={"hub.members.zero-active-role-has-no-clients": _zero_active_as_unbounded},
)
MAX_USERS_IGNORED = define(
    "max-users-ignored", area=AREA, requirements=["POLICY-BASE-MAX-USERS"],
    description="as hub, accepts commits that take the participant list above the room's max_users",
    departs=("policy.constraints.enforce-max-users",),
)
MIN_PARTICIPANTS_IGNORED = define(
    "min-participants-ignored", area=AREA, requirements=["POLICY-ROLE-MIN-PARTICIPANTS"],
    description="as hub, accepts commits that leave a role with fewer users or active users than its minimum "
    "constraint",
    departs=("policy.constraints.enforce-min-participants",),
)
COMMITTED_KICK_UNCHECKED = define(
    "committed-kick-unchecked", area=AREA, requirements=["POLICY-CAP-KICK-KEEPS-PARTICIPANT"],
    description="as hub, accepts a commit by a role without canKick removing another participant's client "
    "(no participant-list change)",
    departs=("hub.commit.kick-needs-capability",),
)
PROPOSED_REMOVE_UNCHECKED = define(
    "proposed-remove-unchecked", area=AREA, requirements=["POLICY-CAP-KICK-KEEPS-PARTICIPANT"],
    description="as hub, accepts (and caches) a Remove proposal of another participant's client from a role "
    "with neither canKick nor canRemoveParticipant",
    departs=("hub.proposal.remove-needs-capability",),
)
BASE_POLICY_UNCHECKED = define(
    "base-policy-unchecked", area=AREA, requirements=["POLICY-CAP-CHANGE-MEMBERSHIP-STYLE"],
    description="as hub, accepts a base_room_policy AppDataUpdate from a role that lacks "
    "canChangeRoomMembershipStyle",
    departs=("hub.commit.base-policy-needs-membership-style",),
)
UNBAN_UNCHECKED = define(
    "unban-unchecked", area=AREA, requirements=["POLICY-CAP-UNBAN-FROM-INDEX-1"],
    description="as hub, accepts an unban (a role change from role 1) by a role without canUnBan or without an "
    "authorized_role_changes entry from 1 to the new role",
    departs=("policy.authorize.unban",),
)
REMOVE_PARTICIPANT_UNCHECKED = define(
    "remove-participant-unchecked", area=AREA, requirements=["POLICY-CAP-REMOVE-PARTICIPANT-AUTHZ"],
    description="as hub, accepts a participant-list removal of another participant by a role without "
    "canRemoveParticipant or without an authorized_role_changes entry from the target's role that includes 0",
    departs=("policy.authorize.remove-participant",),
)
LEAVE_LOST_TO_EXTERNAL_COMMIT = define(
    "leave-lost-to-external-commit", area="fanout", requirements=["PROTO-FANOUT-REGENERATE-AFTER-EXTERNAL-COMMIT"],
    description="as hub, drops a user's pending leave proposals when an external commit lands before them, "
    "regenerating nothing for the new epoch (the user stays in the room)",
    departs=("hub.fanout.regenerate-after-external-commit",),
)
OWN_CLIENT_REMOVAL_UNCHECKED = define(
    "own-client-removal-unchecked", area=AREA, requirements=["POLICY-CAP-REMOVE-OWN-CLIENT"],
    description="as hub, accepts a commit by a participant whose role lacks canRemoveOwnClient removing another "
    "client of its own user",
    departs=("hub.commit.own-client-removal-needs-capability",),
)
OPEN_JOIN_OUTSIDE_ROLE_0 = define(
    "open-join-outside-role-0", area=AREA, requirements=["POLICY-CAP-OPEN-JOIN-ROLE-0-ONLY"],
    description="as hub, accepts a roles_list update giving canOpenJoin to a non-zero role",
    departs=("policy.validate.open-join-role-0-only",),
)
PROVIDER_PLIST_UNCHECKED = define(
    "provider-plist-unchecked", area=AREA, requirements=["PROTO-PLIST-CHANGES-AUTHORIZED-SEPARATELY"],
    description="as hub, accepts any participant-list change a follower provider proposes as an external sender "
    "(adding users, removing another provider's users)",
    departs=("hub.proposal.provider-plist-own-removals-only",),
)
PROVIDER_REMOVE_UNCHECKED = define(
    "provider-remove-unchecked", area=AREA, requirements=["POLICY-CAP-KICK-KEEPS-PARTICIPANT"],
    description="as hub, accepts a follower provider's Remove proposal (as an external sender) of another "
    "provider's user's client",
    departs=("hub.proposal.provider-removes-own-clients-only",),
)
OWN_ADD_UNCHECKED = define(
    "own-add-unchecked", area=AREA, requirements=["POLICY-CAP-ADD-OWN-CLIENT"],
    description="as hub, accepts a commit by a participant whose role lacks canAddOwnClient adding a new client "
    "of its own user",
    departs=("hub.commit.own-add-needs-capability",),
)
SINGLE_DEVICE_REFUSES_ONE = define(
    "single-device-refuses-one", area=AREA, requirements=["POLICY-BASE-SINGLE-DEVICE"],
    description="as hub, refuses every group of a room whose policy has multi_device false, even one with a single "
    "client per user (a commit switching a room to single-device is refused)",
    departs=("hub.members.single-device-allows-one",),
)
PLIST_JUDGED_IN_COMMITTED_LIST = define(
    "plist-judged-in-committed-list", area=AREA, requirements=["PROTO-ROOMSTATE-APPLIED-ON-ACCEPT"],
    description="as hub, reads and authorizes a proposal's participant-list changes in the committed list, "
    "ignoring the changes of the proposals it already accepted in the epoch (their indices included)",
    departs=("hub.proposal.judge-in-accepted-list",),
)
