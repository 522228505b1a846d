"""Body bounds per route: ElevenLabs' audio webhook gets its own, larger bound; every other route keeps
``max_body_bytes``. Both bounds are shrunk here so the cases stay small."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from convoscope.config import Settings
from convoscope.server.app import create_app
from convoscope.server.services import Services, open_services
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.testing import stereo_wav_bytes

FIXTURES = Path(__file__).parent.parent / "ingest" / "fixtures" / "elevenlabs"
JSON_LIMIT = 64 * 1024
AUDIO_LIMIT = 1024 * 1024
ELEVENLABS = "/api/v1/ingest/elevenlabs"


@pytest.fixture
def services(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[Services]:
    settings = Settings(
        data_dir=tmp_path / "data",
        init_api_key="cvs_test_key_project_default_0001",
        max_body_bytes=JSON_LIMIT,
        max_webhook_audio_bytes=AUDIO_LIMIT,
    )
    opened = open_services(settings, store=clickhouse_store)
    yield opened
    opened.meta.close()


@pytest.fixture
def client(services: Services) -> TestClient:
    return TestClient(create_app(services, run_worker=False), raise_server_exceptions=True)


def _audio_event(duration_s: float) -> tuple[bytes, bytes]:
    """A ``post_call_audio`` body carrying ``duration_s`` of audio, and that audio."""
    audio = stereo_wav_bytes(left=[(0.1, 0.5)], right=[(0.6, 0.9)], duration_s=duration_s)
    event = orjson.loads((FIXTURES / "post_call_audio.json").read_bytes())
    event["data"]["full_audio"] = base64.b64encode(audio).decode()
    return orjson.dumps(event), audio


def test_audio_event_between_the_two_bounds_is_accepted_and_stored(
    client: TestClient, auth: dict[str, str], drain: Callable[[], int]
) -> None:
    body, audio = _audio_event(4.0)
    assert JSON_LIMIT < len(body) < AUDIO_LIMIT
    response = client.post(ELEVENLABS, content=body, headers=auth)
    assert response.status_code == 202, response.text
    drain()
    served = client.get(f"/api/v1/calls/{response.json()['id']}/recording", headers=auth)
    assert served.status_code == 200 and served.content == audio


def test_audio_event_over_the_audio_bound_is_413_and_nothing_is_queued(
    client: TestClient, auth: dict[str, str], services: Services
) -> None:
    body, _ = _audio_event(16.0)
    assert len(body) > AUDIO_LIMIT
    response = client.post(ELEVENLABS, content=body, headers=auth)
    assert response.status_code == 413
    assert str(AUDIO_LIMIT) in response.json()["error"]["message"]
    assert services.meta.pending_count() == 0


def test_other_routes_keep_the_json_bound(
    client: TestClient, auth: dict[str, str], services: Services
) -> None:
    body, _ = _audio_event(4.0)
    for route in ("/api/v1/ingest/vapi", "/api/v1/ingest/generic", "/api/v1/calls"):
        response = client.post(route, content=body, headers={**auth, "content-type": "application/json"})
        assert response.status_code == 413, route
        assert str(JSON_LIMIT) in response.json()["error"]["message"]
    assert services.meta.pending_count() == 0


def test_a_streamed_body_without_length_is_counted_against_the_audio_bound(
    client: TestClient, auth: dict[str, str], services: Services
) -> None:
    body, _ = _audio_event(16.0)
    chunks = (body[i : i + 64 * 1024] for i in range(0, len(body), 64 * 1024))
    response = client.post(ELEVENLABS, content=chunks, headers=auth)
    assert response.status_code == 413
    assert services.meta.pending_count() == 0
