"""Newcomer discovery (docs/extensions/hub-transfer.md §13, EXT-HUBXFER-NEWCOMER-DISCOVERY): a provider
holding only a room ID, and no group state, asks the ID's authority for the room's GroupInfo; if the room
has moved, the authority answers 421 with a HubRedirect, which is followed for at most 8 hops; the
GroupInfo of the last hub named is accepted only if its mimi_hub component names that hub, with a
generation no lower than the last redirect's, and the GroupInfoResponse's hub_sender is the
external_senders entry whose credential names it.

Used by :meth:`ReferenceProvider.join_external` for a room the provider knows nothing of (the control
API's joinRoom). A redirect found here is a hint, as in section 7: nothing is remembered, and the joined
group's committed component is the hub-of-record from then on.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from .overrides import NO_OVERRIDES, Overrides, step
from .room.naming import domain_of_uri

MAX_HOPS = 8  # section 13: "follows the chain for at most 8 hops"
RETRY_503_SECONDS = 30.0  # how long a newcomer keeps retrying a new hub's 503 (before its handoff)

FOLLOWS_REDIRECT = step(
    "transfer.newcomer.follows-redirect", "EXT-HUBXFER-NEWCOMER-DISCOVERY",
    summary="a newcomer follows the ID authority's 421 HubRedirect (up to 8 hops) to fetch the room's GroupInfo")
CHECKS_HUB = step(
    "transfer.newcomer.checks-hub", "EXT-HUBXFER-NEWCOMER-DISCOVERY",
    summary="a newcomer accepts the hub a redirect names only if the GroupInfo it serves names it in mimi_hub, "
    "with a generation no lower than the redirect's, and signs with its external_senders entry")
HUB_SENDER_NAMES_HUB = step(
    "transfer.newcomer.hub-sender-names-hub", "EXT-HUBXFER-NEWCOMER-DISCOVERY",
    summary="a newcomer accepts a GroupInfoResponse only if its hub_sender key is that of the external_senders "
    "entry whose credential names the hub that served it (not any entry's)")

HOP_LIMIT = step(
    "transfer.newcomer.hop-limit", "EXT-HUBXFER-NEWCOMER-DISCOVERY",
    summary="a newcomer follows at most 8 HubRedirects, then takes the last answer (section 13: 'follows the chain "
    "for at most 8 hops')")

RETRIES_NEW_HUB_503 = step(
    "transfer.newcomer.retries-503", "EXT-HUBXFER-FOLLOWER-503-RETRY",
    summary="a newcomer whose groupInfo the located hub answers 503 (a new hub before its handoff) retries it, "
    "honouring Retry-After (section 7, '503 from the new hub')")


@dataclass
class Located:
    """Where a newcomer's groupInfo request ended: the hub that answered, and the generation the last
    redirect claimed for it (None: the authority answered itself). ``overrides``: those of the provider that
    followed the chain, whose newcomer rules judge the result (:func:`hub_problem`)."""

    hub: str
    generation: int | None = None
    hops: int = 0
    overrides: Overrides = field(default=NO_OVERRIDES, compare=False, repr=False)


async def fetch_group_info(provider, room_id: str, body: bytes):
    """POST /groupInfo to the room ID's authority, following HubRedirects; (reply, Located)."""
    from .provider.outbox import parse_retry_after
    from .wire.hub_transfer import read_hub_redirect

    hub = domain_of_uri(room_id)
    if hub is None:
        raise ValueError(f"not a room URI: {room_id!r}")
    located = Located(hub, overrides=provider.overrides)
    deadline = time.monotonic() + RETRY_503_SECONDS
    while True:
        reply = await provider._call(provider.authority(located.hub), "groupInfo", room_id, body)  # noqa: SLF001
        if reply.status == 421 and (located.hops < MAX_HOPS or provider.overrides.departs(HOP_LIMIT)) \
                and not provider.overrides.departs(FOLLOWS_REDIRECT):
            redirect = read_hub_redirect(reply.headers.get("content-type"), reply.body, room_id)
            target = domain_of_uri(bytes(redirect.hub.uri)) if redirect is not None else None
            if target is not None and target != located.hub and not provider.is_local_domain(target):
                located = Located(target, redirect.generation, located.hops + 1, overrides=provider.overrides)
                continue
        if reply.status == 503 and time.monotonic() < deadline \
                and not provider.overrides.departs(RETRIES_NEW_HUB_503):  # a new hub before its handoff
            delay = parse_retry_after(reply.headers.get("retry-after"), time.time())
            await asyncio.sleep(min(delay if delay is not None else 1.0, 5.0))
            continue
        return reply, located


def hub_problem(group, answer, room_id: str, located: Located) -> str | None:
    """Why the GroupInfo ``located.hub`` served (``group``: the joined group, ``answer``: the
    GroupInfoResponse) does not make that provider the room's hub; None when it does (judged by the rules
    of the provider that located it: ``located.overrides``)."""
    from .room.transfer import hub_of_record, sender_domain

    if located.overrides.departs(CHECKS_HUB):
        return None
    data = hub_of_record(group.app_data(), room_id)
    named = domain_of_uri(bytes(data.hub.uri)) if data is not None else domain_of_uri(room_id)
    generation = data.generation if data is not None else 0
    if named != located.hub:
        return f"the GroupInfo {located.hub} served names {named} as the room's hub (mimi_hub)"
    if located.generation is not None and generation < located.generation:
        return (f"the GroupInfo {located.hub} served has mimi_hub generation {generation}, lower than the "
                f"redirect's {located.generation}")
    key = bytes(answer.hub_sender.signature_key)
    if not any(bytes(s.signature_key) == key and sender_domain(s) == located.hub for s in group.external_senders()):
        if located.overrides.departs(HUB_SENDER_NAMES_HUB) \
                and any(bytes(s.signature_key) == key for s in group.external_senders()):
            return None  # the fault: another provider's entry will do
        return f"the GroupInfoResponse's hub_sender is not the external_senders entry of {located.hub}"
    return None
