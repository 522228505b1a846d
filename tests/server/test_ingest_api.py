"""POST /api/v1/calls: durable acknowledgement, validation with field paths, size bounds, multipart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi.testclient import TestClient

from convoscope.server.services import Services
from convoscope.testing import call_payload, stereo_wav_bytes


def _calls(n: int, *, prefix: str = "c") -> list[dict[str, Any]]:
    return [call_payload(external_id=f"{prefix}-{i}") for i in range(n)]


def test_batch_is_acknowledged_after_outbox_commit_then_stored(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    response = client.post("/api/v1/calls", json={"calls": _calls(3)}, headers=auth)
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 3 and len(set(body["ids"])) == 3
    # Durable but not yet stored: the outbox holds it, the store does not.
    assert services.meta.pending_count() == 1
    assert services.store.count_calls(services.default_project.id) == 0
    assert drain() == 1
    assert services.store.count_calls(services.default_project.id) == 3
    status = client.get(f"/api/v1/ingest/{body['ingest_id']}", headers=auth).json()
    assert status["status"] == "done"
    stored = client.get(f"/api/v1/calls/{body['ids'][0]}", headers=auth)
    assert stored.status_code == 200
    assert stored.json()["call"]["external_id"] == "c-0"


def test_single_call_and_plain_list_bodies(
    client: TestClient, auth: dict[str, str], drain: Callable[[], int]
) -> None:
    assert client.post("/api/v1/calls", json=call_payload(external_id="one"), headers=auth).status_code == 202
    assert client.post("/api/v1/calls", json=_calls(2, prefix="list"), headers=auth).status_code == 202
    drain()
    listed = client.get("/api/v1/calls", headers=auth).json()["items"]
    assert sorted(c["external_id"] for c in listed) == ["list-0", "list-1", "one"]


def test_reingest_replaces(client: TestClient, auth: dict[str, str], drain: Callable[[], int]) -> None:
    first = call_payload(external_id="same", agent_id="v1")
    second = call_payload(external_id="same", agent_id="v2")
    client.post("/api/v1/calls", json=first, headers=auth)
    client.post("/api/v1/calls", json=second, headers=auth)
    drain()
    items = client.get("/api/v1/calls", headers=auth).json()["items"]
    assert [c["agent_id"] for c in items] == ["v2"]


def _error(response: Any) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def test_malformed_json_is_422_and_nothing_is_queued(
    client: TestClient, auth: dict[str, str], services: Services
) -> None:
    response = client.post(
        "/api/v1/calls",
        content=b'{"source": "vapi", "external_id": ',
        headers={**auth, "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert "malformed JSON" in _error(response)["message"]
    assert services.meta.pending_count() == 0


def test_wrong_type_and_missing_field_name_the_path(
    client: TestClient, auth: dict[str, str], services: Services
) -> None:
    bad = _calls(3)
    bad[1]["turns"][1]["start_s"] = "soon"
    del bad[2]["started_at"]
    response = client.post("/api/v1/calls", json={"calls": bad}, headers=auth)
    assert response.status_code == 422
    locs = {d["loc"] for d in _error(response)["details"]}
    assert "calls[1].turns[1].start_s" in locs
    assert "calls[2].started_at" in locs
    assert services.meta.pending_count() == 0


def test_unknown_enum_and_unknown_field_are_rejected_with_path(
    client: TestClient, auth: dict[str, str]
) -> None:
    payload = call_payload()
    payload["turns"][0]["role"] = "bot"
    payload["surprise"] = 1
    response = client.post("/api/v1/calls", json=payload, headers=auth)
    assert response.status_code == 422
    locs = {d["loc"] for d in _error(response)["details"]}
    assert {"turns[0].role", "surprise"} <= locs


def test_too_many_calls_in_a_batch_is_413(
    client: TestClient, auth: dict[str, str], services: Services
) -> None:
    payload = [
        call_payload(external_id=f"x{i}", turns=[]) for i in range(services.settings.max_batch_calls + 1)
    ]
    response = client.post("/api/v1/calls", json=payload, headers=auth)
    assert response.status_code == 413
    assert services.meta.pending_count() == 0


def test_oversize_body_is_413(client: TestClient, auth: dict[str, str], services: Services) -> None:
    limit = services.settings.max_body_bytes
    blob = b'{"source":"generic","external_id":"big","started_at":"2026-11-24T00:00:00Z","metadata":{"x":"'
    body = blob + b"a" * (limit + 10) + b'"}}'
    response = client.post(
        "/api/v1/calls", content=body, headers={**auth, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "larger than" in _error(response)["message"]
    assert services.meta.pending_count() == 0


def test_too_many_turns_is_422(client: TestClient, auth: dict[str, str], services: Services) -> None:
    bound = services.settings.max_turns_per_call
    turns = [{"role": "user", "text": "a", "start_s": i, "end_s": i + 0.5} for i in range(bound + 1)]
    response = client.post("/api/v1/calls", json=call_payload(turns=turns), headers=auth)
    assert response.status_code == 422
    assert any(d["loc"] == "turns" for d in _error(response)["details"])


def test_multipart_with_stereo_recording(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    wav = stereo_wav_bytes(left=[(0.2, 1.0)], right=[(1.3, 2.0)], duration_s=2.5, sample_rate=8000)
    response = client.post(
        "/api/v1/calls",
        data={"call": orjson.dumps(call_payload(external_id="rec")).decode(), "channel_map": "user,agent"},
        files={"recording": ("call.wav", wav, "audio/wav")},
        headers=auth,
    )
    assert response.status_code == 202, response.text
    drain()
    call_id = response.json()["ids"][0]
    stored = client.get(f"/api/v1/calls/{call_id}", headers=auth).json()["call"]
    recording = stored["recordings"][0]
    assert recording["channels"] == 2 and recording["sample_rate"] == 8000
    assert recording["channel_map"] == {"0": "user", "1": "agent"}
    assert abs(recording["duration_s"] - 2.5) < 1e-3
    whole = client.get(f"/api/v1/calls/{call_id}/recording", headers=auth)
    assert whole.status_code == 200 and whole.content == wav
    assert whole.headers["content-type"] == "audio/wav"
    part = client.get(f"/api/v1/calls/{call_id}/recording", headers={**auth, "Range": "bytes=10-29"})
    assert part.status_code == 206 and part.content == wav[10:30]
    assert part.headers["content-range"] == f"bytes 10-29/{len(wav)}"
    tail = client.get(f"/api/v1/calls/{call_id}/recording", headers={**auth, "Range": "bytes=-16"})
    assert tail.content == wav[-16:]
    beyond = client.get(f"/api/v1/calls/{call_id}/recording", headers={**auth, "Range": f"bytes={len(wav)}-"})
    assert beyond.status_code == 416


def test_recording_that_is_not_audio_is_422_and_nothing_stored(
    client: TestClient, auth: dict[str, str], services: Services
) -> None:
    response = client.post(
        "/api/v1/calls",
        data={"call": orjson.dumps(call_payload(external_id="notaudio")).decode()},
        files={"recording": ("call.wav", b"\x89PNG\r\n\x1a\n" + b"\0" * 200, "audio/wav")},
        headers=auth,
    )
    assert response.status_code == 422
    assert services.meta.pending_count() == 0
    assert not any((services.settings.data_dir / "blobs").rglob("*[0-9a-f]" * 8))


def test_channel_map_must_match_channels(client: TestClient, auth: dict[str, str]) -> None:
    wav = stereo_wav_bytes(left=[(0.1, 0.5)], right=[], duration_s=1.0)
    response = client.post(
        "/api/v1/calls",
        data={"call": orjson.dumps(call_payload()).decode(), "channel_map": "user,agent,tool"},
        files={"recording": ("a.wav", wav, "audio/wav")},
        headers=auth,
    )
    assert response.status_code == 422
    assert "channel" in _error(response)["message"]
