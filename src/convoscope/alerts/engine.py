"""The alert engine: reads each enabled rule's window, steps its state, keeps and hands on its events.

It runs in two places, both in the server:

* **on a schedule** (:meth:`AlertEngine.run`, every ``alerts_interval_s``): every enabled rule of every
  project with one is evaluated against the store (:mod:`convoscope.store.alert_queries`);
* **right after each evaluation batch** (:meth:`AlertEngine.on_scored`, given to the ``evals.run``
  handler): ``immediate`` rules read the batch's fresh results directly (no query), so a call failing a
  critical metric is an event as soon as it is scored, not up to a minute later. Their resolve comes
  from the schedule (the window holds no failing call any more).

Each evaluation is :func:`.evaluate.step` over statistics gathered here; the cheap reading comes first
(one aggregate per rule) and the calls and recent buckets behind an event are read only when the state
changes. The new state and its event are written in one metadata transaction, then the event is handed
to ``deliver(event, notifier_names)``, which by default queues one ``alerts.deliver`` job per notifier
(``notifiers.deliver.delivery_jobs``), so a receiver that is down delays the alert but never loses it.
Evaluations are serialised by one lock, so the schedule and an evaluation batch never step the same rule
at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from ..errors import ConvoscopeError, StoreError
from ..model import Call, MetricResult
from ..runtime.context import JobContext
from ..store.alert_queries import MAX_CALL_IDS, AlertQueriesMixin, AlertScope
from ..store.alerts_meta import StoredAlertEvent, StoredRule, StoredRuleState, new_event_id
from ..store.schema import PASSED_PREFIX
from .evaluate import BUCKET_SECONDS, BucketValue, RuleState, WindowStats, recent_bucket_count, step
from .events import AlertEvent
from .rules import (
    AlertRule,
    ImmediateRule,
    NewFailureRule,
    SpikeRule,
    ThresholdRule,
    TrendRule,
    parse_rule,
)

__all__ = ["SERIES_BUCKETS", "AlertEngine", "Deliver", "RuleOutcome", "event_of", "stored_event"]

log = logging.getLogger("convoscope.alerts")

Deliver = Callable[[AlertEvent, list[str]], None]
"""(event, the rule's notifier names) -> None: queues the event's delivery."""

SERIES_BUCKETS = 12
"""Windows of history an event's ``series`` shows (threshold, spike, immediate: one value per window)."""


@dataclass(frozen=True)
class RuleOutcome:
    """One rule's evaluation: its state after it, and the event when the state changed."""

    rule_id: str
    state: StoredRuleState
    event: AlertEvent | None


def stored_event(event: AlertEvent) -> StoredAlertEvent:
    """The event as the metadata store keeps it."""
    return StoredAlertEvent(
        id=event.id,
        project_id=event.project_id,
        rule_id=event.rule_id,
        rule_name=event.rule_name,
        state=event.state,
        severity=str(event.severity),
        at=event.at,
        summary=event.summary,
        value=event.value,
        threshold=event.threshold,
        sample_size=event.sample_size,
        window_s=event.window_s,
        call_ids=list(event.call_ids),
        details=_plain(dict(event.details)),
        series=[float(v) for v in event.series],
    )


def event_of(stored: StoredAlertEvent, *, ui_base_url: str | None = None) -> AlertEvent:
    """A kept event as notifiers take it."""
    from .events import Severity

    return AlertEvent(
        id=stored.id,
        project_id=stored.project_id,
        rule_id=stored.rule_id,
        rule_name=stored.rule_name,
        state="firing" if stored.state == "firing" else "resolved",
        severity=Severity(stored.severity),
        at=stored.at,
        summary=stored.summary,
        value=stored.value,
        threshold=stored.threshold,
        sample_size=stored.sample_size,
        window_s=stored.window_s,
        call_ids=tuple(stored.call_ids),
        details=stored.details,
        series=tuple(stored.series),
        ui_base_url=ui_base_url,
    )


def _plain(value: Any) -> Any:
    """JSON-safe details (floats that are not finite become None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value


def _scope(rule: AlertRule) -> AlertScope:
    scope = rule.spec.scope
    return AlertScope(scope.agent_id, scope.agent_version, scope.source, scope.tag)


def _in_scope(rule: AlertRule, call: Call) -> bool:
    scope = rule.spec.scope
    return (
        (scope.agent_id is None or call.agent_id == scope.agent_id)
        and (scope.agent_version is None or call.agent_version == scope.agent_version)
        and (scope.source is None or call.source.value == scope.source)
        and (scope.tag is None or scope.tag in call.tags)
    )


class AlertEngine:
    """Evaluates a project's enabled rules over the job context's stores."""

    def __init__(
        self,
        context: JobContext,
        *,
        deliver: Deliver | None = None,
        ui_base_url: str | None = None,
    ) -> None:
        self._context = context
        self.deliver: Deliver = deliver or self.enqueue_delivery
        """The delivery seam (default: queue one ``alerts.deliver`` job per notifier); settable."""
        self.ui_base_url = ui_base_url
        self._lock = threading.Lock()

    def enqueue_delivery(self, event: AlertEvent, notifier_names: list[str]) -> None:
        """Queue the event's delivery through each notifier (:func:`.notifiers.deliver.delivery_jobs`)."""
        from .notifiers.deliver import delivery_jobs

        self._context.enqueue_jobs(event.project_id, delivery_jobs(event, notifier_names))

    @property
    def interval_s(self) -> float:
        """Seconds between scheduled evaluations (``alerts_interval_s``)."""
        return float(self._context.settings.alerts_interval_s)

    def _queries(self) -> AlertQueriesMixin:
        store = self._context.store
        if not isinstance(store, AlertQueriesMixin):
            raise StoreError(f"the call store ({type(store).__name__}) cannot answer alert queries")
        return store

    # -- the schedule --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Evaluate every project's rules every ``alerts_interval_s`` until cancelled; a failing round is
        logged and the next one runs as planned (the task never dies)."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await asyncio.to_thread(self.evaluate_all)
            except Exception:  # the schedule must outlive any one round
                log.exception("alert evaluation round failed")

    def evaluate_all(self, *, now: datetime | None = None) -> list[AlertEvent]:
        """One round over every project with an enabled rule; returns the events it produced."""
        events: list[AlertEvent] = []
        for project_id in self._context.meta.alert_rule_projects():
            events.extend(self.evaluate_project(project_id, now=now))
        return events

    def evaluate_project(self, project_id: str, *, now: datetime | None = None) -> list[AlertEvent]:
        """Every enabled rule of the project; a rule that fails to evaluate is logged, not fatal."""
        events: list[AlertEvent] = []
        for stored in self._context.meta.list_alert_rules(project_id, enabled_only=True):
            try:
                outcome = self._evaluate(project_id, stored, now or datetime.now(UTC))
            except (ConvoscopeError, ValidationError) as exc:
                log.warning("alert rule %s of project %s not evaluated: %s", stored.id, project_id, exc)
                continue
            if outcome.event is not None:
                events.append(outcome.event)
        return events

    def evaluate_rule(
        self, project_id: str, rule_id: str, *, now: datetime | None = None
    ) -> RuleOutcome | None:
        """Evaluate one rule now (disabled ones too: asked for by name); None when it does not exist."""
        stored = self._context.meta.get_alert_rule(project_id, rule_id)
        if stored is None:
            return None
        return self._evaluate(project_id, stored, now or datetime.now(UTC))

    def _evaluate(self, project_id: str, stored: StoredRule, now: datetime) -> RuleOutcome:
        rule = parse_rule(stored.id, stored.body)
        with self._lock:
            current = self._context.meta.get_alert_rule(project_id, stored.id)
            if current is None:
                return RuleOutcome(stored.id, stored.state, None)
            state = RuleState(**asdict(current.state))
            stats = self._stats(project_id, rule, now, full=False)
            new_state, event = self._step(project_id, rule, stats, state, now)
            if event is not None and event.state == "firing":
                # Only an event needs the calls and the recent buckets behind it.
                stats = self._stats(project_id, rule, now, full=True)
                new_state, event = self._step(project_id, rule, stats, state, now)
            return self._save(project_id, rule, new_state, event)

    def _step(
        self, project_id: str, rule: AlertRule, stats: WindowStats, state: RuleState, now: datetime
    ) -> tuple[RuleState, AlertEvent | None]:
        return step(
            rule,
            stats,
            state,
            project_id=project_id,
            now=now,
            event_id=new_event_id(),
            ui_base_url=self.ui_base_url,
        )

    def _save(
        self, project_id: str, rule: AlertRule, state: RuleState, event: AlertEvent | None
    ) -> RuleOutcome:
        kept = StoredRuleState(**asdict(state))
        written = self._context.meta.save_alert_state(
            project_id, rule.id, kept, None if event is None else stored_event(event)
        )
        if not written:
            return RuleOutcome(rule.id, kept, None)
        if event is not None and rule.spec.notifiers:
            try:
                self.deliver(event, list(rule.spec.notifiers))
            except Exception:  # the event is kept; a delivery seam failing must not undo it
                log.exception("alert event %s of rule %s could not be queued for delivery", event.id, rule.id)
        return RuleOutcome(rule.id, kept, event)

    # -- right after an evaluation batch --------------------------------------------------------------

    def on_scored(self, project_id: str, calls: Sequence[Call], results: Sequence[MetricResult]) -> None:
        """Immediate rules over a batch's fresh results: a rule fires when at least ``min_samples`` calls
        in its scope failed its metric. Never raises (the batch's scores are already stored)."""
        try:
            self.immediate(project_id, calls, results)
        except Exception:
            log.exception("immediate alert rules of project %s not evaluated", project_id)

    def immediate(
        self,
        project_id: str,
        calls: Sequence[Call],
        results: Sequence[MetricResult],
        *,
        now: datetime | None = None,
    ) -> list[AlertEvent]:
        """:meth:`on_scored`, raising; returns the events."""
        failed = [result for result in results if result.passed is False]
        if not failed:
            return []
        rules = [
            (stored, parse_rule(stored.id, stored.body))
            for stored in self._context.meta.list_alert_rules(project_id, enabled_only=True)
            if stored.body.get("kind") == "immediate"
        ]
        if not rules:
            return []
        by_id = {call.id: call for call in calls if call.id is not None}
        moment = now or datetime.now(UTC)
        events: list[AlertEvent] = []
        for _, rule in rules:
            assert isinstance(rule.spec, ImmediateRule)
            metric = rule.spec.immediate.metric
            failing = [
                r.call_id
                for r in sorted(failed, key=lambda r: r.evaluated_at, reverse=True)
                if r.metric == metric and (r.call_id in by_id and _in_scope(rule, by_id[r.call_id]))
            ]
            if not failing:
                continue
            stats = WindowStats(
                since=moment - timedelta(seconds=rule.spec.window_s),
                until=moment,
                value=float(len(failing)),
                samples=len(failing),
                call_ids=tuple(dict.fromkeys(failing))[:MAX_CALL_IDS],
            )
            with self._lock:
                current = self._context.meta.get_alert_rule(project_id, rule.id)
                if current is None or not current.enabled:
                    continue
                state = RuleState(**asdict(current.state))
                new_state, event = self._step(project_id, rule, stats, state, moment)
                if event is None and not new_state.firing:
                    continue  # a cooldown held it back: keep the state as it was
                outcome = self._save(project_id, rule, new_state, event)
            if outcome.event is not None:
                events.append(outcome.event)
        return events

    # -- statistics ---------------------------------------------------------------------------------

    def _stats(self, project_id: str, rule: AlertRule, now: datetime, *, full: bool) -> WindowStats:
        """The window statistics the rule's kind reads; ``full`` adds the calls and the series."""
        q = self._queries()
        spec = rule.spec
        scope = _scope(rule)
        since = now - timedelta(seconds=spec.window_s)
        if isinstance(spec, TrendRule):
            params = spec.trend
            recent = recent_bucket_count(spec.window_s, params.bucket)
            width = BUCKET_SECONDS[params.bucket]
            buckets = q.alert_buckets(
                project_id,
                spec.target,
                scope,
                aggregate=params.aggregate,
                until=now,
                width_s=width,
                count=params.baseline_buckets + recent,
            )
            values = [BucketValue(value, n) for value, n in buckets]
            calls: list[str] = []
            if full:
                calls = q.alert_calls(
                    project_id, spec.target, scope, since=now - timedelta(seconds=recent * width), until=now
                )
            return WindowStats(
                since=since,
                until=now,
                samples=sum(b.count for b in values[-recent:]),
                buckets=values,
                recent_buckets=recent,
                series=[b.value for b in values if b.value is not None],
                call_ids=calls,
            )
        if isinstance(spec, NewFailureRule):
            return self._new_failures(q, project_id, spec, scope, since, now)
        if isinstance(spec, ImmediateRule):
            target = f"{PASSED_PREFIX}{spec.immediate.metric}"
            rate, n = q.alert_aggregate(project_id, target, scope, aggregate="avg", since=since, until=now)
            failing = 0 if rate is None else round(n * (1.0 - rate))
            calls = (
                q.alert_calls(project_id, target, scope, since=since, until=now, op="<", value=0.5)
                if full
                else []
            )
            return WindowStats(since=since, until=now, value=float(failing), samples=failing, call_ids=calls)
        assert isinstance(spec, ThresholdRule | SpikeRule)
        aggregate = spec.threshold.aggregate if isinstance(spec, ThresholdRule) else spec.spike.aggregate
        value, n = q.alert_aggregate(
            project_id, spec.target, scope, aggregate=aggregate, since=since, until=now
        )
        baseline: float | None = None
        baseline_n = 0
        if isinstance(spec, SpikeRule):
            start = since - timedelta(seconds=spec.spike.baseline_window_s)
            baseline, baseline_n = q.alert_aggregate(
                project_id, spec.target, scope, aggregate=aggregate, since=start, until=since
            )
        calls = []
        series: list[float] = []
        if full:
            op = spec.threshold.op if isinstance(spec, ThresholdRule) and aggregate != "count" else None
            limit = spec.threshold.value if op is not None and isinstance(spec, ThresholdRule) else None
            calls = q.alert_calls(project_id, spec.target, scope, since=since, until=now, op=op, value=limit)
            history = q.alert_buckets(
                project_id,
                spec.target,
                scope,
                aggregate=aggregate,
                until=now,
                width_s=max(60, int(spec.window_s)),
                count=SERIES_BUCKETS,
            )
            series = [
                v if v is not None else 0.0 for v, _ in history if v is not None or aggregate == "count"
            ]
        return WindowStats(
            since=since,
            until=now,
            value=value,
            samples=n,
            baseline=baseline,
            baseline_samples=baseline_n,
            call_ids=calls,
            series=series,
        )

    def _new_failures(
        self,
        q: AlertQueriesMixin,
        project_id: str,
        spec: NewFailureRule,
        scope: AlertScope,
        since: datetime,
        now: datetime,
    ) -> WindowStats:
        params = spec.new_failure
        found = q.alert_failures(
            project_id, scope, what=params.what, metric=params.metric, since=since, until=now
        )
        before = q.alert_failed_before(
            project_id, scope, what=params.what, metric=params.metric, before=since, items=set(found)
        )
        new = sorted(set(found) - before)
        calls: list[str] = []
        for item in new:
            calls.extend(found[item][1])
        return WindowStats(
            since=since,
            until=now,
            value=float(len(new)),
            samples=sum(found[item][0] for item in new),
            call_ids=tuple(dict.fromkeys(calls))[:MAX_CALL_IDS],
            new_items=new,
        )
