"""Ingest and job throughput with 1, 2 and 4 worker processes against the embedded single process.

Why this figure: ``convoscope worker`` is how the work behind the API leaves the API process and
spreads over cores and machines. The reference is ``convoscope serve`` alone (embedded chDB, SQLite),
measured in the same run. Each configuration gets the same calls: POSTed in batches to the API, then
drained from the outbox into ClickHouse and evaluated (one ``evals.run`` job per call); the time runs
from the first POST until the last job is done. The scaled configurations run one API process
(``CONVOSCOPE_RUN_JOBS=false``), N workers, PostgreSQL (Debian's, a throwaway cluster) and the
ClickHouse server front that serves chDB over HTTP (``convoscope.testing.chfront``), all on this box.

Also measured: CPU seconds per call, summed over every process of the configuration (API, workers,
front, not PostgreSQL), which does not depend on the share of the cores the box gives; and how long a
killed worker's running job waits before another worker takes it (bounded by ``claim_lease_s``).

On a 2-core box the curve flattens fast: N workers, the API, the front and PostgreSQL share two cores,
and the front serialises chDB. The curve to expect on real hardware is the CPU per call: workers add
throughput while cores are free.

Run: ``uv run python benchmarks/scale_out.py`` (a few minutes); ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _common import (
    API_KEY,
    ServerProcess,
    environment,
    post_all,
    print_environment,
    print_table,
    process_cpu_s,
)
from convoscope.testing import call_payload, stereo_wav_bytes
from convoscope.testing.chfront import running_front
from convoscope.testing.processes import start_convoscope, stop_all
from pg import PostgresCluster

AUTH = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
LEASE_S = 10.0


def _bodies(calls: int, batch: int, tag: str) -> list[bytes]:
    turns = [
        {
            "role": "agent" if i % 2 == 0 else "user",
            "text": f"sentence {i} of the call",
            "start_s": 3.0 * i,
            "end_s": 3.0 * i + 2.5,
        }
        for i in range(12)
    ]
    return [
        orjson.dumps([call_payload(external_id=f"{tag}-{start + i:06d}", turns=turns) for i in range(batch)])
        for start in range(0, calls, batch)
    ]


class Workers:
    """``convoscope worker`` processes with one environment."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, count: int, *, timeout_s: float = 90.0) -> None:
        started = []
        for _ in range(count):
            log_path = self.log_dir / f"worker-{len(self.processes)}.log"
            process = start_convoscope(["worker"], self.env, log_path)
            self.processes.append(process)
            started.append((process, log_path))
        deadline = time.monotonic() + timeout_s
        for process, log_path in started:
            while "worker running" not in log_path.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"a worker did not start; see {log_path}")
                time.sleep(0.1)

    def cpu_s(self) -> float:
        return sum(process_cpu_s(process.pid) or 0.0 for process in self.processes if process.poll() is None)

    def stop(self) -> None:
        stop_all(self.processes)


def _wait_done(remaining: Callable[[], int], timeout_s: float = 900.0) -> float:
    """Poll until nothing remains; the moment it was seen done (``time.perf_counter``)."""
    deadline = time.monotonic() + timeout_s
    while remaining() > 0:
        if time.monotonic() > deadline:
            raise SystemExit("the work did not finish in time")
        time.sleep(0.05)
    return time.perf_counter()


def _remaining_sql(calls: int) -> str:
    return (
        "SELECT (SELECT count(*) FROM outbox WHERE status = 'pending')"
        " + (SELECT count(*) FROM jobs WHERE status IN ('pending', 'running'))"
        f" + ({calls} - (SELECT count(*) FROM jobs WHERE kind = 'evals.run' AND status = 'done'))"
    )


def _run(server: ServerProcess, bodies: list[bytes], calls: int, remaining: Callable[[], int]) -> float:
    delivery = post_all(
        server.url, "/api/v1/calls", bodies, AUTH, clients=2, accepted=202, timeout_s=120, what="ingest"
    )
    return _wait_done(remaining) - delivery.started


def embedded(root: Path, calls: int, batch: int) -> dict[str, Any]:
    server = ServerProcess(root / "embedded" / "data")
    server.start()
    database = sqlite3.connect(f"file:{server.data_dir / 'metadata.db'}?mode=ro", uri=True)
    try:
        query = _remaining_sql(calls)
        cpu_before = server.cpu_s() or 0.0
        seconds = _run(
            server, _bodies(calls, batch, "embedded"), calls, lambda: database.execute(query).fetchone()[0]
        )
        cpu = (server.cpu_s() or 0.0) - cpu_before
    finally:
        database.close()
        server.stop()
    return {"config": "embedded, one process", "seconds": seconds, "cpu_s": cpu}


def _deployment(
    root: Path, name: str, front_url: str, postgres: PostgresCluster
) -> tuple[ServerProcess, Workers, psycopg.Connection[tuple[Any, ...]]]:
    """An API server with ``run_jobs`` off on a fresh database, the (not yet started) workers that share
    its stores, and a connection to the metadata database to watch the queue with."""
    metadata_url = postgres.database()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVOSCOPE_")}
    env.update(
        {
            "CONVOSCOPE_DATA_DIR": str(root / name / "shared"),
            "CONVOSCOPE_INIT_API_KEY": API_KEY,
            "CONVOSCOPE_CLICKHOUSE_URL": f"{front_url}/{name}",
            "CONVOSCOPE_METADATA_URL": metadata_url,
            "CONVOSCOPE_RUN_JOBS": "false",
            "CONVOSCOPE_CLAIM_LEASE_S": str(LEASE_S),
        }
    )
    (root / name).mkdir(parents=True, exist_ok=True)
    server = ServerProcess(root / name / "api")
    server.start(extra_env={k: v for k, v in env.items() if k != "CONVOSCOPE_DATA_DIR"})
    dsn = metadata_url.replace("postgresql+psycopg://", "postgresql://")
    return server, Workers(env, root / name), psycopg.connect(dsn, autocommit=True)


def scaled(
    root: Path,
    front_url: str,
    front_pid: int,
    postgres: PostgresCluster,
    workers: int,
    calls: int,
    batch: int,
) -> dict[str, Any]:
    name = f"workers{workers}"
    server, pool, connection = _deployment(root, name, front_url, postgres)
    try:
        pool.start(workers)
        query = _remaining_sql(calls)
        before = (server.cpu_s() or 0.0) + pool.cpu_s() + (process_cpu_s(front_pid) or 0.0)
        seconds = _run(
            server, _bodies(calls, batch, name), calls, lambda: connection.execute(query).fetchone()[0]
        )
        cpu = (server.cpu_s() or 0.0) + pool.cpu_s() + (process_cpu_s(front_pid) or 0.0) - before
    finally:
        connection.close()
        pool.stop()
        server.stop()
    return {
        "config": f"{workers} worker{'s' if workers > 1 else ''} + 1 API",
        "seconds": seconds,
        "cpu_s": cpu,
    }


def takeover(root: Path, front_url: str, postgres: PostgresCluster) -> float:
    """Seconds from killing the worker that runs an audio analysis until the other worker runs it."""
    server, pool, connection = _deployment(root, "takeover", front_url, postgres)
    try:
        pool.start(2)
        import httpx

        wav = stereo_wav_bytes(left=[(0.5, 28.0)], right=[(29.0, 58.0)], duration_s=60.0, sample_rate=8000)
        for index in range(8):
            form = {
                "call": orjson.dumps(call_payload(external_id=f"rec-{index}")).decode(),
                "channel_map": "user,agent",
            }
            response = httpx.post(
                f"{server.url}/api/v1/calls",
                data=form,
                files={"recording": ("call.wav", wav, "audio/wav")},
                headers={"Authorization": f"Bearer {API_KEY}"},
                timeout=60,
            )
            response.raise_for_status()
        by_pid = {str(process.pid): process for process in pool.processes}
        deadline = time.monotonic() + 120
        while True:
            held = connection.execute(
                "SELECT id, claimed_by FROM jobs WHERE status = 'running' AND kind = 'audio.analyze' LIMIT 1"
            ).fetchone()
            if held is not None:
                break
            if time.monotonic() > deadline:
                raise SystemExit("no audio analysis was seen running")
            time.sleep(0.005)
        job_id, claimer = held
        by_pid[str(claimer).split("-", 1)[0]].send_signal(signal.SIGKILL)
        killed = time.perf_counter()
        while True:
            (now,) = connection.execute("SELECT claimed_by FROM jobs WHERE id = %s", (job_id,)).fetchone()
            if now != claimer:
                return time.perf_counter() - killed
            if time.perf_counter() - killed > 10 * LEASE_S:
                raise SystemExit("the killed worker's job was never taken over")
            time.sleep(0.02)
    finally:
        connection.close()
        pool.stop()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=1000, help="Calls per configuration.")
    parser.add_argument("--batch", type=int, default=100, help="Calls per POST.")
    parser.add_argument("--workers", default="1,2,4", help="Worker counts to measure.")
    parser.add_argument("--quick", action="store_true", help="A small smoke run.")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.workers = 200, "1,2"
    print_environment(environment())
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cvs-scale-out-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        results.append(embedded(root, args.calls, args.batch))
        postgres = PostgresCluster()
        stack.callback(postgres.stop)
        front_url = stack.enter_context(running_front(root / "front"))
        front_pid = int(
            subprocess.run(
                ["pgrep", "-f", f"chfront --path {root / 'front'}"], capture_output=True, text=True
            ).stdout.split()[0]
        )
        for count in (int(part) for part in args.workers.split(",")):
            results.append(scaled(root, front_url, front_pid, postgres, count, args.calls, args.batch))
        pickup = takeover(root, front_url, postgres)
    reference = args.calls / results[0]["seconds"]
    print()
    print_table(
        ["configuration", "calls/s (ingest + evaluation)", "vs embedded", "CPU ms per call"],
        [
            [
                result["config"],
                f"{args.calls / result['seconds']:.0f}",
                f"{args.calls / result['seconds'] / reference:.2f}x",
                f"{1000 * result['cpu_s'] / args.calls:.1f}",
            ]
            for result in results
        ],
    )
    print(
        f"\na killed worker's running job was taken over after {pickup:.1f} s (claim_lease_s = {LEASE_S:.0f})"
    )


if __name__ == "__main__":
    main()
