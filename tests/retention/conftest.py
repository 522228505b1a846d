"""The API over real stores (as in ``tests/server``): the worker is drained by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from convoscope.config import Settings
from convoscope.server.app import create_app
from convoscope.server.services import Services, open_services
from convoscope.store.clickhouse import ClickHouseStore

KEY = "cvs_test_key_project_default_0001"


@pytest.fixture
def services(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path / "data", init_api_key=KEY)
    opened = open_services(settings, store=clickhouse_store)
    yield opened
    opened.audit.close()
    opened.meta.close()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    yield TestClient(create_app(services, run_worker=False), raise_server_exceptions=True)


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def drain(services: Services) -> Callable[[], int]:
    def run() -> int:
        total = 0
        while handled := services.worker.drain_once():
            total += handled
        return total

    return run
