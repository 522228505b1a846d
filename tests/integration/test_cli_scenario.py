"""``convoscope scenario from-call`` as a user runs it: a suite fails against a faulty reference agent and
its calls are stored; a failed call becomes a scenario file; ``convoscope simulate`` runs that file
unchanged, failing again against the faulty agent (the failure reproduces) and passing against the
clean one (the fix holds)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from convoscope.demo.agent import ReferenceAgentServer
from convoscope.testing.openai_server import FakeOpenAIServer, json_reply

from .conftest import ServerProcess, run_cli

SCENARIOS = """\
kind: scenario
id: human
goal: Speak to a person.
unmocked_tools: pass_through
checks:
  required_tools: [{tool: transfer_to_human}]
  end_reason: [transfer]
script:
  lines: ["Can I speak to a real person, please?", "I really want a person."]
---
kind: scenario
id: book
goal: Book a cleaning on Tuesday at 3 pm.
unmocked_tools: pass_through
script:
  lines: ["I'd like to book a cleaning."]
  replies:
    - {when: "anything else", say: "No, that's all. Thanks, bye.", hang_up: true}
    - {when: "\\\\b(day|date|when)\\\\b", say: "Tuesday at 3 pm.", once: false}
    - {when: "\\\\bname\\\\b", say: "Dana Reyes."}
---
kind: suite
id: smoke
scenarios: [human, book]
metrics: [say_do_consistency, tool_call_success]
"""
FAULTY = "clinic-faulty"
CLEAN = "clinic"


def _agents(url: str) -> str:
    return "\n---\n".join(
        f"kind: agent\nid: {name}\nconnector:\n  kind: openai\n  base_url: {url}/v1\n  model: {model}\n"
        f"tools_url: {url}/tools\n"
        for name, model in (
            (CLEAN, "reference-agent"),
            (FAULTY, "reference-agent+never_transfers+wrong_tool_args"),
        )
    )


@dataclass(frozen=True)
class Stored:
    """A data directory holding the faulty run's calls, and the failed call of each scenario."""

    data_dir: Path
    agents: str
    failed: dict[str, str]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stored]:
    base = tmp_path_factory.mktemp("from-call")
    with ReferenceAgentServer() as agent:
        defs = base / "simulation"
        defs.mkdir()
        (defs / "scenarios.yaml").write_text(SCENARIOS)
        agents = _agents(agent.url)
        (defs / "agents.yaml").write_text(agents)
        report = base / "run.json"
        data = base / "data"
        result = run_cli(
            "simulate", "smoke", "--agent", FAULTY, "--defs", str(defs), "--json", str(report), data_dir=data
        )
        assert result.returncode == 1, result.stdout + result.stderr
        conversations = json.loads(report.read_text())["conversations"]
        failed = {c["scenario"]: c["call_id"] for c in conversations if c["verdict"] == "failed"}
        assert set(failed) == {"human", "book"}, conversations
        yield Stored(data, agents, failed)


def _replay_folder(tmp_path: Path, stored: Stored) -> Path:
    """A fresh simulation folder holding only the agents (the generated file goes beside them)."""
    folder = tmp_path / "replay"
    folder.mkdir()
    (folder / "agents.yaml").write_text(stored.agents)
    return folder


def _documents(text: str) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(text)}


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        ("human", "scenario_checks: required_tool transfer_to_human"),
        ("book", "say_do_consistency"),
    ],
)
def test_a_failed_call_becomes_a_test_that_fails_on_the_faulty_agent_and_passes_on_the_fixed_one(
    tmp_path: Path, stored: Stored, scenario: str, reason: str
) -> None:
    call_id = stored.failed[scenario]
    folder = _replay_folder(tmp_path, stored)
    out = folder / "regression.yaml"
    made = run_cli("scenario", "from-call", call_id, "--out", str(out), data_dir=stored.data_dir)
    assert made.returncode == 0, made.stderr
    assert str(out) in " ".join(made.stderr.split())
    documents = _documents(out.read_text())
    sid = documents["scenario"]["id"]
    assert sid == f"from-{call_id.replace('-', '')[-12:]}"
    assert documents["scenario"]["tags"] == ["from-call", FAULTY]
    assert documents["scenario"]["unmocked_tools"] == "error"
    assert documents["suite"]["caller"] == "auto"

    again = run_cli("simulate", str(out), "--agent", FAULTY, "--no-store", data_dir=tmp_path / "d1")
    assert again.returncode == 1, again.stdout + again.stderr
    assert "0 passed, 1 failed, 0 errored of 1" in again.stdout
    assert reason in again.stdout

    fixed = run_cli("simulate", str(out), "--agent", CLEAN, "--no-store", data_dir=tmp_path / "d2")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "1 passed, 0 failed, 0 errored of 1" in fixed.stdout


def test_the_say_do_failure_requires_the_booking_the_agent_claimed(tmp_path: Path, stored: Stored) -> None:
    made = run_cli("scenario", "from-call", stored.failed["book"], data_dir=stored.data_dir)
    assert made.returncode == 0, made.stderr
    documents = _documents(made.stdout)
    assert documents["scenario"]["checks"]["required_tools"] == [
        {"tool": "book_appointment", "arguments": {"time": "15:00"}}
    ]
    assert documents["suite"]["metrics"] == ["say_do_consistency"]
    assert documents["scenario"]["script"]["lines"][0] == "I'd like to book a cleaning."


def test_through_a_running_server_the_call_is_read_over_http(tmp_path: Path, stored: Stored) -> None:
    server = ServerProcess(stored.data_dir)
    server.start()
    try:
        made = run_cli("scenario", "from-call", stored.failed["human"], data_dir=stored.data_dir)
    finally:
        server.stop()
    assert made.returncode == 0, made.stderr
    documents = _documents(made.stdout)
    assert documents["scenario"]["checks"]["end_reason"] == ["transfer"]
    assert "scenario_checks" in documents["suite"]["metrics"]


def test_an_unknown_call_exits_2_naming_it(stored: Stored) -> None:
    for call_id in ("0193b3c2-0000-7000-8000-000000000000", "no-such-call"):
        result = run_cli("scenario", "from-call", call_id, data_dir=stored.data_dir)
        assert result.returncode == 2, result.stdout + result.stderr
        assert call_id in result.stderr


def test_a_call_with_no_caller_turns_exits_2_saying_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    call = {
        "source": "generic",
        "external_id": "voicemail-1",
        "started_at": "2026-03-04T10:30:00Z",
        "turns": [
            {"role": "agent", "text": "Hi, this is Ava from Northside Dental.", "start_s": 0, "end_s": 2}
        ],
    }
    (tmp_path / "call.json").write_text(json.dumps(call))
    assert run_cli("ingest", str(tmp_path / "call.json"), data_dir=data).returncode == 0
    listed = json.loads(run_cli("calls", "list", "--json", data_dir=data).stdout)
    (item,) = listed["items"]
    result = run_cli("scenario", "from-call", item["id"], data_dir=data)
    assert result.returncode == 2
    assert "has no caller turns" in " ".join(result.stderr.split())


def test_with_an_llm_configured_the_inferred_goal_lands_in_the_scenario(stored: Stored) -> None:
    guess = {
        "goal": "Get put through to a human at the clinic.",
        "instructions": "Ask for a person; insist once.",
        "facts": [],
        "caller": "Firm, polite, short answers.",
        "expected_outcome": "The agent transfers the caller to a member of the team.",
    }
    with FakeOpenAIServer() as llm:
        llm.add(json_reply(guess), contains="Read the transcript and describe the caller")
        env = {"CONVOSCOPE_LLM_MODEL": "fake-model", "CONVOSCOPE_LLM_BASE_URL": llm.url}
        made = run_cli("scenario", "from-call", stored.failed["human"], data_dir=stored.data_dir, **env)
        assert made.returncode == 0, made.stderr
        assert len(llm.requests) == 1
        assert "I really want a person." in llm.requests[0].text
        plain = run_cli(
            "scenario", "from-call", stored.failed["human"], "--no-llm", data_dir=stored.data_dir, **env
        )
        assert len(llm.requests) == 1
    scenario = _documents(made.stdout)["scenario"]
    assert scenario["goal"] == guess["goal"]
    assert "Firm, polite, short answers." in scenario["instructions"]
    # the call's own expected outcome wins over the LLM's where it had one; this one had none
    assert scenario["expected_outcome"] == guess["expected_outcome"]
    assert scenario["script"]["lines"] == ["Can I speak to a real person, please?", "I really want a person."]
    assert _documents(plain.stdout)["scenario"]["goal"] != guess["goal"]
