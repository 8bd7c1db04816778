"""Room-policy authorization for the hub (draft-ietf-mimi-room-policy-04 §3, §5, §8).

Roles live in the roles_list component and the base policy in base_room_policy. Their IDs are the
*suggested* values of room-policy-04 §10.1 (roles_list 0x0025, base_room_policy 0x0027): -04 gives
values, marked as suggestions to IANA, so the reference uses them rather than the private-use
range (the same reading as :mod:`reference_peer.wire.room_policy`, AMB-MLS-EXT-CODEPOINTS).

Every decision is a :class:`Refusal` (or ``None`` for allowed) that names the requirement it
enforces, so the hub can answer notAllowed with a precise errorDescription.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping

from ..overrides import NO_OVERRIDES, Overrides, step
from ..wire.codec import DecodeError, EncodeError
from ..wire.hub_transfer import CAP_TRANSFER_HUB
from ..wire.room_policy import (
    BANNED_ROLE_NAME,
    ROLE_INDEX_BANNED,
    ROLE_INDEX_NON_PARTICIPANT,
    BaseRoomPolicy,
    Bool,
    Capability,
    PolicyComponentId,
    Role,
    RoleData,
    SingleSourceRoleChangeTargets,
)
from .participants import ChangeKind, ParticipantChange

# The named steps of the policy rules (reference_peer.overrides); the hub passes its room's overrides.
ENFORCE_MAX_CLIENTS = step(
    "policy.constraints.enforce-max-clients", "POLICY-BASE-MAX-CLIENTS",
    summary="a commit that takes the group above the room's max_clients is refused",
)

MAX_CLIENTS_INCLUSIVE = step(
    "policy.constraints.max-clients-inclusive", "POLICY-BASE-MAX-CLIENTS", "POLICY-CAP-ADD-PARTICIPANT-CLIENTS",
    summary="max_clients is the largest group allowed: a commit that takes the group to exactly max_clients "
    "clients is accepted; the size bounds refuse only what exceeds a bound that is set, so a valid add in a room "
    "whose bounds are unset is accepted",
)

ENFORCE_MAX_USERS = step(
    "policy.constraints.enforce-max-users", "POLICY-BASE-MAX-USERS",
    summary="a commit that takes the participant list above max_users non-banned entries is refused (exactly "
    "max_users is allowed)",
)

ENFORCE_MIN_PARTICIPANTS = step(
    "policy.constraints.enforce-min-participants", "POLICY-ROLE-MIN-PARTICIPANTS",
    summary="a commit that leaves a role with fewer users, or fewer active users, than its minimum constraint is "
    "refused (exactly the minimum is allowed)",
)

CHECK_CHANGE_USER_ROLE = step(
    "policy.authorize.change-user-role", "POLICY-CAP-CHANGE-USER-ROLE",
    summary="changing another participant's role needs canChangeUserRole and an authorized_role_changes entry of "
    "the actor's role from the target's role to the new one",
)

OPEN_JOIN_ROLE_0_ONLY = step(
    "policy.validate.open-join-role-0-only", "POLICY-CAP-OPEN-JOIN-ROLE-0-ONLY",
    summary="a role list giving canOpenJoin to a non-zero role is not a valid policy (a commit leaving one is "
    "refused)",
)

CHECK_UNBAN = step(
    "policy.authorize.unban", "POLICY-CAP-UNBAN-FROM-INDEX-1",
    summary="an unban (a role change from role 1) needs canUnBan and an authorized_role_changes entry of the "
    "actor's role from 1 to the new role",
)

CHECK_REMOVE_PARTICIPANT = step(
    "policy.authorize.remove-participant", "POLICY-CAP-REMOVE-PARTICIPANT-AUTHZ",
    summary="removing another participant from the participant list needs canRemoveParticipant and an "
    "authorized_role_changes entry of the actor's role from the target's role that includes 0",
)

COMPONENT_ROLES = int(PolicyComponentId.roles_list)
COMPONENT_BASE_POLICY = int(PolicyComponentId.base_room_policy)


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why an action is not authorized, and the requirement ID that says so."""

    reason: str
    requirement: str

    def __str__(self) -> str:
        return f"{self.reason} [{self.requirement}]"


class PolicyError(ValueError):
    """A policy document that cannot be used (does not decode, or breaks -04's fixed role rules)."""


@dataclasses.dataclass
class RoomPolicy:
    """The roles and base policy of one room, with the authorization rules over them."""

    roles: RoleData
    base: BaseRoomPolicy

    # -- encoding ---------------------------------------------------------------------------

    def components(self) -> dict[int, bytes]:
        """The app_data_dictionary entries this policy occupies."""
        return {COMPONENT_ROLES: self.roles.encode(), COMPONENT_BASE_POLICY: self.base.encode()}

    @classmethod
    def from_components(cls, components: Mapping[int, bytes], overrides: Overrides = NO_OVERRIDES) -> RoomPolicy:
        """From the GroupContext's app_data_dictionary; PolicyError if absent or malformed."""
        try:
            roles = RoleData.decode(bytes(components[COMPONENT_ROLES]))
            base = BaseRoomPolicy.decode(bytes(components[COMPONENT_BASE_POLICY]))
        except KeyError as exc:
            raise PolicyError(f"policy component {exc} is missing") from None
        except (DecodeError, EncodeError) as exc:
            raise PolicyError(f"policy component does not decode: {exc}") from None
        policy = cls(roles, base)
        policy.validate(overrides)
        return policy

    def validate(self, overrides: Overrides = NO_OVERRIDES) -> None:
        """-04's fixed rules about the role list itself (``overrides``: the hub room's, at
        :data:`OPEN_JOIN_ROLE_0_ONLY`)."""
        indexes = [role.role_index for role in self.roles.roles]
        if len(set(indexes)) != len(indexes):
            raise PolicyError("two roles share a role_index")
        banned = self.role(ROLE_INDEX_BANNED)
        if banned is not None and bytes(banned.role_name) != BANNED_ROLE_NAME:
            raise PolicyError('role 1 must be named "banned" (POLICY-ROLE-BANNED-INDEX-1)')
        for role in self.roles.roles if not overrides.departs(OPEN_JOIN_ROLE_0_ONLY) else ():
            if role.role_index != ROLE_INDEX_NON_PARTICIPANT and Capability.canOpenJoin in role.role_capabilities:
                raise PolicyError("canOpenJoin in a non-zero role (POLICY-CAP-OPEN-JOIN-ROLE-0-ONLY)")

    # -- lookups ----------------------------------------------------------------------------

    def role(self, index: int) -> Role | None:
        for role in self.roles.roles:
            if role.role_index == index:
                return role
        return None

    def has(self, role_index: int, capability: Capability) -> bool:
        """The role holds the capability (§8); every capability decision asks this: the add of a user by a
        canAddParticipant holder (POLICY-CAP-ADD-PARTICIPANT-CLIENTS), a role change (POLICY-CAP-CHANGE-USER-ROLE),
        an unban (POLICY-CAP-UNBAN-FROM-INDEX-1)."""
        role = self.role(role_index)
        return role is not None and int(capability) in role.role_capabilities

    def may_change(self, actor_role: int, from_role: int, to_role: int) -> bool:
        """authorized_role_changes of the actor's role holds from_role -> to_role (§3); an add needs its entry
        from role 0 (POLICY-CAP-ADD-PARTICIPANT-CLIENTS), a ban its entry to role 1 (POLICY-CAP-BAN-REMOVES-CLIENTS),
        a role change or an unban its own (POLICY-CAP-CHANGE-USER-ROLE, POLICY-CAP-UNBAN-FROM-INDEX-1)."""
        role = self.role(actor_role)
        if role is None:
            return False
        return any(
            entry.from_role_index == from_role and to_role in entry.target_role_indexes
            for entry in role.authorized_role_changes
        )

    def banned_role_exists(self) -> bool:
        """Role 1 exists and is named "banned", which a ban and an unban need (§8.1.3;
        POLICY-CAP-BAN-REMOVES-CLIENTS, POLICY-CAP-UNBAN-FROM-INDEX-1)."""
        role = self.role(ROLE_INDEX_BANNED)
        return role is not None and bytes(role.role_name) == BANNED_ROLE_NAME

    def may_be_active(self, role_index: int) -> bool:
        """A user in this role may have clients in the group (POLICY-ROLE-MAX-ACTIVE-ZERO; banned never)."""
        if role_index in (ROLE_INDEX_NON_PARTICIPANT, ROLE_INDEX_BANNED):
            return False
        role = self.role(role_index)
        return role is not None and role.maximum_active_participants_constraint != 0

    # -- authorization ----------------------------------------------------------------------

    def authorize_change(
        self, actor: bytes, actor_role: int, change: ParticipantChange, overrides: Overrides = NO_OVERRIDES
    ) -> Refusal | None:
        """One participant-list action (PROTO-PLIST-CHANGES-AUTHORIZED-SEPARATELY, room-policy §8.1): an add of
        another user by a canAddParticipant holder is authorized (POLICY-CAP-ADD-PARTICIPANT-CLIENTS), and so is a ban
        by a canBan holder whose role has an entry from the target's role to 1, "banned", which then takes effect
        (POLICY-CAP-BAN-REMOVES-CLIENTS).
        ``overrides``: the hub room's (:data:`CHECK_CHANGE_USER_ROLE`)."""
        target_is_actor = change.user == actor
        if change.to_role != ROLE_INDEX_NON_PARTICIPANT and self.role(change.to_role) is None:
            return Refusal(f"role {change.to_role} does not exist", "POLICY-ROLE-ONE-ROLE-PER-USER")
        if change.kind is ChangeKind.add:
            if self.base.fixed_membership == Bool.true:
                return Refusal("fixed-membership room: no user can be added", "POLICY-BASE-FIXED-MEMBERSHIP-NO-ADD")
            if target_is_actor:
                # Joining oneself: open join from role 0 (§8.1.1 canOpenJoin).
                if self.has(ROLE_INDEX_NON_PARTICIPANT, Capability.canOpenJoin) and self.may_change(
                    ROLE_INDEX_NON_PARTICIPANT, ROLE_INDEX_NON_PARTICIPANT, change.to_role
                ):
                    return None
                return Refusal("a user cannot add itself without canOpenJoin", "POLICY-CAP-ADD-PARTICIPANT-NOT-SELF")
            if not self.has(actor_role, Capability.canAddParticipant):
                return Refusal(f"role {actor_role} lacks canAddParticipant", "POLICY-CAP-ADD-PARTICIPANT-ROLE-CHANGE")
            if not self.may_change(actor_role, ROLE_INDEX_NON_PARTICIPANT, change.to_role):
                return Refusal(
                    f"role {actor_role} may not add into role {change.to_role}",
                    "POLICY-CAP-ADD-PARTICIPANT-ROLE-CHANGE",
                )
            return None
        if change.kind is ChangeKind.remove:
            if self.base.fixed_membership == Bool.true:
                return Refusal(
                    "fixed-membership room: users cannot leave or be removed", "POLICY-BASE-FIXED-MEMBERSHIP-NO-LEAVE"
                )
            if target_is_actor:
                if self.has(actor_role, Capability.canRemoveSelf):
                    return None
                return Refusal(f"role {actor_role} lacks canRemoveSelf", "POLICY-CAP-REMOVE-SELF-ALL-CLIENTS")
            if not self.has(actor_role, Capability.canRemoveParticipant):
                return self._removal_refusal(Refusal(
                    f"role {actor_role} lacks canRemoveParticipant", "POLICY-CAP-REMOVE-PARTICIPANT-AUTHZ"), overrides)
            if not self.may_change(actor_role, change.from_role, ROLE_INDEX_NON_PARTICIPANT):
                return self._removal_refusal(Refusal(
                    f"role {actor_role} may not remove a user of role {change.from_role}",
                    "POLICY-CAP-REMOVE-PARTICIPANT-AUTHZ",
                ), overrides)
            return None
        # A role change: ban, unban, or an ordinary change.
        if change.to_role == ROLE_INDEX_BANNED:
            if not self.banned_role_exists():
                return Refusal('no role 1 named "banned" in this room', "POLICY-CAP-BAN-AUTHZ")
            if not self.has(actor_role, Capability.canBan) or not self.may_change(
                actor_role, change.from_role, ROLE_INDEX_BANNED
            ):
                return Refusal(
                    f"role {actor_role} may not ban a user of role {change.from_role}", "POLICY-CAP-BAN-AUTHZ"
                )
            return None
        if change.from_role == ROLE_INDEX_BANNED:
            if not self.banned_role_exists():
                return Refusal('no role 1 named "banned" in this room', "POLICY-CAP-UNBAN-ROLE-1-NAMED-BANNED")
            if not self.has(actor_role, Capability.canUnBan) or not self.may_change(
                actor_role, ROLE_INDEX_BANNED, change.to_role
            ):
                return self._unban_refusal(actor_role, change.to_role, overrides)  # POLICY-CAP-UNBAN-FROM-INDEX-1
            return None
        if target_is_actor:
            # canChangeOwnRole only moves to a preauthorized role; preauthorization is not modelled here.
            return Refusal("changing one's own role needs a preauthorization entry", "POLICY-CAP-CHANGE-OWN-ROLE")
        if not self.has(actor_role, Capability.canChangeUserRole) or not self.may_change(
            actor_role, change.from_role, change.to_role
        ):
            if self._change_user_role_checked(overrides):
                return Refusal(
                    f"role {actor_role} may not change role {change.from_role} to {change.to_role}",
                    "POLICY-CAP-CHANGE-USER-ROLE",
                )
        return None

    @staticmethod
    def _removal_refusal(refusal: Refusal, overrides: Overrides) -> Refusal | None:
        """The refusal of an unauthorized removal of another participant (:data:`CHECK_REMOVE_PARTICIPANT`; a fault
        departing from it lets it pass); a helper of :meth:`authorize_change`."""
        if overrides.departs(CHECK_REMOVE_PARTICIPANT):
            return None
        return refusal

    @staticmethod
    def _unban_refusal(actor_role: int, to_role: int, overrides: Overrides) -> Refusal | None:
        """The refusal of an unneeded unban (:data:`CHECK_UNBAN`; a fault departing from it lets it pass); a helper
        of :meth:`authorize_change`."""
        if overrides.departs(CHECK_UNBAN):
            return None
        return Refusal(f"role {actor_role} may not unban into role {to_role}", "POLICY-CAP-UNBAN-FROM-INDEX-1")

    @staticmethod
    def _change_user_role_checked(overrides: Overrides) -> bool:
        """Whether canChangeUserRole is enforced (:data:`CHECK_CHANGE_USER_ROLE`); a helper of
        :meth:`authorize_change`, so that its own rules stay mapped by the requirements they name."""
        return not overrides.departs(CHECK_CHANGE_USER_ROLE)

    def check_constraints(
        self,
        before: Mapping[bytes, int],
        after: Mapping[bytes, int],
        active_before: Iterable[bytes],
        active_after: Iterable[bytes],
        clients_after: int,
        overrides: Overrides = NO_OVERRIDES,
    ) -> Refusal | None:
        """Role and room size constraints after a commit (§3, §5). Only a count that moved in the
        wrong direction is refused, so a room that starts below a minimum can still grow.
        ``overrides``: the hub room's (:data:`ENFORCE_MAX_CLIENTS`, :data:`ENFORCE_MIN_PARTICIPANTS`,
        :data:`ENFORCE_MAX_USERS`)."""
        counts_before, counts_after = Counter(before.values()), Counter(after.values())
        active_before_set, active_after_set = set(active_before), set(active_after)
        act_before = Counter(before[u] for u in active_before_set if u in before)
        act_after = Counter(after[u] for u in active_after_set if u in after)
        for role in self.roles.roles:
            index = role.role_index
            if index == ROLE_INDEX_NON_PARTICIPANT:
                continue
            n0, n1, a0, a1 = counts_before[index], counts_after[index], act_before[index], act_after[index]
            maximum = role.maximum_participants_constraint
            if maximum is not None and n1 > maximum and n1 > n0:
                return Refusal(f"role {index} would hold {n1} users (max {maximum})", "POLICY-ROLE-MAX-PARTICIPANTS")
            if n1 < role.minimum_participants_constraint and n1 < n0 \
                    and not overrides.departs(ENFORCE_MIN_PARTICIPANTS):
                return Refusal(
                    f"role {index} would hold {n1} users (min {role.minimum_participants_constraint})",
                    "POLICY-ROLE-MIN-PARTICIPANTS",
                )
            maximum = role.maximum_active_participants_constraint
            if maximum is not None and a1 > maximum and a1 > a0:
                return Refusal(
                    f"role {index} would hold {a1} active users (max {maximum})", "POLICY-ROLE-MAX-PARTICIPANTS"
                )
            if a1 < role.minimum_active_participants_constraint and a1 < a0 \
                    and not overrides.departs(ENFORCE_MIN_PARTICIPANTS):
                return Refusal(
                    f"role {index} would hold {a1} active users (min {role.minimum_active_participants_constraint})",
                    "POLICY-ROLE-MIN-PARTICIPANTS",
                )
        non_banned = sum(1 for r in after.values() if r != ROLE_INDEX_BANNED)
        non_banned_before = sum(1 for r in before.values() if r != ROLE_INDEX_BANNED)
        if (self.base.max_users is not None and non_banned > self.base.max_users and non_banned > non_banned_before
                and not overrides.departs(ENFORCE_MAX_USERS)):
            return Refusal(f"{non_banned} users exceed max_users {self.base.max_users}", "POLICY-BASE-MAX-USERS")
        limit = self.base.max_clients
        if limit is not None and overrides.departs(MAX_CLIENTS_INCLUSIVE):
            limit -= 1  # otherwise: exactly max_clients clients are allowed
        if (limit is not None and clients_after > limit
                and not overrides.departs(ENFORCE_MAX_CLIENTS)):
            return Refusal(
                f"{clients_after} clients exceed max_clients {self.base.max_clients}", "POLICY-BASE-MAX-CLIENTS"
            )
        return None

    def may_send(self, role_index: int) -> Refusal | None:
        """Application messages need canSendMessage (POLICY-CAP-SEND-MESSAGE)."""
        if role_index in (ROLE_INDEX_NON_PARTICIPANT, ROLE_INDEX_BANNED):
            return Refusal("the sender is not an active participant", "PROTO-REMOVAL-BLOCK-APP-SEND")
        if not self.has(role_index, Capability.canSendMessage):
            return Refusal(f"role {role_index} lacks canSendMessage", "POLICY-CAP-SEND-MESSAGE")
        return None


# --------------------------------------------------------------------------------------------
# The default policy of rooms the reference hub creates

ROLE_MEMBER = 2
ROLE_ADMIN = 3

_MEMBER_CAPABILITIES = [
    Capability.canSendMessage,
    Capability.canReceiveMessage,
    Capability.canRemoveSelf,
    Capability.canAddOwnClient,
    Capability.canRemoveOwnClient,
    Capability.canReportAbuse,
]
_ADMIN_CAPABILITIES = _MEMBER_CAPABILITIES + [
    Capability.canAddParticipant,
    Capability.canRemoveParticipant,
    Capability.canBan,
    Capability.canUnBan,
    Capability.canKick,
    Capability.canChangeUserRole,
    CAP_TRANSFER_HUB,  # hub-transfer extension: admins may move the room (docs/extensions/hub-transfer.md §3.1)
]


def _role(
    index: int,
    name: bytes,
    capabilities: list[Capability | int],
    changes: dict[int, list[int]],
    description: bytes = b"",
    max_active: int | None = None,
) -> Role:
    return Role(
        role_index=index,
        role_name=name,
        role_description=description,
        role_capabilities=[int(c) for c in capabilities],
        minimum_participants_constraint=0,
        maximum_participants_constraint=None,
        minimum_active_participants_constraint=0,
        maximum_active_participants_constraint=max_active,
        authorized_role_changes=[
            SingleSourceRoleChangeTargets(from_role_index=f, target_role_indexes=t) for f, t in changes.items()
        ],
    )


def default_policy(*, max_users: int | None = None, max_clients: int | None = None) -> RoomPolicy:
    """Roles 0 no-participant, 1 banned, 2 member (send, leave, manage own clients), 3 admin (also
    add/remove participants, ban/unban, kick, change roles between member and admin)."""
    roles = RoleData(
        roles=[
            _role(ROLE_INDEX_NON_PARTICIPANT, b"no-participant", [], {}, max_active=0),
            _role(ROLE_INDEX_BANNED, BANNED_ROLE_NAME, [], {}, max_active=0),
            _role(ROLE_MEMBER, b"member", _MEMBER_CAPABILITIES, {}),
            _role(
                ROLE_ADMIN,
                b"admin",
                _ADMIN_CAPABILITIES,
                {
                    ROLE_INDEX_NON_PARTICIPANT: [ROLE_MEMBER, ROLE_ADMIN],
                    ROLE_INDEX_BANNED: [ROLE_INDEX_NON_PARTICIPANT, ROLE_MEMBER],
                    ROLE_MEMBER: [ROLE_INDEX_NON_PARTICIPANT, ROLE_INDEX_BANNED, ROLE_ADMIN],
                    ROLE_ADMIN: [ROLE_INDEX_NON_PARTICIPANT, ROLE_INDEX_BANNED, ROLE_MEMBER],
                },
            ),
        ]
    )
    base = BaseRoomPolicy(
        fixed_membership=Bool.false,
        parent_dependant=Bool.false,
        parent_room=[],
        multi_device=Bool.true,
        max_clients=max_clients,
        max_users=max_users,
        pseudonyms_allowed=Bool.false,
        persistent_room=Bool.true,
        discoverable=Bool.false,
        policy_component_ids=[COMPONENT_ROLES, COMPONENT_BASE_POLICY],
    )
    return RoomPolicy(roles, base)
