"""The pure row conversions, without a store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from convoscope.model import MetricResult, MetricSource, Role, Span
from convoscope.store.rows import (
    call_to_rows,
    datetime_from_micros,
    metric_from_row,
    metric_to_row,
    micros,
    span_from_row,
    span_to_row,
)
from convoscope.store.schema import AGENT_LATENCY_FIELDS, CALLS, SCORES, SPANS, TOOL_CALLS, TURNS

from .factories import make_call

T0 = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def test_micros_are_exact_and_zone_independent() -> None:
    far = datetime(2300, 1, 1, 0, 0, 0, 999999, tzinfo=UTC)
    shifted = T0.astimezone(timezone(timedelta(hours=-7)))

    assert datetime_from_micros(micros(far)) == far
    assert micros(shifted) == micros(T0)
    assert micros(T0) % 1_000_000 == 123456


def test_call_rows_follow_the_schema_column_order() -> None:
    call = make_call("x", started_at=T0, turns=5, tools=3)

    rows = call_to_rows("proj", call, version=4, ingested_at=T0)

    assert len(rows.calls) == 1 and len(rows.calls[0]) == len(CALLS.columns)
    assert len(rows.turns) == 5 and all(len(r) == len(TURNS.columns) for r in rows.turns)
    assert len(rows.tool_calls) == 3 and all(len(r) == len(TOOL_CALLS.columns) for r in rows.tool_calls)
    record = dict(zip(CALLS.column_names, rows.calls[0], strict=True))
    assert record["id"] == rows.ids[0]
    assert record["version"] == 4
    assert record["tool_error_count"] == 0
    agent = [t for t in call.turns if t.role is Role.AGENT]
    assert agent
    for name in AGENT_LATENCY_FIELDS:
        assert record[f"agent_{name}"] == [getattr(t, name) for t in agent]
    assert record["agent_latency_filled"] == 1


def test_latency_arrays_hold_only_present_agent_values() -> None:
    call = make_call("x", started_at=T0, turns=6, tools=0)
    turns = list(call.turns)
    turns[1] = turns[1].model_copy(update={"e2e_s": None})  # an agent turn without a measurement
    turns[0] = turns[0].model_copy(update={"e2e_s": 9.0})  # a user turn with one: never counted
    call = call.model_copy(update={"turns": turns})

    [row] = call_to_rows("proj", call, version=1, ingested_at=T0).calls
    record = dict(zip(CALLS.column_names, row, strict=True))

    assert record["agent_e2e_s"] == [turns[3].e2e_s, turns[5].e2e_s]
    assert len(record["agent_stt_s"]) == 3


@pytest.mark.parametrize("error", [None, "judge reply was not JSON"])
def test_metric_row_round_trip_and_version_is_evaluation_time(error: str | None) -> None:
    result = MetricResult(
        call_id="c",
        metric="m",
        value=None if error else True,
        passed=None if error else False,
        source=MetricSource.JUDGE,
        error=error,
        evaluated_at=T0,
    )

    row = dict(zip(SCORES.column_names, metric_to_row("proj", result, written_us=7), strict=True))

    assert row["version"] == micros(T0) and row["written_at"] == 7
    assert row["error"] == error
    assert metric_from_row(row) == result


def test_span_row_round_trip() -> None:
    span = Span(trace_id="a" * 32, span_id="b" * 16, name="llm", start=T0, attributes={"k": [1, "v"]})

    row = dict(zip(SPANS.column_names, span_to_row("proj", span, version=1), strict=True))

    assert span_from_row(row) == span
