"""The simulation pages: the suites and kept runs, one run's scenario × persona matrix (with its red-team
report when it is a red-team run), and the A/B comparison of two runs.

Runs are read from the metadata store (``RunStoreMixin``): the list from the runs' summaries, newest
first, reading the whole result only of runs not marked finished (to learn whether they still run). A
run the server executes is kept from its start with ``status: running`` and rewritten about once a
second, so its list row and its page poll a fragment every two seconds (htmx) until it is done. The
comparison is :func:`convoscope.simulate.compare.compare_runs` over the two kept results, as ``GET
/api/v1/simulation/compare`` computes it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...simulate.compare import compare_runs
from ..deps import get_services
from .auth_pages import login_redirect, signed_in
from .redteam_view import TagReader, is_redteam, redteam_view
from .render import page, templates
from .session import Session
from .simulation_views import RunRow, compare_rows, failing_metrics, failures, matrix, run_row

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

RUNS_SHOWN = 100
"""Kept runs listed (newest first), and offered in the comparison's choices."""
POLL = "every 2s"
"""How often a running run's row and page ask for its progress."""


def _rows(request: Request, project_id: str, suite: str | None, agent: str | None) -> list[RunRow]:
    meta = get_services(request).meta
    rows = []
    for summary in meta.list_runs(project_id, suite_id=suite, agent_id=agent, limit=RUNS_SHOWN):
        report = meta.get_run(project_id, summary.id) if summary.finished_at is None else None
        rows.append(run_row(summary, report))
    return rows


def _suites(request: Request, project_id: str, rows: list[RunRow]) -> list[dict[str, Any]]:
    """The project's kept suites, and the suites of listed runs whose definitions live elsewhere."""
    kept = get_services(request).meta.list_definitions(project_id, "suite")
    latest: dict[str, RunRow] = {}
    for row in rows:
        latest.setdefault(row.suite, row)
    suites = [
        {
            "id": stored.id,
            "name": stored.body.get("name") or "",
            "scenarios": len(stored.body.get("scenarios") or []),
            "personas": len(stored.body.get("personas") or ["neutral"]),
            "iterations": stored.body.get("iterations", 1),
            "kept": True,
            "latest": latest.get(stored.id),
        }
        for stored in kept
    ]
    known = {stored.id for stored in kept}
    for suite_id, row in latest.items():
        if suite_id not in known:
            suites.append({"id": suite_id, "kept": False, "latest": row})
    return suites


@router.get("/simulations")
async def simulations_page(request: Request, suite: str | None = None, agent: str | None = None) -> Response:
    """The suites and the kept runs, newest first (``suite`` and ``agent`` narrow the runs)."""
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    project_id = session.project.id

    def read() -> dict[str, Any]:
        rows = _rows(request, project_id, suite or None, agent or None)
        return {"runs": rows, "suites": _suites(request, project_id, rows)}

    found = await run_in_threadpool(read)
    values = {"suite": suite or "", "agent": agent or ""}
    context = {**found, "values": values, "runs_shown": RUNS_SHOWN, "poll": POLL}
    return page(request, "simulations.html", session, context)


async def _report(request: Request, session: Session, run_id: str) -> dict[str, Any] | None:
    return await run_in_threadpool(get_services(request).meta.get_run, session.project.id, run_id)


def _missing(request: Request, session: Session, run_ids: list[str]) -> Response:
    context = {"run_ids": run_ids, "section": "simulations"}
    return page(request, "simulation_missing.html", session, context, status_code=404)


def _fragment(request: Request, name: str, context: dict[str, Any]) -> Response:
    response = templates.TemplateResponse(request, name, context)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/simulations/runs/{run_id}/row")
async def run_list_row(run_id: str, request: Request) -> Response:
    """A run's row of the list (polled while it runs; the row of a finished run stops the polling)."""
    session = await signed_in(request)
    if session is None:
        return Response(status_code=401)
    report = await _report(request, session, run_id)
    if report is None:
        return Response(status_code=404)
    return _fragment(request, "simulation_row.html", {"run": run_row(None, report), "poll": POLL})


@router.get("/simulations/runs/{run_id}/progress")
async def run_progress(run_id: str, request: Request) -> Response:
    """A running run's progress line; once it is no longer running, the page reloads whole."""
    session = await signed_in(request)
    if session is None:
        return Response(status_code=401)
    report = await _report(request, session, run_id)
    if report is None:
        return Response(status_code=404)
    row = run_row(None, report)
    response = _fragment(request, "simulation_progress.html", {"run": row, "poll": POLL})
    if not row.running:
        response.headers["HX-Refresh"] = "true"
    return response


def _tags(request: Request, project_id: str) -> TagReader:
    store = get_services(request).store

    def read(call_ids: Collection[str]) -> Mapping[str, list[str]]:
        return {ident: stored.call.tags for ident, stored in store.get_calls(project_id, call_ids).items()}

    return read


@router.get("/simulations/runs/{run_id}")
async def run_page(run_id: str, request: Request) -> Response:
    """One run: totals, the scenario × persona matrix, failing metrics, failures, and its red-team report
    when it is a red-team run; an unknown id is a 404 page."""
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    project_id = session.project.id

    def read() -> dict[str, Any] | None:
        report = get_services(request).meta.get_run(project_id, run_id)
        if report is None:
            return None
        shown, failed_count = failures(report)
        return {
            "run": run_row(None, report),
            "matrix": matrix(report),
            "failing": failing_metrics(report),
            "failures": shown,
            "failure_count": failed_count,
            "redteam": redteam_view(report, _tags(request, project_id)) if is_redteam(report) else None,
        }

    content = await run_in_threadpool(read)
    if content is None:
        return _missing(request, session, [run_id])
    context = {**content, "section": "simulations", "poll": POLL}
    return page(request, "simulation_run.html", session, context)


@router.get("/simulations/compare")
async def compare_page(request: Request, a: str | None = None, b: str | None = None) -> Response:
    """Run ``a`` (baseline) against run ``b`` (candidate): each metric's pass rate in both, the difference
    and its interval, as ``compare_runs`` computes them. Without both, the form to choose them."""
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    project_id = session.project.id
    meta = get_services(request).meta
    choices = await run_in_threadpool(_rows, request, project_id, None, None)
    context: dict[str, Any] = {
        "section": "simulations",
        "choices": choices,
        "values": {"a": a or "", "b": b or ""},
        "rows": None,
        "problem": None,
    }
    if not (a and b):
        return page(request, "simulation_compare.html", session, context)
    baseline = await run_in_threadpool(meta.get_run, project_id, a)
    candidate = await run_in_threadpool(meta.get_run, project_id, b)
    if baseline is None or candidate is None:
        unknown = [r for r, found in ((a, baseline), (b, candidate)) if found is None]
        return _missing(request, session, unknown)
    try:
        comparison = compare_runs(baseline, candidate)
    except ValueError as exc:  # runs of different suites
        context["problem"] = str(exc)
        return page(request, "simulation_compare.html", session, context, status_code=400)
    context.update(
        rows=compare_rows(comparison),
        comparison=comparison,
        baseline=run_row(None, baseline),
        candidate=run_row(None, candidate),
    )
    return page(request, "simulation_compare.html", session, context)
