"""Allowed variants of the reference peer as target provider (keyMaterial, consent, identifierQuery): behaviours
draft-ietf-mimi-protocol-06 permits that differ from the reference default (see :func:`.registry.define_variant`).
Every check must pass with each of them on.

Each departs from a step of ``reference_peer/provider/`` (keymaterial.py, consent.py, directory_search.py).
"""

from __future__ import annotations

from .registry import define_variant

AREA = "provider"


def _reversed(items: list) -> list | None:
    """Hook of an ordering step: the items in reverse order (None: fewer than two, nothing to reorder)."""
    return list(reversed(items)) if len(items) > 1 else None


KEYMAT_NO_ROOM_DISTINCTION = define_variant(
    "keymat-no-room-distinction", area=AREA,
    permitted_by="-06 §5.2: 'noConsentForThisRoom indicates that the target user might have allowed a request for "
                 "another room, but does not for this room. If the provider does not wish to make this "
                 "distinction, it can return noConsent instead.'",
    description="a keyMaterial request refused for this room while the target granted another room answers "
                "noConsent, never noConsentForThisRoom",
    departs=("consent.keymaterial.name-room-refusal",),
)
KEYMAT_NOTHING_COMPATIBLE_UNLISTED = define_variant(
    "keymat-nothing-compatible-unlisted", area=AREA,
    permitted_by="-06 §5.2: 'If the _user_ code is noCompatibleMaterial, the provider MAY populate the clients "
                 "list.'",
    description="a noCompatibleMaterial answer carries an empty clients list",
    departs=("keymaterial.claim.list-nothing-compatible-clients",),
)
KEYMAT_CAPABILITIES_OMITTED = define_variant(
    "keymat-capabilities-omitted", area=AREA,
    permitted_by="-06 §5.2: 'If the client's code is nothingCompatible, the client's capabilities are optionally "
                 "included (The client's capabilities could be omitted for privacy reasons.)'",
    description="a client answered nothingCompatible carries no clientCapabilities",
    departs=("keymaterial.claim.reveal-capabilities",),
)
KEYMAT_CLIENTS_REVERSED = define_variant(
    "keymat-clients-listed-in-reverse", area=AREA,
    permitted_by="-06 §5.2: 'If the user code is success or partialSuccess, each client is enumerated in the "
                 "response.' names no order of the clients (KeyMaterialResponse 'ClientKeyMaterial clients<V>')",
    description="keyMaterial enumerates the target user's clients in reverse client URI order",
    hooks={"keymaterial.claim.client-order": _reversed},
)
CONSENT_REVOKE_SENT = define_variant(
    "consent-revoke-sent", area=AREA,
    permitted_by="-06 §5.7: 'An updateConsent request is used by one provider to provide explicit notice from a "
                 "target user at one provider that consent for a specific \"requester\" was granted, revoked, or "
                 "preemptively denied.' The NOTE 'If this is the case the target provider does not need to send a "
                 "revoke' only allows keeping it private (PROTO-CONSENT-REVOKE-NOTICE-OPTIONAL)",
    description="a local user's revoke (or reject) of a remote requester is sent to the requester's provider as "
                "updateConsent revoke",
    departs=("provider.revoke.keep-private",),
)
IDQUERY_MATCHES_REVERSED = define_variant(
    "idquery-matches-listed-in-reverse", area=AREA,
    permitted_by="-06 §5.8: 'The response body is described as an IdentifierResponse. It can contain multiple "
                 "matches depending on the type of query and the policy of the target provider.' names no order "
                 "of the matches (IdentifierResponse 'IdentifierUri uri<V>; UserProfile foundProfiles<V>')",
    description="an identifierQuery matching several users lists them (uri and foundProfiles alike) in reverse "
                "user URI order",
    hooks={"directory.search.match-order": _reversed},
)
