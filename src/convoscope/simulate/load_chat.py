"""Chat load: a suite's conversations at rising concurrency, timed per agent turn.

The same ramp as a voice load test (:mod:`.ramp`), for an agent reached by a chat connector: at each step
``N`` conversations are kept going for the step's time, each a normal simulated conversation (scripted
or LLM caller, the scenario's tool mocks), and the step reports the agent's turn latency as the
simulator measured it (time from the message sent to the reply received: p50, p95, p99), conversations
completed and errored by kind, and the simulator's own CPU, each beside the first step.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ..evals.llm import JudgeClient
from ..model import Role
from .callers import caller_for
from .connectors.base import Connector
from .conversation import Outcome, converse
from .definitions import AgentSpec, Persona, Scenario
from .ramp import Held, LoadReport, hold, percentile
from .tools import ToolAnswerer

__all__ = ["ChatStep", "run_chat_load"]


@dataclass
class ChatStep:
    """One step: its conversations."""

    held: Held[Outcome]

    @property
    def concurrency(self) -> int:
        return self.held.concurrency

    def summary(self) -> dict[str, Any]:
        outcomes = self.held.results
        latencies = [
            turn.e2e_s
            for outcome in outcomes
            for turn in outcome.call.turns
            if turn.role == Role.AGENT and turn.e2e_s is not None
        ]
        errors = Counter(o.error_kind for o in outcomes if o.status == "errored")
        return {
            "concurrency": self.concurrency,
            "calls": len(outcomes),
            "completed": sum(1 for o in outcomes if o.status == "completed"),
            "errored": sum(errors.values()),
            "errors": dict(errors),
            "turn_latency_s": {q: percentile(latencies, int(q[1:])) for q in ("p50", "p95", "p99")},
            "turns": len(latencies),
            "simulator_cpu_pct": self.held.cpu_pct,
            "wall_s": round(self.held.wall_s, 2),
        }


async def run_chat_load(
    connector: Connector,
    agent: AgentSpec,
    scenarios: Sequence[Scenario],
    personas: Sequence[Persona],
    levels: Sequence[int],
    *,
    step_s: float,
    llm: JudgeClient | None = None,
    on_call: Callable[[int, Outcome], None] | None = None,
) -> LoadReport:
    """Run the ramp; every conversation's caller is the scenario's (scripted when it has a script)."""
    if not scenarios or not personas:
        raise ValueError("a load test needs at least one scenario and one persona")
    combos = [(s, p) for s in scenarios for p in personas]
    for scenario, persona in combos:
        caller_for(scenario, persona, "auto", llm)  # refuses an unscripted scenario without an LLM, now
    run_id = f"load-{int(time.time())}"
    counter = 0
    tool_client = httpx.AsyncClient(timeout=30.0) if agent.tools_url else None

    async def start() -> Outcome:
        nonlocal counter
        counter += 1
        scenario, persona = combos[counter % len(combos)]
        return await converse(
            connector,
            agent,
            scenario,
            persona,
            caller_for(scenario, persona, "auto", llm),
            ToolAnswerer(scenario, agent.tools_url, tool_client),
            run_id=run_id,
            iteration=counter,
            caller_kind="scripted" if scenario.script is not None else "llm",
        )

    steps: list[ChatStep] = []
    try:
        for level in levels:
            held = await hold(
                level,
                step_s,
                start,
                refused=lambda o: o.error_kind == "unreachable",
                on_result=None if on_call is None else functools.partial(on_call, level),
            )
            steps.append(ChatStep(held))
    finally:
        if tool_client is not None:
            await tool_client.aclose()
    return LoadReport(agent.id, steps, step_s, mode="chat")
