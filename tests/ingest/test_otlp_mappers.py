"""The framework mappers on spans built here: version differences, partial conversations, no call."""

from __future__ import annotations

from datetime import timedelta

import pytest
from _otlp_spans import T
from _otlp_spans import span as _span

from convoscope.ingest.otlp import PriceTable, mapper_for
from convoscope.model import Role


def test_livekit_older_transcript_name_and_a_room_key() -> None:
    spans = [
        _span(1, "agent_session", 0, 20, **{"lk.pii.room_name": "lobby"}),
        _span(2, "user_turn", 1, 3, 1, **{"lk.user_transcript": "hello there"}),
        _span(3, "agent_turn", 3.5, 6, 1, **{"lk.e2e_latency": "0.9", "lk.interrupted": "true"}),
        _span(4, "tts_node", 3.6, 6, 3, **{"lk.pii.input_text": "hi!", "lk.response.ttfb": 0.2}),
    ]
    mapper = mapper_for("livekit:lobby")
    assert mapper.own_key(spans[0]) == "livekit:lobby"  # the room name, when no conversation id is exported
    assert mapper.own_key(spans[1]) is None  # turns join through their session
    call = mapper.assemble("livekit:lobby", spans, started_at=None, prices=PriceTable())
    assert call is not None and call.external_id == "lobby"
    assert [(t.role, t.text) for t in call.turns] == [(Role.USER, "hello there"), (Role.AGENT, "hi!")]
    agent = call.turns[1]
    assert agent.e2e_s == pytest.approx(0.9) and agent.interrupted is True
    assert agent.tts_ttfb_s == pytest.approx(0.2) and agent.eou_s is None
    assert call.cost == []  # nothing priced: no invented cost


def test_pipecat_turn_without_tts_takes_the_llm_output_and_keeps_its_start() -> None:
    spans = [
        _span(2, "turn", 5, 9, **{"conversation.id": "c1", "turn.number": 1, "turn.was_interrupted": True}),
        _span(3, "llm", 6, 7, 2, output="partial answer", **{"metrics.ttfb": 0.4}),
    ]
    mapper = mapper_for("pipecat:c1")
    earlier = T - timedelta(seconds=10)
    call = mapper.assemble("pipecat:c1", spans, started_at=earlier, prices=PriceTable())
    assert call is not None and call.started_at == earlier  # a re-assembly keeps the first start
    (agent,) = call.turns
    assert agent.text == "partial answer" and agent.interrupted and agent.llm_ttft_s == pytest.approx(0.4)
    assert agent.start_s == pytest.approx(16.0)
    assert call.metadata["conversation_open"] is True


def test_spans_with_nothing_to_make_a_call_of_give_none() -> None:
    lone = [_span(9, "http.request", 0, 1)]
    assert mapper_for("pipecat:x").assemble("pipecat:x", lone, started_at=None, prices=PriceTable()) is None
    assert (
        mapper_for("livekit:job:x").assemble("livekit:job:x", lone, started_at=None, prices=PriceTable())
        is None
    )
    assert mapper_for("trace:abc").assemble("trace:abc", lone, started_at=None, prices=PriceTable()) is None


def test_unreadable_numbers_are_left_out_not_guessed() -> None:
    spans = [
        _span(1, "conversation", 0, 10, **{"conversation.id": "c2"}),
        _span(
            2,
            "turn",
            1,
            5,
            1,
            **{"conversation.id": "c2", "turn.user_bot_latency_seconds": "n/a", "turn.number": 1},
        ),
        _span(3, "tts", 2, 4, 2, text="ok", **{"metrics.ttfb": -1}),
    ]
    call = mapper_for("pipecat:c2").assemble("pipecat:c2", spans, started_at=None, prices=PriceTable())
    assert call is not None
    (agent,) = call.turns
    assert agent.e2e_s is None and agent.tts_ttfb_s is None and agent.text == "ok"


def test_a_key_on_any_span_of_a_trace_takes_the_whole_trace() -> None:
    from convoscope.ingest.otlp import resolve_keys, root_keys

    # A RAG chain: the root and the retriever carry no session; only the LLM span does (OpenInference).
    chain = _span(1, "chain", 0.0, 3.0)
    retriever = _span(2, "retrieve", 0.1, 0.4, parent=1)
    llm = _span(3, "llm", 0.5, 2.9, parent=1, **{"session.id": "s-42"})
    keys = resolve_keys([chain, retriever, llm])
    assert set(keys.values()) == {"genai:s-42"} and len(keys) == 3
    assert root_keys([chain, retriever, llm], keys) == {"genai:s-42"}  # its root is seen: due in seconds
    # OpenLLMetry's association property names the conversation the same way.
    traceloop = _span(
        3, "openai.chat", 0.5, 2.9, parent=1, **{"traceloop.association.properties.session_id": "t-7"}
    )
    assert set(resolve_keys([chain, retriever, traceloop]).values()) == {"genai:t-7"}
    # A trace naming two conversations: its unkeyed root belongs to neither.
    other = _span(4, "llm", 2.0, 2.8, parent=1, **{"session.id": "s-43"})
    mixed = resolve_keys([chain, llm, other])
    assert (chain.trace_id, chain.span_id) not in mixed
