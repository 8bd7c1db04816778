"""Faults of the multi-device area (checks: conformance/scenarios/test_multi_device.py; a new device's external
commit with a PartialGroupInfo: conformance/scenarios/test_external_commit.py)."""

import dataclasses

from ..room.participants import ChangeKind, ParticipantChange
from ..room.policy import PolicyError
from ..wire.room_policy import ROLE_INDEX_NON_PARTICIPANT
from .registry import define

AREA = "multidevice"


def _first_leaf_key(new: object) -> bytes:
    """The signature key of the new epoch's leaf 0 (the room's first member, never an external joiner)."""
    return bytes(new.tree.leaf(0).signature_key)  # type: ignore[attr-defined]


def _role_change_as_departure(room: object, changes: list[ParticipantChange]) -> None:
    """Rewrite, in place, each role change of the commit as a departure (to role 0), so the hub takes the
    Removes of that user's clients as part of removing the user and asks no capability for them."""
    changes[:] = [
        dataclasses.replace(c, to_role=ROLE_INDEX_NON_PARTICIPANT) if c.kind is ChangeKind.role else c
        for c in changes
    ]


def _refuse_external_join(room: object, joiner: bytes | None) -> None:
    raise PolicyError("an external commit is not taken")


def _refuse_join_without_a_client(room: object, joiner: bytes | None) -> None:
    if joiner not in room.active_users():  # type: ignore[attr-defined]
        raise PolicyError("an external commit by a participant with no client in the group is not taken")


def _refuse_own_removes(room: object, sender_domain: str, applied: list) -> None:
    """Refuse a commit that includes a Remove the hub itself proposed (e.g. one regenerated after an external
    commit), as if the hub's own proposals needed a role's canKick."""
    from ..wire.mls import ProposalType, SenderType

    hub_key = bytes(room.identity.external_sender.signature_key)  # type: ignore[attr-defined]
    senders = room.view.external_senders()  # type: ignore[attr-defined]
    for entry in applied:
        sender = entry.sender
        if entry.proposal.proposal_type == ProposalType.remove and sender.sender_type == SenderType.external \
                and sender.sender_index < len(senders) and bytes(senders[sender.sender_index].signature_key) == hub_key:
            raise PolicyError("a commit including the hub's own Remove is not taken")


NEW_DEVICE_GROUPINFO_REFUSED = define(
    "new-device-groupinfo-refused", area=AREA,
    requirements=["PROTO-GROUPINFO-NEW-DEVICE-JOIN", "POLICY-CAP-ADD-OWN-CLIENT"],
    description="as hub, answers notAuthorized to a groupInfo request from a new client of a participant "
    "(a client not yet in the group), so new devices cannot join",
    departs=("hub.groupinfo.serve-new-device",),
)
PARTIAL_GROUPINFO_FIRST_LEAF_SIGNS = define(
    "partial-groupinfo-first-leaf-signs", area=AREA, requirements=["PROTO-UPDATE-PARTIAL-GROUPINFO"],
    description="as hub, rebuilds the GroupInfo of an external commit carrying a PartialGroupInfo with leaf 0 as "
    "signer instead of the joiner's new leaf, so the rebuilt GroupInfo does not verify and the join is refused",
    hooks={"hub.commit.partial-groupinfo-joiner-signs": _first_leaf_key},
)
NEW_DEVICE_GROUPINFO_FROM_ITSELF = define(
    "new-device-groupinfo-from-itself", area=AREA, requirements=["PROTO-GROUPINFO-FOLLOWER-JOIN-NEW-DEVICE"],
    description="as follower, looks the GroupInfo for a user's new client up among the rooms it hosts itself "
    "instead of asking the room's hub, finds none, and the new client never joins",
    departs=("follower.join.groupinfo-from-the-hub",),
)
NEW_DEVICE_SKIPS_ROOMS = define(
    "new-device-skips-rooms", area=AREA, requirements=["PROTO-GROUPINFO-FOLLOWER-JOIN-NEW-DEVICE"],
    description="as follower, provisions a user's new client without joining it to the user's rooms",
    departs=("control.add-client.join-rooms",),
)
OWN_CLIENT_REMOVAL_REFUSED = define(
    "own-client-removal-refused", area=AREA, requirements=["POLICY-CAP-REMOVE-OWN-CLIENT"],
    description="as hub, refuses a participant's Remove or SelfRemove of its own client as if its role "
    "lacked canRemoveOwnClient",
    departs=("hub.commit.allow-own-client-removal",),
)
EXTERNAL_JOIN_WITHOUT_ADD_OWN_CLIENT = define(
    "external-join-without-add-own-client", area=AREA, requirements=["POLICY-CAP-ADD-OWN-CLIENT"],
    description="as hub, serves the GroupInfo to a participant's new client and accepts its external commit although "
    "the participant's role lacks canAddOwnClient",
    departs=("hub.external-join.require-add-own-client",),
)
ROLE_CHANGE_ADDS_CLIENTS = define(
    "role-change-adds-clients", area=AREA, requirements=["POLICY-CAP-ADD-PARTICIPANT-CLIENTS"],
    description="as hub, lets a commit that changes a listed user's role (not only one adding the user) add that "
    "user's clients without the adder's canAddParticipant",
    departs=("hub.commit.add-clients-with-addition-only",),
)
ROLE_CHANGE_REMOVES_CLIENTS = define(
    "role-change-removes-clients", area=AREA, requirements=["POLICY-CAP-KICK-KEEPS-PARTICIPANT"],
    description="as hub, lets a commit that changes a listed user's role (not only one removing or banning the "
    "user) remove that user's clients without the remover's canKick",
    hooks={"hub.commit.accept-authorized-plist-changes": _role_change_as_departure},
)
SINGLE_DEVICE_IGNORED = define(
    "single-device-ignored", area=AREA, requirements=["POLICY-BASE-SINGLE-DEVICE"],
    description="as hub, lets a second client of a user join a room whose policy has multi_device false",
    departs=("hub.members.single-device",),
)
MAX_CLIENTS_IGNORED = define(
    "max-clients-ignored", area=AREA, requirements=["POLICY-BASE-MAX-CLIENTS"],
    description="as hub, accepts commits that take the group above the room's max_clients",
    departs=("policy.constraints.enforce-max-clients",),
)
MAX_CLIENTS_EXCLUSIVE = define(
    "max-clients-exclusive", area=AREA, requirements=["POLICY-BASE-MAX-CLIENTS"],
    description="as hub, reads max_clients as exclusive: refuses a commit that takes the group to exactly "
    "max_clients clients (one client fewer than the policy allows)",
    departs=("policy.constraints.max-clients-inclusive",),
)
EXTERNAL_JOIN_REFUSED = define(
    "external-join-refused", area=AREA, requirements=["PROTO-GROUPINFO-NEW-DEVICE-JOIN", "POLICY-CAP-ADD-OWN-CLIENT"],
    description="as hub, serves a participant's new client the GroupInfo but answers invalidProposal to its valid "
    "external commit, although the participant's role holds canAddOwnClient",
    hooks={"hub.external-join.accept": _refuse_external_join},
)
EXTERNAL_JOIN_NEEDS_A_CLIENT = define(
    "external-join-needs-a-client", area=AREA, requirements=["PROTO-GROUPINFO-NEW-DEVICE-JOIN", "POLICY-CAP-ADD-OWN-CLIENT"],
    description="as hub, answers invalidProposal to the valid external commit of a participant who has no client in "
    "the group yet (e.g. one removed and then listed again), although its role holds canAddOwnClient; a participant "
    "with a client already in the group adds a new one as usual",
    hooks={"hub.external-join.accept": _refuse_join_without_a_client},
)
EXTERNAL_JOIN_OF_DEPARTING_USER = define(
    "external-join-of-departing-user", area=AREA, requirements=["PROTO-REMOVAL-BLOCK-COMMITS"],
    description="as hub, accepts the external commit of a new client of a user whose removal it has accepted but "
    "not yet committed, as if the user were not being removed",
    departs=("hub.external-join.refuse-departing-user",),
)
HUB_REMOVE_NEEDS_CAPABILITY = define(
    "hub-remove-needs-capability", area=AREA, requirements=["POLICY-CAP-ADD-PARTICIPANT-CLIENTS"],
    description="as hub, refuses every commit that includes a Remove it proposed itself (e.g. a device's SelfRemove "
    "regenerated after an external commit, which it then requires), as if its own proposals needed canKick, so the "
    "creator's next valid add is refused",
    hooks={"hub.commit.accept-authorized-add": _refuse_own_removes},
)
