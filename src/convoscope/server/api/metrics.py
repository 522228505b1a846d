"""Time series over call columns, turn latencies and stored metric scores."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ...model import CallSource
from ...runtime.params import Timestamp
from ...store.base import Aggregate, Bucket, SeriesPoint, SeriesQuery
from ...store.schema import METRIC_PREFIX, PASSED_PREFIX, SERIES_FIELDS
from ..auth import CurrentProject
from ..deps import get_services

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["metrics"])

FIELD_PATTERN = (
    f"^({'|'.join(re.escape(name) for name in SERIES_FIELDS)}"
    f"|({re.escape(METRIC_PREFIX)}|{re.escape(PASSED_PREFIX)}).+)$"
)
"""The series a request can name: a call or turn column, or any metric name after its prefix. A metric
nobody scored is a valid request whose series is empty, like a filter that matches no call."""


class Series(BaseModel):
    """A time series and the query that produced it."""

    query: SeriesQuery
    points: list[SeriesPoint]


@router.get("/metrics/timeseries", summary="A metric over time")
async def timeseries(
    request: Request,
    project: CurrentProject,
    field: Annotated[
        str,
        Query(
            pattern=FIELD_PATTERN,
            description="a call or turn column, metric:<name> (value) or passed:<name> (pass rate)",
        ),
    ],
    aggregate: Aggregate = Aggregate.AVG,
    bucket: Bucket = Bucket.DAY,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    group_by: Literal["agent"] | None = None,
    agent: str | None = None,
    source: CallSource | None = None,
) -> Series:
    """Defaults to the last 7 days; ``group_by=agent`` gives one series per agent. A window that ends
    before it starts holds no calls, so its series is empty, as the calls list with the same bounds is.

    The default end is the end of the current hour: no call has started after now, so the series is the
    same, and a range of whole hours lets the store answer from its hourly rollups."""
    now = datetime.now(UTC)
    end = until or now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = since or end - timedelta(days=7)
    query = SeriesQuery(
        field=field,
        aggregate=aggregate,
        bucket=bucket,
        since=start,
        until=end,
        group_by_agent=group_by == "agent",
        agent_id=agent,
        source=source,
    )
    if start >= end:
        return Series(query=query, points=[])
    points = await run_in_threadpool(get_services(request).store.series, project.id, query)
    return Series(query=query, points=points)
