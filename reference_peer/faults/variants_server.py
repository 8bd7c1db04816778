"""Allowed variants of the reference server (directory and transport): behaviours draft-ietf-mimi-protocol-06
permits that differ from the reference default (see :func:`.registry.define_variant`). Every check must
pass with each of them on.

Each departs from a step of ``reference_peer/server/endpoints.py`` or ``reference_peer/server/transport.py``.
"""

from __future__ import annotations

from .registry import define_variant

AREA = "server"


def _other_path_prefix() -> str:
    return "/mimi/v1/"


def _directory_headers() -> dict[str, str]:
    return {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "public, max-age=3600"}


def _members_reversed(document: dict) -> dict:
    return dict(reversed(list(document.items())))


def _tls13_minimum():
    import ssl

    return ssl.TLSVersion.TLSv1_3


DIRECTORY_OTHER_PATH_PREFIX = define_variant(
    "directory-other-path-prefix", area=AREA,
    permitted_by="-06 §5.1 'the MIMI protocol uses a directory document to convey the HTTPS URLs used to reach "
                 "certain endpoints (as opposed to hard coding the endpoints)': the example's "
                 "https://mimi.example.com/v1/... paths are illustrative (AMB-EXAMPLE-PATHS: the directory URLs "
                 "are the only authority)",
    description="the directory lists every endpoint under /mimi/v1/<endpoint>/{variable}, and only those paths "
                "are served (a request to /v1/<endpoint>/... answers 404)",
    hooks={"server.route.v1-paths": _other_path_prefix},
)
DIRECTORY_JSON_CHARSET_AND_CACHING = define_variant(
    "directory-json-charset-and-caching", area=AREA,
    permitted_by="-06 §5.1 'The response is a JSON document with URIs for each type of endpoint' names no media "
                 "type parameter and no response header; RFC 8259 §11 on a charset parameter: 'Adding one really "
                 "has no effect on compliant recipients'",
    description="the directory is answered with 'Content-Type: application/json; charset=utf-8' and "
                "'Cache-Control: public, max-age=3600'",
    hooks={"server.directory.json-response": _directory_headers},
)
DIRECTORY_MEMBERS_REVERSED = define_variant(
    "directory-members-reversed", area=AREA,
    permitted_by="-06 §5.1 'The response is a JSON document with URIs for each type of endpoint' fixes no member "
                 "order (its example is one JSON object; RFC 8259 §1: 'An object is an unordered collection of "
                 "zero or more name/value pairs')",
    description="the directory lists its members in the reverse of the catalogue order (proxyDownload first, "
                "keyMaterial last)",
    hooks={"directory.document.catalogue-order": _members_reversed},
)
SERVER_TLS13_ONLY = define_variant(
    "server-tls13-only", area=AREA,
    permitted_by="-06 §4.1 'MIMI servers communicate using HTTPS' and 'The TLS connection underlying the HTTPS "
                 "connection MUST be mutually authenticated' name no TLS version: a listener that offers TLS 1.3 "
                 "only (RFC 8446) conforms",
    description="the MIMI listener refuses TLS 1.2 handshakes (minimum version TLS 1.3)",
    hooks={"server.tls.versions": _tls13_minimum},
)
SERVER_CLOSES_EVERY_CONNECTION = define_variant(
    "server-closes-every-connection", area=AREA,
    permitted_by="-06 §4.1 'MIMI servers communicate using HTTPS' says nothing of persistent connections; RFC 9112 "
                 "§9.6 provides for a server without them: 'A server that does not support persistent connections "
                 "MUST send the \"close\" connection option in every response message that does not have a 1xx "
                 "(Informational) status code'",
    description="the MIMI listener answers every request with 'Connection: close' and closes the connection",
    departs=("server.connection.persistent",),
)
