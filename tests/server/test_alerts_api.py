"""Alert rules and events over the API, against a real app over real stores.

The immediate rule is exercised end to end: a call is POSTed, the worker stores it, the job runner
scores it (``run_until_idle``), and the evaluation batch's hook fires the rule; the event is then read
over the API with the call's id, and the delivery seam was handed the rule's notifiers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from convoscope.alerts.events import AlertEvent
from convoscope.server.services import Services
from convoscope.testing import call_payload

LEAK = "Sure, it's 4111 1111 1111 1111. I've booked you for Tuesday."
RULES = "/api/v1/alerts/rules"


def _turns(agent_text: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "text": "Can you help me with my booking?", "start_s": 0.0, "end_s": 2.0},
        {"role": "agent", "text": agent_text, "start_s": 2.6, "end_s": 6.0},
    ]


def test_an_immediate_rule_fires_right_after_the_evaluation_batch(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    delivered: list[tuple[AlertEvent, list[str]]] = []
    services.alerts.deliver = lambda event, names: delivered.append((event, names))
    rule = {
        "kind": "immediate",
        "name": "Card number read out",
        "severity": "critical",
        "scope": {"agent_id": "test-agent"},
        "notifiers": ["oncall-slack"],
        "immediate": {"metric": "pii_leakage"},
    }
    created = client.put(f"{RULES}/pii-now", json=rule, headers=auth)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"{RULES}/pii-now"
    assert created.json()["rule"]["immediate"] == {"metric": "pii_leakage"}
    assert created.json()["state"]["firing"] is False

    calls = [
        call_payload(external_id="leaky", turns=_turns(LEAK)),
        call_payload(external_id="clean", turns=_turns("Booked for Tuesday.")),
        call_payload(external_id="elsewhere", agent_id="other-agent", turns=_turns(LEAK)),
    ]
    assert client.post("/api/v1/calls", json=calls, headers=auth).status_code == 202
    drain()
    services.jobs.run_until_idle()

    listed = client.get("/api/v1/alerts/events", params={"rule": "pii-now"}, headers=auth)
    assert listed.status_code == 200
    (event,) = listed.json()["items"]
    leaky = client.get("/api/v1/calls", params={"limit": 10}, headers=auth).json()["items"]
    leaky_id = next(item["id"] for item in leaky if item["external_id"] == "leaky")
    assert event["state"] == "firing" and event["severity"] == "critical"
    assert event["call_ids"] == [leaky_id]
    assert "failed pii_leakage" in event["summary"]
    one = client.get(f"/api/v1/alerts/events/{event['id']}", headers=auth)
    assert one.status_code == 200 and one.json()["call_ids"] == [leaky_id]
    assert [(e.id, names) for e, names in delivered] == [(event["id"], ["oncall-slack"])]

    state = client.get(f"{RULES}/pii-now", headers=auth).json()["state"]
    assert state["firing"] is True and state["last_event_id"] == event["id"]
    # Evaluated now (the schedule's path), the failure is still in the window: still firing, no event.
    now = client.post(f"{RULES}/pii-now:evaluate", headers=auth)
    assert now.status_code == 200, now.text
    assert now.json()["state"]["firing"] is True and now.json()["event"] is None
    assert (
        client.get("/api/v1/alerts/events", params={"state": "resolved"}, headers=auth).json()["items"] == []
    )


def test_rules_are_kept_listed_replaced_and_deleted(client: TestClient, auth: dict[str, str]) -> None:
    rule = {
        "kind": "threshold",
        "name": "Slow answers",
        "target": "e2e_s",
        "threshold": {"aggregate": "p95", "op": ">", "value": 1.5},
    }
    assert client.put(f"{RULES}/slow", json=rule, headers=auth).status_code == 201
    replaced = client.put(f"{RULES}/slow", json={**rule, "window_s": 600}, headers=auth)
    assert replaced.status_code == 200 and replaced.json()["rule"]["window_s"] == 600
    listed = client.get(RULES, headers=auth).json()["items"]
    assert [item["id"] for item in listed] == ["slow"]
    assert listed[0]["rule"]["cooldown_s"] == 900  # defaults are filled in
    evaluated = client.post(f"{RULES}/slow:evaluate", headers=auth).json()
    assert evaluated["event"] is None and evaluated["state"]["last_evaluated_at"] is not None
    assert client.delete(f"{RULES}/slow", headers=auth).status_code == 204
    assert client.get(f"{RULES}/slow", headers=auth).status_code == 404
    assert client.post(f"{RULES}/slow:evaluate", headers=auth).status_code == 404
    assert client.delete(f"{RULES}/slow", headers=auth).status_code == 404
    assert client.get("/api/v1/alerts/events/0123abcd", headers=auth).status_code == 404


def _refused(client: TestClient, auth: dict[str, str], body: dict[str, Any]) -> list[str]:
    """``location: message`` of each problem of a refused PUT."""
    answer = client.put(f"{RULES}/bad", json=body, headers=auth)
    assert answer.status_code == 422, answer.text
    # Each location reads body.<kind>.<field> (the rule's kind first, as the body is one of five shapes).
    return [f"{detail['loc']}: {detail['msg']}" for detail in answer.json()["error"]["details"]]


def test_invalid_rules_are_refused_naming_the_field(client: TestClient, auth: dict[str, str]) -> None:
    base = {"kind": "threshold", "name": "x", "target": "e2e_s", "threshold": {"op": ">", "value": 1}}
    assert any("window_s" in loc for loc in _refused(client, auth, {**base, "window_s": 5}))
    assert any("target" in loc for loc in _refused(client, auth, {**base, "target": "nonsense"}))
    assert any(
        "threshold.op" in loc
        for loc in _refused(client, auth, {**base, "threshold": {"op": "=", "value": 1}})
    )
    assert any("severity" in loc for loc in _refused(client, auth, {**base, "severity": "urgent"}))
    assert any(
        "trend" in loc for loc in _refused(client, auth, {**base, "kind": "trend", "trend": {"k": -1}})
    )
    assert any("kind" in loc for loc in _refused(client, auth, {**base, "kind": "sometimes"}))
    assert any(
        "threshold" in loc
        for loc in _refused(client, auth, {k: v for k, v in base.items() if k != "threshold"})
    )
    assert any("min_samples" in loc for loc in _refused(client, auth, {**base, "min_samples": "3"}))  # strict
    assert any("id" in loc for loc in _refused(client, auth, {**base, "id": "bad"}))  # the path names it
    assert client.get(f"{RULES}/bad", headers=auth).status_code == 404
