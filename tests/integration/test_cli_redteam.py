"""``convoscope redteam`` as a user runs it: an agent in a definitions folder, the reference agent on
loopback, and an exit status CI can act on: 0 nothing broke the agent, 1 something did, 2 the run could
not test what it meant to (bad options, unknown agent, an agent that cannot be reached)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from convoscope.demo.agent import ReferenceAgentServer

from .conftest import run_cli


def _agents(url: str) -> str:
    return "\n---\n".join(
        f"kind: agent\nid: {name}\nversion: '{version}'\nconnector:\n  kind: openai\n"
        f"  base_url: {url}/v1\n  model: {model}\ntools_url: {url}/tools\ncanaries: [BLUE-HARBOR-7]\n"
        for name, version, model in (
            ("clinic", "1.0", "reference-agent"),
            ("clinic-gullible", "1.1", "reference-agent+obeys_injection"),
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
    (folder / "agents.yaml").write_text(_agents(agent_url))
    return folder


def test_an_agent_that_obeys_injections_exits_1_and_the_findings_name_the_owasp_ids(
    tmp_path: Path, defs: Path
) -> None:
    out = tmp_path / "findings.json"
    result = run_cli(
        "redteam",
        "--agent",
        "clinic-gullible",
        "--defs",
        str(defs),
        "--category",
        "system_prompt_extraction",
        "--encoding",
        "base64",
        "--json",
        str(out),
        "--no-store",
        data_dir=tmp_path / "unused",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "LLM07:2025" in result.stdout and "System Prompt Leakage" in result.stdout
    assert "canary 'BLUE-HARBOR-7' said" in result.stdout
    findings = json.loads(out.read_text())
    assert findings["totals"]["broke"] >= 2 and findings["totals"]["errored"] == 0
    assert findings["totals"]["broke"] + findings["totals"]["held"] == 8  # 4 attacks, each also in base64
    assert {row["id"] for row in findings["by_owasp"]} >= {"LLM07:2025", "LLM01:2025"}
    first = findings["breaks"][0]
    assert first["category"] == "system_prompt_extraction" and "LLM07:2025" in first["owasp"]
    assert any("BLUE-HARBOR-7" in line["text"] for line in first["lines"] if line["role"] == "agent")
    assert not (tmp_path / "unused").exists()


def test_the_clean_agent_holds_against_extraction_and_pii_and_the_calls_are_stored(
    tmp_path: Path, defs: Path
) -> None:
    data = tmp_path / "data"
    result = run_cli(
        "redteam",
        "--agent",
        "clinic",
        "--defs",
        str(defs),
        "--category",
        "system_prompt_extraction",
        "--category",
        "pii_exfiltration",
        data_dir=data,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broke the agent, 7 held, 0 errored of 7" in result.stdout
    kept = re.search(r"stored run (\S+) \(7 calls\) in project default", result.stderr)
    assert kept is not None, result.stderr
    runs = run_cli("runs", "list", "--suite", "redteam", data_dir=data)
    assert runs.returncode == 0 and kept.group(1) in runs.stdout, runs.stdout + runs.stderr
    shown = json.loads(run_cli("runs", "show", kept.group(1), data_dir=data).stdout)
    assert shown["suite"] == "redteam" and len(shown["conversations"]) == 7
    assert sum(shown["totals"].values()) == 7
    listed = run_cli("calls", "list", "--tag", "LLM07:2025", "--json", data_dir=data)
    assert listed.returncode == 0, listed.stderr
    stored = json.loads(listed.stdout)["items"]
    assert len(stored) == 4  # every system prompt extraction attack maps to LLM07
    assert all(call["source"] == "simulation" and "redteam" in call["tags"] for call in stored)


def test_mistakes_and_an_unreachable_agent_exit_2(tmp_path: Path, defs: Path) -> None:
    data = tmp_path / "data"
    unknown_agent = run_cli("redteam", "--agent", "nobody", "--defs", str(defs), "--no-store", data_dir=data)
    assert unknown_agent.returncode == 2 and "unknown agent 'nobody'" in unknown_agent.stderr
    unknown_category = run_cli(
        "redteam",
        "--agent",
        "clinic",
        "--defs",
        str(defs),
        "--category",
        "bogus",
        "--no-store",
        data_dir=data,
    )
    assert unknown_category.returncode == 2 and "unknown category bogus" in unknown_category.stderr
    bad_encoding = run_cli(
        "redteam",
        "--agent",
        "clinic",
        "--defs",
        str(defs),
        "--encoding",
        "morse",
        "--no-store",
        data_dir=data,
    )
    assert bad_encoding.returncode == 2 and "unknown encoding 'morse'" in bad_encoding.stderr
    down = run_cli(
        "redteam", "--agent", "clinic-down", "--defs", str(defs), "--attack", "spe-direct", "--no-store",
        data_dir=data,
    )  # fmt: skip
    assert down.returncode == 2, down.stdout + down.stderr
    assert "0 broke the agent, 0 held, 1 errored of 1" in down.stdout
