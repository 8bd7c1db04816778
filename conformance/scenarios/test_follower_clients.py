"""The SUT as follower: its users' MLS clients joining from a Welcome, following the hub's stapled proposals, and
the GroupInfo their commits give the hub (draft-ietf-mimi-protocol-06 §5.2, §5.3, §5.5; room-policy-04 §7).

The room lives on the suite's reference hub; the SUT's users are added to it, commit in it or join it with a new
device, and what the SUT's clients then read (listReceivedMessages) or sent (the reference hub's traffic log) is
judged. Every judgement is by effect: a client named in a Welcome reads the room's next message; a device that
joined by external commit reads a message sent after the commit that takes the proposals the hub stapled to its
join; a commit's GroupInfoOption, full or partial, describes the epoch the commit starts.
"""

from __future__ import annotations

import pytest

from conformance.harness.control import ControlProblem
from conformance.scenarios.notify_bodies import read_fanouts
from conformance.scenarios.roles import as_follower
from conformance.scenarios.test_removal import setting_up, setup_add
from conformance.verdicts import HarnessError, expect, fail, miss, not_applicable, observed
from reference_peer.mls import MLSError
from reference_peer.mls.crypto import vl
from reference_peer.mls.group import get_extension, set_extension
from reference_peer.wire.codec import DecodeError, EncodeError
from reference_peer.wire.mimi import (
    GroupInfoRepresentation,
    Protocol,
    UpdateRequest,
    UpdateResponseCode,
    UpdateRoomResponse,
)
from reference_peer.wire.mls import ContentType, ExtensionType, GroupInfo, SenderType, WireFormat
from reference_peer.wire.ratchet_tree_options import RatchetTreePresence

MLS10 = {"protocol": Protocol.mls10}
ADMIN = 3

KPREF_TARGET = "PROTO-KEYMAT-KPREF-TARGET-CLIENT"
FOLLOWER_JOIN = "PROTO-GROUPINFO-FOLLOWER-JOIN-NEW-DEVICE"
COMMITTER_GROUPINFO = "POLICY-OPS-COMMITTER-PROVIDES-GROUPINFO"


# -- helpers ---------------------------------------------------------------------------------------


def _received(party, client: str, room: str) -> list[bytes]:
    """What ``client`` read in ``room``; a client the SUT holds no state of for the room has read nothing."""
    try:
        return party.received(client, room)
    except ControlProblem as exc:
        if exc.status in (404, 409):
            return []
        raise


def _notified(ref_hub, room: str, mark: int, sut_domain: str) -> list[tuple[object, object]]:
    """(traffic item, FanoutMessage) for each FanoutMessage the reference hub sent the SUT for ``room``."""
    out = []
    for item in ref_hub.traffic(mark, endpoint="notify", direction="out"):
        if item.value != room or item.peer != sut_domain:
            continue
        out += [(item, m) for m in read_fanouts(item.request, record=False)]
    return out


def _sut_updates(ref_hub, room: str, mark: int) -> list[tuple[object, UpdateRequest]]:
    """(traffic item, UpdateRequest) for each update the SUT sent the reference hub for ``room``."""
    out = []
    for item in ref_hub.traffic(mark, endpoint="update", direction="in"):
        if item.value != room:
            continue
        try:
            out.append((item, UpdateRequest.decode(item.request, scope=MLS10)))
        except (DecodeError, EncodeError):
            continue  # another check judges an undecodable UpdateRequest
    return out


def _room_with_sut_user(cast, *, role: int | None = None, poll_until, extra_users=()):
    """A room on the reference hub with Xavier (its creator), ``extra_users`` of the reference hub and Sam (SUT),
    and a message Sam's client has read (set-up: other checks judge the Welcome)."""
    xavier = cast.hub.create_user("xavier")
    room = cast.hub.create_room(xavier)
    others = [cast.hub.create_user(name) for name in extra_users]
    for other in others:
        cast.hub.add_ok(room, xavier, other)
    sam = cast.follower.create_user("sam")
    setup_add(cast.hub, room, xavier, sam, hub=cast.hub, **({"role": role} if role is not None else {}))
    hello = b"hello sam " + room.encode()
    cast.hub.send_ok(room, xavier.client, hello)
    with setting_up("sam's client (SUT) to join the room and read a first message"):
        poll_until(lambda: hello in _received(cast.follower, sam.client, room),
                   what="sam's client at the SUT to read a first message of the room")
    return room, xavier, sam, others


# -- a Welcome reaches the clients it names ----------------------------------------------------------


@pytest.mark.requirements(KPREF_TARGET)
@as_follower
@pytest.mark.operations("createUser", "listReceivedMessages")
def test_sut_client_named_in_a_welcome_joins_the_group(cast, ref_hub, poll_until, recorder):
    """-06 §5.2: "the target provider needs to associate its KeyPackageRef with the target client"; §5.5: "An MLS
    Welcome message is sent to the providers and local users associated with the KeyPackageRef values in the
    secrets array of the Welcome." The reference hub adds Sam (SUT) with the KeyPackage the SUT handed out and
    fans the Welcome out to the SUT: Sam's client must join the group from it, judged by effect (it reads a
    message of the epoch the Welcome starts), and a client of another SUT user, not named, reads nothing."""
    xavier = cast.hub.create_user("xavier")
    room = cast.hub.create_room(xavier)
    sam = cast.follower.create_user("sam")
    tina = cast.follower.create_user("tina")  # not added: the Welcome names none of her KeyPackages
    mark = ref_hub.traffic_mark()
    setup_add(cast.hub, room, xavier, sam, hub=cast.hub)
    epoch = cast.hub.room(room)["epoch"]
    with setting_up("the Welcome for sam delivered to the SUT"):
        welcomes = poll_until(
            lambda: [(i, m) for i, m in _notified(ref_hub, room, mark, cast.follower.domain)
                     if m.message.wire_format == WireFormat.mls_welcome and i.status is not None],
            what="the reference hub's /notify of the Welcome for sam to the SUT")
    item, _ = welcomes[0]
    recorder.note(f"the Welcome for sam went to the SUT in /notify #{item.seq}, answered HTTP {item.status}")
    text = b"first of the Welcome's epoch " + room.encode()
    cast.hub.send_ok(room, xavier.client, text)
    poll_until(lambda: text in _received(cast.follower, sam.client, room),
               what=f"sam's client to join from the Welcome (epoch {epoch}) and read a message of that epoch",
               requirement=KPREF_TARGET)
    observed(KPREF_TARGET, f"sam's client joined from the Welcome in /notify #{item.seq} and read a message of "
                           f"epoch {epoch}")
    got = _received(cast.follower, tina.client, room)
    if text in got:
        miss(KPREF_TARGET, f"{tina.client}, a client no KeyPackageRef of the Welcome names, read the room's message")
    else:
        observed(KPREF_TARGET, f"{tina.client}, not named in the Welcome, read nothing of the room")


# -- the hub's stapled proposals, after the client's own external commit --------------------------


@pytest.mark.feature("multiDevice")
@pytest.mark.requirements(FOLLOWER_JOIN)
@as_follower
@pytest.mark.operations("createUser", "addClient", "listReceivedMessages")
def test_new_device_follows_the_commit_of_the_hubs_stapled_proposals(cast, ref_hub, poll_until, recorder):
    """-06 §5.5: "An external commit will invalidate certain pending proposals. [...] The hub would then be
    expected to regenerate any relevant, comparable proposals in the new epoch. To prevent a race condition where
    a member commit arrives before the regenerated proposals arrive, the hub can staple regenerated proposals to
    an external commit during the fanout process."

    Yuri (reference hub) leaves; his proposals wait at the hub. Sam's new device (SUT) joins by external commit,
    which cannot carry them: the reference hub regenerates them for the new epoch and staples them to the fan-out
    of that external commit (it may also send them apart: either way the SUT has them). Xavier then commits them
    (Yuri's removal) and sends a message: the new device must read it. A device that joined but cannot follow
    the room's next commit has not joined (PROTO-GROUPINFO-FOLLOWER-JOIN-NEW-DEVICE: "after which the new client
    receives the room's messages")."""
    room, xavier, sam, (yuri,) = _room_with_sut_user(cast, poll_until=poll_until, extra_users=("yuri",))
    left = cast.hub.leave(room, yuri)
    if left.get("outcome") != "accepted":
        raise HarnessError(f"set-up failed: the reference hub refused yuri's leave: {left}")
    mark = ref_hub.traffic_mark()
    device = cast.follower.add_client(sam)

    def external_commit():
        for item, request in _sut_updates(ref_hub, room, mark):
            pub = request.bundle.proposalOrCommit.public_message
            if pub is not None and pub.content.sender.sender_type == SenderType.new_member_commit:
                return item
        return None

    commit = poll_until(external_commit, what="the new device's external commit at the reference hub",
                        requirement=FOLLOWER_JOIN)
    answer = UpdateRoomResponse.decode(commit.response)
    if answer.responseCode != UpdateResponseCode.success:
        fail(f"the reference hub refused the SUT's external commit: {answer.responseCode.name} "
             f"{answer.errorDescription!r}", requirement=FOLLOWER_JOIN)
    committed = UpdateRequest.decode(commit.request, scope=MLS10).bundle.proposalOrCommit.encode()
    with setting_up("the fan-out of the new device's external commit to the SUT"):
        fanned = poll_until(
            lambda: [m for i, m in _notified(ref_hub, room, mark, cast.follower.domain)
                     if i.status == 201 and m.message.encode() == committed],
            what="the /notify of the external commit to the SUT, answered 201")
    stapled = len(fanned[0].externalProposals or [])
    recorder.note(f"the reference hub stapled {stapled} regenerated proposal(s) to the external commit's fan-out")
    if not stapled:
        raise HarnessError("set-up failed: the reference hub stapled no regenerated proposal to the external commit "
                           "(yuri's leave was pending)")
    joined = b"to the new device " + room.encode()
    cast.hub.send_ok(room, xavier.client, joined)
    poll_until(lambda: joined in _received(cast.follower, device, room),
               what="the SUT's new device to read a message after its external commit", requirement=FOLLOWER_JOIN)
    if yuri.uri in cast.hub.participants(room):
        removal = cast.hub.remove(room, xavier, yuri)  # a commit of the pending (regenerated) proposals
        if removal.get("outcome") != "accepted":
            raise HarnessError(f"set-up failed: the reference hub refused xavier's commit of yuri's leave: {removal}")
    else:  # a client of the SUT committed them already (any member may): the device followed that commit
        recorder.note("yuri's leave was committed before xavier's commit (by a client of the SUT)")
    epoch = cast.hub.room(room)["epoch"]
    text = b"after the stapled proposals were committed " + room.encode()
    cast.hub.send_ok(room, xavier.client, text)
    poll_until(lambda: text in _received(cast.follower, device, room),
               what=f"the SUT's new device to follow the commit of the hub's stapled proposals (epoch {epoch}) and "
                    "read a message of that epoch", requirement=FOLLOWER_JOIN)
    observed(FOLLOWER_JOIN, f"sam's new device joined by external commit, took the {stapled} proposal(s) the hub "
                            f"stapled to its fan-out, followed the commit of them and read a message of epoch {epoch}")


# -- a commit's GroupInfo ----------------------------------------------------------------------------


def _signature_verifies(suite, key: bytes, info: GroupInfo) -> bool:
    tbs = info.encode()[: -len(vl(bytes(info.signature)))]
    return suite.verify_with_label(key, "GroupInfoTBS", tbs, bytes(info.signature))


def _judge_group_info(option, new_group, signer: int, tag: bytes) -> str | None:
    """Why ``option`` (a GroupInfoOption) gives no valid GroupInfo of ``new_group``'s epoch, or None. Full: its
    GroupContext, confirmation_tag and signature (by the leaf it names) are the new epoch's. Partial
    (ratchet-tree-options §4): the GroupInfo the hub rebuilds from the new epoch's GroupContext, the commit's
    confirmation_tag, the committer's leaf and the partial's extensions verifies, with the ratchet_tree
    extension added back where its presence says the signer had it (either placement is accepted)."""
    suite, context = new_group.suite, new_group.context
    if option.representation == GroupInfoRepresentation.full:
        info = option.groupInfo
        if info.group_context.encode() != context.encode():
            return (f"the GroupInfo's GroupContext is of epoch {info.group_context.epoch}, not the new epoch "
                    f"{context.epoch}'s" if info.group_context.epoch != context.epoch
                    else f"the GroupInfo's GroupContext (epoch {context.epoch}) differs from the new epoch's")
        if bytes(info.confirmation_tag) != tag:
            return "the GroupInfo's confirmation_tag is not the commit's"
        leaf = new_group.tree.leaf(info.signer)
        if leaf is None or not _signature_verifies(suite, bytes(leaf.signature_key), info):
            return f"the GroupInfo's signature does not verify with the key of leaf {info.signer} (its signer)"
        return None
    if option.representation == GroupInfoRepresentation.partial:
        partial = option.partialGroupInfo
        leaf = new_group.tree.leaf(signer)
        if leaf is None:
            return f"the committer's leaf {signer} is not in the new epoch's tree"
        candidates = [list(partial.group_info_extensions)]
        if partial.ratchet_tree_presence in (RatchetTreePresence.present, RatchetTreePresence.added) \
                and get_extension(candidates[0], ExtensionType.ratchet_tree) is None:
            candidates.append(set_extension(candidates[0], ExtensionType.ratchet_tree, new_group.tree.encode()))
        for exts in candidates:
            info = GroupInfo(group_context=context, extensions=exts, confirmation_tag=tag, signer=signer,
                             signature=bytes(partial.signature))
            if _signature_verifies(suite, bytes(leaf.signature_key), info):
                return None
        return ("the PartialGroupInfo's signature does not verify over the GroupInfo the hub rebuilds from the new "
                f"epoch ({context.epoch})'s GroupContext, the commit's confirmation_tag and its extensions")
    return f"the groupInfoOption has representation {int(option.representation)}: neither full nor partial"


@pytest.mark.requirements(COMMITTER_GROUPINFO)
@as_follower
@pytest.mark.operations("createUser", "addParticipant", "listReceivedMessages")
def test_sut_commit_gives_the_hub_a_groupinfo_of_the_new_epoch(cast, ref_hub, poll_until, recorder):
    """room-policy-04 §7: "committers need to provide a valid GroupInfo to the Hub"; -06 §5.3 lets the
    UpdateRequest carry it whole or as a PartialGroupInfo: "partial means that a PartialGroupInfo struct will be
    shared and that the Distribution Service is expected to reconstruct the GroupInfo as described in
    [I-D.mahy-mls-ratchet-tree-options]". Sam (SUT, an admin of a room on the reference hub) adds Zed; the
    commit's groupInfoOption, in either form, must give a GroupInfo of the epoch the commit starts: its
    GroupContext, the commit's confirmation_tag and a signature that verifies (judged against a copy of a
    reference member's state that processed the commit, whatever the hub answered)."""
    room, xavier, sam, _ = _room_with_sut_user(cast, role=ADMIN, poll_until=poll_until)
    epoch = cast.hub.room(room)["epoch"]
    with setting_up(f"xavier's client at epoch {epoch}"):
        witness = poll_until(lambda: (m := ref_hub.member_state(room, xavier.client)).epoch == epoch and m,
                             what=f"xavier's client to reach epoch {epoch}")
    zed = cast.hub.create_user("zed")
    mark = ref_hub.traffic_mark()
    result = cast.follower.add(room, sam, zed)
    recorder.note(f"sam adding zed through the SUT: {result.get('outcome')}")
    commits = [(i, r) for i, r in _sut_updates(ref_hub, room, mark)
               if r.bundle.proposalOrCommit.content_type() == ContentType.commit]
    if not commits:
        not_applicable(f"set-up failed: the SUT sent no commit for sam's addParticipant ({result.get('outcome')}: "
                       f"{result}), so there is no GroupInfo to judge")
    ours = [(i, r) for i, r in commits if (p := r.bundle.proposalOrCommit.public_message) is not None
            and p.content.epoch == epoch and p.content.sender.sender_type == SenderType.member]
    if not ours:
        not_applicable(f"set-up failed: no commit the SUT sent (updates {[i.seq for i, _ in commits]}) is a "
                       f"PublicMessage member commit of epoch {epoch}, so the suite cannot compute the epoch its "
                       "GroupInfo should describe; other checks judge the handshake format")
    item, request = ours[0]
    message = request.bundle.proposalOrCommit
    pub = message.public_message
    try:
        witness.group.process(message.encode())
    except MLSError as exc:
        not_applicable(f"set-up failed: the SUT's commit (update #{item.seq}) does not process in a reference "
                       f"member's state ({exc}), so the epoch its GroupInfo should describe is unknown; other checks "
                       "judge the commit")
    new_group = witness.group
    tag = bytes(pub.auth.confirmation_tag)
    problem = _judge_group_info(request.bundle.groupInfoOption, new_group, pub.content.sender.leaf_index, tag)
    representation = request.bundle.groupInfoOption.representation
    form = getattr(representation, "name", str(representation))
    expect(COMMITTER_GROUPINFO, problem is None,
           f"the SUT's commit (update #{item.seq}, epoch {epoch}) carries a {form} GroupInfo that is not a valid "
           f"GroupInfo of the epoch it starts: {problem}",
           evidence=f"the SUT's commit (update #{item.seq}) carries a {form} GroupInfo of epoch "
                    f"{new_group.context.epoch}, the epoch it starts, whose signature verifies")
