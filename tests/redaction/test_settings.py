"""The redaction setting over the API and the CLI: read, replaced, and refused naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from convoscope.cli.main import app

from .conftest import Live


def test_the_default_is_off_and_a_put_setting_is_read_back(live: Live) -> None:
    got = live.get("/api/v1/settings/redaction").json()
    assert got["own"] is False and got["setting"]["enabled"] is False
    setting = {"enabled": True, "kinds": ["phone", "email"], "replacement": "<{kind}>", "recordings": "drop"}
    put = live.put("/api/v1/settings/redaction", json=setting)
    assert put.status_code == 200, put.text
    got = live.get("/api/v1/settings/redaction").json()
    assert got["own"] is True
    assert {k: got["setting"][k] for k in setting} == setting


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"enabled": True, "kinds": ["phone", "ssn"]}, "body.kinds.1"),
        ({"enabled": True, "recordngs": "mute"}, "body.recordngs"),
        ({"enabled": True, "recordings": "loud"}, "body.recordings"),
        ({"enabled": True, "replacement": "[{name}]"}, "body.replacement"),
        ({"enabled": True, "replacement": "X-0000"}, "body.replacement"),
        ({"enabled": "sometimes"}, "body.enabled"),
        ({"mute_padding_s": 5}, "body.mute_padding_s"),
    ],
)
def test_an_invalid_setting_is_refused_naming_the_field(live: Live, body: dict[str, Any], field: str) -> None:
    response = live.put("/api/v1/settings/redaction", json=body)
    assert response.status_code == 422, response.text
    assert field in [detail["loc"] for detail in response.json()["error"]["details"]]
    assert live.get("/api/v1/settings/redaction").json()["own"] is False  # nothing was written


def test_the_cli_shows_and_changes_the_setting(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    changed = runner.invoke(app, ["redaction", "set", "--enable", "--kinds", "phone,card", *data])
    assert changed.exit_code == 0, changed.output
    setting = json.loads(runner.invoke(app, ["redaction", "show", *data]).output)
    assert setting["own"] is True and setting["setting"]["enabled"] is True
    assert setting["setting"]["kinds"] == ["phone", "card"] and setting["setting"]["recordings"] == "mute"
    refused = runner.invoke(app, ["redaction", "set", "--recordings", "loud", *data])
    assert refused.exit_code == 1 and "redaction.recordings" in refused.output
    after = json.loads(runner.invoke(app, ["redaction", "show", *data]).output)
    assert after["setting"] == setting["setting"]
    cleared = runner.invoke(app, ["redaction", "set", "--clear", *data])
    assert cleared.exit_code == 0 and json.loads(cleared.output)["own"] is False
    # Both changes are in the audit log, with the setting each one left; the refused one is not.
    exported = runner.invoke(app, ["audit", "export", "--project", "default", *data])
    entries = [json.loads(line) for line in exported.output.splitlines()]
    assert [(e["action"], e["source"]) for e in entries] == [("settings.redaction", "cli")] * 2
    assert entries[0]["detail"]["setting"]["kinds"] == ["phone", "card"]
    assert entries[1]["detail"]["setting"] is None
