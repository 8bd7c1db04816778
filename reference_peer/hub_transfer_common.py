"""What the sides of the hub-transfer extension share (:mod:`reference_peer.hub_transfer`): constants,
the answers they build, and :class:`Side`, the base of the old hub's, the new hub's and the follower's
rules, which :class:`~reference_peer.hub_transfer.HubTransferService` composes."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .server.transport import MimiResponse
from .wire.hub_transfer import HubRedirect, HubTransferCode, HubTransferMessageType, HubTransferResponse
from .wire.mimi import Protocol

if TYPE_CHECKING:
    from .overrides import Overrides
    from .room.hub import HubRoom
    from .room.transfer_settings import HubTransferSettings

MLS10 = {"protocol": Protocol.mls10}
REQUEST_LIFETIME_MS = 60_000
AUTOCOMMIT_ATTEMPTS = 6
TICK_SECONDS = 0.05
HANDOFF_MAX_DELAY = 30.0


def now_ms() -> int:
    return int(time.time() * 1000)


def response(msg_type: HubTransferMessageType, code: HubTransferCode, description: str = "", **fields: Any) -> HubTransferResponse:
    return HubTransferResponse(msg_type=msg_type, code=code, error_description=description.encode(), **fields)


def redirect_response(redirect: HubRedirect) -> MimiResponse:
    from .wire.hub_transfer import HUB_REDIRECT_MEDIA_TYPE

    return MimiResponse(redirect.encode(), status=421, content_type=HUB_REDIRECT_MEDIA_TYPE)


def stamp(room: HubRoom) -> int:
    """The hub's timestamp for a proposal it issues now: never below the room's floor (a room taken over
    keeps the handoff's last_accepted_timestamp, EXT-HUBXFER-TIMESTAMPS-MONOTONIC)."""
    now = max(now_ms(), room.min_timestamp)
    room.last_accepted = max(room.last_accepted, now)
    return now


class Side:
    """One role's rules for one provider. What the roles share stays on the facade ``service`` (the
    provider, the settings, the suite's knobs, the spawned tasks); a side keeps only its own state."""

    def __init__(self, service) -> None:
        self.service = service

    @property
    def p(self):
        return self.service.p

    @property
    def settings(self) -> HubTransferSettings:
        return self.service.settings

    @property
    def overrides(self) -> Overrides:
        """The provider's overrides: the departures from the named steps this peer was built with."""
        return self.service.overrides

    def _stamp(self, room: HubRoom) -> int:
        return stamp(room)
