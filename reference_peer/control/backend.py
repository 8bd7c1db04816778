"""The reference peer's implementation of the SUT control API (``openapi.yaml``) on a
:class:`~reference_peer.peer.ReferenceProvider`.

The operations themselves are the kit's (:class:`~reference_peer.kit.operations.KitOperations`, shared
with the adapter kit): this class implements their primitives on the provider and keeps what is the
reference peer's own: getInfo, hosting a created room (HubRoom.from_group), startHubTransfer, and the
named steps it may be built to depart from. Every action goes through real MIMI traffic: a local
client's commit is an UpdateRequest to the room's hub (over HTTPS when the hub is another provider), a
message is a SubmitMessageRequest, key material for a remote user is a keyMaterial request via the hub.
"""

from __future__ import annotations

from typing import Any

from ..kit.contract import closed, hub_response, profile_of, received_item, room_view
from ..kit.operations import KitOperations, empty_room_view, sender_user
from ..mls import MLSError
from ..overrides import step
from ..peer import RoomCall
from ..provider.consent import ConsentDomainError, ConsentMode
from ..provider.directory_search import SearchPolicy
from ..room import HubRoom, SimulatedClient, room_extensions
from ..room.hub import HOSTED_ROOMS
from ..room.naming import domain_of_uri
from ..wire.codec import DecodeError, EncodeError
from ..wire.hub_transfer import MIMI_HUB_COMPONENT_ID, initial_hub_data
from . import CONTRACT_VERSION
from .errors import ControlError
from .policy_json import parent_of

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


class ReferenceBackend(KitOperations):
    """The control API operations for one :class:`ReferenceProvider`."""

    CONSENT_REFUSALS = (ConsentDomainError,)

    def __init__(self, provider) -> None:  # a ReferenceProvider (not imported: peer imports nothing from here)
        self.provider = provider
        self.offer(op for op in IMPLEMENTED if op != "getInfo")
        if getattr(provider, "transfers", None) is not None:  # offered only with the extension switched on
            self.startHubTransfer = self._start_hub_transfer
        HOSTED_ROOMS[provider.domain] = provider.hub_rooms  # parent-dependent rooms read their parent's list

    @property
    def domain(self) -> str:
        return self.provider.domain

    @property
    def state(self):
        return self.provider.state

    @property
    def overrides(self):
        """The overrides the provider was built with (reference_peer.overrides)."""
        return self.provider.overrides

    # -- the kit's primitives on the provider -------------------------------------------------------

    def _is_local_domain(self, domain: str | None) -> bool:
        return self.provider.is_local_domain(domain)

    def _has_user(self, user: str) -> bool:
        return self.state.user_status(user) == "active"

    def _has_client(self, client: str) -> bool:
        return self.state.user_of(client) is not None and client in self.provider.client_keys

    def _owner_of(self, client: str) -> str | None:
        return self.state.user_of(client)

    def _clients_of(self, user: str) -> list[str]:
        return self.state.clients_of(user)

    async def _provision_user(self, user: str, name: str, count: int, body: dict[str, Any],
                              search_policy: SearchPolicy, consent_mode: ConsentMode | None) -> list[str]:
        created = self.state.provision_user(
            user,
            clients=count,
            profile=profile_of(body.get("profile"), name),
            search_policy=search_policy,
            consent_mode=consent_mode,
        )
        for client in created.clients:
            self.provider.provision_client_keys(client)
        return list(created.clients)

    async def _delete_user(self, user: str) -> None:
        clients = self.state.clients_of(user)
        self.state.delete_user(user)
        for client in clients:
            self.provider.forget_client(client)

    async def _provision_client(self, user: str, client: str) -> None:
        self.state.add_client(user, client)
        self.provider.provision_client_keys(client)

    async def _delete_client(self, client: str) -> None:
        self.state.delete_client(client)
        self.provider.forget_client(client)

    async def _publish_key_packages(self, client: str, count: int, *, last_resort: bool,
                                    lifetime_seconds: int | None, replace: bool) -> tuple[int, int, bool]:
        return self.provider.publish_key_packages(
            client, count, last_resort=last_resort, lifetime_seconds=lifetime_seconds, replace=replace
        )

    def _room_policy_options(self) -> dict[str, Any]:
        return {"hosts": self._hosts_as_hub, "overrides": self.overrides}

    async def _create_room(self, room: str, client: str, role: int, policy, body: dict[str, Any]) -> None:
        """The room is created and hosted here: this provider is its hub."""
        member = self.provider.new_member(room, client)
        parent = parent_of(body.get("policy") or {})
        if parent is not None and self.provider.hub_rooms[parent].roles().get(member.user_uri.encode(), 0) in (0, 1):
            raise ControlError.not_permitted(f"{body['creator']} is not a participant of the parent room {parent} "
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

    def _hosts_as_hub(self, room: str) -> bool:
        hosted = self.provider.hub_rooms.get(room)
        return hosted is not None and hosted.moved is None

    def _known_rooms(self) -> set[str]:
        return self.provider.known_rooms()

    def _active_member(self, room: str, client: str) -> SimulatedClient | None:
        return self.provider.active_member(room, client)

    def _save_member(self, room: str, client: str, member: SimulatedClient) -> None:
        self.provider.save_member(room, client, member)

    def _rooms_of_user(self, user: str) -> set[str]:
        return {room for (room, other) in self.provider.members if self.state.user_of(other) == user
                and self.provider.active_member(room, other)}

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
                return empty_room_view()
            group, plist = member.group, member.participant_list()
        return room_view(group, plist, self.overrides)

    def _hub_placement(self, room: str, *, listing: bool) -> tuple[str, bool]:
        hub = self.provider.hub_of(room)
        if listing:  # listRooms: hosted here at all, a moved-away room included
            return hub, room in self.provider.hub_rooms
        return hub, self._hosts_as_hub(room)

    def _room_extras(self, room: str) -> dict[str, Any]:
        return self._hub_fields(room) if self.provider.transfers is not None else {}

    async def _send_update(self, room: str, client: str, body: bytes) -> RoomCall:
        return await self.provider.send_update(room, body)

    async def _send_submit(self, room: str, client: str, body: bytes) -> RoomCall:
        return await self.provider.send_submit(room, body)

    async def _obtain_key_material(self, room: str, client: str, member: SimulatedClient,
                                   target: str) -> tuple[int, bytes]:
        return await self.provider.obtain_key_material(member, room, target)

    async def _join(self, room: str, client: str) -> dict[str, Any]:
        """External commit after groupInfo; a room this provider holds no state for is located from its
        ID (hub-transfer §13: the authority, then HubRedirects)."""
        call, member, reason = await self.provider.join_external(room, client)
        if member is not None:
            return {"room": room, "outcome": "accepted", "epoch": member.epoch,
                    "acceptedAt": call.update.accepted_timestamp}
        code = call.update.responseCode.name if call.update is not None else None
        return {"room": room, "outcome": "rejectedByHub", "hubResponse": hub_response(call, code, reason)}

    def _received(self, client: str, room: str | None, after: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        rows = self.provider.peer_store.received(client, room_id=room, after=after, limit=limit)
        return [
            (row.seq, received_item(row.room_id, row.sender, sender_user(row.sender, self.overrides), row.epoch,
                                    row.data, row.received_at))
            for row in rows
        ]

    async def _user_events(self, user: str) -> list[dict[str, Any]]:
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
        return [{k: v for k, v in item.items() if v is not None} for item in items]

    async def _consent_entries(self, user: str) -> list[dict[str, Any]]:
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
        return entries

    async def _grant_consent(self, user: str, requester: str, room: str | None) -> None:
        change = self.state.grant_consent(user, requester, room)
        # Released quarantined items are now in the clients' inboxes: let the clients process them.
        self.provider.pump({c for item in change.released for c in item.clients})

    async def _revoke_consent(self, user: str, requester: str, room: str | None) -> None:
        change = self.state.revoke_consent(user, requester, room)
        self.provider.pump({c for item in change.released for c in item.clients})  # empty unless a fault is on

    async def _request_consent(self, user: str, target: str, room: str | None, *, cancel: bool) -> None:
        self.state.request_consent(user, target, room, cancel=cancel)

    # -- the rules this peer may be built to depart from ----------------------------------------------

    def _new_device_joins_rooms(self) -> bool:
        return not self.overrides.departs(NEW_DEVICE_JOINS_ROOMS)

    def _ban_moves_to_banned_role(self) -> bool:
        return not self.overrides.departs(BAN_MOVES_TO_BANNED_ROLE)

    # -- the reference peer's own operations --------------------------------------------------------

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


__all__ = ["IMPLEMENTED", "ReferenceBackend"]
