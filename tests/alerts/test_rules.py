"""Alert rules as data (strict models, YAML with file:line problems) and their pure evaluation
(transitions, cooldown, min_samples, the trend formula)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from convoscope.alerts.evaluate import BucketValue, RuleState, WindowStats, step, trend_verdict
from convoscope.alerts.loader import RuleFileError, load_rules_text
from convoscope.alerts.rules import AlertRule, TrendRule, parse_rule
from convoscope.errors import PayloadError
from convoscope.simulate.loader import load_text

T0 = datetime(2026, 11, 2, tzinfo=UTC)
SLOW = {
    "kind": "threshold",
    "name": "Slow answers",
    "target": "e2e_s",
    "cooldown_s": 600,
    "threshold": {"aggregate": "p95", "op": ">", "value": 1.5},
}


def _fields(body: dict[str, Any]) -> list[str]:
    with pytest.raises(PayloadError) as refused:
        parse_rule("r", body)
    return [".".join(map(str, error["loc"])) for error in refused.value.errors]


def test_invalid_rules_are_refused_with_the_field_named() -> None:
    assert _fields({**SLOW, "window_s": 10}) == ["window_s"]
    assert _fields({**SLOW, "threshold": {"op": "!=", "value": 1}}) == ["threshold.op"]
    assert _fields({**SLOW, "target": "metric:"}) == ["target"]
    assert _fields({**SLOW, "scope": {"source": "skype"}}) == ["scope.source"]
    assert _fields({**SLOW, "notifiers": ["a b"]}) == ["notifiers.0"]
    assert _fields({**SLOW, "min_samples": 1.5}) == ["min_samples"]
    assert _fields({**SLOW, "surprise": 1}) == ["surprise"]
    assert _fields({"kind": "spike", "name": "x", "target": "calls", "spike": {"factor": 1}}) == [
        "spike.factor"
    ]
    assert _fields({"kind": "trend", "name": "x", "target": "calls", "trend": {"alpha": 0}}) == [
        "trend.alpha"
    ]
    assert _fields({"kind": "immediate", "name": "x", "immediate": {}}) == ["immediate.metric"]
    assert _fields({"kind": "immediate", "name": "x", "target": "calls", "immediate": {"metric": "m"}}) == [
        "target"
    ]
    assert _fields({"kind": "sometimes", "name": "x"}) == ["(rule)"] or _fields(
        {"kind": "sometimes", "name": "x"}
    )
    with pytest.raises(PayloadError, match="rule id"):
        parse_rule("no spaces", SLOW)


def test_a_rule_kind_may_come_from_its_block() -> None:
    rule = parse_rule("x", {k: v for k, v in SLOW.items() if k != "kind"})
    assert rule.kind == "threshold" and rule.spec.window_s == 3600 and rule.spec.severity == "warning"


YAML = """\
kind: suite
id: smoke
scenarios: [greet]
---
kind: scenario
id: greet
goal: Say hello.
---
kind: alert_rule
id: slow-answers
name: p95 agent latency over 1.5 s
target: e2e_s
scope: {agent_id: desk}
threshold: {aggregate: p95, op: ">", value: 1.5}
---
kind: alert_rule
id: pii-now
name: Card number read out
severity: critical
immediate: {metric: pii_leakage}
"""


def test_rules_live_beside_simulation_suites_in_yaml() -> None:
    rules = load_rules_text(YAML, "suite.yaml")
    assert [(rule.id, rule.kind) for rule in rules] == [
        ("slow-answers", "threshold"),
        ("pii-now", "immediate"),
    ]
    # The simulation loader reads the same text and skips the rules.
    assert [kind for kind, _ in load_text(YAML, "suite.yaml")] == ["suite", "scenario"]


def test_yaml_problems_name_file_line_and_field() -> None:
    text = YAML.replace("value: 1.5}", "value: high}").replace("metric: pii_leakage", "metrc: pii_leakage")
    with pytest.raises(RuleFileError) as refused:
        load_rules_text(text, "suite.yaml")
    shown = [str(problem) for problem in refused.value.problems]
    assert shown == [
        "suite.yaml:14: threshold.value: Input should be a valid number",
        "suite.yaml:20: immediate.metric: Field required",
        "suite.yaml:20: immediate.metrc: Extra inputs are not permitted",
    ]


def _stats(value: float | None, samples: int, at: datetime) -> WindowStats:
    return WindowStats(
        since=at - timedelta(hours=1), until=at, value=value, samples=samples, call_ids=("c1",)
    )


def _run(rule: AlertRule, readings: list[tuple[int, float | None, int]]) -> list[tuple[int, str]]:
    state = RuleState()
    events = []
    for minute, value, samples in readings:
        at = T0 + timedelta(minutes=minute)
        state, event = step(
            rule, _stats(value, samples, at), state, project_id="p", now=at, event_id=f"e{minute}"
        )
        if event is not None:
            events.append((minute, event.state))
    return events


def test_cooldown_suppresses_repeats_of_a_flapping_metric() -> None:
    rule = parse_rule("slow", SLOW)
    readings = [
        (0, 2.0, 50),
        (1, 2.0, 50),
        (2, 1.0, 50),
        (3, 2.0, 50),
        (5, 1.0, 50),
        (8, 2.0, 50),
        (13, 2.0, 50),
    ]
    # Fires at 0, resolves at 2 (cooldown until 12): the breaches at 3 and 8 are held back, 13 fires.
    assert _run(rule, readings) == [(0, "firing"), (2, "resolved"), (13, "firing")]


def test_min_samples_gives_no_verdict_either_way() -> None:
    rule = parse_rule("slow", {**SLOW, "min_samples": 20})
    assert _run(rule, [(0, 9.0, 5), (1, 9.0, 25), (2, 0.1, 3), (3, 0.1, 30)]) == [
        (1, "firing"),
        (3, "resolved"),
    ]


def test_the_trend_formula() -> None:
    rule = parse_rule(
        "t",
        {
            "kind": "trend",
            "name": "t",
            "target": "metric:csat",
            "trend": {"alpha": 0.5, "k": 2, "direction": "down"},
        },
    )
    assert isinstance(rule.spec, TrendRule)
    base = [BucketValue(v, 3) for v in (1.0, 1.2, 0.8, 1.0)]  # mean 1.0, sample std 0.1633
    low = trend_verdict(rule.spec, [*base, BucketValue(0.2, 3)], recent=1)
    assert low.details["ewma"] == pytest.approx(0.6)  # 0.5 * 0.2 + 0.5 * 1.0
    assert low.details["baseline_std"] == pytest.approx(0.163299, abs=1e-6)
    assert low.threshold == pytest.approx(1.0 - 2 * 0.163299, abs=1e-5) and low.breached is True
    high = trend_verdict(rule.spec, [*base, BucketValue(9.0, 3)], recent=1)
    assert high.breached is False  # direction "down": a rise is not an alert
    assert (
        trend_verdict(rule.spec, [BucketValue(1.0, 3), BucketValue(None, 0), BucketValue(5, 1)], 1).breached
        is None
    )
