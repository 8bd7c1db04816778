"""Hub transfer with the SUT as old hub: its own clients after the cut-over (docs/extensions/hub-transfer.md
§7, §8.1).

Once the old hub has accepted the cut-over commit it no longer hosts the room: "A `/keyMaterial` for one of
A's own users comes from B as hub and is answered normally: A is now a follower" (§8.1). Its own clients'
room requests then follow §7's rule for followers (EXT-HUBXFER-FOLLOWER-RETARGET: "After processing the
cut-over commit, a follower MUST send all of the room's requests to the new hub").
"""

from __future__ import annotations

import pytest

from conformance.harness.polling import PollTimeout
from conformance.harness.reference_names import current
from conformance.scenarios.hub_transfer_support import transfer_settings
from conformance.verdicts import HarnessError, expect, fail

HUB, FOLLOWER = current()  # HUB, the suite's reference hub, is the transfer's target
ADMIN = 3  # the default policy's admin role: holds canTransferHub
RETARGET = "EXT-HUBXFER-FOLLOWER-RETARGET"


@pytest.mark.requirements(RETARGET)
@pytest.mark.role("hub")
@pytest.mark.feature("hubTransfer")
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "startHubTransfer", "sendMessage")
def test_old_hub_sends_its_own_clients_messages_to_the_new_hub(sut, sut_party, ref_hub, ref_follower, poll_until,
                                                               recorder):
    """The SUT hosts a room with a member on the reference follower and moves it to the reference hub. Once
    the reference hub has taken the room over (the SUT's handoff follows its acceptance of the cut-over commit)
    and the reference follower has processed the cut-over commit, a message its own client Alice sends
    reaches Bob through the new hub: the new hub receives the SUT's submitMessage for the room. §8.1: the old
    hub "never answers success or accepted for the room again" and "is now a follower"; §7: "a follower MUST
    send all of the room's requests to the new hub"."""
    transfer_settings(sut, "old-hub")
    alice = sut_party.create_user("alice")
    room = sut_party.create_room(alice)
    bob = ref_follower.create_user("bob")
    sut_party.add_ok(room, alice, bob)
    ref_follower.wait_epoch(room, sut_party.room(room)["epoch"], what="bob's client to join the SUT's room")
    started = sut_party.start_hub_transfer(room, alice, HUB)
    if started.get("outcome") != "started":  # judged by test_hub_transfer_request.py; a precondition here
        raise HarnessError(f"the transfer of {room} to {HUB} did not start: {started}")
    try:  # the handoff follows the SUT's acceptance of the cut-over commit (the SUT's getRoom is not asked)
        poll_until(lambda: (ref_hub.hub_transfer_state()["incoming"].get(room) or {}).get("state") == "handed-over",
                   timeout=30, what=f"{HUB} to take the room over (the SUT's handoff)")
        poll_until(lambda: (info := ref_follower.room(room)) is not None and info["hubDomain"] == HUB,
                   what="the reference follower to process the cut-over commit")
    except PollTimeout as exc:  # the transfer itself is judged by the other checks
        raise HarnessError(f"the transfer did not complete, so the check cannot proceed: {exc}") from None
    mark = ref_hub.traffic_mark()
    text = b"from the old hub's own client " + room.encode()
    sent = sut_party.send(room, alice.client, text)
    recorder.note(f"Alice sends after the cut-over: {sent}")
    try:
        poll_until(lambda: text in ref_follower.received(bob.client, room), what="Alice's message at Bob")
    except PollTimeout:
        fail(f"a message the SUT's own client sent after the SUT accepted the cut-over commit never reached Bob "
             f"(sendMessage answered {sent})", requirement=RETARGET)
    to_new = [t for t in ref_hub.traffic(mark, direction="in", peer=sut_party.domain)
              if t.endpoint == "submitMessage" and t.value == room]
    expect(RETARGET, bool(to_new),
           f"Bob got Alice's message but the new hub {HUB} received no submitMessage for the room from the SUT: "
           "the SUT still sequenced its own client's message for a room it moved away",
           evidence=f"submitMessage to {HUB} answered {[t.status for t in to_new]}, the message delivered to Bob")
