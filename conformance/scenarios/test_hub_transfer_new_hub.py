"""Hub transfer with the SUT as target and new hub (docs/extensions/hub-transfer.md §5.2, §6.4-§6.5,
§8.3, §9-§13).

The room lives on the reference hub (hub.ref.test), created by one of its users who is an admin and so
holds canTransferHub; members are on the reference follower. ``ref_hub.start_hub_transfer`` moves the
room to the SUT. ``ref_hub.hold_transfer(hold_handoff=True)`` keeps the reference hub's handoff back so
the SUT can be observed between the cut-over and the handoff. Forged or replayed hub-to-hub messages
are built here with :mod:`reference_peer.wire.hub_transfer` and the reference hub's keys (its HubRoom,
``ref_hub.hub_state(room)``) and sent as hub.ref.test or follower.ref.test (``mimi_as``).

What is judged is what the SUT answered on ``hubTransfer``, ``update``, ``submitMessage`` and
``groupInfo``, and what it sent the reference peers (their traffic logs).
"""

from __future__ import annotations

import contextlib
import fnmatch
import time
from urllib.parse import urlsplit

import pytest

from conformance.harness.polling import PollTimeout
from conformance.harness.reference_names import current
from conformance.scenarios.hub_transfer_support import transfer_settings
from conformance.scenarios.notify_bodies import ambiguous_if_read_otherwise, read_fanouts
from conformance.verdicts import HarnessError, blocked, expect, fail, judging, miss, not_applicable, observed
from reference_peer.mls import CryptoError, add_proposal, cipher_suite
from reference_peer.room.hub import open_group_info_response
from reference_peer.room.naming import domain_of_uri
from reference_peer.room.transfer import provider_uri, sender_domain
from reference_peer.wire.hub_transfer import (
    MIMI_HUB_COMPONENT_ID,
    HubHandoffTBS,
    HubTransferAbortTBS,
    HubTransferCode,
    HubTransferMessage,
    HubTransferMessageType,
    HubTransferPrepareTBS,
    HubTransferRequestTBS,
    HubTransferResponse,
    UndeliveredFanout,
    read_hub_data,
    read_hub_redirect,
    sign_hub_handoff,
    sign_hub_transfer_abort,
    sign_hub_transfer_prepare,
    sign_hub_transfer_request,
    verify_hub_transfer_acceptance,
)
from reference_peer.wire.identity import IdentifierUri
from reference_peer.wire.mimi import (
    FanoutMessage,
    GroupInfoCode,
    GroupInfoResponse,
    Protocol,
    SubmitMessageRequest,
    SubmitMessageResponse,
    SubmitResponseCode,
    UpdateResponseCode,
    UpdateRoomResponse,
    decode_fanout_sequence_tolerant,
)
from reference_peer.wire.mls import AppDataDictionary, ContentType, ExtensionType, ProposalType, WireFormat
from reference_peer.wire.ratchet_tree_options import RatchetTreeOption, RatchetTreeRepresentation

# This worker's reference domains (hub-k.ref.test on worker k): the plugin fixes them before import.
HUB_DOMAIN, FOLLOWER_DOMAIN = current()
MLS10 = {"protocol": Protocol.mls10}
ADMIN = 3
AUTOCOMMIT_ALL = ["begin", "cutover", "abort"]

PREPARE_VERIFY = "EXT-HUBXFER-PREPARE-VERIFY"
ACCEPT_SENDER = "EXT-HUBXFER-ACCEPT-SENDER"
PREPARE_REPLAY = "EXT-HUBXFER-PREPARE-REPLAY"
SOURCE_BINDING = "EXT-HUBXFER-SOURCE-BINDING"
TARGET_REDIRECT = "EXT-HUBXFER-TARGET-REDIRECT"
NEWHUB_503 = "EXT-HUBXFER-NEWHUB-503"
HANDOFF_VERIFY = "EXT-HUBXFER-HANDOFF-VERIFY"
HANDOFF_REPLAY = "EXT-HUBXFER-HANDOFF-REPLAY"
NEWHUB_SERVES = "EXT-HUBXFER-NEWHUB-SERVES"
NEWHUB_ROUTES = "EXT-HUBXFER-NEWHUB-ROUTES"
NEWHUB_HUB_SENDER = "EXT-HUBXFER-NEWHUB-HUB-SENDER"
ENCRYPTED_TO_REQUESTER = "PROTO-GROUPINFO-ENCRYPTED-TO-REQUESTER"  # a core rule the GroupInfo checks need
HANDOFF_BYTES_KEPT = "EXT-HUBXFER-HANDOFF-BYTES-KEPT"
INFLIGHT_ORDER = "EXT-HUBXFER-INFLIGHT-ORDER"
TIMESTAMPS_MONOTONIC = "EXT-HUBXFER-TIMESTAMPS-MONOTONIC"
OLD_SENDER_REMOVED = "EXT-HUBXFER-OLD-SENDER-REMOVED"
STATE_PRESERVED = "EXT-HUBXFER-STATE-PRESERVED"
NO_REINIT = "EXT-HUBXFER-NO-REINIT"
ROOMID_UNCHANGED = "EXT-HUBXFER-ROOMID-UNCHANGED"
TARGET_EXPIRES = "EXT-HUBXFER-TARGET-EXPIRES"
REMOVAL_PRESERVED = "EXT-HUBXFER-REMOVAL-PRESERVED"
ACCEPTS_HANDOFF = "EXT-HUBXFER-NEWHUB-ACCEPTS-HANDOFF"
DECLARED = "EXT-HUBXFER-DECLARED"

new_hub_check = [pytest.mark.role("hub"), pytest.mark.feature("hubTransfer")]


def now_ms() -> int:
    return int(time.time() * 1000)


# --------------------------------------------------------------------------------------------
# setup


@contextlib.contextmanager
def _precondition(what: str):
    """A wait the check needs but does not judge (the transfer reaching a phase, the reference members catching
    up): a timeout is the check's precondition failing, reported HARNESS_ERROR with what was awaited, never a miss
    charged to one of the check's requirements."""
    try:
        yield
    except PollTimeout as exc:
        raise HarnessError(f"precondition not met ({what}): {exc}") from None


class World:
    """One room on the reference hub moving to the SUT: its admin (a reference hub user) and members on
    the reference follower."""

    def __init__(self, sut, ref_hub, ref_follower, mimi_as, poll_until, recorder, members=("bob",),
                 admins=()) -> None:
        self.settings = transfer_settings(sut, "new-hub")
        accepts = self.settings.get("accepts_from", "any")
        # A pattern such as "*.ref.test" names every worker's reference hub at once.
        if accepts != "any" and not any(fnmatch.fnmatch(HUB_DOMAIN, name) for name in (accepts or ())):
            not_applicable(f"the SUT as target accepts transfers only from {accepts}, not from {HUB_DOMAIN}")
        self.sut, self.ref_hub, self.ref_follower = sut, ref_hub, ref_follower
        self.mimi_as, self.poll, self.recorder = mimi_as, poll_until, recorder
        self.domain = sut.manifest.domains[0]
        self.admin = ref_hub.create_user("admin")
        self.room = ref_hub.create_room(self.admin)
        self.members = {}
        for name in members:
            user = ref_follower.create_user(name)
            ref_hub.add_ok(self.room, self.admin, user, **({"role": ADMIN} if name in admins else {}))
            self.members[name] = user
        with _precondition("the reference members to reach the room's epoch"):
            self.sync()

    # -- the reference side --------------------------------------------------------------------

    def sync(self) -> None:
        """Every reference member at the reference hub's epoch."""
        epoch = self.ref_hub.room(self.room)["epoch"]
        for user in self.members.values():
            self.ref_follower.wait_epoch(self.room, epoch, what=f"{user.uri} to reach epoch {epoch}")
        self.poll(lambda: self.ref_hub.member_state(self.room, self.admin.client).epoch >= epoch,
                  what="the admin's client to reach the hub's epoch")

    def member(self, name: str):
        """A copy of a reference follower member's MLS state, at the latest epoch its provider has."""
        return self.ref_follower.member_state(self.room, self.members[name].client)

    def hub(self):
        return self.ref_hub.hub_state(self.room)

    def settle(self, receiver: str) -> None:
        """The old hub's user (now at a follower) sends a message through the new hub and ``receiver`` (a client
        at the reference follower) gets it: what the new hub fanned out to the follower before has arrived too
        (fan-out is ordered per destination)."""
        text = f"settle {now_ms()}".encode()
        self.send_through_new_hub(self.ref_hub, self.admin.client, text)
        with _precondition("a message through the new hub to reach the follower (settle)"):
            self.ref_follower.wait_received(receiver, text, room=self.room)

    def send_through_new_hub(self, party, client: str, text: bytes) -> None:
        """A message after the handoff, which the SUT as new hub must accept (EXT-HUBXFER-NEWHUB-SERVES, judged by
        test_new_hub_accepts_and_sequences_the_room): a refusal blocks the checks that need it."""
        sent = party.send(self.room, client, text)
        if sent.get("outcome") != "accepted":
            blocked(NEWHUB_SERVES, f"the new hub did not accept a participant's message for the room it took over: {sent}")

    def outgoing(self) -> dict:
        return self.ref_hub.hub_transfer_state()["outgoing"].get(self.room, {})

    def start(self) -> str:
        """The reference hub moves the room to the SUT; the transfer_id (hex)."""
        result = self.ref_hub.start_hub_transfer(self.room, self.admin, self.domain)
        self.recorder.note(f"startHubTransfer to {self.domain}: {result}")
        if result.get("outcome") != "started":
            raise HarnessError(f"the reference hub could not start the transfer to the SUT (the SUT as target "
                               f"must accept it, its manifest accepts from {self.settings.get('accepts_from')}): "
                               f"{result}")
        return result.get("transferId", "")

    def wait_moved(self) -> dict:
        return self.poll(lambda: (o := self.outgoing()).get("phase") in ("moved", "handed-off") and o,
                         what="the reference hub to accept the cut-over commit")

    def wait_handed_off(self) -> dict:
        return self.poll(lambda: (o := self.outgoing()).get("phase") == "handed-off" and o,
                         what="the SUT to accept the reference hub's handoff",
                         )

    def cutover_notified(self, cutover_epoch: int) -> bool:
        """The reference hub's /notify carrying the cut-over commit was answered 201 by the SUT."""
        for item in self.ref_hub.traffic(endpoint="notify", direction="out", peer=self.domain):
            if item.value != self.room or item.status != 201:
                continue
            # The reference hub's own body, in whichever reading its variants send (not the SUT's: not recorded).
            for fanout in decode_fanout_sequence_tolerant(item.request, scope=MLS10).value:
                msg = fanout.message
                if msg.wire_format == WireFormat.mls_public_message \
                        and msg.public_message.content.content_type == ContentType.commit \
                        and msg.public_message.content.epoch == cutover_epoch - 1:
                    return True
        return False

    def acceptance(self):
        """The SUT's acceptance of the reference hub's prepare."""
        transfer = self.hub().transfer
        if transfer is None:
            raise HarnessError("the reference hub has no transfer of the room")
        return transfer.acceptance

    # -- MIMI to the SUT -----------------------------------------------------------------------

    @property
    def authority(self) -> str:
        return urlsplit(self.sut.base_urls.get(self.domain, self.sut.base_urls[self.sut.primary_domain])).netloc

    def call(self, endpoint: str, body: bytes, *, as_domain: str = FOLLOWER_DOMAIN):
        session = self.mimi_as(as_domain)
        return session.run(session.client.call(self.authority, endpoint, self.room, body))

    def hub_transfer(self, message: HubTransferMessage | bytes, *, as_domain: str = HUB_DOMAIN,
                     requirement: str | None = None) -> HubTransferResponse:
        """The SUT's HubTransferResponse; anything else is a miss of ``requirement`` (the one the message tests)."""
        body = message if isinstance(message, bytes) else message.encode()
        reply = self.call("hubTransfer", body, as_domain=as_domain)
        if reply.status != 200:
            fail(f"hubTransfer answered HTTP {reply.status} to a decodable HubTransferMessage, not 200 with a "
                 "HubTransferResponse", requirement=requirement)
        return HubTransferResponse.decode(reply.body)

    # -- forged hub-to-hub messages (the reference hub's keys) ------------------------------------

    def request(self, state, *, target: str | None = None, lifetime_ms: int = 60_000):
        """A HubTransferRequest signed by the client ``state`` (a SimulatedClient copy)."""
        group = state.group
        data = read_hub_data(group.app_data(), self.room)
        content = HubTransferRequestTBS(
            room_id=IdentifierUri(uri=self.room.encode()), group_id=bytes(group.group_id),
            target=provider_uri(target or self.domain), generation=data.generation,
            not_after=now_ms() + lifetime_ms, initiator=IdentifierUri(uri=state.user_uri.encode()),
            initiator_leaf_index=group.own_leaf,
        )
        return sign_hub_transfer_request(cipher_suite(state.suite_id), state.signature_priv, content)

    def prepare(self, request, transfer_id: bytes, *, not_after_ms: int = 60_000, hub=None) -> HubTransferMessage:
        hub = hub or self.hub()
        suite = cipher_suite(hub.view.suite.suite_id)
        content = HubTransferPrepareTBS(
            request=request, transfer_id=transfer_id, cipher_suite=hub.view.suite.suite_id,
            old_hub_sender=hub.identity.external_sender, group_info=hub.group_info,
            ratchet_tree_option=RatchetTreeOption(representation=RatchetTreeRepresentation.full,
                                                  ratchet_tree=hub.view.tree.to_wire()),
            requested_not_after=now_ms() + not_after_ms,
        )
        signed = sign_hub_transfer_prepare(suite, hub.identity.signature_priv, content)
        return HubTransferMessage(msg_type=HubTransferMessageType.prepare, prepare=signed)

    def abort(self, transfer_id: bytes, hub=None) -> HubTransferMessage:
        hub = hub or self.hub()
        content = HubTransferAbortTBS(room_id=IdentifierUri(uri=self.room.encode()), transfer_id=transfer_id,
                                      reason=b"conformance check")
        signed = sign_hub_transfer_abort(cipher_suite(hub.view.suite.suite_id), hub.identity.signature_priv, content)
        return HubTransferMessage(msg_type=HubTransferMessageType.abort, abort=signed)

    def handoff(self, transfer_id: bytes, generation: int, epoch: int, hub=None, *, undelivered=(),
                last_accepted: int | None = None) -> HubTransferMessage:
        hub = hub or self.hub()
        content = HubHandoffTBS(
            room_id=IdentifierUri(uri=self.room.encode()), group_id=bytes(hub.group_id), transfer_id=transfer_id,
            generation=generation, cutover_epoch=epoch, old_hub=provider_uri(HUB_DOMAIN),
            new_hub=provider_uri(self.domain), group_info=hub.group_info,
            ratchet_tree_option=RatchetTreeOption(representation=RatchetTreeRepresentation.full,
                                                  ratchet_tree=hub.view.tree.to_wire()),
            pending_proposals=[], routes=[], undelivered=list(undelivered),
            last_accepted_timestamp=hub.last_accepted if last_accepted is None else last_accepted,
            handoff_extensions=AppDataDictionary(component_data=[]),
        )
        signed = sign_hub_handoff(cipher_suite(hub.view.suite.suite_id), hub.identity.signature_priv, content)
        return HubTransferMessage(msg_type=HubTransferMessageType.handoff, handoff=signed)


@pytest.fixture
def world_factory(sut, ref_hub, ref_follower, mimi_as, poll_until, recorder, reference_peers):
    """World(...) with the reference hub's transfer knobs restored afterwards."""
    try:
        def make(**kw):
            world = World(sut, ref_hub, ref_follower, mimi_as, poll_until, recorder, **kw)
            world.ref_hub_url = reference_peers.hub.endpoints[HUB_DOMAIN].base_url
            return world

        yield make
    finally:
        ref_hub.hold_transfer(autocommit=AUTOCOMMIT_ALL, hold_handoff=False)


def _random_id() -> bytes:
    import secrets

    return secrets.token_bytes(16)


def _code(answer: HubTransferResponse) -> str:
    text = bytes(answer.error_description).decode("utf-8", "replace")
    return f"{answer.code.name}" + (f" ({text})" if text else "")


def _notify_fanouts(party, mark: int, source: str, room: str) -> list[tuple[bytes, FanoutMessage]]:
    """(bytes, FanoutMessage) of every /notify ``party`` received from ``source`` for ``room`` after ``mark``,
    answered 201, in arrival order; a body is read as written, else in the register's other reading (recorded:
    notify_bodies), and the bytes are the FanoutMessage as written."""
    out = []
    for item in party.traffic(mark, endpoint="notify", direction="in", peer=source):
        if item.value != room or item.status != 201:
            continue
        for fanout in read_fanouts(item.request):
            out.append((fanout.encode(), fanout))
    return out


# --------------------------------------------------------------------------------------------
# prepare and acceptance (§5.2, §12)


@pytest.mark.usefixtures("sut")
@pytest.mark.role("hub")
@pytest.mark.feature("hubTransfer")
@pytest.mark.requirements(PREPARE_VERIFY, SOURCE_BINDING)
@pytest.mark.operations()
def test_target_refuses_unverified_prepares(world_factory, recorder):
    """The SUT as target refuses a prepare from a provider that is not the room's hub (notHub), one whose
    signature does not verify with the hub's external_senders entry, one signed with a key in no external_senders
    entry (under the hub's credential), and one whose request was signed by a member without canTransferHub; then accepts a valid one (so the refusals are not blanket refusals)."""
    w = world_factory()
    admin = w.ref_hub.member_state(w.room, w.admin.client)
    bob = w.member("bob")
    good = w.request(admin)

    # A prepare from a peer that is not the room's hub: PREPARE-VERIFY requires a refusal, SOURCE-BINDING the
    # code notHub. Each is judged on its own; a SUT may miss one and keep the other.
    answer = w.hub_transfer(w.prepare(good, _random_id()), as_domain=FOLLOWER_DOMAIN, requirement=SOURCE_BINDING)
    recorder.note(f"prepare from {FOLLOWER_DOMAIN}: {_code(answer)}")
    refused = []  # the PREPARE-VERIFY refusals, observed once a valid prepare is accepted
    if answer.code == HubTransferCode.accepted:
        miss(PREPARE_VERIFY, f"the SUT accepted a prepare whose mTLS peer ({FOLLOWER_DOMAIN}) is not the room's hub")
    else:
        refused.append(f"peer {FOLLOWER_DOMAIN}: {answer.code.name}")
    if answer.code != HubTransferCode.notHub:
        miss(SOURCE_BINDING, f"a prepare whose mTLS peer ({FOLLOWER_DOMAIN}) is not the room's hub was answered "
             f"{_code(answer)}, not notHub")
    else:
        observed(SOURCE_BINDING, f"a prepare from {FOLLOWER_DOMAIN} (not the hub) answered notHub")

    forged = w.prepare(good, _random_id())
    signature = bytearray(forged.prepare.signature)
    signature[0] ^= 0x01
    forged = forged.replace(prepare=forged.prepare.replace(signature=bytes(signature)))
    answer = w.hub_transfer(forged, requirement=PREPARE_VERIFY)
    recorder.note(f"prepare with a bad signature: {_code(answer)}")
    if answer.code == HubTransferCode.accepted:
        miss(PREPARE_VERIFY, "the SUT accepted a prepare whose signature does not verify with the hub's "
             "external_senders key")
    else:
        refused.append(f"bad signature: {answer.code.name}")

    # Signed, and verifying, with a key that is in no external_senders entry (its ExternalSender carries the
    # hub's own credential): the signature must verify with "an external_senders entry naming that hub".
    unlisted = w.prepare(good, _random_id())
    hub_state = w.hub()
    suite = cipher_suite(hub_state.view.suite.suite_id)
    priv, pub = suite.generate_signature_key_pair()
    content = unlisted.prepare.content.replace(
        old_hub_sender=hub_state.identity.external_sender.replace(signature_key=pub))
    unlisted = unlisted.replace(prepare=sign_hub_transfer_prepare(suite, priv, content))
    answer = w.hub_transfer(unlisted, requirement=PREPARE_VERIFY)
    recorder.note(f"prepare signed with a key in no external_senders entry: {_code(answer)}")
    if answer.code == HubTransferCode.accepted:
        miss(PREPARE_VERIFY, "the SUT accepted a prepare whose old_hub_sender key (its signature verifies with it) "
             "is in no external_senders entry of the room")
    else:
        refused.append(f"key in no external_senders entry: {answer.code.name}")

    answer = w.hub_transfer(w.prepare(w.request(bob), _random_id()), requirement=PREPARE_VERIFY)
    recorder.note(f"prepare with a request signed by bob (no canTransferHub): {_code(answer)}")
    if answer.code == HubTransferCode.accepted:
        miss(PREPARE_VERIFY, "the SUT accepted a prepare whose request was signed by a member whose role lacks "
             "canTransferHub")
    else:
        refused.append(f"request without canTransferHub: {answer.code.name}")

    answer = w.hub_transfer(w.prepare(good, _random_id()), requirement=PREPARE_VERIFY)
    recorder.note(f"valid prepare: {_code(answer)}")
    if answer.code != HubTransferCode.accepted:
        raise HarnessError(f"the SUT did not accept a valid prepare ({_code(answer)}), so its refusals above "
                           "cannot be told from a target that accepts nothing")
    if len(refused) == 4:
        observed(PREPARE_VERIFY, "refused: " + "; ".join(refused) + "; a valid prepare accepted")


@pytest.mark.usefixtures("sut")
@pytest.mark.role("hub")
@pytest.mark.feature("hubTransfer")
@pytest.mark.requirements(ACCEPT_SENDER, PREPARE_REPLAY, DECLARED)
@pytest.mark.operations()
def test_target_acceptance_names_itself_and_replays_are_refused(world_factory, recorder):
    """A valid prepare is accepted with an acceptance whose new_hub_sender credential names the SUT's domain and
    whose signature verifies with that sender's key; the same prepare again, and another prepare reusing its
    transfer_id, are refused with replayed.

    EXT-HUBXFER-DECLARED ("MUST declare in its manifest [...] its acceptance policy as a target"; the manifest's
    accepts_from, hub-transfer.md §17): the check runs only when accepts_from admits the reference hub (else
    NOT_APPLICABLE, in World), so a valid prepare from it that is not accepted departs from the declared policy.
    §5.2 lets a target decline "for any reason"; the declaration is where the SUT states its reasons."""
    w = world_factory()
    admin = w.ref_hub.member_state(w.room, w.admin.client)
    transfer_id = _random_id()
    prepare = w.prepare(w.request(admin), transfer_id)
    answer = w.hub_transfer(prepare, requirement=ACCEPT_SENDER)
    recorder.note(f"valid prepare: {_code(answer)}")
    if answer.code != HubTransferCode.accepted or answer.acceptance is None:
        fail(f"the SUT answered {_code(answer)} to a valid prepare from {HUB_DOMAIN}, which its manifest's "
             f"accepts_from ({w.settings.get('accepts_from', 'any')}) admits", requirement=DECLARED)
    observed(DECLARED, f"a valid prepare from {HUB_DOMAIN}, admitted by accepts_from "
             f"({w.settings.get('accepts_from', 'any')}), accepted")
    acceptance = answer.acceptance
    c = acceptance.content
    named = sender_domain(c.new_hub_sender)
    recorder.note(f"acceptance: new_hub_sender names {named!r}, new_hub {bytes(c.new_hub.uri)!r}")
    suite = cipher_suite(w.hub().view.suite.suite_id)
    problems = []
    if named != w.domain:
        problems.append(f"the acceptance's new_hub_sender credential names {named!r}, not the target's domain "
                        f"{w.domain!r}")
    if not verify_hub_transfer_acceptance(suite, acceptance, bytes(c.new_hub_sender.signature_key)):
        problems.append("the acceptance's signature does not verify with its new_hub_sender key (HubTransferAcceptTBS)")
    if bytes(c.transfer_id) != transfer_id or bytes(c.room_id.uri) != w.room.encode():
        problems.append("the acceptance does not carry the prepare's transfer_id and room_id")
    asked = prepare.prepare.content
    if c.generation != asked.request.content.generation + 1 or bytes(c.group_id) != bytes(w.hub().group_id) \
            or domain_of_uri(bytes(c.old_hub.uri)) != HUB_DOMAIN or c.not_after > asked.requested_not_after:
        # §5.2: HubTransferAcceptTBS "generation; /* of the begin update: request generation + 1 */", "not_after;
        # /* <= requested_not_after */"; §4.2 item 3: the content matches "the group ID, [...] generation, A".
        problems.append(f"the acceptance's generation {c.generation}, group_id, old_hub {bytes(c.old_hub.uri)!r} or "
                        f"not_after {c.not_after} do not match the prepare (request generation "
                        f"{asked.request.content.generation} + 1, {HUB_DOMAIN}, at most {asked.requested_not_after})")
    if domain_of_uri(bytes(c.new_hub.uri)) != w.domain:
        # §4.2 item 3: a begin is valid only if the acceptance's "content matches [...] A, B": new_hub is B, the target.
        problems.append(f"the acceptance's new_hub is {bytes(c.new_hub.uri)!r}, not the target {w.domain!r}")
    if problems:
        miss(ACCEPT_SENDER, "; ".join(problems))
    else:
        observed(ACCEPT_SENDER, f"new_hub_sender names {named}, the acceptance verifies with its key")

    answer = w.hub_transfer(prepare, requirement=PREPARE_REPLAY)
    recorder.note(f"the same prepare again: {_code(answer)}")
    if answer.code != HubTransferCode.replayed:
        fail(f"a repeated prepare was answered {_code(answer)}, not replayed", requirement=PREPARE_REPLAY)
    other = w.prepare(w.request(admin), transfer_id, not_after_ms=30_000)
    answer = w.hub_transfer(other, requirement=PREPARE_REPLAY)
    recorder.note(f"another prepare with the same transfer_id: {_code(answer)}")
    expect(PREPARE_REPLAY, answer.code == HubTransferCode.replayed,
           f"a new prepare reusing a seen transfer_id was answered {_code(answer)}, not replayed",
           evidence="the same prepare again and another prepare with its transfer_id: both replayed")


# --------------------------------------------------------------------------------------------
# the target's window: redirect, abort, expiry (§8.3, §11)


@pytest.mark.usefixtures("sut")
@pytest.mark.role("hub")
@pytest.mark.feature("hubTransfer")
@pytest.mark.requirements(TARGET_REDIRECT)
@pytest.mark.operations()
def test_target_redirects_to_the_current_hub_during_the_window(world_factory, recorder):
    """While the transfer is in its window (nobody commits the cut-over), submitMessage, update and groupInfo
    for the room at the SUT are answered 421 with a HubRedirect naming the reference hub."""
    w = world_factory()
    w.ref_hub.hold_transfer(autocommit=["begin"])
    w.start()
    bob = w.member("bob")
    _, hpke_pub = cipher_suite(bob.suite_id).generate_hpke_key_pair()
    bodies = {
        "submitMessage": bob.send(b"to the target"),
        "update": bob.proposal_messages_request([bob.group.propose_update()]),
        "groupInfo": bob.group_info_request(hpke_pub).encode(),
    }
    for endpoint, body in bodies.items():
        reply = w.call(endpoint, body)
        redirect = read_hub_redirect(reply.headers.get("content-type"), reply.body, w.room) \
            if reply.status == 421 else None
        recorder.note(f"{endpoint} at the target during the window: HTTP {reply.status}"
                      + (f", redirect to {bytes(redirect.hub.uri)!r}" if redirect is not None else ""))
        if redirect is None:
            fail(f"{endpoint} for the room at the target during the window was answered HTTP {reply.status} "
                 f"({reply.headers.get('content-type')}), not 421 with a HubRedirect", requirement=TARGET_REDIRECT)
        if domain_of_uri(bytes(redirect.hub.uri)) != HUB_DOMAIN:
            fail(f"the target's HubRedirect names {bytes(redirect.hub.uri)!r}, not the current hub {HUB_DOMAIN}",
                 requirement=TARGET_REDIRECT)
    observed(TARGET_REDIRECT, f"{', '.join(bodies)} during the window: 421 with a HubRedirect naming {HUB_DOMAIN}")


@pytest.mark.usefixtures("sut")
@pytest.mark.role("hub")
@pytest.mark.feature("hubTransfer")
@pytest.mark.requirements(TARGET_EXPIRES, SOURCE_BINDING)
@pytest.mark.operations()
def test_target_discards_an_aborted_transfer(world_factory, recorder):
    """An abort from a provider that is not the room's hub is refused with notHub; an abort signed by the hub
    but naming another transfer_id leaves the accepted transfer open (a handoff probe before any cut-over is
    refused for another reason than unknownTransfer); after a valid abort from the hub, a handoff for the
    transfer is answered unknownTransfer.

    hub-transfer.md §11: "after a valid abort or after not_after, B answers a later handoff for the transfer
    with unknownTransfer"; an abort names the transfer it ends (HubTransferAbortTBS.transfer_id), and until
    then the transfer is open (§5.2 "from then on it keeps the group's public state"; §12 accepts a handoff
    only if "B accepted the prepare with this transfer_id"), so a target that discarded it on another
    transfer's abort would refuse the handoff of a cut-over committed in time. As in
    test_target_discards_a_transfer_past_not_after, which refusal the probe gets (staleGeneration or
    wrongEpoch: no cut-over was committed) is not judged, only that it is not unknownTransfer."""
    w = world_factory()
    admin = w.ref_hub.member_state(w.room, w.admin.client)
    transfer_id = _random_id()
    answer = w.hub_transfer(w.prepare(w.request(admin), transfer_id), requirement=TARGET_EXPIRES)
    if answer.code != HubTransferCode.accepted:
        raise HarnessError(f"the SUT did not accept a valid prepare: {_code(answer)}")
    answer = w.hub_transfer(w.abort(transfer_id), as_domain=FOLLOWER_DOMAIN, requirement=SOURCE_BINDING)
    recorder.note(f"abort from {FOLLOWER_DOMAIN}: {_code(answer)}")
    if answer.code != HubTransferCode.notHub:
        miss(SOURCE_BINDING, f"an abort from {FOLLOWER_DOMAIN}, not the room's hub, was answered {_code(answer)}, "
             "not notHub")
    else:
        observed(SOURCE_BINDING, f"an abort from {FOLLOWER_DOMAIN} (not the hub) answered notHub")
    answer = w.hub_transfer(w.abort(_random_id()), requirement=TARGET_EXPIRES)
    recorder.note(f"abort from {HUB_DOMAIN} naming another transfer_id: {_code(answer)}")
    hub = w.hub()
    probe = w.hub_transfer(w.handoff(transfer_id, hub.hub_data().generation + 2, hub.epoch, hub),
                           requirement=TARGET_EXPIRES)
    recorder.note(f"handoff probe after the abort naming another transfer_id (no cut-over): {_code(probe)}")
    if probe.code == HubTransferCode.unknownTransfer:
        fail("after an abort signed by the hub but naming another transfer_id (and one from a provider that is not "
             "the hub), the SUT answered a handoff for the accepted transfer unknownTransfer: it discarded a "
             "transfer no valid abort named", requirement=TARGET_EXPIRES)
    answer = w.hub_transfer(w.abort(transfer_id), requirement=TARGET_EXPIRES)
    recorder.note(f"abort from {HUB_DOMAIN}: {_code(answer)}")
    hub = w.hub()
    answer = w.hub_transfer(w.handoff(transfer_id, hub.hub_data().generation + 2, hub.epoch, hub),
                            requirement=TARGET_EXPIRES)
    recorder.note(f"handoff after the abort: {_code(answer)}")
    expect(TARGET_EXPIRES, answer.code == HubTransferCode.unknownTransfer,
           f"a handoff for an aborted transfer was answered {_code(answer)}, not unknownTransfer",
           evidence="a handoff after a valid abort: unknownTransfer")


@pytest.mark.usefixtures("sut")
@pytest.mark.role("hub")
@pytest.mark.feature("hubTransfer")
@pytest.mark.requirements(TARGET_EXPIRES)
@pytest.mark.operations()
def test_target_discards_a_transfer_past_not_after(world_factory, poll_until, recorder):
    """A transfer whose cut-over the target never observed is discarded at not_after, not before: the
    reference hub's handoff (no cut-over committed) sent well before not_after is refused for another reason
    than unknownTransfer, the same handoff after not_after is answered unknownTransfer (the prepare asks for
    a short deadline).

    hub-transfer.md §11: "If B sees no cut-over commit by not_after, it discards the transfer without being
    told. Either way, after a valid abort or after not_after, B answers a later handoff for the transfer with
    unknownTransfer." Until not_after the transfer is open: §5.2 "When it accepts, it answers accepted with a
    HubTransferAcceptance, and from then on it keeps the group's public state", and §12 accepts a handoff
    only if "B accepted the prepare with this transfer_id", so a target that dropped it earlier would refuse
    the handoff of a cut-over committed in time. §12 lists the refusals in the order of its conditions
    ("Refusals: notHub, unknownTransfer, staleGeneration or wrongEpoch, and badSignature"): unknownTransfer is
    the answer for a transfer B did not accept (or discarded), and the early probe, lacking only the committed
    cut-over, is staleGeneration or wrongEpoch; which of those is not judged, only that it is not
    unknownTransfer."""
    w = world_factory()
    admin = w.ref_hub.member_state(w.room, w.admin.client)
    transfer_id = _random_id()
    answer = w.hub_transfer(w.prepare(w.request(admin), transfer_id, not_after_ms=4000))
    if answer.code != HubTransferCode.accepted or answer.acceptance is None:
        raise HarnessError(f"the SUT did not accept a valid prepare: {_code(answer)}")
    not_after = answer.acceptance.content.not_after
    recorder.note(f"accepted with not_after {not_after} (in {not_after - now_ms()} ms)")
    time.sleep(0.5)  # the SUT's expiry timers run meanwhile
    if now_ms() < not_after - 1000:
        hub = w.hub()
        early = w.hub_transfer(w.handoff(transfer_id, hub.hub_data().generation + 2, hub.epoch, hub),
                               requirement=TARGET_EXPIRES)
        recorder.note(f"handoff {not_after - now_ms()} ms before not_after (no cut-over): {_code(early)}")
        if early.code == HubTransferCode.unknownTransfer:
            fail(f"{not_after - now_ms()} ms before the accepted transfer's not_after, with no abort, the SUT "
                 "answered its handoff unknownTransfer: it discarded the transfer before not_after",
                 requirement=TARGET_EXPIRES)
    else:  # the SUT chose a not_after too close for the early probe (permitted: not_after <= requested)
        recorder.note("not_after too close for a handoff before it; only the expiry is judged")
    poll_until(lambda: now_ms() > not_after + 200, timeout=max(5.0, (not_after - now_ms()) / 1000 + 5),
               what="the transfer's not_after to pass")
    hub = w.hub()
    answer = w.hub_transfer(w.handoff(transfer_id, hub.hub_data().generation + 2, hub.epoch, hub))
    recorder.note(f"handoff after not_after: {_code(answer)}")
    expect(TARGET_EXPIRES, answer.code == HubTransferCode.unknownTransfer,
           f"a handoff for a transfer past its not_after without a cut-over was answered {_code(answer)}, not "
           "unknownTransfer", evidence="a handoff after not_after (no cut-over): unknownTransfer")


# --------------------------------------------------------------------------------------------
# between the cut-over and the handoff (§6.4, §12)


def _held_at_cutover(w):
    """Start a transfer whose handoff the reference hub holds back; once the SUT answered 201 to the
    cut-over commit, returns the reference hub's outgoing transfer record."""
    w.ref_hub.hold_transfer(hold_handoff=True)
    w.start()
    with _precondition("the cut-over commit, answered 201 by the SUT"):
        outgoing = w.wait_moved()
        epoch = outgoing["cutoverEpoch"]
        w.poll(lambda: w.cutover_notified(epoch), what=f"the SUT to answer 201 to the cut-over commit (epoch {epoch})")
    return outgoing


@pytest.mark.usefixtures("sut")
@pytest.mark.role("hub")
@pytest.mark.feature("hubTransfer")
@pytest.mark.requirements(NEWHUB_503)
@pytest.mark.operations()
def test_new_hub_answers_503_until_the_handoff(world_factory, recorder):
    """After the SUT observed the cut-over commit and before the reference hub sends the handoff (held back),
    submitMessage, update and groupInfo for the room are answered 503 with a Retry-After header."""
    w = world_factory()
    _held_at_cutover(w)
    bob = w.member("bob")
    _, hpke_pub = cipher_suite(bob.suite_id).generate_hpke_key_pair()
    bodies = {
        "submitMessage": bob.send(b"before the handoff"),
        "update": bob.proposal_messages_request([bob.group.propose_update()]),
        "groupInfo": bob.group_info_request(hpke_pub).encode(),
    }
    for endpoint, body in bodies.items():
        reply = w.call(endpoint, body)
        retry_after = reply.headers.get("retry-after")
        recorder.note(f"{endpoint} at the new hub before the handoff: HTTP {reply.status}, Retry-After {retry_after!r}")
        if reply.status != 503 or not retry_after:
            fail(f"{endpoint} for the room between the cut-over and the handoff was answered HTTP {reply.status}"
                 f"{' with' if retry_after else ' without'} Retry-After, not 503 with Retry-After",
                 requirement=NEWHUB_503)
    if w.outgoing().get("phase") != "moved":
        raise HarnessError("the reference hub handed the room over although it was told to hold the handoff")
    observed(NEWHUB_503, f"{', '.join(bodies)} between the cut-over and the handoff: 503 with Retry-After")


@pytest.mark.usefixtures("sut")
@pytest.mark.role("hub")
@pytest.mark.feature("hubTransfer")
@pytest.mark.requirements(HANDOFF_VERIFY, SOURCE_BINDING, HANDOFF_REPLAY, ACCEPTS_HANDOFF)
@pytest.mark.operations()
def test_new_hub_verifies_handoffs(world_factory, ref_follower, recorder):
    """Before the real handoff, handoffs from a third provider (notHub), with another transfer_id, generation or
    cut-over epoch, or a bad signature are refused; the real one is accepted; its byte-identical repeat is
    answered accepted with no further effect, and a different handoff for the transfer is refused replayed.

    EXT-HUBXFER-NEWHUB-ACCEPTS-HANDOFF (IMPLIED; hub-transfer.md §6.4 "B verifies the handoff (§12) [...] Then
    it: * becomes the hub", §11 "A later valid handoff is still accepted"): the reference old hub's real handoff,
    sent once the SUT answered 201 to the cut-over commit, is answered accepted. A refusal code or an HTTP error
    status from the SUT is a miss; a handoff that never got an answer is the set-up's."""
    w = world_factory(members=("bob", "carol"))
    outgoing = _held_at_cutover(w)
    hub = w.hub()
    transfer_id = bytes.fromhex(outgoing["transferId"])
    generation, epoch = hub.transfer.cutover_generation, hub.transfer.cutover_epoch

    # A handoff from a peer that is not the previous hub: HANDOFF-VERIFY requires a refusal, SOURCE-BINDING the
    # code notHub (judged apart: a SUT may refuse with another code).
    answer = w.hub_transfer(w.handoff(transfer_id, generation, epoch, hub), as_domain=FOLLOWER_DOMAIN,
                            requirement=SOURCE_BINDING)
    recorder.note(f"handoff from {FOLLOWER_DOMAIN}: {_code(answer)}")
    if answer.code != HubTransferCode.notHub:
        miss(SOURCE_BINDING, f"a handoff from {FOLLOWER_DOMAIN}, not the previous hub, was answered {_code(answer)}, "
             "not notHub")
    else:
        observed(SOURCE_BINDING, f"a handoff from {FOLLOWER_DOMAIN} (not the previous hub) answered notHub")
    if answer.code == HubTransferCode.accepted:
        fail(f"the new hub accepted a handoff from {FOLLOWER_DOMAIN}, not the previous hub",
             requirement=HANDOFF_VERIFY)
    refused = [f"peer {FOLLOWER_DOMAIN}: {answer.code.name}"]
    bad_signature = w.handoff(transfer_id, generation, epoch, hub)
    signature = bytearray(bad_signature.handoff.signature)
    signature[-1] ^= 0x01
    bad_signature = bad_signature.replace(handoff=bad_signature.handoff.replace(signature=bytes(signature)))
    for label, message in (
        ("another transfer_id", w.handoff(_random_id(), generation, epoch, hub)),
        ("another generation", w.handoff(transfer_id, generation + 1, epoch, hub)),
        ("another cut-over epoch", w.handoff(transfer_id, generation, epoch + 1, hub)),
        ("a bad signature", bad_signature),
    ):
        answer = w.hub_transfer(message, requirement=HANDOFF_VERIFY)
        recorder.note(f"handoff with {label}: {_code(answer)}")
        if answer.code == HubTransferCode.accepted:
            fail(f"the new hub accepted a handoff with {label}", requirement=HANDOFF_VERIFY)
        refused.append(f"{label}: {answer.code.name}")

    w.ref_hub.hold_transfer(hold_handoff=False)
    try:
        outgoing = w.wait_handed_off()
    except PollTimeout as exc:
        status = w.outgoing().get("handoffStatus") or ""
        recorder.note(f"the SUT's last answer to the reference hub's real handoff: {status!r}")
        # An in-body refusal, or an HTTP error for a decodable message (§3.3: "Any message that can be decoded is
        # answered with HTTP 200 and an in-body code"); a transport failure or a 503 stays the set-up's.
        if (status in HubTransferCode.__members__ and status != HubTransferCode.accepted.name) \
                or (status.startswith("HTTP ") and status != "HTTP 503"):
            fail(f"the SUT answered the reference hub's valid handoff {status} (a committed cut-over to the SUT, "
                 "the accepted transfer_id, from the previous hub): it never takes the room over",
                 requirement=ACCEPTS_HANDOFF)
        raise HarnessError(f"precondition not met (the SUT to accept the reference hub's real handoff): {exc}") \
            from None
    observed(ACCEPTS_HANDOFF, f"the reference hub's real handoff accepted (after {outgoing.get('handoffAttempts')} "
             "attempt(s))")
    # The refusals are refusals of what was wrong in each, not of every handoff: the real one was accepted.
    observed(HANDOFF_VERIFY, "refused: " + "; ".join(refused) + "; the real handoff accepted")
    real = bytes.fromhex(outgoing["handoff"])
    bob, carol = w.members["bob"], w.members["carol"]
    # A first sentinel: once carol has it, whatever the new hub fanned out before it (its own proposals after
    # taking over) has reached the follower too (fan-out is ordered per destination).
    w.send_through_new_hub(w.ref_follower, bob.client, b"sentinel before the repeat")
    with _precondition("a message through the new hub to reach the follower before the repeated handoff"):
        w.ref_follower.wait_received(carol.client, b"sentinel before the repeat", room=w.room)
    mark = ref_follower.traffic_mark()
    answer = w.hub_transfer(real, requirement=HANDOFF_REPLAY)
    recorder.note(f"byte-identical repeat of the accepted handoff: {_code(answer)}")
    if answer.code != HubTransferCode.accepted:
        fail(f"a byte-identical repeat of the accepted handoff was answered {_code(answer)}, not accepted",
             requirement=HANDOFF_REPLAY)
    other = w.handoff(transfer_id, generation, epoch, hub, last_accepted=hub.last_accepted + 1)
    answer = w.hub_transfer(other, requirement=HANDOFF_REPLAY)
    recorder.note(f"a different handoff for the handed-over transfer: {_code(answer)}")
    if answer.code != HubTransferCode.replayed:
        fail(f"a different handoff for an already handed-over transfer was answered {_code(answer)}, not replayed",
             requirement=HANDOFF_REPLAY)
    # No further effect: the next thing the follower gets from the new hub is the sentinel, no new proposal
    # (the room served as before the repeat: a message through the new hub still reaches the follower).
    w.send_through_new_hub(w.ref_follower, bob.client, b"sentinel after the repeat")
    with judging(HANDOFF_REPLAY):
        w.ref_follower.wait_received(carol.client, b"sentinel after the repeat", room=w.room)
    proposals = [f for _, f in _notify_fanouts(ref_follower, mark, w.domain, w.room)
                 if f.message.wire_format == WireFormat.mls_public_message
                 and f.message.public_message.content.content_type == ContentType.proposal]
    expect(HANDOFF_REPLAY, not proposals,
           f"after the repeated handoff the new hub fanned out {len(proposals)} proposal(s) again (the repeat "
           "must have no further effect)",
           evidence="the byte-identical repeat accepted with no new proposal fanned out; a different handoff "
           "for the transfer replayed")
    ambiguous_if_read_otherwise(HANDOFF_REPLAY, "which proposals the new hub fanned out after the repeat")


# --------------------------------------------------------------------------------------------
# the new hub (§6.4, §6.5, §10, §13)


def _moved(w):
    """A complete transfer to the SUT; the reference hub's outgoing record once the handoff is accepted."""
    w.start()
    with _precondition("the SUT to take the room over (handoff accepted)"):
        return w.wait_handed_off()


def _group_info(w, state):
    """(GroupInfoResponse, GroupInfoRatchetTreeTBE or None) from the SUT, requested by the member ``state``."""
    suite = cipher_suite(state.suite_id)
    hpke_priv, hpke_pub = suite.generate_hpke_key_pair()
    reply = w.call("groupInfo", state.group_info_request(hpke_pub).encode())
    if reply.status != 200:
        # Serving the room's groupInfo after the handoff is EXT-HUBXFER-NEWHUB-SERVES (judged by
        # test_new_hub_accepts_and_sequences_the_room); without a GroupInfoResponse nothing here can be judged.
        blocked(NEWHUB_SERVES, f"groupInfo for a participant at the new hub answered HTTP {reply.status}, not 200")
    response = GroupInfoResponse.decode(reply.body)
    if response.status != GroupInfoCode.success:
        return response, None
    try:
        return response, open_group_info_response(response, hpke_priv)
    except CryptoError as exc:
        # The signature verified (it is checked first): the ciphertext is not for this requester, a core
        # rule this check needs but does not judge.
        blocked(ENCRYPTED_TO_REQUESTER, f"the new hub's GroupInfoResponse does not open with the requester's key: {exc}")
    except Exception as exc:  # noqa: BLE001 - a bad signature is the SUT's, judged by the caller
        w.recorder.note(f"the GroupInfoResponse does not open: {type(exc).__name__}: {exc}")
        return response, False


@pytest.mark.usefixtures("sut")
@pytest.mark.role("hub")
@pytest.mark.feature("hubTransfer")
@pytest.mark.requirements(NEWHUB_HUB_SENDER, STATE_PRESERVED, NO_REINIT, ROOMID_UNCHANGED)
@pytest.mark.operations()
def test_new_hub_groupinfo_continues_the_room(world_factory, recorder):
    """After the handoff, the SUT's GroupInfoResponse for the room is signed with, and names as hub_sender, the
    new_hub_sender of its acceptance; it carries the unchanged room ID, group ID and epoch of the cut-over, and
    the participant list, roles and policy components of the cut-over epoch as committed through the old hub."""
    w = world_factory()
    _moved(w)
    hub = w.hub()
    acceptance = w.acceptance()
    bob = w.member("bob")
    if bob.epoch < hub.epoch:
        with _precondition("bob (a reference member) to process the cut-over"):
            bob = w.poll(lambda: (m := w.member("bob")).epoch >= hub.epoch and m, what="bob to process the cut-over")
    response, opened = _group_info(w, bob)
    recorder.note(f"groupInfo from the new hub: {response.status.name}")
    if response.status != GroupInfoCode.success:
        blocked(NEWHUB_SERVES, f"groupInfo for a participant at the new hub was answered {response.status.name}")
    room_id_kept = bytes(response.room_id) == w.room.encode()
    if not room_id_kept:
        miss(ROOMID_UNCHANGED, f"the new hub's GroupInfoResponse names room {bytes(response.room_id)!r}, not {w.room!r}")
    expected_sender = acceptance.content.new_hub_sender
    sender_kept = response.hub_sender.encode() == expected_sender.encode()
    if not sender_kept:
        miss(NEWHUB_HUB_SENDER, f"the GroupInfoResponse's hub_sender (credential "
             f"{sender_domain(response.hub_sender)!r}) is not the new_hub_sender of the SUT's acceptance")
    if opened is False:
        # Nothing of the GroupInfo can be read: the rest of the check stops here.
        fail("the new hub's GroupInfoResponse does not verify with its hub_sender key (or does not decrypt)",
             requirement=NEWHUB_HUB_SENDER)
    if sender_kept:
        observed(NEWHUB_HUB_SENDER, f"the GroupInfoResponse names and verifies with the acceptance's "
                 f"new_hub_sender ({sender_domain(expected_sender)})")
    info = opened.groupInfo
    context = info.group_context
    recorder.note(f"GroupInfo: epoch {context.epoch}, group_id {bytes(context.group_id).hex()[:16]}; "
                  f"cut-over epoch {hub.epoch}")
    group_id_kept = bytes(context.group_id) == bytes(hub.group_id)
    if not group_id_kept:
        miss(NO_REINIT, "the new hub's GroupInfo has another group_id than the room had at the old hub")
        miss(ROOMID_UNCHANGED, "the new hub's GroupInfo has another MLS group_id than the room had at the old hub")
    elif context.epoch != hub.epoch:
        miss(NO_REINIT, f"the new hub's GroupInfo is of epoch {context.epoch}; the cut-over epoch is {hub.epoch} and "
             "no commit was sequenced since")
    else:
        observed(NO_REINIT, f"GroupInfo in the same group at the cut-over epoch {hub.epoch}")
    served = {c.component_id: bytes(c.data) for c in _app_data(info)}
    committed = dict(hub.view.app_data())
    data = read_hub_data({MIMI_HUB_COMPONENT_ID: served[MIMI_HUB_COMPONENT_ID]}, w.room) \
        if MIMI_HUB_COMPONENT_ID in served else None
    if data is None or bytes(data.room_id.uri) != w.room.encode():
        miss(ROOMID_UNCHANGED, "the new hub's GroupInfo has no mimi_hub component with the unchanged room_id")
    elif room_id_kept and group_id_kept:
        observed(ROOMID_UNCHANGED, "GroupInfoResponse room_id, mimi_hub room_id and MLS group_id unchanged")
    differing = sorted(f"0x{cid:04x}" for cid in set(served) | set(committed)
                       if cid != MIMI_HUB_COMPONENT_ID and served.get(cid) != committed.get(cid))
    recorder.note(f"components compared: {sorted(f'0x{c:04x}' for c in committed)}; differing: {differing}")
    expect(STATE_PRESERVED, not differing,
           f"the new hub's GroupInfo for the cut-over epoch differs from the committed state in component(s) "
           f"{differing} (participant list, roles, policy)",
           evidence=f"{len(committed) - (MIMI_HUB_COMPONENT_ID in committed)} component(s) besides mimi_hub equal "
           "to the committed cut-over epoch")


def _app_data(group_info):
    from reference_peer.mls.group import get_extension

    data = get_extension(list(group_info.group_context.extensions), ExtensionType.app_data_dictionary)
    return [] if data is None else AppDataDictionary.decode(data).component_data


@pytest.mark.usefixtures("sut")
@pytest.mark.role("hub")
@pytest.mark.feature("hubTransfer")
@pytest.mark.requirements(NEWHUB_SERVES)
@pytest.mark.operations()
def test_new_hub_accepts_and_sequences_the_room(world_factory, recorder):
    """After the handoff, the SUT accepts and fans out the room's messages and commits under the unchanged room
    ID (whose authority is hub.ref.test): a follower member's message, the old hub's own user's message, and a
    commit removing a member; and it answers a participant's groupInfo for the room with a GroupInfoResponse of
    status success (the requirement names "update, submitMessage and groupInfo requests")."""
    w = world_factory(members=("bob", "carol", "dave"))
    _moved(w)
    bob, carol, dave = (w.members[n] for n in ("bob", "carol", "dave"))
    asking = w.member("bob")
    _, hpke_pub = cipher_suite(asking.suite_id).generate_hpke_key_pair()
    reply = w.call("groupInfo", asking.group_info_request(hpke_pub).encode())
    answered = f"HTTP {reply.status}"
    if reply.status == 200:
        try:
            answered = GroupInfoResponse.decode(reply.body).status.name
        except Exception as exc:  # noqa: BLE001 - an undecodable answer serves nothing: reported below
            answered = f"HTTP 200 with no GroupInfoResponse ({type(exc).__name__})"
    recorder.note(f"bob's groupInfo at the new hub after the handoff: {answered}")
    if answered != GroupInfoCode.success.name:
        fail(f"the new hub answered a participant's groupInfo for the room {answered}, not a GroupInfoResponse of "
             "status success", requirement=NEWHUB_SERVES)
    sent = w.ref_follower.send(w.room, bob.client, b"from bob via the new hub")
    if sent.get("outcome") != "accepted":
        fail(f"the new hub did not accept a participant's message for the room: {sent}", requirement=NEWHUB_SERVES)
    w.ref_follower.wait_received(carol.client, b"from bob via the new hub", room=w.room)
    sent = w.ref_hub.send(w.room, w.admin.client, b"from the old hub's user")
    if sent.get("outcome") != "accepted":
        fail(f"the new hub did not accept a message of the old hub's user: {sent}", requirement=NEWHUB_SERVES)
    w.ref_follower.wait_received(carol.client, b"from the old hub's user", room=w.room)
    removed = w.ref_hub.remove(w.room, w.admin, dave)
    recorder.note(f"the admin removes dave (a commit sequenced by the new hub): {removed}")
    if removed.get("outcome") != "accepted":
        fail(f"the new hub did not accept a valid commit for the room: {removed}", requirement=NEWHUB_SERVES)
    w.poll(lambda: dave.uri not in w.ref_follower.participants(w.room),
           what="the removal to reach the follower through the new hub")
    observed(NEWHUB_SERVES, "after the handoff: a participant's groupInfo answered success; a follower member's "
             "message, the old hub's user's message and a removal commit accepted and fanned out")


# A well-formed URI that is not -06's provider form (mimi://<domain>), naming no MIMI provider.
NOT_A_PROVIDER = "https://nowhere.invalid/"


def _fanouts_sent_to_sut(w) -> list[FanoutMessage]:
    """The FanoutMessages the reference hub delivered (201) to the SUT for the room, in order (its own bodies)."""
    out = []
    for item in w.ref_hub.traffic(endpoint="notify", direction="out", peer=w.domain):
        if item.value == w.room and item.status == 201:
            out.extend(decode_fanout_sequence_tolerant(item.request, scope=MLS10).value)
    return out


def _expect_503(w, when: str, recorder) -> None:
    """A follower member's submitMessage for the room at the SUT, between the cut-over and an accepted handoff:
    503 with Retry-After (EXT-HUBXFER-NEWHUB-503), else a miss."""
    reply = w.call("submitMessage", w.member("bob").send(f"submit {when}".encode()))
    retry_after = reply.headers.get("retry-after")
    recorder.note(f"submitMessage {when}: HTTP {reply.status}, Retry-After {retry_after!r}")
    if reply.status != 503 or not retry_after:
        miss(NEWHUB_503, f"{when}, the new hub answered submitMessage for the room HTTP {reply.status}"
             f"{' with' if retry_after else ' without'} Retry-After, not 503 with Retry-After")
    else:
        observed(NEWHUB_503, f"{when}: submitMessage 503 with Retry-After")


@pytest.mark.usefixtures("sut")
@pytest.mark.role("hub")
@pytest.mark.feature("hubTransfer")
@pytest.mark.requirements(NEWHUB_SERVES, NEWHUB_503)
@pytest.mark.operations()
def test_new_hub_survives_a_handoff_entry_for_no_provider(world_factory, recorder):
    """A handoff (otherwise valid, from the previous hub) whose ``undelivered`` holds an entry with a destination
    that is not a provider URI (``https://nowhere.invalid/``). hub-transfer.md §6.4 types the field
    "IdentifierUri destination; /* provider URI of a follower */" and says no more about another value, so the
    SUT may skip the entry and accept the handoff, or refuse the handoff with any HubTransferCode (§3.3: "Any
    message that can be decoded is answered with HTTP 200 and an in-body code"); either way the room is served
    afterwards (EXT-HUBXFER-NEWHUB-SERVES: "After accepting the handoff, the new hub MUST accept and sequence the
    room's update, submitMessage and groupInfo requests"). After an acceptance the room is served at once. Before
    the handoff, and after a refusal (no handoff accepted yet), a submitMessage for the room is answered 503 with
    Retry-After (§6.4: "From the moment B observes the cut-over commit until it has accepted a handoff, it
    answers room requests with **503** and a `Retry-After` header", EXT-HUBXFER-NEWHUB-503): a refusal takes
    nothing over. After a refusal the room is served once the reference hub's own handoff is accepted. Not
    judged: where the SUT sends the entry."""
    w = world_factory(members=("bob", "carol"))
    outgoing = _held_at_cutover(w)
    hub = w.hub()
    transfer_id = bytes.fromhex(outgoing["transferId"])
    generation, epoch = hub.transfer.cutover_generation, hub.transfer.cutover_epoch
    fanouts = _fanouts_sent_to_sut(w)
    if not fanouts:
        raise HarnessError("the reference hub's traffic shows no FanoutMessage delivered to the SUT for the room")
    entry = UndeliveredFanout(destination=IdentifierUri(uri=NOT_A_PROVIDER.encode()), messages=[fanouts[-1]])
    _expect_503(w, "before any handoff", recorder)
    answer = w.hub_transfer(w.handoff(transfer_id, generation, epoch, hub, undelivered=[entry]),
                            requirement=NEWHUB_SERVES)
    recorder.note(f"handoff with an undelivered entry for {NOT_A_PROVIDER}: {_code(answer)}")
    if answer.code == HubTransferCode.accepted:
        how = "the handoff with an entry for no provider accepted"
    else:
        how = f"the handoff with an entry for no provider refused {answer.code.name}, the real one accepted"
        # Refused, the handoff took nothing over: the room's requests are still answered 503 (NEWHUB-503).
        _expect_503(w, f"after refusing the handoff ({answer.code.name}), with no handoff accepted", recorder)
        w.ref_hub.hold_transfer(hold_handoff=False)
        with judging(NEWHUB_SERVES):
            w.wait_handed_off()
    bob, carol = w.members["bob"], w.members["carol"]
    text = b"after a handoff entry for no provider"
    sent = w.ref_follower.send(w.room, bob.client, text)
    recorder.note(f"bob's message through the new hub: {sent}")
    if sent.get("outcome") != "accepted":
        fail(f"after {how}, the new hub did not accept a participant's message for the room: {sent}",
             requirement=NEWHUB_SERVES)
    with judging(NEWHUB_SERVES):
        w.ref_follower.wait_received(carol.client, text, room=w.room)
    observed(NEWHUB_SERVES, f"{how}; then a member's message accepted and fanned out by the new hub")


@pytest.mark.usefixtures("sut")
@pytest.mark.role("hub")
@pytest.mark.feature("hubTransfer")
@pytest.mark.requirements(OLD_SENDER_REMOVED)
@pytest.mark.operations()
def test_new_hub_removes_the_old_hub_from_external_senders(world_factory, ref_follower, recorder):
    """After the handoff, the SUT fans out a GroupContextExtensions proposal whose external_senders lacks the old
    hub; it refuses a commit of the cut-over epoch that omits it, and the next epoch no longer lists the old hub."""
    w = world_factory(members=("bob", "carol"))
    mark = ref_follower.traffic_mark()
    _moved(w)
    hub = w.hub()

    def gce_proposals():
        found = []
        for _, fanout in _notify_fanouts(ref_follower, mark, w.domain, w.room):
            for msg in [fanout.message, *(fanout.moreProposals or [])]:
                if msg.wire_format != WireFormat.mls_public_message:
                    continue
                content = msg.public_message.content
                if content.content_type == ContentType.proposal and content.epoch == hub.epoch \
                        and content.proposal.proposal_type == ProposalType.group_context_extensions:
                    found.append(content.proposal)
        return found

    proposals = w.poll(gce_proposals, what="the new hub's GroupContextExtensions proposal at the follower")
    remaining = []
    for proposal in proposals:
        from reference_peer.mls.group import _decode_ext, _external_senders_codec, get_extension

        data = get_extension(list(proposal.group_context_extensions.extensions), ExtensionType.external_senders)
        senders = [] if data is None else list(_decode_ext(_external_senders_codec(), data, "external_senders"))
        remaining.append([sender_domain(s) for s in senders])
    recorder.note(f"external_senders proposed by the new hub: {remaining}")
    if not any(HUB_DOMAIN not in r for r in remaining):
        fail(f"no proposal of the new hub removes {HUB_DOMAIN} from external_senders (proposed: {remaining})",
             requirement=OLD_SENDER_REMOVED)
    bob = w.poll(lambda: (m := w.member("bob")).epoch >= hub.epoch and m.group.proposal_cache and m,
                 what="bob to cache the new hub's proposal")
    omitting = bob.commit([], include_cached=False)
    reply = w.call("update", omitting.request)
    code = UpdateRoomResponse.decode(reply.body).responseCode if reply.status == 200 else None
    recorder.note(f"a commit omitting the proposal: HTTP {reply.status} {getattr(code, 'name', '')}")
    if code == UpdateResponseCode.success:
        fail("the new hub accepted a commit in the cut-over epoch that omits its proposal removing the old hub "
             "from external_senders", requirement=OLD_SENDER_REMOVED)
    removed = w.ref_hub.remove(w.room, w.admin, w.members["carol"])
    if removed.get("outcome") != "accepted":
        raise HarnessError(f"the commit of the next epoch (removing carol) was not accepted: {removed}")
    info = w.poll(lambda: (r := ref_follower.room(w.room)) is not None and r["epoch"] > hub.epoch and r,
                  what="the follower to process the epoch after the cut-over")
    recorder.note(f"external senders at epoch {info['epoch']}: {info['externalSenders']}")
    expect(OLD_SENDER_REMOVED, HUB_DOMAIN not in info["externalSenders"],
           f"the epoch after the cut-over still lists the old hub {HUB_DOMAIN} in external_senders",
           evidence=f"proposal without {HUB_DOMAIN} fanned out, a commit omitting it refused, epoch {info['epoch']} "
           f"lists {info['externalSenders']}")
    ambiguous_if_read_otherwise(OLD_SENDER_REMOVED, "the GroupContextExtensions proposal the new hub fanned out")


# --------------------------------------------------------------------------------------------
# the handed-over backlog (§9)


@pytest.mark.usefixtures("sut")
@pytest.mark.role("hub")
@pytest.mark.feature("hubTransfer")
@pytest.mark.requirements(HANDOFF_BYTES_KEPT, INFLIGHT_ORDER, TIMESTAMPS_MONOTONIC)
@pytest.mark.operations()
def test_new_hub_delivers_the_handed_over_backlog_first(world_factory, ref_follower, recorder):
    """The reference follower holds back its 201 (503, Retry-After 60) so that messages the old hub accepted
    before the cut-over are handed over undelivered. The SUT delivers them to the follower byte-identical, in
    their handed-over order, before anything it sequences itself, and stamps its own messages no lower than the
    handoff's last_accepted_timestamp."""
    w = world_factory(members=("bob", "carol"))
    w.ref_hub.hold_transfer(autocommit=["begin"], hold_handoff=True)
    w.start()
    with _precondition("the transfer to reach the cut-over with a backlog for the follower, and the handoff"):
        w.poll(lambda: w.outgoing().get("phase") == "cutover-proposed",
               what="the cut-over proposal (held uncommitted)")
        w.sync()
        mark = ref_follower.traffic_mark()
        hub_mark = w.ref_hub.traffic_mark()
        ref_follower.refuse_notifies([503], retry_after="60")
        w.ref_hub.send_ok(w.room, w.admin.client, b"backlog 1")
        w.poll(lambda: any(t.value == w.room and t.status == 503 for t in w.ref_hub.traffic(
            hub_mark, endpoint="notify", direction="out", peer=FOLLOWER_DOMAIN)),
            what="the follower to refuse the old hub's /notify (backlog)")
        w.ref_hub.hold_transfer(autocommit=AUTOCOMMIT_ALL)
        w.ref_hub.send_ok(w.room, w.admin.client, b"backlog 2")  # the admin's client then commits the cut-over
        outgoing = w.wait_moved()
        w.poll(lambda: w.cutover_notified(outgoing["cutoverEpoch"]),
               what="the SUT to answer 201 to the cut-over commit")
        w.ref_hub.hold_transfer(hold_handoff=False)
        outgoing = w.wait_handed_off()
    handoff = HubTransferMessage.decode(bytes.fromhex(outgoing["handoff"])).handoff.content
    backlog = [m.encode() for entry in handoff.undelivered
               if domain_of_uri(bytes(entry.destination.uri)) == FOLLOWER_DOMAIN for m in entry.messages]
    recorder.note(f"handed over for {FOLLOWER_DOMAIN}: {len(backlog)} FanoutMessage(s); last_accepted_timestamp "
                  f"{handoff.last_accepted_timestamp}")
    if not backlog:
        raise HarnessError("the reference hub handed over no undelivered message for the follower; the check "
                           "cannot judge the backlog")
    # The backlog holds the cut-over commit, without which the follower cannot send through the new hub: wait for
    # the handed-over FanoutMessages first, so that a new hub that never delivers them is a miss, not a set-up
    # failure of the message below.
    try:
        w.poll(lambda: set(backlog) <= {d for d, _ in _notify_fanouts(ref_follower, mark, w.domain, w.room)},
               what="the handed-over FanoutMessages to reach the follower from the new hub")
    except PollTimeout:
        received = {d for d, _ in _notify_fanouts(ref_follower, mark, w.domain, w.room)}
        missing = [i for i, m in enumerate(backlog) if m not in received]
        ambiguous_if_read_otherwise(HANDOFF_BYTES_KEPT, f"handed-over FanoutMessage(s) {missing} (of {len(backlog)}) "
                                    "not found byte-identical (as written) at the follower")
        fail(f"handed-over FanoutMessage(s) {missing} (of {len(backlog)}) never reached the follower byte-identical "
             "from the new hub", requirement=HANDOFF_BYTES_KEPT)
    w.send_through_new_hub(w.ref_follower, w.members["bob"].client, b"sequenced by the new hub")
    # The new hub's own message reaching the follower: fan-out is ordered per destination, so whatever the new
    # hub was to deliver there before it has arrived too. (A new hub that never delivers at all leaves the check
    # without a delivery to judge.)
    with _precondition("a message sequenced by the new hub to reach the follower"):
        w.ref_follower.wait_received(w.members["carol"].client, b"sequenced by the new hub", room=w.room)
    delivered = _notify_fanouts(ref_follower, mark, w.domain, w.room)
    recorder.note(f"the follower received {len(delivered)} FanoutMessage(s) from the new hub")
    kept = set(backlog)
    order = [d for d, _ in delivered]
    missing = [i for i, m in enumerate(backlog) if m not in order]
    if missing:
        # Read in another reading (AMB-FANOUT-SELECT's splits a handshake's carried proposals off), the bytes as
        # written are that reading's, so not being byte-identical is no miss.
        ambiguous_if_read_otherwise(HANDOFF_BYTES_KEPT, f"handed-over FanoutMessage(s) {missing} (of {len(backlog)}) "
                                    "not found byte-identical (as written) at the follower")
        miss(HANDOFF_BYTES_KEPT, f"handed-over FanoutMessage(s) {missing} (of {len(backlog)}) never reached the "
             "follower byte-identical from the new hub")
        not_applicable("the handed-over FanoutMessages cannot be recognised at the follower (not byte-identical), "
                       "so their order cannot be judged", requirement=INFLIGHT_ORDER)
    else:
        observed(HANDOFF_BYTES_KEPT, f"{len(backlog)} handed-over FanoutMessage(s) delivered byte-identical")
        if order[:len(backlog)] != backlog:
            positions = [order.index(m) for m in backlog]
            own = [i for i, (d, _) in enumerate(delivered) if d not in kept]
            miss(INFLIGHT_ORDER, f"the handed-over FanoutMessages arrived at positions {positions} and the new hub's "
                 f"own at {own}: not in handed-over order before the new hub's own fan-out")
        else:
            observed(INFLIGHT_ORDER, f"the {len(backlog)} handed-over FanoutMessage(s) first, in handed-over order")
    own_stamps = [f.timestamp for d, f in delivered if d not in kept]
    low = [t for t in own_stamps if t < handoff.last_accepted_timestamp]
    if low:
        miss(TIMESTAMPS_MONOTONIC, f"the new hub fanned out messages stamped {low}, lower than the handoff's "
             f"last_accepted_timestamp {handoff.last_accepted_timestamp}")
    elif own_stamps:
        observed(TIMESTAMPS_MONOTONIC, f"{len(own_stamps)} message(s) of the new hub stamped >= last_accepted_timestamp "
                 f"{handoff.last_accepted_timestamp}")
    ambiguous_if_read_otherwise(HANDOFF_BYTES_KEPT, "the handed-over FanoutMessages, compared as written")


# --------------------------------------------------------------------------------------------
# removals made before the cut-over (§6.4)


@pytest.mark.usefixtures("sut")
@pytest.mark.role("hub")
@pytest.mark.feature("hubTransfer")
@pytest.mark.requirements(REMOVAL_PRESERVED)
@pytest.mark.operations()
def test_new_hub_keeps_users_removed_before_the_transfer_out(world_factory, recorder):
    """bob is removed at the old hub before the transfer. At the SUT as new hub, bob's message (from his last
    state, stamped with the current epoch) is refused, and an admin's commit adding a client of bob without a
    participant-list add is refused."""
    w = world_factory(members=("bob", "carol"), admins=("carol",))
    bob_state = w.member("bob")
    removed = w.ref_hub.remove(w.room, w.admin, w.members["bob"])
    if removed.get("outcome") != "accepted":
        raise HarnessError(f"the removal of bob at the reference hub was not accepted: {removed}")
    _moved(w)
    hub = w.hub()
    w.settle(w.members["carol"].client)
    request = SubmitMessageRequest.decode(bob_state.send(b"from removed bob"))
    message = request.appMessage
    current = request.replace(appMessage=message.replace(private_message=message.private_message.replace(epoch=hub.epoch)))
    reply = w.call("submitMessage", current.encode())
    code = SubmitMessageResponse.decode(reply.body).statusCode if reply.status == 200 else None
    recorder.note(f"removed bob's message at the new hub: HTTP {reply.status} {getattr(code, 'name', '')}")
    if code == SubmitResponseCode.accepted:
        fail("the new hub accepted a message from a user removed before the transfer", requirement=REMOVAL_PRESERVED)
    carol = w.poll(lambda: (m := w.member("carol")).epoch >= hub.epoch and m,
                   what="carol (an admin) to process the cut-over epoch")
    readd = carol.commit([add_proposal(bob_state.make_key_package().key_package)], include_cached=True)
    reply = w.call("update", readd.request)
    code = UpdateRoomResponse.decode(reply.body).responseCode if reply.status == 200 else None
    recorder.note(f"carol's commit adding a client of bob without a participant-list add: HTTP {reply.status} "
                  f"{getattr(code, 'name', '')}")
    expect(REMOVAL_PRESERVED, code != UpdateResponseCode.success,
           "the new hub accepted a commit re-adding a client of a user removed before the transfer without a "
           "participant-list add",
           evidence="the removed user's message and a commit re-adding his client without a participant-list add: "
           "both refused")


# --------------------------------------------------------------------------------------------
# Welcome routes handed over (§6.4)


def _claim_through_old_hub(w, state, target):
    """A KeyPackage of ``target`` claimed through the reference hub's keyMaterial relay by the member ``state``
    (as follower.ref.test): the old hub records its KeyPackageRef -> provider route."""
    from reference_peer.mls.leaf import key_package_ref
    from reference_peer.wire.mimi import KeyMaterialRequest, KeyMaterialResponse, RequiredCapabilities

    req = KeyMaterialRequest(
        protocol=Protocol.mls10, requestingUser=IdentifierUri(uri=state.user_uri.encode()),
        targetUser=IdentifierUri(uri=target.encode()), roomId=IdentifierUri(uri=w.room.encode()),
        acceptableCiphersuites=[state.suite_id],
        requiredCapabilities=RequiredCapabilities(
            extension_types=[int(ExtensionType.app_data_dictionary)],
            proposal_types=[int(ProposalType.app_data_update), int(ProposalType.self_remove)], credential_types=[]),
        requesterSignatureKey=state.signature_pub, requesterCredential=state.credential,
        key_material_request_signature=b"",
    )
    suite = cipher_suite(state.suite_id)
    req = req.replace(key_material_request_signature=suite.sign_with_label(
        state.signature_priv, "KeyMaterialRequestTBS", req.tbs().encode()))
    session = w.mimi_as(FOLLOWER_DOMAIN)
    reply = session.run(session.client.call(urlsplit(w.ref_hub_url).netloc, "keyMaterial", target, req.encode()))
    if reply.status != 200:
        raise HarnessError(f"the reference hub's keyMaterial relay answered HTTP {reply.status}")
    response = KeyMaterialResponse.decode(reply.body)
    packages = [c.keyPackage for c in response.clients if c.keyPackage is not None]
    if not packages:
        raise HarnessError(f"the reference hub relayed no KeyPackage for {target}: {response.userStatus.name}")
    return packages[0], key_package_ref(suite, packages[0])


@pytest.mark.usefixtures("sut")
@pytest.mark.role("hub")
@pytest.mark.feature("hubTransfer")
@pytest.mark.requirements(NEWHUB_ROUTES)
@pytest.mark.operations()
def test_new_hub_routes_welcomes_of_handed_over_key_packages(world_factory, ref_follower, recorder):
    """Before the transfer, an admin at the follower claims erin's KeyPackage through the old hub (which records
    its route). After the handoff, the admin's commit adding erin with it is accepted by the SUT, which sends the
    Welcome to follower.ref.test, the provider named in the handed-over route."""
    w = world_factory(members=("bob", "pat"), admins=("pat",))
    erin = ref_follower.create_user("erin")
    pat = w.member("pat")
    key_package, ref = _claim_through_old_hub(w, pat, erin.uri)
    recorder.note(f"claimed erin's KeyPackage {ref.hex()[:16]} through {HUB_DOMAIN}")
    mark = ref_follower.traffic_mark()
    outgoing = _moved(w)
    handoff = HubTransferMessage.decode(bytes.fromhex(outgoing["handoff"])).handoff.content
    routes = {bytes(r.kp_ref): domain_of_uri(bytes(r.provider.uri)) for r in handoff.routes}
    if routes.get(ref) != FOLLOWER_DOMAIN:
        raise HarnessError(f"the reference hub did not hand over the route of erin's KeyPackage: {routes}")
    hub = w.hub()
    w.settle(w.members["bob"].client)
    pat = w.poll(lambda: (m := w.member("pat")).epoch >= hub.epoch and m, what="pat to process the cut-over epoch")
    add = pat.add_users([key_package], [(erin.uri.encode(), 2)], include_cached=True)
    reply = w.call("update", add.request)
    code = UpdateRoomResponse.decode(reply.body).responseCode if reply.status == 200 else None
    recorder.note(f"pat's commit adding erin: HTTP {reply.status} {getattr(code, 'name', '')}")
    if code != UpdateResponseCode.success:
        fail(f"the new hub refused a commit adding a user with a KeyPackage claimed through the old hub (HTTP "
             f"{reply.status} {getattr(code, 'name', '')}), so the handed-over route was not used",
             requirement=NEWHUB_ROUTES)

    def welcome_seen() -> bool:
        for _, fanout in _notify_fanouts(ref_follower, mark, w.domain, w.room):
            msg = fanout.message
            if msg.wire_format == WireFormat.mls_welcome and ref in {bytes(s.new_member) for s in msg.welcome.secrets}:
                return True
        return False

    w.poll(welcome_seen, what=f"the Welcome for erin's KeyPackage at {FOLLOWER_DOMAIN} from the new hub")
    observed(NEWHUB_ROUTES, f"the Welcome for the handed-over KeyPackageRef {ref.hex()[:16]} sent to {FOLLOWER_DOMAIN}")
    ambiguous_if_read_otherwise(NEWHUB_ROUTES, "which /notify carried the Welcome")
