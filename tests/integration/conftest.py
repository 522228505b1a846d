"""Real server processes: ``convoscope serve`` started as a subprocess on a loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

KEY = "cvs_integration_key_0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
KILL_WITHIN_S = 60.0
"""How long a durability test sends before the server must have acknowledged enough to be killed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVOSCOPE_")}
    env.update({"CONVOSCOPE_DATA_DIR": str(data_dir), "CONVOSCOPE_INIT_API_KEY": KEY, **extra})
    return env


def run_cli(
    *args: str, data_dir: Path, input_text: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """``convoscope ARGS`` in a child process, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "convoscope", *args],
        env=cli_env(data_dir, **env),
        capture_output=True,
        text=True,
        timeout=120,
        input=input_text,
    )


@dataclass
class ServerProcess:
    """A running ``convoscope serve`` and how to reach it."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment for the server (settings such as ``CONVOSCOPE_OTLP_SETTLE_S``)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, command: str = "serve", timeout_s: float = 60.0) -> None:
        log_path = self.data_dir.parent / f"server-{self.port}.log"
        with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "convoscope",
                    command,
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                ],
                env=cli_env(self.data_dir, **self.env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see {log_path}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not become healthy in {timeout_s}s; see {log_path}")

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()


def stored_calls(url: str, **filters: object) -> list[dict[str, Any]]:
    """Every call of the key's project, following the list's cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 500, **filters}
        if cursor:
            params["cursor"] = cursor
        page = httpx.get(f"{url}/api/v1/calls", params=params, headers=AUTH, timeout=30).json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


def kill9_while_sending(
    server: ServerProcess,
    send: Callable[[threading.Event], None],
    acknowledged: Sized,
    *,
    at_least: int,
    within_s: float = KILL_WITHIN_S,
) -> None:
    """Run ``send`` in a thread until ``at_least`` deliveries are acknowledged, then ``kill -9`` the
    server mid-stream; ``send`` returns once the event is set or the connection fails."""
    stop = threading.Event()
    sender = threading.Thread(target=send, args=(stop,))
    sender.start()
    deadline = time.monotonic() + within_s
    while len(acknowledged) < at_least and time.monotonic() < deadline:
        time.sleep(0.02)
    server.kill9()
    stop.set()
    sender.join(timeout=30)
    assert len(acknowledged) >= at_least


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(data_dir=tmp_path / "data")
    yield proc
    proc.stop()


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}
