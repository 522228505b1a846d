"""OpenTelemetry (OTLP) trace ingest: decode exports into spans, group them by conversation, and map
one conversation's spans into a canonical call with a versioned mapper per framework. Pure: no I/O."""

from __future__ import annotations

from .common import PriceTable, SpanTree
from .conversation import TRACE_PREFIX, Mapper, mapper_for, resolve_keys, root_keys, trace_key
from .decode import JSON_TYPE, PROTOBUF_TYPE, DecodedBatch, decode_export, decompress, media_type
from .limits import IDENTITY_KEYS, TRUNCATED_KEY, SpanLimits, cap_attributes
from .trusted import replaced_span, trusted_span

__all__ = [
    "IDENTITY_KEYS",
    "JSON_TYPE",
    "PROTOBUF_TYPE",
    "TRACE_PREFIX",
    "TRUNCATED_KEY",
    "DecodedBatch",
    "Mapper",
    "PriceTable",
    "SpanLimits",
    "SpanTree",
    "cap_attributes",
    "decode_export",
    "decompress",
    "mapper_for",
    "media_type",
    "replaced_span",
    "resolve_keys",
    "root_keys",
    "trace_key",
    "trusted_span",
]
