"""OpenTelemetry (OTLP) trace ingest: decode exports into spans, group them by conversation, and map
one conversation's spans into a canonical call with a versioned mapper per framework; decode log exports
into records and fold GenAI ones into their spans before mapping. Pure: no I/O."""

from __future__ import annotations

from .common import PriceTable, SpanTree
from .conversation import TRACE_PREFIX, Mapper, mapper_for, resolve_keys, root_keys, trace_key
from .decode import JSON_TYPE, PROTOBUF_TYPE, DecodedBatch, decode_export, decompress, media_type
from .limits import IDENTITY_KEYS, TRUNCATED_KEY, SpanLimits, cap_attributes
from .log_fold import FOLDED_EVENTS, fold_logs
from .logs import DecodedLogs, LogRecord, decode_logs
from .trusted import replaced_span, trusted_span

__all__ = [
    "FOLDED_EVENTS",
    "IDENTITY_KEYS",
    "JSON_TYPE",
    "PROTOBUF_TYPE",
    "TRACE_PREFIX",
    "TRUNCATED_KEY",
    "DecodedBatch",
    "DecodedLogs",
    "LogRecord",
    "Mapper",
    "PriceTable",
    "SpanLimits",
    "SpanTree",
    "cap_attributes",
    "decode_export",
    "decode_logs",
    "decompress",
    "fold_logs",
    "mapper_for",
    "media_type",
    "replaced_span",
    "resolve_keys",
    "root_keys",
    "trace_key",
    "trusted_span",
]
