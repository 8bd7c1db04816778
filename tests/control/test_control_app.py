"""The control API's HTTP layer (reference_peer/control/app.py): routing generated from the contract,
raw-path decoding of URI segments, request validation, dispatch to a backend, status codes and
problem answers, bearer tokens, limits, response validation and the served document.

The app is driven over loopback through aiohttp's test client. Every operation of the contract is
exercised from the contract's own examples, so a route the layer fails to generate fails here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient
from control_helpers import DOMAIN, FAKE_OPERATIONS, FakeBackend, encode_segment, raw_url, run_client

from reference_peer.control import OPENAPI_PATH, load_openapi
from reference_peer.control.app import build_operations, ecma_pattern_to_python, make_control_app, python_name
from reference_peer.control.errors import PROBLEM_TYPES, ControlError

PROBLEM = "https://mimi-conformance.invalid/problems/"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
ALICE = f"mimi://{DOMAIN}/u/alice"
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return load_openapi()


def resolve(document: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for token in node["$ref"].removeprefix("#/").split("/"):
            target = target[token.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def contract_operations(document: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any], dict[str, Any]]]:
    """(operationId, method, path, operation, path item) for every operation, read from the document."""
    return [
        (operation["operationId"], method, path, operation, item)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def example_request(document: dict[str, Any], operation: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """A valid request built from the contract's examples: path and query values (decoded) and body."""
    parameters = [resolve(document, p) for p in item.get("parameters", []) + operation.get("parameters", [])]
    path_values = {p["name"]: p["example"] for p in parameters if p["in"] == "path"}
    query_values = {p["name"]: p["example"] for p in parameters if p["in"] == "query" and p.get("required")}
    body = None
    if "requestBody" in operation:
        examples = resolve(document, operation["requestBody"])["content"]["application/json"]["examples"]
        body = resolve(document, next(iter(examples.values())))["value"]
    return {"path": path_values, "query": query_values, "body": body}


def example_response(document: dict[str, Any], operation: dict[str, Any]) -> tuple[int, Any]:
    [(status, response)] = [(s, r) for s, r in operation["responses"].items() if str(s).startswith("2")]
    examples = resolve(document, response)["content"]["application/json"]["examples"]
    return int(status), resolve(document, next(iter(examples.values())))["value"]


def fill_path(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", encode_segment(value))
    return path


async def call(
    client: TestClient, method: str, path: str, body: Any = None, *, raw: bytes | None = None, **kwargs: Any
) -> tuple[int, Any, Any]:
    """(status, parsed JSON or text, headers) of one request sent with the path exactly as written."""
    if body is not None:
        kwargs["json"] = body
    if raw is not None:
        kwargs["data"] = raw
    async with client.request(method, raw_url(path), **kwargs) as response:
        text = await response.text()
        parsed = json.loads(text) if response.content_type.endswith("json") else text
        return response.status, parsed, response.headers


def request(app, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any, Any]:
    async def scenario(client: TestClient):
        return await call(client, method, path, body, **kwargs)

    return run_client(app, scenario)


def assert_problem(answer: tuple[int, Any, Any], status: int, slug: str | None, *in_detail: str) -> dict[str, Any]:
    code, problem, headers = answer
    assert code == status, problem
    assert headers["Content-Type"].startswith("application/problem+json")
    assert problem["status"] == status
    assert problem["type"] == (PROBLEM + slug if slug else "about:blank")
    assert problem["title"]
    for fragment in in_detail:
        assert fragment in problem.get("detail", ""), problem
    return problem


class Recorder:
    """A backend with every operation: records the call and answers the contract's example."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._answers = {
            op_id: example_response(document, op)[1] for op_id, _, _, op, _ in contract_operations(document)
        }

    def __getattr__(self, name: str):
        if name.startswith("_") or name not in self._answers:
            raise AttributeError(name)

        async def operation(**arguments: Any) -> Any:
            self.calls.append((name, arguments))
            return self._answers[name]

        return operation


class Failing(FakeBackend):
    """A fake whose chosen operation raises ``error``."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    async def getRoom(self, *, room: str) -> dict[str, Any]:
        raise self.error


# -- routing: every operation of the contract --------------------------------------------------------


def test_every_operation_is_routed_and_unimplemented_ones_answer_501(doc) -> None:
    app = make_control_app(object(), validate_responses=True)
    cases = contract_operations(doc)
    assert len(cases) == 24

    async def scenario(client: TestClient):
        answers = {}
        for op_id, method, path, operation, item in cases:
            example = example_request(doc, operation, item)
            answers[op_id] = await call(
                client, method.upper(), fill_path(path, example["path"]), example["body"], params=example["query"]
            )
        return answers

    for op_id, answer in run_client(app, scenario).items():
        assert_problem(answer, 501, "not-implemented", op_id)


def test_every_operation_dispatches_to_its_method_with_the_contract_arguments(doc) -> None:
    backend = Recorder(doc)
    app = make_control_app(backend, validate_responses=True)
    cases = contract_operations(doc)

    async def scenario(client: TestClient):
        answers = {}
        for op_id, method, path, operation, item in cases:
            example = example_request(doc, operation, item)
            answers[op_id] = await call(
                client, method.upper(), fill_path(path, example["path"]), example["body"], params=example["query"]
            )
        return answers

    answers = run_client(app, scenario)
    assert [name for name, _ in backend.calls] == [op_id for op_id, *_ in cases]
    for (op_id, _, _, operation, item), (_, arguments) in zip(cases, backend.calls, strict=True):
        example = example_request(doc, operation, item)
        status, expected_body = example_response(doc, operation)
        assert answers[op_id][0] == status, (op_id, answers[op_id])
        assert answers[op_id][1] == expected_body
        for name, value in {**example["path"], **example["query"]}.items():
            assert arguments[python_name(name)] == value, op_id
        assert ("body" in arguments) == ("requestBody" in operation), op_id
        if "requestBody" in operation:
            assert arguments["body"] == example["body"]


def test_success_status_is_the_contracts(doc) -> None:
    statuses = {
        op_id: status for op_id, status in ((o.operation_id, o.success_status) for o in build_operations(doc).values())
    }
    assert {op_id for op_id, status in statuses.items() if status == 201} == {"createUser", "addClient", "createRoom"}
    assert set(statuses.values()) == {200, 201}


def test_optional_query_parameters_take_their_schema_default(doc) -> None:
    backend = Recorder(doc)
    app = make_control_app(backend)
    client_path = "/v1/clients/" + encode_segment(f"mimi://{DOMAIN}/d/alice/phone") + "/messages"
    room_path = "/v1/rooms/" + encode_segment(f"mimi://{DOMAIN}/r/x") + "/participants/" + encode_segment(ALICE)

    async def scenario(client: TestClient):
        await call(client, "GET", client_path)
        await call(client, "GET", client_path, params={"limit": "5", "after": "17", "room": f"mimi://{DOMAIN}/r/x"})
        await call(client, "DELETE", room_path, params={"actor": ALICE})

    run_client(app, scenario)
    client = f"mimi://{DOMAIN}/d/alice/phone"
    assert backend.calls[0] == ("listReceivedMessages", {"client": client, "room": None, "after": None, "limit": 100})
    assert backend.calls[1] == (
        "listReceivedMessages",
        {"client": client, "room": f"mimi://{DOMAIN}/r/x", "after": "17", "limit": 5},
    )
    assert backend.calls[2][1]["mode"] == "remove"


def test_unknown_path_is_a_404_problem_and_wrong_method_a_405() -> None:
    assert_problem(request(make_control_app(FakeBackend()), "GET", "/v1/nothing"), 404, "not-found", "/v1/nothing")
    status, problem, headers = request(make_control_app(FakeBackend()), "PUT", "/v1/users")
    assert_problem((status, problem, headers), 405, None)
    assert "POST" in headers["Allow"]


# -- URIs in the path ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user",
    [
        ALICE,
        f"mimi://{DOMAIN}/u/al%20ice",  # a '%' in the URI itself: encoded as %25, decoded once
        f"mimi://{DOMAIN}/u/a:b@c+d",
        f"mimi://{DOMAIN}/u/événement",
    ],
)
def test_percent_encoded_uri_arrives_decoded_once_and_whole(doc, user: str) -> None:
    backend = Recorder(doc)
    app = make_control_app(backend)
    room = f"mimi://{DOMAIN}/r/club:house"

    async def scenario(client: TestClient):
        await call(client, "GET", f"/v1/users/{encode_segment(user)}/consent")
        await call(
            client,
            "DELETE",
            f"/v1/rooms/{encode_segment(room)}/participants/{encode_segment(user)}",
            params={"actor": ALICE},
        )

    run_client(app, scenario)
    assert backend.calls[0] == ("getConsentState", {"user": user})
    assert backend.calls[1] == ("removeParticipant", {"room": room, "user": user, "actor": ALICE, "mode": "remove"})


def test_encoded_slash_is_part_of_the_value_and_a_raw_slash_separates() -> None:
    fake = FakeBackend()
    app = make_control_app(fake)

    async def scenario(client: TestClient):
        created = await call(client, "POST", "/v1/users", {"user": "alice"})
        lowercase = await call(client, "GET", "/v1/users/mimi%3a%2f%2fsut.example%2fu%2falice/consent")
        colon_unencoded = await call(client, "GET", "/v1/users/mimi:%2F%2Fsut.example%2Fu%2Falice/consent")
        unencoded = await call(client, "GET", "/v1/users/mimi://sut.example/u/alice/consent")
        return created, lowercase, colon_unencoded, unencoded

    created, lowercase, colon_unencoded, unencoded = run_client(app, scenario)
    assert created[0] == 201
    assert created[2]["Location"] == "/v1/users/mimi%3A%2F%2Fsut.example%2Fu%2Falice"
    assert lowercase[:2] == (200, {"user": ALICE, "entries": []})
    assert colon_unencoded[:2] == (200, {"user": ALICE, "entries": []})
    assert_problem(unencoded, 404, "not-found")


def test_path_parameter_that_is_not_its_uri_kind_is_a_400() -> None:
    def app():
        return make_control_app(FakeBackend())

    assert_problem(request(app(), "GET", "/v1/users/alice/consent"), 400, "bad-request", "path parameter user")
    room_as_user = encode_segment(f"mimi://{DOMAIN}/r/clubhouse")
    assert_problem(request(app(), "DELETE", f"/v1/users/{room_as_user}"), 400, "bad-request", "path parameter user")
    assert_problem(
        request(app(), "DELETE", "/v1/users/mimi%3A%2F%2Fsut.example%2Fu%2F%FF"), 400, "bad-request", "UTF-8"
    )


# -- request validation ----------------------------------------------------------------------------


ROOM = f"mimi://{DOMAIN}/r/clubhouse"
MESSAGES = f"/v1/rooms/{encode_segment(ROOM)}/messages"


@pytest.mark.parametrize(
    ("path", "body", "fragments"),
    [
        (MESSAGES, {"content": {"base64": "aGk="}}, ["body", "'from' is a required property"]),
        ("/v1/users", {"clients": "two"}, ["body.clients", "'two' is not of type 'integer'"]),
        ("/v1/users", {"clients": 17}, ["body.clients", "17 is greater than the maximum of 16"]),
        ("/v1/users", {"user": "alice", "colour": "blue"}, ["body", "'colour' was unexpected"]),
        (
            "/v1/rooms",
            {"creator": ALICE, "policy": {"roles": [{"index": 2, "name": "m", "capabilities": ["canFly"]}]}},
            ["body.policy.roles[0].capabilities[0]", "canFly"],
        ),
        (
            MESSAGES,
            {"from": f"mimi://{DOMAIN}/d/alice/c0", "content": {"base64": "aGk=", "text": "hi"}},
            ["body.content"],
        ),
        (MESSAGES, [], ["body", "not of type 'object'"]),
    ],
)
def test_invalid_body_is_a_400_naming_the_field(path: str, body: Any, fragments: list[str]) -> None:
    app = make_control_app(FakeBackend())
    assert_problem(request(app, "POST", path, body), 400, "bad-request", *fragments)


@pytest.mark.parametrize(
    ("raw", "content_type", "fragment"),
    [
        (b'{"user": "alice",', "application/json", "not valid JSON"),
        (b"", "application/json", "request body is required"),
        (b'{"user": "alice", "user": "bob"}', "application/json", "'user' given twice"),
        (b'{"clients": NaN}', "application/json", "NaN is not JSON"),
        (b'{"user": "\xff"}', "application/json", "not UTF-8"),
        (b"[" * 100_000, "application/json", "not valid JSON"),
        (b'{"user": "alice"}', "text/plain", "Content-Type"),
    ],
)
def test_malformed_body_is_a_400(raw: bytes, content_type: str, fragment: str) -> None:
    fake = FakeBackend()
    app = make_control_app(fake)
    answer = request(app, "POST", "/v1/users", raw=raw, headers={"Content-Type": content_type})
    assert_problem(answer, 400, "bad-request", fragment)
    assert fake.users == {}


def test_json_with_a_charset_or_a_json_suffix_is_accepted() -> None:
    def app():
        return make_control_app(FakeBackend())

    answer = request(
        app(), "POST", "/v1/users", raw=b'{"user": "a"}', headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert answer[0] == 201
    answer = request(
        app(), "POST", "/v1/users", raw=b'{"user": "b"}', headers={"Content-Type": "application/vnd.x+json"}
    )
    assert answer[0] == 201


@pytest.mark.parametrize(
    ("query", "fragments"),
    [
        ({"limit": "abc"}, ["query parameter limit", "not an integer"]),
        ({"limit": "0"}, ["query parameter limit", "less than the minimum of 1"]),
        ({"limit": "1001"}, ["query parameter limit", "greater than the maximum of 1000"]),
        ({"after": ""}, ["query parameter after"]),
        ({"room": "clubhouse"}, ["query parameter room", "does not match"]),
        ({"romo": ROOM}, ["unknown query parameter romo"]),
        ([("limit", "1"), ("limit", "2")], ["query parameter limit given 2 times"]),
    ],
)
def test_invalid_query_is_a_400_naming_the_parameter(query: Any, fragments: list[str]) -> None:
    app = make_control_app(FakeBackend())
    path = "/v1/clients/" + encode_segment(f"mimi://{DOMAIN}/d/alice/c0") + "/messages"
    assert_problem(request(app, "GET", path, params=query), 400, "bad-request", *fragments)


def test_missing_required_query_parameter_is_a_400(doc) -> None:
    def app():
        return make_control_app(Recorder(doc))

    path = f"/v1/rooms/{encode_segment(ROOM)}/participants/{encode_segment(ALICE)}"
    assert_problem(request(app(), "DELETE", path), 400, "bad-request", "query parameter actor is required")
    assert_problem(
        request(app(), "DELETE", path, params={"actor": ALICE, "mode": "evict"}),
        400,
        "bad-request",
        "query parameter mode",
    )


def test_body_over_the_limit_is_a_413() -> None:
    fake = FakeBackend()
    app = make_control_app(fake, max_body_bytes=1024)
    padded = json.dumps({"user": "alice", "profile": {"nicks": ["x" * 2000]}}).encode()
    answer = request(app, "POST", "/v1/users", raw=padded, headers={"Content-Type": "application/json"})
    assert_problem(answer, 413, None, "1024")
    assert fake.users == {}


def test_default_body_limit_is_one_mebibyte() -> None:
    def app():
        return make_control_app(FakeBackend())

    big = json.dumps({"user": "alice", "profile": {"nicks": ["x" * (1024 * 1024)]}}).encode()
    assert_problem(
        request(app(), "POST", "/v1/users", raw=big, headers={"Content-Type": "application/json"}), 413, None
    )
    fits = json.dumps({"user": "alice", "profile": {"nicks": ["x" * (1000 * 1000)]}}).encode()
    assert request(app(), "POST", "/v1/users", raw=fits, headers={"Content-Type": "application/json"})[0] == 201


# -- backend outcomes ------------------------------------------------------------------------------


def test_fake_backend_scenario_with_cursors() -> None:
    app = make_control_app(FakeBackend(), validate_responses=True)

    async def scenario(client: TestClient):
        alice = (await call(client, "POST", "/v1/users", {"user": "alice", "clients": 2}))[1]
        bob = (await call(client, "POST", "/v1/users", {"user": "bob"}))[1]
        status, room, headers = await call(client, "POST", "/v1/rooms", {"creator": alice["user"], "room": "club"})
        assert (status, headers["Location"]) == (201, "/v1/rooms/" + encode_segment(room["room"]))
        room_path = "/v1/rooms/" + encode_segment(room["room"])
        added = await call(
            client, "POST", room_path + "/participants", {"actor": alice["clients"][0], "user": bob["user"]}
        )
        assert added[:2] == (200, {"room": room["room"], "outcome": "accepted", "epoch": 1})
        for text in ("aGk=", "aGVsbG8=", "Ynll"):
            sent = await call(
                client, "POST", room_path + "/messages", {"from": alice["clients"][0], "content": {"base64": text}}
            )
            assert sent[0] == 200
        inbox = "/v1/clients/" + encode_segment(bob["clients"][0]) + "/messages"
        first = (await call(client, "GET", inbox, params={"limit": "2"}))[1]
        second = (await call(client, "GET", inbox, params={"after": first["next"]}))[1]
        empty = (await call(client, "GET", inbox, params={"after": second["next"]}))[1]
        never_issued = await call(client, "GET", inbox, params={"after": "99"})
        own_other_client = (
            await call(client, "GET", "/v1/clients/" + encode_segment(alice["clients"][1]) + "/messages")
        )[1]
        rooms = (await call(client, "GET", "/v1/rooms", params={"user": bob["user"]}))[1]
        return first, second, empty, never_issued, own_other_client, rooms

    first, second, empty, never_issued, own_other_client, rooms = run_client(app, scenario)
    assert [item["content"]["base64"] for item in first["items"]] == ["aGk=", "aGVsbG8="]
    assert [item["content"]["base64"] for item in second["items"]] == ["Ynll"]
    assert empty == {"items": [], "next": second["next"]}
    assert_problem(never_issued, 400, "bad-request", "never issued")
    assert len(own_other_client["items"]) == 3
    assert [summary["room"] for summary in rooms["rooms"]] == [f"mimi://{DOMAIN}/r/club"]


@pytest.mark.parametrize(
    ("setup", "method", "path", "body", "status", "slug"),
    [
        ([{"user": "alice"}], "POST", "/v1/users", {"user": "alice"}, 409, "already-exists"),
        ([], "POST", "/v1/users", {"user": "mimi://peer.example/u/alice"}, 422, "not-local"),
        ([], "POST", "/v1/users", {"consentMode": "quarantine"}, 422, "unsupported-value"),
        ([], "DELETE", "/v1/users/" + encode_segment(ALICE), None, 404, "not-found"),
        (
            [{"user": "alice"}],
            "POST",
            "/v1/rooms",
            {"creator": ALICE, "policy": {"minimalMetadata": True}},
            422,
            "policy-unsupported",
        ),
    ],
)
def test_control_errors_of_the_backend_are_problems(setup, method, path, body, status, slug) -> None:
    app = make_control_app(FakeBackend(), validate_responses=True)

    async def scenario(client: TestClient):
        for user in setup:
            assert (await call(client, "POST", "/v1/users", user))[0] == 201
        return await call(client, method, path, body)

    assert_problem(run_client(app, scenario), status, slug)


@pytest.mark.parametrize(
    "problem", sorted(PROBLEM_TYPES.values(), key=lambda p: p.uri), ids=lambda p: p.uri.rsplit("/", 1)[1]
)
def test_every_problem_type_maps_to_its_status(problem) -> None:
    app = make_control_app(Failing(ControlError(problem.uri, "because of a reason")))
    answer = request(app, "GET", "/v1/rooms/" + encode_segment(ROOM))
    body = assert_problem(answer, problem.status, problem.uri.removeprefix(PROBLEM), "because of a reason")
    assert body["title"] == problem.title


def test_not_implemented_error_is_a_501() -> None:
    app = make_control_app(Failing(NotImplementedError("getRoom")))
    assert_problem(request(app, "GET", "/v1/rooms/" + encode_segment(ROOM)), 501, "not-implemented", "getRoom")


def test_unexpected_exception_is_a_500_that_leaks_nothing(caplog) -> None:
    secret = "password=hunter2 at /srv/sut/db.py"
    app = make_control_app(Failing(RuntimeError(secret)))
    with caplog.at_level(logging.ERROR, logger="reference_peer.control.app"):
        status, problem, headers = request(app, "GET", "/v1/rooms/" + encode_segment(ROOM))
    assert status == 500
    assert headers["Content-Type"].startswith("application/problem+json")
    assert problem["status"] == 500 and "getRoom" in problem["detail"]
    assert secret not in json.dumps(problem) and "RuntimeError" not in json.dumps(problem)
    [record] = [r for r in caplog.records if r.exc_info]
    assert "getRoom" in record.getMessage() and secret in str(record.exc_info[1])


def test_result_that_is_not_json_is_a_500(caplog) -> None:
    class Unserialisable(FakeBackend):
        async def getRoom(self, *, room: str) -> dict[str, Any]:
            return {"room": room, "epoch": object()}

    with caplog.at_level(logging.ERROR, logger="reference_peer.control.app"):
        answer = request(make_control_app(Unserialisable()), "GET", "/v1/rooms/" + encode_segment(ROOM))
    assert answer[0] == 500 and "object at" not in json.dumps(answer[1])
    assert any(r.exc_info for r in caplog.records)


def test_control_error_rejects_unknown_types_and_mismatched_statuses() -> None:
    with pytest.raises(ValueError, match="not a problem type"):
        ControlError(PROBLEM + "teapot", "short and stout")
    with pytest.raises(ValueError, match="goes with status 404"):
        ControlError(PROBLEM + "not-found", "x", status=400)
    error = ControlError.not_permitted("role 2 lacks canBan")
    assert (error.status, error.problem_type, error.detail) == (409, PROBLEM + "not-permitted", "role 2 lacks canBan")
    assert ControlError.unprocessable("x").status == 422


def test_problem_types_are_the_contracts(doc) -> None:
    assert list(PROBLEM_TYPES) == doc["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
    assert {problem.status for problem in PROBLEM_TYPES.values()} == set(
        doc["components"]["schemas"]["Problem"]["properties"]["status"]["enum"]
    )
    # The documented examples pair each type with its status and title as the table does.
    seen = set()
    for response in doc["components"]["responses"].values():
        for example in response["content"]["application/problem+json"]["examples"].values():
            value = example["value"]
            known = PROBLEM_TYPES[value["type"]]
            assert (known.status, known.title) == (value["status"], value["title"])
            seen.add(value["type"])
    assert len(seen) >= 9


# -- getInfo -----------------------------------------------------------------------------------------


def test_get_info_lists_the_implemented_operations_when_the_backend_does_not(doc) -> None:
    app = make_control_app(FakeBackend(), validate_responses=True)
    status, info, _ = request(app, "GET", "/v1/info")
    assert status == 200
    contract_order = [op_id for op_id, *_ in contract_operations(doc)]
    assert info["supportedOperations"] == [op for op in contract_order if op in FAKE_OPERATIONS]
    assert "createUser" in info["supportedOperations"] and "leaveRoom" not in info["supportedOperations"]


def test_get_info_keeps_the_backends_own_list() -> None:
    class Declaring(FakeBackend):
        async def getInfo(self) -> dict[str, Any]:
            return {**await super().getInfo(), "supportedOperations": ["getInfo", "createUser"]}

    assert request(make_control_app(Declaring()), "GET", "/v1/info")[1]["supportedOperations"] == [
        "getInfo",
        "createUser",
    ]


# -- bearer token ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "challenge"),
    [
        (None, 'Bearer realm="mimi-sut-control"'),
        ("Bearer", 'Bearer realm="mimi-sut-control"'),
        ("Basic czNjcmV0LXRva2Vu", 'Bearer realm="mimi-sut-control"'),
        ("Bearer wrong-token", 'Bearer realm="mimi-sut-control", error="invalid_token"'),
        (f"Bearer {TOKEN}x", 'Bearer realm="mimi-sut-control", error="invalid_token"'),
    ],
)
@pytest.mark.parametrize("path", ["/v1/info", "/v1/nothing", "/openapi.yaml"])
def test_request_without_the_token_is_a_401(authorization: str | None, challenge: str, path: str) -> None:
    app = make_control_app(FakeBackend(), token=TOKEN)
    headers = {"Authorization": authorization} if authorization else {}
    status, problem, response_headers = request(app, "GET", path, headers=headers)
    assert_problem((status, problem, response_headers), 401, "unauthorized")
    assert response_headers["WWW-Authenticate"] == challenge


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_request_with_the_token_passes(scheme: str) -> None:
    def app():
        return make_control_app(FakeBackend(), token=TOKEN)

    assert request(app(), "GET", "/v1/info", headers={"Authorization": f"{scheme} {TOKEN}"})[0] == 200
    assert request(app(), "GET", "/v1/info")[0] == 401


def test_without_a_token_no_authorization_is_needed_and_an_empty_token_is_refused() -> None:
    assert request(make_control_app(FakeBackend()), "GET", "/v1/info")[0] == 200
    with pytest.raises(ValueError, match="empty bearer token"):
        make_control_app(FakeBackend(), token="")


# -- response validation -----------------------------------------------------------------------------


class Sloppy(FakeBackend):
    async def createUser(self, *, body: dict[str, Any]) -> dict[str, Any]:
        return {"user": f"mimi://{DOMAIN}/u/alice", "clients": [f"mimi://{DOMAIN}/u/alice"]}

    async def createRoom(self, *, body: dict[str, Any]) -> dict[str, Any]:
        raise ControlError.not_found("createRoom documents no 404")


def test_response_validation_names_the_violation() -> None:
    def checked():
        return make_control_app(Sloppy(), validate_responses=True)

    def unchecked():
        return make_control_app(Sloppy())

    assert_problem(request(checked(), "POST", "/v1/users", {}), 500, None, "response body.clients[0]", "createUser")
    assert_problem(request(checked(), "POST", "/v1/rooms", {"creator": ALICE}), 500, None, "does not document", "404")
    assert request(unchecked(), "POST", "/v1/users", {})[0] == 201
    assert_problem(request(unchecked(), "POST", "/v1/rooms", {"creator": ALICE}), 404, "not-found")


# -- the served document -----------------------------------------------------------------------------


def test_openapi_document_is_served() -> None:
    status, text, headers = request(make_control_app(FakeBackend()), "GET", "/openapi.yaml")
    assert status == 200 and headers["Content-Type"].startswith("application/yaml")
    assert text == OPENAPI_PATH.read_text(encoding="utf-8")


def test_given_openapi_document_is_the_one_served_and_routed(doc) -> None:
    trimmed = json.loads(json.dumps(doc))
    del trimmed["paths"]["/v1/rooms/{room}/hubTransfer"]

    def app():
        return make_control_app(FakeBackend(), openapi=trimmed)

    status, text, _ = request(app(), "GET", "/openapi.yaml")
    assert status == 200 and yaml.safe_load(text) == trimmed
    hub_transfer = "/v1/rooms/" + encode_segment(ROOM) + "/hubTransfer"
    body = {"actor": ALICE, "newHub": "peer.example"}
    assert_problem(request(app(), "POST", hub_transfer, body), 404, "not-found")
    assert_problem(request(make_control_app(FakeBackend()), "POST", hub_transfer, body), 501, "not-implemented")


# -- building from the contract ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "identifier"),
    [("user", "user"), ("after", "after"), ("body", "body_"), ("class", "class_"), ("x-y", "x_y"), ("1st", "_1st")],
)
def test_python_name(name: str, identifier: str) -> None:
    assert python_name(name) == identifier
    assert identifier.isidentifier()


def test_contract_parameter_names_are_already_identifiers(doc) -> None:
    names = {
        resolve(doc, p)["name"]
        for _, _, _, operation, item in contract_operations(doc)
        for p in item.get("parameters", []) + operation.get("parameters", [])
    }
    assert names == {"user", "client", "room", "actor", "mode", "after", "limit"}
    assert all(python_name(name) == name for name in names)


def test_build_operations_refuses_a_document_it_cannot_serve(doc) -> None:
    two_successes = json.loads(json.dumps(doc))
    two_successes["paths"]["/v1/info"]["get"]["responses"]["204"] = {"description": "also fine"}
    with pytest.raises(ValueError, match="getInfo: expected exactly one 2xx"):
        build_operations(two_successes)
    no_location = json.loads(json.dumps(doc))
    no_location["paths"]["/v1/users"]["post"]["responses"]["201"]["description"] = "Created."
    with pytest.raises(ValueError, match="createUser: 201 sets Location"):
        build_operations(no_location)
    assert set(build_operations(doc)) == {op_id for op_id, *_ in contract_operations(doc)}


# -- JSON Schema semantics the layer must keep -------------------------------------------------------


def test_patterns_follow_ecma_262_not_python_re(doc) -> None:
    # Python's '$' also matches before a final newline and its '\s' is wider than ECMA-262's.
    def app():
        return make_control_app(Recorder(doc))

    trailing_newline = encode_segment(ALICE + "\n")
    assert_problem(
        request(app(), "GET", f"/v1/users/{trailing_newline}/consent"), 400, "bad-request", "path parameter user"
    )
    assert_problem(request(app(), "POST", "/v1/users", {"user": "alice\n"}), 400, "bad-request", "body.user")
    backend = Recorder(doc)
    control_character = "mimi://a\x1db.example/u/alice"  # not ECMA whitespace: the contract allows it
    assert request(make_control_app(backend), "GET", f"/v1/users/{encode_segment(control_character)}/consent")[0] == 200
    assert backend.calls == [("getConsentState", {"user": control_character})]


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        (r"^[a-z]+$", ["abc"], ["abc\n", ""]),
        (r"^[^\s]+$", ["a\x1cb", "a\x85b"], ["a b", "a\u3000b", "a\ufeffb"]),
        (r"^\d\w$", ["1a", "9_"], ["\u0661a", "1\u00e9"]),
        (r"^a.c$", ["abc"], ["a\nc", "a\u2028c"]),
        (r"^[.$]$", [".", "$"], ["a"]),
    ],
)
def test_ecma_pattern_translation(pattern: str, matching: list[str], not_matching: list[str]) -> None:
    compiled = re.compile(ecma_pattern_to_python(pattern))
    assert [text for text in matching if not compiled.search(text)] == []
    assert [text for text in not_matching if compiled.search(text)] == []


def test_integral_float_where_the_contract_says_integer_reaches_the_backend_as_int() -> None:
    # JSON Schema counts 2.0 as an integer: valid, and the backend must not have to care.
    status, user, _ = request(make_control_app(FakeBackend()), "POST", "/v1/users", {"user": "alice", "clients": 2.0})
    assert status == 201 and len(user["clients"]) == 2


def test_request_target_bytes_on_the_wire(doc) -> None:
    # Exactly these bytes, no client library in between: origin-form and absolute-form targets.
    backend = Recorder(doc)
    app = make_control_app(backend)
    segment = "mimi%3A%2F%2Fsut.example%2Fd%2Falice%2Fphone"  # a client URI: user/name, both after /d/

    async def send(host: str, port: int, target: str) -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        answer = await reader.read()
        writer.close()
        return answer.split(b"\r\n", 1)[0]

    async def scenario(client: TestClient):
        host, port = client.server.host, client.server.port
        return [
            await send(host, port, f"/v1/clients/{segment}/messages"),
            await send(host, port, f"http://{host}:{port}/v1/clients/{segment}/messages"),
        ]

    assert run_client(app, scenario) == [b"HTTP/1.1 200 OK"] * 2
    expected = {"client": "mimi://sut.example/d/alice/phone", "room": None, "after": None, "limit": 100}
    assert backend.calls == [("listReceivedMessages", expected)] * 2
