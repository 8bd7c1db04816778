"""Hub transfer, the SUT as a newcomer that holds only a room ID (docs/extensions/hub-transfer.md §13
"Newcomers"; test plan row "newcomer").

The room is created on the reference hub (hub.ref.test, the room ID's authority) and moved to the
reference follower (follower.ref.test). Before the move, the creator adds Sam, a SUT user, to the
participant list alone (the reference control API's experimental ``addParticipant`` member
``withoutClients``): no client of Sam's is added and no key material is asked for, so the SUT's provider
is never told about the room and holds only its ID. The control API's experimental ``joinRoom`` then makes
Sam's client join by external commit. What is judged is what the SUT sends the two reference hubs (their
traffic logs): its first request for the room goes to the ID's authority and is answered 421 with a
HubRedirect, it then fetches groupInfo from the hub the redirect names and commits there, and the join
succeeds (the new hub's group holds Sam's client).

The second half of the statement, "accepting a hub only after checking the mimi_hub component of the
GroupInfo it serves", needs a false hint: the same scene with the authority's HubRedirect claiming a
generation above the one follower.ref.test's GroupInfo carries (the reference peer's
``inflateRedirectGeneration`` knob). The SUT may fetch that GroupInfo, but must not commit there. The third
needs a GroupInfoResponse whose hub_sender is not the named hub's entry: follower.ref.test signs it with the old
hub's key and names the old hub's entry, still listed in the cut-over epoch (the reference peer's
``group-info-signer`` knob); again no commit there.
"""

from __future__ import annotations

import threading
import time

import pytest

from conformance.harness.polling import PollTimeout
from conformance.harness.reference_names import current
from conformance.scenarios.hub_transfer_support import transfer_settings
from conformance.verdicts import HarnessError, expect, fail, not_applicable, observed
from reference_peer.room.naming import domain_of_uri
from reference_peer.room.transfer import sender_domain
from reference_peer.room.transfer_settings import HubTransferSettings
from reference_peer.wire.hub_transfer import read_hub_redirect

# This worker's reference domains (hub-k.ref.test on worker k): the plugin fixes them before import.
OLD_HUB, NEW_HUB = current()  # OLD_HUB is the room ID's authority
ROOM_ENDPOINTS = ("update", "submitMessage", "groupInfo", "keyMaterial", "reportAbuse")
NEWCOMER = "EXT-HUBXFER-NEWCOMER-DISCOVERY"
RETRY_503 = "EXT-HUBXFER-FOLLOWER-503-RETRY"


def _incoming(ref_follower, room: str) -> dict:
    return ref_follower.hub_transfer_state()["incoming"].get(room) or {}


def _sut_in(party, after: int, sut_party, room: str):
    """The room requests the SUT sent ``party`` (a reference peer) since ``after``, in its log order."""
    return [t for t in party.traffic(after, direction="in", peer=sut_party.domain)
            if t.endpoint in ROOM_ENDPOINTS and t.value == room]


def _describe(items) -> str:
    return ", ".join(f"{t.endpoint} -> {t.status}" for t in items) or "none"


def _leaf_clients(ref_follower, room: str) -> set[bytes]:
    tree = ref_follower.hub_state(room).view.tree
    return {bytes(leaf.credential.identity) for _, leaf in tree.leaves()}


def _join_in_the_background(sut_party, room: str, client: str) -> tuple[threading.Thread, dict]:
    """The SUT's joinRoom of ``client`` in a started thread, and where its answer ("result") or error goes."""
    outcome: dict = {}

    def join() -> None:
        try:
            outcome["result"] = sut_party.join_room(room, client)
        except Exception as exc:  # noqa: BLE001 - reported by the caller
            outcome["error"] = exc

    joining = threading.Thread(target=join, daemon=True)
    joining.start()
    return joining, outcome


def _newcomer_settings(sut, sut_party) -> None:
    """The SUT as follower with the extension's settings; NOT_APPLICABLE unless it offers joinRoom."""
    transfer_settings(sut, "follower")
    declared = sut.manifest.control_operations
    if (declared is not None and "joinRoom" not in declared) or not sut_party.supports("joinRoom"):
        not_applicable("the SUT's control API does not offer joinRoom (join a room known only by its ID), so no "
                       "newcomer can be driven", operation="joinRoom")


def _moved_room_with_a_newcomer(sut, sut_party, ref_hub, ref_follower, poll_until, *, until_handoff: bool = True):
    """(room, Sam): a room of hub.ref.test moved to follower.ref.test, with the SUT user Sam in its
    participant list and no client of Sam's in the group (the SUT holds only the room ID). With
    ``until_handoff=False`` the reference hub holds its handoff back (the caller releases it): the scene
    ends once follower.ref.test has observed the cut-over, so it answers room requests 503."""
    _newcomer_settings(sut, sut_party)
    creator = ref_hub.create_user("creator")
    room = ref_hub.create_room(creator)
    sam = sut_party.create_user("sam")
    ref_hub.add_ok(room, creator, sam, withoutClients=True)  # a participant with no client: the SUT is not told
    if not until_handoff:
        ref_hub.hold_transfer(hold_handoff=True)
    start = ref_hub.start_hub_transfer(room, creator, NEW_HUB)
    if start.get("outcome") != "started":
        raise HarnessError(f"the reference hub did not start the transfer to {NEW_HUB}: {start}")
    try:  # a transfer between the suite's own peers: the SUT takes no part in it yet
        if until_handoff:
            poll_until(lambda: _incoming(ref_follower, room).get("state") == "handed-over", timeout=20,
                       what=f"{NEW_HUB} to take the room over (handoff accepted)")
        else:
            poll_until(lambda: _incoming(ref_follower, room).get("cutoverSeen"), timeout=20,
                       what=f"{NEW_HUB} to observe the cut-over (it answers 503 until the handoff)")
    except PollTimeout as exc:
        raise HarnessError(f"the suite's reference hubs did not complete the transfer the scene needs: {exc}") from None
    if sut_party.room(room) is not None:
        raise HarnessError("the SUT already holds state for the room before joinRoom: the scene needs a provider "
                           "that knows only the room ID")
    return room, sam


@pytest.mark.requirements(NEWCOMER)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom", "joinRoom")
def test_newcomer_finds_the_moved_room_from_its_id(sut, sut_party, ref_hub, ref_follower, poll_until, recorder):
    """A SUT client whose provider holds only the ID of a room moved from hub.ref.test (the ID's authority)
    to follower.ref.test joins it (joinRoom): its first request goes to the authority and is answered 421
    with a HubRedirect, then it fetches groupInfo at follower.ref.test and commits there, and is in the
    group."""
    room, sam = _moved_room_with_a_newcomer(sut, sut_party, ref_hub, ref_follower, poll_until)
    mark_old, mark_new = ref_hub.traffic_mark(), ref_follower.traffic_mark()
    result = sut_party.join_room(room, sam.client)
    recorder.note(f"joinRoom answered {result}")
    at_old = _sut_in(ref_hub, mark_old, sut_party, room)
    at_new = _sut_in(ref_follower, mark_new, sut_party, room)
    seen = f"at {OLD_HUB}: {_describe(at_old)}; at {NEW_HUB}: {_describe(at_new)}"
    if not at_old:
        fail(f"the SUT never asked the room ID's authority {OLD_HUB} (requests {seen}; joinRoom answered {result})",
             requirement=NEWCOMER)
    first = at_old[0]
    if first.status != 421:
        raise HarnessError(f"{OLD_HUB} answered the SUT's first request for the moved room ({first.endpoint}) "
                           f"{first.status}, not 421 with a HubRedirect ({seen})")
    if at_new and at_new[0].time < first.time - 0.05:
        fail(f"the SUT sent {at_new[0].endpoint} to {NEW_HUB} before asking the room ID's authority ({seen})",
             requirement=NEWCOMER)
    redirect = read_hub_redirect("application/vnd.mimi-conformance.hub-redirect", first.response, room)
    named = bytes(redirect.hub.uri).decode() if redirect is not None else None
    fetched = [t for t in at_new if t.endpoint == "groupInfo" and t.status == 200]
    if not fetched:
        fail(f"the authority answered the SUT's {first.endpoint} 421 with a HubRedirect naming {named}; the SUT "
             f"fetched no groupInfo from {NEW_HUB} (requests {seen}; joinRoom answered {result})",
             requirement=NEWCOMER)
    committed = [t for t in at_new if t.endpoint == "update" and t.status == 200 and t.seq > fetched[0].seq]
    if not committed:
        fail(f"the SUT fetched groupInfo from {NEW_HUB} but sent no external commit (update) there (requests "
             f"{seen}; joinRoom answered {result})", requirement=NEWCOMER)
    if result.get("outcome") != "accepted":
        fail(f"joinRoom answered {result} after the SUT committed at {NEW_HUB} (requests {seen})",
             requirement=NEWCOMER)
    try:
        poll_until(lambda: sam.client.encode() in _leaf_clients(ref_follower, room),
                   what=f"{sam.client} in the group at {NEW_HUB}")
    except PollTimeout:
        fail(f"joinRoom answered {result}, but the group at {NEW_HUB} holds no leaf of {sam.client} (requests {seen})",
             requirement=NEWCOMER)
    observed(NEWCOMER, f"asked the authority first, followed its 421 HubRedirect to {named}, fetched groupInfo and "
             f"committed there; {sam.client} has a leaf at {NEW_HUB} ({seen})")


@pytest.mark.requirements(NEWCOMER)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom", "joinRoom")
def test_newcomer_refuses_a_hub_its_groupinfo_does_not_confirm(sut, sut_party, ref_hub, ref_follower, poll_until,
                                                              recorder):
    """A SUT newcomer whose redirect claims a mimi_hub generation above the one in the GroupInfo the named hub
    serves does not join there: it sends no external commit to that hub."""
    room, sam = _moved_room_with_a_newcomer(sut, sut_party, ref_hub, ref_follower, poll_until)
    mark_old, mark_new = ref_hub.traffic_mark(), ref_follower.traffic_mark()
    ref_hub.hold_transfer(inflate_redirect_generation=5)
    try:
        result = sut_party.join_room(room, sam.client)
    finally:
        ref_hub.hold_transfer(inflate_redirect_generation=0)
    recorder.note(f"with the authority's HubRedirect claiming generation + 5, joinRoom answered {result}")
    at_old = _sut_in(ref_hub, mark_old, sut_party, room)
    at_new = _sut_in(ref_follower, mark_new, sut_party, room)
    seen = f"at {OLD_HUB}: {_describe(at_old)}; at {NEW_HUB}: {_describe(at_new)}"
    if not any(t.endpoint == "groupInfo" for t in at_new):
        fail(f"the SUT did not follow the authority's HubRedirect to {NEW_HUB} (requests {seen}; joinRoom "
             f"answered {result}), so whether it checks the GroupInfo cannot be seen", requirement=NEWCOMER)
    committed = [t for t in at_new if t.endpoint == "update"]
    if committed or result.get("outcome") == "accepted":
        fail(f"the redirect claimed a mimi_hub generation 5 above the one in the GroupInfo {NEW_HUB} served, yet "
             f"the SUT joined there (requests {seen}; joinRoom answered {result})", requirement=NEWCOMER)
    observed(NEWCOMER, f"with the redirect's generation 5 above the GroupInfo's, the SUT fetched groupInfo at "
             f"{NEW_HUB} and did not commit there (joinRoom answered {result.get('outcome')}; {seen})")


@pytest.mark.requirements(NEWCOMER)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom", "joinRoom")
def test_newcomer_refuses_a_hub_signing_with_another_providers_entry(sut, sut_party, ref_hub, ref_follower,
                                                                     poll_until, recorder):
    """§13 "Newcomers": the provider "accepts that hub only if the GroupInfo's mimi_hub component names it with a
    generation no lower than the redirect's, and if the GroupInfoResponse.hub_sender is the external_senders
    entry whose credential names it." In the cut-over epoch the old hub's entry is still in external_senders
    (§6.5: the new hub's removal proposal is not yet committed): follower.ref.test, the hub the redirect names,
    signs its GroupInfoResponse with that entry's key (hub.ref.test's) and names it as hub_sender. The
    signature verifies and the mimi_hub component names follower.ref.test, but hub_sender is hub.ref.test's
    entry: the SUT may fetch that GroupInfo, but must not commit there."""
    room, sam = _moved_room_with_a_newcomer(sut, sut_party, ref_hub, ref_follower, poll_until)
    old = ref_hub.hub_state(room).identity  # the old hub's key and its external_senders entry
    old_key = bytes(old.external_sender.signature_key)
    senders = ref_follower.hub_state(room).view.external_senders()
    if not any(bytes(s.signature_key) == old_key and sender_domain(s) == OLD_HUB for s in senders):
        raise HarnessError(f"{OLD_HUB}'s entry has already left external_senders at {NEW_HUB}: the scene needs the "
                           "cut-over epoch, where it is still listed")
    mark_old, mark_new = ref_hub.traffic_mark(), ref_follower.traffic_mark()
    ref_follower.sign_group_info_as(room, old.signature_priv, old.external_sender)
    try:
        result = sut_party.join_room(room, sam.client)
    finally:
        ref_follower.sign_group_info_as(room)
    recorder.note(f"with {NEW_HUB}'s GroupInfoResponse signed by {OLD_HUB}'s external_senders entry, joinRoom "
                  f"answered {result}")
    at_old = _sut_in(ref_hub, mark_old, sut_party, room)
    at_new = _sut_in(ref_follower, mark_new, sut_party, room)
    seen = f"at {OLD_HUB}: {_describe(at_old)}; at {NEW_HUB}: {_describe(at_new)}"
    if not any(t.endpoint == "groupInfo" and t.status == 200 for t in at_new):
        fail(f"the SUT fetched no groupInfo from {NEW_HUB}, the hub the authority's HubRedirect names (requests "
             f"{seen}; joinRoom answered {result}), so whether it checks hub_sender cannot be seen",
             requirement=NEWCOMER)
    committed = [t for t in at_new if t.endpoint == "update"]
    if committed or result.get("outcome") == "accepted":
        fail(f"the GroupInfoResponse {NEW_HUB} served named {OLD_HUB}'s external_senders entry as hub_sender (not "
             f"the entry whose credential names {NEW_HUB}), yet the SUT joined there (requests {seen}; joinRoom "
             f"answered {result})", requirement=NEWCOMER)
    observed(NEWCOMER, f"with hub_sender {OLD_HUB}'s entry in {NEW_HUB}'s GroupInfoResponse, the SUT fetched groupInfo "
             f"at {NEW_HUB} and did not commit there (joinRoom answered {result.get('outcome')}; {seen})")


@pytest.mark.requirements(RETRY_503)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom", "joinRoom")
def test_newcomer_retries_the_new_hubs_503(sut, sut_party, ref_hub, ref_follower, poll_until, recorder):
    """A SUT newcomer (Sam, a participant whose provider holds only the room ID) joins while follower.ref.test, the
    hub the authority's HubRedirect names, has observed the cut-over but not yet received the handoff: it answers
    the SUT's groupInfo 503 with Retry-After. Once the handoff is released the SUT asks again, no sooner than
    Retry-After, and joins.

    hub-transfer.md §6.4: "From the moment B observes the cut-over commit until it has accepted a handoff, it
    answers room requests with **503** and a `Retry-After` header"; §7: "**503 from the new hub.** The follower
    retries with backoff and honours Retry-After" (EXT-HUBXFER-FOLLOWER-503-RETRY, a SHOULD). Sam is in the
    room's participant list, so the SUT is a follower of the room sending the new hub a room request (groupInfo,
    §13 "then fetches /groupInfo from the last hub named"); a join that ends at the 503, or a retry before
    Retry-After, is the miss."""
    # The suite's new hub answers Retry-After: 2 here, not its default 1, so a retry after a fixed second (a
    # newcomer ignoring the header) comes too soon.
    retry_after = 2 * HubTransferSettings().retry_503_seconds
    ref_follower.hold_transfer(retry_503_seconds=retry_after)
    try:
        room, sam = _moved_room_with_a_newcomer(sut, sut_party, ref_hub, ref_follower, poll_until,
                                                until_handoff=False)
        mark_new = ref_follower.traffic_mark()
        joining, outcome = _join_in_the_background(sut_party, room, sam.client)
        try:
            first = poll_until(lambda: [t for t in _sut_in(ref_follower, mark_new, sut_party, room)
                                        if t.endpoint == "groupInfo" and t.status == 503],
                               timeout=8, what=f"the SUT's groupInfo at {NEW_HUB}, answered 503")[0]
        except PollTimeout:
            joining.join(30)
            raise HarnessError(f"the SUT sent {NEW_HUB} no groupInfo while it answered 503 (requests "
                               f"{_describe(_sut_in(ref_follower, mark_new, sut_party, room))}; joinRoom "
                               f"{outcome})") from None
    finally:
        ref_hub.hold_transfer(hold_handoff=False)
        ref_follower.hold_transfer(retry_503_seconds=HubTransferSettings().retry_503_seconds)  # the first 503's stands
    released = time.time()
    joining.join(45)
    if joining.is_alive():
        raise HarnessError("the SUT's joinRoom did not return within 45 s")
    if "error" in outcome:
        raise HarnessError(f"joinRoom failed: {outcome['error']}")
    result = outcome.get("result") or {}
    recorder.note(f"joinRoom answered {result} (handoff released {released - first.time:.2f} s after the 503)")
    at_new = _sut_in(ref_follower, mark_new, sut_party, room)
    seen = f"at {NEW_HUB}: {_describe(at_new)}"
    later = [t for t in at_new if t.endpoint == "groupInfo" and t.seq > first.seq]
    if not later:
        fail(f"{NEW_HUB} answered the SUT's groupInfo 503 (Retry-After: {retry_after}) before its handoff; the SUT "
             f"never asked again (requests {seen}; joinRoom answered {result})", requirement=RETRY_503)
    waited = later[0].time - first.time
    if waited < retry_after - 0.05:
        fail(f"the SUT asked {NEW_HUB} again {waited:.2f} s after a 503 with Retry-After: {retry_after} (requests "
             f"{seen})", requirement=RETRY_503)
    expect(RETRY_503, result.get("outcome") == "accepted" and any(t.endpoint == "update" and t.status == 200
                                                                  for t in at_new),
           f"the SUT asked {NEW_HUB} for groupInfo again after its 503 but did not join (requests {seen}; joinRoom "
           f"answered {result})",
           evidence=f"asked again {waited:.2f} s after a 503 with Retry-After: {retry_after}, then joined ({seen})")


MAX_HOPS = 8  # hub-transfer.md §13: "The provider follows the chain for at most 8 hops"


@pytest.mark.requirements(NEWCOMER)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "joinRoom")
def test_newcomer_follows_at_most_8_redirects(sut, sut_party, ref_hub, ref_follower, poll_until, recorder):
    """A SUT newcomer (Sam) joins a room known only by its ID, for which hub.ref.test (the ID's authority) and
    follower.ref.test each answer groupInfo 421 with a HubRedirect naming the other: a redirect loop. The SUT
    sends at most 9 groupInfo requests for the room (the authority's, then one per hop followed) and stops.

    hub-transfer.md §13: "The provider follows the chain for at most 8 hops, then fetches /groupInfo from the last
    hub named" (EXT-HUBXFER-NEWCOMER-DISCOVERY, a SHOULD). Whether the 9th answer (a 421) ends the join, and how,
    is not judged; a 10th request, or requests that go on, are the miss."""
    _newcomer_settings(sut, sut_party)
    creator = ref_hub.create_user("creator")
    room = ref_hub.create_room(creator)
    if domain_of_uri(room) != OLD_HUB:
        raise HarnessError(f"the reference hub's room {room!r} does not have {OLD_HUB} as its ID's authority")
    sam = sut_party.create_user("sam")
    marks = {OLD_HUB: (ref_hub, ref_hub.traffic_mark()), NEW_HUB: (ref_follower, ref_follower.traffic_mark())}
    def asked() -> list:
        """(where, traffic) of the SUT's groupInfo requests for the room at either reference peer, in time order."""
        items = [(where, t) for where, (party, mark) in marks.items() for t in _sut_in(party, mark, sut_party, room)
                 if t.endpoint == "groupInfo"]
        return sorted(items, key=lambda item: item[1].time)

    ref_hub.hold_transfer(redirect_rooms={room: NEW_HUB})
    ref_follower.hold_transfer(redirect_rooms={room: OLD_HUB})
    try:
        joining, outcome = _join_in_the_background(sut_party, room, sam.client)
        joining.join(10)  # a conforming SUT is done after 9 quick requests; one without the limit goes on
        if not joining.is_alive():
            time.sleep(1.0)  # a request still on its way is counted too
    finally:  # the loop ends here: then each peer answers the room's groupInfo as it would (served, or unknown)
        ref_hub.hold_transfer(redirect_rooms={})
        ref_follower.hold_transfer(redirect_rooms={})
    joining.join(30)
    seen = asked()
    order = ", ".join(f"{where} -> {t.status}" for where, t in seen[:12]) + (", ..." if len(seen) > 12 else "")
    recorder.note(f"the SUT's groupInfo requests for the room: {len(seen)} ({order}); joinRoom {outcome}")
    if not seen:
        raise HarnessError(f"the SUT sent neither reference hub a groupInfo for the room (joinRoom {outcome})")
    if len(seen) > MAX_HOPS + 1:
        fail(f"on a redirect loop between {OLD_HUB} and {NEW_HUB} the SUT sent {len(seen)} groupInfo requests for the "
             f"room in {seen[-1][1].time - seen[0][1].time:.1f} s, more than the authority's and one per hop for at most "
             f"{MAX_HOPS} hops ({MAX_HOPS + 1})", requirement=NEWCOMER)
    if joining.is_alive():
        raise HarnessError(f"the SUT's joinRoom did not return within 40 s ({len(seen)} groupInfo requests seen)")
    observed(NEWCOMER, f"on a redirect loop the SUT sent {len(seen)} groupInfo requests for the room (at most "
             f"{MAX_HOPS + 1}: the authority's, then {MAX_HOPS} hops) and stopped (joinRoom "
             f"{(outcome.get('result') or {}).get('outcome', outcome)})")
