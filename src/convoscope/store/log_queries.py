"""OTLP log records, stored beside the spans they name (``span_logs``), read back by trace.

Why: GenAI instrumentations send message content as log records tied to a span by trace and span id; a
record may arrive before or after its span, so records are kept on their own and read again each time
the conversation holding their traces is assembled. A record's ``record_id`` is its time then a digest of
its content, so a re-delivered export replaces its own rows (read with ``FINAL``) and the records of a span
read back in the order they were emitted.

Mixed into :class:`~.clickhouse.ClickHouseStore`, which provides the client (``_rows``, ``_insert``) and
table names. The store does not depend on the ingest layer: it takes any record with the fields below
(:class:`LogFields`) and reads back :class:`StoredLog`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
from pydantic import JsonValue

from .rows import datetime_from_micros, micros
from .schema import SPAN_LOGS, SPANS, TableSpec

__all__ = ["LogFields", "LogQueriesMixin", "StoredLog"]


class LogFields(Protocol):
    """What a log record must say to be stored (the decoder's ``LogRecord`` has these fields)."""

    @property
    def trace_id(self) -> str: ...
    @property
    def span_id(self) -> str: ...
    @property
    def record_id(self) -> str: ...
    @property
    def time(self) -> datetime: ...
    @property
    def event_name(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def body(self) -> JsonValue: ...
    @property
    def attributes(self) -> dict[str, JsonValue]: ...
    @property
    def resource_attributes(self) -> dict[str, JsonValue]: ...
    @property
    def scope_name(self) -> str: ...


@dataclass(frozen=True, slots=True)
class StoredLog:
    """One stored log record (empty ids when it named no span)."""

    trace_id: str
    span_id: str
    record_id: str
    time: datetime
    event_name: str
    severity: str
    body: JsonValue
    attributes: dict[str, JsonValue]
    resource_attributes: dict[str, JsonValue]
    scope_name: str


def _log_row(project_id: str, record: LogFields, version: int) -> tuple[Any, ...]:
    return (
        project_id,
        record.trace_id,
        record.span_id,
        record.record_id,
        version,
        micros(record.time),
        record.event_name,
        record.severity,
        "" if record.body is None else orjson.dumps(record.body).decode(),
        orjson.dumps(record.attributes).decode(),
        orjson.dumps(record.resource_attributes).decode(),
        record.scope_name,
    )


def _stored(row: Mapping[str, Any]) -> StoredLog:
    return StoredLog(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        record_id=row["record_id"],
        time=datetime_from_micros(row["observed_at"]),
        event_name=row["event_name"],
        severity=row["severity"],
        body=orjson.loads(row["body"]) if row["body"] else None,
        attributes=orjson.loads(row["attributes"]),
        resource_attributes=orjson.loads(row["resource_attributes"]),
        scope_name=row["scope_name"],
    )


class LogQueriesMixin:
    """Log records of spans; mixed into ``ClickHouseStore``, which provides ``_rows``, ``_insert`` and
    ``_table``."""

    _rows: Callable[[str, Mapping[str, object], str], list[dict[str, Any]]]
    _insert: Callable[[TableSpec, Sequence[tuple[Any, ...]], str], None]
    _table: Callable[[TableSpec], str]

    def insert_span_logs(self, project_id: str, records: Sequence[LogFields]) -> None:
        """Write log records; the same (trace, span, record id) written again replaces the row."""
        version = time.time_ns() // 1000
        self._insert(
            SPAN_LOGS, [_log_row(project_id, record, version) for record in records], "write log records"
        )

    def span_logs_of_traces(
        self, project_id: str, trace_ids: Collection[str], *, event_names: Collection[str] | None = None
    ) -> list[StoredLog]:
        """The records of these traces that name a span (of ``event_names`` only, when given), by trace,
        span and then the order they were emitted in."""
        if not trace_ids:
            return []
        params: dict[str, object] = {"p": project_id, "traces": sorted(set(trace_ids))}
        names = ""
        if event_names is not None:
            names = "AND event_name IN {names:Array(String)} "
            params["names"] = sorted(set(event_names))
        rows = self._rows(
            f"SELECT {SPAN_LOGS.select_list(exclude=('project_id', 'version'))} "
            f"FROM {self._table(SPAN_LOGS)} FINAL PREWHERE project_id = {{p:String}} "
            f"AND trace_id IN {{traces:Array(String)}} WHERE span_id != '' {names}"
            "ORDER BY trace_id, span_id, record_id",
            params,
            "read log records",
        )
        return [_stored(row) for row in rows]

    def conversations_of_traces(self, project_id: str, trace_ids: Collection[str]) -> dict[str, set[str]]:
        """The conversation keys the stored spans of each trace carry; a trace with stored spans of no
        conversation yet maps to an empty set, a trace with none stored is absent."""
        if not trace_ids:
            return {}
        rows = self._rows(
            f"SELECT DISTINCT trace_id, conversation_id FROM {self._table(SPANS)} "
            "WHERE project_id = {p:String} AND trace_id IN {traces:Array(String)}",
            {"p": project_id, "traces": sorted(set(trace_ids))},
            "find the conversations of traces",
        )
        found: dict[str, set[str]] = {}
        for row in rows:
            keys = found.setdefault(row["trace_id"], set())
            if row["conversation_id"]:
                keys.add(row["conversation_id"])
        return found
