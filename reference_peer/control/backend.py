"""The reference peer's implementation of the SUT control API (``openapi.yaml``) on a
:class:`~reference_peer.peer.ReferenceProvider`.

One ``async`` method per operationId, called by the HTTP layer (``app.py``) as
``backend.<operationId>(**path_params, **query_params, body=...)``; each returns a JSON-able dict
shaped as the contract's response schema, or raises :class:`ControlError`. Every action goes through
real MIMI traffic: a local client's commit is an UpdateRequest to the room's hub (over HTTPS when the
hub is another provider), a message is a SubmitMessageRequest, key material for a remote user is a
keyMaterial request via the hub.
"""

from __future__ import annotations

from typing import Any

from ..kit.contract import (
    SEARCH_POLICIES,
    closed,
    commit_outcome,
    cursor,
    hub_response,
    integer,
    key_material_of,
    local_name,
    message_content,
    parse_uri,
    profile_of,
    received_item,
    remove_user,
    room_view,
    submit_with_catch_up,
    update_with_catch_up,
)
from ..mls import MLSError, remove_proposal, self_remove_proposal
from ..overrides import Overrides, step
from ..peer import fresh_name
from ..provider.consent import ConsentDomainError, ConsentMode
from ..provider.directory_search import SearchPolicy
from ..room import ROLE_ADMIN, ROLE_MEMBER, HubRoom, SimulatedClient, default_policy, room_extensions
from ..room.hub import HOSTED_ROOMS
from ..room.naming import domain_of_uri, user_of_uri
from ..wire.codec import DecodeError, EncodeError
from ..wire.hub_transfer import MIMI_HUB_COMPONENT_ID, initial_hub_data
from ..wire.identity import MimiUri, UriKind
from ..wire.room_policy import ROLE_INDEX_BANNED
from . import CONTRACT_VERSION
from .errors import ControlError
from .policy_json import parent_of, policy_from_json

IMPLEMENTED = (
    "getInfo",
    "createUser",
    "deleteUser",
    "addClient",
    "deleteClient",
    "publishKeyPackages",
    "createRoom",
    "listRooms",
    "getRoom",
    "addParticipant",
    "removeParticipant",
    "unbanParticipant",
    "leaveRoom",
    "joinRoom",
    "removeClientFromRoom",
    "sendMessage",
    "listReceivedMessages",
    "listUserEvents",
    "getConsentState",
    "grantConsent",
    "revokeConsent",
    "requestConsent",
    "cancelConsentRequest",
)


# The control operations' rules (steps a peer may be built to perform otherwise; reference_peer.overrides).
NEW_DEVICE_JOINS_ROOMS = step(
    "control.add-client.join-rooms", "PROTO-GROUPINFO-FOLLOWER-JOIN-NEW-DEVICE",
    summary="a user's new client joins the user's rooms (external commit after groupInfo) unless joinRooms is false",
)
HUB_COMPONENT_AT_CREATION = step(
    "control.create-room.hub-component", "EXT-HUBXFER-COMPONENT-AT-CREATION",
    summary="a room created with the hub-transfer extension on carries a mimi_hub component from its creation",
)
TRANSFER_REQUEST_TO_HUB = step(
    "control.start-hub-transfer.request-to-hub", "EXT-HUBXFER-FOLLOWER-SENDS-REQUEST",
    summary="a follower sends a user's HubTransferRequest to the room's hub-of-record (not the proposed new hub)",
)
BAN_MOVES_TO_BANNED_ROLE = step(
    "control.remove-participant.ban-to-banned-role", "POLICY-CAP-BAN-REMOVES-CLIENTS",
    summary="a ban moves the user to role 1 (banned) and removes its clients, rather than taking it off the list",
)


class ReferenceBackend:
    """The control API operations for one :class:`ReferenceProvider`."""

    def __init__(self, provider) -> None:  # a ReferenceProvider (not imported: peer imports nothing from here)
        self.provider = provider
        if getattr(provider, "transfers", None) is not None:  # offered only with the extension switched on
            self.startHubTransfer = self._start_hub_transfer
        HOSTED_ROOMS[provider.domain] = provider.hub_rooms  # parent-dependent rooms read their parent's list

    @property
    def state(self):
        return self.provider.state

    @property
    def overrides(self):
        """The overrides the provider was built with (reference_peer.overrides)."""
        return self.provider.overrides

    # -- helpers ------------------------------------------------------------------------------------

    def _local_user(self, uri: Any, what: str = "user") -> str:
        parsed = parse_uri(uri, UriKind.user, what)
        if not self.provider.is_local_domain(parsed.domain):
            raise ControlError.not_local(f"{uri} is not a user of {self.provider.domain}")
        if self.state.user_status(uri) != "active":
            raise ControlError.not_found(f"no user {uri}")
        return uri

    def _local_client(self, uri: Any, what: str = "client") -> str:
        parsed = parse_uri(uri, UriKind.client, what)
        if not self.provider.is_local_domain(parsed.domain):
            raise ControlError.not_local(f"{uri} is not a client of {self.provider.domain}")
        if self.state.user_of(uri) is None or uri not in self.provider.client_keys:
            raise ControlError.not_found(f"no client {uri}")
        return uri

    def _room(self, room: Any) -> str:
        parse_uri(room, UriKind.room, "room")
        if room not in self.provider.known_rooms():
            raise ControlError.not_found(f"{self.provider.domain} knows no room {room}")
        return room

    def _actor(self, room: str, actor: Any) -> tuple[str, SimulatedClient]:
        """The acting client: the named client, or any client of the named user, active in ``room``."""
        parsed = parse_uri(actor, None, "actor")
        if not self.provider.is_local_domain(parsed.domain):
            raise ControlError.not_local(f"actor {actor} is not local")
        if parsed.kind is UriKind.client:
            candidates = [self._local_client(actor, "actor")]
        elif parsed.kind is UriKind.user:
            candidates = self.state.clients_of(self._local_user(actor, "actor"))
        else:
            raise ControlError.bad_request(f"actor: {actor!r} is neither a user nor a client URI")
        for client in candidates:
            member = self.provider.active_member(room, client)
            if member is not None:
                return client, member
        raise ControlError.conflict(f"{actor} has no client in {room}")

    async def _update(self, room: str, client: str, build) -> tuple[Any, Any, SimulatedClient | None]:
        return await update_with_catch_up(room, client, build, member_of=self.provider.active_member,
                                          save=self.provider.save_member, send=self.provider.send_update)

    async def _commit(self, room: str, client: str, build) -> dict[str, Any]:
        call, response, member = await self._update(room, client, build)
        return commit_outcome(room, call, response, member)

    # -- info, users, clients -----------------------------------------------------------------------

    async def getInfo(self) -> dict[str, Any]:
        operations = list(IMPLEMENTED) + (["startHubTransfer"] if self.provider.transfers is not None else [])
        info = {
            "contractVersion": CONTRACT_VERSION,
            "product": {"name": "mimi-conformance reference peer"},
            "providerDomains": list(self.provider.domains),
            "roles": ["hub", "follower"],
            "consent": {
                "extensionVersion": "01",
                "defaultMode": str(self.state.settings.consent.default_mode),
                "perUserOverride": self.state.settings.consent.allow_user_override,
                "revealsUnknownUsers": self.state.settings.reveal_unknown_consent_targets,
            },
            "supportedOperations": operations,
        }
        if self.provider.transfers is not None:  # the manifest's hub_transfer block (extension section 17)
            info["x-hubTransfer"] = self.provider.transfers.settings.manifest_block()
        return info

    async def createUser(self, body: Any) -> dict[str, Any]:
        body = closed(body, "createUser", {"user", "clients", "profile", "searchPolicy", "consentMode"})
        raw = body.get("user") or fresh_name("user-")
        if isinstance(raw, str) and raw.startswith("mimi://"):
            parsed = parse_uri(raw, UriKind.user, "user")
            if not self.provider.is_local_domain(parsed.domain):
                raise ControlError.not_local(f"{raw} is not in {self.provider.domain}")
            name = parsed.user or ""
        else:
            name = local_name(raw, "user")
        user = MimiUri.for_user(self.provider.domain, name).format()
        count = integer(body.get("clients"), "clients", maximum=16, default=1)
        policy = body.get("searchPolicy")
        mode = body.get("consentMode")
        try:
            search_policy = SEARCH_POLICIES[policy] if policy is not None else SearchPolicy.exact_handle
            consent_mode = ConsentMode(mode) if mode is not None else None
        except (KeyError, ValueError) as exc:
            raise ControlError.bad_request(f"searchPolicy or consentMode: {exc}") from None
        if self.state.user_status(user) == "active":
            raise ControlError.already_exists(f"user {user} exists")
        try:
            created = self.state.provision_user(
                user,
                clients=count,
                profile=profile_of(body.get("profile"), name),
                search_policy=search_policy,
                consent_mode=consent_mode,
            )
        except ValueError as exc:
            raise ControlError.unsupported_value(str(exc)) from None
        for client in created.clients:
            self.provider.provision_client_keys(client)
        contract_policy = {v: k for k, v in SEARCH_POLICIES.items()}[search_policy]
        out: dict[str, Any] = {"user": user, "clients": list(created.clients), "searchPolicy": contract_policy}
        if consent_mode is not None:
            out["consentMode"] = str(consent_mode)
        return out

    async def deleteUser(self, user: str) -> dict[str, Any]:
        self._local_user(user)
        clients = self.state.clients_of(user)
        self.state.delete_user(user)
        for client in clients:
            self.provider.forget_client(client)
        return {"deleted": user}

    async def addClient(self, user: str, body: Any) -> dict[str, Any]:
        self._local_user(user)
        body = closed(body or {}, "addClient", {"client", "joinRooms"})
        parsed = parse_uri(user, UriKind.user, "user")
        name = local_name(body.get("client") or f"c{len(self.state.clients_of(user)) + 1}", "client")
        client = MimiUri.for_client(parsed.domain, name, user=parsed.user).format()
        if self.state.user_of(client) is not None:
            raise ControlError.already_exists(f"client {client} exists")
        join_rooms = body.get("joinRooms", True)
        if not isinstance(join_rooms, bool):
            raise ControlError.bad_request("joinRooms: expected a boolean")
        rooms = sorted(
            {room for (room, other) in self.provider.members if self.state.user_of(other) == user
             and self.provider.active_member(room, other)}
        )
        self.state.add_client(user, client)
        self.provider.provision_client_keys(client)
        outcomes = []
        if self.overrides.departs(NEW_DEVICE_JOINS_ROOMS):
            join_rooms = False
        for room in rooms if join_rooms else []:  # external commit after groupInfo, one room at a time
            call, member, reason = await self.provider.join_external(room, client)
            if member is not None:
                outcomes.append({"room": room, "outcome": "accepted", "epoch": member.epoch,
                                 "acceptedAt": call.update.accepted_timestamp})
            else:
                code = call.update.responseCode.name if call.update is not None else None
                outcomes.append({"room": room, "outcome": "rejectedByHub", "hubResponse": hub_response(call, code, reason)})
        return {"user": user, "client": client, "rooms": outcomes}

    async def deleteClient(self, client: str) -> dict[str, Any]:
        self._local_client(client)
        self.state.delete_client(client)
        self.provider.forget_client(client)
        return {"deleted": client}

    async def publishKeyPackages(self, client: str, body: Any) -> dict[str, Any]:
        self._local_client(client)
        body = closed(body, "publishKeyPackages", {"count", "lastResort", "lifetimeSeconds", "replace"}, {"count"})
        count = integer(body["count"], "count", maximum=1000)
        lifetime = body.get("lifetimeSeconds")
        if lifetime is not None:
            lifetime = integer(lifetime, "lifetimeSeconds", minimum=1, maximum=31_536_000)
        last_resort, replace = body.get("lastResort", True), body.get("replace", False)
        if not isinstance(last_resort, bool) or not isinstance(replace, bool):
            raise ControlError.bad_request("lastResort and replace are booleans")
        published, available, has_last_resort = self.provider.publish_key_packages(
            client, count, last_resort=last_resort, lifetime_seconds=lifetime, replace=replace
        )
        return {"client": client, "published": published, "available": available, "lastResort": has_last_resort}

    # -- rooms --------------------------------------------------------------------------------------

    async def createRoom(self, body: Any) -> dict[str, Any]:
        body = closed(body, "createRoom", {"creator", "room", "name", "creatorRole", "policy"}, {"creator"})
        policy = (policy_from_json(body["policy"], default_policy(), hosts=self._hosts_as_hub,
                                   overrides=self.overrides) if "policy" in body
                  else default_policy())
        raw = body.get("room") or fresh_name("room-")
        if isinstance(raw, str) and raw.startswith("mimi://"):
            parsed = parse_uri(raw, UriKind.room, "room")
            if not self.provider.is_local_domain(parsed.domain):
                raise ControlError.not_local(f"{raw} is not a room of {self.provider.domain}")
            room = raw
        else:
            room = f"mimi://{self.provider.domain}/r/{local_name(raw, 'room')}"
        if room in self.provider.known_rooms():
            raise ControlError.already_exists(f"room {room} exists")
        creator = body["creator"]
        parsed = parse_uri(creator, None, "creator")
        if not self.provider.is_local_domain(parsed.domain):
            raise ControlError.not_local(f"creator {creator} is not local")
        client = (
            self._local_client(creator, "creator")
            if parsed.kind is UriKind.client
            else next(iter(self.state.clients_of(self._local_user(creator, "creator"))), None)
        )
        if client is None:
            raise ControlError.conflict(f"{creator} has no client to create the room with")
        role = integer(body.get("creatorRole"), "creatorRole", default=ROLE_ADMIN)
        member = self.provider.new_member(room, client)
        parent = parent_of(body.get("policy") or {})
        if parent is not None and self.provider.hub_rooms[parent].roles().get(member.user_uri.encode(), 0) in (0, 1):
            raise ControlError.not_permitted(f"{creator} is not a participant of the parent room {parent} "
                                            "(POLICY-BASE-PARENT-STRICT-SUBSET)")
        extra = {}
        if self.provider.transfers is not None and not self.overrides.departs(HUB_COMPONENT_AT_CREATION):
            # EXT-HUBXFER-COMPONENT-AT-CREATION
            extra[MIMI_HUB_COMPONENT_ID] = initial_hub_data(room, f"mimi://{self.provider.domain}").encode()
        try:
            member.create_group(
                room_extensions(self.provider.identity.external_sender, member.user_uri.encode(), role, policy,
                                extra_components=extra)
            )
            hub_room = HubRoom.from_group(room, self.provider.identity, member.group, overrides=self.overrides)
        except (MLSError, ValueError) as exc:
            raise ControlError.unsupported_value(f"cannot create the room: {exc}") from None
        hub_room.parent_room = parent  # room-policy-04 §5: the hub's record of the parent (None: not dependent)
        with self.state.store.transaction():
            self.provider.host_room(room, hub_room)
            self.provider.save_member(room, client, member)
        return await self.getRoom(room)

    def _hosts_as_hub(self, room: str) -> bool:
        hosted = self.provider.hub_rooms.get(room)
        return hosted is not None and hosted.moved is None

    async def listRooms(self, user: str | None = None) -> dict[str, Any]:
        rooms = sorted(self.provider.known_rooms())
        if user is not None:
            clients = set(self.state.clients_of(self._local_user(user)))
            rooms = [r for r in rooms if any(self.provider.active_member(r, c) for c in clients)]
        out = []
        for room in rooms:
            view = self._room_view(room)
            out.append(
                {
                    "room": room,
                    "hubDomain": self.provider.hub_of(room),
                    "hostedHere": room in self.provider.hub_rooms,
                    "epoch": view["epoch"],
                    "participantCount": len(view["participants"]),
                }
            )
        return {"rooms": out}

    def _room_view(self, room: str) -> dict[str, Any]:
        hub_room = self.provider.hub_rooms.get(room)
        if hub_room is not None:
            group, plist = hub_room.view, hub_room.participant_list()
        else:
            member = next(
                (m for (r, c), m in self.provider.members.items() if r == room and self.provider.active_member(r, c)),
                None,
            )
            if member is None:
                return {"epoch": 0, "participants": [], "externalSenders": [], "groupId": None, "policy": {}}
            group, plist = member.group, member.participant_list()
        return room_view(group, plist, self.overrides)

    async def getRoom(self, room: str) -> dict[str, Any]:
        self._room(room)
        view = self._room_view(room)
        hosted = self.provider.hub_rooms.get(room)
        out = {
            "room": room,
            "hubDomain": self.provider.hub_of(room),
            "hostedHere": hosted is not None and hosted.moved is None,
            "epoch": view["epoch"],
            "participants": view["participants"],
            "externalSenders": view["externalSenders"],
            "policy": view["policy"],
        }
        if view["groupId"] is not None:
            out["groupId"] = view["groupId"]
        if self.provider.transfers is not None:
            out.update(self._hub_fields(room))
        return out

    def _hub_fields(self, room: str) -> dict[str, Any]:
        """getRoom's hubGeneration and hubState (hub-transfer extension section 17)."""
        hosted = self.provider.hub_rooms.get(room)
        data = hosted.hub_data() if hosted is not None and hosted.moved is None else self.provider.room_hub_data(room)
        if data is None:
            return {"hubGeneration": 0, "hubState": {"state": "stable"}}
        state: dict[str, Any] = {"state": data.state.name}
        if data.state.name == "transferring":
            state["target"] = domain_of_uri(bytes(data.target.uri))
        return {"hubGeneration": data.generation, "hubState": state}

    async def _start_hub_transfer(self, room: str, body: Any) -> dict[str, Any]:
        """startHubTransfer: the actor's client signs a HubTransferRequest (section 5.1); processed here
        as hub, sent to the hub-of-record's hubTransfer endpoint as follower."""
        from ..wire.hub_transfer import HubTransferCode, HubTransferResponse

        self._room(room)
        body = closed(body, "startHubTransfer", {"actor", "newHub"}, {"actor", "newHub"})
        new_hub = body["newHub"]
        if not isinstance(new_hub, str) or not new_hub:
            raise ControlError.bad_request("newHub: expected a domain")
        _, member = self._actor(room, body["actor"])
        transfers = self.provider.transfers
        message = transfers.make_request(room, member, new_hub.lower())
        hub = self.provider.hub_of(room)
        if self.overrides.departs(TRANSFER_REQUEST_TO_HUB) and not self.provider.is_local_domain(hub):
            hub = new_hub.lower()  # the request goes to the proposed new hub, not the hub-of-record
        if self.provider.is_local_domain(hub):
            answer = await transfers.process_request(room, message.request, self.provider.domain)
        else:
            try:
                reply = await self.provider._call(self.provider.authority(hub), "hubTransfer", room, message.encode())
            except Exception as exc:  # noqa: BLE001 - the hub could not be reached: a remote "no"
                return {"room": room, "outcome": "rejected", "detail": f"the hub could not be reached: {exc}"}
            try:
                answer = HubTransferResponse.decode(reply.body) if reply.status == 200 else None
            except (DecodeError, EncodeError):
                answer = None
            if answer is None:
                return {"room": room, "outcome": "rejected", "detail": f"the hub answered HTTP {reply.status}"}
        out: dict[str, Any] = {
            "room": room,
            "outcome": "started" if answer.code == HubTransferCode.accepted else "rejected",
            "code": answer.code.name,
        }
        if answer.code == HubTransferCode.accepted:
            out["transferId"] = bytes(answer.transfer_id).hex()
        detail = bytes(answer.error_description).decode("utf-8", "replace")
        if detail:
            out["detail"] = detail
        return out

    async def addParticipant(self, room: str, body: Any) -> dict[str, Any]:
        self._room(room)
        body = closed(body, "addParticipant", {"actor", "user", "role", "withoutClients"}, {"actor", "user"})
        target_parsed = parse_uri(body["user"], UriKind.user, "user")
        target = target_parsed.format()
        role = integer(body.get("role"), "role", default=ROLE_MEMBER)
        without_clients = body.get("withoutClients", False)
        if not isinstance(without_clients, bool):
            raise ControlError.bad_request("withoutClients: expected a boolean")
        client, member = self._actor(room, body["actor"])
        if target.encode() in {bytes(p.user) for p in member.participant_list().participants if p.role_index > 0}:
            raise ControlError.conflict(f"{target} is already a participant of {room}")
        if without_clients:  # experimental: the participant-list entry only, no key material, no Add
            return await self._commit(room, client, lambda m: m.add_users([], [(target.encode(), role)]))
        status, answer = await self.provider.obtain_key_material(member, room, target)
        key_material, key_packages = key_material_of(status, answer)
        if not key_packages:
            return {"room": room, "outcome": "noKeyMaterial", "keyMaterial": key_material}
        result = await self._commit(room, client, lambda m: m.add_users(key_packages, [(target.encode(), role)]))
        result["keyMaterial"] = key_material
        return result

    async def removeParticipant(self, room: str, user: str, actor: str, mode: str | None = None) -> dict[str, Any]:
        self._room(room)
        target = parse_uri(user, UriKind.user, "user").format().encode()
        client, member = self._actor(room, actor)
        mode = mode or "remove"
        listed = {bytes(p.user) for p in member.participant_list().participants}
        if target not in listed and not member.leaves_of_user(target):
            raise ControlError.conflict(f"{user} is not a participant of {room}")
        if mode == "remove":
            return await self._commit(room, client, lambda m: remove_user(m, target))
        if mode == "ban" and self.overrides.departs(BAN_MOVES_TO_BANNED_ROLE):
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

    async def unbanParticipant(self, room: str, body: Any) -> dict[str, Any]:
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

    async def removeClientFromRoom(self, room: str, client: str, body: Any = None) -> dict[str, Any]:
        self._room(room)
        body = closed(body or {}, "removeClientFromRoom", {"actor"})
        self._local_client(client)
        leaving = self.provider.active_member(room, client)
        if leaving is None:
            raise ControlError.conflict(f"{client} is not a member of {room}")
        actor = body.get("actor")
        if actor is None:  # the client removes itself: a SelfRemove proposal for the next committer
            return await self._commit(room, client, lambda m: m.proposals_request([self_remove_proposal()]))
        actor_client, actor_member = self._actor(room, actor)
        if self.state.user_of(actor_client) != self.state.user_of(client) or actor_client == client:
            raise ControlError.conflict(f"{actor} is not another client of the same user as {client}")
        return await self._commit(
            room, actor_client, lambda m: m.commit([remove_proposal(m.leaf_of(leaving))])
        )

    async def leaveRoom(self, room: str, body: Any) -> dict[str, Any]:
        self._room(room)
        body = closed(body, "leaveRoom", {"actor"}, {"actor"})
        client, _ = self._actor(room, body["actor"])
        # Proposals only: the user stays a member until the next commit includes them (§3.5).
        return await self._commit(room, client, lambda m: m.self_leave_request())

    async def joinRoom(self, room: str, body: Any) -> dict[str, Any]:
        """joinRoom (experimental): a local client joins by external commit; a room this provider holds no
        state for is located from its ID (hub-transfer §13: the authority, then HubRedirects)."""
        parse_uri(room, UriKind.room, "room")
        body = closed(body, "joinRoom", {"client"}, {"client"})
        client = self._local_client(body["client"])
        if self.provider.active_member(room, client) is not None:
            raise ControlError.conflict(f"{client} is already a member of {room}")
        call, member, reason = await self.provider.join_external(room, client)
        if member is not None:
            return {"room": room, "outcome": "accepted", "epoch": member.epoch,
                    "acceptedAt": call.update.accepted_timestamp}
        code = call.update.responseCode.name if call.update is not None else None
        return {"room": room, "outcome": "rejectedByHub", "hubResponse": hub_response(call, code, reason)}

    # -- messaging ----------------------------------------------------------------------------------

    async def sendMessage(self, room: str, body: Any) -> dict[str, Any]:
        self._room(room)
        body = closed(body, "sendMessage", {"from", "content"}, {"from", "content"})
        client = self._local_client(body["from"], "from")
        member = self.provider.active_member(room, client)
        if member is None:
            raise ControlError.conflict(f"{client} is not a member of {room}")
        data = message_content(body["content"])
        return await submit_with_catch_up(room, client, member, data, member_of=self.provider.active_member,
                                          save=self.provider.save_member, send=self.provider.send_submit)

    async def listReceivedMessages(
        self, client: str, room: str | None = None, after: str | None = None, limit: str | int | None = None
    ) -> dict[str, Any]:
        self._local_client(client)
        start = cursor(after)
        count = integer(limit, "limit", minimum=1, maximum=1000, default=100)
        rows = self.provider.peer_store.received(client, room_id=room, after=start, limit=count)
        items = [
            received_item(row.room_id, row.sender, user_of_credential_uri(row.sender, self.overrides), row.epoch,
                          row.data, row.received_at)
            for row in rows
        ]
        return {"items": items, "next": str(rows[-1].seq if rows else start)}

    async def listUserEvents(self, user: str, after: str | None = None, limit: int | None = None) -> dict[str, Any]:
        self._local_user(user)
        start = cursor(after)
        events = self.state.list_events(user)
        items: list[dict[str, Any]] = []
        for req in events.pending_requests:
            items.append({"type": "consentRequested", "requester": req.requester, "room": req.room})
        for held in events.held_rooms:
            items.append({"type": "roomHeld", "room": held.room, "requester": held.requester})
        notice_types = {"grant": "consentGranted", "revoke": "consentRevoked"}
        for notice in events.consent_notices:
            if notice.operation in notice_types:
                items.append({"type": notice_types[notice.operation], "target": notice.target, "room": notice.room})
        items = [{k: v for k, v in item.items() if v is not None} for item in items]
        # The events are a snapshot rebuilt on each read: the cursor is a position in it.
        count = integer(limit, "limit", minimum=1, maximum=1000, default=100)
        page = items[start : start + count]
        return {"items": page, "next": str(start + len(page))}

    # -- consent ------------------------------------------------------------------------------------

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

    async def getConsentState(self, user: str) -> dict[str, Any]:
        """The user's decisions as target (granted / revoked) and the requests still undecided (pending)."""
        self._local_user(user)
        conn = self.state.store.conn
        decided = {
            (requester, room): "granted" if decision == "grant" else "revoked"
            for requester, room, decision in conn.execute(
                "SELECT requester, room_id, decision FROM consent_decisions WHERE target = ? ORDER BY seq", (user,)
            )
        }
        pending = [
            (requester, room)
            for requester, room in conn.execute(
                "SELECT requester, room_id FROM consent_requests WHERE target = ? ORDER BY seq", (user,)
            )
            if (requester, room) not in decided
        ]
        entries = []
        for (requester, room), state in [*decided.items(), *[(key, "pending") for key in pending]]:
            entry = {"requester": requester, "target": user, "state": state}
            if room:
                entry["room"] = room
            entries.append(entry)
        return {"user": user, "entries": entries}

    async def grantConsent(self, user: str, body: Any) -> dict[str, Any]:
        self._local_user(user)
        requester, room = self._consent_body(body, "grantConsent", "requester")
        change = self.state.grant_consent(user, requester, room)
        # Released quarantined items are now in the clients' inboxes: let the clients process them.
        self.provider.pump({c for item in change.released for c in item.clients})
        return self._consent_result(requester, user, room, "grant")

    async def revokeConsent(self, user: str, body: Any) -> dict[str, Any]:
        self._local_user(user)
        requester, room = self._consent_body(body, "revokeConsent", "requester")
        change = self.state.revoke_consent(user, requester, room)
        self.provider.pump({c for item in change.released for c in item.clients})  # empty unless a fault is on
        return self._consent_result(requester, user, room, "revoke")

    async def requestConsent(self, user: str, body: Any) -> dict[str, Any]:
        self._local_user(user)
        target, room = self._consent_body(body, "requestConsent", "target")
        try:
            self.state.request_consent(user, target, room)
        except ConsentDomainError as exc:
            raise ControlError.unsupported_value(str(exc)) from None
        return self._consent_result(user, target, room, "request")

    async def cancelConsentRequest(self, user: str, body: Any) -> dict[str, Any]:
        self._local_user(user)
        target, room = self._consent_body(body, "cancelConsentRequest", "target")
        try:
            self.state.request_consent(user, target, room, cancel=True)
        except ConsentDomainError as exc:
            raise ControlError.unsupported_value(str(exc)) from None
        return self._consent_result(user, target, room, "cancel")


def user_of_credential_uri(client_uri: str, overrides: Overrides) -> str | None:
    user = user_of_uri(client_uri, overrides)
    return None if user is None else user.decode()


__all__ = ["IMPLEMENTED", "ReferenceBackend"]
