"""The reference-peer-only introspection routes the suite reads from its own peers: the traffic log
(exact bytes each way), member and hub state, notify refusals, active faults."""

from __future__ import annotations

import asyncio
import base64
import pickle
import time

from peer_world import control_listeners, poll, world

from reference_peer.faults import REGISTRY, overrides_for
from reference_peer.server.traffic import TrafficLog

A, B = "a.example", "b.example"


def test_traffic_log_is_bounded_and_paged() -> None:
    log = TrafficLog(capacity=3)
    for i in range(5):
        log.add("in", endpoint="notify", peer=A, value=f"v{i}", request=bytes([i]), status=201)
    items, last = log.since(0)
    assert [i["value"] for i in items] == ["v2", "v3", "v4"] and last == 5
    items, last = log.since(3, limit=1)
    assert [i["value"] for i in items] == ["v3"] and last == 4
    assert log.since(5) == ([], 5)
    assert log.since(2**62) == ([], 5)  # a mark: the newest sequence number
    assert base64.b64decode(log.since(4)[0][0]["request"]) == b"\x04"


def test_introspection_routes_show_what_crossed_the_wire(pki):
    asyncio.run(_introspection(pki))


async def _introspection(pki):
    async with world(pki, (A, B)) as w, control_listeners(w, introspection=True) as (http, url):
        alice = (await http.post(url[A] + "/v1/users", json={"user": "alice"})).json()
        bob = (await http.post(url[B] + "/v1/users", json={"user": "bob"})).json()
        room = (await http.post(url[A] + "/v1/rooms", json={"creator": alice["user"]})).json()["room"]
        refused = await http.post(url[B] + "/x-reference/v1/refuse-notify", json={"statuses": [503]})
        assert refused.json() == {"pending": 1}
        added = await http.post(url[A] + f"/v1/rooms/{room.replace('/', '%2F').replace(':', '%3A')}/participants",
                                json={"actor": alice["user"], "user": bob["user"]})
        assert added.json()["outcome"] == "accepted", added.text

        async def notified():
            page = (await http.get(url[B] + "/x-reference/v1/traffic", params={"after": 0})).json()
            return [i for i in page["items"] if i["endpoint"] == "notify" and i["status"] == 201]

        delivered = await poll(notified, what="the Welcome delivered after one refusal")
        page = (await http.get(url[B] + "/x-reference/v1/traffic")).json()
        statuses = [i["status"] for i in page["items"] if i["endpoint"] == "notify"]
        assert statuses[:2] == [503, 201]  # the refusal, then the hub's retry
        sent = (await http.get(url[A] + "/x-reference/v1/traffic")).json()["items"]
        out = [i for i in sent if i["direction"] == "out" and i["endpoint"] == "notify" and i["status"] == 201]
        assert out[0]["request"] == delivered[0]["request"]  # the same bytes on both sides
        member = await http.get(url[B] + "/x-reference/v1/member-state", params={"room": room, "client": bob["clients"][0]})
        assert pickle.loads(base64.b64decode(member.json()["pickle"])).group.epoch == 1
        hub = await http.get(url[A] + "/x-reference/v1/hub-state", params={"room": room})
        assert pickle.loads(base64.b64decode(hub.json()["pickle"])).epoch == 1
        assert (await http.get(url[A] + "/x-reference/v1/hub-state", params={"room": "mimi://a.example/r/none"})).status_code == 404
        assert (await http.get(url[A] + "/x-reference/v1/traffic", params={"after": "x"})).status_code == 400
        signer, other = url[A] + "/x-reference/v1/group-info-signer", w.providers[B].identity  # sign as B's entry
        asked = {"room": room, "signatureKey": base64.b64encode(other.signature_priv).decode(),
                 "sender": base64.b64encode(other.external_sender.encode()).decode()}
        assert (await http.post(signer, json=asked)).status_code == 200
        assert w.providers[A].hub_rooms[room].identity.external_sender == other.external_sender
        assert (await http.post(signer, json={"room": room})).status_code == 200  # its own key again
        assert w.providers[A].hub_rooms[room].identity == w.providers[A].identity
        assert (await http.post(signer, json={**asked, "room": "mimi://a.example/r/none"})).status_code == 404
        assert (await http.post(signer, json={"room": room, "signatureKey": "x"})).status_code == 400
        knob = url[B] + "/x-reference/v1/refuse-notify"
        assert (await http.post(knob, json={"statuses": [100]})).status_code == 400  # 1xx is never a final answer
        assert (await http.post(knob, json={"statuses": [204], "body": "x"})).status_code == 400
        assert (await http.post(knob, json={"statuses": [200, 202], "body": "x"})).json() == {"pending": 2}
        assert (await http.post(knob, json={"statuses": []})).json() == {"pending": 0}
        name = next(iter(REGISTRY))
        assert (await http.get(url[A] + "/x-reference/v1/faults")).json() == {"active": []}
        with w.providers[A].overrides.during(overrides_for([name])):  # A's own faults, not B's
            assert (await http.get(url[A] + "/x-reference/v1/faults")).json() == {"active": [name]}
            assert (await http.get(url[B] + "/x-reference/v1/faults")).json() == {"active": []}


def test_transport_problems_name_the_rule_a_peer_broke(pki):
    asyncio.run(_transport_problems(pki))


async def _transport_problems(pki):
    async with world(pki, (A, B)) as w, control_listeners(w, introspection=True) as (http, url):
        alice = (await http.post(url[A] + "/v1/users", json={"user": "alice"})).json()
        bob = (await http.post(url[B] + "/v1/users", json={"user": "bob"})).json()
        room = (await http.post(url[A] + "/v1/rooms", json={"creator": alice["user"]})).json()["room"]
        started = time.time()
        with w.providers[A].overrides.during(overrides_for(["outgoing-from-localpart"])):  # From: server@a.example
            added = await http.post(
                url[A] + f"/v1/rooms/{room.replace('/', '%2F').replace(':', '%3A')}/participants",
                json={"actor": alice["user"], "user": bob["user"]},
            )
        assert added.json()["outcome"] != "accepted", added.text
        problems = (await http.get(url[B] + "/x-reference/v1/violations", params={"since": started})).json()
        assert problems["refused"], problems
        refusal = problems["refused"][0]
        assert refusal["requirement"] == "PROTO-TRANSPORT-FROM-LOCALPART-MIMI"
        assert refusal["from_header"] == f"server@{A}" and A in refusal["peer_cert_names"]
        later = await http.get(url[B] + "/x-reference/v1/violations", params={"since": time.time() + 60})
        assert later.json() == {"refused": [], "failed": [], "observed": []}
        assert (await http.get(url[B] + "/x-reference/v1/violations?since=soon")).status_code == 400
