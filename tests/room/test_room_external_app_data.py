"""External commits carrying AppDataUpdate proposals by value (draft-ietf-mls-extensions-09 §4.7): valid MLS,
judged by each component's rules; mimi_hub forbids them (docs/extensions/hub-transfer.md §4.2 item 5,
EXT-HUBXFER-PUBLIC-COMMITS)."""

from __future__ import annotations

import pytest
from room_world import HUB, ROOM, World, ok

from reference_peer.faults import overrides_for
from reference_peer.faults.transfer_public_commits import EXTERNAL_COMMIT_HUB_UPDATE_ACCEPTED
from reference_peer.mls import Group, app_data_update_proposal, basic_credential
from reference_peer.mls.tree import RatchetTree
from reference_peer.overrides import Overrides
from reference_peer.room import (
    ROLE_ADMIN,
    ROLE_MEMBER,
    HubRoom,
    default_policy,
    open_group_info_response,
    room_extensions,
)
from reference_peer.room import participants as plist_mod
from reference_peer.wire.hub_transfer import MIMI_HUB_COMPONENT_ID, HubData, HubState, initial_hub_data, read_hub_data
from reference_peer.wire.identity import IdentifierUri
from reference_peer.wire.mimi import COMPONENT_PARTICIPANT_LIST, GroupInfoCode, UpdateResponseCode
from reference_peer.wire.mls import MLSMessage, WireFormat

OTHER_COMPONENT = 0xF0F0  # a component no rule of the hub knows: mls-extensions' replace semantics


@pytest.fixture()
def room():
    """A room on a.example with the mimi_hub component, alice (admin, a.example) and bob (member, b.example)."""
    world = World.make("b.example")
    alice = world.client(HUB, "alice", "a1")
    bob = world.client("b.example", "bob", "b1")
    hub = {MIMI_HUB_COMPONENT_ID: initial_hub_data(ROOM, f"mimi://{HUB}").encode()}
    alice.create_group(room_extensions(world.identity.external_sender, alice.user_uri.encode(), ROLE_ADMIN,
                                       default_policy(), extra_components=hub))
    world.room = HubRoom.from_group(ROOM, world.identity, alice.group, provider_senders=world.follower_senders)
    ok(world.add_user(alice, [bob])[0])
    ok(world.commit(alice, alice.commit())[0])  # the hub's external_senders proposal
    return world, alice, bob


def _external_join(world: World, name: str, proposals) -> tuple[object, bytes]:
    """A new client of bob fetches the GroupInfo and builds an external commit with ``proposals`` by value."""
    device = world.client("b.example", "bob", name)
    hpke_priv, hpke_pub = world.room.view.suite.generate_hpke_key_pair()
    answer = world.room.group_info_response("b.example", device.group_info_request(hpke_pub), world.now())
    assert answer.status == GroupInfoCode.success
    tbe = open_group_info_response(answer, hpke_priv)
    tree = RatchetTree.from_wire(world.room.view.suite, tbe.ratchetTreeOption.ratchet_tree).encode()
    info = MLSMessage(version=1, wire_format=WireFormat.mls_group_info, group_info=tbe.groupInfo).encode()
    return device, device.join_external(info, tree, proposals_by_value=list(proposals))


def _forged_hub(generation: int = 1) -> HubData:
    return HubData(room_id=IdentifierUri(uri=ROOM.encode()), hub=IdentifierUri(uri=b"mimi://b.example"),
                   generation=generation, state=HubState.stable, previous_hub=IdentifierUri(uri=f"mimi://{HUB}".encode()),
                   last_transfer_id=bytes(16))


def test_external_commit_may_carry_an_app_data_update(room):
    """mls-extensions-09 §4.7: the joiner's AppDataUpdate applies as in a member commit, at the hub and at members."""
    world, alice, bob = room
    epoch = world.room.epoch
    device, request = _external_join(world, "b2", [app_data_update_proposal(OTHER_COMPONENT, b"joiner's value")])
    response, _ = world.update(device, request)
    ok(response)
    assert world.room.epoch == epoch + 1 == alice.epoch == bob.epoch == device.epoch
    for view in (world.room.view, alice.group, bob.group, device.group):
        assert view.app_data()[OTHER_COMPONENT] == b"joiner's value"


def test_external_commit_stays_under_the_participant_list_rules(room):
    """A participant-list AppDataUpdate in an external commit is authorized like any other: a member's new
    client may not make its user an admin."""
    world, _, bob = room
    index = plist_mod.index_of(world.room.participant_list(), bob.user_uri.encode())
    promote = plist_mod.make_update(role_changes=[(index, ROLE_ADMIN)]).encode()
    device, request = _external_join(world, "b2", [app_data_update_proposal(int(COMPONENT_PARTICIPANT_LIST), promote)])
    epoch = world.room.epoch
    response, plan = world.update(device, request)
    assert response.responseCode == UpdateResponseCode.notAllowed, response
    assert world.room.epoch == epoch and not plan.domains()
    assert world.room.roles()[bob.user_uri.encode()] == ROLE_MEMBER


def test_mls_accepts_a_mimi_hub_update_in_an_external_commit():
    """At the MLS layer (no component rules) the external commit is valid: the refusal is the hub's rule."""
    alice = Group.create(1, basic_credential(b"alice"))
    info = alice.group_info(ratchet_tree=True, external_pub=True)
    update = app_data_update_proposal(MIMI_HUB_COMPONENT_ID, _forged_hub().encode())
    joiner, commit = Group.join_external(info, basic_credential(b"joiner"), proposals_by_value=[update])
    alice.process(commit)
    assert alice.epoch == joiner.epoch == 1
    assert alice.app_data()[MIMI_HUB_COMPONENT_ID] == joiner.app_data()[MIMI_HUB_COMPONENT_ID] == _forged_hub().encode()


def test_hub_refuses_a_mimi_hub_update_in_an_external_commit(room):
    """EXT-HUBXFER-PUBLIC-COMMITS: refused (notAllowed, naming the rule), nothing fanned out, the hub component
    unchanged; the same join without the update is then accepted."""
    world, alice, _ = room
    before = world.room.view.app_data()[MIMI_HUB_COMPONENT_ID]
    epoch = world.room.epoch
    update = app_data_update_proposal(MIMI_HUB_COMPONENT_ID, _forged_hub().encode())
    device, request = _external_join(world, "b2", [update])
    response, plan = world.update(device, request)
    assert response.responseCode == UpdateResponseCode.notAllowed, response
    assert "EXT-HUBXFER-PUBLIC-COMMITS" in response.errorDescription
    assert world.room.epoch == epoch and not plan.domains()
    assert world.room.view.app_data()[MIMI_HUB_COMPONENT_ID] == before
    device.abandon()
    device, request = _external_join(world, "b3", [])
    ok(world.update(device, request)[0])
    assert world.room.view.app_data()[MIMI_HUB_COMPONENT_ID] == before == alice.group.app_data()[MIMI_HUB_COMPONENT_ID]


def test_fault_accepts_the_external_hub_update_but_not_a_members(room):
    """external-commit-hub-update-accepted: only the external-commit path opens; a member's commit is still refused."""
    world, _, bob = room
    update = app_data_update_proposal(MIMI_HUB_COMPONENT_ID, _forged_hub().encode())
    world.room.built_with(Overrides())  # its own, so that a block can add to it
    with world.room.overrides.during(overrides_for([EXTERNAL_COMMIT_HUB_UPDATE_ACCEPTED])):
        refused, _ = world.commit(bob, bob.commit([update], include_cached=False, validate=False))
        assert refused.responseCode == UpdateResponseCode.notAllowed, refused
        assert "EXT-HUBXFER-COMPONENT-SENDER" in refused.errorDescription
        device, request = _external_join(world, "b2", [update])
        ok(world.update(device, request)[0])
    assert read_hub_data(world.room.view.app_data(), ROOM).hub == IdentifierUri(uri=b"mimi://b.example")
