"""recording.fetch against a real HTTP server on loopback: success, expired link, slow server, not audio,
and the address guard (loopback refused by default, allowed by the setting, re-checked after a redirect).

The server under test allows only ``127.0.0.1/32``, the way a deployment that fetches from an internal
host would list that host's network.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from convoscope.config import Settings
from convoscope.recordings.egress import refusal
from convoscope.recordings.fetch import FetchLimits, RecordingFetchJob
from convoscope.runtime.jobs import JobRunner
from convoscope.runtime.kinds import RECORDING_FETCH
from convoscope.server.services import Services, open_services
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.testing import stereo_wav_bytes

WAV = stereo_wav_bytes(left=[(0.2, 0.8)], right=[(1.0, 1.6)], duration_s=2.0)
SLOW_S = 1.0
FAST_LIMITS = FetchLimits(read_timeout_s=0.3, retry_base_s=0.0, retry_max_s=0.0, max_bytes=len(WAV) * 4)
ALLOWED = "127.0.0.1/32"
OTHER_LOOPBACK = "127.0.0.2"


@dataclass
class Vendor:
    """A recording host: each path answers as a vendor's storage would; it counts the requests."""

    base: str
    hits: dict[str, int] = field(default_factory=dict)
    elsewhere: str = ""
    """Base URL of a second host (on a network the server does not allow) that ``/hop.wav`` redirects to."""


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
                self._redirect(f"{vendor.base}/ok.wav?X-Amz-Signature=secret")
            elif path == "/hop.wav":
                self._redirect(f"{vendor.elsewhere}/ok.wav")
            elif path == "/scheme.wav":
                self._redirect("file:///etc/passwd")
            else:
                self._send(404, b"no such key", "text/plain")

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

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


def _serve(host: str, state: Vendor) -> tuple[ThreadingHTTPServer, threading.Thread]:
    server = ThreadingHTTPServer((host, 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def vendor() -> Iterator[Vendor]:
    """The vendor's host on 127.0.0.1 (allowed), and a second one on 127.0.0.2 (not allowed)."""
    state = Vendor(base="")
    main, main_thread = _serve("127.0.0.1", state)
    other, other_thread = _serve(OTHER_LOOPBACK, state)
    state.base = f"http://127.0.0.1:{main.server_address[1]}"
    state.elsewhere = f"http://{OTHER_LOOPBACK}:{other.server_address[1]}"
    yield state
    for server, thread in ((main, main_thread), (other, other_thread)):
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def services(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[Services]:
    """The server's services, with the vendor's loopback host listed as an allowed network."""
    settings = Settings(
        data_dir=tmp_path / "data",
        init_api_key="cvs_test_key_project_default_0001",
        recording_fetch_allowed_networks=(ip_network(ALLOWED),),
    )
    opened = open_services(settings, store=clickhouse_store)
    yield opened
    opened.meta.close()


@pytest.fixture
def fetch_runner(services: Services) -> JobRunner:
    """A runner of recording.fetch alone, with a short timeout and no wait between attempts."""
    return JobRunner(
        services.meta,
        {RECORDING_FETCH: RecordingFetchJob.of(services, limits=FAST_LIMITS)},
        max_attempts=3,
    )


@dataclass
class Fetching:
    """Calls posted with a vendor recording link, and what the API then says of them and their fetch job."""

    client: TestClient
    auth: dict[str, str]
    vendor: Vendor
    drain: Callable[[], int]

    def post(self, url: str, external_id: str, *, text: str = "hi") -> str:
        """Ingest a generic call linking ``url`` and store it; returns its id."""
        document = {
            "call_id": external_id,
            "started_at": "2026-01-05T10:00:00Z",
            "recording_url": url,
            "transcript": [{"role": "user", "content": text, "start_time": 0.2, "end_time": 0.8}],
        }
        response = self.client.post(
            "/api/v1/ingest/generic", content=orjson.dumps(document), headers=self.auth
        )
        assert response.status_code == 202, response.text
        self.drain()
        call_id: str = response.json()["id"]
        return call_id

    def detail(self, call_id: str) -> dict[str, Any]:
        detail: dict[str, Any] = self.client.get(f"/api/v1/calls/{call_id}", headers=self.auth).json()
        return detail

    def recording(self, call_id: str) -> dict[str, Any]:
        recording: dict[str, Any] = self.detail(call_id)["call"]["recordings"][0]
        return recording

    def job(self, call_id: str) -> dict[str, Any]:
        detail = self.detail(call_id)
        jobs = [job for job in detail["jobs"] if job["kind"] == RECORDING_FETCH]
        assert len(jobs) == 1, detail["jobs"]
        job: dict[str, Any] = jobs[0]
        return job


@pytest.fixture
def fetching(client: TestClient, auth: dict[str, str], vendor: Vendor, drain: Callable[[], int]) -> Fetching:
    return Fetching(client, auth, vendor, drain)


def test_success_rehosts_and_serves_the_recording(
    fetching: Fetching,
    fetch_runner: JobRunner,
) -> None:
    call_id = fetching.post(f"{fetching.vendor.base}/redirect.wav?token=abc", "ok")
    assert fetching.job(call_id)["status"] == "pending"
    assert fetching.client.get(f"/api/v1/calls/{call_id}/recording", headers=fetching.auth).status_code == 404
    assert fetch_runner.run_until_idle() == 1
    assert fetching.job(call_id)["status"] == "done"
    recording = fetching.recording(call_id)
    assert recording["uri"].startswith("blob:") and recording["channels"] == 2
    assert recording["format"] == "wav" and recording["duration_s"] == pytest.approx(2.0)
    served = fetching.client.get(f"/api/v1/calls/{call_id}/recording", headers=fetching.auth)
    assert served.status_code == 200 and served.content == WAV
    jobs = {job["kind"] for job in fetching.detail(call_id)["jobs"]}
    assert "audio.analyze" in jobs, "a re-hosted recording gets its analysis planned"


def test_expired_link_fails_the_job_visibly(
    fetching: Fetching,
    fetch_runner: JobRunner,
) -> None:
    call_id = fetching.post(f"{fetching.vendor.base}/expired.wav?X-Amz-Signature=topsecret", "expired")
    fetch_runner.run_until_idle()
    job = fetching.job(call_id)
    assert job["status"] == "failed" and job["attempts"] == 1, "an expired link is not retried"
    assert "403" in job["error"] and "expired" in job["error"]
    assert "/expired.wav" in job["error"] and "topsecret" not in job["error"]


def test_slow_server_times_out_then_retries(
    fetching: Fetching,
    fetch_runner: JobRunner,
) -> None:
    call_id = fetching.post(f"{fetching.vendor.base}/slow.wav", "slow")
    assert fetch_runner.run_once() == 1
    job = fetching.job(call_id)
    assert job["status"] == "pending" and "timed out" in job["error"]
    assert fetch_runner.run_until_idle() == 1
    assert fetching.job(call_id)["status"] == "done"
    assert fetching.vendor.hits["/slow.wav"] == 2


def test_server_error_is_retried(
    fetching: Fetching,
    fetch_runner: JobRunner,
) -> None:
    call_id = fetching.post(f"{fetching.vendor.base}/busy.wav", "busy")
    fetch_runner.run_until_idle()
    assert fetching.job(call_id)["status"] == "done"
    assert fetching.vendor.hits["/busy.wav"] == 2


@pytest.mark.parametrize(
    ("path", "message"),
    [("/page.wav", "did not return audio"), ("/huge.wav", "limit"), ("/missing.wav", "404")],
)
def test_unusable_body_fails_with_a_clear_error(
    fetching: Fetching,
    fetch_runner: JobRunner,
    path: str,
    message: str,
) -> None:
    call_id = fetching.post(f"{fetching.vendor.base}{path}", f"bad{path}")
    fetch_runner.run_until_idle()
    job = fetching.job(call_id)
    assert job["status"] == "failed" and message in job["error"] and "recordings[0]" in job["error"]
    recording = fetching.recording(call_id)
    assert recording.get("uri") is None, "nothing half-written: the call keeps only the vendor link"


def test_later_event_keeps_the_rehosted_copy(
    fetching: Fetching,
    fetch_runner: JobRunner,
) -> None:
    call_id = fetching.post(f"{fetching.vendor.base}/ok.wav", "resent")
    fetch_runner.run_until_idle()
    assert fetching.post(f"{fetching.vendor.base}/ok.wav", "resent", text="hi again") == call_id
    call = fetching.detail(call_id)["call"]
    assert call["turns"][0]["text"] == "hi again"
    assert call["recordings"][0]["uri"].startswith("blob:")
    assert fetch_runner.run_until_idle() == 0 and fetching.vendor.hits["/ok.wav"] == 1, "no second download"


@pytest.fixture
def default_runner(services: Services) -> JobRunner:
    """A runner whose handler has the default address guard: no private network allowed."""
    handler = RecordingFetchJob(
        store=services.store,
        put_blob=services.blobs.put,
        store_calls=services.store_calls,
        limits=FAST_LIMITS,
    )
    return JobRunner(services.meta, {RECORDING_FETCH: handler}, max_attempts=3)


def _assert_refused(fetching: Fetching, call_id: str, *words: str) -> None:
    job = fetching.job(call_id)
    assert job["status"] == "failed" and job["attempts"] == 1, "a refused address is not retried"
    assert "recordings[0]" in job["error"] and "RECORDING_FETCH_ALLOWED_NETWORKS" in job["error"]
    for word in words:
        assert word in job["error"], job["error"]
    recording = fetching.recording(call_id)
    assert recording.get("uri") is None


def test_loopback_link_is_refused_by_default_without_a_request(
    fetching: Fetching,
    default_runner: JobRunner,
) -> None:
    call_id = fetching.post(f"{fetching.vendor.base}/ok.wav", "internal")
    default_runner.run_until_idle()
    _assert_refused(fetching, call_id, "127.0.0.1", "loopback")
    assert fetching.vendor.hits == {}, "the guard refuses before connecting"


def test_host_name_is_judged_by_every_address_it_resolves_to(
    fetching: Fetching,
    default_runner: JobRunner,
) -> None:
    port = fetching.vendor.base.rsplit(":", 1)[1]
    call_id = fetching.post(f"http://localhost:{port}/ok.wav", "by-name")
    default_runner.run_until_idle()
    _assert_refused(fetching, call_id, "localhost (resolves to", "loopback")
    assert fetching.vendor.hits == {}


def test_redirect_to_a_network_not_allowed_is_refused(
    fetching: Fetching,
    fetch_runner: JobRunner,
) -> None:
    call_id = fetching.post(f"{fetching.vendor.base}/hop.wav", "hop")
    fetch_runner.run_until_idle()
    _assert_refused(fetching, call_id, OTHER_LOOPBACK, "loopback")
    assert fetching.vendor.hits == {"/hop.wav": 1}, "the allowed host was asked, the redirect target never"


def test_redirect_to_another_scheme_fails_for_good(
    fetching: Fetching,
    fetch_runner: JobRunner,
) -> None:
    call_id = fetching.post(f"{fetching.vendor.base}/scheme.wav", "scheme")
    fetch_runner.run_until_idle()
    job = fetching.job(call_id)
    assert job["status"] == "failed" and job["attempts"] == 1 and "not http(s)" in job["error"]


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.251", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd00::5", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("100.100.100.200", "non-public"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert refusal(ip_address(address), ()) == kind
    assert refusal(ip_address(address), (ip_network("0.0.0.0/0"), ip_network("::/0"))) is None


def test_allowed_networks_setting_parses_cidr_and_rejects_junk() -> None:
    assert Settings().recording_fetch_allowed_networks == ()
    parsed = Settings(recording_fetch_allowed_networks=("10.0.0.0/8",)).recording_fetch_allowed_networks
    assert parsed == (ip_network("10.0.0.0/8"),)
    with pytest.raises(ValueError, match="recording_fetch_allowed_networks"):
        Settings(recording_fetch_allowed_networks=("not-a-network",))
