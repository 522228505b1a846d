"""Ingest throughput: the store path and the HTTP path, each as a ratio to a raw chDB insert.

Why these three figures:

* **raw** -- the same rows (``call_to_rows``, prepared before timing) inserted with a bare
  clickhouse-connect client into identically shaped tables (the same DDL, another database). It is the
  floor the engine and driver set on this machine in this run; every other figure is divided by it, so a
  noisy shared box still gives comparable ratios between runs.
* **store** -- ``ClickHouseStore.insert_calls`` on prepared ``Call`` objects, in batches of 1,000: what
  the worker pays per batch (row conversion, dedup, transposition, three inserts).
* **job path** -- the ``evals.run`` job the server runs on every stored call, through ``JobRunner``
  (claim, read the calls back, evaluate, write the scores, settle), batched as the server runs it and, as
  its reference in the same run, one job at a time on a sample (how it ran before it was batched).
* **HTTP** -- a real ``convoscope serve`` process on a loopback port, two client connections POSTing
  pre-encoded batches of 1,000 calls. ``ack`` counts 202s (validation + durable outbox commit); ``e2e``
  runs until ``GET /api/v1/ingest/{id}`` reports every request stored, then the calls list must hold
  every call. The server's CPU seconds over the same span give a rate that does not depend on how
  much of a shared box the server got.

chDB allows one data directory per process, so the store and the raw reference share this process (two
databases in one directory) and the server runs in a child process with its own data directory.

Run: ``uv run python benchmarks/ingest.py`` (about 1-3 minutes); ``--quick`` for a small smoke run;
``--py-spy FILE`` also samples the server during the HTTP phase (py-spy from PATH or through ``uvx``)
and prints where its CPU went; the sampler costs the server some throughput, so take the rates from a
run without it.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import clickhouse_connect
import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    API_KEY,
    LIST_PAGE,
    ServerProcess,
    count_listed_calls,
    environment,
    post_all,
    print_environment,
    print_table,
    write_json,
)
from _synth import synth_calls, synth_payloads
from convoscope.config import Settings
from convoscope.evals.jobs import EvalsJob
from convoscope.ingest.canonical import CallLimits, parse_calls
from convoscope.model import Call, call_id_for
from convoscope.runtime.jobs import JobRunner
from convoscope.runtime.kinds import EVALS_RUN
from convoscope.server.worker import assign_identity
from convoscope.store.clickhouse import open_clickhouse_store
from convoscope.store.metadata import JobSpec, MetadataStore
from convoscope.store.rows import CallRows, call_to_rows
from convoscope.store.schema import CALLS, TOOL_CALLS, TURNS, Dialect, ddl_statements

PROJECT = "bench"
RAW_DB = "raw_reference"
GOAL_STORE_CALLS_S = 2_000.0
GOAL_HTTP_CALLS_S = 1_000.0
JOB_SAMPLE_ONE_BY_ONE = 200
"""Calls of the one-job-at-a-time reference: it is the slow path, so a sample is enough."""


@dataclass
class Rate:
    """Calls and turns moved in some seconds."""

    calls: int
    turns: int
    seconds: float

    @property
    def calls_s(self) -> float:
        return self.calls / self.seconds

    @property
    def turns_s(self) -> float:
        return self.turns / self.seconds

    def as_dict(self) -> dict[str, float]:
        return {
            "calls": self.calls,
            "turns": self.turns,
            "seconds": round(self.seconds, 4),
            "calls_s": round(self.calls_s, 1),
            "turns_s": round(self.turns_s, 1),
        }


def _batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _raw_columns(calls: list[Call], version: int) -> tuple[CallRows, float]:
    """The rows of a batch, as the store would write them, and the seconds ``call_to_rows`` took."""
    now = datetime.now(UTC)
    started = time.perf_counter()
    rows = CallRows()
    for call in calls:
        rows.extend(call_to_rows(PROJECT, call, version=version, ingested_at=now))
    return rows, time.perf_counter() - started


def bench_store(calls_n: int, batch: int, workdir: Path, profile: Path | None) -> dict[str, Any]:
    """Store path and raw reference, interleaved batch by batch so both see the same machine noise."""
    print(f"\n== store path: {calls_n} calls in batches of {batch} ==")
    t0 = time.perf_counter()
    calls = synth_calls(calls_n)
    print(f"prepared {calls_n} Call objects in {time.perf_counter() - t0:.1f}s (untimed)")
    batches = _batches(calls, batch)
    turns_per_batch = [sum(len(c.turns) for c in b) for b in batches]

    # Raw rows are prepared before timing and transposed to columns, exactly the shape the store hands
    # the driver, so the raw figure is the driver + engine floor only.
    prepared: list[tuple[list[tuple[Any, ...]], ...]] = []
    to_rows_s = 0.0
    for number, group in enumerate(batches):
        rows, seconds = _raw_columns(group, version=number + 1)
        to_rows_s += seconds
        prepared.append(
            tuple(
                list(zip(*table_rows, strict=True))
                for table_rows in (rows.turns, rows.tool_calls, rows.calls)
            )
        )

    path = workdir / "store-chdb"
    store = open_clickhouse_store(path=path, database="convoscope")
    raw = clickhouse_connect.get_client(dsn=f"chdb://{path.resolve()}")
    for statement in ddl_statements(RAW_DB, Dialect.embedded()):
        raw.command(statement)

    raw_s = store_s = 0.0
    profiler = cProfile.Profile() if profile is not None else None
    try:
        for number, (group, columns) in enumerate(zip(batches, prepared, strict=True)):

            def run_raw(columns: tuple[list[tuple[Any, ...]], ...] = columns) -> float:
                started = time.perf_counter()
                for spec, data in zip((TURNS, TOOL_CALLS, CALLS), columns, strict=True):
                    raw.insert(
                        spec.name,
                        data,
                        database=RAW_DB,
                        column_names=spec.column_names,
                        column_type_names=spec.column_types,
                        column_oriented=True,
                    )
                return time.perf_counter() - started

            def run_store(group: list[Call] = group, number: int = number) -> float:
                started = time.perf_counter()
                if profiler is not None:
                    profiler.enable()
                store.insert_calls(PROJECT, group, version=number + 1)
                if profiler is not None:
                    profiler.disable()
                return time.perf_counter() - started

            # Alternate which goes first, so neither always runs right after the other's merge trigger.
            if number % 2 == 0:
                raw_s += run_raw()
                store_s += run_store()
            else:
                store_s += run_store()
                raw_s += run_raw()
        stored = store.count_calls(PROJECT)
        stages = bench_stages(store, workdir, batch, repeats=5)
        raw_count = int(raw.query(f"SELECT count() FROM `{RAW_DB}`.calls FINAL").result_rows[0][0])
    finally:
        raw.close()
        store.close()
    if stored != calls_n or raw_count != calls_n:
        raise SystemExit(f"count mismatch: store {stored}, raw {raw_count}, expected {calls_n}")

    turns = sum(turns_per_batch)
    raw_rate = Rate(calls_n, turns, raw_s)
    store_rate = Rate(calls_n, turns, store_s)
    if profiler is not None and profile is not None:
        profiler.dump_stats(str(profile))
        print(f"store-path profile written to {profile}")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return {
        "calls": calls_n,
        "batch": batch,
        "raw": raw_rate.as_dict(),
        "store": store_rate.as_dict(),
        "call_to_rows_s": round(to_rows_s, 4),
        "call_to_rows_us_per_call": round(to_rows_s / calls_n * 1e6, 1),
        "server_stages_us_per_call": stages,
    }


def bench_stages(store: Any, meta_dir: Path, batch: int, repeats: int) -> dict[str, float]:
    """Microseconds per call of each step a call takes through the server, run one at a time.

    The server splits these steps over a request thread and the worker thread of one process, so under
    the GIL their sum is close to the CPU cost of one call end to end; comparing the sum with the HTTP
    figure shows whether the server is CPU-bound in Python or waiting on something else.
    """
    body = orjson.dumps(list(synth_payloads(batch, seed=13)))
    limits = CallLimits()
    meta = MetadataStore(f"sqlite:///{meta_dir / 'stages.db'}")
    project = meta.ensure_project("stages").id
    stages: dict[str, list[float]] = {}

    def timed(name: str, fn: Any) -> Any:
        started = time.perf_counter()
        value = fn()
        stages.setdefault(name, []).append((time.perf_counter() - started) / batch * 1e6)
        return value

    try:
        for number in range(repeats):
            calls = timed("handler: orjson.loads + validate (parse_calls)", lambda: parse_calls(body, limits))
            timed(
                "handler: outbox enqueue (zlib + SQLite commit, fsync)",
                lambda: meta.enqueue(project, kind="calls", payload=body, content_type="application/json"),
            )
            timed(
                "handler: call ids for the 202",
                lambda calls=calls: [
                    call_id_for(project, c.source, c.external_id, c.started_at) for c in calls
                ],
            )
            items = timed("worker: claim (SQLite read + zlib decompress)", lambda: meta.claim(1))
            stored = timed(
                "worker: assign_identity (model_copy)",
                lambda calls=calls: [assign_identity(project, c) for c in calls],
            )
            timed(
                "worker: insert_calls",
                lambda stored=stored, number=number: store.insert_calls(project, stored, version=number + 1),
            )
            timed("worker: mark_done", lambda items=items: meta.mark_done([i.id for i in items]))
        medians = {name: round(sorted(values)[len(values) // 2], 1) for name, values in stages.items()}
        ids = [call_id_for(project, c.source, c.external_id, c.started_at) for c in parse_calls(body, limits)]
        job_path = bench_job_path(store, meta, project, ids, meta_dir)
    finally:
        meta.close()
    return {"stages": medians, "job_path": job_path}


def bench_job_path(
    store: Any, meta: MetadataStore, project: str, call_ids: list[str], data_dir: Path
) -> dict[str, Any]:
    """The ``evals.run`` job through ``JobRunner`` over stored calls: batched (as the server registers
    it) and one job at a time on a sample (its reference, the path before batching), in calls/s."""
    handler = EvalsJob(store=store, meta=meta, settings=Settings(data_dir=data_dir / "job-path"))

    def run(ids: list[str], runner: JobRunner) -> Rate:
        meta.enqueue_jobs(project, [JobSpec(EVALS_RUN, call_id) for call_id in ids])
        started = time.perf_counter()
        ran = runner.run_until_idle(max_rounds=len(ids) + 1)
        seconds = time.perf_counter() - started
        if ran != len(ids) or runner.failed_jobs:
            raise SystemExit(f"job path: {ran} of {len(ids)} jobs ran, {runner.failed_jobs} failed")
        return Rate(len(ids), 0, seconds)

    try:
        batched = run(call_ids, JobRunner(meta, {EVALS_RUN: handler.batched()}))
        sample = call_ids[:JOB_SAMPLE_ONE_BY_ONE]
        single = run(sample, JobRunner(meta, {EVALS_RUN: handler.batched(size=1)}, claim_jobs=1))
    finally:
        handler.close()
    return {
        "batched": batched.as_dict(),
        "one_by_one": single.as_dict(),
        "speedup": round(batched.calls_s / single.calls_s, 1),
    }


SPY_STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    # First: a follow-up job (an evaluation of each stored call, ...) validates and inserts too.
    ("jobs: follow-up jobs run by the server (JobRunner)", ("_run_claim",)),
    ("handler: Call.model_validate (pydantic)", ("model_validate",)),
    ("handler: parse_calls rest (orjson loads/dumps, limits)", ("parse_calls", "validate_calls")),
    ("handler: outbox enqueue (zlib, SQLite commit)", ("enqueue",)),
    ("handler: call ids for the 202", ("call_id_for",)),
    ("worker: follow-up planning (planners, enqueue_jobs)", ("plan_follow_ups", "enqueue_jobs")),
    ("worker: call_to_rows", ("call_to_rows",)),
    ("worker: chDB insert (driver + engine)", ("_insert",)),
    ("worker: rest (claim, identity, mark done)", ("drain_once", "_flush")),
)
"""Sample attribution: the first stage whose marker is a frame of the stack, checked in this order."""


def _py_spy_command() -> list[str]:
    """py-spy from PATH, else through ``uvx`` (it is a profiler, not a project dependency)."""
    if exe := shutil.which("py-spy"):
        return [exe]
    if uvx := shutil.which("uvx"):
        return [uvx, "py-spy"]
    raise SystemExit("--py-spy needs py-spy on PATH or uvx (uv tool run py-spy)")


def start_py_spy(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """Sample every thread of the server at 100 Hz, collapsed stacks (``--format raw``) into ``output``.

    Why py-spy and not cProfile: the server runs the handler in a thread pool and the worker in
    ``asyncio.to_thread``, which cProfile in the main thread does not see; a sampler sees all threads
    and does not slow the pure-Python parts down the way deterministic profiling does.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [*_py_spy_command(), "record", "--pid", str(pid), "--rate", "100", "--format", "raw"]
        + ["--output", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)  # let it attach before the load starts
    if process.poll() is not None:
        err = process.stderr.read().decode() if process.stderr else ""
        raise SystemExit(f"py-spy could not attach to {pid}: {err[-500:]}")
    return process


def stop_py_spy(process: subprocess.Popen[bytes]) -> None:
    """SIGINT makes py-spy write its output and exit; bounded wait, then this child only is killed."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


SPY_OTHER = "server: rest (Python parts of uvicorn/starlette, auth, healthz)"
SPY_IDLE_LEAVES = frozenset({"wait", "get", "_worker", "select", "sleep", "poll"})
"""Leaf functions of a thread that is blocked, not working: such samples are counted apart."""

SPY_LOOP_LEAF = "Runner.run "
"""The main thread inside uvloop's C event loop: socket reads, HTTP parsing or an idle epoll alike, so
these samples are neither busy nor idle for certain and are counted apart too."""


def summarise_py_spy(path: Path) -> dict[str, float]:
    """Share of the server's busy samples per stage (``SPY_STAGES``), from py-spy's collapsed stacks.

    A frame reads ``Class.function (file:line)``; a stage matches on the bare function name anywhere in
    the stack, first stage first. Samples whose innermost frame is a blocking wait are idle.
    """
    counts: Counter[str] = Counter()
    idle = loop = 0
    for line in path.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        frames = stack.split(";")
        names = [frame.split(" (", 1)[0].rsplit(".", 1)[-1] for frame in frames]
        if names[-1] in SPY_IDLE_LEAVES:
            idle += int(number)
            continue
        if frames[-1].startswith(SPY_LOOP_LEAF):
            loop += int(number)
            continue
        stage = next(
            (label for label, markers in SPY_STAGES if any(n in markers for n in names)),
            SPY_OTHER,
        )
        counts[stage] += int(number)
    busy = sum(counts.values()) or 1
    order = [label for label, _ in SPY_STAGES] + [SPY_OTHER]
    return {label: round(counts[label] / busy, 3) for label in order} | {
        "busy_samples": float(busy),
        "idle_samples": float(idle),
        "event_loop_c_samples": float(loop),
    }


def bench_http(
    calls_n: int, batch: int, clients: int, workdir: Path, drain_timeout_s: float, py_spy: Path | None
) -> dict[str, Any]:
    """POST pre-encoded batches from ``clients`` connections; time the 202s and the drain to the store."""
    print(f"\n== HTTP path: {calls_n} calls in batches of {batch}, {clients} connections ==")
    t0 = time.perf_counter()
    payloads = list(synth_payloads(calls_n, seed=11))
    bodies = [orjson.dumps(group) for group in _batches(payloads, batch)]
    turns = sum(len(p["turns"]) for p in payloads)
    del payloads
    print(
        f"prepared {len(bodies)} bodies ({sum(map(len, bodies)) / len(bodies) / 1e6:.1f} MB each) "
        f"in {time.perf_counter() - t0:.1f}s (untimed)"
    )

    server = ServerProcess(data_dir=workdir / "server-data")
    server.start()
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    assert server.process is not None
    spy = start_py_spy(server.process.pid, py_spy) if py_spy is not None else None
    cpu_before = server.cpu_s()
    try:
        sent = post_all(
            server.url,
            "/api/v1/calls",
            bodies,
            headers,
            clients=clients,
            accepted=202,
            timeout_s=300,
            what="ingest",
        )
        started, acked = sent.started, sent.last_ack

        ingest_ids = sorted(orjson.loads(answer)["ingest_id"] for answer in sent.answers)
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
            wait_stored(client, ingest_ids, drain_timeout_s)
            drained = time.perf_counter()
            cpu_after = server.cpu_s()
            if spy is not None:
                stop_py_spy(spy)
                spy = None
            ingest_state = client.get("/healthz").json()["checks"]["ingest"]
            if ingest_state["pending"] or ingest_state["failed_rows"]:
                raise SystemExit(f"outbox not drained cleanly: {ingest_state}")
            listed = count_listed_calls(client, max_pages=calls_n // LIST_PAGE + 2)
            verified = time.perf_counter()
    finally:
        if spy is not None:
            stop_py_spy(spy)
        server.stop()
    if listed != calls_n:
        raise SystemExit(f"calls list holds {listed} calls after the drain, expected {calls_n}")
    profile = summarise_py_spy(py_spy) if py_spy is not None else None
    cpu_s = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return {
        "server_cpu_s": None if cpu_s is None else round(cpu_s, 2),
        "server_cpu_us_per_call": None if cpu_s is None else round(cpu_s / calls_n * 1e6),
        "py_spy_shares": profile,
        "calls": calls_n,
        "batch": batch,
        "clients": clients,
        "body_mb": round(sum(map(len, bodies)) / len(bodies) / 1e6, 2),
        "ack": Rate(calls_n, turns, acked - started).as_dict(),
        "e2e_drained": Rate(calls_n, turns, drained - started).as_dict(),
        "e2e_verified": Rate(calls_n, turns, verified - started).as_dict(),
        "count_check_s": round(verified - drained, 3),
        "worker": ingest_state,
    }


def wait_stored(client: httpx.Client, ingest_ids: list[int], timeout_s: float) -> None:
    """Poll ``GET /api/v1/ingest/{id}`` until every POST's calls are stored (exits on a failed one).

    The per-request status is one indexed row read. ``/healthz`` is no drain probe: it runs eight chDB
    queries, and at the poll rate a drain needs (every 50 ms) they took CPU and the chDB client from the
    worker being measured.
    """
    deadline = time.monotonic() + timeout_s
    waiting = list(ingest_ids)
    while waiting:
        status = client.get(f"/api/v1/ingest/{waiting[0]}").json()
        if status["status"] == "done":
            waiting.pop(0)
            continue
        if status["status"] == "failed":
            raise SystemExit(f"ingest {waiting[0]} failed: {status['error']}")
        if time.monotonic() > deadline:
            raise SystemExit(f"outbox not drained in {timeout_s}s: {len(waiting)} requests not stored")
        time.sleep(0.05)


def report(results: dict[str, Any]) -> None:
    """Print the result table: rates, ratios to raw, and the goals beside them."""
    store = results.get("store")
    http = results.get("http")
    raw = store["raw"] if store else None
    rows: list[list[object]] = []

    def ratio(calls_s: float) -> str:
        return f"{calls_s / raw['calls_s']:.2f}" if raw else "n/a"

    def verdict(calls_s: float, goal: float) -> str:
        return f">= {goal:,.0f}: {'met' if calls_s >= goal else 'MISSED'}"

    if store and raw:
        rows.append(
            ["raw chDB insert (reference)", f"{raw['calls_s']:,.0f}", f"{raw['turns_s']:,.0f}", "1.00", ""]
        )
        s = store["store"]
        rows.append(
            [
                "store: insert_calls",
                f"{s['calls_s']:,.0f}",
                f"{s['turns_s']:,.0f}",
                ratio(s["calls_s"]),
                verdict(s["calls_s"], GOAL_STORE_CALLS_S),
            ]
        )
    if http:
        for key, label in (
            ("ack", "HTTP: 202 acks"),
            ("e2e_drained", "HTTP: end-to-end (outbox drained)"),
            ("e2e_verified", "HTTP: end-to-end (+ list count checked)"),
        ):
            h = http[key]
            goal = verdict(h["calls_s"], GOAL_HTTP_CALLS_S) if key != "ack" else ""
            rows.append([label, f"{h['calls_s']:,.0f}", f"{h['turns_s']:,.0f}", ratio(h["calls_s"]), goal])
    print("\n== results ==")
    print_table(["path", "calls/s", "turns/s", "ratio to raw", "goal (calls/s)"], rows)
    if http and http.get("server_cpu_us_per_call") is not None:
        per_call = http["server_cpu_us_per_call"]
        cores = http["server_cpu_s"] / http["e2e_drained"]["seconds"]
        print(
            f"\nserver CPU from the first POST to the drain (every thread, chDB's included): "
            f"{http['server_cpu_s']:.1f}s, {per_call:,} us per call -> {1e6 / per_call:,.0f} calls per "
            f"CPU-second; the wall-clock rate above got {cores:.2f} cores on average"
        )
    if store:
        print(
            f"\nstore path: call_to_rows costs {store['call_to_rows_us_per_call']} us/call "
            f"({store['call_to_rows_s']:.2f}s of the store's {store['store']['seconds']:.2f}s)"
        )
        stages = store["server_stages_us_per_call"]["stages"]
        total = sum(stages.values())
        print("\nserver stages, one at a time in this process (median of 5 batches), us per call:")
        print_table(
            ["stage", "us/call", "share"],
            [[name, f"{us:.0f}", f"{us / total:.0%}"] for name, us in stages.items()]
            + [["sum (one core, GIL-serialised)", f"{total:.0f}", f"-> {1e6 / total:,.0f} calls/s"]],
        )
    if store:
        jobs = store["server_stages_us_per_call"]["job_path"]
        print("\nevals.run job path through JobRunner (claim, get_calls, evaluate, insert_scores, settle):")
        print_table(
            ["path", "calls", "calls/s", "ratio to one by one"],
            [
                [
                    "one job at a time (reference)",
                    jobs["one_by_one"]["calls"],
                    jobs["one_by_one"]["calls_s"],
                    "1.0",
                ],
                [
                    "batched (as the server runs it)",
                    jobs["batched"]["calls"],
                    jobs["batched"]["calls_s"],
                    jobs["speedup"],
                ],
            ],
        )
    if http and http.get("py_spy_shares"):
        shares = dict(http["py_spy_shares"])
        busy, idle = int(shares.pop("busy_samples")), int(shares.pop("idle_samples"))
        loop = int(shares.pop("event_loop_c_samples"))
        print(
            f"\nserver under HTTP load, py-spy at 100 Hz, all threads: share of {busy:,} busy samples "
            f"(left out: {idle:,} idle, {loop:,} in uvloop's C loop, busy or not):"
        )
        print_table(["stage", "share"], [[name, f"{share:.0%}"] for name, share in shares.items()])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store-calls", type=int, default=20_000, help="calls through the store path")
    parser.add_argument("--http-calls", type=int, default=10_000, help="calls through the HTTP path")
    parser.add_argument("--batch", type=int, default=1_000, help="calls per insert / per POST (max 1000)")
    parser.add_argument("--clients", type=int, default=2, help="concurrent HTTP connections")
    parser.add_argument("--quick", action="store_true", help="small smoke run (2,000 + 2,000 calls)")
    parser.add_argument("--skip-store", action="store_true", help="skip the store path and raw reference")
    parser.add_argument("--skip-http", action="store_true", help="skip the HTTP path")
    parser.add_argument(
        "--drain-timeout", type=float, default=300.0, help="max seconds to wait for the drain"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where data dirs go (default: a temp dir)")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile the store path into this file")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        help="sample the server with py-spy during the HTTP phase, collapsed stacks into this file",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.store_calls, args.http_calls = 2_000, 2_000

    env = environment()
    print_environment(env)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="convoscope-bench-ingest-"))
    results: dict[str, Any] = {"environment": env, "args": {k: str(v) for k, v in vars(args).items()}}
    try:
        if not args.skip_store:
            results["store"] = bench_store(args.store_calls, args.batch, workdir, args.profile)
        if not args.skip_http:
            results["http"] = bench_http(
                args.http_calls, args.batch, args.clients, workdir, args.drain_timeout, args.py_spy
            )
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    report(results)
    write_json(args.json, results)


if __name__ == "__main__":
    main()
