"""Message framing (RFC 9420 §6): signatures, membership tags, PrivateMessage encryption,
sender data, and the transcript-hash inputs."""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator

from ..wire.codec import DecodeError, PrefixReader
from ..wire.mls import (
    Commit,
    ContentType,
    FramedContent,
    FramedContentAuthData,
    PrivateMessage,
    Proposal,
    PublicMessage,
    Sender,
    SenderType,
    WireFormat,
)
from .crypto import CipherSuite, vl
from .errors import CryptoError, MalformedMessage
from .secret_tree import SecretTree, sender_data_key_nonce


def _sender_has_context(sender: Sender) -> bool:
    return sender.sender_type in (SenderType.member, SenderType.new_member_commit)


_ENCODED: contextvars.ContextVar[list[tuple[FramedContent, bytes]] | None] = contextvars.ContextVar("mls_encoded", default=None)


@contextlib.contextmanager
def content_cache() -> Iterator[None]:
    """Within one library operation (building or processing one message) a FramedContent is not
    mutated, and its bytes are needed for the signature, the membership tag, the transcript hash
    and the message itself: remember them for the duration of the operation only."""
    token = _ENCODED.set([])
    try:
        yield
    finally:
        _ENCODED.reset(token)


def encode_content(content: FramedContent) -> bytes:
    cache = _ENCODED.get()
    if cache is None:
        return content.encode()
    for obj, data in cache:
        if obj is content:
            return data
    data = content.encode()
    cache.append((content, data))
    if len(cache) > 4:
        del cache[0]
    return data


def framed_content_tbs(wire_format: int, content: FramedContent, group_context: bytes | None) -> bytes:
    data = b"\x00\x01" + int(wire_format).to_bytes(2, "big") + encode_content(content)
    if _sender_has_context(content.sender):
        if group_context is None:
            raise CryptoError("a member sender's signature covers the GroupContext, none was given")
        data += group_context
    return data


def sign_content(suite: CipherSuite, signature_priv: bytes, wire_format: int, content: FramedContent, group_context: bytes | None) -> bytes:
    return suite.sign_with_label(signature_priv, "FramedContentTBS", framed_content_tbs(wire_format, content, group_context))


def verify_content(suite: CipherSuite, public: bytes, wire_format: int, content: FramedContent, group_context: bytes | None, signature: bytes) -> bool:
    return suite.verify_with_label(public, "FramedContentTBS", framed_content_tbs(wire_format, content, group_context), signature)


def encode_auth(content_type: int, auth: FramedContentAuthData) -> bytes:
    data = vl(auth.signature)
    if content_type == ContentType.commit:
        data += vl(auth.confirmation_tag or b"")
    return data


def membership_tag(suite: CipherSuite, membership_key: bytes, content: FramedContent, auth: FramedContentAuthData, group_context: bytes) -> bytes:
    tbm = framed_content_tbs(WireFormat.mls_public_message, content, group_context) + encode_auth(content.content_type, auth)
    return suite.mac(membership_key, tbm)


def confirmed_hash_input(wire_format: int, content: FramedContent, signature: bytes) -> bytes:
    return int(wire_format).to_bytes(2, "big") + encode_content(content) + vl(signature)


def make_public_message(
    suite: CipherSuite,
    content: FramedContent,
    signature_priv: bytes,
    group_context: bytes | None,
    *,
    membership_key: bytes | None = None,
    confirmation_tag: bytes | None = None,
    signature: bytes | None = None,
) -> PublicMessage:
    sig = signature if signature is not None else sign_content(suite, signature_priv, WireFormat.mls_public_message, content, group_context)
    auth = FramedContentAuthData(signature=sig, confirmation_tag=confirmation_tag if content.content_type == ContentType.commit else None)
    tag = None
    if content.sender.sender_type == SenderType.member:
        assert membership_key is not None and group_context is not None
        tag = membership_tag(suite, membership_key, content, auth, group_context)
    return PublicMessage(content=content, auth=auth, membership_tag=tag)


# -- PrivateMessage ------------------------------------------------------------------------------


def _content_aad(group_id: bytes, epoch: int, content_type: int, authenticated_data: bytes) -> bytes:
    return vl(group_id) + epoch.to_bytes(8, "big") + bytes([int(content_type)]) + vl(authenticated_data)


def _sender_data_aad(group_id: bytes, epoch: int, content_type: int) -> bytes:
    return vl(group_id) + epoch.to_bytes(8, "big") + bytes([int(content_type)])


def _encode_content_body(content: FramedContent) -> bytes:
    if content.content_type == ContentType.application:
        return vl(bytes(content.application_data))
    if content.content_type == ContentType.proposal:
        return content.proposal.encode()
    return content.commit.encode()


def encrypt_private(
    suite: CipherSuite,
    secret_tree: SecretTree,
    sender_data_secret: bytes,
    content: FramedContent,
    signature_priv: bytes,
    group_context: bytes,
    *,
    confirmation_tag: bytes | None = None,
    padding: int = 0,
    reuse_guard: bytes | None = None,
    signature: bytes | None = None,
) -> PrivateMessage:
    if content.sender.sender_type != SenderType.member:
        raise CryptoError("only members send PrivateMessages")
    sig = signature if signature is not None else sign_content(suite, signature_priv, WireFormat.mls_private_message, content, group_context)
    auth = FramedContentAuthData(signature=sig, confirmation_tag=confirmation_tag if content.content_type == ContentType.commit else None)
    plaintext = _encode_content_body(content) + encode_auth(content.content_type, auth) + bytes(padding)
    handshake, application = secret_tree.ratchets(content.sender.leaf_index)
    ratchet = application if content.content_type == ContentType.application else handshake
    generation, key, nonce = ratchet.next_key()
    guard = reuse_guard if reuse_guard is not None else os.urandom(4)
    nonce = bytes(a ^ b for a, b in zip(nonce[:4], guard, strict=True)) + nonce[4:]
    aad = _content_aad(content.group_id, content.epoch, content.content_type, content.authenticated_data)
    ciphertext = suite.aead_encrypt(key, nonce, aad, plaintext)
    sender_data = content.sender.leaf_index.to_bytes(4, "big") + generation.to_bytes(4, "big") + guard
    sd_key, sd_nonce = sender_data_key_nonce(suite, sender_data_secret, ciphertext)
    encrypted_sender_data = suite.aead_encrypt(sd_key, sd_nonce, _sender_data_aad(content.group_id, content.epoch, content.content_type), sender_data)
    return PrivateMessage(
        group_id=content.group_id, epoch=content.epoch, content_type=content.content_type,
        authenticated_data=content.authenticated_data, encrypted_sender_data=encrypted_sender_data, ciphertext=ciphertext,
    )


def decrypt_sender_data(suite: CipherSuite, sender_data_secret: bytes, message: PrivateMessage) -> tuple[int, int, bytes]:
    sd_key, sd_nonce = sender_data_key_nonce(suite, sender_data_secret, bytes(message.ciphertext))
    plain = suite.aead_decrypt(sd_key, sd_nonce, _sender_data_aad(message.group_id, message.epoch, message.content_type), message.encrypted_sender_data)
    if len(plain) != 12:
        raise MalformedMessage("SenderData must be 12 bytes")
    return int.from_bytes(plain[:4], "big"), int.from_bytes(plain[4:8], "big"), plain[8:]


def decrypt_private(
    suite: CipherSuite, secret_tree: SecretTree, sender_data_secret: bytes, message: PrivateMessage
) -> tuple[FramedContent, FramedContentAuthData]:
    """Decrypt; the caller verifies the signature (it knows the sender's key and the context)."""
    leaf_index, generation, guard = decrypt_sender_data(suite, sender_data_secret, message)
    handshake, application = secret_tree.ratchets(leaf_index)
    ratchet = application if message.content_type == ContentType.application else handshake
    key, nonce = ratchet.key_for(generation)
    nonce = bytes(a ^ b for a, b in zip(nonce[:4], guard, strict=True)) + nonce[4:]
    aad = _content_aad(message.group_id, message.epoch, message.content_type, message.authenticated_data)
    plain = suite.aead_decrypt(key, nonce, aad, bytes(message.ciphertext))
    content, auth = _parse_private_content(message, plain)
    content = content.replace(sender=Sender(sender_type=SenderType.member, leaf_index=leaf_index))
    return content, auth


def _parse_private_content(message: PrivateMessage, plain: bytes) -> tuple[FramedContent, FramedContentAuthData]:
    # PrivateMessageContent ends in zero padding to the end of the plaintext, which the codec does
    # not express: decode the fields one by one, then require every remaining byte to be zero.
    reader = PrefixReader(plain)
    ct = message.content_type
    try:
        application_data = proposal = commit = None
        if ct == ContentType.application:
            application_data = reader.opaque()
        elif ct == ContentType.proposal:
            proposal = reader.value(Proposal)
        elif ct == ContentType.commit:
            commit = reader.value(Commit)
        else:
            raise MalformedMessage(f"PrivateMessage content type {int(ct)} is not allowed")
        signature = reader.opaque()
        tag = reader.opaque() if ct == ContentType.commit else None
    except DecodeError as exc:
        raise MalformedMessage(f"PrivateMessageContent: {exc}") from None
    if any(plain[reader.pos :]):
        raise MalformedMessage("PrivateMessageContent padding is not all zero")
    content = FramedContent(
        group_id=message.group_id, epoch=message.epoch,
        sender=Sender(sender_type=SenderType.member, leaf_index=0),
        authenticated_data=message.authenticated_data, content_type=ct,
        application_data=application_data, proposal=proposal, commit=commit,
    )
    return content, FramedContentAuthData(signature=signature, confirmation_tag=tag)

