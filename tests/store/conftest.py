"""Every store test runs twice: on embedded chDB, and over ClickHouse's HTTP interface.

The HTTP runs talk to a ClickHouse front (``convoscope.testing.chfront``) that serves chDB's engine the way
a ClickHouse server answers clickhouse-connect, so the server path of the store (HTTP transport,
compression, sessions, error bodies, the version check) is exercised without a ClickHouse install. One
front runs per test process (each xdist worker is one), with its own data directory; every test gets a
fresh database on it, as on chDB. A test that is about the embedded engine itself asks for
``clickhouse_store`` (chDB only) instead of ``store``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from convoscope.store.clickhouse import ClickHouseStore, open_clickhouse_store
from convoscope.testing.chfront import running_front

OpenStore = Callable[[str], ClickHouseStore]


@pytest.fixture(scope="session")
def clickhouse_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of this test process's ClickHouse front."""
    with running_front(tmp_path_factory.mktemp("chfront")) as url:
        yield url


@pytest.fixture(params=["chdb", "http"])
def backend(request: pytest.FixtureRequest) -> str:
    """Which way the store reaches the engine: ``chdb`` (embedded) or ``http`` (a server's interface)."""
    return str(request.param)


@pytest.fixture
def open_store(backend: str, request: pytest.FixtureRequest) -> OpenStore:
    """Opens a database on the test's backend (the caller closes it)."""
    if backend == "chdb":
        path: Path = request.getfixturevalue("chdb_dir")
        return lambda database: open_clickhouse_store(path=path, database=database)
    url: str = request.getfixturevalue("clickhouse_url")
    return lambda database: open_clickhouse_store(url=url, database=database)


@pytest.fixture
def store(open_store: OpenStore) -> Iterator[ClickHouseStore]:
    """A fresh, empty store in its own database, closed after the test."""
    opened = open_store(f"t_{uuid.uuid4().hex}")
    try:
        yield opened
    finally:
        opened.close()
