"""A hub's answer to update or submitMessage, read the way docs/spec-ambiguities.md AMB-FAILURE-CODE-STATUS
accepts: -06 §5.3/§5.4 give failure codes but no HTTP status for a refusal, so an answer with a non-2xx
status is a refusal that carries no code. It reads as notAllowed ("some type of policy or authorization
prevented the hub provider from accepting"), with the status in errorDescription; a check that needs a
code only a 2xx body can carry (wrongEpoch's currentEpoch, epochTooOld's) still sees no such code."""

from __future__ import annotations

from reference_peer.wire.mimi import (
    Protocol,
    SubmitMessageResponse,
    SubmitResponseCode,
    UpdateResponseCode,
    UpdateRoomResponse,
)


def refused_by_status(status: int) -> bool:
    return not 200 <= status < 300


def update_answer(status: int, body: bytes) -> UpdateRoomResponse:
    """The UpdateRoomResponse of a 2xx answer, or a notAllowed refusal standing for a non-2xx one."""
    if refused_by_status(status):
        return UpdateRoomResponse(responseCode=UpdateResponseCode.notAllowed,
                                  errorDescription=f"refused with HTTP {status} (AMB-FAILURE-CODE-STATUS)")
    return UpdateRoomResponse.decode(body)


def submit_answer(status: int, body: bytes) -> SubmitMessageResponse:
    """The SubmitMessageResponse of a 2xx answer, or a notAllowed refusal standing for a non-2xx one."""
    if refused_by_status(status):
        return SubmitMessageResponse(protocol=Protocol.mls10, statusCode=SubmitResponseCode.notAllowed)
    return SubmitMessageResponse.decode(body)
