"""The control operations, once: the body of every operationId the reference peer and the adapter kit
both offer, written against a small set of primitives that each backend implements on what it drives.

* :class:`~reference_peer.kit.backend.KitBackend`: a vendor's Transport and the kit's KitClients;
* :class:`~reference_peer.control.backend.ReferenceBackend`: a ReferenceProvider.

The operations are the ``_<operationId>`` methods; a backend offers them with :meth:`KitOperations.offer`
(an instance attribute per operationId, which is what the control HTTP layer looks up). The primitives
(the registry of local users and clients, the members of a room, sending an UpdateRequest or a
SubmitMessageRequest, key material, joining by external commit, the rooms and their views, consent,
polling) raise NotImplementedError here. Where a backend may be built to depart from a rule (the
reference peer's named steps), the shared body asks an overridable hook.
"""

from __future__ import annotations

from typing import Any

from ..control.errors import ControlError
from ..mls import remove_proposal, self_remove_proposal
from ..peer import RoomCall, fresh_name
from ..provider.consent import ConsentMode
from ..provider.directory_search import SearchPolicy
from ..room import ROLE_ADMIN, ROLE_MEMBER, SimulatedClient, default_policy
from ..room.naming import user_of_uri
from ..wire.identity import MimiUri, UriKind
from ..wire.room_policy import ROLE_INDEX_BANNED
from .contract import (
    SEARCH_POLICIES,
    closed,
    commit_outcome,
    cursor,
    integer,
    key_material_of,
    local_name,
    message_content,
    parse_uri,
    remove_user,
    submit_with_catch_up,
    update_with_catch_up,
)


def empty_room_view() -> dict[str, Any]:
    """contract.room_view's shape for a room with no local state."""
    return {"epoch": 0, "participants": [], "externalSenders": [], "groupId": None, "policy": {}}


class KitOperations:
    """The control operations over the primitives below (see the module docstring)."""

    domain: str  # the provider domain named in errors and in new users', clients' and rooms' URIs
    # What the consent primitives raise for an entry the server refuses (answered unsupported-value).
    CONSENT_REFUSALS: tuple[type[Exception], ...] = (ValueError,)

    def offer(self, operations) -> None:
        """Make each of ``operations`` (operationIds) a method of this instance."""
        for operation in operations:
            setattr(self, operation, getattr(self, f"_{operation}"))

    # -- primitives (each backend implements them) ---------------------------------------------------

    def _is_local_domain(self, domain: str | None) -> bool:
        raise NotImplementedError

    def _has_user(self, user: str) -> bool:
        """``user`` is an active local user."""
        raise NotImplementedError

    def _has_client(self, client: str) -> bool:
        """``client`` is a local client with its keys."""
        raise NotImplementedError

    def _owner_of(self, client: str) -> str | None:
        """The user ``client`` is (or was being made) a client of; None for an unknown client."""
        raise NotImplementedError

    def _clients_of(self, user: str) -> list[str]:
        raise NotImplementedError

    async def _provision_user(self, user: str, name: str, count: int, body: dict[str, Any],
                              search_policy: SearchPolicy, consent_mode: ConsentMode | None) -> list[str]:
        """Make ``user`` with ``count`` clients (their KeyPackages published); returns the clients.
        A ValueError is a value the server cannot take (answered unsupported-value)."""
        raise NotImplementedError

    async def _delete_user(self, user: str) -> None:
        raise NotImplementedError

    async def _provision_client(self, user: str, client: str) -> None:
        """A new client of ``user``, its KeyPackages published."""
        raise NotImplementedError

    async def _delete_client(self, client: str) -> None:
        raise NotImplementedError

    async def _publish_key_packages(self, client: str, count: int, *, last_resort: bool,
                                    lifetime_seconds: int | None, replace: bool) -> tuple[int, int, bool]:
        """New KeyPackages of ``client``: (published, available on the server, has a last-resort one)."""
        raise NotImplementedError

    def _room_policy_options(self) -> dict[str, Any]:
        """Keyword arguments of policy_from_json for createRoom's policy."""
        return {}

    async def _create_room(self, room: str, client: str, role: int, policy, body: dict[str, Any]) -> None:
        """``client`` creates ``room`` (already checked to be new and local) with ``policy``."""
        raise NotImplementedError

    def _known_rooms(self) -> set[str]:
        raise NotImplementedError

    def _active_member(self, room: str, client: str) -> SimulatedClient | None:
        raise NotImplementedError

    def _save_member(self, room: str, client: str, member: SimulatedClient) -> None:
        raise NotImplementedError

    def _rooms_of_user(self, user: str) -> set[str]:
        """The rooms a client of ``user`` is an active member of."""
        raise NotImplementedError

    def _room_view(self, room: str) -> dict[str, Any]:
        """contract.room_view of the local state of ``room`` (empty_room_view() when there is none)."""
        raise NotImplementedError

    def _hub_placement(self, room: str, *, listing: bool) -> tuple[str, bool]:
        """(hubDomain, hostedHere) of ``room`` for listRooms (``listing``) or getRoom."""
        raise NotImplementedError

    def _room_extras(self, room: str) -> dict[str, Any]:
        """getRoom's further fields (extensions)."""
        return {}

    async def _send_update(self, room: str, client: str, body: bytes) -> RoomCall:
        """An UpdateRequest of ``client`` to the room's hub; ``update`` is the decoded answer or None."""
        raise NotImplementedError

    async def _send_submit(self, room: str, client: str, body: bytes) -> RoomCall:
        """A SubmitMessageRequest of ``client`` to the room's hub; ``submit`` is the decoded answer or None."""
        raise NotImplementedError

    async def _obtain_key_material(self, room: str, client: str, member: SimulatedClient,
                                   target: str) -> tuple[int, bytes]:
        """The hub's keyMaterial answer for ``target``: (HTTP status, KeyMaterialResponse bytes)."""
        raise NotImplementedError

    async def _join(self, room: str, client: str) -> dict[str, Any]:
        """``client`` joins ``room`` by external commit; the outcome as joinRoom answers it."""
        raise NotImplementedError

    def _received(self, client: str, room: str | None, after: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """listReceivedMessages' items after cursor ``after``: (the cursor after it, contract.received_item)."""
        raise NotImplementedError

    async def _user_events(self, user: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def _consent_entries(self, user: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def _grant_consent(self, user: str, requester: str, room: str | None) -> None:
        raise NotImplementedError

    async def _revoke_consent(self, user: str, requester: str, room: str | None) -> None:
        raise NotImplementedError

    async def _request_consent(self, user: str, target: str, room: str | None, *, cancel: bool) -> None:
        raise NotImplementedError

    async def poll(self) -> None:
        """Let the local clients process what the server holds for them (before reading or committing)."""

    # -- rules a backend may be built to depart from --------------------------------------------------

    def _new_device_joins_rooms(self) -> bool:
        """addClient: the new client joins its user's rooms (unless joinRooms is false)."""
        return True

    def _ban_moves_to_banned_role(self) -> bool:
        """removeParticipant mode=ban: role 1 (banned) and the clients removed, rather than off the list."""
        return True

    # -- helpers --------------------------------------------------------------------------------------

    def _local_user(self, uri: Any, what: str = "user") -> str:
        parsed = parse_uri(uri, UriKind.user, what)
        if not self._is_local_domain(parsed.domain):
            raise ControlError.not_local(f"{uri} is not a user of {self.domain}")
        if not self._has_user(uri):
            raise ControlError.not_found(f"no user {uri}")
        return uri

    def _local_client(self, uri: Any, what: str = "client") -> str:
        parsed = parse_uri(uri, UriKind.client, what)
        if not self._is_local_domain(parsed.domain):
            raise ControlError.not_local(f"{uri} is not a client of {self.domain}")
        if not self._has_client(uri):
            raise ControlError.not_found(f"no client {uri}")
        return uri

    def _room(self, room: Any) -> str:
        parse_uri(room, UriKind.room, "room")
        if room not in self._known_rooms():
            raise ControlError.not_found(f"{self.domain} knows no room {room}")
        return room

    def _actor(self, room: str, actor: Any) -> tuple[str, SimulatedClient]:
        """The acting client: the named client, or any client of the named user, active in ``room``."""
        parsed = parse_uri(actor, None, "actor")
        if not self._is_local_domain(parsed.domain):
            raise ControlError.not_local(f"actor {actor} is not local")
        if parsed.kind is UriKind.client:
            candidates = [self._local_client(actor, "actor")]
        elif parsed.kind is UriKind.user:
            candidates = self._clients_of(self._local_user(actor, "actor"))
        else:
            raise ControlError.bad_request(f"actor: {actor!r} is neither a user nor a client URI")
        for client in candidates:
            member = self._active_member(room, client)
            if member is not None:
                return client, member
        raise ControlError.conflict(f"{actor} has no client in {room}")

    async def _commit(self, room: str, client: str, build) -> dict[str, Any]:
        await self.poll()  # the latest epoch first: fewer wrongEpoch round trips
        call, response, member = await update_with_catch_up(
            room, client, build, member_of=self._active_member, save=self._save_member,
            send=lambda r, body: self._send_update(r, client, body),
        )
        return commit_outcome(room, call, response, member)

    # -- users, clients -------------------------------------------------------------------------------

    async def _createUser(self, body: Any) -> dict[str, Any]:
        body = closed(body, "createUser", {"user", "clients", "profile", "searchPolicy", "consentMode"})
        raw = body.get("user") or fresh_name("user-")
        if isinstance(raw, str) and raw.startswith("mimi://"):
            parsed = parse_uri(raw, UriKind.user, "user")
            if not self._is_local_domain(parsed.domain):
                raise ControlError.not_local(f"{raw} is not in {self.domain}")
            name = parsed.user or ""
        else:
            name = local_name(raw, "user")
        user = MimiUri.for_user(self.domain, name).format()
        count = integer(body.get("clients"), "clients", maximum=16, default=1)
        policy = body.get("searchPolicy")
        mode = body.get("consentMode")
        try:
            search_policy = SEARCH_POLICIES[policy] if policy is not None else SearchPolicy.exact_handle
            consent_mode = ConsentMode(mode) if mode is not None else None
        except (KeyError, ValueError) as exc:
            raise ControlError.bad_request(f"searchPolicy or consentMode: {exc}") from None
        if self._has_user(user):
            raise ControlError.already_exists(f"user {user} exists")
        try:
            clients = await self._provision_user(user, name, count, body, search_policy, consent_mode)
        except ValueError as exc:  # the server cannot take this value (e.g. a consent mode it lacks)
            raise ControlError.unsupported_value(str(exc)) from None
        contract_policy = {v: k for k, v in SEARCH_POLICIES.items()}[search_policy]
        out: dict[str, Any] = {"user": user, "clients": list(clients), "searchPolicy": contract_policy}
        if consent_mode is not None:
            out["consentMode"] = str(consent_mode)
        return out

    async def _deleteUser(self, user: str) -> dict[str, Any]:
        self._local_user(user)
        await self._delete_user(user)
        return {"deleted": user}

    async def _addClient(self, user: str, body: Any) -> dict[str, Any]:
        self._local_user(user)
        body = closed(body or {}, "addClient", {"client", "joinRooms"})
        parsed = parse_uri(user, UriKind.user, "user")
        name = local_name(body.get("client") or f"c{len(self._clients_of(user)) + 1}", "client")
        client = MimiUri.for_client(parsed.domain, name, user=parsed.user).format()
        if self._owner_of(client) is not None:
            raise ControlError.already_exists(f"client {client} exists")
        join_rooms = body.get("joinRooms", True)
        if not isinstance(join_rooms, bool):
            raise ControlError.bad_request("joinRooms: expected a boolean")
        await self.poll()
        rooms = sorted(self._rooms_of_user(user))
        await self._provision_client(user, client)
        outcomes = []
        if not self._new_device_joins_rooms():
            join_rooms = False
        for room in rooms if join_rooms else []:  # external commit after groupInfo, one room at a time
            outcomes.append(await self._join(room, client))
        return {"user": user, "client": client, "rooms": outcomes}

    async def _deleteClient(self, client: str) -> dict[str, Any]:
        self._local_client(client)
        await self._delete_client(client)
        return {"deleted": client}

    async def _publishKeyPackages(self, client: str, body: Any) -> dict[str, Any]:
        self._local_client(client)
        body = closed(body, "publishKeyPackages", {"count", "lastResort", "lifetimeSeconds", "replace"}, {"count"})
        count = integer(body["count"], "count", maximum=1000)
        lifetime = body.get("lifetimeSeconds")
        if lifetime is not None:
            lifetime = integer(lifetime, "lifetimeSeconds", minimum=1, maximum=31_536_000)
        last_resort, replace = body.get("lastResort", True), body.get("replace", False)
        if not isinstance(last_resort, bool) or not isinstance(replace, bool):
            raise ControlError.bad_request("lastResort and replace are booleans")
        published, available, has_last_resort = await self._publish_key_packages(
            client, count, last_resort=last_resort, lifetime_seconds=lifetime, replace=replace
        )
        return {"client": client, "published": published, "available": available, "lastResort": has_last_resort}

    # -- rooms ----------------------------------------------------------------------------------------

    async def _createRoom(self, body: Any) -> dict[str, Any]:
        from ..control.policy_json import policy_from_json  # the control package imports this module

        body = closed(body, "createRoom", {"creator", "room", "name", "creatorRole", "policy"}, {"creator"})
        policy = (policy_from_json(body["policy"], default_policy(), **self._room_policy_options())
                  if "policy" in body else default_policy())
        raw = body.get("room") or fresh_name("room-")
        if isinstance(raw, str) and raw.startswith("mimi://"):
            parsed = parse_uri(raw, UriKind.room, "room")
            if not self._is_local_domain(parsed.domain):
                raise ControlError.not_local(f"{raw} is not a room of {self.domain}")
            room = raw
        else:
            room = f"mimi://{self.domain}/r/{local_name(raw, 'room')}"
        if room in self._known_rooms():
            raise ControlError.already_exists(f"room {room} exists")
        creator = body["creator"]
        parsed = parse_uri(creator, None, "creator")
        if not self._is_local_domain(parsed.domain):
            raise ControlError.not_local(f"creator {creator} is not local")
        client = (
            self._local_client(creator, "creator")
            if parsed.kind is UriKind.client
            else next(iter(self._clients_of(self._local_user(creator, "creator"))), None)
        )
        if client is None:
            raise ControlError.conflict(f"{creator} has no client to create the room with")
        role = integer(body.get("creatorRole"), "creatorRole", default=ROLE_ADMIN)
        await self._create_room(room, client, role, policy, body)
        return await self._getRoom(room)

    async def _listRooms(self, user: str | None = None) -> dict[str, Any]:
        await self.poll()
        rooms = sorted(self._known_rooms())
        if user is not None:
            clients = self._clients_of(self._local_user(user))
            rooms = [r for r in rooms if any(self._active_member(r, c) for c in clients)]
        out = []
        for room in rooms:
            view = self._room_view(room)
            hub, hosted_here = self._hub_placement(room, listing=True)
            out.append({"room": room, "hubDomain": hub, "hostedHere": hosted_here, "epoch": view["epoch"],
                        "participantCount": len(view["participants"])})
        return {"rooms": out}

    async def _getRoom(self, room: str) -> dict[str, Any]:
        await self.poll()
        self._room(room)
        view = self._room_view(room)
        hub, hosted_here = self._hub_placement(room, listing=False)
        out = {
            "room": room,
            "hubDomain": hub,
            "hostedHere": hosted_here,
            "epoch": view["epoch"],
            "participants": view["participants"],
            "externalSenders": view["externalSenders"],
            "policy": view["policy"],
        }
        if view["groupId"] is not None:
            out["groupId"] = view["groupId"]
        out.update(self._room_extras(room))
        return out

    async def _addParticipant(self, room: str, body: Any) -> dict[str, Any]:
        await self.poll()
        self._room(room)
        body = closed(body, "addParticipant", {"actor", "user", "role", "withoutClients"}, {"actor", "user"})
        target = parse_uri(body["user"], UriKind.user, "user").format()
        role = integer(body.get("role"), "role", default=ROLE_MEMBER)
        without_clients = body.get("withoutClients", False)
        if not isinstance(without_clients, bool):
            raise ControlError.bad_request("withoutClients: expected a boolean")
        client, member = self._actor(room, body["actor"])
        if target.encode() in {bytes(p.user) for p in member.participant_list().participants if p.role_index > 0}:
            raise ControlError.conflict(f"{target} is already a participant of {room}")
        if without_clients:  # experimental: the participant-list entry only, no key material, no Add
            return await self._commit(room, client, lambda m: m.add_users([], [(target.encode(), role)]))
        status, answer = await self._obtain_key_material(room, client, member, target)
        key_material, key_packages = key_material_of(status, answer)
        if not key_packages:
            return {"room": room, "outcome": "noKeyMaterial", "keyMaterial": key_material}
        result = await self._commit(room, client, lambda m: m.add_users(key_packages, [(target.encode(), role)]))
        result["keyMaterial"] = key_material
        return result

    async def _removeParticipant(self, room: str, user: str, actor: str, mode: str | None = None) -> dict[str, Any]:
        await self.poll()
        self._room(room)
        target = parse_uri(user, UriKind.user, "user").format().encode()
        client, member = self._actor(room, actor)
        mode = mode or "remove"
        listed = {bytes(p.user) for p in member.participant_list().participants}
        if target not in listed and not member.leaves_of_user(target):
            raise ControlError.conflict(f"{user} is not a participant of {room}")
        if mode == "remove" or (mode == "ban" and not self._ban_moves_to_banned_role()):
            return await self._commit(room, client, lambda m: remove_user(m, target))
        if mode == "ban":
            return await self._commit(
                room, client, lambda m: m.change_role(target, ROLE_INDEX_BANNED, remove_clients=True)
            )
        if mode == "kick":
            return await self._commit(
                room, client, lambda m: m.commit([remove_proposal(leaf) for leaf in m.leaves_of_user(target)])
            )
        raise ControlError.bad_request(f"mode: expected remove, kick or ban, got {mode!r}")

    async def _unbanParticipant(self, room: str, body: Any) -> dict[str, Any]:
        await self.poll()
        self._room(room)
        body = closed(body, "unbanParticipant", {"actor", "user", "role"}, {"actor", "user", "role"})
        target = parse_uri(body["user"], None, "user").format().encode()
        role = integer(body["role"], "role")
        client, member = self._actor(room, body["actor"])
        roles = {bytes(p.user): p.role_index for p in member.participant_list().participants}
        if roles.get(target) != ROLE_INDEX_BANNED:
            raise ControlError.conflict(f"{body['user']} is not banned in {room}")
        if role == 0:  # off the participant list: a removal (removedIndices), not a role change
            return await self._commit(room, client, lambda m: m.remove_user(target))
        return await self._commit(room, client, lambda m: m.change_role(target, role))

    async def _removeClientFromRoom(self, room: str, client: str, body: Any = None) -> dict[str, Any]:
        await self.poll()
        self._room(room)
        body = closed(body or {}, "removeClientFromRoom", {"actor"})
        self._local_client(client)
        leaving = self._active_member(room, client)
        if leaving is None:
            raise ControlError.conflict(f"{client} is not a member of {room}")
        actor = body.get("actor")
        if actor is None:  # the client removes itself: a SelfRemove proposal for the next committer
            return await self._commit(room, client, lambda m: m.proposals_request([self_remove_proposal()]))
        actor_client, _ = self._actor(room, actor)
        if self._owner_of(actor_client) != self._owner_of(client) or actor_client == client:
            raise ControlError.conflict(f"{actor} is not another client of the same user as {client}")
        return await self._commit(room, actor_client, lambda m: m.commit([remove_proposal(m.leaf_of(leaving))]))

    async def _leaveRoom(self, room: str, body: Any) -> dict[str, Any]:
        await self.poll()
        self._room(room)
        body = closed(body, "leaveRoom", {"actor"}, {"actor"})
        client, _ = self._actor(room, body["actor"])
        # Proposals only: the user stays a member until the next commit includes them (§3.5).
        return await self._commit(room, client, lambda m: m.self_leave_request())

    async def _joinRoom(self, room: str, body: Any) -> dict[str, Any]:
        """joinRoom (experimental): a local client joins by external commit; a backend may locate a room
        it holds no state for from its ID."""
        parse_uri(room, UriKind.room, "room")
        body = closed(body, "joinRoom", {"client"}, {"client"})
        client = self._local_client(body["client"])
        await self.poll()
        if self._active_member(room, client) is not None:
            raise ControlError.conflict(f"{client} is already a member of {room}")
        return await self._join(room, client)

    # -- messaging ------------------------------------------------------------------------------------

    async def _sendMessage(self, room: str, body: Any) -> dict[str, Any]:
        await self.poll()
        self._room(room)
        body = closed(body, "sendMessage", {"from", "content"}, {"from", "content"})
        client = self._local_client(body["from"], "from")
        member = self._active_member(room, client)
        if member is None:
            raise ControlError.conflict(f"{client} is not a member of {room}")
        data = message_content(body["content"])
        return await submit_with_catch_up(room, client, member, data, member_of=self._active_member,
                                          save=self._save_member,
                                          send=lambda r, request: self._send_submit(r, client, request))

    async def _listReceivedMessages(
        self, client: str, room: str | None = None, after: str | None = None, limit: str | int | None = None
    ) -> dict[str, Any]:
        self._local_client(client)
        start = cursor(after)
        count = integer(limit, "limit", minimum=1, maximum=1000, default=100)
        await self.poll()
        rows = self._received(client, room, start, count)
        return {"items": [item for _, item in rows], "next": str(rows[-1][0] if rows else start)}

    async def _listUserEvents(self, user: str, after: str | None = None, limit: int | None = None) -> dict[str, Any]:
        self._local_user(user)
        start = cursor(after)
        count = integer(limit, "limit", minimum=1, maximum=1000, default=100)
        items = await self._user_events(user)
        page = items[start : start + count]  # the events are a snapshot: the cursor is a position in it
        return {"items": page, "next": str(start + len(page))}

    # -- consent --------------------------------------------------------------------------------------

    def _consent_body(self, body: Any, where: str, party: str) -> tuple[str, str | None]:
        body = closed(body, where, {party, "room"}, {party})
        other = body[party]
        parse_uri(other, UriKind.user, party)
        room = body.get("room")
        if room is not None:
            parse_uri(room, UriKind.room, "room")
        return other, room

    @staticmethod
    def _consent_result(requester: str, target: str, room: str | None, action: str) -> dict[str, Any]:
        out: dict[str, Any] = {"requester": requester, "target": target, "action": action}
        if room is not None:
            out["room"] = room
        return out

    async def _getConsentState(self, user: str) -> dict[str, Any]:
        """The user's decisions as target (granted / revoked) and the requests still undecided (pending)."""
        self._local_user(user)
        return {"user": user, "entries": await self._consent_entries(user)}

    async def _grantConsent(self, user: str, body: Any) -> dict[str, Any]:
        self._local_user(user)
        requester, room = self._consent_body(body, "grantConsent", "requester")
        await self._grant_consent(user, requester, room)
        return self._consent_result(requester, user, room, "grant")

    async def _revokeConsent(self, user: str, body: Any) -> dict[str, Any]:
        self._local_user(user)
        requester, room = self._consent_body(body, "revokeConsent", "requester")
        await self._revoke_consent(user, requester, room)
        return self._consent_result(requester, user, room, "revoke")

    async def _requestConsent(self, user: str, body: Any) -> dict[str, Any]:
        self._local_user(user)
        target, room = self._consent_body(body, "requestConsent", "target")
        try:
            await self._request_consent(user, target, room, cancel=False)
        except self.CONSENT_REFUSALS as exc:
            raise ControlError.unsupported_value(str(exc)) from None
        return self._consent_result(user, target, room, "request")

    async def _cancelConsentRequest(self, user: str, body: Any) -> dict[str, Any]:
        self._local_user(user)
        target, room = self._consent_body(body, "cancelConsentRequest", "target")
        try:
            await self._request_consent(user, target, room, cancel=True)
        except self.CONSENT_REFUSALS as exc:
            raise ControlError.unsupported_value(str(exc)) from None
        return self._consent_result(user, target, room, "cancel")


def sender_user(sender: str, overrides=None) -> str | None:
    """The user URI of a sending client's credential identity (None when it names no user)."""
    user = user_of_uri(sender) if overrides is None else user_of_uri(sender, overrides)
    return None if user is None else user.decode()


__all__ = ["KitOperations", "empty_room_view", "sender_user"]
