"""The metric framework: registry, parameter overrides, the runner's error isolation and pooling."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from convoscope.evals import registry
from convoscope.evals.base import AgentProfile, EvalContext, Metric, MetricKind
from convoscope.evals.runner import evaluate_call, evaluate_calls, resolve_metrics
from convoscope.model.call import Call
from convoscope.model.metric import MetricResult

from .builders import make_call

DETERMINISTIC = {
    "disclosure",
    "end_reason",
    "forbidden_phrases",
    "json_schema",
    "latency",
    "loop_detection",
    "pii_leakage",
    "prompt_injection",
    "regex",
    "required_phrases",
    "say_do_consistency",
    "speech_rate",
    "talk_ratio",
    "tool_call_correctness",
    "tool_call_success",
}
NEEDS_CONFIG = {"disclosure", "forbidden_phrases", "json_schema", "regex", "required_phrases"}


def test_every_rule_metric_is_registered_with_its_contract() -> None:
    found = {
        name: cls for name, cls in registry.all_metrics().items() if cls.kind is MetricKind.DETERMINISTIC
    }
    assert DETERMINISTIC <= set(found)
    for name in DETERMINISTIC:
        cls = found[name]
        assert cls.name == name and cls.version and cls.description
        assert issubclass(cls.params_model, BaseModel)
        cls.params_model.model_json_schema()  # the params are documentable


def test_default_set_without_judge_is_the_unconfigured_rules() -> None:
    names = {cls.name for cls in registry.default_set(judge_available=False)}
    assert DETERMINISTIC - NEEDS_CONFIG <= names
    assert not names & NEEDS_CONFIG
    assert all(registry.get(n).kind is MetricKind.DETERMINISTIC for n in names)


def test_unknown_metric_is_a_clear_error() -> None:
    with pytest.raises(registry.UnknownMetric, match="unknown metric 'nope'; known metrics: .*latency"):
        registry.get("nope")


class _Params(BaseModel):
    fail: bool = False
    factor: int = 1


class _Probe(Metric[_Params]):
    name = "test_probe"
    version = "3"
    kind = MetricKind.DETERMINISTIC
    params_model = _Params
    description = "Counts turns, or raises when told to."
    default = False
    threads: ClassVar[set[str]] = set()

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        self.threads.add(threading.current_thread().name)
        if self.params.fail:
            raise RuntimeError("probe exploded")
        return self.result(
            call, value=len(call.turns) * self.params.factor, evidence={"turns": len(call.turns)}
        )


class _JudgeProbe(_Probe):
    name = "test_judge_probe"
    kind = MetricKind.JUDGE


registry.register(_Probe)
registry.register(_JudgeProbe)


def test_register_refuses_a_second_class_under_a_name() -> None:
    class Other(_Probe):
        pass

    with pytest.raises(ValueError, match="already registered"):
        registry.register(Other)


def test_result_echoes_name_version_params() -> None:
    call = make_call(("agent", "a"), ("user", "b"))
    result = _Probe(_Params(factor=5)).evaluate(call, EvalContext())
    assert (result.metric, result.version, result.value, result.params) == (
        "test_probe",
        "3",
        10,
        {"fail": False, "factor": 5},
    )
    assert result.call_id == "c1" and result.error is None


def test_one_failing_metric_never_stops_the_others() -> None:
    call = make_call(("agent", "a"))
    results = evaluate_call(call, [_Probe(_Params(fail=True)), _Probe()], EvalContext())
    assert [r.error for r in results] == ["RuntimeError: probe exploded", None]
    assert results[0].value is None and results[1].value == 1


def test_resolve_metrics_from_profile_with_bad_entries() -> None:
    profile = AgentProfile(
        metrics={"test_probe": {"factor": 2}, "nope": {}, "latency": {"turn_max_s": "fast"}}
    )
    metrics = resolve_metrics(profile, judge_available=False)
    results = evaluate_call(make_call(("agent", "a")), metrics, EvalContext(profile=profile))
    by_name = {r.metric: r for r in results}
    assert by_name["test_probe"].value == 2
    assert by_name["nope"].error is not None and by_name["nope"].error.startswith("unknown metric 'nope'")
    assert by_name["latency"].error == (
        "invalid parameters for metric 'latency': turn_max_s: "
        "Input should be a valid number, unable to parse string as a number"
    )


def test_resolve_only_takes_profile_overrides() -> None:
    profile = AgentProfile(metrics={"test_probe": {"factor": 3}})
    only = resolve_metrics(profile, judge_available=False, only=["test_probe", "latency"])
    assert [m.name for m in only] == ["test_probe", "latency"]
    assert only[0].params == _Params(factor=3)
    default = resolve_metrics(AgentProfile(), judge_available=False)
    assert {m.name for m in default} == {cls.name for cls in registry.default_set(judge_available=False)}


def test_evaluate_calls_pools_only_judge_metrics() -> None:
    _Probe.threads.clear()
    calls = [make_call(*[("agent", "x")] * n) for n in range(1, 21)]
    items: list[tuple[Call, list[Metric[Any]], EvalContext]] = [
        (c, [_JudgeProbe()], EvalContext()) for c in calls
    ]
    out = list(evaluate_calls(items, max_workers=4))
    assert sorted(r[0].value for _, r in out) == list(range(1, 21))  # type: ignore[type-var]
    assert all(name.startswith("convoscope-eval") for name in _Probe.threads)
    _Probe.threads.clear()
    list(evaluate_calls([(calls[0], [_Probe()], EvalContext())], max_workers=4))
    assert _Probe.threads == {threading.current_thread().name}
    with pytest.raises(ValueError, match="max_workers"):
        list(evaluate_calls([], max_workers=0))


def test_every_rule_metric_has_a_docs_page_naming_its_parameters() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "metrics"
    for name in DETERMINISTIC:
        cls = registry.get(name)
        page = (docs / f"{name}.md").read_text()
        assert page.startswith(f"# `{name}` (version {cls.version})")
        schema = cls.params_model.model_json_schema(by_alias=True)
        for param, spec in schema["properties"].items():
            assert f"| `{param}` |" in page, (name, param)
            assert spec.get("description"), (name, param)


def test_results_built_by_hand_equal_validated_ones() -> None:
    call = make_call(("agent", "a"))
    metric = _Probe()
    fast = metric.result(call, value=3, passed=True, evidence={"turns": [1, 2], "quote": "x"})
    checked = MetricResult.model_validate(fast.model_dump())
    assert fast == checked and isinstance(fast.value, float)
    # evidence that is not plain JSON goes through validation, which refuses what JSON cannot hold
    with pytest.raises(ValueError, match="evidence"):
        metric.result(call, value=1, evidence={"when": object()})  # type: ignore[dict-item]
