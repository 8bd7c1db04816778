"""Positive controls, the SUT as hub: a VALID change is accepted, and its Welcome delivered (issue 18).

Elsewhere a hub that refuses valid changes is met in a check's set-up and reported NOT_APPLICABLE or
HARNESS_ERROR, never FAIL. Here the valid change is what is judged:

* the room's creator (a SUT user; the control API gives the creator "a role able to add participants")
  adds a user of the suite's reference follower: the SUT as hub must accept that commit and send the
  Welcome to the reference follower, the provider of the KeyPackage it names;
* a reference follower admin (role 3, given by the SUT's admin in set-up) sends, over MIMI, a valid
  PublicMessage commit adding another reference follower user, with its Welcome, the committer's full
  GroupInfo and a full ratchetTreeOption (what the suite's reference follower sends): the hub must answer
  the UpdateRequest success and fan the Welcome out to the reference follower.

The draft's sentences (room-policy-04 §8.1.1, -06 §5.5):
  "When the participant list addition for the target role is authorized, the holder is also authorized to
  add any MLS clients matching the added user to the room's MLS group." (POLICY-CAP-ADD-PARTICIPANT-CLIENTS)
  "An MLS Welcome message is sent to the providers and local users associated with the KeyPackageRef values
  in the secrets array of the Welcome." (PROTO-FANOUT-WELCOME-ROUTING)

What the draft leaves open is accepted: the HTTP status of a success (any 2xx whose UpdateRoomResponse is
success; a refusal is any non-2xx status or any other code, AMB-FAILURE-CODE-STATUS), whether the Welcome
travels alone or concatenated with the commit in one /notify, and the /notify body readings the register
accepts (notify_bodies). Creating users and the room, and the set-up add of the follower admin in the
second check, stay set-up (setting_up, setup_add): they are not what is judged.
"""

from __future__ import annotations

import pytest

from conformance.harness.actors import _refused_for_consent
from conformance.harness.control import ControlApiError
from conformance.scenarios.notify_bodies import ambiguous_if_read_otherwise, read_fanouts
from conformance.scenarios.refusals import update_answer
from conformance.scenarios.test_removal import setting_up, setup_add
from conformance.verdicts import HarnessError, fail, judging, observed
from reference_peer.wire.codec import DecodeError, EncodeError
from reference_peer.wire.mimi import UpdateResponseCode
from reference_peer.wire.mls import WireFormat

ADD_CLIENTS = "POLICY-CAP-ADD-PARTICIPANT-CLIENTS"
WELCOME_ROUTING = "PROTO-FANOUT-WELCOME-ROUTING"
ADMIN = 3  # the admin role of the suite's default policy (as test_room_parent gives a follower admin)


def _welcomes_since(ref_follower, room: str, mark: int) -> list[int]:
    """The seq of each /notify for ``room`` the reference follower received since ``mark`` that carries a
    Welcome. A body that decodes in no reading the register accepts is a miss of WELCOME_ROUTING."""
    found = []
    for item in ref_follower.traffic(mark, endpoint="notify", direction="in"):
        if item.value != room:
            continue
        try:
            messages = read_fanouts(item.request)
        except (DecodeError, EncodeError, ValueError) as exc:
            fail(f"a /notify body the SUT sent for {room} does not decode as FanoutMessages: {exc}",
                 requirement=WELCOME_ROUTING)
        if any(m.message.wire_format == WireFormat.mls_welcome for m in messages):
            found.append(item.seq)
    return found


def _judge_welcome_delivered(ref_follower, room: str, mark: int, who: str, poll_until) -> None:
    with judging(WELCOME_ROUTING):
        poll_until(lambda: _welcomes_since(ref_follower, room, mark),
                   what=f"a /notify carrying the Welcome for {who} at the reference follower")
    ambiguous_if_read_otherwise(WELCOME_ROUTING, f"the /notify carrying the Welcome for {who}")
    observed(WELCOME_ROUTING, f"the Welcome adding {who}, whose KeyPackage the reference follower provided, "
             f"reached the reference follower in a /notify for {room}")


def _update_answers(ref_follower, room: str, mark: int) -> list[tuple[str, bool]]:
    """(the hub's answer, readably; whether it is success) for each /update the reference follower sent for
    ``room`` since ``mark``. A 2xx answer whose body is no UpdateRoomResponse is a miss of ADD_CLIENTS (it is
    no success); a non-2xx one is a refusal whatever its body (AMB-FAILURE-CODE-STATUS)."""
    answers = []
    for item in ref_follower.traffic(mark, endpoint="update", direction="out"):
        if item.value != room:
            continue
        if item.status is None:
            answers.append((f"no answer ({item.error})", False))
            continue
        try:
            answer = update_answer(item.status, item.response)
        except (DecodeError, EncodeError, ValueError) as exc:
            fail(f"the hub answered HTTP {item.status} to a valid commit with a body that is no "
                 f"UpdateRoomResponse: {exc}", requirement=ADD_CLIENTS)
        success = answer.responseCode == UpdateResponseCode.success
        answers.append((f"HTTP {item.status} {answer.responseCode.name}"
                        + ("" if success else f" {answer.errorDescription!r}"), success))
    return answers


def judge_creators_add_accepted(requirement: str, result: dict, user, *, added: str = "", authorized: str) -> None:
    """The SUT as hub must have accepted its room creator's add of the reference follower's ``user``
    (``result``: the control API's answer). noKeyMaterial is the suite's own peer failing (HarnessError); any
    other outcome fails ``requirement``, the message naming the add (``added``: what follows the user's URI) and
    why the creator may make it (``authorized``: what follows "able to add participants")."""
    outcome = result.get("outcome")
    if outcome == "noKeyMaterial":
        raise HarnessError(f"set-up failed: the SUT got no usable KeyPackage for {user.uri} from the suite's "
                           f"reference follower ({result.get('keyMaterial')}): the suite's own peer failed")
    if outcome != "accepted":
        fail(f"the SUT as hub refused its room creator's add of {user.uri}{added} ({outcome}: "
             f"{result.get('hubResponse') or result}); the creator holds a role able to add participants{authorized}",
             requirement=requirement)


@pytest.mark.role("hub")
@pytest.mark.requirements(ADD_CLIENTS, WELCOME_ROUTING)
@pytest.mark.operations("createUser", "createRoom", "addParticipant")
def test_hub_accepts_its_creators_add_of_a_follower_user(sut_party, ref_follower, poll_until, recorder):
    """The room's creator on the SUT adds a reference follower user: the SUT as hub accepts the commit (it
    may not refuse an add its own policy authorizes, room-policy-04 §8.1.1 canAddParticipant: "the holder is
    also authorized to add any MLS clients matching the added user") and sends the Welcome to the reference
    follower (-06 §5.5: "An MLS Welcome message is sent to the providers ... associated with the
    KeyPackageRef values in the secrets array of the Welcome")."""
    admin = sut_party.create_user("admin")
    room = sut_party.create_room(admin)
    bob = ref_follower.create_user("bob")
    mark = ref_follower.traffic_mark()
    with judging(ADD_CLIENTS):
        try:
            result = sut_party.add(room, admin, bob)
            if _refused_for_consent(result):  # consent is not what is judged: granted as add_ok does
                result = sut_party._add_with_consent(room, admin, bob, result)
        except ControlApiError as exc:
            if exc.status is not None and exc.status >= 500:
                fail(f"the SUT as hub could not process its room creator's add of {bob.uri} (its control API "
                     f"answered {exc.status}: {exc})")
            raise
        recorder.note(f"the creator's add of {bob.uri}: {result}")
        judge_creators_add_accepted(ADD_CLIENTS, result, bob, authorized=", so the add and its clients are authorized")
    observed(ADD_CLIENTS, f"the SUT as hub accepted its creator's commit adding {bob.uri} and the clients "
             "whose KeyPackages the reference follower provided")
    _judge_welcome_delivered(ref_follower, room, mark, bob.uri, poll_until)


@pytest.mark.role("hub")
@pytest.mark.requirements(ADD_CLIENTS, WELCOME_ROUTING)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_hub_accepts_a_follower_admins_valid_add(sut_party, ref_follower, poll_until, recorder):
    """A reference follower admin (role 3) commits, over MIMI, a valid add of another reference follower
    user (PublicMessage commit, Welcome, full GroupInfo and ratchetTreeOption): the SUT as hub answers the
    UpdateRequest success (room-policy-04 §8.1.1: the canAddParticipant holder "is also authorized to add
    any MLS clients matching the added user") and fans the Welcome out to the reference follower (-06 §5.5)."""
    admin = sut_party.create_user("admin")
    room = sut_party.create_room(admin)
    dave = ref_follower.create_user("dave")
    setup_add(sut_party, room, admin, dave, hub=sut_party, role=ADMIN)
    with setting_up("the reference follower admin's client to join the room"):
        ref_follower.wait_epoch(room, sut_party.room(room)["epoch"], what="dave's client to join the room")
    carol = ref_follower.create_user("carol")
    mark = ref_follower.traffic_mark()
    added = ref_follower.add(room, dave, carol)
    recorder.note(f"the follower admin's add of {carol.uri}: {added}")
    answers = _update_answers(ref_follower, room, mark)
    if not answers:
        raise HarnessError(f"the suite's reference follower sent no commit adding {carol.uri} (its addParticipant "
                           f"ended {added.get('outcome')!r}), so there is nothing to judge")
    if not any(success for _, success in answers):
        fail(f"the SUT as hub refused a reference follower admin's valid commit adding {carol.uri} and her client "
             f"({', '.join(label for label, _ in answers)})", requirement=ADD_CLIENTS)
    observed(ADD_CLIENTS, f"the hub answered the follower admin's commit adding {carol.uri}: "
             f"{', '.join(label for label, _ in answers)}")
    _judge_welcome_delivered(ref_follower, room, mark, carol.uri, poll_until)
