"""Reading through the API: auth and project isolation, filters, pagination, series, health, OpenAPI."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
from fastapi.testclient import TestClient

from convoscope.server.services import Services
from convoscope.testing import call_payload

_BASE = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _ingest(
    client: TestClient, auth: dict[str, str], calls: list[dict[str, object]], drain: Callable[[], int]
) -> None:
    response = client.post("/api/v1/calls", json=calls, headers=auth)
    assert response.status_code == 202, response.text
    drain()


def test_every_api_route_needs_a_key(client: TestClient) -> None:
    for path in ("/api/v1/calls", "/api/v1/calls/x", "/api/v1/metrics/timeseries?field=duration_s"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/calls", headers={"Authorization": "Bearer cvs_nope"}).status_code == 401
    assert (
        client.post("/api/v1/calls", json=call_payload(), headers={"Authorization": "Basic abc"}).status_code
        == 401
    )


def test_key_of_project_a_cannot_read_project_b(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    other = services.meta.ensure_project("other")
    other_auth = {"Authorization": f"Bearer {services.meta.create_api_key(other.id)}"}
    _ingest(client, other_auth, [call_payload(external_id="secret")], drain)
    _ingest(client, auth, [call_payload(external_id="mine")], drain)
    secret_id = client.get("/api/v1/calls", headers=other_auth).json()["items"][0]["id"]
    assert [c["external_id"] for c in client.get("/api/v1/calls", headers=auth).json()["items"]] == ["mine"]
    assert client.get(f"/api/v1/calls/{secret_id}", headers=auth).status_code == 404
    assert client.get(f"/api/v1/calls/{secret_id}/recording", headers=auth).status_code == 404
    assert client.get(f"/api/v1/calls/{secret_id}", headers=other_auth).status_code == 200


def test_filters_and_cursor_pagination(
    client: TestClient, auth: dict[str, str], drain: Callable[[], int]
) -> None:
    calls = [
        call_payload(
            external_id=f"p{i}",
            agent_id="a" if i % 2 else "b",
            source="vapi" if i % 3 else "retell",
            started_at=(_BASE + timedelta(minutes=i)).isoformat(),
            end_reason="transfer" if i % 5 == 0 else "user_hangup",
            tags=["vip"] if i % 4 == 0 else [],
        )
        for i in range(23)
    ]
    _ingest(client, auth, calls, drain)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/calls", params=params, headers=auth).json()
        seen.extend(c["external_id"] for c in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"p{i}" for i in reversed(range(23))]

    def ids(**params: str) -> set[str]:
        items = client.get("/api/v1/calls", params={**params, "limit": 100}, headers=auth).json()["items"]
        return {c["external_id"] for c in items}

    assert ids(agent="a") == {f"p{i}" for i in range(23) if i % 2}
    assert ids(source="retell") == {f"p{i}" for i in range(23) if i % 3 == 0}
    assert ids(end_reason="transfer") == {f"p{i}" for i in range(23) if i % 5 == 0}
    assert ids(tag="vip") == {f"p{i}" for i in range(23) if i % 4 == 0}
    window = ids(
        since=(_BASE + timedelta(minutes=5)).isoformat(), until=(_BASE + timedelta(minutes=9)).isoformat()
    )
    assert window == {f"p{i}" for i in range(5, 9)} | ({"p9"} & window)
    assert ids(has_recording="true") == set()
    bad = client.get("/api/v1/calls", params={"end_reason": "exploded"}, headers=auth)
    assert bad.status_code == 422 and "end_reason" in bad.json()["error"]["message"]


def test_timeseries_matches_numbers_computed_here(
    client: TestClient, auth: dict[str, str], drain: Callable[[], int]
) -> None:
    rng = np.random.default_rng(3)
    durations: dict[tuple[int, str], list[float]] = {}
    calls = []
    for i in range(60):
        day = i % 3
        agent = "a" if i % 2 else "b"
        duration = float(np.round(rng.uniform(20, 300), 3))
        durations.setdefault((day, agent), []).append(duration)
        started = _BASE + timedelta(days=day, minutes=i)
        calls.append(
            call_payload(
                external_id=f"t{i}", agent_id=agent, started_at=started.isoformat(), duration_s=duration
            )
        )
    _ingest(client, auth, calls, drain)
    params = {
        "field": "duration_s",
        "aggregate": "p95",
        "bucket": "day",
        "group_by": "agent",
        "since": (_BASE - timedelta(days=1)).isoformat(),
        "until": (_BASE + timedelta(days=4)).isoformat(),
    }
    response = client.get("/api/v1/metrics/timeseries", params=params, headers=auth)
    assert response.status_code == 200, response.text
    points = response.json()["points"]
    assert len(points) == 6
    for point in points:
        day = (datetime.fromisoformat(point["bucket_start"]).date() - _BASE.date()).days
        expected = durations[(day, point["group"])]
        assert point["count"] == len(expected)
        assert abs(point["value"] - float(np.percentile(expected, 95))) < 1e-6
    ungrouped = {k: v for k, v in params.items() if k != "group_by"}
    counts = client.get(
        "/api/v1/metrics/timeseries", params={**ungrouped, "aggregate": "count"}, headers=auth
    ).json()["points"]
    assert [p["count"] for p in counts] == [20, 20, 20]
    unknown = client.get("/api/v1/metrics/timeseries", params={**params, "field": "nope"}, headers=auth)
    assert unknown.status_code == 422 and "duration_s" in unknown.json()["error"]["message"]


def test_healthz_runs_real_queries(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["clickhouse"]["ok"] and checks["metadata"]["ok"] and checks["blobs"]["ok"]


def test_healthz_reports_a_broken_store(client: TestClient, services: Services) -> None:
    services.store.close()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["clickhouse"]["ok"] is False


def test_openapi_documents_the_routes_and_the_call_schema(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/v1/calls",
        "/api/v1/calls/{call_id}",
        "/api/v1/calls/{call_id}/recording",
        "/api/v1/metrics/timeseries",
        "/healthz",
    ):
        assert path in spec["paths"]
    assert "turns" in spec["components"]["schemas"]["Call"]["properties"]


def test_the_default_series_window_ends_at_the_end_of_this_hour_and_holds_a_call_of_a_minute_ago(
    client: TestClient, auth: dict[str, str], drain: Callable[[], int]
) -> None:
    recent = datetime.now(UTC) - timedelta(minutes=1)
    _ingest(client, auth, [call_payload(external_id="recent", started_at=recent.isoformat())], drain)
    answer = client.get(
        "/api/v1/metrics/timeseries", params={"field": "calls", "bucket": "hour"}, headers=auth
    )
    assert answer.status_code == 200
    body = answer.json()
    until = datetime.fromisoformat(body["query"]["until"])
    since = datetime.fromisoformat(body["query"]["since"])
    assert (until.minute, until.second, until.microsecond) == (0, 0, 0)
    assert timedelta(0) < until - datetime.now(UTC) <= timedelta(hours=1) and until - since == timedelta(
        days=7
    )
    assert [(p["count"], p["value"]) for p in body["points"]] == [(1, 1.0)]
