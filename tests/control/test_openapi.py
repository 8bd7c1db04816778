"""The SUT control API document (reference_peer/control/openapi.yaml) is a valid, complete and stable
contract: OpenAPI 3.1 structure, the published operation list, documented errors, resolvable
references, and examples that validate against their schemas.

No OpenAPI validator is a project dependency, so the OpenAPI 3.1 rules that matter here are checked
structurally, and every Schema Object is checked as JSON Schema 2020-12 (the 3.1 dialect) with
jsonschema. Each structural check is a function returning the problems it found; the tests run it on
the shipped document (no problem) and on a deliberately broken copy (the problem is found), so no
check can pass vacuously.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from conformance.catalogue import load_catalogue
from reference_peer.control import CONTRACT_VERSION, OPENAPI_PATH, load_openapi

REPO_ROOT = Path(__file__).resolve().parents[2]
VENDOR_GUIDE = REPO_ROOT / "docs" / "control-api.md"

# The published operations. A rename, a move or a removal is a breaking change of the contract: it
# must fail here first. Adding an operation means adding it here, to OperationId and to the guide.
EXPECTED_OPERATIONS: dict[str, tuple[str, str]] = {
    "getInfo": ("get", "/v1/info"),
    "createUser": ("post", "/v1/users"),
    "deleteUser": ("delete", "/v1/users/{user}"),
    "addClient": ("post", "/v1/users/{user}/clients"),
    "deleteClient": ("delete", "/v1/clients/{client}"),
    "publishKeyPackages": ("post", "/v1/clients/{client}/keyPackages"),
    "createRoom": ("post", "/v1/rooms"),
    "listRooms": ("get", "/v1/rooms"),
    "getRoom": ("get", "/v1/rooms/{room}"),
    "addParticipant": ("post", "/v1/rooms/{room}/participants"),
    "removeParticipant": ("delete", "/v1/rooms/{room}/participants/{user}"),
    "unbanParticipant": ("post", "/v1/rooms/{room}/unban"),
    "leaveRoom": ("post", "/v1/rooms/{room}/leave"),
    "removeClientFromRoom": ("post", "/v1/rooms/{room}/clients/{client}/remove"),
    "sendMessage": ("post", "/v1/rooms/{room}/messages"),
    "listReceivedMessages": ("get", "/v1/clients/{client}/messages"),
    "listUserEvents": ("get", "/v1/users/{user}/events"),
    "getConsentState": ("get", "/v1/users/{user}/consent"),
    "grantConsent": ("post", "/v1/users/{user}/consent/grant"),
    "revokeConsent": ("post", "/v1/users/{user}/consent/revoke"),
    "requestConsent": ("post", "/v1/users/{user}/consent/request"),
    "cancelConsentRequest": ("post", "/v1/users/{user}/consent/cancel"),
    "startHubTransfer": ("post", "/v1/rooms/{room}/hubTransfer"),
    "joinRoom": ("post", "/v1/rooms/{room}/join"),
}
# The operations a SUT cannot omit for a role it declares (x-mimi-conformance.requiredFor).
EXPECTED_REQUIRED_FOR = {
    "getInfo": {"hub", "follower"},
    "createUser": {"hub", "follower"},
    "getRoom": {"hub"},
    "sendMessage": {"hub", "follower"},
    "listReceivedMessages": {"hub", "follower"},
    "createRoom": {"hub"},
    "addParticipant": {"hub"},
}

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
DOC_URI = "urn:mimi-conformance:control-api"
# Schema keywords whose value is a schema, a list of schemas, or a map of schemas (JSON Schema 2020-12).
SCHEMA_VALUED = ("additionalProperties", "items", "contains", "not", "if", "then", "else", "propertyNames")
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")


# -- document access --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return load_openapi()


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value at a JSON pointer (RFC 6901); KeyError/IndexError when there is none."""
    node = document
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def deref(document: dict[str, Any], node: Any, pointer: str) -> tuple[Any, str]:
    """Follow a local Reference Object ($ref, optionally with summary/description) to what it names;
    returns the node and its pointer."""
    while (
        isinstance(node, dict) and isinstance(node.get("$ref"), str) and set(node) <= {"$ref", "summary", "description"}
    ):
        pointer = node["$ref"].removeprefix("#")
        node = resolve_pointer(document, pointer)
    return node, pointer


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], str]]:
    """(path, method, operation, pointer) for every operation."""
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method], f"/paths/{escape(path)}/{method}"


def operation_parameters(document: dict[str, Any], path: str, method: str) -> list[tuple[dict, str]]:
    """The operation's parameters merged with its path item's (the operation's win), resolved, with pointers."""
    found: dict[tuple[str, str], tuple[dict, str]] = {}
    item_pointer = f"/paths/{escape(path)}"
    for owner, base in (
        (document["paths"][path], item_pointer),
        (document["paths"][path][method], f"{item_pointer}/{method}"),
    ):
        for index, parameter in enumerate(owner.get("parameters", [])):
            resolved, pointer = deref(document, parameter, f"{base}/parameters/{index}")
            found[(resolved["name"], resolved["in"])] = (resolved, pointer)
    return list(found.values())


def schema_nodes(schema: Any, pointer: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Every schema object in a schema tree (not following $ref), with its pointer."""
    if not isinstance(schema, dict):
        return
    yield schema, pointer
    for key in SCHEMA_VALUED:
        if isinstance(schema.get(key), dict):
            yield from schema_nodes(schema[key], f"{pointer}/{key}")
    for key in SCHEMA_LISTS:
        for index, sub in enumerate(schema.get(key, [])):
            yield from schema_nodes(sub, f"{pointer}/{key}/{index}")
    for key in SCHEMA_MAPS:
        for name, sub in schema.get(key, {}).items():
            yield from schema_nodes(sub, f"{pointer}/{key}/{escape(name)}")


def all_schemas(document: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """Every Schema Object of the document: components and the inline ones of parameters, headers, media types."""
    for name, schema in document["components"]["schemas"].items():
        yield from schema_nodes(schema, f"/components/schemas/{escape(name)}")

    def walk(node: Any, pointer: str) -> Iterator[tuple[dict[str, Any], str]]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "schema" and isinstance(value, dict):
                    yield from schema_nodes(value, f"{pointer}/schema")
                elif key != "schemas":
                    yield from walk(value, f"{pointer}/{escape(key)}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{pointer}/{index}")

    yield from walk(document["paths"], "/paths")
    yield from walk({k: v for k, v in document["components"].items() if k != "schemas"}, "/components")


def media_types(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], str]]:
    """(operationId, where, media type object, pointer) for request bodies and responses."""
    for path, method, operation, pointer in operations(document):
        op_id = operation.get("operationId", f"{method} {path}")
        if "requestBody" in operation:
            body, body_pointer = deref(document, operation["requestBody"], f"{pointer}/requestBody")
            for name, media in body.get("content", {}).items():
                yield op_id, f"request {name}", media, f"{body_pointer}/content/{escape(name)}"
        for status, response in operation.get("responses", {}).items():
            resolved, response_pointer = deref(document, response, f"{pointer}/responses/{status}")
            for name, media in resolved.get("content", {}).items():
                yield op_id, f"{status} {name}", media, f"{response_pointer}/content/{escape(name)}"


# -- checks: each returns a list of problems --------------------------------------------------------


def unresolved_refs(document: dict[str, Any]) -> list[str]:
    problems = []

    def walk(node: Any, pointer: str) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                if not ref.startswith("#/"):
                    problems.append(f"{pointer}: non-local $ref {ref}")
                else:
                    try:
                        resolve_pointer(document, ref[1:])
                    except (KeyError, IndexError, ValueError, TypeError):
                        problems.append(f"{pointer}: unresolved $ref {ref}")
            for key, value in node.items():
                walk(value, f"{pointer}/{escape(key)}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{pointer}/{index}")

    walk(document, "")
    return problems


def structure_problems(document: dict[str, Any]) -> list[str]:
    """The OpenAPI 3.1 rules this document relies on (a subset of the specification's own schema)."""
    problems = []
    if document.get("openapi") != "3.1.0":
        problems.append(f"openapi is {document.get('openapi')!r}, not '3.1.0'")
    info = document.get("info", {})
    for key in ("title", "version", "description"):
        if not isinstance(info.get(key), str) or not info.get(key):
            problems.append(f"info.{key} missing")
    declared_tags = {tag["name"] for tag in document.get("tags", [])}
    schemes = document.get("components", {}).get("securitySchemes", {})
    for requirement in document.get("security", []):
        problems += [f"security names undeclared scheme {name}" for name in requirement if name not in schemes]
    for path, item in document.get("paths", {}).items():
        if not path.startswith("/"):
            problems.append(f"path {path!r} does not start with /")
        unknown = set(item) - set(HTTP_METHODS) - {"parameters", "summary", "description", "servers", "$ref"}
        problems += [f"{path}: unknown path item member {key}" for key in sorted(unknown)]
        templated = set(re.findall(r"\{([^}]+)\}", path))
        for method in HTTP_METHODS:
            if method not in item:
                continue
            operation = item[method]
            where = f"{method.upper()} {path}"
            parameters = operation_parameters(document, path, method)
            in_path = {p["name"] for p, _ in parameters if p["in"] == "path"}
            if in_path != templated:
                problems.append(f"{where}: path parameters {sorted(in_path)} != template {sorted(templated)}")
            for parameter, _ in parameters:
                if parameter["in"] == "path" and parameter.get("required") is not True:
                    problems.append(f"{where}: path parameter {parameter['name']} not required")
                if parameter["in"] not in ("path", "query", "header", "cookie"):
                    problems.append(f"{where}: parameter {parameter['name']} in {parameter['in']!r}")
                if ("schema" in parameter) == ("content" in parameter):
                    problems.append(f"{where}: parameter {parameter['name']} needs exactly one of schema, content")
            if method in ("get", "delete", "head") and "requestBody" in operation:
                problems.append(f"{where}: a {method.upper()} with a request body")
            problems += [
                f"{where}: undeclared tag {tag}" for tag in operation.get("tags", []) if tag not in declared_tags
            ]
            responses = operation.get("responses", {})
            if not responses:
                problems.append(f"{where}: no responses")
            for status, response in responses.items():
                if not re.fullmatch(r"[1-5](\d\d|XX)|default", str(status)):
                    problems.append(f"{where}: bad response key {status!r}")
                resolved, _ = deref(document, response, "")
                if not resolved.get("description"):
                    problems.append(f"{where}: response {status} has no description")
    return problems


def operation_doc_problems(document: dict[str, Any]) -> list[str]:
    """Every operation is documented: id, summary, description, tags, a 2xx JSON body with a schema."""
    problems = []
    seen: dict[str, str] = {}
    for path, method, operation, _ in operations(document):
        where = f"{method.upper()} {path}"
        op_id = operation.get("operationId")
        if not op_id:
            problems.append(f"{where}: no operationId")
        elif op_id in seen:
            problems.append(f"{where}: operationId {op_id} also used by {seen[op_id]}")
        else:
            seen[op_id] = where
        for key in ("summary", "description"):
            if not isinstance(operation.get(key), str) or not operation[key].strip():
                problems.append(f"{where}: no {key}")
        if not operation.get("tags"):
            problems.append(f"{where}: no tags")
        successes = [status for status in operation.get("responses", {}) if str(status).startswith("2")]
        if not successes:
            problems.append(f"{where}: no 2xx response")
        for status in successes:
            response, _ = deref(document, operation["responses"][status], "")
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if not isinstance(schema, dict) or not schema.get("$ref", "").startswith("#/components/schemas/"):
                problems.append(f"{where}: {status} has no application/json schema from components")
        if "requestBody" in operation:
            body, _ = deref(document, operation["requestBody"], "")
            schema = body.get("content", {}).get("application/json", {}).get("schema", {})
            if body.get("required") is not True or not schema.get("$ref", "").startswith("#/components/schemas/"):
                problems.append(f"{where}: request body not a required application/json schema from components")
    return problems


def error_response_problems(document: dict[str, Any]) -> list[str]:
    """The error model: which errors each operation documents, and that each is an RFC 9457 problem."""
    problems = []
    for path, method, operation, _ in operations(document):
        where = f"{method.upper()} {path}"
        responses = {str(status): response for status, response in operation.get("responses", {}).items()}
        parameters = operation_parameters(document, path, method)
        required = {"401"}
        if operation.get("operationId") != "getInfo":
            required.add("501")
        if parameters or "requestBody" in operation:
            required.add("400")
        if any(p["in"] == "path" for p, _ in parameters):
            required.add("404")
        if "requestBody" in operation:
            required.add("422")
        problems += [f"{where}: no {status} response" for status in sorted(required - set(responses))]
        for status, response in responses.items():
            if status[0] not in "45":
                continue
            resolved, pointer = deref(document, response, "")
            content = resolved.get("content", {})
            if set(content) != {PROBLEM_MEDIA_TYPE}:
                problems.append(f"{where}: {status} is not only {PROBLEM_MEDIA_TYPE}")
                continue
            media = content[PROBLEM_MEDIA_TYPE]
            if media.get("schema") != {"$ref": PROBLEM_REF}:
                problems.append(f"{where}: {status} schema is not the Problem schema")
            examples = [deref(document, e, "")[0].get("value") for e in media.get("examples", {}).values()]
            if not examples:
                problems.append(f"{where}: {status} has no example")
            problems += [
                f"{where}: {status} example has status {e.get('status')}"
                for e in examples
                if str(e.get("status")) != status
            ]
    return problems


def closed_request_problems(document: dict[str, Any]) -> list[str]:
    """Request bodies are closed (unknown members are a 400), so that typos fail loudly."""
    problems = []
    for path, method, operation, _ in operations(document):
        if "requestBody" not in operation:
            continue
        body, _ = deref(document, operation["requestBody"], "")
        schema, pointer = deref(document, body["content"]["application/json"]["schema"], "")
        if schema.get("additionalProperties") is not False:
            problems.append(f"{method.upper()} {path}: request schema {pointer} is open")
    return problems


def schema_keyword_problems(document: dict[str, Any]) -> list[str]:
    """OpenAPI 3.0 leftovers that 3.1 tools read differently, and invalid JSON Schema 2020-12."""
    problems = []
    for schema, pointer in all_schemas(document):
        if "nullable" in schema:
            problems.append(f"{pointer}: 'nullable' is OpenAPI 3.0 (use a type list)")
        if "example" in schema:
            problems.append(f"{pointer}: schema 'example' is deprecated in 3.1 (use 'examples')")
        if "examples" in schema and not isinstance(schema["examples"], list):
            problems.append(f"{pointer}: schema 'examples' must be a list")
    for name, schema in document["components"]["schemas"].items():
        errors = list(Draft202012Validator(Draft202012Validator.META_SCHEMA).iter_errors(schema))
        problems += [f"/components/schemas/{name}: {error.message}" for error in errors]
    return problems


def example_cases(document: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(where, pointer of the schema, example value) for every example in the document."""
    for schema, pointer in all_schemas(document):
        for index, value in enumerate(schema.get("examples", []) if isinstance(schema.get("examples"), list) else []):
            yield f"{pointer}/examples/{index}", pointer, value
    for op_id, where, media, pointer in media_types(document):
        if "example" in media:
            yield f"{op_id} {where} example", f"{pointer}/schema", media["example"]
        for name, example in media.get("examples", {}).items():
            resolved, _ = deref(document, example, "")
            yield f"{op_id} {where} examples.{name}", f"{pointer}/schema", resolved.get("value")
    for path, method, _operation, _ in operations(document):
        for parameter, pointer in operation_parameters(document, path, method):
            if "example" in parameter:
                yield f"{pointer}/example", f"{pointer}/schema", parameter["example"]
    for header, pointer in headers(document):
        if "example" in header:
            yield f"{pointer}/example", f"{pointer}/schema", header["example"]


def headers(document: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """Every Header Object: the components' and those of every response, resolved, with pointers."""
    for name, header in document["components"].get("headers", {}).items():
        yield header, f"/components/headers/{escape(name)}"
    responses = [(r, f"/components/responses/{escape(n)}") for n, r in document["components"]["responses"].items()]
    for _, _, operation, pointer in operations(document):
        responses += [(r, f"{pointer}/responses/{status}") for status, r in operation.get("responses", {}).items()]
    for response, pointer in responses:
        resolved, resolved_pointer = deref(document, response, pointer)
        for name, header in resolved.get("headers", {}).items():
            yield deref(document, header, f"{resolved_pointer}/headers/{escape(name)}")


def example_problems(document: dict[str, Any]) -> list[str]:
    registry = Registry().with_resource(DOC_URI, Resource(contents=document, specification=DRAFT202012))
    problems = []
    for where, schema_pointer, value in example_cases(document):
        validator = Draft202012Validator(
            {"$ref": f"{DOC_URI}#{schema_pointer}"},
            registry=registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        problems += [f"{where}: {error.message}" for error in validator.iter_errors(value)]
    return problems


# -- tests on the shipped document ------------------------------------------------------------------


def test_load_openapi_reads_the_shipped_file_afresh() -> None:
    assert OPENAPI_PATH.name == "openapi.yaml" and OPENAPI_PATH.is_file()
    first, second = load_openapi(), load_openapi()
    assert first == second and first is not second
    first["info"]["version"] = "changed"
    assert load_openapi()["info"]["version"] == CONTRACT_VERSION


def test_load_openapi_rejects_duplicate_keys_and_non_mappings(tmp_path: Path) -> None:
    duplicated = tmp_path / "duplicated.yaml"
    duplicated.write_text("openapi: 3.1.0\ninfo:\n  title: a\n  title: b\n", encoding="utf-8")
    with pytest.raises(yaml.YAMLError, match="duplicate key 'title'"):
        load_openapi(duplicated)
    listed = tmp_path / "listed.yaml"
    listed.write_text("- openapi\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a YAML mapping"):
        load_openapi(listed)


def test_document_is_plain_json(doc: dict[str, Any]) -> None:
    # YAML can smuggle in dates and non-string keys; an OpenAPI document must survive a JSON round trip.
    assert json.loads(json.dumps(doc)) == doc


def test_contract_version_and_openapi_version(doc: dict[str, Any]) -> None:
    assert CONTRACT_VERSION == "1.1.0"  # a contract change moves this constant and the document together
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["version"] == CONTRACT_VERSION
    assert doc["components"]["examples"]["Info"]["value"]["contractVersion"] == CONTRACT_VERSION


def test_operations_are_exactly_the_published_list(doc: dict[str, Any]) -> None:
    found = {operation["operationId"]: (method, path) for path, method, operation, _ in operations(doc)}
    assert found == EXPECTED_OPERATIONS


def test_operation_id_enum_lists_every_operation(doc: dict[str, Any]) -> None:
    enum = doc["components"]["schemas"]["OperationId"]["enum"]
    assert len(enum) == len(set(enum))
    assert set(enum) == set(EXPECTED_OPERATIONS)


def test_info_example_lists_every_non_experimental_operation(doc: dict[str, Any]) -> None:
    experimental = {
        op["operationId"] for _, _, op, _ in operations(doc) if op.get("x-mimi-stability") == "experimental"
    }
    assert experimental == {"startHubTransfer", "joinRoom"}
    listed = doc["components"]["examples"]["Info"]["value"]["supportedOperations"]
    assert set(listed) == set(EXPECTED_OPERATIONS) - experimental


def test_structure_follows_openapi_3_1(doc: dict[str, Any]) -> None:
    assert structure_problems(doc) == []


def test_every_operation_is_documented(doc: dict[str, Any]) -> None:
    assert operation_doc_problems(doc) == []


def test_every_operation_documents_its_errors_as_problems(doc: dict[str, Any]) -> None:
    assert error_response_problems(doc) == []


def test_problem_schema_follows_rfc_9457(doc: dict[str, Any]) -> None:
    problem = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status"} <= set(problem["required"])
    assert {"type", "title", "status", "detail", "instance"} <= set(problem["properties"])
    statuses = {int(code) for _, _, op, _ in operations(doc) for code in op["responses"] if str(code)[0] in "45"}
    assert statuses == set(problem["properties"]["status"]["enum"])
    for uri in problem["properties"]["type"]["enum"]:
        assert re.fullmatch(r"https://mimi-conformance\.invalid/problems/[a-z-]+", uri), uri


def test_every_ref_resolves(doc: dict[str, Any]) -> None:
    assert unresolved_refs(doc) == []


def test_request_bodies_are_closed(doc: dict[str, Any]) -> None:
    assert closed_request_problems(doc) == []


def test_schemas_are_json_schema_2020_12(doc: dict[str, Any]) -> None:
    assert schema_keyword_problems(doc) == []


def test_every_component_schema_has_examples(doc: dict[str, Any]) -> None:
    missing = [name for name, schema in doc["components"]["schemas"].items() if not schema.get("examples")]
    assert missing == []


def test_every_example_validates_against_its_schema(doc: dict[str, Any]) -> None:
    assert len(list(example_cases(doc))) > 100  # the walk reaches the examples
    assert example_problems(doc) == []


def test_security_is_optional_bearer(doc: dict[str, Any]) -> None:
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert {} in doc["security"] and {"bearerAuth": []} in doc["security"]
    assert "MUST NOT be reachable in production" in doc["info"]["description"]


@pytest.mark.parametrize(
    ("schema", "accepted", "rejected"),
    [
        (
            "UserUri",
            ["mimi://sut.example/u/alice", "mimi://sut.example/u/al%20ice"],
            ["mimi://sut.example/d/alice", "mimi://sut.example/u/alice/x", "alice", "https://sut.example/u/alice"],
        ),
        (
            "ClientUri",
            ["mimi://sut.example/d/phone", "mimi://sut.example/d/alice/phone"],
            ["mimi://sut.example/u/alice", "mimi://sut.example/d/a/b/c", "mimi://sut.example/d/"],
        ),
        ("RoomUri", ["mimi://sut.example/r/clubhouse"], ["mimi://sut.example/g/clubhouse"]),
        (
            "ActorUri",
            ["mimi://sut.example/u/alice", "mimi://sut.example/d/alice/phone"],
            ["mimi://sut.example/r/clubhouse", "mimi://sut.example/p/5e1b"],
        ),
        ("ParticipantUri", ["mimi://peer.example/u/bob", "mimi://peer.example/p/5e1b"], ["mimi://peer.example/d/x"]),
        ("Capability", ["canBan", "0x0601"], ["canFly", "0x601", 10]),
        ("Base64", ["", "aGk=", "aGVsbG8="], ["aGk", "a b=", "aGk=="]),
        ("LocalName", ["alice", "a.b-c_d~e"], ["", "a/b", "a:b", "x" * 65]),
        ("MessageContent", [{"base64": "aGk="}, {"text": "hi"}], [{}, {"base64": "aGk=", "text": "hi"}]),
    ],
)
def test_identifier_schemas_accept_and_reject(doc: dict[str, Any], schema: str, accepted: list, rejected: list) -> None:
    registry = Registry().with_resource(DOC_URI, Resource(contents=doc, specification=DRAFT202012))
    validator = Draft202012Validator({"$ref": f"{DOC_URI}#/components/schemas/{schema}"}, registry=registry)
    assert [value for value in accepted if not validator.is_valid(value)] == []
    assert [value for value in rejected if validator.is_valid(value)] == []


def test_capability_names_are_room_policy_registry_names(doc: dict[str, Any]) -> None:
    room_policy = pytest.importorskip("reference_peer.wire.room_policy", reason="room-policy-04 structs not built yet")
    names = set(doc["components"]["schemas"]["Capability"]["anyOf"][0]["enum"])
    assert names - set(room_policy.Capability.__members__) == set()
    assert "canSendMessage" in names and "canAddParticipant" in names


def test_user_event_requires_the_members_its_type_needs(doc: dict[str, Any]) -> None:
    registry = Registry().with_resource(DOC_URI, Resource(contents=doc, specification=DRAFT202012))
    validator = Draft202012Validator({"$ref": f"{DOC_URI}#/components/schemas/UserEvent"}, registry=registry)
    assert validator.is_valid({"type": "roomHeld", "room": "mimi://peer.example/r/lounge"})
    assert not validator.is_valid({"type": "roomHeld"})
    assert not validator.is_valid({"type": "joined", "room": "mimi://peer.example/r/lounge"})
    assert not validator.is_valid({"type": "removed", "room": "mimi://peer.example/r/lounge"})
    assert not validator.is_valid({"type": "consentRequested"})


def test_conformance_annotations_name_roles_and_catalogue_requirements(doc: dict[str, Any]) -> None:
    catalogue = load_catalogue()
    document_prefixes = {f"{document.id_prefix}-" for document in catalogue.documents.values()}
    problems = []
    required_for = {}
    for _, _, operation, _ in operations(doc):
        op_id = operation["operationId"]
        annotation = operation.get("x-mimi-conformance")
        if not isinstance(annotation, dict):
            problems.append(f"{op_id}: no x-mimi-conformance")
            continue
        roles = set(annotation.get("requiredFor", ()))
        if not roles <= {"hub", "follower"}:
            problems.append(f"{op_id}: requiredFor {sorted(roles)}")
        if roles:
            required_for[op_id] = roles
        references = annotation.get("requirements", [])
        if not references:
            problems.append(f"{op_id}: names no requirement")
        for reference in references:
            if reference.endswith("-"):
                known = reference in document_prefixes or any(r.id.startswith(reference) for r in catalogue)
            else:
                known = reference in catalogue
            if not known:
                problems.append(f"{op_id}: {reference} matches no catalogue requirement")
    assert problems == []
    assert required_for == EXPECTED_REQUIRED_FOR


def test_vendor_guide_lists_every_operation() -> None:
    guide = VENDOR_GUIDE.read_text(encoding="utf-8")
    missing = [
        f"{op_id} ({method.upper()} {path})"
        for op_id, (method, path) in EXPECTED_OPERATIONS.items()
        if f"`{op_id}`" not in guide or f"`{method.upper()} {path}`" not in guide
    ]
    assert missing == []
    assert f"contract version {CONTRACT_VERSION}" in guide.lower()


# -- the checks find what they are meant to find ----------------------------------------------------


def broken(doc: dict[str, Any], pointer: str, value: Any = None, *, delete: bool = False) -> dict[str, Any]:
    """A deep copy of the document with the member at ``pointer`` replaced or deleted."""
    copied = copy.deepcopy(doc)
    parent_pointer, _, last = pointer.rpartition("/")
    parent = resolve_pointer(copied, parent_pointer)
    key: str | int = last.replace("~1", "/").replace("~0", "~")
    if isinstance(parent, list):
        key = int(key)
    if delete:
        del parent[key]
    else:
        parent[key] = value
    return copied


USERS = "/paths/~1v1~1users/post"
ROOM = "/paths/~1v1~1rooms~1{room}"


@pytest.mark.parametrize(
    ("check", "pointer", "value", "delete", "expected"),
    [
        (
            unresolved_refs,
            f"{USERS}/requestBody/content/application~1json/schema/$ref",
            "#/components/schemas/Nope",
            False,
            "unresolved $ref",
        ),
        (
            unresolved_refs,
            f"{USERS}/requestBody/content/application~1json/schema/$ref",
            "other.yaml#/X",
            False,
            "non-local $ref",
        ),
        (structure_problems, "/openapi", "3.0.3", False, "not '3.1.0'"),
        (structure_problems, f"{ROOM}/parameters", [], False, "path parameters [] != template ['room']"),
        (structure_problems, f"{USERS}/tags", ["people"], False, "undeclared tag people"),
        (structure_problems, "/paths/~1v1~1info/get/requestBody", {"content": {}}, False, "with a request body"),
        (structure_problems, "/components/parameters/RoomPath/required", False, False, "not required"),
        (operation_doc_problems, f"{USERS}/operationId", "getInfo", False, "also used by"),
        (operation_doc_problems, f"{USERS}/summary", None, True, "no summary"),
        (operation_doc_problems, f"{USERS}/responses/201/content", {}, False, "no application/json schema"),
        (error_response_problems, f"{USERS}/responses/422", None, True, "no 422 response"),
        (error_response_problems, f"{ROOM}/get/responses/404", None, True, "no 404 response"),
        (error_response_problems, f"{ROOM}/get/responses/501", None, True, "no 501 response"),
        (
            error_response_problems,
            "/components/responses/Conflict/content/application~1problem+json/schema",
            {"type": "object"},
            False,
            "not the Problem schema",
        ),
        (
            error_response_problems,
            "/components/responses/NotFound/content/application~1problem+json/examples/unknownRoom/value/status",
            400,
            False,
            "example has status 400",
        ),
        (closed_request_problems, "/components/schemas/LeaveRequest/additionalProperties", None, True, "is open"),
        (schema_keyword_problems, "/components/schemas/Room/properties/groupId/nullable", True, False, "nullable"),
        (schema_keyword_problems, "/components/schemas/Room/example", {}, False, "deprecated in 3.1"),
        (schema_keyword_problems, "/components/schemas/Room/type", "record", False, "/components/schemas/Room"),
        (
            example_problems,
            "/components/examples/User/value/clients/0",
            "mimi://sut.example/u/alice",
            False,
            "createUser 201 application/json examples.twoClients",
        ),
        (example_problems, "/components/schemas/Room/examples/0/epoch", -1, False, "/components/schemas/Room"),
        (example_problems, "/components/parameters/UserPath/example", "alice", False, "UserPath/example"),
        (example_problems, "/components/headers/Location/example", 7, False, "Location/example"),
        (
            example_problems,
            "/components/responses/Unauthorized/headers/WWW-Authenticate/example",
            7,
            False,
            "WWW-Authenticate/example",
        ),
        (example_problems, "/components/schemas/UserEvent/examples/0/type", "exploded", False, "UserEvent"),
    ],
)
def test_checks_find_a_planted_defect(doc, check, pointer, value, delete, expected) -> None:
    assert check(doc) == []
    problems = check(broken(doc, pointer, value, delete=delete))
    assert any(expected in problem for problem in problems), problems
