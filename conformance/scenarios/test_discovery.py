"""Discovery: the §5.1 directory (draft-ietf-mimi-protocol-06).

The suite reads the directory as the reference peer does, with the tolerant parser of
``reference_peer.wire.directory``: strictly first, then accepting only the repairs of the draft's
own typos. A directory that parses only through such a repair is AMBIGUOUS with that ambiguity's
ID, never FAIL (docs/spec-ambiguities.md).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from conformance.harness.attribution import ROLE_ENDPOINTS
from conformance.verdicts import ambiguous, fail, not_applicable
from reference_peer.wire.codec import DecodeError, EncodeError
from reference_peer.wire.directory import WELL_KNOWN_PATH, Directory, DirectoryError, _repair_missing_colons
from reference_peer.wire.mimi import (
    IdentifierQueryCode,
    IdentifierRequest,
    IdentifierResponse,
    QueryElement,
    SearchIdentifierType,
)
from reference_peer.wire.mls import AppDataDictionary

WELL_KNOWN = "PROTO-DIRECTORY-WELL-KNOWN"
HTTPS_URLS = "PROTO-DIRECTORY-HTTPS-URLS"
HUB_ENDPOINTS = "PROTO-DIRECTORY-HUB-ENDPOINTS"
FOLLOWER_ENDPOINTS = "PROTO-DIRECTORY-FOLLOWER-ENDPOINTS"
EXACT_MATCH = "PROTO-IDQUERY-EXACT-MATCH-TYPES"
AND_SEMANTICS = "PROTO-IDQUERY-AND-SEMANTICS"
STATUS_CODES = "PROTO-IDQUERY-STATUS-CODES"
SEARCH_POLICY = "PROTO-IDQUERY-SEARCH-POLICY"
SAFE_IDEMPOTENT = "PROTO-IDQUERY-SAFE-IDEMPOTENT"
ZERO_ONE_MANY = "DISC-R5-ZERO-ONE-MANY"
REMOVED_NOT_RETURNED = "DISC-R9-REMOVED-NOT-RETURNED"



@pytest.mark.requirements(WELL_KNOWN, HTTPS_URLS)
def test_directory_is_served_as_json_naming_https_endpoints(sut, mimi, recorder):
    """Each SUT domain answers GET /.well-known/mimi-protocol-directory with 200 and a JSON object
    mapping the endpoint types to https URL templates."""
    for domain, base_url in sut.base_urls.items():
        url = base_url + WELL_KNOWN_PATH
        recorder.note(f"fetching the directory of {domain}")
        reply = mimi.get(url)
        if reply.status != 200:
            fail(f"{url} answered HTTP {reply.status}, not 200", requirement=WELL_KNOWN)
        try:
            _parse_filling_missing(reply.body, tolerant=False)
            continue
        except DirectoryError as strict_error:
            problem = strict_error
        try:
            decoded = _parse_filling_missing(reply.body, tolerant=True)
        except DirectoryError as tolerant_error:
            problem = tolerant_error
        else:
            if not decoded.leniencies:  # tolerant reading needed no repair: nothing to report
                continue
            leniency = decoded.leniencies[0]
            ambiguous(
                leniency.ambiguity,
                f"{domain}'s directory parses only with a repair the draft's own example needs: "
                f"{leniency.path}: {leniency.detail} (strict reading: {problem})",
            )
        if problem.reason == "missing":
            not_applicable(
                f"{domain}'s directory omits {problem.endpoint} (its declared roles: {list(sut.roles)}); "
                "the role-specific directory checks judge which endpoints must be listed"
            )
        if problem.reason.startswith("not an https URL"):
            fail(f"{domain}'s directory: {problem}", requirement=HTTPS_URLS)
        fail(
            f"{domain}'s directory is not a JSON object of the endpoint URL templates: {problem}",
            requirement=WELL_KNOWN,
        )


def _fetch_directory(mimi, base_url: str, recorder) -> tuple[int, bytes]:
    recorder.note(f"fetching {base_url}{WELL_KNOWN_PATH}")
    reply = mimi.get(base_url + WELL_KNOWN_PATH)
    return reply.status, reply.body


def _parse_filling_missing(body: bytes, tolerant: bool):
    """Parse a directory, supplying placeholders for missing endpoints (judged by the role checks)."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return Directory.parse(body, tolerant=tolerant)  # the JSON itself is judged
    if isinstance(document, dict):
        placeholders = Directory.default_for("https://missing.invalid").endpoints
        document = {**{k: v for k, v in placeholders.items() if k not in document}, **document}
    return Directory.parse(json.dumps(document), tolerant=tolerant)


def _directory_keys(mimi, sut, recorder) -> dict[str, set[str]]:
    """The endpoint names each SUT domain's directory lists (after the draft's own repairs)."""
    keys = {}
    for domain, base_url in sut.base_urls.items():
        status, body = _fetch_directory(mimi, base_url, recorder)
        if status != 200:
            not_applicable(f"{domain}'s directory answered HTTP {status}; the well-known check judges that")
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            try:
                document = json.loads(_repair_missing_colons(body.decode("utf-8"))[0])
            except (UnicodeDecodeError, json.JSONDecodeError):
                not_applicable(f"{domain}'s directory is not JSON; the well-known check judges that")
        if not isinstance(document, dict):
            not_applicable(f"{domain}'s directory is not a JSON object; the well-known check judges that")
        keys[domain] = set(document)
    return keys


def _judge_role_endpoints(mimi, sut, recorder, role: str, requirement: str) -> None:
    for domain, listed in _directory_keys(mimi, sut, recorder).items():
        missing = sorted(ROLE_ENDPOINTS[role] - listed)
        if missing:
            fail(f"{domain}'s directory (the SUT declares the {role} role) has no entry for {missing}",
                 requirement=requirement)


@pytest.mark.requirements(HUB_ENDPOINTS)
@pytest.mark.role("hub")
def test_hub_directory_lists_the_hub_endpoints(sut, mimi, recorder):
    """A SUT acting as hub lists update, submitMessage, groupInfo, keyMaterial and proxyDownload in its
    directory (other members are allowed)."""
    _judge_role_endpoints(mimi, sut, recorder, "hub", HUB_ENDPOINTS)


@pytest.mark.requirements(FOLLOWER_ENDPOINTS)
@pytest.mark.role("follower")
def test_follower_directory_lists_the_follower_endpoints(sut, mimi, recorder):
    """A SUT acting as follower lists notify and keyMaterial in its directory (the optional endpoints
    and other members are allowed)."""
    _judge_role_endpoints(mimi, sut, recorder, "follower", FOLLOWER_ENDPOINTS)


# --------------------------------------------------------------------------------------------
# §5.8 identifierQuery, asked by the suite's hub domain (hub.ref.test) directly, never via a hub.

T = SearchIdentifierType
REFUSALS = (IdentifierQueryCode.forbidden, IdentifierQueryCode.unsupportedField)


def _element(search_type: SearchIdentifierType, value: str, name: str | None = None) -> QueryElement:
    extra = {}
    if search_type == T.oidcStdClaim:
        extra["claimName"] = (name or "").encode()
    elif search_type == T.vcardField:
        extra["propertyName"] = (name or "").encode()
    return QueryElement(searchType=search_type, searchValue=value.encode(), **extra)


def _query(mimi, sut, recorder, *elements: QueryElement) -> tuple[bytes, IdentifierResponse]:
    """POST /identifierQuery/{domain} to the SUT through its directory; the raw body and its decoding."""
    authority = urlsplit(sut.base_urls[sut.primary_domain]).netloc
    directory = mimi.run(mimi.client.fetch_directory(authority))
    if "identifierQuery" not in directory:
        not_applicable(f"{sut.primary_domain}'s directory lists no identifierQuery endpoint "
                       "(judged by the follower directory check)")
    body = IdentifierRequest(query_elements=list(elements), id_request_extensions=AppDataDictionary(component_data=[]))
    described = ", ".join(f"{e.searchType.name}={bytes(e.searchValue).decode()!r}" for e in elements)
    recorder.note(f"identifierQuery: {described}")
    reply = mimi.run(mimi.client.call(authority, "identifierQuery", sut.primary_domain, body.encode()))
    if reply.status != 200:
        fail(f"identifierQuery ({described}) answered HTTP {reply.status}, not 200 with an IdentifierResponse",
             requirement=STATUS_CODES)
    try:
        response = IdentifierResponse.decode(reply.body)
    except (DecodeError, EncodeError) as exc:
        fail(f"identifierQuery ({described}) answered an undecodable IdentifierResponse: {exc}", requirement=STATUS_CODES)
    recorder.note(f"-> {response.responseCode.name}, {len(response.uri)} URI(s)")
    return reply.body, response


def _uris(response: IdentifierResponse) -> set[str]:
    return {bytes(u.uri).decode("utf-8", "replace") for u in response.uri}


def _searchable_user(sut_party, unique, name: str, *, policy: str = "searchable", **profile):
    """A SUT user with a unique handle URI and ``profile`` fields (contract Profile keys)."""
    handle = f"im:{unique(name)}@{sut_party.domain}"
    user = sut_party.create_user(name, clients=1, searchPolicy=policy, profile={"handles": [handle], **profile})
    return user, handle


def _expect_success(response: IdentifierResponse, expected: set[str], what: str, requirement: str) -> None:
    if response.responseCode in REFUSALS:
        not_applicable(f"the SUT refuses {what} ({response.responseCode.name})")
    if response.responseCode != IdentifierQueryCode.success:
        fail(f"{what} answered {response.responseCode.name}, not success with {sorted(expected)}",
             requirement=requirement)
    if _uris(response) != expected:
        fail(f"{what} answered success with {sorted(_uris(response))}, expected exactly {sorted(expected)}",
             requirement=requirement)


def _expect_not_found(response: IdentifierResponse, what: str, requirement: str, *, code: bool = False) -> None:
    """No result; with ``code``, also the notFound code (otherwise the status-code check judges the code)."""
    wrong_code = code and response.responseCode != IdentifierQueryCode.notFound
    if wrong_code or response.uri or response.foundProfiles:
        fail(f"{what} answered {response.responseCode.name} with {sorted(_uris(response))} "
             f"and {len(response.foundProfiles)} profile(s), not notFound with no results", requirement=requirement)


@pytest.mark.requirements(EXACT_MATCH)
def test_identifier_query_handle_and_email_match_exactly(sut, sut_party, mimi, names, recorder):
    """handle and email searches match the whole value exactly: a near miss is notFound."""
    local = names("exact")
    user, handle = _searchable_user(sut_party, names, "exact", emails=[f"{local}@mail.example"])
    _, found = _query(mimi, sut, recorder, _element(T.handle, handle))
    _expect_success(found, {user.uri}, "an exact handle search for a searchable user", EXACT_MATCH)
    _, near = _query(mimi, sut, recorder, _element(T.handle, handle[:-1]))
    _expect_not_found(near, "a handle search missing the handle's last character", EXACT_MATCH)
    _, other_mail = _query(mimi, sut, recorder, _element(T.email, f"{local}x@mail.example"))
    _expect_not_found(other_mail, "an email search differing in the local-part", EXACT_MATCH)


@pytest.mark.requirements(ZERO_ONE_MANY, STATUS_CODES)
def test_identifier_query_returns_zero_one_or_many_users(sut, sut_party, mimi, names, recorder):
    """A query answers notFound with no results for no match, success with one URI for one user and
    success with every URI for several users."""
    family = names("Family").replace("-", "")
    first, first_handle = _searchable_user(sut_party, names, "many", names={"family_name": family})
    second, _ = _searchable_user(sut_party, names, "many", names={"family_name": family})
    _, none = _query(mimi, sut, recorder, _element(T.handle, f"im:{names('nobody')}@{sut_party.domain}"))
    _expect_not_found(none, "a handle search matching no user", ZERO_ONE_MANY, code=True)
    _, one = _query(mimi, sut, recorder, _element(T.handle, first_handle))
    _expect_success(one, {first.uri}, "an exact handle search for one searchable user", ZERO_ONE_MANY)
    _, many = _query(mimi, sut, recorder, _element(T.oidcStdClaim, family, "family_name"))
    _expect_success(many, {first.uri, second.uri}, "a family_name claim search shared by two users", ZERO_ONE_MANY)
    for response in (one, many):
        if len(response.foundProfiles) > len(response.uri):
            fail("a success response lists more profiles than URIs", requirement=STATUS_CODES)


@pytest.mark.requirements(AND_SEMANTICS)
def test_identifier_query_elements_all_have_to_match(sut, sut_party, mimi, names, recorder):
    """A query with several elements matches only users matching every element (AND)."""
    given = names("Alice").replace("-", "")
    smith = names("Smith").replace("-", "")
    jones = names("Jones").replace("-", "")
    alice_smith, _ = _searchable_user(sut_party, names, "asmith", names={"given_name": given, "family_name": smith})
    _searchable_user(sut_party, names, "ajones", names={"given_name": given, "family_name": jones})
    _, response = _query(mimi, sut, recorder, _element(T.oidcStdClaim, given, "given_name"),
                         _element(T.oidcStdClaim, smith, "family_name"))
    _expect_success(response, {alice_smith.uri}, f"given_name={given} AND family_name={smith}", AND_SEMANTICS)


@pytest.mark.requirements(SEARCH_POLICY)
def test_identifier_query_honours_the_users_search_policy(sut, sut_party, mimi, names, recorder):
    """A hidden user is not found even by exact handle, and an exact-handle-only user is found by
    handle but not by name."""
    given = names("Hidden").replace("-", "")
    _, hidden_handle = _searchable_user(sut_party, names, "hidden", policy="hidden", names={"given_name": given})
    _, response = _query(mimi, sut, recorder, _element(T.handle, hidden_handle))
    _expect_not_found(response, "an exact handle search for a hidden user", SEARCH_POLICY)
    name = names("Handleonly").replace("-", "")
    exact, exact_handle = _searchable_user(sut_party, names, "exacth", policy="exactHandle", names={"given_name": name})
    _, by_handle = _query(mimi, sut, recorder, _element(T.handle, exact_handle))
    _expect_success(by_handle, {exact.uri}, "an exact handle search for an exact-handle-only user", SEARCH_POLICY)
    _, by_name = _query(mimi, sut, recorder, _element(T.oidcStdClaim, name, "given_name"))
    if by_name.responseCode in REFUSALS:
        return  # a refused search finds nobody either
    _expect_not_found(by_name, "a given_name search for an exact-handle-only user", SEARCH_POLICY)


@pytest.mark.requirements(SAFE_IDEMPOTENT)
def test_identifier_query_repeated_gives_the_same_answer(sut, sut_party, mimi, names, recorder):
    """Repeating an identical identifierQuery returns a byte-identical answer."""
    _, handle = _searchable_user(sut_party, names, "repeat")
    first, _ = _query(mimi, sut, recorder, _element(T.handle, handle))
    second, _ = _query(mimi, sut, recorder, _element(T.handle, handle))
    if first != second:
        fail(f"two identical queries got different answers: {first.hex()} then {second.hex()}",
             requirement=SAFE_IDEMPOTENT)


@pytest.mark.requirements(REMOVED_NOT_RETURNED)
def test_deleted_user_is_no_longer_found(sut, sut_party, mimi, names, recorder):
    """After a user is deleted, a query that found it answers notFound."""
    if not sut_party.supports("deleteUser"):
        not_applicable("the SUT's control API does not implement deleteUser")
    user, handle = _searchable_user(sut_party, names, "gone")
    _, before = _query(mimi, sut, recorder, _element(T.handle, handle))
    _expect_success(before, {user.uri}, "an exact handle search before deletion", REMOVED_NOT_RETURNED)
    sut_party.delete_user(user)
    _, after = _query(mimi, sut, recorder, _element(T.handle, handle))
    _expect_not_found(after, "the same search after the user was deleted", REMOVED_NOT_RETURNED)
