"""A parent-dependent room on the SUT as hub admits no outsider, whoever adds it (room-policy-04 §5).

room-policy-04 §5 (POLICY-BASE-PARENT-STRICT-SUBSET): "In rooms with parent_dependent set to true (a
parent-dependent room), the list of participants of the room MUST be a strict subset of the participants of the
parent room." test_room_parent judges a reference follower admin's commits; here the room's own creator (a SUT
user, whose control API gives it "a role able to add participants") adds a user who is not in the parent room, and
then one who is. What is judged is MIMI: whether a Welcome for the parent-dependent room reached the outsider's
provider (the suite's reference follower), and the participant list a reference client holds once the parent's
participant has joined. The control API's answer to the outsider's add is only noted: a SUT may refuse it in its
client or at its hub, with any answer the draft leaves open.
"""

from __future__ import annotations

import pytest

from conformance.harness.actors import _refused_for_consent
from conformance.harness.control import ControlApiError, ControlProblem
from conformance.harness.polling import PollTimeout
from conformance.scenarios.notify_bodies import read_fanouts
from conformance.scenarios.test_removal import setting_up, setup_add
from conformance.verdicts import fail, not_applicable, observed
from reference_peer.room import participants as plist_mod
from reference_peer.wire.codec import DecodeError, EncodeError
from reference_peer.wire.mls import WireFormat

STRICT_SUBSET = "POLICY-BASE-PARENT-STRICT-SUBSET"


def _welcomes_for(ref_follower, room: str, mark: int) -> list[int]:
    """The seq of each /notify for ``room`` the reference follower received since ``mark`` carrying a Welcome
    (a body that does not decode is another check's to judge)."""
    found = []
    for item in ref_follower.traffic(mark, endpoint="notify", direction="in"):
        if item.value != room:
            continue
        try:
            messages = read_fanouts(item.request, record=False)
        except (DecodeError, EncodeError, ValueError):
            continue
        if any(m.message.wire_format == WireFormat.mls_welcome for m in messages):
            found.append(item.seq)
    return found


def _add(sut_party, room: str, actor, user) -> dict:
    """addParticipant through the SUT, consent granted where the reference follower asks for it; a refusal of the
    control API is an answer like any other (the draft names none)."""
    try:
        result = sut_party.add(room, actor, user)
        if _refused_for_consent(result):
            result = sut_party._add_with_consent(room, actor, user, result)
    except ControlApiError as exc:
        return {"outcome": f"control API {exc.status}", "detail": str(exc)}
    return result


def dependent_room(sut_party, admin, parent: str) -> str:
    """A parent-dependent room of ``parent`` that ``admin`` creates on the SUT; NOT_APPLICABLE where the SUT's
    control API does not create one (422, 501)."""
    policy = {"base": {"parentDependent": True, "parentRoom": parent}}
    try:
        return sut_party.create_room(admin, policy=policy)
    except ControlProblem as exc:
        if exc.status in (422, 501):
            not_applicable(f"the SUT's control API does not create a parent-dependent room ({policy}): {exc}")
        raise


@pytest.mark.role("hub")
@pytest.mark.requirements(STRICT_SUBSET)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_dependent_room_refuses_its_creators_add_of_an_outsider(sut_party, ref_follower, poll_until, recorder):
    """The creator (SUT) of a parent-dependent room adds Carol (reference follower, not in the parent room): no
    Welcome for the room may reach her provider, and once Erin (a participant of the parent) has been added, the
    participant list Erin's client holds does not list Carol. Erin's add being refused too makes the check
    NOT_APPLICABLE (a room that admits nobody shows nothing about outsiders)."""
    admin = sut_party.create_user("admin")
    parent = sut_party.create_room(admin)
    erin = ref_follower.create_user("erin")
    setup_add(sut_party, parent, admin, erin, hub=sut_party)
    child = dependent_room(sut_party, admin, parent)
    carol = ref_follower.create_user("carol")

    mark = ref_follower.traffic_mark()
    outsider = _add(sut_party, child, admin, carol)
    recorder.note(f"the creator's add of {carol.uri} (not in the parent room {parent}) to {child}: {outsider}")
    if outsider.get("outcome") == "accepted":
        try:
            welcomed = poll_until(lambda: _welcomes_for(ref_follower, child, mark),
                                  what=f"the Welcome adding {carol.uri} at the reference follower")
            seen = f"and sent her provider the Welcome (/notify #{welcomed[0]})"
        except PollTimeout:
            seen = "(its control API answered accepted; no Welcome reached her provider)"
        fail(f"the hub accepted its creator's commit adding {carol.uri}, who is not a participant of the parent room "
             f"{parent}, to the parent-dependent room {child} {seen}", requirement=STRICT_SUBSET)

    inside = _add(sut_party, child, admin, erin)
    recorder.note(f"the creator's add of {erin.uri} (a participant of the parent room): {inside}")
    if inside.get("outcome") != "accepted":
        not_applicable(f"the SUT also refused its creator's add of {erin.uri}, a participant of the parent room, to "
                       f"the parent-dependent room ({inside.get('outcome')}), so its refusal of an outsider cannot be "
                       "told from a room that admits nobody")
    epoch = sut_party.room(child)["epoch"]
    with setting_up(f"erin's client to join {child} at epoch {epoch}"):
        member = poll_until(lambda: (m := ref_follower.member_state(child, erin.client)).epoch >= epoch and m,
                            what=f"erin's client to reach epoch {epoch} of the parent-dependent room")
    welcomes = _welcomes_for(ref_follower, child, mark)
    listed = plist_mod.roles_by_user(member.participant_list())
    if carol.uri.encode() in listed:
        fail(f"the participant list of the parent-dependent room {child} at epoch {member.epoch} lists {carol.uri}, "
             f"who is not a participant of the parent room {parent}", requirement=STRICT_SUBSET)
    observed(STRICT_SUBSET, f"the creator's add of an outsider ended {outsider.get('outcome')!r} and the participant "
             f"list at epoch {member.epoch} (after a participant of the parent joined; {len(welcomes)} Welcome(s) "
             f"for the room at the reference follower) does not list her")
