"""``convoscope eval`` as a user runs it: on the store directly, and through a running server."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from convoscope.store.metadata import MetadataStore
from convoscope.testing import call_payload
from convoscope.testing.openai_server import FakeOpenAIServer, json_reply
from integration.conftest import KEY, ServerProcess, run_cli

from .judge_support import fake_llm

__all__ = ["fake_llm"]

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
    assert run_cli("keys", "create", "--project", "default", data_dir=tmp_path / "data").returncode == 0
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


def test_calibrate_then_a_direct_run_stores_results_with_the_agreement(
    tmp_path: Path, fake_llm: FakeOpenAIServer
) -> None:
    """A custom metric kept in project settings, calibrated, then evaluated by ``convoscope eval``."""
    data_dir = tmp_path / "data"
    name = f"reads_back_{uuid.uuid4().hex[:8]}"
    assert run_cli("ingest", str(_calls(tmp_path / "calls.json")), data_dir=data_dir).returncode == 0
    with MetadataStore(f"sqlite:///{data_dir / 'metadata.db'}") as meta:
        project_id = meta.ensure_project("default").id
        definition = {"name": name, "rubric": "The agent reads the card number back.", "output": "binary"}
        meta.update_project_settings(project_id, ("custom_metrics", name), definition)
        meta.update_project_settings(project_id, ("agents", "support"), {"metrics": {name: {}}})
    fake_llm.add(json_reply({"passed": True, "reasoning": "read", "quotes": []}), contains="labelled-yes")
    fake_llm.add(json_reply({"passed": False, "reasoning": "not read", "quotes": []}), contains="labelled-no")
    fake_llm.add(json_reply({"passed": True, "reasoning": "read back", "quotes": []}), contains="4111")
    turn = {"role": "user", "text": "", "start_s": 0.0, "end_s": 1.0}
    labels = [
        {"call": call_payload(external_id="l1", turns=[{**turn, "text": "labelled-yes"}]), "label": "pass"},
        {"call": call_payload(external_id="l2", turns=[{**turn, "text": "labelled-no"}]), "label": "pass"},
        {"call": call_payload(external_id="l3", turns=[{**turn, "text": "labelled-no"}]), "label": "fail"},
    ]
    labels_file = tmp_path / "labels.jsonl"
    labels_file.write_text("\n".join(json.dumps(entry) for entry in labels))
    llm = {"CONVOSCOPE_LLM_BASE_URL": fake_llm.url, "CONVOSCOPE_LLM_MODEL": "judge-model"}
    calibrated = run_cli("calibrate", name, "--labels", str(labels_file), data_dir=data_dir, **llm)
    assert calibrated.returncode == 0, calibrated.stderr
    with MetadataStore(f"sqlite:///{data_dir / 'metadata.db'}") as meta:
        agreement = meta.project_settings(project_id)["calibration"][name]
    # human pass, pass, fail; judge pass, fail, fail: p_o = 2/3, p_e = (2*1 + 1*2)/9 = 4/9, kappa = 0.4
    assert agreement["n"] == 3 and agreement["kappa"] == pytest.approx(0.4, abs=1e-6)

    evaluated = run_cli("eval", "--agent", "support", data_dir=data_dir, **llm)
    assert evaluated.returncode == 0, evaluated.stderr
    result = _scores(data_dir)["support"][name]
    assert result["value"] is True
    assert result["evidence"]["calibration"] == agreement
