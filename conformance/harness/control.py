"""A client of the SUT control API (reference_peer/control/openapi.yaml, docs/control-api.md).

One generic entry point, :meth:`ControlClient.call` ``(operation_id, path_params, query, body)``,
checked against the contract before anything is sent: the operation must exist, path parameters
must be exactly the template's, query names must be declared, and the body must match the
operation's request schema (a mismatch is a bug of the check: :class:`ControlRequestInvalid`).
A handful of named helpers cover the calls every scenario makes.

Every call has a timeout (one overall deadline, not only per socket operation) and reads at most
``max_response_bytes``. RFC 9457 problem documents become :class:`ControlProblem`; an operation the
SUT does not list in ``getInfo.supportedOperations``, or answers 501, raises :class:`NotSupported`,
which makes the check NOT_APPLICABLE naming the operation (``CheckResult.missing_operation``; the run
summary counts them). Every exchange is reported to ``observer`` (the recorder), and the operationIds
a check asks for go to ``operation_record`` (:class:`OperationRecord`; ``CheckResult.control_operations``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpcore
import httpx
from jsonschema import Draft202012Validator

from reference_peer.control import load_openapi

DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
_METHODS = ("get", "post", "put", "patch", "delete")


class ControlApiError(Exception):
    """A control call produced no usable answer (timeout, unreachable, garbage, an error status)."""

    def __init__(self, message: str, *, operation: str | None = None, status: int | None = None) -> None:
        super().__init__(f"{operation}: {message}" if operation else message)
        self.operation = operation
        self.status = status


class ControlTimeout(ControlApiError):
    pass


class ControlUnreachable(ControlApiError):
    pass


class ControlResponseError(ControlApiError):
    """The answer is not what the contract allows: not JSON, too large, not a problem document on error."""


class ControlProblem(ControlApiError):
    """The SUT answered with an RFC 9457 problem document."""

    def __init__(self, operation: str, status: int, problem: Mapping[str, Any]) -> None:
        self.problem = dict(problem)
        self.type = str(problem.get("type", "about:blank"))
        detail = problem.get("detail") or problem.get("title") or ""
        super().__init__(f"HTTP {status} {self.type}: {detail}", operation=operation, status=status)


class NotSupported(ControlApiError):
    """The SUT does not implement the operation (not declared in getInfo, or 501): NOT_APPLICABLE."""


class ControlRequestInvalid(ValueError):
    """The suite built a request the contract does not allow (a bug in the check, never the SUT's)."""


@dataclass(frozen=True)
class ControlExchange:
    """One control call as the recorder keeps it."""

    operation: str
    method: str
    url: str
    request_body: bytes
    status: int | None = None
    response_headers: Mapping[str, str] = field(default_factory=dict)
    response_body: bytes = b""
    error: str | None = None
    elapsed: float = 0.0


class OperationRecord:
    """The operationIds one check asked of a control API, in the order first asked: each operation it
    called or required before acting, whether or not the SUT offers it. The getInfo the client makes
    for itself to learn supportedOperations is not the check's; ``supports()`` questions are not kept
    (a check that only asks whether an operation is offered does not need it)."""

    def __init__(self) -> None:
        self._operations: dict[str, None] = {}  # a dict keeps first-asked order without duplicates

    def note(self, operation_id: str) -> None:
        self._operations.setdefault(operation_id, None)

    @property
    def operations(self) -> tuple[str, ...]:
        return tuple(self._operations)


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    body_schema: Mapping[str, Any] | None
    body_required: bool
    # status code -> JSON schema of the documented 2xx answer (only those with a JSON body)
    response_schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class ControlReply:
    status: int
    headers: httpx.Headers
    body: Any  # the parsed JSON answer (None when empty)


class Contract:
    """The operations of the OpenAPI document, with validators for their request bodies."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.version = str(document["info"]["version"])
        self.operations: dict[str, Operation] = {}
        for path, item in document["paths"].items():
            shared = [self._deref(p) for p in item.get("parameters", [])]
            for method in _METHODS:
                spec = item.get(method)
                if spec is None:
                    continue
                params = shared + [self._deref(p) for p in spec.get("parameters", [])]
                body = spec.get("requestBody")
                schema = None
                if body is not None:
                    schema = body["content"]["application/json"]["schema"]
                self.operations[spec["operationId"]] = Operation(
                    operation_id=spec["operationId"],
                    method=method.upper(),
                    path=path,
                    path_params=tuple(p["name"] for p in params if p["in"] == "path"),
                    query_params=tuple(p["name"] for p in params if p["in"] == "query"),
                    body_schema=schema,
                    body_required=bool(body and body.get("required")),
                    response_schemas={
                        status: self._deref(answer["content"]["application/json"]["schema"])
                        for status, answer in spec.get("responses", {}).items()
                        if status.startswith("2") and "application/json" in self._deref(answer).get("content", {})
                    },
                )

    def _deref(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = node.get("$ref")
        if ref is None:
            return node
        target: Any = self.document
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        return target

    @functools.cache  # noqa: B019 - one Contract per process; validators are costly to build
    def validator(self, operation_id: str) -> Draft202012Validator | None:
        schema = self.operations[operation_id].body_schema
        if schema is None:
            return None
        # Refs in the document point at #/components/...: give the schema the document's components.
        return Draft202012Validator({**schema, "components": self.document["components"]})


@functools.cache
def default_contract() -> Contract:
    return Contract(load_openapi())


def _json_kind(value: Any) -> str:
    if value is None:
        return "empty"
    return {dict: "a JSON object", list: "a JSON array", str: "a JSON string", bool: "a JSON boolean"}.get(
        type(value), "a JSON number"
    )


def _article(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def encode_segment(value: str) -> str:
    """A whole mimi URI as one path segment: every octet outside RFC 3986 unreserved is encoded."""
    return quote(value, safe="")


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's synchronous network backend, with every connect, read and write also bounded by
    the calling thread's overall deadline (set with :meth:`deadline`).

    httpx's timeouts are per socket operation: a SUT that trickles its status line or headers one
    byte at a time never trips them, and the answer's headers arrive before the caller can look at
    the clock. Shrinking each operation's timeout to what is left of the deadline bounds the whole
    exchange, headers included."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()
        self._local = threading.local()

    @contextlib.contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        previous = getattr(self._local, "at", None)
        self._local.at = time.monotonic() + seconds
        try:
            yield
        finally:
            self._local.at = previous

    def bounded(self, timeout: float | None, error: type[Exception]) -> float | None:
        at = getattr(self._local, "at", None)
        if at is None:
            return timeout
        left = at - time.monotonic()
        if left <= 0:
            raise error("the overall deadline of the exchange passed")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        stream = self._inner.connect_tcp(host, port, self.bounded(timeout, httpcore.ConnectTimeout), local_address,
                                         socket_options)
        return _DeadlineStream(stream, self)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):  # pragma: no cover - no uds here
        return _DeadlineStream(
            self._inner.connect_unix_socket(path, self.bounded(timeout, httpcore.ConnectTimeout), socket_options), self
        )

    def sleep(self, seconds: float) -> None:  # pragma: no cover - only with retries, which are off
        self._inner.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, backend: _DeadlineBackend) -> None:
        self._inner = inner
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._backend.bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._backend.bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        stream = self._inner.start_tls(ssl_context, server_hostname, self._backend.bounded(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(stream, self._backend)

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


def _deadline_transport(verify: Any, backend: _DeadlineBackend) -> httpx.HTTPTransport:
    """httpx's default transport (no proxy from the environment) on the deadline-bounded backend."""
    transport = httpx.HTTPTransport(verify=verify, trust_env=False)
    # httpx has no public way to pass a network backend; its pool is rebuilt with the same SSL settings.
    transport._pool = httpcore.ConnectionPool(  # noqa: SLF001
        ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False), network_backend=backend
    )
    return transport


class ControlClient:
    """Synchronous control API client (the checks are synchronous; MIMI traffic has its own loop)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        verify: Any = True,
        observer: Callable[[ControlExchange], None] | None = None,
        contract: Contract | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.observer = observer
        self.contract = contract or default_contract()
        headers = {"Accept": "application/json, application/problem+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # trust_env=False: a proxy from the environment must never sit between the suite and the SUT.
        self._deadlines = _DeadlineBackend()
        self._http = httpx.Client(
            headers=headers, transport=_deadline_transport(verify, self._deadlines), trust_env=False,
            follow_redirects=False,
        )
        self._supported: frozenset[str] | None = None
        self._info: dict[str, Any] | None = None
        # Set per check (the plugin's ``sut`` fixture) on the SUT's client: what the check asks of it.
        self.operation_record: OperationRecord | None = None
        # Set by a connector that knows more when the SUT cannot be reached (e.g. its process exited).
        self.explain_unreachable: Callable[[], str | None] | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- contract -------------------------------------------------------------------------------

    def build_request(
        self,
        operation_id: str,
        path_params: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> tuple[Operation, str, dict[str, Any]]:
        """(operation, URL, query) for a call, or :class:`ControlRequestInvalid` naming what is wrong."""
        operation = self.contract.operations.get(operation_id)
        if operation is None:
            raise ControlRequestInvalid(f"{operation_id}: no such operation in control API {self.contract.version}")
        given = dict(path_params or {})
        if set(given) != set(operation.path_params):
            raise ControlRequestInvalid(
                f"{operation_id}: path parameters must be {sorted(operation.path_params)}, got {sorted(given)}"
            )
        path = operation.path
        for name, value in given.items():
            path = path.replace("{" + name + "}", encode_segment(str(value)))
        params = {k: v for k, v in (query or {}).items() if v is not None}
        unknown = set(params) - set(operation.query_params)
        if unknown:
            raise ControlRequestInvalid(f"{operation_id}: undeclared query parameter(s) {sorted(unknown)}")
        validator = self.contract.validator(operation_id)
        if validator is None and body is not None:
            raise ControlRequestInvalid(f"{operation_id}: takes no request body")
        if validator is not None:
            if body is None and operation.body_required:
                raise ControlRequestInvalid(f"{operation_id}: a request body is required")
            if body is not None:
                errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
                if errors:
                    where = "/".join(map(str, errors[0].absolute_path)) or "(body)"
                    raise ControlRequestInvalid(f"{operation_id}: request body {where}: {errors[0].message}")
        return operation, self.base_url + path, params

    # --- calls ----------------------------------------------------------------------------------

    def call(
        self,
        operation_id: str,
        path_params: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        *,
        timeout: float | None = None,
    ) -> ControlReply:
        """Perform one operation; raises :class:`NotSupported` for an operation the SUT did not declare."""
        operation, url, params = self.build_request(operation_id, path_params, query, body)
        self.require(operation_id)
        return self._send(operation, url, params, body, timeout if timeout is not None else self.timeout)

    def _note(self, operation_id: str) -> None:
        if self.operation_record is not None:
            self.operation_record.note(operation_id)

    def _send(
        self, operation: Operation, url: str, params: Mapping[str, Any], body: Any, timeout: float
    ) -> ControlReply:
        op = operation.operation_id
        content = b"" if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        started = time.monotonic()
        status: int | None = None
        response_headers: httpx.Headers = httpx.Headers()
        received = bytearray()
        error: ControlApiError | None = None
        try:
            try:
                with self._deadlines.deadline(timeout), self._http.stream(
                    operation.method, url, params=params, content=content, headers=headers,
                    timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)),
                ) as response:
                    status, response_headers = response.status_code, response.headers
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > self.max_response_bytes:
                        raise ControlResponseError(
                            f"answer declares a {declared}-byte body, over the {self.max_response_bytes}-byte cap",
                            operation=op, status=status,
                        )
                    for chunk in response.iter_raw():
                        received += chunk
                        if len(received) > self.max_response_bytes:
                            raise ControlResponseError(
                                f"response passed the {self.max_response_bytes}-byte cap", operation=op, status=status
                            )
                        # Per-read timeouts do not bound a trickling answer: enforce the overall deadline.
                        if time.monotonic() - started > timeout:
                            raise ControlTimeout(f"no complete answer within {timeout:g}s", operation=op)
            except httpx.TimeoutException as exc:
                raise ControlTimeout(
                    f"no complete answer within {timeout:g}s ({type(exc).__name__})", operation=op
                ) from exc
            except httpx.RemoteProtocolError as exc:
                raise ControlResponseError(
                    f"not a valid HTTP answer: {type(exc).__name__}: {exc}{self._explanation()}",
                    operation=op, status=status,
                ) from exc
            except httpx.TransportError as exc:
                raise ControlUnreachable(f"{type(exc).__name__}: {exc}{self._explanation()}", operation=op) from exc
            reply = self._interpret(op, status, response_headers, bytes(received))
            self._check_shape(op, reply.status, reply.body)
        except ControlApiError as exc:
            error = exc
            raise
        finally:
            if self.observer is not None:
                self.observer(
                    ControlExchange(
                        operation=op, method=operation.method, url=str(httpx.URL(url, params=params)),
                        request_body=content, status=status, response_headers=dict(response_headers),
                        response_body=bytes(received), error=str(error) if error else None,
                        elapsed=time.monotonic() - started,
                    )
                )
        return reply

    def _explanation(self) -> str:
        note = self.explain_unreachable() if self.explain_unreachable is not None else None
        return f" ({note})" if note else ""

    @staticmethod
    def _interpret(op: str, status: int | None, headers: httpx.Headers, body: bytes) -> ControlReply:
        assert status is not None
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ControlResponseError(
                    f"HTTP {status} with a body that is not JSON: {exc}", operation=op, status=status
                ) from None
        if status == 501:
            raise NotSupported("the SUT answered 501 not implemented", operation=op, status=status)
        if status >= 400:
            if not isinstance(parsed, dict):
                raise ControlResponseError(f"HTTP {status} without a problem document", operation=op, status=status)
            raise ControlProblem(op, status, parsed)
        if 300 <= status < 400 and "location" in headers:
            raise ControlResponseError(
                f"unexpected HTTP {status} redirect to {headers['location']} (redirects are not followed)",
                operation=op, status=status,
            )
        if not 200 <= status < 300:
            raise ControlResponseError(f"unexpected HTTP {status}", operation=op, status=status)
        return ControlReply(status, headers, parsed)

    def _check_shape(self, op: str, status: int, parsed: Any) -> None:
        """The outline of a 2xx answer (top-level JSON type and required members) must be the contract's:
        a check reading ``body["user"]`` must not die on a list with a TypeError that blames nobody."""
        operation = self.contract.operations.get(op)
        if operation is None or not operation.response_schemas:
            return
        schemas = operation.response_schemas
        # An undocumented 2xx (200 for a documented 201) is held to the only documented one, if one.
        schema = schemas.get(str(status)) or (next(iter(schemas.values())) if len(schemas) == 1 else None)
        if not schema:
            return
        kinds = {"object": dict, "array": list, "string": str}
        expected = kinds.get(schema.get("type", ""))
        if expected is not None and not isinstance(parsed, expected):
            raise ControlResponseError(
                f"HTTP {status} answer is {_json_kind(parsed)}, where the contract has {_article(schema['type'])}",
                operation=op, status=status,
            )
        if isinstance(parsed, dict):
            missing = [name for name in schema.get("required", ()) if name not in parsed]
            if missing:
                raise ControlResponseError(
                    f"HTTP {status} answer lacks the member(s) the contract requires: {', '.join(missing)}",
                    operation=op, status=status,
                )

    # --- info -----------------------------------------------------------------------------------

    def get_info(self, *, refresh: bool = False, timeout: float | None = None) -> dict[str, Any]:
        self._note("getInfo")
        return self._load_info(refresh=refresh, timeout=timeout)

    def _load_info(self, *, refresh: bool = False, timeout: float | None = None) -> dict[str, Any]:
        if self._info is None or refresh:
            operation, url, params = self.build_request("getInfo")
            info = self._send(operation, url, params, None, timeout if timeout is not None else self.timeout).body
            if not isinstance(info, dict) or not isinstance(info.get("supportedOperations"), list):
                raise ControlResponseError("getInfo answer lacks supportedOperations", operation="getInfo")
            self._info = info
            self._supported = frozenset(str(op) for op in info["supportedOperations"]) | {"getInfo"}
        return self._info

    def require(self, operation_id: str) -> None:
        """:class:`NotSupported` (the check is NOT_APPLICABLE, counted under this operation) unless the SUT
        lists ``operation_id`` in getInfo; for a check that must know before it starts acting."""
        self._note(operation_id)
        if operation_id != "getInfo" and operation_id not in self.supported_operations():
            raise NotSupported(
                "a control operation the check needs, which the SUT does not list in GET /v1/info supportedOperations",
                operation=operation_id,
            )

    def supported_operations(self) -> frozenset[str]:
        if self._supported is None:
            self._load_info()
        assert self._supported is not None
        return self._supported

    # --- named helpers for the common calls -----------------------------------------------------

    def create_user(self, **body: Any) -> dict[str, Any]:
        return self.call("createUser", body=body).body

    def create_room(self, **body: Any) -> dict[str, Any]:
        return self.call("createRoom", body=body).body

    def get_room(self, room: str) -> dict[str, Any]:
        return self.call("getRoom", {"room": room}).body

    def add_participant(self, room: str, **body: Any) -> dict[str, Any]:
        return self.call("addParticipant", {"room": room}, body=body).body

    def send_message(self, room: str, **body: Any) -> dict[str, Any]:
        return self.call("sendMessage", {"room": room}, body=body).body

    def list_received_messages(self, client: str, **query: Any) -> dict[str, Any]:
        return self.call("listReceivedMessages", {"client": client}, query=query).body
