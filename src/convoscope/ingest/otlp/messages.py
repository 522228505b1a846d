"""Tool calls read back from the chat messages an LLM span was given.

Pipecat has no span for a function call: its ``llm`` span records the context it sent (``input``, the
provider's message list), and a call shows there only once the LLM runs again with it: an assistant
message with ``tool_calls`` (id, function name, JSON arguments) and a ``tool`` message with the same
``tool_call_id`` holding the result. So a call is dated by the LLM spans around it: it starts when the
span that asked for it (the one before the first span whose input holds it) ends, and ends when the
LLM was run again with the result. A call whose result no later LLM run was given is not in any span.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import JsonValue

from ...model import Span, ToolCall
from .common import json_value, offset_s

__all__ = ["MessageCall", "message_tool_calls"]


@dataclass(frozen=True)
class MessageCall:
    """One function call found in an LLM span's input messages."""

    id: str
    name: str
    arguments: JsonValue
    result: JsonValue
    has_result: bool


def _calls_in(messages: Sequence[JsonValue]) -> list[MessageCall]:
    """The assistant's tool calls in ``messages`` (OpenAI-style), each with its ``tool`` result if any."""
    results: dict[str, JsonValue] = {}
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "tool":
            call_id = message.get("tool_call_id")
            if isinstance(call_id, str):
                results[call_id] = json_value(message.get("content"))
    calls: list[MessageCall] = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        tool_calls = message.get("tool_calls")
        for raw in tool_calls if isinstance(tool_calls, list) else ():
            function = raw.get("function") if isinstance(raw, dict) else None
            call_id = raw.get("id") if isinstance(raw, dict) else None
            name = function.get("name") if isinstance(function, dict) else None
            if not isinstance(call_id, str) or not isinstance(name, str):
                continue
            arguments = json_value(function.get("arguments")) if isinstance(function, dict) else None
            calls.append(MessageCall(call_id, name, arguments, results.get(call_id), call_id in results))
    return calls


def message_tool_calls(
    llm_spans: Sequence[Span],
    messages_of: Callable[[Span], list[JsonValue]],
    turn_of: Callable[[Span], int | None],
    started_at: datetime,
) -> list[ToolCall]:
    """Each call the first time an LLM span's input holds it, timed and placed by the span before it.

    ``llm_spans`` are in start order; ``messages_of`` reads a span's input messages; ``turn_of`` gives
    the index of the agent turn a span belongs to. The framework records no outcome, so ``success`` is
    left unknown.
    """
    seen: set[str] = set()
    tools: list[ToolCall] = []
    for position, span in enumerate(llm_spans):
        asker = llm_spans[position - 1] if position else None
        for call in _calls_in(messages_of(span)):
            if call.id in seen:
                continue
            seen.add(call.id)
            start = offset_s(asker.end or asker.start, started_at) if asker is not None else None
            end = offset_s(span.start, started_at)
            tools.append(
                ToolCall(
                    id=call.id,
                    turn_index=turn_of(asker if asker is not None else span),
                    name=call.name,
                    arguments=call.arguments,
                    result=call.result if call.has_result else None,
                    start_s=start if start is None else min(start, end),
                    end_s=end,
                )
            )
    return tools
