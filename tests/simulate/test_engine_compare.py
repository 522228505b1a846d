"""A/B statistics: the intervals against published values, and verdicts on runs of the reference agent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from convoscope.demo.agent import ReferenceAgentServer
from convoscope.simulate.compare import (
    ERRORED,
    OVERALL,
    compare_runs,
    newcombe_interval,
    wilson_interval,
)
from convoscope.simulate.connectors.openai_chat import OpenAIChatConnector
from convoscope.simulate.definitions import AgentSpec, ConnectorSpec, Definitions, Scenario, Script, Suite
from convoscope.simulate.results import RunResult
from convoscope.simulate.runner import default_scorer, run_suite


def test_wilson_and_newcombe_match_the_published_examples() -> None:
    # Newcombe (1998), Statistics in Medicine 17: 857-872: 81/263 and the difference 56/70 - 48/80.
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    low, high = newcombe_interval((48, 80), (56, 70))
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


def _run(
    run_id: str, verdicts: list[str], scores: list[dict[str, bool | None]], suite: str = "s"
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "suite": suite,
        "agent_version": run_id,
        "conversations": [{"verdict": v, "scores": s} for v, s in zip(verdicts, scores, strict=True)],
    }


def test_small_samples_give_no_verdict_and_large_clear_gaps_do() -> None:
    small = compare_runs(_run("a", ["passed"] * 3, [{}] * 3), _run("b", ["failed"] * 3, [{}] * 3))
    overall = next(m for m in small.metrics if m.metric == OVERALL)
    assert overall.delta == -1.0 and overall.verdict == "worse"  # 3/3 vs 0/3 is already detectable
    close = compare_runs(
        _run("a", ["passed"] * 9 + ["failed"], [{}] * 10),
        _run("b", ["passed"] * 8 + ["failed"] * 2, [{}] * 10),
    )
    assert next(m for m in close.metrics if m.metric == OVERALL).verdict == "no detectable difference"


def test_errors_are_compared_apart_and_more_errors_is_worse() -> None:
    comparison = compare_runs(
        _run("a", ["passed"] * 20, [{}] * 20), _run("b", ["passed"] * 5 + ["errored"] * 15, [{}] * 20)
    )
    by_name = {m.metric: m for m in comparison.metrics}
    assert by_name[ERRORED].verdict == "worse" and not by_name[ERRORED].higher_is_better
    assert by_name[OVERALL].candidate.n == 5  # errored conversations say nothing about behaviour
    assert by_name[OVERALL].verdict == "no detectable difference"


def test_metrics_without_a_verdict_are_not_counted_and_other_suites_are_refused() -> None:
    comparison = compare_runs(
        _run("a", ["passed", "passed"], [{"latency": True}, {"latency": None}]),
        _run("b", ["passed", "passed"], [{"latency": True}, {"latency": True}]),
    )
    latency = next(m for m in comparison.metrics if m.metric == "latency")
    assert (latency.baseline.n, latency.candidate.n) == (1, 2)
    with pytest.raises(ValueError, match="different suites"):
        compare_runs(_run("a", [], [], suite="x"), _run("b", [], [], suite="y"))


HUMAN = Scenario(
    id="human",
    goal="Speak to a person.",
    unmocked_tools="pass_through",
    checks={"required_tools": [{"tool": "transfer_to_human"}]},
    script=Script(lines=["Can I speak to a real person, please?"]),
)


@pytest.fixture(scope="module")
def agent_url() -> Iterator[str]:
    with ReferenceAgentServer() as server:
        yield server.url


def _report(url: str, model: str) -> dict[str, Any]:
    suite = Suite(id="ab", scenarios=["human"], iterations=12, metrics=["tool_call_success"])
    spec = AgentSpec(
        id="clinic",
        version=model,
        connector=ConnectorSpec.model_validate({"kind": "openai", "base_url": f"{url}/v1", "model": model}),
        tools_url=f"{url}/tools",
    )
    definitions = Definitions(scenarios={"human": HUMAN}, agents={"clinic": spec})

    async def go() -> dict[str, Any]:
        connector = OpenAIChatConnector(f"{url}/v1", model=model)
        try:
            report = await run_suite(definitions, suite, spec, connector, scorer=default_scorer(suite))
        finally:
            await connector.aclose()
        return report.to_json()

    result = asyncio.run(go())
    RunResult.model_validate(result)  # what the API keeps
    return result


def test_identical_versions_show_no_difference_and_an_injected_regression_is_worse(agent_url: str) -> None:
    first = _report(agent_url, "reference-agent")
    same = compare_runs(first, _report(agent_url, "reference-agent"))
    assert all(m.verdict == "no detectable difference" for m in same.metrics), same.as_json()
    assert not same.regressions
    broken = compare_runs(first, _report(agent_url, "reference-agent+never_transfers"))
    assert {m.metric for m in broken.regressions} == {OVERALL, "scenario_checks"}
    checks = next(m for m in broken.metrics if m.metric == "scenario_checks")
    assert (checks.baseline.rate, checks.candidate.rate) == (1.0, 0.0)
    assert checks.ci_high < 0
