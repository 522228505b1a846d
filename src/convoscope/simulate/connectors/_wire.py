"""Reading what agents send, shared by the connectors: JSON bodies, tool calls and message text.

Every protocol here carries tool calls as ``id`` + ``name`` + ``arguments`` and text as a string (or, in
OpenAI's shape, a list of text parts), so one set of checks turns any of them into
:class:`~.base.ToolCallRequest` and text, and names the agent's fault in the same words for all of them.
Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from .base import MalformedReply, Message, ToolCallRequest

__all__ = [
    "excerpt",
    "load_json_object",
    "message_text",
    "reply_text",
    "tool_call",
    "tool_calls",
    "usage_counts",
]

EXCERPT_CHARS = 200
"""How much of a bad body an error message quotes: enough to recognise it, not enough to flood a report."""


def excerpt(data: bytes | str) -> str:
    """The start of a body, on one line, for an error message."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"


def load_json_object(data: bytes | str, what: str) -> Mapping[str, Any]:
    """``data`` parsed as a JSON object; anything else is the agent's fault (:class:`MalformedReply`)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedReply(f"{what} is not JSON ({exc}): {excerpt(data)!r}") from None
    if not isinstance(value, dict):
        raise MalformedReply(f"{what} is a JSON {type(value).__name__}, not an object: {excerpt(data)!r}")
    return value


def tool_call(item: Any, *, where: str, arguments_key: str = "arguments") -> ToolCallRequest:
    """One tool call from ``{"id", "name", arguments_key}``, arguments as JSON text or an object.

    Arguments an agent serialised badly are the agent's fault, not the tool's: they raise
    :class:`MalformedReply` naming the tool, so the report says which call the model got wrong. Empty
    argument text means no arguments (some models send ``""`` for a tool without parameters).
    """
    if not isinstance(item, Mapping):
        raise MalformedReply(f"{where} is not an object")
    call_id, name = item.get("id"), item.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedReply(f"{where} has no tool name")
    if not isinstance(call_id, str) or not call_id:
        raise MalformedReply(f"{where} (tool {name!r}) has no id")
    raw = item.get(arguments_key, "")
    if isinstance(raw, Mapping):
        return ToolCallRequest(
            id=call_id, name=name, arguments=dict(raw), raw_arguments=orjson.dumps(raw).decode()
        )
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise MalformedReply(
            f"arguments of tool call {name!r} ({where}) are a {type(raw).__name__}, "
            "not JSON text or an object"
        )
    if not raw.strip():
        return ToolCallRequest(id=call_id, name=name, arguments={}, raw_arguments=raw)
    try:
        arguments = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MalformedReply(
            f"arguments of tool call {name!r} ({where}) are not JSON: {excerpt(raw)!r}"
        ) from None
    if not isinstance(arguments, dict):
        raise MalformedReply(
            f"arguments of tool call {name!r} ({where}) are a JSON {type(arguments).__name__}, not an object"
        )
    return ToolCallRequest(id=call_id, name=name, arguments=arguments, raw_arguments=raw)


def tool_calls(items: Any, *, where: str) -> list[ToolCallRequest]:
    """A list of ``{"id", "name", "arguments"}`` tool calls (absent or null: none)."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise MalformedReply(f"{where} is a {type(items).__name__}, not a list")
    return [tool_call(item, where=f"{where}[{index}]") for index, item in enumerate(items)]


def reply_text(value: Any, *, where: str) -> str | None:
    """Text an agent said: a string, null, or OpenAI's list of ``{"type": "text", "text"}`` parts."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        parts: list[str] = []
        for part in value:
            if not isinstance(part, Mapping):
                raise MalformedReply(f"{where} has a content part that is not an object")
            if part.get("type") == "text":
                text = part.get("text")
                if not isinstance(text, str):
                    raise MalformedReply(f"{where} has a text part without text")
                parts.append(text)
        return "".join(parts)
    raise MalformedReply(f"{where} is a {type(value).__name__}, not text")


def message_text(message: Message) -> str:
    """The text of one of the runner's messages (a string, or text parts), for protocols that carry text."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, bytes | bytearray):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return orjson.dumps(content).decode()


def usage_counts(value: Any) -> dict[str, int]:
    """The integer counters of a usage object (tokens), copied flat; nested details are left out."""
    if not isinstance(value, Mapping):
        return {}
    return {
        str(key): count
        for key, count in value.items()
        if isinstance(count, int) and not isinstance(count, bool)
    }
