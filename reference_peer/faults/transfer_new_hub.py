"""Faults of the hub-transfer extension (docs/extensions/hub-transfer.md), new hub side.

Checks: conformance/scenarios/test_hub_transfer_new_hub.py (the SUT as target and new hub). Each fault
breaks one rule of the target or the new hub; the helpers below hold the faulty behaviour where it is
more than a skipped condition.
"""

from __future__ import annotations

import secrets

from .registry import define

AREA = "portability"

TARGET_PREPARE_FROM_ANY_PEER = define(
    "target-prepare-from-any-peer",
    area=AREA,
    requirements=["EXT-HUBXFER-SOURCE-BINDING", "EXT-HUBXFER-PREPARE-VERIFY"],
    description="the target accepts a prepare whose mTLS peer is not the hub named in its GroupInfo",
    departs=("transfer.prepare.from-hub",),
)
TARGET_SKIPS_PREPARE_SIGNATURE = define(
    "target-skips-prepare-signature",
    area=AREA,
    requirements=["EXT-HUBXFER-PREPARE-VERIFY"],
    description="the target does not verify the prepare's signature with the hub's external_senders key",
    departs=("transfer.prepare.verifies-signature",),
)
TARGET_SKIPS_REQUEST_CHECK = define(
    "target-skips-request-check",
    area=AREA,
    requirements=["EXT-HUBXFER-PREPARE-VERIFY"],
    description="the target accepts a prepare whose HubTransferRequest does not verify (e.g. an initiator "
    "without canTransferHub)",
    departs=("transfer.prepare.verifies-request",),
)
TARGET_FORGETS_TRANSFER_IDS = define(
    "target-forgets-transfer-ids",
    area=AREA,
    requirements=["EXT-HUBXFER-PREPARE-REPLAY"],
    description="the target accepts a prepare whose transfer_id it has seen before",
    departs=("transfer.prepare.refuses-replay",),
)
ACCEPTANCE_NAMES_OLD_HUB = define(
    "acceptance-names-old-hub",
    area=AREA,
    requirements=["EXT-HUBXFER-ACCEPT-SENDER"],
    description="the target's acceptance carries a new_hub_sender whose credential names the old hub, not "
    "the target (its own key)",
    hooks={"transfer.accept.names-target": lambda sender, old_hub: sender_naming(sender, old_hub)},
)
TARGET_SERVES_DURING_WINDOW = define(
    "target-serves-during-window",
    area=AREA,
    requirements=["EXT-HUBXFER-TARGET-REDIRECT"],
    description="during the transfer window the target handles room requests itself (404) instead of "
    "answering 421 with a HubRedirect naming the current hub",
    departs=("transfer.gate.target-redirects",),
)
NEWHUB_REDIRECTS_BEFORE_HANDOFF = define(
    "newhub-redirects-before-handoff",
    area=AREA,
    requirements=["EXT-HUBXFER-NEWHUB-503"],
    description="between the cut-over commit and the handoff the new hub keeps answering 421 naming the old "
    "hub instead of 503 with Retry-After",
    departs=("transfer.gate.newhub-503-before-handoff",),
)
TARGET_IGNORES_FANOUT = define(
    "target-ignores-fanout",
    area=AREA,
    requirements=["EXT-HUBXFER-NEWHUB-503"],
    description="the target answers the old hub's /notify 201 but keeps no public state from it (section 6.2), "
    "so it never observes the cut-over commit and answers 421 naming the old hub until the handoff",
    departs=("transfer.target.tracks-fanout",),
)
TARGET_IGNORES_ABORT = define(
    "target-ignores-abort",
    area=AREA,
    requirements=["EXT-HUBXFER-TARGET-EXPIRES"],
    description="the target answers a valid abort accepted but keeps the transfer open",
    departs=("transfer.target.discards-on-abort",),
)
TARGET_NEVER_EXPIRES = define(
    "target-never-expires",
    area=AREA,
    requirements=["EXT-HUBXFER-TARGET-EXPIRES"],
    description="the target keeps a transfer whose cut-over it never observed past not_after",
    departs=("transfer.target.expires",),
)
TARGET_DECLINES_AGAINST_ITS_MANIFEST = define(
    "target-declines-against-its-manifest",
    area=AREA,
    requirements=["EXT-HUBXFER-DECLARED"],
    description="the target declines every prepare although its manifest's accepts_from admits the old hub",
    departs=("transfer.target.accepts-as-declared",),
)
TARGET_DISCARDS_BEFORE_NOT_AFTER = define(
    "target-discards-before-not-after",
    area=AREA,
    requirements=["EXT-HUBXFER-TARGET-EXPIRES"],
    description="the target keeps an accepted transfer with a not_after of 0 (the acceptance still signs the "
    "real one): it discards the transfer at once, long before its not_after",
    hooks={"transfer.target.keeps-until-not-after": lambda incoming: setattr(incoming, "not_after", 0)},
)
TARGET_IGNORES_TRANSFER_ID = define(
    "target-ignores-transfer-id",
    area=AREA,
    requirements=["EXT-HUBXFER-TARGET-EXPIRES", "EXT-HUBXFER-HANDOFF-VERIFY"],
    description="the target matches an abort or a handoff against the room's open transfer whatever transfer_id "
    "it names: an abort for another transfer discards the open one",
    hooks={"transfer.target.keeps-until-not-after": lambda incoming: _match_any_transfer_id(incoming)},
)
NEWHUB_REFUSES_VALID_HANDOFF = define(
    "newhub-refuses-valid-handoff",
    area=AREA,
    requirements=["EXT-HUBXFER-NEWHUB-ACCEPTS-HANDOFF"],
    description="the new hub answers wrongEpoch to a handoff that meets every condition of section 12, so the "
    "room it was committed as hub of is never taken over",
    hooks={"transfer.takeover.accepts-valid-handoff": lambda kind: _refusal(kind)},
)
NEWHUB_HANDOFF_FROM_ANY_PEER = define(
    "newhub-handoff-from-any-peer",
    area=AREA,
    requirements=["EXT-HUBXFER-SOURCE-BINDING", "EXT-HUBXFER-HANDOFF-VERIFY"],
    description="the new hub accepts a handoff whose mTLS peer is not the previous hub",
    departs=("transfer.takeover.from-old-hub",),
)
NEWHUB_SKIPS_HANDOFF_SIGNATURE = define(
    "newhub-skips-handoff-signature",
    area=AREA,
    requirements=["EXT-HUBXFER-HANDOFF-VERIFY"],
    description="the new hub does not verify the handoff's signature with the old hub's external_senders key",
    departs=("transfer.takeover.verifies-signature",),
)
NEWHUB_SKIPS_CUTOVER_MATCH = define(
    "newhub-skips-cutover-match",
    area=AREA,
    requirements=["EXT-HUBXFER-HANDOFF-VERIFY"],
    description="the new hub accepts a handoff whose generation does not match the committed cut-over "
    "component",
    departs=("transfer.takeover.matches-cutover",),
)
NEWHUB_RETAKES_REPLAYED_HANDOFF = define(
    "newhub-retakes-replayed-handoff",
    area=AREA,
    requirements=["EXT-HUBXFER-HANDOFF-REPLAY"],
    description="the new hub processes every handoff for a handed-over transfer as new (takes the room over "
    "again) instead of answering a repeat accepted without effect and a different one replayed",
    departs=("transfer.takeover.answers-replay",),
)
NEWHUB_REFUSES_FOREIGN_ROOM_SUBMITS = define(
    "newhub-refuses-foreign-room-submits",
    area=AREA,
    requirements=["EXT-HUBXFER-NEWHUB-SERVES"],
    description="the new hub answers notAllowed to submitMessage for a room it took over (its ID's authority "
    "is another domain)",
    departs=("transfer.new-hub.serve-submits",),
)
NEWHUB_SIGNS_WITH_OTHER_KEY = define(
    "newhub-signs-with-other-key",
    area=AREA,
    requirements=["EXT-HUBXFER-NEWHUB-HUB-SENDER"],
    description="the new hub signs the GroupInfoResponses of a room it took over with a key other than the "
    "new_hub_sender of its acceptance",
    hooks={"transfer.new-hub.sign-groupinfo-as-hub-sender":
           lambda room, response, domain: group_info_answer(room, response, domain)},
)
NEWHUB_ALTERS_ROLES = define(
    "newhub-alters-roles",
    area=AREA,
    requirements=["EXT-HUBXFER-STATE-PRESERVED"],
    description="the GroupInfo the new hub serves for the cut-over epoch carries a participant list with "
    "every role reset to 2",
    hooks={"transfer.takeover.keeps-roles": lambda group_info: served_group_info(group_info, reset_roles=True)},
)
NEWHUB_REINITS_GROUP = define(
    "newhub-reinits-group",
    area=AREA,
    requirements=["EXT-HUBXFER-NO-REINIT", "EXT-HUBXFER-ROOMID-UNCHANGED"],
    description="the GroupInfo the new hub serves is of a fresh group (new group ID, epoch 0), as after a "
    "ReInit",
    hooks={"transfer.takeover.keeps-group": lambda group_info: served_group_info(group_info, reinit=True)},
)
NEWHUB_KEEPS_OLD_SENDER = define(
    "newhub-keeps-old-sender",
    area=AREA,
    requirements=["EXT-HUBXFER-OLD-SENDER-REMOVED"],
    description="the new hub never proposes the removal of the old hub's external_senders entry",
    departs=("transfer.takeover.removes-old-sender",),
)
NEWHUB_REVERSES_BACKLOG = define(
    "newhub-reverses-backlog",
    area=AREA,
    requirements=["EXT-HUBXFER-INFLIGHT-ORDER"],
    description="the new hub delivers each destination's handed-over FanoutMessages in reverse order",
    hooks={"transfer.takeover.backlog-in-order": lambda messages: list(reversed(messages))},
)
NEWHUB_RESTAMPS_BACKLOG = define(
    "newhub-restamps-backlog",
    area=AREA,
    requirements=["EXT-HUBXFER-HANDOFF-BYTES-KEPT"],
    description="the new hub re-stamps the handed-over FanoutMessages with its own time (bytes changed)",
    hooks={"transfer.takeover.backlog-bytes-kept": lambda messages, now: [m.replace(timestamp=now) for m in messages]},
)
NEWHUB_CLOCK_BEHIND = define(
    "newhub-clock-behind",
    area=AREA,
    requirements=["EXT-HUBXFER-TIMESTAMPS-MONOTONIC"],
    description="for a room it took over, the new hub stamps with a clock 60 s behind and ignores the "
    "handoff's last_accepted_timestamp",
    hooks={"transfer.new-hub.stamp-not-before-handoff": lambda now: now - CLOCK_LAG_MS},  # the acceptance time
)
NEWHUB_MISROUTES_WELCOMES = define(
    "newhub-misroutes-welcomes",
    area=AREA,
    requirements=["EXT-HUBXFER-NEWHUB-ROUTES"],
    description="the new hub records the handed-over KeyPackageRef routes as the old hub's, so their "
    "Welcomes go to the old hub instead of the provider named in the route",
    departs=("transfer.takeover.keeps-routes",),
)
NEWHUB_QUEUES_TO_NON_PROVIDER = define(
    "newhub-queues-to-non-provider",
    area=AREA,
    requirements=["EXT-HUBXFER-NEWHUB-503"],
    description="the new hub does not skip a handed-over undelivered entry whose destination is not a provider "
    "URI: queueing it to no destination fails half-way through the take-over, so the handoff is refused "
    "(notAllowed) but the room is already hosted and served without an accepted handoff",
    departs=("transfer.takeover.skips-non-provider-destination",),
)
NEWHUB_FORGETS_REMOVALS = define(
    "newhub-forgets-removals",
    area=AREA,
    requirements=["EXT-HUBXFER-REMOVAL-PRESERVED"],
    description="in a room it took over, the new hub accepts submitMessage from users who are no longer "
    "participants (removed at or before the cut-over)",
    departs=("hub.submit.taken-over-keeps-removals",),
)

CLOCK_LAG_MS = 60_000


def sender_naming(sender, domain: str):
    """ACCEPTANCE_NAMES_OLD_HUB: ``sender`` (same key) with a basic credential naming ``domain``."""
    from ..mls import basic_credential

    return sender.replace(credential=basic_credential(f"mimi://{domain}".encode()))


def served_group_info(group_info, *, reinit: bool = False, reset_roles: bool = False):
    """The GroupInfo the faulty new hub serves: of a fresh group (``reinit``, NEWHUB_REINITS_GROUP), with
    every role reset (``reset_roles``, NEWHUB_ALTERS_ROLES)."""
    from ..mls.group import set_extension
    from ..room import participants as plist_mod
    from ..wire.mimi import COMPONENT_PARTICIPANT_LIST
    from ..wire.mls import AppDataDictionary, ExtensionType

    context = group_info.group_context
    if reinit:
        context = context.replace(group_id=secrets.token_bytes(16), epoch=0)
    if reset_roles:
        extensions = list(context.extensions)
        for ext in extensions:
            if ext.extension_type == ExtensionType.app_data_dictionary:
                dictionary = AppDataDictionary.decode(bytes(ext.extension_data))
                entries = []
                for entry in dictionary.component_data:
                    if entry.component_id == int(COMPONENT_PARTICIPANT_LIST):
                        plist = plist_mod.decode_list(bytes(entry.data))
                        entry = entry.replace(data=_reset_roles(plist).encode())
                    entries.append(entry)
                extensions = set_extension(extensions, ExtensionType.app_data_dictionary,
                                           AppDataDictionary(component_data=entries).encode())
                break
        context = context.replace(extensions=extensions)
    return group_info.replace(group_context=context)


class _AnyTransferId(bytes):
    """TARGET_IGNORES_TRANSFER_ID: a transfer_id equal to every other one (Python tries a subclass's reflected
    ``__ne__`` first, so the target's ``bytes(named) != incoming.transfer_id`` is False for any name)."""

    def __eq__(self, other):
        return isinstance(other, (bytes, bytearray, memoryview))

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = bytes.__hash__


def _match_any_transfer_id(incoming) -> None:
    incoming.transfer_id = _AnyTransferId(incoming.transfer_id)


def _reset_roles(plist):
    participants = [p.replace(role_index=2) for p in plist.participants]
    return plist.replace(participants=participants)


def group_info_answer(room, response, domain: str):
    """NEWHUB_SIGNS_WITH_OTHER_KEY: in a room it took over, the new hub's GroupInfoResponse signed with a fresh
    key (and naming it as hub_sender); None (unchanged) otherwise."""
    from ..mls import basic_credential, cipher_suite
    from ..wire.mls import ExternalSender

    if not room.min_timestamp or not response.signature:
        return None
    suite = cipher_suite(response.cipher_suite)
    priv, pub = suite.generate_signature_key_pair()
    sender = ExternalSender(signature_key=pub, credential=basic_credential(f"mimi://{domain}".encode()))
    response = response.replace(hub_sender=sender, signature=b"")
    return response.replace(signature=suite.sign_with_label(priv, "GroupInfoResponseTBS", response.tbs().encode()))


def _refusal(kind):
    from ..hub_transfer_common import response
    from ..wire.hub_transfer import HubTransferCode

    return response(kind, HubTransferCode.wrongEpoch, "the GroupInfo is not of the cut-over epoch")
