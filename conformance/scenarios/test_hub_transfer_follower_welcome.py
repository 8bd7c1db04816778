"""Hub transfer, a provider first added to a room after the room moved (docs/extensions/hub-transfer.md §6.2,
§7 "Accepting /notify", §13).

The room is created on the reference hub (hub.ref.test, the room ID's authority) with no SUT user in it and
moved to the reference follower (follower.ref.test). Only then does the creator add Sam, a SUT user: the new
hub sequences the commit and sends the Welcome to the SUT, which holds no state of the room, from a provider
that is not the room ID's authority. §7: from the begin commit on the follower accepts /notify "from the
target named in the committed component" and "After the cut-over, it accepts /notify from B"; §6.2 puts off
a provider's first participant during the window because "the add can be retried after the cut-over", and
§13 "No server or client finds the hub from the authority once a mimi_hub component exists". So the SUT
answers the new hub's Welcome /notify 201 (whether Sam's client then joins is noted, not judged: a SUT may
hold a room for its user's consent). A SUT that refuses it (the -06 reading, hub = the ID's authority) can
never gain a participant in a moved room.

The second check is the same rule at the old hub: the SUT hosts the room (its ID's authority), moves it to the
reference hub, and its only user is then removed, so it holds the moved-away room and no client in it; the
new hub's Welcome for a SUT user added later is answered 201 (§8.1: the old hub "is now a follower").
"""

from __future__ import annotations

import pytest

from conformance.harness.polling import PollTimeout
from conformance.scenarios.hub_transfer_support import transfer_settings
from conformance.scenarios.test_hub_transfer_follower import ACCEPT_TARGET, ADMIN, NEW_HUB, OLD_HUB, _move
from conformance.verdicts import HarnessError, fail, observed


def _notifies(party, mark: int, sut_party, room: str):
    return [t for t in party.traffic(mark, endpoint="notify", direction="out", peer=sut_party.domain)
            if t.value == room]


@pytest.mark.requirements(ACCEPT_TARGET)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom")
def test_follower_accepts_the_new_hubs_welcome_for_a_moved_room(sut, sut_party, ref_hub, ref_follower, poll_until,
                                                                 recorder):
    """After the room moved from hub.ref.test (its ID's authority) to follower.ref.test, the creator adds
    Sam, a user of the SUT, which holds no state of the room: the SUT answers the new hub's Welcome /notify
    201."""
    transfer_settings(sut, "follower")
    creator = ref_hub.create_user("creator")
    room = ref_hub.create_room(creator)
    cutover = _move(ref_hub, ref_follower, room, creator, poll_until)
    # The new hub's proposal removing the old hub's external_senders entry is required in the next commit: the
    # creator's client must hold it before committing the add (a set-up wait, not judged).
    poll_until(lambda: (m := ref_hub.member_state(room, creator.client)).epoch > cutover or m.group.proposal_cache,
               what="the new hub's external_senders proposal at the creator's client")
    sam = sut_party.create_user("sam")
    mark = ref_follower.traffic_mark()
    ref_hub.add_ok(room, creator, sam)  # sequenced by the new hub, which sends the Welcome
    epoch = ref_hub.room(room)["epoch"]
    recorder.note(f"the creator added Sam at {NEW_HUB} after the cut-over (epoch {cutover}); the room is at {epoch}")
    try:  # the new hub retries a refused /notify: any 201 among its attempts is the SUT taking the Welcome
        poll_until(lambda: any(t.status == 201 for t in _notifies(ref_follower, mark, sut_party, room)),
                   what=f"the SUT to answer the new hub's Welcome /notify 201 (room at epoch {epoch})")
    except PollTimeout:
        answers = [t.status for t in _notifies(ref_follower, mark, sut_party, room)]
        fail(f"the room's new hub {NEW_HUB} (not the room ID's authority {OLD_HUB}) sent the SUT the Welcome for "
             f"Sam, a SUT user it added after the cut-over, and the SUT never answered it 201 (its answers: "
             f"{answers or 'none yet'})", requirement=ACCEPT_TARGET)
    answers = [t.status for t in _notifies(ref_follower, mark, sut_party, room)]
    try:  # evidence only: a SUT may hold the room for its user's consent (a consent-quarantine extension)
        poll_until(lambda: (info := sut_party.room(room)) is not None and info["epoch"] >= epoch, timeout=10,
                   what="Sam's client at the SUT to join the moved room")
        joined = f"Sam's client joined at epoch {epoch}"
    except PollTimeout:
        joined = "Sam's client had not joined within 10 s (not judged)"
    observed(ACCEPT_TARGET, f"the Welcome /notify from the moved room's new hub {NEW_HUB} answered {answers}; {joined}")


@pytest.mark.requirements(ACCEPT_TARGET)
@pytest.mark.role("hub")
@pytest.mark.feature("hubTransfer")
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "startHubTransfer")
def test_old_hub_accepts_the_new_hubs_welcome_after_its_clients_left(sut, sut_party, ref_hub, ref_follower,
                                                                    poll_until, recorder):
    """The SUT hosts a room (its ID's authority) with Bob, a reference-follower admin, and moves it to the
    reference hub; Bob then removes Alice, the SUT's only user in it, so the SUT holds the moved-away room and
    no client in it. When Bob adds Carol, a SUT user, the new hub sends the SUT the Welcome: the SUT, "now a
    follower" (§8.1), accepts /notify from the new hub (§7 "After the cut-over, it accepts /notify from B") and
    answers it 201."""
    transfer_settings(sut, "old-hub")
    alice = sut_party.create_user("alice")
    room = sut_party.create_room(alice)
    bob = ref_follower.create_user("bob")
    sut_party.add_ok(room, alice, bob, role=ADMIN)
    ref_follower.wait_epoch(room, sut_party.room(room)["epoch"], what="bob's client to join the SUT's room")
    started = sut_party.start_hub_transfer(room, alice, OLD_HUB)
    if started.get("outcome") != "started":  # judged by test_hub_transfer_request.py; a precondition here
        raise HarnessError(f"the transfer of {room} to {OLD_HUB} did not start: {started}")
    try:
        poll_until(lambda: (ref_hub.hub_transfer_state()["incoming"].get(room) or {}).get("state") == "handed-over",
                   timeout=30, what=f"{OLD_HUB} to take the room over (the SUT's handoff)")
        poll_until(lambda: (info := ref_follower.room(room)) is not None and info["hubDomain"] == OLD_HUB,
                   what="the reference follower to process the cut-over commit")
        cutover = ref_follower.room(room)["epoch"]
        poll_until(lambda: (m := ref_follower.member_state(room, bob.client)).epoch > cutover or m.group.proposal_cache,
                   what="the new hub's external_senders proposal at bob's client")
    except PollTimeout as exc:  # the transfer itself is judged by the other checks
        raise HarnessError(f"the transfer did not complete, so the check cannot proceed: {exc}") from None
    before_removal = ref_hub.traffic_mark()
    removed = ref_follower.remove(room, bob, alice)
    if removed.get("outcome") != "accepted":
        raise HarnessError(f"bob could not remove alice at the new hub {OLD_HUB}: {removed}")
    poll_until(lambda: any(t.status == 201 for t in _notifies(ref_hub, before_removal, sut_party, room)),
               what="the new hub's /notify of alice's removal answered 201 by the SUT")
    recorder.note(f"after the cut-over (epoch {cutover}) bob removed alice, the SUT's only user in the room")
    carol = sut_party.create_user("carol")
    mark = ref_hub.traffic_mark()
    ref_follower.add_ok(room, bob, carol)  # sequenced by the new hub, which sends the SUT the Welcome
    try:
        poll_until(lambda: any(t.status == 201 for t in _notifies(ref_hub, mark, sut_party, room)),
                   what="the new hub's Welcome /notify answered 201 by the SUT")
    except PollTimeout:
        answers = [t.status for t in _notifies(ref_hub, mark, sut_party, room)]
        fail(f"the SUT moved the room to {OLD_HUB} and has no client left in it; the new hub's /notify with the "
             f"Welcome for Carol, a SUT user added after the cut-over, was answered {answers or 'never (none sent)'},"
             " never 201", requirement=ACCEPT_TARGET)
    answers = [t.status for t in _notifies(ref_hub, mark, sut_party, room)]
    observed(ACCEPT_TARGET, f"the new hub {OLD_HUB}'s Welcome /notify to the old hub, which has no client left in "
             f"the room, answered {answers}")
