"""Fixtures shared by every test directory.

chDB allows one data directory per process, so the whole pytest process (each xdist worker is one)
shares one directory, and every test gets its own database in it.

The API under test (``services``, ``client``, ``auth``, ``drain``): ``create_app`` over real stores,
reached through Starlette's httpx-based TestClient. The worker is driven by hand (``drain``) so a test
knows exactly when ingested calls become visible; the real asyncio worker loop runs in the integration
tests against a live uvicorn server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings

from convoscope.config import Settings
from convoscope.server.app import create_app
from convoscope.server.services import Services, open_services
from convoscope.store.clickhouse import ClickHouseStore, open_clickhouse_store
from pg import PostgresCluster

if TYPE_CHECKING:
    from s3server import S3Server

# In CI the property tests draw the same examples on every run (a fixed seed, no example database), so
# a red run is a change's doing and reproduces; on a developer's machine they explore anew each time.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one chDB data directory this test process may open."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def clickhouse_store(chdb_dir: Path) -> Iterator[ClickHouseStore]:
    """A fresh, empty store in its own database, closed after the test."""
    opened = open_clickhouse_store(path=chdb_dir, database=f"t_{uuid.uuid4().hex}")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster for this test process, started on first use and removed at the end."""
    cluster = PostgresCluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """An S3 API server (moto) for this test process, and the AWS variables the stores' clients read."""
    from s3server import CREDENTIALS, S3Server

    with pytest.MonkeyPatch.context() as env:
        for name, value in CREDENTIALS.items():
            env.setenv(name, value)
        server = S3Server()
        try:
            yield server
        finally:
            server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty metadata database: a SQLite file, or a database of its own on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metadata.db'}"
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    url = cluster.database()
    try:
        yield url
    finally:
        cluster.drop(url)


API_KEY = "cvs_test_key_project_default_0001"
"""The key of the API fixtures' default project (an admin key, as the first key of a project is)."""


@pytest.fixture
def services(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path / "data", init_api_key=API_KEY)
    opened = open_services(settings, store=clickhouse_store)
    yield opened
    opened.audit.close()
    opened.meta.close()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    # No lifespan (no ``with``): the worker does not run; tests drain the outbox themselves.
    yield TestClient(create_app(services, run_worker=False), raise_server_exceptions=True)


@pytest.fixture
def key() -> str:
    return API_KEY


@pytest.fixture
def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def drain(services: Services) -> Callable[[], int]:
    def run() -> int:
        total = 0
        while handled := services.worker.drain_once():
            total += handled
        return total

    return run
