"""OTLP assembly as a batch job: many conversations per run, one bad conversation failing alone, and the
outcome of each assembly on the call it produced (``GET /api/v1/calls/{id}``)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from test_otlp_kit import LiveServer, Recorder, live, otlp_settings, pipecat_conversation, serve

from convoscope.errors import PayloadError
from convoscope.ingest.otlp import PROTOBUF_TYPE, SpanLimits, decode_export
from convoscope.runtime.kinds import OTLP_ASSEMBLE
from convoscope.server.services import open_services
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.traces.otlp import ASSEMBLE_BATCH

__all__ = ["live"]


def _assembly(live: LiveServer, call_id: str) -> dict[str, object]:
    """The ``otlp.assemble`` entry under the call's jobs, read over HTTP."""
    jobs = [job for job in live.call(call_id)["jobs"] if job["kind"] == OTLP_ASSEMBLE]
    assert len(jobs) == 1, jobs
    return jobs[0]


def _by_external_id(live: LiveServer) -> dict[str, str]:
    page = live.get("/api/v1/calls?limit=100").json()
    return {item["external_id"]: item["id"] for item in page["items"]}


def test_one_job_run_assembles_many_conversations_and_each_call_shows_its_job(live: LiveServer) -> None:
    count = 12
    recorder = Recorder()
    for n in range(count):
        pipecat_conversation(recorder, f"conv-{n}", start_s=30.0 * n, turns=2)
    assert live.export(recorder.spans()) == SpanExportResult.SUCCESS
    while live.services.worker.drain_once():
        pass
    assert count <= ASSEMBLE_BATCH
    assert live.services.jobs.run_once() == count  # one claim, one batch
    calls = _by_external_id(live)
    assert sorted(calls) == sorted(f"conv-{n}" for n in range(count))
    for external_id, call_id in calls.items():
        body = live.call(call_id)
        assert len(body["call"]["turns"]) == 4, external_id
        job = _assembly(live, call_id)
        assert job["status"] == "done" and job["error"] is None
        tree = live.get(f"/api/v1/calls/{call_id}/spans").json()
        assert tree["span_count"] == 2 * 4 + 1  # every span linked to its call


@pytest.fixture
def overflowing_price(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[LiveServer]:
    """A server whose STT price is so large that a long enough call's cost overflows to infinity."""
    services = open_services(otlp_settings(tmp_path, stt_prices={"nova-3": 1e308}), store=clickhouse_store)
    try:
        yield from serve(services)
    finally:
        services.meta.close()


def test_a_failed_reassembly_shows_on_the_call_and_fails_only_its_job(overflowing_price: LiveServer) -> None:
    live = overflowing_price
    recorder = Recorder()
    pipecat_conversation(recorder, "conv-bad", turns=1)
    assert live.export(recorder.spans()) == SpanExportResult.SUCCESS
    live.process()
    bad_id = _by_external_id(live)["conv-bad"]
    assert _assembly(live, bad_id)["status"] == "done"

    # A late turn with 10,000 s of audio: its cost is infinite, so the call cannot be made again, while
    # two other conversations in the same batch are assembled.
    late = Recorder()
    turn = late.emit("pipecat.turn", "turn", 20.0, 27.0, {"turn.number": 2, "conversation.id": "conv-bad"})
    audio = {"transcript": "late", "gen_ai.request.model": "nova-3", "metrics.audio_seconds": 1e4}
    late.emit("pipecat", "stt", 20.0, 21.0, audio, parent=turn)
    pipecat_conversation(late, "conv-ok-1", start_s=0.0, turns=1)
    pipecat_conversation(late, "conv-ok-2", start_s=40.0, turns=1)
    assert live.export(late.spans()) == SpanExportResult.SUCCESS
    live.process()

    failed = _assembly(live, bad_id)
    assert failed["status"] == "failed"
    assert "finite number" in str(failed["error"])
    calls = _by_external_id(live)
    assert calls["conv-bad"] == bad_id and len(live.call(bad_id)["call"]["turns"]) == 2  # kept as it was
    for external_id in ("conv-ok-1", "conv-ok-2"):
        assert _assembly(live, calls[external_id])["status"] == "done"
    project = live.services.default_project.id
    by_key = {
        key: live.services.meta.jobs_for_call(project, key)[0].status
        for key in ("pipecat:conv-bad", "pipecat:conv-ok-1", "pipecat:conv-ok-2")
    }
    assert by_key == {"pipecat:conv-bad": "failed", "pipecat:conv-ok-1": "done", "pipecat:conv-ok-2": "done"}


def test_a_store_failure_retries_the_whole_batch_later(
    live: LiveServer, clickhouse_store: ClickHouseStore
) -> None:
    recorder = Recorder()
    pipecat_conversation(recorder, "conv-a", turns=1)
    pipecat_conversation(recorder, "conv-b", start_s=20.0, turns=1)
    assert live.export(recorder.spans()) == SpanExportResult.SUCCESS
    while live.services.worker.drain_once():
        pass
    clickhouse_store.command(f"DROP TABLE `{clickhouse_store.database}`.`spans`")  # the read now fails
    assert live.services.jobs.run_once() == 2
    project = live.services.default_project.id
    for key in ("pipecat:conv-a", "pipecat:conv-b"):
        (job,) = live.services.meta.jobs_for_call(project, key)
        assert job.status == "pending" and job.attempts == 1  # retried later, not failed for good
        assert job.error is not None and "the store failed while assembling" in job.error
    assert live.services.jobs.run_once() == 0  # not due again before STORE_RETRY_S


def test_spans_are_written_with_the_conversation_ids_given(clickhouse_store: ClickHouseStore) -> None:
    """The receiver keys a batch without copying its spans: the store writes the keys it is given."""
    recorder = Recorder()
    pipecat_conversation(recorder, "conv-k", turns=1)
    body = encode_spans(recorder.spans()).SerializeToString()
    spans = decode_export(body, PROTOBUF_TYPE, SpanLimits()).spans
    keys = ["pipecat:conv-k" if span.name != "stt" else None for span in spans]
    clickhouse_store.insert_spans("proj", spans, conversation_ids=keys)
    keyed = clickhouse_store.list_spans("proj", conversation_id="pipecat:conv-k")
    assert sorted(s.span_id for s in keyed) == sorted(s.span_id for s in spans if s.name != "stt")
    assert all(span.conversation_id is None for span in spans)  # the decoded spans are left as they were
    with pytest.raises(PayloadError, match="1 conversation ids for"):
        clickhouse_store.insert_spans("proj", spans, conversation_ids=keys[:1])


@pytest.fixture
def minutes_idle(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[LiveServer]:
    """The defaults' proportions: voice sessions wait minutes without their root, chats a moment."""
    settings = otlp_settings(tmp_path, otlp_idle_s=300.0, otlp_chat_idle_s=0.5)
    services = open_services(settings, store=clickhouse_store)
    try:
        yield from serve(services)
    finally:
        services.meta.close()


def test_a_chat_whose_root_is_never_exported_appears_after_the_chat_idle_time(
    minutes_idle: LiveServer,
) -> None:
    """An LLM app's request spans under an app span that is never exported (another service's, or an
    uninstrumented handler's): the chat is a call within the chat idle time, not the voice idle time,
    while a voice session without its root still waits."""
    recorder = Recorder(service="chat-app")
    outside = NonRecordingSpan(
        SpanContext(trace_id=0xABC, span_id=0xDEF, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    )
    said = [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    answered = [{"role": "assistant", "parts": [{"type": "text", "content": "hello"}]}]
    recorder.emit(
        "app",
        "chat gpt-4o-mini",
        0.0,
        0.4,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.conversation.id": "chat-no-root",
            "gen_ai.input.messages": json.dumps(said),
            "gen_ai.output.messages": json.dumps(answered),
        },
        parent=outside,
    )
    pipecat_conversation(recorder, "voice-no-root", turns=1, with_root=False)
    assert minutes_idle.export(recorder.spans()) == SpanExportResult.SUCCESS
    minutes_idle.process()
    assert minutes_idle.call_ids() == []
    time.sleep(0.7)
    minutes_idle.process()
    (call_id,) = minutes_idle.call_ids()  # the chat; the voice session is still open
    call = minutes_idle.call(call_id)["call"]
    assert call["external_id"] == "chat-no-root" and call["metadata"]["conversation_open"] is True
    assert [(t["role"], t["text"]) for t in call["turns"]] == [("user", "hi"), ("agent", "hello")]
