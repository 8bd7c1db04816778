"""Every wire struct round-trips: decode(encode(v)) == v and encode(decode(x)) == x.

The structs are discovered, not listed (``wire_structs``), so a struct added to any wire module
later is covered here without new test code; the strategies come from the codec descriptions.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from reference_peer.wire.codec import DEFAULT_SCOPE, Struct
from reference_peer.wire.strategies import values_of, wire_structs

STRUCTS = wire_structs()
EXAMPLES = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def test_discovery_finds_every_wire_module_and_the_draft_structs() -> None:
    names = {cls.__name__ for cls in STRUCTS}
    modules = {cls.__module__.rsplit(".", 1)[1] for cls in STRUCTS}
    assert {"mls", "identity", "mimi", "ratchet_tree_options", "room_policy"} <= modules
    expected = {
        "KeyMaterialRequest", "KeyMaterialRequestTBS", "KeyMaterialResponse", "ClientKeyMaterial",
        "HandshakeBundle", "GroupInfoOption", "UpdateRequest", "UpdateRoomResponse",
        "SubmitMessageRequest", "SubmitMessageResponse", "Frank", "FrankAAD", "FrankingAgentData",
        "ServerFrankingContext", "FrankingIntegrityTBS", "FanoutMessage", "GroupInfoRequest",
        "GroupInfoRequestTBS", "PendingProposal", "GroupInfoRatchetTreeTBE", "GroupInfoResponse",
        "GroupInfoResponseTBS", "ConsentEntry", "ConsentScope", "QueryElement", "IdentifierRequest",
        "ProfileField", "UserProfile", "IdentifierResponse", "AbusiveMessage", "AbuseReport",
        "PseudonymousCredential", "PseudonymousCredentialTBS", "IdentityLinkTBE", "UserRolePair",
        "ParticipantListData", "UserindexRolePair", "ParticipantListUpdate", "Uri", "UTF8String",
        "RichDescription", "RoomMetaData", "RatchetTreeOption", "PartialGroupInfo", "Role", "RoleData",
        "SingleSourceRoleChangeTargets", "ClaimId", "Claim", "PreAuthRoleEntry", "PreAuthData",
        "BaseRoomPolicy", "StatusNotificationPolicy", "JoinLinkPolicy", "JoinLinksUpdate",
        "LinkPreviewPolicy", "AssetPolicy", "LoggingPolicy", "HistoryPolicy", "BotPolicy",
        "MessageExpiration", "OperationalParameters", "MLSMessage", "KeyPackage",
    }  # fmt: skip
    assert expected <= names, sorted(expected - names)


def test_every_struct_cites_its_source_in_a_docstring() -> None:
    from reference_peer.wire import mimi, ratchet_tree_options, room_policy

    drafted = [c for c in STRUCTS if c.__module__ in {m.__name__ for m in (mimi, ratchet_tree_options, room_policy)}]
    missing = [c.__name__ for c in drafted if not (c.__doc__ and "§" in c.__doc__)]
    assert not missing


@pytest.mark.parametrize("cls", STRUCTS, ids=lambda c: c.__name__)
def test_generated_values_round_trip(cls: type[Struct]) -> None:
    @EXAMPLES
    @given(values_of(cls))
    def check(value: Struct) -> None:
        data = value.encode()
        decoded = cls.decode(data)
        assert decoded == value
        assert decoded.encode() == data
        tolerant = cls.decode_tolerant(data)
        assert tolerant.value == value and tolerant.leniencies == ()

    check()


@pytest.mark.parametrize("cls", STRUCTS, ids=lambda c: c.__name__)
def test_concatenated_values_decode_as_a_sequence(cls: type[Struct]) -> None:
    @settings(EXAMPLES, max_examples=4)
    @given(st.lists(values_of(cls, max_depth=3), min_size=1, max_size=3))
    def check(values: list[Struct]) -> None:
        assert cls.decode_sequence(b"".join(v.encode() for v in values)) == values

    check()


# Selects that read an enclosing struct can only hold inside it; reached through that struct instead.
ONLY_INSIDE = {("FramedContentAuthData", "confirmation_tag"): ("PublicMessage", lambda v: v.auth.confirmation_tag)}

CONDITIONAL_FIELDS = [
    (cls, name, fld.when) for cls in STRUCTS for name, fld in cls.__wire__.fields if fld.when is not None
]
REACH = settings(
    max_examples=1000, phases=[Phase.generate], database=None, deadline=None, suppress_health_check=list(HealthCheck)
)  # no shrinking: only existence matters


@pytest.mark.parametrize(
    ("cls", "field", "when"), CONDITIONAL_FIELDS, ids=[f"{c.__name__}.{f}" for c, f, _ in CONDITIONAL_FIELDS]
)
def test_generation_reaches_every_select_branch(cls: type[Struct], field: str, when) -> None:
    """The round-trip tests above only cover a select branch if the strategies can produce it."""
    if (cls.__name__, field) in ONLY_INSIDE:
        outer_name, reach = ONLY_INSIDE[(cls.__name__, field)]
        outer = next(c for c in STRUCTS if c.__name__ == outer_name)
        find(values_of(outer), lambda value: reach(value) is not None, settings=REACH)
        return
    found = find(values_of(cls), lambda value: when.holds([value.__dict__], DEFAULT_SCOPE), settings=REACH)
    assert cls.decode(found.encode()) == found
