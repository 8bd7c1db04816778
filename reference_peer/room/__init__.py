"""Room logic of the reference peer, free of HTTP: the participant list (:mod:`.participants`),
room-policy authorization (:mod:`.policy`), the hub's per-room state and rules (:mod:`.hub`) and
the follower's simulated clients (:mod:`.follower`)."""

from .follower import InboxEntry, LocalClients, OutgoingCommit, SimulatedClient
from .hub import (
    FanoutPlan,
    HubIdentity,
    HubRoom,
    PendingEntry,
    group_info_refusal,
    open_group_info_response,
    room_extensions,
)
from .participants import ChangeKind, ParticipantChange, ParticipantListError, apply_update, apply_updates, make_update
from .policy import ROLE_ADMIN, ROLE_MEMBER, PolicyError, Refusal, RoomPolicy, default_policy

__all__ = [
    "ROLE_ADMIN",
    "ROLE_MEMBER",
    "ChangeKind",
    "FanoutPlan",
    "HubIdentity",
    "HubRoom",
    "InboxEntry",
    "LocalClients",
    "OutgoingCommit",
    "ParticipantChange",
    "ParticipantListError",
    "PendingEntry",
    "PolicyError",
    "Refusal",
    "RoomPolicy",
    "SimulatedClient",
    "apply_update",
    "apply_updates",
    "default_policy",
    "group_info_refusal",
    "make_update",
    "open_group_info_response",
    "room_extensions",
]
