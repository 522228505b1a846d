"""The OTLP/HTTP receiver's answers: status codes, Status bodies, partial success, caps and bounds."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult
from test_otlp_kit import (
    T0,
    LiveServer,
    Recorder,
    live,
    otlp_json,
    otlp_settings,
    pipecat_conversation,
    serve,
)

from convoscope.server.services import open_services
from convoscope.store.clickhouse import ClickHouseStore

__all__ = ["live"]

PROTOBUF = "application/x-protobuf"


def _status_message(body: bytes) -> str:
    """The message (field 2) of a google.rpc.Status protobuf."""
    assert body[0] == 0x08  # field 1, the code
    index = 2
    assert body[index] == 0x12
    length, shift, index = 0, 0, index + 1
    while True:
        byte = body[index]
        length |= (byte & 0x7F) << shift
        index += 1
        if not byte & 0x80:
            break
        shift += 7
    return body[index : index + length].decode()


def _outbox_rows(live: LiveServer) -> int:
    return live.services.meta.pending_count()


def test_malformed_protobuf_is_400_with_a_status_body(live: LiveServer) -> None:
    response = live.post(b"\x0a\xff\xff\xff\xff\x0f garbage", PROTOBUF)
    assert response.status_code == 400
    assert response.headers["content-type"] == PROTOBUF
    assert "not a valid OTLP protobuf" in _status_message(response.content)
    assert _outbox_rows(live) == 0


def test_malformed_json_is_400(live: LiveServer) -> None:
    response = live.post(b'{"resourceSpans": [', "application/json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]
    response = live.post(b'{"resourceSpans": {"no": "list"}}', "application/json")
    assert response.status_code == 400 and "not a list" in response.json()["message"]
    assert _outbox_rows(live) == 0


def test_wrong_content_type_is_415(live: LiveServer) -> None:
    response = live.post(b"<xml/>", "text/xml")
    assert response.status_code == 415
    assert "application/x-protobuf" in response.json()["message"]


def test_missing_or_wrong_key_is_401(live: LiveServer) -> None:
    recorder = Recorder()
    pipecat_conversation(recorder, "c", turns=1)
    body = encode_spans(recorder.spans()).SerializeToString()
    for headers in (
        {"Content-Type": PROTOBUF},
        {"Content-Type": PROTOBUF, "Authorization": "Bearer cvs_nope"},
    ):
        response = httpx.post(f"{live.url}/v1/traces", content=body, headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "API key" in _status_message(response.content)
    assert _outbox_rows(live) == 0


def test_gzip_bomb_is_413_and_broken_gzip_400(live: LiveServer) -> None:
    limit = live.services.settings.max_body_bytes
    bomb = gzip.compress(b"\x00" * (limit + 1))
    response = live.post(bomb, PROTOBUF, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert "larger than" in _status_message(response.content)
    response = live.post(b"not gzip at all", PROTOBUF, **{"Content-Encoding": "gzip"})
    assert response.status_code == 400


def _span(trace_id: str, span_id: str, name: str = "llm", **extra: object) -> dict[str, object]:
    start = int(T0 * 1e9)
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": 1,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 1_000_000_000),
        "attributes": [{"key": "conversation.id", "value": {"stringValue": "conv-partial"}}],
        **extra,
    }


def test_bad_spans_are_rejected_one_by_one_and_the_rest_kept(live: LiveServer) -> None:
    trace_id = "5b8efff798038103d269b633813fc60c"
    spans = [
        _span(trace_id, "eee19b7ec3c1b174", name="turn"),
        _span("", "eee19b7ec3c1b175"),  # no trace id
        _span(trace_id, "eee19b7ec3c1b176", attributes=[{"key": "x", "value": {"stringValue": 5}}]),
        _span(trace_id, "zzzz"),  # not hex
        _span(trace_id, "eee19b7ec3c1b177", endTimeUnixNano="1"),  # ends before it starts
    ]
    document = {
        "resourceSpans": [
            {
                "resource": {"attributes": []},
                "scopeSpans": [{"scope": {"name": "pipecat.turn"}, "spans": spans}],
            }
        ]
    }
    response = live.post(orjson.dumps(document), "application/json")
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "4"
    assert "spans[1]: missing or invalid trace id" in partial["errorMessage"]
    assert "stringValue is not a string" in partial["errorMessage"]
    live.process()
    stored = live.get(f"/api/v1/traces/{trace_id}").json()
    assert [node["span_id"] for node in stored["roots"]] == ["eee19b7ec3c1b174"]
    assert stored["roots"][0]["conversation_id"] == "pipecat:conv-partial"


def test_protobuf_partial_success(live: LiveServer) -> None:
    recorder = Recorder()
    pipecat_conversation(recorder, "conv-pb", turns=1)
    request = encode_spans(recorder.spans())
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = b""
    response = live.post(request.SerializeToString(), PROTOBUF)
    assert response.status_code == 200
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "missing or invalid trace id" in answer.partial_success.error_message


def test_oversized_attributes_are_cut_with_a_marker_and_identity_kept(live: LiveServer) -> None:
    recorder = Recorder()
    root = recorder.emit(
        "pipecat.turn",
        "conversation",
        0.0,
        5.0,
        {
            "conversation.id": "conv-big",
            "input": "x" * 100_000,
            **{f"extra.{i}": i for i in range(400)},
        },
    )
    assert root is not None
    assert live.export(recorder.spans()) == SpanExportResult.SUCCESS
    live.process()
    trace_id = format(root.get_span_context().trace_id, "032x")
    (node,) = live.get(f"/api/v1/traces/{trace_id}").json()["roots"]
    attributes = node["attributes"]
    limits = live.services.settings
    assert attributes["conversation.id"] == "conv-big"
    assert len(attributes) <= limits.otlp_max_attributes + 1
    cut = attributes["input"]
    assert cut.startswith("x" * 100) and "truncated" in cut and len(cut) < 100_000
    assert "input" in attributes["convoscope.truncated"]
    assert node["conversation_id"] == "pipecat:conv-big"


@pytest.fixture
def bounded(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[LiveServer]:
    services = open_services(otlp_settings(tmp_path, max_spans_per_call=6), store=clickhouse_store)
    try:
        yield from serve(services)
    finally:
        services.meta.close()


def test_spans_per_call_are_bounded(bounded: LiveServer) -> None:
    recorder = Recorder()
    pipecat_conversation(recorder, "conv-many", turns=3)  # 1 + 3 * 4 = 13 spans
    assert bounded.export(recorder.spans()) == SpanExportResult.SUCCESS
    bounded.process()
    (call_id,) = bounded.call_ids()
    call = bounded.call(call_id)["call"]
    assert call["metadata"]["spans_left_out"] == 7
    tree = bounded.get(f"/api/v1/calls/{call_id}/spans").json()
    assert tree["span_count"] == 6
    assert [root["name"] for root in tree["roots"]] == ["conversation"]  # the root is always kept
    # Not stored at all, so a runaway conversation cannot fill the store.
    assert bounded.get(f"/api/v1/traces/{tree['trace_ids'][0]}").json()["span_count"] == 6


def test_json_export_matches_protobuf_export(live: LiveServer) -> None:
    recorder = Recorder()
    pipecat_conversation(recorder, "conv-json", turns=1)
    response = live.post(otlp_json(recorder.spans()), "application/json")
    assert response.status_code == 200 and response.json() == {}
    live.process()
    (call_id,) = live.call_ids()
    call = live.call(call_id)["call"]
    assert call["external_id"] == "conv-json" and len(call["turns"]) == 2
    tree = live.get(f"/api/v1/calls/{call_id}/spans").json()
    stt = tree["roots"][0]["children"][0]["children"]
    assert {n["name"] for n in stt} == {"stt", "llm", "tts"}
    assert json.loads(json.dumps(tree["roots"][0]["resource_attributes"]))["service.name"] == "voice-agent"


def test_trace_api_answers_404_and_422_for_what_it_cannot_show(live: LiveServer) -> None:
    assert live.get("/api/v1/traces/" + "a" * 32).status_code == 404
    bad = live.get("/api/v1/traces/not-a-trace-id")
    assert bad.status_code == 422 and "32 lowercase hex" in bad.json()["error"]["message"]
    assert live.get("/api/v1/calls/0190f0a0-0000-7000-8000-000000000000/spans").status_code == 404
    assert httpx.get(f"{live.url}/api/v1/traces/{'a' * 32}", timeout=10).status_code == 401
