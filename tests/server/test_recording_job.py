"""recording.fetch against a real HTTP server on loopback: success, expired link, slow server, not audio."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from convoscope.server.jobs import JobRunner
from convoscope.server.recording_job import RECORDING_FETCH, FetchLimits, RecordingFetchJob
from convoscope.server.services import Services
from convoscope.testing import stereo_wav_bytes

WAV = stereo_wav_bytes(left=[(0.2, 0.8)], right=[(1.0, 1.6)], duration_s=2.0)
SLOW_S = 1.0
FAST_LIMITS = FetchLimits(read_timeout_s=0.3, retry_base_s=0.0, retry_max_s=0.0, max_bytes=len(WAV) * 4)


@dataclass
class Vendor:
    """A recording host: each path answers as a vendor's storage would; it counts the requests."""

    base: str
    hits: dict[str, int] = field(default_factory=dict)


def _handler(vendor: Vendor) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            vendor.hits[path] = vendor.hits.get(path, 0) + 1
            if path == "/ok.wav":
                self._send(200, WAV, "audio/wav")
            elif path == "/expired.wav":
                self._send(
                    403,
                    b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                    "application/xml",
                )
            elif path == "/slow.wav":
                if vendor.hits[path] == 1:
                    time.sleep(SLOW_S)
                self._send(200, WAV, "audio/wav")
            elif path == "/page.wav":
                self._send(200, b"<html><body>Sign in to continue</body></html>", "text/html")
            elif path == "/huge.wav":
                self._send(200, WAV * 5, "audio/wav")
            elif path == "/busy.wav":
                self._send(503 if vendor.hits[path] == 1 else 200, WAV, "audio/wav")
            elif path == "/redirect.wav":
                self.send_response(302)
                self.send_header("Location", f"{vendor.base}/ok.wav?X-Amz-Signature=secret")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._send(404, b"no such key", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the slow case)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def vendor() -> Iterator[Vendor]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    state = Vendor(base=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def fetch_runner(services: Services) -> JobRunner:
    """A runner of recording.fetch alone, with a short timeout and no wait between attempts."""
    return JobRunner(
        services.meta,
        {RECORDING_FETCH: RecordingFetchJob.of(services, limits=FAST_LIMITS)},
        max_attempts=3,
    )


def _post_call(client: TestClient, auth: dict[str, str], url: str, external_id: str) -> str:
    document = {
        "call_id": external_id,
        "started_at": "2026-01-05T10:00:00Z",
        "recording_url": url,
        "transcript": [{"role": "user", "content": "hi", "start_time": 0.2, "end_time": 0.8}],
    }
    response = client.post("/api/v1/ingest/generic", content=orjson.dumps(document), headers=auth)
    assert response.status_code == 202, response.text
    call_id: str = response.json()["id"]
    return call_id


def _fetch_job(client: TestClient, auth: dict[str, str], call_id: str) -> dict[str, Any]:
    detail = client.get(f"/api/v1/calls/{call_id}", headers=auth).json()
    jobs = [job for job in detail["jobs"] if job["kind"] == RECORDING_FETCH]
    assert len(jobs) == 1, detail["jobs"]
    job: dict[str, Any] = jobs[0]
    return job


def test_success_rehosts_and_serves_the_recording(
    client: TestClient,
    auth: dict[str, str],
    vendor: Vendor,
    drain: Callable[[], int],
    fetch_runner: JobRunner,
) -> None:
    call_id = _post_call(client, auth, f"{vendor.base}/redirect.wav?token=abc", "ok")
    drain()
    assert _fetch_job(client, auth, call_id)["status"] == "pending"
    assert client.get(f"/api/v1/calls/{call_id}/recording", headers=auth).status_code == 404
    assert fetch_runner.run_until_idle() == 1
    assert _fetch_job(client, auth, call_id)["status"] == "done"
    recording = client.get(f"/api/v1/calls/{call_id}", headers=auth).json()["call"]["recordings"][0]
    assert recording["uri"].startswith("blob:") and recording["channels"] == 2
    assert recording["format"] == "wav" and recording["duration_s"] == pytest.approx(2.0)
    served = client.get(f"/api/v1/calls/{call_id}/recording", headers=auth)
    assert served.status_code == 200 and served.content == WAV
    jobs = {job["kind"] for job in client.get(f"/api/v1/calls/{call_id}", headers=auth).json()["jobs"]}
    assert "audio.analyze" in jobs, "a re-hosted recording gets its analysis planned"


def test_expired_link_fails_the_job_visibly(
    client: TestClient,
    auth: dict[str, str],
    vendor: Vendor,
    drain: Callable[[], int],
    fetch_runner: JobRunner,
) -> None:
    call_id = _post_call(client, auth, f"{vendor.base}/expired.wav?X-Amz-Signature=topsecret", "expired")
    drain()
    fetch_runner.run_until_idle()
    job = _fetch_job(client, auth, call_id)
    assert job["status"] == "failed" and job["attempts"] == 1, "an expired link is not retried"
    assert "403" in job["error"] and "expired" in job["error"]
    assert "/expired.wav" in job["error"] and "topsecret" not in job["error"]


def test_slow_server_times_out_then_retries(
    client: TestClient,
    auth: dict[str, str],
    vendor: Vendor,
    drain: Callable[[], int],
    fetch_runner: JobRunner,
) -> None:
    call_id = _post_call(client, auth, f"{vendor.base}/slow.wav", "slow")
    drain()
    assert fetch_runner.run_once() == 1
    job = _fetch_job(client, auth, call_id)
    assert job["status"] == "pending" and "timed out" in job["error"]
    assert fetch_runner.run_until_idle() == 1
    assert _fetch_job(client, auth, call_id)["status"] == "done"
    assert vendor.hits["/slow.wav"] == 2


def test_server_error_is_retried(
    client: TestClient,
    auth: dict[str, str],
    vendor: Vendor,
    drain: Callable[[], int],
    fetch_runner: JobRunner,
) -> None:
    call_id = _post_call(client, auth, f"{vendor.base}/busy.wav", "busy")
    drain()
    fetch_runner.run_until_idle()
    assert _fetch_job(client, auth, call_id)["status"] == "done"
    assert vendor.hits["/busy.wav"] == 2


@pytest.mark.parametrize(
    ("path", "message"),
    [("/page.wav", "did not return audio"), ("/huge.wav", "limit"), ("/missing.wav", "404")],
)
def test_unusable_body_fails_with_a_clear_error(
    client: TestClient,
    auth: dict[str, str],
    vendor: Vendor,
    drain: Callable[[], int],
    fetch_runner: JobRunner,
    path: str,
    message: str,
) -> None:
    call_id = _post_call(client, auth, f"{vendor.base}{path}", f"bad{path}")
    drain()
    fetch_runner.run_until_idle()
    job = _fetch_job(client, auth, call_id)
    assert job["status"] == "failed" and message in job["error"] and "recordings[0]" in job["error"]
    recording = client.get(f"/api/v1/calls/{call_id}", headers=auth).json()["call"]["recordings"][0]
    assert recording.get("uri") is None, "nothing half-written: the call keeps only the vendor link"


def test_later_event_keeps_the_rehosted_copy(
    client: TestClient,
    auth: dict[str, str],
    services: Services,
    vendor: Vendor,
    drain: Callable[[], int],
    fetch_runner: JobRunner,
) -> None:
    call_id = _post_call(client, auth, f"{vendor.base}/ok.wav", "resent")
    drain()
    fetch_runner.run_until_idle()
    document = {
        "call_id": "resent",
        "started_at": "2026-01-05T10:00:00Z",
        "recording_url": f"{vendor.base}/ok.wav",
        "transcript": [{"role": "user", "content": "hi again", "start_time": 0.2, "end_time": 0.8}],
    }
    assert (
        client.post("/api/v1/ingest/generic", content=orjson.dumps(document), headers=auth).status_code == 202
    )
    drain()
    call = client.get(f"/api/v1/calls/{call_id}", headers=auth).json()["call"]
    assert call["turns"][0]["text"] == "hi again"
    assert call["recordings"][0]["uri"].startswith("blob:")
    assert fetch_runner.run_until_idle() == 0 and vendor.hits["/ok.wav"] == 1, "no second download"
