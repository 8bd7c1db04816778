"""POST /groupInfo (§5.6): the GroupInfo, tree and pending proposals, encrypted to the requester and signed
by the hub; and the requester's side, :func:`open_group_info_response`.

A mixin of :class:`~reference_peer.room.hub.HubRoom`: methods only, every attribute lives on the room."""

from __future__ import annotations

from ..mls import MLSError
from ..mls.crypto import cipher_suite
from ..mls.group import decode_message
from ..wire.codec import DecodeError, EncodeError
from ..wire.mimi import (
    GroupInfoCode,
    GroupInfoRatchetTreeTBE,
    GroupInfoRequest,
    GroupInfoResponse,
    PendingProposal,
    Protocol,
)
from ..wire.mls import HPKECiphertext
from ..wire.ratchet_tree_options import RatchetTreeOption, RatchetTreeRepresentation
from ..wire.room_policy import ROLE_INDEX_NON_PARTICIPANT, Capability
from .hub_records import GROUPINFO_LABEL, group_info_refusal
from .hub_steps import ENCRYPT_TO_ROOM_CONTEXT, EXTERNAL_JOIN_NEEDS_ADD_OWN_CLIENT, SERVE_NEW_DEVICE_GROUPINFO
from .naming import domain_of_uri, user_of_credential


class GroupInfoRules:
    """POST /groupInfo."""

    def group_info_response(self, sender_domain: str, request: bytes | GroupInfoRequest, now: int) -> GroupInfoResponse:
        """POST /groupInfo: the GroupInfo, tree and pending proposals, encrypted to the requester and
        signed by the hub; notAuthorized unless the requester's credential names an active-capable
        participant of the sender's domain with canAddOwnClient, and its signature verifies."""
        room_id = self.room_uri.encode()
        refused = group_info_refusal(room_id)
        try:
            req = request if isinstance(request, GroupInfoRequest) else GroupInfoRequest.decode(request)
        except (DecodeError, EncodeError):
            return refused
        if req.protocol != Protocol.mls10 or req.cipher_suite != self.view.suite.suite_id or self.group_info is None:
            return refused
        suite = self.view.suite
        tbs = req.tbs().encode()
        signature_ok = suite.verify_with_label(
            bytes(req.requestingSignatureKey), "GroupInfoRequestTBS", tbs, bytes(req.signature)
        )
        if not signature_ok:  # PROTO-GROUPINFO-REQUEST-SIGNATURE-CHECKED (also the layout as written)
            signature_ok = suite.verify_with_label(
                bytes(req.requestingSignatureKey), "GroupInfoRequestTBS", req.tbs_as_written(), bytes(req.signature)
            )
        if not signature_ok:
            return refused
        user = user_of_credential(req.requestingCredential, self.overrides)
        role = self.roles().get(user, ROLE_INDEX_NON_PARTICIPANT) if user is not None else ROLE_INDEX_NON_PARTICIPANT
        if self.overrides.departs(SERVE_NEW_DEVICE_GROUPINFO) and self.view.find_member(bytes(req.requestingSignatureKey)) is None:
            return refused
        if (
            user is None
            or domain_of_uri(user) != sender_domain
            or user in self.departing_users()
            or not self.policy.may_be_active(role)
            or (not self.overrides.departs(EXTERNAL_JOIN_NEEDS_ADD_OWN_CLIENT)
                and not self.policy.has(role, Capability.canAddOwnClient))
        ):
            return refused  # PROTO-GROUPINFO-NOT-AUTHORIZED
        info = self.group_info
        tbe = GroupInfoRatchetTreeTBE(
            groupInfo=info,
            ratchetTreeOption=RatchetTreeOption(
                representation=RatchetTreeRepresentation.full, ratchet_tree=self.view.tree.to_wire()
            ),
            pending_proposals=[
                PendingProposal(proposal=decode_message(e.message), hub_accepted_time=e.accepted) for e in self.pending
            ],  # PROTO-GROUPINFO-PENDING-PROPOSALS
        )
        try:
            context = b"" if self.overrides.departs(ENCRYPT_TO_ROOM_CONTEXT) else room_id
            kem_output, ciphertext = suite.encrypt_with_label(
                bytes(req.groupInfoPublicKey), GROUPINFO_LABEL, context, tbe.encode()
            )
        except (ValueError, MLSError):  # not a public key of the suite's KEM
            return refused
        response = GroupInfoResponse(
            version=Protocol.mls10,
            room_id=room_id,
            status=GroupInfoCode.success,
            cipher_suite=suite.suite_id,
            hub_sender=self.identity.external_sender,
            encrypted_groupinfo_and_tree=HPKECiphertext(kem_output=kem_output, ciphertext=ciphertext),
            signature=b"",
        )
        signature = suite.sign_with_label(self.identity.signature_priv, "GroupInfoResponseTBS", response.tbs().encode())
        return response.replace(signature=signature)


def open_group_info_response(response: GroupInfoResponse, private_key: bytes) -> GroupInfoRatchetTreeTBE:
    """The requester's side: verify the hub's signature and decrypt (MLSError/ValueError on failure)."""
    suite = cipher_suite(response.cipher_suite)
    if not suite.verify_with_label(
        bytes(response.hub_sender.signature_key),
        "GroupInfoResponseTBS",
        response.tbs().encode(),
        bytes(response.signature),
    ):
        raise ValueError("GroupInfoResponse signature does not verify")
    ct = response.encrypted_groupinfo_and_tree
    plain = suite.decrypt_with_label(
        private_key, GROUPINFO_LABEL, bytes(response.room_id), bytes(ct.kem_output), bytes(ct.ciphertext)
    )
    return GroupInfoRatchetTreeTBE.decode(plain)

