"""The review queue over the API: fill it by rule, take the next calls, label them, export the labels,
read each metric's calibration.

The reviewer is the API key of the request (its id and name are kept with every label and claim; there
are no user accounts). ``GET /queue`` hands out: it claims the calls it returns for ``claim_minutes``
(nobody else is given them meanwhile) unless ``claim=false``. Refusals: an unknown call is a 404, an
unknown metric or a label with neither verdict nor value a 422 naming the field, a second label of the
same call and metric by the same key a 409 (send ``replace: true`` to change it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from starlette.concurrency import run_in_threadpool

from ...errors import PayloadError
from ...review import service
from ...review.rules import QueueRules
from ...runtime.params import Timestamp
from ...store.metadata import ProjectInfo
from ...store.reviews_meta import LabelExists, Reviewer, StoredLabel, StoredReviewItem
from ..auth import CurrentPrincipal, CurrentProject
from ..deps import get_services
from ..errors import error_body
from ..openapi import error_responses

__all__ = ["JSONL", "Label", "QueueAnswer", "jsonl_lines", "label_out", "queue_call", "router"]

router = APIRouter(prefix="/api/v1/reviews", tags=["reviews"])

DEFAULT_FILL_DAYS = 7
"""A fill without ``since`` looks this many days back from ``until``."""
JSONL = "application/x-ndjson"


async def current_reviewer(principal: CurrentPrincipal) -> tuple[ProjectInfo, Reviewer]:
    """The project and the reviewer of the request: who claims and who labels."""
    return principal.project, Reviewer.of(principal)


CurrentReviewer = Annotated[tuple[ProjectInfo, Reviewer], Depends(current_reviewer)]


# Models ----------------------------------------------------------------------------------------------


class FillRequest(BaseModel):
    """Which calls to look at (by start time) and the rules' parameters (read strictly)."""

    model_config = ConfigDict(extra="forbid")

    since: Timestamp | None = Field(default=None, description="Default: 7 days before `until`.")
    until: Timestamp | None = Field(default=None, description="Default: now.")
    rules: QueueRules = Field(default_factory=QueueRules)


class FillResult(BaseModel):
    """What a fill examined and queued."""

    since: datetime
    until: datetime
    examined: int
    queued: dict[str, int]
    """New items per rule; a (call, metric) already queued is never queued again."""
    candidates: int
    truncated: bool


class ReviewerOut(BaseModel):
    """An API key standing for a person: its id and name."""

    id: str
    name: str


class JudgeResult(BaseModel):
    """The metric's stored result on the call."""

    value: float | bool | str | None
    passed: bool | None
    version: str
    error: str | None = None


class QueueItem(BaseModel):
    """One metric of the call to label, and why it was queued."""

    id: str
    metric: str
    rule: str
    reason: str
    queued_at: datetime
    claimed_by: ReviewerOut | None
    claimed_until: datetime | None
    result: JudgeResult | None


class Label(BaseModel):
    """A person's label, with who gave it, when, and the result it was compared with."""

    id: str
    call_id: str
    metric: str
    verdict: Literal["pass", "fail"] | None
    value: float | None
    note: str
    reviewer: ReviewerOut
    rule: str | None
    """The queue rule that brought the call to a person (None: labelled outside the queue)."""
    judge: dict[str, JsonValue]
    created_at: datetime
    updated_at: datetime | None
    replaced: bool = False


class QueueCall(BaseModel):
    """A call handed out: its metrics to label and the labels it already has."""

    call_id: str
    agent_id: str | None
    started_at: datetime | None
    has_recording: bool
    items: list[QueueItem]
    labels: list[Label]
    page: str
    """The call's page in the web UI (audio and timeline)."""


class QueueAnswer(BaseModel):
    """The calls handed to the key, and the queue's counts by state."""

    items: list[QueueCall]
    counts: dict[str, int]


class LabelRequest(BaseModel):
    """One label: a verdict, a number, or both, and a note."""

    model_config = ConfigDict(extra="forbid", strict=True)

    call_id: str = Field(min_length=1, max_length=200)
    metric: str = Field(min_length=1, max_length=200)
    verdict: Literal["pass", "fail"] | None = None
    value: float | None = Field(default=None, allow_inf_nan=False)
    note: str = Field(default="", max_length=service.NOTE_CHARS)
    replace: bool = Field(default=False, description="Change this key's earlier label of the pair.")


class SkipRequest(BaseModel):
    """The call to give back."""

    model_config = ConfigDict(extra="forbid", strict=True)

    call_id: str = Field(min_length=1, max_length=200)


class Skipped(BaseModel):
    """How many of the call's items were released (the call is never handed to this key again)."""

    call_id: str
    released: int


class LabelList(BaseModel):
    """Labels, oldest first."""

    items: list[Label]


class MetricCalibration(BaseModel):
    """A metric's agreement with people (``uncalibrated``: no comparable label yet)."""

    metric: str
    kind: str | None
    status: Literal["calibrated", "uncalibrated", "undefined"]
    labels: int
    calls: int
    compared: int
    agreement: float | None
    kappa: float | None
    confusion: dict[str, dict[str, int]]
    value_pairs: int
    mean_abs_diff: float | None
    reviewers: int
    version: str | None
    last_labelled_at: datetime | None


class CalibrationList(BaseModel):
    """Every labelled metric and every judge, by name."""

    items: list[MetricCalibration]


# Conversions -----------------------------------------------------------------------------------------


def label_out(label: StoredLabel) -> Label:
    """A kept label as the API answers it."""
    return Label(
        id=label.id,
        call_id=label.call_id,
        metric=label.metric,
        verdict="pass" if label.verdict == "pass" else "fail" if label.verdict == "fail" else None,
        value=label.value,
        note=label.note,
        reviewer=ReviewerOut(id=label.reviewer_id, name=label.reviewer_name),
        rule=label.rule,
        judge=label.judge,
        created_at=label.created_at,
        updated_at=label.updated_at,
        replaced=label.replaced,
    )


def _item(item: StoredReviewItem, call: service.ReviewCall) -> QueueItem:
    result = call.result(item.metric)
    return QueueItem(
        id=item.id,
        metric=item.metric,
        rule=item.rule,
        reason=item.reason,
        queued_at=item.queued_at,
        claimed_by=None
        if item.claimed_by is None
        else ReviewerOut(id=item.claimed_by, name=item.claimed_by_name or ""),
        claimed_until=item.claimed_until,
        result=None
        if result is None
        else JudgeResult(
            value=result.value, passed=result.passed, version=result.version, error=result.error
        ),
    )


def queue_call(call: service.ReviewCall) -> QueueCall:
    """A handed-out call as the API answers it."""
    stored = call.stored
    return QueueCall(
        call_id=call.call_id,
        agent_id=None if stored is None else stored.call.agent_id,
        started_at=None if stored is None else stored.call.started_at,
        has_recording=bool(stored and stored.call.recordings),
        items=[_item(item, call) for item in call.items],
        labels=[label_out(label) for label in call.labels],
        page=f"/calls/{call.call_id}",
    )


def conflict(exc: LabelExists) -> JSONResponse:
    return JSONResponse(error_body("Conflict", str(exc)), status_code=409)


def in_body(exc: PayloadError) -> PayloadError:
    """The service's field errors with the request's ``body.`` prefix, as validation errors have."""
    details = [{**detail, "loc": f"body.{detail.get('loc')}"} for detail in exc.errors]
    return PayloadError(f"invalid request: {exc}", details)


# Routes ----------------------------------------------------------------------------------------------


@router.post("/queue/fill", summary="Queue calls for people by rule")
async def fill(request: Request, project: CurrentProject, body: FillRequest | None = None) -> FillResult:
    """Apply the rules (low scores, split judge verdicts, a seeded random sample per agent and day) to
    the calls started in ``[since, until)``. Idempotent: a (call, metric) already queued is not queued
    again, so a schedule or a person may fill the same window as often as they like."""
    body = body or FillRequest()
    until = body.until or datetime.now(UTC)
    since = body.since or until - timedelta(days=DEFAULT_FILL_DAYS)
    services = get_services(request)
    report = await run_in_threadpool(
        service.fill_queue,
        services.store,
        services.meta,
        project.id,
        since=since,
        until=until,
        rules=body.rules,
    )
    return FillResult(**report.as_json())


@router.get("/queue", summary="Take the next calls to label")
async def queue(
    request: Request,
    project: CurrentProject,
    who: CurrentReviewer,
    limit: Annotated[int, Query(ge=1, le=20, description="Calls to hand out.")] = 1,
    claim: Annotated[bool, Query(description="Claim them for this key (false: only look).")] = True,
    claim_minutes: Annotated[
        int, Query(ge=1, le=24 * 60, description="How long nobody else is given them.")
    ] = int(service.DEFAULT_CLAIM.total_seconds() // 60),
) -> QueueAnswer:
    """The key's own unexpired claims first, then the highest-priority, oldest calls nobody holds; each
    with the metrics to label, their stored results, and labels already given."""
    services = get_services(request)
    _, reviewer = who

    def read() -> QueueAnswer:
        calls = service.next_calls(
            services.store,
            services.meta,
            project.id,
            reviewer,
            count=limit,
            claim_for=timedelta(minutes=claim_minutes),
            claim=claim,
        )
        counts = services.meta.count_review_items(project.id)
        return QueueAnswer(items=[queue_call(call) for call in calls], counts=counts)

    return await run_in_threadpool(read)


@router.post("/queue/skip", summary="Give a claimed call back")
async def skip(request: Request, project: CurrentProject, who: CurrentReviewer, body: SkipRequest) -> Skipped:
    """Releases this key's claim on the call at once (others may take it) and never hands it to this
    key again."""
    released = await run_in_threadpool(
        get_services(request).meta.skip_review_call, project.id, body.call_id, who[1]
    )
    return Skipped(call_id=body.call_id, released=released)


@router.post(
    "/labels",
    status_code=201,
    summary="Label a call's metric",
    response_model=Label,
    responses=error_responses(404, 409),
)
async def post_label(
    request: Request, project: CurrentProject, who: CurrentReviewer, body: LabelRequest
) -> Label | JSONResponse:
    """Keeps the label with this key as the reviewer, closes the call's queue item for the metric and
    updates the metric's calibration. 404: no such call; 422: an unknown metric, or neither verdict
    nor value; 409: this key labelled the pair already (``replace: true`` edits it)."""
    services = get_services(request)
    try:
        stored = await run_in_threadpool(
            service.submit_label,
            services.store,
            services.meta,
            project.id,
            who[1],
            call_id=body.call_id,
            metric=body.metric,
            verdict=body.verdict,
            value=body.value,
            note=body.note,
            replace=body.replace,
        )
    except LabelExists as exc:
        return conflict(exc)
    except PayloadError as exc:
        raise in_body(exc) from None
    return label_out(stored)


def jsonl_lines(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """One JSON object per line."""
    for row in rows:
        yield (json.dumps(row, ensure_ascii=False, default=str) + "\n").encode()


@router.get(
    "/labels",
    summary="The labels, or the evaluation dataset (JSONL)",
    response_model=LabelList,
    responses={
        200: {
            "content": {JSONL: {"schema": {"type": "string"}}},
            "description": "With format=jsonl: one label per line, with the call's transcript.",
        }
    },
)
async def get_labels(
    request: Request,
    project: CurrentProject,
    format: Annotated[
        Literal["json", "jsonl"], Query(description="jsonl: the evaluation dataset, with transcripts.")
    ] = "json",
    metric: Annotated[str | None, Query(max_length=200)] = None,
    call_id: Annotated[str | None, Query(max_length=200)] = None,
    since: Timestamp | None = None,
) -> Response:
    """``format=jsonl`` streams the evaluation dataset: per line the call id, metric, label, note,
    reviewer, time, the judge's result and the call's transcript (``call_id`` and ``label`` make it a
    labels file for ``convoscope calibrate`` when one metric is exported)."""
    services = get_services(request)
    if format == "jsonl":
        rows = service.export_rows(
            services.store,
            services.meta,
            project.id,
            metric=metric,
            since=since,
            call_ids=None if call_id is None else [call_id],
        )
        headers = {"Content-Disposition": 'attachment; filename="review-labels.jsonl"'}
        return StreamingResponse(jsonl_lines(rows), media_type=JSONL, headers=headers)
    labels = await run_in_threadpool(
        services.meta.list_review_labels, project.id, metric=metric, call_id=call_id, since=since
    )
    body = LabelList(items=[label_out(label) for label in labels])
    return Response(body.model_dump_json(), media_type="application/json")


@router.get("/calibration", summary="Each metric's agreement with people (Cohen's kappa)")
async def calibration(request: Request, project: CurrentProject) -> CalibrationList:
    """Every labelled metric and every LLM judge; a judge nobody labelled is ``uncalibrated``."""
    report = await run_in_threadpool(service.calibration_report, get_services(request).meta, project.id)
    return CalibrationList(items=[MetricCalibration(**row.as_json()) for row in report])
