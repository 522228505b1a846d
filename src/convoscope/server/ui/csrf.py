"""The CSRF check of state-changing UI requests."""

from __future__ import annotations

from fastapi import Request

from .session import Session, csrf_ok

__all__ = ["csrf_valid"]


async def csrf_valid(request: Request, session: Session) -> bool:
    """Whether the request carries the session's CSRF token, as the ``X-CSRF-Token`` header (htmx) or
    the ``csrf`` form field; a page answers 403 when it does not."""
    given = request.headers.get("x-csrf-token")
    if given is None:
        form = await request.form()
        value = form.get("csrf")
        given = value if isinstance(value, str) else None
    return csrf_ok(session.csrf, given)
