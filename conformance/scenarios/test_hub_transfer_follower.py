"""Hub transfer, the SUT as follower of a room whose hub moves (docs/extensions/hub-transfer.md §5.1,
§7, §9, §10; test plan rows "followers switch", "in flight" and "follower-initiated").

The room lives on the reference hub (hub.ref.test, hub-k.ref.test on worker k; old hub A); its creator,
a reference-hub user, is an admin and starts the transfer to the reference follower (follower.ref.test,
new hub B), which is only the target (it has no member in the room). The SUT has a member, Sam. What is
judged is what the SUT sends the two reference hubs (their traffic logs), what it answers their /notify
(and /notify the suite sends as A, B or a third provider with ``mimi_as``), and getRoom's hubDomain /
hubGeneration / hubState, the contract's view of a follower's hub-of-record (§17).

The suite's reference peers have knobs for this (``Party.hold_transfer``): the initiator's client can
leave the cut-over proposal uncommitted (a window held open), the old hub can hold its handoff back
(the new hub then answers 503), and a reference peer can withhold its /notify to the SUT (kept pending,
in order), so that the SUT is still at the begin epoch, with A as hub-of-record, when A already
redirects: the only way a conforming follower meets a HubRedirect (§7 "Redirects are hints").

Every knob is process-wide: the ``transfer_knobs`` fixture restores them after each check.

EXT-HUBXFER-NEWCOMER-DISCOVERY has no check here: it needs a control-API operation by which the SUT
joins a room knowing only its ID (the contract has none; addClient's joinRooms re-joins rooms the user
is in, whose hub-of-record the SUT already knows).
"""

from __future__ import annotations

import base64
import threading
import time
from urllib.parse import urlsplit

import pytest

from conformance.harness.polling import PollTimeout
from conformance.harness.reference_names import current
from conformance.scenarios.hub_transfer_support import transfer_settings
from conformance.scenarios.notify_bodies import notify_status_reading
from conformance.verdicts import HarnessError, ambiguous, expect, fail, observed
from reference_peer.mls import cipher_suite, leaf_app_components
from reference_peer.mls.group import decode_message
from reference_peer.room.transfer_settings import HubTransferSettings
from reference_peer.wire.codec import DecodeError, EncodeError
from reference_peer.wire.hub_transfer import (
    MIMI_HUB_COMPONENT_ID,
    HubTransferMessage,
    HubTransferMessageType,
    verify_hub_transfer_request,
)
from reference_peer.wire.mimi import (
    FanoutMessage,
    Protocol,
    SubmitMessageRequest,
    UpdateRequest,
    decode_fanout_sequence_tolerant,
)
from reference_peer.wire.mls import ContentType, ProposalType

MLS10 = {"protocol": Protocol.mls10}
# This worker's reference domains (hub-k.ref.test on worker k): the plugin fixes them before import.
OLD_HUB, NEW_HUB = current()
STRANGER = "stranger.ref.test"  # a provider that is neither hub nor target of the room
ADMIN, MEMBER = 3, 2
ALL_COMMITS = ["begin", "cutover", "abort"]
ROOM_ENDPOINTS = ("update", "submitMessage", "groupInfo", "keyMaterial", "reportAbuse")

SENDS_REQUEST = "EXT-HUBXFER-FOLLOWER-SENDS-REQUEST"
HUB_FROM_COMPONENT = "EXT-HUBXFER-FOLLOWER-HUB-FROM-COMPONENT"
RETARGET = "EXT-HUBXFER-FOLLOWER-RETARGET"
ACCEPT_TARGET = "EXT-HUBXFER-FOLLOWER-ACCEPT-TARGET"
STALE_NOTIFY = "EXT-HUBXFER-FOLLOWER-STALE-NOTIFY"
REDIRECT_NOT_AUTHORITY = "EXT-HUBXFER-FOLLOWER-REDIRECT-NOT-AUTHORITY"
REDIRECT_RESEND = "EXT-HUBXFER-FOLLOWER-REDIRECT-RESEND"
RETRY_503 = "EXT-HUBXFER-FOLLOWER-503-RETRY"
DEDUP = "EXT-HUBXFER-FOLLOWER-DEDUP"
REFUSED_NOT_SENT = "EXT-HUBXFER-FOLLOWER-REFUSED-NOT-SENT"
NO_REINIT = "EXT-HUBXFER-NO-REINIT"
CLIENTS_LIST_HUB = "EXT-HUBXFER-FOLLOWER-CLIENTS-LIST-HUB"
NOTIFY_201 = "PROTO-FANOUT-NOTIFY-201"



# -- helpers ---------------------------------------------------------------------------------------


@pytest.fixture
def transfer_knobs(ref_hub, ref_follower):
    """The reference peers' transfer knobs, put back to their defaults after the check."""
    try:
        yield
    finally:
        for party in (ref_hub, ref_follower):
            party.hold_transfer(autocommit=ALL_COMMITS, hold_handoff=False, withhold_notify_to=[],
                                retry_503_seconds=HubTransferSettings().retry_503_seconds)


def _authority(sut) -> str:
    return urlsplit(sut.base_urls[sut.primary_domain]).netloc


def _room(ref_hub, sut_party, *, role: int = MEMBER):
    """A room on the reference hub: its creator (admin, holds canTransferHub) and Sam, a SUT user."""
    creator = ref_hub.create_user("creator")
    room = ref_hub.create_room(creator)
    sam = sut_party.create_user("sam")
    ref_hub.add_ok(room, creator, sam, role=role)
    sut_party.wait_epoch(room, ref_hub.room(room)["epoch"], what="the SUT's user to join the room (Welcome)")
    return room, creator, sam


def _outgoing(ref_hub, room: str) -> dict:
    return ref_hub.hub_transfer_state()["outgoing"].get(room) or {}


def _incoming(ref_follower, room: str) -> dict:
    return ref_follower.hub_transfer_state()["incoming"].get(room) or {}


def _start(ref_hub, room: str, creator) -> None:
    result = ref_hub.start_hub_transfer(room, creator, NEW_HUB)
    if result.get("outcome") != "started":
        raise HarnessError(f"the reference hub did not start the transfer to {NEW_HUB}: {result}")


def _move(ref_hub, ref_follower, room: str, creator, poll_until) -> int:
    """The reference hub moves the room to the reference follower; returns the cut-over epoch once the
    new hub has taken over."""
    _start(ref_hub, room, creator)
    poll_until(lambda: _incoming(ref_follower, room).get("state") == "handed-over", timeout=20,
               what=f"{NEW_HUB} to take the room over (handoff accepted)")
    return int(_outgoing(ref_hub, room)["cutoverEpoch"])


def _sut_in(party, after: int, sut_party, room: str, endpoints=ROOM_ENDPOINTS):
    """The room requests the SUT sent ``party`` (a reference peer) since ``after``."""
    return [t for t in party.traffic(after, direction="in", peer=sut_party.domain)
            if t.endpoint in endpoints and (t.value == room or t.endpoint == "keyMaterial")]


def _submits(party, after: int, sut_party, room: str):
    return [t for t in _sut_in(party, after, sut_party, room, ("submitMessage",))]


def _application(member, text: bytes) -> bytes:
    """A FanoutMessage of ``text`` sent by the reference ``member`` in its current epoch (its copy)."""
    message = member.group.protect(text)
    return FanoutMessage(timestamp=int(time.time() * 1000), protocol=Protocol.mls10,
                         message=decode_message(message), frank=None).encode()


def _notify_as(mimi_as, sut, domain: str, room: str, body: bytes) -> int:
    session = mimi_as(domain)
    return session.run(session.client.call(_authority(sut), "notify", room, body)).status


def _synced(party, room: str, client: str, epoch: int, poll_until):
    return poll_until(lambda: (m := party.member_state(room, client)).epoch >= epoch and m,
                      what=f"{client} at {party.name} to reach epoch {epoch}")


def _wait_or_fail(poll_until, predicate, *, what: str, message: str, requirement: str, timeout: float | None = None):
    try:
        return poll_until(predicate, timeout=timeout, what=what)
    except PollTimeout:
        fail(message, requirement=requirement)


def _hub_view(sut_party, room: str) -> tuple[str, int, dict]:
    info = sut_party.room(room) or {}
    return info.get("hubDomain"), info.get("hubGeneration"), info.get("hubState") or {}


class _Background:
    """A control call made on a thread (it may block while the SUT waits on a redirect or a 503)."""

    def __init__(self, function) -> None:
        self.result = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(function,), daemon=True)
        self._thread.start()

    def _run(self, function) -> None:
        try:
            self.result = function()
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.error = exc

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise HarnessError(f"a control call on the SUT did not return within {timeout:g} s")


def _send_in_background(sut_party, room: str, client: str, text: bytes) -> _Background:
    body = {"from": client, "content": {"base64": base64.b64encode(text).decode()}}
    return _Background(lambda: sut_party.control.call("sendMessage", {"room": room}, body=body, timeout=45).body)


def _reinit_proposals(body: bytes) -> int:
    """How many ReInit proposals an UpdateRequest body carries (by value, in proposals or a commit)."""
    try:
        request = UpdateRequest.decode(body)
    except (DecodeError, EncodeError):
        return 0
    bundle = request.bundle
    count = 0
    for message in [bundle.proposalOrCommit, *(bundle.moreProposals or [])]:
        public = message.public_message
        if public is None:
            continue
        content = public.content
        if content.content_type == ContentType.proposal and content.proposal.proposal_type == ProposalType.reinit:
            count += 1
        elif content.content_type == ContentType.commit:
            count += sum(1 for p in content.commit.proposals
                         if p.proposal is not None and p.proposal.proposal_type == ProposalType.reinit)
    return count


# -- §5.1 the follower-initiated request -------------------------------------------------------------


@pytest.mark.requirements(SENDS_REQUEST)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom", "startHubTransfer")
def test_follower_sends_its_users_transfer_request_to_the_hub(sut, sut_party, ref_hub, poll_until, recorder):
    """startHubTransfer for a SUT user holding canTransferHub in a room on the reference hub makes the
    SUT send a HubTransferMessage.request, signed with that user's leaf key, to the hub's hubTransfer
    endpoint."""
    transfer_settings(sut, "follower")
    room, _creator, sam = _room(ref_hub, sut_party, role=ADMIN)
    tree = ref_hub.hub_state(room).view.tree
    mark = ref_hub.traffic_mark()
    result = sut_party.start_hub_transfer(room, sam, NEW_HUB)
    recorder.note(f"startHubTransfer on the SUT: {result}")

    def arrived():
        return [t for t in ref_hub.traffic(mark, endpoint="hubTransfer", direction="in") if t.value == room]

    requests = _wait_or_fail(
        poll_until, arrived, what=f"the SUT's hubTransfer request at the room's hub ({OLD_HUB})",
        message=f"after startHubTransfer (answered {result}), no hubTransfer request for the room reached its "
        f"hub-of-record {OLD_HUB}", requirement=SENDS_REQUEST)
    item = requests[0]
    if item.peer != sut_party.domain:
        fail(f"the hubTransfer request came from {item.peer}, not the SUT's domain {sut_party.domain}",
             requirement=SENDS_REQUEST)
    try:
        message = HubTransferMessage.decode(item.request)
    except (DecodeError, EncodeError) as exc:
        fail(f"the SUT's hubTransfer body does not decode as a HubTransferMessage: {exc}", requirement=SENDS_REQUEST)
    if message.msg_type != HubTransferMessageType.request:
        fail(f"the SUT sent a HubTransferMessage of type {message.msg_type.name}, not request",
             requirement=SENDS_REQUEST)
    content = message.request.content
    problems = []
    if bytes(content.room_id.uri) != room.encode():
        problems.append(f"room_id {bytes(content.room_id.uri)!r}")
    if bytes(content.initiator.uri) != sam.uri.encode():
        problems.append(f"initiator {bytes(content.initiator.uri)!r}, not {sam.uri}")
    if bytes(content.target.uri) != f"mimi://{NEW_HUB}".encode():
        problems.append(f"target {bytes(content.target.uri)!r}, not mimi://{NEW_HUB}")
    leaf = tree.leaf(content.initiator_leaf_index)
    if leaf is None or bytes(leaf.credential.identity) not in {c.encode() for c in sam.clients}:
        problems.append(f"initiator_leaf_index {content.initiator_leaf_index} is not a leaf of {sam.uri}'s client")
    elif not verify_hub_transfer_request(cipher_suite(1), message.request, bytes(leaf.signature_key)):
        problems.append("the signature does not verify with that leaf's signature key")
    expect(SENDS_REQUEST, not problems,
           "the SUT's HubTransferRequest is not the user's signed request for this transfer: " + "; ".join(problems),
           evidence=f"a HubTransferMessage.request from {item.peer} at {OLD_HUB}'s hubTransfer, signed with "
           f"{sam.uri}'s leaf key")


# -- §5.1 the follower's clients support mimi_hub -----------------------------------------------------


def _declared_component_ids(sut) -> set[int]:
    """mimi_hub's ID in either width (3.2): 0xF0A9, and the manifest's component_id when it declares one."""
    ids = {MIMI_HUB_COMPONENT_ID}
    declared = (sut.manifest.hub_transfer or {}).get("component_id")
    try:
        ids.add(int(str(declared), 0))
    except ValueError:
        pass
    return ids


@pytest.mark.requirements(CLIENTS_LIST_HUB)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom")
def test_follower_clients_list_the_hub_component(sut, sut_party, ref_hub, recorder):
    """A SUT user's client that joined a room on the reference hub has, in the tree the hub holds, a LeafNode
    listing mimi_hub in its app_components. Section 5.1: the hub refuses "`notAllowed` when a member's
    LeafNode does not list `mimi_hub` in its `app_components` (that member could not process the commits)",
    and section 4.2's validity rules are "applied by every client"; a follower whose clients do not list it
    makes every transfer of its rooms refused. Other components listed besides it are not judged."""
    transfer_settings(sut, "follower")
    room, creator, sam = _room(ref_hub, sut_party)
    wanted = _declared_component_ids(sut)
    tree = ref_hub.hub_state(room).view.tree
    # The room's members are the creator's client (the reference hub's) and the SUT's: every other leaf is the
    # SUT's, whatever its credential type.
    mine = {f"leaf {i} ({bytes(getattr(leaf.credential, 'identity', None) or b'').decode('utf-8', 'replace')})": leaf
            for i, leaf in tree.leaves()
            if bytes(getattr(leaf.credential, "identity", None) or b"").decode("utf-8", "replace") not in creator.clients}
    if not mine:
        raise HarnessError(f"the reference hub's tree holds no leaf of {sam.uri}'s clients {list(sam.clients)} "
                           "after the SUT reached the room's epoch")
    listed = {client: leaf_app_components(leaf) for client, leaf in mine.items()}
    recorder.note(f"app_components of the SUT's leaves at {OLD_HUB}: {listed}")
    lacking = {client: ids for client, ids in listed.items() if not wanted & set(ids or ())}
    if max(wanted) > 0xFFFF and any(ids is None for ids in lacking.values()):
        ambiguous("AMB-MLS-EXT-CODEPOINTS", f"the SUT declares the 32-bit ComponentID {hex(max(wanted))}, and the "
                  f"app_data_dictionary of its LeafNode(s) {[c for c, i in lacking.items() if i is None]} does not "
                  "decode with the uint16 ComponentID the suite reads", requirement=CLIENTS_LIST_HUB)
    expect(CLIENTS_LIST_HUB, not lacking,
           "the LeafNode of the SUT's client(s) " + "; ".join(
               f"{client} lists {'no app_components' if ids is None else [hex(i) for i in ids]}"
               for client, ids in lacking.items()) + " without mimi_hub (0xF0A9): a hub must refuse every transfer "
           "of a room they are in (section 5.1)",
           evidence=f"the LeafNode of {', '.join(mine)} lists mimi_hub in its app_components")


# -- §7 hub-of-record, re-targeting, accepting the target ----------------------------------------


@pytest.mark.requirements(HUB_FROM_COMPONENT)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom", "sendMessage")
def test_follower_takes_the_hub_from_the_committed_component(sut, sut_party, ref_hub, ref_follower, poll_until):
    """After the room moves from hub.ref.test (its ID's authority) to follower.ref.test, the SUT's
    hub-of-record is the hub of the committed component (getRoom hubDomain, hubGeneration 2, stable),
    and a message it sends is accepted there."""
    transfer_settings(sut, "follower")
    room, creator, sam = _room(ref_hub, sut_party)
    domain, generation, _ = _hub_view(sut_party, room)
    if domain != OLD_HUB or generation != 0:
        fail(f"before any transfer getRoom says hubDomain {domain!r}, hubGeneration {generation!r}; the room's "
             f"component names {OLD_HUB} with generation 0", requirement=HUB_FROM_COMPONENT)
    _move(ref_hub, ref_follower, room, creator, poll_until)
    try:
        poll_until(lambda: _hub_view(sut_party, room)[0] == NEW_HUB, what=f"the SUT's getRoom hubDomain to become {NEW_HUB}")
    except PollTimeout:
        fail(f"the room's committed component names {NEW_HUB} (the handoff is done) but the SUT's getRoom keeps "
             f"hubDomain {_hub_view(sut_party, room)[0]!r} (the room ID's authority is {OLD_HUB})",
             requirement=HUB_FROM_COMPONENT)
    domain, generation, state = _hub_view(sut_party, room)
    if generation != 2 or state.get("state") != "stable":
        fail(f"after the cut-over getRoom says hubGeneration {generation!r}, hubState {state!r}; the committed "
             "component has generation 2, state stable", requirement=HUB_FROM_COMPONENT)
    mark = ref_follower.traffic_mark()
    text = b"to the hub of the component " + room.encode()
    sut_party.send(room, sam.client, text)
    _wait_or_fail(poll_until, lambda: text in ref_hub.received(creator.client, room),
                  what="the SUT's message at the creator (through the new hub)",
                  message="a message the SUT sent after the cut-over never reached the room's members",
                  requirement=HUB_FROM_COMPONENT)
    expect(HUB_FROM_COMPONENT, _submits(ref_follower, mark, sut_party, room),
           f"the SUT's message was delivered, but not through a submitMessage to {NEW_HUB}",
           evidence=f"getRoom hub {OLD_HUB} (generation 0), then {NEW_HUB} (generation 2, stable) after the cut-over; "
           f"a message submitted to {NEW_HUB}")


@pytest.mark.requirements(RETARGET)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom", "sendMessage", "addParticipant")
def test_follower_sends_room_requests_to_the_new_hub(sut, sut_party, ref_hub, ref_follower, poll_until, recorder):
    """Once the SUT has the cut-over commit, its room requests (submitMessage, and keyMaterial and update to
    add a participant) go to the new hub, none to the old hub."""
    transfer_settings(sut, "follower")
    room, creator, sam = _room(ref_hub, sut_party, role=ADMIN)
    cutover = _move(ref_hub, ref_follower, room, creator, poll_until)
    sut_party.wait_epoch(room, cutover, what="the SUT to process the cut-over commit")
    mark_old, mark_new = ref_hub.traffic_mark(), ref_follower.traffic_mark()
    text = b"after the cut-over " + room.encode()
    sut_party.send(room, sam.client, text)
    xavier = ref_follower.create_user("xavier")
    added = sut_party.add(room, sam, xavier)
    recorder.note(f"Sam adds xavier after the cut-over: {added}")
    _wait_or_fail(poll_until, lambda: text in ref_hub.received(creator.client, room),
                  what="the SUT's message at the creator", requirement=RETARGET,
                  message="a message the SUT sent after processing the cut-over commit never reached the members")
    to_old = _sut_in(ref_hub, mark_old, sut_party, room)
    if to_old:
        fail(f"after processing the cut-over commit the SUT still sent {[t.endpoint for t in to_old]} for the room "
             f"to the old hub {OLD_HUB} (answered {[t.status for t in to_old]})", requirement=RETARGET)
    to_new = {t.endpoint for t in _sut_in(ref_follower, mark_new, sut_party, room)}
    expected = {"submitMessage"} | ({"update"} if added.get("outcome") == "accepted" else set())
    expect(RETARGET, expected <= to_new,
           f"the new hub {NEW_HUB} received {sorted(to_new)} from the SUT, not {sorted(expected)}",
           evidence=f"{sorted(to_new)} to {NEW_HUB}, nothing for the room to {OLD_HUB}")


@pytest.mark.requirements(ACCEPT_TARGET)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom", "listReceivedMessages")
def test_follower_accepts_notify_from_the_target_during_the_window(sut, sut_party, ref_hub, ref_follower, mimi_as,
                                                                    transfer_knobs, poll_until):
    """Once the begin commit names follower.ref.test as target, the SUT answers its /notify for the room 201
    and delivers the message (the cut-over is held back: the window stays open)."""
    transfer_settings(sut, "follower")
    room, creator, sam = _room(ref_hub, sut_party)
    ref_hub.hold_transfer(autocommit=["begin", "abort"])
    _start(ref_hub, room, creator)
    poll_until(lambda: _outgoing(ref_hub, room).get("phase") == "cutover-proposed",
               what="the begin commit delivered everywhere and the cut-over proposed (not committed)")
    epoch = ref_hub.room(room)["epoch"]
    sut_party.wait_epoch(room, epoch, what="the SUT to process the begin commit")
    member = _synced(ref_hub, room, creator.client, epoch, poll_until)
    text = b"from the target " + room.encode()
    status = _notify_as(mimi_as, sut, NEW_HUB, room, _application(member, text))
    if status != 201:
        fail(f"the SUT answered HTTP {status}, not 201, to /notify from {NEW_HUB}, the target its committed "
             "mimi_hub component names", requirement=ACCEPT_TARGET)
    _wait_or_fail(poll_until, lambda: text in sut_party.received(sam.client, room),
                  what="the target's message at the SUT's client", requirement=ACCEPT_TARGET,
                  message="the SUT answered the target's /notify 201 but its client never got the message")
    observed(ACCEPT_TARGET, f"/notify from the target {NEW_HUB} in the window answered 201, the message delivered")


@pytest.mark.requirements(STALE_NOTIFY)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom")
def test_follower_refuses_notify_from_the_old_hub_after_the_cutover_epoch(sut, sut_party, ref_hub, ref_follower,
                                                                           mimi_as, poll_until):
    """After the transfer and one more commit, /notify for the room from the old hub with a message of the
    new epoch, and from a provider that is neither hub nor target, is not answered 201."""
    transfer_settings(sut, "follower")
    room, creator, sam = _room(ref_hub, sut_party)
    cutover = _move(ref_hub, ref_follower, room, creator, poll_until)
    # The new hub's proposal removing the old hub's external_senders entry is required in the next commit: the
    # creator's client must hold it before committing the add (a set-up wait, not judged).
    poll_until(lambda: (m := ref_hub.member_state(room, creator.client)).epoch > cutover or m.group.proposal_cache,
               what="the new hub's external_senders proposal at the creator's client")
    ref_hub.add_ok(room, creator, ref_follower.create_user("xavier"))  # a commit sequenced by the new hub
    member = _synced(ref_hub, room, creator.client, cutover + 1, poll_until)
    epoch = member.epoch
    sut_party.wait_epoch(room, epoch, what="the SUT to process the first commit after the cut-over")
    for domain, who in ((OLD_HUB, f"the old hub, with a message of epoch {epoch} (cut-over epoch {cutover})"),
                        (STRANGER, "a provider that is neither the room's hub nor its target")):
        text = f"stale from {domain} ".encode() + room.encode()
        status = _notify_as(mimi_as, sut, domain, room, _application(member, text))
        if status == 201:
            fail(f"the SUT answered 201 to /notify for the room from {domain}, {who}", requirement=STALE_NOTIFY)
        observed(STALE_NOTIFY, f"/notify from {domain} ({who}) answered HTTP {status}")


@pytest.mark.requirements(STALE_NOTIFY)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations()
def test_follower_refuses_notify_from_a_stranger_for_a_room_it_does_not_hold(sut, ref_hub, mimi_as, poll_until):
    """Extension §7: the follower accepts /notify for the room "from the hub-of-record and from the target
    named in the committed component ... It SHOULD refuse (403) /notify for the room from any other
    provider". For a room the SUT holds no state of, no component names a hub or target, and a provider that
    is not the room ID's authority sends an application message (not a Welcome, by which a moved room's
    new hub may reach a newcomer, §13; that is not judged): any answer but 201 is a refusal."""
    transfer_settings(sut, "follower")
    creator = ref_hub.create_user("creator")
    room = ref_hub.create_room(creator)
    member = _synced(ref_hub, room, creator.client, ref_hub.room(room)["epoch"], poll_until)
    body = _application(member, b"from a stranger " + room.encode())
    status = _notify_as(mimi_as, sut, STRANGER, room, body)
    if status == 201:
        fail(f"the SUT answered 201 to /notify from {STRANGER} (neither the authority {OLD_HUB} of the room ID nor a "
             "hub or target any committed component names) for a room it holds no state of, carrying an "
             "application message", requirement=STALE_NOTIFY)
    observed(STALE_NOTIFY, f"/notify from {STRANGER} with an application message for a room the SUT holds no state "
             f"of answered HTTP {status}")


# -- §7 redirects and 503 ------------------------------------------------------------------------


def _redirect_window(sut_party, ref_hub, ref_follower, poll_until):
    """A room moved to the new hub while both reference hubs withhold their /notify from the SUT: the SUT
    is left at the begin epoch with the old hub as hub-of-record, which already redirects."""
    room, creator, sam = _room(ref_hub, sut_party)
    ref_hub.hold_transfer(autocommit=["begin", "abort"])
    _start(ref_hub, room, creator)
    poll_until(lambda: _outgoing(ref_hub, room).get("phase") == "cutover-proposed",
               what="the begin commit delivered everywhere and the cut-over proposed (not committed)")
    for party in (ref_hub, ref_follower):
        party.hold_transfer(withhold_notify_to=[sut_party.domain])
    ref_hub.hold_transfer(autocommit=ALL_COMMITS)
    ref_hub.send_ok(room, creator.client, b"the creator's client now commits the cut-over")
    poll_until(lambda: _incoming(ref_follower, room).get("state") == "handed-over", timeout=20,
               what=f"the cut-over and {NEW_HUB} taking the room over")
    return room, creator, sam


def _release(ref_hub, ref_follower) -> None:
    for party in (ref_hub, ref_follower):
        party.hold_transfer(withhold_notify_to=[])


def _redirected_submit(ref_hub, sut_party, room: str, mark: int, poll_until):
    """The SUT's submitMessage the old hub answered 421 (a precondition of the redirect checks)."""
    try:
        return poll_until(lambda: [t for t in _submits(ref_hub, mark, sut_party, room) if t.status == 421],
                          what="the SUT's submitMessage at the old hub, answered 421")[0]
    except PollTimeout:
        raise HarnessError(f"the SUT, still at the begin epoch with {OLD_HUB} as hub-of-record, sent no "
                           "submitMessage there, so no redirect could be observed") from None


@pytest.mark.requirements(REDIRECT_NOT_AUTHORITY)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom", "sendMessage")
def test_redirect_does_not_change_the_hub_of_record(sut, sut_party, ref_hub, ref_follower, transfer_knobs,
                                                    poll_until, recorder):
    """A 421 HubRedirect naming the new hub, before the SUT has the cut-over commit, leaves its hub-of-record
    (getRoom hubDomain, hubGeneration, hubState) as the committed component says."""
    transfer_settings(sut, "follower")
    room, _creator, sam = _redirect_window(sut_party, ref_hub, ref_follower, poll_until)
    mark_old, mark_new = ref_hub.traffic_mark(), ref_follower.traffic_mark()
    sending = _send_in_background(sut_party, room, sam.client, b"redirected " + room.encode())
    try:
        _redirected_submit(ref_hub, sut_party, room, mark_old, poll_until)
        try:  # a resending SUT is done with the redirect once the resend reached the named hub
            poll_until(lambda: _submits(ref_follower, mark_new, sut_party, room), timeout=5,
                       what="the SUT's resend at the new hub (if it resends)")
        except PollTimeout:
            recorder.note("no resend at the new hub within 5 s")
        domain, generation, state = _hub_view(sut_party, room)
    finally:
        _release(ref_hub, ref_follower)
        sending.join(60)
    expect(REDIRECT_NOT_AUTHORITY, domain == OLD_HUB and generation == 1 and state.get("state") == "transferring",
           f"after a HubRedirect naming {NEW_HUB}, without the cut-over commit, getRoom says hubDomain "
           f"{domain!r}, hubGeneration {generation!r}, hubState {state!r}; the committed component still "
           f"names {OLD_HUB}, generation 1, transferring",
           evidence=f"after a 421 HubRedirect naming {NEW_HUB}: getRoom hub {OLD_HUB}, generation 1, transferring")


@pytest.mark.requirements(REDIRECT_RESEND)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom", "sendMessage")
def test_redirected_request_is_resent_to_the_named_hub(sut, sut_party, ref_hub, ref_follower, transfer_knobs,
                                                       poll_until):
    """A submitMessage the old hub answers with a HubRedirect is resent to the hub the redirect names,
    before the SUT has the cut-over commit."""
    transfer_settings(sut, "follower")
    room, _creator, sam = _redirect_window(sut_party, ref_hub, ref_follower, poll_until)
    mark_old, mark_new = ref_hub.traffic_mark(), ref_follower.traffic_mark()
    sending = _send_in_background(sut_party, room, sam.client, b"resent " + room.encode())
    try:
        refused = _redirected_submit(ref_hub, sut_party, room, mark_old, poll_until)
        _wait_or_fail(poll_until, lambda: [t for t in _submits(ref_follower, mark_new, sut_party, room)
                                           if t.time >= refused.time - 0.5],
                      what=f"the SUT's submitMessage resent to {NEW_HUB}", requirement=REDIRECT_RESEND,
                      message=f"the old hub answered the SUT's submitMessage 421 with a HubRedirect naming {NEW_HUB}; "
                      "the SUT did not resend it there")
        observed(REDIRECT_RESEND, f"a submitMessage answered 421 by {OLD_HUB} resent to {NEW_HUB}")
    finally:
        _release(ref_hub, ref_follower)
        sending.join(60)


@pytest.mark.requirements(REFUSED_NOT_SENT)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom", "sendMessage")
def test_redirected_message_is_not_taken_as_sent(sut, sut_party, ref_hub, ref_follower, transfer_knobs,
                                                 poll_until, recorder):
    """A message the old hub refused with a HubRedirect is submitted again (to the new hub, at once or after
    catching up) and reaches the room's members exactly once."""
    transfer_settings(sut, "follower")
    room, creator, sam = _redirect_window(sut_party, ref_hub, ref_follower, poll_until)
    mark_old = ref_hub.traffic_mark()
    text = b"refused once " + room.encode()
    sending = _send_in_background(sut_party, room, sam.client, text)
    try:
        _redirected_submit(ref_hub, sut_party, room, mark_old, poll_until)
    finally:
        _release(ref_hub, ref_follower)
        sending.join(60)
    recorder.note(f"sendMessage answered {sending.result if sending.error is None else sending.error}")
    _wait_or_fail(poll_until, lambda: text in ref_hub.received(creator.client, room), timeout=20,
                  what="the redirected message at the creator", requirement=REFUSED_NOT_SENT,
                  message="a message the old hub refused with a HubRedirect never reached the room's members: "
                  "the SUT did not submit it again")
    sentinel = b"sentinel " + room.encode()
    sut_party.send_ok(room, sam.client, sentinel)
    ref_hub.wait_received(creator.client, sentinel, room=room, what="a later message (sentinel) at the creator")
    count = ref_hub.received(creator.client, room).count(text)
    expect(REFUSED_NOT_SENT, count == 1, f"the redirected message reached the creator {count} times, not once",
           evidence="a message refused with a HubRedirect submitted again and delivered once")


@pytest.mark.requirements(RETRY_503)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom", "sendMessage")
def test_follower_retries_after_the_new_hubs_503(sut, sut_party, ref_hub, ref_follower, transfer_knobs, poll_until):
    """Before the handoff the new hub answers the SUT's submitMessage 503 with Retry-After; the SUT sends it
    again no sooner than that and it is accepted once the new hub serves."""
    transfer_settings(sut, "follower")
    # The suite's new hub answers Retry-After: 2 here, not its default 1, so a retry after a fixed second (a
    # follower ignoring the header) comes too soon; transfer_knobs puts it back.
    retry_after = 2 * HubTransferSettings().retry_503_seconds
    ref_follower.hold_transfer(retry_503_seconds=retry_after)
    room, creator, sam = _room(ref_hub, sut_party)
    ref_hub.hold_transfer(hold_handoff=True)
    _start(ref_hub, room, creator)
    poll_until(lambda: _incoming(ref_follower, room).get("cutoverSeen"), timeout=20,
               what=f"{NEW_HUB} to observe the cut-over (it answers 503 until the handoff)")
    sut_party.wait_epoch(room, int(_outgoing(ref_hub, room)["cutoverEpoch"]),
                         what="the SUT to process the cut-over commit")
    mark = ref_follower.traffic_mark()
    text = b"after a 503 " + room.encode()
    sending = _send_in_background(sut_party, room, sam.client, text)
    try:
        first = poll_until(lambda: [t for t in _submits(ref_follower, mark, sut_party, room) if t.status == 503],
                           what="the SUT's submitMessage at the new hub, answered 503")[0]
    except PollTimeout:
        raise HarnessError("the SUT sent no submitMessage to the new hub while it answered 503") from None
    finally:
        ref_hub.hold_transfer(hold_handoff=False)
        sending.join(60)
    _wait_or_fail(poll_until, lambda: text in ref_hub.received(creator.client, room), timeout=20,
                  what="the message at the creator after the handoff", requirement=RETRY_503,
                  message=f"the new hub answered the SUT's submitMessage 503 (Retry-After: {retry_after}); the message "
                  "never reached the room's members")
    later = [t for t in _submits(ref_follower, mark, sut_party, room) if t.seq > first.seq]
    if not later:
        fail("the message arrived, but not through a submitMessage to the new hub after its 503",
             requirement=RETRY_503)
    waited = later[0].time - first.time
    expect(RETRY_503, waited >= retry_after - 0.05,
           f"the SUT retried {waited:.2f} s after a 503 with Retry-After: {retry_after}",
           evidence=f"retried {waited:.2f} s after a 503 with Retry-After: {retry_after}, then delivered")


# -- §6 the transfer's fan-out is taken in -----------------------------------------------------------


@pytest.mark.requirements(NOTIFY_201)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom", "listReceivedMessages")
def test_follower_takes_in_the_transfer_fanout(sut, sut_party, ref_hub, ref_follower, poll_until, recorder):
    """While the room moves from hub.ref.test to follower.ref.test, every /notify the two hubs send the SUT
    (the begin proposals and commit, the cut-over proposal and commit, the new hub's own proposal, then a
    message through the new hub) is answered 201. -06 §5.5: "The HTTP response code indicates if the messages
    in the request were accepted (201 response code), or if there was an error."; the extension's transfer
    messages reach followers by ordinary fan-out (sections 6.2, 6.3: "A fans them out as one proposal
    bundle", "it fans the commit out like any commit: to every follower"). 200 and 202 are the register's
    other readings of the accepting answer (AMBIGUOUS, not FAIL)."""
    transfer_settings(sut, "follower")
    room, creator, sam = _room(ref_hub, sut_party)
    marks = {"old hub": (ref_hub, ref_hub.traffic_mark()), "new hub": (ref_follower, ref_follower.traffic_mark())}
    cutover = _move(ref_hub, ref_follower, room, creator, poll_until)
    sut_party.wait_epoch(room, cutover, what="the SUT to process the cut-over commit")
    text = b"through the new hub " + room.encode()
    ref_hub.send_ok(room, creator.client, text)
    sut_party.wait_received(sam.client, text, room=room, what="the creator's message through the new hub at the SUT")
    answered = [(label, t) for label, (party, mark) in marks.items()
                for t in party.traffic(mark, endpoint="notify", direction="out")
                if t.value == room and t.peer in sut.manifest.domains and t.status is not None]
    recorder.note("answers to the hubs' /notify: " + ", ".join(f"{label} #{t.seq} {t.status}" for label, t in answered))
    if not any(label == "new hub" for label, _ in answered):
        raise HarnessError("the SUT received the message through the new hub, but its traffic log holds no /notify to "
                           "the SUT")
    refused = [(label, t) for label, t in answered if t.status != 201]
    listing = "; ".join(f"the {label}'s /notify #{t.seq} answered HTTP {t.status}" for label, t in refused)
    readings = [notify_status_reading(t.status, NOTIFY_201) for _, t in refused]
    if refused and all(readings):
        ambiguous(readings[0], f"{listing}: a reading the register accepts for -06 §5.5's 201", requirement=NOTIFY_201)
    expect(NOTIFY_201, not refused,
           f"{listing}, during a transfer whose proposals and commits are valid (the reference hubs' fan-out)",
           evidence=f"{len(answered)} /notify of the old and the new hub during the transfer, each answered 201")


# -- §9 dedup across hubs ------------------------------------------------------------------------


@pytest.mark.requirements(DEDUP)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom", "listReceivedMessages")
def test_fanout_message_from_both_hubs_is_delivered_once(sut, sut_party, ref_hub, ref_follower, mimi_as, poll_until):
    """The new hub sends again, in its own /notify, a FanoutMessage the old hub delivered before the transfer:
    the SUT answers 201 and its client has the message once."""
    transfer_settings(sut, "follower")
    room, creator, sam = _room(ref_hub, sut_party)
    mark = ref_hub.traffic_mark()
    text = b"delivered by the old hub " + room.encode()
    ref_hub.send_ok(room, creator.client, text)
    sut_party.wait_received(sam.client, text, room=room)
    delivered = [t for t in ref_hub.traffic(mark, endpoint="notify", direction="out")
                 if t.value == room and t.status == 201]
    if not delivered:
        raise HarnessError("the reference hub logged no delivered /notify to the SUT")
    # The reference hub's own body, in whichever reading its variants send (the SUT's bodies are not read here).
    messages = decode_fanout_sequence_tolerant(delivered[-1].request, scope=MLS10).value
    _move(ref_hub, ref_follower, room, creator, poll_until)
    body = b"".join(m.encode() for m in messages)
    status = _notify_as(mimi_as, sut, NEW_HUB, room, body)
    if status != 201:
        fail(f"the SUT answered HTTP {status}, not 201, to the new hub's /notify repeating a FanoutMessage the old "
             "hub had delivered", requirement=DEDUP)
    sentinel = b"sentinel " + room.encode()
    ref_hub.send_ok(room, creator.client, sentinel)
    sut_party.wait_received(sam.client, sentinel, room=room, what="a later message (sentinel) at the SUT")
    count = sut_party.received(sam.client, room).count(text)
    expect(DEDUP, count == 1,
           f"after both hubs delivered the same FanoutMessage the SUT's client lists it {count} times",
           evidence="the new hub's repeat of the old hub's FanoutMessage answered 201, delivered once")


def _epoch_of(message) -> int | None:
    """The room epoch a FanoutMessage's message was sent in (None: a Welcome)."""
    msg = message.message
    if msg.private_message is not None:
        return msg.private_message.epoch
    if msg.public_message is not None:
        return msg.public_message.content.epoch
    return None


@pytest.mark.requirements(DEDUP)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom")
def test_old_hub_repeat_of_a_cutover_epoch_message_is_answered_201(sut, sut_party, ref_hub, ref_follower, mimi_as,
                                                                   poll_until, recorder):
    """After the handoff the new hub delivers the SUT a FanoutMessage of the cut-over epoch E_c (its own proposal
    removing the old hub from external_senders); the old hub then sends the same FanoutMessage again in its own
    /notify: the SUT answers 201. So it does when the old hub repeats, after the cut-over, the Welcome it delivered
    before the transfer (a FanoutMessage with no room epoch).

    hub-transfer.md §7: "After the cut-over, it accepts /notify from B and, for FanoutMessages of epochs up to and
    including E_c, from A"; §9 (EXT-HUBXFER-FOLLOWER-DEDUP): a follower "MUST answer such a /notify with 201"
    when the FanoutMessage is byte-identical to one it already received from either hub of the transfer."""
    transfer_settings(sut, "follower")
    old_mark = ref_hub.traffic_mark()
    room, creator, sam = _room(ref_hub, sut_party)
    welcomes = [m for t in ref_hub.traffic(old_mark, endpoint="notify", direction="out", peer=sut_party.domain)
                if t.value == room and t.status == 201
                for m in decode_fanout_sequence_tolerant(t.request, scope=MLS10).value if _epoch_of(m) is None]
    mark = ref_follower.traffic_mark()
    cutover = _move(ref_hub, ref_follower, room, creator, poll_until)
    sut_party.wait_epoch(room, cutover, what="the SUT to process the cut-over commit")

    def of_cutover_epoch() -> list:
        found = []
        for t in ref_follower.traffic(mark, endpoint="notify", direction="out", peer=sut_party.domain):
            if t.value == room and t.status == 201:
                found += [m for m in decode_fanout_sequence_tolerant(t.request, scope=MLS10).value
                          if _epoch_of(m) == cutover]
        return found

    try:
        message = poll_until(of_cutover_epoch, timeout=15,
                             what=f"a FanoutMessage of the cut-over epoch {cutover} delivered by {NEW_HUB}")[0]
    except PollTimeout as exc:
        raise HarnessError(f"{NEW_HUB} delivered the SUT no FanoutMessage of the cut-over epoch: {exc}") from None
    status = _notify_as(mimi_as, sut, OLD_HUB, room, message.encode())
    recorder.note(f"{OLD_HUB} (the old hub) repeats {NEW_HUB}'s FanoutMessage of epoch {cutover} (E_c): HTTP {status}")
    if status != 201:
        fail(f"the SUT answered HTTP {status}, not 201, to the old hub's /notify repeating a FanoutMessage of the "
             f"cut-over epoch {cutover} that the new hub had delivered", requirement=DEDUP)
    if not welcomes:
        raise HarnessError(f"{OLD_HUB}'s traffic shows no Welcome it delivered to the SUT for the room")
    # A Welcome has no room epoch: the old hub's repeat of the one it delivered before the transfer is a
    # byte-identical FanoutMessage the SUT already received from a hub of the transfer.
    again = _notify_as(mimi_as, sut, OLD_HUB, room, welcomes[0].encode())
    recorder.note(f"{OLD_HUB} repeats, after the cut-over, the Welcome it delivered before the transfer: HTTP {again}")
    expect(DEDUP, again == 201,
           f"the SUT answered HTTP {again}, not 201, to the old hub's /notify repeating, after the cut-over, the "
           "Welcome it had delivered before the transfer",
           evidence=f"the old hub's repeat of the new hub's FanoutMessage of epoch {cutover} (E_c), and of its own "
           "earlier Welcome, each answered 201")


# -- §10 no ReInit (the follower's view) ----------------------------------------------------------


@pytest.mark.requirements(NO_REINIT)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom", "sendMessage")
def test_follower_keeps_the_group_across_the_transfer(sut, sut_party, ref_hub, ref_follower, poll_until):
    """Across the transfer the SUT proposes no ReInit, and its first message to the new hub is in the same
    MLS group at an epoch continuing from the cut-over epoch."""
    transfer_settings(sut, "follower")
    room, creator, sam = _room(ref_hub, sut_party)
    group_id = sut_party.room(room).get("groupId")
    mark_old, mark_new = ref_hub.traffic_mark(), ref_follower.traffic_mark()
    cutover = _move(ref_hub, ref_follower, room, creator, poll_until)
    sut_party.wait_epoch(room, cutover, what="the SUT to process the cut-over commit")
    text = b"same group " + room.encode()
    sut_party.send(room, sam.client, text)
    ref_hub.wait_received(creator.client, text, room=room, what="the SUT's message at the creator (sentinel)")
    updates = [*_sut_in(ref_hub, mark_old, sut_party, room, ("update",)),
               *_sut_in(ref_follower, mark_new, sut_party, room, ("update",))]
    reinits = [t.seq for t in updates if _reinit_proposals(t.request)]
    if reinits:
        fail(f"the SUT proposed a ReInit of the group around the transfer (update #{reinits})", requirement=NO_REINIT)
    submits = _submits(ref_follower, mark_new, sut_party, room)
    if not submits:
        raise HarnessError("the SUT's message reached the creator without a submitMessage to the new hub")
    private = SubmitMessageRequest.decode(submits[-1].request).appMessage.private_message
    original = ref_hub.hub_state(room).group_id
    if private is None or bytes(private.group_id) != bytes(original) or private.epoch < cutover:
        fail(f"the SUT's first message to the new hub is in group {bytes(private.group_id).hex() if private else None}"
             f", epoch {private.epoch if private else None}; the room's group is {bytes(original).hex()} at epoch "
             f">= {cutover} (the cut-over epoch)", requirement=NO_REINIT)
    after = sut_party.room(room).get("groupId")
    if group_id is not None and after != group_id:
        fail(f"getRoom's groupId changed across the transfer ({group_id} -> {after})", requirement=NO_REINIT)
    observed(NO_REINIT, f"no ReInit proposed ({len(updates)} update(s)); the message to the new hub in the same "
             f"group at epoch {private.epoch} (cut-over {cutover})")
