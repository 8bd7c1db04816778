"""The keyMaterial steps of expiry and of the proposal/credential parts of requiredCapabilities: a provider
built with the fault's overrides departs from exactly that step; one built without keeps the rule."""

from __future__ import annotations

from provider_helpers import ALICE, T0, FakeClock, key_package, make_provider, query

from reference_peer.faults import overrides_for
from reference_peer.wire.mimi import KeyMaterialClientCode as CC
from reference_peer.wire.mimi import KeyMaterialUserCode as UC

C1 = "mimi://a.example/d/alice/c1"
C2 = "mimi://a.example/d/alice/c2"


def provider(*names: str):
    clock = FakeClock()
    p = make_provider(clock, overrides=overrides_for(names))
    p.provision_user(ALICE, clients=2)
    return p, clock


def test_expiry_only_gates_client_fault_serves_an_expired_one_beside_valid_ones():
    for names, expired_served in (((), False), (("keymat-expiry-only-gates-client",), True)):
        p, clock = provider(*names)
        (old,) = p.upload_key_packages(C1, [key_package(not_after=T0 + 5)])
        p.upload_key_packages(C1, [key_package()])
        clock.advance(6)
        result = p.claim_key_material(query())
        assert result.clients[0].code == CC.success
        assert (result.clients[0].ref == old) is expired_served
        # A client with only expired KeyPackages is exhausted either way: only the choice departs.
        p.upload_key_packages(C2, [key_package(not_after=T0 + 5)])
        assert p.claim_key_material(query()).clients[1].code == CC.keyMaterialExhausted


def test_serve_expired_last_resort_fault():
    for names, code in (((), CC.keyMaterialExhausted), (("keymat-serve-expired-last-resort",), CC.success)):
        p, clock = provider(*names)
        p.upload_key_packages(C1, [key_package(not_after=T0 + 5), key_package(not_after=T0 + 5, last_resort=True)])
        clock.advance(6)
        assert p.claim_key_material(query()).clients[0].code == code


def test_ignore_required_proposal_and_credential_type_faults_depart_only_from_their_part():
    cases = {
        (): (UC.noCompatibleMaterial, UC.noCompatibleMaterial, UC.noCompatibleMaterial),
        ("keymat-ignore-required-proposals",): (UC.noCompatibleMaterial, UC.success, UC.noCompatibleMaterial),
        ("keymat-ignore-required-credentials",): (UC.noCompatibleMaterial, UC.noCompatibleMaterial, UC.success),
    }
    for names, expected in cases.items():
        p, _ = provider(*names)
        for client in (C1, C2):
            p.upload_key_packages(client, [key_package(extensions=[], proposals=[]) for _ in range(3)])
        got = tuple(
            p.claim_key_material(query(**requirement)).user_code
            for requirement in ({"required_extensions": (0xF0A5,)}, {"required_proposals": (0xF0A5,)},
                                {"required_credentials": (0xF0A5,)})
        )
        assert got == expected, names
