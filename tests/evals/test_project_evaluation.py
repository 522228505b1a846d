"""What a project's settings change in the post-ingest evaluation: calibrations shown on results, custom
metrics defined in settings, and each agent's own judge endpoint, all over real HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from convoscope.config import Settings
from convoscope.evals.base import AgentProfile, EvalContext
from convoscope.evals.calibration import SETTINGS_KEY, calibrate
from convoscope.evals.jobs import EvalsJob
from convoscope.evals.judges.outcome import ExpectedOutcome
from convoscope.evals.llm import JudgeClient
from convoscope.model import Call
from convoscope.runtime.kinds import EVALS_RUN
from convoscope.server.services import Services, open_services
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.testing import call_payload, make_call
from convoscope.testing.openai_server import FakeOpenAIServer, json_reply

from .judge_support import fake_llm, judge, script, system_of

__all__ = ["fake_llm", "judge"]

KEY = "cvs_test_key_project_default_0001"
AUTH = {"Authorization": f"Bearer {KEY}"}
BASE_KEY = "sk-configured-judge-key"
AGENT_KEY = "sk-agent-own-judge-key"
AGENT_KEY_ENV = "CONVOSCOPE_TEST_AGENT_JUDGE_KEY"


@pytest.fixture
def other_llm() -> Iterator[FakeOpenAIServer]:
    """A second endpoint, for an agent whose profile names its own judge."""
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def services(
    tmp_path: Path, clickhouse_store: ClickHouseStore, fake_llm: FakeOpenAIServer
) -> Iterator[Services]:
    settings = Settings(
        data_dir=tmp_path / "data",
        init_api_key=KEY,
        llm_base_url=fake_llm.url,
        llm_model="judge-model",
        llm_api_key=SecretStr(BASE_KEY),
    )
    opened = open_services(settings, store=clickhouse_store)
    evaluations = EvalsJob.of(opened)  # registered here so its judge clients are closed after the test
    opened.jobs.register(EVALS_RUN, evaluations)
    yield opened
    evaluations.close()
    opened.meta.close()


def unique(stem: str) -> str:
    """Custom metric names are process-wide, so each test defines its own."""
    return f"{stem}_{uuid.uuid4().hex[:8]}"


def set_setting(services: Services, path: tuple[str, ...], value: Any) -> None:
    services.meta.update_project_settings(services.default_project.id, path, value)


def put_profile(client: TestClient, agent_id: str, profile: dict[str, Any]) -> None:
    response = client.put(f"/api/v1/agents/{agent_id}/profile", json=profile, headers=AUTH)
    assert response.status_code == 200, response.text


def ingest(client: TestClient, **overrides: Any) -> str:
    response = client.post("/api/v1/calls", json=call_payload(**overrides), headers=AUTH)
    assert response.status_code == 202, response.text
    return str(response.json()["ids"][0])


def detail(client: TestClient, call_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/calls/{call_id}", headers=AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def scores(client: TestClient, call_id: str) -> dict[str, dict[str, Any]]:
    return {score["metric"]: score for score in detail(client, call_id)["scores"]}


def verdict(passed: bool) -> dict[str, Any]:
    return {"passed": passed, "reasoning": "as scripted", "quotes": [{"turn_index": 0, "quote": "Hello"}]}


def test_calibration_is_carried_by_every_stored_result_of_that_metric(
    client: TestClient,
    services: Services,
    settle: Callable[[], None],
    fake_llm: FakeOpenAIServer,
    judge: JudgeClient,
) -> None:
    outcome = "The caller learns where the order is."
    fake_llm.add(json_reply({"verdict": "pass", "reasoning": "ok", "quotes": []}), contains="labelled-one")
    fake_llm.add(json_reply({"verdict": "fail", "reasoning": "no", "quotes": []}), contains="labelled-two")
    labelled = [
        (
            make_call(id="l1", turns=[{"role": "user", "text": "labelled-one", "start_s": 0, "end_s": 1}]),
            "pass",
        ),
        (
            make_call(id="l2", turns=[{"role": "user", "text": "labelled-two", "start_s": 0, "end_s": 1}]),
            "pass",
        ),
    ]

    def context_for(call: Call) -> EvalContext:
        return EvalContext(profile=AgentProfile(expected_outcome=outcome), judge=judge)

    agreement, _ = calibrate(ExpectedOutcome(), labelled, context_for)
    stored = agreement.as_json()
    assert (stored["n"], stored["accuracy"]) == (2, 0.5)
    set_setting(services, (SETTINGS_KEY, "expected_outcome"), stored)

    put_profile(
        client,
        "test-agent",
        {"expected_outcome": outcome, "metrics": {"expected_outcome": {}, "pii_leakage": {}}},
    )
    fake_llm.add(json_reply({"verdict": "pass", "reasoning": "found", "quotes": []}))
    call_id = ingest(client)
    settle()
    found = scores(client, call_id)
    assert found["expected_outcome"]["value"] == "pass"
    assert found["expected_outcome"]["evidence"]["calibration"] == stored
    assert "calibration" not in found["pii_leakage"]["evidence"]

    # a newer calibration shows on the next evaluation
    newer = {**stored, "accuracy": 1.0, "kappa": 1.0}
    set_setting(services, (SETTINGS_KEY, "expected_outcome"), newer)
    queued = client.post(f"/api/v1/jobs/{EVALS_RUN}", json={"call_ids": [call_id]}, headers=AUTH)
    assert queued.status_code == 202
    settle()
    assert scores(client, call_id)["expected_outcome"]["evidence"]["calibration"]["accuracy"] == 1.0


def test_a_custom_metric_in_settings_runs_after_ingest_and_an_edit_replaces_it(
    client: TestClient, services: Services, settle: Callable[[], None], fake_llm: FakeOpenAIServer
) -> None:
    name = unique("reads_back")
    broken = unique("no_output")
    set_setting(
        services,
        ("custom_metrics", name),
        {"rubric": "The agent reads the order number back.", "output": "binary"},
    )
    set_setting(services, ("custom_metrics", broken), {"rubric": "Anything at all.", "output": "binary"})
    put_profile(client, "test-agent", {"metrics": {name: {}, broken: {}, "pii_leakage": {}}})
    # a definition broken after the profile named it: an error on its result, not a failed evaluation
    set_setting(services, ("custom_metrics", broken), {"rubric": "Anything at all."})
    refused = client.put("/api/v1/agents/x/profile", json={"metrics": {broken: {}}}, headers=AUTH)
    assert refused.status_code == 422 and "has a rubric but no output type" in refused.text
    script(fake_llm, "reads the order number back", verdict(True))
    call_id = ingest(client)
    settle()
    assert [j["status"] for j in detail(client, call_id)["jobs"] if j["kind"] == EVALS_RUN] == ["done"]
    first = scores(client, call_id)
    assert first[name]["value"] is True and first[name]["passed"] is True
    assert first[name]["version"].startswith("1.")
    assert first[broken]["value"] is None
    assert "has a rubric but no output type" in first[broken]["error"]
    assert first["pii_leakage"]["value"] == 0, "the other metrics are still computed"
    (request,) = fake_llm.requests
    assert "reads the order number back" in system_of(request)

    # the rubric edited in settings: same name, new version, the new rubric is what the judge sees
    edited = {"rubric": "The agent confirms the delivery date.", "output": "binary"}
    set_setting(services, ("custom_metrics", name), edited)
    script(fake_llm, "confirms the delivery date", verdict(False))
    queued = client.post(
        f"/api/v1/jobs/{EVALS_RUN}", json={"call_ids": [call_id], "metrics": [name]}, headers=AUTH
    )
    assert queued.status_code == 202, queued.text
    settle()
    second = scores(client, call_id)[name]
    assert second["value"] is False and second["version"] != first[name]["version"]
    assert "confirms the delivery date" in system_of(fake_llm.requests[-1])
    listed = {m["name"]: m for m in client.get("/api/v1/metrics", headers=AUTH).json()}
    assert listed[name]["version"] == second["version"] and listed[name]["kind"] == "judge"
    unknown = client.post(f"/api/v1/jobs/{EVALS_RUN}", json={"metrics": [unique("nope")]}, headers=AUTH)
    assert unknown.status_code == 400


def test_each_agent_judged_on_its_own_endpoint_with_a_key_from_the_environment(
    client: TestClient,
    services: Services,
    settle: Callable[[], None],
    fake_llm: FakeOpenAIServer,
    other_llm: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(AGENT_KEY_ENV, AGENT_KEY)
    name = unique("polite")
    set_setting(services, ("custom_metrics", name), {"rubric": "The agent is polite.", "output": "binary"})
    put_profile(client, "main-agent", {"metrics": {name: {}}})
    own = {
        "metrics": {name: {}},
        "judge_base_url": other_llm.url,
        "judge_model": "agent-model",
        "judge_api_key_env": AGENT_KEY_ENV,
    }
    put_profile(client, "own-agent", own)
    script(fake_llm, "The agent is polite.", verdict(True))
    script(other_llm, "The agent is polite.", verdict(False))
    main_call = ingest(client, external_id="m", agent_id="main-agent")
    own_call = ingest(client, external_id="o", agent_id="own-agent")
    settle()
    assert scores(client, main_call)[name]["value"] is True
    assert scores(client, own_call)[name]["value"] is False
    (base_request,) = fake_llm.requests
    (agent_request,) = other_llm.requests
    assert (base_request.body["model"], base_request.headers["authorization"]) == (
        "judge-model",
        f"Bearer {BASE_KEY}",
    )
    assert (agent_request.body["model"], agent_request.headers["authorization"]) == (
        "agent-model",
        f"Bearer {AGENT_KEY}",
    )

    # the profile names the variable; neither key is ever stored or returned
    shown = client.get("/api/v1/agents/own-agent/profile", headers=AUTH)
    assert shown.status_code == 200 and shown.json()["judge_api_key_env"] == AGENT_KEY_ENV
    everything = shown.text + json.dumps(services.meta.project_settings(services.default_project.id))
    assert AGENT_KEY not in everything and BASE_KEY not in everything
    refused = client.put("/api/v1/agents/x/profile", json={"judge_api_key": AGENT_KEY}, headers=AUTH)
    assert refused.status_code == 422

    # a named variable that is not set fails that evaluation with a message naming it, not a key
    monkeypatch.delenv(AGENT_KEY_ENV)
    client.post(f"/api/v1/jobs/{EVALS_RUN}", json={"call_ids": [own_call]}, headers=AUTH)
    settle()
    (job,) = [j for j in detail(client, own_call)["jobs"] if j["kind"] == EVALS_RUN]
    assert job["status"] == "failed" and AGENT_KEY_ENV in job["error"] and "is not set" in job["error"]


def test_an_agent_endpoint_never_receives_the_configured_key(
    other_llm: FakeOpenAIServer, judge: JudgeClient
) -> None:
    moved = judge.with_overrides(base_url=other_llm.url, model="agent-model")
    assert moved.config.api_key is None
    keyed = JudgeClient(judge.config.model_copy(update={"api_key": SecretStr(BASE_KEY)}))
    try:
        assert keyed.with_overrides(model="bigger").config.api_key == SecretStr(BASE_KEY)
        assert keyed.with_overrides(base_url=other_llm.url).config.api_key is None
    finally:
        keyed.close()
