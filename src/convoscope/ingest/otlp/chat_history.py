"""A chat conversation from its LLM requests, each of which resends the whole history.

An app that calls a chat model sends every request the conversation so far, so reading each request as
"a user turn and an agent turn" repeats the user's line after every tool round trip and turns a request
for tool calls into an empty agent turn. Here the history is diffed instead: each request adds only the
messages that were not in the previous request or its answer (matched by role, text and tool-call ids),
so

* a new user message is a user turn, said when the request was made;
* an answer with text is an agent turn (from the request's start to its end, with its time to first
  token); an answer that asks for tools becomes those tool calls, on the agent turn that follows them;
* a tool message is the result of the tool call with its id;
* the system prompt is kept for the call (it is not a turn).

A history the app rewrote (trimmed, summarised) is taken from the first message that differs: what
follows is new. Messages are compared by position, and a request may name its history from part way
(a tracer that dropped the span's oldest attributes): the positions it does not name are neither new nor
a rewrite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import JsonValue

from ...model import Role, ToolCall, Turn
from .common import json_value, offset_s
from .llm_messages import ChatMessage, Exchange

__all__ = ["ChatHistory", "diff_history"]


@dataclass
class ChatHistory:
    """What the requests added up to."""

    turns: list[Turn] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    system_prompts: list[str] = field(default_factory=list)
    rewritten: int = 0
    """Requests whose history did not start with what the conversation had so far."""


_Identity = tuple[object, ...]


@dataclass
class _History:
    """The conversation's messages so far by position (a position no request named is absent)."""

    known: dict[int, _Identity] = field(default_factory=dict)
    length: int = 0

    def first_new(self, placed: Sequence[tuple[int, ChatMessage]]) -> int:
        """The position from which a request's messages are new: the end of the history, or the first
        message that differs from it (a rewritten history), or where the request's history stops short."""
        for position, message in placed:
            if position >= self.length:
                break
            seen = self.known.get(position)
            if seen is not None and seen != message.identity:
                return position
        covered = placed[-1][0] + 1 if placed else 0
        return min(covered, self.length)

    def after(
        self, placed: Sequence[tuple[int, ChatMessage]], new_from: int, outputs: Sequence[ChatMessage]
    ) -> None:
        """The history once a request and its answer are known."""
        known = {p: seen for p, seen in self.known.items() if p < new_from}
        known.update((position, message.identity) for position, message in placed)
        end = placed[-1][0] + 1 if placed else 0
        known.update((end + i, message.identity) for i, message in enumerate(outputs))
        self.known, self.length = known, end + len(outputs)


@dataclass
class _Builder:
    start: datetime
    out: ChatHistory = field(default_factory=ChatHistory)
    pending: list[int] = field(default_factory=list)
    """Tool calls (indices into ``out.tool_calls``) waiting for the agent turn that follows them."""
    by_id: dict[str, int] = field(default_factory=dict)

    def turn(self, role: Role, text: str, begin: float, end: float, ttft: float | None = None) -> None:
        index = len(self.out.turns)
        self.out.turns.append(
            Turn(index=index, role=role, text=text, start_s=begin, end_s=end, llm_ttft_s=ttft)
        )
        if role is Role.AGENT:
            for position in self.pending:
                self.out.tool_calls[position] = self.out.tool_calls[position].model_copy(
                    update={"turn_index": index}
                )
            self.pending.clear()

    def request(self, message: ChatMessage, at: float) -> None:
        for call in message.tool_calls:
            position = len(self.out.tool_calls)
            self.out.tool_calls.append(
                ToolCall(
                    id=call.id or f"request-{position}",
                    name=call.name or "unknown",
                    arguments=json_value(call.arguments),
                    start_s=at,
                )
            )
            self.pending.append(position)
            if call.id:
                self.by_id[call.id] = position

    def answer(self, message: ChatMessage, at: float) -> None:
        position = self.by_id.get(message.tool_call_id or "")
        if position is None:
            return  # a result for a call this conversation never saw asked
        call = self.out.tool_calls[position]
        self.out.tool_calls[position] = call.model_copy(
            update={"result": _result(message.text), "end_s": max(at, call.start_s or 0.0)}
        )


def _result(text: str) -> JsonValue:
    return json_value(text)


def diff_history(exchanges: Sequence[Exchange], start: datetime) -> ChatHistory:
    """The conversation the requests (in start order) add up to, on the call clock from ``start``."""
    builder = _Builder(start)
    history = _History()
    for exchange in sorted(exchanges, key=lambda e: e.span.start):
        begin = offset_s(exchange.span.start, start)
        end = max(begin, offset_s(exchange.span.end or exchange.span.start, start))
        placed = list(zip(exchange.input_positions(), exchange.inputs, strict=True))
        new_from = history.first_new(placed)
        if new_from < history.length:
            builder.out.rewritten += 1
        for position, message in placed:
            if position >= new_from:
                _added(builder, message, begin)
            elif position not in history.known and message.role in _SYSTEM_ROLES:
                _system_prompt(builder, message)  # said before any request that named it: still the call's
        for message in exchange.outputs:
            builder.request(message, end)
            if message.text.strip():
                builder.turn(Role.AGENT, message.text, begin, end, exchange.ttft_s)
        history.after(placed, new_from, exchange.outputs)
    return builder.out


def _added(builder: _Builder, message: ChatMessage, at: float) -> None:
    """A message the request held that the conversation had not seen."""
    if message.role in _SYSTEM_ROLES:
        _system_prompt(builder, message)
    elif message.role == "user":
        builder.turn(Role.USER, message.text, at, at)
    elif message.role == "tool":
        builder.answer(message, at)
    elif message.role == "assistant":
        # An answer the app put in the history itself (or from a request not traced): said before this one.
        builder.request(message, at)
        if message.text.strip():
            builder.turn(Role.AGENT, message.text, at, at)


_SYSTEM_ROLES = ("system", "developer")


def _system_prompt(builder: _Builder, message: ChatMessage) -> None:
    if message.text and message.text not in builder.out.system_prompts:
        builder.out.system_prompts.append(message.text)
