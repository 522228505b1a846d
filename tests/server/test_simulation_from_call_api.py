"""A stored production call becomes a scenario over the API: its caller's lines replayed, its failed
metrics expected to pass, kept as the project's definitions when asked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from convoscope.server.services import Services
from convoscope.testing import call_payload

LEAK = "Sure, the card on file is 4111 1111 1111 1111."


def _turns(*lines: tuple[str, str]) -> list[dict[str, Any]]:
    return [
        {"role": role, "text": text, "start_s": 2.0 * i, "end_s": 2.0 * i + 1.5}
        for i, (role, text) in enumerate(lines)
    ]


def _stored_id(client: TestClient, auth: dict[str, str], external_id: str) -> str:
    items = client.get("/api/v1/calls", params={"limit": 20}, headers=auth).json()["items"]
    return next(item["id"] for item in items if item["external_id"] == external_id)


def test_a_failed_call_becomes_a_kept_scenario_that_expects_its_failed_metric(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    call = call_payload(
        external_id="leak-1",
        turns=_turns(
            ("agent", "Hello, how can I help?"), ("user", "What card do you have for me?"), ("agent", LEAK)
        ),
    )
    assert client.post("/api/v1/calls", json=[call], headers=auth).status_code == 202
    drain()
    services.jobs.run_until_idle()
    call_id = _stored_id(client, auth, "leak-1")

    made = client.post("/api/v1/simulation/scenarios:from-call", json={"call_id": call_id}, headers=auth)
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["scenario"]["script"]["lines"] == ["What card do you have for me?"]
    assert "pii_leakage" in body["suite"]["metrics"]
    assert body["kept"] is True and body["inferred"] is False
    scenario_id, suite_id = body["scenario"]["id"], body["suite"]["id"]
    kept = client.get(f"/api/v1/simulation/scenarios/{scenario_id}", headers=auth)
    assert kept.status_code == 200 and kept.json()["script"]["lines"] == ["What card do you have for me?"]
    assert client.get(f"/api/v1/simulation/suites/{suite_id}", headers=auth).status_code == 200


def test_unknown_calls_and_calls_with_no_caller_are_refused(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    missing = client.post("/api/v1/simulation/scenarios:from-call", json={"call_id": "nope"}, headers=auth)
    assert missing.status_code == 404 and "call nope not found" in missing.json()["error"]["message"]
    lonely = call_payload(external_id="lonely", turns=_turns(("agent", "Hello? Anyone there?")))
    assert client.post("/api/v1/calls", json=[lonely], headers=auth).status_code == 202
    drain()
    answer = client.post(
        "/api/v1/simulation/scenarios:from-call",
        json={"call_id": _stored_id(client, auth, "lonely"), "keep": False},
        headers=auth,
    )
    assert answer.status_code == 422 and "no caller turns" in answer.json()["error"]["message"]
