"""Identifier structs shared by the MLS and MIMI layers (draft-ietf-mimi-protocol-06 §5.2, §6.1)."""

from __future__ import annotations

from .codec import Struct, opaque, wire


class IdentifierUri(Struct):
    """``struct { opaque uri<V>; } IdentifierUri;`` (§5.2). Holds a mimi:// URI as UTF-8 bytes."""

    uri: bytes = wire(opaque)


class PseudonymousCredential(Struct):
    """Minimal-metadata-room credential (§6.1).

    As written, ``signature_public_key`` has no length (``opaque signature_public_key;``), which
    TLS-PL does not allow for a variable-size key; the suite reads it as ``opaque<V>``
    (AMB-PSEUDONYM-KEY-LENGTH).
    """

    client_pseudonym: IdentifierUri = wire(IdentifierUri)
    user_pseudonym: IdentifierUri = wire(IdentifierUri)
    signature_public_key: bytes = wire(opaque)
    identity_link_ciphertext: bytes = wire(opaque)
