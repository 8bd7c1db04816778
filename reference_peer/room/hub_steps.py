"""The named steps of the hub's rules for one room (:mod:`reference_peer.overrides`): where a peer may be
built to behave otherwise. Each names the rule (the reference behaviour) and the requirement IDs it
enforces; :class:`~reference_peer.room.hub.HubRoom` asks its own ``overrides`` at each of them."""

from __future__ import annotations

from ..overrides import step

# -- update: proposals and commits ----------------------------------------------------------------------

REFUSE_SUPERSEDED_EPOCH_COMMIT = step(
    "hub.update.refuse-superseded-epoch-commit", "PROTO-UPDATE-WRONG-EPOCH",
    summary="a commit built on the epoch the previous accepted commit ended is refused (wrongEpoch); the hub "
    "keeps no earlier state to fork onto",
)
TAKE_UP_PUBLIC_HANDSHAKE = step(
    "hub.update.take-up-public-handshake", "PROTO-UPDATE-HANDSHAKE-FRAMING", "POLICY-CAP-ADD-PARTICIPANT-CLIENTS",
    "PROTO-UPDATE-SELF-LEAVE-CACHED",
    summary="a proposal or commit framed as a PublicMessage is taken up and judged by the room's rules (never "
    "refused for that framing), so a valid authorized add is accepted and a leave's proposals are cached (hook: "
    "the PublicMessage; a fault's hook raises to refuse it)",
)
ACCEPT_AUTHORIZED_ADD = step(
    "hub.commit.accept-authorized-add", "POLICY-CAP-ADD-PARTICIPANT-CLIENTS", "PROTO-FANOUT-WELCOME-ROUTING",
    summary="a valid commit by a canAddParticipant holder adding a user and its clients (with its Welcome) is "
    "accepted and its Welcome routed (hook: the room, the sender domain, the applied proposals; a fault's hook raises to refuse)",
)
ACCEPT_AUTHORIZED_PLIST_CHANGES = step(
    "hub.commit.accept-authorized-plist-changes", "PROTO-PLIST-CHANGES-AUTHORIZED-SEPARATELY",
    "POLICY-CAP-ADD-PARTICIPANT-CLIENTS",
    summary="a commit's participant-list AppDataUpdate whose changes are each authorized for its proposer is taken, so "
    "a canAddParticipant holder's addition of a user (and of its clients) is accepted (hook: the room and the "
    "update's changes; a fault's hook raises to refuse, or rewrites the changes in place)",
)
ADD_CLIENTS_WITH_ADDITION_ONLY = step(
    "hub.commit.add-clients-with-addition-only", "POLICY-CAP-ADD-PARTICIPANT-CLIENTS",
    summary="an Add of another user's client passes without the adder's capability check only when the same "
    "commit adds that user to the participant list (not when it changes the user's entry otherwise, e.g. a role)",
)
REFUSE_REMOVED_MEMBER_COMMIT = step(
    "hub.commit.refuse-removed-member", "PROTO-REMOVAL-BLOCK-COMMITS",
    summary="a commit by a client of a removed, departing or banned user is refused",
)
ONLY_REMOVAL_FROM_DEPARTING = step(
    "hub.proposal.only-removal-from-departing", "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS",
    summary="a removed or leaving user's clients may only propose their own user's removal (Remove, SelfRemove, "
    "the participant-list removal)",
)
DEPARTING_APP_DATA_PLIST_ONLY = step(
    "hub.proposal.departing-app-data-plist-only", "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS",
    summary="a removed or leaving user's AppDataUpdate passes the removal rule only for the participant list "
    "(its own removal, authorized change by change), never for another component",
)
BIND_LEAVER_WITHIN_BUNDLE = step(
    "hub.proposal.bind-leaver-within-bundle", "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS",
    summary="a user whose own participant-list removal comes earlier in the same UpdateRequest is bound by the "
    "removal rule for the bundle's later proposals (only its own removal may follow)",
)
ACCEPT_SELF_REMOVE = step(
    "hub.proposal.accept-self-remove", "PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS", "POLICY-CAP-REMOVE-SELF-ALL-CLIENTS",
    summary="a valid SelfRemove proposal is accepted",
)
ACCEPT_AUTHORIZED_MEMBER_PLIST_CHANGE = step(
    "hub.plist.accept-authorized-member-change", "PROTO-UPDATE-SELF-LEAVE-CACHED", "POLICY-CAP-ADD-PARTICIPANT-CLIENTS",
    summary="a member's participant-list change that the room policy authorizes is accepted, in a proposal or a "
    "commit: its own removal (a leave's, -06 §3.5, then cached) or an add by a canAddParticipant holder",
)
REQUIRE_CACHED_LEAVE = step(
    "hub.proposal.require-cached-leave", "PROTO-UPDATE-SELF-LEAVE-CACHED",
    summary="a leaving user's proposals (and every SelfRemove) are cached as required in the next commit",
)
REQUIRE_EVERY_LEAVE_PROPOSAL = step(
    "hub.proposal.require-every-leave-proposal", "PROTO-UPDATE-SELF-LEAVE-CACHED",
    summary="every cached proposal of a leaving user is required in the next commit, its participant-list "
    "removal as well as its SelfRemove",
)
ALLOW_OWN_CLIENT_REMOVAL = step(
    "hub.commit.allow-own-client-removal", "POLICY-CAP-REMOVE-OWN-CLIENT",
    summary="a participant whose role has canRemoveOwnClient may remove its own client (Remove or SelfRemove)",
)
OWN_CLIENT_REMOVAL_NEEDS_CAPABILITY = step(
    "hub.commit.own-client-removal-needs-capability", "POLICY-CAP-REMOVE-OWN-CLIENT",
    summary="a committed Remove of another client of the proposer's own user passes only when the proposer's role "
    "holds canRemoveOwnClient (or the user is leaving)",
)
COMMITTED_KICK_NEEDS_CAPABILITY = step(
    "hub.commit.kick-needs-capability", "POLICY-CAP-KICK-KEEPS-PARTICIPANT",
    summary="a committed Remove of another participant's client without a participant-list change passes only "
    "when the proposer's role holds canKick",
)
COMMITTED_OWN_ADD_NEEDS_CAPABILITY = step(
    "hub.commit.own-add-needs-capability", "POLICY-CAP-ADD-OWN-CLIENT",
    summary="an Add of a new client of the proposer's own user passes only when the proposer's role holds "
    "canAddOwnClient",
)
BASE_POLICY_NEEDS_MEMBERSHIP_STYLE = step(
    "hub.commit.base-policy-needs-membership-style", "POLICY-CAP-CHANGE-MEMBERSHIP-STYLE",
    summary="a base_room_policy AppDataUpdate is accepted only from a proposer whose role holds "
    "canChangeRoomMembershipStyle",
)
PROVIDER_PLIST_OWN_REMOVALS_ONLY = step(
    "hub.proposal.provider-plist-own-removals-only", "PROTO-PLIST-CHANGES-AUTHORIZED-SEPARATELY",
    summary="a follower provider's own participant-list change (as an external sender) passes only when it removes "
    "one of that provider's users",
)
PROVIDER_REMOVES_OWN_CLIENTS_ONLY = step(
    "hub.proposal.provider-removes-own-clients-only", "POLICY-CAP-KICK-KEEPS-PARTICIPANT",
    summary="a follower provider's own Remove proposal (as an external sender) passes only for a client of one of "
    "that provider's users",
)
PROPOSED_REMOVE_NEEDS_CAPABILITY = step(
    "hub.proposal.remove-needs-capability", "POLICY-CAP-KICK-KEEPS-PARTICIPANT", "POLICY-CAP-REMOVE-OWN-CLIENT",
    summary="a member's Remove proposal of another user's client needs canKick or canRemoveParticipant, of its "
    "own client canRemoveOwnClient or canRemoveSelf",
)
REQUIRE_ROLE_DEFINITIONS_CAPABILITY = step(
    "hub.commit.require-role-definitions-capability", "POLICY-CAP-CHANGE-ROLE-DEFINITIONS",
    summary="a roles_list AppDataUpdate is accepted only from a proposer whose role holds canChangeRoleDefinitions",
)
TAKE_COMMITTERS_GROUPINFO = step(
    "hub.commit.take-committers-groupinfo", "POLICY-OPS-COMMITTER-PROVIDES-GROUPINFO",
    "POLICY-CAP-ADD-PARTICIPANT-CLIENTS",
    summary="a commit's GroupInfo (full, or rebuilt from a PartialGroupInfo) of the epoch it starts, whose signature "
    "verifies, is taken, so a valid commit (an authorized add among them) is accepted (hook: the room and the "
    "GroupInfo; a fault's hook raises to refuse)",
)
PARTIAL_GROUPINFO_JOINER_SIGNS = step(
    "hub.commit.partial-groupinfo-joiner-signs", "PROTO-UPDATE-PARTIAL-GROUPINFO",
    summary="the GroupInfo rebuilt from an external commit's PartialGroupInfo names the joiner's new leaf as its "
    "signer (a member's commit: the sender's leaf) (hook: the new epoch's view -> the signature key of the leaf "
    "to name instead)",
)
PARENT_STRICT_SUBSET = step(
    "hub.commit.parent-strict-subset", "POLICY-BASE-PARENT-STRICT-SUBSET", "POLICY-CAP-ADD-PARTICIPANT-CLIENTS",
    summary="a user entering a parent-dependent room must be a participant of the parent room (and a participant of "
    "the parent that a canAddParticipant holder adds is admitted)",
)
NO_CLIENT_WITHOUT_PARTICIPANT = step(
    "hub.members.no-client-without-participant", "POLICY-CAP-REMOVE-PARTICIPANT-NO-CLIENTS-LEFT",
    "PROTO-UPDATE-REMOVE-SIMULTANEOUS", "PROTO-REMOVAL-BLOCK-APP-RECEIVE",
    summary="no client remains in the group whose user has no participant-list entry",
)
COMMIT_TO_TRANSFER_TARGET = step(
    "hub.fanout.commit-to-transfer-target", "EXT-HUBXFER-TARGET-FANOUT",
    summary="an accepted commit goes to a transfer's target from the acceptance to the handoff, the cut-over "
    "commit included (hook: the room and the commit's FanoutPlan; a fault's hook drops deliveries in place)",
)
ZERO_ACTIVE_ROLE_HAS_NO_CLIENTS = step(
    "hub.members.zero-active-role-has-no-clients", "POLICY-ROLE-MAX-ACTIVE-ZERO",
    summary="no client remains in the group whose user's role has maximum_active_participants_constraint 0, so a "
    "commit leaving one (a roles_list update setting it on an active role, an Add) is refused (hook: the RoomPolicy "
    "the members are judged by; a fault's hook rewrites its roles in place)",
)
SINGLE_DEVICE = step(
    "hub.members.single-device", "POLICY-BASE-SINGLE-DEVICE",
    summary="a room whose policy has multi_device false holds at most one client per user",
)
JUDGE_IN_ACCEPTED_LIST = step(
    "hub.proposal.judge-in-accepted-list", "PROTO-ROOMSTATE-APPLIED-ON-ACCEPT",
    summary="a proposal's participant-list changes are read and authorized in the list that the epoch's accepted, "
    "uncommitted proposals left (its indices included), not in the committed one",
)
SINGLE_DEVICE_ALLOWS_ONE = step(
    "hub.members.single-device-allows-one", "POLICY-BASE-SINGLE-DEVICE",
    summary="a room whose policy has multi_device false holds one client per user: only a second one is refused",
)
KEEP_HUB_IN_EXTERNAL_SENDERS = step(
    "hub.commit.keep-hub-in-external-senders", "PROTO-EXTSENDERS-HUB-CERT",
    summary="a commit whose GroupContextExtensions leave the hub out of external_senders is refused",
)
SENDER_REMOVAL_AFTER_LAST_FOLLOWER = step(
    "hub.senders.remove-last-follower", "PROTO-EXTSENDERS-REMOVE-LAST-FOLLOWER",
    summary="after a commit, the hub proposes removing the external_senders entry of a follower provider with no "
    "participant left",
)

# -- fan-out --------------------------------------------------------------------------------------------

STAMP_COMMIT_AT_ACCEPTANCE = step(
    "hub.fanout.stamp-commit-at-acceptance", "PROTO-FANOUT-ORDERED",
    summary="a commit's FanoutMessage carries the time the hub accepted it (hook: now -> the stamp)",
)
COMMIT_TO_REMOVED_PROVIDER = step(
    "hub.fanout.commit-to-removed-provider", "PROTO-FANOUT-REMOVED-GETS-COMMIT",
    summary="a commit goes to every provider that had clients before it, the removed users' providers included",
)
REGENERATE_AFTER_EXTERNAL_COMMIT = step(
    "hub.fanout.regenerate-after-external-commit", "PROTO-FANOUT-REGENERATE-AFTER-EXTERNAL-COMMIT",
    summary="after an external commit, the hub re-issues as its own proposals the pending leave proposals the "
    "commit could not carry (the leaver's Removes and participant-list removal), required in the next commit",
)
ROUTE_WELCOME_TO_JOINERS = step(
    "hub.fanout.route-welcome-to-joiners", "PROTO-FANOUT-WELCOME-ROUTING", "PROTO-KEYMAT-KPREF-HUB-PROVIDER",
    summary="a Welcome goes only to the providers of the KeyPackages it names",
)

# -- hub transfer (docs/extensions/hub-transfer.md) -----------------------------------------------------

CUTOVER_REQUIRES_PENDING = step(
    "hub.cutover.require-pending", "EXT-HUBXFER-CUTOVER-INCLUDES-PENDING", "EXT-HUBXFER-REMOVAL-PRESERVED",
    summary="while the cut-over is pending, every pending proposal is required in the cut-over commit",
)
ONLY_HUB_CHANGES_HUB_COMPONENT = step(
    "hub.mimi-hub.only-hub-sender", "EXT-HUBXFER-COMPONENT-SENDER",
    summary="only the hub's own external proposal changes the mimi_hub component",
)
NO_EXTERNAL_COMMIT_HUB_UPDATE = step(
    "hub.mimi-hub.no-external-commit-update", "EXT-HUBXFER-PUBLIC-COMMITS",
    summary="an external commit carrying a mimi_hub AppDataUpdate is refused",
)
WINDOW_NO_NEW_PROVIDERS = step(
    "hub.transfer-window.no-new-providers", "EXT-HUBXFER-WINDOW-NO-NEW-PROVIDERS",
    summary="during the transfer window no provider but the target gets its first participant",
)
WINDOW_SERVES_MESSAGES = step(
    "hub.transfer-window.serve-messages", "EXT-HUBXFER-WINDOW-NORMAL",
    summary="during the transfer window submitMessage is served as usual",
)
TAKEN_OVER_KEEPS_REMOVALS = step(
    "hub.submit.taken-over-keeps-removals", "EXT-HUBXFER-REMOVAL-PRESERVED",
    summary="in a room the hub took over, users removed at or before the cut-over are still refused",
)

# -- submitMessage --------------------------------------------------------------------------------------

REFUSE_INACTIVE_SENDER = step(
    "hub.submit.refuse-inactive-sender", "PROTO-SUBMIT-SENDER-ACTIVE-PARTICIPANT", "PROTO-REMOVAL-BLOCK-APP-SEND",
    "POLICY-CAP-SEND-MESSAGE",
    summary="an application message from a user who is not an active participant allowed to send is refused",
)
SUBMIT_APPLICATION_ONLY = step(
    "hub.submit.application-privatemessage-only", "PROTO-SUBMIT-PRIVATEMESSAGE-ONLY",
    summary="a submitMessage is taken only when its appMessage is a PrivateMessage of content type application (hook: "
    "the PrivateMessage or None; a fault's hook relabels it in place)",
)
REFUSE_STALE_EPOCH = step(
    "hub.submit.refuse-stale-epoch", "PROTO-SUBMIT-EPOCH-TOO-OLD",
    summary="an application message of an epoch older than the room's is refused (epochTooOld)",
)
REFUSE_FUTURE_EPOCH = step(
    "hub.submit.refuse-future-epoch", "PROTO-SUBMIT-FUTURE-EPOCH-NOT-ALLOWED",
    summary="an application message claiming an epoch after the room's is refused",
)
STAMP_MESSAGE_AT_ACCEPTANCE = step(
    "hub.submit.stamp-at-acceptance", "PROTO-FANOUT-TIMESTAMP-IS-ACCEPTANCE",
    summary="an application message's FanoutMessage carries its accepted_timestamp (hook: now -> the stamp)",
)
FANOUT_AS_ACCEPTED = step(
    "hub.submit.fanout-as-accepted", "PROTO-FRANK-SENDER-HIDDEN", "PROTO-FANOUT-ONLY-ACTIVE-PROVIDERS",
    "PROTO-FANOUT-TO-ACTIVE-PROVIDERS",
    summary="an accepted application message goes byte-identical, without its sender, to the providers with "
    "active participants only (hooks: (room, request, sender_domain, plan), changing the plan in place)",
)

# -- groupInfo ------------------------------------------------------------------------------------------

SERVE_NEW_DEVICE_GROUPINFO = step(
    "hub.groupinfo.serve-new-device", "PROTO-GROUPINFO-NEW-DEVICE-JOIN", "POLICY-CAP-ADD-OWN-CLIENT",
    summary="a new client of a participant with canAddOwnClient (not yet in the group) gets the GroupInfo",
)
EXTERNAL_JOIN_NEEDS_ADD_OWN_CLIENT = step(
    "hub.external-join.require-add-own-client", "POLICY-CAP-ADD-OWN-CLIENT",
    summary="a participant's new client whose role lacks canAddOwnClient gets no GroupInfo and its external "
    "commit is refused",
)
EXTERNAL_JOIN_REFUSES_DEPARTING_USER = step(
    "hub.external-join.refuse-departing-user", "PROTO-REMOVAL-BLOCK-COMMITS",
    summary="the external commit of a new client of a user whose removal or ban is accepted (committed or not) is "
    "refused: it is a Commit of one of that user's clients",
)
ACCEPT_EXTERNAL_JOIN = step(
    "hub.external-join.accept", "PROTO-GROUPINFO-NEW-DEVICE-JOIN", "POLICY-CAP-ADD-OWN-CLIENT",
    summary="a valid external commit by a new client of a participant whose role holds canAddOwnClient is accepted "
    "(hook: the room and the joiner's user; a fault's hook raises to refuse)",
)
ENCRYPT_TO_ROOM_CONTEXT = step(
    "hub.groupinfo.encrypt-to-room-context", "PROTO-GROUPINFO-ENCRYPTED-TO-REQUESTER",
    summary="the GroupInfo and tree are encrypted to the requester with the room id as EncryptWithLabel context",
)
