"""Judge pipeline overhead: judge-metric evaluations per second against the fake server at concurrency 32.

A judge metric's cost should be the model's answer time and nothing else. This benchmark evaluates N
distinct calls with the ``expected_outcome`` judge metric through the real pipeline (the runner's thread
pool, the judge client with its concurrency bound, retries, schema validation; the cache off, so every
evaluation is one HTTP request) against ``FakeOpenAIServer`` running in a separate process, which answers
after a fixed delay that stands in for the model. Reference, in the same run: plain ``httpx`` posting the
same request bodies from 32 threads to the same server.

Reported, for a server delay of 0 (pure overhead) and of ``--delay-ms`` (a model-like wait):
- calls/s of the pipeline and of the reference, and their ratio;
- the share of the pipeline's per-evaluation time spent outside the HTTP wait (rendering the transcript,
  building the request, parsing and validating the reply, building the result);
- with the cache on, a second pass over the same calls (every answer a cache hit).

Run: ``uv run python benchmarks/judge_overhead.py`` (``--calls 512 --delay-ms 200 --json PATH``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import environment, print_environment, print_table, write_json
from convoscope.evals.base import AgentProfile, EvalContext, Metric
from convoscope.evals.judges import ExpectedOutcome
from convoscope.evals.llm import JudgeClient, JudgeConfig
from convoscope.evals.runner import evaluate_calls
from convoscope.model import Call, MetricResult
from convoscope.testing import make_call
from convoscope.testing.openai_server import FakeOpenAIServer, json_reply

CONCURRENCY = 32
REPLY = {"verdict": "pass", "reasoning": "The caller's order status was given.", "quotes": []}


def _serve(connection: Connection, delay_s: float) -> None:
    """The fake server's process: serve until told to stop."""
    with FakeOpenAIServer(default=json_reply(REPLY, delay_s=delay_s)) as server:
        connection.send(server.url)
        connection.recv()


class _Timed(Metric[Any]):
    """Wraps a metric to add up the time its evaluations take, per thread-safe counter."""

    def __init__(self, inner: Metric[Any]) -> None:
        super().__init__(inner.params)
        self.inner = inner
        self.name, self.version, self.kind = inner.name, inner.version, inner.kind  # type: ignore[misc]
        self.total_s = 0.0
        self._lock = threading.Lock()

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        started = time.perf_counter()
        try:
            return self.inner.evaluate(call, context)
        finally:
            with self._lock:
                self.total_s += time.perf_counter() - started


def _calls(count: int) -> list[Call]:
    turns = [
        {"role": "agent", "text": "Hello, how can I help you today?", "start_s": 0.4, "end_s": 2.2},
        {"role": "user", "text": "I'd like to check my order.", "start_s": 2.8, "end_s": 4.3},
        {"role": "agent", "text": "Sure, what is the order number?", "start_s": 5.2, "end_s": 6.9},
    ]
    return [
        make_call(
            id=f"bench-{n}",
            external_id=f"bench-{n}",
            turns=[*turns, {"role": "user", "text": f"It's {n}.", "start_s": 7.5, "end_s": 9.0}],
        )
        for n in range(count)
    ]


def _pipeline(url: str, calls: Sequence[Call], cache: Path | None, passes: int = 1) -> list[dict[str, float]]:
    config = JudgeConfig(base_url=url, model="bench", max_concurrency=CONCURRENCY, cache_path=cache)
    context_profile = AgentProfile(expected_outcome="The caller learns the status of their order.")
    figures: list[dict[str, float]] = []
    with JudgeClient(config) as client:
        context = EvalContext(profile=context_profile, judge=client)
        for _ in range(passes):
            timed = _Timed(ExpectedOutcome())
            before = client.stats()
            started = time.perf_counter()
            results = [
                r
                for _, rs in evaluate_calls(((c, [timed], context) for c in calls), max_workers=CONCURRENCY)
                for r in rs
            ]
            wall = time.perf_counter() - started
            after = client.stats()
            errors = [r.error for r in results if r.error]
            if errors:
                raise SystemExit(f"{len(errors)} evaluations failed, e.g. {errors[0]}")
            waited = after["http_wait_s"] - before["http_wait_s"]
            figures.append(
                {
                    "calls_per_s": len(calls) / wall,
                    "wall_s": wall,
                    "requests": after["requests"] - before["requests"],
                    "outside_http_share": max(0.0, 1 - waited / timed.total_s) if timed.total_s else 0.0,
                    "overhead_ms_per_call": max(0.0, timed.total_s - waited) / len(calls) * 1000,
                }
            )
    return figures


def _reference(url: str, calls: Sequence[Call]) -> float:
    """Plain httpx from 32 threads, the same number of posts with a body of the same size."""
    body = {
        "model": "bench",
        "messages": [{"role": "system", "content": "x" * 1500}, {"role": "user", "content": "y" * 600}],
    }
    pending = list(range(len(calls)))
    lock = threading.Lock()
    with httpx.Client(base_url=url, limits=httpx.Limits(max_connections=CONCURRENCY)) as client:

        def work() -> None:
            while True:
                with lock:
                    if not pending:
                        return
                    pending.pop()
                client.post("/chat/completions", json=body).raise_for_status()

        threads = [threading.Thread(target=work) for _ in range(CONCURRENCY)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return len(calls) / (time.perf_counter() - started)


def _measure(delay_s: float, calls: Sequence[Call], rounds: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(child, delay_s), daemon=True)
    process.start()
    try:
        url = parent.recv()
        pipeline_runs: list[dict[str, float]] = []
        reference_runs: list[float] = []
        for _ in range(rounds):  # interleaved, so a noisy moment of the shared box hits both alike
            pipeline_runs.extend(_pipeline(url, calls, cache=None))
            reference_runs.append(_reference(url, calls))
        with tempfile.TemporaryDirectory() as folder:
            cold, warm = _pipeline(url, calls, cache=Path(folder) / "cache.sqlite", passes=2)
    finally:
        parent.send("stop")
        process.join(timeout=30)
    best = max(pipeline_runs, key=lambda run: run["calls_per_s"])
    return {
        "delay_ms": delay_s * 1000,
        "pipeline_calls_per_s": best["calls_per_s"],
        "reference_calls_per_s": max(reference_runs),
        "ratio": best["calls_per_s"] / max(reference_runs),
        "outside_http_share": statistics.median(run["outside_http_share"] for run in pipeline_runs),
        "overhead_ms_per_call": statistics.median(run["overhead_ms_per_call"] for run in pipeline_runs),
        "cache_cold_calls_per_s": cold["calls_per_s"],
        "cache_hit_calls_per_s": warm["calls_per_s"],
        "cache_hit_requests": warm["requests"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=512, help="Distinct calls evaluated per run.")
    parser.add_argument("--delay-ms", type=float, default=200.0, help="The fake model's answer time.")
    parser.add_argument("--rounds", type=int, default=3, help="Runs per configuration; the best is kept.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = parser.parse_args()
    env = environment()
    print_environment(env)
    calls = _calls(args.calls)
    rows = [_measure(delay, calls, args.rounds) for delay in (0.0, args.delay_ms / 1000)]
    print(f"\n{args.calls} calls, expected_outcome judge, concurrency {CONCURRENCY}, cache off:\n")
    print_table(
        [
            "server delay",
            "pipeline calls/s",
            "raw httpx calls/s",
            "ratio",
            "outside HTTP wait",
            "overhead/call",
        ],
        [
            [
                f"{row['delay_ms']:.0f} ms",
                f"{row['pipeline_calls_per_s']:.0f}",
                f"{row['reference_calls_per_s']:.0f}",
                f"{row['ratio']:.2f}",
                f"{row['outside_http_share']:.1%}",
                f"{row['overhead_ms_per_call']:.2f} ms",
            ]
            for row in rows
        ],
    )
    print("\nwith the response cache (second pass: every answer a hit):\n")
    print_table(
        ["server delay", "first pass calls/s", "cached pass calls/s", "HTTP requests in cached pass"],
        [
            [
                f"{row['delay_ms']:.0f} ms",
                f"{row['cache_cold_calls_per_s']:.0f}",
                f"{row['cache_hit_calls_per_s']:.0f}",
                f"{row['cache_hit_requests']:.0f}",
            ]
            for row in rows
        ],
    )
    write_json(args.json, {"environment": env, "calls": args.calls, "concurrency": CONCURRENCY, "rows": rows})


if __name__ == "__main__":
    main()
