"""Schedules over the API: written, read, listed, deleted and run by hand; bad ones refused naming the
field, and ``/{id}:run`` answering 405 to other methods (the id convertor stops at ``:``)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from convoscope.server.services import Services

BASE = "/api/v1/schedules"


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "nightly re-evaluation",
        "cron": "30 2 * * 1-5",
        "timezone": "Europe/Berlin",
        "action": {"kind": "reevaluate", "since_days": 2, "metrics": []},
    }
    return {**body, **changes}


def test_a_schedule_is_put_read_listed_and_deleted(client: TestClient, auth: dict[str, str]) -> None:
    created = client.put(f"{BASE}/nightly", json=_body(), headers=auth)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{BASE}/nightly"
    item = created.json()
    assert item["id"] == "nightly" and item["schedule"]["misfire"] == "skip"
    assert item["schedule"]["action"] == {
        "kind": "reevaluate",
        "since_days": 2.0,
        "agent_id": None,
        "metrics": [],
    }
    assert item["last_run_at"] is None and item["last_result"] is None
    # 02:30 in Berlin on a weekday is 00:30 or 01:30 UTC.
    assert item["next_run_at"][11:16] in ("00:30", "01:30")

    replaced = client.put(f"{BASE}/nightly", json=_body(enabled=False), headers=auth)
    assert replaced.status_code == 200 and replaced.json()["next_run_at"] is None
    assert client.get(f"{BASE}/nightly", headers=auth).json()["schedule"]["enabled"] is False
    assert [s["id"] for s in client.get(BASE, headers=auth).json()["items"]] == ["nightly"]

    assert client.delete(f"{BASE}/nightly", headers=auth).status_code == 204
    assert client.get(f"{BASE}/nightly", headers=auth).status_code == 404
    assert client.delete(f"{BASE}/nightly", headers=auth).status_code == 404


def _refused(client: TestClient, auth: dict[str, str], body: dict[str, Any]) -> tuple[list[str], str]:
    response = client.put(f"{BASE}/bad", json=body, headers=auth)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    return [detail["loc"] for detail in error["details"]], error["message"]


def test_bad_schedules_are_refused_naming_the_field(client: TestClient, auth: dict[str, str]) -> None:
    fields, message = _refused(client, auth, _body(cron="61 * * * *"))
    assert fields == ["body.cron"] and "61" in message
    assert _refused(client, auth, _body(cron="* * *"))[0] == ["body.cron"]
    assert "5 fields" in _refused(client, auth, _body(cron="* * *"))[1]
    assert _refused(client, auth, _body(cron="0 0 31 2 *"))[0] == ["body.cron"]  # never fires
    assert _refused(client, auth, _body(cron="0 0 1 * 1"))[0] == ["body.cron"]  # day and weekday both
    assert _refused(client, auth, _body(timezone="Mars/Olympus"))[0] == ["body.timezone"]
    assert _refused(client, auth, _body(second="99"))[0] == ["body.second"]
    assert _refused(client, auth, _body(misfire="all"))[0] == ["body.misfire"]
    bad_suite = _body(action={"kind": "simulate", "suite": "no spaces", "agent": "a"})
    assert _refused(client, auth, bad_suite)[0] == ["body.action.simulate.suite"]
    assert _refused(client, auth, _body(enabled=0))[0] == ["body.enabled"]  # strict: no 0 for false
    assert _refused(client, auth, _body(extra=1))[0] == ["body.extra"]
    assert client.get(f"{BASE}/bad", headers=auth).status_code == 404


def test_the_run_route_takes_post_only(client: TestClient, auth: dict[str, str]) -> None:
    assert client.put(f"{BASE}/nightly", json=_body(), headers=auth).status_code == 201
    wrong = client.get(f"{BASE}/nightly:run", headers=auth)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert client.post(f"{BASE}/ghost:run", headers=auth).status_code == 404


def test_run_now_records_the_outcome_even_when_the_action_fails(
    client: TestClient, auth: dict[str, str], services: Services
) -> None:
    assert client.put(f"{BASE}/nightly", json=_body(enabled=False), headers=auth).status_code == 201
    ran = client.post(f"{BASE}/nightly:run", headers=auth)
    assert ran.status_code == 200, ran.text
    assert ran.json()["result"]["trigger"] == "manual" and ran.json()["result"]["queued"] == 0

    broken = _body(action={"kind": "simulate", "suite": "missing", "agent": "clinic"})
    assert client.put(f"{BASE}/sim", json=broken, headers=auth).status_code == 201
    failed = client.post(f"{BASE}/sim:run", headers=auth).json()["result"]
    assert failed["error"] == "NotFound: suite 'missing' not found in this project"
    kept = client.get(f"{BASE}/sim", headers=auth).json()
    assert kept["last_result"] == failed and kept["last_run_at"] is not None
    assert client.get(f"{BASE}/nightly", headers=auth).json()["last_result"]["queued"] == 0
