"""``identifierQuery`` (protocol-06 §5.8): user profiles, search policies and matching.

Policies
--------
* Per user (the draft's Xavier / Yolanda / Zach): ``searchable`` (every search type finds the
  user), ``exact_handle`` (only a query made of ``handle`` elements, matched exactly, finds the
  user), ``hidden`` (nothing finds the user).
* Per provider (:class:`SearchSettings`): the endpoint may be off (``forbidden``), search types may
  be unsupported (``unsupportedField``) or forbidden (``forbidden``; e.g. partialName and
  wholeProfile), the OIDC claims and vCard properties it knows, and ``max_results``: a query that
  matches more users than that answers ``ambiguous`` with no results (a more exact query needed).

Matching: every query element must match (AND). handle: the whole handle URI, exactly. nick: a
nickname or the user part of a handle, exactly. email: the addr-spec, exactly. phone: the E.164
form with "+", exactly. partialName: case-insensitive substring of a name field. wholeProfile:
substring of any searchable field (case-insensitive too: the draft says only "substring", and a
case-sensitive directory search would surprise users). oidcStdClaim / vcardField: the named
claim / property, exactly (vCard property names are case-insensitive, RFC 6350 §3.3).

Privacy: hidden and deleted users never match and never count towards ``ambiguous``, so a query
for them is indistinguishable from one that matches nobody (``notFound``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..overrides import NO_OVERRIDES, Overrides, step
from ..wire.identity import IdentifierUri
from ..wire.mimi import (
    FieldSource,
    IdentifierQueryCode,
    IdentifierResponse,
    ProfileField,
    SearchIdentifierType,
    UserProfile,
)
from ..wire.mls import AppDataDictionary
from .store import Store

T = SearchIdentifierType

# -- the steps of the identifierQuery rules (reference_peer.overrides) -----------------------------------

SKIP_DELETED = step(
    "directory.search.skip-deleted", "DISC-R9-REMOVED-NOT-RETURNED",
    summary="a deleted user is never found")
HONOUR_POLICY = step(
    "directory.search.honour-policy", "PROTO-IDQUERY-SEARCH-POLICY",
    summary="a hidden user is never found; an exact-handle-only user only by a query of handle elements")
MATCH_ALL_ELEMENTS = step(
    "directory.search.match-all-elements", "PROTO-IDQUERY-AND-SEMANTICS",
    summary="a user matches a query only if every element of it matches (AND)")
NOTFOUND_WHEN_NONE = step(
    "directory.search.notfound-when-none", "PROTO-IDQUERY-STATUS-CODES",
    summary="a query that matches nobody answers notFound")
EVERY_MATCH = step(
    "directory.search.every-match", "DISC-R5-ZERO-ONE-MANY",
    summary="a query answers every matching user (up to max_results; more answers ambiguous)")
MATCH_ORDER = step(
    "directory.search.match-order", "DISC-R5-ZERO-ONE-MANY",
    summary="several matching users are answered in user URI order")
HANDLE_EXACT = step(
    "directory.match.handle-exact", "PROTO-IDQUERY-EXACT-MATCH-TYPES",
    summary="a handle element matches the whole handle URI exactly")
NICK_HANDLE_USER_PART = step(
    "directory.match.nick-handle-user-part", "PROTO-IDQUERY-EXACT-MATCH-TYPES",
    summary="a nick element matches a nickname or the user part of a handle, exactly")
VCARD_EXACT = step(
    "directory.match.vcard-exact", "PROTO-IDQUERY-EXACT-MATCH-TYPES",
    summary="a vcardField element matches the named vCard property's whole value exactly")
VCARD_NAMED_PROPERTY = step(
    "directory.match.vcard-named-property", "PROTO-IDQUERY-EXACT-MATCH-TYPES",
    summary="a vcardField element is matched against the named property's values only (the nicknames only for "
            "NICKNAME, never for FN or another property)")
PHONE_EXACT = step(
    "directory.match.phone-exact", "PROTO-IDQUERY-EXACT-MATCH-TYPES",
    summary="a phone element matches a profile's phone number exactly (international format, '+' prefix)")
OIDC_CLAIM_EXACT = step(
    "directory.match.oidc-claim-exact", "PROTO-IDQUERY-EXACT-MATCH-TYPES",
    summary="an oidcStdClaim element matches the named claim's whole value exactly")
OIDC_CLAIM_VALUES = step(
    "directory.match.oidc-claim-values", "PROTO-IDQUERY-EXACT-MATCH-TYPES",
    summary="an oidcStdClaim element is matched against the named claim's values only (the nicknames only for "
            "nickname, never for given_name or another claim)")
PARTIAL_NAME_EVERY_NAME_FIELD = step(
    "directory.match.partial-name-every-name-field", "PROTO-IDQUERY-PARTIALNAME",
    summary="a partialName element is searched in every name field (given, middle, family and full name)")
WHOLE_PROFILE_EVERY_FIELD = step(
    "directory.match.whole-profile-every-field", "PROTO-IDQUERY-WHOLEPROFILE",
    summary="a wholeProfile element is searched in every searchable field of the profile (handles, emails, "
            "phones, names, claims and properties), not in the name fields only")

# OpenID Connect Core 1.0 §5.1 standard claims.
OIDC_STANDARD_CLAIMS = frozenset(
    {
        "sub",
        "name",
        "given_name",
        "family_name",
        "middle_name",
        "nickname",
        "preferred_username",
        "profile",
        "picture",
        "website",
        "email",
        "email_verified",
        "gender",
        "birthdate",
        "zoneinfo",
        "locale",
        "phone_number",
        "phone_number_verified",
        "address",
        "updated_at",
    }
)
# RFC 6350 properties (the vCard Properties IANA registry's core set).
VCARD_PROPERTIES = frozenset(
    {
        "SOURCE",
        "KIND",
        "XML",
        "FN",
        "N",
        "NICKNAME",
        "PHOTO",
        "BDAY",
        "ANNIVERSARY",
        "GENDER",
        "ADR",
        "TEL",
        "EMAIL",
        "IMPP",
        "LANG",
        "TZ",
        "GEO",
        "TITLE",
        "ROLE",
        "LOGO",
        "ORG",
        "MEMBER",
        "RELATED",
        "CATEGORIES",
        "NOTE",
        "PRODID",
        "REV",
        "SOUND",
        "UID",
        "CLIENTPIDMAP",
        "URL",
        "KEY",
        "FBURL",
        "CALADRURI",
        "CALURI",
    }
)
NAME_CLAIMS = ("name", "given_name", "family_name", "middle_name")
_NAME_VCARD = ("FN", "N")


class SearchPolicy(enum.StrEnum):
    searchable = "searchable"  # Xavier
    exact_handle = "exact_handle"  # Yolanda
    hidden = "hidden"  # Zach


@dataclass(frozen=True)
class Profile:
    """Profile fields of one user. ``names`` holds name fields keyed by OIDC claim name
    (given_name, middle_name, family_name, name); ``vcard`` keys are property names."""

    handles: tuple[str, ...] = ()
    nicks: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    names: Mapping[str, str] = field(default_factory=dict)
    oidc_claims: Mapping[str, str] = field(default_factory=dict)
    vcard: Mapping[str, str] = field(default_factory=dict)

    def rows(self) -> list[tuple[str, str, str]]:
        """(kind, name, value) rows for the profile_fields table."""
        out = [("handle", "", v) for v in self.handles]
        out += [("nick", "", v) for v in self.nicks]
        out += [("email", "", v) for v in self.emails]
        out += [("phone", "", v) for v in self.phones]
        out += [("name", k, v) for k, v in self.names.items()]
        out += [("oidc", k, v) for k, v in self.oidc_claims.items()]
        out += [("vcard", k.upper(), v) for k, v in self.vcard.items()]
        return out

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, str]]) -> Profile:
        lists: dict[str, list[str]] = {"handle": [], "nick": [], "email": [], "phone": []}
        maps: dict[str, dict[str, str]] = {"name": {}, "oidc": {}, "vcard": {}}
        for kind, name, value in rows:
            if kind in lists:
                lists[kind].append(value)
            else:
                maps[kind][name] = value
        return cls(
            handles=tuple(lists["handle"]),
            nicks=tuple(lists["nick"]),
            emails=tuple(lists["email"]),
            phones=tuple(lists["phone"]),
            names=maps["name"],
            oidc_claims=maps["oidc"],
            vcard=maps["vcard"],
        )

    # -- derived views used by matching ------------------------------------------------------------

    def oidc_values(self, claim: str) -> set[str]:
        values = {self.oidc_claims[claim]} if claim in self.oidc_claims else set()
        if claim in NAME_CLAIMS and claim in self.names:
            values.add(self.names[claim])
        if claim == "email":
            values.update(self.emails)
        elif claim == "phone_number":
            values.update(self.phones)
        elif claim == "nickname":
            values.update(self.nicks)
        return values

    def vcard_values(self, prop: str) -> set[str]:
        prop = prop.upper()
        values = {v for k, v in self.vcard.items() if k.upper() == prop}
        if prop == "EMAIL":
            values.update(self.emails)
        elif prop == "TEL":
            values.update(self.phones)
        elif prop == "NICKNAME":
            values.update(self.nicks)
        elif prop == "FN" and "name" in self.names:
            values.add(self.names["name"])
        return values

    def name_values(self) -> list[str]:
        values = list(self.names.values())
        values += [v for k, v in self.oidc_claims.items() if k in NAME_CLAIMS]
        values += [v for k, v in self.vcard.items() if k.upper() in _NAME_VCARD]
        return values

    def all_values(self) -> list[str]:
        return [value for _, _, value in self.rows()]

    def public_fields(self) -> list[tuple[FieldSource, str, str]]:
        """What a success response shows: OIDC claims (explicit and derived) and vCard properties."""
        claims: dict[str, str] = dict(self.oidc_claims)
        for claim in NAME_CLAIMS:
            if claim in self.names:
                claims.setdefault(claim, self.names[claim])
        if self.emails:
            claims.setdefault("email", self.emails[0])
        if self.phones:
            claims.setdefault("phone_number", self.phones[0])
        if self.nicks:
            claims.setdefault("nickname", self.nicks[0])
        out = [(FieldSource.oidcStdClaim, k, v) for k, v in sorted(claims.items())]
        out += [(FieldSource.vcardField, k.upper(), v) for k, v in sorted(self.vcard.items())]
        return out


def handle_user_part(handle: str) -> str:
    """``im:alice.smith@a.example`` -> ``alice.smith``; ``mimi://a.example/u/alice`` -> ``alice``."""
    rest = handle.split(":", 1)[1] if ":" in handle else handle
    rest = rest.lstrip("/")
    if "@" in rest:
        return rest.split("@", 1)[0]
    return rest.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class QueryElement:
    search_type: int
    value: bytes | str
    name: bytes | str | None = None  # claimName / propertyName

    @property
    def text(self) -> str | None:
        return _text(self.value)

    @property
    def name_text(self) -> str | None:
        return None if self.name is None else _text(self.name)


def _text(value: bytes | str) -> str | None:
    if isinstance(value, str):
        return value
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return None


def elements_from_request(request) -> list[QueryElement]:
    """Query elements from a decoded ``IdentifierRequest``."""
    out = []
    for el in request.query_elements:
        name = (
            el.claimName
            if el.searchType == T.oidcStdClaim
            else el.propertyName
            if el.searchType == T.vcardField
            else None
        )
        out.append(QueryElement(int(el.searchType), bytes(el.searchValue), None if name is None else bytes(name)))
    return out


@dataclass(frozen=True)
class SearchSettings:
    enabled: bool = True
    supported_types: frozenset[int] = frozenset(int(t) for t in T if t != T.reserved)
    forbidden_types: frozenset[int] = frozenset()
    max_results: int = 10
    oidc_claims: frozenset[str] = OIDC_STANDARD_CLAIMS
    vcard_properties: frozenset[str] = VCARD_PROPERTIES


@dataclass(frozen=True)
class SearchMatch:
    uri: str
    fields: tuple[tuple[FieldSource, str, str], ...]


@dataclass(frozen=True)
class SearchResult:
    code: IdentifierQueryCode
    matches: tuple[SearchMatch, ...] = ()

    def to_response(self) -> IdentifierResponse:
        return IdentifierResponse(
            responseCode=self.code,
            uri=[IdentifierUri(uri=m.uri.encode()) for m in self.matches],
            foundProfiles=[
                UserProfile(
                    stableUri=IdentifierUri(uri=m.uri.encode()),
                    fields=[ProfileField(fieldSource=s, fieldName=n, fieldValue=v.encode()) for s, n, v in m.fields],
                )
                for m in self.matches
            ],
            id_response_extensions=AppDataDictionary(component_data=[]),
        )


class Directory:
    def __init__(self, store: Store, settings: SearchSettings, *, overrides: Overrides = NO_OVERRIDES) -> None:
        self._store = store
        self.overrides = overrides
        self.settings = settings

    # -- profiles ------------------------------------------------------------------------------

    def set_profile(self, user: str, profile: Profile) -> None:
        with self._store.transaction() as conn:
            conn.execute("DELETE FROM profile_fields WHERE user_uri = ?", (user,))
            conn.executemany(
                "INSERT INTO profile_fields (user_uri, kind, name, value, position) VALUES (?, ?, ?, ?, ?)",
                [(user, kind, name, value, i) for i, (kind, name, value) in enumerate(profile.rows())],
            )

    def profile(self, user: str) -> Profile:
        rows = self._store.conn.execute(
            "SELECT kind, name, value FROM profile_fields WHERE user_uri = ? ORDER BY position", (user,)
        ).fetchall()
        return Profile.from_rows(rows)

    def set_policy(self, user: str, policy: SearchPolicy) -> None:
        with self._store.transaction() as conn:
            if conn.execute("UPDATE users SET search_policy = ? WHERE uri = ?", (str(policy), user)).rowcount != 1:
                raise KeyError(user)

    # -- search --------------------------------------------------------------------------------

    def check_query(self, elements: Sequence[QueryElement]) -> IdentifierQueryCode | None:
        """The refusal code for a query the provider will not run, or None when it is acceptable."""
        s = self.settings
        if not s.enabled or not elements:
            # An empty query would match everyone: refuse it rather than enumerate users.
            return IdentifierQueryCode.forbidden
        for el in elements:
            if el.search_type not in s.supported_types:
                return IdentifierQueryCode.unsupportedField
            if el.search_type in s.forbidden_types:
                return IdentifierQueryCode.forbidden
            if el.search_type == T.oidcStdClaim and el.name_text not in s.oidc_claims:
                return IdentifierQueryCode.unsupportedField
            if el.search_type == T.vcardField and (el.name_text or "").upper() not in s.vcard_properties:
                return IdentifierQueryCode.unsupportedField
        return None

    def search(self, elements: Sequence[QueryElement]) -> SearchResult:
        refusal = self.check_query(elements)
        if refusal is not None:
            return SearchResult(refusal)
        users = self._store.conn.execute(
            "SELECT uri, search_policy FROM users WHERE (? OR status = 'active') AND (? OR search_policy != 'hidden') "
            "ORDER BY uri",
            (self.overrides.departs(SKIP_DELETED), self.overrides.departs(HONOUR_POLICY)),
        ).fetchall()
        matches = []
        match_all = any if self.overrides.departs(MATCH_ALL_ELEMENTS) else all
        for uri, policy in users:
            if (policy == SearchPolicy.exact_handle and any(el.search_type != T.handle for el in elements)
                    and not self.overrides.departs(HONOUR_POLICY)):
                continue
            profile = self.profile(uri)
            if match_all(element_matches(profile, el, self.overrides) for el in elements):
                matches.append(SearchMatch(uri, tuple(profile.public_fields())))
        if not matches:
            if self.overrides.departs(NOTFOUND_WHEN_NONE):
                return SearchResult(IdentifierQueryCode.success)
            return SearchResult(IdentifierQueryCode.notFound)
        if len(matches) > self.settings.max_results:
            return SearchResult(IdentifierQueryCode.ambiguous)
        matches = self.overrides.hook(MATCH_ORDER, matches) or matches
        if self.overrides.departs(EVERY_MATCH):
            matches = matches[:1]
        return SearchResult(IdentifierQueryCode.success, tuple(matches))


def _whole_profile_values(profile: Profile, overrides: Overrides) -> list[str]:
    """The values a wholeProfile element is searched in: every field of the profile (a fault's hook
    may answer fewer)."""
    return overrides.hook(WHOLE_PROFILE_EVERY_FIELD, profile) or profile.all_values()


def element_matches(profile: Profile, el: QueryElement, overrides: Overrides = NO_OVERRIDES) -> bool:
    """Whether query element ``el`` matches ``profile`` (``overrides``: those of the provider searching).
    wholeProfile: a substring of any field (PROTO-IDQUERY-WHOLEPROFILE)."""
    value = el.text
    if value is None or value == "":
        return False
    kind = el.search_type
    if kind == T.handle:
        if overrides.departs(HANDLE_EXACT):
            return any(handle.startswith(value) for handle in profile.handles)
        return value in profile.handles
    if kind == T.nick:
        if overrides.departs(NICK_HANDLE_USER_PART):  # a fault's: the nicknames alone are searched
            return bool(profile.nicks.count(value))
        return value in profile.nicks or any(handle_user_part(h) == value for h in profile.handles)
    if kind == T.email:
        return value in profile.emails
    if kind == T.phone:
        if overrides.departs(PHONE_EXACT):  # a fault's: any number matches a user who has one
            return bool(profile.phones)
        return value.startswith("+") and value in profile.phones
    if kind == T.partialName:
        needle = value.casefold()
        names = overrides.hook(PARTIAL_NAME_EVERY_NAME_FIELD, profile) or profile.name_values()
        return any(needle in name.casefold() for name in names)
    if kind == T.wholeProfile:
        needle = value.casefold()
        return any(needle in v.casefold() for v in _whole_profile_values(profile, overrides))
    if kind == T.oidcStdClaim:
        if overrides.departs(OIDC_CLAIM_EXACT):  # a fault's: a prefix of the claim's value matches
            return any(v.startswith(value) for v in profile.oidc_values(str(el.name_text)))
        return el.name_text is not None and value in (overrides.hook(OIDC_CLAIM_VALUES, profile, el.name_text)
                                                      or profile.oidc_values(el.name_text))
    if kind == T.vcardField:
        if overrides.departs(VCARD_EXACT):  # a fault's: a prefix of the property's value matches
            return any(v.startswith(value) for v in profile.vcard_values(str(el.name_text)))
        if el.name_text is not None and overrides.departs(VCARD_NAMED_PROPERTY):  # a fault's: nicknames match any
            return value in profile.vcard_values(el.name_text) | set(profile.nicks)
        return el.name_text is not None and value in profile.vcard_values(el.name_text)
    return False
