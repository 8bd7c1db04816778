"""A hub's answer to update or submitMessage, read the way docs/spec-ambiguities.md AMB-FAILURE-CODE-STATUS
accepts: -06 §5.3/§5.4 give failure codes but no HTTP status for a refusal, so an answer with a non-2xx
status is a refusal. When its body is the endpoint's response struct with a failure code (the register
accepts an error status "with or without a body"), that code is the answer, currentEpoch included.
Otherwise it reads as notAllowed ("some type of policy or authorization prevented the hub provider from
accepting"), with the status in errorDescription; a check that needs a code only a body can carry
(wrongEpoch's currentEpoch, epochTooOld's) then sees no such code."""

from __future__ import annotations

from reference_peer.wire.codec import DecodeError
from reference_peer.wire.mimi import (
    Protocol,
    SubmitMessageResponse,
    SubmitResponseCode,
    UpdateResponseCode,
    UpdateRoomResponse,
)


def refused_by_status(status: int) -> bool:
    return not 200 <= status < 300


def _carried(decode, body: bytes, is_failure):
    """The response struct a refusing answer's body carries, when it is one with a failure code."""
    if not body:
        return None
    try:
        answer = decode(body)
    except (DecodeError, ValueError):
        return None
    return answer if is_failure(answer) else None


def update_answer(status: int, body: bytes) -> UpdateRoomResponse:
    """The UpdateRoomResponse of a 2xx answer, or of a non-2xx one whose body carries a failure code, or a
    notAllowed refusal standing for a non-2xx one."""
    if refused_by_status(status):
        carried = _carried(UpdateRoomResponse.decode, body, lambda a: a.responseCode != UpdateResponseCode.success)
        if carried is not None:
            return carried
        return UpdateRoomResponse(responseCode=UpdateResponseCode.notAllowed,
                                  errorDescription=f"refused with HTTP {status} (AMB-FAILURE-CODE-STATUS)")
    return UpdateRoomResponse.decode(body)


def submit_answer(status: int, body: bytes) -> SubmitMessageResponse:
    """The SubmitMessageResponse of a 2xx answer, or of a non-2xx one whose body carries a failure code, or a
    notAllowed refusal standing for a non-2xx one."""
    if refused_by_status(status):
        carried = _carried(SubmitMessageResponse.decode, body,
                           lambda a: a.statusCode != SubmitResponseCode.accepted)
        if carried is not None:
            return carried
        return SubmitMessageResponse(protocol=Protocol.mls10, statusCode=SubmitResponseCode.notAllowed)
    return SubmitMessageResponse.decode(body)
