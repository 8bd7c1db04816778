"""The recorder: every exchange of one check, kept for the report next to the verdict.

A check's recorder receives MIMI exchanges (the :class:`MimiClient` ``observer`` hook) and control
API calls (the :class:`ControlClient` ``observer`` hook). Each entry keeps the exact bytes (base64)
and a decoded view:

* a JSON body (the directory, control API answers) is parsed;
* a binary MIMI body is decoded with the wire struct the check names (:meth:`Recorder.expect`),
  tolerantly, giving ``as_dict()`` plus the leniencies used (each with its AMB- ID), or the decode
  error when even tolerant decoding fails.

:meth:`Recorder.write` stores the transcript as ``transcripts/<check>.json`` under the run's output
dir and returns the path relative to it (the CheckResult's transcript reference).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reference_peer.server.client import Exchange

from .control import ControlExchange

TRANSCRIPT_VERSION = 1
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def transcript_name(check_id: str) -> str:
    """A file name for a check's transcript (node IDs contain '/', '::' and brackets)."""
    return _UNSAFE.sub("_", check_id).strip("_")[:200] + ".json"


def _b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def _json_view(body: bytes, headers: Mapping[str, str]) -> Any:
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if not body or "json" not in content_type.lower():
        return None
    try:
        return {"json": json.loads(body)}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {"error": f"declared JSON but does not parse: {exc}"}


def decoded_view(body: bytes, struct: Any) -> dict[str, Any]:
    """``as_dict()`` of ``struct`` decoded tolerantly from ``body``, with the leniencies used."""
    try:
        decoded = struct.decode_tolerant(body)
    except Exception as exc:  # noqa: BLE001 - any decode failure is recorded, never raised
        return {"struct": struct.__name__, "error": f"{type(exc).__name__}: {exc}"}
    value = decoded.value
    view = value.as_dict() if hasattr(value, "as_dict") else repr(value)
    return {
        "struct": struct.__name__,
        "value": view,
        "leniencies": [
            {"ambiguity": len_.ambiguity, "path": len_.path, "detail": len_.detail} for len_ in decoded.leniencies
        ],
    }


class Recorder:
    """Collects the exchanges of one check; thread-safe (MIMI traffic runs on its own event loop)."""

    def __init__(self, check_id: str, requirements: tuple[str, ...] = ()) -> None:
        self.check_id = check_id
        self.requirements = requirements
        self.entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._expect: list[tuple[str, Any, Any]] = []  # (URL substring, request struct, response struct)
        self.path: Path | None = None

    def expect(self, url_part: str, *, request: Any = None, response: Any = None) -> None:
        """Decode bodies of exchanges whose URL contains ``url_part`` as these wire structs."""
        self._expect.append((url_part, request, response))

    def _structs(self, url: str) -> tuple[Any, Any]:
        for part, request, response in reversed(self._expect):
            if part in url:
                return request, response
        return None, None

    def _append(self, entry: dict[str, Any]) -> None:
        entry["t"] = round(time.monotonic() - self._started, 6)
        with self._lock:
            entry["seq"] = len(self.entries)
            self.entries.append(entry)

    def note(self, text: str, **data: Any) -> None:
        """A free-form step of the check (what it is about to do, what it concluded)."""
        self._append({"kind": "note", "text": text, **({"data": data} if data else {})})

    def record_mimi(self, exchange: Exchange) -> None:
        """The :class:`MimiClient` observer."""
        request_struct, response_struct = self._structs(exchange.url)
        request: dict[str, Any] = {
            "method": exchange.method,
            "url": exchange.url,
            "headers": dict(exchange.request_headers),
            "body_base64": _b64(exchange.request_body),
        }
        if request_struct is not None and exchange.request_body:
            request["decoded"] = decoded_view(exchange.request_body, request_struct)
        response: dict[str, Any] | None = None
        if exchange.status is not None:
            response = {
                "status": exchange.status,
                "headers": dict(exchange.response_headers),
                "body_base64": _b64(exchange.response_body),
            }
            view = _json_view(exchange.response_body, exchange.response_headers)
            if response_struct is not None and exchange.response_body and exchange.status < 300:
                view = decoded_view(exchange.response_body, response_struct)
            if view is not None:
                response["decoded"] = view
        self._append({
            "kind": "mimi",
            "request": request,
            "response": response,
            "error": f"{type(exchange.error).__name__}: {exchange.error}" if exchange.error else None,
            "elapsed": round(exchange.elapsed, 6),
        })

    def record_control(self, exchange: ControlExchange) -> None:
        """The :class:`ControlClient` observer."""
        request: dict[str, Any] = {
            "method": exchange.method,
            "url": exchange.url,
            "body_base64": _b64(exchange.request_body),
        }
        if exchange.request_body:
            request["decoded"] = _json_view(exchange.request_body, {"content-type": "application/json"})
        response = None
        if exchange.status is not None:
            response = {
                "status": exchange.status,
                "headers": dict(exchange.response_headers),
                "body_base64": _b64(exchange.response_body),
            }
            view = _json_view(exchange.response_body, exchange.response_headers)
            if view is not None:
                response["decoded"] = view
        self._append({
            "kind": "control",
            "operation": exchange.operation,
            "request": request,
            "response": response,
            "error": exchange.error,
            "elapsed": round(exchange.elapsed, 6),
        })

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            entries = list(self.entries)
        return {
            "transcriptVersion": TRANSCRIPT_VERSION,
            "check": self.check_id,
            "requirements": list(self.requirements),
            "exchanges": entries,
        }

    def write(self, output_dir: Path) -> str:
        """Write the transcript; return its path relative to ``output_dir``."""
        relative = Path("transcripts") / transcript_name(self.check_id)
        target = output_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.as_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
        self.path = target
        return relative.as_posix()
