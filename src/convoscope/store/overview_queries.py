"""The reads behind the web UI's overview: a period and the one before it, in buckets, in two queries.

``series`` answers one field for one range per query; the overview shows a dozen figures for two
periods, and per-bucket, per-period and per-item (end reasons, failing metrics) groupings of the same
rows. Each query here reads its rows once and groups them with ``GROUPING SETS``, so the page costs two
reads of the event store whatever it shows.

**Which calls.** Both periods are one time range ``[previous_since, until)`` on the call's start (the
``started_at`` skip index finds the keys without ``FINAL``, then those keys are read with ``FINAL``, as
alert rules do), so the previous period is the same length directly before. Scores count by their
call's start, like ``series``, so a bucket's figures are always about the calls listed for that bucket.
Bucket ``i`` of a period covers ``[start + i * width, start + (i + 1) * width)`` from that period's
start, so the previous period lines up with the current one point for point.

**Audio truth.** The turn-taking figures read only scores measured from the recording
(``source = 'audio'``): the same metric names computed from transcript timing are estimates and never
mix in. Vendor latency is the per-turn ``e2e_s`` the platform reported, from the calls' latency arrays
(schema 2; calls written before it are left out, as in alert rules).

Mixed into :class:`~.clickhouse.ClickHouseStore`, which provides the client (``_rows``) and table names.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from .rollups import HOUR, whole_hours
from .rows import micros
from .schema import CALL_HOURS, CALLS, SCORE_HOURS, SCORES, TableSpec

__all__ = [
    "AUDIO_METRICS",
    "CallFigures",
    "OverviewFigures",
    "OverviewQueriesMixin",
    "OverviewScope",
    "Periods",
    "ScoreFigures",
]

AUDIO_METRICS = {
    "gap_p50": "turn_taking.response_gap_p50_s",
    "gap_p95": "turn_taking.response_gap_p95_s",
    "interruptions": "turn_taking.agent_interruptions",
    "missed_barge_ins": "turn_taking.missed_barge_ins",
    "long_silences": "turn_taking.long_silences",
}
"""The per-call turn-taking scores the overview reads (names from ``convoscope.audio.metrics``)."""

_CURRENT, _PREVIOUS = 0, 1

# ``grouping(b, item)`` in the SQL standard's reading (a bit is 1 where the column was rolled up), which
# every query asks for explicitly: a server may default to the other reading.
_BY_BUCKET, _BY_ITEM, _BY_PERIOD = 0b01, 0b10, 0b11
_GROUPING = " SETTINGS force_grouping_standard_compatibility = 1"


@dataclass(frozen=True)
class OverviewScope:
    """The calls of an overview: a period ``[since, until)``, the one as long before it, and a scope.

    ``width`` is the bucket width; the last bucket of a period may be cut short by its end.
    """

    since: datetime
    until: datetime
    width: timedelta
    agent_id: str | None = None
    agent_version: str | None = None

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValueError("overview since/until must be timezone-aware")
        if self.until <= self.since or self.width <= timedelta(0):
            raise ValueError("an overview needs since < until and a positive bucket width")

    @property
    def previous_since(self) -> datetime:
        """The previous period's start: as long before ``since`` as the period lasts."""
        return self.since - (self.until - self.since)

    @property
    def bucket_count(self) -> int:
        """Buckets per period (the last one possibly short)."""
        return math.ceil((self.until - self.since) / self.width)


@dataclass
class CallFigures:
    """Call-row figures of one bucket or one period."""

    calls: int = 0
    errors: int = 0
    cost_usd: float = 0.0
    duration_s: float = 0.0
    provider_errors: int = 0
    e2e_p50_s: float | None = None
    e2e_p95_s: float | None = None
    e2e_turns: int = 0


@dataclass
class ScoreFigures:
    """Score figures of one bucket or one period; ``audio_calls`` counts calls with audio scores."""

    judged: int = 0
    passed: int = 0
    audio_calls: int = 0
    gap_p50_s: float | None = None
    gap_p95_s: float | None = None
    interruptions: float | None = None
    missed_barge_ins: float | None = None
    long_silences: float | None = None

    @property
    def pass_rate(self) -> float | None:
        """Passed over judged (None when nothing was judged)."""
        return self.passed / self.judged if self.judged else None


T = TypeVar("T")


@dataclass
class Periods(Generic[T]):
    """A figure set for the current and the previous period: totals, buckets and counts by item."""

    totals: tuple[T, T]
    buckets: tuple[dict[int, T], dict[int, T]]
    by_item: tuple[dict[str, int], dict[str, int]] = field(default_factory=lambda: ({}, {}))


def _number(value: Any) -> float | None:
    """A float from the engine, None for an aggregate over nothing (NaN) or NULL."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _place(result: Periods[T], row: Mapping[str, Any], figures: T) -> None:
    """Put a bucket's or a period's figures where they belong in ``result``."""
    period = int(row["period"])
    grouping = int(row["g"])
    if grouping == _BY_BUCKET:
        result.buckets[period][int(row["b"])] = figures
    elif grouping == _BY_PERIOD and period == _CURRENT:
        result.totals = (figures, result.totals[1])
    elif grouping == _BY_PERIOD:
        result.totals = (result.totals[0], figures)


def _agent_conditions(scope: OverviewScope, params: dict[str, object]) -> list[str]:
    """The scope's agent and version as conditions, their values bound in ``params``."""
    conditions = []
    if scope.agent_id is not None:
        conditions.append("agent_id = {agent:String}")
        params["agent"] = scope.agent_id
    if scope.agent_version is not None:
        conditions.append("agent_version = {version:String}")
        params["version"] = scope.agent_version
    return conditions


def _audio_aggregates(params: dict[str, object], exact: bool) -> str:
    """The audio turn-taking aggregates: percentiles of the gap metrics, means of the others, and each
    one's count, from score rows (``exact``) or from ``score_hours``."""
    aggregates = []
    for name, metric in AUDIO_METRICS.items():
        params[f"m_{name}"] = metric
        audio = f"metric = {{m_{name}:String}} AND source = {{audio:String}}"
        level = {"gap_p50": 0.5, "gap_p95": 0.95}.get(name)
        if exact:
            value = (
                f"quantileExactInclusiveIf({level})(value_num, {audio})"
                if level
                else f"avgIf(value_num, {audio})"
            )
            count = f"countIf({audio} AND value_num IS NOT NULL)"
        else:
            merged = f"quantilesTDigestMergeIf(0.5, 0.95)(value_q, {audio})[{1 if level == 0.5 else 2}]"
            value = merged if level else f"sumIf(value_sum, {audio}) / sumIf(value_n, {audio})"
            count = f"sumIf(value_n, {audio})"
        aggregates.append(f"{value} AS {name}, {count} AS {name}_n")
    return ", ".join(aggregates)


@dataclass(frozen=True)
class OverviewFigures:
    """What the overview page reads: call figures, score figures and the agent choices."""

    calls: Periods[CallFigures]
    scores: Periods[ScoreFigures]
    agents: list[tuple[str, str]]


class OverviewQueriesMixin:
    """The overview's reads; mixed into ``ClickHouseStore``, which provides ``_rows`` and ``_table``."""

    _rows: Callable[[str, Mapping[str, object], str], list[dict[str, Any]]]
    _table: Callable[[TableSpec], str]
    refresh_rollups: Callable[[str, datetime, datetime], int]
    rollup_exact_below: int

    def _overview_calls(self, scope: OverviewScope, params: dict[str, object], columns: str) -> str:
        """A subquery of the current calls of both periods in scope, with ``period`` and bucket ``b``."""
        calls = self._table(CALLS)
        params.update(
            since=micros(scope.since),
            until=micros(scope.until),
            prev=micros(scope.previous_since),
            w=int(scope.width.total_seconds() * 1_000_000),
        )
        window = (
            "started_at >= fromUnixTimestamp64Micro({prev:Int64}, 'UTC') "
            "AND started_at < fromUnixTimestamp64Micro({until:Int64}, 'UTC')"
        )
        where = [window, *_agent_conditions(scope, params)]
        keys = f"SELECT source, external_id FROM {calls} PREWHERE project_id = {{p:String}} WHERE {window}"
        period = (
            f"if(started_at >= fromUnixTimestamp64Micro({{since:Int64}}, 'UTC'), {_CURRENT}, {_PREVIOUS})"
        )
        return (
            f"SELECT {columns}, {period} AS period, intDiv(toUnixTimestamp64Micro(started_at) "
            "- if(period = 0, {since:Int64}, {prev:Int64}), {w:Int64}) AS b "
            f"FROM {calls} FINAL PREWHERE project_id = {{p:String}} "
            f"AND (source, external_id) IN ({keys}) WHERE {' AND '.join(where)}"
        )

    def overview_figures(
        self, project_id: str, scope: OverviewScope, *, agents_limit: int = 200
    ) -> OverviewFigures:
        """Everything the overview page reads: from the hourly rollups when they can answer (whole
        hours, hour-multiple buckets, more than ``rollup_exact_below`` calls in scope), brought up to
        date first; else exactly from the event tables (a few calls are cheap to read, and their
        percentiles are then exact)."""
        if whole_hours(scope.since, scope.until) and not scope.width % HOUR:
            self.refresh_rollups(project_id, scope.previous_since, scope.until)
            calls = self.overview_call_figures(project_id, scope, from_rollups=True)
            if sum(total.calls for total in calls.totals) > self.rollup_exact_below:
                return OverviewFigures(
                    calls,
                    self.overview_score_figures(project_id, scope, from_rollups=True),
                    self.overview_agents(project_id, scope, limit=agents_limit, from_rollups=True),
                )
        return OverviewFigures(
            self.overview_call_figures(project_id, scope),
            self.overview_score_figures(project_id, scope),
            self.overview_agents(project_id, scope, limit=agents_limit),
        )

    def _overview_hours(
        self, scope: OverviewScope, params: dict[str, object], table: TableSpec, live: str
    ) -> str:
        """A subquery of a rollup table's rows of both periods in scope, with ``period`` and bucket ``b``
        (the hours' counterpart of ``_overview_calls``); ``live`` leaves out the zeroed groups."""
        params.update(
            since_s=int(scope.since.timestamp()),
            until_s=int(scope.until.timestamp()),
            prev_s=int(scope.previous_since.timestamp()),
            w_s=int(scope.width.total_seconds()),
        )
        where = [
            "hour >= toDateTime({prev_s:UInt32}, 'UTC') AND hour < toDateTime({until_s:UInt32}, 'UTC')",
            live,
            *_agent_conditions(scope, params),
        ]
        period = f"if(hour >= toDateTime({{since_s:UInt32}}, 'UTC'), {_CURRENT}, {_PREVIOUS})"
        return (
            f"SELECT *, {period} AS period, intDiv(toUnixTimestamp(hour) "
            "- if(period = 0, {since_s:UInt32}, {prev_s:UInt32}), {w_s:UInt32}) AS b "
            f"FROM {self._table(table)} FINAL PREWHERE project_id = {{p:String}} WHERE {' AND '.join(where)}"
        )

    def _score_hours_sql(self, scope: OverviewScope, params: dict[str, object]) -> str:
        """The score figures from ``score_hours``: the same columns as ``_score_rows_sql``."""
        values = self._overview_hours(scope, params, SCORE_HOURS, "(calls > 0 OR judged > 0)")
        return (
            "SELECT period, b, metric, grouping(b, metric) AS g, sum(judged) AS judged, "
            "sum(passed) AS passed_n, sum(failed) AS failed_n, sumIf(calls, metric = '') AS audio_calls, "
            f"{_audio_aggregates(params, exact=False)} FROM ({values}) "
            f"GROUP BY GROUPING SETS ((period, b), (period), (period, metric)){_GROUPING}"
        )

    def _score_rows_sql(self, scope: OverviewScope, params: dict[str, object]) -> str:
        """The score figures from the scores of the calls in scope, exactly (any range)."""
        calls = self._overview_calls(scope, params, "id, started_at")
        ids = (
            f"SELECT id FROM {self._table(CALLS)} PREWHERE project_id = {{p:String}} "
            "WHERE started_at >= fromUnixTimestamp64Micro({prev:Int64}, 'UTC') "
            "AND started_at < fromUnixTimestamp64Micro({until:Int64}, 'UTC')"
        )
        scores = (
            f"SELECT call_id, metric, source, value_num, passed FROM {self._table(SCORES)} FINAL "
            f"PREWHERE project_id = {{p:String}} AND call_id IN ({ids})"
        )
        return (
            "SELECT period, b, metric, grouping(b, metric) AS g, countIf(passed IS NOT NULL) AS judged, "
            "countIf(passed = 1) AS passed_n, countIf(passed = 0) AS failed_n, "
            "uniqExactIf(call_id, source = {audio:String}) AS audio_calls, "
            f"{_audio_aggregates(params, exact=True)} FROM (SELECT s.call_id AS call_id, s.metric AS metric, "
            "s.source AS source, s.value_num AS value_num, s.passed AS passed, c.period AS period, c.b AS b "
            f"FROM ({scores}) AS s INNER JOIN ({calls}) AS c ON s.call_id = c.id) "
            "GROUP BY GROUPING SETS ((period, b), (period), (period, metric))"
            f"{_GROUPING}"
        )

    def overview_call_figures(
        self, project_id: str, scope: OverviewScope, *, from_rollups: bool = False
    ) -> Periods[CallFigures]:
        """Calls, errors, cost, duration, failed provider requests and vendor e2e latency per bucket and
        per period, and calls by end reason per period: one read of ``calls``, or with ``from_rollups``
        of ``call_hours`` (whole hours only, refreshed by the caller)."""
        params: dict[str, object] = {"p": project_id}
        if from_rollups:
            values = self._overview_hours(scope, params, CALL_HOURS, "calls > 0")
            aggregates = (
                "sum(calls) AS n, sumIf(calls, end_reason = 'error') AS errors, sum(cost_usd) AS cost, "
                "sum(duration_s) AS duration, sum(provider_errors) AS provider_errors, "
                "quantilesTDigestArrayMerge(0.5, 0.95)(e2e) AS e2e, sum(e2e_n) AS e2e_n"
            )
        else:
            values = self._overview_calls(
                scope,
                params,
                "id, end_reason, cost_usd, duration_s, metadata, agent_e2e_s, agent_latency_filled",
            )
            aggregates = (
                "count() AS n, countIf(end_reason = 'error') AS errors, sum(cost_usd) AS cost, "
                "sum(duration_s) AS duration, sum(JSONLength(metadata, 'errors')) AS provider_errors, "
                "quantilesExactInclusiveArrayIf(0.5, 0.95)(agent_e2e_s, agent_latency_filled = 1) AS e2e, "
                "sumIf(length(agent_e2e_s), agent_latency_filled = 1) AS e2e_n"
            )
        rows = self._rows(
            f"SELECT period, b, end_reason, grouping(b, end_reason) AS g, {aggregates} "
            f"FROM ({values}) GROUP BY GROUPING SETS ((period, b), (period), (period, end_reason))"
            f"{_GROUPING}",
            params,
            "compute the overview's call figures",
        )
        result: Periods[CallFigures] = Periods(totals=(CallFigures(), CallFigures()), buckets=({}, {}))
        for row in rows:
            if int(row["g"]) == _BY_ITEM:
                result.by_item[int(row["period"])][str(row["end_reason"])] = int(row["n"])
                continue
            e2e_n = int(row["e2e_n"])
            p50, p95 = (_number(q) for q in row["e2e"]) if e2e_n else (None, None)
            _place(
                result,
                row,
                CallFigures(
                    calls=int(row["n"]),
                    errors=int(row["errors"]),
                    cost_usd=float(row["cost"]),
                    duration_s=float(row["duration"]),
                    provider_errors=int(row["provider_errors"]),
                    e2e_p50_s=p50,
                    e2e_p95_s=p95,
                    e2e_turns=e2e_n,
                ),
            )
        return result

    def overview_score_figures(
        self, project_id: str, scope: OverviewScope, *, from_rollups: bool = False
    ) -> Periods[ScoreFigures]:
        """Pass rate and audio turn-taking figures per bucket and per period, and failed scores by metric
        per period: one read of the scores of the calls in both periods, or with ``from_rollups`` of
        ``score_hours`` (whole hours only, refreshed by the caller)."""
        params: dict[str, object] = {"p": project_id, "audio": "audio"}
        sql = self._score_hours_sql(scope, params) if from_rollups else self._score_rows_sql(scope, params)
        rows = self._rows(sql, params, "compute the overview's score figures")
        result: Periods[ScoreFigures] = Periods(totals=(ScoreFigures(), ScoreFigures()), buckets=({}, {}))
        for row in rows:
            if int(row["g"]) == _BY_ITEM:
                if int(row["failed_n"]):
                    result.by_item[int(row["period"])][str(row["metric"])] = int(row["failed_n"])
                continue
            measured = {name: _number(row[name]) if int(row[f"{name}_n"]) else None for name in AUDIO_METRICS}
            _place(
                result,
                row,
                ScoreFigures(
                    judged=int(row["judged"]),
                    passed=int(row["passed_n"]),
                    audio_calls=int(row["audio_calls"]),
                    gap_p50_s=measured["gap_p50"],
                    gap_p95_s=measured["gap_p95"],
                    interruptions=measured["interruptions"],
                    missed_barge_ins=measured["missed_barge_ins"],
                    long_silences=measured["long_silences"],
                ),
            )
        return result

    def overview_agents(
        self, project_id: str, scope: OverviewScope, *, limit: int = 200, from_rollups: bool = False
    ) -> list[tuple[str, str]]:
        """The (agent, version) pairs with calls in either period, whatever the scope's agent: the choices
        of the overview's filter. Read without ``FINAL`` (a superseded version may add a pair), or with
        ``from_rollups`` from ``call_hours`` (whole hours only, refreshed by the caller)."""
        params: dict[str, object] = {
            "p": project_id,
            "prev": micros(scope.previous_since),
            "until": micros(scope.until),
            "lim": limit,
        }
        if from_rollups:
            source = (
                f"SELECT agent_id AS agent, agent_version AS version FROM {self._table(CALL_HOURS)} FINAL "
                "PREWHERE project_id = {p:String} "
                "WHERE hour >= fromUnixTimestamp64Micro({prev:Int64}, 'UTC') "
                "AND hour < fromUnixTimestamp64Micro({until:Int64}, 'UTC') AND calls > 0"
            )
        else:
            source = (
                "SELECT ifNull(agent_id, '') AS agent, ifNull(agent_version, '') AS version "
                f"FROM {self._table(CALLS)} PREWHERE project_id = {{p:String}} "
                "WHERE started_at >= fromUnixTimestamp64Micro({prev:Int64}, 'UTC') "
                "AND started_at < fromUnixTimestamp64Micro({until:Int64}, 'UTC')"
            )
        rows = self._rows(
            f"SELECT DISTINCT agent, version FROM ({source}) ORDER BY agent, version LIMIT {{lim:UInt32}}",
            params,
            "list the agents of the overview's range",
        )
        return [(str(row["agent"]), str(row["version"])) for row in rows]
