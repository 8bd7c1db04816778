"""Consent, core only: protocol-06 §5.2 keyMaterial codes and §5.7 requestConsent / updateConsent.

These checks judge the core consent requirements with what draft-06 itself says, without the
project's consent-modes extension: users are plain ``createUser`` users (no ``consentMode``), the
target user's decisions are made with the core control operations ``grantConsent`` and
``revokeConsent`` (a SUT without one makes the check NOT_APPLICABLE, naming it), and only wire
behaviour is judged: what the SUT answers over MIMI to keyMaterial, requestConsent and updateConsent.
Nothing here reads control-API events, the ``userUri`` of a refusal or a consent mode: those are the
extension's (test_consent.py).

The SUT is the *target* provider; the requester is a user of the suite's reference peer in the other
role (see :class:`conformance.scenarios.test_consent._Requester`), and the suite speaks MIMI to the
SUT as the requester's provider (or, for the domain rule, as a third provider).
PROTO-KEYMAT-UNKNOWN-USER, core too, is judged in test_keymaterial.py.
"""

from __future__ import annotations

import hashlib

import pytest

from conformance.scenarios.roles import both_roles
from conformance.scenarios.test_consent import REFUSALS, _describe, _Mimi, _Requester
from conformance.verdicts import blocked, miss, not_applicable, observed

REQUEST_RESPONSE = "PROTO-CONSENT-REQUEST-RESPONSE"
CANCEL_NO_MATCH = "PROTO-CONSENT-CANCEL-NO-MATCH"
GRANT_ENABLES = "PROTO-CONSENT-GRANT-ENABLES-KEYMAT"
REVOKE_ENFORCED = "PROTO-CONSENT-REVOKE-ENFORCED"
ROOM_OR_ANY = "PROTO-CONSENT-ROOM-OR-ANY"
KEYMAT_NOCONSENT = "PROTO-KEYMAT-NOCONSENT"
KEYMAT_NOCONSENT_ROOM = "PROTO-KEYMAT-NOCONSENT-FOR-ROOM"
UPDATE_DOMAINS = "PROTO-CONSENT-UPDATE-DOMAINS"

STRANGER = "stranger.ref.test"  # a provider that is neither the requester's nor the target's


def _needs(party, *operations: str) -> None:
    for operation in operations:
        if not party.supports(operation):
            not_applicable(f"the SUT's control API has no {operation}: the check cannot make the target user decide",
                           operation=operation)


def _key_packages(response) -> int:
    return 0 if response is None else sum(1 for c in response.clients if c.keyPackage is not None)


def _refused(response) -> bool:
    """No KeyPackage handed out: a non-200 answer, or a KeyMaterialResponse whose clients carry none."""
    return _key_packages(response) == 0


def _opened(response) -> bool:
    """Not refused for lack of consent: a KeyMaterialResponse with neither noConsent nor noConsentForThisRoom."""
    return response is not None and response.userStatus.name not in REFUSALS


def _ghost(uri: str) -> str:
    """A URI of the SUT's domain that no user has: the user's URI with a different local part of the same length."""
    local = uri.rsplit("/", 1)[1]
    return uri[: -len(local)] + hashlib.sha256(local.encode()).hexdigest()[: len(local)]


# ============================================================================================
# keyMaterial gated by the target's decisions (§5.2, §5.7)


def _judge_refusal(reply, response, what: str) -> None:
    """After a revoke: REVOKE_ENFORCED holds when no KeyPackage is handed out; KEYMAT_NOCONSENT when
    the answer is also a noConsent (or noConsentForThisRoom) KeyMaterialResponse. Each is judged on its own."""
    if _refused(response):
        observed(REVOKE_ENFORCED, f"{what}: no KeyPackage ({_describe(reply, response)})")
    else:
        miss(REVOKE_ENFORCED, f"{what}: the SUT handed out {_key_packages(response)} KeyPackage(s): "
                              f"{_describe(reply, response)}")
    if response is not None and response.userStatus.name in REFUSALS and _refused(response):
        observed(KEYMAT_NOCONSENT, f"{what}: {response.userStatus.name} with no KeyPackage")
    else:
        miss(KEYMAT_NOCONSENT, f"{what}: expected noConsent (or noConsentForThisRoom) with no KeyPackage, "
                               f"got {_describe(reply, response)}")


@both_roles
@pytest.mark.requirements(REVOKE_ENFORCED, KEYMAT_NOCONSENT, GRANT_ENABLES)
@pytest.mark.operations("createUser", "revokeConsent", "grantConsent", hub=("createRoom", "addParticipant"))
def test_revoke_and_grant_gate_keymaterial(cast, sut, mimi_as):
    """After the target revokes (denies) a requester, the SUT's keyMaterial answers noConsent without
    KeyPackages; after a grant it no longer refuses for lack of consent; after a revoke again it refuses."""
    _needs(cast.sut, "revokeConsent", "grantConsent")
    target = cast.sut.create_user("target")
    requester = _Requester(cast, sut)
    room = requester.room()
    raw = _Mimi(sut, mimi_as, requester.domain)

    cast.sut.revoke_consent(target, requester.user)
    _judge_refusal(*raw.key_material(requester.user.uri, target.uri, room), "keyMaterial after a preemptive revoke")

    cast.sut.grant_consent(target, requester.user)
    reply, response = raw.key_material(requester.user.uri, target.uri, room)
    if _opened(response):
        observed(GRANT_ENABLES, f"keyMaterial after a grant for every room: {response.userStatus.name}")
    else:
        miss(GRANT_ENABLES, f"after the target granted {requester.user.uri} consent for every room, keyMaterial "
                            f"for {room} was still refused: {_describe(reply, response)}")

    cast.sut.revoke_consent(target, requester.user)
    _judge_refusal(*raw.key_material(requester.user.uri, target.uri, room), "keyMaterial after revoking the grant")


@both_roles
@pytest.mark.requirements(REVOKE_ENFORCED, KEYMAT_NOCONSENT)
@pytest.mark.operations("createUser", "grantConsent", "revokeConsent", hub=("createRoom", "addParticipant"))
def test_revoke_for_every_room_overrides_an_earlier_room_grant(cast, sut, mimi_as):
    """A grant for room A followed by a revoke naming no room: keyMaterial for room A is refused.

    -06 §8: "Each of these consent operations can indicate a specific room, or indicate any room." A
    revoke indicating any room covers room A too, so the earlier grant for room A does not outlive it
    (§5.7: updateConsent gives notice "that consent for a specific 'requester' was granted, revoked, or
    preemptively denied"). Only this order is judged, never a revoke followed by a narrower grant."""
    _needs(cast.sut, "revokeConsent", "grantConsent")
    target = cast.sut.create_user("target")
    requester = _Requester(cast, sut)
    room = requester.room()
    raw = _Mimi(sut, mimi_as, requester.domain)
    cast.sut.grant_consent(target, requester.user, room=room)
    reply, response = raw.key_material(requester.user.uri, target.uri, room)
    if not _opened(response):
        blocked(GRANT_ENABLES, f"after the target granted {requester.user.uri} consent for {room}, keyMaterial "
                               f"for it was refused: {_describe(reply, response)}")
    cast.sut.revoke_consent(target, requester.user)
    _judge_refusal(*raw.key_material(requester.user.uri, target.uri, room),
                   f"keyMaterial for {room} after a grant for it, then a revoke naming no room")


@both_roles
@pytest.mark.requirements(ROOM_OR_ANY, KEYMAT_NOCONSENT_ROOM)
@pytest.mark.operations("createUser", "revokeConsent", "grantConsent", hub=("createRoom", "addParticipant"))
def test_room_scoped_revoke_applies_to_that_room_only(cast, sut, mimi_as):
    """A grant without a room opens every room; a later revoke naming room B refuses room B only (with
    noConsentForThisRoom or noConsent and no KeyPackage) while room A stays open."""
    _needs(cast.sut, "revokeConsent", "grantConsent")
    target = cast.sut.create_user("target")
    requester = _Requester(cast, sut)
    room_a, room_b = requester.room(), requester.room()
    raw = _Mimi(sut, mimi_as, requester.domain)
    user = requester.user.uri

    # A known starting point whatever the SUT's default: no consent at all, then consent for any room.
    cast.sut.revoke_consent(target, requester.user)
    reply, response = raw.key_material(user, target.uri, room_b)
    if not _refused(response):
        blocked(REVOKE_ENFORCED, f"after a revoke for every room the SUT still handed out KeyPackages for {room_b}: "
                                 f"{_describe(reply, response)}")
    cast.sut.grant_consent(target, requester.user)
    opened = {room: raw.key_material(user, target.uri, room) for room in (room_a, room_b)}
    shut = [f"{room}: {_describe(*answer)}" for room, answer in opened.items() if not _opened(answer[1])]
    if shut:
        miss(ROOM_OR_ANY, f"a grant naming no room (after a revoke for every room) did not open every room: {shut}")
    else:
        observed(ROOM_OR_ANY, "a grant naming no room opened both rooms, refused before")

    cast.sut.revoke_consent(target, requester.user, room=room_b)
    reply_b, response_b = raw.key_material(user, target.uri, room_b)
    reply_a, response_a = raw.key_material(user, target.uri, room_a)
    if _opened(response_a):
        observed(ROOM_OR_ANY, f"a revoke naming {room_b} left {room_a} open ({response_a.userStatus.name})")
    else:
        miss(ROOM_OR_ANY, f"a revoke naming only {room_b} also refused {room_a}: {_describe(reply_a, response_a)}")
    if not _refused(response_b):
        miss(ROOM_OR_ANY, f"a revoke naming {room_b} did not apply to it: {_describe(reply_b, response_b)}")
        not_applicable(f"{room_b} was not refused, so the answer for a room without consent could not be seen",
                       requirement=KEYMAT_NOCONSENT_ROOM)
        return
    observed(ROOM_OR_ANY, f"a revoke naming {room_b} refused it ({_describe(reply_b, response_b)})")
    if response_b is not None and response_b.userStatus.name in REFUSALS:
        observed(KEYMAT_NOCONSENT_ROOM, f"consent for every room but {room_b}: {response_b.userStatus.name}, "
                                        "no KeyPackage")
    else:
        miss(KEYMAT_NOCONSENT_ROOM, f"the target consented for other rooms but not {room_b}; expected "
                                    f"noConsentForThisRoom or noConsent, got {_describe(reply_b, response_b)}")


# ============================================================================================
# requestConsent answers (§5.7)


@both_roles
@pytest.mark.requirements(REQUEST_RESPONSE)
@pytest.mark.operations("createUser")
def test_request_consent_answered_201(cast, sut, mimi_as):
    """requestConsent for a known user is answered 201; for an unknown user 201 or 404. The draft also
    allows a 500-class answer, which judges nothing, and says nothing of a body."""
    target = cast.sut.create_user("target")
    requester = _Requester(cast, sut)
    raw = _Mimi(sut, mimi_as, requester.domain)
    for who, uri, allowed in (("a known user", target.uri, (201,)), ("an unknown user", _ghost(target.uri), (201, 404))):
        reply = raw.consent("request", requester.user.uri, uri)
        if 500 <= reply.status < 600:
            continue  # "or a 500-class response": allowed, and it says nothing about receipt
        if reply.status not in allowed:
            miss(REQUEST_RESPONSE, f"requestConsent for {who} ({uri}) answered HTTP {reply.status}; "
                                   f"expected {' or '.join(map(str, allowed))}")
        else:
            # -06 names the status only: a body, if any, is not judged.
            observed(REQUEST_RESPONSE, f"requestConsent for {who}: HTTP {reply.status}")


@both_roles
@pytest.mark.requirements(CANCEL_NO_MATCH)
@pytest.mark.operations("createUser")
def test_cancel_matching_no_request_answered_201(cast, sut, mimi_as):
    """A cancel whose ConsentScope matches no request (another room, any room, never requested) is answered 201."""
    target = cast.sut.create_user("target")
    requester = _Requester(cast, sut)
    raw = _Mimi(sut, mimi_as, requester.domain)
    user = requester.user.uri
    room_a, room_b = (f"mimi://{requester.domain}/r/{cast.names('scope')}" for _ in range(2))
    first = raw.consent("request", user, target.uri, room_a)
    if first.status != 201:
        not_applicable(f"the request the cancels must not match was answered HTTP {first.status}")
    for scope, room in (("room B (a request exists for room A only)", room_b), ("any room", None)):
        reply = raw.consent("cancel", user, target.uri, room)
        if reply.status == 201:
            observed(CANCEL_NO_MATCH, f"cancel for {scope}: 201")
        else:
            miss(CANCEL_NO_MATCH, f"a cancel matching no request ({scope}) was answered HTTP {reply.status}, not 201")


# ============================================================================================
# updateConsent from a provider that is not the target's (§5.7)


@both_roles
@pytest.mark.requirements(UPDATE_DOMAINS)
@pytest.mark.operations("createUser", "revokeConsent", hub=("createRoom", "addParticipant"))
def test_update_consent_from_wrong_provider_changes_nothing(cast, sut, mimi_as):
    """An updateConsent grant naming the SUT's user as target, sent by a third provider and by the
    requester's own provider (neither holds the targetUri), is not acted on: after it, keyMaterial from
    that requester is still refused as before. Any answer is allowed; the effect is judged.

    The positive control: a well-scoped update (the SUT's user as requesterUri, the sender's user as
    targetUri, sent by the target's provider) is not refused for its domains. -06 §5.7: "For
    updateConsent the requesterUri needs to be in one of the domains of the receiving provider, and the
    targetUri needs to be in one of the domains of the sending provider", and "The response to an
    updateConsent is usually a 201 Accepted [...], optionally a 404 Not Found (indicating the requesterUri
    is unknown), or a 500-class response". So a 4xx other than 404 refuses an update that meets the rule;
    201 (or any 2xx) passes; 404 and a 500-class answer judge nothing here."""
    _needs(cast.sut, "revokeConsent")
    target = cast.sut.create_user("target")
    requester = _Requester(cast, sut)
    room = requester.room()
    raw = _Mimi(sut, mimi_as, requester.domain)
    user = requester.user.uri
    cast.sut.revoke_consent(target, requester.user)
    reply, response = raw.key_material(user, target.uri, room)
    if not _refused(response):
        blocked(REVOKE_ENFORCED, f"after the target revoked {user}, keyMaterial still handed out KeyPackages: "
                                 f"{_describe(reply, response)}")
    for sender in (STRANGER, requester.domain):
        update = _Mimi(sut, mimi_as, sender).consent("grant", user, target.uri)
        answer = f"HTTP {update.status}" + (" (refused)" if not 200 <= update.status < 300 else "")
        reply, response = raw.key_material(user, target.uri, room)
        if _refused(response):
            observed(UPDATE_DOMAINS, f"grant for {target.uri} sent by {sender}: {answer}; keyMaterial still "
                                     f"refused ({_describe(reply, response)})")
        else:
            miss(UPDATE_DOMAINS, f"an updateConsent grant for the SUT's user {target.uri} sent by {sender} (not "
                                 f"the target's provider; answered {answer}) released KeyPackages to {user}: "
                                 f"{_describe(reply, response)}")
    # The positive control: the SUT's user asks, the reference user (the sender's) grants.
    scoped = raw.consent("grant", target.uri, user)
    if 200 <= scoped.status < 300:
        observed(UPDATE_DOMAINS, f"a well-scoped updateConsent grant (requester {target.uri}, target {user}, sent by "
                                 f"{requester.domain}) was accepted: HTTP {scoped.status}")
    elif 400 <= scoped.status < 500 and scoped.status != 404:
        miss(UPDATE_DOMAINS, f"a well-scoped updateConsent grant (requesterUri {target.uri} in the SUT's domains, "
                             f"targetUri {user} in the sender {requester.domain}'s) was refused: HTTP {scoped.status}")
