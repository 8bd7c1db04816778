"""Hub transfer, the SUT as old hub: a transfer needs every member to support mimi_hub
(docs/extensions/hub-transfer.md section 5.1, EXT-HUBXFER-ALL-MEMBERS-SUPPORT; project extension,
scored only in the hub-transfer profiles).

A member supports a component when its LeafNode lists it in the ``app_components`` entry of its
``app_data_dictionary`` extension (draft-ietf-mls-extensions-09 section 5). The reference follower's
clients list mimi_hub, except the clients of users named in its ``lacking_hub_component`` knob when
they are created. The room lives on the SUT, created by a SUT admin (who holds canTransferHub). What is
judged is on MIMI: the hubTransfer messages the SUT sent the target (the reference hub's traffic log)
and the /notify it sent the reference follower; startHubTransfer only starts the request and reads its
outcome (section 17).
"""

from __future__ import annotations

import secrets

import pytest

from conformance.harness.reference_names import current
from conformance.scenarios.hub_transfer_support import transfer_settings
from conformance.scenarios.notify_bodies import ambiguous_if_read_otherwise, read_fanouts
from conformance.verdicts import HarnessError, blocked, fail, observed
from reference_peer.mls import leaf_app_components
from reference_peer.wire.codec import DecodeError, EncodeError
from reference_peer.wire.hub_transfer import MIMI_HUB_COMPONENT_ID, HubTransferMessage
from reference_peer.wire.identity import MimiUri
from reference_peer.wire.mimi import Protocol
from reference_peer.wire.mls import ContentType, WireFormat

MLS10 = {"protocol": Protocol.mls10}
HUB_DOMAIN = current().hub  # hub-k.ref.test on worker k: the plugin fixes it before import
OLD_HUB = "old-hub"

ALL_MEMBERS_SUPPORT = "EXT-HUBXFER-ALL-MEMBERS-SUPPORT"
BEGIN = "EXT-HUBXFER-BEGIN-PROPOSALS"


# -- helpers ---------------------------------------------------------------------------------------


def _hub_transfer_messages(ref_hub, room: str, after: int, sut) -> list[tuple[object, HubTransferMessage | None]]:
    """(traffic item, message or None when undecodable) of every hubTransfer request the SUT sent the
    reference hub for ``room`` after ``after``."""
    out = []
    for item in ref_hub.traffic(after, endpoint="hubTransfer", direction="in"):
        if item.value != room or item.peer not in sut.manifest.domains:
            continue
        try:
            out.append((item, HubTransferMessage.decode(item.request)))
        except (DecodeError, EncodeError):
            out.append((item, None))
    return out


def _proposal_notifies(ref_follower, room: str, after: int, sut) -> list[int]:
    """Traffic sequence numbers of the /notify the SUT sent the reference follower for ``room`` that
    carry a PublicMessage proposal."""
    seqs = []
    for item in ref_follower.traffic(after, endpoint="notify", direction="in"):
        if item.value != room or item.peer not in sut.manifest.domains:
            continue
        try:
            messages = read_fanouts(item.request)  # as written, else the register's other reading (recorded)
        except (DecodeError, EncodeError) as exc:
            fail(f"a /notify body the SUT sent does not decode as FanoutMessages: {exc}")
        for m in messages:
            msg = m.message
            if msg.wire_format == WireFormat.mls_public_message and \
                    msg.public_message.content.content_type == ContentType.proposal:
                seqs.append(item.seq)
                break
    return seqs


def _member_view(ref_follower, sut_party, room: str, client: str, poll_until):
    """A copy of a reference follower client's state once it is at the SUT hub's epoch."""
    epoch = sut_party.room(room)["epoch"]
    return poll_until(lambda: (m := ref_follower.member_state(room, client)).epoch >= epoch and m,
                      what=f"{client} to reach epoch {epoch}")


def _identities(group) -> list[str]:
    return [bytes(leaf.credential.identity or b"").decode("utf-8", "replace") for _, leaf in group.members()]


def _lacking_leaves(group) -> dict[int, str]:
    """Leaf index -> credential identity of every member whose LeafNode does not list mimi_hub."""
    return {
        i: bytes(leaf.credential.identity or b"").decode("utf-8", "replace")
        for i, leaf in group.members()
        if MIMI_HUB_COMPONENT_ID not in (leaf_app_components(leaf) or ())
    }


# -- the check ---------------------------------------------------------------------------------------


@pytest.mark.feature("hubTransfer")
@pytest.mark.role("hub")
@pytest.mark.requirements(ALL_MEMBERS_SUPPORT)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "startHubTransfer", "sendMessage",
                        "removeParticipant")
def test_member_without_hub_support_blocks_a_transfer(sut, sut_party, ref_follower, ref_hub, names, poll_until,
                                                      recorder):
    """A room on the SUT with a reference-follower member whose LeafNode lists no mimi_hub in its
    app_components: the admin's startHubTransfer to hub.ref.test is refused (notAllowed when a code is
    reported), no prepare reaches the target and no proposal the followers. Once that member is removed,
    the same request is started, so the refusal was for the missing support."""
    transfer_settings(sut, OLD_HUB)
    admin = sut_party.create_user("admin")
    room = sut_party.create_room(admin)
    witness = ref_follower.create_user("witness")
    lacking_uri = MimiUri.for_user(ref_follower.domain, names("nohub")).format()
    ref_follower.hold_transfer(lacking_hub_component=[lacking_uri])
    try:
        carol = ref_follower.create_user("nohub", user=lacking_uri)
    finally:
        ref_follower.hold_transfer(lacking_hub_component=[])
    sut_party.add_ok(room, admin, witness)
    sut_party.add_ok(room, admin, carol)
    group = _member_view(ref_follower, sut_party, room, witness.client, poll_until).group
    lacking = _lacking_leaves(group)
    recorder.note(f"members whose LeafNode lacks mimi_hub (leaf: credential): {lacking}")
    if carol.client not in lacking.values():
        raise HarnessError(f"the reference follower's client {carol.client} lists mimi_hub in its LeafNode despite "
                           f"the lacking_hub_component knob (members lacking it: {lacking})")

    hub_mark, follower_mark = ref_hub.traffic_mark(), ref_follower.traffic_mark()
    started = sut_party.start_hub_transfer(room, admin, HUB_DOMAIN)
    recorder.note(f"startHubTransfer to {HUB_DOMAIN} with {carol.client} lacking mimi_hub: {started}")
    if started.get("outcome") == "started":
        fail(f"the SUT started a transfer although {carol.client}'s LeafNode lists no mimi_hub in its "
             f"app_components: {started}", requirement=ALL_MEMBERS_SUPPORT)
    # Whatever the SUT sent because of the request has arrived once a later message has.
    text = f"sentinel {secrets.token_hex(4)}".encode()
    sut_party.send_ok(room, admin.client, text)
    ref_follower.wait_received(witness.client, text, room=room, what="the sentinel message at the reference follower")
    prepares = _hub_transfer_messages(ref_hub, room, hub_mark, sut)
    if prepares:
        kinds = [m.msg_type.name if m is not None else "undecodable" for _, m in prepares]
        fail(f"while {carol.client}'s LeafNode lists no mimi_hub in its app_components, the SUT sent the target "
             f"hubTransfer {kinds} (#{[i.seq for i, _ in prepares]}) for the request; expected a refusal with no "
             f"prepare (answer: {started})", requirement=ALL_MEMBERS_SUPPORT)
    proposals = _proposal_notifies(ref_follower, room, follower_mark, sut)
    if proposals:
        fail(f"while {carol.client}'s LeafNode lists no mimi_hub in its app_components, the SUT fanned out "
             f"proposals to the reference follower (/notify #{proposals}) after the request; expected a refusal "
             f"with no proposal (answer: {started})", requirement=ALL_MEMBERS_SUPPORT)
    if started.get("code") not in (None, "notAllowed"):
        fail(f"a transfer request while {carol.client} lacks mimi_hub was answered {started.get('code')}, not "
             f"notAllowed: {started}", requirement=ALL_MEMBERS_SUPPORT)

    # Without that member, the same request is started: the refusal was for the missing support.
    removed = sut_party.remove(room, admin, carol)
    recorder.note(f"removeParticipant {carol.uri}: {removed}")
    if removed.get("outcome") != "accepted":
        raise HarnessError(f"the SUT admin could not remove {carol.uri}, so the check cannot proceed: {removed}")

    def without_carol():
        g = _member_view(ref_follower, sut_party, room, witness.client, poll_until).group
        return g if carol.client not in _identities(g) else None

    group = poll_until(without_carol, what=f"{carol.client}'s leaf to leave the group")
    others = _lacking_leaves(group)
    refusal = (f"with {carol.client} lacking mimi_hub the request was refused ({started.get('code')}), no prepare "
               "reached the target and no proposal the follower")
    if others:  # e.g. the SUT's own clients list no mimi_hub: refusing is then right, and nothing to compare
        recorder.note(f"after the removal, members still lacking mimi_hub: {others}; the second request is not made")
        observed(ALL_MEMBERS_SUPPORT, f"{refusal}; other members still lack it, so the refusal held")
        ambiguous_if_read_otherwise(ALL_MEMBERS_SUPPORT, "whether the SUT fanned out proposals after the refusal")
        return
    hub_mark = ref_hub.traffic_mark()
    started = sut_party.start_hub_transfer(room, admin, HUB_DOMAIN)
    recorder.note(f"startHubTransfer to {HUB_DOMAIN} once every member lists mimi_hub: {started}")
    if started.get("outcome") != "started":
        prepared = [m.msg_type.name for _, m in _hub_transfer_messages(ref_hub, room, hub_mark, sut) if m is not None]
        blocked(BEGIN, f"with every member listing mimi_hub, the SUT refused its admin's transfer to the accepting "
                f"target {HUB_DOMAIN} ({started}; hubTransfer messages at the target: {prepared}), so a refusal "
                "cannot be told apart from one for the missing support")
    observed(ALL_MEMBERS_SUPPORT, f"{refusal}; once every member listed it, the same request was started")
    ambiguous_if_read_otherwise(ALL_MEMBERS_SUPPORT, "whether the SUT fanned out proposals after the refusal")
