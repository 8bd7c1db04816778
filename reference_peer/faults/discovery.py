"""Faults of the discovery and key material areas (checks: conformance/scenarios/test_discovery.py
and conformance/scenarios/test_keymaterial.py)."""

from .registry import define, define_variant

AREA = "discovery"
KEYMATERIAL = "keymaterial"

# --- §5.1 directory ---------------------------------------------------------------------------

DIRECTORY_OMITS_PROXY_DOWNLOAD = define(
    "directory-omits-proxy-download", area=AREA, requirements=["PROTO-DIRECTORY-HUB-ENDPOINTS"],
    description="the directory document has no proxyDownload entry (a hub endpoint)",
    departs=("directory.document.list-proxy-download",),
)
DIRECTORY_OMITS_NOTIFY = define(
    "directory-omits-notify", area=AREA, requirements=["PROTO-DIRECTORY-FOLLOWER-ENDPOINTS"],
    description="the directory document has no notify entry (the endpoint a hub reaches a follower at)",
    departs=("directory.document.list-notify",),
)

# --- allowed variants (the draft permits them: every check must pass with them on) --------------

WITHOUT_IDENTIFIER_QUERY = define_variant(
    "without-identifier-query", area=AREA,
    permitted_by="-06 §5.8 makes identifierQuery no obligation ('forbidden means that use of this endpoint is not "
                 "allowed by the provider'); §5.1 lists URIs only for the endpoints a server has",
    description="no identifierQuery: the directory does not list it and POST /identifierQuery/... answers 404",
    departs=("directory.document.list-identifier-query", "directory.idquery.offered"),
)
DIRECTORY_META_MEMBER = define_variant(
    "directory-meta-member", area=AREA,
    permitted_by="-06 §5.1 models its directory on ACME (RFC 8555 §7.1.1), whose directory carries a 'meta' "
                 "object besides the endpoint URLs",
    description="the directory also has a 'meta' object (termsOfService, website) that is not an endpoint",
    departs=("directory.document.endpoints-only",),
)
DIRECTORY_PLAIN_HTTP_URL = define(
    "directory-plain-http-url", area=AREA, requirements=["PROTO-DIRECTORY-HTTPS-URLS"],
    description="the directory lists the reportAbuse endpoint with an http:// URL",
    departs=("directory.document.https-urls",),
)

# --- §5.8 identifierQuery ---------------------------------------------------------------------

IDQUERY_OR_SEMANTICS = define(
    "idquery-or-semantics", area=AREA, requirements=["PROTO-IDQUERY-AND-SEMANTICS"],
    description="identifierQuery returns users matching any query element instead of all of them",
    departs=("directory.search.match-all-elements",),
)
IDQUERY_PREFIX_MATCH = define(
    "idquery-prefix-match", area=AREA, requirements=["PROTO-IDQUERY-EXACT-MATCH-TYPES"],
    description="handle (and other exact) searches also match a prefix of the stored value",
    departs=("directory.match.handle-exact",),
)
IDQUERY_NOTFOUND_AS_SUCCESS = define(
    "idquery-notfound-as-success", area=AREA, requirements=["PROTO-IDQUERY-STATUS-CODES"],
    description="a query that matches nobody answers success with no results instead of notFound",
    departs=("directory.search.notfound-when-none",),
)
IDQUERY_FIRST_MATCH_ONLY = define(
    "idquery-first-match-only", area=AREA, requirements=["DISC-R5-ZERO-ONE-MANY"],
    description="identifierQuery returns only the first of several matching users",
    departs=("directory.search.every-match",),
)
IDQUERY_IGNORES_SEARCH_POLICY = define(
    "idquery-ignores-search-policy", area=AREA, requirements=["PROTO-IDQUERY-SEARCH-POLICY"],
    description="identifierQuery finds hidden users and exact-handle-only users by any field",
    departs=("directory.search.honour-policy",),
)
IDQUERY_FINDS_DELETED_USERS = define(
    "idquery-finds-deleted-users", area=AREA, requirements=["DISC-R9-REMOVED-NOT-RETURNED"],
    description="identifierQuery keeps returning users after their account was deleted",
    departs=("directory.search.skip-deleted", "provider.delete-user.drop-profile"),
)
IDQUERY_NOT_IDEMPOTENT = define(
    "idquery-not-idempotent", area=AREA, requirements=["PROTO-IDQUERY-SAFE-IDEMPOTENT"],
    description="each identifierQuery answer carries a fresh nonce extension, so repeating a query changes the answer",
    departs=("directory.idquery.same-answer",),
)
IDQUERY_NICK_IGNORES_HANDLES = define(
    "idquery-nick-ignores-handles", area=AREA, requirements=["PROTO-IDQUERY-EXACT-MATCH-TYPES"],
    description="a nick search matches the nicknames only, never the user part of a handle",
    departs=("directory.match.nick-handle-user-part",),
)
IDQUERY_VCARD_PREFIX_MATCH = define(
    "idquery-vcard-prefix-match", area=AREA, requirements=["PROTO-IDQUERY-EXACT-MATCH-TYPES"],
    description="a vcardField search also matches a prefix of the property's value",
    departs=("directory.match.vcard-exact",),
)
IDQUERY_VCARD_ANY_PROPERTY_MATCHES_NICKNAMES = define(
    "idquery-vcard-any-property-matches-nicknames", area=AREA, requirements=["PROTO-IDQUERY-EXACT-MATCH-TYPES"],
    description="a vcardField search for any property (FN, ORG, ...) also matches the user's nicknames",
    departs=("directory.match.vcard-named-property",),
)
IDQUERY_PHONE_ANY_NUMBER_MATCHES = define(
    "idquery-phone-any-number-matches", area=AREA, requirements=["PROTO-IDQUERY-EXACT-MATCH-TYPES"],
    description="a phone search matches every searchable user who has a phone number, whatever number it names",
    departs=("directory.match.phone-exact",),
)
IDQUERY_OIDC_CLAIM_PREFIX_MATCH = define(
    "idquery-oidc-claim-prefix-match", area=AREA, requirements=["PROTO-IDQUERY-EXACT-MATCH-TYPES"],
    description="an oidcStdClaim search also matches a prefix of the named claim's value",
    departs=("directory.match.oidc-claim-exact",),
)


def _claim_or_nickname(profile, claim: str) -> set[str]:
    """Hook of step directory.match.oidc-claim-values: the faulty provider matches an oidcStdClaim search
    for any claim against the user's nicknames too."""
    return profile.oidc_values(claim) | set(profile.nicks)


IDQUERY_OIDC_CLAIM_MATCHES_NICKNAMES = define(
    "idquery-oidc-claim-matches-nicknames", area=AREA, requirements=["PROTO-IDQUERY-EXACT-MATCH-TYPES"],
    description="an oidcStdClaim search for any claim (given_name, family_name, ...) also matches the user's nicknames",
    hooks={"directory.match.oidc-claim-values": _claim_or_nickname},
)


def _given_name_only(profile) -> list[str]:
    """Hook of step directory.match.partial-name-every-name-field: the faulty provider searches a
    partialName in the given name alone (a list that is never empty, so the hook's answer is used)."""
    return [profile.names.get("given_name", "")]


IDQUERY_PARTIALNAME_GIVEN_ONLY = define(
    "idquery-partialname-given-name-only", area=AREA, requirements=["PROTO-IDQUERY-PARTIALNAME"],
    description="a partialName search looks at the given name only, not the family, middle or full name",
    hooks={"directory.match.partial-name-every-name-field": _given_name_only},
)


def _every_field(profile) -> list[str]:
    """Hook of step directory.match.partial-name-every-name-field: the faulty provider searches a
    partialName in every field of the profile (handles, emails, every OIDC claim, ...), as for wholeProfile
    (never empty: a profile always holds its handle)."""
    return profile.all_values()


IDQUERY_PARTIALNAME_EVERY_FIELD = define(
    "idquery-partialname-searches-every-field", area=AREA, requirements=["PROTO-IDQUERY-PARTIALNAME"],
    description="a partialName search looks at every profile field (an OIDC sub claim too), not the name fields only",
    hooks={"directory.match.partial-name-every-name-field": _every_field},
)


def _name_fields_only(profile) -> list[str]:
    """Hook of step directory.match.whole-profile-every-field: the faulty provider searches a
    wholeProfile element in the name fields alone, as for partialName (never empty, so the hook's
    answer is used: a profile without names gets a NUL, which no query string holds)."""
    return profile.name_values() or ["\x00"]


IDQUERY_WHOLEPROFILE_NAMES_ONLY = define(
    "idquery-wholeprofile-names-only", area=AREA, requirements=["PROTO-IDQUERY-WHOLEPROFILE"],
    description="a wholeProfile search looks at the name fields only, so a substring of a user's email finds nobody",
    hooks={"directory.match.whole-profile-every-field": _name_fields_only},
)


# --- §5.2 keyMaterial -------------------------------------------------------------------------

def _last_resort_served_once_only(conn, row_id: int) -> None:
    """The second claim of a last-resort KeyPackage crashes (the claim is answered HTTP 500)."""
    row = conn.execute("SELECT times_served FROM key_packages WHERE id = ?", (row_id,)).fetchone()
    if row is not None and row[0]:
        raise RuntimeError(f"last-resort KeyPackage {row_id} was already served")


KEYMAT_LAST_RESORT_AGAIN_CRASHES = define(
    "keymat-last-resort-again-crashes", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-PUBLICATION-POINT"],
    description="a claim that picks a client's last-resort KeyPackage a second time fails (HTTP 500) instead of "
                "being answered",
    hooks={"keymaterial.claim.last-resort-answered-again": _last_resort_served_once_only},
)
KEYMAT_REUSE = define(
    "keymat-reuse-key-package", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-NO-REUSE"],
    description="a one-time KeyPackage handed out is not marked used, so the next request gets it again",
    departs=("keymaterial.claim.mark-claimed",),
)
KEYMAT_LAST_RESORT_UNMARKED = define(
    "keymat-last-resort-unmarked", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-NO-REUSE"],
    description="the KeyPackage a client publishes as its last-resort one lacks the last_resort_key_package "
                "extension, yet is served again once the one-time ones are gone",
    departs=("keymaterial.publish.last-resort-marked",),
)
KEYMAT_SERVE_EXPIRED = define(
    "keymat-serve-expired", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-NO-EXPIRED"],
    description="each client also publishes an already expired KeyPackage, served once its valid ones ran out",
    departs=("keymaterial.publish.valid-only", "keymaterial.claim.skip-expired"),
)
KEYMAT_EXPIRY_ONLY_GATES_CLIENT = define(
    "keymat-expiry-only-gates-client", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-NO-EXPIRED"],
    description="expiry decides only whether a client has key material: a client with any unexpired KeyPackage is "
                "served its soonest-expiring one, expired or not",
    departs=("keymaterial.claim.choose-unexpired",),
)
KEYMAT_SERVE_EXPIRED_LAST_RESORT = define(
    "keymat-serve-expired-last-resort", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-NO-EXPIRED"],
    description="a last-resort KeyPackage is served even after its lifetime ended",
    departs=("keymaterial.claim.last-resort-expires",),
)
KEYMAT_REVEAL_UNKNOWN_USERS = define(
    "keymat-reveal-unknown-users", area=KEYMATERIAL, requirements=["EXT-CONSENT-ENUMERATION"],
    description="keyMaterial for an unknown user answers userUnknown while a non-consenting user gets noConsent",
    departs=("keymaterial.claim.unknown-user-hidden",),
)
KEYMAT_UNKNOWN_USER_EMPTY_SUCCESS = define(
    "keymat-unknown-user-empty-success", area=KEYMATERIAL,
    requirements=["PROTO-KEYMAT-UNKNOWN-USER", "EXT-CONSENT-ENUMERATION"],
    description="keyMaterial for a user the provider does not know answers success with no clients (so it also "
                "looks unlike a user who gave no consent)",
    departs=("keymaterial.claim.unknown-user-refused",),
)
KEYMAT_DELETED_USER_AS_ACTIVE = define(
    "keymat-deleted-user-as-active", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-UNKNOWN-USER"],
    description="keyMaterial for a deleted user is answered as for an active user without clients "
                "(noCompatibleMaterial), not userDeleted, userUnknown or noConsent",
    departs=("keymaterial.claim.deleted-user-refused",),
)
KEYMAT_SUCCESS_DESPITE_EXHAUSTED = define(
    "keymat-success-despite-exhausted", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-USER-CODE-CONSISTENT"],
    description="userStatus is success although a client of the user is keyMaterialExhausted",
    departs=("keymaterial.claim.partial-success",),
)
KEYMAT_IGNORE_REQUIRED_CAPABILITIES = define(
    "keymat-ignore-required-capabilities", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-REQUIRED-CAPABILITIES"],
    description="claims ignore the request's requiredCapabilities",
    departs=("keymaterial.claim.required-capabilities",),
)
KEYMAT_IGNORE_REQUIRED_PROPOSALS = define(
    "keymat-ignore-required-proposals", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-REQUIRED-CAPABILITIES"],
    description="claims ignore the proposal types of the request's requiredCapabilities (extension and credential "
                "types are still honoured)",
    departs=("keymaterial.claim.required-proposal-types",),
)
KEYMAT_IGNORE_REQUIRED_CREDENTIALS = define(
    "keymat-ignore-required-credentials", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-REQUIRED-CAPABILITIES"],
    description="claims ignore the credential types of the request's requiredCapabilities (extension and proposal "
                "types are still honoured)",
    departs=("keymaterial.claim.required-credential-types",),
)
KEYMAT_REFUSE_LISTED_CREDENTIALS = define(
    "keymat-refuse-listed-credentials", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-REQUIRED-CAPABILITIES"],
    description="a request requiring any credential type gets no KeyPackage (nothingCompatible), even one whose "
                "capabilities list that type",
    departs=("keymaterial.claim.listed-credential-types-served",),
)
KEYMAT_REFUSE_LISTED_PROPOSALS = define(
    "keymat-refuse-listed-proposals", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-REQUIRED-CAPABILITIES"],
    description="a request requiring a non-default proposal type gets no KeyPackage (nothingCompatible), even one "
                "whose capabilities list that type",
    departs=("keymaterial.claim.listed-proposal-types-served",),
)
KEYMAT_IGNORE_CIPHERSUITES = define(
    "keymat-ignore-ciphersuites", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-ACCEPTABLE-CIPHERSUITE"],
    description="claims ignore the request's acceptableCiphersuites",
    departs=("keymaterial.claim.acceptable-ciphersuite",),
)
KEYMAT_SKIP_SIGNATURE_CHECK = define(
    "keymat-skip-signature-check", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-SIGNATURE-CHECKED"],
    description="keyMaterial requests are answered without verifying key_material_request_signature",
    departs=("keymaterial.target.check-signature",),
)
KEYMAT_HUB_DOES_NOT_RELAY = define(
    "keymat-hub-does-not-relay", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-HUB-RELAY"],
    description="as hub, a keyMaterial request for another provider's user is answered noConsent without asking it",
    departs=("keymaterial.hub.relay",),
)
KEYMAT_BYPASS_HUB = define(
    "keymat-bypass-hub", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-VIA-HUB"],
    description="as follower, KeyPackages of a third provider's user are requested from that provider directly",
    departs=("keymaterial.request.via-hub",),
)
KEYMAT_REQUEST_WITHOUT_ROOM = define(
    "keymat-request-without-room", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-ROOM-ID"],
    description="keyMaterial requests sent while adding a user to a room carry an empty roomId",
    departs=("keymaterial.request.names-room",),
)
KEYMAT_FIRST_CLIENT_ONLY = define(
    "keymat-first-client-only", area=KEYMATERIAL, requirements=["PROTO-KEYMAT-CLIENTS-ENUMERATED"],
    description="keyMaterial enumerates (and serves) only the first client of the target user",
    departs=("keymaterial.claim.every-client",),
)
