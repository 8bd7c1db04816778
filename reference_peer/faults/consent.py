"""Faults of the consent area (checks: conformance/scenarios/test_consent.py, test_consent_core.py)."""

from .registry import define, define_variant

AREA = "consent"

# --- keyMaterial gate (target provider) -------------------------------------------------------------
# Hooks of the consent.keymaterial.* steps (ConsentState.decide_keymaterial): each is called with
# (consent, decisions, requester, target, room) -- ``consent`` the ConsentState, ``decisions`` its room key
# ("" = any room) -> Decision map -- and answers the ConsentVerdict its fault gives instead, or None.


def _verdict_ungated(consent, decisions: dict, requester: str, target: str, room: str | None):
    from ..provider.consent import ConsentMode, ConsentVerdict

    if consent.mode_for(target) == ConsentMode.consent_first and not decisions:
        return ConsentVerdict.allowed
    return None


def _verdict_any_room_grant_ignored(consent, decisions: dict, requester: str, target: str, room: str | None):
    from ..provider.consent import ConsentMode, ConsentVerdict, Decision

    granted = [key for key, d in decisions.items() if d == Decision.grant]
    revoked = any(d == Decision.revoke for key, d in decisions.items() if key in ("", room or ""))
    if consent.mode_for(target) == ConsentMode.consent_first and not revoked:
        if "" in granted and (room or "") not in granted:
            return ConsentVerdict.noConsent
    return None


def _verdict_room_grant_global(consent, decisions: dict, requester: str, target: str, room: str | None):
    from ..provider.consent import ConsentVerdict, Decision

    granted = [key for key, d in decisions.items() if d == Decision.grant]
    revoked = any(d == Decision.revoke for key, d in decisions.items() if key in ("", room or ""))
    if granted and not revoked:
        return ConsentVerdict.allowed
    return None


def _verdict_immediate_demands_consent(consent, decisions: dict, requester: str, target: str, room: str | None):
    from ..provider.consent import ConsentMode, ConsentVerdict, Decision

    granted = [key for key, d in decisions.items() if d == Decision.grant]
    if _user_override(consent._store, target) == str(ConsentMode.immediate) and not granted:
        return ConsentVerdict.noConsent
    return None


def _verdict_quarantine_refuses(consent, decisions: dict, requester: str, target: str, room: str | None):
    from ..provider.consent import ConsentMode, ConsentVerdict

    if consent.mode_for(target) == ConsentMode.quarantine:
        return ConsentVerdict.noConsent
    return None


def _refusal_consumes(conn, target: str, now: int) -> None:
    """A keyMaterial for ``target`` was refused for lack of consent: the faulty claim consumes anyway."""
    conn.execute(
        "UPDATE key_packages SET claimed_at = ? WHERE id IN (SELECT MIN(k.id) FROM key_packages k "
        "JOIN clients c ON c.uri = k.client_uri WHERE c.user_uri = ? AND k.claimed_at IS NULL "
        "AND k.last_resort = 0 GROUP BY k.client_uri)",
        (now, target),
    )


CONSENT_FIRST_UNGATED = define(
    "consent-first-ungated-keymaterial", area=AREA,
    requirements=["EXT-CONSENT-FIRST-NO-KEYPACKAGES", "PROTO-KEYMAT-NOCONSENT", "EXT-CONSENT-ENUMERATION"],
    description="a consent-first user who never decided anything about the requester still hands out KeyPackages "
    "(so an existing, non-consenting user also answers unlike an unknown one)",
    hooks={"consent.keymaterial.consent-first-gated": _verdict_ungated},
)
REFUSAL_CONSUMES_KEYPACKAGE = define(
    "consent-refusal-consumes-keypackage", area=AREA,
    requirements=["EXT-CONSENT-FIRST-NO-KEYPACKAGES"],
    description="a keyMaterial refused for lack of consent still marks one KeyPackage of each client as claimed",
    hooks={"keymaterial.claim.refusal-claims-nothing": _refusal_consumes},
)
ANY_ROOM_GRANT_IGNORED = define(
    "consent-first-any-room-grant-ignored", area=AREA,
    requirements=["EXT-CONSENT-FIRST-GRANT-OPENS", "PROTO-CONSENT-GRANT-ENABLES-KEYMAT"],
    description="in consent-first mode a grant without a roomId does not open keyMaterial (only room grants do)",
    hooks={"consent.keymaterial.any-room-grant-opens": _verdict_any_room_grant_ignored},
)
REVOKE_IGNORED = define(
    "consent-revoke-ignored", area=AREA,
    requirements=["EXT-CONSENT-FIRST-REVOKE-CLOSES", "PROTO-CONSENT-REVOKE-ENFORCED", "PROTO-KEYMAT-NOCONSENT"],
    description="a user's revoke is not recorded: an earlier grant keeps opening keyMaterial",
    departs=("provider.revoke.record",),
)
ROOM_GRANT_GLOBAL = define(
    "consent-room-grant-global", area=AREA,
    requirements=["EXT-CONSENT-ROOM-SCOPE", "PROTO-KEYMAT-NOCONSENT-FOR-ROOM", "PROTO-CONSENT-ROOM-OR-ANY"],
    description="a grant for one room opens keyMaterial for every room of that requester",
    hooks={"consent.keymaterial.room-grant-scoped": _verdict_room_grant_global},
)
IMMEDIATE_DEMANDS_CONSENT = define(
    "consent-immediate-override-demands-consent", area=AREA,
    requirements=["EXT-CONSENT-IMMEDIATE-KEYMATERIAL"],
    description="a user whose own consent mode is immediate is gated like consent-first (keyMaterial answers noConsent)",
    hooks={"consent.keymaterial.immediate-user-open": _verdict_immediate_demands_consent},
)
def _verdict_default_mode_demands_consent(consent, decisions: dict, requester: str, target: str, room: str | None):
    """Hook of step consent.keymaterial.immediate-user-open: a user with no mode of its own, whose provider's
    default mode is immediate, is gated like consent-first."""
    from ..provider.consent import ConsentMode, ConsentVerdict, Decision

    granted = [key for key, d in decisions.items() if d == Decision.grant]
    if (_user_override(consent._store, target) is None and consent.settings.default_mode == ConsentMode.immediate
            and not granted):
        return ConsentVerdict.noConsent
    return None


DEFAULT_MODE_DEMANDS_CONSENT = define(
    "consent-default-mode-demands-consent", area=AREA,
    requirements=["EXT-CONSENT-IMMEDIATE-KEYMATERIAL"],
    description="a user created without a consent mode of its own is gated like consent-first (keyMaterial answers "
                "noConsent), although the provider's declared default mode is immediate",
    hooks={"consent.keymaterial.immediate-user-open": _verdict_default_mode_demands_consent},
)
QUARANTINE_REFUSES_KEYMATERIAL = define(
    "consent-quarantine-refuses-keymaterial", area=AREA,
    requirements=["EXT-CONSENT-QUARANTINE-ADD-SUCCEEDS"],
    description="a quarantine-mode user's keyMaterial answers noConsent instead of KeyPackages (held-room adds fail)",
    hooks={"consent.keymaterial.quarantine-open": _verdict_quarantine_refuses},
)

# --- consent messages -----------------------------------------------------------------------------

# Hooks of step consent.answer.without-body (the peer's consent handler), called with the operation name:
# the body of the 201 answering a requestConsent / updateConsent, or None (no body).


def _request_answer_body(operation: str) -> bytes | None:
    return b"received; not yet seen by the target" if operation == "request" else None


def _update_answer_body(operation: str) -> bytes | None:
    return b"consent update recorded" if operation in ("grant", "revoke") else None


# Bodies on consent answers are an allowed variant: -06 §5.7 names the status only ("usually a 201
# Accepted"), and says "no body" for /notify and abuse reports, never for consent answers.
REQUEST_ANSWER_BODY = define_variant(
    "consent-request-answer-with-body", area=AREA,
    permitted_by="-06 §5.7 names only the status of a requestConsent answer ('usually a 201 Accepted'); "
                 "nothing forbids a body",
    description="requestConsent (request) is answered 201 with a body saying whether the target saw it",
    hooks={"consent.answer.without-body": _request_answer_body},
)
UPDATE_ANSWER_BODY = define_variant(
    "consent-update-answer-with-body", area=AREA,
    permitted_by="-06 §5.7 names only the status of an updateConsent answer ('usually a 201 Accepted'); "
                 "nothing forbids a body",
    description="updateConsent is answered 201 with a body",
    hooks={"consent.answer.without-body": _update_answer_body},
)
REQUEST_NOT_RECORDED = define(
    "consent-request-not-recorded", area=AREA,
    requirements=["EXT-CONSENT-FIRST-REQUEST-201"],
    description="requestConsent (request) is answered 201 but never recorded as pending for the target",
    departs=("provider.request-consent.record",),
)


def _unknown_user_forbidden(operation: str, status: int, recorded: bool) -> int | None:
    """Hook of step consent.answer.status: 403 instead of 201/404 for an unknown user (a request,
    grant or revoke is recorded unless its local user is unknown; a cancel may match nothing)."""
    if operation != "cancel" and not recorded and status in (201, 404):
        return 403
    return None


# A refusal only for users the provider does not know, so that no outbox of the suite's peers (which
# never ask about unknown users) stalls behind it in a shared run.
UNKNOWN_USER_FORBIDDEN = define(
    "consent-unknown-user-forbidden", area=AREA,
    requirements=["PROTO-CONSENT-REQUEST-RESPONSE", "PROTO-CONSENT-UPDATE-RESPONSE"],
    description="requestConsent for an unknown target and updateConsent for an unknown requester are answered "
                "403, none of the answers -06 §5.7 lists (201, 404 or a 500-class status)",
    hooks={"consent.answer.status": _unknown_user_forbidden},
)


def _cancel_ignored(requester: str, target: str, room_key: str) -> tuple[str, tuple]:
    """Hooks of step consent.cancel.same-scope-only: (WHERE clause, parameters) of the consent_requests
    a faulty cancel deletes."""
    return "0", ()


def _cancel_any_scope(requester: str, target: str, room_key: str) -> tuple[str, tuple]:
    return "requester = ? AND target = ?", (requester, target)


def _cancel_no_match_refused() -> None:
    """Hook of step consent.cancel.no-match-accepted: the faulty provider refuses (answered 400)."""
    raise ValueError("no pending consent request matches this cancel")


def _misdirected_update(consent, operation: str, requester: str, target: str, room: str | None,
                        local_domains) -> bool | None:
    """Hook of step provider.update-consent.notice-only: a faulty provider records an updateConsent whose
    target is one of its own users as that user's decision (whoever sent it). True when it did so (the
    handler answers 201)."""
    if operation not in ("grant", "revoke"):
        return None
    from ..provider.consent import ConsentScope, Decision, uri_domain

    if uri_domain(target) not in {d.lower() for d in local_domains}:
        return None
    consent.record_decision(ConsentScope(requester, target, room or None), Decision(operation))
    return True


def _decision_any_room(scope):
    """Hook of step consent.decision.keep-room-scope: a room-scoped grant/revoke recorded for every room."""
    if scope.room is None:
        return None
    from ..provider.consent import ConsentScope

    return ConsentScope(scope.requester, scope.target, None)


CANCEL_ANY_SCOPE = define(
    "consent-cancel-any-scope", area=AREA,
    requirements=["EXT-CONSENT-CANCEL-SAME-SCOPE"],
    description="a received cancel removes every pending request of that requester, whatever its roomId",
    hooks={"consent.cancel.same-scope-only": _cancel_any_scope},
)
CANCEL_IGNORED = define(
    "consent-cancel-ignored", area=AREA,
    requirements=["EXT-CONSENT-CANCEL-SAME-SCOPE"],
    description="a received cancel with the identical scope leaves the pending request in place",
    hooks={"consent.cancel.same-scope-only": _cancel_ignored},
)
CANCEL_NO_MATCH_REFUSED = define(
    "consent-cancel-no-match-refused", area=AREA,
    requirements=["PROTO-CONSENT-CANCEL-NO-MATCH"],
    description="a received cancel matching no pending request is answered 400 instead of 201",
    hooks={"consent.cancel.no-match-accepted": _cancel_no_match_refused},
)
UPDATE_FROM_ANY_DOMAIN = define(
    "consent-update-from-any-domain", area=AREA,
    requirements=["PROTO-CONSENT-UPDATE-DOMAINS"],
    description="updateConsent is accepted from any provider: a grant or revoke naming one of our users as target, "
    "sent by a provider that is not the target's, is recorded as that user's own decision",
    departs=("consent.update.check-domains",),
    hooks={"provider.update-consent.notice-only": _misdirected_update},
)


def _well_scoped_update_refused(operation: str) -> None:
    """Hook of step consent.update.accept-well-scoped: the faulty provider reads the domain rule backwards
    and refuses every updateConsent (answered 403), a well-scoped one included."""
    if operation in ("grant", "revoke"):
        from ..provider.consent import ConsentDomainError

        raise ConsentDomainError(f"{operation}: the requesterUri is not the sending provider's (read backwards)")


UPDATE_DOMAINS_BACKWARDS = define(
    "consent-update-domains-backwards", area=AREA,
    requirements=["PROTO-CONSENT-UPDATE-DOMAINS"],
    description="updateConsent is refused (403) when its requesterUri is ours and its targetUri the sender's: "
    "the well-scoped update is the one refused",
    hooks={"consent.update.accept-well-scoped": _well_scoped_update_refused},
)
REQUEST_FROM_ANY_REQUESTER_DOMAIN = define(
    "consent-request-any-requester-domain", area=AREA,
    requirements=["PROTO-CONSENT-REQUEST-DOMAINS"],
    description="a requestConsent whose requesterUri belongs to a provider other than the sender is recorded as a "
    "pending request like any other",
    departs=("consent.request.requester-in-sender-domains",),
)
DECISION_WIPES_OTHER_ROOM_REQUESTS = define(
    "consent-decision-wipes-other-room-requests", area=AREA,
    requirements=["EXT-CONSENT-FIRST-REQUEST-201"],
    description="a user's grant or revoke naming one room also removes the requester's pending requests for "
    "every other room",
    departs=("consent.decision.resolves-same-scope",),
)
ROOM_DECISION_ANY_ROOM = define(
    "consent-room-decision-any-room", area=AREA,
    requirements=["PROTO-CONSENT-ROOM-OR-ANY"],
    description="a grant or revoke naming a room is recorded for every room of that requester",
    hooks={"consent.decision.keep-room-scope": _decision_any_room},
)
CANCEL_ANSWERED_200 = define(
    "consent-cancel-answered-200", area=AREA,
    requirements=["PROTO-CONSENT-CANCEL-NO-MATCH"],
    description="a received cancel is answered 200 OK instead of 201 Accepted",
    hooks={"provider.request-consent.cancel-answered-201": lambda: 200},
)
CONSENT_SENT_TO_ITSELF = define(
    "consent-sent-to-own-provider", area=AREA,
    requirements=["PROTO-CONSENT-DIRECT", "EXT-CONSENT-FIRST-GRANT-SENT"],
    description="the requestConsent and updateConsent the provider sends are addressed to its own domain, not to "
                "the provider at the other end of the scope, so they never reach it",
    departs=("provider.consent.send-to-the-other-provider",),
)
CANCEL_SCOPE_CHANGED = define(
    "consent-cancel-drops-room", area=AREA,
    requirements=["PROTO-CONSENT-CANCEL-SAME-SCOPE"],
    description="a cancel the provider sends for a room-scoped request omits the roomId",
    departs=("provider.request-consent.cancel-same-scope",),
)

# --- modes: delivery ---------------------------------------------------------------------------------


def _holds_immediate_override(store, user: str) -> bool | None:
    """Hook of step consent.quarantine.hold-only-quarantine: a faulty note_added also holds rooms of users
    whose own mode is immediate (True: hold)."""
    return True if _user_override(store, user) == "immediate" else None


def _release_reversed(rows: list) -> list | None:
    """Hook of step consent.quarantine.release-in-order: held rows in the order a faulty accept releases
    them (the Welcome first, the rest reversed)."""
    if len(rows) > 2:
        return [rows[0], *reversed(rows[1:])]
    return None


IMMEDIATE_HOLDS = define(
    "consent-immediate-override-holds-rooms", area=AREA,
    requirements=["EXT-CONSENT-IMMEDIATE-DELIVERY"],
    description="a user whose own consent mode is immediate gets rooms held as in quarantine",
    hooks={"consent.quarantine.hold-only-quarantine": _holds_immediate_override},
)
QUARANTINE_ROOM_GRANT_HELD = define(
    "consent-quarantine-room-grant-held", area=AREA,
    requirements=["EXT-CONSENT-QUARANTINE-GRANTED-NOT-HELD"],
    description="a quarantine-mode user's grant naming a room does not keep that room from being held (only a "
                "grant for every room does)",
    departs=("consent.quarantine.room-grant-not-held",),
)
QUARANTINE_LEAKS = define(
    "consent-quarantine-leaks-held", area=AREA,
    requirements=["EXT-CONSENT-QUARANTINE-HOLD", "EXT-CONSENT-QUARANTINE-REJECT-DROPS"],
    description="items of a held room are stored and also delivered to the target's clients before the accept",
    departs=("consent.quarantine.withhold-held",),
)
QUARANTINE_NOTIFY_BODY = define(
    "consent-quarantine-notify-reveals-hold", area=AREA,
    requirements=["EXT-CONSENT-QUARANTINE-NOTIFY-201"],
    description="/notify for a room held for a local user is answered 201 with a body saying the room is held",
    hooks={"follower.notify.answer-without-body": lambda state, room: notify_body(state, room)},
)
QUARANTINE_RELEASE_REVERSED = define(
    "consent-quarantine-release-reversed", area=AREA,
    requirements=["EXT-CONSENT-QUARANTINE-RELEASE"],
    description="on accept the held items after the Welcome are released in reverse fan-out order",
    hooks={"consent.quarantine.release-in-order": _release_reversed},
)
QUARANTINE_REJECT_DELIVERS = define(
    "consent-quarantine-reject-delivers", area=AREA,
    requirements=["EXT-CONSENT-QUARANTINE-REJECT-DROPS"],
    description="a reject releases the held items to the clients instead of dropping them",
    departs=("provider.revoke.drop-held",),
)
QUARANTINE_REJECT_FORGOTTEN = define(
    "consent-quarantine-reject-forgotten", area=AREA,
    requirements=["EXT-CONSENT-QUARANTINE-REJECTED-STAYS"],
    description="a rejected room does not stay rejected: the Welcome of a re-add, and the room's later items, are "
                "delivered to the target's clients without an accept",
    departs=("consent.quarantine.rejected-stays-rejected",),
)

# --- revoke scopes ----------------------------------------------------------------------------------


def _revoke_clears_other_rooms(conn, scope) -> None:
    """Hook of step consent.decision.revoke-keeps-other-rooms: a revoke naming one room also erases the
    requester's grants for every other room."""
    conn.execute(
        "DELETE FROM consent_decisions WHERE requester = ? AND target = ? AND room_id NOT IN ('', ?) "
        "AND decision = 'grant'",
        (scope.requester, scope.target, scope.room_key),
    )


def _verdict_room_grant_outlives_revoke(consent, decisions: dict, requester: str, target: str, room: str | None):
    """Hook of step consent.keymaterial.any-room-revoke-wins: the most specific decision wins, so a grant for
    the room outlives a later revoke for every room."""
    from ..provider.consent import ConsentVerdict, Decision

    if room is not None and decisions.get(room) == Decision.grant and decisions.get("") == Decision.revoke:
        return ConsentVerdict.allowed
    return None


ROOM_REVOKE_CLEARS_OTHER_ROOMS = define(
    "consent-room-revoke-clears-other-rooms", area=AREA,
    requirements=["EXT-CONSENT-FIRST-GRANT-OPENS"],
    description="a revoke naming one room also erases the requester's grants for the other rooms (their "
                "keyMaterial is refused again)",
    hooks={"consent.decision.revoke-keeps-other-rooms": _revoke_clears_other_rooms},
)
ROOM_GRANT_OUTLIVES_REVOKE = define(
    "consent-room-grant-outlives-revoke", area=AREA,
    requirements=["EXT-CONSENT-FIRST-REVOKE-CLOSES", "PROTO-CONSENT-REVOKE-ENFORCED", "PROTO-KEYMAT-NOCONSENT"],
    description="a grant for one room outlives a later revoke naming no room: keyMaterial for that room still "
                "hands out KeyPackages",
    hooks={"consent.keymaterial.any-room-revoke-wins": _verdict_room_grant_outlives_revoke},
)

# --- last-resort KeyPackages (keymaterial rules; kept here with the other rules users rely on) -----------

KEYMAT_LAST_RESORT_FIRST = define(
    "keymat-last-resort-first", area="keymaterial",
    requirements=["PROTO-KEYMAT-LAST-RESORT-LAST"],
    description="keyMaterial serves a client's last-resort KeyPackage while one-time KeyPackages are still left",
    departs=("keymaterial.claim.last-resort-last",),
)


# --- helpers ---------------------------------------------------------------------------------------


def _user_override(store, user: str) -> str | None:
    """A user's own consent mode (None: the provider's default), read past the provider's settings."""
    row = store.conn.execute("SELECT consent_mode FROM users WHERE uri = ?", (user,)).fetchone()
    return None if row is None else row[0]


def notify_body(state, room: str) -> bytes | None:
    """QUARANTINE_NOTIFY_BODY, at step follower.notify.answer-without-body: the body of the 201 answering a
    /notify for a room held here (None: no body)."""
    row = state.store.conn.execute(
        "SELECT 1 FROM held_rooms WHERE room_id = ? AND state = 'held'", (room,)
    ).fetchone()
    return b"room held for a local user" if row else None
