"""Removal bookkeeping: the leaves of recent epochs, the users departing by an accepted proposal or removed by
a commit, and what their clients may still send (PROTO-REMOVAL-BLOCK-COMMITS,
PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS).

A mixin of :class:`~reference_peer.room.hub.HubRoom`: methods only, every attribute lives on the room."""

from __future__ import annotations

from ..mls import HubView
from ..mls.group import decode_message
from ..wire.mimi import COMPONENT_PARTICIPANT_LIST
from ..wire.mls import ContentType, ProposalType, SenderType
from ..wire.room_policy import ROLE_INDEX_BANNED, ROLE_INDEX_NON_PARTICIPANT
from . import participants as plist_mod
from .hub_records import LEAF_HISTORY_EPOCHS, _not_allowed
from .hub_steps import DEPARTING_APP_DATA_PLIST_ONLY, ONLY_REMOVAL_FROM_DEPARTING, REFUSE_REMOVED_MEMBER_COMMIT
from .naming import user_of_credential
from .participants import ParticipantListError
from .policy import Refusal


class RemovalBookkeeping:
    """Who is leaving or gone, and what their clients may still do."""

    def _remember_leaves(self) -> None:
        self.leaf_history[self.view.epoch] = {i: u for i, u in self._leaf_users(self.view).items() if u is not None}
        for epoch in [e for e in self.leaf_history if e <= self.view.epoch - LEAF_HISTORY_EPOCHS]:
            del self.leaf_history[epoch]

    def departing_users(self) -> set[bytes]:
        """Users removed or banned by an accepted, not yet committed proposal (§7.1: the effect applies
        on acceptance) plus users removed by a commit."""
        out = set(self.removed_users)
        plist = self.participant_list()
        touched: set[bytes] = set()
        for entry in self.pending:
            if entry.proposal_type != ProposalType.app_data_update:
                continue
            body = decode_message(entry.message).public_message.content.proposal.app_data_update
            if body.component_id != COMPONENT_PARTICIPANT_LIST or body.update is None:
                continue
            try:
                plist, changes = plist_mod.apply_update(plist, plist_mod.decode_update(body.update), touched)
            except ParticipantListError:
                continue
            out.update(c.user for c in changes if c.to_role in (ROLE_INDEX_NON_PARTICIPANT, ROLE_INDEX_BANNED))
        return out

    def _refuse_removed_sender(self, content: object) -> None:
        """Clients of a removed or banned user may not commit or propose (PROTO-REMOVAL-BLOCK-COMMITS,
        PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS). Once removed, their messages carry an old epoch: the
        leaf they claim in that epoch tells whose they are (refusing on a claim cannot be abused)."""
        sender = content.sender  # type: ignore[attr-defined]
        if sender.sender_type != SenderType.member or content.epoch >= self.epoch:  # type: ignore[attr-defined]
            return
        user = self.leaf_history.get(content.epoch, {}).get(sender.leaf_index)  # type: ignore[attr-defined]
        if user is not None and user in self.removed_users and user not in self.active_users():
            kind = "commit" if content.content_type == ContentType.commit else "propose"  # type: ignore[attr-defined]
            if self.overrides.departs(REFUSE_REMOVED_MEMBER_COMMIT if kind == "commit"
                                      else ONLY_REMOVAL_FROM_DEPARTING):
                return
            raise _not_allowed(
                Refusal(
                    f"a client of removed user {user.decode(errors='replace')} may not {kind}",
                    "PROTO-REMOVAL-BLOCK-COMMITS" if kind == "commit" else "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS",
                )
            )

    def _check_departing_proposal(self, view: HubView, user: bytes, proposal: object) -> None:
        """A removed/leaving user's clients may only propose Remove/SelfRemove for their own user and
        their own removal from the list (PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS)."""
        ptype = proposal.proposal_type  # type: ignore[attr-defined]
        if ptype == ProposalType.self_remove or self.overrides.departs(ONLY_REMOVAL_FROM_DEPARTING):
            return
        if ptype == ProposalType.remove:
            target = view.tree.leaf(proposal.remove.removed)  # type: ignore[attr-defined]
            if target is not None and user_of_credential(target.credential, self.overrides) == user:
                return
        if (
            ptype == ProposalType.app_data_update
            and (proposal.app_data_update.component_id == COMPONENT_PARTICIPANT_LIST  # type: ignore[attr-defined]
                 or self.overrides.departs(DEPARTING_APP_DATA_PLIST_ONLY))
        ):
            return  # its content is authorized change by change: only the user's own removal passes for a leaver
        raise _not_allowed(
            Refusal(
                f"a removed or leaving user may only propose its own removal, not {ptype.name}",
                "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS",
            )
        )
