"""Key material (draft-ietf-mimi-protocol-06 §4.3.1, §5.2): the SUT as target provider, as hub
relaying requests, and as requester.

As target provider the SUT is asked over MIMI by the provider that would ask it in a room: with the SUT
as follower, the reference hub's domain (hub.ref.test, hub-k.ref.test on worker k) for a room the
reference hub hosts; with the SUT as hub, the reference follower's domain (follower.ref.test) for a room
the SUT hosts. The suite signs its requests itself (a fresh Ed25519 key, cipher suite 1). Its own
KeyPackages are set up through the control API (publishKeyPackages); what is judged is what the SUT
answers on the wire.

As requester (the SUT adds a user), what the SUT sent is read from the reference peers' traffic logs.

Consent (§5.2, §5.7): a target provider may answer keyMaterial noConsent. The core checks are
consent-neutral: where the SUT's control API offers grantConsent, the target user grants the
requester consent for the room before being asked; where it offers none and the SUT refuses for lack
of consent, the check is NOT_APPLICABLE ("the SUT requires consent and its adapter offers no way to
grant it"), never a FAIL of a core requirement. Whether non-consenting users are refused is judged by
the consent checks, and by the extension check here (EXT-CONSENT-ENUMERATION), which asks no consent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from conformance.harness.control import ControlProblem
from conformance.scenarios.roles import as_follower, as_hub, both_roles
from conformance.verdicts import HarnessError, blocked, fail, judging, miss, not_applicable, observed
from reference_peer.mls import MLSError, basic_credential, cipher_suite
from reference_peer.mls.leaf import key_package_ref
from reference_peer.wire.codec import DecodeError, EncodeError
from reference_peer.wire.identity import IdentifierUri
from reference_peer.wire.mimi import (
    KeyMaterialClientCode,
    KeyMaterialRequest,
    KeyMaterialResponse,
    KeyMaterialUserCode,
    Protocol,
)
from reference_peer.wire.mls import CredentialType, KeyPackage, RequiredCapabilities

PUBLICATION_POINT = "PROTO-KEYMAT-PUBLICATION-POINT"
CLIENTS_ENUMERATED = "PROTO-KEYMAT-CLIENTS-ENUMERATED"
NO_REUSE = "PROTO-KEYMAT-NO-REUSE"
NO_EXPIRED = "PROTO-KEYMAT-NO-EXPIRED"
USER_CODE = "PROTO-KEYMAT-USER-CODE-CONSISTENT"
REQUIRED_CAPABILITIES = "PROTO-KEYMAT-REQUIRED-CAPABILITIES"
ACCEPTABLE_SUITE = "PROTO-KEYMAT-ACCEPTABLE-CIPHERSUITE"
SIGNATURE_CHECKED = "PROTO-KEYMAT-SIGNATURE-CHECKED"
UNKNOWN_USER = "PROTO-KEYMAT-UNKNOWN-USER"
ENUMERATION = "EXT-CONSENT-ENUMERATION"
HUB_RELAY = "PROTO-KEYMAT-HUB-RELAY"
VIA_HUB = "PROTO-KEYMAT-VIA-HUB"
ROOM_ID = "PROTO-KEYMAT-ROOM-ID"
NONEMPTY_SUITES = "PROTO-KEYMAT-NONEMPTY-CIPHERSUITES"
REQUEST_SIGNED = "PROTO-KEYMAT-REQUEST-SIGNED"
TARGET_IN_PATH = "PROTO-KEYMAT-TARGET-IN-PATH"
GRANT_ENABLES = "PROTO-CONSENT-GRANT-ENABLES-KEYMAT"  # not judged here: what a refusal after a grant breaks

SUITE = 1  # MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, the suite's own (and the MTI) suite
UNSUPPORTED_SUITE = 0x0A0A  # an RFC 9420 GREASE value: never a real cipher suite
ALL_SUITES = (1, 2, 3, 4, 5, 6, 7)  # the cipher suites RFC 9420 registers
UNSUPPORTED_EXTENSION = 0xF0A5  # a private-use extension type no client is expected to support
UNSUPPORTED_PROPOSAL = 0xF0A5  # a private-use (RFC 9420 §17.4), non-default proposal type
UNSUPPORTED_CREDENTIAL = 0xF0A5  # a private-use (RFC 9420 §17.5) credential type
DEFAULT_PROPOSALS = frozenset(range(1, 8))  # RFC 9420 §7.2: need not be listed in capabilities
DEFAULT_EXTENSIONS = frozenset(range(1, 6))
SHORT_LIFETIME = 2  # seconds: the lifetime of the KeyPackages published to expire while the check waits
EXPIRY_TOLERANCE = 2  # seconds past not_after before a served KeyPackage counts as expired (clock steps)
NO_GRANT = "the SUT requires consent and its adapter offers no way to grant it"
CONSENT_CODES = (KeyMaterialUserCode.noConsent, KeyMaterialUserCode.noConsentForThisRoom)
FAILURE_CODES = (
    KeyMaterialUserCode.incompatibleProtocol, KeyMaterialUserCode.userUnknown, KeyMaterialUserCode.noConsent,
    KeyMaterialUserCode.noConsentForThisRoom, KeyMaterialUserCode.userDeleted,
)


# --------------------------------------------------------------------------------------------
# The suite as requester towards the SUT as target provider


@dataclasses.dataclass
class _Requester:
    """A requesting user at one of the suite's domains, asking the SUT in the context of ``room``."""

    session: object  # MimiSession
    authority: str  # the SUT's MIMI authority
    user: str
    client: str
    room: str
    signature_priv: bytes
    signature_pub: bytes
    note: Callable[[str], None]
    granted: set[str] = dataclasses.field(default_factory=set)  # targets that granted consent for the room

    def build(self, target: str, *, suites: tuple[int, ...] = (SUITE,), extensions: tuple[int, ...] = (),
              proposals: tuple[int, ...] = (), credentials: tuple[int, ...] = (), corrupt: bool = False) -> bytes:
        request = KeyMaterialRequest(
            protocol=Protocol.mls10,
            requestingUser=IdentifierUri(uri=self.user.encode()),
            targetUser=IdentifierUri(uri=target.encode()),
            roomId=IdentifierUri(uri=self.room.encode()),
            acceptableCiphersuites=list(suites),
            requiredCapabilities=RequiredCapabilities(extension_types=list(extensions), proposal_types=list(proposals),
                                                      credential_types=list(credentials)),
            requesterSignatureKey=self.signature_pub,
            requesterCredential=basic_credential(self.client.encode()),
            key_material_request_signature=b"",
        )
        signature = cipher_suite(SUITE).sign_with_label(self.signature_priv, "KeyMaterialRequestTBS",
                                                        request.tbs().encode())
        if corrupt:
            signature = bytes([signature[0] ^ 0x01]) + signature[1:]
        return request.replace(key_material_request_signature=signature).encode()

    def ask(self, target: str, body: bytes | None = None, *, path_target: str | None = None, **options):
        """POST /keyMaterial/{target}: (HTTP status, raw body, decoded response or None when not 200)."""
        body = self.build(target, **options) if body is None else body
        value = path_target or target
        self.note(f"keyMaterial for {value} ({options or 'default request'})")
        reply = self.session.run(self.session.client.call(self.authority, "keyMaterial", value, body))
        if reply.status != 200:
            self.note(f"-> HTTP {reply.status}")
            return reply.status, reply.body, None
        try:
            response = KeyMaterialResponse.decode(reply.body)
        except (DecodeError, EncodeError) as exc:
            fail(f"keyMaterial answered 200 with an undecodable KeyMaterialResponse: {exc}")
        self.note(f"-> {response.userStatus.name}: "
                  + ", ".join(f"{_text(c.clientUri)}={c.clientStatus.name}" for c in response.clients))
        return reply.status, reply.body, response

    def ask_consented(self, target: str, **options):
        """:meth:`ask` of a core check: a refusal for lack of consent is no miss of what it judges.
        After the target granted consent (:func:`_target`) it blocks the check on the grant rule;
        without a way to grant, the check cannot apply."""
        status, body, response = self.ask(target, **options)
        if response is not None and response.userStatus in CONSENT_CODES:
            if target in self.granted:
                blocked(GRANT_ENABLES, f"{target} granted {self.user} consent for {self.room}, yet keyMaterial "
                                       f"answers {response.userStatus.name}")
            not_applicable(f"{NO_GRANT} (keyMaterial for {target} answered {response.userStatus.name})")
        return status, body, response


def _target(cast, asker: _Requester, name: str = "target", **extra):
    """A user of the SUT who, where the SUT's control API offers grantConsent, has granted the
    requester consent for its room (a no-op for a SUT that asks no consent)."""
    user = cast.sut.create_user(name, **extra)
    if cast.sut.supports("grantConsent"):
        cast.sut.grant_consent(user, asker.user, asker.room)
        asker.granted.add(user.uri)
        asker.note(f"{user.uri} granted {asker.user} consent for {asker.room}")
    return user


def _requester(cast, sut, mimi, mimi_as, names, recorder) -> _Requester:
    """The provider that asks the SUT in this role, and a room of the hub to ask for."""
    owner = cast.hub.create_user("owner")
    room = cast.hub.create_room(owner)
    if cast.sut_role == "hub":  # a follower of the SUT's room asks its hub
        domain, session = cast.follower.domain, mimi_as(cast.follower.domain)
    else:  # the reference hub asks the SUT for its user
        domain, session = mimi.domain, mimi
    name = names("requester")
    priv, pub = cipher_suite(SUITE).generate_signature_key_pair()
    return _Requester(session, urlsplit(sut.base_urls[cast.sut.domain]).netloc, f"mimi://{domain}/u/{name}",
                      f"mimi://{domain}/d/{name}/c1", room, priv, pub, recorder.note)


def _signature_verifies(request: KeyMaterialRequest) -> bool:
    """-06 §5.2: key_material_request_signature = SignWithLabel(requesterSignatureKey, "KeyMaterialRequestTBS",
    ...); nothing in the struct names the scheme, so a signature that verifies under any listed acceptable
    cipher suite's scheme is good (AMB-KEYMAT-SIGNATURE-SUITE), not only the first's."""
    suites = [s for s in request.acceptableCiphersuites if s in range(1, 8)] or [SUITE]
    for suite in dict.fromkeys(suites):
        try:
            if cipher_suite(suite).verify_with_label(
                    bytes(request.requesterSignatureKey), "KeyMaterialRequestTBS", request.tbs().encode(),
                    bytes(request.key_material_request_signature)):
                return True
        except (MLSError, ValueError):
            continue
    return False


def _text(uri: IdentifierUri) -> str:
    return bytes(uri.uri).decode("utf-8", "replace")


def _key_packages(response: KeyMaterialResponse | None) -> list[tuple[str, KeyPackage]]:
    if response is None:
        return []
    return [(_text(c.clientUri), c.keyPackage) for c in response.clients if c.keyPackage is not None]


def _ref(kp: KeyPackage) -> bytes:
    try:
        return key_package_ref(cipher_suite(kp.cipher_suite), kp)
    except (MLSError, ValueError):
        return hashlib.sha256(kp.encode()).digest()


def _is_last_resort(kp: KeyPackage) -> bool:
    return any(e.extension_type == 0x000A for e in kp.extensions)


def _publish(party, client: str, count: int, **extra) -> None:
    if not party.supports("publishKeyPackages"):
        not_applicable("the SUT's control API does not implement publishKeyPackages", operation="publishKeyPackages")
    party.publish_key_packages(client, count, replace=True, lastResort=False, **extra)


def _expired(kp: KeyPackage, now: float) -> bool:
    """Whether a KeyPackage's LeafNode lifetime ended before ``now`` (past the tolerance)."""
    return kp.leaf_node.lifetime.not_after < now - EXPIRY_TOLERANCE


def _expect_success(status, response, what: str, requirement: str) -> KeyMaterialResponse:
    if response is None:
        fail(f"{what}: keyMaterial answered HTTP {status}, not 200 with KeyPackages", requirement=requirement)
    if response.userStatus not in (KeyMaterialUserCode.success, KeyMaterialUserCode.partialSuccess):
        fail(f"{what}: keyMaterial answered {response.userStatus.name}, not success", requirement=requirement)
    return response


# --------------------------------------------------------------------------------------------
# The SUT as target provider


@pytest.mark.requirements(PUBLICATION_POINT, CLIENTS_ENUMERATED, USER_CODE)
@both_roles
@pytest.mark.operations("createUser", hub=("createRoom",), optional=("grantConsent",))
def test_key_material_lists_every_client_with_a_key_package(cast, sut, mimi, mimi_as, names, recorder):
    """keyMaterial for a user with two clients answers success listing both clients, each with a
    KeyPackage of that client.

    -06 §5.2: "success indicates that key material was provided for every client of the target user.
    partialSuccess indicates that key material was provided for at least one client of the target user":
    an answer serving both clients' KeyPackages under partialSuccess misses PROTO-KEYMAT-USER-CODE-CONSISTENT."""
    asker = _requester(cast, sut, mimi, mimi_as, names, recorder)
    target = _target(cast, asker, clients=2)
    with judging(PUBLICATION_POINT):
        status, _, response = asker.ask_consented(target.uri)
    response = _expect_success(status, response, "a freshly provisioned user", PUBLICATION_POINT)
    every_client_served = sorted(_text(c.clientUri) for c in response.clients) == sorted(target.clients) and all(
        c.clientStatus == KeyMaterialClientCode.success and c.keyPackage is not None for c in response.clients)
    if response.userStatus != KeyMaterialUserCode.success:
        if not every_client_served:
            fail(f"both clients have KeyPackages, yet userStatus is {response.userStatus.name}",
                 requirement=PUBLICATION_POINT)
        miss(USER_CODE, f"both clients are listed success with a KeyPackage, yet userStatus is "
                        f"{response.userStatus.name}, not success")
    else:
        observed(USER_CODE, "both clients got a KeyPackage: userStatus success")
    served = _key_packages(response)
    if not served:
        fail("userStatus success, yet no KeyPackage was handed out", requirement=PUBLICATION_POINT)
    observed(PUBLICATION_POINT, f"keyMaterial for {target.uri} answered {response.userStatus.name} with "
                                f"{len(served)} KeyPackage(s)")
    listed = [_text(c.clientUri) for c in response.clients]
    if sorted(listed) != sorted(target.clients):
        fail(f"the response enumerates {listed}, not the user's clients {list(target.clients)}",
             requirement=CLIENTS_ENUMERATED)
    for entry in response.clients:
        client = _text(entry.clientUri)
        if entry.clientStatus != KeyMaterialClientCode.success or entry.keyPackage is None:
            fail(f"{client} is {entry.clientStatus.name} without a KeyPackage under userStatus success",
                 requirement=CLIENTS_ENUMERATED)
        credential = entry.keyPackage.leaf_node.credential
        if credential.credential_type == CredentialType.basic and bytes(credential.identity) != client.encode():
            fail(f"the KeyPackage listed for {client} carries the credential of {bytes(credential.identity)!r}",
                 requirement=CLIENTS_ENUMERATED)
    observed(CLIENTS_ENUMERATED, f"both clients of {target.uri} listed, each success with its own KeyPackage")


@pytest.mark.requirements(NO_REUSE)
@both_roles
@pytest.mark.operations("createUser", "publishKeyPackages", hub=("createRoom",), optional=("grantConsent",))
def test_key_package_is_never_handed_out_twice(cast, sut, mimi, mimi_as, names, recorder):
    """Repeated keyMaterial requests never return a KeyPackage an earlier response returned."""
    asker = _requester(cast, sut, mimi, mimi_as, names, recorder)
    target = _target(cast, asker)
    _publish(cast.sut, target.client, 2)
    seen: dict[bytes, int] = {}
    compared = 0
    for attempt in range(1, 4):
        _, _, response = asker.ask_consented(target.uri)
        for client, kp in _key_packages(response):
            ref = _ref(kp)
            if ref in seen and not _is_last_resort(kp):
                fail(f"response {attempt} hands out the KeyPackage {ref.hex()} of {client} that response "
                     f"{seen[ref]} already handed out", requirement=NO_REUSE)
            seen.setdefault(ref, attempt)
            compared += 1
    if compared < 2:
        not_applicable(f"only {compared} KeyPackage was handed out in 3 requests: nothing to compare",
                       requirement=NO_REUSE)
        return
    observed(NO_REUSE, f"{compared} KeyPackages served over 3 requests, {len(seen)} distinct, none reused "
                       "(a last-resort one excepted)")


@pytest.mark.requirements(USER_CODE, CLIENTS_ENUMERATED)
@both_roles
@pytest.mark.operations("createUser", "publishKeyPackages", hub=("createRoom",), optional=("grantConsent",))
def test_exhausted_client_makes_partial_success(cast, sut, mimi, mimi_as, names, recorder):
    """With one of two clients out of KeyPackages, keyMaterial answers partialSuccess, that client
    keyMaterialExhausted without a KeyPackage and the other success with one."""
    asker = _requester(cast, sut, mimi, mimi_as, names, recorder)
    target = _target(cast, asker, clients=2)
    empty, full = target.clients
    _publish(cast.sut, empty, 0)
    with judging(USER_CODE):
        status, _, response = asker.ask_consented(target.uri)
    if response is None:
        fail(f"keyMaterial for a user with one client's KeyPackages left answered HTTP {status}, not 200 with a "
             "user code", requirement=USER_CODE)
    entries = {_text(c.clientUri): c for c in response.clients}
    if sorted(entries) != sorted(target.clients):
        miss(CLIENTS_ENUMERATED, f"the response enumerates {sorted(entries)}, not the user's clients "
                                 f"{list(target.clients)}")
    elif entries[full].clientStatus != KeyMaterialClientCode.success or entries[full].keyPackage is None:
        miss(CLIENTS_ENUMERATED, f"{full} has KeyPackages but is answered {entries[full].clientStatus.name}")
    else:
        observed(CLIENTS_ENUMERATED, f"both clients listed, {full} success with a KeyPackage")
    if empty in entries and (entries[empty].clientStatus != KeyMaterialClientCode.keyMaterialExhausted
                             or entries[empty].keyPackage):
        fail(f"{empty} has no KeyPackage left but is answered {entries[empty].clientStatus.name}",
             requirement=USER_CODE)
    provided = [c for c, e in entries.items() if e.clientStatus == KeyMaterialClientCode.success and e.keyPackage]
    if not provided:  # judged against what the response provides, not against what it should have listed
        if response.userStatus in (KeyMaterialUserCode.success, KeyMaterialUserCode.partialSuccess):
            fail(f"userStatus is {response.userStatus.name}, yet no client got key material", requirement=USER_CODE)
        not_applicable("no client got key material, so partialSuccess could not be judged", requirement=USER_CODE)
        return
    if response.userStatus != KeyMaterialUserCode.partialSuccess:
        fail(f"{len(provided)} of the user's two clients got key material ({empty} none), yet userStatus is "
             f"{response.userStatus.name}, not partialSuccess", requirement=USER_CODE)
    observed(USER_CODE, f"{len(provided)} of two clients got key material, {empty} none: userStatus partialSuccess")


def _publish_short_lived(party, client: str, count: int, *, replace: bool, last_resort: bool) -> bool | None:
    """publishKeyPackages of ``count`` KeyPackages living SHORT_LIFETIME seconds: whether the client now has a
    last-resort one (asked for with ``last_resort``; a SUT that publishes none is asked again without), or None
    where the SUT's adapter cannot publish such short-lived KeyPackages (422 below its own minimum, or 400/501)."""
    for lr in ((True, False) if last_resort else (False,)):
        try:
            answer = party.publish_key_packages(client, count, replace=replace, lastResort=lr,
                                                lifetimeSeconds=SHORT_LIFETIME)
        except ControlProblem as exc:
            if exc.status not in (400, 422, 501):
                raise
            continue
        return bool(lr and isinstance(answer, dict) and answer.get("lastResort", lr))
    return None


@pytest.mark.requirements(NO_EXPIRED)
@both_roles
@pytest.mark.operations("createUser", "publishKeyPackages", hub=("createRoom",), optional=("grantConsent",))
def test_no_expired_key_package_is_handed_out(cast, sut, mimi, mimi_as, names, recorder):
    """-06 §5.2: "The target provider MUST NOT provide expired keying material (ex: an MLS KeyPackage
    containing a LeafNode with a notAfter time past the current date and time)."

    A user with two clients, given KeyPackages with a lifetime of a few seconds (publishKeyPackages
    lifetimeSeconds): the first has only such KeyPackages (its last-resort one too, where the SUT keeps
    one), the second has them besides ordinary ones. Once they have expired, no keyMaterial answer, over
    as many requests as the second client has unexpired KeyPackages and two more, hands out an expired
    KeyPackage. What the SUT answers instead (keyMaterialExhausted, nothingCompatible, a fresh KeyPackage,
    the unexpired ones in any order) is not judged: the sentence forbids only the expired ones. Where the
    SUT's adapter cannot publish short-lived KeyPackages the requirement is NOT_APPLICABLE (freshly
    published KeyPackages are still looked at: an expired one served still fails)."""
    asker = _requester(cast, sut, mimi, mimi_as, names, recorder)
    target = _target(cast, asker, clients=2)
    if not cast.sut.supports("publishKeyPackages"):
        not_applicable("the SUT's control API does not implement publishKeyPackages, so no expired KeyPackage "
                       "could be offered to it", operation="publishKeyPackages")
    only, mixed = target.clients
    valid = 2
    spare = _publish_short_lived(cast.sut, only, 2, replace=True, last_resort=True)
    if spare is not None and _publish_short_lived(cast.sut, mixed, 2, replace=True, last_resort=False) is not None:
        expired_at = time.time() + SHORT_LIFETIME
        cast.sut.publish_key_packages(mixed, valid, replace=False, lastResort=False)  # unexpired ones besides
        recorder.note(f"{only}: 2 KeyPackages{' and a last-resort one' if spare else ''} living {SHORT_LIFETIME} s; "
                      f"{mixed}: 2 living {SHORT_LIFETIME} s and {valid} of the default lifetime; waiting for the "
                      "short-lived ones to expire")
        time.sleep(max(0.0, expired_at + EXPIRY_TOLERANCE + 1 - time.time()))
        answers: list[str] = []
        served = 0
        for attempt in range(1, valid + 3):
            status, _, response = asker.ask_consented(target.uri)
            now = time.time()
            for client, kp in _key_packages(response):
                if _expired(kp, now):
                    what = "its only KeyPackages" if client == only else "some of its KeyPackages"
                    fail(f"after {what} expired, response {attempt} handed out {_ref(kp).hex()} of {client}, "
                         f"expired {int(now) - kp.leaf_node.lifetime.not_after} s ago (not_after "
                         f"{kp.leaf_node.lifetime.not_after})")
                served += 1
            answers.append(response.userStatus.name if response is not None else f"HTTP {status}")
        if all(a.startswith("HTTP") for a in answers):
            not_applicable(f"after the short-lived KeyPackages expired keyMaterial answered {answers}, never a "
                           "KeyMaterialResponse: nothing to judge", requirement=NO_EXPIRED)
        else:
            observed(NO_EXPIRED, f"after the short-lived KeyPackages (lifetime {SHORT_LIFETIME} s) expired, "
                                 f"{len(answers)} keyMaterial answers ({', '.join(answers)}) handed out {served} "
                                 f"KeyPackage(s), none expired: none of {only}, whose only ones had expired, nor of "
                                 f"{mixed}, which had unexpired ones besides")
    else:
        not_applicable(f"the SUT's adapter cannot publish KeyPackages with a lifetime of {SHORT_LIFETIME} s "
                       "(publishKeyPackages lifetimeSeconds answered 400, 422 or 501), so no expired KeyPackage "
                       "could be offered to it", requirement=NO_EXPIRED)
    for client in target.clients:
        cast.sut.publish_key_packages(client, 2, replace=True, lastResort=False)
    for _ in range(3):  # fresh KeyPackages, then whatever the SUT serves once they are gone
        _, _, response = asker.ask_consented(target.uri)
        now = time.time()
        for client, kp in _key_packages(response):
            if _expired(kp, now):
                fail(f"the KeyPackage {_ref(kp).hex()} of {client} expired {int(now) - kp.leaf_node.lifetime.not_after}"
                     f" s ago (not_after {kp.leaf_node.lifetime.not_after})")


def _wrongly_incompatible(response: KeyMaterialResponse, credentials: tuple[int, ...], suites: tuple[int, ...], *,
                          proposals: tuple[int, ...] = (), extensions: tuple[int, ...] = ()):
    """The clients a response answers nothingCompatible although the capabilities it reveals for them list every
    required credential, proposal and extension type (default ones need not be listed) and an acceptable
    cipher suite."""
    def supports(caps) -> bool:
        return (all(t in caps.credentials for t in credentials)
                and all(t in caps.proposals or t in DEFAULT_PROPOSALS for t in proposals)
                and all(t in caps.extensions or t in DEFAULT_EXTENSIONS for t in extensions)
                and any(s in suites for s in caps.cipher_suites))

    return [_text(c.clientUri) for c in response.clients
            if c.clientStatus == KeyMaterialClientCode.nothingCompatible and c.clientCapabilities is not None
            and supports(c.clientCapabilities)]


def _required_capabilities_controls(asker: _Requester, target) -> None:
    """The positive controls of the requiredCapabilities check (see its docstring)."""
    status, _, response = asker.ask_consented(target.uri, suites=ALL_SUITES)
    if response is not None:
        refused = [_text(c.clientUri) for c in response.clients
                   if c.clientStatus == KeyMaterialClientCode.nothingCompatible]
        if response.userStatus == KeyMaterialUserCode.noCompatibleMaterial or refused:
            fail(f"a request requiring no capability at all (any cipher suite 1-7) answered "
                 f"{response.userStatus.name}{f' with {refused} nothingCompatible' if refused else ''}: no client can "
                 "lack key material compatible with an empty requiredCapabilities")
    served = _key_packages(response)
    if not served:
        asker.note(f"the request requiring nothing handed out no KeyPackage "
                   f"({response.userStatus.name if response is not None else f'HTTP {status}'}): the credential "
                   "control is skipped")
        return
    observed(REQUIRED_CAPABILITIES, f"a request requiring nothing: {response.userStatus.name}, {len(served)} "
                                    "KeyPackage(s), no client nothingCompatible")
    credentials = tuple(dict.fromkeys(t for _, kp in served for t in kp.leaf_node.capabilities.credentials))
    if not credentials:
        return
    status, _, response = asker.ask_consented(target.uri, suites=ALL_SUITES, credentials=credentials)
    if response is None:
        return
    wrong = _wrongly_incompatible(response, credentials, ALL_SUITES)
    if wrong:
        fail(f"requiring the credential types {list(credentials)}, which the served KeyPackages' capabilities list, "
             f"{wrong} are answered nothingCompatible although the capabilities revealed for them list those types "
             "and an acceptable cipher suite")
    observed(REQUIRED_CAPABILITIES, f"requiring the credential types {list(credentials)} listed in the served "
                                    f"KeyPackages' capabilities: {response.userStatus.name}, "
                                    f"{len(_key_packages(response))} KeyPackage(s), no client wrongly refused")
    _listed_types_control(asker, target, served)


def _listed_types_control(asker: _Requester, target, served) -> None:
    """A request requiring the non-default proposal and extension types that the served KeyPackages' capabilities
    list: a client answered nothingCompatible whose revealed clientCapabilities list all of them is wrongly refused."""
    caps = [kp.leaf_node.capabilities for _, kp in served]
    proposals = tuple(dict.fromkeys(t for c in caps for t in c.proposals if t not in DEFAULT_PROPOSALS))
    extensions = tuple(dict.fromkeys(t for c in caps for t in c.extensions if t not in DEFAULT_EXTENSIONS))
    if not proposals and not extensions:
        return
    _, _, response = asker.ask_consented(target.uri, suites=ALL_SUITES, proposals=proposals, extensions=extensions)
    if response is None:
        return
    wrong = _wrongly_incompatible(response, (), ALL_SUITES, proposals=proposals, extensions=extensions)
    required = f"the proposal types {list(proposals)} and extension types {list(extensions)}"
    if wrong:
        fail(f"requiring {required}, which the served KeyPackages' capabilities list, {wrong} are answered "
             "nothingCompatible although the capabilities revealed for them list those types and an acceptable "
             "cipher suite")
    observed(REQUIRED_CAPABILITIES, f"requiring {required} listed in the served KeyPackages' capabilities: "
                                    f"{response.userStatus.name}, {len(_key_packages(response))} KeyPackage(s), "
                                    "no client wrongly refused")


@pytest.mark.requirements(REQUIRED_CAPABILITIES)
@both_roles
@pytest.mark.operations("createUser", hub=("createRoom",), optional=("grantConsent", "publishKeyPackages"))
def test_required_capabilities_no_client_supports_get_no_key_package(cast, sut, mimi, mimi_as, names, recorder):
    """A request requiring an extension type no client supports answers noCompatibleMaterial, with no
    KeyPackage and any listed client nothingCompatible; so does one requiring a non-default proposal type,
    and one requiring a credential type, that no client supports.

    -06 §5.2: "Next there is an MLS RequiredCapabilities object, which contains (possibly empty) lists of
    required credential types, non-default proposal types, and extensions) required by the requesting
    provider." "noCompatibleMaterial indicates that none of the clients was able to supply key material
    compatible with the requiredCapabilities field in the request." A KeyPackage is compatible when its
    LeafNode's capabilities list every required type (RFC 9420 §11.1, §7.2: default proposal and extension
    types need not be listed). Each request requires one private-use type (0xF000-0xFFFF, RFC 9420 §17), so
    that no client of the SUT can be expected to support it; a refused request consumes no KeyPackage.

    First, three controls, each accepting every cipher suite of RFC 9420 (1-7) so that no suite is the reason of a
    refusal: a request requiring nothing is not answered noCompatibleMaterial, nor any client nothingCompatible
    (no client can lack what an empty requiredCapabilities asks); then a request requiring the credential types
    that a served KeyPackage's capabilities list, and one requiring the non-default proposal and extension types
    they list: a client answered nothingCompatible whose clientCapabilities (where revealed) list all of them and
    a cipher suite of the request is wrongly refused."""
    asker = _requester(cast, sut, mimi, mimi_as, names, recorder)
    target = _target(cast, asker, clients=2)
    if cast.sut.supports("publishKeyPackages"):  # KeyPackages for the two controls
        for client in target.clients:
            cast.sut.publish_key_packages(client, 4, replace=True, lastResort=False)
    _required_capabilities_controls(asker, target)
    kinds = (
        ("extension type", {"extensions": (UNSUPPORTED_EXTENSION,)}, UNSUPPORTED_EXTENSION),
        ("proposal type", {"proposals": (UNSUPPORTED_PROPOSAL,)}, UNSUPPORTED_PROPOSAL),
        ("credential type", {"credentials": (UNSUPPORTED_CREDENTIAL,)}, UNSUPPORTED_CREDENTIAL),
    )
    for kind, options, value in kinds:
        required = f"the {kind} 0x{value:04X}"
        status, _, response = asker.ask_consented(target.uri, **options)
        if response is None:
            fail(f"a request requiring {required}, which no client supports, answered HTTP {status}, not "
                 "noCompatibleMaterial")
        if _key_packages(response):
            fail(f"KeyPackages were handed out although no client supports the required {kind} 0x{value:04X} "
                 f"({response.userStatus.name})")
        if response.userStatus != KeyMaterialUserCode.noCompatibleMaterial:
            fail(f"no client supports the required {kind} 0x{value:04X}, yet userStatus is "
                 f"{response.userStatus.name}")
        wrong = [f"{_text(c.clientUri)}={c.clientStatus.name}" for c in response.clients
                 if c.clientStatus != KeyMaterialClientCode.nothingCompatible]
        if wrong:
            fail(f"requiring {required}: clients listed under noCompatibleMaterial are not nothingCompatible: "
                 f"{wrong}")
        observed(REQUIRED_CAPABILITIES, f"requiring {required}: noCompatibleMaterial, no KeyPackage, "
                                        f"{len(response.clients)} client(s) listed nothingCompatible")


@pytest.mark.requirements(ACCEPTABLE_SUITE)
@both_roles
@pytest.mark.operations("createUser", hub=("createRoom",), optional=("grantConsent", "publishKeyPackages"))
def test_key_packages_use_an_acceptable_cipher_suite(cast, sut, mimi, mimi_as, names, recorder):
    """KeyPackages returned use a cipher suite of the request, and a request accepting only a suite
    no client has gets none."""
    asker = _requester(cast, sut, mimi, mimi_as, names, recorder)
    target = _target(cast, asker)
    if cast.sut.supports("publishKeyPackages"):  # KeyPackages left for the second request too
        cast.sut.publish_key_packages(target.client, 3, replace=True, lastResort=False)
    _, _, response = asker.ask_consented(target.uri)
    served = _key_packages(response)
    for client, kp in served:
        if kp.cipher_suite != SUITE:
            fail(f"the request accepts only cipher suite {SUITE}, yet {client}'s KeyPackage uses {kp.cipher_suite}")
    if not served:
        not_applicable("no KeyPackage was handed out for a request accepting the client's own cipher suite: "
                       "nothing to judge", requirement=ACCEPTABLE_SUITE)
        return
    observed(ACCEPTABLE_SUITE, f"{len(served)} KeyPackage(s) served for a suite-{SUITE} request, all suite {SUITE}")
    status, _, response = asker.ask_consented(target.uri, suites=(UNSUPPORTED_SUITE,))
    for client, kp in _key_packages(response):
        fail(f"the request accepts only cipher suite 0x{UNSUPPORTED_SUITE:04X}, yet {client}'s KeyPackage "
             f"(suite {kp.cipher_suite}) was handed out")
    if response is not None:
        observed(ACCEPTABLE_SUITE, f"a request accepting only 0x{UNSUPPORTED_SUITE:04X} got no KeyPackage "
                                   f"({response.userStatus.name})")


@pytest.mark.requirements(SIGNATURE_CHECKED)
@both_roles
@pytest.mark.operations("createUser", "publishKeyPackages", hub=("createRoom",), optional=("grantConsent",))
def test_badly_signed_request_gets_no_key_package(cast, sut, mimi, mimi_as, names, recorder):
    """A request whose signature does not verify gets no KeyPackage and consumes none."""
    asker = _requester(cast, sut, mimi, mimi_as, names, recorder)
    target = _target(cast, asker)
    _publish(cast.sut, target.client, 1)
    status, _, response = asker.ask(target.uri, corrupt=True)  # any refusal is right, for lack of consent too
    if _key_packages(response):
        fail(f"a request with a corrupted key_material_request_signature got KeyPackages ({response.userStatus.name})")
    status, _, response = asker.ask_consented(target.uri)
    if not _key_packages(response):
        fail("after a badly signed request, a valid one found the client's only KeyPackage gone: "
             f"{response.userStatus.name if response else f'HTTP {status}'}")
    observed(SIGNATURE_CHECKED, "a badly signed request got no KeyPackage, and the client's only one was still "
                                "there for a valid request")


@pytest.mark.requirements(UNKNOWN_USER)
@both_roles
@pytest.mark.operations("createUser", hub=("createRoom",))
def test_unknown_user_gets_no_key_material(cast, sut, mimi, mimi_as, names, recorder):
    """keyMaterial for a user the SUT does not know answers userUnknown (or noConsent, hiding which
    users exist), listing no client."""
    asker = _requester(cast, sut, mimi, mimi_as, names, recorder)
    known = cast.sut.create_user("known")  # a URI of the SUT's form; the unknown one differs in its local name
    local = known.uri.rsplit("/", 1)[1]
    ghost = known.uri[: -len(local)] + hashlib.sha256(local.encode()).hexdigest()[: len(local)]
    status, _, response = asker.ask(ghost)
    if response is None:
        fail(f"keyMaterial for the unknown user {ghost} answered HTTP {status}, not userUnknown or noConsent")
    if response.userStatus not in (KeyMaterialUserCode.userUnknown, KeyMaterialUserCode.noConsent):
        fail(f"keyMaterial for the unknown user {ghost} answered {response.userStatus.name}")
    if response.clients:
        fail(f"keyMaterial for the unknown user {ghost} lists clients")
    observed(UNKNOWN_USER, f"the unknown user {ghost}: {response.userStatus.name}, no client listed")


DELETED_USER_CODES = (KeyMaterialUserCode.userDeleted, KeyMaterialUserCode.userUnknown) + CONSENT_CODES


@pytest.mark.requirements(UNKNOWN_USER)
@both_roles
@pytest.mark.operations("createUser", "deleteUser", hub=("createRoom",), optional=("grantConsent",))
def test_deleted_user_gets_no_key_material(cast, sut, mimi, mimi_as, names, recorder):
    """keyMaterial for a user the SUT deleted answers userDeleted, userUnknown or noConsent (noConsentForThisRoom
    too), listing no client; a user of the SUT who was not deleted is not answered userDeleted.

    -06 §5.2: "userDeleted indicates that the target provider wishes the requester to know that the target user
    was previously a valid user of the system and has been deleted. A target provider can of course use
    userUnknown if the provider does [not] wish to keep or specify this distinction." and noConsent: "The target
    provider can use this response as a catch all and in place of other status codes such as userUnknown if
    desired to preserve the privacy of its users." Any of these is accepted (and no other code: success,
    partialSuccess and noCompatibleMaterial speak of the clients of a valid user, incompatibleProtocol of a
    protocol); "For any other user code, the provider MUST NOT populate the clients list." Both users granted the
    requester consent before (where the SUT's control API offers grantConsent), so the still active one is a
    control: it gets its KeyPackages."""
    asker = _requester(cast, sut, mimi, mimi_as, names, recorder)
    if not cast.sut.supports("deleteUser"):
        not_applicable("the SUT's control API does not implement deleteUser", operation="deleteUser")
    gone, active = _target(cast, asker, "gone"), _target(cast, asker, "active")
    cast.sut.delete_user(gone)
    recorder.note(f"deleted {gone.uri}")
    with judging(UNKNOWN_USER):
        status, _, response = asker.ask(gone.uri)
    if response is None:
        fail(f"keyMaterial for the deleted user {gone.uri} answered HTTP {status}, not a KeyMaterialResponse with "
             "userDeleted, userUnknown or noConsent")
    if response.userStatus not in DELETED_USER_CODES:
        fail(f"keyMaterial for the deleted user {gone.uri} answered {response.userStatus.name}, not userDeleted, "
             "userUnknown or noConsent: the code speaks of a user that is still valid")
    if response.clients:
        fail(f"keyMaterial for the deleted user {gone.uri} ({response.userStatus.name}) lists clients "
             f"{[_text(c.clientUri) for c in response.clients]}")
    answered = response.userStatus.name
    status, _, response = asker.ask_consented(active.uri)
    if response is not None and response.userStatus == KeyMaterialUserCode.userDeleted:
        fail(f"keyMaterial for {active.uri}, a user of the SUT who was not deleted, answered userDeleted")
    if not _key_packages(response):
        blocked(PUBLICATION_POINT, f"keyMaterial for the active user {active.uri} answered "
                                   f"{response.userStatus.name if response is not None else f'HTTP {status}'}, not "
                                   "KeyPackages, so the check cannot tell the deleted user's answer apart")
    observed(UNKNOWN_USER, f"the deleted user {gone.uri}: {answered}, no client listed; the active user "
                           f"{active.uri} got its KeyPackages")


@pytest.mark.requirements(ENUMERATION)
@both_roles
@pytest.mark.operations("createUser", hub=("createRoom",))
def test_unknown_and_non_consenting_users_look_the_same(cast, sut, mimi, mimi_as, names, recorder):
    """keyMaterial for an unknown user and for a consent-first user who gave no consent get the same
    status, user code and response bytes (up to the target URI)."""
    asker = _requester(cast, sut, mimi, mimi_as, names, recorder)
    try:
        shy = cast.sut.create_user("shy", consentMode="consent-first")
    except ControlProblem as exc:
        if exc.status in (400, 422):
            not_applicable(f"the SUT does not create a user in consent-first mode: {exc}")
        raise
    # An unknown user whose URI differs from the shy one only in its local name, with the same length.
    local = shy.uri.rsplit("/", 1)[1]
    ghost = shy.uri[: -len(local)] + hashlib.sha256(local.encode()).hexdigest()[: len(local)]
    shy_status, shy_body, shy_response = asker.ask(shy.uri)
    ghost_status, ghost_body, ghost_response = asker.ask(ghost)
    if shy_status != ghost_status:
        fail(f"the non-consenting user is answered HTTP {shy_status}, an unknown user HTTP {ghost_status}")
    if shy_response is not None and ghost_response is not None and shy_response.userStatus != ghost_response.userStatus:
        fail(f"the non-consenting user is answered {shy_response.userStatus.name}, an unknown user "
             f"{ghost_response.userStatus.name}: who has an account shows")
    if shy_body.replace(shy.uri.encode(), b"<target>") != ghost_body.replace(ghost.encode(), b"<target>"):
        fail(f"the answers differ beyond the target URI: {shy_body.hex()} vs {ghost_body.hex()}")
    observed(ENUMERATION, f"non-consenting and unknown users both answered HTTP {shy_status}"
                          + (f" {shy_response.userStatus.name}" if shy_response is not None else "")
                          + ", identical up to the target URI")


# --------------------------------------------------------------------------------------------
# The SUT as hub relaying a request, and as requester


def _same_response(hub_body: bytes, target_body: bytes) -> str | None:
    """Why the hub's 200 answer is not the target provider's KeyMaterialResponse (None when it is).
    -06 §5.2 has the request "sent via the hub provider" and says nothing of the bytes: the hub may
    re-encode, but what comes back is the target's answer (user code, clients, the KeyPackages it signed)."""
    try:
        theirs = KeyMaterialResponse.decode(target_body)
    except (DecodeError, EncodeError) as exc:
        return f"the target's answer does not decode ({exc}) and the hub's differs from it" \
            if hub_body != target_body else None
    try:
        ours = KeyMaterialResponse.decode(hub_body)
    except (DecodeError, EncodeError) as exc:
        return f"the hub passed on an undecodable KeyMaterialResponse: {exc}"
    if ours.userStatus != theirs.userStatus or _text(ours.userUri) != _text(theirs.userUri):
        return (f"the hub answered {ours.userStatus.name} for {_text(ours.userUri)}, the target provider "
                f"{theirs.userStatus.name} for {_text(theirs.userUri)}")
    mine = [(_text(c.clientUri), c.clientStatus, c.keyPackage.encode() if c.keyPackage is not None else None)
            for c in ours.clients]
    given = [(_text(c.clientUri), c.clientStatus, c.keyPackage.encode() if c.keyPackage is not None else None)
             for c in theirs.clients]
    if sorted(mine, key=repr) != sorted(given, key=repr):
        return (f"the hub passed on clients {[(c, s.name) for c, s, _ in mine]} (or other KeyPackages) where the "
                f"target provider answered {[(c, s.name) for c, s, _ in given]}")
    return None


@pytest.mark.requirements(HUB_RELAY)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant")
def test_hub_relays_key_material_to_the_target_provider(cast, sut, mimi, mimi_as, names, recorder):
    """A keyMaterial request to the hub from one of its room's providers, for another provider's user,
    reaches that provider, and the provider's answer comes back (its user code, clients and KeyPackages;
    -06 §5.2 asks no byte identity, so the hub may re-encode it).

    The requester is a participant of the room at the reference follower: -06 §5.2 ("KeyPackages requested
    using this primitive MUST be sent via the hub provider of whatever room they will be used in") obliges the hub to relay for its room's providers, not for any provider."""
    owner = cast.hub.create_user("owner")
    room = cast.hub.create_room(owner)
    member = cast.follower.create_user("requester")
    cast.hub.add_ok(room, owner, member)  # the reference follower's provider now has a participant in the room
    recorder.note(f"{member.uri} ({cast.follower.domain}) is a participant of {room}")
    priv, pub = cipher_suite(SUITE).generate_signature_key_pair()
    asker = _Requester(mimi_as(cast.follower.domain), urlsplit(sut.base_urls[cast.sut.domain]).netloc, member.uri,
                       member.client, room, priv, pub, recorder.note)
    target = cast.follower.create_user("target")  # a user of the reference follower
    mark = cast.follower.traffic_mark()
    body = asker.build(target.uri)
    status, answer, _ = asker.ask(target.uri, body)
    relayed = [t for t in cast.follower.traffic(mark, endpoint="keyMaterial", direction="in", peer=cast.sut.domain)
               if t.value == target.uri]
    if not relayed:
        fail(f"the hub answered HTTP {status} without asking {cast.follower.domain} for {target.uri}'s KeyPackages")
    request = KeyMaterialRequest.decode(relayed[-1].request)
    if _text(request.targetUser) != target.uri or _text(request.roomId) != asker.room:
        fail(f"the relayed request names {_text(request.targetUser)} in {_text(request.roomId)}, not "
             f"{target.uri} in {asker.room}")
    theirs = relayed[-1]
    if theirs.status == 200:
        if status != 200:
            fail(f"the target provider answered HTTP 200 ({len(theirs.response)} bytes) but the hub passed on "
                 f"HTTP {status}")
        problem = _same_response(answer, theirs.response)
        if problem:
            fail(problem)
        how = "unchanged" if answer == theirs.response else "re-encoded, the same response"
    elif status is not None and 200 <= status < 300:
        fail(f"the target provider answered HTTP {theirs.status} but the hub passed on HTTP {status}")
    else:
        how = f"as a refusal (HTTP {status})"
    observed(HUB_RELAY, f"the request for {target.uri} from {member.uri}, a participant of {room}, reached "
                        f"{cast.follower.domain} and its HTTP {theirs.status} answer came back {how}")


def _add(party, room: str, actor, user, recorder) -> tuple[dict, ControlProblem | None]:
    """addParticipant whose outcome is not what is judged (the keyMaterial traffic it causes is): a
    control problem is kept, to be raised only when there is no traffic to judge."""
    try:
        result = party.add(room, actor, user)
    except ControlProblem as exc:
        recorder.note(f"addParticipant: {exc}")
        return {"outcome": f"control problem: {exc}"}, exc
    recorder.note(f"addParticipant: {result}")
    return result, None


def _sut_admin_in_reference_room(cast, poll_until):
    """A room on the reference hub with a SUT user as admin (role 3) whose client has joined."""
    owner = cast.hub.create_user("owner")
    room = cast.hub.create_room(owner)
    admin = cast.sut.create_user("admin")
    cast.hub.add_ok(room, owner, admin, role=3)
    try:
        poll_until(lambda: admin.uri in cast.sut.participants(room), what=f"the SUT to have joined {room}")
    except TimeoutError as exc:  # setting up is not what the check judges: reported, not scored
        raise HarnessError(f"the SUT's admin {admin.uri} never joined {room}, so the check cannot proceed: {exc}") \
            from None
    return room, admin


@pytest.mark.requirements(VIA_HUB)
@as_follower
@pytest.mark.operations("createUser", "getRoom", "addParticipant")
def test_follower_asks_the_hub_for_a_third_providers_key_material(cast, ref_follower, names, poll_until, recorder):
    """A follower adding a user of a third provider requests the KeyPackages from the room's hub,
    never from the third provider directly."""
    room, admin = _sut_admin_in_reference_room(cast, poll_until)
    third = ref_follower.create_user("third")
    hub_mark, third_mark = cast.hub.traffic_mark(), ref_follower.traffic_mark()
    result, problem = _add(cast.sut, room, admin, third, recorder)
    direct = [t for t in ref_follower.traffic(third_mark, endpoint="keyMaterial", direction="in", peer=cast.sut.domain)]
    if direct:
        fail(f"the SUT asked {ref_follower.domain} directly for {third.uri}'s KeyPackages instead of the hub")
    via_hub = [t for t in cast.hub.traffic(hub_mark, endpoint="keyMaterial", direction="in", peer=cast.sut.domain)
               if t.value == third.uri]
    if not via_hub:
        if problem is not None:
            raise problem
        fail(f"adding {third.uri} to {room}, the SUT never asked the hub {cast.hub.domain} for KeyPackages "
             f"(addParticipant: {result.get('outcome')})")
    observed(VIA_HUB, f"adding {third.uri}, the SUT asked the hub {cast.hub.domain} ({len(via_hub)} request(s)) "
                      f"and never {ref_follower.domain} directly")


@pytest.mark.requirements(TARGET_IN_PATH)
@both_roles
@pytest.mark.operations("createUser", hub=("createRoom",), optional=("grantConsent",))
def test_key_material_whose_path_and_body_disagree_gets_no_key_package(cast, sut, mimi, mimi_as, names, recorder):
    """A keyMaterial request whose path names one user of the SUT and whose targetUser names another gets
    no KeyPackage (of either user); the same users asked with matching path and body get theirs.

    -06 §5.2: "POST /keyMaterial/{targetUser} / The target user's URI is listed in the request path." and
    "The path includes the target user URI (with any necessary percent-encoding)." The request body
    carries targetUser too; both name the one target user (PROTO-KEYMAT-TARGET-IN-PATH, IMPLIED). A request
    where they differ names no target user, so the SUT has no user to hand KeyPackages of. -06 names no
    answer for it, so any answer that hands out no KeyPackage passes (any status, or a KeyMaterialResponse
    without KeyPackages)."""
    asker = _requester(cast, sut, mimi, mimi_as, names, recorder)
    path_user, body_user = _target(cast, asker, "pathuser"), _target(cast, asker, "bodyuser")
    with judging(TARGET_IN_PATH):
        status, _, response = asker.ask(body_user.uri, path_target=path_user.uri)
    served = [client for client, _ in _key_packages(response)]
    if served:
        fail(f"keyMaterial with path {path_user.uri} and targetUser {body_user.uri} answered "
             f"{response.userStatus.name} with KeyPackages for {served}: the path and the body name different "
             "users, so the request names no target user to serve", requirement=TARGET_IN_PATH)
    refusal = f"HTTP {status}" + (f" {response.userStatus.name} without KeyPackages" if response is not None else "")
    # The control: each user asked with matching path and body gets KeyPackages, so the refusal above was
    # for the disagreement, not for want of consent or of KeyPackages.
    for user in (path_user, body_user):
        status, _, response = asker.ask_consented(user.uri)
        if not _key_packages(response):
            blocked(PUBLICATION_POINT, f"keyMaterial for {user.uri} with matching path and targetUser answered "
                                       f"{response.userStatus.name if response is not None else f'HTTP {status}'}, "
                                       "not KeyPackages, so the check cannot tell a refusal of the disagreement apart")
    observed(TARGET_IN_PATH, f"path {path_user.uri} with targetUser {body_user.uri}: {refusal}; each user asked "
                             "with matching path and targetUser got KeyPackages")


@pytest.mark.requirements(ROOM_ID, NONEMPTY_SUITES, REQUEST_SIGNED, TARGET_IN_PATH)
@both_roles
@pytest.mark.operations("createUser", "addParticipant", hub=("createRoom",), follower=("getRoom",))
def test_sut_key_material_requests_are_well_formed(cast, poll_until, recorder):
    """keyMaterial requests the SUT sends while adding a user carry the room ID, a non-empty list of
    cipher suites, the target in the path, and a signature that verifies."""
    if cast.sut_role == "hub":
        owner = cast.sut.create_user("owner")
        room = cast.sut.create_room(owner)
        actor = owner
    else:
        room, actor = _sut_admin_in_reference_room(cast, poll_until)
    target = cast.reference.create_user("target")
    mark = cast.reference.traffic_mark()
    result, problem = _add(cast.sut, room, actor, target, recorder)
    requests = cast.reference.traffic(mark, endpoint="keyMaterial", direction="in", peer=cast.sut.domain)
    if not requests:
        if problem is not None:
            raise problem
        fail(f"adding {target.uri} to {room}, the SUT sent no keyMaterial request to {cast.reference.domain} "
             f"(addParticipant: {result.get('outcome')})", requirement=ROOM_ID)
    judged = {TARGET_IN_PATH: 0, ROOM_ID: 0, NONEMPTY_SUITES: 0, REQUEST_SIGNED: 0}
    missed: set[str] = set()

    def check(requirement: str, holds: bool, message: str) -> None:
        if holds:
            judged[requirement] += 1
        else:
            missed.add(requirement)
            miss(requirement, message)

    for item in requests:
        try:
            request = KeyMaterialRequest.decode(item.request)
        except (DecodeError, EncodeError) as exc:
            fail(f"the SUT sent an undecodable KeyMaterialRequest: {exc}", requirement=REQUEST_SIGNED)
        check(TARGET_IN_PATH, _text(request.targetUser) == item.value,
              f"the path names {item.value} but targetUser is {_text(request.targetUser)}")
        check(ROOM_ID, _text(request.roomId) == room,
              f"the request for {item.value} carries roomId {_text(request.roomId)!r}, not {room}")
        if request.protocol != Protocol.mls10:
            continue
        check(NONEMPTY_SUITES, bool(request.acceptableCiphersuites), "the request's acceptableCiphersuites is empty")
        check(REQUEST_SIGNED, _signature_verifies(request), "key_material_request_signature does not verify over "
              "KeyMaterialRequestTBS with requesterSignatureKey under any listed acceptable cipher suite")
    what = {TARGET_IN_PATH: "the target in the path is targetUser", ROOM_ID: f"roomId {room}",
            NONEMPTY_SUITES: "a non-empty acceptableCiphersuites", REQUEST_SIGNED: "a signature that verifies"}
    for requirement, count in judged.items():
        if count and requirement not in missed:
            observed(requirement, f"{count} keyMaterial request(s) of the SUT: {what[requirement]}")
        elif not count and requirement not in missed:
            not_applicable("the SUT sent no mls10 keyMaterial request to judge it by", requirement=requirement)
