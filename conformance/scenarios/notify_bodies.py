"""/notify bodies the SUT sent, read the way docs/spec-ambiguities.md accepts (issue 15, "tolerant checks").

A body is read as written (§5.5 FanoutMessage, the suite's reading); only when that fails, with the one
other reading the register accepts for the whole body: AMB-PROTOCOL-CONTEXT's explicit protocol octet,
AMB-FANOUT-SELECT's FanoutMessage with no arm after a PublicMessage or PrivateMessage, or both
(:func:`reference_peer.wire.mimi.decode_fanout_sequence_tolerant`). The readings taken are recorded for
the running check; where the check has judged a requirement on those bodies, it calls
:func:`ambiguous_if_read_otherwise`, which ends it AMBIGUOUS for that requirement with the reading's AMB ID.
With the default reading nothing is recorded and the check's verdict is what it was.
"""

from __future__ import annotations

from conformance.verdicts import ambiguous, current_ledger
from reference_peer.wire.codec import Leniency
from reference_peer.wire.mimi import FanoutMessage, Protocol, decode_fanout_sequence_tolerant

MLS10 = {"protocol": Protocol.mls10}

# The readings taken for the running check (checks run one at a time per process): (ledger, leniencies).
_TAKEN: list = [None, []]


def readings_taken() -> list[Leniency]:
    """The register readings (codec leniencies, each once) taken to read the SUT's /notify bodies in the
    running check, in the order first taken; empty when every body read as written."""
    ledger = current_ledger()
    if _TAKEN[0] is not ledger:
        _TAKEN[0], _TAKEN[1] = ledger, []
    return _TAKEN[1]


def read_fanouts(body: bytes, *, record: bool = True) -> list[FanoutMessage]:
    """The FanoutMessages of a /notify body the SUT sent, as written or else in the register's other reading
    (recorded: :func:`readings_taken`; ``record=False`` for a body one of the suite's own peers sent). Raises
    the as-written DecodeError when no reading fits. Under AMB-FANOUT-SELECT's reading a proposal or commit
    carries no moreProposals/externalProposals (empty): the proposals it would carry arrive as FanoutMessages
    of their own."""
    messages, leniencies = decode_fanout_sequence_tolerant(body, scope=MLS10)
    if not record:
        return list(messages)
    taken = readings_taken()
    for leniency in leniencies:
        if leniency not in taken:
            taken.append(leniency)
    return list(messages)


def read_otherwise(ambiguity: str | None = None) -> bool:
    """Whether a /notify body of the running check was read only with another reading (of ``ambiguity``)."""
    return any(ambiguity is None or lc.ambiguity == ambiguity for lc in readings_taken())


def describe_readings() -> str:
    return "; ".join(f"{lc.ambiguity} ({lc.path}: {lc.detail})" for lc in readings_taken())


def ambiguous_if_read_otherwise(requirement: str, what: str, *, ambiguity: str | None = None) -> None:
    """Where a check has judged ``requirement`` on the SUT's /notify bodies: if any was read only with another
    reading the register accepts (of ``ambiguity``, if given), the check ends AMBIGUOUS for ``requirement``
    with that reading's AMB ID; with the as-written reading it returns and the verdict stands."""
    taken = [lc for lc in readings_taken() if ambiguity is None or lc.ambiguity == ambiguity]
    if not taken:
        return
    ids = list(dict.fromkeys(lc.ambiguity for lc in taken))
    ambiguous(ids[0], f"{what}, judged on /notify bodies the SUT sent that decode only in another reading the "
              f"register accepts: {describe_readings()}", requirement=requirement)


# A follower's answer to an accepted /notify: 201 as the register reads -06 §5.5; the other statuses it accepts,
# per requirement (docs/spec-ambiguities.md: AMB-NOTIFY-201-ACCEPTED, 202 for "201 Accepted", names
# PROTO-FANOUT-NOTIFY-201 and PROTO-FANOUT-DUP-NOTIFY-201; AMB-NOTIFY-FIGURE-200, Figure 3's 200, only
# PROTO-FANOUT-NOTIFY-201). Any other status stays a miss.
NOTIFY_STATUS_READINGS: dict[str, dict[int, str]] = {
    "PROTO-FANOUT-NOTIFY-201": {202: "AMB-NOTIFY-201-ACCEPTED", 200: "AMB-NOTIFY-FIGURE-200"},
    "PROTO-FANOUT-DUP-NOTIFY-201": {202: "AMB-NOTIFY-201-ACCEPTED"},
}


def notify_status_reading(status: int | None, requirement: str) -> str | None:
    """The AMB ID under which the register accepts ``status`` (not 201) as a follower's answer to an accepted
    /notify for ``requirement``, else None (201 itself, or a status that is a miss)."""
    return NOTIFY_STATUS_READINGS.get(requirement, {}).get(status) if status is not None else None
