"""Pipecat traces through the real OTLP exporter become calls with a per-turn latency breakdown."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from test_otlp_kit import LiveServer, Recorder, live, named, otlp_settings, pipecat_conversation, serve

from convoscope.server.services import open_services
from convoscope.store.clickhouse import ClickHouseStore

__all__ = ["live"]


def _only_call(live: LiveServer) -> dict[str, object]:
    ids = live.call_ids()
    assert len(ids) == 1, ids
    return live.call(ids[0])


def test_split_out_of_order_batches_become_one_call(live: LiveServer) -> None:
    recorder = Recorder()
    # A barge-in ends the first turn (it always opens a next one).
    pipecat_conversation(recorder, "conv-a", turns=2, interrupted=0)
    spans = recorder.spans()
    # The root first, then the services before their turns: every batch arrives before its parents.
    order = (
        named(spans, "conversation") + named(spans, "tts", "llm") + named(spans, "stt") + named(spans, "turn")
    )
    for start in range(0, len(order), 3):
        assert live.export(order[start : start + 3]) == SpanExportResult.SUCCESS
    live.process()

    body = _only_call(live)
    call = body["call"]
    assert call["source"] == "pipecat" and call["external_id"] == "conv-a"
    assert call["agent_id"] == "voice-agent"
    turns = call["turns"]
    assert [t["role"] for t in turns] == ["user", "agent", "user", "agent"]
    assert turns[0]["text"] == "conv-a user 0" and turns[1]["text"] == "conv-a agent 0"
    assert turns[0]["start_s"] == pytest.approx(1.0) and turns[0]["end_s"] == pytest.approx(2.5)
    assert turns[1]["start_s"] == pytest.approx(3.0) and turns[1]["end_s"] == pytest.approx(8.0)
    first, second = turns[1], turns[3]
    assert first["e2e_s"] == pytest.approx(0.8) and second["e2e_s"] == pytest.approx(0.9)
    assert first["stt_s"] == pytest.approx(0.21)
    assert first["llm_ttft_s"] == pytest.approx(0.35)
    assert first["tts_ttfb_s"] == pytest.approx(0.15)
    assert first["interrupted"] is True and second["interrupted"] is False
    assert call["usage"]["llm_prompt_tokens"] == 2000 and call["usage"]["llm_completion_tokens"] == 400
    assert call["usage"]["tts_characters"] == 200
    costs = {(line["product"], line["unit"]): line["amount"] for line in call["cost"]}
    assert costs[("llm:gpt-4o-mini", "input_tokens")] == pytest.approx(2000 * 0.15e-6)
    assert costs[("llm:gpt-4o-mini", "output_tokens")] == pytest.approx(400 * 0.60e-6)
    assert costs[("tts:sonic-2", "characters")] == pytest.approx(200 * 30e-6)
    assert costs[("stt:nova-3", "minutes")] == pytest.approx(3.0 / 60 * 0.0043)
    assert call["metadata"]["conversation_open"] is False

    tree = live.get(f"/api/v1/calls/{call['id']}/spans").json()
    assert tree["span_count"] == len(spans)
    (root,) = tree["roots"]
    assert root["name"] == "conversation" and root["offset_ms"] == pytest.approx(0.0)
    assert root["duration_ms"] == pytest.approx(17000.0)
    assert [c["name"] for c in root["children"]] == ["turn", "turn"]
    assert sorted(c["name"] for c in root["children"][0]["children"]) == ["llm", "stt", "tts"]
    trace = live.get(f"/api/v1/traces/{tree['trace_ids'][0]}").json()
    assert trace["span_count"] == len(spans)


def test_concurrent_conversations_nested_under_the_wrong_root_are_kept_apart(live: LiveServer) -> None:
    recorder = Recorder()
    root_a = pipecat_conversation(recorder, "conv-a", turns=2)
    # Pipecat's shared tracing context once nested a second conversation's turns under the first one.
    pipecat_conversation(recorder, "conv-b", turns=3, start_s=0.5, turn_parent=root_a)
    assert live.export(recorder.spans()) == SpanExportResult.SUCCESS
    live.process()

    calls = {live.call(i)["call"]["external_id"]: live.call(i)["call"] for i in live.call_ids()}
    assert set(calls) == {"conv-a", "conv-b"}
    assert len(calls["conv-a"]["turns"]) == 4 and len(calls["conv-b"]["turns"]) == 6
    assert all(t["text"].startswith("conv-b") for t in calls["conv-b"]["turns"])
    assert all(t["text"].startswith("conv-a") for t in calls["conv-a"]["turns"])
    spans_b = live.get(f"/api/v1/calls/{calls['conv-b']['id']}/spans").json()
    assert spans_b["span_count"] == 1 + 3 * 4


def test_late_spans_update_the_call_and_keep_its_id(live: LiveServer) -> None:
    recorder = Recorder()
    pipecat_conversation(recorder, "conv-late", turns=2)
    spans = recorder.spans()
    late_turn = named(spans, "turn")[-1]
    late = [late_turn, *[s for s in spans if s.parent and s.parent.span_id == late_turn.context.span_id]]
    early = [s for s in spans if s not in late]
    assert live.export(early) == SpanExportResult.SUCCESS
    live.process()
    (call_id,) = live.call_ids()
    assert len(live.call(call_id)["call"]["turns"]) == 2

    assert live.export(late) == SpanExportResult.SUCCESS
    live.process()  # the root was seen: the re-assembly is due after the settle time
    assert live.call_ids() == [call_id]
    call = live.call(call_id)["call"]
    assert len(call["turns"]) == 4
    assert call["usage"]["llm_prompt_tokens"] == 2000


def test_a_conversation_without_its_root_is_assembled_after_the_idle_time(live: LiveServer) -> None:
    recorder = Recorder()
    pipecat_conversation(recorder, "conv-open", turns=1, with_root=False)
    assert live.export(recorder.spans()) == SpanExportResult.SUCCESS
    live.process()
    assert live.call_ids() == []  # still open: no call before the idle time
    time.sleep(live.services.settings.otlp_idle_s + 0.2)
    live.process()
    (call_id,) = live.call_ids()
    call = live.call(call_id)["call"]
    assert call["external_id"] == "conv-open" and call["metadata"]["conversation_open"] is True
    assert [t["role"] for t in call["turns"]] == ["user", "agent"]


def test_gzip_export_is_accepted(live: LiveServer) -> None:
    recorder = Recorder()
    pipecat_conversation(recorder, "conv-gzip", turns=1)
    assert live.export(recorder.spans(), compression=True) == SpanExportResult.SUCCESS
    live.process()
    (call_id,) = live.call_ids()
    assert live.call(call_id)["call"]["external_id"] == "conv-gzip"


@pytest.fixture
def slow_idle(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[LiveServer]:
    services = open_services(otlp_settings(tmp_path, otlp_idle_s=1.5), store=clickhouse_store)
    try:
        yield from serve(services)
    finally:
        services.meta.close()


def test_an_open_conversation_waits_for_quiet_before_it_is_assembled(slow_idle: LiveServer) -> None:
    recorder = Recorder()
    pipecat_conversation(recorder, "conv-busy", turns=2, with_root=False)
    first_turn, second_turn = named(recorder.spans(), "turn")
    spans = recorder.spans()

    def subtree(turn: ReadableSpan) -> list[ReadableSpan]:
        return [turn, *[s for s in spans if s.parent and s.parent.span_id == turn.context.span_id]]

    started = time.monotonic()
    assert slow_idle.export(subtree(first_turn)) == SpanExportResult.SUCCESS
    slow_idle.process()
    time.sleep(max(0.0, started + 1.0 - time.monotonic()))
    assert slow_idle.export(subtree(second_turn)) == SpanExportResult.SUCCESS
    slow_idle.process()
    more_spans_at = time.monotonic()
    # The job queued for the first batch comes due, sees spans newer than the idle time, and waits.
    time.sleep(max(0.0, started + 1.7 - time.monotonic()))
    slow_idle.process()
    if time.monotonic() - more_spans_at < 1.5:
        assert slow_idle.call_ids() == []
    time.sleep(max(0.0, more_spans_at + 1.7 - time.monotonic()))
    slow_idle.process()
    (call_id,) = slow_idle.call_ids()
    assert len(slow_idle.call(call_id)["call"]["turns"]) == 4
