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
from conformance.verdicts import fail, not_applicable
from reference_peer.wire.mimi import UpdateRequest, UpdateResponseCode, UpdateRoomResponse
from reference_peer.wire.mls import SenderType

NEW_DEVICE_JOIN = "PROTO-GROUPINFO-NEW-DEVICE-JOIN"
FOLLOWER_JOIN = "PROTO-GROUPINFO-FOLLOWER-JOIN-NEW-DEVICE"
ONE_ENTRY = "PROTO-PLIST-ONE-ENTRY-PER-USER"
ADD_OWN_CLIENT = "POLICY-CAP-ADD-OWN-CLIENT"
REMOVE_OWN_CLIENT = "POLICY-CAP-REMOVE-OWN-CLIENT"
SINGLE_DEVICE = "POLICY-BASE-SINGLE-DEVICE"
MAX_CLIENTS = "POLICY-BASE-MAX-CLIENTS"


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


# -- SUT as hub ------------------------------------------------------------------------------------


@pytest.mark.requirements(NEW_DEVICE_JOIN, ADD_OWN_CLIENT, ONE_ENTRY)
@as_hub
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
    if not updates or updates[-1].status != 200:
        fail(f"the hub did not give bob's new device the GroupInfo (groupInfo answered HTTP {infos[-1].status}; "
             "no external commit could be sent)", requirement=NEW_DEVICE_JOIN)
    answer = UpdateRoomResponse.decode(updates[-1].response)
    if answer.responseCode != UpdateResponseCode.success:
        fail(f"the external commit of bob's new device was answered {answer.responseCode.name} "
             f"{answer.errorDescription!r}", requirement=ADD_OWN_CLIENT)
    after = cast.hub.participants(room)
    assert {u: p["role"] for u, p in after.items()} == {u: p["role"] for u, p in before.items()}, (
        f"the participant list changed when a device joined: {before} -> {after}"
    )
    assert device in after[bob.uri]["clients"], f"bob's entry does not list the new device: {after[bob.uri]}"
    text = b"to every device " + room.encode()
    cast.hub.send_ok(room, alice.client, text)
    cast.follower.wait_received(device, text, room=room, what="bob's new device to receive a message")


@pytest.mark.requirements(REMOVE_OWN_CLIENT)
@as_hub
def test_device_removed_by_own_other_device_stops_receiving(cast):
    """The hub accepts a participant's Remove of its own other client; that client stops receiving while the
    user's remaining client still receives."""
    room, alice, bob = _sut_hub_room(cast, bob_clients=2)
    keep, drop = bob.clients
    result = cast.follower.remove_client(room, drop, actor=keep)
    if result.get("outcome") != "accepted":
        fail(f"the hub refused bob's Remove of his own other client: {result}", requirement=REMOVE_OWN_CLIENT)
    assert bob.uri in cast.hub.participants(room), "bob left the participant list when one device was removed"
    assert _clients_of(cast.hub, room, bob) == [keep], (
        f"the hub lists bob's clients as {_clients_of(cast.hub, room, bob)} after removing {drop}"
    )
    text = b"after the removal " + room.encode()
    cast.hub.send_ok(room, alice.client, text)
    cast.follower.wait_received(keep, text, room=room, what="bob's remaining device to receive (sentinel)")
    assert text not in cast.follower.received(drop, room), "the removed device received a later message"


@pytest.mark.requirements(REMOVE_OWN_CLIENT)
@as_hub
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
    assert bob.uri in cast.hub.participants(room), "bob left the participant list when one device removed itself"
    assert _clients_of(cast.hub, room, bob) == [keep], (
        f"the hub lists bob's clients as {_clients_of(cast.hub, room, bob)} after {drop} removed itself"
    )
    text = b"after the self-removal " + room.encode()
    cast.hub.send_ok(room, alice.client, text)
    cast.follower.wait_received(keep, text, room=room, what="bob's remaining device to receive (sentinel)")
    assert text not in cast.follower.received(drop, room), "the self-removed device received a later message"


@pytest.mark.requirements(SINGLE_DEVICE)
@as_hub
def test_single_device_room_refuses_a_second_client(cast):
    """In a room whose policy has multi_device false the hub does not let a second client of a user join."""
    room, _alice, bob = _sut_hub_room(cast, policy={"base": {"multiDevice": False}})
    device = cast.follower.add_client(bob)
    clients = _clients_of(cast.hub, room, bob)
    assert device not in clients and len(clients) == 1, (
        f"a second client of bob joined a single-device room: the hub lists {clients}"
    )


@pytest.mark.requirements(MAX_CLIENTS)
@as_hub
def test_max_clients_caps_new_devices(cast):
    """In a room whose policy has max_clients 2 the hub refuses a device that would make a third client."""
    room, _alice, bob = _sut_hub_room(cast, policy={"base": {"maxClients": 2}})
    device = cast.follower.add_client(bob)
    info = cast.hub.room(room)
    count = sum(len(p["clients"]) for p in info["participants"])
    assert device not in _clients_of(cast.hub, room, bob) and count <= 2, (
        f"the group has {count} clients in a room with max_clients 2: {info['participants']}"
    )


# -- SUT as follower -------------------------------------------------------------------------------


@pytest.mark.requirements(FOLLOWER_JOIN)
@as_follower
def test_follower_joins_a_new_device_by_external_commit(cast, poll_until):
    """A follower fetches the GroupInfo for its user's new client and sends that client's external commit to
    the hub, after which the new client receives the room's messages."""
    xavier = cast.hub.create_user("xavier")
    room = cast.hub.create_room(xavier)
    sam = cast.follower.create_user("sam")
    cast.hub.add_ok(room, xavier, sam)
    cast.follower.wait_epoch(room, cast.hub.room(room)["epoch"], what="the SUT's client to join the room")
    mark = cast.hub.traffic_mark()
    device = cast.follower.add_client(sam)
    infos = poll_until(
        lambda: [t for t in cast.hub.traffic(mark, endpoint="groupInfo", direction="in") if t.value == room],
        what="a groupInfo request from the SUT for its user's new device",
    )

    def external_commit():
        for item in _updates(cast.hub, room, mark, "in"):
            message = UpdateRequest.decode(item.request).bundle.proposalOrCommit
            pub = message.public_message
            if pub is not None and pub.content.sender.sender_type == SenderType.new_member_commit:
                return item
        return None

    commit = poll_until(external_commit, what="the new device's external commit at the reference hub")
    assert commit.seq > infos[0].seq, "the external commit came before any groupInfo request"
    answer = UpdateRoomResponse.decode(commit.response)
    assert answer.responseCode == UpdateResponseCode.success, (
        f"the reference hub refused the SUT's external commit: {answer.responseCode.name} {answer.errorDescription!r}"
    )
    text = b"to the new device " + room.encode()
    cast.hub.send_ok(room, xavier.client, text)
    cast.follower.wait_received(device, text, room=room, what="the SUT's new device to receive a message")
