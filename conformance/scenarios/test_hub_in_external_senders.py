"""The hub stays in the room's external_senders (draft-ietf-mimi-protocol-06 §7.4): "That extension MUST contain
at least the Certificate of the Hub." A member's commit whose GroupContextExtensions would leave the hub out must
not become the room's state. An entry names the hub when its credential names the hub's domain
(AMB-EXTSENDERS-CERTIFICATE)."""

from __future__ import annotations

import pytest

from conformance.scenarios.roles import as_hub
from conformance.scenarios.test_removal import (
    ADMIN,
    FOLLOWER_DOMAIN,
    _add,
    _handshake_bytes,
    _hub_room,
    _post_update,
    _synced_state,
    judge_not_applied,
    setting_up,
)
from conformance.verdicts import fail, not_applicable, observed
from reference_peer.mls import basic_credential, cipher_suite, gce_proposal
from reference_peer.mls.group import external_senders_extension, set_extension
from reference_peer.room.naming import domain_of_uri
from reference_peer.wire.mls import ExtensionType, ExternalSender

HUB_CERT = "PROTO-EXTSENDERS-HUB-CERT"


@as_hub
@pytest.mark.requirements(HUB_CERT)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_hub_refuses_a_commit_leaving_it_out_of_external_senders(cast, sut, ref_follower, sut_party, mimi_as,
                                                                 poll_until, recorder):
    """-06 §7.4: "That extension MUST contain at least the Certificate of the Hub." bob, an admin on the suite's
    follower, commits a GroupContextExtensions whose external_senders lists his provider instead of every entry
    naming the hub's domain. Were it accepted, the room's external_senders would no longer hold the hub: the hub
    refuses it (any refusal, AMB-FAILURE-CODE-STATUS), and the room stays at its epoch with nothing fanned out."""
    room, admin = _hub_room(cast)
    hub_domain = room.split("/")[2]
    bob = ref_follower.create_user("bob")
    _add(cast, room, admin, bob, role=ADMIN)
    bob_state = _synced_state(ref_follower, sut_party, room, bob.client, poll_until)
    group = bob_state.group
    current = list(group.external_senders())
    kept = [s for s in current if domain_of_uri(bytes(s.credential.identity or b"")) != hub_domain]
    if len(kept) == len(current):
        not_applicable(f"set-up: no external_senders entry names the hub's domain {hub_domain}, so none can be left "
                       "out (PROTO-EXTSENDERS-HUB-CERT is judged by the GroupInfo checks)")
    _, public = cipher_suite(bob_state.suite_id).generate_signature_key_pair()
    entry = ExternalSender(signature_key=public, credential=basic_credential(f"mimi://{FOLLOWER_DOMAIN}".encode()))
    exts = set_extension(list(group.context.extensions), ExtensionType.external_senders,
                         external_senders_extension([*kept, entry]).extension_data)
    with setting_up("bob's commit of the GroupContextExtensions"):
        request = bob_state.commit([gce_proposal(exts)], include_cached=False).request
    epoch_before = sut_party.room(room)["epoch"]
    mark = ref_follower.traffic_mark()
    recorder.note(f"bob commits external_senders without the hub's entry at epoch {epoch_before}")
    answer = _post_update(mimi_as, sut, room, request, HUB_CERT)
    recorder.note(f"the hub answered {answer.label}")
    if answer.accepted:
        fail(f"the hub accepted bob's commit whose external_senders hold no entry naming {hub_domain} (room's external "
             f"senders now: {sut_party.room(room).get('externalSenders')})", requirement=HUB_CERT)
    evidence = judge_not_applied(HUB_CERT, ref_follower, mark, _handshake_bytes(request),
                                 "bob's commit leaving the hub out of external_senders",
                                 epoch_before=epoch_before, sut_party=sut_party, room=room)
    observed(HUB_CERT, f"the hub refused ({answer.label}) bob's commit leaving it out of external_senders; {evidence}")
