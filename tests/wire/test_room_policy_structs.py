"""room-policy-04 structs: registry values, bool strictness, Optionality selects, a role from Appendix A."""

from __future__ import annotations

import pytest

from reference_peer.wire.codec import DecodeError
from reference_peer.wire.mimi import Uri
from reference_peer.wire.room_policy import (
    RESERVED_CAPABILITIES,
    BaseRoomPolicy,
    Bool,
    Capability,
    LinkPreviewPolicy,
    MessageExpiration,
    Optionality,
    PolicyComponentId,
    Role,
    RoleData,
    SingleSourceRoleChangeTargets,
)


def test_capability_registry_values() -> None:
    assert Capability.canAddParticipant == 0x0000
    assert Capability.canUseJoinCode == 0x0009 and Capability.canChangeOwnRole == 0x0010
    assert Capability.canSendMessage == 0x0100 and Capability.canCopyLink == 0x020B
    assert Capability.canDestroyRoom == 0x0501 and Capability.canSendMLSReinitProposal == 0x0601
    assert Capability.canKnock in RESERVED_CAPABILITIES and Capability.canKick not in RESERVED_CAPABILITIES
    assert len({int(c) for c in Capability}) == len(Capability)  # no aliases hide a duplicate value
    assert PolicyComponentId.roles_list == 0x0025 and PolicyComponentId.message_expiration_policy == 0x0030


def test_banned_role_of_appendix_a() -> None:
    banned = Role(
        role_index=1,
        role_name=b"banned",
        role_description=b"",
        role_capabilities=[],
        minimum_participants_constraint=0,
        maximum_participants_constraint=None,
        minimum_active_participants_constraint=0,
        maximum_active_participants_constraint=0,
        authorized_role_changes=[],
    )
    expected = (1).to_bytes(4, "big") + b"\x06banned" + b"\x00" + b"\x00" + bytes(4) + b"\x00" + bytes(4)
    assert banned.encode() == expected + b"\x01" + bytes(4) + b"\x00"
    user = banned.replace(
        role_index=2,
        role_name=b"ordinary_user",
        role_capabilities=[Capability.canSendMessage, Capability.canRemoveSelf],
        maximum_active_participants_constraint=None,
        authorized_role_changes=[SingleSourceRoleChangeTargets(from_role_index=0, target_role_indexes=[2])],
    )
    assert RoleData.decode(RoleData(roles=[banned, user]).encode()).roles[1].role_capabilities == [0x0100, 0x0006]


def test_bool_accepts_only_0_and_1() -> None:
    policy = BaseRoomPolicy(
        fixed_membership=Bool.true,
        parent_dependant=Bool.false,
        parent_room=[],
        multi_device=Bool.true,
        max_clients=None,
        max_users=10,
        pseudonyms_allowed=Bool.false,
        persistent_room=Bool.true,
        discoverable=Bool.false,
        policy_component_ids=[PolicyComponentId.roles_list],
    )
    data = bytearray(policy.encode())
    assert BaseRoomPolicy.decode(bytes(data)) == policy
    data[0] = 2
    with pytest.raises(DecodeError) as info:
        BaseRoomPolicy.decode(bytes(data))
    assert info.value.path == "BaseRoomPolicy.fixed_membership"


@pytest.mark.parametrize(("use", "carries_proxy"), [(Optionality.required, True), (Optionality.optional, True), (Optionality.forbidden, False)])
def test_link_preview_proxy_present_unless_forbidden(use: Optionality, carries_proxy: bool) -> None:
    policy = LinkPreviewPolicy(
        autodetect_hyperlinks_in_text=Optionality.optional,
        send_link_previews=Optionality.optional,
        automatic_link_previews=Optionality.forbidden,
        link_preview_proxy_use=use,
        link_preview_proxy=[Uri(uri=b"https://p.example")] if carries_proxy else None,
    )
    data = policy.encode()
    assert len(data) == (4 + 1 + 1 + 17 if carries_proxy else 4)
    assert LinkPreviewPolicy.decode(data) == policy


def test_forbidden_message_expiration_is_one_octet() -> None:
    assert MessageExpiration(expiring_messages=Optionality.forbidden).encode() == b"\x02"
    with pytest.raises(DecodeError, match="truncated"):
        MessageExpiration.decode(b"\x01")
