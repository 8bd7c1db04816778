"""Metadata privacy (draft-ietf-mimi-protocol-06 §5.4-§5.7, §5.10.2, §6.1; room-policy-04 §5).

What the SUT must not reveal: the sender of a fanned-out message, room messages to providers with
no participant left, whether a room or a user exists, what a consent target decided, and (as an
open download proxy) anything on behalf of anyone. Everything is judged on the bytes the SUT sent or
answered over MIMI, as the suite's reference peers recorded them.
"""

from __future__ import annotations

import re
import socket
import time
import uuid
from urllib.parse import urlsplit

import pytest

from conformance.harness.control import ControlProblem
from conformance.harness.reference_names import current
from conformance.scenarios.notify_bodies import ambiguous_if_read_otherwise, read_fanouts
from conformance.scenarios.roles import as_hub, roles_judging
from conformance.scenarios.test_removal import refused_by_reference, setting_up, setup_add
from conformance.verdicts import HarnessError, blocked, expect, fail, miss, not_applicable, observed
from reference_peer.mls import basic_credential, cipher_suite
from reference_peer.mls.leaf import make_key_package
from reference_peer.wire.codec import DecodeError, EncodeError
from reference_peer.wire.identity import IdentifierUri
from reference_peer.wire.mimi import (
    ConsentEntry,
    ConsentOperation,
    FanoutMessage,
    GroupInfoCode,
    GroupInfoRatchetTreeTBE,
    GroupInfoRequest,
    GroupInfoResponse,
    Protocol,
    SubmitMessageRequest,
    UpdateResponseCode,
    UpdateRoomResponse,
)
from reference_peer.wire.mls import AppDataDictionary, WireFormat

SENDER_HIDDEN = "PROTO-FRANK-SENDER-HIDDEN"
SUBMIT_WIREFORMAT = "PROTO-SUBMIT-SENDER-WIREFORMAT"
ONLY_ACTIVE = "PROTO-FANOUT-ONLY-ACTIVE-PROVIDERS"
TO_ACTIVE = "PROTO-FANOUT-TO-ACTIVE-PROVIDERS"
NO_SUCH_ROOM = "PROTO-GROUPINFO-NO-SUCH-ROOM"
ENCRYPTED = "PROTO-GROUPINFO-ENCRYPTED-TO-REQUESTER"
UNKNOWN_USER_HIDDEN = "PROTO-CONSENT-UNKNOWN-USER-HIDDEN"
LEARNS_NOTHING = "PROTO-CONSENT-REQUESTER-LEARNS-NOTHING"
PSEUDONYMS_NOT_ALLOWED = "POLICY-BASE-PSEUDONYMS-NOT-ALLOWED"
NO_OPEN_PROXY = "PROTO-ASSETS-PROXY-NO-OPEN-PROXY"
MMR_PLIST = "PROTO-MMR-USER-PSEUDONYM-IN-PLIST"
MMR_FORM = "PROTO-MMR-PSEUDONYM-FORM"

MLS10 = {"protocol": Protocol.mls10}
GROUPINFO_LABEL = "GroupInfo and ratchet_tree encryption"
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


# --- helpers -------------------------------------------------------------------------------------


def _authority(sut) -> str:
    """host:port of the SUT's primary domain (its MIMI server may not listen on 443)."""
    return urlsplit(sut.base_urls[sut.primary_domain]).netloc or sut.primary_domain


def _room_with_member(cast, *, policy=None, role=None):
    """A room on the hub with a hub-side creator and a follower-side member, both settled."""
    creator = cast.hub.create_user("creator")
    member = cast.follower.create_user("member")
    room = cast.hub.create_room(creator, policy=policy)
    setup_add(cast.hub, room, creator, member, hub=cast.hub, **({"role": role} if role is not None else {}))
    what = f"{member.uri} to be a participant of {room} at {cast.follower.name}"
    with setting_up(what):
        cast.follower.wait_member(room, member, what=what)
    return creator, member, room


def _fanout_messages(body: bytes) -> list[FanoutMessage]:
    """As written, else in the other reading the register accepts (recorded: notify_bodies)."""
    try:
        return read_fanouts(body)
    except (DecodeError, EncodeError):
        return []  # undecodable fan-out is judged by the fanout area; here only what decodes counts


def _application_fanouts(traffic) -> list[tuple[FanoutMessage, bytes]]:
    """(FanoutMessage, its bytes) of every application message in these /notify requests."""
    out = []
    for item in traffic:
        for message in _fanout_messages(item.request):
            if message.message.wire_format == WireFormat.mls_private_message:
                out.append((message, message.encode()))
    return out


def _identifiers(*users) -> dict[str, bytes]:
    out = {}
    for user in users:
        out[user.uri] = user.uri.encode()
        for client in user.clients:
            out[client] = client.encode()
    return out


def _consent_request(requester: str, target: str) -> bytes:
    return ConsentEntry(
        consentOperation=ConsentOperation.request,
        requesterUri=IdentifierUri(uri=requester.encode()),
        targetUri=IdentifierUri(uri=target.encode()),
        roomId=None,
        consent_extensions=AppDataDictionary(component_data=[]),
    ).encode()


def _answer(reply) -> tuple[int, bytes, str | None]:
    """What a consent answer tells the requester: status, body and content type."""
    return reply.status, reply.body, reply.headers.get("content-type")


def _group_info_request(suite_id: int = 1, user: str = f"mimi://{current().hub}/d/outsider/dev") -> bytes:
    suite = cipher_suite(suite_id)
    priv, pub = suite.generate_signature_key_pair()
    _, hpke_pub = suite.generate_hpke_key_pair()
    req = GroupInfoRequest(
        protocol=Protocol.mls10, cipher_suite=suite_id, requestingSignatureKey=pub,
        requestingCredential=basic_credential(user.encode()), groupInfoPublicKey=hpke_pub, joiningCode=b"",
        signature=b"",
    )
    return req.replace(signature=suite.sign_with_label(priv, "GroupInfoRequestTBS", req.tbs().encode())).encode()


def _role_with(cast, room: str, capability: str) -> int | None:
    info = cast.hub.room(room) or {}
    for role in (info.get("policy") or {}).get("roles", []):
        if capability in role.get("capabilities", []):
            return role["index"]
    return None


# --- the sender is hidden --------------------------------------------------------------------------


@roles_judging(hub=(SENDER_HIDDEN,), follower=(SUBMIT_WIREFORMAT,))
@pytest.mark.operations("createUser", "sendMessage", hub=("createRoom", "addParticipant", "listReceivedMessages"),
                        follower=("getRoom",))
def test_sender_identity_never_travels_in_clear(cast, ref_follower, ref_hub, sut, poll_until, recorder):
    """As hub the SUT fans application messages out without naming the sending user or client in clear;
    as follower it submits them as PrivateMessages that name the sender only in sendingUri."""
    creator, member, room = _room_with_member(cast)
    if cast.sut_role == "hub":
        mark = ref_follower.traffic_mark()
        ref_follower.send_ok(room, member.client, b"from the follower side")
        cast.hub.send_ok(room, creator.client, b"from the hub side")
        with setting_up("both application messages to be delivered"):
            cast.hub.wait_received(creator.client, b"from the follower side", room=room)
            ref_follower.wait_received(member.client, b"from the hub side", room=room)
        def both_fanned_out():
            found = _application_fanouts(
                t for t in ref_follower.traffic(mark, endpoint="notify", direction="in", peer=sut.primary_domain)
                if t.value == room
            )
            return found if len(found) >= 2 else None

        fanouts = poll_until(both_fanned_out, what="the fan-out of both application messages at the reference follower")
        recorder.note(f"{len(fanouts)} application FanoutMessages reached the reference follower")
        for message, raw in fanouts:
            for name, needle in _identifiers(creator, member).items():
                if needle in raw:
                    fail(f"a FanoutMessage the hub sent to {ref_follower.domain} carries {name} in clear "
                         f"(frank {'present' if message.frank is not None else 'absent'})", requirement=SENDER_HIDDEN)
        observed(SENDER_HIDDEN, f"{len(fanouts)} application FanoutMessages to {ref_follower.domain} name neither the "
                 "sending users nor their clients in clear")
        ambiguous_if_read_otherwise(SENDER_HIDDEN, "which FanoutMessages carry application messages")
        return
    # The SUT follows: what it submits to the reference hub (judged on the bytes, accepted or not).
    mark, since = ref_hub.traffic_mark(), time.time() - 1.0
    sent = cast.follower.send(room, member.client, b"from the SUT follower")
    refusal = None
    if sent.get("outcome") == "accepted":
        with setting_up("the reference hub's member to receive the SUT follower's message"):
            ref_hub.wait_received(creator.client, b"from the SUT follower", room=room)
    else:
        refusal = refused_by_reference(ref_hub, mark, since, sut.primary_domain,
                                       f"the SUT's submitMessage for {room}", endpoint="submitMessage")
        recorder.note(refusal[0])
    because = f" ({refusal[0]})" if refusal else ""
    submitted = [t for t in ref_hub.traffic(mark, endpoint="submitMessage", direction="in", peer=sut.primary_domain)
                 if t.value == room]
    if not submitted:
        fail(f"the SUT sent the reference hub no submitMessage for {room} when its user sent a message "
             f"({sent.get('outcome')}){because}", requirement=SUBMIT_WIREFORMAT)
    for item in submitted:
        request = SubmitMessageRequest.decode(item.request)
        if request.appMessage.wire_format != WireFormat.mls_private_message:
            fail(f"the SUT submitted a {request.appMessage.wire_format.name}, not a PrivateMessage: the sender "
                 f"is visible to the hub and every follower{because}", requirement=SUBMIT_WIREFORMAT)
        app = request.appMessage.encode()
        for name, needle in _identifiers(member).items():
            if needle in app:
                fail(f"the PrivateMessage the SUT submitted carries {name} in clear (outside sendingUri), so "
                     f"the hub forwards the sender's identity to every follower{because}", requirement=SUBMIT_WIREFORMAT)
    observed(SUBMIT_WIREFORMAT, f"{len(submitted)} submitMessage(s) from the SUT: PrivateMessages naming the sender "
             "nowhere in clear")
    if refusal is not None and refusal[1] is not None and refusal[1] != SUBMIT_WIREFORMAT:
        blocked(refusal[1], refusal[0])  # the submitted form held, but the SUT broke another rule


# --- fan-out only to providers with participants ------------------------------------------------------


@as_hub
@pytest.mark.requirements(ONLY_ACTIVE)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "removeParticipant", "sendMessage")
def test_no_fanout_to_provider_whose_participants_left(cast, ref_follower, sut, poll_until, recorder):
    """After the last participant of a provider is removed, the hub sends that provider none of the
    room's later application messages."""
    mark = ref_follower.traffic_mark()
    creator, member, room = _room_with_member(cast)
    other_room = cast.hub.create_room(creator)
    setup_add(cast.hub, other_room, creator, member, hub=cast.hub)
    with setting_up(f"{member.uri} to be a participant of a second room"):
        ref_follower.wait_member(other_room, member)
    removal = cast.hub.remove(room, creator, member)
    if removal.get("outcome") != "accepted":
        not_applicable(f"set-up failed: the SUT refused its own user's removal of {member.uri} "
                       f"({removal.get('outcome')}), so the follower's last participant never left")
    with setting_up(f"{ref_follower.domain} to see {member.uri} removed from {room}"):
        poll_until(lambda: member.uri not in ref_follower.participants(room),
                   what=f"{ref_follower.domain} to see {member.uri} removed from {room}")
    cast.hub.send_ok(room, creator.client, b"after the last follower participant left")
    # Sentinel on the same destination, sent after: once it arrived, the earlier message would have too.
    cast.hub.send_ok(other_room, creator.client, b"sentinel")
    with setting_up("the sentinel message to reach the reference follower"):
        ref_follower.wait_received(member.client, b"sentinel", room=other_room)
    leaked = _application_fanouts(
        t for t in ref_follower.traffic(mark, endpoint="notify", direction="in", peer=sut.primary_domain) if t.value == room
    )
    recorder.note(f"application messages of {room} at {ref_follower.domain} after the removal: {len(leaked)}")
    expect(ONLY_ACTIVE, not leaked, f"the hub fanned {len(leaked)} application message(s) of {room} out to "
           f"{ref_follower.domain} after its last participant was removed",
           evidence=f"no message of {room} reached {ref_follower.domain} after its last participant left (a later "
                    "sentinel did)")
    ambiguous_if_read_otherwise(ONLY_ACTIVE, "which /notify carried an application message")


# --- ciphertext forwarded as submitted -----------------------------------------------------------------


@as_hub
@pytest.mark.requirements(TO_ACTIVE)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_ciphertext_is_forwarded_byte_identical(cast, ref_follower, ref_hub, sut, poll_until):
    """The hub forwards a follower's PrivateMessage to the other providers exactly as it was submitted."""
    creator, member, room = _room_with_member(cast)
    third = ref_hub.create_user("third")
    setup_add(cast.hub, room, creator, third, hub=cast.hub)
    with setting_up("both reference providers to hold the room's current epoch"):
        ref_hub.wait_member(room, third)
        ref_follower.wait_epoch(room, cast.hub.room(room)["epoch"])
    mark_out, mark_in = ref_follower.traffic_mark(), ref_hub.traffic_mark()
    ref_follower.send_ok(room, member.client, b"forward me unchanged")
    submitted = [SubmitMessageRequest.decode(t.request).appMessage.encode()
                 for t in ref_follower.traffic(mark_out, endpoint="submitMessage", direction="out") if t.value == room]
    if len(submitted) != 1:
        raise HarnessError(f"the suite's reference follower sent {len(submitted)} submitMessage(s) for one message, "
                           "not one")
    forwarded = poll_until(
        lambda: _application_fanouts(
            t for t in ref_hub.traffic(mark_in, endpoint="notify", direction="in", peer=sut.primary_domain)
            if t.value == room
        ),
        what=f"the hub to fan the message out to {ref_hub.domain}",
    )
    for message, _ in forwarded:
        got = message.message.encode()
        if got != submitted[0]:
            fail(f"the PrivateMessage fanned out to {ref_hub.domain} ({len(got)} bytes) differs from the one "
                 f"{ref_follower.domain} submitted ({len(submitted[0])} bytes)", requirement=TO_ACTIVE)
    observed(TO_ACTIVE, f"{len(forwarded)} fan-out(s) to {ref_hub.domain} carry the submitted PrivateMessage "
             "byte for byte")
    ambiguous_if_read_otherwise(TO_ACTIVE, "the PrivateMessage each FanoutMessage carries")


# --- groupInfo: room existence does not leak, GroupInfo encrypted to the requester ---------------------


@as_hub
@pytest.mark.requirements(NO_SUCH_ROOM)
@pytest.mark.operations("createUser", "createRoom")
def test_group_info_does_not_reveal_whether_a_room_exists(cast, mimi, sut, names, recorder):
    """groupInfo for a room that does not exist answers noSuchRoom, or notAuthorized exactly as for an
    existing room the requester may not see."""
    creator = cast.hub.create_user("creator")
    room = cast.hub.create_room(creator)
    missing = f"mimi://{sut.primary_domain}/r/{names('absent')}"
    replies = {}
    for what, room_id in (("existing", room), ("missing", missing)):
        reply = mimi.run(mimi.client.call(_authority(sut), "groupInfo", room_id, _group_info_request()))
        recorder.note(f"groupInfo for the {what} room {room_id}: HTTP {reply.status}, {len(reply.body)} bytes")
        replies[what] = (room_id, reply)
    _, unknown = replies["missing"]
    if unknown.status != 200:
        fail(f"groupInfo for a room that does not exist answered HTTP {unknown.status}, not a GroupInfoResponse "
             "with noSuchRoom or notAuthorized", requirement=NO_SUCH_ROOM)
    try:
        answer = GroupInfoResponse.decode(unknown.body)
    except (DecodeError, EncodeError) as exc:
        fail(f"groupInfo for a room that does not exist: undecodable GroupInfoResponse ({exc})", requirement=NO_SUCH_ROOM)
    if answer.status == GroupInfoCode.noSuchRoom:
        observed(NO_SUCH_ROOM, "groupInfo for a room that does not exist answered noSuchRoom")
        return
    if answer.status != GroupInfoCode.notAuthorized:
        fail(f"groupInfo for a room that does not exist answered {answer.status.name}", requirement=NO_SUCH_ROOM)
    _, known = replies["existing"]
    if known.status != unknown.status:
        fail(f"notAuthorized for a missing room is HTTP {unknown.status} but HTTP {known.status} for an existing "
             "room: the answer reveals which rooms exist", requirement=NO_SUCH_ROOM)
    try:
        existing = GroupInfoResponse.decode(known.body)
    except (DecodeError, EncodeError):
        fail("groupInfo for an existing room answers an undecodable body where a missing room gets notAuthorized",
             requirement=NO_SUCH_ROOM)
    if existing.replace(room_id=b"").encode() != answer.replace(room_id=b"").encode():
        fail(f"an existing room the requester may not see answers {existing.status.name} differently from a missing "
             "room's notAuthorized: the answer reveals which rooms exist", requirement=NO_SUCH_ROOM)
    observed(NO_SUCH_ROOM, "a missing room and an existing one the requester may not see both answer the same "
             "notAuthorized")


@as_hub
@pytest.mark.requirements(ENCRYPTED)
@pytest.mark.operations("createUser", "createRoom", "addParticipant")
def test_group_info_is_encrypted_to_the_requester(cast, ref_follower, mimi_as, sut):
    """The hub encrypts the GroupInfo, tree and pending proposals to the requester's groupInfoPublicKey with
    label "GroupInfo and ratchet_tree encryption" and the room id as context."""
    _, member, room = _room_with_member(cast)
    state = ref_follower.member_state(room, member.client)
    suite = cipher_suite(state.suite_id)
    hpke_priv, hpke_pub = suite.generate_hpke_key_pair()
    session = mimi_as(ref_follower.domain)
    reply = session.run(session.client.call(_authority(sut), "groupInfo", room,
                                            state.group_info_request(hpke_pub).encode()))
    if reply.status != 200:
        fail(f"groupInfo from an active participant's provider answered HTTP {reply.status}", requirement=ENCRYPTED)
    response = GroupInfoResponse.decode(reply.body)
    if response.status != GroupInfoCode.success:
        not_applicable(f"the hub refused a participant's groupInfo ({response.status.name}); nothing was encrypted")
    ct = response.encrypted_groupinfo_and_tree
    try:
        plain = suite.decrypt_with_label(hpke_priv, GROUPINFO_LABEL, room.encode(), bytes(ct.kem_output),
                                         bytes(ct.ciphertext))
    except Exception as exc:  # noqa: BLE001 - any decryption failure is the finding
        fail(f"encrypted_groupinfo_and_tree does not open with the requester's key, the label and the room id "
             f"as context ({type(exc).__name__}: {exc})", requirement=ENCRYPTED)
    try:
        tbe = GroupInfoRatchetTreeTBE.decode(plain)
    except (DecodeError, EncodeError) as exc:
        fail(f"the decrypted groupInfo is no GroupInfoRatchetTreeTBE: {exc}", requirement=ENCRYPTED)
    if bytes(tbe.groupInfo.group_context.group_id) != state.group.group_id:
        fail("the decrypted GroupInfo is for another group than the room's", requirement=ENCRYPTED)
    observed(ENCRYPTED, "the GroupInfo opened with the requester's key, the label and the room id as context, and "
             "is the room's group")


# --- consent answers reveal nothing ------------------------------------------------------------------------


@pytest.mark.requirements(UNKNOWN_USER_HIDDEN)
@pytest.mark.operations("createUser")
def test_consent_request_for_unknown_user(sut_party, ref_hub, mimi, sut, names, recorder):
    """requestConsent for an unknown user answers 404, or 201 exactly as for a known user."""
    requester = ref_hub.create_user("requester")
    known = sut_party.create_user("target")
    unknown = f"mimi://{sut.primary_domain}/u/{names('nobody')}"
    answers = {}
    for what, target in (("known", known.uri), ("unknown", unknown)):
        reply = mimi.run(mimi.client.call(_authority(sut), "requestConsent", sut.primary_domain,
                                          _consent_request(requester.uri, target)))
        recorder.note(f"requestConsent for the {what} user: HTTP {reply.status}, body {reply.body[:80]!r}")
        answers[what] = reply
    status = answers["unknown"].status
    if status == 404:
        observed(UNKNOWN_USER_HIDDEN, "requestConsent for an unknown user answered 404")
        return
    if status != 201:
        fail(f"requestConsent for an unknown user answered {status}, neither 404 nor 201", requirement=UNKNOWN_USER_HIDDEN)
    if _answer(answers["unknown"]) != _answer(answers["known"]):
        fail(f"201 for an unknown user differs from the answer for a known one: {_answer(answers['unknown'])!r} vs "
             f"{_answer(answers['known'])!r}", requirement=UNKNOWN_USER_HIDDEN)
    names_unknown = set(answers["unknown"].headers.keys()) - {"date"}
    names_known = set(answers["known"].headers.keys()) - {"date"}
    if names_unknown != names_known:
        fail(f"201 for an unknown user has other headers than for a known one ({sorted(names_unknown ^ names_known)})",
             requirement=UNKNOWN_USER_HIDDEN)
    observed(UNKNOWN_USER_HIDDEN, "requestConsent for an unknown user answered 201 exactly as for a known one")


@pytest.mark.requirements(LEARNS_NOTHING)
@pytest.mark.operations("createUser", "listUserEvents", "revokeConsent")
def test_consent_answer_does_not_reveal_the_decision(sut_party, ref_hub, mimi, sut, recorder):
    """The answer to requestConsent is the same whether the target viewed, ignored or rejected the request."""
    for operation in ("revokeConsent", "listUserEvents"):
        if not sut_party.supports(operation):
            not_applicable(f"the SUT's control API has no {operation}: it cannot make a user view (listUserEvents) "
                           "or reject (revokeConsent)", operation=operation)
    requester = ref_hub.create_user("requester")
    viewer, ignorer, rejecter = (sut_party.create_user(n) for n in ("viewer", "ignorer", "rejecter"))

    def ask(target) -> tuple[int, bytes, str | None]:
        reply = mimi.run(mimi.client.call(_authority(sut), "requestConsent", sut.primary_domain,
                                          _consent_request(requester.uri, target.uri)))
        return _answer(reply)

    first = {u.uri: ask(u) for u in (viewer, ignorer, rejecter)}
    sut_party.events(viewer)
    sut_party.revoke_consent(rejecter, requester.uri)
    again = {u.uri: ask(u) for u in (viewer, ignorer, rejecter)}
    recorder.note(f"answers before: {first}; after viewing/ignoring/rejecting: {again}")
    if len(set(first.values()) | set(again.values())) != 1:
        fail(f"requestConsent answers differ by what the target did: viewed {again[viewer.uri]!r}, ignored "
             f"{again[ignorer.uri]!r}, rejected {again[rejecter.uri]!r} (first requests: {list(first.values())!r})",
             requirement=LEARNS_NOTHING)
    observed(LEARNS_NOTHING, f"the 6 requestConsent answers (before and after the targets viewed, ignored or rejected) "
             f"are identical: HTTP {next(iter(again.values()))[0]}")


# --- pseudonyms ------------------------------------------------------------------------------------------


@as_hub
@pytest.mark.requirements(PSEUDONYMS_NOT_ALLOWED)
@pytest.mark.operations("createUser", "createRoom", "getRoom", "addParticipant")
def test_pseudonymous_member_refused_when_pseudonyms_not_allowed(cast, ref_follower, mimi_as, sut, recorder):
    """In a room whose policy has pseudonyms_allowed false, the hub refuses a commit adding a client whose
    credential names a pseudonym (mimi://domain/p/...)."""
    creator = cast.hub.create_user("creator")
    member = ref_follower.create_user("adder")
    room = cast.hub.create_room(creator, policy={"base": {"pseudonymsAllowed": False}})
    role = _role_with(cast, room, "canAddParticipant")
    if role is None:
        not_applicable("no role of the room's policy has canAddParticipant: a follower-side client cannot add anyone")
    setup_add(cast.hub, room, creator, member, hub=cast.hub, role=role)
    with setting_up(f"{member.uri} to join {room} at {ref_follower.domain}"):
        ref_follower.wait_member(room, member)
        epoch = cast.hub.room(room)["epoch"]
        ref_follower.wait_epoch(room, epoch)
    state = ref_follower.member_state(room, member.client)
    pseudonym = f"mimi://{ref_follower.domain}/p/{uuid.uuid4()}"
    bundle = make_key_package(state.suite_id, basic_credential(pseudonym.encode()))
    member_role = _role_with(cast, room, "canSendMessage") or 2
    request = state.add_users([bundle.key_package], new_users=[(pseudonym.encode(), member_role)]).request
    session = mimi_as(ref_follower.domain)
    reply = session.run(session.client.call(_authority(sut), "update", room, request))
    recorder.note(f"update adding {pseudonym}: HTTP {reply.status}")
    if reply.status != 200:
        observed(PSEUDONYMS_NOT_ALLOWED, f"the commit adding a pseudonym was refused with HTTP {reply.status}")
        return  # refused at the HTTP level
    answer = UpdateRoomResponse.decode(reply.body)
    expect(PSEUDONYMS_NOT_ALLOWED, answer.responseCode != UpdateResponseCode.success,
           f"the hub accepted a commit adding the pseudonym {pseudonym} to a room whose policy does not allow "
           "pseudonyms", evidence=f"the commit adding a pseudonym was refused ({answer.responseCode.name})")


@as_hub
@pytest.mark.feature("minimalMetadataRooms")
@pytest.mark.requirements(MMR_PLIST, MMR_FORM)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_minimal_metadata_room_lists_pseudonyms_only(cast, sut):
    """In a minimal-metadata room the participant list holds pseudonyms only: mimi://<the user's provider>/u/
    or /p/<random UUID>, never the users' real URIs, and no pseudonym repeats across rooms."""
    creator = cast.hub.create_user("creator")
    friend = cast.hub.create_user("friend")
    rooms = []
    for _ in range(2):
        try:
            room = cast.hub.create_room(creator, policy={"minimalMetadata": True})
        except ControlProblem as exc:
            if exc.status == 422:
                not_applicable(f"the SUT does not host minimal-metadata rooms: {exc}")
            raise
        setup_add(cast.hub, room, creator, friend, hub=cast.hub)
        rooms.append(set(cast.hub.participants(room)))
    # -06 §6 fixes the UUID and the domain, not the path: draft-mahy-mimi-identity has both a /u/ and a
    # /p/ form, so either is accepted.
    prefixes = tuple(f"mimi://{sut.primary_domain}/{kind}/" for kind in ("u", "p"))
    entries = sorted(set().union(*rooms))
    real = [entry for entry in entries if entry in (creator.uri, friend.uri)]
    if real:
        miss(MMR_PLIST, f"the participant list of a minimal-metadata room names the real user(s) {real}")
    else:
        observed(MMR_PLIST, f"the participant lists of 2 minimal-metadata rooms name no real user ({len(entries)} "
                 "entries)")
    malformed = [entry for entry in entries
                 if not any(entry.startswith(prefix) and UUID4.match(entry[len(prefix):]) for prefix in prefixes)]
    form = f"mimi://{sut.primary_domain}/(u|p)/<random UUID>"
    if malformed:
        miss(MMR_FORM, f"participant(s) {malformed} are no pseudonyms of the form {form}")
    if rooms[0] & rooms[1]:
        miss(MMR_FORM, f"pseudonyms repeat across rooms: {sorted(rooms[0] & rooms[1])}")
    if not malformed and not rooms[0] & rooms[1]:
        observed(MMR_FORM, f"all {len(entries)} entries are {form}, none repeated across the 2 rooms")


# --- no open download proxy --------------------------------------------------------------------------------


@pytest.mark.role("hub")
# Offering proxyDownload at all is optional in -06 (§5.10.2; a directory may omit it): the rule binds a
# hub that declares the feature.
@pytest.mark.feature("proxyDownload")
@pytest.mark.requirements(NO_OPEN_PROXY)
@pytest.mark.operations()
def test_proxy_download_refuses_hosts_of_no_peer(mimi, sut, names, recorder):
    """proxyDownload for a URL on a host that is no peer provider's asset domain is refused with an HTTP
    error, and the hub makes no request to that host."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=8)
    try:
        port = listener.getsockname()[1]
        url = f"https://127.0.0.1:{port}/{names('asset')}.bin"
        reply = mimi.run(mimi.client.call(_authority(sut), "proxyDownload", url))
        recorder.note(f"proxyDownload {url}: HTTP {reply.status}")
        listener.setblocking(False)
        try:
            connection, _ = listener.accept()  # a connection the hub made is waiting in the backlog
        except BlockingIOError:
            connection = None
        if connection is not None:
            connection.close()
            fail(f"the hub connected to {url}, a host that is no peer provider's asset domain, for proxyDownload "
                 f"(and answered HTTP {reply.status})", requirement=NO_OPEN_PROXY)
    finally:
        listener.close()
    expect(NO_OPEN_PROXY, not 200 <= reply.status < 300,
           f"proxyDownload for {url} (no peer's asset domain) answered HTTP {reply.status}",
           evidence=f"proxyDownload for a host of no peer was refused with HTTP {reply.status}, and the hub did not "
                    "connect to it")

