"""Faults of the removal area (checks: conformance/scenarios/test_removal.py)."""

from .registry import define

AREA = "removal"

REMOVE_USER_MISSES_A_CLIENT = define(
    "remove-user-misses-a-client",
    area=AREA,
    requirements=["POLICY-CAP-REMOVE-PARTICIPANT-NO-CLIENTS-LEFT", "PROTO-UPDATE-REMOVE-SIMULTANEOUS"],
    description="a client removing a user from the participant list proposes the Remove of only one of "
    "that user's clients (the others stay in the group)",
    departs=("follower.remove-user.remove-every-client",),
)
HUB_KEEPS_REMOVED_USERS_CLIENT = define(
    "hub-keeps-removed-users-client",
    area=AREA,
    requirements=["POLICY-CAP-REMOVE-PARTICIPANT-NO-CLIENTS-LEFT", "PROTO-UPDATE-REMOVE-SIMULTANEOUS",
                  "PROTO-REMOVAL-BLOCK-APP-RECEIVE"],
    description="the hub accepts a commit that leaves a client of a user who has no participant-list entry",
    departs=("hub.members.no-client-without-participant",),
)
ACCEPT_REMOVED_MEMBER_MESSAGE = define(
    "accept-removed-member-message",
    area=AREA,
    requirements=["PROTO-REMOVAL-BLOCK-APP-SEND", "POLICY-CAP-SEND-MESSAGE"],
    description="the hub accepts (and fans out) submitMessage from a removed or departing participant, or from one "
    "whose role lacks canSendMessage",
    departs=("hub.submit.refuse-inactive-sender",),
)
ACCEPT_REMOVED_MEMBER_COMMIT = define(
    "accept-removed-member-commit",
    area=AREA,
    requirements=["PROTO-REMOVAL-BLOCK-COMMITS"],
    description="the hub accepts a commit from a client whose user's removal it has accepted",
    departs=("hub.commit.refuse-removed-member",),
)
ACCEPT_REMOVED_MEMBER_PROPOSALS = define(
    "accept-removed-member-proposals",
    area=AREA,
    requirements=["PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS"],
    description="the hub accepts any proposal (e.g. an Update) from a removed or departing user's client",
    departs=("hub.proposal.only-removal-from-departing",),
)
DEPARTING_MAY_UPDATE_APP_DATA = define(
    "departing-may-update-app-data",
    area=AREA,
    requirements=["PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS"],
    description="the hub lets a removed or departing user's client propose an AppDataUpdate of any component "
    "(e.g. the room metadata), not only of the participant list",
    departs=("hub.proposal.departing-app-data-plist-only",),
)
REFUSE_SELF_REMOVE = define(
    "refuse-self-remove",
    area=AREA,
    requirements=["PROTO-REMOVAL-ONLY-REMOVE-PROPOSALS", "POLICY-CAP-REMOVE-SELF-ALL-CLIENTS"],
    description="the hub answers notAllowed to every valid SelfRemove proposal",
    departs=("hub.proposal.accept-self-remove",),
)
REFUSE_OWN_PLIST_LEAVE = define(
    "refuse-own-plist-leave",
    area=AREA,
    requirements=["PROTO-UPDATE-SELF-LEAVE-CACHED"],
    description="the hub answers notAllowed to a member's valid participant-list proposal removing its own user "
    "(the list half of a leave)",
    departs=("hub.plist.accept-authorized-member-change",),
)
NO_COMMIT_TO_REMOVED_PROVIDER = define(
    "no-commit-to-removed-provider",
    area=AREA,
    requirements=["PROTO-FANOUT-REMOVED-GETS-COMMIT"],
    description="the hub fans a commit out only to providers still active after it, so a removed user's "
    "provider never sees the commit removing its clients",
    departs=("hub.fanout.commit-to-removed-provider",),
)
LEAVE_KEEPS_OTHER_CLIENTS = define(
    "leave-keeps-other-clients",
    area=AREA,
    requirements=["POLICY-CAP-REMOVE-SELF-ALL-CLIENTS"],
    description="a leaving user's client proposes its SelfRemove and the participant-list removal but no "
    "Remove for the user's other clients",
    departs=("follower.leave.remove-other-clients",),
)
FORGET_CACHED_LEAVE = define(
    "forget-cached-leave",
    area=AREA,
    requirements=["PROTO-UPDATE-SELF-LEAVE-CACHED"],
    description="the hub accepts a commit that omits a leaving user's cached proposals",
    departs=("hub.proposal.require-cached-leave",),
)
FORGET_CACHED_LEAVE_PLIST_REMOVAL = define(
    "forget-cached-leave-plist-removal",
    area=AREA,
    requirements=["PROTO-UPDATE-SELF-LEAVE-CACHED"],
    description="the hub requires only a leaving user's SelfRemove in the next commit, not its cached "
    "participant-list removal",
    departs=("hub.proposal.require-every-leave-proposal",),
)
BAN_IS_PLAIN_REMOVAL = define(
    "ban-is-plain-removal",
    area=AREA,
    requirements=["POLICY-CAP-BAN-REMOVES-CLIENTS"],
    description="a ban takes the user off the participant list (role 0) instead of moving it to role 1 "
    "(banned), so nothing stops its re-addition",
    departs=("control.remove-participant.ban-to-banned-role",),
)
KEEP_DEPARTED_FOLLOWER_SENDER = define(
    "keep-departed-follower-sender",
    area=AREA,
    requirements=["PROTO-EXTSENDERS-REMOVE-LAST-FOLLOWER"],
    description="the hub keeps a follower provider's external_senders entry after its last participant left",
    departs=("hub.senders.remove-last-follower",),
)
