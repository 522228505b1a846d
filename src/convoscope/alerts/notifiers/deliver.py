"""The ``alerts.deliver`` job: one alert event through one notifier, retried with backoff, sent once.

Delivering is a job (kind :data:`~convoscope.runtime.kinds.ALERTS_DELIVER`, key ``f"{event id}:{notifier}"``,
:func:`delivery_jobs`), so a receiver that is down delays an alert instead of losing it and every failure
stays on the job row. The handler (:class:`DeliveryJob`) loads the event and the notifier's config through
an :class:`AlertSource` (the alert rules keep both in the metadata database; this module only needs the two
look-ups), sends, and:

* raises :class:`~convoscope.runtime.jobs.JobRetry` for a failure that may pass (a timeout, a refused
  connection, a 408/429/5xx, an SMTP 4xx), after ``RetryPolicy.after_s(attempt)``: exponential, capped,
  and never sooner than the receiver's ``Retry-After``; the runner gives up after its ``max_attempts``;
* raises a :class:`~convoscope.alerts.events.DeliveryError` (a ``ConvoscopeError``, so the job fails for
  good with the message) for one that will not (a 4xx, a refused address, a wrong password, a missing
  secret variable, an unknown notifier or event).

**Sent once.** Queueing the same job again resets its row, and a rule's state can be reported again by a
restarted evaluator, so the handler keeps, per (notifier, rule), the last event it delivered
(:class:`DeliveryMarks`; by default in the project's settings document, :class:`SettingsMarks`) and skips
an event that was already delivered, one whose state (firing or resolved) is the state last delivered for
the rule, and one older than the last delivered (a firing whose retries outlived its own resolution).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ...errors import ConvoscopeError, StoreError
from ...runtime.context import JobContext
from ...runtime.egress import Network
from ...runtime.jobs import JobRetry
from ...runtime.kinds import ALERTS_DELIVER
from ...store.jobqueue import setting_at
from ...store.metadata import Job, JobSpec, JobStatus, MetadataStore
from ..events import AlertEvent, DeliveryError
from .base import DeliveryRetry, PartialDelivery, utc
from .registry import NotifierConfig, build_notifier, check_notifier_name

__all__ = [
    "ALERTS_DELIVER",
    "MARKS_PATH",
    "AlertSource",
    "Delivered",
    "DeliveryJob",
    "DeliveryMarks",
    "RetryPolicy",
    "SettingsMarks",
    "delivery_jobs",
    "delivery_key",
    "delivery_statuses",
]

log = logging.getLogger("convoscope.alerts.deliver")

MARKS_PATH = ("alerts", "delivered")
"""Where :class:`SettingsMarks` keeps the last delivered event per notifier and rule."""


class AlertSource(Protocol):
    """What the delivery handler needs from where events and notifiers are kept."""

    def load_event(self, project_id: str, event_id: str) -> AlertEvent:
        """The event; ``NotFound`` when there is none (the job then fails for good)."""
        ...

    def load_notifier(self, project_id: str, name: str) -> NotifierConfig:
        """The notifier's config (:func:`~.registry.parse_notifier` checks stored JSON); ``NotFound``
        when there is none."""
        ...


@dataclass(frozen=True)
class Delivered:
    """The last event delivered to one notifier for one rule."""

    event_id: str
    state: str
    at: datetime


class DeliveryMarks(Protocol):
    """Where the handler remembers what it delivered."""

    def last_delivered(self, project_id: str, notifier: str, rule_id: str) -> Delivered | None: ...

    def mark_delivered(self, project_id: str, notifier: str, rule_id: str, delivered: Delivered) -> None: ...


class SettingsMarks:
    """Delivery marks in the project's settings document, at ``alerts.delivered.<notifier>.<rule>``
    (one small entry per notifier and rule, however many events there were)."""

    def __init__(self, meta: MetadataStore) -> None:
        self._meta = meta

    def last_delivered(self, project_id: str, notifier: str, rule_id: str) -> Delivered | None:
        found = setting_at(self._meta.project_settings(project_id), (*MARKS_PATH, notifier, rule_id))
        if not isinstance(found, dict):
            return None
        try:
            at = utc(datetime.fromisoformat(found["at"]))
            return Delivered(str(found["event_id"]), str(found["state"]), at)
        except (KeyError, TypeError, ValueError):
            return None  # an entry this version cannot read: deliver rather than drop

    def mark_delivered(self, project_id: str, notifier: str, rule_id: str, delivered: Delivered) -> None:
        at = utc(delivered.at).isoformat()
        value = {"event_id": delivered.event_id, "state": delivered.state, "at": at}
        self._meta.update_project_settings(project_id, (*MARKS_PATH, notifier, rule_id), value)


@dataclass(frozen=True)
class RetryPolicy:
    """When a retryable failure is tried again: ``base_s`` after the first attempt, times ``factor`` after
    each further one, at most ``max_s`` (and never sooner than the receiver's ``Retry-After``)."""

    base_s: float = 60.0
    factor: float = 2.0
    max_s: float = 3600.0

    def after_s(self, attempt: int, hint_s: float | None = None) -> float:
        """The wait after failed attempt number ``attempt`` (1 for the first)."""
        backoff = self.base_s * self.factor ** max(0, attempt - 1)
        return min(self.max_s, max(backoff, hint_s or 0.0))


def delivery_key(event_id: str, notifier: str) -> str:
    """The job key of one event's delivery through one notifier."""
    return f"{event_id}:{notifier}"


def delivery_jobs(event: AlertEvent, notifier_names: Iterable[str]) -> list[JobSpec]:
    """One ``alerts.deliver`` job per notifier (repeats dropped, order kept) for ``event``."""
    jobs: list[JobSpec] = []
    seen: set[str] = set()
    for name in notifier_names:
        if name in seen:
            continue
        seen.add(check_notifier_name(name))
        jobs.append(
            JobSpec(
                kind=ALERTS_DELIVER,
                call_id=delivery_key(event.id, name),
                params={"event_id": event.id, "notifier": name},
            )
        )
    return jobs


def delivery_statuses(
    meta: MetadataStore, project_id: str, event_id: str, notifier_names: Iterable[str]
) -> dict[str, JobStatus]:
    """Where each notifier's delivery of an event stands (pending, running, done, failed with its error),
    by notifier name; a notifier with no job is absent."""
    keys = {delivery_key(event_id, name): name for name in notifier_names}
    found = meta.jobs_for_calls(project_id, list(keys), kinds=[ALERTS_DELIVER])
    return {keys[key]: statuses[0] for key, statuses in found.items() if statuses}


def _target(job: Job) -> tuple[str, str]:
    params: Mapping[str, Any] = job.params
    event_id, notifier = params.get("event_id"), params.get("notifier")
    if not isinstance(event_id, str) or not isinstance(notifier, str) or not event_id or not notifier:
        raise ConvoscopeError(f"job {job.call_id}: parameters name no event_id and notifier")
    return event_id, notifier


class DeliveryJob:
    """The ``alerts.deliver`` handler."""

    def __init__(
        self,
        source: AlertSource,
        marks: DeliveryMarks,
        *,
        env: Mapping[str, str],
        allowed_networks: Iterable[Network] = (),
        policy: RetryPolicy = RetryPolicy(),
    ) -> None:
        """``env`` holds the secrets the configs name (the composition root passes ``os.environ``);
        ``allowed_networks`` are the non-public networks notifiers may reach."""
        self._source = source
        self._marks = marks
        self._env = env
        self._allowed: Sequence[Network] = tuple(allowed_networks)
        self._policy = policy

    @classmethod
    def of(
        cls,
        context: JobContext,
        source: AlertSource,
        *,
        env: Mapping[str, str],
        allowed_networks: Iterable[Network] = (),
        policy: RetryPolicy = RetryPolicy(),
    ) -> DeliveryJob:
        """The handler over the job context's metadata store (marks in the project settings)."""
        marks = SettingsMarks(context.meta)
        return cls(source, marks, env=env, allowed_networks=allowed_networks, policy=policy)

    def __call__(self, job: Job) -> None:
        """Deliver the job's event through its notifier, unless it was already delivered."""
        event_id, name = _target(job)
        try:
            event = self._source.load_event(job.project_id, event_id)
            skip = self._skip_reason(job.project_id, name, event)
            config = None if skip else self._source.load_notifier(job.project_id, name)
        except StoreError as exc:
            raise JobRetry(f"notifier {name!r}: {exc}", after_s=self._policy.after_s(job.attempts)) from None
        if skip or config is None:
            log.info("alert event %s not sent to %s again: %s", event.id, name, skip)
            return
        what = f"{config.kind} notifier {name!r}"
        try:
            build_notifier(name, config, env=self._env, allowed_networks=self._allowed).deliver(event)
        except PartialDelivery as exc:
            self._mark(job.project_id, name, event)
            raise DeliveryError(f"{what}: {exc}", retryable=False) from None
        except DeliveryError as exc:
            if exc.retryable:
                hint = exc.after_s if isinstance(exc, DeliveryRetry) else None
                after = self._policy.after_s(job.attempts, hint)
                message = f"{what}: {exc} (attempt {job.attempts}, next in {after:g} s)"
                raise JobRetry(message, after_s=after) from None
            raise DeliveryError(f"{what}: {exc}", retryable=False) from None
        self._mark(job.project_id, name, event)

    def _skip_reason(self, project_id: str, notifier: str, event: AlertEvent) -> str | None:
        last = self._marks.last_delivered(project_id, notifier, event.rule_id)
        if last is None:
            return None
        if last.event_id == event.id:
            return "already delivered"
        if last.state == event.state:
            return f"rule {event.rule_id} was last reported {last.state} already (event {last.event_id})"
        if last.at > utc(event.at):
            return f"a later event of rule {event.rule_id} was delivered already (event {last.event_id})"
        return None

    def _mark(self, project_id: str, notifier: str, event: AlertEvent) -> None:
        self._marks.mark_delivered(
            project_id, notifier, event.rule_id, Delivered(event.id, event.state, utc(event.at))
        )
