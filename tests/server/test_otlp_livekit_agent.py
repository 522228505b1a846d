"""A real LiveKit Agents session, traced as ``docs/integrations/livekit.md`` tells users, exports to a
live server on loopback; the assembled call is read back through the HTTP API.

LiveKit's own tracing emits every span (``livekit_agent.py`` writes none): a tool-calling reply, a plain
one before and after it, inside a job and outside any.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from livekit_script import Exchange, LiveKitRun, Step, Tool
from test_otlp_kit import KEY, LiveServer, call_from_agent, live

__all__ = ["live"]

AGENT = Path(__file__).with_name("livekit_agent.py")
LOOKUP = Tool("call_lookup_1", "lookup_booking", {"city": "Lisbon", "day": "Friday"}, "TP1351 at 10:40")
EXCHANGES = [
    Exchange("Hello", [Step("r1", "Hi, how can I help?", 40, 6)]),
    Exchange(
        "Where am I flying on Friday?",
        [Step("r2", "", 80, 12, tool=LOOKUP), Step("r3", "You fly TP1351 at 10:40.", 120, 9)],
    ),
    Exchange("Thanks", [Step("r4", "You're welcome.", 150, 4)]),
]


def converse(live: LiveServer, job_id: str | None) -> dict[str, Any]:
    run = LiveKitRun(
        endpoint=f"{live.url}/v1/traces",
        api_key=KEY,
        service_name="support",
        job_id=job_id,
        exchanges=EXCHANGES,
    )
    call = call_from_agent(live, AGENT, run.to_json())
    return call


def check_turns(call: dict[str, Any]) -> None:
    """Each user line once, each reply once (the tool-calling one with the text that followed the tool)."""
    turns = call["turns"]
    assert [(t["role"], t["text"]) for t in turns] == [
        (role, text) for e in EXCHANGES for role, text in (("user", e.user), ("agent", e.reply))
    ]
    assert [t["index"] for t in turns] == list(range(len(turns)))
    for user, agent in zip(turns[::2], turns[1::2], strict=True):
        assert user["start_s"] <= agent["start_s"] <= agent["end_s"]
        assert agent["interrupted"] is False and agent["llm_ttft_s"] >= 0.05
    (tool,) = call["tool_calls"]
    assert (tool["id"], tool["name"]) == (LOOKUP.call_id, LOOKUP.name)
    assert tool["arguments"] == LOOKUP.arguments and tool["result"] == LOOKUP.result
    assert tool["success"] is True and tool["turn_index"] == turns[3]["index"]
    assert turns[3]["start_s"] <= tool["start_s"] <= tool["end_s"] <= turns[3]["end_s"]
    steps = [s for e in EXCHANGES for s in e.steps]
    assert call["usage"]["llm_prompt_tokens"] == sum(s.prompt_tokens for s in steps)
    assert call["usage"]["llm_completion_tokens"] == sum(s.completion_tokens for s in steps)


def test_a_livekit_job_session_is_one_livekit_call_named_by_its_room(live: LiveServer) -> None:
    call = converse(live, "AJ_capture")
    assert call["source"] == "livekit" and call["metadata"]["mapper"] == "livekit-1"
    session = call["metadata"]["session"]
    assert session["lk.job_id"] == "AJ_capture"
    # The conversation id LiveKit stamps on every span of a job is the room sid.
    assert call["external_id"] == session["lk.room_sid"] and call["external_id"].startswith("RM_")
    check_turns(call)


def test_a_livekit_session_outside_a_job_is_still_a_livekit_call(live: LiveServer) -> None:
    call = converse(live, None)
    tree = live.get(f"/api/v1/calls/{call['id']}/spans").json()
    (root,) = tree["roots"]
    assert root["name"] == "agent_session"
    # Outside a job LiveKit exports no id: the session's one trace names it.
    assert call["source"] == "livekit" and call["external_id"] == tree["trace_ids"][0]
    check_turns(call)


@pytest.mark.parametrize("name", ["livekit-1.8.9-job.json"])
def test_the_captured_export_is_one_call(live: LiveServer, name: str) -> None:
    exports = json.loads((Path(__file__).parent / "fixtures" / "otlp" / name).read_text())
    for export in exports:
        response = live.post(json.dumps(export).encode(), "application/json")
        assert response.status_code == 200 and response.json() == {}, response.text
    live.process()
    (call_id,) = live.call_ids()
    call = live.call(call_id)["call"]
    assert call["source"] == "livekit" and call["external_id"].startswith("RM_")
    assert [(t["role"], t["text"]) for t in call["turns"]][2:4] == [
        ("user", "Where am I flying on Friday?"),
        ("agent", "You fly to Lisbon at 10:40, seat 12A."),
    ]
    (tool,) = call["tool_calls"]
    assert tool["arguments"] == {"city": "Lisbon", "day": "Friday"} and tool["turn_index"] == 3
