"""The overview page (``/``): a project's calls, quality, latency, cost and alerts over a time range,
each beside the previous period of the same length, every bucket a link to the calls behind it.

Filters live in the URL (agent, version, range or since/until, bucket) so a view can be shared. A
preset range ends at the next bucket boundary after now, so buckets fall on whole UTC hours or days and
the last one is the one in progress; a chosen since/until is taken as given (UTC, minute precision, the
calls list's format) and its buckets count from ``since``.

The page costs two reads of the event store (``store.overview_queries``, each bounded by the two
periods' time range), one small read for the agent choices and one of the alert events; nothing is
aggregated in Python but the alert events, which the metadata store keeps apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...store.overview_queries import OverviewQueriesMixin, OverviewScope
from ..deps import get_services
from .auth_pages import login_redirect, signed_in
from .overview_figures import build_overview, datetime_local
from .render import page

__all__ = ["FILTERS", "overview_page", "read_filters", "router"]

router = APIRouter(include_in_schema=False)

FILTERS = ("agent", "version", "range", "since", "until", "bucket")
"""The query parameters of the overview."""

RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_RANGE = "7d"
BUCKETS = {"hour": timedelta(hours=1), "6h": timedelta(hours=6), "day": timedelta(days=1)}
_WIDTH_NAMES = {"hour": "1 hour", "6h": "6 hours", "day": "1 day"}
MAX_BUCKETS = 750
"""Most points per chart (30 days of hours fit); more falls back to the automatic width."""
MAX_SPAN = timedelta(days=400)
"""Longest chosen range: both periods stay a bounded read."""
ALERT_EVENTS_READ = 500
"""Most alert events read for both periods (newest first); the page lists the newest of them."""
ALERT_EVENTS_SHOWN = 20


def _auto_width(length: timedelta) -> timedelta:
    if length <= timedelta(days=2):
        return BUCKETS["hour"]
    if length <= timedelta(days=14):
        return BUCKETS["6h"]
    return BUCKETS["day"]


def _ceil(moment: datetime, width: timedelta) -> datetime:
    """The first multiple of ``width`` since the epoch (UTC) after ``moment``."""
    step = width.total_seconds()
    return datetime.fromtimestamp((math.floor(moment.timestamp() / step) + 1) * step, UTC)


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


@dataclass(frozen=True)
class Filters:
    """The scope asked for, the values the form shows, and what could not be read (shown, not fatal)."""

    scope: OverviewScope
    values: dict[str, str]
    problems: list[str]


def read_filters(values: Mapping[str, str], now: datetime) -> Filters:
    """The overview's scope from the URL's values; anything unreadable falls back and is reported."""
    shown = {name: values.get(name, "").strip() for name in FILTERS}
    problems: list[str] = []
    range_key = shown["range"] or DEFAULT_RANGE
    if range_key not in RANGES:
        problems.append(f"range: {range_key!r} is not one of {', '.join(RANGES)}")
        range_key = DEFAULT_RANGE
    shown["range"] = range_key
    if shown["bucket"] and shown["bucket"] not in BUCKETS:
        problems.append(f"bucket: {shown['bucket']!r} is not one of {', '.join(BUCKETS)}")
        shown["bucket"] = ""
    chosen: dict[str, datetime] = {}
    for name in ("since", "until"):
        if shown[name]:
            try:
                chosen[name] = _moment(shown[name])
            except ValueError:
                problems.append(f"{name}: {shown[name]!r} is not a date and time")
                shown[name] = ""
    until = chosen.get("until", _ceil(now, timedelta(minutes=1)))
    since = chosen.get("since", until - RANGES[range_key])
    if chosen and since >= until:
        problems.append("since must be before until: showing the range instead")
        chosen, shown["since"], shown["until"] = {}, "", ""
    elif chosen and until - since > MAX_SPAN:
        problems.append(f"a range is at most {MAX_SPAN.days} days: showing the last {MAX_SPAN.days} of it")
        since = until - MAX_SPAN
    length = until - since if chosen else RANGES[range_key]
    width = BUCKETS.get(shown["bucket"]) or _auto_width(length)
    if length / width > MAX_BUCKETS:
        problems.append(f"bucket: {shown['bucket']} makes over {MAX_BUCKETS} points; chosen automatically")
        width, shown["bucket"] = _auto_width(length), ""
    if not chosen:
        until = _ceil(now, width)
        since = until - length
    scope = OverviewScope(
        since=since,
        until=until,
        width=width,
        agent_id=shown["agent"] or None,
        agent_version=shown["version"] or None,
    )
    return Filters(scope, shown, problems)


def _agent_choices(pairs: list[tuple[str, str]], values: Mapping[str, str]) -> dict[str, list[str]]:
    """Agents (with the selected one even when it has no calls here) and the versions to choose from."""
    agents = sorted({agent for agent, _ in pairs if agent} | ({values["agent"]} - {""}))
    versions = sorted(
        {v for agent, v in pairs if v and (not values["agent"] or agent == values["agent"])}
        | ({values["version"]} - {""})
    )
    return {"agents": agents, "versions": versions}


def _read(request: Request, project_id: str, filters: Filters) -> dict[str, Any]:
    """The store's answers for the page (run in a worker thread: the stores block)."""
    services = get_services(request)
    store = services.store
    if not isinstance(store, OverviewQueriesMixin):
        raise TypeError(f"the call store ({type(store).__name__}) cannot answer the overview")
    scope = filters.scope
    events = services.meta.list_alert_events(project_id, since=scope.previous_since, limit=ALERT_EVENTS_READ)
    figures = store.overview_figures(project_id, scope)
    overview = build_overview(scope, figures.calls, figures.scores, [e for e in events if e.at < scope.until])
    return {
        "overview": overview,
        "data": overview.data(scope),
        "alert_events": overview.alert_events[:ALERT_EVENTS_SHOWN],
        **_agent_choices(figures.agents, filters.values),
    }


async def overview_page(request: Request) -> Response:
    """The overview for the URL's filters (``/`` serves it; see ``ui.home``)."""
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    filters = read_filters(request.query_params, datetime.now(UTC))
    found = await run_in_threadpool(_read, request, session.project.id, filters)
    scope = filters.scope
    return page(
        request,
        "overview.html",
        session,
        {
            **found,
            "scope": scope,
            "values": filters.values,
            "problems": filters.problems,
            "ranges": list(RANGES),
            "buckets": list(BUCKETS),
            "period": {
                "since": datetime_local(scope.since),
                "until": datetime_local(scope.until),
                "previous_since": datetime_local(scope.previous_since),
                "width": next((_WIDTH_NAMES[k] for k, w in BUCKETS.items() if w == scope.width), ""),
            },
        },
    )


@router.get("/overview")
async def overview(request: Request) -> Response:
    """The overview under its own name (``/`` is the same page)."""
    return await overview_page(request)
