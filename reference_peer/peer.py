"""The reference MIMI provider: the building blocks assembled into one provider domain.

A :class:`ReferenceProvider` is hub for the rooms it hosts and follower for the others, per room
(draft-ietf-mimi-protocol-06 §3). It owns

* ``state``: the durable :class:`ProviderState` (users, clients, KeyPackages, consent, dedup, outbox),
  plus the peer's own tables (``peer_store.py``) in the same SQLite store;
* ``hub_rooms``: one :class:`HubRoom` per hosted room;
* ``members``: one :class:`SimulatedClient` per (room, local client), the provider's own users' MLS
  state, for rooms hosted anywhere;
* ``transport``: the :class:`Provider` (endpoint handlers) a :class:`MimiServer` serves;
* an :class:`OutboxWorker` delivering /notify (and consent calls) with a :class:`MimiClient`.

Every state change and the fan-out it causes are written in one transaction (the outbox), and a
/notify body is deduplicated in the transaction that processes it, so a crash loses no accepted
message and no follower processes one twice.

Fan-out intake: every FanoutMessage for a local client goes through the provider inbox (where
quarantine can hold it, consent-modes extension), and each client consumes its inbox in order with a
persisted cursor (:meth:`ReferenceProvider.pump`). Decrypted application messages land in
``peer_received``, the control API's read.

::

    provider = ReferenceProvider(ProviderOptions("a.example", cert, key, ca, peers={"b.example": "127.0.0.1:8444"}))
    server = MimiServer([provider.transport], ca)
    await server.start(); await provider.start()
    ...
    await provider.stop(); await server.stop()
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import yaml

from . import newcomer
from .config import WILDCARD_PREFIX, normalize_peer_key
from .mls import CryptoError, MLSError, basic_credential, cipher_suite
from .mls.leaf import is_last_resort, key_package_ref, make_key_package
from .mls.tree import RatchetTree
from .overrides import Overrides, step
from .peer_store import PeerStore
from .provider import ProviderState
from .provider.consent import ConsentDomainError, ConsentMode, ConsentSettings
from .provider.directory_search import elements_from_request
from .provider.keymaterial import query_from_request
from .provider.outbox import DeliveryResult, OutboxItem, OutboxWorker, RetryPolicy
from .provider.provider import ProviderSettings
from .provider.store import Store
from .room import HubIdentity, HubRoom, SimulatedClient, open_group_info_response
from .room.hub import group_info_refusal
from .room.naming import domain_of_uri
from .room.transfer_settings import HubTransferSettings
from .server.client import MimiClient, PeerError
from .server.names import normalize_domain
from .server.traffic import HANDLER_CLOCK, TrafficLog, ViolationLog
from .server.transport import MimiHTTPError, MimiRequest, MimiResponse, Provider
from .wire.codec import DecodeError, EncodeError
from .wire.hub_transfer import HubState
from .wire.identity import IdentifierUri, MimiUri, MimiUriError, UriKind
from .wire.mimi import (
    AbuseReport,
    ConsentEntry,
    FanoutMessage,
    GroupInfoCode,
    GroupInfoRequest,
    GroupInfoResponse,
    IdentifierRequest,
    KeyMaterialRequest,
    KeyMaterialResponse,
    KeyMaterialUserCode,
    Protocol,
    SubmitMessageResponse,
    SubmitResponseCode,
    UpdateResponseCode,
    UpdateRoomResponse,
    decode_fanout_sequence_tolerant,
)
from .wire.mls import (
    AppDataDictionary,
    ComponentData,
    ExtensionType,
    ExternalSender,
    MLSMessage,
    ProposalType,
    RequiredCapabilities,
    WireFormat,
)

log = logging.getLogger(__name__)


# -- the named steps of the provider's rules (reference_peer.overrides): where a peer may be built to
# -- behave otherwise. A fault or an allowed variant names the steps it departs from.

# outgoing requests (ReferenceProvider._call)
SEND_BODY_AS_ENCODED = step("provider.call.body-as-encoded", "PROTO-TRANSPORT-BODY-ENCODING",
                            summary="a request body sent to a peer is the encoded struct, nothing after it")
SEND_FROM_MIMI_ADDR_SPEC = step("provider.call.from-mimi-addr-spec", "PROTO-TRANSPORT-FROM-ADDR-SPEC",
                                "PROTO-TRANSPORT-FROM-LOCALPART-MIMI",
                                summary="a request to a peer carries From: mimi@<own domain>, a bare addr-spec")
SEND_HOST_OF_TARGET = step("provider.call.host-names-target", "PROTO-TRANSPORT-HOST-TARGET",
                           summary="a request to a peer carries a Host naming the target provider")
FANOUT_PROTOCOL_IMPLIED = step("hub.notify.protocol-implied", "PROTO-TRANSPORT-BODY-ENCODING",
                               summary="a FanoutMessage carries no protocol octet: the room's protocol is implied "
                                       "(-06 §5.5; AMB-PROTOCOL-CONTEXT)")
FANOUT_ARM_BY_CONTENT_TYPE = step("hub.notify.arm-by-content-type", "PROTO-TRANSPORT-BODY-ENCODING",
                                  summary="a FanoutMessage's select arm follows its message's content type "
                                          "(frank, moreProposals, externalProposals; AMB-FANOUT-SELECT)")
ENCODE_NOTIFY_READING = step("hub.notify.encode-reading", "PROTO-TRANSPORT-BODY-ENCODING",
                             summary="a /notify body leaves in the FanoutMessage readings the peer takes "
                                     "(hub.notify.protocol-implied, hub.notify.arm-by-content-type)")
SEND_ABUSE_REPORTINGUSER = step("provider.abuse.reportinguser-as-drafted", "PROTO-ABUSE-TO-HUB",
                                summary="AbuseReport.reportingUser is sent as the IdentifierUri -06 §5.9 writes "
                                        "(AMB-ABUSE-REPORTINGUSER-OPTIONAL)")
ABUSE_ACCEPTED_WITHOUT_BODY = step("hub.abuse.accept-without-body", "PROTO-ABUSE-ACCEPT-NO-BODY",
                                   summary="a well-formed abuse report for a hosted room is answered 201 with no "
                                           "body (-06 §5.9: \"There is no response body.\")")

# hub: fan-out and its delivery
QUEUE_NOTIFY_IN_ORDER = step("hub.fanout.queue-in-order", "PROTO-FANOUT-ORDERED", "POLICY-OPS-DELIVERY-ORDER",
                             summary="the /notify bodies of a room change are queued for each provider in the "
                                     "order the hub accepted them")
LOCAL_GETS_REMOTE_MESSAGES = step("hub.fanout.local-clients-get-followers-messages",
                                  "PROTO-FANOUT-TO-ACTIVE-PROVIDERS",
                                  summary="an application message a follower submitted reaches the hub's own "
                                          "local clients in the room, like the hub's own clients' messages")
RETRY_REFUSED_NOTIFY = step("hub.notify.retry-refused", "PROTO-FANOUT-RETRY-NON-201",
                            "PROTO-FANOUT-SUCCESS-IS-COMMITMENT", "PROTO-FANOUT-RETRY-AFTER-RESPECTED",
                            summary="a /notify answered other than 201 is retried, not before its Retry-After")

# hub: update, submitMessage, groupInfo, proxyDownload
REFUSAL_AS_200_WITH_CODE = step("hub.answer.refusal-as-200-with-code", "PROTO-UPDATE-NOT-ALLOWED",
                                "PROTO-UPDATE-INVALID-PROPOSAL", "PROTO-UPDATE-WRONG-EPOCH",
                                "PROTO-SUBMIT-EPOCH-TOO-OLD",
                                summary="an update or submitMessage the hub refuses is answered 200 with the "
                                        "failure code (AMB-FAILURE-CODE-STATUS allows a 4xx)")
GROUPINFO_HIDES_UNKNOWN_ROOM = step("hub.groupinfo.hide-unknown-room", "PROTO-GROUPINFO-NO-SUCH-ROOM",
                                    summary="groupInfo for a room the hub does not host answers notAuthorized, "
                                            "as for a room that exists (-06 §5.6 also names noSuchRoom)")
PROXY_ASSET_HOSTS_ONLY = step("hub.download.asset-hosts-only", "PROTO-ASSETS-PROXY-NO-OPEN-PROXY",
                              summary="proxyDownload fetches only https URLs of peer providers' asset hosts")
PROXY_REFUSAL_403 = step("hub.download.refuse-with-403", "PROTO-ASSETS-PROXY-NO-OPEN-PROXY",
                         summary="a proxyDownload for no peer's asset host is refused 403 (-06 §5.10.2: 'standard "
                                 "HTTP error codes')")

# hub transfer (docs/extensions/hub-transfer.md), as the new hub and the old hub
STAMP_NOT_BEFORE_HANDOFF = step("transfer.new-hub.stamp-not-before-handoff", "EXT-HUBXFER-TIMESTAMPS-MONOTONIC",
                                summary="in a room taken over, acceptance times are never below the handoff's "
                                        "last_accepted_timestamp")
SERVE_TAKEN_OVER_SUBMITS = step("transfer.new-hub.serve-submits", "EXT-HUBXFER-NEWHUB-SERVES",
                                summary="the new hub serves submitMessage for a room it took over")
SIGN_GROUPINFO_AS_NEW_HUB_SENDER = step("transfer.new-hub.sign-groupinfo-as-hub-sender",
                                        "EXT-HUBXFER-NEWHUB-HUB-SENDER",
                                        summary="in a room taken over, GroupInfoResponses are signed with the "
                                                "new_hub_sender key of the acceptance")
REDIRECT_GROUPINFO_AFTER_CUTOVER = step("transfer.old-hub.redirect-groupinfo", "EXT-HUBXFER-OLDHUB-REDIRECT",
                                        summary="after the cut-over the old hub answers groupInfo for the room "
                                                "with 421 and a HubRedirect")

# keyMaterial: the requester, the hub's relay, the target
PUBLISH_VALID_KEY_PACKAGES = step("keymaterial.publish.valid-only", "PROTO-KEYMAT-NO-EXPIRED",
                                  summary="a local client publishes only KeyPackages within their lifetime")
PUBLISH_LAST_RESORT_MARKED = step("keymaterial.publish.last-resort-marked", "PROTO-KEYMAT-NO-REUSE",
                                  summary="the KeyPackage published as a client's last-resort one, which may be "
                                          "served again, carries the last_resort_key_package extension")
CHECK_KEYMAT_SIGNATURE = step("keymaterial.target.check-signature", "PROTO-KEYMAT-SIGNATURE-CHECKED",
                              summary="the target provider verifies key_material_request_signature")
KEYMAT_TARGET_MATCHES_PATH = step("keymaterial.target.path-matches-body", "PROTO-KEYMAT-TARGET-IN-PATH",
                                  summary="a keyMaterial request whose path names another user than its "
                                          "targetUser is refused 400 (hook(path_target=, body_target=) -> the "
                                          "user to serve instead)")
RELAY_KEYMAT = step("keymaterial.hub.relay", "PROTO-KEYMAT-HUB-RELAY",
                    summary="as hub, a keyMaterial request for another provider's user is relayed to it")
RELAY_KEYMAT_FOR_ANY_PEER = step("keymaterial.hub.relay-for-any-peer", "PROTO-KEYMAT-HUB-RELAY",
                                 summary="as hub, keyMaterial is relayed for any peer and its answer passed on "
                                         "byte for byte (-06 §5.2 obliges the relay for the room's providers only)")
REQUEST_KEYMAT_FOR_ROOM = step("keymaterial.request.names-room", "PROTO-KEYMAT-ROOM-ID",
                               summary="a keyMaterial request sent to add a user to a room carries its roomId")
REQUEST_KEYMAT_OWN_SUITE = step("keymaterial.request.own-suite-only", "PROTO-KEYMAT-NONEMPTY-CIPHERSUITES",
                                summary="a keyMaterial request lists the requester's own cipher suite only "
                                        "(AMB-KEYMAT-SIGNATURE-SUITE allows more)")
REQUEST_KEYMAT_VIA_HUB = step("keymaterial.request.via-hub", "PROTO-KEYMAT-VIA-HUB",
                              summary="a follower asks the room's hub for a third provider's KeyPackages")

# follower: /notify
ACCEPT_OWN_ECHO = step("follower.notify.accept-own-echo", "PROTO-FANOUT-NOT-ECHOED-REQUIRED",
                       summary="a /notify echoing a local client's own message is taken like any other")
PROCESS_EVERY_FANOUT_MESSAGE = step("follower.notify.process-every-message", "PROTO-FANOUT-CONCATENATED-MESSAGES",
                                    summary="every FanoutMessage of a /notify body is processed")
DUPLICATE_NOTIFY_201 = step("follower.notify.duplicate-answered-201", "PROTO-FANOUT-DUP-NOTIFY-201",
                            summary="a byte-identical repeated /notify is answered 201")
DUPLICATE_NOTIFY_ONCE = step("follower.notify.duplicate-processed-once", "PROTO-FANOUT-DUP-NOTIFY-PROCESS-ONCE",
                             summary="a byte-identical repeated /notify is not processed again")
CROSS_HUB_DUPLICATE_201 = step("follower.notify.cross-hub-duplicate-201", "EXT-HUBXFER-FOLLOWER-DEDUP",
                               summary="a /notify whose FanoutMessages all came before from the other hub of a "
                                       "transfer is answered 201 and delivered once")
TARGET_TRACKS_FANOUT = step("transfer.target.tracks-fanout", "EXT-HUBXFER-NEWHUB-503",
                            summary="the target keeps the room's public state from the old hub's fan-out (section "
                                    "6.2), so it observes the cut-over commit and answers 503 until the handoff")
TARGET_NOTIFY_201 = step("transfer.target.notify-answered-201", "EXT-HUBXFER-TARGET-NOTIFY-201",
                         summary="the target answers the old hub's /notify of the room during the window 201 (section 6.2)")
NOTIFY_ANSWER_NO_BODY = step("follower.notify.answer-without-body", "EXT-CONSENT-QUARANTINE-NOTIFY-201",
                             summary="a /notify is answered 201 with no body (a room held for a local user is "
                                     "not revealed)")
ACCEPT_TARGET_NOTIFY = step("follower.notify.accept-transfer-target", "EXT-HUBXFER-FOLLOWER-ACCEPT-TARGET",
                            summary="during a transfer window the target named in mimi_hub may send /notify")
UNKNOWN_ROOM_WELCOME_ONLY = step("follower.notify.unknown-room-welcome-only", "EXT-HUBXFER-FOLLOWER-STALE-NOTIFY",
                                 summary="for a room it holds no state of, a /notify from a provider other than "
                                         "the room ID's authority is taken only if it carries a Welcome")
NEWCOMER_WELCOME_FROM_ANY_HUB = step(
    "follower.notify.newcomer-welcome-from-moved-hub", "EXT-HUBXFER-FOLLOWER-ACCEPT-TARGET",
    summary="with no local client's mimi_hub component for a room, /notify is taken from a provider other than the "
            "room ID's authority too: a Welcome for a room held in no state, and the new hub's of a room this "
            "provider moved away (extension 6.2 'the add can be retried after the cut-over', 7, 13); a hook may "
            "refuse it by raising")
TARGET_ONLY_WHILE_ACCEPTED = step("transfer.target.target-only-while-accepted", "EXT-HUBXFER-TARGET-EXPIRES",
                                  summary="a target keeps the room's public state and delivers nothing only while "
                                          "the transfer is accepted: once discarded it takes the room's /notify "
                                          "like any provider")
NOTIFY_FROM_ADMITTED_SENDERS = step("follower.notify.refuse-other-senders", "EXT-HUBXFER-FOLLOWER-STALE-NOTIFY",
                                    summary="a /notify for a room from a provider notify_allowed does not admit "
                                            "(the hub; in a transfer also its target or previous hub) is refused 403")

# follower: room requests and the hub-of-record
HUB_FROM_COMPONENT = step("follower.room.hub-from-component", "EXT-HUBXFER-FOLLOWER-HUB-FROM-COMPONENT",
                          "EXT-HUBXFER-FOLLOWER-RETARGET",
                          summary="the hub-of-record is the committed mimi_hub component's hub")
REDIRECT_NOT_AUTHORITY = step("follower.room.redirect-not-authority", "EXT-HUBXFER-FOLLOWER-REDIRECT-NOT-AUTHORITY",
                              summary="a HubRedirect does not change the hub-of-record")
REQUEST_TO_HUB_OF_RECORD = step("follower.room.request-to-hub-of-record", "EXT-HUBXFER-FOLLOWER-RETARGET",
                                summary="a room request goes to the hub-of-record first")
RESEND_AFTER_REDIRECT = step("follower.room.resend-after-redirect", "EXT-HUBXFER-FOLLOWER-REDIRECT-RESEND",
                             "EXT-HUBXFER-FOLLOWER-REFUSED-NOT-SENT",
                             summary="a room request answered 421 with a HubRedirect is resent to the hub it "
                                     "names (and was not accepted)")
RETRY_AFTER_503 = step("follower.room.retry-503", "EXT-HUBXFER-FOLLOWER-503-RETRY",
                       summary="a room request answered 503 is retried after its Retry-After")
GROUPINFO_FROM_THE_HUB = step("follower.join.groupinfo-from-the-hub", "PROTO-GROUPINFO-FOLLOWER-JOIN-NEW-DEVICE",
                              summary="a local client joining a room it knows by external commit gets the GroupInfo "
                                      "from the room's hub (-06 §5.6)")

# consent and identifierQuery (the provider as target)
CONSENT_ANSWER_REVEALS_NOTHING = step("consent.request.answer-reveals-nothing", "PROTO-CONSENT-UNKNOWN-USER-HIDDEN",
                                      "PROTO-CONSENT-REQUESTER-LEARNS-NOTHING",
                                      summary="a requestConsent answer says nothing of the target or its decisions")
CONSENT_ANSWER_STATUS = step("consent.answer.status", "PROTO-CONSENT-REQUEST-RESPONSE",
                             "PROTO-CONSENT-UPDATE-RESPONSE",
                             summary="a consent message is answered 201, or 404 for an unknown user (-06 §5.7)")
CONSENT_ANSWER_NO_BODY = step("consent.answer.without-body", "PROTO-CONSENT-REQUEST-RESPONSE",
                              "PROTO-CONSENT-UPDATE-RESPONSE",
                              summary="a consent answer carries no body (AMB-CONSENT-ANSWER-BODY allows one)")
OFFER_IDENTIFIER_QUERY = step("directory.idquery.offered", "PROTO-IDQUERY-STATUS-CODES",
                              summary="the provider serves identifierQuery (-06 §5.8 does not oblige it to)")
IDQUERY_SAME_ANSWER = step("directory.idquery.same-answer", "PROTO-IDQUERY-SAFE-IDEMPOTENT",
                           summary="repeating an identifierQuery gets the same answer")

MLS10 = {"protocol": Protocol.mls10}
# The readings of the ambiguity register a handler took to decode the request being handled (tolerant
# decoding): kept with the request in the traffic log as {"ambiguity", "path", "detail"}.
_READINGS: contextvars.ContextVar[list | None] = contextvars.ContextVar("mimi_readings", default=None)


def took_readings(leniencies) -> None:
    """Record the register readings (codec Leniencies) taken to decode the request being handled."""
    readings = _READINGS.get()
    if readings is None:
        return
    for leniency in leniencies:
        entry = {"ambiguity": leniency.ambiguity, "path": leniency.path, "detail": leniency.detail}
        if entry not in readings:
            readings.append(entry)


KEY_PACKAGES_PER_CLIENT = 8
HUB_KEY_META = "hub_signature_key"


def now_ms() -> int:
    return int(time.time() * 1000)


def _peer_entries(entries: Mapping, where: str) -> dict[str, str]:
    """``entries`` with normalized keys (domains and ``*.<zone>`` wildcards); bad keys are left out, logged."""
    out = {}
    for key, value in entries.items():
        try:
            out[normalize_peer_key(str(key))] = str(value)
        except ValueError as exc:
            log.warning("%s: ignoring peers entry %r: %s", where, key, exc)
    return out


def _split_authority(authority: str) -> tuple[str, str | None]:
    host, colon, port = authority.rpartition(":")
    return (host, port) if colon and port.isdigit() else (authority, None)


class PeerBook:
    """Where each peer provider is reached: ``domain -> authority`` (``host:port``), from a mapping
    and/or a YAML file re-read when it changes (a harness that starts providers on port 0 writes
    the file once it knows their ports). A domain not listed is reached by its own name on 443.

    A key ``*.<zone>`` covers every domain of exactly one more label in the zone; an exact key wins
    over a wildcard, and the file's entries over the mapping's. An entry whose host is not the
    domain itself (an address, a gateway) says only where to connect: the peer is still addressed
    by its domain, in TLS SNI, the certificate check and Host (:meth:`authority`, :meth:`connect_address`)."""

    def __init__(self, peers: Mapping[str, str] | None = None, peers_file: str | os.PathLike[str] | None = None) -> None:
        self._static = _peer_entries(peers or {}, "peers")
        self._file = Path(peers_file) if peers_file is not None else None
        self._file_stamp: tuple[float, int] | None = None
        self._from_file: dict[str, str] = {}

    def _reload(self) -> None:
        if self._file is None:
            return
        try:
            stat = self._file.stat()
        except FileNotFoundError:
            self._from_file = {}
            return
        stamp = (stat.st_mtime, stat.st_size)
        if stamp == self._file_stamp:
            return
        try:
            loaded = yaml.safe_load(self._file.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            log.warning("peers file %s unreadable, keeping the previous one: %s", self._file, exc)
            return
        if isinstance(loaded, Mapping):
            self._from_file = _peer_entries(loaded, str(self._file))
            self._file_stamp = stamp

    def set(self, domain: str, authority: str) -> None:
        self._static[normalize_peer_key(domain)] = authority

    def route(self, domain: str) -> str | None:
        """The configured ``host[:port]`` for ``domain``, or None when no entry covers it. Every request the
        provider sends is routed here, a new hub's fan-out of a room it took over included
        (EXT-HUBXFER-NEWHUB-SERVES: the follower's submitMessage is sequenced and delivered)."""
        self._reload()
        domain = normalize_domain(domain)
        _, dot, zone = domain.partition(".")
        wildcard = WILDCARD_PREFIX + zone if dot else None
        for key in (domain, wildcard):
            for entries in (self._from_file, self._static):
                if key is not None and key in entries:
                    return entries[key]
        return None

    def authority(self, domain: str) -> str:
        """How ``domain`` is addressed in URLs and Host: its entry when that names the domain itself,
        else the domain with the entry's port (:meth:`connect_address` then says where to connect)."""
        domain = normalize_domain(domain)
        route = self.route(domain)
        if route is None:
            return domain
        host, port = _split_authority(route)
        if host.lower() == domain:
            return route
        return f"{domain}:{port}" if port else domain

    def connect_address(self, domain: str) -> str | None:
        """The host to connect to for ``domain`` when its entry names another host (an IP address, a
        gateway), else None (DNS or ``resolve``)."""
        try:
            route = self.route(domain)
        except ValueError:  # an IP literal or other non-domain: nothing configured for it
            return None
        if route is None:
            return None
        host, _ = _split_authority(route)
        return None if host.lower() == domain.lower() else host


@dataclass(frozen=True)
class ProviderOptions:
    domain: str
    cert_file: Path
    key_file: Path
    ca_file: Path
    aliases: tuple[str, ...] = ()
    storage_path: Path | None = None  # None: in-memory SQLite
    consent_mode: str = "immediate"
    peers: PeerBook = field(default_factory=PeerBook)
    resolve: Mapping[str, str] = field(default_factory=dict)  # domain -> IP address, no DNS
    asset_hosts: tuple[str, ...] = ()  # hosts of peer providers' asset servers (proxyDownload)
    # A follower may be away for a while: keep trying (per-destination order means a given-up head
    # item would be a lost message).
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(base_delay=0.5, max_delay=30.0, max_attempts=1000))
    hub_transfer: HubTransferSettings | None = None  # the hub-transfer extension; None: off


@dataclass
class RoomCall:
    """What the room's hub answered to an update or submitMessage (local or remote)."""

    http_status: int
    update: UpdateRoomResponse | None = None
    submit: SubmitMessageResponse | None = None
    error: str = ""


class ReferenceProvider:
    """One provider domain: its MIMI endpoint handlers (``transport``), state, rooms and clients.

    Construct (opens or creates the store and reloads rooms, clients and keys), serve ``transport``
    with a :class:`MimiServer`, then ``await start()`` (outgoing client, outbox worker) and finally
    ``await stop()`` after the server has stopped."""

    def __init__(self, options: ProviderOptions, *, overrides: Overrides | None = None) -> None:
        self.options = options
        # The faults and variants this provider was built with (reference_peer.overrides); every
        # rule object it makes or loads shares this instance (its own, so ``during`` stays local).
        self.overrides = overrides = overrides if overrides is not None else Overrides()
        self.domain = normalize_domain(options.domain)
        self.domains = (self.domain, *(normalize_domain(a) for a in options.aliases))
        consent = ConsentSettings(default_mode=ConsentMode(options.consent_mode))
        settings = ProviderSettings(domains=self.domains, consent=consent)
        if options.storage_path is None:
            store = Store.memory()
        else:
            Path(options.storage_path).parent.mkdir(parents=True, exist_ok=True)
            store = Store.open(options.storage_path)
        self.state = ProviderState(settings, store, overrides=overrides)
        self.peer_store = PeerStore(store, time.time)
        self.identity = self._load_identity()
        self.hub_rooms: dict[str, HubRoom] = {
            room_id: room.built_with(overrides) for room_id, room in self.peer_store.hub_rooms()
        }
        self.client_keys: dict[str, SimulatedClient] = {
            uri: keys.built_with(overrides) for uri, keys in self.peer_store.client_keys()
        }
        self.members: dict[tuple[str, str], SimulatedClient] = {
            (room_id, uri): member.built_with(overrides) for room_id, uri, member in self.peer_store.members()
        }
        self.transport = Provider(self.domain, options.cert_file, options.key_file, aliases=options.aliases)
        for endpoint, handler in (
            ("keyMaterial", self.handle_key_material),
            ("update", self.handle_update),
            ("notify", self.handle_notify),
            ("submitMessage", self.handle_submit),
            ("groupInfo", self.handle_group_info),
            ("requestConsent", self.handle_consent),
            ("updateConsent", self.handle_consent),
            ("identifierQuery", self.handle_identifier_query),
            ("reportAbuse", self.handle_report_abuse),
            ("proxyDownload", self.handle_proxy_download),
        ):
            self.transport.register(endpoint, self._recorded(endpoint, handler))
        self.traffic = TrafficLog()
        self.violations = ViolationLog()
        self.client: MimiClient | None = None
        self.worker: OutboxWorker | None = None
        self._worker_stop: asyncio.Event | None = None
        self._worker_task: asyncio.Task | None = None
        # Test hooks: answer /notify with this status instead of processing it (while set), and answer
        # the next notifies with these (status, Retry-After, body) answers, one each, without processing
        # them (the suite's retry checks). Any final status: a refusal, or a 2xx other than 201.
        self.refuse_notify_status: int | None = None
        self.notify_refusals: list[tuple[int, str | None, bytes]] = []
        # The hub-transfer extension (docs/extensions/hub-transfer.md), when switched on.
        self.transfers = None
        if options.hub_transfer is not None:
            from .hub_transfer import HubTransferService

            self.transfers = HubTransferService(self, options.hub_transfer)
            self.transport.register("hubTransfer", self._recorded("hubTransfer", self.transfers.handle))

    # -- lifecycle ----------------------------------------------------------------------------------

    def _load_identity(self) -> HubIdentity:
        saved = self.peer_store.meta(HUB_KEY_META)
        if saved is None:
            saved = cipher_suite(1).generate_signature_key_pair()
            self.peer_store.set_meta(HUB_KEY_META, saved)
        priv, pub = saved  # type: ignore[misc]
        sender = ExternalSender(signature_key=pub, credential=basic_credential(f"mimi://{self.domain}".encode()))
        return HubIdentity(self.domain, priv, sender)

    async def start(self) -> None:
        """Open the outgoing client and start the outbox worker (on the running loop)."""
        if self._worker_task is not None:
            raise RuntimeError("already started")
        o = self.options
        self.client = MimiClient(self.domain, o.cert_file, o.key_file, o.ca_file, resolve=o.resolve,
                                 connect=o.peers.connect_address, overrides=self.overrides)
        self.worker = OutboxWorker(self.state.outbox, self._deliver_item, policy=o.retry, clock=time.time)
        self.worker.serial_room = lambda room: _room_in_transfer(self.hub_rooms.get(room))
        self._worker_stop = asyncio.Event()
        self._worker_task = asyncio.create_task(self.worker.run(self._worker_stop), name=f"outbox-{self.domain}")
        if self.transfers is not None:  # the old hub's driver: EXT-HUBXFER-HANDOFF-SENT, EXT-HUBXFER-ABORT-ON-TIMEOUT
            self.transfers.start()

    async def stop(self) -> None:
        if self.transfers is not None:
            await self.transfers.stop()
        if self._worker_task is not None:
            assert self._worker_stop is not None
            self._worker_stop.set()
            try:
                await asyncio.wait_for(self._worker_task, 5)
            except (TimeoutError, asyncio.CancelledError):
                self._worker_task.cancel()
            self._worker_task = None
        if self.client is not None:
            await self.client.aclose()
            self.client = None
        self.state.close()

    def _recorded(self, endpoint: str, handler):
        """``handler``, with each request and its answer kept in the traffic log."""

        async def recorded(request: MimiRequest):
            started = time.perf_counter()
            readings: list = []
            token = _READINGS.set(readings)
            try:
                response = await handler(request)
            except MimiHTTPError as exc:
                self.traffic.add("in", endpoint=endpoint, peer=request.peer_domain, value=request.value,
                                 request=request.body, status=exc.status, error=str(exc), readings=readings)
                raise
            except Exception as exc:
                self.traffic.add("in", endpoint=endpoint, peer=request.peer_domain, value=request.value,
                                 request=request.body, status=None, error=f"{type(exc).__name__}: {exc}",
                                 readings=readings)
                raise
            finally:
                _READINGS.reset(token)
            if isinstance(response, MimiResponse):
                self.traffic.add("in", endpoint=endpoint, peer=request.peer_domain, value=request.value,
                                 request=request.body, status=response.status, response=response.body,
                                 readings=readings)
            else:
                self.traffic.add("in", endpoint=endpoint, peer=request.peer_domain, value=request.value,
                                 request=request.body, status=getattr(response, "status", None), readings=readings)
            HANDLER_CLOCK.add("mimi", time.perf_counter() - started)
            return response

        return recorded

    async def _call(self, authority: str, endpoint: str, value: str, body: bytes = b"", **options):
        """Call a peer's endpoint through the outgoing client, keeping the exchange in the traffic log."""
        peer = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
        body, options = self._as_sent(endpoint, body, options)
        try:
            reply = await self._client().call(authority, endpoint, value, body, **options)
        except Exception as exc:
            self.traffic.add("out", endpoint=endpoint, peer=peer, value=value, request=body, status=None,
                             error=f"{type(exc).__name__}: {exc}")
            raise
        self.traffic.add("out", endpoint=endpoint, peer=peer, value=value, request=body, status=reply.status,
                         response=reply.body)
        return reply

    def _as_sent(self, endpoint: str, body: bytes, options: dict) -> tuple[bytes, dict]:
        """The body and request options of a call to a peer as this peer sends them: the encoded struct,
        From: mimi@<own domain> and the target's Host (the client's defaults), unless built otherwise."""
        overrides = self.overrides
        body = overrides.hook(SEND_BODY_AS_ENCODED, body) or body
        headers = {}
        if (sender := overrides.hook(SEND_FROM_MIMI_ADDR_SPEC, self.domain)) is not None:
            headers["From"] = sender
        if (host := overrides.hook(SEND_HOST_OF_TARGET, self.domain)) is not None:
            headers["Host"] = host
        if headers:
            options = {**options, "headers": {**(options.get("headers") or {}), **headers}}
        if endpoint == "notify":
            explicit, no_arm = overrides.departs(FANOUT_PROTOCOL_IMPLIED), overrides.departs(FANOUT_ARM_BY_CONTENT_TYPE)
            if explicit or no_arm:  # the peer's own state and its byte-exact retries keep the default bytes
                body = overrides.hook(ENCODE_NOTIFY_READING, body, explicit_protocol=explicit, no_arm=no_arm) or body
        elif endpoint == "reportAbuse":
            body = overrides.hook(SEND_ABUSE_REPORTINGUSER, body) or body
        return body, options

    def _client(self) -> MimiClient:
        if self.client is None:
            raise RuntimeError(f"provider {self.domain} not started")
        return self.client

    def authority(self, domain: str) -> str:
        return self.options.peers.authority(domain)

    def is_local_domain(self, domain: str | None) -> bool:
        """Whether ``domain`` is one of this provider's: it answers keyMaterial for its own users (a user it
        does not know with userUnknown or noConsent, PROTO-KEYMAT-UNKNOWN-USER) and relays or refuses the rest."""
        return domain is not None and domain.lower() in self.domains

    async def _deliver_item(self, item: OutboxItem) -> DeliveryResult:
        """Send one queued request: the hub's fan-out reaches every provider with active participants
        (PROTO-FANOUT-TO-ACTIVE-PROVIDERS); only the suite's withhold knob holds a /notify back."""
        value = next(iter(item.path_vars.values()))
        if self.transfers is not None and item.endpoint == "notify" and item.destination in self.transfers.withhold_notify_to:
            return DeliveryResult(None, retry_after=0.2, error="withheld (the suite's hub-transfer knob)")
        reply = await self._call(self.authority(item.destination), item.endpoint, value, item.body)
        status, retry_after = reply.status, reply.headers.get("retry-after")
        if item.endpoint == "notify" and status != 201:  # retried after its Retry-After (the outbox's policy)
            paced = self.overrides.hook(RETRY_REFUSED_NOTIFY, status, retry_after, self.hub_rooms.get(value))
            if paced is not None:
                status, retry_after = paced
        return DeliveryResult(status, retry_after=retry_after)

    # -- local clients ------------------------------------------------------------------------------

    def provision_client_keys(self, client_uri: str, count: int = KEY_PACKAGES_PER_CLIENT) -> SimulatedClient:
        """A local client's identity (signature key) and ``count`` KeyPackages, uploaded for keyMaterial; each
        carries the credential of that client's URI (PROTO-KEYMAT-CLIENTS-ENUMERATED)."""
        parsed = MimiUri.parse(client_uri)
        name = client_uri.rsplit("/", 1)[1]
        keys = self.client_keys.get(client_uri) or SimulatedClient(parsed.domain, parsed.user or name, name,
                                                                   overrides=self.overrides)
        if self.transfers is not None:  # the suite's knob: clients whose LeafNodes omit mimi_hub
            self.transfers.advertise_components(keys)
        bundles = [keys.make_key_package() for _ in range(count)]
        if self.overrides.departs(PUBLISH_VALID_KEY_PACKAGES) and count:
            bundles.append(_expired_key_package(keys))
        with self.state.store.transaction():
            self.state.upload_key_packages(client_uri, [b.key_package.encode() for b in bundles])
            self.peer_store.save_client_keys(client_uri, keys)
        self.client_keys[client_uri] = keys
        return keys

    def publish_key_packages(
        self, client_uri: str, count: int, *, last_resort: bool = True, lifetime_seconds: int | None = None,
        replace: bool = False,
    ) -> tuple[int, int, bool]:
        """More KeyPackages for a local client (control API publishKeyPackages): ``count`` one-time
        ones; the last-resort one replaced (``last_resort``) or withdrawn; with ``replace``, unused
        one-time ones withdrawn first. Returns (published, available one-time, has last resort)."""
        keys = self.client_keys[client_uri]
        lifetime = {} if lifetime_seconds is None else {"lifetime_seconds": lifetime_seconds}
        with self.state.store.transaction() as conn:
            withdrawn = [
                bytes(ref)
                for (ref,) in conn.execute(
                    "SELECT ref FROM key_packages WHERE client_uri = ? AND "
                    "(last_resort = 1 OR (? AND claimed_at IS NULL))",
                    (client_uri, int(replace)),
                )
            ]
            conn.executemany("DELETE FROM key_packages WHERE ref = ?", [(ref,) for ref in withdrawn])
            for ref in withdrawn:
                keys.key_packages.pop(ref, None)
            bundles = [
                make_key_package(keys.suite_id, keys.credential, keys.signature_priv,
                                 leaf_extensions=keys.leaf_extensions(), **lifetime) for _ in range(count)
            ]
            if self.overrides.departs(PUBLISH_VALID_KEY_PACKAGES) and count:
                bundles.append(_expired_key_package(keys))
            if bundles:
                self.state.upload_key_packages(client_uri, [b.key_package.encode() for b in bundles])
            if last_resort:
                spare = make_key_package(keys.suite_id, keys.credential, keys.signature_priv, last_resort=True,
                                         leaf_extensions=keys.leaf_extensions(), **lifetime)
                if self.overrides.departs(PUBLISH_LAST_RESORT_MARKED):  # served again, yet unmarked
                    spare = make_key_package(keys.suite_id, keys.credential, keys.signature_priv,
                                             leaf_extensions=keys.leaf_extensions(), **lifetime)
                self.state.upload_key_packages(client_uri, [spare.key_package.encode()], last_resort=True)
                bundles.append(spare)
            for bundle in bundles:
                keys.key_packages[bundle.ref()] = bundle
            self.peer_store.save_client_keys(client_uri, keys)
        return count, self.state.keymaterial.available(client_uri), last_resort

    def forget_client(self, client_uri: str) -> None:
        with self.state.store.transaction():
            self.peer_store.delete_client(client_uri)
        self.client_keys.pop(client_uri, None)
        for key in [k for k in self.members if k[1] == client_uri]:
            del self.members[key]

    def new_member(self, room_id: str, client_uri: str) -> SimulatedClient:
        """A fresh per-room MLS client for a local client: same credential and signature key, no group."""
        return self.client_keys[client_uri].fresh_member()

    def save_member(self, room_id: str, client_uri: str, member: SimulatedClient) -> None:
        self.members[(room_id, client_uri)] = member
        self.peer_store.save_member(room_id, client_uri, member)

    def active_member(self, room_id: str, client_uri: str) -> SimulatedClient | None:
        member = self.members.get((room_id, client_uri))
        if member is None or member.group is None or member.removed:
            return None
        return member

    def room_clients(self, room_id: str) -> list[str]:
        return sorted(uri for (room, uri) in self.members if room == room_id and self.active_member(room, uri))

    def known_rooms(self) -> set[str]:
        return set(self.hub_rooms) | {room for room, _ in self.members}

    # -- fan-out intake (follower side, and the hub's own clients) ---------------------------------

    def intake(self, room_id: str, messages: Iterable[FanoutMessage]) -> None:
        """Put FanoutMessages for ``room_id`` into the local clients' inboxes (Welcomes by
        KeyPackageRef; the rest to the room's local members), then let every client consume them.
        Call inside the transaction that accepted the body."""
        touched: set[str] = set()
        with self.state.store.transaction():
            for message in messages:
                item = message.encode()
                if message.message.wire_format == WireFormat.mls_welcome:
                    refs = [bytes(s.new_member) for s in message.message.welcome.secrets]
                    for delivery in self.state.receive_welcome(room_id, refs, item):
                        touched.update(delivery.clients)
                else:
                    # Members, and the clients of users whose Welcome quarantine holds: the room's
                    # later items are held with it, to be released in order on consent.
                    clients = sorted(set(self.room_clients(room_id)) | set(self._held_clients(room_id)))
                    self.state.deliver_to_clients(room_id, clients, item)
                    touched.update(clients)
            self.pump(touched)
        if self.transfers is not None:
            self.transfers.after_intake(room_id)

    def _held_clients(self, room_id: str) -> list[str]:
        rows = self.state.store.conn.execute(
            "SELECT user_uri FROM held_rooms WHERE room_id = ? AND state = 'held'", (room_id,)
        ).fetchall()
        return [client for (user,) in rows for client in self.state.clients_of(user)]

    def pump(self, clients: Iterable[str]) -> None:
        """Each client consumes its inbox items in order, exactly once (cursor in the same transaction)."""
        with self.state.store.transaction():
            for client_uri in sorted(set(clients)):
                if client_uri not in self.client_keys:
                    continue
                cursor = self.peer_store.cursor(client_uri)
                for entry in self.state.received(client_uri, after=cursor):
                    self._consume(client_uri, entry.room_id, entry.item)
                    cursor = entry.seq
                self.peer_store.set_cursor(client_uri, cursor)

    def _consume(self, client_uri: str, room_id: str, item: bytes) -> None:
        try:
            message = FanoutMessage.decode(item, scope=MLS10)
        except (DecodeError, EncodeError) as exc:  # our own inbox: only a bug gets here
            log.error("%s: undecodable inbox item for %s: %s", self.domain, client_uri, exc)
            return
        member = self.members.get((room_id, client_uri))
        mine: list[bytes] = []
        if message.message.wire_format == WireFormat.mls_welcome:
            keys = self.client_keys[client_uri]
            mine = [bytes(s.new_member) for s in message.message.welcome.secrets if bytes(s.new_member) in keys.key_packages]
            if not mine:
                return
            if member is None or member.group is None or member.removed:
                member = self.new_member(room_id, client_uri)
            member.key_packages[mine[0]] = keys.key_packages[mine[0]]
        elif member is None:
            return
        try:
            outcome = member.receive(message)
        except Exception as exc:  # a bug, not bad input (MLS errors are outcomes): log it, keep serving
            log.exception("%s: %s failed on fan-out of %s", self.domain, client_uri, room_id)
            outcome = f"error: {type(exc).__name__}: {exc}"
        if outcome == "joined":
            keys = self.client_keys[client_uri]
            for ref in mine:
                if not is_last_resort(keys.key_packages[ref].key_package):  # a last-resort one serves again
                    keys.key_packages.pop(ref, None)
            self.peer_store.save_client_keys(client_uri, keys)
        elif outcome.startswith("error"):
            log.warning("%s: %s could not process fan-out of %s: %s", self.domain, client_uri, room_id, outcome)
        for entry in member.inbox:
            sender = entry.sender_identity.decode("utf-8", "replace")
            self.peer_store.add_received(client_uri, room_id, sender, entry.epoch, entry.data, entry.timestamp)
        member.inbox = []
        if member.group is not None:
            self.save_member(room_id, client_uri, member)

    # -- hub side -----------------------------------------------------------------------------------

    def commit_room_change(self, room_id: str, room: HubRoom, plan, *, room_changed: bool = True,
                           submitted_by: str | None = None) -> None:
        """Persist the room and turn its FanoutPlan into outbox items (one /notify body per remote
        provider, in order) in one transaction; the hub's own clients get theirs directly.
        ``room_changed=False`` (an accepted submitMessage: the room only reads its state) skips
        re-writing the unchanged room, a pickle of the whole MLS hub view, per message."""
        with self.state.store.transaction():
            if room_changed:
                self.peer_store.save_hub_room(room_id, room)
            for domain in sorted(plan.domains()):
                if self.is_local_domain(domain):
                    if (submitted_by is not None and not self.is_local_domain(submitted_by)
                            and self.overrides.departs(LOCAL_GETS_REMOTE_MESSAGES)):
                        continue  # otherwise: a follower's application message reaches the local clients too
                    self.intake(room_id, plan.messages_for(domain))
                else:
                    planned = plan.body_for(domain)
                    bodies = self.overrides.hook(QUEUE_NOTIFY_IN_ORDER, self, room_id, domain,
                                                 plan.messages_for(domain), planned)
                    for body in [planned] if bodies is None else bodies:
                        self.state.queue_notify(domain, room_id, body)

    def host_room(self, room_id: str, room: HubRoom) -> None:
        self.hub_rooms[room_id] = room.built_with(self.overrides)
        self.peer_store.save_hub_room(room_id, room)

    def _hub_room(self, room_id: str) -> HubRoom:
        room = self.hub_rooms.get(room_id)
        if room is None:
            raise MimiHTTPError(404, "unknown-room", f"{self.domain} hosts no room {room_id!r}")
        return room

    def _room_gate(self, room_id: str) -> MimiResponse | None:
        """Hub transfer: the old hub's redirect, the target's redirect or 503 (None: serve)."""
        return self.transfers.room_gate(room_id) if self.transfers is not None else None

    def _room_now(self, room: HubRoom) -> int:
        """The acceptance time of what the hub accepts: never below a handoff's last_accepted_timestamp (hub
        transfer), the new hub serving the room it took over (EXT-HUBXFER-NEWHUB-SERVES)."""
        now = max(now_ms(), room.min_timestamp)
        if room.min_timestamp and (other := self.overrides.hook(STAMP_NOT_BEFORE_HANDOFF, now_ms())) is not None:
            now = other
        room.last_accepted = max(room.last_accepted, now)
        return now

    async def handle_update(self, request: MimiRequest) -> MimiResponse:
        if (gate := self._room_gate(request.value)) is not None:
            return gate
        room = self._hub_room(request.value)
        response, plan = room.handle_update(request.peer_domain, request.body, self._room_now(room))
        if response.responseCode == UpdateResponseCode.success:  # a refusal leaves the room, and the store, as they were
            self.commit_room_change(request.value, room, plan)
        elif (other := self._refusal_otherwise(REFUSAL_AS_200_WITH_CODE, "update", response.responseCode.name,
                                               response.errorDescription, response)) is not None:
            return other
        return MimiResponse(response.encode())

    async def handle_submit(self, request: MimiRequest) -> MimiResponse:
        if (gate := self._room_gate(request.value)) is not None:
            return gate
        room = self._hub_room(request.value)
        if room.min_timestamp and self.overrides.departs(SERVE_TAKEN_OVER_SUBMITS):
            from .room.hub import submit_response

            return MimiResponse(submit_response(SubmitResponseCode.notAllowed).encode())
        response, plan = room.handle_submit(request.peer_domain, request.body, self._room_now(room))
        if response.statusCode == SubmitResponseCode.accepted:  # a refusal writes nothing
            self.commit_room_change(request.value, room, plan, room_changed=False, submitted_by=request.peer_domain)
        elif (other := self._refusal_otherwise(REFUSAL_AS_200_WITH_CODE, "submitMessage", response.statusCode.name, "",
                                               response)) is not None:
            return other
        return MimiResponse(response.encode())

    def _refusal_otherwise(self, answer_step, endpoint: str, code_name: str, description, response) -> MimiResponse | None:
        """A refusal of an update or submitMessage answered as this peer was built to (None: 200 with the failure
        code). A hook of step hub.answer.refusal-as-200-with-code gives the HTTP status, with no body, or
        (status, True) to carry the encoded answer all the same (AMB-FAILURE-CODE-STATUS: either is a refusal)."""
        answer = self.overrides.hook(answer_step, endpoint, code_name, description)
        if answer is None:
            return None
        status, with_body = answer if isinstance(answer, tuple) else (answer, False)
        return MimiResponse(response.encode() if with_body else b"", status=status)

    async def handle_group_info(self, request: MimiRequest) -> MimiResponse:
        if (plain := self.overrides.hook(REDIRECT_GROUPINFO_AFTER_CUTOVER, self, request.value)) is not None:
            return plain
        if (gate := self._room_gate(request.value)) is not None:
            return gate
        room = self.hub_rooms.get(request.value)
        if room is None:  # notAuthorized, not a 404: room existence must not leak (PROTO-GROUPINFO-NO-SUCH-ROOM)
            if (other := self.overrides.hook(GROUPINFO_HIDES_UNKNOWN_ROOM, self.domain, request.value)) is not None:
                return other  # noSuchRoom, which -06 §5.6 names for this case (or, a fault, a 404)
            return MimiResponse(group_info_refusal(request.value.encode()).encode())
        try:  # the register's other joiningCode layout is accepted (AMB-GROUPINFO-JOININGCODE)
            decoded = GroupInfoRequest.decode_tolerant(request.body)
        except (DecodeError, EncodeError):
            decoded = None
        if decoded is not None:
            took_readings(decoded.leniencies)
        answer = room.group_info_response(request.peer_domain, decoded.value if decoded else request.body, now_ms())
        answer = self.overrides.hook(SIGN_GROUPINFO_AS_NEW_HUB_SENDER, room, answer, self.domain) or answer
        return MimiResponse(answer.encode())

    async def handle_report_abuse(self, request: MimiRequest) -> MimiResponse:
        # Malformed: 400 by the transport; the register's optional reportingUser is accepted
        # (AMB-ABUSE-REPORTINGUSER-OPTIONAL) and recorded.
        took_readings(AbuseReport.decode_tolerant(request.body).leniencies)
        if (gate := self._room_gate(request.value)) is not None:
            return gate
        self._hub_room(request.value)
        # Accepted with no body (PROTO-ABUSE-ACCEPT-NO-BODY); franking, when absent, cannot be checked.
        log.info("%s: abuse report for %s from %s", self.domain, request.value, request.peer_domain)
        if (other := self.overrides.hook(ABUSE_ACCEPTED_WITHOUT_BODY, request.body)) is not None:
            return other
        return MimiResponse(status=201)

    async def handle_proxy_download(self, request: MimiRequest) -> MimiResponse:
        url = urlsplit(request.value)
        host = (url.hostname or "").lower()
        if (url.scheme != "https" or host not in self.options.asset_hosts) and not self.overrides.departs(
                PROXY_ASSET_HOSTS_ONLY):
            # PROTO-ASSETS-PROXY-NO-OPEN-PROXY: only asset servers of peer providers, nothing is fetched.
            status = self.overrides.hook(PROXY_REFUSAL_403, host) or 403
            raise MimiHTTPError(status, "not-an-asset-host", f"{host!r} is no peer provider's asset domain")
        try:
            async with httpx.AsyncClient(timeout=5.0, trust_env=False, follow_redirects=False) as fetcher:
                reply = await fetcher.get(request.value)
        except httpx.HTTPError as exc:
            raise MimiHTTPError(502, "asset-fetch-failed", str(exc)) from None
        if reply.status_code != 200:
            raise MimiHTTPError(502, "asset-fetch-failed", f"asset server answered {reply.status_code}")
        return MimiResponse(reply.content)

    # -- keyMaterial (target, and hub relay) -------------------------------------------------------

    async def handle_key_material(self, request: MimiRequest) -> MimiResponse:
        req = KeyMaterialRequest.decode(request.body)
        target = request.value
        body_target = bytes(req.targetUser.uri).decode("utf-8", "replace")
        if body_target != target:
            served = self.overrides.hook(KEYMAT_TARGET_MATCHES_PATH, path_target=target, body_target=body_target)
            if served is None:
                raise MimiHTTPError(400, "target-mismatch",
                                    "targetUser differs from the path (PROTO-KEYMAT-TARGET-IN-PATH)")
            target = served
        target_domain = _provider_domain(target)
        if self.is_local_domain(target_domain):
            if (req.protocol == Protocol.mls10 and not self.overrides.departs(CHECK_KEYMAT_SIGNATURE)
                    and not self._key_material_signature_ok(req)):
                raise MimiHTTPError(400, "bad-signature", "KeyMaterialRequest signature (PROTO-KEYMAT-SIGNATURE-CHECKED)")
            query = query_from_request(req)
            result = self.state.claim_key_material(query if query.target == target else replace(query, target=target))
            return MimiResponse(result.to_response().encode())
        room_id = bytes(req.roomId.uri).decode("utf-8", "replace")
        if (gate := self._room_gate(room_id)) is not None:
            return gate
        room = self.hub_rooms.get(room_id)
        if room is None or target_domain is None:
            raise MimiHTTPError(404, "not-relayable", f"{target!r} is not local and {room_id!r} is not hosted here")
        if self.overrides.departs(RELAY_KEYMAT):
            refused = KeyMaterialResponse(protocol=Protocol.mls10, userStatus=KeyMaterialUserCode.noConsent,
                                          userUri=req.targetUser, clients=[])
            return MimiResponse(refused.encode())
        relay_variant = self.overrides.departs(RELAY_KEYMAT_FOR_ANY_PEER)
        if relay_variant and request.peer_domain not in self._room_provider_domains(room):
            # -06 §5.2 obliges the hub to relay for its room's providers only.
            raise MimiHTTPError(403, "not-a-room-provider",
                                f"{request.peer_domain} has no participant in {room_id}")
        reply = await self.fetch_key_material(room_id, target, request.body)
        if relay_variant and reply[0] == 200:  # passed on as decoded, not byte for byte
            return MimiResponse(KeyMaterialResponse.decode(reply[1]).encode(), status=200)
        return MimiResponse(reply[1], status=reply[0])

    @staticmethod
    def _room_provider_domains(room) -> set[str]:
        """The providers with a participant (listed or with a client) in a hosted room."""
        users = set(room.roles()) | room.active_users()
        return {d for u in users if (d := domain_of_uri(u)) is not None}

    def _key_material_signature_ok(self, req: KeyMaterialRequest) -> bool:
        """Nothing in KeyMaterialRequest names the signature scheme (-06 §5.2): a signature that
        verifies under any listed acceptable cipher suite's scheme is good (AMB-KEYMAT-SIGNATURE-SUITE)."""
        suites = [s for s in (req.acceptableCiphersuites or []) if s in range(1, 8)] or [1]
        for suite_id in dict.fromkeys(suites):
            try:
                if cipher_suite(suite_id).verify_with_label(
                    bytes(req.requesterSignatureKey), "KeyMaterialRequestTBS", req.tbs().encode(),
                    bytes(req.key_material_request_signature),
                ):
                    return True
            except (MLSError, ValueError):
                continue
        return False

    async def fetch_key_material(self, room_id: str, target: str, body: bytes) -> tuple[int, bytes]:
        """The hub asks the target's provider (PROTO-KEYMAT-HUB-RELAY) and records KeyPackageRef ->
        provider for the Welcome routing (PROTO-KEYMAT-KPREF-HUB-PROVIDER), which a hub transfer's handoff
        hands over as its routes (EXT-HUBXFER-HANDOFF-CONTENT)."""
        target_domain = _provider_domain(target)
        if target_domain is None:
            raise MimiHTTPError(404, "not-relayable", f"{target!r} names no provider domain")
        try:
            reply = await self._call(self.authority(target_domain), "keyMaterial", target, body)
        except PeerError as exc:
            raise MimiHTTPError(502, "target-unreachable", str(exc)) from None
        room = self.hub_rooms[room_id]
        if reply.status == 200:
            try:
                response = KeyMaterialResponse.decode(reply.body)
            except (DecodeError, EncodeError) as exc:
                raise MimiHTTPError(502, "bad-target-answer", f"undecodable KeyMaterialResponse: {exc}") from None
            for entry in response.clients:
                if entry.keyPackage is not None:
                    room.record_key_package(key_package_ref(room.view.suite, entry.keyPackage), target_domain)
            self.peer_store.save_hub_room(room_id, room)
        return reply.status, reply.body

    # -- notify (follower) -------------------------------------------------------------------------

    async def handle_notify(self, request: MimiRequest) -> MimiResponse:
        room_id = request.value
        if self.refuse_notify_status is not None:
            return MimiResponse(status=self.refuse_notify_status)
        if self.notify_refusals:
            status, retry_after, body = self.notify_refusals.pop(0)
            return MimiResponse(body, status=status, headers={"Retry-After": retry_after} if retry_after else {})
        if not _is_room_uri(room_id):
            raise MimiHTTPError(400, "malformed-room-id", f"{room_id!r} is not a mimi:// room URI")
        if not self.notify_allowed(room_id, request.peer_domain, request.body):
            if not self.overrides.departs(NOTIFY_FROM_ADMITTED_SENDERS):
                raise MimiHTTPError(403, "not-the-hub", f"{request.peer_domain} is not the hub of {room_id}")
        # The register's readings (AMB-PROTOCOL-CONTEXT, AMB-FANOUT-SELECT) are accepted and recorded.
        messages, leniencies = decode_fanout_sequence_tolerant(request.body, scope=MLS10)
        took_readings(leniencies)
        if not messages:
            raise MimiHTTPError(400, "empty-notify", "a /notify body carries at least one FanoutMessage")
        if self.overrides.hook(ACCEPT_OWN_ECHO, self, room_id, messages):
            return MimiResponse(status=409)
        with self.state.store.transaction():
            # A byte-identical duplicate from the same hub is answered 201 and not processed again
            # (PROTO-FANOUT-DUP-NOTIFY-201, PROTO-FANOUT-DUP-NOTIFY-PROCESS-ONCE).
            if self.state.notify_is_new(request.peer_domain, request.body):
                if self.transfers is not None:
                    # EXT-HUBXFER-FOLLOWER-DEDUP: a FanoutMessage already received for the room from either
                    # hub of a transfer is delivered once; the target tracks the public state (6.2).
                    messages = [m for m in messages if self.state.notify_is_new(f"room {room_id}", m.encode())]
                    if not messages and (status := self.overrides.hook(CROSS_HUB_DUPLICATE_201)) is not None:
                        return MimiResponse(status=status)
                    self.transfers.track(room_id, [] if self.overrides.departs(TARGET_TRACKS_FANOUT) else messages)
                    if self._is_transfer_target_only(room_id, self.overrides.departs(TARGET_ONLY_WHILE_ACCEPTED)):
                        return MimiResponse(status=self.overrides.hook(TARGET_NOTIFY_201) or 201)
                if messages:
                    self.intake(room_id, self.overrides.hook(PROCESS_EVERY_FANOUT_MESSAGE, messages) or messages)
            else:
                self.overrides.hook(DUPLICATE_NOTIFY_ONCE, self, room_id, messages)
                return MimiResponse(status=self.overrides.hook(DUPLICATE_NOTIFY_201) or 201)
        return MimiResponse(self.overrides.hook(NOTIFY_ANSWER_NO_BODY, self.state, room_id) or b"", status=201)

    # -- consent, identifierQuery ------------------------------------------------------------------

    async def handle_consent(self, request: MimiRequest) -> MimiResponse:
        entry = ConsentEntry.decode(request.body)
        try:
            receipt = self.state.receive_consent_entry(entry, peer_domain=request.peer_domain)
        except ConsentDomainError as exc:
            raise MimiHTTPError(403, "consent-domain-mismatch", str(exc)) from None
        except (ValueError, MimiUriError) as exc:
            raise MimiHTTPError(400, "malformed-consent", str(exc)) from None
        if (other := self.overrides.hook(CONSENT_ANSWER_REVEALS_NOTHING, self.state, entry, receipt)) is not None:
            return MimiResponse(other[1], status=other[0])
        operation = entry.consentOperation.name
        status = self.overrides.hook(CONSENT_ANSWER_STATUS, operation, receipt.status, receipt.recorded)
        return MimiResponse(self.overrides.hook(CONSENT_ANSWER_NO_BODY, operation) or b"",
                            status=receipt.status if status is None else status)

    async def handle_identifier_query(self, request: MimiRequest) -> MimiResponse:
        if self.overrides.departs(OFFER_IDENTIFIER_QUERY):  # a provider that does not offer the endpoint
            return MimiResponse(b"", status=404)
        query = IdentifierRequest.decode(request.body)
        result = self.state.identifier_query(elements_from_request(query))
        response = result.to_response()
        if self.overrides.departs(IDQUERY_SAME_ANSWER):  # a fresh nonce: no two answers are the same
            nonce = ComponentData(component_id=0xF000, data=secrets.token_bytes(16))
            response = response.replace(id_response_extensions=AppDataDictionary(component_data=[nonce]))
        return MimiResponse(response.encode())

    # -- outgoing room traffic (the provider acting for its local clients) -------------------------

    def hub_of(self, room_id: str) -> str:
        """The room's hub-of-record: this provider for a room it hosts, else the committed mimi_hub
        component of the latest epoch a local client processed (EXT-HUBXFER-FOLLOWER-HUB-FROM-COMPONENT),
        else the room ID's authority. The one place that decides where a room request goes."""
        room = self.hub_rooms.get(room_id)
        if room is not None and room.moved is None:
            return self.domain
        if (override := self.overrides.hook(REDIRECT_NOT_AUTHORITY, room_id)) is not None:
            return override
        data = None if self.overrides.departs(HUB_FROM_COMPONENT) else self.room_hub_data(room_id)
        if data is not None and (domain := domain_of_uri(bytes(data.hub.uri))) is not None:
            return domain
        if room is not None and room.moved is not None:
            return domain_of_uri(bytes(room.moved.hub.uri)) or self.domain
        domain = domain_of_uri(room_id)
        if domain is None:
            raise ValueError(f"not a room URI: {room_id!r}")
        return domain

    def room_hub_data(self, room_id: str):
        """The committed mimi_hub component as the local client furthest ahead sees it (None: absent)."""
        from .room.transfer import hub_of_record

        best = None
        for (room, _client), member in self.members.items():
            if room == room_id and member.group is not None and not member.removed:
                if best is None or member.group.epoch > best.epoch:
                    best = member.group
        return hub_of_record(best.app_data(), room_id) if best is not None else None

    def notify_allowed(self, room_id: str, peer_domain: str, body: bytes) -> bool:
        """Who may send /notify for a room: its hub; with the hub-transfer extension also the target from
        the begin commit on and the previous hub after the cut-over (EXT-HUBXFER-FOLLOWER-ACCEPT-TARGET,
        EXT-HUBXFER-FOLLOWER-STALE-NOTIFY for any third provider)."""
        if self.transfers is None:
            return domain_of_uri(room_id) == peer_domain
        from .room.transfer import hub_domain

        incoming = self.transfers.incoming.get(room_id)
        if incoming is not None and incoming.state == "accepted" and peer_domain == incoming.old_hub:
            return True
        data = self.room_hub_data(room_id)
        if data is None:
            if domain_of_uri(room_id) == peer_domain:
                return True
            # Without a local client's component the room's hub may still be another provider than the ID's
            # authority: a moved room's new hub (EXT-HUBXFER-FOLLOWER-ACCEPT-TARGET). A hook that refuses it raises.
            self.overrides.hook(NEWCOMER_WELCOME_FROM_ANY_HUB, self, room_id, peer_domain, body)
            room = self.hub_rooms.get(room_id)
            if room is not None and room.moved is not None:
                return peer_domain == domain_of_uri(bytes(room.moved.hub.uri))
            # A provider without any state of the room learns of it from a Welcome: its clients check
            # the group (and its mimi_hub component) themselves.
            return room_id not in self.known_rooms() and (
                _carries_welcome(body) or self.overrides.departs(UNKNOWN_ROOM_WELCOME_ONLY))
        allowed = {hub_domain(data)}
        if data.state == HubState.transferring:
            if not self.overrides.hook(ACCEPT_TARGET_NOTIFY, body):
                allowed.add(domain_of_uri(bytes(data.target.uri)))
        elif data.previous_hub is not None and self.transfers.previous_hub_may_notify(room_id, data, body):
            allowed.add(domain_of_uri(bytes(data.previous_hub.uri)))
        return peer_domain in allowed

    def _is_transfer_target_only(self, room_id: str, keep_discarded: bool = False) -> bool:
        """The target before the handoff with no client of its own in the room: it keeps the public
        state and delivers nothing (section 6.2); a discarded transfer no longer (EXT-HUBXFER-TARGET-EXPIRES),
        unless ``keep_discarded`` (departing from TARGET_ONLY_WHILE_ACCEPTED)."""
        incoming = self.transfers.incoming.get(room_id) if self.transfers is not None else None
        return (
            incoming is not None and (incoming.state == "accepted" or keep_discarded)
            and not self.room_clients(room_id)
            and not self._held_clients(room_id)
        )

    async def _room_call(self, room_id: str, endpoint: str, value: str, body: bytes):
        """A room request to the hub-of-record; with the hub-transfer extension a HubRedirect is followed
        (the hub-of-record stays: EXT-HUBXFER-FOLLOWER-REDIRECT-NOT-AUTHORITY) and a 503 retried after
        its Retry-After (EXT-HUBXFER-FOLLOWER-503-RETRY)."""
        hub = self.hub_of(room_id)
        if self.transfers is None:
            return await self._call(self.authority(hub), endpoint, value, body)
        from .provider.outbox import parse_retry_after
        from .wire.hub_transfer import read_hub_redirect

        deadline = time.monotonic() + 30.0
        hops = 0
        hub = self.overrides.hook(REQUEST_TO_HUB_OF_RECORD, self, room_id, hub) or hub
        while True:
            reply = await self._call(self.authority(hub), endpoint, value, body)
            if reply.status == 421 and hops < 8:
                redirect = read_hub_redirect(reply.headers.get("content-type"), reply.body, room_id)
                target = domain_of_uri(bytes(redirect.hub.uri)) if redirect is not None else None
                if target is not None and not self.is_local_domain(target):
                    if (other := self.overrides.hook(RESEND_AFTER_REDIRECT, self, room_id, hub, target, reply)) is not None:
                        faulty, target = await other  # a hook's coroutine: (a reply to return, or None; where to)
                        if faulty is not None:
                            return faulty
                    hub, hops = target, hops + 1
                    continue
            if reply.status == 503 and time.monotonic() < deadline and not self.overrides.departs(RETRY_AFTER_503):
                delay = parse_retry_after(reply.headers.get("retry-after"), time.time())
                await asyncio.sleep(min(delay if delay is not None else 1.0, 5.0))
                continue
            return reply

    async def send_update(self, room_id: str, body: bytes) -> RoomCall:
        hub = self.hub_of(room_id)
        if self.is_local_domain(hub):
            room = self.hub_rooms[room_id]
            response, plan = room.handle_update(self.domain, body, self._room_now(room))
            if response.responseCode == UpdateResponseCode.success:
                self.commit_room_change(room_id, room, plan)
            return RoomCall(200, update=response)
        try:
            reply = await self._room_call(room_id, "update", room_id, body)
        except PeerError as exc:
            return RoomCall(0, error=str(exc))
        if reply.status != 200:
            return RoomCall(reply.status, error=reply.body[:200].decode("utf-8", "replace"))
        try:
            return RoomCall(200, update=UpdateRoomResponse.decode(reply.body))
        except (DecodeError, EncodeError) as exc:
            return RoomCall(200, error=f"undecodable UpdateRoomResponse: {exc}")

    async def send_submit(self, room_id: str, body: bytes) -> RoomCall:
        hub = self.hub_of(room_id)
        if self.is_local_domain(hub):
            room = self.hub_rooms[room_id]
            response, plan = room.handle_submit(self.domain, body, self._room_now(room))
            if response.statusCode == SubmitResponseCode.accepted:
                self.commit_room_change(room_id, room, plan, room_changed=False)
            return RoomCall(200, submit=response)
        try:
            reply = await self._room_call(room_id, "submitMessage", room_id, body)
        except PeerError as exc:
            return RoomCall(0, error=str(exc))
        if reply.status != 200:
            return RoomCall(reply.status, error=reply.body[:200].decode("utf-8", "replace"))
        try:
            return RoomCall(200, submit=SubmitMessageResponse.decode(reply.body))
        except (DecodeError, EncodeError) as exc:
            return RoomCall(200, error=f"undecodable SubmitMessageResponse: {exc}")

    async def request_group_info(self, room_id: str, body: bytes) -> tuple[int, GroupInfoResponse | None, str]:
        """POST /groupInfo to the room's hub (answered in-process when it is this provider)."""
        hub = self.domain if self.overrides.departs(GROUPINFO_FROM_THE_HUB) else self.hub_of(room_id)
        if self.is_local_domain(hub):
            room = self.hub_rooms.get(room_id)
            answer = room.group_info_response(self.domain, body, now_ms()) if room else group_info_refusal(room_id.encode())
            return 200, answer, ""
        try:
            reply = await self._room_call(room_id, "groupInfo", room_id, body)
        except PeerError as exc:
            return 0, None, str(exc)
        if reply.status != 200:
            return reply.status, None, reply.body[:200].decode("utf-8", "replace")
        try:
            return 200, GroupInfoResponse.decode(reply.body), ""
        except (DecodeError, EncodeError) as exc:
            return 200, None, f"undecodable GroupInfoResponse: {exc}"

    async def _newcomer_group_info(self, room_id: str, member: SimulatedClient, hpke_pub: bytes):
        """groupInfo for a room this provider holds no state for: from the room ID's authority, following
        HubRedirects (hub-transfer §13). Returns (status, answer, error, newcomer.Located)."""
        try:
            reply, located = await newcomer.fetch_group_info(self, room_id, member.group_info_request(hpke_pub).encode())
        except (PeerError, ValueError) as exc:
            return 0, None, str(exc), None
        if reply.status != 200:
            return reply.status, None, reply.body[:200].decode("utf-8", "replace"), located
        try:
            return 200, GroupInfoResponse.decode(reply.body), "", located
        except (DecodeError, EncodeError) as exc:
            return 200, None, f"undecodable GroupInfoResponse: {exc}", located

    async def join_external(self, room_id: str, client_uri: str) -> tuple[RoomCall, SimulatedClient | None, str]:
        """A local client joins ``room_id`` by external commit (§5.6 groupInfo, then /update): at the
        hub-of-record when this provider holds the room's state (EXT-HUBXFER-FOLLOWER-RETARGET), else at
        the hub located from the room ID. Returns the hub's answer, the member on success, and a reason on
        failure."""
        member = self.new_member(room_id, client_uri)
        suite = cipher_suite(member.suite_id)
        hpke_priv, hpke_pub = suite.generate_hpke_key_pair()
        located = None  # a newcomer (no state of the room) locates the hub from the room ID (hub-transfer §13)
        if self.transfers is not None and room_id not in self.known_rooms():
            status, answer, error, located = await self._newcomer_group_info(room_id, member, hpke_pub)
        else:
            status, answer, error = await self.request_group_info(room_id, member.group_info_request(hpke_pub).encode())
        if answer is None or answer.status != GroupInfoCode.success:
            reason = error or (answer.status.name if answer is not None else "no GroupInfo")
            return RoomCall(status, error=reason), None, reason
        try:
            tbe = open_group_info_response(answer, hpke_priv)
        except CryptoError as exc:
            self.violations.add("PROTO-GROUPINFO-ENCRYPTED-TO-REQUESTER", peer=self.hub_of(room_id),
                                evidence=f"its GroupInfoResponse for {room_id} does not open with the requester's key: {exc}")
            return RoomCall(status, error=str(exc)), None, f"unusable GroupInfo: {exc}"
        try:
            tree = RatchetTree.from_wire(suite, tbe.ratchetTreeOption.ratchet_tree).encode()
            info = MLSMessage(version=1, wire_format=WireFormat.mls_group_info, group_info=tbe.groupInfo).encode()
            request = member.join_external(info, tree)
        except (MLSError, ValueError, DecodeError, EncodeError) as exc:
            return RoomCall(status, error=str(exc)), None, f"unusable GroupInfo: {exc}"
        if located is not None and (problem := newcomer.hub_problem(member.group, answer, room_id, located)):
            member.abandon()  # EXT-HUBXFER-NEWCOMER-DISCOVERY: not the room's hub
            return RoomCall(status, error=problem), None, problem
        # Registered before sending: the fan-out of its own commit (with the hub's external proposals
        # for the new epoch) may arrive before the hub's answer.
        previous = self.members.get((room_id, client_uri))
        self.members[(room_id, client_uri)] = member
        call = await self.send_update(room_id, request)
        if call.update is not None and call.update.responseCode == UpdateResponseCode.success:
            self.save_member(room_id, client_uri, member)
            return call, member, ""
        member.abandon()
        if previous is None:
            self.members.pop((room_id, client_uri), None)
        else:
            self.members[(room_id, client_uri)] = previous
        return call, None, call.update.errorDescription if call.update is not None else call.error

    def key_material_request(self, member: SimulatedClient, room_id: str, target: str) -> bytes:
        """A signed KeyMaterialRequest (§5.2) from ``member``'s user for ``target`` in ``room_id``."""
        return signed_key_material_request(
            member, "" if self.overrides.departs(REQUEST_KEYMAT_FOR_ROOM) else room_id, target,
            [2, member.suite_id] if self.overrides.departs(REQUEST_KEYMAT_OWN_SUITE) and member.suite_id != 2
            else [member.suite_id],
        )

    async def obtain_key_material(self, member: SimulatedClient, room_id: str, target: str) -> tuple[int, bytes]:
        """KeyMaterialResponse for ``target``: claimed here for a local user, fetched from the target
        provider when this provider is the hub, else asked of the hub (PROTO-KEYMAT-VIA-HUB)."""
        body = self.key_material_request(member, room_id, target)
        if self.is_local_domain(domain_of_uri(target)):
            result = self.state.claim_key_material(query_from_request(KeyMaterialRequest.decode(body)))
            return 200, result.to_response().encode()
        hub = self.hub_of(room_id)
        if self.overrides.departs(REQUEST_KEYMAT_VIA_HUB) and not self.is_local_domain(hub) and _provider_domain(target):
            hub = _provider_domain(target)  # asks the target's provider directly instead of the hub
        if self.is_local_domain(hub):
            try:
                return await self.fetch_key_material(room_id, target, body)
            except MimiHTTPError as exc:
                return exc.status, exc.detail.encode()
        try:
            reply = await self._call(self.authority(hub), "keyMaterial", target, body)
        except PeerError as exc:
            return 0, str(exc).encode()
        return reply.status, reply.body


def signed_key_material_request(member: SimulatedClient, room_id: str, target: str,
                                acceptable_suites: list[int]) -> bytes:
    """A signed KeyMaterialRequest (§5.2) from ``member``'s user for ``target`` in ``room_id`` ("": none
    named), the reference provider's and the adapter kit's."""
    req = KeyMaterialRequest(
        protocol=Protocol.mls10,
        requestingUser=IdentifierUri(uri=member.user_uri.encode()),
        targetUser=IdentifierUri(uri=target.encode()),
        roomId=IdentifierUri(uri=room_id.encode()),
        acceptableCiphersuites=acceptable_suites,
        requiredCapabilities=RequiredCapabilities(
            extension_types=[int(ExtensionType.app_data_dictionary)],
            proposal_types=[int(ProposalType.app_data_update), int(ProposalType.self_remove)],
            credential_types=[],
        ),
        requesterSignatureKey=member.signature_pub,
        requesterCredential=member.credential,
        key_material_request_signature=b"",
    )
    signature = cipher_suite(member.suite_id).sign_with_label(
        member.signature_priv, "KeyMaterialRequestTBS", req.tbs().encode()
    )
    return req.replace(key_material_request_signature=signature).encode()


def _expired_key_package(keys: SimulatedClient):
    """Fault keymat-serve-expired: a KeyPackage of ``keys`` whose lifetime ended an hour ago."""
    now = int(time.time())
    bundle = make_key_package(keys.suite_id, keys.credential, keys.signature_priv, not_before=now - 7200,
                              not_after=now - 3600, leaf_extensions=keys.leaf_extensions())
    keys.key_packages[bundle.ref()] = bundle
    return bundle


def _room_in_transfer(room) -> bool:
    """Whether a hub room (a HubRoom, or None) takes part in a hub transfer (started, moved, or taken over):
    its fan-out keeps one /notify in flight per provider, in order, whatever else the peer does."""
    return room is not None and (room.transfer is not None or room.moved is not None or bool(room.min_timestamp))


def _provider_domain(uri: str) -> str | None:
    """The domain of a mimi:// URI when it can be a provider's (None otherwise): URI syntax admits
    authorities such as ``mimi://0/u/x`` that are no DNS name, and the peer book refuses to look
    those up (ValueError), so they must be turned away before any call is attempted."""
    domain = domain_of_uri(uri)
    if domain is None:
        return None
    try:
        return normalize_domain(domain)
    except ValueError:
        return None


def _carries_welcome(body: bytes) -> bool:
    try:
        messages, _ = decode_fanout_sequence_tolerant(body, scope=MLS10)
    except (DecodeError, EncodeError):
        return False
    return any(m.message.wire_format == WireFormat.mls_welcome for m in messages)


def _is_room_uri(value: str) -> bool:
    try:
        return MimiUri.parse(value).kind is UriKind.room
    except MimiUriError:
        return False


def fresh_name(prefix: str) -> str:
    """A new local name for something the caller did not name (user, room)."""
    return f"{prefix}{secrets.token_hex(5)}"


def providers_from_config(config, overrides: Overrides | None = None) -> list[ReferenceProvider]:
    """One :class:`ReferenceProvider` per provider of a :class:`~reference_peer.config.PeerConfig`, each
    built with ``overrides`` (the faults and variants of the configuration, made by the caller)."""
    peers = PeerBook(config.peers, config.peers_file)
    retry = RetryPolicy(
        base_delay=config.outbox_base_delay, max_delay=config.outbox_max_delay, max_attempts=config.outbox_max_attempts
    )
    out = []
    for provider in config.providers:
        storage = None if config.storage_path is None else Path(config.storage_path) / f"{provider.domain}.sqlite"
        out.append(
            ReferenceProvider(
                ProviderOptions(
                    provider.domain, provider.cert, provider.key, config.ca, aliases=provider.aliases,
                    storage_path=storage, consent_mode=config.consent_mode, peers=peers, resolve=config.resolve,
                    asset_hosts=config.asset_hosts, retry=retry, hub_transfer=config.hub_transfer,
                ),
                overrides=overrides,
            )
        )
    return out
