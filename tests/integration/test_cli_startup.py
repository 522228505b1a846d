"""The CLI starts light: help imports no store, server, audio or HTTP module.

Timings vary with the machine (``benchmarks/startup.py`` measures them); what the CLI imports does not,
so this is what the suite holds fixed.
"""

from __future__ import annotations

import subprocess
import sys

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


def _imported(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "convoscope", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return {
        line.split("|")[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


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
