"""KeyPackage upload forms: each caller decodes the one form it is given (issue 18's parse flake).

A bare KeyPackage begins ``0x0001`` (mls10) ``0x0001`` (cipher suite 1), which is also how an MLSMessage
carrying a PublicMessage begins (version mls10, wire format ``mls_public_message``). Trying the
MLSMessage form first made about one generated KeyPackage in 247k decode as a complete PublicMessage and
be refused, so ``createUser`` answered 500. The crafted KeyPackage below is validly signed and decodes
completely in both forms.
"""

from __future__ import annotations

import pytest
from provider_helpers import FakeClock, key_package, make_provider

from reference_peer.mls import basic_credential, make_key_package
from reference_peer.mls.crypto import cipher_suite
from reference_peer.mls.leaf import _tbs_without_signature, default_capabilities, make_leaf_node
from reference_peer.provider.keymaterial import InvalidUpload, parse_key_package, parse_key_package_message
from reference_peer.wire.mls import (
    KeyPackage,
    LeafNodeSource,
    Lifetime,
    MLSMessage,
    ProtocolVersion,
    SenderType,
    WireFormat,
)

C1 = "mimi://a.example/d/alice/c1"
# not_after ends 01 40 44: content type application, then a 68-byte application_data (2-byte varint 0x4044)
# covering the leaf's extensions<V> (1), its Ed25519 signature<V> (66) and the KeyPackage's extensions<V> (1).
NOT_AFTER = 0x7F01_4044  # 2037-07-09
NOT_BEFORE = 0x6000_0000


def _signed(enc_key: bytes, signature_priv: bytes) -> KeyPackage:
    suite = cipher_suite(1)
    leaf = make_leaf_node(
        suite, basic_credential(b"alice"), signature_priv, enc_key, LeafNodeSource.key_package,
        capabilities=default_capabilities([1]), lifetime=Lifetime(not_before=NOT_BEFORE, not_after=NOT_AFTER),
    )
    _init_priv, init_pub = suite.generate_hpke_key_pair()
    kp = KeyPackage(version=ProtocolVersion.mls10, cipher_suite=1, init_key=init_pub, leaf_node=leaf, extensions=[],
                    signature=b"")
    return kp.replace(signature=suite.sign_with_label(signature_priv, "KeyPackageTBS", _tbs_without_signature(kp)))


def ambiguous_key_package() -> bytes:
    """A bare, validly signed KeyPackage that is also a complete MLSMessage(PublicMessage):
    group_id = init_key; epoch = the encryption key's length byte and first 7 bytes; sender type
    new_member_proposal (encryption key byte 7, no sender fields); authenticated_data (2-byte length in
    encryption key bytes 8-9) up to not_after's byte 5; content type application and application_data from
    not_after; the FramedContentAuthData signature is the KeyPackage's own signature<V>."""
    suite = cipher_suite(1)
    signature_priv, _ = suite.generate_signature_key_pair()
    enc_key = bytearray(range(0x10, 0x30))  # any 32 bytes are an X25519 public key
    enc_key[7] = SenderType.new_member_proposal
    enc_key[8:10] = b"\x40\x40"  # placeholder of the right size; the lengths below do not depend on it
    encoded = _signed(bytes(enc_key), signature_priv).encode()
    start = encoded.index(bytes(enc_key)) + 10  # authenticated_data begins after encryption key byte 9
    stop = encoded.index(NOT_AFTER.to_bytes(8, "big")) + 5  # ... and ends before not_after's 0x01
    length = stop - start
    assert 64 <= length < 16384
    enc_key[8:10] = (0x4000 | length).to_bytes(2, "big")
    return _signed(bytes(enc_key), signature_priv).encode()


def test_a_bare_key_package_can_also_decode_as_a_public_message():
    data = ambiguous_key_package()
    msg = MLSMessage.decode(data)  # the old parse took this reading and refused the upload
    assert msg.wire_format == WireFormat.mls_public_message
    assert msg.public_message.content.sender.sender_type == SenderType.new_member_proposal
    kp = KeyPackage.decode(data)
    assert kp.encode() == data and kp.leaf_node.lifetime.not_after == NOT_AFTER


def test_the_bare_form_is_parsed_as_a_key_package_whatever_else_it_decodes_as():
    data = ambiguous_key_package()
    parsed = parse_key_package(data)
    assert parsed.encoded == data
    assert parsed.ref == cipher_suite(1).ref_hash("MLS 1.0 KeyPackage Reference", data)


def test_upload_of_the_ambiguous_bare_key_package_is_stored():
    provider = make_provider(FakeClock())
    provider.provision_user("mimi://a.example/u/alice", clients=1)
    data = ambiguous_key_package()
    assert provider.upload_key_packages(C1, [data]) == [parse_key_package(data).ref]
    assert provider.keymaterial.available(C1) == 1


def test_each_form_has_its_own_parser():
    bundle = make_key_package(1, basic_credential(b"x"))
    bare, wrapped = bundle.key_package.encode(), bundle.to_message()
    assert parse_key_package(bare).ref == parse_key_package_message(wrapped).ref == bundle.ref()
    assert parse_key_package(bare).encoded == parse_key_package_message(wrapped).encoded == bare
    with pytest.raises(InvalidUpload):
        parse_key_package_message(bare)  # a bare KeyPackage is no MLSMessage(KeyPackage)
    with pytest.raises(InvalidUpload):
        parse_key_package(b"\x00\x01garbage")


def test_an_mls_message_that_is_not_a_key_package_is_refused():
    data = ambiguous_key_package()  # as an MLSMessage it carries a PublicMessage
    with pytest.raises(InvalidUpload, match="mls_public_message"):
        parse_key_package_message(data)


def test_the_helper_uploads_bare_key_packages():
    assert KeyPackage.decode(key_package()).version == ProtocolVersion.mls10
