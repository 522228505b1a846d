"""Child ``convoscope`` processes for the multi-process tests and benchmarks: started with their output in
a log file, and stopped as an orchestrator stops them (SIGTERM, then SIGKILL after a grace period)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["free_port", "start_convoscope", "stop_all"]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_convoscope(args: list[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m convoscope ARGS`` with ``env``, its stdout and stderr appended to ``log_path``."""
    with log_path.open("ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "convoscope", *args], env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )


def stop_all(processes: Iterable[subprocess.Popen[bytes]], *, grace_s: float = 30.0) -> None:
    """SIGTERM every process still running, then wait for each; one that outlives ``grace_s`` is killed."""
    running = list(processes)
    for process in running:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in running:
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
