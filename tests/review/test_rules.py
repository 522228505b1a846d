"""The queue rules on calls' stored results: failures and thresholds, judges that disagreed with
themselves, and the seeded random sample per agent and day."""

from __future__ import annotations

from datetime import timedelta

from convoscope.model.enums import MetricSource
from convoscope.review.rules import (
    CallScores,
    LowScoreRule,
    RandomSampleRule,
    SplitVerdictRule,
    low_score_candidates,
    random_sample_candidates,
    sample_rank,
    split_verdict_candidates,
)

from .conftest import T0, result

JUDGE = MetricSource.JUDGE


def _call(call_id: str, *scores: object, agent: str = "a", day: int = 0) -> CallScores:
    built = [s if not isinstance(s, tuple) else result(call_id, *s) for s in scores]
    return CallScores(call_id, agent, T0 + timedelta(days=day), built)  # type: ignore[arg-type]


def test_low_scores_are_failures_and_values_under_their_threshold() -> None:
    call = _call(
        "c1",
        ("tool_call_success", False, False),
        ("latency", 2.5, True),
        ("csat", 2.0, True),
        ("pii_leakage", 0.0, True),
        result("c1", "broken", None, None).model_copy(update={"error": "no reply"}),
    )
    rule = LowScoreRule(below={"csat": 3.0, "latency": 1.0})
    found = {c.metric: c for c in low_score_candidates(rule, call)}
    assert set(found) == {"tool_call_success", "csat"}  # latency 2.5 is not under 1.0
    assert found["csat"].reason == "value 2 < 3" and found["csat"].rule == "low_score"
    assert found["tool_call_success"].reason.startswith("failed")
    assert low_score_candidates(LowScoreRule(failed=False), call) == []
    assert [
        c.metric for c in low_score_candidates(LowScoreRule(metrics=["csat"], below={"csat": 3}), call)
    ] == ["csat"]
    assert low_score_candidates(LowScoreRule(judges_only=True), call) == []
    assert low_score_candidates(LowScoreRule(enabled=False), call) == []


def test_split_verdicts_come_from_the_judges_recorded_spread() -> None:
    split = {
        "spread": {"k": 3, "values": [True, False, True], "passed": [True, False, True], "verdict": "review"}
    }
    agree = {"spread": {"k": 3, "values": [4, 4, 4], "passed": [True, True, True], "verdict": "agree"}}
    call = _call(
        "c1",
        result("c1", "expected_outcome", "review", None, source=JUDGE, evidence=split),
        result("c1", "csat", 4.0, True, source=JUDGE, evidence=agree),
        result("c1", "relevancy", 0.9, True, source=JUDGE),  # asked once: no spread
    )
    (found,) = split_verdict_candidates(SplitVerdictRule(), call)
    assert (
        found.metric == "expected_outcome" and found.priority == 0 and "3 judge runs disagree" in found.reason
    )
    assert split_verdict_candidates(SplitVerdictRule(metrics=["csat"]), call) == []


def _judged(call_id: str, *, agent: str = "a", day: int = 0) -> CallScores:
    return _call(call_id, result(call_id, "csat", 4.0, True, source=JUDGE), agent=agent, day=day)


def test_the_random_sample_takes_n_per_agent_and_day_by_a_seeded_hash() -> None:
    calls = [_judged(f"a{i}", agent="a") for i in range(10)] + [
        _judged(f"b{i}", agent="b") for i in range(10)
    ]
    calls += [_judged(f"n{i}", agent="a", day=1) for i in range(3)]
    rule = RandomSampleRule(per_agent_per_day=2, seed=7)
    picked = random_sample_candidates(rule, calls, {})
    by_group: dict[tuple[str | None, int], list[str]] = {}
    for c in picked:
        by_group.setdefault((c.agent_id, c.call_started_at.day), []).append(c.call_id)
    assert {key: len(ids) for key, ids in by_group.items()} == {("a", 2): 2, ("b", 2): 2, ("a", 3): 2}
    expected = sorted((f"a{i}" for i in range(10)), key=lambda c: sample_rank(7, c))[:2]
    assert by_group[("a", 2)] == expected
    assert set(random_sample_candidates(rule, list(reversed(calls)), {})) == set(picked)  # any order
    other_seed = random_sample_candidates(RandomSampleRule(per_agent_per_day=2, seed=8), calls, {})
    assert {c.call_id for c in other_seed} != {c.call_id for c in picked}


def test_the_random_sample_counts_what_it_already_took() -> None:
    calls = [_judged(f"a{i}") for i in range(10)]
    rule = RandomSampleRule(per_agent_per_day=2, seed=1)
    first = [c.call_id for c in random_sample_candidates(rule, calls, {})]
    day = T0.date()
    # Both places taken: nothing more that day, even by calls that rank higher.
    assert random_sample_candidates(rule, calls, {("a", day): set(first)}) == []
    # One place taken by a call outside this list: one more.
    assert len(random_sample_candidates(rule, calls, {("a", day): {"elsewhere"}})) == 1


def test_a_sampled_call_reviews_its_judges_or_the_named_metrics() -> None:
    call = _call("c1", result("c1", "csat", 4.0, True, source=JUDGE), ("latency", 0.5, True))
    (only,) = random_sample_candidates(RandomSampleRule(per_agent_per_day=1), [call], {})
    assert only.metric == "csat" and only.rule == "random_sample" and only.priority == 2
    named = random_sample_candidates(
        RandomSampleRule(per_agent_per_day=1, metrics=["latency", "x"]), [call], {}
    )
    assert [c.metric for c in named] == ["latency"]
    no_judge = _call("c2", ("latency", 0.5, True))
    assert random_sample_candidates(RandomSampleRule(per_agent_per_day=1), [no_judge], {}) == []
