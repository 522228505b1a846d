"""Fold the GenAI log records of LLM spans into those spans, so the span mappers read their messages.

Why: with OpenTelemetry's GenAI instrumentation capturing content as events (``event_only``), a chat span
carries the request (model, tokens, finish reasons) and its messages go out as log records naming the span
by trace and span id. Rather than teach every reader a second place to look, assembly copies the messages
onto the span in the form the span conventions already use, and the GenAI mapper reads them as usual. The
records are never written onto the stored spans: they are folded again on every assembly, so a record
arriving after its span, or before it, ends in the call either way.

Two shapes are read:

* ``gen_ai.client.inference.operation.details`` (one record per request, current conventions):
  ``gen_ai.input.messages``, ``gen_ai.output.messages`` and ``gen_ai.system_instructions`` as attributes
  (structured values, or JSON text), or inside a map body; each becomes the JSON text attribute of that name.
* the per-message events of older releases, in record order: ``gen_ai.system.message``,
  ``gen_ai.user.message``, ``gen_ai.assistant.message``, ``gen_ai.tool.message`` (body ``{content,
  tool_calls, id}``) make ``gen_ai.input.messages``, and ``gen_ai.choice`` (body ``{index, finish_reason,
  message}``) makes ``gen_ai.output.messages``, as messages of ``text``, ``tool_call`` and
  ``tool_call_response`` parts.

The span's own attributes win: an attribute the span already has is never replaced by log content.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import orjson
from pydantic import JsonValue

from ...model import Span
from .common import json_value
from .trusted import replaced_span

__all__ = [
    "CHOICE_EVENT",
    "CONTENT_KEYS",
    "DETAILS_EVENT",
    "FOLDED_EVENTS",
    "MESSAGE_EVENTS",
    "SpanLog",
    "fold_logs",
]

DETAILS_EVENT = "gen_ai.client.inference.operation.details"
INPUT_KEY = "gen_ai.input.messages"
OUTPUT_KEY = "gen_ai.output.messages"
CONTENT_KEYS = (INPUT_KEY, OUTPUT_KEY, "gen_ai.system_instructions")
"""What an operation-details record supplies to its span."""
MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
"""The older per-message events, and the role each one's message has."""
CHOICE_EVENT = "gen_ai.choice"
FOLDED_EVENTS = frozenset({DETAILS_EVENT, CHOICE_EVENT, *MESSAGE_EVENTS})
"""Every event name this module reads (assembly reads only these records)."""


class SpanLog(Protocol):
    """What the fold needs of a log record."""

    @property
    def trace_id(self) -> str: ...
    @property
    def span_id(self) -> str: ...
    @property
    def event_name(self) -> str: ...
    @property
    def body(self) -> JsonValue: ...
    @property
    def attributes(self) -> dict[str, JsonValue]: ...


def fold_logs(spans: Sequence[Span], records: Iterable[SpanLog]) -> list[Span]:
    """``spans``, each span that has log records given the message attributes they carry and it lacks."""
    by_span: dict[tuple[str, str], list[SpanLog]] = {}
    for record in records:
        if record.span_id and record.event_name in FOLDED_EVENTS:
            by_span.setdefault((record.trace_id, record.span_id), []).append(record)
    if not by_span:
        return list(spans)
    folded: list[Span] = []
    for span in spans:
        found = by_span.get((span.trace_id, span.span_id))
        added = {k: v for k, v in _content(found).items() if k not in span.attributes} if found else {}
        folded.append(replaced_span(span, attributes={**span.attributes, **added}) if added else span)
    return folded


def _content(records: Sequence[SpanLog]) -> dict[str, JsonValue]:
    """The message attributes one span's records make: an operation-details record's first, else the
    messages of the per-message events in record order."""
    content: dict[str, JsonValue] = {}
    inputs: list[JsonValue] = []
    outputs: list[tuple[int, JsonValue]] = []
    for record in records:
        if record.event_name == DETAILS_EVENT:
            for key in CONTENT_KEYS:
                value = _details_value(record, key)
                if value is not None and key not in content:
                    content[key] = value if isinstance(value, str) else _json_text(value)
        elif record.event_name == CHOICE_EVENT:
            choice = _choice(_body(record))
            if choice is not None:
                outputs.append(choice)
        elif (message := _message(MESSAGE_EVENTS[record.event_name], _body(record))) is not None:
            inputs.append(message)
    if inputs and INPUT_KEY not in content:
        content[INPUT_KEY] = _json_text(inputs)
    if outputs and OUTPUT_KEY not in content:
        content[OUTPUT_KEY] = _json_text([message for _, message in sorted(outputs, key=lambda o: o[0])])
    return content


def _details_value(record: SpanLog, key: str) -> JsonValue:
    value = record.attributes.get(key)
    if value is None and isinstance(record.body, dict):
        value = record.body.get(key)
    return value


def _json_text(value: JsonValue) -> str:
    return orjson.dumps(value).decode()


def _body(record: SpanLog) -> dict[str, JsonValue]:
    """A per-message event's body as a map (a body sent as JSON text is read as JSON)."""
    body = json_value(record.body)
    return body if isinstance(body, dict) else {}


def _text_parts(content: JsonValue) -> list[JsonValue]:
    """Text parts of a message's content: a string, or OpenAI's list of ``{type: text, text}`` parts."""
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if isinstance(content, list):
        parts: list[JsonValue] = []
        for item in content:
            if isinstance(item, str):
                parts.append({"type": "text", "content": item})
            elif isinstance(item, Mapping) and isinstance(item.get("text"), str):
                parts.append({"type": "text", "content": item["text"]})
            elif item is not None:
                parts.append({"type": "text", "content": _json_text(item)})
        return parts
    return [{"type": "text", "content": _json_text(content)}]


def _tool_call_parts(calls: JsonValue) -> list[JsonValue]:
    """OpenAI-shaped ``tool_calls`` (``{id, type, function: {name, arguments}}``) as ``tool_call`` parts."""
    parts: list[JsonValue] = []
    for call in calls if isinstance(calls, list) else []:
        if not isinstance(call, dict):
            continue
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id") or "",
                "name": function.get("name") or "",
                "arguments": function.get("arguments"),
            }
        )
    return parts


def _message(role: str, body: dict[str, JsonValue]) -> JsonValue:
    """One per-message event as a ``{role, parts}`` message; None when it says nothing (content capture
    off leaves bodies empty)."""
    if role == "tool":
        if body.get("content") is None and not body.get("id"):
            return None
        answered = body.get("id")
        return {
            "role": role,
            "parts": [
                {
                    "type": "tool_call_response",
                    "id": answered if isinstance(answered, str) else "",
                    "response": body.get("content"),
                }
            ],
        }
    parts = _text_parts(body.get("content")) + _tool_call_parts(body.get("tool_calls"))
    return {"role": str(body.get("role") or role), "parts": parts} if parts else None


def _choice(body: dict[str, JsonValue]) -> tuple[int, JsonValue] | None:
    """A ``gen_ai.choice`` body as (its index, an output message)."""
    said = body.get("message")
    said = said if isinstance(said, dict) else {}
    message = _message("assistant", said)
    if not isinstance(message, dict):
        return None
    if isinstance(body.get("finish_reason"), str):
        message["finish_reason"] = body["finish_reason"]
    index = body.get("index")
    return (index if isinstance(index, int) else 0), message
