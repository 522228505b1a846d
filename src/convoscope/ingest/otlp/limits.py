"""Size caps on span attributes, applied before a span is stored.

Oversized attributes have dropped whole batches in other backends, and a per-span attribute count limit
has silently dropped the one attribute that identified the conversation. So values are truncated with a
visible marker, the largest go first, and identity keys (the ones that group spans into calls) are never
truncated or dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from pydantic import JsonValue

__all__ = ["IDENTITY_KEYS", "TRUNCATED_KEY", "SpanLimits", "cap_attributes"]

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
        # Identity keys first, so a long attribute list can never push them out.
        ordered = sorted(attributes, key=lambda k: k not in IDENTITY_KEYS)
        kept = ordered[: limits.max_attributes]
        touched.extend(ordered[limits.max_attributes :])
        attributes = {k: attributes[k] for k in kept}
    sizes = {k: _size(v) for k, v in attributes.items()}
    out = dict(attributes)
    for key, size in sizes.items():
        if size > limits.max_attribute_chars and key not in IDENTITY_KEYS:
            out[key] = _cut(out[key], limits.max_attribute_chars)
            sizes[key] = limits.max_attribute_chars
            touched.append(key)
    total = sum(sizes.values()) + sum(len(k) for k in sizes)
    if total > limits.max_span_chars:
        for key in sorted(sizes, key=sizes.__getitem__, reverse=True):
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
