"""Simulation at scale: scripted callers against the local reference agent, on this machine's cores.

The reference agent runs in its own process (``convoscope reference-agent``), as an agent under test
would; the simulator runs here, one event loop. Measured, in the same run:

* **reference**: the simulator process's CPU per bare chat request (an ``httpx.AsyncClient`` POSTing a
  fixed conversation at the same concurrency) -- what any client pays per agent turn;
* **suites** of 100, 300 and 1,000 booking conversations (scripted caller, tool calls passed through to
  the agent's own tool endpoint), each scored by the default evaluators plus the scenario's checks:
  wall time to finished-and-scored, conversations per second, agent turns, the simulator's CPU per agent
  turn and per request to the agent, its ratio to a bare request, the overhead (the simulator's CPU per
  request beyond a bare request's: callers, tool answers, transcript, calls; goal ≤ 2 ms per turn), and
  the evaluators' CPU per conversation;
* **in flight**: 600 conversations at once against the agent with its ``slow_tool`` fault (every reply
  after a tool result held 2 s), so each conversation stays open; the most in flight at any moment
  (goal ≥ 500) and that none errored.

Run: ``uv run python benchmarks/simulation.py`` (about 2 minutes; ``--quick`` for 100 and 300 only).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import environment, free_port, print_environment, print_table, wait_healthy, write_json
from convoscope.evals.scenario import ScenarioChecks
from convoscope.model import MetricResult
from convoscope.simulate.connectors.base import AgentSession, Connector
from convoscope.simulate.connectors.openai_chat import OpenAIChatConnector
from convoscope.simulate.definitions import (
    AgentSpec,
    ConnectorSpec,
    Definitions,
    Scenario,
    Script,
    ScriptReply,
    Suite,
    UnmockedTools,
)
from convoscope.simulate.runner import default_scorer, plan, run_suite

SIZES = (100, 300, 1000)
CONCURRENCY = 100
IN_FLIGHT = 600
IN_FLIGHT_SLOW_S = 2.0
GOAL_OVERHEAD_MS = 2.0
GOAL_IN_FLIGHT = 500
GOAL_1000_S = 60.0
BOOKING = Scenario(
    id="book-cleaning",
    goal="Book a cleaning on Tuesday at 3 pm.",
    facts={"name": "Dana Reyes", "phone": "555 0100"},
    script=Script(
        lines=["I'd like to book a cleaning."],
        replies=[
            ScriptReply(when=r"anything else", say="No, that's all. Thanks, bye.", hang_up=True),
            ScriptReply(when=r"\b(day|date|when)\b", say="Tuesday at 3 pm."),
            ScriptReply(when=r"\bname\b", say="Dana Reyes."),
            ScriptReply(when=r"\b(phone|number)\b", say="555 0100."),
        ],
    ),
    checks=ScenarioChecks.model_validate({"required_tools": [{"tool": "book_appointment"}]}),
    unmocked_tools=UnmockedTools.PASS_THROUGH,
    max_turns=12,
)


@contextmanager
def agent_process(*, faults: Sequence[str] = (), slow_s: float = 2.0) -> Iterator[str]:
    """``convoscope reference-agent`` on a free port; yields its root URL."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "convoscope",
        "reference-agent",
        "--port",
        str(port),
        "--slow-s",
        str(slow_s),
    ]
    for fault in faults:
        command += ["--fault", fault]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_healthy(process, url, timeout_s=60):
            raise RuntimeError(
                f"reference agent did not start: {process.stderr.read() if process.stderr else ''}"
            )
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _agent(url: str) -> AgentSpec:
    connector = ConnectorSpec.model_validate(
        {"kind": "openai", "base_url": f"{url}/v1", "model": "reference-agent"}
    )
    return AgentSpec(id="reference", version="bench", connector=connector, tools_url=f"{url}/tools")


async def _bare_requests(url: str, count: int, concurrency: int) -> float:
    """Simulator-side CPU seconds per bare chat request at ``concurrency``."""
    body = {
        "model": "reference-agent",
        "messages": [{"role": "user", "content": "I'd like to book a cleaning."}],
    }
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one() -> None:
            async with gate:
                response = await client.post(f"{url}/v1/chat/completions", json=body)
                response.raise_for_status()

        await one()
        started = time.process_time()
        await asyncio.gather(*(one() for _ in range(count)))
        return (time.process_time() - started) / count


class _Counting:
    """A connector wrapper that counts conversations open at once."""

    def __init__(self, inner: Connector) -> None:
        self.inner = inner
        self.open_now = 0
        self.most = 0
        self.requests = 0

    async def open(self, conversation_id: str) -> AgentSession:
        session = await self.inner.open(conversation_id)
        self.open_now += 1
        self.most = max(self.most, self.open_now)
        counter = self

        class _Session:
            async def respond(self, history: Any, new: Any, *, timeout_s: float) -> Any:
                counter.requests += 1
                return await session.respond(history, new, timeout_s=timeout_s)

            async def close(self) -> None:
                counter.open_now -= 1
                await session.close()

        return _Session()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _suite(url: str, conversations: int, concurrency: int) -> dict[str, Any]:
    agent = _agent(url)
    suite = Suite(id="bench", scenarios=[BOOKING.id], personas=["neutral"], iterations=conversations)
    definitions = Definitions(scenarios={BOOKING.id: BOOKING}, agents={agent.id: agent})
    base = default_scorer(suite)
    scoring = [0.0]

    def scorer(call: Any) -> list[MetricResult]:
        started = time.thread_time()
        try:
            return base(call)
        finally:
            scoring[0] += time.thread_time() - started

    connector = _Counting(
        OpenAIChatConnector(f"{url}/v1", model="reference-agent", max_connections=concurrency)
    )
    wall = time.perf_counter()
    cpu = time.process_time()
    try:
        report = await run_suite(
            definitions,
            suite,
            agent,
            connector,
            scorer=scorer,
            concurrency=concurrency,
            items=plan(definitions, suite),
        )
    finally:
        await connector.aclose()
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    turns = sum(sum(1 for t in r.outcome.call.turns if t.role.value == "agent") for r in report.results)
    totals = report.totals()
    return {
        "conversations": conversations,
        "wall_s": wall,
        "per_s": conversations / wall,
        "agent_turns": turns,
        "simulator_cpu_per_turn_ms": (cpu - scoring[0]) / turns * 1000,
        "requests": connector.requests,
        "simulator_cpu_per_request_ms": (cpu - scoring[0]) / connector.requests * 1000,
        "scoring_cpu_per_conversation_ms": scoring[0] / conversations * 1000,
        "most_in_flight": connector.most,
        "passed": totals["passed"],
        "failed": totals["failed"],
        "errored": totals["errored"],
        "reasons": sorted({reason for r in report.results for reason in r.reasons})[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 and 300 conversations, no in-flight run")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    print_environment(environment())
    sizes = SIZES[:2] if args.quick else SIZES
    figures: dict[str, Any] = {"cpu_count": os.cpu_count()}
    with agent_process() as url:
        reference = asyncio.run(_bare_requests(url, 2000, CONCURRENCY))
        figures["bare_request_cpu_ms"] = reference * 1000
        runs = [asyncio.run(_suite(url, size, CONCURRENCY)) for size in sizes]
    figures["suites"] = runs
    rows = []
    for run in runs:
        ratio = run["simulator_cpu_per_request_ms"] / figures["bare_request_cpu_ms"]
        overhead = run["simulator_cpu_per_request_ms"] - figures["bare_request_cpu_ms"]
        run["overhead_per_request_ms"] = overhead
        rows.append(
            [
                run["conversations"],
                f"{run['wall_s']:.1f} s",
                f"{run['per_s']:.0f}",
                run["agent_turns"],
                f"{run['simulator_cpu_per_turn_ms']:.2f} ms",
                f"{run['simulator_cpu_per_request_ms']:.2f} ms",
                f"{ratio:.2f}×",
                f"{overhead:.2f} ms",
                f"{run['scoring_cpu_per_conversation_ms']:.2f} ms",
                f"{run['passed']}/{run['failed']}/{run['errored']}",
            ]
        )
    print(f"\nreference: simulator-side CPU per bare chat request {figures['bare_request_cpu_ms']:.2f} ms")
    print_table(
        [
            "conversations",
            "finished and scored",
            "conv/s",
            "agent turns",
            "simulator CPU / agent turn",
            "simulator CPU / request",
            "÷ bare request",
            "overhead / request",
            "evaluators CPU / conv",
            "passed/failed/errored",
        ],
        rows,
    )
    for run in runs:
        if run["reasons"]:
            print(f"  {run['conversations']}: {run['reasons']}")
    if not args.quick:
        with agent_process(faults=["slow_tool"], slow_s=IN_FLIGHT_SLOW_S) as url:
            flight = asyncio.run(_suite(url, IN_FLIGHT, IN_FLIGHT))
        figures["in_flight"] = flight
        print(
            f"\nin flight: {flight['most_in_flight']} conversations open at once (goal ≥ {GOAL_IN_FLIGHT}); "
            f"{IN_FLIGHT} finished in {flight['wall_s']:.1f} s with every reply after a tool held "
            f"{IN_FLIGHT_SLOW_S:.0f} s; {flight['errored']} errored"
        )
    largest = runs[-1]
    print(
        f"\ngoals: overhead ≤ {GOAL_OVERHEAD_MS} ms/turn: {largest['overhead_per_request_ms']:.2f} ms per "
        "request "
        f"over a bare request ({largest['simulator_cpu_per_turn_ms']:.2f} ms CPU per agent turn in all); "
        f"{largest['conversations']} conversations finished and scored in {largest['wall_s']:.1f} s "
        f"(goal for 1,000: < {GOAL_1000_S:.0f} s)"
    )
    if args.json:
        write_json(args.json, figures)


if __name__ == "__main__":
    main()
