"""Parties a check drives: the SUT and the suite's reference hub and follower, through control APIs.

A :class:`Party` wraps one provider's control API with the calls scenarios make (users, rooms,
participants, messages, consent, events) and polls with deadlines for their effects. The SUT and
the reference peers are driven the same way, so one scenario body runs with the SUT as hub (the
room on the SUT, members on the reference follower) and as follower (the room on the reference hub,
members on the SUT): see :class:`Cast`.

Reference peers additionally expose what they saw on the wire (:meth:`Party.traffic`) and a local
member's MLS state (:meth:`Party.member_state`), so a check can judge the bytes a SUT sent and act
as one of the reference peer's clients towards the SUT.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import itertools
import pickle
from collections.abc import Callable
from typing import Any

import httpx

from ..verdicts import Blocked, HarnessError, NotApplicable
from .control import ControlClient

Poller = Callable[..., Any]


@dataclasses.dataclass(frozen=True)
class User:
    uri: str
    clients: tuple[str, ...]
    party: Party

    @property
    def client(self) -> str:
        return self.clients[0]

    @property
    def domain(self) -> str:
        return self.party.domain


@dataclasses.dataclass(frozen=True)
class Traffic:
    """One MIMI request a reference peer received (``direction == "in"``) or sent (``"out"``)."""

    seq: int
    direction: str
    endpoint: str
    peer: str
    value: str
    request: bytes
    status: int | None
    response: bytes
    error: str | None
    time: float = 0.0  # when the reference peer logged it (its clock, seconds since the epoch)

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> Traffic:
        return cls(
            item["seq"], item["direction"], item["endpoint"], item["peer"], item["value"],
            base64.b64decode(item["request"]), item["status"], base64.b64decode(item["response"]), item["error"],
            item.get("time", 0.0),
        )


class Party:
    """One provider driven through its control API (``name``: "sut", "ref-hub" or "ref-follower")."""

    def __init__(
        self, name: str, domain: str, control: ControlClient, names: Callable[[str], str], poll: Poller,
        *, introspection_url: str | None = None,
    ) -> None:
        self.name = name
        self.domain = domain
        self.control = control
        self._names = names
        self._poll = poll
        self._introspection_url = introspection_url

    def __repr__(self) -> str:
        return f"Party({self.name}, {self.domain})"

    @property
    def is_reference(self) -> bool:
        return self._introspection_url is not None

    def supports(self, operation: str) -> bool:
        return operation in self.control.supported_operations()

    # --- users and clients ----------------------------------------------------------------------

    def create_user(self, name: str = "user", *, clients: int = 1, **extra: Any) -> User:
        body = self.control.call("createUser", body={"user": self._names(name), "clients": clients, **extra}).body
        return User(body["user"], tuple(body["clients"]), self)

    def delete_user(self, user: User) -> dict[str, Any]:
        return self.control.call("deleteUser", {"user": user.uri}).body

    def add_client(self, user: User, *, join_rooms: bool = True) -> str:
        body = {"client": self._names("device"), "joinRooms": join_rooms}
        return self.control.call("addClient", {"user": user.uri}, body=body).body["client"]

    def delete_client(self, client: str) -> dict[str, Any]:
        return self.control.call("deleteClient", {"client": client}).body

    def publish_key_packages(self, client: str, count: int, **extra: Any) -> dict[str, Any]:
        return self.control.call("publishKeyPackages", {"client": client}, body={"count": count, **extra}).body

    # --- rooms ----------------------------------------------------------------------------------

    def create_room(self, creator: User, *, policy: dict[str, Any] | None = None, **extra: Any) -> str:
        body: dict[str, Any] = {"creator": creator.uri, "room": self._names("room"), **extra}
        if policy is not None:
            body["policy"] = policy
        return self.control.call("createRoom", body=body).body["room"]

    def room(self, room: str) -> dict[str, Any] | None:
        """getRoom, or None when this provider has no state of the room (404)."""
        from .control import ControlProblem

        try:
            return self.control.call("getRoom", {"room": room}).body
        except ControlProblem as exc:
            if exc.status == 404:
                return None
            raise

    def participants(self, room: str) -> dict[str, dict[str, Any]]:
        info = self.room(room)
        return {} if info is None else {p["user"]: p for p in info["participants"]}

    def add(self, room: str, actor: User | str, user: User | str, **extra: Any) -> dict[str, Any]:
        """addParticipant; the raw ActionResult (``outcome`` may be a remote refusal)."""
        body = {"actor": _uri(actor), "user": _uri(user), **extra}
        return self.control.call("addParticipant", {"room": room}, body=body).body

    def add_ok(self, room: str, actor: User | str, user: User | str, **extra: Any) -> dict[str, Any]:
        """addParticipant that must be accepted: anything else is a failed precondition of the check.

        A target provider may answer keyMaterial noConsent (protocol-06 §5.2, §5.7): when the added
        user's provider refuses for lack of consent (or gives no key material at all), the user grants
        consent to ``actor`` for ``room`` through grantConsent where that provider's control API offers
        it, and the add is tried once more; where it offers no way to grant, the check cannot apply."""
        result = self.add(room, actor, user, **extra)
        if _refused_for_consent(result):
            result = self._add_with_consent(room, actor, user, result, **extra)
        _expect_accepted(self, "addParticipant", result)
        return result

    def _add_with_consent(self, room: str, actor: User | str, user: User | str, refused: dict[str, Any],
                          **extra: Any) -> dict[str, Any]:
        status = refused.get("keyMaterial", {}).get("userStatus")
        target = user.party if isinstance(user, User) else None
        if target is None or not target.supports("grantConsent"):
            where = target.name if target is not None else "the target's provider"
            raise NotApplicable(
                f"adding {_uri(user)} to {room}, {where} gave no key material (keyMaterial userStatus {status}): "
                "the SUT requires consent and its adapter offers no way to grant it")
        target.grant_consent(user, actor, room)
        result = self.add(room, actor, user, **extra)
        if result.get("outcome") == "noKeyMaterial" and \
                result.get("keyMaterial", {}).get("userStatus") in ("noConsent", "noConsentForThisRoom"):
            raise Blocked(
                "PROTO-CONSENT-GRANT-ENABLES-KEYMAT",
                f"{_uri(user)} granted {_uri(actor)} consent for {room} at {target.name}, yet keyMaterial still "
                f"answers {result['keyMaterial']['userStatus']} (it answered {status} before the grant)")
        return result

    def remove(self, room: str, actor: User | str, user: User | str, mode: str | None = None) -> dict[str, Any]:
        query = {"actor": _uri(actor), "mode": mode}
        return self.control.call("removeParticipant", {"room": room, "user": _uri(user)}, query=query).body

    def unban(self, room: str, actor: User | str, user: User | str, role: int = 2) -> dict[str, Any]:
        body = {"actor": _uri(actor), "user": _uri(user), "role": role}
        return self.control.call("unbanParticipant", {"room": room}, body=body).body

    def leave(self, room: str, actor: User | str) -> dict[str, Any]:
        return self.control.call("leaveRoom", {"room": room}, body={"actor": _uri(actor)}).body

    def remove_client(self, room: str, client: str, actor: str | None = None) -> dict[str, Any]:
        body = {} if actor is None else {"actor": actor}
        return self.control.call("removeClientFromRoom", {"room": room, "client": client}, body=body).body

    # --- messages -------------------------------------------------------------------------------

    def send(self, room: str, client: str, data: bytes) -> dict[str, Any]:
        body = {"from": client, "content": {"base64": base64.b64encode(data).decode()}}
        return self.control.call("sendMessage", {"room": room}, body=body).body

    def send_ok(self, room: str, client: str, data: bytes) -> dict[str, Any]:
        result = self.send(room, client, data)
        _expect_accepted(self, "sendMessage", result)
        return result

    def received(self, client: str, room: str | None = None) -> list[bytes]:
        """The application data ``client`` received and decrypted, oldest first (every page)."""
        out: list[bytes] = []
        after = None
        while True:
            page = self.control.call(
                "listReceivedMessages", {"client": client}, query={"room": room, "after": after}
            ).body
            for item in page["items"]:
                content = item["content"]
                out.append(base64.b64decode(content["base64"]) if "base64" in content else content.get("text", "").encode())
            after = page.get("next")
            if not after or not page["items"]:
                return out

    def wait_received(self, client: str, data: bytes, *, room: str | None = None, what: str = "") -> None:
        self._poll(lambda: data in self.received(client, room),
                   what=what or f"{client} at {self.name} to receive {data!r}")

    def events(self, user: User | str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = None
        while True:
            page = self.control.call("listUserEvents", {"user": _uri(user)}, query={"after": after}).body
            out += page["items"]
            after = page.get("next")
            if not after or not page["items"]:
                return out

    def wait_event(self, user: User | str, event_type: str, *, room: str | None = None, what: str = "") -> dict:
        def found() -> dict | None:
            for event in self.events(user):
                if event["type"] == event_type and (room is None or event.get("room") == room):
                    return event
            return None

        return self._poll(found, what=what or f"a {event_type} event for {_uri(user)} at {self.name}")

    def wait_epoch(self, room: str, epoch: int, *, what: str = "") -> dict[str, Any]:
        return self._poll(
            lambda: (info := self.room(room)) is not None and info["epoch"] >= epoch and info,
            what=what or f"{self.name} to reach epoch {epoch} of {room}",
        )

    def wait_member(self, room: str, user: User | str, *, what: str = "") -> dict[str, Any]:
        return self._poll(lambda: self.participants(room).get(_uri(user)),
                          what=what or f"{_uri(user)} to be a participant of {room} at {self.name}")

    # --- consent --------------------------------------------------------------------------------

    def consent_state(self, user: User | str) -> list[dict[str, Any]]:
        return self.control.call("getConsentState", {"user": _uri(user)}).body["entries"]

    def request_consent(self, user: User | str, target: User | str, room: str | None = None) -> dict[str, Any]:
        body = {"target": _uri(target), **({"room": room} if room else {})}
        return self.control.call("requestConsent", {"user": _uri(user)}, body=body).body

    def cancel_consent(self, user: User | str, target: User | str, room: str | None = None) -> dict[str, Any]:
        body = {"target": _uri(target), **({"room": room} if room else {})}
        return self.control.call("cancelConsentRequest", {"user": _uri(user)}, body=body).body

    def grant_consent(self, user: User | str, requester: User | str, room: str | None = None) -> dict[str, Any]:
        body = {"requester": _uri(requester), **({"room": room} if room else {})}
        return self.control.call("grantConsent", {"user": _uri(user)}, body=body).body

    def revoke_consent(self, user: User | str, requester: User | str, room: str | None = None) -> dict[str, Any]:
        body = {"requester": _uri(requester), **({"room": room} if room else {})}
        return self.control.call("revokeConsent", {"user": _uri(user)}, body=body).body

    # --- reference peers only: what they saw, and their members' MLS state ------------------------

    def _introspect(self, path: str, **query: Any) -> dict[str, Any]:
        if self._introspection_url is None:
            raise HarnessError(f"{self.name} is not a reference peer: it has no introspection routes")
        try:
            reply = httpx.get(f"{self._introspection_url}/x-reference/v1/{path}", params=query, timeout=10.0,
                              trust_env=False)
        except httpx.HTTPError as exc:
            raise HarnessError(f"{self.name} introspection {path}: {type(exc).__name__}: {exc}") from exc
        if reply.status_code == 404:
            raise NotThereYet(f"{self.name} introspection {path}: HTTP 404 {reply.text[:200]}")
        if reply.status_code != 200:
            raise HarnessError(f"{self.name} introspection {path}: HTTP {reply.status_code} {reply.text[:200]}")
        return reply.json()

    def traffic_mark(self) -> int:
        """The sequence number of the last MIMI request logged so far: pass it to :meth:`traffic`."""
        return self._introspect("traffic", after=2**62)["last"]

    def traffic(self, after: int = 0, *, endpoint: str | None = None, direction: str | None = None,
                peer: str | None = None) -> list[Traffic]:
        items: list[Traffic] = []
        while True:
            page = self._introspect("traffic", after=after, limit=1000)
            items += [Traffic.from_json(i) for i in page["items"]]
            if not page["items"]:
                break
            after = page["last"]
        return [
            t for t in items
            if (endpoint is None or t.endpoint == endpoint) and (direction is None or t.direction == direction)
            and (peer is None or t.peer == peer)
        ]

    def _introspect_post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._introspection_url is None:
            raise HarnessError(f"{self.name} is not a reference peer")
        try:
            reply = httpx.post(f"{self._introspection_url}/x-reference/v1/{path}", trust_env=False, timeout=10.0,
                               json=body)
        except httpx.HTTPError as exc:
            raise HarnessError(f"{self.name} introspection {path}: {type(exc).__name__}: {exc}") from exc
        if reply.status_code != 200:
            raise HarnessError(f"{self.name} {path}: HTTP {reply.status_code} {reply.text[:200]}")
        return reply.json()

    def refuse_notifies(self, statuses: list[int], retry_after: str | None = None, body: str | None = None) -> None:
        """Make this reference peer answer its next /notify requests with ``statuses`` (any of 200..599: a
        refusal or a 2xx other than 201), one each, without processing them; with ``body`` (not for 204/304)."""
        self._introspect_post("refuse-notify", {"statuses": statuses, **({"retryAfter": retry_after} if retry_after else {}),
                                                **({"body": body} if body else {})})

    # -- hub transfer (docs/extensions/hub-transfer.md) ---------------------------------------------

    def sign_group_info_as(self, room: str, signature_priv: bytes | None = None, sender: Any = None) -> None:
        """As hub of ``room``, make this reference peer sign its GroupInfoResponses with ``signature_priv`` and
        name ``sender`` (an ExternalSender, such as another provider's external_senders entry, taken from that
        provider's :meth:`hub_state`) as hub_sender; with no key, restore its own."""
        body: dict[str, Any] = {"room": room}
        if signature_priv is not None:
            body["signatureKey"] = base64.b64encode(signature_priv).decode()
            body["sender"] = base64.b64encode(sender.encode()).decode()
        self._introspect_post("group-info-signer", body)

    def start_hub_transfer(self, room: str, actor: User | str, new_hub: str) -> dict[str, Any]:
        """startHubTransfer: ``actor``'s client asks to move ``room`` to the provider ``new_hub`` (a domain)."""
        return self.control.call("startHubTransfer", {"room": room}, body={"actor": _uri(actor), "newHub": new_hub}).body

    def join_room(self, room: str, client: str) -> dict[str, Any]:
        """joinRoom (experimental): ``client`` joins ``room`` by external commit, located from the room ID
        when its provider holds no state for the room; the raw ActionResult."""
        return self.control.call("joinRoom", {"room": room}, body={"client": client}).body

    def hub_transfer_state(self) -> dict[str, Any]:
        """A reference peer's transfers: outgoing (as old hub) and incoming (as target), handoff bytes."""
        return self._introspect("hub-transfer")

    def hold_transfer(self, *, autocommit: list[str] | None = None, hold_handoff: bool | None = None,
                      withhold_notify_to: list[str] | None = None,
                      refuse_handoffs: dict[str, int] | None = None,
                      lacking_hub_component: list[str] | None = None,
                      inflate_redirect_generation: int | None = None,
                      hold_prepares: bool | None = None, acceptance_new_hub: str | None = None,
                      retry_503_seconds: int | None = None, redirect_rooms: dict[str, str] | None = None,
                      refuse_handoff_codes: dict[str, list[str]] | None = None,
                      acceptance_late_ms: int | None = None) -> None:
        """Which transfer commits a reference peer's initiating client makes by itself (begin, cutover,
        abort), whether it holds its handoffs back, and to which domains it withholds its /notify (kept
        pending, in order, until released with ``[]``): to hold a window open, watch a new hub before
        the handoff, or keep a follower from learning of a cut-over; ``refuse_handoffs`` (room -> N) makes it
        answer the next N handoffs for a room 503, to see the old hub retry them; ``lacking_hub_component``
        (user URIs, ``[]`` to clear) makes the clients of those users, created while listed, omit mimi_hub
        from their LeafNodes' app_components; ``inflate_redirect_generation`` (0 to clear) makes the HubRedirects
        it answers as old hub claim that much more than the committed generation (a false hint);
        ``hold_prepares`` makes the prepares it receives as target wait unprocessed (at most 15 s) until cleared
        (``hub_transfer_state()["heldPrepares"]`` lists the rooms whose prepare waits); ``acceptance_new_hub`` (a
        domain, ``""`` to clear) makes the acceptances it returns as target name that provider as new_hub (still
        signed with its own new_hub_sender); ``retry_503_seconds`` (1 to 30) sets the Retry-After it answers as new
        hub between the cut-over and the handoff (section 6.4; 1 unless set); ``redirect_rooms`` (room -> domain,
        ``{}`` to clear) makes it answer every room request for those rooms 421 with a HubRedirect naming that
        domain, whatever it holds (two peers naming each other make a redirect loop); ``refuse_handoff_codes`` (room
        -> HubTransferCode names, ``{}`` to clear) answers the next handoffs for a room, once ``refuse_handoffs`` is
        spent, HTTP 200 with those refusal codes in order; ``acceptance_late_ms`` (0 to clear) makes the acceptances it
        returns as target carry a not_after that much past the prepare's requested_not_after (re-signed)."""
        body: dict[str, Any] = {}
        if autocommit is not None:
            body["autocommit"] = autocommit
        if hold_handoff is not None:
            body["holdHandoff"] = hold_handoff
        if withhold_notify_to is not None:
            body["withholdNotifyTo"] = withhold_notify_to
        if refuse_handoffs is not None:
            body["refuseHandoffs"] = refuse_handoffs
        if lacking_hub_component is not None:
            body["lackingHubComponent"] = lacking_hub_component
        if inflate_redirect_generation is not None:
            body["inflateRedirectGeneration"] = inflate_redirect_generation
        if hold_prepares is not None:
            body["holdPrepares"] = hold_prepares
        if acceptance_new_hub is not None:
            body["acceptanceNewHub"] = acceptance_new_hub or None
        if retry_503_seconds is not None:
            body["retry503Seconds"] = retry_503_seconds
        if redirect_rooms is not None:
            body["redirectRooms"] = redirect_rooms
        if refuse_handoff_codes is not None:
            body["refuseHandoffCodes"] = refuse_handoff_codes
        if acceptance_late_ms is not None:
            body["acceptanceLateMs"] = acceptance_late_ms
        self._introspect_post("hub-transfer", body)

    def member_state(self, room: str, client: str) -> Any:
        """A copy of a reference client's member state (a SimulatedClient) in ``room``."""
        return pickle.loads(base64.b64decode(self._introspect("member-state", room=room, client=client)["pickle"]))

    def hub_state(self, room: str) -> Any:
        """A copy of the reference hub's HubRoom for ``room``."""
        return pickle.loads(base64.b64decode(self._introspect("hub-state", room=room)["pickle"]))


class NotThereYet(HarnessError):
    """A reference peer holds no such state yet (its introspection answered 404: a member before its Welcome
    is processed, a room before it is created). Outside a poll it is a harness error; every poll
    (``poll_until``) takes it as "not yet"."""


def _uri(value: User | str) -> str:
    return value.uri if isinstance(value, User) else value


def _refused_for_consent(result: dict[str, Any]) -> bool:
    """An addParticipant outcome saying the target's provider gave no key material for lack of consent
    (or gave no readable answer at all, ``unavailable``, as a provider hiding its reason may)."""
    if result.get("outcome") != "noKeyMaterial":
        return False
    return (result.get("keyMaterial") or {}).get("userStatus") in ("unavailable", "noConsent", "noConsentForThisRoom")


def _expect_accepted(party: Party, operation: str, result: dict[str, Any]) -> None:
    if result.get("outcome") != "accepted":
        # Setting up a check is not what it judges; the precondition failing is reported, not scored.
        if result.get("outcome") == "noKeyMaterial":
            material = result.get("keyMaterial") or {}
            clients = ", ".join(f"{c.get('client')}={c.get('status')}" for c in material.get("clients", ())) or "none"
            raise HarnessError(f"{party.name} {operation} got no key material for the added user (keyMaterial "
                               f"userStatus {material.get('userStatus')}, clients: {clients}), so the check cannot "
                               "proceed")
        raise HarnessError(f"{party.name} {operation} was not accepted, so the check cannot proceed: {result}")


def unique_names(seed: str) -> Callable[[str], str]:
    """LocalNames unique to one check of one run: ``<prefix>-<8 hex of seed>-<n>``."""
    tag = hashlib.sha256(seed.encode()).hexdigest()[:8]
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}-{tag}-{next(counter)}"


@dataclasses.dataclass
class Cast:
    """Who plays what in a scenario: ``hub`` hosts the room, ``follower`` is a provider with members
    there, and ``sut`` is whichever of the two the SUT is (``sut_role``)."""

    sut_role: str
    hub: Party
    follower: Party
    sut: Party
    reference: Party  # the other party: the suite's reference peer in the other role
    names: Callable[[str], str]
