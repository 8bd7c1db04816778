"""The SUT's MIMI endpoints answering requests it has no reason to serve, and the ones -06 gives an answer
for that no other check sends (draft-ietf-mimi-protocol-06 §5).

-06 names few refusal statuses: where it names none, any refusal is accepted (a non-2xx status, or the
endpoint's failure code where its response struct has one); what is judged is what the draft's sentence
says the answer is.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from conformance.scenarios.roles import as_hub, both_roles
from conformance.scenarios.test_consent import _Mimi, _Requester, _user_in_mode
from conformance.verdicts import fail, judging, miss, not_applicable, observed
from reference_peer.wire.identity import IdentifierUri
from reference_peer.wire.mimi import AbuseReport, AbuseType
from reference_peer.wire.mls import AppDataDictionary

ABUSE_ACCEPT_NO_BODY = "PROTO-ABUSE-ACCEPT-NO-BODY"
REQUEST_DOMAINS = "PROTO-CONSENT-REQUEST-DOMAINS"
STRANGER = "stranger.ref.test"  # a provider that is neither the sender nor the SUT


def _authority(sut, domain: str) -> str:
    return urlsplit(sut.base_urls[domain]).netloc


# --- reportAbuse (5.9) --------------------------------------------------------------------------------


@as_hub
@pytest.mark.requirements(ABUSE_ACCEPT_NO_BODY)
@pytest.mark.operations("createUser", "createRoom", "addParticipant")
def test_abuse_report_is_accepted_without_a_body(cast, sut, mimi_as, recorder):
    """A well-formed AbuseReport for a room the hub SUT hosts, from a provider with a participant in it, is
    answered with a success (2xx) status and an empty body.

    -06 §5.9: "Abuse reports are only sent to the hub provider." and "There is no response body. The
    response code only indicates if the abuse report was accepted, not if any specific automated or human
    action was taken." No status is named: any 2xx is an acceptance. The report names a reporting user (the
    register's reading of the optional reportingUser: AMB-ABUSE-REPORTINGUSER-OPTIONAL), no messages (the
    frank validation is not observable, PROTO-ABUSE-FRANK-VALIDATED), and an empty extension dictionary."""
    owner = cast.hub.create_user("owner")
    room = cast.hub.create_room(owner)
    reporter = cast.follower.create_user("reporter")
    cast.hub.add_ok(room, owner, reporter)
    recorder.note(f"{reporter.uri} ({cast.follower.domain}) is a participant of {room}; it reports {owner.uri}")
    report = AbuseReport(
        reportingUser=IdentifierUri(uri=reporter.uri.encode()),
        allegedAbuserUri=IdentifierUri(uri=owner.uri.encode()),
        reasonCode=AbuseType.reserved,
        note=b"unsolicited messages",
        messages=[],
        abuse_extensions=AppDataDictionary(component_data=[]),
    ).encode()
    session = mimi_as(cast.follower.domain)
    with judging(ABUSE_ACCEPT_NO_BODY):
        reply = session.run(session.client.call(_authority(sut, cast.sut.domain), "reportAbuse", room, report))
    recorder.note(f"reportAbuse for {room}: HTTP {reply.status}, {len(reply.body)} bytes")
    if not 200 <= reply.status < 300:
        fail(f"a well-formed abuse report for {room}, a room the SUT hosts, from {cast.follower.domain} (which has "
             f"a participant in it) answered HTTP {reply.status}, not a success status", requirement=ABUSE_ACCEPT_NO_BODY)
    if reply.body:
        fail(f"the abuse report was accepted (HTTP {reply.status}) with a {len(reply.body)}-byte body: -06 §5.9 says "
             "\"There is no response body.\"", requirement=ABUSE_ACCEPT_NO_BODY)
    observed(ABUSE_ACCEPT_NO_BODY, f"the abuse report for {room} was answered HTTP {reply.status} with no body")


# --- requestConsent whose requester is not the sender's (5.7) --------------------------------------


def _pending_from(party, target, requester: str) -> bool:
    return any(e["type"] == "consentRequested" and e.get("requester") == requester for e in party.events(target))


@both_roles
@pytest.mark.requirements(REQUEST_DOMAINS)
@pytest.mark.operations("createUser", "listUserEvents")
def test_request_consent_naming_another_providers_requester_is_not_acted_on(cast, sut, mimi_as, names, poll_until,
                                                                           recorder):
    """A requestConsent for the SUT's user whose requesterUri belongs to a third provider, sent by the
    reference provider, leaves no pending request at the SUT; the same provider's well-scoped request
    (its own user as requester), sent after it, does.

    -06 §5.7: "For a requestContent, the targetUri needs to be in one of the domains of the receiving
    provider, and the requesterUri needs to be in one of the domains of the sending provider." -06 names no
    answer for a request that breaks this, so any status passes; what is judged is that it is not acted on
    (PROTO-CONSENT-REQUEST-DOMAINS). A pending request is seen through listUserEvents, so the target is a
    user in consent-first mode (the consent-modes extension): a SUT without that mode, or without
    listUserEvents, makes the check NOT_APPLICABLE."""
    target = _user_in_mode(sut, cast.sut, "consent-first")
    if not cast.sut.supports("listUserEvents"):
        not_applicable("the SUT's control API has no listUserEvents: a pending request cannot be seen",
                       operation="listUserEvents")
    requester = _Requester(cast, sut)
    raw = _Mimi(sut, mimi_as, requester.domain)
    foreign = f"mimi://{STRANGER}/u/{names('foreign')}"
    with judging(REQUEST_DOMAINS):
        wrong = raw.consent("request", foreign, target.uri)
    recorder.note(f"requestConsent from {requester.domain} naming {foreign} as requester: HTTP {wrong.status}")
    # The control, sent after: the sender's own user asks; its pending request shows the SUT records requests.
    scoped = raw.consent("request", requester.user.uri, target.uri)
    recorder.note(f"requestConsent from {requester.domain} naming its own {requester.user.uri}: HTTP {scoped.status}")
    try:
        poll_until(lambda: _pending_from(cast.sut, target, requester.user.uri),
                   what=f"a pending consentRequested event from {requester.user.uri} for {target.uri}")
    except TimeoutError:
        not_applicable(f"a well-scoped requestConsent from {requester.user.uri} (HTTP {scoped.status}) never showed as "
                       f"pending for {target.uri}, so a request that was not acted on cannot be told apart")
    if _pending_from(cast.sut, target, foreign):
        miss(REQUEST_DOMAINS, f"a requestConsent sent by {requester.domain} naming {foreign} (a {STRANGER} user) as "
                              f"requester (answered HTTP {wrong.status}) is pending for {target.uri}: the requesterUri "
                              "is not in the sending provider's domains")
        return
    observed(REQUEST_DOMAINS, f"the request naming {foreign} as requester (HTTP {wrong.status}) left nothing pending for "
                              f"{target.uri}; the sender's own user's request, sent after it, is pending")
