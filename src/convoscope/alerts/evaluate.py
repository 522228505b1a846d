"""Rule evaluation, pure: window statistics and the rule's previous state in, its new state and an event out.

Nothing here reads a store or a clock, so every rule kind's behaviour (when it fires, when it resolves,
what cooldown and ``min_samples`` hold back) is tested on plain numbers, and the engine that gathers the
numbers stays a thin loop.

Verdicts, per kind (``n`` is the number of values in the window, ``m`` the rule's ``min_samples``):

* **threshold**: ``A = aggregate(values in [now - window_s, now))``; breached when ``A op value``.
  No verdict when ``n < m``.
* **spike**: ``A`` as above and ``B`` the same aggregate over ``[now - window_s - baseline_window_s,
  now - window_s)``; for ``count``, ``B`` is scaled to the window's length
  (``B * window_s / baseline_window_s``) and floored at 1, so a burst after silence still compares with
  something. Breached when ``A >= factor * B``. No verdict when ``n < m`` or (not ``count``) the baseline
  has fewer than ``m`` values or ``B <= 0``.
* **trend**: the window is cut into buckets of width ``w`` (an hour or a day) counted back from now:
  bucket ``i`` covers ``[now - (i+1)w, now - i*w)``. The recent buckets are the ``R = max(1,
  ceil(window_s / w))`` newest, the baseline the ``baseline_buckets`` (``N``) before them; each bucket's
  value is the rule's aggregate of its values, and empty buckets are skipped. With ``mu`` and ``sigma``
  the mean and sample standard deviation (``n - 1``) of the baseline's bucket values, the EWMA starts at
  ``mu`` and takes each recent bucket value ``x`` oldest first: ``e = alpha * x + (1 - alpha) * e``.
  Breached when ``e > mu + k * sigma`` (``up``), ``e < mu - k * sigma`` (``down``), or either (``both``).
  No verdict with fewer than 2 baseline buckets or fewer than ``m`` values in the recent buckets.
  The baseline rolls with time, so a lasting shift becomes the new normal and the alert resolves.
* **new_failure**: the failures (metrics, or ``metric: reason``) in the window that the scope never
  had before the window; breached while there is one (and ``n >= m`` failing values). A failure that
  leaves the window is in the past, so the rule resolves. A further new failure while firing fires again.
* **immediate**: a batch (or, on the schedule, the window) holds ``n >= m`` calls that failed the metric;
  it resolves once the window holds none.

Transitions: breached and not firing fires, unless a resolve less than ``cooldown_s`` ago holds it back
(``cooldown_until``; a flapping metric notifies once per cooldown, not every minute); not breached and
firing resolves and starts the cooldown; no verdict changes nothing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from .events import AlertEvent, Severity
from .rules import AlertRule, ImmediateRule, NewFailureRule, SpikeRule, ThresholdRule, TrendRule

__all__ = [
    "BUCKET_SECONDS",
    "BucketValue",
    "RuleState",
    "Verdict",
    "WindowStats",
    "recent_bucket_count",
    "step",
    "trend_verdict",
    "verdict",
]

BUCKET_SECONDS = {"hour": 3600, "day": 86_400}
_OPS = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


@dataclass(frozen=True)
class BucketValue:
    """One trend bucket: its aggregate (None when empty) and how many values it holds."""

    value: float | None
    count: int


@dataclass(frozen=True)
class WindowStats:
    """What the store (or an evaluation batch) says about a rule's window, already aggregated."""

    since: datetime
    until: datetime
    value: float | None = None
    """The window's aggregate (threshold, spike), or the number of failing calls (immediate)."""
    samples: int = 0
    """How many values the window holds (immediate, new_failure: failing ones)."""
    call_ids: Sequence[str] = ()
    """The calls behind a breach (bounded, newest first)."""
    series: Sequence[float] = ()
    """Recent bucket values, oldest first, for the event's sparkline."""
    baseline: float | None = None
    """Spike: the aggregate over the baseline window (a count as it is, unscaled)."""
    baseline_samples: int = 0
    buckets: Sequence[BucketValue] = ()
    """Trend: baseline buckets then recent buckets, oldest first."""
    recent_buckets: int = 0
    """Trend: how many of ``buckets`` (the last ones) are recent."""
    new_items: Sequence[str] = ()
    """New failure: what failed in the window that never failed before (sorted)."""


@dataclass(frozen=True)
class RuleState:
    """Where a rule stands between evaluations; kept in the metadata database."""

    firing: bool = False
    since: datetime | None = None
    """When the current firing (or the last resolve) began."""
    last_event_id: str | None = None
    last_event_at: datetime | None = None
    cooldown_until: datetime | None = None
    """No new firing before this (set by a resolve)."""
    last_evaluated_at: datetime | None = None
    last_value: float | None = None
    alerted: tuple[str, ...] = ()
    """New failure: the items already notified while firing (a further new one fires again)."""


@dataclass(frozen=True)
class Verdict:
    """A rule's reading of its window: breached (True/False) or no verdict (None), with the numbers."""

    breached: bool | None
    value: float | None = None
    threshold: float | None = None
    summary: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    items: tuple[str, ...] = ()


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{_fmt(seconds)}s"


def recent_bucket_count(window_s: float, bucket: str) -> int:
    """How many of a trend's newest buckets are "recent" (at least one)."""
    return max(1, math.ceil(window_s / BUCKET_SECONDS[bucket]))


def trend_verdict(rule: TrendRule, buckets: Sequence[BucketValue], recent: int) -> Verdict:
    """The trend formula of the module docstring over buckets oldest first, the last ``recent`` recent."""
    params = rule.trend
    base = [b.value for b in buckets[: len(buckets) - recent] if b.count and b.value is not None]
    new = [b for b in buckets[len(buckets) - recent :] if b.count and b.value is not None]
    samples = sum(b.count for b in new)
    if len(base) < 2 or samples < rule.min_samples or not new:
        return Verdict(None, details={"baseline_buckets": len(base), "recent_samples": samples})
    mu = statistics.fmean(base)
    sigma = statistics.stdev(base)
    ewma = mu
    for bucket in new:
        assert bucket.value is not None
        ewma = params.alpha * bucket.value + (1 - params.alpha) * ewma
    upper, lower = mu + params.k * sigma, mu - params.k * sigma
    above, below = ewma > upper, ewma < lower
    breached = {"up": above, "down": below, "both": above or below}[params.direction]
    side = "above" if ewma > mu else "below"
    bound = upper if ewma > mu else lower
    details = {
        "ewma": ewma,
        "baseline_mean": mu,
        "baseline_std": sigma,
        "k": params.k,
        "alpha": params.alpha,
        "upper": upper,
        "lower": lower,
        "baseline_buckets": len(base),
        "recent_samples": samples,
    }
    summary = (
        f"{params.aggregate} of {rule.target} trends {side} its baseline: EWMA {_fmt(ewma)} vs "
        f"{_fmt(mu)} ± {_fmt(params.k)}·{_fmt(sigma)} ({len(base)} {params.bucket}s)"
    )
    return Verdict(breached, ewma, bound, summary, details)


def verdict(rule: AlertRule, stats: WindowStats) -> Verdict:
    """The rule's reading of its window statistics (see the module docstring for each kind)."""
    spec = rule.spec
    window = _duration(spec.window_s)
    if isinstance(spec, ThresholdRule):
        params = spec.threshold
        if stats.samples < spec.min_samples or stats.value is None:
            return Verdict(None, stats.value, params.value)
        breached = _OPS[params.op](stats.value, params.value)
        summary = (
            f"{params.aggregate} of {spec.target} = {_fmt(stats.value)} "
            f"{params.op if breached else 'not ' + params.op} {_fmt(params.value)} over {window} "
            f"(n={stats.samples})"
        )
        return Verdict(breached, stats.value, params.value, summary, {"aggregate": params.aggregate})
    if isinstance(spec, SpikeRule):
        return _spike(spec, stats, window)
    if isinstance(spec, TrendRule):
        return trend_verdict(spec, stats.buckets, stats.recent_buckets)
    if isinstance(spec, NewFailureRule):
        items = tuple(stats.new_items)
        what = "failure reason" if spec.new_failure.what == "reason" else "failing metric"
        if not items:
            return Verdict(False, 0.0, None, f"no new {what} over {window}")
        if stats.samples < spec.min_samples:
            return Verdict(None, float(len(items)))
        summary = f"new {what}{'s' if len(items) > 1 else ''}: {', '.join(items)} (over {window})"
        return Verdict(True, float(len(items)), None, summary, {"new": list(items)}, items)
    assert isinstance(spec, ImmediateRule)
    failing = stats.value or 0.0
    metric = spec.immediate.metric
    breached = failing >= spec.min_samples
    summary = (
        f"{_fmt(failing)} call{'s' if failing != 1 else ''} failed {metric}"
        if breached
        else f"no call failed {metric} over {window}"
    )
    return Verdict(breached, failing, float(spec.min_samples), summary, {"metric": metric})


def _spike(spec: SpikeRule, stats: WindowStats, window: str) -> Verdict:
    params = spec.spike
    if stats.samples < spec.min_samples or stats.value is None:
        return Verdict(None, stats.value)
    if params.aggregate == "count":
        baseline = max(1.0, (stats.baseline or 0.0) * spec.window_s / params.baseline_window_s)
    else:
        if stats.baseline is None or stats.baseline_samples < spec.min_samples or stats.baseline <= 0:
            return Verdict(None, stats.value)
        baseline = stats.baseline
    threshold = params.factor * baseline
    ratio = stats.value / baseline
    breached = stats.value >= threshold
    summary = (
        f"{params.aggregate} of {spec.target} = {_fmt(stats.value)} over {window}, "
        f"{_fmt(ratio)}× its baseline {_fmt(baseline)} (spike at {_fmt(params.factor)}×)"
    )
    details = {
        "factor": ratio,
        "spike_factor": params.factor,
        "baseline": baseline,
        "baseline_window_s": params.baseline_window_s,
        "baseline_samples": stats.baseline_samples,
    }
    return Verdict(breached, stats.value, threshold, summary, details)


def step(
    rule: AlertRule,
    stats: WindowStats,
    state: RuleState,
    *,
    project_id: str,
    now: datetime,
    event_id: str,
    ui_base_url: str | None = None,
) -> tuple[RuleState, AlertEvent | None]:
    """The rule's new state after reading ``stats`` at ``now``, and the event when its state changed."""
    reading = verdict(rule, stats)
    evaluated = replace(state, last_evaluated_at=now, last_value=reading.value)
    if reading.breached is None:
        return evaluated, None
    if reading.breached:
        fresh = tuple(item for item in reading.items if item not in state.alerted)
        if state.firing and not fresh:
            return evaluated, None
        if not state.firing and state.cooldown_until is not None and now < state.cooldown_until:
            return evaluated, None
        event = _event(rule, reading, stats, "firing", project_id, now, event_id, ui_base_url)
        since = state.since if state.firing and state.since is not None else now
        alerted = tuple(sorted({*state.alerted, *reading.items})) if state.firing else reading.items
        return (
            replace(
                evaluated,
                firing=True,
                since=since,
                last_event_id=event_id,
                last_event_at=now,
                alerted=alerted,
            ),
            event,
        )
    if not state.firing:
        return evaluated, None
    event = _event(rule, reading, stats, "resolved", project_id, now, event_id, ui_base_url)
    cooldown = now + timedelta(seconds=rule.spec.cooldown_s)
    return (
        replace(
            evaluated,
            firing=False,
            since=now,
            last_event_id=event_id,
            last_event_at=now,
            cooldown_until=cooldown,
            alerted=(),
        ),
        event,
    )


def _event(
    rule: AlertRule,
    reading: Verdict,
    stats: WindowStats,
    state: str,
    project_id: str,
    now: datetime,
    event_id: str,
    ui_base_url: str | None,
) -> AlertEvent:
    spec = rule.spec
    summary = reading.summary or spec.name
    if state == "resolved":
        summary = f"resolved: {summary}"
    return AlertEvent(
        id=event_id,
        project_id=project_id,
        rule_id=rule.id,
        rule_name=spec.name,
        state="firing" if state == "firing" else "resolved",
        severity=Severity(spec.severity),
        at=now,
        summary=f"{spec.name}: {summary}",
        value=reading.value,
        threshold=reading.threshold,
        sample_size=stats.samples,
        window_s=spec.window_s,
        call_ids=tuple(stats.call_ids) if state == "firing" else (),
        details={"kind": spec.kind, **reading.details},
        series=tuple(stats.series),
        ui_base_url=ui_base_url,
    )
