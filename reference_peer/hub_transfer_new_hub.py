"""The target's and new hub's rules of the hub-transfer extension (docs/extensions/hub-transfer.md): it
verifies a prepare and accepts it (5.2), tracks the public group state from the handshake fan-out (6.2),
redirects the room's requests during the window (8.3) and answers 503 after the cut-over until the
handoff, verifies the handoff (12), takes the room over, delivers the backlog first and proposes the old
hub's removal from external_senders (6.5). One :class:`NewHubSide` per
:class:`~reference_peer.hub_transfer.HubTransferService`."""

from __future__ import annotations

import logging

from .hub_transfer_common import Side, now_ms, redirect_response, response
from .mls import MLSError, gce_proposal
from .mls.crypto import cipher_suite
from .mls.group import external_senders_extension, set_extension
from .mls.hub import HubView
from .mls.tree import RatchetTree
from .overrides import Step, step
from .room.hub import HubRoom, PendingEntry
from .room.naming import domain_of_uri
from .room.transfer import IncomingTransfer, hub_domain, hub_of_record, provider_uri, sender_domain, verify_request
from .server.transport import MimiResponse
from .wire.codec import DecodeError, EncodeError
from .wire.hub_transfer import (
    HubRedirect,
    HubState,
    HubTransferAcceptTBS,
    HubTransferCode,
    HubTransferMessageType,
    HubTransferResponse,
    sign_hub_transfer_acceptance,
    verify_hub_handoff,
    verify_hub_transfer_abort,
    verify_hub_transfer_prepare,
)
from .wire.identity import IdentifierUri
from .wire.mimi import FanoutMessage
from .wire.mls import ContentType, ExtensionType, MLSMessage, WireFormat

log = logging.getLogger("reference_peer.hub_transfer")

# target / new hub: the prepare and the acceptance (5.2), the handoff and the take-over (6.4, 6.5, 12)
PREPARE_REFUSES_REPLAY = step(
    "transfer.prepare.refuses-replay", "EXT-HUBXFER-PREPARE-REPLAY",
    summary="the target answers replayed to a prepare whose transfer_id it has seen before")
PREPARE_FROM_HUB = step(
    "transfer.prepare.from-hub", "EXT-HUBXFER-SOURCE-BINDING", "EXT-HUBXFER-PREPARE-VERIFY",
    summary="the target accepts a prepare only from the hub its GroupInfo names (mTLS peer)")
PREPARE_VERIFIES_SIGNATURE = step(
    "transfer.prepare.verifies-signature", "EXT-HUBXFER-PREPARE-VERIFY",
    summary="the target verifies the prepare's signature with the hub's external_senders key")
PREPARE_VERIFIES_REQUEST = step(
    "transfer.prepare.verifies-request", "EXT-HUBXFER-PREPARE-VERIFY",
    summary="the target verifies the HubTransferRequest the prepare carries")
ACCEPTANCE_NAMES_TARGET = step(
    "transfer.accept.names-target", "EXT-HUBXFER-ACCEPT-SENDER",
    summary="the acceptance's new_hub_sender is the target's own key and names the target")
TARGET_ACCEPTS_AS_DECLARED = step(
    "transfer.target.accepts-as-declared", "EXT-HUBXFER-DECLARED",
    summary="the target accepts a verified prepare from an old hub its manifest's accepts_from admits")
TARGET_EXPIRES = step(
    "transfer.target.expires", "EXT-HUBXFER-TARGET-EXPIRES",
    summary="the target discards an accepted transfer whose cut-over it did not observe by not_after")
TARGET_KEEPS_UNTIL_NOT_AFTER = step(
    "transfer.target.keeps-until-not-after", "EXT-HUBXFER-TARGET-EXPIRES",
    summary="the target keeps an accepted transfer open until its not_after (section 11), not shorter")
TARGET_DISCARDS_ON_ABORT = step(
    "transfer.target.discards-on-abort", "EXT-HUBXFER-TARGET-EXPIRES",
    summary="the target discards the transfer a valid abort names")
TARGET_REDIRECTS = step(
    "transfer.gate.target-redirects", "EXT-HUBXFER-TARGET-REDIRECT",
    summary="during the window the target answers the room's requests 421 with a HubRedirect to the hub")
NEWHUB_503_BEFORE_HANDOFF = step(
    "transfer.gate.newhub-503-before-handoff", "EXT-HUBXFER-NEWHUB-503",
    summary="between the cut-over commit and the handoff the new hub answers 503 with Retry-After")
TAKEOVER_FROM_OLD_HUB = step(
    "transfer.takeover.from-old-hub", "EXT-HUBXFER-SOURCE-BINDING", "EXT-HUBXFER-HANDOFF-VERIFY",
    summary="the new hub accepts a handoff only from the previous hub (mTLS peer)")
TAKEOVER_ACCEPTS_VALID = step(
    "transfer.takeover.accepts-valid-handoff", "EXT-HUBXFER-NEWHUB-ACCEPTS-HANDOFF",
    summary="a handoff meeting every condition of section 12 is accepted and the room taken over")
TAKEOVER_ANSWERS_REPLAY = step(
    "transfer.takeover.answers-replay", "EXT-HUBXFER-HANDOFF-REPLAY",
    summary="a repeated handoff is answered accepted without effect, a different one replayed")
TAKEOVER_VERIFIES_SIGNATURE = step(
    "transfer.takeover.verifies-signature", "EXT-HUBXFER-HANDOFF-VERIFY",
    summary="the new hub verifies the handoff's signature with the old hub's external_senders key")
TAKEOVER_MATCHES_CUTOVER = step(
    "transfer.takeover.matches-cutover", "EXT-HUBXFER-HANDOFF-VERIFY",
    summary="the handoff's generation matches the committed cut-over component")
TAKEOVER_KEEPS_GROUP = step(
    "transfer.takeover.keeps-group", "EXT-HUBXFER-NO-REINIT", "EXT-HUBXFER-ROOMID-UNCHANGED",
    summary="the new hub serves the handed-over group (same group ID and epoch), not a fresh one")
TAKEOVER_KEEPS_ROLES = step(
    "transfer.takeover.keeps-roles", "EXT-HUBXFER-STATE-PRESERVED",
    summary="the GroupInfo the new hub serves keeps the participant list as handed over")
TAKEOVER_KEEPS_ROUTES = step(
    "transfer.takeover.keeps-routes", "EXT-HUBXFER-NEWHUB-ROUTES",
    summary="the new hub routes Welcomes to the providers the handed-over KeyPackageRef routes name")
TAKEOVER_BACKLOG_BYTES_KEPT = step(
    "transfer.takeover.backlog-bytes-kept", "EXT-HUBXFER-HANDOFF-BYTES-KEPT",
    summary="the new hub delivers the handed-over FanoutMessages byte for byte")
TAKEOVER_BACKLOG_IN_ORDER = step(
    "transfer.takeover.backlog-in-order", "EXT-HUBXFER-INFLIGHT-ORDER",
    summary="the new hub delivers each destination's handed-over FanoutMessages in their order")
TAKEOVER_REMOVES_OLD_SENDER = step(
    "transfer.takeover.removes-old-sender", "EXT-HUBXFER-OLD-SENDER-REMOVED",
    summary="the new hub proposes the removal of the old hub's external_senders entry")
TAKEOVER_SKIPS_NON_PROVIDER = step(
    "transfer.takeover.skips-non-provider-destination", "EXT-HUBXFER-NEWHUB-SERVES", "EXT-HUBXFER-NEWHUB-503",
    summary="an undelivered entry whose destination is not a provider URI is skipped, so the take-over never "
    "stops half-way (a room served without an accepted handoff)")


class NewHubSide(Side):
    """The rules of the provider as a transfer's target and, after the handoff, the room's new hub."""

    def __init__(self, service) -> None:
        super().__init__(service)
        self.incoming: dict[str, IncomingTransfer] = {}  # room ID -> the transfer this provider accepted as target
        self.seen_transfer_ids: set[bytes] = set()  # EXT-HUBXFER-PREPARE-REPLAY
        self.handoffs_received: list[bytes] = []

    # -- the prepare and the acceptance (5.2) ---------------------------------------------------

    def process_prepare(self, room_id: str, prepare, peer_domain: str) -> HubTransferResponse:
        kind = HubTransferMessageType.prepare
        c = prepare.content
        if bytes(c.request.content.room_id.uri) != room_id.encode():
            return response(kind, HubTransferCode.notAllowed, "the request names another room")
        if bytes(c.transfer_id) in self.seen_transfer_ids and not self.overrides.departs(PREPARE_REFUSES_REPLAY):
            # EXT-HUBXFER-PREPARE-REPLAY
            return response(kind, HubTransferCode.replayed, "transfer_id seen before")
        try:
            suite = cipher_suite(c.cipher_suite)
            tree = RatchetTree.from_wire(suite, c.ratchet_tree_option.ratchet_tree).encode()
            info = MLSMessage(version=1, wire_format=WireFormat.mls_group_info, group_info=c.group_info).encode()
            view = HubView.from_group_info(info, ratchet_tree=tree)
        except (MLSError, ValueError, DecodeError, EncodeError, AttributeError, TypeError) as exc:
            return response(kind, HubTransferCode.notAllowed, f"unusable GroupInfo or tree: {exc}")
        data = hub_of_record(view.app_data(), room_id)
        hub = hub_domain(data) if data is not None else domain_of_uri(room_id)
        if hub != peer_domain and not self.overrides.departs(PREPARE_FROM_HUB):  # EXT-HUBXFER-SOURCE-BINDING
            return response(kind, HubTransferCode.notHub, f"{peer_domain} is not the room's hub ({hub})")
        listed = any(
            bytes(s.signature_key) == bytes(c.old_hub_sender.signature_key) and sender_domain(s) == peer_domain
            for s in view.external_senders()
        )
        if not listed:
            return response(kind, HubTransferCode.notAllowed, "old_hub_sender is not the hub's external_senders entry")
        if not verify_hub_transfer_prepare(suite, prepare, bytes(c.old_hub_sender.signature_key)) \
                and not self.overrides.departs(PREPARE_VERIFIES_SIGNATURE):
            return response(kind, HubTransferCode.badSignature, "the prepare signature does not verify")
        code, why = verify_request(view, room_id, c.request, now_ms(), hub=peer_domain, overrides=self.overrides)
        if code != HubTransferCode.accepted and not self.overrides.departs(PREPARE_VERIFIES_REQUEST):  # PREPARE-VERIFY
            return response(kind, code, why)
        if domain_of_uri(bytes(c.request.content.target.uri)) != self.p.domain:
            return response(kind, HubTransferCode.notAllowed, "the request names another target")
        self.seen_transfer_ids.add(bytes(c.transfer_id))
        if not self.accepts(peer_domain, room_id, declared=TARGET_ACCEPTS_AS_DECLARED):  # TARGET-MAY-DECLINE, DECLARED
            return response(kind, HubTransferCode.declined, "this provider does not host rooms of that hub")
        not_after = min(c.requested_not_after, now_ms() + self.settings.cutover_timeout_ms)
        content = HubTransferAcceptTBS(
            room_id=IdentifierUri(uri=room_id.encode()),
            group_id=bytes(view.group_id),
            transfer_id=bytes(c.transfer_id),
            generation=c.request.content.generation + 1,
            old_hub=provider_uri(peer_domain),
            new_hub=provider_uri(self.service.acceptance_new_hub or self.p.domain),  # the suite's knob, else itself
            not_after=not_after,
            new_hub_sender=self.p.identity.external_sender,  # EXT-HUBXFER-ACCEPT-SENDER, also its GroupInfoResponse key
        )
        if (sender := self.overrides.hook(ACCEPTANCE_NAMES_TARGET, content.new_hub_sender, peer_domain)) is not None:
            content = content.replace(new_hub_sender=sender)
        acceptance = sign_hub_transfer_acceptance(suite, self.p.identity.signature_priv, content)
        self.incoming[room_id] = IncomingTransfer(
            room_id=room_id, transfer_id=bytes(c.transfer_id), old_hub=peer_domain, group_id=bytes(view.group_id),
            old_hub_sender=c.old_hub_sender, acceptance=acceptance, not_after=not_after, view=view,
        )
        self.overrides.hook(TARGET_KEEPS_UNTIL_NOT_AFTER, self.incoming[room_id])
        return response(kind, HubTransferCode.accepted, acceptance=acceptance)

    def accepts(self, old_hub: str, room_id: str, declared: Step = TARGET_ACCEPTS_AS_DECLARED) -> bool:
        """The target's policy (manifest ``accepts_from``, EXT-HUBXFER-DECLARED); a room it already hosts is
        never accepted. process_prepare names ``declared`` so that its refusals map to EXT-HUBXFER-DECLARED."""
        if room_id in self.p.hub_rooms and self.p.hub_rooms[room_id].moved is None:
            return False
        if self.overrides.departs(declared):
            return False
        allowed = self.settings.accepts_from
        return allowed is None or old_hub in allowed

    # -- the window: tracking, abort, expiry (6.2, 11) -------------------------------------------

    def track(self, room_id: str, messages: list[FanoutMessage]) -> None:
        """The target keeps the public group state from the handshake fan-out (section 6.2)."""
        incoming = self.incoming.get(room_id)
        if incoming is None or incoming.state != "accepted" or incoming.view is None:
            return
        view = incoming.view
        try:
            for fanout in messages:
                msg = fanout.message
                if msg.wire_format != WireFormat.mls_public_message:
                    continue
                content_type = msg.public_message.content.content_type
                if content_type == ContentType.proposal:
                    for proposal in [msg, *fanout.moreProposals]:
                        view.process(proposal.encode())
                elif content_type == ContentType.commit:
                    view.process(msg.encode())
                    for proposal in fanout.externalProposals:
                        view.process(proposal.encode())
        except MLSError as exc:
            incoming.view, incoming.lost = None, f"{type(exc).__name__}: {exc}"
            log.warning("%s: lost track of %s (%s); the handoff's GroupInfo will be used", self.p.domain, room_id,
                        incoming.lost)
            return
        data = hub_of_record(view.app_data(), room_id)
        if data is not None and data.state == HubState.stable and hub_domain(data) == self.p.domain:
            incoming.cutover_seen = True

    def process_abort(self, room_id: str, abort, peer_domain: str) -> HubTransferResponse:
        kind = HubTransferMessageType.abort
        incoming = self.incoming.get(room_id)
        if incoming is None or bytes(abort.content.transfer_id) != incoming.transfer_id \
                or incoming.state != "accepted":
            return response(kind, HubTransferCode.unknownTransfer, "no open transfer with this transfer_id")
        if peer_domain != incoming.old_hub:
            return response(kind, HubTransferCode.notHub, f"{peer_domain} is not the room's hub")
        suite = cipher_suite(1 if incoming.view is None else incoming.view.suite.suite_id)
        if not verify_hub_transfer_abort(suite, abort, bytes(incoming.old_hub_sender.signature_key)):
            return response(kind, HubTransferCode.badSignature, "the abort does not verify")
        if incoming.cutover_seen:
            return response(kind, HubTransferCode.notAllowed, "the cut-over is committed")
        if not self.overrides.departs(TARGET_DISCARDS_ON_ABORT):
            incoming.state = "discarded"  # EXT-HUBXFER-TARGET-EXPIRES
        return response(kind, HubTransferCode.accepted)

    def expire(self, now: int) -> None:
        """EXT-HUBXFER-TARGET-EXPIRES: an accepted transfer whose cut-over was not seen by not_after is discarded."""
        for room_id, incoming in list(self.incoming.items()):
            if incoming.state == "accepted" and not incoming.cutover_seen and now > incoming.not_after \
                    and not self.overrides.departs(TARGET_EXPIRES):
                incoming.state = "discarded"  # EXT-HUBXFER-TARGET-EXPIRES
                log.info("%s: transfer of %s expired without a cut-over", self.p.domain, room_id)

    # -- the handoff and the take-over (6.4, 6.5, 12) --------------------------------------------

    def process_handoff(self, room_id: str, handoff, peer_domain: str, raw: bytes) -> HubTransferResponse:
        kind = HubTransferMessageType.handoff
        self.handoffs_received.append(raw)
        c = handoff.content
        incoming = self.incoming.get(room_id)
        if incoming is not None and incoming.state == "accepted" and not incoming.cutover_seen \
                and now_ms() > incoming.not_after and not self.overrides.departs(TARGET_EXPIRES):
            incoming.state = "discarded"
        if incoming is None or bytes(c.transfer_id) != incoming.transfer_id or incoming.state == "discarded" \
                or bytes(c.room_id.uri) != room_id.encode():
            return response(kind, HubTransferCode.unknownTransfer, "no accepted transfer with this transfer_id")
        if peer_domain != incoming.old_hub and not self.overrides.departs(TAKEOVER_FROM_OLD_HUB):
            return response(kind, HubTransferCode.notHub, f"{peer_domain} is not the previous hub")  # SOURCE-BINDING
        if incoming.state == "handed-over" and not self.overrides.departs(TAKEOVER_ANSWERS_REPLAY):
            if raw == incoming.handoff:
                return response(kind, HubTransferCode.accepted)
            return response(kind, HubTransferCode.replayed, "this transfer was handed over already")
        suite = cipher_suite(c.group_info.group_context.cipher_suite)
        old_key = bytes(incoming.old_hub_sender.signature_key)
        if not any(bytes(s.signature_key) == old_key for s in _senders_of(c.group_info)) \
                or not (verify_hub_handoff(suite, handoff, old_key)
                        or self.overrides.departs(TAKEOVER_VERIFIES_SIGNATURE)):
            return response(kind, HubTransferCode.badSignature, "the handoff does not verify with the old hub's key")
        try:
            tree = RatchetTree.from_wire(suite, c.ratchet_tree_option.ratchet_tree).encode()
            info = MLSMessage(version=1, wire_format=WireFormat.mls_group_info, group_info=c.group_info).encode()
            view = HubView.from_group_info(info, ratchet_tree=tree)
        except (MLSError, ValueError, DecodeError, EncodeError, AttributeError, TypeError) as exc:
            return response(kind, HubTransferCode.wrongEpoch, f"unusable GroupInfo or tree: {exc}")
        if view.epoch != c.cutover_epoch or bytes(view.group_id) != incoming.group_id:
            return response(kind, HubTransferCode.wrongEpoch, "the GroupInfo is not of the cut-over epoch")
        data = hub_of_record(view.app_data(), room_id)
        if (
            data is None or data.state != HubState.stable or hub_domain(data) != self.p.domain
            or data.previous_hub is None or domain_of_uri(bytes(data.previous_hub.uri)) != peer_domain
            or bytes(data.last_transfer_id) != incoming.transfer_id
            or (data.generation != c.generation and not self.overrides.departs(TAKEOVER_MATCHES_CUTOVER))
        ):
            return response(kind, HubTransferCode.staleGeneration, "no committed cut-over to this hub")
        tracked = incoming.view
        if tracked is not None and tracked.epoch == view.epoch and tracked.context.encode() != view.context.encode():
            return response(kind, HubTransferCode.wrongEpoch, "the GroupInfo differs from the tracked state")
        if (refusal := self.overrides.hook(TAKEOVER_ACCEPTS_VALID, kind)) is not None:
            return refusal
        self.take_over(room_id, view, handoff, incoming)
        incoming.state, incoming.handoff = "handed-over", raw
        return response(kind, HubTransferCode.accepted)

    def take_over(self, room_id: str, view: HubView, handoff, incoming: IncomingTransfer) -> None:
        """Section 6.4-6.5: become the hub, backlog first, then the old hub's removal from external_senders."""
        c = handoff.content
        room = HubRoom(room_id, self.p.identity, view, group_info=c.group_info, overrides=self.p.overrides)
        room.group_info = self.overrides.hook(TAKEOVER_KEEPS_GROUP, room.group_info) or room.group_info
        room.group_info = self.overrides.hook(TAKEOVER_KEEPS_ROLES, room.group_info) or room.group_info
        for pending in c.pending_proposals:
            data = pending.proposal.encode()
            received = room.view.process(data)
            room.pending.append(PendingEntry(data, received.proposal_ref, pending.hub_accepted_time, None,
                                             int(received.proposal.proposal_type), required=True,
                                             why_required="handed over"))
        for route in c.routes:  # EXT-HUBXFER-NEWHUB-ROUTES
            domain = domain_of_uri(bytes(route.provider.uri))
            if domain is not None:
                misrouted = self.overrides.departs(TAKEOVER_KEEPS_ROUTES)
                room.record_key_package(bytes(route.kp_ref), incoming.old_hub if misrouted else domain)
        room.min_timestamp = room.last_accepted = c.last_accepted_timestamp  # EXT-HUBXFER-TIMESTAMPS-MONOTONIC
        old_key = bytes(incoming.old_hub_sender.signature_key)
        keep = [s for s in room.view.external_senders() if bytes(s.signature_key) != old_key]
        with self.p.state.store.transaction():
            self.p.host_room(room_id, room)
            for entry in c.undelivered:  # EXT-HUBXFER-INFLIGHT-ORDER, EXT-HUBXFER-HANDOFF-BYTES-KEPT
                destination = domain_of_uri(bytes(entry.destination.uri))
                # EXT-HUBXFER-NEWHUB-SERVES: an entry naming no provider is skipped, not queued to nowhere
                if (destination is None and not self.overrides.departs(TAKEOVER_SKIPS_NON_PROVIDER)) \
                        or not entry.messages:
                    continue
                messages = list(entry.messages)
                messages = self.overrides.hook(TAKEOVER_BACKLOG_BYTES_KEPT, messages, now_ms()) or messages
                messages = self.overrides.hook(TAKEOVER_BACKLOG_IN_ORDER, messages) or messages
                if self.p.is_local_domain(destination):
                    self.p.intake(room_id, messages)
                else:
                    self.p.state.queue_notify(destination, room_id, b"".join(m.encode() for m in messages))
            if len(keep) != len(room.view.external_senders()) \
                    and not self.overrides.departs(TAKEOVER_REMOVES_OLD_SENDER):  # EXT-HUBXFER-OLD-SENDER-REMOVED
                exts = set_extension(
                    list(room.view.context.extensions), ExtensionType.external_senders,
                    external_senders_extension(keep).extension_data,
                )
                plan = room.issue_hub_proposals([gce_proposal(exts)], self._stamp(room),
                                                "the old hub leaves external_senders [EXT-HUBXFER-OLD-SENDER-REMOVED]")
                self.p.commit_room_change(room_id, room, plan)
        log.info("%s: took over %s from %s", self.p.domain, room_id, incoming.old_hub)

    # -- answers to room requests during the window and before the handoff (8.3, 6.4) ----------

    def gate(self, room_id: str, room: HubRoom | None) -> MimiResponse | None:
        """The target's answer to a room request: 421 + HubRedirect naming the hub during the window,
        503 + Retry-After after the cut-over and before the handoff; None: serve it."""
        incoming = self.incoming.get(room_id)
        if incoming is None or incoming.state != "accepted" or (room is not None and room.moved is None):
            return None
        if incoming.cutover_seen and not self.overrides.departs(NEWHUB_503_BEFORE_HANDOFF):  # NEWHUB-503
            return MimiResponse(b"", status=503, headers={"Retry-After": str(self.settings.retry_503_seconds)})
        view = incoming.view
        data = hub_of_record(view.app_data(), room_id) if view is not None else None
        if self.overrides.departs(TARGET_REDIRECTS) and not incoming.cutover_seen:
            return None
        redirect = HubRedirect(  # EXT-HUBXFER-TARGET-REDIRECT
            room_id=IdentifierUri(uri=room_id.encode()), hub=provider_uri(incoming.old_hub),
            generation=data.generation if data is not None else 0, epoch=view.epoch if view is not None else 0,
        )
        return redirect_response(redirect)


def _senders_of(group_info) -> list:
    from .mls.group import _decode_ext, _external_senders_codec, get_extension

    data = get_extension(list(group_info.group_context.extensions), ExtensionType.external_senders)
    if data is None:
        return []
    return list(_decode_ext(_external_senders_codec(), data, "external_senders"))
