"""Hub transfer, the SUT as old hub up to the cut-over: the request, its policy, the target's consent,
the begin proposals, the transfer window and the abort (docs/extensions/hub-transfer.md sections 3-6.3,
11; project extension, scored only in the hub-transfer profiles).

The room lives on the SUT, created by a SUT admin (who holds canTransferHub); its other members are
clients of the reference follower. The target is the reference hub (or the reference follower). Every
judgment is on MIMI bytes: the SUT's answers to the hubTransfer requests the suite sends (as
follower.ref.test, from a copy of a reference client's MLS state) and what the SUT sent to the
reference peers (their traffic logs: /notify, prepare, abort). To hold a window open, the transfer is
started by a reference-follower admin whose client is told not to commit (``hold_transfer``): the
reference peer's initiating client is the one that commits the transfer proposals.
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from conformance.harness.polling import PollTimeout
from conformance.harness.reference_names import current
from conformance.scenarios.hub_transfer_support import transfer_settings
from conformance.scenarios.notify_bodies import ambiguous_if_read_otherwise, read_fanouts
from conformance.scenarios.refusals import submit_answer, update_answer
from conformance.verdicts import HarnessError, RequirementMissed, blocked, fail, miss, not_applicable, observed
from reference_peer.mls import app_data_update_proposal, cipher_suite
from reference_peer.mls.group import _decode_ext, _external_senders_codec, get_extension
from reference_peer.room.transfer import provider_uri, sender_domain
from reference_peer.wire.codec import DecodeError, EncodeError
from reference_peer.wire.hub_transfer import (
    MIMI_HUB_COMPONENT_ID,
    HubData,
    HubState,
    HubTransferCode,
    HubTransferMessage,
    HubTransferMessageType,
    HubTransferRequestTBS,
    HubTransferResponse,
    read_hub_data,
    sign_hub_transfer_request,
    verify_hub_transfer_abort,
)
from reference_peer.wire.identity import IdentifierUri
from reference_peer.wire.mimi import (
    FanoutMessage,
    Protocol,
    SubmitResponseCode,
    UpdateResponseCode,
    UpdateRoomResponse,
)
from reference_peer.wire.mls import (
    AppDataUpdateOperation,
    ContentType,
    ExtensionType,
    ProposalType,
    SenderType,
    WireFormat,
)

MLS10 = {"protocol": Protocol.mls10}
# This worker's reference domains (hub-k.ref.test on worker k): the plugin fixes them before import.
HUB_DOMAIN, FOLLOWER_DOMAIN = current()
UNREACHABLE = "unreachable-target.invalid"  # RFC 6761: never resolves
ADMIN = 3
AUTOCOMMIT_ALL = ["begin", "cutover", "abort"]

DECLARED = "EXT-HUBXFER-DECLARED"
DIRECTORY = "EXT-HUBXFER-DIRECTORY"
AT_CREATION = "EXT-HUBXFER-COMPONENT-AT-CREATION"
SENDER = "EXT-HUBXFER-COMPONENT-SENDER"
GENERATION = "EXT-HUBXFER-COMPONENT-GENERATION"
TRANSITIONS = "EXT-HUBXFER-COMPONENT-TRANSITIONS"
CAP_REQUIRED = "EXT-HUBXFER-CAP-REQUIRED"
REFUSED = "EXT-HUBXFER-REQUEST-REFUSED"
SOURCE = "EXT-HUBXFER-REQUEST-SOURCE"
ONE_AT_A_TIME = "EXT-HUBXFER-ONE-AT-A-TIME"
CONSENT_FIRST = "EXT-HUBXFER-CONSENT-FIRST"
DECLINE = "EXT-HUBXFER-DECLINE-CHANGES-NOTHING"
BEGIN = "EXT-HUBXFER-BEGIN-PROPOSALS"
PENDING = "EXT-HUBXFER-PENDING-REQUIRED"
TARGET_FANOUT = "EXT-HUBXFER-TARGET-FANOUT"
WINDOW_NORMAL = "EXT-HUBXFER-WINDOW-NORMAL"
NO_NEW_PROVIDERS = "EXT-HUBXFER-WINDOW-NO-NEW-PROVIDERS"
ABORT_TIMEOUT = "EXT-HUBXFER-ABORT-ON-TIMEOUT"
ABORT_NOTIFIES = "EXT-HUBXFER-ABORT-NOTIFIES-TARGET"

FANOUT = "PROTO-FANOUT-TO-ACTIVE-PROVIDERS"  # what the checks need, not what they judge (blocked())

OLD_HUB = "old-hub"


# -- helpers ---------------------------------------------------------------------------------------


def _authority(sut) -> str:
    return urlsplit(sut.base_urls[sut.primary_domain]).netloc


def _room(sut_party, ref_follower, *, admins=("dave",), members=("bob",)):
    """A room on the SUT created by a SUT admin, with reference-follower admins and members; returns
    (room, SUT admin, {name: user})."""
    admin = sut_party.create_user("admin")
    room = sut_party.create_room(admin)
    users = {}
    for name in admins:
        users[name] = ref_follower.create_user(name)
        sut_party.add_ok(room, admin, users[name], role=ADMIN)
    for name in members:
        users[name] = ref_follower.create_user(name)
        sut_party.add_ok(room, admin, users[name])
    ref_follower.wait_epoch(room, sut_party.room(room)["epoch"], what="the reference follower's clients to join")
    return room, admin, users


def _synced(ref_follower, sut_party, room, client, poll_until):
    """A copy of a reference follower client's state once it is at the SUT hub's epoch."""
    epoch = sut_party.room(room)["epoch"]
    try:
        return poll_until(lambda: (m := ref_follower.member_state(room, client)).epoch >= epoch and m,
                          what=f"{client} to reach epoch {epoch}")
    except PollTimeout as exc:
        blocked(FANOUT, f"the SUT never brought the reference follower's {client} to its epoch {epoch} (its fan-out "
                f"did not reach an active provider), so the check cannot act as a member: {exc}")


def _fanouts_from(party, room: str, after: int, sender: str, requirement: str) -> list[tuple[object, FanoutMessage]]:
    """(traffic item, FanoutMessage) of every /notify ``party`` received for ``room`` from ``sender``, read as
    written, else in the register's other reading (recorded for the SUT's bodies: notify_bodies); an
    undecodable body is a miss of ``requirement`` (what the caller reads the fan-out for)."""
    out = []
    for item in party.traffic(after, endpoint="notify", direction="in"):
        if item.value != room or item.peer != sender:
            continue
        try:
            out += [(item, m) for m in read_fanouts(item.request, record=sender not in (HUB_DOMAIN, FOLLOWER_DOMAIN))]
        except (DecodeError, EncodeError) as exc:
            fail(f"a /notify body the SUT sent does not decode as FanoutMessages: {exc}", requirement=requirement)
    return out


def _is_handshake(message: FanoutMessage) -> bool:
    msg = message.message
    return msg.wire_format == WireFormat.mls_public_message


def _proposals(message: FanoutMessage) -> list:
    """The PublicMessage proposals of a proposal FanoutMessage (message and moreProposals), else []."""
    msg = message.message
    if msg.wire_format != WireFormat.mls_public_message or msg.public_message.content.content_type != ContentType.proposal:
        return []
    return [msg, *message.moreProposals]


def _is_commit(message: FanoutMessage) -> bool:
    msg = message.message
    return msg.wire_format == WireFormat.mls_public_message and msg.public_message.content.content_type == ContentType.commit


def _hub_update(proposal_msg, requirement: str) -> HubData | None:
    """The HubData of a mimi_hub AppDataUpdate proposal (strictly decoded), or None for another proposal."""
    proposal = proposal_msg.public_message.content.proposal
    if proposal.proposal_type != ProposalType.app_data_update or proposal.app_data_update.component_id != MIMI_HUB_COMPONENT_ID:
        return None
    if proposal.app_data_update.op != AppDataUpdateOperation.update:
        fail(f"the SUT proposed a {proposal.app_data_update.op.name} operation on mimi_hub (never valid)",
             requirement=requirement)
    try:
        return HubData.decode(bytes(proposal.app_data_update.update))
    except (DecodeError, EncodeError) as exc:
        fail(f"a mimi_hub update the SUT proposed does not decode strictly as HubData: {exc}", requirement=requirement)


def _first_commit_after(fanouts, proposal: FanoutMessage) -> bytes | None:
    """The bytes of the first commit in ``fanouts`` after the FanoutMessage carrying ``proposal``'s message; None
    when ``proposal`` is not among them or no commit follows it."""
    wanted = proposal.message.encode()
    found = False
    for _, message in fanouts:
        if found and _is_commit(message):
            return message.message.encode()
        found = found or message.message.encode() == wanted
    return None


def _hub_bundles(fanouts, requirement: str) -> list[tuple[object, FanoutMessage, HubData, list]]:
    """(traffic item, FanoutMessage, HubData, proposals) of every proposal bundle carrying a mimi_hub update;
    a mimi_hub update that is not a valid HubData update is a miss of ``requirement``."""
    out = []
    for item, message in fanouts:
        proposals = _proposals(message)
        updates = [d for p in proposals if (d := _hub_update(p, requirement)) is not None]
        if updates:
            out.append((item, message, updates[0], proposals))
    return out


def _senders_of_gce(proposal_msg) -> list | None:
    proposal = proposal_msg.public_message.content.proposal
    if proposal.proposal_type != ProposalType.group_context_extensions:
        return None
    data = get_extension(list(proposal.group_context_extensions.extensions), ExtensionType.external_senders)
    return [] if data is None else list(_decode_ext(_external_senders_codec(), data, "external_senders"))


def _sut_sender_index(senders, sut) -> int:
    for i, s in enumerate(senders):
        if sender_domain(s) in sut.manifest.domains:
            return i
    raise HarnessError("the room's external_senders has no entry naming the SUT")


def _by_hub_sender(proposal_msg, index: int) -> bool:
    sender = proposal_msg.public_message.content.sender
    return sender.sender_type == SenderType.external and sender.sender_index == index


def _judge_unverified_request(answer, prepared: str, proposed: str, what: str, began: str) -> None:
    """A request that does not verify (section 5.1): REFUSED wants notAllowed and nothing sent; CAP_REQUIRED
    wants no begin proposal, and no prepare unless the hub answered notAllowed (a prepare after that is the
    refusal's side effect, REFUSED's)."""
    sent = " and ".join(filter(None, (prepared, proposed)))
    if answer.code != HubTransferCode.notAllowed:
        miss(REFUSED, f"{what} was answered {answer.code.name}, not notAllowed (it does not verify)")
    elif sent:
        miss(REFUSED, f"{what} was refused, yet {sent}")
    else:
        observed(REFUSED, "answered notAllowed; no prepare at the target and no proposal at the follower")
    if proposed or (prepared and answer.code != HubTransferCode.notAllowed):
        miss(CAP_REQUIRED, f"the hub acted on {what} (answered {answer.code.name}): {sent}")
    else:
        observed(CAP_REQUIRED, f"{began} began no transfer (answered {answer.code.name}; no begin proposal)")
    ambiguous_if_read_otherwise(REFUSED, "whether the SUT fanned out proposals after the refusal")


def _signed_request(member, room: str, target: str, *, initiator: str | None = None,
                    group_id: bytes | None = None) -> bytes:
    """A HubTransferMessage.request signed by a copy of a reference client (section 5.1), from its own leaf;
    ``initiator`` names another user as the initiator (default: the client's own user), ``group_id`` another
    MLS group (default: the client's group)."""
    group = member.group
    data = read_hub_data(group.app_data(), room)
    content = HubTransferRequestTBS(
        room_id=IdentifierUri(uri=room.encode()), group_id=bytes(group.group_id) if group_id is None else group_id,
        target=provider_uri(target),
        generation=data.generation, not_after=int(time.time() * 1000) + 60_000,
        initiator=IdentifierUri(uri=(initiator or member.user_uri).encode()), initiator_leaf_index=group.own_leaf,
    )
    signed = sign_hub_transfer_request(cipher_suite(member.suite_id), member.signature_priv, content)
    return HubTransferMessage(msg_type=HubTransferMessageType.request, request=signed).encode()


def _post_request(mimi_as, sut, room: str, body: bytes, *, as_domain: str, requirement: str) -> HubTransferResponse:
    session = mimi_as(as_domain)
    reply = session.run(session.client.call(_authority(sut), "hubTransfer", room, body))
    if reply.status != 200:
        fail(f"hubTransfer answered a decodable request with HTTP {reply.status}, not 200 with a "
             "HubTransferResponse", requirement=requirement)
    try:
        answer = HubTransferResponse.decode(reply.body)
    except (DecodeError, EncodeError) as exc:
        fail(f"the hubTransfer answer does not decode as a HubTransferResponse: {exc}", requirement=requirement)
    if answer.msg_type != HubTransferMessageType.request:
        fail(f"the HubTransferResponse to a request echoes msg_type {answer.msg_type.name}", requirement=requirement)
    return answer


def _post_update(mimi_as, sut, room: str, body: bytes, requirement: str) -> UpdateRoomResponse:
    session = mimi_as(FOLLOWER_DOMAIN)
    reply = session.run(session.client.call(_authority(sut), "update", room, body))
    try:
        return update_answer(reply.status, reply.body)  # a non-2xx answer is a refusal (AMB-FAILURE-CODE-STATUS)
    except (DecodeError, EncodeError) as exc:
        fail(f"/update answered HTTP {reply.status} with no decodable UpdateRoomResponse: {exc}",
             requirement=requirement)


def _prepares_at(ref_hub, room: str, after: int, sut) -> list:
    """(traffic item, HubTransferMessage) of every hubTransfer message the SUT sent the reference hub."""
    out = []
    for item in ref_hub.traffic(after, endpoint="hubTransfer", direction="in"):
        if item.value == room and item.peer in sut.manifest.domains:
            out.append((item, HubTransferMessage.decode(item.request)))
    return out


def _sentinel(sut_party, ref_follower, room, admin, witness, poll_until) -> None:
    """A message from the SUT admin, awaited at a reference follower client: what the SUT fanned out
    before it has arrived."""
    text = f"sentinel {secrets.token_hex(4)}".encode()
    sut_party.send_ok(room, admin.client, text)
    try:
        ref_follower.wait_received(witness.client, text, room=room, what="the sentinel message at the reference follower")
    except PollTimeout as exc:
        blocked(FANOUT, f"the SUT's sentinel message never reached the reference follower, so the absence of "
                f"transfer traffic before it proves nothing: {exc}")


def _transfer_traffic(ref_hub, ref_follower, sut, room, hub_mark, follower_mark, requirement: str) -> tuple[str, str]:
    """What the SUT sent after refusing: (its hubTransfer messages to the target, its proposals to the
    follower), each described, empty when there were none."""
    prepares = _prepares_at(ref_hub, room, hub_mark, sut)
    proposals = [i.seq for i, m in _fanouts_from(ref_follower, room, follower_mark, sut.primary_domain, requirement)
                 if _proposals(m)]
    return ((f"the SUT sent the target {[m.msg_type.name for _, m in prepares]} (hubTransfer "
             f"#{[i.seq for i, _ in prepares]})" if prepares else ""),
            f"the SUT fanned out proposals to the reference follower (/notify #{proposals})" if proposals else "")


def _no_transfer_traffic(ref_hub, ref_follower, sut, room, hub_mark, follower_mark, requirement: str, what: str) -> None:
    prepares = _prepares_at(ref_hub, room, hub_mark, sut)
    if prepares:
        fail(f"{what}, yet the SUT sent the target {[m.msg_type.name for _, m in prepares]} "
             f"(hubTransfer #{[i.seq for i, _ in prepares]})", requirement=requirement)
    proposals = [i.seq for i, m in _fanouts_from(ref_follower, room, follower_mark, sut.primary_domain, requirement)
                 if _proposals(m)]
    if proposals:
        fail(f"{what}, yet the SUT fanned out proposals to the reference follower (/notify #{proposals})",
             requirement=requirement)


# -- directory and creation ------------------------------------------------------------------------


@pytest.mark.feature("hubTransfer")
@pytest.mark.requirements(DIRECTORY)
@pytest.mark.operations()
def test_directory_lists_the_hub_transfer_endpoint(sut, mimi, recorder):
    """The SUT's directory has a hubTransfer key whose template ends in /hubTransfer/{roomId}."""
    roles = list((sut.manifest.hub_transfer or {}).get("roles") or [OLD_HUB])
    transfer_settings(sut, roles[0])
    directory = mimi.run(mimi.client.fetch_directory(_authority(sut), refresh=True))
    recorder.note(f"directory keys: {sorted(directory)}")
    template = directory.get("hubTransfer")
    if not isinstance(template, str):
        fail(f"the SUT's directory has no hubTransfer entry (keys {sorted(directory)})", requirement=DIRECTORY)
    if not template.endswith("/hubTransfer/{roomId}"):
        fail(f"the directory's hubTransfer template {template!r} does not end in /hubTransfer/{{roomId}}",
             requirement=DIRECTORY)
    observed(DIRECTORY, f"hubTransfer template {template!r}")


@pytest.mark.feature("hubTransfer")
@pytest.mark.role("hub")
@pytest.mark.requirements(AT_CREATION)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_new_room_carries_the_hub_component(sut, sut_party, ref_follower, poll_until):
    """A room the SUT creates has mimi_hub {room_id, hub = the SUT, generation 0, stable} in its GroupContext."""
    transfer_settings(sut, OLD_HUB)
    room, _, users = _room(sut_party, ref_follower, admins=(), members=("bob",))
    member = _synced(ref_follower, sut_party, room, users["bob"].client, poll_until)
    raw = member.group.app_data().get(MIMI_HUB_COMPONENT_ID)
    if raw is None:
        fail("the GroupContext of a room created on the SUT has no mimi_hub component (0xF0A9)", requirement=AT_CREATION)
    try:
        data = HubData.decode(raw)
    except (DecodeError, EncodeError) as exc:
        fail(f"the new room's mimi_hub does not decode strictly as HubData: {exc}", requirement=AT_CREATION)
    seen = (bytes(data.room_id.uri).decode(errors="replace"), bytes(data.hub.uri).decode(errors="replace"),
            data.generation, data.state.name)
    expected = (room, f"mimi://{sut.primary_domain}", 0, "stable")
    if seen != expected or data.previous_hub is not None or bytes(data.last_transfer_id):
        fail(f"the new room's mimi_hub is (room_id, hub, generation, state) = {seen}, previous_hub "
             f"{data.previous_hub}, last_transfer_id {bytes(data.last_transfer_id).hex()!r}; expected {expected} "
             "with no previous hub or transfer", requirement=AT_CREATION)
    observed(AT_CREATION, f"mimi_hub of the new room: {seen}, no previous hub or transfer")


@pytest.mark.feature("hubTransfer")
@pytest.mark.role("hub")
@pytest.mark.requirements(SENDER)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_member_cannot_change_the_hub_component(sut, sut_party, ref_follower, mimi_as, poll_until, recorder):
    """The hub refuses a member's mimi_hub AppDataUpdate, as a proposal and by value in a commit."""
    transfer_settings(sut, OLD_HUB)
    room, _, users = _room(sut_party, ref_follower, admins=("dave",), members=())
    forged = HubData(
        room_id=IdentifierUri(uri=room.encode()), hub=provider_uri(FOLLOWER_DOMAIN), generation=1,
        state=HubState.stable, previous_hub=provider_uri(sut.primary_domain), last_transfer_id=secrets.token_bytes(16),
    )
    update = app_data_update_proposal(MIMI_HUB_COMPONENT_ID, forged.encode())
    member = _synced(ref_follower, sut_party, room, users["dave"].client, poll_until)
    out = member.commit([update], include_cached=False, validate=False)
    answer = _post_update(mimi_as, sut, room, out.request, SENDER)
    recorder.note(f"member commit with a mimi_hub AppDataUpdate by value: {answer.responseCode.name}")
    if answer.responseCode == UpdateResponseCode.success:
        fail("the hub accepted a member's commit carrying a mimi_hub AppDataUpdate by value (only the hub's "
             "external sender may change mimi_hub)", requirement=SENDER)
    member = _synced(ref_follower, sut_party, room, users["dave"].client, poll_until)
    answer = _post_update(mimi_as, sut, room, member.proposals_request([update]), SENDER)
    recorder.note(f"member proposal of a mimi_hub AppDataUpdate: {answer.responseCode.name}")
    if answer.responseCode == UpdateResponseCode.success:
        fail("the hub accepted a member's mimi_hub AppDataUpdate proposal (only the hub's external sender may "
             "change mimi_hub)", requirement=SENDER)
    observed(SENDER, f"a member's mimi_hub update refused by value in a commit and as a proposal "
             f"({answer.responseCode.name})")


# -- refused requests ------------------------------------------------------------------------------


@pytest.mark.feature("hubTransfer")
@pytest.mark.role("hub")
@pytest.mark.requirements(CAP_REQUIRED, REFUSED)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "startHubTransfer", "sendMessage")
def test_request_without_the_capability_is_refused(sut, sut_party, ref_follower, ref_hub, mimi_as, poll_until,
                                                   recorder):
    """A request by a member whose role lacks canTransferHub, sent by its provider and started through the
    SUT for a SUT user, is refused notAllowed; no prepare reaches the target and no proposal the followers."""
    transfer_settings(sut, OLD_HUB)
    room, admin, users = _room(sut_party, ref_follower, admins=(), members=("bob", "witness"))
    carl = sut_party.create_user("carl")
    sut_party.add_ok(room, admin, carl)
    member = _synced(ref_follower, sut_party, room, users["bob"].client, poll_until)
    hub_mark, follower_mark = ref_hub.traffic_mark(), ref_follower.traffic_mark()
    answer = _post_request(mimi_as, sut, room, _signed_request(member, room, HUB_DOMAIN), as_domain=FOLLOWER_DOMAIN,
                           requirement=REFUSED)
    recorder.note(f"request by a member without canTransferHub: {answer.code.name}")
    if answer.code == HubTransferCode.accepted:
        fail("the hub accepted a transfer request from a member whose role lacks canTransferHub",
             requirement=CAP_REQUIRED)
    if answer.code != HubTransferCode.notAllowed:
        miss(REFUSED, f"a request from a member without canTransferHub was answered {answer.code.name}, not "
             "notAllowed")
    else:
        observed(REFUSED, "the request of a member without canTransferHub was answered notAllowed")
    started = sut_party.start_hub_transfer(room, carl, HUB_DOMAIN)
    recorder.note(f"startHubTransfer for a SUT member without canTransferHub: {started}")
    if started.get("outcome") == "started":
        fail(f"the SUT started a transfer for a member without canTransferHub: {started}", requirement=CAP_REQUIRED)
    _sentinel(sut_party, ref_follower, room, admin, users["witness"], poll_until)
    prepared, proposed = _transfer_traffic(ref_hub, ref_follower, sut, room, hub_mark, follower_mark, REFUSED)
    what = "transfer requests by members without canTransferHub were refused"
    if prepared or proposed:  # a refusal changes nothing (REFUSED)
        miss(REFUSED, f"{what}, yet " + " and ".join(filter(None, (prepared, proposed))))
    else:
        observed(REFUSED, "no prepare at the target and no proposal at the follower after the refusals")
    # The capability: no begin proposals, and no prepare unless the hub saw the missing capability (notAllowed:
    # a prepare after that is the refusal's side effect, REFUSED's).
    if proposed or (prepared and answer.code != HubTransferCode.notAllowed):
        miss(CAP_REQUIRED, f"the hub acted on requests by members without canTransferHub (answered "
             f"{answer.code.name}): " + " and ".join(filter(None, (prepared, proposed))))
    else:
        observed(CAP_REQUIRED, f"requests without canTransferHub began no transfer (answered {answer.code.name}; "
                 f"control: {started.get('outcome')}; no begin proposal)")
    ambiguous_if_read_otherwise(REFUSED, "whether the SUT fanned out proposals after the refusal")


@pytest.mark.feature("hubTransfer")
@pytest.mark.role("hub")
@pytest.mark.requirements(CAP_REQUIRED, REFUSED)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_request_naming_another_initiator_than_its_leaf_is_refused(sut, sut_party, ref_follower, ref_hub, mimi_as,
                                                                  poll_until, recorder):
    """A request signed from the leaf of a member without canTransferHub (bob) that names as initiator a user
    whose role holds it (dave, same provider) does not verify and begins no transfer.

    hub-transfer.md 5.1: "A request **verifies** in an epoch when all of the following hold. The leaf at
    `initiator_leaf_index` has a credential for `initiator`, and its signature key verifies `signature`."
    and "The hub refuses with these codes: `notAllowed` when the request does not verify or the role lacks
    the capability"; "A refused request changes nothing. No prepare is sent, and no proposal is made."
    EXT-HUBXFER-CAP-REQUIRED: no transfer may begin without a request that verifies (any refusal passes,
    judged by effect: no acceptance, no begin proposal, no prepare unless answered notAllowed);
    EXT-HUBXFER-REQUEST-REFUSED: the refusal's code is notAllowed and nothing is sent."""
    transfer_settings(sut, OLD_HUB)
    room, admin, users = _room(sut_party, ref_follower, admins=("dave",), members=("bob", "witness"))
    dave = _synced(ref_follower, sut_party, room, users["dave"].client, poll_until)
    bob = _synced(ref_follower, sut_party, room, users["bob"].client, poll_until)
    hub_mark, follower_mark = ref_hub.traffic_mark(), ref_follower.traffic_mark()
    body = _signed_request(bob, room, HUB_DOMAIN, initiator=dave.user_uri)
    answer = _post_request(mimi_as, sut, room, body, as_domain=FOLLOWER_DOMAIN, requirement=REFUSED)
    recorder.note(f"request signed from bob's leaf {bob.group.own_leaf} naming {dave.user_uri} (canTransferHub) as "
                  f"initiator: {answer.code.name}")
    if answer.code == HubTransferCode.accepted:
        fail(f"the hub accepted a transfer request signed from the leaf of a member without canTransferHub (leaf "
             f"{bob.group.own_leaf}) that names another user ({dave.user_uri}, who holds it) as initiator: that "
             "leaf has no credential of the initiator, so the request does not verify", requirement=CAP_REQUIRED)
    _sentinel(sut_party, ref_follower, room, admin, users["witness"], poll_until)
    prepared, proposed = _transfer_traffic(ref_hub, ref_follower, sut, room, hub_mark, follower_mark, REFUSED)
    _judge_unverified_request(answer, prepared, proposed,
                              "a request whose initiator_leaf_index leaf has no credential of the initiator",
                              "a request signed from another user's leaf")


@pytest.mark.feature("hubTransfer")
@pytest.mark.role("hub")
@pytest.mark.requirements(CAP_REQUIRED, REFUSED)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_request_with_a_bad_signature_is_refused(sut, sut_party, ref_follower, ref_hub, mimi_as, poll_until,
                                                 recorder):
    """A request from the leaf of a follower admin holding canTransferHub (dave), naming dave, whose signature
    has one bit flipped, does not verify: refused notAllowed, no prepare at the target, no proposal.

    hub-transfer.md 5.1: "A request **verifies** in an epoch when all of the following hold. The leaf at
    `initiator_leaf_index` has a credential for `initiator`, and its signature key verifies `signature`."
    and "The hub refuses with these codes: `notAllowed` when the request does not verify or the role lacks
    the capability"; "A refused request changes nothing. No prepare is sent, and no proposal is made."
    EXT-HUBXFER-CAP-REQUIRED: no transfer may begin without a request that verifies (judged by effect: no
    acceptance, no begin proposal, no prepare unless answered notAllowed); EXT-HUBXFER-REQUEST-REFUSED: the
    refusal's code is notAllowed and nothing is sent."""
    transfer_settings(sut, OLD_HUB)
    room, admin, users = _room(sut_party, ref_follower, admins=("dave",), members=("witness",))
    dave = _synced(ref_follower, sut_party, room, users["dave"].client, poll_until)
    message = HubTransferMessage.decode(_signed_request(dave, room, HUB_DOMAIN))
    signature = bytearray(message.request.signature)
    signature[len(signature) // 2] ^= 0x01
    body = message.replace(request=message.request.replace(signature=bytes(signature))).encode()
    hub_mark, follower_mark = ref_hub.traffic_mark(), ref_follower.traffic_mark()
    answer = _post_request(mimi_as, sut, room, body, as_domain=FOLLOWER_DOMAIN, requirement=REFUSED)
    recorder.note(f"request of {dave.user_uri} (canTransferHub) from its leaf {dave.group.own_leaf} with a corrupted "
                  f"signature: {answer.code.name}")
    if answer.code == HubTransferCode.accepted:
        fail(f"the hub accepted a transfer request from leaf {dave.group.own_leaf} whose signature does not verify "
             "with that leaf's signature key", requirement=CAP_REQUIRED)
    _sentinel(sut_party, ref_follower, room, admin, users["witness"], poll_until)
    prepared, proposed = _transfer_traffic(ref_hub, ref_follower, sut, room, hub_mark, follower_mark, REFUSED)
    _judge_unverified_request(answer, prepared, proposed, "a request whose signature does not verify",
                              "a request with a corrupted signature")


@pytest.mark.feature("hubTransfer")
@pytest.mark.role("hub")
@pytest.mark.requirements(CAP_REQUIRED, REFUSED)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_request_naming_another_group_is_refused(sut, sut_party, ref_follower, ref_hub, mimi_as, poll_until,
                                                 recorder):
    """A request from the leaf of a follower admin holding canTransferHub (dave), naming dave and the room, but
    with another group_id (the room's with one octet changed), correctly signed over that content, does not
    verify: refused notAllowed, no prepare at the target, no proposal.

    hub-transfer.md 5.1: "A request **verifies** in an epoch when all of the following hold. [...] `room_id`,
    `group_id` and `generation` match the group and its hub component." and "The hub refuses with these codes:
    `notAllowed` when the request does not verify or the role lacks the capability"; "A refused request changes
    nothing. No prepare is sent, and no proposal is made." EXT-HUBXFER-CAP-REQUIRED: no transfer may begin
    without a request that verifies (judged by effect: no acceptance, no begin proposal, no prepare unless
    answered notAllowed); EXT-HUBXFER-REQUEST-REFUSED: the refusal's code is notAllowed and nothing is sent."""
    transfer_settings(sut, OLD_HUB)
    room, admin, users = _room(sut_party, ref_follower, admins=("dave",), members=("witness",))
    dave = _synced(ref_follower, sut_party, room, users["dave"].client, poll_until)
    group_id = bytearray(dave.group.group_id)
    group_id[-1] ^= 0x01
    body = _signed_request(dave, room, HUB_DOMAIN, group_id=bytes(group_id))
    hub_mark, follower_mark = ref_hub.traffic_mark(), ref_follower.traffic_mark()
    answer = _post_request(mimi_as, sut, room, body, as_domain=FOLLOWER_DOMAIN, requirement=REFUSED)
    recorder.note(f"request of {dave.user_uri} (canTransferHub) from its leaf {dave.group.own_leaf} naming group "
                  f"{bytes(group_id).hex()} (the room's is {bytes(dave.group.group_id).hex()}): {answer.code.name}")
    if answer.code == HubTransferCode.accepted:
        fail("the hub accepted a transfer request whose group_id is not the room's MLS group", requirement=CAP_REQUIRED)
    _sentinel(sut_party, ref_follower, room, admin, users["witness"], poll_until)
    prepared, proposed = _transfer_traffic(ref_hub, ref_follower, sut, room, hub_mark, follower_mark, REFUSED)
    _judge_unverified_request(answer, prepared, proposed, "a request naming another group_id",
                              "a request naming another group")


@pytest.mark.feature("hubTransfer")
@pytest.mark.role("hub")
@pytest.mark.requirements(CAP_REQUIRED)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "removeParticipant", "sendMessage")
def test_request_that_stops_verifying_during_the_prepare_begins_nothing(sut, sut_party, ref_follower, ref_hub,
                                                                        mimi_as, poll_until, recorder):
    """A valid request of a follower admin (dave) is sent; while the reference target holds the SUT's prepare
    unanswered, the SUT admin removes dave (a commit: in the new epoch the request no longer verifies, dave has
    no leaf and no role); the target then accepts. The SUT must begin no transfer.

    hub-transfer.md 5.1: "The hub refuses with these codes: ... `wrongEpoch` when a commit has intervened and
    the request no longer verifies in the epoch A would propose in"; EXT-HUBXFER-CAP-REQUIRED: "The hub MUST
    NOT begin a transfer unless a HubTransferRequest that verifies in the current epoch, from a user whose role
    holds canTransferHub, authorizes it." Judged by effect: any answer but accepted, and no begin proposal
    (a mimi_hub update) fanned out; the refusal's code is not judged (wrongEpoch, notAllowed or declined all
    begin nothing)."""
    transfer_settings(sut, OLD_HUB)
    room, admin, users = _room(sut_party, ref_follower, admins=("dave",), members=("witness",))
    dave = _synced(ref_follower, sut_party, room, users["dave"].client, poll_until)
    body = _signed_request(dave, room, HUB_DOMAIN)
    follower_mark = ref_follower.traffic_mark()
    session = mimi_as(FOLLOWER_DOMAIN)
    ref_hub.hold_transfer(hold_prepares=True)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(session.run, session.client.call(_authority(sut), "hubTransfer", room, body))
            try:
                try:
                    poll_until(lambda: pending.done() or room in ref_hub.hub_transfer_state().get("heldPrepares", []),
                               what="the SUT's prepare to reach the reference target")
                except PollTimeout as exc:
                    raise HarnessError(f"the SUT sent the reference target no prepare for a valid request: {exc}") \
                        from None
                if pending.done():
                    raise HarnessError("the SUT answered a valid transfer request without a prepare reaching the "
                                       f"target (HTTP {pending.result().status}), so no commit can land meanwhile")
                epoch = sut_party.room(room)["epoch"]
                removed = sut_party.remove(room, admin, users["dave"])
                recorder.note(f"removeParticipant {users['dave'].uri} while the target holds the prepare: {removed}")
                landed = removed.get("outcome") == "accepted" and sut_party.room(room)["epoch"] > epoch
            finally:
                ref_hub.hold_transfer(hold_prepares=False)
            reply = pending.result()
    finally:
        ref_hub.hold_transfer(hold_prepares=False)
    try:
        answer = HubTransferResponse.decode(reply.body) if reply.status == 200 else None
    except (DecodeError, EncodeError):
        answer = None
    code = answer.code.name if answer is not None else f"HTTP {reply.status}"
    recorder.note(f"answer to the request after the removal landed ({landed}): {code}")
    if not landed:
        not_applicable(f"the SUT did not commit the removal of the initiator while the target held the prepare "
                       f"({removed}), so the request never stopped verifying before the SUT's answer ({code})")
    if answer is not None and answer.code == HubTransferCode.accepted:
        fail(f"the hub answered accepted (it began the transfer) for a request whose initiator {dave.user_uri} it "
             "had removed by a commit while the target held the prepare: the request no longer verifies in the "
             "epoch the hub proposes in", requirement=CAP_REQUIRED)
    _sentinel(sut_party, ref_follower, room, admin, users["witness"], poll_until)
    begun = [item.seq for item, _, _, _ in _hub_bundles(
        _fanouts_from(ref_follower, room, follower_mark, sut.primary_domain, CAP_REQUIRED), CAP_REQUIRED)]
    if begun:
        miss(CAP_REQUIRED, f"the hub answered {code}, yet fanned out mimi_hub begin proposals (/notify #{begun}) "
             f"for a request whose initiator it had removed while the target held the prepare")
    else:
        observed(CAP_REQUIRED, f"initiator removed while the target held the prepare: answered {code}, no begin "
                 "proposal fanned out")
    ambiguous_if_read_otherwise(CAP_REQUIRED, "whether the SUT fanned out begin proposals")


@pytest.mark.feature("hubTransfer")
@pytest.mark.role("hub")
@pytest.mark.requirements(SOURCE, REFUSED)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_request_from_another_provider_is_refused(sut, sut_party, ref_follower, ref_hub, mimi_as, poll_until, recorder):
    """A valid request of a follower.ref.test admin sent over mTLS as hub.ref.test is refused (notHub or
    notAllowed) and nothing follows."""
    transfer_settings(sut, OLD_HUB)
    room, admin, users = _room(sut_party, ref_follower, admins=("dave",), members=("witness",))
    member = _synced(ref_follower, sut_party, room, users["dave"].client, poll_until)
    hub_mark, follower_mark = ref_hub.traffic_mark(), ref_follower.traffic_mark()
    answer = _post_request(mimi_as, sut, room, _signed_request(member, room, HUB_DOMAIN), as_domain=HUB_DOMAIN,
                           requirement=REFUSED)
    recorder.note(f"request of a {FOLLOWER_DOMAIN} admin sent by {HUB_DOMAIN}: {answer.code.name}")
    if answer.code not in (HubTransferCode.notHub, HubTransferCode.notAllowed):
        fail(f"a request whose mTLS peer ({HUB_DOMAIN}) is not the initiator's provider was answered "
             f"{answer.code.name}, not notHub or notAllowed", requirement=SOURCE)
    observed(SOURCE, f"a request sent by {HUB_DOMAIN} for a {FOLLOWER_DOMAIN} initiator refused ({answer.code.name})")
    _sentinel(sut_party, ref_follower, room, admin, users["witness"], poll_until)
    prepared, proposed = _transfer_traffic(ref_hub, ref_follower, sut, room, hub_mark, follower_mark, REFUSED)
    if prepared or proposed:  # a refusal changes nothing
        miss(REFUSED, "a request from a provider that is not the initiator's was refused, yet "
             + " and ".join(filter(None, (prepared, proposed))))
    else:
        observed(REFUSED, f"answered {answer.code.name}; no prepare at the target and no proposal at the follower")
    ambiguous_if_read_otherwise(REFUSED, "whether the SUT fanned out proposals after the refusal")


@pytest.mark.feature("hubTransfer")
@pytest.mark.role("hub")
@pytest.mark.requirements(DECLINE, CONSENT_FIRST)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_unreachable_target_changes_nothing(sut, sut_party, ref_follower, ref_hub, mimi_as, poll_until, recorder):
    """A valid request naming a target that cannot be reached is answered declined; the SUT proposes
    nothing and the room's external_senders and mimi_hub stay as they were."""
    transfer_settings(sut, OLD_HUB)
    room, admin, users = _room(sut_party, ref_follower, admins=("dave",), members=("witness",))
    member = _synced(ref_follower, sut_party, room, users["dave"].client, poll_until)
    before = sut_party.room(room)
    follower_mark = ref_follower.traffic_mark()
    answer = _post_request(mimi_as, sut, room, _signed_request(member, room, UNREACHABLE), as_domain=FOLLOWER_DOMAIN,
                           requirement=DECLINE)
    recorder.note(f"request naming the unreachable target {UNREACHABLE}: {answer.code.name}")
    _sentinel(sut_party, ref_follower, room, admin, users["witness"], poll_until)
    proposals = [i.seq for i, m in _fanouts_from(ref_follower, room, follower_mark, sut.primary_domain, CONSENT_FIRST)
                 if _proposals(m)]
    if proposals:
        miss(CONSENT_FIRST, f"the target {UNREACHABLE} could not be reached (no acceptance), yet the SUT fanned out "
             f"proposals (/notify #{proposals})")
    else:
        observed(CONSENT_FIRST, f"no proposal fanned out without an acceptance from {UNREACHABLE}")
    declined = True
    if answer.code != HubTransferCode.declined:
        miss(DECLINE, f"a request whose target cannot be reached was answered {answer.code.name}, not declined")
        declined = False
    after = sut_party.room(room)
    changed = {k: (before.get(k), after.get(k)) for k in ("externalSenders", "hubGeneration", "hubState", "hubDomain")
               if before.get(k) != after.get(k)}
    if changed:
        miss(DECLINE, f"a declined transfer changed the room: {changed}")
        declined = False
    seen = _synced(ref_follower, sut_party, room, users["witness"].client, poll_until)
    if seen.group.app_data().get(MIMI_HUB_COMPONENT_ID) != member.group.app_data().get(MIMI_HUB_COMPONENT_ID) or \
            [s.encode() for s in seen.group.external_senders()] != [s.encode() for s in member.group.external_senders()]:
        miss(DECLINE, "after a declined transfer the room's mimi_hub or external_senders differ from before")
        declined = False
    if declined:
        observed(DECLINE, "answered declined; the room's mimi_hub and external_senders unchanged (SUT and member view)")
    ambiguous_if_read_otherwise(CONSENT_FIRST, "whether the SUT fanned out proposals without an acceptance")


@pytest.mark.feature("hubTransfer")
@pytest.mark.role("hub")
@pytest.mark.requirements(CONSENT_FIRST)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_acceptance_naming_another_new_hub_begins_nothing(sut, sut_party, ref_follower, ref_hub, mimi_as, poll_until,
                                                          recorder):
    """A follower admin's valid request to move the room to hub.ref.test; the reference target answers the
    prepare accepted, with an acceptance signed with its own new_hub_sender but whose new_hub names another
    provider (follower.ref.test). That is no consent of the target to this transfer: the SUT must not answer
    accepted and must propose nothing.

    hub-transfer.md 5.2 (EXT-HUBXFER-CONSENT-FIRST): "The hub MUST NOT send any proposal of a transfer before
    it holds a HubTransferAcceptance from the target that verifies."; 4.2 (validity of the begin, applied by
    the hub): "`acceptance` verifies with the appended entry's key, and its content matches `room_id`, the
    group ID, `transfer_id`, `generation`, A, B and `not_after`." An acceptance naming another new_hub than
    the target B matches no begin of this transfer. The refusal's code is not judged (the draft names
    `declined` for a target that declined or could not be reached)."""
    transfer_settings(sut, OLD_HUB)
    room, admin, users = _room(sut_party, ref_follower, admins=("dave",), members=("witness",))
    dave = _synced(ref_follower, sut_party, room, users["dave"].client, poll_until)
    hub_mark, follower_mark = ref_hub.traffic_mark(), ref_follower.traffic_mark()
    ref_hub.hold_transfer(acceptance_new_hub=FOLLOWER_DOMAIN)
    try:
        answer = _post_request(mimi_as, sut, room, _signed_request(dave, room, HUB_DOMAIN), as_domain=FOLLOWER_DOMAIN,
                               requirement=CONSENT_FIRST)
    finally:
        ref_hub.hold_transfer(acceptance_new_hub="")
    recorder.note(f"request to {HUB_DOMAIN} whose acceptance names {FOLLOWER_DOMAIN} as new_hub: {answer.code.name}")
    prepares = [(i, m) for i, m in _prepares_at(ref_hub, room, hub_mark, sut) if m.msg_type == HubTransferMessageType.prepare]
    if not prepares:
        blocked(BEGIN, f"the SUT sent the target no prepare for a valid request of an admin holding canTransferHub "
                f"(answered {answer.code.name}), so it never held the misnamed acceptance")
    try:
        given = HubTransferResponse.decode(prepares[0][0].response).acceptance
    except (DecodeError, EncodeError, TypeError) as exc:
        raise HarnessError(f"the reference target's answer to the SUT's prepare does not decode: {exc}") from None
    if given is None or given.content.new_hub.encode() != provider_uri(FOLLOWER_DOMAIN).encode():
        raise HarnessError(f"the reference target did not answer the prepare with an acceptance naming "
                           f"{FOLLOWER_DOMAIN} as new_hub: {given}")
    if answer.code == HubTransferCode.accepted:
        fail(f"the hub answered accepted (it began the transfer to {HUB_DOMAIN}) on an acceptance whose new_hub names "
             f"{FOLLOWER_DOMAIN}, not the target", requirement=CONSENT_FIRST)
    _sentinel(sut_party, ref_follower, room, admin, users["witness"], poll_until)
    proposals = [i.seq for i, m in _fanouts_from(ref_follower, room, follower_mark, sut.primary_domain, CONSENT_FIRST)
                 if _proposals(m)]
    if proposals:
        miss(CONSENT_FIRST, f"the target's acceptance names {FOLLOWER_DOMAIN} as new_hub, not {HUB_DOMAIN}, yet the "
             f"SUT fanned out proposals (/notify #{proposals})")
    observed(CONSENT_FIRST, f"answered {answer.code.name}; no proposal fanned out on an acceptance naming another "
             "new_hub than the target")
    ambiguous_if_read_otherwise(CONSENT_FIRST, "whether the SUT fanned out proposals on the misnamed acceptance")


LATE_MS = 60_000  # how far past the prepare's requested_not_after the reference target's acceptance reaches


@pytest.mark.feature("hubTransfer")
@pytest.mark.role("hub")
@pytest.mark.requirements(CONSENT_FIRST)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "sendMessage")
def test_acceptance_past_the_requested_deadline_begins_nothing(sut, sut_party, ref_follower, ref_hub, mimi_as,
                                                               poll_until, recorder):
    """A follower admin's valid request to move the room to hub.ref.test; the reference target answers the
    prepare accepted, with an acceptance signed with its own new_hub_sender whose not_after is a minute later than
    the prepare's requested_not_after. That is no acceptance of this prepare: the SUT must not answer accepted and
    must propose nothing.

    hub-transfer.md 5.2: HubTransferAcceptTBS "uint64 not_after; /* <= requested_not_after */"; EXT-HUBXFER-CONSENT-
    FIRST: "The hub MUST NOT send any proposal of a transfer before it holds a HubTransferAcceptance from the target
    that verifies." The refusal's code is not judged."""
    transfer_settings(sut, OLD_HUB)
    room, admin, users = _room(sut_party, ref_follower, admins=("dave",), members=("witness",))
    dave = _synced(ref_follower, sut_party, room, users["dave"].client, poll_until)
    hub_mark, follower_mark = ref_hub.traffic_mark(), ref_follower.traffic_mark()
    ref_hub.hold_transfer(acceptance_late_ms=LATE_MS)
    try:
        answer = _post_request(mimi_as, sut, room, _signed_request(dave, room, HUB_DOMAIN), as_domain=FOLLOWER_DOMAIN,
                               requirement=CONSENT_FIRST)
    finally:
        ref_hub.hold_transfer(acceptance_late_ms=0)
    recorder.note(f"request to {HUB_DOMAIN} whose acceptance reaches {LATE_MS} ms past the requested deadline: "
                  f"{answer.code.name}")
    prepares = [(i, m) for i, m in _prepares_at(ref_hub, room, hub_mark, sut) if m.msg_type == HubTransferMessageType.prepare]
    if not prepares:
        blocked(BEGIN, f"the SUT sent the target no prepare for a valid request of an admin holding canTransferHub "
                f"(answered {answer.code.name}), so it never held the late acceptance")
    try:
        given = HubTransferResponse.decode(prepares[0][0].response).acceptance
    except (DecodeError, EncodeError, TypeError) as exc:
        raise HarnessError(f"the reference target's answer to the SUT's prepare does not decode: {exc}") from None
    requested = prepares[0][1].prepare.content.requested_not_after
    if given is None or given.content.not_after <= requested:
        raise HarnessError(f"the reference target did not answer the prepare with an acceptance whose not_after is "
                           f"past the requested {requested}: {given}")
    if answer.code == HubTransferCode.accepted:
        fail(f"the hub answered accepted (it began the transfer to {HUB_DOMAIN}) on an acceptance whose not_after "
             f"{given.content.not_after} is past its prepare's requested_not_after {requested}",
             requirement=CONSENT_FIRST)
    _sentinel(sut_party, ref_follower, room, admin, users["witness"], poll_until)
    proposals = [i.seq for i, m in _fanouts_from(ref_follower, room, follower_mark, sut.primary_domain, CONSENT_FIRST)
                 if _proposals(m)]
    if proposals:
        miss(CONSENT_FIRST, f"the target's acceptance reaches past the requested deadline, yet the SUT fanned out "
             f"proposals (/notify #{proposals})")
    observed(CONSENT_FIRST, f"answered {answer.code.name}; no proposal fanned out on an acceptance whose not_after is "
             "past the prepare's requested_not_after")
    ambiguous_if_read_otherwise(CONSENT_FIRST, "whether the SUT fanned out proposals on the late acceptance")


# -- a complete transfer: begin, fan-out to the target, cut-over -----------------------------------


@pytest.mark.feature("hubTransfer")
@pytest.mark.role("hub")
@pytest.mark.requirements(BEGIN, GENERATION, TRANSITIONS, TARGET_FANOUT, CONSENT_FIRST, DECLARED)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_transfer_proposals_and_target_fanout(sut, sut_party, ref_follower, ref_hub, poll_until, recorder):
    """A reference-follower admin holding canTransferHub (dave) moves the room to hub.ref.test, by a request
    over MIMI (so a hub that refuses a valid request the target accepts FAILs BEGIN, not the control API):
    the prepare asks for no later deadline than the declared cut-over timeout; the begin bundle (GCE with the
    target's sender appended, begin update) and the cut-over update follow the section 4.2 transitions, after
    the acceptance; the target gets every handshake message the followers get, in the same order.

    hub-transfer.md 5.1: "The hub answers `accepted`, with the `transfer_id`, only after the target has
    accepted (§5.2) and the begin proposals have been fanned out."; 6.2: "When A has the acceptance, it sends
    two **external proposals** in the current epoch"."""
    settings = transfer_settings(sut, OLD_HUB)
    room, _, users = _room(sut_party, ref_follower, admins=("dave",), members=("bob",))
    before = _synced(ref_follower, sut_party, room, users["bob"].client, poll_until).group
    before_senders = before.external_senders()
    hub_index = _sut_sender_index(before_senders, sut)
    previous = read_hub_data(before.app_data(), room)
    hub_mark, follower_mark = ref_hub.traffic_mark(), ref_follower.traffic_mark()
    started = ref_follower.start_hub_transfer(room, users["dave"], HUB_DOMAIN)
    recorder.note(f"follower-initiated startHubTransfer to {HUB_DOMAIN}: {started}")
    if started.get("outcome") != "started":
        fail(f"the SUT did not begin a transfer requested by a follower admin holding canTransferHub to an accepting "
             f"target: {started}", requirement=BEGIN)
    try:
        poll_until(lambda: (ref_follower.room(room) or {}).get("hubDomain") == HUB_DOMAIN,
                   what="the reference follower to process the cut-over commit")
        moved = True
    except PollTimeout:  # judged below from what the SUT did send
        moved = False

    def from_both_hubs():  # the SUT's fan-out, then what the new hub delivered from the handoff backlog
        return (_fanouts_from(ref_follower, room, follower_mark, sut.primary_domain, BEGIN)
                + _fanouts_from(ref_follower, room, follower_mark, HUB_DOMAIN, BEGIN))

    prepares = [(i, m) for i, m in _prepares_at(ref_hub, room, hub_mark, sut) if m.msg_type == HubTransferMessageType.prepare]
    if not prepares:
        if moved or _hub_bundles(from_both_hubs(), GENERATION):
            fail(f"the SUT proposed the transfer (the room moved to {HUB_DOMAIN}) without a prepare to the target",
                 requirement=CONSENT_FIRST)
        fail("the SUT reported the transfer started but sent the target no prepare and proposed no begin update",
             requirement=BEGIN)
    prepare_item, prepare = prepares[0]
    declared = int(settings["cutover_timeout_ms"])
    asked = prepare.prepare.content.requested_not_after - int(prepare_item.time * 1000)
    recorder.note(f"prepare asks for a cut-over deadline {asked} ms ahead; declared cutover_timeout_ms {declared}")
    if asked > declared + 1000:
        miss(DECLARED, f"the SUT's prepare asks for a cut-over deadline {asked} ms ahead, beyond the {declared} ms its "
             "manifest declares as cutover_timeout_ms")
    else:
        observed(DECLARED, f"the prepare asks for a cut-over deadline {asked} ms ahead, within the declared "
                 f"cutover_timeout_ms {declared}")
    acceptance = HubTransferResponse.decode(prepare_item.response).acceptance

    try:
        fanouts = poll_until(lambda: len(_hub_bundles(got := from_both_hubs(), GENERATION)) >= 2 and got, timeout=5,
                             what="the begin and cut-over proposals in the follower's /notify log")
    except PollTimeout:  # judged below with what arrived
        fanouts = from_both_hubs()
    bundles = _hub_bundles(fanouts, GENERATION)
    if len(bundles) < 2:
        fail(f"the reference follower got {len(bundles)} mimi_hub proposal bundle(s) from the SUT, not the begin "
             f"and the cut-over (the room {'moved' if moved else 'did not move'} to {HUB_DOMAIN})", requirement=BEGIN)
    (begin_item, _, begin, begin_proposals), (_, _, cutover, _) = bundles[0], bundles[1]
    if begin_item.time < prepare_item.time:
        miss(CONSENT_FIRST, "the begin proposals reached the reference follower before the target answered the prepare")
    else:
        observed(CONSENT_FIRST, f"the begin proposals reached the follower {begin_item.time - prepare_item.time:.2f} s "
                 "after the target answered the prepare")

    # Section 4.2: begin, then cut-over, each generation + 1 with the room ID unchanged.
    for label, old, new in (("begin", previous, begin), ("cut-over", begin, cutover)):
        if new.generation != old.generation + 1 or bytes(new.room_id.uri) != room.encode():
            miss(GENERATION, f"the {label} update has generation {new.generation} and room_id "
                 f"{bytes(new.room_id.uri)!r}; expected generation {old.generation + 1} and {room!r}")
        else:
            observed(GENERATION, f"the {label} update: generation {old.generation} -> {new.generation}, room_id kept")
    target_uri = provider_uri(HUB_DOMAIN).encode()
    if not (previous.state == HubState.stable and begin.state == HubState.transferring
            and begin.hub.encode() == previous.hub.encode() and begin.target.encode() == target_uri):
        miss(TRANSITIONS, f"the begin update is not stable(A) -> transferring(A, {HUB_DOMAIN}): state "
             f"{begin.state.name}, hub {bytes(begin.hub.uri)!r}")
    else:
        observed(TRANSITIONS, f"begin: stable(A) -> transferring(A, {HUB_DOMAIN})")
    if not (cutover.state == HubState.stable and cutover.hub.encode() == begin.target.encode()
            and cutover.previous_hub is not None and cutover.previous_hub.encode() == begin.hub.encode()
            and bytes(cutover.last_transfer_id) == bytes(begin.transfer_id)):
        miss(TRANSITIONS, f"the cut-over update is not transferring(A, B) -> stable(hub = B, previous_hub = A, "
             f"last_transfer_id): {cutover}")
    else:
        observed(TRANSITIONS, "cut-over: transferring(A, B) -> stable(hub = B, previous_hub = A, last_transfer_id)")

    # Section 6.2: the begin bundle, both proposals signed by the hub's external sender.
    gces = [p for p in begin_proposals if _senders_of_gce(p) is not None]
    if len(gces) != 1 or len(begin_proposals) != 2:
        # AMB-FANOUT-SELECT's reading carries no moreProposals: the bundle's proposals come apart, uncounted.
        ambiguous_if_read_otherwise(BEGIN, f"the begin bundle ({len(begin_proposals)} proposal(s) with the mimi_hub "
                                    "update, read from FanoutMessage.moreProposals)", ambiguity="AMB-FANOUT-SELECT")
        fail(f"the begin bundle has {len(begin_proposals)} proposals, {len(gces)} of them GroupContextExtensions; "
             "expected the GCE and the mimi_hub begin update", requirement=BEGIN)
    begin_ok = True
    if not all(_by_hub_sender(p, hub_index) for p in begin_proposals):
        miss(BEGIN, "a begin proposal is not sent by the hub's own external_senders entry")
        begin_ok = False
    expected = [s.encode() for s in before_senders] + [acceptance.content.new_hub_sender.encode()]
    got = [s.encode() for s in _senders_of_gce(gces[0])]
    if got != expected:
        miss(BEGIN, f"the begin GCE's external_senders ({len(got)} entries) is not the previous list "
             f"({len(before_senders)}) with the target's new_hub_sender appended")
        begin_ok = False
    others = [e.encode() for e in gces[0].public_message.content.proposal.group_context_extensions.extensions
              if e.extension_type != ExtensionType.external_senders]
    kept = [e.encode() for e in before.context.extensions if e.extension_type != ExtensionType.external_senders]
    if others != kept:
        miss(BEGIN, "the begin GCE changes GroupContext extensions other than external_senders")
        begin_ok = False
    if begin.acceptance.encode() != acceptance.encode():
        miss(BEGIN, "the begin update's acceptance is not the one the target returned")
        begin_ok = False
    if begin_ok:
        observed(BEGIN, f"the begin update with a GCE whose external_senders is the previous {len(before_senders)} "
                 "entries plus the target's new_hub_sender, nothing else changed, both from the hub's sender")

    # Section 6.2: the target receives every handshake message the followers get, in order: from the
    # acceptance to the begin commit (the hub delivers those before it proposes the cut-over; later ones may
    # reach the target through the handoff rather than /notify).
    handshakes = [m.message.encode() for _, m in _fanouts_from(ref_follower, room, follower_mark, sut.primary_domain,
                                                               TARGET_FANOUT) if _is_handshake(m)]
    start = handshakes.index(begin_proposals[0].encode()) if begin_proposals[0].encode() in handshakes else 0
    commits = [i for i, (_, m) in enumerate(fanouts) if _is_commit(m) and m.message.encode() in handshakes[start:]]
    if not commits:
        raise HarnessError("the room moved but the follower's /notify log from the SUT has no begin commit")
    follower_seq = handshakes[: handshakes.index(fanouts[commits[0]][1].message.encode()) + 1]

    def target_seq():
        seen = [m.message.encode() for _, m in _fanouts_from(ref_hub, room, hub_mark, sut.primary_domain, TARGET_FANOUT)]
        return [b for b in seen if b in follower_seq]

    try:
        poll_until(lambda: len(set(target_seq())) >= len(set(follower_seq)), timeout=10,
                   what="every handshake message the follower got to reach the target too")
    except PollTimeout:  # judged below with what is missing
        pass
    at_target = target_seq()
    missing = [i for i, b in enumerate(follower_seq) if b not in at_target]
    if missing:
        fail(f"{len(missing)} of the {len(follower_seq)} handshake messages the SUT fanned out to the follower "
             f"after the acceptance never reached the target (positions {missing})", requirement=TARGET_FANOUT)
    order = list(dict.fromkeys(at_target))
    if order != follower_seq:
        fail("the target received the room's handshake messages in another order than the followers",
             requirement=TARGET_FANOUT)
    # Section 6.3, when A accepts the cut-over commit: "it fans the commit out like any commit: to every follower,
    # to its local clients, and to B". The cut-over commit is the first commit the SUT fanned out to the follower
    # after the cut-over proposal (the hub requires the next commit to include it).
    cutover_commit = _first_commit_after(
        _fanouts_from(ref_follower, room, follower_mark, sut.primary_domain, TARGET_FANOUT), bundles[1][1]
    ) if moved else None
    if cutover_commit is not None:
        try:
            poll_until(lambda: any(m.message.encode() == cutover_commit for _, m in _fanouts_from(
                ref_hub, room, hub_mark, sut.primary_domain, TARGET_FANOUT)), timeout=10,
                what="the cut-over commit the follower got to reach the target too")
        except PollTimeout:
            fail("the SUT fanned the cut-over commit out to the follower but never to the target (section 6.3: "
                 "\"it fans the commit out like any commit: to every follower, to its local clients, and to B\")",
                 requirement=TARGET_FANOUT)
    observed(TARGET_FANOUT, f"the target got all {len(follower_seq)} handshake messages the follower got, in order"
             + (", and the cut-over commit" if cutover_commit is not None else ""))
    ambiguous_if_read_otherwise(BEGIN, "the begin and cut-over proposals the SUT fanned out")


# -- the window ------------------------------------------------------------------------------------


def _start_held(ref_follower, room, dave, target, recorder) -> dict:
    started = ref_follower.start_hub_transfer(room, dave, target)
    recorder.note(f"follower-initiated startHubTransfer to {target}: {started}")
    if started.get("outcome") != "started":  # judged by test_transfer_proposals_and_target_fanout (BEGIN)
        blocked(BEGIN, f"the SUT did not start a transfer requested by a follower admin holding canTransferHub to an "
                f"accepting target, so there is no transfer window: {started}")
    return started


def _await_bundles(poll_until, ref_follower, room, mark, sut, count: int, requirement: str, what: str, **kw):
    """The mimi_hub proposal bundles at the reference follower once there are ``count``; when they never come
    (or are unusable), the window the check needs never opened: blocked by BEGIN (the check does not judge
    the proposals; ``requirement`` is one it does, only to name the reading of the fan-out)."""
    try:
        return poll_until(lambda: len(b := _hub_bundles(_fanouts_from(ref_follower, room, mark, sut.primary_domain,
                                                                      requirement), requirement)) >= count and b,
                          what=what, **kw)
    except PollTimeout as exc:
        blocked(BEGIN, f"the SUT's transfer proposals never reached the reference follower ({what}), so the "
                f"transfer window never opened: {exc}")
    except RequirementMissed as exc:  # an unreadable fan-out or mimi_hub update: the proposals are BEGIN's to judge
        blocked(BEGIN, f"the SUT's transfer proposals at the reference follower are unusable ({what}): {exc.message}")


@pytest.mark.feature("hubTransfer")
@pytest.mark.role("hub")
@pytest.mark.requirements(ONE_AT_A_TIME, PENDING)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_begin_proposals_pending_are_required_and_block_a_second_request(
        sut, sut_party, ref_follower, mimi_as, poll_until, recorder):
    """With the begin proposals fanned out and not committed: a second valid request is answered busy, a
    commit without the begin proposals is refused, and one that includes them is accepted."""
    transfer_settings(sut, OLD_HUB)
    room, _, users = _room(sut_party, ref_follower, admins=("dave",), members=("mallory",))
    ref_follower.hold_transfer(autocommit=[])
    try:
        follower_mark = ref_follower.traffic_mark()
        _start_held(ref_follower, room, users["dave"], HUB_DOMAIN, recorder)
        _await_bundles(poll_until, ref_follower, room, follower_mark, sut, 1, PENDING,
                       "the begin proposals at the reference follower")

        def with_begin(client):
            m = ref_follower.member_state(room, client)
            return any(e.proposal.proposal_type == ProposalType.app_data_update
                       and e.proposal.app_data_update.component_id == MIMI_HUB_COMPONENT_ID
                       for e in m.group.proposal_cache.values()) and m

        dave = poll_until(lambda: with_begin(users["dave"].client), what="dave's client to cache the begin proposals",
                          requirement=ONE_AT_A_TIME)  # the begin proposals reached the follower: its clients hold them
        answer = _post_request(mimi_as, sut, room, _signed_request(dave, room, HUB_DOMAIN), as_domain=FOLLOWER_DOMAIN,
                               requirement=ONE_AT_A_TIME)
        recorder.note(f"second request during the window: {answer.code.name}")
        if answer.code == HubTransferCode.accepted:  # a second transfer: the first one's window is gone
            fail("a second valid request while a transfer is in its window was accepted, not answered busy",
                 requirement=ONE_AT_A_TIME)
        if answer.code != HubTransferCode.busy:
            miss(ONE_AT_A_TIME, f"a second valid request while a transfer is in its window was answered "
                 f"{answer.code.name}, not busy")
        else:
            observed(ONE_AT_A_TIME, "a second valid request during the window was answered busy")
        mallory = poll_until(lambda: with_begin(users["mallory"].client),
                             what="mallory's client to cache the begin proposals", requirement=PENDING)
        out = mallory.commit([], include_cached=False)
        refused = _post_update(mimi_as, sut, room, out.request, PENDING)
        recorder.note(f"commit without the begin proposals: {refused.responseCode.name}")
        if refused.responseCode == UpdateResponseCode.success:
            fail("the hub accepted a commit in the begin proposals' epoch that omits them", requirement=PENDING)
        mallory = with_begin(users["mallory"].client)
        out = mallory.commit()
        accepted = _post_update(mimi_as, sut, room, out.request, PENDING)
        recorder.note(f"commit including the begin proposals: {accepted.responseCode.name}")
        if accepted.responseCode != UpdateResponseCode.success:
            fail(f"the hub refused ({accepted.responseCode.name}: {accepted.errorDescription!r}) the commit that "
                 "includes the pending begin proposals", requirement=PENDING)
        observed(PENDING, "a commit omitting the pending begin proposals refused "
                 f"({refused.responseCode.name}), the one including them accepted")
        ambiguous_if_read_otherwise(PENDING, "the begin proposals the SUT fanned out")
    finally:
        ref_follower.hold_transfer(autocommit=AUTOCOMMIT_ALL)


def _responses(ref_follower, room: str, after: int, endpoint: str) -> list:
    return [t for t in ref_follower.traffic(after, endpoint=endpoint, direction="out") if t.value == room]


def _answer_of(reply) -> HubTransferResponse | None:
    try:
        return HubTransferResponse.decode(reply.body) if reply.status == 200 else None
    except (DecodeError, EncodeError):
        return None


@pytest.mark.feature("hubTransfer")
@pytest.mark.role("hub")
@pytest.mark.requirements(ONE_AT_A_TIME)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_two_requests_during_one_prepare_begin_one_transfer(sut, sut_party, ref_follower, ref_hub, mimi_as,
                                                             poll_until, recorder):
    """Two valid requests of a follower admin (dave) reach the SUT while the reference target holds the first
    one's prepare unanswered; the target then accepts whatever prepares it holds. At most one request may be
    answered accepted.

    hub-transfer.md §11: "One at a time. While a transfer is in its window, A refuses any other request
    (busy)."; §2: "Transfer window: from the moment the old hub sends the begin proposals to its acceptance of
    the cut-over commit". A request is answered accepted only once its begin proposals are sent, so two accepted
    answers mean a second transfer began inside the first one's window. Which request wins, when the SUT answers
    the other, and with which refusal code are not judged."""
    transfer_settings(sut, OLD_HUB)
    room, _, users = _room(sut_party, ref_follower, admins=("dave",), members=("witness",))
    dave = _synced(ref_follower, sut_party, room, users["dave"].client, poll_until)
    bodies = [_signed_request(dave, room, HUB_DOMAIN), _signed_request(dave, room, HUB_DOMAIN)]
    sessions = [mimi_as(FOLLOWER_DOMAIN), mimi_as(FOLLOWER_DOMAIN)]
    ref_follower.hold_transfer(autocommit=[])  # the window stays open: nobody commits the begin proposals
    ref_hub.hold_transfer(hold_prepares=True)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            try:
                first = pool.submit(sessions[0].run, sessions[0].client.call(_authority(sut), "hubTransfer", room,
                                                                               bodies[0]))
                try:
                    poll_until(lambda: first.done() or room in ref_hub.hub_transfer_state().get("heldPrepares", []),
                               what="the SUT's prepare to reach the reference target")
                except PollTimeout as exc:
                    raise HarnessError(f"the SUT sent the reference target no prepare for a valid request: {exc}") \
                        from None
                if first.done():
                    raise HarnessError("the SUT answered a valid transfer request without a prepare reaching the "
                                       f"target (HTTP {first.result().status}), so no second request can meet it")
                second = pool.submit(sessions[1].run, sessions[1].client.call(_authority(sut), "hubTransfer", room,
                                                                                bodies[1]))
                try:  # a SUT may answer the second at once (busy) or keep it until the first is decided
                    poll_until(second.done, timeout=3.0, what="an answer to the second request")
                except PollTimeout:
                    recorder.note("the second request was not answered while the first prepare was held")
            finally:
                ref_hub.hold_transfer(hold_prepares=False)
            replies = [first.result(), second.result()]
        answers = [_answer_of(reply) for reply in replies]
        codes = [a.code.name if a is not None else f"HTTP {r.status}" for a, r in zip(answers, replies, strict=True)]
        recorder.note(f"answers to the two requests: {codes}")
        accepted = [i for i, a in enumerate(answers) if a is not None and a.code == HubTransferCode.accepted]
        if not accepted:
            raise HarnessError(f"the SUT accepted neither valid request to an accepting target ({codes}), so no "
                               "transfer window opened")
        if len(accepted) > 1:
            fail("two transfer requests that reached the hub while the first one's prepare was held were both "
                 "answered accepted: a second transfer began inside the first one's window", requirement=ONE_AT_A_TIME)
        observed(ONE_AT_A_TIME, f"two requests during one prepare: answered {codes}, one transfer begun")
    finally:
        ref_hub.hold_transfer(hold_prepares=False)
        ref_follower.hold_transfer(autocommit=AUTOCOMMIT_ALL)


@pytest.mark.feature("hubTransfer")
@pytest.mark.role("hub")
@pytest.mark.requirements(WINDOW_NORMAL, NO_NEW_PROVIDERS)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom", "listReceivedMessages")
def test_window_keeps_the_room_working_but_admits_no_new_provider(
        sut, sut_party, ref_follower, ref_hub, poll_until, recorder):
    """During the window (cut-over proposed, not committed; target follower.ref.test): a follower's message is
    accepted and delivered, an Add of a hub.ref.test user (a provider new to the room) is refused, and an
    Add of another follower.ref.test user is accepted."""
    transfer_settings(sut, OLD_HUB)
    room, admin, users = _room(sut_party, ref_follower, admins=("dave",), members=("bob",))
    carol = ref_follower.create_user("carol")
    xavier = ref_hub.create_user("xavier")
    ref_follower.hold_transfer(autocommit=["begin"])
    try:
        follower_mark = ref_follower.traffic_mark()
        _start_held(ref_follower, room, users["dave"], FOLLOWER_DOMAIN, recorder)
        _await_bundles(poll_until, ref_follower, room, follower_mark, sut, 2, WINDOW_NORMAL,
                       "the cut-over proposal at the reference follower (the window is open)")
        mark = ref_follower.traffic_mark()
        text = f"in the window {secrets.token_hex(4)}".encode()
        sent = ref_follower.send(room, users["bob"].client, text)
        recorder.note(f"bob's message during the window: {sent}")
        submits = _responses(ref_follower, room, mark, "submitMessage")
        codes = [submit_answer(t.status, t.response).statusCode for t in submits]
        if SubmitResponseCode.accepted not in codes:
            miss(WINDOW_NORMAL, f"during the transfer window the hub answered a member's submitMessage "
                 f"{[c.name for c in codes]} (HTTP {[t.status for t in submits]}), not accepted")
        else:
            try:
                sut_party.wait_received(admin.client, text, room=room, what="bob's window message at the SUT admin")
            except PollTimeout as exc:
                miss(WINDOW_NORMAL, f"the hub accepted a member's message during the window but never delivered it "
                     f"to the SUT admin: {exc}")
            else:
                observed(WINDOW_NORMAL, "a member's message during the window was accepted and delivered")

        mark = ref_follower.traffic_mark()
        added = ref_follower.add(room, users["dave"], xavier)
        recorder.note(f"Add of {xavier.uri} ({HUB_DOMAIN}, new to the room) during the window: {added}")
        updates = [update_answer(t.status, t.response).responseCode
                   for t in _responses(ref_follower, room, mark, "update")]
        if not updates:
            raise HarnessError(f"the reference follower sent no commit adding {xavier.uri}: {added}")
        if UpdateResponseCode.success in updates:
            miss(NO_NEW_PROVIDERS, f"during the transfer window the hub accepted a commit giving {HUB_DOMAIN} (neither "
                 "a provider of the room nor the target) its first participant")
        else:
            observed(NO_NEW_PROVIDERS, f"the commit adding {xavier.uri} (a new provider) was refused "
                     f"({[u.name for u in updates]})")

        mark = ref_follower.traffic_mark()
        added = ref_follower.add(room, users["dave"], carol)
        recorder.note(f"Add of {carol.uri} ({FOLLOWER_DOMAIN}, in the room) during the window: {added}")
        updates = [update_answer(t.status, t.response) for t in _responses(ref_follower, room, mark, "update")]
        if not any(u.responseCode == UpdateResponseCode.success for u in updates):
            miss(WINDOW_NORMAL, "during the transfer window the hub refused a commit adding a user of a provider "
                 f"already in the room: {[(u.responseCode.name, u.errorDescription) for u in updates]}")
        else:
            observed(WINDOW_NORMAL, f"the commit adding {carol.uri} (a provider already in the room) was accepted")
        ambiguous_if_read_otherwise(WINDOW_NORMAL, "the cut-over proposal that opened the window")
    finally:
        ref_follower.hold_transfer(autocommit=AUTOCOMMIT_ALL)


# -- the abort -------------------------------------------------------------------------------------


@pytest.mark.feature("hubTransfer")
@pytest.mark.role("hub")
@pytest.mark.requirements(ABORT_TIMEOUT, ABORT_NOTIFIES, GENERATION, TRANSITIONS)
@pytest.mark.operations("createUser", "createRoom", "addParticipant", "getRoom")
def test_abort_when_the_cutover_is_not_committed_by_not_after(
        sut, sut_party, ref_follower, ref_hub, poll_until, recorder):
    """Nobody commits the cut-over: after not_after the hub proposes the abort (stable(A), generation + 1,
    the transfer ID) with a GCE removing the target's entry, and sends the target a signed abort."""
    settings = transfer_settings(sut, OLD_HUB)
    room, _, users = _room(sut_party, ref_follower, admins=("dave",), members=())
    state = _synced(ref_follower, sut_party, room, users["dave"].client, poll_until).group
    hub_key = bytes(state.external_senders()[_sut_sender_index(state.external_senders(), sut)].signature_key)
    ref_follower.hold_transfer(autocommit=["begin", "abort"])
    try:
        follower_mark, hub_mark = ref_follower.traffic_mark(), ref_hub.traffic_mark()
        _start_held(ref_follower, room, users["dave"], HUB_DOMAIN, recorder)
        wait = int(settings["cutover_timeout_ms"]) / 1000 + 15
        bundles = poll_until(
            lambda: (b := _hub_bundles(_fanouts_from(ref_follower, room, follower_mark, sut.primary_domain,
                                                     ABORT_TIMEOUT), GENERATION))
            and any(d.state == HubState.stable and d.hub.encode() == provider_uri(sut.primary_domain).encode()
                    for _, _, d, _ in b) and b,
            timeout=wait, what="the abort proposals at the reference follower", requirement=ABORT_TIMEOUT)
    finally:
        ref_follower.hold_transfer(autocommit=AUTOCOMMIT_ALL)
    begin_item, _, begin, begin_proposals = bundles[0]
    if begin.state != HubState.transferring:
        raise HarnessError(f"the first mimi_hub bundle is not a begin: {begin}")
    abort_item, abort_message, abort, abort_proposals = next(
        b for b in bundles if b[2].state == HubState.stable and b[2].hub.encode() == begin.hub.encode())
    abort_ok = True
    if abort_message.timestamp < begin.not_after:
        miss(ABORT_TIMEOUT, f"the abort was proposed at {abort_message.timestamp}, before not_after {begin.not_after}")
        abort_ok = False
    if abort.generation != begin.generation + 1 or bytes(abort.room_id.uri) != room.encode():
        miss(GENERATION, f"the abort update has generation {abort.generation} (the committed begin has "
             f"{begin.generation}) and room_id {bytes(abort.room_id.uri)!r}")
    else:
        observed(GENERATION, f"the abort update: generation {begin.generation} -> {abort.generation}, room_id kept")
    if abort.previous_hub is not None or bytes(abort.last_transfer_id) != bytes(begin.transfer_id):
        miss(TRANSITIONS, f"the abort update is not transferring(A, B) -> stable(hub = A, previous_hub absent, "
             f"last_transfer_id = the transfer): previous_hub {abort.previous_hub}, last_transfer_id "
             f"{bytes(abort.last_transfer_id).hex()}")
    else:
        observed(TRANSITIONS, "abort: transferring(A, B) -> stable(hub = A, no previous_hub, last_transfer_id)")
    if not any(_senders_of_gce(p) is not None for p in begin_proposals) or \
            not any(_senders_of_gce(p) is not None for p in abort_proposals):
        # AMB-FANOUT-SELECT's reading carries no moreProposals: a bundle's GCE comes apart from its mimi_hub update.
        ambiguous_if_read_otherwise(ABORT_TIMEOUT, "the begin and abort bundles (their GroupContextExtensions, read "
                                    "from FanoutMessage.moreProposals)", ambiguity="AMB-FANOUT-SELECT")
    begin_gce = next(s for p in begin_proposals if (s := _senders_of_gce(p)) is not None)
    target_key = bytes(begin.acceptance.content.new_hub_sender.signature_key)
    expected = [s.encode() for s in begin_gce if bytes(s.signature_key) != target_key]
    gces = [s for p in abort_proposals if (s := _senders_of_gce(p)) is not None]
    if not gces or [s.encode() for s in gces[0]] != expected:
        miss(ABORT_TIMEOUT, "the abort comes without a GroupContextExtensions proposal whose external_senders is the "
             "begin epoch's list without the target's entry")
        abort_ok = False
    if abort_ok:
        observed(ABORT_TIMEOUT, f"the abort proposed at {abort_message.timestamp} (not_after {begin.not_after}) with "
                 "a GCE removing the target's external sender")

    def abort_message_at_target():
        return [m for _, m in _prepares_at(ref_hub, room, hub_mark, sut) if m.msg_type == HubTransferMessageType.abort]

    try:
        aborts = poll_until(abort_message_at_target, timeout=5, what="the signed abort at the target")
    except PollTimeout:  # judged below
        aborts = abort_message_at_target()
    if not aborts:
        fail("the SUT aborted the transfer without sending the target a HubTransferMessage.abort",
             requirement=ABORT_NOTIFIES)
    signed = aborts[0].abort
    if bytes(signed.content.transfer_id) != bytes(begin.transfer_id) or bytes(signed.content.room_id.uri) != room.encode():
        fail("the abort message names another transfer or room", requirement=ABORT_NOTIFIES)
    if not verify_hub_transfer_abort(cipher_suite(state.suite.suite_id), signed, hub_key):
        fail("the abort message's signature does not verify with the hub's external_senders key",
             requirement=ABORT_NOTIFIES)
    observed(ABORT_NOTIFIES, "the target got a HubTransferMessage.abort naming the transfer and room, signed with "
             "the hub's external_senders key")
    ambiguous_if_read_otherwise(ABORT_TIMEOUT, "the begin and abort proposals the SUT fanned out")
