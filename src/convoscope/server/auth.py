"""Project-scoped API keys with roles: every ``/api/`` route resolves who is calling from
``Authorization: Bearer``, and the one access table (:mod:`.access`) decides whether they may.

:func:`authenticate` is the single door: the API's dependency, the webhook and OTLP receivers and the
UI's session all pass through it. It resolves the key to a :class:`Principal`, leaves the principal and
the audit action on the request for :mod:`.audit`, and refuses a role too low for the route with 403
(after noting the attempt, so refusals are audited too).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from ..errors import AuthError, Forbidden
from ..store.metadata import Principal, ProjectInfo
from .access import READ_METHODS, audited_read, required_role
from .deps import get_services

__all__ = [
    "CurrentPrincipal",
    "CurrentProject",
    "authenticate",
    "bearer_token",
    "current_principal",
    "current_project",
    "request_template",
]


def bearer_token(request: Request) -> str:
    """The request's ``Authorization: Bearer`` key; 401 when there is none."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("missing API key: send 'Authorization: Bearer <key>'")
    return token.strip()


def request_template(request: Request) -> str:
    """The template of the route serving the request (its raw path when no route matched)."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else request.url.path


async def authenticate(request: Request, token: str) -> Principal:
    """Who the key acts as, allowed for this route; 401 for an unknown, revoked or expired key, 403 for a
    role below the route's."""
    principal = await run_in_threadpool(get_services(request).meta.resolve_principal, token)
    if principal is None:
        raise AuthError("unknown, revoked or expired API key")
    admit(request, principal)
    return principal


def admit(request: Request, principal: Principal) -> None:
    """Note the principal and the audit action on the request, then check the role against the route's."""
    template = request_template(request)
    state = request.state
    state.principal = principal
    state.audit_action = (
        "write" if request.method.upper() not in READ_METHODS else audited_read(request.method, template)
    )
    needed = required_role(request.method, template)
    if not principal.role.allows(needed):
        raise Forbidden(
            f"this needs the {needed.value} role; the key acts as {principal.role.value} in this project"
        )


async def current_principal(request: Request) -> Principal:
    """The principal of the request's Bearer key (the API routes' dependency)."""
    return await authenticate(request, bearer_token(request))


async def current_project(request: Request) -> ProjectInfo:
    """The project the request's key belongs to, once its role is allowed here."""
    return (await current_principal(request)).project


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
CurrentProject = Annotated[ProjectInfo, Depends(current_project)]
