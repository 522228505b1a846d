"""What the framework mappers share: typed attribute reads, the span tree, usage, cost and tool calls.

Frameworks rename attributes between versions, so every read takes the names to try in order; the raw
attributes stay on the stored spans, so a call can be assembled again when a mapper learns a new name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from pydantic import JsonValue

from ...model import Call, CallSource, CostLine, EndReason, Span, ToolCall, Turn, Usage

__all__ = [
    "PriceTable",
    "SpanTree",
    "attr_bool",
    "attr_float",
    "attr_int",
    "attr_str",
    "costs",
    "json_value",
    "offset_s",
    "trace_call",
    "usage_from",
]


def _first(span: Span, names: Sequence[str]) -> JsonValue:
    for name in names:
        value = span.attributes.get(name)
        if value is not None:
            return value
    return None


def attr_str(span: Span, *names: str) -> str | None:
    """The first of ``names`` present, as text (numbers are printed)."""
    value = _first(span, names)
    if value is None or isinstance(value, dict | list):
        return None
    return value if isinstance(value, str) else str(value)


def attr_float(span: Span, *names: str) -> float | None:
    """The first of ``names`` that reads as a finite, non-negative number."""
    value = _first(span, names)
    if isinstance(value, bool):
        return None
    try:
        number = float(value) if isinstance(value, int | float | str) else None
    except ValueError:
        return None
    if number is None or number != number or number in (float("inf"), float("-inf")) or number < 0:
        return None
    return number


def attr_int(span: Span, *names: str) -> int | None:
    """The first of ``names`` as a non-negative integer."""
    number = attr_float(span, *names)
    return None if number is None else int(number)


def attr_bool(span: Span, *names: str) -> bool | None:
    """The first of ``names`` as a boolean (``"true"``/``"false"`` strings too)."""
    value = _first(span, names)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def json_value(value: JsonValue) -> JsonValue:
    """A tool argument or result: decoded when it is a JSON string, else as given."""
    if isinstance(value, str):
        try:
            decoded: JsonValue = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        return decoded
    return value


def offset_s(moment: datetime, started_at: datetime) -> float:
    """Seconds from the call's start, never negative (a span may be back-dated before the root)."""
    return max(0.0, (moment - started_at).total_seconds())


@dataclass
class SpanTree:
    """The spans of one conversation indexed by id and parent, to walk a turn's subtree."""

    spans: list[Span]
    by_id: dict[str, Span] = field(init=False)
    children: dict[str, list[Span]] = field(init=False)

    def __post_init__(self) -> None:
        self.spans = sorted(self.spans, key=lambda s: (s.start, s.span_id))
        self.by_id = {s.span_id: s for s in self.spans}
        self.children = defaultdict(list)
        for span in self.spans:
            if span.parent_span_id is not None:
                self.children[span.parent_span_id].append(span)

    def named(self, *names: str) -> list[Span]:
        """Spans with one of these names, by start time."""
        return [s for s in self.spans if s.name in names]

    def descendants(self, span: Span, *names: str) -> list[Span]:
        """Spans below ``span`` (any depth) with one of these names (all if none given), by start."""
        found: list[Span] = []
        stack = list(self.children.get(span.span_id, ()))
        while stack:
            child = stack.pop()
            if not names or child.name in names:
                found.append(child)
            stack.extend(self.children.get(child.span_id, ()))
        return sorted(found, key=lambda s: (s.start, s.span_id))

    def ancestor(self, span: Span, *names: str) -> Span | None:
        """The nearest span above ``span`` with one of these names."""
        seen: set[str] = set()
        parent_id = span.parent_span_id
        while parent_id is not None and parent_id not in seen:
            seen.add(parent_id)
            parent = self.by_id.get(parent_id)
            if parent is None:
                return None
            if parent.name in names:
                return parent
            parent_id = parent.parent_span_id
        return None

    @property
    def first_start(self) -> datetime:
        return self.spans[0].start

    @property
    def last_end(self) -> datetime:
        return max(s.end or s.start for s in self.spans)


@dataclass(frozen=True)
class PriceTable:
    """USD prices by model: LLM per million input and output tokens, TTS per million characters,
    STT per audio minute. A model without a price gets no cost line (never a guessed one)."""

    llm: dict[str, tuple[float, float]] = field(default_factory=dict)
    tts: dict[str, float] = field(default_factory=dict)
    stt: dict[str, float] = field(default_factory=dict)


@dataclass
class _Meter:
    """Per-model counters of one call."""

    input_tokens: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    output_tokens: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    characters: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    audio_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))


_INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")
_OUTPUT_TOKENS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
_MODEL = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name", "embedding.model_name")


def _meter(llm: Iterable[Span], tts: Iterable[tuple[Span, int]], stt: Iterable[tuple[Span, float]]) -> _Meter:
    meter = _Meter()
    for span in llm:
        model = attr_str(span, *_MODEL) or "unknown"
        meter.input_tokens[model] += attr_int(span, *_INPUT_TOKENS) or 0
        meter.output_tokens[model] += attr_int(span, *_OUTPUT_TOKENS) or 0
    for span, characters in tts:
        meter.characters[attr_str(span, *_MODEL) or "unknown"] += characters
    for span, seconds in stt:
        meter.audio_s[attr_str(span, *_MODEL) or "unknown"] += seconds
    return meter


def usage_from(
    llm: Iterable[Span],
    tts: Iterable[tuple[Span, int]],
    stt: Iterable[tuple[Span, float]],
    prices: PriceTable,
) -> tuple[Usage, list[CostLine]]:
    """Usage totals and priced cost lines from the LLM spans, (TTS span, characters), (STT span, seconds)."""
    meter = _meter(llm, tts, stt)
    prompt = sum(meter.input_tokens.values())
    completion = sum(meter.output_tokens.values())
    characters = sum(meter.characters.values())
    audio = sum(meter.audio_s.values())
    usage = Usage(
        llm_prompt_tokens=prompt if meter.input_tokens else None,
        llm_completion_tokens=completion if meter.output_tokens else None,
        tts_characters=characters if meter.characters else None,
        stt_audio_s=audio if meter.audio_s else None,
    )
    return usage, costs(meter, prices)


def costs(meter: _Meter, prices: PriceTable) -> list[CostLine]:
    """One cost line per priced model and unit."""
    lines: list[CostLine] = []
    for model in sorted(set(meter.input_tokens) | set(meter.output_tokens)):
        if model not in prices.llm:
            continue
        per_in, per_out = prices.llm[model]
        for unit, count, price in (
            ("input_tokens", meter.input_tokens.get(model, 0), per_in),
            ("output_tokens", meter.output_tokens.get(model, 0), per_out),
        ):
            if count:
                lines.append(_line(f"llm:{model}", count, unit, price / 1e6))
    for model, characters in sorted(meter.characters.items()):
        if model in prices.tts and characters:
            lines.append(_line(f"tts:{model}", characters, "characters", prices.tts[model] / 1e6))
    for model, seconds in sorted(meter.audio_s.items()):
        if model in prices.stt and seconds:
            lines.append(_line(f"stt:{model}", seconds / 60.0, "minutes", prices.stt[model]))
    return lines


def _line(product: str, quantity: float, unit: str, unit_price: float) -> CostLine:
    return CostLine(
        product=product,
        amount=round(quantity * unit_price, 9),
        quantity=quantity,
        unit=unit,
        unit_price=unit_price,
    )


def genai_tool_call(span: Span, started_at: datetime, turn_index: int | None) -> ToolCall | None:
    """A tool call from a GenAI ``execute_tool`` span (``gen_ai.tool.*``)."""
    name = attr_str(span, "gen_ai.tool.name")
    if name is None:
        return None
    return ToolCall(
        id=attr_str(span, "gen_ai.tool.call.id") or span.span_id,
        turn_index=turn_index,
        name=name,
        arguments=json_value(span.attributes.get("gen_ai.tool.call.arguments")),
        result=json_value(span.attributes.get("gen_ai.tool.call.result")),
        success=span.status_code != "error",
        start_s=offset_s(span.start, started_at),
        end_s=offset_s(span.end or span.start, started_at),
    )


def is_genai_tool(span: Span) -> bool:
    """A GenAI tool execution span."""
    return attr_str(span, "gen_ai.operation.name") == "execute_tool" or "gen_ai.tool.name" in span.attributes


def trace_call(
    source: CallSource,
    key: str,
    *,
    agent_id: str | None,
    start: datetime,
    end: datetime,
    turns: list[Turn],
    tools: list[ToolCall],
    usage: Usage,
    cost: list[CostLine],
    metadata: dict[str, object],
    end_reason: EndReason | None = None,
) -> Call:
    """The call a mapper assembled: its external id is the key after the mapper's prefix, and it never
    ends before it starts (the start may be given from outside the spans)."""
    return Call.model_validate(
        {
            **({"end_reason": end_reason} if end_reason is not None else {}),
            "source": source,
            "external_id": key.split(":", 1)[1],
            "agent_id": agent_id,
            "started_at": start,
            "ended_at": max(end, start),
            "turns": turns,
            "tool_calls": tools,
            "usage": usage,
            "cost": cost,
            "metadata": metadata,
        }
    )
