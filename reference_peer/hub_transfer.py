"""The hub-transfer extension (docs/extensions/hub-transfer.md) on a :class:`ReferenceProvider`.

One :class:`HubTransferService` per provider that has the extension on (``hub_transfer:`` in
peer.yaml). It plays every role:

* **old hub**: verifies a request (5.1), sends the prepare (5.2), issues the begin proposals (6.2),
  the cut-over proposal once the begin commit is delivered (6.3), snapshots the undelivered fan-out
  and sends the handoff, byte-identical on every retry (6.4), aborts at ``not_after`` (11);
* **target / new hub**: verifies a prepare and accepts it, tracks the public group state from the
  handshake fan-out, verifies the handoff (12), takes the room over, delivers the backlog first and
  proposes the old hub's removal from external_senders (6.5);
* **follower**: (in :mod:`reference_peer.peer`) hub-of-record from the component, redirects, 503.

Reference-peer choice (section 17): the initiator's client commits the transfer proposals as soon
as its provider receives them (:meth:`HubTransferService.after_intake`).

Every rule is a small named method so that a deliberate fault can later switch it off.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import Any

from .faults import active
from .faults import transfer_cutover as cutover_faults
from .faults import transfer_follower as follower_faults
from .faults import transfer_new_hub as newhub_faults
from .faults import transfer_old_hub as old_hub_faults
from .mls import MLSError, app_data_update_proposal, gce_proposal
from .mls.crypto import cipher_suite
from .mls.group import decode_message, external_senders_extension, set_extension
from .mls.hub import HubView
from .mls.tree import RatchetTree
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
    IncomingTransfer,
    OutgoingTransfer,
    abort_hub_data,
    begin_hub_data,
    current_hub_data,
    cutover_hub_data,
    dependent_rooms,
    hub_domain,
    hub_of_record,
    provider_uri,
    sender_domain,
    verify_request,
)
from .room.transfer_settings import HubTransferSettings
from .server.client import PeerError
from .server.transport import MimiHTTPError, MimiRequest, MimiResponse
from .wire.codec import DecodeError, EncodeError
from .wire.hub_transfer import (
    MIMI_HUB_COMPONENT_ID,
    HubHandoffTBS,
    HubRedirect,
    HubState,
    HubTransferAbortTBS,
    HubTransferAcceptTBS,
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
    sign_hub_transfer_acceptance,
    sign_hub_transfer_prepare,
    sign_hub_transfer_request,
    verify_hub_handoff,
    verify_hub_transfer_abort,
    verify_hub_transfer_acceptance,
    verify_hub_transfer_prepare,
)
from .wire.identity import IdentifierUri
from .wire.mimi import FanoutMessage, PendingProposal, Protocol, UpdateResponseCode
from .wire.mls import AppDataDictionary, ContentType, ExtensionType, MLSMessage, ProposalType, WireFormat
from .wire.ratchet_tree_options import RatchetTreeOption, RatchetTreeRepresentation

log = logging.getLogger(__name__)

MLS10 = {"protocol": Protocol.mls10}
REQUEST_LIFETIME_MS = 60_000
AUTOCOMMIT_ATTEMPTS = 6
TICK_SECONDS = 0.05
HANDOFF_MAX_DELAY = 30.0


def now_ms() -> int:
    return int(time.time() * 1000)


def response(msg_type: HubTransferMessageType, code: HubTransferCode, description: str = "", **fields: Any) -> HubTransferResponse:
    return HubTransferResponse(msg_type=msg_type, code=code, error_description=description.encode(), **fields)


class HubTransferService:
    """The extension's state and rules for one provider (see the module docstring)."""

    def __init__(self, provider, settings: HubTransferSettings) -> None:
        self.p = provider
        self.settings = settings
        self.incoming: dict[str, IncomingTransfer] = {}  # room ID -> the transfer this provider accepted as target
        self.seen_transfer_ids: set[bytes] = set()  # EXT-HUBXFER-PREPARE-REPLAY
        # Which transitions the initiator's client commits by itself (tests switch one off to hold a window open).
        self.autocommit: set[str] = {"begin", "cutover", "abort"}
        # Tests and the suite's own peers hold the handoff back to observe the new hub before it (section 6.4).
        self.hold_handoff = False
        # The suite's knob: room ID -> how many of its next handoffs to answer 503, unprocessed (a lost answer).
        self.refuse_handoffs: dict[str, int] = {}
        # The suite's peers withhold their /notify to these domains (kept pending, in order) while set.
        self.withhold_notify_to: set[str] = set()
        # The suite's knob: the HubRedirects this peer answers as old hub claim a generation this much above
        # the committed one (a false hint, to see a newcomer check the GroupInfo; EXT-HUBXFER-NEWCOMER-DISCOVERY).
        self.inflate_redirect_generation = 0
        # The suite's knob: users (URIs) whose clients, provisioned while listed, omit mimi_hub from app_components.
        self.lacking_hub_component: set[str] = set()
        # Follower side: (room ID, cut-over generation) -> the cut-over epoch E_c as first processed here.
        self.cutover_epochs: dict[tuple[str, int], int] = {}
        self.handoffs_sent: list[bytes] = []  # every handoff attempt's bytes, for introspection and tests
        self.handoffs_received: list[bytes] = []
        self._tasks: set[asyncio.Task] = set()
        self._committing: set[tuple[str, str]] = set()
        self._preparing: set[str] = set()
        self._driver: asyncio.Task | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._driver = asyncio.create_task(self._drive(), name=f"hub-transfer-{self.p.domain}")

    async def stop(self) -> None:
        tasks = [t for t in [self._driver, *self._tasks] if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        self._driver = None

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the hubTransfer endpoint -------------------------------------------------------------

    async def handle(self, request: MimiRequest) -> MimiResponse:
        """POST /hubTransfer/{roomId}: undecodable 400, anything decodable 200 with a HubTransferResponse."""
        try:
            message = HubTransferMessage.decode(request.body)
        except (DecodeError, EncodeError) as exc:
            raise MimiHTTPError(400, "undecodable-body", f"hubTransfer: {exc}") from None
        kind = message.msg_type
        if kind == HubTransferMessageType.handoff and self.refuse_handoffs.get(request.value, 0) > 0:  # the suite's knob
            self.refuse_handoffs[request.value] -= 1
            return MimiResponse(b"", status=503, headers={"Retry-After": "1"})
        try:
            if kind == HubTransferMessageType.request:
                answer = await self.process_request(request.value, message.request, request.peer_domain)
            elif kind == HubTransferMessageType.prepare:
                answer = self.process_prepare(request.value, message.prepare, request.peer_domain)
            elif kind == HubTransferMessageType.handoff:
                answer = self.process_handoff(request.value, message.handoff, request.peer_domain, request.body)
            elif kind == HubTransferMessageType.abort:
                answer = self.process_abort(request.value, message.abort, request.peer_domain)
            else:
                answer = response(kind, HubTransferCode.notAllowed, "reserved message type")
        except Exception as exc:  # a bug must not become a 500 for a decodable message
            log.exception("%s: hubTransfer %s for %s failed", self.p.domain, kind, request.value)
            answer = response(kind, HubTransferCode.notAllowed, f"internal error: {type(exc).__name__}")
        return MimiResponse(answer.encode())

    # -- old hub: request, prepare, begin (5.1, 5.2, 6.2) --------------------------------------

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
        if room is None or room.moved is not None:
            code = HubTransferCode.notHub if room is not None or room_id in self.incoming else HubTransferCode.noSuchRoom
            return response(kind, code, f"{self.p.domain} is not the hub of {room_id}")
        if domain_of_uri(bytes(request.content.initiator.uri)) != peer_domain \
                and not active(old_hub_faults.REQUEST_FROM_ANY_PROVIDER):  # EXT-HUBXFER-REQUEST-SOURCE
            return response(kind, HubTransferCode.notAllowed, f"{peer_domain} is not the initiator's provider")
        if ((room.transfer is not None and room.transfer.in_window) or room_id in self._preparing) \
                and not active(old_hub_faults.SECOND_TRANSFER_WHILE_BUSY):
            return response(kind, HubTransferCode.busy, "a transfer is in its window [EXT-HUBXFER-ONE-AT-A-TIME]")
        code, why = verify_request(room.view, room_id, request, now_ms(), hub=self.p.domain,
                                   dependents=dependent_rooms(room_id, self.p.hub_rooms))
        if active(old_hub_faults.TRANSFER_WITHOUT_CAPABILITY) and "[EXT-HUBXFER-CAP-REQUIRED]" in why:
            code = HubTransferCode.accepted
        if code != HubTransferCode.accepted:  # EXT-HUBXFER-REQUEST-REFUSED: nothing sent, nothing proposed
            if active(old_hub_faults.REFUSED_REQUEST_STILL_PREPARES):
                await self._prepare(room_id, room, request, secrets.token_bytes(16),
                                    domain_of_uri(bytes(request.content.target.uri)) or "",
                                    now_ms() + self.settings.cutover_timeout_ms)
            return response(kind, code, why)
        target = domain_of_uri(bytes(request.content.target.uri)) or ""
        self._preparing.add(room_id)
        try:
            epoch = room.epoch
            transfer_id = secrets.token_bytes(16)
            requested_not_after = now_ms() + self.settings.cutover_timeout_ms * (
                3 if active(old_hub_faults.CUTOVER_TIMEOUT_UNDECLARED) else 1)
            acceptance, why = await self._prepare(room_id, room, request, transfer_id, target, requested_not_after)
            if acceptance is None and active(old_hub_faults.BEGIN_DESPITE_DECLINE):
                acceptance = old_hub_faults.made_up_acceptance(self.p, room_id, room, request, transfer_id, target,
                                                               requested_not_after)
            if acceptance is None:  # EXT-HUBXFER-DECLINE-CHANGES-NOTHING
                return response(kind, HubTransferCode.declined, why)
            room = self.p.hub_rooms.get(room_id)
            if room is None or room.moved is not None:
                return response(kind, HubTransferCode.notHub, "the room moved meanwhile")
            if room.epoch != epoch:
                code, why = verify_request(room.view, room_id, request, now_ms(), hub=self.p.domain)
                if code != HubTransferCode.accepted:
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
            and domain_of_uri(bytes(c.old_hub.uri)) == self.p.domain and domain_of_uri(bytes(c.new_hub.uri)) == target
            and c.not_after <= requested_not_after
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

    def begin(self, room_id: str, room: HubRoom, transfer: OutgoingTransfer) -> None:
        """Section 6.2: GCE(external_senders + B) and AppDataUpdate(mimi_hub: begin), one bundle, both required."""
        room.transfer = transfer
        current = current_hub_data(room.view.app_data(), room_id)
        senders = [*room.view.external_senders(), transfer.acceptance.content.new_hub_sender]
        if active(old_hub_faults.BEGIN_SENDERS_PREPENDED):
            senders = [senders[-1], *senders[:-1]]
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
        if active(old_hub_faults.TARGET_MISSES_BEGIN_BUNDLE) and transfer.target not in room.active_providers():
            plan.deliveries.pop(transfer.target, None)
        if active(old_hub_faults.BEGIN_PROPOSALS_OPTIONAL):
            for entry in room.pending[-2:]:
                entry.required = False
        self.p.commit_room_change(room_id, room, plan)

    # -- old hub: the window, the cut-over, the handoff, the abort ------------------------------

    async def _drive(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep driving: one room's bug must not stop the others
                log.exception("%s: hub-transfer driver", self.p.domain)
            await asyncio.sleep(TICK_SECONDS)

    async def tick(self) -> None:
        now = now_ms()
        for room_id, room in list(self.p.hub_rooms.items()):
            transfer = room.transfer
            if transfer is None:
                continue
            if transfer.in_window and now > transfer.not_after and transfer.phase != ABORT_PROPOSED:
                self.abort(room_id, room, "the cut-over was not committed by not_after")
            elif transfer.phase == BEGIN_COMMITTED and (self.begin_delivered(room_id, transfer)
                                                        or active(cutover_faults.CUTOVER_BEFORE_DELIVERY)):
                self.propose_cutover(room_id, room)
            elif transfer.phase == MOVED and not self.hold_handoff and time.monotonic() >= transfer.next_handoff_at \
                    and not active(cutover_faults.NO_HANDOFF):
                await self.send_handoff(room_id, room)
            elif transfer.phase == ABORTED and not transfer.abort_sent:
                transfer.abort_sent = True
                await self.send_abort(room_id, room, transfer, "aborted")
        for room_id, incoming in list(self.incoming.items()):
            if incoming.state == "accepted" and not incoming.cutover_seen and now > incoming.not_after \
                    and not active(newhub_faults.TARGET_NEVER_EXPIRES):
                incoming.state = "discarded"  # EXT-HUBXFER-TARGET-EXPIRES
                log.info("%s: transfer of %s expired without a cut-over", self.p.domain, room_id)

    def _max_outbox_id(self) -> int:
        row = self.p.state.store.conn.execute("SELECT MAX(id) FROM outbox").fetchone()
        return int(row[0] or 0)

    def _room_items(self, room_id: str, states: tuple[str, ...], *, after: int = 0, upto: int | None = None):
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
        if active(old_hub_faults.ABORT_KEEPS_GENERATION):
            data = data.replace(generation=current.generation)
        if active(old_hub_faults.ABORT_NAMES_PREVIOUS_HUB):
            data = data.replace(previous_hub=current.target)
        proposals = [app_data_update_proposal(MIMI_HUB_COMPONENT_ID, data.encode())]
        if len(keep) != len(room.view.external_senders()) and not active(old_hub_faults.ABORT_KEEPS_TARGET_SENDER):
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
        if active(old_hub_faults.ABORT_NOT_SENT_TO_TARGET):
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
                if active(cutover_faults.OLDHUB_KEEPS_FANOUT):
                    continue
                conn.execute(  # never sent again by this hub: the new hub delivers it
                    "UPDATE outbox SET state = 'failed', last_error = 'handed over to the new hub', finished_at = ? "
                    "WHERE id = ?", (time.time(), item_id))
        return out

    def build_handoff(self, room_id: str, room: HubRoom) -> bytes:
        transfer = room.transfer
        undelivered = self.snapshot_undelivered(room_id)
        if active(cutover_faults.HANDOFF_DROPS_MESSAGES):
            undelivered = cutover_faults.without_application_messages(undelivered)
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
                for ref, domain in sorted(room.kp_providers.items()) if not active(cutover_faults.HANDOFF_OMITS_ROUTES)
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
        transfer = room.transfer
        if transfer.handoff is None or active(cutover_faults.HANDOFF_REBUILT_ON_RETRY):
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
            cutover_faults.roll_back(self, room_id, room)  # a deliberate fault, off unless configured
            delay = min(HANDOFF_MAX_DELAY, self.settings.handoff_retry_ms / 1000 * 2 ** (transfer.handoff_attempts - 1))
            transfer.next_handoff_at = time.monotonic() + delay
        self.p.peer_store.save_hub_room(room_id, room)

    # -- target: prepare, tracking, handoff, abort ---------------------------------------------

    def process_prepare(self, room_id: str, prepare, peer_domain: str) -> HubTransferResponse:
        kind = HubTransferMessageType.prepare
        c = prepare.content
        if bytes(c.request.content.room_id.uri) != room_id.encode():
            return response(kind, HubTransferCode.notAllowed, "the request names another room")
        if bytes(c.transfer_id) in self.seen_transfer_ids and not active(newhub_faults.TARGET_FORGETS_TRANSFER_IDS):
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
        if hub != peer_domain and not active(newhub_faults.TARGET_PREPARE_FROM_ANY_PEER):  # EXT-HUBXFER-SOURCE-BINDING
            return response(kind, HubTransferCode.notHub, f"{peer_domain} is not the room's hub ({hub})")
        listed = any(
            bytes(s.signature_key) == bytes(c.old_hub_sender.signature_key) and sender_domain(s) == peer_domain
            for s in view.external_senders()
        )
        if not listed:
            return response(kind, HubTransferCode.notAllowed, "old_hub_sender is not the hub's external_senders entry")
        if not verify_hub_transfer_prepare(suite, prepare, bytes(c.old_hub_sender.signature_key)) \
                and not active(newhub_faults.TARGET_SKIPS_PREPARE_SIGNATURE):
            return response(kind, HubTransferCode.badSignature, "the prepare signature does not verify")
        code, why = verify_request(view, room_id, c.request, now_ms(), hub=peer_domain)
        if code != HubTransferCode.accepted and not active(newhub_faults.TARGET_SKIPS_REQUEST_CHECK):  # PREPARE-VERIFY
            return response(kind, code, why)
        if domain_of_uri(bytes(c.request.content.target.uri)) != self.p.domain:
            return response(kind, HubTransferCode.notAllowed, "the request names another target")
        self.seen_transfer_ids.add(bytes(c.transfer_id))
        if not self.accepts(peer_domain, room_id):  # EXT-HUBXFER-TARGET-MAY-DECLINE
            return response(kind, HubTransferCode.declined, "this provider does not host rooms of that hub")
        not_after = min(c.requested_not_after, now_ms() + self.settings.cutover_timeout_ms)
        content = HubTransferAcceptTBS(
            room_id=IdentifierUri(uri=room_id.encode()),
            group_id=bytes(view.group_id),
            transfer_id=bytes(c.transfer_id),
            generation=c.request.content.generation + 1,
            old_hub=provider_uri(peer_domain),
            new_hub=provider_uri(self.p.domain),
            not_after=not_after,
            new_hub_sender=self.p.identity.external_sender,  # EXT-HUBXFER-ACCEPT-SENDER, also its GroupInfoResponse key
        )
        if active(newhub_faults.ACCEPTANCE_NAMES_OLD_HUB):
            content = content.replace(new_hub_sender=newhub_faults.sender_naming(content.new_hub_sender, peer_domain))
        acceptance = sign_hub_transfer_acceptance(suite, self.p.identity.signature_priv, content)
        self.incoming[room_id] = IncomingTransfer(
            room_id=room_id, transfer_id=bytes(c.transfer_id), old_hub=peer_domain, group_id=bytes(view.group_id),
            old_hub_sender=c.old_hub_sender, acceptance=acceptance, not_after=not_after, view=view,
        )
        return response(kind, HubTransferCode.accepted, acceptance=acceptance)

    def accepts(self, old_hub: str, room_id: str) -> bool:
        """The target's policy (manifest ``accepts_from``); a room it already hosts is never accepted."""
        if room_id in self.p.hub_rooms and self.p.hub_rooms[room_id].moved is None:
            return False
        allowed = self.settings.accepts_from
        return allowed is None or old_hub in allowed

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

    def process_handoff(self, room_id: str, handoff, peer_domain: str, raw: bytes) -> HubTransferResponse:
        kind = HubTransferMessageType.handoff
        self.handoffs_received.append(raw)
        c = handoff.content
        incoming = self.incoming.get(room_id)
        if incoming is not None and incoming.state == "accepted" and not incoming.cutover_seen \
                and now_ms() > incoming.not_after and not active(newhub_faults.TARGET_NEVER_EXPIRES):
            incoming.state = "discarded"
        if incoming is None or bytes(c.transfer_id) != incoming.transfer_id or incoming.state == "discarded" \
                or bytes(c.room_id.uri) != room_id.encode():
            return response(kind, HubTransferCode.unknownTransfer, "no accepted transfer with this transfer_id")
        if peer_domain != incoming.old_hub and not active(newhub_faults.NEWHUB_HANDOFF_FROM_ANY_PEER):
            return response(kind, HubTransferCode.notHub, f"{peer_domain} is not the previous hub")  # SOURCE-BINDING
        if incoming.state == "handed-over" and not active(newhub_faults.NEWHUB_RETAKES_REPLAYED_HANDOFF):
            if raw == incoming.handoff:
                return response(kind, HubTransferCode.accepted)
            return response(kind, HubTransferCode.replayed, "this transfer was handed over already")
        suite = cipher_suite(c.group_info.group_context.cipher_suite)
        old_key = bytes(incoming.old_hub_sender.signature_key)
        if not any(bytes(s.signature_key) == old_key for s in _senders_of(c.group_info)) \
                or not (verify_hub_handoff(suite, handoff, old_key) or active(newhub_faults.NEWHUB_SKIPS_HANDOFF_SIGNATURE)):
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
            or (data.generation != c.generation and not active(newhub_faults.NEWHUB_SKIPS_CUTOVER_MATCH))
        ):
            return response(kind, HubTransferCode.staleGeneration, "no committed cut-over to this hub")
        tracked = incoming.view
        if tracked is not None and tracked.epoch == view.epoch and tracked.context.encode() != view.context.encode():
            return response(kind, HubTransferCode.wrongEpoch, "the GroupInfo differs from the tracked state")
        self.take_over(room_id, view, handoff, incoming)
        incoming.state, incoming.handoff = "handed-over", raw
        return response(kind, HubTransferCode.accepted)

    def take_over(self, room_id: str, view: HubView, handoff, incoming: IncomingTransfer) -> None:
        """Section 6.4-6.5: become the hub, backlog first, then the old hub's removal from external_senders."""
        c = handoff.content
        room = HubRoom(room_id, self.p.identity, view, group_info=c.group_info)
        if active(newhub_faults.NEWHUB_ALTERS_ROLES) or active(newhub_faults.NEWHUB_REINITS_GROUP):
            room.group_info = newhub_faults.served_group_info(c.group_info)
        for pending in c.pending_proposals:
            data = pending.proposal.encode()
            received = room.view.process(data)
            room.pending.append(PendingEntry(data, received.proposal_ref, pending.hub_accepted_time, None,
                                             int(received.proposal.proposal_type), required=True,
                                             why_required="handed over"))
        for route in c.routes:  # EXT-HUBXFER-NEWHUB-ROUTES
            domain = domain_of_uri(bytes(route.provider.uri))
            if domain is not None:
                misrouted = active(newhub_faults.NEWHUB_MISROUTES_WELCOMES)
                room.record_key_package(bytes(route.kp_ref), incoming.old_hub if misrouted else domain)
        room.min_timestamp = room.last_accepted = c.last_accepted_timestamp  # EXT-HUBXFER-TIMESTAMPS-MONOTONIC
        old_key = bytes(incoming.old_hub_sender.signature_key)
        keep = [s for s in room.view.external_senders() if bytes(s.signature_key) != old_key]
        with self.p.state.store.transaction():
            self.p.host_room(room_id, room)
            for entry in c.undelivered:  # EXT-HUBXFER-INFLIGHT-ORDER, EXT-HUBXFER-HANDOFF-BYTES-KEPT
                destination = domain_of_uri(bytes(entry.destination.uri))
                if destination is None or not entry.messages:
                    continue
                messages = newhub_faults.handed_over(list(entry.messages), now_ms())  # unchanged unless a fault
                if self.p.is_local_domain(destination):
                    self.p.intake(room_id, messages)
                else:
                    self.p.state.queue_notify(destination, room_id, b"".join(m.encode() for m in messages))
            if len(keep) != len(room.view.external_senders()) \
                    and not active(newhub_faults.NEWHUB_KEEPS_OLD_SENDER):  # EXT-HUBXFER-OLD-SENDER-REMOVED
                exts = set_extension(
                    list(room.view.context.extensions), ExtensionType.external_senders,
                    external_senders_extension(keep).extension_data,
                )
                plan = room.issue_hub_proposals([gce_proposal(exts)], self._stamp(room),
                                                "the old hub leaves external_senders [EXT-HUBXFER-OLD-SENDER-REMOVED]")
                self.p.commit_room_change(room_id, room, plan)
        log.info("%s: took over %s from %s", self.p.domain, room_id, incoming.old_hub)

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
        if not active(newhub_faults.TARGET_IGNORES_ABORT):
            incoming.state = "discarded"  # EXT-HUBXFER-TARGET-EXPIRES
        return response(kind, HubTransferCode.accepted)

    # -- answers of the old hub and of the target to room requests (8.1, 8.3, 6.4) -------------

    def room_gate(self, room_id: str) -> MimiResponse | None:
        """421 + HubRedirect (old hub after the cut-over, target during the window), 503 + Retry-After
        (target after the cut-over, before the handoff), or None: serve the request."""
        room = self.p.hub_rooms.get(room_id)
        if room is not None and room.moved is not None and not active(cutover_faults.OLDHUB_SERVES_AFTER_CUTOVER):
            # EXT-HUBXFER-OLDHUB-REDIRECT
            if active(cutover_faults.REDIRECT_NAMES_BEGIN_EPOCH):
                return redirect_response(room.moved.replace(epoch=room.moved.epoch - 1))
            if self.inflate_redirect_generation:
                return redirect_response(
                    room.moved.replace(generation=room.moved.generation + self.inflate_redirect_generation))
            return redirect_response(room.moved)
        incoming = self.incoming.get(room_id)
        if incoming is None or incoming.state != "accepted" or (room is not None and room.moved is None):
            return None
        if incoming.cutover_seen and not active(newhub_faults.NEWHUB_REDIRECTS_BEFORE_HANDOFF):  # NEWHUB-503
            return MimiResponse(b"", status=503, headers={"Retry-After": str(self.settings.retry_503_seconds)})
        view = incoming.view
        data = hub_of_record(view.app_data(), room_id) if view is not None else None
        if active(newhub_faults.TARGET_SERVES_DURING_WINDOW) and not incoming.cutover_seen:
            return None
        redirect = HubRedirect(  # EXT-HUBXFER-TARGET-REDIRECT
            room_id=IdentifierUri(uri=room_id.encode()), hub=provider_uri(incoming.old_hub),
            generation=data.generation if data is not None else 0, epoch=view.epoch if view is not None else 0,
        )
        return redirect_response(redirect)

    # -- the initiator's client commits (reference-peer choice, section 17) ---------------------

    def after_intake(self, room_id: str) -> None:
        """After fan-out reached local clients: if a cached mimi_hub proposal awaits and a local client of
        the transfer's initiator is a member, that client commits it (asynchronously)."""
        self.note_cutover_epoch(room_id)
        follower_faults.after_intake(self, room_id)
        for (room, client_uri), member in list(self.p.members.items()):
            if room != room_id or self.p.active_member(room, client_uri) is None:
                continue
            transition, initiator = _pending_transition(member.group, room_id)
            if transition is None or transition not in self.autocommit or initiator != member.user_uri.encode():
                continue
            key = (room_id, member.user_uri)
            if key in self._committing:
                return
            self._committing.add(key)
            self._spawn(self._commit_cached(room_id, client_uri, key))
            return

    async def _commit_cached(self, room_id: str, client_uri: str, key: tuple[str, str]) -> None:
        try:
            for _ in range(AUTOCOMMIT_ATTEMPTS):
                member = self.p.active_member(room_id, client_uri)
                if member is None or _pending_transition(member.group, room_id)[0] is None:
                    return
                refs = _commit_refs(member.group)
                try:
                    outgoing = member.commit(by_reference=refs, include_cached=False)
                except MLSError as exc:
                    log.warning("%s: %s cannot commit the transfer proposals: %s", self.p.domain, client_uri, exc)
                    return
                call = await self.p.send_update(room_id, outgoing.request)
                accepted = call.update is not None and call.update.responseCode == UpdateResponseCode.success
                if member._outgoing is not None:  # noqa: SLF001 - unless the echoed commit merged it already
                    if accepted:
                        member.commit_accepted()
                    else:
                        member.commit_refused()
                self.p.save_member(room_id, client_uri, member)
                if accepted:
                    return
                log.info("%s: transfer commit for %s refused: %s", self.p.domain, room_id,
                         call.update.errorDescription if call.update is not None else call.error)
                await asyncio.sleep(0.1)
        finally:
            self._committing.discard(key)
        self.after_intake(room_id)

    # -- follower: which epochs the previous hub may still deliver (section 7) -------------------

    def note_cutover_epoch(self, room_id: str) -> None:
        """The epoch in which this follower's clients first saw a cut-over component (E_c)."""
        data = self.p.room_hub_data(room_id)
        if data is not None and data.state == HubState.stable and data.previous_hub is not None:
            epochs = [m.group.epoch for (r, _), m in self.p.members.items()
                      if r == room_id and m.group is not None and not m.removed]
            if epochs:
                self.cutover_epochs.setdefault((room_id, data.generation), max(epochs))

    def previous_hub_may_notify(self, room_id: str, data, body: bytes) -> bool:
        """EXT-HUBXFER-FOLLOWER-STALE-NOTIFY: after the cut-over the previous hub may deliver only
        FanoutMessages of epochs up to and including E_c (its backlog until the handoff)."""
        cutover = self.cutover_epochs.get((room_id, data.generation))
        if cutover is None or active(follower_faults.ACCEPT_STALE_NOTIFY):
            return True
        try:
            messages = FanoutMessage.decode_sequence(body, scope=MLS10)
        except (DecodeError, EncodeError):
            return True  # the body is refused as undecodable afterwards
        return all(_fanout_epoch(m) is None or _fanout_epoch(m) <= cutover for m in messages)

    # -- helpers ------------------------------------------------------------------------------

    def advertise_components(self, client) -> None:
        """The suite's knob ``lacking_hub_component``: a client of a listed user, provisioned now, lists no
        mimi_hub in its LeafNodes' app_components (to see a hub refuse EXT-HUBXFER-ALL-MEMBERS-SUPPORT)."""
        if client.user_uri in self.lacking_hub_component:
            client.app_components = tuple(c for c in client.app_components if c != MIMI_HUB_COMPONENT_ID)

    def _stamp(self, room: HubRoom) -> int:
        now = max(now_ms(), room.min_timestamp)
        room.last_accepted = max(room.last_accepted, now)
        return now

    def introspect(self) -> dict[str, Any]:
        """Transfer state for the suite's own checks (introspection, never the contract)."""
        out: dict[str, Any] = {"outgoing": {}, "incoming": {}}
        for room_id, room in self.p.hub_rooms.items():
            t = room.transfer
            if t is not None:
                out["outgoing"][room_id] = {
                    "transferId": t.transfer_id.hex(), "target": t.target, "phase": t.phase,
                    "beginEpoch": t.begin_epoch, "cutoverEpoch": t.cutover_epoch,
                    "handoffAttempts": t.handoff_attempts, "handoffStatus": t.handoff_status,
                    "handoff": t.handoff.hex() if t.handoff else None,
                }
        for room_id, incoming in self.incoming.items():
            out["incoming"][room_id] = {
                "transferId": incoming.transfer_id.hex(), "oldHub": incoming.old_hub, "state": incoming.state,
                "cutoverSeen": incoming.cutover_seen, "lost": incoming.lost,
            }
        out["handoffsSent"] = [h.hex() for h in self.handoffs_sent]
        out["handoffsReceived"] = [h.hex() for h in self.handoffs_received]
        return out


def redirect_response(redirect: HubRedirect) -> MimiResponse:
    from .wire.hub_transfer import HUB_REDIRECT_MEDIA_TYPE

    return MimiResponse(redirect.encode(), status=421, content_type=HUB_REDIRECT_MEDIA_TYPE)


def _senders_of(group_info) -> list:
    from .mls.group import _decode_ext, _external_senders_codec, get_extension

    data = get_extension(list(group_info.group_context.extensions), ExtensionType.external_senders)
    if data is None:
        return []
    return list(_decode_ext(_external_senders_codec(), data, "external_senders"))


def _fanout_epoch(message: FanoutMessage) -> int | None:
    msg = message.message
    if msg.private_message is not None:
        return msg.private_message.epoch
    if msg.public_message is not None:
        return msg.public_message.content.epoch
    return None  # a Welcome: no epoch of the room's messages


def _is_hub_component_entry(entry: PendingEntry) -> bool:
    if entry.proposal_type != ProposalType.app_data_update:
        return False
    body = decode_message(entry.message).public_message.content.proposal.app_data_update
    return body.component_id == MIMI_HUB_COMPONENT_ID


def _hub_updates(group) -> list[tuple[bytes, Any]]:
    """(ref, HubData) of the cached mimi_hub AppDataUpdates, in arrival order."""
    from .wire.hub_transfer import HubData

    out = []
    for ref, entry in group.proposal_cache.items():
        p = entry.proposal
        if p.proposal_type == ProposalType.app_data_update and p.app_data_update.component_id == MIMI_HUB_COMPONENT_ID:
            try:
                out.append((ref, HubData.decode(bytes(p.app_data_update.update or b""))))
            except (DecodeError, EncodeError):
                continue
    return out


def _pending_transition(group, room_id: str) -> tuple[str | None, bytes | None]:
    """The transition a cached mimi_hub proposal makes (begin, cutover, abort) and the initiator's user."""
    if group is None:
        return None, None
    updates = _hub_updates(group)
    if not updates:
        return None, None
    _, new = updates[-1]
    if new.state == HubState.transferring:
        return "begin", bytes(new.request.content.initiator.uri)
    current = hub_of_record(group.app_data(), room_id)
    if current is None or current.state != HubState.transferring:
        return None, None
    initiator = bytes(current.request.content.initiator.uri)
    return ("cutover" if bytes(new.hub.uri) == bytes(current.target.uri) else "abort"), initiator


def _commit_refs(group) -> list[bytes]:
    """Every cached proposal, but of the mimi_hub updates only the latest (a superseded cut-over is gone)."""
    updates = _hub_updates(group)
    stale = {ref for ref, _ in updates[:-1]}
    return [ref for ref in group.proposal_cache if ref not in stale]
