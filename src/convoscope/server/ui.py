"""A small server-rendered view of the calls: the list and one call with its transcript and audio.

The page is authorised by the same project API key as the API, carried in an HTTP-only cookie: the URL
the CLI prints holds ``?key=...`` once, the server sets the cookie and redirects to a clean URL.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from ..store.base import CallFilter
from ..store.metadata import ProjectInfo
from .api.calls import get_recording
from .deps import get_services

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
_templates = Jinja2Templates(directory=str(resources.files("convoscope.server") / "templates"))
_COOKIE = "convoscope_key"


async def _project(request: Request) -> ProjectInfo | None:
    key = request.cookies.get(_COOKIE)
    if not key:
        return None
    return await run_in_threadpool(get_services(request).meta.resolve_api_key, key)


def _login(request: Request, message: str | None = None) -> Response:
    return _templates.TemplateResponse(request, "login.html", {"message": message}, status_code=401)


@router.get("/", response_class=HTMLResponse)
async def calls_page(request: Request, key: str | None = None, cursor: str | None = None) -> Response:
    """The newest calls of the project the key belongs to."""
    if key:
        redirect = RedirectResponse("/", status_code=303)
        redirect.set_cookie(_COOKIE, key, httponly=True, samesite="strict")
        return redirect
    project = await _project(request)
    if project is None:
        return _login(request)
    store = get_services(request).store
    page = await run_in_threadpool(store.list_calls, project.id, CallFilter(), limit=50, cursor=cursor)
    total = await run_in_threadpool(store.count_calls, project.id)
    return _templates.TemplateResponse(
        request, "calls.html", {"project": project, "page": page, "total": total}
    )


@router.get("/calls/{call_id}", response_class=HTMLResponse)
async def call_page(call_id: str, request: Request) -> Response:
    """One call: transcript with per-turn latency, tool calls, the recording."""
    project = await _project(request)
    if project is None:
        return _login(request)
    stored = await run_in_threadpool(get_services(request).store.get_call, project.id, call_id)
    if stored is None:
        return _templates.TemplateResponse(request, "missing.html", {"call_id": call_id}, status_code=404)
    return _templates.TemplateResponse(request, "call.html", {"project": project, "stored": stored})


@router.get("/calls/{call_id}/audio")
async def call_audio(call_id: str, request: Request, index: int = 0) -> Response:
    """The recording for the page's audio element, authorised by the cookie."""
    project = await _project(request)
    if project is None:
        return Response(status_code=401)
    return await get_recording(call_id, request, project, index)
