"""A hub (a.example) and two followers (b.example, c.example) as ReferenceProviders over real mutual
TLS on loopback, driven only through their control backends: the room lifecycle of issue 4 and the
fan-out guarantees of draft-ietf-mimi-protocol-06 §5.5."""

from __future__ import annotations

import asyncio
import copy
import pickle

from peer_world import poll, world

from reference_peer.control.errors import ControlError
from reference_peer.server.client import MimiClient
from reference_peer.wire.identity import IdentifierUri
from reference_peer.wire.mimi import (
    ConsentEntry,
    ConsentOperation,
    FanoutMessage,
    GroupInfoCode,
    GroupInfoResponse,
    IdentifierQueryCode,
    IdentifierRequest,
    IdentifierResponse,
    KeyMaterialRequest,
    Protocol,
    QueryElement,
    SearchIdentifierType,
    SubmitMessageResponse,
    SubmitResponseCode,
    UpdateResponseCode,
    UpdateRoomResponse,
)
from reference_peer.wire.mls import AppDataDictionary, WireFormat

A, B, C = "a.example", "b.example", "c.example"
ROLE_ADMIN = 3
MLS10 = {"protocol": Protocol.mls10}


def notify_bodies(world, destination: str, *, since: int = 0) -> list[bytes]:
    return [r.item.body for r in world.providers[A].state.outbox.records(destination=destination)][since:]


def welcomes_in(bodies: list[bytes]) -> int:
    return sum(
        m.message.wire_format == WireFormat.mls_welcome
        for body in bodies
        for m in FanoutMessage.decode_sequence(body, scope=MLS10)
    )


async def texts(backend, client: str) -> list[str]:
    return [item["content"]["text"] for item in (await backend.listReceivedMessages(client))["items"]]


async def wait_texts(backend, client: str, expected: list[str], what: str) -> None:
    async def check():
        return await texts(backend, client) == expected

    try:
        await poll(check, what=what)
    except AssertionError:
        raise AssertionError(f"{what}: {client} has {await texts(backend, client)}, expected {expected}") from None


async def outbox_settled(world) -> bool:
    return not world.providers[A].state.outbox.records(state="pending")


def test_room_lifecycle_between_three_providers(pki):
    asyncio.run(_lifecycle(pki))


async def _lifecycle(pki):
    async with world(pki) as w:
        ca, cb, cc = w.backends[A], w.backends[B], w.backends[C]
        alice = await ca.createUser({"user": "alice"})
        bob = await cb.createUser({"user": "bob"})
        carol = await cc.createUser({"user": "carol"})
        dave = await cc.createUser({"user": "dave"})
        alice_c, bob_c, carol_c, dave_c = (u["clients"][0] for u in (alice, bob, carol, dave))

        room = (await ca.createRoom({"creator": alice["user"], "room": "clubhouse"}))["room"]
        assert room == "mimi://a.example/r/clubhouse"

        # Add bob (b.example): the Welcome goes to b only; c has no participant and gets nothing.
        added = await ca.addParticipant(room, {"actor": alice["user"], "user": bob["user"], "role": ROLE_ADMIN})
        assert added["outcome"] == "accepted", added
        await poll(lambda: _epoch_is(cb, room, 1), what="bob's client joined at epoch 1")
        assert welcomes_in(notify_bodies(w, B)) == 1
        assert notify_bodies(w, C) == []  # PROTO-FANOUT-ONLY-ACTIVE-PROVIDERS

        # Bob (a follower) adds carol of a third provider: keyMaterial goes via the hub, which
        # records KeyPackageRef -> c.example (PROTO-KEYMAT-VIA-HUB, PROTO-KEYMAT-HUB-RELAY).
        b_sent_before = len(notify_bodies(w, B))
        added = await cb.addParticipant(room, {"actor": bob_c, "user": carol["user"]})
        assert added["outcome"] == "accepted", added
        assert added["keyMaterial"]["userStatus"] == "success"
        assert C in w.providers[A].hub_rooms[room].kp_providers.values()
        await poll(lambda: _epoch_is(cc, room, 2), what="carol's client joined at epoch 2")
        assert welcomes_in(notify_bodies(w, C)) == 1
        await poll(lambda: outbox_settled(w), what="hub outbox drained")
        assert welcomes_in(notify_bodies(w, B, since=b_sent_before)) == 0  # PROTO-FANOUT-WELCOME-ROUTING

        # Messages in every direction; nobody receives their own (PROTO-FANOUT-NOT-ECHOED-REQUIRED).
        for backend, sender, text in ((ca, alice_c, "from alice"), (cb, bob_c, "from bob"), (cc, carol_c, "from carol")):
            sent = await backend.sendMessage(room, {"from": sender, "content": {"text": text}})
            assert sent["outcome"] == "accepted", sent
            assert sent["epoch"] == 2
        await wait_texts(ca, alice_c, ["from bob", "from carol"], "alice reads")
        await wait_texts(cb, bob_c, ["from alice", "from carol"], "bob reads")
        await wait_texts(cc, carol_c, ["from alice", "from bob"], "carol reads")

        # A byte-identical duplicate /notify is answered 201 and processed once.
        duplicate = notify_bodies(w, B)[-1]
        hub_files = pki.providers[A]
        async with MimiClient(A, hub_files.cert, hub_files.key, pki.ca_cert, resolve={B: "127.0.0.1"}) as as_hub:
            reply = await as_hub.call(w.server.authority(B), "notify", room, duplicate)
        assert reply.status == 201  # PROTO-FANOUT-DUP-NOTIFY-201
        await ca.sendMessage(room, {"from": alice_c, "content": {"text": "sentinel"}})
        await wait_texts(cb, bob_c, ["from alice", "from carol", "sentinel"], "bob reads the duplicate once")

        # Remove carol: her client learns it and stops receiving; the hub refuses her old state.
        carol_before_removal = copy.deepcopy(w.providers[C].members[(room, carol_c)])
        removed = await ca.removeParticipant(room, carol["user"], actor=alice["user"])
        assert removed["outcome"] == "accepted", removed
        await poll(lambda: _inactive(w.providers[C], room, carol_c), what="carol's client processed its removal")
        await poll(lambda: outbox_settled(w), what="hub outbox drained")
        to_c = len(notify_bodies(w, C))
        await ca.sendMessage(room, {"from": alice_c, "content": {"text": "after carol"}})
        await wait_texts(cb, bob_c, ["from alice", "from carol", "sentinel", "after carol"], "bob reads")
        await poll(lambda: outbox_settled(w), what="hub outbox drained")
        assert len(notify_bodies(w, C)) == to_c  # no fan-out to a provider without active participants
        assert await texts(cc, carol_c) == ["from alice", "from bob", "sentinel"]
        stale = carol_before_removal.send(b"still here?")
        refused = await w.providers[C].send_submit(room, stale)
        assert refused.submit is not None and refused.submit.statusCode != SubmitResponseCode.accepted
        try:
            await cc.sendMessage(room, {"from": carol_c, "content": {"text": "nope"}})
        except ControlError as exc:
            assert exc.status == 409
        else:
            raise AssertionError("a removed client could still send through the control API")

        # Bob leaves by himself: proposals only, he stays until alice's next commit (adding dave)
        # includes them (the hub forces cached self-leave proposals into the next commit).
        left = await cb.leaveRoom(room, {"actor": bob["user"]})
        assert left["outcome"] == "accepted", left
        assert any(p["user"] == bob["user"] for p in (await ca.getRoom(room))["participants"])
        added = await ca.addParticipant(room, {"actor": alice_c, "user": dave["user"]})
        assert added["outcome"] == "accepted", added
        participants = {p["user"] for p in (await ca.getRoom(room))["participants"]}
        assert participants == {alice["user"], dave["user"]}, participants
        await poll(lambda: _inactive(w.providers[B], room, bob_c), what="bob's client processed its departure")
        await poll(lambda: _epoch_is(cc, room, 4, client=dave_c), what="dave joined")
        await ca.sendMessage(room, {"from": alice_c, "content": {"text": "bye bob"}})
        await wait_texts(cc, dave_c, ["bye bob"], "dave reads")
        await poll(lambda: outbox_settled(w), what="hub outbox drained")
        assert "bye bob" not in await texts(cb, bob_c)


async def _epoch_is(backend, room: str, epoch: int, *, client: str | None = None) -> bool:
    provider = backend.provider
    if client is not None:
        member = provider.active_member(room, client)
        return member is not None and member.epoch == epoch
    return any(provider.active_member(r, c) and m.epoch == epoch for (r, c), m in provider.members.items() if r == room)


async def _inactive(provider, room: str, client: str) -> bool:
    return provider.active_member(room, client) is None


def test_malformed_and_unauthorised_requests_get_4xx(pki):
    asyncio.run(_malformed(pki))


async def _malformed(pki):
    async with world(pki, (A, B)) as w:
        alice = await w.backends[A].createUser({"user": "alice"})
        room = (await w.backends[A].createRoom({"creator": alice["user"], "room": "r1"}))["room"]
        files = pki.providers[B]
        async with MimiClient(B, files.cert, files.key, pki.ca_cert, resolve={A: "127.0.0.1"}) as as_b:
            hub = w.server.authority(A)
            assert (await as_b.call(hub, "notify", "mimi://b.example/r/x", b"\x00garbage")).status == 400
            assert (await as_b.call(hub, "notify", room, b"")).status == 403  # b is not the hub of a's room
            assert (await as_b.call(hub, "update", "mimi://a.example/r/none", b"\x01\x02")).status in (400, 404)
            # The room logic answers undecodable handshakes and messages with in-body refusal codes.
            update = await as_b.call(hub, "update", room, b"\xff\xff\xff")
            assert update.status == 200
            assert UpdateRoomResponse.decode(update.body).responseCode != UpdateResponseCode.success
            submit = await as_b.call(hub, "submitMessage", room, b"\x01")
            assert submit.status == 200
            assert SubmitMessageResponse.decode(submit.body).statusCode == SubmitResponseCode.notAllowed
            info = await as_b.call(hub, "groupInfo", "mimi://a.example/r/none", b"")
            assert info.status == 200  # notAuthorized, so that room existence does not leak
            assert GroupInfoResponse.decode(info.body).status == GroupInfoCode.notAuthorized
            assert (await as_b.call(hub, "proxyDownload", "https://evil.example/x", b"")).status == 403
            member = w.providers[A].members[(room, alice["clients"][0])]
            body = KeyMaterialRequest.decode(w.providers[A].key_material_request(member, room, alice["user"]))
            forged = body.replace(key_material_request_signature=b"\x00" * 64).encode()
            assert (await as_b.call(hub, "keyMaterial", alice["user"], forged)).status == 400
            assert (await as_b.call(hub, "keyMaterial", alice["user"], b"\x01")).status == 400
        assert not [r for r in w.server.refusals if r.status >= 500]


def test_state_survives_a_restart(pki, tmp_path):
    asyncio.run(_restart(pki, tmp_path))


async def _restart(pki, tmp_path):
    async with world(pki, (A, B), storage=tmp_path) as w:
        alice = await w.backends[A].createUser({"user": "alice"})
        bob = await w.backends[B].createUser({"user": "bob"})
        room = (await w.backends[A].createRoom({"creator": alice["user"], "room": "durable"}))["room"]
        assert (await w.backends[A].addParticipant(room, {"actor": alice["user"], "user": bob["user"]}))["outcome"] == "accepted"
        await poll(lambda: _epoch_is(w.backends[B], room, 1), what="bob joined")
    async with world(pki, (A, B), storage=tmp_path) as w:  # new processes' worth of objects, same files
        bob_c, alice_c = bob["clients"][0], alice["clients"][0]
        assert w.providers[A].hub_rooms[room].epoch == 1
        sent = await w.backends[B].sendMessage(room, {"from": bob_c, "content": {"text": "after restart"}})
        assert sent["outcome"] == "accepted", sent
        await wait_texts(w.backends[A], alice_c, ["after restart"], "alice reads after restart")
        # Group state round-trips through the reference-peer-internal format.
        group = w.providers[A].members[(room, alice_c)].group
        assert pickle.loads(pickle.dumps(group)).epoch == group.epoch
        assert type(group).from_bytes(group.to_bytes()).epoch == group.epoch


def test_quarantine_holds_a_room_until_the_user_consents(pki):
    asyncio.run(_quarantine(pki))


async def _quarantine(pki):
    async with world(pki, (A, B), consent={B: "quarantine"}) as w:
        ca, cb = w.backends[A], w.backends[B]
        alice = await ca.createUser({"user": "alice"})
        bob = await cb.createUser({"user": "bob"})
        alice_c, bob_c = alice["clients"][0], bob["clients"][0]
        room = (await ca.createRoom({"creator": alice["user"], "room": "held"}))["room"]
        assert (await ca.addParticipant(room, {"actor": alice_c, "user": bob["user"]}))["outcome"] == "accepted"
        assert (await ca.sendMessage(room, {"from": alice_c, "content": {"text": "before consent"}}))["outcome"] == "accepted"
        await poll(lambda: outbox_settled(w), what="hub outbox drained")

        # Delivered to b.example but held: bob's client has neither joined nor read anything.
        events = (await cb.listUserEvents(bob["user"]))["items"]
        assert {"type": "roomHeld", "room": room, "requester": alice["user"]} in events
        assert w.providers[B].active_member(room, bob_c) is None
        assert await texts(cb, bob_c) == []

        # Consent releases the held Welcome and message, in order, exactly once.
        await cb.grantConsent(bob["user"], {"requester": alice["user"]})
        assert w.providers[B].active_member(room, bob_c) is not None
        assert await texts(cb, bob_c) == ["before consent"]
        await ca.sendMessage(room, {"from": alice_c, "content": {"text": "after consent"}})
        await wait_texts(cb, bob_c, ["before consent", "after consent"], "bob reads after consenting")


def test_fanout_refused_with_503_is_retried_and_processed_once(pki):
    asyncio.run(_retry(pki))


async def _retry(pki):
    async with world(pki, (A, B)) as w:
        ca, cb = w.backends[A], w.backends[B]
        alice = await ca.createUser({"user": "alice"})
        bob = await cb.createUser({"user": "bob"})
        alice_c, bob_c = alice["clients"][0], bob["clients"][0]
        room = (await ca.createRoom({"creator": alice["user"], "room": "retry"}))["room"]
        assert (await ca.addParticipant(room, {"actor": alice_c, "user": bob["user"]}))["outcome"] == "accepted"
        await poll(lambda: _epoch_is(cb, room, 1), what="bob joined")

        w.providers[B].refuse_notify_status = 503
        for text in ("one", "two"):
            assert (await ca.sendMessage(room, {"from": alice_c, "content": {"text": text}}))["outcome"] == "accepted"
        hub_outbox = w.providers[A].state.outbox

        async def refused_twice():
            pending = hub_outbox.records(state="pending", destination=B)
            return pending and pending[0].attempts >= 2 and pending[0].last_status == 503

        await poll(refused_twice, what="the hub retries a refused /notify (PROTO-FANOUT-RETRY-NON-201)")
        assert await texts(cb, bob_c) == []
        w.providers[B].refuse_notify_status = None
        await wait_texts(cb, bob_c, ["one", "two"], "bob reads after the follower recovers")  # in order, once
        await poll(lambda: outbox_settled(w), what="hub outbox drained")
        assert await texts(cb, bob_c) == ["one", "two"]


def test_consent_and_identifier_query_between_providers(pki):
    asyncio.run(_consent_and_query(pki))


async def _consent_and_query(pki):
    async with world(pki, (A, B)) as w:
        ca, cb = w.backends[A], w.backends[B]
        alice = await ca.createUser({"user": "alice"})
        bob = await cb.createUser({"user": "bob"})

        # bob asks alice for consent: requestConsent travels through b's outbox to a.example.
        await cb.requestConsent(bob["user"], {"target": alice["user"]})

        async def alice_sees_request():
            events = (await ca.listUserEvents(alice["user"]))["items"]
            return {"type": "consentRequested", "requester": bob["user"]} in events

        await poll(alice_sees_request, what="alice's consentRequested event")
        # alice grants: updateConsent goes back to b.example and shows in bob's events.
        await ca.grantConsent(alice["user"], {"requester": bob["user"]})

        async def bob_sees_grant():
            events = (await cb.listUserEvents(bob["user"]))["items"]
            return {"type": "consentGranted", "target": alice["user"]} in events

        await poll(bob_sees_grant, what="bob's consentGranted event")

        files = pki.providers[B]
        async with MimiClient(B, files.cert, files.key, pki.ca_cert, resolve={A: "127.0.0.1"}) as as_b:
            hub = w.server.authority(A)
            # A requester of a third provider cannot be asserted by b.example (§5.7): 403.
            forged = ConsentEntry(
                consentOperation=ConsentOperation.request,
                requesterUri=IdentifierUri(uri=b"mimi://c.example/u/mallory"),
                targetUri=IdentifierUri(uri=alice["user"].encode()),
                roomId=None,
                clientKeyPackages=None,
                consent_extensions=AppDataDictionary(component_data=[]),
            )
            assert (await as_b.call(hub, "requestConsent", A, forged.encode())).status == 403
            # identifierQuery for alice's handle finds her URI.
            query = IdentifierRequest(
                query_elements=[QueryElement(searchType=SearchIdentifierType.handle, searchValue=b"alice")],
                id_request_extensions=AppDataDictionary(component_data=[]),
            )
            reply = await as_b.call(hub, "identifierQuery", A, query.encode())
        assert reply.status == 200
        answer = IdentifierResponse.decode(reply.body)
        assert answer.responseCode == IdentifierQueryCode.success
        assert [bytes(u.uri).decode() for u in answer.uri] == [alice["user"]]


def test_a_last_resort_key_package_joins_several_rooms(pki):
    asyncio.run(_last_resort(pki))


async def _last_resort(pki):
    async with world(pki, (A, B)) as w:
        ca, cb = w.backends[A], w.backends[B]
        alice = await ca.createUser({"user": "alice"})
        bob = await cb.createUser({"user": "bob"})
        bob_c = bob["clients"][0]
        only_spare = await cb.publishKeyPackages(bob_c, {"count": 0, "replace": True})
        assert only_spare == {"client": bob_c, "published": 0, "available": 0, "lastResort": True}
        for name in ("one", "two"):
            room = (await ca.createRoom({"creator": alice["user"], "room": name}))["room"]
            added = await ca.addParticipant(room, {"actor": alice["user"], "user": bob["user"]})
            assert added["outcome"] == "accepted", added
            await poll(lambda room=room: _epoch_is(cb, room, 1, client=bob_c), what=f"bob joined {name}")


def test_a_new_client_joins_the_users_rooms_by_external_commit(pki):
    asyncio.run(_external_join(pki))


async def _external_join(pki):
    async with world(pki, (A, B)) as w:
        ca, cb = w.backends[A], w.backends[B]
        alice = await ca.createUser({"user": "alice"})
        bob = await cb.createUser({"user": "bob"})
        alice_c, bob_1 = alice["clients"][0], bob["clients"][0]
        room = (await ca.createRoom({"creator": alice["user"], "room": "phones"}))["room"]
        assert (await ca.addParticipant(room, {"actor": alice_c, "user": bob["user"]}))["outcome"] == "accepted"
        await poll(lambda: _epoch_is(cb, room, 1, client=bob_1), what="bob joined")

        # groupInfo from the hub over MIMI, then an external commit to /update (§5.6).
        created = await cb.addClient(bob["user"], {"client": "tablet"})
        bob_2 = created["client"]
        assert created["rooms"] == [
            {"room": room, "outcome": "accepted", "epoch": 2, "acceptedAt": created["rooms"][0]["acceptedAt"]}
        ], created
        participants = (await ca.getRoom(room))["participants"]
        assert sorted(next(p["clients"] for p in participants if p["user"] == bob["user"])) == [bob_1, bob_2]
        await poll(lambda: _epoch_is(cb, room, 2, client=bob_1), what="bob's first client processed the join")
        await ca.sendMessage(room, {"from": alice_c, "content": {"text": "hi both"}})
        await wait_texts(cb, bob_2, ["hi both"], "the new client reads")
        await wait_texts(cb, bob_1, ["hi both"], "the first client reads")
        await cb.sendMessage(room, {"from": bob_2, "content": {"text": "from the tablet"}})
        await wait_texts(ca, alice_c, ["from the tablet"], "alice reads the new client")
        # On the hub itself the same join is answered in-process.
        spare = await ca.addClient(alice["user"], {"client": "spare"})
        assert [(r["room"], r["outcome"], r["epoch"]) for r in spare["rooms"]] == [(room, "accepted", 3)], spare
        await poll(lambda: _epoch_is(cb, room, 3, client=bob_2), what="bob's tablet processed alice's new client")
        await cb.sendMessage(room, {"from": bob_2, "content": {"text": "hello spare"}})
        await wait_texts(ca, spare["client"], ["hello spare"], "alice's new client reads")
        assert (await ca.addClient(alice["user"], {"client": "cold", "joinRooms": False}))["rooms"] == []
