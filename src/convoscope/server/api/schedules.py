"""Schedules over the API: create or replace, list, read and delete them, and run one now.

A schedule's body is :class:`~..schedule_spec.ScheduleSpec`, read strictly, so a mistake is a 422 naming
the field; an invalid cron expression or time zone is refused at creation (``cron``, ``timezone``)
rather than found when it should have fired. The path names the schedule (a body carries no id). Every
write is handed to the running scheduler at once, so a new or changed schedule fires on its new times
without a restart, and a deleted or disabled one stops.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ...errors import NotFound
from ...store.schedules_meta import StoredSchedule
from ..auth import CurrentProject
from ..deps import get_services
from ..schedule_spec import SLUG_PATTERN, ScheduleSpec, parse_schedule
from ..scheduler import Scheduler
from . import paths as _paths  # noqa: F401  (registers the ``slug`` URL convertor)

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"])

ScheduleId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=SLUG_PATTERN, description="The schedule's id.")
]


class Schedule(BaseModel):
    """A kept schedule: what it does and when, when it last ran and with what result, when it runs next."""

    id: str
    schedule: ScheduleSpec
    next_run_at: datetime | None
    """The next fire time (None when disabled), computed from the cron expression and the clock."""
    last_run_at: datetime | None
    """When its action last ran (fired, caught up after downtime, or run by hand)."""
    last_result: dict[str, Any] | None
    """``trigger`` and ``at``, then ``run_id`` (simulate), ``queued`` (reevaluate) or ``error``."""
    created_at: datetime
    updated_at: datetime


class ScheduleList(BaseModel):
    """The project's schedules by id."""

    items: list[Schedule]


class RunOutcome(BaseModel):
    """What running a schedule's action did, as recorded on the schedule."""

    schedule_id: str
    result: dict[str, Any]
    """``trigger: manual``, ``at``, then ``run_id`` and ``planned`` (simulate), ``queued`` (reevaluate),
    or ``error`` when the action failed (an unknown suite, a server already running its most runs...)."""


def _schedule(stored: StoredSchedule, scheduler: Scheduler) -> Schedule:
    return Schedule(
        id=stored.id,
        schedule=parse_schedule(stored.id, stored.body),
        next_run_at=scheduler.next_run_at(stored),
        last_run_at=stored.last_run_at,
        last_result=stored.last_result,
        created_at=stored.created_at,
        updated_at=stored.updated_at,
    )


@router.put(
    "/{schedule_id:slug}",
    summary="Create or replace a schedule",
    responses={201: {"model": Schedule, "description": "Created."}},
)
async def put_schedule(
    request: Request, project: CurrentProject, schedule_id: ScheduleId, body: ScheduleSpec, response: Response
) -> Schedule:
    """200 when it replaced a kept schedule (its last run is kept), 201 when it is new. An invalid cron
    expression or time zone is a 422 naming ``cron`` or ``timezone``."""
    services = get_services(request)
    stored = await run_in_threadpool(
        services.meta.put_schedule, project.id, schedule_id, body.model_dump(mode="json"), body.enabled
    )
    services.schedules.sync(project.id, schedule_id, stored)
    if stored.created:
        response.status_code = 201
        response.headers["Location"] = request.url.path
    return _schedule(stored, services.schedules)


@router.get("", summary="List schedules")
async def list_schedules(request: Request, project: CurrentProject) -> ScheduleList:
    services = get_services(request)
    rows = await run_in_threadpool(services.meta.list_schedules, project.id)
    return ScheduleList(items=[_schedule(row, services.schedules) for row in rows])


@router.get("/{schedule_id:slug}", summary="A schedule, its last run and its next")
async def get_schedule(request: Request, project: CurrentProject, schedule_id: ScheduleId) -> Schedule:
    services = get_services(request)
    stored = await run_in_threadpool(services.meta.get_schedule, project.id, schedule_id)
    if stored is None:
        raise NotFound(f"schedule {schedule_id!r} not found")
    return _schedule(stored, services.schedules)


@router.delete("/{schedule_id:slug}", status_code=204, response_class=Response, summary="Delete a schedule")
async def delete_schedule(request: Request, project: CurrentProject, schedule_id: ScheduleId) -> Response:
    """The schedule stops firing; runs it started stay (they are runs like any other)."""
    services = get_services(request)
    deleted = await run_in_threadpool(services.meta.delete_schedule, project.id, schedule_id)
    if not deleted:
        raise NotFound(f"schedule {schedule_id!r} not found")
    services.schedules.sync(project.id, schedule_id, None)
    return Response(status_code=204)


@router.post("/{schedule_id:slug}:run", summary="Run a schedule's action now")
async def run_schedule(request: Request, project: CurrentProject, schedule_id: ScheduleId) -> RunOutcome:
    """Runs the action at once (a disabled schedule too) and records it as the schedule's last run. A
    failing action is answered 200 with ``result.error``, as the scheduler would record it."""
    outcome = await get_services(request).schedules.run_now(project.id, schedule_id)
    if outcome is None:
        raise NotFound(f"schedule {schedule_id!r} not found")
    return RunOutcome(schedule_id=schedule_id, result=outcome)
