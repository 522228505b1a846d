"""What the server runs on: the stores, the blob store and the ingest worker, opened together.

This is one of the two places (with the CLI) that names concrete store classes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from ..config import Settings
from ..ingest.canonical import CallLimits
from ..model import Call
from ..store.base import CallStore
from ..store.blobs import FileBlobStore
from ..store.clickhouse import open_clickhouse_store
from ..store.metadata import MetadataStore, ProjectInfo
from . import vendor_ingest
from .jobs import JobRunner
from .otlp_job import OTLP_KIND, OtlpIngest
from .pipeline import Planner, job_handlers, plan_follow_ups, planners
from .worker import IngestHealth, IngestWorker, RetryPolicy, assign_identity

__all__ = ["Services", "limits_of", "open_call_store", "open_services"]

log = logging.getLogger("convoscope.server")


@dataclass
class Services:
    """Everything a request handler may touch."""

    settings: Settings
    store: CallStore
    meta: MetadataStore
    blobs: FileBlobStore
    worker: IngestWorker
    default_project: ProjectInfo
    jobs: JobRunner = field(init=False)
    otlp: OtlpIngest = field(init=False)
    planners: list[Planner] = field(default_factory=planners)

    def __post_init__(self) -> None:
        self.jobs = JobRunner(
            self.meta,
            job_handlers(self),
            poll_s=self.settings.outbox_poll_s,
            ingest_busy_at=self.worker.busy_at,
        )
        self.otlp = OtlpIngest(self)
        self.worker.register_kind(OTLP_KIND, self.otlp.store_items)

    def store_calls(self, project_id: str, calls: Sequence[Call], *, version: int | None = None) -> list[str]:
        """Store calls (identity assigned, newest version wins) and queue their follow-up jobs.

        For paths other than the outbox worker: a job that re-stores a call after re-hosting its recording,
        an assembled trace, a re-parsed vendor call. ``version`` defaults to now, so the newer write wins.
        """
        stored = [assign_identity(project_id, call) for call in calls]
        ids = self.store.insert_calls(project_id, stored, version=version or time.time_ns() // 1000)
        self.plan_follow_ups(project_id, stored)
        return ids

    def plan_follow_ups(self, project_id: str, calls: Sequence[Call]) -> None:
        """Queue the jobs every capability wants for these stored calls, and wake the job runner."""
        jobs = plan_follow_ups(project_id, calls, self.planners)
        if jobs:
            self.meta.enqueue_jobs(project_id, jobs)
            self.jobs.notify()

    def close(self) -> None:
        """Close the stores (chDB allows one open data directory per process)."""
        self.store.close()
        self.meta.close()


def limits_of(settings: Settings) -> CallLimits:
    """The ingest bounds configured in the settings."""
    return CallLimits(
        max_batch_calls=settings.max_batch_calls,
        max_call_bytes=settings.max_call_bytes,
        max_turns_per_call=settings.max_turns_per_call,
        max_tool_calls_per_call=settings.max_tool_calls_per_call,
    )


def open_call_store(settings: Settings, *, database: str = "convoscope") -> CallStore:
    """The ClickHouse store the settings name: a server URL, else chDB in the data directory."""
    if settings.clickhouse_url:
        return open_clickhouse_store(
            url=settings.clickhouse_url,
            database=database,
            query_max_threads=settings.query_max_threads,
            system_log_ttl_days=settings.system_log_ttl_days,
        )
    return open_clickhouse_store(
        path=settings.data_dir / "chdb",
        database=database,
        query_max_threads=settings.query_max_threads,
        system_log_ttl_days=settings.system_log_ttl_days,
        merge_threads=settings.merge_threads,
        max_memory_bytes=settings.max_memory_bytes,
    )


def open_services(settings: Settings, *, store: CallStore | None = None) -> Services:
    """Open metadata, blobs and the call store; seed the default project and the headless key."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    meta = MetadataStore(settings.resolved_metadata_url)
    project = meta.ensure_project(settings.default_project)
    if settings.init_api_key:
        meta.seed_api_key(project.id, settings.init_api_key, name="init")
    call_store = store if store is not None else open_call_store(settings)
    worker = IngestWorker(
        meta=meta,
        store=call_store,
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
    blobs = FileBlobStore(settings.data_dir / "blobs")
    services = Services(
        settings=settings, store=call_store, meta=meta, blobs=blobs, worker=worker, default_project=project
    )
    worker.set_after_store(services.plan_follow_ups)
    vendor_ingest.register(services, limits_of(settings))
    return services
