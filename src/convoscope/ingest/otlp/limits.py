"""Size caps on span attributes, applied before a span is stored.

Oversized attributes have dropped whole batches in other backends, and a per-span attribute count limit
has silently dropped the one attribute that identified the conversation. So values are truncated with a
visible marker, the largest go first, and identity keys (the ones that group spans into calls) are never
truncated or dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson
from pydantic import JsonValue

__all__ = ["IDENTITY_KEYS", "MESSAGE_KEYS", "TRUNCATED_KEY", "SpanLimits", "cap_attributes"]

IDENTITY_KEYS = frozenset(
    {
        "conversation.id",
        "turn.number",
        "lk.job_id",
        "lk.room_sid",
        "lk.pii.room_name",
        "lk.generation_id",
        "lk.function_tool.id",
        "gen_ai.conversation.id",
        "gen_ai.tool.call.id",
        "session.id",
    }
)
"""Attributes that say which conversation, turn or tool call a span belongs to: kept whole, always."""

MESSAGE_KEYS = frozenset({"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"})
"""A request's messages as one JSON value: cut anywhere, the whole history stops being readable, so they
are bounded by the span's total (``max_span_chars``), not by ``max_attribute_chars``, and are the last
values shrunk when a span is over its total."""

TRUNCATED_KEY = "convoscope.truncated"
"""Lists the attributes of a span that were cut or dropped, so a reader knows the value is partial."""

_MARKER = "…[truncated {dropped} of {total} chars]"


@dataclass(frozen=True, slots=True)
class SpanLimits:
    """Bounds on one span; every bound is a setting (``otlp_max_*``)."""

    max_attribute_chars: int = 16_384
    max_span_chars: int = 262_144
    max_attributes: int = 256
    shrunk_attribute_chars: int = 256
    """What a value is cut to when the span as a whole is over ``max_span_chars``."""
    max_document_chars: int = 65_536
    """Retrieved document content kept whole; documents are read out of the attributes first, so the
    attribute bounds above never cut them."""
    max_documents: int = 256
    """Retrieved documents kept per span (the first ones, in the retriever's order)."""


_HISTORY = re.compile(r"^(?:llm\.input_messages|gen_ai\.prompt)\.(\d+)\.")
"""A request's resent history, one flattened message per number: the oldest messages go first when a
span has too many attributes (as the OpenTelemetry SDK drops its oldest attributes), since the history
diff reads a request whose history starts part way, and the answer, tokens and model must stay."""


def _keep_order(key: str) -> tuple[int, int]:
    """Which attributes a span keeps when it has too many: identity keys, then everything that is not
    history, then history from the newest message back."""
    if key in IDENTITY_KEYS:
        return (0, 0)
    history = _HISTORY.match(key)
    return (1, 0) if history is None else (2, -int(history[1]))


def _size(value: JsonValue) -> int:
    if isinstance(value, str):
        return len(value)
    if value is None or isinstance(value, bool | int | float):
        return 8
    return len(orjson.dumps(value))


def _cut(value: JsonValue, keep: int) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text[:keep] + _MARKER.format(dropped=len(text) - keep, total=len(text))


def _within(attributes: dict[str, JsonValue], limits: SpanLimits) -> bool:
    """The common case, checked cheaply: few attributes, short scalar values, a small total."""
    if len(attributes) > limits.max_attributes:
        return False
    total = 0
    for key, value in attributes.items():
        if isinstance(value, str):
            size = len(value)
            if size > limits.max_attribute_chars:
                return False
        elif isinstance(value, dict | list):
            return False
        else:
            size = 8
        total += size + len(key)
    return total <= limits.max_span_chars


def cap_attributes(attributes: dict[str, JsonValue], limits: SpanLimits) -> dict[str, JsonValue]:
    """The attributes within the limits; cut and dropped keys are listed under ``TRUNCATED_KEY``."""
    if _within(attributes, limits):
        return attributes
    touched: list[str] = []
    if len(attributes) > limits.max_attributes:
        ordered = sorted(attributes, key=_keep_order)
        kept = ordered[: limits.max_attributes]
        touched.extend(ordered[limits.max_attributes :])
        attributes = {k: attributes[k] for k in kept}
    sizes = {k: _size(v) for k, v in attributes.items()}
    out = dict(attributes)
    for key, size in sizes.items():
        bound = limits.max_span_chars if key in MESSAGE_KEYS else limits.max_attribute_chars
        if size > bound and key not in IDENTITY_KEYS:
            out[key] = _cut(out[key], bound)
            sizes[key] = bound
            touched.append(key)
    total = sum(sizes.values()) + sum(len(k) for k in sizes)
    if total > limits.max_span_chars:
        for key in sorted(sizes, key=lambda k: (k not in MESSAGE_KEYS, sizes[k]), reverse=True):
            if total <= limits.max_span_chars:
                break
            if key in IDENTITY_KEYS or sizes[key] <= limits.shrunk_attribute_chars:
                continue
            out[key] = _cut(attributes[key], limits.shrunk_attribute_chars)
            total -= sizes[key] - limits.shrunk_attribute_chars
            if key not in touched:
                touched.append(key)
    if touched:
        listed: list[JsonValue] = list(touched)
        out[TRUNCATED_KEY] = listed
    return out
