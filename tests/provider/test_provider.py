"""ProviderState: the facade the handlers and the control API call."""

from __future__ import annotations

import pytest
from provider_helpers import ALICE, BOB, ROOM1, FakeClock, key_package, make_provider, query

from reference_peer.provider.consent import ConsentDomainError, ConsentMode
from reference_peer.provider.directory_search import Profile, QueryElement, SearchPolicy
from reference_peer.provider.keymaterial import query_from_request
from reference_peer.wire.identity import IdentifierUri
from reference_peer.wire.mimi import ConsentEntry, ConsentOperation, KeyMaterialRequest, Protocol
from reference_peer.wire.mimi import KeyMaterialUserCode as UC
from reference_peer.wire.mimi import SearchIdentifierType as T
from reference_peer.wire.mls import AppDataDictionary, Credential, CredentialType, RequiredCapabilities

C1 = "mimi://a.example/d/alice/c1"
C2 = "mimi://a.example/d/alice/c2"


@pytest.fixture
def provider():
    return make_provider(FakeClock())


def uri(text: str) -> IdentifierUri:
    return IdentifierUri(uri=text.encode())


def test_provision_user_with_n_clients_and_profile(provider):
    user = provider.provision_user(
        ALICE, clients=2, profile=Profile(handles=("im:alice@a.example",)), search_policy=SearchPolicy.searchable
    )
    assert user.clients == (C1, C2)
    assert provider.clients_of(ALICE) == [C1, C2]
    assert provider.user_of(C2) == ALICE
    result = provider.identifier_query([QueryElement(int(T.nick), b"alice")])
    assert [m.uri for m in result.matches] == [ALICE]


def test_provision_refuses_foreign_domains_and_duplicates(provider):
    with pytest.raises(ValueError):
        provider.provision_user(BOB)
    provider.provision_user(ALICE, clients=["mimi://a.example/d/laptop"])
    with pytest.raises(ValueError):
        provider.provision_user(ALICE)
    with pytest.raises(ValueError):
        provider.add_client(ALICE, "mimi://b.example/d/phone")


def test_delete_client_removes_its_key_packages_and_routes(provider):
    provider.provision_user(ALICE, clients=2)
    provider.upload_key_packages(C1, [key_package()])
    provider.upload_key_packages(C2, [key_package(), key_package()])
    served = provider.claim_key_material(query())
    provider.delete_client(C2)
    assert provider.clients_of(ALICE) == [C1]
    assert provider.keymaterial.available(C2) == 0
    assert [r.client_uri for r in provider.routes.welcome_routes([c.ref for c in served.clients])] == [C1]
    with pytest.raises(KeyError):
        provider.delete_client(C2)


def test_deleted_user_can_be_provisioned_again(provider):
    provider.provision_user(ALICE, clients=1)
    provider.deliver_to_clients(ROOM1, [C1], b"old message")
    provider.delete_user(ALICE)
    assert provider.user_status(ALICE) == "deleted"
    assert provider.clients_of(ALICE) == []
    provider.provision_user(ALICE, clients=1)
    assert provider.received(C1) == []  # the new client does not inherit the old one's messages
    provider.upload_key_packages(C1, [key_package()])
    assert provider.claim_key_material(query()).user_code == UC.success


def test_key_material_request_struct_to_query(provider):
    request = KeyMaterialRequest(
        protocol=Protocol.mls10,
        requestingUser=uri(BOB),
        targetUser=uri(ALICE),
        roomId=uri(""),
        acceptableCiphersuites=[1, 3],
        requiredCapabilities=RequiredCapabilities(extension_types=[6], proposal_types=[10], credential_types=[1]),
        requesterSignatureKey=b"k",
        requesterCredential=Credential(credential_type=CredentialType.basic, identity=b"bob"),
        key_material_request_signature=b"s",
    )
    q = query_from_request(KeyMaterialRequest.decode(request.encode()))
    assert (q.requester, q.target, q.room) == (BOB, ALICE, None)
    assert (tuple(q.acceptable_ciphersuites), q.required_extensions, q.required_proposals, q.required_credentials) == (
        (1, 3),
        (6,),
        (10,),
        (1,),
    )


def test_consent_entry_from_the_wire_is_recorded(provider):
    provider.provision_user(ALICE, clients=1, consent_mode=ConsentMode.consent_first)
    entry = ConsentEntry(
        consentOperation=ConsentOperation.request,
        requesterUri=uri(BOB),
        targetUri=uri(ALICE),
        roomId=uri(ROOM1),
        consent_extensions=AppDataDictionary(component_data=[]),
    )
    receipt = provider.receive_consent_entry(ConsentEntry.decode(entry.encode()), peer_domain="b.example")
    assert receipt.status == 201
    assert [(p.requester, p.room) for p in provider.list_events(ALICE).pending_requests] == [(BOB, ROOM1)]


def test_local_request_consent_is_queued_for_the_target_provider(provider):
    provider.provision_user(ALICE)
    item_id = provider.request_consent(ALICE, BOB, ROOM1)
    record = provider.outbox.record(item_id)
    assert (record.item.destination, record.item.endpoint, dict(record.item.path_vars)) == (
        "b.example",
        "requestConsent",
        {"targetDomain": "b.example"},
    )
    entry = ConsentEntry.decode(record.item.body)
    assert (entry.consentOperation, entry.requesterUri.uri, entry.targetUri.uri) == (
        ConsentOperation.request,
        ALICE.encode(),
        BOB.encode(),
    )
    cancel = ConsentEntry.decode(
        provider.outbox.record(provider.request_consent(ALICE, BOB, ROOM1, cancel=True)).item.body
    )
    assert cancel.consentOperation == ConsentOperation.cancel
    with pytest.raises(ConsentDomainError):
        provider.request_consent(BOB, ALICE)


def test_grant_to_a_local_requester_sends_nothing(provider):
    provider.provision_user(ALICE)
    provider.provision_user("mimi://a.example/u/dave")
    assert provider.grant_consent(ALICE, "mimi://a.example/u/dave").outbox_id is None
    assert provider.outbox.records() == []


def test_grant_commits_decision_and_outbox_together(provider):
    provider.provision_user(ALICE)
    with pytest.raises(KeyError):
        provider.grant_consent("mimi://a.example/u/nobody", BOB)
    assert provider.outbox.records() == []


def test_welcome_route_forgotten_after_delivery_and_unknown_refs_skipped(provider):
    provider.provision_user(ALICE, clients=1)
    provider.upload_key_packages(C1, [key_package()])
    (served,) = provider.claim_key_material(query()).clients
    deliveries = provider.receive_welcome(ROOM1, [served.ref, b"\x01" * 32], b"welcome")
    assert [(d.user, d.clients) for d in deliveries] == [(ALICE, (C1,))]
    assert provider.routes.welcome_routes([served.ref]) == []
    assert provider.receive_welcome(ROOM1, [served.ref], b"welcome") == []  # replay: no route any more
    assert [i.item for i in provider.received(C1)] == [b"welcome"]


def test_notify_is_new(provider):
    assert provider.notify_is_new("hub.example", b"x")
    assert not provider.notify_is_new("hub.example", b"x")


def test_queue_notify_goes_to_the_outbox_with_the_room(provider):
    item_id = provider.queue_notify("B.example", ROOM1, b"fanout")
    record = provider.outbox.record(item_id)
    assert (record.item.destination, record.item.endpoint, dict(record.item.path_vars), record.item.body) == (
        "b.example",
        "notify",
        {"roomId": ROOM1},
        b"fanout",
    )


def test_notify_processing_and_dedup_commit_or_roll_back_together(provider):
    provider.provision_user(ALICE, clients=1)
    provider.upload_key_packages(C1, [key_package()])
    (served,) = provider.claim_key_material(query()).clients
    body = b"notify-body"
    with pytest.raises(RuntimeError), provider.store.transaction():
        assert provider.notify_is_new("hub.example", body)
        provider.receive_welcome(ROOM1, [served.ref], b"welcome")
        raise RuntimeError("crash while processing")
    assert provider.received(C1) == []
    with provider.store.transaction():  # the hub's retry is processed, not taken for a duplicate
        assert provider.notify_is_new("hub.example", body)
        provider.receive_welcome(ROOM1, [served.ref], b"welcome")
    assert [i.item for i in provider.received(C1)] == [b"welcome"]
    assert not provider.notify_is_new("hub.example", body)
