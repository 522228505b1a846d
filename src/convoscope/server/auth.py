"""Project-scoped API keys: every ``/api/`` route resolves its project from ``Authorization: Bearer``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from ..errors import AuthError
from ..store.metadata import ProjectInfo
from .deps import get_services

__all__ = ["CurrentProject", "current_project"]


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("missing API key: send 'Authorization: Bearer <key>'")
    return token.strip()


async def current_project(request: Request) -> ProjectInfo:
    """The project the request's key belongs to; 401 when there is none."""
    token = _bearer(request)
    project = await run_in_threadpool(get_services(request).meta.resolve_api_key, token)
    if project is None:
        raise AuthError("unknown or revoked API key")
    return project


CurrentProject = Annotated[ProjectInfo, Depends(current_project)]
