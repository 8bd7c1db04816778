"""Consent state of the target provider (docs/extensions/consent-modes.md, protocol-06 §5.7, §8).

Model
-----
* A **scope** is ``(requester, target, room)``; ``room=None`` covers every room.
* **Requests** (``requestConsent`` ``request``) are pending entries; a ``cancel`` removes the
  pending entry with the identical scope and nothing else.
* **Decisions** (``grant`` / ``revoke``, a local user action or an incoming ``updateConsent``)
  are kept per scope; a later decision on the identical scope replaces the earlier one.
  Requests and decisions are stored apart on purpose: a requester sending a new ``request`` must
  never erase the target's ``revoke`` (the doc's "latest operation replaces" is read per kind).
  A decision resolves the pending requests it covers.
* **Precedence** (the doc's wording, read literally): a revoke covering a request wins over any
  grant. A revoke without a room covers every room of that requester; a room revoke covers only
  that room. A grant replaces a revoke only on the identical scope.
* **Modes**: per provider, overridable per user. immediate and quarantine open keyMaterial unless
  a revoke covers the request; consent-first only when a grant covers it.
* **Quarantine**: a room a requester without a covering grant added the user to is *held*; its
  fan-out items are stored in arrival order and released (moved to the inbox) exactly once on
  accept, or dropped on reject. Later items of a released room go straight to the inbox; of a
  rejected room (its later items, and the Welcome of a re-add), nowhere until an accept.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..overrides import NO_OVERRIDES, Overrides, step
from ..wire.identity import MimiUri, MimiUriError
from .inbox import Inbox
from .store import Clock, Store

# -- the steps of the consent rules (reference_peer.overrides) -----------------------------------------

CHECK_REQUEST_REQUESTER_DOMAIN = step(
    "consent.request.requester-in-sender-domains", "PROTO-CONSENT-REQUEST-DOMAINS",
    summary="a requestConsent (request/cancel) whose requesterUri is not in the sending provider's domains is "
            "not acted on (-06 §5.7)")
CHECK_UPDATE_DOMAINS = step(
    "consent.update.check-domains", "PROTO-CONSENT-UPDATE-DOMAINS",
    summary="an updateConsent (grant/revoke) is accepted only with its requester in one of our domains and its "
            "target in the sending provider's (-06 §5.7)")
ACCEPT_WELL_SCOPED_UPDATE = step(
    "consent.update.accept-well-scoped", "PROTO-CONSENT-UPDATE-DOMAINS",
    summary="an updateConsent whose requester is in one of our domains and whose target is in the sending "
            "provider's passes the domain rule (-06 §5.7)")
CANCEL_SAME_SCOPE = step(
    "consent.cancel.same-scope-only", "EXT-CONSENT-CANCEL-SAME-SCOPE",
    summary="a received cancel removes the pending request with the identical scope and nothing else")
CANCEL_NO_MATCH_ACCEPTED = step(
    "consent.cancel.no-match-accepted", "PROTO-CONSENT-CANCEL-NO-MATCH",
    summary="a received cancel matching no pending request is accepted, changing nothing")
KEEP_DECISION_SCOPE = step(
    "consent.decision.keep-room-scope", "PROTO-CONSENT-ROOM-OR-ANY",
    summary="a grant or revoke naming a room is recorded for that room only")
DECISION_RESOLVES_SAME_SCOPE = step(
    "consent.decision.resolves-same-scope", "EXT-CONSENT-FIRST-REQUEST-201",
    summary="a user's decision naming a room resolves the pending request for that room only; the requester's "
            "requests for other rooms stay pending")
KEYMAT_CONSENT_FIRST_GATED = step(
    "consent.keymaterial.consent-first-gated",
    "EXT-CONSENT-FIRST-NO-KEYPACKAGES", "PROTO-KEYMAT-NOCONSENT", "EXT-CONSENT-ENUMERATION",
    summary="a consent-first user hands out KeyPackages only under a grant covering the request")
KEYMAT_ANY_ROOM_GRANT_OPENS = step(
    "consent.keymaterial.any-room-grant-opens", "EXT-CONSENT-FIRST-GRANT-OPENS", "PROTO-CONSENT-GRANT-ENABLES-KEYMAT",
    summary="a grant without a roomId opens keyMaterial for every room of that requester")
KEYMAT_ROOM_GRANT_SCOPED = step(
    "consent.keymaterial.room-grant-scoped",
    "EXT-CONSENT-ROOM-SCOPE", "PROTO-KEYMAT-NOCONSENT-FOR-ROOM", "PROTO-CONSENT-ROOM-OR-ANY",
    summary="a grant for one room opens keyMaterial for that room only")
KEYMAT_IMMEDIATE_OPEN = step(
    "consent.keymaterial.immediate-user-open", "EXT-CONSENT-IMMEDIATE-KEYMATERIAL",
    summary="a user whose consent mode is immediate hands out KeyPackages unless a revoke covers the request")
KEYMAT_QUARANTINE_OPEN = step(
    "consent.keymaterial.quarantine-open", "EXT-CONSENT-QUARANTINE-ADD-SUCCEEDS",
    summary="a user in quarantine mode hands out KeyPackages unless a revoke covers the request")
NAME_ROOM_REFUSAL = step(
    "consent.keymaterial.name-room-refusal", "PROTO-KEYMAT-NOCONSENT-FOR-ROOM",
    summary="a request refused for this room while the user granted another answers noConsentForThisRoom "
            "(unless the provider's settings make no distinction)")
KEYMAT_ANY_ROOM_REVOKE_WINS = step(
    "consent.keymaterial.any-room-revoke-wins",
    "EXT-CONSENT-FIRST-REVOKE-CLOSES", "PROTO-CONSENT-REVOKE-ENFORCED",
    summary="a revoke without a roomId refuses keyMaterial for every room of that requester, an earlier grant "
            "for the room notwithstanding")
# The keyMaterial verdict steps are asked in decide_keymaterial, in the order listed there (named there, not
# through a tuple bound here, so that the mutation mapping, docs/mutation.md, sees them in that function).
REVOKE_KEEPS_OTHER_ROOMS = step(
    "consent.decision.revoke-keeps-other-rooms", "EXT-CONSENT-FIRST-GRANT-OPENS",
    summary="a revoke naming a room leaves the requester's grants for other rooms in place")
HOLD_ONLY_QUARANTINE = step(
    "consent.quarantine.hold-only-quarantine",
    "EXT-CONSENT-IMMEDIATE-DELIVERY", "EXT-CONSENT-QUARANTINE-HOLD", "EXT-CONSENT-QUARANTINE-GRANTED-NOT-HELD",
    summary="a room is held for a quarantine-mode user added by a requester without a covering grant, and only for "
            "such a user (an immediate user's rooms are delivered)")
GRANT_COVERS_ITS_ROOM = step(
    "consent.quarantine.room-grant-not-held", "EXT-CONSENT-QUARANTINE-GRANTED-NOT-HELD", "EXT-CONSENT-QUARANTINE-HOLD",
    summary="a room from a requester whose grant covers it (a grant naming that room, or every room, and no revoke) "
            "is not held; any other room of a quarantine-mode user is")
WITHHOLD_HELD = step(
    "consent.quarantine.withhold-held",
    "EXT-CONSENT-QUARANTINE-HOLD", "EXT-CONSENT-QUARANTINE-REJECT-DROPS", "EXT-CONSENT-IMMEDIATE-DELIVERY",
    summary="the items of a held room reach the target's clients only on accept (those of a room neither held nor "
            "rejected reach them at once)")
RELEASE_IN_ORDER = step(
    "consent.quarantine.release-in-order", "EXT-CONSENT-QUARANTINE-RELEASE",
    summary="on accept the held items are released in arrival (fan-out) order")
REJECTED_STAYS = step(
    "consent.quarantine.rejected-stays-rejected", "EXT-CONSENT-QUARANTINE-REJECTED-STAYS",
    summary="a rejected room stays rejected: nothing of it (later items, the Welcome of a re-add) reaches the "
            "target's clients until the user accepts")


class ConsentMode(enum.StrEnum):
    immediate = "immediate"
    quarantine = "quarantine"
    consent_first = "consent-first"


class ConsentVerdict(enum.Enum):
    """What consent says about a keyMaterial request (the last two are -06 user codes)."""

    allowed = "allowed"
    noConsent = "noConsent"
    noConsentForThisRoom = "noConsentForThisRoom"


class Decision(enum.StrEnum):
    grant = "grant"
    revoke = "revoke"


class RoomState(enum.StrEnum):
    held = "held"
    released = "released"
    rejected = "rejected"


@dataclass(frozen=True)
class ConsentScope:
    requester: str
    target: str
    room: str | None = None

    @property
    def room_key(self) -> str:
        return self.room or ""


@dataclass(frozen=True)
class PendingRequest:
    requester: str
    target: str
    room: str | None
    received_at: int


@dataclass(frozen=True)
class HeldRoom:
    user: str
    room: str
    requester: str
    state: RoomState
    held_items: int


@dataclass(frozen=True)
class ReleasedItem:
    room: str
    clients: tuple[str, ...]
    item: bytes


@dataclass(frozen=True)
class ConsentSettings:
    default_mode: ConsentMode = ConsentMode.immediate
    allow_user_override: bool = True
    # -06 §5.2: a provider that does not wish to distinguish may answer noConsent instead.
    distinguish_room: bool = True


class ConsentDomainError(ValueError):
    """A ConsentEntry whose URIs do not belong to the providers §5.7 requires."""


def uri_domain(uri: str) -> str:
    try:
        return MimiUri.parse(uri).domain.lower()
    except MimiUriError as exc:
        raise ConsentDomainError(f"not a mimi:// URI: {uri!r} ({exc})") from None


def check_consent_domains(
    operation: str,
    requester_uri: str,
    target_uri: str,
    *,
    peer_domain: str | Iterable[str],
    local_domains: Iterable[str],
    overrides: Overrides = NO_OVERRIDES,
) -> None:
    """§5.7: for ``request``/``cancel`` (requestConsent) the target is in one of our domains and
    the requester in one of the sending provider's (the authenticated peer: one domain, or all of
    its names); for ``grant``/``revoke`` (updateConsent) the reverse. Raises
    :class:`ConsentDomainError`; the handler answers it with an error status. A well-addressed
    requestConsent passes, so it is answered 201 and recorded pending (EXT-CONSENT-FIRST-REQUEST-201).
    ``overrides``: those of the provider checking."""
    if operation in ("grant", "revoke") and overrides.departs(CHECK_UPDATE_DOMAINS):
        return
    local = {d.lower() for d in local_domains}
    peer = {peer_domain.lower()} if isinstance(peer_domain, str) else {d.lower() for d in peer_domain}
    if operation in ("request", "cancel"):
        ours, theirs = ("targetUri", target_uri), ("requesterUri", requester_uri)
    elif operation in ("grant", "revoke"):
        ours, theirs = ("requesterUri", requester_uri), ("targetUri", target_uri)
    else:
        raise ConsentDomainError(f"unknown consent operation {operation!r}")
    if uri_domain(ours[1]) not in local:
        raise ConsentDomainError(f"{operation}: {ours[0]} {ours[1]!r} is not in this provider's domains")
    if uri_domain(theirs[1]) not in peer:
        if operation in ("request", "cancel") and overrides.departs(CHECK_REQUEST_REQUESTER_DOMAIN):
            return  # a fault's: a request naming another provider's requester is acted on
        raise ConsentDomainError(
            f"{operation}: {theirs[0]} {theirs[1]!r} is not in the sending provider's domains {sorted(peer)}"
        )
    overrides.hook(ACCEPT_WELL_SCOPED_UPDATE, operation)  # a fault's hook raises ConsentDomainError here


class ConsentState:
    def __init__(self, store: Store, settings: ConsentSettings, clock: Clock, inbox: Inbox, *,
                 overrides: Overrides = NO_OVERRIDES) -> None:
        self._store = store
        self.overrides = overrides
        self.settings = settings
        self._clock = clock
        self._inbox = inbox

    # -- modes ----------------------------------------------------------------------------------

    def mode_for(self, user: str) -> ConsentMode:
        if self.settings.allow_user_override:
            row = self._store.conn.execute("SELECT consent_mode FROM users WHERE uri = ?", (user,)).fetchone()
            if row is not None and row[0] is not None:
                return ConsentMode(row[0])
        return self.settings.default_mode

    def set_user_mode(self, user: str, mode: ConsentMode | None) -> None:
        if mode is not None and not self.settings.allow_user_override:
            raise ValueError("this provider does not allow per-user consent modes")
        with self._store.transaction() as conn:
            cur = conn.execute(
                "UPDATE users SET consent_mode = ? WHERE uri = ?", (None if mode is None else str(mode), user)
            )
            if cur.rowcount != 1:
                raise KeyError(user)

    # -- requests ---------------------------------------------------------------------------------

    def record_request(self, scope: ConsentScope) -> None:
        now = int(self._clock())
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO consent_requests (requester, target, room_id, received_at, seq) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (requester, target, room_id) DO UPDATE SET "
                "received_at = excluded.received_at, seq = excluded.seq",
                (scope.requester, scope.target, scope.room_key, now, self._next_seq(conn)),
            )

    def cancel_request(self, scope: ConsentScope) -> bool:
        """Remove the pending request with exactly this scope; False (and nothing changed) if none."""
        with self._store.transaction() as conn:
            faulty = self.overrides.hook(CANCEL_SAME_SCOPE, scope.requester, scope.target, scope.room_key)
            if faulty is not None:
                return conn.execute(f"DELETE FROM consent_requests WHERE {faulty[0]}", faulty[1]).rowcount > 0
            cur = conn.execute(
                "DELETE FROM consent_requests WHERE requester = ? AND target = ? AND room_id = ?",
                (scope.requester, scope.target, scope.room_key),
            )
            if cur.rowcount == 0:
                self.overrides.hook(CANCEL_NO_MATCH_ACCEPTED)
            return cur.rowcount == 1

    def pending_requests(self, target: str) -> list[PendingRequest]:
        rows = self._store.conn.execute(
            "SELECT requester, target, room_id, received_at FROM consent_requests WHERE target = ? ORDER BY seq",
            (target,),
        ).fetchall()
        return [PendingRequest(r, t, room or None, at) for r, t, room, at in rows]

    # -- decisions --------------------------------------------------------------------------------

    def record_decision(self, scope: ConsentScope, decision: Decision) -> None:
        """Store a grant or revoke for ``scope`` and resolve the pending requests it covers."""
        scope = self.overrides.hook(KEEP_DECISION_SCOPE, scope) or scope
        now = int(self._clock())
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO consent_decisions (requester, target, room_id, decision, decided_at, seq) "
                "VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (requester, target, room_id) DO UPDATE SET decision = excluded.decision, "
                "decided_at = excluded.decided_at, seq = excluded.seq",
                (scope.requester, scope.target, scope.room_key, str(decision), now, self._next_seq(conn)),
            )
            if decision == Decision.revoke and scope.room is not None:
                self.overrides.hook(REVOKE_KEEPS_OTHER_ROOMS, conn, scope)
            if scope.room is None:
                conn.execute(
                    "DELETE FROM consent_requests WHERE requester = ? AND target = ?", (scope.requester, scope.target)
                )
            elif self.overrides.departs(DECISION_RESOLVES_SAME_SCOPE):  # every pending request of the requester
                conn.execute(
                    "DELETE FROM consent_requests WHERE requester = ? AND target = ?", (scope.requester, scope.target)
                )
            else:
                conn.execute(
                    "DELETE FROM consent_requests WHERE requester = ? AND target = ? AND room_id = ?",
                    (scope.requester, scope.target, scope.room_key),
                )

    def decision(self, scope: ConsentScope) -> Decision | None:
        row = self._store.conn.execute(
            "SELECT decision FROM consent_decisions WHERE requester = ? AND target = ? AND room_id = ?",
            (scope.requester, scope.target, scope.room_key),
        ).fetchone()
        return None if row is None else Decision(row[0])

    def _decisions(self, requester: str, target: str) -> dict[str, Decision]:
        rows = self._store.conn.execute(
            "SELECT room_id, decision FROM consent_decisions WHERE requester = ? AND target = ?", (requester, target)
        ).fetchall()
        return {room: Decision(d) for room, d in rows}

    def revoked(self, requester: str, target: str, room: str | None) -> bool:
        decisions = self._decisions(requester, target)
        return decisions.get("") == Decision.revoke or (room is not None and decisions.get(room) == Decision.revoke)

    def granted(self, requester: str, target: str, room: str | None) -> bool:
        """A grant covers the request and no revoke does."""
        decisions = self._decisions(requester, target)
        if decisions.get("") == Decision.revoke or (room is not None and decisions.get(room) == Decision.revoke):
            return False
        if self.overrides.departs(GRANT_COVERS_ITS_ROOM):  # a fault's: only a grant for every room counts
            room = None
        return decisions.get("") == Decision.grant or (room is not None and decisions.get(room) == Decision.grant)

    def decide_keymaterial(self, requester: str, target: str, room: str | None) -> ConsentVerdict:
        """May ``requester`` claim ``target``'s KeyPackages for ``room`` (None: no room context)?"""
        decisions = self._decisions(requester, target)
        for verdict_step in (KEYMAT_CONSENT_FIRST_GATED, KEYMAT_ANY_ROOM_GRANT_OPENS, KEYMAT_ROOM_GRANT_SCOPED,
                             KEYMAT_IMMEDIATE_OPEN, KEYMAT_QUARANTINE_OPEN, KEYMAT_ANY_ROOM_REVOKE_WINS):
            faulty = self.overrides.hook(verdict_step, self, decisions, requester, target, room)
            if faulty is not None:
                return faulty
        any_room = decisions.get("")
        this_room = decisions.get(room) if room is not None else None
        revoked = any_room == Decision.revoke or this_room == Decision.revoke
        if not revoked:
            if any_room == Decision.grant or this_room == Decision.grant:
                return ConsentVerdict.allowed
            if self.mode_for(target) in (ConsentMode.immediate, ConsentMode.quarantine):
                return ConsentVerdict.allowed
        other_room_grant = any(d == Decision.grant for key, d in decisions.items() if key not in ("", room or ""))
        distinguish = self.settings.distinguish_room and not self.overrides.departs(NAME_ROOM_REFUSAL)
        if distinguish and any_room != Decision.revoke and other_room_grant:
            return ConsentVerdict.noConsentForThisRoom
        return ConsentVerdict.noConsent

    # -- quarantine -------------------------------------------------------------------------------

    def room_state(self, user: str, room: str) -> RoomState | None:
        row = self._store.conn.execute(
            "SELECT state FROM held_rooms WHERE user_uri = ? AND room_id = ?", (user, room)
        ).fetchone()
        return None if row is None else RoomState(row[0])

    def note_added(self, user: str, room: str, requester: str) -> RoomState | None:
        """``user``'s clients were added to ``room`` by ``requester`` (a Welcome arrived): hold the
        room when the user is in quarantine mode and no grant covers it. Returns the room's state."""
        with self._store.transaction() as conn:
            state = self.room_state(user, room)
            if state is not None:
                return state
            if self.granted(requester, user, room) or (
                self.mode_for(user) != ConsentMode.quarantine
                and not self.overrides.hook(HOLD_ONLY_QUARANTINE, self._store, user)
            ):
                return None
            conn.execute(
                "INSERT INTO held_rooms (user_uri, room_id, requester, state, since) VALUES (?, ?, ?, 'held', ?)",
                (user, room, requester, int(self._clock())),
            )
            return RoomState.held

    def deliver(self, user: str, room: str, clients: Sequence[str], item: bytes) -> RoomState | None:
        """Hand one fan-out item to ``user``'s ``clients`` unless the room is held (stored) or
        rejected (dropped). Returns the room's quarantine state (None: not quarantined)."""
        with self._store.transaction() as conn:
            state = self.room_state(user, room)
            if state == RoomState.held:
                conn.execute(
                    "INSERT INTO held_items (user_uri, room_id, clients, item, received_at) VALUES (?, ?, ?, ?, ?)",
                    (user, room, json.dumps(list(clients)), bytes(item), int(self._clock())),
                )
                if self.overrides.departs(WITHHOLD_HELD):
                    self._inbox.deliver(room, clients, item)
            elif state != RoomState.rejected or self.overrides.departs(REJECTED_STAYS):
                self._inbox.deliver(room, clients, item)
            return state

    def held_rooms(self, user: str) -> list[HeldRoom]:
        rows = self._store.conn.execute(
            "SELECT h.room_id, h.requester, h.state, "
            "(SELECT COUNT(*) FROM held_items i WHERE i.user_uri = h.user_uri AND i.room_id = h.room_id) "
            "FROM held_rooms h WHERE h.user_uri = ? AND h.state = 'held' ORDER BY h.since, h.room_id",
            (user,),
        ).fetchall()
        return [HeldRoom(user, room, requester, RoomState(state), count) for room, requester, state, count in rows]

    def _rooms_from(self, user: str, requester: str, room: str | None) -> list[str]:
        rows = self._store.conn.execute(
            "SELECT room_id FROM held_rooms WHERE user_uri = ? AND requester = ? AND state = 'held' "
            "AND (? IS NULL OR room_id = ?) ORDER BY since, room_id",
            (user, requester, room, room),
        ).fetchall()
        return [r[0] for r in rows]

    def accept(self, user: str, requester: str, room: str | None) -> list[ReleasedItem]:
        """Release the held rooms from ``requester`` (one room, or all of them when ``room`` is
        None): their items move to the inbox in arrival order, in this transaction, exactly once."""
        released: list[ReleasedItem] = []
        with self._store.transaction() as conn:
            for room_id in self._rooms_from(user, requester, room):
                rows = conn.execute(
                    "SELECT id, clients, item FROM held_items WHERE user_uri = ? AND room_id = ? ORDER BY id",
                    (user, room_id),
                ).fetchall()
                for _, clients_json, item in self.overrides.hook(RELEASE_IN_ORDER, rows) or rows:
                    clients = tuple(json.loads(clients_json))
                    if not self.overrides.departs(WITHHOLD_HELD):
                        self._inbox.deliver(room_id, clients, bytes(item))
                    released.append(ReleasedItem(room_id, clients, bytes(item)))
                conn.execute("DELETE FROM held_items WHERE user_uri = ? AND room_id = ?", (user, room_id))
                conn.execute(
                    "UPDATE held_rooms SET state = 'released' WHERE user_uri = ? AND room_id = ?", (user, room_id)
                )
            # A room rejected earlier stays rejected for what it dropped, but a later accept lets the
            # room's future items through (the user changed their mind).
            conn.execute(
                "UPDATE held_rooms SET state = 'released' WHERE user_uri = ? AND requester = ? AND state = 'rejected' "
                "AND (? IS NULL OR room_id = ?)",
                (user, requester, room, room),
            )
        return released

    def reject(self, user: str, requester: str, room: str | None) -> int:
        """Drop the held items of the rooms from ``requester``; they are never delivered. Returns
        how many items were dropped."""
        dropped = 0
        with self._store.transaction() as conn:
            for room_id in self._rooms_from(user, requester, room):
                cur = conn.execute("DELETE FROM held_items WHERE user_uri = ? AND room_id = ?", (user, room_id))
                dropped += cur.rowcount
                conn.execute(
                    "UPDATE held_rooms SET state = 'rejected' WHERE user_uri = ? AND room_id = ?", (user, room_id)
                )
        return dropped

    # -- helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _next_seq(conn) -> int:
        # One counter across requests and decisions keeps their relative order for the event list.
        row = conn.execute(
            "SELECT MAX(m) FROM (SELECT MAX(seq) AS m FROM consent_requests "
            "UNION ALL SELECT MAX(seq) FROM consent_decisions)"
        ).fetchone()
        return int(row[0] or 0) + 1
