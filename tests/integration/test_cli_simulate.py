"""``convoscope simulate`` as a user runs it: definitions in a folder, the reference agent on loopback,
the calls stored in the project, and an exit status that tells pass (0), failure (1) and error (2) apart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from convoscope.demo.agent import ReferenceAgentServer

from .conftest import ServerProcess, run_cli

SCENARIOS = """\
kind: scenario
id: price
goal: Find out what a cleaning costs.
unmocked_tools: pass_through
checks:
  required_tools: [{tool: get_price}]
script:
  lines: ["How much does a cleaning cost?"]
  replies:
    - {when: "anything else", say: "No, thanks, bye.", hang_up: true}
---
kind: scenario
id: human
goal: Speak to a person.
unmocked_tools: pass_through
checks:
  required_tools: [{tool: transfer_to_human}]
script:
  lines: ["Can I speak to a real person, please?"]
---
kind: suite
id: smoke
scenarios: [price, human]
iterations: 2
metrics: [tool_call_success]
"""


def _agents(url: str) -> str:
    return "\n---\n".join(
        f"kind: agent\nid: {name}\nversion: '{version}'\nconnector:\n  kind: openai\n"
        f"  base_url: {url}/v1\n  model: {model}\ntools_url: {url}/tools\n"
        for name, version, model in (
            ("clinic", "1.0", "reference-agent"),
            ("clinic-no-transfer", "1.1", "reference-agent+never_transfers"),
            ("clinic-down", "1.2", "reference-agent+http_500"),
        )
    )


@pytest.fixture(scope="module")
def agent_url() -> Iterator[str]:
    with ReferenceAgentServer() as server:
        yield server.url


@pytest.fixture
def defs(tmp_path: Path, agent_url: str) -> Path:
    folder = tmp_path / "simulation"
    folder.mkdir()
    (folder / "scenarios.yaml").write_text(SCENARIOS)
    (folder / "agents.yaml").write_text(_agents(agent_url))
    return folder


def test_a_passing_suite_exits_0_stores_its_calls_and_writes_its_result(tmp_path: Path, defs: Path) -> None:
    data = tmp_path / "data"
    out = tmp_path / "run.json"
    result = run_cli(
        "simulate", "smoke", "--agent", "clinic", "--defs", str(defs), "--json", str(out), data_dir=data
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed, 0 failed, 0 errored of 4" in result.stdout
    report = json.loads(out.read_text())
    assert report["agent_version"] == "1.0"
    assert {(c["scenario"], c["passed"]) for c in report["cells"]} == {("price", 2), ("human", 2)}
    listed = run_cli("calls", "list", "--source", "simulation", "--limit", "10", data_dir=data)
    assert listed.returncode == 0, listed.stderr
    stored_ids = {c["call_id"] for c in report["conversations"]}
    assert all(call_id in listed.stdout for call_id in stored_ids)
    shown = run_cli("calls", "show", sorted(stored_ids)[0], "--json", data_dir=data)
    call = json.loads(shown.stdout)
    assert call["call"]["simulation"]["run_id"] == report["run_id"]
    assert {s["metric"] for s in call["scores"]} >= {"scenario_checks", "tool_call_success"}


def test_a_failing_agent_exits_1_and_names_the_failed_check(tmp_path: Path, defs: Path) -> None:
    result = run_cli(
        "simulate",
        "smoke",
        "--agent",
        "clinic-no-transfer",
        "--defs",
        str(defs),
        "--no-store",
        data_dir=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 passed, 2 failed, 0 errored of 4" in result.stdout
    assert "scenario_checks: required_tool transfer_to_human" in result.stdout


def test_an_agent_that_answers_500_exits_2(tmp_path: Path, defs: Path) -> None:
    result = run_cli(
        "simulate", "smoke", "--agent", "clinic-down", "--defs", str(defs), "--no-store", data_dir=tmp_path
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "0 passed, 0 failed, 4 errored of 4" in result.stdout
    assert "unreachable" in result.stdout


def test_a_definition_error_exits_2_with_its_file_and_line(tmp_path: Path, defs: Path) -> None:
    (defs / "broken.yaml").write_text("kind: persona\nid: x\npatience_s: -1\n")
    result = run_cli("simulate", "smoke", "--agent", "clinic", "--defs", str(defs), data_dir=tmp_path)
    assert result.returncode == 2
    assert f"{defs / 'broken.yaml'}:3: patience_s" in " ".join(result.stderr.split())


def test_an_unknown_agent_or_suite_exits_2(tmp_path: Path, defs: Path) -> None:
    agent = run_cli("simulate", "smoke", "--agent", "nobody", "--defs", str(defs), data_dir=tmp_path)
    assert agent.returncode == 2 and "unknown agent 'nobody'" in agent.stderr
    suite = run_cli("simulate", "nothing", "--agent", "clinic", "--defs", str(defs), data_dir=tmp_path)
    assert suite.returncode == 2 and "unknown suite 'nothing'" in suite.stderr


def test_through_a_running_server_the_server_stores_and_scores_the_calls(tmp_path: Path, defs: Path) -> None:
    server = ServerProcess(tmp_path / "served")
    server.start()
    try:
        result = run_cli(
            "simulate", "smoke", "--agent", "clinic", "--defs", str(defs), data_dir=server.data_dir
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert server.url in result.stderr
        key = (server.data_dir / "credentials" / "default.key").read_text().strip()
        headers = {"Authorization": f"Bearer {key}"}
        listed = httpx.get(
            f"{server.url}/api/v1/calls", params={"source": "simulation"}, headers=headers, timeout=10
        )
        assert listed.status_code == 200 and len(listed.json()["items"]) == 4
        runs = httpx.get(f"{server.url}/api/v1/simulation/runs", headers=headers, timeout=10).json()["items"]
        assert [(r["suite_id"], r["passed"]) for r in runs] == [("smoke", 4)]
        kept = httpx.get(f"{server.url}/api/v1/simulation/runs/{runs[0]['id']}", headers=headers, timeout=10)
        assert kept.status_code == 200 and len(kept.json()["conversations"]) == 4
        compared = httpx.get(
            f"{server.url}/api/v1/simulation/compare",
            params={"baseline": runs[0]["id"], "candidate": runs[0]["id"]},
            headers=headers,
            timeout=10,
        )
        assert compared.status_code == 200 and compared.json()["regressions"] == []
        bad = httpx.post(
            f"{server.url}/api/v1/simulation/runs", json={"run_id": "x"}, headers=headers, timeout=10
        )
        assert bad.status_code == 422 and bad.json()["error"]["type"] == "PayloadError"
    finally:
        server.stop()


def test_a_b_against_a_baseline_agent_flags_the_regression_and_keeps_both_runs(
    tmp_path: Path, defs: Path
) -> None:
    data = tmp_path / "data"
    result = run_cli(
        "simulate",
        "smoke",
        "--agent",
        "clinic-no-transfer",
        "--baseline-agent",
        "clinic",
        "--defs",
        str(defs),
        "--iterations",
        "6",
        data_dir=data,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    text = " ".join(result.stdout.split())
    assert "detectably worse: (conversation passed), scenario_checks" in text
    listed = run_cli("runs", "list", "--suite", "smoke", data_dir=data)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("clinic") >= 2
    runs = [line.split()[0] for line in listed.stdout.splitlines() if line.strip().startswith("run-")]
    candidate, baseline = runs[:2]  # newest first
    compared = run_cli("runs", "compare", baseline, candidate, "--json", data_dir=data)
    assert compared.returncode == 1
    assert json.loads(compared.stdout)["regressions"] == ["(conversation passed)", "scenario_checks"]
    same = run_cli("runs", "compare", baseline, baseline, data_dir=data)
    assert same.returncode == 0 and "no metric is detectably worse" in same.stdout
    again = run_cli(
        "simulate", "smoke", "--agent", "clinic", "--baseline", baseline, "--defs", str(defs), data_dir=data
    )
    assert again.returncode == 0, again.stdout + again.stderr
    missing = run_cli("runs", "show", "run-nope", data_dir=data)
    assert missing.returncode == 1 and "run run-nope not found" in missing.stderr
