"""Reference-peer-only control routes the suite uses on its *own* peers (never part of the contract).

* ``GET /x-reference/v1/traffic?after=N&limit=M``: the MIMI requests this provider received and sent
  (:class:`~reference_peer.server.traffic.TrafficLog`), to judge what a SUT sent the suite's peers.
* ``GET /x-reference/v1/member-state?room=R&client=C``: a local client's MLS member state in room R,
  pickled, so a check can act as that client (submit a stale commit, a removed member's message).
* ``GET /x-reference/v1/hub-state?room=R``: the hub's state of room R, pickled, so a check can act as
  the hub towards a SUT follower (replay a notify, send a forged one).
* ``GET /x-reference/v1/hub-transfer``: the hub-transfer state (transfers started and accepted, the
  handoff bytes sent and received), when the extension is on.
* ``POST /x-reference/v1/hub-transfer`` ``{"autocommit": ["begin", "cutover", "abort"], "holdHandoff": bool,
  "withholdNotifyTo": [domain, ...], "refuseHandoffs": {room: N}, "lackingHubComponent": [user URI, ...],
  "inflateRedirectGeneration": N, "holdPrepares": bool, "acceptanceNewHub": domain | null}`` (all optional;
  while acceptanceNewHub names a domain, the acceptances this peer returns as target name it as new_hub; while
  holdPrepares is set, a prepare
  this peer receives as target waits unprocessed (at most 15 s; GET lists it under heldPrepares); a user listed in lackingHubComponent gets clients, when
  created, whose LeafNodes omit mimi_hub from their app_components; a nonzero inflateRedirectGeneration makes
  the HubRedirects this peer answers as old hub claim that much more than the committed generation, a false
  hint): which transfer commits this
  peer's initiating client makes by itself, whether it holds its handoffs back, to which providers it
  withholds its /notify (kept pending in order, sent once released), and how many of the next handoffs
  for a room it receives it answers 503 without processing them (a lost answer), so a check can hold a transfer
  window open, watch a new hub before the handoff, keep a follower from learning of a cut-over, or see
  an old hub retry its handoff.
* ``GET /x-reference/v1/faults``: the faults (and variants) this provider was built with.
* ``GET /x-reference/v1/violations?since=T``: since ``T`` (seconds since the epoch), the requests this
  peer refused for breaking a transport rule (``refused``, with the rule's requirement ID), its own
  requests that failed below HTTP (``failed``: TLS, connection), and rules it saw a peer break while
  processing what that peer sent (``observed``); the suite blames blocked checks on them.
* ``POST /x-reference/v1/refuse-notify`` ``{"statuses": [503, ...], "retryAfter": "1", "body": "..."}``:
  answer the next /notify requests with these statuses (any of 200..599: a refusal, or a 2xx other than
  201; ``retryAfter`` and ``body`` optional, no body with 204 or 304), one each, without processing them
  (to see whether a SUT hub retries).
* ``POST /x-reference/v1/group-info-signer`` ``{"room": R, "signatureKey": base64, "sender": base64}``: as hub
  of room R, sign the GroupInfoResponses with that private key and name that ExternalSender (encoded) as
  hub_sender (another provider's external_senders entry, from its ``hub-state``: to see a newcomer check
  whose entry signs; EXT-HUBXFER-NEWCOMER-DISCOVERY); ``{"room": R}`` alone restores this peer's own key.

Pickles are exchanged only between the suite and the reference peers it started on loopback, with
the same code: nothing a SUT sends is ever unpickled.
"""

from __future__ import annotations

import base64
import dataclasses
import pickle

from aiohttp import web

PREFIX = "/x-reference/v1"


def _pickled(value: object) -> web.Response:
    return web.json_response({"pickle": base64.b64encode(pickle.dumps(value)).decode()})


def _problem(status: int, detail: str) -> web.Response:
    return web.json_response({"title": detail, "status": status}, status=status, content_type="application/problem+json")


def add_introspection_routes(app: web.Application, provider, server=None) -> None:
    async def traffic(request: web.Request) -> web.Response:
        try:
            after = int(request.query.get("after", "0"))
            limit = int(request.query.get("limit", "1000"))
        except ValueError:
            return _problem(400, "after and limit must be integers")
        items, last = provider.traffic.since(after, limit)
        return web.json_response({"items": items, "last": last})

    async def member_state(request: web.Request) -> web.Response:
        room, client = request.query.get("room", ""), request.query.get("client", "")
        member = provider.members.get((room, client))
        if member is None:
            return _problem(404, f"no member state of {client!r} in {room!r}")
        return _pickled(member)

    async def hub_state(request: web.Request) -> web.Response:
        room = provider.hub_rooms.get(request.query.get("room", ""))
        if room is None:
            return _problem(404, "no such hub room")
        return _pickled(room)

    async def group_info_signer(request: web.Request) -> web.Response:
        import dataclasses

        from ..wire.mls import ExternalSender

        try:
            body = await request.json()
            room = provider.hub_rooms.get(body["room"])
            key, sender = body.get("signatureKey"), body.get("sender")
            identity = provider.identity if key is None else dataclasses.replace(
                provider.identity, signature_priv=base64.b64decode(key),
                external_sender=ExternalSender.decode(base64.b64decode(sender)))
        except Exception:  # noqa: BLE001 - any malformed body is the caller's error
            return _problem(400, 'expected {"room": R, "signatureKey": base64, "sender": base64 ExternalSender}')
        if room is None:
            return _problem(404, "no such hub room")
        room.identity = identity
        return web.json_response({"room": body["room"], "hubSender": base64.b64encode(
            identity.external_sender.encode()).decode()})

    async def faults(request: web.Request) -> web.Response:
        return web.json_response({"active": sorted(set(provider.overrides.sources))})

    async def refuse_notify(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            statuses = [int(s) for s in body["statuses"]]
            retry_after = body.get("retryAfter")
            answer_body = (body.get("body") or "").encode()
        except (ValueError, KeyError, TypeError, AttributeError):
            return _problem(400, 'expected {"statuses": [int, ...], "retryAfter": optional string, '
                                 '"body": optional string}')
        if not all(200 <= s <= 599 for s in statuses):  # any final status (1xx is never a final answer)
            return _problem(400, "answer statuses are 200..599")
        if answer_body and any(s in (204, 304) for s in statuses):
            return _problem(400, "a 204 or 304 answer has no body (RFC 9110)")
        provider.notify_refusals = [(s, None if retry_after is None else str(retry_after), answer_body)
                                    for s in statuses]
        return web.json_response({"pending": len(provider.notify_refusals)})

    async def violations(request: web.Request) -> web.Response:
        try:
            since = float(request.query.get("since", "0"))
        except ValueError:
            return _problem(400, "since must be a number (seconds since the epoch)")
        refused = [
            r.as_dict() for r in (server.refusals if server is not None else ())
            if r.requirement is not None and r.time >= since
        ]
        items, _ = provider.traffic.since(0, limit=10**9)
        failed = [
            {k: item[k] for k in ("endpoint", "peer", "value", "error", "time")}
            for item in items
            if item["direction"] == "out" and item["status"] is None and item["time"] >= since
        ]
        observed = provider.violations.since(since) if hasattr(provider, "violations") else []
        return web.json_response({"refused": refused, "failed": failed, "observed": observed})

    app.router.add_post(f"{PREFIX}/refuse-notify", refuse_notify)
    async def hub_transfer(request: web.Request) -> web.Response:
        if getattr(provider, "transfers", None) is None:
            return _problem(404, "the hub-transfer extension is off")
        return web.json_response(provider.transfers.introspect())

    async def hub_transfer_knobs(request: web.Request) -> web.Response:
        transfers = getattr(provider, "transfers", None)
        if transfers is None:
            return _problem(404, "the hub-transfer extension is off")
        try:
            body = await request.json()
            autocommit = body.get("autocommit")
            hold = body.get("holdHandoff")
            withhold = body.get("withholdNotifyTo")
            refuse_handoffs = body.get("refuseHandoffs")
            lacking = body.get("lackingHubComponent")
            inflate = body.get("inflateRedirectGeneration")
            hold_prepares = body.get("holdPrepares")
            new_hub = body.get("acceptanceNewHub", False)
            retry_503 = body.get("retry503Seconds")
            redirect_rooms = body.get("redirectRooms")
            refuse_codes = body.get("refuseHandoffCodes")
            late_ms = body.get("acceptanceLateMs")
            if late_ms is not None and not (type(late_ms) is int and 0 <= late_ms < 2**32):
                raise ValueError(late_ms)
            from ..wire.hub_transfer import HubTransferCode

            refusals = {c.name for c in HubTransferCode} - {"accepted"}
            if refuse_codes is not None and not (isinstance(refuse_codes, dict) and all(
                    isinstance(r, str) and isinstance(c, list) and all(n in refusals for n in c)
                    for r, c in refuse_codes.items())):
                raise ValueError(refuse_codes)
            if redirect_rooms is not None and not (isinstance(redirect_rooms, dict) and all(
                    isinstance(r, str) and isinstance(d, str) and d for r, d in redirect_rooms.items())):
                raise ValueError(redirect_rooms)
            if retry_503 is not None and not (type(retry_503) is int and 0 < retry_503 <= 30):
                raise ValueError(retry_503)
            if new_hub is not False and new_hub is not None and not (isinstance(new_hub, str) and new_hub):
                raise ValueError(new_hub)
            if hold_prepares is not None and not isinstance(hold_prepares, bool):
                raise ValueError(hold_prepares)
            if inflate is not None and not (type(inflate) is int and 0 <= inflate < 2**32):
                raise ValueError(inflate)
            if lacking is not None and not (isinstance(lacking, list) and all(isinstance(u, str) for u in lacking)):
                raise ValueError(lacking)
            if refuse_handoffs is not None and not (isinstance(refuse_handoffs, dict) and all(
                    isinstance(r, str) and isinstance(n, int) and n >= 0 for r, n in refuse_handoffs.items())):
                raise ValueError(refuse_handoffs)
            if withhold is not None and not all(isinstance(d, str) for d in withhold):
                raise ValueError(withhold)
            if autocommit is not None and not set(autocommit) <= {"begin", "cutover", "abort"}:
                raise ValueError(autocommit)
            if hold is not None and not isinstance(hold, bool):
                raise ValueError(hold)
        except (ValueError, TypeError, AttributeError):
            return _problem(400, 'expected {"autocommit": [begin|cutover|abort, ...], "holdHandoff": bool}')
        if autocommit is not None:
            transfers.autocommit = set(autocommit)
        if hold is not None:
            transfers.hold_handoff = hold
        if withhold is not None:
            transfers.withhold_notify_to = {d.lower() for d in withhold}
        if refuse_handoffs is not None:
            transfers.refuse_handoffs = dict(refuse_handoffs)
        if lacking is not None:
            transfers.lacking_hub_component = set(lacking)
        if inflate is not None:
            transfers.inflate_redirect_generation = inflate
        if hold_prepares is not None:
            transfers.hold_prepares = hold_prepares
        if new_hub is not False:
            transfers.acceptance_new_hub = new_hub.lower() if new_hub else None
        if late_ms is not None:
            transfers.acceptance_late_ms = late_ms
        if refuse_codes is not None:
            transfers.refuse_handoff_codes = {r: list(c) for r, c in refuse_codes.items()}
        if redirect_rooms is not None:
            transfers.redirect_rooms = {r: d.lower() for r, d in redirect_rooms.items()}
        if retry_503 is not None:  # the Retry-After it answers as new hub before the handoff (section 6.4)
            transfers.settings = dataclasses.replace(transfers.settings, retry_503_seconds=retry_503)
        return web.json_response({"autocommit": sorted(transfers.autocommit), "holdHandoff": transfers.hold_handoff,
                                  "withholdNotifyTo": sorted(transfers.withhold_notify_to)})

    app.router.add_get(PREFIX + "/hub-transfer", hub_transfer)
    app.router.add_post(PREFIX + "/hub-transfer", hub_transfer_knobs)
    app.router.add_get(f"{PREFIX}/violations", violations)
    app.router.add_get(f"{PREFIX}/traffic", traffic)
    app.router.add_get(f"{PREFIX}/member-state", member_state)
    app.router.add_get(f"{PREFIX}/hub-state", hub_state)
    app.router.add_post(f"{PREFIX}/group-info-signer", group_info_signer)
    app.router.add_get(f"{PREFIX}/faults", faults)
