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
    moderated_room_with_dave_and_carol,
)
from conformance.scenarios.test_removal import (
    _handshake_bytes,
    _message_sentinel,
    _post_update,
    _synced_state,
    judge_not_applied,
    setting_up,
)
from conformance.verdicts import fail, judging, miss, not_applicable, observed
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
    epoch, mark = cast.hub.room(room)["epoch"], ref_follower.traffic_mark()
    with judging(KICK):
        answer = _post_update(mimi_as, sut, room, out.request, KICK)
    recorder.note(f"the hub answered {answer.label}")
    if answer.accepted:
        miss(KICK, f"the hub accepted a commit by dave, whose role lacks canKick and canRemoveParticipant, removing "
                   f"carol's client alongside her role change; carol's clients: {_clients_of(cast.hub, room, carol)}")
        return
    what = "dave's commit removing carol's client with her role change"
    with judging(KICK):
        effect = judge_not_applied(KICK, ref_follower, mark, _handshake_bytes(out.request), what,
                                   sentinel=_message_sentinel(cast, room, alice, carol.client, b"after the refusal"),
                                   epoch_before=epoch, sut_party=cast.hub, room=room)
        clients = _clients_of(cast.hub, room, carol)
        if clients != carol_before:
            fail(f"the hub refused {what} but carol's clients went from {carol_before} to {clients}",
                 requirement=KICK)
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    alone = dave_state.commit([_role_change(dave_state, carol.uri, MODERATOR)])
    recorder.note("dave commits the same role change alone")
    with setting_up("dave's role change alone"):
        control = _post_update(mimi_as, sut, room, alone.request, KICK)
    recorder.note(f"the hub answered {control.label}")
    if control.refused:
        not_applicable(f"the hub refused ({answer.label}) {what}, but it also refused ({control.label}) the role "
                       "change alone, which dave's role authorizes: the refusal cannot be laid on the Remove")
    observed(KICK, f"the hub refused ({answer.label}) {what} ({effect}; carol's clients stayed {carol_before}) and "
                   "accepted the role change alone")
