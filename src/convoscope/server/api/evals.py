"""Evaluators over HTTP: the metric catalogue, on-demand evaluation, its progress, and agent profiles.

``GET /api/v1/metrics`` lists every registered metric with its definition, version and the JSON schema
of its parameters, so a client (or a person) can configure an agent without reading code.
``POST /api/v1/jobs/evals.run`` queues evaluations (``convoscope eval`` calls it while a server owns the
data directory) and ``POST /api/v1/jobs/evals.run/status`` reports where they stand. Agent profiles are
read and written under ``/api/v1/agents/{agent_id}/profile``; ``*`` is the project-wide fallback.
Scores themselves appear on ``GET /api/v1/calls/{id}``, and ``GET /api/v1/metrics/timeseries`` charts
``metric:<name>`` (mean) or ``passed:<name>`` (pass rate), by agent with ``group_by=agent``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError
from starlette.concurrency import run_in_threadpool

from ...errors import PayloadError
from ...evals import registry
from ...evals.base import AgentProfile, MetricKind
from ...evals.jobs import EvalRequest, queue_evaluation
from ...evals.profiles import PROFILES_PATH, profile_for
from ...evals.project import ProjectEvaluator
from ...runtime.kinds import EVALS_RUN
from ..auth import CurrentProject
from ..deps import get_services
from ..openapi import error_responses

__all__ = ["EvalsQueued", "JobProgress", "MetricInfo", "router"]

router = APIRouter(prefix="/api/v1", tags=["evals"])

MAX_STATUS_CALLS = 1000
"""Calls one progress request may ask about."""


class MetricInfo(BaseModel):
    """A registered metric: what it measures and how it is configured."""

    name: str
    version: str
    kind: MetricKind
    source: str
    description: str
    default: bool
    """Part of the default set of agents nobody configured."""
    params_schema: dict[str, JsonValue]
    docs: str


def metric_catalogue(kind: MetricKind | None = None) -> list[MetricInfo]:
    """Every registered metric, sorted by name (optionally of one kind)."""
    return [
        MetricInfo(
            name=cls.name,
            version=cls.version,
            kind=cls.kind,
            source=cls.source.value,
            description=cls.description,
            default=bool(getattr(cls, "default", True)),
            params_schema=cls.params_model.model_json_schema(),
            docs=f"docs/metrics/{cls.name}.md",
        )
        for cls in registry.all_metrics().values()
        if kind is None or cls.kind is kind
    ]


@router.get("/metrics", summary="Every metric with its definition, version and parameters")
async def list_metrics(
    request: Request, project: CurrentProject, kind: MetricKind | None = None
) -> list[MetricInfo]:
    """Deterministic, judge and audio metrics known to this server, with the project's custom metrics."""
    settings: dict[str, Any] = await run_in_threadpool(
        get_services(request).meta.project_settings, project.id
    )
    ProjectEvaluator(settings)  # defines the project's custom metrics, so they are listed too
    return metric_catalogue(kind)


class EvalsQueued(BaseModel):
    """What an evaluation request queued."""

    kind: str = EVALS_RUN
    queued: int
    call_ids: list[str]


@router.post(
    f"/jobs/{EVALS_RUN}",
    status_code=202,
    summary="Evaluate stored calls (again)",
    responses=error_responses(400, 404),
)
async def post_evaluation(body: EvalRequest, request: Request, project: CurrentProject) -> EvalsQueued:
    """Queue evaluations of the selected calls; the server runs them in the background and the new
    results replace the old ones. An unknown metric name is a 400 and a call id that names no call a
    404; either queues nothing."""
    services = get_services(request)
    call_ids = await run_in_threadpool(queue_evaluation, services.store, services.meta, project.id, body)
    services.jobs.notify()
    return EvalsQueued(queued=len(call_ids), call_ids=call_ids)


class ProgressRequest(BaseModel):
    """The calls whose evaluation to report on."""

    model_config = ConfigDict(extra="forbid")

    call_ids: list[str] = Field(max_length=MAX_STATUS_CALLS)


class JobProgress(BaseModel):
    """Each call's evaluation job state (``pending``, ``running``, ``done``, ``failed`` or ``none``)."""

    status: dict[str, str]
    errors: dict[str, str]


@router.post(f"/jobs/{EVALS_RUN}/status", summary="Where queued evaluations stand")
async def evaluation_status(body: ProgressRequest, request: Request, project: CurrentProject) -> JobProgress:
    """One state per call asked about, and the error of each failed one."""
    meta = get_services(request).meta

    def read() -> JobProgress:
        status: dict[str, str] = {}
        errors: dict[str, str] = {}
        for call_id in body.call_ids:
            jobs = [j for j in meta.jobs_for_call(project.id, call_id) if j.kind == EVALS_RUN]
            status[call_id] = jobs[0].status if jobs else "none"
            if jobs and jobs[0].status == "failed":
                errors[call_id] = jobs[0].error or "failed"
        return JobProgress(status=status, errors=errors)

    return await run_in_threadpool(read)


@router.get("/agents/{agent_id}/profile", summary="The profile an agent's calls are evaluated with")
async def get_profile(agent_id: str, request: Request, project: CurrentProject) -> AgentProfile:
    """The agent's own profile, else the project's ``*`` profile, else the empty (default-set) one."""
    settings: dict[str, Any] = await run_in_threadpool(
        get_services(request).meta.project_settings, project.id
    )
    return profile_for(agent_id, settings)


@router.put(
    "/agents/{agent_id}/profile", summary="Set an agent's evaluation profile", responses=error_responses(400)
)
async def put_profile(
    agent_id: str, body: AgentProfile, request: Request, project: CurrentProject
) -> AgentProfile:
    """Store the profile (metrics with parameter overrides, system prompt, knowledge base, expected
    outcome, the agent's own judge endpoint); every configured metric name (a built-in one or one of
    the project's custom metrics) and its parameters are checked first. A profile names the variable
    holding a judge key (``judge_api_key_env``), never the key, so no key is stored or returned."""
    meta = get_services(request).meta
    settings: dict[str, Any] = await run_in_threadpool(meta.project_settings, project.id)
    custom = ProjectEvaluator(settings).custom
    for name, overrides in body.metrics.items():
        found = custom.get(name)
        if isinstance(found, str):
            raise PayloadError(f"custom metric {name!r} cannot be used: {found}")
        try:
            (found or registry.get(name)).from_overrides(overrides)
        except ValidationError as exc:
            details: list[dict[str, object]] = [
                {"loc": ".".join(["metrics", name, *(str(p) for p in e["loc"])]), "msg": e["msg"]}
                for e in exc.errors()
            ]
            raise PayloadError(f"invalid parameters for metric {name!r}", details) from None
    stored = body.model_copy(update={"agent_id": None if agent_id == "*" else agent_id})
    value = stored.model_dump(mode="json", exclude_defaults=True)
    await run_in_threadpool(meta.update_project_settings, project.id, (*PROFILES_PATH, agent_id), value)
    return stored
