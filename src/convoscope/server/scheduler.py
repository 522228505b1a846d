"""Schedules in the server: cron expressions that start a simulation run or a re-evaluation.

**The library.** APScheduler 3.x (``AsyncIOScheduler`` with ``CronTrigger``), chosen over croniter
and cronsim because it is the scheduler and not only the expression parser: it owns the timer on the
server's event loop, wakes when the next of many jobs is due, recomputes the wait when a job is added,
replaced or removed at run time, coalesces fire times a busy loop made late, and reads every field in
an IANA time zone across DST changes; with a parser alone all of that would be a loop written here,
which the brief rules out. It is mature and maintained (production/stable on PyPI since 2009, MIT,
3.11.3 released in 2026, among the ~650 most downloaded packages), and pure Python with one dependency
(tzlocal). The 3.x line is pinned: 4.x is a rewrite with another API, still in pre-release. APScheduler
has persistent job stores of its own, but they keep pickled jobs in their own table; schedules are kept
as plain rows in the metadata database (``store/schedules_meta.py``) like every other configuration,
and the library's jobs live in memory, rebuilt from those rows at every start.

**How a fire runs.** Each enabled schedule of every project is one job (``project/id``). When it fires
the scheduler first *claims* the scheduled time in the database (``claim_schedule_fire`` only moves it
forward), so two server processes over one database run each fire time once. A ``simulate`` action is
:meth:`SimulationRunner.start` on a kept suite and agent (its calls are stored and evaluated like any
run's, so alert rules see them), a ``reevaluate`` action is :func:`queue_evaluation` over the calls of
the last days. The outcome (the run id, the number of calls queued, or the error) is recorded on the
schedule; a failing action is logged and recorded, and never stops the scheduler or its other jobs.

**After downtime** the library knows nothing of the fire times that passed (its jobs were in memory),
so :meth:`Scheduler.catch_up` compares each schedule's last fire time with the clock at start and
applies its misfire policy (:mod:`.schedule_spec`): ``skip`` runs nothing, ``once`` runs the action one
time if a fire time was missed within the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ..errors import PayloadError
from ..evals.jobs import EvalRequest, queue_evaluation
from ..store.metadata import MetadataStore
from ..store.schedules_meta import StoredSchedule
from .schedule_spec import (
    ReevaluateAction,
    ScheduleSpec,
    SimulateAction,
    cron_trigger,
    latest_fire,
    parse_schedule,
)

if TYPE_CHECKING:
    from .services import Services

__all__ = ["Scheduler", "Trigger"]

log = logging.getLogger("convoscope.server.scheduler")

Trigger = Literal["schedule", "catch-up", "manual"]
"""Why an action ran: its fire time came, a missed fire time was caught up at start, or by hand."""

RESYNC_S = 15.0
"""How often the schedules are read again, so edits made through another process take effect."""
RELOAD_AFTER_S = 30.0
"""How long the scheduler waits before reading the schedules again when the database failed at start."""
_LATEST_WITHIN_S = 86_400.0
"""How far back a firing job looks for the scheduled time it stands for (it runs right after it)."""


class Scheduler:
    """The server's schedules as jobs of one APScheduler on the event loop; one per server process."""

    def __init__(
        self, services: Services, *, clock: Callable[[], datetime] | None = None, resync_s: float = RESYNC_S
    ) -> None:
        self._services = services
        self._resync_s = resync_s
        self._now = clock or (lambda: datetime.now(UTC))
        self._scheduler: AsyncIOScheduler | None = None
        self._synced: dict[str, datetime | None] = {}
        """The version (``updated_at``) of each schedule its job was made from."""
        self.loaded = asyncio.Event()
        """Set once the schedules were read and caught up (tests wait for it)."""

    @property
    def meta(self) -> MetadataStore:
        return self._services.meta

    @property
    def running(self) -> bool:
        return self._scheduler is not None

    # Lifecycle -----------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Start the library's scheduler on this loop, load every project's enabled schedules, catch up
        what was missed, and keep running until cancelled (the app's lifespan owns the task)."""
        scheduler = AsyncIOScheduler(
            event_loop=asyncio.get_running_loop(),
            timezone=UTC,
            # Late fire times (a busy loop) run once and however late: downtime is catch_up's business.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        scheduler.start()
        self._scheduler = scheduler
        try:
            while True:
                try:
                    stored = await asyncio.to_thread(self.meta.enabled_schedules)
                    break
                except Exception:
                    log.exception("schedules could not be read; trying again in %.0f s", RELOAD_AFTER_S)
                    await asyncio.sleep(RELOAD_AFTER_S)
            for schedule in stored:
                self.sync(schedule.project_id, schedule.id, schedule)
            await self.catch_up(stored)
            self.loaded.set()
            while True:
                await asyncio.sleep(self._resync_s)
                await self._resync()
        finally:
            self._scheduler = None
            with contextlib.suppress(Exception):
                scheduler.shutdown(wait=False)

    async def _resync(self) -> None:
        """Match the jobs to the schedules kept now: a schedule written through another process (an API
        server beside ``convoscope worker`` processes) reaches this one within ``resync_s``."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        try:
            stored = await asyncio.to_thread(self.meta.enabled_schedules)
        except Exception:
            log.exception("schedules could not be read again; keeping the jobs as they are")
            return
        kept = {f"{schedule.project_id}/{schedule.id}" for schedule in stored}
        for job in scheduler.get_jobs():
            if job.id not in kept:
                with contextlib.suppress(JobLookupError):
                    scheduler.remove_job(job.id)
        for schedule in stored:
            if self._changed(schedule):
                self.sync(schedule.project_id, schedule.id, schedule)

    @property
    def job_ids(self) -> list[str]:
        """The ``project/schedule`` ids of the schedules that have a job now."""
        scheduler = self._scheduler
        return [] if scheduler is None else sorted(job.id for job in scheduler.get_jobs())

    def _changed(self, stored: StoredSchedule) -> bool:
        """Whether the schedule's job is missing or was made from another version of the schedule."""
        scheduler = self._scheduler
        job = None if scheduler is None else scheduler.get_job(f"{stored.project_id}/{stored.id}")
        return job is None or self._synced.get(job.id) != stored.updated_at

    def sync(self, project_id: str, schedule_id: str, stored: StoredSchedule | None) -> None:
        """Make the library's job match the kept schedule: added or replaced when enabled, removed when
        disabled or deleted (``stored`` None). Nothing happens while the scheduler is not running (a
        server started without its background tasks): the rows are read at the next start."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        job_id = f"{project_id}/{schedule_id}"
        spec = _spec(stored) if stored is not None and stored.enabled else None
        if spec is None:
            with contextlib.suppress(JobLookupError):
                scheduler.remove_job(job_id)
            return
        self._synced[job_id] = stored.updated_at if stored is not None else None
        scheduler.add_job(
            self._fire,
            trigger=cron_trigger(spec),
            args=[project_id, schedule_id],
            id=job_id,
            name=f"schedule {schedule_id} of project {project_id}",
            replace_existing=True,
        )

    def next_run_at(self, stored: StoredSchedule) -> datetime | None:
        """When the schedule fires next (None when disabled): from the cron expression and the clock."""
        spec = _spec(stored) if stored.enabled else None
        if spec is None:
            return None
        fire: datetime | None = cron_trigger(spec).get_next_fire_time(None, self._now())
        return None if fire is None else fire.astimezone(UTC)

    # Missed runs ----------------------------------------------------------------------------------------

    async def catch_up(self, stored: list[StoredSchedule]) -> None:
        """Apply each schedule's misfire policy to the fire times that passed while no server ran.

        A fire time counts as missed when it lies after the schedule's last fire time, last run and last
        edit (an edit starts the schedule afresh) and before now. ``skip`` logs it; ``once`` runs the
        action if the latest missed time is within ``misfire_grace_s``, claiming that time so a second
        server starting beside this one does not run it again."""
        now = self._now()
        for schedule in stored:
            spec = _spec(schedule)
            if spec is None:
                continue
            since = max(t for t in (schedule.last_fire_at, schedule.last_run_at, schedule.updated_at) if t)
            trigger = cron_trigger(spec)
            first: datetime | None = trigger.get_next_fire_time(None, since + timedelta(microseconds=1))
            if first is None or first > now:
                continue
            latest = latest_fire(trigger, now, spec.misfire_grace_s) if spec.misfire == "once" else None
            if latest is None or latest <= since:
                log.info(
                    "schedule %s/%s missed its fire times since %s; skipped (misfire: %s)",
                    schedule.project_id,
                    schedule.id,
                    first.isoformat(),
                    spec.misfire,
                )
                continue
            try:
                claimed = await asyncio.to_thread(
                    self.meta.claim_schedule_fire, schedule.project_id, schedule.id, latest
                )
            except Exception:
                log.exception(
                    "schedule %s/%s: its catch-up could not be claimed", schedule.project_id, schedule.id
                )
                continue
            if claimed:
                await self.execute(schedule.project_id, schedule.id, spec, "catch-up")

    # Firing ---------------------------------------------------------------------------------------------

    async def _fire(self, project_id: str, schedule_id: str) -> None:
        """The library's job: read the schedule afresh, claim this fire time, run the action."""
        try:
            stored = await asyncio.to_thread(self.meta.get_schedule, project_id, schedule_id)
            spec = _spec(stored) if stored is not None and stored.enabled else None
            if spec is None:
                return
            now = self._now()
            fire_at = latest_fire(cron_trigger(spec), now, _LATEST_WITHIN_S) or now.replace(microsecond=0)
            if not await asyncio.to_thread(self.meta.claim_schedule_fire, project_id, schedule_id, fire_at):
                return
        except Exception:  # the database is down: this fire time is lost, the next one will try again
            log.exception("schedule %s/%s could not fire", project_id, schedule_id)
            return
        await self.execute(project_id, schedule_id, spec, "schedule")

    async def run_now(self, project_id: str, schedule_id: str) -> dict[str, Any] | None:
        """Run a schedule's action at once (a disabled one too) and record it; None if there is none."""
        stored = await asyncio.to_thread(self.meta.get_schedule, project_id, schedule_id)
        if stored is None:
            return None
        spec = parse_schedule(stored.id, stored.body)
        return await self.execute(project_id, schedule_id, spec, "manual")

    async def execute(
        self, project_id: str, schedule_id: str, spec: ScheduleSpec, trigger: Trigger
    ) -> dict[str, Any]:
        """Run the action and record its outcome on the schedule; every failure is an outcome."""
        at = self._now()
        try:
            result = await self._act(project_id, spec, at)
        except Exception as exc:
            log.warning(
                "schedule %s/%s (%s) failed: %s: %s",
                project_id,
                schedule_id,
                trigger,
                type(exc).__name__,
                exc,
            )
            result = {"error": f"{type(exc).__name__}: {exc}"}
        outcome: dict[str, Any] = {"trigger": trigger, "at": at.isoformat(), **result}
        try:
            await asyncio.to_thread(self.meta.record_schedule_run, project_id, schedule_id, at, outcome)
        except Exception:
            log.exception("schedule %s/%s: its outcome could not be recorded", project_id, schedule_id)
        return outcome

    async def _act(self, project_id: str, spec: ScheduleSpec, at: datetime) -> dict[str, Any]:
        action = spec.action
        if isinstance(action, SimulateAction):
            return await self._simulate(project_id, action)
        return await self._reevaluate(project_id, action, at)

    async def _simulate(self, project_id: str, action: SimulateAction) -> dict[str, Any]:
        """A run like ``POST /simulation/runs:start``: its calls are stored and evaluated like any."""
        runner = self._services.simulations
        prepared = await asyncio.to_thread(
            runner.prepare, project_id, action.suite, action.agent, action.iterations
        )
        run = await runner.start(project_id, prepared, concurrency=action.concurrency)
        return {"run_id": run.run_id, "planned": run.planned}

    async def _reevaluate(self, project_id: str, action: ReevaluateAction, at: datetime) -> dict[str, Any]:
        """Evaluations queued like ``POST /jobs/evals.run``; the job runner scores them in the background."""
        since = None if action.since_days is None else at - timedelta(days=action.since_days)
        request = EvalRequest(since=since, agent_id=action.agent_id, metrics=list(action.metrics))
        services = self._services
        call_ids = await asyncio.to_thread(
            queue_evaluation, services.store, services.meta, project_id, request
        )
        services.jobs.notify()
        return {"queued": len(call_ids)}


def _spec(stored: StoredSchedule) -> ScheduleSpec | None:
    """The kept body as today's model; one that no longer validates is logged and left out (never fired)."""
    try:
        return parse_schedule(stored.id, stored.body)
    except PayloadError as exc:
        log.error(
            "schedule %s/%s is not valid any more and does not fire: %s", stored.project_id, stored.id, exc
        )
        return None
