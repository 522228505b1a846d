"""The CI gate's verdicts on real runs: scripted callers against the reference agent over loopback HTTP,
judge metrics asked k times of a real OpenAI-protocol server that disagrees with itself, regressions
against a baseline run with the calls behind them, and thresholds folded from series points.

The renderings (JUnit, Markdown, annotations) are tested in ``test_gate_reports.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from convoscope.demo.agent import ReferenceAgentServer
from convoscope.evals.llm import JudgeClient, JudgeConfig
from convoscope.model import Call
from convoscope.simulate.connectors.openai_chat import OpenAIChatConnector
from convoscope.simulate.definitions import AgentSpec, ConnectorSpec, Definitions
from convoscope.simulate.gate import (
    GateReport,
    Threshold,
    evaluate_threshold,
    gate_verdict,
    judge_runs_scorer,
    suite_outcome,
)
from convoscope.simulate.loader import load_definitions
from convoscope.simulate.runner import ConversationResult, RunReport, Scorer, default_scorer, run_suite
from convoscope.store.base import SeriesPoint
from convoscope.testing.openai_server import FakeOpenAIServer, json_reply

DEFINITIONS = """\
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
---
kind: scenario
id: price-again
goal: Find out what a cleaning costs, again.
expected_outcome: OUTCOME-DISPUTED the caller learns the price.
unmocked_tools: pass_through
checks:
  required_tools: [{tool: get_price}]
script:
  lines: ["What do you charge for a cleaning?"]
  replies:
    - {when: "anything else", say: "No, thanks, bye.", hang_up: true}
---
kind: scenario
id: human
goal: Speak to a person.
expected_outcome: OUTCOME-REFUSED the caller is transferred.
unmocked_tools: pass_through
checks:
  required_tools: [{tool: transfer_to_human}]
  end_reason: [transfer]
script:
  lines: ["Can I speak to a real person, please?", "I really want a person."]
---
kind: suite
id: judged
scenarios: [price, price-again, human]
metrics: [expected_outcome]
---
kind: suite
id: smoke
scenarios: [price, human]
iterations: 4
metrics: [tool_call_success]
"""


@pytest.fixture(scope="module")
def agent_url() -> Iterator[str]:
    with ReferenceAgentServer() as server:
        yield server.url


@pytest.fixture(scope="module")
def definitions(tmp_path_factory: pytest.TempPathFactory) -> Definitions:
    folder = tmp_path_factory.mktemp("defs")
    (folder / "defs.yaml").write_text(DEFINITIONS)
    return load_definitions([folder])


def _stored(call: Call) -> Call:
    """The identity a store gives a call, so reports can name and link it."""
    return call.model_copy(update={"id": str(uuid.uuid4())})


def _run(
    definitions: Definitions, suite_id: str, url: str, model: str, *, scorer: Scorer | None = None
) -> RunReport:
    suite = definitions.suites[suite_id]
    spec = AgentSpec(
        id=model.replace("+", "-"),
        version=model,
        connector=ConnectorSpec(kind="openai", base_url=f"{url}/v1", model=model),
        tools_url=f"{url}/tools",
    )

    async def go() -> RunReport:
        connector = OpenAIChatConnector(base_url=f"{url}/v1", model=model)
        try:
            return await run_suite(
                definitions,
                suite,
                spec,
                connector,
                scorer=scorer or default_scorer(suite),
                prepare=_stored,
            )
        finally:
            await connector.aclose()

    return asyncio.run(go())


def _verdict(verdict: str) -> dict[str, object]:
    return {"verdict": verdict, "reasoning": "scripted", "quotes": []}


def _judge(server: FakeOpenAIServer, cache: Path | None) -> JudgeClient:
    return JudgeClient(
        JudgeConfig(base_url=server.url, model="fake", max_retries=0, backoff_initial_s=0.0, cache_path=cache)
    )


# ----- judge metrics asked k times


@pytest.fixture
def disagreeing_judge() -> Iterator[FakeOpenAIServer]:
    """A judge that passes one scenario, fails another, and answers pass, fail, pass about the third."""
    with FakeOpenAIServer() as server:
        server.add(json_reply(_verdict("pass")), contains="OUTCOME-AGREED")
        server.add(json_reply(_verdict("fail")), contains="OUTCOME-REFUSED")
        server.add(
            [json_reply(_verdict("pass")), json_reply(_verdict("fail")), json_reply(_verdict("pass"))],
            contains="OUTCOME-DISPUTED",
        )
        yield server


def test_judge_runs_that_disagree_make_a_split_verdict_which_does_not_fail_the_gate(
    definitions: Definitions, agent_url: str, disagreeing_judge: FakeOpenAIServer, tmp_path: Path
) -> None:
    with _judge(disagreeing_judge, tmp_path / "judge.db") as judge:
        scorer = judge_runs_scorer(definitions.suites["judged"], judge=judge, runs=3)
        report = _run(definitions, "judged", agent_url, "reference-agent+never_transfers", scorer=scorer)
    verdicts = {r.item.scenario.id: gate_verdict(r) for r in report.results}
    assert verdicts == {"price": "passed", "price-again": "split", "human": "failed"}
    asked = [r.text for r in disagreeing_judge.requests]
    assert sum("OUTCOME-DISPUTED" in text for text in asked) == 3
    assert sum("OUTCOME-AGREED" in text for text in asked) == 3
    disputed = next(r for r in report.results if r.item.scenario.id == "price-again")
    judged = next(s for s in disputed.scores if s.metric == "expected_outcome")
    assert judged.passed is None and judged.params["k"] == 3
    # The run's own verdict does not count a split as a failure, and neither does the gate...
    assert disputed.verdict == "passed"
    outcome = suite_outcome(report)
    split = next(case for case in outcome.cases if case.verdict == "split")
    assert [(s.metric, s.passed, s.failed) for s in split.split] == [("expected_outcome", 2, 1)]
    assert outcome.totals() == {"passed": 1, "failed": 1, "split": 1}
    only_split = GateReport(suites=[outcome])
    only_split.suites[0].cases = [case for case in outcome.cases if case.verdict != "failed"]
    assert only_split.exit_code() == 0
    # ...unless asked to.
    assert GateReport(suites=only_split.suites, split_fails=True).exit_code() == 1
    assert GateReport(suites=[suite_outcome(report)]).exit_code() == 1


def test_each_judge_run_is_its_own_cached_sample(
    definitions: Definitions, agent_url: str, disagreeing_judge: FakeOpenAIServer, tmp_path: Path
) -> None:
    cache = tmp_path / "judge.db"
    with _judge(disagreeing_judge, cache) as judge:
        scorer = judge_runs_scorer(definitions.suites["judged"], judge=judge, runs=3)
        first = _run(definitions, "judged", agent_url, "reference-agent", scorer=scorer)
    sent = len(disagreeing_judge.requests)
    assert sent == 9  # three scenarios, three samples each
    with _judge(disagreeing_judge, cache) as judge:
        scorer = judge_runs_scorer(definitions.suites["judged"], judge=judge, runs=3)
        again = [ConversationResult(r.item, r.outcome, scorer(r.outcome.call)) for r in first.results]
    # Scoring the same calls again is answered from the cache, sample by sample: the three distinct
    # answers about the disputed scenario are kept apart, not collapsed into the first one.
    assert len(disagreeing_judge.requests) == sent
    verdicts = [{r.item.scenario.id: gate_verdict(r) for r in run} for run in (first.results, again)]
    assert verdicts[0] == verdicts[1] == {"price": "passed", "price-again": "split", "human": "failed"}


def test_one_judge_run_is_the_default_scorer(
    definitions: Definitions, agent_url: str, disagreeing_judge: FakeOpenAIServer
) -> None:
    with _judge(disagreeing_judge, None) as judge:
        scorer = judge_runs_scorer(definitions.suites["judged"], judge=judge, runs=1)
        report = _run(definitions, "judged", agent_url, "reference-agent", scorer=scorer)
    assert len(disagreeing_judge.requests) == 3
    assert {r.item.scenario.id: gate_verdict(r) for r in report.results}["price-again"] == "passed"
    with pytest.raises(ValueError, match="judge runs"):
        judge_runs_scorer(definitions.suites["judged"], judge=None, runs=0)


# ----- regressions against a baseline


def test_a_regression_names_the_metric_the_scenario_and_the_calls_behind_them(
    definitions: Definitions, agent_url: str
) -> None:
    baseline = _run(definitions, "smoke", agent_url, "reference-agent")
    candidate = _run(definitions, "smoke", agent_url, "reference-agent+never_transfers")
    outcome = suite_outcome(candidate, baseline=baseline.to_json(), server_url="http://cs.example:8000/")
    named = {(r.kind, r.name) for r in outcome.regressions}
    assert named == {
        ("metric", "(conversation passed)"),
        ("metric", "scenario_checks"),
        ("scenario", "human"),
    }
    failed_ids = {r.outcome.call.id for r in candidate.results if r.verdict == "failed"}
    assert len(failed_ids) == 4
    for regression in outcome.regressions:
        assert {case.call_id for case in regression.cases} == failed_ids
        for case in regression.cases:
            assert case.url == f"http://cs.example:8000/calls/{case.call_id}"
            assert case.external_id.endswith(f":human:neutral:{case.iteration}")
            assert any("required_tool" in check for f in case.failed for check in f.checks)
    assert GateReport(suites=[outcome]).exit_code() == 1
    same = suite_outcome(baseline, baseline=baseline.to_json())
    assert same.regressions == [] and GateReport(suites=[same]).exit_code() == 0
    assert [case.name for case in same.cases][:4] == ["neutral #1", "neutral #2", "neutral #3", "neutral #4"]


def test_an_unreachable_agent_makes_the_gate_exit_2(definitions: Definitions, agent_url: str) -> None:
    report = _run(definitions, "smoke", agent_url, "reference-agent+http_500")
    outcome = suite_outcome(report)
    assert {case.verdict for case in outcome.cases} == {"errored"}
    assert all(case.error_kind for case in outcome.cases)
    assert GateReport(suites=[outcome]).exit_code() == 2


# ----- thresholds


def test_thresholds_are_read_as_pass_rates_means_or_columns() -> None:
    assert Threshold.parse("tool_call_success>=0.95").field == "passed:tool_call_success"
    assert Threshold.parse("passed:expected_outcome >= 90%").value == pytest.approx(0.9)
    mean = Threshold.parse("metric:csat>4")
    assert (mean.field, mean.op, mean.value, mean.describes) == ("metric:csat", ">", 4.0, "mean of csat")
    assert Threshold.parse("duration_s<=300").field == "duration_s"
    assert Threshold.parse("calls>=1e2").value == 100.0
    for bad in ("tool_call_success", "x=>1", ">=0.5", "passed:>=0.5", "a>=b"):
        with pytest.raises(ValueError, match="--metric"):
            Threshold.parse(bad)


def test_a_threshold_folds_daily_points_weighted_by_their_counts() -> None:
    day = datetime(2026, 1, 1, tzinfo=UTC)
    points = [
        SeriesPoint(bucket_start=day, group=None, value=1.0, count=90),
        SeriesPoint(bucket_start=day + timedelta(days=1), group=None, value=0.0, count=10),
        SeriesPoint(bucket_start=day + timedelta(days=2), group=None, value=None, count=0),
    ]
    met = evaluate_threshold(Threshold.parse("x>=0.9"), points)
    assert met.observed == pytest.approx(0.9) and (met.count, met.passed) == (100, True)
    assert not evaluate_threshold(Threshold.parse("x>0.9"), points).passed
    counted = evaluate_threshold(
        Threshold.parse("calls>=60"), [p.model_copy(update={"value": 30.0}) for p in points]
    )
    assert (counted.observed, counted.passed) == (60.0, True)
    empty = evaluate_threshold(Threshold.parse("x>=0"), [])
    assert (empty.observed, empty.count, empty.passed) == (None, 0, False)
    assert GateReport(thresholds=[met]).exit_code() == 0
    assert GateReport(thresholds=[met, empty]).exit_code() == 1
