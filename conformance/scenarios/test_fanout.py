"""Fan-out and ordering: submitMessage and update epochs, /notify delivery, order, retries and
duplicates (draft-ietf-mimi-protocol-06 §5.3-§5.5, room-policy-04 §7).

With the SUT as hub, the reference follower's clients and the reference hub's (a third provider in
the room) receive what the SUT fans out, and the reference follower logs every /notify byte for byte;
a check acts as one of the reference follower's clients (a copy of its MLS state) to submit stale,
future or competing messages. With the SUT as follower, the reference hub's fan-out is replayed,
echoed or concatenated to the SUT over MIMI as hub.ref.test (hub-k.ref.test on worker k).

What the draft leaves open is accepted (issue 15): the hub's order is the one its FanoutMessage stamps
and epochs give, since a hub "need not wait for a response before sending the next fanout message"
(another order of arrival is AMBIGUOUS, AMB-FANOUT-ORDER-PARALLEL; allowed variant notify-in-parallel);
and a retry has no deadline, so a slow one is awaited, bounded (allowed variant slow-notify-retry).
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from conformance.harness.polling import PollTimeout
from conformance.harness.reference_names import current
from conformance.scenarios.notify_bodies import ambiguous_if_read_otherwise, notify_status_reading, read_fanouts
from conformance.scenarios.refusals import submit_answer, update_answer
from conformance.scenarios.roles import as_follower, as_hub
from conformance.verdicts import HarnessError, ambiguous, blocked, expect, fail, miss, not_applicable, observed
from reference_peer.mls.craft import Crafter
from reference_peer.mls.group import decode_message
from reference_peer.wire.codec import DecodeError, EncodeError
from reference_peer.wire.identity import IdentifierUri
from reference_peer.wire.mimi import (
    FanoutMessage,
    Protocol,
    SubmitMessageRequest,
    SubmitMessageResponse,
    SubmitResponseCode,
    UpdateResponseCode,
    UpdateRoomResponse,
)
from reference_peer.wire.mls import ContentType, WireFormat

MLS10 = {"protocol": Protocol.mls10}
# This worker's reference domains (hub-k.ref.test on worker k): the plugin fixes them before import.
HUB_DOMAIN, FOLLOWER_DOMAIN = current()

TO_ACTIVE = "PROTO-FANOUT-TO-ACTIVE-PROVIDERS"
ORDERED = "PROTO-FANOUT-ORDERED"
DELIVERY_ORDER = "POLICY-OPS-DELIVERY-ORDER"
WELCOME_ROUTING = "PROTO-FANOUT-WELCOME-ROUTING"
KPREF = "PROTO-KEYMAT-KPREF-HUB-PROVIDER"
EPOCH_TOO_OLD = "PROTO-SUBMIT-EPOCH-TOO-OLD"
FUTURE_EPOCH = "PROTO-SUBMIT-FUTURE-EPOCH-NOT-ALLOWED"
WRONG_EPOCH = "PROTO-UPDATE-WRONG-EPOCH"
ACCEPTED_TIMESTAMP = "PROTO-SUBMIT-ACCEPTED-TIMESTAMP"
TIMESTAMP_IS_ACCEPTANCE = "PROTO-FANOUT-TIMESTAMP-IS-ACCEPTANCE"
RETRY = "PROTO-FANOUT-RETRY-NON-201"
RETRY_AFTER = "PROTO-FANOUT-RETRY-AFTER-RESPECTED"
COMMITMENT = "PROTO-FANOUT-SUCCESS-IS-COMMITMENT"
DUP_201 = "PROTO-FANOUT-DUP-NOTIFY-201"
DUP_ONCE = "PROTO-FANOUT-DUP-NOTIFY-PROCESS-ONCE"
ECHO = "PROTO-FANOUT-NOT-ECHOED-REQUIRED"
CONCATENATED = "PROTO-FANOUT-CONCATENATED-MESSAGES"

ORDER_AMBIGUITY = "AMB-FANOUT-ORDER-PARALLEL"  # "an ordered list" vs "need not wait for a response" (-06 §5.5)


# -- helpers ---------------------------------------------------------------------------------------


def _authority(sut) -> str:
    """host[:port] of the SUT's primary domain, for MimiClient.call."""
    return urlsplit(sut.base_urls[sut.primary_domain]).netloc


def _fanouts(traffic, requirement: str) -> list[tuple[object, FanoutMessage]]:
    """(traffic item, FanoutMessage) for every FanoutMessage of the given /notify records, in order. A body
    is read as written, else in the one other reading the register accepts (recorded: notify_bodies); a body
    that decodes in none is a miss of ``requirement`` (the rule the check judges those bodies for)."""
    out = []
    for item in traffic:
        try:
            messages = read_fanouts(item.request)
        except Exception as exc:  # noqa: BLE001 - a body that does not decode is the SUT's defect
            fail(f"a /notify body the SUT sent does not decode as FanoutMessages: {exc}", requirement=requirement)
        out += [(item, m) for m in messages]
    return out


def _kind(message: FanoutMessage) -> str:
    msg = message.message
    if msg.wire_format == WireFormat.mls_welcome:
        return "welcome"
    if msg.private_message is not None:
        return "application" if msg.private_message.content_type == ContentType.application else "private-handshake"
    content = msg.public_message.content
    return "commit" if content.content_type == ContentType.commit else "proposal"


def _epoch(message: FanoutMessage) -> int:
    msg = message.message
    return msg.private_message.epoch if msg.private_message is not None else msg.public_message.content.epoch


def _notifies_in(party, room: str, after: int):
    """The /notify requests ``party`` (a reference peer) received for ``room`` since ``after``."""
    return [t for t in party.traffic(after, endpoint="notify", direction="in") if t.value == room]


def _sut_hub_room(cast, *, third=None):
    """A room on the SUT hub with Alice (SUT) and Bob (reference follower), and optionally a user of
    ``third`` (the reference hub, as a third provider). Waits until the joiners are in."""
    alice = cast.hub.create_user("alice")
    room = cast.hub.create_room(alice)
    bob = cast.follower.create_user("bob")
    cast.hub.add_ok(room, alice, bob)
    users = [bob]
    if third is not None:
        xavier = third.create_user("xavier")
        cast.hub.add_ok(room, alice, xavier)
        users.append(xavier)
    epoch = cast.hub.room(room)["epoch"]
    cast.follower.wait_epoch(room, epoch, what="the reference follower's clients to join the SUT's room")
    if third is not None:
        third.wait_epoch(room, epoch, what="the reference hub's clients to join the SUT's room")
    return room, alice, users


def _submit_as_follower(mimi_as, sut, room: str, body: bytes, requirement: str) -> SubmitMessageResponse:
    session = mimi_as(FOLLOWER_DOMAIN)
    reply = session.run(session.client.call(_authority(sut), "submitMessage", room, body))
    try:
        return submit_answer(reply.status, reply.body)  # a non-2xx answer is a refusal (AMB-FAILURE-CODE-STATUS)
    except (DecodeError, EncodeError) as exc:
        fail(f"submitMessage answered HTTP {reply.status} with no decodable SubmitMessageResponse: {exc}",
             requirement=requirement)


def _update_as_follower(mimi_as, sut, room: str, body: bytes, requirement: str) -> UpdateRoomResponse:
    session = mimi_as(FOLLOWER_DOMAIN)
    reply = session.run(session.client.call(_authority(sut), "update", room, body))
    try:
        return update_answer(reply.status, reply.body)  # a non-2xx answer is a refusal (AMB-FAILURE-CODE-STATUS)
    except (DecodeError, EncodeError) as exc:
        fail(f"update answered HTTP {reply.status} with no decodable UpdateRoomResponse: {exc}",
             requirement=requirement)


RETRY_WAIT_S = 45.0  # how long after the hub's last /notify attempt a retry is still awaited
RETRY_WAIT_TOTAL_S = 4 * RETRY_WAIT_S  # and the bound of the whole wait past the poll window


def _await_retried_delivery(cast, bob, text: bytes, room: str, mark: int, recorder) -> str | None:
    """Wait for ``text`` to reach bob after the reference follower refused /notify: None once it did, else
    why not. -06 §5.5 sets no deadline for the retry ("it SHOULD retry the request, respecting any guidance
    ... such as Retry-After"), so past the poll window the wait goes on while the hub's last /notify for the
    room (a refusal it may still retry) is less than RETRY_WAIT_S old, RETRY_WAIT_TOTAL_S at most: a slow but
    permitted retry is no miss, and the wait stays bounded (noted in the transcript)."""
    try:
        cast.follower.wait_received(bob.client, text, room=room, what="the message to arrive after the refusals")
        return None
    except PollTimeout as exc:
        first = exc
    recorder.note(f"the message did not arrive within the poll window: -06 §5.5 sets no deadline for a retry, so "
                  f"waiting on while the hub's last /notify attempt is under {RETRY_WAIT_S:g} s old")
    started = time.monotonic()
    while True:
        if text in cast.follower.received(bob.client, room):
            recorder.note(f"the message arrived {time.monotonic() - started:.1f} s after the poll window")
            return None
        attempts = [t.time for t in cast.follower.traffic(mark, endpoint="notify", direction="in") if t.value == room]
        last = max(attempts) if attempts else time.time() - (time.monotonic() - started)
        if time.time() - last > RETRY_WAIT_S or time.monotonic() - started > RETRY_WAIT_TOTAL_S:
            recorder.note(f"no delivery {RETRY_WAIT_S:g} s after the last /notify attempt (or "
                          f"{RETRY_WAIT_TOTAL_S:g} s past the poll window): giving up")
            return (f"{first}; nor in the {RETRY_WAIT_S:g} s after the hub's last /notify attempt for the room "
                    f"(waited {time.monotonic() - started:.0f} s past the poll window)")
        time.sleep(0.5)


def _synced_member(party, room: str, client: str, epoch: int, poll_until):
    """A copy of a reference client's member state once it has reached ``epoch``."""
    return poll_until(
        lambda: (m := party.member_state(room, client)).epoch == epoch and m,
        what=f"{client} at {party.name} to reach epoch {epoch}",
    )


# -- SUT as hub ------------------------------------------------------------------------------------


@dataclass
class _StreamOrder:
    """One provider's /notify stream judged for order (see :func:`_judge_stream_order`)."""

    stamp_misses: list[str]  # the stamps contradict the epochs: a miss of ORDERED under both readings
    overtaken: list[str]  # a message arrived before the commit entering its epoch (DELIVERY_ORDER)
    inversions: list[str]  # arrival order differs from the order the stamps and epochs give
    in_new_epoch: int  # messages of an epoch a commit in the stream started, arrived after it


def _order_position(message: FanoutMessage) -> float:
    """Where a FanoutMessage sits among those stamped the same millisecond: a message of epoch n before a
    proposal of epoch n before the commit ending n, and that before the messages of epoch n+1."""
    kind = _kind(message)
    return _epoch(message) + {"commit": 0.5, "proposal": 0.25}.get(kind, 0.0)


def _judge_stream_order(fanouts, start_epoch: int, provider: str) -> _StreamOrder:
    """Judge the order of one provider's FanoutMessages (Welcomes aside: their epoch is encrypted). The
    hub's order is the one the acceptance timestamps and epochs give (AMB-FANOUT-ORDER-PARALLEL: a hub
    need not wait for one /notify's answer before sending the next, so arrival order may differ)."""
    stream = [(item, m) for item, m in fanouts if _kind(m) != "welcome"]
    order = _StreamOrder([], [], [], 0)
    # The order the hub presents: by stamp, ties by epoch position, then by arrival.
    ranked = sorted(range(len(stream)), key=lambda i: (stream[i][1].timestamp, _order_position(stream[i][1]), i))
    epoch = start_epoch
    for i in ranked:
        item, message = stream[i]
        kind = _kind(message)
        if kind == "commit":
            epoch = max(epoch, _epoch(message) + 1)
        elif kind == "application" and _epoch(message) > epoch:
            order.stamp_misses.append(
                f"{provider} /notify #{item.seq}: an application message of epoch {_epoch(message)} is stamped "
                f"{message.timestamp}, before any commit starting that epoch (by the stamps the room was at "
                f"epoch {epoch})")
    if ranked != sorted(ranked):
        arrived = [f"#{stream[i][0].seq} {_kind(stream[i][1])} {stream[i][1].timestamp}" for i in range(len(stream))]
        order.inversions.append(f"{provider} received {', '.join(arrived)} (/notify, kind, stamp): not in the "
                                "order of the stamps and epochs")
    epoch = start_epoch
    for item, message in stream:  # the order of arrival
        kind = _kind(message)
        if kind == "commit":
            epoch = max(epoch, _epoch(message) + 1)
        elif kind == "application" and _epoch(message) > epoch:
            order.overtaken.append(
                f"{provider} /notify #{item.seq}: an application message of epoch {_epoch(message)} arrived before "
                f"the commit starting that epoch (the follower had only seen epoch {epoch})")
        elif kind == "application" and _epoch(message) > start_epoch:
            order.in_new_epoch += 1
    return order


@pytest.mark.requirements(TO_ACTIVE, ORDERED, DELIVERY_ORDER)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_fanout_reaches_every_provider_in_hub_order(cast, ref_hub, poll_until, recorder):
    """The hub fans out each accepted message to every provider with members, in its acceptance order (as
    the FanoutMessage stamps and epochs give it: a hub need not wait for one /notify's answer before the
    next, AMB-FANOUT-ORDER-PARALLEL), a commit received before any message of the epoch it starts."""
    room, alice, (bob,) = _sut_hub_room(cast)
    start_epoch = cast.hub.room(room)["epoch"]
    mark, mark_hub = cast.follower.traffic_mark(), ref_hub.traffic_mark()
    xavier = ref_hub.create_user("xavier")
    cast.hub.add_ok(room, alice, xavier)  # a commit bob's provider gets without a Welcome
    texts = [f"ordered {i} {room}".encode() for i in range(3)]
    for text in texts:
        cast.hub.send_ok(room, alice.client, text)
    recorder.note("waiting for the commit and the three messages at the reference follower")
    poll_until(lambda: len(_fanouts(_notifies_in(cast.follower, room, mark), TO_ACTIVE)) >= 4,
               what="the commit and three messages in /notify at the reference follower", requirement=TO_ACTIVE)
    poll_until(lambda: sum(_kind(m) == "application" for _, m in _fanouts(_notifies_in(ref_hub, room, mark_hub),
                                                                           TO_ACTIVE)) >= 3,
               what=f"the three messages in /notify at {HUB_DOMAIN} (xavier's provider)", requirement=TO_ACTIVE)
    observed(TO_ACTIVE, f"the commit and 3 messages reached {FOLLOWER_DOMAIN} in /notify, the 3 messages "
                        f"{HUB_DOMAIN}")
    fanouts = _fanouts(_notifies_in(cast.follower, room, mark), TO_ACTIVE)
    streams = [_judge_stream_order(fanouts, start_epoch, FOLLOWER_DOMAIN),
               # xavier joins by the Welcome into the epoch the commit starts: his stream starts there
               _judge_stream_order(_fanouts(_notifies_in(ref_hub, room, mark_hub), TO_ACTIVE), start_epoch + 1,
                                   HUB_DOMAIN)]
    stamp_misses = [m for s in streams for m in s.stamp_misses]
    overtaken = [m for s in streams for m in s.overtaken]
    inversions = [m for s in streams for m in s.inversions]
    for message in stamp_misses:
        miss(ORDERED, message)
    for message in overtaken:
        miss(DELIVERY_ORDER, message)
    if streams[0].in_new_epoch and not overtaken:
        observed(DELIVERY_ORDER, f"the commit starting epoch {start_epoch + 1} reached {FOLLOWER_DOMAIN} before "
                                 f"the {streams[0].in_new_epoch} messages of that epoch")
    if stamp_misses:
        return  # the hub's own order is wrong: nothing more to judge
    if inversions:
        # The stamps and epochs give the hub's order, but the /notify requests arrived in another: a hub that
        # sends without waiting for answers (-06 §5.5) may cause that, an "ordered list" reading forbids it.
        # The reference clients read in arrival order, so what they read is not the hub's to answer for.
        recorder.note("arrival order differs from the stamps' order: " + "; ".join(inversions))
        # Read in another FanoutMessage reading (AMB-FANOUT-SELECT's: the proposals a handshake carried come as
        # FanoutMessages of their own, stamped alike), the stamps' order is that reading's, not the hub's.
        ambiguous_if_read_otherwise(ORDERED, "the order of the FanoutMessages (their stamps, epochs and kinds)")
        ambiguous(ORDER_AMBIGUITY, "the FanoutMessages' stamps and epochs give the hub's acceptance order, but "
                  "the /notify requests arrived in another order (" + "; ".join(inversions) + "): -06 §5.5 "
                  "presents fan-out as an ordered list yet lets the hub send without waiting for answers",
                  requirement=ORDERED)
    for party, user in ((cast.follower, bob), (ref_hub, xavier)):
        poll_until(lambda p=party, u=user: texts[-1] in p.received(u.client, room),
                   what=f"{user.uri} to receive the last message", requirement=TO_ACTIVE)
        got = [m for m in party.received(user.client, room) if m in texts]
        if set(got) != set(texts):
            fail(f"{user.uri} received only {got!r} of {texts!r}", requirement=TO_ACTIVE)
        expect(ORDERED, got == texts, f"{user.uri} received {got!r}, not each message once in the hub's order "
               f"{texts!r}", evidence=f"{user.uri} received the 3 messages once, in the hub's order")
    observed(ORDERED, f"{len(fanouts)} FanoutMessages at {FOLLOWER_DOMAIN} in acceptance order, the commit first")
    ambiguous_if_read_otherwise(ORDERED, "the order of the FanoutMessages (their stamps, epochs and kinds)")


@pytest.mark.requirements(TO_ACTIVE)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "listReceivedMessages")
def test_followers_message_reaches_the_hubs_own_clients(cast, ref_hub, poll_until, recorder):
    """-06 §5.5: "If the hub provider accepts an application or handshake message (proposal or commit)
    message, it forwards that message to all other providers with active participants in the room and all
    local clients which are active members."

    The message comes from a client of the reference follower, not from the hub's own client: the hub's own
    client (Alice) must receive it, and so must the third provider's client (Xavier). A hub that refuses
    the message leaves nothing to judge here (other checks judge refusals)."""
    room, alice, (bob, xavier) = _sut_hub_room(cast, third=ref_hub)
    text = f"from the follower's client {room}".encode()
    result = cast.follower.send(room, bob.client, text)
    recorder.note(f"bob's message through {FOLLOWER_DOMAIN}: {result.get('outcome')}")
    if result.get("outcome") != "accepted":
        not_applicable(f"set-up failed: the SUT as hub did not accept the message of bob, a member on "
                       f"{FOLLOWER_DOMAIN} ({result.get('outcome')}: {result.get('hubResponse')}), so there is no "
                       "accepted message whose fan-out could be judged")
    poll_until(lambda: text in ref_hub.received(xavier.client, room),
               what=f"the follower's message at {xavier.uri} (a client of a third provider)", requirement=TO_ACTIVE)
    poll_until(lambda: text in cast.hub.received(alice.client, room),
               what=f"the follower's message at {alice.uri}, the SUT hub's own client in the room",
               requirement=TO_ACTIVE)
    observed(TO_ACTIVE, f"an application message a client of {FOLLOWER_DOMAIN} submitted reached the hub's own "
             f"client {alice.uri} and {xavier.uri} on {HUB_DOMAIN}")


@pytest.mark.requirements(WELCOME_ROUTING, KPREF)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_welcome_goes_only_to_the_joiners_provider(cast, ref_hub, poll_until):
    """The hub sends a Welcome only to the provider whose KeyPackages it names, not to other providers."""
    room, alice, (bob, xavier) = _sut_hub_room(cast, third=ref_hub)
    mark_follower, mark_hub = cast.follower.traffic_mark(), ref_hub.traffic_mark()
    carol = cast.follower.create_user("carol")
    cast.hub.add_ok(room, alice, carol)
    try:
        poll_until(
            lambda: [m for _, m in _fanouts(_notifies_in(cast.follower, room, mark_follower), KPREF)
                     if _kind(m) == "welcome"],
            what=f"the Welcome for carol at {FOLLOWER_DOMAIN}",
        )
    except PollTimeout as exc:
        # The Welcome names carol's KeyPackage, which the reference follower relayed: both rules send it there.
        miss(WELCOME_ROUTING, f"the Welcome for carol never reached {FOLLOWER_DOMAIN}: {exc}")
        fail(f"the Welcome for carol never reached {FOLLOWER_DOMAIN}, the provider her KeyPackage came from: {exc}",
             requirement=KPREF)
    observed(KPREF, f"the Welcome for carol (KeyPackage from {FOLLOWER_DOMAIN}) reached {FOLLOWER_DOMAIN}")
    # Sentinel: the commit adding carol reached the other provider (xavier's); no Welcome may come with it.
    try:
        poll_until(lambda: any(_kind(m) == "commit"
                               for _, m in _fanouts(_notifies_in(ref_hub, room, mark_hub), WELCOME_ROUTING)),
                   what=f"the commit adding carol at {HUB_DOMAIN}")
    except PollTimeout as exc:
        blocked(TO_ACTIVE, f"the commit adding carol never reached {HUB_DOMAIN}, a provider with an active "
                           f"participant (xavier), so a Welcome sent there with it cannot be ruled out: {exc}")
    wrong = [i.seq for i, m in _fanouts(_notifies_in(ref_hub, room, mark_hub), WELCOME_ROUTING)
             if _kind(m) == "welcome"]
    if wrong:
        fail(f"a Welcome naming only {FOLLOWER_DOMAIN}'s KeyPackage was also sent to {HUB_DOMAIN} (/notify {wrong})",
             requirement=WELCOME_ROUTING)
    observed(WELCOME_ROUTING, f"the Welcome for carol reached {FOLLOWER_DOMAIN}; {HUB_DOMAIN} got the commit "
                              "adding her and no Welcome")
    ambiguous_if_read_otherwise(WELCOME_ROUTING, "which /notify carried a Welcome")


@pytest.mark.requirements(EPOCH_TOO_OLD)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_message_of_an_old_epoch_is_answered_epoch_too_old(cast, ref_hub, sut, mimi_as, poll_until):
    """An application message of an epoch older than the room's is answered epochTooOld with the current epoch."""
    room, alice, (bob,) = _sut_hub_room(cast)
    epoch = cast.hub.room(room)["epoch"]
    stale = _synced_member(cast.follower, room, bob.client, epoch, poll_until)
    cast.hub.add_ok(room, alice, ref_hub.create_user("xavier"))  # the room moves on
    current = cast.hub.room(room)["epoch"]
    response = _submit_as_follower(mimi_as, sut, room, stale.send(b"from the past " + room.encode()), EPOCH_TOO_OLD)
    if response.statusCode != SubmitResponseCode.epochTooOld:
        fail(f"a message of epoch {epoch} (the room is at {current}) was answered {response.statusCode.name}, "
             "not epochTooOld", requirement=EPOCH_TOO_OLD)
    expect(EPOCH_TOO_OLD, response.currentEpoch == current,
           f"epochTooOld names currentEpoch {response.currentEpoch}, the room is at {current}",
           evidence=f"a message of epoch {epoch} was answered epochTooOld with currentEpoch {current}")


@pytest.mark.requirements(FUTURE_EPOCH)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_message_of_a_future_epoch_is_not_allowed(cast, sut, mimi_as, poll_until):
    """An application message claiming an epoch after the room's is answered notAllowed."""
    room, _alice, (bob,) = _sut_hub_room(cast)
    epoch = cast.hub.room(room)["epoch"]
    member = _synced_member(cast.follower, room, bob.client, epoch, poll_until)
    message = Crafter(member.group).application(b"from the future", epoch=epoch + 1)
    body = SubmitMessageRequest(protocol=Protocol.mls10, appMessage=decode_message(message),
                                sendingUri=IdentifierUri(uri=bob.uri.encode())).encode()
    response = _submit_as_follower(mimi_as, sut, room, body, FUTURE_EPOCH)
    expect(FUTURE_EPOCH, response.statusCode == SubmitResponseCode.notAllowed,
           f"a message claiming epoch {epoch + 1} (the room is at {epoch}) was answered {response.statusCode.name}, "
           "not notAllowed",
           evidence=f"a message claiming epoch {epoch + 1} (the room is at {epoch}) was answered notAllowed")


@pytest.mark.requirements(WRONG_EPOCH)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_second_commit_for_an_epoch_is_refused(cast, sut, mimi_as, poll_until):
    """Of two commits built on the same epoch the hub accepts the first and answers the second wrongEpoch
    with the new current epoch."""
    room, _alice, (bob,) = _sut_hub_room(cast)
    epoch = cast.hub.room(room)["epoch"]
    first = _synced_member(cast.follower, room, bob.client, epoch, poll_until)
    second = cast.follower.member_state(room, bob.client)
    response = _update_as_follower(mimi_as, sut, room, first.commit([]).request, WRONG_EPOCH)
    if response.responseCode != UpdateResponseCode.success:
        raise HarnessError(f"the first commit of epoch {epoch} was refused: {response.responseCode.name} "
                           f"{response.errorDescription!r}")
    response = _update_as_follower(mimi_as, sut, room, second.commit([]).request, WRONG_EPOCH)
    if response.responseCode != UpdateResponseCode.wrongEpoch:
        fail(f"a second commit for epoch {epoch}, after one was accepted, was answered {response.responseCode.name}, "
             "not wrongEpoch", requirement=WRONG_EPOCH)
    expect(WRONG_EPOCH, response.currentEpoch == epoch + 1,
           f"wrongEpoch names currentEpoch {response.currentEpoch}, the room is at {epoch + 1}",
           evidence=f"a second commit for epoch {epoch} was answered wrongEpoch with currentEpoch {epoch + 1}")


@pytest.mark.requirements(ACCEPTED_TIMESTAMP, TIMESTAMP_IS_ACCEPTANCE)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_fanout_timestamp_is_the_acceptance_time(cast, ref_hub, poll_until):
    """The hub answers an accepted submitMessage with its acceptance time and stamps the fanned-out message
    with that same time."""
    room, _alice, (bob, xavier) = _sut_hub_room(cast, third=ref_hub)
    mark_hub, mark_follower = ref_hub.traffic_mark(), cast.follower.traffic_mark()
    before = int(time.time() * 1000)
    text = b"stamped " + room.encode()
    ref_hub.send_ok(room, xavier.client, text)
    after = int(time.time() * 1000)
    submits = [t for t in ref_hub.traffic(mark_hub, endpoint="submitMessage", direction="out") if t.value == room]
    if len(submits) != 1 or submits[0].status != 200:
        raise HarnessError(f"expected one submitMessage of xavier's message, logged {submits}")
    response = SubmitMessageResponse.decode(submits[0].response)
    accepted = response.accepted_timestamp
    if before - 5000 <= accepted <= after + 5000:
        observed(ACCEPTED_TIMESTAMP, f"accepted_timestamp {accepted} lies in the request's time window "
                                     f"[{before}, {after}] (±5 s)")
    else:
        miss(ACCEPTED_TIMESTAMP, f"accepted_timestamp {accepted} is outside the request's time window "
                                 f"[{before}, {after}] (±5 s)")
    sent = decode_message(SubmitMessageRequest.decode(submits[0].request).appMessage.encode()).encode()
    try:
        cast.follower.wait_received(bob.client, text, room=room)
    except PollTimeout as exc:
        blocked(TO_ACTIVE, f"xavier's accepted message never reached bob at {FOLLOWER_DOMAIN}, so its fan-out "
                           f"stamp cannot be seen: {exc}")
    stamps = [m.timestamp for _, m in _fanouts(_notifies_in(cast.follower, room, mark_follower),
                                               TIMESTAMP_IS_ACCEPTANCE)
              if m.message.encode() == sent]
    if not stamps:
        blocked(TO_ACTIVE, "the reference follower received xavier's message without a /notify carrying its "
                           "bytes: the hub did not forward the message it accepted")
    expect(TIMESTAMP_IS_ACCEPTANCE, stamps == [accepted] * len(stamps),
           f"the FanoutMessage is stamped {stamps}, the submitter was told accepted_timestamp {accepted}",
           evidence=f"the FanoutMessage carrying xavier's message is stamped {accepted}, the accepted_timestamp "
                    "the submitter got")
    ambiguous_if_read_otherwise(TIMESTAMP_IS_ACCEPTANCE, "the FanoutMessage's stamp")


@pytest.mark.requirements(RETRY, COMMITMENT)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_refused_notify_is_retried_until_delivered(cast, poll_until, recorder):
    """After a non-201 answer to /notify the hub sends the same body again, and the message arrives once.
    -06 §5.5: "The HTTP response code indicates if the messages in the request were accepted (201 response
    code), or if there was an error." and "If the hub server does not contain an HTTP 201 response code, then
    it SHOULD retry the request". The reference follower answers 503, then 204 (a 2xx that is not 201, so not
    an acceptance), then 201. 200 and 202 are not used: the register reads them as an acceptance a hub may
    take (AMB-NOTIFY-FIGURE-200, Figure 3's "200 OK"; AMB-NOTIFY-201-ACCEPTED, "201 Accepted"), 204 has no
    such reading. A retry has no deadline (-06 §5.5): a slow one is awaited, bounded (_await_retried_delivery)."""
    room, alice, (bob,) = _sut_hub_room(cast)
    mark = cast.follower.traffic_mark()
    cast.follower.refuse_notifies([503, 204], retry_after="1")
    text = b"despite refusals " + room.encode()
    undelivered = None
    try:
        cast.hub.send_ok(room, alice.client, text)
        undelivered = _await_retried_delivery(cast, bob, text, room, mark, recorder)
    finally:
        cast.follower.refuse_notifies([])  # refusals left unused must not hit the next check
    notifies = cast.follower.traffic(mark, endpoint="notify", direction="in")
    refused = [(i, t) for i, t in enumerate(notifies) if t.status is not None and t.status != 201]
    if not refused:
        raise HarnessError("the reference follower refused no /notify")
    dropped = [t for i, t in refused if not any(r.request == t.request and r.status == 201 for r in notifies[i + 1:])]
    if dropped:
        miss(RETRY, "; ".join(f"the /notify #{t.seq} answered {t.status} was never sent again and delivered"
                              + (" (a 2xx other than 201 is no acceptance, -06 §5.5)" if 200 <= t.status < 300 else "")
                              for t in dropped))
    else:
        observed(RETRY, f"{len(refused)} /notify answered {', '.join(str(t.status) for _, t in refused)} "
                        "sent again until answered 201")
    if undelivered is not None:  # scored at the requirement's level (SHOULD: it rests on §5.5's retry)
        fail(f"the hub accepted the message (sendMessage) but it never reached bob after /notify was refused: "
             f"{undelivered}", requirement=COMMITMENT)
    observed(COMMITMENT, "the accepted message reached bob despite two /notify answered other than 201")
    got = [m for m in cast.follower.received(bob.client, room) if m == text]
    if len(got) != 1:
        fail(f"bob received the message {len(got)} times, not once: the hub's retry was not the same request",
             requirement=RETRY)


@pytest.mark.requirements(RETRY_AFTER, RETRY)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_retry_waits_for_retry_after(cast, poll_until, recorder):
    """A hub retrying a refused /notify waits at least the Retry-After the follower gave (and may wait longer:
    a slow retry is awaited, bounded)."""
    room, alice, (bob,) = _sut_hub_room(cast)
    mark = cast.follower.traffic_mark()
    cast.follower.refuse_notifies([503], retry_after="1")
    text = b"after a pause " + room.encode()
    try:
        cast.hub.send_ok(room, alice.client, text)
        undelivered = _await_retried_delivery(cast, bob, text, room, mark, recorder)
        if undelivered is not None:  # no retry at all: the retry rule itself is broken, not only its pacing
            fail(f"a /notify refused with 503 was never delivered: {undelivered}", requirement=RETRY)
    finally:
        cast.follower.refuse_notifies([])  # refusals left unused must not hit the next check
    first, retries = _refused_notify_and_its_retries(cast, mark)
    waited = retries[0].time - first.time
    expect(RETRY_AFTER, waited >= 0.95, f"the retry came {waited:.2f} s after a 503 with Retry-After: 1",
           evidence=f"the retry came {waited:.2f} s after a 503 with Retry-After: 1")


@pytest.mark.requirements(RETRY_AFTER, RETRY)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_retry_waits_for_an_http_date_retry_after(cast, poll_until, recorder):
    """A hub retrying a /notify refused with a Retry-After in its HTTP-date form (RFC 9110 §10.2.3:
    "Retry-After = HTTP-date / delay-seconds") waits until that date: -06 §5.5 asks it to retry "respecting
    any guidance provided by the server in HTTP header fields such as Retry-After". The date is three
    seconds ahead, truncated to the second, so the retry is due at least two seconds after the refusal."""
    room, alice, (bob,) = _sut_hub_room(cast)
    mark = cast.follower.traffic_mark()
    when = time.time() + 3
    date = email.utils.formatdate(when, usegmt=True)
    due = int(when) - 0.05  # the date has whole seconds
    cast.follower.refuse_notifies([503], retry_after=date)
    text = b"after a dated pause " + room.encode()
    try:
        cast.hub.send_ok(room, alice.client, text)
        undelivered = _await_retried_delivery(cast, bob, text, room, mark, recorder)
        if undelivered is not None:
            fail(f"a /notify refused with 503 and Retry-After: {date} was never delivered: {undelivered}",
                 requirement=RETRY)
    finally:
        cast.follower.refuse_notifies([])  # refusals left unused must not hit the next check
    first, retries = _refused_notify_and_its_retries(cast, mark)
    early = retries[0].time - due
    expect(RETRY_AFTER, early >= 0, f"the retry came {-early:.2f} s before the Retry-After date {date}",
           evidence=f"the retry came after the Retry-After date {date} ({early:.2f} s after)")


def _refused_notify_and_its_retries(cast, mark):
    """The first /notify the reference follower answered 503 after ``mark`` and the same request sent again
    (PROTO-FANOUT-RETRY-NON-201: judged here; at least one resend)."""
    notifies = cast.follower.traffic(mark, endpoint="notify", direction="in")
    refused = [t for t in notifies if t.status == 503]
    if not refused:
        raise HarnessError("the reference follower refused no /notify")
    first = refused[0]
    retries = [t for t in notifies if t.seq > first.seq and t.request == first.request]
    expect(RETRY, retries, f"the /notify #{first.seq} answered 503 was not sent again",
           evidence=f"the /notify #{first.seq} answered 503 was sent again")
    return first, retries


# -- SUT as follower -------------------------------------------------------------------------------


def _ref_hub_room(cast):
    """A room on the reference hub with Xavier (reference hub) and Sam (SUT); waits until Sam is in."""
    xavier = cast.hub.create_user("xavier")
    room = cast.hub.create_room(xavier)
    sam = cast.follower.create_user("sam")
    cast.hub.add_ok(room, xavier, sam)
    cast.follower.wait_epoch(room, cast.hub.room(room)["epoch"], what="the SUT's client to join the room")
    return room, xavier, sam


@pytest.mark.requirements(DUP_201)
@as_follower
@pytest.mark.operations("createUser", "getRoom", "listReceivedMessages")
def test_duplicate_notify_is_answered_201(cast, sut, mimi):
    """A follower answers a byte-identical repeated /notify from the hub with 201."""
    room, xavier, sam = _ref_hub_room(cast)
    mark = cast.hub.traffic_mark()
    text = b"said once " + room.encode()
    cast.hub.send_ok(room, xavier.client, text)
    cast.follower.wait_received(sam.client, text, room=room)
    sent = [t for t in cast.hub.traffic(mark, endpoint="notify", direction="out") if t.value == room
            and (t.status == 201 or notify_status_reading(t.status, DUP_201) is not None)]
    if not sent:
        raise HarnessError("the reference hub logged no delivered /notify to the SUT")
    reply = mimi.run(mimi.client.call(_authority(sut), "notify", room, sent[-1].request))
    if (reading := notify_status_reading(reply.status, DUP_201)) is not None:
        ambiguous(reading, f"the repeated /notify was answered HTTP {reply.status}, which the register accepts for "
                  f"-06 §5.5's \"201 Accepted\" (/notify #{sent[-1].seq} repeated byte-identical)", requirement=DUP_201)
    expect(DUP_201, reply.status == 201, f"the repeated /notify was answered HTTP {reply.status}, not 201",
           evidence=f"a byte-identical repeat of /notify #{sent[-1].seq} was answered 201")


@pytest.mark.requirements(DUP_ONCE)
@as_follower
@pytest.mark.operations("createUser", "getRoom", "listReceivedMessages")
def test_duplicate_notify_is_processed_once(cast, sut, mimi):
    """A follower ignores a repeated /notify: its clients get the message once."""
    room, xavier, sam = _ref_hub_room(cast)
    mark = cast.hub.traffic_mark()
    text = b"counted once " + room.encode()
    cast.hub.send_ok(room, xavier.client, text)
    cast.follower.wait_received(sam.client, text, room=room)
    sent = [t for t in cast.hub.traffic(mark, endpoint="notify", direction="out") if t.value == room and t.status == 201]
    if not sent:
        raise HarnessError("the reference hub logged no delivered /notify to the SUT")
    mimi.run(mimi.client.call(_authority(sut), "notify", room, sent[-1].request))
    sentinel = b"sentinel " + room.encode()
    cast.hub.send_ok(room, xavier.client, sentinel)
    cast.follower.wait_received(sam.client, sentinel, room=room, what="a later message (sentinel) at the SUT")
    count = cast.follower.received(sam.client, room).count(text)
    expect(DUP_ONCE, count == 1, f"after the /notify was repeated, the SUT's client lists the message {count} times",
           evidence=f"after /notify #{sent[-1].seq} was repeated, the SUT's client lists the message once")


@pytest.mark.requirements(ECHO)
@as_follower
@pytest.mark.operations("createUser", "getRoom", "sendMessage")
def test_echo_of_own_message_is_accepted(cast):
    """A follower answers 201 to a /notify echoing its own client's message back."""
    room, xavier, sam = _ref_hub_room(cast)
    mark = cast.hub.traffic_mark()
    text = b"echoed " + room.encode()
    cast.follower.send_ok(room, sam.client, text)
    cast.hub.wait_received(xavier.client, text, room=room)
    echoes = [t for t in cast.hub.traffic(mark, endpoint="notify", direction="out") if t.value == room]
    if not echoes:
        raise HarnessError("the reference hub logged no /notify echoing the SUT's message")
    first = echoes[0]
    expect(ECHO, first.status == 201, f"the SUT answered the echo of its own message with HTTP {first.status} "
           f"({first.error})", evidence=f"the /notify #{first.seq} echoing sam's message was answered 201")


@pytest.mark.requirements(CONCATENATED)
@as_follower
@pytest.mark.operations("createUser", "getRoom", "listReceivedMessages")
def test_concatenated_notify_is_processed_whole(cast, sut, mimi, poll_until):
    """A follower accepts a /notify of a commit and two application messages concatenated, and its client
    gets both messages."""
    room, xavier, sam = _ref_hub_room(cast)
    epoch = cast.hub.room(room)["epoch"]
    member = _synced_member(cast.hub, room, xavier.client, epoch, poll_until)
    commit = member.commit([]).commit
    member.commit_accepted()
    texts = [b"first of two " + room.encode(), b"second of two " + room.encode()]
    now = int(time.time() * 1000)
    parts = [FanoutMessage(timestamp=now, protocol=Protocol.mls10, message=decode_message(commit), externalProposals=[])]
    parts += [FanoutMessage(timestamp=now, protocol=Protocol.mls10, message=decode_message(member.group.protect(t)),
                            frank=None) for t in texts]
    reply = mimi.run(mimi.client.call(_authority(sut), "notify", room, b"".join(p.encode() for p in parts)))
    if reply.status != 201:
        fail(f"the concatenated /notify was answered HTTP {reply.status}, not 201", requirement=CONCATENATED)
    poll_until(lambda: all(t in cast.follower.received(sam.client, room) for t in texts),
               what="both concatenated messages at the SUT's client", requirement=CONCATENATED)
    observed(CONCATENATED, "a /notify of a commit and two application messages was answered 201 and sam's client "
                           "got both messages")
