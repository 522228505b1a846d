"""Sign in and out: the key form, the ``?key=`` link the CLI prints, and leaving."""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ..deps import get_services
from .render import page
from .session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Session,
    csrf_ok,
    current_session,
    sessions,
    set_session_cookie,
)

__all__ = ["login_redirect", "router", "signed_in"]

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """A local path to go to after signing in (never another site)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def login_redirect(request: Request) -> Response:
    """To the sign-in page, coming back here after."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(here, safe='')}", status_code=303)


async def signed_in(request: Request) -> Session | None:
    """The session of a page request; None means "send to the sign-in page"."""
    return await current_session(request)


def _login_form(request: Request, message: str | None, target: str, status_code: int) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html",
        None,
        {"message": message, "login_csrf": token, "next": target},
        status_code=status_code,
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login")
    return response


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    """The sign-in form."""
    return _login_form(request, None, _safe_next(next), 200)


async def _open_session(request: Request, key: str, target: str) -> Response | None:
    project = await run_in_threadpool(get_services(request).meta.resolve_api_key, key.strip())
    if project is None:
        return None
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, sessions(request).open(key.strip(), project))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/login")
async def login(
    request: Request,
    key: Annotated[str, Form(max_length=512)],
    csrf: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    """Exchange a project API key for a session."""
    target = _safe_next(next)
    if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf):
        return _login_form(request, "The form expired: sign in again.", target, 403)
    opened = await _open_session(request, key, target)
    if opened is None:
        return _login_form(request, "That key is not valid (unknown, revoked or expired).", target, 401)
    return opened


@router.get("/login/key")
async def login_link(request: Request, key: str) -> Response:
    """The link ``convoscope demo``/``serve`` print (``/?key=...`` lands here): a session, then a clean URL
    without the key."""
    opened = await _open_session(request, key, "/")
    if opened is None:
        return _login_form(request, "That key is not valid (unknown, revoked or expired).", "/", 401)
    return opened


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form(max_length=128)] = "") -> Response:
    """End the session (CSRF-checked, so another site cannot sign a user out)."""
    session = await current_session(request)
    if session is not None and csrf_ok(session.csrf, csrf):
        sessions(request).close(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
