"""Hub transfer with the SUT as target: after the transfer is discarded (docs/extensions/hub-transfer.md §11).

§11: "A target that receives a valid abort, or that has observed no cut-over commit by not_after, MUST discard
the transfer" (EXT-HUBXFER-TARGET-EXPIRES). Until then the target keeps the room's public state and delivers
nothing (§6.2); once the transfer is discarded the SUT is no longer the room's target, so the room's /notify
reaches it as any provider's does: a Welcome for a user of the SUT the hub adds is delivered.
"""

from __future__ import annotations

import secrets

import pytest

from conformance.harness.polling import PollTimeout
from conformance.scenarios.test_hub_transfer_new_hub import world_factory  # noqa: F401 - the fixture
from conformance.verdicts import HarnessError, expect, fail
from reference_peer.wire.hub_transfer import HubTransferCode

TARGET_EXPIRES = "EXT-HUBXFER-TARGET-EXPIRES"


@pytest.mark.usefixtures("sut")
@pytest.mark.role("hub")
@pytest.mark.feature("hubTransfer")
@pytest.mark.requirements(TARGET_EXPIRES)
@pytest.mark.operations("createUser", "getRoom")
def test_target_takes_the_room_like_any_provider_after_an_abort(world_factory, sut_party, poll_until,  # noqa: F811
                                                                 recorder):
    """The SUT accepts a prepare for a room of the reference hub in which it has no user, and the hub aborts the
    transfer (a valid abort). The hub then adds a user of the SUT to the room: the SUT, which discarded the
    transfer, takes the Welcome's /notify as any provider and its user's client joins the room."""
    w = world_factory()
    admin = w.ref_hub.member_state(w.room, w.admin.client)
    transfer_id = secrets.token_bytes(16)
    answer = w.hub_transfer(w.prepare(w.request(admin), transfer_id), requirement=TARGET_EXPIRES)
    if answer.code != HubTransferCode.accepted:
        raise HarnessError(f"the SUT did not accept a valid prepare: {answer.code.name}")
    answer = w.hub_transfer(w.abort(transfer_id), requirement=TARGET_EXPIRES)
    recorder.note(f"abort from the hub: {answer.code.name}")
    sam = sut_party.create_user("sam")
    w.ref_hub.add_ok(w.room, w.admin, sam)
    epoch = w.ref_hub.room(w.room)["epoch"]
    recorder.note(f"the hub added {sam.uri} after the abort; the room is at epoch {epoch}")
    try:
        info = poll_until(lambda: (got := sut_party.room(w.room)) is not None and got["epoch"] >= epoch and got,
                          timeout=20, what=f"{sam.uri}'s client to join the room at epoch {epoch}")
    except PollTimeout:
        fail(f"after the hub aborted the transfer to the SUT, it added the SUT's user {sam.uri}, but the SUT's client "
             f"never joined the room (epoch {epoch}): the SUT still acts as the discarded transfer's target, which "
             "delivers nothing", requirement=TARGET_EXPIRES)
    expect(TARGET_EXPIRES, info["epoch"] >= epoch, f"the SUT's view of the room is at epoch {info['epoch']}",
           evidence=f"after the abort the hub's Welcome for {sam.uri} was delivered: the SUT's client is in the room "
                    f"at epoch {info['epoch']}")
