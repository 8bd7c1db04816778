"""Fault of the hub-transfer extension (docs/extensions/hub-transfer.md §6.2, §7, §8.1, §13): a provider with
no local client's mimi_hub component for a room takes /notify for it only from the room ID's authority (the
-06 reading, hub = authority): neither a newcomer's Welcome from a moved room's new hub, nor the new hub's
/notify to the old hub whose own clients all left.

Check: conformance/scenarios/test_hub_transfer_follower_welcome.py. The hook sits where the reference
peer admits a newcomer's Welcome (``reference_peer/peer.py``: notify_allowed).
"""

from __future__ import annotations

from ..wire.codec import DecodeError, EncodeError
from ..wire.mimi import Protocol, decode_fanout_sequence_tolerant
from ..wire.mls import WireFormat
from .registry import define

AREA = "portability"

REFUSE_NEW_HUB_WELCOME = define(
    "follower-refuses-new-hub-welcome",
    area=AREA,
    requirements=["EXT-HUBXFER-FOLLOWER-ACCEPT-TARGET"],
    description="a provider with no local client's mimi_hub component for a room refuses (403) its /notify from any "
    "provider but the room ID's authority (a Welcome for a room it holds no state of, or any /notify for a room it "
    "moved away), so none of its users can be added to the room after the room moved",
    hooks={"follower.notify.newcomer-welcome-from-moved-hub":
           lambda provider, room_id, peer_domain, body: refuse_new_hub_welcome(provider, room_id, peer_domain, body)},
)


def refuse_new_hub_welcome(provider, room_id: str, peer_domain: str, body: bytes) -> None:
    """follower-refuses-new-hub-welcome: the -06 reading without the extension (the hub is the ID's authority)."""
    from ..server.transport import MimiHTTPError

    hosted = provider.hub_rooms.get(room_id)
    moved_away = hosted is not None and hosted.moved is not None
    if moved_away or (room_id not in provider.known_rooms() and _carries_welcome(body)):
        raise MimiHTTPError(403, "not-the-hub", f"{peer_domain} is not the authority of {room_id}")


def _carries_welcome(body: bytes) -> bool:
    """Whether a /notify body carries a Welcome (decoded here: a fault module does not import the peer)."""
    try:
        messages, _ = decode_fanout_sequence_tolerant(body, scope={"protocol": Protocol.mls10})
    except (DecodeError, EncodeError):
        return False
    return any(m.message.wire_format == WireFormat.mls_welcome for m in messages)
