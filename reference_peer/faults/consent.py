"""Faults of the consent area (checks: conformance/scenarios/test_consent.py, test_consent_core.py)."""

from .registry import define, define_variant

AREA = "consent"

# --- keyMaterial gate (target provider) -------------------------------------------------------------

CONSENT_FIRST_UNGATED = define(
    "consent-first-ungated-keymaterial", area=AREA,
    requirements=["EXT-CONSENT-FIRST-NO-KEYPACKAGES", "PROTO-KEYMAT-NOCONSENT", "EXT-CONSENT-ENUMERATION"],
    description="a consent-first user who never decided anything about the requester still hands out KeyPackages "
    "(so an existing, non-consenting user also answers unlike an unknown one)",
)
REFUSAL_CONSUMES_KEYPACKAGE = define(
    "consent-refusal-consumes-keypackage", area=AREA,
    requirements=["EXT-CONSENT-FIRST-NO-KEYPACKAGES"],
    description="a keyMaterial refused for lack of consent still marks one KeyPackage of each client as claimed",
)
ANY_ROOM_GRANT_IGNORED = define(
    "consent-first-any-room-grant-ignored", area=AREA,
    requirements=["EXT-CONSENT-FIRST-GRANT-OPENS", "PROTO-CONSENT-GRANT-ENABLES-KEYMAT"],
    description="in consent-first mode a grant without a roomId does not open keyMaterial (only room grants do)",
)
REVOKE_IGNORED = define(
    "consent-revoke-ignored", area=AREA,
    requirements=["EXT-CONSENT-FIRST-REVOKE-CLOSES", "PROTO-CONSENT-REVOKE-ENFORCED", "PROTO-KEYMAT-NOCONSENT"],
    description="a user's revoke is not recorded: an earlier grant keeps opening keyMaterial",
)
ROOM_GRANT_GLOBAL = define(
    "consent-room-grant-global", area=AREA,
    requirements=["EXT-CONSENT-ROOM-SCOPE", "PROTO-KEYMAT-NOCONSENT-FOR-ROOM", "PROTO-CONSENT-ROOM-OR-ANY"],
    description="a grant for one room opens keyMaterial for every room of that requester",
)
IMMEDIATE_DEMANDS_CONSENT = define(
    "consent-immediate-override-demands-consent", area=AREA,
    requirements=["EXT-CONSENT-IMMEDIATE-KEYMATERIAL"],
    description="a user whose own consent mode is immediate is gated like consent-first (keyMaterial answers noConsent)",
)
QUARANTINE_REFUSES_KEYMATERIAL = define(
    "consent-quarantine-refuses-keymaterial", area=AREA,
    requirements=["EXT-CONSENT-QUARANTINE-ADD-SUCCEEDS"],
    description="a quarantine-mode user's keyMaterial answers noConsent instead of KeyPackages (held-room adds fail)",
)

# --- consent messages -----------------------------------------------------------------------------

# Bodies on consent answers are an allowed variant: -06 §5.7 names the status only ("usually a 201
# Accepted"), and says "no body" for /notify and abuse reports, never for consent answers.
REQUEST_ANSWER_BODY = define_variant(
    "consent-request-answer-with-body", area=AREA,
    permitted_by="-06 §5.7 names only the status of a requestConsent answer ('usually a 201 Accepted'); "
                 "nothing forbids a body",
    description="requestConsent (request) is answered 201 with a body saying whether the target saw it",
)
UPDATE_ANSWER_BODY = define_variant(
    "consent-update-answer-with-body", area=AREA,
    permitted_by="-06 §5.7 names only the status of an updateConsent answer ('usually a 201 Accepted'); "
                 "nothing forbids a body",
    description="updateConsent is answered 201 with a body",
)
REQUEST_NOT_RECORDED = define(
    "consent-request-not-recorded", area=AREA,
    requirements=["EXT-CONSENT-FIRST-REQUEST-201"],
    description="requestConsent (request) is answered 201 but never recorded as pending for the target",
)
# A refusal only for users the provider does not know, so that no outbox of the suite's peers (which
# never ask about unknown users) stalls behind it in a shared run.
UNKNOWN_USER_FORBIDDEN = define(
    "consent-unknown-user-forbidden", area=AREA,
    requirements=["PROTO-CONSENT-REQUEST-RESPONSE", "PROTO-CONSENT-UPDATE-RESPONSE"],
    description="requestConsent for an unknown target and updateConsent for an unknown requester are answered "
                "403, none of the answers -06 §5.7 lists (201, 404 or a 500-class status)",
)


def answer_status(operation: str, status: int, recorded: bool) -> int:
    """The status of a consent answer: 403 instead of 201/404 for an unknown user under UNKNOWN_USER_FORBIDDEN
    (a request, grant or revoke is recorded unless its local user is unknown; a cancel may match nothing)."""
    from .registry import active

    if active(UNKNOWN_USER_FORBIDDEN) and operation != "cancel" and not recorded and status in (201, 404):
        return 403
    return status


CANCEL_ANY_SCOPE = define(
    "consent-cancel-any-scope", area=AREA,
    requirements=["EXT-CONSENT-CANCEL-SAME-SCOPE"],
    description="a received cancel removes every pending request of that requester, whatever its roomId",
)
CANCEL_IGNORED = define(
    "consent-cancel-ignored", area=AREA,
    requirements=["EXT-CONSENT-CANCEL-SAME-SCOPE"],
    description="a received cancel with the identical scope leaves the pending request in place",
)
CANCEL_NO_MATCH_REFUSED = define(
    "consent-cancel-no-match-refused", area=AREA,
    requirements=["PROTO-CONSENT-CANCEL-NO-MATCH"],
    description="a received cancel matching no pending request is answered 400 instead of 201",
)
UPDATE_FROM_ANY_DOMAIN = define(
    "consent-update-from-any-domain", area=AREA,
    requirements=["PROTO-CONSENT-UPDATE-DOMAINS"],
    description="updateConsent is accepted from any provider: a grant or revoke naming one of our users as target, "
    "sent by a provider that is not the target's, is recorded as that user's own decision",
)
ROOM_DECISION_ANY_ROOM = define(
    "consent-room-decision-any-room", area=AREA,
    requirements=["PROTO-CONSENT-ROOM-OR-ANY"],
    description="a grant or revoke naming a room is recorded for every room of that requester",
)
CANCEL_SCOPE_CHANGED = define(
    "consent-cancel-drops-room", area=AREA,
    requirements=["PROTO-CONSENT-CANCEL-SAME-SCOPE"],
    description="a cancel the provider sends for a room-scoped request omits the roomId",
)

# --- modes: delivery ---------------------------------------------------------------------------------

IMMEDIATE_HOLDS = define(
    "consent-immediate-override-holds-rooms", area=AREA,
    requirements=["EXT-CONSENT-IMMEDIATE-DELIVERY"],
    description="a user whose own consent mode is immediate gets rooms held as in quarantine",
)
QUARANTINE_LEAKS = define(
    "consent-quarantine-leaks-held", area=AREA,
    requirements=["EXT-CONSENT-QUARANTINE-HOLD", "EXT-CONSENT-QUARANTINE-REJECT-DROPS"],
    description="items of a held room are stored and also delivered to the target's clients before the accept",
)
QUARANTINE_NOTIFY_BODY = define(
    "consent-quarantine-notify-reveals-hold", area=AREA,
    requirements=["EXT-CONSENT-QUARANTINE-NOTIFY-201"],
    description="/notify for a room held for a local user is answered 201 with a body saying the room is held",
)
QUARANTINE_RELEASE_REVERSED = define(
    "consent-quarantine-release-reversed", area=AREA,
    requirements=["EXT-CONSENT-QUARANTINE-RELEASE"],
    description="on accept the held items after the Welcome are released in reverse fan-out order",
)
QUARANTINE_REJECT_DELIVERS = define(
    "consent-quarantine-reject-delivers", area=AREA,
    requirements=["EXT-CONSENT-QUARANTINE-REJECT-DROPS"],
    description="a reject releases the held items to the clients instead of dropping them",
)


# --- hooks: called where the violation happens; each is a no-op (None / False) with its fault off ---


def _user_override(store, user: str) -> str | None:
    row = store.conn.execute("SELECT consent_mode FROM users WHERE uri = ?", (user,)).fetchone()
    return None if row is None else row[0]


def keymaterial_verdict(consent, decisions: dict, requester: str, target: str, room: str | None):
    """The ConsentVerdict a faulty ConsentState.decide_keymaterial answers instead (None: no fault on).
    ``consent`` is the ConsentState, ``decisions`` its room key ("" = any room) -> Decision map."""
    from .registry import active

    names = (CONSENT_FIRST_UNGATED, ANY_ROOM_GRANT_IGNORED, ROOM_GRANT_GLOBAL, IMMEDIATE_DEMANDS_CONSENT,
             QUARANTINE_REFUSES_KEYMATERIAL)
    if not any(active(n) for n in names):
        return None
    from ..provider.consent import ConsentMode, ConsentVerdict, Decision

    mode = consent.mode_for(target)
    granted = [key for key, d in decisions.items() if d == Decision.grant]
    revoked = any(d == Decision.revoke for key, d in decisions.items() if key in ("", room or ""))
    if active(CONSENT_FIRST_UNGATED) and mode == ConsentMode.consent_first and not decisions:
        return ConsentVerdict.allowed
    if active(ANY_ROOM_GRANT_IGNORED) and mode == ConsentMode.consent_first and not revoked:
        if "" in granted and (room or "") not in granted:
            return ConsentVerdict.noConsent
    if active(ROOM_GRANT_GLOBAL) and granted and not revoked:
        return ConsentVerdict.allowed
    override = _user_override(consent._store, target)
    if active(IMMEDIATE_DEMANDS_CONSENT) and override == str(ConsentMode.immediate) and not granted:
        return ConsentVerdict.noConsent
    if active(QUARANTINE_REFUSES_KEYMATERIAL) and mode == ConsentMode.quarantine:
        return ConsentVerdict.noConsent
    return None


def on_refusal(conn, target: str, now: int) -> None:
    """A keyMaterial for ``target`` was refused for lack of consent: the faulty claim consumes anyway."""
    from .registry import active

    if active(REFUSAL_CONSUMES_KEYPACKAGE):
        conn.execute(
            "UPDATE key_packages SET claimed_at = ? WHERE id IN (SELECT MIN(k.id) FROM key_packages k "
            "JOIN clients c ON c.uri = k.client_uri WHERE c.user_uri = ? AND k.claimed_at IS NULL "
            "AND k.last_resort = 0 GROUP BY k.client_uri)",
            (now, target),
        )


def cancel_where(requester: str, target: str, room_key: str) -> tuple[str, tuple] | None:
    """(WHERE clause, parameters) of the consent_requests a faulty cancel deletes; None: no fault on."""
    from .registry import active

    if active(CANCEL_IGNORED):
        return "0", ()
    if active(CANCEL_ANY_SCOPE):
        return "requester = ? AND target = ?", (requester, target)
    return None


def on_cancel_no_match() -> None:
    """A received cancel matched no pending request: the faulty provider refuses it (answered 400)."""
    from .registry import active

    if active(CANCEL_NO_MATCH_REFUSED):
        raise ValueError("no pending consent request matches this cancel")


def skips_update_domains(operation: str) -> bool:
    """Whether a faulty provider skips the §5.7 domain rule for an updateConsent (grant/revoke)."""
    from .registry import active

    return operation in ("grant", "revoke") and active(UPDATE_FROM_ANY_DOMAIN)


def misdirected_update(consent, operation: str, requester: str, target: str, room: str | None,
                       local_domains) -> bool:
    """A faulty provider records an updateConsent whose target is one of its own users as that user's
    decision (whoever sent it). True when it did so (the handler answers 201); False with the fault off."""
    from .registry import active

    if not active(UPDATE_FROM_ANY_DOMAIN) or operation not in ("grant", "revoke"):
        return False
    from ..provider.consent import ConsentScope, Decision, uri_domain

    if uri_domain(target) not in {d.lower() for d in local_domains}:
        return False
    consent.record_decision(ConsentScope(requester, target, room or None), Decision(operation))
    return True


def decision_scope(scope):
    """The scope a faulty provider records a grant/revoke under: a room-scoped one for every room."""
    from .registry import active

    if active(ROOM_DECISION_ANY_ROOM) and scope.room is not None:
        from ..provider.consent import ConsentScope

        return ConsentScope(scope.requester, scope.target, None)
    return scope


def sent_cancel_room(room: str | None) -> str | None:
    """The roomId our provider puts in a cancel it sends for a request scoped to ``room``."""
    from .registry import active

    return None if active(CANCEL_SCOPE_CHANGED) else room


def revoke_recorded() -> bool:
    from .registry import active

    return not active(REVOKE_IGNORED)


def reject_delivers() -> bool:
    from .registry import active

    return active(QUARANTINE_REJECT_DELIVERS)


def holds_immediate_override(store, user: str) -> bool:
    """A faulty note_added also holds rooms of users whose own mode is immediate."""
    from .registry import active

    return active(IMMEDIATE_HOLDS) and _user_override(store, user) == "immediate"


def leaks_held() -> bool:
    from .registry import active

    return active(QUARANTINE_LEAKS)


def release_order(rows: list) -> list:
    """Held rows in the order a faulty accept releases them (the Welcome first, the rest reversed)."""
    from .registry import active

    if active(QUARANTINE_RELEASE_REVERSED) and len(rows) > 2:
        return [rows[0], *reversed(rows[1:])]
    return rows


def consent_answer_body(operation: str) -> bytes:
    """The body of the 201 answering a requestConsent / updateConsent (empty unless a fault is on)."""
    from .registry import active

    if operation == "request" and active(REQUEST_ANSWER_BODY):
        return b"received; not yet seen by the target"
    if operation in ("grant", "revoke") and active(UPDATE_ANSWER_BODY):
        return b"consent update recorded"
    return b""


def notify_body(state, room: str) -> bytes:
    """The body of the 201 answering a /notify (empty unless the fault is on and the room is held here)."""
    from .registry import active

    if not active(QUARANTINE_NOTIFY_BODY):
        return b""
    row = state.store.conn.execute(
        "SELECT 1 FROM held_rooms WHERE room_id = ? AND state = 'held'", (room,)
    ).fetchone()
    return b"room held for a local user" if row else b""
