"""``convoscope test`` as a CI job runs it: definitions in a folder, the reference agent on loopback (its
faults switched on by model name), a real server process where ``--server`` is used, and the files and
exit status a pipeline reads: 0 all passed, 1 a failure or a regression, 2 a broken test."""

from __future__ import annotations

import itertools
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from convoscope.demo.agent import ReferenceAgentServer
from convoscope.testing.openai_server import FakeOpenAIServer, json_reply

from .conftest import AUTH, KEY, ServerProcess, run_cli

SCENARIOS = """\
kind: scenario
id: price
goal: Find out what a cleaning costs.
expected_outcome: OUTCOME-AGREED the caller learns the price.
unmocked_tools: pass_through
checks:
  required_tools: [{tool: get_price}]
script:
  lines: ["How much does a cleaning cost?"]
  replies:
    - {when: "anything else", say: "No, thanks, bye.", hang_up: true}
tags: [pricing]
---
kind: scenario
id: human
goal: Speak to a person.
expected_outcome: OUTCOME-DISPUTED the caller is transferred.
unmocked_tools: pass_through
checks:
  required_tools: [{tool: transfer_to_human}]
script:
  lines: ["Can I speak to a real person, please?"]
tags: [escalation]
---
kind: suite
id: smoke
scenarios: [price, human]
iterations: 2
metrics: [tool_call_success]
---
kind: suite
id: judged
scenarios: [price, human]
metrics: [expected_outcome]
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


def _junit(path: Path) -> dict[tuple[str, str], ET.Element]:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    return {(c.attrib["classname"], c.attrib["name"]): c for c in root.iter("testcase")}


def _annotations(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("::")]


def test_a_passing_gate_exits_0_and_writes_its_files(tmp_path: Path, defs: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli(
        "test",
        "--suite",
        "smoke",
        "--agent",
        "clinic",
        "--defs",
        str(defs),
        "--junit",
        str(out / "junit.xml"),
        "--json",
        str(out / "gate.json"),
        "--markdown",
        str(out / "gate.md"),
        data_dir=tmp_path / "data",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke against clinic 1.0" in result.stdout
    assert "gate passed: 4 passed, 0 failed, 0 split, 0 errored" in result.stdout
    assert _annotations(result.stdout) == []  # not under GitHub Actions
    cases = _junit(out / "junit.xml")
    assert set(cases) == {(f"smoke.{s}", f"neutral #{i}") for s in ("price", "human") for i in (1, 2)}
    assert all(list(case.iter("failure")) == [] for case in cases.values())
    summary = json.loads((out / "gate.json").read_text())
    assert (summary["status"], summary["exit_code"]) == ("passed", 0)
    assert summary["totals"] == {"passed": 4, "failed": 0, "split": 0, "errored": 0}
    assert [row["pass_rate"] for row in summary["suites"][0]["scenarios"]] == [1.0, 1.0]
    assert (out / "gate.md").read_text().startswith("## ✅ convoscope test: passed")
    stored = {c["call_id"] for c in summary["suites"][0]["conversations"]}
    listed = run_cli("calls", "list", "--source", "simulation", data_dir=tmp_path / "data")
    assert all(call_id in listed.stdout for call_id in stored)


def test_against_a_server_a_regression_exits_1_with_annotations_links_and_a_step_summary(
    tmp_path: Path, defs: Path
) -> None:
    server = ServerProcess(tmp_path / "served")
    server.start()
    try:
        first = tmp_path / "first.json"
        remote = ("--server", server.url, "--api-key", KEY)
        baseline = run_cli(
            "test",
            "--agent",
            "clinic",
            "--suite",
            "smoke",
            "--defs",
            str(defs),
            *remote,
            "--json",
            str(first),
            data_dir=tmp_path / "local",
        )
        assert baseline.returncode == 0, baseline.stdout + baseline.stderr
        run_id = json.loads(first.read_text())["suites"][0]["run_id"]
        step_summary = tmp_path / "step-summary.md"
        step_summary.write_text("earlier step output\n")
        report = tmp_path / "gate.md"
        result = run_cli(
            "test",
            "--agent",
            "clinic-no-transfer",
            "--suite",
            "smoke",
            "--defs",
            str(defs),
            *remote,
            "--baseline",
            run_id,
            "--iterations",
            "6",
            "--markdown",
            str(report),
            "--junit",
            str(tmp_path / "j.xml"),
            data_dir=tmp_path / "local",
            GITHUB_ACTIONS="true",
            GITHUB_STEP_SUMMARY=str(step_summary),
        )
        assert result.returncode == 1, result.stdout + result.stderr
        text = report.read_text()
        assert step_summary.read_text() == "earlier step output\n" + text
        assert f"#### Regressions against run `{run_id}` (1.0 → 1.1)" in text
        assert "- **scenario `human` ((conversation passed))**: 100% (2/2) → 0% (0/6)" in text
        links = [part.split(")")[0] for part in text.split(f"]({server.url}/calls/")[1:]]
        assert len(set(links)) == 6
        for call_id in set(links):
            stored = httpx.get(f"{server.url}/api/v1/calls/{call_id}", headers=AUTH, timeout=10)
            assert stored.status_code == 200 and stored.json()["call"]["agent_id"] == "clinic-no-transfer"
        with httpx.Client(base_url=server.url, timeout=10, follow_redirects=True) as browser:
            assert browser.get("/", params={"key": KEY}).status_code == 200  # the printed link signs in
            page = browser.get(f"/calls/{links[0]}")
        assert page.status_code == 200 and "clinic-no-transfer" in page.text
        annotations = _annotations(result.stdout)
        assert annotations[0].startswith(
            "::error title=convoscope%3A smoke.human failed::6 of 6 conversations"
        )
        assert f"{server.url}/calls/" in annotations[0]
        assert "::error title=convoscope%3A smoke regression in scenario human::" in "\n".join(annotations)
        failures = [c for c in _junit(tmp_path / "j.xml").values() if c.find("failure") is not None]
        assert len(failures) == 6
        runs = httpx.get(f"{server.url}/api/v1/simulation/runs", headers=AUTH, timeout=10).json()["items"]
        assert sorted(r["agent_id"] for r in runs) == ["clinic", "clinic-no-transfer"]
        _thresholds_over_the_server(server, tmp_path)
    finally:
        server.stop()


def _thresholds_over_the_server(server: ServerProcess, tmp_path: Path) -> None:
    """The nightly check through the series API, once the server has scored the 16 stored calls."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        series = httpx.get(
            f"{server.url}/api/v1/metrics/timeseries",
            params={"field": "passed:scenario_checks", "since": "2000-01-01T00:00:00Z"},
            headers=AUTH,
            timeout=10,
        ).json()
        if sum(point["count"] for point in series["points"]) == 16:
            break
        time.sleep(0.5)
    remote = ("--server", server.url, "--api-key", KEY, "--since", "2000-01-01")
    missed = run_cli(
        "test",
        *remote,
        "--metric",
        "scenario_checks>=0.9",
        "--json",
        str(tmp_path / "t.json"),
        data_dir=tmp_path / "local",
    )
    assert missed.returncode == 1, missed.stdout + missed.stderr
    checked = json.loads((tmp_path / "t.json").read_text())["thresholds"][0]
    assert checked["observed"] == pytest.approx(10 / 16) and (checked["count"], checked["passed"]) == (
        16,
        False,
    )
    met = run_cli(
        "test",
        *remote,
        "--agent",
        "clinic",
        "--metric",
        "scenario_checks>=100%",
        "--metric",
        "calls>=4",
        data_dir=tmp_path / "local",
    )
    assert met.returncode == 0, met.stdout + met.stderr


def test_an_unreachable_agent_exits_2_with_errors_in_junit(tmp_path: Path, defs: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = run_cli(
        "test",
        "--agent",
        "clinic-down",
        "--suite",
        "smoke",
        "--defs",
        str(defs),
        "--no-store",
        "--junit",
        str(junit),
        data_dir=tmp_path,
        GITHUB_ACTIONS="true",
    )
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [c.find("error") for c in _junit(junit).values()]
    assert len(errors) == 4 and all(e is not None and "unreachable" in e.attrib["message"] for e in errors)
    assert _annotations(result.stdout)[0].startswith("::error title=convoscope%3A smoke.human failed::")


def test_broken_definitions_and_bad_options_exit_2(tmp_path: Path, defs: Path) -> None:
    def gate(*args: str) -> tuple[int, str]:
        result = run_cli("test", *args, data_dir=tmp_path)
        return result.returncode, " ".join(result.stderr.split())

    assert gate("--agent", "nobody", "--defs", str(defs), "--no-store") == (
        2,
        "error: unknown agent 'nobody' (agents defined: clinic, clinic-down, clinic-no-transfer)",
    )
    code, message = gate("--agent", "clinic", "--suite", "smoke", "--tag", "pricing", "--defs", str(defs))
    assert code == 2 and "--suite or --tag, not both" in message
    code, message = gate("--agent", "clinic", "--tag", "nothing", "--defs", str(defs), "--no-store")
    assert code == 2 and "no scenario is tagged 'nothing'" in message
    code, message = gate("--agent", "clinic", "--server", "http://127.0.0.1:9", "--defs", str(defs))
    assert code == 2 and "--server needs --api-key" in message
    code, message = gate("--metric", "scenario_checks>=0.9")
    assert code == 2 and "give --since DATE" in message
    code, message = gate("--since", "2026-01-01", "--metric", "scenario_checks=0.9")
    assert code == 2 and "expected NAME>=VALUE" in message
    code, message = gate("--since", "2026-01-01", "--suite", "smoke", "--metric", "calls>=1")
    assert code == 2 and "--suite is for simulations" in message
    (defs / "broken.yaml").write_text("kind: persona\nid: x\npatience_s: -1\n")
    code, message = gate("--agent", "clinic", "--defs", str(defs))
    assert code == 2 and f"{defs / 'broken.yaml'}:3: patience_s" in message


def test_a_tag_runs_the_scenarios_that_carry_it(tmp_path: Path, defs: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = run_cli(
        "test",
        "--agent",
        "clinic-no-transfer",
        "--tag",
        "escalation",
        "--tag",
        "pricing",
        "--defs",
        str(defs),
        "--no-store",
        "--junit",
        str(junit),
        data_dir=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    cases = _junit(junit)
    assert set(cases) == {("tag-escalation.human", "neutral #1"), ("tag-pricing.price", "neutral #1")}
    assert cases[("tag-escalation.human", "neutral #1")].find("failure") is not None
    assert cases[("tag-pricing.price", "neutral #1")].find("failure") is None


def test_thresholds_over_calls_stored_in_the_data_directory(tmp_path: Path, defs: Path) -> None:
    data = tmp_path / "data"
    stored = run_cli(
        "test", "--agent", "clinic-no-transfer", "--suite", "smoke", "--defs", str(defs), data_dir=data
    )
    assert stored.returncode == 1, stored.stdout + stored.stderr
    junit, summary = tmp_path / "t.xml", tmp_path / "t.json"
    missed = run_cli(
        "test",
        "--since",
        "2000-01-01",
        "--metric",
        "scenario_checks>=0.9",
        "--metric",
        "metric:tool_call_success>=1",
        "--junit",
        str(junit),
        "--json",
        str(summary),
        data_dir=data,
        GITHUB_ACTIONS="true",
    )
    assert missed.returncode == 1, missed.stdout + missed.stderr
    report: dict[str, Any] = json.loads(summary.read_text())
    assert [(t["metric"], t["count"], t["passed"]) for t in report["thresholds"]] == [
        ("scenario_checks>=0.9", 4, False),
        ("metric:tool_call_success>=1", 4, True),
    ]
    assert [t["observed"] for t in report["thresholds"]] == [pytest.approx(0.5), 1.0]
    cases = _junit(junit)
    assert cases[("thresholds", "scenario_checks>=0.9")].find("failure") is not None
    assert cases[("thresholds", "metric:tool_call_success>=1")].find("failure") is None
    assert _annotations(missed.stdout) == [
        "::error title=convoscope%3A threshold scenario_checks>=0.9 missed::pass rate of scenario_checks: "
        "observed 0.5 over 4 values"
    ]
    met = run_cli("test", "--since", "2000-01-01", "--metric", "scenario_checks>=50%", data_dir=data)
    assert met.returncode == 0, met.stdout + met.stderr
    nobody = run_cli(
        "test", "--since", "2000-01-01", "--agent", "nobody", "--metric", "calls>=1", data_dir=data
    )
    assert nobody.returncode == 1 and "no values" in nobody.stdout
    elsewhere = run_cli(
        "test", "--since", "2000-01-01", "--metric", "calls>=1", "--project", "nope", data_dir=data
    )
    assert elsewhere.returncode == 2 and "no project 'nope'" in elsewhere.stderr
    empty = run_cli("test", "--since", "2000-01-01", "--metric", "calls>=1", data_dir=tmp_path / "none")
    assert empty.returncode == 2 and "no convoscope data" in empty.stderr


def test_split_judge_verdicts_are_counted_apart_unless_they_fail_the_gate(tmp_path: Path, defs: Path) -> None:
    with FakeOpenAIServer() as judge:
        reply = {"reasoning": "scripted", "quotes": []}
        judge.add(json_reply({"verdict": "pass", **reply}), contains="OUTCOME-AGREED")
        # Every conversation asks its three samples in turn, so a cycle splits each one the same way,
        # however many of them the judge cache answers instead.
        disputed = itertools.cycle([json_reply({"verdict": v, **reply}) for v in ("pass", "fail", "pass")])
        judge.add(lambda _request: next(disputed), contains="OUTCOME-DISPUTED")
        llm = {"CONVOSCOPE_LLM_MODEL": "fake", "CONVOSCOPE_LLM_BASE_URL": judge.url}
        summary = tmp_path / "gate.json"
        args = (
            "test",
            "--agent",
            "clinic",
            "--suite",
            "judged",
            "--defs",
            str(defs),
            "--no-store",
            "--judge-runs",
            "3",
        )
        lenient = run_cli(
            *args, "--json", str(summary), "--markdown", str(tmp_path / "g.md"), data_dir=tmp_path, **llm
        )
        assert lenient.returncode == 0, lenient.stdout + lenient.stderr
        assert "1 split (judge runs disagreed; counted apart)" in lenient.stdout
        assert json.loads(summary.read_text())["totals"] == {
            "passed": 1,
            "failed": 0,
            "split": 1,
            "errored": 0,
        }
        assert "expected_outcome: judge runs split, 2 passed / 1 failed" in (tmp_path / "g.md").read_text()
        assert len(judge.requests) == 6
        strict = run_cli(*args, "--split-fails", data_dir=tmp_path, **llm)
        assert strict.returncode == 1, strict.stdout + strict.stderr
        assert "1 split (judge runs disagreed; failing)" in strict.stdout
        once = run_cli(*args[:-1], "1", data_dir=tmp_path / "fresh", **llm)
        assert once.returncode == 0, once.stdout + once.stderr
        assert "gate passed: 2 passed, 0 failed, 0 split, 0 errored" in once.stdout


# ----- docs/ci.md


DOC = Path(__file__).parents[2] / "docs" / "ci.md"


def _shell_lines(document: dict[str, Any]) -> list[str]:
    """Every shell line of a GitHub workflow's steps or a GitLab job's scripts."""
    scripts: list[str] = []
    for job in (document.get("jobs") or {}).values():
        scripts.extend(str(step["run"]) for step in job["steps"] if "run" in step)
    for job in document.values():
        if isinstance(job, dict) and "script" in job:
            scripts.extend(str(line) for key in ("before_script", "script") for line in job.get(key, []))
    return [line.strip() for script in scripts for line in script.splitlines() if line.strip()]


def test_the_ci_doc_workflows_are_yaml_whose_convoscope_test_lines_the_command_accepts() -> None:
    import re
    import shlex

    import typer.core
    import typer.main
    import yaml

    from convoscope.cli.main import app
    from convoscope.simulate.gate import Threshold

    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    documents = [yaml.safe_load(block) for block in blocks]
    github = [d for d in documents if "jobs" in d]
    gitlab = [d for d in documents if any(isinstance(job, dict) and "script" in job for job in d.values())]
    assert len(github) == 2 and len(gitlab) == 1
    assert gitlab[0]["convoscope-gate"]["artifacts"]["reports"]["junit"] == "convoscope-junit.xml"
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    command = group.commands["test"]
    seen = 0
    for document in documents:
        for line in _shell_lines(document):
            if not line.startswith("convoscope test "):
                continue
            args = shlex.split(line)[2:]
            context = command.make_context("test", args)  # unknown options and bad values raise here
            params = context.params
            assert params["agent"] or params["since"], line
            assert bool(params["since"]) == bool(params["metric"]), line
            for text in params["metric"] or []:
                Threshold.parse(text)
            if params["server"]:
                assert params["api_key"] or "CONVOSCOPE_API_KEY" in str(document), line
            assert params["junit"], line
            seen += 1
    assert seen == 3
    junit_paths = {
        str(step.get("with", {}).get("path", "")) for step in github[0]["jobs"]["convoscope"]["steps"]
    }
    assert any("convoscope-junit.xml" in path for path in junit_paths)
