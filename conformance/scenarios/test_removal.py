"""Removal: removing users and clients, self-leave, bans, and what a removed member may still do
(draft-ietf-mimi-protocol-06 §3.5, §5.3, §5.5, §7.4; room-policy-04 §8.1.2-§8.1.3; mls-extensions-09 §6.3.1).

With the SUT as hub, the suite acts as a removed reference-follower client: it takes that client's
MLS state before the removal (``ref_follower.member_state``) and submits, as follower.ref.test,
what the client can still build; the hub must refuse it. With the SUT as follower, the SUT's own
clients are removed, leave or remove others, and what they sent and received is judged.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from conformance.harness.control import ControlProblem
from conformance.scenarios.roles import as_hub, both_roles
from conformance.verdicts import HarnessError, fail
from reference_peer.mls import (
    app_data_update_proposal,
    basic_credential,
    cipher_suite,
    gce_proposal,
    remove_proposal,
    self_remove_proposal,
)
from reference_peer.mls.group import external_senders_extension, set_extension
from reference_peer.room import participants as plist_mod
from reference_peer.room.naming import user_of_credential
from reference_peer.wire.mimi import (
    COMPONENT_PARTICIPANT_LIST,
    FanoutMessage,
    Protocol,
    SubmitMessageRequest,
    SubmitMessageResponse,
    SubmitResponseCode,
    UpdateRequest,
    UpdateResponseCode,
    UpdateRoomResponse,
)
from reference_peer.wire.mls import ContentType, ExtensionType, ExternalSender, ProposalType

FOLLOWER_DOMAIN = "follower.ref.test"
ADMIN = 3
BANNED = 1
MEMBER = 2

REMOVE_SIMULTANEOUS = "PROTO-UPDATE-REMOVE-SIMULTANEOUS"
NO_CLIENTS_LEFT = "POLICY-CAP-REMOVE-PARTICIPANT-NO-CLIENTS-LEFT"
BLOCK_SEND = "PROTO-REMOVAL-BLOCK-APP-SEND"
BLOCK_RECEIVE = "PROTO-REMOVAL-BLOCK-APP-RECEIVE"
BLOCK_COMMITS = "PROTO-REMOVAL-BLOCK-COMMITS"
ONLY_REMOVE_PROPOSALS = "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS"
LEAVE_CACHED = "PROTO-UPDATE-SELF-LEAVE-CACHED"
SELF_ALL_CLIENTS = "POLICY-CAP-REMOVE-SELF-ALL-CLIENTS"
REMOVED_GETS_COMMIT = "PROTO-FANOUT-REMOVED-GETS-COMMIT"
SELFREMOVE_INFORMED = "MLSEXT-SELFREMOVE-REMOVED-INFORMED"
BAN_REMOVES_CLIENTS = "POLICY-CAP-BAN-REMOVES-CLIENTS"
EXTSENDERS_LAST_FOLLOWER = "PROTO-EXTSENDERS-REMOVE-LAST-FOLLOWER"


# --------------------------------------------------------------------------------------------
# helpers


def _sut_admin_room(cast):
    """A room on the hub with an admin user on the SUT (the room's creator when the SUT is hub,
    else added with the admin role by the reference hub's creator); returns (room, admin)."""
    if cast.sut_role == "hub":
        admin = cast.hub.create_user("admin")
        return cast.hub.create_room(admin), admin
    creator = cast.hub.create_user("creator")
    room = cast.hub.create_room(creator)
    admin = cast.sut.create_user("admin")
    cast.hub.add_ok(room, creator, admin, role=ADMIN)
    cast.sut.wait_epoch(room, cast.hub.room(room)["epoch"], what="the SUT's admin to join the room (Welcome)")
    return room, admin


def _hub_room(cast):
    admin = cast.hub.create_user("admin")
    return cast.hub.create_room(admin), admin


def _reference_tree_users(cast, room, witness_client: str) -> dict[int, bytes | None]:
    """leaf index -> user URI in the reference party's current view of the group."""
    if cast.reference is cast.hub:
        return cast.hub.hub_state(room).member_users()
    member = cast.reference.member_state(room, witness_client)
    return {i: user_of_credential(leaf.credential) for i, leaf in member.group.members()}


def _reference_plist(cast, room, witness_client: str) -> dict[bytes, int]:
    if cast.reference is cast.hub:
        return cast.hub.hub_state(room).roles()
    member = cast.reference.member_state(room, witness_client)
    return plist_mod.roles_by_user(member.participant_list())


def _synced_state(ref_follower, sut_party, room, client, poll_until):
    """The reference follower client's member state once it is at the SUT hub's epoch."""
    epoch = sut_party.room(room)["epoch"]
    return poll_until(
        lambda: (m := ref_follower.member_state(room, client)).epoch >= epoch and m,
        what=f"{client} to reach epoch {epoch} of {room}",
    )


def _authority(sut, room: str) -> str:
    """host[:port] of the SUT's base URL for the room's hub domain."""
    domain = room.split("/")[2]
    return urlsplit(sut.base_urls.get(domain, sut.base_urls[sut.primary_domain])).netloc


def _post_update(mimi_as, sut, room, body: bytes) -> UpdateRoomResponse:
    session = mimi_as(FOLLOWER_DOMAIN)
    reply = session.run(session.client.call(_authority(sut, room), "update", room, body))
    if reply.status != 200:
        fail(f"/update answered HTTP {reply.status}, not 200 with an UpdateRoomResponse")
    return UpdateRoomResponse.decode(reply.body)


def _post_submit(mimi_as, sut, room, body: bytes) -> SubmitMessageResponse:
    session = mimi_as(FOLLOWER_DOMAIN)
    reply = session.run(session.client.call(_authority(sut, room), "submitMessage", room, body))
    if reply.status != 200:
        fail(f"/submitMessage answered HTTP {reply.status}, not 200 with a SubmitMessageResponse")
    return SubmitMessageResponse.decode(reply.body)


def _plist_removal(member, user: bytes):
    index = plist_mod.index_of(member.participant_list(), user)
    if index is None:
        raise HarnessError(f"{user!r} is not in the reference client's participant list")
    return app_data_update_proposal(int(COMPONENT_PARTICIPANT_LIST), plist_mod.make_update(removed=[index]).encode())


def _expect_accepted(response: UpdateRoomResponse, what: str) -> None:
    if response.responseCode != UpdateResponseCode.success:
        raise HarnessError(f"{what} was not accepted, so the check cannot proceed: "
                           f"{response.responseCode.name} {response.errorDescription!r}")


def _pending_removal(cast, sut, ref_follower, sut_party, mimi_as, poll_until, recorder):
    """SUT hub room with a reference-follower admin (dave) and member (bob); dave's proposals removing
    bob (participant list and every client) are accepted but not committed. Returns (room, bob, bob's state)."""
    room, admin = _hub_room(cast)
    dave = ref_follower.create_user("dave")
    bob = ref_follower.create_user("bob")
    cast.hub.add_ok(room, admin, dave, role=ADMIN)
    cast.hub.add_ok(room, admin, bob)
    dave_state = _synced_state(ref_follower, sut_party, room, dave.client, poll_until)
    bob_state = _synced_state(ref_follower, sut_party, room, bob.client, poll_until)
    leaves = dave_state.leaves_of_user(bob.uri.encode())
    body = dave_state.proposals_request([_plist_removal(dave_state, bob.uri.encode()),
                                         *[remove_proposal(leaf) for leaf in leaves]])
    recorder.note(f"dave proposes the removal of {bob.uri} (not committed)")
    _expect_accepted(_post_update(mimi_as, sut, room, body), "the admin's proposals removing bob")
    return room, bob, bob_state


# --------------------------------------------------------------------------------------------
# removing a user


@both_roles
@pytest.mark.requirements(REMOVE_SIMULTANEOUS, NO_CLIENTS_LEFT)
def test_removing_a_user_removes_all_its_clients(cast, poll_until, recorder):
    """A user removed through the SUT leaves the participant list and the MLS group with all of its
    clients in the same commit."""
    room, admin = _sut_admin_room(cast)
    bob = cast.reference.create_user("bob", clients=2)
    witness = cast.reference.create_user("witness")
    cast.sut.add_ok(room, admin, bob)
    cast.sut.add_ok(room, admin, witness)
    poll_until(lambda: len([u for u in _reference_tree_users(cast, room, witness.client).values()
                            if u == bob.uri.encode()]) == 2, what="both of bob's clients in the group")
    result = cast.sut.remove(room, admin, bob)
    if result.get("outcome") != "accepted":
        fail(f"the SUT's removal of a user with two clients was not accepted by the hub: {result}",
             requirement=NO_CLIENTS_LEFT)
    poll_until(lambda: bob.uri.encode() not in _reference_plist(cast, room, witness.client),
               what="bob to leave the participant list in the reference view")
    left = [i for i, u in _reference_tree_users(cast, room, witness.client).items() if u == bob.uri.encode()]
    if left:
        fail(f"bob is off the participant list but his clients at leaves {left} are still in the group",
             requirement=NO_CLIENTS_LEFT)
    if bob.uri in cast.sut.participants(room):
        fail("the SUT still lists the removed user as a participant", requirement=NO_CLIENTS_LEFT)


@as_hub
@pytest.mark.requirements(REMOVE_SIMULTANEOUS, NO_CLIENTS_LEFT)
def test_hub_refuses_commit_leaving_a_removed_users_client(cast, sut, ref_follower, sut_party, mimi_as, poll_until, recorder):
    """The hub refuses a commit that takes a user off the participant list but leaves one of its clients."""
    room, admin = _hub_room(cast)
    dave = ref_follower.create_user("dave")
    bob = ref_follower.create_user("bob", clients=2)
    cast.hub.add_ok(room, admin, dave, role=ADMIN)
    cast.hub.add_ok(room, admin, bob)
    dave_state = _synced_state(ref_follower, sut_party, room, dave.client, poll_until)
    leaves = dave_state.leaves_of_user(bob.uri.encode())
    if len(leaves) != 2:
        raise HarnessError(f"bob should have two clients in the group, the reference sees {leaves}")
    out = dave_state.commit([_plist_removal(dave_state, bob.uri.encode()), remove_proposal(leaves[0])],
                            include_cached=False)
    recorder.note("dave commits bob's participant-list removal with the Remove of only one of his two clients")
    response = _post_update(mimi_as, sut, room, out.request)
    if response.responseCode == UpdateResponseCode.success:
        fail("the hub accepted a commit removing bob from the participant list while one of his clients "
             "stays in the group", requirement=NO_CLIENTS_LEFT)


# --------------------------------------------------------------------------------------------
# a removed member can neither send, commit, propose (except its removal) nor receive


@as_hub
@pytest.mark.requirements(BLOCK_SEND)
def test_hub_refuses_message_from_removed_member(cast, sut, ref_follower, sut_party, mimi_as, poll_until, recorder):
    """After a removal is accepted, the hub answers notAllowed to a removed client's application message."""
    room, admin = _hub_room(cast)
    bob = ref_follower.create_user("bob")
    witness = ref_follower.create_user("witness")
    cast.hub.add_ok(room, admin, bob)
    cast.hub.add_ok(room, admin, witness)
    bob_state = _synced_state(ref_follower, sut_party, room, bob.client, poll_until)
    cast.hub.remove(room, admin, bob)
    epoch = sut_party.room(room)["epoch"]
    request = SubmitMessageRequest.decode(bob_state.send(b"from a removed member"))
    # The hub cannot decrypt: only the membership of the sender can make it refuse, whatever the epoch.
    message = request.appMessage
    current = request.replace(appMessage=message.replace(private_message=message.private_message.replace(epoch=epoch)))
    for label, body in (("current-epoch", current.encode()), ("stale-epoch", request.encode())):
        response = _post_submit(mimi_as, sut, room, body)
        recorder.note(f"{label} message from removed bob: {response.statusCode.name}")
        if response.statusCode == SubmitResponseCode.accepted:
            fail(f"the hub accepted a {label} application message from a removed participant", requirement=BLOCK_SEND)
        if label == "current-epoch" and response.statusCode != SubmitResponseCode.notAllowed:
            fail(f"the hub answered {response.statusCode.name}, not notAllowed, to a removed participant's "
                 "message of the current epoch", requirement=BLOCK_SEND)


@as_hub
@pytest.mark.requirements(BLOCK_COMMITS)
def test_hub_refuses_commit_from_member_being_removed(cast, sut, ref_follower, sut_party, mimi_as, poll_until, recorder):
    """Once a user's removal is accepted (even before it is committed), the hub refuses commits from its clients."""
    room, bob, bob_state = _pending_removal(cast, sut, ref_follower, sut_party, mimi_as, poll_until, recorder)
    out = bob_state.commit([], include_cached=False)
    response = _post_update(mimi_as, sut, room, out.request)
    recorder.note(f"bob's commit while his removal is pending: {response.responseCode.name}")
    if response.responseCode == UpdateResponseCode.success:
        fail("the hub accepted a commit from a client whose user's removal it had accepted", requirement=BLOCK_COMMITS)


@as_hub
@pytest.mark.requirements(ONLY_REMOVE_PROPOSALS)
def test_member_being_removed_may_only_propose_its_removal(cast, sut, ref_follower, sut_party, mimi_as, poll_until, recorder):
    """A client of a user whose removal is accepted may send SelfRemove, but the hub refuses its Update proposal."""
    room, bob, bob_state = _pending_removal(cast, sut, ref_follower, sut_party, mimi_as, poll_until, recorder)
    update = bob_state.proposal_messages_request([bob_state.group.propose_update()])
    response = _post_update(mimi_as, sut, room, update)
    recorder.note(f"bob's Update proposal: {response.responseCode.name}")
    if response.responseCode == UpdateResponseCode.success:
        fail("the hub accepted an Update proposal from a client whose user's removal it had accepted",
             requirement=ONLY_REMOVE_PROPOSALS)
    response = _post_update(mimi_as, sut, room, bob_state.proposals_request([self_remove_proposal()]))
    recorder.note(f"bob's SelfRemove proposal: {response.responseCode.name}")
    if response.responseCode != UpdateResponseCode.success:
        fail(f"the hub refused the SelfRemove of a client being removed: {response.responseCode.name} "
             f"{response.errorDescription!r}", requirement=ONLY_REMOVE_PROPOSALS)


@as_hub  # the rule binds the hub; as follower the SUT's removed client cannot decrypt anyway (MLS)
@pytest.mark.requirements(BLOCK_RECEIVE)
def test_removed_client_receives_no_later_message(cast, sut, mimi_as, poll_until, recorder):
    """No application message sent after a user's removal reaches any of its clients, while a remaining
    client of the same provider receives it."""
    room, admin = _hub_room(cast)
    bob = cast.follower.create_user("bob", clients=2)
    witness = cast.follower.create_user("witness")
    cast.hub.add_ok(room, admin, bob)
    cast.hub.add_ok(room, admin, witness)
    cast.hub.send_ok(room, admin.client, b"before removal")
    for client in bob.clients:
        cast.follower.wait_received(client, b"before removal", room=room)
    removed = False
    if cast.sut_role == "hub":
        # A removal by a reference admin whose commit forgets one of bob's clients: a hub must refuse
        # it (then the SUT's own admin removes bob); a hub that accepts it leaves that client listening.
        dave = cast.follower.create_user("dave")
        cast.hub.add_ok(room, admin, dave, role=ADMIN)
        epoch = cast.hub.room(room)["epoch"]
        dave_state = poll_until(lambda: (m := cast.follower.member_state(room, dave.client)).epoch >= epoch and m,
                                what="dave to reach the hub's epoch")
        leaves = dave_state.leaves_of_user(bob.uri.encode())
        out = dave_state.commit([_plist_removal(dave_state, bob.uri.encode()), remove_proposal(leaves[0])],
                                include_cached=False)
        removed = _post_update(mimi_as, sut, room, out.request).responseCode == UpdateResponseCode.success
        recorder.note(f"the hub {'accepted' if removed else 'refused'} a removal leaving one of bob's clients")
    if not removed:
        result = cast.hub.remove(room, admin, bob)
        if result.get("outcome") != "accepted":
            if cast.sut_role == "hub":  # the SUT could not remove bob at all: he stays a receiving member
                fail(f"the SUT's removal of bob was refused by itself as hub: {result}", requirement=BLOCK_RECEIVE)
            raise HarnessError(f"the removal of bob was not accepted: {result}")
    epoch = cast.hub.room(room)["epoch"]
    poll_until(lambda: (info := cast.follower.room(room)) is not None and info["epoch"] >= epoch,
               what="the follower to process the removal")
    cast.hub.send_ok(room, admin.client, b"after removal")
    cast.follower.wait_received(witness.client, b"after removal", room=room,
                                what="the remaining member to receive the message sent after the removal")
    for client in bob.clients:
        if b"after removal" in cast.follower.received(client, room):
            fail(f"removed bob's client {client} received a message sent after his removal", requirement=BLOCK_RECEIVE)


# --------------------------------------------------------------------------------------------
# the removed user's provider gets the removing commit


@as_hub  # the rule binds the hub (what a follower does with the commit has no requirement of its own)
@pytest.mark.requirements(REMOVED_GETS_COMMIT)
def test_removed_users_provider_gets_the_removing_commit(cast, poll_until, recorder):
    """The provider of a removed user receives the commit removing its clients (its client sees it has been
    removed), even though that provider has no participant left in the room."""
    room, admin = _hub_room(cast)
    bob = cast.follower.create_user("bob")
    cast.hub.add_ok(room, admin, bob)
    cast.hub.send_ok(room, admin.client, b"hello bob")
    cast.follower.wait_received(bob.client, b"hello bob", room=room)
    mark = cast.reference.traffic_mark()
    result = cast.hub.remove(room, admin, bob)
    if result.get("outcome") != "accepted":
        raise HarnessError(f"the removal of bob was not accepted: {result}")
    def removing_commit_seen() -> bool:
        for item in cast.follower.traffic(mark, endpoint="notify", direction="in"):
            for message in FanoutMessage.decode_sequence(item.request, scope={"protocol": Protocol.mls10}):
                if message.message.content_type() == ContentType.commit:
                    return True
        return False

    # A timeout here is the SUT's miss (scored by the requirement's level).
    poll_until(removing_commit_seen, what="a /notify carrying the commit removing bob at follower.ref.test")


# --------------------------------------------------------------------------------------------
# self-leave


@both_roles
@pytest.mark.requirements(SELF_ALL_CLIENTS)
def test_self_leave_removes_every_client_of_the_user(cast, ref_hub, poll_until, recorder):
    """A user with two clients leaving through the SUT proposes SelfRemove, the Remove of its other client and
    its participant-list removal; once committed, neither of its clients is in the group."""
    room, admin = _sut_admin_room(cast)
    leaver = cast.sut.create_user("leaver", clients=2)
    witness = cast.reference.create_user("witness")
    cast.sut.add_ok(room, admin, leaver)
    cast.sut.add_ok(room, admin, witness)
    poll_until(lambda: len([u for u in _reference_tree_users(cast, room, witness.client).values()
                            if u == leaver.uri.encode()]) == 2, what="both of the leaver's clients in the group")
    mark = ref_hub.traffic_mark() if cast.sut_role == "follower" else 0
    result = cast.sut.leave(room, leaver)
    if result.get("outcome") != "accepted":
        fail(f"the leave of a user was not accepted by the hub: {result}", requirement=SELF_ALL_CLIENTS)
    if cast.sut_role == "follower":
        proposals = []
        for item in ref_hub.traffic(mark, endpoint="update", direction="in"):
            bundle = UpdateRequest.decode(item.request, scope={"protocol": Protocol.mls10}).bundle
            for msg in [bundle.proposalOrCommit, *bundle.moreProposals]:
                if msg.public_message is not None and msg.public_message.content.content_type == ContentType.proposal:
                    proposals.append(msg.public_message.content.proposal)
        removes = [p for p in proposals if p.proposal_type == ProposalType.remove]
        self_removes = [p for p in proposals if p.proposal_type == ProposalType.self_remove]
        recorder.note(f"the SUT sent {len(self_removes)} SelfRemove and {len(removes)} Remove proposal(s)")
        if len(self_removes) + len(removes) < 2:
            fail("the leaving user's proposals do not remove both of its clients "
                 f"({len(self_removes)} SelfRemove, {len(removes)} Remove)", requirement=SELF_ALL_CLIENTS)
    committer = admin if cast.sut_role == "hub" else None
    if committer is not None:
        commit = cast.sut.remove(room, admin, leaver)
    else:
        creator = next(u for u, p in cast.hub.participants(room).items() if p["role"] == ADMIN and u != admin.uri)
        commit = cast.hub.remove(room, creator, leaver.uri)
    if commit.get("outcome") != "accepted":
        fail(f"the commit of the leave was refused (a client of the leaver would remain?): {commit}",
             requirement=SELF_ALL_CLIENTS)
    poll_until(lambda: leaver.uri.encode() not in _reference_plist(cast, room, witness.client),
               what="the leaver to leave the participant list")
    left = [i for i, u in _reference_tree_users(cast, room, witness.client).items() if u == leaver.uri.encode()]
    if left:
        fail(f"after the leave, the leaver's clients at leaves {left} remain in the group", requirement=SELF_ALL_CLIENTS)


@as_hub
@pytest.mark.requirements(LEAVE_CACHED)
def test_hub_requires_the_cached_leave_proposals(cast, sut, ref_follower, sut_party, mimi_as, poll_until, recorder):
    """After a leave's proposals are accepted, the hub refuses a commit omitting them and accepts one including
    them by reference."""
    room, admin = _hub_room(cast)
    dave = ref_follower.create_user("dave")
    leaver = ref_follower.create_user("leaver")
    cast.hub.add_ok(room, admin, dave, role=ADMIN)
    cast.hub.add_ok(room, admin, leaver)
    _synced_state(ref_follower, sut_party, room, dave.client, poll_until)
    result = ref_follower.leave(room, leaver)
    if result.get("outcome") != "accepted":
        fail(f"the hub refused a valid leave (SelfRemove and participant-list removal): {result}",
             requirement=LEAVE_CACHED)
    dave_state = poll_until(
        lambda: len((m := ref_follower.member_state(room, dave.client)).group.proposal_cache) >= 2 and m,
        what="dave to cache the leave proposals",
    )
    omitting = dave_state.commit([], include_cached=False)
    response = _post_update(mimi_as, sut, room, omitting.request)
    recorder.note(f"commit omitting the leave: {response.responseCode.name}")
    if response.responseCode == UpdateResponseCode.success:
        fail("the hub accepted a commit omitting a leaving user's cached proposals", requirement=LEAVE_CACHED)
    dave_state.commit_refused()
    including = dave_state.commit([], include_cached=True)
    response = _post_update(mimi_as, sut, room, including.request)
    recorder.note(f"commit including the leave by reference: {response.responseCode.name}")
    if response.responseCode != UpdateResponseCode.success:
        fail(f"the hub refused a commit including the leave proposals by reference: {response.responseCode.name} "
             f"{response.errorDescription!r}", requirement=LEAVE_CACHED)


# --------------------------------------------------------------------------------------------
# ban and unban


@both_roles
@pytest.mark.requirements(BAN_REMOVES_CLIENTS)
def test_banned_user_cannot_be_readded_until_unbanned(cast, poll_until, recorder):
    """A ban through the SUT moves the user to role 1 with no clients; it cannot be re-added until unbanned."""
    room, admin = _sut_admin_room(cast)
    bob = cast.reference.create_user("bob", clients=2)
    witness = cast.reference.create_user("witness")
    cast.sut.add_ok(room, admin, bob)
    cast.sut.add_ok(room, admin, witness)
    result = cast.sut.remove(room, admin, bob, mode="ban")
    if result.get("outcome") != "accepted":
        fail(f"the SUT's ban was not accepted by the hub: {result}", requirement=BAN_REMOVES_CLIENTS)
    poll_until(lambda: _reference_plist(cast, room, witness.client).get(bob.uri.encode()) != MEMBER,
               what="the ban to reach the reference view")
    role = _reference_plist(cast, room, witness.client).get(bob.uri.encode())
    if role != BANNED:
        fail(f"after the ban, bob's role is {role}, not 1 (banned)", requirement=BAN_REMOVES_CLIENTS)
    left = [i for i, u in _reference_tree_users(cast, room, witness.client).items() if u == bob.uri.encode()]
    if left:
        fail(f"after the ban, bob's clients at leaves {left} remain in the group", requirement=BAN_REMOVES_CLIENTS)
    try:
        readd = cast.sut.add(room, admin, bob)
    except ControlProblem as exc:
        readd = {"outcome": f"refused: {exc}"}
    recorder.note(f"re-adding banned bob: {readd.get('outcome')}")
    if readd.get("outcome") == "accepted":
        fail("a banned user was re-added without being unbanned", requirement=BAN_REMOVES_CLIENTS)
    unban = cast.sut.unban(room, admin, bob, role=0)
    if unban.get("outcome") != "accepted":
        raise HarnessError(f"the unban was not accepted: {unban}")
    cast.sut.add_ok(room, admin, bob)
    poll_until(lambda: _reference_plist(cast, room, witness.client).get(bob.uri.encode()) == MEMBER,
               what="unbanned bob to be a member again")


# --------------------------------------------------------------------------------------------
# external_senders after the last participant of a follower left


@as_hub
@pytest.mark.requirements(EXTSENDERS_LAST_FOLLOWER)
def test_external_senders_drop_a_follower_whose_last_user_left(cast, sut, ref_follower, sut_party, mimi_as, poll_until,
                                                               recorder):
    """When the last participant of a follower provider listed in external_senders is removed, the next epochs'
    external_senders no longer list that provider."""
    room, admin = _hub_room(cast)
    bob = ref_follower.create_user("bob")
    cast.hub.add_ok(room, admin, bob, role=ADMIN)
    bob_state = _synced_state(ref_follower, sut_party, room, bob.client, poll_until)
    # bob lists his provider as an external sender (as a hub may do when a follower's first user joins).
    suite = cipher_suite(bob_state.suite_id)
    _, public = suite.generate_signature_key_pair()
    entry = ExternalSender(signature_key=public, credential=basic_credential(f"mimi://{FOLLOWER_DOMAIN}".encode()))
    group = bob_state.group
    senders = [*group.external_senders(), entry]
    exts = set_extension(list(group.context.extensions), ExtensionType.external_senders,
                         external_senders_extension(senders).extension_data)
    response = _post_update(mimi_as, sut, room, bob_state.commit([gce_proposal(exts)], include_cached=False).request)
    _expect_accepted(response, "bob's commit adding follower.ref.test to external_senders")
    poll_until(lambda: FOLLOWER_DOMAIN in sut_party.room(room)["externalSenders"],
               what="follower.ref.test in the hub's external senders")
    removal = cast.hub.remove(room, admin, bob)
    if removal.get("outcome") != "accepted":
        raise HarnessError(f"the removal of bob was not accepted: {removal}")
    # The next epoch: another commit by the hub's admin (adding a local user).
    carol = cast.hub.create_user("carol")
    cast.hub.add_ok(room, admin, carol)
    info = sut_party.room(room)
    recorder.note(f"external senders at epoch {info['epoch']}: {info['externalSenders']}")
    if FOLLOWER_DOMAIN in info["externalSenders"]:
        fail("the follower's external_senders entry remains after its last participant left",
             requirement=EXTSENDERS_LAST_FOLLOWER)
