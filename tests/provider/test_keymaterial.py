"""keyMaterial target-provider semantics (protocol-06 §5.2)."""

from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from provider_helpers import ALICE, BOB, CATHY, DOMAIN, ROOM1, T0, FakeClock, key_package, make_provider, query

from reference_peer.mls import basic_credential, make_key_package
from reference_peer.mls.leaf import LAST_RESORT_EXTENSION as MLS_LAST_RESORT_EXTENSION
from reference_peer.provider import ProviderSettings, ProviderState
from reference_peer.provider.consent import ConsentMode
from reference_peer.provider.keymaterial import (
    LAST_RESORT_EXTENSION,
    InvalidUpload,
    KeyMaterialQuery,
    KeyMaterialSettings,
    parse_key_package,
    parse_key_package_message,
)
from reference_peer.wire.mimi import KeyMaterialClientCode as CC
from reference_peer.wire.mimi import KeyMaterialResponse
from reference_peer.wire.mimi import KeyMaterialUserCode as UC
from reference_peer.wire.mls import KeyPackage

C1 = "mimi://a.example/d/alice/c1"
C2 = "mimi://a.example/d/alice/c2"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def provider(clock) -> ProviderState:
    p = make_provider(clock)
    p.provision_user(ALICE, clients=2)
    return p


def served_refs(result) -> list[bytes]:
    return [c.ref for c in result.clients if c.code == CC.success]


# -- one-time claims ---------------------------------------------------------------------------


def test_each_client_gets_one_key_package_per_request_and_never_the_same_twice(provider):
    refs1 = provider.upload_key_packages(C1, [key_package(), key_package()])
    refs2 = provider.upload_key_packages(C2, [key_package()])

    first = provider.claim_key_material(query())
    assert first.user_code == UC.success
    assert [c.client_uri for c in first.clients] == [C1, C2]
    assert all(c.code == CC.success for c in first.clients)
    assert served_refs(first)[0] in refs1 and served_refs(first)[1] == refs2[0]

    second = provider.claim_key_material(query())
    assert second.user_code == UC.partialSuccess
    assert [(c.client_uri, c.code) for c in second.clients] == [(C1, CC.success), (C2, CC.keyMaterialExhausted)]
    assert served_refs(second)[0] != served_refs(first)[0]

    third = provider.claim_key_material(query())
    assert third.user_code == UC.noCompatibleMaterial
    assert [c.code for c in third.clients] == [CC.keyMaterialExhausted, CC.keyMaterialExhausted]


def test_served_key_package_bytes_are_the_uploaded_key_package_and_its_ref(provider):
    upload = key_package()
    (ref,) = provider.upload_key_packages(C1, [upload])
    result = provider.claim_key_material(query())
    served = result.clients[0]
    assert served.ref == ref
    assert parse_key_package(upload).encoded == served.key_package
    assert parse_key_package(served.key_package).ref == ref


def test_refused_upload_of_a_key_package_already_stored(provider):
    kp = key_package()
    provider.upload_key_packages(C1, [kp])
    provider.claim_key_material(query())
    with pytest.raises(InvalidUpload, match="already uploaded"):
        provider.upload_key_packages(C1, [kp])  # re-uploading must not make it servable again


def test_upload_rejects_garbage_unknown_clients_and_non_key_package_messages(provider):
    with pytest.raises(InvalidUpload):
        provider.upload_key_packages(C1, [b"\x00\x01garbage"])
    with pytest.raises(InvalidUpload, match="unknown client"):
        provider.upload_key_packages("mimi://a.example/d/alice/nope", [key_package()])
    assert provider.keymaterial.available(C1) == 0


def test_bare_key_package_encoding_is_accepted_too(provider):
    provider.upload_key_packages(C1, [key_package(as_message=False)])
    assert provider.keymaterial.available(C1) == 1


def test_concurrent_claims_from_many_connections_never_share_a_key_package(tmp_path):
    clock = FakeClock()
    settings = ProviderSettings(domains=(DOMAIN,))
    path = tmp_path / "state.sqlite"
    owner = ProviderState.open(settings, path, clock=clock)
    owner.provision_user(ALICE, clients=2)
    for client in (C1, C2):
        owner.upload_key_packages(client, [key_package() for _ in range(40)])

    workers, claims_each = 12, 5  # 60 claims for 40 KeyPackages per client: some must run dry
    results: list = []
    lock = threading.Lock()
    barrier = threading.Barrier(workers)

    def claimer() -> None:
        state = ProviderState.open(settings, path, clock=clock)
        barrier.wait()
        mine = [state.claim_key_material(query()) for _ in range(claims_each)]
        state.close()
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=claimer) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == workers * claims_each
    refs = [ref for r in results for ref in served_refs(r)]
    assert len(refs) == len(set(refs)) == 80
    exhausted = sum(1 for r in results for c in r.clients if c.code == CC.keyMaterialExhausted)
    assert exhausted == 2 * workers * claims_each - 80
    owner.close()


# -- lifetime ----------------------------------------------------------------------------------


def test_expired_key_package_is_never_served(provider, clock):
    provider.upload_key_packages(C1, [key_package(not_after=T0 + 10)])
    clock.advance(11)
    result = provider.claim_key_material(query())
    assert result.clients[0].code == CC.keyMaterialExhausted
    assert result.user_code == UC.noCompatibleMaterial


def test_key_package_valid_until_its_not_after_second(provider, clock):
    provider.upload_key_packages(C1, [key_package(not_after=T0 + 10)])
    clock.advance(10)
    assert provider.claim_key_material(query()).clients[0].code == CC.success


def test_expired_last_resort_is_not_served_either(provider, clock):
    provider.upload_key_packages(C1, [key_package(not_after=T0 + 5, last_resort=True)])
    clock.advance(6)
    assert provider.claim_key_material(query()).clients[0].code == CC.keyMaterialExhausted


def test_not_yet_valid_key_package_is_not_served(provider):
    provider.upload_key_packages(C1, [key_package(not_before=T0 + 60)])
    assert provider.claim_key_material(query()).clients[0].code == CC.keyMaterialExhausted


def test_purge_removes_expired_key_packages(provider, clock):
    provider.upload_key_packages(C1, [key_package(not_after=T0 + 5), key_package()])
    clock.advance(6)
    assert provider.keymaterial.purge_expired() == 1
    assert provider.keymaterial.available(C1) == 1


# -- last resort -------------------------------------------------------------------------------


def test_last_resort_marker_matches_the_mls_library():
    assert LAST_RESORT_EXTENSION == MLS_LAST_RESORT_EXTENSION
    assert parse_key_package(key_package(last_resort=True)).last_resort
    assert not parse_key_package(key_package()).last_resort


def test_last_resort_served_only_when_nothing_else_and_then_reused(provider):
    (lr_ref,) = provider.upload_key_packages(C1, [key_package(last_resort=True)])
    one_time = provider.upload_key_packages(C1, [key_package(), key_package()])

    served = [served_refs(provider.claim_key_material(query()))[0] for _ in range(4)]
    assert sorted(served[:2]) == sorted(one_time)
    assert served[2:] == [lr_ref, lr_ref]


def test_last_resort_flag_at_upload_marks_an_ordinary_key_package(provider):
    (ref,) = provider.upload_key_packages(C1, [key_package()], last_resort=True)
    assert served_refs(provider.claim_key_material(query())) == [ref]
    assert served_refs(provider.claim_key_material(query())) == [ref]


def test_new_one_time_key_package_preferred_over_last_resort(provider):
    (lr_ref,) = provider.upload_key_packages(C1, [key_package(last_resort=True)])
    assert served_refs(provider.claim_key_material(query())) == [lr_ref]
    (fresh,) = provider.upload_key_packages(C1, [key_package()])
    assert served_refs(provider.claim_key_material(query())) == [fresh]


# -- compatibility -----------------------------------------------------------------------------


def test_cipher_suite_outside_acceptable_list_is_nothing_compatible(provider):
    provider.upload_key_packages(C1, [key_package(suite=3)])
    provider.upload_key_packages(C2, [key_package(suite=1)])
    result = provider.claim_key_material(query(suites=(1,)))
    assert result.user_code == UC.partialSuccess
    assert [c.code for c in result.clients] == [CC.nothingCompatible, CC.success]
    caps = result.clients[0].capabilities
    assert caps is not None and caps.cipher_suites == [3]
    # The incompatible KeyPackage was not consumed: a request accepting suite 3 gets it.
    assert provider.claim_key_material(query(suites=(3,))).clients[0].code == CC.success


def test_required_capabilities_extension_proposal_credential(provider):
    provider.upload_key_packages(C1, [key_package(extensions=[0xF001], proposals=[10])])
    provider.upload_key_packages(C2, [key_package(extensions=[], proposals=[])])
    result = provider.claim_key_material(query(required_extensions=(0xF001,)))
    assert [c.code for c in result.clients] == [CC.success, CC.nothingCompatible]
    provider.upload_key_packages(C1, [key_package(extensions=[], proposals=[])])
    result = provider.claim_key_material(query(required_proposals=(10,)))
    assert [c.code for c in result.clients] == [CC.nothingCompatible, CC.nothingCompatible]
    assert result.user_code == UC.noCompatibleMaterial
    assert len(result.clients) == 2  # §5.2: the provider MAY list clients for noCompatibleMaterial
    result = provider.claim_key_material(query(required_credentials=(2,)))  # x509: nobody has it
    assert result.user_code == UC.noCompatibleMaterial


def test_default_extension_and_proposal_types_count_as_supported(provider):
    provider.upload_key_packages(C1, [key_package(extensions=[], proposals=[])])
    result = provider.claim_key_material(
        query(required_extensions=(2, 5), required_proposals=(1, 3), required_credentials=(1,))
    )
    assert result.clients[0].code == CC.success


def test_capabilities_withheld_when_configured(clock):
    p = make_provider(clock, keymaterial=KeyMaterialSettings(reveal_capabilities=False))
    p.provision_user(ALICE, clients=1)
    p.upload_key_packages(C1, [key_package(suite=3)])
    result = p.claim_key_material(query())
    assert result.clients[0].code == CC.nothingCompatible and result.clients[0].capabilities is None


def test_no_compatible_material_without_client_list_when_configured(clock):
    p = make_provider(clock, keymaterial=KeyMaterialSettings(list_clients_when_nothing_compatible=False))
    p.provision_user(ALICE, clients=1)
    result = p.claim_key_material(query())
    assert result.user_code == UC.noCompatibleMaterial and result.clients == ()


def test_other_protocol_is_incompatible_protocol_with_empty_clients(provider):
    provider.upload_key_packages(C1, [key_package()])
    result = provider.claim_key_material(query(protocol=2))
    assert result.user_code == UC.incompatibleProtocol and result.clients == ()
    assert provider.keymaterial.available(C1) == 1


# -- privacy and consent gating ----------------------------------------------------------------


def _shape(result) -> bytes:
    return result.to_response().encode()


def test_unknown_user_indistinguishable_from_non_consenting_user(clock):
    p = make_provider(clock, mode=ConsentMode.consent_first)
    p.provision_user(ALICE, clients=1)
    p.upload_key_packages(C1, [key_package()])
    refused = p.claim_key_material(query())
    stranger = "mimi://a.example/u/zzzzz"  # as long as ALICE, so the encodings can be compared
    unknown = p.claim_key_material(query(target=stranger))
    assert refused.user_code == unknown.user_code == UC.noConsent
    assert refused.clients == unknown.clients == ()
    # Byte-identical responses apart from the echoed userUri.
    assert _shape(refused).replace(ALICE.encode(), b"X" * len(ALICE)) == _shape(unknown).replace(
        stranger.encode(), b"X" * len(ALICE)
    )
    assert p.keymaterial.available(C1) == 1  # no KeyPackage consumed


def test_unknown_user_is_no_consent_even_in_immediate_mode_by_default(provider):
    assert provider.claim_key_material(query(target="mimi://a.example/u/nobody")).user_code == UC.noConsent


def test_unknown_and_deleted_users_revealed_when_configured(clock):
    p = make_provider(clock, keymaterial=KeyMaterialSettings(reveal_unknown_users=True, reveal_deleted_users=True))
    p.provision_user(ALICE, clients=1)
    p.delete_user(ALICE)
    assert p.claim_key_material(query(target="mimi://a.example/u/nobody")).user_code == UC.userUnknown
    deleted = p.claim_key_material(query())
    assert deleted.user_code == UC.userDeleted and deleted.clients == ()


def test_deleted_user_looks_unknown_by_default(provider):
    provider.upload_key_packages(C1, [key_package()])
    provider.delete_user(ALICE)
    result = provider.claim_key_material(query())
    assert result.user_code == UC.noConsent and result.clients == ()


def test_deleted_user_is_user_unknown_when_only_unknown_users_are_revealed(clock):
    p = make_provider(clock, keymaterial=KeyMaterialSettings(reveal_unknown_users=True))
    p.provision_user(ALICE, clients=1)
    p.delete_user(ALICE)
    assert p.claim_key_material(query()).user_code == UC.userUnknown


def test_consent_first_refuses_then_grant_opens_only_its_room(clock):
    p = make_provider(clock, mode=ConsentMode.consent_first)
    p.provision_user(ALICE, clients=1)
    p.upload_key_packages(C1, [key_package() for _ in range(3)])
    assert p.claim_key_material(query()).user_code == UC.noConsent
    p.grant_consent(ALICE, BOB, ROOM1)
    assert p.claim_key_material(query(room=ROOM1)).user_code == UC.success
    other = p.claim_key_material(query(room="mimi://b.example/r/other"))
    assert other.user_code == UC.noConsentForThisRoom and other.clients == ()
    assert p.claim_key_material(query(requester=CATHY)).user_code == UC.noConsent
    assert p.keymaterial.available(C1) == 2


def test_user_code_other_than_success_partial_or_no_compatible_has_empty_clients(clock):
    p = make_provider(clock, mode=ConsentMode.consent_first)
    p.provision_user(ALICE, clients=2)
    p.upload_key_packages(C1, [key_package()])
    for result in (
        p.claim_key_material(query()),
        p.claim_key_material(query(target="mimi://a.example/u/nobody")),
        p.claim_key_material(query(protocol=7)),
    ):
        assert result.user_code not in (UC.success, UC.partialSuccess, UC.noCompatibleMaterial)
        assert result.clients == ()
        assert KeyMaterialResponse.decode(result.to_response().encode()).clients == []


# -- routing and wire form ---------------------------------------------------------------------


def test_claim_records_welcome_route_for_each_served_ref(provider):
    provider.upload_key_packages(C1, [key_package()])
    provider.upload_key_packages(C2, [key_package()])
    result = provider.claim_key_material(query())
    routes = provider.routes.welcome_routes([*served_refs(result), b"\x00" * 32])
    assert [(r.client_uri, r.user_uri, r.requester, r.room) for r in routes] == [
        (C1, ALICE, BOB, ROOM1),
        (C2, ALICE, BOB, ROOM1),
    ]


def test_hub_routes_map_ref_to_provider(provider):
    kp = key_package()
    (ref,) = provider.routes.record_hub_routes(ROOM1, "C.Example", [kp])
    assert ref == parse_key_package(kp).ref
    assert provider.routes.hub_route(ref) == "c.example"
    provider.routes.forget_hub_routes([ref])
    assert provider.routes.hub_route(ref) is None


def test_response_round_trips_through_the_wire_struct(provider):
    provider.upload_key_packages(C1, [key_package()])
    provider.upload_key_packages(C2, [key_package(suite=3)])
    result = provider.claim_key_material(query())
    decoded = KeyMaterialResponse.decode(result.to_response().encode())
    assert decoded.userStatus == UC.partialSuccess
    assert decoded.clients[0].keyPackage == KeyPackage.decode(result.clients[0].key_package)
    assert decoded.clients[1].clientCapabilities.cipher_suites == [3]


def test_key_package_ref_uses_the_mls_reference_hash():
    bundle = make_key_package(1, basic_credential(b"x"))
    assert parse_key_package_message(bundle.to_message()).ref == bundle.ref()
    assert parse_key_package(bundle.key_package.encode()).ref == bundle.ref()


# -- property: claim sequences never double-serve ----------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    uploads=st.lists(st.tuples(st.sampled_from([C1, C2]), st.booleans(), st.sampled_from([1, 3])), max_size=10),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("claim"), st.sampled_from([(1,), (3,), (1, 3)])),
            st.tuples(st.just("advance"), st.integers(0, 400)),
        ),
        max_size=15,
    ),
)
def test_claim_sequences_never_serve_a_one_time_key_package_twice(uploads, steps):
    clock = FakeClock()
    p = make_provider(clock)
    p.provision_user(ALICE, clients=2)
    lifetimes = {}
    for i, (client, last_resort, suite) in enumerate(uploads):
        (ref,) = p.upload_key_packages(
            client, [key_package(suite=suite, last_resort=last_resort, not_after=T0 + 100 * (i + 1))]
        )
        lifetimes[ref] = (last_resort, T0 + 100 * (i + 1), client)
    served_one_time: list[bytes] = []
    for action, arg in steps:
        if action == "advance":
            clock.advance(arg)
            continue
        result = p.claim_key_material(KeyMaterialQuery(BOB, ALICE, ROOM1, arg))
        for c in result.clients:
            if c.code != CC.success:
                continue
            last_resort, not_after, client = lifetimes[c.ref]
            assert not_after >= clock.now, "expired KeyPackage served"
            assert client == c.client_uri
            if not last_resort:
                served_one_time.append(c.ref)
            else:  # a last-resort one only when no compatible one-time KeyPackage was available
                assert all(
                    lr or na < clock.now or cl != client or r in served_one_time or parse_suite(p, r) not in arg
                    for r, (lr, na, cl) in lifetimes.items()
                )
    assert len(served_one_time) == len(set(served_one_time))


def parse_suite(p: ProviderState, ref: bytes) -> int:
    row = p.store.conn.execute("SELECT cipher_suite FROM key_packages WHERE ref = ?", (ref,)).fetchone()
    return row[0]
