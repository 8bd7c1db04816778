"""A small conformance check that drives the SUT through its control API, for the hostile-SUT tests.

Not named ``test_*.py``: the project's own test run must not collect it (it is a check, run only
with ``--sut``, where pytest collects the files named on its command line whatever their names).
It goes through the same fixtures as the scenario checks (``sut_party`` -> ``sut.require_control()``)
and makes three control calls: createUser, createRoom, getRoom.
"""

from __future__ import annotations

import pytest

from conformance.verdicts import expect


@pytest.mark.role("hub")
@pytest.mark.requirements("PROTO-ROOMSTATE-HUB-KEEPS-GROUPINFO")
def test_a_room_created_on_the_sut_is_hosted_there(sut_party):
    alice = sut_party.create_user("alice")
    room = sut_party.create_room(alice)
    state = sut_party.room(room)
    expect("PROTO-ROOMSTATE-HUB-KEEPS-GROUPINFO", state is not None and state["hubDomain"] == sut_party.domain,
           f"the room is not hosted by the SUT: {state}", evidence=f"getRoom: hubDomain {sut_party.domain}")
