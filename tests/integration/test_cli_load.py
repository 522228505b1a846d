"""``convoscope load`` as a user runs it: a ramp against the reference agent's voice front and its chat
endpoint on loopback, the table, the chart-ready JSON, and the exit status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from convoscope.demo.agent import ReferenceAgentServer
from convoscope.demo.agent.voice import VoiceOptions

from .conftest import run_cli

DEFS = """\
kind: scenario
id: price
goal: Find out what a cleaning costs.
unmocked_tools: pass_through
script:
  lines: ["How much does a cleaning cost?"]
  closing: null
---
kind: agent
id: clinic-voice
connector:
  kind: twilio
  url: {twilio}
  custom_parameters: {{greeting: "Hello, clinic.", replies: "It is eighty dollars. Goodbye."}}
---
kind: agent
id: clinic-chat
connector: {{kind: openai, base_url: "{openai}", model: reference-agent}}
tools_url: {tools}
---
kind: agent
id: nobody
connector: {{kind: twilio, url: "ws://127.0.0.1:9/twilio", connect_timeout_s: 1}}
"""


@pytest.fixture(scope="module")
def agent() -> Iterator[ReferenceAgentServer]:
    with ReferenceAgentServer(voice=VoiceOptions()) as server:
        yield server


@pytest.fixture
def defs(tmp_path: Path, agent: ReferenceAgentServer) -> Path:
    folder = tmp_path / "simulation"
    folder.mkdir()
    text = DEFS.format(twilio=agent.twilio_url, openai=agent.openai_url, tools=agent.tools_url)
    (folder / "defs.yaml").write_text(text)
    return folder


def test_a_voice_ramp_reports_each_step_from_the_recordings(tmp_path: Path, defs: Path) -> None:
    out = tmp_path / "load.json"
    args = ("load", "--agent", "clinic-voice", "--defs", str(defs), "--ramp", "1..2", "--step-s", "2")
    result = run_cli(*args, "--json", str(out), data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "voice load against clinic-voice" in result.stdout
    report = json.loads(out.read_text())
    assert [step["concurrency"] for step in report["steps"]] == [1, 2]
    for step in report["steps"]:
        assert step["calls"] >= step["concurrency"] and step["errored"] == 0
        # One caller line answered per call: 500 ms of silence + 200 ms of processing, from the audio.
        assert step["responses"] == step["calls"]
        assert 0.6 < step["response_gap_s"]["p50"] < 1.0
        assert step["pacing_jitter_ms"]["p99"] < 20
    assert report["steps"][0]["vs_baseline"]["response_gap_p95"] == 1.0


def test_a_chat_ramp_times_each_agent_turn(tmp_path: Path, defs: Path) -> None:
    out = tmp_path / "load.json"
    args = ("load", "--agent", "clinic-chat", "--defs", str(defs), "--ramp", "2..8", "--step-s", "1")
    result = run_cli(*args, "--json", str(out), data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["mode"] == "chat" and [s["concurrency"] for s in report["steps"]] == [2, 4, 8]
    for step in report["steps"]:
        assert step["errored"] == 0 and step["turns"] >= step["calls"] >= step["concurrency"]
        assert 0 < step["turn_latency_s"]["p50"] < 1.0


def test_an_unreachable_agent_exits_1_and_a_bad_ramp_exits_2(tmp_path: Path, defs: Path) -> None:
    out = tmp_path / "down.json"
    args = (
        "load",
        "--agent",
        "nobody",
        "--defs",
        str(defs),
        "--ramp",
        "1",
        "--step-s",
        "1",
        "--json",
        str(out),
    )
    down = run_cli(*args, data_dir=tmp_path)
    assert down.returncode == 1, down.stdout + down.stderr
    (step,) = json.loads(out.read_text())["steps"]
    assert step["errored"] == step["calls"] >= 1 and step["errors"] == {"unreachable": step["calls"]}
    assert step["dropped"] == step["calls"]
    bad = run_cli("load", "--agent", "clinic-voice", "--defs", str(defs), "--ramp", "9..3", data_dir=tmp_path)
    assert bad.returncode == 2 and "LOW <= HIGH" in bad.stderr
