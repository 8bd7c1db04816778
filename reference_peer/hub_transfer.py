"""The hub-transfer extension (docs/extensions/hub-transfer.md) on a :class:`ReferenceProvider`.

One :class:`HubTransferService` per provider that has the extension on (``hub_transfer:`` in
peer.yaml): the facade the provider, the control API and the suite's knobs talk to. It plays every
role, each role's rules in its own module (each declaring the named steps of its rules,
:mod:`reference_peer.overrides`):

* **old hub** (:mod:`reference_peer.hub_transfer_old_hub`): verifies a request (5.1), sends the prepare
  (5.2), issues the begin proposals (6.2), the cut-over proposal once the begin commit is delivered (6.3),
  snapshots the undelivered fan-out and sends the handoff, byte-identical on every retry (6.4), aborts at
  ``not_after`` (11), redirects after the cut-over (8.1);
* **target / new hub** (:mod:`reference_peer.hub_transfer_new_hub`): verifies a prepare and accepts it,
  tracks the public group state from the handshake fan-out, verifies the handoff (12), takes the room
  over, delivers the backlog first and proposes the old hub's removal from external_senders (6.5);
* **follower** (:mod:`reference_peer.hub_transfer_follower`): the epochs the previous hub may still
  deliver (7); the rest (hub-of-record from the component, redirects, 503) is in :mod:`reference_peer.peer`.

Reference-peer choice (section 17): the initiator's client commits the transfer proposals as soon
as its provider receives them (:meth:`HubTransferService.after_intake`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .hub_transfer_common import TICK_SECONDS, now_ms, response, stamp
from .hub_transfer_follower import FollowerSide
from .hub_transfer_new_hub import NewHubSide
from .hub_transfer_old_hub import OldHubSide
from .mls.hub import HubView
from .overrides import Overrides
from .room.hub import HubRoom
from .room.transfer import IncomingTransfer, OutgoingTransfer
from .room.transfer_settings import HubTransferSettings
from .server.transport import MimiHTTPError, MimiRequest, MimiResponse
from .wire.codec import DecodeError, EncodeError
from .wire.hub_transfer import HubTransferCode, HubTransferMessage, HubTransferMessageType, HubTransferResponse
from .wire.mimi import FanoutMessage

log = logging.getLogger(__name__)

PREPARE_HOLD_MAX = 15.0  # seconds a held prepare waits at most (the old hub waits 30 s for the answer, section 11)


class HubTransferService:
    """The extension's state and rules for one provider (see the module docstring): the suite's knobs
    and the spawned tasks here, each role's rules and state in its side."""

    def __init__(self, provider, settings: HubTransferSettings) -> None:
        self.p = provider
        self.settings = settings
        # Which transitions the initiator's client commits by itself (tests switch one off to hold a window open).
        self.autocommit: set[str] = {"begin", "cutover", "abort"}
        # Tests and the suite's own peers hold the handoff back to observe the new hub before it (section 6.4).
        self.hold_handoff = False
        # The suite's knob: room ID -> how many of its next handoffs to answer 503, unprocessed (a lost answer).
        self.refuse_handoffs: dict[str, int] = {}
        # The suite's knob: room ID -> the in-body refusal codes (HubTransferCode names) its next handoffs get, in
        # order, once refuse_handoffs is spent (a target refusing, then accepting a later attempt; section 11).
        self.refuse_handoff_codes: dict[str, list[str]] = {}
        # The suite's peers withhold their /notify to these domains (kept pending, in order) while set.
        self.withhold_notify_to: set[str] = set()
        # The suite's knob: the HubRedirects this peer answers as old hub claim a generation this much above
        # the committed one (a false hint, to see a newcomer check the GroupInfo; EXT-HUBXFER-NEWCOMER-DISCOVERY).
        self.inflate_redirect_generation = 0
        # The suite's knob: users (URIs) whose clients, provisioned while listed, omit mimi_hub from app_components.
        self.lacking_hub_component: set[str] = set()
        # The suite's knob: while set, a prepare this peer receives as target waits (at most PREPARE_HOLD_MAX
        # seconds) before it is processed, so a check can make a commit land while the old hub awaits the answer;
        # held_prepares: the rooms whose prepare is waiting now.
        self.hold_prepares = False
        self.held_prepares: set[str] = set()
        # The suite's knob: while set (a domain), the acceptances this peer returns as target name that provider as
        # new_hub (still signed with, and carrying, its own new_hub_sender), to see an old hub check new_hub.
        self.acceptance_new_hub: str | None = None
        # The suite's knob: room ID -> a provider this peer names in a 421 HubRedirect to every room request for the
        # room, whatever it holds (two peers naming each other make a redirect loop; EXT-HUBXFER-NEWCOMER-DISCOVERY).
        self.redirect_rooms: dict[str, str] = {}
        # The suite's knob: milliseconds the acceptances this peer returns as target add to their not_after (past
        # the prepare's requested_not_after; re-signed), to see an old hub check the deadline (section 5.2).
        self.acceptance_late_ms = 0
        self._tasks: set[asyncio.Task] = set()
        self._driver: asyncio.Task | None = None
        self.old_hub = OldHubSide(self)
        self.new_hub = NewHubSide(self)
        self.follower = FollowerSide(self)

    @property
    def overrides(self) -> Overrides:
        """The provider's overrides: the departures from the sides' named steps this peer was built with."""
        return self.p.overrides

    # -- the sides' state, as the provider, the control API and tests read it -----------------------

    @property
    def incoming(self) -> dict[str, IncomingTransfer]:
        """Room ID -> the transfer this provider accepted as target."""
        return self.new_hub.incoming

    @property
    def seen_transfer_ids(self) -> set[bytes]:
        return self.new_hub.seen_transfer_ids

    @property
    def handoffs_received(self) -> list[bytes]:
        return self.new_hub.handoffs_received

    @property
    def handoffs_sent(self) -> list[bytes]:
        return self.old_hub.handoffs_sent

    @property
    def cutover_epochs(self) -> dict[tuple[str, int], int]:
        return self.follower.cutover_epochs

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
        await self.old_hub.tick(now)
        self.new_hub.expire(now)

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
        if kind == HubTransferMessageType.handoff and self.refuse_handoff_codes.get(request.value):  # the suite's knob
            code = HubTransferCode[self.refuse_handoff_codes[request.value].pop(0)]
            return MimiResponse(response(kind, code, "refused by the suite's knob").encode())
        try:
            if kind == HubTransferMessageType.request:
                answer = await self.process_request(request.value, message.request, request.peer_domain)
            elif kind == HubTransferMessageType.prepare:
                await self._hold_prepare(request.value)
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

    async def _hold_prepare(self, room_id: str) -> None:
        """The suite's knob (``hold_prepares``): keep a received prepare unprocessed until it is cleared."""
        if not self.hold_prepares:
            return
        self.held_prepares.add(room_id)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + PREPARE_HOLD_MAX
            while self.hold_prepares and loop.time() < deadline:
                await asyncio.sleep(0.05)
        finally:
            self.held_prepares.discard(room_id)

    # -- old hub (hub_transfer_old_hub) ---------------------------------------------------------

    def make_request(self, room_id: str, member, target_domain: str) -> HubTransferMessage:
        return self.old_hub.make_request(room_id, member, target_domain)

    async def process_request(self, room_id: str, request, peer_domain: str) -> HubTransferResponse:
        return await self.old_hub.process_request(room_id, request, peer_domain)

    def begin(self, room_id: str, room: HubRoom, transfer: OutgoingTransfer) -> None:
        self.old_hub.begin(room_id, room, transfer)

    def begin_delivered(self, room_id: str, transfer: OutgoingTransfer) -> bool:
        return self.old_hub.begin_delivered(room_id, transfer)

    def propose_cutover(self, room_id: str, room: HubRoom) -> None:
        self.old_hub.propose_cutover(room_id, room)

    def abort(self, room_id: str, room: HubRoom, reason: str) -> None:
        self.old_hub.abort(room_id, room, reason)

    async def send_abort(self, room_id: str, room: HubRoom, transfer: OutgoingTransfer, reason: str) -> None:
        await self.old_hub.send_abort(room_id, room, transfer, reason)

    def snapshot_undelivered(self, room_id: str) -> dict[str, list[FanoutMessage]]:
        return self.old_hub.snapshot_undelivered(room_id)

    def build_handoff(self, room_id: str, room: HubRoom) -> bytes:
        return self.old_hub.build_handoff(room_id, room)

    async def send_handoff(self, room_id: str, room: HubRoom) -> None:
        await self.old_hub.send_handoff(room_id, room)

    # -- target / new hub (hub_transfer_new_hub) ------------------------------------------------

    def process_prepare(self, room_id: str, prepare, peer_domain: str) -> HubTransferResponse:
        answer = self.new_hub.process_prepare(room_id, prepare, peer_domain)
        if self.acceptance_late_ms and answer.code == HubTransferCode.accepted and answer.acceptance is not None:
            from .mls.crypto import cipher_suite
            from .wire.hub_transfer import sign_hub_transfer_acceptance

            # The suite's knob: a deadline past the prepare's requested_not_after, signed like a real acceptance.
            content = answer.acceptance.content
            content = content.replace(not_after=prepare.content.requested_not_after + self.acceptance_late_ms)
            late = sign_hub_transfer_acceptance(cipher_suite(prepare.content.cipher_suite),
                                                self.p.identity.signature_priv, content)
            answer = answer.replace(acceptance=late)
        return answer

    def accepts(self, old_hub: str, room_id: str) -> bool:
        return self.new_hub.accepts(old_hub, room_id)

    def track(self, room_id: str, messages: list[FanoutMessage]) -> None:
        self.new_hub.track(room_id, messages)

    def process_handoff(self, room_id: str, handoff, peer_domain: str, raw: bytes) -> HubTransferResponse:
        return self.new_hub.process_handoff(room_id, handoff, peer_domain, raw)

    def take_over(self, room_id: str, view: HubView, handoff, incoming: IncomingTransfer) -> None:
        self.new_hub.take_over(room_id, view, handoff, incoming)

    def process_abort(self, room_id: str, abort, peer_domain: str) -> HubTransferResponse:
        return self.new_hub.process_abort(room_id, abort, peer_domain)

    # -- answers of the old hub and of the target to room requests (8.1, 8.3, 6.4) -------------

    def room_gate(self, room_id: str) -> MimiResponse | None:
        """421 + HubRedirect (old hub after the cut-over, target during the window), 503 + Retry-After
        (target after the cut-over, before the handoff), or None: serve the request."""
        if (named := self.redirect_rooms.get(room_id)) is not None:  # the suite's knob: a scripted redirect
            from .hub_transfer_common import redirect_response
            from .room.transfer import provider_uri
            from .wire.hub_transfer import HubRedirect
            from .wire.identity import IdentifierUri

            return redirect_response(HubRedirect(room_id=IdentifierUri(uri=room_id.encode()), hub=provider_uri(named),
                                                 generation=0, epoch=0))
        room = self.p.hub_rooms.get(room_id)
        answer = self.old_hub.gate(room_id, room)
        return answer if answer is not None else self.new_hub.gate(room_id, room)

    # -- follower (hub_transfer_follower) -------------------------------------------------------

    def after_intake(self, room_id: str) -> None:
        self.follower.after_intake(room_id)

    def note_cutover_epoch(self, room_id: str) -> None:
        self.follower.note_cutover_epoch(room_id)

    def previous_hub_may_notify(self, room_id: str, data, body: bytes) -> bool:
        return self.follower.previous_hub_may_notify(room_id, data, body)

    def advertise_components(self, client) -> None:
        self.follower.advertise_components(client)

    # -- helpers ------------------------------------------------------------------------------

    def _stamp(self, room: HubRoom) -> int:
        return stamp(room)

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
        out["heldPrepares"] = sorted(self.held_prepares)
        return out
