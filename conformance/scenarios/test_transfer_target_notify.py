"""Hub transfer with the SUT as target: its answers to the old hub's /notify during the window
(docs/extensions/hub-transfer.md §6.2).

§6.2: "From the moment it holds the acceptance, A fans out to B every handshake message of the room (proposals and
commits), in order, as it fans them out to followers. B answers 201 and keeps the public group state, but it does
not act as hub and does not deliver anything to clients." The old hub waits for that 201 before proposing the
cut-over (§6.3, EXT-HUBXFER-CUTOVER-AFTER-DELIVERY: "answered 201 by every follower with active participants and
by the target"), so another 2xx from the target leaves the transfer stalled. -06's Figure 3 "200 OK"
(AMB-NOTIFY-FIGURE-200) concerns a follower's acceptance under -06 alone; the extension names the target's answer.
"""

from __future__ import annotations

import pytest

from conformance.harness.polling import PollTimeout
from conformance.scenarios.test_hub_transfer_new_hub import world_factory  # noqa: F401 - the fixture
from conformance.verdicts import blocked, miss, observed

TARGET_NOTIFY_201 = "EXT-HUBXFER-TARGET-NOTIFY-201"


@pytest.mark.usefixtures("sut")
@pytest.mark.role("hub")
@pytest.mark.feature("hubTransfer")
@pytest.mark.requirements(TARGET_NOTIFY_201)
@pytest.mark.operations()
def test_target_answers_the_old_hubs_notify_201(world_factory, recorder):  # noqa: F811
    """The reference hub starts a transfer of its room to the SUT and holds the handoff back; the /notify it sends
    the SUT for the room (the begin commit first) while the SUT is the target: each 2xx answer is 201. A 2xx other
    than 201 is a miss; with only error answers (which -06 §5.5 lets the hub retry) nothing is judged."""
    w = world_factory()
    w.ref_hub.hold_transfer(hold_handoff=True)
    w.start()

    def answered():
        return [t for t in w.ref_hub.traffic(endpoint="notify", direction="out", peer=w.domain)
                if t.value == w.room and t.status is not None]

    try:
        w.poll(lambda: any(200 <= t.status < 300 for t in answered()),
               what="the SUT to accept a /notify of the room as its transfer's target")
    except PollTimeout as exc:
        statuses = [t.status for t in answered()]
        blocked(TARGET_NOTIFY_201, f"the SUT accepted no /notify of the room as target ({exc}); answers: {statuses}")
    statuses = [t.status for t in answered()]
    recorder.note(f"the SUT's answers to the reference hub's /notify of {w.room}: {statuses}")
    other = sorted({s for s in statuses if 200 <= s < 300 and s != 201})
    if other:
        miss(TARGET_NOTIFY_201, f"as the transfer's target the SUT answered the old hub's /notify of the room with "
             f"HTTP {other}, not 201 (answers in order: {statuses})")
    else:
        observed(TARGET_NOTIFY_201, f"as the transfer's target the SUT answered each accepted /notify of the room "
                 f"201 ({statuses})")
