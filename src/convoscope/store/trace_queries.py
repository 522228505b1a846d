"""Traces and sessions found without knowing their ids: list and search over the stored spans.

A trace is summarised from its spans (its root's name, service, time span, span and error counts, the
models it called, the conversation and call it belongs to); a session is the traces of one conversation
key. Filters combine with AND: a time range (on the trace's start; for sessions, on their spans' start),
the service (``service.name`` resource attribute), a model (any of the conventions' model attributes),
errors only, one attribute ``key=value`` (the attribute as stored, compared as text), and text anywhere in
a span's name or attributes (case insensitive). The newest come first; ``before`` (the last item's start
and trace id) pages on.

Spans are sorted by the hour they started, so a search reads time windows backwards from the newest
span (or the cursor): one hour, then four times longer each step, until the page is full or the whole
range was read. A page of recent traces reads a few thousand spans however large the store; a filter
that matches nothing recent reads further back, and a text search that matches nothing reads everything.
Within a window a trace's start is only known if it began inside it, so each window's candidates are
summarised over all their spans and one that began earlier waits for the window that holds its start.

Mixed into :class:`~.clickhouse.ClickHouseStore`, which provides the client (``_rows``) and table names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .rows import datetime_from_micros, micros
from .schema import SPANS, TableSpec

__all__ = ["TraceFilter", "TraceQueriesMixin"]

MODEL_ATTRIBUTES = ("gen_ai.request.model", "gen_ai.response.model", "llm.model_name", "embedding.model_name")
"""Where a span names the model it called."""


@dataclass(frozen=True)
class TraceFilter:
    """Which traces: every field optional, combined with AND."""

    since: datetime | None = None
    until: datetime | None = None
    service: str | None = None
    model: str | None = None
    errors_only: bool = False
    attribute: tuple[str, str] | None = None
    text: str | None = None
    conversation_id: str | None = None
    before: tuple[datetime, str] | None = None
    """Page after this (start, trace id): the last item of the previous page."""
    limit: int = 50


WINDOW_START_S = 3600.0
"""The first window a search reads back from the newest span: one hour."""
WINDOW_GROWTH = 4
"""Each next window is this many times longer."""
WINDOW_MAX_S = 4096 * 3600.0
"""Past this (about 170 days) the next window is the whole remaining range."""
SPAN_REACH_S = 86400.0
"""How long after a trace's start its spans are read when paging back or searching before ``until``:
a span more than a day after its trace began is not matched nor counted there (the newest page reads
everything)."""
CANDIDATE_SLACK = 2
"""Candidates read per window, as a multiple of the page: room for traces that began before it."""


def _windows(anchor: datetime, floor: datetime | None) -> list[datetime | None]:
    """The lower bounds of the windows read back from ``anchor``; ``None`` is "from the beginning"."""
    bounds: list[datetime | None] = []
    length = WINDOW_START_S
    while length <= WINDOW_MAX_S:
        lower = anchor - timedelta(seconds=length)
        if floor is not None and lower <= floor:
            return [*bounds, floor]
        bounds.append(lower)
        length *= WINDOW_GROWTH
    return [*bounds, floor]


def _utc_times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``started``/``ended`` as aware UTC datetimes (the driver may hand back naive ones)."""
    for row in rows:
        for key in ("started", "ended"):
            value = row[key]
            if isinstance(value, datetime) and value.tzinfo is None:
                row[key] = value.replace(tzinfo=UTC)
    return rows


_Window = tuple[datetime | None, datetime]
"""The spans a step reads: started at or after the lower bound (None: from the beginning), before the
upper."""


def _window_where(window: _Window, params: dict[str, object]) -> list[str]:
    lower, upper = window
    params["upper"] = micros(upper)
    where = ["start_at < fromUnixTimestamp64Micro({upper:Int64}, 'UTC')"]
    if lower is not None:
        where.append("start_at >= fromUnixTimestamp64Micro({lower:Int64}, 'UTC')")
        params["lower"] = micros(lower)
    return where


def _model_expr(column: str) -> str:
    reads = ", ".join(f"JSONExtractString({column}, '{name}')" for name in MODEL_ATTRIBUTES)
    return f"arrayFilter(m -> m != '', [{reads}])"


class TraceQueriesMixin:
    """Trace and session search; mixed into ``ClickHouseStore``, which provides ``_rows`` and ``_table``."""

    _rows: Callable[[str, Mapping[str, object], str], list[dict[str, Any]]]
    _table: Callable[[TableSpec], str]

    def _match(self, query: TraceFilter, params: dict[str, object], *, span_times: bool) -> str:
        """The span-level condition (``1`` when nothing is asked): a trace matches when one of its spans
        does. ``span_times`` puts the time range on spans too (sessions); traces apply it to their start."""
        where: list[str] = []
        if span_times and query.since is not None:
            where.append("start_at >= fromUnixTimestamp64Micro({since:Int64}, 'UTC')")
            params["since"] = micros(query.since)
        if span_times and query.until is not None:
            where.append("start_at < fromUnixTimestamp64Micro({until:Int64}, 'UTC')")
            params["until"] = micros(query.until)
        if query.service is not None:
            where.append("JSONExtractString(resource_attributes, 'service.name') = {service:String}")
            params["service"] = query.service
        if query.model is not None:
            where.append(f"has({_model_expr('attributes')}, {{model:String}})")
            params["model"] = query.model
        if query.errors_only:
            where.append("status_code = 'error'")
        if query.attribute is not None:
            key, value = query.attribute
            where.append(
                "(JSONExtractString(attributes, {akey:String}) = {avalue:String} "
                "OR JSONExtractRaw(attributes, {akey:String}) = {avalue:String})"
            )
            params["akey"], params["avalue"] = key, value
        if query.text:
            where.append(
                "(positionCaseInsensitiveUTF8(name, {text:String}) > 0 "
                "OR positionCaseInsensitiveUTF8(attributes, {text:String}) > 0)"
            )
            params["text"] = query.text
        if query.conversation_id is not None:
            where.append("conversation_id = {conv:String}")
            params["conv"] = query.conversation_id
        return " AND ".join(where) or "1"

    def _newest_start(self, project_id: str) -> datetime | None:
        """The end of the newest hour holding a span of the project (read from the end of the key)."""
        rows = self._rows(
            f"SELECT toUnixTimestamp64Micro(start_at) AS at FROM {self._table(SPANS)} "
            "WHERE project_id = {p:String} ORDER BY toStartOfHour(start_at) DESC LIMIT 1",
            {"p": project_id},
            "find the newest span",
        )
        if not rows:
            return None
        return datetime_from_micros(int(rows[0]["at"])).replace(
            minute=0, second=0, microsecond=0
        ) + timedelta(hours=1)

    def _anchor(self, project_id: str, *limits: datetime | None) -> datetime | None:
        newest = self._newest_start(project_id)
        if newest is None:
            return None
        return min([newest, *(limit + timedelta(microseconds=1) for limit in limits if limit is not None)])

    def search_traces(self, project_id: str, query: TraceFilter) -> list[dict[str, Any]]:
        """One summary per matching trace, newest first (at most ``query.limit``)."""
        limit = max(1, min(query.limit, 1000))
        before = query.before[0] if query.before is not None else None
        anchor = self._anchor(project_id, query.until, before)
        if anchor is None:
            return []
        # A conversation's spans are found through its bloom filter index: no need to walk back in time.
        windows = [query.since] if query.conversation_id is not None else _windows(anchor, query.since)
        upper = anchor + timedelta(seconds=SPAN_REACH_S)
        for lower in windows:
            last = lower is None or lower == query.since
            wanted = limit * CANDIDATE_SLACK
            while True:
                candidates = self._trace_candidates(project_id, query, (lower, upper), wanted)
                if len(candidates) < limit and not last:
                    break  # too few even if every one began inside: widen before summarising
                found = [
                    row
                    for row in self._trace_summaries(
                        project_id, [c["trace_id"] for c in candidates], (lower, upper)
                    )
                    if self._in_page(row, query, lower)
                ]
                if len(found) >= limit or len(candidates) < wanted:
                    break
                wanted *= WINDOW_GROWTH  # traces that began earlier took the room: read more
            if last or (len(candidates) >= limit and len(found) >= limit):
                found.sort(key=lambda r: (r["started"], r["trace_id"]), reverse=True)
                return found[:limit]
        return []

    @staticmethod
    def _in_page(row: Mapping[str, Any], query: TraceFilter, lower: datetime | None) -> bool:
        """Whether a summarised trace belongs to this window's page (its true start is known now)."""
        started = row["started"]
        if lower is not None and started < lower:
            return False  # it began before the window: a wider window places it
        if query.until is not None and started >= query.until:
            return False
        if query.before is not None and (started, row["trace_id"]) >= query.before:
            return False
        return True

    def _trace_candidates(
        self, project_id: str, query: TraceFilter, window: _Window, wanted: int
    ) -> list[dict[str, Any]]:
        """The traces with a matching span among the spans started in the window, newest first by the
        earliest of those spans (their start, for every trace that began inside the window)."""
        params: dict[str, object] = {"p": project_id, "wanted": wanted}
        match = self._match(query, params, span_times=False)
        where = ["project_id = {p:String}", *_window_where(window, params)]
        if query.conversation_id is not None:
            where.append("conversation_id = {conv:String}")  # on every span of its traces: indexed
        having = [f"countIf({match}) > 0"]
        if query.until is not None:
            having.append("started < fromUnixTimestamp64Micro({until:Int64}, 'UTC')")
            params["until"] = micros(query.until)
        if query.before is not None:
            having.append(
                "(started, trace_id) < (fromUnixTimestamp64Micro({bstart:Int64}, 'UTC'), {btrace:String})"
            )
            params["bstart"], params["btrace"] = micros(query.before[0]), query.before[1]
        sql = (
            f"SELECT trace_id, min(start_at) AS started FROM {self._table(SPANS)} "
            f"WHERE {' AND '.join(where)} GROUP BY trace_id HAVING {' AND '.join(having)} "
            "ORDER BY started DESC, trace_id DESC LIMIT {wanted:UInt32}"
        )
        return self._rows(sql, params, "search traces")

    def _trace_summaries(
        self, project_id: str, trace_ids: list[str], window: _Window
    ) -> list[dict[str, Any]]:
        """Each trace summarised over all its spans: those whose root span is inside the window from
        the window alone (a root starts before its children), the others over all their spans."""
        if not trace_ids:
            return []
        if window[0] is None:
            return self._summarise(project_id, trace_ids, (None, window[1]))
        inside = self._summarise(project_id, trace_ids, window)
        whole = [row for row in inside if row["roots"] > 0]
        rest = sorted(set(trace_ids) - {row["trace_id"] for row in whole})
        return whole + (self._summarise(project_id, rest, (None, window[1])) if rest else [])

    def _summarise(self, project_id: str, trace_ids: list[str], window: _Window) -> list[dict[str, Any]]:
        # No FINAL: a span is rewritten when its call is linked, so versions are counted by span id
        # instead, which lets the engine read only the granules of the window the key points to.
        params: dict[str, object] = {"p": project_id, "traces": trace_ids}
        where = [
            "project_id = {p:String}",
            *_window_where(window, params),
            "trace_id IN {traces:Array(String)}",
        ]
        sql = (
            "SELECT trace_id, min(start_at) AS started, max(coalesce(end_at, start_at)) AS ended, "
            "uniqExact(span_id) AS span_count, uniqExactIf(span_id, status_code = 'error') AS error_count, "
            "argMinIf(name, start_at, parent_span_id IS NULL) AS root_name, "
            "countIf(parent_span_id IS NULL) AS roots, "
            "anyIf(JSONExtractString(resource_attributes, 'service.name'), "
            "JSONExtractString(resource_attributes, 'service.name') != '') AS service, "
            f"arraySort(arrayDistinct(arrayFlatten(groupArray({_model_expr('attributes')})))) AS models, "
            "anyIf(conversation_id, conversation_id IS NOT NULL) AS conversation_id, "
            "anyIf(call_id, call_id IS NOT NULL) AS call_id "
            f"FROM {self._table(SPANS)} PREWHERE {' AND '.join(where)} GROUP BY trace_id"
        )
        return _utc_times(self._rows(sql, params, "summarise traces"))

    def search_sessions(self, project_id: str, query: TraceFilter) -> list[dict[str, Any]]:
        """One summary per conversation key with a matching trace, latest activity first.

        A conversation's latest activity is inside any window that reaches it, so a window's candidates
        are already in their final order; they are only counted over all their spans.
        """
        limit = max(1, min(query.limit, 1000))
        anchor = self._anchor(project_id, query.until)
        if anchor is None:
            return []
        for lower in _windows(anchor, query.since):
            keys = self._session_candidates(project_id, query, lower, limit)
            if len(keys) >= limit or lower is None or lower == query.since:
                rows = self._session_summaries(project_id, keys)
                order = {key: i for i, key in enumerate(keys)}
                return sorted(rows, key=lambda r: order[r["conversation_id"]])
        return []

    def _session_candidates(
        self, project_id: str, query: TraceFilter, lower: datetime | None, limit: int
    ) -> list[str]:
        params: dict[str, object] = {"p": project_id, "limit": limit}
        match = self._match(query, params, span_times=True)
        where = ["project_id = {p:String}", "conversation_id IS NOT NULL"]
        if query.until is not None:  # activity in the range: later spans neither match nor order
            where.append("start_at < fromUnixTimestamp64Micro({until:Int64}, 'UTC')")
        if lower is not None:
            where.append("start_at >= fromUnixTimestamp64Micro({lower:Int64}, 'UTC')")
            params["lower"] = micros(lower)
        sql = (
            f"SELECT conversation_id, max(coalesce(end_at, start_at)) AS ended FROM {self._table(SPANS)} "
            f"WHERE {' AND '.join(where)} GROUP BY conversation_id HAVING countIf({match}) > 0 "
            "ORDER BY ended DESC, conversation_id LIMIT {limit:UInt32}"
        )
        return [str(row["conversation_id"]) for row in self._rows(sql, params, "search sessions")]

    def _session_summaries(self, project_id: str, keys: list[str]) -> list[dict[str, Any]]:
        if not keys:
            return []
        sql = (
            "SELECT conversation_id, min(start_at) AS started, max(coalesce(end_at, start_at)) AS ended, "
            "uniqExact(trace_id) AS trace_count, uniqExact(trace_id, span_id) AS span_count, "
            "uniqExactIf(trace_id, span_id, status_code = 'error') AS error_count, "
            "anyIf(call_id, call_id IS NOT NULL) AS call_id "
            f"FROM {self._table(SPANS)} PREWHERE project_id = {{p:String}} "
            "AND conversation_id IN {keys:Array(String)} GROUP BY conversation_id"
        )
        return _utc_times(self._rows(sql, {"p": project_id, "keys": keys}, "summarise sessions"))
