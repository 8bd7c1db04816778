"""The adapter kit's control API backend: every control operation the contract asks for, built on the
verbs of a vendor's :class:`~reference_peer.kit.transport.Transport` and the kit's own simulated MLS
clients (:class:`~reference_peer.kit.clients.KitClients`).

The HTTP layer is the reference peer's (``reference_peer.control.app.make_control_app``): one ``async``
method per operationId. An operation is offered (a method of the instance, listed in getInfo's
``supportedOperations``) only when the transport overrides every verb it needs (:data:`OPERATION_VERBS`);
otherwise the layer answers 501 and the suite makes the checks that need it NOT_APPLICABLE.

What the kit does and the vendor's server does not: KeyPackages (made here, uploaded with
``upload_key_packages``), commits and their Welcomes (sent with ``send_update``), application messages
(``submit_message``), processing what the server stored for each client (``fetch``, polled in the
background and right before a read), epochs and the wrongEpoch catch-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from ..control import CONTRACT_VERSION
from ..control.errors import ControlError
from ..mls import CryptoError, MLSError, basic_credential, cipher_suite, remove_proposal, self_remove_proposal
from ..mls.tree import RatchetTree
from ..peer import RoomCall, fresh_name, signed_key_material_request
from ..provider.consent import ConsentMode
from ..room import ROLE_ADMIN, ROLE_MEMBER, SimulatedClient, default_policy, open_group_info_response, room_extensions
from ..room.naming import domain_of_uri, user_of_uri
from ..room.transfer import hub_of_record
from ..wire.codec import DecodeError, EncodeError
from ..wire.identity import MimiUri, UriKind
from ..wire.mimi import GroupInfoCode, GroupInfoResponse, SubmitMessageResponse, UpdateResponseCode, UpdateRoomResponse
from ..wire.mls import ExternalSender, MLSMessage, WireFormat
from ..wire.room_policy import ROLE_INDEX_BANNED
from .clients import KitClients
from .contract import (
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
from .transport import ServerAnswer, Transport, implements

log = logging.getLogger(__name__)

KIT_PRODUCT = "mimi-conformance adapter kit"
KIT_VERSION = "1.0.0"  # conformance.adapterkit.KIT_VERSION: semantic versioning of the kit's public face
KEY_PACKAGES_PER_CLIENT = 8  # uploaded for every new client, as the reference peer does
POLL_SECONDS = 0.1

# The transport verbs each control operation needs (besides those the kit always has).
ROOM_VERBS = ("send_update", "fetch")
OPERATION_VERBS: dict[str, tuple[str, ...]] = {
    "getInfo": (),
    "createUser": ("register_user", "register_client", "upload_key_packages"),
    "deleteUser": ("delete_user",),
    "addClient": ("register_client", "upload_key_packages"),
    "deleteClient": ("delete_client",),
    "publishKeyPackages": ("upload_key_packages",),
    "createRoom": ("create_room", "hub_external_sender", "fetch"),
    "listRooms": ("fetch",),
    "getRoom": ("fetch",),
    "addParticipant": ("key_material", *ROOM_VERBS),
    "removeParticipant": ROOM_VERBS,
    "unbanParticipant": ROOM_VERBS,
    "leaveRoom": ROOM_VERBS,
    "joinRoom": ("group_info", *ROOM_VERBS),
    "removeClientFromRoom": ROOM_VERBS,
    "sendMessage": ("submit_message", "fetch"),
    "listReceivedMessages": ("fetch",),
    "listUserEvents": ("user_events",),
    "getConsentState": ("consent_state",),
    "grantConsent": ("grant_consent",),
    "revokeConsent": ("revoke_consent",),
    "requestConsent": ("request_consent",),
    "cancelConsentRequest": ("cancel_consent_request",),
}


def _room_call(answer: ServerAnswer, response_type, field: str) -> RoomCall:
    """A ServerAnswer as the contract layer reads a hub's answer: decoded, or refused with the status."""
    if answer.status != 200:
        detail = answer.detail or answer.body[:200].decode("utf-8", "replace")
        return RoomCall(answer.status, error=detail)
    try:
        return RoomCall(200, error=answer.detail, **{field: response_type.decode(answer.body)})
    except (DecodeError, EncodeError) as exc:
        return RoomCall(200, error=f"undecodable {response_type.__name__}: {exc}")


class _Operations:
    """The control operations; :class:`KitBackend` exposes those whose verbs the transport has."""

    transport: Transport
    clients: KitClients
    domain: str

    # -- helpers ------------------------------------------------------------------------------------

    def _local_user(self, uri: Any, what: str = "user") -> str:
        parsed = parse_uri(uri, UriKind.user, what)
        if parsed.domain != self.domain:
            raise ControlError.not_local(f"{uri} is not a user of {self.domain}")
        if uri not in self.clients.users:
            raise ControlError.not_found(f"no user {uri}")
        return uri

    def _local_client(self, uri: Any, what: str = "client") -> str:
        parsed = parse_uri(uri, UriKind.client, what)
        if parsed.domain != self.domain:
            raise ControlError.not_local(f"{uri} is not a client of {self.domain}")
        if uri not in self.clients.keys:
            raise ControlError.not_found(f"no client {uri}")
        return uri

    def _room(self, room: Any) -> str:
        parse_uri(room, UriKind.room, "room")
        if room not in self.clients.rooms():
            raise ControlError.not_found(f"{self.domain} knows no room {room}")
        return room

    def _actor(self, room: str, actor: Any) -> tuple[str, SimulatedClient]:
        """The acting client: the named client, or any client of the named user, active in ``room``."""
        parsed = parse_uri(actor, None, "actor")
        if parsed.domain != self.domain:
            raise ControlError.not_local(f"actor {actor} is not local")
        if parsed.kind is UriKind.client:
            candidates = [self._local_client(actor, "actor")]
        elif parsed.kind is UriKind.user:
            candidates = self.clients.clients_of(self._local_user(actor, "actor"))
        else:
            raise ControlError.bad_request(f"actor: {actor!r} is neither a user nor a client URI")
        for client in candidates:
            member = self.clients.active_member(room, client)
            if member is not None:
                return client, member
        raise ControlError.conflict(f"{actor} has no client in {room}")

    async def _send_update(self, room: str, client: str, body: bytes) -> RoomCall:
        return _room_call(await self.transport.send_update(room, client, body), UpdateRoomResponse, "update")

    async def _commit(self, room: str, client: str, build) -> dict[str, Any]:
        await self.poll()  # the latest epoch first: fewer wrongEpoch round trips
        call, response, member = await update_with_catch_up(
            room, client, build, member_of=self.clients.active_member, save=self.clients.save_member,
            send=lambda r, body: self._send_update(r, client, body),
        )
        return commit_outcome(room, call, response, member)

    def _hub_of(self, room: str, group) -> str:
        """The committed mimi_hub component's hub, else the room ID's authority."""
        data = hub_of_record(group.app_data(), room) if group is not None else None
        if data is not None and (domain := domain_of_uri(bytes(data.hub.uri))) is not None:
            return domain
        return domain_of_uri(room) or self.domain

    async def _provision_client(self, user: str, client: str) -> None:
        self.clients.add_client(user, client)
        await self.transport.register_client(user, client)
        one_time, _ = self.clients.make_key_packages(client, KEY_PACKAGES_PER_CLIENT, last_resort=False)
        await self.transport.upload_key_packages(client, one_time, last_resort=None, replace=False)

    async def poll(self) -> None:
        """Take what the server holds for every client and let the clients process it, in order."""

    # -- info, users, clients -----------------------------------------------------------------------

    async def _createUser(self, body: Any) -> dict[str, Any]:
        body = closed(body, "createUser", {"user", "clients", "profile", "searchPolicy", "consentMode"})
        raw = body.get("user") or fresh_name("user-")
        if isinstance(raw, str) and raw.startswith("mimi://"):
            parsed = parse_uri(raw, UriKind.user, "user")
            if parsed.domain != self.domain:
                raise ControlError.not_local(f"{raw} is not in {self.domain}")
            name = parsed.user or ""
        else:
            name = local_name(raw, "user")
        user = MimiUri.for_user(self.domain, name).format()
        count = integer(body.get("clients"), "clients", maximum=16, default=1)
        profile_of(body.get("profile"), name)  # validated here; the server gets it as given
        policy, mode = body.get("searchPolicy"), body.get("consentMode")
        if policy is not None and policy not in SEARCH_POLICIES:
            raise ControlError.bad_request(f"searchPolicy: {policy!r}")
        try:
            if mode is not None:
                ConsentMode(mode)
        except ValueError as exc:
            raise ControlError.bad_request(f"consentMode: {exc}") from None
        if user in self.clients.users:
            raise ControlError.already_exists(f"user {user} exists")
        try:
            await self.transport.register_user(user, profile=body.get("profile"), search_policy=policy,
                                               consent_mode=mode)
        except ValueError as exc:  # the server cannot take this value (e.g. a consent mode it lacks)
            raise ControlError.unsupported_value(str(exc)) from None
        self.clients.add_user(user)
        clients = [MimiUri.for_client(self.domain, f"c{i + 1}", user=name).format() for i in range(count)]
        for client in clients:
            await self._provision_client(user, client)
        out: dict[str, Any] = {"user": user, "clients": clients, "searchPolicy": policy or "exactHandle"}
        if mode is not None:
            out["consentMode"] = mode
        return out

    async def _deleteUser(self, user: str) -> dict[str, Any]:
        self._local_user(user)
        await self.transport.delete_user(user)
        self.clients.delete_user(user)
        return {"deleted": user}

    async def _addClient(self, user: str, body: Any) -> dict[str, Any]:
        self._local_user(user)
        body = closed(body or {}, "addClient", {"client", "joinRooms"})
        parsed = parse_uri(user, UriKind.user, "user")
        name = local_name(body.get("client") or f"c{len(self.clients.clients_of(user)) + 1}", "client")
        client = MimiUri.for_client(parsed.domain, name, user=parsed.user).format()
        if client in self.clients.owner:
            raise ControlError.already_exists(f"client {client} exists")
        join_rooms = body.get("joinRooms", True)
        if not isinstance(join_rooms, bool):
            raise ControlError.bad_request("joinRooms: expected a boolean")
        await self.poll()
        rooms = sorted({room for room in self.clients.rooms()
                        if any(self.clients.active_member(room, c) for c in self.clients.clients_of(user))})
        await self._provision_client(user, client)
        outcomes = []
        if join_rooms and implements(self.transport, "group_info"):  # external commit, one room at a time
            for room in rooms:
                outcomes.append(await self._join(room, client))
        return {"user": user, "client": client, "rooms": outcomes}

    async def _deleteClient(self, client: str) -> dict[str, Any]:
        self._local_client(client)
        await self.transport.delete_client(client)
        self.clients.delete_client(client)
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
        one_time, spare = self.clients.make_key_packages(client, count, last_resort=last_resort,
                                                         lifetime_seconds=lifetime, replace=replace)
        available = await self.transport.upload_key_packages(client, one_time, last_resort=spare, replace=replace)
        return {"client": client, "published": count, "available": available, "lastResort": last_resort}

    # -- rooms --------------------------------------------------------------------------------------

    async def _createRoom(self, body: Any) -> dict[str, Any]:
        from ..control.policy_json import policy_from_json

        body = closed(body, "createRoom", {"creator", "room", "name", "creatorRole", "policy"}, {"creator"})
        policy = policy_from_json(body["policy"], default_policy()) if "policy" in body else default_policy()
        raw = body.get("room") or fresh_name("room-")
        if isinstance(raw, str) and raw.startswith("mimi://"):
            if parse_uri(raw, UriKind.room, "room").domain != self.domain:
                raise ControlError.not_local(f"{raw} is not a room of {self.domain}")
            room = raw
        else:
            room = f"mimi://{self.domain}/r/{local_name(raw, 'room')}"
        if room in self.clients.rooms():
            raise ControlError.already_exists(f"room {room} exists")
        creator = body["creator"]
        parsed = parse_uri(creator, None, "creator")
        if parsed.domain != self.domain:
            raise ControlError.not_local(f"creator {creator} is not local")
        client = (self._local_client(creator, "creator") if parsed.kind is UriKind.client
                  else next(iter(self.clients.clients_of(self._local_user(creator, "creator"))), None))
        if client is None:
            raise ControlError.conflict(f"{creator} has no client to create the room with")
        role = integer(body.get("creatorRole"), "creatorRole", default=ROLE_ADMIN)
        key, identity = await self.transport.hub_external_sender()
        hub = ExternalSender(signature_key=key, credential=basic_credential(identity))
        member = self.clients.new_member(client)
        try:
            member.create_group(room_extensions(hub, member.user_uri.encode(), role, policy))
        except (MLSError, ValueError) as exc:
            raise ControlError.unsupported_value(f"cannot create the room: {exc}") from None
        group_info = member.group.group_info(ratchet_tree=False)
        await self.transport.create_room(room, client, group_info, member.group.tree.encode())
        self.clients.save_member(room, client, member)
        return await self._getRoom(room)

    async def _listRooms(self, user: str | None = None) -> dict[str, Any]:
        await self.poll()
        rooms = sorted(self.clients.rooms())
        if user is not None:
            clients = self.clients.clients_of(self._local_user(user))
            rooms = [r for r in rooms if any(self.clients.active_member(r, c) for c in clients)]
        out = []
        for room in rooms:
            view, group = self._room_view(room)
            hub = self._hub_of(room, group)
            out.append({"room": room, "hubDomain": hub, "hostedHere": hub == self.domain, "epoch": view["epoch"],
                        "participantCount": len(view["participants"])})
        return {"rooms": out}

    def _room_view(self, room: str) -> tuple[dict[str, Any], Any]:
        """The view of the local client furthest ahead in ``room`` (and its group)."""
        members = [m for _, m in self.clients.room_members(room)]
        if not members:
            return {"epoch": 0, "participants": [], "externalSenders": [], "groupId": None, "policy": {}}, None
        member = max(members, key=lambda m: m.epoch or 0)
        return room_view(member.group, member.participant_list()), member.group

    async def _getRoom(self, room: str) -> dict[str, Any]:
        await self.poll()
        self._room(room)
        view, group = self._room_view(room)
        hub = self._hub_of(room, group)
        out = {
            "room": room,
            "hubDomain": hub,
            "hostedHere": hub == self.domain,
            "epoch": view["epoch"],
            "participants": view["participants"],
            "externalSenders": view["externalSenders"],
            "policy": view["policy"],
        }
        if view["groupId"] is not None:
            out["groupId"] = view["groupId"]
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
        request = signed_key_material_request(member, room, target, [member.suite_id])
        answer = await self.transport.key_material(room, client, target, request)
        key_material, key_packages = key_material_of(answer.status, answer.body)
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
        if mode == "remove":
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
        leaving = self.clients.active_member(room, client)
        if leaving is None:
            raise ControlError.conflict(f"{client} is not a member of {room}")
        actor = body.get("actor")
        if actor is None:  # the client removes itself: a SelfRemove proposal for the next committer
            return await self._commit(room, client, lambda m: m.proposals_request([self_remove_proposal()]))
        actor_client, _ = self._actor(room, actor)
        if self.clients.owner.get(actor_client) != self.clients.owner.get(client) or actor_client == client:
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
        parse_uri(room, UriKind.room, "room")
        body = closed(body, "joinRoom", {"client"}, {"client"})
        client = self._local_client(body["client"])
        await self.poll()
        if self.clients.active_member(room, client) is not None:
            raise ControlError.conflict(f"{client} is already a member of {room}")
        return await self._join(room, client)

    async def _join(self, room: str, client: str) -> dict[str, Any]:
        """``client`` joins ``room`` by external commit (§5.6 groupInfo, then the commit via send_update)."""
        member = self.clients.new_member(client)
        suite = cipher_suite(member.suite_id)
        hpke_priv, hpke_pub = suite.generate_hpke_key_pair()
        answer = await self.transport.group_info(room, client, member.group_info_request(hpke_pub).encode())
        response, reason = None, answer.detail or answer.body[:200].decode("utf-8", "replace")
        if answer.status == 200:
            try:
                response = GroupInfoResponse.decode(answer.body)
            except (DecodeError, EncodeError) as exc:
                reason = f"undecodable GroupInfoResponse: {exc}"
        if response is None or response.status != GroupInfoCode.success:
            reason = response.status.name if response is not None else reason or "no GroupInfo"
            return {"room": room, "outcome": "rejectedByHub",
                    "hubResponse": hub_response(RoomCall(answer.status), None, reason)}
        try:
            tbe = open_group_info_response(response, hpke_priv)
            tree = RatchetTree.from_wire(suite, tbe.ratchetTreeOption.ratchet_tree).encode()
            info = MLSMessage(version=1, wire_format=WireFormat.mls_group_info, group_info=tbe.groupInfo).encode()
            request = member.join_external(info, tree)
        except (CryptoError, MLSError, ValueError, DecodeError, EncodeError) as exc:
            return {"room": room, "outcome": "rejectedByHub",
                    "hubResponse": hub_response(RoomCall(200), None, f"unusable GroupInfo: {exc}")}
        # Registered before sending: the fan-out of its own commit may arrive before the answer.
        previous = self.clients.members.get((room, client))
        self.clients.members[(room, client)] = member
        call = await self._send_update(room, client, request)
        if call.update is not None and call.update.responseCode == UpdateResponseCode.success:
            self.clients.save_member(room, client, member)
            return {"room": room, "outcome": "accepted", "epoch": member.epoch,
                    "acceptedAt": call.update.accepted_timestamp}
        member.abandon()
        if previous is None:
            self.clients.members.pop((room, client), None)
        else:
            self.clients.members[(room, client)] = previous
        code = call.update.responseCode.name if call.update is not None else None
        detail = call.update.errorDescription if call.update is not None else ""
        return {"room": room, "outcome": "rejectedByHub", "hubResponse": hub_response(call, code, detail)}

    # -- messaging ----------------------------------------------------------------------------------

    async def _sendMessage(self, room: str, body: Any) -> dict[str, Any]:
        await self.poll()
        self._room(room)
        body = closed(body, "sendMessage", {"from", "content"}, {"from", "content"})
        client = self._local_client(body["from"], "from")
        member = self.clients.active_member(room, client)
        if member is None:
            raise ControlError.conflict(f"{client} is not a member of {room}")
        data = message_content(body["content"])

        async def submit(room_id: str, request: bytes) -> RoomCall:
            answer = await self.transport.submit_message(room_id, client, request)
            return _room_call(answer, SubmitMessageResponse, "submit")

        return await submit_with_catch_up(room, client, member, data, member_of=self.clients.active_member,
                                          save=self.clients.save_member, send=submit)

    async def _listReceivedMessages(
        self, client: str, room: str | None = None, after: str | None = None, limit: str | int | None = None
    ) -> dict[str, Any]:
        self._local_client(client)
        start = cursor(after)
        count = integer(limit, "limit", minimum=1, maximum=1000, default=100)
        await self.poll()
        rows = self.clients.received(client, room=room, after=start, limit=count)
        items = []
        for row in rows:
            sender_user = user_of_uri(row.sender)
            items.append(received_item(row.room, row.sender, sender_user.decode() if sender_user else None,
                                       row.epoch, row.data, row.received_at))
        return {"items": items, "next": str(rows[-1].seq if rows else start)}

    # -- consent (the server's; the kit validates and shapes) ---------------------------------------

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

    async def _listUserEvents(self, user: str, after: str | None = None, limit: int | None = None) -> dict[str, Any]:
        self._local_user(user)
        start = cursor(after)
        count = integer(limit, "limit", minimum=1, maximum=1000, default=100)
        items = await self.transport.user_events(user)
        page = items[start : start + count]  # the cursor is a position in the server's list
        return {"items": page, "next": str(start + len(page))}

    async def _getConsentState(self, user: str) -> dict[str, Any]:
        self._local_user(user)
        return {"user": user, "entries": await self.transport.consent_state(user)}

    async def _grantConsent(self, user: str, body: Any) -> dict[str, Any]:
        self._local_user(user)
        requester, room = self._consent_body(body, "grantConsent", "requester")
        await self.transport.grant_consent(user, requester, room)
        await self.poll()  # released quarantined items reach the clients
        return self._consent_result(requester, user, room, "grant")

    async def _revokeConsent(self, user: str, body: Any) -> dict[str, Any]:
        self._local_user(user)
        requester, room = self._consent_body(body, "revokeConsent", "requester")
        await self.transport.revoke_consent(user, requester, room)
        return self._consent_result(requester, user, room, "revoke")

    async def _requestConsent(self, user: str, body: Any) -> dict[str, Any]:
        self._local_user(user)
        target, room = self._consent_body(body, "requestConsent", "target")
        try:
            await self.transport.request_consent(user, target, room)
        except ValueError as exc:
            raise ControlError.unsupported_value(str(exc)) from None
        return self._consent_result(user, target, room, "request")

    async def _cancelConsentRequest(self, user: str, body: Any) -> dict[str, Any]:
        self._local_user(user)
        target, room = self._consent_body(body, "cancelConsentRequest", "target")
        try:
            await self.transport.cancel_consent_request(user, target, room)
        except ValueError as exc:
            raise ControlError.unsupported_value(str(exc)) from None
        return self._consent_result(user, target, room, "cancel")


class KitBackend(_Operations):
    """The control API over a vendor's :class:`Transport`, with its clients' state under ``state_dir``.

    An instance has a method per operation it offers (see :data:`OPERATION_VERBS`). Call
    :meth:`start` inside the serving event loop (background polling of ``fetch``) and :meth:`close`
    when done; an operation also starts the polling if it is not running yet.
    """

    def __init__(self, transport: Transport, state_dir: str | Path) -> None:
        self.transport = transport
        self.domain = transport.domain
        self.clients = KitClients(state_dir)
        self.operations = [op for op, verbs in OPERATION_VERBS.items() if all(implements(transport, v) for v in verbs)]
        for operation in self.operations:
            if operation != "getInfo":  # always offered: a method of the class
                setattr(self, operation, getattr(self, f"_{operation}"))
        self._poll_lock = asyncio.Lock()
        self._poller: asyncio.Task | None = None
        self._can_fetch = implements(transport, "fetch")

    async def getInfo(self) -> dict[str, Any]:
        return {
            "contractVersion": CONTRACT_VERSION,
            "product": {"name": KIT_PRODUCT, "version": KIT_VERSION},
            "providerDomains": [self.domain],
            "roles": list(self.transport.roles),
            "supportedOperations": list(self.operations),
        }

    async def start(self) -> None:
        if self._poller is None and self._can_fetch:
            self._poller = asyncio.create_task(self._poll_forever(), name=f"kit-poll-{self.domain}")

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        self.clients.close()

    async def _poll_forever(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception:  # a server hiccup must not end the polling; the next round retries
                log.exception("polling %s failed", self.domain)
            await asyncio.sleep(POLL_SECONDS)

    async def poll(self) -> None:
        if not self._can_fetch:
            return
        if self._poller is None:
            await self.start()
        async with self._poll_lock:
            for client in list(self.clients.all_clients()):
                try:
                    deliveries = await self.transport.fetch(client)
                except Exception as exc:  # noqa: BLE001 - one client's failed fetch must not stop the others
                    log.warning("fetch for %s failed: %s", client, exc)
                    continue
                for delivery in deliveries:
                    if client in self.clients.keys:  # deleted meanwhile: nothing to process
                        self.clients.deliver(client, delivery.room, delivery.fanout)


__all__ = ["KIT_PRODUCT", "KIT_VERSION", "OPERATION_VERBS", "KitBackend"]
