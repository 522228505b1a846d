"""The embedded engine runs with bounded merge threads and memory (checked in a fresh process,
because chDB's engine settings are fixed when a process first opens it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from convoscope.store.clickhouse import ClickHouseStore

_CHILD = """
import json, sys
from pathlib import Path
from convoscope.store.clickhouse import open_clickhouse_store
store = open_clickhouse_store(path=Path(sys.argv[1]), merge_threads=1, max_memory_bytes=3_000_000_000)
print(json.dumps(store.ping()["engine_limits"]))
store.close()
"""


def test_merge_threads_and_memory_cap_reach_the_engine(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "chdb")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    limits = json.loads(result.stdout.strip().splitlines()[-1])
    assert limits == {"background_pool_size": "1", "max_server_memory_usage": "3000000000"}


def test_health_reports_the_defaults(clickhouse_store: ClickHouseStore) -> None:
    # Embedded only: the defaults are what convoscope gives the engine it starts; a server has its own.
    assert clickhouse_store.ping()["engine_limits"]["background_pool_size"] == "2"  # type: ignore[index]
