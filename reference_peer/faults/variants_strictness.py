"""Allowed variants of the reference peer (strictness): behaviours the draft permits that differ from the
reference default (see :func:`.registry.define_variant`). Every check must pass with each of them on.

Each answers a check that once judged more than the sentence it cites (issue 15): the variant is the
conformant alternative that check used to fail.
"""

from .registry import define_variant

AREA = "strictness"

SERVE_ANY_HOST = define_variant(
    "serve-any-host", area=AREA,
    permitted_by="-06 §4.1 'The target provider is indicated using a Host header' binds the requester's Host; "
                 "nothing in -06 obliges a server to refuse a Host it does not serve (that is RFC 9110 §7.4 "
                 "hygiene, a MAY: 'MAY respond with 421')",
    description="a request whose Host names a domain this server does not serve is answered by its first "
                "provider instead of 421",
    departs=("server.host.refuse-unserved",),
)
FROM_LOCALPART_CONTAINS_MIMI = define_variant(
    "from-localpart-contains-mimi", area=AREA,
    permitted_by="-06 §4.1 'the local-part of the address MUST contain the fixed string mimi' "
                 "(AMB-FROM-LOCALPART-CONTAINS)",
    description="requests to peers carry 'From: mimi-server@<domain>'; the local part contains mimi",
    departs=("client.from.localpart-exactly-mimi",),
)
DIRECTORY_OTHER_VARIABLE_NAMES = define_variant(
    "directory-other-variable-names", area=AREA,
    permitted_by="-06 §5.1: 'The response is a JSON document with URIs for each type of endpoint'; the "
                 "example's {variable} names are illustrative and no sentence fixes them (the suite reads the "
                 "templates as RFC 6570 simple expansions)",
    description="the directory names its template variables {user}, {room}, {domain}, {provider}, {url} "
                "instead of {targetUser}, {roomId}, ...",
    departs=("directory.document.section-variable-names",),
)
KEYMAT_RELAY_ROOM_PROVIDERS_ONLY = define_variant(
    "keymat-relay-room-providers-only", area=AREA,
    permitted_by="-06 §5.2 'KeyPackages requested using this primitive MUST be sent via the hub provider of "
                 "whatever room they will be used in': the hub relays for the "
                 "room's providers; nothing obliges it to relay for a provider with no participant in the room, "
                 "nor to pass the target's answer on byte for byte",
    description="as hub, keyMaterial for another provider's user is relayed only for a requesting provider with "
                "a participant in the room (others get 403), and the target's KeyMaterialResponse is decoded and "
                "re-encoded before it is passed on",
    departs=("keymaterial.hub.relay-for-any-peer",),
)
KEYMAT_SIGN_WITH_OTHER_LISTED_SUITE = define_variant(
    "keymat-sign-with-other-listed-suite", area=AREA,
    permitted_by="-06 §5.2 'key_material_request_signature = SignWithLabel(requesterSignatureKey, "
                 "\"KeyMaterialRequestTBS\", ...)': nothing in KeyMaterialRequest names the signature scheme, "
                 "and acceptableCiphersuites may list several suites in any order (AMB-KEYMAT-SIGNATURE-SUITE)",
    description="keyMaterial requests list another cipher suite (P-256, 0x0002) before the one whose signature "
                "scheme (Ed25519) signed them",
    departs=("keymaterial.request.own-suite-only",),
)
