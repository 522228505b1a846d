"""Deleting a call removes every copy: rows in every chDB table, rollup figures, blobs, metadata rows,
raw payloads and outbox rows; nothing of it is left in any table or file, also after a restart."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient

from convoscope.ingest.otlp.logs import LogRecord
from convoscope.model import MetricResult, MetricSource, Span
from convoscope.server.services import Services
from convoscope.store.audit_meta import AuditQuery
from convoscope.store.clickhouse import ClickHouseStore, open_clickhouse_store
from convoscope.store.metadata import JobSpec
from convoscope.store.users_meta import Role
from convoscope.testing import call_payload, stereo_wav_bytes

from ._scan import chdb_hits, file_hits, sqlite_hits


def _ingest(
    client: TestClient, auth: dict[str, str], external_id: str, started_at: str, marker: str, wav: bytes
) -> str:
    turns = [
        {"role": "agent", "text": f"Hello, your reference is {marker}.", "start_s": 0.2, "end_s": 1.5},
        {"role": "user", "text": "Thanks.", "start_s": 1.8, "end_s": 2.2},
    ]
    payload = call_payload(external_id=external_id, started_at=started_at, turns=turns, duration_s=2.5)
    response = client.post(
        "/api/v1/calls",
        data={"call": orjson.dumps(payload).decode(), "channel_map": "user,agent"},
        files={"recording": ("call.wav", wav, "audio/wav")},
        headers=auth,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["ids"][0])


def _wav(seed: int) -> bytes:
    return stereo_wav_bytes(
        left=[(0.2, 1.0)], right=[(1.3, 2.0)], duration_s=2.5, sample_rate=8000, noise_db=-50, seed=seed
    )


def _extras(services: Services, call_id: str, external_id: str, marker: str) -> None:
    """Scores, spans, a span log, a job and a raw vendor payload of the call."""
    project_id = services.default_project.id
    services.store.insert_scores(
        project_id,
        [
            MetricResult(
                call_id=call_id,
                metric="helpfulness",
                value=0.8,
                passed=True,
                source=MetricSource.JUDGE,
                evidence={"quote": marker},
            )
        ],
    )
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    services.store.insert_spans(
        project_id,
        [
            Span(
                trace_id=trace_id,
                span_id=span_id,
                name="llm",
                start=datetime(2025, 1, 6, 15, 0, 1, tzinfo=UTC),
                attributes={"prompt": marker},
                call_id=call_id,
                conversation_id=external_id,
            )
        ],
    )
    store = services.store
    assert isinstance(store, ClickHouseStore)
    store.insert_span_logs(
        project_id,
        [
            LogRecord(
                trace_id=trace_id,
                span_id=span_id,
                record_id=uuid.uuid4().hex,
                time=datetime(2025, 1, 6, 15, 0, 2, tzinfo=UTC),
                event_name="gen_ai.choice",
                severity="INFO",
                body={"content": marker},
                attributes={},
                resource_attributes={},
                scope_name="",
            )
        ],
    )
    services.meta.enqueue_jobs(project_id, [JobSpec(kind="evals.run", call_id=call_id, params={"m": marker})])
    services.meta.add_source_event(
        project_id,
        "generic",
        external_id,
        "call_ended",
        orjson.dumps({"call_id": external_id, "note": marker}),
    )


def _call_hours(store: ClickHouseStore, project_id: str) -> int:
    return int(
        store.query(
            f"SELECT sum(calls) FROM `{store.database}`.call_hours FINAL WHERE project_id = {{p:String}}",
            {"p": project_id},
        )[0][0]
    )


def _everywhere(
    store: ClickHouseStore, services: Services, chdb_dir: Path, needles: list[str], ids: set[str]
) -> list[str]:
    data_dir = services.settings.data_dir
    meta_db = data_dir / "metadata.db"
    hits = chdb_hits(store, needles) + sqlite_hits(meta_db, needles)
    # The metadata file holds the audit log, whose record of the deletion names the call: the call id is
    # looked for in its tables (above, all but the audit log), the other needles in its bytes too.
    sqlite_files = [meta_db, data_dir / "metadata.db-wal", data_dir / "metadata.db-shm"]
    call_ids = [needle for needle in needles if needle in ids]
    hits += file_hits([data_dir, chdb_dir], [n for n in needles if n not in call_ids])
    hits += file_hits([data_dir, chdb_dir], call_ids, skip=sqlite_files)
    return hits


def test_deleted_call_leaves_nothing_anywhere_and_others_stay(
    client: TestClient,
    auth: dict[str, str],
    services: Services,
    drain: Callable[[], int],
    clickhouse_store: ClickHouseStore,
    chdb_dir: Path,
) -> None:
    project_id = services.default_project.id
    tag = uuid.uuid4().hex[:12]
    markers = {name: f"mark{name}{uuid.uuid4().hex}" for name in "abc"}
    externals = {name: f"ext-{name}-{tag}" for name in "abc"}
    shared = _wav(2)
    ids = {
        "a": _ingest(client, auth, externals["a"], "2025-01-06T15:00:00+00:00", markers["a"], _wav(1)),
        "b": _ingest(client, auth, externals["b"], "2025-01-06T16:00:00+00:00", markers["b"], shared),
        "c": _ingest(client, auth, externals["c"], "2025-01-06T15:30:00+00:00", markers["c"], shared),
    }
    drain()
    for name in "ab":
        _extras(services, ids[name], externals[name], markers[name])
    stored = {name: client.get(f"/api/v1/calls/{ids[name]}", headers=auth).json() for name in "abc"}
    sha_a = stored["a"]["call"]["recordings"][0]["sha256"]
    sha_shared = stored["b"]["call"]["recordings"][0]["sha256"]
    assert sha_a != sha_shared and services.blobs.exists(sha_a)
    store = clickhouse_store
    store.refresh_rollups(project_id, datetime(2025, 1, 6, tzinfo=UTC), datetime(2025, 1, 7, tzinfo=UTC))
    assert _call_hours(store, project_id) == 3
    needles_a = [ids["a"], markers["a"], externals["a"]]
    assert _everywhere(store, services, chdb_dir, needles_a, set(ids.values())), (
        "the scan must see the call before it is deleted"
    )

    answer = client.delete(f"/api/v1/calls/{ids['a']}", headers=auth)
    assert answer.status_code == 204, answer.text

    assert client.get(f"/api/v1/calls/{ids['a']}", headers=auth).status_code == 404
    assert _everywhere(store, services, chdb_dir, needles_a, set(ids.values())) == []
    assert not services.blobs.exists(sha_a)
    assert services.blobs.exists(sha_shared)
    for name in "bc":
        kept = client.get(f"/api/v1/calls/{ids[name]}", headers=auth).json()
        assert markers[name] in kept["call"]["turns"][0]["text"]
        assert kept["call"]["recordings"][0]["sha256"] == sha_shared
    assert [s["metric"] for s in client.get(f"/api/v1/calls/{ids['b']}", headers=auth).json()["scores"]] == [
        "helpfulness"
    ]
    assert len(store.list_spans(project_id, call_id=ids["b"])) == 1
    assert services.meta.source_events(project_id, "generic", externals["b"])
    # The overview's hourly figures count the two calls left, before and after a refresh.
    assert _call_hours(store, project_id) == 2
    store.refresh_rollups(project_id, datetime(2025, 1, 6, tzinfo=UTC), datetime(2025, 1, 7, tzinfo=UTC))
    assert _call_hours(store, project_id) == 2
    services.audit.flush()
    entries = [
        e for e in services.meta.list_audit(AuditQuery(project_id)) if e.detail.get("call_id") == ids["a"]
    ]
    assert [(e.method, e.status, e.detail["deleted"]) for e in entries] == [("DELETE", 204, 1)]

    # A recording another call still names stays until that call goes too.
    assert client.delete(f"/api/v1/calls/{ids['b']}", headers=auth).status_code == 204
    assert services.blobs.exists(sha_shared)
    assert client.delete(f"/api/v1/calls/{ids['c']}", headers=auth).status_code == 204
    assert not services.blobs.exists(sha_shared)
    assert _call_hours(store, project_id) == 0

    # A restart (the store closed and opened again) brings nothing back.
    database = store.database
    store.close()
    services.meta.close()
    reopened = open_clickhouse_store(path=chdb_dir, database=database)
    try:
        every = [needle for name in "abc" for needle in (ids[name], markers[name], externals[name])]
        assert _everywhere(reopened, services, chdb_dir, every, set(ids.values())) == []
        assert reopened.count_calls(project_id) == 0
    finally:
        reopened.close()


def test_unknown_and_foreign_calls_are_404(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    other = services.meta.ensure_project("other")
    other_key, _ = services.meta.issue_api_key(other.id, name="other", role=Role.ADMIN)
    other_auth = {"Authorization": f"Bearer {other_key}"}
    posted = client.post("/api/v1/calls", json=call_payload(external_id="mine"), headers=auth)
    drain()
    call_id = posted.json()["ids"][0]
    foreign = client.delete(f"/api/v1/calls/{call_id}", headers=other_auth)
    assert foreign.status_code == 404
    unknown = client.delete("/api/v1/calls/no-such-call", headers=auth)
    assert unknown.status_code == 404 and "no-such-call" in unknown.json()["error"]["message"]
    assert client.get(f"/api/v1/calls/{call_id}", headers=auth).status_code == 200


def _post(client: TestClient, auth: dict[str, str], body: Any) -> Any:
    return client.post("/api/v1/deletions", json=body, headers=auth)


def test_delete_before_takes_exactly_the_earlier_calls(
    client: TestClient, auth: dict[str, str], drain: Callable[[], int]
) -> None:
    starts = {
        "old-1": "2025-01-01T10:00:00+00:00",
        "old-2": "2025-01-31T23:59:59+00:00",
        "edge": "2025-02-01T00:00:00+00:00",
        "new": "2025-03-01T08:00:00+00:00",
    }
    calls = [call_payload(external_id=name, started_at=at) for name, at in starts.items()]
    client.post("/api/v1/calls", json={"calls": calls}, headers=auth)
    drain()
    answer = _post(client, auth, {"before": "2025-02-01"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["deleted"] == 2
    left = sorted(c["external_id"] for c in client.get("/api/v1/calls", headers=auth).json()["items"])
    assert left == ["edge", "new"]
    assert _post(client, auth, {"before": "2025-02-01"}).json()["deleted"] == 0
    bad = _post(client, auth, {"before": "last tuesday"})
    assert bad.status_code == 422 and "body.before" in bad.json()["error"]["message"]
    assert _post(client, auth, {"before": "2025-02-01", "after": "x"}).status_code == 422
