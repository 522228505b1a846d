"""What the server runs on: the stores, the ingest worker, the job runner and every capability, composed.

The stores come from :mod:`convoscope.runtime.stores`; this module adds what only a running server needs
(the outbox worker, the job runner with every capability's handlers, the vendor and OTLP ingest kinds)
and is itself the :class:`~convoscope.runtime.context.JobContext` the capabilities' jobs are given.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from ..alerts.engine import AlertEngine
from ..config import Settings
from ..ingest.canonical import CallLimits
from ..model import Call
from ..redaction import Redactor
from ..runtime.context import Planner
from ..runtime.jobs import JobRunner
from ..runtime.kinds import OTLP_KIND, OTLP_LOGS_KIND
from ..runtime.stores import Stores, open_stores
from ..store.base import CallStore
from ..store.blobs import BlobStore
from ..store.metadata import JobSpec, MetadataStore, ProjectInfo
from ..traces.otlp import OtlpIngest
from ..traces.otlp_logs import OtlpLogIngest
from . import vendor_ingest
from .audit import AuditRecorder
from .pipeline import job_handlers, plan_follow_ups, planners
from .retention import RetentionSweeper
from .scheduler import Scheduler
from .simulation_runner import SimulationRunner
from .worker import IngestHealth, IngestWorker, RetryPolicy, assign_identity

__all__ = ["Services", "limits_of", "open_services"]

log = logging.getLogger("convoscope.server")


@dataclass
class Services:
    """Everything a request handler may touch."""

    settings: Settings
    store: CallStore
    meta: MetadataStore
    blobs: BlobStore
    worker: IngestWorker
    default_project: ProjectInfo
    jobs: JobRunner = field(init=False)
    otlp: OtlpIngest = field(init=False)
    otlp_logs: OtlpLogIngest = field(init=False)
    simulations: SimulationRunner = field(init=False)
    alerts: AlertEngine = field(init=False)
    schedules: Scheduler = field(init=False)
    redaction: Redactor = field(init=False)
    audit: AuditRecorder = field(init=False)
    retention: RetentionSweeper = field(init=False)
    planners: list[Planner] = field(default_factory=planners)

    def __post_init__(self) -> None:
        self.audit = AuditRecorder(self.meta.append_audit)
        self.redaction = Redactor(self.meta, self.blobs)
        self.otlp = OtlpIngest(self, redact=self.redaction.spans)
        self.otlp_logs = OtlpLogIngest(self, self.otlp, redact=self.redaction.records)
        self.alerts = AlertEngine(self, ui_base_url=self.settings.public_url)
        self.jobs = JobRunner(
            self.meta,
            job_handlers(self, self.otlp, on_scored=self.alerts.on_scored),
            poll_s=self.settings.outbox_poll_s,
            ingest_busy_at=self.worker.busy_at,
            renew_every_s=self.settings.claim_lease_s / 3,
        )
        self.worker.register_kind(OTLP_KIND, self.otlp.store_items)
        self.worker.register_kind(OTLP_LOGS_KIND, self.otlp_logs.store_items)
        self.simulations = SimulationRunner(self)
        self.schedules = Scheduler(self)
        self.retention = RetentionSweeper(self)

    def store_calls(self, project_id: str, calls: Sequence[Call], *, version: int | None = None) -> list[str]:
        """Store calls (identity assigned, newest version wins) and queue their follow-up jobs.

        For paths other than the outbox worker: a job that re-stores a call after re-hosting its recording,
        an assembled trace, a re-parsed vendor call. ``version`` defaults to now, so the newer write wins.
        """
        stored = self.redaction.calls(project_id, [assign_identity(project_id, call) for call in calls])
        ids = self.store.insert_calls(project_id, stored, version=version or time.time_ns() // 1000)
        self.plan_follow_ups(project_id, stored)
        return ids

    def plan_follow_ups(self, project_id: str, calls: Sequence[Call]) -> None:
        """Queue the jobs every capability wants for these stored calls, and wake the job runner."""
        self.enqueue_jobs(project_id, plan_follow_ups(project_id, calls, self.planners))

    def enqueue_jobs(self, project_id: str, jobs: Sequence[JobSpec]) -> None:
        """Queue jobs and wake the job runner (nothing happens for none)."""
        if jobs:
            self.meta.enqueue_jobs(project_id, jobs)
            self.jobs.notify()

    def wake_ingest(self) -> None:
        """Wake the outbox worker: a row was just committed."""
        self.worker.notify()

    def close(self) -> None:
        """Close the stores (chDB allows one open data directory per process)."""
        self.audit.close()
        self.store.close()
        self.meta.close()
        self.blobs.close()


def limits_of(settings: Settings) -> CallLimits:
    """The ingest bounds configured in the settings."""
    return CallLimits(
        max_batch_calls=settings.max_batch_calls,
        max_call_bytes=settings.max_call_bytes,
        max_turns_per_call=settings.max_turns_per_call,
        max_tool_calls_per_call=settings.max_tool_calls_per_call,
    )


def open_services(settings: Settings, *, store: CallStore | None = None) -> Services:
    """Open the stores and compose the worker, the job runner and every capability over them."""
    return compose_services(open_stores(settings, store=store))


def compose_services(stores: Stores) -> Services:
    """The server's services over opened stores."""
    settings = stores.settings
    worker = IngestWorker(
        meta=stores.meta,
        store=stores.store,
        limits=limits_of(settings),
        batch_calls=settings.outbox_batch_calls,
        poll_s=settings.outbox_poll_s,
        retention=timedelta(days=settings.outbox_retention_days),
        retry=RetryPolicy(max_attempts=settings.outbox_max_attempts, first_delay_s=settings.outbox_retry_s),
        health=IngestHealth(
            stall_s=settings.health_stall_s,
            dead_letter_window_s=settings.health_dead_letter_window_s,
            max_dead_letters=settings.health_max_dead_letters,
        ),
    )
    services = Services(
        settings=settings,
        store=stores.store,
        meta=stores.meta,
        blobs=stores.blobs,
        worker=worker,
        default_project=stores.default_project,
    )
    worker.set_after_store(services.plan_follow_ups)
    worker.set_before_store(services.redaction.calls)
    worker.set_after_drain(services.redaction.scrub_outbox)
    vendor_ingest.register(services, limits_of(settings))
    return services
