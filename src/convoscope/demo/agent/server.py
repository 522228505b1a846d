"""The reference agent on the wire: OpenAI-compatible chat, a JSON webhook, WebSockets, and its tools.

One app serves the protocols the simulator's connectors speak, all backed by the same
:class:`~.policy.ReferencePolicy`, so a conversation reads the same whichever way it is carried:

* ``POST /v1/chat/completions``: OpenAI's chat protocol (``messages``, ``tools``; ``stream`` too),
  answered with ``content`` and/or ``tool_calls`` and ``finish_reason`` ``stop`` or ``tool_calls``.
  Stateless: the state is rebuilt from ``messages`` each time. ``GET /v1/models`` lists the model.
* ``POST /webhook``: ``{"messages": [...]}`` → ``{"reply", "tool_calls": [{"id", "name", "arguments"}],
  "end_call"}``, stateless the same way.
* ``/ws``: a WebSocket session that keeps its state; the agent greets on connect with a ``reply`` frame,
  the client sends ``{"type": "message", "text"}`` and ``{"type": "tool_result", "tool_call_id",
  "content"}`` frames, and a reply follows once every pending tool call has its result.
* ``/twilio``: the voice front, a Twilio Media Streams WebSocket (μ-law audio, ``mark``, ``clear``) that
  greets, detects the caller's turns, answers in espeak-ng speech and has its own faults; see
  :mod:`.voice` (its options are :class:`~.voice.VoiceOptions`).
* ``POST /tools/{name}``: the :class:`~.tools.ReferenceTools` backend (JSON arguments → JSON result), for
  a simulator that passes tool calls through.

Faults are the server's plus those the request's model names (``model`` in the body, or ``?model=`` on
the webhook and WebSocket). Every handler is async and shares nothing mutable but the tool backend's
booking table, so hundreds of conversations run at once; ``slow_tool`` and ``silent`` wait with
``asyncio.sleep``, never a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import date
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from .faults import BEHAVIOUR_FAULTS, DEFAULT_MODEL, Fault, UnknownFault, parse_model
from .loopback import LoopbackServer
from .policy import AgentTurn, ConversationState, ReferencePolicy
from .tools import ReferenceTools, UnknownTool
from .voice import VoiceAgent, VoiceOptions

__all__ = ["ReferenceAgentServer", "create_app"]

_CHARS_PER_TOKEN = 4
_WS_INTERNAL_ERROR = 1011
_WS_POLICY_VIOLATION = 1008


def _error(status: int, message: str, *, param: str | None = None) -> JSONResponse:
    """An error in OpenAI's shape, on every endpoint, so one client parses them all."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    if status == 404:
        kind = "not_found_error"
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": param, "code": None}}, status_code=status
    )


class _BadRequest(Exception):
    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.response = _error(status, message, param=param)


def _webhook_calls(turn: AgentTurn) -> list[dict[str, Any]]:
    return [{"id": call.id, "name": call.name, "arguments": call.arguments} for call in turn.tool_calls]


def _tokens(text: str) -> int:
    return max(1, len(text) // _CHARS_PER_TOKEN)


class _Agent:
    """The handlers, over one server configuration."""

    def __init__(
        self,
        *,
        faults: frozenset[Fault],
        slow_s: float,
        today: date | None,
        tools: ReferenceTools,
        silent_max_s: float,
    ) -> None:
        self.faults = faults
        self.slow_s = slow_s
        self.today = today
        self.tools = tools
        self.silent_max_s = silent_max_s

    # ----- shared steps

    def faults_for(self, model: object) -> frozenset[Fault]:
        if model is not None and not isinstance(model, str):
            raise _BadRequest(400, "'model' must be a string", "model")
        try:
            return self.faults | parse_model(model)
        except UnknownFault as error:
            raise _BadRequest(400, str(error), "model") from None

    async def body_of(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise _BadRequest(400, "the request body is not JSON") from None
        if not isinstance(body, dict):
            raise _BadRequest(400, "the request body must be a JSON object")
        return body

    @staticmethod
    def messages_of(body: Mapping[str, Any]) -> list[dict[str, Any]]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise _BadRequest(400, "'messages' must be a list of message objects", "messages")
        return messages

    async def hang(self, request: Request) -> Response:
        """``silent``: hold the request open, answering nothing, until the client gives up."""
        # The body is read, so the next ASGI message is the client's disconnect, whenever it comes.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(request.receive(), timeout=self.silent_max_s)
        return Response(status_code=504)

    async def think(self, faults: frozenset[Fault], turn: AgentTurn) -> None:
        """``slow_tool``: the reply that follows a tool result is held back."""
        if Fault.SLOW_TOOL in faults and turn.after_tool_result and self.slow_s > 0:
            await asyncio.sleep(self.slow_s)

    def policy(self, faults: frozenset[Fault]) -> ReferencePolicy:
        return ReferencePolicy(faults, today=self.today)

    # ----- OpenAI chat

    async def chat_completions(self, request: Request) -> Response:
        try:
            body = await self.body_of(request)
            model = body.get("model") or DEFAULT_MODEL
            faults = self.faults_for(model)
            messages = self.messages_of(body)
        except _BadRequest as bad:
            return bad.response
        if Fault.SILENT in faults:
            return await self.hang(request)
        if Fault.HTTP_500 in faults:
            return _error(500, "the reference agent failed (http_500 fault)")
        if Fault.MALFORMED in faults:
            return JSONResponse({"reply": "Hello! (malformed fault: this is not a chat completion)"})
        turn = self.policy(faults).respond(messages)
        await self.think(faults, turn)
        completion_id = f"chatcmpl-ref-{uuid.uuid4().hex}"
        if body.get("stream"):
            return StreamingResponse(
                self._chunks(completion_id, str(model), turn), media_type="text/event-stream"
            )
        prompt = sum(len(json.dumps(m.get("content"))) for m in messages)
        completion = len(turn.text or "") + sum(
            len(call.openai()["function"]["arguments"]) for call in turn.tool_calls
        )
        prompt_tokens, completion_tokens = (
            max(1, prompt // _CHARS_PER_TOKEN),
            max(1, completion // _CHARS_PER_TOKEN),
        )
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": turn.openai_message(),
                        "finish_reason": "tool_calls" if turn.tool_calls else "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    @staticmethod
    async def _chunks(completion_id: str, model: str, turn: AgentTurn) -> AsyncIterator[str]:
        """The turn as OpenAI's server-sent chunks: the role, the text word by word, the calls, the end."""
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            payload = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(payload)}\n\n"

        yield chunk({"role": "assistant", "content": ""})
        words = (turn.text or "").split(" ")
        for number, word in enumerate(words if turn.text else []):
            yield chunk({"content": word if number == 0 else " " + word})
        for index, call in enumerate(turn.tool_calls):
            yield chunk({"tool_calls": [{"index": index, **call.openai()}]})
        yield chunk({}, "tool_calls" if turn.tool_calls else "stop")
        yield "data: [DONE]\n\n"

    async def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": DEFAULT_MODEL, "object": "model", "owned_by": "convoscope"}],
        }

    # ----- webhook

    async def webhook(self, request: Request) -> Response:
        try:
            body = await self.body_of(request)
            faults = self.faults_for(body.get("model") or request.query_params.get("model"))
            messages = self.messages_of(body)
        except _BadRequest as bad:
            return bad.response
        if Fault.SILENT in faults:
            return await self.hang(request)
        if Fault.HTTP_500 in faults:
            return _error(500, "the reference agent failed (http_500 fault)")
        if Fault.MALFORMED in faults:
            return PlainTextResponse("<html><body>502 Bad Gateway (malformed fault)</body></html>")
        turn = self.policy(faults).respond(messages)
        await self.think(faults, turn)
        return JSONResponse(
            {"reply": turn.text or "", "tool_calls": _webhook_calls(turn), "end_call": turn.end_call}
        )

    # ----- WebSocket

    async def websocket(self, websocket: WebSocket) -> None:
        try:
            faults = self.faults_for(websocket.query_params.get("model"))
        except _BadRequest as bad:
            await websocket.close(code=_WS_POLICY_VIOLATION, reason=str(bad)[:120])
            return
        await websocket.accept()
        try:
            if Fault.HTTP_500 in faults:
                await websocket.close(code=_WS_INTERNAL_ERROR, reason="internal error (http_500 fault)")
                return
            if Fault.SILENT in faults or Fault.MALFORMED in faults:
                # Where the greeting should come, and after every frame: nothing, or something that is
                # not a reply frame.
                while True:
                    if Fault.MALFORMED in faults:
                        await websocket.send_text("this is not a reply frame (malformed fault)")
                    await websocket.receive_text()
            await self._session(websocket, faults)
        except WebSocketDisconnect:
            return

    async def _session(self, websocket: WebSocket, faults: frozenset[Fault]) -> None:
        policy = self.policy(faults)
        state = ConversationState()
        if not await self._send(websocket, faults, policy.advance(state, [])):
            return
        results: list[dict[str, Any]] = []
        while True:
            try:
                frame = json.loads(await websocket.receive_text())
            except ValueError:
                await websocket.send_json({"type": "error", "message": "frames must be JSON"})
                continue
            kind = frame.get("type") if isinstance(frame, dict) else None
            if kind == "message":
                inputs = [{"role": "user", "content": str(frame.get("text") or "")}]
            elif kind == "tool_result":
                results.append(
                    {
                        "role": "tool",
                        "tool_call_id": str(frame.get("tool_call_id")),
                        "content": frame.get("content"),
                    }
                )
                answered = {result["tool_call_id"] for result in results}
                if not set(state.pending) <= answered:
                    continue
                inputs, results = results, []
            else:
                await websocket.send_json({"type": "error", "message": f"unknown frame type {kind!r}"})
                continue
            if not await self._send(websocket, faults, policy.advance(state, inputs)):
                return

    async def _send(self, websocket: WebSocket, faults: frozenset[Fault], turn: AgentTurn) -> bool:
        """Send a reply frame; answers whether the conversation goes on (it ends with the call)."""
        await self.think(faults, turn)
        await websocket.send_json(
            {
                "type": "reply",
                "text": turn.text or "",
                "tool_calls": _webhook_calls(turn),
                "end_call": turn.end_call,
            }
        )
        if turn.end_call:
            await websocket.close(code=1000)
            return False
        return True

    # ----- tools

    async def tool(self, name: str, request: Request) -> Response:
        try:
            arguments = await self.body_of(request)
            return JSONResponse(self.tools.execute(name, arguments))
        except _BadRequest as bad:
            return bad.response
        except UnknownTool as error:
            return _error(404, str(error), param="name")


def create_app(
    faults: Iterable[Fault | str] = (),
    *,
    slow_s: float = 2.0,
    today: date | None = None,
    tools: ReferenceTools | None = None,
    silent_max_s: float = 600.0,
    voice: VoiceOptions | None = None,
) -> FastAPI:
    """The reference agent's ASGI app. ``faults`` apply to every request (on top of the model name's);
    ``slow_s`` is the ``slow_tool`` delay; ``today`` pins relative dates; ``tools`` is the backend of
    ``/tools/{name}`` (a fresh :class:`ReferenceTools` by default); a ``silent`` request is answered
    504 after ``silent_max_s`` if its client never gives up. ``voice`` configures ``/twilio`` (whose
    policy also has the behaviour faults among ``faults``)."""
    agent = _Agent(
        faults=frozenset(Fault(fault) for fault in faults),
        slow_s=slow_s,
        today=today,
        tools=tools or ReferenceTools(today=today),
        silent_max_s=silent_max_s,
    )
    app = FastAPI(title="convoscope reference agent", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_api_route("/v1/chat/completions", agent.chat_completions, methods=["POST"])
    app.add_api_route("/v1/models", agent.models, methods=["GET"])
    app.add_api_route("/webhook", agent.webhook, methods=["POST"])
    app.add_api_websocket_route("/ws", agent.websocket)
    app.add_api_route("/tools/{name}", agent.tool, methods=["POST"])
    voice_agent = VoiceAgent(
        voice or VoiceOptions(), tools=agent.tools, today=today, policy_faults=agent.faults & BEHAVIOUR_FAULTS
    )
    app.add_api_websocket_route("/twilio", voice_agent.websocket)
    app.add_api_route("/healthz", _healthz, methods=["GET"])
    app.state.agent = agent
    app.state.voice = voice_agent
    return app


async def _healthz() -> dict[str, str]:
    return {"status": "ok"}


class ReferenceAgentServer:
    """The reference agent served on a free loopback port in a background thread::

        with ReferenceAgentServer(faults=[Fault.LOOPS]) as agent:
            httpx.post(f"{agent.url}/v1/chat/completions", json={"model": "reference-agent", "messages": []})

    ``url`` is the root (``http://127.0.0.1:PORT``); ``openai_url`` (``…/v1``, the base URL an OpenAI
    client takes), ``webhook_url``, ``ws_url``, ``twilio_url`` and ``tools_url`` name each endpoint. The
    arguments are :func:`create_app`'s; ``tools`` is exposed so a test can run the same backend in process.
    """

    def __init__(
        self,
        faults: Iterable[Fault | str] = (),
        *,
        slow_s: float = 2.0,
        today: date | None = None,
        tools: ReferenceTools | None = None,
        silent_max_s: float = 600.0,
        voice: VoiceOptions | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.faults = frozenset(Fault(fault) for fault in faults)
        self.tools = tools or ReferenceTools(today=today)
        self.app = create_app(
            self.faults, slow_s=slow_s, today=today, tools=self.tools, silent_max_s=silent_max_s, voice=voice
        )
        self._server = LoopbackServer(self.app, host=host, name="reference-agent")

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhook"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._server.host}:{self._server.port}/ws"

    @property
    def twilio_url(self) -> str:
        return f"ws://{self._server.host}:{self._server.port}/twilio"

    @property
    def tools_url(self) -> str:
        return f"{self.url}/tools"

    def start(self) -> ReferenceAgentServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> ReferenceAgentServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
