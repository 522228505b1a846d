"""Hourly rollups of the overview's figures, kept current from what was written since they were computed.

The overview sums a period and the one before it; read from the event tables, that is every call and
score of both periods under ``FINAL`` on each page view, which grows with the store (about 0.3 s at
100,000 calls in a week, seconds at a million). The rollups hold, per project and hour of the calls'
start, the same figures by agent, version and end reason (``call_hours``) and by agent, version, metric
and source (``score_hours``): sums and counts, and t-digest states for the percentiles. An overview over
whole hours then reads a few hundred rollup rows.

**Current by construction.** An hour's rows are always computed whole from the current versions of its
calls and scores (``INSERT … SELECT`` in the engine) and replace the previous rows of that hour (a
higher ``version``; groups the hour no longer has are overwritten with zeros first). Before a read, the
hours touched since the last refresh are recomputed: those of calls written since then
(``calls.ingested_at``), those the same calls were counted in before (``rollup_call_map``: a call sent
again with another start or agent leaves its old hour), and those of calls whose scores were written
since then (``scores.written_at``). Hours of the range never computed are computed then. A refresh
looks back ``REFRESH_MARGIN`` before the previous one started, so a write stamped just before it but
committed after it is still seen. Only hours someone asked for are ever computed; changes to other hours
are left for when they are asked for.

**What is approximate.** Counts, sums, pass rates and means are exact. The percentiles (vendor e2e
latency p50/p95, audio response gap p50/p95) merge t-digest states (ClickHouse ``quantilesTDigest``):
their rank error is within about 1 % on these distributions (checked against the exact figures in
``tests/store/test_rollups.py``), where the exact path uses ``quantileExactInclusive``. Ranges that do
not fall on whole hours, and overviews of at most ``EXACT_BELOW`` calls, use the exact path.

Mixed into :class:`~.clickhouse.ClickHouseStore`, which provides the client and table names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .rows import micros
from .schema import CALL_HOURS, CALLS, ROLLUP_CALL_MAP, ROLLUP_HOURS, SCORE_HOURS, SCORES, TableSpec

__all__ = ["EXACT_BELOW", "HOUR", "REFRESH_MARGIN", "RollupMixin", "whole_hours"]

HOUR = timedelta(hours=1)

REFRESH_MARGIN = timedelta(seconds=10)
"""How far before the previous refresh a refresh looks for writes: a write is stamped (``ingested_at``,
``written_at``) just before its insert commits, so one stamped before a refresh started may land after
it read. An insert that takes longer than this to commit is seen only when its hour is next written to."""

EXACT_BELOW = 20_000
"""Overviews of at most this many calls are read from the event tables: at that size the exact read
costs tens of milliseconds, and its percentiles are exact where a t-digest over a few values is off by a
rank (the median of four gaps, say)."""

_HOUR_OF = "toStartOfHour(toDateTime(started_at, 'UTC'))"
_EMPTY_VALUES = "arrayReduce('quantilesTDigestState(0.5, 0.95)', CAST([] AS Array(Float64)))"
_EMPTY_E2E = "arrayReduce('quantilesTDigestArrayState(0.5, 0.95)', CAST([] AS Array(Array(Float64))))"


def whole_hours(*moments: datetime) -> bool:
    """Whether every moment falls on a whole hour (then the rollups can answer exactly by bucket)."""
    return all(m.minute == 0 and m.second == 0 and m.microsecond == 0 for m in moments)


def _hours(since: datetime, until: datetime) -> list[int]:
    """The hours of ``[since, until)`` as Unix seconds."""
    start = int(since.timestamp())
    return list(range(start - start % 3600, int(until.timestamp()), 3600))


@dataclass
class _RollupState:
    """Per project: the lock refreshes hold, when the last refresh started, the count of writes this
    process made (and the count the last refresh saw), and the hours known to be computed."""

    locks: dict[str, threading.Lock] = field(default_factory=dict)
    marks: dict[str, datetime] = field(default_factory=dict)
    writes: dict[str, int] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    computed: dict[str, set[int]] = field(default_factory=dict)


class RollupMixin:
    """Refreshes and holds the rollups; mixed into ``ClickHouseStore``."""

    _rows: Callable[[str, Mapping[str, object], str], list[dict[str, Any]]]
    _table: Callable[[TableSpec], str]
    _execute: Callable[[str, Mapping[str, object], str], None]
    _insert: Callable[[TableSpec, Sequence[tuple[Any, ...]], str], None]

    _rollup_guard = threading.Lock()
    rollup_margin: timedelta = REFRESH_MARGIN
    """How far before the previous refresh this store's refreshes look for writes."""
    rollup_exact_below: int = EXACT_BELOW
    """An overview of at most this many calls (both periods) is read exactly, not from the rollups."""
    _embedded: bool

    def _rollup_state(self) -> _RollupState:
        with self._rollup_guard:
            state = self.__dict__.get("_rollup_state_cache")
            if state is None:
                state = self.__dict__["_rollup_state_cache"] = _RollupState()
            return state

    def _note_write(self, project_id: str) -> None:
        """Count a committed write of calls or scores (what lets an embedded store skip a refresh)."""
        state = self._rollup_state()
        with self._rollup_guard:
            state.writes[project_id] = state.writes.get(project_id, 0) + 1

    def refresh_rollups(self, project_id: str, since: datetime, until: datetime) -> int:
        """Bring the rollups of ``[since, until)`` (and any computed hour written to since the last
        refresh) up to date; returns how many hours were computed.

        An embedded store is the only writer of its data directory, so when this process wrote nothing to
        the project since its last refresh and the hours are known to be computed, there is nothing to
        read; a store on a ClickHouse server always looks (other processes may write)."""
        state = self._rollup_state()
        with self._rollup_guard:
            lock = state.locks.setdefault(project_id, threading.Lock())
        with lock:
            with self._rollup_guard:
                writes = state.writes.get(project_id, 0)
            needed = _hours(since, until)
            known = state.computed.get(project_id, set())
            if self._embedded and state.seen.get(project_id) == writes and known.issuperset(needed):
                return 0
            started = datetime.now(UTC)
            computed_rows = self._rows(
                f"SELECT toUnixTimestamp(hour) AS h, version FROM {self._table(ROLLUP_HOURS)} FINAL "
                "PREWHERE project_id = {p:String}",
                {"p": project_id},
                "read which hours the rollups hold",
            )
            computed = {int(row["h"]) for row in computed_rows}
            last = state.marks.get(project_id)
            if last is None and computed_rows:
                last = datetime.fromtimestamp(max(int(row["version"]) for row in computed_rows) / 1e6, UTC)
            todo = {h for h in needed if h not in computed}
            if last is not None and computed:
                todo |= self._touched_hours(project_id, last - self.rollup_margin) & computed
            if todo:
                self._compute_hours(project_id, sorted(todo), micros(started))
            state.marks[project_id] = started
            state.seen[project_id] = writes
            state.computed[project_id] = computed | todo
            return len(todo)

    def _touched_hours(self, project_id: str, since: datetime) -> set[int]:
        """Hours whose figures may have changed since ``since``: where calls written since then start,
        where those calls were counted before, and where calls with scores written since then start."""
        calls, scores = self._table(CALLS), self._table(SCORES)
        fresh = (
            f"SELECT source, external_id FROM {calls} PREWHERE project_id = {{p:String}} "
            "WHERE ingested_at >= fromUnixTimestamp64Micro({t:Int64}, 'UTC')"
        )
        rows = self._rows(
            f"SELECT DISTINCT toUnixTimestamp(h) AS h FROM ("
            f"SELECT {_HOUR_OF} AS h FROM {calls} PREWHERE project_id = {{p:String}} "
            "WHERE ingested_at >= fromUnixTimestamp64Micro({t:Int64}, 'UTC') "
            f"UNION ALL SELECT hour AS h FROM {self._table(ROLLUP_CALL_MAP)} FINAL "
            f"PREWHERE project_id = {{p:String}} AND (source, external_id) IN ({fresh}) "
            f"UNION ALL SELECT {_HOUR_OF} AS h FROM {calls} PREWHERE project_id = {{p:String}} "
            f"AND id IN (SELECT call_id FROM {scores} PREWHERE project_id = {{p:String}} "
            "WHERE written_at >= fromUnixTimestamp64Micro({t:Int64}, 'UTC')))",
            {"p": project_id, "t": micros(since)},
            "find the hours written to since the rollups ran",
        )
        return {int(row["h"]) for row in rows}

    def _compute_hours(self, project_id: str, hours: list[int], version: int) -> None:
        """Recompute ``hours`` whole: zeros over their old groups, then their current figures, then the
        calls' hours in the map, then the marks (so an interrupted computation is redone)."""
        calls, scores = self._table(CALLS), self._table(SCORES)
        call_hours, score_hours = self._table(CALL_HOURS), self._table(SCORE_HOURS)
        params: dict[str, object] = {
            "p": project_id,
            "hours": hours,
            "lo": hours[0] * 1_000_000,
            "hi": (hours[-1] + 3600) * 1_000_000,
            "zero": version,
            "v": version + 1,
        }
        in_hours = (
            "started_at >= fromUnixTimestamp64Micro({lo:Int64}, 'UTC') "
            "AND started_at < fromUnixTimestamp64Micro({hi:Int64}, 'UTC') "
            f"AND toUnixTimestamp({_HOUR_OF}) IN {{hours:Array(UInt32)}}"
        )
        current = (
            f"SELECT id, source, external_id, {_HOUR_OF} AS hour, ifNull(agent_id, '') AS agent, "
            "ifNull(agent_version, '') AS agent_version_, end_reason, cost_usd, duration_s, metadata, "
            f"agent_e2e_s, agent_latency_filled FROM {calls} FINAL PREWHERE project_id = {{p:String}} "
            f"AND (source, external_id) IN (SELECT source, external_id FROM {calls} "
            f"PREWHERE project_id = {{p:String}} WHERE {in_hours}) WHERE {in_hours}"
        )
        hour_filter = "PREWHERE project_id = {p:String} WHERE toUnixTimestamp(hour) IN {hours:Array(UInt32)}"
        self._execute(
            f"INSERT INTO {call_hours} SELECT project_id, hour, agent_id, agent_version, end_reason, "
            f"{{zero:UInt64}}, 0, 0, 0, 0, 0, {_EMPTY_E2E} FROM {call_hours} FINAL {hour_filter}",
            params,
            "clear the rollups' call figures of the hours recomputed",
        )
        self._execute(
            f"INSERT INTO {score_hours} SELECT project_id, hour, agent_id, agent_version, metric, source, "
            f"{{zero:UInt64}}, 0, 0, 0, 0, 0, 0, {_EMPTY_VALUES} FROM {score_hours} FINAL {hour_filter}",
            params,
            "clear the rollups' score figures of the hours recomputed",
        )
        self._execute(
            f"INSERT INTO {call_hours} SELECT {{p:String}}, hour, agent, agent_version_, end_reason, "
            "{v:UInt64}, count(), sum(cost_usd), sum(duration_s), sum(JSONLength(metadata, 'errors')), "
            "sumIf(length(agent_e2e_s), agent_latency_filled = 1), "
            "quantilesTDigestArrayStateIf(0.5, 0.95)(agent_e2e_s, agent_latency_filled = 1) "
            f"FROM ({current}) GROUP BY hour, agent, agent_version_, end_reason",
            params,
            "compute the rollups' call figures",
        )
        scored = (
            f"SELECT s.call_id AS call_id, s.metric AS metric, s.source AS source, s.value_num AS value_num, "
            "s.passed AS passed, c.hour AS hour, c.agent AS agent, c.agent_version_ AS agent_version_ "
            f"FROM (SELECT call_id, metric, source, value_num, passed FROM {scores} FINAL "
            f"PREWHERE project_id = {{p:String}} AND call_id IN (SELECT id FROM {calls} "
            f"PREWHERE project_id = {{p:String}} WHERE {in_hours})) AS s "
            f"INNER JOIN ({current}) AS c ON s.call_id = c.id"
        )
        self._execute(
            f"INSERT INTO {score_hours} SELECT {{p:String}}, hour, agent, agent_version_, metric, source, "
            "{v:UInt64}, uniqExact(call_id), countIf(passed IS NOT NULL), countIf(passed = 1), "
            "countIf(passed = 0), count(value_num), sum(ifNull(value_num, 0)), "
            "quantilesTDigestStateIf(0.5, 0.95)(assumeNotNull(value_num), value_num IS NOT NULL) "
            f"FROM ({scored}) GROUP BY hour, agent, agent_version_, metric, source "
            # One row per hour, agent and version (metric '') counts the calls with audio scores.
            f"UNION ALL SELECT {{p:String}}, hour, agent, agent_version_, '', 'audio', {{v:UInt64}}, "
            f"uniqExactIf(call_id, source = 'audio'), 0, 0, 0, 0, 0, {_EMPTY_VALUES} "
            f"FROM ({scored}) GROUP BY hour, agent, agent_version_",
            params,
            "compute the rollups' score figures",
        )
        self._execute(
            f"INSERT INTO {self._table(ROLLUP_CALL_MAP)} SELECT {{p:String}}, source, external_id, hour, "
            f"{{v:UInt64}} FROM ({current})",
            params,
            "map the calls to the hours they were counted in",
        )
        marked = [(project_id, datetime.fromtimestamp(h, UTC), version + 1) for h in hours]
        self._insert(ROLLUP_HOURS, marked, "mark the hours the rollups hold")
