"""A real LiveKit Agents session in voice mode (audio in, VAD, STT, LLM, TTS, audio out) exports to a
live server on loopback; the call it became is checked turn by turn.

The agent (``fixtures/otlp/livekit_voice_agent.py``) runs livekit-agents' ``AgentSession`` with local
fake providers: the caller's audio is a tone at real-time pace, the VAD an energy detector, the STT
answers each segment LiveKit's own ``StreamAdapter`` cuts, the TTS speaks silence. Turn detection,
interruptions and every span are LiveKit's. The times asserted are lower bounds made of the scripted
delays inside each measured interval, never how fast anything ran.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from test_otlp_kit import KEY, LiveServer, call_from_agent, live

__all__ = ["live"]

AGENT = Path(__file__).parent / "fixtures" / "otlp" / "livekit_voice_agent.py"
LLM_DELAY_S = 0.1
STT_DELAY_S = 0.05
"""The fake STT's delay (``livekit_voice_agent.STT_DELAY_S``)."""
TTS_DELAY_S = 0.08
"""The fake TTS's delay before its first audio (``livekit_voice_agent.TTS_DELAY_S``)."""
VAD_MIN_SILENCE_S = 0.3
"""The silence after which the VAD says the caller stopped (``livekit_voice_agent``)."""
LOOKUP = {
    "call_id": "call_lookup_1",
    "name": "lookup_booking",
    "arguments": {"city": "Lisbon", "day": "Friday"},
    "result": "TP1351 at 10:40",
}


def step(
    ident: str, text: str, prompt: int, completion: int, tool: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": ident,
        "text": text,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "delay_s": LLM_DELAY_S,
        "tool": tool,
    }


def exchange(
    user: str, speech_s: float, *steps: dict[str, Any], barge_in_after_s: float | None = None
) -> dict[str, Any]:
    return {"user": user, "speech_s": speech_s, "barge_in_after_s": barge_in_after_s, "steps": list(steps)}


TOOL_AND_BARGE_IN = [
    exchange("Hello", 0.6, step("r1", "Hi, how can I help?", 40, 6)),
    exchange(
        "Where am I flying on Friday?",
        1.0,
        step("r2", "", 80, 12, LOOKUP),
        step("r3", "You fly TP1351 to Lisbon at 10:40, and your seat is 12A by the window.", 120, 18),
    ),
    # Said one second into the reply above, which lasts over four seconds: a barge-in.
    exchange("Wait, which terminal?", 0.8, step("r4", "Terminal 1.", 150, 4), barge_in_after_s=1.0),
]
COMING_BACK = [exchange("It's me again, one more thing", 0.8, step("r5", "Of course, go ahead.", 30, 5))]


def reply(e: dict[str, Any]) -> str:
    return " ".join(s["text"] for s in e["steps"] if s["text"])


def run_voice(
    live: LiveServer, jobs: list[tuple[str | None, list[dict[str, Any]]]], room_sid: str | None
) -> dict[str, Any]:
    run = {
        "endpoint": f"{live.url}/v1/traces",
        "api_key": KEY,
        "service_name": "support-voice",
        "room_sid": room_sid,
        "jobs": [{"job_id": job_id, "exchanges": exchanges} for job_id, exchanges in jobs],
    }
    return call_from_agent(live, AGENT, run)


def check_conversation(
    call: dict[str, Any], exchanges: list[dict[str, Any]], interrupted: list[bool]
) -> None:
    """Each spoken line once and each reply once, in order, with LiveKit's latencies."""
    turns = call["turns"]
    assert [(t["role"], t["text"]) for t in turns] == [
        (role, text) for e in exchanges for role, text in (("user", e["user"]), ("agent", reply(e)))
    ]
    assert [t["index"] for t in turns] == list(range(len(turns)))
    assert [t["interrupted"] for t in turns[1::2]] == interrupted
    for user, agent in zip(turns[::2], turns[1::2], strict=True):
        # The user turn spans the speech and the end-of-turn wait; the reply starts when it ends.
        assert user["start_s"] < user["end_s"] <= agent["start_s"] < agent["end_s"]
        assert agent["eou_s"] >= VAD_MIN_SILENCE_S + STT_DELAY_S
        assert agent["stt_s"] >= VAD_MIN_SILENCE_S + STT_DELAY_S
        assert agent["llm_ttft_s"] >= LLM_DELAY_S and agent["tts_ttfb_s"] >= TTS_DELAY_S
        # From the end of the speech to the first audio: the end-of-turn wait, then the LLM, then the TTS.
        assert agent["e2e_s"] >= agent["eou_s"] + LLM_DELAY_S + TTS_DELAY_S
    steps = [s for e in exchanges for s in e["steps"]]
    assert call["usage"]["llm_prompt_tokens"] == sum(s["prompt_tokens"] for s in steps)
    assert call["usage"]["llm_completion_tokens"] == sum(s["completion_tokens"] for s in steps)


def test_a_voice_session_with_a_tool_call_and_a_barge_in_is_rebuilt_turn_by_turn(live: LiveServer) -> None:
    call = run_voice(live, [("AJ_voice", TOOL_AND_BARGE_IN)], None)
    assert call["source"] == "livekit" and call["external_id"].startswith("RM_")
    assert call["external_id"] == call["metadata"]["session"]["lk.room_sid"]
    check_conversation(call, TOOL_AND_BARGE_IN, [False, True, False])
    turns = call["turns"]
    # The caller started speaking while the tool-informed reply was still playing, and cut it off.
    assert turns[4]["start_s"] < turns[3]["end_s"]
    # The tool's round trip is in the caller's wait: two LLM runs before the first audio.
    assert turns[3]["e2e_s"] >= turns[3]["eou_s"] + 2 * LLM_DELAY_S + TTS_DELAY_S
    (tool,) = call["tool_calls"]
    assert (tool["id"], tool["name"]) == (LOOKUP["call_id"], LOOKUP["name"])
    assert tool["arguments"] == LOOKUP["arguments"] and tool["result"] == LOOKUP["result"]
    assert tool["success"] is True and tool["turn_index"] == turns[3]["index"]
    assert turns[3]["start_s"] <= tool["start_s"] <= tool["end_s"] <= turns[3]["end_s"]


def test_two_jobs_in_one_room_are_one_call_over_two_traces(live: LiveServer) -> None:
    call = run_voice(
        live, [("AJ_voice_1", TOOL_AND_BARGE_IN[:1]), ("AJ_voice_2", COMING_BACK)], "RM_voice_room"
    )
    assert (call["source"], call["external_id"]) == ("livekit", "RM_voice_room")
    check_conversation(call, [*TOOL_AND_BARGE_IN[:1], *COMING_BACK], [False, False])
    tree = live.get(f"/api/v1/calls/{call['id']}/spans").json()
    assert len(tree["trace_ids"]) == 2
    sessions = sorted(tree["roots"], key=lambda r: r["offset_ms"])
    assert [r["name"] for r in sessions] == ["agent_session", "agent_session"]
    assert [r["attributes"]["lk.job_id"] for r in sessions] == ["AJ_voice_1", "AJ_voice_2"]
    assert sessions[0]["trace_id"] != sessions[1]["trace_id"]
    # The call lasts from the first session's start to the last one's end.
    assert call["started_at"] == sessions[0]["start"]
    assert datetime.fromisoformat(call["ended_at"]) == datetime.fromisoformat(sessions[1]["end"])
