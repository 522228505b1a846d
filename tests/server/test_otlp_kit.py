"""Shared by the OTLP tests: a real convoscope server on loopback, and spans recorded with the
OpenTelemetry SDK under exactly the names and attributes Pipecat and LiveKit Agents use.

Spans are recorded in memory, then sent with the real ``OTLPSpanExporter`` (protobuf over HTTP) or as
OTLP/JSON, in whatever batches and order a test wants. The outbox worker and the job runner are driven by
hand (``process``) so a test knows when spans are stored and calls assembled.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from convoscope.config import Settings
from convoscope.server.app import create_app
from convoscope.server.services import Services, open_services
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.testing.live_app import serve_app

KEY = "cvs_test_otlp_key_0123456789abcdef"
T0 = 1_790_000_000.0
"""Wall-clock seconds of the recorded conversations' start (fixed, so times are checkable)."""


@dataclass
class LiveServer:
    """A convoscope app served by uvicorn in a thread, on a loopback port."""

    services: Services
    url: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {KEY}"}

    def export(self, spans: Sequence[ReadableSpan], *, compression: bool = False) -> SpanExportResult:
        """Send spans with the real OTLP/HTTP protobuf exporter."""
        from opentelemetry.exporter.otlp.proto.http import Compression

        exporter = OTLPSpanExporter(
            endpoint=f"{self.url}/v1/traces",
            headers=self.auth,
            compression=Compression.Gzip if compression else Compression.NoCompression,
            timeout=10,
        )
        try:
            return exporter.export(list(spans))
        finally:
            exporter.shutdown()

    def post(self, body: bytes, content_type: str, **headers: str) -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/traces",
            content=body,
            headers={"Content-Type": content_type, **self.auth, **headers},
            timeout=10,
        )

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=self.auth, timeout=10)

    def process(self) -> None:
        """Store what the outbox holds, then run the assembly jobs that are due."""
        while self.services.worker.drain_once():
            pass
        self.services.jobs.run_until_idle()

    def call_ids(self) -> list[str]:
        page = self.get("/api/v1/calls?limit=100").json()
        return [item["id"] for item in page["items"]]

    def call(self, call_id: str) -> dict[str, Any]:
        response = self.get(f"/api/v1/calls/{call_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def serve(services: Services) -> Iterator[LiveServer]:
    with serve_app(create_app(services, run_worker=False)) as url:
        yield LiveServer(services=services, url=url)


def otlp_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "init_api_key": KEY,
        "otlp_settle_s": 0.0,
        "otlp_idle_s": 0.6,
        "otlp_chat_idle_s": 0.6,
        "llm_prices": {"gpt-4o-mini": (0.15, 0.60)},
        "tts_prices": {"sonic-2": 30.0},
        "stt_prices": {"nova-3": 0.0043},
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def live(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[LiveServer]:
    services = open_services(otlp_settings(tmp_path), store=clickhouse_store)
    try:
        yield from serve(services)
    finally:
        services.meta.close()


# -- recording spans ----------------------------------------------------------------------------------


class Recorder:
    """An SDK tracer provider that keeps finished spans in memory, in the order they end."""

    def __init__(self, service: str = "voice-agent") -> None:
        self.memory = InMemorySpanExporter()
        # Generous SDK limits: the server's own caps are what the tests look at.
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": service}),
            span_limits=SpanLimits(max_span_attributes=4096),
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))

    def emit(
        self,
        scope: str,
        name: str,
        start_s: float,
        end_s: float,
        attributes: dict[str, Any],
        parent: trace.Span | None = None,
    ) -> trace.Span:
        """One finished span, ``start_s``/``end_s`` seconds after ``T0``."""
        tracer = self.provider.get_tracer(scope)
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = tracer.start_span(name, context=context, attributes=attributes, start_time=_ns(start_s))
        span.end(end_time=_ns(end_s))
        return span

    def spans(self) -> list[ReadableSpan]:
        return list(self.memory.get_finished_spans())


def _ns(offset_s: float) -> int:
    return int(round((T0 + offset_s) * 1e9))


def named(spans: Sequence[ReadableSpan], *names: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name in names]


def otlp_json(spans: Sequence[ReadableSpan]) -> bytes:
    """The OTLP/JSON encoding of spans: protobuf JSON mapping, but ids as hex (the OTLP rule)."""
    document = MessageToDict(encode_spans(list(spans)))
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return orjson.dumps(document)


def pipecat_conversation(
    recorder: Recorder,
    conversation_id: str,
    *,
    start_s: float = 0.0,
    turns: int = 2,
    interrupted: int | None = None,
    turn_parent: trace.Span | None = None,
    with_root: bool = True,
) -> trace.Span | None:
    """A Pipecat conversation: ``conversation`` → ``turn`` → ``stt``/``llm``/``tts`` (pipecat tracing)."""
    root = None
    if with_root:
        root = recorder.emit(
            "pipecat.turn",
            "conversation",
            start_s,
            start_s + 1 + 8 * turns,
            {"conversation.id": conversation_id, "conversation.type": "voice", "customer": "acme"},
        )
    for n in range(turns):
        at = start_s + 1 + 8 * n
        turn = recorder.emit(
            "pipecat.turn",
            "turn",
            at,
            at + 7,
            {
                "turn.number": n + 1,
                "turn.type": "conversation",
                "conversation.id": conversation_id,
                "turn.duration_seconds": 7.0,
                "turn.was_interrupted": n == interrupted,
                "turn.user_bot_latency_seconds": 0.8 + 0.1 * n,
            },
            parent=turn_parent or root,
        )
        recorder.emit(
            "pipecat",
            "stt",
            at,
            at + 1.5,
            {
                "gen_ai.provider.name": "deepgram",
                "gen_ai.request.model": "nova-3",
                "gen_ai.operation.name": "stt",
                "transcript": f"{conversation_id} user {n}",
                "is_final": True,
                "language": "en",
                "metrics.ttfb": 0.21,
                "metrics.audio_seconds": 1.5,
                "vad_enabled": True,
            },
            parent=turn,
        )
        recorder.emit(
            "pipecat",
            "llm",
            at + 1.6,
            at + 2.4,
            {
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.operation.name": "chat",
                "gen_ai.output.type": "text",
                "stream": True,
                "input": '[{"role": "user", "content": "hi"}]',
                "output": f"{conversation_id} agent {n}",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 200,
                "metrics.ttfb": 0.35,
            },
            parent=turn,
        )
        recorder.emit(
            "pipecat",
            "tts",
            at + 2.0,
            at + 5.0,
            {
                "gen_ai.provider.name": "cartesia",
                "gen_ai.request.model": "sonic-2",
                "gen_ai.operation.name": "tts",
                "gen_ai.output.type": "speech",
                "voice_id": "voice-1",
                "text": f"{conversation_id} agent {n}",
                "metrics.character_count": 100,
                "metrics.ttfb": 0.15,
            },
            parent=turn,
        )
    return root


AGENT_TIMEOUT_S = 120
"""How long a real framework's agent process may take to run its script and export."""


def call_from_agent(live: LiveServer, agent: Path, run: dict[str, Any]) -> dict[str, Any]:
    """Run a framework's agent script in its own process (it exports to ``live``), then the one call it
    became, as the API answers it."""
    done = subprocess.run(
        [sys.executable, str(agent), json.dumps(run)],
        capture_output=True,
        text=True,
        timeout=AGENT_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    live.process()
    (call_id,) = live.call_ids()
    call: dict[str, Any] = live.call(call_id)["call"]
    return call
