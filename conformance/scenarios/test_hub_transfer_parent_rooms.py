"""Hub transfer, the SUT as old hub: parent-dependent rooms and their parents do not move
(docs/extensions/hub-transfer.md §5.1, EXT-HUBXFER-PARENT-DEPENDENT; room-policy-04 §5 keeps a
parent-dependent room on its parent's hub; project extension, scored only in the hub-transfer profiles).

On the SUT: a parent room created by a SUT admin, with a reference-follower admin (dave, holding
canTransferHub) and a member; and a parent-dependent room of it (createRoom with
``base.parentDependent`` and ``base.parentRoom``) with the same participants. For each room a valid
request signed by dave's client is sent as follower.ref.test (the SUT's HubTransferResponse is judged),
and the SUT admin asks the SUT to move it (startHubTransfer). Neither may start: notAllowed over MIMI,
no prepare at the target (the reference hub), no proposal fanned out to the reference follower. A SUT
whose control API refuses to create the parent-dependent room makes the check NOT_APPLICABLE.
"""

from __future__ import annotations

import pytest

from conformance.harness.control import ControlProblem
from conformance.harness.reference_names import current
from conformance.scenarios.hub_transfer_support import transfer_settings
from conformance.scenarios.notify_bodies import ambiguous_if_read_otherwise
from conformance.scenarios.test_hub_transfer_request import (
    _no_transfer_traffic,
    _post_request,
    _room,
    _sentinel,
    _signed_request,
    _synced,
)
from conformance.verdicts import fail, not_applicable, observed
from reference_peer.wire.hub_transfer import HubTransferCode

# This worker's reference domains (hub-k.ref.test on worker k): the plugin fixes them before import.
HUB_DOMAIN, FOLLOWER_DOMAIN = current()
ADMIN = 3
OLD_HUB = "old-hub"

PARENT_DEPENDENT = "EXT-HUBXFER-PARENT-DEPENDENT"


def create_dependent_room(sut_party, ref_follower, parent: str, admin, users: dict, *, admins=("dave",)) -> str:
    """A parent-dependent room of ``parent`` on the SUT, created by ``admin``, with ``users`` (admins as
    admins); NOT_APPLICABLE when the SUT's control API does not create such rooms."""
    policy = {"base": {"parentDependent": True, "parentRoom": parent}}
    try:
        room = sut_party.create_room(admin, policy=policy)
    except ControlProblem as exc:
        if exc.status in (422, 501):
            not_applicable(f"the SUT's control API does not create a parent-dependent room ({policy}): {exc}")
        raise
    for name, user in users.items():
        if name in admins:
            sut_party.add_ok(room, admin, user, role=ADMIN)
        else:
            sut_party.add_ok(room, admin, user)
    ref_follower.wait_epoch(room, sut_party.room(room)["epoch"], what="the reference follower's clients to join "
                            "the parent-dependent room")
    return room


@pytest.mark.feature("hubTransfer")
@pytest.mark.role("hub")
@pytest.mark.requirements(PARENT_DEPENDENT)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "startHubTransfer", "sendMessage")
def test_parent_and_dependent_rooms_are_not_transferred(
        sut, sut_party, ref_follower, ref_hub, mimi_as, poll_until, recorder):
    """A transfer request for a parent-dependent room, and one for its parent, are refused with notAllowed
    (a follower admin's signed request over MIMI and the SUT admin's startHubTransfer alike); the target
    gets no prepare and the followers no proposal."""
    transfer_settings(sut, OLD_HUB)
    parent, admin, users = _room(sut_party, ref_follower, admins=("dave",), members=("witness",))
    child = create_dependent_room(sut_party, ref_follower, parent, admin, users)
    recorder.note(f"parent room {parent}, parent-dependent room {child}")
    hub_mark, follower_mark = ref_hub.traffic_mark(), ref_follower.traffic_mark()
    for label, room in (("parent-dependent room", child), ("parent room (it has a dependent room)", parent)):
        dave = _synced(ref_follower, sut_party, room, users["dave"].client, poll_until)
        answer = _post_request(mimi_as, sut, room, _signed_request(dave, room, HUB_DOMAIN), as_domain=FOLLOWER_DOMAIN,
                               requirement=PARENT_DEPENDENT)
        recorder.note(f"follower admin's request to move the {label}: {answer.code.name}")
        if answer.code != HubTransferCode.notAllowed:
            fail(f"a valid transfer request (initiator holds canTransferHub) for the {label} was answered "
                 f"{answer.code.name}, not notAllowed", requirement=PARENT_DEPENDENT)
        started = sut_party.start_hub_transfer(room, admin, HUB_DOMAIN)
        recorder.note(f"SUT admin's startHubTransfer of the {label}: {started}")
        if started.get("outcome") == "started":
            fail(f"the SUT started a transfer of the {label}: {started}", requirement=PARENT_DEPENDENT)
        if started.get("code") not in (None, HubTransferCode.notAllowed.name):
            fail(f"the SUT refused to move the {label} with {started.get('code')}, not notAllowed: {started}",
                 requirement=PARENT_DEPENDENT)
    for room in (child, parent):
        _sentinel(sut_party, ref_follower, room, admin, users["witness"], poll_until)
        _no_transfer_traffic(ref_hub, ref_follower, sut, room, hub_mark, follower_mark, PARENT_DEPENDENT,
                             f"transfer requests for {'the parent-dependent room' if room == child else 'its parent'} "
                             "were refused")
    observed(PARENT_DEPENDENT, "the parent-dependent room and its parent: both requests (MIMI and control) refused "
             "notAllowed, no prepare at the target, no proposal at the follower")
    ambiguous_if_read_otherwise(PARENT_DEPENDENT, "whether the SUT fanned out proposals after the refusals")
