"""The hub's authorization of MLS membership operations by capability (draft-ietf-mimi-room-policy-04 §8.1):
removing another participant's clients (canKick), adding or removing one's own clients (canAddOwnClient,
canRemoveOwnClient), whether the operation comes in a commit, in a proposal, or in an external commit (§8:
"Unless otherwise specified, capabilities apply both to sending a set of consistent MLS proposals that could
be committed by any member of the corresponding MLS group, and to sending an MLS commit containing a set of
consistent MLS proposals."); what a user whose removal is pending may still propose (-06 §5.3); and a pending
leave across an external commit (-06 §5.5).

The SUT is the hub. Each room is created with an explicit policy (a SUT that cannot host it makes the check
NOT_APPLICABLE). The commits and proposals judged are built by the suite's reference-follower clients from
their MLS state (``ref_follower.member_state``) or by a new client of a follower user made here, and sent to
the SUT's /update as follower.ref.test. A refusal is read the way AMB-FAILURE-CODE-STATUS accepts (notAllowed,
or any non-2xx status with or without a body: -06 §5.3 names the codes but ties none to this rule) and is
judged by its effect: nothing was applied (the room's epoch and its participants' clients as getRoom reports
them) or fanned out.
"""

from __future__ import annotations

import pytest

from conformance.scenarios.roles import as_hub
from conformance.scenarios.test_multi_device import _clients_of
from conformance.scenarios.test_removal import (
    _handshake_bytes,
    _message_sentinel,
    _post_update,
    _synced_state,
    judge_not_applied,
    setting_up,
)
from conformance.scenarios.test_room_policy_matrix import (
    ADMIN,
    MEMBER,
    _accepted,
    _add,
    _policy_room,
    _refused_unchanged,
    _roles,
    _roles_at_hub,
)
from conformance.verdicts import fail, judging, miss, not_applicable, observed
from reference_peer.mls import (
    add_proposal,
    app_data_update_proposal,
    basic_credential,
    cipher_suite,
    forged_external_proposal,
    gce_proposal,
    remove_proposal,
)
from reference_peer.mls.group import external_senders_extension, set_extension
from reference_peer.room import participants as plist_mod
from reference_peer.room.follower import SimulatedClient
from reference_peer.wire.identity import MimiUri
from reference_peer.wire.mimi import COMPONENT_PARTICIPANT_LIST
from reference_peer.wire.mls import ExtensionType, ExternalSender

KICK = "POLICY-CAP-KICK-KEEPS-PARTICIPANT"
ADD_OWN_CLIENT = "POLICY-CAP-ADD-OWN-CLIENT"


def _device(ref_follower, user, names) -> SimulatedClient:
    """A new client of the follower ``user``, made here (the reference follower does not hold it)."""
    return SimulatedClient(ref_follower.domain, MimiUri.parse(user.uri).name, names("device"))


# -- canKick ---------------------------------------------------------------------------------------


@pytest.mark.requirements(KICK)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_kick_needs_can_kick(cast, sut, ref_follower, mimi_as, names, poll_until, recorder):
    """room-policy-04 §8.1.2: "canKick - the holder of this capability can propose removal of another
    participant's clients, without changing the Participant List." The capability is what authorizes removing
    another participant's clients, so a role without it (nor canRemoveParticipant, whose removals change the
    list) may not. Bob and carol are members (no canKick, no canRemoveParticipant), dave an admin (canKick).
    Refused, each judged by effect (nothing applied or fanned out, carol keeps her client): bob's Remove
    proposal of carol's client; bob's commit of the same Remove; an external commit by bob's new client (his
    role holds canAddOwnClient) that also removes carol's client (RFC 9420 §12.4.3.2 allows an external commit
    to remove only an old version of the joiner itself). Accepted: dave's (canKick) proposal of the same Remove
    (the capability is to "propose removal"), then his commit of it, after which carol is still listed with her
    role (the "without changing the Participant List" half)."""
    room, alice = _policy_room(cast, {"roles": _roles()})
    dave = ref_follower.create_user("dave")
    bob = ref_follower.create_user("bob")
    carol = ref_follower.create_user("carol")
    _add(cast, room, alice, dave, role=ADMIN)
    _add(cast, room, alice, bob)
    _add(cast, room, alice, carol)
    if _roles_at_hub(cast, room).get(bob.uri) != MEMBER or _roles_at_hub(cast, room).get(carol.uri) != MEMBER:
        not_applicable(f"set-up failed: bob and carol are not both listed as members (role {MEMBER}) at the SUT: "
                       f"{_roles_at_hub(cast, room)}")
    carol_clients = _clients_of(cast.hub, room, carol)
    if not carol_clients:
        not_applicable(f"set-up failed: the SUT lists no client of carol in {room}, so no kick can be judged")

    def carol_kept() -> str | None:
        clients = _clients_of(cast.hub, room, carol)
        return None if clients == carol_clients else f"carol's clients went from {carol_clients} to {clients}"

    evidence = []
    # 1. bob's Remove proposal of carol's client
    bob_state = _synced_state(ref_follower, cast.hub, room, bob.client, poll_until)
    leaves = bob_state.leaves_of_user(carol.uri.encode())
    if not leaves:
        not_applicable(f"set-up failed: bob's client does not see carol's client in the group of {room}")
    body = bob_state.proposals_request([remove_proposal(leaves[0])])
    recorder.note("bob (member, no canKick) proposes the Remove of carol's client")
    said = _refused_unchanged(KICK, cast, sut, ref_follower, mimi_as, recorder, room, alice, dave,
                              body, "a Remove proposal of carol's client by bob, a member without canKick",
                              unchanged=carol_kept)
    if said is None:
        return
    evidence.append(said)
    # 2. bob's commit of the same Remove
    bob_state = _synced_state(ref_follower, cast.hub, room, bob.client, poll_until)
    out = bob_state.commit([remove_proposal(leaves[0])])
    recorder.note("bob commits the Remove of carol's client")
    said = _refused_unchanged(KICK, cast, sut, ref_follower, mimi_as, recorder, room, alice, dave,
                              out.request, "a commit by bob, a member without canKick, removing carol's client",
                              unchanged=carol_kept)
    if said is None:
        return
    evidence.append(said)
    # 3. an external commit by bob's new client that also removes carol's client
    bob_state = _synced_state(ref_follower, cast.hub, room, bob.client, poll_until)
    device = _device(ref_follower, bob, names)
    body = device.join_external(bob_state.group.group_info(ratchet_tree=True), None,
                                proposals_by_value=[remove_proposal(leaves[0])])
    recorder.note(f"bob's new client {device.uri} joins by external commit that also removes carol's client")
    said = _refused_unchanged(KICK, cast, sut, ref_follower, mimi_as, recorder, room, alice, dave,
                              body, "an external commit by bob's new client removing carol's client",
                              unchanged=carol_kept)
    if said is None:
        return
    evidence.append(said)
    # 4. accepted within the rule: dave (admin, canKick) proposes the same Remove, then commits it
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    body = dave_state.proposals_request([remove_proposal(dave_state.leaves_of_user(carol.uri.encode())[0])])
    recorder.note("dave (admin, canKick) proposes the Remove of carol's client")
    _accepted(KICK, sut, mimi_as, recorder, room, body, "a Remove proposal of carol's client by dave, an admin whose "
              "role holds canKick (\"the holder of this capability can propose removal of another participant's "
              "clients\")")
    out = dave_state.commit([])  # his cached proposal, by reference
    recorder.note("dave commits his Remove proposal of carol's client")
    _accepted(KICK, sut, mimi_as, recorder, room, out.request, "a commit by dave, an admin whose role holds "
              "canKick, of his proposal removing carol's client")
    with setting_up("the room's participant list after dave's kick"):
        listed = cast.hub.participants(room)
    entry = listed.get(carol.uri)
    if entry is None or entry.get("role") != MEMBER:
        fail(f"the hub accepted dave's kick of carol's client but no longer lists carol as a member: {entry}",
             requirement=KICK)
    observed(KICK, "the hub " + "; ".join(evidence) + f"; it accepted dave's (canKick) proposal and commit removing carol's "
                   f"client, and carol stays listed with role {MEMBER}")


# -- canAddOwnClient -------------------------------------------------------------------------------


@pytest.mark.requirements(ADD_OWN_CLIENT)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_own_client_add_needs_can_add_own_client(cast, sut, ref_follower, mimi_as, names, poll_until, recorder):
    """room-policy-04 §8.1.1: "canAddOwnClient - a holder of this capability that is in the participant list,
    can add its own client (via an external commit or external proposal); and can add other clients that share
    the same user identity (via Add proposals) if the holder's client is already a member of the corresponding
    MLS group." Bob's role (member) lacks canAddOwnClient; dave's (admin) holds it. Refused, each judged by
    effect (nothing applied or fanned out, bob's new client not listed): bob's commit of an Add of his own new
    client; that new client's external commit (built from the GroupInfo bob's client holds, so a hub that only
    withholds the GroupInfo does not pass for one that judges the commit). Accepted: dave's commit of an Add of
    his own new client."""
    roles = _roles()
    roles[MEMBER]["capabilities"] = [c for c in roles[MEMBER]["capabilities"] if c != "canAddOwnClient"]
    room, alice = _policy_room(cast, {"roles": roles})
    dave = ref_follower.create_user("dave")
    bob = ref_follower.create_user("bob")
    _add(cast, room, alice, dave, role=ADMIN)
    _add(cast, room, alice, bob)
    if _roles_at_hub(cast, room).get(bob.uri) != MEMBER or _roles_at_hub(cast, room).get(dave.uri) != ADMIN:
        not_applicable(f"set-up failed: bob is not listed as member ({MEMBER}) and dave as admin ({ADMIN}) at the "
                       f"SUT: {_roles_at_hub(cast, room)}")
    bob_clients = _clients_of(cast.hub, room, bob)

    def bob_kept() -> str | None:
        clients = _clients_of(cast.hub, room, bob)
        return None if clients == bob_clients else f"bob's clients went from {bob_clients} to {clients}"

    evidence = []
    # 1. bob commits an Add of his own new client
    bob_state = _synced_state(ref_follower, cast.hub, room, bob.client, poll_until)
    device = _device(ref_follower, bob, names)
    out = bob_state.commit([add_proposal(device.make_key_package().key_package)])
    recorder.note(f"bob (member, no canAddOwnClient) commits an Add of his own new client {device.uri}")
    said = _refused_unchanged(ADD_OWN_CLIENT, cast, sut, ref_follower, mimi_as, recorder, room, alice, dave,
                              out.request, "a commit by bob, whose role lacks canAddOwnClient, adding his own new client",
                              unchanged=bob_kept)
    if said is None:
        return
    evidence.append(said)
    # 2. another new client of bob joins by external commit
    bob_state = _synced_state(ref_follower, cast.hub, room, bob.client, poll_until)
    device = _device(ref_follower, bob, names)
    body = device.join_external(bob_state.group.group_info(ratchet_tree=True), None)
    recorder.note(f"bob's new client {device.uri} joins by external commit")
    said = _refused_unchanged(ADD_OWN_CLIENT, cast, sut, ref_follower, mimi_as, recorder, room, alice, dave,
                              body, "an external commit by a new client of bob, whose role lacks canAddOwnClient",
                              unchanged=bob_kept)
    if said is None:
        return
    evidence.append(said)
    # 3. accepted within the rule: dave (admin, canAddOwnClient) commits an Add of his own new client
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    device = _device(ref_follower, dave, names)
    out = dave_state.commit([add_proposal(device.make_key_package().key_package)])
    recorder.note(f"dave (admin, canAddOwnClient) commits an Add of his own new client {device.uri}")
    _accepted(ADD_OWN_CLIENT, sut, mimi_as, recorder, room, out.request, "a commit by dave, whose role holds "
              "canAddOwnClient, adding his own new client")
    observed(ADD_OWN_CLIENT, "the hub " + "; ".join(evidence) + "; it accepted dave's (canAddOwnClient) commit "
                             "adding his own new client")


# -- a pending leave across an external commit --------------------------------------------------

REGENERATE = "PROTO-FANOUT-REGENERATE-AFTER-EXTERNAL-COMMIT"


@pytest.mark.requirements(REGENERATE)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_pending_leave_survives_an_external_commit(cast, sut, ref_follower, mimi_as, names, poll_until, recorder):
    """-06 §5.5: "An external commit will invalidate certain pending proposals. [...] The hub would then be
    expected to regenerate any relevant, comparable proposals in the new epoch. To prevent a race condition
    where a member commit arrives before the regenerated proposals arrive, the hub can staple regenerated
    proposals to an external commit during the fanout process." Bob leaves (§3.5: his SelfRemove and his
    participant-list removal, accepted and pending); before anyone commits them, a new client of carol joins
    by external commit, which cannot carry them by reference. Once the hub accepted that commit, dave commits
    every proposal his client holds for the new epoch (stapled or fanned out later: either is accepted). Then
    bob's leave must have taken effect: the hub no longer lists bob as a participant. A hub
    that refuses the external commit (and keeps its epoch) leaves nothing to judge."""
    room, alice = _policy_room(cast, {"roles": _roles()})
    dave = ref_follower.create_user("dave")
    bob = ref_follower.create_user("bob")
    carol = ref_follower.create_user("carol")
    _add(cast, room, alice, dave, role=ADMIN)
    _add(cast, room, alice, bob)
    _add(cast, room, alice, carol)
    bob_state = _synced_state(ref_follower, cast.hub, room, bob.client, poll_until)
    recorder.note("bob leaves: SelfRemove and his participant-list removal, as proposals")
    with setting_up("bob's leave proposals"):
        answer = _post_update(mimi_as, sut, room, bob_state.self_leave_request(), REGENERATE)
    recorder.note(f"the hub answered {answer.label}")
    if answer.refused:
        not_applicable(f"set-up failed: the hub refused ({answer.label}) bob's leave proposals, so no pending leave "
                       "can meet an external commit")
    carol_state = _synced_state(ref_follower, cast.hub, room, carol.client, poll_until)
    device = _device(ref_follower, carol, names)
    body = device.join_external(carol_state.group.group_info(ratchet_tree=True), None)
    recorder.note(f"carol's new client {device.uri} joins by external commit, bob's leave still pending")
    epoch = cast.hub.room(room)["epoch"]
    with judging(REGENERATE):
        answer = _post_update(mimi_as, sut, room, body, REGENERATE)
    recorder.note(f"the hub answered {answer.label}")
    with setting_up("the room after the external commit"):
        after = cast.hub.room(room)["epoch"]
    if answer.refused and after == epoch:
        not_applicable(f"the hub refused ({answer.label}) the external commit of carol's new client while bob's leave "
                       "was pending, and stayed at its epoch: no proposal was invalidated, nothing to judge")
    if answer.refused:
        fail(f"the hub answered {answer.label} to the external commit of carol's new client, yet moved the room from "
             f"epoch {epoch} to {after}: a commit it reports refused took effect, so nothing tells the members what "
             "became of bob's pending leave in the new epoch", requirement=REGENERATE)
    with setting_up("dave's client to process the external commit and what the hub fanned out with it"):
        dave_state = poll_until(lambda: (m := ref_follower.member_state(room, dave.client)).epoch >= after and m,
                                what=f"dave's client to reach epoch {after}")
    out = dave_state.commit([])
    recorder.note("dave commits every proposal his client holds for the new epoch")
    with judging(REGENERATE):
        answer = _post_update(mimi_as, sut, room, out.request, REGENERATE)
    recorder.note(f"the hub answered {answer.label}")
    listed = cast.hub.participants(room)
    if bob.uri in listed:
        miss(REGENERATE, f"bob's leave was pending when carol's new client joined by external commit; after dave "
                         f"committed every proposal he then held (the hub answered {answer.label}), bob is still "
                         f"listed: {listed.get(bob.uri)}")
        return
    observed(REGENERATE, f"bob's pending leave outlived the external commit of carol's new client: dave's next "
                         f"commit ({answer.label}) left bob no longer a participant of the room")


# -- canRemoveOwnClient ----------------------------------------------------------------------------

REMOVE_OWN_CLIENT = "POLICY-CAP-REMOVE-OWN-CLIENT"


@pytest.mark.feature("multiDevice")
@pytest.mark.requirements(REMOVE_OWN_CLIENT)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_own_client_removal_needs_can_remove_own_client(cast, sut, ref_follower, mimi_as, poll_until, recorder):
    """room-policy-04 §8.1.2: "canRemoveOwnClient - the holder of this capability can propose to remove its own
    client using an MLS Remove or SelfRemove proposal without changing the Participant list." The capability is
    what authorizes it, so a role without it may not. Bob's role (member) lacks canRemoveOwnClient; dave's
    (admin) holds it; each has two clients. Bob's first client commits the Remove of his second: refused, judged
    by effect (nothing applied or fanned out, bob keeps both clients). Dave's first client commits the Remove of
    his second: accepted, and dave stays listed."""
    roles = _roles()
    roles[MEMBER]["capabilities"] = [c for c in roles[MEMBER]["capabilities"] if c != "canRemoveOwnClient"]
    room, alice = _policy_room(cast, {"roles": roles})
    dave = ref_follower.create_user("dave", clients=2)
    bob = ref_follower.create_user("bob", clients=2)
    _add(cast, room, alice, dave, role=ADMIN)
    _add(cast, room, alice, bob)
    bob_clients, dave_clients = _clients_of(cast.hub, room, bob), _clients_of(cast.hub, room, dave)
    if len(bob_clients) != 2 or len(dave_clients) != 2 or _roles_at_hub(cast, room).get(bob.uri) != MEMBER:
        not_applicable(f"set-up failed: the SUT does not list bob (member) and dave (admin) with two clients each: "
                       f"bob {bob_clients}, dave {dave_clients}, roles {_roles_at_hub(cast, room)}")

    def bob_kept() -> str | None:
        clients = _clients_of(cast.hub, room, bob)
        return None if sorted(clients) == sorted(bob_clients) else f"bob's clients went from {bob_clients} to {clients}"

    bob_state = _synced_state(ref_follower, cast.hub, room, bob.clients[0], poll_until)
    other = [leaf for leaf in bob_state.leaves_of_user(bob.uri.encode()) if leaf != bob_state.group.own_leaf]
    if not other:
        not_applicable(f"set-up failed: bob's first client does not see his second client in the group of {room}")
    out = bob_state.commit([remove_proposal(other[0])])
    recorder.note("bob's first client (member, no canRemoveOwnClient) commits the Remove of his second client")
    said = _refused_unchanged(REMOVE_OWN_CLIENT, cast, sut, ref_follower, mimi_as, recorder, room, alice, dave,
                              out.request, "a commit by bob, whose role lacks canRemoveOwnClient, removing his own second client",
                              unchanged=bob_kept)
    if said is None:
        return
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.clients[0], poll_until)
    other = [leaf for leaf in dave_state.leaves_of_user(dave.uri.encode()) if leaf != dave_state.group.own_leaf]
    out = dave_state.commit([remove_proposal(other[0])])
    recorder.note("dave's first client (admin, canRemoveOwnClient) commits the Remove of his second client")
    _accepted(REMOVE_OWN_CLIENT, sut, mimi_as, recorder, room, out.request, "a commit by dave, whose role holds "
              "canRemoveOwnClient, removing his own second client")
    if dave.uri not in cast.hub.participants(room):
        fail("the hub accepted dave's removal of his own second client but no longer lists dave",
             requirement=REMOVE_OWN_CLIENT)
    observed(REMOVE_OWN_CLIENT, f"the hub {said}; it accepted dave's (canRemoveOwnClient) commit removing his own "
                                "second client, dave still listed")


# -- a user whose removal is pending ---------------------------------------------------------------

ONLY_REMOVE_PROPOSALS = "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS"


@pytest.mark.requirements(ONLY_REMOVE_PROPOSALS)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_admin_being_removed_loses_its_capabilities(cast, sut, ref_follower, mimi_as, poll_until, recorder):
    """-06 §5.3: once a user's removal is accepted, the hub "MUST prevent it from sending any proposals except for
    Remove and SelfRemove [I-D.ietf-mls-extensions] proposals for its users in that group." Bob is an admin
    (canKick, canAddParticipant), so only that rule can refuse what he proposes once dave's proposals removing
    him are accepted (not committed): his Remove proposal of carol's client, and his participant-list
    AppDataUpdate adding erin. Each refused (any refusal) and not fanned out."""
    room, alice = _policy_room(cast, {"roles": _roles()})
    dave = ref_follower.create_user("dave")
    bob = ref_follower.create_user("bob")
    carol = ref_follower.create_user("carol")
    erin = ref_follower.create_user("erin")
    _add(cast, room, alice, dave, role=ADMIN)
    _add(cast, room, alice, bob, role=ADMIN)
    _add(cast, room, alice, carol)
    dave_state = _synced_state(ref_follower, cast.hub, room, dave.client, poll_until)
    bob_state = _synced_state(ref_follower, cast.hub, room, bob.client, poll_until)
    index = plist_mod.index_of(dave_state.participant_list(), bob.uri.encode())
    if index is None:
        not_applicable(f"set-up failed: dave's client does not list bob in the participant list of {room}")
    removal = app_data_update_proposal(int(COMPONENT_PARTICIPANT_LIST), plist_mod.make_update(removed=[index]).encode())
    body = dave_state.proposals_request([removal, *[remove_proposal(leaf)
                                                    for leaf in dave_state.leaves_of_user(bob.uri.encode())]])
    recorder.note(f"dave proposes the removal of {bob.uri} (not committed)")
    with setting_up("dave's proposals removing bob"):
        answer = _post_update(mimi_as, sut, room, body, ONLY_REMOVE_PROPOSALS)
    if answer.refused:
        not_applicable(f"set-up failed: the hub refused ({answer.label}) the admin dave's proposals removing bob")
    carol_leaves = bob_state.leaves_of_user(carol.uri.encode())
    adding = app_data_update_proposal(int(COMPONENT_PARTICIPANT_LIST),
                                      plist_mod.make_update(added=[(erin.uri.encode(), MEMBER)]).encode())
    if not carol_leaves:
        not_applicable(f"set-up failed: bob's client does not see carol's client in the group of {room}")
    judge_each_proposal_refused(
        ONLY_REMOVE_PROPOSALS,
        (("a Remove proposal of carol's client by bob (admin, canKick) while his removal is pending",
          remove_proposal(carol_leaves[0])),
         ("a participant-list AppDataUpdate by bob (admin, canAddParticipant) adding erin while his removal is "
          "pending", adding)),
        proposer=bob_state, witness=dave.client, cast=cast, sut=sut, mimi_as=mimi_as, ref_follower=ref_follower,
        recorder=recorder, room=room, sender=alice)


def judge_each_proposal_refused(requirement: str, cases, *, proposer, witness, cast, sut, mimi_as, ref_follower,
                                recorder, room, sender) -> None:
    """Sends each (what, proposal) of ``cases`` alone from the ``proposer`` state's client to the SUT hub: each
    must be refused (any refusal, AMB-FAILURE-CODE-STATUS) and not fanned out, judged by the follower's traffic
    and a message from ``sender`` that the ``witness`` client must still receive. A miss ends the check at the
    first accepted proposal; otherwise ``requirement`` is observed with every refusal."""
    evidence = []
    for what, proposal in cases:
        body = proposer.proposals_request([proposal])
        recorder.note(what)
        mark = ref_follower.traffic_mark()
        with judging(requirement):
            answer = _post_update(mimi_as, sut, room, body, requirement)
        recorder.note(f"the hub answered {answer.label}")
        if answer.accepted:
            miss(requirement, f"the hub accepted {what}")
            return
        with judging(requirement):
            effect = judge_not_applied(requirement, ref_follower, mark, _handshake_bytes(body), what,
                                       sentinel=_message_sentinel(cast, room, sender, witness,
                                                                  f"after {what}".encode()))
        evidence.append(f"refused ({answer.label}) {what}: {effect}")
    observed(requirement, "the hub " + "; ".join(evidence))


# -- a follower provider as an external sender -----------------------------------------------------

PLIST_AUTHORIZED = "PROTO-PLIST-CHANGES-AUTHORIZED-SEPARATELY"


@pytest.mark.requirements(KICK, PLIST_AUTHORIZED)
@as_hub
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_follower_provider_has_no_role_over_others(cast, sut, ref_follower, mimi_as, poll_until, recorder):
    """room-policy-04 §8: "When we say that the holder of a capability can take some action, we mean that whatever
    entity is taking the action (a participant, a potential future participant, or an external party) has a
    specific entry in the Participant List struct and a corresponding role [...] and that the role_capabilities
    list contains the relevant capability"; -06 §7.5: "Each of these actions (modifying a user's role, removing a
    user, and adding a user) is authorized separately according to the rules specified in
    [I-D.ietf-mimi-room-policy]." The follower provider, listed in external_senders by bob's commit (-06 §7.4
    PROTO-EXTSENDERS-FOLLOWER-MAY-ADD; a hub that declines it leaves nothing to judge), holds no entry in the
    participant list, so no capability: its own external proposals removing the SUT's user alice's client
    (canKick) and, in the participant list, removing alice or adding erin (canRemoveParticipant,
    canAddParticipant) are each refused (any refusal) and not fanned out. (What a provider may do for its own
    users, e.g. remove a deleted user, the drafts leave open; it is not judged here.)"""
    room, alice = _policy_room(cast, {"roles": _roles()})
    bob = ref_follower.create_user("bob")
    erin = ref_follower.create_user("erin")
    carol = ref_follower.create_user("carol")  # the witness of the fan-out (bob's own client cannot follow the copy)
    _add(cast, room, alice, bob, role=ADMIN)
    _add(cast, room, alice, carol)
    bob_state = _synced_state(ref_follower, cast.hub, room, bob.client, poll_until)
    suite = cipher_suite(bob_state.suite_id)
    private, public = suite.generate_signature_key_pair()
    entry = ExternalSender(signature_key=public, credential=basic_credential(f"mimi://{ref_follower.domain}".encode()))
    group = bob_state.group
    exts = set_extension(list(group.context.extensions), ExtensionType.external_senders,
                         external_senders_extension([*group.external_senders(), entry]).extension_data)
    recorder.note(f"bob commits a GroupContextExtensions listing {ref_follower.domain} in external_senders")
    with setting_up(f"bob's commit adding {ref_follower.domain} to external_senders"):
        answer = _post_update(mimi_as, sut, room, bob_state.commit([gce_proposal(exts)], include_cached=False).request,
                              PLIST_AUTHORIZED)
    if answer.refused:
        not_applicable(f"the hub declined ({answer.label}) bob's commit listing his provider in external_senders (a "
                       "MAY, -06 §7.4), so the provider cannot propose as itself: nothing to judge")
    bob_state.commit_accepted()  # the suite's copy moves to the new epoch (it made the commit)
    state = bob_state
    index = next((i for i, s in enumerate(state.group.external_senders())
                  if bytes(s.signature_key) == bytes(public)), None)
    alice_leaves = state.leaves_of_user(alice.uri.encode())
    alice_at = plist_mod.index_of(state.participant_list(), alice.uri.encode())
    if index is None or not alice_leaves or alice_at is None:
        not_applicable(f"set-up failed: bob's client does not see {ref_follower.domain} in external_senders ({index}) "
                       f"or alice in the group ({alice_leaves}) and the participant list ({alice_at})")
    cases = (
        (KICK, "the follower provider's own Remove proposal of alice's client", remove_proposal(alice_leaves[0])),
        (PLIST_AUTHORIZED, "the follower provider's own participant-list AppDataUpdate removing alice",
         app_data_update_proposal(int(COMPONENT_PARTICIPANT_LIST), plist_mod.make_update(removed=[alice_at]).encode())),
        (PLIST_AUTHORIZED, "the follower provider's own participant-list AppDataUpdate adding erin",
         app_data_update_proposal(int(COMPONENT_PARTICIPANT_LIST),
                                  plist_mod.make_update(added=[(erin.uri.encode(), MEMBER)]).encode())),
    )
    evidence: dict[str, list[str]] = {KICK: [], PLIST_AUTHORIZED: []}
    for requirement, what, proposal in cases:
        message = forged_external_proposal(state.group, proposal, sender_index=index, signature_priv=private)
        body = SimulatedClient.proposal_messages_request([message])
        recorder.note(what)
        mark = ref_follower.traffic_mark()
        with judging(requirement):
            answer = _post_update(mimi_as, sut, room, body, requirement)
        recorder.note(f"the hub answered {answer.label}")
        if answer.accepted:
            miss(requirement, f"the hub accepted {what}, though the provider holds no role in the room")
            continue
        with judging(requirement):
            effect = judge_not_applied(requirement, ref_follower, mark, _handshake_bytes(body), what,
                                       sentinel=_message_sentinel(cast, room, alice, carol.client,
                                                                  f"after {what}".encode()))
            if alice.uri not in cast.hub.participants(room) or erin.uri in cast.hub.participants(room):
                fail(f"the hub refused {what} but its participant list changed: {sorted(cast.hub.participants(room))}",
                     requirement=requirement)
        evidence[requirement].append(f"refused ({answer.label}) {what}: {effect}")
    for requirement, said in evidence.items():
        if said:
            observed(requirement, "the hub " + "; ".join(said))
