"""The invariants of a usable room (the hub an external sender, every client's user an active-capable
participant, single-device rooms), checked on creation and after every commit.

A mixin of :class:`~reference_peer.room.hub.HubRoom`: methods only, every attribute lives on the room."""

from __future__ import annotations

from ..mls import HubView
from ..wire.room_policy import ROLE_INDEX_BANNED, ROLE_INDEX_NON_PARTICIPANT, Bool
from .hub_steps import (
    NO_CLIENT_WITHOUT_PARTICIPANT,
    SINGLE_DEVICE,
    SINGLE_DEVICE_ALLOWS_ONE,
    ZERO_ACTIVE_ROLE_HAS_NO_CLIENTS,
)
from .policy import PolicyError, Refusal, RoomPolicy


class MembershipInvariants:
    """The room's invariants over its members, on creation and after every commit."""

    def _check_room_state(self, view: HubView) -> None:
        """The invariants of a usable room: the hub is an external sender and every member's user is
        an active-capable participant."""
        if not any(
            bytes(s.signature_key) == bytes(self.identity.external_sender.signature_key)
            for s in view.external_senders()
        ):
            raise PolicyError("the hub is not in external_senders (PROTO-EXTSENDERS-HUB-CERT)")
        refusal = self._check_members(view, self._roles_of(view))
        if refusal is not None:
            raise PolicyError(str(refusal))

    def _check_members(
        self, view: HubView, roles: dict[bytes, int], policy: RoomPolicy | None = None
    ) -> Refusal | None:
        policy = policy or RoomPolicy.from_components(view.app_data())
        self.overrides.hook(ZERO_ACTIVE_ROLE_HAS_NO_CLIENTS, policy)
        per_user: dict[bytes, int] = {}
        for index, user in self._leaf_users(view).items():
            if user is None:
                return Refusal(f"leaf {index} has no MIMI client identity", "PROTO-PLIST-ONE-ENTRY-PER-USER")
            role = roles.get(user, ROLE_INDEX_NON_PARTICIPANT)
            if role == ROLE_INDEX_NON_PARTICIPANT and self.overrides.departs(NO_CLIENT_WITHOUT_PARTICIPANT):
                continue
            if role == ROLE_INDEX_NON_PARTICIPANT:
                return Refusal(
                    f"a client of {user.decode(errors='replace')} remains without a participant-list entry",
                    "POLICY-CAP-REMOVE-PARTICIPANT-NO-CLIENTS-LEFT",
                )
            if role == ROLE_INDEX_BANNED:
                return Refusal(
                    f"a client of banned {user.decode(errors='replace')} remains in the group",
                    "POLICY-CAP-BAN-REMOVES-CLIENTS",
                )
            if not policy.may_be_active(role):
                return Refusal(f"role {role} may have no clients", "POLICY-ROLE-MAX-ACTIVE-ZERO")
            per_user[user] = per_user.get(user, 0) + 1
        most = 0 if self.overrides.departs(SINGLE_DEVICE_ALLOWS_ONE) else 1
        # Only a single-device room caps a user's clients: with multi_device true (the default) "the MLS group
        # may contain multiple clients per user", and a canAddOwnClient holder's new device is authorized
        # (POLICY-CAP-ADD-OWN-CLIENT).
        if (
            policy.base.multi_device == Bool.false
            and any(n > most for n in per_user.values())
            and not self.overrides.departs(SINGLE_DEVICE)
        ):
            return Refusal("more than one client of a user in a single-device room", "POLICY-BASE-SINGLE-DEVICE")
        return None
