"""Hypothesis strategies for the hub-transfer structs (tests only; hypothesis is a dev dependency).

``strategies.values_of`` already draws every struct of :mod:`reference_peer.wire.hub_transfer`
byte-valid. These add what it cannot know: mimi:// URIs that parse, transfer IDs of the
document's lengths, and HubData values that satisfy §4.1's shape rules.
"""

from __future__ import annotations

from hypothesis import strategies as st

from .hub_transfer import (
    TRANSFER_ID_LENGTH,
    HubData,
    HubRedirect,
    HubState,
    HubTransferAcceptance,
    HubTransferRequest,
)
from .identity import IdentifierUri, MimiUri
from .strategies import values_of

_LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
_SEGMENT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12)

domains = st.lists(_LABEL, min_size=1, max_size=3).map(".".join)
provider_uris = domains.map(lambda domain: MimiUri.for_provider(domain).identifier())
room_ids = st.builds(MimiUri.for_room, domains, _SEGMENT).map(MimiUri.identifier)
user_uris = st.builds(MimiUri.for_user, domains, _SEGMENT).map(MimiUri.identifier)
transfer_ids = st.binary(min_size=TRANSFER_ID_LENGTH, max_size=TRANSFER_ID_LENGTH)
last_transfer_ids = st.one_of(st.just(b""), transfer_ids)
uint32s = st.integers(min_value=0, max_value=(1 << 32) - 1)
uint64s = st.integers(min_value=0, max_value=(1 << 64) - 1)


@st.composite
def hub_data(draw: st.DrawFn, room_id: IdentifierUri | None = None) -> HubData:
    """A HubData that passes ``hub_data_problems``: stable or transferring, real URIs; the
    nested request and acceptance are byte-valid, not signed."""
    room = room_id if room_id is not None else draw(room_ids)
    common = {"room_id": room, "hub": draw(provider_uris), "generation": draw(uint32s)}
    if draw(st.booleans()):
        return HubData(
            **common,
            state=HubState.stable,
            previous_hub=draw(st.none() | provider_uris),
            last_transfer_id=draw(last_transfer_ids),
        )
    return HubData(
        **common,
        state=HubState.transferring,
        target=draw(provider_uris),
        transfer_id=draw(transfer_ids),
        not_after=draw(uint64s),
        request=draw(values_of(HubTransferRequest, max_depth=4)),
        acceptance=draw(values_of(HubTransferAcceptance, max_depth=4)),
    )


hub_redirects = st.builds(HubRedirect, room_id=room_ids, hub=provider_uris, generation=uint32s, epoch=uint64s)
