"""A recording that cannot be stored shows on its call: no ``has_recording``, a failed job with the reason,
and a recording endpoint that says why, whatever the recording's way in (audio inside an ElevenLabs
webhook, a vendor link fetched by ``recording.fetch``). Nothing of a refused or undecodable recording is
left in the blob store."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from convoscope.config import Settings
from convoscope.runtime.kinds import RECORDING_FETCH, RECORDING_STORE
from convoscope.server.app import create_app
from convoscope.server.services import Services, open_services
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.testing import stereo_wav_bytes

FIXTURES = Path(__file__).parent.parent / "ingest" / "fixtures" / "elevenlabs"
ELEVENLABS = "/api/v1/ingest/elevenlabs"
WAV = stereo_wav_bytes(left=[(0.1, 0.5)], right=[(0.6, 0.9)], duration_s=1.0)
SECRET = "wsec_outcomes"


@pytest.fixture
def vendor() -> Iterator[str]:
    """A recording host on loopback: ``/ok.wav`` serves a WAV, ``/expired.wav`` answers as an expired link."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = (200, WAV) if self.path.startswith("/ok.wav") else (403, b"Request has expired")
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def services(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[Services]:
    settings = Settings(
        data_dir=tmp_path / "data",
        init_api_key="cvs_test_key_project_default_0001",
        recording_fetch_allowed_networks=(ip_network("127.0.0.1/32"),),
    )
    opened = open_services(settings, store=clickhouse_store)
    yield opened
    opened.meta.close()


@pytest.fixture
def client(services: Services) -> TestClient:
    return TestClient(create_app(services, run_worker=False), raise_server_exceptions=True)


def _event(name: str, **data: Any) -> dict[str, Any]:
    event: dict[str, Any] = orjson.loads((FIXTURES / f"{name}.json").read_bytes())
    event["data"].update(data)
    return event


def _audio_event(audio: bytes) -> bytes:
    return orjson.dumps(_event("post_call_audio", full_audio=base64.b64encode(audio).decode()))


def _blob_files(services: Services) -> list[Path]:
    """Every file under the blob store, temporary ones included."""
    return sorted(path for path in services.blobs.root.rglob("*") if path.is_file())


def _has_recording(client: TestClient, auth: dict[str, str], call_id: str) -> bool:
    [item] = [i for i in client.get("/api/v1/calls", headers=auth).json()["items"] if i["id"] == call_id]
    flagged: bool = item["has_recording"]
    listed = {i["id"] for i in client.get("/api/v1/calls?has_recording=true", headers=auth).json()["items"]}
    assert flagged == (call_id in listed), "the flag and the filter agree"
    return flagged


def _job(client: TestClient, auth: dict[str, str], call_id: str, kind: str) -> dict[str, Any]:
    jobs = client.get(f"/api/v1/calls/{call_id}", headers=auth).json()["jobs"]
    [job] = [j for j in jobs if j["kind"] == kind]
    return dict(job)


def _recording_message(client: TestClient, auth: dict[str, str], call_id: str) -> str:
    response = client.get(f"/api/v1/calls/{call_id}/recording", headers=auth)
    assert response.status_code == 404, response.text
    message: str = response.json()["error"]["message"]
    return message


@pytest.mark.parametrize(
    ("audio", "reason"),
    [
        (b"<html>this is a sign-in page, not audio</html>" * 20, "not a readable audio file"),
        (WAV[: len(WAV) // 2], "truncated WAV"),
        (b"", "empty recording"),
    ],
    ids=["not-audio", "truncated", "empty"],
)
def test_audio_that_is_not_a_recording_is_a_failed_job_on_the_call(
    client: TestClient,
    auth: dict[str, str],
    services: Services,
    drain: Callable[[], int],
    audio: bytes,
    reason: str,
) -> None:
    transcription = client.post(
        ELEVENLABS, content=orjson.dumps(_event("post_call_transcription")), headers=auth
    )
    drain()
    response = client.post(ELEVENLABS, content=_audio_event(audio), headers=auth)
    assert transcription.status_code == 202 and response.status_code == 202, response.text
    assert any("data.full_audio" in w and reason in w for w in response.json()["warnings"])
    drain()
    call_id = transcription.json()["id"]
    assert response.json()["id"] == call_id
    [recording] = client.get(f"/api/v1/calls/{call_id}", headers=auth).json()["call"]["recordings"]
    assert recording.get("uri") is None and recording["source_url"].startswith("attachment:")
    assert not _has_recording(client, auth, call_id)
    job = _job(client, auth, call_id, RECORDING_STORE)
    assert job["status"] == "failed" and "data.full_audio" in job["error"] and reason in job["error"]
    message = _recording_message(client, auth, call_id)
    assert f"recording 0 of call {call_id} is failed: recordings[0]: data.full_audio" in message
    assert reason in message
    assert _blob_files(services) == [], "no blob and no temporary file of the refused bytes"


def _page(client: TestClient, key: str, call_id: str) -> str:
    """The call's page in the UI, as a signed-in browser gets it."""
    assert client.get("/", params={"key": key}).status_code == 200  # signs in, follows to the calls
    try:
        response = client.get(f"/calls/{call_id}")
    finally:
        client.cookies.clear()
    assert response.status_code == 200, response.text
    return response.text


def test_good_audio_after_bad_audio_is_stored_and_the_job_says_done(
    client: TestClient, auth: dict[str, str], key: str, services: Services, drain: Callable[[], int]
) -> None:
    bad = client.post(ELEVENLABS, content=_audio_event(b"not audio" * 50), headers=auth)
    drain()
    call_id = bad.json()["id"]
    assert _job(client, auth, call_id, RECORDING_STORE)["status"] == "failed"
    page = _page(client, key, call_id)
    assert "Recording 0 is not stored here" in page and 'id="player"' not in page
    good = client.post(ELEVENLABS, content=_audio_event(WAV), headers=auth)
    assert good.status_code == 202 and good.json()["warnings"] == [
        "audio arrived before the transcription; the call has no transcript yet"
    ]
    drain()
    assert good.json()["id"] == call_id
    job = _job(client, auth, call_id, RECORDING_STORE)
    assert job["status"] == "done" and job["error"] is None
    assert _has_recording(client, auth, call_id)
    served = client.get(f"/api/v1/calls/{call_id}/recording", headers=auth)
    assert served.status_code == 200 and served.content == WAV
    page = _page(client, key, call_id)
    assert 'id="player"' in page and "not stored here" not in page
    sha = hashlib.sha256(WAV).hexdigest()
    assert [path.name for path in _blob_files(services)] == [sha]


@pytest.mark.parametrize(
    ("encoded", "where"),
    [
        ("UklGR!==", "character 5: b'!' is not base64"),
        ("UklGRg==UklG", "character 6: padding followed by more characters"),
        ("UklGRg", "6 characters, not a multiple of 4 (truncated?)"),
    ],
)
def test_bad_base64_is_a_422_naming_the_field_and_nothing_is_kept(
    client: TestClient, auth: dict[str, str], services: Services, encoded: str, where: str
) -> None:
    body = orjson.dumps(_event("post_call_audio", full_audio=encoded))
    response = client.post(ELEVENLABS, content=body, headers=auth)
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert message.startswith("data.full_audio: not valid base64") and where in message
    assert services.meta.pending_count() == 0
    assert _blob_files(services) == []


def test_a_sender_may_not_name_a_stored_blob(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    first = client.post(ELEVENLABS, content=_audio_event(WAV), headers=auth)
    assert first.status_code == 202
    drain()
    sha = hashlib.sha256(WAV).hexdigest()
    forged = _event("post_call_audio", conversation_id="someone-else")
    del forged["data"]["full_audio"]
    forged["data"]["convoscope_audio"] = {"sha256": sha, "bytes": len(WAV), "format": "wav"}
    response = client.post(ELEVENLABS, content=orjson.dumps(forged), headers=auth)
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("data.convoscope_audio: is set by convoscope")
    assert services.meta.pending_count() == 0


def _signed(body: bytes, *, secret: str = SECRET) -> dict[str, str]:
    stamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"ElevenLabs-Signature": f"t={stamp},v0={digest}"}


def _pieces(body: bytes, size: int = 7919) -> Iterator[bytes]:
    """The body sent in chunks (a chunked request), so it reaches the server in many pieces."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_the_signature_covers_the_streamed_body(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    services.meta.update_project_settings(
        services.default_project.id, ("sources", "elevenlabs", "secret"), SECRET
    )
    audio = stereo_wav_bytes(left=[(0.1, 0.5)], right=[(0.6, 0.9)], duration_s=3.0)
    body = _audio_event(audio)
    tampered = body.replace(b"AAAA", b"AAAB", 1)
    assert tampered != body
    refused = client.post(ELEVENLABS, content=_pieces(tampered), headers={**auth, **_signed(body)})
    assert refused.status_code == 401 and "does not match" in refused.json()["error"]["message"]
    bad_base64 = orjson.dumps(_event("post_call_audio", full_audio="!!!!"))
    unsigned = client.post(ELEVENLABS, content=bad_base64, headers={**auth, **_signed(b"{}")})
    assert unsigned.status_code == 401, "the signature is judged before anything the body says"
    assert _blob_files(services) == [] and services.meta.pending_count() == 0
    accepted = client.post(ELEVENLABS, content=_pieces(body), headers={**auth, **_signed(body)})
    assert accepted.status_code == 202, accepted.text
    drain()
    served = client.get(f"/api/v1/calls/{accepted.json()['id']}/recording", headers=auth)
    assert served.status_code == 200 and served.content == audio


def _generic_call(client: TestClient, auth: dict[str, str], url: str, external_id: str) -> str:
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


def test_a_fetch_that_fails_for_good_shows_its_reason_and_no_recording(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int], vendor: str
) -> None:
    call_id = _generic_call(client, auth, f"{vendor}/expired.wav?X-Amz-Signature=secret", "expired")
    drain()
    assert not _has_recording(client, auth, call_id), "a link not fetched yet is not a recording"
    pending = _recording_message(client, auth, call_id)
    assert pending == f"recording 0 of call {call_id} is pending: being fetched from {vendor}/expired.wav"
    services.jobs.run_until_idle()
    job = _job(client, auth, call_id, RECORDING_FETCH)
    assert job["status"] == "failed" and "HTTP 403" in job["error"] and "secret" not in job["error"]
    assert not _has_recording(client, auth, call_id)
    failed = _recording_message(client, auth, call_id)
    assert failed.startswith(f"recording 0 of call {call_id} is failed: recordings[0]: {vendor}/expired.wav")
    assert "HTTP 403" in failed and "expired" in failed
    assert _blob_files(services) == []


def test_a_fetched_recording_is_a_recording(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int], vendor: str
) -> None:
    call_id = _generic_call(client, auth, f"{vendor}/ok.wav", "ok")
    drain()
    assert not _has_recording(client, auth, call_id)
    services.jobs.run_until_idle()
    assert _job(client, auth, call_id, RECORDING_FETCH)["status"] == "done"
    assert _has_recording(client, auth, call_id)
    served = client.get(f"/api/v1/calls/{call_id}/recording", headers=auth)
    assert served.status_code == 200 and served.content == WAV
    assert [path.parent.name for path in _blob_files(services)] != [".tmp"]


def test_a_call_without_recordings_says_so(
    client: TestClient, auth: dict[str, str], drain: Callable[[], int]
) -> None:
    response = client.post(ELEVENLABS, content=orjson.dumps(_event("post_call_transcription")), headers=auth)
    drain()
    call_id = response.json()["id"]
    assert not _has_recording(client, auth, call_id)
    assert _recording_message(client, auth, call_id) == f"call {call_id} has no recording 0"
