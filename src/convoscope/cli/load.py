"""``convoscope load --agent NAME --ramp 10..200``: rising concurrency against an agent.

Scripted callers from the definitions (``--suite``, default: every scripted scenario) call the agent at
each step of the ramp for ``--step-s`` seconds. For a voice agent the table shows, per step, what the
recordings measured (response gap percentiles, time to first audio, barge-in stop time), errors and
dropped calls, and the simulator's own pacing jitter and CPU; for a chat agent, the agent's turn
latency and errors. Each step is compared with the first in the JSON report. ``--json`` writes the
chart-ready report. Exit status: 0 when every call completed, 1 when any errored or was dropped, 2 on a
bad definition or option.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ._shared import fail

__all__ = ["load_command"]

console = Console()


def _fmt(value: Any, scale: float = 1.0, unit: str = "") -> str:
    return "–" if value is None else f"{value * scale:.0f}{unit}"


def print_load(report: dict[str, Any]) -> None:
    """One row per step."""
    from rich.table import Table

    voice = report.get("mode", "voice") == "voice"
    table = Table(title=f"{report['mode']} load against {report['agent']} ({report['step_s']:g} s per step)")
    latency = "gap" if voice else "turn latency"
    columns = ["callers", "calls", "errored", f"{latency} p50", f"{latency} p95", f"{latency} p99"]
    if voice:
        columns += ["dropped", "first audio p50", "barge-in stop p50", "jitter p99"]
    for column in (*columns, "sim CPU"):
        table.add_column(column, justify="right")
    for step in report["steps"]:
        times = step["response_gap_s" if voice else "turn_latency_s"]
        row = [str(step["concurrency"]), str(step["calls"]), str(step["errored"])]
        row += [_fmt(times[q], 1000, " ms") for q in ("p50", "p95", "p99")]
        if voice:
            row += [
                str(step["dropped"]),
                _fmt(step["time_to_first_audio_s"]["p50"], 1000, " ms"),
                _fmt(step["barge_in_stop_s"]["p50"], 1000, " ms"),
                f"{step['pacing_jitter_ms']['p99'] or 0:.1f} ms",
            ]
        table.add_row(*row, f"{step['simulator_cpu_pct'] or 0:.0f} %")
    console.print(table)
    if voice:
        console.print(
            f"all recordings analysed {report['analysis_s']:.1f} s after the last call", highlight=False
        )


async def _chat(
    connector: Any,
    spec: Any,
    scenarios: list[Any],
    personas: list[Any],
    levels: list[int],
    step_s: float,
    landed: Any,
) -> Any:
    """A chat agent's ramp, with the configured LLM for unscripted callers."""
    from ..config import load_settings
    from ..evals.llm import JudgeClient, JudgeConfig
    from ..simulate.load_chat import run_chat_load

    config = JudgeConfig.from_settings(load_settings())
    llm = JudgeClient(config) if config is not None else None
    try:
        return await run_chat_load(
            connector, spec, scenarios, personas, levels, step_s=step_s, llm=llm, on_call=landed
        )
    finally:
        await connector.aclose()
        if llm is not None:
            llm.close()


def load_command(
    agent: Annotated[str, typer.Option("--agent", help="An agent id from the definitions.")],
    ramp: Annotated[
        str, typer.Option("--ramp", help="Concurrency from LOW to HIGH, e.g. 10..200.")
    ] = "10..50",
    step_s: Annotated[float, typer.Option("--step-s", help="Seconds each step lasts.", min=1.0)] = 30.0,
    steps: Annotated[int | None, typer.Option(help="Evenly spaced steps instead of doubling.", min=1)] = None,
    suite: Annotated[str | None, typer.Option(help="Take the scenarios and personas of this suite.")] = None,
    defs: Annotated[
        list[Path] | None, typer.Option("--defs", help="Definition files or folders (repeatable).")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the chart-ready report here.")
    ] = None,
) -> None:
    """Load-test an agent at rising concurrency: voice calls measured from their recordings, or chat
    conversations timed per agent turn."""
    from ..errors import ConvoscopeError
    from ..simulate.connectors.registry import connector_from_config
    from ..simulate.loader import load_definitions
    from ..simulate.ramp import parse_ramp
    from ..simulate.voice.connector import VoiceConnector
    from ..simulate.voice.load import run_load

    try:
        levels = parse_ramp(ramp, steps=steps)
        definitions = load_definitions(defs or [Path("simulation")])
        spec = definitions.agents.get(agent)
        if spec is None:
            fail(f"unknown agent {agent!r} (agents: {', '.join(sorted(definitions.agents)) or 'none'})")
        connector = connector_from_config(spec.connector.kind, spec.connector.settings())
        if suite is not None:
            chosen = definitions.suites.get(suite)
            if chosen is None:
                fail(f"unknown suite {suite!r}")
            scenarios = [definitions.scenarios[s] for s in chosen.scenarios]
            personas = [definitions.personas[p] for p in chosen.personas]
        else:
            scenarios = [s for s in definitions.scenarios.values() if s.script is not None]
            personas = [definitions.personas["neutral"]]
        done = {"calls": 0, "shown": time.monotonic()}

        def landed(level: int, _: object) -> None:
            done["calls"] += 1
            if time.monotonic() - done["shown"] >= 2.0:  # a live line every 2 s, not per conversation
                done["shown"] = time.monotonic()
                console.print(f"  {level} at once: {done['calls']:.0f} conversations done", highlight=False)

        if isinstance(connector, VoiceConnector):
            coroutine = run_load(connector, spec, scenarios, personas, levels, step_s=step_s, on_call=landed)
        else:
            coroutine = _chat(connector, spec, scenarios, personas, levels, step_s, landed)
        report = asyncio.run(coroutine).to_json()
    except (ConvoscopeError, ValueError) as exc:
        fail(str(exc))
    print_load(report)
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if any(step["errored"] for step in report["steps"]):
        raise typer.Exit(1)
