"""The store-and-forward server's adapter on the adapter kit: the kit's verbs onto the server's own
client-to-server API (examples/store_and_forward/server.py, ``API``: POST, JSON, bytes as base64).

The kit keeps every client's MLS state and serves the suite's control API; this class only says how a
client of this server registers, uploads KeyPackages, hands a request for a room to the server and
fetches what the server stored for it. Run by the kit::

    python -m conformance.adapterkit --transport examples.store_and_forward.adapter:StoreAndForwardTransport \\
        --transport-arg api=http://127.0.0.1:8481 --transport-arg domain=saf.example \\
        --listen 127.0.0.1:8480 --state STATE_DIR
"""

from __future__ import annotations

import base64

import httpx

from conformance.adapterkit import Delivery, ServerAnswer, Transport


class ServerRefused(RuntimeError):
    """The server answered a client-to-server call with an error."""


class StoreAndForwardTransport(Transport):
    roles = ("follower",)

    def __init__(self, api: str = "http://127.0.0.1:8481", domain: str = "saf.example") -> None:
        self.domain = domain
        self.api = api.rstrip("/")
        self._http: httpx.AsyncClient | None = None

    async def _call(self, path: str, **body) -> dict:
        if self._http is None:  # made on first use, inside the kit's event loop
            self._http = httpx.AsyncClient(base_url=self.api, timeout=30.0, trust_env=False)
        reply = await self._http.post(path, json=body)
        if reply.status_code != 200:
            raise ServerRefused(f"{path}: HTTP {reply.status_code} {reply.text[:300]}")
        return reply.json()

    async def _forward(self, endpoint: str, room: str, client: str, request: bytes, **extra) -> ServerAnswer:
        answer = await self._call("/forward", endpoint=endpoint, room=room, client=client,
                                  body=base64.b64encode(request).decode("ascii"), **extra)
        return ServerAnswer(answer["status"], base64.b64decode(answer["body"]), answer["detail"])

    # -- users and clients ---------------------------------------------------------------------

    async def register_user(self, user: str, *, profile: dict | None = None, search_policy: str | None = None,
                            consent_mode: str | None = None) -> None:
        # This server keeps no profile (it does not serve identifierQuery) and gates nothing on consent.
        if consent_mode not in (None, "none"):
            raise ValueError(f"this server has no consent mode {consent_mode!r}")  # the kit answers 422
        await self._call("/users", user=user)

    async def delete_user(self, user: str) -> None:
        await self._call("/users/delete", user=user)

    async def register_client(self, user: str, client: str) -> None:
        await self._call("/clients", user=user, client=client)

    async def delete_client(self, client: str) -> None:
        await self._call("/clients/delete", client=client)

    async def upload_key_packages(self, client: str, key_packages: list[bytes], *, last_resort: bytes | None = None,
                                  replace: bool = False) -> int:
        answer = await self._call(
            "/keypackages", client=client, replace=replace,
            keyPackages=[base64.b64encode(kp).decode("ascii") for kp in key_packages],
            lastResort=base64.b64encode(last_resort).decode("ascii") if last_resort else None)
        return answer["held"]

    # -- requests for a room, handed to the server, which forwards them to the room's hub ----------

    async def send_update(self, room: str, client: str, request: bytes) -> ServerAnswer:
        return await self._forward("update", room, client, request)

    async def submit_message(self, room: str, client: str, request: bytes) -> ServerAnswer:
        return await self._forward("submitMessage", room, client, request)

    async def key_material(self, room: str, client: str, target_user: str, request: bytes) -> ServerAnswer:
        return await self._forward("keyMaterial", room, client, request, target=target_user)

    async def group_info(self, room: str, client: str, request: bytes) -> ServerAnswer:
        return await self._forward("groupInfo", room, client, request)

    # -- what the server stored for a client ------------------------------------------------------

    async def fetch(self, client: str) -> list[Delivery]:
        answer = await self._call("/fetch", client=client)
        return [Delivery(item["room"], base64.b64decode(item["fanout"])) for item in answer["deliveries"]]
