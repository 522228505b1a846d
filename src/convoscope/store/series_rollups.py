"""Dashboard series read from the hourly rollups: thousands of rows instead of every call in the range.

The trend charts and the alert rules ask the same few questions over and over: calls per hour or day,
the agent-turn latency percentiles (``e2e_s`` p50 and p95) and a metric's pass rate, by agent. Read
exactly, each is a pass over every call (or every agent turn, 9.5 million at a million calls) of the
range under ``FINAL``. The overview's rollups (:mod:`.rollups`) already hold these per project, hour,
agent and version, kept current from what was written; a series over whole hours reads them instead.

**Which series.** ``calls`` (count), ``e2e_s`` (p50, p95 and count) and ``passed:<metric>`` (the pass
rate, and count) with any bucket, agent filter or grouping, over a range of whole hours, when the range
holds more than ``rollup_exact_below`` calls and no call predates the per-call latency arrays. A source
filter, another field or aggregate, a range off the hour, or a small range is read exactly, as before.

**What is approximate.** Counts and pass rates are exact. The percentiles merge t-digest states
(``quantilesTDigestArrayMerge``), where the exact path interpolates between ranks: over a bucket of a
few hundred values or more they agree within about 1 % (5 % is what ``tests/store/test_rollups.py``
allows), over a handful of values they may differ by a rank.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from .base import Aggregate, Bucket, SeriesPoint, SeriesQuery
from .rollups import whole_hours
from .schema import CALL_HOURS, PASSED_PREFIX, SCORE_HOURS, SeriesField, TableSpec

__all__ = ["SeriesRollupMixin", "series_points"]

_BUCKET = {Bucket.HOUR: "hour", Bucket.DAY: "toStartOfDay(hour, 'UTC')"}
_E2E_LEVEL = {Aggregate.P50: 1, Aggregate.P95: 2}
"""The levels the rollups' latency states were built with (0.5, 0.95), by their index."""


def _rollup_read(field: SeriesField, query: SeriesQuery) -> tuple[TableSpec, str, str, str] | None:
    """The rollup table, the live-row condition, the value and the count of a series, if it has them."""
    if field.name == "calls":
        return CALL_HOURS, "calls > 0", "toFloat64(sum(calls))", "sum(calls)"
    if field.name == "e2e_s":
        count = "sum(e2e_n)"
        if query.aggregate is Aggregate.COUNT:
            return CALL_HOURS, "calls > 0", f"toFloat64({count})", count
        level = _E2E_LEVEL.get(query.aggregate)
        if level is None:
            return None
        return CALL_HOURS, "calls > 0", f"quantilesTDigestArrayMerge(0.5, 0.95)(e2e)[{level}]", count
    if field.name.startswith(PASSED_PREFIX) and field.metric is not None:
        count = "sum(judged)"
        if query.aggregate is Aggregate.COUNT:
            return SCORE_HOURS, "judged > 0", f"toFloat64({count})", count
        if query.aggregate is Aggregate.AVG:
            return SCORE_HOURS, "judged > 0", f"sum(passed) / {count}", count
    return None


class SeriesRollupMixin:
    """Series from the rollups; mixed into :class:`~.clickhouse.ClickHouseStore` beside ``RollupMixin``."""

    _rows: Callable[[str, Mapping[str, object], str], list[dict[str, Any]]]
    _table: Callable[[TableSpec], str]
    _has_unfilled_calls: Callable[[], bool]
    refresh_rollups: Callable[[str, datetime, datetime], int]
    rollup_exact_below: int

    def _rollup_series(
        self, project_id: str, field: SeriesField, query: SeriesQuery
    ) -> list[SeriesPoint] | None:
        """The series from the rollups, or None when they cannot answer it (the caller reads exactly)."""
        read = _rollup_read(field, query)
        if read is None or query.source is not None or not whole_hours(query.since, query.until):
            return None
        if field.name == "e2e_s" and self._has_unfilled_calls():
            return None
        table, live, value, count = read
        params: dict[str, object] = {
            "p": project_id,
            "since_s": int(query.since.timestamp()),
            "until_s": int(query.until.timestamp()),
        }
        where = [
            "hour >= toDateTime({since_s:UInt32}, 'UTC') AND hour < toDateTime({until_s:UInt32}, 'UTC')",
            live,
        ]
        if query.agent_id is not None:
            params["agent"] = query.agent_id
            where.append("agent_id = {agent:String}")
        if field.metric is not None:
            params["metric"] = field.metric
            where.append("metric = {metric:String}")
        self.refresh_rollups(project_id, query.since, query.until)
        calls_where = [w for w in where if not w.startswith("metric") and w != live]
        total = self._rows(
            f"SELECT sum(calls) AS n FROM {self._table(CALL_HOURS)} FINAL PREWHERE project_id = {{p:String}} "
            f"WHERE {' AND '.join(calls_where)}",
            params,
            "count the calls of the series' range in the rollups",
        )
        if int(total[0]["n"] or 0) <= self.rollup_exact_below:
            return None
        group = "nullIf(agent_id, '')" if query.group_by_agent else "CAST(NULL, 'Nullable(String)')"
        rows = self._rows(
            f"SELECT toUnixTimestamp({_BUCKET[query.bucket]}) AS b, {group} AS g, {value} AS value, "
            f"{count} AS n FROM {self._table(table)} FINAL PREWHERE project_id = {{p:String}} "
            f"WHERE {' AND '.join(where)} GROUP BY b, g HAVING n > 0 ORDER BY b, g",
            params,
            f"read the series {field.name!r} from the rollups",
        )
        return series_points(rows)


def series_points(rows: list[dict[str, Any]]) -> list[SeriesPoint]:
    """Points from rows of bucket start ``b`` (Unix seconds), group ``g``, ``value`` and count ``n``."""
    return [
        SeriesPoint(
            bucket_start=datetime.fromtimestamp(r["b"], UTC),
            group=r["g"],
            value=None if r["value"] is None else float(r["value"]),
            count=int(r["n"]),
        )
        for r in rows
    ]
