"""Post-ingest jobs, raw vendor events and project settings in the metadata database.

Work that follows a stored call (re-hosting its recording, audio analysis, evaluation, assembling a call
from trace spans) is queued here rather than run on the request path: it survives a restart, it is
retried with backoff, and its last state, failure included, stays visible on the call. Each (project,
kind, call) has one row, so queueing the same job again replaces its parameters instead of piling up.

The methods are mixed into ``MetadataStore``; they share its engine and its transactions.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..errors import InputError, NotFound, StoreError
from .meta import JobRow, JobStatusValue, ProjectRow, SourceEventRow

__all__ = ["Job", "JobFailure", "JobQueueMixin", "JobSpec", "JobStatus", "NewSourceEvent", "setting_at"]

_EVENT_ZLIB_LEVEL = 6  # raw vendor events are kept for re-parsing: ratio matters more than on the outbox
_IN_CHUNK = 500
"""Values per ``IN (...)`` of a batch settle or lookup, far below SQLite's bound-variable limit."""
_JOB_KEY = ("project_id", "kind", "call_id")
_RESET_ON_REQUEUE = ("params", "status", "attempts", "error", "run_after", "updated_at")


@dataclass(frozen=True)
class JobSpec:
    """A job to queue: what to do (``kind``), for which call, with which parameters, not before when."""

    kind: str
    call_id: str
    params: dict[str, Any] = field(default_factory=dict)
    run_after: datetime | None = None


@dataclass(frozen=True)
class NewSourceEvent:
    """A raw vendor event to keep: which call of which source it belongs to, its unique key, its bytes."""

    project_id: str
    source: str
    external_id: str
    event_key: str
    payload: bytes
    received_at: datetime | None = None
    """When the event reached the server (the outbox row's time); ``None`` means now. A call whose events
    carry no start time starts at its first event's receive time, so the endpoint and the worker must
    agree on it."""


@dataclass(frozen=True)
class Job:
    """A claimed job, as a handler receives it."""

    id: int
    project_id: str
    kind: str
    call_id: str
    params: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class JobStatus:
    """Where one job of a call stands, for the call detail and for inspection."""

    kind: str
    call_id: str
    status: str
    attempts: int
    error: str | None
    updated_at: datetime


@dataclass(frozen=True)
class JobFailure:
    """A failed run of a claimed job: its error, and when to run it again (None: failed for good)."""

    job_id: int
    error: str
    retry_at: datetime | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None, default: datetime) -> datetime:
    if moment is None:
        return default
    if moment.tzinfo is None:
        raise InputError("job times must be timezone-aware")
    return moment


def _dialect_insert(dialect: str, table: Any) -> Any:
    """An ``INSERT`` that knows ``ON CONFLICT`` (SQLite and PostgreSQL spell it alike)."""
    if dialect == "sqlite":
        return sqlite_insert(table)
    if dialect == "postgresql":
        return postgresql_insert(table)
    raise StoreError(f"the metadata store supports SQLite and PostgreSQL, not {dialect}")


def _upsert_statement(session: Session) -> Any:
    """The dialect's ``INSERT INTO jobs … ON CONFLICT (project, kind, call) DO UPDATE`` of one row.

    On the table, not the ORM class, so a list of rows runs as the driver's ``executemany`` of one
    compiled statement: a many-row ``VALUES`` (or the ORM's bulk insert) is compiled afresh per batch,
    which cost about 200 µs per job, most of planning a stored call's follow-ups.
    """
    statement = _dialect_insert(session.get_bind().dialect.name, JobRow.__table__)
    reset = {name: statement.excluded[name] for name in _RESET_ON_REQUEUE}
    return statement.on_conflict_do_update(index_elements=list(_JOB_KEY), set_=reset)


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """``values`` in slices small enough to bind in one ``IN (...)``."""
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def _settle(
    session: Session, job_ids: Sequence[int], values: dict[str, Any], now: datetime, claimer: str
) -> int:
    """Set ``values`` on those of ``job_ids`` that are running under this claimer; returns how many changed.

    A job another process took over after this one's lease ran out is that process's to settle.
    """
    result = session.execute(
        update(JobRow)
        .where(
            JobRow.id.in_(job_ids),
            JobRow.status == JobStatusValue.RUNNING,
            or_(JobRow.claimed_by.is_(None), JobRow.claimed_by == claimer),
        )
        .values(**values, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _check_known(session: Session, job_ids: Collection[int]) -> None:
    """``NotFound`` (rolling the transaction back) when any of ``job_ids`` names no job."""
    known: set[int] = set()
    for chunk in _chunks(sorted(job_ids)):
        known.update(session.scalars(select(JobRow.id).where(JobRow.id.in_(chunk))))
    missing = sorted(set(job_ids) - known)
    if missing:
        raise NotFound(f"job {', '.join(map(str, missing))} not found")


def _status(row: JobRow) -> JobStatus:
    return JobStatus(
        kind=row.kind,
        call_id=row.call_id,
        status=row.status,
        attempts=row.attempts,
        error=row.error,
        updated_at=row.updated_at,
    )


class JobQueueMixin:
    """Jobs, vendor events and project settings; mixed into ``MetadataStore``, which provides ``_session``."""

    _session: Callable[[], AbstractContextManager[Session]]
    """A session committed on success (``MetadataStore._session``)."""
    _claimer: str
    """This store instance's name on the jobs it claims."""
    _claim_lease: timedelta
    """How long a claim holds a job unless renewed."""
    _backend: str
    """``sqlite`` or ``postgresql``."""

    # Jobs -------------------------------------------------------------------------------------------

    def enqueue_jobs(self, project_id: str, jobs: Sequence[JobSpec]) -> None:
        """Queue jobs; a job already known for the same (kind, call) is reset to pending with the new params.

        A job that is running when it is queued again is reset too: the handler's later ``finish_job``
        then finds it pending and leaves it so, and the job runs once more with the newer parameters.
        The whole batch is one ``executemany`` of an ``INSERT … ON CONFLICT DO UPDATE`` in one
        transaction: a read and a write per job held the database lock the outbox commits wait for.
        """
        if not jobs:
            return
        now = _now()
        latest: dict[tuple[str, str], JobSpec] = {(job.kind, job.call_id): job for job in jobs}
        rows = [
            {
                "project_id": project_id,
                "kind": kind,
                "call_id": call_id,
                "params": dict(job.params),
                "status": JobStatusValue.PENDING,
                "attempts": 0,
                "error": None,
                "run_after": _aware(job.run_after, now),
                "created_at": now,
                "updated_at": now,
            }
            for (kind, call_id), job in latest.items()
        ]
        self._upsert_jobs(rows)

    def _upsert_jobs(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or replace job rows keyed by (project, kind, call), in one transaction."""
        with self._session() as session:
            session.execute(_upsert_statement(session), rows)

    def claim_jobs(self, kinds: Collection[str], limit: int, *, now: datetime | None = None) -> list[Job]:
        """Up to ``limit`` due jobs of the given kinds, oldest due first, marked running under a lease.

        A job stays running until ``finish_job`` or ``fail_job``, its lease renewed by ``renew_jobs``
        while it works. A running job whose lease has run out belonged to a process that died (or
        stalled for the whole lease) and is due again, so several worker processes sharing a database
        lose no job when one is killed; ``recover_jobs`` hands back what a previous run of this process
        left running.
        """
        if limit <= 0 or not kinds:
            return []
        moment = _aware(now, _now())
        abandoned = and_(JobRow.status == JobStatusValue.RUNNING, JobRow.claimed_until < moment)
        with self._session() as session:
            due = session.scalars(
                select(JobRow.id)
                .where(
                    or_(and_(JobRow.status == JobStatusValue.PENDING, JobRow.run_after <= moment), abandoned),
                    JobRow.kind.in_(sorted(kinds)),
                )
                .order_by(JobRow.run_after, JobRow.id)
                .limit(limit)
                # PostgreSQL: concurrent claimers lock and take disjoint jobs instead of queueing behind
                # each other's rows (SQLite renders no FOR UPDATE; its writers are serialised anyway).
                .with_for_update(skip_locked=True)
            ).all()
            if not due:
                return []
            # One UPDATE … RETURNING for the whole claim (an UPDATE per job made a claim of 64 cost
            # 150 ms); the status condition keeps a job another claimer took meanwhile out.
            claimed = session.execute(
                update(JobRow)
                .where(
                    JobRow.id.in_(due),
                    or_(JobRow.status == JobStatusValue.PENDING, abandoned),
                )
                .values(
                    status=JobStatusValue.RUNNING,
                    attempts=JobRow.attempts + 1,
                    updated_at=moment,
                    claimed_by=self._claimer,
                    claimed_until=moment + self._claim_lease,
                )
                .returning(
                    JobRow.id, JobRow.project_id, JobRow.kind, JobRow.call_id, JobRow.params, JobRow.attempts
                )
                .execution_options(synchronize_session=False)
            ).all()
        order = {job_id: position for position, job_id in enumerate(due)}
        jobs = [
            Job(
                id=row.id,
                project_id=row.project_id,
                kind=row.kind,
                call_id=row.call_id,
                params=dict(row.params),  # decoded afresh from this statement's rows: not shared
                attempts=row.attempts,
            )
            for row in claimed
        ]
        return sorted(jobs, key=lambda job: order[job.id])

    def finish_job(self, job_id: int) -> None:
        """Mark a running job done (a job re-queued meanwhile stays pending and runs again)."""
        self.settle_jobs([job_id])

    def fail_job(self, job_id: int, error: str, *, retry_at: datetime | None = None) -> None:
        """Record a failure: pending again at ``retry_at`` for a transient one, else failed for good."""
        self.settle_jobs([], [JobFailure(job_id, error, retry_at)])

    def finish_jobs(self, job_ids: Collection[int]) -> None:
        """Mark running jobs done in one statement (see ``finish_job``)."""
        self.settle_jobs(job_ids)

    def settle_jobs(self, done: Collection[int], failed: Sequence[JobFailure] = ()) -> None:
        """Record the outcome of several running jobs in one transaction: ``done`` ones and ``failed`` ones.

        A batch of jobs is settled with one commit (an fsync on SQLite) instead of one per job. Only
        running jobs change, so a job queued again meanwhile stays pending; an id that names no job
        is ``NotFound`` and nothing is recorded.
        """
        if not done and not failed:
            return
        now = _now()
        with self._session() as session:
            settled = 0
            for chunk in _chunks(sorted(set(done))):
                done_values = {"status": JobStatusValue.DONE, "error": None}
                settled += _settle(session, chunk, done_values, now, self._claimer)
            for failure in failed:
                values: dict[str, Any] = {"error": failure.error}
                if failure.retry_at is None:
                    values["status"] = JobStatusValue.FAILED
                else:
                    values["status"] = JobStatusValue.PENDING
                    values["run_after"] = _aware(failure.retry_at, now)
                settled += _settle(session, [failure.job_id], values, now, self._claimer)
            asked = set(done) | {failure.job_id for failure in failed}
            if settled < len(asked):
                _check_known(session, asked)

    def record_outcomes(self, project_id: str, kind: str, outcomes: Mapping[str, str | None]) -> None:
        """Show a job's outcome on calls it was not queued under: {call id: error, or None for done}.

        A job keyed by something other than a call (an OTLP assembly is keyed by its conversation) still
        belongs on the call it produced; this writes that call's row of ``kind`` as done or failed, with
        one upsert, and it is never claimed (it is not pending).
        """
        if not outcomes:
            return
        now = _now()
        rows: list[dict[str, Any]] = [
            {
                "project_id": project_id,
                "kind": kind,
                "call_id": call_id,
                "params": {},
                "status": JobStatusValue.DONE if error is None else JobStatusValue.FAILED,
                "attempts": 1,
                "error": error,
                "run_after": now,
                "created_at": now,
                "updated_at": now,
            }
            for call_id, error in sorted(outcomes.items())
        ]
        self._upsert_jobs(rows)

    def renew_jobs(self, job_ids: Collection[int]) -> int:
        """Extend the lease of running jobs this store claimed (the runner does so while they work);
        returns how many it still holds."""
        if not job_ids:
            return 0
        now = _now()
        held = 0
        with self._session() as session:
            for chunk in _chunks(sorted(set(job_ids))):
                result = session.execute(
                    update(JobRow)
                    .where(
                        JobRow.id.in_(chunk),
                        JobRow.status == JobStatusValue.RUNNING,
                        JobRow.claimed_by == self._claimer,
                    )
                    .values(claimed_until=now + self._claim_lease)
                    .execution_options(synchronize_session=False)
                )
                held += int(getattr(result, "rowcount", 0) or 0)
        return held

    def recover_jobs(self) -> int:
        """Hand jobs left running by a process that died back to the queue; returns how many.

        SQLite has one process running jobs per database, so whatever is running at its start was left
        by its previous run. On PostgreSQL other workers may be running jobs now: only the jobs whose
        lease has run out (or that were claimed before leases existed) are handed back.
        """
        now = _now()
        stale = JobRow.status == JobStatusValue.RUNNING
        if self._backend == "postgresql":
            stale = and_(stale, or_(JobRow.claimed_until.is_(None), JobRow.claimed_until < now))
        with self._session() as session:
            result = session.execute(
                update(JobRow).where(stale).values(status=JobStatusValue.PENDING, updated_at=now)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def jobs_for_call(self, project_id: str, call_id: str) -> list[JobStatus]:
        """Every job of one call, by kind."""
        with self._session() as session:
            rows = session.scalars(
                select(JobRow)
                .where(JobRow.project_id == project_id, JobRow.call_id == call_id)
                .order_by(JobRow.kind)
            ).all()
            return [_status(row) for row in rows]

    def jobs_for_calls(
        self, project_id: str, call_ids: Collection[str], *, kinds: Collection[str] | None = None
    ) -> dict[str, list[JobStatus]]:
        """Every job (of ``kinds``, else of any kind) of several calls, by call then kind, in one query per
        chunk; a call without jobs is absent."""
        found: dict[str, list[JobStatus]] = {}
        with self._session() as session:
            for chunk in _chunks(sorted(set(call_ids))):
                query = select(JobRow).where(JobRow.project_id == project_id, JobRow.call_id.in_(chunk))
                if kinds is not None:
                    query = query.where(JobRow.kind.in_(sorted(kinds)))
                for row in session.scalars(query.order_by(JobRow.call_id, JobRow.kind)):
                    found.setdefault(row.call_id, []).append(_status(row))
        return found

    def job_counts(self) -> dict[str, int]:
        """How many job rows are pending or running (due or not) and how many failed, for health and tests.

        An outcome shown on a produced call (:meth:`record_outcomes`) is a row of its own, so a failed
        OTLP assembly counts on its conversation's row and on its call's."""
        with self._session() as session:
            rows = session.execute(select(JobRow.status, func.count()).group_by(JobRow.status)).all()
        counts = {status: 0 for status in ("pending", "running", "failed")}
        for status, count in rows:
            if status in counts:
                counts[status] = int(count)
        return counts

    def due_job_count(self, kinds: Collection[str] | None = None, *, now: datetime | None = None) -> int:
        """How many jobs are pending and due now, or running."""
        moment = _aware(now, _now())
        condition = or_(
            and_(JobRow.status == JobStatusValue.PENDING, JobRow.run_after <= moment),
            JobRow.status == JobStatusValue.RUNNING,
        )
        query = select(func.count()).select_from(JobRow).where(condition)
        if kinds is not None:
            query = query.where(JobRow.kind.in_(sorted(kinds)))
        with self._session() as session:
            return int(session.scalar(query) or 0)

    # Vendor events ----------------------------------------------------------------------------------

    def add_source_event(
        self, project_id: str, source: str, external_id: str, event_key: str, payload: bytes
    ) -> bool:
        """Keep one raw vendor event of a call; False when this exact event was stored before (a replay)."""
        (fresh,) = self.add_source_events(
            [NewSourceEvent(project_id, source, external_id, event_key, payload)]
        )
        return fresh

    def add_source_events(self, events: Sequence[NewSourceEvent]) -> list[bool]:
        """Keep raw vendor events in one transaction; for each, False when it was stored before (a replay).

        One commit for a worker's whole claim: a synced commit per event was most of a webhook's cost.
        An event twice in ``events`` is new only the first time.
        """
        if not events:
            return []
        now = _now()
        with self._session() as session:
            dialect = session.get_bind().dialect.name
            fresh: list[bool] = []
            for event in events:
                statement = _dialect_insert(dialect, SourceEventRow).values(
                    project_id=event.project_id,
                    source=event.source,
                    external_id=event.external_id,
                    event_key=event.event_key,
                    payload=zlib.compress(event.payload, _EVENT_ZLIB_LEVEL),
                    received_at=event.received_at or now,
                )
                # A row comes back only when it was inserted; the rowcount cannot tell (psycopg gives -1
                # for an insert with RETURNING, which PostgreSQL's dialect adds to fetch the new id).
                result = session.execute(statement.on_conflict_do_nothing().returning(SourceEventRow.id))
                fresh.append(result.first() is not None)
            return fresh

    def source_events(self, project_id: str, source: str, external_id: str) -> list[bytes]:
        """Every stored raw event of one vendor call, oldest first."""
        with self._session() as session:
            rows = session.scalars(
                select(SourceEventRow.payload)
                .where(
                    SourceEventRow.project_id == project_id,
                    SourceEventRow.source == source,
                    SourceEventRow.external_id == external_id,
                )
                .order_by(SourceEventRow.id)
            ).all()
        return [zlib.decompress(payload) for payload in rows]

    def source_event_records(
        self, project_id: str, source: str, external_id: str
    ) -> list[tuple[bytes, datetime]]:
        """Every stored raw event of one vendor call with the time it was received, oldest first."""
        with self._session() as session:
            rows = session.execute(
                select(SourceEventRow.payload, SourceEventRow.received_at)
                .where(
                    SourceEventRow.project_id == project_id,
                    SourceEventRow.source == source,
                    SourceEventRow.external_id == external_id,
                )
                .order_by(SourceEventRow.id)
            ).all()
        return [(zlib.decompress(payload), received_at) for payload, received_at in rows]

    # Project settings -------------------------------------------------------------------------------

    def project_settings(self, project_id: str) -> dict[str, Any]:
        """A copy of the project's settings document (webhook secrets, channel maps, agent metric sets)."""
        with self._session() as session:
            row = session.get(ProjectRow, project_id)
            if row is None:
                raise NotFound(f"project {project_id} not found")
            return copy.deepcopy(row.settings or {})

    def update_project_settings(self, project_id: str, path: tuple[str, ...], value: Any) -> None:
        """Set (or with ``value`` None remove) one entry of the project's settings document.

        The read-modify-write runs in one transaction with the row locked where the backend can lock it,
        so two writers of different paths do not lose each other's change.
        """
        if not path or any(not part for part in path):
            raise InputError("a settings path needs at least one non-empty part")
        with self._session() as session:
            row = session.scalars(
                select(ProjectRow).where(ProjectRow.id == project_id).with_for_update()
            ).one_or_none()
            if row is None:
                raise NotFound(f"project {project_id} not found")
            settings = copy.deepcopy(row.settings or {})
            node = settings
            for part in path[:-1]:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
            if value is None:
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
            row.settings = settings


def setting_at(settings: dict[str, Any], path: tuple[str, ...], default: Any = None) -> Any:
    """The value at ``path`` in a project settings document, or ``default`` where any part is missing."""
    node: Any = settings
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
