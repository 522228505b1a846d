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
import gc
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...audio.load import load_recording
from ...audio.report import AnalysisParams, analyze_audio
from ...model import Role
from ..callers import ScriptedCaller
from ..definitions import AgentSpec, Persona, Scenario
from .conditions import reference_level
from .connector import VoiceConnector, new_call_info
from .conversation import conditions_for, wav_bytes
from .session import VoiceCallResult, run_voice_call
from .speech import render_line, render_speech

__all__ = ["LoadReport", "StepResult", "parse_ramp", "run_load"]

DIAL_RATE = 50.0
"""New calls a second at the start of a step (the ramp's arrival rate)."""
_DROPPED_KINDS = {"unreachable", "malformed_reply", "protocol_error"}


def parse_ramp(text: str, *, steps: int | None = None) -> list[int]:
    """``"10..200"`` as concurrency levels: doubling from the low end, the high end last (``steps``
    spaces them evenly instead); a single number is one step. ``ValueError`` naming the problem."""
    low_text, sep, high_text = text.partition("..")
    try:
        low = int(low_text)
        high = int(high_text) if sep else low
    except ValueError:
        raise ValueError(f"ramp {text!r}: expected LOW..HIGH, e.g. 10..200") from None
    if low < 1 or high < low or high > 5000:
        raise ValueError(f"ramp {text!r}: need 1 <= LOW <= HIGH <= 5000")
    if steps is not None:
        if steps < 1:
            raise ValueError("steps must be at least 1")
        if steps == 1 or low == high:
            return [high]
        return sorted({round(low + (high - low) * i / (steps - 1)) for i in range(steps)})
    levels = [low]
    while levels[-1] * 2 < high:
        levels.append(levels[-1] * 2)
    if levels[-1] != high:
        levels.append(high)
    return levels


def _pct(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(np.asarray(values), q)), 4) if len(values) else None


@dataclass
class StepResult:
    """One step of the ramp."""

    concurrency: int
    results: list[VoiceCallResult] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    started: float = 0.0
    """``time.monotonic()`` when the step began (ended: ``started + wall_s``)."""
    gaps_s: list[float] = field(default_factory=list)
    barge_in_stop_s: list[float] = field(default_factory=list)

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
                "p50": _pct(self.gaps_s, 50),
                "p95": _pct(self.gaps_s, 95),
                "p99": _pct(self.gaps_s, 99),
            },
            "responses": len(self.gaps_s),
            "time_to_first_audio_s": {"p50": _pct(first, 50), "p95": _pct(first, 95)},
            "barge_in_stop_s": {"p50": _pct(self.barge_in_stop_s, 50), "p95": _pct(self.barge_in_stop_s, 95)},
            "barge_ins": len(self.barge_in_stop_s),
            "pacing_jitter_ms": {
                "p50": _pct(lateness, 50),
                "p99": _pct(lateness, 99),
                "max": _pct(lateness, 100),
            },
            "simulator_cpu_pct": round(100 * self.cpu_s / self.wall_s, 1) if self.wall_s else None,
            "wall_s": round(self.wall_s, 2),
        }


@dataclass
class LoadReport:
    """Every step, and how long the analysis of all recordings took after the last call."""

    agent_id: str
    steps: list[StepResult]
    step_s: float
    analysis_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        steps = [step.summary() for step in self.steps]
        base = steps[0] if steps else None

        def ratio(step: dict[str, Any], key: str, q: str) -> float | None:
            if base is None:
                return None
            now, then = step[key][q], base[key][q]
            return round(now / then, 3) if now is not None and then else None

        for step in steps:
            step["vs_baseline"] = {
                "response_gap_p95": ratio(step, "response_gap_s", "p95"),
                "time_to_first_audio_p50": ratio(step, "time_to_first_audio_s", "p50"),
                "pacing_jitter_p99": ratio(step, "pacing_jitter_ms", "p99"),
            }
        return {
            "agent": self.agent_id,
            "step_s": self.step_s,
            "analysis_s": round(self.analysis_s, 2),
            "steps": steps,
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
        step = StepResult(level, started=time.monotonic())
        deadline = time.monotonic() + step_s
        cpu0, wall0 = time.process_time(), time.monotonic()

        spread = min(step_s / 4, level / DIAL_RATE)

        async def caller(worker: int) -> None:
            # Starts are spread (at most DIAL_RATE new calls a second): real callers do not all dial on
            # the same millisecond, and a burst of handshakes would stall the calls already talking.
            await asyncio.sleep(spread * worker / level)
            while time.monotonic() < deadline:
                result = await self.call()
                step.results.append(result)
                if self.on_call is not None:
                    self.on_call(level, result)
                if result.error is not None and result.first_audio_s is None:
                    await asyncio.sleep(0.5)  # a refused call is not redialled in a tight loop

        await asyncio.gather(*(caller(i) for i in range(level)))
        step.wall_s = time.monotonic() - wall0
        step.cpu_s = time.process_time() - cpu0
        return step


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
    report = LoadReport(agent.id, [], step_s)
    for level in levels:
        report.steps.append(await ramp.step(level, step_s))
    started = time.monotonic()
    chosen = params or AnalysisParams()
    for step in report.steps:
        for result in step.results:
            gaps, stops = await asyncio.to_thread(analyse, result, chosen)
            step.gaps_s.extend(gaps)
            step.barge_in_stop_s.extend(stops)
    report.analysis_s = time.monotonic() - started
    return report
