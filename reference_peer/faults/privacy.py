"""Faults of the privacy area (checks: conformance/scenarios/test_privacy.py)."""

from .registry import define

AREA = "privacy"

FANOUT_NAMES_SENDER = define(
    "fanout-names-sender",
    area=AREA,
    requirements=["PROTO-FRANK-SENDER-HIDDEN"],
    description="the hub fans out an application message with the submitted sendingUri in clear "
    "(carried in a frank's signature field)",
)
FANOUT_TO_DEPARTED_PROVIDERS = define(
    "fanout-to-departed-providers",
    area=AREA,
    requirements=["PROTO-FANOUT-ONLY-ACTIVE-PROVIDERS"],
    description="the hub keeps fanning application messages out to providers whose last participant "
    "left the room",
)
FANOUT_ALTERS_CIPHERTEXT = define(
    "fanout-alters-ciphertext",
    area=AREA,
    requirements=["PROTO-FANOUT-TO-ACTIVE-PROVIDERS"],
    description="the hub forwards a follower-submitted PrivateMessage altered (last ciphertext byte flipped) to "
    "the other remote providers, instead of the bytes it accepted",
)
GROUPINFO_UNKNOWN_ROOM_404 = define(
    "groupinfo-unknown-room-404",
    area=AREA,
    requirements=["PROTO-GROUPINFO-NO-SUCH-ROOM"],
    description="groupInfo for a room that does not exist answers HTTP 404 (neither noSuchRoom nor "
    "notAuthorized), unlike a room that exists: room existence leaks",
)
GROUPINFO_WRONG_CONTEXT = define(
    "groupinfo-wrong-context",
    area=AREA,
    requirements=["PROTO-GROUPINFO-ENCRYPTED-TO-REQUESTER"],
    description="the hub encrypts the GroupInfo and tree with an empty EncryptWithLabel context "
    "instead of the room id",
)
CONSENT_UNKNOWN_USER_REVEALED = define(
    "consent-unknown-user-revealed",
    area=AREA,
    requirements=["PROTO-CONSENT-UNKNOWN-USER-HIDDEN"],
    description="requestConsent for an unknown user answers 201 like for a known one, but with a body "
    "saying the user is unknown",
)
CONSENT_DECISION_REVEALED = define(
    "consent-decision-revealed",
    area=AREA,
    requirements=["PROTO-CONSENT-REQUESTER-LEARNS-NOTHING"],
    description="requestConsent answers 403 (instead of 201) when the target user has rejected the requester",
)
PSEUDONYMS_ACCEPTED = define(
    "pseudonyms-accepted",
    area=AREA,
    requirements=["POLICY-BASE-PSEUDONYMS-NOT-ALLOWED"],
    description="the hub treats a pseudonym URI (/p/) in a credential as a user, so a room whose policy "
    "forbids pseudonyms accepts a pseudonymous member",
)
OPEN_DOWNLOAD_PROXY = define(
    "open-download-proxy",
    area=AREA,
    requirements=["PROTO-ASSETS-PROXY-NO-OPEN-PROXY"],
    description="proxyDownload fetches any https URL, not only peer providers' asset hosts",
)
SUBMIT_SENDER_IN_CLEAR = define(
    "submit-sender-in-clear",
    area=AREA,
    requirements=["PROTO-SUBMIT-SENDER-WIREFORMAT", "PROTO-FRANK-SENDER-HIDDEN"],
    description="the provider's clients put their client URI in the PrivateMessage authenticated_data "
    "(in clear) of every application message",
)


# --- hooks: called where the violations happen; each does nothing unless its fault is on ------------


def on_submit_fanout(room, request, sender_domain: str, plan) -> None:
    """The hub's FanoutPlan for an accepted submitMessage (``room`` a HubRoom, ``request`` the decoded
    SubmitMessageRequest), changed in place by the fan-out faults that are on."""
    from ..room.naming import domain_of_uri
    from ..wire.mimi import Frank
    from .registry import active

    if active(FANOUT_TO_DEPARTED_PROVIDERS):
        for leaves in room.leaf_history.values():
            for user in leaves.values():
                domain = domain_of_uri(user)
                if domain is not None and domain not in plan.deliveries:
                    plan.deliveries[domain] = list(next(iter(plan.deliveries.values()), []))
    if active(FANOUT_NAMES_SENDER):
        for messages in plan.deliveries.values():
            messages[:] = [
                m.replace(frank=Frank(server_frank=bytes(32), franking_signature_ciphersuite=room.view.suite.suite_id,
                                      franking_integrity_signature=bytes(request.sendingUri.uri)))
                for m in messages
            ]
    if active(FANOUT_ALTERS_CIPHERTEXT) and sender_domain != room.identity.domain:  # relayed between followers
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


def consent_answer(state, entry, receipt) -> tuple[int, bytes] | None:
    """(status, body) a faulty requestConsent handler answers instead of the receipt; None when no
    consent fault is on (``state`` a ProviderState, ``entry`` the decoded ConsentEntry)."""
    from .registry import active

    if entry.consentOperation.name != "request":
        return None
    requester = bytes(entry.requesterUri.uri).decode("utf-8", "replace")
    target = bytes(entry.targetUri.uri).decode("utf-8", "replace")
    room = bytes(entry.roomId.uri).decode("utf-8", "replace") if entry.roomId is not None else None
    if active(CONSENT_UNKNOWN_USER_REVEALED) and receipt.status == 201 and not receipt.recorded:
        return 201, b"unknown user"
    if active(CONSENT_DECISION_REVEALED) and receipt.recorded and state.consent.revoked(requester, target, room):
        return 403, b""
    return None


def pseudonym_as_user(text: str) -> bytes | None:
    """The "user" a faulty hub reads from a pseudonym URI (None: not a pseudonym, or no fault on)."""
    from ..wire.identity import MimiUri, MimiUriError, UriKind
    from .registry import active

    if not active(PSEUDONYMS_ACCEPTED):
        return None
    try:
        parsed = MimiUri.parse(text)
    except MimiUriError:
        return None
    return parsed.format().encode() if parsed.kind is UriKind.pseudonym else None

