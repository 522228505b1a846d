"""Time series over call columns, turn latencies and stored metric scores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ...errors import PayloadError
from ...model import CallSource
from ...store.base import Aggregate, Bucket, SeriesPoint, SeriesQuery
from ..auth import CurrentProject
from ..deps import get_services

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["metrics"])


class Series(BaseModel):
    """A time series and the query that produced it."""

    query: SeriesQuery
    points: list[SeriesPoint]


@router.get("/metrics/timeseries", summary="A metric over time")
async def timeseries(
    request: Request,
    project: CurrentProject,
    field: Annotated[
        str, Query(description="a call or turn column, metric:<name> (value) or passed:<name> (pass rate)")
    ],
    aggregate: Aggregate = Aggregate.AVG,
    bucket: Bucket = Bucket.DAY,
    since: datetime | None = None,
    until: datetime | None = None,
    group_by: Literal["agent"] | None = None,
    agent: str | None = None,
    source: CallSource | None = None,
) -> Series:
    """Defaults to the last 7 days; ``group_by=agent`` gives one series per agent."""
    end = until or datetime.now(UTC)
    start = since or end - timedelta(days=7)
    if start >= end:
        raise PayloadError("since must be before until", [{"loc": "query.since", "msg": "after until"}])
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
    points = await run_in_threadpool(get_services(request).store.series, project.id, query)
    return Series(query=query, points=points)
