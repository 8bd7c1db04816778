"""Allowed variants of the reference peer (rooms): how a provider's own clients leave, remove a user and
protect their messages, where the drafts leave a choice (see :func:`.registry.define_variant`). Every
check must pass with each of them on."""

from __future__ import annotations

from .registry import define_variant

AREA = "rooms"

PADDING_BLOCK = 32


def pad_to_block(text: bytes) -> int:
    """The zero octets that bring an application message's content to the next multiple of
    :data:`PADDING_BLOCK` octets (at least one octet of padding)."""
    return PADDING_BLOCK - len(text) % PADDING_BLOCK


LEAVE_WITH_REMOVE_OF_OWN_LEAF = define_variant(
    "leave-with-remove-of-own-leaf", area=AREA,
    permitted_by="-06 §3.5 step 1: 'The leaving client constructs MLS Remove proposals for all of the user's "
                 "devices (including the leaving client), and an AppSync proposal that removes its user from the "
                 "participant list'; room-policy-04 §8.1.2 canRemoveSelf only requires that the leaving user "
                 "'simultaneously propose to remove all of its remaining clients'",
    description="a leaving client proposes a Remove of its own leaf instead of a SelfRemove (with the Removes of "
                "its user's other clients and the participant-list removal, as before)",
    departs=("follower.leave.self-remove",),
)
REMOVE_USER_REMOVES_FIRST = define_variant(
    "remove-user-removes-first", area=AREA,
    permitted_by="-06 §3.5: 'The user performing the removal creates an MLS commit covering Remove proposals for "
                 "all of the removed user's devices, and an AppSync proposal updating the room state to remove the "
                 "removed user from the room's participant list' (no order; §5.3 asks only that they 'happen "
                 "simultaneously', PROTO-UPDATE-REMOVE-SIMULTANEOUS)",
    description="a client removing a user lists the Removes of the user's clients before the participant-list "
                "AppDataUpdate in its commit",
    departs=("follower.remove-user.plist-update-first",),
)
LEAVER_JUDGED_BY_STATE_BEFORE_BUNDLE = define_variant(
    "leaver-judged-by-state-before-bundle", area=AREA,
    permitted_by="-06 §5.3: 'A hub provider which observes that an active participant has been removed or banned "
                 "from the room [...] MUST prevent it from sending any proposals except for Remove and SelfRemove': "
                 "a removal proposed earlier in the same UpdateRequest is not yet committed, so whether the hub has "
                 "'observed' it is open (AMB-REMOVED-WITHIN-BUNDLE)",
    description="the hub judges a bundle's proposals by who was removed or leaving before the bundle: a user whose "
                "own participant-list removal comes earlier in the same UpdateRequest may still propose an Update",
    departs=("hub.proposal.bind-leaver-within-bundle",),
)
PADDED_APPLICATION_MESSAGES = define_variant(
    "padded-application-messages", area=AREA,
    permitted_by="-06 §4.2: 'Every application message sent within a room is authenticated and confidentiality-"
                 "protected by virtue of being encapsulated in an MLS PrivateMessage object'; -06 says nothing of "
                 "padding, and RFC 9420 §6.3.1 leaves its length to the sender: 'The padding field is set by the "
                 "sender, by first encoding the content (via the select) and the auth field, and then appending "
                 "the chosen number of zero bytes'",
    description=f"the provider's clients pad every application message's content to a multiple of {PADDING_BLOCK} "
                "octets with zero octets",
    hooks={"follower.send.padding": pad_to_block},
)
COMMIT_WITH_PARTIAL_GROUPINFO = define_variant(
    "commit-with-partial-groupinfo", area=AREA,
    permitted_by="-06 §5.3 GroupInfoOption: 'partial means that a PartialGroupInfo struct will be shared and that "
                 "the Distribution Service is expected to reconstruct the GroupInfo as described in "
                 "[I-D.mahy-mls-ratchet-tree-options]'",
    description="the provider's clients send each commit (and external join) with a PartialGroupInfo (no "
                "ratchet tree, the GroupInfo extensions and signature) instead of the full GroupInfo",
    departs=("follower.commit.full-groupinfo",),
)
