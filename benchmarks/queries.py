"""Read latency at 100,000 calls: the calls list, call detail and time series, direct and over the API.

The store is built once through the store path (``insert_calls`` in batches of 1,000, as the worker
writes), background merges are allowed to settle (bounded wait), and then every query kind runs in
rounds -- one of each per round, in a fixed order -- so slow moments of the shared box spread over all
kinds instead of landing on one. Each figure is printed also as a ratio to ``SELECT 1`` on the store's own
client, measured in the same rounds: that is chDB's fixed per-query overhead (parse, plan, result
marshalling) on this machine at this moment, the floor no query can go under.

The API rows run the same list and detail requests through ``create_app`` in-process (Starlette's
TestClient), so the difference to the direct store figure is the HTTP stack's overhead (auth lookup,
validation, serialisation) without a network in between.

Run: ``uv run python benchmarks/queries.py`` (100,000 calls, about 2-3 minutes);
``--calls 10000 --runs 20`` for a quick run.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


from _common import API_KEY, environment, percentile, print_environment, print_table, write_json
from _synth import AGENTS, SPAN_END, SPAN_START, synth_calls
from convoscope.config import Settings
from convoscope.server.app import create_app
from convoscope.server.services import open_services
from convoscope.store.base import Aggregate, Bucket, CallFilter, SeriesQuery
from convoscope.store.clickhouse import ClickHouseStore, open_clickhouse_store

GOALS_MS = {
    "list: first page": 150.0,
    "list: agent + 1-day range": 150.0,
    "list: page 21 (cursor)": 150.0,
    "detail: get_call": 50.0,
    "series: p95 duration_s by agent, daily": 150.0,
    "series: p95 turn e2e_s by agent, daily": 150.0,
    "API list: first page": 150.0,
    "API detail: get_call": 50.0,
}


def build(store: ClickHouseStore, project: str, calls: int, chunk: int) -> tuple[list[str], dict[str, float]]:
    """Insert ``calls`` synthetic calls chunk by chunk; returns their ids and where the time went."""
    ids: list[str] = []
    generate_s = insert_s = 0.0
    for start in range(0, calls, chunk):
        t0 = time.perf_counter()
        group = synth_calls(min(chunk, calls - start), start=start)
        t1 = time.perf_counter()
        ids.extend(store.insert_calls(project, group, version=1))
        insert_s += time.perf_counter() - t1
        generate_s += t1 - t0
    return ids, {"generate_s": round(generate_s, 2), "insert_s": round(insert_s, 2)}


def settle(client: Any, timeout_s: float) -> dict[str, Any]:
    """Wait (bounded) for background merges to finish, and report the parts left per table.

    Reads with ``FINAL`` cost more with more parts, so the part count is part of the result: a
    benchmark that measured right after the inserts would mostly measure merge contention.
    """
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if int(client.query("SELECT count() FROM system.merges").result_rows[0][0]) == 0:
            break
        time.sleep(0.5)
    parts = {
        str(table): int(n)
        for table, n in client.query(
            "SELECT table, count() FROM system.parts WHERE database = 'convoscope' AND active "
            "GROUP BY table ORDER BY table"
        ).result_rows
    }
    return {"waited_s": round(time.perf_counter() - started, 1), "active_parts": parts}


def deep_cursor(store: ClickHouseStore, project: str, pages: int) -> str:
    """The cursor a user holds after paging ``pages`` times through the unfiltered list."""
    cursor: str | None = None
    for _ in range(pages):
        cursor = store.list_calls(project, CallFilter(), limit=50, cursor=cursor).next_cursor
        if cursor is None:
            raise SystemExit(f"fewer than {pages} pages of 50 calls in the store")
    assert cursor is not None
    return cursor


def run_rounds(cases: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict[str, list[float]]:
    """Every case once per round, ``warmup`` untimed rounds first; returns milliseconds per case."""
    timings: dict[str, list[float]] = {name: [] for name in cases}
    for round_number in range(warmup + runs):
        for name, case in cases.items():
            started = time.perf_counter()
            case()
            elapsed = (time.perf_counter() - started) * 1000
            if round_number >= warmup:
                timings[name].append(elapsed)
    return timings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100_000, help="calls in the store")
    parser.add_argument("--runs", type=int, default=60, help="timed runs per query (>= 50 for the report)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds before timing")
    parser.add_argument("--settle-timeout", type=float, default=120.0, help="max wait for merges, seconds")
    parser.add_argument("--workdir", type=Path, default=None, help="data dir parent (default: a temp dir)")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile one extra round into this file")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    env = environment()
    print_environment(env)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="convoscope-bench-queries-"))
    store = open_clickhouse_store(path=workdir / "chdb", database="convoscope")
    # The services own the metadata store; the calls go into their default project, the one the seeded
    # API key opens, so the direct and the API figures read the very same rows.
    settings = Settings(data_dir=workdir / "api", init_api_key=API_KEY)
    services = open_services(settings, store=store)
    project = services.default_project.id
    results: dict[str, Any] = {"environment": env, "args": {k: str(v) for k, v in vars(args).items()}}
    try:
        print(f"\n== building the store: {args.calls} calls through insert_calls ==")
        t0 = time.perf_counter()
        ids, build_split = build(store, project, args.calls, 1_000)
        build_s = time.perf_counter() - t0
        count = store.count_calls(project)
        if count != args.calls:
            raise SystemExit(f"store holds {count} calls, expected {args.calls}")
        client = store._client  # the reference must run on the very client the store queries with
        settled = settle(client, args.settle_timeout)
        results["build"] = {"seconds": round(build_s, 1), **build_split, **settled}
        print(
            f"built in {build_s:.1f}s ({build_split}); merges settled after {settled['waited_s']}s, "
            f"active parts {settled['active_parts']}"
        )

        rng = random.Random(1)
        cursor = deep_cursor(store, project, 20)
        day = timedelta(days=1)

        def filtered() -> object:
            offset = rng.randrange(6)
            flt = CallFilter(
                agent_id=rng.choice(AGENTS),
                since=SPAN_START + offset * day,
                until=SPAN_START + (offset + 1) * day,
            )
            return store.list_calls(project, flt, limit=50, cursor=None)

        def series(field: str) -> Callable[[], object]:
            query = SeriesQuery(
                field=field,
                aggregate=Aggregate.P95,
                bucket=Bucket.DAY,
                since=SPAN_START,
                until=SPAN_END,
                group_by_agent=True,
            )
            return lambda: store.series(project, query)

        # Sanity: every case returns what the user would see, not an empty answer that is fast.
        assert len(store.list_calls(project, CallFilter(), limit=50, cursor=None).items) == 50
        assert len(filtered().items) > 0  # type: ignore[attr-defined]
        assert store.get_call(project, ids[0]) is not None
        assert len(series("e2e_s")()) == 7 * len(AGENTS)  # type: ignore[arg-type]

        app = create_app(services, run_worker=False)
        with warnings.catch_warnings():
            # Starlette prefers another httpx build for its TestClient; the one we ship works.
            warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
            from starlette.testclient import TestClient
        headers = {"Authorization": f"Bearer {API_KEY}"}
        with TestClient(app) as http:

            def api_list() -> object:
                return http.get("/api/v1/calls", params={"limit": 50}, headers=headers).raise_for_status()

            def api_detail() -> object:
                return http.get(f"/api/v1/calls/{rng.choice(ids)}", headers=headers).raise_for_status()

            assert len(api_list().json()["items"]) == 50  # type: ignore[attr-defined]
            assert api_detail().json()["call"]["turns"]  # type: ignore[attr-defined]
            cases: dict[str, Callable[[], object]] = {
                "reference: SELECT 1": lambda: client.query("SELECT 1"),
                "list: first page": lambda: store.list_calls(project, CallFilter(), limit=50, cursor=None),
                "list: agent + 1-day range": filtered,
                "list: page 21 (cursor)": lambda: store.list_calls(
                    project, CallFilter(), limit=50, cursor=cursor
                ),
                "detail: get_call": lambda: store.get_call(project, rng.choice(ids)),
                "series: p95 duration_s by agent, daily": series("duration_s"),
                "series: p95 turn e2e_s by agent, daily": series("e2e_s"),
                "API list: first page": api_list,
                "API detail: get_call": api_detail,
            }
            print(f"\n== timing: {args.runs} rounds of {len(cases)} cases ({args.warmup} warm-up rounds) ==")
            timings = run_rounds(cases, args.runs, args.warmup)
            if args.profile is not None:
                profiler = cProfile.Profile()
                profiler.enable()
                run_rounds(cases, 5, 0)
                profiler.disable()
                profiler.dump_stats(str(args.profile))
                print(f"profile of 5 extra rounds written to {args.profile}")
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    finally:
        services.meta.close()
        store.close()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    ref_p50 = percentile(timings["reference: SELECT 1"], 0.5)
    rows: list[list[object]] = []
    summary: dict[str, dict[str, float | str]] = {}
    for name, values in timings.items():
        p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
        goal = GOALS_MS.get(name)
        verdict = "" if goal is None else f"p95 <= {goal:.0f}: {'met' if p95 <= goal else 'MISSED'}"
        summary[name] = {
            "runs": len(values),
            "p50_ms": round(p50, 2),
            "p95_ms": round(p95, 2),
            "max_ms": round(max(values), 2),
            "p50_ratio_to_select1": round(p50 / ref_p50, 1),
            "goal": verdict,
        }
        rows.append(
            [
                name,
                len(values),
                f"{p50:.1f}",
                f"{p95:.1f}",
                f"{p50 / ref_p50:.1f}x",
                f"{p95 / ref_p50:.1f}x",
                verdict,
            ]
        )
    results["queries"] = summary
    print(f"\n== results ({args.calls:,} calls; ratios are to the p50 of SELECT 1, {ref_p50:.2f} ms) ==")
    print_table(["query", "runs", "p50 ms", "p95 ms", "p50 / SELECT 1", "p95 / SELECT 1", "goal"], rows)
    for api, direct in (
        ("API list: first page", "list: first page"),
        ("API detail: get_call", "detail: get_call"),
    ):
        overhead = summary[api]["p50_ms"] - summary[direct]["p50_ms"]  # type: ignore[operator]
        print(f"API overhead over the store call, p50: {api.removeprefix('API ')}: {overhead:+.1f} ms")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
