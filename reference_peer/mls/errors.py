"""The error types of the MLS package: every failure a caller can see is one of these."""

from __future__ import annotations


class MLSError(ValueError):
    """Base of every error this package raises on bad input or a refused operation."""


class MalformedMessage(MLSError):
    """Bytes that do not decode as the expected struct (wraps the codec's DecodeError)."""


class UnsupportedCipherSuite(MLSError):
    """A cipher suite this implementation does not provide (reported, never faked)."""


class CryptoError(MLSError):
    """A signature, MAC, AEAD tag or HPKE operation that failed."""


class InvalidTree(MLSError):
    """A ratchet tree that violates RFC 9420 §7.9 / §12.4.3.1 (hashes, parent hashes, leaves)."""


class InvalidKeyPackage(MLSError):
    """A KeyPackage or LeafNode that fails RFC 9420 §10.1 / §7.3 validation."""


class InvalidProposal(MLSError):
    """A proposal or proposal list that fails RFC 9420 §12.1 / §12.2 validation."""


class InvalidCommit(MLSError):
    """A Commit that fails RFC 9420 §12.4.2 validation."""


class WrongEpoch(MLSError):
    """A message for an epoch other than the current one."""


class WrongGroup(MLSError):
    """A message for another group."""


class UnknownSender(MLSError):
    """A sender that is not (or no longer) a member, or an unknown external sender."""


class InvalidWelcome(MLSError):
    """A Welcome that cannot be processed (no secrets for us, bad GroupInfo, bad tree)."""


class SecretReuse(MLSError):
    """A message key that was already consumed or is outside the retained window."""
