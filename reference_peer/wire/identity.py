"""Identifier structs shared by the MLS and MIMI layers (draft-ietf-mimi-protocol-06 §5.2, §6.1),
and :class:`MimiUri`, the ``mimi://`` identifiers of protocol-06 §3 and draft-mahy-mimi-identity-05.

URI forms (the first path segment names the kind)::

    mimi://a.example                      provider
    mimi://a.example/u/alice              user
    mimi://a.example/d/ClientA1           client (device), one segment ...
    mimi://a.example/d/alice/ClientA1     ... or user then client
    mimi://a.example/r/clubhouse          room
    mimi://a.example/g/clubhouse          MLS group
    mimi://a.example/p/crazykoala75       pseudonym
    mimi://a.example/t/engineering        team

Identifiers without a domain use ``local.invalid`` (identity-05). Segments are percent-decoded
when parsed and percent-encoded when formatted, so ``parse(format(u)) == u`` for any segments.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from urllib.parse import quote, unquote

from .codec import Struct, opaque, wire

NO_DOMAIN = "local.invalid"


class MimiUriError(ValueError):
    """A string that is not a well-formed mimi:// URI; ``text`` is the offending input."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"not a mimi URI ({reason}): {text!r}")
        self.text = text
        self.reason = reason


class UriKind(enum.Enum):
    """The kind of a MIMI URI; the value is its path letter ("" for a provider)."""

    provider = ""
    user = "u"
    client = "d"
    room = "r"
    group = "g"
    pseudonym = "p"
    team = "t"


_SEGMENT_COUNTS = {kind: (1, 1) for kind in UriKind} | {UriKind.provider: (0, 0), UriKind.client: (1, 2)}
_KIND_BY_LETTER = {kind.value: kind for kind in UriKind if kind.value}
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
# RFC 3986 pchar minus "%" and "/": left unencoded when formatting a segment.
_SEGMENT_SAFE = "-._~!$&'()*+,;=:@"
_PERCENT_OK = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _check_domain(text: str, domain: str) -> str:
    labels = domain.split(".")
    if not domain or len(domain) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise MimiUriError(text, f"bad domain {domain!r}")
    return domain


@dataclasses.dataclass(frozen=True)
class MimiUri:
    """A parsed mimi:// URI: the domain, the kind and the (percent-decoded) path segments."""

    domain: str
    kind: UriKind
    segments: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        low, high = _SEGMENT_COUNTS[self.kind]
        if not low <= len(self.segments) <= high:
            raise MimiUriError(self.format_unchecked(), f"{self.kind.name} takes {low}..{high} segments")
        if any(not segment for segment in self.segments):
            raise MimiUriError(self.format_unchecked(), "empty path segment")
        _check_domain(self.format_unchecked(), self.domain)

    # -- constructors -----------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> MimiUri:
        if not isinstance(text, str):
            raise MimiUriError(repr(text), "not a string")
        scheme, sep, rest = text.partition("://")
        if not sep or scheme.lower() != "mimi":
            raise MimiUriError(text, "scheme must be mimi://")
        if "?" in rest or "#" in rest:
            raise MimiUriError(text, "query and fragment are not allowed")
        authority, slash, path = rest.partition("/")
        if "@" in authority or ":" in authority:
            raise MimiUriError(text, "userinfo and port are not allowed")
        domain = _check_domain(text, authority)
        raw_segments = path.split("/") if path else []
        if slash and not path:
            raw_segments = []  # "mimi://a.example/" is the provider
        if not raw_segments:
            return cls(domain, UriKind.provider)
        kind = _KIND_BY_LETTER.get(raw_segments[0])
        if kind is None:
            raise MimiUriError(text, f"unknown kind {raw_segments[0]!r}")
        if any(_PERCENT_OK.search(segment) for segment in raw_segments[1:]):
            raise MimiUriError(text, "bad percent-encoding")
        try:
            segments = tuple(unquote(segment, errors="strict") for segment in raw_segments[1:])
        except UnicodeDecodeError:
            raise MimiUriError(text, "percent-encoding is not UTF-8") from None
        low, high = _SEGMENT_COUNTS[kind]
        if not low <= len(segments) <= high or not all(segments):
            raise MimiUriError(text, f"{kind.name} URIs take {low}..{high} non-empty segments")
        return cls(domain, kind, segments)

    @classmethod
    def for_provider(cls, domain: str | None) -> MimiUri:
        return cls(domain or NO_DOMAIN, UriKind.provider)

    @classmethod
    def for_user(cls, domain: str | None, user: str) -> MimiUri:
        return cls(domain or NO_DOMAIN, UriKind.user, (user,))

    @classmethod
    def for_client(cls, domain: str | None, client: str, *, user: str | None = None) -> MimiUri:
        return cls(domain or NO_DOMAIN, UriKind.client, (user, client) if user is not None else (client,))

    @classmethod
    def for_room(cls, domain: str | None, room: str) -> MimiUri:
        return cls(domain or NO_DOMAIN, UriKind.room, (room,))

    @classmethod
    def for_group(cls, domain: str | None, group: str) -> MimiUri:
        return cls(domain or NO_DOMAIN, UriKind.group, (group,))

    @classmethod
    def for_pseudonym(cls, domain: str | None, pseudonym: str) -> MimiUri:
        return cls(domain or NO_DOMAIN, UriKind.pseudonym, (pseudonym,))

    @classmethod
    def for_team(cls, domain: str | None, team: str) -> MimiUri:
        return cls(domain or NO_DOMAIN, UriKind.team, (team,))

    # -- views -----------------------------------------------------------------------------

    @property
    def name(self) -> str | None:
        """The last segment: the user, client, room, group, pseudonym or team name."""
        return self.segments[-1] if self.segments else None

    @property
    def user(self) -> str | None:
        """The user of a user URI, or of a two-segment client URI (d/alice/ClientA1)."""
        if self.kind is UriKind.user or (self.kind is UriKind.client and len(self.segments) == 2):
            return self.segments[0]
        return None

    @property
    def has_domain(self) -> bool:
        return self.domain != NO_DOMAIN

    def format_unchecked(self) -> str:
        path = "".join("/" + quote(segment, safe=_SEGMENT_SAFE) for segment in self.segments)
        return f"mimi://{self.domain}" + (f"/{self.kind.value}{path}" if self.kind is not UriKind.provider else "")

    def format(self) -> str:
        return self.format_unchecked()

    def __str__(self) -> str:
        return self.format()

    def identifier(self) -> IdentifierUri:
        return IdentifierUri(uri=self.format().encode())


class IdentifierUri(Struct):
    """``struct { opaque uri<V>; } IdentifierUri;`` (§5.2). Holds a mimi:// URI as UTF-8 bytes."""

    uri: bytes = wire(opaque)

    @classmethod
    def from_uri(cls, uri: str | MimiUri) -> IdentifierUri:
        """From a MimiUri or a string (validated as a mimi:// URI)."""
        parsed = uri if isinstance(uri, MimiUri) else MimiUri.parse(uri)
        return cls(uri=parsed.format().encode())

    def parsed(self) -> MimiUri:
        """The carried URI as a :class:`MimiUri`; :class:`MimiUriError` if it is not one."""
        try:
            text = bytes(self.uri).decode("utf-8")
        except UnicodeDecodeError:
            raise MimiUriError(repr(bytes(self.uri)), "not UTF-8") from None
        return MimiUri.parse(text)


class PseudonymousCredential(Struct):
    """Minimal-metadata-room credential (§6.1).

    As written, ``signature_public_key`` has no length (``opaque signature_public_key;``), which
    TLS-PL does not allow for a variable-size key; the suite reads it as ``opaque<V>``
    (AMB-PSEUDONYM-KEY-LENGTH).
    """

    client_pseudonym: IdentifierUri = wire(IdentifierUri)
    user_pseudonym: IdentifierUri = wire(IdentifierUri)
    signature_public_key: bytes = wire(opaque)
    identity_link_ciphertext: bytes = wire(opaque)


class PseudonymousCredentialTBS(Struct):
    """§6.1 PseudonymousCredentialTBS; ``signature_public_key`` read as ``opaque<V>`` (AMB-PSEUDONYM-KEY-LENGTH)."""

    client_pseudonym: IdentifierUri = wire(IdentifierUri)
    user_pseudonym: IdentifierUri = wire(IdentifierUri)
    signature_public_key: bytes = wire(opaque)
