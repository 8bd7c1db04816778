"""schemathesis against the REAL control API (issue 4, item 4): ``make_control_app(ReferenceBackend(provider),
validate_responses=True)`` in front of a real ReferenceProvider (in-memory storage) for ``sut.example``,
with a second one, ``peer.example``, behind the same mTLS MimiServer, so that room operations travel
as real MIMI traffic.

The world is seeded with the objects the contract's examples name (alice with clients phone and
laptop, dave, bob with client desktop, carol, the room clubhouse hosted here with bob in it, and the
room lounge hosted by peer.example with alice in it): the examples reach existing objects and the
success paths, not only the 404s. Every operation in getInfo's supportedOperations gets its examples,
then EXAMPLES_PER_OPERATION random schema-valid requests (derandomized) in which path parameters, query
parameters and body members that name users, clients and rooms are, at random, pointed at the seeded
objects; each batch on a freshly seeded world.
Checks: never a 5xx, only documented status codes and media types, bodies and headers matching the
schema. Explicit happy paths (the key flows) go through the same checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from aiohttp import web
from fuzz_helpers import STATS
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from peer_world import poll, world
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from reference_peer.control import load_openapi
from reference_peer.control.app import make_control_app
from reference_peer.control.backend import IMPLEMENTED
from reference_peer.pki import write_test_pki

SUT, PEER = "sut.example", "peer.example"
LOOPBACK = "127.0.0.1"
EXAMPLES_PER_OPERATION = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
DOCUMENT = load_openapi()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = [
    (operation["operationId"], path, method.upper())
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    if isinstance(operation, dict) and operation.get("operationId") in IMPLEMENTED
]

ALICE, DAVE = f"mimi://{SUT}/u/alice", f"mimi://{SUT}/u/dave"
ALICE_PHONE, ALICE_LAPTOP = f"mimi://{SUT}/d/alice/phone", f"mimi://{SUT}/d/alice/laptop"
BOB, CAROL, BOB_DESKTOP = f"mimi://{PEER}/u/bob", f"mimi://{PEER}/u/carol", f"mimi://{PEER}/d/bob/desktop"
CLUBHOUSE, LOUNGE = f"mimi://{SUT}/r/clubhouse", f"mimi://{PEER}/r/lounge"

# Operations whose examples (on the seeded world) must succeed at least once, or the run proved little.
MUST_SUCCEED = {
    "getInfo", "createUser", "deleteUser", "addClient", "createRoom", "listRooms", "getRoom", "addParticipant",
    "sendMessage", "listReceivedMessages", "listUserEvents", "getConsentState",
}


@pytest.fixture(scope="module")
def sut_pki(tmp_path_factory):
    _, files = write_test_pki(tmp_path_factory.mktemp("sut-pki"), [SUT, PEER])
    return files


class SeededSut:
    """The two-provider world on a loop in a background thread, seeded, with sut.example's control app
    served on a loopback port of that loop."""

    def __init__(self, pki) -> None:
        self.pki = pki
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="control-sut", daemon=True)
        self.stack = contextlib.AsyncExitStack()

    def run(self, coro, timeout: float = 60.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> SeededSut:
        self.thread.start()
        try:
            self.run(self._start())
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self.run(self.stack.aclose())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    async def _start(self) -> None:
        w = await self.stack.enter_async_context(world(self.pki, (SUT, PEER)))
        self.world = w
        await seed(w)
        runner = web.AppRunner(make_control_app(w.backends[SUT], validate_responses=True))
        await runner.setup()
        self.stack.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, LOOPBACK, 0).start()
        self.base_url = f"http://{LOOPBACK}:{runner.addresses[0][1]}"


async def seed(w) -> None:
    sut, peer = w.backends[SUT], w.backends[PEER]
    await sut.createUser({"user": "alice", "clients": 0})
    for name in ("phone", "laptop"):
        await sut.addClient(ALICE, {"client": name, "joinRooms": False})
    await sut.createUser({"user": "dave"})
    await peer.createUser({"user": "bob", "clients": 0})
    await peer.addClient(BOB, {"client": "desktop", "joinRooms": False})
    await peer.createUser({"user": "carol"})
    await sut.createRoom({"creator": ALICE_PHONE, "room": "clubhouse"})
    assert (await sut.addParticipant(CLUBHOUSE, {"actor": ALICE_PHONE, "user": BOB, "role": 3}))["outcome"] == "accepted"
    await peer.createRoom({"creator": BOB_DESKTOP, "room": "lounge"})
    assert (await peer.addParticipant(LOUNGE, {"actor": BOB_DESKTOP, "user": ALICE}))["outcome"] == "accepted"

    async def joined() -> bool:
        return all(
            p.active_member(room, client) is not None
            for p, room, client in ((w.providers[PEER], CLUBHOUSE, BOB_DESKTOP), (w.providers[SUT], LOUNGE, ALICE_PHONE))
        )

    await poll(joined, what="bob in the clubhouse and alice in the lounge")


# Values of the seeded world for path parameters, query parameters and body members of these names:
# random cases pointed at them reach the existing objects (and the paths beyond the 404s).
SEEDED_VALUES = {
    "user": [ALICE, DAVE, BOB, CAROL],
    "client": [ALICE_PHONE, ALICE_LAPTOP],
    "room": [CLUBHOUSE, LOUNGE],
    "actor": [ALICE, ALICE_PHONE, ALICE_LAPTOP],
    "creator": [ALICE, ALICE_PHONE],
    "from": [ALICE_PHONE, ALICE_LAPTOP],
    "target": [BOB, CAROL, DAVE],
    "requester": [BOB, CAROL],
}


def on_seeded_objects(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """Random schema-valid cases with, member by member, a coin deciding whether a named value is
    replaced by a seeded object's URI."""

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        case = draw(strategy)
        for name in list(case.path_parameters or {}):
            if name in SEEDED_VALUES and draw(st.booleans()):
                # Generated path parameters are already percent-encoded; ours must be too.
                case.path_parameters[name] = quote(draw(st.sampled_from(SEEDED_VALUES[name])), safe="")
        for members in (case.query, case.body):
            if isinstance(members, dict):
                for name in list(members):
                    if name in SEEDED_VALUES and draw(st.booleans()):
                        members[name] = draw(st.sampled_from(SEEDED_VALUES[name]))
        return case

    return build()


@pytest.fixture
def sut(sut_pki) -> Iterator[SeededSut]:
    with SeededSut(sut_pki) as running:
        yield running


def test_exercised_operations_are_the_supported_ones(sut: SeededSut) -> None:
    with urllib.request.urlopen(f"{sut.base_url}/v1/info", timeout=5) as answer:
        supported = json.load(answer)["supportedOperations"]
    assert sorted(supported) == sorted(op_id for op_id, _, _ in OPERATIONS)
    assert MUST_SUCCEED <= set(supported)


def _record(op_id: str, statuses: list[int], response: Any) -> None:
    statuses.append(response.status_code)
    STATS.schemathesis[op_id][response.status_code] += 1


@pytest.mark.parametrize(("op_id", "path", "method"), OPERATIONS, ids=[op_id for op_id, _, _ in OPERATIONS])
def test_operation_answers_as_documented(sut_pki, op_id: str, path: str, method: str) -> None:
    operation = SCHEMA[path][method]
    statuses: list[int] = []

    def run(strategy: Any, max_examples: int) -> None:
        # A fresh seeded world per batch: one example's deleteUser must not turn the next one's
        # success path into a 404. Inside a batch the state carries over, as it would in a run.
        with SeededSut(sut_pki) as running:

            @settings(
                max_examples=max_examples,
                deadline=None,
                database=None,
                derandomize=True,  # the same cases on every run: a failure here is reproducible
                phases=[Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def check(case: Any) -> None:
                response = case.call(base_url=running.base_url, timeout=30)
                _record(op_id, statuses, response)
                case.validate_response(response, checks=CHECKS)

            check()

    # The contract's own examples first (they name the seeded objects), then schema-valid random data.
    from_examples = SCHEMA.get_strategies_from_examples(operation)
    if from_examples:
        run(st.one_of(from_examples), 2 * len(from_examples))
    run(on_seeded_objects(operation.as_strategy()), EXAMPLES_PER_OPERATION)
    assert statuses, f"no request was sent for {op_id}"
    assert all(status < 500 for status in statuses)
    if op_id in MUST_SUCCEED:
        assert any(200 <= status < 300 for status in statuses), statuses


# -- the key happy paths, explicitly, through the same checks -----------------------------------


def _call(sut: SeededSut, op_id: str, *, path_parameters=None, query=None, body=None) -> Any:
    path, method = next((p, m) for o, p, m in OPERATIONS if o == op_id)
    operation = SCHEMA[path][method]
    kwargs: dict[str, Any] = {}
    if path_parameters is not None:
        # Explicit path parameters are used as given: a URI travels as one percent-encoded segment.
        kwargs["path_parameters"] = {k: quote(v, safe="") for k, v in path_parameters.items()}
    if query is not None:
        kwargs["query"] = query
    if body is not None:
        kwargs["body"] = body
        kwargs["media_type"] = "application/json"
    case = operation.Case(**kwargs)
    response = case.call(base_url=sut.base_url, timeout=30)
    _record(op_id, [], response)
    case.validate_response(response, checks=CHECKS)
    assert 200 <= response.status_code < 300, (op_id, response.status_code, response.text[:500])
    return response.json() if response.content else None


def test_key_happy_paths_answer_as_documented(sut: SeededSut) -> None:
    assert SUT in _call(sut, "getInfo")["providerDomains"]
    erin = _call(sut, "createUser", body={"user": "erin", "clients": 2})
    assert erin["user"] == f"mimi://{SUT}/u/erin" and len(erin["clients"]) == 2
    tablet = _call(sut, "addClient", path_parameters={"user": ALICE}, body={"client": "tablet"})
    assert tablet["client"] == f"mimi://{SUT}/d/alice/tablet"
    _call(sut, "publishKeyPackages", path_parameters={"client": ALICE_LAPTOP}, body={"count": 2})
    room = _call(sut, "createRoom", body={"creator": ALICE_PHONE, "room": "garden"})["room"]
    assert {CLUBHOUSE, LOUNGE} <= {r["room"] for r in _call(sut, "listRooms", query={"user": ALICE})["rooms"]}
    added = _call(sut, "addParticipant", path_parameters={"room": room}, body={"actor": ALICE_PHONE, "user": CAROL})
    assert added["outcome"] == "accepted", added
    _call(sut, "addParticipant", path_parameters={"room": room}, body={"actor": ALICE_PHONE, "user": erin["user"]})
    assert {p["user"] for p in _call(sut, "getRoom", path_parameters={"room": room})["participants"]} >= {ALICE, CAROL}
    sent = _call(sut, "sendMessage", path_parameters={"room": room}, body={"from": ALICE_PHONE, "content": {"text": "hi"}})
    assert sent["outcome"] == "accepted", sent
    got = _call(sut, "listReceivedMessages", path_parameters={"client": erin["clients"][0]})
    assert [m["content"]["text"] for m in got["items"]] == ["hi"]
    _call(sut, "removeParticipant", path_parameters={"room": room, "user": erin["user"]}, query={"actor": ALICE})
    banned = _call(sut, "removeParticipant", path_parameters={"room": room, "user": CAROL},
                   query={"actor": ALICE, "mode": "ban"})
    assert banned["outcome"] == "accepted", banned
    unbanned = _call(sut, "unbanParticipant", path_parameters={"room": room}, body={"actor": ALICE, "user": CAROL, "role": 0})
    assert unbanned["outcome"] == "accepted", unbanned
    # A new client of alice joins her rooms, then her phone removes it from the clubhouse.
    _call(sut, "addClient", path_parameters={"user": ALICE}, body={"client": "watch"})
    watch = f"mimi://{SUT}/d/alice/watch"
    removed = _call(sut, "removeClientFromRoom", path_parameters={"room": CLUBHOUSE, "client": watch},
                    body={"actor": ALICE_PHONE})
    assert removed["outcome"] == "accepted", removed
    _call(sut, "leaveRoom", path_parameters={"room": LOUNGE}, body={"actor": ALICE})
    _call(sut, "requestConsent", path_parameters={"user": DAVE}, body={"target": BOB})
    _call(sut, "cancelConsentRequest", path_parameters={"user": DAVE}, body={"target": BOB})
    _call(sut, "grantConsent", path_parameters={"user": ALICE}, body={"requester": CAROL})
    assert _call(sut, "getConsentState", path_parameters={"user": ALICE})["entries"]
    _call(sut, "listUserEvents", path_parameters={"user": ALICE})
    _call(sut, "revokeConsent", path_parameters={"user": ALICE}, body={"requester": CAROL})
    _call(sut, "deleteClient", path_parameters={"client": tablet["client"]})
    _call(sut, "deleteUser", path_parameters={"user": DAVE})


@pytest.mark.parametrize("user", ["mimi://0/u/0", "mimi://192.0.2.1/u/x"])
def test_adding_a_user_of_no_provider_domain_answers_no_key_material(sut: SeededSut, user: str) -> None:
    # Found by this module (random data): the hub's key material fetch for mimi://0/u/0 asked the peer
    # book for "0", whose ValueError became a 500. Now the fetch is refused and the add has no key material.
    added = _call(sut, "addParticipant", path_parameters={"room": CLUBHOUSE}, body={"actor": ALICE_PHONE, "user": user})
    assert added["outcome"] == "noKeyMaterial", added
