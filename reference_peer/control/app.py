"""The HTTP layer of the SUT control API: an aiohttp application generated from the contract
(``openapi.yaml``) that validates requests, calls a backend and answers as the contract says.

The layer knows nothing of MIMI. A *backend* is any object with one async method per operationId;
the layer calls it as::

    result = await backend.<operationId>(**path_params, **query_params[, body=body])

* **Method names** are the operationIds as written (``createUser``, ``listReceivedMessages``...).
  An operation whose method is absent, or whose method raises ``NotImplementedError``, answers 501
  ``not-implemented``.
* **Arguments** are keyword arguments named after the contract's parameters, turned into Python
  identifiers by :func:`python_name` (every character outside ``[A-Za-z0-9_]`` becomes ``_``, a
  leading digit gets a ``_`` prefix, a keyword or the name ``body`` gets a ``_`` suffix). Today all
  names are already identifiers and map to themselves: ``user``, ``client``, ``room`` (path),
  ``actor``, ``mode``, ``after``, ``limit`` (query).
* **Path parameters** arrive percent-decoded exactly once, whole (a ``%2F`` inside stays a ``/`` of the
  value, never a path separator), and valid against their schema.
* **Query parameters**: every parameter the operation declares is passed, converted to its schema
  type (``limit`` is an ``int``); an absent one is its schema's ``default`` (``limit=100``,
  ``mode="remove"``) or ``None``.
* **body** is passed only to operations with a request body: the parsed JSON, valid against the
  operation's request schema (unknown members are rejected: request bodies are closed).
* **The result** is the JSON body of the operation's one success response (200 or 201 as the contract
  says); for a 201 the layer sets ``Location`` from the created resource's URI in the result.
  ``getInfo`` may leave out ``supportedOperations``: the layer fills it with the operations the backend
  has a method for.
* **Errors**: raise :class:`~reference_peer.control.errors.ControlError`; it is answered with its
  status as ``application/problem+json``. Any other exception is a backend bug: a 500 whose problem
  says nothing of it, and the traceback in the log.

Status codes the layer itself produces: 400 ``bad-request`` (malformed JSON, a body or parameter that
does not match its schema, a wrong Content-Type, an unknown query parameter), 401 ``unauthorized``
(with ``WWW-Authenticate: Bearer``), 404 ``not-found`` (no such path), 405 (method), 413 (body over
the limit), 500, 501 ``not-implemented``. 405, 413 and 500 are outside the contract's Problem type
list, so they use ``about:blank`` (RFC 9457 §4.2.1).

With ``validate_responses=True`` (tests, backend development) every answer is checked against the
contract: a success body that violates its schema, or an error status the operation does not
document, becomes a 500 whose detail names the violation.

``GET /openapi.yaml`` serves the contract itself (a convenience of the reference peer, not an
operation of the contract).
"""

from __future__ import annotations

import functools
import hmac
import json
import keyword
import logging
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import yaml
from aiohttp import web
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from yarl import URL

from reference_peer.control import OPENAPI_PATH, load_openapi
from reference_peer.control.errors import (
    ABOUT_BLANK,
    BAD_REQUEST,
    NOT_FOUND,
    NOT_IMPLEMENTED,
    PROBLEM_MEDIA_TYPE,
    UNAUTHORIZED,
    ControlError,
    problem_body,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "MAX_BODY_BYTES_KEY",
    "OPERATIONS_KEY",
    "Operation",
    "QueryParameter",
    "build_operations",
    "ecma_pattern_to_python",
    "make_control_app",
    "python_name",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# The base URI under which the document is registered, so that "#/components/..." references resolve
# inside it. Any absolute URI works; this one names the contract.
DOCUMENT_URI = "urn:mimi-conformance:control-api"
BEARER_CHALLENGE = 'Bearer realm="mimi-sut-control"'
YAML_MEDIA_TYPE = "application/yaml"
# The contract states where a 201's Location points in the response's description, e.g.
# "The user was created; `Location` is `/v1/users/{user}`." The template is taken from there.
LOCATION_SENTENCE = re.compile(r"`Location` is `(/[^`]+)`")
MAX_DETAIL_CHARS = 400  # a validation message quotes the instance, which may be huge


@dataclass(frozen=True)
class QueryParameter:
    name: str  # as in the contract (and on the wire)
    python_name: str  # the keyword argument the backend receives
    required: bool
    default: Any
    json_type: str | None  # the schema's type, for converting the query string text
    schema_pointer: str


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str  # upper case
    path: str  # the contract's template, e.g. /v1/rooms/{room}/participants/{user}
    raw_path_pattern: re.Pattern[str]  # matches the undecoded request path, one group per parameter
    path_parameters: tuple[tuple[str, str, str], ...]  # (name, python_name, schema pointer)
    query_parameters: tuple[QueryParameter, ...]
    body_schema_pointer: str | None  # None: no request body
    success_status: int
    success_schema_pointer: str | None
    location_template: str | None  # for a 201 that sets Location
    documented_statuses: frozenset[int]


OPERATIONS_KEY = web.AppKey("control_operations", dict)
MAX_BODY_BYTES_KEY = web.AppKey("control_max_body_bytes", int)


def python_name(name: str) -> str:
    """The keyword argument a contract parameter is passed as (see the module docstring)."""
    identifier = re.sub(r"\W", "_", name, flags=re.ASCII)
    if not identifier or identifier[0].isdigit():
        identifier = "_" + identifier
    if keyword.iskeyword(identifier) or identifier == "body":
        identifier += "_"
    return identifier


# -- reading the contract ---------------------------------------------------------------------------


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _resolve_pointer(document: Any, pointer: str) -> Any:
    node = document
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def _deref(document: dict[str, Any], node: Any, pointer: str) -> tuple[Any, str]:
    """Follow local Reference Objects to what they name; the node and its pointer."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#"):
        pointer = node["$ref"][1:]
        node = _resolve_pointer(document, pointer)
    return node, pointer


def _schema_type(document: dict[str, Any], schema: Any) -> str | None:
    resolved, _ = _deref(document, schema, "")
    kind = resolved.get("type") if isinstance(resolved, dict) else None
    return kind if isinstance(kind, str) else None


def _schema_default(document: dict[str, Any], schema: Any) -> Any:
    # A default may sit next to a $ref (OpenAPI 3.1) or in the referenced schema.
    if isinstance(schema, dict) and "default" in schema:
        return schema["default"]
    resolved, _ = _deref(document, schema, "")
    return resolved.get("default") if isinstance(resolved, dict) else None


def _raw_path_pattern(template: str) -> re.Pattern[str]:
    pattern, position = "", 0
    for index, match in enumerate(re.finditer(r"\{([^}]+)\}", template)):
        pattern += re.escape(template[position : match.start()]) + f"(?P<p{index}>[^/]+)"
        position = match.end()
    return re.compile(pattern + re.escape(template[position:]))


def build_operations(document: dict[str, Any]) -> dict[str, Operation]:
    """Every operation of the contract, by operationId; ValueError when the document cannot be served."""
    operations: dict[str, Operation] = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():  # in the document's order, which getInfo's list follows
            if method not in HTTP_METHODS:
                continue
            op_id = operation["operationId"]
            pointer = f"/paths/{_escape(path)}/{method}"
            parameters: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
            for owner, base in ((item, f"/paths/{_escape(path)}"), (operation, pointer)):
                for index, parameter in enumerate(owner.get("parameters", [])):
                    resolved, where = _deref(document, parameter, f"{base}/parameters/{index}")
                    parameters[(resolved["name"], resolved["in"])] = (resolved, where)
            names_in_template = re.findall(r"\{([^}]+)\}", path)
            path_parameters = []
            for name in names_in_template:
                if (name, "path") not in parameters:
                    raise ValueError(f"{op_id}: path parameter {name} is not declared")
                _, where = parameters[(name, "path")]
                path_parameters.append((name, python_name(name), f"{where}/schema"))
            query_parameters = []
            for (name, location), (parameter, where) in parameters.items():
                if location == "query":
                    schema = parameter["schema"]
                    query_parameters.append(
                        QueryParameter(
                            name=name,
                            python_name=python_name(name),
                            required=bool(parameter.get("required")),
                            default=_schema_default(document, schema),
                            json_type=_schema_type(document, schema),
                            schema_pointer=f"{where}/schema",
                        )
                    )
                elif location != "path":
                    raise ValueError(f"{op_id}: {location} parameters are not supported ({name})")
            keywords = [p[1] for p in path_parameters] + [q.python_name for q in query_parameters]
            if len(set(keywords)) != len(keywords):
                raise ValueError(f"{op_id}: parameters map to the same Python name: {keywords}")
            body_pointer = None
            if "requestBody" in operation:
                body, body_where = _deref(document, operation["requestBody"], f"{pointer}/requestBody")
                if "application/json" not in body.get("content", {}):
                    raise ValueError(f"{op_id}: request body is not application/json")
                body_pointer = f"{body_where}/content/application~1json/schema"
            successes = [status for status in operation["responses"] if str(status).startswith("2")]
            if len(successes) != 1:
                raise ValueError(f"{op_id}: expected exactly one 2xx response, found {successes}")
            success = successes[0]
            response, response_where = _deref(
                document, operation["responses"][success], f"{pointer}/responses/{success}"
            )
            success_schema = None
            if "application/json" in response.get("content", {}):
                success_schema = f"{response_where}/content/application~1json/schema"
            location_template = None
            if "Location" in response.get("headers", {}):
                found = LOCATION_SENTENCE.search(response.get("description", ""))
                if found is None:
                    raise ValueError(f"{op_id}: {success} sets Location but does not say to what")
                location_template = found.group(1)
            operations[op_id] = Operation(
                operation_id=op_id,
                method=method.upper(),
                path=path,
                raw_path_pattern=_raw_path_pattern(path),
                path_parameters=tuple(path_parameters),
                query_parameters=tuple(query_parameters),
                body_schema_pointer=body_pointer,
                success_status=int(success),
                success_schema_pointer=success_schema,
                location_template=location_template,
                documented_statuses=frozenset(int(s) for s in operation["responses"] if str(s).isdigit()),
            )
    return operations


# JSON Schema patterns are ECMA-262 regular expressions; Python's ``re`` differs where it matters here:
# ``$`` also matches before a final newline ("alice\n" would pass '^[a-z]+$'), and ``\s``/``\d``/``\w``
# are Unicode-wide (``\s`` takes in U+001C..U+001F and U+0085). Patterns are translated to keep ECMA
# semantics, so the layer accepts exactly what the contract (and schemathesis) accepts.
_ECMA_CLASS_MEMBERS = {
    "s": "\t\n\x0b\x0c\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff",
    "d": "0-9",
    "w": "A-Za-z0-9_",
}
_ECMA_DOT = "[^\n\r\u2028\u2029]"


def ecma_pattern_to_python(pattern: str) -> str:
    """An equivalent Python pattern for an ECMA-262 pattern of the kind JSON schemas use (no flags)."""
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            members = _ECMA_CLASS_MEMBERS.get(escaped.lower())
            if members is None or (in_class and escaped.isupper()):
                out.append(pattern[index : index + 2])  # a negated class inside a class: left as it is
            elif in_class:
                out.append(members)
            else:
                out.append(f"[{members}]" if escaped.islower() else f"[^{members}]")
            index += 2
            continue
        if in_class:
            in_class = char != "]"
            out.append(char)
        elif char == "[":
            in_class = True
            out.append(char)
        elif char == "$":
            out.append("\\Z")
        elif char == ".":
            out.append(_ECMA_DOT)
        else:
            out.append(char)
        index += 1
    return "".join(out)


@functools.cache
def _compiled_ecma_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(ecma_pattern_to_python(pattern))


def _ecma_pattern_keyword(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _compiled_ecma_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_ContractValidator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern_keyword})


class _Validators:
    """A Draft 2020-12 validator for any schema of the document, by JSON pointer, built once."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._registry = Registry().with_resource(DOCUMENT_URI, Resource(contents=document, specification=DRAFT202012))
        self._cache: dict[str, Any] = {}

    def __call__(self, pointer: str) -> Any:
        validator = self._cache.get(pointer)
        if validator is None:
            validator = _ContractValidator(
                {"$ref": f"{DOCUMENT_URI}#{pointer}"},
                registry=self._registry,
                format_checker=Draft202012Validator.FORMAT_CHECKER,
            )
            self._cache[pointer] = validator
        return validator

    def violation(self, pointer: str, instance: Any, where: str) -> str | None:
        """None when valid; else one precise sentence: where in the instance, and what is wrong."""
        error = best_match(self(pointer).iter_errors(instance))
        return None if error is None else _describe(error, where)


def _describe(error: ValidationError, where: str) -> str:
    location = where + "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in error.absolute_path)
    message = error.message
    if len(message) > MAX_DETAIL_CHARS:
        message = message[:MAX_DETAIL_CHARS] + "..."
    return f"{location}: {message}"


# -- answers -----------------------------------------------------------------------------------------


def _problem_response(
    status: int, problem_type: str, title: str, detail: str | None = None, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(problem_body(problem_type, title, status, detail)),
        content_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _control_error_response(error: ControlError) -> web.Response:
    return _problem_response(error.status, error.problem_type, error.title, error.detail)


def _bad_request(detail: str) -> ControlError:
    return ControlError(BAD_REQUEST.uri, detail)


def _internal_error(detail: str) -> web.Response:
    return _problem_response(500, ABOUT_BLANK, "Internal Server Error", detail)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"member {key!r} given twice")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_body(raw: bytes) -> Any:
    """The request body as JSON (RFC 8259: UTF-8, no NaN/Infinity); a duplicated member is refused
    because which value wins would be the parser's choice. ControlError 400 when malformed."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _bad_request(f"request body is not UTF-8: {error.reason} at byte {error.start}") from None
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise _bad_request(
            f"request body is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    except ValueError as error:
        raise _bad_request(f"request body is not valid JSON: {error}") from None
    except RecursionError:
        raise _bad_request("request body is not valid JSON: nested too deeply") from None


def _integral_floats_to_int(value: Any) -> Any:
    """JSON Schema counts 2.0 as an integer, so a valid body may carry one where the contract says
    integer; the backend gets a Python int there (the contract has no ``number`` members, so every
    float of a valid body is at an integer position)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_floats_to_int(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_floats_to_int(item) for item in value]
    return value


def _convert_query_value(parameter: QueryParameter, text: str) -> Any:
    """The query string text as the schema's type (the schema check comes after)."""
    if parameter.json_type == "integer":
        if not re.fullmatch(r"-?[0-9]{1,20}", text):
            raise _bad_request(f"query parameter {parameter.name}: {text!r} is not an integer")
        return int(text)
    if parameter.json_type == "number":
        try:
            return float(text)
        except ValueError:
            raise _bad_request(f"query parameter {parameter.name}: {text!r} is not a number") from None
    if parameter.json_type == "boolean":
        if text not in ("true", "false"):
            raise _bad_request(f"query parameter {parameter.name}: {text!r} is not true or false")
        return text == "true"
    return text


def _is_json_media_type(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def _location(template: str, result: Any) -> str | None:
    if not isinstance(result, dict):
        return None
    values = {}
    for name in re.findall(r"\{([^}]+)\}", template):
        value = result.get(name)
        if not isinstance(value, str):
            return None
        values[name] = quote(value, safe="")  # the whole URI as one segment, as in every path
    return re.sub(r"\{([^}]+)\}", lambda match: values[match.group(1)], template)


@functools.cache
def _shipped_document() -> dict[str, Any]:
    # Parsed once per process (parsing takes a noticeable fraction of a second); never mutated here.
    return load_openapi()


def implemented_operations(backend: Any, operations: Mapping[str, Operation]) -> list[str]:
    """The operationIds the backend has a method for, in the contract's order."""
    return [op_id for op_id in operations if callable(getattr(backend, op_id, None))]


# -- the application --------------------------------------------------------------------------------


def make_control_app(
    backend: Any,
    *,
    token: str | None = None,
    openapi: dict[str, Any] | None = None,
    validate_responses: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> web.Application:
    """The control API over ``backend`` (see the module docstring for the interface it must offer).

    ``token``: when set, every request must carry ``Authorization: Bearer <token>``.
    ``openapi``: the contract to serve (default: the shipped ``openapi.yaml``).
    ``validate_responses``: check every answer against the contract (tests and backend development).
    ``max_body_bytes``: larger request bodies are answered 413.
    """
    if token is not None and not token:
        raise ValueError("an empty bearer token would accept 'Authorization: Bearer '")
    document = openapi if openapi is not None else _shipped_document()
    operations = build_operations(document)
    validators = _Validators(document)
    served_document: list[bytes] = []  # rendered on first request: dumping the YAML is not free

    app = web.Application(
        client_max_size=max_body_bytes,
        middlewares=[_problem_middleware, _make_auth_middleware(token)],
    )
    app[OPERATIONS_KEY] = operations
    app[MAX_BODY_BYTES_KEY] = max_body_bytes
    for operation in operations.values():
        handler = _make_handler(operation, backend, operations, validators, validate_responses)
        app.router.add_route(operation.method, operation.path, handler, name=operation.operation_id)

    async def serve_openapi(request: web.Request) -> web.Response:
        if not served_document:
            if openapi is None:
                served_document.append(OPENAPI_PATH.read_bytes())
            else:
                served_document.append(yaml.safe_dump(openapi, sort_keys=False, allow_unicode=True).encode("utf-8"))
        return web.Response(body=served_document[0], content_type=YAML_MEDIA_TYPE, charset="utf-8")

    app.router.add_get("/openapi.yaml", serve_openapi, name="openapi")
    return app


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answers aiohttp's own errors (no route, wrong method, body too large) as problems, and any
    escaped exception as a bare 500."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        if error.status == 404:
            return _problem_response(404, NOT_FOUND.uri, NOT_FOUND.title, f"no operation at {request.path}")
        if error.status == 413:
            detail = f"request body larger than the limit of {request.app[MAX_BODY_BYTES_KEY]} bytes"
            return _problem_response(413, ABOUT_BLANK, "Content Too Large", detail)
        headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return _problem_response(error.status, ABOUT_BLANK, error.reason, error.text or None, headers)
    except Exception:
        logger.exception("control API: unexpected error answering %s %s", request.method, request.path)
        return _internal_error("internal error; see the SUT's log")


def _make_auth_middleware(token: str | None) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    expected = None if token is None else token.encode("utf-8")

    @web.middleware
    async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if expected is None:
            return await handler(request)
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return _problem_response(
                401,
                UNAUTHORIZED.uri,
                UNAUTHORIZED.title,
                "this control API requires Authorization: Bearer <token>",
                {"WWW-Authenticate": BEARER_CHALLENGE},
            )
        if not hmac.compare_digest(credentials.strip().encode("utf-8"), expected):
            return _problem_response(
                401,
                UNAUTHORIZED.uri,
                UNAUTHORIZED.title,
                "the bearer token is not the configured one",
                {"WWW-Authenticate": f'{BEARER_CHALLENGE}, error="invalid_token"'},
            )
        return await handler(request)

    return auth_middleware


def _make_handler(
    operation: Operation,
    backend: Any,
    operations: Mapping[str, Operation],
    validators: _Validators,
    validate_responses: bool,
) -> Handler:
    op_id = operation.operation_id

    async def read_arguments(request: web.Request) -> dict[str, Any]:
        arguments: dict[str, Any] = {}
        # Route on the undecoded path: aiohttp has matched already, but the values are taken from the
        # raw path here so that each segment is decoded exactly once whatever the router does.
        raw_path = request.raw_path
        if not raw_path.startswith("/"):  # absolute-form request target (RFC 9112 §3.2.2), as proxies send
            raw_path = URL(raw_path, encoded=True).raw_path
        raw_path = raw_path.split("?", 1)[0].split("#", 1)[0]
        match = operation.raw_path_pattern.fullmatch(raw_path)
        if match is None:
            raise ControlError(NOT_FOUND.uri, f"no operation at {raw_path}")
        for index, (name, keyword_name, schema_pointer) in enumerate(operation.path_parameters):
            try:
                value = unquote(match.group(f"p{index}"), errors="strict")
            except UnicodeDecodeError:
                raise _bad_request(f"path parameter {name}: percent-encoding is not UTF-8") from None
            violation = validators.violation(schema_pointer, value, f"path parameter {name}")
            if violation:
                raise _bad_request(violation)
            arguments[keyword_name] = value
        declared = {parameter.name for parameter in operation.query_parameters}
        unknown = sorted(set(request.query) - declared)
        if unknown:
            raise _bad_request(f"unknown query parameter {unknown[0]} (this operation takes: {sorted(declared)})")
        for parameter in operation.query_parameters:
            given = request.query.getall(parameter.name, [])
            if len(given) > 1:
                raise _bad_request(f"query parameter {parameter.name} given {len(given)} times")
            if not given:
                if parameter.required:
                    raise _bad_request(f"query parameter {parameter.name} is required")
                arguments[parameter.python_name] = parameter.default
                continue
            value = _convert_query_value(parameter, given[0])
            violation = validators.violation(parameter.schema_pointer, value, f"query parameter {parameter.name}")
            if violation:
                raise _bad_request(violation)
            arguments[parameter.python_name] = value
        if operation.body_schema_pointer is not None:
            content_type = request.headers.get("Content-Type")
            if content_type is not None and not _is_json_media_type(content_type):
                raise _bad_request(f"Content-Type is {content_type!r}, not application/json")
            raw = await request.read()  # HTTPRequestEntityTooLarge past client_max_size: the 413
            if not raw.strip():
                raise _bad_request("request body is required (a JSON object)")
            body = parse_json_body(raw)
            violation = validators.violation(operation.body_schema_pointer, body, "body")
            if violation:
                raise _bad_request(violation)
            arguments["body"] = _integral_floats_to_int(body)
        return arguments

    def check_error_documented(error: ControlError) -> web.Response | None:
        if validate_responses and error.status not in operation.documented_statuses:
            return _internal_error(
                f"response validation: {op_id} answered {error.status} ({error.problem_type}), "
                f"which the contract does not document for it"
            )
        return None

    async def handler(request: web.Request) -> web.Response:
        try:
            arguments = await read_arguments(request)
        except ControlError as error:
            return _control_error_response(error)
        method = getattr(backend, op_id, None)
        if not callable(method):
            return _problem_response(
                501, NOT_IMPLEMENTED.uri, NOT_IMPLEMENTED.title, f"{op_id} is not implemented by this SUT"
            )
        try:
            result = await method(**arguments)
        except ControlError as error:
            return check_error_documented(error) or _control_error_response(error)
        except NotImplementedError:
            return _problem_response(
                501, NOT_IMPLEMENTED.uri, NOT_IMPLEMENTED.title, f"{op_id} is not implemented by this SUT"
            )
        except Exception:
            logger.exception("control API: backend %s failed", op_id)
            return _internal_error(f"internal error in {op_id}; see the SUT's log")
        if op_id == "getInfo" and isinstance(result, dict) and "supportedOperations" not in result:
            result = {**result, "supportedOperations": implemented_operations(backend, operations)}
        if validate_responses and operation.success_schema_pointer is not None:
            violation = validators.violation(operation.success_schema_pointer, result, "response body")
            if violation:
                return _internal_error(f"response validation: {op_id} answered {violation}")
        try:
            text = json.dumps(result, allow_nan=False)
        except (TypeError, ValueError):
            logger.exception("control API: backend %s returned a result that is not JSON", op_id)
            return _internal_error(f"internal error in {op_id}; see the SUT's log")
        headers = None
        if operation.location_template is not None:
            location = _location(operation.location_template, result)
            if location is not None:
                headers = {"Location": location}
        return web.Response(
            status=operation.success_status, text=text, content_type="application/json", headers=headers
        )

    handler.__name__ = f"control_{op_id}"
    return handler
