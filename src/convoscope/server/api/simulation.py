"""Simulation runs over the API: keep a run's result, list and read runs, compare two.

Runs execute where the agent is reachable (``convoscope simulate`` on a laptop or in CI), so the server
keeps what they produced: the calls arrive through the ordinary ingest (and are evaluated like any
other), the run's own result through ``POST /simulation/runs``. Comparisons are computed on read from
two kept runs, so a later statistics fix applies to every stored pair.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ...errors import InputError, NotFound
from ...simulate.compare import compare_runs
from ...simulate.definitions import SLUG_PATTERN
from ...simulate.results import RUN_ID_PATTERN, RunResult
from ...store.metadata import RunSummary
from ..auth import CurrentProject
from ..deps import get_services
from ..openapi import error_responses

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/simulation", tags=["simulation"])

RunId = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="The run's id.")]


class RunList(BaseModel):
    """Kept runs, newest first."""

    items: list[RunSummary]


class Rate(BaseModel):
    """Passed of scored conversations."""

    passed: int
    n: int
    rate: float | None


class MetricDelta(BaseModel):
    """One metric across two runs: the difference (candidate − baseline) and its interval."""

    metric: str
    baseline: Rate
    candidate: Rate
    delta: float | None
    ci_low: float
    ci_high: float
    verdict: Literal["better", "worse", "no detectable difference"]
    higher_is_better: bool


class RunComparison(BaseModel):
    """The side-by-side of two runs of one suite."""

    baseline_run: str
    candidate_run: str
    baseline_version: str
    candidate_version: str
    confidence: float
    metrics: list[MetricDelta]
    regressions: list[str]


@router.post("/runs", status_code=201, summary="Keep a run's result")
async def save_run(
    request: Request, project: CurrentProject, run: RunResult, response: Response
) -> RunSummary:
    """Keeps (or replaces) the result of a run executed elsewhere; its calls are sent through ingest."""
    meta = get_services(request).meta
    report = run.model_dump(mode="json")
    try:
        summary = await run_in_threadpool(meta.save_run, project.id, report)
    except ValueError as exc:  # the id is another project's run
        raise InputError(str(exc)) from None
    response.headers["Location"] = f"/api/v1/simulation/runs/{run.run_id}"
    return summary


@router.get("/runs", summary="List kept runs")
async def list_runs(
    request: Request,
    project: CurrentProject,
    suite: Annotated[str | None, Query(max_length=128, pattern=SLUG_PATTERN)] = None,
    agent: Annotated[str | None, Query(max_length=128, pattern=SLUG_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RunList:
    meta = get_services(request).meta
    items = await run_in_threadpool(meta.list_runs, project.id, suite_id=suite, agent_id=agent, limit=limit)
    return RunList(items=items)


async def _run(request: Request, project_id: str, run_id: str) -> RunResult:
    found = await run_in_threadpool(get_services(request).meta.get_run, project_id, run_id)
    if found is None:
        raise NotFound(f"run {run_id} not found")
    return RunResult.model_validate(found)


@router.get("/runs/{run_id}", summary="A kept run's result")
async def get_run(request: Request, project: CurrentProject, run_id: RunId) -> RunResult:
    return await _run(request, project.id, run_id)


@router.get(
    "/compare",
    summary="Compare two runs of one suite (A/B)",
    responses=error_responses(400, 404),
)
async def compare(
    request: Request,
    project: CurrentProject,
    baseline: Annotated[str, Query(pattern=RUN_ID_PATTERN)],
    candidate: Annotated[str, Query(pattern=RUN_ID_PATTERN)],
    confidence: Annotated[float, Query(gt=0.5, lt=1.0)] = 0.95,
) -> RunComparison:
    """Per metric: each run's pass rate, the difference with its interval, and better / worse / no
    detectable difference. Runs of different suites are refused (400)."""
    first = await _run(request, project.id, baseline)
    second = await _run(request, project.id, candidate)
    try:
        result = compare_runs(
            first.model_dump(mode="json"), second.model_dump(mode="json"), confidence=confidence
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return RunComparison.model_validate(result.as_json())
