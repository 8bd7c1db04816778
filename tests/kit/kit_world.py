"""An in-memory MIMI world for the adapter kit's tests: a hub (a.example) that is the reference peer's
HubRoom driven by direct calls, and store-and-forward servers (one per follower domain) that hold
users, clients, KeyPackages and a mailbox per client. :class:`FakeTransport` is a vendor's Transport
over one of those servers: it forwards what the kit hands it to the hub and returns the mailbox."""

from __future__ import annotations

import dataclasses
import itertools

from reference_peer.kit.transport import Delivery, ServerAnswer, Transport
from reference_peer.mls import basic_credential, cipher_suite
from reference_peer.mls.leaf import key_package_ref
from reference_peer.room import (
    ROLE_ADMIN,
    FanoutPlan,
    HubIdentity,
    HubRoom,
    LocalClients,
    default_policy,
    room_extensions,
)
from reference_peer.wire.identity import IdentifierUri, MimiUri
from reference_peer.wire.mimi import (
    ClientKeyMaterial,
    KeyMaterialClientCode,
    KeyMaterialRequest,
    KeyMaterialResponse,
    KeyMaterialUserCode,
    Protocol,
)
from reference_peer.wire.mls import ExternalSender, KeyPackage

HUB = "a.example"
ROOM = "mimi://a.example/r/lounge"


@dataclasses.dataclass
class FakeServer:
    """A provider that only stores and forwards: what a vendor's server is to the kit."""

    domain: str
    users: set[str] = dataclasses.field(default_factory=set)
    clients: dict[str, str] = dataclasses.field(default_factory=dict)  # client -> user
    key_packages: dict[str, list[bytes]] = dataclasses.field(default_factory=dict)
    mailbox: dict[str, list[Delivery]] = dataclasses.field(default_factory=dict)

    def claim(self, user: str) -> list[tuple[str, bytes | None]]:
        return [(c, self.key_packages[c].pop(0) if self.key_packages.get(c) else None)
                for c, owner in sorted(self.clients.items()) if owner == user]


class Hub:
    """The room's hub: a HubRoom created by a local client of a.example, fan-out by direct calls."""

    def __init__(self) -> None:
        priv, pub = cipher_suite(1).generate_signature_key_pair()
        self.identity = HubIdentity(HUB, priv, ExternalSender(signature_key=pub,
                                                              credential=basic_credential(f"mimi://{HUB}".encode())))
        self.local = LocalClients(HUB)
        self.servers: dict[str, FakeServer] = {}
        self.clock = itertools.count(1_700_000_000_000, 1000)
        self.creator = self.local.add("host", "h1")
        self.creator.create_group(room_extensions(self.identity.external_sender, self.creator.user_uri.encode(),
                                                  ROLE_ADMIN, default_policy()))
        self.room = HubRoom.from_group(ROOM, self.identity, self.creator.group)

    def server(self, domain: str) -> FakeServer:
        return self.servers.setdefault(domain, FakeServer(domain))

    def deliver(self, plan: FanoutPlan) -> None:
        for domain in sorted(plan.domains()):
            body = plan.body_for(domain)
            if domain == HUB:
                self.local.deliver(body)
                continue
            server = self.servers[domain]  # store and forward: every client's mailbox gets the body
            for client in server.clients:
                server.mailbox.setdefault(client, []).append(Delivery(self.room.room_uri, body))

    def key_material(self, target: str) -> bytes:
        """keyMaterial relayed to the target's provider; the hub remembers where each KeyPackage came from."""
        server = self.servers[MimiUri.parse(target).domain]
        claimed = server.claim(target)
        clients = []
        for client, raw in claimed:
            if raw is None:
                clients.append(ClientKeyMaterial(clientStatus=KeyMaterialClientCode.keyMaterialExhausted,
                                                 clientUri=IdentifierUri(uri=client.encode())))
                continue
            key_package = KeyPackage.decode(raw)
            self.room.record_key_package(key_package_ref(cipher_suite(key_package.cipher_suite), key_package), server.domain)
            clients.append(ClientKeyMaterial(clientStatus=KeyMaterialClientCode.success,
                                             clientUri=IdentifierUri(uri=client.encode()), keyPackage=key_package))
        status = KeyMaterialUserCode.success if claimed else KeyMaterialUserCode.userUnknown
        return KeyMaterialResponse(protocol=Protocol.mls10, userStatus=status, userUri=IdentifierUri(uri=target.encode()),
                                   clients=clients).encode()

    def host_adds(self, user: str) -> None:
        """The hub's own client adds ``user`` (of a follower) as admin, through keyMaterial like any adder."""
        response = KeyMaterialResponse.decode(self.key_material(user))
        key_packages = [c.keyPackage for c in response.clients if c.keyPackage is not None]
        outgoing = self.creator.add_users(key_packages, [(user.encode(), ROLE_ADMIN)])
        answer, plan = self.room.handle_update(HUB, outgoing.request, next(self.clock))
        assert answer.responseCode.name == "success", answer.errorDescription
        self.creator.commit_accepted()
        self.deliver(plan)


class FakeTransport(Transport):
    """A vendor's Transport over a FakeServer; leave out verbs with ``without``."""

    def __init__(self, hub: Hub, domain: str) -> None:
        self.domain = domain
        self.hub = hub
        self.server = hub.server(domain)
        self.calls: list[str] = []

    async def register_user(self, user, *, profile, search_policy, consent_mode):
        self.server.users.add(user)

    async def delete_user(self, user):
        self.server.users.discard(user)

    async def register_client(self, user, client):
        self.server.clients[client] = user

    async def delete_client(self, client):
        self.server.clients.pop(client, None)

    async def upload_key_packages(self, client, key_packages, *, last_resort, replace):
        held = [] if replace else self.server.key_packages.get(client, [])
        self.server.key_packages[client] = held + list(key_packages)
        return len(self.server.key_packages[client])

    async def send_update(self, room, client, request):
        self.calls.append("send_update")
        answer, plan = self.hub.room.handle_update(self.domain, request, next(self.hub.clock))
        self.hub.deliver(plan)
        return ServerAnswer(200, answer.encode())

    async def submit_message(self, room, client, request):
        self.calls.append("submit_message")
        answer, plan = self.hub.room.handle_submit(self.domain, request, next(self.hub.clock))
        self.hub.deliver(plan)
        return ServerAnswer(200, answer.encode())

    async def key_material(self, room, client, target_user, request):
        self.calls.append("key_material")
        assert KeyMaterialRequest.decode(request).targetUser.uri == target_user.encode()
        return ServerAnswer(200, self.hub.key_material(target_user))

    async def fetch(self, client):
        return self.server.mailbox.pop(client, [])


class SendOnlyTransport(Transport):
    """A transport with only the user verbs: the kit must offer only what those make possible."""

    def __init__(self, domain: str) -> None:
        self.domain = domain

    async def register_user(self, user, *, profile, search_policy, consent_mode):
        pass

    async def register_client(self, user, client):
        pass

    async def upload_key_packages(self, client, key_packages, *, last_resort, replace):
        return len(key_packages)


class JoiningTransport(FakeTransport):
    """With groupInfo: a user's new client can join the user's rooms by external commit."""

    async def group_info(self, room, client, request):
        answer = self.hub.room.group_info_response(self.domain, request, next(self.hub.clock))
        return ServerAnswer(200, answer.encode())


class HostingTransport(FakeTransport):
    """With create_room: the SUT hosts the rooms its users create (here: the world's one hub room)."""

    roles = ("hub", "follower")

    async def hub_external_sender(self):
        sender = self.hub.identity.external_sender
        return bytes(sender.signature_key), bytes(sender.credential.identity)

    async def create_room(self, room, client, group_info, ratchet_tree):
        self.hub.room = HubRoom.from_group_info(room, self.hub.identity, group_info, ratchet_tree=ratchet_tree)


class ConsentTransport(SendOnlyTransport):
    """The consent verbs over a list of entries and events, recording the actions."""

    def __init__(self, domain: str) -> None:
        super().__init__(domain)
        self.actions: list[tuple[str, str, str, str | None]] = []

    async def request_consent(self, user, target, room):
        self.actions.append(("request", user, target, room))

    async def cancel_consent_request(self, user, target, room):
        self.actions.append(("cancel", user, target, room))

    async def grant_consent(self, user, requester, room):
        self.actions.append(("grant", user, requester, room))

    async def revoke_consent(self, user, requester, room):
        self.actions.append(("revoke", user, requester, room))

    async def consent_state(self, user):
        return [{"requester": r, "target": u, "state": "granted"} for (a, u, r, _) in self.actions if a == "grant"]

    async def user_events(self, user):
        return [{"type": "consentRequested", "requester": f"mimi://x.example/u/r{i}"} for i in range(3)]
