"""The reads alert rules need from the event store: a target's window aggregate, the calls behind it,
its values in buckets counted back from now, and the failures a scope had before.

Mixed into :class:`~.clickhouse.ClickHouseStore`, so they run on its client with its read settings,
name tables with the database and pass every value as a typed parameter, like the store's own queries.

**Which time a value belongs to.** A metric's values (``metric:NAME``, ``passed:NAME``) are placed by
the score's ``evaluated_at``, not by the call's start: a score exists only once the call was stored and
evaluated, which may be minutes (a long call, a queued evaluation) or days (a re-evaluation) after the
call started; by call start such a score would land in a window already evaluated and never be seen by
a rule watching the last five minutes, and the evaluation batch that fires immediate rules would not
match the window that resolves them. Call and turn columns (``duration_s``, ``e2e_s``...) have no
evaluation time and are placed by the call's ``started_at``, which has a min-max index; a window over
them should be comfortably longer than a call plus the ingest delay.

**Cost.** Windows are short and tables large, so each read first finds the keys with a value in the
window without ``FINAL`` (only the key and time columns are read; ``started_at`` uses its skip index),
then reads those keys with ``FINAL`` in ``PREWHERE``, as call detail does, and checks the window again
on the surviving version. Scope filters (agent, version, source, tag) on metric targets join the
current call rows of those keys only; without a scope no join is made. Turn columns are read from the
calls' latency arrays (schema 2); calls written before schema 2 are not counted by alert rules.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .base import Aggregate
from .rows import micros
from .schema import CALLS, SCORES, TableSpec, resolve_series_field

__all__ = ["AlertQueriesMixin", "AlertScope", "MAX_CALL_IDS", "failure_item_sql"]

MAX_CALL_IDS = 50
"""Most call ids a read returns for one rule (an event names a sample, newest first)."""

_QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
_OPS = {">", ">=", "<", "<="}
_MAX_REASON_CHARS = 200


@dataclass(frozen=True)
class AlertScope:
    """Which calls: every field optional, combined with AND."""

    agent_id: str | None = None
    agent_version: str | None = None
    source: str | None = None
    tag: str | None = None

    @property
    def empty(self) -> bool:
        """True when every call is in scope (no join to the calls is needed for scores)."""
        return (
            self.agent_id is None and self.agent_version is None and self.source is None and self.tag is None
        )

    def conditions(self, params: dict[str, object]) -> list[str]:
        """``calls`` conditions for the scope, adding their parameters to ``params``."""
        where = []
        for column, key, value in (
            ("agent_id", "s_agent", self.agent_id),
            ("agent_version", "s_version", self.agent_version),
            ("source", "s_source", self.source),
        ):
            if value is not None:
                where.append(f"{column} = {{{key}:String}}")
                params[key] = value
        if self.tag is not None:
            where.append("has(tags, {s_tag:String})")
            params["s_tag"] = self.tag
        return where


def _aggregate_sql(aggregate: str) -> str:
    if aggregate == Aggregate.COUNT:
        return "toFloat64(count())"
    if aggregate == Aggregate.AVG:
        return "avg(v)"
    return f"quantileExactInclusive({_QUANTILES[aggregate]})(v)"


def failure_item_sql(what: str) -> str:
    """The item a failed score stands for: its metric, or ``metric: reason`` where the reason is the
    score's ``error``, else its evidence's top-level ``reason``, else its label, else ``failed``."""
    if what == "metric":
        return "metric"
    reason = "coalesce(error, nullIf(JSONExtractString(evidence, 'reason'), ''), value_label, 'failed')"
    return f"concat(metric, ': ', left({reason}, {_MAX_REASON_CHARS}))"


class AlertQueriesMixin:
    """The alert engine's reads; mixed into ``ClickHouseStore``, which provides ``_rows`` and ``_table``."""

    _rows: Callable[[str, Mapping[str, object], str], list[dict[str, Any]]]
    """Runs a query with parameters (``ClickHouseStore._rows``)."""
    _table: Callable[[TableSpec], str]
    """A table's qualified name (``ClickHouseStore._table``)."""

    # -- values of a target ------------------------------------------------------------------------

    def _alert_values(self, target: str, scope: AlertScope, params: dict[str, object]) -> str:
        """A subquery of ``(t, call_id, v)``: the target's values in ``[since, until)`` for the scope."""
        field = resolve_series_field(target)
        calls = self._table(CALLS)
        window = (
            "{col} >= fromUnixTimestamp64Micro({{since:Int64}}, 'UTC') "
            "AND {col} < fromUnixTimestamp64Micro({{until:Int64}}, 'UTC')"
        )
        if field.table == "scores":
            scores = self._table(SCORES)
            params["metric"] = field.metric
            in_window = window.format(col="evaluated_at")
            keys = (
                f"SELECT call_id FROM {scores} PREWHERE project_id = {{p:String}} "
                f"AND metric = {{metric:String}} WHERE {in_window}"
            )
            values = (
                f"SELECT call_id, evaluated_at AS t, {field.expr} AS v FROM {scores} FINAL "
                f"PREWHERE project_id = {{p:String}} AND call_id IN ({keys}) AND metric = {{metric:String}} "
                f"WHERE {in_window}"
            )
            if scope.empty:
                return f"SELECT t, call_id, v FROM ({values})"
            where = " AND ".join([f"id IN ({keys})", *scope.conditions(params)])
            return (
                f"SELECT s.t AS t, s.call_id AS call_id, s.v AS v FROM ({values}) AS s INNER JOIN "
                f"(SELECT id FROM {calls} FINAL PREWHERE project_id = {{p:String}} "
                f"AND (source, external_id) IN (SELECT source, external_id FROM {calls} "
                f"PREWHERE project_id = {{p:String}} "
                f"AND id IN ({keys})) WHERE {where}) AS c ON s.call_id = c.id"
            )
        in_window = window.format(col="started_at")
        where = " AND ".join([in_window, *scope.conditions(params)])
        keys = f"SELECT source, external_id FROM {calls} PREWHERE project_id = {{p:String}} WHERE {in_window}"
        head = f"FROM {calls} FINAL PREWHERE project_id = {{p:String}} AND (source, external_id) IN ({keys})"
        if field.table == "calls":
            return f"SELECT started_at AS t, id AS call_id, {field.expr} AS v {head} WHERE {where}"
        if field.call_array is None:  # pragma: no cover - every turn field has its call array
            raise ValueError(f"turn field {target!r} has no call array")
        return (
            f"SELECT started_at AS t, id AS call_id, arrayJoin({field.call_array}) AS v {head} "
            f"WHERE {where} AND agent_latency_filled = 1"
        )

    @staticmethod
    def _window_params(project_id: str, since: datetime, until: datetime) -> dict[str, object]:
        return {"p": project_id, "since": micros(since), "until": micros(until)}

    def alert_aggregate(
        self,
        project_id: str,
        target: str,
        scope: AlertScope,
        *,
        aggregate: str,
        since: datetime,
        until: datetime,
    ) -> tuple[float | None, int]:
        """``(aggregate, number of values)`` of the target over ``[since, until)`` (None when empty)."""
        params = self._window_params(project_id, since, until)
        values = self._alert_values(target, scope, params)
        agg = "toFloat64(count())" if target == "calls" else _aggregate_sql(aggregate)
        rows = self._rows(
            f"SELECT {agg} AS value, count() AS n FROM ({values}) WHERE v IS NOT NULL",
            params,
            f"aggregate {target!r} for an alert rule",
        )
        n = int(rows[0]["n"]) if rows else 0
        value = rows[0]["value"] if rows and n else None
        return (None if value is None else float(value)), n

    def alert_calls(
        self,
        project_id: str,
        target: str,
        scope: AlertScope,
        *,
        since: datetime,
        until: datetime,
        op: str | None = None,
        value: float | None = None,
        limit: int = MAX_CALL_IDS,
    ) -> list[str]:
        """The calls with a value in the window (only those whose value ``op value`` when given), newest
        first, at most ``limit``: the calls behind a breach."""
        params = self._window_params(project_id, since, until)
        values = self._alert_values(target, scope, params)
        condition = "v IS NOT NULL"
        if op is not None and value is not None:
            if op not in _OPS:
                raise ValueError(f"unknown comparison {op!r}")
            condition += f" AND v {op} {{thr:Float64}}"
            params["thr"] = value
        params["lim"] = max(1, min(limit, 1000))
        rows = self._rows(
            f"SELECT call_id, max(t) AS latest FROM ({values}) WHERE {condition} "
            "GROUP BY call_id ORDER BY latest DESC, call_id DESC LIMIT {lim:UInt32}",
            params,
            f"find the calls behind an alert on {target!r}",
        )
        return [str(row["call_id"]) for row in rows]

    def alert_buckets(
        self,
        project_id: str,
        target: str,
        scope: AlertScope,
        *,
        aggregate: str,
        until: datetime,
        width_s: int,
        count: int,
    ) -> list[tuple[float | None, int]]:
        """The target's ``count`` buckets of ``width_s`` counted back from ``until``, oldest first: bucket
        ``i`` (from the newest, 0) covers ``[until - (i+1)*width, until - i*width)``; ``(aggregate, n)``,
        ``(None, 0)`` for an empty one."""
        width_us = int(width_s) * 1_000_000
        params: dict[str, object] = {"p": project_id, "since": micros(until) - width_us * count}
        params["until"] = micros(until)
        params["w"] = width_us
        values = self._alert_values(target, scope, params)
        agg = "toFloat64(count())" if target == "calls" else _aggregate_sql(aggregate)
        rows = self._rows(
            "SELECT intDiv({until:Int64} - toUnixTimestamp64Micro(t) - 1, {w:Int64}) AS i, "
            f"{agg} AS value, count() AS n FROM ({values}) WHERE v IS NOT NULL GROUP BY i",
            params,
            f"bucket {target!r} for an alert rule",
        )
        found = {
            int(row["i"]): (None if row["value"] is None else float(row["value"]), int(row["n"]))
            for row in rows
        }
        return [found.get(i, (None, 0)) for i in range(count - 1, -1, -1)]

    # -- failures ----------------------------------------------------------------------------------

    def _failed_scores(
        self,
        what: str,
        metric: str | None,
        scope: AlertScope,
        params: dict[str, object],
        time_where: str,
        keys: str | None,
    ) -> str:
        """A subquery of ``(t, call_id, item)``: failed scores (``passed`` false; for reasons, an
        ``error`` too) matching ``time_where``, restricted to ``keys`` (a call-id subquery) when given."""
        scores = self._table(SCORES)
        calls = self._table(CALLS)
        prewhere = ["project_id = {p:String}"]
        if keys is not None:
            prewhere.append(f"call_id IN ({keys})")
        if metric is not None:
            prewhere.append("metric = {metric:String}")
            params["metric"] = metric
        failed = "passed = 0" if what == "metric" else "(passed = 0 OR error IS NOT NULL)"
        values = (
            f"SELECT call_id, evaluated_at AS t, {failure_item_sql(what)} AS item FROM {scores} FINAL "
            f"PREWHERE {' AND '.join(prewhere)} WHERE {failed} AND {time_where}"
        )
        if scope.empty:
            return values
        where = " AND ".join(scope.conditions(params))
        current = f"SELECT id FROM {calls} FINAL PREWHERE project_id = {{p:String}}"
        if keys is not None:
            current += (
                f" AND (source, external_id) IN (SELECT source, external_id FROM {calls} "
                f"PREWHERE project_id = {{p:String}} AND id IN ({keys}))"
            )
        return (
            f"SELECT s.call_id AS call_id, s.t AS t, s.item AS item FROM ({values}) AS s "
            f"INNER JOIN ({current} WHERE {where}) AS c ON s.call_id = c.id"
        )

    def alert_failures(
        self,
        project_id: str,
        scope: AlertScope,
        *,
        what: str,
        metric: str | None,
        since: datetime,
        until: datetime,
        limit: int = MAX_CALL_IDS,
    ) -> dict[str, tuple[int, list[str]]]:
        """Failures evaluated in ``[since, until)`` by item (metric, or ``metric: reason``): how many, and
        the calls, newest first (at most ``limit`` each)."""
        params = self._window_params(project_id, since, until)
        in_window = (
            "evaluated_at >= fromUnixTimestamp64Micro({since:Int64}, 'UTC') "
            "AND evaluated_at < fromUnixTimestamp64Micro({until:Int64}, 'UTC')"
        )
        key_where = ["project_id = {p:String}"]
        if metric is not None:
            key_where.append("metric = {metric:String}")
        keys = (
            f"SELECT call_id FROM {self._table(SCORES)} PREWHERE {' AND '.join(key_where)} WHERE {in_window}"
        )
        values = self._failed_scores(what, metric, scope, params, in_window, keys)
        params["lim"] = max(1, min(limit, 1000))
        rows = self._rows(
            "SELECT item, count() AS n, "
            "arraySlice(arrayMap(x -> x.2, arrayReverseSort(groupArray((t, call_id)))), 1, {lim:UInt32}) "
            f"AS calls FROM ({values}) GROUP BY item ORDER BY item",
            params,
            "list the failures of an alert rule's window",
        )
        return {str(row["item"]): (int(row["n"]), [str(c) for c in row["calls"]]) for row in rows}

    def alert_failed_before(
        self,
        project_id: str,
        scope: AlertScope,
        *,
        what: str,
        metric: str | None,
        before: datetime,
        items: Collection[str],
    ) -> set[str]:
        """Which of ``items`` the scope had failing at least once before ``before``."""
        if not items:
            return set()
        params: dict[str, object] = {"p": project_id, "before": micros(before), "items": sorted(items)}
        values = self._failed_scores(
            what,
            metric,
            scope,
            params,
            "evaluated_at < fromUnixTimestamp64Micro({before:Int64}, 'UTC')",
            None,
        )
        rows = self._rows(
            f"SELECT DISTINCT item FROM ({values}) WHERE item IN {{items:Array(String)}}",
            params,
            "look up the failures an alert rule's scope had before",
        )
        return {str(row["item"]) for row in rows}
