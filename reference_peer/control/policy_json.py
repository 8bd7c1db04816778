"""The control API's JSON form of a room policy (contract schema ``RoomPolicy``) and room-policy-04.

``createRoom`` takes the JSON form and ``getRoom`` reports the effective policy in it. Members left
out take the reference peer's defaults. What the reference peer cannot host (preauthorization,
minimal-metadata rooms, a default role other than its member role) is refused as
``policy-unsupported`` rather than silently ignored.

Parent-dependent rooms (room-policy-04 §5): ``base.parentDependent: true`` with ``base.parentRoom``
naming a room this provider hosts as hub (POLICY-BASE-PARENT-SAME-HUB; another parent is
``policy-unsupported``, a missing one ``unsupported-value``); ``parentRoom`` without ``parentDependent``
is ``unsupported-value`` (POLICY-BASE-PARENT-ROOM-EMPTY-OTHERWISE). The creator must be a participant of
the parent (``not-permitted`` otherwise, control/backend.py). The BaseRoomPolicy then has
``parent_dependant`` true and ``parent_room`` = [the parent's room ID] (POLICY-BASE-PARENT-ROOM-SET).
The reference hub refuses adding a user who is not a participant of the parent
(POLICY-BASE-PARENT-STRICT-SUBSET, read as "a subset": the dependent room may hold every participant
of the parent) and refuses a hub transfer of either room (EXT-HUBXFER-PARENT-DEPENDENT). It does NOT
cascade removals: a user removed from the parent stays in its dependent rooms
(POLICY-BASE-PARENT-CASCADE-REMOVAL is not implemented).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import cache
from typing import Any

from ..overrides import NO_OVERRIDES, Overrides, step
from ..room.policy import ROLE_MEMBER, PolicyError, RoomPolicy
from ..wire.hub_transfer import CAP_TRANSFER_HUB
from ..wire.mimi import Uri
from ..wire.room_policy import BaseRoomPolicy, Bool, Capability, Role, RoleData, SingleSourceRoleChangeTargets
from . import load_openapi
from .errors import ControlError

# Contract name -> BaseRoomPolicy field holding a bool, and the optional uint32 limits.
_BASE_BOOLS = {
    "fixedMembership": "fixed_membership",
    "multiDevice": "multi_device",
    "pseudonymsAllowed": "pseudonyms_allowed",
    "persistentRoom": "persistent_room",
    "discoverable": "discoverable",
}
_BASE_LIMITS = {"maxClients": "max_clients", "maxUsers": "max_users"}


@cache
def _contract_capability_names() -> frozenset[str]:
    """The capability names the contract spells out; any other value is written as 0xNNNN."""
    schema = load_openapi()["components"]["schemas"]["Capability"]
    return frozenset(schema["anyOf"][0]["enum"])


def _capability_value(item: str) -> int:
    if item.startswith("0x"):
        return int(item, 16)
    if item == "canTransferHub":  # hub-transfer extension (docs/extensions/hub-transfer.md §3.1)
        return CAP_TRANSFER_HUB
    try:
        return int(Capability[item])
    except KeyError:
        raise ControlError.unsupported_value(f"unknown capability {item!r}") from None


def _capability_name(value: int) -> str:
    if value == CAP_TRANSFER_HUB and "canTransferHub" in _contract_capability_names():
        return "canTransferHub"
    try:
        name = Capability(value).name
    except ValueError:
        return f"0x{value:04x}"
    return name if name in _contract_capability_names() else f"0x{value:04x}"


def _role_from_json(doc: dict[str, Any]) -> Role:
    return Role(
        role_index=doc["index"],
        role_name=doc["name"].encode(),
        role_description=doc.get("description", "").encode(),
        role_capabilities=[_capability_value(c) for c in doc["capabilities"]],
        minimum_participants_constraint=doc.get("minParticipants", 0),
        maximum_participants_constraint=doc.get("maxParticipants"),
        minimum_active_participants_constraint=doc.get("minActiveParticipants", 0),
        maximum_active_participants_constraint=doc.get("maxActiveParticipants"),
        authorized_role_changes=[
            SingleSourceRoleChangeTargets(from_role_index=c["from"], target_role_indexes=list(c["to"]))
            for c in doc.get("authorizedRoleChanges", [])
        ],
    )


def _role_to_json(role: Role) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": role.role_index,
        "name": bytes(role.role_name).decode("utf-8", "replace"),
        "description": bytes(role.role_description).decode("utf-8", "replace"),
        "capabilities": [_capability_name(c) for c in role.role_capabilities],
        "minParticipants": role.minimum_participants_constraint,
        "minActiveParticipants": role.minimum_active_participants_constraint,
        "authorizedRoleChanges": [
            {"from": c.from_role_index, "to": list(c.target_role_indexes)} for c in role.authorized_role_changes
        ],
    }
    if role.maximum_participants_constraint is not None:
        out["maxParticipants"] = role.maximum_participants_constraint
    if role.maximum_active_participants_constraint is not None:
        out["maxActiveParticipants"] = role.maximum_active_participants_constraint
    return out


def parent_of(doc: dict[str, Any]) -> str | None:
    """The parent room a ``createRoom`` policy names for a parent-dependent room (None otherwise)."""
    base_doc = doc.get("base", {}) if isinstance(doc, dict) else {}
    return base_doc.get("parentRoom") if isinstance(base_doc, dict) and base_doc.get("parentDependent") else None


PARENT_ROOM_SET = step(
    "control.create-room.parent-room-set", "POLICY-BASE-PARENT-ROOM-SET",
    summary="a parent-dependent room's BaseRoomPolicy names its parent in parent_room",
)


def policy_from_json(
    doc: dict[str, Any], defaults: RoomPolicy, *, hosts: Callable[[str], bool] = lambda room: False,
    overrides: Overrides = NO_OVERRIDES,
) -> RoomPolicy:
    """The policy a ``createRoom`` asks for, on top of ``defaults``; ControlError if it cannot be hosted.
    ``hosts(room)``: whether this provider hosts ``room`` as hub (a parent room must be one);
    ``overrides``: the provider's (the caller's)."""
    if doc.get("preauthorized"):
        raise ControlError.policy_unsupported("the reference peer does not host preauthorized joins")
    if doc.get("minimalMetadata"):
        raise ControlError.policy_unsupported("the reference peer does not host minimal-metadata rooms")
    if doc.get("defaultRole", ROLE_MEMBER) != ROLE_MEMBER:
        raise ControlError.policy_unsupported(f"the reference peer's default role is {ROLE_MEMBER}")
    base_doc = doc.get("base", {})
    changes: dict[str, Any] = {}
    parent = base_doc.get("parentRoom")
    if base_doc.get("parentDependent"):
        if not isinstance(parent, str) or not parent:
            raise ControlError.unsupported_value("base.parentRoom: a parent-dependent room needs its parent's room ID")
        if not hosts(parent):
            raise ControlError.policy_unsupported(
                f"the parent room {parent} is not a room this provider hosts as hub (a parent-dependent room is "
                "hosted on its parent's hub, room-policy-04 §5)"
            )
        changes["parent_dependant"] = Bool.true
        changes["parent_room"] = [] if overrides.departs(PARENT_ROOM_SET) else [Uri(uri=parent.encode())]
    elif parent:
        raise ControlError.unsupported_value("base.parentRoom is set only for a parent-dependent room")
    for key, field_name in _BASE_BOOLS.items():
        if key in base_doc:
            changes[field_name] = Bool.true if base_doc[key] else Bool.false
    for key, field_name in _BASE_LIMITS.items():
        if key in base_doc:
            changes[field_name] = base_doc[key]
    base: BaseRoomPolicy = defaults.base.replace(**changes) if changes else defaults.base
    roles = RoleData(roles=[_role_from_json(r) for r in doc["roles"]]) if "roles" in doc else defaults.roles
    policy = dataclasses.replace(defaults, roles=roles, base=base)
    try:
        policy.validate()
        policy.components()  # every value must encode (e.g. uint32 ranges)
    except (PolicyError, ValueError) as exc:
        raise ControlError.unsupported_value(f"invalid policy: {exc}") from None
    return policy


def policy_to_json(policy: RoomPolicy) -> dict[str, Any]:
    """The effective policy, as ``getRoom`` reports it."""
    base = policy.base
    base_doc: dict[str, Any] = {key: getattr(base, name) == Bool.true for key, name in _BASE_BOOLS.items()}
    base_doc["parentDependent"] = base.parent_dependant == Bool.true
    if base.parent_room:
        base_doc["parentRoom"] = bytes(base.parent_room[0].uri).decode("utf-8", "replace")
    for key, name in _BASE_LIMITS.items():
        if getattr(base, name) is not None:
            base_doc[key] = getattr(base, name)
    return {
        "roles": [_role_to_json(r) for r in policy.roles.roles],
        "base": base_doc,
        "minimalMetadata": False,
        "defaultRole": ROLE_MEMBER,
    }
