"""The hub-transfer extension's rules in a room (docs/extensions/hub-transfer.md): the mimi_hub component,
the transfer window, the cut-over.

A mixin of :class:`~reference_peer.room.hub.HubRoom`: methods only, every attribute lives on the room."""

from __future__ import annotations

from ..mls import HubView
from ..mls.group import AppliedProposal
from ..overrides import step
from ..wire.hub_transfer import MIMI_HUB_COMPONENT_ID, HubRedirect, HubState
from ..wire.identity import IdentifierUri
from ..wire.mls import ProposalType, SenderType
from .hub_records import _not_allowed, sender_domain_of
from .hub_steps import NO_EXTERNAL_COMMIT_HUB_UPDATE, ONLY_HUB_CHANGES_HUB_COMPONENT, WINDOW_NO_NEW_PROVIDERS
from .policy import Refusal
from .transfer import BEGIN_COMMITTED, CUTOVER_PROPOSED, MOVED, hub_of_record

CUTOVER_MOVES_THE_ROOM = step(
    "transfer.commit.cutover-moves-the-room", "EXT-HUBXFER-HANDOFF-SENT", "EXT-HUBXFER-OLDHUB-REDIRECT",
    summary="a committed mimi_hub update naming another hub is the cut-over: the old hub records the room as "
            "moved, hands it off and redirects (an update naming this hub again is the abort)")
WINDOW_ENDS_WITH_THE_TRANSFER = step(
    "hub.transfer-window.ends-with-abort", "EXT-HUBXFER-WINDOW-NO-NEW-PROVIDERS",
    summary="the window's no-new-provider rule stops applying once the abort (or cut-over) commit is accepted: "
            "a later commit may give any provider its first participant")
WINDOW_ACCEPTS_COMMITS = step(
    "hub.transfer-window.accepts-commits", "EXT-HUBXFER-WINDOW-NORMAL",
    summary="during the transfer window a commit that gives no new provider a participant is judged as outside a "
            "transfer (with the pending cut-over, other proposals may ride along)")


class TransferRules:
    """The hub-transfer extension's rules in a room this hub holds."""

    def hub_data(self, view: HubView | None = None):
        """The committed mimi_hub component, or None when the room has none."""
        return hub_of_record((view or self.view).app_data(), self.room_uri)

    def transfer_fanout_domains(self) -> set[str]:
        """The target gets every handshake message from the acceptance to the handoff
        (EXT-HUBXFER-TARGET-FANOUT); empty outside a transfer. Read for the fan-out of every commit the hub
        accepts, so it must not fail one: an authorized add's (POLICY-CAP-ADD-PARTICIPANT-CLIENTS) included."""
        transfer = self.transfer
        if transfer is None or not (transfer.in_window or transfer.phase == MOVED):
            return set()
        return {transfer.target}

    def _cutover_pending(self) -> bool:
        """The cut-over proposal is pending (EXT-HUBXFER-CUTOVER-INCLUDES-PENDING). Outside a transfer it never is, so
        a participant's new client joins by external commit as ever (PROTO-GROUPINFO-NEW-DEVICE-JOIN)."""
        return self.transfer is not None and self.transfer.phase == CUTOVER_PROPOSED

    def _check_hub_component_proposal(self, kind: str, proposal: object) -> None:
        """Only the hub's own external sender changes mimi_hub (EXT-HUBXFER-COMPONENT-SENDER); a member's
        AppDataUpdate of any other component passes here, a leave's participant-list removal among them, which the
        hub takes and caches (PROTO-UPDATE-SELF-LEAVE-CACHED)."""
        ptype = proposal.proposal_type  # type: ignore[attr-defined]
        if (
            ptype == ProposalType.app_data_update
            and proposal.app_data_update.component_id == MIMI_HUB_COMPONENT_ID  # type: ignore[attr-defined]
            and kind != "hub"
            and not self.overrides.departs(ONLY_HUB_CHANGES_HUB_COMPONENT)
        ):
            raise _not_allowed(Refusal("only the hub may change mimi_hub", "EXT-HUBXFER-COMPONENT-SENDER"))

    def _refuse_external_hub_update(self, applied: list[AppliedProposal]) -> None:
        """An external commit never carries a mimi_hub update (EXT-HUBXFER-PUBLIC-COMMITS, section 4.2 item 5),
        although mls-extensions-09 §4.7 lets it carry AppDataUpdates of other components."""
        if any(
            e.proposal.proposal_type == ProposalType.app_data_update
            and e.proposal.app_data_update.component_id == MIMI_HUB_COMPONENT_ID
            for e in applied
        ) and not self.overrides.departs(NO_EXTERNAL_COMMIT_HUB_UPDATE):
            raise _not_allowed(Refusal("an external commit carries a mimi_hub update", "EXT-HUBXFER-PUBLIC-COMMITS"))

    def _check_hub_component_commit(self, old: HubView, new: HubView, applied: list[AppliedProposal]) -> str | None:
        """A commit that changes mimi_hub must do it through the hub's own AppDataUpdate
        (EXT-HUBXFER-COMPONENT-SENDER); during the window no provider but the target gets its first
        participant (EXT-HUBXFER-WINDOW-NO-NEW-PROVIDERS); the window's other commits pass
        (EXT-HUBXFER-WINDOW-NORMAL), the first of them the commit of the hub's begin proposals
        (EXT-HUBXFER-BEGIN-PROPOSALS), which starts the transfer. Returns the transition the commit makes
        ("begin", "cutover", "abort") or None."""
        before = old.app_data().get(MIMI_HUB_COMPONENT_ID)
        after = new.app_data().get(MIMI_HUB_COMPONENT_ID)
        transfer = self.transfer
        if transfer is not None and (transfer.in_window or self.overrides.departs(WINDOW_ENDS_WITH_THE_TRANSFER)):
            newcomers = self.active_providers(new) - self.active_providers(old) - {transfer.target}
            if newcomers and not self.overrides.departs(WINDOW_NO_NEW_PROVIDERS):
                raise _not_allowed(
                    Refusal(
                        f"a first participant of {sorted(newcomers)} during the transfer window",
                        "EXT-HUBXFER-WINDOW-NO-NEW-PROVIDERS",
                    )
                )
            self.overrides.hook(WINDOW_ACCEPTS_COMMITS, old, new, applied)  # EXT-HUBXFER-WINDOW-NORMAL
        if before == after:
            return None
        updates = [
            e for e in applied
            if e.proposal.proposal_type == ProposalType.app_data_update
            and e.proposal.app_data_update.component_id == MIMI_HUB_COMPONENT_ID
        ]
        if (len(updates) != 1 or self._actor(old, updates[0].sender)[0] != "hub") \
                and not self.overrides.departs(ONLY_HUB_CHANGES_HUB_COMPONENT) \
                and not (self.overrides.departs(NO_EXTERNAL_COMMIT_HUB_UPDATE) and len(updates) == 1
                         and updates[0].sender.sender_type == SenderType.new_member_commit):
            raise _not_allowed(Refusal("mimi_hub changed other than by the hub", "EXT-HUBXFER-COMPONENT-SENDER"))
        data = self.hub_data(new)
        if data is None:
            raise _not_allowed(Refusal("mimi_hub removed", "EXT-HUBXFER-COMPONENT-TRANSITIONS"))
        if data.state == HubState.transferring:
            return "begin"
        if sender_domain_of(data.hub) != self.identity.domain:
            return "abort" if self.overrides.departs(CUTOVER_MOVES_THE_ROOM) else "cutover"
        return "abort"

    def _after_hub_transition(self, transition: str | None, old: HubView) -> None:
        transfer = self.transfer
        if transition is None or transfer is None:
            return
        if transition == "begin":
            transfer.phase, transfer.begin_epoch = BEGIN_COMMITTED, self.epoch
        elif transition == "cutover":
            data = self.hub_data()
            transfer.phase = MOVED
            transfer.cutover_generation, transfer.cutover_epoch = data.generation, self.epoch
            self.moved = HubRedirect(
                room_id=IdentifierUri(uri=self.room_uri.encode()), hub=data.hub, generation=data.generation,
                epoch=self.epoch,
            )
        elif transition == "abort":
            from .transfer import ABORTED

            transfer.phase = ABORTED
