"""Simulation definitions and server-executed runs over the API, against the real reference agent.

The app runs inside TestClient's portal (``with``), so a run started by one request keeps running on the
same event loop while the test follows it over the WebSocket; the evaluation job is driven by hand
(``run_until_idle``) so the test knows when the stored calls have their scores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from convoscope.demo.agent import ReferenceAgentServer
from convoscope.server.app import create_app
from convoscope.server.services import Services
from convoscope.server.simulation_runner import SimulationRunner

SCENARIOS = """\
kind: scenario
id: price
goal: Find out what a cleaning costs.
unmocked_tools: pass_through
checks:
  required_tools: [{tool: get_price}]
script:
  lines: ["How much does a cleaning cost?"]
  replies:
    - {when: "anything else", say: "No, thanks, bye.", hang_up: true}
---
kind: scenario
id: human
goal: Speak to a person.
unmocked_tools: pass_through
checks:
  required_tools: [{tool: transfer_to_human}]
script:
  lines: ["Can I speak to a real person, please?"]
---
kind: suite
id: smoke
scenarios: [price, human]
iterations: 2
metrics: [tool_call_success]
"""


def _agent(url: str, model: str = "reference-agent") -> dict[str, Any]:
    return {
        "version": "1.0",
        "connector": {"kind": "openai", "base_url": f"{url}/v1", "model": model},
        "tools_url": f"{url}/tools",
    }


@pytest.fixture(scope="module")
def agent_url() -> Iterator[str]:
    with ReferenceAgentServer(slow_s=0.5) as server:
        yield server.url


@pytest.fixture
def live(services: Services) -> Iterator[TestClient]:
    """The app with its event loop kept between requests (a run outlives the request that started it)."""
    with TestClient(create_app(services, run_worker=False)) as client:
        yield client


YAML = {"content-type": "application/yaml"}


def _import(client: TestClient, auth: dict[str, str], text: str) -> Any:
    return client.post("/api/v1/simulation/definitions:import", content=text, headers={**auth, **YAML})


def _follow(client: TestClient, run_id: str, key: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    with client.websocket_connect(f"/api/v1/simulation/runs/{run_id}/progress?key={key}") as ws:
        while True:
            message = ws.receive_json()
            messages.append(message)
            if message["type"] == "done":
                break
    return messages


def test_definitions_are_put_read_listed_and_deleted(client: TestClient, auth: dict[str, str]) -> None:
    base = "/api/v1/simulation"
    body = {"goal": "Book a cleaning.", "kind": "scenario", "script": {"lines": ["Hi."]}}
    created = client.put(f"{base}/scenarios/book", json=body, headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "book" and created.json()["max_turns"] == 20
    assert client.put(f"{base}/scenarios/book", json={**body, "id": "book"}, headers=auth).status_code == 200
    wrong = client.put(f"{base}/scenarios/book", json={**body, "id": "other"}, headers=auth)
    assert wrong.status_code == 422 and "'other'" in wrong.json()["error"]["message"]
    invalid = client.put(f"{base}/scenarios/book", json={"goal": "x", "max_turns": 0}, headers=auth)
    assert invalid.status_code == 422
    assert client.get(f"{base}/scenarios/book", headers=auth).json()["goal"] == "Book a cleaning."
    assert [s["id"] for s in client.get(f"{base}/scenarios", headers=auth).json()["items"]] == ["book"]

    personas = client.get(f"{base}/personas", headers=auth).json()["items"]
    assert {"neutral", "impatient"} <= {p["id"] for p in personas}
    assert client.get(f"{base}/personas/neutral", headers=auth).status_code == 200
    assert client.put(f"{base}/personas/rushed", json={"pace": "fast"}, headers=auth).status_code == 201

    unknown = client.put(
        f"{base}/suites/s", json={"scenarios": ["book", "nope"], "personas": ["ghost"]}, headers=auth
    )
    assert unknown.status_code == 422
    message = unknown.json()["error"]["message"]
    assert "unknown scenario 'nope'" in message and "unknown persona 'ghost'" in message
    suite = {"scenarios": ["book"], "personas": ["neutral", "rushed"]}
    assert client.put(f"{base}/suites/s", json=suite, headers=auth).status_code == 201

    named = client.delete(f"{base}/scenarios/book", headers=auth)
    assert named.status_code == 409 and "'s'" in named.json()["error"]["message"]
    assert client.delete(f"{base}/personas/rushed", headers=auth).status_code == 409
    assert client.delete(f"{base}/suites/s", headers=auth).status_code == 204
    assert client.delete(f"{base}/scenarios/book", headers=auth).status_code == 204
    assert client.delete(f"{base}/scenarios/book", headers=auth).status_code == 404
    assert client.get(f"{base}/scenarios/book", headers=auth).status_code == 404
    assert client.get(f"{base}/agents", headers=auth).json() == {"items": []}


def test_an_import_is_checked_with_lines_and_written_whole(client: TestClient, auth: dict[str, str]) -> None:
    broken = (
        SCENARIOS.replace("iterations: 2", "iterations: 0") + "---\nkind: persona\nid: p\npatience_s: -1\n"
    )
    refused = _import(client, auth, broken)
    assert refused.status_code == 422, refused.text
    details = refused.json()["error"]["details"]
    assert {
        "loc": "<body>:24",
        "field": "iterations",
        "msg": "Input should be greater than or equal to 1",
    } in details
    assert any(d["loc"] == "<body>:29" and d["field"] == "patience_s" for d in details)
    assert client.get("/api/v1/simulation/scenarios", headers=auth).json() == {
        "items": []
    }  # nothing half-written

    syntax = _import(client, auth, "kind: scenario\nid: [unclosed\n")
    assert syntax.status_code == 422 and "<body>:" in syntax.json()["error"]["message"]
    assert _import(client, auth, "").status_code == 422
    wrong_type = client.post(
        "/api/v1/simulation/definitions:import",
        content=SCENARIOS,
        headers={**auth, "content-type": "text/plain"},
    )
    assert wrong_type.status_code == 415

    imported = _import(client, auth, SCENARIOS)
    assert imported.status_code == 200, imported.text
    assert imported.json()["items"] == [
        {"kind": "scenario", "id": "price", "created": True},
        {"kind": "scenario", "id": "human", "created": True},
        {"kind": "suite", "id": "smoke", "created": True},
    ]
    # A later import may name what is already kept.
    again = _import(client, auth, "kind: suite\nid: prices\nscenarios: [price]\npersonas: [chatty]\n")
    assert again.status_code == 200 and again.json()["items"][0]["created"] is True


def test_a_run_started_over_the_api_is_followed_kept_and_its_calls_evaluated(
    live: TestClient, auth: dict[str, str], key: str, services: Services, agent_url: str
) -> None:
    assert _import(live, auth, SCENARIOS).status_code == 200
    put = live.put("/api/v1/simulation/agents/clinic", json=_agent(agent_url), headers=auth)
    assert put.status_code == 201, put.text

    started = live.post(
        "/api/v1/simulation/runs:start", json={"suite": "smoke", "agent": "clinic"}, headers=auth
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    assert (
        started.json()["planned"] == 4 and started.headers["location"] == f"/api/v1/simulation/runs/{run_id}"
    )

    messages = _follow(live, run_id, key)
    conversations = [m for m in messages if m["type"] == "conversation"]
    assert len(conversations) == 4
    assert {(m["scenario"], m["iteration"]) for m in conversations} == {
        (s, i) for s in ("price", "human") for i in (1, 2)
    }
    assert all(m["verdict"] == "passed" and m["reasons"] == [] for m in conversations), conversations
    assert messages[-1] == {
        "type": "done",
        "status": "done",
        "totals": {"passed": 4, "failed": 0, "errored": 0},
        "error": None,
    }

    kept = live.get(f"/api/v1/simulation/runs/{run_id}", headers=auth).json()
    assert kept["status"] == "done" and kept["totals"] == {"passed": 4} and len(kept["conversations"]) == 4
    assert kept["finished_at"] is not None and kept["planned"] == 4

    # A late follower gets everything again, from the live run and from the kept result alike.
    assert _follow(live, run_id, key) == messages
    replayed = asyncio.run(_collect(SimulationRunner(services), services.default_project.id, run_id))
    assert [m.get("external_id") for m in replayed] == [m.get("external_id") for m in messages]

    calls = live.get("/api/v1/calls", params={"source": "simulation"}, headers=auth).json()["items"]
    assert len(calls) == 4
    assert services.jobs.run_until_idle() >= 4
    for message in conversations:
        call = live.get(f"/api/v1/calls/{message['call_id']}", headers=auth).json()
        assert call["call"]["source"] == "simulation" and call["call"]["simulation"]["run_id"] == run_id
        scores = {score["metric"]: score["passed"] for score in call["scores"]}
        assert scores["scenario_checks"] is True, call


async def _collect(runner: SimulationRunner, project_id: str, run_id: str) -> list[dict[str, Any]]:
    return [message async for message in runner.follow(project_id, run_id)]


def test_a_running_run_shows_its_counts_so_far(
    live: TestClient, auth: dict[str, str], key: str, agent_url: str
) -> None:
    assert _import(live, auth, SCENARIOS).status_code == 200
    slow = _agent(agent_url, "reference-agent+slow_tool")
    assert live.put("/api/v1/simulation/agents/slow", json=slow, headers=auth).status_code == 201
    body = {"suite": "smoke", "agent": "slow", "iterations": 1, "concurrency": 1}
    run_id = live.post("/api/v1/simulation/runs:start", json=body, headers=auth).json()["run_id"]
    running = live.get(f"/api/v1/simulation/runs/{run_id}", headers=auth).json()
    assert running["status"] == "running" and running["planned"] == 2 and running["finished_at"] is None
    assert len(running["conversations"]) < 2
    listed = live.get("/api/v1/simulation/runs", headers=auth).json()["items"]
    assert [item["id"] for item in listed] == [run_id]
    done = _follow(live, run_id, key)[-1]
    assert done["status"] == "done" and sum(done["totals"].values()) == 2


def test_bad_starts_are_refused_naming_what_is_wrong(
    live: TestClient, auth: dict[str, str], key: str, agent_url: str
) -> None:
    assert _import(live, auth, SCENARIOS).status_code == 200
    assert (
        live.put("/api/v1/simulation/agents/clinic", json=_agent(agent_url), headers=auth).status_code == 201
    )
    start: Callable[[dict[str, Any]], Any] = lambda body: live.post(  # noqa: E731
        "/api/v1/simulation/runs:start", json=body, headers=auth
    )

    unknown_suite = start({"suite": "nope", "agent": "clinic"})
    assert unknown_suite.status_code == 404 and "suite 'nope'" in unknown_suite.json()["error"]["message"]
    unknown_agent = start({"suite": "smoke", "agent": "ghost"})
    assert unknown_agent.status_code == 404 and "agent 'ghost'" in unknown_agent.json()["error"]["message"]
    assert start({"suite": "smoke", "agent": "clinic", "concurrency": 1001}).status_code == 422
    assert start({"suite": "smoke", "agent": "clinic", "iterations": "2"}).status_code == 422
    assert start({"suite": "smoke", "agent": "clinic", "extra": 1}).status_code == 422

    no_script = "kind: scenario\nid: free\ngoal: Chat.\n---\nkind: suite\nid: llm\nscenarios: [free]\n"
    assert _import(live, auth, no_script).status_code == 200
    needs_llm = start({"suite": "llm", "agent": "clinic"})
    assert needs_llm.status_code == 422 and "'free'" in needs_llm.json()["error"]["message"]
    assert live.get("/api/v1/simulation/runs", headers=auth).json()["items"] == []

    with pytest.raises(WebSocketDisconnect) as missing_key:
        with live.websocket_connect("/api/v1/simulation/runs/run-x/progress") as ws:
            ws.receive_json()
    assert missing_key.value.code == 4401
    with pytest.raises(WebSocketDisconnect) as unknown_run:
        with live.websocket_connect(f"/api/v1/simulation/runs/run-x/progress?key={key}") as ws:
            ws.receive_json()
    assert unknown_run.value.code == 4404
