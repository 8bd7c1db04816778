"""The committer's GroupInfo, the SUT as hub (draft-ietf-mimi-room-policy-04 §7, draft-ietf-mimi-protocol-06 §5.3).

room-policy-04 §7 lists "GroupInfo storage (committers need to provide a valid GroupInfo to the Hub)"
(POLICY-OPS-COMMITTER-PROVIDES-GROUPINFO): the hub stores the committer's GroupInfo of the new epoch and serves it
to new clients (-06 §5.6). A GroupInfo that is not the new epoch's, or whose signature does not verify, is not a
valid one: the catalogue's test is that such a commit is refused.

A new client of a reference-follower participant, held by the suite, fetches the GroupInfo from the SUT (§5.6) and
sends (as the reference follower) an external commit whose GroupInfo is (1) the one it was served, of the epoch the
commit ends, or (2) the new epoch's with its signature damaged. Each must be refused; the refusals are judged only
when the same join with its own valid GroupInfo is then accepted, and the GroupInfo the hub serves after that must be
of the new epoch and verify (as must the one it serves before, after the SUT's own commit adding bob). A hub that
accepted a bad one passes only if the GroupInfo it serves next is still of the current epoch and verifies (it did
not take the bad one).
"""

from __future__ import annotations

import pytest

from conformance.harness.reference_names import current
from conformance.scenarios.test_external_commit import (
    BUILD_ERRORS,
    _accepted,
    _external_join,
    _group_info,
    _new_device,
    _post,
    _seen,
    _signature_verifies,
)
from conformance.verdicts import HarnessError, blocked, fail, observed
from reference_peer.wire.codec import DecodeError, EncodeError
from reference_peer.wire.mimi import Protocol, UpdateRequest, UpdateRoomResponse
from reference_peer.wire.mls import MLSMessage, WireFormat

MLS10 = {"protocol": Protocol.mls10}
FOLLOWER = current().follower
COMMITTER_GROUPINFO = "POLICY-OPS-COMMITTER-PROVIDES-GROUPINFO"
NEW_DEVICE_JOIN = "PROTO-GROUPINFO-NEW-DEVICE-JOIN"


def _with_group_info(request: bytes, replace) -> bytes:
    """The same UpdateRequest with its full GroupInfo replaced by ``replace(GroupInfo it carries)``."""
    update = UpdateRequest.decode(request, scope=MLS10)
    update.bundle.groupInfoOption.groupInfo = replace(update.bundle.groupInfoOption.groupInfo)
    return update.encode()


def _damaged(info):
    signature = bytearray(bytes(info.signature))
    signature[len(signature) // 2] ^= 0x01
    info.signature = bytes(signature)
    return info


def _bad_join(mimi_as, sut, room: str, device, label: str, corrupt, recorder):
    """The device's external commit with its GroupInfo replaced by ``corrupt(served, own)``; (answer, status, the epoch it starts)."""
    served, tree = _group_info(mimi_as, sut, room, device, COMMITTER_GROUPINFO)
    message = MLSMessage(version=1, wire_format=WireFormat.mls_group_info, group_info=served).encode()
    try:
        request = _with_group_info(device.join_external(message, tree.encode()), lambda own: corrupt(served, own))
    except BUILD_ERRORS as exc:
        raise HarnessError(f"the suite could not build the external commit with {label}: {exc}") from None
    reply = _post(mimi_as, sut, "update", room, request)
    try:
        answer = UpdateRoomResponse.decode(reply.body) if reply.status == 200 else None
    except (DecodeError, EncodeError):
        answer = None
    recorder.note(f"external commit of {device.uri} into epoch {served.group_context.epoch + 1} with {label}: "
                  f"{_seen(answer, reply.status)}")
    device.abandon()
    return answer, reply.status, served.group_context.epoch + 1


def _served_is_valid(mimi_as, sut, room: str, user, names, epoch: int) -> tuple[bool, str]:
    """Whether the GroupInfo the SUT now serves a new client is of ``epoch`` or later and verifies."""
    probe = _new_device(user, names)
    info, tree = _group_info(mimi_as, sut, room, probe, COMMITTER_GROUPINFO)
    served = info.group_context.epoch
    if served < epoch:
        return False, f"it serves the GroupInfo of epoch {served}, not of epoch {epoch} or later"
    if not _signature_verifies(probe.suite_id, info, tree):
        return False, f"the GroupInfo it serves for epoch {served} (signer leaf {info.signer}) does not verify"
    return True, f"it serves a GroupInfo of epoch {served} that verifies"


@pytest.mark.requirements(COMMITTER_GROUPINFO)
@pytest.mark.role("hub")
@pytest.mark.feature("multiDevice")
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_hub_refuses_a_commit_whose_groupinfo_is_not_valid_for_the_new_epoch(sut, sut_party, ref_follower, mimi_as,
                                                                             names, recorder):
    """An external commit whose GroupInfo is of the epoch the commit ends, or of the new epoch with a damaged
    signature, is refused; the same join with its own GroupInfo is accepted, and the GroupInfo the hub serves
    afterwards is of the new epoch and verifies.

    room-policy-04 §7: "committers need to provide a valid GroupInfo to the Hub"."""
    alice = sut_party.create_user("alice")
    room = sut_party.create_room(alice)
    bob = ref_follower.create_user("bob")
    sut_party.add_ok(room, alice, bob)
    ref_follower.wait_epoch(room, sut_party.room(room)["epoch"], what="bob's client to join the SUT's room")

    epoch = int(sut_party.room(room)["epoch"])
    valid, seen = _served_is_valid(mimi_as, sut, room, bob, names, epoch)
    if not valid:
        fail(f"after alice's commit adding bob (the room at epoch {epoch}), {seen}", requirement=COMMITTER_GROUPINFO)
    attempts = (
        ("the GroupInfo of the epoch the commit ends (the one the hub served)", lambda served, own: served),
        ("the new epoch's GroupInfo with its signature damaged", lambda served, own: _damaged(own)),
    )
    accepted_bad: list[str] = []
    refused: list[str] = []
    for label, corrupt in attempts:
        answer, status, epoch = _bad_join(mimi_as, sut, room, _new_device(bob, names), label, corrupt, recorder)
        if _accepted(answer):
            valid, seen = _served_is_valid(mimi_as, sut, room, bob, names, epoch)
            if not valid:
                fail(f"the SUT accepted an external commit into epoch {epoch} carrying {label}, and {seen}",
                     requirement=COMMITTER_GROUPINFO)
            accepted_bad.append(f"{label}: accepted, but {seen}")
        else:
            refused.append(f"{label}: {_seen(answer, status)}")

    device = _new_device(bob, names)
    answer, status, epoch = _external_join(mimi_as, sut, sut_party, room, device, partial=False, recorder=recorder,
                                           requirement=COMMITTER_GROUPINFO)
    if not _accepted(answer):
        blocked(NEW_DEVICE_JOIN, f"the SUT refused a participant's new client's external join with its own valid "
                f"GroupInfo too ({_seen(answer, status)}), so its answers to the joins with a bad GroupInfo "
                f"({'; '.join(refused + accepted_bad)}) show nothing about the GroupInfo")
    valid, seen = _served_is_valid(mimi_as, sut, room, bob, names, epoch)
    if not valid:
        fail(f"the SUT accepted an external commit into epoch {epoch} with a valid GroupInfo, and {seen}",
             requirement=COMMITTER_GROUPINFO)
    observed(COMMITTER_GROUPINFO, f"refused: {'; '.join(refused) or 'none'}; "
             f"{'; '.join(accepted_bad) + '; ' if accepted_bad else ''}the join with a valid GroupInfo was accepted "
             f"into epoch {epoch} and {seen}")
