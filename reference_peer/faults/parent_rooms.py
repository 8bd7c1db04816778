"""Faults of parent-dependent rooms (room-policy-04 §5) and of the hub-transfer rule that keeps them on
their hub (docs/extensions/hub-transfer.md §5.1, EXT-HUBXFER-PARENT-DEPENDENT). Checks:
conformance/scenarios/test_hub_transfer_parent_rooms.py and conformance/scenarios/test_room_parent.py."""

from __future__ import annotations

from .registry import define

AREA = "portability"
ROOM_STATE = "room-state"

TRANSFER_MOVES_DEPENDENT_ROOM = define(
    "transfer-moves-dependent-room",
    area=AREA,
    requirements=["EXT-HUBXFER-PARENT-DEPENDENT"],
    description="the hub accepts a transfer request for a parent-dependent room (and sends the target a prepare)",
    departs=("transfer.verify.dependent-room-stays",),
)
TRANSFER_MOVES_PARENT_ROOM = define(
    "transfer-moves-parent-room",
    area=AREA,
    requirements=["EXT-HUBXFER-PARENT-DEPENDENT"],
    description="the hub accepts a transfer request for a room that has parent-dependent rooms on it",
    departs=("transfer.verify.parent-room-stays",),
)
DEPENDENT_ROOM_ADMITS_OUTSIDERS = define(
    "dependent-room-admits-outsiders",
    area=ROOM_STATE,
    requirements=["POLICY-BASE-PARENT-STRICT-SUBSET"],
    description="the hub accepts a commit adding to a parent-dependent room a user who is not a participant "
    "of the parent room",
    departs=("hub.commit.parent-strict-subset",),
)
DEPENDENT_ROOM_PARENT_ID_MISSING = define(
    "dependent-room-parent-id-missing",
    area=ROOM_STATE,
    requirements=["POLICY-BASE-PARENT-ROOM-SET"],
    description="a parent-dependent room is created with parent_dependant true but an empty parent_room in its "
    "BaseRoomPolicy (the hub still knows the parent and enforces the other rules)",
    departs=("control.create-room.parent-room-set",),
)
