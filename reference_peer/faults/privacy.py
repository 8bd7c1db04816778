"""Faults of the privacy area (checks: conformance/scenarios/test_privacy.py)."""

from .registry import define

AREA = "privacy"

FANOUT_NAMES_SENDER = define(
    "fanout-names-sender",
    area=AREA,
    requirements=["PROTO-FRANK-SENDER-HIDDEN"],
    description="the hub fans out an application message with the submitted sendingUri in clear "
    "(carried in a frank's signature field)",
    hooks={"hub.submit.fanout-as-accepted": lambda *args: fanout_names_sender(*args)},
)
FANOUT_TO_DEPARTED_PROVIDERS = define(
    "fanout-to-departed-providers",
    area=AREA,
    requirements=["PROTO-FANOUT-ONLY-ACTIVE-PROVIDERS"],
    description="the hub keeps fanning application messages out to providers whose last participant "
    "left the room",
    hooks={"hub.submit.fanout-as-accepted": lambda *args: fanout_to_departed_providers(*args)},
)
FANOUT_ALTERS_CIPHERTEXT = define(
    "fanout-alters-ciphertext",
    area=AREA,
    requirements=["PROTO-FANOUT-TO-ACTIVE-PROVIDERS"],
    description="the hub forwards a follower-submitted PrivateMessage altered (last ciphertext byte flipped) to "
    "the other remote providers, instead of the bytes it accepted",
    hooks={"hub.submit.fanout-as-accepted": lambda *args: fanout_alters_ciphertext(*args)},
)
GROUPINFO_UNKNOWN_ROOM_404 = define(
    "groupinfo-unknown-room-404",
    area=AREA,
    requirements=["PROTO-GROUPINFO-NO-SUCH-ROOM"],
    description="groupInfo for a room that does not exist answers HTTP 404 (neither noSuchRoom nor "
    "notAuthorized), unlike a room that exists: room existence leaks",
    hooks={"hub.groupinfo.hide-unknown-room": lambda domain, room_id: unknown_room_404(domain, room_id)},
)
ABUSE_REPORT_ECHOED = define(
    "abuse-report-answered-with-body",
    area=AREA,
    requirements=["PROTO-ABUSE-ACCEPT-NO-BODY"],
    description="the hub answers an accepted abuse report 200 with the report echoed back as a body (a "
    "receipt), where -06 §5.9 says there is no response body",
    hooks={"hub.abuse.accept-without-body": lambda body: abuse_report_echoed(body)},
)
GROUPINFO_WRONG_CONTEXT = define(
    "groupinfo-wrong-context",
    area=AREA,
    requirements=["PROTO-GROUPINFO-ENCRYPTED-TO-REQUESTER"],
    description="the hub encrypts the GroupInfo and tree with an empty EncryptWithLabel context "
    "instead of the room id",
    departs=("hub.groupinfo.encrypt-to-room-context",),
)
CONSENT_UNKNOWN_USER_REVEALED = define(
    "consent-unknown-user-revealed",
    area=AREA,
    requirements=["PROTO-CONSENT-UNKNOWN-USER-HIDDEN"],
    description="requestConsent for an unknown user answers 201 like for a known one, but with a body "
    "saying the user is unknown",
    hooks={"consent.request.answer-reveals-nothing": lambda *args: unknown_user_revealed(*args)},
)
CONSENT_DECISION_REVEALED = define(
    "consent-decision-revealed",
    area=AREA,
    requirements=["PROTO-CONSENT-REQUESTER-LEARNS-NOTHING"],
    description="requestConsent answers 403 (instead of 201) when the target user has rejected the requester",
    hooks={"consent.request.answer-reveals-nothing": lambda *args: decision_revealed(*args)},
)
def pseudonym_as_user(text: str) -> bytes | None:
    """The "user" a faulty hub reads from a pseudonym URI (None: not a pseudonym); the hook of
    pseudonyms-accepted at step naming.user-of-uri.pseudonym-is-not-a-user."""
    from ..wire.identity import MimiUri, MimiUriError, UriKind

    try:
        parsed = MimiUri.parse(text)
    except MimiUriError:
        return None
    return parsed.format().encode() if parsed.kind is UriKind.pseudonym else None


PSEUDONYMS_ACCEPTED = define(
    "pseudonyms-accepted",
    area=AREA,
    requirements=["POLICY-BASE-PSEUDONYMS-NOT-ALLOWED"],
    description="the hub treats a pseudonym URI (/p/) in a credential as a user, so a room whose policy "
    "forbids pseudonyms accepts a pseudonymous member",
    hooks={"naming.user-of-uri.pseudonym-is-not-a-user": pseudonym_as_user},
)
OPEN_DOWNLOAD_PROXY = define(
    "open-download-proxy",
    area=AREA,
    requirements=["PROTO-ASSETS-PROXY-NO-OPEN-PROXY"],
    description="proxyDownload fetches any https URL, not only peer providers' asset hosts",
    departs=("hub.download.asset-hosts-only",),
)
SUBMIT_SENDER_IN_CLEAR = define(
    "submit-sender-in-clear",
    area=AREA,
    requirements=["PROTO-SUBMIT-SENDER-WIREFORMAT", "PROTO-FRANK-SENDER-HIDDEN"],
    description="the provider's clients put their client URI in the PrivateMessage authenticated_data "
    "(in clear) of every application message",
    departs=("follower.send.sender-not-in-clear",),
)


# --- hooks: called where the violations happen; each does nothing unless its fault is on ------------


# The hooks of step hub.submit.fanout-as-accepted: the hub's FanoutPlan for an accepted submitMessage
# (``room`` a HubRoom, ``request`` the decoded SubmitMessageRequest), changed in place; each returns None.


def fanout_to_departed_providers(room, request, sender_domain: str, plan) -> None:
    """FANOUT_TO_DEPARTED_PROVIDERS: every provider that ever had a client in the room gets the message too."""
    from ..room.naming import domain_of_uri

    for leaves in room.leaf_history.values():
        for user in leaves.values():
            domain = domain_of_uri(user)
            if domain is not None and domain not in plan.deliveries:
                plan.deliveries[domain] = list(next(iter(plan.deliveries.values()), []))


def fanout_names_sender(room, request, sender_domain: str, plan) -> None:
    """FANOUT_NAMES_SENDER: the submitted sendingUri goes out in clear (in a frank's signature field)."""
    from ..wire.mimi import Frank

    for messages in plan.deliveries.values():
        messages[:] = [
            m.replace(frank=Frank(server_frank=bytes(32), franking_signature_ciphersuite=room.view.suite.suite_id,
                                  franking_integrity_signature=bytes(request.sendingUri.uri)))
            for m in messages
        ]


def fanout_alters_ciphertext(room, request, sender_domain: str, plan) -> None:
    """FANOUT_ALTERS_CIPHERTEXT: a follower-submitted message reaches the other remote providers altered."""
    if sender_domain != room.identity.domain:  # relayed between followers
        for domain, messages in plan.deliveries.items():
            if domain in (sender_domain, room.identity.domain):
                continue
            out = []
            for m in messages:
                pm = m.message.private_message
                ciphertext = bytearray(bytes(pm.ciphertext))
                ciphertext[-1] ^= 0x01
                out.append(m.replace(message=m.message.replace(private_message=pm.replace(ciphertext=bytes(ciphertext)))))
            messages[:] = out


def abuse_report_echoed(body: bytes):
    """ABUSE_REPORT_ECHOED, at step hub.abuse.accept-without-body: 200 carrying the report's own bytes."""
    from ..server.transport import MimiResponse

    return MimiResponse(bytes(body), status=200)


def unknown_room_404(domain: str, room_id: str):
    """GROUPINFO_UNKNOWN_ROOM_404, at step hub.groupinfo.hide-unknown-room: HTTP 404 for a room the hub does
    not host (raised, as the transport answers an unknown room)."""
    from ..server.transport import MimiHTTPError

    raise MimiHTTPError(404, "unknown-room", f"{domain} hosts no room {room_id!r}")


# The hooks of step consent.request.answer-reveals-nothing (ReferenceProvider.handle_consent): (status, body)
# a faulty requestConsent handler answers instead of the receipt, or None (``state`` a ProviderState,
# ``entry`` the decoded ConsentEntry).


def unknown_user_revealed(state, entry, receipt) -> tuple[int, bytes] | None:
    """CONSENT_UNKNOWN_USER_REVEALED: 201 with a body saying the target is unknown."""
    if entry.consentOperation.name == "request" and receipt.status == 201 and not receipt.recorded:
        return 201, b"unknown user"
    return None


def decision_revealed(state, entry, receipt) -> tuple[int, bytes] | None:
    """CONSENT_DECISION_REVEALED: 403 when the target has rejected (revoked) the requester."""
    if entry.consentOperation.name != "request" or not receipt.recorded:
        return None
    requester = bytes(entry.requesterUri.uri).decode("utf-8", "replace")
    target = bytes(entry.targetUri.uri).decode("utf-8", "replace")
    room = bytes(entry.roomId.uri).decode("utf-8", "replace") if entry.roomId is not None else None
    return (403, b"") if state.consent.revoked(requester, target, room) else None



