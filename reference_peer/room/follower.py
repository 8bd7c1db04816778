"""The follower side for a provider's own users (draft-ietf-mimi-protocol-06 §3, §5.3-§5.5): simulated
clients that hold real MLS state, consume FanoutMessages in order and produce the provider's
outgoing traffic (UpdateRequest, SubmitMessageRequest, GroupInfoRequest bodies). No HTTP here.

:class:`SimulatedClient` is the unit the control API drives ("send a message from client X",
"read what client X received"); :class:`LocalClients` is a provider's set of them, which routes a
/notify body to every local client of the room.
"""

from __future__ import annotations

import copy
import dataclasses

from ..mls import (
    Group,
    KeyPackageBundle,
    MLSError,
    add_proposal,
    app_components_extension,
    app_data_update_proposal,
    basic_credential,
    cipher_suite,
    make_key_package,
    remove_proposal,
    self_remove_proposal,
)
from ..mls.group import decode_message, proposal_ref
from ..mls.tree import RatchetTree as TreeState
from ..overrides import NO_OVERRIDES, BuiltWith, Overrides, step
from ..wire.codec import DecodeError, EncodeError
from ..wire.hub_transfer import MIMI_HUB_COMPONENT_ID
from ..wire.identity import IdentifierUri
from ..wire.mimi import (
    COMPONENT_PARTICIPANT_LIST,
    FanoutMessage,
    GroupInfoOption,
    GroupInfoRepresentation,
    GroupInfoRequest,
    HandshakeBundle,
    ParticipantListData,
    Protocol,
    SubmitMessageRequest,
    UpdateRequest,
)
from ..wire.mls import ContentType, GroupInfo, KeyPackage, MLSMessage, Proposal, SenderType, WireFormat
from ..wire.ratchet_tree_options import (
    PartialGroupInfo,
    RatchetTreeOption,
    RatchetTreePresence,
    RatchetTreeRepresentation,
)
from ..wire.room_policy import PolicyComponentId
from . import participants as plist_mod
from .naming import client_uri, user_of_credential, user_uri

MLS10 = {"protocol": Protocol.mls10}

# The named steps of a follower's simulated clients (reference_peer.overrides): where a peer may be
# built to behave otherwise.
REMOVE_EVERY_CLIENT = step(
    "follower.remove-user.remove-every-client", "POLICY-CAP-REMOVE-PARTICIPANT-NO-CLIENTS-LEFT",
    "PROTO-UPDATE-REMOVE-SIMULTANEOUS",
    summary="a commit removing a user from the participant list removes every client of that user in the same commit",
)
LEAVE_REMOVES_OTHER_CLIENTS = step(
    "follower.leave.remove-other-clients", "POLICY-CAP-REMOVE-SELF-ALL-CLIENTS",
    summary="a leaving client proposes its SelfRemove, a Remove for each other client of its user and the "
    "participant-list removal together",
)
LEAVE_BY_SELF_REMOVE = step(
    "follower.leave.self-remove", "PROTO-UPDATE-SELF-LEAVE-CACHED", "POLICY-CAP-REMOVE-SELF-ALL-CLIENTS",
    summary="a leaving client proposes its own removal as a SelfRemove (otherwise: a Remove of its own leaf, "
    "as -06 §3.5 step 1 words it)",
)
PLIST_UPDATE_BEFORE_REMOVES = step(
    "follower.remove-user.plist-update-first", "PROTO-UPDATE-REMOVE-SIMULTANEOUS",
    summary="a commit removing a user lists the participant-list AppDataUpdate before the Removes of the "
    "user's clients (otherwise after them)",
)
APPLICATION_PADDING = step(
    "follower.send.padding", "PROTO-SUBMIT-SENDER-WIREFORMAT",
    summary="an application message's PrivateMessage carries no padding (a hook gives the number of zero "
    "octets to pad the content with)",
)
FULL_GROUPINFO = step(
    "follower.commit.full-groupinfo", "POLICY-OPS-COMMITTER-PROVIDES-GROUPINFO", "PROTO-UPDATE-PARTIAL-GROUPINFO",
    summary="a commit's UpdateRequest carries the new epoch's full GroupInfo (otherwise a PartialGroupInfo for "
    "the hub to rebuild it from)",
)
SENDER_NOT_IN_CLEAR = step(
    "follower.send.sender-not-in-clear", "PROTO-SUBMIT-SENDER-WIREFORMAT", "PROTO-FRANK-SENDER-HIDDEN",
    summary="an application message is a PrivateMessage with empty authenticated_data: the sender is not in clear",
)
GROUPINFO_OF_NEW_EPOCH = step(
    "follower.commit.groupinfo-new-epoch", "POLICY-OPS-COMMITTER-PROVIDES-GROUPINFO",
    summary="a commit's UpdateRequest carries the GroupInfo of the epoch the commit starts (otherwise the GroupInfo "
    "of the epoch it ends)",
)
JOIN_FROM_WELCOME = step(
    "follower.welcome.join", "PROTO-KEYMAT-KPREF-TARGET-CLIENT",
    summary="a client whose KeyPackageRef is in a fanned-out Welcome's secrets joins the group from it (otherwise "
    "the Welcome is left unprocessed)",
)
STAPLED_PROPOSALS = step(
    "follower.commit.stapled-proposals", "PROTO-GROUPINFO-FOLLOWER-JOIN-NEW-DEVICE",
    summary="the hub's proposals stapled to a commit's FanoutMessage (externalProposals) are taken into the new "
    "epoch, also after the client's own (external) commit (otherwise they are dropped)",
)


@dataclasses.dataclass(frozen=True)
class InboxEntry:
    """An application message as the receiving client sees it (the hub never tells the sender)."""

    data: bytes
    sender_leaf: int
    sender_identity: bytes
    epoch: int
    timestamp: int


@dataclasses.dataclass
class OutgoingCommit:
    """A commit waiting for the hub's answer: ``request`` is the UpdateRequest body."""

    request: bytes
    commit: bytes
    welcome: bytes | None
    group_info: bytes


# The application components a reference client processes, listed in the app_components entry of
# its LeafNodes (draft-ietf-mls-extensions-09 §5): the participant list, the room-policy components
# the reference reads (roles_list, base_room_policy) and the hub-transfer extension's mimi_hub, with
# the uint16 ID the reference peer uses (EXT-HUBXFER-ALL-MEMBERS-SUPPORT).
CLIENT_APP_COMPONENTS: tuple[int, ...] = (
    int(COMPONENT_PARTICIPANT_LIST), int(PolicyComponentId.roles_list), int(PolicyComponentId.base_room_policy),
    MIMI_HUB_COMPONENT_ID,
)


class SimulatedClient(BuiltWith):
    """One MLS client of a local user: credential, signature key, KeyPackages, its Group, its inbox."""

    def __init__(self, domain: str, user: str, name: str, *, suite_id: int = 1,
                 overrides: Overrides = NO_OVERRIDES) -> None:
        self.overrides = overrides
        self.domain = domain
        self.uri = client_uri(domain, user, name)
        self.user_uri = user_uri(domain, user)
        self.suite_id = suite_id
        self.credential = basic_credential(self.uri.encode())
        self.signature_priv, self.signature_pub = cipher_suite(suite_id).generate_signature_key_pair()
        self.key_packages: dict[bytes, KeyPackageBundle] = {}
        self.group: Group | None = None
        self.inbox: list[InboxEntry] = []
        self.errors: list[str] = []  # fan-out this client could not process, for diagnosis
        self.removed = False
        self._outgoing: OutgoingCommit | None = None
        self._sent: set[bytes] = set()  # own application messages and external commits, to recognise echoes
        self.app_components: tuple[int, ...] = CLIENT_APP_COMPONENTS  # what its LeafNodes advertise

    def __repr__(self) -> str:
        return f"SimulatedClient({self.uri})"

    def __copy__(self) -> SimulatedClient:
        """A shallow copy that keeps the overrides (a per-room member made from a client's keys is
        built like them; pickling, and so deepcopy, drops them: BuiltWith)."""
        clone = self.__class__.__new__(self.__class__)
        clone.__dict__.update(self.__dict__)
        return clone

    def fresh_member(self) -> SimulatedClient:
        """A fresh per-room MLS client made from this client's keys: the same credential and signature
        key, no group, no KeyPackages, and none of this client's bookkeeping."""
        member = copy.copy(self)
        member.key_packages = {}
        member.group = None
        member.inbox = []
        member.errors = []
        member.removed = False
        member._outgoing = None
        member._sent = set()
        return member

    # -- key material and membership ----------------------------------------------------------

    def leaf_extensions(self) -> list:
        """The extensions of every LeafNode this client makes (KeyPackages, a group it creates, external
        joins; UpdatePaths and Updates keep them): app_data_dictionary with its app_components."""
        return [app_components_extension(getattr(self, "app_components", CLIENT_APP_COMPONENTS))]

    def make_key_package(self) -> KeyPackageBundle:
        bundle = make_key_package(self.suite_id, self.credential, self.signature_priv,
                                  leaf_extensions=self.leaf_extensions())
        self.key_packages[bundle.ref()] = bundle
        return bundle

    def _adopt(self, group: Group) -> Group:
        plist_mod.install_handler(group)
        self.group = group
        self.removed = False
        return group

    def create_group(self, extensions: list, *, group_id: bytes | None = None) -> Group:
        return self._adopt(
            Group.create(self.suite_id, self.credential, self.signature_priv, group_id=group_id, extensions=extensions,
                         leaf_extensions=self.leaf_extensions())
        )

    def join_external(self, group_info: bytes, ratchet_tree: bytes | None, *, pending: list[bytes] = (),
                      proposals_by_value: list[Proposal] = ()) -> bytes:
        """Join by external commit (``proposals_by_value`` besides the ExternalInit, e.g. an AppDataUpdate:
        mls-extensions-09 §4.7); returns the UpdateRequest body. The group is adopted at once: if the hub
        refuses, :meth:`abandon` drops it."""
        group, commit = Group.join_external(group_info, self.credential, self.signature_priv, ratchet_tree=ratchet_tree,
                                            proposals_by_value=proposals_by_value, leaf_extensions=self.leaf_extensions())
        self._adopt(group)
        self._sent.add(commit)
        info = decode_message(group.group_info(ratchet_tree=False)).group_info
        return self._update_request(commit, None, info, group)

    def abandon(self) -> None:
        self.group = None

    @property
    def epoch(self) -> int | None:
        return self.group.epoch if self.group is not None else None

    def participant_list(self) -> ParticipantListData:
        if self.group is None:
            return plist_mod.EMPTY
        return plist_mod.decode_list(self.group.app_data().get(int(COMPONENT_PARTICIPANT_LIST)))

    def leaf_of(self, client: SimulatedClient) -> int | None:
        return self.group.find_member(client.signature_pub) if self.group is not None else None

    def leaves_of_user(self, user: bytes) -> list[int]:
        if self.group is None:
            return []
        return [i for i, leaf in self.group.members()
                if user_of_credential(leaf.credential, self.overrides) == user]

    # -- outgoing -----------------------------------------------------------------------------

    def _require_group(self) -> Group:
        if self.group is None:
            raise MLSError(f"{self.uri} is not in a group")
        return self.group

    @staticmethod
    def _tree_option(group: Group) -> RatchetTreeOption:
        return RatchetTreeOption(representation=RatchetTreeRepresentation.full, ratchet_tree=group.tree.to_wire())

    def _group_info_option(self, info: GroupInfo) -> GroupInfoOption:
        if not self.overrides.departs(FULL_GROUPINFO):
            return GroupInfoOption(representation=GroupInfoRepresentation.full, groupInfo=info)
        # What the hub cannot rebuild (ratchet-tree-options §4); the GroupInfo has no embedded tree.
        partial = PartialGroupInfo(ratchet_tree_presence=RatchetTreePresence.no_ratchet_tree,
                                   group_info_extensions=list(info.extensions), signature=bytes(info.signature))
        return GroupInfoOption(representation=GroupInfoRepresentation.partial, partialGroupInfo=partial)

    def _signed_state(self, group: Group, nxt: Group) -> Group:
        """The state whose GroupInfo a commit's UpdateRequest carries: the epoch the commit starts (otherwise,
        at the step, the epoch it ends)."""
        return group if self.overrides.departs(GROUPINFO_OF_NEW_EPOCH) else nxt

    def _update_request(self, commit: bytes, welcome: bytes | None, info: GroupInfo, next_state: Group) -> bytes:
        bundle = HandshakeBundle(
            proposalOrCommit=decode_message(commit),
            welcome=decode_message(welcome).welcome if welcome is not None else None,
            groupInfoOption=self._group_info_option(info),
            ratchetTreeOption=self._tree_option(next_state),
        )
        return UpdateRequest(protocol=Protocol.mls10, bundle=bundle).encode()

    def commit(
        self,
        proposals: list[Proposal] = (),
        *,
        by_reference: list[bytes] | None = None,  # type: ignore[assignment]
        include_cached: bool = True,
        **kwargs: object,
    ) -> OutgoingCommit:
        """A commit (cached proposals by reference, ``proposals`` by value) as an UpdateRequest body; the
        group stays in its epoch until :meth:`commit_accepted` or :meth:`commit_refused`."""
        group = self._require_group()
        out = group.commit(
            list(proposals),
            by_reference=by_reference,
            include_cached=include_cached,
            **kwargs,  # type: ignore[arg-type]
        )
        # The GroupInfo for the hub has no embedded tree (PROTO-GROUPINFO-TREE-SEPARATE): the tree
        # travels in ratchetTreeOption. It is built from the pending next epoch.
        nxt = group._pending  # noqa: SLF001 - the library keeps the next epoch there until merge
        info = decode_message(self._signed_state(group, nxt).group_info(ratchet_tree=False)).group_info
        request = self._update_request(out.commit, out.welcome, info, nxt)
        self._outgoing = OutgoingCommit(request, out.commit, out.welcome, nxt.group_info(ratchet_tree=False))
        return self._outgoing

    def add_users(
        self,
        key_packages: list[KeyPackage],
        new_users: list[tuple[bytes, int]] = (),  # type: ignore[assignment]
        **kwargs: object,
    ) -> OutgoingCommit:
        """Add clients, with the participant-list AppDataUpdate adding their users in the same commit
        (PROTO-UPDATE-ADD-PLIST-FIRST): the add a room creator's role authorizes, which a hub accepts
        (POLICY-CAP-ADD-PARTICIPANT-CLIENTS)."""
        proposals: list[Proposal] = []
        if new_users:
            update = plist_mod.make_update(added=new_users).encode()
            proposals.append(app_data_update_proposal(int(COMPONENT_PARTICIPANT_LIST), update))
        proposals += [add_proposal(kp) for kp in key_packages]
        return self.commit(proposals, **kwargs)

    def remove_user(self, user: bytes, **kwargs: object) -> OutgoingCommit:
        """Remove a user: the participant-list removal and Removes for all its clients in one commit."""
        index = plist_mod.index_of(self.participant_list(), user)
        proposals: list[Proposal] = []
        if index is not None:
            proposals.append(
                app_data_update_proposal(
                    int(COMPONENT_PARTICIPANT_LIST), plist_mod.make_update(removed=[index]).encode()
                )
            )
        leaves = self.leaves_of_user(user)
        if self.overrides.departs(REMOVE_EVERY_CLIENT):  # otherwise: only the first of them
            leaves = leaves[:1]
        removes = [remove_proposal(leaf) for leaf in leaves]
        if self.overrides.departs(PLIST_UPDATE_BEFORE_REMOVES):  # otherwise: the Removes first
            proposals = removes + proposals
        else:
            proposals += removes
        return self.commit(proposals, **kwargs)

    def change_role(self, user: bytes, role: int, *, remove_clients: bool = False, **kwargs: object) -> OutgoingCommit:
        """A role change (ban: role 1 with ``remove_clients``, POLICY-CAP-BAN-REMOVES-CLIENTS; unban: from role 1)."""
        index = plist_mod.index_of(self.participant_list(), user)
        if index is None:
            raise MLSError(f"{user!r} is not in the participant list")
        proposals: list[Proposal] = [
            app_data_update_proposal(
                int(COMPONENT_PARTICIPANT_LIST), plist_mod.make_update(role_changes=[(index, role)]).encode()
            )
        ]
        if remove_clients:
            proposals += [remove_proposal(leaf) for leaf in self.leaves_of_user(user)]
        return self.commit(proposals, **kwargs)

    def wrap_commit(self, commit: bytes, welcome: bytes | None = None, group_info: bytes | None = None) -> bytes:
        """Any commit (e.g. a crafted one) as an UpdateRequest body, with the given or the current GroupInfo."""
        group = self._require_group()
        info = decode_message(group_info or group.group_info(ratchet_tree=False)).group_info
        return self._update_request(commit, welcome, info, group)

    def commit_accepted(self) -> None:
        self._require_group().merge_pending_commit()
        self._outgoing = None

    def commit_refused(self) -> None:
        self._require_group().discard_pending_commit()
        self._outgoing = None

    def proposals_request(self, proposals: list[Proposal]) -> bytes:
        """Proposals as one UpdateRequest: the first in proposalOrCommit, the rest in moreProposals."""
        group = self._require_group()
        messages = [group.propose(p) for p in proposals]
        return self.proposal_messages_request(messages)

    @staticmethod
    def proposal_messages_request(messages: list[bytes]) -> bytes:
        head, *rest = [decode_message(m) for m in messages]
        bundle = HandshakeBundle(proposalOrCommit=head, moreProposals=rest)
        return UpdateRequest(protocol=Protocol.mls10, bundle=bundle).encode()

    def self_leave_request(self) -> bytes:
        """Self-leave (§3.5): SelfRemove for this client, Remove for the user's other clients and the
        participant-list removal of the user, sent together for the hub to cache."""
        group = self._require_group()
        index = plist_mod.index_of(self.participant_list(), self.user_uri.encode())
        # Otherwise: a Remove of its own leaf, like those of its user's other clients (-06 §3.5 step 1).
        own = remove_proposal(group.own_leaf) if self.overrides.departs(LEAVE_BY_SELF_REMOVE) else self_remove_proposal()
        proposals: list[Proposal] = [own]
        proposals += [
            remove_proposal(leaf) for leaf in self.leaves_of_user(self.user_uri.encode()) if leaf != group.own_leaf
            if not self.overrides.departs(LEAVE_REMOVES_OTHER_CLIENTS)  # otherwise: no Remove for them
        ]
        if index is not None:
            proposals.append(
                app_data_update_proposal(
                    int(COMPONENT_PARTICIPANT_LIST), plist_mod.make_update(removed=[index]).encode()
                )
            )
        return self.proposals_request(proposals)

    def send(self, text: bytes) -> bytes:
        """An application message as a SubmitMessageRequest body, with the user's URI as sendingUri."""
        # Otherwise: the client URI in authenticated_data, in clear.
        aad = self.uri.encode() if self.overrides.departs(SENDER_NOT_IN_CLEAR) else b""
        padding = self.overrides.hook(APPLICATION_PADDING, text) or 0
        message = self._require_group().protect(text, aad, padding)
        self._sent.add(message)
        return SubmitMessageRequest(
            protocol=Protocol.mls10,
            appMessage=decode_message(message),
            sendingUri=IdentifierUri(uri=self.user_uri.encode()),
        ).encode()

    def group_info_request(self, hpke_public_key: bytes) -> GroupInfoRequest:
        """A signed GroupInfoRequest (§5.6) made with this client's credential and key."""
        suite = cipher_suite(self.suite_id)
        req = GroupInfoRequest(
            protocol=Protocol.mls10,
            cipher_suite=self.suite_id,
            requestingSignatureKey=self.signature_pub,
            requestingCredential=self.credential,
            groupInfoPublicKey=hpke_public_key,
            joiningCode=b"",
            signature=b"",
        )
        return req.replace(
            signature=suite.sign_with_label(self.signature_priv, "GroupInfoRequestTBS", req.tbs().encode())
        )

    # -- incoming -----------------------------------------------------------------------------

    def receive(self, fanout: FanoutMessage) -> str:
        """Process one FanoutMessage; returns what happened ("joined", "commit", "proposal",
        "application", "ignored", "own", or "error: ..."). A client a Welcome names joins from it and reads the
        room's messages (PROTO-KEYMAT-KPREF-TARGET-CLIENT); commits and the hub's proposals keep a joined client
        in the room's epochs (PROTO-GROUPINFO-FOLLOWER-JOIN-NEW-DEVICE)."""
        msg = fanout.message
        try:
            if msg.wire_format == WireFormat.mls_welcome:
                return self._receive_welcome(fanout)
            if self.group is None or self.removed:
                return "ignored"
            content_type = msg.content_type()
            if content_type == ContentType.commit:
                return self._receive_commit(fanout)
            if content_type == ContentType.proposal:
                for proposal in [msg, *fanout.moreProposals]:
                    if not self._is_own(proposal) and not self._is_cached(proposal):
                        self.group.process(proposal.encode())
                return "proposal"
            received = self.group.process(msg.encode())
            leaf = received.sender.leaf_index
            member = self.group.tree.leaf(leaf)
            identity = bytes(member.credential.identity) if member is not None else b""
            self.inbox.append(InboxEntry(received.application_data, leaf, identity, received.epoch, fanout.timestamp))
            return "application"
        except MLSError as exc:
            if (
                msg.private_message is not None
                and msg.private_message.content_type == ContentType.application
                and self._is_own_application(msg)
            ):
                return "own"  # our own message echoed back: PROTO-FANOUT-NOT-ECHOED-REQUIRED
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return f"error: {exc}"

    def _is_own(self, msg: MLSMessage) -> bool:
        pub = msg.public_message
        return (
            pub is not None
            and pub.content.sender.sender_type == SenderType.member
            and self.group is not None
            and pub.content.sender.leaf_index == self.group.own_leaf
        )

    def _is_cached(self, msg: MLSMessage) -> bool:
        """Already known (a proposal may reach a provider twice, e.g. after a Welcome)."""
        pub = msg.public_message
        if pub is None or self.group is None or pub.content.epoch != self.group.epoch:
            return False
        return (
            proposal_ref(self.group.suite, WireFormat.mls_public_message, pub.content, pub.auth)
            in self.group.proposal_cache
        )

    def _is_own_application(self, msg: MLSMessage) -> bool:
        return msg.encode() in self._sent  # a sender cannot decrypt its own ciphertext

    def _joins_from_welcome(self) -> bool:
        """Whether a client named in a Welcome joins from it (otherwise, at the step, the Welcome is left
        unprocessed)."""
        return not self.overrides.departs(JOIN_FROM_WELCOME)

    def _stapled(self, fanout: FanoutMessage) -> list[MLSMessage]:
        """The hub's proposals stapled to a commit's FanoutMessage, which the client takes into the new epoch,
        also after its own (external) commit (otherwise, at the step, none)."""
        return [] if self.overrides.departs(STAPLED_PROPOSALS) else list(fanout.externalProposals)

    def _receive_welcome(self, fanout: FanoutMessage) -> str:
        welcome = fanout.message.welcome
        mine = [bytes(s.new_member) for s in welcome.secrets if bytes(s.new_member) in self.key_packages]
        if not mine or (self.group is not None and not self.removed):
            return "ignored"
        tree = None
        option = fanout.ratchetTreeOption
        if option is not None and option.representation == RatchetTreeRepresentation.full:
            tree = TreeState.from_wire(cipher_suite(welcome.cipher_suite), option.ratchet_tree).encode()
        if not self._joins_from_welcome():
            return "ignored"
        self._adopt(Group.join(fanout.message.encode(), self.key_packages.pop(mine[0]), ratchet_tree=tree))
        return "joined"

    def _receive_commit(self, fanout: FanoutMessage) -> str:
        group = self.group
        assert group is not None
        if self._is_own(fanout.message) or fanout.message.encode() in self._sent:
            if self._outgoing is not None and self._outgoing.commit == fanout.message.encode():
                self.commit_accepted()
            result = "own"
        else:
            if group._pending is not None:  # noqa: SLF001 - another commit won the epoch
                group.discard_pending_commit()
                self._outgoing = None
            received = group.process(fanout.message.encode())
            result = "commit"
            if received.removed_self or not group.active:
                self.removed = True
                return "removed"
        for proposal in self._stapled(fanout):  # the hub's proposals for the new epoch
            if not self._is_cached(proposal):
                group.process(proposal.encode())
        return result


class LocalClients:
    """A provider's simulated clients for one room, keyed by client URI."""

    def __init__(self, domain: str, *, overrides: Overrides = NO_OVERRIDES) -> None:
        self.domain = domain
        self.overrides = overrides  # given to every client it adds
        self.clients: dict[str, SimulatedClient] = {}

    def add(self, user: str, name: str, *, suite_id: int = 1) -> SimulatedClient:
        client = SimulatedClient(self.domain, user, name, suite_id=suite_id, overrides=self.overrides)
        self.clients[client.uri] = client
        return client

    def of_user(self, user: str) -> list[SimulatedClient]:
        uri = user_uri(self.domain, user)
        return [c for c in self.clients.values() if c.user_uri == uri]

    def deliver(self, body: bytes | list[FanoutMessage]) -> dict[str, list[str]]:
        """A /notify body (one or more concatenated FanoutMessages) to every local client, in order.
        Returns, per client URI, what each message did; a body that does not decode raises ValueError."""
        if isinstance(body, (bytes, bytearray, memoryview)):
            try:
                messages = FanoutMessage.decode_sequence(bytes(body), scope=MLS10)
            except (DecodeError, EncodeError) as exc:
                raise ValueError(f"malformed /notify body: {exc}") from None
        else:
            messages = list(body)
        outcome: dict[str, list[str]] = {uri: [] for uri in self.clients}
        for message in messages:
            for uri, client in self.clients.items():
                outcome[uri].append(client.receive(message))
        return outcome
