"""submitMessage carries application messages only, the SUT as hub (draft-ietf-mimi-protocol-06 §5.4).

-06 §5.4: "If the protocol is MLS 1.0, the request body (appMessage) is an MLSMessage with a WireFormat of
PrivateMessage, and a content_type of application." (PROTO-SUBMIT-PRIVATEMESSAGE-ONLY). The content_type of a
PrivateMessage travels in clear, so a hub that cannot decrypt the message still sees it. A reference follower
participant's client frames a proposal as a PrivateMessage and submits it: the hub must not accept it (-06 names
no status for the refusal: any non-2xx status or any code but accepted, AMB-FAILURE-CODE-STATUS) and must fan
none of it out.
"""

from __future__ import annotations

import pytest

from conformance.scenarios.roles import as_hub
from conformance.scenarios.test_removal import (
    FOLLOWER_DOMAIN,
    _add,
    _hub_room,
    _message_sentinel,
    _post_submit,
    _synced_state,
    fanned_out_since,
)
from conformance.verdicts import fail, observed
from reference_peer.mls.group import decode_message
from reference_peer.wire.identity import IdentifierUri
from reference_peer.wire.mimi import Protocol, SubmitMessageRequest
from reference_peer.wire.mls import ContentType

PRIVATEMESSAGE_ONLY = "PROTO-SUBMIT-PRIVATEMESSAGE-ONLY"


@as_hub
@pytest.mark.requirements(PRIVATEMESSAGE_ONLY)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_hub_refuses_a_private_proposal_on_submit(cast, sut, ref_follower, sut_party, mimi_as, poll_until, recorder):
    """Bob (reference follower, an active participant) submits, with his user URI as sendingUri, a PrivateMessage of
    the room's current epoch whose content_type is proposal (an Update proposal of his client): the hub refuses it
    and fans none of it out (judged after a later message of the room's admin has reached the reference follower)."""
    room, admin = _hub_room(cast)
    bob = ref_follower.create_user("bob")
    witness = ref_follower.create_user("witness")
    _add(cast, room, admin, bob)
    _add(cast, room, admin, witness)
    bob_state = _synced_state(ref_follower, sut_party, room, bob.client, poll_until)
    proposal = bob_state.group.propose_update(private=True)
    message = decode_message(proposal)
    assert message.private_message is not None and message.private_message.content_type == ContentType.proposal
    body = SubmitMessageRequest(protocol=Protocol.mls10, appMessage=message,
                                sendingUri=IdentifierUri(uri=bob.uri.encode())).encode()
    mark = ref_follower.traffic_mark()
    answer = _post_submit(mimi_as, sut, room, body, PRIVATEMESSAGE_ONLY)
    recorder.note(f"bob's PrivateMessage proposal on submitMessage: {answer.label}")
    if answer.accepted:
        fail("the hub accepted on submitMessage a PrivateMessage whose content_type is proposal, not application",
             requirement=PRIVATEMESSAGE_ONLY)
    _message_sentinel(cast, room, admin, witness.client, b"after bob's private proposal")()
    if fanned_out_since(ref_follower, mark, proposal):
        fail(f"the hub refused ({answer.label}) the PrivateMessage proposal submitted as a message but fanned it out "
             f"to {FOLLOWER_DOMAIN}", requirement=PRIVATEMESSAGE_ONLY)
    observed(PRIVATEMESSAGE_ONLY, f"the PrivateMessage proposal submitted as a message was refused ({answer.label}) "
             f"and not fanned out to {FOLLOWER_DOMAIN}")
