"""``convoscope worker`` and an API-only server refuse to start on stores other processes cannot share."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from convoscope.cli.main import app as cli


@pytest.mark.parametrize(
    ("command", "env"),
    [(["worker"], {}), (["serve", "--port", "0"], {"CONVOSCOPE_RUN_JOBS": "false"})],
)
def test_work_out_of_process_needs_shared_stores_and_names_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], env: dict[str, str]
) -> None:
    for name in ("CONVOSCOPE_CLICKHOUSE_URL", "CONVOSCOPE_METADATA_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, [*command, "--data-dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    message = " ".join(result.output.split())
    assert "CONVOSCOPE_CLICKHOUSE_URL is not set" in message
    assert "CONVOSCOPE_METADATA_URL names sqlite, not PostgreSQL" in message
    assert not (tmp_path / "chdb").exists()  # refused before any store was opened
