"""The directory client is tolerant (draft-ietf-mimi-protocol-06 §5.1 models its directory on ACME's,
RFC 8555 §7.1.1, which may carry a ``meta`` object and other members): members that are not endpoint
templates are kept and never judged, only the templates a caller uses are validated, and every bad
one asked for is reported at once."""

from __future__ import annotations

import json

import pytest
from test_transport_client import FAST, canned_peer, directory_reply, reply
from transport_helpers import client_for, run

from reference_peer.server.client import PeerDirectoryError

GOOD = {
    "notify": "https://a.example/v1/notify/{roomId}",
    "update": "https://a.example/v1/update/{roomId}",
    "keyMaterial": "https://a.example/v1/keyMaterial/{targetUser}",
}


def _serve(document: dict):
    return reply(directory_reply(json.dumps(document).encode()))


def test_members_that_are_not_endpoint_templates_are_kept_and_ignored(pki):
    document = {**GOOD, "meta": {"termsOfService": "https://a.example/tos", "website": "https://a.example"},
                "caaIdentities": ["a.example"], "version": 3}

    async def body():
        async with canned_peer(pki, _serve(document)) as port, client_for(pki, limits=FAST) as client:
            peer = f"a.example:{port}"
            directory = await client.fetch_directory(peer)
            assert directory["meta"] == document["meta"]
            assert directory["version"] == 3
            url = await client.endpoint_url(peer, "notify", "mimi://a.example/r/room")
            assert url == "https://a.example/v1/notify/mimi%3A%2F%2Fa.example%2Fr%2Froom"

    run(body())


def test_a_bad_template_is_judged_only_when_it_is_used(pki):
    document = {**GOOD, "reportAbuse": 7}

    async def body():
        async with canned_peer(pki, _serve(document)) as port, client_for(pki, limits=FAST) as client:
            peer = f"a.example:{port}"
            assert await client.endpoint_url(peer, "update", "r")  # reportAbuse is not needed here
            with pytest.raises(PeerDirectoryError, match="'reportAbuse' is unusable") as caught:
                await client.endpoint_url(peer, "reportAbuse", "r")
            assert set(caught.value.bad_templates) == {"reportAbuse"}

    run(body())


def test_every_bad_or_missing_template_asked_for_is_reported_at_once(pki):
    document = {**GOOD, "notify": {"url": "https://a.example/n"}, "update": "https://a.example/v1/update"}

    async def body():
        async with canned_peer(pki, _serve(document)) as port, client_for(pki, limits=FAST) as client:
            peer = f"a.example:{port}"
            with pytest.raises(PeerDirectoryError) as caught:
                await client.endpoint_urls(peer, {"notify": "r", "update": "r", "groupInfo": "r", "keyMaterial": "u"})
            error = caught.value
            assert set(error.bad_templates) == {"notify", "update"}
            assert error.missing == ("groupInfo",)
            assert not error.unusable
            for words in ("'notify' is unusable", "'update' is unusable", "no 'groupInfo' entry"):
                assert words in str(error)

    run(body())
