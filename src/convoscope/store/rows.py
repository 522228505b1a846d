"""Pure conversions between the canonical models and the rows of the ClickHouse tables.

Row tuples follow the column order of the specs in ``schema``; the store transposes them for a
column-oriented insert. Wall-clock times travel as integer microseconds since the epoch, both ways: ticks
need no timezone handling in the client and are exact, so a call reads back equal to the one written.
Nested parts of a call (recordings, cost, usage, ...) are stored as compact JSON text and validated back
into their models on read. ``has_recording`` says a recording is stored here (``uri`` ``blob:<sha256>``),
not that one was mentioned: a vendor link not fetched yet, or audio that was not a recording, is not one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

import orjson
from pydantic import JsonValue, TypeAdapter

from ..model import (
    Call,
    CostLine,
    Document,
    LatencyStats,
    MetricResult,
    Recording,
    Role,
    SimulationRef,
    Span,
    ToolCall,
    Turn,
    Usage,
    Word,
)
from ..model.blob_ref import stored_sha
from ..model.ids import stored_call_id
from .schema import AGENT_LATENCY_FIELDS

__all__ = [
    "CallRows",
    "call_from_row",
    "call_to_rows",
    "datetime_from_micros",
    "metric_from_row",
    "metric_to_row",
    "micros",
    "span_from_row",
    "span_to_row",
    "tool_call_from_row",
    "turn_from_row",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)

_WORDS = TypeAdapter(list[Word])
_DOCUMENTS = TypeAdapter(list[Document])
_RECORDINGS = TypeAdapter(list[Recording])
_COST = TypeAdapter(list[CostLine])
_LATENCY = TypeAdapter(dict[str, LatencyStats])
_JSON_DICT = TypeAdapter(dict[str, JsonValue])

Row = tuple[Any, ...]


def micros(value: datetime) -> int:
    """Exact microseconds since the epoch of an aware datetime (no float rounding)."""
    return (value - _EPOCH) // _MICRO


def datetime_from_micros(value: int) -> datetime:
    """The UTC datetime of a microsecond tick count."""
    return _EPOCH + timedelta(microseconds=value)


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _opt_bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


@dataclass(slots=True)
class CallRows:
    """The rows one call (or a batch of calls) becomes, one list per table, in schema column order."""

    ids: list[str] = field(default_factory=list)
    calls: list[Row] = field(default_factory=list)
    turns: list[Row] = field(default_factory=list)
    tool_calls: list[Row] = field(default_factory=list)

    def extend(self, other: CallRows) -> None:
        """Append another call's rows, so a batch is written with one insert per table."""
        self.ids.extend(other.ids)
        self.calls.extend(other.calls)
        self.turns.extend(other.turns)
        self.tool_calls.extend(other.tool_calls)


_LATENCIES = attrgetter(*AGENT_LATENCY_FIELDS)
_NO_LATENCIES: tuple[tuple[float | None, ...], ...] = ((),) * len(AGENT_LATENCY_FIELDS)


def _agent_latencies(turns: Sequence[Turn]) -> tuple[list[float], ...]:
    """Per ``AGENT_LATENCY_FIELDS`` name, the non-null values of the agent turns, in turn order.

    Exactly the values a turn-latency series counts (agent turns, value present), stored on the call row.
    """
    columns = tuple(zip(*(_LATENCIES(turn) for turn in turns if turn.role is Role.AGENT), strict=True))
    return tuple([value for value in column if value is not None] for column in columns or _NO_LATENCIES)


def call_to_rows(project_id: str, call: Call, *, version: int, ingested_at: datetime) -> CallRows:
    """The rows of one call; its id is derived from its identity, unless it carried an id of that identity.

    The id is ``call_id_for(project_id, source, external_id, started_at)``, so a replay writes the same id
    and rows stay keyed consistently without reading the store first. An id of the same identity that the
    call carries is kept (``model.ids.stored_call_id``), so a call whose start was corrected keeps its id.
    """
    call_id = stored_call_id(project_id, call.source.value, call.external_id, call.started_at, call.id)
    started_us = micros(call.started_at)
    agent_id = call.agent_id
    source = call.source.value
    tool_errors = sum(1 for tool in call.tool_calls if tool.success is False)
    call_row: Row = (
        project_id,
        source,
        call.external_id,
        call_id,
        agent_id,
        call.agent_version,
        call.direction.value,
        started_us,
        None if call.ended_at is None else micros(call.ended_at),
        call.effective_duration_s,
        call.duration_s,
        call.end_reason.value,
        call.end_reason_raw,
        len(call.turns),
        len(call.tool_calls),
        tool_errors,
        call.cost_total("USD"),
        int(any(stored_sha(recording) is not None for recording in call.recordings)),
        list(call.tags),
        _RECORDINGS.dump_json(call.recordings, exclude_defaults=True).decode(),
        _COST.dump_json(call.cost, exclude_defaults=True).decode(),
        call.usage.model_dump_json(exclude_defaults=True),
        _LATENCY.dump_json(call.vendor_latency, exclude_defaults=True).decode(),
        _json(call.vendor_analysis),
        _json(call.metadata),
        "null" if call.simulation is None else call.simulation.model_dump_json(exclude_defaults=True),
        version,
        micros(ingested_at),
        *_agent_latencies(call.turns),
        1,
    )
    turns = [
        (
            project_id,
            call_id,
            turn.index,
            version,
            agent_id,
            source,
            started_us,
            turn.role.value,
            turn.text,
            turn.start_s,
            turn.end_s,
            None if turn.words is None else _WORDS.dump_json(turn.words, exclude_defaults=True).decode(),
            int(turn.interrupted),
            turn.e2e_s,
            turn.eou_s,
            turn.stt_s,
            turn.llm_ttft_s,
            turn.tts_ttfb_s,
            _documents_json(turn.documents),
        )
        for turn in call.turns
    ]
    tools = [
        (
            project_id,
            call_id,
            seq,
            tool.id,
            version,
            tool.turn_index,
            tool.name,
            _json(tool.arguments),
            _json(tool.result),
            _opt_bool(tool.success),
            tool.start_s,
            tool.end_s,
        )
        for seq, tool in enumerate(call.tool_calls)
    ]
    return CallRows(ids=[call_id], calls=[call_row], turns=turns, tool_calls=tools)


def _documents_json(documents: Sequence[Document] | None) -> str:
    """A document list as JSON; ``""`` for none (turns without documents read back ``None``)."""
    return _DOCUMENTS.dump_json(list(documents), exclude_defaults=True).decode() if documents else ""


def _documents(text: str | None) -> list[Document] | None:
    return _DOCUMENTS.validate_json(text) if text else None


def turn_from_row(row: Mapping[str, Any]) -> Turn:
    """A turn from a ``turns`` row (columns by name)."""
    words = row["words"]
    return Turn(
        index=row["idx"],
        role=Role(row["role"]),
        text=row["text"],
        start_s=row["start_s"],
        end_s=row["end_s"],
        words=None if words is None else _WORDS.validate_json(words),
        interrupted=bool(row["interrupted"]),
        e2e_s=row["e2e_s"],
        eou_s=row["eou_s"],
        stt_s=row["stt_s"],
        llm_ttft_s=row["llm_ttft_s"],
        tts_ttfb_s=row["tts_ttfb_s"],
        documents=_documents(row.get("documents")),
    )


def tool_call_from_row(row: Mapping[str, Any]) -> ToolCall:
    """A tool call from a ``tool_calls`` row (columns by name)."""
    success = row["success"]
    return ToolCall(
        id=row["tool_call_id"],
        turn_index=row["turn_index"],
        name=row["name"],
        arguments=orjson.loads(row["arguments"]),
        result=orjson.loads(row["result"]),
        success=None if success is None else bool(success),
        start_s=row["start_s"],
        end_s=row["end_s"],
    )


def call_from_row(row: Mapping[str, Any], *, turns: Sequence[Turn], tool_calls: Sequence[ToolCall]) -> Call:
    """A call from a ``calls`` row (times as microsecond ticks) and its child rows, in order."""
    ended = row["ended_at"]
    simulation = row["simulation"]
    return Call(
        id=row["id"],
        project_id=row["project_id"],
        source=row["source"],
        external_id=row["external_id"],
        agent_id=row["agent_id"],
        agent_version=row["agent_version"],
        direction=row["direction"],
        started_at=datetime_from_micros(row["started_at"]),
        ended_at=None if ended is None else datetime_from_micros(ended),
        duration_s=row["duration_given_s"],
        end_reason=row["end_reason"],
        end_reason_raw=row["end_reason_raw"],
        turns=list(turns),
        tool_calls=list(tool_calls),
        recordings=_RECORDINGS.validate_json(row["recordings"]),
        vendor_latency=_LATENCY.validate_json(row["vendor_latency"]),
        cost=_COST.validate_json(row["cost"]),
        usage=Usage.model_validate_json(row["usage"]),
        vendor_analysis=_JSON_DICT.validate_json(row["vendor_analysis"]),
        tags=list(row["tags"]),
        metadata=_JSON_DICT.validate_json(row["metadata"]),
        simulation=None if simulation == "null" else SimulationRef.model_validate_json(simulation),
    )


def metric_to_row(project_id: str, result: MetricResult, *, written_us: int) -> Row:
    """The ``scores`` row of a metric result; its version is ``evaluated_at`` in microseconds.

    So a re-evaluation replaces an older result of the same (call, metric), and replaying the older one
    later cannot win. ``written_us`` is when the row is written (what the overview's rollups look for).
    """
    value = result.value
    evaluated_us = micros(result.evaluated_at)
    return (
        project_id,
        result.call_id,
        result.metric,
        evaluated_us,
        result.version,
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None,
        int(value) if isinstance(value, bool) else None,
        value if isinstance(value, str) else None,
        _opt_bool(result.passed),
        _json(result.params),
        _json(result.evidence),
        result.source.value,
        evaluated_us,
        result.error,
        written_us,
    )


def metric_from_row(row: Mapping[str, Any]) -> MetricResult:
    """A metric result from a ``scores`` row (``evaluated_at`` as microsecond ticks)."""
    value: float | bool | str | None
    if row["value_bool"] is not None:
        value = bool(row["value_bool"])
    elif row["value_num"] is not None:
        value = float(row["value_num"])
    else:
        value = row["value_label"]
    passed = row["passed"]
    return MetricResult(
        call_id=row["call_id"],
        metric=row["metric"],
        version=row["metric_version"],
        value=value,
        passed=None if passed is None else bool(passed),
        params=orjson.loads(row["params"]),
        evidence=orjson.loads(row["evidence"]),
        source=row["source"],
        evaluated_at=datetime_from_micros(row["evaluated_at"]),
        error=row["error"],
    )


def span_to_row(project_id: str, span: Span, *, version: int, conversation_id: str | None = None) -> Row:
    """The ``spans`` row of a span; ``version`` (the write time) makes the latest write of a span win.

    ``conversation_id``, when given, is written instead of the span's own.
    """
    return (
        project_id,
        span.trace_id,
        span.span_id,
        version,
        span.call_id,
        span.parent_span_id,
        span.name,
        span.kind.value,
        micros(span.start),
        None if span.end is None else micros(span.end),
        span.status_code,
        span.status_message,
        _json(span.attributes),
        _json(span.resource_attributes),
        span.scope_name,
        span.conversation_id if conversation_id is None else conversation_id,
        _json(span.events) if span.events else "",
        _json(span.links) if span.links else "",
        _documents_json(span.documents),
    )


def span_from_row(row: Mapping[str, Any]) -> Span:
    """A span from a ``spans`` row (times as microsecond ticks)."""
    end = row["end_at"]
    return Span(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"],
        name=row["name"],
        kind=row["kind"],
        start=datetime_from_micros(row["start_at"]),
        end=None if end is None else datetime_from_micros(end),
        status_code=row["status_code"],
        status_message=row["status_message"],
        attributes=orjson.loads(row["attributes"]),
        resource_attributes=orjson.loads(row["resource_attributes"]),
        scope_name=row["scope_name"],
        call_id=row["call_id"],
        conversation_id=row.get("conversation_id"),
        events=orjson.loads(row["events"]) if row.get("events") else [],
        links=orjson.loads(row["links"]) if row.get("links") else [],
        documents=_documents(row.get("documents")) or [],
    )
