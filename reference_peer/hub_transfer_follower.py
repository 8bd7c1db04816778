"""The follower's rules of the hub-transfer extension (docs/extensions/hub-transfer.md) kept with the
extension: which epochs the previous hub may still deliver after a cut-over (section 7), and the
reference peer's choice that the initiator's client commits the transfer proposals as soon as its
provider receives them (section 17). The rest of the follower (hub-of-record from the component,
redirects, 503) is in :mod:`reference_peer.peer`. One :class:`FollowerSide` per
:class:`~reference_peer.hub_transfer.HubTransferService`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .hub_transfer_common import AUTOCOMMIT_ATTEMPTS, MLS10, Side
from .mls import MLSError
from .overrides import step
from .room.transfer import hub_of_record
from .wire.codec import DecodeError, EncodeError
from .wire.hub_transfer import MIMI_HUB_COMPONENT_ID, HubState
from .wire.mimi import FanoutMessage, UpdateResponseCode
from .wire.mls import ProposalType

log = logging.getLogger("reference_peer.hub_transfer")

# follower (7, 10)
FOLLOWER_NO_REINIT = step(
    "transfer.follower.no-reinit", "EXT-HUBXFER-NO-REINIT",
    summary="after a cut-over a follower's clients keep the group (no ReInit)")
FOLLOWER_REFUSES_STALE_NOTIFY = step(
    "transfer.follower.refuses-stale-notify", "EXT-HUBXFER-FOLLOWER-STALE-NOTIFY",
    summary="after a cut-over the previous hub may deliver only FanoutMessages up to the cut-over epoch")
FOLLOWER_TAKES_TRANSFER_PROPOSALS = step(
    "transfer.follower.takes-transfer-proposals", "PROTO-FANOUT-NOTIFY-201",
    summary="a follower takes in the begin, cut-over and abort proposals its hub fans out (/notify answered 201)")
FOLLOWER_CLIENTS_LIST_HUB = step(
    "transfer.follower.clients-list-hub-component", "EXT-HUBXFER-FOLLOWER-CLIENTS-LIST-HUB",
    summary="the provider's clients list mimi_hub in their LeafNodes' app_components (section 5.1)")


class FollowerSide(Side):
    """The rules of the provider as a follower of a room whose hub moves."""

    def __init__(self, service) -> None:
        super().__init__(service)
        # (room ID, cut-over generation) -> the cut-over epoch E_c as first processed here.
        self.cutover_epochs: dict[tuple[str, int], int] = {}
        self._committing: set[tuple[str, str]] = set()

    # -- the initiator's client commits (reference-peer choice, section 17) ---------------------

    def after_intake(self, room_id: str) -> None:
        """After fan-out reached local clients: if a cached mimi_hub proposal awaits and a local client of
        the transfer's initiator is a member, that client commits it (asynchronously)."""
        self.note_cutover_epoch(room_id)
        self.overrides.hook(FOLLOWER_NO_REINIT, self.service, room_id)
        self.overrides.hook(FOLLOWER_TAKES_TRANSFER_PROPOSALS, self.service, room_id)
        for (room, client_uri), member in list(self.p.members.items()):
            if room != room_id or self.p.active_member(room, client_uri) is None:
                continue
            transition, initiator = _pending_transition(member.group, room_id)
            if transition is None or transition not in self.service.autocommit or initiator != member.user_uri.encode():
                continue
            key = (room_id, member.user_uri)
            if key in self._committing:
                return
            self._committing.add(key)
            self.service._spawn(self._commit_cached(room_id, client_uri, key))
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

    # -- which epochs the previous hub may still deliver (section 7) ---------------------------

    def note_cutover_epoch(self, room_id: str) -> None:
        """The epoch in which this follower's clients first saw a cut-over component (E_c)."""
        data = self.p.room_hub_data(room_id)
        if data is not None and data.state == HubState.stable and data.previous_hub is not None:
            epochs = [m.group.epoch for (r, _), m in self.p.members.items()
                      if r == room_id and m.group is not None and not m.removed]
            if epochs and not self.overrides.departs(FOLLOWER_REFUSES_STALE_NOTIFY):  # E_c bounds the old hub
                self.cutover_epochs.setdefault((room_id, data.generation), max(epochs))

    def previous_hub_may_notify(self, room_id: str, data, body: bytes) -> bool:
        """EXT-HUBXFER-FOLLOWER-STALE-NOTIFY: after the cut-over the previous hub may deliver only
        FanoutMessages of epochs up to and including E_c (its backlog until the handoff); one of those that the
        new hub delivered before is a byte-identical repeat from either hub, answered 201
        (EXT-HUBXFER-FOLLOWER-DEDUP)."""
        cutover = self.cutover_epochs.get((room_id, data.generation))
        if cutover is None or self.overrides.departs(FOLLOWER_REFUSES_STALE_NOTIFY):
            return True
        try:
            messages = FanoutMessage.decode_sequence(body, scope=MLS10)
        except (DecodeError, EncodeError):
            return True  # the body is refused as undecodable afterwards
        return all(_fanout_epoch(m) is None or _fanout_epoch(m) <= cutover for m in messages)

    # -- the suite's knob on the clients this provider provisions --------------------------------

    def advertise_components(self, client) -> None:
        """The suite's knob ``lacking_hub_component``: a client of a listed user, provisioned now, lists no
        mimi_hub in its LeafNodes' app_components (to see a hub refuse EXT-HUBXFER-ALL-MEMBERS-SUPPORT). Every
        other client keeps the components it processes, mimi_hub among them (EXT-HUBXFER-FOLLOWER-CLIENTS-LIST-HUB)."""
        self.overrides.hook(FOLLOWER_CLIENTS_LIST_HUB, client)
        if client.user_uri in self.service.lacking_hub_component:
            client.app_components = tuple(c for c in client.app_components if c != MIMI_HUB_COMPONENT_ID)


def _fanout_epoch(message: FanoutMessage) -> int | None:
    msg = message.message
    if msg.private_message is not None:
        return msg.private_message.epoch
    if msg.public_message is not None:
        return msg.public_message.content.epoch
    return None  # a Welcome: no epoch of the room's messages


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
