"""``convoscope ingest`` on a stopped data directory stores calls itself, with the project's redaction
applied as the server's worker would apply it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from convoscope.cli.main import app

from .conftest import CONTROL, PII_NEEDLES
from .test_ingest_paths import canonical_call


def test_direct_ingest_masks_before_storing(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    enabled = runner.invoke(
        app, ["redaction", "set", "--enable", "--kinds", "phone,email,card,national_id", *data]
    )
    assert enabled.exit_code == 0, enabled.output
    source = tmp_path / "calls.json"
    source.write_text(json.dumps([canonical_call("direct-1")]))
    ingested = runner.invoke(app, ["ingest", str(source), *data])
    assert ingested.exit_code == 0, ingested.output
    listed = runner.invoke(app, ["calls", "list", "--json", *data])
    assert listed.exit_code == 0, listed.output
    (item,) = json.loads(listed.output)["items"]
    shown = runner.invoke(app, ["calls", "show", item["id"], "--json", *data])
    assert shown.exit_code == 0, shown.output
    assert CONTROL in shown.output and "[phone]" in shown.output
    assert [needle for needle in PII_NEEDLES if needle in shown.output] == []
