"""Allowed variants of the reference peer (wire): behaviours the draft permits that differ from the
reference default (see :func:`.registry.define_variant`). Every check must pass with each of them on.

Each variant here makes the reference peer *send* the other reading of a contradiction the ambiguity
register (docs/spec-ambiguities.md) accepts; the suite's reference peers decode it tolerantly, record
the reading taken (the ``readings`` of their traffic log) and the checks end PASS or AMBIGUOUS with
the register's ID. The bytes are rewritten where a request leaves the peer (``ReferenceProvider._as_sent``,
at steps hub.notify.encode-reading and provider.abuse.reportinguser-as-drafted), so the peer's own state
and its byte-exact retries are unchanged. The two FanoutMessage readings combine: each departs from its own
step (hub.notify.protocol-implied, hub.notify.arm-by-content-type) and the peer hands the encoding hook
both flags.
"""

from __future__ import annotations

from .registry import define_variant

AREA = "wire"
ENCODE_NOTIFY = "hub.notify.encode-reading"

FANOUT_EXPLICIT_PROTOCOL = define_variant(
    "fanout-explicit-protocol", area=AREA,
    permitted_by="AMB-PROTOCOL-CONTEXT (-06 §5.5 FanoutMessage selects on a 'protocol' it does not carry; the "
                 "register accepts an explicit protocol octet before the selected body)",
    description="every FanoutMessage of a /notify body carries an explicit protocol octet (mls10 = 1) after its timestamp",
    departs=("hub.notify.protocol-implied",),
    hooks={ENCODE_NOTIFY: lambda body, **readings: notify_body(body, **readings)},
)
FANOUT_OTHER_ARM = define_variant(
    "fanout-other-arm", area=AREA,
    permitted_by="AMB-FANOUT-SELECT (-06 §5.5 FanoutMessage selects on message.wire_format with cases that are "
                 "ContentType values; the register accepts a FanoutMessage whose arm is chosen another way)",
    description="the FanoutMessage select read literally: no wire_format value is application, proposal or commit, "
                "so nothing follows a PublicMessage or PrivateMessage (no frank, moreProposals or externalProposals); "
                "proposals a handshake carried follow it as FanoutMessages of their own; Welcomes are unchanged",
    departs=("hub.notify.arm-by-content-type",),
    hooks={ENCODE_NOTIFY: lambda body, **readings: notify_body(body, **readings)},
)
ABUSE_REPORTINGUSER_OTHER_LAYOUT = define_variant(
    "abuse-reportinguser-other-layout", area=AREA,
    permitted_by="AMB-ABUSE-REPORTINGUSER-OPTIONAL (-06 §5.9: 'The reportingUser optionally contains the identity "
                 "of the user'; the register's tolerant decoding accepts optional<IdentifierUri>)",
    description="AbuseReport.reportingUser is sent as optional<IdentifierUri> (a presence octet; absent when anonymous)",
    hooks={"provider.abuse.reportinguser-as-drafted": lambda body: abuse_report_body(body)},
)


def _fanout_other_arm(message) -> list:
    """``message`` as the no-arm reading sends it: the message alone, then the proposals its arm carried."""
    from ..wire.mimi import FanoutMessage, _fanout_kind_of

    kind = _fanout_kind_of(message)
    if kind == "proposal":
        carried = list(message.moreProposals or [])
    elif kind == "commit":
        carried = list(message.externalProposals or [])
    else:
        return [message]
    alone = {"moreProposals": []} if kind == "proposal" else {"externalProposals": []}
    return [message.replace(**alone), *(FanoutMessage(timestamp=message.timestamp, protocol=message.protocol,
                                                      message=p, moreProposals=[]) for p in carried)]


def _encode_fanout(message, *, explicit_protocol: bool, no_arm: bool) -> bytes:
    from ..wire.codec import encode_value, uint64
    from ..wire.mimi import _fanout_kind_of
    from ..wire.mls import MLSMessage

    kind = _fanout_kind_of(message)
    if no_arm and kind in ("application", "proposal", "commit"):
        if kind == "application" and message.frank is not None:
            out = message.encode()  # a frank to carry: the only arm that conveys it
        else:
            out = encode_value(uint64, message.timestamp) + encode_value(MLSMessage, message.message)
    else:
        out = message.encode()
    if explicit_protocol:
        out = out[:8] + b"\x01" + out[8:]
    return out


def notify_body(body: bytes, *, explicit_protocol: bool = False, no_arm: bool = False) -> bytes:
    """A /notify body in the FanoutMessage readings given: an explicit protocol octet (fanout-explicit-protocol)
    and/or no select arm (fanout-other-arm); unchanged with neither."""
    explicit = explicit_protocol
    if not (explicit or no_arm):
        return body
    from ..wire.codec import DecodeError
    from ..wire.mimi import FanoutMessage, Protocol

    try:
        messages = FanoutMessage.decode_sequence(body, scope={"protocol": Protocol.mls10})
    except DecodeError:
        return body  # not ours to repair (a fault's bytes)
    if no_arm:
        messages = [m for message in messages for m in _fanout_other_arm(message)]
    return b"".join(_encode_fanout(m, explicit_protocol=explicit, no_arm=no_arm) for m in messages)


def abuse_report_body(body: bytes) -> bytes:
    """ABUSE_REPORTINGUSER_OTHER_LAYOUT: an AbuseReport with reportingUser as optional<IdentifierUri>."""
    from ..wire.codec import DecodeError, encode_value
    from ..wire.identity import IdentifierUri
    from ..wire.mimi import AbuseReport

    try:
        report = AbuseReport.decode(body)
    except DecodeError:
        return body
    head = encode_value(IdentifierUri, report.reportingUser)
    user = report.reportingUser if report.reportingUser is not None and bytes(report.reportingUser.uri) else None
    return (b"\x00" if user is None else b"\x01" + head) + body[len(head):]
