"""Target-provider side of ``keyMaterial`` (protocol-06 §5.2): KeyPackage upload and one-time claims.

Rules implemented here:

* one KeyPackage per client per request; a KeyPackage given out once is never given out again
  ("Keying material provided from one response MUST NOT be provided in any other response"),
  except a *last-resort* one (the ``last_resort_key_package`` extension 0x000A of
  draft-ietf-mls-extensions, or a flag at upload), served only when the client has nothing else;
* never an expired KeyPackage (``leaf_node.lifetime.not_after`` before the injected clock's now),
  nor one not yet valid (``not_before`` in the future);
* compatibility: the KeyPackage's cipher suite is one of ``acceptableCiphersuites`` and its
  LeafNode capabilities cover ``requiredCapabilities`` (RFC 9420 §7.2 default extension and
  proposal types count as supported);
* consent gating and privacy: a refused, unknown or deleted user answers with an empty client list;
  unknown and deleted users look exactly like a refused one unless the provider reveals them.

A claim is one ``BEGIN IMMEDIATE`` transaction: choosing and marking a KeyPackage cannot interleave
with another claim, even from another connection to the same database.

Signatures are not checked here (the store keeps what a local client uploaded; the uploading
client is trusted by its own provider). Uploads are parsed strictly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..mls.crypto import cipher_suite
from ..mls.errors import UnsupportedCipherSuite
from ..overrides import NO_OVERRIDES, Overrides, step
from ..wire.codec import DecodeError
from ..wire.identity import IdentifierUri
from ..wire.mimi import (
    ClientKeyMaterial,
    KeyMaterialClientCode,
    KeyMaterialResponse,
    KeyMaterialUserCode,
    Protocol,
)
from ..wire.mls import Capabilities, KeyPackage, LeafNodeSource, MLSMessage, ProtocolVersion, WireFormat
from .consent import ConsentState, ConsentVerdict
from .store import Clock, Store

LAST_RESORT_EXTENSION = 0x000A  # draft-ietf-mls-extensions last_resort_key_package
KEY_PACKAGE_REF_LABEL = "MLS 1.0 KeyPackage Reference"
# RFC 9420 §7.2: types every client supports whether or not its capabilities list them.
DEFAULT_EXTENSION_TYPES = frozenset({1, 2, 3, 4, 5})
DEFAULT_PROPOSAL_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7})

# -- the steps of the keyMaterial rules (reference_peer.overrides) ---------------------------------------

UNKNOWN_USER_REFUSED = step(
    "keymaterial.claim.unknown-user-refused", "PROTO-KEYMAT-UNKNOWN-USER", "EXT-CONSENT-ENUMERATION",
    summary="keyMaterial for a user the provider does not know is refused (noConsent, or userUnknown when the "
            "provider reveals unknown users), never answered success")
DELETED_USER_REFUSED = step(
    "keymaterial.claim.deleted-user-refused", "PROTO-KEYMAT-UNKNOWN-USER",
    summary="keyMaterial for a deleted user is answered userDeleted, userUnknown or noConsent with no clients, "
            "never as if the user were still active")
UNKNOWN_USER_HIDDEN = step(
    "keymaterial.claim.unknown-user-hidden", "EXT-CONSENT-ENUMERATION",
    summary="an unknown user answers noConsent, like a user who gave no consent, unless the provider is set to "
            "reveal unknown users")
REFUSAL_CLAIMS_NOTHING = step(
    "keymaterial.claim.refusal-claims-nothing", "EXT-CONSENT-FIRST-NO-KEYPACKAGES",
    summary="a keyMaterial refused for lack of consent claims no KeyPackage")
EVERY_CLIENT = step(
    "keymaterial.claim.every-client", "PROTO-KEYMAT-CLIENTS-ENUMERATED",
    summary="keyMaterial enumerates (and serves) every client of the target user")
CLIENT_ORDER = step(
    "keymaterial.claim.client-order", "PROTO-KEYMAT-CLIENTS-ENUMERATED",
    summary="the clients of the target user are enumerated in client URI order")
PARTIAL_SUCCESS = step(
    "keymaterial.claim.partial-success", "PROTO-KEYMAT-USER-CODE-CONSISTENT",
    summary="userStatus is partialSuccess when some but not all clients could supply a KeyPackage")
SKIP_EXPIRED = step(
    "keymaterial.claim.skip-expired", "PROTO-KEYMAT-NO-EXPIRED",
    summary="an expired KeyPackage is never served")
CHOOSE_UNEXPIRED = step(
    "keymaterial.claim.choose-unexpired", "PROTO-KEYMAT-NO-EXPIRED",
    summary="the KeyPackage chosen for a client is itself unexpired, not only the client's having an unexpired one")
LAST_RESORT_EXPIRES = step(
    "keymaterial.claim.last-resort-expires", "PROTO-KEYMAT-NO-EXPIRED",
    summary="a last-resort KeyPackage whose lifetime has ended is not served either")
MARK_CLAIMED = step(
    "keymaterial.claim.mark-claimed", "PROTO-KEYMAT-NO-REUSE",
    summary="a one-time KeyPackage handed out is marked claimed and never handed out again")
REQUIRED_CAPABILITIES = step(
    "keymaterial.claim.required-capabilities", "PROTO-KEYMAT-REQUIRED-CAPABILITIES",
    summary="a KeyPackage is served only if its capabilities cover the request's requiredCapabilities")
REQUIRED_PROPOSAL_TYPES = step(
    "keymaterial.claim.required-proposal-types", "PROTO-KEYMAT-REQUIRED-CAPABILITIES",
    summary="a KeyPackage is served only if its capabilities list the required non-default proposal types")
REQUIRED_CREDENTIAL_TYPES = step(
    "keymaterial.claim.required-credential-types", "PROTO-KEYMAT-REQUIRED-CAPABILITIES",
    summary="a KeyPackage is served only if its capabilities list the required credential types")
LISTED_CREDENTIAL_TYPES_SERVED = step(
    "keymaterial.claim.listed-credential-types-served", "PROTO-KEYMAT-REQUIRED-CAPABILITIES",
    summary="a KeyPackage whose capabilities list the required credential types is compatible (not refused for them)")
LISTED_PROPOSAL_TYPES_SERVED = step(
    "keymaterial.claim.listed-proposal-types-served", "PROTO-KEYMAT-REQUIRED-CAPABILITIES",
    summary="a KeyPackage whose capabilities list the required non-default proposal types is compatible (not "
            "refused for them)")
LIST_NOTHING_COMPATIBLE = step(
    "keymaterial.claim.list-nothing-compatible-clients", "PROTO-KEYMAT-NOCOMPAT-MAY-LIST-CLIENTS",
    summary="a noCompatibleMaterial answer lists the user's clients (unless the settings say not to)")
REVEAL_CAPABILITIES = step(
    "keymaterial.claim.reveal-capabilities", "PROTO-KEYMAT-REQUIRED-CAPABILITIES",
    summary="a nothingCompatible client carries its capabilities (unless the settings say not to)")
ACCEPTABLE_CIPHERSUITE = step(
    "keymaterial.claim.acceptable-ciphersuite", "PROTO-KEYMAT-ACCEPTABLE-CIPHERSUITE",
    summary="a KeyPackage is served only if its cipher suite is one of the request's acceptableCiphersuites")
LAST_RESORT_ANSWERED_AGAIN = step(
    "keymaterial.claim.last-resort-answered-again", "PROTO-KEYMAT-PUBLICATION-POINT",
    summary="a claim that picks a last-resort KeyPackage served before is answered like the first (the KeyPackage "
            "again), never an error (hook(conn, row_id) may raise)")
LAST_RESORT_LAST = step(
    "keymaterial.claim.last-resort-last", "PROTO-KEYMAT-LAST-RESORT-LAST",
    summary="a client's last-resort KeyPackage is served only when it has no one-time KeyPackage left")


class InvalidUpload(ValueError):
    """An uploaded KeyPackage the store refuses (malformed, not a KeyPackage, unknown client...)."""


@dataclass(frozen=True)
class ParsedKeyPackage:
    key_package: KeyPackage
    encoded: bytes  # the bare KeyPackage encoding
    ref: bytes
    last_resort: bool


def parse_key_package(data: bytes) -> ParsedKeyPackage:
    """A KeyPackage from its bare encoding (the ``KeyPackage`` struct, the form the store keeps and
    keyMaterial serves), with its KeyPackageRef.

    Only the bare form is tried: the two forms cannot be told apart by trying both, since a bare
    KeyPackage (``0x0001`` version, ``0x0001`` cipher suite, ...) can also decode as a complete
    MLSMessage carrying a PublicMessage (wire format ``0x0001``). A caller holding an MLSMessage
    wrapper uses :func:`parse_key_package_message`."""
    try:
        kp = KeyPackage.decode(data)
    except DecodeError as exc:
        raise InvalidUpload(f"not a KeyPackage: {exc}") from None
    return _parsed(kp)


def parse_key_package_message(data: bytes) -> ParsedKeyPackage:
    """A KeyPackage from its MLSMessage wrapper (wire format ``mls_key_package``), with its KeyPackageRef."""
    try:
        msg = MLSMessage.decode(data)
    except DecodeError as exc:
        raise InvalidUpload(f"not an MLSMessage: {exc}") from None
    if msg.wire_format != WireFormat.mls_key_package:
        raise InvalidUpload(f"MLSMessage carries {msg.wire_format.name}, not a KeyPackage")
    return _parsed(msg.key_package)


def _parsed(kp: KeyPackage) -> ParsedKeyPackage:
    if kp.version != ProtocolVersion.mls10:
        raise InvalidUpload("KeyPackage version is not mls10")
    if kp.leaf_node.leaf_node_source != LeafNodeSource.key_package:
        raise InvalidUpload("KeyPackage leaf_node_source is not key_package")
    encoded = kp.encode()
    try:
        suite = cipher_suite(kp.cipher_suite)
    except UnsupportedCipherSuite as exc:  # no hash to compute the ref with
        raise InvalidUpload(str(exc)) from None
    ref = suite.ref_hash(KEY_PACKAGE_REF_LABEL, encoded)
    last_resort = any(e.extension_type == LAST_RESORT_EXTENSION for e in kp.extensions)
    return ParsedKeyPackage(kp, encoded, ref, last_resort)


@dataclass(frozen=True)
class KeyMaterialQuery:
    """The parts of a KeyMaterialRequest that decide the answer (the handler checks the signature)."""

    requester: str
    target: str
    room: str | None
    acceptable_ciphersuites: Sequence[int]
    required_extensions: Sequence[int] = ()
    required_proposals: Sequence[int] = ()
    required_credentials: Sequence[int] = ()
    protocol: int = Protocol.mls10


@dataclass(frozen=True)
class ClientMaterial:
    client_uri: str
    code: KeyMaterialClientCode
    key_package: bytes | None = None  # bare KeyPackage encoding, for success
    ref: bytes | None = None
    capabilities: Capabilities | None = None  # for nothingCompatible, when the provider reveals them


@dataclass(frozen=True)
class KeyMaterialResult:
    user_code: KeyMaterialUserCode
    user_uri: str
    clients: tuple[ClientMaterial, ...] = field(default_factory=tuple)

    def to_response(self) -> KeyMaterialResponse:
        """The wire struct the keyMaterial handler sends."""
        return KeyMaterialResponse(
            protocol=Protocol.mls10,
            userStatus=self.user_code,
            userUri=IdentifierUri(uri=self.user_uri.encode()),
            clients=[
                ClientKeyMaterial(
                    clientStatus=c.code,
                    clientUri=IdentifierUri(uri=c.client_uri.encode()),
                    keyPackage=KeyPackage.decode(c.key_package) if c.code == KeyMaterialClientCode.success else None,
                    clientCapabilities=c.capabilities if c.code == KeyMaterialClientCode.nothingCompatible else None,
                )
                for c in self.clients
            ],
        )


@dataclass(frozen=True)
class KeyMaterialSettings:
    reveal_unknown_users: bool = False  # False: unknown users answer noConsent (privacy-preserving)
    reveal_deleted_users: bool = False  # False: deleted users answer like unknown ones
    reveal_capabilities: bool = True  # include clientCapabilities for nothingCompatible
    list_clients_when_nothing_compatible: bool = True  # §5.2: MAY populate for noCompatibleMaterial


@dataclass
class _Candidate:
    row_id: int
    encoded: bytes
    ref: bytes
    suite: int
    not_after: int
    last_resort: bool
    capabilities: Capabilities


class KeyMaterialService:
    def __init__(self, store: Store, consent: ConsentState, clock: Clock, settings: KeyMaterialSettings, *,
                 overrides: Overrides = NO_OVERRIDES) -> None:
        self._store = store
        self.overrides = overrides
        self._consent = consent
        self._clock = clock
        self.settings = settings

    # -- upload ----------------------------------------------------------------------------------

    def upload(self, client_uri: str, key_packages: Iterable[bytes], *, last_resort: bool = False) -> list[bytes]:
        """Store KeyPackages (bare encodings) for a local client; returns their KeyPackageRefs. A
        KeyPackage already stored (same ref) is refused: it may already have been given out."""
        parsed = [parse_key_package(data) for data in key_packages]
        now = int(self._clock())
        with self._store.transaction() as conn:
            if conn.execute("SELECT 1 FROM clients WHERE uri = ?", (client_uri,)).fetchone() is None:
                raise InvalidUpload(f"unknown client {client_uri!r}")
            for p in parsed:
                if conn.execute("SELECT 1 FROM key_packages WHERE ref = ?", (p.ref,)).fetchone() is not None:
                    raise InvalidUpload(f"KeyPackage {p.ref.hex()} was already uploaded")
                lifetime = p.key_package.leaf_node.lifetime
                conn.execute(
                    "INSERT INTO key_packages (client_uri, ref, key_package, cipher_suite, not_before, not_after, "
                    "last_resort, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        client_uri,
                        p.ref,
                        p.encoded,
                        p.key_package.cipher_suite,
                        lifetime.not_before,
                        lifetime.not_after,
                        int(last_resort or p.last_resort),
                        now,
                    ),
                )
        return [p.ref for p in parsed]

    def available(self, client_uri: str) -> int:
        """Unclaimed, unexpired, non-last-resort KeyPackages of a client."""
        now = int(self._clock())
        row = self._store.conn.execute(
            "SELECT COUNT(*) FROM key_packages WHERE client_uri = ? AND claimed_at IS NULL AND last_resort = 0 "
            "AND not_after >= ? AND not_before <= ?",
            (client_uri, now, now),
        ).fetchone()
        return int(row[0])

    def purge_expired(self) -> int:
        """Delete expired KeyPackages and routes (§5.2: routes may go once not_after has passed)."""
        now = int(self._clock())
        with self._store.transaction() as conn:
            n = conn.execute("DELETE FROM key_packages WHERE not_after < ?", (now,)).rowcount
            conn.execute("DELETE FROM kp_routes WHERE not_after < ?", (now,))
            conn.execute("DELETE FROM hub_kp_routes WHERE not_after < ?", (now,))
        return n

    # -- claim -----------------------------------------------------------------------------------

    def claim(self, query: KeyMaterialQuery) -> KeyMaterialResult:
        refused = KeyMaterialUserCode.noConsent
        if int(query.protocol) != Protocol.mls10:
            return KeyMaterialResult(KeyMaterialUserCode.incompatibleProtocol, query.target)
        with self._store.transaction() as conn:
            row = conn.execute("SELECT status FROM users WHERE uri = ?", (query.target,)).fetchone()
            if row is None:
                if self.overrides.departs(UNKNOWN_USER_REFUSED):
                    return KeyMaterialResult(KeyMaterialUserCode.success, query.target)
                reveal = self.settings.reveal_unknown_users or self.overrides.departs(UNKNOWN_USER_HIDDEN)
                code = KeyMaterialUserCode.userUnknown if reveal else refused
                return KeyMaterialResult(code, query.target)
            if row[0] == "deleted":
                if self.settings.reveal_deleted_users:
                    code = KeyMaterialUserCode.userDeleted
                elif self.settings.reveal_unknown_users:
                    code = KeyMaterialUserCode.userUnknown
                else:
                    code = refused
                if not self.overrides.departs(DELETED_USER_REFUSED):  # departing: answered as an active user
                    return KeyMaterialResult(code, query.target)
            verdict = self._consent.decide_keymaterial(query.requester, query.target, query.room)
            if verdict != ConsentVerdict.allowed:
                self.overrides.hook(REFUSAL_CLAIMS_NOTHING, conn, query.target, int(self._clock()))
                return KeyMaterialResult(KeyMaterialUserCode[verdict.value], query.target)

            now = int(self._clock())
            clients = [
                r[0] for r in conn.execute("SELECT uri FROM clients WHERE user_uri = ? ORDER BY uri", (query.target,))
            ]
            clients = self.overrides.hook(CLIENT_ORDER, clients) or clients
            if self.overrides.departs(EVERY_CLIENT):
                clients = clients[:1]
            results = [self._claim_for_client(conn, client, query, now) for client in clients]
            codes = [r.code for r in results]
            if codes and all(c == KeyMaterialClientCode.success for c in codes):
                user_code = KeyMaterialUserCode.success
            elif KeyMaterialClientCode.success in codes:
                user_code = (KeyMaterialUserCode.success if self.overrides.departs(PARTIAL_SUCCESS)
                             else KeyMaterialUserCode.partialSuccess)
            else:
                # No client could supply anything, whether incompatible or exhausted: -06 has no
                # "exhausted" user code, and noCompatibleMaterial is the one that may list clients.
                user_code = KeyMaterialUserCode.noCompatibleMaterial
                if (not self.settings.list_clients_when_nothing_compatible
                        or self.overrides.departs(LIST_NOTHING_COMPATIBLE)):
                    results = []
            return KeyMaterialResult(user_code, query.target, tuple(results))

    def _claim_for_client(self, conn, client: str, query: KeyMaterialQuery, now: int) -> ClientMaterial:
        serve_expired = self.overrides.departs(SKIP_EXPIRED)
        rows = conn.execute(
            "SELECT id, key_package, ref, cipher_suite, not_after, last_resort, not_after >= ? FROM key_packages "
            "WHERE client_uri = ? AND (claimed_at IS NULL OR last_resort = 1) AND not_before <= ? "
            "ORDER BY not_after, id",
            (now, client, now),
        ).fetchall()
        # -06 §5.2: never a KeyPackage whose LeafNode lifetime ended (a last-resort one included).
        if not (serve_expired or (self.overrides.departs(CHOOSE_UNEXPIRED) and any(r[6] for r in rows))):
            keep_last_resort = self.overrides.departs(LAST_RESORT_EXPIRES)
            rows = [r for r in rows if r[6] or (keep_last_resort and r[5])]
        candidates = [
            _Candidate(
                rid, bytes(kp), bytes(ref), suite, not_after, bool(lr), KeyPackage.decode(kp).leaf_node.capabilities
            )
            for rid, kp, ref, suite, not_after, lr, _unexpired in rows
        ]
        if serve_expired:  # expired ones last: served once the valid ones ran out
            candidates.sort(key=lambda c: c.not_after < now)
        if not candidates:
            return ClientMaterial(client, KeyMaterialClientCode.keyMaterialExhausted)
        compatible = [c for c in candidates if self._compatible(c, query)]
        if not compatible:
            reveal = self.settings.reveal_capabilities and not self.overrides.departs(REVEAL_CAPABILITIES)
            caps = candidates[0].capabilities if reveal else None
            return ClientMaterial(client, KeyMaterialClientCode.nothingCompatible, capabilities=caps)
        # Soonest-expiring one-time KeyPackage first; the newest last-resort one only if none.
        one_time = [c for c in compatible if not c.last_resort]
        last_resort = [c for c in compatible if c.last_resort]
        if last_resort and self.overrides.departs(LAST_RESORT_LAST):  # the reusable one first
            one_time = []
        chosen = one_time[0] if one_time else max(last_resort, key=lambda c: c.row_id)
        if chosen.last_resort:
            self.overrides.hook(LAST_RESORT_ANSWERED_AGAIN, conn, chosen.row_id)
            conn.execute(
                "UPDATE key_packages SET times_served = times_served + 1, claimed_by = ?, claimed_at = ? WHERE id = ?",
                (query.requester, now, chosen.row_id),
            )
        elif self.overrides.departs(MARK_CLAIMED):  # handed out, but left available for the next claim
            pass
        else:
            cur = conn.execute(
                "UPDATE key_packages SET claimed_by = ?, claimed_at = ?, times_served = 1 "
                "WHERE id = ? AND claimed_at IS NULL",
                (query.requester, now, chosen.row_id),
            )
            if cur.rowcount != 1:  # impossible inside BEGIN IMMEDIATE; fail loudly rather than double-serve
                raise RuntimeError(f"KeyPackage {chosen.ref.hex()} was claimed concurrently")
        conn.execute(
            "INSERT OR REPLACE INTO kp_routes (ref, client_uri, user_uri, requester, room_id, not_after, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (chosen.ref, client, query.target, query.requester, query.room or "", chosen.not_after, now),
        )
        return ClientMaterial(client, KeyMaterialClientCode.success, key_package=chosen.encoded, ref=chosen.ref)

    def _compatible(self, candidate: _Candidate, query: KeyMaterialQuery) -> bool:
        caps = candidate.capabilities
        if self.overrides.departs(REQUIRED_CAPABILITIES):
            query = KeyMaterialQuery(query.requester, query.target, query.room, query.acceptable_ciphersuites)
        return (
            (candidate.suite in set(query.acceptable_ciphersuites) or self.overrides.departs(ACCEPTABLE_CIPHERSUITE))
            and all(t in caps.extensions or t in DEFAULT_EXTENSION_TYPES for t in query.required_extensions)
            and (all((t in caps.proposals and not self.overrides.departs(LISTED_PROPOSAL_TYPES_SERVED))
                     or t in DEFAULT_PROPOSAL_TYPES for t in query.required_proposals)
                 or self.overrides.departs(REQUIRED_PROPOSAL_TYPES))
            and (all(t in caps.credentials and not self.overrides.departs(LISTED_CREDENTIAL_TYPES_SERVED)
                     for t in query.required_credentials)
                 or self.overrides.departs(REQUIRED_CREDENTIAL_TYPES))
        )


def query_from_request(request) -> KeyMaterialQuery:
    """A :class:`KeyMaterialQuery` from a decoded ``KeyMaterialRequest`` (an empty roomId: no room)."""
    room = bytes(request.roomId.uri).decode("utf-8") or None
    required = request.requiredCapabilities
    return KeyMaterialQuery(
        requester=bytes(request.requestingUser.uri).decode("utf-8"),
        target=bytes(request.targetUser.uri).decode("utf-8"),
        room=room,
        acceptable_ciphersuites=tuple(request.acceptableCiphersuites or ()),
        required_extensions=tuple(required.extension_types) if required else (),
        required_proposals=tuple(required.proposal_types) if required else (),
        required_credentials=tuple(required.credential_types) if required else (),
        protocol=int(request.protocol),
    )


# --------------------------------------------------------------------------------------------
# KeyPackageRef routing (§5.2 last paragraph, §5.5 NOTE)


@dataclass(frozen=True)
class WelcomeRoute:
    """Target provider: where a claimed KeyPackage went, to deliver the Welcome that uses it."""

    ref: bytes
    client_uri: str
    user_uri: str
    requester: str
    room: str | None


class KeyPackageRoutes:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    # target provider side: filled by KeyMaterialService.claim

    def welcome_routes(self, refs: Iterable[bytes]) -> list[WelcomeRoute]:
        """Routes for the refs of a Welcome's ``secrets`` that this provider handed out (others are
        skipped: they belong to other providers), so the Welcome reaches the clients whose KeyPackages
        they are (PROTO-KEYMAT-KPREF-TARGET-CLIENT), each with the requester that claimed it: in quarantine mode
        a room from a requester the user granted is not held (EXT-CONSENT-QUARANTINE-GRANTED-NOT-HELD)."""
        out = []
        for ref in refs:
            row = self._store.conn.execute(
                "SELECT client_uri, user_uri, requester, room_id FROM kp_routes WHERE ref = ?", (bytes(ref),)
            ).fetchone()
            if row is not None:
                out.append(WelcomeRoute(bytes(ref), row[0], row[1], row[2], row[3] or None))
        return out

    def forget_welcome_routes(self, refs: Iterable[bytes]) -> None:
        """§5.2: an association can go once its Welcome has been forwarded."""
        with self._store.transaction() as conn:
            conn.executemany("DELETE FROM kp_routes WHERE ref = ?", [(bytes(r),) for r in refs])

    # hub side: the hub records, per claimed KeyPackage, the provider it came from

    def record_hub_routes(self, room: str, provider_domain: str, key_packages: Iterable[bytes]) -> list[bytes]:
        """Record ref -> provider for KeyPackages (bare encodings, as keyMaterial serves them) a hub obtained
        from ``provider_domain`` for ``room``; returns the refs."""
        parsed = [parse_key_package(kp) for kp in key_packages]
        now = int(self._clock())
        with self._store.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO hub_kp_routes (ref, provider_domain, room_id, not_after, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (p.ref, provider_domain.lower(), room, p.key_package.leaf_node.lifetime.not_after, now)
                    for p in parsed
                ],
            )
        return [p.ref for p in parsed]

    def hub_route(self, ref: bytes) -> str | None:
        row = self._store.conn.execute(
            "SELECT provider_domain FROM hub_kp_routes WHERE ref = ?", (bytes(ref),)
        ).fetchone()
        return None if row is None else row[0]

    def forget_hub_routes(self, refs: Iterable[bytes]) -> None:
        with self._store.transaction() as conn:
            conn.executemany("DELETE FROM hub_kp_routes WHERE ref = ?", [(bytes(r),) for r in refs])
