"""Allowed variants of the reference peer's endpoints (reference_peer/faults/variants_peer.py): each is a
behaviour -06 (or the ambiguity register) permits, given to a peer as overrides of the named steps of
reference_peer/peer.py. These cases exercise the steps without a network; ``mimi-conformance selftest
--variant NAME`` runs the suite against them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reference_peer.faults import VARIANTS, overrides_for
from reference_peer.peer import (
    GROUPINFO_HIDES_UNKNOWN_ROOM,
    PROXY_REFUSAL_403,
    QUEUE_NOTIFY_IN_ORDER,
    REFUSAL_AS_200_WITH_CODE,
    ProviderOptions,
    ReferenceProvider,
)
from reference_peer.wire.mimi import GroupInfoCode, GroupInfoResponse

NEW = {
    "stale-epoch-refusals-as-http-409": "AMB-FAILURE-CODE-STATUS",
    "refusals-as-http-403-with-body": "AMB-FAILURE-CODE-STATUS",
    "groupinfo-unknown-room-no-such-room": "-06 §5.6",
    "notify-one-message-per-body": "-06 §5.5",
    "proxy-download-refused-404": "-06 §5.10.2",
}


@pytest.mark.parametrize("variant", sorted(NEW))
def test_the_variants_cite_what_permits_them(variant):
    assert variant in VARIANTS and NEW[variant] in VARIANTS[variant].permitted_by


def test_stale_epoch_refusals_are_409_with_their_body_and_nothing_else_changes():
    hook = overrides_for(["stale-epoch-refusals-as-http-409"]).hook
    assert hook(REFUSAL_AS_200_WITH_CODE, "update", "wrongEpoch", "") == (409, True)
    assert hook(REFUSAL_AS_200_WITH_CODE, "submitMessage", "epochTooOld", "") == (409, True)
    assert hook(REFUSAL_AS_200_WITH_CODE, "update", "notAllowed", "") is None
    assert hook(REFUSAL_AS_200_WITH_CODE, "submitMessage", "notAllowed", "") is None


def test_policy_refusals_are_403_with_their_body():
    hook = overrides_for(["refusals-as-http-403-with-body"]).hook
    assert hook(REFUSAL_AS_200_WITH_CODE, "update", "notAllowed", "") == (403, True)
    assert hook(REFUSAL_AS_200_WITH_CODE, "update", "invalidProposal", "") == (403, True)
    assert hook(REFUSAL_AS_200_WITH_CODE, "submitMessage", "notAllowed", "") == (403, True)
    assert hook(REFUSAL_AS_200_WITH_CODE, "update", "wrongEpoch", "") is None


def _provider(variants):
    return ReferenceProvider(ProviderOptions("a.example", Path("unused"), Path("unused"), Path("unused")),
                             overrides=overrides_for(variants))


def test_a_peer_built_with_the_409_variant_answers_a_stale_epoch_with_the_body():
    from reference_peer.wire.mimi import UpdateResponseCode, UpdateRoomResponse

    response = UpdateRoomResponse(responseCode=UpdateResponseCode.wrongEpoch, errorDescription="", currentEpoch=7)
    provider, plain = _provider(["stale-epoch-refusals-as-http-409"]), _provider([])
    try:
        answer = provider._refusal_otherwise(REFUSAL_AS_200_WITH_CODE, "update", "wrongEpoch", "", response)  # noqa: SLF001
        assert answer.status == 409 and UpdateRoomResponse.decode(answer.body).currentEpoch == 7
        assert plain._refusal_otherwise(REFUSAL_AS_200_WITH_CODE, "update", "wrongEpoch", "", response) is None  # noqa: SLF001
    finally:
        provider.state.close()
        plain.state.close()


def test_unknown_room_answers_no_such_room():
    answer = overrides_for(["groupinfo-unknown-room-no-such-room"]).hook(
        GROUPINFO_HIDES_UNKNOWN_ROOM, "a.example", "mimi://a.example/r/none")
    assert answer.status == 200
    decoded = GroupInfoResponse.decode(answer.body)
    assert decoded.status == GroupInfoCode.noSuchRoom and bytes(decoded.room_id) == b"mimi://a.example/r/none"
    assert overrides_for([]).hook(GROUPINFO_HIDES_UNKNOWN_ROOM, "a.example", "mimi://a.example/r/none") is None


def test_one_fanout_message_per_notify_body():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "wire"))
    from wire_samples import application, public

    from reference_peer.wire.mimi import FanoutMessage
    from reference_peer.wire.mls import ContentType

    messages = [FanoutMessage(timestamp=1, message=public(ContentType.proposal), moreProposals=[]),
                FanoutMessage(timestamp=2, message=application())]
    body = b"".join(m.encode() for m in messages)
    provider = type("Provider", (), {"hub_rooms": {}})()
    hook = overrides_for(["notify-one-message-per-body"]).hook
    assert hook(QUEUE_NOTIFY_IN_ORDER, provider, "mimi://a.example/r/x", "b.example", messages, body) == [
        m.encode() for m in messages]
    assert hook(QUEUE_NOTIFY_IN_ORDER, provider, "mimi://a.example/r/x", "b.example", messages[:1],
                messages[0].encode()) is None  # one message: the body as planned


def test_proxy_download_of_no_asset_host_is_refused_404():
    assert overrides_for(["proxy-download-refused-404"]).hook(PROXY_REFUSAL_403, "elsewhere.example") == 404
    assert overrides_for([]).hook(PROXY_REFUSAL_403, "elsewhere.example") is None
