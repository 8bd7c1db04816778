"""Hub transfer with the SUT as old hub, from the cut-over on (docs/extensions/hub-transfer.md §6.3-§9,
§11): when the cut-over is proposed, what the cut-over commit must include, the handoff (sent, content,
byte-identical retries), what the old hub answers afterwards (421 + HubRedirect, nothing accepted), the
messages in flight at the cut-over (handed over, delivered once, the old hub silent after the
handoff) and no rollback.

Every check moves a room hosted by the SUT, with members on the reference follower, to the reference
hub (hub.ref.test) as target. The reference peers show what the SUT sent them (their traffic logs and
the handoff bytes the reference hub received); the reference follower withholds /notify 201s
(``refuse_notifies``) so that the cut-over waits for it or a backlog forms, and the reference hub
refuses the first handoff (the ``refuseHandoffs`` knob) so that the SUT must retry it. One check instead lets a
transfer to the reference follower abort, to see the window's rule end with it.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from conformance.harness.polling import PollTimeout
from conformance.harness.reference_names import current
from conformance.scenarios.hub_transfer_support import transfer_settings
from conformance.scenarios.notify_bodies import ambiguous_if_read_otherwise, read_fanouts
from conformance.scenarios.refusals import update_answer
from conformance.verdicts import HarnessError, blocked, fail, judging, miss, not_applicable, observed
from reference_peer.mls import MLSError, app_data_update_proposal, cipher_suite, remove_proposal
from reference_peer.mls.hub import HubView
from reference_peer.mls.leaf import key_package_ref
from reference_peer.mls.tree import RatchetTree
from reference_peer.room import participants as plist_mod
from reference_peer.room.follower import SimulatedClient
from reference_peer.room.naming import domain_of_uri, user_of_credential
from reference_peer.room.transfer import provider_uri, sender_domain
from reference_peer.wire.codec import DecodeError, EncodeError
from reference_peer.wire.hub_transfer import (
    HUB_REDIRECT_MEDIA_TYPE,
    MIMI_HUB_COMPONENT_ID,
    HubData,
    HubRedirect,
    HubState,
    HubTransferMessage,
    HubTransferMessageType,
    HubTransferRequestTBS,
    HubTransferResponse,
    read_hub_data,
    sign_hub_transfer_request,
    verify_hub_handoff,
)
from reference_peer.wire.identity import IdentifierUri, MimiUri
from reference_peer.wire.mimi import (
    COMPONENT_PARTICIPANT_LIST,
    FanoutMessage,
    GroupInfoCode,
    GroupInfoResponse,
    KeyMaterialRequest,
    KeyMaterialResponse,
    Protocol,
    SubmitMessageRequest,
    SubmitMessageResponse,
    SubmitResponseCode,
    UpdateResponseCode,
    UpdateRoomResponse,
)
from reference_peer.wire.mls import ContentType, MLSMessage, ProposalType, WireFormat
from reference_peer.wire.ratchet_tree_options import RatchetTreeRepresentation

MLS10 = {"protocol": Protocol.mls10}
# This worker's reference domains (hub-k.ref.test on worker k): the plugin fixes them before import.
HUB, FOLLOWER = current()  # HUB is the target: the suite's reference hub
ADMIN = 3  # the default policy's admin role: holds canTransferHub
FEATURE = "hubTransfer"

AFTER_DELIVERY = "EXT-HUBXFER-CUTOVER-AFTER-DELIVERY"
INCLUDES_PENDING = "EXT-HUBXFER-CUTOVER-INCLUDES-PENDING"
REMOVAL_PRESERVED = "EXT-HUBXFER-REMOVAL-PRESERVED"
HANDOFF_SENT = "EXT-HUBXFER-HANDOFF-SENT"
HANDOFF_CONTENT = "EXT-HUBXFER-HANDOFF-CONTENT"
RETRY_IDENTICAL = "EXT-HUBXFER-HANDOFF-RETRY-IDENTICAL"
REDIRECT = "EXT-HUBXFER-OLDHUB-REDIRECT"
REDIRECT_SHAPE = "EXT-HUBXFER-OLDHUB-REDIRECT-SHAPE"
NO_ACCEPT = "EXT-HUBXFER-OLDHUB-NO-ACCEPT"
STOPS_FANOUT = "EXT-HUBXFER-OLDHUB-STOPS-FANOUT"
INFLIGHT = "EXT-HUBXFER-INFLIGHT-EXACTLY-ONCE"
NO_ROLLBACK = "EXT-HUBXFER-NO-ROLLBACK"
NO_NEW_PROVIDERS = "EXT-HUBXFER-WINDOW-NO-NEW-PROVIDERS"
ABORT_TIMEOUT = "EXT-HUBXFER-ABORT-ON-TIMEOUT"  # what the window check needs, not what it judges
BEGIN = "EXT-HUBXFER-BEGIN-PROPOSALS"  # (blocked())
REQUEST_REFUSED = "EXT-HUBXFER-REQUEST-REFUSED"
FANOUT = "PROTO-FANOUT-TO-ACTIVE-PROVIDERS"  # what the checks need, not what they judge (blocked())

# Retry-After (s) of the one /notify a reference peer refuses: long enough for the suite to act while
# the SUT waits, short enough to keep a check to a few seconds.
LATE_201 = 2
# Retry-After (s) of the follower's refusal that starts the backlog: it must outlast the cut-over and
# the handoff (about LATE_201 - 0.5 s after the refusal), so the refused message is still undelivered.
BACKLOG_RETRY_AFTER = 4


# -- helpers ---------------------------------------------------------------------------------------


def _authority(sut) -> str:
    """host[:port] of the SUT's primary domain (the authority of the rooms it creates)."""
    return urlsplit(sut.base_urls[sut.primary_domain]).netloc


def _uri_domain(uri: IdentifierUri) -> str | None:
    return domain_of_uri(bytes(uri.uri))


def _sut_room(sut_party, ref_follower, *members: str, admins: tuple[str, ...] = ()):
    """A room on the SUT created by Alice (SUT, admin, holds canTransferHub) with ``members`` on the
    reference follower (``admins`` among them with the admin role); waits until they joined."""
    alice = sut_party.create_user("alice")
    room = sut_party.create_room(alice)
    users = []
    for name in members:
        user = ref_follower.create_user(name)
        sut_party.add_ok(room, alice, user, **({"role": ADMIN} if name in admins else {}))
        users.append(user)
    ref_follower.wait_epoch(room, sut_party.room(room)["epoch"], what="the reference follower's clients to join the SUT's room")
    return room, alice, users


def _start(party, room: str, actor) -> dict:
    started = party.start_hub_transfer(room, actor, HUB)
    if started.get("outcome") != "started":
        # Starting a transfer is judged by test_hub_transfer_request.py; here it is a precondition.
        raise HarnessError(f"the transfer of {room} to {HUB} did not start, so the check cannot proceed: {started}")
    return started


def _member_at(party, room: str, client: str, epoch: int, poll_until):
    return poll_until(lambda: (m := party.member_state(room, client)).epoch is not None and m.epoch >= epoch and m,
                      what=f"{client} at {party.name} to reach epoch {epoch}")


class Seen:
    """One FanoutMessage the SUT sent one of the suite's peers for the room (with its traffic record)."""

    def __init__(self, item, fanout: FanoutMessage, where: str) -> None:
        self.item, self.fanout, self.where = item, fanout, where

    @property
    def time(self) -> float:
        return self.item.time

    @property
    def delivered(self) -> bool:
        return self.item.status == 201

    def hub_updates(self) -> list[tuple[int, HubData | None]]:
        return _hub_updates(self.fanout)

    def commit_epoch(self) -> int | None:
        return _commit_epoch(self.fanout)


def _fanouts_of(items, room: str, where: str) -> list[Seen]:
    out = []
    for item in items:
        if item.endpoint != "notify" or item.value != room:
            continue
        try:
            messages = read_fanouts(item.request)  # as written, else the register's other reading (recorded)
        except (DecodeError, EncodeError):
            continue  # the fan-out checks judge /notify bodies
        out += [Seen(item, m, where) for m in messages]
    return out


def _observe(ref_hub, ref_follower, marks: tuple[int, int], room: str, sut_domain: str) -> tuple[list[Seen], list]:
    """What the SUT sent the suite's peers for the room since ``marks`` (hub, follower): its FanoutMessages
    to both, by arrival time, and its handoff attempts. The follower's log is read first and the target's
    (notify and hubTransfer) in one read after it, so a cut-over the follower saw has its causes at the
    target (the 201 to the begin commit) in the same observation."""
    follower = _fanouts_of(ref_follower.traffic(marks[1], endpoint="notify", direction="in", peer=sut_domain),
                           room, "follower")
    at_hub = ref_hub.traffic(marks[0], direction="in", peer=sut_domain)
    seen = sorted(_fanouts_of(at_hub, room, "target") + follower, key=lambda s: s.time)
    return seen, _handoffs_of(at_hub, room)


def _all_fanouts(ref_hub, ref_follower, marks: tuple[int, int], room: str, sut_domain: str) -> list[Seen]:
    return _observe(ref_hub, ref_follower, marks, room, sut_domain)[0]


def _hub_updates(fanout: FanoutMessage) -> list[tuple[int, HubData | None]]:
    """(epoch, HubData or None if undecodable) of every mimi_hub AppDataUpdate proposal the FanoutMessage carries."""
    out: list[tuple[int, HubData | None]] = []
    for msg in [fanout.message, *(fanout.moreProposals or ()), *(fanout.externalProposals or ())]:
        pub = msg.public_message
        if pub is None or pub.content.content_type != ContentType.proposal:
            continue
        proposal = pub.content.proposal
        if proposal.proposal_type != ProposalType.app_data_update:
            continue
        update = proposal.app_data_update
        if update.component_id != MIMI_HUB_COMPONENT_ID:
            continue
        try:
            out.append((pub.content.epoch, HubData.decode(bytes(update.update or b""))))
        except (DecodeError, EncodeError):
            out.append((pub.content.epoch, None))
    return out


def _commit_epoch(fanout: FanoutMessage) -> int | None:
    pub = fanout.message.public_message
    if pub is None or pub.content.content_type != ContentType.commit:
        return None
    return pub.content.epoch


def _is_application(fanout: FanoutMessage) -> bool:
    private = fanout.message.private_message
    return private is not None and private.content_type == ContentType.application


def _begin_epoch(seen: list[Seen]) -> int | None:
    """The epoch the begin proposals were made in (the begin commit's epoch)."""
    for s in seen:
        for epoch, data in s.hub_updates():
            if data is not None and data.state == HubState.transferring:
                return epoch
    return None


def _is_cutover_proposal(s: Seen, begin_epoch: int | None) -> bool:
    return any(
        data is not None and data.state == HubState.stable and _uri_domain(data.hub) == HUB
        and (begin_epoch is None or epoch == begin_epoch + 1)
        for epoch, data in s.hub_updates()
    )


def _transfer_milestones(seen: list[Seen]) -> dict:
    """When the SUT's fan-out carried the begin commit (and when each peer answered 201 to it) and when
    the cut-over proposal was first sent."""
    e0 = _begin_epoch(seen)
    out: dict = {"begin_epoch": e0, "begin_201": {}, "cutover_sent": None}
    if e0 is None:
        return out
    for s in seen:
        if s.commit_epoch() == e0 and s.delivered:
            out["begin_201"].setdefault(s.where, s.time)
        if _is_cutover_proposal(s, e0) and out["cutover_sent"] is None:
            out["cutover_sent"] = s.time
    return out


def _cutover_time(seen: list[Seen], attempts: list) -> float | None:
    """The earliest evidence that the SUT proposed the cut-over: its cut-over proposal reaching one of the
    suite's peers, or its handoff (there is a handoff only after a cut-over commit) reaching the target."""
    times = [_transfer_milestones(seen)["cutover_sent"]]
    times += [a.time for a in attempts]
    times = [t for t in times if t is not None]
    return min(times) if times else None


def _handoff_attempts(ref_hub, mark: int, room: str, sut_domain: str) -> list:
    """The handoff messages the SUT sent the reference hub for the room (traffic records, in order)."""
    return _handoffs_of(ref_hub.traffic(mark, endpoint="hubTransfer", direction="in", peer=sut_domain), room)


def _handoffs_of(items, room: str) -> list:
    out = []
    for item in items:
        if item.endpoint != "hubTransfer" or item.value != room:
            continue
        try:
            message = HubTransferMessage.decode(item.request)
        except (DecodeError, EncodeError):
            if item.request[:1] == bytes([int(HubTransferMessageType.handoff)]):
                out.append(item)  # an undecodable handoff still is an attempt: HANDOFF-CONTENT judges it
            continue
        if message.msg_type == HubTransferMessageType.handoff:
            out.append(item)
    return out


def _accepted(item) -> bool:
    if item.status != 200:
        return False
    try:
        return HubTransferResponse.decode(item.response).code.name == "accepted"
    except (DecodeError, EncodeError):
        return False


def _handoff_view(handoff) -> HubView:
    """The GroupInfo and tree the handoff carries as a verified HubView (signature and tree hash)."""
    c = handoff.content
    suite = cipher_suite(c.group_info.group_context.cipher_suite)
    tree = RatchetTree.from_wire(suite, c.ratchet_tree_option.ratchet_tree).encode()
    info = MLSMessage(version=1, wire_format=WireFormat.mls_group_info, group_info=c.group_info).encode()
    return HubView.from_group_info(info, ratchet_tree=tree)


def _view_users(view) -> tuple[dict[bytes, int], set[bytes]]:
    """(participant list roles by user, users with a leaf) of a HubView or a member's Group."""
    roles = plist_mod.roles_by_user(plist_mod.decode_list(view.app_data().get(int(COMPONENT_PARTICIPANT_LIST))))
    leaves = {u for _, leaf in view.members() if (u := user_of_credential(leaf.credential)) is not None}
    return roles, leaves


def _claimed_key_packages(ref_follower, mark: int, room: str, sut_domain: str) -> set[bytes]:
    """KeyPackageRefs of the KeyPackages the reference follower gave the SUT for the room (keyMaterial)."""
    refs = set()
    for item in ref_follower.traffic(mark, endpoint="keyMaterial", direction="in", peer=sut_domain):
        if item.status != 200:
            continue
        try:
            request = KeyMaterialRequest.decode(item.request)
            answer = KeyMaterialResponse.decode(item.response)
        except (DecodeError, EncodeError):
            continue
        if bytes(request.roomId.uri) != room.encode():
            continue
        for entry in answer.clients:
            if entry.keyPackage is not None:
                refs.add(key_package_ref(cipher_suite(entry.keyPackage.cipher_suite), entry.keyPackage))
    return refs


def _post(mimi_as, sut, endpoint: str, room: str, body: bytes):
    session = mimi_as(FOLLOWER)
    return session.run(session.client.call(_authority(sut), endpoint, room, body))


def _post_update(mimi_as, sut, room: str, body: bytes, *, precondition: bool = False) -> UpdateRoomResponse:
    reply = _post(mimi_as, sut, "update", room, body)
    if reply.status != 200 and precondition:  # e.g. 421: the SUT's own clients committed the cut-over already
        raise HarnessError(f"/update answered HTTP {reply.status}: the transfer window closed before the check could "
                           "act in it")
    try:
        return update_answer(reply.status, reply.body)  # a non-2xx answer is a refusal (AMB-FAILURE-CODE-STATUS)
    except (DecodeError, EncodeError) as exc:
        fail(f"/update answered HTTP {reply.status} during the transfer window with no decodable "
             f"UpdateRoomResponse: {exc}", requirement=INCLUDES_PENDING)


def _wait_until(poll_until, moment: float, what: str) -> None:
    """Wait for a moment on the clock: when a SUT that broke the rule would have acted (its own retry
    schedule), before a sentinel shows that it did not."""
    poll_until(lambda: time.time() >= moment, timeout=max(1.0, moment - time.time() + 2.0), what=what)


# -- the cut-over ----------------------------------------------------------------------------------


@pytest.mark.requirements(AFTER_DELIVERY)
@pytest.mark.role("hub")
@pytest.mark.feature(FEATURE)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "startHubTransfer")
def test_cutover_waits_for_the_followers_201_to_the_begin_commit(sut, sut_party, ref_hub, ref_follower, poll_until,
                                                                 recorder):
    """The reference follower answers the begin proposals 503 (Retry-After 2), so it receives the begin
    commit 2 s late: the SUT proposes the cut-over only after that follower (and the target) answered the
    begin commit 201."""
    transfer_settings(sut, "old-hub")
    room, alice, _ = _sut_room(sut_party, ref_follower, "bob")
    marks = (ref_hub.traffic_mark(), ref_follower.traffic_mark())
    domain = sut.primary_domain
    ref_follower.refuse_notifies([503], retry_after=str(LATE_201))
    try:
        _start(sut_party, room, alice)
        poll_until(lambda: _cutover_time(*_observe(ref_hub, ref_follower, marks, room, domain)) is not None,
                   timeout=LATE_201 + 10, what="the SUT's cut-over proposal (or its handoff) to reach the suite's peers")
    finally:
        ref_follower.refuse_notifies([])  # refusals left unused must not hit the next check
    seen, attempts = _observe(ref_hub, ref_follower, marks, room, domain)
    refused = [s for s in seen if s.where == "follower" and s.item.status == 503]
    # Every FanoutMessage of the first refused /notify (AMB-FANOUT-SELECT's reading splits a bundle into several).
    first_refused = [s for s in refused if s.item.seq == refused[0].item.seq] if refused else []
    if not any(d is not None and d.state == HubState.transferring for s in first_refused for _, d in s.hub_updates()):
        raise HarnessError("the reference follower's 503 did not hit the begin proposals, so the check proves nothing: "
                           f"{[(s.item.seq, s.item.status) for s in seen if s.where == 'follower']}")
    _judge_cutover_order(seen, _cutover_time(seen, attempts), ("follower", "target"), recorder)
    ambiguous_if_read_otherwise(AFTER_DELIVERY, "when the begin commit was answered 201 and the cut-over proposed")


def _judge_cutover_order(seen: list[Seen], cutover: float | None, peers: tuple[str, ...], recorder) -> bool:
    """AFTER_DELIVERY: each of ``peers`` answered the begin commit 201 before the cut-over was proposed.
    A miss is recorded (miss()) and the check goes on to judge its other requirements; returns False on a miss."""
    confirmed = _transfer_milestones(seen)["begin_201"]
    recorder.note(f"begin commit answered 201 at {confirmed}; first evidence of the cut-over at {cutover}")
    if cutover is None:
        return True  # no cut-over seen: nothing to judge
    missed = False
    for where in peers:
        if where not in confirmed:
            miss(AFTER_DELIVERY, f"the SUT proposed the cut-over although the {where} had not answered 201 to the begin "
                 "commit (the SUT never delivered it there itself)")
            missed = True
        elif cutover < confirmed[where]:
            miss(AFTER_DELIVERY, f"the SUT's cut-over (proposal or handoff) reached a peer "
                 f"{confirmed[where] - cutover:.2f} s before the {where} answered 201 to the begin commit")
            missed = True
    if not missed:
        observed(AFTER_DELIVERY, "the cut-over came " + ", ".join(
            f"{cutover - confirmed[w]:.2f} s after the {w}'s 201 to the begin commit" for w in peers))
    return not missed


def _cached_cutover(member, room: str) -> bytes | None:
    """The ref of the cut-over proposal a reference client holds in its proposal cache (None: none yet)."""
    for ref, entry in member.group.proposal_cache.items():
        p = entry.proposal
        if p.proposal_type != ProposalType.app_data_update or p.app_data_update.component_id != MIMI_HUB_COMPONENT_ID:
            continue
        try:
            data = HubData.decode(bytes(p.app_data_update.update or b""))
        except (DecodeError, EncodeError):
            continue
        if data.state == HubState.stable and _uri_domain(data.hub) == HUB:
            return ref
    return None


@pytest.mark.requirements(INCLUDES_PENDING, REMOVAL_PRESERVED)
@pytest.mark.role("hub")
@pytest.mark.feature(FEATURE)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_cutover_commit_must_include_the_pending_removal(sut, sut_party, ref_hub, ref_follower, mimi_as, poll_until,
                                                         recorder, names):
    """Dave (reference follower, admin) starts the transfer and holds the cut-over commit back; with the
    cut-over proposal pending he proposes Erin's removal. The SUT refuses a cut-over commit omitting that
    removal, and an external commit (a new client of dave), and accepts one including it; the handoff's cut-over
    epoch no longer has Erin."""
    settings = transfer_settings(sut, "old-hub")
    room, _alice, (dave, erin, wendy) = _sut_room(sut_party, ref_follower, "dave", "erin", "wendy", admins=("dave",))
    hub_mark = ref_hub.traffic_mark()
    recorder.note(f"the SUT's cut-over deadline: {settings.get('cutover_timeout_ms')} ms after the acceptance")
    ref_follower.hold_transfer(autocommit=["begin", "abort"])  # dave's client commits the begin, not the cut-over
    try:
        _start(ref_follower, room, dave)
        try:  # the cut-over proposal itself is judged by the request checks: here it is a precondition
            dave_state = poll_until(lambda: (m := ref_follower.member_state(room, dave.client)).group is not None
                                    and _cached_cutover(m, room) is not None and m,
                                    what="the SUT's cut-over proposal to reach dave's client")
        except PollTimeout as exc:
            raise HarnessError(f"the SUT's cut-over proposal never reached dave's client, so no cut-over commit "
                               f"can be tried: {exc}") from None
        cutover_ref = _cached_cutover(dave_state, room)
        index = plist_mod.index_of(dave_state.participant_list(), erin.uri.encode())
        leaves = dave_state.leaves_of_user(erin.uri.encode())
        if index is None or not leaves:
            raise HarnessError(f"erin is not in dave's view of the group (list index {index}, leaves {leaves})")
        removal = [app_data_update_proposal(int(COMPONENT_PARTICIPANT_LIST), plist_mod.make_update(removed=[index]).encode()),
                   *[remove_proposal(leaf) for leaf in leaves]]
        response = _post_update(mimi_as, sut, room, dave_state.proposals_request(removal), precondition=True)
        recorder.note(f"dave's proposals removing erin, with the cut-over pending: {response.responseCode.name}")
        if response.responseCode != UpdateResponseCode.success:
            raise HarnessError(f"the SUT refused dave's proposals removing erin during the window: "
                               f"{response.responseCode.name} {response.errorDescription!r}")
        omitting = dave_state.commit(by_reference=[cutover_ref], include_cached=False)
        response = _post_update(mimi_as, sut, room, omitting.request)
        recorder.note(f"cut-over commit omitting erin's removal: {response.responseCode.name}")
        if response.responseCode == UpdateResponseCode.success:
            fail("the SUT accepted a cut-over commit that omits the proposals removing erin, pending at the hub in "
                 "that epoch", requirement=INCLUDES_PENDING)
        dave_state.commit_refused()
        # §6.3: "A refuses an external commit while the cut-over proposal is pending, because an external commit
        # could not include it": a new client of dave joins from the GroupInfo dave's client signs.
        joiner = SimulatedClient(ref_follower.domain, MimiUri.parse(dave.uri).name, names("device"))
        try:
            external = joiner.join_external(dave_state.group.group_info(ratchet_tree=True), None)
        except (MLSError, ValueError) as exc:
            raise HarnessError(f"the suite could not build the external commit of dave's new client: {exc}") from None
        response = _post_update(mimi_as, sut, room, external)
        recorder.note(f"external commit of dave's new client with the cut-over pending: {response.responseCode.name} "
                      f"{response.errorDescription!r}")
        if response.responseCode == UpdateResponseCode.success:
            fail("the SUT accepted an external commit (a new client of dave) while its cut-over proposal was pending; "
                 "an external commit cannot include it", requirement=INCLUDES_PENDING)
        including = dave_state.commit(include_cached=True)
        response = _post_update(mimi_as, sut, room, including.request)
        recorder.note(f"cut-over commit including every pending proposal: {response.responseCode.name}")
        if response.responseCode != UpdateResponseCode.success:
            fail(f"the SUT refused the cut-over commit that includes every pending proposal: "
                 f"{response.responseCode.name} {response.errorDescription!r}", requirement=INCLUDES_PENDING)
        observed(INCLUDES_PENDING, "the cut-over commit omitting erin's pending removal was refused, the one "
                 "including it accepted")
    finally:
        ref_follower.hold_transfer(autocommit=["begin", "cutover", "abort"])
    # The cut-over epoch as the SUT committed it (Wendy's client, from the SUT's fan-out) and as it handed
    # it over (the handoff's GroupInfo, when one arrived: the handoff itself is judged elsewhere).
    try:
        poll_until(lambda: (info := ref_follower.room(room)) is not None and info["hubDomain"] == HUB,
                   what="the reference follower to process the cut-over commit")
    except PollTimeout as exc:
        raise HarnessError(f"the cut-over commit never reached the follower, so its state cannot be read: {exc}") from None
    states = [("the cut-over epoch the SUT fanned out", ref_follower.member_state(room, wendy.client).group)]
    attempts = _handoff_attempts(ref_hub, hub_mark, room, sut.primary_domain)
    if attempts:
        try:
            states.append(("the cut-over epoch the SUT handed over",
                           _handoff_view(HubTransferMessage.decode(attempts[0].request).handoff)))
        except Exception as exc:  # noqa: BLE001 - judged by the handoff-content check
            recorder.note(f"the handoff's GroupInfo cannot be read: {type(exc).__name__}: {exc}")
    for label, view in states:
        roles, users = _view_users(view)
        recorder.note(f"{label} ({view.epoch}): participants {sorted(u.decode() for u in roles)}")
        if erin.uri.encode() in roles or erin.uri.encode() in users:
            miss(REMOVAL_PRESERVED, f"erin, whose removal was accepted before the cut-over, is still in {label} "
                 f"(epoch {view.epoch}; participant list: {erin.uri.encode() in roles}, leaf: "
                 f"{erin.uri.encode() in users})")
        else:
            observed(REMOVAL_PRESERVED, f"erin is neither listed nor has a leaf in {label} (epoch {view.epoch})")


# -- after an abort -----------------------------------------------------------------------------------


def _hub_component(party, room: str, client: str) -> HubData | None:
    """The mimi_hub component in a reference client's current epoch (None: none or not readable)."""
    member = party.member_state(room, client)
    if member.group is None:
        return None
    try:
        return read_hub_data(member.group.app_data(), room)
    except (DecodeError, EncodeError):
        return None


@pytest.mark.requirements(NO_NEW_PROVIDERS)
@pytest.mark.role("hub")
@pytest.mark.feature(FEATURE)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_window_rule_spans_the_begin_commit_to_the_abort(sut, sut_party, ref_hub, ref_follower, poll_until, recorder):
    """Dave (reference follower, admin) starts a transfer to follower.ref.test and holds the cut-over commit
    back. Once the begin commit is accepted, Dave adds Xavier, a user of hub.ref.test (a provider with no
    participant in the room): the SUT refuses that commit. At not_after the SUT proposes the abort and Dave's
    client commits it; Dave adds Xavier again: the SUT accepts it.

    The rule is bounded by the window: "During the transfer window ... A refuses (notAllowed) any commit,
    external commits included, that gives a provider other than B its first active participant in the room"
    (§6.2), and the window runs "from the moment the old hub sends the begin proposals to its acceptance of the
    cut-over commit (or of the abort commit)" (§2). So the begin commit does not end it, and the abort commit
    does: "the add can be retried after the cut-over" (§6.2). A hub that keeps refusing such a commit once the
    abort commit is accepted applies the window's rule past its end, and the room can never gain a provider
    again."""
    settings = transfer_settings(sut, "old-hub")
    room, _alice, (dave,) = _sut_room(sut_party, ref_follower, "dave", admins=("dave",))
    xavier = ref_hub.create_user("xavier")
    before = _hub_component(ref_follower, room, dave.client)
    if before is None:  # the component at creation is judged by the request checks
        raise HarnessError(f"dave's client holds no readable mimi_hub component in {room}: no transfer can be tracked")
    wait = int(settings["cutover_timeout_ms"]) / 1000 + 20
    ref_follower.hold_transfer(autocommit=["begin", "abort"])  # dave's client commits the begin, not the cut-over
    try:
        started = ref_follower.start_hub_transfer(room, dave, FOLLOWER)
        recorder.note(f"follower-initiated startHubTransfer to {FOLLOWER}: {started}")
        if started.get("outcome") != "started":  # judged by the request checks (BEGIN-PROPOSALS)
            raise HarnessError(f"the SUT did not start the transfer to {FOLLOWER}, so there is no window: {started}")
        try:
            begun = poll_until(
                lambda: (d := _hub_component(ref_follower, room, dave.client)) is not None
                and d.generation == before.generation + 1 and d.state == HubState.transferring and d,
                what="the begin commit (transferring, generation + 1) at dave's client")
        except PollTimeout as exc:
            blocked(BEGIN, f"the transfer's begin commit never reached dave's client, so the window cannot be "
                    f"watched: {exc}")
        try:  # the SUT proposes the cut-over once the begin commit is delivered: Dave's commit then includes it
            poll_until(lambda: _cached_hub_update(ref_follower.member_state(room, dave.client)), timeout=2,
                       what="the SUT's cut-over proposal at dave's client")
        except PollTimeout:
            recorder.note("no cut-over proposal reached dave's client within 2 s of the begin commit")
        if begun.not_after - int(time.time() * 1000) < 1500:
            raise HarnessError(f"the window closes within 1.5 s (not_after {begun.not_after}): too late to add in it")
        answers = _add_answers(ref_follower, room, dave, xavier, recorder, "after the begin commit (in the window)")
        if any(a.responseCode == UpdateResponseCode.success for a in answers):
            fail(f"after the begin commit (mimi_hub generation {begun.generation}, transferring: in the window) the "
                 f"hub accepted the commit giving {HUB} its first participant", requirement=NO_NEW_PROVIDERS)
        refused = [(a.responseCode.name, a.errorDescription) for a in answers]
        try:
            aborted = poll_until(
                lambda: (d := _hub_component(ref_follower, room, dave.client)) is not None
                and d.generation >= before.generation + 2 and d.state == HubState.stable
                and _uri_domain(d.hub) == sut.primary_domain and d,
                timeout=wait, what="the abort commit (stable, this hub, generation + 2) at dave's client")
        except PollTimeout as exc:
            blocked(ABORT_TIMEOUT, f"the SUT never had the transfer's abort committed by not_after "
                    f"({settings['cutover_timeout_ms']} ms after the acceptance), so the window never closed: {exc}")
    finally:
        ref_follower.hold_transfer(autocommit=["begin", "cutover", "abort"])
    recorder.note(f"the abort committed: mimi_hub generation {before.generation} -> {aborted.generation}")
    answers = _add_answers(ref_follower, room, dave, xavier, recorder, "after the abort commit")
    if not any(a.responseCode == UpdateResponseCode.success for a in answers):
        miss(NO_NEW_PROVIDERS, f"after the transfer's abort commit (mimi_hub generation {aborted.generation}, the "
             f"window closed) the hub refused the commit giving {HUB} its first participant: "
             f"{[(a.responseCode.name, a.errorDescription) for a in answers]}")
    else:
        observed(NO_NEW_PROVIDERS, f"the commit adding {xavier.uri} ({HUB}'s first participant) was refused after "
                 f"the begin commit ({refused}) and accepted after the abort commit (mimi_hub generation "
                 f"{aborted.generation})")


def _cached_hub_update(member) -> bool:
    """Whether a reference client holds a mimi_hub AppDataUpdate proposal in its proposal cache."""
    return member.group is not None and any(
        e.proposal.proposal_type == ProposalType.app_data_update
        and e.proposal.app_data_update.component_id == MIMI_HUB_COMPONENT_ID
        for e in member.group.proposal_cache.values())


def _add_answers(ref_follower, room: str, dave, user, recorder, when: str) -> list[UpdateRoomResponse]:
    """The SUT's answers to the commits Dave's client sent adding ``user`` (HarnessError: it sent none)."""
    mark = ref_follower.traffic_mark()
    added = ref_follower.add(room, dave, user)
    recorder.note(f"Add of {user.uri} ({HUB}, no participant in the room) {when}: {added}")
    answers = [update_answer(t.status, t.response)
               for t in ref_follower.traffic(mark, endpoint="update", direction="out") if t.value == room]
    if not answers:
        raise HarnessError(f"the reference follower sent no commit adding {user.uri} {when}: {added}")
    return answers


# -- the handoff and the messages in flight ----------------------------------------------------------


@pytest.mark.requirements(AFTER_DELIVERY, HANDOFF_SENT, HANDOFF_CONTENT, RETRY_IDENTICAL, INFLIGHT, STOPS_FANOUT,
                          NO_ROLLBACK)
@pytest.mark.role("hub")
@pytest.mark.feature(FEATURE)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage", "startHubTransfer")
def test_in_flight_messages_are_handed_over_once(sut, sut_party, ref_hub, ref_follower, poll_until, recorder):
    """The target answers the begin proposals 503 (Retry-After 2): while the SUT waits for it, the
    follower refuses the next /notify (Retry-After 4), and Alice (SUT) and Bob (follower) send a message
    each. The cut-over then leaves those two, the cut-over proposal and the cut-over commit undelivered to
    the follower: the handoff (answered 503, then refused wrongEpoch, so the SUT retries it byte for byte)
    carries exactly them, the reference hub delivers them, Carol (follower) gets every message once, and the SUT sends no
    /notify for the room after the handoff and no mimi_hub proposal after the cut-over."""
    transfer_settings(sut, "old-hub")
    domain = sut.primary_domain
    kp_mark = ref_follower.traffic_mark()
    room, alice, (bob, carol) = _sut_room(sut_party, ref_follower, "bob", "carol")
    sentinel_room = sut_party.create_room(alice)
    sut_party.add_ok(sentinel_room, alice, bob)
    ref_follower.wait_epoch(sentinel_room, sut_party.room(sentinel_room)["epoch"],
                            what="bob to join the sentinel room")
    before = b"before the transfer " + room.encode()
    sut_party.send_ok(room, alice.client, before)
    ref_follower.wait_received(carol.client, before, room=room)
    marks = (ref_hub.traffic_mark(), ref_follower.traffic_mark())
    m1, m2 = b"m1 from alice in the window " + room.encode(), b"m2 from bob in the window " + room.encode()
    ref_hub.refuse_notifies([503], retry_after=str(LATE_201))
    # The first handoff is answered 503, the second refused in the body (wrongEpoch): either is a handoff that
    # failed, which the old hub retries (§11: "If the handoff fails, A retries it (byte-identical)").
    ref_hub.hold_transfer(refuse_handoffs={room: 1}, refuse_handoff_codes={room: ["wrongEpoch"]})
    try:
        started = _start(sut_party, room, alice)
        try:
            begun = poll_until(lambda: ((info := ref_follower.room(room)) is not None and info["hubGeneration"] >= 1)
                               or (_handoff_attempts(ref_hub, marks[0], room, domain) and "moved"),
                               what="the reference follower to process the begin commit")
        except PollTimeout as exc:
            blocked(FANOUT, f"the SUT never fanned out the begin commit to the reference follower (an active "
                    f"provider), so no message can be in flight at the cut-over: {exc}")
        if begun == "moved":  # the SUT handed the room over before the follower even had the begin commit
            seen, attempts = _observe(ref_hub, ref_follower, marks, room, domain)
            if not _judge_cutover_order(seen, _cutover_time(seen, attempts), ("target", "follower"), recorder):
                # The room left before the window this check builds its backlog in: the rest cannot be staged.
                fail("the SUT cut over before the begin commit was delivered, so no message could be in flight at "
                     "the cut-over", requirement=AFTER_DELIVERY)
        # At once (the target holds the cut-over back for LATE_201 s): the follower refuses the next
        # /notify, then a message from each side; the timing is verified from the logs afterwards.
        ref_follower.refuse_notifies([503], retry_after=str(BACKLOG_RETRY_AFTER))
        sut_party.send_ok(room, alice.client, m1)
        ref_follower.send_ok(room, bob.client, m2)
        try:
            poll_until(lambda: _handoff_attempts(ref_hub, marks[0], room, domain), timeout=LATE_201 + 10,
                       what="the SUT's handoff at the reference hub")
        except PollTimeout as exc:
            fail(f"after the cut-over the SUT sent no handoff to the new hub: {exc}", requirement=HANDOFF_SENT)
        observed(HANDOFF_SENT, f"the SUT sent {HUB} a handoff for the room after the cut-over")
        try:
            # §11 names no backoff schedule ("retries it [...] with backoff"): two retries get a minute.
            poll_until(lambda: any(_accepted(a) for a in _handoff_attempts(ref_hub, marks[0], room, domain)),
                       timeout=60, what="the SUT to retry the handoff the reference hub answered 503, then refused wrongEpoch, "
                       "and the retry accepted")
        except PollTimeout as exc:
            attempts = _handoff_attempts(ref_hub, marks[0], room, domain)
            fail(f"the handoff was never accepted after the reference hub answered it 503, then refused it wrongEpoch "
                 f"in the body: {len(attempts)} attempt(s), answered {[a.status for a in attempts]}: {exc}",
                 requirement=RETRY_IDENTICAL)
    finally:  # knobs and refusals left unused must not hit the next check
        ref_follower.refuse_notifies([])
        ref_hub.refuse_notifies([])
        ref_hub.hold_transfer(refuse_handoffs={}, refuse_handoff_codes={})

    # Each requirement below is judged on its own (miss() goes on) unless a later one needs what it saw.
    attempts = _handoff_attempts(ref_hub, marks[0], room, domain)
    accepted_at = next(a.time for a in attempts if _accepted(a))
    recorder.note(f"{len(attempts)} handoff attempt(s), answered {[a.status for a in attempts]}")
    different = [a.seq for a in attempts if a.request != attempts[0].request]
    if different:
        miss(RETRY_IDENTICAL, f"the SUT's handoff retries {different} differ from its first attempt "
             f"#{attempts[0].seq} ({[len(a.request) for a in attempts]} bytes)")
    elif len(attempts) >= 2:
        observed(RETRY_IDENTICAL, f"{len(attempts)} handoff attempts (answered {[a.status for a in attempts]}), "
                 f"all byte-identical ({len(attempts[0].request)} bytes)")

    # The cut-over waited for the target's (late) 201 to the begin commit, and the follower's.
    seen, all_attempts = _observe(ref_hub, ref_follower, marks, room, domain)
    _judge_cutover_order(seen, _cutover_time(seen, all_attempts), ("target", "follower"), recorder)
    # The suite's own timing: the follower's 503 hit Alice's message, sent while the begin epoch was current.
    e0 = _begin_epoch(seen)
    refused = [s for s in seen if s.where == "follower" and s.item.status == 503]
    if e0 is None or not refused or not _is_application(refused[0].fanout) \
            or refused[0].fanout.message.private_message.epoch != e0 + 1:
        raise HarnessError("the follower's refusal did not hit a message of the begin epoch, so no backlog formed "
                           f"(begin epoch {e0}, refused {[(s.item.seq, s.where) for s in refused]})")
    refused_first = refused[0]
    cutover_epoch = e0 + 2

    # Every message accepted up to the cut-over reaches the follower once (Carol receives all three).
    never = []
    for text in (before, m1, m2):
        try:
            ref_follower.wait_received(carol.client, text, room=room)
        except PollTimeout as exc:
            never.append(f"{text!r} ({exc})")
    try:
        poll_until(lambda: (info := ref_follower.room(room)) is not None and info["hubDomain"] == HUB,
                   what="the reference follower to process the cut-over commit")
    except PollTimeout as exc:  # the handoff's content is judged against the members' cut-over epoch: stop
        fail(f"the cut-over commit the SUT accepted never reached the reference follower: {exc}", requirement=INFLIGHT)
    got = ref_follower.received(carol.client, room)
    counts = {text: got.count(text) for text in (before, m1, m2)}
    if never:
        miss(INFLIGHT, f"carol never received {', '.join(never)}, accepted by the SUT before the cut-over")
    elif any(n != 1 for n in counts.values()):
        miss(INFLIGHT, f"carol received the messages accepted before the cut-over {list(counts.values())} times, "
             "not once each")
    else:
        observed(INFLIGHT, "carol received each of the 3 messages accepted before the cut-over once, and the "
                 "cut-over commit")

    # The handoff's content.
    with judging(INFLIGHT):  # the cut-over commit reached the follower: its members are at the cut-over epoch
        carol_state = _member_at(ref_follower, room, carol.client, cutover_epoch, poll_until)
    bob_sent = [SubmitMessageRequest.decode(t.request).appMessage.encode()
                for t in ref_follower.traffic(marks[1], endpoint="submitMessage", direction="out") if t.value == room]
    problems, undelivered = _handoff_problems(
        attempts[0], room, domain, started, carol_state, cutover_epoch, seen, refused_first, bob_sent,
        _claimed_key_packages(ref_follower, kp_mark, room, domain))
    recorder.note(f"handoff undelivered: {undelivered}")
    if problems:
        miss(HANDOFF_CONTENT, "the handoff does not carry what section 6.4 requires: " + "; ".join(problems))
    else:
        observed(HANDOFF_CONTENT, f"the handoff carries the verified GroupInfo and full tree of epoch {cutover_epoch}, "
                 f"the routes and the undelivered lists {undelivered}")

    # After the handoff, the SUT sends no /notify for the room: wait until its retry of the refused
    # message would have been due, then for a sentinel the SUT fans out (another room) behind it.
    with judging(STOPS_FANOUT):  # a wait on the clock
        _wait_until(poll_until, refused_first.time + BACKLOG_RETRY_AFTER + 0.5,
                    what="the follower's Retry-After for the refused message to run out")
    sentinel = b"sentinel " + sentinel_room.encode()
    sut_party.send_ok(sentinel_room, alice.client, sentinel)
    try:
        ref_follower.wait_received(bob.client, sentinel, room=sentinel_room,
                                   what="the SUT's sentinel message in another room to reach the follower")
    except PollTimeout as exc:
        blocked(FANOUT, f"the SUT's sentinel message in another room never reached the follower, so its silence "
                f"for the transferred room proves nothing: {exc}")
    late = [t for t in ref_follower.traffic(marks[1], endpoint="notify", direction="in", peer=domain)
            if t.value == room and t.time > accepted_at]
    if late:
        miss(STOPS_FANOUT, f"after the new hub accepted the handoff, the SUT sent {len(late)} /notify for the room "
             f"to the follower (#{[t.seq for t in late]}, answered {[t.status for t in late]})")
    else:
        observed(STOPS_FANOUT, "no /notify for the room after the handoff was accepted, up to the SUT's sentinel "
                 "in another room")

    # No mimi_hub update from the SUT after the cut-over, although the new hub refused its first handoff.
    seen = _all_fanouts(ref_hub, ref_follower, marks, room, domain)
    rollback = [(s.where, epoch, None if data is None else (_uri_domain(data.hub), data.generation))
                for s in seen for epoch, data in s.hub_updates() if epoch >= cutover_epoch]
    if rollback:
        miss(NO_ROLLBACK, f"after the cut-over (epoch {cutover_epoch}) the SUT proposed mimi_hub updates {rollback}")
    else:
        observed(NO_ROLLBACK, f"no mimi_hub proposal at or after the cut-over epoch {cutover_epoch} in "
                 f"{len(seen)} fan-outs, although {HUB} refused the first handoff")
    ambiguous_if_read_otherwise(AFTER_DELIVERY, "when the begin commit was answered 201 and the cut-over proposed")


def _handoff_problems(attempt, room, sut_domain, started, carol, cutover_epoch, seen, refused, bob_sent, claimed):
    """What the handoff gets wrong (section 6.4), and a summary of its undelivered lists."""
    problems: list[str] = []
    try:
        message = HubTransferMessage.decode(attempt.request)
    except (DecodeError, EncodeError) as exc:
        return [f"the handoff does not decode strictly: {exc}"], {}
    handoff = message.handoff
    c = handoff.content
    data = read_hub_data(carol.group.app_data(), room)
    if bytes(c.room_id.uri) != room.encode():
        problems.append(f"room_id {bytes(c.room_id.uri)!r}")
    if bytes(c.group_id) != bytes(carol.group.group_id):
        problems.append("group_id is not the room's group ID")
    if started.get("transferId") and bytes(c.transfer_id).hex() != started["transferId"]:
        problems.append(f"transfer_id {bytes(c.transfer_id).hex()} is not the started transfer's {started['transferId']}")
    if bytes(c.transfer_id) != bytes(data.last_transfer_id):
        problems.append("transfer_id is not the committed cut-over's last_transfer_id")
    if c.generation != data.generation:
        problems.append(f"generation {c.generation}, the committed cut-over component has {data.generation}")
    if c.cutover_epoch != cutover_epoch:
        problems.append(f"cutover_epoch {c.cutover_epoch}, the cut-over commit created epoch {cutover_epoch}")
    if _uri_domain(c.old_hub) != sut_domain or _uri_domain(c.new_hub) != HUB:
        problems.append(f"old_hub {bytes(c.old_hub.uri)!r} / new_hub {bytes(c.new_hub.uri)!r}")
    # GroupInfo and full tree of the cut-over epoch (signature and tree hash verified).
    view = None
    if c.ratchet_tree_option.representation != RatchetTreeRepresentation.full:
        problems.append(f"ratchet_tree_option is {c.ratchet_tree_option.representation.name}, not full")
    else:
        try:
            view = _handoff_view(handoff)
        except Exception as exc:  # noqa: BLE001 - any failure to verify is the finding
            problems.append(f"the GroupInfo and tree do not verify: {type(exc).__name__}: {exc}")
    if view is not None:
        if view.epoch != cutover_epoch or view.context.encode() != carol.group.context.encode():
            problems.append(f"the GroupInfo is of epoch {view.epoch}, not the cut-over epoch {cutover_epoch} the "
                            "members hold")
        keys = [bytes(s.signature_key) for s in view.external_senders() if sender_domain(s) == sut_domain]
        suite = cipher_suite(c.group_info.group_context.cipher_suite)
        if not any(verify_hub_handoff(suite, handoff, key) for key in keys):
            problems.append("the signature does not verify with the old hub's external_senders key")
    for pending in c.pending_proposals:
        pub = pending.proposal.public_message
        if pub is None or pub.content.content_type != ContentType.proposal or pub.content.epoch != cutover_epoch:
            problems.append("a pending proposal that is not a proposal of the cut-over epoch")
    # Routes: every KeyPackage the follower gave the SUT for this room, routed to the follower.
    routes = {bytes(r.kp_ref): _uri_domain(r.provider) for r in c.routes}
    missing = [ref.hex()[:16] for ref in claimed if routes.get(ref) != FOLLOWER]
    if missing:
        problems.append(f"routes lack (or misroute) the KeyPackageRefs claimed from {FOLLOWER}: {missing}")
    # Undelivered: exactly what the follower had not answered 201 when the SUT took its snapshot, in order.
    lists = {_uri_domain(u.destination): list(u.messages) for u in c.undelivered}
    summary = {d: [_describe(m) for m in msgs] for d, msgs in lists.items()}
    backlog = lists.get(FOLLOWER, [])
    delivered = {s.fanout.encode() for s in seen if s.where == "follower" and s.delivered and s.time < attempt.time}
    e0 = cutover_epoch - 2
    expected = [
        ("alice's refused message", lambda f: f.encode() == refused.fanout.encode()),
        ("bob's message", lambda f: f.message.encode() in bob_sent),
        ("the cut-over proposal", lambda f: _is_cutover_proposal(Seen(None, f, ""), e0)),
        ("the cut-over commit", lambda f: _commit_epoch(f) == e0 + 1),
    ]
    positions = []
    for what, match in expected:
        found = [i for i, f in enumerate(backlog) if match(f)]
        if len(found) != 1:
            problems.append(f"the follower's undelivered list holds {len(found)} copies of {what}, not 1")
        else:
            positions.append(found[0])
    if positions != sorted(positions):
        problems.append(f"the follower's undelivered list is not in fan-out order: {summary.get(FOLLOWER)}")
    extra = [_describe(f) for f in backlog if not any(match(f) for _, match in expected)]
    if extra:
        problems.append(f"the follower's undelivered list holds messages the follower was not missing: {extra}")
    again = [_describe(f) for f in backlog if f.encode() in delivered]
    if again:
        problems.append(f"the follower's undelivered list holds messages it had answered 201: {again}")
    stamps = [f.timestamp for msgs in lists.values() for f in msgs] + [
        s.fanout.timestamp for s in seen if s.time < attempt.time]  # what the SUT had accepted at its snapshot
    if stamps and c.last_accepted_timestamp < max(stamps):
        problems.append(f"last_accepted_timestamp {c.last_accepted_timestamp} is below the SUT's accepted "
                        f"timestamp {max(stamps)}")
    return problems, summary


def _describe(fanout: FanoutMessage) -> str:
    if _is_application(fanout):
        return f"application@{fanout.message.private_message.epoch}"
    if (epoch := _commit_epoch(fanout)) is not None:
        return f"commit@{epoch}"
    pub = fanout.message.public_message
    if pub is not None:
        return f"proposal@{pub.content.epoch}"
    return str(fanout.message.wire_format.name)


# -- what the old hub answers afterwards -------------------------------------------------------------


@pytest.mark.requirements(REDIRECT, REDIRECT_SHAPE, NO_ACCEPT, REQUEST_REFUSED)
@pytest.mark.role("hub")
@pytest.mark.feature(FEATURE)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "startHubTransfer")
def test_old_hub_redirects_every_room_request_after_the_cutover(sut, sut_party, ref_follower, mimi_as, poll_until,
                                                                recorder):
    """After the cut-over, the reference follower sends the SUT submitMessage and update for the cut-over
    epoch and for an epoch before the transfer, groupInfo and a hubTransfer request for the room: each is
    answered 421 with a HubRedirect naming the new hub, the cut-over generation and epoch, none accepted.

    The hubTransfer request (signed by bob, an admin, for a transfer to the reference follower) is a refused
    request: section 8.1 "A hubTransfer request for the room is answered notHub", and EXT-HUBXFER-REQUEST-REFUSED
    "MUST change nothing: no prepare is sent". Which refusal code it carries is not judged here, only that the
    reference follower (the target it names) received no prepare from the SUT for the room."""
    transfer_settings(sut, "old-hub")
    room, alice, (bob,) = _sut_room(sut_party, ref_follower, "bob", admins=("bob",))
    try:  # _sut_room waited for this epoch already
        old = _member_at(ref_follower, room, bob.client, sut_party.room(room)["epoch"], poll_until)
    except PollTimeout as exc:
        raise HarnessError(f"bob's client does not hold the room's current epoch: {exc}") from None
    _start(sut_party, room, alice)
    try:  # the SUT's own view first (getRoom, section 17): it has accepted the cut-over commit
        poll_until(lambda: (info := sut_party.room(room)) is not None and info["hubDomain"] == HUB,
                   what="the SUT to accept the cut-over commit")
        poll_until(lambda: (info := ref_follower.room(room)) is not None and info["hubDomain"] == HUB,
                   what="the reference follower to process the cut-over commit")
    except PollTimeout as exc:  # the transfer itself is judged by the other checks: here it is a precondition
        raise HarnessError(f"the transfer did not complete, so the redirect cannot be checked: {exc}") from None
    now = ref_follower.member_state(room, bob.client)
    data = read_hub_data(now.group.app_data(), room)
    if data.state != HubState.stable or _uri_domain(data.hub) != HUB:
        raise HarnessError(f"bob's client does not hold the committed cut-over: {data}")
    recorder.note(f"cut-over epoch {now.epoch}, generation {data.generation}; an old epoch: {old.epoch}")
    _, hpke_pub = cipher_suite(now.suite_id).generate_hpke_key_pair()
    request = HubTransferRequestTBS(
        room_id=IdentifierUri(uri=room.encode()), group_id=bytes(now.group.group_id), target=provider_uri(FOLLOWER),
        generation=data.generation, not_after=int(time.time() * 1000) + 60_000,
        initiator=IdentifierUri(uri=bob.uri.encode()), initiator_leaf_index=now.group.own_leaf,
    )
    transfer_request = HubTransferMessage(
        msg_type=HubTransferMessageType.request,
        request=sign_hub_transfer_request(cipher_suite(now.suite_id), now.signature_priv, request),
    )
    requests = [
        ("submitMessage", f"submitMessage of the cut-over epoch {now.epoch}", now.send(b"after the cut-over")),
        ("submitMessage", f"submitMessage of epoch {old.epoch}", old.send(b"from before the transfer")),
        ("update", f"update (commit) of the cut-over epoch {now.epoch}", now.commit([], include_cached=False).request),
        ("update", f"update (commit) of epoch {old.epoch}", old.commit([], include_cached=False).request),
        ("groupInfo", "groupInfo", now.group_info_request(hpke_pub).encode()),
        ("hubTransfer", "hubTransfer request", transfer_request.encode()),
    ]
    accepted, not_redirected, misshapen = [], [], []
    follower_mark = ref_follower.traffic_mark()
    for endpoint, label, body in requests:
        reply = _post(mimi_as, sut, endpoint, room, body)
        ctype = reply.headers.get("content-type")
        recorder.note(f"{label}: HTTP {reply.status} {ctype}")
        if _request_accepted(endpoint, reply):
            accepted.append(label)
        if endpoint == "hubTransfer":  # section 8.1 answers it notHub; only "never accepted" is a requirement
            continue
        if reply.status != 421:
            not_redirected.append(f"{label}: HTTP {reply.status}")
            continue
        problem = _redirect_problem(ctype, reply.body, room, data.generation, now.epoch)
        if problem:
            misshapen.append(f"{label}: {problem}")
    redirected = len(requests) - 1 - len(not_redirected)  # the hubTransfer request is not judged for the redirect
    # The request's answer comes after any prepare the SUT sent (a hub answers a request once its prepare is
    # answered), so the reference follower's record is complete here.
    prepares = [item for item in ref_follower.traffic(follower_mark, endpoint="hubTransfer", direction="in",
                                                      peer=sut.primary_domain) if item.value == room]
    recorder.note(f"hubTransfer messages the SUT sent the reference follower for the room: {len(prepares)}")
    if prepares:
        miss(REQUEST_REFUSED, f"after the cut-over the SUT took up a hubTransfer request for the room: it sent the "
             f"reference follower (the request's target) {len(prepares)} hubTransfer message(s) instead of refusing "
             "it with nothing sent")
    else:
        observed(REQUEST_REFUSED, "the hubTransfer request after the cut-over sent the target no prepare")
    if accepted:
        miss(NO_ACCEPT, f"after the cut-over the SUT accepted {accepted} for the room")
    else:
        observed(NO_ACCEPT, f"none of the {len(requests)} requests for the room was accepted after the cut-over")
    if not_redirected:
        miss(REDIRECT, f"after the cut-over the SUT answered {not_redirected}, not 421 with a HubRedirect")
    else:
        observed(REDIRECT, f"all {redirected} update/submitMessage/groupInfo requests answered 421")
    if misshapen:
        miss(REDIRECT_SHAPE, "the SUT's 421 answers are not the HubRedirect section 3.4 defines: " + "; ".join(misshapen))
    elif redirected:
        observed(REDIRECT_SHAPE, f"{redirected} HubRedirect bodies name the room, {HUB}, generation {data.generation} "
                 f"and epoch {now.epoch}")
    else:
        not_applicable("the SUT answered no request 421, so there is no HubRedirect to inspect",
                       requirement=REDIRECT_SHAPE)


def _request_accepted(endpoint: str, reply) -> bool:
    """Whether a room request was answered as accepted (200 with a success code)."""
    if reply.status not in (200, 201):
        return False
    try:
        if endpoint == "update":
            return UpdateRoomResponse.decode(reply.body).responseCode == UpdateResponseCode.success
        if endpoint == "submitMessage":
            return SubmitMessageResponse.decode(reply.body).statusCode == SubmitResponseCode.accepted
        if endpoint == "groupInfo":
            return GroupInfoResponse.decode(reply.body).status == GroupInfoCode.success
        if endpoint == "hubTransfer":
            return HubTransferResponse.decode(reply.body).code.name == "accepted"
    except (DecodeError, EncodeError, AttributeError):
        return False
    return False


def _redirect_problem(content_type: str | None, body: bytes, room: str, generation: int, epoch: int) -> str:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != HUB_REDIRECT_MEDIA_TYPE:
        return f"Content-Type {content_type!r}, not {HUB_REDIRECT_MEDIA_TYPE}"
    try:
        redirect = HubRedirect.decode(body)
    except (DecodeError, EncodeError) as exc:
        return f"the body does not decode strictly as HubRedirect: {exc}"
    wrong = []
    if bytes(redirect.room_id.uri) != room.encode():
        wrong.append(f"room_id {bytes(redirect.room_id.uri)!r}")
    if bytes(redirect.hub.uri) != bytes(provider_uri(HUB).uri):
        wrong.append(f"hub {bytes(redirect.hub.uri)!r}, not mimi://{HUB}")
    if redirect.generation != generation:
        wrong.append(f"generation {redirect.generation}, not the cut-over generation {generation}")
    if redirect.epoch != epoch:
        wrong.append(f"epoch {redirect.epoch}, not the cut-over epoch {epoch}")
    return ", ".join(wrong)
