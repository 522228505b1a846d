"""The overview's hourly rollups give the figures the exact reads give (counts, sums, pass rates, means
exactly; percentiles of many values within 5 %), and stay so as calls are sent again (another start
hour, another agent), scores are replaced, and calls arrive in hours already computed."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from convoscope.model import CallSource, EndReason, MetricResult, MetricSource
from convoscope.store.base import Aggregate, Bucket, SeriesPoint, SeriesQuery
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.store.overview_queries import AUDIO_METRICS, OverviewScope, Periods
from convoscope.store.schema import resolve_series_field
from convoscope.testing import make_call

PROJECT = "p-rollups"
UNTIL = datetime(2026, 3, 9, 12, tzinfo=UTC)
WEEK = OverviewScope(since=UNTIL - timedelta(days=7), until=UNTIL, width=timedelta(hours=6))
PERCENTILE_TOLERANCE = 0.05
"""Relative: t-digest percentiles of a few hundred values against the exact ones."""

PERCENTILES = {"e2e_p50_s", "e2e_p95_s", "gap_p50_s", "gap_p95_s"}
LARGE = 100
"""Percentiles over at least this many values are compared by value; fewer differ by up to a rank."""


def _values(figures: Any, name: str) -> int:
    return int(figures.e2e_turns if name.startswith("e2e") else figures.audio_calls)


def _call(rng: random.Random, n: int, **overrides: Any) -> Any:
    start = UNTIL - timedelta(days=14) + timedelta(seconds=rng.uniform(0, 14 * 86400))
    turns: list[dict[str, Any]] = []
    for i in range(6):
        turn: dict[str, Any] = {
            "role": "agent" if i % 2 == 0 else "user",
            "text": f"turn {i}",
            "start_s": i * 3.0,
            "end_s": i * 3.0 + 2.0,
        }
        if i % 2 == 0 and i:
            turn["e2e_s"] = round(rng.lognormvariate(0, 0.4), 3)
        turns.append(turn)
    fields: dict[str, Any] = {
        "external_id": f"call-{n}",
        "started_at": start.isoformat(),
        "agent_id": rng.choice(["clinic", "shop", None]),
        "agent_version": rng.choice(["1", "2"]),
        "end_reason": rng.choice(["user_hangup", "agent_hangup", "error", "transfer"]),
        "turns": turns,
        "metadata": {"errors": [{"code": 500}] * rng.randint(0, 2)},
        "cost": [{"product": "platform", "amount": round(rng.uniform(0.01, 0.2), 4)}],
    }
    fields.update(overrides)
    return make_call(**fields)


def _scores(rng: random.Random, call_id: str, when: datetime) -> list[MetricResult]:
    passed = rng.random() < 0.8
    results = [
        MetricResult(
            call_id=call_id,
            metric="task_success",
            value=passed,
            passed=passed,
            source=MetricSource.JUDGE,
            evaluated_at=when,
        )
    ]
    if rng.random() < 0.5:
        for name, metric in AUDIO_METRICS.items():
            value = rng.uniform(0.2, 2.5) if name.startswith("gap") else float(rng.randint(0, 3))
            results.append(
                MetricResult(
                    call_id=call_id,
                    metric=metric,
                    value=value,
                    passed=value < 2,
                    source=MetricSource.AUDIO,
                    evaluated_at=when,
                )
            )
    return results


def _same(rolled: Periods[Any], exact: Periods[Any]) -> None:
    def compare(a: Any, b: Any, where: str) -> None:
        for name, value in vars(b).items():
            got = getattr(a, name)
            if value is None or got is None:
                assert got == value, f"{where}.{name}: {got} != {value}"
            elif name in PERCENTILES and _values(b, name) < LARGE:
                continue  # a few values: t-digest's nearest rank and the exact interpolation differ by a rank
            elif name in PERCENTILES:
                assert math.isclose(got, value, rel_tol=PERCENTILE_TOLERANCE), (
                    f"{where}.{name}: {got} vs {value}"
                )
            else:
                assert got == pytest.approx(value, rel=1e-9, abs=1e-9), f"{where}.{name}: {got} != {value}"

    for period in (0, 1):
        compare(rolled.totals[period], exact.totals[period], f"period {period}")
        assert rolled.buckets[period].keys() == exact.buckets[period].keys()
        for bucket, figures in exact.buckets[period].items():
            compare(rolled.buckets[period][bucket], figures, f"period {period} bucket {bucket}")
        assert rolled.by_item[period] == exact.by_item[period]


def _check(store: ClickHouseStore, scope: OverviewScope) -> None:
    store.refresh_rollups(PROJECT, scope.previous_since, scope.until)
    _same(
        store.overview_call_figures(PROJECT, scope, from_rollups=True),
        store.overview_call_figures(PROJECT, scope),
    )
    _same(
        store.overview_score_figures(PROJECT, scope, from_rollups=True),
        store.overview_score_figures(PROJECT, scope),
    )


def test_rollups_match_the_exact_figures_through_resends_and_rescoring(
    store: ClickHouseStore,
) -> None:
    rng = random.Random(7)
    store.rollup_margin = timedelta(0)  # every write here is committed before the next refresh starts
    store.rollup_exact_below = 0  # a few hundred calls: read from the rollups all the same
    calls = [_call(rng, n) for n in range(400)]
    ids = store.insert_calls(PROJECT, calls, version=1)
    evaluated = UNTIL - timedelta(days=1)
    store.insert_scores(PROJECT, [s for call_id in ids for s in _scores(rng, call_id, evaluated)])

    one_agent = OverviewScope(
        since=WEEK.since, until=WEEK.until, width=timedelta(hours=1), agent_id="clinic", agent_version="2"
    )
    for scope in (WEEK, one_agent):
        _check(store, scope)
    assert store.refresh_rollups(PROJECT, WEEK.previous_since, WEEK.until) == 0  # nothing changed since

    # Calls sent again: one to another hour and agent, one to another end reason, one new in a known hour.
    moved = calls[0].model_copy(
        update={"started_at": calls[0].started_at + timedelta(hours=30), "agent_id": "shop"}
    )
    ended = calls[1].model_copy(update={"end_reason": EndReason.VOICEMAIL})
    fresh = _call(rng, 1000, started_at=(UNTIL - timedelta(days=2)).isoformat(), agent_id="clinic")
    new_ids = store.insert_calls(PROJECT, [moved, ended, fresh], version=2)
    # A score replaced (a later evaluation of the same metric), and the new call's scores.
    flipped = MetricResult(
        call_id=ids[5],
        metric="task_success",
        value=False,
        passed=False,
        source=MetricSource.JUDGE,
        evaluated_at=evaluated + timedelta(hours=1),
    )
    store.insert_scores(PROJECT, [flipped, *_scores(rng, new_ids[2], evaluated)])
    assert store.refresh_rollups(PROJECT, WEEK.previous_since, WEEK.until) >= 3
    for scope in (WEEK, one_agent):
        _check(store, scope)


def test_a_range_off_the_hour_is_read_exactly_and_computes_no_rollups(
    store: ClickHouseStore,
) -> None:
    rng = random.Random(3)
    store.rollup_exact_below = 0
    ids = store.insert_calls(PROJECT, [_call(rng, n) for n in range(50)], version=1)
    store.insert_scores(PROJECT, [s for call_id in ids for s in _scores(rng, call_id, UNTIL)])
    odd = OverviewScope(since=WEEK.since + timedelta(minutes=7), until=UNTIL, width=timedelta(hours=6))
    figures = store.overview_figures(PROJECT, odd)
    assert figures.calls == store.overview_call_figures(PROJECT, odd)
    assert figures.scores == store.overview_score_figures(PROJECT, odd)
    held = store.query(f"SELECT count() FROM `{store.database}`.`rollup_hours`")
    assert held == [(0,)]


def test_the_page_reads_small_overviews_exactly_and_large_ones_from_the_rollups(
    store: ClickHouseStore,
) -> None:
    rng = random.Random(5)
    ids = store.insert_calls(PROJECT, [_call(rng, n) for n in range(300)], version=1)
    store.insert_scores(PROJECT, [s for call_id in ids for s in _scores(rng, call_id, UNTIL)])
    assert store.rollup_exact_below >= 300
    small = store.overview_figures(PROJECT, WEEK)
    exact = (store.overview_call_figures(PROJECT, WEEK), store.overview_score_figures(PROJECT, WEEK))
    assert (small.calls, small.scores) == exact  # percentiles too, exactly
    assert small.agents == store.overview_agents(PROJECT, WEEK)

    store.rollup_exact_below = 100  # now the same overview is a large one
    large = store.overview_figures(PROJECT, WEEK)
    assert large.calls == store.overview_call_figures(PROJECT, WEEK, from_rollups=True)
    assert large.calls.totals[0].calls == exact[0].totals[0].calls
    assert large.agents == small.agents  # the agent choices from the rollups are the same
    assert large.calls.totals[0].e2e_p50_s != exact[0].totals[0].e2e_p50_s  # a t-digest, not the exact read


def _series(store: ClickHouseStore, query: SeriesQuery, *, rollups: bool) -> list[SeriesPoint]:
    store.rollup_exact_below = 0 if rollups else 10**9
    return store.series(PROJECT, query)


@pytest.mark.parametrize(
    ("field", "aggregate", "bucket", "by_agent"),
    [
        ("calls", Aggregate.COUNT, Bucket.HOUR, False),
        ("calls", Aggregate.AVG, Bucket.DAY, True),
        ("e2e_s", Aggregate.P50, Bucket.DAY, False),
        ("e2e_s", Aggregate.P95, Bucket.DAY, True),
        ("e2e_s", Aggregate.COUNT, Bucket.HOUR, True),
        ("passed:task_success", Aggregate.AVG, Bucket.DAY, True),
        ("passed:task_success", Aggregate.COUNT, Bucket.HOUR, False),
    ],
)
def test_dashboard_series_from_the_rollups_match_the_exact_series(
    store: ClickHouseStore, field: str, aggregate: Aggregate, bucket: Bucket, by_agent: bool
) -> None:
    rng = random.Random(11)
    store.rollup_margin = timedelta(0)
    ids = store.insert_calls(PROJECT, [_call(rng, n) for n in range(600)], version=1)
    store.insert_scores(PROJECT, [s for call_id in ids for s in _scores(rng, call_id, UNTIL)])
    query = SeriesQuery(
        field=field,
        aggregate=aggregate,
        bucket=bucket,
        since=WEEK.since,
        until=WEEK.until,
        group_by_agent=by_agent,
    )
    computed_before = store.refresh_rollups(PROJECT, WEEK.since, WEEK.until)
    rolled = _series(store, query, rollups=True)
    assert store._rollup_series(PROJECT, resolve_series_field(field), query) == rolled  # they answered
    exact = _series(store, query, rollups=False)
    assert store._rollup_series(PROJECT, resolve_series_field(field), query) is None  # too few calls
    assert computed_before > 0 and rolled and len(rolled) == len(exact)
    for got, want in zip(rolled, exact, strict=True):
        assert (got.bucket_start, got.group, got.count) == (want.bucket_start, want.group, want.count)
        assert want.value is not None and got.value is not None
        if aggregate in (Aggregate.P50, Aggregate.P95) and want.count >= LARGE:
            assert math.isclose(got.value, want.value, rel_tol=PERCENTILE_TOLERANCE), (got, want)
        elif aggregate not in (Aggregate.P50, Aggregate.P95):
            assert got.value == pytest.approx(want.value, rel=1e-9)
    # A source filter, an aggregate the rollups lack, or a range off the hour is read exactly.
    for other in (
        query.model_copy(update={"source": CallSource.GENERIC}),
        query.model_copy(update={"aggregate": Aggregate.P99}),
        query.model_copy(update={"since": WEEK.since + timedelta(minutes=1)}),
    ):
        assert _series(store, other, rollups=True) == _series(store, other, rollups=False)
