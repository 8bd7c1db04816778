"""LeafNode and KeyPackage: signing, references and validation (RFC 9420 §7.2, §7.3, §10)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from ..wire.codec import DecodeError
from ..wire.mls import (
    COMPONENT_APP_COMPONENTS,
    AppDataDictionary,
    Capabilities,
    ComponentData,
    ComponentsList,
    Credential,
    CredentialType,
    Extension,
    ExtensionType,
    KeyPackage,
    LeafNode,
    LeafNodeSource,
    Lifetime,
    MLSMessage,
    ProposalType,
    ProtocolVersion,
    RequiredCapabilities,
    WireFormat,
)
from .crypto import CipherSuite, cipher_suite, vl
from .errors import InvalidKeyPackage, MalformedMessage

# Extension and proposal types every client supports without listing them (RFC 9420 §7.2).
DEFAULT_EXTENSIONS = frozenset({1, 2, 3, 4, 5})
DEFAULT_PROPOSALS = frozenset({1, 2, 3, 4, 5, 6, 7})
LAST_RESORT_EXTENSION = 0x000A  # draft-ietf-mls-extensions last_resort_key_package
DEFAULT_LIFETIME_SECONDS = 90 * 24 * 3600


def basic_credential(identity: bytes) -> Credential:
    return Credential(credential_type=CredentialType.basic, identity=identity)


def default_capabilities(suite_ids: list[int] | None = None, extensions: list[int] | None = None, proposals: list[int] | None = None) -> Capabilities:
    return Capabilities(
        versions=[1],
        cipher_suites=list(suite_ids or [1]),
        extensions=list(extensions if extensions is not None else [int(ExtensionType.app_data_dictionary)]),
        proposals=list(
            proposals
            if proposals is not None
            else [int(ProposalType.app_data_update), int(ProposalType.self_remove)]
        ),
        credentials=[int(CredentialType.basic)],
    )


def app_components_extension(component_ids: Iterable[int]) -> Extension:
    """A LeafNode ``app_data_dictionary`` extension whose ``app_components`` entry lists the components the
    client supports (draft-ietf-mls-extensions-09 §5; the list sorted, without duplicates). The extension
    type must also be in the leaf's ``capabilities.extensions`` (RFC 9420 §7.2; default_capabilities has it)."""
    listed = ComponentsList(component_ids=sorted({int(c) for c in component_ids}))
    entry = ComponentData(component_id=int(COMPONENT_APP_COMPONENTS), data=listed.encode())
    return Extension(extension_type=ExtensionType.app_data_dictionary,
                     extension_data=AppDataDictionary(component_data=[entry]).encode())


def leaf_app_components(leaf: LeafNode) -> list[int] | None:
    """The component IDs a LeafNode lists in its app_data_dictionary's ``app_components`` entry; None when
    it has no such entry or the entry (or the dictionary) does not decode strictly."""
    for ext in leaf.extensions:
        if ext.extension_type != ExtensionType.app_data_dictionary:
            continue
        try:
            dictionary = AppDataDictionary.decode(bytes(ext.extension_data))
            for entry in dictionary.component_data:
                if entry.component_id == COMPONENT_APP_COMPONENTS:
                    return list(ComponentsList.decode(bytes(entry.data)).component_ids)
        except DecodeError:
            return None
        return None
    return None


def _tbs_without_signature(struct: object) -> bytes:
    # The TBS structs are the struct minus its trailing ``opaque signature<V>``: encoding with an
    # empty signature and dropping its one-byte length gives exactly that prefix.
    encoded = struct.replace(signature=b"").encode()  # type: ignore[attr-defined]
    return encoded[:-1]


def leaf_node_tbs(leaf: LeafNode, group_id: bytes | None, leaf_index: int | None) -> bytes:
    data = _tbs_without_signature(leaf)
    if leaf.leaf_node_source in (LeafNodeSource.update, LeafNodeSource.commit):
        data += vl(group_id or b"") + int(leaf_index or 0).to_bytes(4, "big")
    return data


def sign_leaf_node(suite: CipherSuite, signature_priv: bytes, leaf: LeafNode, group_id: bytes | None = None, leaf_index: int | None = None) -> LeafNode:
    return leaf.replace(signature=suite.sign_with_label(signature_priv, "LeafNodeTBS", leaf_node_tbs(leaf, group_id, leaf_index)))


def verify_leaf_node_signature(suite: CipherSuite, leaf: LeafNode, group_id: bytes | None = None, leaf_index: int | None = None) -> bool:
    return suite.verify_with_label(leaf.signature_key, "LeafNodeTBS", leaf_node_tbs(leaf, group_id, leaf_index), leaf.signature)


def key_package_ref(suite: CipherSuite, key_package: KeyPackage) -> bytes:
    return suite.ref_hash("MLS 1.0 KeyPackage Reference", key_package.encode())


@dataclass
class KeyPackageBundle:
    """A KeyPackage with the private keys its owner keeps."""

    key_package: KeyPackage
    init_priv: bytes
    encryption_priv: bytes
    signature_priv: bytes

    @property
    def suite(self) -> CipherSuite:
        return cipher_suite(self.key_package.cipher_suite)

    def ref(self) -> bytes:
        return key_package_ref(self.suite, self.key_package)

    def to_message(self) -> bytes:
        return MLSMessage(version=ProtocolVersion.mls10, wire_format=WireFormat.mls_key_package, key_package=self.key_package).encode()


def make_leaf_node(
    suite: CipherSuite,
    credential: Credential,
    signature_priv: bytes,
    encryption_key: bytes,
    source: LeafNodeSource,
    *,
    capabilities: Capabilities | None = None,
    extensions: list[Extension] | None = None,
    lifetime: Lifetime | None = None,
    parent_hash: bytes | None = None,
    group_id: bytes | None = None,
    leaf_index: int | None = None,
) -> LeafNode:
    leaf = LeafNode(
        encryption_key=encryption_key,
        signature_key=suite.signature_public_key(signature_priv),
        credential=credential,
        capabilities=capabilities or default_capabilities([suite.suite_id]),
        leaf_node_source=source,
        lifetime=lifetime if source == LeafNodeSource.key_package else None,
        parent_hash=(parent_hash or b"") if source == LeafNodeSource.commit else None,
        extensions=list(extensions or []),
        signature=b"",
    )
    return sign_leaf_node(suite, signature_priv, leaf, group_id, leaf_index)


def make_key_package(
    suite_id: int,
    credential: Credential,
    signature_priv: bytes | None = None,
    *,
    capabilities: Capabilities | None = None,
    leaf_extensions: list[Extension] | None = None,
    extensions: list[Extension] | None = None,
    lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS,
    not_before: int | None = None,
    not_after: int | None = None,
    last_resort: bool = False,
) -> KeyPackageBundle:
    """A fresh KeyPackage (new init and encryption keys; a new signature key unless given)."""
    suite = cipher_suite(suite_id)
    if signature_priv is None:
        signature_priv, _ = suite.generate_signature_key_pair()
    init_priv, init_pub = suite.generate_hpke_key_pair()
    enc_priv, enc_pub = suite.generate_hpke_key_pair()
    now = int(time.time())
    lifetime = Lifetime(
        not_before=now - 3600 if not_before is None else not_before,
        not_after=now + lifetime_seconds if not_after is None else not_after,
    )
    kp_extensions = list(extensions or [])
    caps = capabilities or default_capabilities([suite.suite_id])
    if last_resort and not any(e.extension_type == LAST_RESORT_EXTENSION for e in kp_extensions):
        kp_extensions.append(Extension(extension_type=LAST_RESORT_EXTENSION, extension_data=b""))
        if LAST_RESORT_EXTENSION not in caps.extensions:
            caps = caps.replace(extensions=[*caps.extensions, LAST_RESORT_EXTENSION])
    leaf = make_leaf_node(
        suite, credential, signature_priv, enc_pub, LeafNodeSource.key_package,
        capabilities=caps, extensions=leaf_extensions, lifetime=lifetime,
    )
    kp = KeyPackage(
        version=ProtocolVersion.mls10, cipher_suite=suite.suite_id, init_key=init_pub,
        leaf_node=leaf, extensions=kp_extensions, signature=b"",
    )
    kp = kp.replace(signature=suite.sign_with_label(signature_priv, "KeyPackageTBS", _tbs_without_signature(kp)))
    return KeyPackageBundle(kp, init_priv, enc_priv, signature_priv)


def is_last_resort(key_package: KeyPackage) -> bool:
    return any(e.extension_type == LAST_RESORT_EXTENSION for e in key_package.extensions)


def decode_key_package(data: bytes) -> KeyPackage:
    """A KeyPackage from an MLSMessage (or a bare KeyPackage)."""
    try:
        msg = MLSMessage.decode(data)
    except DecodeError:
        try:
            return KeyPackage.decode(data)
        except DecodeError as exc:
            raise MalformedMessage(f"not a KeyPackage: {exc}") from None
    if msg.key_package is None:
        raise MalformedMessage("MLSMessage does not carry a KeyPackage")
    return msg.key_package


def capabilities_cover(caps: Capabilities, required: RequiredCapabilities | None) -> bool:
    if required is None:
        return True
    return (
        all(t in caps.extensions or t in DEFAULT_EXTENSIONS for t in required.extension_types)
        and all(t in caps.proposals or t in DEFAULT_PROPOSALS for t in required.proposal_types)
        and all(t in caps.credentials for t in required.credential_types)
    )


def validate_leaf_node(
    suite: CipherSuite,
    leaf: LeafNode,
    *,
    expected_source: LeafNodeSource | None,
    group_id: bytes | None = None,
    leaf_index: int | None = None,
    required: RequiredCapabilities | None = None,
    now: int | None = None,
    check_lifetime: bool = True,
) -> None:
    """RFC 9420 §7.3 checks that need no other member; tree-wide uniqueness is checked by callers."""
    if expected_source is not None and leaf.leaf_node_source != expected_source:
        raise InvalidKeyPackage(f"leaf_node_source is {leaf.leaf_node_source.name}, expected {expected_source.name}")
    if not verify_leaf_node_signature(suite, leaf, group_id, leaf_index):
        raise InvalidKeyPackage("LeafNode signature does not verify")
    if not capabilities_cover(leaf.capabilities, required):
        raise InvalidKeyPackage("LeafNode capabilities miss the group's required_capabilities")
    if leaf.credential.credential_type not in leaf.capabilities.credentials:
        raise InvalidKeyPackage("LeafNode's own credential type is not in its capabilities")
    for ext in leaf.extensions:
        if ext.extension_type not in DEFAULT_EXTENSIONS and ext.extension_type not in leaf.capabilities.extensions:
            raise InvalidKeyPackage(f"LeafNode extension {ext.extension_type} is not in its capabilities")
    if leaf.leaf_node_source == LeafNodeSource.key_package and check_lifetime:
        t = int(time.time()) if now is None else now
        if not leaf.lifetime.not_before <= t <= leaf.lifetime.not_after:
            raise InvalidKeyPackage("LeafNode lifetime does not cover the current time")


def validate_key_package(
    suite: CipherSuite,
    key_package: KeyPackage,
    *,
    required: RequiredCapabilities | None = None,
    now: int | None = None,
    check_lifetime: bool = True,
) -> None:
    """RFC 9420 §10.1."""
    if key_package.version != ProtocolVersion.mls10:
        raise InvalidKeyPackage("KeyPackage version is not mls10")
    if key_package.cipher_suite != suite.suite_id:
        raise InvalidKeyPackage(f"KeyPackage cipher suite 0x{key_package.cipher_suite:04x} is not the group's")
    if not suite.verify_with_label(key_package.leaf_node.signature_key, "KeyPackageTBS", _tbs_without_signature(key_package), key_package.signature):
        raise InvalidKeyPackage("KeyPackage signature does not verify")
    validate_leaf_node(suite, key_package.leaf_node, expected_source=LeafNodeSource.key_package, required=required, now=now, check_lifetime=check_lifetime)
    if bytes(key_package.init_key) == bytes(key_package.leaf_node.encryption_key):
        raise InvalidKeyPackage("init_key equals the leaf encryption_key")
    caps = key_package.leaf_node.capabilities
    if 1 not in caps.versions or suite.suite_id not in caps.cipher_suites:
        raise InvalidKeyPackage("KeyPackage capabilities do not list its own version and cipher suite")
