"""The MIMI endpoint catalogue (draft-ietf-mimi-protocol-06 §5), the directory document (§5.1) and
parsing of endpoint paths.

Each endpoint takes exactly one path variable, percent-encoded into a single path segment: a room
id is a whole ``mimi://`` URI, so its slashes travel as ``%2F``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from ..overrides import NO_OVERRIDES, Overrides, step

DIRECTORY_PATH = "/.well-known/mimi-protocol-directory"
API_PREFIX = "/v1/"


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    variable: str


# Variable names follow the endpoint sections; the §5.1 example disagrees for the consent endpoints
# ({targetUser}/{requesterUser}) but §5.7 defines the paths with domains.
ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint("keyMaterial", "POST", "targetUser"),
        Endpoint("update", "POST", "roomId"),
        Endpoint("notify", "POST", "roomId"),
        Endpoint("submitMessage", "POST", "roomId"),
        Endpoint("groupInfo", "POST", "roomId"),
        Endpoint("requestConsent", "POST", "targetDomain"),
        Endpoint("updateConsent", "POST", "requesterDomain"),
        Endpoint("identifierQuery", "POST", "domain"),
        Endpoint("reportAbuse", "POST", "roomId"),
        Endpoint("proxyDownload", "GET", "downloadUrl"),
        # The hub-transfer extension (docs/extensions/hub-transfer.md §3.3); listed only by providers serving it.
        Endpoint("hubTransfer", "POST", "roomId"),
    )
}
EXTENSION_ENDPOINTS = frozenset({"hubTransfer"})
# Other template variable names (-06 §5.1 fixes none: RFC 6570 templates), for SECTION_VARIABLE_NAMES's departure.
OTHER_VARIABLE_NAMES = {"targetUser": "user", "roomId": "room", "targetDomain": "provider", "requesterDomain": "provider",
                        "domain": "domain_name", "downloadUrl": "url"}


# The rules of the §5.1 directory document (steps a peer may be built to perform otherwise).
SECTION_VARIABLE_NAMES = step(
    "directory.document.section-variable-names", "PROTO-DIRECTORY-WELL-KNOWN",
    summary="each endpoint template's variable is named after its endpoint section ({targetUser}, {roomId}, ...)",
)
LIST_HUB_TRANSFER = step(
    "directory.document.list-hub-transfer", "EXT-HUBXFER-DIRECTORY",
    summary="a provider serving the hub-transfer extension lists hubTransfer in its directory",
)
LIST_PROXY_DOWNLOAD = step(
    "directory.document.list-proxy-download", "PROTO-DIRECTORY-HUB-ENDPOINTS",
    summary="the directory lists proxyDownload (an endpoint a hub is required to implement)",
)
LIST_NOTIFY = step(
    "directory.document.list-notify", "PROTO-DIRECTORY-FOLLOWER-ENDPOINTS",
    summary="the directory lists notify (the endpoint a hub reaches a follower at)",
)
LIST_IDENTIFIER_QUERY = step(
    "directory.document.list-identifier-query", "PROTO-DIRECTORY-WELL-KNOWN",
    summary="the directory lists identifierQuery (an endpoint the reference peer serves)",
)
ENDPOINTS_ONLY = step(
    "directory.document.endpoints-only", "PROTO-DIRECTORY-WELL-KNOWN",
    summary="the directory has members for endpoints only (no 'meta' object)",
)
HTTPS_URLS = step(
    "directory.document.https-urls", "PROTO-DIRECTORY-HTTPS-URLS",
    summary="every endpoint URL in the directory is an https URL",
)
CATALOGUE_ORDER = step(
    "directory.document.catalogue-order", "PROTO-DIRECTORY-WELL-KNOWN",
    summary="the directory lists its members in the order of the endpoint catalogue (hook(document) -> the "
            "document with its members in another order)",
)
V1_PATHS = step(
    "server.route.v1-paths", "PROTO-DIRECTORY-HTTPS-URLS",
    summary="the endpoints are listed in the directory and served at /v1/<endpoint>/<variable> (hook() -> "
            "another path prefix, '/.../', for both)",
)


def api_prefix(overrides: Overrides = NO_OVERRIDES) -> str:
    """The path prefix the endpoints are listed and served under (``/v1/`` unless built otherwise)."""
    return overrides.hook(V1_PATHS) or API_PREFIX


def directory_document(authority: str, served: frozenset[str] | tuple[str, ...] = (),
                       overrides: Overrides = NO_OVERRIDES) -> dict[str, object]:
    """The §5.1 directory for a provider reached at ``authority`` (``host`` or ``host:port``); an
    extension endpoint is listed only when it is in ``served`` (the provider registered it).
    ``overrides``: those of the server answering (the caller's)."""
    # Another naming renames the -06 endpoints' variables; the hub-transfer extension's keeps its own.
    other_names = overrides.departs(SECTION_VARIABLE_NAMES)
    prefix = api_prefix(overrides)
    document = {
        e.name: f"https://{authority}{prefix}{e.name}/"
                f"{{{OTHER_VARIABLE_NAMES[e.variable] if other_names and e.name not in EXTENSION_ENDPOINTS else e.variable}}}"
        for e in ENDPOINTS.values()
        if e.name not in EXTENSION_ENDPOINTS or e.name in served
    }
    if overrides.departs(LIST_HUB_TRANSFER):
        document.pop("hubTransfer", None)
    if overrides.departs(LIST_PROXY_DOWNLOAD):
        del document["proxyDownload"]
    if overrides.departs(LIST_NOTIFY):
        del document["notify"]
    if overrides.departs(LIST_IDENTIFIER_QUERY):
        del document["identifierQuery"]
    if overrides.departs(ENDPOINTS_ONLY):
        document["meta"] = {"termsOfService": f"https://{authority}/terms", "website": f"https://{authority}/"}
    if overrides.departs(HTTPS_URLS):
        document["reportAbuse"] = "http://" + document["reportAbuse"].removeprefix("https://")
    return overrides.hook(CATALOGUE_ORDER, document) or document


def directory_json(authority: str, served: frozenset[str] | tuple[str, ...] = (),
                   overrides: Overrides = NO_OVERRIDES) -> bytes:
    return json.dumps(directory_document(authority, served, overrides), indent=2).encode()


class PathError(ValueError):
    """A path that names an endpoint but carries a malformed variable (answered 400)."""


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def decode_segment(segment: str) -> str:
    """Percent-decode one path segment strictly: every ``%`` starts a valid escape and the result is UTF-8.

    Every endpoint request's path variable passes here, so a well-formed one must decode: a requestConsent
    for a known user is answered 201 (PROTO-CONSENT-REQUEST-RESPONSE), not refused as a malformed path."""
    if _BAD_ESCAPE.search(segment):
        raise PathError(f"invalid percent-escape in path segment {segment!r}")
    try:
        value = unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError:
        raise PathError(f"path segment {segment!r} does not decode to UTF-8") from None
    if not value:
        raise PathError("empty path variable")
    return value


def encode_segment(value: str) -> str:
    """Percent-encode ``value`` into one path segment (everything outside RFC 3986 unreserved is escaped)."""
    return quote(value, safe="")


def match_endpoint(raw_path: str, prefix: str = API_PREFIX) -> tuple[Endpoint, str] | None:
    """(endpoint, raw variable segment) for ``/v1/<name>/<segment>`` (``prefix``: the server's, see
    :func:`api_prefix`); None when no endpoint has that shape.

    ``raw_path`` must be the undecoded request path without the query: decoding first would turn an
    encoded ``%2F`` into a segment separator.

    Every MIMI request the server admits is routed here, so a request at a served endpoint's URL must
    reach its handler: a requestConsent for a known user is answered 201 (PROTO-CONSENT-REQUEST-RESPONSE),
    not refused as an unknown path.
    """
    if not raw_path.startswith(prefix):
        return None
    name, sep, segment = raw_path[len(prefix) :].partition("/")
    endpoint = ENDPOINTS.get(name)
    if endpoint is None or not sep or not segment or "/" in segment:
        return None
    return endpoint, segment


# An RFC 6570 simple-expansion expression: its varname is ALPHA / DIGIT / "_" / pct-encoded, with inner dots.
_VARCHAR = r"(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})"
TEMPLATE_VARIABLE = re.compile(r"\{(" + _VARCHAR + r"(?:\.?" + _VARCHAR + r")*)\}")


def expand_template(template: str, value: str) -> str:
    """Fill the single ``{variable}`` of a directory URL template with the percent-encoded ``value``
    (any RFC 6570 variable name: -06 §5.1 fixes none). Every outgoing request's URL is built here, a new
    hub's fan-out of a room it took over included (EXT-HUBXFER-NEWHUB-SERVES: the follower's submitMessage
    is sequenced and delivered)."""
    match = TEMPLATE_VARIABLE.search(template)
    if match is None:
        raise ValueError(f"directory template has no variable: {template!r}")
    return template[: match.start()] + encode_segment(value) + template[match.end() :]
