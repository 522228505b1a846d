"""One call: the recording on a timeline with one player, the transcript with tools and per-turn latency,
the scores with what they cite, the span waterfall, the vendor data and the call's jobs.

The page is rendered whole from one read of the call, its jobs and its spans (all in one worker thread),
with the first page of turns and of spans; the rest of a long call comes in pages (``call_parts``). The
recording's waveform is drawn from peaks computed here (``/peaks``), never from the audio file, which the
player streams from ``/audio`` only when it plays. Both answer only to a signed-in session of the call's
project, like every page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...errors import NotFound
from ...evals.calibration import SETTINGS_KEY
from ...model.blob_ref import stored_sha
from ...recordings.fetch import unstored_reason
from ...store.base import StoredCall
from ...store.jobqueue import JobStatus
from ...traces.otlp import price_table
from ..api.calls import get_recording
from ..deps import get_services
from ..services import Services
from . import call_parts
from .auth_pages import login_redirect, signed_in
from .call_view import CallView, call_view
from .definitions import definitions
from .peaks import MAX_POINTS, peaks_cache
from .render import page
from .session import Session
from .waterfall import waterfall

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
router.include_router(call_parts.router)  # the page's later parts travel with it


def view_of(
    services: Services, project_id: str, call_id: str, stored: StoredCall, *, recording: int | None = None
) -> tuple[CallView, list[JobStatus]]:
    """The call page's view of ``stored`` (scores with their definitions and calibration, the player) and
    the jobs that ran on it; the review page shows the same player from it."""
    jobs = services.meta.jobs_for_call(project_id, call_id)
    settings = services.meta.project_settings(project_id)
    calibrations = settings.get(SETTINGS_KEY)
    view = call_view(
        stored,
        jobs,
        definitions(settings),
        recording=recording,
        calibrations=calibrations if isinstance(calibrations, dict) else {},
    )
    return view, jobs


def _content(
    request: Request, session: Session, call_id: str, recording: int | None
) -> dict[str, Any] | None:
    """The page's context, read in one worker thread; None when the project has no such call."""
    services = get_services(request)
    project_id = session.project.id
    stored = services.store.get_call(project_id, call_id)
    if stored is None:
        return None
    view, jobs = view_of(services, project_id, call_id, stored, recording=recording)
    spans = services.store.list_spans(project_id, call_id=call_id)
    prices = price_table(services.settings)
    return {
        "view": view,
        "jobs": jobs,
        "spans": waterfall(spans, stored.call.started_at, prices) if spans else None,
    }


@router.get("/calls/{call_id}")
async def call_page(
    call_id: str, request: Request, recording: Annotated[int | None, Query(ge=0)] = None
) -> Response:
    """The call page; an unknown id is a 404 page."""
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    content = await run_in_threadpool(_content, request, session, call_id, recording)
    if content is None:
        return page(request, "call_missing.html", session, {"call_id": call_id}, status_code=404)
    return page(request, "call.html", session, content)


@router.get("/calls/{call_id}/audio")
async def call_audio(call_id: str, request: Request, index: Annotated[int, Query(ge=0)] = 0) -> Response:
    """The recording for the page's player (``Range`` requests), authorised by the session."""
    session = await signed_in(request)
    if session is None:
        return Response(status_code=401)
    return await get_recording(call_id, request, session.project, index)


@router.get("/calls/{call_id}/peaks")
async def call_peaks(call_id: str, request: Request, index: Annotated[int, Query(ge=0)] = 0) -> Response:
    """Per channel, at most ``MAX_POINTS`` peaks of recording ``index``, with its duration and channel
    roles: what the waveform is drawn from. Cached by the recording's sha256, so the browser may keep it."""
    session = await signed_in(request)
    if session is None:
        return Response(status_code=401)
    services = get_services(request)
    stored = await run_in_threadpool(services.store.get_call, session.project.id, call_id)
    if stored is None:
        raise NotFound(f"call {call_id} not found")
    recordings = stored.call.recordings
    if index >= len(recordings):
        raise NotFound(f"call {call_id} has no recording {index}")
    recording = recordings[index]
    sha = stored_sha(recording)
    if sha is None:
        jobs = await run_in_threadpool(services.meta.jobs_for_call, session.project.id, call_id)
        raise NotFound(f"recording {index} of call {call_id} is {unstored_reason(recording, jobs)}")
    peaks = await run_in_threadpool(peaks_cache.get, sha, MAX_POINTS, services.blobs.open)
    body = {
        "sha256": sha,
        "duration_s": peaks.duration_s,
        "sample_rate": peaks.sample_rate,
        "points": peaks.points,
        "channels": [
            {
                "channel": channel,
                "role": recording.channel_map[channel].value if channel in recording.channel_map else None,
                "peaks": values,
            }
            for channel, values in enumerate(peaks.channels)
        ],
    }
    # The bytes under a sha never change: the browser may reuse the peaks (never a proxy: private data).
    headers = {"Cache-Control": "private, max-age=86400", "ETag": f'"peaks-{sha}-{MAX_POINTS}"'}
    return JSONResponse(body, headers=headers)
