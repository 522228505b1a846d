"""Signing in to the UI with a project API key, and the session and CSRF token that follow.

A session acts as its key's principal (the key's user and role), checked on every request through the
same access table as the API (:func:`~convoscope.server.auth.admit`): a viewer's session reads pages and
is refused every form that writes.

The browser never holds the key: signing in exchanges it for a random session token in an ``HttpOnly``,
``SameSite=Strict`` cookie, and the server keeps the key beside the token so that every page resolves it
again (a key revoked or expired since sends the next request back to the sign-in page). Sessions live in
the server's memory: a restart signs everyone out, which costs one sign-in and keeps no secret on disk.

Every state-changing request of the UI (a form post, an htmx request) must carry the session's CSRF
token (a form field ``csrf`` or the ``X-CSRF-Token`` header, which the base template gives htmx); the
sign-in form itself is protected by a double-submit cookie, since there is no session yet.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...store.metadata import Principal, ProjectInfo
from ..auth import admit
from ..deps import get_services

__all__ = [
    "LOGIN_CSRF_COOKIE",
    "SESSION_COOKIE",
    "Session",
    "SessionStore",
    "csrf_ok",
    "current_session",
    "sessions",
]

SESSION_COOKIE = "convoscope_session"
LOGIN_CSRF_COOKIE = "convoscope_login"
SESSION_TTL_S = 12 * 3600.0
"""How long a session lasts without being used."""
MAX_SESSIONS = 10_000
"""Sessions kept at once; the least recently used goes first."""


@dataclass
class Session:
    """One signed-in browser: the key it signed in with, its project and its CSRF token."""

    key: str
    project: ProjectInfo
    csrf: str
    last_used: float
    principal: Principal | None = None
    """Who the session acts as, resolved again on every request (roles and revocations apply at once)."""


class SessionStore:
    """Sessions by token, in memory, bounded and expiring."""

    def __init__(self) -> None:
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, key: str, project: ProjectInfo) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[token] = Session(key, project, secrets.token_urlsafe(24), time.monotonic())
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return token

    def get(self, token: str) -> Session | None:
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            now = time.monotonic()
            if now - session.last_used > SESSION_TTL_S:
                del self._sessions[token]
                return None
            session.last_used = now
            self._sessions.move_to_end(token)
            return session

    def close(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)


def sessions(request: Request) -> SessionStore:
    """The app's session store (one per app)."""
    state = request.app.state
    store = getattr(state, "ui_sessions", None)
    if store is None:
        store = state.ui_sessions = SessionStore()
    return store


async def current_session(request: Request) -> Session | None:
    """The request's session, if its key still resolves (revoked or expired keys end it)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    store = sessions(request)
    session = store.get(token)
    if session is None:
        return None
    principal = await run_in_threadpool(get_services(request).meta.resolve_principal, session.key)
    if principal is None:
        store.close(token)
        return None
    session.project = principal.project
    session.principal = principal
    admit(request, principal)
    return session


def set_session_cookie(response: Response, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", path="/")


def csrf_ok(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
