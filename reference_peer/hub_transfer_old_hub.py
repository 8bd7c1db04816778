"""The old hub's rules of the hub-transfer extension (docs/extensions/hub-transfer.md): it verifies a
request (5.1), sends the prepare (5.2), issues the begin proposals (6.2), the cut-over proposal once the
begin commit is delivered (6.3), snapshots the undelivered fan-out and sends the handoff, byte-identical on
every retry (6.4), aborts at ``not_after`` (11), and redirects the room's requests after the cut-over
(8.1). One :class:`OldHubSide` per :class:`~reference_peer.hub_transfer.HubTransferService`."""

from __future__ import annotations

import json
import logging
import secrets
import time

from .hub_transfer_common import (
    HANDOFF_MAX_DELAY,
    MLS10,
    REQUEST_LIFETIME_MS,
    Side,
    now_ms,
    redirect_response,
    response,
)
from .mls import app_data_update_proposal, gce_proposal
from .mls.crypto import cipher_suite
from .mls.group import decode_message, external_senders_extension, set_extension
from .overrides import step
from .room.hub import HubRoom, PendingEntry
from .room.naming import domain_of_uri
from .room.transfer import (
    ABORT_PROPOSED,
    ABORTED,
    BEGIN_COMMITTED,
    BEGUN,
    CUTOVER_PROPOSED,
    HANDED_OFF,
    MOVED,
    OutgoingTransfer,
    abort_hub_data,
    begin_hub_data,
    current_hub_data,
    cutover_hub_data,
    dependent_rooms,
    provider_uri,
    sender_domain,
    verify_request,
)
from .server.client import PeerError
from .server.transport import MimiResponse
from .wire.codec import DecodeError, EncodeError
from .wire.hub_transfer import (
    MIMI_HUB_COMPONENT_ID,
    HubHandoffTBS,
    HubState,
    HubTransferAbortTBS,
    HubTransferCode,
    HubTransferMessage,
    HubTransferMessageType,
    HubTransferPrepareTBS,
    HubTransferRequestTBS,
    HubTransferResponse,
    KeyPackageRoute,
    UndeliveredFanout,
    sign_hub_handoff,
    sign_hub_transfer_abort,
    sign_hub_transfer_prepare,
    sign_hub_transfer_request,
    verify_hub_transfer_acceptance,
)
from .wire.identity import IdentifierUri
from .wire.mimi import FanoutMessage, PendingProposal
from .wire.mls import AppDataDictionary, ExtensionType, ProposalType
from .wire.ratchet_tree_options import RatchetTreeOption, RatchetTreeRepresentation

log = logging.getLogger("reference_peer.hub_transfer")

# old hub: the request (5.1), the prepare (5.2), the begin (6.2)
REQUEST_FROM_INITIATOR_PROVIDER = step(
    "transfer.request.from-initiator-provider", "EXT-HUBXFER-REQUEST-SOURCE",
    summary="a request is processed only when the mTLS peer is the initiator's provider")
REQUEST_REFUSED_AFTER_CUTOVER = step(
    "transfer.request.refused-after-cutover", "EXT-HUBXFER-REQUEST-REFUSED", "EXT-HUBXFER-OLDHUB-NO-ACCEPT",
    summary="after the cut-over the old hub answers a request for the room notHub (section 8.1) and sends no "
    "prepare for it")
REQUEST_ONE_AT_A_TIME = step(
    "transfer.request.one-at-a-time", "EXT-HUBXFER-ONE-AT-A-TIME",
    summary="a request is answered busy while another transfer of the room is being prepared or in its window")
REQUEST_NEEDS_CAPABILITY = step(
    "transfer.request.needs-capability", "EXT-HUBXFER-CAP-REQUIRED", "EXT-HUBXFER-REQUEST-REFUSED",
    summary="a request whose initiator's role lacks canTransferHub is refused")
REVERIFY_AFTER_PREPARE = step(
    "transfer.request.reverify-after-prepare", "EXT-HUBXFER-CAP-REQUIRED",
    summary="when a commit landed while the target held the prepare, the request is verified again in the epoch "
    "the hub would propose in; one that no longer verifies is answered wrongEpoch and nothing begins")
REFUSED_REQUEST_SENDS_NOTHING = step(
    "transfer.request.refused-sends-nothing", "EXT-HUBXFER-REQUEST-REFUSED",
    summary="a refused request sends no prepare and proposes nothing")
ACCEPTANCE_NAMES_TARGET = step(
    "transfer.prepare.acceptance-names-target", "EXT-HUBXFER-CONSENT-FIRST", "EXT-HUBXFER-BEGIN-PROPOSALS",
    summary="an acceptance whose new_hub is not the target the prepare was sent to is not the target's consent: "
    "the request is answered declined and nothing is proposed; one naming the target is taken (the begin follows)")
ACCEPTANCE_WITHIN_DEADLINE = step(
    "transfer.prepare.acceptance-within-deadline", "EXT-HUBXFER-CONSENT-FIRST", "EXT-HUBXFER-BEGIN-PROPOSALS",
    summary="an acceptance whose not_after is later than the prepare's requested_not_after (section 5.2: "
    "'not_after; /* <= requested_not_after */') is not taken: the request is answered declined, nothing proposed; "
    "one within it is taken (the begin follows)")
PREPARE_DECLARED_TIMEOUT = step(
    "transfer.prepare.declared-timeout", "EXT-HUBXFER-DECLARED",
    summary="the prepare asks for a cut-over deadline within the manifest's cutover_timeout_ms")
BEGIN_AFTER_CONSENT = step(
    "transfer.begin.after-consent", "EXT-HUBXFER-DECLINE-CHANGES-NOTHING", "EXT-HUBXFER-CONSENT-FIRST",
    "EXT-HUBXFER-BEGIN-PROPOSALS",
    summary="the begin is proposed only with the target's verified acceptance, and with it; a decline changes "
            "nothing")
BEGIN_APPENDS_TARGET_SENDER = step(
    "transfer.begin.appends-target-sender", "EXT-HUBXFER-BEGIN-PROPOSALS",
    summary="the begin GroupContextExtensions appends the target's new_hub_sender to external_senders")
BEGIN_FANS_OUT_TO_TARGET = step(
    "transfer.begin.fans-out-to-target", "EXT-HUBXFER-TARGET-FANOUT",
    summary="the begin proposals are fanned out to the target as well as to the followers")
BEGIN_PROPOSALS_REQUIRED = step(
    "transfer.begin.proposals-required", "EXT-HUBXFER-PENDING-REQUIRED",
    summary="the begin proposals are required in the next commit")
# old hub: the cut-over, the handoff (6.3, 6.4), the abort (11), the redirect (8.1)
CUTOVER_AFTER_DELIVERY = step(
    "transfer.cutover.after-delivery", "EXT-HUBXFER-CUTOVER-AFTER-DELIVERY",
    summary="the cut-over is proposed once every /notify of the begin commit was answered 201")
HANDOFF_SENT = step(
    "transfer.handoff.sent", "EXT-HUBXFER-HANDOFF-SENT",
    summary="after the cut-over commit the old hub sends the handoff to the new hub")
HANDOFF_STOPS_FANOUT = step(
    "transfer.handoff.stops-fanout", "EXT-HUBXFER-OLDHUB-STOPS-FANOUT",
    summary="the /notify items the handoff snapshot takes leave the old hub's outbox")
HANDOFF_CARRIES_UNDELIVERED = step(
    "transfer.handoff.carries-undelivered", "EXT-HUBXFER-HANDOFF-CONTENT", "EXT-HUBXFER-INFLIGHT-EXACTLY-ONCE",
    summary="the handoff carries every undelivered FanoutMessage the snapshot took, per destination")
HANDOFF_CARRIES_ROUTES = step(
    "transfer.handoff.carries-routes", "EXT-HUBXFER-HANDOFF-CONTENT",
    summary="the handoff carries the room's KeyPackageRef routes")
HANDOFF_RETRY_IDENTICAL = step(
    "transfer.handoff.retry-identical", "EXT-HUBXFER-HANDOFF-RETRY-IDENTICAL", "EXT-HUBXFER-INFLIGHT-EXACTLY-ONCE",
    summary="every handoff retry resends the first attempt's bytes")
NO_ROLLBACK = step(
    "transfer.handoff.no-rollback", "EXT-HUBXFER-NO-ROLLBACK",
    summary="an unaccepted handoff is retried; the old hub never names itself hub again after the cut-over")
ABORT_NEXT_GENERATION = step(
    "transfer.abort.next-generation", "EXT-HUBXFER-COMPONENT-GENERATION",
    summary="the abort mimi_hub update carries generation + 1")
ABORT_NO_PREVIOUS_HUB = step(
    "transfer.abort.no-previous-hub", "EXT-HUBXFER-COMPONENT-TRANSITIONS",
    summary="the abort mimi_hub update leaves previous_hub absent")
ABORT_AT_NOT_AFTER = step(
    "transfer.abort.at-not-after", "EXT-HUBXFER-ABORT-ON-TIMEOUT",
    summary="the old hub proposes the abort once not_after passes with the cut-over commit not accepted")
ABORT_REMOVES_TARGET_SENDER = step(
    "transfer.abort.removes-target-sender", "EXT-HUBXFER-ABORT-ON-TIMEOUT",
    summary="the abort proposes the removal of the target's external_senders entry with the mimi_hub abort")
ABORT_NOTIFIES_TARGET = step(
    "transfer.abort.notifies-target", "EXT-HUBXFER-ABORT-NOTIFIES-TARGET",
    summary="the old hub sends the signed abort message to the target")
OLDHUB_REDIRECTS = step(
    "transfer.gate.oldhub-redirects", "EXT-HUBXFER-OLDHUB-NO-ACCEPT", "EXT-HUBXFER-OLDHUB-REDIRECT",
    summary="after the cut-over the old hub answers the room's requests 421 with a HubRedirect")
REDIRECT_NAMES_CUTOVER_EPOCH = step(
    "transfer.gate.redirect-names-cutover-epoch", "EXT-HUBXFER-OLDHUB-REDIRECT-SHAPE",
    summary="the old hub's HubRedirect carries the cut-over epoch")


class OldHubSide(Side):
    """The rules of the provider as the room's hub that moves it away."""

    def __init__(self, service) -> None:
        super().__init__(service)
        self._preparing: set[str] = set()  # rooms whose prepare is under way (EXT-HUBXFER-ONE-AT-A-TIME)
        self.handoffs_sent: list[bytes] = []  # every handoff attempt's bytes, for introspection and tests

    # -- request, prepare, begin (5.1, 5.2, 6.2) --------------------------------------------------

    def make_request(self, room_id: str, member, target_domain: str) -> HubTransferMessage:
        """The initiator's signed request (section 5.1), made with its local client ``member``."""
        group = member.group
        data = current_hub_data(group.app_data(), room_id)
        content = HubTransferRequestTBS(
            room_id=IdentifierUri(uri=room_id.encode()),
            group_id=bytes(group.group_id),
            target=provider_uri(target_domain),
            generation=data.generation,
            not_after=now_ms() + REQUEST_LIFETIME_MS,
            initiator=IdentifierUri(uri=member.user_uri.encode()),
            initiator_leaf_index=group.own_leaf,
        )
        signed = sign_hub_transfer_request(cipher_suite(member.suite_id), member.signature_priv, content)
        return HubTransferMessage(msg_type=HubTransferMessageType.request, request=signed)

    async def process_request(self, room_id: str, request, peer_domain: str) -> HubTransferResponse:
        kind = HubTransferMessageType.request
        room = self.p.hub_rooms.get(room_id)
        if room is None or (room.moved is not None and not self.overrides.departs(REQUEST_REFUSED_AFTER_CUTOVER)):
            code = HubTransferCode.notHub if room is not None or room_id in self.service.incoming else HubTransferCode.noSuchRoom
            return response(kind, code, f"{self.p.domain} is not the hub of {room_id}")
        if domain_of_uri(bytes(request.content.initiator.uri)) != peer_domain \
                and not self.overrides.departs(REQUEST_FROM_INITIATOR_PROVIDER):  # EXT-HUBXFER-REQUEST-SOURCE
            return response(kind, HubTransferCode.notAllowed, f"{peer_domain} is not the initiator's provider")
        if ((room.transfer is not None and room.transfer.in_window) or room_id in self._preparing) \
                and not self.overrides.departs(REQUEST_ONE_AT_A_TIME):
            return response(kind, HubTransferCode.busy, "a transfer is in its window [EXT-HUBXFER-ONE-AT-A-TIME]")
        code, why = verify_request(room.view, room_id, request, now_ms(), hub=self.p.domain,
                                   dependents=dependent_rooms(room_id, self.p.hub_rooms), overrides=self.overrides)
        if self.overrides.departs(REQUEST_NEEDS_CAPABILITY) and "[EXT-HUBXFER-CAP-REQUIRED]" in why:
            code = HubTransferCode.accepted
        if code != HubTransferCode.accepted:  # EXT-HUBXFER-REQUEST-REFUSED: nothing sent, nothing proposed
            if self.overrides.departs(REFUSED_REQUEST_SENDS_NOTHING):
                await self._prepare(room_id, room, request, secrets.token_bytes(16),
                                    domain_of_uri(bytes(request.content.target.uri)) or "",
                                    now_ms() + self.settings.cutover_timeout_ms)
            return response(kind, code, why)
        target = domain_of_uri(bytes(request.content.target.uri)) or ""
        self._preparing.add(room_id)
        try:
            epoch = room.epoch
            transfer_id = secrets.token_bytes(16)
            timeout_ms = self.settings.cutover_timeout_ms
            requested_not_after = now_ms() + (self.overrides.hook(PREPARE_DECLARED_TIMEOUT, timeout_ms) or timeout_ms)
            acceptance, why = await self._prepare(room_id, room, request, transfer_id, target, requested_not_after)
            if acceptance is None:
                acceptance = self.overrides.hook(BEGIN_AFTER_CONSENT, self.p, room_id, room, request, transfer_id,
                                                 target, requested_not_after)
            if acceptance is None:  # EXT-HUBXFER-DECLINE-CHANGES-NOTHING
                return response(kind, HubTransferCode.declined, why)
            room = self.p.hub_rooms.get(room_id)
            if room is None or room.moved is not None:
                return response(kind, HubTransferCode.notHub, "the room moved meanwhile")
            if room.epoch != epoch:
                code, why = verify_request(room.view, room_id, request, now_ms(), hub=self.p.domain,
                                           overrides=self.overrides)
                if code != HubTransferCode.accepted and not self.overrides.departs(REVERIFY_AFTER_PREPARE):
                    return response(kind, HubTransferCode.wrongEpoch, f"a commit intervened: {why}")
            transfer = OutgoingTransfer(
                transfer_id=transfer_id, target=target, request=request, acceptance=acceptance,
                not_after=acceptance.content.not_after,
            )
            self.begin(room_id, room, transfer)
        finally:
            self._preparing.discard(room_id)
        return response(kind, HubTransferCode.accepted, transfer_id=transfer_id)

    async def _prepare(self, room_id: str, room: HubRoom, request, transfer_id: bytes, target: str,
                       requested_not_after: int):
        """Send the prepare and verify the acceptance (EXT-HUBXFER-CONSENT-FIRST); (acceptance, "") or (None, why)."""
        suite = cipher_suite(room.view.suite.suite_id)
        content = HubTransferPrepareTBS(
            request=request,
            transfer_id=transfer_id,
            cipher_suite=room.view.suite.suite_id,
            old_hub_sender=self.p.identity.external_sender,
            group_info=room.group_info,
            ratchet_tree_option=RatchetTreeOption(
                representation=RatchetTreeRepresentation.full, ratchet_tree=room.view.tree.to_wire()
            ),
            requested_not_after=requested_not_after,
        )
        prepare = sign_hub_transfer_prepare(suite, self.p.identity.signature_priv, content)
        body = HubTransferMessage(msg_type=HubTransferMessageType.prepare, prepare=prepare).encode()
        try:
            reply = await self.p._call(
                self.p.authority(target), "hubTransfer", room_id, body, timeout=self.settings.prepare_timeout_ms / 1000
            )
        except (PeerError, ValueError) as exc:
            return None, f"the target could not be reached: {exc}"
        if reply.status != 200:
            return None, f"the target answered HTTP {reply.status}"
        try:
            answer = HubTransferResponse.decode(reply.body)
        except (DecodeError, EncodeError) as exc:
            return None, f"undecodable answer from the target: {exc}"
        if answer.code != HubTransferCode.accepted or answer.acceptance is None:
            return None, f"the target answered {answer.code.name}: {bytes(answer.error_description).decode('utf-8', 'replace')}"
        acceptance = answer.acceptance
        c = acceptance.content
        expected = (
            bytes(c.room_id.uri) == room_id.encode() and bytes(c.group_id) == room.group_id
            and bytes(c.transfer_id) == transfer_id and c.generation == request.content.generation + 1
            and domain_of_uri(bytes(c.old_hub.uri)) == self.p.domain and self._names_target(c, target)
            and (c.not_after <= requested_not_after or self.overrides.departs(ACCEPTANCE_WITHIN_DEADLINE))
        )
        if not expected:
            return None, "the acceptance does not match the prepare"
        why = None
        if sender_domain(c.new_hub_sender) != target:
            why = f"the acceptance's new_hub_sender names {sender_domain(c.new_hub_sender)}, not the target {target}"
        elif not verify_hub_transfer_acceptance(suite, acceptance, bytes(c.new_hub_sender.signature_key)):
            why = "the acceptance signature does not verify with its new_hub_sender key"
        if why is not None:  # the target broke a rule: evidence for the suite's blocked checks
            self.p.violations.add("EXT-HUBXFER-ACCEPT-SENDER", peer=target, evidence=f"{why} (room {room_id})")
            return None, why
        return acceptance, ""

    def _names_target(self, content, target: str) -> bool:
        """The acceptance's new_hub is the target the prepare went to (section 4.2: the begin's acceptance
        matches "A, B"); EXT-HUBXFER-CONSENT-FIRST."""
        return domain_of_uri(bytes(content.new_hub.uri)) == target or self.overrides.departs(ACCEPTANCE_NAMES_TARGET)

    def begin(self, room_id: str, room: HubRoom, transfer: OutgoingTransfer) -> None:
        """Section 6.2: GCE(external_senders + B) and AppDataUpdate(mimi_hub: begin), one bundle, both required."""
        room.transfer = transfer
        current = current_hub_data(room.view.app_data(), room_id)
        senders = [*room.view.external_senders(), transfer.acceptance.content.new_hub_sender]
        senders = self.overrides.hook(BEGIN_APPENDS_TARGET_SENDER, senders) or senders
        exts = set_extension(
            list(room.view.context.extensions), ExtensionType.external_senders,
            external_senders_extension(senders).extension_data,
        )
        update = begin_hub_data(current, transfer).encode()
        now = self._stamp(room)
        transfer.begin_watermark = self._max_outbox_id()
        plan = room.issue_hub_proposals(
            [gce_proposal(exts), app_data_update_proposal(MIMI_HUB_COMPONENT_ID, update)], now,
            "transfer begin [EXT-HUBXFER-PENDING-REQUIRED]",
        )
        if self.overrides.departs(BEGIN_FANS_OUT_TO_TARGET) and transfer.target not in room.active_providers():
            plan.deliveries.pop(transfer.target, None)
        if self.overrides.departs(BEGIN_PROPOSALS_REQUIRED):
            for entry in room.pending[-2:]:
                entry.required = False
        self.p.commit_room_change(room_id, room, plan)

    # -- the window, the cut-over, the handoff, the abort (6.3, 6.4, 11) ------------------------

    async def tick(self, now: int) -> None:
        """The old hub's timers: abort at not_after, the cut-over once the begin is delivered, the handoff
        (and its retries until one is accepted, EXT-HUBXFER-HANDOFF-RETRY-IDENTICAL), the abort message (only
        for a transfer it aborted)."""
        for room_id, room in list(self.p.hub_rooms.items()):
            transfer = room.transfer
            if transfer is None:
                continue
            if transfer.in_window and now > transfer.not_after and transfer.phase != ABORT_PROPOSED \
                    and not self.overrides.departs(ABORT_AT_NOT_AFTER):
                self.abort(room_id, room, "the cut-over was not committed by not_after")
            elif transfer.phase == BEGIN_COMMITTED and (self.begin_delivered(room_id, transfer)
                                                        or self.overrides.departs(CUTOVER_AFTER_DELIVERY)):
                self.propose_cutover(room_id, room)
            elif transfer.phase == MOVED and not self.service.hold_handoff and time.monotonic() >= transfer.next_handoff_at \
                    and not self.overrides.departs(HANDOFF_SENT):
                await self.send_handoff(room_id, room)
            elif transfer.phase == ABORTED and not transfer.abort_sent:
                transfer.abort_sent = True
                await self.send_abort(room_id, room, transfer, "aborted")

    def _max_outbox_id(self) -> int:
        row = self.p.state.store.conn.execute("SELECT MAX(id) FROM outbox").fetchone()
        return int(row[0] or 0)

    def _room_items(self, room_id: str, states: tuple[str, ...], *, after: int = 0, upto: int | None = None):
        """The room's /notify rows in the outbox (id, destination, body) in those states, in order: what the begin
        watermark waits for (EXT-HUBXFER-CUTOVER-AFTER-DELIVERY) and the handoff's undelivered backlog
        (EXT-HUBXFER-HANDOFF-SENT, EXT-HUBXFER-HANDOFF-CONTENT)."""
        key = json.dumps({"roomId": room_id}, sort_keys=True)
        marks = ",".join("?" for _ in states)
        return self.p.state.store.conn.execute(
            f"SELECT id, destination, body FROM outbox WHERE endpoint = 'notify' AND path_vars = ? "
            f"AND state IN ({marks}) AND id > ? AND id <= ? ORDER BY id",
            (key, *states, after, upto if upto is not None else 2**62),
        ).fetchall()

    def begin_delivered(self, room_id: str, transfer: OutgoingTransfer) -> bool:
        """EXT-HUBXFER-CUTOVER-AFTER-DELIVERY: every /notify queued for the room from the begin proposals
        up to the begin commit answered 201 (items queued later do not matter)."""
        if transfer.begin_epoch is None:
            return False
        if not transfer.begin_upto:  # first look after the begin commit: everything queued so far
            transfer.begin_upto = self._max_outbox_id()
        return not self._room_items(room_id, ("pending", "failed"), after=transfer.begin_watermark,
                                    upto=transfer.begin_upto)

    def propose_cutover(self, room_id: str, room: HubRoom) -> None:
        """Section 6.3: the cut-over AppDataUpdate, required with every other pending proposal."""
        transfer = room.transfer
        current = current_hub_data(room.view.app_data(), room_id)
        if current.state != HubState.transferring:
            return
        transfer.phase = CUTOVER_PROPOSED
        update = cutover_hub_data(current).encode()
        plan = room.issue_hub_proposals(
            [app_data_update_proposal(MIMI_HUB_COMPONENT_ID, update)], self._stamp(room),
            "transfer cut-over [EXT-HUBXFER-CUTOVER-INCLUDES-PENDING]",
        )
        self.p.commit_room_change(room_id, room, plan)

    def abort(self, room_id: str, room: HubRoom, reason: str) -> None:
        """Section 11: the abort transition with the removal of the target's entry (if it was committed);
        before the begin commit, the begin proposals are simply withdrawn."""
        transfer = room.transfer
        log.info("%s: aborting the transfer of %s: %s", self.p.domain, room_id, reason)
        hub_refs = {e.ref for e in room.pending if _is_hub_component_entry(e)}
        gce_refs = {e.ref for e in room.pending if e.proposal_type == ProposalType.group_context_extensions
                    and e.sender_user is None and transfer.phase == BEGUN}
        room.drop_pending(hub_refs | gce_refs)
        current = current_hub_data(room.view.app_data(), room_id)
        if current.state != HubState.transferring:  # the begin was never committed: nothing to undo
            transfer.phase = ABORTED
            self.p.peer_store.save_hub_room(room_id, room)
            return
        target_key = bytes(transfer.acceptance.content.new_hub_sender.signature_key)
        keep = [s for s in room.view.external_senders() if bytes(s.signature_key) != target_key]
        data = abort_hub_data(current)
        data = self.overrides.hook(ABORT_NEXT_GENERATION, data, current) or data
        data = self.overrides.hook(ABORT_NO_PREVIOUS_HUB, data, current) or data
        proposals = [app_data_update_proposal(MIMI_HUB_COMPONENT_ID, data.encode())]
        if len(keep) != len(room.view.external_senders()) and not self.overrides.departs(ABORT_REMOVES_TARGET_SENDER):
            exts = set_extension(
                list(room.view.context.extensions), ExtensionType.external_senders,
                external_senders_extension(keep).extension_data,
            )
            proposals.insert(0, gce_proposal(exts))
        transfer.phase = ABORT_PROPOSED
        plan = room.issue_hub_proposals(proposals, self._stamp(room), "transfer abort [EXT-HUBXFER-ABORT-ON-TIMEOUT]")
        self.p.commit_room_change(room_id, room, plan)

    async def send_abort(self, room_id: str, room: HubRoom, transfer: OutgoingTransfer, reason: str) -> None:
        """EXT-HUBXFER-ABORT-NOTIFIES-TARGET (best effort, once)."""
        if self.overrides.departs(ABORT_NOTIFIES_TARGET):
            return
        content = HubTransferAbortTBS(room_id=IdentifierUri(uri=room_id.encode()), transfer_id=transfer.transfer_id,
                                      reason=reason.encode())
        abort = sign_hub_transfer_abort(cipher_suite(room.view.suite.suite_id), self.p.identity.signature_priv, content)
        body = HubTransferMessage(msg_type=HubTransferMessageType.abort, abort=abort).encode()
        try:
            await self.p._call(self.p.authority(transfer.target), "hubTransfer", room_id, body, timeout=5.0)
        except (PeerError, ValueError) as exc:
            log.info("%s: abort of %s not delivered to %s: %s", self.p.domain, room_id, transfer.target, exc)
        self.p.peer_store.save_hub_room(room_id, room)

    def snapshot_undelivered(self, room_id: str) -> dict[str, list[FanoutMessage]]:
        """Section 6.4: every /notify for the room not answered 201 (in flight included) leaves the outbox
        and goes, per destination in order, into the handoff (EXT-HUBXFER-OLDHUB-STOPS-FANOUT)."""
        rows = self._room_items(room_id, ("pending",))
        out: dict[str, list[FanoutMessage]] = {}
        with self.p.state.store.transaction() as conn:
            for item_id, destination, body in rows:
                out.setdefault(destination, []).extend(FanoutMessage.decode_sequence(bytes(body), scope=MLS10))
                if self.overrides.departs(HANDOFF_STOPS_FANOUT):
                    continue
                conn.execute(  # never sent again by this hub: the new hub delivers it
                    "UPDATE outbox SET state = 'failed', last_error = 'handed over to the new hub', finished_at = ? "
                    "WHERE id = ?", (time.time(), item_id))
        return out

    def build_handoff(self, room_id: str, room: HubRoom) -> bytes:
        transfer = room.transfer
        undelivered = self.snapshot_undelivered(room_id)
        undelivered = self.overrides.hook(HANDOFF_CARRIES_UNDELIVERED, undelivered) or undelivered
        content = HubHandoffTBS(
            room_id=IdentifierUri(uri=room_id.encode()),
            group_id=room.group_id,
            transfer_id=transfer.transfer_id,
            generation=transfer.cutover_generation,
            cutover_epoch=transfer.cutover_epoch,
            old_hub=provider_uri(self.p.domain),
            new_hub=provider_uri(transfer.target),
            group_info=room.group_info,
            ratchet_tree_option=RatchetTreeOption(
                representation=RatchetTreeRepresentation.full, ratchet_tree=room.view.tree.to_wire()
            ),
            pending_proposals=[
                PendingProposal(proposal=decode_message(e.message), hub_accepted_time=e.accepted) for e in room.pending
            ],
            routes=[
                KeyPackageRoute(kp_ref=ref, provider=provider_uri(domain), not_after=0)
                for ref, domain in sorted(room.kp_providers.items()) if not self.overrides.departs(HANDOFF_CARRIES_ROUTES)
            ],
            undelivered=[
                UndeliveredFanout(destination=provider_uri(dest), messages=messages)
                for dest, messages in sorted(undelivered.items())
            ],
            last_accepted_timestamp=room.last_accepted,
            handoff_extensions=AppDataDictionary(component_data=[]),
        )
        handoff = sign_hub_handoff(cipher_suite(room.view.suite.suite_id), self.p.identity.signature_priv, content)
        return HubTransferMessage(msg_type=HubTransferMessageType.handoff, handoff=handoff).encode()

    async def send_handoff(self, room_id: str, room: HubRoom) -> None:
        """EXT-HUBXFER-HANDOFF-SENT; every retry byte-identical (EXT-HUBXFER-HANDOFF-RETRY-IDENTICAL)."""
        if self.overrides.departs(HANDOFF_SENT):  # tick() skips the call already; this names the step here
            return
        transfer = room.transfer
        if transfer.handoff is None or self.overrides.departs(HANDOFF_RETRY_IDENTICAL):
            transfer.handoff = self.build_handoff(room_id, room)
            self.p.peer_store.save_hub_room(room_id, room)
        transfer.handoff_attempts += 1
        self.handoffs_sent.append(transfer.handoff)
        status = ""
        try:
            reply = await self.p._call(self.p.authority(transfer.target), "hubTransfer", room_id, transfer.handoff,
                                       timeout=10.0)
            if reply.status == 200:
                answer = HubTransferResponse.decode(reply.body)
                status = answer.code.name
                if answer.code == HubTransferCode.accepted:
                    transfer.phase = HANDED_OFF
            else:
                status = f"HTTP {reply.status}"
        except (PeerError, ValueError, DecodeError, EncodeError) as exc:
            status = f"{type(exc).__name__}: {exc}"
        transfer.handoff_status = status
        if transfer.phase != HANDED_OFF:
            self.overrides.hook(NO_ROLLBACK, self.service, room_id, room)
            delay = min(HANDOFF_MAX_DELAY, self.settings.handoff_retry_ms / 1000 * 2 ** (transfer.handoff_attempts - 1))
            transfer.next_handoff_at = time.monotonic() + delay
        self.p.peer_store.save_hub_room(room_id, room)

    # -- answers to room requests after the cut-over (8.1) -------------------------------------

    def gate(self, room_id: str, room: HubRoom | None) -> MimiResponse | None:
        """EXT-HUBXFER-OLDHUB-REDIRECT: after the cut-over, 421 + the HubRedirect naming the new hub; None
        for a room this provider did not move away."""
        if room is None or room.moved is None or self.overrides.departs(OLDHUB_REDIRECTS):
            return None
        if (shaped := self.overrides.hook(REDIRECT_NAMES_CUTOVER_EPOCH, room.moved)) is not None:
            return redirect_response(shaped)
        if self.service.inflate_redirect_generation:  # the suite's knob
            return redirect_response(
                room.moved.replace(generation=room.moved.generation + self.service.inflate_redirect_generation))
        return redirect_response(room.moved)


def _is_hub_component_entry(entry: PendingEntry) -> bool:
    if entry.proposal_type != ProposalType.app_data_update:
        return False
    body = decode_message(entry.message).public_message.content.proposal.app_data_update
    return body.component_id == MIMI_HUB_COMPONENT_ID
