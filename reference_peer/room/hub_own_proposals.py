"""The hub's own external proposals (§7.4 external_senders, regenerated leaves, hub-transfer proposals), each
required in the next commit.

A mixin of :class:`~reference_peer.room.hub.HubRoom`: methods only, every attribute lives on the room."""

from __future__ import annotations

from ..mls import HubView, external_proposal, gce_proposal
from ..mls.group import (
    app_data_update_proposal,
    decode_message,
    external_senders_extension,
    remove_proposal,
    set_extension,
)
from ..wire.mimi import COMPONENT_PARTICIPANT_LIST
from ..wire.mls import ExtensionType, ProposalType
from . import participants as plist_mod
from .hub_records import FanoutPlan, PendingEntry
from .hub_steps import CUTOVER_REQUIRES_PENDING, REGENERATE_AFTER_EXTERNAL_COMMIT, SENDER_REMOVAL_AFTER_LAST_FOLLOWER
from .naming import domain_of_uri


class HubProposalRules:
    """The external proposals the hub itself issues, and its pending list."""

    def _hub_followups(
        self, now: int, before_providers: set[str], carried: list[PendingEntry], old: HubView
    ) -> list[PendingEntry]:
        """After a commit: proposals the hub issues for the new epoch, each required in the next commit. It runs for
        every commit the hub accepts, so it must not fail one: the add of a follower's first user, an add its
        policy authorizes (POLICY-CAP-ADD-PARTICIPANT-CLIENTS), is where a follower's entry may be added."""
        out = self._regenerate(carried, old, now) if carried else []
        senders = list(self.view.external_senders())
        active = self.active_providers()
        keep = []
        changed = False
        for sender in senders:
            domain = domain_of_uri(bytes(sender.credential.identity or b""))
            is_hub = bytes(sender.signature_key) == bytes(self.identity.external_sender.signature_key)
            if (
                not is_hub and domain is not None and domain != self.identity.domain and domain not in active
                and domain not in self.transfer_fanout_domains()
                and not self.overrides.departs(SENDER_REMOVAL_AFTER_LAST_FOLLOWER)
            ):
                changed = True  # PROTO-EXTSENDERS-REMOVE-LAST-FOLLOWER
                continue
            keep.append(sender)
        listed = {domain_of_uri(bytes(s.credential.identity or b"")) for s in keep}
        for domain in sorted(active - before_providers):
            if domain in self.provider_senders and domain not in listed:
                keep.append(self.provider_senders[domain])  # PROTO-EXTSENDERS-FOLLOWER-MAY-ADD
                changed = True
        if changed:
            exts = set_extension(
                list(self.view.context.extensions),
                ExtensionType.external_senders,
                external_senders_extension(keep).extension_data,
            )
            out.append(
                self._issue(gce_proposal(exts), now, "external_senders update [PROTO-EXTSENDERS-REMOVE-LAST-FOLLOWER]")
            )
        return out

    def _regenerate(self, carried: list[PendingEntry], old: HubView, now: int) -> list[PendingEntry]:
        """An external commit cannot carry the pending leave proposals by reference; the hub re-issues
        comparable ones (hub Removes and the participant-list removal) for the new epoch
        (PROTO-FANOUT-REGENERATE-AFTER-EXTERNAL-COMMIT), to be required in the next commit."""
        keys: set[bytes] = set()
        users: set[bytes] = set()
        for entry in carried if not self.overrides.departs(REGENERATE_AFTER_EXTERNAL_COMMIT) else ():
            content = decode_message(entry.message).public_message.content
            proposal = content.proposal
            leaf = None
            if proposal.proposal_type == ProposalType.remove:
                leaf = old.tree.leaf(proposal.remove.removed)
            elif proposal.proposal_type == ProposalType.self_remove:
                leaf = old.tree.leaf(content.sender.leaf_index)
            elif proposal.proposal_type == ProposalType.app_data_update and entry.sender_user is not None:
                users.add(entry.sender_user)
            if leaf is not None:
                keys.add(bytes(leaf.signature_key))
        why = "regenerated leave [PROTO-FANOUT-REGENERATE-AFTER-EXTERNAL-COMMIT]"
        out = []
        for key in sorted(keys):
            index = self.view.find_member(key)
            if index is not None:
                out.append(self._issue(remove_proposal(index), now, why))
        plist = self.participant_list()
        indices = sorted(i for u in users if (i := plist_mod.index_of(plist, u)) is not None)
        if indices:
            update = plist_mod.make_update(removed=indices).encode()
            out.append(self._issue(app_data_update_proposal(int(COMPONENT_PARTICIPANT_LIST), update), now, why))
        return out

    def _issue(self, proposal: object, now: int, why: str) -> PendingEntry:
        """An external proposal by the hub, accepted into its own view and the pending list."""
        index = next(
            i
            for i, s in enumerate(self.view.external_senders())
            if bytes(s.signature_key) == bytes(self.identity.external_sender.signature_key)
        )
        data = external_proposal(
            self.view.suite.suite_id, self.group_id, self.epoch, index, self.identity.signature_priv, proposal
        )
        received = self.view.process(data)
        ptype = int(proposal.proposal_type)  # type: ignore[attr-defined]
        entry = PendingEntry(data, received.proposal_ref, now, None, ptype, required=True, why_required=why)
        self.pending.append(entry)
        return entry

    def drop_pending(self, refs: set[bytes]) -> None:
        """Forget pending proposals (a superseded transfer proposal): a commit naming them is refused."""
        self.pending = [e for e in self.pending if e.ref not in refs]
        for ref in refs:
            self.view.proposal_cache.pop(ref, None)

    def issue_hub_proposals(self, proposals: list[object], now: int, why: str) -> FanoutPlan:
        """External proposals of the hub (transfer begin, cut-over, abort, sender changes), required in
        the next commit (EXT-HUBXFER-PENDING-REQUIRED), fanned out as one bundle to every provider with
        active participants and to the target."""
        entries = [self._issue(p, now, why) for p in proposals]
        if self._cutover_pending() and not self.overrides.departs(CUTOVER_REQUIRES_PENDING):
            for entry in self.pending:
                entry.required = True
        head, *rest = [decode_message(e.message) for e in entries]
        return self._plan_proposals(head, rest, now)
