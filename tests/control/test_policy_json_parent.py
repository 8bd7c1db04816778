"""Parent-dependent rooms in the control API's policy JSON (reference_peer/control/policy_json.py,
room-policy-04 §5) and the hub-transfer refusal for a room with dependents (room/transfer.py)."""

from __future__ import annotations

import pytest

from reference_peer.control.errors import POLICY_UNSUPPORTED, UNSUPPORTED_VALUE, ControlError
from reference_peer.control.policy_json import parent_of, policy_from_json, policy_to_json
from reference_peer.faults import overrides_for
from reference_peer.faults.parent_rooms import DEPENDENT_ROOM_PARENT_ID_MISSING
from reference_peer.room import default_policy
from reference_peer.room.transfer import dependent_rooms
from reference_peer.wire.room_policy import BaseRoomPolicy, Bool

PARENT = "mimi://a.example/r/parent"


def _hosts(room: str) -> bool:
    return room == PARENT


def test_a_parent_dependent_policy_names_its_parent():
    doc = {"base": {"parentDependent": True, "parentRoom": PARENT}}
    policy = policy_from_json(doc, default_policy(), hosts=_hosts)
    base = BaseRoomPolicy.decode(policy.base.encode())
    assert base.parent_dependant == Bool.true
    assert [bytes(u.uri) for u in base.parent_room] == [PARENT.encode()]
    assert policy_to_json(policy)["base"]["parentRoom"] == PARENT
    assert policy_to_json(policy)["base"]["parentDependent"] is True
    assert parent_of(doc) == PARENT
    assert parent_of({"base": {"parentRoom": PARENT}}) is None
    assert "parentRoom" not in policy_to_json(default_policy())["base"]


@pytest.mark.parametrize(
    ("base", "problem"),
    [
        ({"parentDependent": True}, UNSUPPORTED_VALUE),
        ({"parentRoom": PARENT}, UNSUPPORTED_VALUE),
        ({"parentDependent": True, "parentRoom": "mimi://b.example/r/elsewhere"}, POLICY_UNSUPPORTED),
    ],
)
def test_a_parent_dependent_policy_that_cannot_be_hosted_is_refused(base, problem):
    with pytest.raises(ControlError) as caught:
        policy_from_json({"base": base}, default_policy(), hosts=_hosts)
    assert caught.value.problem_type == problem.uri


def test_the_fault_leaves_parent_room_empty():
    policy = policy_from_json({"base": {"parentDependent": True, "parentRoom": PARENT}}, default_policy(),
                              hosts=_hosts, overrides=overrides_for([DEPENDENT_ROOM_PARENT_ID_MISSING]))
    assert policy.base.parent_dependant == Bool.true and policy.base.parent_room == []


class _Room:
    def __init__(self, parent_room=None):
        self.parent_room = parent_room


def test_dependent_rooms_are_found_by_their_parent():
    hosted = {PARENT: _Room(), "mimi://a.example/r/child": _Room(PARENT), "mimi://a.example/r/other": _Room()}
    assert dependent_rooms(PARENT, hosted) == ["mimi://a.example/r/child"]
    assert dependent_rooms("mimi://a.example/r/other", hosted) == []
