"""Read latency at 100,000 calls: the calls list, call detail and time series, direct and over the API.

The store is built once through the store path (``insert_calls`` in batches of 1,000, as the worker
writes), background merges are allowed to settle (bounded wait), and then every query kind runs in
rounds -- one of each per round, in a fixed order -- so slow moments of the shared box spread over all
kinds instead of landing on one. Each figure is printed also as a ratio to ``SELECT 1`` on the store's own
client, measured in the same rounds: that is chDB's fixed per-query overhead (parse, plan, result
marshalling) on this machine at this moment, the floor no query can go under.

A second reference, a bare ``SELECT count() FROM calls`` (no ``FINAL``, answered from part metadata), is
the cost of the smallest query that touches the table.

The API rows run the same list and detail requests through ``create_app`` in-process (Starlette's
TestClient), so the difference to the direct store figure is the HTTP stack's overhead (auth lookup,
validation, serialisation) without a network in between.

Phases, in this order, on the same store:

1. **as built** -- the realistic state: parts as the inserts and background merges left them.
2. **diagnosis** -- each statement of ``get_call`` and of the turn-latency series timed on its own, as
   the store writes it and in the form it replaced (a plain ``WHERE`` under ``FINAL``; the per-turn
   read of ``turns FINAL`` with the current-version semi-join), so what each choice saves is measured
   in the same run rather than asserted. Every variant is checked to return the same rows.
3. **after OPTIMIZE FINAL** -- one part per table, the best case ``FINAL`` can get; a separate variant
   because a live store is rarely in that state (``--skip-optimize`` leaves it out).

Run: ``uv run python benchmarks/queries.py`` (100,000 calls, about 3-4 minutes);
``--calls 5000 --runs 10`` for a quick run.
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
from convoscope.store.rollups import EXACT_BELOW
from convoscope.store.rows import micros
from convoscope.store.schema import CALL_SERIES_COLUMNS, CALLS, SCORES, TOOL_CALLS, TURNS

REFERENCES = ("reference: SELECT 1", "reference: SELECT count() FROM calls")
"""Measured in every round next to the queries; the ratios are to their p50s."""

OPTIMIZED_TABLES = ("calls", "turns", "tool_calls")

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


def settle(store: ClickHouseStore, timeout_s: float) -> dict[str, Any]:
    """Wait (bounded) for background merges to finish, and report the parts left per table.

    Reads with ``FINAL`` cost more with more parts, so the part count is part of the result: a
    benchmark that measured right after the inserts would mostly measure merge contention.
    """
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if int(store.query("SELECT count() FROM system.merges")[0][0]) == 0:
            break
        time.sleep(0.5)
    parts = {
        str(table): int(n)
        for table, n in store.query(
            "SELECT table, count() FROM system.parts WHERE database = {db:String} AND active "
            "GROUP BY table ORDER BY table",
            {"db": store.database},
        )
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


def timed_statement(
    store: ClickHouseStore, sql: str, params: list[dict[str, object]], repeats: int
) -> tuple[list[float], list[list[tuple[Any, ...]]]]:
    """Milliseconds of ``repeats`` runs of one statement, cycling through ``params``; and each answer.

    Runs through ``store.query``: the store's own client and read settings.
    """
    times: list[float] = []
    answers: list[list[tuple[Any, ...]]] = [[] for _ in params]
    for number in range(repeats):
        index = number % len(params)
        started = time.perf_counter()
        rows = store.query(sql, params[index])
        times.append((time.perf_counter() - started) * 1000)
        answers[index] = rows
    return times, answers


def diagnose_get_call(
    store: ClickHouseStore, project: str, ids: list[str], repeats: int
) -> list[dict[str, object]]:
    """Each statement ``get_call`` runs, timed alone: as the store writes it and with a plain ``WHERE``.

    Why: ``get_call`` reads tables with ``FINAL``, and ClickHouse does not move ``WHERE`` conditions to
    ``PREWHERE`` under ``FINAL`` (``optimize_move_to_prewhere_if_final`` is off by default), so with a
    plain ``WHERE`` every column of every granule the key selects is read and merged. The store puts
    the sort-key conditions in ``PREWHERE`` (safe: a sort-key filter keeps or drops whole key groups, so
    it cannot change which version ``FINAL`` keeps); this measures what that saves, and checks that both
    forms return the same rows. The statements mirror ``store/clickhouse.py``.
    """
    db = store.database
    rng = random.Random(3)
    sample = [rng.choice(ids) for _ in range(8)]
    versions = {
        str(cid): int(v)
        for cid, v in store.query(
            f"SELECT id, version FROM `{db}`.calls FINAL WHERE id IN {{ids:Array(String)}}", {"ids": sample}
        )
    }
    params: list[dict[str, object]] = [{"p": project, "id": cid, "v": versions[cid]} for cid in sample]
    calls, turns, tools, scores = (f"`{db}`.`{t.name}`" for t in (CALLS, TURNS, TOOL_CALLS, SCORES))
    call_columns = CALLS.select_list(CALL_SERIES_COLUMNS)
    key_of_id = (
        "(source, external_id) IN (SELECT source, external_id FROM {calls} "
        "{clause} project_id = {{p:String}} AND id = {{id:String}})"
    )
    child = "project_id = {p:String} AND call_id = {id:String}"
    statements: list[tuple[str, str, str]] = [
        (
            "calls FINAL: current version by id",
            f"SELECT {call_columns} FROM {calls} FINAL WHERE project_id = {{p:String}} "
            f"AND {key_of_id.format(calls=calls, clause='WHERE')} AND id = {{id:String}}",
            f"SELECT {call_columns} FROM {calls} FINAL PREWHERE project_id = {{p:String}} "
            f"AND {key_of_id.format(calls=calls, clause='PREWHERE')} WHERE id = {{id:String}}",
        ),
        (
            "turns FINAL of that version",
            f"SELECT {TURNS.select_list()} FROM {turns} FINAL WHERE {child} AND version = {{v:UInt64}} "
            "ORDER BY idx",
            f"SELECT {TURNS.select_list()} FROM {turns} FINAL PREWHERE {child} WHERE version = {{v:UInt64}} "
            "ORDER BY idx",
        ),
        (
            "tool_calls FINAL of that version",
            f"SELECT {TOOL_CALLS.select_list()} FROM {tools} FINAL WHERE {child} "
            "AND version = {v:UInt64} ORDER BY seq",
            f"SELECT {TOOL_CALLS.select_list()} FROM {tools} FINAL PREWHERE {child} "
            "WHERE version = {v:UInt64} ORDER BY seq",
        ),
        (
            "scores FINAL",
            f"SELECT {SCORES.select_list()} FROM {scores} FINAL WHERE {child} ORDER BY metric",
            f"SELECT {SCORES.select_list()} FROM {scores} FINAL PREWHERE {child} ORDER BY metric",
        ),
    ]
    out: list[dict[str, object]] = []
    for name, plain, written in statements:
        times, answers = timed_statement(store, written, params, repeats)
        p_times, p_answers = timed_statement(store, plain, params, repeats)
        if p_answers != answers:
            raise SystemExit(f"plain-WHERE form of {name!r} returned other rows than the store's")
        out.append(
            {
                "statement": name,
                "where_ms": round(percentile(p_times, 0.5), 1),
                "as_written_ms": round(percentile(times, 0.5), 1),
            }
        )
    totals: list[float] = []
    for number in range(repeats):
        started = time.perf_counter()
        store.get_call(project, sample[number % len(sample)])
        totals.append((time.perf_counter() - started) * 1000)
    out.append(
        {
            "statement": "store.get_call, whole (for comparison)",
            "where_ms": "-",
            "as_written_ms": round(percentile(totals, 0.5), 1),
        }
    )
    return out


def diagnose_turn_series(store: ClickHouseStore, project: str, repeats: int) -> list[dict[str, object]]:
    """The daily p95 turn ``e2e_s`` series: the store's call-row arrays against the per-turn definition.

    Why: the per-turn definition reads ``turns FINAL`` (2 M rows at 100 k calls) and keeps only turns of
    each call's current version with ``(call_id, version) IN (SELECT id, version FROM calls FINAL ...)``.
    The store answers from the ``agent_e2e_s`` array on the call row (``FINAL`` + ``arrayJoin``: a
    replaced call replaces its array, so no join), plus the same per-turn read for calls written before
    the arrays existed -- here none, so that part should cost next to nothing. Each part is timed alone
    and every answer is checked against the per-turn definition.
    """
    store.rollup_exact_below = 10**12  # the exact path: the rollups answer the same series elsewhere
    calls, turns = f"`{store.database}`.calls", f"`{store.database}`.turns"

    def where(column: str) -> str:
        return (
            f"project_id = {{p:String}} AND {column} >= fromUnixTimestamp64Micro({{since:Int64}}, 'UTC') "
            f"AND {column} < fromUnixTimestamp64Micro({{until:Int64}}, 'UTC')"
        )

    def outer(values: str) -> str:
        return (
            "SELECT toUnixTimestamp(toStartOfDay(started_at)) AS b, agent_id AS g, "
            f"quantileExactInclusive(0.95)(v) AS value, count() AS n FROM ({values}) WHERE v IS NOT NULL "
            "GROUP BY b, g ORDER BY b, g"
        )

    def per_turn(current_extra: str) -> str:
        return (
            f"SELECT call_started_at AS started_at, agent_id, e2e_s AS v FROM {turns} FINAL "
            f"WHERE {where('call_started_at')} AND role = 'agent' AND (call_id, version) IN "
            f"(SELECT id, version FROM {calls} FINAL WHERE {where('started_at')}{current_extra})"
        )

    arrays = (
        f"SELECT started_at, agent_id, arrayJoin(agent_e2e_s) AS v FROM {calls} FINAL "
        f"WHERE {where('started_at')} AND agent_latency_filled = 1"
    )
    params: list[dict[str, object]] = [{"p": project, "since": micros(SPAN_START), "until": micros(SPAN_END)}]
    variants = [
        ("per-turn definition: turns FINAL + (call_id, version) IN calls FINAL", per_turn("")),
        ("store, part 1: agent_e2e_s array on calls FINAL + arrayJoin", arrays),
        (
            "store, part 2: per-turn read for calls without arrays (none here)",
            per_turn(" AND agent_latency_filled = 0"),
        ),
        ("store: both parts, UNION ALL", f"{arrays} UNION ALL {per_turn(' AND agent_latency_filled = 0')}"),
    ]
    out: list[dict[str, object]] = []
    reference: list[tuple[Any, ...]] | None = None
    for name, values in variants:
        times, answers = timed_statement(store, outer(values), params, repeats)
        if reference is None:
            reference = answers[0]
        empty_part = "part 2" in name
        if answers[0] != ([] if empty_part else reference):
            raise SystemExit(f"series variant {name!r} returned other points than the per-turn definition")
        out.append({"variant": name, "p50_ms": round(percentile(times, 0.5), 1), "points": len(answers[0])})
    query = SeriesQuery(
        field="e2e_s",
        aggregate=Aggregate.P95,
        bucket=Bucket.DAY,
        since=SPAN_START,
        until=SPAN_END,
        group_by_agent=True,
    )
    totals: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        points = store.series(project, query)
        totals.append((time.perf_counter() - started) * 1000)
    assert reference is not None
    if [(p.count, p.value) for p in points] != [(int(n), float(v)) for _, _, v, n in reference]:
        raise SystemExit("store.series returned other points than the per-turn definition")
    out.append(
        {
            "variant": "store.series, whole (for comparison)",
            "p50_ms": round(percentile(totals, 0.5), 1),
            "points": len(points),
        }
    )
    return out


def optimize_final(store: ClickHouseStore) -> dict[str, float]:
    """``OPTIMIZE TABLE ... FINAL`` on the tables the queries read; seconds each took."""
    seconds: dict[str, float] = {}
    for table in OPTIMIZED_TABLES:
        started = time.perf_counter()
        store.command(f"OPTIMIZE TABLE `{store.database}`.`{table}` FINAL")
        seconds[table] = round(time.perf_counter() - started, 1)
    return seconds


def summarise(
    title: str, timings: dict[str, list[float]], baseline: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Print one phase's table (percentiles, ratios to both references, goals); return the figures."""
    ref1 = percentile(timings[REFERENCES[0]], 0.5)
    refc = percentile(timings[REFERENCES[1]], 0.5)
    rows: list[list[object]] = []
    summary: dict[str, dict[str, Any]] = {}
    for name, values in timings.items():
        p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
        goal = GOALS_MS.get(name)
        verdict = "" if goal is None else f"p95 <= {goal:.0f}: {'met' if p95 <= goal else 'MISSED'}"
        summary[name] = {
            "runs": len(values),
            "p50_ms": round(p50, 2),
            "p95_ms": round(p95, 2),
            "max_ms": round(max(values), 2),
            "p50_ratio_to_select1": round(p50 / ref1, 1),
            "p95_ratio_to_select1": round(p95 / ref1, 1),
            "p50_ratio_to_count": round(p50 / refc, 1),
            "goal": verdict,
        }
        row: list[object] = [
            name,
            len(values),
            f"{p50:.1f}",
            f"{p95:.1f}",
            f"{p50 / ref1:.1f}x",
            f"{p95 / ref1:.1f}x",
            f"{p50 / refc:.1f}x",
        ]
        if baseline is not None:
            row.append(f"{p50 / baseline[name]['p50_ms']:.2f}")
        rows.append([*row, verdict])
    headers = ["query", "runs", "p50 ms", "p95 ms", "p50 / SELECT 1", "p95 / SELECT 1", "p50 / count()"]
    if baseline is not None:
        headers.append("p50 vs as built")
    print(f"\n== results: {title} (ratios to the p50s: SELECT 1 {ref1:.2f} ms, count() {refc:.2f} ms) ==")
    print_table([*headers, "goal"], rows)
    for api, direct in (
        ("API list: first page", "list: first page"),
        ("API detail: get_call", "detail: get_call"),
    ):
        overhead = summary[api]["p50_ms"] - summary[direct]["p50_ms"]
        print(f"API overhead over the store call, p50: {api.removeprefix('API ')}: {overhead:+.1f} ms")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100_000, help="calls in the store")
    parser.add_argument("--runs", type=int, default=60, help="timed runs per query (>= 50 for the report)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds before timing")
    parser.add_argument("--settle-timeout", type=float, default=120.0, help="max wait for merges, seconds")
    parser.add_argument("--diagnose-runs", type=int, default=15, help="runs per statement in the diagnosis")
    parser.add_argument("--skip-diagnose", action="store_true", help="leave out the per-statement diagnosis")
    parser.add_argument("--skip-optimize", action="store_true", help="leave out the OPTIMIZE FINAL variant")
    parser.add_argument("--workdir", type=Path, default=None, help="data dir parent (default: a temp dir)")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile 5 extra rounds into this file")
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
        settled = settle(store, args.settle_timeout)
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

        def series(field: str, *, exact: bool = False) -> Callable[[], object]:
            """The series as the store answers it (the rollups where they can), or forced exact."""
            query = SeriesQuery(
                field=field,
                aggregate=Aggregate.P95,
                bucket=Bucket.DAY,
                since=SPAN_START,
                until=SPAN_END,
                group_by_agent=True,
            )

            def run() -> object:
                store.rollup_exact_below = 10**12 if exact else EXACT_BELOW
                return store.series(project, query)

            return run

        started = time.perf_counter()
        store.refresh_rollups(project, SPAN_START, SPAN_END)
        results["rollups_first_refresh_s"] = round(time.perf_counter() - started, 2)
        print(f"rollups: first computation of the range's hours {results['rollups_first_refresh_s']} s")

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
        count_sql = f"SELECT count() FROM `{store.database}`.calls"
        with TestClient(app) as http:

            def api_list() -> object:
                return http.get("/api/v1/calls", params={"limit": 50}, headers=headers).raise_for_status()

            def api_detail() -> object:
                return http.get(f"/api/v1/calls/{rng.choice(ids)}", headers=headers).raise_for_status()

            assert len(api_list().json()["items"]) == 50  # type: ignore[attr-defined]
            assert api_detail().json()["call"]["turns"]  # type: ignore[attr-defined]
            cases: dict[str, Callable[[], object]] = {
                # The references run through the store's own client and read settings.
                REFERENCES[0]: lambda: store.query("SELECT 1"),
                REFERENCES[1]: lambda: store.query(count_sql),
                "list: first page": lambda: store.list_calls(project, CallFilter(), limit=50, cursor=None),
                "list: agent + 1-day range": filtered,
                "list: page 21 (cursor)": lambda: store.list_calls(
                    project, CallFilter(), limit=50, cursor=cursor
                ),
                "detail: get_call": lambda: store.get_call(project, rng.choice(ids)),
                "series: p95 duration_s by agent, daily": series("duration_s"),
                "series: p95 turn e2e_s by agent, daily": series("e2e_s"),
                "series: p95 turn e2e_s by agent, daily, exact": series("e2e_s", exact=True),
                "API list: first page": api_list,
                "API detail: get_call": api_detail,
            }
            print(
                f"\n== timing, as built: {args.runs} rounds of {len(cases)} cases ({args.warmup} warm-up) =="
            )
            as_built = run_rounds(cases, args.runs, args.warmup)
            results["queries"] = summarise(f"as built, {args.calls:,} calls", as_built)

            if args.profile is not None:
                profiler = cProfile.Profile()
                profiler.enable()
                run_rounds(cases, 5, 0)
                profiler.disable()
                profiler.dump_stats(str(args.profile))
                print(f"profile of 5 extra rounds written to {args.profile}")
                pstats.Stats(profiler).sort_stats("tottime").print_stats(25)

            if not args.skip_diagnose:
                print(f"\n== diagnosis: statements timed alone, p50 of {args.diagnose_runs} runs ==")
                detail = diagnose_get_call(store, project, ids, args.diagnose_runs)
                print_table(
                    ["statement of get_call", "plain WHERE ms", "as written (sort key in PREWHERE) ms"],
                    [[d["statement"], d["where_ms"], d["as_written_ms"]] for d in detail],
                )
                turn_series = diagnose_turn_series(store, project, args.diagnose_runs)
                print()
                print_table(
                    ["daily p95 turn e2e_s, statement", "p50 ms", "points"],
                    [[d["variant"], d["p50_ms"], d["points"]] for d in turn_series],
                )
                results["diagnosis"] = {"get_call": detail, "turn_series": turn_series}

            if not args.skip_optimize:
                print("\n== OPTIMIZE TABLE ... FINAL (separate variant: one part per table) ==")
                seconds = optimize_final(store)
                settled_opt = settle(store, args.settle_timeout)
                print(f"optimized in {seconds} s; active parts {settled_opt['active_parts']}")
                optimized = run_rounds(cases, args.runs, args.warmup)
                results["optimized"] = {
                    "optimize_s": seconds,
                    **settled_opt,
                    "queries": summarise(
                        f"after OPTIMIZE FINAL, {args.calls:,} calls", optimized, results["queries"]
                    ),
                }
    finally:
        services.meta.close()
        store.close()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    write_json(args.json, results)


if __name__ == "__main__":
    main()
