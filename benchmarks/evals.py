"""Deterministic evaluators over 10,000 stored calls: calls per second of the metric set, and the job's path.

The calls are the benchmark stream (``_synth``: ~20 turns and 4 tool calls each), stored in an embedded
chDB store. Reading every call back with ``get_call`` costs far more than evaluating it (see the queries
section of docs/benchmarks.md), so a sample is read back, checked to equal the calls written, and the
evaluation runs over all the calls as stored. Measured, in one run:

- **evaluate**: ``evaluate_call`` with the default deterministic set (what an unconfigured agent gets), and
  with all fifteen deterministic metrics configured; calls/s in wall time and in CPU time of the evaluating
  thread (the machine is shared, and the embedded engine merges parts in background threads of the same
  process, so the thread's CPU time is the figure that says what one core does), and µs per call per
  metric. Goal: ≥ 1,000 calls/s for the default set.
- **job path**: ``get_call`` per call (on the sample), evaluation, ``insert_scores`` of every result.

Run: ``uv run python benchmarks/evals.py`` (``--calls 10000 --read-sample 200 --json PATH``).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import environment, print_environment, print_table, write_json
from _synth import synth_calls
from convoscope.evals.base import AgentProfile, EvalContext, Metric
from convoscope.evals.runner import evaluate_call, resolve_metrics
from convoscope.model import Call, MetricResult
from convoscope.store.clickhouse import open_clickhouse_store

PROJECT = "bench"
INSERT_CHUNK = 1_000
SCORE_CHUNK = 5_000
GOAL_CALLS_PER_S = 1_000.0

_SCHEMA = {"type": "object", "required": ["customer_id", "date"], "properties": {"date": {"type": "string"}}}
CONFIGURED = AgentProfile(
    metrics={
        **{m.name: {} for m in resolve_metrics(AgentProfile(), judge_available=False)},
        "required_phrases": {"phrases": ["is there anything else I can help you with"]},
        "disclosure": {"phrases": ["this call may be recorded for quality purposes"]},
        "forbidden_phrases": {"phrases": ["I guarantee", "as an AI language model"], "min_similarity": 0.8},
        "regex": {"pattern": r"\b(?:damn|hell)\b"},
        "json_schema": {"schema": _SCHEMA},
    }
)


def _store(store: Any, count: int) -> tuple[list[Call], list[str]]:
    """Write the stream; return the calls as written (with their ids) and the ids."""
    written: list[Call] = []
    ids: list[str] = []
    for start in range(0, count, INSERT_CHUNK):
        calls = synth_calls(min(INSERT_CHUNK, count - start), start=start)
        chunk_ids = store.insert_calls(PROJECT, calls, version=1)
        written.extend(
            c.model_copy(update={"id": i, "project_id": PROJECT})
            for c, i in zip(calls, chunk_ids, strict=True)
        )
        ids.extend(chunk_ids)
    return written, ids


def _read_sample(store: Any, written: list[Call], sample: int) -> float:
    """Seconds per ``get_call`` over a random sample, each checked against what was written."""
    picks = random.Random(11).sample(range(len(written)), min(sample, len(written)))
    began = time.perf_counter()
    for index in picks:
        stored = store.get_call(PROJECT, written[index].id)
        assert stored is not None
        assert (
            stored.call.turns == written[index].turns and stored.call.tool_calls == written[index].tool_calls
        )
    return (time.perf_counter() - began) / len(picks)


def _evaluate(calls: list[Call], metrics: list[Metric[Any]]) -> tuple[list[MetricResult], float, float]:
    """All results, wall seconds and CPU seconds for the whole set."""
    context = EvalContext()
    results: list[MetricResult] = []
    wall, cpu = time.perf_counter(), time.thread_time()
    for call in calls:
        results.extend(evaluate_call(call, metrics, context))
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    errors = [r for r in results if r.error is not None]
    assert not errors, errors[:3]
    return results, wall, cpu


def _per_metric(calls: list[Call], metrics: list[Metric[Any]]) -> dict[str, float]:
    """CPU µs per call of each metric alone."""
    context = EvalContext()
    figures: dict[str, float] = {}
    for metric in metrics:
        began = time.thread_time()
        for call in calls:
            metric.evaluate(call, context)
        figures[metric.name] = (time.thread_time() - began) / len(calls) * 1e6
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--read-sample", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    env = environment()
    print_environment(env)
    with tempfile.TemporaryDirectory(prefix="convoscope-evals-bench-") as tmp:
        store = open_clickhouse_store(path=Path(tmp) / "chdb", database="bench")
        try:
            began = time.perf_counter()
            calls, ids = _store(store, args.calls)
            print(f"stored {len(ids):,} calls in {time.perf_counter() - began:.1f} s")
            read_s = _read_sample(store, calls, args.read_sample)
            figures: dict[str, Any] = {"calls": len(calls), "get_call_s": read_s}
            rows = []
            last: list[MetricResult] = []
            for label, profile in (("default set", AgentProfile()), ("all 15 configured", CONFIGURED)):
                metrics = resolve_metrics(profile, judge_available=False)
                last, wall, cpu = _evaluate(calls, metrics)
                wall_rate, cpu_rate = len(calls) / wall, len(calls) / cpu
                verdict = "met" if cpu_rate >= GOAL_CALLS_PER_S else "**MISSED**"
                rows.append(
                    [
                        label,
                        len(metrics),
                        f"{wall_rate:,.0f}",
                        f"{cpu_rate:,.0f}",
                        f"{cpu / len(calls) * 1e6:,.0f}",
                        verdict,
                    ]
                )
                figures[label] = {
                    "metrics": len(metrics),
                    "wall_calls_per_s": wall_rate,
                    "cpu_calls_per_s": cpu_rate,
                }
            print(f"\nevaluate ({len(calls):,} stored calls; goal ≥ {GOAL_CALLS_PER_S:,.0f} calls/s):")
            print_table(
                ["metric set", "metrics", "calls/s (wall)", "calls/s (CPU)", "CPU µs per call", "goal"], rows
            )
            per_metric = _per_metric(calls[:2_000], resolve_metrics(CONFIGURED, judge_available=False))
            figures["per_metric_cpu_us"] = per_metric
            print("\nCPU µs per call, each metric alone (first 2,000 calls):")
            ordered = sorted(per_metric.items(), key=lambda kv: -kv[1])
            print_table(["metric", "µs per call"], [[name, f"{us:,.0f}"] for name, us in ordered])
            began = time.perf_counter()
            for start in range(0, len(last), SCORE_CHUNK):
                store.insert_scores(PROJECT, last[start : start + SCORE_CHUNK])
            insert_s = time.perf_counter() - began
            figures["insert_results"], figures["insert_s"] = len(last), insert_s
            evaluate_s = len(calls) / figures["all 15 configured"]["wall_calls_per_s"]
            per_call = {
                "get_call": read_s,
                "evaluate": evaluate_s / len(calls),
                "insert_scores": insert_s / len(calls),
            }
            total = sum(per_call.values())
            print("\njob path per call (all 15 metrics; get_call on the sample):")
            print_table(
                ["step", "ms per call", "share"],
                [[k, f"{v * 1e3:.2f}", f"{v / total:.0%}"] for k, v in per_call.items()]
                + [["whole path", f"{total * 1e3:.2f}", f"{1 / total:,.0f} calls/s"]],
            )
            figures["job_calls_per_s"] = 1 / total
            write_json(args.json, {"environment": env, "figures": figures})
        finally:
            store.close()


if __name__ == "__main__":
    main()
