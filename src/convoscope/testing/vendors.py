"""A local server that speaks the Vapi, Retell, ElevenLabs and Bland call-list APIs over real HTTP.

``convoscope pull`` pages through a vendor's past calls; what can go wrong there is paging (a cursor
that skips or repeats calls, a lower time bound applied wrongly), authentication and interruption. This
server holds calls per vendor and answers the vendors' own routes, parameters, auth headers and page
shapes, so the real clients run unchanged against it (``--base-url``). It can fail every request after a
given number, to interrupt a pull half-way, and records what was asked::

    with VendorServer() as server:
        server.add("vapi", [vapi_call(i, start) for i in range(250)])
        ...  # convoscope pull vapi --base-url server.url --api-key server.api_key

The call builders make the smallest vendor-native call each adapter accepts, with two turns.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "RecordedCall",
    "VendorServer",
    "bland_call",
    "elevenlabs_conversation",
    "retell_call",
    "spread",
    "vapi_call",
]

_CALL_LENGTH_S = 30.0


def vapi_call(number: int, started_at: datetime) -> dict[str, Any]:
    """A Vapi call object (``GET /call/{id}``) created and started at ``started_at``."""
    ended = started_at + timedelta(seconds=_CALL_LENGTH_S)
    ms = started_at.timestamp() * 1000
    return {
        "id": f"vapi-call-{number:05d}",
        "orgId": "org-test",
        "type": "inboundPhoneCall",
        "status": "ended",
        "assistantId": "asst-test",
        "createdAt": started_at.isoformat().replace("+00:00", "Z"),
        "startedAt": started_at.isoformat().replace("+00:00", "Z"),
        "endedAt": ended.isoformat().replace("+00:00", "Z"),
        "endedReason": "customer-ended-call",
        "cost": 0.05,
        "messages": [
            {
                "role": "bot",
                "message": "Hello.",
                "time": ms + 500,
                "endTime": ms + 1500,
                "secondsFromStart": 0.5,
            },
            {
                "role": "user",
                "message": "Hi.",
                "time": ms + 2000,
                "endTime": ms + 2800,
                "secondsFromStart": 2.0,
            },
        ],
    }


def retell_call(number: int, started_at: datetime) -> dict[str, Any]:
    """A Retell call object (``get-call``), ended and analysed."""
    start_ms = int(started_at.timestamp() * 1000)
    return {
        "call_type": "phone_call",
        "call_id": f"retell-call-{number:05d}",
        "agent_id": "agent-test",
        "call_status": "ended",
        "direction": "inbound",
        "start_timestamp": start_ms,
        "end_timestamp": start_ms + int(_CALL_LENGTH_S * 1000),
        "disconnection_reason": "user_hangup",
        "transcript_object": [
            {"role": "agent", "content": "Hello.", "words": [{"word": "Hello.", "start": 0.5, "end": 1.5}]},
            {"role": "user", "content": "Hi.", "words": [{"word": "Hi.", "start": 2.0, "end": 2.8}]},
        ],
        "call_analysis": {"call_summary": "A greeting.", "call_successful": True},
    }


def elevenlabs_conversation(number: int, started_at: datetime) -> dict[str, Any]:
    """An ElevenLabs conversation (``GET /v1/convai/conversations/{id}``)."""
    return {
        "agent_id": "agent-test",
        "conversation_id": f"conv-{number:05d}",
        "status": "done",
        "transcript": [
            {"role": "agent", "message": "Hello.", "time_in_call_secs": 0},
            {"role": "user", "message": "Hi.", "time_in_call_secs": 2},
        ],
        "metadata": {
            "start_time_unix_secs": int(started_at.timestamp()),
            "call_duration_secs": int(_CALL_LENGTH_S),
            "cost": 100,
            "termination_reason": "Call ended by remote party",
        },
        "analysis": {"call_successful": "success", "transcript_summary": "A greeting."},
        "has_audio": False,
        "has_user_audio": False,
        "has_response_audio": False,
    }


def bland_call(number: int, started_at: datetime) -> dict[str, Any]:
    """A Bland call-details object (``GET /v1/calls/{id}``)."""

    def at(offset_s: float) -> str:
        return (started_at + timedelta(seconds=offset_s)).isoformat()

    return {
        "call_id": f"bland-call-{number:05d}",
        "created_at": at(0),
        "started_at": at(0),
        "call_length": _CALL_LENGTH_S / 60,
        "inbound": True,
        "completed": True,
        "call_ended_by": "USER",
        "price": 0.03,
        "transcripts": [
            {"id": 1, "created_at": at(0.5), "text": "Hello.", "user": "assistant"},
            {"id": 2, "created_at": at(2.0), "text": "Hi.", "user": "user"},
        ],
    }


@dataclass(frozen=True)
class RecordedCall:
    """One request the server answered: method, path, query parameters and JSON body."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int


Route = Callable[["VendorServer", dict[str, str], Any, str], tuple[int, Any]]


def _ms(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000


def _vapi_list(server: VendorServer, query: dict[str, str], body: Any, tail: str) -> tuple[int, Any]:
    calls = sorted(server.calls("vapi"), key=lambda c: _ms(c["createdAt"]), reverse=server.vapi_newest_first)
    bounds: dict[str, Callable[[float, float], bool]] = {
        "createdAtGt": lambda v, b: v > b,
        "createdAtGe": lambda v, b: v >= b,
        "createdAtLt": lambda v, b: v < b,
        "createdAtLe": lambda v, b: v <= b,
    }
    for name, keep in bounds.items():
        if name in query:
            bound = _ms(query[name])
            calls = [c for c in calls if keep(_ms(c["createdAt"]), bound)]
    return 200, calls[: int(query.get("limit", "100"))]


def _retell_list(server: VendorServer, query: dict[str, str], body: Any, tail: str) -> tuple[int, Any]:
    body = body if isinstance(body, dict) else {}
    calls = sorted(server.calls("retell"), key=lambda c: (c["start_timestamp"], c["call_id"]))
    if body.get("sort_order", "descending") == "descending":
        calls.reverse()
    lower = ((body.get("filter_criteria") or {}).get("start_timestamp") or {}).get("lower_threshold")
    if lower is not None:
        calls = [c for c in calls if c["start_timestamp"] >= lower]
    key = body.get("pagination_key")
    if key is not None:
        ids = [c["call_id"] for c in calls]
        if key not in ids:
            return 400, {"error_message": f"unknown pagination_key {key}"}
        calls = calls[ids.index(key) + 1 :]
    return 200, calls[: int(body.get("limit", 1000))]


def _elevenlabs_list(server: VendorServer, query: dict[str, str], body: Any, tail: str) -> tuple[int, Any]:
    if tail.endswith("/audio"):
        audio = server.audio.get(tail.removesuffix("/audio"))
        return (200, audio) if audio is not None else (404, {"detail": "no audio"})
    if tail:
        return _by_id(server.calls("elevenlabs"), "conversation_id", tail)
    conversations = sorted(
        server.calls("elevenlabs"), key=lambda c: c["metadata"]["start_time_unix_secs"], reverse=True
    )
    after = query.get("call_start_after_unix")
    if after is not None:
        conversations = [c for c in conversations if c["metadata"]["start_time_unix_secs"] >= int(after)]
    start = int(query["cursor"].removeprefix("page-at-")) if "cursor" in query else 0
    size = min(int(query.get("page_size", "30")), 100)
    page = conversations[start : start + size]
    more = start + size < len(conversations)
    summaries = [
        {
            "agent_id": c["agent_id"],
            "conversation_id": c["conversation_id"],
            "start_time_unix_secs": c["metadata"]["start_time_unix_secs"],
            "call_duration_secs": c["metadata"]["call_duration_secs"],
            "status": c["status"],
        }
        for c in page
    ]
    return 200, {
        "conversations": summaries,
        "has_more": more,
        "next_cursor": f"page-at-{start + size}" if more else None,
    }


def _bland_list(server: VendorServer, query: dict[str, str], body: Any, tail: str) -> tuple[int, Any]:
    if tail:
        return _by_id(server.calls("bland"), "call_id", tail)
    calls = sorted(
        server.calls("bland"), key=lambda c: c["created_at"], reverse=query.get("ascending") != "true"
    )
    start = int(query.get("from", "0"))
    end = min(int(query.get("to", str(len(calls)))), start + int(query.get("limit", "1000")))
    summaries = [
        {key: c.get(key) for key in ("call_id", "created_at", "call_length", "completed", "inbound")}
        for c in calls[start:end]
    ]
    return 200, {"count": len(calls), "calls": summaries}


def _by_id(calls: Sequence[dict[str, Any]], key: str, wanted: str) -> tuple[int, Any]:
    for call in calls:
        if call[key] == wanted:
            return 200, call
    return 404, {"error": f"{wanted} not found"}


# (method, path prefix) → route; a path below the prefix is passed on as ``tail`` (an object id).
_ROUTES: dict[tuple[str, str], tuple[str, Route]] = {
    ("GET", "/call"): ("vapi", _vapi_list),
    ("POST", "/v2/list-calls"): ("retell", _retell_list),
    ("GET", "/v1/convai/conversations"): ("elevenlabs", _elevenlabs_list),
    ("GET", "/v1/calls"): ("bland", _bland_list),
}


def _authorised(vendor: str, headers: Any, key: str) -> bool:
    if vendor == "elevenlabs":
        return bool(headers.get("xi-api-key") == key)
    if vendor == "bland":
        return bool(headers.get("authorization") == key)
    return bool(headers.get("authorization") == f"Bearer {key}")


class VendorServer:
    """Loopback HTTP server holding calls per vendor and answering their list and get routes."""

    def __init__(self, *, api_key: str = "vendor-test-key", host: str = "127.0.0.1") -> None:
        self.api_key = api_key
        self.fail_after: int | None = None
        """Answer 503 to every request once this many have been answered (an outage mid-pull)."""
        self.requests: list[RecordedCall] = []
        self.audio: dict[str, bytes] = {}
        """ElevenLabs conversation audio (MP3 bytes) by conversation id, served at ``.../{id}/audio``."""
        self.vapi_newest_first = True
        """Vapi's list order (newest first); ``False`` lists oldest first, to check a client copes."""
        self._calls: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._host = host
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add(self, vendor: str, calls: Sequence[dict[str, Any]]) -> None:
        """Make ``calls`` (vendor-native objects) listable from ``vendor``'s routes."""
        with self._lock:
            self._calls.setdefault(vendor, []).extend(calls)

    def calls(self, vendor: str) -> list[dict[str, Any]]:
        """The calls ``vendor`` holds."""
        with self._lock:
            return list(self._calls.get(vendor, []))

    @property
    def url(self) -> str:
        """The base URL to pass as ``--base-url``."""
        if self._httpd is None:
            raise RuntimeError("the vendor server is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def _answer(self, method: str, raw_path: str, headers: Any, raw_body: bytes) -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = None
        status, answer = self._route(method, parts.path, query, body, headers)
        with self._lock:
            self.requests.append(RecordedCall(method, parts.path, query, body, status))
        return status, answer

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any, headers: Any
    ) -> tuple[int, Any]:
        with self._lock:
            served = sum(1 for r in self.requests if r.status < 500)
        if self.fail_after is not None and served >= self.fail_after:
            return 503, {"error": "service unavailable"}
        for (route_method, prefix), (vendor, handler) in _ROUTES.items():
            if method != route_method or not (path == prefix or path.startswith(prefix + "/")):
                continue
            if not _authorised(vendor, headers, self.api_key):
                return 401, {"error": "invalid API key"}
            try:
                return handler(self, query, body, unquote(path[len(prefix) + 1 :]))
            except (KeyError, ValueError, TypeError) as exc:
                return 400, {"error": f"bad request: {exc}"}
        return 404, {"error": f"no route {method} {path}"}

    def start(self) -> VendorServer:
        """Bind a free loopback port and serve in a daemon thread until :meth:`stop`."""
        if self._httpd is not None:
            return self
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                status, answer = server._answer(
                    self.command, self.path, self.headers, self.rfile.read(length)
                )
                binary = isinstance(answer, bytes)
                payload = answer if binary else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "audio/mpeg" if binary else "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _reply

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: a test reads ``server.requests`` instead of a log."""

        self._httpd = ThreadingHTTPServer((self._host, 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True, name="vendor-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> VendorServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def spread(count: int, *, start: datetime | None = None, step_s: float = 60.0) -> list[datetime]:
    """``count`` call start times ``step_s`` apart from ``start`` (default 2025-01-06 09:00 UTC)."""
    first = start or datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    return [first + timedelta(seconds=i * step_s) for i in range(count)]
