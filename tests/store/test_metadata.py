"""The metadata store on SQLite and PostgreSQL: projects, API keys, the outbox, migrations, durability.

Every test that takes ``url`` (or ``meta``) runs once on each backend; the file-level ones stay SQLite's."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from convoscope.errors import InputError, NotFound, StoreError
from convoscope.store.audit_meta import AuditQuery, NewAuditEntry
from convoscope.store.meta import Base
from convoscope.store.metadata import (
    HEAD_REVISION,
    MetadataStore,
    ProjectInfo,
    hash_api_key,
    upgrade_metadata,
)
from pg import PostgresCluster


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "metadata.db"


@pytest.fixture
def url(metadata_url: str) -> str:
    """An empty metadata database, SQLite or PostgreSQL."""
    return metadata_url


@pytest.fixture
def meta(url: str) -> Iterator[MetadataStore]:
    store = MetadataStore(url)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def project(meta: MetadataStore) -> ProjectInfo:
    return meta.ensure_project("default")


def _database_bytes(db_path: Path) -> bytes:
    """The database file and its WAL, as they sit on disk."""
    files = [db_path, db_path.with_name(db_path.name + "-wal")]
    return b"".join(path.read_bytes() for path in files if path.exists())


# Projects ---------------------------------------------------------------------------------------------


def test_ensure_project_creates_once(meta: MetadataStore) -> None:
    first = meta.ensure_project("acme")
    assert meta.ensure_project("acme") == first
    assert meta.get_project("acme") == first
    assert meta.get_project("nope") is None
    other = meta.ensure_project("beta")
    assert other.id != first.id
    assert meta.list_projects() == [first, other]


def test_project_name_must_not_be_blank(meta: MetadataStore) -> None:
    with pytest.raises(InputError):
        meta.ensure_project("  ")


def test_ensure_project_from_many_threads_yields_one_project(meta: MetadataStore) -> None:
    results: list[ProjectInfo] = []

    def work() -> None:
        results.append(meta.ensure_project("raced"))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.id for r in results}) == 1
    assert [p.name for p in meta.list_projects()] == ["raced"]


# API keys ---------------------------------------------------------------------------------------------


def test_key_lifecycle(meta: MetadataStore, project: ProjectInfo) -> None:
    key = meta.create_api_key(project.id, name="ci")
    assert key.startswith("cvs_")
    assert len(key) >= 4 + 43  # 32 random bytes, url-safe base64
    assert meta.resolve_api_key(key) == project
    assert meta.resolve_api_key(key + "x") is None
    assert meta.resolve_api_key(key[:-1]) is None
    assert meta.resolve_api_key("") is None
    assert meta.resolve_api_key("cvs_" + "A" * 43) is None

    [info] = meta.list_api_keys(project.id)
    assert info.name == "ci"
    assert info.project_id == project.id
    assert key.startswith(info.prefix) and len(info.prefix) < len(key) // 2
    assert info.created_at.tzinfo is UTC
    assert info.last_used_at is not None and info.last_used_at.tzinfo is UTC
    assert info.revoked_at is None
    assert not any(key in str(value) or hash_api_key(key) in str(value) for value in vars(info).values())

    meta.revoke_api_key(info.id)
    assert meta.resolve_api_key(key) is None
    [revoked] = meta.list_api_keys(project.id)
    assert revoked.revoked_at is not None and revoked.revoked_at >= revoked.created_at
    meta.revoke_api_key(info.id)
    assert meta.list_api_keys(project.id)[0].revoked_at == revoked.revoked_at


def test_revocation_takes_effect_in_another_open_store(url: str, meta: MetadataStore) -> None:
    project = meta.ensure_project("default")
    key = meta.create_api_key(project.id)
    other = MetadataStore(url)
    try:
        assert other.resolve_api_key(key) == project
        [info] = other.list_api_keys(project.id)
        other.revoke_api_key(info.id)
    finally:
        other.close()
    assert meta.resolve_api_key(key) is None


def test_keys_are_scoped_to_their_project(meta: MetadataStore) -> None:
    a = meta.ensure_project("a")
    b = meta.ensure_project("b")
    key_a = meta.create_api_key(a.id)
    key_b = meta.create_api_key(b.id)
    assert key_a != key_b
    assert meta.resolve_api_key(key_a) == a
    assert meta.resolve_api_key(key_b) == b
    assert [k.project_id for k in meta.list_api_keys(a.id)] == [a.id]


def test_unknown_project_or_key_is_not_found(meta: MetadataStore) -> None:
    with pytest.raises(NotFound):
        meta.create_api_key("no-such-project")
    with pytest.raises(NotFound):
        meta.revoke_api_key("no-such-key")


def test_only_hashes_reach_the_database_file(db_path: Path) -> None:
    meta = MetadataStore(_url(db_path))
    project = meta.ensure_project("default")
    generated = meta.create_api_key(project.id)
    seeded = "operator-chosen-secret-key-0001"
    meta.seed_api_key(project.id, seeded, name="init")
    meta.close()
    on_disk = _database_bytes(db_path)
    assert hash_api_key(generated).encode() in on_disk
    assert hash_api_key(seeded).encode() in on_disk
    assert generated.encode() not in on_disk
    assert generated[len("cvs_") + 8 :].encode() not in on_disk
    assert seeded.encode() not in on_disk


def test_seed_is_idempotent(url: str, meta: MetadataStore, project: ProjectInfo) -> None:
    seeded = "cvs_test_key_project_default_0001"
    assert meta.seed_api_key(project.id, seeded, name="init") is True
    assert meta.seed_api_key(project.id, seeded, name="init") is False
    meta.close()
    reopened = MetadataStore(url)
    try:
        assert reopened.seed_api_key(project.id, seeded, name="init") is False
        assert reopened.resolve_api_key(seeded) == project
        assert len(reopened.list_api_keys(project.id)) == 1
    finally:
        reopened.close()


def test_seed_does_not_move_or_revive_a_key(meta: MetadataStore, project: ProjectInfo) -> None:
    seeded = "cvs_test_key_project_default_0002"
    meta.seed_api_key(project.id, seeded, name="init")
    other = meta.ensure_project("other")
    assert meta.seed_api_key(other.id, seeded, name="init") is False
    assert meta.resolve_api_key(seeded) == project
    [info] = meta.list_api_keys(project.id)
    meta.revoke_api_key(info.id)
    assert meta.seed_api_key(project.id, seeded, name="init") is False
    assert meta.resolve_api_key(seeded) is None


@pytest.mark.parametrize("weak", ["", "short", "x" * 19, "has a space in it 12345"])
def test_seed_rejects_weak_keys(meta: MetadataStore, project: ProjectInfo, weak: str) -> None:
    with pytest.raises(InputError):
        meta.seed_api_key(project.id, weak, name="init")
    assert meta.list_api_keys(project.id) == []


# Outbox -----------------------------------------------------------------------------------------------


def _enqueue(meta: MetadataStore, project: ProjectInfo, body: bytes, refs: tuple[str, ...] = ()) -> int:
    return meta.enqueue(
        project.id, kind="calls", payload=body, content_type="application/json", blob_refs=refs
    )


def test_enqueue_and_claim_oldest_first(meta: MetadataStore, project: ProjectInfo) -> None:
    before = datetime.now(UTC)
    ids = [_enqueue(meta, project, f'{{"n": {n}}}'.encode(), (f"{n:064x}",)) for n in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert meta.pending_count() == 5

    items = meta.claim(3)
    assert [item.id for item in items] == ids[:3]
    first = items[0]
    assert first.payload == b'{"n": 0}'
    assert first.project_id == project.id
    assert first.kind == "calls" and first.content_type == "application/json"
    assert first.blob_refs == (f"{0:064x}",)
    assert first.attempts == 0
    assert first.received_at.tzinfo is UTC and before <= first.received_at <= datetime.now(UTC)
    assert [i.received_at for i in items] == sorted(i.received_at for i in items)
    # Claiming changes nothing: a consumer that dies before acknowledging sees the rows again.
    assert [item.id for item in meta.claim(3)] == ids[:3]
    assert meta.claim(0) == []


def test_done_failed_and_release(meta: MetadataStore, project: ProjectInfo) -> None:
    a, b, c, d = (_enqueue(meta, project, f"body {n}".encode()) for n in range(4))
    meta.mark_done([a])
    meta.mark_failed(b, "schema changed: turns[0].role")
    meta.release(c, "clickhouse unavailable")
    meta.release(c, "clickhouse unavailable again")

    assert [item.id for item in meta.claim(10)] == [c, d]
    assert meta.claim(10)[0].attempts == 2
    assert meta.pending_count() == 2

    done = meta.status(a)
    assert done is not None and done.status == "done" and done.error is None
    assert done.processed_at is not None and done.processed_at >= done.received_at
    failed = meta.status(b)
    assert failed is not None
    assert (failed.status, failed.error, failed.project_id) == (
        "failed",
        "schema changed: turns[0].role",
        project.id,
    )
    retried = meta.status(c)
    assert retried is not None
    assert (retried.status, retried.attempts, retried.error) == ("pending", 2, "clickhouse unavailable again")
    assert meta.status(999_999) is None

    meta.mark_done([c, d, c])
    assert meta.pending_count() == 0
    assert meta.claim(10) == []
    # A failed row stays failed: releasing it does not bring it back.
    meta.release(b, "late retry")
    assert meta.claim(10) == []
    with pytest.raises(NotFound):
        meta.mark_failed(999_999, "x")
    with pytest.raises(NotFound):
        meta.release(999_999, "x")
    meta.mark_done([])


def test_payload_is_stored_compressed(meta: MetadataStore, project: ProjectInfo) -> None:
    body = b'{"turns": [' + b'{"role": "agent", "text": "hello there"},' * 2000 + b"{}]}"
    row_id = _enqueue(meta, project, body)
    with meta.engine.connect() as connection:
        stored, size = connection.execute(
            text("SELECT payload, payload_bytes FROM outbox WHERE id = :id"), {"id": row_id}
        ).one()
    assert size == len(body)
    assert len(stored) < len(body) // 10
    assert zlib.decompress(stored) == body
    assert meta.claim(1)[0].payload == body


def test_pending_items_survive_reopen(url: str, meta: MetadataStore, project: ProjectInfo) -> None:
    ids = [_enqueue(meta, project, f"body {n}".encode()) for n in range(4)]
    meta.mark_done(ids[:1])
    meta.mark_failed(ids[1], "bad")
    meta.close()
    reopened = MetadataStore(url)
    try:
        assert [item.id for item in reopened.claim(10)] == ids[2:]
        assert [item.payload for item in reopened.claim(10)] == [b"body 2", b"body 3"]
        assert reopened.pending_count() == 2
        status = reopened.status(ids[1])
        assert status is not None and status.status == "failed"
    finally:
        reopened.close()


def test_ids_never_repeat_after_purge_and_restart(
    url: str, meta: MetadataStore, project: ProjectInfo
) -> None:
    ids = [_enqueue(meta, project, b"x") for _ in range(3)]
    meta.mark_done(ids)
    assert meta.purge_done(datetime.now(UTC) + timedelta(seconds=1)) == 3
    meta.close()
    reopened = MetadataStore(url)
    try:
        assert _enqueue(reopened, project, b"y") > max(ids)
    finally:
        reopened.close()


def test_purge_done_removes_only_old_done_rows(meta: MetadataStore, project: ProjectInfo) -> None:
    old_done, failed, pending = (_enqueue(meta, project, b"x") for _ in range(3))
    meta.mark_done([old_done])
    meta.mark_failed(failed, "kept for inspection")
    cutoff = datetime.now(UTC) + timedelta(milliseconds=1)
    assert meta.purge_done(cutoff - timedelta(days=1)) == 0
    assert meta.purge_done(cutoff) == 1
    assert meta.status(old_done) is None
    assert meta.status(failed) is not None
    assert meta.status(pending) is not None
    recent = _enqueue(meta, project, b"y")
    meta.mark_done([recent])
    assert meta.purge_done(cutoff) == 0
    # An aware cutoff in another zone means the same instant.
    later = (datetime.now(UTC) + timedelta(seconds=1)).astimezone(datetime.now().astimezone().tzinfo)
    assert meta.purge_done(later) == 1
    with pytest.raises(InputError):
        meta.purge_done(datetime(2030, 1, 1))  # noqa: DTZ001 - the naive value is the point


def test_concurrent_enqueue_from_threads(meta: MetadataStore, project: ProjectInfo) -> None:
    ids: list[int] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        for n in range(25):
            row_id = _enqueue(meta, project, f"{worker}-{n}".encode())
            with lock:
                ids.append(row_id)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 150
    claimed = meta.claim(1000)
    assert sorted(ids) == [item.id for item in claimed]
    assert {item.payload for item in claimed} == {f"{w}-{n}".encode() for w in range(6) for n in range(25)}


# Health, engine settings, migrations ------------------------------------------------------------------


def test_ping_counts_rows(url: str, meta: MetadataStore, project: ProjectInfo) -> None:
    meta.create_api_key(project.id)
    failed = _enqueue(meta, project, b"x")
    meta.mark_failed(failed, "bad")
    _enqueue(meta, project, b"y")
    assert meta.ping() == {
        "backend": make_url(url).get_backend_name(),
        "projects": 1,
        "api_keys": 1,
        "outbox_pending": 1,
        "outbox_failed": 1,
        "jobs_pending": 0,
        "jobs_failed": 0,
    }


def test_ping_raises_store_error_on_a_broken_database(meta: MetadataStore) -> None:
    with meta.engine.begin() as connection:
        connection.execute(text("DROP TABLE outbox"))
    with pytest.raises(StoreError):
        meta.ping()


def test_opening_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a sqlite database at all" * 100)
    with pytest.raises(StoreError):
        MetadataStore(_url(path))


def test_sqlite_runs_durable_wal(db_path: Path) -> None:
    with MetadataStore(_url(db_path)) as meta, meta.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert int(connection.execute(text("PRAGMA busy_timeout")).scalar() or 0) >= 1000
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_in_memory_database_works_across_threads() -> None:
    store = MetadataStore("sqlite://")
    try:
        project = store.ensure_project("memory")
        seen: list[ProjectInfo | None] = []
        thread = threading.Thread(target=lambda: seen.append(store.get_project("memory")))
        thread.start()
        thread.join()
        assert seen == [project]
    finally:
        store.close()


def test_migrated_schema_matches_the_models(url: str) -> None:
    upgrade_metadata(url)
    upgrade_metadata(url)  # a second upgrade is a no-op
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            assert set(inspect(connection).get_table_names()) == {"alembic_version", *Base.metadata.tables}
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            assert version == HEAD_REVISION
    finally:
        engine.dispose()


def test_migration_downgrades_and_upgrades_again(url: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(resources.files("convoscope.store") / "migrations"))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version", "sqlite_sequence"}
    finally:
        engine.dispose()
    command.upgrade(config, "head")
    store = MetadataStore(url)
    try:
        assert store.ping()["projects"] == 0
    finally:
        store.close()


# Durability -------------------------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys
    from convoscope.store.metadata import MetadataStore

    store = MetadataStore(sys.argv[1])
    project = store.ensure_project("durable")
    print("ready", project.id, flush=True)
    n = 0
    while True:
        row_id = store.enqueue(
            project.id, kind="calls", payload=b"payload-%d" % n, content_type="application/json"
        )
        print(row_id, n, flush=True)
        n += 1
    """
)


def test_every_acknowledged_enqueue_survives_sigkill(url: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acknowledged: dict[int, int] = {}
    try:
        assert child.stdout is not None
        header = child.stdout.readline().split()
        assert header[:1] == ["ready"], child.stderr.read() if child.stderr else ""
        while len(acknowledged) < 200:
            line = child.stdout.readline()
            assert line, child.stderr.read() if child.stderr else "child exited"
            row_id, n = line.split()
            acknowledged[int(row_id)] = int(n)
        os.kill(child.pid, signal.SIGKILL)
        # Whatever the child printed before it died was also acknowledged.
        for line in child.stdout:
            parts = line.split()
            if len(parts) == 2:
                acknowledged[int(parts[0])] = int(parts[1])
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    assert child.returncode == -signal.SIGKILL

    store = MetadataStore(url)
    try:
        items = store.claim(1_000_000)
        ids = [item.id for item in items]
        assert len(ids) == len(set(ids))
        by_id = {item.id: item.payload for item in items}
        for acked_id, sequence in acknowledged.items():
            assert by_id.get(acked_id) == b"payload-%d" % sequence, f"acknowledged row {acked_id} lost"
        assert store.pending_count() == len(ids)
    finally:
        store.close()


def test_a_store_at_the_head_revision_opens_without_alembic(
    tmp_path: Path,
) -> None:
    from alembic.script import ScriptDirectory

    from convoscope.store.metadata import HEAD_REVISION, _alembic_config

    url = f"sqlite:///{tmp_path / 'meta.db'}"
    assert ScriptDirectory.from_config(_alembic_config(url)).get_current_head() == HEAD_REVISION
    MetadataStore(url).close()  # migrates a new database to the head
    probe = (
        "import sys; from convoscope.store.metadata import MetadataStore; "
        f"MetadataStore({url!r}).close(); print('alembic' in sys.modules)"
    )
    reopened = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert reopened.stdout.strip() == "False"


# PostgreSQL -------------------------------------------------------------------------------------------


def test_the_audit_log_refuses_update_and_delete(meta: MetadataStore, project: ProjectInfo) -> None:
    at = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    meta.append_audit([NewAuditEntry(project.id, at, "alice", "key.create", "key:k1", "cli")])
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), meta.engine.begin() as connection:
            connection.execute(text(statement))
    [entry] = meta.list_audit(AuditQuery(project_id=project.id))
    assert (entry.actor, entry.action, entry.at) == ("alice", "key.create", at)


def _no_listener_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unusable_postgresql_url_fails_at_start_up_naming_the_database(postgres: PostgresCluster) -> None:
    refused = postgres.url(port=_no_listener_port())
    wrong_password = postgres.url(password="not-the-password")
    no_database = postgres.url("no_such_database")
    for url, reason in [
        (refused, "Connection refused"),
        (wrong_password, "password authentication failed"),
        (no_database, 'database "no_such_database" does not exist'),
    ]:
        with pytest.raises(StoreError, match="cannot open the metadata database") as caught:
            MetadataStore(url)
        message = str(caught.value)
        assert reason in message and "CONVOSCOPE_METADATA_URL" in message
        assert "postgresql+psycopg://postgres:***@127.0.0.1" in message
        assert "convoscope-test" not in message and "not-the-password" not in message
