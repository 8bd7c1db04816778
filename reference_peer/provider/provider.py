"""``ProviderState``: the state of one provider behind its HTTP handlers and its control API.

Everything here is synchronous and runs in store transactions (never across an ``await``), so a
handler is: decode the request, call one method, encode the result. Messages to other providers go
through the outbox in the same transaction as the change that causes them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..overrides import NO_OVERRIDES, Overrides, step
from ..wire.identity import IdentifierUri, MimiUri
from ..wire.mimi import ConsentEntry, ConsentOperation
from ..wire.mls import AppDataDictionary, KeyPackage
from .consent import (
    ConsentDomainError,
    ConsentMode,
    ConsentScope,
    ConsentSettings,
    ConsentState,
    Decision,
    HeldRoom,
    PendingRequest,
    ReleasedItem,
    RoomState,
    check_consent_domains,
    uri_domain,
)
from .dedup import DEFAULT_WINDOW, NotifyDedup
from .directory_search import Directory, Profile, QueryElement, SearchPolicy, SearchResult, SearchSettings
from .inbox import Inbox, InboxItem
from .keymaterial import (
    KeyMaterialQuery,
    KeyMaterialResult,
    KeyMaterialService,
    KeyMaterialSettings,
    KeyPackageRoutes,
    WelcomeRoute,
)
from .outbox import Outbox
from .store import Clock, Store

# -- the steps of the provider's rules (reference_peer.overrides) ----------------------------------------

DROP_DELETED_PROFILE = step(
    "provider.delete-user.drop-profile", "DISC-R9-REMOVED-NOT-RETURNED",
    summary="deleting a user deletes their directory profile")
RECORD_REQUEST = step(
    "provider.request-consent.record", "EXT-CONSENT-FIRST-REQUEST-201", "PROTO-CONSENT-REQUEST-RESPONSE",
    summary="a received requestConsent (request) for a local user is recorded as pending for that user and answered "
            "201; one for an unknown target is answered 201 too (404 only when the settings reveal unknown users)")
UPDATE_NOTICE_ONLY = step(
    "provider.update-consent.notice-only", "PROTO-CONSENT-UPDATE-DOMAINS",
    summary="a received updateConsent is kept as a notice for our local requester, never recorded as a decision "
            "of one of our users")
RECORD_REVOKE = step(
    "provider.revoke.record",
    "EXT-CONSENT-FIRST-REVOKE-CLOSES", "PROTO-CONSENT-REVOKE-ENFORCED", "PROTO-KEYMAT-NOCONSENT",
    summary="a local user's revoke is recorded (and closes keyMaterial)")
KEEP_REVOKE_PRIVATE = step(
    "provider.revoke.keep-private", "PROTO-CONSENT-REVOKE-NOTICE-OPTIONAL",
    summary="a local user's revoke is not sent to the requester's provider (unless the settings say to send it)")
REJECT_DROPS_HELD = step(
    "provider.revoke.drop-held", "EXT-CONSENT-QUARANTINE-REJECT-DROPS",
    summary="a reject drops the held items of the rooms it covers")
CANCEL_ANSWERED_201 = step(
    "provider.request-consent.cancel-answered-201", "PROTO-CONSENT-CANCEL-NO-MATCH",
    summary="a received cancel for a local user is answered 201 whether or not a pending request matched it (-06 "
            "§5.7: \"in response to a cancel which has no request matching the ConsentScope, a 201 Accepted is sent\")")
SEND_TO_THE_OTHER_PROVIDER = step(
    "provider.consent.send-to-the-other-provider",
    "PROTO-CONSENT-DIRECT", "EXT-CONSENT-FIRST-GRANT-SENT", "PROTO-CONSENT-ROOM-SCOPED-REQUEST",
    "PROTO-CONSENT-CANCEL-SAME-SCOPE",
    summary="a consent entry the provider sends carries the scope it was given and goes straight to the provider at "
            "the other end of it: requestConsent to the target's, updateConsent to the requester's (-06 §5.7)")
CANCEL_SENT_SAME_SCOPE = step(
    "provider.request-consent.cancel-same-scope", "PROTO-CONSENT-CANCEL-SAME-SCOPE",
    summary="a cancel our provider sends carries the scope (roomId) of the request it cancels")


@dataclass(frozen=True)
class ProviderSettings:
    domains: tuple[str, ...]
    consent: ConsentSettings = field(default_factory=ConsentSettings)
    keymaterial: KeyMaterialSettings = field(default_factory=KeyMaterialSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    dedup_window: int = DEFAULT_WINDOW
    # -06 §5.7: requestConsent for an unknown target MAY answer 404; the default hides it (201).
    reveal_unknown_consent_targets: bool = False
    # -06 §5.7 NOTE: sending a revoke may be privacy sensitive; off by default.
    send_revocations: bool = False

    @property
    def primary_domain(self) -> str:
        return self.domains[0]


@dataclass(frozen=True)
class ProvisionedUser:
    uri: str
    clients: tuple[str, ...]


@dataclass(frozen=True)
class ConsentReceipt:
    """What the requestConsent / updateConsent handler answers: 201 or (when revealing) 404."""

    status: int
    recorded: bool


@dataclass(frozen=True)
class ConsentChange:
    """Outcome of a local grant or revoke."""

    released: tuple[ReleasedItem, ...] = ()
    dropped: int = 0
    outbox_id: int | None = None


@dataclass(frozen=True)
class ConsentNotice:
    requester: str
    target: str
    room: str | None
    operation: str
    key_packages: int


@dataclass(frozen=True)
class UserEvents:
    """The control API's listEvents: pending consent requests, held rooms, consent news."""

    pending_requests: tuple[PendingRequest, ...]
    held_rooms: tuple[HeldRoom, ...]
    consent_notices: tuple[ConsentNotice, ...]


@dataclass(frozen=True)
class WelcomeDelivery:
    user: str
    clients: tuple[str, ...]
    requester: str
    room_state: RoomState | None  # held: stored for quarantine; None: delivered


def _uri_str(uri: IdentifierUri | str) -> str:
    return uri if isinstance(uri, str) else bytes(uri.uri).decode("utf-8")


class ProviderState:
    def __init__(self, settings: ProviderSettings, store: Store, *, clock: Clock = time.time,
                 overrides: Overrides = NO_OVERRIDES) -> None:
        if not settings.domains:
            raise ValueError("a provider needs at least one domain")
        self.settings = settings
        self.store = store
        self.clock = clock
        self.overrides = overrides
        self.inbox = Inbox(store, clock)
        self.consent = ConsentState(store, settings.consent, clock, self.inbox, overrides=overrides)
        self.keymaterial = KeyMaterialService(store, self.consent, clock, settings.keymaterial, overrides=overrides)
        self.routes = KeyPackageRoutes(store, clock)
        self.directory = Directory(store, settings.search, overrides=overrides)
        self.dedup = NotifyDedup(store, clock, window=settings.dedup_window)
        self.outbox = Outbox(store, clock, overrides=overrides)

    @classmethod
    def memory(cls, settings: ProviderSettings, *, clock: Clock = time.time,
               overrides: Overrides = NO_OVERRIDES) -> ProviderState:
        return cls(settings, Store.memory(), clock=clock, overrides=overrides)

    @classmethod
    def open(cls, settings: ProviderSettings, path: str | Path, *, clock: Clock = time.time,
             overrides: Overrides = NO_OVERRIDES) -> ProviderState:
        return cls(settings, Store.open(path), clock=clock, overrides=overrides)

    def close(self) -> None:
        self.store.close()

    def is_local(self, uri: str) -> bool:
        return uri_domain(uri) in {d.lower() for d in self.settings.domains}

    # -- users and clients (control API) ---------------------------------------------------------

    def provision_user(
        self,
        user_uri: str,
        *,
        clients: int | Sequence[str] = 1,
        profile: Profile | None = None,
        search_policy: SearchPolicy = SearchPolicy.exact_handle,
        consent_mode: ConsentMode | None = None,
    ) -> ProvisionedUser:
        """Create (or re-create after deletion) a local user with clients; ``clients`` is a count
        (URIs ``mimi://<domain>/d/<user>/c<i>``) or explicit client URIs."""
        parsed = MimiUri.parse(user_uri)
        if not self.is_local(user_uri):
            raise ValueError(f"{user_uri} is not in this provider's domains {self.settings.domains}")
        if isinstance(clients, int):
            name = parsed.user or "user"
            client_uris = [MimiUri.for_client(parsed.domain, f"c{i + 1}", user=name).format() for i in range(clients)]
        else:
            client_uris = list(clients)
        if consent_mode is not None and not self.settings.consent.allow_user_override:
            raise ValueError("this provider does not allow per-user consent modes")
        now = int(self.clock())
        with self.store.transaction() as conn:
            row = conn.execute("SELECT status FROM users WHERE uri = ?", (user_uri,)).fetchone()
            if row is not None and row[0] == "active":
                raise ValueError(f"user {user_uri} already exists")
            conn.execute(
                "INSERT INTO users (uri, status, search_policy, consent_mode, created_at) "
                "VALUES (?, 'active', ?, ?, ?) "
                "ON CONFLICT (uri) DO UPDATE SET status = 'active', search_policy = excluded.search_policy, "
                "consent_mode = excluded.consent_mode, created_at = excluded.created_at, deleted_at = NULL",
                (user_uri, str(search_policy), None if consent_mode is None else str(consent_mode), now),
            )
            for client in client_uris:
                self._insert_client(conn, user_uri, client, now)
            self.directory.set_profile(user_uri, profile or Profile())
        return ProvisionedUser(user_uri, tuple(client_uris))

    def _insert_client(self, conn, user_uri: str, client_uri: str, now: int) -> None:
        MimiUri.parse(client_uri)
        if not self.is_local(client_uri):
            raise ValueError(f"{client_uri} is not in this provider's domains")
        conn.execute("INSERT INTO clients (uri, user_uri, created_at) VALUES (?, ?, ?)", (client_uri, user_uri, now))

    def add_client(self, user_uri: str, client_uri: str) -> None:
        with self.store.transaction() as conn:
            if self.user_status(user_uri) != "active":
                raise KeyError(user_uri)
            self._insert_client(conn, user_uri, client_uri, int(self.clock()))

    def clients_of(self, user_uri: str) -> list[str]:
        return [
            r[0]
            for r in self.store.conn.execute("SELECT uri FROM clients WHERE user_uri = ? ORDER BY uri", (user_uri,))
        ]

    def user_of(self, client_uri: str) -> str | None:
        """The user owning a local client, or None. The follower's /notify intake maps every fanned-out
        item's clients to their users through it (deliver_to_clients), so a /notify for a room with local
        members is processed and answered 201 only if this holds (PROTO-FANOUT-CONCATENATED-MESSAGES)."""
        row = self.store.conn.execute("SELECT user_uri FROM clients WHERE uri = ?", (client_uri,)).fetchone()
        return None if row is None else row[0]

    def user_status(self, user_uri: str) -> str | None:
        """'active', 'deleted' (a tombstone kept for userDeleted) or None (never known)."""
        row = self.store.conn.execute("SELECT status FROM users WHERE uri = ?", (user_uri,)).fetchone()
        return None if row is None else row[0]

    def delete_client(self, client_uri: str) -> None:
        """Remove a client, its KeyPackages, Welcome routes and received items."""
        with self.store.transaction() as conn:
            if conn.execute("DELETE FROM clients WHERE uri = ?", (client_uri,)).rowcount != 1:
                raise KeyError(client_uri)
            conn.execute("DELETE FROM kp_routes WHERE client_uri = ?", (client_uri,))
            conn.execute("DELETE FROM inbox WHERE client_uri = ?", (client_uri,))

    def delete_user(self, user_uri: str) -> None:
        """Delete a user: clients, KeyPackages, profile and consent state go; a tombstone stays so
        that keyMaterial can answer userDeleted when the provider reveals it."""
        with self.store.transaction() as conn:
            if self.user_status(user_uri) != "active":
                raise KeyError(user_uri)
            conn.execute(
                "DELETE FROM inbox WHERE client_uri IN (SELECT uri FROM clients WHERE user_uri = ?)", (user_uri,)
            )
            conn.execute("DELETE FROM clients WHERE user_uri = ?", (user_uri,))
            if not self.overrides.departs(DROP_DELETED_PROFILE):
                conn.execute("DELETE FROM profile_fields WHERE user_uri = ?", (user_uri,))
            conn.execute("DELETE FROM kp_routes WHERE user_uri = ?", (user_uri,))
            conn.execute("DELETE FROM consent_requests WHERE target = ?", (user_uri,))
            conn.execute("DELETE FROM consent_decisions WHERE target = ?", (user_uri,))
            conn.execute("DELETE FROM held_items WHERE user_uri = ?", (user_uri,))
            conn.execute("DELETE FROM held_rooms WHERE user_uri = ?", (user_uri,))
            conn.execute(
                "UPDATE users SET status = 'deleted', deleted_at = ?, consent_mode = NULL WHERE uri = ?",
                (int(self.clock()), user_uri),
            )

    def set_profile(self, user_uri: str, profile: Profile, *, search_policy: SearchPolicy | None = None) -> None:
        with self.store.transaction():
            if self.user_status(user_uri) != "active":
                raise KeyError(user_uri)
            self.directory.set_profile(user_uri, profile)
            if search_policy is not None:
                self.directory.set_policy(user_uri, search_policy)

    def set_consent_mode(self, user_uri: str, mode: ConsentMode | None) -> None:
        self.consent.set_user_mode(user_uri, mode)

    # -- keyMaterial -------------------------------------------------------------------------------

    def upload_key_packages(
        self, client_uri: str, key_packages: Iterable[bytes], *, last_resort: bool = False
    ) -> list[bytes]:
        return self.keymaterial.upload(client_uri, key_packages, last_resort=last_resort)

    def claim_key_material(self, query: KeyMaterialQuery) -> KeyMaterialResult:
        return self.keymaterial.claim(query)

    # -- consent: from other providers ----------------------------------------------------------

    def receive_request_consent(
        self, operation: str, requester: str, target: str, room: str | None, *, peer_domain: str | Iterable[str]
    ) -> ConsentReceipt:
        """POST /requestConsent: ``request`` or ``cancel``. Raises ConsentDomainError on a §5.7
        domain mismatch (the handler answers 403)."""
        check_consent_domains(
            operation, requester, target, peer_domain=peer_domain, local_domains=self.settings.domains,
            overrides=self.overrides,
        )
        scope = ConsentScope(requester, target, room or None)
        with self.store.transaction():
            if self.user_status(target) != "active":
                return ConsentReceipt(404 if self.settings.reveal_unknown_consent_targets else 201, False)
            if operation == "request":
                if not self.overrides.departs(RECORD_REQUEST):
                    self.consent.record_request(scope)
                return ConsentReceipt(201, True)
            cancelled = self.consent.cancel_request(scope)
            return ConsentReceipt(self.overrides.hook(CANCEL_ANSWERED_201) or 201, cancelled)

    def receive_update_consent(
        self,
        operation: str,
        requester: str,
        target: str,
        room: str | None,
        *,
        peer_domain: str | Iterable[str],
        key_packages: int = 0,
    ) -> ConsentReceipt:
        """POST /updateConsent: a remote target's ``grant`` or ``revoke`` for our local requester.
        Kept as a notice for the requester (their events); KeyPackages in a grant are counted."""
        check_consent_domains(
            operation, requester, target, peer_domain=peer_domain, local_domains=self.settings.domains,
            overrides=self.overrides,
        )
        if self.overrides.hook(UPDATE_NOTICE_ONLY, self.consent, operation, requester, target, room,
                               self.settings.domains):
            return ConsentReceipt(201, True)  # recorded otherwise (a departure from the step)
        with self.store.transaction() as conn:
            if self.user_status(requester) != "active":
                return ConsentReceipt(404 if self.settings.reveal_unknown_consent_targets else 201, False)
            conn.execute(
                "INSERT INTO consent_notices (requester, target, room_id, operation, key_packages, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (requester, target, room or "", operation, key_packages, int(self.clock())),
            )
        return ConsentReceipt(201, True)

    def receive_consent_entry(self, entry: ConsentEntry, *, peer_domain: str | Iterable[str]) -> ConsentReceipt:
        """Either endpoint from a decoded ConsentEntry."""
        op = entry.consentOperation.name
        requester, target = _uri_str(entry.requesterUri), _uri_str(entry.targetUri)
        room = _uri_str(entry.roomId) if entry.roomId is not None else None
        if op in ("request", "cancel"):
            return self.receive_request_consent(op, requester, target, room, peer_domain=peer_domain)
        return self.receive_update_consent(
            op, requester, target, room, peer_domain=peer_domain, key_packages=len(entry.clientKeyPackages or [])
        )

    # -- consent: local user actions (control API) ----------------------------------------------

    def grant_consent(
        self, user: str, requester: str, room: str | None = None, *, key_packages: Sequence[bytes] = ()
    ) -> ConsentChange:
        """The local ``user`` grants ``requester`` (any room, or ``room``): record the grant,
        release quarantined rooms it covers, and queue ``updateConsent`` grant to the requester's
        provider (EXT-CONSENT-FIRST-GRANT-SENT), all in one transaction."""
        scope = ConsentScope(requester, user, room)
        with self.store.transaction():
            if self.user_status(user) != "active":
                raise KeyError(user)
            self.consent.record_decision(scope, Decision.grant)
            released = self.consent.accept(user, requester, room)
            outbox_id = None
            if not self.is_local(requester):
                kps = [KeyPackage.decode(kp) for kp in key_packages]
                outbox_id = self._queue_consent(ConsentOperation.grant, scope, "updateConsent", kps)
        return ConsentChange(released=tuple(released), outbox_id=outbox_id)

    def revoke_consent(self, user: str, requester: str, room: str | None = None) -> ConsentChange:
        """The local ``user`` revokes or rejects: record the revoke, drop held items it covers."""
        scope = ConsentScope(requester, user, room)
        with self.store.transaction():
            if self.user_status(user) != "active":
                raise KeyError(user)
            if not self.overrides.departs(RECORD_REVOKE):
                self.consent.record_decision(scope, Decision.revoke)
            if self.overrides.departs(REJECT_DROPS_HELD):  # released instead of dropped
                return ConsentChange(released=tuple(self.consent.accept(user, requester, room)))
            dropped = self.consent.reject(user, requester, room)
            outbox_id = None
            send = self.settings.send_revocations or self.overrides.departs(KEEP_REVOKE_PRIVATE)
            if send and not self.is_local(requester):
                outbox_id = self._queue_consent(ConsentOperation.revoke, scope, "updateConsent", [])
        return ConsentChange(dropped=dropped, outbox_id=outbox_id)

    def request_consent(self, requester: str, target: str, room: str | None = None, *, cancel: bool = False) -> int:
        """Our local ``requester`` asks a remote ``target`` (or cancels): queue requestConsent."""
        if not self.is_local(requester) or self.is_local(target):
            raise ConsentDomainError("request_consent is for a local requester and a remote target")
        op = ConsentOperation.cancel if cancel else ConsentOperation.request
        if cancel and self.overrides.departs(CANCEL_SENT_SAME_SCOPE):
            room = None
        with self.store.transaction():
            return self._queue_consent(op, ConsentScope(requester, target, room), "requestConsent", [])

    def _queue_consent(self, op: ConsentOperation, scope: ConsentScope, endpoint: str, kps: list[KeyPackage]) -> int:
        entry = ConsentEntry(
            consentOperation=op,
            requesterUri=IdentifierUri(uri=scope.requester.encode()),
            targetUri=IdentifierUri(uri=scope.target.encode()),
            roomId=IdentifierUri(uri=scope.room.encode()) if scope.room else None,
            clientKeyPackages=kps if op == ConsentOperation.grant else None,
            consent_extensions=AppDataDictionary(component_data=[]),
        )
        remote = scope.requester if endpoint == "updateConsent" else scope.target
        domain = uri_domain(remote)
        var = "requesterDomain" if endpoint == "updateConsent" else "targetDomain"
        if self.overrides.departs(SEND_TO_THE_OTHER_PROVIDER):  # a fault's: queued for this provider itself
            domain = self.settings.primary_domain
        return self.outbox.enqueue(domain, endpoint, entry.encode(), path_vars={var: domain})

    def queue_notify(self, destination: str, room: str, body: bytes, *, idempotency_key: str | None = None) -> int:
        """Hub side of §5.5: queue one /notify body (one or more concatenated FanoutMessages) for a
        follower. Call it inside the transaction that accepted the message being fanned out."""
        return self.outbox.enqueue(
            destination, "notify", body, path_vars={"roomId": room}, idempotency_key=idempotency_key
        )

    def list_events(self, user: str) -> UserEvents:
        rows = self.store.conn.execute(
            "SELECT requester, target, room_id, operation, key_packages FROM consent_notices "
            "WHERE requester = ? ORDER BY id",
            (user,),
        ).fetchall()
        notices = tuple(ConsentNotice(r, t, room or None, op, n) for r, t, room, op, n in rows)
        return UserEvents(tuple(self.consent.pending_requests(user)), tuple(self.consent.held_rooms(user)), notices)

    # -- fan-out intake (follower side of /notify) -------------------------------------------------

    def receive_welcome(self, room: str, refs: Iterable[bytes], item: bytes) -> list[WelcomeDelivery]:
        """A Welcome for ``room`` whose secrets name ``refs``: deliver it to the clients whose
        KeyPackages those are (per user: hold it when quarantine applies). Unknown refs are
        skipped; the routes of delivered refs are forgotten (§5.2)."""
        out: list[WelcomeDelivery] = []
        with self.store.transaction():
            routes = self.routes.welcome_routes(refs)
            by_user: dict[tuple[str, str], list[WelcomeRoute]] = {}
            for route in routes:
                by_user.setdefault((route.user_uri, route.requester), []).append(route)
            for (user, requester), user_routes in by_user.items():
                clients = tuple(r.client_uri for r in user_routes)
                self.consent.note_added(user, room, requester)
                state = self.consent.deliver(user, room, clients, item)
                out.append(WelcomeDelivery(user, clients, requester, state))
            self.routes.forget_welcome_routes([r.ref for r in routes])
        return out

    def deliver_to_clients(self, room: str, clients: Sequence[str], item: bytes) -> dict[str, RoomState | None]:
        """A later fan-out item of ``room`` for local ``clients`` (the room layer knows which):
        delivered, held or dropped per user according to the room's quarantine state
        (EXT-CONSENT-IMMEDIATE-DELIVERY, EXT-CONSENT-QUARANTINE-HOLD, EXT-CONSENT-QUARANTINE-RELEASE,
        EXT-CONSENT-QUARANTINE-REJECT-DROPS)."""
        by_user: dict[str, list[str]] = {}
        for client in clients:
            user = self.user_of(client)
            if user is not None:
                by_user.setdefault(user, []).append(client)
        states = {}
        with self.store.transaction():
            for user, user_clients in by_user.items():
                states[user] = self.consent.deliver(user, room, user_clients, item)
        return states

    def received(self, client_uri: str, *, after: int = 0) -> list[InboxItem]:
        """The control API's received-messages read (held items never appear here)."""
        return self.inbox.read(client_uri, after=after)

    # -- identifierQuery / notify ------------------------------------------------------------------

    def identifier_query(self, elements: Sequence[QueryElement]) -> SearchResult:
        return self.directory.search(elements)

    def notify_is_new(self, hub_domain: str, body: bytes) -> bool:
        """Record a /notify body; False for a duplicate (answer 201, do not process). Call it inside
        the transaction that processes the body."""
        return self.dedup.record_if_new(hub_domain, body)
