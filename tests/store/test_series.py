"""Time series checked against numbers computed here with numpy (linear-interpolated percentiles)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from convoscope.errors import PayloadError
from convoscope.model import Call, CallSource, MetricResult, MetricSource, Role
from convoscope.store.base import Aggregate, Bucket, CallFilter, SeriesPoint, SeriesQuery
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.store.schema import AGENT_LATENCY_FIELDS, SERIES_FIELDS

from .factories import make_call

T0 = datetime(2025, 3, 1, tzinfo=UTC)
SINCE = T0
UNTIL = T0 + timedelta(days=3)

Key = tuple[datetime, str | None]


def _calls() -> list[Call]:
    rng = random.Random(7)
    calls = []
    for i in range(60):
        started = T0 + timedelta(minutes=rng.randrange(0, 3 * 24 * 60))
        calls.append(
            make_call(
                f"c{i}",
                started_at=started,
                agent_id="agent-a" if i % 3 else "agent-b",
                source=CallSource.VAPI if i % 4 else CallSource.RETELL,
                turns=rng.randrange(2, 12),
                tools=rng.randrange(0, 5),
                duration_s=round(rng.uniform(5, 600), 3),
                rng=rng,
            )
        )
    return calls


def _expected(
    values: Iterable[tuple[datetime, str | None, float]],
    aggregate: Aggregate,
    *,
    by_agent: bool,
    hour: bool = False,
) -> dict[Key, tuple[float, int]]:
    groups: dict[Key, list[float]] = defaultdict(list)
    for at, agent, value in values:
        start = at.replace(minute=0, second=0, microsecond=0)
        if not hour:
            start = start.replace(hour=0)
        groups[(start, agent if by_agent else None)].append(value)
    out: dict[Key, tuple[float, int]] = {}
    for key, vals in groups.items():
        if aggregate is Aggregate.COUNT:
            result = float(len(vals))
        elif aggregate is Aggregate.AVG:
            result = float(np.mean(vals))
        else:
            result = float(np.percentile(vals, int(aggregate.value[1:])))
        out[key] = (result, len(vals))
    return out


def _got(points: list[SeriesPoint]) -> dict[Key, tuple[float, int]]:
    return {
        (p.bucket_start, p.group): (p.value if p.value is not None else float("nan"), p.count) for p in points
    }


def _assert_matches(got: dict[Key, tuple[float, int]], expected: dict[Key, tuple[float, int]]) -> None:
    assert got.keys() == expected.keys()
    for key, (value, count) in expected.items():
        assert got[key][1] == count, key
        assert got[key][0] == pytest.approx(value, rel=1e-9, abs=1e-12), key


@pytest.fixture
def loaded(store: ClickHouseStore) -> tuple[ClickHouseStore, list[Call]]:
    calls = _calls()
    # An older version of every call, with other numbers, turns and agent: it must never count.
    stale = [
        make_call(
            c.external_id,
            started_at=c.started_at,
            source=c.source,
            agent_id="stale",
            turns=14,
            duration_s=9999.0,
        )
        for c in calls
    ]
    store.insert_calls("proj", stale, version=1)
    store.insert_calls("proj", calls, version=2)
    store.insert_calls("other", calls[:10], version=1)
    return store, calls


def _call_values(
    calls: list[Call], value: Callable[[Call], float]
) -> list[tuple[datetime, str | None, float]]:
    return [(c.started_at, c.agent_id, value(c)) for c in calls]


@pytest.mark.parametrize(
    "aggregate", [Aggregate.COUNT, Aggregate.AVG, Aggregate.P50, Aggregate.P95, Aggregate.P99]
)
@pytest.mark.parametrize("by_agent", [False, True])
def test_duration_series_by_day(
    loaded: tuple[ClickHouseStore, list[Call]], aggregate: Aggregate, by_agent: bool
) -> None:
    store, calls = loaded
    query = SeriesQuery(
        field="duration_s", aggregate=aggregate, since=SINCE, until=UNTIL, group_by_agent=by_agent
    )

    got = _got(store.series("proj", query))

    expected = _expected(_call_values(calls, lambda c: c.effective_duration_s), aggregate, by_agent=by_agent)
    _assert_matches(got, expected)


def test_call_count_series_by_hour_filtered_by_agent_and_source(
    loaded: tuple[ClickHouseStore, list[Call]],
) -> None:
    store, calls = loaded
    query = SeriesQuery(
        field="calls",
        bucket=Bucket.HOUR,
        since=SINCE,
        until=UNTIL,
        agent_id="agent-a",
        source=CallSource.VAPI,
    )

    got = _got(store.series("proj", query))

    chosen = [c for c in calls if c.agent_id == "agent-a" and c.source is CallSource.VAPI]
    expected = _expected(_call_values(chosen, lambda c: 1.0), Aggregate.COUNT, by_agent=False, hour=True)
    _assert_matches(got, expected)


def test_cost_and_tool_error_series(loaded: tuple[ClickHouseStore, list[Call]]) -> None:
    store, calls = loaded
    cost = _got(store.series("proj", SeriesQuery(field="cost_usd", since=SINCE, until=UNTIL)))
    errors = _got(store.series("proj", SeriesQuery(field="tool_error_count", since=SINCE, until=UNTIL)))
    turns = _got(
        store.series(
            "proj", SeriesQuery(field="turn_count", aggregate=Aggregate.P50, since=SINCE, until=UNTIL)
        )
    )

    _assert_matches(
        cost, _expected(_call_values(calls, lambda c: c.cost_total()), Aggregate.AVG, by_agent=False)
    )
    expected_errors = _expected(
        _call_values(calls, lambda c: float(sum(t.success is False for t in c.tool_calls))),
        Aggregate.AVG,
        by_agent=False,
    )
    _assert_matches(errors, expected_errors)
    _assert_matches(
        turns, _expected(_call_values(calls, lambda c: float(len(c.turns))), Aggregate.P50, by_agent=False)
    )


@pytest.mark.parametrize("aggregate", [Aggregate.AVG, Aggregate.P50, Aggregate.P90, Aggregate.P95])
def test_turn_e2e_series_by_agent(loaded: tuple[ClickHouseStore, list[Call]], aggregate: Aggregate) -> None:
    store, calls = loaded
    query = SeriesQuery(field="e2e_s", aggregate=aggregate, since=SINCE, until=UNTIL, group_by_agent=True)

    got = _got(store.series("proj", query))

    values = [
        (c.started_at, c.agent_id, t.e2e_s)
        for c in calls
        for t in c.turns
        if t.role is Role.AGENT and t.e2e_s is not None
    ]
    _assert_matches(got, _expected(values, aggregate, by_agent=True))


@pytest.mark.parametrize("field", [f for f in AGENT_LATENCY_FIELDS if f != "e2e_s"])
def test_other_turn_latency_series_match_the_per_turn_definition(
    loaded: tuple[ClickHouseStore, list[Call]], field: str
) -> None:
    store, calls = loaded
    query = SeriesQuery(field=field, aggregate=Aggregate.P95, since=SINCE, until=UNTIL, group_by_agent=True)

    got = _got(store.series("proj", query))

    values = [
        (c.started_at, c.agent_id, value)
        for c in calls
        for t in c.turns
        if t.role is Role.AGENT and (value := getattr(t, field)) is not None
    ]
    _assert_matches(got, _expected(values, Aggregate.P95, by_agent=True))


def test_turn_series_ignores_turns_of_older_versions(store: ClickHouseStore) -> None:
    long = make_call("k", started_at=T0, turns=12)
    short = make_call("k", started_at=T0, turns=4)
    store.insert_calls("proj", [long], version=1)
    store.insert_calls("proj", [short], version=2)

    [point] = store.series(
        "proj", SeriesQuery(field="e2e_s", aggregate=Aggregate.COUNT, since=SINCE, until=UNTIL)
    )

    assert point.count == 2
    assert point.value == 2.0


def test_metric_series_uses_newest_score_and_current_calls(
    loaded: tuple[ClickHouseStore, list[Call]],
) -> None:
    store, calls = loaded
    rng = random.Random(3)
    stored = {s.external_id: s for s in store.list_calls("proj", CallFilter(), limit=500, cursor=None).items}
    old_at = datetime(2025, 3, 5, tzinfo=UTC)
    new_at = old_at + timedelta(hours=1)
    scores_old, scores_new, expected_values = [], [], []
    for call in calls:
        call_id = stored[call.external_id].id
        score = round(rng.uniform(0, 1), 4)
        scores_old.append(_score(call_id, "csat", 99.0, old_at))
        scores_new.append(_score(call_id, "csat", score, new_at))
        expected_values.append((call.started_at, call.agent_id, score))
    store.insert_scores("proj", scores_new)
    store.insert_scores("proj", scores_old)  # replayed later, older evaluation: must not win

    for aggregate in (Aggregate.AVG, Aggregate.P50, Aggregate.P95):
        query = SeriesQuery(
            field="metric:csat", aggregate=aggregate, since=SINCE, until=UNTIL, group_by_agent=True
        )
        _assert_matches(
            _got(store.series("proj", query)), _expected(expected_values, aggregate, by_agent=True)
        )


def test_bool_metric_reads_as_zero_or_one(store: ClickHouseStore) -> None:
    ids = store.insert_calls(
        "proj", [make_call(f"b{i}", started_at=T0, turns=1) for i in range(4)], version=1
    )
    store.insert_scores("proj", [_score(i, "resolved", k % 2 == 0, T0) for k, i in enumerate(ids)])
    store.insert_scores("proj", [_score(ids[0], "label", "good", T0, passed=True)])

    [point] = store.series("proj", SeriesQuery(field="metric:resolved", since=SINCE, until=UNTIL))
    [label] = store.series("proj", SeriesQuery(field="metric:label", since=SINCE, until=UNTIL))

    assert point.value == pytest.approx(0.5)
    assert point.count == 4
    assert label.value == 1.0


def test_series_is_scoped_to_the_project(loaded: tuple[ClickHouseStore, list[Call]]) -> None:
    store, calls = loaded
    query = SeriesQuery(field="calls", since=SINCE, until=UNTIL)

    total_proj = sum(p.count for p in store.series("proj", query))
    total_other = sum(p.count for p in store.series("other", query))

    assert total_proj == len(calls)
    assert total_other == 10
    assert store.series("nobody", query) == []


def test_unknown_field_lists_the_valid_ones(store: ClickHouseStore) -> None:
    with pytest.raises(PayloadError) as info:
        store.series("proj", SeriesQuery(field="latency", since=SINCE, until=UNTIL))
    for name in SERIES_FIELDS:
        assert name in str(info.value)
    assert "metric:<name>" in str(info.value)


def test_empty_range_is_rejected(store: ClickHouseStore) -> None:
    with pytest.raises(PayloadError):
        store.series("proj", SeriesQuery(field="calls", since=UNTIL, until=SINCE))


def _score(
    call_id: str, metric: str, value: float | bool | str, at: datetime, passed: bool | None = None
) -> MetricResult:
    return MetricResult(
        call_id=call_id,
        metric=metric,
        value=value,
        passed=passed,
        source=MetricSource.TRANSCRIPT,
        evaluated_at=at,
    )


def test_error_and_provider_error_series(store: ClickHouseStore) -> None:
    """``error`` is 1 for a call that ended in error (its avg is the error rate);
    ``provider_errors`` is how many provider requests a call lists as failed in ``metadata.errors``."""
    from convoscope.model import EndReason

    rng = random.Random(5)
    calls = []
    for i in range(60):
        failures = rng.choice([0, 0, 0, 1, 2])
        calls.append(
            make_call(
                f"e{i}",
                started_at=T0 + timedelta(minutes=50 * i),
                turns=2,
                tools=0,
                end_reason=EndReason.ERROR if failures else EndReason.USER_HANGUP,
                metadata={"errors": [{"span_id": f"{n:016x}", "message": "timeout"} for n in range(failures)]}
                if failures or i % 2
                else {},
            )
        )
    store.insert_calls("proj", calls, version=1)
    rate = _got(store.series("proj", SeriesQuery(field="error", since=SINCE, until=UNTIL)))
    count = _got(store.series("proj", SeriesQuery(field="provider_errors", since=SINCE, until=UNTIL)))
    _assert_matches(
        rate,
        _expected(
            _call_values(calls, lambda c: float(c.end_reason is EndReason.ERROR)),
            Aggregate.AVG,
            by_agent=False,
        ),
    )
    _assert_matches(
        count,
        _expected(
            _call_values(calls, lambda c: float(len(c.metadata.get("errors", [])))),
            Aggregate.AVG,
            by_agent=False,
        ),
    )
    assert any(value > 0 for value, _ in rate.values())
