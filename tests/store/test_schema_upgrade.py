"""A store created by schema 1 opens with the current schema: columns and indexes are added, old rows
still read.

Schema 1 is rebuilt here from the current specs without the columns schema 2 added, in its own database
beside the test's store (on each backend), and filled by copying rows a current store wrote (only the old
columns), which is what an older convoscope left on disk.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from convoscope.model import Call, MetricResult, MetricSource, Role, Span
from convoscope.store.base import Aggregate, SeriesQuery
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.store.schema import (
    AGENT_LATENCY_FIELDS,
    CALL_SERIES_COLUMNS,
    CALLS,
    ROLLUP_TABLES,
    SCHEMA_INFO,
    SCHEMA_VERSION,
    SCORES,
    SPANS,
    TABLES,
    Dialect,
    TableSpec,
    upgrade_statements,
)

from .conftest import OpenStore
from .factories import make_call

T0 = datetime(2025, 3, 1, tzinfo=UTC)
SINCE, UNTIL = T0, T0 + timedelta(days=2)

ADDED_SINCE_1 = {"calls": set(CALL_SERIES_COLUMNS), "scores": {"error"}}
"""The columns schemas 2 and 3 added, per table."""

INDEXES_OF_1 = {"calls": ("INDEX idx_started_at started_at TYPE minmax GRANULARITY 1",)}
ORDER_OF_1 = {"spans": ("project_id", "trace_id", "span_id")}
"""Sorting keys schema 7 changed (``spans`` was sorted by trace)."""


def _schema_1(spec: TableSpec) -> TableSpec:
    added = ADDED_SINCE_1.get(spec.name, set())
    columns = tuple(column for column in spec.columns if column[0] not in added)
    order = ORDER_OF_1.get(spec.name, spec.order_by)
    return TableSpec(spec.name, columns, order, spec.version_column, INDEXES_OF_1.get(spec.name, ()))


def _spans(count: int) -> list[Span]:
    """Spans of ``count`` traces spread over two days, three spans each."""
    spans = []
    for t in range(count):
        trace = f"{t:032x}"
        start = T0 + timedelta(hours=5 * t)
        for s in range(3):
            spans.append(
                Span.model_validate(
                    {
                        "trace_id": trace,
                        "span_id": f"{t:08x}{s:08x}",
                        "parent_span_id": None if s == 0 else f"{t:08x}{0:08x}",
                        "name": f"step {s}",
                        "start": start + timedelta(seconds=s),
                        "attributes": {"n": s},
                    }
                )
            )
    return spans


def _calls(prefix: str, count: int, *, turns: int) -> list[Call]:
    return [
        make_call(f"{prefix}{i}", started_at=T0 + timedelta(hours=3 * i), turns=turns + i % 3)
        for i in range(count)
    ]


@pytest.fixture
def old_database(store: ClickHouseStore) -> Iterator[tuple[str, list[Call], str]]:
    """A database in schema 1 holding calls (and a score) written by the old column set.

    Yields the database name, the calls and the id of the scored call.
    """
    database = f"old_{uuid.uuid4().hex}"
    calls = _calls("old", 8, turns=6)
    [scored, *_] = store.insert_calls("proj", calls, version=1)
    store.insert_scores(
        "proj",
        [MetricResult(call_id=scored, metric="csat", value=0.8, source=MetricSource.JUDGE, evaluated_at=T0)],
    )
    store.insert_spans("proj", _spans(10))
    store.command(f"CREATE DATABASE `{database}`")
    for spec in (*TABLES, SCHEMA_INFO):
        old = _schema_1(spec)
        store.command(old.create(database, Dialect.embedded()))
        if spec is not SCHEMA_INFO:
            names = ", ".join(f"`{name}`" for name in old.column_names)
            store.command(
                f"INSERT INTO `{database}`.`{spec.name}` ({names}) "
                f"SELECT {names} FROM `{store.database}`.`{spec.name}`"
            )
    store.command(f"INSERT INTO `{database}`.`schema_info` VALUES (1, 1)")
    try:
        yield database, calls, scored
    finally:
        store.command(f"DROP DATABASE IF EXISTS `{database}`")


def _columns(store: ClickHouseStore, database: str, table: str) -> list[str]:
    rows = store.query(
        "SELECT name FROM system.columns WHERE database = {d:String} AND table = {t:String} "
        "ORDER BY position",
        {"d": database, "t": table},
    )
    return [str(name) for (name,) in rows]


def test_opening_adds_the_new_columns_in_spec_order(
    store: ClickHouseStore, open_store: OpenStore, old_database: tuple[str, list[Call], str]
) -> None:
    database, _, _ = old_database
    assert "agent_e2e_s" not in _columns(store, database, "calls")

    upgraded = open_store(database)
    try:
        for spec in (*TABLES, *ROLLUP_TABLES, SCHEMA_INFO):
            assert _columns(store, database, spec.name) == list(spec.column_names), spec.name
        indexes = store.query(
            "SELECT name FROM system.data_skipping_indices WHERE database = {d:String} AND table = 'calls' "
            "ORDER BY name",
            {"d": database},
        )
        assert indexes == [("idx_id",), ("idx_started_at",)]
        span_indexes = store.query(
            "SELECT name FROM system.data_skipping_indices WHERE database = {d:String} AND table = 'spans' "
            "ORDER BY name",
            {"d": database},
        )
        assert span_indexes == [("idx_conversation_id",), ("idx_trace_id",)]
        # Sorted by trace before: rebuilt in the new order, every span kept, nothing left behind.
        [(key,)] = store.query(
            "SELECT sorting_key FROM system.tables WHERE database = {d:String} AND name = 'spans'",
            {"d": database},
        )
        assert key == SPANS.sorting_key
        assert [
            name
            for (name,) in store.query(
                "SELECT name FROM system.tables WHERE database = {d:String} ORDER BY name", {"d": database}
            )
        ] == sorted(spec.name for spec in (*TABLES, *ROLLUP_TABLES, SCHEMA_INFO))
        expected = _spans(10)
        assert upgraded.list_spans("proj", trace_id=expected[4].trace_id) == [
            s for s in expected if s.trace_id == expected[4].trace_id
        ]
        assert sum(len(upgraded.list_spans("proj", trace_id=f"{t:032x}")) for t in range(10)) == len(expected)
        assert upgraded.ping()["schema_version"] == SCHEMA_VERSION
        [(stored_version,)] = store.query(f"SELECT max(version) FROM `{database}`.`schema_info` FINAL")
        assert stored_version == SCHEMA_VERSION
    finally:
        upgraded.close()
    # A second open finds nothing to add and keeps the data.
    again = open_store(database)
    try:
        assert again.count_calls("proj") == 8
    finally:
        again.close()


def test_old_rows_read_back_and_series_fall_back_to_turns(
    open_store: OpenStore, old_database: tuple[str, list[Call], str]
) -> None:
    database, calls, scored = old_database
    upgraded = open_store(database)
    try:
        stored = upgraded.get_call("proj", scored)
        assert stored is not None
        assert stored.call == calls[0].model_copy(update={"id": scored, "project_id": "proj"})
        [score] = stored.scores
        assert (score.metric, score.value, score.error) == ("csat", 0.8, None)

        for field in AGENT_LATENCY_FIELDS:
            query = SeriesQuery(field=field, aggregate=Aggregate.COUNT, since=SINCE, until=UNTIL)
            got = {p.bucket_start: p.count for p in upgraded.series("proj", query)}
            expected = {
                day: len([v for c in calls if c.started_at.date() == day.date() for v in _agent(c, field)])
                for day in got
            }
            assert got == expected and sum(got.values()) > 0, field
    finally:
        upgraded.close()


def _agent(call: Call, field: str) -> list[float]:
    return [v for t in call.turns if t.role is Role.AGENT and (v := getattr(t, field)) is not None]


def test_old_and_new_rows_mix_after_the_upgrade(
    open_store: OpenStore, old_database: tuple[str, list[Call], str]
) -> None:
    database, calls, scored = old_database
    upgraded = open_store(database)
    try:
        # Half the old calls are re-ingested with other turns (a newer version, written with the arrays),
        # and new calls arrive; the other old calls keep their schema-1 rows.
        reingested = [make_call(c.external_id, started_at=c.started_at, turns=12) for c in calls[:4]]
        fresh = _calls("new", 5, turns=4)
        upgraded.insert_calls("proj", [*reingested, *fresh], version=2)
        current = [*reingested, *calls[4:], *fresh]
        upgraded.insert_scores(
            "proj",
            [
                MetricResult(
                    call_id=scored,
                    metric="csat",
                    value=None,
                    source=MetricSource.JUDGE,
                    error="judge reply was not JSON",
                    evaluated_at=T0 + timedelta(hours=1),
                )
            ],
        )

        for aggregate in (Aggregate.COUNT, Aggregate.P50, Aggregate.P95):
            query = SeriesQuery(
                field="e2e_s", aggregate=aggregate, since=SINCE, until=UNTIL, group_by_agent=True
            )
            got = {(p.bucket_start, p.group): (p.value, p.count) for p in upgraded.series("proj", query)}
            expected = _expected(current, aggregate)
            assert got.keys() == expected.keys()
            for key, (value, count) in expected.items():
                assert got[key][1] == count, key
                assert got[key][0] == pytest.approx(value, rel=1e-9), key

        stored = upgraded.get_call("proj", scored)
        assert stored is not None
        assert [(s.value, s.error) for s in stored.scores] == [(None, "judge reply was not JSON")]
        assert len(stored.call.turns) == 12
    finally:
        upgraded.close()


Key = tuple[datetime, str | None]


def _expected(calls: list[Call], aggregate: Aggregate) -> dict[Key, tuple[float, int]]:
    """Per (day, agent): the aggregate of the agent-turn e2e values and their count, computed here."""
    groups: dict[Key, list[float]] = {}
    for call in calls:
        key = (call.started_at.replace(hour=0, minute=0), call.agent_id)
        groups.setdefault(key, []).extend(_agent(call, "e2e_s"))
    out: dict[Key, tuple[float, int]] = {}
    for key, values in groups.items():
        if not values:
            continue
        if aggregate is Aggregate.COUNT:
            out[key] = (float(len(values)), len(values))
        else:
            out[key] = (float(np.percentile(values, int(aggregate.value[1:]))), len(values))
    return out


def test_upgrade_statements_alter_every_table_through_the_dialect() -> None:
    statements = upgrade_statements("convoscope", Dialect.cluster("main"))

    # The local table of each spec, then its Distributed table (columns only: it holds no indexes).
    assert len(statements) == 2 * (len(TABLES) + len(ROLLUP_TABLES) + 1)
    assert all(s.startswith("ALTER TABLE `convoscope`.") and " ON CLUSTER main" in s for s in statements)
    distributed = next(s for s in statements if s.startswith("ALTER TABLE `convoscope`.`calls` "))
    assert "ADD COLUMN IF NOT EXISTS `agent_e2e_s`" in distributed and "ADD INDEX" not in distributed
    calls = next(s for s in statements if s.startswith("ALTER TABLE `convoscope`.`calls_local`"))
    assert "ADD COLUMN IF NOT EXISTS `agent_e2e_s` Array(Float64) AFTER `ingested_at`" in calls
    assert calls.count("ADD COLUMN IF NOT EXISTS") == len(CALLS.columns)
    scores = next(s for s in statements if s.startswith("ALTER TABLE `convoscope`.`scores_local`"))
    assert "ADD COLUMN IF NOT EXISTS `error` Nullable(String) AFTER `evaluated_at`" in scores
    assert "ADD INDEX IF NOT EXISTS idx_id id TYPE bloom_filter(0.01) GRANULARITY 1" in calls
    spans = next(s for s in statements if s.startswith("ALTER TABLE `convoscope`.`spans_local`"))
    assert "ADD INDEX IF NOT EXISTS idx_conversation_id conversation_id TYPE bloom_filter(0.01)" in spans
    assert "ADD COLUMN IF NOT EXISTS `written_at` DateTime64(6, 'UTC') AFTER `error`" in scores
    assert "ADD INDEX IF NOT EXISTS idx_written_at written_at TYPE minmax GRANULARITY 1" in scores
    assert SCORES.column_names[-1] == "written_at"
