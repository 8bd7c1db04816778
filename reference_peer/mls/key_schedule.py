"""Key schedule (RFC 9420 §8), PSK secret (§8.4), exporter (§8.5) and transcript hashes (§8.2)."""

from __future__ import annotations

from dataclasses import dataclass

from ..wire.mls import PreSharedKeyID
from .crypto import CipherSuite


@dataclass(frozen=True)
class EpochSecrets:
    joiner_secret: bytes
    welcome_secret: bytes
    epoch_secret: bytes
    sender_data_secret: bytes
    encryption_secret: bytes
    exporter_secret: bytes
    external_secret: bytes
    confirmation_key: bytes
    membership_key: bytes
    resumption_psk: bytes
    epoch_authenticator: bytes
    init_secret: bytes  # the next epoch's init_secret

    def external_key_pair(self, suite: CipherSuite) -> tuple[bytes, bytes]:
        """(private, public): the external_pub key pair derived from external_secret."""
        return suite.derive_key_pair(self.external_secret)


def joiner_secret(suite: CipherSuite, init_secret: bytes, commit_secret: bytes, group_context: bytes) -> bytes:
    return suite.expand_with_label(suite.extract(init_secret, commit_secret), "joiner", group_context, suite.hash_length)


def welcome_secret(suite: CipherSuite, joiner: bytes, psk_secret: bytes) -> bytes:
    return suite.derive_secret(suite.extract(joiner, psk_secret), "welcome")


def epoch_from_joiner(suite: CipherSuite, joiner: bytes, psk_secret: bytes | None, group_context: bytes) -> EpochSecrets:
    nh = suite.hash_length
    member = suite.extract(joiner, psk_secret or bytes(nh))
    epoch = suite.expand_with_label(member, "epoch", group_context, nh)
    d = suite.derive_secret
    return EpochSecrets(
        joiner_secret=joiner,
        welcome_secret=d(member, "welcome"),
        epoch_secret=epoch,
        sender_data_secret=d(epoch, "sender data"),
        encryption_secret=d(epoch, "encryption"),
        exporter_secret=d(epoch, "exporter"),
        external_secret=d(epoch, "external"),
        confirmation_key=d(epoch, "confirm"),
        membership_key=d(epoch, "membership"),
        resumption_psk=d(epoch, "resumption"),
        epoch_authenticator=d(epoch, "authentication"),
        init_secret=d(epoch, "init"),
    )


def next_epoch(
    suite: CipherSuite, init_secret: bytes, commit_secret: bytes | None, psk_secret: bytes | None, group_context: bytes
) -> EpochSecrets:
    commit_secret = commit_secret or bytes(suite.hash_length)
    return epoch_from_joiner(suite, joiner_secret(suite, init_secret, commit_secret, group_context), psk_secret, group_context)


def welcome_key_nonce(suite: CipherSuite, welcome: bytes) -> tuple[bytes, bytes]:
    return (
        suite.expand_with_label(welcome, "key", b"", suite.aead_key_length),
        suite.expand_with_label(welcome, "nonce", b"", suite.aead_nonce_length),
    )


def psk_secret(suite: CipherSuite, psks: list[tuple[PreSharedKeyID, bytes]]) -> bytes:
    """§8.4: chain the PSKs in order; all-zero when there are none."""
    nh = suite.hash_length
    secret = bytes(nh)
    count = len(psks)
    for index, (psk_id, psk) in enumerate(psks):
        extracted = suite.extract(b"", psk)
        label = psk_id.encode() + index.to_bytes(2, "big") + count.to_bytes(2, "big")
        psk_input = suite.expand_with_label(extracted, "derived psk", label, nh)
        secret = suite.extract(psk_input, secret)
    return secret


def mls_exporter(suite: CipherSuite, exporter_secret: bytes, label: bytes | str, context: bytes, length: int) -> bytes:
    if isinstance(label, str):
        label = label.encode()
    return suite.expand_with_label(suite.derive_secret(exporter_secret, label), "exported", suite.hash(context), length)


def confirmed_transcript_hash(suite: CipherSuite, interim_before: bytes, confirmed_input: bytes) -> bytes:
    """confirmed_input = ConfirmedTranscriptHashInput (wire_format, FramedContent, signature)."""
    return suite.hash(interim_before + confirmed_input)


def interim_transcript_hash(suite: CipherSuite, confirmed: bytes, confirmation_tag: bytes) -> bytes:
    from .crypto import vl

    return suite.hash(confirmed + vl(confirmation_tag))
