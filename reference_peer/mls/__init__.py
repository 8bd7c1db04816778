"""A focused RFC 9420 (MLS 1.0) implementation for the MIMI reference peers and the suite's
simulated clients. Cipher suites 0x0001-0x0003; see README section in docs or the module docs.

Modules: crypto (suites, HPKE, labels), tree_math, tree (public ratchet tree), leaf (LeafNode,
KeyPackage), key_schedule, secret_tree, framing (Public/PrivateMessage), group (Group, PublicGroup,
proposal helpers), hub (HubView), craft (negative-check messages), errors.
"""

from .craft import Crafter, forged_external_proposal, stale_key_package
from .crypto import SUITES, CipherSuite, cipher_suite, is_supported
from .errors import (
    CryptoError,
    InvalidCommit,
    InvalidKeyPackage,
    InvalidProposal,
    InvalidTree,
    InvalidWelcome,
    MalformedMessage,
    MLSError,
    SecretReuse,
    UnknownSender,
    UnsupportedCipherSuite,
    WrongEpoch,
    WrongGroup,
)
from .group import (
    AppliedProposal,
    CommitOutput,
    Group,
    PublicGroup,
    Received,
    Tamper,
    add_proposal,
    app_data_dictionary_extension,
    app_data_update_proposal,
    external_proposal,
    external_psk_proposal,
    external_senders_extension,
    gce_proposal,
    new_member_add_proposal,
    remove_proposal,
    required_capabilities_extension,
    self_remove_proposal,
)
from .hub import HubView
from .leaf import (
    KeyPackageBundle,
    app_components_extension,
    basic_credential,
    default_capabilities,
    key_package_ref,
    leaf_app_components,
    make_key_package,
    validate_key_package,
)

__all__ = [
    "SUITES", "AppliedProposal", "CipherSuite", "CommitOutput", "Crafter", "CryptoError", "Group", "HubView", "InvalidCommit",
    "InvalidKeyPackage", "InvalidProposal", "InvalidTree", "InvalidWelcome", "KeyPackageBundle", "MLSError", "MalformedMessage",
    "PublicGroup", "Received", "SecretReuse", "Tamper", "UnknownSender", "UnsupportedCipherSuite", "WrongEpoch", "WrongGroup",
    "add_proposal", "app_components_extension", "app_data_dictionary_extension", "app_data_update_proposal", "basic_credential", "cipher_suite",
    "default_capabilities", "external_proposal", "external_psk_proposal", "external_senders_extension", "forged_external_proposal",
    "gce_proposal", "is_supported", "key_package_ref", "leaf_app_components", "make_key_package", "new_member_add_proposal", "remove_proposal",
    "required_capabilities_extension", "self_remove_proposal", "stale_key_package", "validate_key_package",
]
