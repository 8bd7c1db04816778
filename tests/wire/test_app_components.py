"""The ``app_components`` component of draft-ietf-mls-extensions-09 (section 5): a ComponentsList in the
app_data_dictionary extension of a LeafNode (supported components). Round trips, the pinned layout,
tolerant reading, and the reference clients' LeafNodes (KeyPackages, a created group, UpdatePaths,
Updates, external joins) listing the components they process."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from reference_peer.mls import (
    Group,
    add_proposal,
    app_components_extension,
    basic_credential,
    leaf_app_components,
    make_key_package,
)
from reference_peer.mls.leaf import validate_leaf_node
from reference_peer.room.follower import CLIENT_APP_COMPONENTS, SimulatedClient
from reference_peer.wire.codec import DecodeError
from reference_peer.wire.hub_transfer import MIMI_HUB_COMPONENT_ID
from reference_peer.wire.mimi import COMPONENT_PARTICIPANT_LIST
from reference_peer.wire.mls import (
    COMPONENT_APP_COMPONENTS,
    AppDataDictionary,
    ComponentData,
    ComponentsList,
    Extension,
    ExtensionType,
    LeafNodeSource,
)
from reference_peer.wire.room_policy import PolicyComponentId

component_ids = st.lists(st.integers(min_value=0, max_value=0xFFFF), max_size=40)


@settings(max_examples=200, deadline=None)
@given(component_ids)
def test_components_list_round_trip(ids):
    listed = ComponentsList(component_ids=ids)
    encoded = listed.encode()
    assert ComponentsList.decode(encoded) == listed
    assert ComponentsList.decode(encoded).encode() == encoded


@settings(max_examples=100, deadline=None)
@given(component_ids, st.dictionaries(st.integers(min_value=2, max_value=0xFFFF), st.binary(max_size=20), max_size=4))
def test_app_components_in_a_dictionary_round_trip(ids, others):
    """The app_components entry reads back among other entries of a LeafNode's app_data_dictionary."""
    entries = {int(COMPONENT_APP_COMPONENTS): ComponentsList(component_ids=sorted(set(ids))).encode(), **others}
    dictionary = AppDataDictionary(component_data=[ComponentData(component_id=k, data=v) for k, v in sorted(entries.items())])
    leaf = make_key_package(1, basic_credential(b"x"), leaf_extensions=[
        Extension(extension_type=ExtensionType.app_data_dictionary, extension_data=dictionary.encode())
    ]).key_package.leaf_node
    assert leaf_app_components(leaf) == sorted(set(ids))
    assert AppDataDictionary.decode(dictionary.encode()) == dictionary


@settings(max_examples=100, deadline=None)
@given(component_ids)
def test_app_components_extension_is_sorted_and_unique(ids):
    ext = app_components_extension(ids)
    assert ext.extension_type == ExtensionType.app_data_dictionary
    dictionary = AppDataDictionary.decode(bytes(ext.extension_data))
    assert [e.component_id for e in dictionary.component_data] == [int(COMPONENT_APP_COMPONENTS)]
    assert ComponentsList.decode(bytes(dictionary.component_data[0].data)).component_ids == sorted(set(ids))


def test_layout_is_pinned():
    """-09: uint16 ComponentID; app_components is component 0x0001 (suggested), ComponentsList a <V> vector
    of uint16; the extension is app_data_dictionary (0x0006)."""
    assert COMPONENT_APP_COMPONENTS == 0x0001
    assert ComponentsList(component_ids=[0x0022, 0xF0A9]).encode() == bytes.fromhex("04 0022 f0a9")
    ext = app_components_extension([0xF0A9, 0x0022, 0x0022])
    assert ext.extension_type == 0x0006
    # AppDataDictionary: <V> of one ComponentData {uint16 0x0001, opaque data<V> = ComponentsList}.
    assert bytes(ext.extension_data) == bytes.fromhex("08 0001 05 04 0022 f0a9")


def test_missing_or_undecodable_entry_reads_as_none():
    bare = make_key_package(1, basic_credential(b"x")).key_package.leaf_node
    assert leaf_app_components(bare) is None
    other_only = AppDataDictionary(component_data=[ComponentData(component_id=0x0022, data=b"")]).encode()
    leaf = bare.replace(extensions=[Extension(extension_type=ExtensionType.app_data_dictionary, extension_data=other_only)])
    assert leaf_app_components(leaf) is None
    broken = AppDataDictionary(component_data=[ComponentData(component_id=1, data=b"\x05\x00")]).encode()
    leaf = bare.replace(extensions=[Extension(extension_type=ExtensionType.app_data_dictionary, extension_data=broken)])
    assert leaf_app_components(leaf) is None
    try:
        ComponentsList.decode(b"\x05\x00")
    except DecodeError:
        pass
    else:  # pragma: no cover - the codec must refuse a truncated vector
        raise AssertionError("a truncated ComponentsList decoded")


def test_reference_client_components():
    assert set(CLIENT_APP_COMPONENTS) == {
        int(COMPONENT_PARTICIPANT_LIST), int(PolicyComponentId.roles_list), int(PolicyComponentId.base_room_policy),
        MIMI_HUB_COMPONENT_ID,
    }


def _listed(leaf) -> list[int] | None:
    return leaf_app_components(leaf)


def test_reference_client_leaves_list_their_components():
    """KeyPackage, a created group, an UpdatePath, an Update and an external join: each LeafNode lists the
    client's components, and its capabilities list app_data_dictionary (RFC 9420 §7.2), so it validates."""
    expected = sorted(CLIENT_APP_COMPONENTS)
    alice = SimulatedClient("a.example", "alice", "a1")
    bob = SimulatedClient("b.example", "bob", "b1")
    kp = bob.make_key_package()
    leaf = kp.key_package.leaf_node
    assert _listed(leaf) == expected
    assert int(ExtensionType.app_data_dictionary) in leaf.capabilities.extensions
    validate_leaf_node(kp.suite, leaf, expected_source=LeafNodeSource.key_package)

    group = alice.create_group([])
    assert _listed(group.own_leaf_node()) == expected
    out = group.commit([add_proposal(kp.key_package)])
    group.merge_pending_commit()
    joined = Group.join(out.welcome, kp)
    assert _listed(group.own_leaf_node()) == expected  # the committer's UpdatePath leaf
    assert _listed(joined.own_leaf_node()) == expected
    update = joined.propose_update()
    group.process(update)
    group.commit()
    group.merge_pending_commit()
    assert _listed(group.tree.leaf(joined.own_leaf)) == expected  # the Update's leaf

    carol = SimulatedClient("c.example", "carol", "c1")
    carol.join_external(group.group_info(), None)
    assert _listed(carol.group.own_leaf_node()) == expected


def test_client_without_hub_component():
    """The knob's effect: a client whose app_components omit mimi_hub still lists the others."""
    client = SimulatedClient("b.example", "nohub", "c1")
    client.app_components = tuple(c for c in CLIENT_APP_COMPONENTS if c != MIMI_HUB_COMPONENT_ID)
    listed = _listed(client.make_key_package().key_package.leaf_node)
    assert listed is not None and MIMI_HUB_COMPONENT_ID not in listed and len(listed) == len(CLIENT_APP_COMPONENTS) - 1
