"""Decode an OTLP/HTTP trace export (protobuf or JSON) into spans, one span at a time.

A body that cannot be read at all is a ``PayloadError`` (HTTP 400). Inside a readable body each span is
checked on its own: a span without a valid trace or span id, a name or a start time is rejected and
counted, and the other spans of the same request are kept (the OTLP partial-success answer). Resource
and scope attributes travel with every span; attribute sizes are capped (see ``limits``).
"""

from __future__ import annotations

import base64
import gzip
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from google.protobuf.message import DecodeError  # type: ignore[import-untyped,unused-ignore]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from pydantic import JsonValue

from ...errors import PayloadError, PayloadTooLarge
from ...model import Span, SpanKind
from ...model.bounds import MAX_JSON_DEPTH, MAX_TIME, MIN_TIME, json_depth_exceeds
from .documents import extract_documents
from .limits import SpanLimits, cap_attributes
from .trusted import trusted_span

__all__ = [
    "JSON_TYPE",
    "PROTOBUF_TYPE",
    "DecodedBatch",
    "decode_export",
    "decompress",
    "media_type",
]

PROTOBUF_TYPE = "application/x-protobuf"
JSON_TYPE = "application/json"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KINDS = tuple(SpanKind)  # protobuf enum order: unspecified, internal, server, client, producer, consumer
_STATUS = ("unset", "ok", "error")
_REPORTED_ERRORS = 5


@dataclass
class DecodedBatch:
    """The valid spans of one export request, and what was rejected and why."""

    spans: list[Span] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    warned: int = 0
    warnings: list[str] = field(default_factory=list)
    """What was kept but cut (document contents, documents past the per-span bound)."""

    def reject(self, where: str, why: str) -> None:
        self.rejected += 1
        if len(self.errors) < _REPORTED_ERRORS:
            self.errors.append(f"{where}: {why}")

    def warn(self, what: str) -> None:
        self.warned += 1
        if len(self.warnings) < _REPORTED_ERRORS:
            self.warnings.append(what)

    @property
    def message(self) -> str:
        """The partial-success message: the first few reasons and cuts, and how many in all."""
        parts: list[str] = []
        if self.rejected:
            more = f" ({self.rejected} spans rejected in all)" if self.rejected > len(self.errors) else ""
            parts.append("; ".join(self.errors) + more)
        if self.warned:
            more = f" ({self.warned} cuts in all)" if self.warned > len(self.warnings) else ""
            parts.append("kept but cut: " + "; ".join(self.warnings) + more)
        return "; ".join(parts)


def media_type(content_type: str | None) -> str | None:
    """``application/x-protobuf`` or ``application/json`` from a Content-Type header, else None."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return kind if kind in (PROTOBUF_TYPE, JSON_TYPE) else None


def decompress(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """The body without its ``gzip``/``deflate`` content encoding, refused past ``max_bytes``."""
    coding = (encoding or "identity").strip().lower()
    if coding == "identity":
        return body
    if coding not in ("gzip", "deflate"):
        raise PayloadError(f"Content-Encoding {encoding!r} is not supported (use gzip or none)")
    inflater = zlib.decompressobj(wbits=31 if coding == "gzip" else 15)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise PayloadError(f"the body is not valid {coding}: {exc}") from exc
    if len(out) > max_bytes:
        raise PayloadTooLarge(f"the decompressed body is larger than {max_bytes} bytes")
    if not inflater.eof:
        raise PayloadError(f"the {coding} body is truncated")
    return out


def decode_export(body: bytes, kind: str, limits: SpanLimits) -> DecodedBatch:
    """The spans of one ``ExportTraceServiceRequest`` in the given encoding."""
    if kind == PROTOBUF_TYPE:
        return _from_protobuf(body, limits)
    if kind == JSON_TYPE:
        return _from_json(body, limits)
    raise PayloadError(f"unsupported OTLP encoding {kind!r}")


# -- the one place a span is built and checked --------------------------------------------------------


@dataclass(slots=True)
class _Raw:
    """The fields of one span as read from either encoding, before checks."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int
    status_message: str
    attributes: dict[str, JsonValue]
    events: list[tuple[str, int, dict[str, JsonValue]]] = field(default_factory=list)
    links: list[tuple[str, str, dict[str, JsonValue]]] = field(default_factory=list)


MAX_EVENTS = 128
"""Events kept per span (the first ones; a span that streamed every token as an event keeps the start).
How many were left out is the span's ``events_dropped`` attribute."""
MAX_LINKS = 32
"""Links kept per span."""


def _events(raw: _Raw, limits: SpanLimits) -> list[JsonValue]:
    return [
        {"name": name, "time_unix_nano": at, "attributes": cap_attributes(attributes, limits)}
        for name, at, attributes in raw.events[:MAX_EVENTS]
    ]


def _links(raw: _Raw, limits: SpanLimits) -> list[JsonValue]:
    return [
        {"trace_id": trace, "span_id": span, "attributes": cap_attributes(attributes, limits)}
        for trace, span, attributes in raw.links[:MAX_LINKS]
    ]


def _with_dropped(attributes: dict[str, JsonValue], raw: _Raw) -> dict[str, JsonValue]:
    """The attributes, with how many events and links did not fit (said, never silently dropped)."""
    if len(raw.events) > MAX_EVENTS:
        attributes["events_dropped"] = len(raw.events) - MAX_EVENTS
    if len(raw.links) > MAX_LINKS:
        attributes["links_dropped"] = len(raw.links) - MAX_LINKS
    return attributes


def _time(nanos: int) -> datetime:
    return _EPOCH + timedelta(microseconds=nanos // 1000)


_MIN_NS = (MIN_TIME - _EPOCH) // timedelta(microseconds=1) * 1000
_MAX_NS = (MAX_TIME - _EPOCH) // timedelta(microseconds=1) * 1000


def _store_problem(raw: _Raw, resource: dict[str, JsonValue]) -> str | None:
    """What the store could not hold: times outside its range, attributes nested past the JSON limit."""
    if not _MIN_NS <= raw.start_ns <= _MAX_NS or (raw.end_ns and not _MIN_NS <= raw.end_ns <= _MAX_NS):
        return f"start or end time outside the store's range ({MIN_TIME:%Y-%m-%d} to {MAX_TIME:%Y-%m-%d})"
    if json_depth_exceeds(raw.attributes, MAX_JSON_DEPTH) or json_depth_exceeds(resource, MAX_JSON_DEPTH):
        return f"attributes nest deeper than {MAX_JSON_DEPTH} levels"
    return None


def _problem(raw: _Raw) -> str | None:
    if len(raw.trace_id) != 32 or raw.trace_id == "0" * 32:
        return "missing or invalid trace id"
    if len(raw.span_id) != 16 or raw.span_id == "0" * 16:
        return "missing or invalid span id"
    if raw.parent_span_id and len(raw.parent_span_id) != 16:
        return "invalid parent span id"
    if not raw.name:
        return "span has no name"
    if raw.start_ns <= 0:
        return "span has no start time"
    if raw.end_ns and raw.end_ns < raw.start_ns:
        return "span ends before it starts"
    return None


_At = tuple[int, int, int]
"""Where a span sits in the request: (resource spans, scope spans, span) indexes."""


def _where(at: _At) -> str:
    """The path of a span in the request, written only for a rejected span (it is not cheap per span)."""
    return f"resourceSpans[{at[0]}].scopeSpans[{at[1]}].spans[{at[2]}]"


def _add(
    batch: DecodedBatch,
    raw: _Raw,
    at: _At,
    resource: dict[str, JsonValue],
    scope: str,
    limits: SpanLimits,
) -> None:
    problem = _problem(raw) or _store_problem(raw, resource)
    if problem is not None:
        batch.reject(_where(at), problem)
        return
    parent = raw.parent_span_id if raw.parent_span_id and raw.parent_span_id != "0" * 16 else None
    found = extract_documents(raw.span_id, raw.attributes, raw.events, limits, batch.warn)
    raw.attributes, raw.events = found.attributes, found.events
    # Every field is checked above or typed by construction (hex ids from bytes, aware datetimes, JSON
    # attribute values), so the model is built without a second validation pass: it is the hot path.
    batch.spans.append(
        trusted_span(
            {
                "trace_id": raw.trace_id,
                "span_id": raw.span_id,
                "parent_span_id": parent,
                "name": raw.name,
                "kind": _KINDS[raw.kind] if 0 <= raw.kind < len(_KINDS) else SpanKind.UNSPECIFIED,
                "start": _time(raw.start_ns),
                "end": _time(raw.end_ns) if raw.end_ns else None,
                "status_code": _STATUS[raw.status_code] if 0 <= raw.status_code < len(_STATUS) else "unset",
                "status_message": raw.status_message,
                "attributes": _with_dropped(cap_attributes(raw.attributes, limits), raw),
                "resource_attributes": resource,
                "scope_name": scope,
                "call_id": None,
                "conversation_id": None,
                "events": _events(raw, limits),
                "links": _links(raw, limits),
                "documents": found.documents,
            }
        )
    )


# -- protobuf -----------------------------------------------------------------------------------------


def _pb_value(value: AnyValue) -> JsonValue:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return value.bool_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "array_value":
        return [_pb_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return _pb_attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def _pb_attributes(pairs: Iterable[KeyValue]) -> dict[str, JsonValue]:
    return {pair.key: _pb_value(pair.value) for pair in pairs}


def _from_protobuf(body: bytes, limits: SpanLimits) -> DecodedBatch:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise PayloadError(f"the body is not a valid OTLP protobuf ExportTraceServiceRequest: {exc}") from exc
    batch = DecodedBatch()
    for r, resource_spans in enumerate(request.resource_spans):
        resource = _pb_attributes(resource_spans.resource.attributes)
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            scope = scope_spans.scope.name
            for i, span in enumerate(scope_spans.spans):
                raw = _Raw(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    name=span.name,
                    kind=span.kind,
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    status_code=span.status.code,
                    status_message=span.status.message,
                    attributes=_pb_attributes(span.attributes),
                    events=[(e.name, e.time_unix_nano, _pb_attributes(e.attributes)) for e in span.events],
                    links=[
                        (link.trace_id.hex(), link.span_id.hex(), _pb_attributes(link.attributes))
                        for link in span.links
                    ],
                )
                _add(batch, raw, (r, s, i), resource, scope, limits)
    return batch


# -- JSON ---------------------------------------------------------------------------------------------


class _BadSpan(ValueError):
    """A field of one JSON span that cannot be read; rejects that span only."""


_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = (0, 2**64 - 1)
_INT32 = (-(2**31), 2**31 - 1)


def _json_int(value: Any, what: str, bounds: tuple[int, int] = _INT32) -> int:
    """An integer field as protobuf types it (``bounds``: int32 enums, int64 values, fixed64 times)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise _BadSpan(f"{what} is not an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.removeprefix("-").isdigit():
        # ASCII only: "²" is a digit to isdigit() and not to int(); "--5" passed lstrip("-").
        try:
            number = int(value)
        except ValueError:  # more digits than int() reads (4300), so out of any range
            raise _BadSpan(f"{what} is out of range ({bounds[0]} to {bounds[1]})") from None
    else:
        raise _BadSpan(f"{what} is not an integer")
    if not bounds[0] <= number <= bounds[1]:
        raise _BadSpan(f"{what} is out of range ({bounds[0]} to {bounds[1]})")
    return number


def _json_id(value: Any, what: str) -> str:
    """OTLP/JSON ids are hex strings (not base64, unlike the generic protobuf JSON mapping)."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise _BadSpan(f"{what} is not a hex string")
    try:
        return bytes.fromhex(value).hex()
    except ValueError:
        raise _BadSpan(f"{what} is not a hex string") from None


def _json_value(value: Any, where: str) -> JsonValue:
    if not isinstance(value, Mapping) or not value:
        return None
    for key, item in value.items():
        if key == "stringValue":
            if not isinstance(item, str):
                raise _BadSpan(f"{where}: stringValue is not a string")
            return item
        if key == "boolValue":
            if not isinstance(item, bool):
                raise _BadSpan(f"{where}: boolValue is not a boolean")
            return item
        if key == "intValue":
            return _json_int(item, f"{where}: intValue", _INT64)
        if key == "doubleValue":
            if isinstance(item, bool) or not isinstance(item, int | float | str):
                raise _BadSpan(f"{where}: doubleValue is not a number")
            try:
                return float(item)
            except ValueError:
                raise _BadSpan(f"{where}: doubleValue is not a number") from None
        if key == "arrayValue":
            items = item.get("values", []) if isinstance(item, Mapping) else None
            if not isinstance(items, list):
                raise _BadSpan(f"{where}: arrayValue has no values list")
            return [_json_value(entry, where) for entry in items]
        if key == "kvlistValue":
            items = item.get("values", []) if isinstance(item, Mapping) else None
            if not isinstance(items, list):
                raise _BadSpan(f"{where}: kvlistValue has no values list")
            return _json_attributes(items, where)
        if key == "bytesValue":
            if not isinstance(item, str):
                raise _BadSpan(f"{where}: bytesValue is not base64")
            try:
                base64.b64decode(item, validate=True)
            except ValueError:  # binascii.Error, or a character outside ASCII
                raise _BadSpan(f"{where}: bytesValue is not base64") from None
            return item
    raise _BadSpan(f"{where}: unknown value type {', '.join(map(str, value))}")


def _json_attributes(pairs: Any, where: str) -> dict[str, JsonValue]:
    if pairs is None:
        return {}
    if not isinstance(pairs, list):
        raise _BadSpan(f"{where}: attributes is not a list")
    out: dict[str, JsonValue] = {}
    for pair in pairs:
        if not isinstance(pair, Mapping) or not isinstance(pair.get("key"), str):
            raise _BadSpan(f"{where}: an attribute has no key")
        out[pair["key"]] = _json_value(pair.get("value"), f"{where}.{pair['key']}")
    return out


def _json_kind(value: Any) -> int:
    if isinstance(value, str) and value.startswith("SPAN_KIND_"):
        names = [kind.value.upper() for kind in _KINDS]
        name = value.removeprefix("SPAN_KIND_")
        return names.index(name) if name in names else 0
    return _json_int(value, "kind")


def _json_status(value: Any) -> tuple[int, str]:
    if not isinstance(value, Mapping):
        return 0, ""
    code = value.get("code", 0)
    if isinstance(code, str) and code.startswith("STATUS_CODE_"):
        code = {"STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}.get(code, 0)
    message = value.get("message", "")
    return _json_int(code, "status.code"), message if isinstance(message, str) else ""


def _json_raw(span: Mapping[str, Any]) -> _Raw:
    code, message = _json_status(span.get("status"))
    name = span.get("name", "")
    return _Raw(
        trace_id=_json_id(span.get("traceId"), "traceId"),
        span_id=_json_id(span.get("spanId"), "spanId"),
        parent_span_id=_json_id(span.get("parentSpanId"), "parentSpanId"),
        name=name if isinstance(name, str) else "",
        kind=_json_kind(span.get("kind", 0)),
        start_ns=_json_int(span.get("startTimeUnixNano"), "startTimeUnixNano", _UINT64),
        end_ns=_json_int(span.get("endTimeUnixNano"), "endTimeUnixNano", _UINT64),
        status_code=code,
        status_message=message,
        attributes=_json_attributes(span.get("attributes"), "attributes"),
        events=[_json_event(event, i) for i, event in enumerate(_listed(span.get("events"), "events"))],
        links=[_json_link(link, i) for i, link in enumerate(_listed(span.get("links"), "links"))],
    )


def _listed(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _BadSpan(f"{what} is not a list")
    return value


def _json_event(event: Any, index: int) -> tuple[str, int, dict[str, JsonValue]]:
    where = f"events[{index}]"
    if not isinstance(event, Mapping):
        raise _BadSpan(f"{where} is not an object")
    name = event.get("name", "")
    at = _json_int(event.get("timeUnixNano"), f"{where}.timeUnixNano", _UINT64)
    return (name if isinstance(name, str) else "", at, _json_attributes(event.get("attributes"), where))


def _json_link(link: Any, index: int) -> tuple[str, str, dict[str, JsonValue]]:
    where = f"links[{index}]"
    if not isinstance(link, Mapping):
        raise _BadSpan(f"{where} is not an object")
    trace = _json_id(link.get("traceId"), f"{where}.traceId")
    span = _json_id(link.get("spanId"), f"{where}.spanId")
    return (trace, span, _json_attributes(link.get("attributes"), where))


def _json_list(node: Any, key: str, where: str) -> list[Any]:
    value = node.get(key, []) if isinstance(node, Mapping) else None
    if not isinstance(value, list):
        raise PayloadError(f"{where}.{key} is not a list")
    return value


def _json_spans(document: Any) -> Iterator[tuple[_At, Any, Any, str]]:
    """(where, span, resource attributes, scope name) for every span of an OTLP/JSON document."""
    for r, resource_spans in enumerate(_json_list(document, "resourceSpans", "body")):
        where_r = f"resourceSpans[{r}]"
        resource = resource_spans.get("resource") if isinstance(resource_spans, Mapping) else None
        attrs = resource.get("attributes") if isinstance(resource, Mapping) else None
        for s, scope_spans in enumerate(_json_list(resource_spans, "scopeSpans", where_r)):
            scope = scope_spans.get("scope") if isinstance(scope_spans, Mapping) else None
            scope_name = scope.get("name", "") if isinstance(scope, Mapping) else ""
            for i, span in enumerate(_json_list(scope_spans, "spans", f"{where_r}.scopeSpans[{s}]")):
                yield (r, s, i), span, attrs, str(scope_name)


def _from_json(body: bytes, limits: SpanLimits) -> DecodedBatch:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(document, Mapping):
        raise PayloadError("the body is not an OTLP ExportTraceServiceRequest object")
    batch = DecodedBatch()
    resources: dict[int, dict[str, JsonValue]] = {}
    for at, span, resource_attrs, scope in _json_spans(document):
        try:
            resource = resources.get(id(resource_attrs))
            if resource is None:
                resource = _json_attributes(resource_attrs, "resource.attributes")
                resources[id(resource_attrs)] = resource
            if not isinstance(span, Mapping):
                raise _BadSpan("span is not an object")
            raw = _json_raw(span)
        except _BadSpan as exc:
            batch.reject(_where(at), str(exc))
            continue
        _add(batch, raw, at, resource, scope, limits)
    return batch
