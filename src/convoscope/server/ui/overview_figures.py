"""What the overview shows, from the store's per-period figures: summary numbers beside the previous
period's, the charts' series (with the previous period shifted onto the same buckets) and the tables.

Kept apart from the route so the arithmetic (rates, per-minute cost, changes, which direction is better)
is plain functions of the store's answers, and the template only lays out text it is handed. Values for
the charts go to the page as numbers (JSON); what people read is formatted here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

from ...store.alerts_meta import StoredAlertEvent
from ...store.overview_queries import CallFigures, OverviewScope, Periods, ScoreFigures

__all__ = [
    "Bucket",
    "Chart",
    "Figure",
    "Overview",
    "build_overview",
    "calls_link",
    "datetime_local",
]

Kind = Literal["count", "percent", "seconds", "usd", "number"]
Better = Literal["up", "down"] | None

NO_CALLS = (
    "No calls in this range. Send calls to POST /api/v1/calls or a platform webhook "
    "(see docs/integrations), or choose a wider range."
)
NO_RECORDINGS = (
    "No recordings analysed in this range. Response gap, interruptions, barge-ins and silences are "
    "measured from two-channel recordings (user and agent on separate channels): send calls with their "
    "recording and the audio analysis job scores them (docs/metrics/turn-taking.md)."
)
NO_SCORES = (
    "No pass/fail scores for these calls. Metrics with a threshold score each call after it is ingested "
    "(GET /api/v1/metrics lists them; docs/metrics)."
)
NO_VENDOR_LATENCY = (
    "No vendor-reported latency in this range: the platform sent no per-turn end-to-end latency "
    "(e2e_s) with these calls."
)
NO_ALERTS = (
    "No alert events in this range. Alert rules (PUT /api/v1/alerts/rules/{id}, docs/alerts.md) record "
    "an event whenever a watched number starts or stops crossing its threshold."
)


def datetime_local(moment: datetime) -> str:
    """A UTC moment as the calls list's filters take it (``YYYY-MM-DDTHH:MM``)."""
    return moment.strftime("%Y-%m-%dT%H:%M")


def calls_link(scope: OverviewScope, since: datetime, until: datetime, **extra: str) -> str:
    """The calls list showing exactly the calls of ``[since, until)`` in the overview's scope."""
    query = {"since": datetime_local(since), "until": datetime_local(until)}
    if scope.agent_id is not None:
        query["agent"] = scope.agent_id
    if scope.agent_version is not None:
        query["version"] = scope.agent_version
    return f"/calls?{urlencode({**query, **extra})}"


def _format(value: float | None, kind: Kind) -> str:
    if value is None:
        return "–"
    if kind == "count":
        return f"{round(value):,}"
    if kind == "percent":
        return f"{value * 100:.1f}%"
    if kind == "seconds":
        return f"{value:.2f} s"
    if kind == "usd":
        return f"${value:.4f}"
    return f"{value:.2f}"


def _change(current: float | None, previous: float | None, kind: Kind) -> str:
    if current is None or previous is None:
        return ""
    delta = current - previous
    sign = "+" if delta >= 0 else "−"
    if kind == "count":
        relative = f" ({sign}{abs(delta) / previous:.0%})" if previous else ""
        return f"{sign}{abs(round(delta)):,}{relative}"
    if kind == "percent":
        return f"{sign}{abs(delta) * 100:.1f} pp"
    return f"{sign}{_format(abs(delta), kind)}"


@dataclass(frozen=True)
class Figure:
    """One summary number beside the previous period's; ``note`` says why a value is missing."""

    key: str
    label: str
    kind: Kind
    current: float | None
    previous: float | None
    better: Better = None
    note: str | None = None

    @property
    def text(self) -> str:
        """The current value as people read it."""
        return _format(self.current, self.kind)

    @property
    def previous_text(self) -> str:
        """The previous period's value as people read it."""
        return _format(self.previous, self.kind)

    @property
    def change_text(self) -> str:
        """The change from the previous period (empty without a current value)."""
        return _change(self.current, self.previous, self.kind)

    @property
    def change_class(self) -> str:
        """``ok`` for a change in the better direction, ``bad`` for the worse, ``muted`` otherwise."""
        if self.current is None or self.previous is None or self.better is None:
            return "muted"
        if self.current == self.previous:
            return "muted"
        return "ok" if (self.current > self.previous) == (self.better == "up") else "bad"


@dataclass(frozen=True)
class Bucket:
    """One point of every chart: a bucket of this period and the same bucket of the previous one."""

    index: int
    start: datetime
    end: datetime
    previous_start: datetime
    previous_end: datetime
    href: str
    previous_href: str
    calls: int
    previous_calls: int

    @property
    def label(self) -> str:
        """``MM-DD HH:MM–HH:MM`` (UTC), with the end's date when it differs."""
        end = "%H:%M" if self.end.date() == self.start.date() else "%m-%d %H:%M"
        return f"{self.start:%m-%d %H:%M}–{self.end.strftime(end)}"

    @property
    def previous_label(self) -> str:
        """The previous period's bucket, as ``label``."""
        end = "%H:%M" if self.previous_end.date() == self.previous_start.date() else "%m-%d %H:%M"
        return f"{self.previous_start:%m-%d %H:%M}–{self.previous_end.strftime(end)}"


@dataclass(frozen=True)
class Series:
    """One line of a chart, per bucket: this period's values and the previous period's."""

    label: str
    current: list[float | None]
    previous: list[float | None]


@dataclass(frozen=True)
class Chart:
    """A chart; ``empty`` (why, and how to get data) replaces it when neither period has a value."""

    id: str
    title: str
    kind: Kind
    series: list[Series]
    empty: str | None = None
    subtitle: str = ""

    def rows(self) -> list[tuple[list[str], list[str]]]:
        """Per bucket, the formatted values of this period's series and of the previous period's."""
        count = len(self.series[0].current) if self.series else 0
        return [
            (
                [_format(s.current[i], self.kind) for s in self.series],
                [_format(s.previous[i], self.kind) for s in self.series],
            )
            for i in range(count)
        ]

    def data(self) -> dict[str, Any]:
        """What the page script draws (numbers only; percentages as 0-100)."""
        scale = 100.0 if self.kind == "percent" else 1.0

        def scaled(values: list[float | None]) -> list[float | None]:
            return [None if v is None else v * scale for v in values]

        return {
            "id": self.id,
            "title": self.title,
            "kind": self.kind,
            "series": [
                {"label": s.label, "current": scaled(s.current), "previous": scaled(s.previous)}
                for s in self.series
            ],
        }


@dataclass(frozen=True)
class Overview:
    """Everything the page shows for one scope."""

    figures: list[Figure]
    buckets: list[Bucket]
    charts: list[Chart]
    failing_metrics: list[tuple[str, int, int, str]]
    end_reasons: list[tuple[str, int, int, str]]
    alert_events: list[StoredAlertEvent]
    alert_counts: tuple[int, int]
    audio_calls: int
    failing_note: str
    """What the failing-metrics table says when it has no rows."""

    def data(self, scope: OverviewScope) -> dict[str, Any]:
        """The JSON block the page script reads: the period, the buckets and the charts."""
        return {
            "period": {
                "since": scope.since.isoformat(),
                "until": scope.until.isoformat(),
                "previous_since": scope.previous_since.isoformat(),
                "width_s": int(scope.width.total_seconds()),
            },
            "buckets": [
                {
                    "t": int(b.start.timestamp()),
                    "label": b.label,
                    "previous_label": b.previous_label,
                    "href": b.href,
                    "previous_href": b.previous_href,
                }
                for b in self.buckets
            ],
            "charts": [chart.data() for chart in self.charts if chart.empty is None],
        }


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _cost_per_minute(figures: CallFigures) -> float | None:
    return _ratio(figures.cost_usd, figures.duration_s / 60.0)


def _buckets(scope: OverviewScope, calls: Periods[CallFigures]) -> list[Bucket]:
    found = []
    for i in range(scope.bucket_count):
        start = scope.since + scope.width * i
        end = min(start + scope.width, scope.until)
        previous_start = scope.previous_since + scope.width * i
        previous_end = min(previous_start + scope.width, scope.since)
        found.append(
            Bucket(
                index=i,
                start=start,
                end=end,
                previous_start=previous_start,
                previous_end=previous_end,
                href=calls_link(scope, start, end),
                previous_href=calls_link(scope, previous_start, previous_end),
                calls=calls.buckets[0].get(i, CallFigures()).calls,
                previous_calls=calls.buckets[1].get(i, CallFigures()).calls,
            )
        )
    return found


T = TypeVar("T")


def _series(
    label: str, periods: Periods[T], count: int, empty: T, read: Callable[[T], float | None]
) -> Series:
    return Series(
        label,
        [read(periods.buckets[0].get(i, empty)) for i in range(count)],
        [read(periods.buckets[1].get(i, empty)) for i in range(count)],
    )


def _has_values(series: Sequence[Series]) -> bool:
    return any(v is not None for s in series for v in (*s.current, *s.previous))


def _alert_buckets(scope: OverviewScope, events: Sequence[StoredAlertEvent]) -> Series:
    count = scope.bucket_count
    current: list[float | None] = [0.0] * count
    previous: list[float | None] = [0.0] * count
    for event in events:
        if event.state != "firing":
            continue
        at = event.at
        values, start = (current, scope.since) if at >= scope.since else (previous, scope.previous_since)
        if scope.previous_since <= at < scope.until:
            index = int((at - start) / scope.width)
            values[index] = (values[index] or 0.0) + 1.0
    return Series("Firing events", current, previous)


def _call_charts(scope: OverviewScope, calls: Periods[CallFigures]) -> list[Chart]:
    n = scope.bucket_count
    empty = CallFigures()
    no_calls = None if calls.totals[0].calls or calls.totals[1].calls else NO_CALLS

    def per_call(read: Callable[[CallFigures], float]) -> Callable[[CallFigures], float | None]:
        return lambda f: _ratio(read(f), f.calls)

    vendor = [
        _series("e2e p50", calls, n, empty, lambda f: f.e2e_p50_s),
        _series("e2e p95", calls, n, empty, lambda f: f.e2e_p95_s),
    ]
    return [
        Chart(
            "calls",
            "Calls",
            "count",
            [_series("Calls", calls, n, empty, lambda f: float(f.calls))],
            no_calls,
        ),
        Chart(
            "vendor_latency",
            "Vendor-reported latency",
            "seconds",
            vendor,
            no_calls or (None if _has_values(vendor) else NO_VENDOR_LATENCY),
            "end-to-end per agent turn, as the platform reported it",
        ),
        Chart(
            "failures",
            "Infrastructure failures",
            "count",
            [
                _series("Calls ended in error", calls, n, empty, lambda f: float(f.errors)),
                _series("Failed provider requests", calls, n, empty, lambda f: float(f.provider_errors)),
            ],
            no_calls,
        ),
        Chart(
            "cost",
            "Cost",
            "usd",
            [
                _series("Per call", calls, n, empty, per_call(lambda f: f.cost_usd)),
                _series("Per minute", calls, n, empty, _cost_per_minute),
            ],
            no_calls,
        ),
    ]


def _score_charts(scope: OverviewScope, scores: Periods[ScoreFigures]) -> list[Chart]:
    n = scope.bucket_count
    empty = ScoreFigures()
    recorded = scores.totals[0].audio_calls or scores.totals[1].audio_calls
    gap = [
        _series("Response gap p50", scores, n, empty, lambda f: f.gap_p50_s),
        _series("Response gap p95", scores, n, empty, lambda f: f.gap_p95_s),
    ]
    turn_taking = [
        _series("Agent interruptions", scores, n, empty, lambda f: f.interruptions),
        _series("Missed barge-ins", scores, n, empty, lambda f: f.missed_barge_ins),
        _series("Long silences", scores, n, empty, lambda f: f.long_silences),
    ]
    passed = [_series("Pass rate", scores, n, empty, lambda f: f.pass_rate)]
    return [
        Chart(
            "pass_rate",
            "Pass rate",
            "percent",
            passed,
            None if _has_values(passed) else NO_SCORES,
            "passed over all pass/fail scores",
        ),
        Chart(
            "response_gap",
            "Response gap (audio truth)",
            "seconds",
            gap,
            None if recorded and _has_values(gap) else NO_RECORDINGS,
            "p50 of the calls' median gap, p95 of their p95, measured from the recordings",
        ),
        Chart(
            "turn_taking",
            "Turn-taking per call (audio truth)",
            "number",
            turn_taking,
            None if recorded and _has_values(turn_taking) else NO_RECORDINGS,
            "average per analysed call",
        ),
    ]


_Reader = Callable[[CallFigures, ScoreFigures], float | None]

_FIGURES: tuple[tuple[str, str, Kind, Better, str, _Reader], ...] = (
    # key, label, kind, better direction, what it needs (see ``_figures``), how to read it
    ("calls", "Calls", "count", None, "", lambda c, s: float(c.calls)),
    ("pass_rate", "Pass rate", "percent", "up", "scores", lambda c, s: s.pass_rate),
    ("gap_p50", "Response gap p50 (audio)", "seconds", "down", "audio", lambda c, s: s.gap_p50_s),
    ("gap_p95", "Response gap p95 (audio)", "seconds", "down", "audio", lambda c, s: s.gap_p95_s),
    ("e2e_p50", "Vendor e2e latency p50", "seconds", "down", "vendor", lambda c, s: c.e2e_p50_s),
    ("e2e_p95", "Vendor e2e latency p95", "seconds", "down", "vendor", lambda c, s: c.e2e_p95_s),
    (
        "interruptions",
        "Agent interruptions per call",
        "number",
        "down",
        "audio",
        lambda c, s: s.interruptions,
    ),
    (
        "missed_barge_ins",
        "Missed barge-ins per call",
        "number",
        "down",
        "audio",
        lambda c, s: s.missed_barge_ins,
    ),
    ("long_silences", "Long silences per call", "number", "down", "audio", lambda c, s: s.long_silences),
    (
        "error_share",
        "Calls ended in error",
        "percent",
        "down",
        "calls",
        lambda c, s: _ratio(c.errors, c.calls),
    ),
    ("provider_errors", "Failed provider requests", "count", "down", "calls", lambda c, s: c.provider_errors),
    ("cost_per_call", "Cost per call", "usd", "down", "calls", lambda c, s: _ratio(c.cost_usd, c.calls)),
    ("cost_per_minute", "Cost per minute", "usd", "down", "calls", lambda c, s: _cost_per_minute(c)),
)
"""The summary figures, in the order shown."""


def _figures(
    calls: Periods[CallFigures], scores: Periods[ScoreFigures], alert_counts: tuple[int, int]
) -> list[Figure]:
    (call, previous_call), (score, previous_score) = calls.totals, scores.totals
    missing = {
        "calls": None if call.calls else "no calls in this range",
        "scores": None if score.judged else "no pass/fail scores",
        "audio": None if score.audio_calls else "no recordings analysed",
        "vendor": None if call.e2e_turns else "no vendor latency reported",
    }
    figures = [
        Figure(
            key,
            label,
            kind,
            read(call, score),
            read(previous_call, previous_score),
            better,
            missing.get(need),
        )
        for key, label, kind, better, need, read in _FIGURES
    ]
    figures.append(
        Figure("alert_events", "Alert events (firing)", "count", alert_counts[0], alert_counts[1], "down")
    )
    return figures


TOP_ITEMS = 10
"""Rows of the failing-metric and end-reason tables."""


def _top(current: dict[str, int], previous: dict[str, int]) -> list[tuple[str, int, int]]:
    names = sorted(set(current) | set(previous), key=lambda k: (-current.get(k, 0), -previous.get(k, 0), k))
    return [(name, current.get(name, 0), previous.get(name, 0)) for name in names[:TOP_ITEMS]]


def build_overview(
    scope: OverviewScope,
    calls: Periods[CallFigures],
    scores: Periods[ScoreFigures],
    events: Sequence[StoredAlertEvent],
) -> Overview:
    """The page's figures, charts and tables from the store's answers and the alert events of both
    periods (any order; those outside ``[previous_since, until)`` are ignored)."""
    in_period = [e for e in events if scope.since <= e.at < scope.until]
    firing = [e for e in events if e.state == "firing"]
    alert_counts = (
        sum(1 for e in firing if scope.since <= e.at < scope.until),
        sum(1 for e in firing if scope.previous_since <= e.at < scope.since),
    )
    alert_series = _alert_buckets(scope, events)
    call_charts = _call_charts(scope, calls)
    charts = [
        *call_charts[:1],
        *_score_charts(scope, scores),
        *call_charts[1:],
        Chart(
            "alerts",
            "Alert events",
            "count",
            [alert_series],
            None if any(alert_counts) else NO_ALERTS,
            "rules starting to fire, for the whole project",
        ),
    ]
    end_reasons = [
        (reason, now, before, calls_link(scope, scope.since, scope.until, end_reason=reason))
        for reason, now, before in _top(calls.by_item[0], calls.by_item[1])
    ]
    return Overview(
        figures=_figures(calls, scores, alert_counts),
        buckets=_buckets(scope, calls),
        charts=charts,
        failing_metrics=[
            (metric, now, before, calls_link(scope, scope.since, scope.until, failing=metric))
            for metric, now, before in _top(scores.by_item[0], scores.by_item[1])
        ],
        end_reasons=end_reasons,
        alert_events=sorted(in_period, key=lambda e: e.at, reverse=True),
        alert_counts=alert_counts,
        audio_calls=scores.totals[0].audio_calls,
        failing_note=(
            "No failed scores in either period."
            if scores.totals[0].judged or scores.totals[1].judged
            else NO_SCORES
        ),
    )
