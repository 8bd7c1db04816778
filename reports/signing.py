"""Signing and verifying results files (Ed25519 over a canonical encoding).

What is signed: the results document without its ``signature`` member, in the JSON Canonicalization
Scheme of RFC 8785 (keys sorted by UTF-16 code units, ECMAScript number form, no insignificant
whitespace, UTF-8), so that any JCS implementation can re-create the signed bytes. The block records
it as ``"canonicalization": "RFC8785"``. Files signed before that record
``json-sorted-keys-compact-utf8`` (``json.dumps(sort_keys=True)``, :func:`reports.model.canonical_json`)
and still verify under it.
The signature therefore covers content, not formatting: re-indenting a file keeps it valid, while
any change of a value, key or the signature block itself (including a change of case in a hex
string, which the schema forbids) makes verification fail.

The signature block names the public key. On its own, a valid signature proves the file was not
changed after it was signed by *whoever holds that key*; to prove *who* signed it, pass the
publisher's public key (or its key id) as ``trusted_keys``: the CLI's ``verify --key``.

:func:`verify` also checks the schema, that ``sut_manifest_sha256`` matches the manifest, and that
every profile verdict follows from the checks (re-scored by :mod:`reports.scoring`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .model import RunResults, SignatureBlock, canonical_json, manifest_sha256
from .schema import results_schema_errors
from .scoring import rescore

ALGORITHM = "Ed25519"
CANONICALIZATION = "RFC8785"
LEGACY_CANONICALIZATION = "json-sorted-keys-compact-utf8"  # files signed before RFC 8785 was adopted


class SigningKeyError(ValueError):
    """A key file could not be read as an Ed25519 key."""


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def raw_public_key(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """A short fingerprint: the first 16 hex digits of SHA-256 of the raw public key."""
    return hashlib.sha256(raw_public_key(key)).hexdigest()[:16]


def save_private_key(key: Ed25519PrivateKey, path: Path) -> None:
    """Write the key as unencrypted PKCS#8 PEM, readable by its owner only."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def save_public_key(key: Ed25519PrivateKey | Ed25519PublicKey, path: Path) -> None:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    path.write_bytes(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        raise SigningKeyError(f"{path}: cannot read an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A PEM public key, or a file holding the raw 32-byte key in hex (as in a signature block)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"{path}: {exc}") from exc
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
        else:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(data.decode("ascii").strip()))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise SigningKeyError(f"{path}: cannot read an Ed25519 public key (PEM or 64 hex digits): {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path}: not an Ed25519 public key")
    return key


def jcs(data: Any) -> bytes:
    """RFC 8785 JSON Canonicalization Scheme bytes of ``data``."""
    try:
        return rfc8785.dumps(data)
    except rfc8785.CanonicalizationError as exc:  # e.g. an integer beyond I-JSON's 2**53 range
        raise ValueError(f"cannot canonicalize under RFC 8785: {exc}") from exc


def signed_bytes(document: dict[str, Any], canonicalization: str = CANONICALIZATION) -> bytes:
    """The bytes a signature covers: the document without ``signature``, in ``canonicalization``."""
    unsigned = {key: value for key, value in document.items() if key != "signature"}
    if canonicalization == CANONICALIZATION:
        return jcs(unsigned)
    if canonicalization == LEGACY_CANONICALIZATION:
        return canonical_json(unsigned)
    raise ValueError(f"unknown canonicalization {canonicalization!r}")


def sign(results: RunResults, key: Ed25519PrivateKey) -> RunResults:
    """A copy of ``results`` carrying a signature block made with ``key`` (any previous one is replaced)."""
    unsigned = replace(results, signature=None)
    value = key.sign(signed_bytes(unsigned.as_dict()))
    block = SignatureBlock(
        algorithm=ALGORITHM,
        canonicalization=CANONICALIZATION,
        public_key=raw_public_key(key).hex(),
        key_id=key_id(key),
        value=value.hex(),
    )
    return replace(results, signature=block)


def verify(
    results_json: str | bytes,
    *,
    trusted_keys: Iterable[Ed25519PublicKey | str] = (),
    require_signature: bool = True,
) -> tuple[bool, str]:
    """Check a results file: schema, manifest hash, profile verdicts, and the signature.

    ``trusted_keys``: public keys, or key ids (16 hex digits), of which the signer must be one; when
    empty, any key is accepted and only integrity is proved. Returns ``(ok, reason)``; never raises
    for a bad document.
    """
    try:
        data = json.loads(results_json)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return False, f"not valid JSON: {exc}"
    errors = results_schema_errors(data)
    if errors:
        return False, "does not match results.schema.json: " + "; ".join(errors[:5])
    results = RunResults.from_dict(data)
    if manifest_sha256(results.sut_manifest) != results.sut_manifest_sha256:
        return False, "sut_manifest_sha256 does not match sut_manifest"
    recorded = {profile.name: profile for profile in results.profiles}
    for rescored in rescore(results):
        if rescored != recorded[rescored.name]:
            return False, f"profile {rescored.name}: recorded outcome does not follow from the checks"
    block = results.signature
    if block is None:
        return (False, "not signed") if require_signature else (True, "valid (unsigned)")
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(block.public_key))
    except ValueError as exc:
        return False, f"signature public key is not an Ed25519 key: {exc}"
    if block.key_id != key_id(public):
        return False, "signature key_id does not match its public key"
    trusted = list(trusted_keys)
    if trusted:
        trusted_ids = {item if isinstance(item, str) else key_id(item) for item in trusted}
        if block.key_id not in trusted_ids:
            return False, f"signed by key {block.key_id}, which is not a trusted key"
    try:
        # A block without the member (hand-made or older than the member) means the legacy form.
        canonicalization = data["signature"].get("canonicalization") or LEGACY_CANONICALIZATION
        public.verify(bytes.fromhex(block.value), signed_bytes(data, canonicalization))
    except ValueError as exc:
        return False, f"signature cannot be checked: {exc}"
    except InvalidSignature:
        return False, f"signature does not verify with key {block.key_id}: the file was changed after signing"
    return True, f"valid signature by key {block.key_id}"


def verify_file(path: Path, *, trusted_key_file: Path | None = None) -> tuple[int, str]:
    """For ``mimi-conformance verify RESULTS [--key PUB]``: exit code (0 valid, 1 invalid, 2 usage) and a message."""
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        return 2, f"cannot read {path}: {exc}"
    trusted: list[Ed25519PublicKey] = []
    if trusted_key_file is not None:
        try:
            trusted.append(load_public_key(trusted_key_file))
        except SigningKeyError as exc:
            return 2, str(exc)
    ok, reason = verify(text, trusted_keys=trusted)
    return (0 if ok else 1), f"{path}: {reason}"
