"""The audit log over the API (admins only): read it page by page, or export it whole as JSONL.

Both flush the server's pending entries first, so the act just done is in the answer. Reading the log is
itself recorded (``read.audit``): who looked at the trail is part of the trail.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ...runtime.params import Timestamp
from ...store.audit_meta import AuditQuery
from ..auth import CurrentPrincipal
from ..deps import get_services

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["audit"])

_MAX_PAGE = 1000


class AuditEntryOut(BaseModel):
    """One audited act."""

    id: int
    at: datetime
    actor: str
    key_id: str | None
    role: str | None
    action: str
    """``write`` (any API write), ``read.recording``/``read.payload``/``read.trace``/``read.audit``, or
    a named act of the command line (``key.create``, ``user.add``, ``call.delete``...)."""
    target: str
    method: str | None
    status: int | None
    source: str
    """The client's address, or ``cli`` for the command line."""
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_after: int | None
    """Pass as ``after`` for the next page; null on the last."""


Since = Annotated[Timestamp | None, Query(description="Entries at or after this time (RFC 3339).")]
Until = Annotated[Timestamp | None, Query(description="Entries before this time (RFC 3339).")]
Actor = Annotated[str | None, Query(max_length=200, description="A user's name, or key:NAME.")]
Action = Annotated[
    str | None, Query(max_length=64, description="An action, or a prefix ending in * (read.*).")
]


async def audit_query(
    request: Request,
    principal: CurrentPrincipal,
    since: Since = None,
    until: Until = None,
    actor: Actor = None,
    action: Action = None,
) -> AuditQuery:
    """The filters both routes take, for the caller's project, once pending entries are written."""
    await run_in_threadpool(get_services(request).audit.flush)
    return AuditQuery(principal.project.id, since, until, actor, action)


Filtered = Annotated[AuditQuery, Depends(audit_query)]


@router.get("/audit", summary="Read the audit log, oldest first")
async def read_audit(
    request: Request,
    query: Filtered,
    after: Annotated[int, Query(ge=0, description="The last id of the previous page.")] = 0,
    limit: Annotated[int, Query(ge=1, le=_MAX_PAGE)] = 100,
) -> AuditPage:
    paged = dataclasses.replace(query, after_id=after, limit=limit)
    entries = await run_in_threadpool(get_services(request).meta.list_audit, paged)
    items = [AuditEntryOut(**entry.as_json()) for entry in entries]
    return AuditPage(items=items, next_after=items[-1].id if len(items) == limit else None)


@router.get(
    "/audit.jsonl",
    summary="Export the audit log as JSON lines",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def export_audit(request: Request, query: Filtered) -> StreamingResponse:
    """Every matching entry, one JSON object a line, read from the store a page at a time."""
    services = get_services(request)

    def lines() -> Iterator[bytes]:
        for entry in services.meta.iter_audit(query):
            yield orjson.dumps(entry.as_json()) + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")
