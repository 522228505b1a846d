"""Small but real agents on loopback for the connector tests: an ASGI app under uvicorn and a WebSocket
server, each in its own thread with its own event loop, so the connectors under test cross real sockets
and real protocol stacks (nothing is patched).

Both run the same scripted agent (:func:`agent_turn`): it greets when nothing has been said, calls a
``get_weather`` tool when asked about the weather, answers from the tool's result, hangs up on "bye" and
otherwise echoes. The first path segment picks a misbehaviour, so one server serves every test:

* HTTP ``/{behaviour}/v1/chat/completions`` (OpenAI), ``/{behaviour}/webhook``, ``/{behaviour}/ask``
  (the recipe's example protocol in docs/simulation-connectors.md): ``ok``, ``slow`` (answers after
  :data:`SLOW_S`), ``fail`` (HTTP 500), ``garbage`` (a non-JSON 200), ``shape`` (JSON of the wrong shape),
  ``badargs`` (tool arguments that are not JSON), ``strargs`` (webhook arguments as JSON text).
* WebSocket ``/{behaviour}``: ``greet`` (greets on connect), ``quiet`` (waits for the caller), ``slow``
  (never replies), ``garbage``, ``binary``, ``wrongtype`` (a frame that is not a reply), ``badargs``,
  ``hangup`` (closes the socket on the first line), ``reject`` (refuses the handshake with 403).
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

SLOW_S = 5.0
"""How long the slow HTTP agent thinks: far past every test's timeout."""

GREETING = "Hello! How can I help you today?"


def free_port() -> int:
    """A loopback port free right now (for a server about to listen on it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port bound but never listening, for as long as the block runs: an agent that is down.
    Holding it bound keeps another process from starting to listen there in the meantime."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def agent_turn(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]], bool]:
    """The scripted agent: ``(text, tool calls as {id, name, arguments: dict}, end_call)``."""
    spoken = [message for message in messages if message.get("role") != "system"]
    if not spoken:
        return GREETING, [], False
    last = spoken[-1]
    if last["role"] == "tool":
        return f"The weather is {last['content']}.", [], False
    text = str(last.get("content") or "")
    if text.lower().startswith("weather in "):
        city = text[len("weather in ") :]
        return (
            None,
            [{"id": f"call_{len(spoken)}", "name": "get_weather", "arguments": {"city": city}}],
            False,
        )
    if text.lower() == "bye":
        return "Goodbye!", [], True
    return f"You said: {text}", [], False


@dataclass
class Seen:
    """One request as the HTTP agent received it."""

    path: str
    headers: dict[str, str]
    body: Any
    client_port: int


@dataclass
class HttpAgent:
    """The ASGI agent; ``seen`` keeps every request for the tests to inspect."""

    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        chunks = []
        while True:
            event = await receive()
            chunks.append(event.get("body", b""))
            if not event.get("more_body"):
                break
        raw = b"".join(chunks)
        body = orjson.loads(raw) if raw else None
        headers = {key.decode().lower(): value.decode() for key, value in scope["headers"]}
        path: str = scope["path"]
        self.seen.append(Seen(path=path, headers=headers, body=body, client_port=scope["client"][1]))
        behaviour = path.strip("/").split("/")[0]
        if behaviour == "slow":
            # Think for SLOW_S, or until the client gives up (its disconnect is the next event): the
            # handler never outlives the test that called it, so the server shuts down clean.
            try:
                async with asyncio.timeout(SLOW_S):
                    while (await receive())["type"] != "http.disconnect":
                        pass
                return
            except TimeoutError:
                pass
        if behaviour == "fail":
            await _respond(send, 500, b"agent crashed: boom", "text/plain")
            return
        if behaviour == "garbage":
            await _respond(send, 200, b"<html>surely not JSON</html>", "text/html")
            return
        if behaviour == "shape":
            await _respond(send, 200, b'{"unexpected": true}')
            return
        if path.endswith("/chat/completions"):
            answer = _chat_completion(body["messages"], bad_arguments=behaviour == "badargs")
        elif path.endswith("/webhook"):
            answer = _webhook_answer(body["messages"], behaviour)
        elif path.endswith("/ask"):
            answer = {"answer": f"You asked: {body['text']}"}
        else:
            await _respond(send, 404, b"no such endpoint", "text/plain")
            return
        await _respond(send, 200, orjson.dumps(answer))


async def _respond(send: Any, status: int, body: bytes, content_type: str = "application/json") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _chat_completion(messages: list[dict[str, Any]], *, bad_arguments: bool) -> dict[str, Any]:
    text, calls, _ = agent_turn(messages)
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = [
            {
                "id": call["id"],
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": '{"city": Paris'
                    if bad_arguments
                    else orjson.dumps(call["arguments"]).decode(),
                },
            }
            for call in calls
        ]
    prompt = 10 * len(messages)
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": 7, "total_tokens": prompt + 7},
    }


def _webhook_answer(messages: list[dict[str, Any]], behaviour: str) -> dict[str, Any]:
    text, calls, end_call = agent_turn(messages)
    for call in calls:
        if behaviour == "badargs":
            call["arguments"] = "[1, 2"
        elif behaviour == "strargs":
            call["arguments"] = orjson.dumps(call["arguments"]).decode()
    return {"reply": text, "tool_calls": calls, "end_call": end_call}


def serve_http_agent() -> Iterator[HttpAgent]:
    """The HTTP agent under uvicorn in a thread, for as long as the generator is open."""
    agent = HttpAgent()
    port = free_port()
    config = uvicorn.Config(
        agent,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        backlog=2048,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    agent.url = f"http://127.0.0.1:{port}"
    try:
        yield agent
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class WebSocketAgent:
    """The WebSocket agent; ``handshakes`` keeps every opening request's headers."""

    url: str = ""
    handshakes: list[dict[str, str]] = field(default_factory=list)

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes.append({key.lower(): value for key, value in request.headers.raw_items()})
        if request.path.startswith("/reject"):
            return connection.respond(403, "no entry\n")
        return None

    async def handler(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        behaviour = connection.request.path.strip("/")
        history: list[dict[str, Any]] = []
        pending: set[str] = set()
        if behaviour == "greet":
            await connection.send(_reply_frame(*agent_turn(history)))
        async for data in connection:
            frame = orjson.loads(data)
            if frame["type"] == "message":
                history.append({"role": "user", "content": frame["text"]})
            else:
                history.append(
                    {"role": "tool", "tool_call_id": frame["tool_call_id"], "content": frame["content"]}
                )
                pending.discard(frame["tool_call_id"])
                if pending:  # one reply per batch of tool results
                    continue
            if behaviour == "slow":
                continue
            if behaviour == "garbage":
                await connection.send("this is not json")
            elif behaviour == "binary":
                await connection.send(b"\x00\x01binary")
            elif behaviour == "wrongtype":
                await connection.send(orjson.dumps({"type": "typing"}).decode())
            elif behaviour == "hangup":
                await connection.close(1011, "agent crashed")
                return
            else:
                text, calls, end_call = agent_turn(history)
                pending = {call["id"] for call in calls}
                if behaviour == "badargs":
                    for call in calls:
                        call["arguments"] = "{oops"
                await connection.send(_reply_frame(text, calls, end_call))


def _reply_frame(text: str | None, calls: list[dict[str, Any]], end_call: bool) -> str:
    return orjson.dumps({"type": "reply", "text": text, "tool_calls": calls, "end_call": end_call}).decode()


def serve_websocket_agent() -> Iterator[WebSocketAgent]:
    """The WebSocket agent on its own event loop in a thread, for as long as the generator is open."""
    agent = WebSocketAgent()

    async def main(stop: asyncio.Event, ready: threading.Event) -> None:
        async with serve(
            agent.handler, "127.0.0.1", 0, process_request=agent.process_request, backlog=2048
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            agent.url = f"ws://127.0.0.1:{port}"
            ready.set()
            await stop.wait()

    with _loop_thread(main):
        yield agent


@dataclass
class DroppingAgent:
    """A webhook agent over raw HTTP/1.1 that keeps connections alive, then drops the *second* request
    on a connection without answering: exactly what a client sees when it reuses a kept-alive
    connection as the server's idle timeout closes it. Under ``/always`` it drops every request."""

    url: str = ""
    connections: int = 0
    requests: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                body = await reader.readexactly(int(length.group(1)) if length else 0)
                self.requests += 1
                if served or head.split(b" ")[1].startswith(b"/always"):
                    return  # the connection closes with the request unanswered
                served += 1
                answer = orjson.dumps(_webhook_answer(orjson.loads(body)["messages"], "ok"))
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
                    % len(answer)
                    + answer
                )
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()


def serve_dropping_agent() -> Iterator[DroppingAgent]:
    """The :class:`DroppingAgent` on its own event loop in a thread."""
    agent = DroppingAgent()

    async def main(stop: asyncio.Event, ready: threading.Event) -> None:
        server = await asyncio.start_server(agent.handle, "127.0.0.1", 0)
        async with server:
            agent.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            ready.set()
            await stop.wait()

    with _loop_thread(main):
        yield agent


@contextmanager
def _loop_thread(main: Callable[[asyncio.Event, threading.Event], Awaitable[None]]) -> Iterator[None]:
    """Run ``main(stop, ready)`` on a fresh event loop in a thread: the block starts once ``ready`` is
    set and, when it ends, ``stop`` is set and the thread joined."""
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stops: list[asyncio.Event] = []

    async def run() -> None:
        stops.append(asyncio.Event())
        await main(stops[0], ready)

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(20), "the agent did not start"
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stops[0].set)
        thread.join(timeout=10)
        loop.close()


__all__ = [
    "GREETING",
    "SLOW_S",
    "DroppingAgent",
    "HttpAgent",
    "Seen",
    "WebSocketAgent",
    "agent_turn",
    "free_port",
    "refusing_port",
    "serve_dropping_agent",
    "serve_http_agent",
    "serve_websocket_agent",
]
