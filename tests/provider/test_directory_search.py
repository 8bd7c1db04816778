"""identifierQuery (protocol-06 §5.8): match rules, AND semantics, policies, response codes."""

from __future__ import annotations

import pytest
from provider_helpers import FakeClock, make_provider

from reference_peer.provider.directory_search import (
    Profile,
    QueryElement,
    SearchPolicy,
    SearchSettings,
    elements_from_request,
    handle_user_part,
)
from reference_peer.wire.mimi import IdentifierQueryCode as Q
from reference_peer.wire.mimi import IdentifierRequest, IdentifierResponse
from reference_peer.wire.mimi import QueryElement as WireQueryElement
from reference_peer.wire.mimi import SearchIdentifierType as T
from reference_peer.wire.mls import AppDataDictionary

XAVIER = "mimi://xyz.example/u/xavier"
YOLANDA = "mimi://xyz.example/u/yolanda"
ZACH = "mimi://xyz.example/u/zach"
MATT = "mimi://xyz.example/u/matt"

PROFILES = {
    XAVIER: (
        SearchPolicy.searchable,
        Profile(
            handles=("im:xavier.sales@xyz.example",),
            nicks=("xav",),
            emails=("xavier@xyz.example",),
            phones=("+12125551212",),
            names={"given_name": "Xavier", "family_name": "Mather"},
            oidc_claims={"locale": "en-US"},
            vcard={"ORG": "XYZ Sales"},
        ),
    ),
    YOLANDA: (
        SearchPolicy.exact_handle,
        Profile(
            handles=("im:yolanda@xyz.example",),
            emails=("yolanda@xyz.example",),
            names={"given_name": "Yolanda"},
        ),
    ),
    ZACH: (
        SearchPolicy.hidden,
        Profile(
            handles=("im:zach@xyz.example",),
            emails=("zach@xyz.example",),
            names={"given_name": "Zach"},
        ),
    ),
    MATT: (
        SearchPolicy.searchable,
        Profile(
            handles=("im:matt@xyz.example",),
            names={"given_name": "Matthew", "family_name": "Smith"},
            vcard={"org": "XYZ Sales"},
        ),
    ),
}


def make(search: SearchSettings | None = None):
    p = make_provider(FakeClock(), domains=("xyz.example",), **({"search": search} if search else {}))
    for uri, (policy, profile) in PROFILES.items():
        p.provision_user(uri, clients=0, profile=profile, search_policy=policy)
    return p


@pytest.fixture(scope="module")
def directory():
    return make()


def el(kind: T, value: str, name: str | None = None) -> QueryElement:
    return QueryElement(int(kind), value.encode(), None if name is None else name.encode())


def found(p, *elements) -> tuple[Q, list[str]]:
    result = p.identifier_query(list(elements))
    return result.code, [m.uri for m in result.matches]


# -- each search type --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        (el(T.handle, "im:xavier.sales@xyz.example"), [XAVIER]),
        (el(T.handle, "im:xavier.sales@xyz.exampl"), []),  # exact, not prefix
        (el(T.handle, "IM:XAVIER.SALES@XYZ.EXAMPLE"), []),  # exact, not case-folded
        (el(T.nick, "xav"), [XAVIER]),
        (el(T.nick, "xavier.sales"), [XAVIER]),  # the handle's user part
        (el(T.nick, "xavier"), []),
        (el(T.email, "xavier@xyz.example"), [XAVIER]),
        (el(T.email, "avier@xyz.example"), []),
        (el(T.phone, "+12125551212"), [XAVIER]),
        (el(T.phone, "12125551212"), []),  # E.164 needs the "+"
        (el(T.partialName, "mat"), [MATT, XAVIER]),  # given Matthew, family Mather
        (el(T.partialName, "XAV"), [XAVIER]),  # case-insensitive
        (el(T.partialName, "sales"), []),  # ORG is not a name field
        (el(T.wholeProfile, "sales"), [MATT, XAVIER]),
        (el(T.wholeProfile, "5551212"), [XAVIER]),
        (el(T.oidcStdClaim, "Xavier", "given_name"), [XAVIER]),
        (el(T.oidcStdClaim, "Xav", "given_name"), []),  # exact
        (el(T.oidcStdClaim, "xavier@xyz.example", "email"), [XAVIER]),
        (el(T.oidcStdClaim, "en-US", "locale"), [XAVIER]),
        (el(T.vcardField, "XYZ Sales", "ORG"), [MATT, XAVIER]),
        (el(T.vcardField, "XYZ Sales", "org"), [MATT, XAVIER]),  # property names are case-insensitive
        (el(T.vcardField, "+12125551212", "TEL"), [XAVIER]),
        (el(T.vcardField, "XYZ", "ORG"), []),
    ],
)
def test_search_type_match_rules(directory, element, expected):
    code, uris = found(directory, element)
    assert uris == expected
    assert code == (Q.success if expected else Q.notFound)


def test_and_semantics_across_elements(directory):
    assert found(directory, el(T.partialName, "mat"), el(T.oidcStdClaim, "Smith", "family_name")) == (Q.success, [MATT])
    assert found(directory, el(T.oidcStdClaim, "Xavier", "given_name"), el(T.vcardField, "XYZ Sales", "ORG")) == (
        Q.success,
        [XAVIER],
    )
    assert found(directory, el(T.partialName, "mat"), el(T.email, "nobody@xyz.example")) == (Q.notFound, [])


def test_handle_user_part():
    assert handle_user_part("im:alice.smith@a.example") == "alice.smith"
    assert handle_user_part("mimi://a.example/u/alice") == "alice"


# -- user policies (Xavier / Yolanda / Zach) ---------------------------------------------------


def test_exact_handle_user_found_only_by_exact_handle(directory):
    assert found(directory, el(T.handle, "im:yolanda@xyz.example")) == (Q.success, [YOLANDA])
    for element in (
        el(T.email, "yolanda@xyz.example"),
        el(T.partialName, "yolanda"),
        el(T.wholeProfile, "yolanda"),
        el(T.nick, "yolanda"),
        el(T.oidcStdClaim, "Yolanda", "given_name"),
    ):
        assert found(directory, element) == (Q.notFound, [])
    # A handle plus anything else is no longer an exact-handle query.
    assert found(directory, el(T.handle, "im:yolanda@xyz.example"), el(T.partialName, "yol")) == (Q.notFound, [])


def test_hidden_user_indistinguishable_from_no_match(directory):
    hidden = directory.identifier_query([el(T.handle, "im:zach@xyz.example")])
    absent = directory.identifier_query([el(T.handle, "im:nobody@xyz.example")])
    assert hidden == absent
    assert hidden.to_response().encode() == absent.to_response().encode()
    assert found(directory, el(T.wholeProfile, "zach")) == (Q.notFound, [])


def test_deleted_user_not_found():
    p = make()
    p.delete_user(XAVIER)
    assert found(p, el(T.handle, "im:xavier.sales@xyz.example")) == (Q.notFound, [])


# -- provider policy and codes -----------------------------------------------------------------


def test_forbidden_search_types():
    p = make(SearchSettings(forbidden_types=frozenset({int(T.partialName), int(T.wholeProfile)})))
    assert found(p, el(T.partialName, "mat")) == (Q.forbidden, [])
    assert found(p, el(T.handle, "im:matt@xyz.example"), el(T.wholeProfile, "s")) == (Q.forbidden, [])
    assert found(p, el(T.handle, "im:matt@xyz.example")) == (Q.success, [MATT])


def test_endpoint_disabled_and_empty_query_are_forbidden(directory):
    assert found(make(SearchSettings(enabled=False)), el(T.handle, "im:matt@xyz.example")) == (Q.forbidden, [])
    assert found(directory) == (Q.forbidden, [])


def test_unsupported_fields():
    p = make(SearchSettings(supported_types=frozenset({int(T.handle), int(T.oidcStdClaim), int(T.vcardField)})))
    assert found(p, el(T.phone, "+12125551212")) == (Q.unsupportedField, [])
    assert found(p, el(T.oidcStdClaim, "x", "not_a_claim")) == (Q.unsupportedField, [])
    assert found(p, el(T.vcardField, "x", "X-NOPE")) == (Q.unsupportedField, [])
    assert found(p, QueryElement(0, b"x")) == (Q.unsupportedField, [])  # reserved(0)


def test_ambiguous_when_too_many_match():
    p = make(SearchSettings(max_results=1))
    assert found(p, el(T.vcardField, "XYZ Sales", "ORG")) == (Q.ambiguous, [])
    assert found(p, el(T.vcardField, "XYZ Sales", "ORG"), el(T.oidcStdClaim, "Smith", "family_name")) == (
        Q.success,
        [MATT],
    )


def test_hidden_users_do_not_count_towards_ambiguous():
    p = make(SearchSettings(max_results=2))
    # "a" is in the names of Xavier, Matt, Zach (hidden) and Yolanda (exact-handle only): only the
    # two searchable users count, so this is not ambiguous.
    assert found(p, el(T.partialName, "a")) == (Q.success, [MATT, XAVIER])


def test_non_utf8_value_matches_nothing(directory):
    assert found(directory, QueryElement(int(T.wholeProfile), b"\xff\xfe")) == (Q.notFound, [])


# -- wire in, wire out -------------------------------------------------------------------------


def test_request_elements_and_response_struct(directory):
    request = IdentifierRequest(
        query_elements=[
            WireQueryElement(searchType=T.oidcStdClaim, claimName=b"given_name", searchValue=b"Xavier"),
            WireQueryElement(searchType=T.vcardField, propertyName=b"ORG", searchValue=b"XYZ Sales"),
        ],
        id_request_extensions=AppDataDictionary(component_data=[]),
    )
    request = IdentifierRequest.decode(request.encode())
    result = directory.identifier_query(elements_from_request(request))
    response = IdentifierResponse.decode(result.to_response().encode())
    assert response.responseCode == Q.success
    assert [u.uri for u in response.uri] == [XAVIER.encode()]
    (profile,) = response.foundProfiles
    fields = {(f.fieldSource.name, f.fieldName): f.fieldValue for f in profile.fields}
    assert fields[("oidcStdClaim", "given_name")] == b"Xavier"
    assert fields[("oidcStdClaim", "email")] == b"xavier@xyz.example"
    assert fields[("vcardField", "ORG")] == b"XYZ Sales"


def test_profile_round_trips_through_the_store(directory):
    assert directory.directory.profile(XAVIER) == PROFILES[XAVIER][1]
