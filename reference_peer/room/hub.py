"""The hub's state and rules for one room (draft-ietf-mimi-protocol-06 §3, §5.3-§5.6, §7 with
room-policy-04): no HTTP here. The handlers decode nothing themselves: they pass the request
bytes, the authenticated sender domain and the time, and send what the returned
:class:`FanoutPlan` says.

State lives where the draft puts it: the participant list (0x0022), roles_list (0x0025) and
base_room_policy (0x0027) in the GroupContext app_data_dictionary, read back from the
:class:`~reference_peer.mls.HubView` after every commit, so that the hub's view and the clients'
views are computed by the same code (:func:`participants.app_data_handler`).

Every refusal is an answer, never an exception: decode and MLS errors map to the response codes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from .. import faults as _faults
from ..faults import active
from ..faults import removal as removal_faults
from ..faults import transfer_cutover as cutover_faults
from ..faults import transfer_new_hub as newhub_faults
from ..faults import transfer_old_hub as old_hub_faults
from ..faults import transfer_public_commits as public_commits_faults
from ..faults import variants_order as order_faults
from ..faults.fanout import (
    ACCEPT_FUTURE_MESSAGE,
    ACCEPT_STALE_MESSAGE,
    SECOND_COMMIT_FOR_EPOCH,
    TIMESTAMP_NOT_ACCEPTANCE,
    WELCOME_TO_EVERY_PROVIDER,
)
from ..faults.multidevice import NEW_DEVICE_GROUPINFO_REFUSED, OWN_CLIENT_REMOVAL_REFUSED, SINGLE_DEVICE_IGNORED
from ..faults.parent_rooms import DEPENDENT_ROOM_ADMITS_OUTSIDERS
from ..mls import HubView, MLSError, WrongEpoch, external_proposal, gce_proposal
from ..mls.crypto import cipher_suite, vl
from ..mls.group import (
    AppliedProposal,
    app_data_dictionary_extension,
    app_data_update_proposal,
    decode_message,
    external_senders_extension,
    get_extension,
    proposal_ref,
    remove_proposal,
    required_capabilities_extension,
    set_extension,
)
from ..mls.leaf import key_package_ref
from ..mls.tree import RatchetTree as TreeState
from ..overrides import BuiltWith
from ..wire.codec import DecodeError, EncodeError
from ..wire.hub_transfer import MIMI_HUB_COMPONENT_ID, HubRedirect, HubState
from ..wire.identity import IdentifierUri
from ..wire.mimi import (
    COMPONENT_PARTICIPANT_LIST,
    FanoutMessage,
    GroupInfoCode,
    GroupInfoRatchetTreeTBE,
    GroupInfoRepresentation,
    GroupInfoRequest,
    GroupInfoResponse,
    ParticipantListData,
    PendingProposal,
    Protocol,
    SubmitMessageRequest,
    SubmitMessageResponse,
    SubmitResponseCode,
    UpdateRequest,
    UpdateResponseCode,
    UpdateRoomResponse,
)
from ..wire.mls import (
    ContentType,
    Extension,
    ExtensionType,
    ExternalSender,
    GroupInfo,
    HPKECiphertext,
    MLSMessage,
    ProposalOrRefType,
    ProposalType,
    SenderType,
    WireFormat,
)
from ..wire.ratchet_tree_options import RatchetTreeOption, RatchetTreePresence, RatchetTreeRepresentation
from ..wire.room_policy import ROLE_INDEX_BANNED, ROLE_INDEX_NON_PARTICIPANT, Bool, Capability
from . import participants as plist_mod
from .naming import domain_of_uri, user_of_credential, user_of_uri
from .participants import ChangeKind, ParticipantChange, ParticipantListError
from .policy import COMPONENT_BASE_POLICY, COMPONENT_ROLES, PolicyError, Refusal, RoomPolicy
from .transfer import (
    BEGIN_COMMITTED,
    CUTOVER_PROPOSED,
    MOVED,
    OutgoingTransfer,
    hub_of_record,
)

MLS10 = {"protocol": Protocol.mls10}
# Room-policy-04 §5 (parent-dependent rooms): the rooms each provider hosts, by its domain, so that a
# dependent room can read its parent's participant list. Registered by the provider's control backend
# (ReferenceBackend); never persisted.
HOSTED_ROOMS: dict[str, dict] = {}
GROUPINFO_LABEL = "GroupInfo and ratchet_tree encryption"
# Leaf maps kept for recognising commits and proposals from removed clients (their stale epochs).
LEAF_HISTORY_EPOCHS = 16


@dataclasses.dataclass(frozen=True)
class HubIdentity:
    """The hub provider's name and its external-sender key (also the GroupInfoResponse signer)."""

    domain: str
    signature_priv: bytes
    external_sender: ExternalSender


@dataclasses.dataclass
class FanoutPlan:
    """What to send after an accepted request: per provider domain, FanoutMessages in order
    (PROTO-FANOUT-ORDERED). The hub's own domain appears like any other provider with participants."""

    deliveries: dict[str, list[FanoutMessage]] = dataclasses.field(default_factory=dict)

    def add(self, domain: str, message: FanoutMessage) -> None:
        self.deliveries.setdefault(domain, []).append(message)

    def domains(self) -> set[str]:
        return set(self.deliveries)

    def messages_for(self, domain: str) -> list[FanoutMessage]:
        return list(self.deliveries.get(domain, []))

    def body_for(self, domain: str) -> bytes:
        """The /notify body for one provider: the FanoutMessages concatenated (§5.5)."""
        return b"".join(m.encode() for m in self.deliveries.get(domain, []))


@dataclasses.dataclass
class PendingEntry:
    """A proposal the hub accepted in the current epoch (§5.6 PendingProposal)."""

    message: bytes
    ref: bytes
    accepted: int
    sender_user: bytes | None
    proposal_type: int
    required: bool = False  # the next commit must include it by reference
    why_required: str = ""


class _Refused(Exception):
    """Internal: carries the response to give."""

    def __init__(self, code: UpdateResponseCode, description: str, *, invalid: Iterable[bytes] = ()) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.invalid = list(invalid)


def _not_allowed(refusal: Refusal | str) -> _Refused:
    return _Refused(UpdateResponseCode.notAllowed, str(refusal))


def update_response(
    code: UpdateResponseCode, description: str = "", *, accepted: int = 0, epoch: int = 0, invalid: Iterable[bytes] = ()
) -> UpdateRoomResponse:
    fields: dict[str, object] = {"responseCode": code, "errorDescription": description}
    if code == UpdateResponseCode.success:
        fields["accepted_timestamp"] = accepted
    elif code == UpdateResponseCode.wrongEpoch:
        fields["currentEpoch"] = epoch
    elif code == UpdateResponseCode.invalidProposal:
        fields["invalidProposals"] = list(invalid)
    return UpdateRoomResponse(**fields)


def submit_response(code: SubmitResponseCode, *, accepted: int = 0, epoch: int = 0) -> SubmitMessageResponse:
    fields: dict[str, object] = {"protocol": Protocol.mls10, "statusCode": code}
    if code == SubmitResponseCode.accepted:
        fields.update(accepted_timestamp=accepted, frank=None)
    elif code == SubmitResponseCode.epochTooOld:
        fields["currentEpoch"] = epoch
    return SubmitMessageResponse(**fields)


def group_info_refusal(room_id: bytes, code: GroupInfoCode = GroupInfoCode.notAuthorized) -> GroupInfoResponse:
    """The answer for a requester who may not see the room, and for an unknown room (notAuthorized
    rather than noSuchRoom, so that room existence does not leak: PROTO-GROUPINFO-NO-SUCH-ROOM)."""
    return GroupInfoResponse(version=Protocol.mls10, room_id=bytes(room_id), status=code)


def room_extensions(
    hub: ExternalSender,
    creator_user: bytes,
    creator_role: int,
    policy: RoomPolicy,
    *,
    extra_components: dict[int, bytes] | None = None,
) -> list[Extension]:
    """The GroupContext extensions a room's creator puts in the new group: external_senders with the
    hub (PROTO-EXTSENDERS-PRESENT, PROTO-EXTSENDERS-HUB-CERT), the participant list with the creator,
    the policy components, and required capabilities for AppDataUpdate and SelfRemove."""
    plist = ParticipantListData(
        participants=[plist_mod.UserRolePair(user=bytes(creator_user), role_index=creator_role)]
    )
    components = {int(COMPONENT_PARTICIPANT_LIST): plist.encode(), **policy.components(), **(extra_components or {})}
    return [
        external_senders_extension([hub]),
        required_capabilities_extension(
            extension_types=[int(ExtensionType.app_data_dictionary)],
            proposal_types=[int(ProposalType.app_data_update), int(ProposalType.self_remove)],
        ),
        app_data_dictionary_extension(components),
    ]


def sender_domain_of(uri: IdentifierUri) -> str | None:
    return domain_of_uri(bytes(uri.uri))


class HubRoom(BuiltWith):
    """The hub's state for one room and the rules it enforces on update, submitMessage and groupInfo."""

    # Hub-transfer extension state (class defaults, so rooms pickled before it load unchanged).
    transfer: OutgoingTransfer | None = None  # the transfer this hub started (old hub side)
    moved: HubRedirect | None = None  # set when the cut-over commit is accepted: the redirect answer
    last_accepted: int = 0  # the last accepted timestamp (a handoff's last_accepted_timestamp)
    min_timestamp: int = 0  # a new hub never accepts below the handoff's last_accepted_timestamp
    parent_room: str | None = None  # room-policy-04 §5: the parent of a parent-dependent room (set at creation)

    def __init__(
        self,
        room_uri: str,
        identity: HubIdentity,
        view: HubView,
        *,
        group_info: GroupInfo | None,
        provider_senders: dict[str, ExternalSender] | None = None,
    ) -> None:
        self.room_uri = room_uri
        self.identity = identity
        self.view = view
        plist_mod.install_handler(self.view)
        self.group_info = group_info
        # Follower providers' external-sender entries, added when their first user joins (§7.4 MAY).
        self.provider_senders = dict(provider_senders or {})
        self.pending: list[PendingEntry] = []
        self.kp_providers: dict[bytes, str] = {}
        self.removed_users: set[bytes] = set()
        self.leaf_history: dict[int, dict[int, bytes]] = {}
        self._remember_leaves()
        self.policy = RoomPolicy.from_components(self.view.app_data())
        self._check_room_state(self.view)

    # -- creation ---------------------------------------------------------------------------

    @classmethod
    def from_group_info(
        cls,
        room_uri: str,
        identity: HubIdentity,
        group_info: bytes,
        *,
        ratchet_tree: bytes | None = None,
        provider_senders: dict[str, ExternalSender] | None = None,
    ) -> HubRoom:
        """A room whose creator sent its first GroupInfo (and tree); PolicyError/MLSError if unusable."""
        view = HubView.from_group_info(group_info, ratchet_tree=ratchet_tree)
        return cls(
            room_uri,
            identity,
            view,
            group_info=decode_message(group_info).group_info,
            provider_senders=provider_senders,
        )

    @classmethod
    def from_group(
        cls,
        room_uri: str,
        identity: HubIdentity,
        group: object,
        provider_senders: dict[str, ExternalSender] | None = None,
    ) -> HubRoom:
        """A room created by one of the hub's local clients (its Group is at hand)."""
        info = decode_message(group.group_info(ratchet_tree=False)).group_info  # type: ignore[attr-defined]
        return cls(
            room_uri,
            identity,
            HubView.from_group(group),
            group_info=info,  # type: ignore[arg-type]
            provider_senders=provider_senders,
        )

    def _check_room_state(self, view: HubView) -> None:
        """The invariants of a usable room: the hub is an external sender and every member's user is
        an active-capable participant."""
        if not any(
            bytes(s.signature_key) == bytes(self.identity.external_sender.signature_key)
            for s in view.external_senders()
        ):
            raise PolicyError("the hub is not in external_senders (PROTO-EXTSENDERS-HUB-CERT)")
        refusal = self._check_members(view, self._roles_of(view))
        if refusal is not None:
            raise PolicyError(str(refusal))

    # -- views of the state -----------------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self.view.epoch

    @property
    def group_id(self) -> bytes:
        return bytes(self.view.group_id)

    @staticmethod
    def _plist_of(view: HubView) -> ParticipantListData:
        return plist_mod.decode_list(view.app_data().get(int(COMPONENT_PARTICIPANT_LIST)))

    def participant_list(self) -> ParticipantListData:
        return self._plist_of(self.view)

    def _roles_of(self, view: HubView) -> dict[bytes, int]:
        return plist_mod.roles_by_user(self._plist_of(view))

    def roles(self) -> dict[bytes, int]:
        """user URI -> role index, as committed."""
        return self._roles_of(self.view)

    @staticmethod
    def _leaf_users(view: HubView) -> dict[int, bytes | None]:
        return {index: user_of_credential(leaf.credential) for index, leaf in view.members()}

    def member_users(self) -> dict[int, bytes | None]:
        return self._leaf_users(self.view)

    def active_users(self, view: HubView | None = None) -> set[bytes]:
        return {u for u in self._leaf_users(view or self.view).values() if u is not None}

    def active_providers(self, view: HubView | None = None) -> set[str]:
        """Providers with at least one client in the group (PROTO-FANOUT-TO-ACTIVE-PROVIDERS)."""
        return {d for u in self.active_users(view) if (d := domain_of_uri(u)) is not None}

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

    def record_key_package(self, ref: bytes, provider_domain: str) -> None:
        """Remember which provider a relayed KeyPackage came from, to route its Welcome
        (PROTO-KEYMAT-KPREF-HUB-PROVIDER)."""
        self.kp_providers[bytes(ref)] = provider_domain

    # -- update -----------------------------------------------------------------------------

    def handle_update(self, sender_domain: str, request: bytes, now: int) -> tuple[UpdateRoomResponse, FanoutPlan]:
        """POST /update: a proposal (with moreProposals) or a commit (with Welcome, GroupInfo, tree)."""
        try:
            try:
                req = UpdateRequest.decode(request, scope=MLS10)
            except (DecodeError, EncodeError) as exc:
                raise _Refused(UpdateResponseCode.invalidProposal, f"malformed UpdateRequest: {exc}") from None
            bundle = req.bundle
            msg = bundle.proposalOrCommit
            if msg.public_message is None:
                raise _Refused(
                    UpdateResponseCode.invalidProposal,
                    "proposalOrCommit must be a PublicMessage [PROTO-UPDATE-HANDSHAKE-FRAMING]",
                )
            content = msg.public_message.content
            if bytes(content.group_id) != self.group_id:
                raise _Refused(UpdateResponseCode.invalidProposal, "the handshake is for another group")
            self._refuse_removed_sender(content)
            forked = getattr(self, "_fault_previous_view", None)  # fault accept-second-commit-for-epoch
            if (
                forked is not None and active(SECOND_COMMIT_FOR_EPOCH)
                and content.content_type == ContentType.commit and content.epoch == self.epoch - 1
            ):
                self.view, self.pending = forked, []
            if content.epoch != self.epoch:
                raise _Refused(
                    UpdateResponseCode.wrongEpoch,
                    f"handshake for epoch {content.epoch}, the room is at {self.epoch} [PROTO-UPDATE-WRONG-EPOCH]",
                )
            if content.content_type == ContentType.commit:
                return self._handle_commit(sender_domain, bundle, now)
            if content.content_type == ContentType.proposal:
                return self._handle_proposals(sender_domain, [msg, *bundle.moreProposals], bundle.moreProposals, now)
            raise _Refused(UpdateResponseCode.invalidProposal, "proposalOrCommit is neither a proposal nor a commit")
        except (MLSError, ParticipantListError, PolicyError, DecodeError, EncodeError) as exc:
            # Defence in depth: bad input that slipped past the specific checks is still an answer.
            refused = _Refused(UpdateResponseCode.invalidProposal, f"{type(exc).__name__}: {exc}")
        except _Refused as caught:
            refused = caught
        return update_response(
            refused.code, refused.description, epoch=self.epoch, invalid=refused.invalid
        ), FanoutPlan()

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
            if active(removal_faults.ACCEPT_REMOVED_MEMBER_COMMIT if kind == "commit"
                      else removal_faults.ACCEPT_REMOVED_MEMBER_PROPOSALS):
                return
            raise _not_allowed(
                Refusal(
                    f"a client of removed user {user.decode(errors='replace')} may not {kind}",
                    "PROTO-REMOVAL-BLOCK-COMMITS" if kind == "commit" else "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS",
                )
            )

    def _actor(
        self, view: HubView, sender: object, *, new_member_user: bytes | None = None
    ) -> tuple[str, bytes | None]:
        """('member'|'hub'|'provider'|'new_member', user or None) for a handshake sender. For a
        follower provider (an external sender other than the hub) the "user" is its provider URI."""
        st = sender.sender_type  # type: ignore[attr-defined]
        if st == SenderType.member:
            leaf = view.tree.leaf(sender.leaf_index)  # type: ignore[attr-defined]
            return "member", user_of_credential(leaf.credential) if leaf is not None else None
        if st == SenderType.external:
            senders = view.external_senders()
            index = sender.sender_index  # type: ignore[attr-defined]
            if index < len(senders) and bytes(senders[index].signature_key) == bytes(
                self.identity.external_sender.signature_key
            ):
                return "hub", None
            identity = senders[index].credential.identity if index < len(senders) else None
            return "provider", bytes(identity) if identity is not None else None
        return "new_member", new_member_user

    def _authorize_plist_change(
        self, kind: str, actor: bytes | None, actor_role: int, change: ParticipantChange, departing: set[bytes]
    ) -> None:
        """One participant-list action by one proposer (PROTO-PLIST-CHANGES-AUTHORIZED-SEPARATELY)."""
        if kind == "hub":
            return  # the hub's own regenerated removals
        if kind == "provider":
            # A follower acts only for its own users, and only to take them out (e.g. a deleted user).
            if (
                change.kind is ChangeKind.remove
                and actor is not None
                and domain_of_uri(change.user) == domain_of_uri(actor)
            ):
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
            raise _not_allowed(Refusal("a leaving user may only remove itself", "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS"))
        refusal = self.policy.authorize_change(actor, actor_role, change)
        if refusal is not None:
            raise _not_allowed(refusal)

    def _check_sender_domain(self, kind: str, actor: bytes | None, sender_domain: str) -> None:
        """The authenticated provider must be the one the handshake's signer belongs to."""
        if kind == "hub" and sender_domain != self.identity.domain:
            raise _not_allowed(
                Refusal(
                    f"{sender_domain} sent a proposal signed with the hub's key",
                    "PROTO-EXTSENDERS-AUTHENTICATE-PROPOSALS",
                )
            )
        if kind in ("member", "provider", "new_member") and actor is not None and domain_of_uri(actor) != sender_domain:
            raise _not_allowed(
                Refusal(
                    f"a handshake of {domain_of_uri(actor)} sent by {sender_domain}",
                    "PROTO-ROOMSTATE-PUBLICMESSAGE-AUTH",
                )
            )

    def _check_remove_proposal(self, view: HubView, kind: str, actor: bytes | None, proposal: object) -> None:
        """On acceptance (§7.1): a member's Remove of another user's client needs canKick or
        canRemoveParticipant; of its own client, canRemoveOwnClient or canRemoveSelf. A follower
        provider may remove only its own users' clients."""
        ptype = proposal.proposal_type  # type: ignore[attr-defined]
        if kind not in ("member", "provider") or actor is None or ptype != ProposalType.remove:
            return
        leaf = view.tree.leaf(proposal.remove.removed)  # type: ignore[attr-defined]
        target = user_of_credential(leaf.credential) if leaf is not None else None
        if kind == "provider":
            if target is None or domain_of_uri(target) != domain_of_uri(actor):
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
        if not any(self.policy.has(role, c) for c in wanted):
            raise _not_allowed(Refusal(f"role {role} may not propose this Remove", requirement))

    # -- proposals ----------------------------------------------------------------------------

    def _handle_proposals(
        self, sender_domain: str, messages: list[MLSMessage], more: list[MLSMessage], now: int
    ) -> tuple[UpdateRoomResponse, FanoutPlan]:
        work = self.view.copy()
        entries: list[PendingEntry] = []
        departing = self.departing_users()
        roles = self.roles()
        plist = self.participant_list()
        touched: set[bytes] = set()
        for entry in self.pending:  # the plist effect of proposals already accepted this epoch
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
            if ptype == ProposalType.self_remove and active(removal_faults.REFUSE_SELF_REMOVE):
                raise _not_allowed(Refusal("SelfRemove refused", "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS"))
            if kind == "new_member" and ptype == ProposalType.add:
                user = user_of_credential(proposal.add.key_package.leaf_node.credential)
            self._check_sender_domain(kind, user, sender_domain)
            if kind == "member" and user is not None and (user in departing or user in leaving_now):
                self._check_departing_proposal(work, user, proposal)
            self._check_remove_proposal(work, kind, user, proposal)
            self._check_hub_component_proposal(kind, proposal)
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
        for entry in entries if not active(removal_faults.FORGET_CACHED_LEAVE) else ():
            if entry.sender_user is not None and (entry.sender_user in leaving_now or entry.sender_user in departing):
                entry.required, entry.why_required = True, "self-leave [PROTO-UPDATE-SELF-LEAVE-CACHED]"
            elif entry.proposal_type == ProposalType.self_remove:
                entry.required, entry.why_required = True, "SelfRemove [POLICY-CAP-REMOVE-OWN-CLIENT]"
        if self._cutover_pending() and not active(cutover_faults.CUTOVER_OMITS_PENDING):
            for entry in entries:  # EXT-HUBXFER-CUTOVER-INCLUDES-PENDING
                entry.required, entry.why_required = True, "pending with the cut-over [EXT-HUBXFER-CUTOVER-INCLUDES-PENDING]"
        self.view = work
        self.pending.extend(entries)
        plan = FanoutPlan()
        head, *_ = messages
        fanout = FanoutMessage(timestamp=now, protocol=Protocol.mls10, message=head, moreProposals=list(more))
        for domain in sorted(self.active_providers() | self.transfer_fanout_domains()):
            plan.add(domain, fanout)  # PROTO-FANOUT-MOREPROPOSALS-SAME: moreProposals as received
        return update_response(UpdateResponseCode.success, accepted=now), plan

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

    def _check_departing_proposal(self, view: HubView, user: bytes, proposal: object) -> None:
        """A removed/leaving user's clients may only propose Remove/SelfRemove for their own user and
        their own removal from the list (PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS)."""
        ptype = proposal.proposal_type  # type: ignore[attr-defined]
        if ptype == ProposalType.self_remove or active(removal_faults.ACCEPT_REMOVED_MEMBER_PROPOSALS):
            return
        if ptype == ProposalType.remove:
            target = view.tree.leaf(proposal.remove.removed)  # type: ignore[attr-defined]
            if target is not None and user_of_credential(target.credential) == user:
                return
        if (
            ptype == ProposalType.app_data_update
            and proposal.app_data_update.component_id == COMPONENT_PARTICIPANT_LIST
        ):  # type: ignore[attr-defined]
            return  # its content is authorized change by change: only the user's own removal passes for a leaver
        raise _not_allowed(
            Refusal(
                f"a removed or leaving user may only propose its own removal, not {ptype.name}",
                "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS",
            )
        )

    def _ref_of(self, msg: MLSMessage) -> bytes:
        pub = msg.public_message
        try:
            return proposal_ref(self.view.suite, WireFormat.mls_public_message, pub.content, pub.auth)
        except (DecodeError, EncodeError, AttributeError, TypeError):
            return b""

    # -- commits ------------------------------------------------------------------------------

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
            joiner_user = user_of_credential(commit.path.leaf_node.credential)
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
        if not external and not active(removal_faults.ACCEPT_REMOVED_MEMBER_COMMIT) and (
            committer_user in departing
            or not self.policy.may_be_active(old_roles.get(committer_user, ROLE_INDEX_NON_PARTICIPANT))
        ):
            raise _not_allowed(
                Refusal("a removed or banned participant's client may not commit", "PROTO-REMOVAL-BLOCK-COMMITS")
            )
        # Cached proposals that must be in this commit (self-leave, the hub's own).
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
        new_roles = self._check_commit_policy(old, work, committer_user, received.applied)
        transition = self._check_hub_component_commit(old, work, received.applied)
        group_info = self._group_info_from_bundle(bundle, work, content, msg)
        welcome_routes = self._welcome_routes(bundle, received.applied)
        # Accepted: swap in the new state.
        if active(SECOND_COMMIT_FOR_EPOCH):
            self._fault_previous_view = old
        before_providers = self.active_providers(old)
        self.view = work
        self.group_info = group_info
        self.policy = RoomPolicy.from_components(work.app_data())
        carried = [e for e in self.pending if e.required and e.ref not in by_ref] if external else []
        self.pending = []
        self._remember_leaves()
        gone = {u for u in old_roles if u not in new_roles or new_roles[u] == ROLE_INDEX_BANNED}
        self.removed_users = (self.removed_users | gone) - {u for u, r in new_roles.items() if r != ROLE_INDEX_BANNED}
        self.removed_users -= self.active_users()
        # After the cut-over commit A accepts nothing more and proposes nothing for E_c (section 6.3).
        hub_proposals = [] if transition == "cutover" else self._hub_followups(now, before_providers, carried, old)
        self._after_hub_transition(transition, old)
        plan = FanoutPlan()
        stamp = order_faults.commit_stamp(now)  # now, unless the fault fanout-commit-stamped-late is on
        if stamp != now:  # under the fault, a handoff still names no less than a stamp sent
            self.last_accepted = max(self.last_accepted, stamp)
        fanout = FanoutMessage(
            timestamp=stamp,
            protocol=Protocol.mls10,
            message=msg,
            externalProposals=[decode_message(p.message) for p in hub_proposals],
        )
        # The removed user's provider too: removed clients SHOULD get their Commit (PROTO-FANOUT-REMOVED-GETS-COMMIT).
        notified = before_providers if not active(removal_faults.NO_COMMIT_TO_REMOVED_PROVIDER) else set()
        for domain in sorted(notified | self.active_providers() | self.transfer_fanout_domains()):
            plan.add(domain, fanout)
        welcome = bundle.welcome  # type: ignore[attr-defined]
        if welcome is not None:
            tree_option = RatchetTreeOption(
                representation=RatchetTreeRepresentation.full, ratchet_tree=work.tree.to_wire()
            )
            welcome_msg = MLSMessage(version=1, wire_format=WireFormat.mls_welcome, welcome=welcome)
            if active(WELCOME_TO_EVERY_PROVIDER):
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
        return update_response(UpdateResponseCode.success, accepted=now), plan

    def _authorize_external_join(
        self, user: bytes, old_roles: dict[bytes, int], applied: list[AppliedProposal]
    ) -> None:
        """A new client of an existing participant joins by external commit (PROTO-GROUPINFO-NEW-DEVICE-JOIN)
        only with canAddOwnClient (POLICY-CAP-ADD-OWN-CLIENT); a banned or departed user cannot."""
        role = old_roles.get(user, ROLE_INDEX_NON_PARTICIPANT)
        if user in self.departing_users() or not self.policy.may_be_active(role):
            raise _not_allowed(
                Refusal(
                    "an external join by a user who is not an active-capable participant", "POLICY-CAP-ADD-OWN-CLIENT"
                )
            )
        if not self.policy.has(role, Capability.canAddOwnClient):
            raise _not_allowed(Refusal(f"role {role} lacks canAddOwnClient", "POLICY-CAP-ADD-OWN-CLIENT"))
        for entry in applied:  # resync: an external commit may only remove the joiner's own prior client
            if entry.proposal.proposal_type == ProposalType.remove:
                target = self.view.tree.leaf(entry.proposal.remove.removed)
                if target is None or user_of_credential(target.credential) != user:
                    raise _not_allowed(
                        Refusal("an external commit removes another user's client", "POLICY-CAP-REMOVE-OWN-CLIENT")
                    )

    def _check_commit_policy(
        self, old: HubView, new: HubView, committer: bytes, applied: list[AppliedProposal]
    ) -> dict[bytes, int]:
        """Room-policy rules over the whole commit; returns the new roles. Raises _Refused."""
        old_roles = self._roles_of(old)
        try:
            new_plist = self._plist_of(new)
        except ParticipantListError as exc:
            raise _Refused(UpdateResponseCode.invalidProposal, str(exc)) from None
        new_roles = plist_mod.roles_by_user(new_plist)
        try:
            new_policy = RoomPolicy.from_components(new.app_data())
        except PolicyError as exc:
            raise _not_allowed(f"the commit leaves an unusable policy: {exc}") from None
        departing = self.departing_users()
        # 1. Participant-list changes, each authorized for the proposer (PROTO-PLIST-CHANGES-AUTHORIZED-SEPARATELY).
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
                    changes.extend(more)
                elif cid == COMPONENT_ROLES:
                    policy_changed = True
                    if actor_role is None or not self.policy.has(actor_role, Capability.canChangeRoleDefinitions):
                        raise _not_allowed(
                            Refusal(
                                "roles_list changed without canChangeRoleDefinitions",
                                "POLICY-CAP-CHANGE-ROLE-DEFINITIONS",
                            )
                        )
                elif cid == COMPONENT_BASE_POLICY:
                    if actor_role is None or not self.policy.has(actor_role, Capability.canChangeRoomMembershipStyle):
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
        changed_users = {c.user: c for c in changes}
        # 2. MLS membership operations against the participant list.
        for entry in applied:
            p = entry.proposal
            ptype = p.proposal_type
            kind, actor = self._actor(old, entry.sender, new_member_user=committer)
            if ptype == ProposalType.add:
                target = user_of_credential(p.add.key_package.leaf_node.credential)
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
                if added_now or kind == "hub":
                    continue  # POLICY-CAP-ADD-PARTICIPANT-CLIENTS
                actor_role = (
                    old_roles.get(actor, ROLE_INDEX_NON_PARTICIPANT)
                    if actor is not None
                    else ROLE_INDEX_NON_PARTICIPANT
                )
                if actor == target:
                    if not self.policy.has(actor_role, Capability.canAddOwnClient):
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
                target = user_of_credential(leaf.credential) if leaf is not None else None
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
                    if active(OWN_CLIENT_REMOVAL_REFUSED) or not (
                        self.policy.has(actor_role, Capability.canRemoveOwnClient) or actor in departing
                    ):
                        raise _not_allowed(
                            Refusal(f"role {actor_role} lacks canRemoveOwnClient", "POLICY-CAP-REMOVE-OWN-CLIENT")
                        )
                elif not self.policy.has(actor_role, Capability.canKick):
                    raise _not_allowed(
                        Refusal(
                            f"role {actor_role} may not remove another user's client (canKick)",
                            "POLICY-CAP-KICK-KEEPS-PARTICIPANT",
                        )
                    )
            elif ptype == ProposalType.group_context_extensions and kind != "hub":
                if not any(
                    bytes(s.signature_key) == bytes(self.identity.external_sender.signature_key)
                    for s in new.external_senders()
                ):
                    raise _not_allowed(
                        Refusal("the commit drops the hub from external_senders", "PROTO-EXTSENDERS-HUB-CERT")
                    )
        # 3. The resulting group: no clients of users removed, banned or inactive-only (all removed in the same commit).
        refusal = self._check_members(new, new_roles, new_policy)
        if refusal is not None:
            raise _not_allowed(refusal)
        refusal = self.policy.check_constraints(
            old_roles, new_roles, self.active_users(old), self.active_users(new), len(new.members())
        )
        if refusal is not None:
            raise _not_allowed(refusal)
        refusal = self._parent_subset_refusal(old_roles, new_roles)
        if refusal is not None:
            raise _not_allowed(refusal)
        if not any(
            bytes(s.signature_key) == bytes(self.identity.external_sender.signature_key) for s in new.external_senders()
        ):
            raise _not_allowed(Refusal("the hub is missing from external_senders", "PROTO-EXTSENDERS-HUB-CERT"))
        return new_roles

    def _parent_subset_refusal(self, old_roles: dict[bytes, int], new_roles: dict[bytes, int]) -> Refusal | None:
        """POLICY-BASE-PARENT-STRICT-SUBSET: a user who enters a parent-dependent room must be a participant
        of its parent (hosted here). The reference hub does not cascade removals from the parent."""
        if self.parent_room is None or active(DEPENDENT_ROOM_ADMITS_OUTSIDERS):
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

    def _check_members(
        self, view: HubView, roles: dict[bytes, int], policy: RoomPolicy | None = None
    ) -> Refusal | None:
        policy = policy or RoomPolicy.from_components(view.app_data())
        per_user: dict[bytes, int] = {}
        for index, user in self._leaf_users(view).items():
            if user is None:
                return Refusal(f"leaf {index} has no MIMI client identity", "PROTO-PLIST-ONE-ENTRY-PER-USER")
            role = roles.get(user, ROLE_INDEX_NON_PARTICIPANT)
            if role == ROLE_INDEX_NON_PARTICIPANT and active(removal_faults.HUB_KEEPS_REMOVED_USERS_CLIENT):
                continue
            if role == ROLE_INDEX_NON_PARTICIPANT:
                return Refusal(
                    f"a client of {user.decode(errors='replace')} remains without a participant-list entry",
                    "POLICY-CAP-REMOVE-PARTICIPANT-NO-CLIENTS-LEFT",
                )
            if role == ROLE_INDEX_BANNED:
                return Refusal(
                    f"a client of banned {user.decode(errors='replace')} remains in the group",
                    "POLICY-CAP-BAN-REMOVES-CLIENTS",
                )
            if not policy.may_be_active(role):
                return Refusal(f"role {role} may have no clients", "POLICY-ROLE-MAX-ACTIVE-ZERO")
            per_user[user] = per_user.get(user, 0) + 1
        if (
            policy.base.multi_device == Bool.false
            and any(n > 1 for n in per_user.values())
            and not active(SINGLE_DEVICE_IGNORED)
        ):
            return Refusal("more than one client of a user in a single-device room", "POLICY-BASE-SINGLE-DEVICE")
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
            signer = self._committer_leaf(new, content)
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
        tree_option = bundle.ratchetTreeOption  # type: ignore[attr-defined]
        if tree_option.representation == RatchetTreeRepresentation.full:
            try:
                given = TreeState.from_wire(new.suite, tree_option.ratchet_tree)
            except Exception as exc:  # a tree that does not even load is the committer's defect
                raise _Refused(UpdateResponseCode.invalidProposal, f"ratchetTreeOption does not load: {exc}") from None
            if given.tree_hash() != bytes(new.context.tree_hash):
                raise _Refused(UpdateResponseCode.invalidProposal, "ratchetTreeOption is not the new epoch's tree")
        return info

    @staticmethod
    def _committer_leaf(new: HubView, content: object) -> int:
        sender = content.sender  # type: ignore[attr-defined]
        if sender.sender_type == SenderType.member:
            return sender.leaf_index
        path_key = bytes(content.commit.path.leaf_node.signature_key)  # type: ignore[attr-defined]
        index = new.find_member(path_key)
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

    # -- the hub's own proposals (§7.4 external_senders) -----------------------------------------

    def _hub_followups(
        self, now: int, before_providers: set[str], carried: list[PendingEntry], old: HubView
    ) -> list[PendingEntry]:
        """After a commit: proposals the hub issues for the new epoch, each required in the next commit."""
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
                and not _faults.active(removal_faults.KEEP_DEPARTED_FOLLOWER_SENDER)
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
        for entry in carried:
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

    # -- hub transfer (docs/extensions/hub-transfer.md) ----------------------------------------

    def hub_data(self, view: HubView | None = None):
        """The committed mimi_hub component, or None when the room has none."""
        return hub_of_record((view or self.view).app_data(), self.room_uri)

    def transfer_fanout_domains(self) -> set[str]:
        """The target gets every handshake message from the acceptance to the handoff
        (EXT-HUBXFER-TARGET-FANOUT); empty outside a transfer."""
        transfer = self.transfer
        if transfer is None or not (transfer.in_window or transfer.phase == MOVED):
            return set()
        return {transfer.target}

    def _cutover_pending(self) -> bool:
        return self.transfer is not None and self.transfer.phase == CUTOVER_PROPOSED

    def _check_hub_component_proposal(self, kind: str, proposal: object) -> None:
        """Only the hub's own external sender changes mimi_hub (EXT-HUBXFER-COMPONENT-SENDER)."""
        ptype = proposal.proposal_type  # type: ignore[attr-defined]
        if (
            ptype == ProposalType.app_data_update
            and proposal.app_data_update.component_id == MIMI_HUB_COMPONENT_ID  # type: ignore[attr-defined]
            and kind != "hub"
            and not active(old_hub_faults.MEMBER_MAY_CHANGE_HUB_COMPONENT)
        ):
            raise _not_allowed(Refusal("only the hub may change mimi_hub", "EXT-HUBXFER-COMPONENT-SENDER"))

    def _refuse_external_hub_update(self, applied: list[AppliedProposal]) -> None:
        """An external commit never carries a mimi_hub update (EXT-HUBXFER-PUBLIC-COMMITS, section 4.2 item 5),
        although mls-extensions-09 §4.7 lets it carry AppDataUpdates of other components."""
        if any(
            e.proposal.proposal_type == ProposalType.app_data_update
            and e.proposal.app_data_update.component_id == MIMI_HUB_COMPONENT_ID
            for e in applied
        ) and not active(public_commits_faults.EXTERNAL_COMMIT_HUB_UPDATE_ACCEPTED):
            raise _not_allowed(Refusal("an external commit carries a mimi_hub update", "EXT-HUBXFER-PUBLIC-COMMITS"))

    def _check_hub_component_commit(self, old: HubView, new: HubView, applied: list[AppliedProposal]) -> str | None:
        """A commit that changes mimi_hub must do it through the hub's own AppDataUpdate
        (EXT-HUBXFER-COMPONENT-SENDER); during the window no provider but the target gets its first
        participant (EXT-HUBXFER-WINDOW-NO-NEW-PROVIDERS). Returns the transition the commit makes
        ("begin", "cutover", "abort") or None."""
        before = old.app_data().get(MIMI_HUB_COMPONENT_ID)
        after = new.app_data().get(MIMI_HUB_COMPONENT_ID)
        transfer = self.transfer
        if transfer is not None and transfer.in_window:
            newcomers = self.active_providers(new) - self.active_providers(old) - {transfer.target}
            if newcomers and not active(old_hub_faults.WINDOW_ADMITS_NEW_PROVIDER):
                raise _not_allowed(
                    Refusal(
                        f"a first participant of {sorted(newcomers)} during the transfer window",
                        "EXT-HUBXFER-WINDOW-NO-NEW-PROVIDERS",
                    )
                )
        if before == after:
            return None
        updates = [
            e for e in applied
            if e.proposal.proposal_type == ProposalType.app_data_update
            and e.proposal.app_data_update.component_id == MIMI_HUB_COMPONENT_ID
        ]
        if (len(updates) != 1 or self._actor(old, updates[0].sender)[0] != "hub") \
                and not active(old_hub_faults.MEMBER_MAY_CHANGE_HUB_COMPONENT) \
                and not (active(public_commits_faults.EXTERNAL_COMMIT_HUB_UPDATE_ACCEPTED) and len(updates) == 1
                         and updates[0].sender.sender_type == SenderType.new_member_commit):
            raise _not_allowed(Refusal("mimi_hub changed other than by the hub", "EXT-HUBXFER-COMPONENT-SENDER"))
        data = self.hub_data(new)
        if data is None:
            raise _not_allowed(Refusal("mimi_hub removed", "EXT-HUBXFER-COMPONENT-TRANSITIONS"))
        if data.state == HubState.transferring:
            return "begin"
        if sender_domain_of(data.hub) != self.identity.domain:
            return "cutover"
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
        if self._cutover_pending() and not active(cutover_faults.CUTOVER_OMITS_PENDING):
            for entry in self.pending:
                entry.required = True
        head, *rest = [decode_message(e.message) for e in entries]
        fanout = FanoutMessage(timestamp=now, protocol=Protocol.mls10, message=head, moreProposals=rest)
        plan = FanoutPlan()
        for domain in sorted(self.active_providers() | self.transfer_fanout_domains()):
            plan.add(domain, fanout)
        return plan

    # -- submitMessage ------------------------------------------------------------------------

    def handle_submit(self, sender_domain: str, request: bytes, now: int) -> tuple[SubmitMessageResponse, FanoutPlan]:
        """POST /submitMessage: an application PrivateMessage of the current epoch from an active participant."""
        refused = submit_response(SubmitResponseCode.notAllowed), FanoutPlan()
        if active(old_hub_faults.WINDOW_REFUSES_MESSAGES) and self.transfer is not None and self.transfer.in_window:
            return refused
        try:
            req = SubmitMessageRequest.decode(request)
        except (DecodeError, EncodeError):
            return refused
        if req.protocol != Protocol.mls10:
            return refused
        pm = req.appMessage.private_message
        if pm is None or pm.content_type != ContentType.application:  # PROTO-SUBMIT-PRIVATEMESSAGE-ONLY
            return refused
        if bytes(pm.group_id) != self.group_id:
            return refused
        sender = user_of_uri(bytes(req.sendingUri.uri))
        if sender is None or domain_of_uri(sender) != sender_domain:
            return refused
        role = self.roles().get(sender, ROLE_INDEX_NON_PARTICIPANT)
        # PROTO-SUBMIT-SENDER-ACTIVE-PARTICIPANT, PROTO-REMOVAL-BLOCK-APP-SEND, POLICY-CAP-SEND-MESSAGE
        if (
            sender not in self.active_users()
            or sender in self.departing_users()
            or self.policy.may_send(role) is not None
        ) and not active(removal_faults.ACCEPT_REMOVED_MEMBER_MESSAGE) \
                and not (self.min_timestamp and active(newhub_faults.NEWHUB_FORGETS_REMOVALS)):
            return refused
        if pm.epoch < self.epoch and not active(ACCEPT_STALE_MESSAGE):  # PROTO-SUBMIT-EPOCH-TOO-OLD
            return submit_response(SubmitResponseCode.epochTooOld, epoch=self.epoch), FanoutPlan()
        if pm.epoch > self.epoch and not active(ACCEPT_FUTURE_MESSAGE):  # PROTO-SUBMIT-FUTURE-EPOCH-NOT-ALLOWED
            return refused
        plan = FanoutPlan()
        # Byte-identical ciphertext, no sender URI (PROTO-FRANK-SENDER-HIDDEN), only providers with
        # active participants (PROTO-FANOUT-ONLY-ACTIVE-PROVIDERS), timestamp = acceptance time.
        stamp = now + 1500 if active(TIMESTAMP_NOT_ACCEPTANCE) else now
        fanout = FanoutMessage(timestamp=stamp, protocol=Protocol.mls10, message=req.appMessage, frank=None)
        for domain in sorted(self.active_providers()):
            plan.add(domain, fanout)
        from ..faults import privacy as privacy_faults  # deliberate faults, off unless configured

        if (active(privacy_faults.FANOUT_NAMES_SENDER) or active(privacy_faults.FANOUT_TO_DEPARTED_PROVIDERS)
                or active(privacy_faults.FANOUT_ALTERS_CIPHERTEXT)):
            privacy_faults.on_submit_fanout(self, req, sender_domain, plan)
        return submit_response(SubmitResponseCode.accepted, accepted=now), plan

    # -- groupInfo ----------------------------------------------------------------------------

    def group_info_response(self, sender_domain: str, request: bytes | GroupInfoRequest, now: int) -> GroupInfoResponse:
        """POST /groupInfo: the GroupInfo, tree and pending proposals, encrypted to the requester and
        signed by the hub; notAuthorized unless the requester's credential names an active-capable
        participant of the sender's domain with canAddOwnClient, and its signature verifies."""
        room_id = self.room_uri.encode()
        refused = group_info_refusal(room_id)
        try:
            req = request if isinstance(request, GroupInfoRequest) else GroupInfoRequest.decode(request)
        except (DecodeError, EncodeError):
            return refused
        if req.protocol != Protocol.mls10 or req.cipher_suite != self.view.suite.suite_id or self.group_info is None:
            return refused
        suite = self.view.suite
        tbs = req.tbs().encode()
        signature_ok = suite.verify_with_label(
            bytes(req.requestingSignatureKey), "GroupInfoRequestTBS", tbs, bytes(req.signature)
        )
        if not signature_ok:  # PROTO-GROUPINFO-REQUEST-SIGNATURE-CHECKED (also the layout as written)
            signature_ok = suite.verify_with_label(
                bytes(req.requestingSignatureKey), "GroupInfoRequestTBS", req.tbs_as_written(), bytes(req.signature)
            )
        if not signature_ok:
            return refused
        user = user_of_credential(req.requestingCredential)
        role = self.roles().get(user, ROLE_INDEX_NON_PARTICIPANT) if user is not None else ROLE_INDEX_NON_PARTICIPANT
        if active(NEW_DEVICE_GROUPINFO_REFUSED) and self.view.find_member(bytes(req.requestingSignatureKey)) is None:
            return refused
        if (
            user is None
            or domain_of_uri(user) != sender_domain
            or user in self.departing_users()
            or not self.policy.may_be_active(role)
            or not self.policy.has(role, Capability.canAddOwnClient)
        ):
            return refused  # PROTO-GROUPINFO-NOT-AUTHORIZED
        info = self.group_info
        tbe = GroupInfoRatchetTreeTBE(
            groupInfo=info,
            ratchetTreeOption=RatchetTreeOption(
                representation=RatchetTreeRepresentation.full, ratchet_tree=self.view.tree.to_wire()
            ),
            pending_proposals=[
                PendingProposal(proposal=decode_message(e.message), hub_accepted_time=e.accepted) for e in self.pending
            ],  # PROTO-GROUPINFO-PENDING-PROPOSALS
        )
        try:
            from ..faults.privacy import GROUPINFO_WRONG_CONTEXT  # a deliberate fault, off unless configured

            context = b"" if active(GROUPINFO_WRONG_CONTEXT) else room_id
            kem_output, ciphertext = suite.encrypt_with_label(
                bytes(req.groupInfoPublicKey), GROUPINFO_LABEL, context, tbe.encode()
            )
        except (ValueError, MLSError):  # not a public key of the suite's KEM
            return refused
        response = GroupInfoResponse(
            version=Protocol.mls10,
            room_id=room_id,
            status=GroupInfoCode.success,
            cipher_suite=suite.suite_id,
            hub_sender=self.identity.external_sender,
            encrypted_groupinfo_and_tree=HPKECiphertext(kem_output=kem_output, ciphertext=ciphertext),
            signature=b"",
        )
        signature = suite.sign_with_label(self.identity.signature_priv, "GroupInfoResponseTBS", response.tbs().encode())
        return response.replace(signature=signature)


def open_group_info_response(response: GroupInfoResponse, private_key: bytes) -> GroupInfoRatchetTreeTBE:
    """The requester's side: verify the hub's signature and decrypt (MLSError/ValueError on failure)."""
    suite = cipher_suite(response.cipher_suite)
    if not suite.verify_with_label(
        bytes(response.hub_sender.signature_key),
        "GroupInfoResponseTBS",
        response.tbs().encode(),
        bytes(response.signature),
    ):
        raise ValueError("GroupInfoResponse signature does not verify")
    ct = response.encrypted_groupinfo_and_tree
    plain = suite.decrypt_with_label(
        private_key, GROUPINFO_LABEL, bytes(response.room_id), bytes(ct.kem_output), bytes(ct.ciphertext)
    )
    return GroupInfoRatchetTreeTBE.decode(plain)
