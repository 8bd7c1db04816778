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
