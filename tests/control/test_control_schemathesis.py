"""Property-based check of the control API's HTTP layer with schemathesis: requests generated from the
contract (its examples, then random schema-valid data) are sent to the app, over a real loopback
socket, in front of the fake backend; every answer must be a documented status, of the documented
media type, matching its schema, and never a 5xx.

Only the operations the app lists in getInfo's supportedOperations are exercised (the others are
501 by design, which test_control_app covers). Bounded to a few examples per operation.

schemathesis is not a project dependency yet: without it this module skips with a visible reason.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install schemathesis)")

from aiohttp import web  # noqa: E402
from control_helpers import DOMAIN, FAKE_OPERATIONS, FakeBackend  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from reference_peer.control import load_openapi  # noqa: E402
from reference_peer.control.app import make_control_app  # noqa: E402

LOOPBACK = "127.0.0.1"
EXAMPLES_PER_OPERATION = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
DOCUMENT = load_openapi()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)


# The contract's examples name alice (with clients phone and laptop), dave and the room clubhouse of
# sut.example; seeded, the explicit examples reach the success paths, not only the errors.
ALICE = f"mimi://{DOMAIN}/u/alice"
ALICE_CLIENTS = [f"mimi://{DOMAIN}/d/alice/phone", f"mimi://{DOMAIN}/d/alice/laptop"]
FAKE_CONTRACT_OPERATIONS = [
    (operation["operationId"], path, method.upper())
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    if isinstance(operation, dict) and operation.get("operationId") in FAKE_OPERATIONS
]
# Operations whose seeded examples succeed: each must see at least one 2xx, or the run proved little.
MUST_SUCCEED = {"getInfo", "deleteUser", "createRoom", "listRooms", "getRoom", "addParticipant", "sendMessage"}


def seeded_backend() -> FakeBackend:
    backend = FakeBackend()
    backend.users[ALICE] = list(ALICE_CLIENTS)
    for client in ALICE_CLIENTS:
        backend.client_owner[client] = ALICE
        backend.inbox[client] = []
    backend.consent[ALICE] = []

    async def seed() -> None:
        await backend.createUser(body={"user": "dave"})
        await backend.createRoom(body={"creator": ALICE, "room": "clubhouse"})

    asyncio.run(seed())
    return backend


@pytest.fixture
def base_url() -> Iterator[str]:
    """A fresh seeded app on a loopback port, served from a thread."""
    app = make_control_app(seeded_backend(), validate_responses=True)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, LOOPBACK, 0).start())
    thread = threading.Thread(target=loop.run_forever, name="control-app", daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{runner.addresses[0][1]}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_exercised_operations_are_the_supported_ones(base_url: str) -> None:
    # Operations outside supportedOperations answer 501 by design (test_control_app covers that).
    with urllib.request.urlopen(f"{base_url}/v1/info", timeout=5) as answer:
        supported = json.load(answer)["supportedOperations"]
    assert supported == [op_id for op_id, _, _ in FAKE_CONTRACT_OPERATIONS]
    assert MUST_SUCCEED <= set(supported)


@pytest.mark.parametrize(
    ("op_id", "path", "method"), FAKE_CONTRACT_OPERATIONS, ids=[op_id for op_id, _, _ in FAKE_CONTRACT_OPERATIONS]
)
def test_operation_answers_as_documented(base_url: str, op_id: str, path: str, method: str) -> None:
    operation = SCHEMA[path][method]
    statuses: list[int] = []

    def run(strategy: Any, max_examples: int) -> None:
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
            response = case.call(base_url=base_url, timeout=5)
            statuses.append(response.status_code)
            case.validate_response(response, checks=CHECKS)

        check()

    # The contract's own examples first (they reach the seeded state), then schema-valid random data.
    from_examples = SCHEMA.get_strategies_from_examples(operation)
    if from_examples:
        run(st.one_of(from_examples), 2 * len(from_examples))
    run(operation.as_strategy(), EXAMPLES_PER_OPERATION)
    assert statuses, f"no request was sent for {op_id}"
    assert all(status < 500 for status in statuses)
    if op_id in MUST_SUCCEED:
        assert any(200 <= status < 300 for status in statuses), statuses
