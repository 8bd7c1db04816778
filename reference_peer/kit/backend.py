"""The adapter kit's control API backend: every control operation the contract asks for, built on the
verbs of a vendor's :class:`~reference_peer.kit.transport.Transport` and the kit's own simulated MLS
clients (:class:`~reference_peer.kit.clients.KitClients`).

The operations are the kit's :class:`~reference_peer.kit.operations.KitOperations` (the reference
peer's backend runs the same ones); this module implements their primitives. The HTTP layer is the
reference peer's (``reference_peer.control.app.make_control_app``): one ``async``
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
from ..mls import CryptoError, MLSError, basic_credential, cipher_suite
from ..mls.tree import RatchetTree
from ..peer import RoomCall, signed_key_material_request
from ..provider.consent import ConsentMode
from ..provider.directory_search import SearchPolicy
from ..room import SimulatedClient, open_group_info_response, room_extensions
from ..room.naming import domain_of_uri
from ..room.transfer import hub_of_record
from ..wire.codec import DecodeError, EncodeError
from ..wire.identity import MimiUri
from ..wire.mimi import GroupInfoCode, GroupInfoResponse, SubmitMessageResponse, UpdateResponseCode, UpdateRoomResponse
from ..wire.mls import ExternalSender, MLSMessage, WireFormat
from .clients import KitClients
from .contract import hub_response, profile_of, received_item, room_view
from .operations import KitOperations, empty_room_view, sender_user
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


class KitBackend(KitOperations):
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
        self.offer(op for op in self.operations if op != "getInfo")  # getInfo: always, a method of the class
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

    # -- the operations' primitives on the transport and the kit's clients ----------------------------

    def _is_local_domain(self, domain: str | None) -> bool:
        return domain == self.domain

    def _has_user(self, user: str) -> bool:
        return user in self.clients.users

    def _has_client(self, client: str) -> bool:
        return client in self.clients.keys

    def _owner_of(self, client: str) -> str | None:
        return self.clients.owner.get(client)

    def _clients_of(self, user: str) -> list[str]:
        return self.clients.clients_of(user)

    async def _provision_user(self, user: str, name: str, count: int, body: dict[str, Any],
                              search_policy: SearchPolicy, consent_mode: ConsentMode | None) -> list[str]:
        profile_of(body.get("profile"), name)  # validated here; the server gets it as given
        await self.transport.register_user(user, profile=body.get("profile"), search_policy=body.get("searchPolicy"),
                                           consent_mode=body.get("consentMode"))
        self.clients.add_user(user)
        clients = [MimiUri.for_client(self.domain, f"c{i + 1}", user=name).format() for i in range(count)]
        for client in clients:
            await self._provision_client(user, client)
        return clients

    async def _delete_user(self, user: str) -> None:
        await self.transport.delete_user(user)
        self.clients.delete_user(user)

    async def _provision_client(self, user: str, client: str) -> None:
        self.clients.add_client(user, client)
        await self.transport.register_client(user, client)
        one_time, _ = self.clients.make_key_packages(client, KEY_PACKAGES_PER_CLIENT, last_resort=False)
        await self.transport.upload_key_packages(client, one_time, last_resort=None, replace=False)

    async def _delete_client(self, client: str) -> None:
        await self.transport.delete_client(client)
        self.clients.delete_client(client)

    async def _publish_key_packages(self, client: str, count: int, *, last_resort: bool,
                                    lifetime_seconds: int | None, replace: bool) -> tuple[int, int, bool]:
        one_time, spare = self.clients.make_key_packages(client, count, last_resort=last_resort,
                                                         lifetime_seconds=lifetime_seconds, replace=replace)
        available = await self.transport.upload_key_packages(client, one_time, last_resort=spare, replace=replace)
        return count, available, last_resort

    async def _create_room(self, room: str, client: str, role: int, policy, body: dict[str, Any]) -> None:
        """The client makes the group; the vendor's server (its hub) takes it with create_room."""
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

    def _known_rooms(self) -> set[str]:
        return self.clients.rooms()

    def _active_member(self, room: str, client: str) -> SimulatedClient | None:
        return self.clients.active_member(room, client)

    def _save_member(self, room: str, client: str, member: SimulatedClient) -> None:
        self.clients.save_member(room, client, member)

    def _rooms_of_user(self, user: str) -> set[str]:
        clients = self.clients.clients_of(user)
        return {room for room in self.clients.rooms() if any(self.clients.active_member(room, c) for c in clients)}

    def _furthest_member(self, room: str) -> SimulatedClient | None:
        """The local client furthest ahead in ``room``: its state is the room as the kit sees it."""
        members = [m for _, m in self.clients.room_members(room)]
        return max(members, key=lambda m: m.epoch or 0) if members else None

    def _room_view(self, room: str) -> dict[str, Any]:
        member = self._furthest_member(room)
        if member is None:
            return empty_room_view()
        return room_view(member.group, member.participant_list())

    def _hub_placement(self, room: str, *, listing: bool) -> tuple[str, bool]:
        """The committed mimi_hub component's hub, else the room ID's authority."""
        member = self._furthest_member(room)
        data = hub_of_record(member.group.app_data(), room) if member is not None else None
        if data is not None and (domain := domain_of_uri(bytes(data.hub.uri))) is not None:
            return domain, domain == self.domain
        hub = domain_of_uri(room) or self.domain
        return hub, hub == self.domain

    async def _send_update(self, room: str, client: str, body: bytes) -> RoomCall:
        return _room_call(await self.transport.send_update(room, client, body), UpdateRoomResponse, "update")

    async def _send_submit(self, room: str, client: str, body: bytes) -> RoomCall:
        return _room_call(await self.transport.submit_message(room, client, body), SubmitMessageResponse, "submit")

    async def _obtain_key_material(self, room: str, client: str, member: SimulatedClient,
                                   target: str) -> tuple[int, bytes]:
        request = signed_key_material_request(member, room, target, [member.suite_id])
        answer = await self.transport.key_material(room, client, target, request)
        return answer.status, answer.body

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

    def _received(self, client: str, room: str | None, after: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        return [
            (row.seq, received_item(row.room, row.sender, sender_user(row.sender), row.epoch, row.data,
                                    row.received_at))
            for row in self.clients.received(client, room=room, after=after, limit=limit)
        ]

    async def _user_events(self, user: str) -> list[dict[str, Any]]:
        return await self.transport.user_events(user)

    async def _consent_entries(self, user: str) -> list[dict[str, Any]]:
        return await self.transport.consent_state(user)

    async def _grant_consent(self, user: str, requester: str, room: str | None) -> None:
        await self.transport.grant_consent(user, requester, room)
        await self.poll()  # released quarantined items reach the clients

    async def _revoke_consent(self, user: str, requester: str, room: str | None) -> None:
        await self.transport.revoke_consent(user, requester, room)

    async def _request_consent(self, user: str, target: str, room: str | None, *, cancel: bool) -> None:
        if cancel:
            await self.transport.cancel_consent_request(user, target, room)
        else:
            await self.transport.request_consent(user, target, room)

    def _new_device_joins_rooms(self) -> bool:
        return implements(self.transport, "group_info")  # joining takes groupInfo then an external commit

    # -- polling ---------------------------------------------------------------------------------------

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
