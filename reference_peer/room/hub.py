"""The hub's state and rules for one room (draft-ietf-mimi-protocol-06 §3, §5.3-§5.6, §7 with
room-policy-04): no HTTP here. The handlers decode nothing themselves: they pass the request
bytes, the authenticated sender domain and the time, and send what the returned
:class:`FanoutPlan` says.

State lives where the draft puts it: the participant list (0x0022), roles_list (0x0025) and
base_room_policy (0x0027) in the GroupContext app_data_dictionary, read back from the
:class:`~reference_peer.mls.HubView` after every commit, so that the hub's view and the clients'
views are computed by the same code (:func:`participants.app_data_handler`).

Every refusal is an answer, never an exception: decode and MLS errors map to the response codes.

:class:`HubRoom` keeps the state; its rules live in mixins, one module each: :mod:`.hub_update` (the
update request), :mod:`.hub_proposals`, :mod:`.hub_commits`, :mod:`.hub_own_proposals` (the hub's external
proposals), :mod:`.hub_removal` (removal bookkeeping), :mod:`.hub_members` (the room's invariants),
:mod:`.hub_transfer_rules` (hub transfer), :mod:`.hub_submit`, :mod:`.hub_groupinfo` and :mod:`.hub_fanout`
(fan-out planning). :mod:`.hub_records` holds the records and answers they share, :mod:`.hub_steps` the
named steps where a peer may be built to behave otherwise (:mod:`reference_peer.overrides`).
"""

from __future__ import annotations

from ..mls import HubView
from ..mls.group import (
    app_data_dictionary_extension,
    decode_message,
    external_senders_extension,
    required_capabilities_extension,
)
from ..overrides import NO_OVERRIDES, BuiltWith, Overrides
from ..wire.hub_transfer import HubRedirect
from ..wire.mimi import COMPONENT_PARTICIPANT_LIST, ParticipantListData
from ..wire.mls import Extension, ExtensionType, ExternalSender, GroupInfo, ProposalType
from . import participants as plist_mod
from .hub_commits import CommitRules
from .hub_fanout import FanoutPlanning
from .hub_groupinfo import GroupInfoRules, open_group_info_response
from .hub_members import MembershipInvariants
from .hub_own_proposals import HubProposalRules
from .hub_proposals import ProposalRules
from .hub_records import (
    GROUPINFO_LABEL,
    HOSTED_ROOMS,
    LEAF_HISTORY_EPOCHS,
    MLS10,
    FanoutPlan,
    HubIdentity,
    PendingEntry,
    group_info_refusal,
    sender_domain_of,
    submit_response,
    update_response,
)
from .hub_removal import RemovalBookkeeping
from .hub_submit import SubmitRules
from .hub_transfer_rules import TransferRules
from .hub_update import UpdateRules
from .naming import domain_of_uri, user_of_credential
from .policy import RoomPolicy
from .transfer import OutgoingTransfer

__all__ = [
    "FanoutPlan",
    "GROUPINFO_LABEL",
    "HOSTED_ROOMS",
    "HubIdentity",
    "HubRoom",
    "LEAF_HISTORY_EPOCHS",
    "MLS10",
    "PendingEntry",
    "group_info_refusal",
    "open_group_info_response",
    "room_extensions",
    "sender_domain_of",
    "submit_response",
    "update_response",
]


# Stored rooms are pickles: they name these classes by their home before the split (reference_peer.room.hub),
# so rooms written before and after it load in either.
for _record in (HubIdentity, FanoutPlan, PendingEntry):
    _record.__module__ = __name__


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


class HubRoom(
    MembershipInvariants,
    RemovalBookkeeping,
    UpdateRules,
    ProposalRules,
    CommitRules,
    HubProposalRules,
    TransferRules,
    SubmitRules,
    GroupInfoRules,
    FanoutPlanning,
    BuiltWith,
):
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
        overrides: Overrides = NO_OVERRIDES,
    ) -> None:
        self.overrides = overrides  # the peer's (reference_peer.overrides); never pickled
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

    @classmethod
    def from_group_info(
        cls,
        room_uri: str,
        identity: HubIdentity,
        group_info: bytes,
        *,
        ratchet_tree: bytes | None = None,
        provider_senders: dict[str, ExternalSender] | None = None,
        overrides: Overrides = NO_OVERRIDES,
    ) -> HubRoom:
        """A room whose creator sent its first GroupInfo (and tree); PolicyError/MLSError if unusable."""
        view = HubView.from_group_info(group_info, ratchet_tree=ratchet_tree)
        return cls(
            room_uri,
            identity,
            view,
            group_info=decode_message(group_info).group_info,
            provider_senders=provider_senders,
            overrides=overrides,
        )

    @classmethod
    def from_group(
        cls,
        room_uri: str,
        identity: HubIdentity,
        group: object,
        provider_senders: dict[str, ExternalSender] | None = None,
        overrides: Overrides = NO_OVERRIDES,
    ) -> HubRoom:
        """A room created by one of the hub's local clients (its Group is at hand)."""
        info = decode_message(group.group_info(ratchet_tree=False)).group_info  # type: ignore[attr-defined]
        return cls(
            room_uri,
            identity,
            HubView.from_group(group),
            group_info=info,  # type: ignore[arg-type]
            provider_senders=provider_senders,
            overrides=overrides,
        )

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

    def _leaf_users(self, view: HubView) -> dict[int, bytes | None]:
        return {index: user_of_credential(leaf.credential, self.overrides) for index, leaf in view.members()}

    def member_users(self) -> dict[int, bytes | None]:
        return self._leaf_users(self.view)

    def active_users(self, view: HubView | None = None) -> set[bytes]:
        return {u for u in self._leaf_users(view or self.view).values() if u is not None}

    def active_providers(self, view: HubView | None = None) -> set[str]:
        """Providers with at least one client in the group (PROTO-FANOUT-TO-ACTIVE-PROVIDERS)."""
        return {d for u in self.active_users(view) if (d := domain_of_uri(u)) is not None}

    def record_key_package(self, ref: bytes, provider_domain: str) -> None:
        """Remember which provider a relayed KeyPackage came from, to route its Welcome
        (PROTO-KEYMAT-KPREF-HUB-PROVIDER)."""
        self.kp_providers[bytes(ref)] = provider_domain
