"""A real Pipecat pipeline, traced as ``docs/integrations/pipecat.md`` tells users, exports to a live
server on loopback; the assembled call is read back through the HTTP API.

Pipecat's own decorators and turn-trace observer emit the spans (nothing here writes a span), so these
tests fail when a Pipecat release changes its span vocabulary in a way the mapper does not follow. The
agent (``pipecat_agent.py``) runs as its own process, as an agent does next to a deployed server.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pipecat_script import LLM_MODEL, STT_MODEL, TTS_MODEL, AgentRun, Exchange, ToolUse
from test_otlp_kit import KEY, LiveServer, call_from_agent, otlp_settings, serve

from convoscope.server.services import open_services
from convoscope.store.clickhouse import ClickHouseStore

AGENT = Path(__file__).with_name("pipecat_agent.py")
SERVICE_NAME = "support-agent"
LLM_PRICE = (1.0, 2.0)
TTS_PRICE = 10.0
STT_PRICE = 0.01
SENTENCE_BREAK = re.compile(r"(?<=[.?!])\s+")


@pytest.fixture
def live(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[LiveServer]:
    settings = otlp_settings(
        tmp_path,
        llm_prices={LLM_MODEL: LLM_PRICE},
        tts_prices={TTS_MODEL: TTS_PRICE},
        stt_prices={STT_MODEL: STT_PRICE},
    )
    services = open_services(settings, store=clickhouse_store)
    try:
        yield from serve(services)
    finally:
        services.meta.close()


def converse(
    live: LiveServer, exchanges: list[Exchange], **attributes: str
) -> tuple[AgentRun, dict[str, Any]]:
    """Run the agent process to its end (it flushes its spans), assemble, and return the call."""
    run = AgentRun(
        endpoint=f"{live.url}/v1/traces",
        api_key=KEY,
        service_name=SERVICE_NAME,
        conversation_id=f"CA{uuid.uuid4().hex}",
        exchanges=exchanges,
        span_attributes=attributes,
    )
    call = call_from_agent(live, AGENT, run.to_json())
    assert call["external_id"] == run.conversation_id
    return run, call


def test_a_traced_pipecat_pipeline_becomes_a_call(live: LiveServer) -> None:
    run, call = converse(
        live,
        [
            Exchange("I want to change my flight", "Sure. Which flight is it?", 120, 7),
            Exchange("The one to Lisbon on Friday", "Done, you now leave on Saturday.", 180, 9),
        ],
        customer="acme",
    )
    timing = run.timing

    assert call["source"] == "pipecat" and call["agent_id"] == SERVICE_NAME
    assert call["metadata"]["mapper"] == "pipecat-1" and call["metadata"]["conversation_open"] is False
    assert call["metadata"]["conversation"]["customer"] == "acme"
    assert call["metadata"]["conversation"]["conversation.type"] == "voice"
    turns = call["turns"]
    assert [t["role"] for t in turns] == ["user", "agent"] * len(run.exchanges)
    for exchange, user, agent in zip(run.exchanges, turns[::2], turns[1::2], strict=True):
        assert user["text"] == exchange.user
        assert agent["text"] == exchange.agent
        assert 0 < user["start_s"] < user["end_s"] <= agent["start_s"] <= agent["end_s"]
        # The user turn starts when the speech did: Pipecat back-dates the STT span by the VAD's delay.
        assert user["end_s"] - user["start_s"] >= timing.vad_start_s + timing.stt_s
        # Pipecat ends the last turn as interrupted when the pipeline ends; the agent had finished.
        assert agent["interrupted"] is False
        # Every latency component is a measured interval that contains its scripted delay.
        assert agent["stt_s"] >= timing.vad_stop_s + timing.stt_s
        assert agent["llm_ttft_s"] >= timing.llm_s
        assert agent["tts_ttfb_s"] >= timing.tts_s
        assert agent["e2e_s"] >= timing.vad_stop_s + timing.stt_s + timing.llm_s + timing.tts_s
        assert agent["e2e_s"] > agent["stt_s"]

    usage = call["usage"]
    prompt = sum(e.prompt_tokens for e in run.exchanges)
    completion = sum(e.completion_tokens for e in run.exchanges)
    # Pipecat counts the characters it synthesises, sentence by sentence (no space between them).
    characters = sum(len(sentence) for e in run.exchanges for sentence in SENTENCE_BREAK.split(e.agent))
    audio_s = len(run.exchanges) * (timing.speech_s + timing.trailing_silence_s)
    assert usage["llm_prompt_tokens"] == prompt and usage["llm_completion_tokens"] == completion
    assert usage["tts_characters"] == characters
    assert usage["stt_audio_s"] == pytest.approx(audio_s)
    costs = {(line["product"], line["unit"]): line["amount"] for line in call["cost"]}
    assert costs == pytest.approx(
        {
            (f"llm:{LLM_MODEL}", "input_tokens"): prompt * LLM_PRICE[0] / 1e6,
            (f"llm:{LLM_MODEL}", "output_tokens"): completion * LLM_PRICE[1] / 1e6,
            (f"tts:{TTS_MODEL}", "characters"): characters * TTS_PRICE / 1e6,
            (f"stt:{STT_MODEL}", "minutes"): audio_s / 60 * STT_PRICE,
        },
        abs=1e-9,  # amounts are stored to the nano-dollar
    )

    tree = live.get(f"/api/v1/calls/{call['id']}/spans").json()
    (root,) = tree["roots"]
    assert root["name"] == "conversation" and root["scope_name"] == "pipecat.turn"
    assert root["attributes"]["conversation.id"] == run.conversation_id
    assert root["resource_attributes"]["service.name"] == SERVICE_NAME
    assert [c["name"] for c in root["children"]] == ["turn"] * len(run.exchanges)
    for number, turn in enumerate(root["children"], start=1):
        assert turn["attributes"]["turn.number"] == number
        assert sorted(c["name"] for c in turn["children"]) == ["llm", "stt", "tts"]
        assert all(c["scope_name"] == "pipecat" for c in turn["children"])
    assert tree["span_count"] == 1 + 4 * len(run.exchanges)
    trace_tree = live.get(f"/api/v1/traces/{tree['trace_ids'][0]}").json()
    assert trace_tree["span_count"] == tree["span_count"]


def test_a_barge_in_interrupts_the_agent_turn_it_cuts_off(live: LiveServer) -> None:
    run, call = converse(
        live,
        [
            Exchange("Hello", "Hi, how can I help?", 50, 5),
            Exchange(
                "Read me my bookings", "You have three bookings: the first one is", 90, 8, barge_in=True
            ),
            Exchange("Just the next one", "Lisbon on Saturday.", 140, 4),
        ],
    )

    turns = call["turns"]
    assert [t["text"] for t in turns[::2]] == [e.user for e in run.exchanges]
    agents = turns[1::2]
    assert [t["interrupted"] for t in agents] == [False, True, False]
    assert agents[2]["text"] == "Lisbon on Saturday."
    tree = live.get(f"/api/v1/calls/{call['id']}/spans").json()
    (root,) = tree["roots"]
    # Pipecat flags the last turn too (the pipeline's end closed it); the raw flag stays on the span.
    assert [t["attributes"]["turn.was_interrupted"] for t in root["children"]] == [False, True, True]


def test_a_function_call_is_rebuilt_from_the_llm_input_with_its_turn_and_times(live: LiveServer) -> None:
    lookup = ToolUse(
        "call_lookup_1",
        "lookup_booking",
        {"city": "Lisbon", "day": "Friday"},
        {"flight": "TP1351", "departs": "10:40"},
    )
    run, call = converse(
        live,
        [
            Exchange("Hello", "Hi, how can I help?", 50, 5),
            Exchange("Where am I flying on Friday?", "You fly to Lisbon at 10:40.", 140, 8, tool=lookup),
            Exchange("Read me the whole itinerary", "Friday, Lisbon, then on Sunday", 160, 9, barge_in=True),
            Exchange("Just the return", "Back on Sunday at 18:05.", 180, 7),
        ],
    )

    turns = call["turns"]
    assert [(t["role"], t["text"]) for t in turns] == [
        (role, text) for e in run.exchanges for role, text in (("user", e.user), ("agent", e.agent))
    ]
    assert [t["index"] for t in turns] == list(range(len(turns)))
    assert [t["interrupted"] for t in turns[1::2]] == [False, False, True, False]
    for user, agent in zip(turns[::2], turns[1::2], strict=True):
        assert user["end_s"] <= agent["start_s"] and agent["llm_ttft_s"] >= run.timing.llm_s
        assert agent["e2e_s"] > agent["stt_s"] > 0
    # The function's round trip is inside the user's wait for the reply that follows it.
    assert turns[3]["e2e_s"] > turns[1]["e2e_s"]

    (tool,) = call["tool_calls"]
    assert tool["id"] == lookup.call_id and tool["name"] == lookup.name
    assert tool["arguments"] == lookup.arguments and tool["result"] == lookup.result
    assert tool["turn_index"] == turns[3]["index"]
    # Pipecat exports no outcome for a function; nothing is made up.
    assert tool["success"] is None
    assert turns[2]["end_s"] <= tool["start_s"] <= tool["end_s"] <= turns[3]["end_s"]
    assert call["usage"]["llm_prompt_tokens"] == lookup.prompt_tokens + sum(
        e.prompt_tokens for e in run.exchanges
    )
    tree = live.get(f"/api/v1/calls/{call['id']}/spans").json()
    (root,) = tree["roots"]
    # The tool turn holds two LLM runs: the one that asked for the function and the one that answered.
    assert [sorted(c["name"] for c in t["children"]).count("llm") for t in root["children"]] == [1, 2, 1, 1]
