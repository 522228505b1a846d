"""Shared helpers of the benchmarks: the machine description, percentiles, tables and a server process.

Figures from a shared 2-core box drift from run to run, so every benchmark prints the environment it ran
on next to its results and states each figure also as a ratio to a reference measured in the same run;
the helpers here keep that presentation identical across scripts.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "API_KEY",
    "process_cpu_s",
    "ServerProcess",
    "environment",
    "percentile",
    "print_environment",
    "print_table",
    "write_json",
]

API_KEY = "cvs_benchmark_key_0123456789abcdef"
"""Seeded into the benchmark servers with ``CONVOSCOPE_INIT_API_KEY`` (headless set-up, no CLI step)."""

REPO = Path(__file__).resolve().parent.parent


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment() -> dict[str, Any]:
    """What the figures depend on: cores, memory, interpreter and engine versions, the code revision."""
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gib": _ram_gib(),
        "python": platform.python_version(),
        "chdb-core": _version("chdb-core"),
        "clickhouse-connect": _version("clickhouse-connect"),
        "pydantic": _version("pydantic"),
        "fastapi": _version("fastapi"),
        "convoscope_commit": _git_commit(),
    }


def print_environment(env: dict[str, Any]) -> None:
    """One line per fact, so a pasted log carries its own context."""
    print("environment:")
    for key, value in env.items():
        print(f"  {key:20s} {value}")


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), without pulling numpy into the timing loop."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A Markdown table, so the output can be pasted into docs/benchmarks.md as is."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for number, row in enumerate(cells):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if number == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def write_json(path: Path | None, payload: dict[str, Any]) -> None:
    """Keep the raw figures next to the printed tables when asked (``--json``)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"results written to {path}")


@dataclass(frozen=True)
class Delivery:
    """When a concurrent upload began and when its last answer came (``time.perf_counter``), and the
    answers' bodies in the order they came."""

    started: float
    last_ack: float
    answers: tuple[bytes, ...] = ()


def post_all(
    url: str,
    path: str,
    bodies: Sequence[bytes],
    headers: dict[str, str],
    *,
    clients: int,
    accepted: int,
    timeout_s: float,
    what: str,
) -> Delivery:
    """POST every body to ``url + path`` from ``clients`` connections at once, each taking the next body;
    exits naming ``what`` failed if any answer is not ``accepted``."""
    work: queue.Queue[bytes] = queue.Queue()
    for body in bodies:
        work.put(body)
    errors: list[str] = []
    acks: list[float] = []
    answers: list[bytes] = []
    lock = threading.Lock()

    def client_loop() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=timeout_s) as client:
            while True:
                try:
                    body = work.get_nowait()
                except queue.Empty:
                    return
                response = client.post(path, content=body)
                done = time.perf_counter()
                with lock:
                    if response.status_code != accepted:
                        errors.append(f"{response.status_code}: {response.text[:200]}")
                    acks.append(done)
                    answers.append(response.content)

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"{what} failed: {errors[:3]}")
    return Delivery(started=started, last_ack=max(acks), answers=tuple(answers))


LIST_PAGE = 500
"""The calls list's largest page."""


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system, every thread) process ``pid`` has used so far; None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime and stime are fields 14 and 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(
    process: subprocess.Popen[bytes],
    url: str,
    *,
    timeout_s: float,
    poll_s: float = 0.2,
    probe_timeout_s: float = 5.0,
) -> bool:
    """Poll ``url/healthz`` until it answers 200 (True), or the process exits or time runs out (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if httpx.get(f"{url}/healthz", timeout=probe_timeout_s).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(poll_s)
    return False


def listed_calls(client: httpx.Client, *, max_pages: int | None = None) -> list[dict[str, Any]]:
    """The call summaries ``GET /api/v1/calls`` lists, walked with its largest page (at most
    ``max_pages``)."""
    items: list[dict[str, Any]] = []
    cursor, pages = None, 0
    while max_pages is None or pages < max_pages:
        params: dict[str, Any] = {"limit": LIST_PAGE}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/calls", params=params).raise_for_status().json()
        pages += 1
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return items


def count_listed_calls(client: httpx.Client, *, max_pages: int | None = None) -> int:
    """How many calls ``GET /api/v1/calls`` lists, walked with its largest page (at most ``max_pages``)."""
    return len(listed_calls(client, max_pages=max_pages))


@dataclass
class ServerProcess:
    """``convoscope serve`` as a child process on a loopback port, as an operator would run it.

    A separate process because chDB allows one data directory per process, and because the HTTP figures
    must include the real server stack (uvicorn, the outbox commit, the worker) and not an in-process app.
    """

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout_s: float = 90.0, extra_env: dict[str, str] | None = None) -> None:
        """Start the server and wait (bounded) until ``/healthz`` answers 200."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONVOSCOPE_")}
        env.update({"CONVOSCOPE_DATA_DIR": str(self.data_dir), "CONVOSCOPE_INIT_API_KEY": API_KEY})
        env.update(extra_env or {})
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "convoscope",
                    "serve",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait_healthy(self.process, self.url, timeout_s=timeout_s):
            return
        if self.process.poll() is not None:
            raise RuntimeError(f"server exited with {self.process.returncode}; see {self.log_path}")
        self.stop()
        raise RuntimeError(f"server did not become healthy in {timeout_s}s; see {self.log_path}")

    def cpu_s(self) -> float | None:
        """CPU seconds (user + system, every thread) the server has used so far; None off Linux.

        A shared box gives the server a varying share of the cores, so its wall-clock rate varies from
        run to run; the CPU it spent per call does not, and bounds the rate it reaches on idle cores.
        """
        if self.process is None:
            return None
        return process_cpu_s(self.process.pid)

    def stop(self) -> None:
        """SIGINT (a clean shutdown closes chDB), then SIGKILL of this child only if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
