"""Real exports of Pipecat and LiveKit Agents, captured once (``fixtures/otlp/README.md``), replayed
through the receiver as the frameworks sent them; each rebuilt call is checked turn by turn.

These run without the frameworks, so a mapper change that breaks what a real release exports fails
here even where Pipecat or LiveKit is not installed. Every expected value below was read off the
captured spans: the texts in the order they were spoken, the interrupted replies, each tool call with
its arguments, result and turn, and each agent turn's latency components as the framework measured
them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from test_otlp_kit import LiveServer, live

__all__ = ["live"]

FIXTURES = Path(__file__).parent / "fixtures" / "otlp"


@dataclass(frozen=True)
class Latency:
    """One agent turn's components, in seconds, as the framework reported them (None: not reported)."""

    e2e_s: float
    llm_ttft_s: float
    tts_ttfb_s: float
    stt_s: float | None
    eou_s: float | None = None


@dataclass(frozen=True)
class Expected:
    fixture: str
    source: str
    external_id: str | None
    """None: a LiveKit room sid LiveKit made up (``RM_...``)."""
    lines: list[tuple[str, str]]
    """(user line, agent reply) in order."""
    interrupted: list[bool]
    latencies: list[Latency]
    tools: list[dict[str, Any]] = field(default_factory=list)
    """id, name, arguments, result, success and the index of the agent turn."""
    traces: int = 1
    prompt_tokens: int | None = None


PIPECAT_TOOL_BARGE_IN = Expected(
    fixture="pipecat-1.14-tool-barge-in.json",
    source="pipecat",
    external_id="CA-capture",
    lines=[
        ("Hello", "Hi, how can I help?"),
        ("Where am I flying on Friday?", "You fly to Lisbon at 10:40."),
        ("Read me the whole itinerary", "Friday, Lisbon, then on Sunday"),
        ("Just the return", "Back on Sunday at 18:05."),
    ],
    # Pipecat flags the last turn too (the pipeline's end closed it); only the cut-off reply was.
    interrupted=[False, False, True, False],
    latencies=[
        Latency(0.374113, 0.051008, 0.031889, 0.262324),
        Latency(0.421821, 0.050413, 0.030690, 0.262693),
        Latency(0.362962, 0.053940, 0.031430, 0.264456),
        Latency(0.360181, 0.050622, 0.030756, 0.257889),
    ],
    tools=[
        {
            "id": "call_1",
            "name": "lookup_booking",
            "arguments": {"city": "Lisbon", "day": "Friday"},
            "result": {"flight": "TP1351", "departs": "10:40"},
            "success": None,  # Pipecat exports no outcome
            "turn_index": 3,
        }
    ],
)
PIPECAT_RESUMED = Expected(
    fixture="pipecat-1.14-resumed.json",
    source="pipecat",
    external_id="CA-resumed",
    lines=[
        ("Hello", "Hi, how can I help?"),
        ("Where am I flying on Friday?", "You fly to Lisbon at 10:40."),
        ("Sorry, I was cut off. Read me the whole booking", "Friday, Lisbon, seat 12A, then"),
        ("Just the seat", "Seat 12A."),
    ],
    # Both pipelines' ends flagged their last turn; the caller cut off the third reply only.
    interrupted=[False, False, True, False],
    latencies=[
        Latency(0.360400, 0.054508, 0.031405, 0.255347),
        Latency(0.442741, 0.056183, 0.033915, 0.265899),
        Latency(0.354923, 0.051090, 0.032074, 0.255605),
        Latency(0.371200, 0.056192, 0.035614, 0.263294),
    ],
    tools=[
        {
            "id": "call_lookup_1",
            "name": "lookup_booking",
            "arguments": {"city": "Lisbon", "day": "Friday"},
            "result": {"flight": "TP1351", "seat": "12A"},
            "success": None,
            "turn_index": 3,
        }
    ],
    traces=2,
)
LIVEKIT_VOICE = Expected(
    fixture="livekit-1.8.9-voice-tool-barge-in.json",
    source="livekit",
    external_id=None,
    lines=[
        ("Hello", "Hi, how can I help?"),
        (
            "Where am I flying on Friday?",
            "You fly TP1351 to Lisbon at 10:40, and your seat is 12A by the window.",
        ),
        ("Wait, which terminal?", "Terminal 1."),
    ],
    interrupted=[False, True, False],
    latencies=[
        Latency(0.549546, 0.105243, 0.084381, 0.356055, 0.356536),
        Latency(0.678824, 0.103798, 0.083873, 0.351239, 0.351792),
        Latency(0.551539, 0.102842, 0.091177, 0.354356, 0.354805),
    ],
    tools=[
        {
            "id": "call_lookup_1",
            "name": "lookup_booking",
            "arguments": {"city": "Lisbon", "day": "Friday"},
            "result": "TP1351 at 10:40",
            "success": True,
            "turn_index": 3,
        }
    ],
    prompt_tokens=40 + 80 + 120 + 150,
)
LIVEKIT_TWO_JOBS = Expected(
    fixture="livekit-1.8.9-two-jobs-one-room.json",
    source="livekit",
    external_id="RM_voice_room",
    lines=[("Hello", "Hi, how can I help?"), ("It's me again, one more thing", "Of course, go ahead.")],
    interrupted=[False, False],
    latencies=[
        Latency(0.548671, 0.109765, 0.083578, 0.351827, 0.352270),
        Latency(0.551916, 0.101286, 0.091467, 0.353201, 0.353701),
    ],
    traces=2,
    prompt_tokens=40 + 30,
)
LIVEKIT_TEXT_JOB = Expected(
    fixture="livekit-1.8.9-job.json",
    source="livekit",
    external_id=None,
    lines=[
        ("Hello", "Hi, how can I help?"),
        ("Where am I flying on Friday?", "You fly to Lisbon at 10:40, seat 12A."),
        ("Thanks", "You're welcome."),
    ],
    interrupted=[False, False, False],
    latencies=[],  # typed input: LiveKit measures no speech latency
    tools=[
        {
            "id": "call_1",
            "name": "lookup_booking",
            "arguments": {"city": "Lisbon", "day": "Friday"},
            "result": "LIS 10:40, seat 12A",
            "success": True,
            "turn_index": 3,
        }
    ],
)


def replay(live: LiveServer, fixture: str) -> dict[str, Any]:
    """Post each captured export as OTLP/JSON, store and assemble; the one call they became."""
    for export in json.loads((FIXTURES / fixture).read_text()):
        response = live.post(json.dumps(export).encode(), "application/json")
        assert response.status_code == 200 and response.json() == {}, response.text
    live.process()
    (call_id,) = live.call_ids()
    call: dict[str, Any] = live.call(call_id)["call"]
    return call


@pytest.mark.parametrize(
    "expected",
    [PIPECAT_TOOL_BARGE_IN, PIPECAT_RESUMED, LIVEKIT_VOICE, LIVEKIT_TWO_JOBS, LIVEKIT_TEXT_JOB],
    ids=lambda e: e.fixture.removesuffix(".json"),
)
def test_a_captured_export_is_rebuilt_turn_by_turn(live: LiveServer, expected: Expected) -> None:
    call = replay(live, expected.fixture)
    assert call["source"] == expected.source
    if expected.external_id is None:
        assert call["external_id"].startswith("RM_")
    else:
        assert call["external_id"] == expected.external_id

    turns = call["turns"]
    assert [(t["role"], t["text"]) for t in turns] == [
        (role, text) for user, agent in expected.lines for role, text in (("user", user), ("agent", agent))
    ]
    assert [t["index"] for t in turns] == list(range(len(turns)))
    agents = turns[1::2]
    assert [t["interrupted"] for t in agents] == expected.interrupted
    for user, agent in zip(turns[::2], agents, strict=True):
        assert user["start_s"] <= user["end_s"] <= agent["start_s"] <= agent["end_s"]
    if expected.latencies:
        measured = [
            Latency(t["e2e_s"], t["llm_ttft_s"], t["tts_ttfb_s"], t["stt_s"], t["eou_s"]) for t in agents
        ]
        assert measured == [
            Latency(*(pytest.approx(v, abs=1e-6) if v is not None else None for v in vars(e).values()))
            for e in expected.latencies
        ]

    tools = call["tool_calls"]
    assert [
        {k: tool[k] for k in ("id", "name", "arguments", "result", "success", "turn_index")} for tool in tools
    ] == expected.tools
    for tool in tools:
        agent = turns[tool["turn_index"]]
        assert turns[tool["turn_index"] - 1]["end_s"] <= tool["start_s"] <= tool["end_s"] <= agent["end_s"]
    if expected.prompt_tokens is not None:
        assert call["usage"]["llm_prompt_tokens"] == expected.prompt_tokens

    tree = live.get(f"/api/v1/calls/{call['id']}/spans").json()
    assert len(tree["trace_ids"]) == expected.traces
    roots = sorted(tree["roots"], key=lambda r: r["offset_ms"])
    assert len(roots) == expected.traces
    # The call runs from the first root's start to the last one's end, whichever trace they are in.
    assert call["started_at"] == roots[0]["start"]
    assert datetime.fromisoformat(call["ended_at"]) == max(datetime.fromisoformat(r["end"]) for r in roots)
