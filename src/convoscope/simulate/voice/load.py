"""Load tests: scripted voice callers at rising concurrency, measured from the recordings.

A ramp (``10..200``) is a list of steps; at each step ``N`` callers are kept on the line for ``step_s``
seconds (a closed model: a caller whose call ends dials again until the step's time is up; calls still
on the line at the end finish and count for that step). Callers are scripted and their speech is
rendered before the first call, so the simulator's own work per frame is encoding and sending.

Every figure is measured, not claimed by the agent: after the last call, every recording goes through
the project's turn-taking analysis and the step reports the caller→agent response gaps (p50/p95/p99),
how long the agent kept talking after a barge-in, time to first audio, errors and dropped calls (a
stream that failed or closed mid-call), and the simulator's own pacing jitter (how late its frames went
out), each beside the first step's as the baseline. The report is a plain JSON document, chart-ready:
one object per step.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...audio.load import load_recording
from ...audio.report import AnalysisParams, analyze_audio
from ...model import Role
from ..callers import ScriptedCaller
from ..definitions import AgentSpec, Persona, Scenario
from ..ramp import Held, LoadReport, hold, percentile
from .conditions import reference_level
from .connector import VoiceConnector, new_call_info
from .conversation import conditions_for, wav_bytes
from .session import VoiceCallResult, run_voice_call
from .speech import render_line, render_speech

__all__ = ["StepResult", "run_load"]

_DROPPED_KINDS = {"unreachable", "malformed_reply", "protocol_error"}


@dataclass
class StepResult:
    """One step of the ramp: its calls, and what their recordings measured."""

    held: Held[VoiceCallResult]
    gaps_s: list[float] = field(default_factory=list)
    barge_in_stop_s: list[float] = field(default_factory=list)

    @property
    def concurrency(self) -> int:
        return self.held.concurrency

    @property
    def results(self) -> list[VoiceCallResult]:
        return self.held.results

    def summary(self) -> dict[str, Any]:
        lateness = [x * 1000 for r in self.results for x in r.lateness_s]
        first = [r.first_audio_s for r in self.results if r.first_audio_s is not None]
        errors = Counter(r.error_kind for r in self.results if r.error is not None)
        return {
            "concurrency": self.concurrency,
            "calls": len(self.results),
            "completed": sum(1 for r in self.results if r.error is None),
            "errored": sum(errors.values()),
            "dropped": sum(n for kind, n in errors.items() if kind in _DROPPED_KINDS),
            "errors": dict(errors),
            "response_gap_s": {
                "p50": percentile(self.gaps_s, 50),
                "p95": percentile(self.gaps_s, 95),
                "p99": percentile(self.gaps_s, 99),
            },
            "responses": len(self.gaps_s),
            "time_to_first_audio_s": {"p50": percentile(first, 50), "p95": percentile(first, 95)},
            "barge_in_stop_s": {
                "p50": percentile(self.barge_in_stop_s, 50),
                "p95": percentile(self.barge_in_stop_s, 95),
            },
            "barge_ins": len(self.barge_in_stop_s),
            "pacing_jitter_ms": {
                "p50": percentile(lateness, 50),
                "p99": percentile(lateness, 99),
                "max": percentile(lateness, 100),
            },
            "simulator_cpu_pct": self.held.cpu_pct,
            "wall_s": round(self.held.wall_s, 2),
        }


def _prerender(scenarios: Sequence[Scenario], personas: Sequence[Persona]) -> None:
    """Render every scripted line in every persona's voice now, so no call waits on espeak-ng."""
    for persona in personas:
        conditions = conditions_for(persona, seed=0)
        reference_level(conditions.voice)
        render_speech(conditions.behaviour.backchannel_text, conditions.voice)
        for scenario in scenarios:
            script = scenario.script
            if script is None:
                raise ValueError(f"scenario {scenario.id!r} has no script: load tests use scripted callers")
            texts = [script.opening, *script.lines, *(r.say for r in script.replies), script.closing, "Bye."]
            for text in texts:
                if text:
                    render_line(text, conditions.voice, hesitant=conditions.hesitant)


def analyse(result: VoiceCallResult, params: AnalysisParams) -> tuple[list[float], list[float]]:
    """Response gaps (caller → agent) and barge-in stop times of one call, from its recording."""
    if len(result.stereo) == 0:
        return [], []
    audio = load_recording(wav_bytes(result), channel_map={0: Role.USER, 1: Role.AGENT})
    events = analyze_audio(audio, call_id="load", params=params).events
    if events is None:
        return [], []
    gaps = [
        round(g.interval[1] - g.interval[0], 4)
        for g in events.gaps
        if g.from_role == Role.USER and g.to_role == Role.AGENT
    ]
    stops = [
        round(i.overlap[1] - i.onset_s, 4)
        for i in events.interruptions
        if i.interrupter == Role.USER and i.interrupted == Role.AGENT
    ]
    return gaps, stops


@dataclass
class _Ramp:
    """The callers of a load test: which scenario and persona each next call takes."""

    connector: VoiceConnector
    agent: AgentSpec
    combos: list[tuple[Scenario, Persona]]
    on_call: Callable[[int, VoiceCallResult], None] | None
    counter: int = 0

    async def call(self) -> VoiceCallResult:
        self.counter += 1
        scenario, persona = self.combos[self.counter % len(self.combos)]
        assert scenario.script is not None
        return await run_voice_call(
            self.connector.url,
            self.connector.new_protocol(),
            ScriptedCaller(scenario.script),
            conditions_for(persona, seed=self.counter),
            new_call_info(self.connector.custom_parameters),
            agent_speaks_first=self.agent.speaks_first,
            max_lines=scenario.max_turns,
            connect_timeout_s=self.connector.connect_timeout_s,
            headers=self.connector.headers,
        )

    async def step(self, level: int, step_s: float) -> StepResult:
        """``level`` callers on the line for ``step_s`` seconds (redialling), then their calls' end."""
        held = await hold(
            level,
            step_s,
            self.call,
            refused=lambda r: r.error is not None and r.first_audio_s is None,
            on_result=None if self.on_call is None else functools.partial(self.on_call, level),
        )
        return StepResult(held)


async def run_load(
    connector: VoiceConnector,
    agent: AgentSpec,
    scenarios: Sequence[Scenario],
    personas: Sequence[Persona],
    levels: Sequence[int],
    *,
    step_s: float,
    on_call: Callable[[int, VoiceCallResult], None] | None = None,
    params: AnalysisParams | None = None,
) -> LoadReport:
    """Run the ramp and analyse every recording; ``on_call(concurrency, result)`` sees each call land."""
    if not scenarios or not personas:
        raise ValueError("a load test needs at least one scripted scenario and one persona")
    _prerender(scenarios, personas)
    # Everything allocated so far lives for the whole test: keeping it out of the collector's scans
    # shortens the pauses a collection puts into every call's 20 ms pacing.
    gc.collect()
    gc.freeze()
    ramp = _Ramp(connector, agent, [(s, p) for s in scenarios for p in personas], on_call)
    steps = [await ramp.step(level, step_s) for level in levels]
    started = time.monotonic()
    chosen = params or AnalysisParams()
    for step in steps:
        for result in step.results:
            gaps, stops = await asyncio.to_thread(analyse, result, chosen)
            step.gaps_s.extend(gaps)
            step.barge_in_stop_s.extend(stops)
    return LoadReport(agent.id, steps, step_s, analysis_s=time.monotonic() - started)
