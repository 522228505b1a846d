"""``CallStore`` over ClickHouse SQL: embedded chDB or a ClickHouse server, through clickhouse-connect.

The same statements run on both; only the DDL dialect differs (see ``schema.Dialect``). Every statement
names its tables with the database (``db.table``), so the client never depends on a session ``USE``, and
every value reaches the server as a typed parameter (``{p:String}``), never formatted into SQL.

Replacement: every table is a ``ReplacingMergeTree(version)``. Calls are read with ``FINAL``, so the
highest version of a ``(project_id, source, external_id)`` wins in every query. Child rows (turns, tool
calls) carry the version of the call they were written with, and every read of them asks for the call's
current version, so a re-ingest with fewer turns, or an older payload replayed later, never leaks rows.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from bisect import bisect_left
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError, ProgrammingError

from ..errors import CallRefused, PayloadError, StoreError
from ..model import Call, MetricResult, Span
from .alert_queries import AlertQueriesMixin
from .base import (
    CURSOR_PATTERN,
    Aggregate,
    Bucket,
    CallFilter,
    CallOrder,
    CallPage,
    CallSummary,
    SeriesPoint,
    SeriesQuery,
    StoredCall,
)
from .deletion import DeletionMixin
from .log_queries import LogQueriesMixin
from .overview_queries import OverviewQueriesMixin
from .rollups import RollupMixin
from .rows import (
    CallRows,
    call_from_row,
    call_to_rows,
    datetime_from_micros,
    metric_from_row,
    metric_to_row,
    micros,
    span_from_row,
    span_to_row,
    tool_call_from_row,
    turn_from_row,
)
from .schema import (
    CALL_SERIES_COLUMNS,
    CALLS,
    SCHEMA_INFO,
    SCHEMA_VERSION,
    SCORES,
    SPANS,
    TABLES,
    TOOL_CALLS,
    TURNS,
    Dialect,
    SeriesField,
    TableSpec,
    ddl_statements,
    rebuild_statements,
    resolve_series_field,
    upgrade_statements,
)
from .series_rollups import SeriesRollupMixin, series_points
from .trace_queries import TraceQueriesMixin

__all__ = [
    "MAX_PAGE_SIZE",
    "MIN_SERVER_VERSION",
    "ClickHouseStore",
    "open_clickhouse_store",
    "redacted_url",
    "url_database",
]

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 500
"""Largest page ``list_calls`` returns; larger requests are clamped, so one request stays cheap."""

MIN_SERVER_VERSION = (23, 8)
"""Oldest ClickHouse server accepted over HTTP (an LTS with every function and type the schema uses)."""

_GET_CALLS_CHUNK = 1_000
"""Ids per ``get_calls`` query: bounds the ``IN`` list and the rows one query returns."""

_QUANTILES = {Aggregate.P50: 0.5, Aggregate.P90: 0.9, Aggregate.P95: 0.95, Aggregate.P99: 0.99}
_BUCKET_FN = {Bucket.HOUR: "toStartOfHour", Bucket.DAY: "toStartOfDay"}


@contextmanager
def _store_errors(action: str) -> Iterator[None]:
    """Turn driver and engine failures into ``StoreError`` naming what the store was doing."""
    try:
        yield
    except (ClickHouseError, RuntimeError, OSError) as exc:
        raise StoreError(f"ClickHouse store could not {action}: {exc}") from exc


_AT_ROW = re.compile(r"\bat row (\d+)\b")
_MAX_NAMED_REFUSALS = 16
"""Refused call rows set aside one by one before the search is left to the caller."""


def _refused_row(exc: StoreError) -> int | None:
    """The 1-based row of an insert the engine says it refused ("... at row N"), when it says so."""
    found = _AT_ROW.search(str(exc))
    return int(found.group(1)) if found else None


_ORDERS: dict[CallOrder, tuple[str, bool]] = {
    CallOrder.NEWEST: ("toUnixTimestamp64Micro(started_at)", True),
    CallOrder.OLDEST: ("toUnixTimestamp64Micro(started_at)", False),
    CallOrder.LONGEST: ("toInt64(round(duration_s * 1000000))", True),
    CallOrder.COSTLIEST: ("toInt64(round(cost_usd * 1000000))", True),
}
"""Each order's integer sort key (what its cursors hold) and whether it runs descending."""


def _encode_cursor(started_us: int, call_id: str) -> str:
    return f"{started_us}.{call_id}"


def _decode_cursor(cursor: str) -> tuple[int, str]:
    if re.match(CURSOR_PATTERN, cursor) is None:
        raise PayloadError("invalid cursor", [{"loc": ["cursor"], "msg": "not a cursor this API issued"}])
    started, _, call_id = cursor.partition(".")
    return int(started), call_id


class ClickHouseStore(
    AlertQueriesMixin,
    TraceQueriesMixin,
    LogQueriesMixin,
    OverviewQueriesMixin,
    SeriesRollupMixin,
    RollupMixin,
    DeletionMixin,
):
    """The event store over one clickhouse-connect client and one database.

    Build it with :func:`open_clickhouse_store`, which creates the schema. Reads run with ``max_threads``
    capped, so a dashboard cannot starve ingest of the CPU on a small box.
    """

    def __init__(
        self,
        client: Any,
        *,
        database: str,
        embedded: bool,
        query_max_threads: int,
        system_logs: Mapping[str, object],
        cluster: str | None = None,
    ) -> None:
        self._client = client
        self._db = database
        self._embedded = embedded
        self._cluster = cluster
        self._read_settings = {"max_threads": query_max_threads}
        self._system_logs = dict(system_logs)
        self._unfilled_calls_gone = False

    @property
    def database(self) -> str:
        """The database holding the tables."""
        return self._db

    @property
    def system_logs(self) -> dict[str, object]:
        """What open found about ClickHouse's system log tables (present, TTLs applied, failures)."""
        return dict(self._system_logs)

    # -- helpers -------------------------------------------------------------------------------------

    def _table(self, spec: TableSpec) -> str:
        return f"`{self._db}`.`{spec.name}`"

    def query(self, sql: str, parameters: Mapping[str, object] | None = None) -> list[tuple[Any, ...]]:
        """Rows of any read statement, run exactly as the store runs its own (same client and settings).

        For diagnostics and benchmarks that time variants of the store's statements against the store's
        own answers; it is not scoped to a project, so it never serves a request.
        """
        with _store_errors("run a query"):
            result = self._client.query(sql, parameters=dict(parameters or {}), settings=self._read_settings)
            return [tuple(row) for row in result.result_rows]

    def command(self, sql: str) -> None:
        """Run a statement without rows (``OPTIMIZE TABLE``, DDL of a scratch table); for maintenance."""
        with _store_errors("run a command"):
            self._client.command(sql)

    def _execute(self, sql: str, parameters: Mapping[str, object], action: str) -> None:
        """A statement without rows (``INSERT … SELECT``), with bound parameters."""
        with _store_errors(action):
            self._client.command(sql, parameters=dict(parameters), settings=self._read_settings)

    def _rows(self, sql: str, parameters: Mapping[str, object], action: str) -> list[dict[str, Any]]:
        with _store_errors(action):
            result = self._client.query(sql, parameters=dict(parameters), settings=self._read_settings)
            names = result.column_names
            return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    def _insert(self, spec: TableSpec, rows: Sequence[tuple[Any, ...]], action: str) -> None:
        """One column-oriented insert; column types are given so no ``DESCRIBE`` runs per batch."""
        if not rows:
            return
        with _store_errors(action):
            self._client.insert(
                spec.name,
                list(zip(*rows, strict=True)),
                database=self._db,
                column_names=spec.column_names,
                column_type_names=spec.column_types,
                column_oriented=True,
            )

    # -- calls ---------------------------------------------------------------------------------------

    def insert_calls(self, project_id: str, calls: Sequence[Call], *, version: int) -> list[str]:
        """Write a batch with one insert per table; returns the ids in input order.

        Within a batch the last payload of a key wins (the same key twice in one insert would otherwise
        mix turns of both). Children are written before the calls, so a reader never sees a call version
        whose turns are not there yet; a crash between the inserts is healed by the outbox replay. When
        the engine refuses an insert and names the row ("at row N"), ``CallRefused`` carries the positions
        in ``calls`` of the calls those rows belong to; a refused call row is set aside and the other
        calls are written (``others_written``), a refused child row fails the whole write.
        """
        if version < 0:
            raise PayloadError(f"version must be >= 0, got {version}")
        ingested_at = datetime.now(UTC)
        latest: dict[tuple[str, str], tuple[int, CallRows]] = {}
        ids: list[str] = []
        for index, call in enumerate(calls):
            rows = call_to_rows(project_id, call, version=version, ingested_at=ingested_at)
            latest[(call.source.value, call.external_id)] = (index, rows)
            ids.extend(rows.ids)
        batch = CallRows()
        for _, rows in latest.values():
            batch.extend(rows)
        owners = [index for index, _ in latest.values()]
        for spec, table_rows, action, per_call in (
            (TURNS, batch.turns, "write turns", [len(rows.turns) for _, rows in latest.values()]),
            (
                TOOL_CALLS,
                batch.tool_calls,
                "write tool calls",
                [len(rows.tool_calls) for _, rows in latest.values()],
            ),
        ):
            try:
                self._insert(spec, table_rows, action)
            except StoreError as exc:
                refused = _refused_row(exc)
                if refused is None or refused > len(table_rows):
                    raise
                owner = owners[bisect_left(list(accumulate(per_call)), refused)]
                raise CallRefused(str(exc), [owner], others_written=False) from exc.__cause__
        try:
            self._insert_call_rows(batch.calls, owners)
        finally:
            self._note_write(project_id)
        return ids

    def _insert_call_rows(self, rows: list[tuple[Any, ...]], owners: list[int]) -> None:
        """Insert the call rows; when the engine names a row it refuses, write the others without it.

        The children of every call are already written, so setting a refused call aside costs one more
        insert of call rows, not a new batch. ``CallRefused`` then names every refused call and says
        the others were written. A refusal that names no row propagates as it is.
        """
        refused: list[int] = []
        first: StoreError | None = None
        while rows:
            try:
                self._insert(CALLS, rows, "write calls")
                break
            except StoreError as exc:
                row = _refused_row(exc)
                if row is None or row > len(rows) or len(refused) >= _MAX_NAMED_REFUSALS:
                    if not refused:
                        raise
                    raise CallRefused(str(first), refused, others_written=False) from exc.__cause__
                first = first or exc
                refused.append(owners.pop(row - 1))
                rows = rows[: row - 1] + rows[row:]
        if refused:
            raise CallRefused(str(first), refused, others_written=True)

    def get_call(self, project_id: str, call_id: str) -> StoredCall | None:
        """The newest version of one call with the turns and tool calls of that version, and its scores.

        Every read puts its sort-key conditions in ``PREWHERE``: under ``FINAL`` ClickHouse does not move
        ``WHERE`` there by itself, and would read and merge every column of the key's granules before
        filtering. A sort-key condition keeps or drops whole key groups, so it cannot change which version
        ``FINAL`` keeps; conditions on other columns (``id``, ``version``) stay in ``WHERE``, after it.
        """
        params = {"p": project_id, "id": call_id}
        # The inner read (no FINAL, only key columns) finds the call's natural key from any version that
        # had this id; FINAL over that key range then yields the current version, which must still carry
        # the id (a changed started_at gives a new id, and the old one must not resolve).
        calls = self._table(CALLS)
        found = self._rows(
            f"SELECT {CALLS.select_list(CALL_SERIES_COLUMNS)} FROM {calls} FINAL "
            "PREWHERE project_id = {p:String} "
            f"AND (source, external_id) IN (SELECT source, external_id FROM {calls} "
            "PREWHERE project_id = {p:String} AND id = {id:String}) WHERE id = {id:String}",
            params,
            "read a call",
        )
        if not found:
            return None
        row = found[0]
        child = {**params, "v": row["version"]}
        turns = self._children(TURNS, "idx", child, "read turns")
        tools = self._children(TOOL_CALLS, "seq", child, "read tool calls")
        call = call_from_row(
            row,
            turns=[turn_from_row(t) for t in turns],
            tool_calls=[tool_call_from_row(t) for t in tools],
        )
        return StoredCall(
            call=call,
            scores=self._scores(project_id, call_id),
            version=row["version"],
            ingested_at=datetime_from_micros(row["ingested_at"]),
        )

    def get_calls(self, project_id: str, call_ids: Collection[str]) -> dict[str, StoredCall]:
        """``get_call`` for many ids with one query per table; an id with no current call is absent.

        Each table is read once with ``call_id IN (...)`` in ``PREWHERE`` (its sort key but for the call
        key), so N calls cost about what one does: a read per call was most of an evaluation job's time.
        The children and scores are kept only for the version each call is at, exactly as ``get_call``.
        """
        wanted = sorted(set(call_ids))
        found: dict[str, StoredCall] = {}
        for start in range(0, len(wanted), _GET_CALLS_CHUNK):
            found.update(self._get_calls(project_id, wanted[start : start + _GET_CALLS_CHUNK]))
        return found

    def _get_calls(self, project_id: str, call_ids: Sequence[str]) -> dict[str, StoredCall]:
        params = {"p": project_id, "ids": list(call_ids)}
        calls = self._table(CALLS)
        rows = self._rows(
            f"SELECT {CALLS.select_list(CALL_SERIES_COLUMNS)} FROM {calls} FINAL "
            "PREWHERE project_id = {p:String} "
            f"AND (source, external_id) IN (SELECT source, external_id FROM {calls} "
            "PREWHERE project_id = {p:String} AND id IN {ids:Array(String)}) WHERE id IN {ids:Array(String)}",
            params,
            "read calls",
        )
        if not rows:
            return {}
        versions = {row["id"]: row["version"] for row in rows}
        params["ids"] = sorted(versions)
        turns = self._children_of(TURNS, "idx", params, versions, "read turns")
        tools = self._children_of(TOOL_CALLS, "seq", params, versions, "read tool calls")
        scores: dict[str, list[MetricResult]] = {}
        for score in self._rows(
            f"SELECT {SCORES.select_list()} FROM {self._table(SCORES)} FINAL "
            "PREWHERE project_id = {p:String} AND call_id IN {ids:Array(String)} ORDER BY call_id, metric",
            params,
            "read scores",
        ):
            scores.setdefault(score["call_id"], []).append(metric_from_row(score))
        found: dict[str, StoredCall] = {}
        for row in rows:
            call_id = row["id"]
            call = call_from_row(
                row,
                turns=[turn_from_row(t) for t in turns.get(call_id, [])],
                tool_calls=[tool_call_from_row(t) for t in tools.get(call_id, [])],
            )
            found[call_id] = StoredCall(
                call=call,
                scores=scores.get(call_id, []),
                version=row["version"],
                ingested_at=datetime_from_micros(row["ingested_at"]),
            )
        return found

    def _children_of(
        self,
        spec: TableSpec,
        order: str,
        params: Mapping[str, object],
        versions: Mapping[str, int],
        action: str,
    ) -> dict[str, list[dict[str, Any]]]:
        """The rows of several call versions in a child table, by call id, each call's in ``order``."""
        by_call: dict[str, list[dict[str, Any]]] = {}
        for row in self._rows(
            f"SELECT {spec.select_list()} FROM {self._table(spec)} FINAL "
            "PREWHERE project_id = {p:String} AND call_id IN {ids:Array(String)} "
            f"ORDER BY call_id, {order}",
            params,
            action,
        ):
            if row["version"] == versions.get(row["call_id"]):
                by_call.setdefault(row["call_id"], []).append(row)
        return by_call

    def _children(
        self, spec: TableSpec, order: str, params: Mapping[str, object], action: str
    ) -> list[dict[str, Any]]:
        """The rows of one call version in a child table, in ``order`` (key conditions in PREWHERE)."""
        return self._rows(
            f"SELECT {spec.select_list()} FROM {self._table(spec)} FINAL "
            "PREWHERE project_id = {p:String} AND call_id = {id:String} WHERE version = {v:UInt64} "
            f"ORDER BY {order}",
            params,
            action,
        )

    def list_calls(self, project_id: str, filters: CallFilter, *, limit: int, cursor: str | None) -> CallPage:
        """In ``filters.order`` (newest first by default), ties broken by id; the cursor is the last row's
        key, so pages never overlap.

        ``limit`` is clamped to ``MAX_PAGE_SIZE``; below 1 is a ``PayloadError``.
        """
        if limit < 1:
            raise PayloadError(
                f"limit must be >= 1, got {limit}", [{"loc": ["limit"], "msg": "must be >= 1"}]
            )
        limit = min(limit, MAX_PAGE_SIZE)
        where, params = self._call_filter(project_id, filters)
        key, descending = _ORDERS[filters.order]
        if cursor is not None:
            value, last_id = _decode_cursor(cursor)
            if filters.order is CallOrder.NEWEST:  # in this form the start's minmax index still prunes
                where.append(
                    "(started_at < fromUnixTimestamp64Micro({cur_t:Int64}, 'UTC') OR "
                    "(started_at = fromUnixTimestamp64Micro({cur_t:Int64}, 'UTC') AND id < {cur_id:String}))"
                )
            else:
                where.append(f"({key}, id) {'<' if descending else '>'} ({{cur_t:Int64}}, {{cur_id:String}})")
            params.update(cur_t=value, cur_id=last_id)
        params["lim"] = limit + 1
        direction = "DESC" if descending else "ASC"
        rows = self._rows(
            "SELECT id, source, external_id, agent_id, toUnixTimestamp64Micro(started_at) AS started_us, "
            "duration_s, end_reason, turn_count, tool_call_count, tool_error_count, cost_usd, has_recording, "
            f"tags, {key} AS sort_key FROM {self._table(CALLS)} FINAL WHERE {' AND '.join(where)} "
            f"ORDER BY sort_key {direction}, id {direction} LIMIT {{lim:UInt32}}",
            params,
            "list calls",
        )
        more = len(rows) > limit
        rows = rows[:limit]
        items = [
            CallSummary(
                id=r["id"],
                source=r["source"],
                external_id=r["external_id"],
                agent_id=r["agent_id"],
                started_at=datetime_from_micros(r["started_us"]),
                duration_s=r["duration_s"],
                end_reason=r["end_reason"],
                turn_count=r["turn_count"],
                tool_call_count=r["tool_call_count"],
                tool_error_count=r["tool_error_count"],
                cost_usd=r["cost_usd"],
                has_recording=bool(r["has_recording"]),
                tags=list(r["tags"]),
            )
            for r in rows
        ]
        next_cursor = _encode_cursor(int(rows[-1]["sort_key"]), rows[-1]["id"]) if more else None
        return CallPage(items=items, next_cursor=next_cursor)

    def _call_filter(self, project_id: str, filters: CallFilter) -> tuple[list[str], dict[str, object]]:
        """WHERE conditions on ``calls`` and their parameters; every value is a typed parameter."""
        where = ["project_id = {p:String}"]
        params: dict[str, object] = {"p": project_id}
        if filters.agent_id is not None:
            where.append("agent_id = {agent:String}")
            params["agent"] = filters.agent_id
        if filters.source is not None:
            where.append("source = {source:String}")
            params["source"] = filters.source.value
        if filters.since is not None:
            where.append("started_at >= fromUnixTimestamp64Micro({since:Int64}, 'UTC')")
            params["since"] = micros(filters.since)
        if filters.until is not None:
            where.append("started_at < fromUnixTimestamp64Micro({until:Int64}, 'UTC')")
            params["until"] = micros(filters.until)
        if filters.tag is not None:
            where.append("has(tags, {tag:String})")
            params["tag"] = filters.tag
        if filters.end_reason is not None:
            where.append("end_reason = {end_reason:String}")
            params["end_reason"] = filters.end_reason.value
        if filters.has_recording is not None:
            where.append("has_recording = {has_rec:UInt8}")
            params["has_rec"] = int(filters.has_recording)
        if filters.agent_version is not None:
            where.append("agent_version = {agent_version:String}")
            params["agent_version"] = filters.agent_version
        where += self._score_and_text_filter(filters, params)
        return where, params

    def _score_and_text_filter(self, filters: CallFilter, params: dict[str, object]) -> list[str]:
        """Conditions through the calls' scores and turns, as ``id IN (...)`` over the project's rows."""
        where: list[str] = []
        scores, turns = self._table(SCORES), self._table(TURNS)
        if filters.failing_metric is not None:
            where.append(
                f"id IN (SELECT call_id FROM {scores} FINAL WHERE project_id = {{p:String}} "
                "AND metric = {failing:String} AND passed = 0)"
            )
            params["failing"] = filters.failing_metric
        if filters.score_metric is not None and (
            filters.score_min is not None or filters.score_max is not None
        ):
            bounds = ["metric = {score_metric:String}"]
            params["score_metric"] = filters.score_metric
            if filters.score_min is not None:
                bounds.append("value_num >= {score_min:Float64}")
                params["score_min"] = filters.score_min
            if filters.score_max is not None:
                bounds.append("value_num <= {score_max:Float64}")
                params["score_max"] = filters.score_max
            where.append(
                f"id IN (SELECT call_id FROM {scores} FINAL WHERE project_id = {{p:String}} "
                f"AND {' AND '.join(bounds)})"
            )
        if filters.text is not None:
            where.append(
                f"id IN (SELECT call_id FROM {turns} WHERE project_id = {{p:String}} "
                "AND positionCaseInsensitiveUTF8(text, {text:String}) > 0)"
            )
            params["text"] = filters.text
        return where

    def metric_names(self, project_id: str) -> list[str]:
        """The metrics the project has scores of, sorted (one read of the scores' low-cardinality
        ``metric`` column)."""
        rows = self._rows(
            f"SELECT DISTINCT metric FROM {self._table(SCORES)} WHERE project_id = {{p:String}} "
            "ORDER BY metric",
            {"p": project_id},
            "list metric names",
        )
        return [str(row["metric"]) for row in rows]

    def count_calls(self, project_id: str) -> int:
        """Distinct calls of the project after replacement."""
        rows = self._rows(
            f"SELECT count() AS n FROM {self._table(CALLS)} FINAL WHERE project_id = {{p:String}}",
            {"p": project_id},
            "count calls",
        )
        return int(rows[0]["n"])

    # -- series --------------------------------------------------------------------------------------

    def series(self, project_id: str, query: SeriesQuery) -> list[SeriesPoint]:
        """One point per (bucket, agent) that has values; buckets are UTC hours or days of call start.

        Turn and score series are bucketed by their call's start too, so every series over one range
        covers the same calls. Percentiles are exact (``quantileExactInclusive``, the same linear
        interpolation as ``numpy.percentile``'s default); ``count`` is the number of values. The
        dashboard's usual series over whole hours of many calls come from the rollups instead
        (:mod:`.series_rollups`, where its approximation is stated).
        """
        field = resolve_series_field(query.field)
        if query.since.tzinfo is None or query.until.tzinfo is None:
            raise PayloadError("series since/until must be timezone-aware")
        if query.until <= query.since:
            raise PayloadError(
                "series until must be after since", [{"loc": ["until"], "msg": "must be > since"}]
            )
        params: dict[str, object] = {
            "p": project_id,
            "since": micros(query.since),
            "until": micros(query.until),
        }
        if query.agent_id is not None:
            params["agent"] = query.agent_id
        if query.source is not None:
            params["source"] = query.source.value
        if field.metric is not None:
            params["metric"] = field.metric
        rolled = self._rollup_series(project_id, field, query)
        if rolled is not None:
            return rolled
        values = self._series_values(field, query)
        if field.name == "calls" or query.aggregate is Aggregate.COUNT:
            agg = "toFloat64(count())"
        elif query.aggregate is Aggregate.AVG:
            agg = "avg(v)"
        else:
            agg = f"quantileExactInclusive({_QUANTILES[query.aggregate]})(v)"
        group = "agent_id" if query.group_by_agent else "CAST(NULL, 'Nullable(String)')"
        rows = self._rows(
            f"SELECT toUnixTimestamp({_BUCKET_FN[query.bucket]}(started_at)) AS b, {group} AS g, "
            f"{agg} AS value, count() AS n FROM ({values}) WHERE v IS NOT NULL "
            "GROUP BY b, g ORDER BY b, g",
            params,
            f"compute the series {field.name!r}",
        )
        return series_points(rows)

    @staticmethod
    def _series_where(query: SeriesQuery, time_column: str) -> str:
        """The project, time range, agent and source conditions, on the table's call-start column."""
        where = [
            "project_id = {p:String}",
            f"{time_column} >= fromUnixTimestamp64Micro({{since:Int64}}, 'UTC')",
            f"{time_column} < fromUnixTimestamp64Micro({{until:Int64}}, 'UTC')",
        ]
        if query.agent_id is not None:
            where.append("agent_id = {agent:String}")
        if query.source is not None:
            where.append("source = {source:String}")
        return " AND ".join(where)

    def _series_values(self, field: SeriesField, query: SeriesQuery) -> str:
        """A subquery of (started_at, agent_id, v) rows for a field, restricted to current calls."""
        calls = self._table(CALLS)
        calls_where = self._series_where(query, "started_at")
        if field.table == "calls":
            return f"SELECT started_at, agent_id, {field.expr} AS v FROM {calls} FINAL WHERE {calls_where}"
        if field.table == "turns":
            # Turns carry their call's agent, source and start, so no join is needed; the (id, version)
            # filter keeps only turns of each call's current version.
            turn_where = self._series_where(query, "call_started_at")
            current = f"SELECT id, version FROM {calls} FINAL WHERE {calls_where}"
            if field.call_array is None:
                return (
                    f"SELECT call_started_at AS started_at, agent_id, {field.expr} AS v "
                    f"FROM {self._table(TURNS)} FINAL WHERE {turn_where} AND {field.where} "
                    f"AND (call_id, version) IN ({current})"
                )
            # The same values kept on the current call row: FINAL replaces the array with the call, so
            # no join. Calls written before the arrays existed (filled = 0) read theirs from turns.
            arrays = (
                f"SELECT started_at, agent_id, arrayJoin({field.call_array}) AS v FROM {calls} FINAL "
                f"WHERE {calls_where} AND agent_latency_filled = 1"
            )
            if not self._has_unfilled_calls():
                return arrays
            return (
                f"{arrays} UNION ALL SELECT call_started_at AS started_at, agent_id, {field.expr} AS v "
                f"FROM {self._table(TURNS)} FINAL WHERE {turn_where} AND {field.where} "
                f"AND (call_id, version) IN ({current} AND agent_latency_filled = 0)"
            )
        # Scores hold no agent or call start: they are joined to the current call at query time, so a
        # call re-ingested with another agent or start moves its scores with it, and scores of a call id
        # that no longer exists (its start changed) drop out instead of being counted twice.
        return (
            "SELECT c.started_at AS started_at, c.agent_id AS agent_id, s.v AS v FROM "
            f"(SELECT call_id, {field.expr} AS v FROM {self._table(SCORES)} FINAL "
            f"WHERE project_id = {{p:String}} AND {field.where}) AS s "
            f"INNER JOIN (SELECT id, started_at, agent_id FROM {calls} FINAL WHERE {calls_where}) AS c "
            "ON s.call_id = c.id"
        )

    def _has_unfilled_calls(self) -> bool:
        """Whether any ``calls`` row (any version) predates the latency arrays; False is remembered.

        Every write since schema 2 fills the arrays and an older convoscope refuses a newer schema, so
        once no such row is left none can appear again; until then the check is one cheap read.
        """
        if self._unfilled_calls_gone:
            return False
        rows = self._rows(
            f"SELECT count() AS n FROM (SELECT 1 FROM {self._table(CALLS)} "
            "WHERE agent_latency_filled = 0 LIMIT 1)",
            {},
            "look for calls written before schema 2",
        )
        self._unfilled_calls_gone = int(rows[0]["n"]) == 0
        return not self._unfilled_calls_gone

    # -- scores and spans ----------------------------------------------------------------------------

    def insert_scores(self, project_id: str, results: Sequence[MetricResult]) -> None:
        """Write metric results; the latest ``evaluated_at`` of a (call, metric) wins."""
        written = micros(datetime.now(UTC))
        rows = [metric_to_row(project_id, result, written_us=written) for result in results]
        try:
            self._insert(SCORES, rows, "write scores")
        finally:
            self._note_write(project_id)

    def _scores(self, project_id: str, call_id: str) -> list[MetricResult]:
        rows = self._rows(
            f"SELECT {SCORES.select_list()} FROM {self._table(SCORES)} FINAL "
            "PREWHERE project_id = {p:String} AND call_id = {id:String} ORDER BY metric",
            {"p": project_id, "id": call_id},
            "read scores",
        )
        return [metric_from_row(row) for row in rows]

    def insert_spans(
        self, project_id: str, spans: Sequence[Span], *, conversation_ids: Sequence[str | None] | None = None
    ) -> None:
        """Write spans; the write time is the version, so the last write of a (trace, span) wins.

        ``conversation_ids`` (one per span, in order; None keeps the span's own) lets a caller that keyed a
        batch write the keys without copying every span to set them.
        """
        version = time.time_ns() // 1000
        if conversation_ids is None:
            rows = [span_to_row(project_id, span, version=version) for span in spans]
        elif len(conversation_ids) != len(spans):
            raise PayloadError(f"{len(conversation_ids)} conversation ids for {len(spans)} spans")
        else:
            rows = [
                span_to_row(project_id, span, version=version, conversation_id=key)
                for span, key in zip(spans, conversation_ids, strict=True)
            ]
        self._insert(SPANS, rows, "write spans")

    def list_spans(
        self,
        project_id: str,
        *,
        call_id: str | None = None,
        trace_id: str | None = None,
        conversation_id: str | None = None,
    ) -> list[Span]:
        """Spans of one call, trace or conversation (several given: all must match), by start time."""
        if call_id is None and trace_id is None and conversation_id is None:
            raise PayloadError("list_spans needs a call_id, a trace_id or a conversation_id")
        where = ["project_id = {p:String}"]
        params: dict[str, object] = {"p": project_id}
        if call_id is not None:
            where.append("call_id = {call:String}")
            params["call"] = call_id
        if trace_id is not None:
            where.append("trace_id = {trace:String}")
            params["trace"] = trace_id
        if conversation_id is not None:
            where.append("conversation_id = {conv:String}")
            params["conv"] = conversation_id
        rows = self._rows(
            f"SELECT {SPANS.select_list()} FROM {self._table(SPANS)} FINAL WHERE {' AND '.join(where)} "
            "ORDER BY start_at, span_id",
            params,
            "list spans",
        )
        return [span_from_row(row) for row in rows]

    def spans_of_conversations(
        self, project_id: str, conversation_ids: Collection[str], trace_ids: Collection[str] = ()
    ) -> list[Span]:
        """Every span of each trace that holds a span of ``conversation_ids``, and of ``trace_ids``.

        One read for many conversations: OTLP assembly keys a conversation's late spans by their whole
        trace, and reading each conversation and then each of its traces was most of an assembly's cost.
        """
        if not conversation_ids and not trace_ids:
            return []
        spans = self._table(SPANS)
        rows = self._rows(
            f"SELECT {SPANS.select_list()} FROM {spans} FINAL PREWHERE project_id = {{p:String}} "
            f"AND (trace_id IN (SELECT trace_id FROM {spans} WHERE project_id = {{p:String}} "
            "AND conversation_id IN {convs:Array(String)}) OR trace_id IN {traces:Array(String)}) "
            "ORDER BY start_at, span_id",
            {"p": project_id, "convs": sorted(set(conversation_ids)), "traces": sorted(set(trace_ids))},
            "list the spans of conversations",
        )
        return [span_from_row(row) for row in rows]

    # -- health --------------------------------------------------------------------------------------

    def ping(self) -> dict[str, object]:
        """A real round trip: the engine version, the distinct calls stored, and every table's row count.

        ``calls`` counts each call once (read with ``FINAL``); ``table_rows`` counts physical rows, where a
        re-ingested call stays twice until ClickHouse merges its versions in the background.
        """
        counts: dict[str, int] = {}
        with _store_errors("answer a health probe"):
            version = str(self._client.query("SELECT version()").result_rows[0][0])
            engine = {
                str(name): str(value)
                for name, value in self._client.query(
                    "SELECT name, value FROM system.server_settings WHERE name IN "
                    "('background_pool_size', 'max_server_memory_usage')"
                ).result_rows
            }
            for spec in TABLES:
                result = self._client.query(
                    f"SELECT count() FROM {self._table(spec)}", settings=self._read_settings
                )
                counts[spec.name] = int(result.result_rows[0][0])
            calls = int(
                self._client.query(
                    f"SELECT count() FROM {self._table(CALLS)} FINAL", settings=self._read_settings
                ).result_rows[0][0]
            )
        return {
            "ok": True,
            "backend": "chdb" if self._embedded else "clickhouse",
            "engine_version": version,
            "database": self._db,
            "schema_version": SCHEMA_VERSION,
            "calls": calls,
            "table_rows": counts,
            "system_logs": self.system_logs,
            "engine_limits": engine,
        }

    def reachable(self) -> None:
        """One read of ``calls``' part metadata: the engine answers and the tables are there."""
        with _store_errors("answer a probe"):
            self._client.query(f"SELECT count() FROM {self._table(CALLS)}", settings=self._read_settings)

    def close(self) -> None:
        """Close the client, releasing chDB's data directory for another path in this process.

        The client is then replaced by one that refuses every call: a closed HTTP client would go on
        answering through the shared connection pool, and a closed store must fail alike on both paths.
        """
        if isinstance(self._client, _ClosedClient):
            return
        try:
            with _store_errors("close"):
                self._client.close()
        finally:
            self._client = _ClosedClient()


class _ClosedClient:
    """Stands in for the client of a closed store."""

    def __getattr__(self, name: str) -> Any:
        raise ProgrammingError("the ClickHouse store has been closed")


# -- opening -----------------------------------------------------------------------------------------


def redacted_url(url: str) -> str:
    """``url`` with its password masked, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def url_database(url: str) -> str | None:
    """The database a server URL names in its path (``http://host:8123/db``), if any."""
    name = urlsplit(url).path.strip("/")
    return name or None


def _server_url(url: str) -> str:
    """The URL the client connects with: without the database path, which names the store's database.

    clickhouse-connect sends a path's database with every request, and a server refuses a request for a
    database that does not exist yet, so a first start against a fresh server could not create it.
    """
    return urlunsplit(urlsplit(url)._replace(path=""))


def _check_server_version(client: Any) -> None:
    raw = str(client.server_version)
    try:
        major, minor = (int(part) for part in raw.split(".")[:2])
    except ValueError:
        return
    if (major, minor) < MIN_SERVER_VERSION:
        client.close()
        wanted = ".".join(map(str, MIN_SERVER_VERSION))
        raise StoreError(f"ClickHouse server {raw} is too old; convoscope needs {wanted} or newer")


def _apply_schema(client: Any, database: str, dialect: Dialect) -> None:
    """Create the schema idempotently, add what an older schema lacks, refuse a newer schema.

    The version is recorded only after the columns were added, so an upgrade cut short is redone on
    the next open.
    """
    for statement in ddl_statements(database, dialect):
        client.command(statement)
    info = f"`{database}`.`{SCHEMA_INFO.name}`"
    stored = client.query(f"SELECT max(version) FROM {info} FINAL").result_rows[0][0]
    if stored and int(stored) > SCHEMA_VERSION:
        raise StoreError(
            f"database {database!r} has schema version {stored}; this convoscope knows {SCHEMA_VERSION}. "
            "Upgrade convoscope."
        )
    if int(stored or 0) < SCHEMA_VERSION:
        for statement in upgrade_statements(database, dialect):
            client.command(statement)
        _rekey(client, database, dialect)
        client.insert(
            SCHEMA_INFO.name,
            [(1, SCHEMA_VERSION)],
            database=database,
            column_names=SCHEMA_INFO.column_names,
            column_type_names=SCHEMA_INFO.column_types,
        )


def _rekey(client: Any, database: str, dialect: Dialect) -> None:
    """Rebuild every table whose sorting key is not its spec's (written by an older convoscope)."""
    keys = {
        str(name): str(key)
        for name, key in client.query(
            "SELECT name, sorting_key FROM system.tables WHERE database = {db:String}",
            parameters={"db": database},
        ).result_rows
    }
    for spec in TABLES:
        if keys.get(dialect.local(spec).name, spec.sorting_key) != spec.sorting_key:
            logger.info("rebuilding %s.%s in its new order (%s)", database, spec.name, spec.sorting_key)
            for statement in rebuild_statements(database, dialect, spec):
                client.command(statement)


def _system_log_hygiene(client: Any, *, embedded: bool, ttl_days: int) -> dict[str, object]:
    """Find the system log tables; on a server, bound each with a TTL so they cannot fill the disk.

    Log tables without a TTL grew to tens of GB on small boxes (langfuse/langfuse#13123). chDB keeps
    them per process and they are reported only. A TTL that cannot be applied (no privilege, a managed
    service) is reported in the result rather than failing open.
    """
    rows = client.query(
        "SELECT t.name, countIf(c.name = 'event_date') AS dated, any(t.engine) LIKE '%MergeTree' AS merged "
        "FROM system.tables AS t "
        "LEFT JOIN system.columns AS c ON c.database = t.database AND c.table = t.name "
        "WHERE t.database = 'system' AND t.name LIKE '%\\_log' GROUP BY t.name ORDER BY t.name"
    ).result_rows
    present = [str(name) for name, _, _ in rows]
    applied: list[str] = []
    failed: dict[str, str] = {}
    if not embedded:
        for name, dated, merged in rows:
            # Only the MergeTree log tables grow on disk and take a TTL; a log served by another engine
            # (newer servers have some) refuses the clause, which would be a warning on every start.
            if not dated or not merged:
                continue
            try:
                client.command(
                    f"ALTER TABLE system.`{name}` MODIFY TTL event_date + INTERVAL {int(ttl_days)} DAY"
                )
                applied.append(str(name))
            except ClickHouseError as exc:
                failed[str(name)] = str(exc).splitlines()[0]
                logger.warning("could not set a TTL on system.%s: %s", name, failed[str(name)])
    return {"tables": present, "ttl_days": ttl_days, "ttl_applied": applied, "ttl_failed": failed}


def _import_chdb_without_arrow() -> None:
    """Import chDB before clickhouse-connect does, with pyarrow hidden while it loads.

    chDB imports pyarrow, and numpy with it, as it loads (about 0.2 s, a third of a command that reads a
    stopped data directory), although pyarrow is optional to it and serves only its Arrow output; the
    store reads Native format through clickhouse-connect and never asks for Arrow. The hiding lasts for
    chDB's own import: a later ``import pyarrow`` anywhere works as usual, and only chDB's Arrow helpers,
    unused here, then report pyarrow as missing. Nothing is hidden once either is loaded.
    """
    if "chdb" in sys.modules or "pyarrow" in sys.modules:
        return
    sys.modules["pyarrow"] = None  # type: ignore[assignment]  # makes ``import pyarrow`` raise ImportError
    try:
        import chdb  # noqa: F401
    finally:
        del sys.modules["pyarrow"]


def open_clickhouse_store(
    *,
    path: Path | None = None,
    url: str | None = None,
    database: str = "convoscope",
    query_max_threads: int = 2,
    system_log_ttl_days: int = 3,
    cluster: str | None = None,
    merge_threads: int = 2,
    max_memory_bytes: int | None = None,
) -> ClickHouseStore:
    """Open (and create if needed) the store: chDB in ``path``, or the server at ``url``.

    Exactly one of ``path`` and ``url``. chDB allows one data directory per process: close the store
    before opening another path. ``cluster`` renders replicated DDL with ``ON CLUSTER`` (server only).
    ``merge_threads`` and ``max_memory_bytes`` bound the embedded engine's background merges and memory
    (a server is tuned in its own configuration): idle merges burning both cores and unbounded memory
    are what small self-hosted boxes suffer from most.
    """
    if (path is None) == (url is None):
        raise StoreError("open_clickhouse_store needs exactly one of path (embedded chDB) or url (a server)")
    if query_max_threads < 1:
        raise StoreError(f"query_max_threads must be >= 1, got {query_max_threads}")
    embedded = path is not None
    if embedded and cluster is not None:
        raise StoreError("a cluster needs a ClickHouse server url, not an embedded path")
    dialect = Dialect.cluster(cluster) if cluster else Dialect.embedded()
    where = str(path) if path is not None else f"the ClickHouse server at {redacted_url(url or '')}"
    client: Any = None
    try:
        with _store_errors(f"open {where}"):
            if path is not None:
                path.mkdir(parents=True, exist_ok=True)
                engine_options: dict[str, object] = {"background_pool_size": merge_threads}
                if max_memory_bytes is not None:
                    engine_options["max_server_memory_usage"] = max_memory_bytes
                _import_chdb_without_arrow()
                client = clickhouse_connect.get_client(
                    dsn=f"chdb://{path.resolve()}", chdb_options=engine_options
                )
            else:
                # No session: the server's threads share one store, and clickhouse-connect refuses two
                # queries at once in a session; every statement names its database, so none is needed.
                client = clickhouse_connect.get_client(
                    dsn=_server_url(url or ""),
                    autogenerate_session_id=False,
                    settings=dialect.client_settings,
                )
                _check_server_version(client)
        with _store_errors(f"create the schema in {database!r}"):
            try:
                _apply_schema(client, database, dialect)
            except ValueError as exc:
                raise StoreError(str(exc)) from exc
            logs = _system_log_hygiene(client, embedded=embedded, ttl_days=system_log_ttl_days)
    except BaseException:
        if client is not None:
            client.close()
        raise
    return ClickHouseStore(
        client,
        database=database,
        embedded=embedded,
        query_max_threads=query_max_threads,
        system_logs=logs,
        cluster=cluster,
    )
