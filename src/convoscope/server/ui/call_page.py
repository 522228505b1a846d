"""One call: transcript with per-turn latency, tool calls, the recording and the scores."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..api.calls import get_recording
from ..deps import get_services
from .auth_pages import login_redirect, signed_in
from .render import page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/calls/{call_id}")
async def call_page(call_id: str, request: Request) -> Response:
    """The call page; an unknown id is a 404 page."""
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    stored = await run_in_threadpool(get_services(request).store.get_call, session.project.id, call_id)
    if stored is None:
        return page(request, "missing.html", session, {"call_id": call_id}, status_code=404)
    return page(request, "call.html", session, {"stored": stored})


@router.get("/calls/{call_id}/audio")
async def call_audio(call_id: str, request: Request, index: int = 0) -> Response:
    """The recording for the page's player, authorised by the session."""
    session = await signed_in(request)
    if session is None:
        return Response(status_code=401)
    return await get_recording(call_id, request, session.project, index)
