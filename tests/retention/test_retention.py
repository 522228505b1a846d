"""Retention: each project's limits remove what is past them and nothing else; invalid settings are
refused naming the field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
from fastapi.testclient import TestClient

from convoscope.server.services import Services
from convoscope.store.jobqueue import NewSourceEvent
from convoscope.testing import call_payload, stereo_wav_bytes


def _ingest(client: TestClient, auth: dict[str, str], external_id: str, started: datetime, seed: int) -> str:
    wav = stereo_wav_bytes(
        left=[(0.2, 1.0)], right=[(1.3, 2.0)], duration_s=2.5, sample_rate=8000, noise_db=-50, seed=seed
    )
    payload = call_payload(external_id=external_id, started_at=started.isoformat())
    response = client.post(
        "/api/v1/calls",
        data={"call": orjson.dumps(payload).decode()},
        files={"recording": ("call.wav", wav, "audio/wav")},
        headers=auth,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["ids"][0])


def test_invalid_settings_are_refused_naming_the_field(client: TestClient, auth: dict[str, str]) -> None:
    for body, field in (
        ({"calls_days": "30"}, "calls_days"),
        ({"recordings_days": 0}, "recordings_days"),
        ({"raw_payloads_days": 1.5}, "raw_payloads_days"),
        ({"keep_days": 3}, "keep_days"),
    ):
        answer = client.put("/api/v1/settings/retention", json=body, headers=auth)
        assert answer.status_code == 422, body
        assert field in answer.text
    shown = client.get("/api/v1/settings/retention", headers=auth).json()
    assert shown == {
        "setting": {"calls_days": None, "recordings_days": None, "raw_payloads_days": None},
        "own": False,
    }


def test_retention_removes_what_is_past_each_limit_and_nothing_else(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    project_id = services.default_project.id
    now = datetime.now(UTC)
    ids = {
        "old": _ingest(client, auth, "old", now - timedelta(days=40), 1),
        "mid": _ingest(client, auth, "mid", now - timedelta(days=10), 2),
        "new": _ingest(client, auth, "new", now - timedelta(days=1), 3),
    }
    drain()
    shas = {
        name: client.get(f"/api/v1/calls/{call_id}", headers=auth).json()["call"]["recordings"][0]["sha256"]
        for name, call_id in ids.items()
    }
    services.meta.add_source_events(
        [
            NewSourceEvent(
                project_id, "vapi", "v-old", "end", b'{"x": 1}', received_at=now - timedelta(days=20)
            ),
            NewSourceEvent(
                project_id, "vapi", "v-new", "end", b'{"x": 2}', received_at=now - timedelta(days=2)
            ),
        ]
    )
    setting = {"calls_days": 30, "recordings_days": 7, "raw_payloads_days": 10}
    put = client.put("/api/v1/settings/retention", json=setting, headers=auth)
    assert put.status_code == 200, put.text
    assert client.get("/api/v1/settings/retention", headers=auth).json() == {"setting": setting, "own": True}

    applied = client.post("/api/v1/settings/retention/apply", headers=auth)
    assert applied.status_code == 200, applied.text
    result = applied.json()
    assert (result["calls_deleted"], result["recordings_expired"], result["raw_payload_rows"]) == (1, 1, 1)
    assert result["blobs_deleted"] == 2

    assert client.get(f"/api/v1/calls/{ids['old']}", headers=auth).status_code == 404
    mid = client.get(f"/api/v1/calls/{ids['mid']}", headers=auth).json()["call"]
    assert mid["external_id"] == "mid" and mid["turns"]
    assert mid["recordings"][0].get("uri") is None
    assert client.get(f"/api/v1/calls/{ids['mid']}/recording", headers=auth).status_code == 404
    listed = {c["external_id"]: c for c in client.get("/api/v1/calls", headers=auth).json()["items"]}
    assert sorted(listed) == ["mid", "new"]
    assert listed["mid"]["has_recording"] is False and listed["new"]["has_recording"] is True
    assert not services.blobs.exists(shas["old"]) and not services.blobs.exists(shas["mid"])
    assert services.blobs.exists(shas["new"])
    new = client.get(f"/api/v1/calls/{ids['new']}/recording", headers=auth)
    assert new.status_code == 200 and new.content == services.blobs.read(shas["new"])
    assert services.meta.source_events(project_id, "vapi", "v-old") == []
    assert services.meta.source_events(project_id, "vapi", "v-new") == [b'{"x": 2}']

    # The server's periodic sweep applies the same setting: nothing more is past it.
    (again,) = services.retention.sweep()
    assert (again.calls_deleted, again.recordings_expired, again.raw_payload_rows) == (0, 0, 0)
