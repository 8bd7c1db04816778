"""mimi:// URIs (protocol-06 §3, draft-mahy-mimi-identity-05)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_peer.wire.identity import NO_DOMAIN, IdentifierUri, MimiUri, MimiUriError, UriKind


@pytest.mark.parametrize(
    ("text", "kind", "segments", "user"),
    [
        ("mimi://a.example", UriKind.provider, (), None),
        ("mimi://a.example/u/alice", UriKind.user, ("alice",), "alice"),
        ("mimi://a.example/d/ClientA1", UriKind.client, ("ClientA1",), None),
        ("mimi://a.example/d/alice/ClientA1", UriKind.client, ("alice", "ClientA1"), "alice"),
        ("mimi://a.example/r/clubhouse", UriKind.room, ("clubhouse",), None),
        ("mimi://a.example/g/clubhouse", UriKind.group, ("clubhouse",), None),
        ("mimi://a.example/p/crazykoala75", UriKind.pseudonym, ("crazykoala75",), None),
        ("mimi://a.example/t/engineering", UriKind.team, ("engineering",), None),
        ("mimi://hub.example/r/Rl33FWLCYWOwxHrYnpWDQg", UriKind.room, ("Rl33FWLCYWOwxHrYnpWDQg",), None),
    ],
)
def test_the_drafts_examples_parse_and_format_back(text: str, kind: UriKind, segments: tuple, user: str | None) -> None:
    uri = MimiUri.parse(text)
    assert (uri.domain, uri.kind, uri.segments, uri.user) == (text.split("/")[2], kind, segments, user)
    assert uri.format() == str(uri) == text


@pytest.mark.parametrize(
    "text",
    [
        "https://a.example/u/alice",
        "mimi:/a.example/u/alice",
        "mimi://a.example/x/alice",
        "mimi://a.example/u",
        "mimi://a.example/u/",
        "mimi://a.example/u/alice/extra",
        "mimi://a.example/d/alice/ClientA1/x",
        "mimi://a.example/u/alice?x=1",
        "mimi://a.example/u/alice#f",
        "mimi://bob@a.example/u/alice",
        "mimi://a.example:443/u/alice",
        "mimi:///u/alice",
        "mimi://-bad.example/u/alice",
        "mimi://a..example/u/alice",
        "mimi://a.example/u/%zzalice",
        "mimi://a.example/u/%ff",
    ],
)
def test_malformed_uris_raise_mimi_uri_error(text: str) -> None:
    with pytest.raises(MimiUriError) as info:
        MimiUri.parse(text)
    assert isinstance(info.value, ValueError) and info.value.text == text


def test_segments_are_percent_encoded() -> None:
    uri = MimiUri.for_room("a.example", "club house/2")
    assert uri.format() == "mimi://a.example/r/club%20house%2F2"
    assert MimiUri.parse(uri.format()) == uri


def test_no_domain_uses_local_invalid() -> None:
    uri = MimiUri.for_user(None, "alice")
    assert uri.format() == f"mimi://{NO_DOMAIN}/u/alice" and not uri.has_domain
    assert MimiUri.for_client(None, "c1", user="alice").format() == "mimi://local.invalid/d/alice/c1"


def test_constructors_validate_like_parse() -> None:
    with pytest.raises(MimiUriError):
        MimiUri.for_user("a.example", "")
    with pytest.raises(MimiUriError):
        MimiUri(domain="a.example", kind=UriKind.user, segments=("a", "b"))


def test_identifier_uri_conveniences() -> None:
    ident = IdentifierUri.from_uri("mimi://a.example/u/alice")
    assert ident.uri == b"mimi://a.example/u/alice"
    assert ident.parsed() == MimiUri.for_user("a.example", "alice")
    assert IdentifierUri.from_uri(MimiUri.for_room("a.example", "r1")).uri == b"mimi://a.example/r/r1"
    with pytest.raises(MimiUriError):
        IdentifierUri(uri=b"\xff").parsed()
    with pytest.raises(MimiUriError):
        IdentifierUri.from_uri("not a uri")


_segment = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
_domain = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z0-9]{1,6}){0,2}", fullmatch=True)


@settings(max_examples=150, deadline=None, database=None)
@given(_domain, st.sampled_from([k for k in UriKind if k is not UriKind.provider]), st.lists(_segment, min_size=1, max_size=2))
def test_format_then_parse_is_identity(domain: str, kind: UriKind, segments: list[str]) -> None:
    if kind is not UriKind.client:
        segments = segments[:1]
    uri = MimiUri(domain, kind, tuple(segments))
    text = uri.format()
    assert MimiUri.parse(text) == uri
    assert text.count("/") == 3 + len(segments)  # every segment stayed one segment


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=40))
def test_arbitrary_text_parses_or_raises_mimi_uri_error(text: str) -> None:
    try:
        MimiUri.parse("mimi://a.example/" + text)
    except MimiUriError:
        pass
