"""Traces and sessions found without knowing their ids: list and search over the stored spans.

A trace is summarised from its spans (its root's name, service, time span, span and error counts, the
models it called, the conversation and call it belongs to); a session is the traces of one conversation
key. Filters combine with AND: a time range (on span start), the service (``service.name`` resource
attribute), a model (any of the conventions' model attributes), errors only, one attribute ``key=value``
(the attribute as stored, compared as text), and text anywhere in a span's name or attributes (case
insensitive). The newest come first; ``before`` (the last item's start and trace id) pages on.

Mixed into :class:`~.clickhouse.ClickHouseStore`, which provides the client (``_rows``) and table names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .rows import micros
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


def _model_expr(column: str) -> str:
    reads = ", ".join(f"JSONExtractString({column}, '{name}')" for name in MODEL_ATTRIBUTES)
    return f"arrayFilter(m -> m != '', [{reads}])"


class TraceQueriesMixin:
    """Trace and session search; mixed into ``ClickHouseStore``, which provides ``_rows`` and ``_table``."""

    _rows: Callable[[str, Mapping[str, object], str], list[dict[str, Any]]]
    _table: Callable[[TableSpec], str]

    def _trace_where(self, project_id: str, query: TraceFilter, params: dict[str, object]) -> str:
        """The span-level filter: the traces holding at least one span that matches everything asked."""
        where = ["project_id = {p:String}"]
        params["p"] = project_id
        if query.since is not None:
            where.append("start_at >= fromUnixTimestamp64Micro({since:Int64}, 'UTC')")
            params["since"] = micros(query.since)
        if query.until is not None:
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
        return " AND ".join(where)

    def search_traces(self, project_id: str, query: TraceFilter) -> list[dict[str, Any]]:
        """One summary per matching trace, newest first (at most ``query.limit``)."""
        params: dict[str, object] = {}
        spans = self._table(SPANS)
        matching = (
            f"SELECT DISTINCT trace_id FROM {spans} WHERE {self._trace_where(project_id, query, params)}"
        )
        having = ""
        if query.before is not None:
            having = (
                "HAVING (started, trace_id) < "
                "(fromUnixTimestamp64Micro({bstart:Int64}, 'UTC'), {btrace:String})"
            )
            params["bstart"], params["btrace"] = micros(query.before[0]), query.before[1]
        params["limit"] = max(1, min(query.limit, 1000))
        sql = (
            "SELECT trace_id, min(start_at) AS started, max(coalesce(end_at, start_at)) AS ended, "
            "count() AS span_count, countIf(status_code = 'error') AS error_count, "
            "argMinIf(name, start_at, parent_span_id IS NULL) AS root_name, "
            "anyIf(JSONExtractString(resource_attributes, 'service.name'), "
            "JSONExtractString(resource_attributes, 'service.name') != '') AS service, "
            f"arraySort(arrayDistinct(arrayFlatten(groupArray({_model_expr('attributes')})))) AS models, "
            "anyIf(conversation_id, conversation_id IS NOT NULL) AS conversation_id, "
            "anyIf(call_id, call_id IS NOT NULL) AS call_id "
            f"FROM {spans} FINAL WHERE project_id = {{p:String}} AND trace_id IN ({matching}) "
            f"GROUP BY trace_id {having} ORDER BY started DESC, trace_id DESC LIMIT {{limit:UInt32}}"
        )
        return self._rows(sql, params, "search traces")

    def search_sessions(self, project_id: str, query: TraceFilter) -> list[dict[str, Any]]:
        """One summary per conversation key with a matching trace, newest activity first."""
        params: dict[str, object] = {}
        spans = self._table(SPANS)
        matching = (
            f"SELECT DISTINCT trace_id FROM {spans} WHERE {self._trace_where(project_id, query, params)}"
        )
        params["limit"] = max(1, min(query.limit, 1000))
        sql = (
            "SELECT conversation_id, min(start_at) AS started, max(coalesce(end_at, start_at)) AS ended, "
            "uniqExact(trace_id) AS trace_count, count() AS span_count, "
            "countIf(status_code = 'error') AS error_count, anyIf(call_id, call_id IS NOT NULL) AS call_id "
            f"FROM {spans} FINAL WHERE project_id = {{p:String}} AND trace_id IN ({matching}) "
            "AND conversation_id IS NOT NULL "
            "GROUP BY conversation_id ORDER BY ended DESC, conversation_id LIMIT {limit:UInt32}"
        )
        return self._rows(sql, params, "search sessions")
