"""``convoscope alerts add|list|events`` as a user runs them: on a stopped data directory, then through
the running server that holds it, the same rules and the same answers."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import ServerProcess, run_cli

RULES = """\
kind: alert_rule
id: slow-answers
name: p95 agent latency over 1.5 s
target: e2e_s
window_s: 900
threshold: {aggregate: p95, op: ">", value: 1.5}
---
kind: suite
id: skipped
scenarios: [a]
"""


def test_rules_are_added_and_listed_with_and_without_the_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    added = run_cli("alerts", "add", str(rules), data_dir=data)
    assert added.returncode == 0, added.stdout + added.stderr
    listed = run_cli("alerts", "list", "--json", data_dir=data)
    assert listed.returncode == 0, listed.stderr
    (rule,) = json.loads(listed.stdout)
    assert rule["id"] == "slow-answers" and rule["rule"]["threshold"]["value"] == 1.5
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: alert_rule\nid: x\nname: y\ntarget: e2e_s\nthreshold: {aggregate: p95, op: '!!', value: 1}\n"
    )
    refused = run_cli("alerts", "add", str(bad), data_dir=data)
    assert refused.returncode != 0 and "bad.yaml" in refused.stderr and "op" in refused.stderr

    server = ServerProcess(data)
    server.start()
    try:
        through = run_cli("alerts", "list", "--json", data_dir=data)
        assert through.returncode == 0, through.stderr
        assert [r["id"] for r in json.loads(through.stdout)] == ["slow-answers"]
        events = run_cli("alerts", "events", "--json", data_dir=data)
        assert events.returncode == 0 and json.loads(events.stdout) == []
    finally:
        server.stop()
