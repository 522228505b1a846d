"""Scores, spans, health and opening of the store, embedded and over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from convoscope.errors import PayloadError, StoreError
from convoscope.model import MetricResult, MetricSource, Span, SpanKind
from convoscope.store.clickhouse import ClickHouseStore, open_clickhouse_store

from .conftest import OpenStore
from .factories import make_call

T0 = datetime(2025, 3, 1, 9, tzinfo=UTC)


def _result(
    call_id: str, metric: str, value: float | bool | str | None, at: datetime, **extra: object
) -> MetricResult:
    return MetricResult.model_validate(
        {
            "call_id": call_id,
            "metric": metric,
            "value": value,
            "source": MetricSource.AUDIO,
            "evaluated_at": at,
            **extra,
        }
    )


def test_scores_round_trip_and_newer_evaluation_replaces(store: ClickHouseStore) -> None:
    [call_id] = store.insert_calls("proj", [make_call("s", started_at=T0, turns=2)], version=1)
    first = _result(
        call_id, "overlap_s", 1.25, T0, version="2", params={"threshold": 0.5}, evidence={"seg": [[1, 2]]}
    )
    label = _result(call_id, "intent", "refund", T0, passed=True)
    flag = _result(call_id, "resolved", False, T0, passed=False)
    empty = _result(
        call_id, "unscorable", None, T0, evidence={"reason": "no channel map"}, error="no agent channel"
    )
    newer = _result(call_id, "overlap_s", 0.75, T0 + timedelta(minutes=1), version="3")
    store.insert_scores("proj", [first, label, flag, empty])
    store.insert_scores("proj", [newer])
    store.insert_scores("proj", [first])  # an older evaluation replayed later

    stored = store.get_call("proj", call_id)

    assert stored is not None
    assert {s.metric: s for s in stored.scores} == {
        "intent": label,
        "overlap_s": newer,
        "resolved": flag,
        "unscorable": empty,
    }
    assert {s.metric: s.error for s in stored.scores}["unscorable"] == "no agent channel"
    assert {s.metric: s.error for s in stored.scores}["intent"] is None


def test_scores_are_scoped_to_the_project(store: ClickHouseStore) -> None:
    [call_id] = store.insert_calls("proj", [make_call("s", started_at=T0, turns=2)], version=1)
    store.insert_scores("other", [_result(call_id, "m", 1.0, T0)])

    stored = store.get_call("proj", call_id)

    assert stored is not None and stored.scores == []


def _span(trace: str, span: str, start: datetime, **extra: object) -> Span:
    return Span.model_validate(
        {"trace_id": trace, "span_id": span, "name": f"span-{span}", "start": start, **extra}
    )


def test_spans_round_trip_by_trace_and_by_call(store: ClickHouseStore) -> None:
    trace_a, trace_b = "a" * 32, "b" * 32
    root = _span(
        trace_a,
        "1" * 16,
        T0,
        end=T0 + timedelta(seconds=3),
        kind=SpanKind.SERVER,
        status_code="ok",
        attributes={"gen_ai.request.model": "gpt", "n": 3, "nested": {"x": [1, None]}},
        resource_attributes={"service.name": "bot"},
        scope_name="pipecat",
        call_id="call-1",
    )
    child = _span(
        trace_a,
        "2" * 16,
        T0 + timedelta(milliseconds=1, microseconds=7),
        parent_span_id="1" * 16,
        call_id="call-1",
    )
    other = _span(trace_b, "3" * 16, T0 - timedelta(seconds=1), call_id="call-1")
    unlinked = _span(trace_b, "4" * 16, T0)
    store.insert_spans("proj", [child, root, other, unlinked])

    assert store.list_spans("proj", trace_id=trace_a) == [root, child]
    assert store.list_spans("proj", call_id="call-1") == [other, root, child]
    assert store.list_spans("proj", call_id="call-1", trace_id=trace_b) == [other]
    assert store.list_spans("elsewhere", trace_id=trace_a) == []


def test_rewritten_span_replaces_the_old_one(store: ClickHouseStore) -> None:
    trace = "c" * 32
    store.insert_spans("proj", [_span(trace, "5" * 16, T0, status_code="unset")])
    final = _span(
        trace, "5" * 16, T0, end=T0 + timedelta(seconds=1), status_code="error", status_message="boom"
    )
    store.insert_spans("proj", [final])

    assert store.list_spans("proj", trace_id=trace) == [final]


def test_list_spans_needs_a_call_or_a_trace(store: ClickHouseStore) -> None:
    with pytest.raises(PayloadError):
        store.list_spans("proj")


def test_ping_reports_a_real_query(store: ClickHouseStore, backend: str) -> None:
    store.insert_calls("proj", [make_call("p", started_at=T0, turns=3, tools=2)], version=1)

    facts = store.ping()

    assert facts["ok"] is True
    assert facts["backend"] == ("chdb" if backend == "chdb" else "clickhouse")
    assert str(facts["engine_version"]).split(".")[0].isdigit()
    assert facts["table_rows"] == {
        "calls": 1,
        "turns": 3,
        "tool_calls": 2,
        "spans": 0,
        "span_logs": 0,
        "scores": 0,
    }
    logs = facts["system_logs"]
    assert isinstance(logs, dict) and isinstance(logs["tables"], list)
    assert logs["ttl_applied"] == []
    # A server bounds only its MergeTree log tables; the others cannot take a TTL and are left alone.
    assert logs["ttl_failed"] == {}


def test_ping_on_a_closed_store_is_a_store_error(open_store: OpenStore) -> None:
    closed = open_store("t_closed_probe")
    closed.close()

    with pytest.raises(StoreError):
        closed.ping()


def test_reopening_the_same_database_keeps_the_data(open_store: OpenStore) -> None:
    first = open_store("t_reopen")
    [call_id] = first.insert_calls("proj", [make_call("r", started_at=T0, turns=2)], version=1)
    first.close()

    second = open_store("t_reopen")
    try:
        assert second.get_call("proj", call_id) is not None
    finally:
        second.close()


def test_open_needs_exactly_one_target(chdb_dir: Path) -> None:
    with pytest.raises(StoreError):
        open_clickhouse_store()
    with pytest.raises(StoreError):
        open_clickhouse_store(path=chdb_dir, url="http://localhost:8123")


def test_open_rejects_a_bad_database_name(open_store: OpenStore) -> None:
    with pytest.raises(StoreError):
        open_store("x`; DROP")
