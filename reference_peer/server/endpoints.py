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

from ..faults import active
from ..faults import discovery as faults
from ..faults import transfer_old_hub as old_hub_faults
from ..faults import variants_strictness as strictness_variants

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
# Variant directory-other-variable-names: -06 §5.1 fixes no variable name (RFC 6570 templates).
OTHER_VARIABLE_NAMES = {"targetUser": "user", "roomId": "room", "targetDomain": "provider", "requesterDomain": "provider",
                        "domain": "domain_name", "downloadUrl": "url"}


def directory_document(authority: str, served: frozenset[str] | tuple[str, ...] = ()) -> dict[str, object]:
    """The §5.1 directory for a provider reached at ``authority`` (``host`` or ``host:port``); an
    extension endpoint is listed only when it is in ``served`` (the provider registered it)."""
    # The variant renames the -06 endpoints' variables; the hub-transfer extension's keeps its own.
    other_names = active(strictness_variants.DIRECTORY_OTHER_VARIABLE_NAMES)
    document = {
        e.name: f"https://{authority}{API_PREFIX}{e.name}/"
                f"{{{OTHER_VARIABLE_NAMES[e.variable] if other_names and e.name not in EXTENSION_ENDPOINTS else e.variable}}}"
        for e in ENDPOINTS.values()
        if e.name not in EXTENSION_ENDPOINTS or e.name in served
    }
    if active(old_hub_faults.DIRECTORY_OMITS_HUB_TRANSFER):
        document.pop("hubTransfer", None)
    if active(faults.DIRECTORY_OMITS_PROXY_DOWNLOAD):
        del document["proxyDownload"]
    if active(faults.DIRECTORY_OMITS_NOTIFY):
        del document["notify"]
    if active(faults.WITHOUT_IDENTIFIER_QUERY):
        del document["identifierQuery"]
    if active(faults.DIRECTORY_META_MEMBER):
        document["meta"] = {"termsOfService": f"https://{authority}/terms", "website": f"https://{authority}/"}
    if active(faults.DIRECTORY_PLAIN_HTTP_URL):
        document["reportAbuse"] = "http://" + document["reportAbuse"].removeprefix("https://")
    return document


def directory_json(authority: str, served: frozenset[str] | tuple[str, ...] = ()) -> bytes:
    return json.dumps(directory_document(authority, served), indent=2).encode()


class PathError(ValueError):
    """A path that names an endpoint but carries a malformed variable (answered 400)."""


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def decode_segment(segment: str) -> str:
    """Percent-decode one path segment strictly: every ``%`` starts a valid escape and the result is UTF-8."""
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


def match_endpoint(raw_path: str) -> tuple[Endpoint, str] | None:
    """(endpoint, raw variable segment) for ``/v1/<name>/<segment>``; None when no endpoint has that shape.

    ``raw_path`` must be the undecoded request path without the query: decoding first would turn an
    encoded ``%2F`` into a segment separator.
    """
    if not raw_path.startswith(API_PREFIX):
        return None
    name, sep, segment = raw_path[len(API_PREFIX) :].partition("/")
    endpoint = ENDPOINTS.get(name)
    if endpoint is None or not sep or not segment or "/" in segment:
        return None
    return endpoint, segment


# An RFC 6570 simple-expansion expression: its varname is ALPHA / DIGIT / "_" / pct-encoded, with inner dots.
_VARCHAR = r"(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})"
TEMPLATE_VARIABLE = re.compile(r"\{(" + _VARCHAR + r"(?:\.?" + _VARCHAR + r")*)\}")


def expand_template(template: str, value: str) -> str:
    """Fill the single ``{variable}`` of a directory URL template with the percent-encoded ``value``
    (any RFC 6570 variable name: -06 §5.1 fixes none)."""
    match = TEMPLATE_VARIABLE.search(template)
    if match is None:
        raise ValueError(f"directory template has no variable: {template!r}")
    return template[: match.start()] + encode_segment(value) + template[match.end() :]
