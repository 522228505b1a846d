"""OTLP decoding, attribute caps and conversation keys, on bytes and spans built here."""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from pydantic import ValidationError

from convoscope.errors import PayloadError, PayloadTooLarge
from convoscope.ingest.otlp import (
    TRUNCATED_KEY,
    SpanLimits,
    cap_attributes,
    decode_export,
    decompress,
    media_type,
    replaced_span,
    resolve_keys,
    root_keys,
    trusted_span,
)
from convoscope.model import Document, Span, SpanKind

T = datetime(2026, 9, 1, 12, tzinfo=UTC)
TRACE = "0af7651916cd43dd8448eb211c80319c"


def _span(
    span_id: str, name: str, parent: str | None = None, trace: str = TRACE, **attributes: object
) -> Span:
    return Span.model_validate(
        {
            "trace_id": trace,
            "span_id": span_id,
            "parent_span_id": parent,
            "name": name,
            "start": T + timedelta(seconds=int(span_id[-2:], 16)),
            "attributes": attributes,
        }
    )


def test_media_type_reads_the_header_parameters_away() -> None:
    assert media_type("application/x-protobuf") == "application/x-protobuf"
    assert media_type("Application/JSON; charset=utf-8") == "application/json"
    assert media_type("text/plain") is None and media_type(None) is None


def test_decompress_gzip_deflate_and_refusals() -> None:
    body = b"spans" * 100
    assert decompress(gzip.compress(body), "gzip", 10_000) == body
    assert decompress(zlib.compress(body), "deflate", 10_000) == body
    assert decompress(body, None, 10) == body  # identity is not bounded here (the middleware does it)
    with pytest.raises(PayloadTooLarge):
        decompress(gzip.compress(body), "gzip", 100)
    with pytest.raises(PayloadError, match="truncated"):
        decompress(gzip.compress(body)[:-12], "gzip", 10_000)
    with pytest.raises(PayloadError, match="not supported"):
        decompress(body, "br", 10_000)


def _document(*spans: dict[str, object], resource: list[object] | None = None) -> bytes:
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": resource or []},
                    "scopeSpans": [{"scope": {"name": "lib"}, "spans": list(spans)}],
                }
            ]
        }
    )


def test_json_values_kinds_and_status_in_every_spelling() -> None:
    span = {
        "traceId": TRACE.upper(),
        "spanId": "00f067aa0ba902b7",
        "parentSpanId": "0000000000000000",
        "name": "llm",
        "kind": "SPAN_KIND_CLIENT",
        "startTimeUnixNano": 1_790_000_000_123_456_789,
        "endTimeUnixNano": "1790000001123456789",
        "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
        "attributes": [
            {"key": "s", "value": {"stringValue": "x"}},
            {"key": "i", "value": {"intValue": "42"}},
            {"key": "d", "value": {"doubleValue": 0.5}},
            {"key": "b", "value": {"boolValue": True}},
            {"key": "a", "value": {"arrayValue": {"values": [{"intValue": 1}, {"stringValue": "two"}]}}},
            {"key": "m", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": False}}]}}},
            {"key": "raw", "value": {"bytesValue": "AAE="}},
            {"key": "empty", "value": {}},
        ],
    }
    batch = decode_export(
        _document(span, resource=[{"key": "service.name", "value": {"stringValue": "svc"}}]),
        "application/json",
        SpanLimits(),
    )
    assert batch.rejected == 0
    (decoded,) = batch.spans
    assert decoded.trace_id == TRACE and decoded.parent_span_id is None
    assert (
        decoded.kind == SpanKind.CLIENT
        and decoded.status_code == "error"
        and decoded.status_message == "boom"
    )
    assert decoded.start == datetime.fromtimestamp(1_790_000_000, UTC) + timedelta(microseconds=123456)
    assert (decoded.end - decoded.start).total_seconds() == 1.0  # type: ignore[operator]
    assert decoded.attributes == {
        "s": "x",
        "i": 42,
        "d": 0.5,
        "b": True,
        "a": [1, "two"],
        "m": {"k": False},
        "raw": "AAE=",
        "empty": None,
    }
    assert decoded.resource_attributes == {"service.name": "svc"} and decoded.scope_name == "lib"


def test_json_spans_with_unreadable_fields_are_rejected_alone() -> None:
    good = {"traceId": TRACE, "spanId": "00f067aa0ba902b7", "name": "ok", "startTimeUnixNano": "5"}
    batch = decode_export(
        _document(
            good,
            {**good, "spanId": "00f067aa0ba902b8", "startTimeUnixNano": "soon"},
            {**good, "spanId": "00f067aa0ba902b9", "attributes": [{"value": {"stringValue": "no key"}}]},
            {**good, "spanId": "00f067aa0ba902ba", "attributes": [{"key": "x", "value": {"mapValue": 1}}]},
            {**good, "spanId": "00f067aa0ba902bb", "name": ""},
            {**good, "spanId": "00f067aa0ba902bc", "startTimeUnixNano": "0"},
            "not an object",
        ),
        "application/json",
        SpanLimits(),
    )
    assert [s.span_id for s in batch.spans] == ["00f067aa0ba902b7"]
    assert batch.rejected == 6
    assert len(batch.errors) == 5 and "(6 spans rejected in all)" in batch.message
    assert "startTimeUnixNano is not an integer" in batch.message


def test_protobuf_that_does_not_parse_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="protobuf"):
        decode_export(b"\xff\xff\xff", "application/x-protobuf", SpanLimits())
    with pytest.raises(PayloadError, match="not valid JSON"):
        decode_export(b"{", "application/json", SpanLimits())


def test_caps_cut_long_values_and_keep_identity_keys() -> None:
    limits = SpanLimits(
        max_attribute_chars=100, max_span_chars=1200, max_attributes=20, shrunk_attribute_chars=50
    )
    attributes: dict[str, object] = {f"k{i:02d}": i for i in range(30)}
    attributes.update({"long": "y" * 500, "conversation.id": "c" * 300, "blob": {"list": ["z" * 40] * 30}})
    capped = cap_attributes(attributes, limits)  # type: ignore[arg-type]
    assert capped["conversation.id"] == "c" * 300  # identity: never cut, never dropped
    assert len(capped) == 21  # 20 kept + the marker
    truncated = capped[TRUNCATED_KEY]
    assert isinstance(truncated, list) and len(truncated) >= 13


def test_too_many_attributes_drop_the_oldest_history_first() -> None:
    """An LLM span resending a long history: what goes is its oldest messages, never the answer, the
    tokens or the model (nor the conversation key), in both flattened conventions."""
    limits = SpanLimits(max_attributes=24)
    for prefix in ("llm.input_messages", "gen_ai.prompt"):
        attributes: dict[str, object] = {"session.id": "s-1"}
        for n in range(12):
            attributes[f"{prefix}.{n}.message.role"] = "user" if n % 2 == 0 else "assistant"
            attributes[f"{prefix}.{n}.message.content"] = f"line {n}"
        attributes.update(
            {
                "llm.output_messages.0.message.content": "the answer",
                "llm.token_count.prompt": 120,
                "llm.model_name": "gpt-4o-mini",
            }
        )
        capped = cap_attributes(attributes, limits)  # type: ignore[arg-type]
        assert capped["llm.output_messages.0.message.content"] == "the answer"
        assert capped["llm.token_count.prompt"] == 120 and capped["session.id"] == "s-1"
        kept = sorted({int(k.split(".")[2]) for k in capped if k.startswith(prefix)})
        # 24 kept: the key, three others, and the newest ten messages whole (two attributes each).
        assert kept == list(range(2, 12)), prefix
        assert len(capped[TRUNCATED_KEY]) == 4  # type: ignore[arg-type]


def test_message_json_is_bounded_by_the_span_total_and_shrunk_last() -> None:
    """A request's messages JSON longer than one attribute's bound stays whole (readable); when the span
    is over its total, the other large values are shrunk before it."""
    limits = SpanLimits(max_attribute_chars=100, max_span_chars=3000, shrunk_attribute_chars=50)
    messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "x" * 1500}]}])
    capped = cap_attributes({"gen_ai.input.messages": messages, "other": "o" * 90}, limits)
    assert capped == {"gen_ai.input.messages": messages, "other": "o" * 90}
    # Over the total: the larger input.value is shrunk, the messages are not.
    roomy = SpanLimits(max_attribute_chars=2000, max_span_chars=3000, shrunk_attribute_chars=50)
    capped = cap_attributes({"gen_ai.input.messages": messages, "input.value": "v" * 1600}, roomy)
    assert capped["gen_ai.input.messages"] == messages
    assert isinstance(capped["input.value"], str) and capped["input.value"].startswith("v" * 50)
    assert len(capped["input.value"]) < 100 and capped[TRUNCATED_KEY] == ["input.value"]
    too_long = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "x" * 4000}]}])
    capped = cap_attributes({"gen_ai.output.messages": too_long}, limits)
    assert capped[TRUNCATED_KEY] == ["gen_ai.output.messages"]


def test_span_total_cap_cuts_the_largest_values_first() -> None:
    limits = SpanLimits(max_attribute_chars=1000, max_span_chars=1500, shrunk_attribute_chars=100)
    capped = cap_attributes({"a": "a" * 900, "b": "b" * 800, "c": "c" * 50}, limits)
    assert (
        isinstance(capped["a"], str)
        and capped["a"].startswith("a" * 100)
        and "truncated 800 of 900" in capped["a"]
    )
    assert capped["b"] == "b" * 800 and capped["c"] == "c" * 50
    assert capped[TRUNCATED_KEY] == ["a"]


def test_keys_come_from_the_conversation_attribute_not_parentage() -> None:
    other = "1" * 32
    spans = [
        _span("a000000000000001", "conversation", **{"conversation.id": "A"}),
        # B's turn nested under A's conversation span, as Pipecat once did with concurrent calls.
        _span("a000000000000002", "turn", "a000000000000001", **{"conversation.id": "B"}),
        _span("a000000000000003", "stt", "a000000000000002"),
        _span("a000000000000004", "llm", "a000000000000002", **{"gen_ai.conversation.id": "G"}),
        _span("a000000000000005", "tts", "a0000000000000ff"),  # parent not here yet
        _span("b000000000000006", "chat", None, trace=other, **{"gen_ai.conversation.id": "G"}),
        _span("b000000000000007", "tool", "b000000000000006", trace=other),
    ]
    keys = resolve_keys(spans)
    by_span = {span_id: key for (_, span_id), key in keys.items()}
    assert by_span["a000000000000001"] == "pipecat:A"
    assert by_span["a000000000000002"] == by_span["a000000000000003"] == "pipecat:B"
    assert by_span["a000000000000004"] == "pipecat:B"  # the framework's key wins inside its turn
    assert "a000000000000005" not in by_span
    assert by_span["b000000000000006"] == by_span["b000000000000007"] == "genai:G"
    assert root_keys(spans, keys) == {"pipecat:A", "genai:G"}


def test_a_stored_key_counts_as_the_span_s_own() -> None:
    parent = _span("c000000000000001", "turn").model_copy(update={"conversation_id": "pipecat:X"})
    child = _span("c000000000000002", "stt", "c000000000000001")
    keys = resolve_keys([parent, child])
    assert keys[(TRACE, "c000000000000002")] == "pipecat:X"


def test_trusted_spans_equal_validated_ones_and_copies_leave_the_original() -> None:
    """Decoding builds spans without pydantic's constructors; they must be the spans validation makes."""
    fields = {
        "trace_id": TRACE,
        "span_id": "00f067aa0ba902b7",
        "parent_span_id": None,
        "name": "turn",
        "kind": SpanKind.SERVER,
        "start": T,
        "end": T + timedelta(seconds=2),
        "status_code": "error",
        "status_message": "boom",
        "attributes": {"conversation.id": "c-1", "n": [1, 2.5, {"x": True}]},
        "resource_attributes": {"service.name": "bot"},
        "scope_name": "pipecat",
        "call_id": None,
        "conversation_id": None,
        "events": [{"name": "exception", "time_unix_nano": 1, "attributes": {"exception.message": "boom"}}],
        "links": [{"trace_id": TRACE, "span_id": "00f067aa0ba902b8", "attributes": {}}],
        "documents": [
            Document(id="d-1", content="refunds take five days", score=0.9, span_id="00f067aa0ba902b7")
        ],
    }
    validated = Span.model_validate(fields)
    trusted = trusted_span(dict(fields))
    assert trusted == validated
    assert trusted.model_dump() == validated.model_dump()
    assert trusted.model_fields_set == validated.model_fields_set
    assert Span.model_validate_json(trusted.model_dump_json()) == validated
    with pytest.raises(ValidationError):
        trusted.name = "changed"  # still frozen
    keyed = replaced_span(trusted, conversation_id="pipecat:c-1")
    assert keyed.conversation_id == "pipecat:c-1" and trusted.conversation_id is None
    assert keyed == validated.model_copy(update={"conversation_id": "pipecat:c-1"})


def test_span_events_and_links_are_kept_in_both_encodings() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

    from convoscope.ingest.otlp import JSON_TYPE, PROTOBUF_TYPE, SpanLimits, decode_export
    from convoscope.ingest.otlp.decode import MAX_EVENTS
    from convoscope.ingest.otlp.llm_messages import first_token_s

    start = 1_788_000_000_000_000_000
    events = [
        {"timeUnixNano": str(start + 250_000_000), "name": "First Token Stream Event", "attributes": []}
    ]
    events += [
        {"timeUnixNano": str(start + i), "name": f"chunk {i}", "attributes": []}
        for i in range(MAX_EVENTS + 5)
    ]
    link = {
        "traceId": "b" * 32,
        "spanId": "c" * 16,
        "attributes": [{"key": "why", "value": {"stringValue": "retry"}}],
    }
    span = {
        "traceId": "a" * 32,
        "spanId": "1" * 16,
        "name": "llm",
        "kind": 1,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 10**9),
        "events": events,
        "links": [link],
    }
    body = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [span]}]}]}
    (decoded,) = decode_export(orjson.dumps(body), JSON_TYPE, SpanLimits()).spans
    assert len(decoded.events) == MAX_EVENTS and decoded.attributes["events_dropped"] == 6
    assert decoded.events[0] == {
        "name": "First Token Stream Event",
        "time_unix_nano": start + 250_000_000,
        "attributes": {},
    }
    assert decoded.links == [{"trace_id": "b" * 32, "span_id": "c" * 16, "attributes": {"why": "retry"}}]
    assert first_token_s(decoded) == pytest.approx(0.25)

    request = ExportTraceServiceRequest()
    pb = request.resource_spans.add().scope_spans.add().spans.add()
    pb.trace_id, pb.span_id, pb.name, pb.kind = (
        bytes.fromhex("a" * 32),
        bytes.fromhex("1" * 16),
        "llm",
        PbSpan.SPAN_KIND_CLIENT,
    )
    pb.start_time_unix_nano, pb.end_time_unix_nano = start, start + 10**9
    event = pb.events.add()
    event.name, event.time_unix_nano = "exception", start + 5
    attribute = event.attributes.add()
    attribute.key, attribute.value.string_value = "exception.message", "rate limited"
    pb_link = pb.links.add()
    pb_link.trace_id, pb_link.span_id = bytes.fromhex("b" * 32), bytes.fromhex("c" * 16)
    (from_pb,) = decode_export(request.SerializeToString(), PROTOBUF_TYPE, SpanLimits()).spans
    assert from_pb.events == [
        {
            "name": "exception",
            "time_unix_nano": start + 5,
            "attributes": {"exception.message": "rate limited"},
        }
    ]
    assert from_pb.links == [{"trace_id": "b" * 32, "span_id": "c" * 16, "attributes": {}}]
    bad = {"resourceSpans": [{"scopeSpans": [{"spans": [{**span, "events": "nope"}]}]}]}
    rejected = decode_export(orjson.dumps(bad), JSON_TYPE, SpanLimits())
    assert rejected.spans == [] and rejected.rejected == 1 and "events is not a list" in rejected.message
