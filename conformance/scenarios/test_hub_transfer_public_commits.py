"""Hub transfer, the SUT as hub: which commits may carry a mimi_hub update (docs/extensions/hub-transfer.md
section 4.2, item 5; project extension, scored only in the hub-transfer profiles).

"The hub MUST refuse a commit that covers a mimi_hub update unless the commit is a PublicMessage and not an
external commit" (EXT-HUBXFER-PUBLIC-COMMITS). draft-ietf-mls-extensions-09 section 4.7 lets an external
commit carry AppDataUpdate proposals by value unless the component's rules forbid it; mimi_hub's rules do.
A PrivateMessage commit is refused by -06's own framing rule (PROTO-UPDATE-HANDSHAKE-FRAMING) and the suite
builds no SemiPrivateMessage, so the external commit is the half judged here.

A new client of a reference-follower participant asks the SUT for the GroupInfo and sends it (as
follower.ref.test) an external commit that also carries a mimi_hub AppDataUpdate by value; then the same
join without that update. Every judgment is on MIMI bytes: the SUT's /update answers and what it fanned out
to the reference follower (its traffic log, and the hub component its client holds afterwards).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import pytest

from conformance.harness.polling import PollTimeout
from conformance.harness.reference_names import current
from conformance.scenarios.hub_transfer_support import transfer_settings
from conformance.scenarios.notify_bodies import ambiguous_if_read_otherwise, read_fanouts
from conformance.verdicts import HarnessError, blocked, fail, observed
from reference_peer.mls import MLSError, app_data_update_proposal, cipher_suite
from reference_peer.mls.tree import RatchetTree
from reference_peer.room.follower import SimulatedClient
from reference_peer.room.hub import open_group_info_response
from reference_peer.room.transfer import provider_uri
from reference_peer.wire.codec import DecodeError, EncodeError
from reference_peer.wire.hub_transfer import MIMI_HUB_COMPONENT_ID, HubData, HubState, read_hub_data
from reference_peer.wire.identity import IdentifierUri, MimiUri
from reference_peer.wire.mimi import (
    GroupInfoCode,
    GroupInfoResponse,
    Protocol,
    UpdateRequest,
    UpdateResponseCode,
    UpdateRoomResponse,
)
from reference_peer.wire.mls import MLSMessage, WireFormat

MLS10 = {"protocol": Protocol.mls10}
FOLLOWER = current().follower  # follower-k.ref.test on worker k: the plugin fixes it before import
FEATURE = "hubTransfer"
OLD_HUB = "old-hub"
ATTEMPTS = 3  # a commit of the SUT's own clients may move the epoch between groupInfo and /update

PUBLIC_COMMITS = "EXT-HUBXFER-PUBLIC-COMMITS"
NEW_DEVICE_JOIN = "PROTO-GROUPINFO-NEW-DEVICE-JOIN"
FANOUT = "PROTO-FANOUT-TO-ACTIVE-PROVIDERS"


def _authority(sut) -> str:
    return urlsplit(sut.base_urls[sut.primary_domain]).netloc


def _post(mimi_as, sut, endpoint: str, room: str, body: bytes):
    session = mimi_as(FOLLOWER)
    return session.run(session.client.call(_authority(sut), endpoint, room, body))


def _group_info(mimi_as, sut, room: str, device: SimulatedClient) -> tuple[bytes, bytes, int]:
    """(GroupInfo MLSMessage, ratchet tree, epoch) the SUT gives the new device (section 5.6 of -06)."""
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
        tree = RatchetTree.from_wire(suite, tbe.ratchetTreeOption.ratchet_tree).encode()
    except (MLSError, ValueError, DecodeError, EncodeError) as exc:
        blocked(NEW_DEVICE_JOIN, f"the SUT's GroupInfoResponse is unusable for an external join: {exc}")
    info = MLSMessage(version=1, wire_format=WireFormat.mls_group_info, group_info=tbe.groupInfo).encode()
    return info, tree, tbe.groupInfo.group_context.epoch


def _external_join(mimi_as, sut, room: str, device: SimulatedClient, proposals: list, recorder, label: str):
    """Fetch the GroupInfo, send the device's external commit (with ``proposals`` by value); retried when the
    epoch moved in between. Returns (answer or None, HTTP status, commit bytes, GroupInfo epoch)."""
    for _ in range(ATTEMPTS):
        info, tree, epoch = _group_info(mimi_as, sut, room, device)
        try:
            request = device.join_external(info, tree, proposals_by_value=proposals)
        except (MLSError, ValueError, DecodeError, EncodeError) as exc:
            raise HarnessError(f"the suite could not build the {label} from the SUT's GroupInfo: {exc}") from None
        commit = UpdateRequest.decode(request, scope=MLS10).bundle.proposalOrCommit.encode()
        reply = _post(mimi_as, sut, "update", room, request)
        try:
            answer = UpdateRoomResponse.decode(reply.body) if reply.status == 200 else None
        except (DecodeError, EncodeError):
            answer = None
        recorder.note(f"{label} at epoch {epoch}: HTTP {reply.status} "
                      f"{answer.responseCode.name + ' ' + repr(answer.errorDescription) if answer else ''}")
        if answer is None or answer.responseCode != UpdateResponseCode.success:
            device.abandon()
        if answer is None or answer.responseCode != UpdateResponseCode.wrongEpoch:
            return answer, reply.status, commit, epoch
    return answer, reply.status, commit, epoch


def _new_device(user, names) -> SimulatedClient:
    """A new client of a reference-follower user, held by the suite (two-segment client URI, basic credential)."""
    return SimulatedClient(FOLLOWER, MimiUri.parse(user.uri).name, names("device"))


def _fanned_out_commits(ref_follower, room: str, after: int, sut) -> set[bytes]:
    out = set()
    for item in ref_follower.traffic(after, endpoint="notify", direction="in"):
        if item.value != room or item.peer not in sut.manifest.domains:
            continue
        try:
            out |= {m.message.encode() for m in read_fanouts(item.request)}  # as written, else the other reading
        except (DecodeError, EncodeError):
            continue  # judged by the fan-out checks
    return out


@pytest.mark.requirements(PUBLIC_COMMITS)
@pytest.mark.role("hub")
@pytest.mark.feature(FEATURE)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_external_commit_carrying_a_hub_update_is_refused(sut, sut_party, ref_follower, mimi_as, names, poll_until,
                                                         recorder):
    """A participant's new client joins by external commit carrying a mimi_hub AppDataUpdate by value (naming
    follower.ref.test as hub, generation + 1): the SUT refuses it and fans nothing of it out; the same join
    without the update is then accepted, and the hub component the reference follower's client holds after
    it is the one from before."""
    transfer_settings(sut, OLD_HUB)
    alice = sut_party.create_user("alice")
    room = sut_party.create_room(alice)
    bob = ref_follower.create_user("bob")
    sut_party.add_ok(room, alice, bob)
    ref_follower.wait_epoch(room, sut_party.room(room)["epoch"], what="bob's client to join the SUT's room")
    before = read_hub_data(ref_follower.member_state(room, bob.client).group.app_data(), room)
    recorder.note(f"mimi_hub before: hub {bytes(before.hub.uri)!r}, generation {before.generation}, "
                  f"{before.state.name}")
    forged = HubData(
        room_id=IdentifierUri(uri=room.encode()), hub=provider_uri(FOLLOWER), generation=before.generation + 1,
        state=HubState.stable, previous_hub=before.hub, last_transfer_id=secrets.token_bytes(16),
    )
    update = app_data_update_proposal(MIMI_HUB_COMPONENT_ID, forged.encode())
    mark = ref_follower.traffic_mark()

    answer, status, forged_commit, forged_epoch = _external_join(
        mimi_as, sut, room, _new_device(bob, names), [update], recorder, "external commit with a mimi_hub update")
    if answer is not None and answer.responseCode == UpdateResponseCode.success:
        fail("the SUT accepted an external commit carrying a mimi_hub AppDataUpdate by value (naming "
             f"{FOLLOWER} as hub, generation {forged.generation}); section 4.2 never allows one in an external "
             "commit", requirement=PUBLIC_COMMITS)

    device = _new_device(bob, names)
    answer, status, _, plain_epoch = _external_join(
        mimi_as, sut, room, device, [], recorder, "the same external join without the mimi_hub update")
    if answer is None or answer.responseCode != UpdateResponseCode.success:
        seen = answer.responseCode.name + f" {answer.errorDescription!r}" if answer is not None else f"HTTP {status}"
        if answer is not None and answer.responseCode == UpdateResponseCode.wrongEpoch and plain_epoch == forged_epoch:
            fail(f"after refusing the external commit with the mimi_hub update at epoch {forged_epoch}, the SUT "
                 f"answers the plain join from a fresh GroupInfo of that same epoch wrongEpoch: its state moved",
                 requirement=PUBLIC_COMMITS)
        blocked(NEW_DEVICE_JOIN, f"the SUT refused a participant's new client's plain external join ({seen}), so "
                "the refusal of the one carrying the mimi_hub update shows nothing about that update")

    # Sentinel: the plain join's commit reaches bob's client, so whatever the SUT fanned out before it has too.
    try:
        member = poll_until(lambda: (m := ref_follower.member_state(room, bob.client)).epoch > plain_epoch and m,
                            what="bob's client to process the new device's external commit")
    except PollTimeout as exc:
        blocked(FANOUT, f"the SUT accepted the plain external join but never fanned its commit out to bob's "
                f"provider, so what it fanned out before cannot be bounded: {exc}")
    fanned = _fanned_out_commits(ref_follower, room, mark, sut)
    if forged_commit in fanned:
        fail("the SUT fanned out the external commit carrying the mimi_hub update although it did not answer "
             "success", requirement=PUBLIC_COMMITS)
    after = read_hub_data(member.group.app_data(), room)
    if after != before:
        fail(f"after the refused external commit the room's mimi_hub is hub {bytes(after.hub.uri)!r}, generation "
             f"{after.generation}, {after.state.name}; before it was hub {bytes(before.hub.uri)!r}, generation "
             f"{before.generation}, {before.state.name}", requirement=PUBLIC_COMMITS)
    recorder.note(f"plain join accepted at epoch {plain_epoch}; mimi_hub unchanged (generation {after.generation})")
    observed(PUBLIC_COMMITS, "the external commit with the mimi_hub update was refused and not fanned out, the "
             f"plain join accepted; mimi_hub unchanged at generation {after.generation}")
    ambiguous_if_read_otherwise(PUBLIC_COMMITS, "which commits the SUT fanned out")
