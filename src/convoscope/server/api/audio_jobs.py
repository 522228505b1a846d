"""``POST /api/v1/jobs/audio.analyze``: re-analyse stored calls' recordings with new parameters.

``convoscope audio reanalyze`` calls this while a server owns the data directory. The selection and the
parameter check are :func:`~convoscope.analysis.job.queue_reanalysis`'s; this route only authenticates,
queues and wakes the job runner, so the answer comes before the (possibly long) analyses.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ...analysis.job import ReanalysisRequest, queue_reanalysis
from ...runtime.kinds import AUDIO_ANALYZE
from ..auth import CurrentProject
from ..deps import get_services
from ..openapi import error_responses

__all__ = ["ReanalysisQueued", "router"]

router = APIRouter(prefix="/api/v1", tags=["jobs"])


class ReanalysisQueued(BaseModel):
    """What a re-analysis request queued."""

    kind: str = AUDIO_ANALYZE
    queued: int
    call_ids: list[str]


@router.post(
    f"/jobs/{AUDIO_ANALYZE}",
    status_code=202,
    summary="Analyse stored calls' recordings again, with new parameters",
    responses=error_responses(400, 404),
)
async def post_reanalysis(
    body: ReanalysisRequest, request: Request, project: CurrentProject
) -> ReanalysisQueued:
    """Queue the turn-taking analysis of the selected calls; the server runs the jobs in the background
    and the new results replace the old ones (``GET /api/v1/calls/{id}`` shows the scores and the job)."""
    services = get_services(request)
    call_ids = await run_in_threadpool(queue_reanalysis, services.store, services.meta, project.id, body)
    services.jobs.notify()
    return ReanalysisQueued(queued=len(call_ids), call_ids=call_ids)
