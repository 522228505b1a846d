"""Every span acknowledged by ``/v1/traces`` survives ``kill -9`` of the server, and its call is assembled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from test_otlp_kit import KEY, Recorder, _free_port, pipecat_conversation

AUTH = {"Authorization": f"Bearer {KEY}"}


class _Server:
    """``convoscope serve`` as a child process."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONVOSCOPE_")}
        env.update(
            {
                "CONVOSCOPE_DATA_DIR": str(self.data_dir),
                "CONVOSCOPE_INIT_API_KEY": KEY,
                "CONVOSCOPE_OTLP_SETTLE_S": "0",
            }
        )
        log = open(self.data_dir.parent / f"server-{self.port}.log", "ab")
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
        log.close()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "server exited"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("server did not start")

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


def _calls(url: str) -> set[str]:
    found: set[str] = set()
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = httpx.get(f"{url}/api/v1/calls", params=params, headers=AUTH, timeout=30).json()
        found.update(str(item["external_id"]) for item in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return found


def test_acknowledged_spans_survive_kill_9(tmp_path: Path) -> None:
    server = _Server(tmp_path / "data")
    (tmp_path / "data").mkdir()
    exports: list[tuple[str, str, int, bytes]] = []
    for n in range(300):
        recorder = Recorder()
        pipecat_conversation(recorder, f"conv-{n}", turns=2)
        spans = recorder.spans()
        trace_id = format(spans[0].context.trace_id, "032x")
        exports.append((f"conv-{n}", trace_id, len(spans), encode_spans(spans).SerializeToString()))
    acknowledged: list[tuple[str, str, int]] = []
    stop = threading.Event()

    def send() -> None:
        headers = {**AUTH, "Content-Type": "application/x-protobuf"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
            for conversation, trace_id, count, body in exports:
                if stop.is_set():
                    return
                try:
                    response = client.post("/v1/traces", content=body)
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    acknowledged.append((conversation, trace_id, count))

    server.start()
    try:
        sender = threading.Thread(target=send)
        sender.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 60 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.kill9()
        stop.set()
        sender.join(timeout=30)
        assert len(acknowledged) >= 60

        server.start()
        expected = {conversation for conversation, _, _ in acknowledged}
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not expected <= _calls(server.url):
            time.sleep(0.5)
        assert expected <= _calls(server.url), "an acknowledged conversation never became a call"
        for _, trace_id, count in acknowledged:
            tree = httpx.get(f"{server.url}/api/v1/traces/{trace_id}", headers=AUTH, timeout=30).json()
            assert tree["span_count"] == count, f"trace {trace_id} lost spans"
    finally:
        server.stop()
