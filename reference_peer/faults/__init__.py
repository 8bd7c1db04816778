"""Named deliberate faults of the reference peer (see :mod:`.registry`), one module per area.

Switch faults on with ``faults: [name, ...]`` in peer.yaml (or ``connector.faults`` in a
``reference`` SUT manifest); ``reference-peer faults`` lists them. Allowed variants (behaviours the
draft permits, with which every check must still pass) are switched on with ``variants: [name, ...]``;
``reference-peer variants`` lists them.
"""

from . import (  # noqa: F401 - importing an area module registers its faults
    consent,
    discovery,
    fanout,
    follower_side,
    hub_acceptance,
    multidevice,
    parent_rooms,
    privacy,
    removal,
    room_policy,
    transfer_cutover,
    transfer_follower,
    transfer_follower_welcome,
    transfer_member_support,
    transfer_new_hub,
    transfer_newcomer,
    transfer_old_hub,
    transfer_public_commits,
    transport,
    variants_effect,
    variants_order,
    variants_peer,
    variants_provider,
    variants_rooms,
    variants_server,
    variants_strictness,
    variants_wire,
)
from .registry import (
    REGISTRY,
    VARIANTS,
    Fault,
    UnknownFault,
    Variant,
    define,
    define_variant,
    overrides_for,
)

__all__ = ["REGISTRY", "VARIANTS", "Fault", "UnknownFault", "Variant", "define",
           "define_variant", "overrides_for"]
