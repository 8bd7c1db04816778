"""A room switched to single-device (draft-ietf-mimi-room-policy-04 §5, multi_device): the hub takes the switch
when every user has one client.

The SUT is the hub. The room is created multi-device with an explicit policy whose admin role holds
canChangeRoomMembershipStyle (a SUT that cannot host it makes the check NOT_APPLICABLE); the commits are built by
the suite's reference-follower admin from its MLS state and sent to the SUT's /update as follower.ref.test. The
refusal of a second client in a single-device room is judged by
test_multi_device.py::test_single_device_room_refuses_a_second_client; this module judges the other side.
"""

from __future__ import annotations

import pytest

from conformance.scenarios.roles import as_hub
from conformance.scenarios.test_multi_device import _clients_of
from conformance.scenarios.test_removal import _post_update, _synced_state
from conformance.scenarios.test_room_policy_matrix import (
    ADMIN,
    _accepted,
    _add,
    _base_at_hub,
    _base_update,
    _policy_room,
    _roles,
)
from conformance.verdicts import fail, judging, not_applicable, observed
from reference_peer.mls import app_data_update_proposal
from reference_peer.room.policy import COMPONENT_BASE_POLICY
from reference_peer.wire.room_policy import BaseRoomPolicy, Bool

SINGLE_DEVICE = "POLICY-BASE-SINGLE-DEVICE"


def _single_device_update(member_state):
    """A base_room_policy AppDataUpdate replacing the room's BaseRoomPolicy with the same one but multi_device
    false (room-policy-04 §3: the update "completely replaces the value of the data field")."""
    data = member_state.group.app_data().get(COMPONENT_BASE_POLICY)
    if data is None:
        not_applicable("the SUT's room has no base_room_policy component in its app_data_dictionary, so no switch "
                       "to single-device can be judged")
    base = BaseRoomPolicy.decode(bytes(data))
    base.multi_device = Bool.false
    return app_data_update_proposal(COMPONENT_BASE_POLICY, base.encode())


@pytest.mark.feature("multiDevice")
@pytest.mark.requirements(SINGLE_DEVICE)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_switch_to_single_device_with_one_client_per_user_is_accepted(cast, sut, ref_follower, mimi_as,
                                                                      poll_until, recorder):
    """room-policy-04 §5: "If multi_device is true (the default), the MLS group may contain multiple clients per
    user. If false only a single client can be an MLS member at one time." One client per user is what a
    single-device room holds, so a hub may not refuse a group for it. In a multi-device room where alice (the SUT's
    admin), dave and erin (reference-follower admins holding canChangeRoomMembershipStyle) and bob (a member) each
    have one client, erin commits a base_room_policy AppDataUpdate setting multi_device false: the hub must accept
    it (§3:
    "If the contents of the update field are valid and if the proposer is authorized to generate such an update,
    the value of the update field completely replaces the value of the data field"). So that a refusal is the
    single-device rule's and not the base-policy authorization's, dave's update of another base field (the
    discoverable flag) must be accepted first (set-up; test_base_policy_change_needs_membership_style judges it)."""
    room, alice = _policy_room(cast, {"roles": _roles(admin_extra=("canChangeRoomMembershipStyle",))})
    dave = ref_follower.create_user("dave")
    erin = ref_follower.create_user("erin")
    bob = ref_follower.create_user("bob")
    _add(cast, room, alice, dave, role=ADMIN)
    _add(cast, room, alice, erin, role=ADMIN)
    _add(cast, room, alice, bob)
    counts = {user.uri: len(_clients_of(cast.hub, room, user)) for user in (alice, dave, erin, bob)}
    if any(n != 1 for n in counts.values()):
        not_applicable(f"set-up failed: the SUT does not list one client for each of alice, dave, erin and bob: "
                       f"{counts}")
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    answer = _post_update(mimi_as, sut, room, dave_state.commit([_base_update(dave_state)]).request, SINGLE_DEVICE)
    recorder.note(f"dave's base_room_policy update flipping discoverable: {answer.label}")
    if not answer.accepted:
        not_applicable(f"set-up failed: the hub refused ({answer.label}) dave's base_room_policy update of the "
                       "discoverable flag, so a refusal of the switch to single-device would not be the "
                       "single-device rule's")
    erin_state = _synced_state(ref_follower, cast.hub, room, erin.client, poll_until)
    out = erin_state.commit([_single_device_update(erin_state)])
    recorder.note("erin (admin, canChangeRoomMembershipStyle) commits multi_device false; every user has one client")
    _accepted(SINGLE_DEVICE, sut, mimi_as, recorder, room, out.request, "erin's base_room_policy update setting "
              "multi_device false in a room where every user has exactly one client")
    with judging(SINGLE_DEVICE):
        base = _base_at_hub(cast, room) or {}
    if base.get("multiDevice") is not False:
        fail(f"the hub accepted the switch to single-device but reports the room's base policy as {base}",
             requirement=SINGLE_DEVICE)
    observed(SINGLE_DEVICE, "the hub accepted a commit setting multi_device false in a room where alice, dave, erin "
                            f"and bob each have one client, and reports multiDevice false ({counts})")
