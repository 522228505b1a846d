"""Deleting calls and the project's retention setting over the API.

``DELETE /api/v1/calls/{call_id}`` removes one call from every store (204; an id the project does not
have is 404, whether it exists in another project or nowhere); ``POST /api/v1/deletions`` removes every
call of the project that started before a date and answers how many. ``GET``/``PUT
/api/v1/settings/retention`` read and replace the project's limits, which the server's sweep applies (see
:mod:`convoscope.store.retention`). Who may call these is the access table's business; each deletion's
ids and count are added to its audit entry.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ...store.retention import SETTINGS_PATH, RetentionSettings, parse_before, retention_of
from ..auth import CurrentPrincipal
from ..deps import get_services
from ..openapi import error_responses
from ..retention import eraser_of

__all__ = ["router"]

router = APIRouter(tags=["retention"])


_ISO_DATE = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
    r"([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?)?$"
)
"""The shape of a date or date-time ``before`` takes; a day the month lacks (02-30) is still a 422."""


class DeletionRequest(BaseModel):
    """Which calls to delete: those that started before ``before``."""

    model_config = ConfigDict(extra="forbid")

    before: str = Field(
        description="An ISO date (midnight UTC) or date-time; naive times are UTC.",
        pattern=_ISO_DATE,
        examples=["2026-01-31", "2026-01-31T12:00:00Z"],
    )


class DeletionAnswer(BaseModel):
    """How many calls were deleted."""

    deleted: int
    before: str


class RetentionSetting(BaseModel):
    """The project's limits and whether it has set any."""

    setting: RetentionSettings
    own: bool


@router.delete(
    "/api/v1/calls/{call_id}",
    status_code=204,
    summary="Delete a call everywhere",
    responses=error_responses(404, 501),
)
async def delete_call(request: Request, call_id: str, principal: CurrentPrincipal) -> Response:
    """Every row, recording, raw payload, job and review item of the call, for good."""
    eraser = eraser_of(get_services(request))
    result = await run_in_threadpool(eraser.delete_call, principal.project.id, call_id)
    request.state.audit_detail = {"call_id": call_id, "deleted": result.deleted}
    return Response(status_code=204)


@router.post(
    "/api/v1/deletions",
    summary="Delete the calls started before a date",
    responses=error_responses(422, 501),
)
async def delete_before(
    request: Request, body: DeletionRequest, principal: CurrentPrincipal
) -> DeletionAnswer:
    """Every call of the project that started before ``before``, deleted as ``DELETE`` deletes one."""
    before = parse_before(body.before)
    eraser = eraser_of(get_services(request))
    result = await run_in_threadpool(eraser.delete_before, principal.project.id, before)
    request.state.audit_detail = {"before": before.isoformat(), "deleted": result.deleted}
    return DeletionAnswer(deleted=result.deleted, before=before.isoformat())


@router.get("/api/v1/settings/retention", summary="The project's retention setting")
async def get_retention(request: Request, principal: CurrentPrincipal) -> RetentionSetting:
    """How long calls, recordings and raw payloads are kept (``null``: forever)."""
    meta = get_services(request).meta
    document = await run_in_threadpool(meta.project_settings, principal.project.id)
    setting = await run_in_threadpool(retention_of, meta, principal.project.id)
    return RetentionSetting(setting=setting, own=bool(document.get(SETTINGS_PATH[0])))


@router.put(
    "/api/v1/settings/retention",
    summary="Replace the project's retention setting",
    responses=error_responses(422),
)
async def put_retention(
    request: Request, body: RetentionSettings, principal: CurrentPrincipal
) -> RetentionSetting:
    """Applies at the server's next retention pass (or ``convoscope retention apply``)."""
    meta = get_services(request).meta
    value = body.model_dump(mode="json")
    await run_in_threadpool(meta.update_project_settings, principal.project.id, SETTINGS_PATH, value)
    request.state.audit_detail = {"retention": value}
    return RetentionSetting(setting=body, own=True)


@router.post(
    "/api/v1/settings/retention/apply",
    summary="Apply the project's retention setting now",
    responses=error_responses(501),
)
async def apply_retention(request: Request, principal: CurrentPrincipal) -> dict[str, object]:
    """Remove now what is past the project's limits (the server also does it periodically)."""
    eraser = eraser_of(get_services(request))
    result = await run_in_threadpool(eraser.apply, principal.project.id)
    answer = result.as_json()
    request.state.audit_detail = {key: value for key, value in answer.items() if key != "project_id"}
    return answer
