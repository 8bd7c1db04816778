"""An in-process MIMI world for the room tests: a hub provider (a.example) and follower providers,
each a LocalClients set, joined by direct calls instead of HTTP. Every fan-out is recorded."""

from __future__ import annotations

import dataclasses
import itertools

from reference_peer.mls import basic_credential, cipher_suite
from reference_peer.room import (
    ROLE_ADMIN,
    ROLE_MEMBER,
    FanoutPlan,
    HubIdentity,
    HubRoom,
    LocalClients,
    SimulatedClient,
    default_policy,
    room_extensions,
)
from reference_peer.wire.mimi import FanoutMessage, SubmitResponseCode, UpdateResponseCode
from reference_peer.wire.mls import ExternalSender

HUB = "a.example"
ROOM = "mimi://a.example/r/clubhouse"


def external_sender(domain: str) -> tuple[bytes, ExternalSender]:
    priv, pub = cipher_suite(1).generate_signature_key_pair()
    return priv, ExternalSender(signature_key=pub, credential=basic_credential(f"mimi://{domain}".encode()))


@dataclasses.dataclass
class World:
    providers: dict[str, LocalClients]
    identity: HubIdentity
    follower_senders: dict[str, ExternalSender]
    follower_keys: dict[str, bytes]
    room: HubRoom | None = None
    sent: list[tuple[str, FanoutMessage]] = dataclasses.field(default_factory=list)
    clock: itertools.count = dataclasses.field(default_factory=lambda: itertools.count(1_700_000_000_000, 1000))

    @classmethod
    def make(cls, *followers: str) -> World:
        hub_priv, hub_sender = external_sender(HUB)
        keys = {d: external_sender(d) for d in followers}
        providers = {d: LocalClients(d) for d in (HUB, *followers)}
        return cls(
            providers,
            HubIdentity(HUB, hub_priv, hub_sender),
            {d: k[1] for d, k in keys.items()},
            {d: k[0] for d, k in keys.items()},
        )

    def now(self) -> int:
        return next(self.clock)

    def client(self, domain: str, user: str, name: str) -> SimulatedClient:
        return self.providers[domain].add(user, name)

    def create_room(self, creator: SimulatedClient, *, policy=None) -> HubRoom:
        """The hub's local user creates the room as admin; the HubRoom starts from the creator's group."""
        policy = policy or default_policy()
        creator.create_group(
            room_extensions(self.identity.external_sender, creator.user_uri.encode(), ROLE_ADMIN, policy)
        )
        self.room = HubRoom.from_group(ROOM, self.identity, creator.group, provider_senders=self.follower_senders)
        return self.room

    def deliver(self, plan: FanoutPlan) -> None:
        for domain in sorted(plan.domains()):
            for message in plan.messages_for(domain):
                self.sent.append((domain, message))
            self.providers[domain].deliver(plan.body_for(domain))  # through the wire encoding

    def update(self, client: SimulatedClient, request: bytes, *, domain: str | None = None):
        response, plan = self.room.handle_update(domain or client.domain, request, self.now())
        self.deliver(plan)
        return response, plan

    def commit(self, client: SimulatedClient, outgoing, *, domain: str | None = None):
        """Send a commit; on success the committer merges (as its provider would on the 200 answer)."""
        response, plan = self.room.handle_update(domain or client.domain, outgoing.request, self.now())
        if response.responseCode == UpdateResponseCode.success:
            client.commit_accepted()
        else:
            client.commit_refused()
        self.deliver(plan)
        return response, plan

    def submit(self, client: SimulatedClient, text: bytes, *, domain: str | None = None, request: bytes | None = None):
        response, plan = self.room.handle_submit(domain or client.domain, request or client.send(text), self.now())
        self.deliver(plan)
        return response, plan

    def add_user(self, adder: SimulatedClient, joiners: list[SimulatedClient], role: int = ROLE_MEMBER):
        """Add one user's clients (fresh KeyPackages, relayed through the hub's KeyPackageRef map)."""
        kps = []
        for joiner in joiners:
            bundle = joiner.make_key_package()
            self.room.record_key_package(bundle.ref(), joiner.domain)
            kps.append(bundle.key_package)
        return self.commit(adder, adder.add_users(kps, [(joiners[0].user_uri.encode(), role)]))


def ok(response) -> None:
    assert response.responseCode == UpdateResponseCode.success, response.errorDescription


def accepted(response) -> None:
    assert response.statusCode == SubmitResponseCode.accepted, response
