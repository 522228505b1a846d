"""The OTLP/HTTP log receiver (``/v1/logs``), and GenAI log records joined to their spans in the call.

Log records are made with the OpenTelemetry SDK (``LoggerProvider``) and sent with the real
``OTLPLogExporter`` or encoded with the SDK's own encoder, as an app would; spans come from the same SDK
(``Recorder``). The server and the store are real; the outbox worker and the job runner are driven by
hand (``LiveServer.process``) so a test knows when records and spans are stored and calls assembled.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry._logs import LogRecord as ApiLogRecord
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult
from test_otlp_kit import T0, LiveServer, Recorder, live

from convoscope.ingest.otlp import SpanLimits, decode_logs
from convoscope.ingest.otlp.logs import DecodedLogs
from convoscope.store.clickhouse import ClickHouseStore

__all__ = ["live"]

PROTOBUF = "application/x-protobuf"
MODEL = "gpt-4o-mini"
SYSTEM = "You are the clinic's assistant. Book cleanings."
USER = "Hi, can I book a cleaning on Tuesday?"
AGENT = "Tuesday at nine is free. Shall I book it?"
ARGUMENTS = {"day": "tuesday"}
RESULT = {"free": ["9:00"]}
CALL_ID = "call_0001"
RECEIVED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ns(offset_s: float) -> int:
    return int(round((T0 + offset_s) * 1e9))


class LogRecorder:
    """An SDK logger provider that keeps emitted records in memory, in the order they were emitted."""

    def __init__(self, service: str = "clinic-chat") -> None:
        self.memory = InMemoryLogRecordExporter()
        self.provider = LoggerProvider(resource=Resource.create({"service.name": service}))
        self.provider.add_log_record_processor(SimpleLogRecordProcessor(self.memory))

    def emit(
        self,
        span: trace.Span | None,
        event_name: str | None,
        *,
        at_s: float | None = None,
        body: Any = None,
        attributes: dict[str, Any] | None = None,
        scope: str = "opentelemetry.util.genai.handler",
        **fields: Any,
    ) -> None:
        """One record naming ``span`` (none: no trace context), ``at_s`` seconds after ``T0`` (none: only
        the SDK's observed time, as GenAI instrumentation leaves it)."""
        context = trace.set_span_in_context(span) if span is not None else None
        self.provider.get_logger(scope).emit(
            ApiLogRecord(
                timestamp=_ns(at_s) if at_s is not None else None,
                context=context,
                event_name=event_name,
                body=body,
                attributes=attributes,
                **fields,
            )
        )

    def records(self) -> list[ReadableLogRecord]:
        return list(self.memory.get_finished_logs())


def export_logs(
    live: LiveServer, records: Sequence[ReadableLogRecord], *, compression: bool = False
) -> LogRecordExportResult:
    """Send records with the real OTLP/HTTP protobuf log exporter."""
    exporter = OTLPLogExporter(
        endpoint=f"{live.url}/v1/logs",
        headers=live.auth,
        compression=Compression.Gzip if compression else Compression.NoCompression,
        timeout=10,
    )
    try:
        return exporter.export(list(records))
    finally:
        exporter.shutdown()


def post_logs(live: LiveServer, body: bytes, content_type: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{live.url}/v1/logs",
        content=body,
        headers={"Content-Type": content_type, **live.auth, **headers},
        timeout=10,
    )


def logs_json(records: Sequence[ReadableLogRecord]) -> bytes:
    """The OTLP/JSON encoding of records: protobuf JSON mapping, but ids as hex (the OTLP rule)."""
    document = MessageToDict(encode_logs(list(records)))
    for resource_logs in document.get("resourceLogs", []):
        for scope_logs in resource_logs.get("scopeLogs", []):
            for record in scope_logs.get("logRecords", []):
                for key in ("traceId", "spanId"):
                    if key in record:
                        record[key] = base64.b64decode(record[key]).hex()
    return orjson.dumps(document)


def _status_message(body: bytes) -> str:
    """The message (field 2) of a google.rpc.Status protobuf with a one-byte code and length."""
    assert body[0] == 0x08 and body[2] == 0x12
    length, shift, index = 0, 0, 3
    while True:
        byte = body[index]
        length |= (byte & 0x7F) << shift
        index += 1
        if not byte & 0x80:
            break
        shift += 7
    return body[index : index + length].decode()


def _hex(span: trace.Span) -> tuple[str, str]:
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def _stored(store: ClickHouseStore) -> int:
    """Log records in the store, each counted once (as reads see them)."""
    ((count,),) = store.query(f"SELECT count() FROM `{store.database}`.`span_logs` FINAL")
    return int(count)


# -- a GenAI chat: spans without messages, and the records that carry them -----------------------------


def _parts_text(text: str) -> dict[str, Any]:
    return {"type": "text", "content": text}


SYSTEM_MESSAGE = {"role": "system", "parts": [_parts_text(SYSTEM)]}
USER_MESSAGE = {"role": "user", "parts": [_parts_text(USER)]}
ASKED = {
    "role": "assistant",
    "parts": [{"type": "tool_call", "id": CALL_ID, "name": "check_slots", "arguments": ARGUMENTS}],
}
ANSWERED = {
    "role": "tool",
    "parts": [{"type": "tool_call_response", "id": CALL_ID, "response": json.dumps(RESULT)}],
}


def chat_spans(recorder: Recorder, conversation: str) -> tuple[trace.Span, trace.Span, trace.Span]:
    """A chat session around two requests (a tool call, then the answer that uses its result), with the
    attributes ``opentelemetry-instrumentation-openai-v2`` leaves on its spans in ``event_only`` mode."""
    root = recorder.emit("clinic-chat", "chat session", 0.0, 4.0, {"gen_ai.conversation.id": conversation})
    spans = []
    for n, (usage, finish) in enumerate((((131, 17), "tool_calls"), ((173, 19), "stop"))):
        spans.append(
            recorder.emit(
                "opentelemetry.util.genai.handler",
                f"chat {MODEL}",
                1.0 + n,
                1.5 + n,
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": MODEL,
                    "gen_ai.response.model": MODEL,
                    "gen_ai.response.finish_reasons": (finish,),
                    "gen_ai.usage.input_tokens": usage[0],
                    "gen_ai.usage.output_tokens": usage[1],
                },
                parent=root,
            )
        )
    return root, spans[0], spans[1]


def details(logs: LogRecorder, first: trace.Span, second: trace.Span) -> None:
    """One ``gen_ai.client.inference.operation.details`` record per request, as the library emits them:
    the messages as structured attributes, no body, no time of its own."""
    detail = "gen_ai.client.inference.operation.details"
    logs.emit(
        first,
        detail,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.input.messages": [SYSTEM_MESSAGE, USER_MESSAGE],
            "gen_ai.output.messages": [{**ASKED, "finish_reason": "tool_calls"}],
        },
    )
    logs.emit(
        second,
        detail,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.input.messages": [SYSTEM_MESSAGE, USER_MESSAGE, ASKED, ANSWERED],
            "gen_ai.output.messages": [
                {"role": "assistant", "parts": [_parts_text(AGENT)], "finish_reason": "stop"}
            ],
        },
    )


def assert_chat(live: LiveServer, call_id: str | None = None) -> dict[str, Any]:
    """The one call is the chat turn by turn: the user's line, the agent's answer after the tool call
    (its arguments and result), the system prompt kept aside, the tokens of both requests."""
    (found,) = live.call_ids()
    if call_id is not None:
        assert found == call_id  # re-assembled in place
    call: dict[str, Any] = live.call(found)["call"]
    assert [(t["role"], t["text"]) for t in call["turns"]] == [("user", USER), ("agent", AGENT)]
    (tool,) = call["tool_calls"]
    assert (tool["id"], tool["name"], tool["arguments"], tool["result"]) == (
        CALL_ID,
        "check_slots",
        ARGUMENTS,
        RESULT,
    )
    assert tool["turn_index"] == 1
    assert call["metadata"]["system_prompts"] == [SYSTEM]
    assert call["metadata"]["malformed_messages"] == []
    usage = call["usage"]
    assert (usage["llm_prompt_tokens"], usage["llm_completion_tokens"]) == (131 + 173, 17 + 19)
    return call


# -- decoding ------------------------------------------------------------------------------------------


def _sample() -> tuple[LogRecorder, trace.Span]:
    recorder = Recorder()
    _, first, _ = chat_spans(recorder, "decode")
    logs = LogRecorder()
    logs.emit(
        first,
        "gen_ai.client.inference.operation.details",
        at_s=1.25,
        attributes={"gen_ai.input.messages": [USER_MESSAGE], "gen_ai.usage.input_tokens": 131, "ratio": 0.5},
    )
    logs.emit(
        first,
        None,
        at_s=1.5,
        body={"content": USER, "tool_calls": [{"id": CALL_ID, "function": {"name": "check_slots"}}]},
        attributes={"event.name": "gen_ai.user.message"},
        severity_text="WARNING",
        scope="legacy",
    )
    logs.emit(None, None, body="a plain line, no trace context", severity_number=SeverityNumber.INFO)
    return logs, first


def _decoded(body: bytes, kind: str) -> DecodedLogs:
    return decode_logs(body, kind, SpanLimits(), received=RECEIVED)


def test_protobuf_and_json_exports_decode_to_the_same_records() -> None:
    logs, first = _sample()
    records = logs.records()
    from_protobuf = _decoded(encode_logs(records).SerializeToString(), PROTOBUF)
    from_json = _decoded(logs_json(records), "application/json")
    assert from_protobuf.rejected == 0 and from_protobuf.message == ""
    assert from_json.records == from_protobuf.records
    # The encoder groups records by scope: the two of the GenAI handler's scope, then the legacy one.
    details, plain, legacy = from_protobuf.records
    trace_id, span_id = _hex(first)
    assert (details.trace_id, details.span_id) == (trace_id, span_id)
    assert details.event_name == "gen_ai.client.inference.operation.details"
    assert details.time == EPOCH + timedelta(microseconds=_ns(1.25) // 1000)
    assert details.attributes == {
        "gen_ai.input.messages": [USER_MESSAGE],
        "gen_ai.usage.input_tokens": 131,
        "ratio": 0.5,
    }
    assert details.body is None and details.scope_name == "opentelemetry.util.genai.handler"
    assert details.resource_attributes["service.name"] == "clinic-chat"
    assert legacy.event_name == "gen_ai.user.message"  # from the ``event.name`` attribute
    assert legacy.body == {
        "content": USER,
        "tool_calls": [{"id": CALL_ID, "function": {"name": "check_slots"}}],
    }
    assert (legacy.severity, legacy.scope_name) == ("WARNING", "legacy")
    # No trace context: kept, with empty ids; no time of its own: the SDK's observed time.
    assert (plain.trace_id, plain.span_id, plain.event_name) == ("", "", "")
    assert (plain.body, plain.severity) == ("a plain line, no trace context", "INFO")
    assert abs((plain.time - datetime.now(UTC)).total_seconds()) < 60
    assert len({record.record_id for record in from_protobuf.records}) == 3
    assert sorted([legacy.record_id, details.record_id]) == [details.record_id, legacy.record_id]


def test_bodies_and_attributes_are_capped_like_span_attributes() -> None:
    logs = LogRecorder()
    logs.emit(None, "big", body="x" * 40_000, attributes={"long": "y" * 40_000, "conversation.id": "c"})
    (record,) = _decoded(encode_logs(logs.records()).SerializeToString(), PROTOBUF).records
    limits = SpanLimits()
    assert isinstance(record.body, str) and record.body.startswith("x" * 100)
    assert "truncated" in record.body and len(record.body) < limits.max_attribute_chars + 100
    assert "truncated" in str(record.attributes["long"])
    assert record.attributes["convoscope.truncated"] == ["long", "body"]


# -- the receiver's answers ----------------------------------------------------------------------------


def test_malformed_protobuf_is_400_with_a_status_body(live: LiveServer) -> None:
    response = post_logs(live, b"\x0a\xff\xff\xff\xff\x0f garbage", PROTOBUF)
    assert response.status_code == 400
    assert response.headers["content-type"] == PROTOBUF
    assert "not a valid OTLP protobuf ExportLogsServiceRequest" in _status_message(response.content)
    assert live.services.meta.pending_count() == 0


def test_malformed_json_is_400_with_a_status_body(live: LiveServer) -> None:
    response = post_logs(live, b'{"resourceLogs": [', "application/json")
    assert response.status_code == 400
    assert response.json()["code"] == 3 and "not valid JSON" in response.json()["message"]
    response = post_logs(live, b'{"resourceLogs": [{"scopeLogs": {"no": "list"}}]}', "application/json")
    assert response.status_code == 400
    assert response.json()["message"] == "resourceLogs[0].scopeLogs is not a list"
    assert live.services.meta.pending_count() == 0


def test_wrong_content_type_is_415_and_a_missing_key_401(live: LiveServer) -> None:
    response = post_logs(live, b"<xml/>", "text/xml")
    assert response.status_code == 415
    assert "application/x-protobuf" in response.json()["message"]
    logs, _ = _sample()
    body = encode_logs(logs.records()).SerializeToString()
    for headers in (
        {"Content-Type": PROTOBUF},
        {"Content-Type": PROTOBUF, "Authorization": "Bearer cvs_nope"},
    ):
        response = httpx.post(f"{live.url}/v1/logs", content=body, headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "API key" in _status_message(response.content)
    assert live.services.meta.pending_count() == 0


def _json_record(trace_id: str, span_id: str, **extra: object) -> dict[str, object]:
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "timeUnixNano": str(_ns(1.0)),
        "eventName": "app.line",
        "body": {"stringValue": "hello"},
        **extra,
    }


def test_bad_records_are_rejected_one_by_one_and_the_rest_kept(
    live: LiveServer, clickhouse_store: ClickHouseStore
) -> None:
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    records = [
        _json_record(trace_id, span_id),
        _json_record("5b8efff7", span_id),  # a trace id of 4 bytes
        _json_record(trace_id, span_id, timeUnixNano="18446744073709551615"),  # the year 2554
        _json_record("", "", body={"stringValue": "no trace context"}),
        _json_record("zz", span_id),  # not hex
        _json_record("", span_id),  # a span of no trace
    ]
    document = {"resourceLogs": [{"scopeLogs": [{"scope": {"name": "app"}, "logRecords": records}]}]}
    response = post_logs(live, orjson.dumps(document), "application/json")
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "4"
    message = partial["errorMessage"]
    assert "resourceLogs[0].scopeLogs[0].logRecords[1]: invalid trace id" in message
    assert "logRecords[2]: time outside the store's range" in message
    assert "logRecords[4]: traceId is not a hex string" in message
    assert "logRecords[5]: span id without a trace id" in message
    live.process()
    assert _stored(clickhouse_store) == 2
    (kept,) = clickhouse_store.span_logs_of_traces(live.services.default_project.id, [trace_id])
    assert (kept.span_id, kept.body, kept.event_name, kept.scope_name) == (
        span_id,
        "hello",
        "app.line",
        "app",
    )


def test_protobuf_partial_success_names_the_record(live: LiveServer) -> None:
    logs, _ = _sample()
    request = encode_logs(logs.records())
    request.resource_logs[0].scope_logs[0].log_records[1].trace_id = b"\x01" * 5
    response = post_logs(live, request.SerializeToString(), PROTOBUF)
    assert response.status_code == 200 and response.headers["content-type"] == PROTOBUF
    answer = ExportLogsServiceResponse()
    answer.ParseFromString(response.content)
    assert answer.partial_success.rejected_log_records == 1
    assert answer.partial_success.error_message == (
        "resourceLogs[0].scopeLogs[0].logRecords[1]: invalid trace id (not 16 bytes)"
    )


def test_a_full_success_answers_an_empty_response(live: LiveServer) -> None:
    logs, _ = _sample()
    response = post_logs(live, logs_json(logs.records()), "application/json")
    assert response.status_code == 200 and response.json() == {}
    response = post_logs(
        live,
        gzip.compress(encode_logs(logs.records()).SerializeToString()),
        PROTOBUF,
        **{"Content-Encoding": "gzip"},
    )
    assert response.status_code == 200 and response.content == b""


# -- storage and the join ------------------------------------------------------------------------------


def test_a_redelivered_export_stores_one_copy(live: LiveServer, clickhouse_store: ClickHouseStore) -> None:
    logs, _ = _sample()
    for compression in (False, True):
        assert export_logs(live, logs.records(), compression=compression) == LogRecordExportResult.SUCCESS
    live.process()
    assert live.services.otlp_logs.stored_records == 6
    assert _stored(clickhouse_store) == 3


def test_records_arriving_after_their_spans_re_assemble_the_call(live: LiveServer) -> None:
    """The spans come first and make a call without turns; the records come later and the same call is
    assembled again with the chat in it."""
    recorder = Recorder()
    _, first, second = chat_spans(recorder, "chat-after")
    assert live.export(recorder.spans()) == SpanExportResult.SUCCESS
    live.process()
    (call_id,) = live.call_ids()
    assert live.call(call_id)["call"]["turns"] == []
    logs = LogRecorder()
    details(logs, first, second)
    assert export_logs(live, logs.records()) == LogRecordExportResult.SUCCESS
    live.process()
    call = assert_chat(live, call_id)
    assert call["external_id"] == "chat-after"
    # The stored spans are as the app sent them: the records are folded in for the mapping only.
    tree = live.get(f"/api/v1/calls/{call_id}/spans").json()
    llm = tree["roots"][0]["children"]
    assert len(llm) == 2 and all("gen_ai.input.messages" not in span["attributes"] for span in llm)


def test_records_arriving_before_their_spans_wait_for_them(live: LiveServer) -> None:
    recorder = Recorder()
    _, first, second = chat_spans(recorder, "chat-before")
    logs = LogRecorder()
    details(logs, first, second)
    assert export_logs(live, logs.records(), compression=True) == LogRecordExportResult.SUCCESS
    live.process()
    assert live.call_ids() == []  # nothing to make a call of yet, and nothing lost
    assert live.export(recorder.spans()) == SpanExportResult.SUCCESS
    live.process()
    assert assert_chat(live)["external_id"] == "chat-before"


def test_per_message_events_of_older_releases_make_the_same_chat(live: LiveServer) -> None:
    """One record per message (``gen_ai.{system,user,assistant,tool}.message``, ``gen_ai.choice``), the
    content in the body as the instrumentation's 1.x releases wrote it, read in the order emitted."""
    recorder = Recorder()
    _, first, second = chat_spans(recorder, "chat-legacy")
    logs = LogRecorder()
    asked = [
        {
            "id": CALL_ID,
            "type": "function",
            "function": {"name": "check_slots", "arguments": json.dumps(ARGUMENTS)},
        }
    ]
    system = {"gen_ai.system": "openai"}
    for span, at in ((first, 1.0), (second, 2.0)):
        logs.emit(span, "gen_ai.system.message", at_s=at, body={"content": SYSTEM}, attributes=system)
        logs.emit(span, "gen_ai.user.message", at_s=at + 0.01, body={"content": USER}, attributes=system)
    logs.emit(
        first,
        "gen_ai.choice",
        at_s=1.4,
        body={
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {"role": "assistant", "tool_calls": asked},
        },
        attributes=system,
    )
    logs.emit(second, "gen_ai.assistant.message", at_s=2.02, body={"tool_calls": asked}, attributes=system)
    logs.emit(
        second,
        "gen_ai.tool.message",
        at_s=2.03,
        body={"content": json.dumps(RESULT), "id": CALL_ID},
        attributes=system,
    )
    logs.emit(
        second,
        "gen_ai.choice",
        at_s=2.4,
        body={"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": AGENT}},
        attributes=system,
    )
    records = logs.records()
    # Sent in another order than emitted, and as JSON: the records' own times order them.
    response = post_logs(live, logs_json(records[::-1]), "application/json")
    assert response.status_code == 200 and response.json() == {}
    assert live.export(recorder.spans()) == SpanExportResult.SUCCESS
    live.process()
    assert assert_chat(live)["external_id"] == "chat-legacy"


def test_a_span_carrying_its_own_messages_wins_over_log_records(live: LiveServer) -> None:
    """``span_and_event`` sends the messages both ways: what the span says is read, per attribute; a span
    without messages still takes those of its records."""
    recorder = Recorder()
    root = recorder.emit("clinic-chat", "chat session", 0.0, 4.0, {"gen_ai.conversation.id": "chat-both"})
    own = recorder.emit(
        "opentelemetry.util.genai.handler",
        f"chat {MODEL}",
        1.0,
        1.5,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": MODEL,
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [_parts_text("What the span says.")]}]
            ),
        },
        parent=root,
    )
    logs = LogRecorder()
    logs.emit(
        own,
        "gen_ai.client.inference.operation.details",
        attributes={
            "gen_ai.input.messages": [{"role": "user", "parts": [_parts_text("What the record says.")]}],
            "gen_ai.output.messages": [{"role": "assistant", "parts": [_parts_text("The record's answer.")]}],
        },
    )
    assert export_logs(live, logs.records()) == LogRecordExportResult.SUCCESS
    assert live.export(recorder.spans()) == SpanExportResult.SUCCESS
    live.process()
    (call_id,) = live.call_ids()
    turns = live.call(call_id)["call"]["turns"]
    assert [(t["role"], t["text"]) for t in turns] == [
        ("user", "What the span says."),
        ("agent", "The record's answer."),
    ]


@pytest.mark.parametrize("event", ["gen_ai.client.inference.operation.details", "gen_ai.user.message"])
def test_records_of_no_stored_span_are_kept_and_change_no_call(
    live: LiveServer, clickhouse_store: ClickHouseStore, event: str
) -> None:
    logs = LogRecorder()
    recorder = Recorder()
    stray = recorder.emit("app", "never exported", 0.0, 1.0, {})
    logs.emit(stray, event, body={"content": USER}, attributes={"gen_ai.input.messages": [USER_MESSAGE]})
    assert export_logs(live, logs.records()) == LogRecordExportResult.SUCCESS
    live.process()
    assert _stored(clickhouse_store) == 1 and live.call_ids() == []
