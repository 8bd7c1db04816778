"""The hub view (RFC 9420 §15 "delivery service" role): the public state a server can hold (ratchet
tree, GroupContext, interim transcript hash) and the checks it can make without any group secret:
signatures against leaf keys, epoch and group, proposal and commit validity, UpdatePath parent
hashes. It advances epochs by applying commits exactly as members do, minus the secrets."""

from __future__ import annotations

from ..wire.codec import DecodeError, EncodeError
from ..wire.mls import ContentType, ExtensionType, SenderType, WireFormat
from . import framing
from . import key_schedule as ks
from .crypto import cipher_suite, vl
from .errors import CryptoError, InvalidCommit, InvalidTree, InvalidWelcome, MalformedMessage, MLSError
from .group import Group, PublicGroup, Received, _path_leaf_index, decode_message, get_extension
from .tree import RatchetTree


class HubView(PublicGroup):
    """Public group state; ``process`` validates a handshake and, for a commit, advances the epoch."""

    @classmethod
    def from_group(cls, group: PublicGroup) -> HubView:
        hub = cls.__new__(cls)
        hub.suite = group.suite
        hub.context = group.context
        hub.tree = group.tree.copy()
        hub.interim_transcript_hash = group.interim_transcript_hash
        hub.proposal_cache = dict(group.proposal_cache)
        hub.check_lifetimes = group.check_lifetimes
        hub.app_data_handlers = dict(group.app_data_handlers)
        return hub

    @classmethod
    def from_group_info(cls, group_info: bytes, *, ratchet_tree: bytes | None = None, check_lifetimes: bool = True) -> HubView:
        """Start from a signed GroupInfo (with the ratchet_tree extension or the tree given)."""
        try:
            msg = decode_message(group_info)
            gi = msg.group_info
            if gi is None:
                raise InvalidWelcome("MLSMessage is not a GroupInfo")
            suite = cipher_suite(gi.group_context.cipher_suite)
            tree_data = get_extension(gi.extensions, ExtensionType.ratchet_tree) or ratchet_tree
            if tree_data is None:
                raise InvalidWelcome("no ratchet tree")
            hub = cls.__new__(cls)
            hub.suite = suite
            hub.tree = RatchetTree.decode(suite, tree_data)
            hub.context = gi.group_context
            hub.proposal_cache = {}
            hub.check_lifetimes = check_lifetimes
            hub.app_data_handlers = {}
            signer = hub.tree.leaf(gi.signer)
            tbs = gi.encode()[: -len(vl(gi.signature))]
            if signer is None or not suite.verify_with_label(signer.signature_key, "GroupInfoTBS", tbs, gi.signature):
                raise InvalidWelcome("GroupInfo signature does not verify")
            Group._verify_tree(hub, hub.tree, gi.group_context)  # type: ignore[arg-type]
            hub.interim_transcript_hash = ks.interim_transcript_hash(suite, bytes(gi.group_context.confirmed_transcript_hash),
                                                                     bytes(gi.confirmation_tag))
            return hub
        except (DecodeError, EncodeError) as exc:
            raise MalformedMessage(str(exc)) from None
        except InvalidTree as exc:
            raise InvalidWelcome(str(exc)) from None

    def copy(self) -> HubView:
        return self._clone()  # type: ignore[return-value]

    def process(self, message: bytes) -> Received:
        """Validate one handshake (PublicMessage) and apply it; the state is unchanged on error."""
        work = self._clone()
        try:
            with framing.content_cache():
                result = work._process(message)
        except (DecodeError, EncodeError) as exc:
            raise MalformedMessage(str(exc)) from None
        except (AssertionError, IndexError, KeyError, TypeError, AttributeError) as exc:
            raise MalformedMessage(f"unprocessable message: {type(exc).__name__}: {exc}") from None
        self.__dict__.update(work.__dict__)
        return result

    def _process(self, message: bytes) -> Received:
        msg = decode_message(message)
        if msg.private_message is not None:
            pm = msg.private_message
            self._check_header(pm.group_id, pm.epoch)
            if pm.content_type != ContentType.application:
                raise MLSError("the hub view needs handshake messages as PublicMessage")
            # Opaque to the hub: only group and epoch can be checked.
            return Received("application", None, bytes(pm.authenticated_data), epoch=self.epoch)  # type: ignore[arg-type]
        pub = msg.public_message
        if pub is None:
            raise MalformedMessage("not a PublicMessage or PrivateMessage")
        # No membership key: the tag must be present but cannot be checked (RFC 9420 §6.2).
        self._verify_public(pub, None)
        content, auth = pub.content, pub.auth
        if content.content_type == ContentType.proposal:
            entry = self._proposal_from_message(content, auth, WireFormat.mls_public_message)
            return Received("proposal", content.sender, bytes(content.authenticated_data), proposal=content.proposal,
                            proposal_ref=entry.ref, epoch=self.epoch)
        commit = content.commit
        committer = content.sender
        if committer.sender_type not in (SenderType.member, SenderType.new_member_commit):
            raise InvalidCommit("a Commit must come from a member or a new member")
        proposals = self._resolve_proposals(commit, committer)
        prov = self._apply_proposals(proposals, committer)
        if prov.path_required and commit.path is None:
            raise InvalidCommit("this Commit requires an UpdatePath")
        self._check_external_resync(committer, prov, commit.path)
        if commit.path is not None:
            self._validate_path_leaf(prov, _path_leaf_index(self, content, prov), commit.path)
        confirmed = ks.confirmed_transcript_hash(self.suite, self.interim_transcript_hash,
                                                 framing.confirmed_hash_input(WireFormat.mls_public_message, content, auth.signature))
        if not auth.confirmation_tag:
            raise CryptoError("Commit without confirmation_tag")
        self.tree = prov.tree
        self.context = self._new_context(prov, confirmed)
        self.interim_transcript_hash = ks.interim_transcript_hash(self.suite, confirmed, bytes(auth.confirmation_tag))
        self.proposal_cache = {}
        return Received("commit", committer, bytes(content.authenticated_data), applied=prov.applied, epoch=self.epoch)
