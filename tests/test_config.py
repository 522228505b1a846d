"""Settings come from options, the environment and an optional TOML file, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

from convoscope.config import Settings, load_settings, settings_table

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_environment_then_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "convoscope.toml"
    config.write_text('port = 9100\nhost = "0.0.0.0"\nmax_batch_calls = 10\n')
    monkeypatch.setenv("CONVOSCOPE_CONFIG", str(config))
    monkeypatch.setenv("CONVOSCOPE_PORT", "9200")
    settings = load_settings(max_batch_calls=None, data_dir=tmp_path)
    assert settings.port == 9200  # the environment wins over the file
    assert settings.host == "0.0.0.0" and settings.max_batch_calls == 10
    assert settings.data_dir == tmp_path
    assert load_settings(port=9300).port == 9300  # an explicit option wins over both


def test_metadata_defaults_to_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).resolved_metadata_url == f"sqlite:///{tmp_path / 'metadata.db'}"


def test_configuration_docs_are_generated_from_the_settings() -> None:
    assert settings_table() in (DOCS / "configuration.md").read_text()
