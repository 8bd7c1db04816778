"""Small hand-built MLS and MIMI values shared by the wire tests."""

from __future__ import annotations

from reference_peer.wire.identity import IdentifierUri
from reference_peer.wire.mimi import Frank
from reference_peer.wire.mls import (
    Commit,
    ContentType,
    Credential,
    CredentialType,
    FramedContent,
    FramedContentAuthData,
    GroupContext,
    GroupInfo,
    MLSMessage,
    PrivateMessage,
    Proposal,
    ProposalType,
    ProtocolVersion,
    PublicMessage,
    Remove,
    Sender,
    SenderType,
    Welcome,
    WireFormat,
)


def uri(text: str) -> IdentifierUri:
    return IdentifierUri(uri=text.encode())


def application(ciphertext: bytes = b"ct") -> MLSMessage:
    return MLSMessage(
        version=ProtocolVersion.mls10,
        wire_format=WireFormat.mls_private_message,
        private_message=PrivateMessage(
            group_id=b"g",
            epoch=7,
            content_type=ContentType.application,
            authenticated_data=b"",
            encrypted_sender_data=b"sd",
            ciphertext=ciphertext,
        ),
    )


def public(content_type: ContentType) -> MLSMessage:
    body: dict = {}
    if content_type == ContentType.commit:
        body["commit"] = Commit(proposals=[], path=None)
    elif content_type == ContentType.proposal:
        body["proposal"] = Proposal(proposal_type=ProposalType.remove, remove=Remove(removed=3))
    else:
        body["application_data"] = b"hi"
    return MLSMessage(
        version=ProtocolVersion.mls10,
        wire_format=WireFormat.mls_public_message,
        public_message=PublicMessage(
            content=FramedContent(
                group_id=b"g",
                epoch=7,
                sender=Sender(sender_type=SenderType.external, sender_index=0),
                authenticated_data=b"",
                content_type=content_type,
                **body,
            ),
            auth=FramedContentAuthData(
                signature=b"sig", confirmation_tag=b"tag" if content_type == ContentType.commit else None
            ),
        ),
    )


def welcome() -> MLSMessage:
    return MLSMessage(
        version=ProtocolVersion.mls10,
        wire_format=WireFormat.mls_welcome,
        welcome=Welcome(cipher_suite=1, secrets=[], encrypted_group_info=b"egi"),
    )


def group_info() -> GroupInfo:
    return GroupInfo(
        group_context=GroupContext(
            version=ProtocolVersion.mls10,
            cipher_suite=1,
            group_id=b"g",
            epoch=7,
            tree_hash=b"th",
            confirmed_transcript_hash=b"cth",
            extensions=[],
        ),
        extensions=[],
        confirmation_tag=b"ct",
        signer=0,
        signature=b"s",
    )


def basic_credential(identity: bytes = b"alice") -> Credential:
    return Credential(credential_type=CredentialType.basic, identity=identity)


def frank() -> Frank:
    return Frank(server_frank=bytes(range(32)), franking_signature_ciphersuite=1, franking_integrity_signature=b"fis")
