"""A parent-dependent room on the SUT as hub admits a participant of its parent that an authorized user adds
(room-policy-04 §5, §8.1.1).

POLICY-BASE-PARENT-STRICT-SUBSET keeps outsiders out of a parent-dependent room (test_parent_subset,
test_room_parent judge that); it does not let the hub refuse everyone. The room's creator on the SUT (a role able
to add participants) adds a participant of the parent room, the parent keeping one more participant, so the room
stays a strict subset of it under either reading (AMB-POLICY-STRICT-SUBSET): the add is authorized
(room-policy-04 §8.1.1 canAddParticipant: "the holder is also authorized to add any MLS clients matching the added
user") and the SUT as hub must accept it.
"""

from __future__ import annotations

import pytest

from conformance.scenarios.test_hub_accepts_valid_changes import judge_creators_add_accepted
from conformance.scenarios.test_parent_subset import _add, dependent_room
from conformance.scenarios.test_removal import setup_add
from conformance.verdicts import judging, observed

ADD_CLIENTS = "POLICY-CAP-ADD-PARTICIPANT-CLIENTS"


@pytest.mark.role("hub")
@pytest.mark.requirements(ADD_CLIENTS)
@pytest.mark.operations("createUser", "createRoom", "addParticipant")
def test_hub_accepts_its_creators_add_of_a_parent_participant_to_a_dependent_room(sut_party, ref_follower,
                                                                                   recorder):
    """The creator (SUT) of a parent room with Erin and Frank (reference follower) creates a parent-dependent
    room of it and adds Erin: the SUT as hub accepts the commit (Frank stays out, so the room is a proper
    subset of its parent). Any refusal, in the SUT's client or at its hub, fails: the creator's role is able to add
    participants and Erin is one of the parent's."""
    admin = sut_party.create_user("admin")
    parent = sut_party.create_room(admin)
    erin = ref_follower.create_user("erin")
    frank = ref_follower.create_user("frank")
    setup_add(sut_party, parent, admin, erin, hub=sut_party)
    setup_add(sut_party, parent, admin, frank, hub=sut_party)
    child = dependent_room(sut_party, admin, parent)
    with judging(ADD_CLIENTS):
        result = _add(sut_party, child, admin, erin)
        recorder.note(f"the creator's add of {erin.uri} (a participant of the parent room {parent}) to {child}: "
                      f"{result}")
        judge_creators_add_accepted(ADD_CLIENTS, result, erin,
                                    added=f", a participant of the parent room {parent}, to the parent-dependent room "
                                          f"{child}",
                                    authorized=" and the room stays a strict subset of its parent")
    observed(ADD_CLIENTS, f"the SUT as hub accepted its creator's commit adding {erin.uri}, a participant of the "
             f"parent room, to the parent-dependent room (the parent keeps {frank.uri} besides)")
