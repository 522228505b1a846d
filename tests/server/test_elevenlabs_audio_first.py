"""ElevenLabs audio before its transcription, through the webhook endpoint: the provisional call (its start a
guess) gets its real start from the transcription, keeps its id and the audio already stored."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
from fastapi.testclient import TestClient

from convoscope.server.services import Services

FIXTURES = Path(__file__).parent.parent / "ingest" / "fixtures" / "elevenlabs"


def _post(client: TestClient, auth: dict[str, str], name: str) -> str:
    response = client.post(
        "/api/v1/ingest/elevenlabs", content=(FIXTURES / f"{name}.json").read_bytes(), headers=auth
    )
    assert response.status_code == 202, response.text
    call_id: str = response.json()["id"]
    return call_id


def test_the_real_start_replaces_the_guess_and_the_audio_stays(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    provisional = _post(client, auth, "post_call_audio")
    drain()
    assert client.get(f"/api/v1/calls/{provisional}", headers=auth).json()["call"]["turns"] == []
    real = _post(client, auth, "post_call_transcription")
    drain()
    call = client.get(f"/api/v1/calls/{real}", headers=auth).json()["call"]
    transcription = orjson.loads((FIXTURES / "post_call_transcription.json").read_bytes())
    start = datetime.fromtimestamp(transcription["data"]["metadata"]["start_time_unix_secs"], tz=UTC)
    assert datetime.fromisoformat(call["started_at"].replace("Z", "+00:00")) == start
    assert call["turns"], "the transcription completed the call"
    [recording] = call["recordings"]
    assert recording["uri"].startswith("blob:") and recording["format"] == "mp3"
    assert client.get(f"/api/v1/calls/{real}/recording", headers=auth).status_code == 200
    assert real == provisional, "the id the first event gave is kept"
    jobs = client.get(f"/api/v1/calls/{real}", headers=auth).json()["jobs"]
    assert any(job["kind"] == "recording.store" and job["status"] == "done" for job in jobs), jobs
    assert services.store.count_calls(services.default_project.id) == 1
