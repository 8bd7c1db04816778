"""The hub's rules for proposals (§5.3, §7.1 with room-policy-04): each proposal of an UpdateRequest is
authorized on acceptance and cached for the next commit.

A mixin of :class:`~reference_peer.room.hub.HubRoom`: methods only, every attribute lives on the room."""

from __future__ import annotations

from ..mls import HubView, MLSError
from ..mls.group import decode_message, proposal_ref
from ..wire.codec import DecodeError, EncodeError
from ..wire.mimi import COMPONENT_PARTICIPANT_LIST, ParticipantListData, UpdateResponseCode, UpdateRoomResponse
from ..wire.mls import ContentType, MLSMessage, ProposalType, WireFormat
from ..wire.room_policy import ROLE_INDEX_NON_PARTICIPANT, Capability
from . import participants as plist_mod
from .hub_records import FanoutPlan, PendingEntry, _not_allowed, _Refused, update_response
from .hub_steps import (
    ACCEPT_AUTHORIZED_MEMBER_PLIST_CHANGE,
    ACCEPT_SELF_REMOVE,
    BIND_LEAVER_WITHIN_BUNDLE,
    CUTOVER_REQUIRES_PENDING,
    DEPARTING_APP_DATA_PLIST_ONLY,
    JUDGE_IN_ACCEPTED_LIST,
    PROPOSED_REMOVE_NEEDS_CAPABILITY,
    PROVIDER_PLIST_OWN_REMOVALS_ONLY,
    PROVIDER_REMOVES_OWN_CLIENTS_ONLY,
    REQUIRE_CACHED_LEAVE,
    REQUIRE_EVERY_LEAVE_PROPOSAL,
)
from .naming import domain_of_uri, user_of_credential
from .participants import ChangeKind, ParticipantChange, ParticipantListError
from .policy import Refusal


class ProposalRules:
    """The rules a proposal passes on acceptance (§7.1: its effect applies then)."""

    def _handle_proposals(
        self, sender_domain: str, messages: list[MLSMessage], more: list[MLSMessage], now: int
    ) -> tuple[UpdateRoomResponse, FanoutPlan]:
        work = self.view.copy()
        entries: list[PendingEntry] = []
        departing = self.departing_users()
        roles = self.roles()
        plist = self.participant_list()
        touched: set[bytes] = set()
        # the plist effect of proposals already accepted this epoch (-06 §7.1)
        for entry in self.pending if not self.overrides.departs(JUDGE_IN_ACCEPTED_LIST) else ():
            plist, touched = self._replay_plist(entry, plist, touched)
        leaving_now: set[bytes] = set()
        for msg in messages:
            data = msg.encode()
            if msg.public_message is None:
                raise _Refused(UpdateResponseCode.invalidProposal, "moreProposals must be PublicMessages")
            content = msg.public_message.content
            if content.content_type != ContentType.proposal:
                raise _Refused(UpdateResponseCode.invalidProposal, "moreProposals holds a non-proposal")
            ref = self._ref_of(msg)
            if content.epoch != work.epoch or bytes(content.group_id) != self.group_id:
                raise _Refused(UpdateResponseCode.wrongEpoch, "a proposal is for another epoch or group")
            kind, user = self._actor(work, content.sender)
            try:
                received = work.process(data)  # signature against the leaf or the external_senders entry
            except MLSError as exc:
                raise _Refused(UpdateResponseCode.invalidProposal, f"invalid proposal: {exc}", invalid=[ref]) from None
            proposal = received.proposal
            ptype = proposal.proposal_type
            if ptype == ProposalType.self_remove and self.overrides.departs(ACCEPT_SELF_REMOVE):
                raise _not_allowed(Refusal("SelfRemove refused", "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS"))
            if kind == "new_member" and ptype == ProposalType.add:
                user = user_of_credential(proposal.add.key_package.leaf_node.credential, self.overrides)
            self._check_sender_domain(kind, user, sender_domain)
            if kind == "member" and user is not None and (
                user in departing
                or (user in leaving_now and not self.overrides.departs(BIND_LEAVER_WITHIN_BUNDLE))
            ):
                self._check_departing_proposal(work, user, proposal)
            self._check_remove_proposal(work, kind, user, proposal)  # a canKick holder's (POLICY-CAP-KICK-KEEPS-PARTICIPANT)
            self._check_hub_component_proposal(kind, proposal)
            # another component's update (a roles_list change, POLICY-CAP-CHANGE-ROLE-DEFINITIONS) is cached as it is
            if (
                ptype == ProposalType.app_data_update
                and proposal.app_data_update.component_id == COMPONENT_PARTICIPANT_LIST
            ):
                if proposal.app_data_update.update is None:
                    raise _not_allowed(
                        Refusal("the participant list cannot be deleted", "PROTO-PLIST-ONE-ENTRY-PER-USER")
                    )
                try:
                    plist, changes = plist_mod.apply_update(
                        plist, plist_mod.decode_update(proposal.app_data_update.update), touched
                    )
                except ParticipantListError as exc:
                    raise _Refused(
                        UpdateResponseCode.invalidProposal, f"{exc} [{exc.requirement}]", invalid=[ref]
                    ) from None
                actor_role = (
                    roles.get(user, ROLE_INDEX_NON_PARTICIPANT) if user is not None else ROLE_INDEX_NON_PARTICIPANT
                )
                for change in changes:
                    self._authorize_plist_change(kind, user, actor_role, change, departing)
                    if change.user == user and change.kind is ChangeKind.remove:
                        leaving_now.add(user)
            member_user = user if kind == "member" else None
            entries.append(PendingEntry(data, received.proposal_ref, now, member_user, int(ptype)))
        # Self-leave (§3.5): the leaving user's proposals must be in the next commit.
        # A SelfRemove too: its sender can never commit it itself (POLICY-CAP-REMOVE-OWN-CLIENT).
        for entry in entries if not self.overrides.departs(REQUIRE_CACHED_LEAVE) else ():
            if entry.sender_user is not None and (entry.sender_user in leaving_now or entry.sender_user in departing):
                if self.overrides.departs(REQUIRE_EVERY_LEAVE_PROPOSAL) and entry.proposal_type != ProposalType.self_remove:
                    continue  # a fault: only the leave's SelfRemove is required
                entry.required, entry.why_required = True, "self-leave [PROTO-UPDATE-SELF-LEAVE-CACHED]"
            elif entry.proposal_type == ProposalType.self_remove:
                entry.required, entry.why_required = True, "SelfRemove [POLICY-CAP-REMOVE-OWN-CLIENT]"
        if self._cutover_pending() and not self.overrides.departs(CUTOVER_REQUIRES_PENDING):
            for entry in entries:  # EXT-HUBXFER-CUTOVER-INCLUDES-PENDING
                entry.required, entry.why_required = True, "pending with the cut-over [EXT-HUBXFER-CUTOVER-INCLUDES-PENDING]"
        self.view = work
        self.pending.extend(entries)
        head, *_ = messages
        return update_response(UpdateResponseCode.success, accepted=now), self._plan_proposals(head, more, now)

    def _replay_plist(
        self, entry: PendingEntry, plist: ParticipantListData, touched: set[bytes]
    ) -> tuple[ParticipantListData, set[bytes]]:
        if entry.proposal_type != ProposalType.app_data_update:
            return plist, touched
        body = decode_message(entry.message).public_message.content.proposal.app_data_update
        if body.component_id != COMPONENT_PARTICIPANT_LIST or body.update is None:
            return plist, touched
        plist, _ = plist_mod.apply_update(plist, plist_mod.decode_update(body.update), touched)
        return plist, touched

    def _ref_of(self, msg: MLSMessage) -> bytes:
        pub = msg.public_message
        try:
            return proposal_ref(self.view.suite, WireFormat.mls_public_message, pub.content, pub.auth)
        except (DecodeError, EncodeError, AttributeError, TypeError):
            return b""

    def _authorize_plist_change(
        self, kind: str, actor: bytes | None, actor_role: int, change: ParticipantChange, departing: set[bytes]
    ) -> None:
        """One participant-list action by one proposer (PROTO-PLIST-CHANGES-AUTHORIZED-SEPARATELY); a removed or
        leaving user's change passes only as its own removal (step hub.proposal.departing-app-data-plist-only)."""
        if kind == "hub":
            return  # the hub's own regenerated removals
        if kind == "provider":
            # A follower acts only for its own users, and only to take them out (e.g. a deleted user).
            if (
                change.kind is ChangeKind.remove
                and actor is not None
                and domain_of_uri(change.user) == domain_of_uri(actor)
            ) or self.overrides.departs(PROVIDER_PLIST_OWN_REMOVALS_ONLY):
                return
            raise _not_allowed(
                Refusal(
                    "a follower may only remove its own users from the list",
                    "PROTO-PLIST-CHANGES-AUTHORIZED-SEPARATELY",
                )
            )
        if actor is None:
            raise _not_allowed(
                Refusal(
                    "a participant-list change from a sender with no MIMI user",
                    "PROTO-PLIST-CHANGES-AUTHORIZED-SEPARATELY",
                )
            )
        if actor in departing and not (change.user == actor and change.kind is ChangeKind.remove):
            # a leaver's participant-list change passes only as its own removal (PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS)
            raise _not_allowed(Refusal("a leaving user may only remove itself", *DEPARTING_APP_DATA_PLIST_ONLY.requirements))
        refusal = self.policy.authorize_change(actor, actor_role, change, self.overrides)
        if refusal is not None:
            raise _not_allowed(refusal)
        if (change.user == actor and change.kind is ChangeKind.remove
                and self.overrides.departs(ACCEPT_AUTHORIZED_MEMBER_PLIST_CHANGE)):  # a fault: refuses a leave
            raise _not_allowed(Refusal("a leave's participant-list removal refused", "PROTO-UPDATE-SELF-LEAVE-CACHED"))

    def _check_remove_proposal(self, view: HubView, kind: str, actor: bytes | None, proposal: object) -> None:
        """On acceptance (§7.1): a member's Remove of another user's client needs canKick or
        canRemoveParticipant; of its own client, canRemoveOwnClient or canRemoveSelf. A follower
        provider may remove only its own users' clients."""
        ptype = proposal.proposal_type  # type: ignore[attr-defined]
        if kind not in ("member", "provider") or actor is None or ptype != ProposalType.remove:
            return
        leaf = view.tree.leaf(proposal.remove.removed)  # type: ignore[attr-defined]
        target = user_of_credential(leaf.credential, self.overrides) if leaf is not None else None
        if kind == "provider":
            if (target is None or domain_of_uri(target) != domain_of_uri(actor)) and not self.overrides.departs(
                PROVIDER_REMOVES_OWN_CLIENTS_ONLY
            ):
                raise _not_allowed(
                    Refusal(
                        "a follower may only remove its own users' clients", "PROTO-ROOMSTATE-VALIDATED-BEFORE-FORWARD"
                    )
                )
            return
        role = self.roles().get(actor, ROLE_INDEX_NON_PARTICIPANT)
        if target == actor:
            wanted = (Capability.canRemoveOwnClient, Capability.canRemoveSelf)
            requirement = "POLICY-CAP-REMOVE-OWN-CLIENT"
        else:
            wanted = (Capability.canKick, Capability.canRemoveParticipant)
            requirement = "POLICY-CAP-KICK-KEEPS-PARTICIPANT"
        if not any(self._holds(role, c, PROPOSED_REMOVE_NEEDS_CAPABILITY) for c in wanted):
            raise _not_allowed(Refusal(f"role {role} may not propose this Remove", requirement))
