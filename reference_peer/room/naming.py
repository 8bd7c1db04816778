"""Who a leaf or a URI belongs to: the reference peer's naming of users and clients.

A client's MLS credential is a basic credential whose identity is its client URI in the two-segment
form ``mimi://b.example/d/bob/phone`` (draft-mahy-mimi-identity), so that the hub can tell the user
(``mimi://b.example/u/bob``, the participant-list entry: PROTO-PLIST-ONE-ENTRY-PER-USER) and the
provider (``b.example``) of every member without any directory lookup.
"""

from __future__ import annotations

import functools

from ..overrides import NO_OVERRIDES, Overrides, step
from ..wire.identity import MimiUri, MimiUriError, UriKind
from ..wire.mls import Credential, CredentialType

# A pseudonym URI (/p/) names no user: a pseudonymous member is not a user of the room (what makes a
# room's pseudonyms_allowed false enforceable). A hook given for this step returns the user a peer
# built otherwise reads from a URI that names none (None: still none).
PSEUDONYM_IS_NOT_A_USER = step(
    "naming.user-of-uri.pseudonym-is-not-a-user", "POLICY-BASE-PSEUDONYMS-NOT-ALLOWED",
    summary="only a user URI or a two-segment client URI names a user; a pseudonym URI names none",
)


def _text(uri: bytes | str) -> str:
    return uri if isinstance(uri, str) else bytes(uri).decode("utf-8")


def client_uri(domain: str, user: str, client: str) -> str:
    return MimiUri.for_client(domain, client, user=user).format()


def user_uri(domain: str, user: str) -> str:
    return MimiUri.for_user(domain, user).format()


def user_of_uri(uri: bytes | str, overrides: Overrides = NO_OVERRIDES) -> bytes | None:
    """The user URI (bytes) of a user URI or a two-segment client URI; None otherwise. ``overrides``:
    the caller's (a hub room's, a client's), for :data:`PSEUDONYM_IS_NOT_A_USER`."""
    try:
        text = _text(uri)
    except UnicodeDecodeError:
        return None
    user = _user_of_text(text)
    if user is None:
        return overrides.hook(PSEUDONYM_IS_NOT_A_USER, text)
    return user


# The hub asks these of every leaf's credential for each message it accepts (active users, active
# providers): pure functions of the text, memoised (bounded) so that a URI is parsed once, not per
# message. The results are immutable (bytes, str, None).
@functools.lru_cache(maxsize=4096)
def _user_of_text(text: str) -> bytes | None:
    try:
        parsed = MimiUri.parse(text)
    except MimiUriError:
        return None
    if parsed.kind is UriKind.user:
        return parsed.format().encode()
    if parsed.kind is UriKind.client and parsed.user is not None:
        return MimiUri.for_user(parsed.domain, parsed.user).format().encode()
    return None


def domain_of_uri(uri: bytes | str) -> str | None:
    try:
        text = _text(uri)
    except UnicodeDecodeError:
        return None
    return _domain_of_text(text)


@functools.lru_cache(maxsize=4096)
def _domain_of_text(text: str) -> str | None:
    try:
        return MimiUri.parse(text).domain
    except MimiUriError:
        return None


def user_of_credential(credential: Credential, overrides: Overrides = NO_OVERRIDES) -> bytes | None:
    """The user a basic credential's client URI names (None for other credential types or bad URIs)."""
    if credential.credential_type != CredentialType.basic or credential.identity is None:
        return None
    return user_of_uri(bytes(credential.identity), overrides)
