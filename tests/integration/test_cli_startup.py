"""The CLI starts light: help imports no store, server, audio or HTTP module.

Timings vary with the machine (``benchmarks/startup.py`` measures them); what the CLI imports does not,
so this is what the suite holds fixed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from convoscope.cli.names import PULL_VENDORS, WEBHOOK_SOURCES
from convoscope.ingest.pull import PULLERS
from convoscope.ingest.sources import SOURCE_NAMES

HEAVY = (
    "httpx",
    "sqlalchemy",
    "alembic",
    "numpy",
    "chdb",
    "clickhouse_connect",
    "onnxruntime",
    "fastapi",
    "uvicorn",
    "convoscope.store",
    "convoscope.server",
    "convoscope.audio",
    "convoscope.evals",
    "convoscope.model.call",
)


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "convoscope", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def _modules(result: subprocess.CompletedProcess[str]) -> set[str]:
    return {
        line.split("|")[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def _imported(*args: str) -> set[str]:
    return _modules(_run(*args))


@pytest.mark.parametrize(
    "args",
    [["--help"], ["calls", "list", "--help"], ["audio", "analyze", "--help"], ["ingest", "--help"]],
)
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    modules = _imported(*args)
    assert "convoscope.cli.main" in modules
    # Typer validates a command's options with pydantic, so only the top-level help goes without it.
    heavy = (*HEAVY, "pydantic") if args == ["--help"] else HEAVY
    loaded = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy))
    assert loaded == [], loaded


def test_the_vendor_names_in_help_are_the_packages_own() -> None:
    assert WEBHOOK_SOURCES == SOURCE_NAMES
    assert PULL_VENDORS == PULLERS


def test_a_read_on_a_stopped_data_dir_opens_no_metadata_store_and_no_arrow(tmp_path: Path) -> None:
    """The call list needs the project's id only: read from SQLite without SQLAlchemy, and chDB loaded
    without pyarrow and numpy, the bulk of such a command's start."""
    from convoscope.testing import call_payload

    env = {**os.environ, "CONVOSCOPE_DATA_DIR": str(tmp_path / "data")}
    calls = tmp_path / "calls.json"
    calls.write_text(json.dumps([call_payload(external_id=f"light-{i}") for i in range(3)]))
    assert "ingested 3 calls" in _run("ingest", str(calls), env=env).stdout

    listed = _run("calls", "list", "--json", env=env)
    listed_ids = sorted(row["external_id"] for row in json.loads(listed.stdout)["items"])
    assert listed_ids == ["light-0", "light-1", "light-2"]
    modules = _modules(listed)
    assert "chdb" in modules and "convoscope.store.project_peek" in modules
    heavy = ("sqlalchemy", "alembic", "pyarrow.lib", "numpy", "convoscope.store.metadata")
    loaded = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy))
    assert loaded == [], loaded

    # (pyarrow itself is listed: the refused attempt, a few microseconds; pyarrow.lib is its real load.)
    # A project the metadata has never seen is created by the metadata store, as before: none of its calls.
    other = _run("calls", "list", "--json", "--project", "elsewhere", env=env)
    assert json.loads(other.stdout)["items"] == []
    assert "convoscope.store.metadata" in _modules(other)
