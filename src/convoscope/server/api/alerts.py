"""Alert rules and their events over the API: create, list, read and delete rules, evaluate one now,
and read the events (with the calls that caused them).

A rule's body is one of the five shapes of :mod:`convoscope.alerts.rules` told apart by ``kind``, so
the OpenAPI document states exactly what is accepted and every refusal is a 422 naming the field. The
path names the rule (a body carries no id), so a schema-valid body is always a rule the server keeps.
Evaluating a rule over the API runs the same step as the schedule and writes its state and event, so
"evaluate now" after a change shows what the next round would do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ...alerts.engine import stored_event
from ...alerts.rules import SLUG_PATTERN, RuleSpec, parse_rule
from ...errors import NotFound
from ...runtime.params import Timestamp
from ...store.alerts_meta import StoredAlertEvent, StoredRule, StoredRuleState
from ..auth import CurrentProject
from ..deps import get_services
from . import paths as _paths  # noqa: F401  (registers the ``slug`` URL convertor)

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


RuleId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=SLUG_PATTERN, description="The rule's id.")
]
EventId = Annotated[
    str, Path(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$", description="The event's id.")
]


class RuleState(BaseModel):
    """Where a rule stands: firing or not, since when, its last event and its cooldown."""

    firing: bool
    since: datetime | None
    last_event_id: str | None
    last_event_at: datetime | None
    cooldown_until: datetime | None
    """No new firing before this (set when the rule resolved)."""
    last_evaluated_at: datetime | None
    last_value: float | None


class Rule(BaseModel):
    """A kept rule, its state and when it was written."""

    id: str
    rule: RuleSpec
    state: RuleState
    created_at: datetime
    updated_at: datetime


class RuleList(BaseModel):
    """The project's rules by id."""

    items: list[Rule]


class AlertEventOut(BaseModel):
    """One change of a rule's state, with the numbers and the calls behind it."""

    id: str
    rule_id: str
    rule_name: str
    state: Literal["firing", "resolved"]
    severity: Literal["info", "warning", "critical"]
    at: datetime
    summary: str
    value: float | None
    threshold: float | None
    sample_size: int
    window_s: float | None
    call_ids: list[str]
    """The calls that caused it (a bounded sample, newest first)."""
    details: dict[str, Any]
    series: list[float]
    """Recent bucket values, oldest first."""


class EventList(BaseModel):
    """Events, newest first."""

    items: list[AlertEventOut]


class Evaluation(BaseModel):
    """A rule evaluated now: its state after, and the event when its state changed."""

    rule_id: str
    state: RuleState
    event: AlertEventOut | None


def _state(state: StoredRuleState) -> RuleState:
    return RuleState(
        firing=state.firing,
        since=state.since,
        last_event_id=state.last_event_id,
        last_event_at=state.last_event_at,
        cooldown_until=state.cooldown_until,
        last_evaluated_at=state.last_evaluated_at,
        last_value=state.last_value,
    )


def _rule(stored: StoredRule) -> Rule:
    rule = parse_rule(stored.id, stored.body)
    return Rule(
        id=stored.id,
        rule=rule.spec,
        state=_state(stored.state),
        created_at=stored.created_at,
        updated_at=stored.updated_at,
    )


def _event(stored: StoredAlertEvent) -> AlertEventOut:
    return AlertEventOut(
        id=stored.id,
        rule_id=stored.rule_id,
        rule_name=stored.rule_name,
        state="firing" if stored.state == "firing" else "resolved",
        severity=stored.severity if stored.severity in ("info", "critical") else "warning",
        at=stored.at,
        summary=stored.summary,
        value=stored.value,
        threshold=stored.threshold,
        sample_size=stored.sample_size,
        window_s=stored.window_s,
        call_ids=stored.call_ids,
        details=stored.details,
        series=stored.series,
    )


@router.put(
    "/rules/{rule_id:slug}",
    summary="Create or replace an alert rule",
    responses={201: {"model": Rule, "description": "Created."}},
)
async def put_rule(
    request: Request, project: CurrentProject, rule_id: RuleId, body: RuleSpec, response: Response
) -> Rule:
    """200 when it replaced a kept rule (its state is kept), 201 when it is new."""
    meta = get_services(request).meta
    rule = parse_rule(rule_id, body.model_dump(mode="json"))
    (stored,) = await run_in_threadpool(
        meta.put_alert_rules, project.id, [(rule.id, rule.spec.model_dump(mode="json"), rule.spec.enabled)]
    )
    if stored.created:
        response.status_code = 201
        response.headers["Location"] = request.url.path
    return _rule(stored)


@router.get("/rules", summary="List alert rules")
async def list_rules(request: Request, project: CurrentProject) -> RuleList:
    rows = await run_in_threadpool(get_services(request).meta.list_alert_rules, project.id)
    return RuleList(items=[_rule(row) for row in rows])


@router.get("/rules/{rule_id:slug}", summary="An alert rule and its state")
async def get_rule(request: Request, project: CurrentProject, rule_id: RuleId) -> Rule:
    stored = await run_in_threadpool(get_services(request).meta.get_alert_rule, project.id, rule_id)
    if stored is None:
        raise NotFound(f"alert rule {rule_id!r} not found")
    return _rule(stored)


@router.delete(
    "/rules/{rule_id:slug}", status_code=204, response_class=Response, summary="Delete an alert rule"
)
async def delete_rule(request: Request, project: CurrentProject, rule_id: RuleId) -> Response:
    """The rule and its state go; its events stay (they name the rule by id)."""
    deleted = await run_in_threadpool(get_services(request).meta.delete_alert_rule, project.id, rule_id)
    if not deleted:
        raise NotFound(f"alert rule {rule_id!r} not found")
    return Response(status_code=204)


@router.post("/rules/{rule_id:slug}:evaluate", summary="Evaluate an alert rule now")
async def evaluate_rule(request: Request, project: CurrentProject, rule_id: RuleId) -> Evaluation:
    """Runs the rule as the schedule would (a disabled rule too) and keeps its new state and event."""
    outcome = await run_in_threadpool(get_services(request).alerts.evaluate_rule, project.id, rule_id)
    if outcome is None:
        raise NotFound(f"alert rule {rule_id!r} not found")
    event = None if outcome.event is None else _event(stored_event(outcome.event))
    return Evaluation(rule_id=outcome.rule_id, state=_state(outcome.state), event=event)


@router.get("/events", summary="List alert events")
async def list_events(
    request: Request,
    project: CurrentProject,
    rule: Annotated[str | None, Query(min_length=1, max_length=128, pattern=SLUG_PATTERN)] = None,
    state: Literal["firing", "resolved"] | None = None,
    since: Timestamp | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> EventList:
    """Newest first; ``since`` keeps events at or after that moment (RFC 3339 with its offset)."""
    rows = await run_in_threadpool(
        get_services(request).meta.list_alert_events,
        project.id,
        rule_id=rule,
        state=state,
        since=since,
        limit=limit,
    )
    return EventList(items=[_event(row) for row in rows])


@router.get("/events/{event_id}", summary="An alert event with its calls")
async def get_event(request: Request, project: CurrentProject, event_id: EventId) -> AlertEventOut:
    stored = await run_in_threadpool(get_services(request).meta.get_alert_event, project.id, event_id)
    if stored is None:
        raise NotFound(f"alert event {event_id!r} not found")
    return _event(stored)
