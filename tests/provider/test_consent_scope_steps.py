"""Steps of the revoke scopes, of a rejected quarantine room staying rejected and of last-resort KeyPackages
served last: a provider built with the fault's overrides departs from exactly that step; one built without
keeps the rule."""

from __future__ import annotations

from provider_helpers import ALICE, BOB, CATHY, ROOM1, ROOM2, FakeClock, key_package, make_provider, query

from reference_peer.faults import overrides_for
from reference_peer.provider.consent import ConsentMode, ConsentVerdict, RoomState
from reference_peer.wire.mimi import KeyMaterialUserCode as UC

C1 = "mimi://a.example/d/alice/c1"
C2 = "mimi://a.example/d/alice/c2"
V = ConsentVerdict


def provider(mode: ConsentMode, *names: str):
    p = make_provider(FakeClock(), mode=mode, overrides=overrides_for(names))
    p.provision_user(ALICE, clients=2)
    return p


def decide(p, room):
    return p.consent.decide_keymaterial(BOB, ALICE, room)


def test_room_revoke_keeps_other_room_grants_unless_the_fault_clears_them():
    for names, room1 in (((), V.allowed), (("consent-room-revoke-clears-other-rooms",), V.noConsent)):
        p = provider(ConsentMode.consent_first, *names)
        p.grant_consent(ALICE, BOB, ROOM1)
        p.grant_consent(ALICE, BOB, ROOM2)
        p.revoke_consent(ALICE, BOB, ROOM2)
        assert decide(p, ROOM1) == room1, names
        assert decide(p, ROOM2) in (V.noConsent, V.noConsentForThisRoom)


def test_any_room_revoke_beats_an_earlier_room_grant_unless_the_fault_lets_it_outlive():
    for mode in (ConsentMode.consent_first, ConsentMode.immediate):
        for names, expected in (((), V.noConsent), (("consent-room-grant-outlives-revoke",), V.allowed)):
            p = provider(mode, *names)
            p.grant_consent(ALICE, BOB, ROOM1)
            p.revoke_consent(ALICE, BOB)
            assert decide(p, ROOM1) == expected, (mode, names)
            assert decide(p, ROOM2) == V.noConsent  # no room grant there: the fault changes nothing


def _welcome(p, requester, item):
    for client in (C1, C2):
        p.upload_key_packages(client, [key_package()])
    result = p.claim_key_material(query(requester=requester, room=ROOM1))
    assert result.user_code == UC.success
    return p.receive_welcome(ROOM1, [c.ref for c in result.clients], item)


def test_rejected_room_stays_rejected_for_readds_and_later_items_unless_the_fault_forgets():
    for names, leaked in (((), []), (("consent-quarantine-reject-forgotten",), [b"re-add", b"later"])):
        p = provider(ConsentMode.quarantine, *names)
        _welcome(p, BOB, b"welcome")
        p.revoke_consent(ALICE, BOB, ROOM1)
        (delivery,) = _welcome(p, CATHY, b"re-add")  # another requester re-adds Alice
        assert delivery.room_state == RoomState.rejected
        p.deliver_to_clients(ROOM1, [C1, C2], b"later")
        assert [i.item for i in p.received(C1)] == leaked, names
        assert p.consent.room_state(ALICE, ROOM1) == RoomState.rejected


def test_last_resort_key_package_served_only_after_the_one_time_ones_unless_the_fault_serves_it_first():
    for names, first_is_last_resort in (((), False), (("keymat-last-resort-first",), True)):
        p = provider(ConsentMode.immediate, *names)
        one_time = p.upload_key_packages(C1, [key_package(), key_package()])
        (last_resort,) = p.upload_key_packages(C1, [key_package(last_resort=True)])
        p.upload_key_packages(C2, [key_package() for _ in range(4)])
        served = [p.claim_key_material(query()).clients[0].ref for _ in range(4)]
        if first_is_last_resort:
            assert served == [last_resort] * 4
        else:
            assert served[:2] == one_time and served[2:] == [last_resort, last_resort]
