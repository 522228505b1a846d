"""The store tests use the shared per-test chDB database under the name ``store``."""

from __future__ import annotations

import pytest

from convoscope.store.clickhouse import ClickHouseStore


@pytest.fixture
def store(clickhouse_store: ClickHouseStore) -> ClickHouseStore:
    """A fresh, empty store in its own database."""
    return clickhouse_store
