"""Crafting API for negative checks: otherwise-valid messages with exactly one thing wrong, built
through the same code paths as valid ones (no patching of internals by the caller).

    crafter = Crafter(alice)
    crafter.commit([add_proposal(kp)], tamper=Tamper(bad_signature=True))
    crafter.proposal(remove_proposal(1), epoch=alice.epoch - 1)
    crafter.proposal(remove_proposal(2), sender_leaf=3, signature_priv=removed_member_key)   # removed sender
    crafter.commit([add_proposal(kp), add_proposal(kp)], validate=False)                      # duplicate add
    forged_external_proposal(alice, remove_proposal(1))                                         # unlisted external key
    stale_key_package(1, basic_credential(b"old"))                                              # expired lifetime
"""

from __future__ import annotations

import time

from ..wire.mls import (
    ContentType,
    Credential,
    FramedContent,
    MLSMessage,
    Proposal,
    ProtocolVersion,
    Sender,
    SenderType,
    WireFormat,
)
from . import framing
from .group import CommitOutput, Group, Tamper, external_proposal
from .leaf import KeyPackageBundle, make_key_package

__all__ = ["Crafter", "Tamper", "forged_external_proposal", "stale_key_package"]


class Crafter:
    """Builds defective messages from a member's current state; the member's state never changes."""

    def __init__(self, group: Group) -> None:
        self.group = group

    def commit(self, proposals: list[Proposal] = (), *, tamper: Tamper | None = None, validate: bool = True,  # type: ignore[assignment]
               include_cached: bool = False, force_path: bool = True) -> CommitOutput:
        """A commit with the given defect; ``validate=False`` lets an invalid proposal list through."""
        work = self.group._clone()
        work._pending = None
        return work.commit(list(proposals), tamper=tamper, validate=validate, include_cached=include_cached, force_path=force_path)

    def proposal(
        self,
        proposal: Proposal,
        *,
        epoch: int | None = None,
        group_id: bytes | None = None,
        sender_leaf: int | None = None,
        signature_priv: bytes | None = None,
        bad_signature: bool = False,
        bad_membership_tag: bool = False,
        omit_membership_tag: bool = False,
    ) -> bytes:
        """A member PublicMessage proposal. The membership tag is always computed with the current
        epoch's real membership key, so a receiver's refusal is due to the one chosen defect."""
        g = self.group
        content = FramedContent(
            group_id=g.group_id if group_id is None else group_id,
            epoch=g.epoch if epoch is None else epoch,
            sender=Sender(sender_type=SenderType.member, leaf_index=g.own_leaf if sender_leaf is None else sender_leaf),
            authenticated_data=b"", content_type=ContentType.proposal, proposal=proposal,
        )
        key = g.signature_priv if signature_priv is None else signature_priv
        ctx = g.context_bytes()
        sig = framing.sign_content(g.suite, key, WireFormat.mls_public_message, content, ctx)
        if bad_signature:
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        pub = framing.make_public_message(g.suite, content, key, ctx, membership_key=g.secrets.membership_key, signature=sig)
        if bad_membership_tag:
            pub = pub.replace(membership_tag=bytes([pub.membership_tag[0] ^ 1]) + bytes(pub.membership_tag[1:]))
        if omit_membership_tag:
            # A member sender without a tag does not encode under the strict layout; send it as
            # the bytes a careless peer would produce (the PublicMessage prefix without the tag).
            raw = MLSMessage(version=ProtocolVersion.mls10, wire_format=WireFormat.mls_public_message, public_message=pub).encode()
            return raw[: -(len(pub.membership_tag) + 1)]
        return MLSMessage(version=ProtocolVersion.mls10, wire_format=WireFormat.mls_public_message, public_message=pub).encode()

    def application(self, data: bytes, *, epoch: int | None = None, generation_reuse: bool = False) -> bytes:
        """An application message, optionally stamped with another epoch (the ciphertext then
        cannot be decrypted by anyone in the stamped epoch, which is the point)."""
        work = self.group._clone()
        if epoch is not None:
            work.context = work.context.replace(epoch=epoch)
        msg = work.protect(data)
        if generation_reuse:
            # Roll the sender's ratchet back so the next message reuses the generation.
            self.group.secret_tree = work.secret_tree.copy()
        return msg


def forged_external_proposal(group: Group, proposal: Proposal, *, sender_index: int = 0, signature_priv: bytes | None = None) -> bytes:
    """An external-sender proposal signed with a key that is not the listed one."""
    if signature_priv is None:
        signature_priv, _ = group.suite.generate_signature_key_pair()
    return external_proposal(group.suite.suite_id, group.group_id, group.epoch, sender_index, signature_priv, proposal)


def stale_key_package(suite_id: int, credential: Credential, *, expired_seconds_ago: int = 3600) -> KeyPackageBundle:
    """A correctly signed KeyPackage whose lifetime ended ``expired_seconds_ago`` seconds ago."""
    now = int(time.time())
    return make_key_package(suite_id, credential, not_before=now - 10 * 86400, not_after=now - expired_seconds_ago)
