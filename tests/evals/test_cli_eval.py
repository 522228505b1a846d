"""``convoscope eval`` as a user runs it: on the store directly, and through a running server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from convoscope.testing import call_payload
from integration.conftest import KEY, ServerProcess, run_cli

LEAK = [{"role": "agent", "text": "Your card is 4111 1111 1111 1111.", "start_s": 0.0, "end_s": 2.0}]
PROFILES = """
agents:
  support:
    metrics:
      forbidden_phrases: {phrases: ["your card is"]}
      pii_leakage: {kinds: [email]}
"""


def _calls(path: Path) -> Path:
    calls = [
        call_payload(external_id="a", agent_id="support", turns=LEAK),
        call_payload(external_id="b", agent_id="other", turns=LEAK),
    ]
    path.write_text(json.dumps(calls))
    return path


def _scores(data_dir: Path) -> dict[str, dict[str, Any]]:
    """Scores of every stored call by agent, read back with ``calls list`` and ``calls show --json``."""
    listed = run_cli("calls", "list", "--json", data_dir=data_dir)
    assert listed.returncode == 0, listed.stderr
    found: dict[str, dict[str, Any]] = {}
    for item in json.loads(listed.stdout)["items"]:
        shown = run_cli("calls", "show", item["id"], "--json", data_dir=data_dir)
        assert shown.returncode == 0, shown.stderr
        found[item["agent_id"]] = {s["metric"]: s for s in json.loads(shown.stdout)["scores"]}
    return found


def test_direct_run_with_profiles_and_metric_selection(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert run_cli("ingest", str(_calls(tmp_path / "calls.json")), data_dir=data_dir).returncode == 0
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(PROFILES)
    result = run_cli("eval", "--agents-file", str(profiles), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "evaluated 2 of 2 calls" in result.stdout
    scores = _scores(data_dir)
    assert set(scores["support"]) == {"forbidden_phrases", "pii_leakage"}
    assert scores["support"]["pii_leakage"]["value"] == 0  # only emails for this agent
    assert scores["other"]["pii_leakage"]["value"] == 1  # the default set
    assert "latency" in scores["other"]

    again = run_cli("eval", "--agent", "other", "--metric", "pii_leakage", data_dir=data_dir)
    assert again.returncode == 0 and "evaluated 1 of 1 calls" in again.stdout
    assert (
        _scores(data_dir)["other"]["pii_leakage"]["evaluated_at"]
        > scores["other"]["pii_leakage"]["evaluated_at"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metric", "nope"], "unknown metric 'nope'"),
        (["--since", "yesterday"], "--since 'yesterday' is not an ISO date"),
        (["--agents-file", "missing.yaml"], "missing.yaml: cannot read"),
    ],
)
def test_bad_input_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli("eval", *args, data_dir=tmp_path / "data")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.stderr


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(data_dir=tmp_path / "data")
    yield proc
    proc.stop()


def test_through_a_running_server(tmp_path: Path, server: ServerProcess) -> None:
    server.start()
    auth = {"Authorization": f"Bearer {KEY}"}
    posted = httpx.post(
        f"{server.url}/api/v1/calls", json=json.loads(_calls(tmp_path / "c.json").read_text()), headers=auth
    )
    assert posted.status_code == 202
    ids = posted.json()["ids"]
    deadline = time.monotonic() + 60
    while True:  # the server evaluates freshly ingested calls by itself
        details = [httpx.get(f"{server.url}/api/v1/calls/{i}", headers=auth).json() for i in ids]
        if all(
            any(j["kind"] == "evals.run" and j["status"] == "done" for j in d.get("jobs", []))
            for d in details
        ):
            break
        assert time.monotonic() < deadline, details
        time.sleep(0.3)
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(PROFILES)
    result = run_cli("eval", "--agents-file", str(profiles), "--agent", "support", data_dir=server.data_dir)
    assert result.returncode == 0, result.stderr
    assert f"evaluated 1 of 1 calls in {server.url}" in result.stdout
    stored = httpx.get(f"{server.url}/api/v1/agents/support/profile", headers=auth).json()
    assert stored["metrics"]["pii_leakage"] == {"kinds": ["email"]}
    detail = httpx.get(f"{server.url}/api/v1/calls/{ids[0]}", headers=auth).json()
    scores = {s["metric"]: s for s in detail["scores"]}
    assert scores["forbidden_phrases"]["value"] == 1 and scores["pii_leakage"]["value"] == 0
