"""The review queue in the browser: the next claimed call with its audio and transcript, a verdict per
metric, keyboard shortcuts, and each metric's calibration.

The page claims the next call for the signed-in key (the same claim as ``GET /api/v1/reviews/queue``, so
two people never get the same call) and posts labels as a plain form carrying the session's CSRF token;
after saving, the next call is claimed. Shortcuts live in ``static/ui/review.js`` and are listed on the
page. Everything goes through :mod:`convoscope.review.service`, so the UI, the API and the CLI refuse
the same things the same way (a second label of a call's metric is a 409 here too).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response, StreamingResponse

from ...errors import NotFound, PayloadError
from ...review import service
from ...review.calibration import MetricCalibration
from ...review.rules import LowScoreRule, QueueRules, RandomSampleRule
from ...store.reviews_meta import LabelExists, Reviewer
from ..api.reviews import JSONL, jsonl_lines
from ..deps import get_services
from .auth_pages import login_redirect, signed_in
from .call_page import view_of
from .csrf import csrf_valid
from .render import page
from .session import Session

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

MAX_FILL_DAYS = 366
"""The longest window the page's fill form takes."""


async def _reviewer(request: Request, session: Session) -> Reviewer | None:
    return None if session.principal is None else Reviewer.of(session.principal)


async def _form_reviewer(request: Request) -> tuple[Session, Reviewer] | Response:
    """The session and reviewer of a posted form; else the answer (sign in again, or the form expired)."""
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    if not await csrf_valid(request, session):
        return Response("The form expired: reload the page.", status_code=403)
    reviewer = await _reviewer(request, session)
    return login_redirect(request) if reviewer is None else (session, reviewer)


def _calibrations(request: Request, project_id: str) -> dict[str, MetricCalibration]:
    return {row.metric: row for row in service.calibration_report(get_services(request).meta, project_id)}


def _review_page(
    request: Request,
    session: Session,
    reviewer: Reviewer,
    *,
    message: str | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    services = get_services(request)
    project_id = session.project.id
    calls = service.next_calls(services.store, services.meta, project_id, reviewer)
    stored = calls[0].stored if calls else None
    context: dict[str, Any] = {
        "review": calls[0] if calls else None,
        "view": view_of(services, project_id, calls[0].call_id, stored)[0] if stored is not None else None,
        "counts": services.meta.count_review_items(project_id),
        "calibration": _calibrations(request, project_id),
        "reviewer": reviewer,
        "message": message,
        "problem": problem,
    }
    return page(request, "review.html", session, context, status_code=status_code)


@router.get("/review")
async def review_page(request: Request, saved: int | None = None, queued: int | None = None) -> Response:
    """The next call to label (claimed for this key), or the form that fills the queue."""
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    reviewer = await _reviewer(request, session)
    if reviewer is None:
        return login_redirect(request)
    message = None
    if saved is not None:
        message = f"Saved {saved} label{'s' if saved != 1 else ''}."
    elif queued is not None:
        message = f"Queued {queued} item{'s' if queued != 1 else ''}."
    return await run_in_threadpool(_review_page, request, session, reviewer, message=message)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _metrics_list(text: str) -> list[str]:
    return [name.strip() for name in text.replace("\n", ",").split(",") if name.strip()]


@router.post("/review/fill")
async def fill(request: Request) -> Response:
    """Fill the queue from the page's form: the last N days, failures, and a random sample."""
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    if not await csrf_valid(request, session):
        return Response("The form expired: reload the page.", status_code=403)
    form = await request.form()
    try:
        days = float(_text(form, "days") or 7)
        per_day = int(_text(form, "per_agent_per_day") or 0)
        rules = QueueRules(
            low_score=LowScoreRule(failed=_text(form, "failed") == "on"),
            random_sample=RandomSampleRule(
                per_agent_per_day=per_day,
                seed=int(_text(form, "seed") or 0),
                metrics=_metrics_list(_text(form, "sample_metrics")),
            ),
        )
        if not 0 < days <= MAX_FILL_DAYS:
            raise ValueError(f"days must be between 0 and {MAX_FILL_DAYS}")
    except ValueError as exc:
        reviewer = await _reviewer(request, session)
        if reviewer is None:
            return login_redirect(request)
        problem = f"The fill form is not valid: {exc}"
        return await run_in_threadpool(
            _review_page, request, session, reviewer, problem=problem, status_code=422
        )
    until = datetime.now(UTC)
    services = get_services(request)
    report = await run_in_threadpool(
        service.fill_queue,
        services.store,
        services.meta,
        session.project.id,
        since=until - timedelta(days=days),
        until=until,
        rules=rules,
    )
    return RedirectResponse(f"/review?queued={sum(report.queued.values())}", status_code=303)


def _labels_of(form: FormData) -> list[tuple[str, str | None, float | None, str]]:
    """(metric, verdict, value, note) of each metric the form gave a verdict or a value."""
    found = []
    for metric in form.getlist("metric"):
        if not isinstance(metric, str):
            continue
        verdict = _text(form, f"verdict:{metric}") or None
        raw = _text(form, f"value:{metric}")
        try:
            value = float(raw) if raw else None
        except ValueError:
            raise PayloadError(
                f"value: {raw!r} for {metric} is not a number", [{"loc": "value", "msg": "not a number"}]
            ) from None
        if verdict is None and value is None:
            continue  # left for later: the item stays open and claimed by this key
        found.append((metric, verdict, value, _text(form, f"note:{metric}")))
    return found


@router.post("/review/labels")
async def post_labels(request: Request) -> Response:
    """Save the form's labels (one per metric given a verdict or a value), then the next call."""
    signed = await _form_reviewer(request)
    if isinstance(signed, Response):
        return signed
    session, reviewer = signed
    form = await request.form()
    call_id = _text(form, "call_id")
    services = get_services(request)

    def save() -> int:
        labels = _labels_of(form)
        if not labels:
            raise PayloadError("choose pass or fail (or give a value) for at least one metric")
        for metric, verdict, value, note in labels:
            service.submit_label(
                services.store,
                services.meta,
                session.project.id,
                reviewer,
                call_id=call_id,
                metric=metric,
                verdict=verdict,
                value=value,
                note=note,
            )
        return len(labels)

    try:
        saved = await run_in_threadpool(save)
    except LabelExists as exc:
        problem, status = f"Not saved: {exc}.", 409
    except NotFound as exc:
        problem, status = f"Not saved: {exc}.", 404
    except PayloadError as exc:
        problem, status = f"Not saved: {exc}.", 422
    else:
        return RedirectResponse(f"/review?saved={saved}", status_code=303)
    return await run_in_threadpool(
        _review_page, request, session, reviewer, problem=problem, status_code=status
    )


@router.post("/review/skip")
async def skip(request: Request) -> Response:
    """Give the call back (others may take it; this key is not handed it again), then the next one."""
    signed = await _form_reviewer(request)
    if isinstance(signed, Response):
        return signed
    session, reviewer = signed
    form = await request.form()
    call_id = _text(form, "call_id")
    await run_in_threadpool(
        get_services(request).meta.skip_review_call, session.project.id, call_id, reviewer
    )
    return RedirectResponse("/review", status_code=303)


@router.get("/review/calibration")
async def calibration_page(request: Request) -> Response:
    """Each metric's agreement with people: Cohen's kappa, or *uncalibrated*."""
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    rows = await run_in_threadpool(service.calibration_report, get_services(request).meta, session.project.id)
    context = {"rows": rows, "section": "review"}
    return page(request, "review_calibration.html", session, context)


@router.get("/review/labels.jsonl")
async def export(request: Request, metric: str | None = None) -> Response:
    """The labels as an evaluation dataset (``GET /api/v1/reviews/labels?format=jsonl``) for the browser."""
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    services = get_services(request)
    rows = service.export_rows(services.store, services.meta, session.project.id, metric=metric or None)
    headers = {
        "Content-Disposition": 'attachment; filename="review-labels.jsonl"',
        "Cache-Control": "no-store",
    }
    return StreamingResponse(jsonl_lines(rows), media_type=JSONL, headers=headers)
