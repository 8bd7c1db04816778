"""Consent: protocol-06 §5.2 / §5.7 consent and the consent-modes extension (docs/extensions/consent-modes.md).

The SUT is mostly the *target* provider: the requester is a user of the suite's reference peer in the
other role (with the SUT as follower, a user of the reference hub whose room lives there; with the
SUT as hub, a user of the reference follower who is a participant of a room the SUT hosts). What is
judged is what the SUT answered over MIMI (keyMaterial, requestConsent, updateConsent, /notify,
recorded byte for byte) and what its users can read through the control API (events, received
messages). Users are created in the consent mode a check needs (``createUser`` ``consentMode``,
``getInfo().consent.perUserOverride``); a SUT without the consent-modes extension, or with another
default mode and no per-user override, makes the mode checks NOT_APPLICABLE.

The checks here judge the extension's requirements (EXT-CONSENT-*) and the core §5.7 behaviour of the
SUT as the *requester's* provider (what it sends, how it answers updateConsent). The core rules of the
SUT as *target* provider (keyMaterial refused / opened by the target's decisions, room scope, the
answers to requestConsent and to a cancel matching nothing, the domain rule of updateConsent) are
judged without the extension in test_consent_core.py; no check names both families.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from conformance.harness.actors import Party, User
from conformance.harness.polling import PollTimeout
from conformance.scenarios.roles import as_follower, both_roles
from conformance.verdicts import HarnessError, blocked, fail, judging, not_applicable, observed
from reference_peer.mls import basic_credential, cipher_suite
from reference_peer.mls.leaf import make_key_package
from reference_peer.wire.identity import IdentifierUri
from reference_peer.wire.mimi import (
    ConsentEntry,
    ConsentOperation,
    KeyMaterialRequest,
    KeyMaterialResponse,
    Protocol,
)
from reference_peer.wire.mls import AppDataDictionary, ExtensionType, ProposalType, RequiredCapabilities

IMMEDIATE_KEYMAT = "EXT-CONSENT-IMMEDIATE-KEYMATERIAL"
IMMEDIATE_DELIVERY = "EXT-CONSENT-IMMEDIATE-DELIVERY"
Q_ADD = "EXT-CONSENT-QUARANTINE-ADD-SUCCEEDS"
Q_HOLD = "EXT-CONSENT-QUARANTINE-HOLD"
Q_NOTIFY = "EXT-CONSENT-QUARANTINE-NOTIFY-201"
Q_RELEASE = "EXT-CONSENT-QUARANTINE-RELEASE"
Q_REJECT = "EXT-CONSENT-QUARANTINE-REJECT-DROPS"
Q_GRANTED = "EXT-CONSENT-QUARANTINE-GRANTED-NOT-HELD"
Q_REJECTED_STAYS = "EXT-CONSENT-QUARANTINE-REJECTED-STAYS"
FIRST_NO_KP = "EXT-CONSENT-FIRST-NO-KEYPACKAGES"
FIRST_REQUEST_201 = "EXT-CONSENT-FIRST-REQUEST-201"
FIRST_GRANT_OPENS = "EXT-CONSENT-FIRST-GRANT-OPENS"
FIRST_GRANT_SENT = "EXT-CONSENT-FIRST-GRANT-SENT"
FIRST_REVOKE_CLOSES = "EXT-CONSENT-FIRST-REVOKE-CLOSES"
ROOM_SCOPE = "EXT-CONSENT-ROOM-SCOPE"
EXT_CANCEL = "EXT-CONSENT-CANCEL-SAME-SCOPE"
DIRECT = "PROTO-CONSENT-DIRECT"
ROOM_SCOPED_REQUEST = "PROTO-CONSENT-ROOM-SCOPED-REQUEST"
CANCEL_SAME_SCOPE = "PROTO-CONSENT-CANCEL-SAME-SCOPE"
UPDATE_RESPONSE = "PROTO-CONSENT-UPDATE-RESPONSE"
GRANT_KEYPACKAGES = "PROTO-CONSENT-GRANT-KEYPACKAGES"

REFUSALS = ("noConsent", "noConsentForThisRoom")
SUCCESSES = ("success", "partialSuccess")
ROLE_ADMIN = 3  # room-policy-04 default roles: the admin may add participants


# --------------------------------------------------------------------------------------------
# Traffic marks

class _Traffic:
    """A reference peer's traffic from the start of a check on."""

    def __init__(self, party: Party) -> None:
        self.party = party
        self.floor = party.traffic_mark()

    def read(self, *, endpoint: str, direction: str, peer: str | None = None) -> list:
        return self.party.traffic(self.floor, endpoint=endpoint, direction=direction, peer=peer)


# --------------------------------------------------------------------------------------------
# Users in a consent mode


def _user_in_mode(sut, party: Party, mode: str, name: str = "target", **extra: Any) -> User:
    """A SUT user in consent ``mode``: always with an explicit ``consentMode`` when the SUT allows
    per-user modes, else a plain user when ``mode`` is the SUT's default; NOT_APPLICABLE otherwise."""
    consent = (sut.info or {}).get("consent")
    if not consent:
        not_applicable("getInfo has no 'consent' member: the SUT does not implement the consent-modes extension")
    if consent.get("perUserOverride"):
        return party.create_user(name, consentMode=mode, **extra)
    if consent.get("defaultMode") == mode:
        return party.create_user(name, **extra)
    not_applicable(f"the SUT's consent mode is {consent.get('defaultMode')!r} and it allows no per-user mode; "
                   f"this check needs a user in {mode!r} mode")
    raise AssertionError("unreachable")


def _plain_immediate_user(sut, party: Party, name: str) -> User:
    """A SUT user who receives everything at once: a plain user when immediate is the default mode."""
    consent = (sut.info or {}).get("consent") or {}
    if consent.get("defaultMode", "immediate") == "immediate":
        return party.create_user(name)
    if consent.get("perUserOverride"):
        return party.create_user(name, consentMode="immediate")
    not_applicable("the check needs a SUT user in immediate mode next to the target, and the SUT's default "
                   f"mode is {consent.get('defaultMode')!r} with no per-user override")
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------
# The requester: a user of the reference peer in the other role, with a room it may add from


class _Requester:
    """The requester's side. SUT as follower: a user of the reference hub in a room hosted there.
    SUT as hub: a user of the reference follower who is an admin of a room the SUT hosts."""

    def __init__(self, cast, sut) -> None:
        self.cast = cast
        self.sut = sut
        self.party: Party = cast.reference
        self.user = self.party.create_user("requester")
        self._sentinel: User | None = None

    @property
    def domain(self) -> str:
        return self.party.domain

    def room(self, *, sentinel: bool = False) -> str:
        """A room the requester may add to. With ``sentinel``, it also has a member at the SUT who is
        not the target (see :meth:`send_processed`)."""
        sut = self.cast.sut
        if self.cast.sut_role == "follower":
            room = self.cast.hub.create_room(self.user)
            if sentinel:
                self._sentinel = _plain_immediate_user(self.sut, sut, "sentinel")
                self.cast.hub.add_ok(room, self.user, self._sentinel)
            return room
        if self._sentinel is None:
            self._sentinel = sut.create_user("creator")
        room = sut.create_room(self._sentinel)
        sut.add_ok(room, self._sentinel, self.user, role=ROLE_ADMIN)
        self.party.wait_member(room, self.user, what=f"the requester's provider to have joined {room}")
        return room

    def send_processed(self, room: str, data: bytes) -> None:
        """The requester sends ``data``; returns once the SUT has processed the fan-out carrying it,
        that is once the SUT's other member of the room (the sentinel) received it."""
        self.party.send_ok(room, self.user.client, data)
        try:
            self.cast.sut.wait_received(self._sentinel.client, data, room=room,
                                        what="the SUT's other member of the room to receive the message")
        except PollTimeout as exc:
            # A precondition, judged by the fan-out checks: without it nothing here can be concluded.
            raise HarnessError(f"the SUT did not deliver a message to its other member of {room}, so the "
                               f"consent check cannot tell when the SUT processed it: {exc}") from None


def _add_target(requester: _Requester, room: str, target: User, requirement: str) -> dict[str, Any]:
    """The requester adds the SUT's target user; refused key material fails ``requirement``."""
    result = requester.party.add(room, requester.user, target)
    if result.get("outcome") == "accepted":
        observed(requirement, f"adding {target.uri} to {room}: the SUT served KeyPackages, the add was accepted")
        return result
    if result.get("outcome") == "noKeyMaterial":
        fail(f"adding {target.uri} to {room} got no KeyPackages from the SUT: {result.get('keyMaterial')}",
             requirement=requirement)
    raise HarnessError(f"{requester.party.name} could not add {target.uri} to {room}: {result}")


# --------------------------------------------------------------------------------------------
# Raw MIMI: keyMaterial and consent entries, sent to the SUT as the requester's provider


class _Mimi:
    def __init__(self, sut, mimi_as, domain: str) -> None:
        self.sut = sut
        self.session = mimi_as(domain)

    def call(self, endpoint: str, value: str, body: bytes):
        authority = urlsplit(self.sut.base_urls[self.sut.primary_domain]).netloc
        return self.session.run(self.session.client.call(authority, endpoint, value, body))

    def key_material(self, requester: str, target: str, room: str) -> tuple[Any, KeyMaterialResponse | None]:
        """A signed §5.2 KeyMaterialRequest; the reply and its decoded body (None when not a 200 response)."""
        suite = cipher_suite(1)
        private, public = suite.generate_signature_key_pair()
        request = KeyMaterialRequest(
            protocol=Protocol.mls10,
            requestingUser=IdentifierUri(uri=requester.encode()),
            targetUser=IdentifierUri(uri=target.encode()),
            roomId=IdentifierUri(uri=room.encode()),
            acceptableCiphersuites=[1],
            requiredCapabilities=RequiredCapabilities(
                extension_types=[int(ExtensionType.app_data_dictionary)],
                proposal_types=[int(ProposalType.app_data_update), int(ProposalType.self_remove)],
                credential_types=[],
            ),
            requesterSignatureKey=public,
            requesterCredential=basic_credential(requester.encode()),
            key_material_request_signature=b"",
        )
        signature = suite.sign_with_label(private, "KeyMaterialRequestTBS", request.tbs().encode())
        reply = self.call("keyMaterial", target, request.replace(key_material_request_signature=signature).encode())
        if reply.status != 200:
            return reply, None
        try:
            return reply, KeyMaterialResponse.decode(reply.body)
        except Exception as exc:  # noqa: BLE001 - an undecodable answer is the SUT's fault, scored by the check
            raise AssertionError(f"keyMaterial for {target} answered an undecodable KeyMaterialResponse: {exc}") from None

    def consent(self, operation: str, requester: str, target: str, room: str | None = None,
                key_packages: list | None = None):
        entry = ConsentEntry(
            consentOperation=ConsentOperation[operation],
            requesterUri=IdentifierUri(uri=requester.encode()),
            targetUri=IdentifierUri(uri=target.encode()),
            roomId=IdentifierUri(uri=room.encode()) if room else None,
            clientKeyPackages=(key_packages or []) if operation == "grant" else None,
            consent_extensions=AppDataDictionary(component_data=[]),
        )
        endpoint = "requestConsent" if operation in ("request", "cancel") else "updateConsent"
        return self.call(endpoint, self.sut.primary_domain, entry.encode())


def _describe(reply, response: KeyMaterialResponse | None) -> str:
    if response is None:
        return f"HTTP {reply.status} {reply.body[:120]!r}"
    clients = [(bytes(c.clientUri.uri).decode(errors="replace"), c.clientStatus.name) for c in response.clients]
    return f"userStatus {response.userStatus.name}, clients {clients}"


def _expect_key_packages(reply, response, what: str, requirement: str) -> None:
    if response is None or response.userStatus.name not in SUCCESSES:
        fail(f"{what}: expected success or partialSuccess with KeyPackages, got {_describe(reply, response)}",
             requirement=requirement)
    if not any(c.keyPackage is not None for c in response.clients):
        fail(f"{what}: {response.userStatus.name} but no client carries a KeyPackage", requirement=requirement)
    count = sum(1 for c in response.clients if c.keyPackage is not None)
    observed(requirement, f"{what}: {response.userStatus.name}, {count} KeyPackage(s)")


def _expect_refused(reply, response, target: str, what: str, requirement: str,
                    codes: tuple[str, ...] = REFUSALS) -> None:
    if response is None:
        fail(f"{what}: expected a 200 KeyMaterialResponse with {' or '.join(codes)}, got {_describe(reply, None)}",
             requirement=requirement)
    if response.userStatus.name not in codes:
        fail(f"{what}: expected {' or '.join(codes)} with no clients, got {_describe(reply, response)}",
             requirement=requirement)
    if response.clients:
        fail(f"{what}: {response.userStatus.name} but the answer lists {len(response.clients)} client(s)",
             requirement=requirement)
    if bytes(response.userUri.uri).decode(errors="replace") != target:
        fail(f"{what}: the refusal names userUri {bytes(response.userUri.uri)!r}, not {target}", requirement=requirement)
    observed(requirement, f"{what}: {response.userStatus.name} for {target}, no clients")


# --------------------------------------------------------------------------------------------
# Quarantine helpers


def _payload(names, label: str) -> bytes:
    return f"{names('msg')}:{label}".encode()


def _readable(sut: Party, user: User, payloads: list[bytes]) -> dict[str, list[bytes]]:
    """Per client of ``user``: the ``payloads`` its received-messages read shows (any room)."""
    out = {}
    for client in user.clients:
        seen = [m for m in sut.received(client) if m in payloads]
        if seen:
            out[client] = seen
    return out


def _quarantined_room(cast, sut, names) -> tuple[_Requester, User, str]:
    target = _user_in_mode(sut, cast.sut, "quarantine")
    requester = _Requester(cast, sut)
    room = requester.room(sentinel=True)
    _add_target(requester, room, target, Q_ADD)
    return requester, target, room


# ============================================================================================
# immediate


@both_roles
@pytest.mark.requirements(IMMEDIATE_KEYMAT)
@pytest.mark.operations("createUser", hub=("createRoom", "addParticipant"))
def test_immediate_keymaterial_returns_key_packages(cast, sut, mimi_as):
    """In immediate mode the SUT answers keyMaterial from a requester without any consent exchange with KeyPackages."""
    target = _user_in_mode(sut, cast.sut, "immediate")
    requester = _Requester(cast, sut)
    room = requester.room()
    reply, response = _Mimi(sut, mimi_as, requester.domain).key_material(requester.user.uri, target.uri, room)
    _expect_key_packages(reply, response, f"keyMaterial for immediate-mode {target.uri}", IMMEDIATE_KEYMAT)


@both_roles
@pytest.mark.requirements(IMMEDIATE_KEYMAT)
@pytest.mark.operations("createUser", hub=("createRoom", "addParticipant"))
def test_user_in_the_default_immediate_mode_gets_key_material(cast, sut, mimi_as):
    """A user created without a consent mode of its own, at a SUT whose declared default mode is immediate, is
    in immediate mode: keyMaterial from a requester without any consent exchange returns KeyPackages.

    consent-modes: the mode is "configured per provider (the default for its users) and overridable per user",
    and "In immediate mode, keyMaterial for a target with no revoke covering the request returns KeyPackages".
    A SUT whose declared default mode is not immediate makes the check NOT_APPLICABLE."""
    consent = (sut.info or {}).get("consent")
    if not consent:
        not_applicable("getInfo has no 'consent' member: the SUT does not implement the consent-modes extension")
    if consent.get("defaultMode") != "immediate":
        not_applicable(f"the SUT's declared default consent mode is {consent.get('defaultMode')!r}, not immediate")
    target = cast.sut.create_user("default-mode")
    requester = _Requester(cast, sut)
    room = requester.room()
    reply, response = _Mimi(sut, mimi_as, requester.domain).key_material(requester.user.uri, target.uri, room)
    _expect_key_packages(reply, response, f"keyMaterial for {target.uri}, a user in the default (immediate) mode",
                         IMMEDIATE_KEYMAT)


@both_roles
@pytest.mark.requirements(IMMEDIATE_DELIVERY, IMMEDIATE_KEYMAT)
@pytest.mark.operations("createUser", "listReceivedMessages", hub=("createRoom", "addParticipant"))
def test_immediate_room_is_delivered_without_user_action(cast, sut, names):
    """In immediate mode the SUT delivers the Welcome and later messages of a room to the target's clients at once."""
    target = _user_in_mode(sut, cast.sut, "immediate")
    requester = _Requester(cast, sut)
    room = requester.room()
    _add_target(requester, room, target, IMMEDIATE_KEYMAT)
    data = _payload(names, "immediate")
    requester.party.send_ok(room, requester.user.client, data)
    with judging(IMMEDIATE_DELIVERY):
        for client in target.clients:
            cast.sut.wait_received(client, data, room=room,
                                   what=f"immediate-mode {client} to receive the message without a user action")
    observed(IMMEDIATE_DELIVERY, f"{len(target.clients)} client(s) of {target.uri} received the message of {room} "
                                 "without a user action")


# ============================================================================================
# quarantine


@both_roles
@pytest.mark.requirements(Q_ADD)
@pytest.mark.operations("createUser", hub=("createRoom", "addParticipant"))
def test_quarantine_keymaterial_returns_key_packages(cast, sut, mimi_as):
    """In quarantine mode the SUT answers keyMaterial from a requester without a grant with KeyPackages."""
    target = _user_in_mode(sut, cast.sut, "quarantine")
    requester = _Requester(cast, sut)
    room = requester.room()
    reply, response = _Mimi(sut, mimi_as, requester.domain).key_material(requester.user.uri, target.uri, room)
    _expect_key_packages(reply, response, f"keyMaterial for quarantine-mode {target.uri}", Q_ADD)


@both_roles
@pytest.mark.requirements(Q_HOLD, Q_ADD)
@pytest.mark.operations("createUser", "listReceivedMessages", hub=("createRoom", "addParticipant"),
                        optional=("listUserEvents",))
def test_quarantine_holds_room_content_before_accept(cast, sut, names, poll_until):
    """In quarantine mode nothing of a room from an ungranted requester is readable by any client of the target before the user accepts."""
    requester, target, room = _quarantined_room(cast, sut, names)
    payloads = [_payload(names, "held-1"), _payload(names, "held-2")]
    for data in payloads:
        requester.send_processed(room, data)
    leaked = _readable(cast.sut, target, payloads)
    if leaked:
        fail(f"before any accept, the target's clients can read messages of the held room {room}: {leaked}",
             requirement=Q_HOLD)
    observed(Q_HOLD, f"{len(payloads)} items the SUT processed for {room}: none readable by the target's "
                     f"{len(target.clients)} client(s)")
    if cast.sut.supports("listUserEvents"):
        with judging(Q_HOLD):
            cast.sut.wait_event(target, "roomHeld", room=room, what=f"a roomHeld event for {room}")
        observed(Q_HOLD, f"the target was shown a roomHeld event for {room}")


@as_follower
@pytest.mark.requirements(Q_NOTIFY, Q_ADD)
@pytest.mark.operations("createUser", "listReceivedMessages")
def test_quarantine_notify_for_held_room_is_201(cast, sut, names, poll_until):
    """In quarantine mode the SUT answers every /notify for a held room with 201 and no body, like any room."""
    target = _user_in_mode(sut, cast.sut, "quarantine")
    requester = _Requester(cast, sut)
    traffic = _Traffic(cast.hub)
    room = requester.room(sentinel=True)
    _add_target(requester, room, target, Q_ADD)
    # Once the SUT's other member has the message, every earlier /notify of the room (the one carrying
    # the target's Welcome included) has been answered: the hub sends one at a time per provider.
    requester.send_processed(room, _payload(names, "held"))
    notifies = [t for t in traffic.read(endpoint="notify", direction="out", peer=cast.sut.domain) if t.value == room]
    if len(notifies) < 2:
        raise HarnessError(f"the reference hub recorded {len(notifies)} /notify to the SUT for {room}, expected the "
                           "Welcome's and the message's")
    for t in notifies:
        if t.status != 201 or t.response:
            fail(f"/notify #{t.seq} for held room {room} was answered HTTP {t.status} with body {t.response[:80]!r}; "
                 "expected 201 with no body", requirement=Q_NOTIFY)
    observed(Q_NOTIFY, f"{len(notifies)} /notify for the held room {room}: each answered 201 with no body")


@both_roles
@pytest.mark.requirements(Q_RELEASE, Q_ADD)
@pytest.mark.operations("createUser", "listReceivedMessages", "grantConsent", hub=("createRoom", "addParticipant"))
def test_quarantine_accept_releases_held_items_once_in_order(cast, sut, names, poll_until):
    """On accept the SUT delivers every held item of the room to the target's clients exactly once, in fan-out order."""
    requester, target, room = _quarantined_room(cast, sut, names)
    held = [_payload(names, f"held-{i}") for i in (1, 2, 3)]
    for data in held:
        requester.send_processed(room, data)
    cast.sut.grant_consent(target, requester.user, room=room)
    after = _payload(names, "after-accept")
    requester.party.send_ok(room, requester.user.client, after)
    expected = [*held, after]
    for client in target.clients:
        with judging(Q_RELEASE):
            cast.sut.wait_received(client, after, room=room,
                                   what=f"{client} to receive a message sent after the accept")
        seen = [m for m in cast.sut.received(client, room) if m in expected]
        if seen != expected:
            fail(f"after the accept {client} shows {seen}; expected each held item once in fan-out order, "
                 f"then the later message: {expected}", requirement=Q_RELEASE)
    observed(Q_RELEASE, f"after the accept, {len(target.clients)} client(s) show the {len(held)} held items once "
                        "each in fan-out order, then the later message")


@both_roles
@pytest.mark.requirements(Q_REJECT, Q_ADD)
@pytest.mark.operations("createUser", "listReceivedMessages", "revokeConsent", hub=("createRoom", "addParticipant"))
def test_quarantine_reject_drops_held_items(cast, sut, names, poll_until):
    """On reject the SUT never delivers the held items (nor later items of the rejected room) to the target's clients."""
    requester, target, room = _quarantined_room(cast, sut, names)
    held = _payload(names, "held")
    requester.send_processed(room, held)
    cast.sut.revoke_consent(target, requester.user, room=room)
    later = _payload(names, "after-reject")
    requester.send_processed(room, later)  # sentinel: the SUT processed a later item
    leaked = _readable(cast.sut, target, [held, later])
    if leaked:
        fail(f"after the reject, the target's clients read items of the rejected room {room}: {leaked}",
             requirement=Q_REJECT)
    observed(Q_REJECT, f"after the reject, neither the held item nor a later one of {room} (processed by the SUT) "
                       "is readable by the target's clients")


@as_follower
@pytest.mark.requirements(Q_REJECTED_STAYS, Q_ADD)
@pytest.mark.operations("createUser", "listReceivedMessages", "revokeConsent")
def test_quarantine_rejected_room_stays_rejected_for_later_items_and_readds(cast, sut, names):
    """A rejected room stays rejected: neither a later message of the room nor, after another admin removed
    and re-added the target, the re-add's Welcome and a message after it reach the target's clients.

    consent-modes: "A rejected room **stays rejected**: nothing of it reaches any client of the target
    afterwards without a further user action, neither the room's later items nor the Welcome (and what
    follows) of a later re-add of the target to that room, by the same or another requester. Whether such
    a re-add is dropped or held anew for a fresh accept is the provider's choice". The re-add comes from a
    second admin (the rejecting user's revoke covers only the first requester), so the SUT may serve it
    KeyPackages; one that does not leaves only the later message to judge."""
    requester, target, room = _quarantined_room(cast, sut, names)
    hub = requester.party
    co_admin = hub.create_user("co-admin")
    hub.add_ok(room, requester.user, co_admin, role=ROLE_ADMIN)
    held = _payload(names, "held")
    requester.send_processed(room, held)
    cast.sut.revoke_consent(target, requester.user, room=room)
    later = _payload(names, "after-reject")
    requester.send_processed(room, later)
    sent = [held, later]
    removed = hub.remove(room, requester.user, target)
    if removed.get("outcome") != "accepted":
        raise HarnessError(f"the reference hub could not remove {target.uri} from {room} before the re-add: {removed}")
    readd = hub.add(room, co_admin, target)
    readded = readd.get("outcome") == "accepted"
    if readded:
        after = _payload(names, "after-readd")
        # The sentinel's copy of a message after the re-add: the SUT processed the re-add's Welcome before it.
        requester.send_processed(room, after)
        sent.append(after)
    elif readd.get("outcome") != "noKeyMaterial":
        raise HarnessError(f"{co_admin.uri} could not re-add {target.uri} to {room}: {readd}")
    leaked = _readable(cast.sut, target, sent)
    if leaked:
        fail(f"after the reject of {room}, the target's clients read items of it without an accept"
             f"{' (re-added by ' + co_admin.uri + ')' if readded else ''}: {leaked}", requirement=Q_REJECTED_STAYS)
    what = (f"re-added by {co_admin.uri}, and a message after the re-add" if readded else
            f"the re-add by {co_admin.uri} got no KeyPackages ({readd.get('keyMaterial')}), so only the later message")
    observed(Q_REJECTED_STAYS, f"after the reject, a later message of {room} (processed by the SUT) and {what}: none "
                               "readable by the target's clients")


@both_roles
@pytest.mark.requirements(Q_GRANTED, Q_ADD)
@pytest.mark.operations("createUser", "grantConsent", "listReceivedMessages", hub=("createRoom", "addParticipant"))
def test_quarantine_room_from_granted_requester_is_not_held(cast, sut, names):
    """In quarantine mode the SUT delivers a room from a requester the user granted without a further user action."""
    target = _user_in_mode(sut, cast.sut, "quarantine")
    requester = _Requester(cast, sut)
    cast.sut.grant_consent(target, requester.user)
    room = requester.room()
    _add_target(requester, room, target, Q_ADD)
    data = _payload(names, "granted")
    requester.party.send_ok(room, requester.user.client, data)
    for client in target.clients:
        try:
            cast.sut.wait_received(client, data, room=room, what=f"{client} to receive a message of a granted room")
        except PollTimeout as exc:
            fail(f"a room from a granted requester was not delivered without a user action: {exc}",
                 requirement=Q_GRANTED)
    observed(Q_GRANTED, f"{len(target.clients)} client(s) received a message of {room} from a granted requester "
                        "without a user action")


@both_roles
@pytest.mark.requirements(Q_GRANTED, Q_ADD)
@pytest.mark.operations("createUser", "grantConsent", "listReceivedMessages", hub=("createRoom", "addParticipant"))
def test_quarantine_room_named_in_a_grant_is_not_held(cast, sut, names):
    """In quarantine mode the SUT delivers a room that the user's grant names (a grant for that room
    alone) without a further user action.

    consent-modes: "**Grant covers a request** when the requester and target match and the grant has no
    `roomId` or the same `roomId` as the request" and "Rooms from a requester whose grant covers them are
    not held" (a SHOULD: a room held anyway is a WARN). The grant for every room is judged by
    test_quarantine_room_from_granted_requester_is_not_held."""
    target = _user_in_mode(sut, cast.sut, "quarantine")
    requester = _Requester(cast, sut)
    room = requester.room()
    cast.sut.grant_consent(target, requester.user, room=room)
    _add_target(requester, room, target, Q_ADD)
    data = _payload(names, "room-granted")
    requester.party.send_ok(room, requester.user.client, data)
    for client in target.clients:
        try:
            cast.sut.wait_received(client, data, room=room, what=f"{client} to receive a message of a granted room")
        except PollTimeout as exc:
            fail(f"a room the user's grant names ({room}) was not delivered without a user action: {exc}",
                 requirement=Q_GRANTED)
    observed(Q_GRANTED, f"{len(target.clients)} client(s) received a message of {room}, which the user's grant "
                        "names, without a user action")


# ============================================================================================
# consent-first


@both_roles
@pytest.mark.requirements(FIRST_NO_KP, FIRST_GRANT_OPENS)
@pytest.mark.operations("createUser", "grantConsent", hub=("createRoom", "addParticipant"),
                        optional=("publishKeyPackages",))
def test_consent_first_keymaterial_refused_without_grant(cast, sut, mimi_as):
    """In consent-first mode the SUT answers keyMaterial without a grant with noConsent and no clients, consuming no KeyPackage."""
    target = _user_in_mode(sut, cast.sut, "consent-first")
    single = None
    if cast.sut.supports("publishKeyPackages"):
        published = cast.sut.publish_key_packages(target.client, 1, lastResort=False, replace=True)
        if published.get("available") == 1 and not published.get("lastResort"):
            single = target.client
    requester = _Requester(cast, sut)
    room = requester.room()
    raw = _Mimi(sut, mimi_as, requester.domain)
    for attempt in (1, 2):
        reply, response = raw.key_material(requester.user.uri, target.uri, room)
        _expect_refused(reply, response, target.uri, f"keyMaterial #{attempt} before any grant", FIRST_NO_KP)
    cast.sut.grant_consent(target, requester.user, room=room)
    reply, response = raw.key_material(requester.user.uri, target.uri, room)
    if response is None or response.userStatus.name not in SUCCESSES + ("noCompatibleMaterial",):
        fail(f"after a grant for {room}, keyMaterial answered {_describe(reply, response)}", requirement=FIRST_GRANT_OPENS)
    observed(FIRST_GRANT_OPENS, f"keyMaterial after a grant for {room}: {response.userStatus.name}")
    if single is not None:
        statuses = {bytes(c.clientUri.uri).decode(errors="replace"): c.clientStatus.name for c in response.clients}
        if statuses.get(single) != "success" or response.userStatus.name not in SUCCESSES:
            fail(f"{single} had exactly one KeyPackage before the refusals, yet after the grant keyMaterial "
                 f"answered {_describe(reply, response)}: a refused keyMaterial consumed it", requirement=FIRST_NO_KP)
        observed(FIRST_NO_KP, f"{single}'s only KeyPackage was still served after the two refusals")


@both_roles
@pytest.mark.requirements(FIRST_REQUEST_201)
@pytest.mark.operations("createUser", "listUserEvents")
def test_consent_request_answered_201_and_pending(cast, sut, mimi_as, poll_until):
    """The SUT answers a requestConsent request with 201 and shows it to the target as a pending request."""
    target = _user_in_mode(sut, cast.sut, "consent-first")
    if not cast.sut.supports("listUserEvents"):
        not_applicable("the SUT's control API has no listUserEvents: a pending request cannot be seen",
                       operation="listUserEvents")
    requester = _Requester(cast, sut)
    reply = _Mimi(sut, mimi_as, requester.domain).consent("request", requester.user.uri, target.uri)
    if reply.status != 201:
        fail(f"requestConsent answered HTTP {reply.status}, not 201", requirement=FIRST_REQUEST_201)
    poll_until(lambda: any(e["type"] == "consentRequested" and e.get("requester") == requester.user.uri
                               and not e.get("room") for e in cast.sut.events(target)),
               what=f"a pending consentRequested event from {requester.user.uri} for {target.uri}",
               requirement=FIRST_REQUEST_201)
    observed(FIRST_REQUEST_201, f"requestConsent answered 201; {target.uri} shows it pending (any room)")


@both_roles
@pytest.mark.requirements(FIRST_GRANT_OPENS, FIRST_GRANT_SENT)
@pytest.mark.operations("createUser", "grantConsent", hub=("createRoom", "addParticipant"))
def test_consent_first_grant_opens_keymaterial_and_is_sent(cast, sut, mimi_as, poll_until):
    """After the user grants, the SUT answers the requester's keyMaterial with KeyPackages and sends updateConsent grant to the requester's provider."""
    target = _user_in_mode(sut, cast.sut, "consent-first")
    requester = _Requester(cast, sut)
    room = requester.room()
    traffic = _Traffic(requester.party)
    cast.sut.grant_consent(target, requester.user)
    reply, response = _Mimi(sut, mimi_as, requester.domain).key_material(requester.user.uri, target.uri, room)
    _expect_key_packages(reply, response, "keyMaterial after a grant for every room", FIRST_GRANT_OPENS)

    def grants():
        found = []
        for t in traffic.read(endpoint="updateConsent", direction="in"):
            try:
                entry = ConsentEntry.decode(t.request)
            except Exception:  # noqa: BLE001 - judged below as "no well-formed grant"
                continue
            if (entry.consentOperation == ConsentOperation.grant
                    and bytes(entry.targetUri.uri).decode(errors="replace") == target.uri
                    and bytes(entry.requesterUri.uri).decode(errors="replace") == requester.user.uri):
                found.append((t, entry))
        return found

    found = poll_until(grants, what=f"an updateConsent grant from the SUT at {requester.party.name}",
                       requirement=FIRST_GRANT_SENT)
    t, entry = found[0]
    if entry.roomId is not None:
        fail(f"the grant was for every room, but the updateConsent carries roomId {bytes(entry.roomId.uri)!r}",
             requirement=FIRST_GRANT_SENT)
    observed(FIRST_GRANT_SENT, f"updateConsent grant for {target.uri} (no roomId) reached {requester.party.name} "
                               f"from {t.peer}")


@both_roles
@pytest.mark.requirements(FIRST_REVOKE_CLOSES, FIRST_GRANT_OPENS)
@pytest.mark.operations("createUser", "grantConsent", "revokeConsent", hub=("createRoom", "addParticipant"))
def test_consent_first_revoke_closes_keymaterial(cast, sut, mimi_as):
    """After the user revokes an earlier grant, the SUT answers the requester's keyMaterial with noConsent and no clients again."""
    target = _user_in_mode(sut, cast.sut, "consent-first")
    requester = _Requester(cast, sut)
    room = requester.room()
    raw = _Mimi(sut, mimi_as, requester.domain)
    cast.sut.grant_consent(target, requester.user)
    reply, response = raw.key_material(requester.user.uri, target.uri, room)
    _expect_key_packages(reply, response, "keyMaterial after a grant (before the revoke)", FIRST_GRANT_OPENS)
    cast.sut.revoke_consent(target, requester.user)
    reply, response = raw.key_material(requester.user.uri, target.uri, room)
    _expect_refused(reply, response, target.uri, "keyMaterial after the revoke", FIRST_REVOKE_CLOSES)


@both_roles
@pytest.mark.requirements(FIRST_GRANT_OPENS, FIRST_REVOKE_CLOSES)
@pytest.mark.operations("createUser", "grantConsent", "revokeConsent", hub=("createRoom", "addParticipant"))
def test_consent_first_room_revoke_leaves_other_rooms_granted(cast, sut, mimi_as):
    """A consent-first user who granted rooms A and B and then revokes B alone: the SUT still hands out
    KeyPackages for room A, and refuses room B.

    consent-modes: "a revoke for a room overrides grants only for that room"; "After the user grants,
    keyMaterial requests covered by the grant return KeyPackages"."""
    target = _user_in_mode(sut, cast.sut, "consent-first")
    requester = _Requester(cast, sut)
    room_a, room_b = requester.room(), requester.room()
    raw = _Mimi(sut, mimi_as, requester.domain)
    user = requester.user.uri
    for room in (room_a, room_b):
        cast.sut.grant_consent(target, requester.user, room=room)
    reply, response = raw.key_material(user, target.uri, room_b)
    _expect_key_packages(reply, response, f"keyMaterial for {room_b} after grants for {room_a} and {room_b}",
                         FIRST_GRANT_OPENS)
    cast.sut.revoke_consent(target, requester.user, room=room_b)
    reply, response = raw.key_material(user, target.uri, room_a)
    _expect_key_packages(reply, response, f"keyMaterial for {room_a} (granted) after a revoke naming only {room_b}",
                         FIRST_GRANT_OPENS)
    reply, response = raw.key_material(user, target.uri, room_b)
    _expect_refused(reply, response, target.uri, f"keyMaterial for {room_b} after its grant was revoked",
                    FIRST_REVOKE_CLOSES)


@both_roles
@pytest.mark.requirements(FIRST_REVOKE_CLOSES, FIRST_GRANT_OPENS)
@pytest.mark.operations("createUser", "grantConsent", "revokeConsent", hub=("createRoom", "addParticipant"))
def test_consent_first_revoke_for_every_room_overrides_an_earlier_room_grant(cast, sut, mimi_as):
    """A consent-first user who granted room A and later revokes without a room: the SUT refuses
    keyMaterial for room A (the later revoke wins over the earlier, narrower grant).

    consent-modes: "A revoke for a scope without `roomId` overrides every grant for that requester"; "After
    the user revokes, covered keyMaterial requests answer noConsent again". Only this order (grant, then
    revoke) is judged: which of a revoke and a *later* narrower grant wins is not."""
    target = _user_in_mode(sut, cast.sut, "consent-first")
    requester = _Requester(cast, sut)
    room = requester.room()
    raw = _Mimi(sut, mimi_as, requester.domain)
    cast.sut.grant_consent(target, requester.user, room=room)
    reply, response = raw.key_material(requester.user.uri, target.uri, room)
    _expect_key_packages(reply, response, f"keyMaterial for {room} after a grant for it", FIRST_GRANT_OPENS)
    cast.sut.revoke_consent(target, requester.user)
    reply, response = raw.key_material(requester.user.uri, target.uri, room)
    _expect_refused(reply, response, target.uri, f"keyMaterial for {room} after a later revoke naming no room",
                    FIRST_REVOKE_CLOSES)


@both_roles
@pytest.mark.requirements(ROOM_SCOPE, FIRST_GRANT_OPENS)
@pytest.mark.operations("createUser", "grantConsent", hub=("createRoom", "addParticipant"))
def test_room_scoped_grant_opens_only_that_room(cast, sut, mimi_as):
    """A consent-first user's grant for room A makes the SUT hand out KeyPackages for room A only; room B gets noConsentForThisRoom or noConsent and no clients."""
    target = _user_in_mode(sut, cast.sut, "consent-first")
    requester = _Requester(cast, sut)
    room_a, room_b = requester.room(), requester.room()
    raw = _Mimi(sut, mimi_as, requester.domain)
    cast.sut.grant_consent(target, requester.user, room=room_a)
    reply, response = raw.key_material(requester.user.uri, target.uri, room_a)
    _expect_key_packages(reply, response, f"keyMaterial for the granted room {room_a}", FIRST_GRANT_OPENS)
    reply, response = raw.key_material(requester.user.uri, target.uri, room_b)
    _expect_refused(reply, response, target.uri, f"keyMaterial for {room_b}, not covered by the grant for {room_a}",
                    ROOM_SCOPE)


# ============================================================================================
# request / cancel


def _pending(sut: Party, target: User, requester: User) -> set[str | None]:
    return {e.get("room") for e in sut.events(target)
            if e["type"] == "consentRequested" and e.get("requester") == requester.uri}


@both_roles
@pytest.mark.requirements(EXT_CANCEL)
@pytest.mark.operations("createUser", "listUserEvents")
def test_cancel_removes_only_the_identical_pending_request(cast, sut, mimi_as, poll_until):
    """A received cancel removes only the pending request with the identical scope; cancels for another scope change nothing."""
    target = _user_in_mode(sut, cast.sut, "consent-first")
    if not cast.sut.supports("listUserEvents"):
        not_applicable("the SUT's control API has no listUserEvents: pending requests cannot be seen",
                       operation="listUserEvents")
    requester = _Requester(cast, sut)
    raw = _Mimi(sut, mimi_as, requester.domain)
    room_a, room_b, room_c = (f"mimi://{requester.domain}/r/{cast.names('scope')}" for _ in range(3))
    user = requester.user.uri
    first = raw.consent("request", user, target.uri, room_a)
    # A request answered 201 and recorded as pending is FIRST_REQUEST_201's rule, judged by its own
    # check: here it is a precondition, so a SUT that breaks it blocks this check.
    if first.status != 201:
        blocked(FIRST_REQUEST_201, f"requestConsent (room A) was answered HTTP {first.status}, not 201")
    _pending_or_blocked(poll_until, lambda: room_a in _pending(cast.sut, target, requester.user),
                        "the room-A request to be pending")
    raw.consent("cancel", user, target.uri, room_b)
    raw.consent("cancel", user, target.uri)
    # Sentinel: a later request shows up, so the SUT has handled the two cancels before it.
    raw.consent("request", user, target.uri, room_c)
    _pending_or_blocked(poll_until, lambda: room_c in _pending(cast.sut, target, requester.user),
                        "a later request to be pending")
    if room_a not in _pending(cast.sut, target, requester.user):
        fail("a cancel for another room (or for any room) removed the pending request for room A",
             requirement=EXT_CANCEL)
    observed(EXT_CANCEL, "cancels for room B and for any room left the room-A request pending")
    raw.consent("cancel", user, target.uri, room_a)
    poll_until(lambda: room_a not in _pending(cast.sut, target, requester.user),
               what="the identical cancel to remove the room-A request", requirement=EXT_CANCEL)
    if room_c not in _pending(cast.sut, target, requester.user):
        fail("the cancel for room A also removed the pending request for room C", requirement=EXT_CANCEL)
    observed(EXT_CANCEL, "the identical cancel removed the room-A request and left the room-C one")


@both_roles
@pytest.mark.requirements(FIRST_REQUEST_201)
@pytest.mark.operations("createUser", "listUserEvents", "grantConsent", hub=("createRoom", "addParticipant"))
def test_room_decision_leaves_other_rooms_requests_pending(cast, sut, mimi_as, poll_until):
    """Requests for rooms A and B are pending; the user grants room B alone: the request for room A stays
    pending.

    consent-modes, "Consent state kept by the target provider": "For each target user, a set of scopes in
    one of the states `pending` (a `request` arrived), `granted`, `revoked`. The latest operation on an
    identical scope replaces the earlier one." and consent-first: "`requestConsent` (`request`) is
    answered 201 and recorded as pending". A grant naming room B is no operation on room A's scope. Room
    B's request leaving the list is only the sign that the SUT has handled the grant (a SUT whose events
    keep it makes the check NOT_APPLICABLE)."""
    target = _user_in_mode(sut, cast.sut, "consent-first")
    if not cast.sut.supports("listUserEvents"):
        not_applicable("the SUT's control API has no listUserEvents: pending requests cannot be seen",
                       operation="listUserEvents")
    requester = _Requester(cast, sut)
    room_a, room_b = requester.room(), requester.room()
    raw = _Mimi(sut, mimi_as, requester.domain)
    user = requester.user.uri
    for room in (room_a, room_b):
        reply = raw.consent("request", user, target.uri, room)
        if reply.status != 201:
            fail(f"requestConsent for {room} answered HTTP {reply.status}, not 201", requirement=FIRST_REQUEST_201)
    poll_until(lambda: {room_a, room_b} <= _pending(cast.sut, target, requester.user),
               what=f"the requests for {room_a} and {room_b} to be pending", requirement=FIRST_REQUEST_201)
    cast.sut.grant_consent(target, requester.user, room=room_b)
    try:
        poll_until(lambda: room_b not in _pending(cast.sut, target, requester.user),
                   what=f"the granted request for {room_b} to leave the pending list")
    except PollTimeout:
        not_applicable(f"the SUT's events still show the request for {room_b} after the user granted it: its "
                       "events do not tell a pending request from an answered one")
    if room_a not in _pending(cast.sut, target, requester.user):
        fail(f"the user's grant for {room_b} also removed the pending request for {room_a}",
             requirement=FIRST_REQUEST_201)
    observed(FIRST_REQUEST_201, f"after a grant for {room_b}, the request for {room_a} is still pending")


def _pending_or_blocked(poll_until, predicate, what: str) -> None:
    """Wait for a request to show as pending; a SUT that never records it is blocked by FIRST_REQUEST_201."""
    try:
        poll_until(predicate, what=what)
    except PollTimeout as exc:
        blocked(FIRST_REQUEST_201, f"a requestConsent answered 201 never showed as pending: {exc}")


def _room_with_sut_member(cast, member: User) -> str:
    """A room where the SUT user ``member`` is a participant (and may ask consent to add someone)."""
    if cast.sut_role == "hub":
        return cast.sut.create_room(member)
    owner = cast.hub.create_user("owner")
    room = cast.hub.create_room(owner)
    cast.hub.add_ok(room, owner, member)
    return room


@both_roles
@pytest.mark.requirements(CANCEL_SAME_SCOPE, ROOM_SCOPED_REQUEST, DIRECT)
@pytest.mark.operations("createUser", "requestConsent", "cancelConsentRequest", hub=("createRoom",))
def test_sut_cancel_repeats_the_request_scope(cast, sut, poll_until):
    """The SUT sends its user's consent request directly to the target's provider, room-scoped with the roomId, and a cancel with the identical scope."""
    for operation in ("requestConsent", "cancelConsentRequest"):
        if not cast.sut.supports(operation):
            not_applicable(f"the SUT's control API has no {operation}: its user cannot ask for (or cancel) consent",
                           operation=operation)
    asker = cast.sut.create_user("asker")
    target = cast.reference.create_user("target")
    room = _room_with_sut_member(cast, asker)
    traffic = _Traffic(cast.reference)
    cast.sut.request_consent(asker, target, room=room)
    cast.sut.cancel_consent(asker, target, room=room)

    def entries(operation: ConsentOperation, requirement: str):
        def read():
            out = []
            for t in traffic.read(endpoint="requestConsent", direction="in"):
                try:
                    entry = ConsentEntry.decode(t.request)
                except Exception as exc:  # noqa: BLE001 - the SUT's bytes: a miss, not a suite bug
                    fail(f"requestConsent #{t.seq} from {t.peer} is not a ConsentEntry: {exc}", requirement=requirement)
                if (bytes(entry.targetUri.uri).decode(errors="replace") == target.uri
                        and entry.consentOperation == operation):
                    out.append((t, entry))
            return out
        return read

    requests = poll_until(entries(ConsentOperation.request, DIRECT),
                          what=f"the SUT's consent request to reach {cast.reference.name}", requirement=DIRECT)
    cancels = poll_until(entries(ConsentOperation.cancel, CANCEL_SAME_SCOPE),
                         what=f"the SUT's cancel to reach {cast.reference.name}", requirement=CANCEL_SAME_SCOPE)
    request, cancel = requests[0][1], cancels[0][1]

    def scope(entry: ConsentEntry) -> tuple[bytes, bytes, bytes | None]:
        return (bytes(entry.requesterUri.uri), bytes(entry.targetUri.uri),
                None if entry.roomId is None else bytes(entry.roomId.uri))

    if request.roomId is None or bytes(request.roomId.uri).decode(errors="replace") != room:
        fail(f"a request for room {room} carries roomId {scope(request)[2]!r}", requirement=ROOM_SCOPED_REQUEST)
    observed(ROOM_SCOPED_REQUEST, f"the request for room {room} carries that roomId")
    if scope(cancel) != scope(request):
        fail(f"the cancel's scope {scope(cancel)} differs from the request's {scope(request)}",
             requirement=CANCEL_SAME_SCOPE)
    observed(CANCEL_SAME_SCOPE, "the cancel repeats the request's requesterUri, targetUri and roomId byte for byte")
    senders = {t.peer.lower() for t, _ in requests + cancels}
    if not senders <= {d.lower() for d in sut.domains}:
        fail(f"the consent requests reached the target's provider from {sorted(senders)}, not directly from the SUT",
             requirement=DIRECT)
    observed(DIRECT, f"request and cancel reached the target's provider {cast.reference.domain} from "
                     f"{sorted(senders)} (the SUT)")


# ============================================================================================
# updateConsent received by the SUT (the SUT as requester provider)


@both_roles
@pytest.mark.requirements(UPDATE_RESPONSE, GRANT_KEYPACKAGES)
@pytest.mark.operations("createUser")
def test_update_consent_grant_answered_201(cast, sut, mimi_as):
    """The SUT answers an updateConsent grant for one of its users 201, with no KeyPackage and with two, and
    one for a requester it does not know 201 or 404 (-06 §5.7; a 500-class answer judges nothing, and the
    draft says nothing of a body)."""
    asker = cast.sut.create_user("asker")
    granting = cast.reference.create_user("granting", clients=2)
    raw = _Mimi(sut, mimi_as, cast.reference.domain)
    local = asker.uri.rsplit("/", 1)[1]
    unknown = asker.uri[: -len(local)] + "nobody-" + local
    for who, requester, allowed in (("one of its users", asker.uri, (201,)), ("an unknown requester", unknown, (201, 404))):
        reply = raw.consent("grant", requester, granting.uri)
        if 500 <= reply.status < 600:
            continue
        if reply.status not in allowed:
            fail(f"an updateConsent grant for {who} without KeyPackages was answered HTTP {reply.status}; expected "
                 f"{' or '.join(map(str, allowed))}", requirement=UPDATE_RESPONSE)
        observed(UPDATE_RESPONSE, f"updateConsent grant for {who} without KeyPackages: HTTP {reply.status}")
    kps = [make_key_package(1, basic_credential(client.encode())).key_package for client in granting.clients]
    full = raw.consent("grant", asker.uri, granting.uri, key_packages=kps)
    if 500 <= full.status < 600:
        not_applicable(f"the grant with KeyPackages was answered HTTP {full.status} (allowed, judges nothing)",
                       requirement=GRANT_KEYPACKAGES)
        return
    if full.status != 201:
        fail(f"an updateConsent grant with two KeyPackages was answered HTTP {full.status}; expected 201",
             requirement=GRANT_KEYPACKAGES)
    observed(GRANT_KEYPACKAGES, "updateConsent grants with no KeyPackage and with two were both accepted (201)")
