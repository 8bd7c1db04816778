"""The MIMI transport of the reference peer: HTTPS with mutual TLS (draft-ietf-mimi-protocol-06 §4.1).

- :mod:`.transport`: :class:`MimiServer` (listener, §4.1 checks, routing, directory) and :class:`Provider`
  (a domain's certificate and endpoint handlers).
- :mod:`.client`: :class:`MimiClient`, the outgoing side.
- :mod:`.endpoints`: the endpoint catalogue and the §5.1 directory; :mod:`.names`: From/Host/RFC 6125 rules.
- :mod:`.runner`: :class:`BackgroundServer` for synchronous callers.
"""

from .client import (
    ClientLimits,
    MimiClient,
    PeerConnectionError,
    PeerDirectoryError,
    PeerError,
    PeerProtocolError,
    PeerReply,
    PeerResponseTooLarge,
    PeerTimeout,
    PeerTLSError,
)
from .transport import (
    MIMI_PEER,
    MIMI_TARGET,
    BadRequest,
    MimiHTTPError,
    MimiRequest,
    MimiResponse,
    MimiServer,
    Provider,
    Refusal,
    ServerLimits,
)

__all__ = [
    "MIMI_PEER", "MIMI_TARGET", "BadRequest", "ClientLimits", "MimiClient", "MimiHTTPError", "MimiRequest",
    "MimiResponse", "MimiServer", "PeerConnectionError", "PeerDirectoryError", "PeerError", "PeerProtocolError",
    "PeerReply", "PeerResponseTooLarge", "PeerTLSError", "PeerTimeout", "Provider", "Refusal", "ServerLimits",
]
