"""Finding traces and sessions without their ids: ``GET /api/v1/traces`` and ``GET /api/v1/sessions``.

A trace of an LLM or RAG app is worth reading only if it can be found: by when it ran, the service that
sent it, the model it called, whether it failed, one attribute's value, or text anywhere in its spans.
Each item says what the trace is (its root, service, models, span and error counts) and which
conversation and call it became, so the next request is ``GET /api/v1/traces/{id}`` or the call.
Pages go newest first; ``next_cursor`` is the opaque position after the last item.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ...errors import PayloadError, StoreError
from ...runtime.params import Timestamp
from ...store.trace_queries import TraceFilter, TraceQueriesMixin
from ..auth import CurrentProject
from ..deps import get_services

__all__ = ["SessionSummary", "TraceSummary", "router", "session_summary", "trace_filter", "trace_summary"]

router = APIRouter(prefix="/api/v1", tags=["traces"])

_CURSOR = re.compile(r"^(\d{1,19})\.([0-9a-f]{32})$")


class TraceSummary(BaseModel):
    """One trace as a list shows it."""

    trace_id: str
    started: datetime
    ended: datetime
    duration_ms: float
    span_count: int
    error_count: int
    root_name: str
    service: str | None
    models: list[str]
    conversation_id: str | None
    call_id: str | None


class TraceList(BaseModel):
    items: list[TraceSummary]
    next_cursor: str | None


class SessionSummary(BaseModel):
    """One conversation key's traces."""

    conversation_id: str
    started: datetime
    ended: datetime
    trace_count: int
    span_count: int
    error_count: int
    call_id: str | None


class SessionList(BaseModel):
    items: list[SessionSummary]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _attribute(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise PayloadError(
            f"attribute {text!r} is not KEY=VALUE", [{"loc": "query.attribute", "msg": "expected KEY=VALUE"}]
        )
    return key, value


def _before(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    found = _CURSOR.match(cursor)
    if found is None:
        raise PayloadError(
            f"cursor {cursor!r} is not one this API gave", [{"loc": "query.cursor", "msg": "unknown"}]
        )
    try:
        at = datetime.fromtimestamp(int(found.group(1)) / 1_000_000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise PayloadError(
            f"cursor {cursor!r} is not one this API gave", [{"loc": "query.cursor", "msg": "out of range"}]
        ) from None
    return at, found.group(2)


def _store(request: Request) -> TraceQueriesMixin:
    store = get_services(request).store
    if not isinstance(store, TraceQueriesMixin):
        raise StoreError(f"the call store ({type(store).__name__}) cannot search traces")
    return store


def trace_filter(
    since: datetime | None,
    until: datetime | None,
    service: str | None,
    model: str | None,
    status: str | None,
    attribute: str | None,
    text: str | None,
    conversation: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> TraceFilter:
    return TraceFilter(
        since=since,
        until=until,
        service=service,
        model=model,
        errors_only=status == "error",
        attribute=_attribute(attribute),
        text=text or None,
        conversation_id=conversation,
        before=_before(cursor),
        limit=limit,
    )


Text = Annotated[str | None, Query(min_length=1, max_length=256)]
Attribute = Annotated[
    str | None, Query(min_length=2, max_length=512, pattern=r"^[^=]+=.*$", description="KEY=VALUE")
]


@router.get("/traces", summary="List and search traces")
async def list_traces(
    request: Request,
    project: CurrentProject,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    service: Text = None,
    model: Text = None,
    status: Literal["error"] | None = None,
    attribute: Attribute = None,
    text: Text = None,
    conversation: Annotated[str | None, Query(min_length=1, max_length=512)] = None,
    cursor: Annotated[str | None, Query(max_length=64, pattern=_CURSOR.pattern)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TraceList:
    """Newest first. Every filter narrows: ``since``/``until`` (the trace's start, RFC 3339), ``service``
    (``service.name``), ``model`` (any convention's model attribute), ``status=error`` (a span failed),
    ``attribute=KEY=VALUE``, ``text`` (in a span's name or attributes, any case), ``conversation``."""
    query = trace_filter(since, until, service, model, status, attribute, text, conversation, cursor, limit)
    store = _store(request)
    rows = await run_in_threadpool(store.search_traces, project.id, query)
    items = [trace_summary(row) for row in rows]
    last = items[-1] if len(items) == limit else None
    next_cursor = None if last is None else f"{int(last.started.timestamp() * 1_000_000)}.{last.trace_id}"
    return TraceList(items=items, next_cursor=next_cursor)


def trace_summary(row: dict[str, Any]) -> TraceSummary:
    started, ended = _utc(row["started"]), _utc(row["ended"])
    return TraceSummary(
        trace_id=row["trace_id"],
        started=started,
        ended=ended,
        duration_ms=round((ended - started).total_seconds() * 1000, 3),
        span_count=row["span_count"],
        error_count=row["error_count"],
        root_name=row["root_name"],
        service=row["service"] or None,
        models=list(row["models"]),
        conversation_id=row["conversation_id"],
        call_id=row["call_id"],
    )


@router.get("/sessions", summary="List and search sessions (conversations of traced apps)")
async def list_sessions(
    request: Request,
    project: CurrentProject,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    service: Text = None,
    model: Text = None,
    status: Literal["error"] | None = None,
    attribute: Attribute = None,
    text: Text = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> SessionList:
    """The conversation keys with a trace matching the filters (as for ``/traces``, but ``since``/``until``
    bound the spans' start: activity in the range), latest activity first."""
    query = trace_filter(since, until, service, model, status, attribute, text, limit=limit)
    rows = await run_in_threadpool(_store(request).search_sessions, project.id, query)
    return SessionList(items=[session_summary(row) for row in rows])


def session_summary(row: dict[str, Any]) -> SessionSummary:
    """A store row as the API and the CLI show it."""
    return SessionSummary(
        conversation_id=row["conversation_id"],
        started=_utc(row["started"]),
        ended=_utc(row["ended"]),
        trace_count=row["trace_count"],
        span_count=row["span_count"],
        error_count=row["error_count"],
        call_id=row["call_id"],
    )
