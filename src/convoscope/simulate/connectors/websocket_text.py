"""An agent behind a text WebSocket: one connection per conversation, JSON frames both ways.

This is how realtime chat widgets and most voice agents' text modes are built: the agent keeps the
conversation's state on its side of the socket, so the connector sends only what is new. Frames sent::

    {"type": "message", "text": "..."}                                 a caller's line (role "user")
    {"type": "tool_result", "tool_call_id": "...", "content": "..."}   a tool's answer (role "tool")

System messages in ``new`` are not sent (the agent holds its own prompt). Each caller line or batch of
tool results is answered by one frame::

    {"type": "reply", "text": "..." | null, "tool_calls": [{"id", "name", "arguments"}], "end_call": false}

with ``tool_calls`` and ``end_call`` optional, ``arguments`` an object or JSON text. The conversation id
travels in the ``X-Conversation-Id`` header of the opening handshake.

**Agent speaks first:** the agent may send a reply frame as soon as the socket opens (a greeting).
``respond(history, new=[])`` asks for it: it returns the greeting already received, or waits for it up to
``timeout_s`` (an agent that greets but has nothing to say sends ``"text": null``; one that sends nothing
is :class:`AgentTimeout`, so the runner asks only when the scenario says the agent speaks first). Its
latency runs from the moment the socket opened. When the runner lets the caller speak first instead, the
session first listens ``first_reply_timeout_s`` for a greeting sent unasked, so that it is not taken for
the reply to the caller's line (frames carry no "in reply to"); such greetings come back in
:attr:`AgentReply.unsolicited` of the reply to that line.

**Errors:** a refused connection, a failed handshake or a socket that closes → :class:`AgentUnreachable`;
no reply frame within ``timeout_s`` → :class:`AgentTimeout`; a binary frame, a frame that is not JSON or
not a reply, or tool-call arguments that are not a JSON object → :class:`MalformedReply`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from ._http import public_url
from ._wire import load_json_object, message_text, tool_calls, usage_counts
from .base import AgentReply, AgentSession, AgentTimeout, AgentUnreachable, MalformedReply, Message

__all__ = ["WebSocketConnector", "parse_reply_frame"]

DEFAULT_FIRST_REPLY_TIMEOUT_S = 0.5
"""Long enough for a greeting sent on connect to cross a loopback or LAN link; paid once per conversation
only by agents that do not greet and only when the caller speaks first."""

DEFAULT_OPEN_TIMEOUT_S = 10.0
"""How long the WebSocket handshake may take before the agent counts as unreachable."""

DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024
"""The largest frame accepted: a reply with long tool arguments fits, a runaway stream does not."""


def parse_reply_frame(data: str | bytes, *, latency_s: float = 0.0) -> AgentReply:
    """A ``reply`` frame as an :class:`AgentReply`, or :class:`MalformedReply`."""
    if isinstance(data, bytes):
        raise MalformedReply(f"the agent sent a binary frame ({len(data)} bytes), not a JSON text frame")
    body = load_json_object(data, "the frame")
    kind = body.get("type")
    if kind != "reply":
        raise MalformedReply(f"the agent sent a frame of type {kind!r}, not 'reply'")
    text = body.get("text")
    if text is not None and not isinstance(text, str):
        raise MalformedReply(f"'text' of the reply frame is a {type(text).__name__}, not text or null")
    end_call = body.get("end_call", False)
    if end_call is None:
        end_call = False
    if not isinstance(end_call, bool):
        raise MalformedReply(f"'end_call' of the reply frame is a {type(end_call).__name__}, not a boolean")
    return AgentReply(
        text=text,
        tool_calls=tuple(tool_calls(body.get("tool_calls"), where="tool_calls")),
        latency_s=latency_s,
        end_call=end_call,
        usage=usage_counts(body.get("usage")),
    )


def outgoing_frame(message: Message) -> dict[str, Any] | None:
    """The frame for one of the runner's new messages; ``None`` for a system message (not sent)."""
    role = message.get("role")
    if role == "user":
        return {"type": "message", "text": message_text(message)}
    if role == "tool":
        return {
            "type": "tool_result",
            "tool_call_id": message.get("tool_call_id"),
            "content": message_text(message),
        }
    if role == "system":
        return None
    raise ValueError(f"a new message with role {role!r} cannot be sent to the agent (user, tool or system)")


class _WebSocketSession:
    """One conversation: its own socket, and whether the agent has been heard from yet."""

    def __init__(
        self, socket: ClientConnection, *, where: str, opened_at: float, first_reply_timeout_s: float
    ) -> None:
        self._socket = socket
        self._where = where
        self._opened_at = opened_at
        self._first_reply_timeout_s = first_reply_timeout_s
        self._first = True

    async def respond(
        self, history: Sequence[Message], new: Sequence[Message], *, timeout_s: float
    ) -> AgentReply:
        frames = [frame for frame in map(outgoing_frame, new) if frame is not None]
        first, self._first = self._first, False
        if not frames:
            # The opening line (or, later, a turn where the agent goes on without being spoken to).
            return await self._receive(timeout_s, started=self._opened_at if first else time.perf_counter())
        unsolicited = await self._unasked_greetings() if first else ()
        started = time.perf_counter()
        try:
            for frame in frames:
                await self._socket.send(orjson.dumps(frame).decode())
        except ConnectionClosed as exc:
            raise AgentUnreachable(f"{self._where} closed the connection ({_closed(exc)})") from None
        reply = await self._receive(timeout_s, started=started)
        return dataclasses.replace(reply, unsolicited=unsolicited) if unsolicited else reply

    async def _receive(self, timeout_s: float, *, started: float) -> AgentReply:
        try:
            async with asyncio.timeout(timeout_s):
                data = await self._socket.recv()
        except TimeoutError:
            raise AgentTimeout(f"{self._where} sent no reply within {timeout_s:g} s") from None
        except ConnectionClosed as exc:
            raise AgentUnreachable(f"{self._where} closed the connection ({_closed(exc)})") from None
        return parse_reply_frame(data, latency_s=time.perf_counter() - started)

    async def _unasked_greetings(self) -> tuple[AgentReply, ...]:
        """Reply frames the agent sent on connect though nobody asked: waits ``first_reply_timeout_s``
        for the first, then takes only what has already arrived."""
        greetings: list[AgentReply] = []
        wait_s = self._first_reply_timeout_s
        while True:
            try:
                async with asyncio.timeout(wait_s):
                    data = await self._socket.recv()
            except TimeoutError:
                return tuple(greetings)
            except ConnectionClosed as exc:
                raise AgentUnreachable(f"{self._where} closed the connection ({_closed(exc)})") from None
            greetings.append(parse_reply_frame(data, latency_s=time.perf_counter() - self._opened_at))
            wait_s = 0.0

    async def close(self) -> None:
        """Hang up: close the socket (an agent that already closed it is fine)."""
        try:
            await self._socket.close()
        except (OSError, WebSocketException):
            pass


class WebSocketConnector:
    """Reach an agent through one WebSocket per conversation at ``url`` (``ws://`` or ``wss://``).

    ``headers`` are sent with every handshake (an API key, say); ``first_reply_timeout_s`` is how long a
    session listens for an unasked greeting before the caller's first line (see the module's rule);
    ``open_timeout_s`` bounds the handshake; ``max_frame_bytes`` the size of one frame.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        first_reply_timeout_s: float = DEFAULT_FIRST_REPLY_TIMEOUT_S,
        open_timeout_s: float = DEFAULT_OPEN_TIMEOUT_S,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        self.url = url
        self.headers = dict(headers or {})
        self.first_reply_timeout_s = first_reply_timeout_s
        self.open_timeout_s = open_timeout_s
        self.max_frame_bytes = max_frame_bytes
        self._where = public_url(url)
        self._sessions: weakref.WeakSet[_WebSocketSession] = weakref.WeakSet()

    async def open(self, conversation_id: str) -> AgentSession:
        try:
            socket = await connect(
                self.url,
                additional_headers={**self.headers, "X-Conversation-Id": conversation_id},
                open_timeout=self.open_timeout_s,
                max_size=self.max_frame_bytes,
            )
        except TimeoutError:
            raise AgentUnreachable(f"{self._where}: no connection within {self.open_timeout_s:g} s") from None
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise AgentUnreachable(
                f"{self._where} refused the WebSocket handshake with HTTP {status}"
            ) from None
        except (OSError, WebSocketException) as exc:
            detail = str(exc) or type(exc).__name__
            raise AgentUnreachable(f"{self._where}: {detail}") from None
        session = _WebSocketSession(
            socket,
            where=self._where,
            opened_at=time.perf_counter(),
            first_reply_timeout_s=self.first_reply_timeout_s,
        )
        self._sessions.add(session)
        return session

    async def aclose(self) -> None:
        """Hang up every conversation still open (a run that was interrupted leaves no sockets behind)."""
        await asyncio.gather(*(session.close() for session in list(self._sessions)))


def _closed(exc: ConnectionClosed) -> str:
    """How a socket closed, in words: the close code and reason, or that it simply dropped."""
    frame = exc.rcvd or exc.sent
    if frame is None:
        return "no close frame"
    return f"code {frame.code}" + (f": {frame.reason}" if frame.reason else "")
