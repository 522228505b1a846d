"""Calibration against human labels: kappa checked by hand, a judge run end to end, the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from convoscope.cli.main import app
from convoscope.errors import InputError
from convoscope.evals.base import AgentProfile, EvalContext
from convoscope.evals.calibration import (
    attach_calibration,
    calibrate,
    cohen_kappa,
    compare,
    normalise_label,
    read_labels,
)
from convoscope.evals.judges import ExpectedOutcome
from convoscope.evals.llm import JudgeClient
from convoscope.model import Call, MetricResult, MetricSource
from convoscope.store.metadata import MetadataStore
from convoscope.testing import call_payload, make_call
from convoscope.testing.openai_server import FakeOpenAIServer, Reply, json_reply

from .judge_support import fake_llm, judge

__all__ = ["fake_llm", "judge"]


def result(value: Any, passed: bool | None, error: str | None = None) -> MetricResult:
    return MetricResult(
        call_id="c", metric="m", value=value, passed=passed, source=MetricSource.JUDGE, error=error
    )


def test_kappa_of_two_labels_matches_the_hand_computation() -> None:
    # p_o = 7/10; human pass 6 fail 4, judge pass 5 fail 5: p_e = (6*5 + 4*5)/100 = 0.5;
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    pairs = [("pass", "pass")] * 4 + [("pass", "fail")] * 2 + [("fail", "pass")] + [("fail", "fail")] * 3
    assert cohen_kappa(pairs) == pytest.approx(0.4)


def test_kappa_of_three_labels_matches_the_hand_computation() -> None:
    # p_o = 7/10; marginals a 4/4, b 3/3, c 3/3: p_e = (16 + 9 + 9)/100 = 0.34; kappa = 0.36/0.66 = 6/11
    pairs = (
        [("a", "a")] * 3 + [("a", "b")] + [("b", "b")] * 2 + [("b", "c")] + [("c", "c")] * 2 + [("c", "a")]
    )
    assert cohen_kappa(pairs) == pytest.approx(6 / 11)


def test_kappa_edge_cases() -> None:
    assert cohen_kappa([]) is None
    assert cohen_kappa([("pass", "pass")] * 5) is None  # one label only: chance agreement is total
    assert cohen_kappa([("pass", "fail"), ("fail", "pass")]) == pytest.approx(-1.0)


def test_compare_counts_errors_apart_and_builds_the_confusion_matrix() -> None:
    human = ["pass", "pass", "fail", "fail", "yes", "pass"]
    results = [
        result("pass", True),
        result("fail", False),
        result("fail", False),
        result("review", None),
        result(True, True),
        result(None, None, error="judge reply is not a JSON object"),
    ]
    agreement = compare("m", "1", human, results)
    assert agreement.compared_on == "passed"
    assert (agreement.n, agreement.errors) == (5, 1)
    assert agreement.accuracy == pytest.approx(3 / 5)
    assert agreement.labels == ["fail", "pass", "review"]
    assert agreement.confusion == {
        "fail": {"fail": 1, "pass": 0, "review": 1},
        "pass": {"fail": 1, "pass": 2, "review": 0},
        "review": {"fail": 0, "pass": 0, "review": 0},
    }
    # human pass 3 fail 2, judge pass 2 fail 2 review 1: p_e = (3*2 + 2*2)/25 = 0.4; kappa = 0.2/0.6
    assert agreement.kappa == pytest.approx(1 / 3)


def test_compare_on_values_for_scores_and_labels() -> None:
    agreement = compare("csat", "1", [4, "5", 3.0], [result(4, True), result(5.0, True), result(2, False)])
    assert agreement.compared_on == "value"
    assert agreement.accuracy == pytest.approx(2 / 3)
    assert normalise_label(4.0) == "4" and normalise_label(" Booking ") == "booking"


def test_calibrate_runs_the_judge_on_labelled_calls(fake_llm: FakeOpenAIServer, judge: JudgeClient) -> None:
    verdicts = ["pass", "pass", "fail", "fail", "pass", "review"]
    human = ["pass", "fail", "fail", "fail", "pass", "pass"]
    calls = [make_call(id=f"call-{n}", external_id=f"ext-{n}", metadata={"n": n}) for n in range(6)]
    for number, verdict in enumerate(verdicts):
        fake_llm.add(
            json_reply({"verdict": verdict, "reasoning": f"call {number}", "quotes": []}),
            when=lambda request, n=number: f"marker-{n}" in request.text,
        )
    labelled = list(zip(calls, human, strict=True))

    def context_for(call: Call) -> EvalContext:
        outcome = f"The order is found (marker-{call.metadata['n']})."
        return EvalContext(profile=AgentProfile(expected_outcome=outcome), judge=judge)

    seen: list[int] = []
    agreement, results = calibrate(
        ExpectedOutcome(), labelled, context_for, max_workers=3, progress=seen.append
    )
    assert [r.call_id for r in results] == [c.id for c in calls]
    assert [r.value for r in results] == verdicts
    assert seen == [1, 2, 3, 4, 5, 6]
    assert (agreement.n, agreement.errors, agreement.compared_on) == (6, 0, "passed")
    assert agreement.accuracy == pytest.approx(4 / 6)
    # human pass 3 fail 3; judge pass 3 fail 2 review 1: p_e = (3*3 + 3*2)/36 = 15/36;
    # kappa = (24/36 - 15/36) / (21/36) = 3/7
    assert agreement.kappa == pytest.approx(3 / 7)
    assert agreement.confusion["pass"] == {"fail": 0, "pass": 2, "review": 1}


def test_attach_calibration_adds_the_stored_agreement_to_that_metric_only() -> None:
    stored = {"calibration": {"m": {"kappa": 0.4, "accuracy": 0.7, "n": 10}}}
    other = result(1, True).model_copy(update={"metric": "other"})
    attached = attach_calibration([result("pass", True), other], stored)
    assert attached[0].evidence["calibration"] == {"kappa": 0.4, "accuracy": 0.7, "n": 10}
    assert attached[1] == other
    assert attach_calibration([other], {}) == [other]


def test_labels_files_and_their_errors(tmp_path: Path) -> None:
    good = tmp_path / "labels.jsonl"
    inline = call_payload(external_id="inline-1")
    good.write_text(
        "\n".join(
            [json.dumps({"call_id": "stored-1", "label": "PASS"}), json.dumps({"call": inline, "label": 0})]
        )
    )
    first, second = read_labels(good)
    assert (first.call_id, first.label, first.call) == ("stored-1", "pass", None)
    assert second.label == "fail" and second.call is not None and second.call.external_id == "inline-1"
    cases = {
        "a: 1": "expected a list of labelled calls",
        "- {call_id: x}": "entry 1: needs a label",
        "- {label: pass}": "entry 1: needs a call_id (a stored call) or a call (inline)",
        "- {label: pass, call: {source: nowhere}}": "entry 1: call is invalid at",
        "[]": "no labelled calls",
    }
    for text, message in cases.items():
        path = tmp_path / "bad.yaml"
        path.write_text(text)
        with pytest.raises(InputError, match=re.escape(message)):
            read_labels(path)
    with pytest.raises(InputError, match="cannot read"):
        read_labels(tmp_path / "missing.jsonl")


def said(external_id: str, words: str) -> dict[str, Any]:
    """A call whose caller says ``words``, which the fake server matches on."""
    turn = {"role": "user", "text": f"My question: {words}", "start_s": 0.0, "end_s": 1.0}
    return call_payload(external_id=external_id, turns=[turn])


def test_cli_reports_and_stores_the_agreement(fake_llm: FakeOpenAIServer, tmp_path: Path) -> None:
    fake_llm.add(json_reply({"verdict": "pass", "reasoning": "ok", "quotes": []}), contains="good-call")
    fake_llm.add(Reply(content="not json"), contains="broken-call")
    fake_llm.add(json_reply({"verdict": "fail", "reasoning": "no", "quotes": []}))
    labels = tmp_path / "labels.jsonl"
    entries = [
        {"call": said("a", "good-call"), "label": "pass"},
        {"call": said("b", "other one"), "label": "fail"},
        {"call": said("c", "other two"), "label": "pass"},
        {"call": said("d", "broken-call"), "label": "pass"},
    ]
    labels.write_text("\n".join(json.dumps(e) for e in entries))
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text("agents:\n  test-agent:\n    expected_outcome: The order status is given.\n")
    data_dir = tmp_path / "data"
    env = {
        "CONVOSCOPE_LLM_BASE_URL": fake_llm.url,
        "CONVOSCOPE_LLM_MODEL": "judge-model",
        "CONVOSCOPE_DATA_DIR": str(data_dir),
    }
    arguments = ["calibrate", "expected_outcome", "--labels", str(labels), "--profiles", str(profiles)]
    done = CliRunner().invoke(app, arguments, env=env)
    assert done.exit_code == 0, done.output
    assert "accuracy 0.667, Cohen's kappa 0.400 over 3 calls" in done.stdout
    assert "1 errors" in done.stdout
    with MetadataStore(f"sqlite:///{data_dir / 'metadata.db'}") as meta:
        project = meta.get_project("default")
        assert project is not None
        stored = meta.project_settings(project.id)["calibration"]["expected_outcome"]
    assert (stored["n"], stored["errors"], stored["model"]) == (3, 1, "judge-model")
    assert stored["accuracy"] == pytest.approx(2 / 3, abs=1e-6)
    assert stored["labels_file"] == str(labels)
    assert len(fake_llm.requests) == 4
    assert all("The order status is given." in r.text for r in fake_llm.requests)


def test_cli_rejects_a_judge_metric_without_a_judge(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"call_id": "x", "label": "pass"}))
    unset: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith(("CONVOSCOPE_", "OPENAI_"))
    }
    env = {**unset, "CONVOSCOPE_DATA_DIR": str(tmp_path / "data")}
    done = CliRunner().invoke(app, ["calibrate", "csat", "--labels", str(labels)], env=env)
    assert done.exit_code == 1
    assert "csat is a judge metric and no LLM judge is configured" in done.stderr


STORED_CALLS_SCRIPT = """
import json, sys
from pathlib import Path
from typer.testing import CliRunner
from convoscope.cli.main import app

folder = Path(sys.argv[1])
runner = CliRunner()
ingested = runner.invoke(app, ["ingest", str(folder / "calls.jsonl")])
assert ingested.exit_code == 0, ingested.output
listed = runner.invoke(app, ["calls", "list", "--json"])
ids = {item["external_id"]: item["id"] for item in json.loads(listed.stdout)["items"]}
labels = [{"call_id": ids["s1"], "label": "pass"}, {"call_id": ids["s2"], "label": "pass"}]
(folder / "labels.jsonl").write_text("\\n".join(json.dumps(entry) for entry in labels))
done = runner.invoke(app, ["calibrate", "expected_outcome", "--labels", str(folder / "labels.jsonl"),
                           "--agent", "test-agent", "--profiles", str(folder / "profiles.yaml")])
print(done.stdout)
sys.exit(done.exit_code)
"""


def test_cli_reads_labelled_calls_from_the_store(fake_llm: FakeOpenAIServer, tmp_path: Path) -> None:
    """In its own process: the embedded store allows one data directory per process."""
    fake_llm.add(json_reply({"verdict": "pass", "reasoning": "ok", "quotes": []}), contains="first")
    fake_llm.add(json_reply({"verdict": "fail", "reasoning": "no", "quotes": []}), contains="second")
    calls = [said("s1", "first"), said("s2", "second")]
    (tmp_path / "calls.jsonl").write_text("\n".join(json.dumps(call) for call in calls))
    (tmp_path / "profiles.yaml").write_text("agents:\n  test-agent:\n    expected_outcome: Answered.\n")
    env = {
        **os.environ,
        "CONVOSCOPE_LLM_BASE_URL": fake_llm.url,
        "CONVOSCOPE_LLM_MODEL": "judge-model",
        "CONVOSCOPE_DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "-c", STORED_CALLS_SCRIPT, str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # human: pass twice; judge: pass, fail. p_o = 1/2, p_e = (2*1 + 0*1)/4 = 1/2, kappa = 0
    assert "accuracy 0.500, Cohen's kappa 0.000 over 2 calls" in done.stdout
    assert len(fake_llm.requests) == 2


def test_cli_calibrates_on_the_agents_own_judge_without_a_configured_one(
    fake_llm: FakeOpenAIServer, tmp_path: Path
) -> None:
    fake_llm.add(json_reply({"verdict": "pass", "reasoning": "ok", "quotes": []}), contains="good-call")
    fake_llm.add(json_reply({"verdict": "fail", "reasoning": "no", "quotes": []}))
    labels = tmp_path / "labels.jsonl"
    entries = [
        {"call": said("a", "good-call"), "label": "pass"},
        {"call": said("b", "other"), "label": "pass"},
    ]
    labels.write_text("\n".join(json.dumps(e) for e in entries))
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(
        "agents:\n  test-agent:\n    expected_outcome: Answered.\n"
        f"    judge_base_url: {fake_llm.url}\n    judge_model: agent-model\n"
        "    judge_api_key_env: CONVOSCOPE_TEST_CALIBRATION_KEY\n"
    )
    unset: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith(("CONVOSCOPE_", "OPENAI_"))
    }
    env = {
        **unset,
        "CONVOSCOPE_DATA_DIR": str(tmp_path / "data"),
        "CONVOSCOPE_TEST_CALIBRATION_KEY": "sk-calibration-agent",
    }
    arguments = ["calibrate", "expected_outcome", "--labels", str(labels), "--profiles", str(profiles)]
    done = CliRunner().invoke(app, [*arguments, "--agent", "test-agent"], env=env)
    assert done.exit_code == 0, done.output
    assert "accuracy 0.500" in done.stdout
    assert {r.body["model"] for r in fake_llm.requests} == {"agent-model"}
    assert {r.headers["authorization"] for r in fake_llm.requests} == {"Bearer sk-calibration-agent"}
    with MetadataStore(f"sqlite:///{tmp_path / 'data' / 'metadata.db'}") as meta:
        project = meta.get_project("default")
        assert project is not None
        stored = meta.project_settings(project.id)["calibration"]["expected_outcome"]
    assert stored["model"] == "agent-model"
