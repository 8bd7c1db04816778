"""The mimi-protocol-directory JSON model (protocol-06 §5.1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reference_peer.wire.directory import ENDPOINTS, Directory, DirectoryError
from reference_peer.wire.identity import IdentifierUri, MimiUri

DRAFT_EXAMPLE = (Path(__file__).parent / "draft06_directory_example.json").read_text()


def test_the_drafts_example_is_rejected_strictly() -> None:
    with pytest.raises(DirectoryError, match="JSON"):
        Directory.parse(DRAFT_EXAMPLE)


def test_tolerant_parsing_repairs_exactly_the_drafts_typos() -> None:
    directory, leniencies = Directory.parse(DRAFT_EXAMPLE, tolerant=True)
    assert sorted((lc.ambiguity, lc.path) for lc in leniencies) == [
        ("AMB-DIRECTORY-JSON", "directory.proxyDownload"),
        ("AMB-DIRECTORY-UPDATE-SLASH", "directory.update"),
    ]
    assert set(directory.endpoints) == set(ENDPOINTS)
    assert directory.endpoints["update"] == "https://mimi.example.com/v1/update/{roomId}"


def test_a_repaired_slash_alone_is_still_rejected_strictly() -> None:
    document = json.loads(Directory.default_for("https://x.example").to_json())
    document["update"] = "https://x.example/v1/update{roomId}"
    with pytest.raises(DirectoryError) as info:
        Directory.parse(json.dumps(document))
    assert info.value.endpoint == "update"
    assert Directory.parse(json.dumps(document), tolerant=True).leniencies[0].ambiguity == "AMB-DIRECTORY-UPDATE-SLASH"


def test_default_directory_round_trips_strictly_without_leniencies() -> None:
    directory = Directory.default_for("https://hub.example:8443/")
    parsed, leniencies = Directory.parse(directory.to_json())
    assert parsed == directory and leniencies == ()
    assert directory.endpoints["notify"] == "https://hub.example:8443/v1/notify/{roomId}"
    # The consent variables are §5.7's domains (AMB-CONSENT-PATH-VARIABLES), not the example's users.
    assert directory.endpoints["requestConsent"].endswith("/v1/requestConsent/{targetDomain}")
    assert directory.endpoints["updateConsent"].endswith("/v1/updateConsent/{requesterDomain}")


@pytest.mark.parametrize(
    ("mutate", "endpoint"),
    [
        (lambda d: d.pop("notify"), "notify"),
        (lambda d: d.update(groupInfo="http://x.example/v1/groupInfo/{roomId}"), "groupInfo"),
        (lambda d: d.update(reportAbuse="https://x.example/v1/reportAbuse/{room}"), "reportAbuse"),
        (lambda d: d.update(keyMaterial="https://x.example/v1/keyMaterial/{targetUser}/x"), "keyMaterial"),
        (lambda d: d.update(identifierQuery=7), "identifierQuery"),
    ],
)
def test_strict_checks_name_the_endpoint(mutate, endpoint: str) -> None:
    document = json.loads(Directory.default_for("https://x.example").to_json())
    mutate(document)
    for tolerant in (False, True):
        with pytest.raises(DirectoryError) as info:
            Directory.parse(json.dumps(document), tolerant=tolerant)
        assert info.value.endpoint == endpoint


def test_url_percent_encodes_a_room_uri_as_one_segment() -> None:
    directory = Directory.parse(DRAFT_EXAMPLE, tolerant=True).value
    expected = "https://mimi.example.com/v1/update/mimi%3A%2F%2Fa.example%2Fr%2Fclubhouse"
    assert directory.url("update", roomId="mimi://a.example/r/clubhouse") == expected
    assert directory.url("update", roomId=MimiUri.for_room("a.example", "clubhouse")) == expected
    assert directory.url("update", roomId=IdentifierUri(uri=b"mimi://a.example/r/clubhouse")) == expected


def test_consent_urls_accept_both_variable_spellings() -> None:
    directory = Directory.parse(DRAFT_EXAMPLE, tolerant=True).value  # uses {targetUser}/{requesterUser}
    assert directory.url("requestConsent", targetDomain="b.example").endswith("/requestConsent/b.example")
    assert directory.url("requestConsent", targetUser="b.example").endswith("/requestConsent/b.example")
    document = json.loads(directory.to_json())
    document["updateConsent"] = "https://mimi.example.com/v1/updateConsent/{requesterDomain}"
    section_5_7 = Directory.parse(json.dumps(document)).value  # §5.7's spelling is accepted strictly
    assert section_5_7.url("updateConsent", requesterUser="a.example").endswith("/updateConsent/a.example")
    with pytest.raises(TypeError):
        directory.url("requestConsent", roomId="x")
    with pytest.raises(TypeError):
        directory.url("notify")


def test_unknown_keys_are_kept_as_extra() -> None:
    document = json.loads(Directory.default_for("https://x.example").to_json())
    document["meta"] = {"termsOfService": "https://x.example/tos"}
    directory = Directory.parse(json.dumps(document)).value
    assert directory.extra == {"meta": {"termsOfService": "https://x.example/tos"}}
    assert json.loads(directory.to_json())["meta"] == document["meta"]
