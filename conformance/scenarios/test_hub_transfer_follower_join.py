"""Hub transfer, a follower's external join after the cut-over (docs/extensions/hub-transfer.md §7
"Re-targeting": "After processing the cut-over commit, the follower sends every room request (`update`,
`submitMessage`, `groupInfo`, `keyMaterial` for this room, `reportAbuse`, `proxyDownload`) to the new hub's
endpoints, found through B's directory, with the same room ID").

The SUT already follows the room (Sam's client is a member) when the room moves from hub.ref.test (the room
ID's authority) to follower.ref.test. Once the SUT has processed the cut-over commit, a second SUT user, Tia,
who is in the participant list without any client (the reference control API's experimental
``addParticipant`` member ``withoutClients``), joins by external commit (the control API's experimental
``joinRoom``). The SUT holds the room's state, so it is no newcomer (§13): its groupInfo and update for the
room go to the new hub, none to the old hub.
"""

from __future__ import annotations

import pytest

from conformance.scenarios.hub_transfer_support import transfer_settings
from conformance.scenarios.test_hub_transfer_follower import NEW_HUB, OLD_HUB, RETARGET, _move, _room, _sut_in
from conformance.verdicts import HarnessError, fail, not_applicable, observed


def _describe(items) -> str:
    return ", ".join(f"{t.endpoint} -> {t.status}" for t in items) or "none"


@pytest.mark.requirements(RETARGET)
@pytest.mark.feature("hubTransfer")
@pytest.mark.role("follower")
@pytest.mark.operations("createUser", "getRoom", "joinRoom")
def test_follower_joins_a_moved_room_at_the_new_hub(sut, sut_party, ref_hub, ref_follower, poll_until, recorder):
    """After the SUT has processed the cut-over commit, another of its users joins the room by external
    commit: the SUT fetches groupInfo (and commits) at the new hub and sends no request for the room to the
    old hub."""
    transfer_settings(sut, "follower")
    declared = sut.manifest.control_operations
    if (declared is not None and "joinRoom" not in declared) or not sut_party.supports("joinRoom"):
        not_applicable("the SUT's control API does not offer joinRoom (a client joins by external commit), so no "
                       "external join can be driven", operation="joinRoom")
    room, creator, _ = _room(ref_hub, sut_party)
    tia = sut_party.create_user("tia")
    ref_hub.add_ok(room, creator, tia, withoutClients=True)  # a participant with no client yet
    cutover = _move(ref_hub, ref_follower, room, creator, poll_until)
    sut_party.wait_epoch(room, cutover, what="the SUT to process the cut-over commit")
    mark_old, mark_new = ref_hub.traffic_mark(), ref_follower.traffic_mark()
    result = sut_party.join_room(room, tia.client)
    recorder.note(f"Tia joins by external commit after the cut-over: joinRoom answered {result}")
    to_old = _sut_in(ref_hub, mark_old, sut_party, room)
    to_new = _sut_in(ref_follower, mark_new, sut_party, room)
    seen = f"at {OLD_HUB}: {_describe(to_old)}; at {NEW_HUB}: {_describe(to_new)}"
    if to_old:
        fail(f"after processing the cut-over commit the SUT sent {[t.endpoint for t in to_old]} for the room to the "
             f"old hub {OLD_HUB} when its user joined by external commit ({seen}; joinRoom answered {result})",
             requirement=RETARGET)
    if not any(t.endpoint == "groupInfo" for t in to_new):
        raise HarnessError(f"joinRoom made the SUT send no groupInfo for the room to any hub ({seen}; joinRoom "
                           f"answered {result}): there is no room request to judge")
    observed(RETARGET, f"the external join after the cut-over went to the new hub only ({seen})")
