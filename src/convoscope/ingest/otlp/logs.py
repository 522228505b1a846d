"""Decode an OTLP/HTTP log export (protobuf or JSON) into log records, one record at a time.

Why: GenAI instrumentations put message content in log records rather than on spans (OpenTelemetry's
``opentelemetry-instrumentation-openai-v2`` with ``event_only``), each record naming its span by trace and
span id; stored, they are folded into those spans when a call is assembled (``log_fold``).

The rules are the trace decoder's (``decode``), whose readers of ids, times and values are reused: a body
that cannot be read at all is a ``PayloadError`` (HTTP 400); inside a readable body each record is checked
on its own, and one with malformed ids or a time outside the store's range is rejected and counted (the
OTLP partial-success answer) while the others are kept. A record without trace context is kept too, with
empty ids: nothing is dropped silently. Attribute and body sizes are capped with the span caps. Each record
gets a ``record_id``: its own nanosecond time then a digest of its content, so an export delivered twice
stores one copy and the records of a span read back in the order they were emitted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from google.protobuf.message import DecodeError  # type: ignore[import-untyped,unused-ignore]
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber
from pydantic import JsonValue

from ...errors import PayloadError
from ...model.bounds import MAX_JSON_DEPTH, MAX_TIME, MIN_TIME, json_depth_exceeds
from .decode import (
    _MAX_NS,
    _MIN_NS,
    _UINT64,
    JSON_TYPE,
    PROTOBUF_TYPE,
    _BadSpan,
    _json_attributes,
    _json_id,
    _json_int,
    _json_list,
    _json_value,
    _pb_attributes,
    _pb_value,
    _time,
)
from .limits import TRUNCATED_KEY, SpanLimits, cap_attributes

__all__ = ["BODY_KEY", "DecodedLogs", "LogRecord", "decode_logs"]

BODY_KEY = "body"
"""How a cut body is named in the record's ``convoscope.truncated`` list."""
_REPORTED_ERRORS = 5
_SEVERITIES: dict[int, str] = {
    int(number): name.removeprefix("SEVERITY_NUMBER_") for name, number in SeverityNumber.items()
}


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One OTLP log record as stored: the span it names (empty ids when it names none) and its content."""

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


@dataclass
class DecodedLogs:
    """The valid records of one export request, and what was rejected and why."""

    records: list[LogRecord] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, where: str, why: str) -> None:
        self.rejected += 1
        if len(self.errors) < _REPORTED_ERRORS:
            self.errors.append(f"{where}: {why}")

    @property
    def message(self) -> str:
        """The partial-success message: the first few reasons, and how many records in all."""
        if not self.rejected:
            return ""
        more = f" ({self.rejected} log records rejected in all)" if self.rejected > len(self.errors) else ""
        return "; ".join(self.errors) + more


def decode_logs(body: bytes, kind: str, limits: SpanLimits, *, received: datetime) -> DecodedLogs:
    """The records of one ``ExportLogsServiceRequest`` in the given encoding; a record that names no time
    at all (neither its own nor when it was observed) takes ``received``, the export's receive time."""
    if kind == PROTOBUF_TYPE:
        return _from_protobuf(body, limits, received)
    if kind == JSON_TYPE:
        return _from_json(body, limits, received)
    raise PayloadError(f"unsupported OTLP encoding {kind!r}")


# -- the one place a record is built and checked ------------------------------------------------------


@dataclass(slots=True)
class _Raw:
    """The fields of one record as read from either encoding, before checks."""

    trace_id: str
    span_id: str
    time_ns: int
    observed_ns: int
    severity_number: int
    severity_text: str
    event_name: str
    body: JsonValue
    attributes: dict[str, JsonValue]


_At = tuple[int, int, int]
"""Where a record sits in the request: (resource logs, scope logs, record) indexes."""


def _where(at: _At) -> str:
    return f"resourceLogs[{at[0]}].scopeLogs[{at[1]}].logRecords[{at[2]}]"


def _problem(raw: _Raw, resource: dict[str, JsonValue]) -> str | None:
    if raw.trace_id and len(raw.trace_id) != 32:
        return "invalid trace id (not 16 bytes)"
    if raw.span_id and len(raw.span_id) != 16:
        return "invalid span id (not 8 bytes)"
    if _no_context(raw.span_id) and not _no_context(raw.trace_id):
        return "span id without a trace id"
    for at in (raw.time_ns, raw.observed_ns):
        if at and not _MIN_NS <= at <= _MAX_NS:
            return f"time outside the store's range ({MIN_TIME:%Y-%m-%d} to {MAX_TIME:%Y-%m-%d})"
    for value in (raw.attributes, raw.body, resource):
        if json_depth_exceeds(value, MAX_JSON_DEPTH):
            return f"attributes or body nest deeper than {MAX_JSON_DEPTH} levels"
    return None


def _no_context(hex_id: str) -> str:
    """An all-zero id (of the right length: checked first) is OTLP's "no context"; stored as none."""
    return "" if hex_id.strip("0") == "" else hex_id


def _record_id(raw: _Raw, resource: dict[str, JsonValue], scope: str) -> str:
    """The record's own nanosecond time (fixed width, so ids sort by it), then a digest of everything the
    record says: the same record delivered again gets the same id."""
    content = orjson.dumps(
        [
            raw.trace_id,
            raw.span_id,
            raw.time_ns,
            raw.observed_ns,
            raw.severity_number,
            raw.severity_text,
            raw.event_name,
            raw.body,
            raw.attributes,
            resource,
            scope,
        ],
        option=orjson.OPT_SORT_KEYS,
    )
    return f"{raw.time_ns or raw.observed_ns:020d}-{hashlib.blake2b(content, digest_size=16).hexdigest()}"


def _capped(
    attributes: dict[str, JsonValue], body: JsonValue, limits: SpanLimits
) -> tuple[dict[str, JsonValue], JsonValue]:
    """Attributes within the span caps, and the body within one attribute's cap; a cut body is listed
    with the cut attributes under ``convoscope.truncated``."""
    attributes = cap_attributes(attributes, limits)
    boxed = cap_attributes({BODY_KEY: body}, limits)
    if TRUNCATED_KEY not in boxed:
        return attributes, body
    cut = attributes.get(TRUNCATED_KEY)
    listed: list[JsonValue] = [*(cut if isinstance(cut, list) else []), BODY_KEY]
    return {**attributes, TRUNCATED_KEY: listed}, boxed[BODY_KEY]


def _add(
    batch: DecodedLogs,
    raw: _Raw,
    at: _At,
    resource: dict[str, JsonValue],
    scope: str,
    limits: SpanLimits,
    received: datetime,
) -> None:
    problem = _problem(raw, resource)
    if problem is not None:
        batch.reject(_where(at), problem)
        return
    raw.trace_id, raw.span_id = _no_context(raw.trace_id), _no_context(raw.span_id)
    event_name = raw.event_name
    if not event_name and isinstance(raw.attributes.get("event.name"), str):
        event_name = str(raw.attributes["event.name"])
    severity = raw.severity_text or (_SEVERITIES.get(raw.severity_number, "") if raw.severity_number else "")
    record_id = _record_id(raw, resource, scope)
    attributes, body = _capped(raw.attributes, raw.body, limits)
    moment = raw.time_ns or raw.observed_ns
    batch.records.append(
        LogRecord(
            trace_id=raw.trace_id,
            span_id=raw.span_id,
            record_id=record_id,
            time=_time(moment) if moment else received,
            event_name=event_name,
            severity=severity,
            body=body,
            attributes=attributes,
            resource_attributes=cap_attributes(resource, limits),
            scope_name=scope,
        )
    )


# -- protobuf -----------------------------------------------------------------------------------------


def _from_protobuf(body: bytes, limits: SpanLimits, received: datetime) -> DecodedLogs:
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise PayloadError(f"the body is not a valid OTLP protobuf ExportLogsServiceRequest: {exc}") from exc
    batch = DecodedLogs()
    for r, resource_logs in enumerate(request.resource_logs):
        resource = _pb_attributes(resource_logs.resource.attributes)
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            scope = scope_logs.scope.name
            for i, record in enumerate(scope_logs.log_records):
                raw = _Raw(
                    trace_id=record.trace_id.hex(),
                    span_id=record.span_id.hex(),
                    time_ns=record.time_unix_nano,
                    observed_ns=record.observed_time_unix_nano,
                    severity_number=record.severity_number,
                    severity_text=record.severity_text,
                    event_name=record.event_name,
                    body=_pb_value(record.body),
                    attributes=_pb_attributes(record.attributes),
                )
                _add(batch, raw, (r, s, i), resource, scope, limits, received)
    return batch


# -- JSON ---------------------------------------------------------------------------------------------


def _json_severity(value: Any) -> int:
    if isinstance(value, str) and value.startswith("SEVERITY_NUMBER_"):
        return SeverityNumber.Value(value) if value in SeverityNumber.keys() else 0
    return _json_int(value, "severityNumber")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _json_raw(record: Mapping[str, Any]) -> _Raw:
    return _Raw(
        trace_id=_json_id(record.get("traceId"), "traceId"),
        span_id=_json_id(record.get("spanId"), "spanId"),
        time_ns=_json_int(record.get("timeUnixNano"), "timeUnixNano", _UINT64),
        observed_ns=_json_int(record.get("observedTimeUnixNano"), "observedTimeUnixNano", _UINT64),
        severity_number=_json_severity(record.get("severityNumber")),
        severity_text=_text(record.get("severityText")),
        event_name=_text(record.get("eventName")),
        body=_json_value(record.get("body"), "body"),
        attributes=_json_attributes(record.get("attributes"), "attributes"),
    )


def _json_records(document: Any) -> Iterator[tuple[_At, Any, Any, str]]:
    """(where, record, resource attributes, scope name) for every record of an OTLP/JSON document."""
    for r, resource_logs in enumerate(_json_list(document, "resourceLogs", "body")):
        where_r = f"resourceLogs[{r}]"
        resource = resource_logs.get("resource") if isinstance(resource_logs, Mapping) else None
        attrs = resource.get("attributes") if isinstance(resource, Mapping) else None
        for s, scope_logs in enumerate(_json_list(resource_logs, "scopeLogs", where_r)):
            scope = scope_logs.get("scope") if isinstance(scope_logs, Mapping) else None
            scope_name = scope.get("name", "") if isinstance(scope, Mapping) else ""
            where_s = f"{where_r}.scopeLogs[{s}]"
            for i, record in enumerate(_json_list(scope_logs, "logRecords", where_s)):
                yield (r, s, i), record, attrs, _text(scope_name)


def _from_json(body: bytes, limits: SpanLimits, received: datetime) -> DecodedLogs:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(document, Mapping):
        raise PayloadError("the body is not an OTLP ExportLogsServiceRequest object")
    batch = DecodedLogs()
    resources: dict[int, dict[str, JsonValue]] = {}
    for at, record, resource_attrs, scope in _json_records(document):
        try:
            resource = resources.get(id(resource_attrs))
            if resource is None:
                resource = _json_attributes(resource_attrs, "resource.attributes")
                resources[id(resource_attrs)] = resource
            if not isinstance(record, Mapping):
                raise _BadSpan("log record is not an object")
            raw = _json_raw(record)
        except _BadSpan as exc:
            batch.reject(_where(at), str(exc))
            continue
        _add(batch, raw, at, resource, scope, limits, received)
    return batch
