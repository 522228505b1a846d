"""``convoscope schedules`` on a data directory with no server: add from YAML beside a suite, list,
delete; a bad cron is refused with its file, line and field, and ``run`` says it needs the server."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from convoscope.cli.main import app
from convoscope.simulate.loader import load_definitions

FILE = """\
kind: suite
id: smoke
scenarios: [hello]
---
kind: scenario
id: hello
goal: Say hello.
script: {lines: ["Hi."]}
---
kind: schedule
id: nightly
name: Nightly smoke
cron: "0 3 * * 1-5"
timezone: Europe/Berlin
action: {kind: simulate, suite: smoke, agent: clinic}
misfire: once
"""


def test_schedules_are_added_listed_and_deleted_from_yaml(tmp_path: Path) -> None:
    source = tmp_path / "sim.yaml"
    source.write_text(FILE)
    assert set(load_definitions([source]).suites) == {"smoke"}  # the simulation loader skips schedules
    env = {"CONVOSCOPE_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()

    added = runner.invoke(app, ["schedules", "add", str(source)], env=env)
    assert added.exit_code == 0, added.output
    assert "created nightly (0 3 * * 1-5 Europe/Berlin)" in added.stdout
    listed = runner.invoke(app, ["schedules", "list"], env=env)
    assert listed.exit_code == 0 and "nightly  0 3 * * 1-5 Europe/Berlin  simulate smoke" in listed.stdout
    assert "last: never ran" in listed.stdout

    ran = runner.invoke(app, ["schedules", "run", "nightly"], env=env)
    assert ran.exit_code == 1 and "needs the server" in ran.output

    bad = tmp_path / "bad.yaml"
    bad.write_text(FILE.replace('"0 3 * * 1-5"', '"0 3 * *"'))
    refused = runner.invoke(app, ["schedules", "add", str(bad)], env=env)
    assert refused.exit_code == 1 and f"{bad}:13: cron:" in refused.output and "5 fields" in refused.output

    assert runner.invoke(app, ["schedules", "delete", "nightly"], env=env).exit_code == 0
    assert runner.invoke(app, ["schedules", "delete", "nightly"], env=env).exit_code == 1
