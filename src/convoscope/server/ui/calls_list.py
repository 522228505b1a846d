"""The calls table: filters kept in the URL (a view can be shared), newest first, cursor pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...model import CallSource, EndReason
from ...store.base import CallFilter, CallOrder
from ..deps import get_services
from .auth_pages import login_redirect, signed_in
from .render import page

__all__ = ["FILTERS", "router"]

router = APIRouter(include_in_schema=False)

FILTERS = (
    "agent",
    "version",
    "source",
    "end_reason",
    "tag",
    "since",
    "until",
    "recording",
    "failing",
    "metric",
    "min",
    "max",
    "text",
    "order",
)
"""The query parameters of the calls table, in the order the form shows them."""
PAGE_SIZE = 50


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def call_filter(values: dict[str, str]) -> tuple[CallFilter, list[str]]:
    """The store's filter from the URL's values, and what could not be read (shown, not fatal)."""
    problems: list[str] = []
    fields: dict[str, Any] = {}
    readers: dict[str, tuple[str, Any]] = {
        "agent": ("agent_id", str),
        "source": ("source", CallSource),
        "end_reason": ("end_reason", EndReason),
        "tag": ("tag", str),
        "since": ("since", _moment),
        "until": ("until", _moment),
        "recording": ("has_recording", lambda v: {"yes": True, "no": False}[v]),
        "version": ("agent_version", str),
        "failing": ("failing_metric", str),
        "metric": ("score_metric", str),
        "min": ("score_min", float),
        "max": ("score_max", float),
        "text": ("text", str),
        "order": ("order", CallOrder),
    }
    for name, (field, read) in readers.items():
        raw = values.get(name, "").strip()
        if not raw:
            continue
        try:
            fields[field] = read(raw)
        except (ValueError, KeyError):
            problems.append(f"{name}: {raw!r} is not a valid value")
    try:
        return CallFilter(**fields), problems
    except ValidationError as exc:
        return CallFilter(), [*problems, str(exc)]


@router.get("/calls")
async def calls_page(request: Request, cursor: str | None = None) -> Response:
    """The project's calls, filtered by the URL's parameters."""
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    values = {name: request.query_params.get(name, "") for name in FILTERS}
    filters, problems = call_filter(values)
    store = get_services(request).store
    calls = await run_in_threadpool(
        store.list_calls, session.project.id, filters, limit=PAGE_SIZE, cursor=cursor or None
    )
    kept = {name: value for name, value in values.items() if value}
    next_url = f"/calls?{urlencode({**kept, 'cursor': calls.next_cursor})}" if calls.next_cursor else None
    return page(
        request,
        "calls.html",
        session,
        {
            "calls": calls,
            "values": values,
            "problems": problems,
            "next_url": next_url,
            "sources": [s.value for s in CallSource],
            "end_reasons": [r.value for r in EndReason],
            "orders": [o.value for o in CallOrder],
            "metrics": await run_in_threadpool(store.metric_names, session.project.id),
        },
    )
