"""Removal: removing users and clients, self-leave, bans, and what a removed member may still do
(draft-ietf-mimi-protocol-06 §3.5, §5.3, §5.5, §7.4; room-policy-04 §8.1.2-§8.1.3; mls-extensions-09 §6.3.1).

With the SUT as hub, the suite acts as a removed reference-follower client: it takes that client's
MLS state before the removal (``ref_follower.member_state``) and submits, as follower.ref.test,
what the client can still build; the hub must refuse it. With the SUT as follower, the SUT's own
clients are removed, leave or remove others, and what they sent and received is judged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
from urllib.parse import urlsplit

import pytest

from conformance.harness.actors import User
from conformance.harness.attribution import blockers
from conformance.harness.control import ControlProblem
from conformance.harness.polling import PollTimeout
from conformance.harness.reference_names import current
from conformance.scenarios.notify_bodies import ambiguous_if_read_otherwise, read_fanouts
from conformance.scenarios.roles import as_hub, both_roles
from conformance.verdicts import (
    HarnessError,
    blocked,
    current_ledger,
    expect,
    fail,
    judging,
    miss,
    not_applicable,
    observed,
)
from reference_peer.mls import (
    app_data_update_proposal,
    basic_credential,
    cipher_suite,
    gce_proposal,
    remove_proposal,
    self_remove_proposal,
)
from reference_peer.mls.group import external_senders_extension, set_extension
from reference_peer.room import participants as plist_mod
from reference_peer.room.naming import user_of_credential
from reference_peer.wire.codec import DecodeError, EncodeError
from reference_peer.wire.mimi import (
    COMPONENT_PARTICIPANT_LIST,
    COMPONENT_ROOM_METADATA,
    Protocol,
    RoomMetaData,
    SubmitMessageRequest,
    SubmitMessageResponse,
    SubmitResponseCode,
    UpdateRequest,
    UpdateResponseCode,
    UpdateRoomResponse,
    Uri,
    UTF8String,
)
from reference_peer.wire.mls import ContentType, ExtensionType, ExternalSender, ProposalType

FOLLOWER_DOMAIN = current().follower  # follower-k.ref.test on worker k: the plugin fixes it before import
ADMIN = 3
BANNED = 1
MEMBER = 2

REMOVE_SIMULTANEOUS = "PROTO-UPDATE-REMOVE-SIMULTANEOUS"
NO_CLIENTS_LEFT = "POLICY-CAP-REMOVE-PARTICIPANT-NO-CLIENTS-LEFT"
BLOCK_SEND = "PROTO-REMOVAL-BLOCK-APP-SEND"
BLOCK_RECEIVE = "PROTO-REMOVAL-BLOCK-APP-RECEIVE"
BLOCK_COMMITS = "PROTO-REMOVAL-BLOCK-COMMITS"
ONLY_REMOVE_PROPOSALS = "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS"
LEAVE_CACHED = "PROTO-UPDATE-SELF-LEAVE-CACHED"
SELF_ALL_CLIENTS = "POLICY-CAP-REMOVE-SELF-ALL-CLIENTS"
REMOVED_GETS_COMMIT = "PROTO-FANOUT-REMOVED-GETS-COMMIT"
SELFREMOVE_INFORMED = "MLSEXT-SELFREMOVE-REMOVED-INFORMED"
BAN_REMOVES_CLIENTS = "POLICY-CAP-BAN-REMOVES-CLIENTS"
EXTSENDERS_LAST_FOLLOWER = "PROTO-EXTSENDERS-REMOVE-LAST-FOLLOWER"


# --------------------------------------------------------------------------------------------
# set-up, and what the suite's reference peers recorded when they refused the SUT

_RULE_TAG = re.compile(r"\[([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+)\]")
_LABELS = {"sut": "the SUT", "ref-hub": "the suite's reference hub", "ref-follower": "the suite's reference follower"}


def _label(party) -> str:
    return _LABELS.get(party.name, party.name)


def recorded_refusals(reference, mark: int, since: float, sut_domain: str, endpoint: str = "update") -> list[str]:
    """What the reference peer ``reference`` recorded when it refused the SUT's requests after ``mark`` (its
    traffic log) and ``since`` (its transport refusals): each a readable reason, the rule as ``[ID]`` when
    the peer names it."""
    reasons: list[str] = []
    for item in reference.traffic(mark, endpoint=endpoint, direction="in", peer=sut_domain):
        if item.status is None or not 200 <= item.status < 300:  # a refusal whatever the status (AMB-FAILURE-CODE-STATUS)
            reasons.append(f"/{endpoint} answered HTTP {item.status}{f' ({item.error})' if item.error else ''}")
            continue
        try:
            if endpoint == "submitMessage":
                submitted = SubmitMessageResponse.decode(item.response)
                if submitted.statusCode != SubmitResponseCode.accepted:
                    reasons.append(f"submitMessage answered {submitted.statusCode.name}")
                continue
            answer = UpdateRoomResponse.decode(item.response)
        except (DecodeError, EncodeError):
            continue
        if answer.responseCode != UpdateResponseCode.success:
            reasons.append(f"{answer.responseCode.name}: {answer.errorDescription or '(no description)'}")
    try:
        violations = reference._introspect("violations", since=since)
    except HarnessError:
        violations = {}
    for found in blockers(violations, _label(reference), [sut_domain]):
        reasons.append(f"{found.evidence} [{found.requirement}]")
    return list(dict.fromkeys(reasons))


def refused_by_reference(reference, mark: int, since: float, sut_domain: str, what: str, *,
                         endpoint: str = "update") -> tuple[str, str | None]:
    """A readable sentence for ``what`` the SUT sent that ``reference`` refused, with the reason it recorded,
    and the rule it names (the first ``[ID]``), if any."""
    reasons = recorded_refusals(reference, mark, since, sut_domain, endpoint)
    if not reasons:
        return f"{what} was refused by {_label(reference)} (it recorded no reason)", None
    rule = next((m.group(1) for r in reasons for m in [_RULE_TAG.search(r)] if m), None)
    return f"{what} was refused by {_label(reference)}, which recorded: {'; '.join(reasons)}", rule


def judge_reference_refusal(message: str, rule: str | None, requirement: str) -> None:
    """The SUT sent something a reference peer refused: a miss of ``requirement`` when the refusal names it
    (or names nothing), blocked by the rule it names otherwise."""
    if rule is not None and rule != requirement and rule not in _own_requirements():
        blocked(rule, message)
    fail(message, requirement=rule if rule in _own_requirements() else requirement)


def _own_requirements() -> tuple[str, ...]:
    ledger = current_ledger()
    return ledger.requirements if ledger is not None else ()


def _hub_said(result: dict) -> str:
    said = result.get("hubResponse") or {}
    code = said.get("code") or f"HTTP {said.get('httpStatus')}"
    return f"{code}{': ' + said['detail'] if said.get('detail') else ''}"


def setup_add(party, room: str, actor, user, *, hub, **extra) -> dict:
    """addParticipant as a check's set-up (not what it judges), with one outcome for each way it fails:
    the SUT declining to hand out its user's KeyPackages, or refusing as hub, is NOT_APPLICABLE (nothing to
    judge here, other checks judge why); the SUT's commit refused by the suite's reference hub for a rule it
    names is blocked by that rule; a failure of the suite's own peers is HARNESS_ERROR. Always a sentence."""
    sut_acts = not party.is_reference
    mark = hub.traffic_mark() if sut_acts and hub.is_reference else 0
    since = time.time() - 1.0
    result = party.add(room, actor, user, **extra)
    outcome = result.get("outcome")
    if outcome == "accepted":
        return result
    target = user.uri if isinstance(user, User) else user
    target_on_sut = isinstance(user, User) and not user.party.is_reference
    doing = f"{_label(party)} adding {target} to {room}"
    if outcome == "noKeyMaterial":
        material = result.get("keyMaterial") or {}
        status = material.get("userStatus", "no status")
        if target_on_sut:
            not_applicable(f"set-up failed: {doing} got no usable KeyPackage from the SUT (keyMaterial {status}), "
                           "so this check has nothing to judge; the key-material and consent checks judge why")
        raise HarnessError(f"set-up failed: {doing} got no usable KeyPackage from {_label(user.party)} "
                           f"(keyMaterial {status}): the suite's own peer failed")
    if outcome == "rejectedByHub":
        if not hub.is_reference:
            not_applicable(f"set-up failed: the SUT as hub refused {doing} ({_hub_said(result)}), so this check "
                           "has nothing to judge")
        if sut_acts:
            message, rule = refused_by_reference(hub, mark, since, party.domain, f"the SUT's commit adding {target} "
                                                 f"to {room}")
            if rule is not None and rule not in _own_requirements():
                blocked(rule, f"set-up failed: {message}")
            not_applicable(f"set-up failed: {message}; so this check has nothing to judge")
        raise HarnessError(f"set-up failed: {_label(hub)} refused {doing} ({_hub_said(result)}): the suite's own "
                           "peers failed")
    raise HarnessError(f"set-up failed: {doing} answered outcome {outcome!r} ({result})")


@contextlib.contextmanager
def setting_up(what: str):
    """A wait of the set-up (not what the check judges): a timeout means the check has nothing to judge."""
    try:
        yield
    except PollTimeout as exc:
        not_applicable(f"set-up did not complete ({what}): {exc}; so this check has nothing to judge")


# --------------------------------------------------------------------------------------------
# helpers


def _sut_admin_room(cast):
    """A room on the hub with an admin user on the SUT (the room's creator when the SUT is hub,
    else added with the admin role by the reference hub's creator); returns (room, admin)."""
    if cast.sut_role == "hub":
        admin = cast.hub.create_user("admin")
        return cast.hub.create_room(admin), admin
    creator = cast.hub.create_user("creator")
    room = cast.hub.create_room(creator)
    admin = cast.sut.create_user("admin")
    setup_add(cast.hub, room, creator, admin, hub=cast.hub, role=ADMIN)
    with setting_up("the SUT's admin to join the room"):
        cast.sut.wait_epoch(room, cast.hub.room(room)["epoch"], what="the SUT's admin to join the room (Welcome)")
    return room, admin


def _hub_room(cast):
    admin = cast.hub.create_user("admin")
    return cast.hub.create_room(admin), admin


def _add(cast, room, actor, user, **extra) -> dict:
    """Set-up addParticipant by ``actor``'s party (the hub's, unless ``actor`` is another party's user)."""
    party = actor.party if isinstance(actor, User) else cast.hub
    return setup_add(party, room, actor, user, hub=cast.hub, **extra)


def _reference_view(cast, room, witness_client: str) -> tuple[int, dict[int, bytes | None], dict[bytes, int]]:
    """(epoch, leaf index -> user URI, participant roles) from ONE snapshot of the reference party's view.

    One snapshot, because reading the tree and the participant list separately can straddle the commit
    under judgement: a stale tree beside a fresh list would look like a removal that was not simultaneous."""
    if cast.reference is cast.hub:
        state = cast.hub.hub_state(room)
        return state.epoch, state.member_users(), state.roles()
    member = cast.reference.member_state(room, witness_client)
    users = {i: user_of_credential(leaf.credential) for i, leaf in member.group.members()}
    return member.epoch, users, plist_mod.roles_by_user(member.participant_list())


def _reference_tree_users(cast, room, witness_client: str) -> dict[int, bytes | None]:
    """leaf index -> user URI in the reference party's current view of the group."""
    return _reference_view(cast, room, witness_client)[1]


def _reference_plist(cast, room, witness_client: str) -> dict[bytes, int]:
    return _reference_view(cast, room, witness_client)[2]


def _synced_state(ref_follower, sut_party, room, client, poll_until):
    """The reference follower client's member state once it is at the SUT hub's epoch (set-up)."""
    epoch = sut_party.room(room)["epoch"]
    with setting_up(f"{client} to reach epoch {epoch}"):
        return poll_until(
            lambda: (m := ref_follower.member_state(room, client)).epoch >= epoch and m,
            what=f"{client} to reach epoch {epoch} of {room}",
        )


def _authority(sut, room: str) -> str:
    """host[:port] of the SUT's base URL for the room's hub domain."""
    domain = room.split("/")[2]
    return urlsplit(sut.base_urls.get(domain, sut.base_urls[sut.primary_domain])).netloc


@dataclasses.dataclass(frozen=True)
class HubAnswer:
    """What the SUT as hub answered to an /update or /submitMessage. -06 §5.3/§5.4 give the failure codes but
    no HTTP status for a refusal (AMB-FAILURE-CODE-STATUS): any non-2xx status, or a 2xx whose response code
    is not success (accepted), is a refusal; what a MUST-prevent check then judges is that nothing was
    applied, committed or fanned out."""

    status: int
    update: UpdateRoomResponse | None = None
    submit: SubmitMessageResponse | None = None

    @property
    def accepted(self) -> bool:
        if not 200 <= self.status < 300:
            return False
        if self.update is not None:
            return self.update.responseCode == UpdateResponseCode.success
        return self.submit is not None and self.submit.statusCode == SubmitResponseCode.accepted

    @property
    def refused(self) -> bool:
        return not self.accepted

    @property
    def code(self) -> UpdateResponseCode | SubmitResponseCode | None:
        """The response code, when the answer carried one."""
        return self.update.responseCode if self.update is not None else (
            self.submit.statusCode if self.submit is not None else None)

    @property
    def label(self) -> str:
        """The answer, readably: the response code (with its description), or the HTTP status."""
        if self.update is not None:
            detail = self.update.errorDescription if self.refused else ""
            return self.update.responseCode.name + (f" {detail!r}" if detail else "")
        if self.submit is not None:
            return self.submit.statusCode.name
        return f"HTTP {self.status}"


def _post(mimi_as, sut, room, endpoint: str, body: bytes, requirement: str) -> HubAnswer:
    session = mimi_as(FOLLOWER_DOMAIN)
    reply = session.run(session.client.call(_authority(sut, room), endpoint, room, body))
    if not 200 <= reply.status < 300:
        return HubAnswer(reply.status)  # a refusal whatever the status: what was refused is judged by its effect
    kind = UpdateRoomResponse if endpoint == "update" else SubmitMessageResponse
    try:
        decoded = kind.decode(reply.body)
    except (DecodeError, EncodeError) as exc:
        fail(f"/{endpoint} answered HTTP {reply.status} with a body that is no {kind.__name__}: {exc}",
             requirement=requirement)
    return HubAnswer(reply.status, **({"update": decoded} if endpoint == "update" else {"submit": decoded}))


def _post_update(mimi_as, sut, room, body: bytes, requirement: str) -> HubAnswer:
    return _post(mimi_as, sut, room, "update", body, requirement)


def _post_submit(mimi_as, sut, room, body: bytes, requirement: str) -> HubAnswer:
    return _post(mimi_as, sut, room, "submitMessage", body, requirement)


def _handshake_bytes(update_request: bytes) -> bytes:
    """The MLSMessage (proposal or commit) an UpdateRequest carries, as a hub fans it out."""
    return UpdateRequest.decode(update_request, scope={"protocol": Protocol.mls10}).bundle.proposalOrCommit.encode()


def fanned_out_since(ref_follower, mark: int, message: bytes) -> bool:
    """Whether the SUT hub's /notify to the suite's reference follower since ``mark`` carried ``message``."""
    return any(message in (item.request or b"")
               for item in ref_follower.traffic(mark, endpoint="notify", direction="in"))


def judge_not_applied(requirement: str, ref_follower, mark: int, message: bytes, what: str, *,
                      sentinel=None, epoch_before: int | None = None, sut_party=None, room: str | None = None) -> str:
    """After the SUT as hub refused ``what`` (the MLSMessage ``message``): nothing of it was applied or fanned
    out. ``epoch_before``: the room's epoch before a refused commit, which must not have advanced.
    ``sentinel()``: a later exchange the hub fans out to the reference follower, awaited (set-up) so that a
    fan-out of the refused message would have arrived before it. A miss of ``requirement``, else the evidence."""
    if epoch_before is not None:
        epoch = sut_party.room(room)["epoch"]
        if epoch != epoch_before:
            fail(f"the hub refused {what} but the room moved from epoch {epoch_before} to {epoch}",
                 requirement=requirement)
    if sentinel is not None:
        sentinel()
    if fanned_out_since(ref_follower, mark, message):
        fail(f"the hub refused {what} but fanned it out to {FOLLOWER_DOMAIN}", requirement=requirement)
    return ("nothing of it was applied" + (f" (the room stayed at epoch {epoch_before})" if epoch_before is not None
                                           else "") + f" or fanned out to {FOLLOWER_DOMAIN}")


def _message_sentinel(cast, room, admin, witness_client: str, label: bytes):
    """A sentinel for :func:`judge_not_applied`: the hub's admin sends ``label``; the reference follower's
    ``witness_client`` receives it."""
    def wait() -> None:
        cast.hub.send_ok(room, admin.client, label)
        with setting_up(f"{witness_client} to receive {label!r}"):
            cast.follower.wait_received(witness_client, label, room=room,
                                        what=f"{witness_client} to receive {label!r} (sent after the refusal)")
    return wait


def _plist_removal(member, user: bytes):
    index = plist_mod.index_of(member.participant_list(), user)
    if index is None:
        raise HarnessError(f"{user!r} is not in the reference client's participant list")
    return app_data_update_proposal(int(COMPONENT_PARTICIPANT_LIST), plist_mod.make_update(removed=[index]).encode())


def _accepted_or_inapplicable(answer: HubAnswer, what: str) -> None:
    """The SUT as hub refused a set-up step a reference client sent: nothing to judge here."""
    if answer.refused:
        not_applicable(f"set-up failed: the SUT as hub refused {what} ({answer.label}), so this check has nothing "
                       "to judge")


def _sut_action(cast, result: dict, what: str, requirement: str, mark: int, since: float) -> None:
    """A membership action the SUT was asked to make (``result``: its ActionResult) must be accepted by the
    hub; a refusal misses ``requirement`` with the hub's reason (the reference hub's own record of it when
    the SUT is follower), or is blocked by the other rule the reference hub names."""
    if result.get("outcome") == "accepted":
        return
    if cast.sut_role == "follower" and result.get("outcome") == "rejectedByHub":
        message, rule = refused_by_reference(cast.hub, mark, since, cast.sut.domain, what)
        judge_reference_refusal(message, rule, requirement)
    fail(f"{what} was not accepted ({result.get('outcome')}: {_hub_said(result)})", requirement=requirement)


def _mark(cast) -> tuple[int, float]:
    """Where the reference hub's records stand now (to read what it refused of the SUT's after this)."""
    return (cast.hub.traffic_mark() if cast.sut_role == "follower" else 0), time.time() - 1.0


def _pending_removal(cast, sut, ref_follower, sut_party, mimi_as, poll_until, recorder, requirement):
    """SUT hub room with a reference-follower admin (dave) and member (bob); dave's proposals removing
    bob (participant list and every client) are accepted but not committed. Returns (room, bob, bob's state,
    the SUT's admin, dave)."""
    room, admin = _hub_room(cast)
    dave = ref_follower.create_user("dave")
    bob = ref_follower.create_user("bob")
    _add(cast, room, admin, dave, role=ADMIN)
    _add(cast, room, admin, bob)
    dave_state = _synced_state(ref_follower, sut_party, room, dave.client, poll_until)
    bob_state = _synced_state(ref_follower, sut_party, room, bob.client, poll_until)
    leaves = dave_state.leaves_of_user(bob.uri.encode())
    body = dave_state.proposals_request([_plist_removal(dave_state, bob.uri.encode()),
                                         *[remove_proposal(leaf) for leaf in leaves]])
    recorder.note(f"dave proposes the removal of {bob.uri} (not committed)")
    _accepted_or_inapplicable(_post_update(mimi_as, sut, room, body, requirement), "the admin's proposals removing bob")
    return room, bob, bob_state, admin, dave


# --------------------------------------------------------------------------------------------
# removing a user


@both_roles
@pytest.mark.requirements(REMOVE_SIMULTANEOUS, NO_CLIENTS_LEFT)
@pytest.mark.operations("createUser", "addParticipant", "removeParticipant", "getRoom", hub=("createRoom",))
def test_removing_a_user_removes_all_its_clients(cast, poll_until, recorder):
    """A user removed through the SUT leaves the participant list and the MLS group with all of its
    clients in the same commit."""
    room, admin = _sut_admin_room(cast)
    bob = cast.reference.create_user("bob", clients=2)
    witness = cast.reference.create_user("witness")
    _add(cast, room, admin, bob)
    _add(cast, room, admin, witness)
    with setting_up("both of bob's clients in the group"):
        poll_until(lambda: len([u for u in _reference_tree_users(cast, room, witness.client).values()
                                if u == bob.uri.encode()]) == 2, what="both of bob's clients in the group")
    mark, since = _mark(cast)
    result = cast.sut.remove(room, admin, bob)
    _sut_action(cast, result, "the SUT's removal of a user with two clients", NO_CLIENTS_LEFT, mark, since)
    epoch = result.get("epoch")

    def commit_seen():
        seen_epoch, users, plist = _reference_view(cast, room, witness.client)
        gone = bob.uri.encode() not in plist or bob.uri.encode() not in users.values()
        return (gone or (epoch is not None and seen_epoch >= epoch)) and (users, plist)

    with judging(REMOVE_SIMULTANEOUS):
        users, plist = poll_until(commit_seen, what="the commit removing bob in the reference view")
    left = [i for i, u in users.items() if u == bob.uri.encode()]
    listed = bob.uri.encode() in plist
    recorder.note(f"after the removal: bob listed {listed}, his clients at leaves {left}")
    if left:
        miss(NO_CLIENTS_LEFT, f"after the commit removing bob, his clients at leaves {left} are still in the group")
    else:
        observed(NO_CLIENTS_LEFT, "neither of bob's 2 clients is in the group after the commit removing him")
    if listed != bool(left):
        miss(REMOVE_SIMULTANEOUS, f"the commit removing bob {'left him on' if listed else 'took him off'} the "
             f"participant list but {'removed' if listed else 'left'} his clients "
             f"{'' if listed else f'at leaves {left} '}in the MLS group: not in the same commit")
    elif listed:
        miss(REMOVE_SIMULTANEOUS, "after the accepted removal, bob is still on the participant list with his clients "
             "in the group")
    elif bob.uri in cast.sut.participants(room):
        miss(REMOVE_SIMULTANEOUS, "the SUT still lists the removed user as a participant")
    else:
        observed(REMOVE_SIMULTANEOUS, "bob left the participant list in the same commit that removed his 2 clients")


@as_hub
@pytest.mark.requirements(REMOVE_SIMULTANEOUS, NO_CLIENTS_LEFT)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_hub_refuses_commit_leaving_a_removed_users_client(cast, sut, ref_follower, sut_party, mimi_as, poll_until, recorder):
    """The hub refuses a commit that takes a user off the participant list but leaves one of its clients."""
    room, admin = _hub_room(cast)
    dave = ref_follower.create_user("dave")
    bob = ref_follower.create_user("bob", clients=2)
    _add(cast, room, admin, dave, role=ADMIN)
    _add(cast, room, admin, bob)
    dave_state = _synced_state(ref_follower, sut_party, room, dave.client, poll_until)
    leaves = dave_state.leaves_of_user(bob.uri.encode())
    if len(leaves) != 2:
        not_applicable(f"set-up failed: bob should have two clients in the SUT's group, the reference client sees "
                       f"leaves {leaves}, so this check has nothing to judge")
    out = dave_state.commit([_plist_removal(dave_state, bob.uri.encode()), remove_proposal(leaves[0])],
                            include_cached=False)
    recorder.note("dave commits bob's participant-list removal with the Remove of only one of his two clients")
    epoch, mark = sut_party.room(room)["epoch"], ref_follower.traffic_mark()
    with judging(NO_CLIENTS_LEFT):
        answer = _post_update(mimi_as, sut, room, out.request, NO_CLIENTS_LEFT)
    recorder.note(f"the hub answered {answer.label}")
    if answer.accepted:
        miss(NO_CLIENTS_LEFT, "the hub accepted a commit removing bob from the participant list while one of his "
             "clients stays in the group")
        miss(REMOVE_SIMULTANEOUS, "the hub accepted a commit taking bob off the participant list without the MLS "
             "removal of all his clients")
        return
    what = "a commit removing bob but only one of his 2 clients"
    with judging(NO_CLIENTS_LEFT):
        effect = judge_not_applied(NO_CLIENTS_LEFT, ref_follower, mark, _handshake_bytes(out.request), what,
                                   sentinel=_message_sentinel(cast, room, admin, dave.client, b"after the refusal"),
                                   epoch_before=epoch, sut_party=sut_party, room=room)
    refused = f"the hub refused ({answer.label}) {what}; {effect}"
    observed(NO_CLIENTS_LEFT, refused)
    observed(REMOVE_SIMULTANEOUS, refused)


# --------------------------------------------------------------------------------------------
# a removed member can neither send, commit, propose (except its removal) nor receive


@as_hub
@pytest.mark.requirements(BLOCK_SEND)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "removeParticipant", "sendMessage")
def test_hub_refuses_message_from_removed_member(cast, sut, ref_follower, sut_party, mimi_as, poll_until, recorder):
    """After a removal is accepted, the hub refuses a removed client's application messages (-06 names no HTTP
    status for the refusal: 200 with notAllowed or a 4xx, AMB-FAILURE-CODE-STATUS) and fans none of them out."""
    room, admin = _hub_room(cast)
    bob = ref_follower.create_user("bob")
    witness = ref_follower.create_user("witness")
    _add(cast, room, admin, bob)
    _add(cast, room, admin, witness)
    bob_state = _synced_state(ref_follower, sut_party, room, bob.client, poll_until)
    removal = cast.hub.remove(room, admin, bob)
    if removal.get("outcome") != "accepted":
        not_applicable(f"set-up failed: the SUT refused its own admin's removal of bob ({removal.get('outcome')}: "
                       f"{_hub_said(removal)}), so there is no removed member to judge")
    epoch = sut_party.room(room)["epoch"]
    request = SubmitMessageRequest.decode(bob_state.send(b"from a removed member"))
    # The hub cannot decrypt: only the membership of the sender can make it refuse, whatever the epoch.
    message = request.appMessage
    current = request.replace(appMessage=message.replace(private_message=message.private_message.replace(epoch=epoch)))
    answers = []
    mark = ref_follower.traffic_mark()
    sent = []
    for label, body in (("current-epoch", current.encode()), ("stale-epoch", request.encode())):
        answer = _post_submit(mimi_as, sut, room, body, BLOCK_SEND)
        recorder.note(f"{label} message from removed bob: {answer.label}")
        if answer.accepted:
            fail(f"the hub accepted a {label} application message from a removed participant", requirement=BLOCK_SEND)
        answers.append(f"{label} {answer.label}")
        sent.append((label, SubmitMessageRequest.decode(body).appMessage.encode()))
    # Refused, whatever the status and code: the messages must not reach the room's other members.
    _message_sentinel(cast, room, admin, witness.client, b"after the removed member's messages")()
    for label, message in sent:
        if fanned_out_since(ref_follower, mark, message):
            fail(f"the hub refused the {label} message from a removed participant but fanned it out to "
                 f"{FOLLOWER_DOMAIN}", requirement=BLOCK_SEND)
    observed(BLOCK_SEND, f"the removed client's messages were refused ({', '.join(answers)}) and none was fanned "
             f"out to {FOLLOWER_DOMAIN}")


@as_hub
@pytest.mark.requirements(BLOCK_COMMITS)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_hub_refuses_commit_from_member_being_removed(cast, sut, ref_follower, sut_party, mimi_as, poll_until, recorder):
    """Once a user's removal is accepted (even before it is committed), the hub refuses commits from its clients."""
    room, bob, bob_state, admin, dave = _pending_removal(cast, sut, ref_follower, sut_party, mimi_as, poll_until,
                                                         recorder, BLOCK_COMMITS)
    out = bob_state.commit([], include_cached=False)
    epoch, mark = sut_party.room(room)["epoch"], ref_follower.traffic_mark()
    answer = _post_update(mimi_as, sut, room, out.request, BLOCK_COMMITS)
    recorder.note(f"bob's commit while his removal is pending: {answer.label}")
    if answer.accepted:
        fail("the hub accepted a commit from a client whose user's removal it had accepted", requirement=BLOCK_COMMITS)
    effect = judge_not_applied(BLOCK_COMMITS, ref_follower, mark, _handshake_bytes(out.request),
                               "a commit from a client being removed",
                               sentinel=_message_sentinel(cast, room, admin, dave.client, b"after bob's commit"),
                               epoch_before=epoch, sut_party=sut_party, room=room)
    observed(BLOCK_COMMITS, f"the commit of a client being removed was refused ({answer.label}); {effect}")


@as_hub
@pytest.mark.requirements(ONLY_REMOVE_PROPOSALS)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_member_being_removed_may_only_propose_its_removal(cast, sut, ref_follower, sut_party, mimi_as, poll_until, recorder):
    """A client of a user whose removal is accepted may send SelfRemove, but the hub refuses its Update
    proposal and its AppDataUpdate of the room metadata.

    -06 §5.3: the hub "MUST prevent it from sending any proposals except for Remove and SelfRemove
    [I-D.ietf-mls-extensions] proposals for its users in that group." An AppDataUpdate of a component
    other than the participant list is neither. (The participant-list AppDataUpdate removing the user
    itself, which a leave sends with its SelfRemove, is not judged here.)"""
    room, bob, bob_state, admin, dave = _pending_removal(cast, sut, ref_follower, sut_party, mimi_as, poll_until,
                                                         recorder, ONLY_REMOVE_PROPOSALS)
    update = bob_state.proposal_messages_request([bob_state.group.propose_update()])
    mark = ref_follower.traffic_mark()
    answer = _post_update(mimi_as, sut, room, update, ONLY_REMOVE_PROPOSALS)
    recorder.note(f"bob's Update proposal: {answer.label}")
    if answer.accepted:
        fail("the hub accepted an Update proposal from a client whose user's removal it had accepted",
             requirement=ONLY_REMOVE_PROPOSALS)
    effect = judge_not_applied(ONLY_REMOVE_PROPOSALS, ref_follower, mark, _handshake_bytes(update),
                               "an Update proposal from a client being removed",
                               sentinel=_message_sentinel(cast, room, admin, dave.client, b"after bob's proposal"))
    observed(ONLY_REMOVE_PROPOSALS, f"the Update proposal of a client being removed was refused ({answer.label}); "
             f"{effect}")
    metadata = RoomMetaData(room_uri=Uri(uri=str(room).encode()), room_name=UTF8String(string="renamed by bob"),
                            room_descriptions=[], room_avatar=Uri(uri=b""), room_subject=UTF8String(string=""),
                            room_mood=UTF8String(string=""))
    rename = bob_state.proposals_request([app_data_update_proposal(COMPONENT_ROOM_METADATA, metadata.encode())])
    mark = ref_follower.traffic_mark()
    answer = _post_update(mimi_as, sut, room, rename, ONLY_REMOVE_PROPOSALS)
    recorder.note(f"bob's AppDataUpdate proposal of the room metadata: {answer.label}")
    if answer.accepted:
        fail("the hub accepted an AppDataUpdate proposal of the room metadata from a client whose user's removal it "
             "had accepted", requirement=ONLY_REMOVE_PROPOSALS)
    effect = judge_not_applied(ONLY_REMOVE_PROPOSALS, ref_follower, mark, _handshake_bytes(rename),
                               "a room-metadata AppDataUpdate proposal from a client being removed",
                               sentinel=_message_sentinel(cast, room, admin, dave.client, b"after bob's rename"))
    observed(ONLY_REMOVE_PROPOSALS, f"the room-metadata AppDataUpdate proposal of a client being removed was refused "
             f"({answer.label}); {effect}")
    answer = _post_update(mimi_as, sut, room, bob_state.proposals_request([self_remove_proposal()]),
                          ONLY_REMOVE_PROPOSALS)
    recorder.note(f"bob's SelfRemove proposal: {answer.label}")
    expect(ONLY_REMOVE_PROPOSALS, answer.accepted,
           f"the hub refused the SelfRemove of a client being removed: {answer.label}",
           evidence="its SelfRemove proposal was accepted")


@as_hub  # the rule binds the hub; as follower the SUT's removed client cannot decrypt anyway (MLS)
@pytest.mark.requirements(BLOCK_RECEIVE)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "sendMessage", "getRoom", "removeParticipant")
def test_removed_client_receives_no_later_message(cast, sut, mimi_as, poll_until, recorder):
    """No application message sent after a user's removal reaches any of its clients, while a remaining
    client of the same provider receives it."""
    room, admin = _hub_room(cast)
    bob = cast.follower.create_user("bob", clients=2)
    witness = cast.follower.create_user("witness")
    _add(cast, room, admin, bob)
    _add(cast, room, admin, witness)
    cast.hub.send_ok(room, admin.client, b"before removal")
    with setting_up("bob's clients to receive a message before the removal"):
        for client in bob.clients:
            cast.follower.wait_received(client, b"before removal", room=room)
    removed = False
    if cast.sut_role == "hub":
        # A removal by a reference admin whose commit forgets one of bob's clients: a hub must refuse
        # it (then the SUT's own admin removes bob); a hub that accepts it leaves that client listening.
        dave = cast.follower.create_user("dave")
        _add(cast, room, admin, dave, role=ADMIN)
        epoch = cast.hub.room(room)["epoch"]
        with setting_up("dave to reach the hub's epoch"):
            dave_state = poll_until(lambda: (m := cast.follower.member_state(room, dave.client)).epoch >= epoch and m,
                                    what="dave to reach the hub's epoch")
        leaves = dave_state.leaves_of_user(bob.uri.encode())
        out = dave_state.commit([_plist_removal(dave_state, bob.uri.encode()), remove_proposal(leaves[0])],
                                include_cached=False)
        removed = _post_update(mimi_as, sut, room, out.request, BLOCK_RECEIVE).accepted
        recorder.note(f"the hub {'accepted' if removed else 'refused'} a removal leaving one of bob's clients")
    if not removed:
        result = cast.hub.remove(room, admin, bob)
        if result.get("outcome") != "accepted":
            if cast.sut_role == "hub":  # the SUT could not remove bob at all: he stays a receiving member
                fail(f"the SUT's removal of bob was refused by itself as hub ({result.get('outcome')}: "
                     f"{_hub_said(result)})", requirement=BLOCK_RECEIVE)
            raise HarnessError(f"set-up failed: the suite's reference hub refused its admin's removal of bob "
                               f"({_hub_said(result)})")
    epoch = cast.hub.room(room)["epoch"]
    with setting_up("the follower to process the removal"):
        poll_until(lambda: (info := cast.follower.room(room)) is not None and info["epoch"] >= epoch,
                   what="the follower to process the removal")
    cast.hub.send_ok(room, admin.client, b"after removal")
    with setting_up("the remaining member to receive the message sent after the removal"):
        cast.follower.wait_received(witness.client, b"after removal", room=room,
                                    what="the remaining member to receive the message sent after the removal")
    for client in bob.clients:
        if b"after removal" in cast.follower.received(client, room):
            fail(f"removed bob's client {client} received a message sent after his removal", requirement=BLOCK_RECEIVE)
    observed(BLOCK_RECEIVE, f"the remaining member received the message sent after the removal; none of removed "
             f"bob's {len(bob.clients)} clients did")


# --------------------------------------------------------------------------------------------
# the removed user's provider gets the removing commit


@as_hub  # the rule binds the hub (what a follower does with the commit has no requirement of its own)
@pytest.mark.requirements(REMOVED_GETS_COMMIT)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "sendMessage", "removeParticipant")
def test_removed_users_provider_gets_the_removing_commit(cast, poll_until, recorder):
    """The provider of a removed user receives the commit removing its clients (its client sees it has been
    removed), even though that provider has no participant left in the room."""
    room, admin = _hub_room(cast)
    bob = cast.follower.create_user("bob")
    _add(cast, room, admin, bob)
    cast.hub.send_ok(room, admin.client, b"hello bob")
    with setting_up("bob to receive a message before his removal"):
        cast.follower.wait_received(bob.client, b"hello bob", room=room)
    mark = cast.reference.traffic_mark()
    result = cast.hub.remove(room, admin, bob)
    if result.get("outcome") != "accepted":
        not_applicable(f"set-up failed: the SUT refused its own admin's removal of bob ({result.get('outcome')}: "
                       f"{_hub_said(result)}), so there is no removing commit to judge")

    def removing_commit_seen() -> bool:
        for item in cast.follower.traffic(mark, endpoint="notify", direction="in"):
            for message in read_fanouts(item.request):  # as written, else the register's other reading
                if message.message.content_type() == ContentType.commit:
                    return True
        return False

    # A timeout here is the SUT's miss (scored by the requirement's level).
    poll_until(removing_commit_seen, what=f"a /notify carrying the commit removing bob at {FOLLOWER_DOMAIN}",
               requirement=REMOVED_GETS_COMMIT)
    observed(REMOVED_GETS_COMMIT, f"{FOLLOWER_DOMAIN}, with no participant left, received the commit removing bob")
    ambiguous_if_read_otherwise(REMOVED_GETS_COMMIT, "which /notify carried the removing commit")


# --------------------------------------------------------------------------------------------
# self-leave


@both_roles
@pytest.mark.requirements(SELF_ALL_CLIENTS)
@pytest.mark.operations("createUser", "addParticipant", "leaveRoom", hub=("createRoom", "removeParticipant"),
                        follower=("getRoom",))
def test_self_leave_removes_every_client_of_the_user(cast, ref_hub, poll_until, recorder):
    """A user with two clients leaving through the SUT proposes SelfRemove, the Remove of its other client and
    its participant-list removal; once committed, neither of its clients is in the group."""
    room, admin = _sut_admin_room(cast)
    leaver = cast.sut.create_user("leaver", clients=2)
    witness = cast.reference.create_user("witness")
    _add(cast, room, admin, leaver)
    _add(cast, room, admin, witness)
    with setting_up("both of the leaver's clients in the group"):
        poll_until(lambda: len([u for u in _reference_tree_users(cast, room, witness.client).values()
                                if u == leaver.uri.encode()]) == 2, what="both of the leaver's clients in the group")
    leaver_leaves = {i for i, u in _reference_tree_users(cast, room, witness.client).items() if u == leaver.uri.encode()}
    mark, since = _mark(cast)
    result = cast.sut.leave(room, leaver)
    _sut_action(cast, result, "the leave of a user with two clients through the SUT", SELF_ALL_CLIENTS, mark, since)
    if cast.sut_role == "follower":
        proposals = []  # (the proposing member's leaf, the proposal)
        for item in ref_hub.traffic(mark, endpoint="update", direction="in"):
            bundle = UpdateRequest.decode(item.request, scope={"protocol": Protocol.mls10}).bundle
            # moreProposals is present only with a proposal in proposalOrCommit (-06 §5.5 UpdateRequest).
            for msg in [bundle.proposalOrCommit, *(bundle.moreProposals or [])]:
                if msg.public_message is not None and msg.public_message.content.content_type == ContentType.proposal:
                    content = msg.public_message.content
                    proposals.append((content.sender.leaf_index, content.proposal))
        removes = [p for _, p in proposals if p.proposal_type == ProposalType.remove]
        self_removes = [leaf for leaf, p in proposals if p.proposal_type == ProposalType.self_remove]
        # A SelfRemove removes its sender's leaf, a Remove the leaf it names (a Remove of the proposer's own
        # leaf serves as well): together they must cover every client of the leaver.
        covered = set(self_removes) | {p.remove.removed for p in removes}
        recorder.note(f"the SUT sent {len(self_removes)} SelfRemove and {len(removes)} Remove proposal(s), "
                      f"covering leaves {sorted(covered)} of the leaver's {sorted(leaver_leaves)}")
        expect(SELF_ALL_CLIENTS, leaver_leaves <= covered,
               "the leaving user's proposals do not remove every one of its clients: they cover leaves "
               f"{sorted(covered)}, the leaver's clients are at {sorted(leaver_leaves)} "
               f"({len(self_removes)} SelfRemove, {len(removes)} Remove)",
               evidence=f"the SUT's {len(self_removes)} SelfRemove and {len(removes)} Remove cover both of the "
                        f"leaver's leaves {sorted(leaver_leaves)}")
    if cast.sut_role == "hub":
        commit = cast.sut.remove(room, admin, leaver)
    else:
        creator = next(u for u, p in cast.hub.participants(room).items() if p["role"] == ADMIN and u != admin.uri)
        commit = cast.hub.remove(room, creator, leaver.uri)
    if commit.get("outcome") != "accepted":
        fail(f"the commit of the leave was refused (a client of the leaver would remain?): "
             f"{commit.get('outcome')}: {_hub_said(commit)}", requirement=SELF_ALL_CLIENTS)
    poll_until(lambda: leaver.uri.encode() not in _reference_plist(cast, room, witness.client),
               what="the leaver to leave the participant list", requirement=SELF_ALL_CLIENTS)
    left = [i for i, u in _reference_tree_users(cast, room, witness.client).items() if u == leaver.uri.encode()]
    expect(SELF_ALL_CLIENTS, not left, f"after the leave, the leaver's clients at leaves {left} remain in the group",
           evidence="after the leave was committed, neither of the leaver's 2 clients is in the group")


@as_hub
@pytest.mark.requirements(LEAVE_CACHED)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_hub_requires_the_cached_leave_proposals(cast, sut, ref_follower, sut_party, mimi_as, poll_until, recorder):
    """-06 §3.5: "The leaving client sends these proposals to the hub. The hub caches the proposals. The next time
    a client attempts to commit, the hub requires the client to include the cached proposals." After a leave's
    proposals (SelfRemove and the participant-list removal) are accepted, the hub refuses a commit omitting
    both, and one carrying the SelfRemove by reference but omitting the participant-list removal (the sentence
    requires every cached proposal of the leave), and accepts one including both by reference."""
    room, admin = _hub_room(cast)
    dave = ref_follower.create_user("dave")
    leaver = ref_follower.create_user("leaver")
    _add(cast, room, admin, dave, role=ADMIN)
    _add(cast, room, admin, leaver)
    _synced_state(ref_follower, sut_party, room, dave.client, poll_until)
    result = ref_follower.leave(room, leaver)
    if result.get("outcome") != "accepted":
        fail(f"the hub refused a valid leave (SelfRemove and participant-list removal): {result.get('outcome')}: "
             f"{_hub_said(result)}", requirement=LEAVE_CACHED)
    with setting_up("dave to cache the leave proposals"):
        dave_state = poll_until(
            lambda: len((m := ref_follower.member_state(room, dave.client)).group.proposal_cache) >= 2 and m,
            what="dave to cache the leave proposals",
        )
    omitting = dave_state.commit([], include_cached=False)
    epoch, mark = sut_party.room(room)["epoch"], ref_follower.traffic_mark()
    answer = _post_update(mimi_as, sut, room, omitting.request, LEAVE_CACHED)
    recorder.note(f"commit omitting the leave: {answer.label}")
    omitted = answer.label
    if answer.accepted:
        fail("the hub accepted a commit omitting a leaving user's cached proposals", requirement=LEAVE_CACHED)
    judge_not_applied(LEAVE_CACHED, ref_follower, mark, _handshake_bytes(omitting.request),
                      "a commit omitting the leave proposals", epoch_before=epoch, sut_party=sut_party, room=room)
    dave_state.commit_refused()
    self_removes = [ref for ref, entry in dave_state.group.proposal_cache.items()
                    if entry.proposal.proposal_type == ProposalType.self_remove]
    if len(self_removes) != 1:
        raise HarnessError(f"dave cached {len(self_removes)} SelfRemove proposals of the leave, not one")
    partial = dave_state.commit([], by_reference=self_removes, include_cached=False)
    answer = _post_update(mimi_as, sut, room, partial.request, LEAVE_CACHED)
    recorder.note(f"commit with the leave's SelfRemove only (no participant-list removal): {answer.label}")
    if answer.accepted:
        fail("the hub accepted a commit carrying the leaving user's SelfRemove but omitting its cached "
             "participant-list removal", requirement=LEAVE_CACHED)
    judge_not_applied(LEAVE_CACHED, ref_follower, mark, _handshake_bytes(partial.request),
                      "a commit omitting the leave's participant-list removal", epoch_before=epoch,
                      sut_party=sut_party, room=room)
    omitted += f"; with the SelfRemove only: {answer.label}"
    dave_state.commit_refused()
    including = dave_state.commit([], include_cached=True)
    answer = _post_update(mimi_as, sut, room, including.request, LEAVE_CACHED)
    recorder.note(f"commit including the leave by reference: {answer.label}")
    if answer.refused:
        fail(f"the hub refused a commit including the leave proposals by reference: {answer.label}",
             requirement=LEAVE_CACHED)
    # The accepted commit is fanned out after the refused one would have been.
    with setting_up("dave to receive the commit including the leave"):
        poll_until(lambda: fanned_out_since(ref_follower, mark, _handshake_bytes(including.request)),
                   what=f"the commit including the leave to reach {FOLLOWER_DOMAIN}")
    for refused in (omitting, partial):
        if fanned_out_since(ref_follower, mark, _handshake_bytes(refused.request)):
            fail(f"the hub refused a commit omitting (some of) the leave proposals but fanned it out to "
                 f"{FOLLOWER_DOMAIN}", requirement=LEAVE_CACHED)
    observed(LEAVE_CACHED, f"commits omitting the cached leave proposals, both or the participant-list removal, "
             f"were refused ({omitted}) and neither applied nor fanned out; one including them by reference was "
             "accepted")


# --------------------------------------------------------------------------------------------
# ban and unban


@both_roles
@pytest.mark.requirements(BAN_REMOVES_CLIENTS)
@pytest.mark.operations("createUser", "addParticipant", "removeParticipant", "unbanParticipant", hub=("createRoom",),
                        follower=("getRoom",))
def test_banned_user_cannot_be_readded_until_unbanned(cast, poll_until, recorder):
    """A ban through the SUT moves the user to role 1 with no clients; it cannot be re-added until unbanned."""
    room, admin = _sut_admin_room(cast)
    bob = cast.reference.create_user("bob", clients=2)
    witness = cast.reference.create_user("witness")
    _add(cast, room, admin, bob)
    _add(cast, room, admin, witness)
    mark, since = _mark(cast)
    result = cast.sut.remove(room, admin, bob, mode="ban")
    _sut_action(cast, result, "the SUT's ban of a user with two clients", BAN_REMOVES_CLIENTS, mark, since)
    poll_until(lambda: _reference_plist(cast, room, witness.client).get(bob.uri.encode()) != MEMBER,
               what="the ban to reach the reference view", requirement=BAN_REMOVES_CLIENTS)
    role = _reference_plist(cast, room, witness.client).get(bob.uri.encode())
    if role != BANNED:
        fail(f"after the ban, bob's role is {role}, not 1 (banned)", requirement=BAN_REMOVES_CLIENTS)
    left = [i for i, u in _reference_tree_users(cast, room, witness.client).items() if u == bob.uri.encode()]
    if left:
        fail(f"after the ban, bob's clients at leaves {left} remain in the group", requirement=BAN_REMOVES_CLIENTS)
    observed(BAN_REMOVES_CLIENTS, "the ban made bob role 1 (banned) with none of his 2 clients left in the group")
    try:
        readd = cast.sut.add(room, admin, bob)
    except ControlProblem as exc:
        readd = {"outcome": f"refused: {exc}"}
    recorder.note(f"re-adding banned bob: {readd.get('outcome')}")
    if readd.get("outcome") == "accepted":
        fail("a banned user was re-added without being unbanned", requirement=BAN_REMOVES_CLIENTS)
    unban = cast.sut.unban(room, admin, bob, role=0)
    if unban.get("outcome") != "accepted":
        raise HarnessError(f"the unban of bob through the SUT was not accepted ({unban.get('outcome')}: "
                           f"{_hub_said(unban)}), so his re-addition cannot be tried")
    _add(cast, room, admin, bob)
    poll_until(lambda: _reference_plist(cast, room, witness.client).get(bob.uri.encode()) == MEMBER,
               what="unbanned bob to be a member again", requirement=BAN_REMOVES_CLIENTS)
    observed(BAN_REMOVES_CLIENTS, "banned bob could not be re-added until unbanned")


# --------------------------------------------------------------------------------------------
# external_senders after the last participant of a follower left


@as_hub
@pytest.mark.requirements(EXTSENDERS_LAST_FOLLOWER)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "removeParticipant")
def test_external_senders_drop_a_follower_whose_last_user_left(cast, sut, ref_follower, sut_party, mimi_as, poll_until,
                                                               recorder):
    """When the last participant of a follower provider listed in external_senders is removed, the next epochs'
    external_senders no longer list that provider."""
    room, admin = _hub_room(cast)
    bob = ref_follower.create_user("bob")
    _add(cast, room, admin, bob, role=ADMIN)
    bob_state = _synced_state(ref_follower, sut_party, room, bob.client, poll_until)
    # bob lists his provider as an external sender (as a hub may do when a follower's first user joins).
    suite = cipher_suite(bob_state.suite_id)
    _, public = suite.generate_signature_key_pair()
    entry = ExternalSender(signature_key=public, credential=basic_credential(f"mimi://{FOLLOWER_DOMAIN}".encode()))
    group = bob_state.group
    senders = [*group.external_senders(), entry]
    exts = set_extension(list(group.context.extensions), ExtensionType.external_senders,
                         external_senders_extension(senders).extension_data)
    answer = _post_update(mimi_as, sut, room, bob_state.commit([gce_proposal(exts)], include_cached=False).request,
                          EXTSENDERS_LAST_FOLLOWER)
    # A follower MAY add its own entry (PROTO-EXTSENDERS-FOLLOWER-MAY-ADD); a hub may decline it.
    _accepted_or_inapplicable(answer, f"bob's commit adding {FOLLOWER_DOMAIN} to external_senders")
    with setting_up(f"{FOLLOWER_DOMAIN} in the hub's external senders"):
        poll_until(lambda: FOLLOWER_DOMAIN in sut_party.room(room)["externalSenders"],
                   what=f"{FOLLOWER_DOMAIN} in the hub's external senders")
    removal = cast.hub.remove(room, admin, bob)
    if removal.get("outcome") != "accepted":
        not_applicable(f"set-up failed: the SUT refused its own admin's removal of bob ({removal.get('outcome')}: "
                       f"{_hub_said(removal)}), so the follower's last participant never left")
    # The next epoch: another commit by the hub's admin (adding a local user).
    carol = cast.hub.create_user("carol")
    _add(cast, room, admin, carol)
    info = sut_party.room(room)
    recorder.note(f"external senders at epoch {info['epoch']}: {info['externalSenders']}")
    expect(EXTSENDERS_LAST_FOLLOWER, FOLLOWER_DOMAIN not in info["externalSenders"],
           "the follower's external_senders entry remains after its last participant left",
           evidence=f"at epoch {info['epoch']}, after its last participant left, {FOLLOWER_DOMAIN} is no longer "
                    "an external sender")
