"""Helpers for the control API HTTP-layer tests: an in-memory fake backend (a small, consistent SUT
of one domain, enough for the layer's tests and for schemathesis), and a way to drive an app."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from reference_peer.control import CONTRACT_VERSION
from reference_peer.control.errors import ControlError

DOMAIN = "sut.example"
URI_MAX_LENGTH = 2048  # the contract's maxLength of every URI
TEST_DEADLINE = 10.0  # no single test may run longer, whatever the code under test does
T = TypeVar("T")


def encode_segment(uri: str) -> str:
    """A URI as one path segment, as the contract says: every octet outside RFC 3986 unreserved encoded."""
    return quote(uri, safe="")


def raw_url(path: str) -> URL:
    """A path sent exactly as written (yarl would otherwise re-normalise its percent-encoding)."""
    return URL(path, encoded=True)


def run_client(app: web.Application, scenario: Callable[[TestClient], Awaitable[T]]) -> T:
    """Serve ``app`` on loopback, run ``scenario`` with a client for it, within the test deadline."""

    async def main() -> T:
        async with asyncio.timeout(TEST_DEADLINE):
            async with TestClient(TestServer(app)) as client:
                return await scenario(client)

    return asyncio.run(main())


class FakeBackend:
    """A SUT of domain ``sut.example`` that is its own hub: users with clients, rooms with local
    participants, base64 messages delivered to the other clients of a room, and consent grants.

    It implements a subset of the contract (the others are absent, so they answer 501) and answers
    only what the contract documents for each operation, so that schemathesis can hold it to that.
    Its getInfo leaves supportedOperations out, for the layer to fill.
    """

    def __init__(self) -> None:
        self.users: dict[str, list[str]] = {}  # user URI -> its client URIs
        self.client_owner: dict[str, str] = {}  # client URI -> user URI
        self.rooms: dict[str, dict[str, Any]] = {}
        self.inbox: dict[str, list[dict[str, Any]]] = {}  # client URI -> messages received, in order
        self.consent: dict[str, list[dict[str, Any]]] = {}  # user URI -> consent entries
        self._serial = 0

    def _fresh(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}{self._serial}"

    @staticmethod
    def _local_name(uri: str, kind: str) -> str:
        """The name part of a URI of this domain (422 not-local for another domain)."""
        authority, _, rest = uri.removeprefix("mimi://").partition("/")
        if authority != DOMAIN:
            raise ControlError.not_local(f"{uri} is not a {kind} of {DOMAIN}")
        return rest.split("/", 1)[1]

    @staticmethod
    def _is_client_uri(uri: str) -> bool:
        return uri.removeprefix("mimi://").split("/")[1] == "d"

    def _known_user(self, uri: str) -> str:
        self._local_name(uri, "user")
        if uri not in self.users:
            raise ControlError.not_found(f"no user {uri}")
        return uri

    def _known_client(self, uri: str) -> str:
        self._local_name(uri, "client")
        if uri not in self.client_owner:
            raise ControlError.not_found(f"no client {uri}")
        return uri

    def _actor_user(self, actor: str) -> str:
        """The local user an actor (user or client URI) stands for; 422 remote, 409 unknown."""
        kind = "client" if self._is_client_uri(actor) else "user"
        self._local_name(actor, kind)
        user = self.client_owner.get(actor) if kind == "client" else (actor if actor in self.users else None)
        if user is None:
            raise ControlError.conflict(f"{actor} does not exist (any more)")
        return user

    def _room(self, uri: str) -> dict[str, Any]:
        room = self.rooms.get(uri)
        if room is None:
            raise ControlError.not_found(f"no room {uri}")
        return room

    def _participant(self, room: dict[str, Any], user: str) -> dict[str, Any] | None:
        return next((entry for entry in room["participants"] if entry["user"] == user), None)

    # -- operations ------------------------------------------------------------------------------

    async def getInfo(self) -> dict[str, Any]:
        return {"contractVersion": CONTRACT_VERSION, "providerDomains": [DOMAIN], "roles": ["hub"]}

    async def createUser(self, *, body: dict[str, Any]) -> dict[str, Any]:
        requested = body.get("user")
        if requested is None:
            name = self._fresh("user")
        elif requested.startswith("mimi://"):
            name = self._local_name(requested, "user")
        else:
            name = requested
        uri = f"mimi://{DOMAIN}/u/{name}"
        if uri in self.users:
            raise ControlError.already_exists(f"user {uri} exists")
        if body.get("consentMode") not in (None, "immediate"):
            raise ControlError.unsupported_value("this SUT has no per-user consent modes")
        clients = [f"mimi://{DOMAIN}/d/{name}/c{index}" for index in range(body.get("clients", 1))]
        if any(len(client) > URI_MAX_LENGTH for client in clients):
            raise ControlError.unsupported_value(f"user name {name!r} too long for client URIs")
        self.users[uri] = clients
        for client in clients:
            self.client_owner[client] = uri
            self.inbox[client] = []
        self.consent[uri] = []
        return {"user": uri, "clients": clients}

    async def deleteUser(self, *, user: str) -> dict[str, Any]:
        self._known_user(user)
        for client in self.users.pop(user):
            del self.client_owner[client]
            del self.inbox[client]
        for room in self.rooms.values():
            room["participants"] = [entry for entry in room["participants"] if entry["user"] != user]
        return {"deleted": user}

    async def createRoom(self, *, body: dict[str, Any]) -> dict[str, Any]:
        creator = self._actor_user(body["creator"])
        requested = body.get("room")
        if requested is None:
            name = self._fresh("room")
        elif requested.startswith("mimi://"):
            name = self._local_name(requested, "room")
        else:
            name = requested
        uri = f"mimi://{DOMAIN}/r/{name}"
        if uri in self.rooms:
            raise ControlError.already_exists(f"room {uri} exists")
        policy = body.get("policy", {})
        if policy.get("minimalMetadata"):
            raise ControlError.policy_unsupported("minimal-metadata rooms are not supported")
        role = body.get("creatorRole", 3)
        self.rooms[uri] = {
            "room": uri,
            "hubDomain": DOMAIN,
            "hostedHere": True,
            "epoch": 0,
            "participants": [{"user": creator, "role": role, "clients": list(self.users[creator])}],
            "externalSenders": [DOMAIN],
            "policy": policy,
        }
        return self.rooms[uri]

    async def getRoom(self, *, room: str) -> dict[str, Any]:
        return self._room(room)

    async def listRooms(self, *, user: str | None) -> dict[str, Any]:
        if user is not None:
            self._local_name(user, "user")
        rooms = [
            {
                "room": room["room"],
                "hubDomain": room["hubDomain"],
                "hostedHere": True,
                "epoch": room["epoch"],
                "participantCount": len(room["participants"]),
            }
            for room in self.rooms.values()
            if user is None or self._participant(room, user) is not None
        ]
        return {"rooms": rooms}

    async def addParticipant(self, *, room: str, body: dict[str, Any]) -> dict[str, Any]:
        state = self._room(room)
        actor = self._actor_user(body["actor"])
        if self._participant(state, actor) is None:
            raise ControlError.conflict(f"{body['actor']} is not a member of {room}")
        target = body["user"]
        if not target.startswith(f"mimi://{DOMAIN}/"):
            # Nobody answers for other domains here: as a real SUT would report an empty keyMaterial.
            return {
                "room": room,
                "outcome": "noKeyMaterial",
                "epoch": state["epoch"],
                "keyMaterial": {"userStatus": "userUnknown", "clients": []},
            }
        if target not in self.users:
            return {
                "room": room,
                "outcome": "noKeyMaterial",
                "epoch": state["epoch"],
                "keyMaterial": {"userStatus": "userUnknown", "clients": []},
            }
        if self._participant(state, target) is not None:
            raise ControlError.conflict(f"{target} is already a participant of {room}")
        state["participants"].append({"user": target, "role": body.get("role", 2), "clients": list(self.users[target])})
        state["epoch"] += 1
        return {"room": room, "outcome": "accepted", "epoch": state["epoch"]}

    async def sendMessage(self, *, room: str, body: dict[str, Any]) -> dict[str, Any]:
        state = self._room(room)
        sender = body["from"]
        self._local_name(sender, "client")
        owner = self.client_owner.get(sender)
        entry = self._participant(state, owner) if owner else None
        if entry is None or sender not in entry["clients"]:
            raise ControlError.conflict(f"{sender} is not a member of {room}")
        if "base64" not in body["content"]:
            raise ControlError.unsupported_value("this SUT sends base64 content only")
        message = {"room": room, "sender": sender, "epoch": state["epoch"], "content": dict(body["content"])}
        for participant in state["participants"]:
            for client in participant["clients"]:
                if client != sender:
                    self.inbox[client].append(message)
        return {"room": room, "outcome": "accepted", "epoch": state["epoch"]}

    async def listReceivedMessages(
        self, *, client: str, room: str | None, after: str | None, limit: int
    ) -> dict[str, Any]:
        self._known_client(client)
        received = self.inbox[client]
        # The cursor is the number of messages of the client scanned so far (opaque to the caller).
        position = 0
        if after is not None:
            if not after.isdigit() or int(after) > len(received):
                raise ControlError.bad_request(f"cursor {after!r} was never issued for {client}")
            position = int(after)
        items = []
        while position < len(received) and len(items) < limit:
            if room is None or received[position]["room"] == room:
                items.append(received[position])
            position += 1
        return {"items": items, "next": str(position)}

    async def grantConsent(self, *, user: str, body: dict[str, Any]) -> dict[str, Any]:
        self._known_user(user)
        entry = {"requester": body["requester"], "target": user, "state": "granted"}
        if "room" in body:
            entry["room"] = body["room"]
        entries = self.consent[user]
        if entry not in entries:
            entries.append(entry)
        result = {"requester": body["requester"], "target": user, "action": "grant"}
        if "room" in body:
            result["room"] = body["room"]
        return result

    async def getConsentState(self, *, user: str) -> dict[str, Any]:
        self._known_user(user)
        return {"user": user, "entries": list(self.consent[user])}


FAKE_OPERATIONS = [name for name in vars(FakeBackend) if not name.startswith("_")]
