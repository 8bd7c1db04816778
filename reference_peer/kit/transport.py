"""The adapter kit's one extension point: :class:`Transport`, the SUT's own client-to-server API verb
by verb. A vendor subclasses it and overrides the verbs its server offers; the kit does the rest
(the MLS clients, the control API, the answers' shapes).

Every verb's default raises ``NotImplementedError``; the kit offers a control operation only when the
verbs it needs are overridden (:func:`implements`), so a missing verb makes the suite's checks that
need the operation NOT_APPLICABLE, naming the operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServerAnswer:
    """What the SUT's server answered for a forwarded MIMI request."""

    status: int  # the HTTP status (of the hub's answer, as the SUT's server relays it)
    # The MIMI response body: UpdateRoomResponse / SubmitMessageResponse / KeyMaterialResponse /
    # GroupInfoResponse (TLS presentation bytes).
    body: bytes = b""
    detail: str = ""


@dataclass(frozen=True)
class Delivery:
    """Something the SUT's server stored for a client."""

    room: str  # the room URI it is for
    fanout: bytes  # one or more concatenated FanoutMessages, as received in /notify


class Transport:
    """The SUT's client-to-server API. Subclass it, set ``domain`` (and ``roles`` if the SUT can host
    rooms) in ``__init__``, and override the verbs the server offers."""

    domain: str
    roles: tuple[str, ...] = ("follower",)

    # -- users and clients ----------------------------------------------------------------------------

    async def register_user(self, user: str, *, profile: dict | None, search_policy: str | None,
                            consent_mode: str | None) -> None:
        """Create ``user`` (a mimi:// user URI of ``domain``); ``profile``, ``search_policy`` and
        ``consent_mode`` are the contract's createUser members as given (None: absent)."""
        raise NotImplementedError

    async def delete_user(self, user: str) -> None:
        raise NotImplementedError

    async def register_client(self, user: str, client: str) -> None:
        """Create ``client`` (a mimi:// client URI) for ``user``."""
        raise NotImplementedError

    async def delete_client(self, client: str) -> None:
        raise NotImplementedError

    async def upload_key_packages(self, client: str, key_packages: list[bytes], *, last_resort: bytes | None,
                                  replace: bool) -> int:
        """Store ``key_packages`` (KeyPackage TLS bytes) for keyMaterial requests that target the client's
        user; ``last_resort`` replaces the client's last-resort KeyPackage (None: withdraw it); with
        ``replace`` the unclaimed ones are withdrawn first. Returns how many one-time KeyPackages the
        server now holds for the client."""
        raise NotImplementedError

    # -- rooms ----------------------------------------------------------------------------------------

    async def send_update(self, room: str, client: str, request: bytes) -> ServerAnswer:
        """Forward an UpdateRequest body (a commit with its Welcome, or proposals) to the room's hub."""
        raise NotImplementedError

    async def submit_message(self, room: str, client: str, request: bytes) -> ServerAnswer:
        """Forward a SubmitMessageRequest body to the room's hub."""
        raise NotImplementedError

    async def key_material(self, room: str, client: str, target_user: str, request: bytes) -> ServerAnswer:
        """Forward a signed KeyMaterialRequest body for ``target_user`` (via the room's hub)."""
        raise NotImplementedError

    async def group_info(self, room: str, client: str, request: bytes) -> ServerAnswer:
        """Forward a GroupInfoRequest body to the room's hub (optional: joinRoom)."""
        raise NotImplementedError

    async def fetch(self, client: str) -> list[Delivery]:
        """What the server holds for ``client`` (Welcomes for its KeyPackages, its rooms' fan-out), each
        returned once, in the order received."""
        raise NotImplementedError

    # -- optional: hub role ---------------------------------------------------------------------------

    async def create_room(self, room: str, client: str, group_info: bytes, ratchet_tree: bytes) -> None:
        """Host ``room`` created by ``client``: its first GroupInfo (an MLSMessage) and ratchet tree."""
        raise NotImplementedError

    async def hub_external_sender(self) -> tuple[bytes, bytes]:
        """For create_room: the hub's external sender as (signature public key, credential identity),
        which the creator puts in the new group's external_senders."""
        raise NotImplementedError

    # -- optional: consent ----------------------------------------------------------------------------

    async def request_consent(self, user: str, target: str, room: str | None) -> None:
        raise NotImplementedError

    async def cancel_consent_request(self, user: str, target: str, room: str | None) -> None:
        raise NotImplementedError

    async def grant_consent(self, user: str, requester: str, room: str | None) -> None:
        raise NotImplementedError

    async def revoke_consent(self, user: str, requester: str, room: str | None) -> None:
        raise NotImplementedError

    async def consent_state(self, user: str) -> list[dict[str, Any]]:
        """The contract's ConsentState entries for ``user`` as target."""
        raise NotImplementedError

    async def user_events(self, user: str) -> list[dict[str, Any]]:
        """The contract's UserEvent items for ``user``, oldest first."""
        raise NotImplementedError


def implements(transport: Transport, verb: str) -> bool:
    """Whether ``transport`` overrides ``verb`` (the base class's default only raises)."""
    own = getattr(type(transport), verb, None)
    return own is not None and own is not getattr(Transport, verb, None)


__all__ = ["Delivery", "ServerAnswer", "Transport", "implements"]
