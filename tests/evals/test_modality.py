"""Chat is not voice: the call's modality decides which default metrics run and how latency is read."""

from __future__ import annotations

import json

from convoscope.evals.base import EvalContext
from convoscope.evals.profiles import AgentProfile
from convoscope.evals.runner import evaluate_call, resolve_metrics
from convoscope.ingest.otlp import PriceTable, mapper_for
from convoscope.model import CallSource, EndReason, Modality, Recording, Span, modality_of
from convoscope.testing import make_call

TURNS = [
    {"role": "user", "text": "What are your opening hours?", "start_s": 0.0, "end_s": 0.0},
    {
        "role": "agent",
        "text": "We are open from eight to six, Monday to Friday.",
        "start_s": 0.0,
        "end_s": 0.0,
    },
]


def test_the_modality_comes_from_the_metadata_the_source_or_a_recording() -> None:
    assert modality_of(make_call(source="vapi")) is Modality.VOICE
    assert modality_of(make_call(source="generic")) is Modality.VOICE
    assert modality_of(make_call(source="generic", metadata={"modality": "chat"})) is Modality.CHAT
    assert modality_of(make_call(source="simulation")) is Modality.CHAT
    recorded = make_call(source="simulation").model_copy(update={"recordings": [Recording(channels=2)]})
    assert modality_of(recorded) is Modality.VOICE
    assert modality_of(make_call(source="vapi", metadata={"modality": "chat"})) is Modality.CHAT
    assert modality_of(make_call(metadata={"modality": "video"})) is Modality.VOICE  # unknown: ignored


def _names(call_kwargs: dict[str, object], profile: AgentProfile | None = None) -> set[str]:
    call = make_call(turns=TURNS, **call_kwargs)
    metrics = resolve_metrics(profile or AgentProfile(), judge_available=False)
    return {r.metric for r in evaluate_call(call, metrics, EvalContext())}


def test_voice_only_default_metrics_do_not_run_on_a_chat_unless_named() -> None:
    voice = _names({})
    chat = _names({"metadata": {"modality": "chat"}})
    assert {"speech_rate", "talk_ratio"} <= voice
    assert not {"speech_rate", "talk_ratio"} & chat
    assert voice - chat == {"speech_rate", "talk_ratio"}
    named = _names({"metadata": {"modality": "chat"}}, AgentProfile(metrics={"speech_rate": {}}))
    assert named == {"speech_rate"}


def _latency(turns: list[dict[str, object]], modality: str) -> tuple[object, dict[str, object]]:
    call = make_call(turns=turns, metadata={"modality": modality})
    metric = resolve_metrics(AgentProfile(), judge_available=False, only=["latency"])[0]
    (result,) = evaluate_call(call, [metric], EvalContext())
    return result.value, dict(result.evidence)


def test_a_chat_latency_is_measured_never_read_off_logged_times() -> None:
    value, evidence = _latency(TURNS, "chat")
    assert value is None and "not_scorable" in evidence  # nothing measured: not 0.0 s passing
    timed = [TURNS[0], {**TURNS[1], "llm_ttft_s": 0.42}]
    value, evidence = _latency(timed, "chat")
    assert value == 0.42 and evidence["source"] == "ttft"
    gap = [TURNS[0], {**TURNS[1], "start_s": 1.5, "end_s": 3.0}]
    assert _latency(gap, "voice")[0] == 1.5  # a voice call's transcript gap is a wait the caller had
    assert _latency(gap, "chat")[0] is None


def _llm(span_id: int, status: str, user: str, answer: str) -> Span:
    return Span.model_validate(
        {
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
            "span_id": f"{span_id:016x}",
            "name": "chat gpt-4o-mini",
            "start": "2026-09-01T12:00:00Z",
            "end": "2026-09-01T12:00:01Z",
            "status_code": status,
            "status_message": "upstream 503" if status == "error" else "",
            "attributes": {
                "gen_ai.operation.name": "chat",
                "gen_ai.conversation.id": "c-1",
                "gen_ai.input.messages": json.dumps([{"role": "user", "content": user}]),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "content": answer}]),
            },
        }
    )


def test_a_genai_trace_is_a_chat_and_a_failed_request_fails_the_call() -> None:
    mapper = mapper_for("genai:c-1")
    fine = mapper.assemble("genai:c-1", [_llm(1, "ok", "Hi", "Hello!")], started_at=None, prices=PriceTable())
    assert fine is not None and fine.source is CallSource.GENERIC
    assert modality_of(fine) is Modality.CHAT and fine.end_reason is not EndReason.ERROR
    spans = [_llm(1, "ok", "Hi", "Hello!"), _llm(2, "error", "Book me in", "")]
    failed = mapper.assemble("genai:c-1", spans, started_at=None, prices=PriceTable())
    assert failed is not None and failed.end_reason is EndReason.ERROR
    assert failed.metadata["errors"] == [
        {"span_id": f"{2:016x}", "name": "chat gpt-4o-mini", "message": "upstream 503"}
    ]
