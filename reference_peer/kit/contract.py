"""The control API contract's request validation and answer shaping, shared by every backend: the
reference peer's (``reference_peer.control.backend``) and the adapter kit's (``reference_peer.kit.backend``).

Nothing here knows where a room's hub is or how a request reaches it: the backends pass that in
(``member_of``, ``send``, ``save``). What is here is what the contract fixes: closed request bodies,
local names and URIs, integers in range, profiles, message content, the ``hubResponse`` of a refusal,
RFC 3339 times, and the wrongEpoch / epochTooOld retry that the contract lets a SUT make internally.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..control.errors import ControlError
from ..control.policy_json import policy_to_json
from ..mls import MLSError
from ..overrides import NO_OVERRIDES, Overrides
from ..provider.directory_search import Profile, SearchPolicy
from ..room import SimulatedClient
from ..room.naming import domain_of_uri, user_of_credential
from ..room.policy import PolicyError, RoomPolicy
from ..wire.codec import DecodeError, EncodeError
from ..wire.identity import MimiUri, MimiUriError, UriKind
from ..wire.mimi import KeyMaterialResponse, SubmitResponseCode, UpdateResponseCode

# The contract's SearchPolicy names -> the provider's.
SEARCH_POLICIES = {
    "searchable": SearchPolicy.searchable,
    "exactHandle": SearchPolicy.exact_handle,
    "hidden": SearchPolicy.hidden,
}
UPDATE_ATTEMPTS = 4
CATCH_UP_SECONDS = 5.0
PROFILE_MEMBERS = ("handles", "nicks", "emails", "phones", "names", "oidcClaims", "vcard")

# (room, client) -> the client's active per-room MLS state, or None.
MemberOf = Callable[[str, str], SimulatedClient | None]
# (room, client, member) -> None: make the member's new state durable.
SaveMember = Callable[[str, str, SimulatedClient], None]


def closed(body: Any, where: str, allowed: set[str], required: set[str] = frozenset()) -> dict[str, Any]:
    """Request bodies are closed (contract: unknown members are a 400)."""
    if not isinstance(body, dict):
        raise ControlError.bad_request(f"{where}: the body must be a JSON object")
    unknown = set(body) - allowed
    if unknown:
        raise ControlError.bad_request(f"{where}: unknown member(s) {sorted(unknown)}")
    missing = required - set(body)
    if missing:
        raise ControlError.bad_request(f"{where}: missing member(s) {sorted(missing)}")
    return body


def parse_uri(uri: Any, kind: UriKind | None, what: str) -> MimiUri:
    if not isinstance(uri, str):
        raise ControlError.bad_request(f"{what}: expected a mimi URI string")
    try:
        parsed = MimiUri.parse(uri)
    except MimiUriError as exc:
        raise ControlError.bad_request(f"{what}: {exc}") from None
    if kind is not None and parsed.kind is not kind:
        raise ControlError.bad_request(f"{what}: {uri!r} is not a {kind.name} URI")
    return parsed


def profile_of(value: Any, name: str) -> Profile:
    """createUser ``profile`` (contract Profile) -> the provider's; the local name is always a handle."""
    if value is None:
        return Profile(handles=(name,))
    if not isinstance(value, dict) or set(value) - set(PROFILE_MEMBERS):
        raise ControlError.bad_request("profile: expected an object of handles, nicks, emails, phones, names, oidcClaims, vcard")

    def strings(key: str) -> tuple[str, ...]:
        items = value.get(key) or []
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            raise ControlError.bad_request(f"profile.{key}: expected a list of non-empty strings")
        return tuple(items)

    def mapping(key: str) -> dict[str, str]:
        items = value.get(key) or {}
        if not isinstance(items, dict) or not all(isinstance(v, str) for v in items.values()):
            raise ControlError.bad_request(f"profile.{key}: expected an object of strings")
        return dict(items)

    handles = strings("handles")
    return Profile(
        handles=handles if name in handles else (name, *handles), nicks=strings("nicks"), emails=strings("emails"),
        phones=strings("phones"), names=mapping("names"), oidc_claims=mapping("oidcClaims"), vcard=mapping("vcard"),
    )


def local_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 64 or not all(c.isalnum() or c in "._~-" for c in value):
        raise ControlError.bad_request(f"{what}: not a local name: {value!r}")
    return value


def integer(value: Any, what: str, *, minimum: int = 0, maximum: int = 2**32 - 1, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ControlError.bad_request(f"{what}: expected an integer in [{minimum}, {maximum}], got {value!r}")
    return value


def cursor(after: Any) -> int:
    """A list cursor this SUT issued (a decimal position), 0 when absent."""
    if after is not None and not (isinstance(after, str) and after.isdigit()):
        raise ControlError.bad_request(f"after: not a cursor this SUT issued: {after!r}")
    return int(after) if after is not None else 0


def hub_response(call, code_name: str | None = None, detail: str = "") -> dict[str, Any]:
    """The ``hubResponse`` of a refusal; ``call`` has ``http_status`` and ``error`` (a peer's RoomCall)."""
    out: dict[str, Any] = {"httpStatus": call.http_status or 502}
    if code_name:
        out["code"] = code_name
    if detail or call.error:
        out["detail"] = detail or call.error
    return out


def rfc3339(milliseconds: int) -> str:
    return datetime.datetime.fromtimestamp(milliseconds / 1000, datetime.UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def message_content(content: Any) -> bytes:
    """sendMessage ``content``: exactly one of text (sent as UTF-8) or base64."""
    if not isinstance(content, dict) or len(content) != 1 or not ({"base64", "text"} & set(content)):
        raise ControlError.bad_request("content: exactly one of base64 or text")
    if "text" in content:
        if not isinstance(content["text"], str):
            raise ControlError.bad_request("content.text: expected a string")
        return content["text"].encode("utf-8")
    try:
        return base64.b64decode(content["base64"], validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise ControlError.bad_request("content.base64: not base64") from None


def received_item(room: str, sender: str, sender_user: str | None, epoch: int, data: bytes,
                  received_at: int) -> dict[str, Any]:
    """One listReceivedMessages item: base64 always, text too when the data is UTF-8."""
    item: dict[str, Any] = {
        "room": room,
        "sender": sender,
        "epoch": epoch,
        "content": {"base64": base64.b64encode(data).decode()},
        "receivedAt": rfc3339(received_at),
    }
    if sender_user:
        item["senderUser"] = sender_user
    try:
        item["content"]["text"] = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return item


def room_view(group, participant_list, overrides: Overrides = NO_OVERRIDES) -> dict[str, Any]:
    """getRoom's view of a room from an MLS group (a client's, or the hub's) and its participant list."""
    clients_by_user: dict[bytes, list[str]] = {}
    for _, leaf in group.members():
        user = user_of_credential(leaf.credential, overrides)
        if user is not None:
            clients_by_user.setdefault(user, []).append(bytes(leaf.credential.identity).decode())
    participants = [
        {"user": bytes(p.user).decode(), "role": p.role_index, "clients": clients_by_user.get(bytes(p.user), [])}
        for p in participant_list.participants
    ]
    senders = [domain_of_uri(bytes(s.credential.identity or b"")) for s in group.external_senders()]
    try:
        policy = policy_to_json(RoomPolicy.from_components(group.app_data()))
    except PolicyError:  # a room created elsewhere without room-policy components
        policy = {}
    return {
        "policy": policy,
        "epoch": group.epoch,
        "groupId": base64.b64encode(bytes(group.group_id)).decode(),
        "participants": participants,
        "externalSenders": [s for s in senders if s],
    }


def key_material_of(status: int, answer: bytes) -> tuple[dict[str, Any], list]:
    """addParticipant's ``keyMaterial`` summary and the KeyPackages of a keyMaterial answer."""
    key_material: dict[str, Any] = {"userStatus": "unavailable", "clients": []}
    key_packages: list = []
    if status == 200:
        try:
            response = KeyMaterialResponse.decode(answer)
        except (DecodeError, EncodeError):
            response = None
        if response is not None:
            key_material = {
                "userStatus": response.userStatus.name,
                "clients": [
                    {"client": bytes(c.clientUri.uri).decode(), "status": c.clientStatus.name}
                    for c in response.clients
                ],
            }
            key_packages = [c.keyPackage for c in response.clients if c.keyPackage is not None]
    return key_material, key_packages


def remove_user(member: SimulatedClient, user: bytes):
    """Remove ``user``; when the group's cached proposals already remove it (an accepted self-leave),
    the commit of those cached proposals is the removal."""
    try:
        return member.remove_user(user)
    except MLSError:
        if not member.group.proposal_cache:
            raise
        return member.commit()


# -- the hub's wrongEpoch / epochTooOld: catch up, rebuild, resend ------------------------------------

async def catch_up(member_of: MemberOf, room: str, client: str, epoch: int) -> SimulatedClient | None:
    """Wait (bounded) until the client has processed the fan-out up to ``epoch`` (the hub said
    wrongEpoch: the commits it missed are on their way)."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while time.monotonic() < deadline:
        member = member_of(room, client)
        if member is None or (member.epoch or 0) >= epoch:
            return member
        await asyncio.sleep(0.02)
    return member_of(room, client)


async def update_with_catch_up(
    room: str, client: str, build, *, member_of: MemberOf, save: SaveMember,
    send: Callable[[str, bytes], Awaitable[Any]],
) -> tuple[Any, Any, SimulatedClient | None]:
    """Send what ``build(member)`` makes (an OutgoingCommit, or an UpdateRequest body for proposals)
    to the hub with ``send(room, body)`` (a RoomCall whose ``update`` is the decoded answer or None);
    after wrongEpoch, catch up and rebuild (the contract lets a SUT retry internally)."""
    for _ in range(UPDATE_ATTEMPTS):
        member = member_of(room, client)
        if member is None:
            raise ControlError.conflict(f"{client} is no longer a member of {room}")
        try:
            outgoing = build(member)
        except MLSError as exc:
            raise ControlError.not_permitted(f"the client cannot build this change: {exc}") from None
        is_commit = not isinstance(outgoing, bytes)
        call = await send(room, outgoing.request if is_commit else outgoing)
        response = call.update
        accepted = response is not None and response.responseCode == UpdateResponseCode.success
        if is_commit and member._outgoing is not None:  # noqa: SLF001 - unless our echoed commit merged it
            if accepted:
                member.commit_accepted()
            else:
                member.commit_refused()
        save(room, client, member)
        if response is None or response.responseCode != UpdateResponseCode.wrongEpoch:
            return call, response, member
        await catch_up(member_of, room, client, response.currentEpoch)
    return call, response, member


def commit_outcome(room: str, call, response, member: SimulatedClient | None) -> dict[str, Any]:
    """The answer of an operation that changed the room: accepted with the new epoch, or rejectedByHub."""
    if response is not None and response.responseCode == UpdateResponseCode.success:
        return {
            "room": room,
            "outcome": "accepted",
            "epoch": member.epoch,
            "acceptedAt": response.accepted_timestamp,
        }
    code = response.responseCode.name if response is not None else None
    detail = response.errorDescription if response is not None else ""
    return {"room": room, "outcome": "rejectedByHub", "hubResponse": hub_response(call, code, detail)}


async def submit_with_catch_up(
    room: str, client: str, member: SimulatedClient, data: bytes, *, member_of: MemberOf, save: SaveMember,
    send: Callable[[str, bytes], Awaitable[Any]],
) -> dict[str, Any]:
    """sendMessage: encrypt ``data`` and submit it with ``send(room, body)`` (a RoomCall whose ``submit``
    is the decoded answer or None); after epochTooOld, catch up and encrypt again."""
    for _ in range(UPDATE_ATTEMPTS):
        epoch = member.epoch
        request = member.send(data)
        save(room, client, member)
        call = await send(room, request)
        response = call.submit
        if response is not None and response.statusCode == SubmitResponseCode.epochTooOld:
            member = await catch_up(member_of, room, client, response.currentEpoch)
            if member is not None:
                continue
        break
    if response is not None and response.statusCode == SubmitResponseCode.accepted:
        return {"room": room, "outcome": "accepted", "epoch": epoch, "acceptedAt": response.accepted_timestamp}
    code = response.statusCode.name if response is not None else None
    return {"room": room, "outcome": "rejectedByHub", "epoch": epoch, "hubResponse": hub_response(call, code)}


__all__ = [
    "CATCH_UP_SECONDS",
    "SEARCH_POLICIES",
    "UPDATE_ATTEMPTS",
    "catch_up",
    "closed",
    "commit_outcome",
    "cursor",
    "hub_response",
    "integer",
    "key_material_of",
    "local_name",
    "message_content",
    "parse_uri",
    "profile_of",
    "received_item",
    "remove_user",
    "rfc3339",
    "room_view",
    "submit_with_catch_up",
    "update_with_catch_up",
]
