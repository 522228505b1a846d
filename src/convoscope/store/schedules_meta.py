"""Schedules (cron expressions that start a simulation or a re-evaluation) in the metadata database.

**Why here.** A schedule is configuration plus a little state (when it last fired and what came of it),
written by the API and the CLI and read by every server process at start; the metadata database already
holds such rows (alert rules, simulation definitions) and survives restarts, which an in-memory job
store of the scheduler library would not. The scheduler library only computes fire times and wakes the
server; what ran and when lives here, so missed runs after downtime can be told from the last fire time.

The store knows nothing of a schedule's schema: the body is kept as JSON and validated by
``server.schedule_spec`` on the way in and out. Two fire times are kept: ``last_fire_at`` is the
*scheduled* time last claimed (:meth:`ScheduleStoreMixin.claim_schedule_fire` moves it forward only, so
two server processes over one database run a fire time once), ``last_run_at`` the moment an action last
ran (a fire, a catch-up after downtime or a manual run) with ``last_result`` beside it. When the next
run is due is not kept: it follows from the cron expression and the clock, and a stored copy would go
stale whenever the server is down or the expression is edited without one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..errors import StoreError
from .meta import Base

__all__ = ["ScheduleRow", "ScheduleStoreMixin", "StoredSchedule"]


class ScheduleRow(Base):
    """One schedule of a project: its body (cron, action, policy) and when it last ran."""

    __tablename__ = "schedules"

    project_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_fire_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    last_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)


@dataclass(frozen=True)
class StoredSchedule:
    """One kept schedule: its JSON body, when it was written, and its last run."""

    project_id: str
    id: str
    body: dict[str, Any]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    last_fire_at: datetime | None = None
    """The scheduled fire time last claimed (not when it ran: a catch-up runs later than its time)."""
    last_run_at: datetime | None = None
    """When an action last ran (by the schedule, a catch-up or by hand)."""
    last_result: dict[str, Any] | None = None
    """What came of it: ``run_id`` (simulate), ``queued`` (reevaluate) or ``error``, with ``trigger``."""
    created: bool = False
    """True when the write that returned it created it (a PUT answers 201)."""


def _schedule(row: ScheduleRow, *, created: bool = False) -> StoredSchedule:
    return StoredSchedule(
        project_id=row.project_id,
        id=row.id,
        body=dict(row.body),
        enabled=bool(row.enabled),
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_fire_at=row.last_fire_at,
        last_run_at=row.last_run_at,
        last_result=None if row.last_result is None else dict(row.last_result),
        created=created,
    )


class ScheduleStoreMixin:
    """Schedules and their last runs; mixed into ``MetadataStore``, which provides ``_session``."""

    _session: Callable[[], AbstractContextManager[Session]]

    def put_schedule(
        self, project_id: str, schedule_id: str, body: Mapping[str, Any], enabled: bool
    ) -> StoredSchedule:
        """Create or replace a schedule; a replaced one keeps its last run (and its last fire time, so an
        edit does not make the fire times before it look missed)."""
        try:
            return self._put_schedule(project_id, schedule_id, body, enabled)
        except IntegrityError:  # a concurrent creator won: replace what it wrote
            try:
                return self._put_schedule(project_id, schedule_id, body, enabled)
            except IntegrityError as exc:
                raise StoreError(f"schedule {schedule_id!r} could not be written: {exc.orig}") from None

    def _put_schedule(
        self, project_id: str, schedule_id: str, body: Mapping[str, Any], enabled: bool
    ) -> StoredSchedule:
        now = datetime.now(UTC)
        with self._session() as session:
            row = session.get(ScheduleRow, (project_id, schedule_id))
            created = row is None
            if row is None:
                row = ScheduleRow(
                    project_id=project_id,
                    id=schedule_id,
                    body=dict(body),
                    enabled=int(enabled),
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
            else:
                row.body = dict(body)
                row.enabled = int(enabled)
                row.updated_at = now
            session.flush()
            return _schedule(row, created=created)

    def get_schedule(self, project_id: str, schedule_id: str) -> StoredSchedule | None:
        """One kept schedule, or None."""
        with self._session() as session:
            row = session.get(ScheduleRow, (project_id, schedule_id))
            return None if row is None else _schedule(row)

    def list_schedules(self, project_id: str) -> list[StoredSchedule]:
        """The project's schedules by id."""
        query = select(ScheduleRow).where(ScheduleRow.project_id == project_id).order_by(ScheduleRow.id)
        with self._session() as session:
            return [_schedule(row) for row in session.scalars(query)]

    def enabled_schedules(self) -> list[StoredSchedule]:
        """Every project's enabled schedules (what a server loads when it starts)."""
        query = (
            select(ScheduleRow)
            .where(ScheduleRow.enabled == 1)
            .order_by(ScheduleRow.project_id, ScheduleRow.id)
        )
        with self._session() as session:
            return [_schedule(row) for row in session.scalars(query)]

    def delete_schedule(self, project_id: str, schedule_id: str) -> bool:
        """Remove a schedule; False when there was none. Runs it started stay (they are runs like any)."""
        with self._session() as session:
            result = session.execute(
                delete(ScheduleRow).where(ScheduleRow.project_id == project_id, ScheduleRow.id == schedule_id)
            )
            return bool(getattr(result, "rowcount", 0))

    def claim_schedule_fire(self, project_id: str, schedule_id: str, fire_at: datetime) -> bool:
        """Take the scheduled time ``fire_at`` for this process: True when it is later than the last one
        claimed (the caller then runs the action), False when it was claimed already (another server
        over the same database runs it) or the schedule is gone or disabled."""
        with self._session() as session:
            query = (
                select(ScheduleRow)
                .where(ScheduleRow.project_id == project_id, ScheduleRow.id == schedule_id)
                .with_for_update()
            )
            row = session.scalars(query).first()
            if row is None or not row.enabled:
                return False
            if row.last_fire_at is not None and row.last_fire_at >= fire_at:
                return False
            row.last_fire_at = fire_at
            return True

    def record_schedule_run(
        self, project_id: str, schedule_id: str, at: datetime, result: Mapping[str, Any]
    ) -> bool:
        """Keep when an action ran and what came of it; False (nothing written) when the schedule was
        deleted meanwhile."""
        with self._session() as session:
            row = session.get(ScheduleRow, (project_id, schedule_id))
            if row is None:
                return False
            row.last_run_at = at
            row.last_result = dict(result)
            return True
