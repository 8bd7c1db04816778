"""Allowed variants of the reference peer (its MIMI endpoints, reference_peer/peer.py): behaviours
draft-ietf-mimi-protocol-06 permits that differ from the reference default (see
:func:`.registry.define_variant`). Every check must pass with each of them on.

Each names the steps of ``reference_peer/peer.py`` it departs from and gives its hooks; none is asked
for anywhere else.
"""

from __future__ import annotations

from .registry import define_variant

AREA = "peer"

# --- refusals of update / submitMessage (AMB-FAILURE-CODE-STATUS) ------------------------------------------
# Hooks of step hub.answer.refusal-as-200-with-code: called with the endpoint ("update" or "submitMessage"),
# the failure code's name and the errorDescription; (status, True) answers the status with the encoded
# UpdateRoomResponse / SubmitMessageResponse as body, None keeps 200 with the code.

REFUSAL_STEP = "hub.answer.refusal-as-200-with-code"
_STALE_EPOCH_CODES = {"update": "wrongEpoch", "submitMessage": "epochTooOld"}
_POLICY_REFUSALS = {"update": ("notAllowed", "invalidProposal"), "submitMessage": ("notAllowed",)}


def _stale_epoch_as_409(endpoint: str, code_name: str, description="") -> tuple[int, bool] | None:
    return (409, True) if _STALE_EPOCH_CODES.get(endpoint) == code_name else None


def _refusal_as_403_with_body(endpoint: str, code_name: str, description="") -> tuple[int, bool] | None:
    return (403, True) if code_name in _POLICY_REFUSALS.get(endpoint, ()) else None


STALE_EPOCH_AS_HTTP_409 = define_variant(
    "stale-epoch-refusals-as-http-409", area=AREA,
    permitted_by="AMB-FAILURE-CODE-STATUS: -06 §5.3 ('wrongEpoch indicates that the hub provider is using a different "
                 "epoch. The currentEpoch is provided in the response.') and §5.4 (epochTooOld, likewise) name no "
                 "HTTP status for a response carrying a failure code; the register accepts an HTTP error status "
                 "'with or without a body'",
    description="an update for another epoch (wrongEpoch) and a submitMessage of an older epoch (epochTooOld) are "
                "answered HTTP 409 Conflict whose body is the UpdateRoomResponse / SubmitMessageResponse with the "
                "code and the current epoch, instead of 200",
    hooks={REFUSAL_STEP: _stale_epoch_as_409},
)
REFUSALS_AS_HTTP_403_WITH_BODY = define_variant(
    "refusals-as-http-403-with-body", area=AREA,
    permitted_by="AMB-FAILURE-CODE-STATUS: -06 §5.3 ('notAllowed indicates that some type of policy or "
                 "authorization prevented the hub provider from accepting the UpdateRequest') and §5.4 give failure "
                 "codes but no HTTP status; the register reads a refusal answered 'with an HTTP error status (403 "
                 "for a policy refusal, ...), with or without a body' as a refusal",
    description="where the hub refuses an update (notAllowed, invalidProposal) or a submitMessage (notAllowed), it "
                "answers HTTP 403 whose body is the UpdateRoomResponse / SubmitMessageResponse with the failure code",
    hooks={REFUSAL_STEP: _refusal_as_403_with_body},
)


# --- groupInfo for a room the hub does not host (-06 §5.6) -------------------------------------------------


def _no_such_room(domain: str, room_id: str):
    """Hook of step hub.groupinfo.hide-unknown-room: the GroupInfoResponse noSuchRoom (200)."""
    from ..room.hub import group_info_refusal
    from ..server.transport import MimiResponse
    from ..wire.mimi import GroupInfoCode

    return MimiResponse(group_info_refusal(room_id.encode(), GroupInfoCode.noSuchRoom).encode())


GROUPINFO_NO_SUCH_ROOM = define_variant(
    "groupinfo-unknown-room-no-such-room", area=AREA,
    permitted_by="-06 §5.6: 'noSuchRoom indicates that the requested room does not exist. If the hub does not "
                 "want to reveal if a room ID does not exist it can use notAuthorized instead.' (notAuthorized is "
                 "the hub's choice, not an obligation)",
    description="groupInfo for a room the hub does not host answers 200 with GroupInfoResponse status noSuchRoom "
                "instead of notAuthorized",
    hooks={"hub.groupinfo.hide-unknown-room": _no_such_room},
)


# --- one FanoutMessage per /notify (-06 §5.5) --------------------------------------------------------------


def _one_message_per_body(provider, room_id: str, domain: str, messages, body: bytes) -> list[bytes] | None:
    """Hook of step hub.fanout.queue-in-order: each FanoutMessage of a room change queued as a /notify body of
    its own, in order. A room in a hub transfer keeps the default (its handoff hands over whole bodies)."""
    room = provider.hub_rooms.get(room_id)
    in_transfer = room is not None and (room.transfer is not None or room.moved is not None or bool(room.min_timestamp))
    if len(messages) < 2 or in_transfer:
        return None
    return [m.encode() for m in messages]


NOTIFY_ONE_MESSAGE_PER_BODY = define_variant(
    "notify-one-message-per-body", area=AREA,
    permitted_by="-06 §5.5: 'The hub can include multiple concatenated FanoutMessage objects relevant to the same "
                 "room.' (can, not must: a /notify body of a single FanoutMessage is the plain case)",
    description="as hub, sends every FanoutMessage of a room change (a commit, its Welcome, the hub's own "
                "proposals) to a provider in a /notify of its own, in order, instead of concatenating them",
    hooks={"hub.fanout.queue-in-order": _one_message_per_body},
)


# --- proxyDownload refusals (-06 §5.10.2) ------------------------------------------------------------------

PROXY_DOWNLOAD_REFUSED_404 = define_variant(
    "proxy-download-refused-404", area=AREA,
    permitted_by="-06 §5.10.2: 'The hub can reject proxyDownload requests by replying with standard HTTP error "
                 "codes.' (no code is named: 404 Not Found is one)",
    description="a proxyDownload for a host that is no peer provider's asset domain is refused HTTP 404 instead of 403",
    hooks={"hub.download.refuse-with-403": lambda host: 404},
)
