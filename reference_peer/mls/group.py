"""MLS groups (RFC 9420 §11-§12): the public state shared with the hub view, and the member view
with secrets. Every ``process_*``/``process`` call works on a copy and swaps it in only on
success, so a refused message leaves the group unchanged."""

from __future__ import annotations

import copy
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field

from ..wire.codec import DecodeError, EncodeError, decode_value, encode_value
from ..wire.mls import Add as AddBody
from ..wire.mls import (
    AppDataDictionary,
    AppDataUpdateOperation,
    Commit,
    ComponentData,
    ContentType,
    Credential,
    EncryptedGroupSecrets,
    Extension,
    ExtensionType,
    ExternalInit,
    ExternalSender,
    FramedContent,
    FramedContentAuthData,
    GroupContext,
    GroupInfo,
    GroupSecrets,
    HPKECiphertext,
    KeyPackage,
    LeafNode,
    LeafNodeSource,
    Lifetime,
    MLSMessage,
    PathSecret,
    PreSharedKeyID,
    PrivateMessage,
    Proposal,
    ProposalOrRef,
    ProposalOrRefType,
    ProposalType,
    ProtocolVersion,
    PSKType,
    PublicMessage,
    RequiredCapabilities,
    ResumptionPSKUsage,
    Sender,
    SenderType,
    UpdatePath,
    UpdatePathNode,
    Welcome,
    WireFormat,
)
from ..wire.mls import GroupContextExtensions as GCEBody
from ..wire.mls import (
    RatchetTree as RatchetTreeCodec,
)
from ..wire.mls import Remove as RemoveBody
from ..wire.mls import Update as UpdateBody
from . import framing
from . import key_schedule as ks
from . import tree_math as tm
from .crypto import CipherSuite, cipher_suite, vl
from .errors import (
    CryptoError,
    InvalidCommit,
    InvalidKeyPackage,
    InvalidProposal,
    InvalidTree,
    InvalidWelcome,
    MalformedMessage,
    MLSError,
    UnknownSender,
    WrongEpoch,
    WrongGroup,
)
from .leaf import (
    DEFAULT_EXTENSIONS,
    DEFAULT_PROPOSALS,
    KeyPackageBundle,
    capabilities_cover,
    default_capabilities,
    key_package_ref,
    make_leaf_node,
    sign_leaf_node,
    validate_key_package,
    validate_leaf_node,
    verify_leaf_node_signature,
)
from .secret_tree import SecretTree
from .tree import RatchetTree

# Proposal types whose presence makes the UpdatePath mandatory (RFC 9420 §17.4 "Path Required",
# draft-ietf-mls-extensions for SelfRemove; AppDataUpdate does not require one).
PATH_REQUIRED = frozenset({ProposalType.update, ProposalType.remove, ProposalType.external_init,
                           ProposalType.group_context_extensions, ProposalType.self_remove})
EXTERNAL_SENDER_PROPOSALS = frozenset({ProposalType.add, ProposalType.remove, ProposalType.psk, ProposalType.reinit,
                                       ProposalType.group_context_extensions, ProposalType.app_data_update})

# An AppDataUpdate handler: (current component data or None, the update payloads in order) -> new data.
AppDataHandler = Callable[[bytes | None, list[bytes]], bytes]


def _replace_handler(current: bytes | None, updates: list[bytes]) -> bytes:
    return updates[-1]


def decode_message(data: bytes | MLSMessage) -> MLSMessage:
    if isinstance(data, MLSMessage):
        return data
    try:
        msg = MLSMessage.decode(data)
    except DecodeError as exc:
        raise MalformedMessage(str(exc)) from None
    if msg.version != ProtocolVersion.mls10:
        raise MalformedMessage("MLSMessage version is not mls10")
    return msg


def get_extension(extensions: list[Extension], ext_type: int) -> bytes | None:
    for ext in extensions:
        if ext.extension_type == ext_type:
            return bytes(ext.extension_data)
    return None


def set_extension(extensions: list[Extension], ext_type: int, data: bytes | None) -> list[Extension]:
    out = [e for e in extensions if e.extension_type != ext_type]
    if data is not None:
        out.append(Extension(extension_type=int(ext_type), extension_data=data))
    return out


def _decode_ext(codec: object, data: bytes, what: str) -> object:
    try:
        if isinstance(codec, type):
            return codec.decode(data)  # type: ignore[attr-defined]
        return decode_value(codec, data)
    except DecodeError as exc:
        raise InvalidProposal(f"{what}: {exc}") from None


def external_senders_extension(senders: list[ExternalSender]) -> Extension:
    return Extension(extension_type=ExtensionType.external_senders, extension_data=encode_value(_EXTERNAL_SENDERS, senders))


def required_capabilities_extension(extension_types: list[int] = (), proposal_types: list[int] = (), credential_types: list[int] = ()) -> Extension:  # type: ignore[assignment]
    rc = RequiredCapabilities(extension_types=list(extension_types), proposal_types=list(proposal_types), credential_types=list(credential_types))
    return Extension(extension_type=ExtensionType.required_capabilities, extension_data=rc.encode())


def app_data_dictionary_extension(components: dict[int, bytes]) -> Extension:
    d = AppDataDictionary(component_data=[ComponentData(component_id=k, data=v) for k, v in sorted(components.items())])
    return Extension(extension_type=ExtensionType.app_data_dictionary, extension_data=d.encode())


def _external_senders_codec() -> object:
    from ..wire.codec import vector

    return vector(ExternalSender)


_EXTERNAL_SENDERS = _external_senders_codec()


def proposal_ref(suite: CipherSuite, wire_format: int, content: FramedContent, auth: FramedContentAuthData) -> bytes:
    authenticated = int(wire_format).to_bytes(2, "big") + content.encode() + framing.encode_auth(content.content_type, auth)
    return suite.ref_hash("MLS 1.0 Proposal Reference", authenticated)


# -- proposal constructors -------------------------------------------------------------------------


def add_proposal(key_package: KeyPackage) -> Proposal:
    return Proposal(proposal_type=ProposalType.add, add=AddBody(key_package=key_package))


def remove_proposal(leaf_index: int) -> Proposal:
    return Proposal(proposal_type=ProposalType.remove, remove=RemoveBody(removed=leaf_index))


def self_remove_proposal() -> Proposal:
    return Proposal(proposal_type=ProposalType.self_remove)


def gce_proposal(extensions: list[Extension]) -> Proposal:
    return Proposal(proposal_type=ProposalType.group_context_extensions, group_context_extensions=GCEBody(extensions=list(extensions)))


def app_data_update_proposal(component_id: int, data: bytes | None) -> Proposal:
    from ..wire.mls import AppDataUpdate

    if data is None:
        body = AppDataUpdate(component_id=component_id, op=AppDataUpdateOperation.remove)
    else:
        body = AppDataUpdate(component_id=component_id, op=AppDataUpdateOperation.update, update=data)
    return Proposal(proposal_type=ProposalType.app_data_update, app_data_update=body)


def external_psk_proposal(psk_id: bytes) -> Proposal:
    from ..wire.mls import PreSharedKey

    pid = PreSharedKeyID(psktype=PSKType.external, psk_id=psk_id, psk_nonce=os.urandom(32))
    return Proposal(proposal_type=ProposalType.psk, psk=PreSharedKey(psk=pid))


# -- results -----------------------------------------------------------------------------------------


@dataclass
class AppliedProposal:
    proposal: Proposal
    sender: Sender
    ref: bytes | None = None


@dataclass
class Received:
    """What ``process`` found in a message."""

    kind: str  # "application" | "proposal" | "commit"
    sender: Sender
    authenticated_data: bytes
    application_data: bytes | None = None
    proposal: Proposal | None = None
    proposal_ref: bytes | None = None
    applied: list[AppliedProposal] = field(default_factory=list)
    removed_self: bool = False
    epoch: int = 0


@dataclass
class CommitOutput:
    commit: bytes  # the MLSMessage carrying the Commit
    welcome: bytes | None  # the MLSMessage carrying the Welcome, if members were added
    group_info: bytes | None  # an MLSMessage GroupInfo for the new epoch (ratchet_tree + external_pub)
    applied: list[AppliedProposal] = field(default_factory=list)


# How many earlier epochs a member keeps to decrypt late application messages (RFC 9420 §15.2
# leaves the number to the application; each costs one secret tree and a reference to the tree).
RETAINED_EPOCHS = 2


@dataclass(frozen=True)
class _PastEpoch:
    secret_tree: SecretTree
    sender_data_secret: bytes
    context: bytes
    tree: RatchetTree

    def with_secret_tree(self, secret_tree: SecretTree) -> _PastEpoch:
        return _PastEpoch(secret_tree, self.sender_data_secret, self.context, self.tree)


@dataclass
class _Provisional:
    tree: RatchetTree
    extensions: list[Extension]
    added: list[tuple[int, KeyPackage]]
    psks: list[PreSharedKeyID]
    removed: list[int]
    external_init: ExternalInit | None
    applied: list[AppliedProposal]
    path_required: bool


# ===========================================================================================
# Public state: tree + GroupContext + transcript. Used directly by the hub view.


class PublicGroup:
    """The state anyone holding the ratchet tree and the GroupContext can keep (no secrets)."""

    suite: CipherSuite
    context: GroupContext
    tree: RatchetTree
    interim_transcript_hash: bytes
    proposal_cache: dict[bytes, AppliedProposal]
    check_lifetimes: bool
    app_data_handlers: dict[int, AppDataHandler]

    # -- context helpers --------------------------------------------------------------------------

    @property
    def group_id(self) -> bytes:
        return bytes(self.context.group_id)

    @property
    def epoch(self) -> int:
        return self.context.epoch

    def context_bytes(self) -> bytes:
        cached = getattr(self, "_context_cache", None)
        if cached is None or cached[0] is not self.context:
            cached = (self.context, self.context.encode())
            self._context_cache = cached
        return cached[1]

    def required_capabilities(self, extensions: list[Extension] | None = None) -> RequiredCapabilities | None:
        data = get_extension(self.context.extensions if extensions is None else extensions, ExtensionType.required_capabilities)
        if data is None:
            return None
        return _decode_ext(RequiredCapabilities, data, "required_capabilities")  # type: ignore[return-value]

    def external_senders(self) -> list[ExternalSender]:
        data = get_extension(self.context.extensions, ExtensionType.external_senders)
        if data is None:
            return []
        return _decode_ext(_EXTERNAL_SENDERS, data, "external_senders")  # type: ignore[return-value]

    def app_data(self) -> dict[int, bytes]:
        data = get_extension(self.context.extensions, ExtensionType.app_data_dictionary)
        if data is None:
            return {}
        d = _decode_ext(AppDataDictionary, data, "app_data_dictionary")
        return {c.component_id: bytes(c.data) for c in d.component_data}  # type: ignore[attr-defined]

    def members(self) -> list[tuple[int, LeafNode]]:
        return list(self.tree.leaves())

    def find_member(self, signature_key: bytes) -> int | None:
        for index, leaf in self.tree.leaves():
            if bytes(leaf.signature_key) == bytes(signature_key):
                return index
        return None

    def _clone(self) -> PublicGroup:
        clone = copy.copy(self)
        clone.tree = self.tree.copy()
        clone.proposal_cache = dict(self.proposal_cache)
        return clone

    # -- authentication ------------------------------------------------------------------------------

    def _check_header(self, group_id: bytes, epoch: int) -> None:
        if bytes(group_id) != self.group_id:
            raise WrongGroup("message is for another group")
        if epoch != self.epoch:
            raise WrongEpoch(f"message is for epoch {epoch}, the group is at {self.epoch}")

    def _sender_signature_key(self, content: FramedContent, path_leaf: LeafNode | None = None) -> bytes:
        sender = content.sender
        if sender.sender_type == SenderType.member:
            leaf = self.tree.leaf(sender.leaf_index)
            if leaf is None:
                raise UnknownSender(f"leaf {sender.leaf_index} is not a member")
            return bytes(leaf.signature_key)
        if sender.sender_type == SenderType.external:
            senders = self.external_senders()
            if not 0 <= sender.sender_index < len(senders):
                raise UnknownSender(f"no external sender {sender.sender_index}")
            return bytes(senders[sender.sender_index].signature_key)
        if sender.sender_type == SenderType.new_member_proposal:
            if content.content_type != ContentType.proposal or content.proposal.proposal_type != ProposalType.add:
                raise UnknownSender("new_member_proposal must carry an Add")
            return bytes(content.proposal.add.key_package.leaf_node.signature_key)
        if sender.sender_type == SenderType.new_member_commit:
            if content.content_type != ContentType.commit or content.commit.path is None:
                raise InvalidCommit("new_member_commit needs a Commit with a path")
            return bytes(content.commit.path.leaf_node.signature_key)
        raise UnknownSender("unknown sender type")

    def _verify_public(self, msg: PublicMessage, membership_key: bytes | None) -> None:
        content = msg.content
        self._check_header(content.group_id, content.epoch)
        if content.content_type == ContentType.application:
            raise MalformedMessage("application data must not be sent as a PublicMessage")
        key = self._sender_signature_key(content)
        ctx = self.context_bytes()
        if not framing.verify_content(self.suite, key, WireFormat.mls_public_message, content, ctx, msg.auth.signature):
            raise CryptoError("PublicMessage signature does not verify")
        if content.sender.sender_type == SenderType.member:
            if msg.membership_tag is None:
                raise CryptoError("member PublicMessage without membership_tag")
            if membership_key is not None:
                expected = framing.membership_tag(self.suite, membership_key, content, msg.auth, ctx)
                if expected != bytes(msg.membership_tag):
                    raise CryptoError("membership_tag does not verify")
        if content.content_type == ContentType.commit and not msg.auth.confirmation_tag:
            raise InvalidCommit("Commit without confirmation_tag")

    # -- proposals -----------------------------------------------------------------------------------

    def _validate_single_proposal(self, proposal: Proposal, sender: Sender) -> None:
        st = sender.sender_type
        pt = proposal.proposal_type
        if st == SenderType.external and pt not in EXTERNAL_SENDER_PROPOSALS:
            raise InvalidProposal(f"an external sender may not propose {pt.name}")
        if st == SenderType.new_member_proposal and pt != ProposalType.add:
            raise InvalidProposal("new_member_proposal may only propose Add")
        if pt == ProposalType.add:
            self._validate_add(proposal.add.key_package)
        elif pt == ProposalType.update:
            if st != SenderType.member:
                raise InvalidProposal("Update must come from a member")
            leaf = proposal.update.leaf_node
            validate_leaf_node(self.suite, leaf, expected_source=LeafNodeSource.update, group_id=self.group_id,
                               leaf_index=sender.leaf_index, required=self.required_capabilities())
            self._check_leaf_unique(leaf, except_leaf=sender.leaf_index)
        elif pt == ProposalType.remove:
            if self.tree.leaf(proposal.remove.removed) is None:
                raise InvalidProposal(f"Remove of leaf {proposal.remove.removed}, which is not a member")
        elif pt == ProposalType.self_remove:
            if st != SenderType.member:
                raise InvalidProposal("SelfRemove must come from a member")
        elif pt == ProposalType.group_context_extensions:
            self._validate_gce(proposal.group_context_extensions.extensions)
        elif pt == ProposalType.reinit:
            raise InvalidProposal("ReInit is not supported by this implementation")
        elif pt == ProposalType.app_ephemeral:
            raise InvalidProposal("AppEphemeral is not a proposal that can be committed")

    def _validate_add(self, kp: KeyPackage) -> None:
        try:
            validate_key_package(self.suite, kp, required=self.required_capabilities(), check_lifetime=self.check_lifetimes)
        except InvalidKeyPackage as exc:
            raise InvalidProposal(f"Add: {exc}") from None
        self._check_leaf_unique(kp.leaf_node, except_leaf=None)
        self._check_member_compatible(kp.leaf_node)

    def _check_leaf_unique(self, leaf: LeafNode, except_leaf: int | None) -> None:
        sig = bytes(leaf.signature_key)
        enc = bytes(leaf.encryption_key)
        for index, other in self.tree.leaves():
            if index == except_leaf:
                if bytes(other.encryption_key) == enc:
                    raise InvalidProposal("Update reuses the leaf's current encryption key")
                continue
            if bytes(other.signature_key) == sig:
                raise InvalidProposal(f"signature key already used by leaf {index}")
            if bytes(other.encryption_key) == enc:
                raise InvalidProposal(f"encryption key already used by leaf {index}")
        for i in range(1, len(self.tree.nodes), 2):
            node = self.tree.nodes[i]
            if node is not None and bytes(node.encryption_key) == enc:
                raise InvalidProposal("encryption key already used by a parent node")

    def _check_member_compatible(self, leaf: LeafNode) -> None:
        """§7.3: the new leaf supports every credential type in use and the group's extensions."""
        caps = leaf.capabilities
        for ext in self.context.extensions:
            if ext.extension_type not in DEFAULT_EXTENSIONS and ext.extension_type not in caps.extensions:
                raise InvalidProposal(f"new leaf does not support group extension {ext.extension_type}")
        own_type = leaf.credential.credential_type
        for index, member in self.tree.leaves():
            if own_type not in member.capabilities.credentials:
                raise InvalidProposal(f"leaf {index} does not support credential type {int(own_type)}")
            if member.credential.credential_type not in caps.credentials:
                raise InvalidProposal(f"new leaf does not support credential type {int(member.credential.credential_type)} in use")

    def _validate_gce(self, extensions: list[Extension]) -> None:
        types = [e.extension_type for e in extensions]
        if len(types) != len(set(types)):
            raise InvalidProposal("GroupContextExtensions repeats an extension type")
        required = self.required_capabilities(extensions)
        data = get_extension(extensions, ExtensionType.external_senders)
        if data is not None:
            _decode_ext(_EXTERNAL_SENDERS, data, "external_senders")
        data = get_extension(extensions, ExtensionType.app_data_dictionary)
        if data is not None:
            _decode_ext(AppDataDictionary, data, "app_data_dictionary")
        for index, leaf in self.tree.leaves():
            if not capabilities_cover(leaf.capabilities, required):
                raise InvalidProposal(f"leaf {index} does not support the new required_capabilities")
            for t in types:
                if t not in DEFAULT_EXTENSIONS and t not in leaf.capabilities.extensions:
                    raise InvalidProposal(f"leaf {index} does not support extension {t}")

    def _proposal_from_message(self, content: FramedContent, auth: FramedContentAuthData, wire_format: int) -> AppliedProposal:
        self._validate_single_proposal(content.proposal, content.sender)
        ref = proposal_ref(self.suite, wire_format, content, auth)
        entry = AppliedProposal(content.proposal, content.sender, ref)
        self.proposal_cache[ref] = entry
        return entry

    def _resolve_proposals(self, commit: Commit, committer: Sender) -> list[AppliedProposal]:
        out = []
        for por in commit.proposals:
            if por.type == ProposalOrRefType.proposal:
                out.append(AppliedProposal(por.proposal, committer, None))
            else:
                entry = self.proposal_cache.get(bytes(por.reference))
                if entry is None:
                    raise InvalidCommit(f"Commit references unknown proposal {bytes(por.reference).hex()[:16]}")
                out.append(entry)
        return out

    def _check_proposal_list(self, proposals: list[AppliedProposal], committer: Sender) -> bool:
        """RFC 9420 §12.2 list rules. Returns whether the path is required."""
        external_commit = committer.sender_type == SenderType.new_member_commit
        committer_leaf = committer.leaf_index if committer.sender_type == SenderType.member else None
        removed: set[int] = set()
        updated: set[int] = set()
        add_keys: set[bytes] = set()
        psk_ids: set[bytes] = set()
        gce = 0
        ext_inits = 0
        path_required = not proposals
        for entry in proposals:
            p, sender = entry.proposal, entry.sender
            pt = p.proposal_type
            if entry.ref is None and committer.sender_type == SenderType.member and pt == ProposalType.update:
                raise InvalidCommit("a Commit must not carry the committer's own Update by value")
            if pt == ProposalType.self_remove and entry.ref is None:
                raise InvalidCommit("SelfRemove must be committed by reference")
            if pt in PATH_REQUIRED:
                path_required = True
            if entry.ref is None:
                self._validate_single_proposal(p, sender)
            # RFC 9420 §12.2; draft-ietf-mls-extensions-09 §4.7 adds AppDataUpdate (the component's rules decide).
            if external_commit and pt not in (ProposalType.external_init, ProposalType.remove, ProposalType.psk,
                                              ProposalType.app_data_update):
                raise InvalidCommit(f"an external commit may not carry {pt.name}")
            if pt == ProposalType.update:
                if sender.sender_type != SenderType.member:
                    raise InvalidCommit("Update from a non-member")
                if sender.leaf_index == committer_leaf:
                    raise InvalidCommit("the committer's own Update cannot be committed")
                if sender.leaf_index in updated or sender.leaf_index in removed:
                    raise InvalidCommit(f"leaf {sender.leaf_index} is updated twice or updated and removed")
                updated.add(sender.leaf_index)
            elif pt in (ProposalType.remove, ProposalType.self_remove):
                target = p.remove.removed if pt == ProposalType.remove else sender.leaf_index
                if target == committer_leaf:
                    raise InvalidCommit("the committer cannot remove itself")
                if target in removed or target in updated:
                    raise InvalidCommit(f"leaf {target} is removed twice or removed and updated")
                if self.tree.leaf(target) is None:
                    raise InvalidCommit(f"Remove of leaf {target}, which is not a member")
                removed.add(target)
            elif pt == ProposalType.add:
                key = bytes(p.add.key_package.leaf_node.signature_key)
                if key in add_keys:
                    raise InvalidCommit("two Adds for the same signature key")
                add_keys.add(key)
            elif pt == ProposalType.psk:
                pid = p.psk.psk.encode()
                if pid in psk_ids:
                    raise InvalidCommit("the same PSK is proposed twice")
                psk_ids.add(pid)
            elif pt == ProposalType.group_context_extensions:
                gce += 1
            elif pt == ProposalType.external_init:
                ext_inits += 1
            elif pt == ProposalType.reinit:
                raise InvalidCommit("ReInit is not supported by this implementation")
        if gce > 1:
            raise InvalidCommit("more than one GroupContextExtensions proposal")
        if external_commit and ext_inits != 1:
            raise InvalidCommit("an external commit needs exactly one ExternalInit")
        if not external_commit and ext_inits:
            raise InvalidCommit("ExternalInit outside an external commit")
        # Adds for members who are removed in this same commit may reuse their keys.
        for index, leaf in self.tree.leaves():
            if index not in removed and bytes(leaf.signature_key) in add_keys:
                raise InvalidCommit(f"Add for a signature key already held by leaf {index}")
        return path_required

    def _apply_proposals(self, proposals: list[AppliedProposal], committer: Sender, *, validate: bool = True) -> _Provisional:
        """Apply the proposals in RFC 9420 §12.3 order to a copy of the tree and extensions.
        ``validate=False`` skips the §12.2 list rules (crafting only; the path is then included)."""
        path_required = self._check_proposal_list(proposals, committer) if validate else True
        tree = self.tree.copy()
        extensions = list(self.context.extensions)
        by_type: dict[int, list[AppliedProposal]] = {}
        for entry in proposals:
            by_type.setdefault(entry.proposal.proposal_type, []).append(entry)
        for entry in by_type.get(ProposalType.group_context_extensions, []):
            extensions = list(entry.proposal.group_context_extensions.extensions)
        app_updates = by_type.get(ProposalType.app_data_update, [])
        if app_updates:
            extensions = self._apply_app_data(extensions, app_updates)
        for entry in by_type.get(ProposalType.update, []):
            tree.update_leaf(entry.sender.leaf_index, entry.proposal.update.leaf_node)
        removed = []
        for entry in by_type.get(ProposalType.remove, []) + by_type.get(ProposalType.self_remove, []):
            target = entry.proposal.remove.removed if entry.proposal.proposal_type == ProposalType.remove else entry.sender.leaf_index
            tree.remove_leaf(target)
            removed.append(target)
        if removed:
            tree.truncate()
        added = []
        for entry in by_type.get(ProposalType.add, []):
            kp = entry.proposal.add.key_package
            added.append((tree.add_leaf(kp.leaf_node), kp))
        psks = [e.proposal.psk.psk for e in by_type.get(ProposalType.psk, [])]
        ext_init = by_type.get(ProposalType.external_init)
        return _Provisional(tree, extensions, added, psks, removed, ext_init[0].proposal.external_init if ext_init else None,
                            proposals, path_required)

    def _apply_app_data(self, extensions: list[Extension], updates: list[AppliedProposal]) -> list[Extension]:
        data = get_extension(extensions, ExtensionType.app_data_dictionary)
        current: dict[int, bytes] = {}
        if data is not None:
            d = _decode_ext(AppDataDictionary, data, "app_data_dictionary")
            current = {c.component_id: bytes(c.data) for c in d.component_data}  # type: ignore[attr-defined]
        grouped: dict[int, list] = {}
        for entry in updates:
            body = entry.proposal.app_data_update
            grouped.setdefault(body.component_id, []).append(body)
        for component_id, bodies in grouped.items():
            ops = {b.op for b in bodies}
            if len(ops) > 1 or (AppDataUpdateOperation.remove in ops and len(bodies) > 1):
                raise InvalidCommit(f"conflicting AppDataUpdate operations for component {component_id}")
            if AppDataUpdateOperation.remove in ops:
                if component_id not in current:
                    raise InvalidCommit(f"AppDataUpdate removes absent component {component_id}")
                del current[component_id]
            else:
                handler = self.app_data_handlers.get(component_id, _replace_handler)
                try:
                    current[component_id] = handler(current.get(component_id), [bytes(b.update) for b in bodies])
                except MLSError:
                    raise
                except Exception as exc:  # a component's own rules refused the update
                    raise InvalidCommit(f"component {component_id} refused the update: {exc}") from None
        return set_extension(extensions, ExtensionType.app_data_dictionary, app_data_dictionary_extension(current).extension_data)

    # -- commit (public part) -------------------------------------------------------------------------

    def _check_external_resync(self, committer: Sender, prov: _Provisional, path: UpdatePath | None) -> None:
        """An external commit may remove only the joiner's own earlier leaf (§12.4.3.2 resync)."""
        if committer.sender_type != SenderType.new_member_commit or not prov.removed:
            return
        if len(prov.removed) > 1:
            raise InvalidCommit("an external commit may carry at most one Remove")
        old = self.tree.leaf(prov.removed[0])
        if path is None or old is None or old.credential != path.leaf_node.credential:
            raise InvalidCommit("an external commit may only remove a leaf with the joiner's own credential")

    def _validate_path_leaf(self, prov: _Provisional, leaf_index: int, path: UpdatePath) -> list[int]:
        """Check the UpdatePath's public part and merge it into prov.tree; return the filtered path."""
        leaf = path.leaf_node
        validate_leaf_node(self.suite, leaf, expected_source=LeafNodeSource.commit, group_id=self.group_id,
                           leaf_index=leaf_index, required=self.required_capabilities(prov.extensions))
        old = prov.tree.leaf(leaf_index)
        if old is not None and bytes(old.encryption_key) == bytes(leaf.encryption_key):
            raise InvalidCommit("UpdatePath leaf reuses the committer's encryption key")
        new_keys = {bytes(leaf.encryption_key)} | {bytes(n.encryption_key) for n in path.nodes}
        if len(new_keys) != len(path.nodes) + 1:
            raise InvalidCommit("UpdatePath repeats an encryption key")
        for i, node in enumerate(prov.tree.nodes):
            if node is not None and i != 2 * leaf_index and bytes(node.encryption_key) in new_keys:
                raise InvalidCommit("UpdatePath reuses an encryption key already in the tree")
            if i % 2 == 0 and node is not None and i != 2 * leaf_index and bytes(node.signature_key) == bytes(leaf.signature_key):
                raise InvalidCommit("UpdatePath leaf reuses another member's signature key")
        try:
            filtered = prov.tree.apply_path(leaf_index, leaf.replace(), [n.encryption_key for n in path.nodes])
        except InvalidTree as exc:
            raise InvalidCommit(str(exc)) from None
        if prov.tree.expected_leaf_parent_hash(leaf_index, filtered) != bytes(leaf.parent_hash):
            raise InvalidCommit("UpdatePath leaf parent_hash does not match the new tree")
        return filtered

    def _new_context(self, prov: _Provisional, confirmed: bytes) -> GroupContext:
        return GroupContext(version=ProtocolVersion.mls10, cipher_suite=self.suite.suite_id, group_id=self.group_id,
                            epoch=self.epoch + 1, tree_hash=prov.tree.tree_hash(), confirmed_transcript_hash=confirmed,
                            extensions=prov.extensions)


def _path_leaf_index(group: PublicGroup, content: FramedContent, prov: _Provisional) -> int:
    if content.sender.sender_type == SenderType.member:
        return content.sender.leaf_index
    # An external joiner takes the leftmost free leaf after the proposals (RFC 9420 §12.4.3.2).
    return next((i for i in range(prov.tree.n_leaves) if prov.tree.leaf(i) is None), prov.tree.n_leaves)


# ===========================================================================================
# Member view


class Group(PublicGroup):
    """A member's view of an MLS group."""

    own_leaf: int
    signature_priv: bytes
    private_keys: dict[int, tuple[bytes, bytes]]  # node -> (private, public) HPKE keys
    secrets: ks.EpochSecrets
    secret_tree: SecretTree
    resumption_psks: dict[int, bytes]
    external_psks: dict[bytes, bytes]
    pending_updates: dict[bytes, bytes]  # encryption public key -> private key of our Update proposals
    active: bool
    past_epochs: dict[int, _PastEpoch]  # earlier epochs kept for late application messages
    retained_epochs: int

    # -- reference-peer-internal persistence ---------------------------------------------------------

    # A member's state holds secrets and callables (app-data handlers) that RFC 9420 gives no encoding
    # for. The reference peer persists it as a pickle, prefixed by a magic and a format version so that
    # a state written by an incompatible version is refused instead of misread. The bytes are trusted
    # input (the peer's own database), never something received from a peer.
    STATE_MAGIC = b"RPGROUP"
    STATE_VERSION = 1

    def to_bytes(self) -> bytes:
        """This member's whole state (pending commit and proposal cache included), for :meth:`from_bytes`."""
        return self.STATE_MAGIC + bytes([self.STATE_VERSION]) + pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, data: bytes) -> Group:
        """A member saved by :meth:`to_bytes` of this format version; ValueError otherwise."""
        head = len(cls.STATE_MAGIC)
        if data[:head] != cls.STATE_MAGIC or len(data) <= head:
            raise ValueError("not a saved reference-peer Group state")
        if data[head] != cls.STATE_VERSION:
            raise ValueError(f"saved Group state has format version {data[head]}, this code reads {cls.STATE_VERSION}")
        group = pickle.loads(data[head + 1 :])
        if not isinstance(group, cls):
            raise ValueError(f"saved state is a {type(group).__name__}, not a {cls.__name__}")
        return group

    # -- creation ---------------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        suite_id: int,
        credential: Credential,
        signature_priv: bytes | None = None,
        *,
        group_id: bytes | None = None,
        extensions: list[Extension] | None = None,
        capabilities=None,
        leaf_extensions: list[Extension] | None = None,
    ) -> Group:
        suite = cipher_suite(suite_id)
        if signature_priv is None:
            signature_priv, _ = suite.generate_signature_key_pair()
        enc_priv, enc_pub = suite.generate_hpke_key_pair()
        caps = capabilities or default_capabilities([suite.suite_id])
        leaf = make_leaf_node(suite, credential, signature_priv, enc_pub, LeafNodeSource.key_package, capabilities=caps,
                              extensions=leaf_extensions, lifetime=Lifetime(not_before=0, not_after=(1 << 64) - 1))
        g = cls._blank(suite)
        g.tree = RatchetTree.create(suite, leaf)
        g.context = GroupContext(version=ProtocolVersion.mls10, cipher_suite=suite.suite_id, group_id=group_id or os.urandom(16),
                                 epoch=0, tree_hash=g.tree.tree_hash(), confirmed_transcript_hash=b"", extensions=list(extensions or []))
        if extensions:
            g._validate_gce(list(extensions))
        g.own_leaf = 0
        g.signature_priv = signature_priv
        g.private_keys = {0: (enc_priv, enc_pub)}
        g._set_epoch(ks.next_epoch(suite, os.urandom(suite.hash_length), None, None, g.context_bytes()))
        tag = suite.mac(g.secrets.confirmation_key, b"")
        g.interim_transcript_hash = ks.interim_transcript_hash(suite, b"", tag)
        return g

    @classmethod
    def _blank(cls, suite: CipherSuite) -> Group:
        g = cls.__new__(cls)
        g.suite = suite
        g.proposal_cache = {}
        g.check_lifetimes = True
        g.app_data_handlers = {}
        g.resumption_psks = {}
        g.external_psks = {}
        g.pending_updates = {}
        g.private_keys = {}
        g.past_epochs = {}
        g.retained_epochs = RETAINED_EPOCHS
        g.active = True
        g._pending = None
        g._template_leaf = None
        g.secret_tree = None
        g.secrets = None
        return g

    def _set_epoch(self, secrets: ks.EpochSecrets) -> None:
        self.secrets = secrets
        self.secret_tree = SecretTree(self.suite, secrets.encryption_secret, self.tree.n_leaves)
        self.resumption_psks[self.epoch] = secrets.resumption_psk
        self.proposal_cache = {}

    def _retain_current_epoch(self) -> None:
        """Keep what decrypting a late application message of this epoch needs (its secret tree,
        sender-data secret, GroupContext and tree); the oldest retained epoch is dropped."""
        if self.secrets is None or self.retained_epochs <= 0:
            return
        self.past_epochs = dict(self.past_epochs)
        self.past_epochs[self.epoch] = _PastEpoch(self.secret_tree, self.secrets.sender_data_secret, self.context_bytes(), self.tree)
        while len(self.past_epochs) > self.retained_epochs:
            del self.past_epochs[min(self.past_epochs)]

    def _clone(self) -> Group:
        clone = super()._clone()
        clone.private_keys = dict(self.private_keys)
        clone.secret_tree = self.secret_tree.copy() if self.secret_tree is not None else None
        clone.resumption_psks = dict(self.resumption_psks)
        clone.pending_updates = dict(self.pending_updates)
        return clone  # type: ignore[return-value]

    def _adopt(self, other: Group) -> None:
        self.__dict__.update(other.__dict__)

    # -- accessors ------------------------------------------------------------------------------------------

    @property
    def epoch_authenticator(self) -> bytes:
        return self.secrets.epoch_authenticator

    def export_secret(self, label: bytes | str, context: bytes, length: int) -> bytes:
        return ks.mls_exporter(self.suite, self.secrets.exporter_secret, label, context, length)

    def add_external_psk(self, psk_id: bytes, psk: bytes) -> None:
        self.external_psks[bytes(psk_id)] = bytes(psk)

    # -- framing -------------------------------------------------------------------------------------------

    def _content(self, content_type: ContentType, authenticated_data: bytes = b"", **body) -> FramedContent:
        return FramedContent(group_id=self.group_id, epoch=self.epoch, sender=Sender(sender_type=SenderType.member, leaf_index=self.own_leaf),
                             authenticated_data=authenticated_data, content_type=content_type, **body)

    def _frame(self, content: FramedContent, private: bool, confirmation_tag: bytes | None = None) -> tuple[bytes, FramedContentAuthData, int]:
        ctx = self.context_bytes()
        if private:
            sig = framing.sign_content(self.suite, self.signature_priv, WireFormat.mls_private_message, content, ctx)
            msg = framing.encrypt_private(self.suite, self.secret_tree, self.secrets.sender_data_secret, content, self.signature_priv, ctx,
                                          confirmation_tag=confirmation_tag, signature=sig)
            auth = FramedContentAuthData(signature=sig, confirmation_tag=confirmation_tag)
            return MLSMessage(version=ProtocolVersion.mls10, wire_format=WireFormat.mls_private_message, private_message=msg).encode(), auth, WireFormat.mls_private_message
        pub = framing.make_public_message(self.suite, content, self.signature_priv, ctx, membership_key=self.secrets.membership_key,
                                          confirmation_tag=confirmation_tag)
        return MLSMessage(version=ProtocolVersion.mls10, wire_format=WireFormat.mls_public_message, public_message=pub).encode(), pub.auth, WireFormat.mls_public_message

    def protect(self, application_data: bytes, authenticated_data: bytes = b"", padding: int = 0) -> bytes:
        """An application message as a PrivateMessage (MLSMessage bytes)."""
        if not self.active:
            raise MLSError("not a member any more")
        content = self._content(ContentType.application, authenticated_data, application_data=bytes(application_data))
        msg = framing.encrypt_private(self.suite, self.secret_tree, self.secrets.sender_data_secret, content, self.signature_priv,
                                      self.context_bytes(), padding=padding)
        return MLSMessage(version=ProtocolVersion.mls10, wire_format=WireFormat.mls_private_message, private_message=msg).encode()

    # -- proposals ----------------------------------------------------------------------------------------

    def propose(self, proposal: Proposal, *, private: bool = False, authenticated_data: bytes = b"") -> bytes:
        """Send a proposal (cached for a later commit by reference)."""
        content = self._content(ContentType.proposal, authenticated_data, proposal=proposal)
        data, auth, wf = self._frame(content, private)
        ref = proposal_ref(self.suite, wf, content, auth)
        self.proposal_cache[ref] = AppliedProposal(proposal, content.sender, ref)
        return data

    def propose_update(self, *, private: bool = False, leaf_extensions: list[Extension] | None = None) -> bytes:
        enc_priv, enc_pub = self.suite.generate_hpke_key_pair()
        old = self.own_leaf_node()
        leaf = make_leaf_node(self.suite, old.credential, self.signature_priv, enc_pub, LeafNodeSource.update,
                              capabilities=old.capabilities, extensions=old.extensions if leaf_extensions is None else leaf_extensions,
                              group_id=self.group_id, leaf_index=self.own_leaf)
        self.pending_updates[enc_pub] = enc_priv
        return self.propose(Proposal(proposal_type=ProposalType.update, update=UpdateBody(leaf_node=leaf)), private=private)

    # -- commit creation --------------------------------------------------------------------------------------

    def commit(
        self,
        proposals: list[Proposal] = (),  # type: ignore[assignment]
        *,
        by_reference: list[bytes] | None = None,
        include_cached: bool = True,
        force_path: bool = True,
        private: bool = False,
        authenticated_data: bytes = b"",
        ratchet_tree_in_welcome: bool = True,
        validate: bool = True,
        tamper: Tamper | None = None,
    ) -> CommitOutput:
        """Commit the given proposals by value plus cached ones by reference. The group stays in
        its epoch until ``merge_pending_commit`` (or ``discard_pending_commit``)."""
        if not self.active:
            raise MLSError("not a member any more")
        committer = Sender(sender_type=SenderType.member, leaf_index=self.own_leaf)
        refs = list(by_reference) if by_reference is not None else (list(self.proposal_cache) if include_cached else [])
        # Our own cached Updates cannot be committed by us (§12.2); leave them out.
        refs = [r for r in refs if not (self.proposal_cache[r].proposal.proposal_type == ProposalType.update
                                        and self.proposal_cache[r].sender.sender_type == SenderType.member
                                        and self.proposal_cache[r].sender.leaf_index == self.own_leaf)]
        entries = [self.proposal_cache[r] for r in refs] + [AppliedProposal(p, committer, None) for p in proposals]
        por = [ProposalOrRef(type=ProposalOrRefType.reference, reference=r) for r in refs]
        por += [ProposalOrRef(type=ProposalOrRefType.proposal, proposal=p) for p in proposals]
        prov = self._apply_proposals(entries, committer, validate=validate)
        with framing.content_cache():
            return self._build_commit(prov, por, committer, force_path or prov.path_required, private, authenticated_data,
                                      ratchet_tree_in_welcome, tamper)

    def _build_commit(self, prov: _Provisional, por: list[ProposalOrRef], committer: Sender, with_path: bool, private: bool,
                      authenticated_data: bytes, ratchet_tree_in_welcome: bool, tamper: Tamper | None,
                      init_secret: bytes | None = None) -> CommitOutput:
        suite = self.suite
        leaf_index = committer.leaf_index if committer.sender_type == SenderType.member else _path_leaf_index(self, FramedContent(
            group_id=b"", epoch=0, sender=committer, authenticated_data=b"", content_type=ContentType.commit), prov)
        path = None
        commit_secret = None
        new_private: dict[int, tuple[bytes, bytes]] = {}
        path_secrets: dict[int, bytes] = {}
        if tamper and tamper.omit_path:
            with_path = False
        if with_path:
            path, commit_secret, new_private, path_secrets = self._create_path(prov, leaf_index)
            if tamper and tamper.bad_parent_hash:
                # A correctly signed leaf whose parent_hash does not chain to the new path nodes.
                wrong = path.leaf_node.replace(parent_hash=bytes([path.leaf_node.parent_hash[0] ^ 1]) + bytes(path.leaf_node.parent_hash[1:]))
                path = path.replace(leaf_node=sign_leaf_node(suite, self.signature_priv, wrong, self.group_id, leaf_index))
        commit = Commit(proposals=por, path=path)
        sender = committer
        epoch = self.epoch + (tamper.epoch_delta if tamper else 0)
        content = FramedContent(group_id=self.group_id, epoch=epoch, sender=sender, authenticated_data=authenticated_data,
                                content_type=ContentType.commit, commit=commit)
        wf = WireFormat.mls_private_message if private else WireFormat.mls_public_message
        ctx = self.context_bytes()
        sig = framing.sign_content(suite, self.signature_priv, wf, content, ctx)
        if tamper and tamper.bad_signature:
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        confirmed = ks.confirmed_transcript_hash(suite, self.interim_transcript_hash, framing.confirmed_hash_input(wf, content, sig))
        new_context = self._new_context(prov, confirmed)
        new_context_bytes = new_context.encode()
        psk_secret = self._psk_secret(prov.psks)
        secrets = ks.next_epoch(suite, init_secret or self.secrets.init_secret, commit_secret, psk_secret, new_context_bytes)
        tag = suite.mac(secrets.confirmation_key, confirmed)
        if tamper and tamper.bad_confirmation_tag:
            tag = bytes([tag[0] ^ 1]) + tag[1:]
        if private:
            msg = framing.encrypt_private(suite, self.secret_tree, self.secrets.sender_data_secret, content, self.signature_priv, ctx,
                                          confirmation_tag=tag, signature=sig)
            wire = MLSMessage(version=ProtocolVersion.mls10, wire_format=wf, private_message=msg).encode()
        else:
            pub = framing.make_public_message(suite, content, self.signature_priv, ctx, membership_key=self.secrets.membership_key,
                                              confirmation_tag=tag, signature=sig)
            if tamper and tamper.bad_membership_tag and pub.membership_tag:
                pub = pub.replace(membership_tag=bytes([pub.membership_tag[0] ^ 1]) + bytes(pub.membership_tag[1:]))
            wire = MLSMessage(version=ProtocolVersion.mls10, wire_format=wf, public_message=pub).encode()
        # The next state.
        nxt = self._clone()
        nxt._retain_current_epoch()
        nxt.tree = prov.tree
        nxt.context = new_context
        nxt.own_leaf = leaf_index
        nxt.interim_transcript_hash = ks.interim_transcript_hash(suite, confirmed, tag)
        nxt.private_keys.update(new_private)
        nxt._prune_private_keys()
        nxt._set_epoch(secrets)
        nxt.pending_updates = {}
        group_info = nxt._group_info(tag, ratchet_tree=True, external_pub=True)
        welcome = None
        if prov.added:
            # The Welcome's GroupInfo is the published one when it may carry the tree.
            shared = group_info if ratchet_tree_in_welcome else None
            welcome = nxt._welcome(prov, secrets, tag, path_secrets, ratchet_tree_in_welcome, leaf_index, shared)
        self._pending = nxt
        return CommitOutput(wire, welcome, group_info, prov.applied)

    def merge_pending_commit(self) -> None:
        if self._pending is None:
            raise MLSError("no pending commit")
        self._adopt(self._pending)
        self._pending = None

    def discard_pending_commit(self) -> None:
        self._pending = None

    def _psk_secret(self, psks: list[PreSharedKeyID]) -> bytes | None:
        if not psks:
            return None
        pairs = []
        for pid in psks:
            if pid.psktype == PSKType.external:
                value = self.external_psks.get(bytes(pid.psk_id))
                if value is None:
                    raise InvalidProposal(f"unknown external PSK {bytes(pid.psk_id).hex()}")
            elif pid.psktype == PSKType.resumption:
                if pid.usage != ResumptionPSKUsage.application or bytes(pid.psk_group_id) != self.group_id:
                    raise InvalidProposal("only application resumption PSKs of this group are supported")
                value = self.resumption_psks.get(pid.psk_epoch)
                if value is None:
                    raise InvalidProposal(f"no resumption PSK for epoch {pid.psk_epoch}")
            else:
                raise InvalidProposal(f"PSK type {pid.psktype.name} is not supported")
            if len(pid.psk_nonce) != self.suite.hash_length:
                raise InvalidProposal("psk_nonce length must equal the hash length")
            pairs.append((pid, value))
        return ks.psk_secret(self.suite, pairs)

    def _create_path(self, prov: _Provisional, leaf_index: int) -> tuple[UpdatePath, bytes, dict[int, tuple[bytes, bytes]], dict[int, bytes]]:
        suite = self.suite
        tree = prov.tree
        while leaf_index >= tree.n_leaves:
            tree._extend()
        filtered = tree.filtered_direct_path(leaf_index)
        leaf_priv, leaf_pub = suite.generate_hpke_key_pair()
        secrets_by_node: dict[int, bytes] = {}
        keys: dict[int, tuple[bytes, bytes]] = {2 * leaf_index: (leaf_priv, leaf_pub)}
        secret = os.urandom(suite.hash_length)
        pubs = []
        for node in filtered:
            secrets_by_node[node] = secret
            priv, pub = suite.derive_key_pair(suite.derive_secret(secret, "node"))
            keys[node] = (priv, pub)
            pubs.append(pub)
            secret = suite.derive_secret(secret, "path")
        commit_secret = secret
        # The new leaf keeps the committer's credential, capabilities and extensions: from the
        # joiner's template in an external commit, else from its current leaf.
        template = self._template_leaf if self._template_leaf is not None else self.tree.leaf(self.own_leaf)
        # Merge with a placeholder leaf to learn the parent hash, then sign the real leaf.
        placeholder = template.replace(encryption_key=leaf_pub, leaf_node_source=LeafNodeSource.commit, lifetime=None, parent_hash=b"",
                                       signature=b"", signature_key=self.suite.signature_public_key(self.signature_priv))
        tree.apply_path(leaf_index, placeholder, pubs)
        parent_hash = tree.expected_leaf_parent_hash(leaf_index, filtered)
        leaf = sign_leaf_node(suite, self.signature_priv, placeholder.replace(parent_hash=parent_hash), self.group_id, leaf_index)
        tree.set_node(2 * leaf_index, leaf)
        provisional = GroupContext(version=ProtocolVersion.mls10, cipher_suite=suite.suite_id, group_id=self.group_id, epoch=self.epoch + 1,
                                   tree_hash=tree.tree_hash(), confirmed_transcript_hash=self.context.confirmed_transcript_hash,
                                   extensions=prov.extensions).encode()
        excluded = {2 * i for i, _ in prov.added}
        nodes = []
        n = tree.n_leaves
        for node, pub in zip(filtered, pubs, strict=True):
            child = tm.left(node) if tm.is_in_subtree(tm.left(node), 2 * leaf_index) else tm.right(node)
            copath_child = tm.right(node) if child == tm.left(node) else tm.left(node)
            cts = []
            for r in tree.resolution(copath_child):
                if r in excluded:
                    continue
                kem, ct = suite.encrypt_with_label(tree.nodes[r].encryption_key, "UpdatePathNode", provisional, secrets_by_node[node])
                cts.append(HPKECiphertext(kem_output=kem, ciphertext=ct))
            nodes.append(UpdatePathNode(encryption_key=pub, encrypted_path_secret=cts))
        del n
        return UpdatePath(leaf_node=leaf, nodes=nodes), commit_secret, keys, secrets_by_node

    def _prune_private_keys(self) -> None:
        keep = {}
        for node, (priv, pub) in self.private_keys.items():
            if node < len(self.tree.nodes):
                tnode = self.tree.nodes[node]
                if tnode is not None and bytes(tnode.encryption_key) == pub:
                    keep[node] = (priv, pub)
        self.private_keys = keep

    # -- GroupInfo and Welcome ----------------------------------------------------------------------------------

    def _group_info(self, confirmation_tag: bytes, *, ratchet_tree: bool, external_pub: bool, extra: list[Extension] | None = None) -> bytes:
        exts = list(extra or [])
        if ratchet_tree:
            exts.append(Extension(extension_type=ExtensionType.ratchet_tree, extension_data=self.tree.encode()))
        if external_pub:
            exts.append(Extension(extension_type=ExtensionType.external_pub, extension_data=vl(self.secrets.external_key_pair(self.suite)[1])))
        gi = GroupInfo(group_context=self.context, extensions=exts, confirmation_tag=confirmation_tag, signer=self.own_leaf, signature=b"")
        gi = gi.replace(signature=self.suite.sign_with_label(self.signature_priv, "GroupInfoTBS", gi.encode()[:-1]))
        return MLSMessage(version=ProtocolVersion.mls10, wire_format=WireFormat.mls_group_info, group_info=gi).encode()

    def group_info(self, *, ratchet_tree: bool = True, external_pub: bool = True) -> bytes:
        """A signed GroupInfo for the current epoch (for external joins)."""
        tag = self.suite.mac(self.secrets.confirmation_key, bytes(self.context.confirmed_transcript_hash))
        return self._group_info(tag, ratchet_tree=ratchet_tree, external_pub=external_pub)

    def _welcome(self, prov: _Provisional, secrets: ks.EpochSecrets, tag: bytes, path_secrets: dict[int, bytes],
                 ratchet_tree: bool, committer_leaf: int, group_info: bytes | None = None) -> bytes:
        suite = self.suite
        if group_info is None:
            group_info = self._group_info(tag, ratchet_tree=ratchet_tree, external_pub=False)
        gi_bytes = group_info[4:]  # MLSMessage header: version and wire_format, 2 octets each
        key, nonce = ks.welcome_key_nonce(suite, secrets.welcome_secret)
        encrypted_group_info = suite.aead_encrypt(key, nonce, b"", gi_bytes)
        entries = []
        for leaf_index, kp in prov.added:
            path_secret = None
            if path_secrets:
                ancestor = tm.common_ancestor(leaf_index, committer_leaf)
                if ancestor in path_secrets:
                    path_secret = PathSecret(path_secret=path_secrets[ancestor])
            gs = GroupSecrets(joiner_secret=secrets.joiner_secret, path_secret=path_secret, psks=list(prov.psks))
            kem, ct = suite.encrypt_with_label(kp.init_key, "Welcome", encrypted_group_info, gs.encode())
            entries.append(EncryptedGroupSecrets(new_member=key_package_ref(suite, kp), encrypted_group_secrets=HPKECiphertext(kem_output=kem, ciphertext=ct)))
        welcome = Welcome(cipher_suite=suite.suite_id, secrets=entries, encrypted_group_info=encrypted_group_info)
        return MLSMessage(version=ProtocolVersion.mls10, wire_format=WireFormat.mls_welcome, welcome=welcome).encode()

    @classmethod
    def join(cls, welcome: bytes | MLSMessage, bundle: KeyPackageBundle, *, ratchet_tree: bytes | None = None,
             external_psks: dict[bytes, bytes] | None = None, check_lifetimes: bool = True) -> Group:
        try:
            return cls._join(welcome, bundle, ratchet_tree, external_psks or {}, check_lifetimes)
        except (DecodeError, EncodeError) as exc:
            raise InvalidWelcome(f"malformed Welcome content: {exc}") from None

    @classmethod
    def _join(cls, welcome, bundle, ratchet_tree, external_psks, check_lifetimes) -> Group:
        msg = decode_message(welcome)
        if msg.welcome is None:
            raise InvalidWelcome("MLSMessage is not a Welcome")
        w = msg.welcome
        suite = cipher_suite(w.cipher_suite)
        kp = bundle.key_package
        if kp.cipher_suite != w.cipher_suite:
            raise InvalidWelcome("Welcome cipher suite differs from the KeyPackage's")
        ref = key_package_ref(suite, kp)
        entry = next((e for e in w.secrets if bytes(e.new_member) == ref), None)
        if entry is None:
            raise InvalidWelcome("the Welcome has no secrets for this KeyPackage")
        egi = bytes(w.encrypted_group_info)
        try:
            gs_bytes = suite.decrypt_with_label(bundle.init_priv, "Welcome", egi, entry.encrypted_group_secrets.kem_output,
                                                entry.encrypted_group_secrets.ciphertext)
        except CryptoError:
            raise InvalidWelcome("cannot decrypt GroupSecrets") from None
        gs = GroupSecrets.decode(gs_bytes)
        g = cls._blank(suite)
        g.external_psks = dict(external_psks)
        g.check_lifetimes = check_lifetimes
        psk_pairs = []
        for pid in gs.psks:
            if pid.psktype != PSKType.external or bytes(pid.psk_id) not in g.external_psks:
                raise InvalidWelcome("Welcome needs a PSK this client does not have")
            psk_pairs.append((pid, g.external_psks[bytes(pid.psk_id)]))
        psk_secret = ks.psk_secret(suite, psk_pairs) if psk_pairs else None
        wsecret = ks.welcome_secret(suite, gs.joiner_secret, psk_secret or bytes(suite.hash_length))
        key, nonce = ks.welcome_key_nonce(suite, wsecret)
        try:
            gi = GroupInfo.decode(suite.aead_decrypt(key, nonce, b"", egi))
        except CryptoError:
            raise InvalidWelcome("cannot decrypt GroupInfo") from None
        gc = gi.group_context
        if gc.cipher_suite != suite.suite_id or gc.version != ProtocolVersion.mls10:
            raise InvalidWelcome("GroupInfo cipher suite or version mismatch")
        tree_data = get_extension(gi.extensions, ExtensionType.ratchet_tree)
        if tree_data is None:
            tree_data = ratchet_tree
        if tree_data is None:
            raise InvalidWelcome("no ratchet tree in the Welcome and none supplied")
        try:
            tree = RatchetTree.decode(suite, tree_data)
        except (InvalidTree, MalformedMessage) as exc:
            raise InvalidWelcome(f"ratchet tree: {exc}") from None
        g.tree = tree
        g.context = gc
        signer = tree.leaf(gi.signer)
        if signer is None:
            raise InvalidWelcome("GroupInfo signer is not a member")
        if not suite.verify_with_label(signer.signature_key, "GroupInfoTBS", gi.encode()[: -len(vl(gi.signature))], gi.signature):
            raise InvalidWelcome("GroupInfo signature does not verify")
        g._verify_tree(tree, gc)
        own = next((i for i, leaf in tree.leaves() if leaf == kp.leaf_node), None)
        if own is None:
            raise InvalidWelcome("own leaf not found in the tree")
        g.own_leaf = own
        g.signature_priv = bundle.signature_priv
        g.private_keys = {2 * own: (bundle.encryption_priv, bytes(kp.leaf_node.encryption_key))}
        if gs.path_secret is not None:
            g._install_path_secret(tm.common_ancestor(own, gi.signer), bytes(gs.path_secret.path_secret))
        secrets = ks.epoch_from_joiner(suite, gs.joiner_secret, psk_secret, g.context_bytes())
        if suite.mac(secrets.confirmation_key, bytes(gc.confirmed_transcript_hash)) != bytes(gi.confirmation_tag):
            raise InvalidWelcome("GroupInfo confirmation_tag does not verify")
        g._set_epoch(secrets)
        g.interim_transcript_hash = ks.interim_transcript_hash(suite, bytes(gc.confirmed_transcript_hash), bytes(gi.confirmation_tag))
        return g

    def _verify_tree(self, tree: RatchetTree, gc: GroupContext) -> None:
        if tree.tree_hash() != bytes(gc.tree_hash):
            raise InvalidWelcome("ratchet tree hash does not match the GroupContext")
        try:
            tree.verify_parent_hashes()
            tree.verify_structure()
        except InvalidTree as exc:
            raise InvalidWelcome(str(exc)) from None
        required = self.required_capabilities(gc.extensions)
        for index, leaf in tree.leaves():
            try:
                validate_leaf_node(self.suite, leaf, expected_source=None, group_id=bytes(gc.group_id), leaf_index=index,
                                   required=required, check_lifetime=False)
            except InvalidKeyPackage as exc:
                raise InvalidWelcome(f"leaf {index}: {exc}") from None

    def _install_path_secret(self, start: int, secret: bytes) -> None:
        n = self.tree.n_leaves
        node = start
        while True:
            tnode = self.tree.nodes[node]
            if tnode is not None:
                priv, pub = self.suite.derive_key_pair(self.suite.derive_secret(secret, "node"))
                if pub != bytes(tnode.encryption_key):
                    raise InvalidWelcome(f"path secret does not match the public key of node {node}")
                self.private_keys[node] = (priv, pub)
                secret = self.suite.derive_secret(secret, "path")
            if node == tm.root(n):
                break
            node = tm.parent(node, n)

    # -- external join ---------------------------------------------------------------------------------

    @classmethod
    def join_external(cls, group_info: bytes | MLSMessage, credential: Credential, signature_priv: bytes | None = None, *,
                      ratchet_tree: bytes | None = None, remove_prior: int | None = None, capabilities=None,
                      leaf_extensions: list[Extension] | None = None,
                      authenticated_data: bytes = b"", proposals_by_value: list[Proposal] | tuple[Proposal, ...] = ()) -> tuple[Group, bytes]:
        """Join by external commit (§12.4.3.2). Returns (the joined group, the commit to send).
        ``proposals_by_value``: more proposals in the commit (e.g. AppDataUpdate, mls-extensions-09 §4.7)."""
        try:
            msg = decode_message(group_info)
            if msg.group_info is None:
                raise InvalidWelcome("MLSMessage is not a GroupInfo")
            gi = msg.group_info
            suite = cipher_suite(gi.group_context.cipher_suite)
            if signature_priv is None:
                signature_priv, _ = suite.generate_signature_key_pair()
            tree_data = get_extension(gi.extensions, ExtensionType.ratchet_tree) or ratchet_tree
            ext_pub = get_extension(gi.extensions, ExtensionType.external_pub)
            if tree_data is None or ext_pub is None:
                raise InvalidWelcome("GroupInfo lacks the ratchet tree or external_pub")
            external_pub = decode_value(_OPAQUE, ext_pub)
            g = cls._blank(suite)
            g.tree = RatchetTree.decode(suite, tree_data)
            g.context = gi.group_context
            signer = g.tree.leaf(gi.signer)
            if signer is None or not suite.verify_with_label(signer.signature_key, "GroupInfoTBS", gi.encode()[: -len(vl(gi.signature))], gi.signature):
                raise InvalidWelcome("GroupInfo signature does not verify")
            g._verify_tree(g.tree, gi.group_context)
        except (DecodeError, EncodeError) as exc:
            raise InvalidWelcome(f"malformed GroupInfo: {exc}") from None
        g.signature_priv = signature_priv
        g.interim_transcript_hash = ks.interim_transcript_hash(suite, bytes(gi.group_context.confirmed_transcript_hash), bytes(gi.confirmation_tag))
        kem_output, init_secret = suite.export_sender(external_pub, b"", b"MLS 1.0 external init secret", suite.hash_length)
        proposals = [AppliedProposal(Proposal(proposal_type=ProposalType.external_init, external_init=ExternalInit(kem_output=kem_output)),
                                     Sender(sender_type=SenderType.new_member_commit), None)]
        if remove_prior is not None:
            proposals.append(AppliedProposal(remove_proposal(remove_prior), Sender(sender_type=SenderType.new_member_commit), None))
        proposals += [AppliedProposal(p, Sender(sender_type=SenderType.new_member_commit), None) for p in proposals_by_value]
        committer = Sender(sender_type=SenderType.new_member_commit)
        prov = g._apply_proposals(proposals, committer)
        # A template leaf for the path: the joiner's credential and capabilities.
        enc_priv, enc_pub = suite.generate_hpke_key_pair()
        g.own_leaf = _path_leaf_index(g, FramedContent(group_id=b"", epoch=0, sender=committer, authenticated_data=b"",
                                                       content_type=ContentType.commit), prov)
        template = make_leaf_node(suite, credential, signature_priv, enc_pub, LeafNodeSource.key_package,
                                  capabilities=capabilities or default_capabilities([suite.suite_id]),
                                  extensions=leaf_extensions, lifetime=Lifetime(not_before=0, not_after=1))
        g._template_leaf = template
        por = [ProposalOrRef(type=ProposalOrRefType.proposal, proposal=p.proposal) for p in proposals]
        g.secrets = None  # type: ignore[assignment]
        out = g._build_commit_external(prov, por, committer, init_secret, authenticated_data)
        g.merge_pending_commit()
        g._template_leaf = None
        return g, out

    def own_leaf_node(self) -> LeafNode:
        leaf = self.tree.leaf(self.own_leaf)
        if leaf is None:
            return self._template_leaf  # external joiner before its leaf exists
        return leaf

    def _build_commit_external(self, prov, por, committer, init_secret, authenticated_data) -> bytes:
        suite = self.suite
        leaf_index = self.own_leaf
        path, commit_secret, new_private, _ = self._create_path(prov, leaf_index)
        content = FramedContent(group_id=self.group_id, epoch=self.epoch, sender=committer, authenticated_data=authenticated_data,
                                content_type=ContentType.commit, commit=Commit(proposals=por, path=path))
        ctx = self.context_bytes()
        sig = framing.sign_content(suite, self.signature_priv, WireFormat.mls_public_message, content, ctx)
        confirmed = ks.confirmed_transcript_hash(suite, self.interim_transcript_hash,
                                                 framing.confirmed_hash_input(WireFormat.mls_public_message, content, sig))
        new_context = self._new_context(prov, confirmed)
        secrets = ks.next_epoch(suite, init_secret, commit_secret, self._psk_secret(prov.psks), new_context.encode())
        tag = suite.mac(secrets.confirmation_key, confirmed)
        pub = PublicMessage(content=content, auth=FramedContentAuthData(signature=sig, confirmation_tag=tag), membership_tag=None)
        nxt = self._clone()
        nxt.tree = prov.tree
        nxt.context = new_context
        nxt.interim_transcript_hash = ks.interim_transcript_hash(suite, confirmed, tag)
        nxt.private_keys.update(new_private)
        nxt._prune_private_keys()
        nxt._set_epoch(secrets)
        self._pending = nxt
        return MLSMessage(version=ProtocolVersion.mls10, wire_format=WireFormat.mls_public_message, public_message=pub).encode()

    # -- processing ---------------------------------------------------------------------------------------

    def process(self, message: bytes | MLSMessage) -> Received:
        """Authenticate and apply one incoming MLSMessage (PublicMessage or PrivateMessage)."""
        if not self.active:
            raise MLSError("not a member any more")
        msg = decode_message(message)
        if msg.private_message is not None and msg.private_message.content_type == ContentType.application:
            # Application data only advances a secret tree: copy just that, not the public state.
            work = copy.copy(self)
            work.secret_tree = self.secret_tree.copy()
            past = self.past_epochs.get(msg.private_message.epoch)
            if past is not None:
                work.past_epochs = {**self.past_epochs, msg.private_message.epoch: past.with_secret_tree(past.secret_tree.copy())}
        else:
            work = self._clone()
        try:
            with framing.content_cache():
                result = work._process(msg)
        except (DecodeError, EncodeError) as exc:
            raise MalformedMessage(str(exc)) from None
        except (AssertionError, IndexError, KeyError, TypeError, AttributeError) as exc:
            # Defence in depth: a structural surprise in hostile input is still the caller's bad input.
            raise MalformedMessage(f"unprocessable message: {type(exc).__name__}: {exc}") from None
        self._adopt(work)
        return result

    def _process(self, message: bytes | MLSMessage) -> Received:
        msg = decode_message(message)
        if msg.public_message is not None:
            pub = msg.public_message
            self._verify_public(pub, self.secrets.membership_key)
            content, auth, wf = pub.content, pub.auth, WireFormat.mls_public_message
        elif msg.private_message is not None:
            pm = msg.private_message
            past = self.past_epochs.get(pm.epoch) if pm.content_type == ContentType.application else None
            if past is not None and bytes(pm.group_id) == self.group_id:
                return self._process_late_application(pm, past)
            self._check_header(pm.group_id, pm.epoch)
            content, auth = framing.decrypt_private(self.suite, self.secret_tree, self.secrets.sender_data_secret, pm)
            leaf = self.tree.leaf(content.sender.leaf_index)
            if leaf is None:
                raise UnknownSender(f"leaf {content.sender.leaf_index} is not a member")
            if not framing.verify_content(self.suite, leaf.signature_key, WireFormat.mls_private_message, content, self.context_bytes(), auth.signature):
                raise CryptoError("PrivateMessage signature does not verify")
            if content.content_type == ContentType.commit and not auth.confirmation_tag:
                raise InvalidCommit("Commit without confirmation_tag")
            wf = WireFormat.mls_private_message
        else:
            raise MalformedMessage("not a PublicMessage or PrivateMessage")
        if content.sender.sender_type == SenderType.member and content.sender.leaf_index == self.own_leaf and content.content_type == ContentType.commit:
            raise InvalidCommit("a Commit from ourselves: use merge_pending_commit")
        if content.content_type == ContentType.application:
            return Received("application", content.sender, bytes(content.authenticated_data), application_data=bytes(content.application_data), epoch=self.epoch)
        if content.content_type == ContentType.proposal:
            entry = self._proposal_from_message(content, auth, wf)
            return Received("proposal", content.sender, bytes(content.authenticated_data), proposal=content.proposal, proposal_ref=entry.ref, epoch=self.epoch)
        return self._process_commit(content, auth, wf)

    def _process_late_application(self, pm: PrivateMessage, past: _PastEpoch) -> Received:
        """An application message of a retained earlier epoch, checked against that epoch's state."""
        content, auth = framing.decrypt_private(self.suite, past.secret_tree, past.sender_data_secret, pm)
        leaf = past.tree.leaf(content.sender.leaf_index)
        if leaf is None:
            raise UnknownSender(f"leaf {content.sender.leaf_index} was not a member in epoch {pm.epoch}")
        if not framing.verify_content(self.suite, leaf.signature_key, WireFormat.mls_private_message, content, past.context, auth.signature):
            raise CryptoError("PrivateMessage signature does not verify")
        return Received("application", content.sender, bytes(content.authenticated_data),
                        application_data=bytes(content.application_data), epoch=pm.epoch)

    def _process_commit(self, content: FramedContent, auth: FramedContentAuthData, wf: int) -> Received:
        suite = self.suite
        commit = content.commit
        committer = content.sender
        if committer.sender_type not in (SenderType.member, SenderType.new_member_commit):
            raise InvalidCommit("a Commit must come from a member or a new member")
        proposals = self._resolve_proposals(commit, committer)
        prov = self._apply_proposals(proposals, committer)
        if prov.path_required and commit.path is None:
            raise InvalidCommit("this Commit requires an UpdatePath")
        self._check_external_resync(committer, prov, commit.path)
        removed_self = self.own_leaf in prov.removed
        own_leaf = prov.tree.leaf(self.own_leaf)
        if own_leaf is not None and bytes(own_leaf.encryption_key) in self.pending_updates:
            key = bytes(own_leaf.encryption_key)
            self.private_keys[2 * self.own_leaf] = (self.pending_updates[key], key)
        commit_secret = None
        new_private: dict[int, tuple[bytes, bytes]] = {}
        path_leaf = _path_leaf_index(self, content, prov)
        if commit.path is not None:
            filtered = self._validate_path_leaf(prov, path_leaf, commit.path)
            if not removed_self:
                commit_secret, new_private = self._decrypt_path(prov, path_leaf, filtered, commit.path)
        confirmed = ks.confirmed_transcript_hash(suite, self.interim_transcript_hash, framing.confirmed_hash_input(wf, content, auth.signature))
        new_context = self._new_context(prov, confirmed)
        if removed_self:
            self.active = False
            self.tree = prov.tree
            self.context = new_context
            return Received("commit", committer, bytes(content.authenticated_data), applied=prov.applied, removed_self=True, epoch=self.epoch)
        init_secret = self.secrets.init_secret
        if prov.external_init is not None:
            ext_priv, _ = self.secrets.external_key_pair(suite)
            init_secret = suite.export_receiver(prov.external_init.kem_output, ext_priv, b"", b"MLS 1.0 external init secret", suite.hash_length)
        secrets = ks.next_epoch(suite, init_secret, commit_secret, self._psk_secret(prov.psks), new_context.encode())
        if suite.mac(secrets.confirmation_key, confirmed) != bytes(auth.confirmation_tag):
            raise CryptoError("confirmation_tag does not verify")
        # Adopt the new epoch.
        self._retain_current_epoch()
        self.tree = prov.tree
        self.context = new_context
        self.interim_transcript_hash = ks.interim_transcript_hash(suite, confirmed, bytes(auth.confirmation_tag))
        own_leaf = self.tree.leaf(self.own_leaf)
        if own_leaf is not None and bytes(own_leaf.encryption_key) in self.pending_updates:
            key = bytes(own_leaf.encryption_key)
            self.private_keys[2 * self.own_leaf] = (self.pending_updates[key], key)
        self.pending_updates = {}
        self.private_keys.update(new_private)
        self._prune_private_keys()
        self._set_epoch(secrets)
        return Received("commit", committer, bytes(content.authenticated_data), applied=prov.applied, epoch=self.epoch)

    def _decrypt_path(self, prov: _Provisional, sender_leaf: int, filtered: list[int], path: UpdatePath) -> tuple[bytes, dict[int, tuple[bytes, bytes]]]:
        suite = self.suite
        tree = prov.tree
        own_node = 2 * self.own_leaf
        position = next((i for i, node in enumerate(filtered) if tm.is_in_subtree(node, own_node)), None)
        if position is None:
            raise InvalidCommit("no node of the UpdatePath covers this member")
        node = filtered[position]
        copath_child = tm.left(node) if tm.is_in_subtree(tm.left(node), own_node) else tm.right(node)
        excluded = {2 * i for i, _ in prov.added}
        resolution = [r for r in tree.resolution(copath_child) if r not in excluded]
        cts = path.nodes[position].encrypted_path_secret
        if len(cts) != len(resolution):
            raise InvalidCommit("UpdatePath node has the wrong number of ciphertexts")
        holder = next((i for i, r in enumerate(resolution)
                       if r in self.private_keys and self.private_keys[r][1] == bytes(tree.nodes[r].encryption_key)), None)
        if holder is None:
            raise InvalidCommit("no private key for any node in the copath resolution")
        priv = self.private_keys[resolution[holder]][0]
        provisional = GroupContext(version=ProtocolVersion.mls10, cipher_suite=suite.suite_id, group_id=self.group_id, epoch=self.epoch + 1,
                                   tree_hash=tree.tree_hash(), confirmed_transcript_hash=self.context.confirmed_transcript_hash,
                                   extensions=prov.extensions).encode()
        ct = cts[holder]
        secret = suite.decrypt_with_label(priv, "UpdatePathNode", provisional, ct.kem_output, ct.ciphertext)
        keys: dict[int, tuple[bytes, bytes]] = {}
        for i in range(position, len(filtered)):
            kpriv, kpub = suite.derive_key_pair(suite.derive_secret(secret, "node"))
            if kpub != bytes(path.nodes[i].encryption_key):
                raise InvalidCommit(f"derived public key of node {filtered[i]} does not match the UpdatePath")
            keys[filtered[i]] = (kpriv, kpub)
            secret = suite.derive_secret(secret, "path")
        return secret, keys


@dataclass
class Tamper:
    """One deliberate defect for crafting negative-test commits (see craft.py)."""

    epoch_delta: int = 0
    bad_signature: bool = False
    bad_membership_tag: bool = False
    bad_confirmation_tag: bool = False
    omit_path: bool = False  # no UpdatePath even where the proposals require one
    bad_parent_hash: bool = False  # the UpdatePath leaf's parent_hash is wrong (leaf re-signed)


def _opaque_codec() -> object:
    from ..wire.codec import opaque

    return opaque


_OPAQUE = _opaque_codec()
_ = (RatchetTreeCodec, verify_leaf_node_signature, DEFAULT_PROPOSALS)


# -- messages from non-members -------------------------------------------------------------------------


def external_proposal(suite_id: int, group_id: bytes, epoch: int, sender_index: int, signature_priv: bytes, proposal: Proposal,
                      authenticated_data: bytes = b"") -> bytes:
    """A proposal from an external sender listed in the group's external_senders extension
    (RFC 9420 §12.1.8): a PublicMessage with sender type external, signed without the GroupContext."""
    suite = cipher_suite(suite_id)
    content = FramedContent(group_id=group_id, epoch=epoch, sender=Sender(sender_type=SenderType.external, sender_index=sender_index),
                            authenticated_data=authenticated_data, content_type=ContentType.proposal, proposal=proposal)
    pub = framing.make_public_message(suite, content, signature_priv, None)
    return MLSMessage(version=ProtocolVersion.mls10, wire_format=WireFormat.mls_public_message, public_message=pub).encode()


def new_member_add_proposal(bundle: KeyPackageBundle, group_id: bytes, epoch: int, authenticated_data: bytes = b"") -> bytes:
    """A would-be member's request to be added (sender type new_member_proposal, §12.1.8)."""
    suite = bundle.suite
    content = FramedContent(group_id=group_id, epoch=epoch, sender=Sender(sender_type=SenderType.new_member_proposal),
                            authenticated_data=authenticated_data, content_type=ContentType.proposal,
                            proposal=add_proposal(bundle.key_package))
    pub = framing.make_public_message(suite, content, bundle.signature_priv, None)
    return MLSMessage(version=ProtocolVersion.mls10, wire_format=WireFormat.mls_public_message, public_message=pub).encode()
