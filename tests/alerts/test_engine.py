"""The alert engine over real stores (chDB and SQLite): each rule kind reads its window from the store,
fires and resolves as its numbers say, and keeps its events with the calls behind them.

Time is passed explicitly (``now=``), so a day of evaluations runs in a moment and nothing waits.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from convoscope.alerts.engine import AlertEngine
from convoscope.alerts.events import AlertEvent
from convoscope.alerts.rules import parse_rule
from convoscope.config import Settings
from convoscope.model import MetricResult, MetricSource
from convoscope.server.services import Services, open_services
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.testing import make_call

T0 = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture
def services(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[Services]:
    opened = open_services(Settings(data_dir=tmp_path / "data"), store=clickhouse_store)
    yield opened
    opened.meta.close()


def _put(services: Services, rule_id: str, body: dict[str, Any]) -> None:
    rule = parse_rule(rule_id, body)
    services.meta.put_alert_rules(
        services.default_project.id, [(rule.id, rule.spec.model_dump(mode="json"), rule.spec.enabled)]
    )


def _score(call_id: str, metric: str, at: datetime, **fields: Any) -> MetricResult:
    values: dict[str, Any] = {"value": None, "source": MetricSource.TRANSCRIPT, **fields}
    return MetricResult(call_id=call_id, metric=metric, evaluated_at=at, **values)


def _walk(engine: AlertEngine, project: str, rule_id: str, moments: list[datetime]) -> list[AlertEvent]:
    events: list[AlertEvent] = []
    for moment in moments:
        outcome = engine.evaluate_rule(project, rule_id, now=moment)
        assert outcome is not None
        if outcome.event is not None:
            events.append(outcome.event)
    return events


def test_a_known_drift_fires_the_trend_alert_once_and_it_resolves_once(services: Services) -> None:
    project = services.default_project.id
    jitter = [-0.05, -0.025, 0.0, 0.025, 0.05]
    scores = []
    for hour in range(72):
        level = 2.0 if hour >= 48 else 1.0  # the drift: the metric doubles from hour 48 on
        for k in range(3):
            at = T0 + timedelta(hours=hour, minutes=10 + 15 * k)
            scores.append(_score(f"c{hour}-{k}", "csat", at, value=level + jitter[(hour * 7 + k) % 5]))
    services.store.insert_scores(project, scores)
    _put(
        services,
        "csat-trend",
        {
            "kind": "trend",
            "name": "CSAT drifts",
            "target": "metric:csat",
            "window_s": 3600,
            "cooldown_s": 0,
            "trend": {"alpha": 0.5, "k": 3, "baseline_buckets": 24, "bucket": "hour"},
        },
    )
    engine = services.alerts
    events = _walk(engine, project, "csat-trend", [T0 + timedelta(hours=h) for h in range(25, 73)])

    assert [(e.state, e.at) for e in events] == [
        ("firing", T0 + timedelta(hours=49)),
        ("resolved", events[1].at),
    ]
    firing = events[0]
    assert firing.details["kind"] == "trend"
    assert firing.details["baseline_mean"] == pytest.approx(1.0, abs=0.02)
    assert firing.value == pytest.approx(0.5 * firing.details["baseline_mean"] + 0.5 * 2.0, abs=0.05)
    assert firing.value > firing.details["upper"]
    assert set(firing.call_ids) == {"c48-0", "c48-1", "c48-2"}
    assert len(firing.series) == 25 and firing.series[-1] == pytest.approx(2.0, abs=0.06)
    kept = services.meta.list_alert_events(project, rule_id="csat-trend")
    assert [e.state for e in kept] == ["resolved", "firing"]
    assert kept[1].call_ids == list(firing.call_ids)


def test_a_new_failure_reason_fires_once(services: Services) -> None:
    project = services.default_project.id
    early = T0 - timedelta(days=3)
    services.store.insert_scores(
        project,
        [
            _score(
                "old-1", "pii_leakage", early, value=1.0, passed=False, evidence={"reason": "card number"}
            ),
            _score("old-2", "pii_leakage", early, value=0.0, passed=True),
        ],
    )
    _put(
        services,
        "new-reasons",
        {"kind": "new_failure", "name": "New PII leak", "window_s": 3600, "new_failure": {"what": "reason"}},
    )
    engine = services.alerts
    # A known reason in the window is not new.
    services.store.insert_scores(
        project,
        [
            _score(
                "a",
                "pii_leakage",
                T0 + timedelta(minutes=5),
                passed=False,
                evidence={"reason": "card number"},
            )
        ],
    )
    assert _walk(engine, project, "new-reasons", [T0 + timedelta(minutes=10)]) == []
    # A reason never seen before is.
    services.store.insert_scores(
        project,
        [
            _score(
                "b",
                "pii_leakage",
                T0 + timedelta(minutes=20),
                passed=False,
                evidence={"reason": "home address"},
            ),
            _score(
                "c",
                "pii_leakage",
                T0 + timedelta(minutes=25),
                passed=False,
                evidence={"reason": "home address"},
            ),
        ],
    )
    moments = [T0 + timedelta(minutes=m) for m in (30, 35, 40, 60, 79)]
    events = _walk(engine, project, "new-reasons", moments)
    assert [e.state for e in events] == ["firing"]
    assert events[0].details["new"] == ["pii_leakage: home address"]
    assert list(events[0].call_ids) == ["c", "b"]
    # Once the failure has left the window it is no longer new: the rule resolves, and the same reason
    # again later does not fire (it failed before).
    assert [e.state for e in _walk(engine, project, "new-reasons", [T0 + timedelta(minutes=90)])] == [
        "resolved"
    ]
    services.store.insert_scores(
        project,
        [
            _score(
                "d", "pii_leakage", T0 + timedelta(hours=5), passed=False, evidence={"reason": "home address"}
            )
        ],
    )
    assert _walk(engine, project, "new-reasons", [T0 + timedelta(hours=5, minutes=5)]) == []


def _store_call(services: Services, external_id: str, started: datetime, e2e: float, agent: str) -> str:
    turns = [
        {"role": "user", "text": "Hi.", "start_s": 0.0, "end_s": 1.0},
        {"role": "agent", "text": "Hello!", "start_s": 1.0 + e2e, "end_s": 3.0 + e2e, "e2e_s": e2e},
    ]
    call = make_call(external_id=external_id, started_at=started.isoformat(), turns=turns, agent_id=agent)
    (call_id,) = services.store_calls(services.default_project.id, [call])
    return call_id


def test_a_threshold_over_p95_response_gap_fires_with_the_slow_calls_and_resolves(services: Services) -> None:
    project = services.default_project.id
    fast = [_store_call(services, f"fast-{i}", T0 + timedelta(minutes=i), 0.8, "desk") for i in range(18)]
    slow = [_store_call(services, f"slow-{i}", T0 + timedelta(minutes=20 + i), 3.0, "desk") for i in range(2)]
    other = _store_call(services, "other-agent", T0 + timedelta(minutes=30), 9.0, "sales")
    later = [
        _store_call(services, f"later-{i}", T0 + timedelta(minutes=40 + 2 * i), 0.8, "desk")
        for i in range(16)
    ]
    _put(
        services,
        "slow-desk",
        {
            "kind": "threshold",
            "name": "Desk answers slowly",
            "target": "e2e_s",
            "scope": {"agent_id": "desk", "agent_version": "1"},
            "window_s": 3600,
            "min_samples": 10,
            "threshold": {"aggregate": "p95", "op": ">", "value": 1.5},
        },
    )
    engine = services.alerts
    # Too few values: no verdict yet.
    assert _walk(engine, project, "slow-desk", [T0 + timedelta(minutes=5)]) == []
    events = _walk(engine, project, "slow-desk", [T0 + timedelta(minutes=m) for m in (40, 50, 70, 85, 100)])
    assert [e.state for e in events] == ["firing", "resolved"]
    firing = events[0]
    assert list(firing.call_ids) == [slow[1], slow[0]]  # the slow ones, newest first; not the other agent's
    assert other not in firing.call_ids and not set(fast + later) & set(firing.call_ids)
    assert firing.sample_size == 20 and firing.threshold == 1.5 and firing.value is not None
    assert firing.value > 1.5
    assert "p95 of e2e_s" in firing.summary
    assert events[1].at == T0 + timedelta(minutes=85)  # the slow calls left the window (started 20-21)
    state = services.meta.get_alert_rule(project, "slow-desk")
    assert state is not None and not state.state.firing
    assert state.state.cooldown_until == events[1].at + timedelta(seconds=900)


def test_a_tag_scope_and_a_spike_of_calls(services: Services) -> None:
    project = services.default_project.id
    for i in range(4):  # a quiet baseline: 4 calls over the day before
        call = make_call(
            external_id=f"base-{i}", started_at=(T0 - timedelta(hours=6 * i + 2)).isoformat(), tags=["vip"]
        )
        services.store_calls(project, [call])
    burst = [
        make_call(external_id=f"burst-{i}", started_at=(T0 + timedelta(minutes=i)).isoformat(), tags=["vip"])
        for i in range(12)
    ]
    services.store_calls(project, burst)
    services.store_calls(project, [make_call(external_id="untagged", started_at=T0.isoformat())])
    _put(
        services,
        "vip-burst",
        {
            "kind": "spike",
            "name": "VIP call burst",
            "target": "calls",
            "scope": {"tag": "vip"},
            "window_s": 3600,
            "spike": {"factor": 5, "baseline_window_s": 86_400},
        },
    )
    events = _walk(services.alerts, project, "vip-burst", [T0 + timedelta(minutes=30)])
    assert [e.state for e in events] == ["firing"]
    assert events[0].value == 12 and events[0].sample_size == 12
    assert events[0].details["factor"] == pytest.approx(12.0)  # baseline 4/day -> 1 per hour (floor 1)
    assert len(events[0].call_ids) == 12
