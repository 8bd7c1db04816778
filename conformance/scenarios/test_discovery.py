"""Discovery: the §5.1 directory and the §5.8 identifierQuery (draft-ietf-mimi-protocol-06).

The suite reads the directory as the reference peer does: strictly first, then accepting only the
repairs of the draft's own typos. A template that is usable only through such a repair is AMBIGUOUS
with that ambiguity's ID, never FAIL (docs/spec-ambiguities.md). -06 models its directory on ACME's
(RFC 8555 §7.1.1), which may carry a ``meta`` object and other members: members that are not endpoint
names are kept and never judged, and which endpoints a directory must list is the role checks' part.
Every bad template is reported, not only the first.

identifierQuery is optional in -06 (§5.8 obliges no provider to answer it; one that does not allow it
answers ``forbidden``): a SUT that does not offer it makes those checks NOT_APPLICABLE.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest

from conformance.harness.attribution import ROLE_ENDPOINTS
from conformance.verdicts import ambiguous, blocked, current_ledger, fail, miss, not_applicable, observed
from reference_peer.server.endpoints import TEMPLATE_VARIABLE, expand_template
from reference_peer.wire.codec import DecodeError, EncodeError
from reference_peer.wire.directory import (
    ENDPOINT_VARIABLES,
    WELL_KNOWN_PATH,
    _repair_missing_colons,
)
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
PARTIALNAME = "PROTO-IDQUERY-PARTIALNAME"
WHOLEPROFILE = "PROTO-IDQUERY-WHOLEPROFILE"
AND_SEMANTICS = "PROTO-IDQUERY-AND-SEMANTICS"
STATUS_CODES = "PROTO-IDQUERY-STATUS-CODES"
SEARCH_POLICY = "PROTO-IDQUERY-SEARCH-POLICY"
SAFE_IDEMPOTENT = "PROTO-IDQUERY-SAFE-IDEMPOTENT"
ZERO_ONE_MANY = "DISC-R5-ZERO-ONE-MANY"
REMOVED_NOT_RETURNED = "DISC-R9-REMOVED-NOT-RETURNED"


def _ambiguity(requirement: str, ambiguity: str, message: str) -> None:
    """``requirement`` held only on a reading the draft also allows: AMBIGUOUS, and the check goes on
    to judge the rest (outside a check: raised as before)."""
    ledger = current_ledger()
    if ledger is None:
        ambiguous(ambiguity, message, requirement=requirement)
        return
    ledger.ambiguities.setdefault(requirement, (ambiguity, f"{ambiguity}: {message}"))


def _read_json(body: bytes) -> tuple[object, str | None, list[str]]:
    """(document, problem, keys whose colon had to be restored); document None when unreadable."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8", []
    try:
        return json.loads(text), None, []
    except json.JSONDecodeError as strict:
        repaired, keys = _repair_missing_colons(text)
        try:
            return json.loads(repaired), None, keys
        except json.JSONDecodeError:
            return None, f"not valid JSON: {strict}", []


def _judge_template(endpoint: str, template: object) -> tuple[str | None, str | None, tuple[str, str] | None]:
    """(https problem, template problem, (ambiguity, detail) of a repaired template) for one entry.

    -06 §5.1 maps each endpoint to a URL template and fixes neither the variable's name nor where it
    stands: any RFC 6570 variable name (``{targetUser}``, ``{user}``, ``{_1}``) anywhere in the path
    or query is usable, as long as the template has exactly one expression, a simple (level 1)
    expansion, outside the authority, so that filling it in gives an https URL of the same host.
    The one placement judged AMBIGUOUS is the draft's own typo, the variable glued to the endpoint
    name (``.../update{roomId}``, AMB-DIRECTORY-UPDATE-SLASH)."""
    if not isinstance(template, str):
        return None, f"{endpoint}: the URL template must be a string, not {json.dumps(template)[:60]}", None
    parts = urlsplit(template)
    https_problem = None
    if parts.scheme.lower() != "https" or not parts.netloc:
        https_problem = f"{endpoint}: not an https URL: {template!r}"
        if not parts.netloc:
            return https_problem, None, None  # not a URL of any scheme: nothing more to read
    expressions = re.findall(r"\{[^{}]*\}", template)
    if len(expressions) != 1 or template.count("{") != 1 or template.count("}") != 1:
        return https_problem, (f"{endpoint}: a URL template with exactly one {{variable}} expected, found "
                               f"{len(expressions)} in {template!r}"), None
    match = TEMPLATE_VARIABLE.search(template)
    if match is None:
        return https_problem, (f"{endpoint}: {expressions[0]} is not an RFC 6570 simple expansion of one "
                               f"variable: {template!r}"), None
    if "{" in parts.netloc:
        return https_problem, f"{endpoint}: the variable stands in the host, not the path: {template!r}", None
    filled = urlsplit(expand_template(template, "mimi://a.example/r/x"))
    if filled.netloc != parts.netloc:
        return https_problem, f"{endpoint}: filling {template!r} changes the host to {filled.netloc!r}", None
    before = template[:match.start()]
    if not before.endswith(("/", "=", "?", "&")) and before.endswith(endpoint):
        return https_problem, None, ("AMB-DIRECTORY-UPDATE-SLASH",
                                     f"{endpoint}: missing '/' between the endpoint and the variable: {template!r}")
    return https_problem, None, None


@pytest.mark.requirements(WELL_KNOWN, HTTPS_URLS)
@pytest.mark.operations()
def test_directory_is_served_as_json_naming_https_endpoints(sut, mimi, recorder):
    """Each SUT domain answers GET /.well-known/mimi-protocol-directory with 200 and a JSON object
    mapping the endpoint types to https URL templates (members that are not endpoint names are not
    judged; every bad template is reported)."""
    for domain, base_url in sut.base_urls.items():
        url = base_url + WELL_KNOWN_PATH
        recorder.note(f"fetching the directory of {domain}")
        reply = mimi.get(url)
        if reply.status != 200:
            miss(WELL_KNOWN, f"{url} answered HTTP {reply.status}, not 200")
            continue
        document, problem, repaired = _read_json(reply.body)
        if document is None:
            miss(WELL_KNOWN, f"{domain}'s directory is not a JSON object of the endpoint URL templates: {problem}")
            continue
        if not isinstance(document, dict):
            miss(WELL_KNOWN, f"{domain}'s directory is not a JSON object of the endpoint URL templates: "
                 "the directory must be a JSON object")
            continue
        if repaired:
            _ambiguity(WELL_KNOWN, "AMB-DIRECTORY-JSON", f"{domain}'s directory parses only with a repair the "
                       f"draft's own example needs: missing ':' after {', '.join(map(repr, repaired))}")
        https_problems: list[str] = []
        template_problems: list[str] = []
        https_urls = 0
        listed = [endpoint for endpoint in ENDPOINT_VARIABLES if endpoint in document]
        for endpoint in listed:
            https_problem, template_problem, repair = _judge_template(endpoint, document[endpoint])
            if https_problem:
                https_problems.append(https_problem)
            elif isinstance(document[endpoint], str):
                https_urls += 1
            if template_problem:
                template_problems.append(template_problem)
            if repair:
                _ambiguity(WELL_KNOWN, repair[0], f"{domain}'s directory: {repair[1]}")
        others = sorted(set(document) - set(ENDPOINT_VARIABLES))
        if others:
            recorder.note(f"{domain}'s directory also has {others} (not endpoint names: kept, not judged)")
        if https_problems:
            miss(HTTPS_URLS, f"{domain}'s directory: {'; '.join(https_problems)}")
        elif https_urls:
            observed(HTTPS_URLS, f"{domain}: {https_urls} endpoint URLs, all https")
        if not listed:
            miss(WELL_KNOWN, f"{domain}'s directory maps no endpoint to a URL template (members: {others})")
        elif template_problems:
            miss(WELL_KNOWN, f"{domain}'s directory has unusable URL templates: {'; '.join(template_problems)}")
        else:
            observed(WELL_KNOWN, f"{domain}: HTTP 200, a JSON object mapping {len(listed)} endpoints to URL templates")


def _directory_keys(mimi, sut, recorder) -> dict[str, set[str]]:
    """The endpoint names each SUT domain's directory lists (after the draft's own repairs). A
    directory that cannot be read blocks the role checks (the well-known check judges it)."""
    keys = {}
    for domain, base_url in sut.base_urls.items():
        recorder.note(f"fetching {base_url}{WELL_KNOWN_PATH}")
        reply = mimi.get(base_url + WELL_KNOWN_PATH)
        if reply.status != 200:
            blocked(WELL_KNOWN, f"{domain}'s directory answered HTTP {reply.status}, so which endpoints it lists "
                    "cannot be read")
        document, problem, _ = _read_json(reply.body)
        if not isinstance(document, dict):
            blocked(WELL_KNOWN, f"{domain}'s directory is not a JSON object ({problem or type(document).__name__}), "
                    "so which endpoints it lists cannot be read")
        keys[domain] = set(document)
    return keys


def _judge_role_endpoints(mimi, sut, recorder, role: str, requirement: str) -> None:
    for domain, listed in _directory_keys(mimi, sut, recorder).items():
        missing = sorted(ROLE_ENDPOINTS[role] - listed)
        if missing:
            miss(requirement, f"{domain}'s directory (the SUT declares the {role} role) has no entry for {missing}")
        else:
            observed(requirement, f"{domain} lists all {len(ROLE_ENDPOINTS[role])} {role} endpoints")


@pytest.mark.requirements(HUB_ENDPOINTS)
@pytest.mark.role("hub")
@pytest.mark.operations()
def test_hub_directory_lists_the_hub_endpoints(sut, mimi, recorder):
    """A SUT acting as hub lists update, submitMessage, groupInfo, keyMaterial and proxyDownload in its
    directory (other members are allowed)."""
    _judge_role_endpoints(mimi, sut, recorder, "hub", HUB_ENDPOINTS)


@pytest.mark.requirements(FOLLOWER_ENDPOINTS)
@pytest.mark.role("follower")
@pytest.mark.operations()
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


def _query(mimi, sut, recorder, *elements: QueryElement, requirement: str) -> tuple[bytes, IdentifierResponse]:
    """POST /identifierQuery/{domain} to the SUT through its directory; the raw body and its decoding.

    A SUT that does not offer identifierQuery (no directory entry, or 404) makes the check
    NOT_APPLICABLE; a directory the query cannot be sent through blocks it (directory rule); any
    other answer that is not an IdentifierResponse is a miss of ``requirement``, the rule the query
    is asked to judge."""
    authority = urlsplit(sut.base_urls[sut.primary_domain]).netloc
    directory = mimi.directory(authority)
    if "identifierQuery" not in directory:
        not_applicable(f"{sut.primary_domain}'s directory lists no identifierQuery endpoint, which -06 makes "
                       "optional (§5.8; the follower directory check judges whether a follower lists it)")
    url = mimi.endpoint_urls(authority, {"identifierQuery": sut.primary_domain})["identifierQuery"]
    body = IdentifierRequest(query_elements=list(elements), id_request_extensions=AppDataDictionary(component_data=[]))
    described = ", ".join(f"{e.searchType.name}={bytes(e.searchValue).decode()!r}" for e in elements)
    recorder.note(f"identifierQuery: {described}")
    reply = mimi.request("POST", url, body.encode())
    if reply.status == 404:
        not_applicable(f"identifierQuery ({described}) answered HTTP 404: the SUT does not offer identifierQuery, "
                       "which -06 makes optional (§5.8)")
    if not 200 <= reply.status < 300:
        fail(f"identifierQuery ({described}) answered HTTP {reply.status}, not an IdentifierResponse",
             requirement=requirement)
    try:
        response = IdentifierResponse.decode(reply.body)
    except (DecodeError, EncodeError) as exc:
        fail(f"identifierQuery ({described}) answered an undecodable IdentifierResponse: {exc}",
             requirement=requirement)
    recorder.note(f"-> {response.responseCode.name}, {len(response.uri)} URI(s)")
    return reply.body, response


def _uris(response: IdentifierResponse) -> set[str]:
    return {bytes(u.uri).decode("utf-8", "replace") for u in response.uri}


def _searchable_user(sut_party, unique, name: str, *, policy: str = "searchable", **profile):
    """A SUT user with a unique handle URI and ``profile`` fields (contract Profile keys)."""
    handle = f"im:{unique(name)}@{sut_party.domain}"
    user = sut_party.create_user(name, clients=1, searchPolicy=policy, profile={"handles": [handle], **profile})
    return user, handle


def _success_problem(response: IdentifierResponse, expected: set[str], what: str) -> str | None:
    """Why ``response`` is not success with exactly ``expected`` (None: it is). A refusal of the
    search (forbidden, unsupportedField) makes the check NOT_APPLICABLE."""
    if response.responseCode in REFUSALS:
        not_applicable(f"the SUT refuses {what} ({response.responseCode.name})")
    if response.responseCode != IdentifierQueryCode.success:
        return f"{what} answered {response.responseCode.name}, not success with {sorted(expected)}"
    if _uris(response) != expected:
        return f"{what} answered success with {sorted(_uris(response))}, expected exactly {sorted(expected)}"
    return None


def _expect_success(response: IdentifierResponse, expected: set[str], what: str, requirement: str) -> None:
    problem = _success_problem(response, expected, what)
    if problem:
        fail(problem, requirement=requirement)


def _results_problem(response: IdentifierResponse, what: str) -> str | None:
    """Why ``response`` is not an answer with no result (None: it has none); the code is not judged here."""
    if response.uri or response.foundProfiles:
        return (f"{what} answered {response.responseCode.name} with {sorted(_uris(response))} "
                f"and {len(response.foundProfiles)} profile(s), not notFound with no results")
    return None


def _expect_not_found(response: IdentifierResponse, what: str, requirement: str) -> None:
    """No result (the status-code check judges the code)."""
    problem = _results_problem(response, what)
    if problem:
        fail(problem, requirement=requirement)


@pytest.mark.feature("identifierQuery")
@pytest.mark.requirements(EXACT_MATCH)
@pytest.mark.operations("createUser")
def test_identifier_query_handle_and_email_match_exactly(sut, sut_party, mimi, names, recorder):
    """handle and email searches match the whole value exactly: a near miss is notFound."""
    local = names("exact")
    user, handle = _searchable_user(sut_party, names, "exact", emails=[f"{local}@mail.example"])
    _, found = _query(mimi, sut, recorder, _element(T.handle, handle), requirement=EXACT_MATCH)
    _expect_success(found, {user.uri}, "an exact handle search for a searchable user", EXACT_MATCH)
    _, near = _query(mimi, sut, recorder, _element(T.handle, handle[:-1]), requirement=EXACT_MATCH)
    _expect_not_found(near, "a handle search missing the handle's last character", EXACT_MATCH)
    _, other_mail = _query(mimi, sut, recorder, _element(T.email, f"{local}x@mail.example"), requirement=EXACT_MATCH)
    _expect_not_found(other_mail, "an email search differing in the local-part", EXACT_MATCH)
    observed(EXACT_MATCH, "the exact handle found the user; the handle less its last character and an email "
             "differing in the local-part found nobody")


@pytest.mark.feature("identifierQuery")
@pytest.mark.requirements(EXACT_MATCH)
@pytest.mark.operations("createUser")
def test_identifier_query_nick_matches_a_nickname_or_a_handle_user_part(sut, sut_party, mimi, names, recorder):
    """A nick search finds the user by a nickname and by the user part of its handle, both exactly;
    the nickname less its last character finds nobody.

    -06 §5.8: "nick means that the nickname or handle user part matches exactly (for example:
    alice.smith). The same account or human user may have multiple values which all match the nick
    field." The handle has the draft's own form (im:alice.smith@a.example, user part alice.smith). A
    SUT that does not search nicks answers unsupportedField or forbidden: NOT_APPLICABLE."""
    local = names("nickuser").replace("-", ".")
    nick = names("Nick").replace("-", "")
    handle = f"im:{local}@{sut_party.domain}"
    user = sut_party.create_user("nick", clients=1, searchPolicy="searchable",
                                 profile={"handles": [handle], "nicks": [nick]})
    _, by_nick = _query(mimi, sut, recorder, _element(T.nick, nick), requirement=EXACT_MATCH)
    _expect_success(by_nick, {user.uri}, f"a nick search for the nickname {nick!r}", EXACT_MATCH)
    _, by_user_part = _query(mimi, sut, recorder, _element(T.nick, local), requirement=EXACT_MATCH)
    _expect_success(by_user_part, {user.uri}, f"a nick search for {local!r}, the user part of the handle {handle!r}",
                    EXACT_MATCH)
    _, near = _query(mimi, sut, recorder, _element(T.nick, nick[:-1]), requirement=EXACT_MATCH)
    if near.responseCode not in REFUSALS:  # a refused search finds nobody either
        _expect_not_found(near, "a nick search for the nickname less its last character", EXACT_MATCH)
    observed(EXACT_MATCH, f"nick {nick!r} and the handle's user part {local!r} found the user; {nick[:-1]!r} found "
             f"nobody ({near.responseCode.name})")


@pytest.mark.feature("identifierQuery")
@pytest.mark.requirements(EXACT_MATCH)
@pytest.mark.operations("createUser")
def test_identifier_query_vcard_fn_matches_exactly(sut, sut_party, mimi, names, recorder):
    """A vcardField search for FN finds the one user whose FN is the value, among users with and
    without a full name; the value less its last character finds nobody, and so does a user's
    nickname (that user has another FN).

    -06 §5.8: "vcardField means that the query string exactly matches the specified vCard property
    listed in the vCard Properties IANA registry" (FN: RFC 6350 §6.2.1; a nickname is the NICKNAME
    property, §6.2.3, not FN). A SUT that does not search FN answers unsupportedField or forbidden,
    which makes the check NOT_APPLICABLE."""
    full = f"{names('Fn').replace('-', '')} Smith"
    named, _ = _searchable_user(sut_party, names, "fn", vcard={"FN": full})
    _searchable_user(sut_party, names, "nofn")  # a user with no full name at all
    nick = names("Fnnick").replace("-", "")
    _searchable_user(sut_party, names, "fnnick", vcard={"FN": f"{nick[:-1]} Jones"}, nicks=[nick])
    _, found = _query(mimi, sut, recorder, _element(T.vcardField, full, "FN"), requirement=EXACT_MATCH)
    _expect_success(found, {named.uri}, f"a vcardField FN search for {full!r}", EXACT_MATCH)
    _, near = _query(mimi, sut, recorder, _element(T.vcardField, full[:-1], "FN"), requirement=EXACT_MATCH)
    if near.responseCode not in REFUSALS:  # a refused search finds nobody either
        _expect_not_found(near, "a vcardField FN search for the full name less its last character", EXACT_MATCH)
    _, by_nick = _query(mimi, sut, recorder, _element(T.vcardField, nick, "FN"), requirement=EXACT_MATCH)
    if by_nick.responseCode not in REFUSALS:
        _expect_not_found(by_nick, f"a vcardField FN search for {nick!r}, the nickname (not the FN) of a user",
                          EXACT_MATCH)
    observed(EXACT_MATCH, f"vcardField FN={full!r} found the one user with that FN; the value less its last "
             f"character found nobody ({near.responseCode.name}), nor did a user's nickname {nick!r} "
             f"({by_nick.responseCode.name})")


@pytest.mark.feature("identifierQuery")
@pytest.mark.requirements(EXACT_MATCH)
@pytest.mark.operations("createUser")
def test_identifier_query_vcard_property_matches_only_that_property(sut, sut_party, mimi, names, recorder):
    """A vcardField search for ORG finds the one user whose ORG is the value; a user's full name (the
    name claim), nickname or phone number searched as ORG finds nobody, as that user has no ORG.

    -06 §5.8: "vcardField means that the query string exactly matches the specified vCard property
    listed in the vCard Properties IANA registry" (ORG: RFC 6350 §6.6.4; the full name is FN, §6.2.1, a
    nickname NICKNAME, §6.2.3). A SUT that does not search ORG answers unsupportedField or forbidden,
    which makes the check NOT_APPLICABLE."""
    org = f"{names('Org').replace('-', '')} Works"
    orged, _ = _searchable_user(sut_party, names, "org", vcard={"ORG": org})
    full = f"{names('Full').replace('-', '')} Lee"
    nick = names("Orgnick").replace("-", "")
    phone = f"+4420{int.from_bytes(nick.encode(), 'big') % 10**7:07d}"
    _searchable_user(sut_party, names, "named", names={"name": full}, nicks=[nick], phones=[phone])
    _, found = _query(mimi, sut, recorder, _element(T.vcardField, org, "ORG"), requirement=EXACT_MATCH)
    _expect_success(found, {orged.uri}, f"a vcardField ORG search for {org!r}", EXACT_MATCH)
    answers = []
    for value, what in ((full, "the full name"), (nick, "the nickname"), (phone, "the phone number")):
        _, other = _query(mimi, sut, recorder, _element(T.vcardField, value, "ORG"), requirement=EXACT_MATCH)
        if other.responseCode not in REFUSALS:  # a refused search finds nobody either
            _expect_not_found(other, f"a vcardField ORG search for {value!r}, {what} of a user who has no ORG",
                              EXACT_MATCH)
        answers.append(f"{what} {value!r} ({other.responseCode.name})")
    observed(EXACT_MATCH, f"vcardField ORG={org!r} found the one user with that ORG; searched as ORG, "
             f"{', '.join(answers)} of a user without ORG found nobody")


@pytest.mark.feature("identifierQuery")
@pytest.mark.requirements(EXACT_MATCH)
@pytest.mark.operations("createUser")
def test_identifier_query_oidc_claim_matches_exactly(sut, sut_party, mimi, names, recorder):
    """An oidcStdClaim search for given_name finds the one user whose given name is the value, not a
    user whose given name only starts with it and whose nickname is the value; the value less its last
    character finds nobody.

    -06 §5.8: "oidcStdClaim means that the query string exactly matches the specified UserInfo Standard
    Claim (defined in Section 5.1 of [OidcCore])" (given_name is one of them; a nickname is the nickname
    claim, not given_name). A SUT that does not search that claim answers unsupportedField or forbidden,
    which makes the check NOT_APPLICABLE."""
    given = names("Gn").replace("-", "")
    named, _ = _searchable_user(sut_party, names, "given", names={"given_name": given})
    _searchable_user(sut_party, names, "longer", names={"given_name": f"{given}a"}, nicks=[given])
    _, found = _query(mimi, sut, recorder, _element(T.oidcStdClaim, given, "given_name"), requirement=EXACT_MATCH)
    _expect_success(found, {named.uri}, f"an oidcStdClaim given_name search for {given!r}", EXACT_MATCH)
    _, near = _query(mimi, sut, recorder, _element(T.oidcStdClaim, given[:-1], "given_name"),
                     requirement=EXACT_MATCH)
    if near.responseCode not in REFUSALS:  # a refused search finds nobody either
        _expect_not_found(near, "an oidcStdClaim given_name search for the name less its last character",
                          EXACT_MATCH)
    observed(EXACT_MATCH, f"given_name={given!r} found the one user with that given name (not the one named "
             f"{given + 'a'!r}, whose nickname it is); {given[:-1]!r} found nobody ({near.responseCode.name})")


@pytest.mark.feature("identifierQuery")
@pytest.mark.requirements(EXACT_MATCH)
@pytest.mark.operations("createUser")
def test_identifier_query_phone_matches_exactly_and_an_empty_value_nothing(sut, sut_party, mimi, names, recorder):
    """A phone search for a user's number (international format, "+" prefix) finds that user; the same
    number with its last digit changed finds nobody, and so does a handle search whose value is empty.

    -06 §5.8: "phone means the international format of a telephone number with the "+" prefix matches
    exactly (for example: +12125551212)" and "handle means that the entire handle URI matches exactly".
    No handle is the empty string, so an empty value matches no user exactly; -06 names no answer for
    such a query, so a refused search (forbidden, unsupportedField, any HTTP status other than 2xx) is
    as good as notFound: only a result is a miss. A SUT that does not search phone numbers answers
    unsupportedField or forbidden, which makes the check NOT_APPLICABLE."""
    digits = str(int.from_bytes(names("phone").encode(), "big") % 10**9).rjust(9, "0")
    number = f"+1212{digits[:7]}"
    near = number[:-1] + str((int(number[-1]) + 1) % 10)
    user, _ = _searchable_user(sut_party, names, "phone", phones=[number])
    _, found = _query(mimi, sut, recorder, _element(T.phone, number), requirement=EXACT_MATCH)
    _expect_success(found, {user.uri}, f"a phone search for {number!r}", EXACT_MATCH)
    _, other = _query(mimi, sut, recorder, _element(T.phone, near), requirement=EXACT_MATCH)
    if other.responseCode not in REFUSALS:
        _expect_not_found(other, f"a phone search for {near!r}, the number with its last digit changed", EXACT_MATCH)
    empty = _query_or_refusal(mimi, sut, recorder, _element(T.handle, ""))
    if empty is not None and empty.responseCode not in REFUSALS:
        _expect_not_found(empty, "a handle search whose value is empty", EXACT_MATCH)
    empty_answer = "refused" if empty is None else empty.responseCode.name
    observed(EXACT_MATCH, f"phone {number!r} found the user; {near!r} found nobody ({other.responseCode.name}); an "
             f"empty handle found nobody ({empty_answer})")


def _query_or_refusal(mimi, sut, recorder, *elements: QueryElement) -> IdentifierResponse | None:
    """:func:`_query` for a query -06 gives no answer for: an HTTP status other than 2xx is a refusal
    (None), not a miss; a 2xx that is not an IdentifierResponse still is one."""
    authority = urlsplit(sut.base_urls[sut.primary_domain]).netloc
    url = mimi.endpoint_urls(authority, {"identifierQuery": sut.primary_domain})["identifierQuery"]
    body = IdentifierRequest(query_elements=list(elements), id_request_extensions=AppDataDictionary(component_data=[]))
    reply = mimi.request("POST", url, body.encode())
    recorder.note(f"identifierQuery ({len(elements)} element(s), an empty value): HTTP {reply.status}")
    if not 200 <= reply.status < 300:
        return None
    try:
        return IdentifierResponse.decode(reply.body)
    except (DecodeError, EncodeError) as exc:
        fail(f"identifierQuery answered HTTP {reply.status} with an undecodable IdentifierResponse: {exc}",
             requirement=EXACT_MATCH)


@pytest.mark.feature("identifierQuery")
@pytest.mark.requirements(PARTIALNAME)
@pytest.mark.operations("createUser")
def test_identifier_query_partial_name_is_a_caseless_substring(sut, sut_party, mimi, names, recorder):
    """partialName finds a user by a substring of the family name in the other letter case, and a
    string that no name holds finds nobody, although the user's OIDC sub claim (an identifier, not a
    name) holds it.

    -06 §5.8: "partialName means that the query string matches a case-insensitive substring of any
    field which contains the name of a (usually human) user. For example, mat would match [...] last
    (family) names of Mather and Matali." Matching any field is the other type, "wholeProfile means that
    the query string matches a substring of any searchable field in a user's profile". A SUT may not
    offer partialName (forbidden, unsupportedField) or may want exact fields ("ambiguous means that a
    field [...] or combination of fields [...] need to match exactly for the provider to return any
    responses"): either makes the check NOT_APPLICABLE."""
    token = names("Pn").replace("-", "")
    family = f"{token}Mather"
    foreign = f"{token}Zq".swapcase()
    user, _ = _searchable_user(sut_party, names, "partial", names={"family_name": family},
                               oidcClaims={"sub": f"{token}Zq-0001"})
    needle = family[1:-1].swapcase()
    _, found = _query(mimi, sut, recorder, _element(T.partialName, needle), requirement=PARTIALNAME)
    if found.responseCode == IdentifierQueryCode.ambiguous and not found.uri:
        not_applicable(f"the SUT answers a partialName search ambiguous (it wants exact fields): {needle!r}")
    _expect_success(found, {user.uri}, f"a partialName search for {needle!r} (family name {family!r})", PARTIALNAME)
    _, other = _query(mimi, sut, recorder, _element(T.partialName, foreign), requirement=PARTIALNAME)
    _expect_not_found(other, f"a partialName search for {foreign!r}, in no user's name (only in a sub claim)",
                      PARTIALNAME)
    observed(PARTIALNAME, f"partialName {needle!r} found the user named {family!r}; {foreign!r} found nobody "
             f"({other.responseCode.name})")


@pytest.mark.feature("identifierQuery")
@pytest.mark.requirements(WHOLEPROFILE)
@pytest.mark.operations("createUser")
def test_identifier_query_whole_profile_is_a_substring_of_any_field(sut, sut_party, mimi, names, recorder):
    """A user's exact handle together with wholeProfile for a substring of the user's email finds the
    user; the same handle together with wholeProfile for a string that no field of the profile holds
    finds nobody.

    -06 §5.8: "wholeProfile means that the query string matches a substring of any searchable field in
    a user's profile" and "Each request can contain multiple query elements, which all have to match for
    the request to match (AND semantics)". The handle element keeps the answer to this one user, so
    the other users of the SUT never make it ambiguous by their number. A SUT may not offer
    wholeProfile (forbidden, unsupportedField) or may want exact fields (ambiguous): either makes the
    check NOT_APPLICABLE. The substring keeps the email's letter case (-06 says only "substring")."""
    token = names("Wp").replace("-", "")
    email = f"{token}Qz@mail.example"
    user, handle = _searchable_user(sut_party, names, "whole", emails=[email])
    needle = email[1:len(token) + 2]
    absent = f"{token}Xk9"
    _, found = _query(mimi, sut, recorder, _element(T.handle, handle), _element(T.wholeProfile, needle),
                      requirement=WHOLEPROFILE)
    if found.responseCode == IdentifierQueryCode.ambiguous and not found.uri:
        not_applicable(f"the SUT answers a wholeProfile search ambiguous (it wants exact fields): {needle!r}")
    _expect_success(found, {user.uri}, f"handle {handle!r} AND wholeProfile {needle!r} (email {email!r})",
                    WHOLEPROFILE)
    _, other = _query(mimi, sut, recorder, _element(T.handle, handle), _element(T.wholeProfile, absent),
                      requirement=WHOLEPROFILE)
    _expect_not_found(other, f"handle {handle!r} AND wholeProfile {absent!r}, a string in no field of the profile",
                      WHOLEPROFILE)
    observed(WHOLEPROFILE, f"wholeProfile {needle!r} (in the email) found the user beside its handle; {absent!r} "
             f"(in no field) found nobody ({other.responseCode.name})")


@pytest.mark.feature("identifierQuery")
@pytest.mark.requirements(ZERO_ONE_MANY, STATUS_CODES)
@pytest.mark.operations("createUser")
def test_identifier_query_returns_zero_one_or_many_users(sut, sut_party, mimi, names, recorder):
    """A query answers notFound with no results for no match, success with one URI for one user and
    success with every URI for several users. (The first user's profile also holds a phone number, as
    real profiles do, so the answers that find it carry a profile with one.)"""
    family = names("Family").replace("-", "")
    phone = f"+4420{int.from_bytes(family.encode(), 'big') % 10**7:07d}"
    first, first_handle = _searchable_user(sut_party, names, "many", names={"family_name": family}, phones=[phone])
    second, _ = _searchable_user(sut_party, names, "many", names={"family_name": family})
    _, none = _query(mimi, sut, recorder, _element(T.handle, f"im:{names('nobody')}@{sut_party.domain}"),
                     requirement=ZERO_ONE_MANY)
    what = "a handle search matching no user"
    if none.responseCode in REFUSALS:
        not_applicable(f"the SUT refuses {what} ({none.responseCode.name})")
    zero_ok = True
    problem = _results_problem(none, what)
    if problem:
        zero_ok = False
        miss(ZERO_ONE_MANY, problem)
    if none.responseCode == IdentifierQueryCode.success and not none.uri:
        miss(STATUS_CODES, f"{what} answered success with no result: success means at least one result matched, "
             "notFound that none did")
    elif none.responseCode != IdentifierQueryCode.notFound and not problem:
        miss(STATUS_CODES, f"{what} answered {none.responseCode.name} with no result, not notFound")
    elif none.responseCode == IdentifierQueryCode.notFound and not problem:
        observed(STATUS_CODES, "no match: notFound with no results")
    _, one = _query(mimi, sut, recorder, _element(T.handle, first_handle), requirement=ZERO_ONE_MANY)
    one_problem = _success_problem(one, {first.uri}, "an exact handle search for one searchable user")
    _, many = _query(mimi, sut, recorder, _element(T.oidcStdClaim, family, "family_name"), requirement=ZERO_ONE_MANY)
    many_problem = _success_problem(many, {first.uri, second.uri}, "a family_name claim search shared by two users")
    for found in (one_problem, many_problem):
        if found:
            miss(ZERO_ONE_MANY, found)
    if zero_ok and not one_problem and not many_problem:
        observed(ZERO_ONE_MANY, "no match: no URI; one match: its URI; two matches: both URIs")
    for response in (one, many):
        if len(response.foundProfiles) > len(response.uri):
            miss(STATUS_CODES, "a success response lists more profiles than URIs")
        elif response.responseCode == IdentifierQueryCode.success and response.uri:
            observed(STATUS_CODES, f"success with {len(response.uri)} result(s)")


@pytest.mark.feature("identifierQuery")
@pytest.mark.requirements(AND_SEMANTICS)
@pytest.mark.operations("createUser")
def test_identifier_query_elements_all_have_to_match(sut, sut_party, mimi, names, recorder):
    """A query with several elements matches only users matching every element (AND)."""
    given = names("Alice").replace("-", "")
    smith = names("Smith").replace("-", "")
    jones = names("Jones").replace("-", "")
    alice_smith, _ = _searchable_user(sut_party, names, "asmith", names={"given_name": given, "family_name": smith})
    _searchable_user(sut_party, names, "ajones", names={"given_name": given, "family_name": jones})
    _, response = _query(mimi, sut, recorder, _element(T.oidcStdClaim, given, "given_name"),
                         _element(T.oidcStdClaim, smith, "family_name"), requirement=AND_SEMANTICS)
    _expect_success(response, {alice_smith.uri}, f"given_name={given} AND family_name={smith}", AND_SEMANTICS)
    observed(AND_SEMANTICS, "given_name AND family_name found the one user matching both, not the one "
             "matching only given_name")


@pytest.mark.feature("identifierQuery")
@pytest.mark.requirements(SEARCH_POLICY)
@pytest.mark.operations("createUser")
def test_identifier_query_honours_the_users_search_policy(sut, sut_party, mimi, names, recorder):
    """A hidden user is not found even by exact handle, and an exact-handle-only user is found by
    handle but not by name."""
    given = names("Hidden").replace("-", "")
    _, hidden_handle = _searchable_user(sut_party, names, "hidden", policy="hidden", names={"given_name": given})
    _, response = _query(mimi, sut, recorder, _element(T.handle, hidden_handle), requirement=SEARCH_POLICY)
    _expect_not_found(response, "an exact handle search for a hidden user", SEARCH_POLICY)
    name = names("Handleonly").replace("-", "")
    exact, exact_handle = _searchable_user(sut_party, names, "exacth", policy="exactHandle", names={"given_name": name})
    _, by_handle = _query(mimi, sut, recorder, _element(T.handle, exact_handle), requirement=SEARCH_POLICY)
    _expect_success(by_handle, {exact.uri}, "an exact handle search for an exact-handle-only user", SEARCH_POLICY)
    _, by_name = _query(mimi, sut, recorder, _element(T.oidcStdClaim, name, "given_name"), requirement=SEARCH_POLICY)
    if by_name.responseCode not in REFUSALS:  # a refused search finds nobody either
        _expect_not_found(by_name, "a given_name search for an exact-handle-only user", SEARCH_POLICY)
    observed(SEARCH_POLICY, "a hidden user was not found by exact handle; an exact-handle-only user was found by "
             f"handle and not by given_name ({by_name.responseCode.name})")


@pytest.mark.feature("identifierQuery")
@pytest.mark.requirements(SAFE_IDEMPOTENT)
@pytest.mark.operations("createUser")
def test_identifier_query_repeated_gives_the_same_answer(sut, sut_party, mimi, names, recorder):
    """Repeating an identical identifierQuery returns a byte-identical answer."""
    _, handle = _searchable_user(sut_party, names, "repeat")
    first, _ = _query(mimi, sut, recorder, _element(T.handle, handle), requirement=SAFE_IDEMPOTENT)
    second, _ = _query(mimi, sut, recorder, _element(T.handle, handle), requirement=SAFE_IDEMPOTENT)
    if first != second:
        fail(f"two identical queries got different answers: {first.hex()} then {second.hex()}",
             requirement=SAFE_IDEMPOTENT)
    observed(SAFE_IDEMPOTENT, f"two identical queries got the same {len(first)}-byte answer")


# DISC-R9 is judged through identifierQuery: without the feature there is nothing to ask.
@pytest.mark.feature("identifierQuery")
@pytest.mark.requirements(REMOVED_NOT_RETURNED)
@pytest.mark.operations("createUser", "deleteUser")
def test_deleted_user_is_no_longer_found(sut, sut_party, mimi, names, recorder):
    """After a user is deleted, a query that found it answers notFound."""
    if not sut_party.supports("deleteUser"):
        not_applicable("the SUT's control API does not implement deleteUser", operation="deleteUser")
    user, handle = _searchable_user(sut_party, names, "gone")
    _, before = _query(mimi, sut, recorder, _element(T.handle, handle), requirement=REMOVED_NOT_RETURNED)
    _expect_success(before, {user.uri}, "an exact handle search before deletion", REMOVED_NOT_RETURNED)
    sut_party.delete_user(user)
    _, after = _query(mimi, sut, recorder, _element(T.handle, handle), requirement=REMOVED_NOT_RETURNED)
    _expect_not_found(after, "the same search after the user was deleted", REMOVED_NOT_RETURNED)
    observed(REMOVED_NOT_RETURNED, "found by exact handle before deletion, not after")
