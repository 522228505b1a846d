"""The chat messages an LLM span carries, read from whichever convention its instrumentation speaks.

Three vocabularies are in use for the same thing, sometimes in one trace (a LangChain app traced by
OpenInference calling an SDK traced by OpenLLMetry), so the convention is chosen per span:

* **GenAI, current** (``genai``): ``gen_ai.input.messages`` / ``gen_ai.output.messages`` as JSON lists of
  ``{role, parts: [{type: text, content} | {type: tool_call, id, name, arguments} |
  {type: tool_call_response, id, response}]}`` (or the older ``{role, content}``), and
  ``gen_ai.system_instructions``.
* **GenAI, legacy** (``genai-legacy``, what OpenLLMetry wrote before its releases moved to the current
  attributes, as 0.62 has): flat ``gen_ai.prompt.N.role`` / ``.content`` /
  ``.tool_calls.M.{id,name,arguments}`` / ``.tool_call_id`` and ``gen_ai.completion.N.*``.
* **OpenInference** (``openinference``): flat ``llm.input_messages.N.message.role`` / ``.content`` (or
  ``.contents.K.message_content.text``) / ``.tool_calls.M.tool_call.{id,function.name,function.arguments}``
  / ``.tool_call_id`` and ``llm.output_messages.N.message.*``.

Each becomes an :class:`Exchange`: the messages the request held and the ones it produced, neutral, so one
assembler (:mod:`.chat_history`) builds the conversation whatever the convention. A message whose JSON
cannot be read is kept raw and flagged (``malformed``), never a failed assembly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import JsonValue

from ...model import Span
from .common import attr_float, attr_str, json_value

__all__ = [
    "FIRST_TOKEN_EVENTS",
    "ChatMessage",
    "Exchange",
    "ToolRequest",
    "exchange_of",
    "first_token_s",
    "is_llm_span",
]

_LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})


@dataclass(frozen=True)
class ToolRequest:
    """A tool call the model asked for."""

    id: str
    name: str
    arguments: JsonValue


@dataclass(frozen=True)
class ChatMessage:
    """One message in a neutral shape: role (system, user, assistant, tool), text, tool calls, or the id of
    the call a tool message answers (with its result in ``text``)."""

    role: str
    text: str
    tool_calls: tuple[ToolRequest, ...] = ()
    tool_call_id: str | None = None

    @property
    def identity(self) -> tuple[object, ...]:
        """What makes two messages the same one, resent in a later request's history (arguments may be
        re-serialised by the SDK, so tool calls compare by id and name)."""
        calls = tuple((call.id, call.name) for call in self.tool_calls)
        return (self.role, self.text.strip(), calls, self.tool_call_id)


@dataclass(frozen=True)
class Exchange:
    """One LLM request: what it was sent, what it answered, and how it is read."""

    span: Span
    convention: str
    inputs: tuple[ChatMessage, ...]
    outputs: tuple[ChatMessage, ...]
    ttft_s: float | None
    malformed: tuple[str, ...] = ()
    """Attributes whose messages could not be read (kept raw on the span)."""
    positions: tuple[int, ...] = ()
    """Where each input stands in the history the request sent (``inputs[i]`` is message
    ``positions[i]``), when the convention numbers its messages; empty when the inputs are the history
    from its first message on. The OpenTelemetry SDK keeps 128 attributes a span by default and drops
    the oldest past that, so an OpenInference span of a long chat names its history from some message
    N on (``llm.input_messages.N.*``), not from 0."""

    def input_positions(self) -> tuple[int, ...]:
        """The position of each input in the history the request sent."""
        return self.positions or tuple(range(len(self.inputs)))


FIRST_TOKEN_EVENTS = frozenset(
    {"First Token Stream Event", "gen_ai.content.completion.chunk", "llm.content.completion.chunk"}
)
"""Span events that mark a streamed answer's first token (OpenInference's, OpenLLMetry's per-chunk ones)."""


def first_token_s(span: Span) -> float | None:
    """Seconds from the request to its first streamed token, from the first such span event."""
    start_ns = round(span.start.timestamp() * 1_000_000) * 1000
    times = [
        event["time_unix_nano"]
        for event in span.events
        if isinstance(event, dict)
        and event.get("name") in FIRST_TOKEN_EVENTS
        and isinstance(event.get("time_unix_nano"), int)
    ]
    if not times:
        return None
    first = min(t for t in times if isinstance(t, int))
    return max(0.0, (first - start_ns) / 1e9)


def is_llm_span(span: Span) -> bool:
    """An LLM request span in any of the conventions."""
    kind = attr_str(span, "openinference.span.kind")
    if kind is not None:
        return kind.upper() == "LLM"
    if attr_str(span, "gen_ai.operation.name") in _LLM_OPERATIONS:
        return True
    if attr_str(span, "llm.request.type") in ("chat", "completion"):
        return True
    return any(name.startswith(("gen_ai.prompt.", "gen_ai.completion.")) for name in span.attributes)


def exchange_of(span: Span) -> Exchange:
    """The span's request and answer in the convention it speaks."""
    ttft = attr_float(span, "gen_ai.response.time_to_first_chunk", "llm.time_to_first_token")
    if ttft is None:
        ttft = first_token_s(span)
    if any(name.startswith("llm.input_messages.") for name in span.attributes) or attr_str(
        span, "openinference.span.kind"
    ):
        return _flat_exchange(span, "openinference", "llm.input_messages.", "llm.output_messages.", ttft)
    if any(name.startswith(("gen_ai.prompt.", "gen_ai.completion.")) for name in span.attributes):
        return _flat_exchange(span, "genai-legacy", "gen_ai.prompt.", "gen_ai.completion.", ttft)
    malformed: list[str] = []
    inputs = _structured(span, "gen_ai.system_instructions", malformed, role="system")
    inputs += _structured(span, "gen_ai.input.messages", malformed)
    outputs = _structured(span, "gen_ai.output.messages", malformed)
    return Exchange(span, "genai", tuple(inputs), tuple(outputs), ttft, tuple(malformed))


# -- GenAI, current: JSON messages with parts ---------------------------------------------------------


def _structured(span: Span, name: str, malformed: list[str], *, role: str | None = None) -> list[ChatMessage]:
    raw = span.attributes.get(name)
    if raw is None:
        return []
    value = json_value(raw)
    if isinstance(value, list) and role is not None and all(isinstance(p, dict) for p in value):
        value = [{"role": role, "parts": value}]  # system instructions are a list of parts
    if not isinstance(value, list):
        malformed.append(name)
        return []
    return [message for item in value if (message := _part_message(item)) is not None]


def _part_message(item: JsonValue) -> ChatMessage | None:
    if not isinstance(item, dict) or not isinstance(item.get("role"), str):
        return None
    role = str(item["role"])
    texts: list[str] = []
    calls: list[ToolRequest] = []
    answered: str | None = None
    content = item.get("content")
    if isinstance(content, str):
        texts.append(content)
    for part in _listed(item.get("parts")):
        if not isinstance(part, dict):
            continue
        kind = part.get("type", "text")
        if kind == "text" and isinstance(part.get("content"), str):
            texts.append(str(part["content"]))
        elif kind == "tool_call":
            calls.append(
                ToolRequest(str(part.get("id") or ""), str(part.get("name") or ""), part.get("arguments"))
            )
        elif kind == "tool_call_response":
            answered = str(part.get("id") or "") or None
            response = part.get("response")
            texts.append(response if isinstance(response, str) else _text_of(response))
    for call in _listed(item.get("tool_calls")):  # the older OpenAI-shaped message
        if isinstance(call, dict):
            function = call.get("function")
            if not isinstance(function, dict):
                function = {}
            calls.append(
                ToolRequest(
                    str(call.get("id") or ""), str(function.get("name") or ""), function.get("arguments")
                )
            )
    if answered is None and isinstance(item.get("tool_call_id"), str):
        answered = str(item["tool_call_id"])
    return ChatMessage(role, " ".join(t for t in texts if t), tuple(calls), answered)


def _listed(value: JsonValue) -> list[JsonValue]:
    return value if isinstance(value, list) else []


def _text_of(value: JsonValue) -> str:
    import orjson

    return "" if value is None else orjson.dumps(value).decode()


# -- the flat conventions: indexed attribute names ------------------------------------------------------


@dataclass(frozen=True)
class _Flat:
    """Where a flat convention keeps each field, relative to ``<prefix>N.``."""

    role: str
    content: str
    contents: str | None
    tool_calls: str
    call_id: str
    call_name: str
    call_arguments: str
    answers: str


_OPENINFERENCE = _Flat(
    role="message.role",
    content="message.content",
    contents="message.contents.",
    tool_calls="message.tool_calls.",
    call_id="tool_call.id",
    call_name="tool_call.function.name",
    call_arguments="tool_call.function.arguments",
    answers="message.tool_call_id",
)
_LEGACY = _Flat(
    role="role",
    content="content",
    contents=None,
    tool_calls="tool_calls.",
    call_id="id",
    call_name="name",
    call_arguments="arguments",
    answers="tool_call_id",
)
_INDEX = re.compile(r"^(\d+)\.(.*)$")


def _flat_exchange(span: Span, convention: str, inputs: str, outputs: str, ttft: float | None) -> Exchange:
    fields = _OPENINFERENCE if convention == "openinference" else _LEGACY
    sent = _flat(span.attributes, inputs, fields)
    answered = _flat(span.attributes, outputs, fields)
    return Exchange(
        span,
        convention,
        tuple(message for _, message in sent),
        tuple(message for _, message in answered),
        ttft,
        positions=tuple(index for index, _ in sent),
    )


def _flat(attributes: Mapping[str, JsonValue], prefix: str, fields: _Flat) -> list[tuple[int, ChatMessage]]:
    """The numbered messages under ``prefix``, with their numbers. A message without a role is left out:
    the SDK drops a span's oldest attributes first, and the role is the first one a message is given, so
    a message cut part way has lost its role and what is left of it cannot be told apart."""
    grouped: dict[int, dict[str, JsonValue]] = {}
    for name, value in attributes.items():
        if not name.startswith(prefix):
            continue
        found = _INDEX.match(name[len(prefix) :])
        if found:
            grouped.setdefault(int(found.group(1)), {})[found.group(2)] = value
    messages: list[tuple[int, ChatMessage]] = []
    for index, entry in sorted(grouped.items()):
        role = entry.get(fields.role)
        if not isinstance(role, str):
            continue
        text = entry.get(fields.content)
        texts = [text] if isinstance(text, str) else []
        if fields.contents is not None:
            texts += _content_texts(entry, fields.contents)
        calls = _flat_calls(entry, fields)
        answers = entry.get(fields.answers)
        messages.append(
            (
                index,
                ChatMessage(
                    role, " ".join(texts), tuple(calls), answers if isinstance(answers, str) else None
                ),
            )
        )
    return messages


def _content_texts(entry: Mapping[str, JsonValue], prefix: str) -> list[str]:
    """The text parts (``<prefix>K.message_content.text``) in part order (K as a number: part 10
    follows part 9)."""
    parts: list[tuple[int, str]] = []
    for key, value in entry.items():
        if key.startswith(prefix) and isinstance(value, str):
            found = _INDEX.match(key[len(prefix) :])
            if found and found.group(2) == "message_content.text":
                parts.append((int(found.group(1)), value))
    return [text for _, text in sorted(parts)]


def _flat_calls(entry: Mapping[str, JsonValue], fields: _Flat) -> list[ToolRequest]:
    calls: dict[int, dict[str, JsonValue]] = {}
    for key, value in entry.items():
        if key.startswith(fields.tool_calls):
            found = _INDEX.match(key[len(fields.tool_calls) :])
            if found:
                calls.setdefault(int(found.group(1)), {})[found.group(2)] = value
    return [
        ToolRequest(
            str(call.get(fields.call_id) or ""),
            str(call.get(fields.call_name) or ""),
            json_value(call.get(fields.call_arguments)),
        )
        for _, call in sorted(calls.items())
    ]
