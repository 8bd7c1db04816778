"""Parent-dependent rooms, the SUT as hub (room-policy-04 §5: BaseRoomPolicy ``parent_dependant`` and
``parent_room``).

On the SUT: a parent room created by a SUT admin with reference-follower participants, and a
parent-dependent room of it (createRoom with ``base.parentDependent`` and ``base.parentRoom``). What is
judged is MIMI: the BaseRoomPolicy component in the GroupContext a reference follower client holds (the
group state the SUT hub committed and fanned out), and the SUT's UpdateRoomResponse to a reference
follower admin's commits adding users to the dependent room. A SUT whose control API refuses to create a
parent-dependent room makes the checks NOT_APPLICABLE. Set-up adds go through
:func:`~conformance.scenarios.test_removal.setup_add` (one readable outcome per way a set-up fails).
"""

from __future__ import annotations

import pytest

from conformance.harness.control import ControlProblem
from conformance.scenarios.test_removal import fanned_out_since, setting_up, setup_add
from conformance.verdicts import HarnessError, ambiguous, expect, fail, not_applicable, observed
from reference_peer.room import participants as plist_mod
from reference_peer.room.policy import COMPONENT_BASE_POLICY
from reference_peer.wire.codec import DecodeError, EncodeError
from reference_peer.wire.mimi import Protocol, UpdateRequest, UpdateResponseCode, UpdateRoomResponse
from reference_peer.wire.room_policy import BaseRoomPolicy, Bool

ROOM_SET = "POLICY-BASE-PARENT-ROOM-SET"
STRICT_SUBSET = "POLICY-BASE-PARENT-STRICT-SUBSET"
ADMIN = 3


def _room(sut_party, ref_follower, *, admins=(), members=()):
    """A room on the SUT created by a SUT admin, with reference-follower admins and members; returns
    (room, SUT admin, {name: user})."""
    admin = sut_party.create_user("admin")
    room = sut_party.create_room(admin)
    users = {}
    for name in (*admins, *members):
        users[name] = ref_follower.create_user(name)
        setup_add(sut_party, room, admin, users[name], hub=sut_party, **({"role": ADMIN} if name in admins else {}))
    with setting_up("the reference follower's clients to join the parent room"):
        ref_follower.wait_epoch(room, sut_party.room(room)["epoch"], what="the reference follower's clients to join")
    return room, admin, users


def create_dependent_room(sut_party, ref_follower, parent: str, admin, users: dict, *, admins=("dave",)) -> str:
    """A parent-dependent room of ``parent`` on the SUT, created by ``admin``, with ``users`` (admins as
    admins); NOT_APPLICABLE when the SUT's control API does not create such rooms."""
    policy = {"base": {"parentDependent": True, "parentRoom": parent}}
    try:
        room = sut_party.create_room(admin, policy=policy)
    except ControlProblem as exc:
        if exc.status in (422, 501):
            not_applicable(f"the SUT's control API does not create a parent-dependent room ({policy}): {exc}")
        raise
    for name, user in users.items():
        setup_add(sut_party, room, admin, user, hub=sut_party, **({"role": ADMIN} if name in admins else {}))
    with setting_up("the reference follower's clients to join the parent-dependent room"):
        ref_follower.wait_epoch(room, sut_party.room(room)["epoch"], what="the reference follower's clients to join "
                                "the parent-dependent room")
    return room


def _synced(ref_follower, sut_party, room, client, poll_until):
    """A copy of a reference follower client's state once it is at the SUT hub's epoch (set-up)."""
    epoch = sut_party.room(room)["epoch"]
    with setting_up(f"{client} to reach epoch {epoch}"):
        return poll_until(lambda: (m := ref_follower.member_state(room, client)).epoch >= epoch and m,
                          what=f"{client} to reach epoch {epoch}")


def _base_policy(member, requirement: str) -> BaseRoomPolicy:
    """The BaseRoomPolicy in a reference client's GroupContext (strictly decoded; AMBIGUOUS when only a
    reading an ambiguity allows decodes it)."""
    raw = member.group.app_data().get(COMPONENT_BASE_POLICY)
    if raw is None:
        fail(f"the room's GroupContext has no base_room_policy component (0x{COMPONENT_BASE_POLICY:04x})",
             requirement=requirement)
    try:
        return BaseRoomPolicy.decode(bytes(raw))
    except (DecodeError, EncodeError) as strict:
        try:
            decoded = BaseRoomPolicy.decode_tolerant(bytes(raw))
        except (DecodeError, EncodeError):
            fail(f"the room's BaseRoomPolicy does not decode: {strict}", requirement=requirement)
        ids = sorted({leniency.ambiguity for leniency in decoded.leniencies})
        ambiguous(ids[0], f"the room's BaseRoomPolicy decodes only with the reading of {ids}: {strict}")
        raise AssertionError("unreachable") from None


def _update_answers(ref_follower, room: str, after: int) -> list[tuple[str, bool, bytes]]:
    """What the hub answered to the reference follower's /update requests for ``room`` since ``after``: per
    request (the answer readably, whether it was accepted, the handshake MLSMessage sent). -06 §5.3 names no
    HTTP status for a refusal (AMB-FAILURE-CODE-STATUS): any non-2xx status or any response code but success
    is a refusal."""
    answers = []
    for t in ref_follower.traffic(after, endpoint="update", direction="out"):
        if t.value != room:
            continue
        try:
            sent = UpdateRequest.decode(t.request, scope={"protocol": Protocol.mls10}).bundle.proposalOrCommit.encode()
        except (DecodeError, EncodeError):
            sent = b""
        if t.status is None or not 200 <= t.status < 300:
            answers.append((f"HTTP {t.status}" + (f" ({t.error})" if t.error else ""), False, sent))
            continue
        try:
            answer = UpdateRoomResponse.decode(t.response)
        except (DecodeError, EncodeError) as exc:
            fail(f"the hub answered HTTP {t.status} to a commit with a body that is no UpdateRoomResponse: {exc}",
                 requirement=STRICT_SUBSET)
        success = answer.responseCode == UpdateResponseCode.success
        answers.append((answer.responseCode.name + ("" if success else f" {answer.errorDescription!r}"), success, sent))
    return answers


@pytest.mark.role("hub")
@pytest.mark.requirements(ROOM_SET)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_dependent_room_policy_names_its_parent(sut_party, ref_follower, poll_until, recorder):
    """The BaseRoomPolicy of a parent-dependent room created on the SUT has parent_dependant true and
    parent_room = [the parent's room ID]."""
    parent, admin, users = _room(sut_party, ref_follower, admins=(), members=("bob",))
    child = create_dependent_room(sut_party, ref_follower, parent, admin, users, admins=())
    member = _synced(ref_follower, sut_party, child, users["bob"].client, poll_until)
    base = _base_policy(member, ROOM_SET)
    rooms = [bytes(u.uri).decode(errors="replace") for u in base.parent_room]
    recorder.note(f"parent-dependent room {child}: parent_dependant {base.parent_dependant.name}, parent_room {rooms}")
    if base.parent_dependant != Bool.true:
        raise HarnessError(f"the SUT created {child} when asked for a parent-dependent room, but its BaseRoomPolicy "
                           "has parent_dependant false: the control adapter did not create what was asked")
    expect(ROOM_SET, rooms[:1] == [parent], f"the BaseRoomPolicy of a parent-dependent room has parent_room "
           f"{rooms}, not the parent's room ID [{parent!r}]",
           evidence=f"the dependent room's BaseRoomPolicy has parent_dependant true and parent_room {rooms}")


@pytest.mark.role("hub")
@pytest.mark.requirements(STRICT_SUBSET)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_dependent_room_admits_only_parent_participants(sut_party, ref_follower, poll_until, recorder):
    """A follower admin's commit adding to the parent-dependent room a user who is not in the parent is
    refused; one adding a participant of the parent is accepted."""
    # frank stays out of the child, so adding erin leaves it a proper subset of the parent: both readings
    # of "strict subset" (AMB-POLICY-STRICT-SUBSET) accept that add.
    parent, admin, users = _room(sut_party, ref_follower, admins=("dave",), members=("erin", "frank"))
    dave = {"dave": users["dave"]}
    child = create_dependent_room(sut_party, ref_follower, parent, admin, dave)
    carol = ref_follower.create_user("carol")

    first = ref_follower.traffic_mark()
    added = ref_follower.add(child, users["dave"], carol)
    recorder.note(f"Add of {carol.uri} (not in the parent room) to the parent-dependent room: {added}")
    answers = _update_answers(ref_follower, child, first)
    if not answers:
        raise HarnessError(f"the suite's reference follower sent no commit adding {carol.uri} (its addParticipant "
                           f"ended {added.get('outcome')!r}), so there is nothing to judge")
    if any(accepted for _, accepted, _ in answers):
        fail(f"the hub accepted a commit adding {carol.uri}, who is not a participant of the parent room, to a "
             "parent-dependent room", requirement=STRICT_SUBSET)
    refusal = ", ".join(label for label, _, _ in answers)
    refused = [sent for _, _, sent in answers if sent]

    mark = ref_follower.traffic_mark()
    added = ref_follower.add(child, users["dave"], users["erin"])
    recorder.note(f"Add of {users['erin'].uri} (a participant of the parent room): {added}")
    answers = _update_answers(ref_follower, child, mark)
    if not any(accepted for _, accepted, _ in answers):
        not_applicable("the SUT as hub also refused a commit adding a participant of the parent room to the "
                       f"parent-dependent room ({[label for label, _, _ in answers]}), so its refusal of an outsider "
                       "cannot be told from a room that admits nobody")
    # The refusal's effect: the accepted commit is fanned out after the refused one would have been, and the
    # group state the reference follower then holds lists erin, not carol.
    member = _synced(ref_follower, sut_party, child, users["dave"].client, poll_until)
    if any(fanned_out_since(ref_follower, first, sent) for sent in refused):
        fail(f"the hub refused ({refusal}) the commit adding {carol.uri} but fanned it out", requirement=STRICT_SUBSET)
    listed = plist_mod.roles_by_user(member.participant_list())
    if carol.uri.encode() in listed:
        fail(f"the hub refused ({refusal}) the commit adding {carol.uri}, yet the room's participant list at epoch "
             f"{member.epoch} lists her", requirement=STRICT_SUBSET)
    observed(STRICT_SUBSET, f"the commit adding a user outside the parent room was refused ({refusal}) and not "
             f"applied (the participant list at epoch {member.epoch} does not list her); one adding a participant "
             "of the parent was accepted")
