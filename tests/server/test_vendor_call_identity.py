"""A vendor call keeps the id its first event gave when a later event brings the real start time.

The id is a UUIDv7 of the call's identity and a start (``model/ids.py``). A first event without a start
(Vapi's minimal end-of-call report, from Vapi's docs; ElevenLabs audio before its transcription) starts
the call at its receive time, flagged in ``ingest_warnings``; the later event with the real start replaces
it. The call keeps its first id (``server/vendor_ingest.py``), so its row is replaced, not doubled, and the
jobs and scores recorded under it stay visible on it. The payloads are the fixture library's samples
(``tests/ingest/fixtures/<vendor>/README.md`` names the source of each).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient

from convoscope.ingest.payload_fields import RECEIVED_START_NOTE
from convoscope.model import call_id_for
from convoscope.server.services import Services

FIXTURES = Path(__file__).parent.parent / "ingest" / "fixtures"


def _sample(path: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / path).read_text())
    return document


def _post(client: TestClient, auth: dict[str, str], source: str, document: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/ingest/{source}", content=orjson.dumps(document), headers=auth)
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _detail(client: TestClient, auth: dict[str, str], call_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/calls/{call_id}", headers=auth)
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


def _stands_in(call: dict[str, Any]) -> bool:
    return any(RECEIVED_START_NOTE in w for w in call["metadata"].get("ingest_warnings", []))


def test_jobs_and_scores_stay_with_the_call_when_the_real_start_arrives(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    project = services.default_project.id
    early = _post(client, auth, "vapi", _sample("vapi/docs_end_of_call_report_minimal.json"))
    drain()
    services.jobs.run_until_idle()
    first = _detail(client, auth, early["id"])
    assert _stands_in(first["call"])
    assert first["jobs"], "the evaluators ran on the provisional call"
    assert first["scores"], "and recorded scores under its id"

    # The same call fetched from Vapi's API (GET /call/{id}), which knows when it started; its recording
    # links are left out so no download is planned.
    fetched = _sample("vapi/call_object.json") | {"id": early["external_id"], "artifact": {}}
    later = _post(client, auth, "vapi", fetched)
    drain()
    assert later["id"] == early["id"], "the id the first event gave is kept"
    kept = _detail(client, auth, early["id"])
    real_start = datetime.fromisoformat(fetched["startedAt"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(kept["call"]["started_at"]) == real_start
    assert not _stands_in(kept["call"]), "the warning went with the stand-in start"
    assert kept["call"]["turns"], "the fetched call object completed the call"
    assert {job["kind"] for job in kept["jobs"]} >= {job["kind"] for job in first["jobs"]}
    assert kept["scores"], "the scores recorded before the real start are still on the call"

    services.jobs.run_until_idle()
    rerun = _detail(client, auth, early["id"])
    assert all(job["status"] == "done" for job in rerun["jobs"]), rerun["jobs"]
    assert rerun["scores"]

    # Nothing lives under the id the real start would have given.
    moved = call_id_for(project, "vapi", early["external_id"], real_start)
    assert moved != early["id"]
    assert client.get(f"/api/v1/calls/{moved}", headers=auth).status_code == 404
    assert services.meta.jobs_for_call(project, moved) == []
    listed = client.get("/api/v1/calls", headers=auth).json()["items"]
    assert [item["id"] for item in listed] == [early["id"]]
    assert services.store.count_calls(project) == 1


def test_an_event_with_the_real_start_first_gives_the_id_of_that_start(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    project = services.default_project.id
    immediate = _sample("bland/docs_immediate.json")
    answer = _post(client, auth, "bland", immediate)
    drain()
    call = _detail(client, auth, answer["id"])["call"]
    start = datetime.fromisoformat(call["started_at"])
    assert answer["id"] == call_id_for(project, "bland", answer["external_id"], start)
    delayed = _post(client, auth, "bland", _sample("bland/docs_delayed.json"))
    drain()
    assert delayed["id"] == answer["id"]
    assert datetime.fromisoformat(_detail(client, auth, answer["id"])["call"]["started_at"]) == start


def test_the_receive_time_id_is_the_same_at_the_endpoint_in_the_worker_and_on_replay(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    delayed = _post(client, auth, "bland", _sample("bland/docs_delayed.json"))
    drain()
    assert _stands_in(_detail(client, auth, delayed["id"])["call"])
    immediate = _post(client, auth, "bland", _sample("bland/docs_immediate.json"))
    replay = _post(client, auth, "bland", _sample("bland/docs_delayed.json"))
    drain()
    assert delayed["id"] == immediate["id"] == replay["id"]
    call = _detail(client, auth, delayed["id"])["call"]
    assert not _stands_in(call)
    assert call["started_at"].startswith("2024-01-15T10:30:00")
    assert services.store.count_calls(services.default_project.id) == 1


def test_the_store_keeps_an_id_of_the_calls_identity_and_no_other() -> None:
    from datetime import UTC, timedelta

    from convoscope.model.ids import is_id_of, stored_call_id

    start = datetime(2026, 1, 5, 10, tzinfo=UTC)
    first = call_id_for("p", "vapi", "c1", start - timedelta(minutes=3))
    assert is_id_of(first, "p", "vapi", "c1")
    assert stored_call_id("p", "vapi", "c1", start, first) == first, "a later start keeps the id"
    derived = call_id_for("p", "vapi", "c1", start)
    others = (call_id_for("q", "vapi", "c1", start), call_id_for("p", "retell", "c1", start), "x", None)
    for foreign in others:
        assert not is_id_of(foreign, "p", "vapi", "c1")
        assert stored_call_id("p", "vapi", "c1", start, foreign) == derived
