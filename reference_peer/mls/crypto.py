"""RFC 9420 §5 cryptographic objects on `cryptography` primitives, with HPKE (RFC 9180) base mode.

`cryptography`'s own HPKE API takes no AAD and has no exporter, both of which MLS needs
(EncryptWithLabel carries the empty AAD through SealBase; external init uses the exporter), so
HPKE is implemented here from its RFC 9180 definition. All seven RFC 9420 suites (0x0001-0x0007)
are provided; any other number raises UnsupportedCipherSuite.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, x448, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from .errors import CryptoError, UnsupportedCipherSuite

_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw
_RAW_PRIV = serialization.PrivateFormat.Raw
_NO_ENC = serialization.NoEncryption()


def _varint(n: int) -> bytes:
    if n < 64:
        return bytes([n])
    if n < 16384:
        return (0x4000 | n).to_bytes(2, "big")
    return (0x80000000 | n).to_bytes(4, "big")


def vl(data: bytes) -> bytes:
    """``opaque data<V>``: the RFC 9420 variable-length prefix, then the bytes."""
    return _varint(len(data)) + bytes(data)


def _hkdf_extract(hash_name: str, salt: bytes, ikm: bytes) -> bytes:
    if not salt:
        salt = bytes(hashlib.new(hash_name).digest_size)
    return hmac.new(salt, ikm, hash_name).digest()


def _hkdf_expand(hash_name: str, prk: bytes, info: bytes, length: int) -> bytes:
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hash_name).digest()
        out += block
        counter += 1
    return out[:length]


@dataclass(frozen=True)
class _KemParams:
    kem_id: int
    curve: str  # "x25519", "x448", "p256", "p384", "p521"
    n_secret: int
    n_sk: int
    bitmask: int  # RFC 9180 §7.1.3 DeriveKeyPair mask for the NIST curves


_KEM_X25519 = _KemParams(0x0020, "x25519", 32, 32, 0)
_KEM_X448 = _KemParams(0x0021, "x448", 64, 56, 0)
_KEM_P256 = _KemParams(0x0010, "p256", 32, 32, 0xFF)
_KEM_P384 = _KemParams(0x0011, "p384", 48, 48, 0xFF)
_KEM_P521 = _KemParams(0x0012, "p521", 64, 66, 0x01)

_EC_CURVES = {"p256": ec.SECP256R1, "p384": ec.SECP384R1, "p521": ec.SECP521R1}
_EC_ORDERS = {
    "p256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "p384": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
    "p521": 0x01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409,
}
_EC_SCALAR_BYTES = {"p256": 32, "p384": 48, "p521": 66}
_ECDSA_HASH = {"p256": hashes.SHA256, "p384": hashes.SHA384, "p521": hashes.SHA512}
_KDF_IDS = {"sha256": 0x0001, "sha384": 0x0002, "sha512": 0x0003}
_AEAD_IDS = {"aes128gcm": 0x0001, "aes256gcm": 0x0002, "chacha20poly1305": 0x0003}


class CipherSuite:
    """One RFC 9420 cipher suite: hash, KDF, AEAD, HPKE KEM and signature scheme."""

    def __init__(self, suite_id: int, kem: _KemParams, aead: str, hash_name: str, signature: str) -> None:
        self.suite_id = suite_id
        self.kem = kem
        self.aead_name = aead
        self.signature = signature  # "ed25519", "ed448", or an EC curve name for ECDSA
        self.hash_name = hash_name
        self.hash_length = hashlib.new(hash_name).digest_size  # Nh, also the KDF's Nh
        self.aead_key_length = 16 if aead == "aes128gcm" else 32
        self.aead_nonce_length = 12
        self.aead_id = _AEAD_IDS[aead]
        self.kdf_id = _KDF_IDS[hash_name]
        self._kem_suite_id = b"KEM" + kem.kem_id.to_bytes(2, "big")
        self._context_cache: tuple[bytes, bytes] | None = None
        self._hpke_suite_id = b"HPKE" + kem.kem_id.to_bytes(2, "big") + self.kdf_id.to_bytes(2, "big") + self.aead_id.to_bytes(2, "big")

    def __repr__(self) -> str:
        return f"CipherSuite(0x{self.suite_id:04x})"

    # -- hash and KDF ---------------------------------------------------------------------------

    def hash(self, data: bytes) -> bytes:
        return hashlib.new(self.hash_name, data).digest()

    def mac(self, key: bytes, data: bytes) -> bytes:
        return hmac.new(key, data, self.hash_name).digest()

    def extract(self, salt: bytes, ikm: bytes) -> bytes:
        return _hkdf_extract(self.hash_name, salt, ikm)

    def expand(self, prk: bytes, info: bytes, length: int) -> bytes:
        return _hkdf_expand(self.hash_name, prk, info, length)

    def expand_with_label(self, secret: bytes, label: bytes | str, context: bytes, length: int) -> bytes:
        if isinstance(label, str):
            label = label.encode()
        info = length.to_bytes(2, "big") + vl(b"MLS 1.0 " + label) + vl(context)
        return self.expand(secret, info, length)

    def derive_secret(self, secret: bytes, label: bytes | str) -> bytes:
        return self.expand_with_label(secret, label, b"", self.hash_length)

    def derive_tree_secret(self, secret: bytes, label: bytes | str, generation: int, length: int) -> bytes:
        return self.expand_with_label(secret, label, generation.to_bytes(4, "big"), length)

    def ref_hash(self, label: bytes | str, value: bytes) -> bytes:
        if isinstance(label, str):
            label = label.encode()
        return self.hash(vl(label) + vl(value))

    # -- AEAD -----------------------------------------------------------------------------------

    def _aead(self, key: bytes) -> AESGCM | ChaCha20Poly1305:
        if len(key) != self.aead_key_length:
            raise CryptoError(f"AEAD key must be {self.aead_key_length} bytes")
        return ChaCha20Poly1305(key) if self.aead_name == "chacha20poly1305" else AESGCM(key)

    def aead_encrypt(self, key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
        return self._aead(key).encrypt(nonce, bytes(plaintext), bytes(aad))

    def aead_decrypt(self, key: bytes, nonce: bytes, aad: bytes, ciphertext: bytes) -> bytes:
        try:
            return self._aead(key).decrypt(nonce, bytes(ciphertext), bytes(aad))
        except (InvalidTag, ValueError, OverflowError):
            raise CryptoError("AEAD decryption failed") from None

    # -- signatures (RFC 9420 §5.1.2) ------------------------------------------------------------

    def generate_signature_key_pair(self) -> tuple[bytes, bytes]:
        """(private, public) in the suite's wire form."""
        if self.signature == "ed25519":
            sk = ed25519.Ed25519PrivateKey.generate()
            return sk.private_bytes(_RAW, _RAW_PRIV, _NO_ENC), sk.public_key().public_bytes(_RAW, _RAW_PUB)
        if self.signature == "ed448":
            sk448 = ed448.Ed448PrivateKey.generate()
            return sk448.private_bytes(_RAW, _RAW_PRIV, _NO_ENC), sk448.public_key().public_bytes(_RAW, _RAW_PUB)
        curve = self.signature
        key = ec.generate_private_key(_EC_CURVES[curve]())
        return key.private_numbers().private_value.to_bytes(_EC_SCALAR_BYTES[curve], "big"), _ec_public_bytes(key.public_key())

    def signature_public_key(self, private: bytes) -> bytes:
        if self.signature == "ed25519":
            return _ed25519_private(private).public_key().public_bytes(_RAW, _RAW_PUB)
        if self.signature == "ed448":
            return _ed448_private(private).public_key().public_bytes(_RAW, _RAW_PUB)
        return _ec_public_bytes(_ec_private(self.signature, private).public_key())

    def sign(self, private: bytes, message: bytes) -> bytes:
        if self.signature == "ed25519":
            return _ed25519_private(private).sign(message)
        if self.signature == "ed448":
            return _ed448_private(private).sign(message)
        return _ec_private(self.signature, private).sign(message, ec.ECDSA(_ECDSA_HASH[self.signature]()))

    def verify(self, public: bytes, message: bytes, signature: bytes) -> bool:
        try:
            if self.signature == "ed25519":
                _ed25519_public(bytes(public)).verify(bytes(signature), message)
            elif self.signature == "ed448":
                ed448.Ed448PublicKey.from_public_bytes(bytes(public)).verify(bytes(signature), message)
            else:
                key = ec.EllipticCurvePublicKey.from_encoded_point(_EC_CURVES[self.signature](), bytes(public))
                key.verify(bytes(signature), message, ec.ECDSA(_ECDSA_HASH[self.signature]()))
            return True
        except (InvalidSignature, ValueError, TypeError):
            return False

    def sign_with_label(self, private: bytes, label: bytes | str, content: bytes) -> bytes:
        return self.sign(private, _sign_content(label, content))

    def verify_with_label(self, public: bytes, label: bytes | str, content: bytes, signature: bytes) -> bool:
        return self.verify(public, _sign_content(label, content), signature)

    # -- HPKE (RFC 9180) --------------------------------------------------------------------------

    def _labeled_extract(self, suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
        return self.extract(salt, b"HPKE-v1" + suite_id + label + ikm)

    def _labeled_expand(self, suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
        return self.expand(prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite_id + label + info, length)

    def derive_key_pair(self, ikm: bytes) -> tuple[bytes, bytes]:
        """RFC 9180 §7.1.3 DeriveKeyPair: (private, public) HPKE keys in serialized form."""
        sid = self._kem_suite_id
        kem = self.kem
        prk = self._labeled_extract(sid, b"", b"dkp_prk", ikm)
        if kem.curve in ("x25519", "x448"):
            private = self._labeled_expand(sid, prk, b"sk", b"", kem.n_sk)
            return private, self.hpke_public_key(private)
        order = _EC_ORDERS[kem.curve]
        for counter in range(256):
            candidate = bytearray(self._labeled_expand(sid, prk, b"candidate", bytes([counter]), kem.n_sk))
            candidate[0] &= kem.bitmask
            value = int.from_bytes(candidate, "big")
            if 0 < value < order:
                private = bytes(candidate)
                return private, self.hpke_public_key(private)
        raise CryptoError("DeriveKeyPair found no valid scalar")  # pragma: no cover - probability 2^-256

    def generate_hpke_key_pair(self) -> tuple[bytes, bytes]:
        return self.derive_key_pair(os.urandom(32))

    def hpke_public_key(self, private: bytes) -> bytes:
        curve = self.kem.curve
        try:
            if curve == "x25519":
                return x25519.X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(_RAW, _RAW_PUB)
            if curve == "x448":
                return x448.X448PrivateKey.from_private_bytes(private).public_key().public_bytes(_RAW, _RAW_PUB)
        except ValueError:
            raise CryptoError("invalid HPKE private key") from None
        return _ec_public_bytes(_ec_private(curve, private).public_key())

    def _dh(self, private: bytes, public: bytes) -> bytes:
        curve = self.kem.curve
        try:
            if curve == "x25519":
                return x25519.X25519PrivateKey.from_private_bytes(private).exchange(x25519.X25519PublicKey.from_public_bytes(bytes(public)))
            if curve == "x448":
                return x448.X448PrivateKey.from_private_bytes(private).exchange(x448.X448PublicKey.from_public_bytes(bytes(public)))
            peer = ec.EllipticCurvePublicKey.from_encoded_point(_EC_CURVES[curve](), bytes(public))
            return _ec_private(curve, private).exchange(ec.ECDH(), peer)
        except (ValueError, TypeError):
            raise CryptoError("invalid HPKE key") from None

    def _kem_shared_secret(self, dh: bytes, kem_context: bytes) -> bytes:
        sid = self._kem_suite_id
        prk = self._labeled_extract(sid, b"", b"eae_prk", dh)
        return self._labeled_expand(sid, prk, b"shared_secret", kem_context, self.kem.n_secret)

    def _key_schedule(self, shared_secret: bytes, info: bytes) -> tuple[bytes, bytes, bytes]:
        sid = self._hpke_suite_id
        # The context depends only on the info (base mode has no PSK); one UpdatePath encrypts
        # every path secret under the same info, so remember the last one.
        cached = self._context_cache
        if cached is not None and cached[0] == info:
            context = cached[1]
        else:
            psk_id_hash = self._labeled_extract(sid, b"", b"psk_id_hash", b"")
            info_hash = self._labeled_extract(sid, b"", b"info_hash", info)
            context = b"\x00" + psk_id_hash + info_hash
            self._context_cache = (bytes(info), context)
        secret = self._labeled_extract(sid, shared_secret, b"secret", b"")
        key = self._labeled_expand(sid, secret, b"key", context, self.aead_key_length)
        nonce = self._labeled_expand(sid, secret, b"base_nonce", context, self.aead_nonce_length)
        exporter = self._labeled_expand(sid, secret, b"exp", context, self.hash_length)
        return key, nonce, exporter

    def _encap(self, public: bytes, ephemeral_ikm: bytes | None) -> tuple[bytes, bytes]:
        if self.kem.curve == "x25519" and ephemeral_ikm is None:
            # A fresh random key is what DeriveKeyPair(random) amounts to; skip the KDF round trip.
            eph = x25519.X25519PrivateKey.generate()
            eph_public = eph.public_key().public_bytes(_RAW, _RAW_PUB)
            try:
                dh = eph.exchange(x25519.X25519PublicKey.from_public_bytes(bytes(public)))
            except ValueError:
                raise CryptoError("invalid HPKE public key") from None
        else:
            eph_private, eph_public = self.derive_key_pair(ephemeral_ikm or os.urandom(32))
            dh = self._dh(eph_private, public)
        return self._kem_shared_secret(dh, eph_public + bytes(public)), eph_public

    def _decap(self, enc: bytes, private: bytes) -> bytes:
        dh = self._dh(private, enc)
        return self._kem_shared_secret(dh, bytes(enc) + self.hpke_public_key(private))

    def seal_base(self, public: bytes, info: bytes, aad: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
        """SealBase: (kem_output, ciphertext)."""
        shared, enc = self._encap(public, None)
        key, nonce, _ = self._key_schedule(shared, info)
        return enc, self.aead_encrypt(key, nonce, aad, plaintext)

    def open_base(self, enc: bytes, private: bytes, info: bytes, aad: bytes, ciphertext: bytes) -> bytes:
        shared = self._decap(enc, private)
        key, nonce, _ = self._key_schedule(shared, info)
        return self.aead_decrypt(key, nonce, aad, ciphertext)

    def _export(self, exporter_secret: bytes, context: bytes, length: int) -> bytes:
        return self._labeled_expand(self._hpke_suite_id, exporter_secret, b"sec", context, length)

    def export_sender(self, public: bytes, info: bytes, context: bytes, length: int) -> tuple[bytes, bytes]:
        """SetupBaseS + Export: (kem_output, exported secret) (RFC 9420 §8.3 external init)."""
        shared, enc = self._encap(public, None)
        _, _, exporter = self._key_schedule(shared, info)
        return enc, self._export(exporter, context, length)

    def export_receiver(self, enc: bytes, private: bytes, info: bytes, context: bytes, length: int) -> bytes:
        shared = self._decap(enc, private)
        _, _, exporter = self._key_schedule(shared, info)
        return self._export(exporter, context, length)

    def encrypt_with_label(self, public: bytes, label: bytes | str, context: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
        return self.seal_base(public, _encrypt_context(label, context), b"", plaintext)

    def decrypt_with_label(self, private: bytes, label: bytes | str, context: bytes, kem_output: bytes, ciphertext: bytes) -> bytes:
        return self.open_base(kem_output, private, _encrypt_context(label, context), b"", ciphertext)


def _sign_content(label: bytes | str, content: bytes) -> bytes:
    if isinstance(label, str):
        label = label.encode()
    return vl(b"MLS 1.0 " + label) + vl(content)


def _encrypt_context(label: bytes | str, context: bytes) -> bytes:
    if isinstance(label, str):
        label = label.encode()
    return vl(b"MLS 1.0 " + label) + vl(context)


def _ec_public_bytes(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _ec_private(curve: str, private: bytes) -> ec.EllipticCurvePrivateKey:
    try:
        return ec.derive_private_key(int.from_bytes(private, "big"), _EC_CURVES[curve]())
    except (ValueError, TypeError):
        raise CryptoError(f"invalid {curve} private key") from None


def _ed448_private(private: bytes) -> ed448.Ed448PrivateKey:
    try:
        return ed448.Ed448PrivateKey.from_private_bytes(private)
    except ValueError:
        raise CryptoError("invalid Ed448 private key") from None


_ED_PRIV_CACHE: dict[bytes, ed25519.Ed25519PrivateKey] = {}
_ED_PUB_CACHE: dict[bytes, ed25519.Ed25519PublicKey] = {}


def _ed25519_private(private: bytes) -> ed25519.Ed25519PrivateKey:
    key = _ED_PRIV_CACHE.get(private)
    if key is None:
        try:
            key = ed25519.Ed25519PrivateKey.from_private_bytes(private)
        except ValueError:
            raise CryptoError("invalid Ed25519 private key") from None
        if len(_ED_PRIV_CACHE) > 4096:
            _ED_PRIV_CACHE.clear()
        _ED_PRIV_CACHE[private] = key
    return key


def _ed25519_public(public: bytes) -> ed25519.Ed25519PublicKey:
    key = _ED_PUB_CACHE.get(public)
    if key is None:
        key = ed25519.Ed25519PublicKey.from_public_bytes(public)
        if len(_ED_PUB_CACHE) > 4096:
            _ED_PUB_CACHE.clear()
        _ED_PUB_CACHE[public] = key
    return key


SUITES: dict[int, CipherSuite] = {
    0x0001: CipherSuite(0x0001, _KEM_X25519, "aes128gcm", "sha256", "ed25519"),
    0x0002: CipherSuite(0x0002, _KEM_P256, "aes128gcm", "sha256", "p256"),
    0x0003: CipherSuite(0x0003, _KEM_X25519, "chacha20poly1305", "sha256", "ed25519"),
    0x0004: CipherSuite(0x0004, _KEM_X448, "aes256gcm", "sha512", "ed448"),
    0x0005: CipherSuite(0x0005, _KEM_P521, "aes256gcm", "sha512", "p521"),
    0x0006: CipherSuite(0x0006, _KEM_X448, "chacha20poly1305", "sha512", "ed448"),
    0x0007: CipherSuite(0x0007, _KEM_P384, "aes256gcm", "sha384", "p384"),
}


def cipher_suite(suite_id: int) -> CipherSuite:
    """The suite for an RFC 9420 cipher suite number; UnsupportedCipherSuite if not provided."""
    suite = SUITES.get(int(suite_id))
    if suite is None:
        raise UnsupportedCipherSuite(f"cipher suite 0x{int(suite_id):04x} is not supported")
    return suite


def is_supported(suite_id: int) -> bool:
    return int(suite_id) in SUITES
