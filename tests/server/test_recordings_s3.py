"""Recordings kept in S3, through the API: uploads and webhook audio land in the bucket and are served back
with ranges; when the S3 server goes away, /healthz says so with 503, uploads are refused rather than
acknowledged, and what was acknowledged before is still stored."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from convoscope.config import Settings
from convoscope.server.app import create_app
from convoscope.server.services import Services, open_services
from convoscope.server.ui.peaks import compute_peaks
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.store.s3blobs import S3BlobStore
from convoscope.testing import call_payload, stereo_wav_bytes
from s3server import S3Server

ELEVENLABS = Path(__file__).parent.parent / "ingest" / "fixtures" / "elevenlabs"
KEY = "cvs_test_key_s3_recordings_000001"
AUTH = {"Authorization": f"Bearer {KEY}"}


class Api:
    """Services whose blob store is a bucket of ``server``, and a client of the app over them."""

    def __init__(self, tmp_path: Path, store: ClickHouseStore, server: S3Server) -> None:
        self.bucket = server.bucket()
        self.server = server
        settings = Settings(
            data_dir=tmp_path / "data",
            init_api_key=KEY,
            blob_url=f"s3://{self.bucket}/recordings",
            s3_endpoint_url=server.url,
            s3_addressing_style="path",
        )
        self.services: Services = open_services(settings, store=store)
        self.client = TestClient(create_app(self.services, run_worker=False), raise_server_exceptions=True)

    def drain(self) -> int:
        total = 0
        while handled := self.services.worker.drain_once():
            total += handled
        return total

    def post_with_recording(self, external_id: str, wav: bytes) -> Any:
        return self.client.post(
            "/api/v1/calls",
            data={
                "call": orjson.dumps(call_payload(external_id=external_id)).decode(),
                "channel_map": "user,agent",
            },
            files={"recording": ("call.wav", wav, "audio/wav")},
            headers=AUTH,
        )

    def close(self) -> None:
        self.services.audit.close()
        self.services.meta.close()
        self.services.blobs.close()


@pytest.fixture
def api(tmp_path: Path, clickhouse_store: ClickHouseStore, s3_server: S3Server) -> Iterator[Api]:
    opened = Api(tmp_path, clickhouse_store, s3_server)
    try:
        yield opened
    finally:
        opened.close()


def _stored_key(api: Api, uri: str) -> str:
    blobs = api.services.blobs
    assert isinstance(blobs, S3BlobStore)
    return blobs.key(uri.removeprefix("blob:"))


def test_an_uploaded_recording_round_trips_through_the_bucket(api: Api) -> None:
    wav = stereo_wav_bytes(left=[(0.2, 1.0)], right=[(1.3, 2.0)], duration_s=2.5, sample_rate=8000)
    response = api.post_with_recording("s3-rec", wav)
    assert response.status_code == 202, response.text
    api.drain()
    call_id = response.json()["ids"][0]
    [recording] = api.client.get(f"/api/v1/calls/{call_id}", headers=AUTH).json()["call"]["recordings"]
    key = _stored_key(api, recording["uri"])
    assert api.server.keys(api.bucket) == [key] and api.server.object(api.bucket, key) == wav
    assert not (api.services.settings.data_dir / "blobs").exists(), "nothing kept on the local disk"
    assert list((api.services.settings.data_dir / "spool").iterdir()) == []

    whole = api.client.get(f"/api/v1/calls/{call_id}/recording", headers=AUTH)
    assert whole.status_code == 200 and whole.content == wav
    part = api.client.get(f"/api/v1/calls/{call_id}/recording", headers={**AUTH, "Range": "bytes=10-29"})
    assert part.status_code == 206 and part.content == wav[10:30]
    assert part.headers["content-range"] == f"bytes 10-29/{len(wav)}"
    tail = api.client.get(f"/api/v1/calls/{call_id}/recording", headers={**AUTH, "Range": "bytes=-16"})
    assert tail.content == wav[-16:]
    beyond = api.client.get(
        f"/api/v1/calls/{call_id}/recording", headers={**AUTH, "Range": f"bytes={len(wav)}-"}
    )
    assert beyond.status_code == 416

    # The waveform is decoded straight from the bucket: the reader seeks as the decoder asks.
    sha = recording["uri"].removeprefix("blob:")
    with api.services.blobs.open(sha) as handle:
        peaks = compute_peaks(sha, handle, points=50)
    assert len(peaks.channels) == 2 and abs(peaks.duration_s - 2.5) < 1e-3
    assert max(peaks.channels[0]) > 0 and max(peaks.channels[1]) > 0


def test_webhook_audio_is_spooled_then_uploaded(api: Api) -> None:
    """The inline-audio path: base64 decoded into a local spool file, probed, then put in the bucket."""
    event = (ELEVENLABS / "post_call_audio.json").read_bytes()
    audio = base64.b64decode(orjson.loads(event)["data"]["full_audio"])
    response = api.client.post("/api/v1/ingest/elevenlabs", content=event, headers=AUTH)
    assert response.status_code == 202, response.text
    api.drain()
    call_id = response.json()["id"]
    [recording] = api.client.get(f"/api/v1/calls/{call_id}", headers=AUTH).json()["call"]["recordings"]
    assert api.server.object(api.bucket, _stored_key(api, recording["uri"])) == audio
    served = api.client.get(f"/api/v1/calls/{call_id}/recording", headers={**AUTH, "Range": "bytes=100-"})
    assert served.status_code == 206 and served.content == audio[100:]
    assert list((api.services.settings.data_dir / "spool").iterdir()) == []


@pytest.fixture
def own_server(s3_server: S3Server) -> Iterator[S3Server]:
    """A server of the test's own, to stop in the middle (``s3_server`` for the credentials)."""
    server = S3Server()
    try:
        yield server
    finally:
        server.close()


def test_the_s3_server_going_away_is_a_503_that_loses_nothing_acknowledged(
    tmp_path: Path, clickhouse_store: ClickHouseStore, own_server: S3Server
) -> None:
    api = Api(tmp_path, clickhouse_store, own_server)
    try:
        wav = stereo_wav_bytes(left=[(0.1, 0.5)], right=[(0.6, 0.9)], duration_s=1.0, sample_rate=8000)
        before = api.post_with_recording("before", wav)
        assert before.status_code == 202, before.text
        assert api.client.get("/healthz").json()["checks"]["blobs"]["ok"] is True

        own_server.stop()
        health = api.client.get("/healthz")
        assert health.status_code == 503
        body = health.json()
        [problem] = body["problems"]
        assert problem.startswith("blobs store does not answer: cannot reach ") and api.bucket in problem
        assert body["checks"]["blobs"]["ok"] is False
        assert body["checks"]["clickhouse"]["ok"] and body["checks"]["metadata"]["ok"]

        pending = api.services.meta.pending_count()
        refused = api.post_with_recording("during", wav)
        assert refused.status_code == 503 and refused.json()["error"]["type"] == "StoreError"
        assert api.services.meta.pending_count() == pending, "a recording not stored is not acknowledged"
        assert list((api.services.settings.data_dir / "spool").iterdir()) == []
        plain = api.client.post("/api/v1/calls", json=call_payload(external_id="no-audio"), headers=AUTH)
        assert plain.status_code == 202, "calls without recordings are still taken"

        api.drain()
        for response in (before, plain):
            [call_id] = response.json()["ids"]
            stored = api.client.get(f"/api/v1/calls/{call_id}", headers=AUTH)
            assert stored.status_code == 200, "everything acknowledged was stored"
        kept = api.client.get(f"/api/v1/calls/{before.json()['ids'][0]}", headers=AUTH).json()["call"]
        assert kept["recordings"][0]["uri"].startswith("blob:")
    finally:
        api.close()
