"""createRoom with a room policy (room-policy-04 in the contract's JSON form): the hub enforces it,
getRoom reports it, and what the reference peer cannot host is refused as policy-unsupported."""

from __future__ import annotations

import asyncio

import httpx
from peer_world import control_listeners, poll, world
from test_peer_control_http import _joined, seg

A, B, C = "a.example", "b.example", "c.example"

# Members may not send; only admins add participants; at most two users in the room.
QUIET_ROOM = {
    "roles": [
        {"index": 0, "name": "no-participant", "capabilities": [], "maxActiveParticipants": 0},
        {"index": 1, "name": "banned", "capabilities": [], "maxActiveParticipants": 0},
        {"index": 2, "name": "member", "capabilities": ["canReceiveMessage", "canRemoveSelf"]},
        {
            "index": 3,
            "name": "admin",
            "capabilities": ["canSendMessage", "canReceiveMessage", "canAddParticipant", "canRemoveParticipant"],
            "authorizedRoleChanges": [{"from": 0, "to": [2, 3]}, {"from": 2, "to": [0]}],
        },
    ],
    "base": {"maxUsers": 2},
}


def test_a_room_policy_is_reported_and_enforced(pki):
    asyncio.run(_policy(pki))


async def _policy(pki):
    async with world(pki, (A, B, C)) as w, control_listeners(w, validate_responses=True) as (http, url):

        async def call(domain, method, path, expect, **kwargs):
            reply: httpx.Response = await http.request(method, url[domain] + path, **kwargs)
            assert reply.status_code == expect, (method, path, reply.status_code, reply.text)
            return reply.json()

        alice = await call(A, "POST", "/v1/users", 201, json={"user": "alice"})
        bob = await call(B, "POST", "/v1/users", 201, json={"user": "bob"})
        carol = await call(C, "POST", "/v1/users", 201, json={"user": "carol"})
        room = (await call(A, "POST", "/v1/rooms", 201, json={"creator": alice["user"], "policy": QUIET_ROOM}))["room"]
        reported = (await call(A, "GET", f"/v1/rooms/{seg(room)}", 200))["policy"]
        assert reported["base"]["maxUsers"] == 2
        assert [r["name"] for r in reported["roles"]] == ["no-participant", "banned", "member", "admin"]
        assert "canSendMessage" not in reported["roles"][2]["capabilities"]

        added = await call(A, "POST", f"/v1/rooms/{seg(room)}/participants", 200,
                           json={"actor": alice["user"], "user": bob["user"]})
        assert added["outcome"] == "accepted"
        bob_c = bob["clients"][0]
        await poll(lambda: _joined(w.providers[B], room, bob_c), what="bob joined")

        # max_users = 2: a third user is refused by the hub (POLICY-BASE-MAX-USERS).
        third = await call(A, "POST", f"/v1/rooms/{seg(room)}/participants", 200,
                           json={"actor": alice["user"], "user": carol["user"]})
        assert third["outcome"] == "rejectedByHub", third
        # A member without canSendMessage is refused by the hub (POLICY-CAP-SEND-MESSAGE).
        sent = await call(B, "POST", f"/v1/rooms/{seg(room)}/messages", 200,
                          json={"from": bob_c, "content": {"base64": "aGk="}})
        assert sent["outcome"] == "rejectedByHub", sent
        # The admin may send.
        sent = await call(A, "POST", f"/v1/rooms/{seg(room)}/messages", 200,
                          json={"from": alice["clients"][0], "content": {"base64": "aGk="}})
        assert sent["outcome"] == "accepted", sent


def test_a_policy_the_reference_peer_cannot_host_is_refused(pki):
    asyncio.run(_unsupported(pki))


async def _unsupported(pki):
    async with world(pki, (A,)) as w, control_listeners(w, validate_responses=True) as (http, url):
        await http.post(url[A] + "/v1/users", json={"user": "alice"})
        for policy in ({"minimalMetadata": True}, {"base": {"parentDependent": True}},
                       {"roles": [{"index": 1, "name": "jail", "capabilities": []}]}):
            reply = await http.post(url[A] + "/v1/rooms", json={"creator": "mimi://a.example/u/alice", "policy": policy})
            assert reply.status_code == 422, (policy, reply.status_code, reply.text)
            assert reply.headers["content-type"].startswith("application/problem+json")
        assert (await http.get(url[A] + "/v1/rooms")).json()["rooms"] == []
