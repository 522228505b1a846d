"""The API under test: ``create_app`` over real stores, reached through Starlette's httpx-based TestClient.

The worker is driven by hand (``drain``) so a test knows exactly when ingested calls become visible;
the real asyncio worker loop runs in the integration tests against a live uvicorn server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from convoscope.config import Settings
from convoscope.server.app import create_app
from convoscope.server.services import Services, open_services
from convoscope.store.clickhouse import ClickHouseStore


@pytest.fixture
def services(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path / "data", init_api_key="cvs_test_key_project_default_0001")
    opened = open_services(settings, store=clickhouse_store)
    yield opened
    opened.meta.close()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    # No lifespan (no ``with``): the worker does not run; tests drain the outbox themselves.
    yield TestClient(create_app(services, run_worker=False), raise_server_exceptions=True)


@pytest.fixture
def key(services: Services) -> str:
    return "cvs_test_key_project_default_0001"


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
