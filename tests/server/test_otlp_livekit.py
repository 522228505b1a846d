"""LiveKit Agents and GenAI traces, sent as OTLP/JSON and protobuf, become calls."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult
from test_otlp_kit import LiveServer, Recorder, live, named, otlp_json

__all__ = ["live"]


def livekit_session(recorder: Recorder, job_id: str, *, interrupted: bool = True) -> None:
    """One LiveKit Agents session: two user turns, two agent turns, one tool call (telemetry.trace_types)."""
    scope = "livekit-agents"
    session = recorder.emit(
        scope,
        "agent_session",
        0.0,
        30.0,
        {
            "lk.job_id": job_id,
            "lk.agent_name": "support-bot",
            "lk.pii.room_name": "room-1",
            "lk.room_sid": "RM_1",
        },
    )
    for n, at in enumerate((1.0, 12.0)):
        user = recorder.emit(
            scope,
            "user_turn",
            at,
            at + 2.0,
            {"lk.pii.user_transcript": f"question {n}", "lk.transcript_confidence": 0.93},
            parent=session,
        )
        recorder.emit(
            scope,
            "eou_detection",
            at + 2.0,
            at + 2.3,
            {
                "lk.eou.probability": 0.91,
                "lk.pii.user_transcript": f"question {n}",
                "lk.transcription_delay": 0.12 + n / 100,
                "lk.end_of_turn_delay": 0.30 + n / 100,
            },
            parent=user,
        )
        agent = recorder.emit(
            scope,
            "agent_turn",
            at + 2.3,
            at + 8.0,
            {
                "lk.generation_id": f"gen-{n}",
                "lk.pii.user_input": f"question {n}",
                "lk.interrupted": interrupted and n == 1,
                "lk.e2e_latency": 1.1 + n / 10,
            },
            parent=session,
        )
        llm_node = recorder.emit(
            scope,
            "llm_node",
            at + 2.3,
            at + 3.5,
            {"lk.pii.response.text": f"answer {n}", "lk.response.ttft": 0.42},
            parent=agent,
        )
        recorder.emit(
            scope,
            "llm_request",
            at + 2.31,
            at + 3.4,
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 500,
                "gen_ai.usage.output_tokens": 50,
                "lk.response.ttft": 0.41,
            },
            parent=llm_node,
        )
        tts_node = recorder.emit(
            scope,
            "tts_node",
            at + 2.5,
            at + 7.5,
            {"lk.pii.input_text": f"answer {n}", "lk.response.ttfb": 0.18},
            parent=agent,
        )
        recorder.emit(
            scope,
            "tts_request",
            at + 2.5,
            at + 7.4,
            {"lk.pii.input_text": f"answer {n}", "lk.response.ttfb": 0.17, "lk.tts.streaming": True},
            parent=tts_node,
        )
        if n == 0:
            recorder.emit(
                scope,
                "function_tool",
                at + 3.5,
                at + 3.9,
                {
                    "lk.function_tool.id": "call_1",
                    "lk.function_tool.name": "lookup_order",
                    "lk.pii.function_tool.arguments": json.dumps({"order": "A-17"}),
                    "lk.pii.function_tool.output": json.dumps({"status": "shipped"}),
                    "lk.function_tool.is_error": False,
                },
                parent=agent,
            )


def test_livekit_session_as_otlp_json(live: LiveServer) -> None:
    recorder = Recorder(service="livekit-agent")
    livekit_session(recorder, "AJ_42")
    spans = recorder.spans()
    # Two requests, the session (the root) in the first one.
    first = named(spans, "agent_session", "user_turn", "eou_detection")
    rest = [s for s in spans if s not in first]
    for batch in (first, rest):
        response = live.post(otlp_json(batch), "application/json")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == {}
    live.process()

    (call_id,) = live.call_ids()
    call = live.call(call_id)["call"]
    assert call["source"] == "livekit" and call["external_id"] == "RM_1"
    assert call["agent_id"] == "support-bot"
    turns = call["turns"]
    assert [(t["role"], t["text"]) for t in turns] == [
        ("user", "question 0"),
        ("agent", "answer 0"),
        ("user", "question 1"),
        ("agent", "answer 1"),
    ]
    agent0, agent1 = turns[1], turns[3]
    assert agent0["e2e_s"] == pytest.approx(1.1) and agent1["e2e_s"] == pytest.approx(1.2)
    assert agent0["eou_s"] == pytest.approx(0.30) and agent1["eou_s"] == pytest.approx(0.31)
    assert agent0["stt_s"] == pytest.approx(0.12)
    assert agent0["llm_ttft_s"] == pytest.approx(0.42)
    assert agent0["tts_ttfb_s"] == pytest.approx(0.18)
    assert agent0["interrupted"] is False and agent1["interrupted"] is True
    (tool,) = call["tool_calls"]
    assert tool["name"] == "lookup_order" and tool["id"] == "call_1"
    assert tool["arguments"] == {"order": "A-17"} and tool["result"] == {"status": "shipped"}
    assert tool["success"] is True and tool["turn_index"] == 1
    assert (
        call["usage"]["llm_prompt_tokens"] == 1000 and call["usage"]["tts_characters"] == len("answer 0") * 2
    )
    assert "lk.pii.room_name" not in call["metadata"]["session"]


def test_genai_trace_without_a_conversation_becomes_a_trace_only_call(live: LiveServer) -> None:
    recorder = Recorder(service="custom-agent")
    root = recorder.emit(
        "app",
        "invoke_agent",
        0.0,
        4.0,
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"},
    )
    recorder.emit(
        "app",
        "chat gpt-4o-mini",
        0.1,
        1.5,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": "weather?"}]}]
            ),
            "gen_ai.output.messages": json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": "Sunny."}]}]
            ),
            "gen_ai.usage.input_tokens": 40,
            "gen_ai.usage.output_tokens": 5,
            "gen_ai.response.time_to_first_chunk": 0.25,
        },
        parent=root,
    )
    recorder.emit(
        "app",
        "execute_tool get_weather",
        1.6,
        1.9,
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "get_weather",
            "gen_ai.tool.call.id": "t1",
            "gen_ai.tool.call.arguments": '{"city": "Paris"}',
            "gen_ai.tool.call.result": '{"sky": "clear"}',
        },
        parent=root,
    )
    assert live.export(recorder.spans()) == SpanExportResult.SUCCESS
    live.process()
    (call_id,) = live.call_ids()
    call = live.call(call_id)["call"]
    assert call["source"] == "generic" and call["agent_id"] == "planner"
    assert call["external_id"] == format(root.get_span_context().trace_id, "032x")
    assert [(t["role"], t["text"]) for t in call["turns"]] == [("user", "weather?"), ("agent", "Sunny.")]
    assert call["turns"][1]["llm_ttft_s"] == pytest.approx(0.25)
    (tool,) = call["tool_calls"]
    assert (
        tool["arguments"] == {"city": "Paris"}
        and tool["result"] == {"sky": "clear"}
        and tool["turn_index"] == 1
    )
    costs = sum(line["amount"] for line in call["cost"])
    assert costs == pytest.approx(40 * 0.15e-6 + 5 * 0.60e-6)
