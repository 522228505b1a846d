"""The web UI: server-rendered pages (Jinja2 + htmx) over the same stores as the API.

Each page module has one job and its own router; they share the session (``session``), the sign-in
pages (``auth_pages``) and rendering (``render``). Static files (the page scripts and the vendored
libraries, ``server/static``) are mounted by the app.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from . import auth_pages, call_page, calls_list, overview, review, simulations

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request, key: str | None = None) -> Response:
    """The project's start page, the overview; ``?key=`` (the link the CLI prints) signs in first."""
    if key:
        return await auth_pages.login_link(request, key)
    return await overview.overview_page(request)


for _module in (auth_pages, calls_list, call_page, overview, review, simulations):
    router.include_router(_module.router)
