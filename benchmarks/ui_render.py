"""Server time and bytes of the web UI's pages over a large store.

The store holds ``--calls`` synthetic calls over a week (``_synth``, inserted through ``insert_calls`` in
batches of 1,000 as the worker writes) with two scores each (a pass/fail judge metric and an audio
response gap), plus one large call: 500 turns and 5,000 spans. The app runs in-process (Starlette's
TestClient: routing, session, store reads, template rendering, no network), signed in once.

Every page kind runs in rounds, one of each per round in a fixed order: the overview (default range and
one agent), the calls table (first page, a filter, a deep page), an ordinary call page, and the large
call's page. The reference, measured in the same rounds, is the API's own JSON list of 50 calls
(``GET /api/v1/calls``): the same store read without a page around it, so each ratio says what the page
costs on top. Bytes are the HTML of one answer (static files are cached by the browser and not counted).

The overview reads the hourly rollups (``store.rollups``) once they exist: the first view of a range
computes its hours, which is printed apart (the warm-up rounds then see the rollups current, as a
dashboard does after its first load).

Run: ``uv run python benchmarks/ui_render.py`` (100,000 calls, a few minutes to build);
``--calls 5000 --runs 10`` for a quick run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from starlette.testclient import TestClient

from _common import environment, percentile, print_environment, print_table, write_json
from _synth import AGENTS, SPAN_END, SPAN_START, synth_calls
from convoscope.config import Settings
from convoscope.model import Call, MetricResult, MetricSource, Role, Span, Turn
from convoscope.server.app import create_app
from convoscope.server.services import open_services
from convoscope.store.clickhouse import ClickHouseStore, open_clickhouse_store
from queries import run_rounds, settle

KEY = "cvs_bench_ui_key_0123456789abcdef0123"
GOALS_MS = {"large call page (500 turns, 5,000 spans)": 500.0}
PAGE_GOAL_MS = 300.0
REFERENCE = "reference: API list of 50 calls (JSON)"


def _scores(call_ids: list[str], offset: int) -> list[MetricResult]:
    out = []
    for n, call_id in enumerate(call_ids):
        index = offset + n
        out.append(
            MetricResult(
                call_id=call_id,
                metric="task_success",
                value=index % 7 != 0,
                passed=index % 7 != 0,
                source=MetricSource.JUDGE,
                evaluated_at=SPAN_END,
            )
        )
        out.append(
            MetricResult(
                call_id=call_id,
                metric="turn_taking.response_gap_p50_s",
                value=0.4 + (index % 13) / 10,
                passed=(index % 13) < 9,
                source=MetricSource.AUDIO,
                evaluated_at=SPAN_END,
            )
        )
    return out


def build(store: ClickHouseStore, project: str, calls: int, chunk: int = 1000) -> list[str]:
    ids: list[str] = []
    for start in range(0, calls, chunk):
        group = synth_calls(min(chunk, calls - start), start=start)
        inserted = store.insert_calls(project, group, version=1)
        store.insert_scores(project, _scores(inserted, start))
        ids.extend(inserted)
    return ids


def large_call(store: ClickHouseStore, project: str) -> str:
    """A 500-turn call with 5,000 spans linked to it."""
    turns = [
        Turn(
            index=i,
            role=Role.USER if i % 2 == 0 else Role.AGENT,
            text=f"turn {i}: " + "words of a long conversation " * 3,
            start_s=i * 4.0,
            end_s=i * 4.0 + 3.0,
            e2e_s=None if i % 2 == 0 else 0.8,
        )
        for i in range(500)
    ]
    call = Call.model_validate(
        {
            "source": "generic",
            "external_id": "bench-large-call",
            "agent_id": AGENTS[0],
            "started_at": (SPAN_END - timedelta(hours=1)).isoformat(),
            "turns": [t.model_dump() for t in turns],
        }
    )
    [call_id] = store.insert_calls(project, [call], version=1)
    trace = "ab" * 16
    spans = [
        Span.model_validate(
            {
                "trace_id": trace,
                "span_id": f"{n + 1:016x}",
                "parent_span_id": None if n == 0 else f"{1:016x}",
                "name": "llm" if n % 3 else "tts",
                "start": call.started_at + timedelta(seconds=n * 0.4),
                "end": call.started_at + timedelta(seconds=n * 0.4 + 0.3),
                "attributes": {"gen_ai.operation.name": "chat", "n": n},
                "call_id": call_id,
            }
        )
        for n in range(5000)
    ]
    store.insert_spans(project, spans)
    return call_id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    print_environment(environment())
    workdir = Path(tempfile.mkdtemp(prefix="cvs-ui-bench-"))
    store = open_clickhouse_store(path=workdir / "store")
    services = open_services(Settings(data_dir=workdir / "data", init_api_key=KEY), store=store)
    project = services.default_project.id
    try:
        began = time.perf_counter()
        ids = build(store, project, args.calls)
        big = large_call(store, project)
        print(f"built {args.calls:,} calls (+ the large call) in {time.perf_counter() - began:.1f} s")
        print(f"settled: {settle(store, 120.0)}")
        client = TestClient(create_app(services, run_worker=False))
        began = time.perf_counter()
        assert client.get("/", params={"key": KEY}).status_code == 200
        first_view = time.perf_counter() - began
        began = time.perf_counter()
        computed = store.refresh_rollups(project, SPAN_START - (SPAN_END - SPAN_START), SPAN_END)
        print(
            f"first overview (computes the rollups of its range): {first_view:.2f} s; "
            f"the week and the one before: {computed} more hours in {time.perf_counter() - began:.2f} s"
        )
        auth = {"Authorization": f"Bearer {KEY}"}
        deep = client.get("/calls").text  # a cursor a few pages in, as a reader paging on holds it
        for _ in range(10):
            marker = deep.find('href="/calls?')
            if marker < 0:
                break
            link = deep[marker + 6 : deep.find('"', marker + 6)].replace("&amp;", "&")
            deep = client.get(link).text
        deep_link = link if marker >= 0 else "/calls"
        week = f"since={SPAN_START:%Y-%m-%dT%H:%M}&until={SPAN_END:%Y-%m-%dT%H:%M}"
        sizes: dict[str, int] = {}

        def fetch(path: str, name: str, headers: dict[str, str] | None = None) -> Any:
            def run() -> None:
                answer = client.get(path, headers=headers)
                if answer.status_code != 200:
                    raise SystemExit(f"{name}: {path} answered {answer.status_code}")
                sizes[name] = len(answer.content)

            return run

        cases = {
            REFERENCE: fetch("/api/v1/calls?limit=50", REFERENCE, auth),
            "overview (default range)": fetch("/", "overview (default range)"),
            "overview (one agent, the week)": fetch(
                f"/?agent={AGENTS[1]}&{week}", "overview (one agent, the week)"
            ),
            "calls: first page": fetch("/calls", "calls: first page"),
            "calls: agent + failing metric": fetch(
                f"/calls?agent={AGENTS[0]}&failing=task_success", "calls: agent + failing metric"
            ),
            "calls: 11th page": fetch(deep_link, "calls: 11th page"),
            "call page": fetch(f"/calls/{ids[len(ids) // 2]}", "call page"),
            "large call page (500 turns, 5,000 spans)": fetch(
                f"/calls/{big}", "large call page (500 turns, 5,000 spans)"
            ),
        }
        timings = run_rounds(cases, args.runs, args.warmup)
        reference = percentile(timings[REFERENCE], 0.5)
        rows = []
        results: dict[str, Any] = {}
        for name, values in timings.items():
            p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
            goal = GOALS_MS.get(name, PAGE_GOAL_MS)
            verdict = "" if name == REFERENCE else ("met" if p95 <= goal else "NOT met")
            rows.append(
                [name, f"{p50:.1f}", f"{p95:.1f}", f"{p95 / reference:.2f}", f"{sizes[name]:,}", verdict]
            )
            results[name] = {"p50_ms": p50, "p95_ms": p95, "ratio_p95": p95 / reference, "bytes": sizes[name]}
        print_table(["page", "p50 ms", "p95 ms", "p95 / ref p50", "bytes", "goal"], rows)
        write_json(args.json, {"environment": environment(), "calls": args.calls, "results": results})
    finally:
        services.meta.close()
        store.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
