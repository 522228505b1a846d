"""On a ClickHouse cluster, deletion and retention of calls are refused with a 501 that names the setting,
before anything is touched; raw payloads, kept in the metadata database, still expire.

No cluster can run here, so the store is the test's chDB store told that it serves a cluster: the refusal
is decided by the store before any statement, which is what this checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from convoscope.config import Settings
from convoscope.errors import Unsupported
from convoscope.server.app import create_app
from convoscope.server.errors import status_for
from convoscope.server.services import Services, open_services
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.store.jobqueue import NewSourceEvent
from convoscope.testing import call_payload


@pytest.fixture
def cluster_services(tmp_path: Path, clickhouse_store: ClickHouseStore, key: str) -> Iterator[Services]:
    store = ClickHouseStore(
        clickhouse_store._client,
        database=clickhouse_store.database,
        embedded=True,
        query_max_threads=2,
        system_logs={},
        cluster="main",
    )
    opened = open_services(Settings(data_dir=tmp_path / "data", init_api_key=key), store=store)
    yield opened
    opened.audit.close()
    opened.meta.close()


def _stored_call(client: TestClient, services: Services, auth: dict[str, str], started: datetime) -> str:
    payload = call_payload(external_id="kept", started_at=started.isoformat())
    response = client.post("/api/v1/calls", json=payload, headers=auth)
    assert response.status_code == 202, response.text
    while services.worker.drain_once():
        pass
    return str(response.json()["ids"][0])


def test_deleting_a_call_on_a_cluster_is_a_501_naming_the_setting_and_keeps_the_call(
    cluster_services: Services, auth: dict[str, str]
) -> None:
    client = TestClient(create_app(cluster_services, run_worker=False))
    call_id = _stored_call(client, cluster_services, auth, datetime.now(UTC) - timedelta(days=40))

    refused = client.delete(f"/api/v1/calls/{call_id}", headers=auth)
    assert refused.status_code == 501, refused.text
    message = refused.json()["error"]["message"]
    assert "CONVOSCOPE_CLICKHOUSE_CLUSTER" in message and "'main'" in message
    assert client.get(f"/api/v1/calls/{call_id}", headers=auth).status_code == 200

    before = client.post("/api/v1/deletions", json={"before": datetime.now(UTC).isoformat()}, headers=auth)
    assert before.status_code == 501, before.text
    assert client.get(f"/api/v1/calls/{call_id}", headers=auth).status_code == 200
    store = cluster_services.store
    assert isinstance(store, ClickHouseStore)
    with pytest.raises(Unsupported, match="recordings"):
        store.expire_recordings(cluster_services.default_project.id, datetime.now(UTC))


def test_retention_on_a_cluster_expires_raw_payloads_and_refuses_the_calls(
    cluster_services: Services, auth: dict[str, str]
) -> None:
    client = TestClient(create_app(cluster_services, run_worker=False))
    now = datetime.now(UTC)
    project_id = cluster_services.default_project.id
    call_id = _stored_call(client, cluster_services, auth, now - timedelta(days=40))
    cluster_services.meta.add_source_events(
        [
            NewSourceEvent(
                project_id, "vapi", "v-old", "end", b'{"x": 1}', received_at=now - timedelta(days=20)
            )
        ]
    )
    setting = {"calls_days": 30, "recordings_days": None, "raw_payloads_days": 10}
    assert client.put("/api/v1/settings/retention", json=setting, headers=auth).status_code == 200

    applied = client.post("/api/v1/settings/retention/apply", headers=auth)
    assert applied.status_code == 501, applied.text
    assert cluster_services.meta.source_events(project_id, "vapi", "v-old") == []
    assert client.get(f"/api/v1/calls/{call_id}", headers=auth).status_code == 200


def test_unsupported_is_its_own_status() -> None:
    assert status_for(Unsupported("x")) == 501
