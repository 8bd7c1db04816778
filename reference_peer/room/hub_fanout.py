"""Fan-out planning (draft-ietf-mimi-protocol-06 §5.5): which FanoutMessages go to which provider after an
accepted request, in order (PROTO-FANOUT-ORDERED). The hub's own domain appears like any other provider
with participants.

A mixin of :class:`~reference_peer.room.hub.HubRoom`: methods only, every attribute lives on the room."""

from __future__ import annotations

from collections.abc import Iterable

from ..mls.group import decode_message
from ..wire.mimi import FanoutMessage, Protocol, SubmitMessageRequest
from ..wire.mls import MLSMessage, WireFormat
from ..wire.ratchet_tree_options import RatchetTreeOption, RatchetTreeRepresentation
from .hub_records import FanoutPlan, PendingEntry
from .hub_steps import (
    COMMIT_TO_REMOVED_PROVIDER,
    COMMIT_TO_TRANSFER_TARGET,
    FANOUT_AS_ACCEPTED,
    ROUTE_WELCOME_TO_JOINERS,
    STAMP_COMMIT_AT_ACCEPTANCE,
    STAMP_MESSAGE_AT_ACCEPTANCE,
)


class FanoutPlanning:
    """The FanoutPlan of each accepted request."""

    def _plan_proposals(self, head: MLSMessage, more: Iterable[MLSMessage], now: int) -> FanoutPlan:
        """Accepted proposals (a member's, or the hub's own): one FanoutMessage, to every provider with
        active participants and to a transfer's target (PROTO-FANOUT-MOREPROPOSALS-SAME: moreProposals as
        received)."""
        plan = FanoutPlan()
        fanout = FanoutMessage(timestamp=now, protocol=Protocol.mls10, message=head, moreProposals=list(more))
        for domain in sorted(self.active_providers() | self.transfer_fanout_domains()):
            plan.add(domain, fanout)
        return plan

    def _plan_commit(
        self,
        msg: MLSMessage,
        welcome: object,
        welcome_routes: set[str],
        hub_proposals: list[PendingEntry],
        before_providers: set[str],
        now: int,
    ) -> FanoutPlan:
        """An accepted commit (the room already at its new epoch): the commit with the hub's follow-up
        proposals to every provider that had clients before it or has some after it, then the Welcome
        (with the tree, and the follow-ups again) to the joiners' providers. Every accepted add passes through
        here, so a plan that fails leaves a valid add unprocessed (POLICY-CAP-ADD-PARTICIPANT-CLIENTS)."""
        plan = FanoutPlan()
        stamp = self.overrides.hook(STAMP_COMMIT_AT_ACCEPTANCE, now)
        if stamp is None:
            stamp = now
        if stamp != now:  # stamped otherwise, a handoff still names no less than a stamp sent
            self.last_accepted = max(self.last_accepted, stamp)
        fanout = FanoutMessage(
            timestamp=stamp,
            protocol=Protocol.mls10,
            message=msg,
            externalProposals=[decode_message(p.message) for p in hub_proposals],
        )
        # The removed user's provider too: removed clients SHOULD get their Commit (PROTO-FANOUT-REMOVED-GETS-COMMIT).
        notified = before_providers if not self.overrides.departs(COMMIT_TO_REMOVED_PROVIDER) else set()
        for domain in sorted(notified | self.active_providers() | self.transfer_fanout_domains()):
            plan.add(domain, fanout)
        self.overrides.hook(COMMIT_TO_TRANSFER_TARGET, self, plan)
        if welcome is not None:
            tree_option = RatchetTreeOption(
                representation=RatchetTreeRepresentation.full, ratchet_tree=self.view.tree.to_wire()
            )
            welcome_msg = MLSMessage(version=1, wire_format=WireFormat.mls_welcome, welcome=welcome)
            if self.overrides.departs(ROUTE_WELCOME_TO_JOINERS):
                welcome_routes = welcome_routes | self.active_providers() | before_providers
            for domain in sorted(welcome_routes):  # PROTO-FANOUT-WELCOME-ROUTING, PROTO-FANOUT-WELCOME-RATCHET-TREE
                plan.add(
                    domain,
                    FanoutMessage(
                        timestamp=now, protocol=Protocol.mls10, message=welcome_msg, ratchetTreeOption=tree_option
                    ),
                )
                if hub_proposals:  # the joiners missed them on the commit: they must be able to commit them too
                    head, *rest = [decode_message(p.message) for p in hub_proposals]
                    plan.add(
                        domain, FanoutMessage(timestamp=now, protocol=Protocol.mls10, message=head, moreProposals=rest)
                    )
        return plan

    def _plan_submit(self, req: SubmitMessageRequest, sender_domain: str, now: int) -> FanoutPlan:
        """An accepted application message: byte-identical ciphertext, no sender URI
        (PROTO-FRANK-SENDER-HIDDEN), only to providers with active participants
        (PROTO-FANOUT-ONLY-ACTIVE-PROVIDERS), stamped with the acceptance time."""
        plan = FanoutPlan()
        stamp = self.overrides.hook(STAMP_MESSAGE_AT_ACCEPTANCE, now)
        if stamp is None:
            stamp = now
        fanout = FanoutMessage(timestamp=stamp, protocol=Protocol.mls10, message=req.appMessage, frank=None)
        for domain in sorted(self.active_providers()):
            plan.add(domain, fanout)
        self.overrides.hook(FANOUT_AS_ACCEPTED, self, req, sender_domain, plan)  # hooks change the plan in place
        return plan
