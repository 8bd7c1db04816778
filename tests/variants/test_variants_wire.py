"""Wire variants (issue 15, "Tolerant reference peers"): a SUT that sends a reading the ambiguity register
accepts (docs/spec-ambiguities.md) is accepted by the suite's reference peers, which record the reading,
and no check judges it a miss.

The scenario cases run checks against the reference SUT with each variant on; the checks that decode
the SUT's /notify bodies themselves read them tolerantly (``decode_fanout_sequence_tolerant``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "wire"))

from test_draft_latitude import assert_no_false_verdict, outcomes_of, run_checks  # noqa: E402
from wire_samples import application, public  # noqa: E402

from reference_peer.faults import VARIANTS, overrides_for, registry  # noqa: E402
from reference_peer.wire.mimi import FanoutMessage, Protocol, decode_fanout_sequence_tolerant  # noqa: E402
from reference_peer.wire.mls import ContentType  # noqa: E402

MLS10 = {"protocol": Protocol.mls10}
WIRE_VARIANTS = {
    "fanout-explicit-protocol": "AMB-PROTOCOL-CONTEXT",
    "fanout-other-arm": "AMB-FANOUT-SELECT",
    "abuse-reportinguser-other-layout": "AMB-ABUSE-REPORTINGUSER-OPTIONAL",
}


def _as_sent(variants, endpoint: str, body: bytes) -> bytes:
    """The body of a request to ``endpoint`` as a provider built with ``variants`` sends it."""
    from reference_peer.peer import ProviderOptions, ReferenceProvider

    provider = ReferenceProvider(ProviderOptions("a.example", Path("unused"), Path("unused"), Path("unused")),
                                 overrides=overrides_for(variants))
    try:
        return provider._as_sent(endpoint, body, {})[0]  # noqa: SLF001 - the bytes as they leave the peer
    finally:
        provider.state.close()


def _notify_body() -> tuple[list[FanoutMessage], bytes]:
    messages = [
        FanoutMessage(timestamp=42, message=application()),
        FanoutMessage(timestamp=43, message=public(ContentType.commit), externalProposals=[public(ContentType.proposal)]),
        FanoutMessage(timestamp=44, message=public(ContentType.proposal), moreProposals=[]),
    ]
    return messages, b"".join(m.encode() for m in messages)


@pytest.mark.parametrize("variant", sorted(WIRE_VARIANTS))
def test_wire_variants_cite_the_register(variant):
    assert variant in VARIANTS and variant not in registry.REGISTRY
    assert WIRE_VARIANTS[variant] in VARIANTS[variant].permitted_by


@pytest.mark.parametrize("variants", [["fanout-explicit-protocol"], ["fanout-other-arm"],
                                      ["fanout-explicit-protocol", "fanout-other-arm"]])
def test_a_notify_body_in_another_reading_is_read_with_its_amb_ids(variants):
    messages, body = _notify_body()
    assert decode_fanout_sequence_tolerant(body, scope=MLS10).leniencies == ()
    sent = _as_sent(variants, "notify", body)
    with pytest.raises(ValueError):
        FanoutMessage.decode_sequence(sent, scope=MLS10)
    decoded = decode_fanout_sequence_tolerant(sent, scope=MLS10)
    assert {lc.ambiguity for lc in decoded.leniencies} == {WIRE_VARIANTS[v] for v in variants}
    if "fanout-other-arm" not in variants:
        assert decoded.value == messages
    else:  # the commit's external proposal follows it as a FanoutMessage of its own
        assert [m.message for m in decoded.value] == [messages[0].message, messages[1].message,
                                                      messages[1].externalProposals[0], messages[2].message]


def test_no_variant_leaves_the_bytes_alone():
    _, body = _notify_body()
    assert _as_sent([], "notify", body) == body


def _judged_by(checks, ambiguity: str, requirements) -> None:
    assert_no_false_verdict(checks)
    for requirement in requirements:
        outcomes = outcomes_of(checks, requirement)
        assert outcomes, (requirement, checks)
        for reqs in checks.values():
            if requirement in reqs and reqs[requirement]["outcome"] == "AMBIGUOUS":
                assert ambiguity in reqs[requirement].get("message", "") + str(reqs[requirement]), reqs
        assert set(outcomes) <= {"PASS", "AMBIGUOUS", "NOT_REACHED"}, (requirement, outcomes)
        for check, reqs in checks.items():
            assert reqs.get("PROTO-TRANSPORT-BODY-ENCODING", {}).get("outcome") != "FAIL", (check, reqs)


@pytest.mark.parametrize("variant", ["fanout-explicit-protocol", "fanout-other-arm"])
def test_fanout_checks_with_another_fanout_reading(tmp_path, variant):
    checks = run_checks(tmp_path, "hub_order", variants=[variant], module="test_fanout.py")
    _judged_by(checks, WIRE_VARIANTS[variant], ["PROTO-FANOUT-TO-ACTIVE-PROVIDERS", "PROTO-FANOUT-ORDERED"])


def test_an_abuse_report_with_an_optional_reporting_user_is_rewritten_and_read():
    from reference_peer.wire.identity import IdentifierUri
    from reference_peer.wire.mimi import AbuseReport, AbuseType
    from reference_peer.wire.mls import AppDataDictionary

    report = AbuseReport(reportingUser=IdentifierUri(uri=b"mimi://a.example/u/alice"),
                         allegedAbuserUri=IdentifierUri(uri=b"mimi://b.example/u/bob"), reasonCode=AbuseType.reserved,
                         note=b"", messages=[], abuse_extensions=AppDataDictionary(component_data=[]))
    sent = _as_sent(["abuse-reportinguser-other-layout"], "reportAbuse", report.encode())
    decoded = AbuseReport.decode_tolerant(sent)
    assert [lc.ambiguity for lc in decoded.leniencies] == ["AMB-ABUSE-REPORTINGUSER-OPTIONAL"]
    assert bytes(decoded.value.reportingUser.uri) == b"mimi://a.example/u/alice"
