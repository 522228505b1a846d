"""Builders of realistic canonical calls for the store tests."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from convoscope.model import (
    Call,
    CallSource,
    CostLine,
    Direction,
    EndReason,
    LatencyStats,
    Recording,
    Role,
    SimulationRef,
    ToolCall,
    Turn,
    Usage,
    Word,
)


def make_call(
    external_id: str,
    *,
    started_at: datetime,
    source: CallSource = CallSource.VAPI,
    agent_id: str | None = "agent-a",
    turns: int = 20,
    tools: int = 4,
    rng: random.Random | None = None,
    **overrides: object,
) -> Call:
    """A call with ``turns`` alternating user/agent turns (agent turns with latencies) and ``tools`` tools."""
    rng = rng or random.Random(external_id)
    built: list[Turn] = []
    at = 0.0
    for index in range(turns):
        role = Role.USER if index % 2 == 0 else Role.AGENT
        length = round(rng.uniform(0.5, 4.0), 3)
        agent = role is Role.AGENT
        built.append(
            Turn(
                index=index,
                role=role,
                text=f"turn {index} of {external_id}",
                start_s=round(at, 3),
                end_s=round(at + length, 3),
                e2e_s=round(rng.uniform(0.4, 2.5), 4) if agent else None,
                eou_s=round(rng.uniform(0.05, 0.4), 4) if agent else None,
                stt_s=round(rng.uniform(0.05, 0.3), 4) if agent else None,
                llm_ttft_s=round(rng.uniform(0.2, 1.0), 4) if agent else None,
                tts_ttfb_s=round(rng.uniform(0.1, 0.5), 4) if agent else None,
            )
        )
        at += length + 0.3
    tool_calls = [
        ToolCall(
            id=f"tc-{k}",
            turn_index=min(2 * k + 1, max(turns - 1, 0)) if turns else None,
            name=f"tool_{k % 3}",
            arguments={"order": k, "q": "status"},
            result={"ok": k % 4 != 3},
            success=k % 4 != 3,
            start_s=float(k),
            end_s=float(k) + 0.25,
        )
        for k in range(tools)
    ]
    fields: dict[str, object] = {
        "source": source,
        "external_id": external_id,
        "agent_id": agent_id,
        "started_at": started_at,
        "duration_s": round(at, 3),
        "end_reason": EndReason.USER_HANGUP,
        "turns": built,
        "tool_calls": tool_calls,
        "cost": [CostLine(product="llm", amount=round(rng.uniform(0.01, 0.2), 4))],
        "tags": ["prod"],
    }
    fields.update(overrides)
    return Call.model_validate(fields)


def rich_call(started_at: datetime) -> Call:
    """A call that sets every field of the model, including nested and optional parts."""
    return Call(
        source=CallSource.RETELL,
        external_id="rich-1",
        agent_id="agent-rich",
        agent_version="v7",
        direction=Direction.OUTBOUND,
        started_at=started_at,
        ended_at=started_at + timedelta(seconds=42.5),
        duration_s=42.5,
        end_reason=EndReason.TRANSFER,
        end_reason_raw="call_transfer",
        turns=[
            Turn(
                index=0,
                role=Role.AGENT,
                text="Hello, how can I help?",
                start_s=0.0,
                end_s=1.5,
                words=[
                    Word(word="Hello", start_s=0.0, end_s=0.4, confidence=0.98),
                    Word(word="how", start_s=0.5, end_s=0.7),
                ],
                e2e_s=0.9,
                eou_s=0.2,
                stt_s=0.1,
                llm_ttft_s=0.35,
                tts_ttfb_s=0.25,
            ),
            Turn(
                index=1,
                role=Role.USER,
                text="I need my order — ünïcode ✓",
                start_s=2.0,
                end_s=4.0,
                interrupted=True,
            ),
            Turn(index=5, role=Role.TOOL, text="", start_s=4.0, end_s=4.0),
        ],
        tool_calls=[
            ToolCall(
                id="t1",
                turn_index=1,
                name="lookup",
                arguments={"id": 5, "nested": {"a": [1, 2.5, None, True]}},
                result="found",
                success=True,
                start_s=4.0,
                end_s=4.2,
            ),
            ToolCall(id="t2", name="noop"),
        ],
        recordings=[
            Recording(
                uri=f"blob:{'a' * 64}",
                source_url="https://example.com/r.wav",
                format="wav",
                sample_rate=16000,
                channels=2,
                channel_map={0: Role.USER, 1: Role.AGENT},
                duration_s=42.5,
                sha256="a" * 64,
                vantage="platform",
                offset_s=-0.25,
            )
        ],
        vendor_latency={"llm": LatencyStats(p50_s=0.4, p90_s=0.8, count=3, values_s=[0.3, 0.4, 0.9])},
        cost=[
            CostLine(product="llm", amount=0.12, quantity=1000, unit="tokens", unit_price=0.00012),
            CostLine(product="tts", amount=0.05),
            CostLine(product="platform", amount=3.0, currency="credits"),
        ],
        usage=Usage(llm_prompt_tokens=900, llm_completion_tokens=100, audio_s=42.5, extra={"x": 1.5}),
        vendor_analysis={"summary": "ok", "success": True, "score": 0.7, "items": [1, "two"]},
        tags=["prod", "vip"],
        metadata={"customer": {"id": 12, "tier": None}},
        simulation=SimulationRef(run_id="run-1", scenario_id="sc-1", persona_id="p-1"),
    )
