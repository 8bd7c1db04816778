"""The hub's rules for commits (§5.3, room-policy-04): the committer, the cached proposals it must carry,
the room policy over the whole commit, the committer's GroupInfo and the Welcome's routes.

A mixin of :class:`~reference_peer.room.hub.HubRoom`: methods only, every attribute lives on the room."""

from __future__ import annotations

from ..mls import HubView, MLSError, WrongEpoch
from ..mls.crypto import vl
from ..mls.group import AppliedProposal, get_extension, set_extension
from ..mls.leaf import key_package_ref
from ..mls.tree import RatchetTree as TreeState
from ..overrides import Step
from ..wire.mimi import COMPONENT_PARTICIPANT_LIST, GroupInfoRepresentation, UpdateResponseCode, UpdateRoomResponse
from ..wire.mls import ExtensionType, GroupInfo, MLSMessage, ProposalOrRefType, ProposalType, SenderType
from ..wire.ratchet_tree_options import RatchetTreePresence, RatchetTreeRepresentation
from ..wire.room_policy import ROLE_INDEX_BANNED, ROLE_INDEX_NON_PARTICIPANT, Capability
from . import participants as plist_mod
from .hub_records import HOSTED_ROOMS, FanoutPlan, _not_allowed, _Refused, update_response
from .hub_steps import (
    ACCEPT_AUTHORIZED_ADD,
    ACCEPT_AUTHORIZED_PLIST_CHANGES,
    ACCEPT_EXTERNAL_JOIN,
    ADD_CLIENTS_WITH_ADDITION_ONLY,
    ALLOW_OWN_CLIENT_REMOVAL,
    BASE_POLICY_NEEDS_MEMBERSHIP_STYLE,
    COMMITTED_KICK_NEEDS_CAPABILITY,
    COMMITTED_OWN_ADD_NEEDS_CAPABILITY,
    EXTERNAL_JOIN_NEEDS_ADD_OWN_CLIENT,
    EXTERNAL_JOIN_REFUSES_DEPARTING_USER,
    KEEP_HUB_IN_EXTERNAL_SENDERS,
    OWN_CLIENT_REMOVAL_NEEDS_CAPABILITY,
    PARENT_STRICT_SUBSET,
    PARTIAL_GROUPINFO_JOINER_SIGNS,
    REFUSE_REMOVED_MEMBER_COMMIT,
    REFUSE_SUPERSEDED_EPOCH_COMMIT,
    REQUIRE_ROLE_DEFINITIONS_CAPABILITY,
    TAKE_COMMITTERS_GROUPINFO,
)
from .naming import domain_of_uri, user_of_credential
from .participants import ChangeKind, ParticipantChange, ParticipantListError
from .policy import COMPONENT_BASE_POLICY, COMPONENT_ROLES, PolicyError, Refusal, RoomPolicy


class CommitRules:
    """The rules a commit passes before the room moves to its epoch."""

    def _handle_commit(self, sender_domain: str, bundle: object, now: int) -> tuple[UpdateRoomResponse, FanoutPlan]:
        msg: MLSMessage = bundle.proposalOrCommit  # type: ignore[attr-defined]
        content = msg.public_message.content
        commit = content.commit
        old = self.view
        external = content.sender.sender_type == SenderType.new_member_commit
        joiner_user = None
        if external:
            if commit.path is None:
                raise _Refused(UpdateResponseCode.invalidProposal, "an external commit without an UpdatePath")
            joiner_user = user_of_credential(commit.path.leaf_node.credential, self.overrides)
        committer_kind, committer_user = self._actor(old, content.sender, new_member_user=joiner_user)
        if committer_kind in ("hub", "provider"):
            raise _not_allowed(Refusal("servers never commit", "PROTO-ROOMSTATE-ONLY-CLIENTS-COMMIT"))
        if committer_user is None:
            raise _not_allowed(
                Refusal("the committer's credential names no MIMI user", "PROTO-PLIST-ONE-ENTRY-PER-USER")
            )
        if domain_of_uri(committer_user) != sender_domain:
            raise _not_allowed(
                Refusal(
                    f"a commit by a {domain_of_uri(committer_user)} client sent by {sender_domain}",
                    "PROTO-ROOMSTATE-PUBLICMESSAGE-AUTH",
                )
            )
        old_roles = self.roles()
        departing = self.departing_users()
        if not external and not self.overrides.departs(REFUSE_REMOVED_MEMBER_COMMIT) and (
            committer_user in departing
            or not self.policy.may_be_active(old_roles.get(committer_user, ROLE_INDEX_NON_PARTICIPANT))
        ):
            raise _not_allowed(
                Refusal("a removed or banned participant's client may not commit", "PROTO-REMOVAL-BLOCK-COMMITS")
            )
        # Cached proposals that must be in this commit (self-leave, the hub's own): PROTO-UPDATE-SELF-LEAVE-CACHED.
        by_ref = {bytes(p.reference) for p in commit.proposals if p.type == ProposalOrRefType.reference}
        missing = [e for e in self.pending if e.required and e.ref not in by_ref]
        if external and self._cutover_pending():
            raise _not_allowed(
                Refusal("an external commit while the cut-over is pending", "EXT-HUBXFER-CUTOVER-INCLUDES-PENDING")
            )
        if missing and not external:
            raise _not_allowed(
                "the commit omits required pending proposals: "
                + "; ".join(f"{e.ref.hex()[:16]} ({e.why_required})" for e in missing)
            )
        work = old.copy()
        try:
            received = work.process(msg.encode())
        except WrongEpoch as exc:
            raise _Refused(UpdateResponseCode.wrongEpoch, str(exc)) from None
        except MLSError as exc:
            raise _Refused(UpdateResponseCode.invalidProposal, f"invalid commit: {type(exc).__name__}: {exc}") from None
        if external:
            self._authorize_external_join(committer_user, old_roles, received.applied)
            self._refuse_external_hub_update(received.applied)
            self.overrides.hook(ACCEPT_EXTERNAL_JOIN, self, committer_user)  # a fault's hook may refuse (raises)
        new_roles = self._check_commit_policy(old, work, committer_user, received.applied)
        transition = self._check_hub_component_commit(old, work, received.applied)
        group_info = self._group_info_from_bundle(bundle, work, content, msg)
        welcome_routes = self._welcome_routes(bundle, received.applied)
        self.overrides.hook(ACCEPT_AUTHORIZED_ADD, self, sender_domain, received.applied)  # a fault's hook may refuse (raises)
        # Accepted: swap in the new state.
        if self.overrides.departs(REFUSE_SUPERSEDED_EPOCH_COMMIT):
            self._fault_previous_view = old
        before_providers = self.active_providers(old)
        self.view = work
        self.group_info = group_info
        self.policy = RoomPolicy.from_components(work.app_data(), self.overrides)
        carried = [e for e in self.pending if e.required and e.ref not in by_ref] if external else []
        self.pending = []
        self._remember_leaves()
        gone = {u for u in old_roles if u not in new_roles or new_roles[u] == ROLE_INDEX_BANNED}
        self.removed_users = (self.removed_users | gone) - {u for u, r in new_roles.items() if r != ROLE_INDEX_BANNED}
        self.removed_users -= self.active_users()
        # After the cut-over commit A accepts nothing more and proposes nothing for E_c (section 6.3).
        hub_proposals = [] if transition == "cutover" else self._hub_followups(now, before_providers, carried, old)
        self._after_hub_transition(transition, old)
        plan = self._plan_commit(msg, bundle.welcome, welcome_routes, hub_proposals, before_providers, now)
        return update_response(UpdateResponseCode.success, accepted=now), plan

    def _authorize_external_join(
        self, user: bytes, old_roles: dict[bytes, int], applied: list[AppliedProposal]
    ) -> None:
        """A new client of an existing participant joins by external commit (PROTO-GROUPINFO-NEW-DEVICE-JOIN)
        only with canAddOwnClient (POLICY-CAP-ADD-OWN-CLIENT); a banned or departed user cannot, nor a user whose
        removal is accepted but not yet committed: its new client's external commit is a Commit of one of its
        clients (PROTO-REMOVAL-BLOCK-COMMITS)."""
        role = old_roles.get(user, ROLE_INDEX_NON_PARTICIPANT)
        if self._departing_joiner(user) or not self.policy.may_be_active(role):
            raise _not_allowed(
                Refusal(
                    "an external join by a user who is not an active-capable participant", "POLICY-CAP-ADD-OWN-CLIENT"
                )
            )
        if not self.overrides.departs(EXTERNAL_JOIN_NEEDS_ADD_OWN_CLIENT) and not self.policy.has(
            role, Capability.canAddOwnClient
        ):
            raise _not_allowed(Refusal(f"role {role} lacks canAddOwnClient", "POLICY-CAP-ADD-OWN-CLIENT"))
        for entry in applied:  # resync: an external commit may only remove the joiner's own prior client
            if entry.proposal.proposal_type == ProposalType.remove:
                target = self.view.tree.leaf(entry.proposal.remove.removed)
                if target is None or user_of_credential(target.credential, self.overrides) != user:
                    raise _not_allowed(
                        Refusal("an external commit removes another user's client", "POLICY-CAP-REMOVE-OWN-CLIENT")
                    )

    def _departing_joiner(self, user: bytes) -> bool:
        """Whether an external joiner's user is being removed or banned (PROTO-REMOVAL-BLOCK-COMMITS; a fault
        departing from the step lets it join). Any other participant's new client may join
        (PROTO-GROUPINFO-NEW-DEVICE-JOIN)."""
        return user in self.departing_users() and not self.overrides.departs(EXTERNAL_JOIN_REFUSES_DEPARTING_USER)

    def _check_commit_policy(
        self, old: HubView, new: HubView, committer: bytes, applied: list[AppliedProposal]
    ) -> dict[bytes, int]:
        """Room-policy rules over the whole commit; returns the new roles. Raises _Refused. An authorized commit
        passes: adds (POLICY-CAP-ADD-PARTICIPANT-CLIENTS, POLICY-CAP-ADD-OWN-CLIENT), removals
        (POLICY-CAP-KICK-KEEPS-PARTICIPANT, POLICY-CAP-REMOVE-PARTICIPANT-NO-CLIENTS-LEFT) and the hub kept in
        external_senders (PROTO-EXTSENDERS-HUB-CERT)."""
        old_roles = self._roles_of(old)
        try:
            new_plist = self._plist_of(new)
        except ParticipantListError as exc:
            raise _Refused(UpdateResponseCode.invalidProposal, str(exc)) from None
        new_roles = plist_mod.roles_by_user(new_plist)
        try:
            new_policy = RoomPolicy.from_components(new.app_data(), self.overrides)
        except PolicyError as exc:
            raise _not_allowed(f"the commit leaves an unusable policy: {exc}") from None
        departing = self.departing_users()
        changes = self._authorize_app_data_updates(old, committer, applied, old_roles, departing)
        self._authorize_membership_operations(
            old, new, committer, applied, old_roles, new_roles, new_policy, changes, departing
        )
        # The resulting group: no clients of users removed, banned or inactive-only (all removed in the same commit).
        refusal = self._check_members(new, new_roles, new_policy)
        if refusal is not None:
            raise _not_allowed(refusal)
        refusal = self.policy.check_constraints(
            old_roles, new_roles, self.active_users(old), self.active_users(new), len(new.members()),
            overrides=self.overrides,
        )
        if refusal is not None:
            raise _not_allowed(refusal)
        refusal = self._parent_subset_refusal(old_roles, new_roles)
        if refusal is not None:
            raise _not_allowed(refusal)
        if not self.overrides.departs(KEEP_HUB_IN_EXTERNAL_SENDERS) and not any(
            bytes(s.signature_key) == bytes(self.identity.external_sender.signature_key) for s in new.external_senders()
        ):
            raise _not_allowed(Refusal("the hub is missing from external_senders", "PROTO-EXTSENDERS-HUB-CERT"))
        return new_roles

    def _authorize_app_data_updates(
        self, old: HubView, committer: bytes, applied: list[AppliedProposal], old_roles: dict[bytes, int],
        departing: set[bytes],
    ) -> list[ParticipantChange]:
        """The commit's AppDataUpdates, each authorized for its proposer: participant-list changes one by one
        (PROTO-PLIST-CHANGES-AUTHORIZED-SEPARATELY), roles_list and base policy by capability, never a roles_list
        update with participant-list changes. Returns the participant-list changes. Raises _Refused."""
        plist = self._plist_of(old)
        touched: set[bytes] = set()
        changes: list[ParticipantChange] = []
        policy_changed = False
        for entry in applied:
            p = entry.proposal
            if p.proposal_type == ProposalType.app_data_update:
                cid = p.app_data_update.component_id
                kind, actor = self._actor(old, entry.sender, new_member_user=committer)
                actor_role = old_roles.get(actor, ROLE_INDEX_NON_PARTICIPANT) if actor is not None else None
                if cid == COMPONENT_PARTICIPANT_LIST:
                    try:
                        plist, more = plist_mod.apply_update(
                            plist, plist_mod.decode_update(p.app_data_update.update or b""), touched
                        )
                    except ParticipantListError as exc:
                        raise _Refused(
                            UpdateResponseCode.invalidProposal,
                            f"{exc} [{exc.requirement}]",
                            invalid=[entry.ref] if entry.ref else [],
                        ) from None
                    for change in more:
                        self._authorize_plist_change(
                            kind, actor, actor_role or ROLE_INDEX_NON_PARTICIPANT, change, departing
                        )
                    self.overrides.hook(ACCEPT_AUTHORIZED_PLIST_CHANGES, self, more)  # a fault's hook may refuse (raises)
                    changes.extend(more)
                elif cid == COMPONENT_ROLES:
                    policy_changed = True
                    if (actor_role is None or not self.policy.has(actor_role, Capability.canChangeRoleDefinitions)) \
                            and not self.overrides.departs(REQUIRE_ROLE_DEFINITIONS_CAPABILITY):
                        raise _not_allowed(
                            Refusal(
                                "roles_list changed without canChangeRoleDefinitions",
                                "POLICY-CAP-CHANGE-ROLE-DEFINITIONS",
                            )
                        )
                elif cid == COMPONENT_BASE_POLICY:
                    if actor_role is None or not self._holds(
                        actor_role, Capability.canChangeRoomMembershipStyle, BASE_POLICY_NEEDS_MEMBERSHIP_STYLE
                    ):
                        raise _not_allowed(
                            Refusal(
                                "base policy changed without canChangeRoomMembershipStyle",
                                "POLICY-CAP-CHANGE-MEMBERSHIP-STYLE",
                            )
                        )
        if policy_changed and changes:
            raise _not_allowed(
                Refusal("a roles_list update with participant-list changes", "POLICY-ROLE-UPDATE-NOT-WITH-PLIST")
            )
        return changes

    def _authorize_membership_operations(
        self, old: HubView, new: HubView, committer: bytes, applied: list[AppliedProposal],
        old_roles: dict[bytes, int], new_roles: dict[bytes, int], new_policy: RoomPolicy,
        changes: list[ParticipantChange], departing: set[bytes],
    ) -> None:
        """The commit's MLS membership operations (Add, Remove, SelfRemove, GroupContextExtensions) against the
        participant list and the proposers' capabilities. Raises _Refused."""
        changed_users = {c.user: c for c in changes}
        for entry in applied:
            p = entry.proposal
            ptype = p.proposal_type
            kind, actor = self._actor(old, entry.sender, new_member_user=committer)
            if ptype == ProposalType.add:
                target = user_of_credential(p.add.key_package.leaf_node.credential, self.overrides)
                if target is None or target not in new_roles:
                    raise _not_allowed(
                        Refusal(
                            "an Add for a user not in the participant list (add the user first or in the same commit)",
                            "PROTO-UPDATE-ADD-PLIST-FIRST",
                        )
                    )
                if not new_policy.may_be_active(new_roles[target]):
                    raise _not_allowed(
                        Refusal(
                            f"role {new_roles[target]} may have no clients in the group", "POLICY-ROLE-MAX-ACTIVE-ZERO"
                        )
                    )
                added_now = target in changed_users and changed_users[target].kind is ChangeKind.add
                if self.overrides.departs(ADD_CLIENTS_WITH_ADDITION_ONLY):  # a fault: any change of the entry
                    added_now = target in changed_users
                if added_now or kind == "hub":
                    continue  # POLICY-CAP-ADD-PARTICIPANT-CLIENTS
                actor_role = (
                    old_roles.get(actor, ROLE_INDEX_NON_PARTICIPANT)
                    if actor is not None
                    else ROLE_INDEX_NON_PARTICIPANT
                )
                if actor == target:
                    if not self._holds(actor_role, Capability.canAddOwnClient, COMMITTED_OWN_ADD_NEEDS_CAPABILITY):
                        raise _not_allowed(
                            Refusal(f"role {actor_role} lacks canAddOwnClient", "POLICY-CAP-ADD-OWN-CLIENT")
                        )
                elif not self.policy.has(actor_role, Capability.canAddParticipant):
                    raise _not_allowed(
                        Refusal(
                            f"role {actor_role} may not add clients of another user",
                            "POLICY-CAP-ADD-PARTICIPANT-CLIENTS",
                        )
                    )
            elif ptype in (ProposalType.remove, ProposalType.self_remove):
                leaf_index = p.remove.removed if ptype == ProposalType.remove else entry.sender.leaf_index
                leaf = old.tree.leaf(leaf_index)
                target = user_of_credential(leaf.credential, self.overrides) if leaf is not None else None
                change = changed_users.get(target) if target is not None else None
                if change is not None and change.to_role in (ROLE_INDEX_NON_PARTICIPANT, ROLE_INDEX_BANNED):
                    continue  # part of removing or banning the user
                if kind == "hub" or (kind == "new_member" and target == actor):
                    continue
                if (
                    kind == "provider"
                    and target is not None
                    and actor is not None
                    and domain_of_uri(target) == domain_of_uri(actor)
                ):
                    continue  # a follower removing its own user's client (e.g. a lost device)
                actor_role = (
                    old_roles.get(actor, ROLE_INDEX_NON_PARTICIPANT)
                    if actor is not None
                    else ROLE_INDEX_NON_PARTICIPANT
                )
                if actor is not None and actor == target:
                    if self.overrides.departs(ALLOW_OWN_CLIENT_REMOVAL) or not (
                        self._holds(actor_role, Capability.canRemoveOwnClient, OWN_CLIENT_REMOVAL_NEEDS_CAPABILITY)
                        or actor in departing
                    ):
                        raise _not_allowed(
                            Refusal(f"role {actor_role} lacks canRemoveOwnClient", "POLICY-CAP-REMOVE-OWN-CLIENT")
                        )
                elif not self._holds(actor_role, Capability.canKick, COMMITTED_KICK_NEEDS_CAPABILITY):
                    raise _not_allowed(
                        Refusal(
                            f"role {actor_role} may not remove another user's client (canKick)",
                            "POLICY-CAP-KICK-KEEPS-PARTICIPANT",
                        )
                    )
            elif ptype == ProposalType.group_context_extensions and kind != "hub" \
                    and not self.overrides.departs(KEEP_HUB_IN_EXTERNAL_SENDERS):
                if not any(
                    bytes(s.signature_key) == bytes(self.identity.external_sender.signature_key)
                    for s in new.external_senders()
                ):
                    raise _not_allowed(
                        Refusal("the commit drops the hub from external_senders", "PROTO-EXTSENDERS-HUB-CERT")
                    )

    def _holds(self, role: int, capability: Capability, rule: Step) -> bool:
        """Whether ``role`` holds ``capability`` where ``rule`` asks for it (a fault departing from ``rule`` deems
        it held)."""
        return self.overrides.departs(rule) or self.policy.has(role, capability)

    def _parent_subset_refusal(self, old_roles: dict[bytes, int], new_roles: dict[bytes, int]) -> Refusal | None:
        """POLICY-BASE-PARENT-STRICT-SUBSET: a user who enters a parent-dependent room must be a participant
        of its parent (hosted here). The reference hub does not cascade removals from the parent."""
        if self.parent_room is None or self.overrides.departs(PARENT_STRICT_SUBSET):
            return None
        outside = (ROLE_INDEX_NON_PARTICIPANT, ROLE_INDEX_BANNED)
        parent = HOSTED_ROOMS.get(self.identity.domain, {}).get(self.parent_room)
        in_parent = set() if parent is None else {u for u, r in parent.roles().items() if r not in outside}
        for user, role in new_roles.items():
            if role not in outside and old_roles.get(user, ROLE_INDEX_NON_PARTICIPANT) in outside \
                    and user not in in_parent:
                return Refusal(
                    f"{user.decode(errors='replace')} is not a participant of the parent room {self.parent_room}",
                    "POLICY-BASE-PARENT-STRICT-SUBSET",
                )
        return None

    def _group_info_from_bundle(self, bundle: object, new: HubView, content: object, msg: MLSMessage) -> GroupInfo:
        """The committer's GroupInfo for the new epoch (POLICY-OPS-COMMITTER-PROVIDES-GROUPINFO), full or
        rebuilt from a PartialGroupInfo (PROTO-UPDATE-PARTIAL-GROUPINFO); it must match the hub's view."""
        option = bundle.groupInfoOption  # type: ignore[attr-defined]
        if option.representation == GroupInfoRepresentation.full:
            info = option.groupInfo
        elif option.representation == GroupInfoRepresentation.partial:
            partial = option.partialGroupInfo
            exts = list(partial.group_info_extensions)
            if (
                partial.ratchet_tree_presence in (RatchetTreePresence.present, RatchetTreePresence.added)
                and get_extension(exts, ExtensionType.ratchet_tree) is None
            ):
                exts = set_extension(exts, ExtensionType.ratchet_tree, new.tree.encode())
            signer = self._committer_leaf(new, content, PARTIAL_GROUPINFO_JOINER_SIGNS)
            info = GroupInfo(
                group_context=new.context,
                extensions=exts,
                confirmation_tag=bytes(msg.public_message.auth.confirmation_tag),
                signer=signer,
                signature=bytes(partial.signature),
            )
        else:
            raise _Refused(UpdateResponseCode.invalidProposal, "groupInfoOption has no GroupInfo")
        if info.group_context.encode() != new.context.encode():
            raise _Refused(UpdateResponseCode.invalidProposal, "the GroupInfo is not for the epoch this commit starts")
        signer_leaf = new.tree.leaf(info.signer)
        tbs = info.encode()[: -len(vl(bytes(info.signature)))]
        if signer_leaf is None or not new.suite.verify_with_label(
            signer_leaf.signature_key, "GroupInfoTBS", tbs, bytes(info.signature)
        ):
            raise _Refused(UpdateResponseCode.invalidProposal, "the GroupInfo signature does not verify")
        self.overrides.hook(TAKE_COMMITTERS_GROUPINFO, self, info)  # a fault's hook may refuse (raises)
        tree_option = bundle.ratchetTreeOption  # type: ignore[attr-defined]
        if tree_option.representation == RatchetTreeRepresentation.full:
            try:
                given = TreeState.from_wire(new.suite, tree_option.ratchet_tree)
            except Exception as exc:  # a tree that does not even load is the committer's defect
                raise _Refused(UpdateResponseCode.invalidProposal, f"ratchetTreeOption does not load: {exc}") from None
            if given.tree_hash() != bytes(new.context.tree_hash):
                raise _Refused(UpdateResponseCode.invalidProposal, "ratchetTreeOption is not the new epoch's tree")
        return info

    def _committer_leaf(self, new: HubView, content: object, joiner_signs: Step) -> int:
        """The leaf that signed the committer's GroupInfo: the sender's, or an external joiner's new leaf (a
        fault's hook at ``joiner_signs`` names another leaf's signature key instead)."""
        sender = content.sender  # type: ignore[attr-defined]
        if sender.sender_type == SenderType.member:
            return sender.leaf_index
        path_key = bytes(content.commit.path.leaf_node.signature_key)  # type: ignore[attr-defined]
        index = new.find_member(self.overrides.hook(joiner_signs, new) or path_key)
        return index if index is not None else 0

    def _welcome_routes(self, bundle: object, applied: list[AppliedProposal]) -> set[str]:
        """The providers owning the KeyPackageRefs in the Welcome's secrets (PROTO-KEYMAT-KPREF-HUB-PROVIDER):
        recorded when the key material was relayed, else the domain of the added client."""
        welcome = bundle.welcome  # type: ignore[attr-defined]
        adds = {}
        suite = self.view.suite
        for entry in applied:
            if entry.proposal.proposal_type == ProposalType.add:
                kp = entry.proposal.add.key_package
                adds[key_package_ref(suite, kp)] = kp
        if welcome is None:
            if adds:
                raise _Refused(UpdateResponseCode.invalidProposal, "a commit with Adds but no Welcome")
            return set()
        routes = set()
        for secret in welcome.secrets:
            ref = bytes(secret.new_member)
            if ref not in adds:
                raise _Refused(
                    UpdateResponseCode.invalidProposal, "the Welcome names a KeyPackage this commit does not add"
                )
            domain = self.kp_providers.get(ref) or domain_of_uri(bytes(adds[ref].leaf_node.credential.identity or b""))
            if domain is not None:
                routes.add(domain)
        return routes
