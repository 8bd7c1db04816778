"""Allowed variants of the reference peer (effect): behaviours the draft permits that differ from the
reference default (see :func:`.registry.define_variant`). Every check must pass with each of them on.

"Judge the effect, not the HTTP status": -06 §5.3 and §5.4 define the failure codes of an
UpdateRoomResponse and a SubmitMessageResponse but name no HTTP status for an answer that refuses, so a
hub may refuse with 200 and the code (the reference default) or with a 4xx (AMB-FAILURE-CODE-STATUS).
Each variant gives its own hook for step ``hub.answer.refusal-as-200-with-code``, asked where the reference
hub answers /update and /submitMessage."""

from __future__ import annotations

from .registry import define_variant

AREA = "effect"

# Failure codes (by name) that carry no data a client needs to go on: the variants may replace them.
_UPDATE_REFUSALS = {"notAllowed": 403, "invalidProposal": 403}
_SUBMIT_REFUSALS = {"notAllowed": 403}
# notAllowed refusals (named by the rule the hub's description tags) of a commit that is invalid for the room's
# state rather than unauthorized: the 400 variant answers them 400 too.
_INVALID_COMMIT_RULES = ("[PROTO-UPDATE-SELF-LEAVE-CACHED]", "[POLICY-CAP-REMOVE-PARTICIPANT-NO-CLIENTS-LEFT]")

# The hooks of step hub.answer.refusal-as-200-with-code (reference_peer/peer.py): called with the endpoint
# ("update" or "submitMessage"), the failure code's name and the answer's errorDescription, each returns the
# HTTP status the refusal is answered with instead (no body), or None (200 with the code).
REFUSAL_STEP = "hub.answer.refusal-as-200-with-code"


def refusal_as_403(endpoint: str, code_name: str, description: str | bytes = "") -> int | None:
    """REFUSALS_AS_HTTP_403: notAllowed (and an update's invalidProposal) answered 403."""
    return (_UPDATE_REFUSALS if endpoint == "update" else _SUBMIT_REFUSALS).get(code_name)


def refusal_as_400_for_invalid(endpoint: str, code_name: str, description: str | bytes = "") -> int | None:
    """REFUSALS_AS_HTTP_400_FOR_INVALID: an update refused as invalid (the proposal, or the commit for the
    room's state) answered 400."""
    if isinstance(description, bytes):
        description = description.decode("utf-8", "replace")
    if endpoint == "update" and (
        code_name == "invalidProposal" or any(rule in description for rule in _INVALID_COMMIT_RULES)
    ):
        return 400
    return None


REFUSALS_AS_HTTP_403 = define_variant(
    "refusals-as-http-403", area=AREA,
    permitted_by="AMB-FAILURE-CODE-STATUS: -06 §5.3 (UpdateRoomResponse: notAllowed, invalidProposal) and §5.4 "
                 "(SubmitMessageResponse: notAllowed) give failure codes but no HTTP status for a refusal; a 4xx is "
                 "an accepted reading",
    description="where the hub refuses an update or submitMessage (not allowed, removed member, invalid proposal), "
                "it answers HTTP 403 with no body instead of 200 with the failure code (wrongEpoch and epochTooOld, "
                "which carry the current epoch, stay 200)",
    hooks={REFUSAL_STEP: refusal_as_403},
)
REFUSALS_AS_HTTP_400_FOR_INVALID = define_variant(
    "refusals-as-http-400-for-invalid", area=AREA,
    permitted_by="AMB-FAILURE-CODE-STATUS: -06 §5.3 gives the failure code invalidProposal but no HTTP status for "
                 "it; a 4xx (400 Bad Request for an invalid proposal or commit) is an accepted reading",
    description="an update the hub refuses as an invalid proposal or commit (invalidProposal, or a commit invalid "
                "for the room's state: omitting a leave's cached proposals, leaving a removed user's client in the "
                "group) is answered HTTP 400 with no body instead of 200 with the failure code",
    hooks={REFUSAL_STEP: refusal_as_400_for_invalid},
)
