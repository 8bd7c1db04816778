"""The participant list (draft-ietf-mimi-protocol-06 §7.5): ParticipantListData and the semantics of
ParticipantListUpdate, shared by the hub and the clients.

The same apply function is the AppDataUpdate handler of the participant_list component (0x0022)
in every member's :class:`~reference_peer.mls.Group` and in the hub's
:class:`~reference_peer.mls.HubView` (:func:`install_handler`), so that all parties compute the
same GroupContext from the same commit.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable

from ..wire.codec import DecodeError, EncodeError
from ..wire.mimi import (
    COMPONENT_PARTICIPANT_LIST,
    ParticipantListData,
    ParticipantListUpdate,
    UserindexRolePair,
    UserRolePair,
)
from ..wire.room_policy import ROLE_INDEX_NON_PARTICIPANT


class ParticipantListError(ValueError):
    """An update that cannot apply to the current list; ``requirement`` names the rule it breaks."""

    def __init__(self, message: str, requirement: str) -> None:
        super().__init__(message)
        self.requirement = requirement


class ChangeKind(enum.Enum):
    add = "add"
    remove = "remove"
    role = "role"


@dataclasses.dataclass(frozen=True)
class ParticipantChange:
    """One action of an update, in user terms: role 0 stands for "not in the list" (room-policy §3)."""

    kind: ChangeKind
    user: bytes
    from_role: int
    to_role: int


EMPTY = ParticipantListData(participants=[])


def decode_list(data: bytes | None) -> ParticipantListData:
    """The component's data (absent means an empty list); :class:`ParticipantListError` if malformed."""
    if data is None:
        return EMPTY
    try:
        return ParticipantListData.decode(bytes(data))
    except (DecodeError, EncodeError) as exc:
        raise ParticipantListError(f"participant list does not decode: {exc}", "PROTO-COMPONENT-IDS") from None


def decode_update(data: bytes) -> ParticipantListUpdate:
    try:
        return ParticipantListUpdate.decode(bytes(data))
    except (DecodeError, EncodeError) as exc:
        raise ParticipantListError(
            f"ParticipantListUpdate does not decode: {exc}", "PROTO-PLIST-UPDATE-ORDER"
        ) from None


def roles_by_user(plist: ParticipantListData) -> dict[bytes, int]:
    return {bytes(p.user): p.role_index for p in plist.participants}


def make_update(
    *,
    role_changes: Iterable[tuple[int, int]] = (),
    removed: Iterable[int] = (),
    added: Iterable[tuple[bytes, int]] = (),
) -> ParticipantListUpdate:
    """A ParticipantListUpdate from (index, role) changes, removed indices and (user, role) additions."""
    return ParticipantListUpdate(
        changedRoleParticipants=[UserindexRolePair(user_index=i, role_index=r) for i, r in role_changes],
        removedIndices=list(removed),
        addedParticipants=[UserRolePair(user=bytes(u), role_index=r) for u, r in added],
    )


def index_of(plist: ParticipantListData, user: bytes) -> int | None:
    for index, pair in enumerate(plist.participants):
        if bytes(pair.user) == bytes(user):
            return index
    return None


def apply_update(
    current: ParticipantListData, update: ParticipantListUpdate, touched: set[bytes] | None = None
) -> tuple[ParticipantListData, list[ParticipantChange]]:
    """Apply one update (role changes, then removals, then appended additions; indices refer to the
    list before the update: PROTO-PLIST-UPDATE-ORDER) and return the new list and its changes.

    ``touched`` collects the users changed so far in the same commit: a user changed twice in one
    commit (even across updates) is refused (PROTO-PLIST-SINGLE-CHANGE-PER-USER), as is an index
    out of range, an addition of a listed user (PROTO-PLIST-ONE-ENTRY-PER-USER) and role 0 in the
    list (POLICY-ROLE-INDEX-0-NON-PARTICIPANT).
    """
    touched = set() if touched is None else touched
    entries = [(bytes(p.user), p.role_index) for p in current.participants]
    changes: list[ParticipantChange] = []

    def touch(user: bytes) -> None:
        if user in touched:
            raise ParticipantListError(
                f"user {user!r} is changed more than once in one commit", "PROTO-PLIST-SINGLE-CHANGE-PER-USER"
            )
        touched.add(user)

    def check_index(index: int, what: str) -> None:
        if not 0 <= index < len(entries):
            raise ParticipantListError(
                f"{what} index {index} is outside the list of {len(entries)}", "PROTO-PLIST-UPDATE-ORDER"
            )

    for pair in update.changedRoleParticipants:
        check_index(pair.user_index, "changedRoleParticipants")
        user, old_role = entries[pair.user_index]
        if pair.role_index == ROLE_INDEX_NON_PARTICIPANT:
            raise ParticipantListError(
                "a role change to role 0 (use removedIndices to remove a user)", "POLICY-ROLE-INDEX-0-NON-PARTICIPANT"
            )
        touch(user)
        entries[pair.user_index] = (user, pair.role_index)
        changes.append(ParticipantChange(ChangeKind.role, user, old_role, pair.role_index))
    removed = set()
    for index in update.removedIndices:
        check_index(index, "removedIndices")
        user, old_role = entries[index]
        touch(user)
        removed.add(index)
        changes.append(
            ParticipantChange(
                ChangeKind.remove, user, current.participants[index].role_index, ROLE_INDEX_NON_PARTICIPANT
            )
        )
    entries = [entry for i, entry in enumerate(entries) if i not in removed]
    present = {user for user, _ in entries}
    for pair in update.addedParticipants:
        user = bytes(pair.user)
        if pair.role_index == ROLE_INDEX_NON_PARTICIPANT:
            raise ParticipantListError(f"user {user!r} added with role 0", "POLICY-ROLE-INDEX-0-NON-PARTICIPANT")
        if user in touched:
            touch(user)  # raises: the same user twice in one commit
        if user in present:
            raise ParticipantListError(
                f"user {user!r} is already in the participant list", "PROTO-PLIST-ONE-ENTRY-PER-USER"
            )
        touch(user)
        present.add(user)
        entries.append((user, pair.role_index))
        changes.append(ParticipantChange(ChangeKind.add, user, ROLE_INDEX_NON_PARTICIPANT, pair.role_index))
    new = ParticipantListData(participants=[UserRolePair(user=u, role_index=r) for u, r in entries])
    return new, changes


def apply_updates(current: bytes | None, updates: list[bytes]) -> tuple[ParticipantListData, list[ParticipantChange]]:
    """Apply all the participant-list updates of one commit, in order, with one ``touched`` set."""
    plist = decode_list(current)
    touched: set[bytes] = set()
    changes: list[ParticipantChange] = []
    for data in updates:
        plist, more = apply_update(plist, decode_update(data), touched)
        changes.extend(more)
    return plist, changes


def app_data_handler(current: bytes | None, updates: list[bytes]) -> bytes:
    """The AppDataUpdate handler for component 0x0022 (``Group.app_data_handlers``); raises on a bad update,
    which the MLS layer turns into an InvalidCommit."""
    plist, _ = apply_updates(current, updates)
    return plist.encode()


def install_handler(group: object) -> None:
    """Register :func:`app_data_handler` on a Group or HubView."""
    group.app_data_handlers[int(COMPONENT_PARTICIPANT_LIST)] = app_data_handler  # type: ignore[attr-defined]
