"""§4.1 identity rules and endpoint paths as pure functions."""

from __future__ import annotations

import json

import pytest

from reference_peer.server.endpoints import (
    ENDPOINTS,
    PathError,
    decode_segment,
    directory_document,
    encode_segment,
    expand_template,
    match_endpoint,
)
from reference_peer.server.names import (
    MalformedFrom,
    MalformedHost,
    certificate_authenticates,
    dns_id_matches,
    parse_from,
    parse_host,
)


@pytest.mark.parametrize(
    ("value", "domain"),
    [("mimi@a.example", "a.example"), ("  mimi@A.Example ", "a.example"), ("mimi@xn--bcher-kva.example", "xn--bcher-kva.example")],
)
def test_from_accepts_the_bare_addr_spec_with_local_part_mimi(value, domain):
    assert parse_from(value) == domain


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "alice@a.example",  # another local-part
        "MIMI@a.example",  # local-parts are case-sensitive; §4.1 fixes the string "mimi"
        "mimi@",
        "@a.example",
        "mimi",
        "a.example",
        "Provider A <mimi@a.example>",  # name-addr, not addr-spec
        "<mimi@a.example>",
        '"mimi"@a.example',
        "mimi@a.example (provider A)",
        "mimi@a.example, mimi@b.example",
        "mimi@[192.0.2.1]",
        "mimi@192.0.2.1",
        "mimi@a.example:443",
        "mimi@a..example",
        "mimi@-a.example",
        "mimi@a_b.example",
        "mimi@a.example.",
        "mimi@mimi@a.example",
        "mimi @a.example",
    ],
)
def test_from_rejects_everything_else(value):
    with pytest.raises(MalformedFrom):
        parse_from(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a.example", ("a.example", None)),
        ("A.Example:8443", ("a.example", 8443)),
        ("a.example.:443", ("a.example", 443)),
        ("[::1]:8443", ("[::1]", 8443)),
        ("127.0.0.1:80", ("127.0.0.1", 80)),
    ],
)
def test_host_parses_domain_and_port(value, expected):
    assert parse_host(value) == expected


@pytest.mark.parametrize("value", [None, "", " ", "a.example:", "a.example:http", "a.example:70000", "a.example:0", "[::1", ":443"])
def test_host_rejects_malformed_values(value):
    with pytest.raises(MalformedHost):
        parse_host(value)


@pytest.mark.parametrize(
    ("reference", "presented", "matches"),
    [
        ("a.example", "a.example", True),
        ("a.example", "A.EXAMPLE", True),
        ("a.example", "b.example", False),
        ("a.example", "example", False),
        ("mimi.a.example", "*.a.example", True),
        ("a.example", "*.a.example", False),  # a wildcard needs one label
        ("x.mimi.a.example", "*.a.example", False),  # and only one
        ("a.example", "*.example", False),  # nor over a single remaining label (a TLD-wide wildcard)
        ("a.b.example", "*.b.example", True),
        ("example", "*", False),
        ("a.example", "a*.example", False),  # partial wildcards are not honoured
        ("a.example", "*a.example", False),
        ("a.b.example", "a.*.example", False),
    ],
)
def test_dns_id_matching_follows_rfc6125(reference, presented, matches):
    assert dns_id_matches(reference, presented) is matches


def test_certificate_authenticates_only_through_san_names():
    assert certificate_authenticates("b.example", ["a.example", "b.example"])
    assert not certificate_authenticates("b.example", [])
    assert not certificate_authenticates("b.example", ["not-b.example"])


def test_directory_has_all_ten_endpoints_with_slash_separated_templates():
    document = json.loads(json.dumps(directory_document("a.example:8443")))
    assert document == {
        "keyMaterial": "https://a.example:8443/v1/keyMaterial/{targetUser}",
        "update": "https://a.example:8443/v1/update/{roomId}",
        "notify": "https://a.example:8443/v1/notify/{roomId}",
        "submitMessage": "https://a.example:8443/v1/submitMessage/{roomId}",
        "groupInfo": "https://a.example:8443/v1/groupInfo/{roomId}",
        "requestConsent": "https://a.example:8443/v1/requestConsent/{targetDomain}",
        "updateConsent": "https://a.example:8443/v1/updateConsent/{requesterDomain}",
        "identifierQuery": "https://a.example:8443/v1/identifierQuery/{domain}",
        "reportAbuse": "https://a.example:8443/v1/reportAbuse/{roomId}",
        "proxyDownload": "https://a.example:8443/v1/proxyDownload/{downloadUrl}",
    }
    assert {name for name, e in ENDPOINTS.items() if e.method == "GET"} == {"proxyDownload"}


@pytest.mark.parametrize(
    "value", ["mimi://a.example/r/clubhouse", "mimi://a.example/u/alice?x=1#f", "https://dl.a.example/a b/%41", "ünïcødé/ルーム"]
)
def test_path_variables_round_trip_through_one_segment(value):
    segment = encode_segment(value)
    assert "/" not in segment
    matched = match_endpoint(f"/v1/notify/{segment}")
    assert matched is not None and matched[0].name == "notify" and matched[1] == segment
    assert decode_segment(segment) == value
    assert expand_template("https://a.example/v1/notify/{roomId}", value) == f"https://a.example/v1/notify/{segment}"


@pytest.mark.parametrize(
    "path", ["/v1/notify", "/v1/notify/", "/v1/notify/a/b", "/v1/unknown/x", "/notify/x", "/v2/notify/x", "/v1//x"]
)
def test_paths_that_are_not_an_endpoint_shape_do_not_match(path):
    assert match_endpoint(path) is None


@pytest.mark.parametrize("segment", ["%zz", "abc%2", "%ff", "%C3%28"])
def test_malformed_percent_encoding_is_a_path_error(segment):
    with pytest.raises(PathError):
        decode_segment(segment)
