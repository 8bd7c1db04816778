"""ParticipantListUpdate semantics (protocol-06 §7.5) and room-policy-04 authorization, as units."""

from __future__ import annotations

import pytest

from reference_peer.room import (
    ROLE_ADMIN,
    ROLE_MEMBER,
    ChangeKind,
    ParticipantChange,
    ParticipantListError,
    RoomPolicy,
    apply_update,
    apply_updates,
    default_policy,
    make_update,
)
from reference_peer.room.participants import app_data_handler, decode_list
from reference_peer.room.policy import PolicyError
from reference_peer.wire.mimi import ParticipantListData, UserRolePair
from reference_peer.wire.room_policy import ROLE_INDEX_BANNED

A, B, C, D = (f"mimi://x.example/u/{n}".encode() for n in "abcd")


def plist(*pairs: tuple[bytes, int]) -> ParticipantListData:
    return ParticipantListData(participants=[UserRolePair(user=u, role_index=r) for u, r in pairs])


def test_update_order_roles_then_removals_then_appended_additions():
    current = plist((A, 3), (B, 2), (C, 2))
    update = make_update(role_changes=[(2, 3)], removed=[1], added=[(D, 2)])
    new, changes = apply_update(current, update)
    # Indices refer to the list before the update: index 2 is C (role change), index 1 is B (removed).
    assert [(bytes(p.user), p.role_index) for p in new.participants] == [(A, 3), (C, 3), (D, 2)]
    assert changes == [
        ParticipantChange(ChangeKind.role, C, 2, 3),
        ParticipantChange(ChangeKind.remove, B, 2, 0),
        ParticipantChange(ChangeKind.add, D, 0, 2),
    ]


@pytest.mark.parametrize(
    ("update", "requirement"),
    [
        (make_update(removed=[3]), "PROTO-PLIST-UPDATE-ORDER"),
        (make_update(role_changes=[(5, 2)]), "PROTO-PLIST-UPDATE-ORDER"),
        (make_update(role_changes=[(1, 3)], removed=[1]), "PROTO-PLIST-SINGLE-CHANGE-PER-USER"),
        (make_update(removed=[1, 1]), "PROTO-PLIST-SINGLE-CHANGE-PER-USER"),
        (make_update(added=[(D, 2), (D, 3)]), "PROTO-PLIST-SINGLE-CHANGE-PER-USER"),
        (make_update(added=[(B, 2)]), "PROTO-PLIST-ONE-ENTRY-PER-USER"),
        (make_update(added=[(D, 0)]), "POLICY-ROLE-INDEX-0-NON-PARTICIPANT"),
        (make_update(role_changes=[(1, 0)]), "POLICY-ROLE-INDEX-0-NON-PARTICIPANT"),
    ],
)
def test_invalid_updates(update, requirement):
    with pytest.raises(ParticipantListError) as info:
        apply_update(plist((A, 3), (B, 2), (C, 2)), update)
    assert info.value.requirement == requirement


def test_a_user_touched_in_two_updates_of_one_commit():
    current = plist((A, 3), (B, 2)).encode()
    with pytest.raises(ParticipantListError) as info:
        apply_updates(current, [make_update(role_changes=[(1, 3)]).encode(), make_update(removed=[1]).encode()])
    assert info.value.requirement == "PROTO-PLIST-SINGLE-CHANGE-PER-USER"
    # Separately, each is fine.
    assert decode_list(app_data_handler(current, [make_update(removed=[1]).encode()])) == plist((A, 3))


def test_removed_then_readded_in_one_commit_is_refused():
    with pytest.raises(ParticipantListError):
        apply_update(plist((A, 3), (B, 2)), make_update(removed=[1], added=[(B, 2)]))


def test_malformed_update_is_a_participant_list_error():
    with pytest.raises(ParticipantListError):
        app_data_handler(None, [b"\xff\xff"])


POLICY = default_policy()


@pytest.mark.parametrize(
    ("actor_role", "change", "requirement"),
    [
        (ROLE_MEMBER, ParticipantChange(ChangeKind.add, B, 0, ROLE_MEMBER), "POLICY-CAP-ADD-PARTICIPANT-ROLE-CHANGE"),
        (ROLE_MEMBER, ParticipantChange(ChangeKind.remove, B, ROLE_MEMBER, 0), "POLICY-CAP-REMOVE-PARTICIPANT-AUTHZ"),
        (ROLE_MEMBER, ParticipantChange(ChangeKind.role, B, ROLE_MEMBER, ROLE_INDEX_BANNED), "POLICY-CAP-BAN-AUTHZ"),
        (
            ROLE_MEMBER,
            ParticipantChange(ChangeKind.role, B, ROLE_INDEX_BANNED, ROLE_MEMBER),
            "POLICY-CAP-UNBAN-FROM-INDEX-1",
        ),
        (ROLE_MEMBER, ParticipantChange(ChangeKind.role, B, ROLE_MEMBER, ROLE_ADMIN), "POLICY-CAP-CHANGE-USER-ROLE"),
        (ROLE_ADMIN, ParticipantChange(ChangeKind.role, A, ROLE_ADMIN, ROLE_MEMBER), "POLICY-CAP-CHANGE-OWN-ROLE"),
        (ROLE_ADMIN, ParticipantChange(ChangeKind.add, A, 0, ROLE_MEMBER), "POLICY-CAP-ADD-PARTICIPANT-NOT-SELF"),
        (ROLE_ADMIN, ParticipantChange(ChangeKind.add, B, 0, 9), "POLICY-ROLE-ONE-ROLE-PER-USER"),
        (
            ROLE_INDEX_BANNED,
            ParticipantChange(ChangeKind.remove, A, ROLE_INDEX_BANNED, 0),
            "POLICY-CAP-REMOVE-SELF-ALL-CLIENTS",
        ),
    ],
)
def test_refused_changes(actor_role, change, requirement):
    refusal = POLICY.authorize_change(A, actor_role, change)
    assert refusal is not None and refusal.requirement == requirement


@pytest.mark.parametrize(
    ("actor_role", "change"),
    [
        (ROLE_ADMIN, ParticipantChange(ChangeKind.add, B, 0, ROLE_MEMBER)),
        (ROLE_ADMIN, ParticipantChange(ChangeKind.remove, B, ROLE_MEMBER, 0)),
        (ROLE_ADMIN, ParticipantChange(ChangeKind.role, B, ROLE_MEMBER, ROLE_INDEX_BANNED)),
        (ROLE_ADMIN, ParticipantChange(ChangeKind.role, B, ROLE_INDEX_BANNED, ROLE_MEMBER)),
        (ROLE_ADMIN, ParticipantChange(ChangeKind.role, B, ROLE_MEMBER, ROLE_ADMIN)),
        (ROLE_MEMBER, ParticipantChange(ChangeKind.remove, A, ROLE_MEMBER, 0)),  # leaving: canRemoveSelf
    ],
)
def test_allowed_changes(actor_role, change):
    assert POLICY.authorize_change(A, actor_role, change) is None


def test_constraints_and_send_permission():
    policy = default_policy(max_users=2, max_clients=3)
    before = {A: ROLE_ADMIN, B: ROLE_MEMBER}
    after = {A: ROLE_ADMIN, B: ROLE_MEMBER, C: ROLE_MEMBER}
    assert policy.check_constraints(before, after, [A, B], [A, B], 2).requirement == "POLICY-BASE-MAX-USERS"
    # Banned entries do not count towards max_users.
    assert (
        policy.check_constraints(before, {A: ROLE_ADMIN, B: ROLE_INDEX_BANNED, C: ROLE_MEMBER}, [A], [A, C], 2) is None
    )
    assert policy.check_constraints(before, before, [A, B], [A, B], 4).requirement == "POLICY-BASE-MAX-CLIENTS"
    assert policy.may_send(ROLE_MEMBER) is None
    assert policy.may_send(ROLE_INDEX_BANNED) is not None


def test_role_minimum_constraint():
    policy = default_policy()
    admin = policy.role(ROLE_ADMIN)
    policy.roles.roles[ROLE_ADMIN] = admin.replace(minimum_participants_constraint=1)
    refusal = policy.check_constraints({A: ROLE_ADMIN, B: ROLE_MEMBER}, {B: ROLE_MEMBER}, [A, B], [B], 1)
    assert refusal is not None and refusal.requirement == "POLICY-ROLE-MIN-PARTICIPANTS"


def test_policy_components_round_trip_and_validation():
    components = POLICY.components()
    assert set(components) == {0x0025, 0x0027}
    assert RoomPolicy.from_components(components) == POLICY
    with pytest.raises(PolicyError):
        RoomPolicy.from_components({0x0025: components[0x0025]})
    bad = default_policy()
    bad.roles.roles[ROLE_INDEX_BANNED] = bad.role(ROLE_INDEX_BANNED).replace(role_name=b"outcasts")
    with pytest.raises(PolicyError):
        RoomPolicy.from_components(bad.components())
