"""A local server that speaks the OpenAI chat-completions protocol over real HTTP on loopback.

Judge metrics talk to any OpenAI-compatible endpoint, and the things that go wrong with such endpoints
(replies that are not JSON, missing fields, rate limits, server errors, slow answers, servers that do
not support structured output) are what the judge client must survive. This server reproduces each of
them on demand, answers from a script matched against the request, and records every request so a
test can assert exactly what was sent. It runs uvicorn in a background thread::

    with FakeOpenAIServer() as server:
        server.add(json_reply({"verdict": "pass"}), contains="refund")
        client = JudgeClient(JudgeConfig(base_url=server.url, model="fake"))
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = [
    "FakeOpenAIServer",
    "RecordedRequest",
    "Reply",
    "StructuredOutput",
    "json_reply",
]

StructuredOutput = Literal["json_schema", "json_object", "none"]
"""The most a server supports: JSON-schema output, JSON mode only, or no ``response_format`` at all."""

_STARTUP_TIMEOUT_S = 10.0
_CHARS_PER_TOKEN = 4  # a rough count for scripted replies that name no usage


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    ``content`` becomes the assistant message of a 200 reply. A ``status`` other than 200 sends an
    OpenAI-style error body (or ``raw_body`` verbatim) with ``headers`` (``Retry-After`` for a 429).
    ``delay_s`` holds the answer back, so a client timeout can fire. ``usage`` overrides the token
    counts, which default to a length-based estimate. ``raw_body`` replaces the whole body (a 200 that is
    not JSON, an error in another shape).
    """

    content: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    raw_body: str | None = None
    usage: tuple[int, int] | None = None
    refusal: str | None = None
    """A model's refusal: the message then has no content, as structured-output refusals do."""


def json_reply(data: Any, **options: Any) -> Reply:
    """A 200 reply whose assistant content is ``data`` serialised as JSON."""
    return Reply(content=json.dumps(data), **options)


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server received it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The chat messages sent."""
        messages = self.body.get("messages")
        return list(messages) if isinstance(messages, list) else []

    @property
    def text(self) -> str:
        """Every message content joined, for substring matching."""
        return "\n".join(str(message.get("content", "")) for message in self.messages)


Responder = Callable[[RecordedRequest], Reply]


@dataclass
class _Rule:
    contains: str | None
    when: Callable[[RecordedRequest], bool] | None
    replies: list[Reply | Responder]
    served: int = 0

    def matches(self, request: RecordedRequest) -> bool:
        if self.contains is not None and self.contains not in request.text:
            return False
        return self.when is None or self.when(request)

    def next_reply(self, request: RecordedRequest) -> Reply:
        """Replies are used in order; the last one repeats for every later request."""
        chosen = self.replies[min(self.served, len(self.replies) - 1)]
        self.served += 1
        return chosen if isinstance(chosen, Reply) else chosen(request)


class FakeOpenAIServer:
    """Loopback ``/v1/chat/completions`` with scripted answers.

    ``add`` appends a rule; the first rule whose ``contains`` substring (anywhere in the messages) and
    ``when`` predicate both match answers. Unmatched requests get ``default`` (a 500 error unless
    set), so a test never passes on an answer it did not script. ``structured_output`` says what
    ``response_format`` types the server accepts; any other is rejected with a 400 naming the
    parameter, as servers without structured output do.
    """

    def __init__(
        self,
        *,
        structured_output: StructuredOutput = "json_schema",
        default: Reply | Responder | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.structured_output = structured_output
        self.default: Reply | Responder = default or Reply(status=500, raw_body='{"error": "unscripted"}')
        self.requests: list[RecordedRequest] = []
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._host = host
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0
        self._in_flight = 0
        self.max_in_flight = 0
        """The most requests the server was answering at once (for concurrency bounds)."""

    # ----- script

    def add(
        self,
        replies: Reply | Responder | Sequence[Reply | Responder],
        *,
        contains: str | None = None,
        when: Callable[[RecordedRequest], bool] | None = None,
    ) -> None:
        """Answer matching requests with ``replies`` (one, a list used in order, or a function)."""
        listed = [replies] if isinstance(replies, Reply) or callable(replies) else list(replies)
        if not listed:
            raise ValueError("a rule needs at least one reply")
        with self._lock:
            self._rules.append(_Rule(contains=contains, when=when, replies=listed))

    def clear(self) -> None:
        """Forget the script, the recorded requests and the in-flight peak."""
        with self._lock:
            self._rules.clear()
            self.requests.clear()
            self.max_in_flight = 0

    def _choose(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            for rule in self._rules:
                if rule.matches(request):
                    return rule.next_reply(request)
            default = self.default
        return default if isinstance(default, Reply) else default(request)

    # ----- protocol

    def _rejects(self, body: dict[str, Any]) -> str | None:
        response_format = body.get("response_format")
        if response_format is None:
            return None
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        accepted = {
            "json_schema": {"json_schema", "json_object", "text"},
            "json_object": {"json_object", "text"},
        }
        if kind in accepted.get(self.structured_output, {"text"}):
            return None
        return f"response_format type {kind!r} is not supported by this model"

    async def _completions(self, request: Request) -> Response:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            return await self._answer(request)
        finally:
            with self._lock:
                self._in_flight -= 1

    async def _answer(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "request body is not JSON", param=None)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "'messages' is required", param="messages")
        recorded = RecordedRequest(
            path=request.url.path,
            headers={key.lower(): value for key, value in request.headers.items()},
            body=body,
            received_at=time.monotonic(),
        )
        rejected = self._rejects(body)
        if rejected is not None:
            with self._lock:
                self.requests.append(recorded)
            return _error(400, rejected, param="response_format")
        reply = self._choose(recorded)
        if reply.delay_s > 0:
            await asyncio.sleep(reply.delay_s)
        if reply.status != 200:
            if reply.raw_body is not None:
                return PlainTextResponse(reply.raw_body, status_code=reply.status, headers=reply.headers)
            return _error(reply.status, f"scripted status {reply.status}", param=None, headers=reply.headers)
        if reply.raw_body is not None:
            return PlainTextResponse(reply.raw_body, headers=reply.headers)
        return JSONResponse(self._completion(body, reply), headers=reply.headers)

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        with self._lock:
            self._counter += 1
            number = self._counter
        content = reply.content or ""
        if reply.usage is not None:
            prompt_tokens, completion_tokens = reply.usage
        else:
            prompt_chars = sum(len(str(m.get("content", ""))) for m in body["messages"])
            prompt_tokens = max(1, prompt_chars // _CHARS_PER_TOKEN)
            completion_tokens = max(1, len(content) // _CHARS_PER_TOKEN)
        return {
            "id": f"chatcmpl-fake-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None if reply.refusal else content,
                        "refusal": reply.refusal,
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    # ----- lifecycle

    @property
    def url(self) -> str:
        """The base URL clients use (it ends in ``/v1``, as OpenAI's does)."""
        if self._socket is None:
            raise RuntimeError("the server is not started")
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAIServer:
        """Bind a free loopback port and serve in a daemon thread until :meth:`stop`."""
        if self._server is not None:
            return self
        app = Starlette(routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, 0))
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="fake-openai"
        )
        self._socket, self._server, self._thread = sock, server, thread
        thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=_STARTUP_TIMEOUT_S)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = None
        self._socket = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _error(
    status: int, message: str, *, param: str | None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error in OpenAI's shape, so clients parse it the way they parse the real one."""
    kind = (
        "rate_limit_error" if status == 429 else "invalid_request_error" if status < 500 else "server_error"
    )
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": param, "code": None}},
        status_code=status,
        headers=headers,
    )
