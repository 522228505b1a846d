"""A ~95 MB ElevenLabs ``post_call_audio`` webhook against a real server process: the base64 audio is
decoded as the body streams in, so the server's peak memory grows by a bounded amount, not by a multiple of
the body, and the recording it stores is the sent audio byte for byte (served back from disk as it is
sent, with a bounded peak too).

The peak is the kernel's high-water mark of the server's resident set (``VmHWM``), reset just before the
webhook is sent (``clear_refs`` 5), so it measures this request and what the worker does with it, not the
server's start-up.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from .conftest import AUTH, ServerProcess

FIXTURE = Path(__file__).parent.parent / "ingest" / "fixtures" / "elevenlabs" / "post_call_audio.json"
AUDIO_BYTES = 71 * 1024 * 1024
"""The WAV sent: its base64 makes a body of about 95 MB, near the 100 MiB default bound of the route."""
PEAK_BOUND_BYTES = 200 * 1024 * 1024
"""How much the server's resident set may grow over its idle level while taking the webhook and storing it."""
SERVE_BOUND_BYTES = 32 * 1024 * 1024
"""How much it may grow while serving the stored recording back (it is read from disk as it is sent)."""


def _wav(size: int) -> bytes:
    """A mono 16 kHz 16-bit WAV of ``size`` bytes in all, its samples random (so nothing compresses it)."""
    data = os.urandom(size - 44)
    header = b"RIFF" + struct.pack("<I", size - 8) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    return header + fmt + b"data" + struct.pack("<I", len(data)) + data


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing from /proc/{pid}/status")


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _event(conversation_id: str, audio: bytes) -> bytes:
    event: dict[str, Any] = orjson.loads(FIXTURE.read_bytes())
    event["data"]["conversation_id"] = conversation_id
    event["data"]["full_audio"] = "@AUDIO@"
    head, tail = orjson.dumps(event).split(b"@AUDIO@")
    return head + base64.b64encode(audio) + tail


def _stored_recording(client: httpx.Client, call_id: str, timeout_s: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = client.get(f"/api/v1/calls/{call_id}")
        if response.status_code == 200:
            recordings = response.json()["call"]["recordings"]
            if recordings and str(recordings[0].get("uri", "")).startswith("blob:"):
                recording: dict[str, Any] = recordings[0]
                return recording
        time.sleep(0.2)
    raise AssertionError(f"call {call_id} has no stored recording after {timeout_s}s")


def test_a_95_mb_audio_webhook_is_stored_with_bounded_memory(server: ServerProcess) -> None:
    server.start()
    assert server.process is not None
    pid = server.process.pid
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=300) as client:
        # A small audio event first, so the idle level includes every module the audio path loads.
        warm = client.post("/api/v1/ingest/elevenlabs", content=_event("warm-up", _wav(64 * 1024)))
        assert warm.status_code == 202, warm.text
        _stored_recording(client, warm.json()["id"])
        time.sleep(1.0)
        audio = _wav(AUDIO_BYTES)
        body = _event("large", audio)
        assert 94_000_000 < len(body) < 100 * 1024 * 1024
        _reset_peak(pid)
        idle_kib = _status_kib(pid, "VmRSS")
        response = client.post("/api/v1/ingest/elevenlabs", content=body)
        assert response.status_code == 202, response.text
        recording = _stored_recording(client, response.json()["id"])
        growth = (_status_kib(pid, "VmHWM") - idle_kib) * 1024
        print(f"server peak RSS grew by {growth / 2**20:.0f} MiB over {idle_kib / 1024:.0f} MiB idle")
        assert growth < PEAK_BOUND_BYTES, f"peak RSS grew by {growth / 2**20:.0f} MiB"
        sha = hashlib.sha256(audio).hexdigest()
        assert recording["uri"] == f"blob:{sha}" and recording["sha256"] == sha
        _reset_peak(pid)
        idle_kib = _status_kib(pid, "VmRSS")
        served = hashlib.sha256()
        with client.stream("GET", f"/api/v1/calls/{response.json()['id']}/recording") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-length"] == str(len(audio))
            for chunk in stream.iter_bytes():
                served.update(chunk)
        assert served.hexdigest() == sha
        serving = (_status_kib(pid, "VmHWM") - idle_kib) * 1024
        print(f"serving it grew the peak by {serving / 2**20:.0f} MiB")
        assert serving < SERVE_BOUND_BYTES, (
            f"serving the recording grew the peak by {serving / 2**20:.0f} MiB"
        )
    assert list((server.data_dir / "blobs" / ".tmp").iterdir()) == [], "no temporary file is left behind"
