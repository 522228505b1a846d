"""What the store does over the server path: many threads on one store, the server's version, a server
that is not there, and the setting that names it."""

from __future__ import annotations

import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from convoscope.config import Settings
from convoscope.errors import StoreError
from convoscope.runtime.stores import open_call_store
from convoscope.store.clickhouse import MIN_SERVER_VERSION, ClickHouseStore, open_clickhouse_store
from convoscope.testing.chfront import running_front

from .factories import make_call

T0 = datetime(2025, 3, 1, 9, tzinfo=UTC)


def test_one_store_serves_many_threads_at_once(store: ClickHouseStore) -> None:
    # The server shares one store between its request threads, the ingest worker and the job runner.
    ids = store.insert_calls(
        "proj", [make_call(f"c{n}", started_at=T0, turns=3) for n in range(8)], version=1
    )

    def read(n: int) -> int:
        stored = store.get_call("proj", ids[n % len(ids)])
        assert stored is not None
        return len(stored.call.turns) + store.count_calls("proj")

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(read, range(24))) == [3 + 8] * 24


def test_a_server_older_than_the_minimum_is_refused(tmp_path: Path) -> None:
    with running_front(tmp_path / "old", report_version="23.3.1.1") as url:
        with pytest.raises(StoreError) as refused:
            open_clickhouse_store(url=url, database="t_old")
    wanted = ".".join(map(str, MIN_SERVER_VERSION))
    assert "23.3.1.1" in str(refused.value) and f"{wanted} or newer" in str(refused.value)


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_server_is_named_without_its_password() -> None:
    url = f"http://alice:s3cret@127.0.0.1:{_unused_port()}"

    with pytest.raises(StoreError) as failed:
        open_clickhouse_store(url=url, database=f"t_{uuid.uuid4().hex}")

    message = str(failed.value)
    assert "http://alice:***@127.0.0.1:" in message and "s3cret" not in message


def test_a_url_that_is_not_a_clickhouse_server_is_refused(clickhouse_url: str) -> None:
    with pytest.raises(StoreError) as failed:
        open_clickhouse_store(url="localhost:8123", database="t_x")
    assert "localhost:8123" in str(failed.value)


def test_start_up_names_the_setting_when_the_server_fails(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_unused_port()}"
    settings = Settings(data_dir=tmp_path, clickhouse_url=url)

    with pytest.raises(StoreError) as failed:
        open_call_store(settings)

    assert "CONVOSCOPE_CLICKHOUSE_URL" in str(failed.value) and url in str(failed.value)


def test_the_database_in_the_url_is_created_on_a_fresh_server(clickhouse_url: str, tmp_path: Path) -> None:
    name = f"t_{uuid.uuid4().hex}"
    opened = open_call_store(Settings(data_dir=tmp_path, clickhouse_url=f"{clickhouse_url}/{name}"))
    try:
        assert opened.ping()["database"] == name
    finally:
        opened.close()


def test_a_cluster_without_a_server_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="CONVOSCOPE_CLICKHOUSE_CLUSTER"):
        Settings(data_dir=tmp_path, clickhouse_cluster="main")


def test_the_cluster_setting_reaches_the_ddl(clickhouse_url: str, tmp_path: Path) -> None:
    # The front is one engine with no cluster of that name: the ON CLUSTER statement is what fails.
    settings = Settings(data_dir=tmp_path, clickhouse_url=clickhouse_url, clickhouse_cluster="nowhere")
    with pytest.raises(StoreError) as failed:
        open_call_store(settings, database=f"t_{uuid.uuid4().hex}")
    print(failed.value)
    assert "nowhere" in str(failed.value)
