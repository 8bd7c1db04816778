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

import asyncio
import base64
import binascii
import datetime
import time
from typing import Any

from ..mls import MLSError, remove_proposal, self_remove_proposal
from ..overrides import Overrides, step
from ..peer import fresh_name
from ..provider.consent import ConsentDomainError, ConsentMode
from ..provider.directory_search import Profile, SearchPolicy
from ..room import ROLE_ADMIN, ROLE_MEMBER, HubRoom, SimulatedClient, default_policy, room_extensions
from ..room.hub import HOSTED_ROOMS
from ..room.naming import domain_of_uri, user_of_credential, user_of_uri
from ..room.policy import PolicyError, RoomPolicy
from ..wire.codec import DecodeError, EncodeError
from ..wire.hub_transfer import MIMI_HUB_COMPONENT_ID, initial_hub_data
from ..wire.identity import MimiUri, MimiUriError, UriKind
from ..wire.mimi import KeyMaterialResponse, SubmitResponseCode, UpdateResponseCode
from ..wire.room_policy import ROLE_INDEX_BANNED
from . import CONTRACT_VERSION
from .errors import ControlError
from .policy_json import parent_of, policy_from_json, policy_to_json

# The contract's SearchPolicy names -> the provider's.
SEARCH_POLICIES = {
    "searchable": SearchPolicy.searchable,
    "exactHandle": SearchPolicy.exact_handle,
    "hidden": SearchPolicy.hidden,
}
UPDATE_ATTEMPTS = 4
CATCH_UP_SECONDS = 5.0

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


def _closed(body: Any, where: str, allowed: set[str], required: set[str] = frozenset()) -> dict[str, Any]:
    """Request bodies are closed (contract: unknown members are a 400)."""
    if not isinstance(body, dict):
        raise ControlError.bad_request(f"{where}: the body must be a JSON object")
    unknown = set(body) - allowed
    if unknown:
        raise ControlError.bad_request(f"{where}: unknown member(s) {sorted(unknown)}")
    missing = required - set(body)
    if missing:
        raise ControlError.bad_request(f"{where}: missing member(s) {sorted(missing)}")
    return body


def _parse(uri: Any, kind: UriKind | None, what: str) -> MimiUri:
    if not isinstance(uri, str):
        raise ControlError.bad_request(f"{what}: expected a mimi URI string")
    try:
        parsed = MimiUri.parse(uri)
    except MimiUriError as exc:
        raise ControlError.bad_request(f"{what}: {exc}") from None
    if kind is not None and parsed.kind is not kind:
        raise ControlError.bad_request(f"{what}: {uri!r} is not a {kind.name} URI")
    return parsed


def _profile(value: Any, name: str) -> Profile:
    """createUser ``profile`` (contract Profile) -> the provider's; the local name is always a handle."""
    if value is None:
        return Profile(handles=(name,))
    if not isinstance(value, dict) or set(value) - {"handles", "nicks", "emails", "phones", "names", "oidcClaims", "vcard"}:
        raise ControlError.bad_request("profile: expected an object of handles, nicks, emails, phones, names, oidcClaims, vcard")

    def strings(key: str) -> tuple[str, ...]:
        items = value.get(key) or []
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            raise ControlError.bad_request(f"profile.{key}: expected a list of non-empty strings")
        return tuple(items)

    def mapping(key: str) -> dict[str, str]:
        items = value.get(key) or {}
        if not isinstance(items, dict) or not all(isinstance(v, str) for v in items.values()):
            raise ControlError.bad_request(f"profile.{key}: expected an object of strings")
        return dict(items)

    handles = strings("handles")
    return Profile(
        handles=handles if name in handles else (name, *handles), nicks=strings("nicks"), emails=strings("emails"),
        phones=strings("phones"), names=mapping("names"), oidc_claims=mapping("oidcClaims"), vcard=mapping("vcard"),
    )


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 64 or not all(c.isalnum() or c in "._~-" for c in value):
        raise ControlError.bad_request(f"{what}: not a local name: {value!r}")
    return value


def _int(value: Any, what: str, *, minimum: int = 0, maximum: int = 2**32 - 1, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ControlError.bad_request(f"{what}: expected an integer in [{minimum}, {maximum}], got {value!r}")
    return value


def _hub_response(call, code_name: str | None = None, detail: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"httpStatus": call.http_status or 502}
    if code_name:
        out["code"] = code_name
    if detail or call.error:
        out["detail"] = detail or call.error
    return out


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
        parsed = _parse(uri, UriKind.user, what)
        if not self.provider.is_local_domain(parsed.domain):
            raise ControlError.not_local(f"{uri} is not a user of {self.provider.domain}")
        if self.state.user_status(uri) != "active":
            raise ControlError.not_found(f"no user {uri}")
        return uri

    def _local_client(self, uri: Any, what: str = "client") -> str:
        parsed = _parse(uri, UriKind.client, what)
        if not self.provider.is_local_domain(parsed.domain):
            raise ControlError.not_local(f"{uri} is not a client of {self.provider.domain}")
        if self.state.user_of(uri) is None or uri not in self.provider.client_keys:
            raise ControlError.not_found(f"no client {uri}")
        return uri

    def _room(self, room: Any) -> str:
        _parse(room, UriKind.room, "room")
        if room not in self.provider.known_rooms():
            raise ControlError.not_found(f"{self.provider.domain} knows no room {room}")
        return room

    def _actor(self, room: str, actor: Any) -> tuple[str, SimulatedClient]:
        """The acting client: the named client, or any client of the named user, active in ``room``."""
        parsed = _parse(actor, None, "actor")
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

    async def _catch_up(self, room: str, client: str, epoch: int) -> SimulatedClient | None:
        """Wait (bounded) until the client has processed the fan-out up to ``epoch`` (the hub said
        wrongEpoch: the commits it missed are on their way)."""
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while time.monotonic() < deadline:
            member = self.provider.active_member(room, client)
            if member is None or (member.epoch or 0) >= epoch:
                return member
            await asyncio.sleep(0.02)
        return self.provider.active_member(room, client)

    async def _update(self, room: str, client: str, build) -> tuple[Any, Any, SimulatedClient | None]:
        """Send what ``build(member)`` makes (an OutgoingCommit, or an UpdateRequest body for proposals)
        to the hub; after wrongEpoch, catch up and rebuild (the contract lets a SUT retry internally)."""
        for _ in range(UPDATE_ATTEMPTS):
            member = self.provider.active_member(room, client)
            if member is None:
                raise ControlError.conflict(f"{client} is no longer a member of {room}")
            try:
                outgoing = build(member)
            except MLSError as exc:
                raise ControlError.not_permitted(f"the client cannot build this change: {exc}") from None
            is_commit = not isinstance(outgoing, bytes)
            call = await self.provider.send_update(room, outgoing.request if is_commit else outgoing)
            response = call.update
            accepted = response is not None and response.responseCode == UpdateResponseCode.success
            if is_commit and member._outgoing is not None:  # noqa: SLF001 - unless our echoed commit merged it
                if accepted:
                    member.commit_accepted()
                else:
                    member.commit_refused()
            self.provider.save_member(room, client, member)
            if response is None or response.responseCode != UpdateResponseCode.wrongEpoch:
                return call, response, member
            await self._catch_up(room, client, response.currentEpoch)
        return call, response, member

    async def _commit(self, room: str, client: str, build) -> dict[str, Any]:
        call, response, member = await self._update(room, client, build)
        if response is not None and response.responseCode == UpdateResponseCode.success:
            return {
                "room": room,
                "outcome": "accepted",
                "epoch": member.epoch,
                "acceptedAt": response.accepted_timestamp,
            }
        code = response.responseCode.name if response is not None else None
        detail = response.errorDescription if response is not None else ""
        return {"room": room, "outcome": "rejectedByHub", "hubResponse": _hub_response(call, code, detail)}

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
        body = _closed(body, "createUser", {"user", "clients", "profile", "searchPolicy", "consentMode"})
        raw = body.get("user") or fresh_name("user-")
        if isinstance(raw, str) and raw.startswith("mimi://"):
            parsed = _parse(raw, UriKind.user, "user")
            if not self.provider.is_local_domain(parsed.domain):
                raise ControlError.not_local(f"{raw} is not in {self.provider.domain}")
            name = parsed.user or ""
        else:
            name = _name(raw, "user")
        user = MimiUri.for_user(self.provider.domain, name).format()
        count = _int(body.get("clients"), "clients", maximum=16, default=1)
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
                profile=_profile(body.get("profile"), name),
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
        body = _closed(body or {}, "addClient", {"client", "joinRooms"})
        parsed = _parse(user, UriKind.user, "user")
        name = _name(body.get("client") or f"c{len(self.state.clients_of(user)) + 1}", "client")
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
                outcomes.append({"room": room, "outcome": "rejectedByHub", "hubResponse": _hub_response(call, code, reason)})
        return {"user": user, "client": client, "rooms": outcomes}

    async def deleteClient(self, client: str) -> dict[str, Any]:
        self._local_client(client)
        self.state.delete_client(client)
        self.provider.forget_client(client)
        return {"deleted": client}

    async def publishKeyPackages(self, client: str, body: Any) -> dict[str, Any]:
        self._local_client(client)
        body = _closed(body, "publishKeyPackages", {"count", "lastResort", "lifetimeSeconds", "replace"}, {"count"})
        count = _int(body["count"], "count", maximum=1000)
        lifetime = body.get("lifetimeSeconds")
        if lifetime is not None:
            lifetime = _int(lifetime, "lifetimeSeconds", minimum=1, maximum=31_536_000)
        last_resort, replace = body.get("lastResort", True), body.get("replace", False)
        if not isinstance(last_resort, bool) or not isinstance(replace, bool):
            raise ControlError.bad_request("lastResort and replace are booleans")
        published, available, has_last_resort = self.provider.publish_key_packages(
            client, count, last_resort=last_resort, lifetime_seconds=lifetime, replace=replace
        )
        return {"client": client, "published": published, "available": available, "lastResort": has_last_resort}

    # -- rooms --------------------------------------------------------------------------------------

    async def createRoom(self, body: Any) -> dict[str, Any]:
        body = _closed(body, "createRoom", {"creator", "room", "name", "creatorRole", "policy"}, {"creator"})
        policy = (policy_from_json(body["policy"], default_policy(), hosts=self._hosts_as_hub,
                                   overrides=self.overrides) if "policy" in body
                  else default_policy())
        raw = body.get("room") or fresh_name("room-")
        if isinstance(raw, str) and raw.startswith("mimi://"):
            parsed = _parse(raw, UriKind.room, "room")
            if not self.provider.is_local_domain(parsed.domain):
                raise ControlError.not_local(f"{raw} is not a room of {self.provider.domain}")
            room = raw
        else:
            room = f"mimi://{self.provider.domain}/r/{_name(raw, 'room')}"
        if room in self.provider.known_rooms():
            raise ControlError.already_exists(f"room {room} exists")
        creator = body["creator"]
        parsed = _parse(creator, None, "creator")
        if not self.provider.is_local_domain(parsed.domain):
            raise ControlError.not_local(f"creator {creator} is not local")
        client = (
            self._local_client(creator, "creator")
            if parsed.kind is UriKind.client
            else next(iter(self.state.clients_of(self._local_user(creator, "creator"))), None)
        )
        if client is None:
            raise ControlError.conflict(f"{creator} has no client to create the room with")
        role = _int(body.get("creatorRole"), "creatorRole", default=ROLE_ADMIN)
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
        clients_by_user: dict[bytes, list[str]] = {}
        for _, leaf in group.members():
            user = user_of_credential(leaf.credential, self.overrides)
            if user is not None:
                clients_by_user.setdefault(user, []).append(bytes(leaf.credential.identity).decode())
        participants = [
            {"user": bytes(p.user).decode(), "role": p.role_index, "clients": clients_by_user.get(bytes(p.user), [])}
            for p in plist.participants
        ]
        senders = [domain_of_uri(bytes(s.credential.identity or b"")) for s in group.external_senders()]
        try:
            policy = policy_to_json(RoomPolicy.from_components(group.app_data()))
        except PolicyError:  # a room created elsewhere without room-policy components
            policy = {}
        return {
            "policy": policy,
            "epoch": group.epoch,
            "groupId": base64.b64encode(bytes(group.group_id)).decode(),
            "participants": participants,
            "externalSenders": [s for s in senders if s],
        }

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
        body = _closed(body, "startHubTransfer", {"actor", "newHub"}, {"actor", "newHub"})
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
        body = _closed(body, "addParticipant", {"actor", "user", "role", "withoutClients"}, {"actor", "user"})
        target_parsed = _parse(body["user"], UriKind.user, "user")
        target = target_parsed.format()
        role = _int(body.get("role"), "role", default=ROLE_MEMBER)
        without_clients = body.get("withoutClients", False)
        if not isinstance(without_clients, bool):
            raise ControlError.bad_request("withoutClients: expected a boolean")
        client, member = self._actor(room, body["actor"])
        if target.encode() in {bytes(p.user) for p in member.participant_list().participants if p.role_index > 0}:
            raise ControlError.conflict(f"{target} is already a participant of {room}")
        if without_clients:  # experimental: the participant-list entry only, no key material, no Add
            return await self._commit(room, client, lambda m: m.add_users([], [(target.encode(), role)]))
        status, answer = await self.provider.obtain_key_material(member, room, target)
        key_material: dict[str, Any] = {"userStatus": "unavailable", "clients": []}
        key_packages = []
        if status == 200:
            try:
                response = KeyMaterialResponse.decode(answer)
            except (DecodeError, EncodeError):
                response = None
            if response is not None:
                key_material = {
                    "userStatus": response.userStatus.name,
                    "clients": [
                        {"client": bytes(c.clientUri.uri).decode(), "status": c.clientStatus.name}
                        for c in response.clients
                    ],
                }
                key_packages = [c.keyPackage for c in response.clients if c.keyPackage is not None]
        if not key_packages:
            return {"room": room, "outcome": "noKeyMaterial", "keyMaterial": key_material}
        result = await self._commit(room, client, lambda m: m.add_users(key_packages, [(target.encode(), role)]))
        result["keyMaterial"] = key_material
        return result

    async def removeParticipant(self, room: str, user: str, actor: str, mode: str | None = None) -> dict[str, Any]:
        self._room(room)
        target = _parse(user, UriKind.user, "user").format().encode()
        client, member = self._actor(room, actor)
        mode = mode or "remove"
        listed = {bytes(p.user) for p in member.participant_list().participants}
        if target not in listed and not member.leaves_of_user(target):
            raise ControlError.conflict(f"{user} is not a participant of {room}")
        if mode == "remove":
            return await self._commit(room, client, lambda m: _remove_user(m, target))
        if mode == "ban" and self.overrides.departs(BAN_MOVES_TO_BANNED_ROLE):
            return await self._commit(room, client, lambda m: _remove_user(m, target))
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
        body = _closed(body, "unbanParticipant", {"actor", "user", "role"}, {"actor", "user", "role"})
        target = _parse(body["user"], None, "user").format().encode()
        role = _int(body["role"], "role")
        client, member = self._actor(room, body["actor"])
        roles = {bytes(p.user): p.role_index for p in member.participant_list().participants}
        if roles.get(target) != ROLE_INDEX_BANNED:
            raise ControlError.conflict(f"{body['user']} is not banned in {room}")
        if role == 0:  # off the participant list: a removal (removedIndices), not a role change
            return await self._commit(room, client, lambda m: m.remove_user(target))
        return await self._commit(room, client, lambda m: m.change_role(target, role))

    async def removeClientFromRoom(self, room: str, client: str, body: Any = None) -> dict[str, Any]:
        self._room(room)
        body = _closed(body or {}, "removeClientFromRoom", {"actor"})
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
        body = _closed(body, "leaveRoom", {"actor"}, {"actor"})
        client, _ = self._actor(room, body["actor"])
        # Proposals only: the user stays a member until the next commit includes them (§3.5).
        return await self._commit(room, client, lambda m: m.self_leave_request())

    async def joinRoom(self, room: str, body: Any) -> dict[str, Any]:
        """joinRoom (experimental): a local client joins by external commit; a room this provider holds no
        state for is located from its ID (hub-transfer §13: the authority, then HubRedirects)."""
        _parse(room, UriKind.room, "room")
        body = _closed(body, "joinRoom", {"client"}, {"client"})
        client = self._local_client(body["client"])
        if self.provider.active_member(room, client) is not None:
            raise ControlError.conflict(f"{client} is already a member of {room}")
        call, member, reason = await self.provider.join_external(room, client)
        if member is not None:
            return {"room": room, "outcome": "accepted", "epoch": member.epoch,
                    "acceptedAt": call.update.accepted_timestamp}
        code = call.update.responseCode.name if call.update is not None else None
        return {"room": room, "outcome": "rejectedByHub", "hubResponse": _hub_response(call, code, reason)}

    # -- messaging ----------------------------------------------------------------------------------

    async def sendMessage(self, room: str, body: Any) -> dict[str, Any]:
        self._room(room)
        body = _closed(body, "sendMessage", {"from", "content"}, {"from", "content"})
        client = self._local_client(body["from"], "from")
        member = self.provider.active_member(room, client)
        if member is None:
            raise ControlError.conflict(f"{client} is not a member of {room}")
        content = body["content"]
        if not isinstance(content, dict) or len(content) != 1 or not ({"base64", "text"} & set(content)):
            raise ControlError.bad_request("content: exactly one of base64 or text")
        if "text" in content:
            if not isinstance(content["text"], str):
                raise ControlError.bad_request("content.text: expected a string")
            data = content["text"].encode("utf-8")
        else:
            try:
                data = base64.b64decode(content["base64"], validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise ControlError.bad_request("content.base64: not base64") from None
        for _ in range(UPDATE_ATTEMPTS):
            epoch = member.epoch
            request = member.send(data)
            self.provider.save_member(room, client, member)
            call = await self.provider.send_submit(room, request)
            response = call.submit
            if response is not None and response.statusCode == SubmitResponseCode.epochTooOld:
                member = await self._catch_up(room, client, response.currentEpoch)
                if member is not None:
                    continue
            break
        if response is not None and response.statusCode == SubmitResponseCode.accepted:
            return {"room": room, "outcome": "accepted", "epoch": epoch, "acceptedAt": response.accepted_timestamp}
        code = response.statusCode.name if response is not None else None
        return {"room": room, "outcome": "rejectedByHub", "epoch": epoch, "hubResponse": _hub_response(call, code)}

    async def listReceivedMessages(
        self, client: str, room: str | None = None, after: str | None = None, limit: str | int | None = None
    ) -> dict[str, Any]:
        self._local_client(client)
        if after is not None and not (isinstance(after, str) and after.isdigit()):
            raise ControlError.bad_request(f"after: not a cursor this SUT issued: {after!r}")
        start = int(after) if after is not None else 0
        count = _int(limit, "limit", minimum=1, maximum=1000, default=100)
        rows = self.provider.peer_store.received(client, room_id=room, after=start, limit=count)
        items = []
        for row in rows:
            item: dict[str, Any] = {
                "room": row.room_id,
                "sender": row.sender,
                "epoch": row.epoch,
                "content": {"base64": base64.b64encode(row.data).decode()},
                "receivedAt": _rfc3339(row.received_at),
            }
            sender_user = user_of_credential_uri(row.sender, self.overrides)
            if sender_user:
                item["senderUser"] = sender_user
            try:
                item["content"]["text"] = row.data.decode("utf-8")
            except UnicodeDecodeError:
                pass
            items.append(item)
        return {"items": items, "next": str(rows[-1].seq if rows else start)}

    async def listUserEvents(self, user: str, after: str | None = None, limit: int | None = None) -> dict[str, Any]:
        self._local_user(user)
        if after is not None and not (isinstance(after, str) and after.isdigit()):
            raise ControlError.bad_request(f"after: not a cursor this SUT issued: {after!r}")
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
        start = int(after) if after is not None else 0
        count = _int(limit, "limit", minimum=1, maximum=1000, default=100)
        page = items[start : start + count]
        return {"items": page, "next": str(start + len(page))}

    # -- consent ------------------------------------------------------------------------------------

    def _consent_body(self, body: Any, where: str, party: str) -> tuple[str, str | None]:
        body = _closed(body, where, {party, "room"}, {party})
        other = body[party]
        _parse(other, UriKind.user, party)
        room = body.get("room")
        if room is not None:
            _parse(room, UriKind.room, "room")
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


def _remove_user(member: SimulatedClient, user: bytes):
    """Remove ``user``; when the group's cached proposals already remove it (an accepted self-leave),
    the commit of those cached proposals is the removal."""
    try:
        return member.remove_user(user)
    except MLSError:
        if not member.group.proposal_cache:
            raise
        return member.commit()


def _rfc3339(milliseconds: int) -> str:
    return datetime.datetime.fromtimestamp(milliseconds / 1000, datetime.UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def user_of_credential_uri(client_uri: str, overrides: Overrides) -> str | None:
    user = user_of_uri(client_uri, overrides)
    return None if user is None else user.decode()


__all__ = ["IMPLEMENTED", "ReferenceBackend"]
