"""Two API servers and two workers sharing PostgreSQL and a ClickHouse server, one worker killed mid-job.

Every process is a real ``convoscope`` process: the APIs run with ``CONVOSCOPE_RUN_JOBS=false`` and only
accept, the workers drain the shared outbox and run the shared job queue. The ClickHouse server is the
test front serving chDB over ClickHouse's HTTP interface; recordings sit in one data directory all
processes reach, as on a shared filesystem. Calls go to both APIs; once the first worker is running
jobs it is killed with SIGKILL, and the second must take its leased jobs over: every call is then
stored once, analysed once and evaluated once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from convoscope.testing import call_payload, stereo_wav_bytes
from convoscope.testing.chfront import running_front
from convoscope.testing.processes import free_port, start_convoscope, stop_all
from pg import PostgresCluster

KEY = "cvs_scale_out_test_key_0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
CALLS_PER_API = 12
LEASE_S = 3.0


class Cluster:
    """The processes of one deployment, started with one environment and stopped at the end."""

    def __init__(self, tmp_path: Path, clickhouse_url: str, metadata_url: str) -> None:
        self.env = {
            **os.environ,
            "CONVOSCOPE_DATA_DIR": str(tmp_path / "shared"),
            "CONVOSCOPE_CLICKHOUSE_URL": clickhouse_url,
            "CONVOSCOPE_METADATA_URL": metadata_url,
            "CONVOSCOPE_INIT_API_KEY": KEY,
            "CONVOSCOPE_CLAIM_LEASE_S": str(LEASE_S),
            "CONVOSCOPE_OUTBOX_POLL_S": "0.2",
            "CONVOSCOPE_RUN_JOBS": "false",
        }
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        process = start_convoscope(list(args), self.env, self.logs / f"{name}.log")
        self.processes.append(process)
        return process

    def api(self, name: str) -> str:
        port = free_port()
        process = self.start(name, "serve", "--host", "127.0.0.1", "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code in (200, 503):
                    return url
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{name} did not start:\n{self.log(name)}")
            time.sleep(0.2)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        stop_all(self.processes, grace_s=20)


@pytest.fixture
def cluster(tmp_path: Path, postgres: PostgresCluster) -> Iterator[Cluster]:
    with running_front(tmp_path / "chdb") as clickhouse_url:
        started = Cluster(tmp_path, clickhouse_url, postgres.database())
        try:
            yield started
        finally:
            started.stop()


class Jobs:
    """The shared job table, read over one connection (fast enough to catch a job while it runs)."""

    def __init__(self, metadata_url: str) -> None:
        dsn = metadata_url.replace("postgresql+psycopg://", "postgresql://")
        self._connection = psycopg.connect(dsn, autocommit=True)

    def __call__(self) -> list[dict[str, Any]]:
        rows = self._connection.execute(
            "SELECT id, kind, call_id, status, attempts, claimed_by FROM jobs ORDER BY id"
        ).fetchall()
        names = ("id", "kind", "call_id", "status", "attempts", "claimed_by")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def close(self) -> None:
        self._connection.close()


def _post(url: str, index: int) -> None:
    payload = call_payload(external_id=f"scale-{index:03d}")
    if index % 2 == 0:  # half the calls bring a stereo recording, so they are analysed too
        # A minute long, so that an analysis runs long enough to be caught running.
        wav = stereo_wav_bytes(left=[(0.5, 28.0)], right=[(29.0, 58.0)], duration_s=60.0, sample_rate=8000)
        response = httpx.post(
            f"{url}/api/v1/calls",
            data={"call": orjson.dumps(payload).decode(), "channel_map": "user,agent"},
            files={"recording": ("call.wav", wav, "audio/wav")},
            headers=AUTH,
            timeout=30,
        )
    else:
        response = httpx.post(f"{url}/api/v1/calls", json=payload, headers=AUTH, timeout=30)
    assert response.status_code == 202, response.text


def test_two_apis_and_two_workers_lose_and_repeat_nothing_when_a_worker_is_killed(
    cluster: Cluster,
) -> None:
    jobs_now = Jobs(cluster.env["CONVOSCOPE_METADATA_URL"])
    try:
        _scale_out(cluster, jobs_now)
    finally:
        jobs_now.close()


def _scale_out(cluster: Cluster, jobs_now: Jobs) -> None:
    first_api, second_api = cluster.api("api-1"), cluster.api("api-2")
    workers = {cluster.start(name, "worker"): name for name in ("worker-1", "worker-2")}
    deadline = time.monotonic() + 90
    while not all("worker running" in cluster.log(name) for name in workers.values()):
        assert time.monotonic() < deadline, [cluster.log(name) for name in workers.values()]
        assert all(process.poll() is None for process in workers), [cluster.log(n) for n in workers.values()]
        time.sleep(0.2)
    total = 2 * CALLS_PER_API
    for index in range(total):
        _post(first_api if index % 2 == 0 else second_api, index)

    # Kill the worker that is running audio analyses (a lane claims several at once and runs them in
    # turn): they are leased to it, and must go to the other worker.
    by_pid = {str(process.pid): process for process in workers}
    deadline = time.monotonic() + 120
    held: list[dict[str, Any]] = []
    while not held:
        assert time.monotonic() < deadline, (jobs_now(), [cluster.log(n) for n in workers.values()])
        held = [job for job in jobs_now() if job["status"] == "running" and job["kind"] == "audio.analyze"]
        time.sleep(0.005)
    doomed = by_pid[str(held[0]["claimed_by"]).split("-", 1)[0]]
    held = [job for job in held if job["claimed_by"] == held[0]["claimed_by"]]
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    (survivor,) = set(workers) - {doomed}
    survivor_name = workers[survivor]

    expected_kinds = {"evals.run"}
    deadline = time.monotonic() + 180
    while True:
        jobs = jobs_now()
        analysed = {job["call_id"] for job in jobs if job["kind"] == "audio.analyze"}
        finished = all(job["status"] in ("done", "failed") for job in jobs)
        evaluated = {job["call_id"] for job in jobs if job["kind"] == "evals.run" and job["status"] == "done"}
        if finished and len(evaluated) == total and len(analysed) == total // 2:
            break
        assert time.monotonic() < deadline, (jobs, cluster.log(survivor_name))
        assert survivor.poll() is None, cluster.log(survivor_name)
        time.sleep(0.3)

    assert [job for job in jobs if job["status"] != "done"] == []
    for job in held:  # the killed worker's jobs were taken over and finished by the survivor
        (now,) = [row for row in jobs if row["id"] == job["id"]]
        assert now["status"] == "done"
        assert str(now["claimed_by"]).startswith(f"{survivor.pid}-")
        assert now["attempts"] == job["attempts"] + 1
    assert {job["kind"] for job in jobs} >= expected_kinds | {"audio.analyze"}

    # Every call once, through either API, with one analysis and one evaluation each.
    listed = httpx.get(f"{second_api}/api/v1/calls", params={"limit": 100}, headers=AUTH, timeout=30).json()
    external = sorted(item["external_id"] for item in listed["items"])
    assert external == [f"scale-{index:03d}" for index in range(total)]
    for item in listed["items"]:
        detail = httpx.get(f"{first_api}/api/v1/calls/{item['id']}", headers=AUTH, timeout=30).json()
        kinds = sorted(job["kind"] for job in detail["jobs"])
        recorded = int(item["external_id"].rsplit("-", 1)[1]) % 2 == 0
        assert kinds == (["audio.analyze", "evals.run"] if recorded else ["evals.run"]), detail["jobs"]
        names = [score["metric"] for score in detail["scores"]]
        assert names and len(names) == len(set(names)), names  # each metric scored once
        assert any(name.startswith("turn_taking.") for name in names) == recorded, names
