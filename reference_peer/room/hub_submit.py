"""POST /submitMessage (§5.4): an application PrivateMessage of the current epoch from an active participant.

A mixin of :class:`~reference_peer.room.hub.HubRoom`: methods only, every attribute lives on the room."""

from __future__ import annotations

from ..wire.codec import DecodeError, EncodeError
from ..wire.mimi import Protocol, SubmitMessageRequest, SubmitMessageResponse, SubmitResponseCode
from ..wire.mls import ContentType
from ..wire.room_policy import ROLE_INDEX_NON_PARTICIPANT
from .hub_records import FanoutPlan, submit_response
from .hub_steps import (
    REFUSE_FUTURE_EPOCH,
    REFUSE_INACTIVE_SENDER,
    REFUSE_STALE_EPOCH,
    SUBMIT_APPLICATION_ONLY,
    TAKEN_OVER_KEEPS_REMOVALS,
    WINDOW_SERVES_MESSAGES,
)
from .naming import domain_of_uri, user_of_uri


class SubmitRules:
    """POST /submitMessage."""

    def handle_submit(self, sender_domain: str, request: bytes, now: int) -> tuple[SubmitMessageResponse, FanoutPlan]:
        """POST /submitMessage: an application PrivateMessage of the current epoch from an active participant."""
        refused = submit_response(SubmitResponseCode.notAllowed), FanoutPlan()
        if (self.overrides.departs(WINDOW_SERVES_MESSAGES) and self.transfer is not None
                and self.transfer.in_window):
            return refused
        try:
            req = SubmitMessageRequest.decode(request)
        except (DecodeError, EncodeError):
            return refused
        if req.protocol != Protocol.mls10:
            return refused
        pm = req.appMessage.private_message
        self.overrides.hook(SUBMIT_APPLICATION_ONLY, pm)  # a fault's hook may relabel it
        if pm is None or pm.content_type != ContentType.application:  # PROTO-SUBMIT-PRIVATEMESSAGE-ONLY
            return refused
        if bytes(pm.group_id) != self.group_id:
            return refused
        sender = user_of_uri(bytes(req.sendingUri.uri), self.overrides)
        if sender is None or domain_of_uri(sender) != sender_domain:
            return refused
        role = self.roles().get(sender, ROLE_INDEX_NON_PARTICIPANT)
        # PROTO-SUBMIT-SENDER-ACTIVE-PARTICIPANT, PROTO-REMOVAL-BLOCK-APP-SEND, POLICY-CAP-SEND-MESSAGE
        if (
            sender not in self.active_users()
            or sender in self.departing_users()
            or self.policy.may_send(role) is not None
        ) and not self.overrides.departs(REFUSE_INACTIVE_SENDER) \
                and not (self.min_timestamp and self.overrides.departs(TAKEN_OVER_KEEPS_REMOVALS)):
            return refused
        if pm.epoch < self.epoch and not self.overrides.departs(REFUSE_STALE_EPOCH):  # PROTO-SUBMIT-EPOCH-TOO-OLD
            return submit_response(SubmitResponseCode.epochTooOld, epoch=self.epoch), FanoutPlan()
        if pm.epoch > self.epoch and not self.overrides.departs(REFUSE_FUTURE_EPOCH):  # PROTO-SUBMIT-FUTURE-EPOCH-NOT-ALLOWED
            return refused
        plan = self._plan_submit(req, sender_domain, now)  # byte-identical, no sender, stamped on acceptance
        return submit_response(SubmitResponseCode.accepted, accepted=now), plan
