"""A Pipecat conversation whose spans arrive in several traces is one call, rebuilt turn by turn.

Pipecat opens a ``conversation`` span (a new trace) per pipeline and numbers its turns from 1; a
conversation taken up again by a new pipeline with the same ``conversation_id`` (a caller reconnecting
to a restarted bot) is therefore two traces whose turn numbers repeat. The agent process
(``fixtures/otlp/pipecat_resumed_agent.py``) runs the pipeline of ``pipecat_agent.py`` twice, with
Pipecat's own tracing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from pipecat_script import AgentRun, Exchange, ToolUse
from test_otlp_kit import KEY, LiveServer, call_from_agent, live

__all__ = ["live"]

AGENT = Path(__file__).parent / "fixtures" / "otlp" / "pipecat_resumed_agent.py"
LOOKUP = ToolUse(
    "call_lookup_1",
    "lookup_booking",
    {"city": "Lisbon", "day": "Friday"},
    {"flight": "TP1351", "seat": "12A"},
)
FIRST = [
    Exchange("Hello", "Hi, how can I help?", 50, 5),
    Exchange("Where am I flying on Friday?", "You fly to Lisbon at 10:40.", 140, 8, tool=LOOKUP),
]
SECOND = [
    Exchange(
        "Sorry, I was cut off. Read me the whole booking",
        "Friday, Lisbon, seat 12A, then",
        160,
        9,
        barge_in=True,
    ),
    Exchange("Just the seat", "Seat 12A.", 170, 3),
]


def test_a_conversation_resumed_by_a_new_pipeline_is_one_call_in_order(live: LiveServer) -> None:
    conversation_id = f"CA{uuid.uuid4().hex}"
    runs = [
        AgentRun(
            endpoint=f"{live.url}/v1/traces",
            api_key=KEY,
            service_name="support-agent",
            conversation_id=conversation_id,
            exchanges=exchanges,
        )
        for exchanges in (FIRST, SECOND)
    ]
    given = {
        "endpoint": f"{live.url}/v1/traces",
        "api_key": KEY,
        "service_name": "support-agent",
        "runs": [r.to_json() for r in runs],
    }
    call = call_from_agent(live, AGENT, given)
    assert (call["source"], call["external_id"]) == ("pipecat", conversation_id)

    turns = call["turns"]
    exchanges = [*FIRST, *SECOND]
    assert [(t["role"], t["text"]) for t in turns] == [
        (role, text) for e in exchanges for role, text in (("user", e.user), ("agent", e.agent))
    ]
    assert [t["index"] for t in turns] == list(range(len(turns)))
    # Only the reply the caller cut off: each pipeline's end closed its last turn, which says nothing.
    assert [t["interrupted"] for t in turns[1::2]] == [False, False, True, False]
    starts = [t["start_s"] for t in turns]
    assert starts == sorted(starts)
    for user, agent in zip(turns[::2], turns[1::2], strict=True):
        assert user["end_s"] <= agent["start_s"] <= agent["end_s"]
        assert agent["e2e_s"] > agent["stt_s"] > 0 and agent["llm_ttft_s"] >= runs[0].timing.llm_s

    (tool,) = call["tool_calls"]
    assert (tool["id"], tool["name"]) == (LOOKUP.call_id, LOOKUP.name)
    assert tool["arguments"] == LOOKUP.arguments and tool["result"] == LOOKUP.result
    assert tool["turn_index"] == turns[3]["index"]

    tree = live.get(f"/api/v1/calls/{call['id']}/spans").json()
    roots = sorted(tree["roots"], key=lambda r: r["offset_ms"])
    assert [r["name"] for r in roots] == ["conversation", "conversation"]
    assert len(tree["trace_ids"]) == 2 and roots[0]["trace_id"] != roots[1]["trace_id"]
    assert [[c["attributes"]["turn.number"] for c in r["children"]] for r in roots] == [[1, 2], [1, 2]]
    # The call runs from the first pipeline's start to the last one's end.
    assert call["started_at"] == roots[0]["start"]
    assert datetime.fromisoformat(call["ended_at"]) == datetime.fromisoformat(roots[1]["end"])
    usage: dict[str, Any] = call["usage"]
    assert usage["llm_prompt_tokens"] == LOOKUP.prompt_tokens + sum(e.prompt_tokens for e in exchanges)
