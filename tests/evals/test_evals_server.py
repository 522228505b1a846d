"""Evaluation through the server: the job after ingest, re-evaluation, profiles, the catalogue, series."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from convoscope.config import Settings
from convoscope.evals.jobs import MAX_AUDIO_WAITS
from convoscope.runtime.kinds import AUDIO_ANALYZE, EVALS_RUN
from convoscope.server.services import Services, open_services
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.store.metadata import JobSpec
from convoscope.testing import call_payload

KEY = "cvs_test_key_project_default_0001"
AUTH = {"Authorization": f"Bearer {KEY}"}

LEAKY_TURNS = [
    {"role": "user", "text": "Can you read my card back?", "start_s": 0.0, "end_s": 2.0},
    {
        "role": "agent",
        "text": "Sure, it's 4111 1111 1111 1111. I've booked you for Tuesday.",
        "start_s": 2.5,
        "end_s": 6.0,
    },
]


@pytest.fixture
def services(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[Services]:
    opened = open_services(Settings(data_dir=tmp_path / "data", init_api_key=KEY), store=clickhouse_store)
    yield opened
    opened.meta.close()


def ingest(client: TestClient, **overrides: Any) -> str:
    response = client.post("/api/v1/calls", json=call_payload(**overrides), headers=AUTH)
    assert response.status_code == 202, response.text
    return str(response.json()["ids"][0])


def scores(client: TestClient, call_id: str) -> dict[str, dict[str, Any]]:
    detail = client.get(f"/api/v1/calls/{call_id}", headers=AUTH).json()
    return {score["metric"]: score for score in detail["scores"]}


def job_state(client: TestClient, call_id: str) -> tuple[str, str | None]:
    detail = client.get(f"/api/v1/calls/{call_id}", headers=AUTH).json()
    (job,) = [j for j in detail["jobs"] if j["kind"] == EVALS_RUN]
    return job["status"], job["error"]


def test_ingested_call_is_evaluated_with_the_default_set(
    client: TestClient, settle: Callable[[], None]
) -> None:
    call_id = ingest(client, turns=LEAKY_TURNS, tool_calls=[{"id": "t1", "name": "lookup", "success": False}])
    settle()
    assert job_state(client, call_id) == ("done", None)
    found = scores(client, call_id)
    assert found["pii_leakage"]["value"] == 1 and found["pii_leakage"]["passed"] is False
    assert found["tool_call_success"]["value"] is False
    assert found["say_do_consistency"]["evidence"]["claims"][0]["status"] == "missing"
    assert found["end_reason"]["value"] == "hangup"
    assert found["latency"]["value"] == 0.5 and found["latency"]["source"] == "transcript"
    assert "required_phrases" not in found  # needs configuration, not in the default set


def test_profile_then_reevaluation_replaces_results(client: TestClient, settle: Callable[[], None]) -> None:
    call_id = ingest(client, turns=LEAKY_TURNS)
    settle()
    before = scores(client, call_id)["pii_leakage"]["evaluated_at"]
    profile = {
        "metrics": {
            "forbidden_phrases": {"phrases": ["I've booked you"]},
            "pii_leakage": {"kinds": ["email"]},
        }
    }
    response = client.put("/api/v1/agents/test-agent/profile", json=profile, headers=AUTH)
    assert response.status_code == 200, response.text
    assert (
        client.get("/api/v1/agents/test-agent/profile", headers=AUTH).json()["metrics"] == profile["metrics"]
    )
    queued = client.post(f"/api/v1/jobs/{EVALS_RUN}", json={"agent_id": "test-agent"}, headers=AUTH)
    assert queued.status_code == 202 and queued.json()["call_ids"] == [call_id]
    status = client.post(
        f"/api/v1/jobs/{EVALS_RUN}/status", json={"call_ids": [call_id, "nope"]}, headers=AUTH
    )
    assert status.json() == {"status": {call_id: "pending", "nope": "none"}, "errors": {}}
    settle()
    after = scores(client, call_id)
    assert after["forbidden_phrases"]["value"] == 1
    assert after["pii_leakage"]["value"] == 0 and after["pii_leakage"]["params"]["kinds"] == ["email"]
    assert after["pii_leakage"]["evaluated_at"] > before
    assert sum(1 for name in after if name == "pii_leakage") == 1


def test_on_demand_metric_selection_and_bad_input(client: TestClient, settle: Callable[[], None]) -> None:
    call_id = ingest(client, turns=LEAKY_TURNS)
    settle()
    unknown = client.post(f"/api/v1/jobs/{EVALS_RUN}", json={"metrics": ["nope"]}, headers=AUTH)
    assert unknown.status_code == 400 and "unknown metric 'nope'" in unknown.json()["error"]["message"]
    bad = client.put(
        "/api/v1/agents/x/profile", json={"metrics": {"latency": {"turn_max_s": -1}}}, headers=AUTH
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["loc"] == "metrics.latency.turn_max_s"
    missing = client.post(f"/api/v1/jobs/{EVALS_RUN}", json={"call_ids": ["nope"]}, headers=AUTH)
    assert missing.status_code == 404
    queued = client.post(
        f"/api/v1/jobs/{EVALS_RUN}", json={"call_ids": [call_id], "metrics": ["regex"]}, headers=AUTH
    )
    assert queued.json()["queued"] == 1
    settle()
    assert scores(client, call_id)["regex"]["evidence"] == {"not_scorable": "no pattern configured"}


def test_metric_catalogue(client: TestClient) -> None:
    response = client.get("/api/v1/metrics", headers=AUTH, params={"kind": "deterministic"})
    assert response.status_code == 200
    listed = {m["name"]: m for m in response.json()}
    assert {"pii_leakage", "tool_call_correctness", "say_do_consistency"} <= set(listed)
    latency = listed["latency"]
    assert (
        latency["version"] == "2"
        and latency["default"] is True
        and latency["docs"] == "docs/metrics/latency.md"
    )
    assert latency["params_schema"]["properties"]["turn_max_s"]["default"] == 3.0
    assert listed["regex"]["default"] is False
    assert client.get("/api/v1/metrics", headers=AUTH, params={"kind": "nope"}).status_code == 422


def test_pass_rate_and_mean_by_agent(client: TestClient, settle: Callable[[], None]) -> None:
    clean = [{"role": "agent", "text": "Hello there, how can I help?", "start_s": 0.0, "end_s": 2.0}]
    for n, (agent, turns) in enumerate([("a", LEAKY_TURNS), ("a", clean), ("a", clean), ("b", LEAKY_TURNS)]):
        ingest(client, external_id=f"c{n}", agent_id=agent, turns=turns)
    settle()
    query = {"since": "2025-01-01T00:00:00Z", "until": "2025-02-01T00:00:00Z", "group_by": "agent"}
    passed = client.get(
        "/api/v1/metrics/timeseries", headers=AUTH, params={**query, "field": "passed:pii_leakage"}
    )
    assert passed.status_code == 200, passed.text
    rates = {p["group"]: (p["value"], p["count"]) for p in passed.json()["points"]}
    assert rates == {"a": (pytest.approx(2 / 3), 3), "b": (0.0, 1)}
    mean = client.get(
        "/api/v1/metrics/timeseries", headers=AUTH, params={**query, "field": "metric:pii_leakage"}
    )
    assert {p["group"]: p["value"] for p in mean.json()["points"]} == {"a": pytest.approx(1 / 3), "b": 1.0}


def test_evaluation_waits_for_queued_audio_analysis(
    client: TestClient, services: Services, settle: Callable[[], None]
) -> None:
    call_id = ingest(client, turns=LEAKY_TURNS)
    settle()
    project_id = services.default_project.id
    later = datetime.now(UTC) + timedelta(hours=1)
    services.meta.enqueue_jobs(project_id, [JobSpec(AUDIO_ANALYZE, call_id, run_after=later)])
    services.meta.enqueue_jobs(project_id, [JobSpec(EVALS_RUN, call_id, params={"metrics": ["regex"]})])
    assert services.jobs.run_once() == 1
    (job,) = [j for j in services.meta.jobs_for_call(project_id, call_id) if j.kind == EVALS_RUN]
    assert (job.status, job.attempts) == ("pending", 0), "waiting is not a failed attempt"
    assert "regex" not in scores(client, call_id)
    # after the last look it runs on transcript estimates
    last = {"metrics": ["regex"], "audio_waits": MAX_AUDIO_WAITS}
    services.meta.enqueue_jobs(project_id, [JobSpec(EVALS_RUN, call_id, params=last)])
    assert services.jobs.run_once() == 1
    assert job_state(client, call_id) == ("done", None)
    assert "regex" in scores(client, call_id)
