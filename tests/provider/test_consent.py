"""Consent state (docs/extensions/consent-modes.md; protocol-06 §5.7). Test names carry the
extension's statement IDs where one applies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from provider_helpers import ALICE, BOB, CATHY, ROOM1, ROOM2, FakeClock, key_package, make_provider, query

from reference_peer.provider.consent import (
    ConsentDomainError,
    ConsentMode,
    ConsentScope,
    ConsentSettings,
    ConsentVerdict,
    RoomState,
    check_consent_domains,
)
from reference_peer.provider.keymaterial import parse_key_package
from reference_peer.wire.mimi import ConsentEntry, ConsentOperation
from reference_peer.wire.mimi import KeyMaterialUserCode as UC

C1 = "mimi://a.example/d/alice/c1"
C2 = "mimi://a.example/d/alice/c2"
V = ConsentVerdict


def provider(mode: ConsentMode, clock: FakeClock | None = None, **settings):
    p = make_provider(clock or FakeClock(), mode=mode, **settings)
    p.provision_user(ALICE, clients=2)
    return p


def decide(p, requester=BOB, room=ROOM1):
    return p.consent.decide_keymaterial(requester, ALICE, room)


def welcome_for_alice(p, room=ROOM1, requester=BOB, item=b"welcome"):
    """Claim Alice's KeyPackages as ``requester`` for ``room`` and deliver a Welcome naming them."""
    for client in (C1, C2):
        p.upload_key_packages(client, [key_package()])
    result = p.claim_key_material(query(requester=requester, room=room))
    assert result.user_code == UC.success
    return p.receive_welcome(room, [c.ref for c in result.clients], item)


def received(p, client=C1):
    return [(i.room_id, i.item) for i in p.received(client)]


# -- modes -------------------------------------------------------------------------------------


def test_ext_consent_mode_declared_default_and_per_user_override():
    p = provider(ConsentMode.immediate)
    assert p.consent.mode_for(ALICE) == ConsentMode.immediate
    p.set_consent_mode(ALICE, ConsentMode.consent_first)
    assert p.consent.mode_for(ALICE) == ConsentMode.consent_first
    assert decide(p) == V.noConsent
    p.set_consent_mode(ALICE, None)
    assert decide(p) == V.allowed


def test_per_user_override_refused_when_provider_disallows_it():
    p = make_provider(FakeClock(), consent=ConsentSettings(allow_user_override=False))
    p.provision_user(ALICE, clients=1)
    with pytest.raises(ValueError):
        p.set_consent_mode(ALICE, ConsentMode.consent_first)
    with pytest.raises(ValueError):
        p.provision_user("mimi://a.example/u/zed", consent_mode=ConsentMode.quarantine)


def test_ext_consent_immediate_keymaterial_for_any_requester_unless_revoked():
    p = provider(ConsentMode.immediate)
    assert decide(p, BOB) == decide(p, CATHY) == V.allowed
    p.revoke_consent(ALICE, BOB)
    assert decide(p, BOB) == V.noConsent
    assert decide(p, CATHY) == V.allowed


def test_ext_consent_immediate_delivery_without_user_action():
    p = provider(ConsentMode.immediate)
    deliveries = welcome_for_alice(p)
    assert [d.room_state for d in deliveries] == [None]
    p.deliver_to_clients(ROOM1, [C1, C2], b"m1")
    assert received(p, C1) == received(p, C2) == [(ROOM1, b"welcome"), (ROOM1, b"m1")]
    assert p.list_events(ALICE).held_rooms == ()


# -- quarantine --------------------------------------------------------------------------------


def test_ext_consent_quarantine_add_succeeds():
    p = provider(ConsentMode.quarantine)
    assert decide(p) == V.allowed
    p.upload_key_packages(C1, [key_package()])
    assert p.claim_key_material(query()).user_code == UC.partialSuccess


def test_ext_consent_quarantine_hold_nothing_readable_before_accept():
    p = provider(ConsentMode.quarantine)
    deliveries = welcome_for_alice(p)
    assert [(d.user, d.requester, d.room_state) for d in deliveries] == [(ALICE, BOB, RoomState.held)]
    states = p.deliver_to_clients(ROOM1, [C1, C2], b"m1")
    assert states == {ALICE: RoomState.held}  # accepted from the hub (/notify answers 201), stored
    assert received(p, C1) == received(p, C2) == []
    (held,) = p.list_events(ALICE).held_rooms
    assert (held.room, held.requester, held.held_items) == (ROOM1, BOB, 2)


def test_ext_consent_quarantine_release_once_in_fanout_order():
    p = provider(ConsentMode.quarantine)
    welcome_for_alice(p)
    for n in range(1, 4):
        p.deliver_to_clients(ROOM1, [C1, C2], f"m{n}".encode())
    change = p.grant_consent(ALICE, BOB, ROOM1)
    expected = [(ROOM1, b"welcome"), (ROOM1, b"m1"), (ROOM1, b"m2"), (ROOM1, b"m3")]
    assert [(r.room, r.item) for r in change.released] == expected
    assert received(p, C1) == received(p, C2) == expected
    # Exactly once: accepting again releases nothing more; later items flow directly.
    assert p.grant_consent(ALICE, BOB, ROOM1).released == ()
    p.deliver_to_clients(ROOM1, [C1], b"m4")
    assert received(p, C1) == [*expected, (ROOM1, b"m4")]
    assert p.list_events(ALICE).held_rooms == ()
    held_left = p.store.conn.execute("SELECT COUNT(*) FROM held_items").fetchone()[0]
    assert held_left == 0  # released items leave the quarantine store, they are not just hidden


def test_accept_without_room_releases_every_held_room_of_that_requester_only():
    p = provider(ConsentMode.quarantine)
    welcome_for_alice(p, ROOM1, BOB, b"w1")
    welcome_for_alice(p, ROOM2, BOB, b"w2")
    welcome_for_alice(p, "mimi://c.example/r/x", CATHY, b"w3")
    change = p.grant_consent(ALICE, BOB)
    assert [(r.room, r.item) for r in change.released] == [(ROOM1, b"w1"), (ROOM2, b"w2")]
    assert [h.requester for h in p.list_events(ALICE).held_rooms] == [CATHY]


def test_ext_consent_quarantine_reject_drops_held_items_forever():
    p = provider(ConsentMode.quarantine)
    welcome_for_alice(p)
    p.deliver_to_clients(ROOM1, [C1, C2], b"m1")
    assert p.revoke_consent(ALICE, BOB, ROOM1).dropped == 2
    p.deliver_to_clients(ROOM1, [C1, C2], b"m2")
    assert p.consent.room_state(ALICE, ROOM1) == RoomState.rejected
    assert p.grant_consent(ALICE, BOB, ROOM1).released == ()  # nothing left to release
    assert received(p, C1) == received(p, C2) == []


def test_accept_after_reject_lets_only_later_items_through():
    p = provider(ConsentMode.quarantine)
    welcome_for_alice(p)
    p.revoke_consent(ALICE, BOB, ROOM1)
    p.deliver_to_clients(ROOM1, [C1], b"dropped")
    p.grant_consent(ALICE, BOB, ROOM1)
    p.deliver_to_clients(ROOM1, [C1], b"after")
    assert received(p, C1) == [(ROOM1, b"after")]


def test_ext_consent_quarantine_granted_room_not_held():
    p = provider(ConsentMode.quarantine)
    p.grant_consent(ALICE, BOB, ROOM1)
    assert [d.room_state for d in welcome_for_alice(p, ROOM1)] == [None]
    assert received(p) == [(ROOM1, b"welcome")]
    # The room grant does not cover another room: that one is held.
    assert [d.room_state for d in welcome_for_alice(p, ROOM2, item=b"w2")] == [RoomState.held]


def test_quarantine_any_room_grant_means_nothing_from_that_requester_is_held():
    p = provider(ConsentMode.quarantine)
    p.grant_consent(ALICE, BOB)
    assert [d.room_state for d in welcome_for_alice(p, ROOM2)] == [None]


def test_rooms_are_not_held_in_immediate_or_consent_first_mode():
    for mode in (ConsentMode.immediate, ConsentMode.consent_first):
        p = provider(mode)
        p.grant_consent(ALICE, BOB, ROOM1)  # consent-first needs it to get KeyPackages at all
        assert p.consent.note_added(ALICE, ROOM2, BOB) is None


def test_quarantine_is_durable_across_restart(tmp_path):
    from reference_peer.provider import ProviderSettings, ProviderState

    clock = FakeClock()
    settings = ProviderSettings(domains=("a.example",), consent=ConsentSettings(default_mode=ConsentMode.quarantine))
    p = ProviderState.open(settings, tmp_path / "s.sqlite", clock=clock)
    p.provision_user(ALICE, clients=2)
    welcome_for_alice(p)
    p.deliver_to_clients(ROOM1, [C1], b"m1")
    p.close()
    p = ProviderState.open(settings, tmp_path / "s.sqlite", clock=clock)
    assert received(p) == []
    assert [r.item for r in p.grant_consent(ALICE, BOB, ROOM1).released] == [b"welcome", b"m1"]
    assert received(p) == [(ROOM1, b"welcome"), (ROOM1, b"m1")]
    p.close()


# -- consent-first -----------------------------------------------------------------------------


def test_ext_consent_first_no_key_packages_without_grant():
    p = provider(ConsentMode.consent_first)
    p.upload_key_packages(C1, [key_package()])
    result = p.claim_key_material(query())
    assert result.user_code == UC.noConsent and result.clients == ()
    assert p.keymaterial.available(C1) == 1


def test_ext_consent_first_request_201_and_listed_as_pending_event():
    p = provider(ConsentMode.consent_first)
    receipt = p.receive_request_consent("request", BOB, ALICE, ROOM1, peer_domain="b.example")
    assert (receipt.status, receipt.recorded) == (201, True)
    (pending,) = p.list_events(ALICE).pending_requests
    assert (pending.requester, pending.target, pending.room) == (BOB, ALICE, ROOM1)
    assert decide(p) == V.noConsent  # a request alone opens nothing


def test_ext_consent_first_grant_opens_and_is_sent_to_the_requester_provider():
    p = provider(ConsentMode.consent_first)
    p.receive_request_consent("request", BOB, ALICE, None, peer_domain="b.example")
    change = p.grant_consent(ALICE, BOB)
    assert decide(p, room=ROOM1) == decide(p, room=ROOM2) == decide(p, room=None) == V.allowed
    assert p.list_events(ALICE).pending_requests == ()  # the grant answered the request
    record = p.outbox.record(change.outbox_id)
    assert (record.item.destination, record.item.endpoint, dict(record.item.path_vars)) == (
        "b.example",
        "updateConsent",
        {"requesterDomain": "b.example"},
    )
    entry = ConsentEntry.decode(record.item.body)
    assert entry.consentOperation == ConsentOperation.grant
    assert (entry.requesterUri.uri, entry.targetUri.uri, entry.roomId) == (BOB.encode(), ALICE.encode(), None)


def test_grant_may_carry_key_packages():
    p = provider(ConsentMode.consent_first)
    kp = key_package()
    change = p.grant_consent(ALICE, BOB, ROOM1, key_packages=[parse_key_package(kp).encoded])
    entry = ConsentEntry.decode(p.outbox.record(change.outbox_id).item.body)
    assert entry.roomId.uri == ROOM1.encode()
    assert [k.encode() for k in entry.clientKeyPackages] == [parse_key_package(kp).encoded]


def test_ext_consent_first_revoke_closes_and_is_not_sent_by_default():
    p = provider(ConsentMode.consent_first)
    p.grant_consent(ALICE, BOB)
    change = p.revoke_consent(ALICE, BOB)
    assert decide(p) == V.noConsent
    assert change.outbox_id is None
    assert [r.item.endpoint for r in p.outbox.records()] == ["updateConsent"]  # only the grant


def test_revoke_sent_when_configured():
    p = provider(ConsentMode.consent_first, send_revocations=True)
    change = p.revoke_consent(ALICE, BOB, ROOM1)
    entry = ConsentEntry.decode(p.outbox.record(change.outbox_id).item.body)
    assert entry.consentOperation == ConsentOperation.revoke


def test_ext_consent_room_scope_grant_opens_only_that_room():
    p = provider(ConsentMode.consent_first)
    p.grant_consent(ALICE, BOB, ROOM1)
    assert decide(p, room=ROOM1) == V.allowed
    assert decide(p, room=ROOM2) == V.noConsentForThisRoom
    assert decide(p, room=None) == V.noConsentForThisRoom
    assert decide(p, CATHY, ROOM1) == V.noConsent


def test_room_distinction_can_be_hidden():
    p = make_provider(
        FakeClock(), consent=ConsentSettings(default_mode=ConsentMode.consent_first, distinguish_room=False)
    )
    p.provision_user(ALICE)
    p.grant_consent(ALICE, BOB, ROOM1)
    assert decide(p, room=ROOM2) == V.noConsent


# -- cancel ------------------------------------------------------------------------------------


def test_ext_consent_cancel_removes_only_the_identical_pending_scope():
    p = provider(ConsentMode.consent_first)
    for room in (ROOM1, None):
        p.receive_request_consent("request", BOB, ALICE, room, peer_domain="b.example")
    p.receive_request_consent("request", CATHY, ALICE, ROOM1, peer_domain="c.example")
    # Different room, different requester: no match; answered 201 and ignored (-06 §5.7).
    assert p.receive_request_consent("cancel", BOB, ALICE, ROOM2, peer_domain="b.example").status == 201
    assert len(p.list_events(ALICE).pending_requests) == 3
    receipt = p.receive_request_consent("cancel", BOB, ALICE, ROOM1, peer_domain="b.example")
    assert (receipt.status, receipt.recorded) == (201, True)
    remaining = [(r.requester, r.room) for r in p.list_events(ALICE).pending_requests]
    assert remaining == [(BOB, None), (CATHY, ROOM1)]


def test_cancel_does_not_touch_a_grant():
    p = provider(ConsentMode.consent_first)
    p.grant_consent(ALICE, BOB, ROOM1)
    p.receive_request_consent("cancel", BOB, ALICE, ROOM1, peer_domain="b.example")
    assert decide(p) == V.allowed


# -- precedence --------------------------------------------------------------------------------


def test_any_room_revoke_overrides_every_grant_of_that_requester():
    p = provider(ConsentMode.consent_first)
    p.grant_consent(ALICE, BOB, ROOM1)
    p.revoke_consent(ALICE, BOB)
    assert decide(p, room=ROOM1) == V.noConsent
    p.grant_consent(ALICE, BOB, ROOM2)  # a room grant is a different scope: the revoke still wins
    assert decide(p, room=ROOM2) == V.noConsent


def test_any_room_revoke_wins_in_immediate_mode_too():
    p = provider(ConsentMode.immediate)
    p.revoke_consent(ALICE, BOB)
    p.grant_consent(ALICE, BOB, ROOM1)
    assert decide(p, room=ROOM1) == V.noConsent


def test_room_revoke_overrides_grants_only_for_that_room():
    p = provider(ConsentMode.consent_first)
    p.grant_consent(ALICE, BOB)
    p.revoke_consent(ALICE, BOB, ROOM1)
    assert decide(p, room=ROOM1) == V.noConsent  # no grant for another room remains to hint at
    assert decide(p, room=ROOM2) == V.allowed


def test_grant_after_revoke_for_the_same_scope_replaces_it():
    for room in (None, ROOM1):
        p = provider(ConsentMode.consent_first)
        p.revoke_consent(ALICE, BOB, room)
        p.grant_consent(ALICE, BOB, room)
        assert decide(p, room=ROOM1) == V.allowed
        assert p.consent.decision(ConsentScope(BOB, ALICE, room)).value == "grant"


def test_latest_decision_on_identical_scope_wins():
    p = provider(ConsentMode.consent_first)
    p.grant_consent(ALICE, BOB, ROOM1)
    p.revoke_consent(ALICE, BOB, ROOM1)
    assert decide(p) == V.noConsent


def test_a_new_request_never_erases_the_targets_revoke():
    p = provider(ConsentMode.immediate)
    p.revoke_consent(ALICE, BOB)
    p.receive_request_consent("request", BOB, ALICE, None, peer_domain="b.example")
    assert decide(p) == V.noConsent


def test_remote_grant_for_local_requester_is_a_notice_not_a_decision():
    p = provider(ConsentMode.consent_first)
    receipt = p.receive_update_consent("grant", ALICE, BOB, ROOM1, peer_domain="b.example", key_packages=2)
    assert receipt.status == 201
    (notice,) = p.list_events(ALICE).consent_notices
    assert (notice.target, notice.room, notice.operation, notice.key_packages) == (BOB, ROOM1, "grant", 2)
    assert p.consent.decision(ConsentScope(BOB, ALICE, ROOM1)) is None


# -- unknown targets and domains ---------------------------------------------------------------


def test_ext_consent_unknown_target_201_unless_revealed():
    p = provider(ConsentMode.consent_first)
    receipt = p.receive_request_consent("request", BOB, "mimi://a.example/u/nobody", None, peer_domain="b.example")
    assert (receipt.status, receipt.recorded) == (201, False)
    revealing = provider(ConsentMode.consent_first, reveal_unknown_consent_targets=True)
    assert (
        revealing.receive_request_consent(
            "request", BOB, "mimi://a.example/u/nobody", None, peer_domain="b.example"
        ).status
        == 404
    )


@pytest.mark.parametrize(
    ("operation", "requester", "target", "peer"),
    [
        ("request", BOB, ALICE, "b.example"),
        ("cancel", BOB, ALICE, "B.EXAMPLE"),
        ("grant", ALICE, BOB, "b.example"),
        ("revoke", ALICE, BOB, "b.example"),
    ],
)
def test_consent_domains_accepted(operation, requester, target, peer):
    check_consent_domains(operation, requester, target, peer_domain=peer, local_domains=["a.example"])


@pytest.mark.parametrize(
    ("operation", "requester", "target", "peer"),
    [
        ("request", BOB, ALICE, "c.example"),  # requester not in the sending provider's domain
        ("request", BOB, CATHY, "b.example"),  # target not ours
        ("request", ALICE, BOB, "b.example"),  # updateConsent's direction used for a request
        ("grant", BOB, ALICE, "b.example"),  # requestConsent's direction used for a grant
        ("grant", ALICE, BOB, "c.example"),  # target not in the sending provider's domain
        ("revoke", "not a uri", BOB, "b.example"),
        ("frobnicate", BOB, ALICE, "b.example"),
    ],
)
def test_consent_domains_rejected(operation, requester, target, peer):
    with pytest.raises(ConsentDomainError):
        check_consent_domains(operation, requester, target, peer_domain=peer, local_domains=["a.example"])


def test_consent_domains_with_a_peer_serving_several_domains():
    check_consent_domains("request", BOB, ALICE, peer_domain=["x.example", "b.example"], local_domains=["a.example"])
    with pytest.raises(ConsentDomainError):
        check_consent_domains("request", BOB, ALICE, peer_domain=["x.example"], local_domains=["a.example"])


def test_receive_consent_entry_checks_domains_before_recording():
    p = provider(ConsentMode.consent_first)
    with pytest.raises(ConsentDomainError):
        p.receive_request_consent("request", BOB, ALICE, None, peer_domain="c.example")
    assert p.list_events(ALICE).pending_requests == ()


# -- property: precedence invariants over random decision sequences ----------------------------

ROOMS = (None, ROOM1, ROOM2)


@settings(max_examples=60, deadline=None)
@given(
    mode=st.sampled_from([ConsentMode.immediate, ConsentMode.consent_first]),
    ops=st.lists(st.tuples(st.sampled_from(["grant", "revoke", "request"]), st.sampled_from(ROOMS)), max_size=8),
)
def test_decisions_follow_the_precedence_rules(mode, ops):
    p = provider(mode)
    latest: dict[str | None, str] = {}  # the latest decision per scope, as the doc defines it
    for op, room in ops:
        if op == "grant":
            p.grant_consent(ALICE, BOB, room)
            latest[room] = "grant"
        elif op == "revoke":
            p.revoke_consent(ALICE, BOB, room)
            latest[room] = "revoke"
        else:
            p.receive_request_consent("request", BOB, ALICE, room, peer_domain="b.example")
    for room in (ROOM1, ROOM2, None):
        verdict = decide(p, room=room)
        revoked = latest.get(None) == "revoke" or (room is not None and latest.get(room) == "revoke")
        granted = latest.get(None) == "grant" or (room is not None and latest.get(room) == "grant")
        if revoked:
            assert verdict != V.allowed
        elif granted or mode == ConsentMode.immediate:
            assert verdict == V.allowed
        else:
            assert verdict != V.allowed
        if verdict == V.noConsentForThisRoom:  # only ever a hint that another room is open
            assert any(d == "grant" for r, d in latest.items() if r not in (None, room))
