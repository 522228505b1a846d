"""Rendering UI pages: the templates, and the context every page gets.

Templates autoescape, so text from calls (transcripts, tool arguments, vendor payloads, metric names) is
always shown, never interpreted; values handed to scripts go through ``tojson`` into
``<script type="application/json">`` blocks, never into inline code.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from .session import Session

__all__ = ["page", "templates"]

templates = Jinja2Templates(directory=str(resources.files("convoscope.server") / "templates"))


def page(
    request: Request,
    name: str,
    session: Session | None,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> Response:
    """A page with the project, the CSRF token and the active section in its context."""
    values: dict[str, Any] = {
        "project": session.project if session else None,
        "principal": session.principal if session else None,
        "csrf": session.csrf if session else "",
        "section": name.split(".", 1)[0],
        **(context or {}),
    }
    response = templates.TemplateResponse(request, name, values, status_code=status_code)
    # Pages show a project's data: never cached by the browser or a proxy.
    response.headers["Cache-Control"] = "no-store"
    return response
