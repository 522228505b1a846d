"""The project's redaction setting over the API: read it, and replace it.

The body is :class:`~convoscope.redaction.RedactionSettings`, read strictly, so a mistake (an unknown
field, a kind that does not exist, a replacement with a placeholder other than ``{kind}``) is a 422
naming the field instead of a setting that silently masks less than its owner meant. A new setting
applies to what this server stores from the moment it answers, and within a few seconds on other
server processes over the same database.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ...redaction import RedactionSettings
from ..auth import CurrentProject
from ..deps import get_services
from ..openapi import error_responses

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/settings", tags=["settings"])


class RedactionSetting(BaseModel):
    """The setting in force and whether it is the project's own (else the server's default)."""

    setting: RedactionSettings
    own: bool


@router.get("/redaction", summary="The project's redaction setting")
async def get_redaction(request: Request, project: CurrentProject) -> RedactionSetting:
    """What is masked before storage in this project, and how recordings are treated."""
    policies = get_services(request).redaction.policies
    own = await run_in_threadpool(policies.own, project.id)
    return RedactionSetting(setting=own or policies.default, own=own is not None)


@router.put("/redaction", summary="Replace the project's redaction setting", responses=error_responses(422))
async def put_redaction(
    request: Request, project: CurrentProject, body: RedactionSettings
) -> RedactionSetting:
    """Applies to everything stored after the answer; what is already stored is not rewritten."""
    policies = get_services(request).redaction.policies
    await run_in_threadpool(policies.write, project.id, body)
    return RedactionSetting(setting=body, own=True)
