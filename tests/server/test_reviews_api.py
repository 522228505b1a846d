"""The review queue over the API: fill by rule, hand out with claims, label with the key as reviewer
(404 / 422 naming the field / 409 on a second label), export JSONL, and calibration per metric."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from convoscope.model import MetricResult
from convoscope.model.enums import MetricSource
from convoscope.server.services import Services
from convoscope.server.worker import assign_identity
from convoscope.testing import make_call

BASE = "/api/v1/reviews"


@pytest.fixture
def seeded(services: Services) -> list[str]:
    """Four calls in the last day: tool_call_success fails on the first two, passes on the others."""
    project_id = services.default_project.id
    now = datetime.now(UTC)
    calls = [
        assign_identity(
            project_id,
            make_call(external_id=f"r{i}", started_at=(now - timedelta(hours=i + 1)).isoformat()),
        )
        for i in range(4)
    ]
    services.store.insert_calls(project_id, calls, version=1)
    ids = [call.id or "" for call in calls]
    services.store.insert_scores(
        project_id,
        [
            MetricResult(
                call_id=call_id,
                metric="tool_call_success",
                value=i >= 2,
                passed=i >= 2,
                source=MetricSource.TRANSCRIPT,
            )
            for i, call_id in enumerate(ids)
        ],
    )
    return ids


def _fill(client: TestClient, auth: dict[str, str], **rules: Any) -> dict[str, Any]:
    response = client.post(f"{BASE}/queue/fill", json={"rules": rules}, headers=auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_fill_take_label_and_calibrate(
    client: TestClient, auth: dict[str, str], seeded: list[str], services: Services
) -> None:
    report = _fill(client, auth, random_sample={"per_agent_per_day": 0})
    assert report["queued"] == {"split_verdict": 0, "low_score": 2, "random_sample": 0}
    assert report["examined"] == 4
    assert _fill(client, auth)["queued"]["low_score"] == 0  # idempotent

    peek = client.get(f"{BASE}/queue", params={"claim": "false", "limit": 5}, headers=auth).json()
    assert {c["call_id"] for c in peek["items"]} == set(seeded[:2]) and peek["counts"] == {"open": 2}
    taken = client.get(f"{BASE}/queue", headers=auth).json()
    (call,) = taken["items"]
    (item,) = call["items"]
    assert item["metric"] == "tool_call_success" and item["rule"] == "low_score"
    assert item["result"]["passed"] is False and call["page"] == f"/calls/{call['call_id']}"
    (key,) = services.meta.list_api_keys(services.default_project.id)
    assert item["claimed_by"] == {"id": key.id, "name": key.name}

    # Another key is handed the other call, not the one claimed.
    other = services.meta.create_api_key(services.default_project.id, name="bob")
    bob = {"Authorization": f"Bearer {other}"}
    (bobs,) = client.get(f"{BASE}/queue", headers=bob).json()["items"]
    assert bobs["call_id"] != call["call_id"]

    labelled = client.post(
        f"{BASE}/labels",
        json={
            "call_id": call["call_id"],
            "metric": "tool_call_success",
            "verdict": "pass",
            "note": "ran fine",
        },
        headers=auth,
    )
    assert labelled.status_code == 201, labelled.text
    label = labelled.json()
    assert label["reviewer"] == {"id": key.id, "name": key.name} and label["rule"] == "low_score"
    assert label["judge"]["passed"] is False
    assert datetime.fromisoformat(label["created_at"]) > datetime.now(UTC) - timedelta(minutes=1)

    twice = client.post(
        f"{BASE}/labels",
        json={"call_id": call["call_id"], "metric": "tool_call_success", "verdict": "fail"},
        headers=auth,
    )
    assert twice.status_code == 409 and twice.json()["error"]["type"] == "Conflict"
    replaced = client.post(
        f"{BASE}/labels",
        json={"call_id": call["call_id"], "metric": "tool_call_success", "verdict": "fail", "replace": True},
        headers=auth,
    )
    assert replaced.status_code == 201 and replaced.json()["replaced"] is True
    # A labelled call leaves the queue: the next ask gets nothing (Bob holds the other call).
    assert client.get(f"{BASE}/queue", headers=auth).json()["items"] == []

    client.post(
        f"{BASE}/labels",
        json={"call_id": seeded[3], "metric": "tool_call_success", "verdict": "fail"},
        headers=auth,
    )
    # Pairs (person, judge): (fail, fail) and (fail, pass): p_o = 1/2; the person always says fail,
    # so chance agreement is p_e = 1 * 1/2 = 1/2 and kappa = (1/2 - 1/2) / (1 - 1/2) = 0.
    rows = {r["metric"]: r for r in client.get(f"{BASE}/calibration", headers=auth).json()["items"]}
    assert (
        rows["tool_call_success"]["kappa"] == pytest.approx(0.0)
        and rows["tool_call_success"]["compared"] == 2
    )
    assert rows["csat"]["status"] == "uncalibrated" and rows["csat"]["kind"] == "judge"

    listed = client.get(f"{BASE}/labels", headers=auth).json()["items"]
    assert [(x["call_id"], x["verdict"]) for x in listed] == [(call["call_id"], "fail"), (seeded[3], "fail")]
    export = client.get(f"{BASE}/labels", params={"format": "jsonl"}, headers=auth)
    assert export.status_code == 200 and export.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [line["call_id"] for line in lines] == [call["call_id"], seeded[3]]
    assert lines[0]["label"] == "fail" and lines[0]["reviewer"]["name"] == key.name
    assert lines[0]["transcript"][0]["text"] == "Hello, how can I help you today?"
    assert lines[0]["judge"]["value"] is False


def test_bad_labels_are_refused_naming_the_field(
    client: TestClient, auth: dict[str, str], seeded: list[str]
) -> None:
    def post(**body: Any) -> Any:
        return client.post(
            f"{BASE}/labels", json={"call_id": seeded[0], "metric": "tool_call_success", **body}, headers=auth
        )

    missing = post(call_id="no-such-call", verdict="pass")
    assert missing.status_code == 404 and "no-such-call" in missing.json()["error"]["message"]
    unknown = post(metric="no_such_metric", verdict="pass")
    assert unknown.status_code == 422 and unknown.json()["error"]["details"][0]["loc"] == "body.metric"
    bad = post(verdict="maybe")
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["loc"] == "body.verdict"
    empty = post()
    assert empty.status_code == 422 and empty.json()["error"]["details"][0]["loc"] == "body.verdict"
    assert post(value="lots").json()["error"]["details"][0]["loc"] == "body.value"
    rules = client.post(
        f"{BASE}/queue/fill", json={"rules": {"random_sample": {"per_agent_per_day": -1}}}, headers=auth
    )
    assert rules.status_code == 422 and "per_agent_per_day" in rules.json()["error"]["details"][0]["loc"]
    assert client.get(f"{BASE}/queue").status_code == 401


def test_skipping_gives_the_call_back_to_others_only(
    client: TestClient, auth: dict[str, str], seeded: list[str], services: Services
) -> None:
    _fill(client, auth)
    (first,) = client.get(f"{BASE}/queue", headers=auth).json()["items"]
    skipped = client.post(f"{BASE}/queue/skip", json={"call_id": first["call_id"]}, headers=auth)
    assert skipped.status_code == 200 and skipped.json()["released"] == 1
    (second,) = client.get(f"{BASE}/queue", headers=auth).json()["items"]
    assert second["call_id"] != first["call_id"]
    bob = {"Authorization": f"Bearer {services.meta.create_api_key(services.default_project.id, name='bob')}"}
    (bobs,) = client.get(f"{BASE}/queue", headers=bob).json()["items"]
    assert bobs["call_id"] == first["call_id"]
