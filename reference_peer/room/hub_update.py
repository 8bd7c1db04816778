"""POST /update (draft-ietf-mimi-protocol-06 §5.3): the request's framing and epoch, who sent a handshake,
and the dispatch to the proposal and commit rules.

A mixin of :class:`~reference_peer.room.hub.HubRoom`: methods only, every attribute lives on the room."""

from __future__ import annotations

from ..mls import HubView, MLSError
from ..wire.codec import DecodeError, EncodeError
from ..wire.mimi import UpdateRequest, UpdateResponseCode, UpdateRoomResponse
from ..wire.mls import ContentType, SenderType
from .hub_records import MLS10, FanoutPlan, _not_allowed, _Refused, update_response
from .hub_steps import REFUSE_SUPERSEDED_EPOCH_COMMIT, TAKE_UP_PUBLIC_HANDSHAKE
from .naming import domain_of_uri, user_of_credential
from .participants import ParticipantListError
from .policy import PolicyError, Refusal


class UpdateRules:
    """POST /update: framing, epoch and sender checks, then the proposal or commit rules."""

    def handle_update(self, sender_domain: str, request: bytes, now: int) -> tuple[UpdateRoomResponse, FanoutPlan]:
        """POST /update: a proposal (with moreProposals) or a commit (with Welcome, GroupInfo, tree)."""
        try:
            try:
                req = UpdateRequest.decode(request, scope=MLS10)
            except (DecodeError, EncodeError) as exc:
                raise _Refused(UpdateResponseCode.invalidProposal, f"malformed UpdateRequest: {exc}") from None
            bundle = req.bundle
            msg = bundle.proposalOrCommit
            if msg.public_message is None:
                raise _Refused(
                    UpdateResponseCode.invalidProposal,
                    "proposalOrCommit must be a PublicMessage [PROTO-UPDATE-HANDSHAKE-FRAMING]",
                )
            self.overrides.hook(TAKE_UP_PUBLIC_HANDSHAKE, msg)  # a fault's hook may refuse it (raises)
            content = msg.public_message.content
            if bytes(content.group_id) != self.group_id:
                raise _Refused(UpdateResponseCode.invalidProposal, "the handshake is for another group")
            self._refuse_removed_sender(content)
            forked = getattr(self, "_fault_previous_view", None)  # kept only when departing from the step
            if (
                forked is not None and self.overrides.departs(REFUSE_SUPERSEDED_EPOCH_COMMIT)
                and content.content_type == ContentType.commit and content.epoch == self.epoch - 1
            ):
                self.view, self.pending = forked, []
            if content.epoch != self.epoch:
                raise _Refused(
                    UpdateResponseCode.wrongEpoch,
                    f"handshake for epoch {content.epoch}, the room is at {self.epoch} [PROTO-UPDATE-WRONG-EPOCH]",
                )
            if content.content_type == ContentType.commit:
                return self._handle_commit(sender_domain, bundle, now)
            if content.content_type == ContentType.proposal:
                return self._handle_proposals(sender_domain, [msg, *bundle.moreProposals], bundle.moreProposals, now)
            raise _Refused(UpdateResponseCode.invalidProposal, "proposalOrCommit is neither a proposal nor a commit")
        except (MLSError, ParticipantListError, PolicyError, DecodeError, EncodeError) as exc:
            # Defence in depth: bad input that slipped past the specific checks is still an answer.
            refused = _Refused(UpdateResponseCode.invalidProposal, f"{type(exc).__name__}: {exc}")
        except _Refused as caught:
            refused = caught
        return update_response(
            refused.code, refused.description, epoch=self.epoch, invalid=refused.invalid
        ), FanoutPlan()

    def _actor(
        self, view: HubView, sender: object, *, new_member_user: bytes | None = None
    ) -> tuple[str, bytes | None]:
        """('member'|'hub'|'provider'|'new_member', user or None) for a handshake sender. For a
        follower provider (an external sender other than the hub) the "user" is its provider URI: a provider holds no
        participant-list entry, so no role over other providers' users (POLICY-CAP-KICK-KEEPS-PARTICIPANT). Only the hub's
        own proposals (its signature key) may change the mimi_hub component (EXT-HUBXFER-COMPONENT-SENDER), so a
        member's commit of the hub's begin proposals is accepted and the transfer goes on to its cut-over
        (EXT-HUBXFER-BEGIN-PROPOSALS)."""
        st = sender.sender_type  # type: ignore[attr-defined]
        if st == SenderType.member:
            leaf = view.tree.leaf(sender.leaf_index)  # type: ignore[attr-defined]
            return "member", user_of_credential(leaf.credential, self.overrides) if leaf is not None else None
        if st == SenderType.external:
            senders = view.external_senders()
            index = sender.sender_index  # type: ignore[attr-defined]
            if index < len(senders) and bytes(senders[index].signature_key) == bytes(
                self.identity.external_sender.signature_key
            ):
                return "hub", None
            identity = senders[index].credential.identity if index < len(senders) else None
            return "provider", bytes(identity) if identity is not None else None
        return "new_member", new_member_user

    def _check_sender_domain(self, kind: str, actor: bytes | None, sender_domain: str) -> None:
        """The authenticated provider must be the one the handshake's signer belongs to."""
        if kind == "hub" and sender_domain != self.identity.domain:
            raise _not_allowed(
                Refusal(
                    f"{sender_domain} sent a proposal signed with the hub's key",
                    "PROTO-EXTSENDERS-AUTHENTICATE-PROPOSALS",
                )
            )
        if kind in ("member", "provider", "new_member") and actor is not None and domain_of_uri(actor) != sender_domain:
            raise _not_allowed(
                Refusal(
                    f"a handshake of {domain_of_uri(actor)} sent by {sender_domain}",
                    "PROTO-ROOMSTATE-PUBLICMESSAGE-AUTH",
                )
            )
