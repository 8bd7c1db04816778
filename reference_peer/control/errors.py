"""Errors of the SUT control API as RFC 9457 problems.

A backend raises :class:`ControlError` (built with one of the constructors below) for a control call
that is wrong or impossible; the HTTP layer (``app.py``) answers it as ``application/problem+json``.
The problem types are the fixed URIs of the contract's ``Problem`` schema (openapi.yaml
``components.schemas.Problem``); ``tests/control`` checks that this table and the document agree.

A remote refusal (the hub rejected a commit, no KeyPackage) is not a ControlError: the operation
answers 200 with an ``outcome``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://mimi-conformance.invalid/problems/"
# RFC 9457 §4.2.1: a problem with no semantics beyond its HTTP status. Used only for the answers the
# contract does not define (413, 405, 500), whose status is outside the Problem schema's enum.
ABOUT_BLANK = "about:blank"


@dataclass(frozen=True)
class ProblemType:
    uri: str
    status: int
    title: str


def _problem(slug: str, status: int, title: str) -> ProblemType:
    return ProblemType(PROBLEM_BASE + slug, status, title)


BAD_REQUEST = _problem("bad-request", 400, "Bad request")
UNAUTHORIZED = _problem("unauthorized", 401, "Unauthorized")
NOT_FOUND = _problem("not-found", 404, "Not found")
ALREADY_EXISTS = _problem("already-exists", 409, "Already exists")
CONFLICT = _problem("conflict", 409, "Conflict")
NOT_PERMITTED = _problem("not-permitted", 409, "Not permitted")
NOT_LOCAL = _problem("not-local", 422, "Not a local user or client")
POLICY_UNSUPPORTED = _problem("policy-unsupported", 422, "Room policy not supported")
UNSUPPORTED_VALUE = _problem("unsupported-value", 422, "Value not supported")
NOT_IMPLEMENTED = _problem("not-implemented", 501, "Not implemented")

# Every problem type of the contract, by URI, in the document's order.
PROBLEM_TYPES: dict[str, ProblemType] = {
    problem.uri: problem
    for problem in (
        BAD_REQUEST,
        UNAUTHORIZED,
        NOT_FOUND,
        ALREADY_EXISTS,
        CONFLICT,
        NOT_PERMITTED,
        NOT_LOCAL,
        POLICY_UNSUPPORTED,
        UNSUPPORTED_VALUE,
        NOT_IMPLEMENTED,
    )
}


class ControlError(Exception):
    """A control call the backend refuses: answered with ``status`` and a problem of ``problem_type``.

    ``problem_type`` must be one of the contract's URIs and ``status`` the status that type goes with
    (a mismatch is a bug of the caller, so it fails loudly here rather than on the wire).
    """

    def __init__(self, problem_type: str, detail: str, *, status: int | None = None) -> None:
        known = PROBLEM_TYPES.get(problem_type)
        if known is None:
            raise ValueError(f"{problem_type!r} is not a problem type of the control API contract")
        if status is not None and status != known.status:
            raise ValueError(f"{problem_type} goes with status {known.status}, not {status}")
        super().__init__(detail)
        self.problem_type = problem_type
        self.status = known.status
        self.title = known.title
        self.detail = detail

    def __repr__(self) -> str:
        return f"ControlError({self.problem_type!r}, {self.detail!r}, status={self.status})"

    def to_problem(self) -> dict[str, Any]:
        return problem_body(self.problem_type, self.title, self.status, self.detail)

    # -- constructors, one per problem type -------------------------------------------------------

    @classmethod
    def bad_request(cls, detail: str) -> ControlError:
        return cls(BAD_REQUEST.uri, detail)

    @classmethod
    def unauthorized(cls, detail: str) -> ControlError:
        return cls(UNAUTHORIZED.uri, detail)

    @classmethod
    def not_found(cls, detail: str) -> ControlError:
        return cls(NOT_FOUND.uri, detail)

    @classmethod
    def already_exists(cls, detail: str) -> ControlError:
        return cls(ALREADY_EXISTS.uri, detail)

    @classmethod
    def conflict(cls, detail: str) -> ControlError:
        return cls(CONFLICT.uri, detail)

    @classmethod
    def not_permitted(cls, detail: str) -> ControlError:
        return cls(NOT_PERMITTED.uri, detail)

    @classmethod
    def not_local(cls, detail: str) -> ControlError:
        return cls(NOT_LOCAL.uri, detail)

    @classmethod
    def policy_unsupported(cls, detail: str) -> ControlError:
        return cls(POLICY_UNSUPPORTED.uri, detail)

    @classmethod
    def unsupported_value(cls, detail: str) -> ControlError:
        return cls(UNSUPPORTED_VALUE.uri, detail)

    @classmethod
    def not_implemented(cls, detail: str) -> ControlError:
        return cls(NOT_IMPLEMENTED.uri, detail)

    # The 422 family under the generic name the brief uses; ``not_local`` etc. are more precise.
    unprocessable = unsupported_value


def problem_body(problem_type: str, title: str, status: int, detail: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem object (the ``Problem`` schema of the contract)."""
    body: dict[str, Any] = {"type": problem_type, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    return body


__all__ = [
    "ABOUT_BLANK",
    "ALREADY_EXISTS",
    "BAD_REQUEST",
    "CONFLICT",
    "NOT_FOUND",
    "NOT_IMPLEMENTED",
    "NOT_LOCAL",
    "NOT_PERMITTED",
    "POLICY_UNSUPPORTED",
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_TYPES",
    "UNAUTHORIZED",
    "UNSUPPORTED_VALUE",
    "ControlError",
    "ProblemType",
    "problem_body",
]
