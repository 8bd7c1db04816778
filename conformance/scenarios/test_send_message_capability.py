"""Room policy: canSendMessage decides who may send application messages (draft-ietf-mimi-room-policy-04 §8.3).

The SUT is the hub, hosting a room with an explicit policy (a SUT that cannot host it makes the check
NOT_APPLICABLE); the suite's reference follower's clients submit the messages. A refusal is read the way
AMB-FAILURE-CODE-STATUS accepts (any non-success answer) and judged by its effect: nothing fanned out.
"""

from __future__ import annotations

import pytest

from conformance.scenarios.roles import as_hub
from conformance.scenarios.test_removal import _message_sentinel, _synced_state
from conformance.scenarios.test_room_policy_matrix import ADMIN, MEMBER, _add, _policy_room, _roles, _roles_at_hub
from conformance.verdicts import fail, not_applicable, observed

SEND_MESSAGE = "POLICY-CAP-SEND-MESSAGE"

LISTENER = 4


@pytest.mark.requirements(SEND_MESSAGE)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage",
                        "listReceivedMessages")
def test_only_a_role_with_can_send_message_may_send(cast, ref_follower, poll_until, recorder):
    """room-policy-04 §8.3: "canSendMessage - the holder can send instant messages to the room. [...] The Hub can
    enforce whether a member can send a message." Bob, a member whose role holds canSendMessage, sends a message:
    accepted. Carol, whose role (listener) holds canReceiveMessage but not canSendMessage, sends one: refused (any
    refusal) and not fanned out (bob's client, which receives a later message of the room, never gets it)."""
    roles = _roles() + [{"index": LISTENER, "name": "listener", "capabilities": ["canReceiveMessage", "canRemoveSelf"]}]
    roles[ADMIN]["authorizedRoleChanges"][0]["to"].append(LISTENER)  # alice adds carol as listener
    room, alice = _policy_room(cast, {"roles": roles})
    bob = ref_follower.create_user("bob")
    carol = ref_follower.create_user("carol")
    _add(cast, room, alice, bob)
    _add(cast, room, alice, carol, role=LISTENER)
    listed = _roles_at_hub(cast, room)
    if listed.get(bob.uri) != MEMBER or listed.get(carol.uri) != LISTENER:
        not_applicable(f"set-up failed: bob is not a member or carol not a listener at the SUT: {listed}")
    for user in (bob, carol):
        _synced_state(ref_follower, cast.hub, room, user.client, poll_until)
    text = f"from bob, who holds canSendMessage {room}".encode()
    result = ref_follower.send(room, bob.client, text)
    recorder.note(f"bob's (member, canSendMessage) message: {result.get('outcome')}")
    if result.get("outcome") != "accepted":
        fail(f"the hub refused ({result.get('outcome')}: {result.get('hubResponse')}) a message from bob, whose role "
             "holds canSendMessage", requirement=SEND_MESSAGE)
    silenced = f"from carol, who lacks canSendMessage {room}".encode()
    result = ref_follower.send(room, carol.client, silenced)
    outcome = result.get("outcome")
    recorder.note(f"carol's (listener, no canSendMessage) message: {outcome}")
    if outcome == "accepted":
        fail("the hub accepted a message from carol, whose role lacks canSendMessage", requirement=SEND_MESSAGE)
    _message_sentinel(cast, room, alice, bob.client, b"after carol's message")()
    if silenced in ref_follower.received(bob.client, room):
        fail("the hub refused carol's message (her role lacks canSendMessage) but fanned it out: bob's client "
             "received it", requirement=SEND_MESSAGE)
    observed(SEND_MESSAGE, f"the hub accepted bob's message (canSendMessage) and refused carol's ({outcome}; her "
                           "role lacks canSendMessage), which no member received")
