"""No row holds back the rows behind it: bad rows are isolated, retried, dead-lettered and replayable.

A row the store refuses is made real with a ClickHouse ``CHECK`` constraint on ``calls``: the engine
itself refuses the insert, as it would any value it cannot hold, while the store stays healthy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from convoscope.config import Settings
from convoscope.server.app import create_app
from convoscope.server.services import Services, open_services
from convoscope.server.worker import StoresUnavailable
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.testing import call_payload

KEY = "cvs_test_key_isolation_project_0001"
AUTH = {"Authorization": f"Bearer {KEY}"}
RETRY_S = 1.0
"""The first retry delay: long enough that a loaded machine drains again well before it ends."""


@pytest.fixture
def services(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[Services]:
    settings = Settings(
        data_dir=tmp_path / "data",
        init_api_key=KEY,
        outbox_max_attempts=2,
        outbox_retry_s=RETRY_S,
        health_stall_s=0.3,
    )
    opened = open_services(settings, store=clickhouse_store)
    yield opened
    opened.meta.close()


@pytest.fixture
def client(services: Services) -> TestClient:
    return TestClient(create_app(services, run_worker=False))


def _refuse_poison(store: ClickHouseStore) -> None:
    check = "CHECK NOT startsWith(external_id, 'poison')"
    store.command(f"ALTER TABLE `{store.database}`.calls ADD CONSTRAINT no_poison {check}")


def _accept_poison(store: ClickHouseStore) -> None:
    store.command(f"ALTER TABLE `{store.database}`.calls DROP CONSTRAINT no_poison")


def _post(client: TestClient, *external_ids: str) -> int:
    calls = [call_payload(external_id=x) for x in external_ids]
    response = client.post("/api/v1/calls", json=calls, headers=AUTH)
    assert response.status_code == 202, response.text
    return int(response.json()["ingest_id"])


def _status(client: TestClient, ingest_id: int) -> dict[str, object]:
    response = client.get(f"/api/v1/ingest/{ingest_id}", headers=AUTH)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _stored(services: Services) -> set[str]:
    from convoscope.store.base import CallFilter

    page = services.store.list_calls(services.default_project.id, CallFilter(), limit=1000, cursor=None)
    return {item.external_id for item in page.items}


def test_a_refused_row_is_isolated_retried_then_dead_lettered_and_the_rest_stored(
    services: Services, client: TestClient, drain: Callable[[], int]
) -> None:
    _refuse_poison(services.store)
    before = _post(client, "ok-1", "ok-2")
    poisoned = _post(client, "poison-1")
    after = [_post(client, f"ok-{n}") for n in range(3, 9)]

    drain()
    assert _stored(services) == {f"ok-{n}" for n in range(1, 9)}
    assert all(_status(client, i)["status"] == "done" for i in (before, *after))
    first = _status(client, poisoned)
    assert first["status"] == "pending" and first["attempts"] == 1
    assert "no_poison" in str(first["error"]) and first["retry_at"] is not None
    # Waiting out its delay, the row is not claimed, so it holds nothing back.
    assert services.worker.drain_once() == 0

    time.sleep(RETRY_S + 0.1)
    drain()
    failed = _status(client, poisoned)
    assert failed["status"] == "failed" and failed["attempts"] == 2
    assert "no_poison" in str(failed["error"]) and "failed 2 times" in str(failed["error"])
    assert services.meta.pending_count() == 0
    assert services.worker.failed_rows == 1


def test_dead_letters_are_listed_and_a_retry_stores_them_once_the_cause_is_fixed(
    services: Services, client: TestClient, drain: Callable[[], int]
) -> None:
    _refuse_poison(services.store)
    poisoned = _post(client, "poison-a")
    drain()
    time.sleep(RETRY_S + 0.1)
    drain()
    listed = client.get("/api/v1/ingest", params={"status": "failed"}, headers=AUTH).json()
    assert [item["ingest_id"] for item in listed["items"]] == [poisoned]
    assert listed["items"][0]["kind"] == "calls"

    _accept_poison(services.store)
    retried = client.post(f"/api/v1/ingest/{poisoned}/retry", headers=AUTH)
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    assert retried.json()["attempts"] == 0
    drain()
    assert _status(client, poisoned)["status"] == "done"
    assert "poison-a" in _stored(services)
    assert client.get("/api/v1/ingest", params={"status": "failed"}, headers=AUTH).json()["items"] == []


def test_another_projects_dead_letters_are_not_visible_or_retryable(
    services: Services, client: TestClient
) -> None:
    other = services.meta.ensure_project("other")
    row = services.meta.enqueue(other.id, kind="calls", payload=b"{broken", content_type="application/json")
    services.worker.drain_once()
    assert services.meta.status(row) is not None and services.meta.status(row).status == "failed"  # type: ignore[union-attr]
    assert client.get("/api/v1/ingest", params={"status": "failed"}, headers=AUTH).json()["items"] == []
    assert client.post(f"/api/v1/ingest/{row}/retry", headers=AUTH).status_code == 404
    assert client.get(f"/api/v1/ingest/{row}", headers=AUTH).status_code == 404


def test_ingest_ids_past_64_bits_are_refused_not_passed_to_the_database(client: TestClient) -> None:
    huge = 2**64 + 5
    for response in (
        client.get("/api/v1/ingest", params={"status": "pending", "before": huge}, headers=AUTH),
        client.post(f"/api/v1/ingest/{huge}/retry", headers=AUTH),
        client.get(f"/api/v1/ingest/{huge}", headers=AUTH),
    ):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["type"] == "PayloadError"


def test_a_row_older_rules_accepted_is_dead_lettered_at_once_without_holding_back_others(
    services: Services, client: TestClient, drain: Callable[[], int]
) -> None:
    # A row committed before today's bounds existed: the worker validates it again and gives up at once.
    old = call_payload(
        external_id="old-rules", turns=[{"index": 2**32, "role": "agent", "start_s": 0, "end_s": 1}]
    )
    row = services.meta.enqueue(
        services.default_project.id, kind="calls", payload=orjson.dumps(old), content_type="application/json"
    )
    later = _post(client, "behind-old")
    drain()
    status = _status(client, row)
    assert status["status"] == "failed" and "turns[0].index" in str(status["error"])
    assert _status(client, later)["status"] == "done"
    assert _stored(services) == {"behind-old"}


def test_a_store_that_does_not_answer_charges_no_row(
    services: Services, client: TestClient, drain: Callable[[], int]
) -> None:
    first = _post(client, "while-down")
    services.store.command(f"DROP DATABASE `{services.store.database}`")
    with pytest.raises(StoresUnavailable, match="does not answer"):
        services.worker.drain_once()
    status = _status(client, first)
    assert status["status"] == "pending" and status["attempts"] == 0 and status["retry_at"] is None


@pytest.mark.parametrize(
    ("turns", "tool_calls", "field"),
    [
        ([{"index": 2**32, "role": "agent", "start_s": 0, "end_s": 1}], [], "turns[0].index"),
        ([], [{"id": "t", "name": "f", "turn_index": 4294967296}], "tool_calls[0].turn_index"),
    ],
)
def test_values_the_store_cannot_hold_are_refused_at_the_edge(
    services: Services,
    client: TestClient,
    turns: list[dict[str, object]],
    tool_calls: list[dict[str, object]],
    field: str,
) -> None:
    body = call_payload(external_id="too-big", turns=turns, tool_calls=tool_calls)
    response = client.post("/api/v1/calls", json=body, headers=AUTH)
    assert response.status_code == 422
    assert field in [detail["loc"] for detail in response.json()["error"]["details"]]
    assert services.meta.pending_count() == 0


def test_a_projects_backlog_does_not_starve_another_project(services: Services) -> None:
    busy = services.meta.ensure_project("busy")
    payload = orjson.dumps(call_payload())
    for _ in range(600):
        services.meta.enqueue(busy.id, kind="calls", payload=payload, content_type="application/json")
    quiet = services.meta.enqueue(
        services.default_project.id, kind="calls", payload=payload, content_type="application/json"
    )
    claimed = services.meta.claim(256)
    assert len(claimed) == 256
    assert quiet in [item.id for item in claimed]
    by_project = {item.project_id for item in claimed}
    assert by_project == {busy.id, services.default_project.id}


def test_health_says_when_ingest_stalls_and_when_dead_letters_rise(
    services: Services, client: TestClient, drain: Callable[[], int]
) -> None:
    assert client.get("/healthz").status_code == 200
    _post(client, "waits")
    time.sleep(0.35)  # the worker is not running: due rows, no progress for longer than health_stall_s
    stalled = client.get("/healthz")
    assert stalled.status_code == 503
    assert any("ingest stalled: 1 rows wait" in problem for problem in stalled.json()["problems"])
    drain()
    healthy = client.get("/healthz")
    assert healthy.status_code == 200, healthy.json()
    assert healthy.json()["checks"]["clickhouse"]["calls"] == 1

    services.meta.enqueue(
        services.default_project.id, kind="calls", payload=b"{broken", content_type="application/json"
    )
    drain()
    rising = client.get("/healthz")
    assert rising.status_code == 503
    assert any("dead letters rising: 1 rows" in problem for problem in rising.json()["problems"])


def test_health_counts_distinct_calls_not_versions_awaiting_merge(
    services: Services, client: TestClient, drain: Callable[[], int]
) -> None:
    for _ in range(3):
        _post(client, "same-call")
        drain()
    clickhouse = client.get("/healthz").json()["checks"]["clickhouse"]
    assert clickhouse["calls"] == 1
    assert clickhouse["table_rows"]["calls"] >= 1


def test_one_refused_call_costs_its_row_nothing_else(
    services: Services, client: TestClient, drain: Callable[[], int]
) -> None:
    _refuse_poison(services.store)
    row = _post(client, "mixed-1", "poison-in-a-batch", "mixed-2")
    drain()
    assert {"mixed-1", "mixed-2"} <= _stored(services)
    status = _status(client, row)
    assert status["status"] == "pending" and status["attempts"] == 1
    assert "call poison-in-a-batch refused by the store" in str(status["error"])
    assert "its other 2 calls were stored" in str(status["error"])


def test_a_refusal_that_names_no_row_is_found_by_halving(
    services: Services, client: TestClient, drain: Callable[[], int]
) -> None:
    # The driver itself refuses a value it cannot encode and names no row: the worker must search.
    from convoscope.model import Call, Role, Turn

    rows = [_post(client, f"half-{n}") for n in range(9)]
    bad_turn = Turn.model_construct(index=2**32, role=Role.AGENT, text="", start_s=0.0, end_s=1.0)
    valid = Call.model_validate(call_payload(external_id="half-4"))
    services.worker.hand_over(rows[4], [valid.model_copy(update={"turns": [bad_turn]})])
    drain()
    assert _stored(services) == {f"half-{n}" for n in range(9) if n != 4}
    status = _status(client, rows[4])
    assert status["status"] == "pending" and status["attempts"] == 1
    assert "call half-4 refused by the store" in str(status["error"]) and "out of range" in str(
        status["error"]
    )
    assert all(_status(client, row)["status"] == "done" for n, row in enumerate(rows) if n != 4)


def test_the_call_the_engine_names_is_set_aside_without_a_search(
    services: Services, client: TestClient, drain: Callable[[], int]
) -> None:
    _refuse_poison(services.store)
    rows = [_post(client, f"named-{n}") for n in range(5)]
    poisoned = _post(client, "poison-named")
    drain()
    assert "poison-named" not in _stored(services)
    assert _stored(services) == {f"named-{n}" for n in range(5)}
    assert "at row" in str(_status(client, poisoned)["error"])
    assert all(_status(client, row)["status"] == "done" for row in rows)


@pytest.mark.parametrize(
    ("path", "method", "field"),
    [
        ("/api/v1/ingest?status=done", "get", "query.status"),
        ("/api/v1/ingest?limit=0", "get", "query.limit"),
        ("/api/v1/ingest?before=abc", "get", "query.before"),
        ("/api/v1/ingest/abc/retry", "post", None),
    ],
)
def test_bad_dead_letter_requests_get_a_clear_4xx(
    client: TestClient, path: str, method: str, field: str | None
) -> None:
    response = getattr(client, method)(path, headers=AUTH)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["message"]
    if field is not None:
        assert response.status_code == 422
        assert field in [detail["loc"] for detail in error["details"]]
