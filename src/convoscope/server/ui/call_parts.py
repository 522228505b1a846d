"""The parts of the call page loaded after it: further pages of turns and spans, and the raw vendor events.

A call with a thousand turns or five thousand spans would take seconds to lay out as one table, so the
page renders the first page of each and a "show more" button fetches the next rows (htmx swaps them in
place of the button). The vendor's raw events can be megabytes, so they load only when their section is
opened. Each answer is a fragment of the page, authorised by the session like the page itself.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...traces.otlp import price_table
from ..deps import get_services
from .auth_pages import signed_in
from .call_view import json_text, turn_rows
from .render import templates
from .waterfall import waterfall

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_MAX_EVENTS = 50
"""Raw events shown at most (a long vendor call can send hundreds of status events)."""


def _fragment(request: Request, name: str, context: dict[str, object], status_code: int = 200) -> Response:
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/calls/{call_id}/turns")
async def more_turns(call_id: str, request: Request, offset: Annotated[int, Query(ge=0)] = 0) -> Response:
    """Transcript rows from ``offset`` on (one page), ending with the button for the next page."""
    session = await signed_in(request)
    if session is None:
        return Response(status_code=401)
    store = get_services(request).store
    stored = await run_in_threadpool(store.get_call, session.project.id, call_id)
    if stored is None:
        return Response(status_code=404)
    rows, next_turns = turn_rows(stored, offset)
    context = {"call": stored.call, "rows": rows, "next_turns": next_turns}
    return _fragment(request, "call_turns.html", context)


@router.get("/calls/{call_id}/spans")
async def more_spans(call_id: str, request: Request, offset: Annotated[int, Query(ge=0)] = 0) -> Response:
    """Waterfall rows from ``offset`` on (one page), on the same scale as the first page."""
    session = await signed_in(request)
    if session is None:
        return Response(status_code=401)
    services = get_services(request)

    def read() -> Response:
        stored = services.store.get_call(session.project.id, call_id)
        if stored is None:
            return Response(status_code=404)
        spans = services.store.list_spans(session.project.id, call_id=call_id)
        rows = waterfall(spans, stored.call.started_at, price_table(services.settings), offset=offset)
        return _fragment(request, "call_spans.html", {"call": stored.call, "spans": rows})

    return await run_in_threadpool(read)


@router.get("/calls/{call_id}/payload")
async def raw_payload(call_id: str, request: Request) -> Response:
    """The vendor's raw events of the call as received (webhooks keep them), or why there are none."""
    session = await signed_in(request)
    if session is None:
        return Response(status_code=401)
    services = get_services(request)

    def read() -> Response:
        stored = services.store.get_call(session.project.id, call_id)
        if stored is None:
            return Response(status_code=404)
        call = stored.call
        raw = services.meta.source_events(session.project.id, call.source.value, call.external_id)
        events = []
        for body in raw[:_MAX_EVENTS]:
            try:
                events.append(json_text(orjson.loads(body)))
            except orjson.JSONDecodeError:
                events.append(body.decode("utf-8", errors="replace")[:200_000])
        context = {"call": call, "events": events, "total": len(raw)}
        return _fragment(request, "call_payload.html", context)

    return await run_in_threadpool(read)
