"""``convoscope load --agent NAME --ramp 10..200``: rising concurrency against a voice agent.

Scripted callers from the definitions (``--suite``, default: every scripted scenario) call the agent at
each step of the ramp for ``--step-s`` seconds; the table shows, per step, what the recordings measured
(response gap percentiles, time to first audio, barge-in stop time), errors and dropped calls, and the
simulator's own pacing jitter and CPU, each step beside the first as its baseline. ``--json`` writes the
chart-ready report. Exit status: 0 when every call completed, 1 when any errored or was dropped, 2 on a
bad definition or option.
"""

from __future__ import annotations

import asyncio
import json
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

    table = Table(title=f"load against {report['agent']} ({report['step_s']:g} s per step)")
    columns = ("callers", "calls", "errored", "dropped", "gap p50", "gap p95", "gap p99", "first audio p50")
    for column in (*columns, "barge-in stop p50", "jitter p99", "sim CPU"):
        table.add_column(column, justify="right")
    for step in report["steps"]:
        gap, first = step["response_gap_s"], step["time_to_first_audio_s"]
        table.add_row(
            str(step["concurrency"]),
            str(step["calls"]),
            str(step["errored"]),
            str(step["dropped"]),
            _fmt(gap["p50"], 1000, " ms"),
            _fmt(gap["p95"], 1000, " ms"),
            _fmt(gap["p99"], 1000, " ms"),
            _fmt(first["p50"], 1000, " ms"),
            _fmt(step["barge_in_stop_s"]["p50"], 1000, " ms"),
            f"{step['pacing_jitter_ms']['p99'] or 0:.1f} ms",
            f"{step['simulator_cpu_pct'] or 0:.0f} %",
        )
    console.print(table)
    console.print(
        f"all recordings analysed {report['analysis_s']:.1f} s after the last call", highlight=False
    )


def load_command(
    agent: Annotated[str, typer.Option("--agent", help="A voice agent id from the definitions.")],
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
    """Load-test a voice agent with scripted callers at rising concurrency, measured from the recordings."""
    from ..errors import ConvoscopeError
    from ..simulate.connectors.registry import connector_from_config
    from ..simulate.loader import load_definitions
    from ..simulate.voice.connector import VoiceConnector
    from ..simulate.voice.load import parse_ramp, run_load

    try:
        levels = parse_ramp(ramp, steps=steps)
        definitions = load_definitions(defs or [Path("simulation")])
        spec = definitions.agents.get(agent)
        if spec is None:
            fail(f"unknown agent {agent!r} (agents: {', '.join(sorted(definitions.agents)) or 'none'})")
        connector = connector_from_config(spec.connector.kind, spec.connector.settings())
        if not isinstance(connector, VoiceConnector):
            fail(
                f"agent {agent!r} is reached over {spec.connector.kind!r}: load tests need a voice connector"
            )
        if suite is not None:
            chosen = definitions.suites.get(suite)
            if chosen is None:
                fail(f"unknown suite {suite!r}")
            scenarios = [definitions.scenarios[s] for s in chosen.scenarios]
            personas = [definitions.personas[p] for p in chosen.personas]
        else:
            scenarios = [s for s in definitions.scenarios.values() if s.script is not None]
            personas = [definitions.personas["neutral"]]
        done = {"calls": 0}

        def landed(level: int, result: Any) -> None:
            done["calls"] += 1
            if done["calls"] % 10 == 0:
                console.print(f"  {level} callers: {done['calls']} calls done", highlight=False)

        report = asyncio.run(
            run_load(connector, spec, scenarios, personas, levels, step_s=step_s, on_call=landed)
        ).to_json()
    except (ConvoscopeError, ValueError) as exc:
        fail(str(exc))
    print_load(report)
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if any(step["errored"] for step in report["steps"]):
        raise typer.Exit(1)
