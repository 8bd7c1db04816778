"""Named deliberate faults of the reference peer (see :mod:`.registry`), one module per area.

Switch faults on with ``faults: [name, ...]`` in peer.yaml (or ``connector.faults`` in a
``reference`` SUT manifest); ``reference-peer faults`` lists them.
"""

from . import (  # noqa: F401 - importing an area module registers its faults
    consent,
    discovery,
    fanout,
    multidevice,
    parent_rooms,
    privacy,
    removal,
    transfer_cutover,
    transfer_follower,
    transfer_member_support,
    transfer_new_hub,
    transfer_newcomer,
    transfer_old_hub,
    transfer_public_commits,
    transport,
)
from .registry import REGISTRY, Fault, UnknownFault, activate, active, active_faults, define, faults_on

__all__ = ["REGISTRY", "Fault", "UnknownFault", "activate", "active", "active_faults", "define", "faults_on"]
