"""Every span acknowledged by ``/v1/traces`` survives ``kill -9`` of the server, and its call is assembled."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from test_otlp_kit import Recorder, pipecat_conversation

from integration.conftest import AUTH, ServerProcess, kill9_while_sending, stored_calls

SERVER_START_S = 90.0
"""A restart replays the span log before it is healthy."""


def _calls(url: str) -> set[str]:
    return {str(item["external_id"]) for item in stored_calls(url)}


def test_acknowledged_spans_survive_kill_9(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "data", env={"CONVOSCOPE_OTLP_SETTLE_S": "0"})
    (tmp_path / "data").mkdir()
    exports: list[tuple[str, str, int, bytes]] = []
    for n in range(300):
        recorder = Recorder()
        pipecat_conversation(recorder, f"conv-{n}", turns=2)
        spans = recorder.spans()
        trace_id = format(spans[0].context.trace_id, "032x")
        exports.append((f"conv-{n}", trace_id, len(spans), encode_spans(spans).SerializeToString()))
    acknowledged: list[tuple[str, str, int]] = []

    def send(stop: threading.Event) -> None:
        headers = {**AUTH, "Content-Type": "application/x-protobuf"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
            for conversation, trace_id, count, body in exports:
                if stop.is_set():
                    return
                try:
                    response = client.post("/v1/traces", content=body)
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    acknowledged.append((conversation, trace_id, count))

    server.start(timeout_s=SERVER_START_S)
    try:
        kill9_while_sending(server, send, acknowledged, at_least=60)

        server.start(timeout_s=SERVER_START_S)
        expected = {conversation for conversation, _, _ in acknowledged}
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not expected <= _calls(server.url):
            time.sleep(0.5)
        assert expected <= _calls(server.url), "an acknowledged conversation never became a call"
        for _, trace_id, count in acknowledged:
            tree = httpx.get(f"{server.url}/api/v1/traces/{trace_id}", headers=AUTH, timeout=30).json()
            assert tree["span_count"] == count, f"trace {trace_id} lost spans"
    finally:
        server.stop()
