"""The adapter kit: the SUT control API for a MIMI server that stores and forwards but holds no MLS
client state, with the suite's simulated MLS clients inside (``docs/adapter-kit.md`` is the guide).

A vendor writes one class, a :class:`Transport` subclass that maps a handful of verbs onto the
server's own client-to-server API, and runs the kit on it::

    python -m conformance.adapterkit --transport mypackage.adapter:MyTransport \\
        [--transport-arg base_url=https://sut.example:8443 ...] --listen 127.0.0.1:8780 \\
        --state /var/lib/mimi-kit [--token SECRET]

or, inside an asyncio program, ``await serve(MyTransport(...), host=..., port=..., state_dir=...,
token=...)``. The kit then answers every control operation whose verbs the transport overrides:

===========================  =====================================================================
Transport verb               MIMI meaning
===========================  =====================================================================
``register_user``            provision a user on the server (createUser)
``delete_user``              delete it (deleteUser)
``register_client``          provision one of its clients (createUser, addClient)
``delete_client``            delete a client (deleteClient)
``upload_key_packages``      store KeyPackages the kit made, served to keyMaterial requests
``key_material``             forward a signed KeyMaterialRequest to the room's hub (addParticipant)
``send_update``              forward an UpdateRequest: a commit with its Welcome, or proposals
``submit_message``           forward a SubmitMessageRequest (sendMessage)
``group_info``               forward a GroupInfoRequest (joinRoom; a new client joining its rooms)
``fetch``                    what the server stored for a client (Welcomes and fan-out), once each
``create_room``              host a room (hub role, with ``hub_external_sender``)
consent verbs                ``request_consent``, ``cancel_consent_request``, ``grant_consent``,
                             ``revoke_consent``, ``consent_state``, ``user_events``
===========================  =====================================================================

A verb left out raises ``NotImplementedError``; the kit then leaves every operation that needs it out
of getInfo's ``supportedOperations`` (:data:`OPERATION_VERBS`), and the suite makes the checks that
need one of those operations NOT_APPLICABLE, naming it. The MLS side (KeyPackages, Welcome, commits,
application messages, epochs, the wrongEpoch catch-up) is the kit's; its clients and their received
messages persist under the state directory, so a restarted kit keeps them.

Versioning: :data:`KIT_VERSION` follows semantic versioning; the :class:`Transport` verbs, the
:class:`ServerAnswer` and :class:`Delivery` fields, :func:`serve` and the command line change
incompatibly only with a new major version.
"""

from __future__ import annotations

from reference_peer.control.errors import ControlError
from reference_peer.kit.backend import KIT_VERSION, OPERATION_VERBS, KitBackend
from reference_peer.kit.serve import main, serve
from reference_peer.kit.transport import Delivery, ServerAnswer, Transport

__all__ = [
    "KIT_VERSION",
    "OPERATION_VERBS",
    "ControlError",
    "Delivery",
    "KitBackend",
    "ServerAnswer",
    "Transport",
    "main",
    "serve",
]
