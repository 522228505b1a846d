"""Latency thresholds, per agent turn and per call.

A turn's latency is the platform's end-to-end figure when it reports one, else the transcript gap from
the end of the caller's turn to the start of the agent's reply. The call's percentiles come from the
audio (stereo VAD) results when they were computed, since those are what the caller heard.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ...audio.metrics import RESPONSE_GAP_P50, RESPONSE_GAP_P95
from ...model.call import Call
from ...model.enums import Modality, Role
from ...model.metric import MetricResult
from ...model.modality import modality_of
from ..base import EvalContext, RuleMetric
from ..registry import register
from ._stats import percentile, stored_number

__all__ = ["Latency", "LatencyParams", "turn_latencies"]

_DIGITS = 3


class LatencyParams(BaseModel):
    """Thresholds in seconds; None switches a check off."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    turn_max_s: float | None = Field(default=3.0, gt=0.0)
    """A reply slower than this is a slow turn."""
    max_slow_turns: int = Field(default=0, ge=0)
    """Slow turns tolerated before the call fails."""
    p50_max_s: float | None = Field(default=2.0, gt=0.0)
    """Highest passing median latency of the call."""
    p95_max_s: float | None = Field(default=4.0, gt=0.0)
    """Highest passing 95th-percentile latency of the call."""
    prefer_audio: bool = True
    """Take the call's percentiles from stored audio results when they exist."""


def turn_latencies(call: Call) -> list[tuple[int, float, str]]:
    """(agent turn index, seconds, source) for each agent turn answering a caller turn.

    On a text chat only measured latencies count (the reply's end-to-end time, else its time to first
    token): its turns' times are when messages were logged, so their gap is not a wait anyone had.
    """
    chat = modality_of(call) is Modality.CHAT
    found: list[tuple[int, float, str]] = []
    previous = None
    for turn in sorted(call.turns, key=lambda t: (t.start_s, t.index)):
        if turn.role is Role.AGENT:
            if turn.e2e_s is not None:
                found.append((turn.index, turn.e2e_s, "vendor"))
            elif chat:
                if turn.llm_ttft_s is not None:
                    found.append((turn.index, turn.llm_ttft_s, "ttft"))
            elif previous is not None and previous.role is Role.USER:
                found.append((turn.index, max(0.0, turn.start_s - previous.end_s), "transcript"))
        if turn.role in (Role.AGENT, Role.USER):
            previous = turn
    return found


@register
class Latency(RuleMetric[LatencyParams]):
    """Median response latency of the call, checked against per-turn and per-call thresholds."""

    name = "latency"
    version = "2"
    params_model = LatencyParams
    description = (
        "Median seconds from the end of the caller's turn to the agent's reply (platform figure, else "
        "transcript gap; audio percentiles when computed); fails on slow turns or a slow p50/p95."
    )

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        per_turn = turn_latencies(call)
        audio_p50 = stored_number(context.scores, RESPONSE_GAP_P50) if self.params.prefer_audio else None
        audio_p95 = stored_number(context.scores, RESPONSE_GAP_P95) if self.params.prefer_audio else None
        if audio_p50 is not None:
            p50, p95, source = audio_p50, audio_p95, "audio"
        elif per_turn:
            seconds = [s for _, s, _ in per_turn]
            p50, p95 = percentile(seconds, 50), percentile(seconds, 95)
            source = "+".join(sorted({src for _, _, src in per_turn}))
        else:
            return self.result(call, value=None, evidence={"not_scorable": "no agent reply with a latency"})
        limit = self.params.turn_max_s
        slow: list[JsonValue] = [
            {"turn_index": index, "latency_s": round(s, _DIGITS), "source": src}
            for index, s, src in per_turn
            if limit is not None and s > limit
        ]
        failures: list[JsonValue] = []
        if len(slow) > self.params.max_slow_turns:
            failures.append(f"{len(slow)} slow turns > {self.params.max_slow_turns} allowed")
        if self.params.p50_max_s is not None and p50 > self.params.p50_max_s:
            failures.append(f"p50 {p50:.3f}s > {self.params.p50_max_s}s")
        if self.params.p95_max_s is not None and p95 is not None and p95 > self.params.p95_max_s:
            failures.append(f"p95 {p95:.3f}s > {self.params.p95_max_s}s")
        evidence: dict[str, JsonValue] = {
            "source": source,
            "p50_s": round(p50, _DIGITS),
            "p95_s": None if p95 is None else round(p95, _DIGITS),
            "turns": len(per_turn),
            "slow_turns": slow,
            "failures": failures,
        }
        return self.result(call, value=round(p50, _DIGITS), passed=not failures, evidence=evidence)
