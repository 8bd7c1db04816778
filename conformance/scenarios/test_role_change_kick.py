"""A role change does not authorize removing the user's clients (room-policy-04 §8.1.2, canKick).

With the SUT as hub, a moderator (canChangeUserRole for member <-> moderator, no canKick, no
canRemoveParticipant) commits a member's role change together with a Remove of that member's client. The
role change is authorized; nothing authorizes the Remove, so the hub must refuse the commit. The removal
counterpart of test_multi_device.py::test_role_change_does_not_authorize_adding_the_users_clients.
"""

from __future__ import annotations

import pytest

from conformance.scenarios.roles import as_hub
from conformance.scenarios.test_multi_device import (
    MODERATOR,
    _clients_of,
    _role_change,
    judge_refused_beside_the_role_change,
    moderated_room_with_dave_and_carol,
)
from conformance.scenarios.test_removal import _synced_state
from conformance.verdicts import not_applicable
from reference_peer.mls import remove_proposal

KICK = "POLICY-CAP-KICK-KEEPS-PARTICIPANT"


@pytest.mark.requirements(KICK)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_role_change_does_not_authorize_removing_the_users_clients(cast, sut, ref_follower, mimi_as, poll_until,
                                                                    recorder):
    """room-policy-04 §8.1.2: "canKick - the holder of this capability can propose removal of another
    participant's clients, without changing the Participant List"; canRemoveParticipant and canBan take the user
    out of the list (role 0 or banned). A role change between two listed roles is neither, so it authorizes no
    removal of the user's clients. Dave, a moderator (canChangeUserRole for member <-> moderator, no canKick, no
    canRemoveParticipant), commits carol's role change member -> moderator together with a Remove of carol's
    client: the hub must refuse the commit; judged by effect (any refusal: nothing applied or fanned out, carol
    keeps her client and still receives). The same role change alone is then accepted, so the refusal is the
    Remove's."""
    alice, room, dave, carol = moderated_room_with_dave_and_carol(cast, ref_follower)
    carol_before = _clients_of(cast.hub, room, carol)
    if not carol_before:
        not_applicable(f"set-up failed: the SUT lists no client of carol in {room}, so no removal can be judged")
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    leaves = dave_state.leaves_of_user(carol.uri.encode())
    if not leaves:
        not_applicable(f"set-up failed: dave's client does not see carol's client in the group of {room}")
    out = dave_state.commit([_role_change(dave_state, carol.uri, MODERATOR), remove_proposal(leaves[0])])
    recorder.note(f"dave (moderator, no canKick) commits carol's role change member -> moderator with a Remove of "
                  f"carol's client (leaf {leaves[0]})")
    what = "dave's commit removing carol's client with her role change"
    judge_refused_beside_the_role_change(
        KICK, out, what, unauthorized="Remove",
        accepted=("the hub accepted a commit by dave, whose role lacks canKick and canRemoveParticipant, removing "
                  "carol's client alongside her role change"),
        clients_problem=lambda clients: (f"the hub refused {what} but carol's clients went from {carol_before} to "
                                         f"{clients}" if clients != carol_before else None),
        carol_before=carol_before, cast=cast, sut=sut, mimi_as=mimi_as, ref_follower=ref_follower,
        poll_until=poll_until, recorder=recorder, room=room, alice=alice, dave=dave, carol=carol)
