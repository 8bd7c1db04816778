"""External commits with a PartialGroupInfo, the SUT as hub (draft-ietf-mimi-protocol-06 §5.3, §5.6).

-06 §5.3 lets a commit's UpdateRequest carry its GroupInfo whole or partial: "partial means that a
PartialGroupInfo struct will be shared and that the Distribution Service is expected to reconstruct the
GroupInfo as described in [I-D.mahy-mls-ratchet-tree-options]" (PROTO-UPDATE-PARTIAL-GROUPINFO).

A new client of a reference-follower participant, held by the suite, fetches the GroupInfo from the SUT
(§5.6) and sends (as the reference follower) an external commit whose groupInfoOption is a PartialGroupInfo
(no ratchet tree; the GroupInfo extensions and the joiner's signature). Judged by effect: the hub accepts
the join, lists the new client, and the GroupInfo it serves afterwards verifies and lets another new client
join. The suite builds the PartialGroupInfo from the full GroupInfo its client signed, so the two carry the
same signature over the same content.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from conformance.harness.reference_names import current
from conformance.verdicts import HarnessError, blocked, fail, observed
from reference_peer.mls import MLSError, cipher_suite
from reference_peer.mls.crypto import vl
from reference_peer.mls.tree import RatchetTree
from reference_peer.room.follower import SimulatedClient
from reference_peer.room.hub import open_group_info_response
from reference_peer.wire.codec import DecodeError, EncodeError
from reference_peer.wire.identity import MimiUri
from reference_peer.wire.mimi import (
    GroupInfoCode,
    GroupInfoOption,
    GroupInfoRepresentation,
    GroupInfoResponse,
    Protocol,
    UpdateRequest,
    UpdateResponseCode,
    UpdateRoomResponse,
)
from reference_peer.wire.mls import MLSMessage, WireFormat
from reference_peer.wire.ratchet_tree_options import PartialGroupInfo, RatchetTreePresence

MLS10 = {"protocol": Protocol.mls10}
FOLLOWER = current().follower  # follower-k.ref.test on worker k: the plugin fixes it before import
ATTEMPTS = 3  # a commit of the SUT's own clients may move the epoch between groupInfo and /update

PARTIAL_GROUPINFO = "PROTO-UPDATE-PARTIAL-GROUPINFO"
NEW_DEVICE_JOIN = "PROTO-GROUPINFO-NEW-DEVICE-JOIN"
BUILD_ERRORS = (MLSError, ValueError, DecodeError, EncodeError)


def _post(mimi_as, sut, endpoint: str, room: str, body: bytes):
    session = mimi_as(FOLLOWER)
    authority = urlsplit(sut.base_urls[sut.primary_domain]).netloc
    return session.run(session.client.call(authority, endpoint, room, body))


def _group_info(mimi_as, sut, room: str, device: SimulatedClient, requirement: str):
    """(GroupInfo, ratchet tree) the SUT gives the new device (-06 §5.6); a refusal blocks on NEW_DEVICE_JOIN,
    an unusable answer is a miss of ``requirement``."""
    suite = cipher_suite(device.suite_id)
    hpke_priv, hpke_pub = suite.generate_hpke_key_pair()
    reply = _post(mimi_as, sut, "groupInfo", room, device.group_info_request(hpke_pub).encode())
    try:
        answer = GroupInfoResponse.decode(reply.body) if reply.status == 200 else None
    except (DecodeError, EncodeError):
        answer = None
    if answer is None or answer.status != GroupInfoCode.success:
        status = answer.status.name if answer is not None else f"HTTP {reply.status}"
        blocked(NEW_DEVICE_JOIN, f"the SUT did not give a participant's new client the GroupInfo ({status}), so no "
                "external commit could be sent")
    try:
        tbe = open_group_info_response(answer, hpke_priv)
        tree = RatchetTree.from_wire(suite, tbe.ratchetTreeOption.ratchet_tree)
    except BUILD_ERRORS as exc:
        fail(f"the SUT's GroupInfoResponse is unusable for an external join: {exc}", requirement=requirement)
    return tbe.groupInfo, tree


def _signature_verifies(suite_id: int, info, tree: RatchetTree) -> bool:
    """Whether the GroupInfo's signature verifies under the key of the leaf it names as signer (RFC 9420 §12.4.3)."""
    signer = tree.leaf(info.signer)
    tbs = info.encode()[: -len(vl(bytes(info.signature)))]
    return signer is not None and cipher_suite(suite_id).verify_with_label(
        signer.signature_key, "GroupInfoTBS", tbs, bytes(info.signature))


def _as_partial(request: bytes) -> bytes:
    """The same UpdateRequest with its full GroupInfo replaced by the PartialGroupInfo of ratchet-tree-options §4
    (no ratchet tree in the GroupInfo; its extensions and the committer's signature)."""
    update = UpdateRequest.decode(request, scope=MLS10)
    info = update.bundle.groupInfoOption.groupInfo
    update.bundle.groupInfoOption = GroupInfoOption(
        representation=GroupInfoRepresentation.partial,
        partialGroupInfo=PartialGroupInfo(ratchet_tree_presence=RatchetTreePresence.no_ratchet_tree,
                                          group_info_extensions=list(info.extensions),
                                          signature=bytes(info.signature)),
    )
    return update.encode()


def _epoch_moved(sut_party, room: str, epoch: int) -> bool:
    """Whether the room left ``epoch`` (a commit of the SUT's own clients came first): a refusal is then the
    epoch's, however the SUT encodes wrongEpoch."""
    try:
        return int(sut_party.room(room)["epoch"]) != epoch
    except (TypeError, KeyError, ValueError):
        return False


def _external_join(mimi_as, sut, sut_party, room: str, device: SimulatedClient, *, partial: bool, recorder,
                   requirement: str):
    """Fetch the GroupInfo and send the device's external commit (its GroupInfo partial or full); retried when the
    epoch moved in between. Returns (answer or None, HTTP status, epoch the commit starts)."""
    label = "external commit with a PartialGroupInfo" if partial else "external commit with a full GroupInfo"
    for _ in range(ATTEMPTS):
        info, tree = _group_info(mimi_as, sut, room, device, requirement)
        message = MLSMessage(version=1, wire_format=WireFormat.mls_group_info, group_info=info).encode()
        try:
            request = device.join_external(message, tree.encode())
            if partial:
                request = _as_partial(request)
        except BUILD_ERRORS as exc:
            raise HarnessError(f"the suite could not build the {label} from the SUT's GroupInfo: {exc}") from None
        reply = _post(mimi_as, sut, "update", room, request)
        try:
            answer = UpdateRoomResponse.decode(reply.body) if reply.status == 200 else None
        except (DecodeError, EncodeError):
            answer = None
        new_epoch = info.group_context.epoch + 1
        recorder.note(f"{label} of {device.uri} into epoch {new_epoch}: HTTP {reply.status} "
                      f"{answer.responseCode.name + ' ' + repr(answer.errorDescription) if answer else ''}")
        if _accepted(answer):
            return answer, reply.status, new_epoch
        device.abandon()
        stale = answer is not None and answer.responseCode == UpdateResponseCode.wrongEpoch
        if not stale and not _epoch_moved(sut_party, room, new_epoch - 1):
            return answer, reply.status, new_epoch
    return answer, reply.status, new_epoch


def _seen(answer, status: int) -> str:
    return f"{answer.responseCode.name} {answer.errorDescription!r}" if answer is not None else f"HTTP {status}"


def _new_device(user, names) -> SimulatedClient:
    """A new client of a reference-follower user, held by the suite (two-segment client URI, basic credential)."""
    return SimulatedClient(FOLLOWER, MimiUri.parse(user.uri).name, names("device"))


def _accepted(answer) -> bool:
    return answer is not None and answer.responseCode == UpdateResponseCode.success


@pytest.mark.requirements(PARTIAL_GROUPINFO)
@pytest.mark.role("hub")
@pytest.mark.feature("multiDevice")
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_external_commit_with_a_partial_groupinfo_joins(sut, sut_party, ref_follower, mimi_as, names, recorder):
    """A participant's new client joins by external commit whose groupInfoOption is a PartialGroupInfo: the
    hub accepts it and lists the client, and the GroupInfo it serves afterwards (rebuilt from the partial one,
    or from any later commit) verifies and lets another new client join.

    -06 §5.3: "partial means that a PartialGroupInfo struct will be shared and that the Distribution Service is
    expected to reconstruct the GroupInfo as described in [I-D.mahy-mls-ratchet-tree-options]." A refused
    partial join is judged only when the same join with the full GroupInfo is then accepted."""
    alice = sut_party.create_user("alice")
    room = sut_party.create_room(alice)
    bob = ref_follower.create_user("bob")
    sut_party.add_ok(room, alice, bob)
    ref_follower.wait_epoch(room, sut_party.room(room)["epoch"], what="bob's client to join the SUT's room")

    device = _new_device(bob, names)
    answer, status, epoch = _external_join(mimi_as, sut, sut_party, room, device, partial=True,
                                           recorder=recorder, requirement=PARTIAL_GROUPINFO)
    if not _accepted(answer):
        refused = _seen(answer, status)
        full, full_status, _ = _external_join(mimi_as, sut, sut_party, room, _new_device(bob, names), partial=False,
                                              recorder=recorder, requirement=PARTIAL_GROUPINFO)
        if not _accepted(full):
            blocked(NEW_DEVICE_JOIN, f"the SUT refused a participant's new client's external join with a full "
                    f"GroupInfo too ({_seen(full, full_status)}), so its refusal of the one with a PartialGroupInfo "
                    f"({refused}) shows nothing about the PartialGroupInfo")
        fail(f"the SUT refused the external commit of bob's new device carrying a PartialGroupInfo ({refused}) but "
             "accepted the same join with the full GroupInfo: it did not reconstruct the GroupInfo from the "
             "PartialGroupInfo", requirement=PARTIAL_GROUPINFO)

    entry = sut_party.participants(room).get(bob.uri)
    if entry is None or device.uri not in entry["clients"]:
        fail(f"the SUT answered success to the external commit with a PartialGroupInfo, but bob's entry does not "
             f"list the new client {device.uri}: {entry}", requirement=PARTIAL_GROUPINFO)

    second = _new_device(bob, names)
    info, tree = _group_info(mimi_as, sut, room, second, PARTIAL_GROUPINFO)
    served = info.group_context.epoch
    if served < epoch:
        fail(f"after accepting the external commit into epoch {epoch}, the SUT serves the GroupInfo of epoch "
             f"{served}", requirement=PARTIAL_GROUPINFO)
    if not _signature_verifies(second.suite_id, info, tree):
        fail(f"the GroupInfo the SUT serves for epoch {served} (after the external commit with a PartialGroupInfo "
             f"into epoch {epoch}) names leaf {info.signer} as signer, and its signature does not verify under "
             "that leaf's key", requirement=PARTIAL_GROUPINFO)
    again, again_status, again_epoch = _external_join(mimi_as, sut, sut_party, room, second, partial=False,
                                                      recorder=recorder, requirement=PARTIAL_GROUPINFO)
    if not _accepted(again):
        fail(f"after the external commit with a PartialGroupInfo, the SUT refused another new client's external "
             f"join ({_seen(again, again_status)})", requirement=PARTIAL_GROUPINFO)
    observed(PARTIAL_GROUPINFO, f"the external commit with a PartialGroupInfo was accepted into epoch {epoch} and "
             f"{device.uri} listed; the GroupInfo served for epoch {served} verifies (signer leaf {info.signer}) and "
             f"another new client joined from it into epoch {again_epoch}")
