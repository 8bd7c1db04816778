"""Multi-device: a user's new client joins its rooms by external commit without a participant-list
change, a user removes one of its clients while its other clients stay, and the room policy's
multi_device and max_clients limits (draft-ietf-mimi-protocol-06 §3.6, §5.6, §7.5; room-policy-04
§5, §8.1).

With the SUT as hub, the reference follower's user gets a new device (the reference follower asks the
SUT for the GroupInfo and sends the external commit) or removes one; with the SUT as follower, the
SUT's user gets the new device and the reference hub logs the groupInfo request and the commit.
"""

from __future__ import annotations

import pytest

from conformance.harness.control import ControlProblem
from conformance.scenarios.roles import as_follower, as_hub
from conformance.scenarios.test_hub_accepts_valid_changes import judge_creators_add_accepted
from conformance.scenarios.test_removal import (
    BLOCK_COMMITS,
    _handshake_bytes,
    _message_sentinel,
    _pending_removal,
    _post_update,
    _synced_state,
    judge_not_applied,
    setting_up,
    setup_add,
)
from conformance.verdicts import HarnessError, blocked, expect, fail, judging, miss, not_applicable, observed
from reference_peer.mls import MLSError, add_proposal, app_data_update_proposal
from reference_peer.room import participants as plist_mod
from reference_peer.room.follower import SimulatedClient
from reference_peer.wire.identity import MimiUri
from reference_peer.wire.mimi import (
    COMPONENT_PARTICIPANT_LIST,
    GroupInfoCode,
    GroupInfoResponse,
    UpdateRequest,
    UpdateResponseCode,
    UpdateRoomResponse,
)
from reference_peer.wire.mls import SenderType

NEW_DEVICE_JOIN = "PROTO-GROUPINFO-NEW-DEVICE-JOIN"
FOLLOWER_JOIN = "PROTO-GROUPINFO-FOLLOWER-JOIN-NEW-DEVICE"
ONE_ENTRY = "PROTO-PLIST-ONE-ENTRY-PER-USER"
ADD_OWN_CLIENT = "POLICY-CAP-ADD-OWN-CLIENT"
REMOVE_OWN_CLIENT = "POLICY-CAP-REMOVE-OWN-CLIENT"
SINGLE_DEVICE = "POLICY-BASE-SINGLE-DEVICE"
MAX_CLIENTS = "POLICY-BASE-MAX-CLIENTS"
ADD_PARTICIPANT_CLIENTS = "POLICY-CAP-ADD-PARTICIPANT-CLIENTS"


def _sut_hub_room(cast, *, bob_clients: int = 1, policy: dict | None = None):
    """A room on the SUT hub with Alice (SUT) and Bob (reference follower, ``bob_clients`` devices)."""
    alice = cast.hub.create_user("alice")
    try:
        room = cast.hub.create_room(alice, policy=policy)
    except ControlProblem as exc:
        if policy is not None and exc.status == 422:
            not_applicable(f"the SUT does not host a room with policy {policy}: {exc}")
        raise
    bob = cast.follower.create_user("bob", clients=bob_clients)
    cast.hub.add_ok(room, alice, bob)
    cast.follower.wait_epoch(room, cast.hub.room(room)["epoch"], what="bob's clients to join the SUT's room")
    return room, alice, bob


def _clients_of(party, room: str, user) -> list[str]:
    entry = party.participants(room).get(user.uri)
    return [] if entry is None else list(entry["clients"])


def _updates(party, room: str, after: int, direction: str):
    return [t for t in party.traffic(after, endpoint="update", direction=direction) if t.value == room]


def _groupinfo_answer(item) -> str:
    """A groupInfo answer for a message: the HTTP status and, when it decodes, the GroupInfoCode."""
    try:
        code = GroupInfoResponse.decode(item.response).status.name
    except Exception:  # noqa: BLE001 - only for the message
        code = "an undecodable body" if item.response else "no body"
    return f"HTTP {item.status}, {code}"


def _require_join_attempt(cast, room: str, after: int) -> None:
    """The reference follower's new device asked the SUT hub for the GroupInfo (its join attempt), so a
    refusal the check then sees is the hub's: otherwise nothing was tried and nothing can be judged."""
    if not [t for t in cast.follower.traffic(after, endpoint="groupInfo", direction="out") if t.value == room]:
        raise HarnessError("the reference follower's new device never asked the hub for the GroupInfo: no join "
                           "was attempted")


# -- SUT as hub ------------------------------------------------------------------------------------


@pytest.mark.feature("multiDevice")
@pytest.mark.requirements(NEW_DEVICE_JOIN, ADD_OWN_CLIENT, ONE_ENTRY)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_new_device_joins_by_external_commit(cast, poll_until):
    """The hub gives a participant's new client the GroupInfo and accepts its external commit, with the user
    still listed once, and fans out to the new client."""
    room, alice, bob = _sut_hub_room(cast)
    before = cast.hub.participants(room)
    mark = cast.follower.traffic_mark()
    device = cast.follower.add_client(bob)
    infos = [t for t in cast.follower.traffic(mark, endpoint="groupInfo", direction="out") if t.value == room]
    if not infos:
        fail("the reference follower's new device did not get to request the GroupInfo", requirement=NEW_DEVICE_JOIN)
    updates = _updates(cast.follower, room, mark, "out")
    if not updates:
        answered = _groupinfo_answer(infos[-1])
        if answered.endswith(GroupInfoCode.notAuthorized.name):
            # An authorization refusal of the participant's own new client: its canAddOwnClient is denied too.
            miss(ADD_OWN_CLIENT, f"the hub answered the GroupInfo request of bob's own new device {answered}, so bob "
                                 "may not add his own client by external commit")
        fail(f"the hub did not give bob's new device a GroupInfo it could join with (groupInfo answered {answered}); "
             "no external commit could be sent", requirement=NEW_DEVICE_JOIN)
    if updates[-1].status != 200:
        fail(f"the external commit of bob's new device was answered HTTP {updates[-1].status} by update, not 200 "
             "with an UpdateRoomResponse", requirement=NEW_DEVICE_JOIN)
    answer = UpdateRoomResponse.decode(updates[-1].response)
    if answer.responseCode != UpdateResponseCode.success:
        refused = (f"the external commit of bob's new device was answered {answer.responseCode.name} "
                   f"{answer.errorDescription!r}")
        miss(NEW_DEVICE_JOIN, refused)
        fail(refused, requirement=ADD_OWN_CLIENT)
    observed(ADD_OWN_CLIENT, "the hub accepted the external commit adding bob's own new client")
    info = cast.hub.room(room)
    entries = [p for p in info["participants"] if p["user"] == bob.uri]
    users_before, users_after = set(before), {p["user"] for p in info["participants"]}
    if len(entries) != 1:
        miss(ONE_ENTRY, f"bob appears {len(entries)} times in the participant list after his device joined: {entries}")
    elif users_after != users_before:
        miss(ONE_ENTRY, f"the participant list's users changed when bob's device joined: {sorted(users_before)} -> "
                        f"{sorted(users_after)}")
    elif not {bob.client, device} <= set(entries[0]["clients"]):
        miss(ONE_ENTRY, f"bob's entry does not list both his clients ({bob.client}, {device}): {entries[0]}")
    else:
        observed(ONE_ENTRY, "bob is listed once, with both his clients, after his new device joined")
    text = b"to every device " + room.encode()
    cast.hub.send_ok(room, alice.client, text)
    with judging(NEW_DEVICE_JOIN):
        cast.follower.wait_received(device, text, room=room, what="bob's new device to receive a message")
    observed(NEW_DEVICE_JOIN, "bob's new device fetched the GroupInfo, joined by external commit and received a "
                              "message")


@pytest.mark.feature("multiDevice")
@pytest.mark.requirements(REMOVE_OWN_CLIENT)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_device_removed_by_own_other_device_stops_receiving(cast):
    """The hub accepts a participant's Remove of its own other client; that client stops receiving while the
    user's remaining client still receives."""
    room, alice, bob = _sut_hub_room(cast, bob_clients=2)
    keep, drop = bob.clients
    result = cast.follower.remove_client(room, drop, actor=keep)
    if result.get("outcome") != "accepted":
        fail(f"the hub refused bob's Remove of his own other client: {result}", requirement=REMOVE_OWN_CLIENT)
    if bob.uri not in cast.hub.participants(room):
        fail("bob left the participant list when one device was removed", requirement=REMOVE_OWN_CLIENT)
    clients = _clients_of(cast.hub, room, bob)
    if clients != [keep]:
        fail(f"the hub lists bob's clients as {clients} after removing {drop}", requirement=REMOVE_OWN_CLIENT)
    text = b"after the removal " + room.encode()
    cast.hub.send_ok(room, alice.client, text)
    cast.follower.wait_received(keep, text, room=room, what="bob's remaining device to receive (sentinel)")
    expect(REMOVE_OWN_CLIENT, text not in cast.follower.received(drop, room),
           "the removed device received a later message",
           evidence="the hub accepted bob's Remove of his other client without a participant-list change; only "
                    "the remaining client received a later message")


@pytest.mark.feature("multiDevice")
@pytest.mark.requirements(REMOVE_OWN_CLIENT)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_device_self_remove_is_accepted_and_committed(cast, ref_hub):
    """The hub accepts a client's SelfRemove of itself and the next commit removes only that client."""
    room, alice, bob = _sut_hub_room(cast, bob_clients=2)
    keep, drop = bob.clients
    result = cast.follower.remove_client(room, drop)
    if result.get("outcome") != "accepted":
        fail(f"the hub refused a SelfRemove from bob's device: {result}", requirement=REMOVE_OWN_CLIENT)
    carol = ref_hub.create_user("carol")
    added = cast.hub.add(room, alice, carol)  # the next commit must carry the SelfRemove
    if added.get("outcome") != "accepted":
        fail(f"the hub refused the commit carrying bob's device's SelfRemove: {added}", requirement=REMOVE_OWN_CLIENT)
    if bob.uri not in cast.hub.participants(room):
        fail("bob left the participant list when one device removed itself", requirement=REMOVE_OWN_CLIENT)
    clients = _clients_of(cast.hub, room, bob)
    if clients != [keep]:
        fail(f"the hub lists bob's clients as {clients} after {drop} removed itself", requirement=REMOVE_OWN_CLIENT)
    text = b"after the self-removal " + room.encode()
    cast.hub.send_ok(room, alice.client, text)
    cast.follower.wait_received(keep, text, room=room, what="bob's remaining device to receive (sentinel)")
    expect(REMOVE_OWN_CLIENT, text not in cast.follower.received(drop, room),
           "the self-removed device received a later message",
           evidence="the hub accepted bob's device's SelfRemove and the next commit removed only that client; "
                    "bob stayed listed and only his remaining client received a later message")


@pytest.mark.feature("multiDevice")
@pytest.mark.requirements(ADD_PARTICIPANT_CLIENTS, REMOVE_OWN_CLIENT)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_creators_add_after_a_device_leave_and_an_external_commit(cast, ref_hub, recorder):
    """One of bob's devices removes itself (a SelfRemove, accepted and pending); before anyone commits it, a new
    device of bob joins by external commit, which cannot carry it (-06 §5.5: "An external commit will invalidate
    certain pending proposals. [...] The hub would then be expected to regenerate any relevant, comparable
    proposals in the new epoch"). Then alice, the room's creator on the SUT, adds carol: whatever the hub did with
    the invalidated SelfRemove (regenerated it as its own Remove, or not), it may not refuse that add, which its
    policy authorizes (room-policy-04 §8.1.1 canAddParticipant: "the holder is also authorized to add any MLS
    clients matching the added user"). Where the hub regenerated the Remove, the removed device is gone after it."""
    room, alice, bob = _sut_hub_room(cast, bob_clients=2)
    keep, drop = bob.clients
    left = cast.follower.remove_client(room, drop)
    recorder.note(f"bob's device {drop} removes itself: {left}")
    if left.get("outcome") != "accepted":
        fail(f"the hub refused a SelfRemove from bob's device: {left}", requirement=REMOVE_OWN_CLIENT)
    mark = cast.follower.traffic_mark()
    device = cast.follower.add_client(bob)
    _require_join_attempt(cast, room, mark)
    joined = device in _clients_of(cast.hub, room, bob)
    recorder.note(f"bob's new device {device} joined by external commit with the SelfRemove pending: {joined}")
    if not joined:
        not_applicable(f"the hub did not take the external commit of bob's new device {device} while his other "
                       "device's SelfRemove was pending: no proposal was invalidated, nothing to judge")
    carol = ref_hub.create_user("carol")
    result = cast.hub.add(room, alice, carol)
    recorder.note(f"alice's add of carol after the external commit: {result}")
    judge_creators_add_accepted(ADD_PARTICIPANT_CLIENTS, result, carol,
                                added=" after an external commit invalidated a device's pending SelfRemove",
                                authorized=", so the add and its clients are authorized")
    observed(ADD_PARTICIPANT_CLIENTS, "the SUT as hub accepted its creator's add of carol after an external commit "
                                      "invalidated a pending SelfRemove")
    clients = _clients_of(cast.hub, room, bob)
    if drop in clients:
        recorder.note(f"the hub still lists {drop} after alice's commit (it did not regenerate the SelfRemove, which "
                      "-06 §5.5 only expects): not judged")
    else:
        observed(REMOVE_OWN_CLIENT, f"bob's self-removed device {drop} is gone after alice's commit (the hub's "
                                    f"regenerated Remove); bob's clients: {clients}")


@pytest.mark.feature("multiDevice")
@pytest.mark.requirements(SINGLE_DEVICE)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_single_device_room_refuses_a_second_client(cast):
    """In a room whose policy has multi_device false the hub does not let a second client of a user join."""
    room, _alice, bob = _sut_hub_room(cast, policy={"base": {"multiDevice": False}})
    mark = cast.follower.traffic_mark()
    device = cast.follower.add_client(bob)
    _require_join_attempt(cast, room, mark)
    clients = _clients_of(cast.hub, room, bob)
    expect(SINGLE_DEVICE, device not in clients and len(clients) == 1,
           f"a second client of bob joined a single-device room: the hub lists {clients}",
           evidence=f"bob's second client {device} tried to join; the hub lists only {clients}")


def _max_clients_room(cast, limit: int):
    """A room on the SUT hub with policy max_clients ``limit``, Alice (SUT) and Bob (reference follower, one
    client): two clients, within the limit. Set-up, except that a hub refusing Bob's add there while it
    accepts the same add in a room without max_clients misses POLICY-BASE-MAX-CLIENTS (room-policy-04 §5
    caps the group at the value, so a group of ``limit`` clients is allowed); a room whose effective
    max_clients the SUT made lower than two leaves nothing to judge."""
    policy = {"base": {"maxClients": limit}}
    alice = cast.hub.create_user("alice")
    try:
        room = cast.hub.create_room(alice, policy=policy)
    except ControlProblem as exc:
        if exc.status == 422:
            not_applicable(f"the SUT does not host a room with policy {policy}: {exc}")
        raise
    effective = ((cast.hub.room(room).get("policy") or {}).get("base") or {}).get("maxClients")
    if effective is not None and effective < 2:
        not_applicable(f"the SUT's room has max_clients {effective} (asked for {limit}): its declared policy is "
                       "stricter than this check needs (two clients before the one it judges)")
    bob = cast.follower.create_user("bob")
    result = cast.hub.add(room, alice, bob)
    outcome = result.get("outcome")
    if outcome == "noKeyMaterial":
        raise HarnessError(f"set-up failed: the SUT got no KeyPackage of bob from {cast.follower.domain}: {result}")
    if outcome != "accepted":
        refused = f"{outcome}: {result.get('hubResponse') or result}"
        other_alice = cast.hub.create_user("alice")
        other_room = cast.hub.create_room(other_alice)
        control = cast.hub.add(other_room, other_alice, cast.follower.create_user("bob"))
        if control.get("outcome") != "accepted":
            not_applicable(f"set-up failed: the SUT did not add bob to the room with max_clients {limit} ({refused}) "
                           f"nor to a room without max_clients ({control.get('outcome')}), so the refusal is not "
                           "max_clients's; the membership checks judge it")
        fail(f"the SUT refused to add bob to a room with max_clients {limit}, which would make 2 clients, within "
             f"the limit ({refused}); it added him to a room without max_clients", requirement=MAX_CLIENTS)
    cast.follower.wait_epoch(room, cast.hub.room(room)["epoch"], what="bob's clients to join the SUT's room")
    return room, alice, bob


@pytest.mark.feature("multiDevice")
@pytest.mark.requirements(MAX_CLIENTS)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "getRoom", "addParticipant")
def test_max_clients_caps_new_devices(cast):
    """room-policy-04 §5: "When max_clients has a value, the room's associated MLS group MUST NOT have more
    clients than the provided value." In a room with max_clients 2 the hub lets the group reach 2 clients
    and refuses a device that would make a third."""
    room, _alice, bob = _max_clients_room(cast, 2)
    mark = cast.follower.traffic_mark()
    device = cast.follower.add_client(bob)
    _require_join_attempt(cast, room, mark)
    info = cast.hub.room(room)
    count = sum(len(p["clients"]) for p in info["participants"])
    expect(MAX_CLIENTS, device not in _clients_of(cast.hub, room, bob) and count <= 2,
           f"the group has {count} clients in a room with max_clients 2: {info['participants']}",
           evidence=f"the group reached 2 clients in a room with max_clients 2; a third client tried to join and "
                    f"the group has {count} clients")


MEMBER, ADMIN, MODERATOR = 2, 3, 4
_MEMBER_CAPABILITIES = ["canSendMessage", "canReceiveMessage", "canRemoveSelf", "canAddOwnClient",
                        "canRemoveOwnClient"]


def _moderated_roles() -> list[dict]:
    """Roles 0, 1 (banned), 2 (member), 3 (admin: adds participants into 2, 3 or 4) and 4 (moderator: a member
    that may change a member to moderator and back, canChangeUserRole, but holds no canAddParticipant)."""
    return [
        {"index": 0, "name": "no-participant", "capabilities": [], "maxActiveParticipants": 0},
        {"index": 1, "name": "banned", "capabilities": [], "maxActiveParticipants": 0},
        {"index": MEMBER, "name": "member", "capabilities": list(_MEMBER_CAPABILITIES)},
        {"index": ADMIN, "name": "admin", "capabilities": _MEMBER_CAPABILITIES + ["canAddParticipant",
                                                                                  "canRemoveParticipant", "canKick",
                                                                                  "canChangeUserRole"],
         "authorizedRoleChanges": [{"from": 0, "to": [MEMBER, ADMIN, MODERATOR]},
                                   {"from": MEMBER, "to": [0, ADMIN, MODERATOR]},
                                   {"from": MODERATOR, "to": [0, MEMBER, ADMIN]}]},
        {"index": MODERATOR, "name": "moderator", "capabilities": _MEMBER_CAPABILITIES + ["canChangeUserRole"],
         "authorizedRoleChanges": [{"from": MEMBER, "to": [MODERATOR]}, {"from": MODERATOR, "to": [MEMBER]}]},
    ]


def moderated_room_with_dave_and_carol(cast, ref_follower):
    """A room at the SUT hub with the moderated roles: alice (admin, the SUT's) created it and added the
    reference follower's dave as moderator and carol as member. NOT_APPLICABLE where the SUT hosts no such
    room or the roles did not take. Returns (alice, room, dave, carol)."""
    alice = cast.hub.create_user("alice")
    try:
        room = cast.hub.create_room(alice, policy={"roles": _moderated_roles()}, creatorRole=ADMIN)
    except ControlProblem as exc:
        if exc.status in (400, 422):
            not_applicable(f"the SUT does not host a room with a moderator role: {exc}")
        raise
    dave = ref_follower.create_user("dave")
    carol = ref_follower.create_user("carol")
    setup_add(cast.hub, room, alice, dave, hub=cast.hub, role=MODERATOR)
    setup_add(cast.hub, room, alice, carol, hub=cast.hub, role=MEMBER)
    listed = {user: entry["role"] for user, entry in cast.hub.participants(room).items()}
    if listed.get(dave.uri) != MODERATOR or listed.get(carol.uri) != MEMBER:
        not_applicable(f"set-up failed: dave is not listed as moderator ({MODERATOR}) and carol as member "
                       f"({MEMBER}) at the SUT: {listed}")
    return alice, room, dave, carol


def _role_change(state, user: str, role: int):
    """The participant-list AppDataUpdate changing ``user``'s role (from the member ``state``'s list)."""
    index = plist_mod.index_of(state.participant_list(), user.encode())
    if index is None:
        raise HarnessError(f"{user} is not in the participant list the reference client holds")
    update = plist_mod.make_update(role_changes=[(index, role)]).encode()
    return app_data_update_proposal(int(COMPONENT_PARTICIPANT_LIST), update)


@pytest.mark.feature("multiDevice")
@pytest.mark.requirements(ADD_PARTICIPANT_CLIENTS)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_role_change_does_not_authorize_adding_the_users_clients(cast, sut, ref_follower, mimi_as, names,
                                                                  poll_until, recorder):
    """room-policy-04 §8.1.1 ties the right to add another user's clients to that user's addition: "When the
    participant list addition for the target role is authorized, the holder is also authorized to add any MLS
    clients matching the added user to the room's MLS group." A role change is no addition. Dave, a
    moderator (canChangeUserRole for member <-> moderator, no canAddParticipant), commits carol's role change
    member -> moderator together with an Add of a new client of carol: nothing authorizes that Add (carol is
    already listed; it is not dave's own client), so the hub must refuse the commit; judged by effect (any
    refusal: nothing applied or fanned out, carol keeps her one client). The same role change alone is then
    accepted, so the refusal is the Add's."""
    alice, room, dave, carol = moderated_room_with_dave_and_carol(cast, ref_follower)
    carol_before = _clients_of(cast.hub, room, carol)
    device = SimulatedClient(ref_follower.domain, MimiUri.parse(carol.uri).name, names("device"))
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    out = dave_state.commit([_role_change(dave_state, carol.uri, MODERATOR),
                             add_proposal(device.make_key_package().key_package)])
    recorder.note(f"dave (moderator, no canAddParticipant) commits carol's role change member -> moderator with an "
                  f"Add of carol's new client {device.uri}")
    what = "dave's commit adding carol's new client with her role change"
    judge_refused_beside_the_role_change(
        ADD_PARTICIPANT_CLIENTS, out, what, unauthorized="Add",
        accepted=("the hub accepted a commit by dave, whose role lacks canAddParticipant, adding a new client of "
                  "carol (already listed) alongside her role change"),
        clients_problem=lambda clients: (f"the hub refused {what} but lists carol's clients as {clients}"
                                         if device.uri in clients else None),
        carol_before=carol_before, cast=cast, sut=sut, mimi_as=mimi_as, ref_follower=ref_follower,
        poll_until=poll_until, recorder=recorder, room=room, alice=alice, dave=dave, carol=carol)


def judge_refused_beside_the_role_change(requirement: str, out, what: str, *, unauthorized: str, accepted: str,
                                         clients_problem, carol_before, cast, sut, mimi_as, ref_follower, poll_until,
                                         recorder, room, alice, dave, carol) -> None:
    """Posts dave's commit ``out`` (``what``: carol's role change with the ``unauthorized`` proposal) to the SUT
    hub of a moderated_room_with_dave_and_carol room. Accepted: a miss (``accepted``, then carol's clients).
    Refused: judged not applied nor fanned out (carol still receives), and ``clients_problem(carol's clients)``
    must return None, else it is the failure; then the role change alone must be accepted (the control; its
    refusal makes the check NOT_APPLICABLE) for ``requirement`` to be observed."""
    epoch, mark = cast.hub.room(room)["epoch"], ref_follower.traffic_mark()
    with judging(requirement):
        answer = _post_update(mimi_as, sut, room, out.request, requirement)
    recorder.note(f"the hub answered {answer.label}")
    if answer.accepted:
        miss(requirement, f"{accepted}; carol's clients: {_clients_of(cast.hub, room, carol)}")
        return
    with judging(requirement):
        effect = judge_not_applied(requirement, ref_follower, mark, _handshake_bytes(out.request), what,
                                   sentinel=_message_sentinel(cast, room, alice, carol.client, b"after the refusal"),
                                   epoch_before=epoch, sut_party=cast.hub, room=room)
        problem = clients_problem(_clients_of(cast.hub, room, carol))
        if problem is not None:
            fail(problem, requirement=requirement)
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    alone = dave_state.commit([_role_change(dave_state, carol.uri, MODERATOR)])
    recorder.note("dave commits the same role change alone")
    with setting_up("dave's role change alone"):
        control = _post_update(mimi_as, sut, room, alone.request, requirement)
    recorder.note(f"the hub answered {control.label}")
    if control.refused:
        not_applicable(f"the hub refused ({answer.label}) {what}, but it also refused ({control.label}) the role "
                       f"change alone, which dave's role authorizes: the refusal cannot be laid on the {unauthorized}")
    observed(requirement, f"the hub refused ({answer.label}) {what} ({effect}; carol's clients stayed "
                          f"{carol_before}) and accepted the role change alone")


@pytest.mark.feature("multiDevice")
@pytest.mark.requirements(ADD_OWN_CLIENT)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_new_device_without_add_own_client_does_not_join(cast):
    """room-policy-04 §8.1.1: "canAddOwnClient - a holder of this capability that is in the participant list,
    can add its own client (via an external commit or external proposal)". The capability is what authorizes
    the join, so a participant whose role lacks it may not add its own new client that way. Bob's role (member)
    here holds every member capability but canAddOwnClient; his new device tries to join (groupInfo, then the
    external commit). Judged by effect, any refusal accepted (the GroupInfo or the commit): the hub does not
    list the new client."""
    roles = _moderated_roles()
    roles[MEMBER]["capabilities"] = [c for c in roles[MEMBER]["capabilities"] if c != "canAddOwnClient"]
    alice = cast.hub.create_user("alice")
    try:
        room = cast.hub.create_room(alice, policy={"roles": roles}, creatorRole=ADMIN)
    except ControlProblem as exc:
        if exc.status in (400, 422):
            not_applicable(f"the SUT does not host a room whose member role lacks canAddOwnClient: {exc}")
        raise
    bob = cast.follower.create_user("bob")
    setup_add(cast.hub, room, alice, bob, hub=cast.hub, role=MEMBER)
    with setting_up("bob's client to join the SUT's room"):
        cast.follower.wait_epoch(room, cast.hub.room(room)["epoch"], what="bob's client to join the SUT's room")
    if cast.hub.participants(room).get(bob.uri, {}).get("role") != MEMBER:
        not_applicable(f"set-up failed: bob is not listed as member ({MEMBER}) at the SUT: "
                       f"{cast.hub.participants(room).get(bob.uri)}")
    mark = cast.follower.traffic_mark()
    device = cast.follower.add_client(bob)
    _require_join_attempt(cast, room, mark)
    clients = _clients_of(cast.hub, room, bob)
    expect(ADD_OWN_CLIENT, device not in clients,
           f"bob's role lacks canAddOwnClient, yet his new device joined by external commit: the hub lists {clients}",
           evidence=f"bob's new device {device} tried to join by external commit; bob's role lacks canAddOwnClient "
                    f"and the hub lists only {clients}")


@pytest.mark.feature("multiDevice")
@pytest.mark.requirements(NEW_DEVICE_JOIN, ADD_OWN_CLIENT)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "removeParticipant", "getRoom", "sendMessage")
def test_relisted_user_adds_a_new_device_by_external_commit(cast, sut, ref_follower, mimi_as, poll_until, recorder):
    """A user removed from the room and then listed again (a participant-list addition with no client) is a
    participant like any other: its new device joins by external commit. -06 §5.6 gives the GroupInfo to "a
    client that wishes to join a room" of a participant; room-policy-04 §8.1.1: "canAddOwnClient - a holder of
    this capability that is in the participant list, can add its own client (via an external commit or external
    proposal)". Alice (the SUT's admin) removes bob; dave (admin, reference follower) commits bob's addition to
    the participant list as member, without any client; bob's new device then joins (groupInfo, external
    commit) and must be listed and read a message. A hub that still treats bob as removed refuses it."""
    alice = cast.hub.create_user("alice")
    room = cast.hub.create_room(alice)
    dave = ref_follower.create_user("dave")
    bob = ref_follower.create_user("bob")
    setup_add(cast.hub, room, alice, dave, hub=cast.hub, role=ADMIN)
    setup_add(cast.hub, room, alice, bob, hub=cast.hub, role=MEMBER)
    listed = cast.hub.participants(room)
    if listed.get(dave.uri, {}).get("role") != ADMIN or bob.uri not in listed:
        not_applicable(f"set-up failed: dave is not listed as admin ({ADMIN}) and bob as a participant at the SUT: "
                       f"{listed}")
    removed = cast.hub.remove(room, alice, bob)
    if removed.get("outcome") != "accepted" or bob.uri in cast.hub.participants(room):
        not_applicable(f"set-up failed: the SUT did not remove bob from its room: {removed}")
    recorder.note(f"alice removed bob: {removed}")
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    update = plist_mod.make_update(added=[(bob.uri.encode(), MEMBER)]).encode()
    out = dave_state.commit([app_data_update_proposal(int(COMPONENT_PARTICIPANT_LIST), update)])
    answer = _post_update(mimi_as, sut, room, out.request, NEW_DEVICE_JOIN)
    recorder.note(f"dave's commit listing bob again as member, with no client: {answer.label}")
    if answer.refused:
        not_applicable(f"set-up failed: the SUT as hub refused dave's commit listing bob again ({answer.label})")
    with setting_up("the SUT to list bob again"):
        poll_until(lambda: cast.hub.participants(room).get(bob.uri, {}).get("role") == MEMBER,
                   what="the SUT to list bob again as member")
    device = cast.follower.add_client(bob, join_rooms=False)
    mark = cast.follower.traffic_mark()
    joined = cast.follower.join_room(room, device)
    recorder.note(f"bob's new device {device} joins: {joined}")
    _require_join_attempt(cast, room, mark)
    updates = _updates(cast.follower, room, mark, "out")
    if not updates:
        infos = [t for t in cast.follower.traffic(mark, endpoint="groupInfo", direction="out") if t.value == room]
        answered = _groupinfo_answer(infos[-1])
        miss(ADD_OWN_CLIENT, f"the hub answered the GroupInfo request of the new device of bob, listed again as "
                             f"member, {answered}")
        fail(f"the hub did not give the new device of bob, removed and then listed again as member, a GroupInfo "
             f"(groupInfo answered {answered})", requirement=NEW_DEVICE_JOIN)
    last = updates[-1]
    result = UpdateRoomResponse.decode(last.response) if last.status == 200 else None
    if result is None or result.responseCode != UpdateResponseCode.success:
        refused = (f"{result.responseCode.name} {result.errorDescription!r}" if result is not None
                   else f"HTTP {last.status}")
        miss(NEW_DEVICE_JOIN, f"the hub refused the external commit of the new device of bob, listed again as "
                              f"member ({refused})")
        fail(f"the hub refused the external commit of the new device of bob, removed and then listed again as "
             f"member, whose role holds canAddOwnClient ({refused})", requirement=ADD_OWN_CLIENT)
    observed(ADD_OWN_CLIENT, "the hub accepted the external commit of the new device of bob, listed again as member")
    text = b"to the relisted user's device " + room.encode()
    cast.hub.send_ok(room, alice.client, text)
    with judging(NEW_DEVICE_JOIN):
        cast.follower.wait_received(device, text, room=room, what="bob's new device to receive a message")
    observed(NEW_DEVICE_JOIN, "the new device of bob, removed and then listed again, fetched the GroupInfo, joined "
                              "by external commit and received a message")


def _member_made_external_join(state, user, names) -> tuple[SimulatedClient, bytes]:
    """A new client of ``user`` (reference follower) and its external commit, built from the GroupInfo the
    member ``state`` (a copy of one of the user's or another member's clients) signs for the current epoch, tree
    embedded: the hub is not asked for it."""
    uri = MimiUri.parse(user.uri)
    device = SimulatedClient(uri.domain, uri.name, names("device"))
    return device, device.join_external(state.group.group_info(ratchet_tree=True), None)


@pytest.mark.feature("multiDevice")
@pytest.mark.requirements(BLOCK_COMMITS)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_new_device_of_a_user_being_removed_does_not_join(cast, sut, ref_follower, sut_party, mimi_as, names,
                                                           poll_until, recorder):
    """-06 §5.3: "A hub provider which observes that an active participant has been removed or banned from the
    room, MUST prevent any of its clients from sending or receiving any additional application messages in the
    corresponding MLS group; MUST prevent any of those clients from sending Commit messages in that group". A
    new device of that participant is one of its clients, and its external commit is a Commit. Dave (admin,
    reference follower) proposes bob's removal, accepted but not committed; bob's new device then sends an
    external commit built from a GroupInfo bob's client signs (the hub need not serve one to a user being
    removed). It must be refused (any refusal; nothing applied or fanned out). The same join by a new device of
    dave, from dave's GroupInfo, is then accepted, so the refusal is bob's."""
    room, bob, bob_state, admin, dave = _pending_removal(cast, sut, ref_follower, sut_party, mimi_as, poll_until,
                                                         recorder, BLOCK_COMMITS)
    try:
        device, request = _member_made_external_join(bob_state, bob, names)
    except (MLSError, ValueError) as exc:
        raise HarnessError(f"the suite could not build the external commit of bob's new device: {exc}") from None
    epoch, mark = sut_party.room(room)["epoch"], ref_follower.traffic_mark()
    answer = _post_update(mimi_as, sut, room, request, BLOCK_COMMITS)
    recorder.note(f"the external commit of bob's new device {device.uri} while bob's removal is pending: "
                  f"{answer.label}")
    if answer.accepted:
        fail(f"the hub accepted the external commit of a new device of bob, whose removal it had accepted "
             f"({device.uri} joined)", requirement=BLOCK_COMMITS)
    effect = judge_not_applied(BLOCK_COMMITS, ref_follower, mark, _handshake_bytes(request),
                               "the external commit of a new device of a user being removed",
                               sentinel=_message_sentinel(cast, room, admin, dave.client, b"after bob's join"),
                               epoch_before=epoch, sut_party=sut_party, room=room)
    dave_state = _synced_state(ref_follower, sut_party, room, dave.client, poll_until)
    try:
        control, control_request = _member_made_external_join(dave_state, dave, names)
    except (MLSError, ValueError) as exc:
        raise HarnessError(f"the suite could not build the external commit of dave's new device: {exc}") from None
    again = _post_update(mimi_as, sut, room, control_request, BLOCK_COMMITS)
    recorder.note(f"the same join by dave's new device {control.uri}: {again.label}")
    if again.refused:
        blocked(NEW_DEVICE_JOIN, f"the hub refused a new device of dave (admin, not being removed) joining the same "
                f"way ({again.label}), so its refusal of bob's ({answer.label}) shows nothing about the removal")
    observed(BLOCK_COMMITS, f"the external commit of a new device of bob, whose removal is pending, was refused "
                            f"({answer.label}); {effect}; the same join by a new device of dave was accepted")


# -- SUT as follower -------------------------------------------------------------------------------


# A provider whose users have one client each never has a new device to join (the multi-device profile
# requires the feature too), so follower-core-06 scores this SHOULD only for a SUT declaring multiDevice.
@pytest.mark.feature("multiDevice")
@pytest.mark.requirements(FOLLOWER_JOIN)
@as_follower
@pytest.mark.operations("createUser", "getRoom", "addClient", "listReceivedMessages")
def test_follower_joins_a_new_device_by_external_commit(cast, poll_until):
    """A follower fetches the GroupInfo for its user's new client and sends that client's external commit to
    the hub, after which the new client receives the room's messages."""
    xavier = cast.hub.create_user("xavier")
    room = cast.hub.create_room(xavier)
    sam = cast.follower.create_user("sam")
    cast.hub.add_ok(room, xavier, sam)
    # Joining from the Welcome is judged by test_follower_clients.py (PROTO-KEYMAT-KPREF-TARGET-CLIENT), not here.
    with setting_up("the SUT's client to join the room from its Welcome"):
        cast.follower.wait_epoch(room, cast.hub.room(room)["epoch"], what="the SUT's client to join the room")
    mark = cast.hub.traffic_mark()
    device = cast.follower.add_client(sam)
    infos = poll_until(
        lambda: [t for t in cast.hub.traffic(mark, endpoint="groupInfo", direction="in") if t.value == room],
        what="a groupInfo request from the SUT for its user's new device", requirement=FOLLOWER_JOIN,
    )

    def external_commit():
        for item in _updates(cast.hub, room, mark, "in"):
            message = UpdateRequest.decode(item.request).bundle.proposalOrCommit
            pub = message.public_message
            if pub is not None and pub.content.sender.sender_type == SenderType.new_member_commit:
                return item
        return None

    commit = poll_until(external_commit, what="the new device's external commit at the reference hub",
                        requirement=FOLLOWER_JOIN)
    if commit.seq <= infos[0].seq:
        fail("the external commit came before any groupInfo request", requirement=FOLLOWER_JOIN)
    answer = UpdateRoomResponse.decode(commit.response)
    if answer.responseCode != UpdateResponseCode.success:
        fail(f"the reference hub refused the SUT's external commit: {answer.responseCode.name} "
             f"{answer.errorDescription!r}", requirement=FOLLOWER_JOIN)
    text = b"to the new device " + room.encode()
    cast.hub.send_ok(room, xavier.client, text)
    cast.follower.wait_received(device, text, room=room, what="the SUT's new device to receive a message")
    observed(FOLLOWER_JOIN, "the SUT fetched the GroupInfo for sam's new device, sent its external commit to "
                            "update (accepted) and the device received a message")
