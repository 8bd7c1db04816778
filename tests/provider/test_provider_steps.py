"""The provider's named steps (reference_peer.overrides): a provider built with a fault's or an allowed
variant's overrides departs from exactly the step it names; one built without keeps the rule."""

from __future__ import annotations

import asyncio

import pytest
from provider_helpers import ALICE, BOB, ROOM1, ROOM2, FakeClock, key_package, make_provider, query

from reference_peer.faults import overrides_for
from reference_peer.provider.consent import ConsentMode, ConsentScope, ConsentVerdict
from reference_peer.provider.directory_search import Profile, QueryElement, SearchPolicy
from reference_peer.provider.keymaterial import KeyMaterialQuery
from reference_peer.provider.outbox import DeliveryResult, OutboxWorker
from reference_peer.wire.mimi import KeyMaterialClientCode as CC
from reference_peer.wire.mimi import KeyMaterialUserCode as UC
from reference_peer.wire.mimi import SearchIdentifierType as T

C1 = "mimi://a.example/d/alice/c1"
C2 = "mimi://a.example/d/alice/c2"


def provider(*names: str, mode: ConsentMode = ConsentMode.immediate, **settings):
    p = make_provider(FakeClock(), mode=mode, overrides=overrides_for(names), **settings)
    p.provision_user(ALICE, clients=2)
    return p


# -- keyMaterial ---------------------------------------------------------------------------------


def test_first_client_only_fault_serves_one_client():
    for p, expected in ((provider(), [C1, C2]), (provider("keymat-first-client-only"), [C1])):
        for client in (C1, C2):
            p.upload_key_packages(client, [key_package()])
        assert [c.client_uri for c in p.claim_key_material(query()).clients] == expected


def test_reuse_fault_serves_the_same_key_package_again():
    for p, same in ((provider(), False), (provider("keymat-reuse-key-package"), True)):
        p.upload_key_packages(C1, [key_package(), key_package()])
        first, second = p.claim_key_material(query()), p.claim_key_material(query())
        assert (first.clients[0].ref == second.clients[0].ref) is same


def test_unknown_user_faults():
    unknown = query(target="mimi://a.example/u/nobody")
    assert provider().claim_key_material(unknown).user_code == UC.noConsent
    assert provider("keymat-reveal-unknown-users").claim_key_material(unknown).user_code == UC.userUnknown
    assert provider("keymat-unknown-user-empty-success").claim_key_material(unknown).user_code == UC.success


def test_refusal_consumes_fault_claims_on_refusal():
    for p, left in ((provider(mode=ConsentMode.consent_first), 1),
                    (provider("consent-refusal-consumes-keypackage", mode=ConsentMode.consent_first), 0)):
        p.upload_key_packages(C1, [key_package()])
        assert p.claim_key_material(query()).user_code == UC.noConsent
        assert p.keymaterial.available(C1) == left


def test_variant_clients_listed_in_reverse():
    p = provider("keymat-clients-listed-in-reverse")
    for client in (C1, C2):
        p.upload_key_packages(client, [key_package()])
    result = p.claim_key_material(query())
    assert result.user_code == UC.success and [c.client_uri for c in result.clients] == [C2, C1]


def test_variants_nothing_compatible_unlisted_and_capabilities_omitted():
    incompatible = KeyMaterialQuery(BOB, ALICE, ROOM1, (1,), required_extensions=(0xFF00,))
    for names, listed, caps in (((), 2, True), (("keymat-nothing-compatible-unlisted",), 0, None),
                                (("keymat-capabilities-omitted",), 2, False)):
        p = provider(*names)
        for client in (C1, C2):
            p.upload_key_packages(client, [key_package()])
        result = p.claim_key_material(incompatible)
        assert result.user_code == UC.noCompatibleMaterial and len(result.clients) == listed
        if caps is not None:
            assert all(c.code == CC.nothingCompatible and (c.capabilities is not None) is caps for c in result.clients)


# -- consent -------------------------------------------------------------------------------------


def test_variant_no_room_distinction_answers_no_consent():
    for names, verdict in (((), ConsentVerdict.noConsentForThisRoom),
                           (("keymat-no-room-distinction",), ConsentVerdict.noConsent)):
        p = provider(*names, mode=ConsentMode.consent_first)
        p.grant_consent(ALICE, BOB, ROOM1)
        assert p.consent.decide_keymaterial(BOB, ALICE, ROOM1) == ConsentVerdict.allowed
        assert p.consent.decide_keymaterial(BOB, ALICE, ROOM2) == verdict


@pytest.mark.parametrize(("fault", "verdict"), [
    ("consent-first-ungated-keymaterial", ConsentVerdict.allowed),
    ("consent-quarantine-refuses-keymaterial", None),
])
def test_keymaterial_verdict_faults(fault, verdict):
    mode = ConsentMode.consent_first if verdict == ConsentVerdict.allowed else ConsentMode.quarantine
    default = provider(mode=mode).consent.decide_keymaterial(BOB, ALICE, ROOM1)
    faulty = provider(fault, mode=mode).consent.decide_keymaterial(BOB, ALICE, ROOM1)
    assert faulty != default
    assert faulty == (verdict or ConsentVerdict.noConsent)


def test_cancel_faults():
    for names, pending_after in (((), 1), (("consent-cancel-ignored",), 2), (("consent-cancel-any-scope",), 0)):
        p = provider(*names)
        p.consent.record_request(ConsentScope(BOB, ALICE, ROOM1))
        p.consent.record_request(ConsentScope(BOB, ALICE, ROOM2))
        p.consent.cancel_request(ConsentScope(BOB, ALICE, ROOM1))
        assert len(p.consent.pending_requests(ALICE)) == pending_after
    with pytest.raises(ValueError):
        provider("consent-cancel-no-match-refused").consent.cancel_request(ConsentScope(BOB, ALICE, ROOM1))
    assert provider().consent.cancel_request(ConsentScope(BOB, ALICE, ROOM1)) is False


def test_revoke_ignored_and_request_not_recorded_faults():
    for names, verdict in (((), ConsentVerdict.noConsent), (("consent-revoke-ignored",), ConsentVerdict.allowed)):
        p = provider(*names, mode=ConsentMode.consent_first)
        p.grant_consent(ALICE, BOB)
        p.revoke_consent(ALICE, BOB)
        assert p.consent.decide_keymaterial(BOB, ALICE, ROOM1) == verdict
    for names, pending in (((), 1), (("consent-request-not-recorded",), 0)):
        p = provider(*names)
        assert p.receive_request_consent("request", BOB, ALICE, ROOM1, peer_domain="b.example").status == 201
        assert len(p.consent.pending_requests(ALICE)) == pending


def test_quarantine_release_order_and_leak_faults():
    for names, order in (((), [b"w", b"1", b"2"]), (("consent-quarantine-release-reversed",), [b"w", b"2", b"1"])):
        p = provider(*names, mode=ConsentMode.quarantine)
        p.consent.note_added(ALICE, ROOM1, BOB)
        for item in (b"w", b"1", b"2"):
            p.consent.deliver(ALICE, ROOM1, [C1], item)
        assert [i.item for i in p.consent.accept(ALICE, BOB, ROOM1)] == order
    p = provider("consent-quarantine-leaks-held", mode=ConsentMode.quarantine)
    p.consent.note_added(ALICE, ROOM1, BOB)
    p.consent.deliver(ALICE, ROOM1, [C1], b"w")
    assert [i.item for i in p.received(C1)] == [b"w"]


# -- identifierQuery -------------------------------------------------------------------------------


def _directory(*names: str):
    p = make_provider(FakeClock(), domains=("xyz.example",), overrides=overrides_for(names))
    for user in ("mimi://xyz.example/u/ann", "mimi://xyz.example/u/bea", "mimi://xyz.example/u/cy"):
        p.provision_user(user, clients=0, profile=Profile(handles=(f"im:{user[-3:]}@xyz.example",),
                                                          names={"family_name": "Smith"}),
                         search_policy=SearchPolicy.searchable)
    return p


def _found(p, kind: T, value: str) -> list[str]:
    return [m.uri for m in p.identifier_query([QueryElement(int(kind), value.encode())]).matches]


def test_variant_idquery_matches_listed_in_reverse():
    assert _found(_directory(), T.partialName, "smith") == sorted(_found(_directory(), T.partialName, "smith"))
    reversed_ = _directory("idquery-matches-listed-in-reverse")
    assert _found(reversed_, T.partialName, "smith") == list(reversed(_found(_directory(), T.partialName, "smith")))
    result = reversed_.identifier_query([QueryElement(int(T.partialName), b"smith")]).to_response()
    assert [bytes(u.uri) for u in result.uri] == [bytes(p.stableUri.uri) for p in result.foundProfiles]


def test_idquery_faults_depart_from_their_steps():
    assert _found(_directory(), T.handle, "im:an") == []
    assert _found(_directory("idquery-prefix-match"), T.handle, "im:an") == ["mimi://xyz.example/u/ann"]
    assert len(_found(_directory(), T.partialName, "smith")) == 3
    assert len(_found(_directory("idquery-first-match-only"), T.partialName, "smith")) == 1
    for names, found in (((), []), (("idquery-finds-deleted-users",), ["mimi://xyz.example/u/ann"])):
        p = _directory(*names)
        p.delete_user("mimi://xyz.example/u/ann")
        assert _found(p, T.handle, "im:ann@xyz.example") == found


# -- outbox ----------------------------------------------------------------------------------------


def test_notify_in_parallel_is_the_outbox_departing_from_one_in_flight():
    async def started_before_any_answer(names) -> int:
        p = make_provider(FakeClock(), overrides=overrides_for(names))
        release, started = asyncio.Event(), []

        async def send(item) -> DeliveryResult:
            started.append(item.body)
            await release.wait()
            return DeliveryResult(201)

        worker = OutboxWorker(p.outbox, send, clock=p.clock)
        for n in range(3):
            p.outbox.enqueue("b.example", "notify", b"n%d" % n, path_vars={"roomId": "r"})
        task = asyncio.ensure_future(worker.run_once())
        for _ in range(5):
            await asyncio.sleep(0)
        count = len(started)
        release.set()
        for _ in range(20):
            await asyncio.sleep(0)
        await task
        return count

    assert asyncio.run(started_before_any_answer(())) == 1
    assert asyncio.run(started_before_any_answer(("notify-in-parallel",))) == 3


def test_variant_consent_revoke_sent_queues_update_consent():
    for names, queued in (((), False), (("consent-revoke-sent",), True)):
        p = provider(*names)
        change = p.revoke_consent(ALICE, BOB)
        assert (change.outbox_id is not None) is queued
        if queued:
            (record,) = p.outbox.records("pending")
            assert record.item.endpoint == "updateConsent" and record.item.destination == "b.example"
