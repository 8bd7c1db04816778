"""A small MIMI provider that only stores and forwards: the follower role, no MLS state.

Its users' clients (simulated by the adapter kit) upload KeyPackages; the server

* serves ``/keyMaterial`` for its users from those KeyPackages (draft-ietf-mimi-protocol-06 §5.2):
  one-time ones handed out once, the last-resort one only when none is left, never an expired one,
  and only those matching the request's acceptable cipher suites and required capabilities;
* stores every ``/notify`` body (§5.5) and hands it to each of its clients on fetch (a client not in
  the room ignores it);
* answers ``/requestConsent`` and ``/updateConsent`` (§5.7) 201 "received"; it has no consent
  feature, so it gates nothing on them;
* forwards its clients' update, submitMessage, keyMaterial and groupInfo requests to the room's hub
  (the room URI's authority) and relays the answer;
* offers its own tiny client-to-server API: JSON over HTTP on loopback (``API`` below).

To stay short it borrows the suite's MIMI HTTPS layer (``reference_peer.server``: mutual TLS, From and
Host, limits, the §5.1 directory), its codecs (``reference_peer.wire``) and its signature check
(``reference_peer.mls``), as a vendor would use their own stack. Nothing here is MLS client state.

Run: ``python -m examples.store_and_forward.server --domain saf.example --cert C --key K`` (``--help``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from aiohttp import web

from reference_peer.mls import cipher_suite
from reference_peer.mls.leaf import capabilities_cover, is_last_resort
from reference_peer.server import MimiClient, MimiHTTPError, MimiRequest, MimiResponse, MimiServer, PeerError, Provider
from reference_peer.wire.codec import DecodeError
from reference_peer.wire.identity import IdentifierUri, MimiUri, MimiUriError, UriKind
from reference_peer.wire.mimi import (
    ClientKeyMaterial,
    ConsentEntry,
    KeyMaterialClientCode,
    KeyMaterialRequest,
    KeyMaterialResponse,
    KeyMaterialUserCode,
    Protocol,
    decode_fanout_sequence_tolerant,
)
from reference_peer.wire.mls import KeyPackage, MLSMessage, WireFormat

MLS10 = {"protocol": Protocol.mls10}
# The client-to-server API: POST, JSON in and out; bytes travel as base64.
API = ("/users", "/users/delete", "/clients", "/clients/delete", "/keypackages", "/forward", "/fetch")
FORWARDED = frozenset({"update", "submitMessage", "keyMaterial", "groupInfo"})


@dataclass
class StoredKeyPackage:
    key_package: KeyPackage
    last_resort: bool


@dataclass
class Client:
    user: str
    key_packages: list[StoredKeyPackage] = field(default_factory=list)
    inbox: list[tuple[str, bytes]] = field(default_factory=list)  # (room, /notify body), oldest first


def decode_key_package(data: bytes) -> KeyPackage:
    """A KeyPackage from its bare encoding or its MLSMessage wrapper."""
    try:
        return KeyPackage.decode(data)
    except DecodeError:
        message = MLSMessage.decode(data)
        if message.wire_format != WireFormat.mls_key_package:
            raise DecodeError("not a KeyPackage") from None
        return message.key_package


def domain_of(uri: str) -> str | None:
    try:
        return MimiUri.parse(uri).domain
    except MimiUriError:
        return None


class StoreAndForward:
    """The provider's state (in memory) and its MIMI endpoints."""

    def __init__(self, domain: str, routes: dict[str, str], cert: str, key: str, trust: str) -> None:
        self.domain = domain
        self.routes = routes  # domain or "*.zone" -> host:port (the suite's reference-peers.yaml)
        self.users: dict[str, str] = {}  # user URI -> "active" | "deleted"
        self.clients: dict[str, Client] = {}
        self.seen_notify: set[bytes] = set()
        # Outgoing MIMI: *.ref.test connects to the suite's gateway; SNI, certificate check and Host keep the name.
        self.mimi = MimiClient(domain, cert, key, trust, connect=self.connect_host)

    # -- routing to other providers ---------------------------------------------------------------

    def route(self, domain: str) -> str | None:
        labels = domain.split(".")
        for key in [domain] + ["*." + ".".join(labels[i:]) for i in range(1, len(labels))]:
            if key in self.routes:
                return self.routes[key]
        return None

    def authority(self, domain: str) -> str:
        """``domain:port`` of the route (connect: :meth:`connect_host`), else the domain through DNS."""
        route = self.route(domain)
        return f"{domain}:{route.rpartition(':')[2]}" if route else domain

    def connect_host(self, host: str) -> str | None:
        route = self.route(host)
        return route.rpartition(":")[0] if route else None

    # -- MIMI endpoints ---------------------------------------------------------------------------

    async def key_material(self, request: MimiRequest) -> MimiResponse:
        req = KeyMaterialRequest.decode(request.body)
        target = request.value
        if bytes(req.targetUser.uri).decode("utf-8", "replace") != target:
            raise MimiHTTPError(400, "target-mismatch", "targetUser differs from the path")
        if domain_of(target) != self.domain:
            raise MimiHTTPError(404, "not-local", f"{target!r} is not a user of {self.domain}")
        if req.protocol != Protocol.mls10:
            answer = self.answer(KeyMaterialUserCode.incompatibleProtocol, target, [])
        elif not signature_ok(req):
            raise MimiHTTPError(400, "bad-signature", "the KeyMaterialRequest signature does not verify")
        elif self.users.get(target) != "active":
            # Unknown and deleted users look like a user who gave no consent (no user enumeration).
            answer = self.answer(KeyMaterialUserCode.noConsent, target, [])
        else:
            clients = sorted(uri for uri, c in self.clients.items() if c.user == target)
            entries = [self.claim(uri, req) for uri in clients]
            codes = {code for code, _, _ in entries}
            if codes == {KeyMaterialClientCode.success}:
                user_code = KeyMaterialUserCode.success
            elif KeyMaterialClientCode.success in codes:
                user_code = KeyMaterialUserCode.partialSuccess
            else:
                user_code = KeyMaterialUserCode.noCompatibleMaterial
            answer = self.answer(user_code, target, [
                ClientKeyMaterial(clientStatus=code, clientUri=IdentifierUri(uri=uri.encode()), keyPackage=kp,
                                  clientCapabilities=caps)
                for (code, kp, caps), uri in zip(entries, clients, strict=True)])
        return MimiResponse(answer.encode())

    @staticmethod
    def answer(code: KeyMaterialUserCode, target: str, clients: list) -> KeyMaterialResponse:
        return KeyMaterialResponse(protocol=Protocol.mls10, userStatus=code,
                                   userUri=IdentifierUri(uri=target.encode()), clients=clients)

    def claim(self, client_uri: str, req: KeyMaterialRequest):
        """(code, KeyPackage or None, capabilities or None) for one client: the soonest-expiring compatible
        one-time KeyPackage (removed: never handed out again), else the last-resort one (kept)."""
        now = int(time.time())
        client = self.clients[client_uri]
        client.key_packages = [s for s in client.key_packages if s.key_package.leaf_node.lifetime.not_after >= now]
        usable = [s for s in client.key_packages if s.key_package.leaf_node.lifetime.not_before <= now]
        if not usable:
            return KeyMaterialClientCode.keyMaterialExhausted, None, None
        compatible = [s for s in usable if s.key_package.cipher_suite in (req.acceptableCiphersuites or ())
                      and capabilities_cover(s.key_package.leaf_node.capabilities, req.requiredCapabilities)]
        if not compatible:
            return KeyMaterialClientCode.nothingCompatible, None, usable[0].key_package.leaf_node.capabilities
        one_time = sorted((s for s in compatible if not s.last_resort),
                          key=lambda s: s.key_package.leaf_node.lifetime.not_after)
        chosen = one_time[0] if one_time else compatible[-1]
        if not chosen.last_resort:
            client.key_packages.remove(chosen)
        return KeyMaterialClientCode.success, chosen.key_package, None

    async def notify(self, request: MimiRequest) -> MimiResponse:
        room = request.value
        try:
            if MimiUri.parse(room).kind is not UriKind.room:
                raise MimiUriError("not a room")
        except MimiUriError:
            raise MimiHTTPError(400, "malformed-room-id", f"{room!r} is not a mimi:// room URI") from None
        if request.peer_domain != domain_of(room):
            raise MimiHTTPError(403, "not-the-hub", f"{request.peer_domain} is not the hub of {room}")
        messages, _readings = decode_fanout_sequence_tolerant(request.body, scope=MLS10)
        if not messages:
            raise MimiHTTPError(400, "empty-notify", "a /notify body carries at least one FanoutMessage")
        # -06 §5.5: a repeated /notify is answered 201 and delivered once.
        digest = hashlib.sha256(request.peer_domain.encode() + b"\0" + request.body).digest()
        if digest not in self.seen_notify:
            self.seen_notify.add(digest)
            for client in self.clients.values():
                client.inbox.append((room, request.body))
        return MimiResponse(status=201)

    async def consent(self, request: MimiRequest) -> MimiResponse:
        """-06 §5.7: the request's own user (the requester for request/cancel, the target for grant/revoke)
        is of the sending provider, the other one ours; 201 only says the entry was received."""
        entry = ConsentEntry.decode(request.body)
        operation = entry.consentOperation.name
        if (operation in ("request", "cancel")) != (request.endpoint == "requestConsent"):
            raise MimiHTTPError(400, "wrong-operation", f"{operation} does not belong to {request.endpoint}")
        requester = domain_of(bytes(entry.requesterUri.uri).decode("utf-8", "replace"))
        target = domain_of(bytes(entry.targetUri.uri).decode("utf-8", "replace"))
        theirs, ours = (requester, target) if operation in ("request", "cancel") else (target, requester)
        if theirs != request.peer_domain or ours != self.domain:
            raise MimiHTTPError(403, "consent-domain-mismatch", f"{operation}: users of the wrong providers")
        return MimiResponse(status=201)

    # -- the client-to-server API ---------------------------------------------------------------

    async def api(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            answer = await self.api_call(request.path, body)
        except (KeyError, ValueError, TypeError, DecodeError) as exc:
            return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
        return web.json_response(answer or {})

    async def api_call(self, path: str, body: dict) -> dict | None:
        if path == "/users":
            if domain_of(body["user"]) != self.domain or body["user"] in self.users:
                raise ValueError(f"cannot register {body['user']!r} here")
            self.users[body["user"]] = "active"
        elif path == "/users/delete":
            self.users[body["user"]] = "deleted"
            for uri in [uri for uri, c in self.clients.items() if c.user == body["user"]]:
                del self.clients[uri]
        elif path == "/clients":
            if self.users.get(body["user"]) != "active" or body["client"] in self.clients:
                raise ValueError(f"cannot register client {body['client']!r}")
            self.clients[body["client"]] = Client(body["user"])
        elif path == "/clients/delete":
            self.clients.pop(body["client"], None)
        elif path == "/keypackages":
            return {"held": self.upload(body)}
        elif path == "/forward":
            return await self.forward(body)
        elif path == "/fetch":
            client = self.clients[body["client"]]
            inbox, client.inbox = client.inbox, []
            return {"deliveries": [{"room": room, "fanout": b64(data)} for room, data in inbox]}
        return None

    def upload(self, body: dict) -> int:
        """Store a client's one-time KeyPackages (``replace``: instead of the unclaimed ones) and set or,
        when absent, withdraw its last-resort one; returns how many one-time ones it now has."""
        client = self.clients[body["client"]]
        one_time = [decode_key_package(base64.b64decode(raw)) for raw in body.get("keyPackages", [])]
        last_resort = [decode_key_package(base64.b64decode(body["lastResort"]))] if body.get("lastResort") else []
        kept = [s for s in client.key_packages if not s.last_resort and not body.get("replace")]
        client.key_packages = kept + [StoredKeyPackage(kp, is_last_resort(kp)) for kp in one_time] + [
            StoredKeyPackage(kp, True) for kp in last_resort]
        return sum(not s.last_resort for s in client.key_packages)

    async def forward(self, body: dict) -> dict:
        """One request of a local client to the room's hub; the hub's answer as it came."""
        endpoint, room = body["endpoint"], body["room"]
        if endpoint not in FORWARDED or body["client"] not in self.clients:
            raise ValueError(f"cannot forward {endpoint!r} for {body['client']!r}")
        hub = domain_of(room)
        if hub is None:
            raise ValueError(f"{room!r} names no hub")
        value = body["target"] if endpoint == "keyMaterial" else room
        try:
            reply = await self.mimi.call(self.authority(hub), endpoint, value, base64.b64decode(body["body"]))
        except PeerError as exc:
            return {"status": 0, "body": "", "detail": str(exc)}
        return {"status": reply.status, "body": b64(reply.body), "detail": ""}


def signature_ok(req: KeyMaterialRequest) -> bool:
    """-06 §5.2 names no signature scheme: accept one that verifies under any acceptable cipher suite's."""
    for suite in dict.fromkeys(s for s in (req.acceptableCiphersuites or [1]) if 1 <= s <= 7):
        try:
            if cipher_suite(suite).verify_with_label(bytes(req.requesterSignatureKey), "KeyMaterialRequestTBS",
                                                     req.tbs().encode(), bytes(req.key_material_request_signature)):
                return True
        except ValueError:
            continue
    return False


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def load_routes(sut_dir: str | None) -> dict[str, str]:
    """The suite's hand-off: ``reference-peers.yaml`` maps each reference domain (and ``*.ref.test``) to
    the one address where the suite's gateway listens."""
    if not sut_dir or not (Path(sut_dir) / "reference-peers.yaml").is_file():
        return {}
    return {str(k).lower(): str(v) for k, v in yaml.safe_load((Path(sut_dir) / "reference-peers.yaml").read_text()).items()}


async def serve(options: argparse.Namespace) -> None:
    provider_state = StoreAndForward(options.domain, load_routes(options.sut_dir), options.cert, options.key,
                                     options.trust)
    provider = Provider(options.domain, options.cert, options.key)
    provider.register("keyMaterial", provider_state.key_material)
    provider.register("notify", provider_state.notify)
    provider.register("requestConsent", provider_state.consent)
    provider.register("updateConsent", provider_state.consent)
    host, _, port = options.listen.rpartition(":")
    mimi = MimiServer([provider], options.trust, host=host, port=int(port))
    api_app = web.Application()
    for path in API:
        api_app.router.add_post(path, provider_state.api)
    api_runner = web.AppRunner(api_app, access_log=None)
    await api_runner.setup()
    api_host, _, api_port = options.api.rpartition(":")
    await mimi.start()
    await web.TCPSite(api_runner, api_host, int(api_port)).start()
    print(f"serving {options.domain} on {options.listen}, client API on http://{options.api}", flush=True)
    stopped = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stopped.set)
    await stopped.wait()
    await api_runner.cleanup()
    await mimi.stop()
    await provider_state.mimi.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domain", required=True, help="the provider domain served")
    parser.add_argument("--cert", required=True, help="certificate (PEM) naming the domain")
    parser.add_argument("--key", required=True, help="its private key (PEM)")
    parser.add_argument("--trust", default=os.environ.get("MIMI_CONFORMANCE_SUITE_CA"),
                        help="CA (PEM) of the other providers, as servers and as clients")
    parser.add_argument("--sut-dir", default=os.environ.get("MIMI_CONFORMANCE_SUT_DIR"),
                        help="folder with reference-peers.yaml (where other providers are reached)")
    parser.add_argument("--listen", default="127.0.0.1:8443", help="MIMI over HTTPS: HOST:PORT")
    parser.add_argument("--api", default="127.0.0.1:8481", help="the client-to-server API: HOST:PORT (loopback)")
    options = parser.parse_args(argv)
    if not options.trust:
        parser.error("--trust (or MIMI_CONFORMANCE_SUITE_CA) is required")
    logging.basicConfig(level=logging.INFO)  # the MIMI layer logs each request it refuses, and why
    asyncio.run(serve(options))


if __name__ == "__main__":
    main()
