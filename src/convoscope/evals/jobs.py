"""The ``evals.run`` job: every configured metric on a stored call, kept as scores.

Every call that lands in the store gets this job (:func:`plan_evaluation`). The handler takes a batch
of jobs (:data:`BATCH_SIZE`): it reads the calls back with one ``get_calls`` per project, with the scores
already stored (audio turn-taking results feed latency, speech rate and talk
ratio), resolves the agent's profile (project settings, ``"*"`` fallback, else the default set), runs the
metrics through :func:`~convoscope.evals.runner.evaluate_call` with the project's custom metrics and
the agent's judge (:mod:`convoscope.evals.project`) and writes every result, carrying its metric's
latest calibration, with one ``insert_scores`` per project; a newer result of a metric replaces the
older one, so evaluating again is idempotent. Reading calls one by one held the job at 32-39 calls/s.
While the call's audio analysis is still queued the job waits for it (up to :data:`MAX_AUDIO_WAITS`
looks), so transcript estimates never stand in for audio truth that is about to arrive.

:class:`EvalRequest` selects stored calls for an on-demand evaluation; ``POST /api/v1/jobs/evals.run``
and ``convoscope eval`` both go through :func:`queue_evaluation`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ..config import Settings
from ..errors import ConvoscopeError, NotFound
from ..model import Call, MetricResult
from ..runtime.context import JobContext
from ..runtime.jobs import Batched, job_error, per_project
from ..runtime.kinds import AUDIO_ANALYZE, EVALS_RUN
from ..runtime.params import Timestamp
from ..runtime.targets import failed_jobs, selected_calls
from ..store.base import CallStore
from ..store.metadata import Job, JobSpec, MetadataStore
from . import registry
from .base import AgentProfile, EvalContext, Metric
from .llm import JudgeClient
from .profiles import profile_for
from .project import JudgePool, ProjectEvaluator
from .runner import EvalItem, evaluate_call, evaluate_calls, resolve_metrics
from .scenario import ScenarioChecksMetric

__all__ = [
    "AUDIO_WAIT_S",
    "OnScored",
    "BATCH_SIZE",
    "MAX_AUDIO_WAITS",
    "EVALS_RUN",
    "EvalRequest",
    "EvalsJob",
    "check_metrics",
    "eval_item",
    "evaluate_stored",
    "failures",
    "judge_pool",
    "plan_evaluation",
    "queue_evaluation",
    "scenario_of",
    "select_calls",
]

AUDIO_WAIT_S = 5.0
"""How long an evaluation waits before looking again when the call's audio analysis is still queued."""

MAX_AUDIO_WAITS = 120
"""Looks after which an evaluation stops waiting for the audio analysis (10 minutes at the default wait)
and runs on transcript estimates, so a stuck analysis never holds evaluations back for ever."""

BATCH_SIZE = 64
"""Jobs one handler call takes: one read of 64 calls costs about what one call's read did, and a batch
still ends (and its scores appear) well within a second."""

OnScored = Callable[[str, Sequence[Call], Sequence[MetricResult]], None]
"""(project id, the batch's calls, their stored results) -> None: called right after each batch's scores
are written, so other capabilities (alert rules on a failed metric) see fresh results without a query."""

_WAITING = frozenset({"pending", "running"})


def plan_evaluation(project_id: str, call: Call) -> list[JobSpec]:
    """The follow-up of a stored call: one evaluation."""
    if call.id is None:
        return []
    return [JobSpec(kind=EVALS_RUN, call_id=call.id)]


def scenario_of(call: Call) -> Mapping[str, JsonValue] | None:
    """A simulated call's expectations, kept by the simulator in ``metadata["scenario"]``."""
    scenario = call.metadata.get("scenario")
    return scenario if isinstance(scenario, dict) else None


def eval_item(
    call: Call,
    scores: Iterable[MetricResult],
    profile: AgentProfile,
    *,
    judge: JudgeClient | None,
    only: list[str] | None = None,
    local: Mapping[str, type[Metric[Any]] | str] | None = None,
) -> EvalItem:
    """A stored call with the metrics to run on it and their context (its other stored scores);
    ``local`` holds the project's custom metrics."""
    metrics = resolve_metrics(profile, judge_available=judge is not None, only=only, local=local)
    metrics.extend(_scenario_metrics(call, metrics, only))
    return call, metrics, _context(call, scores, profile, judge, metrics)


def _scenario_metrics(call: Call, chosen: Sequence[Metric[Any]], only: list[str] | None) -> list[Metric[Any]]:
    """A simulated call carrying its scenario's checks is scored on them whatever the agent's profile
    lists (they are the scenario's own definition of success), unless ``only`` names other metrics."""
    scenario = scenario_of(call)
    wanted = ScenarioChecksMetric.name
    if scenario is None or scenario.get("checks") is None or any(m.name == wanted for m in chosen):
        return []
    if only and wanted not in only:
        return []
    return [ScenarioChecksMetric()]


def _context(
    call: Call,
    scores: Iterable[MetricResult],
    profile: AgentProfile,
    judge: JudgeClient | None,
    metrics: Sequence[Metric[Any]],
) -> EvalContext:
    """What the metrics see besides the call: the profile, the judge and the call's other stored scores."""
    names = {m.name for m in metrics}
    return EvalContext(
        profile=profile,
        judge=judge,
        scores={score.metric: score for score in scores if score.metric not in names},
        scenario=scenario_of(call),
    )


def evaluate_stored(
    call: Call,
    scores: Iterable[MetricResult],
    profile: AgentProfile,
    *,
    judge: JudgeClient | None,
    only: list[str] | None = None,
    local: Mapping[str, type[Metric[Any]] | str] | None = None,
) -> list[MetricResult]:
    """Every result of the profile's metrics (or ``only`` those) on one stored call."""
    return evaluate_call(*eval_item(call, scores, profile, judge=judge, only=only, local=local))


class EvalsJob:
    """The ``evals.run`` handler; one set of judge clients (their cache and connection pools) for all jobs.

    Each batch reads its projects' settings afresh, so a profile, a custom metric or a calibration
    changed a moment ago applies to the next evaluation without a restart.
    """

    def __init__(
        self, *, store: CallStore, meta: MetadataStore, settings: Settings, on_scored: OnScored | None = None
    ) -> None:
        self._store = store
        self._meta = meta
        self._settings = settings
        self._on_scored = on_scored
        self._judges: JudgePool | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, context: JobContext, *, on_scored: OnScored | None = None) -> EvalsJob:
        """The handler bound to the running services, with every built-in metric loaded.

        Loading them (importing the metric modules) takes a few hundred ms of CPU; done here, at server
        start, rather than by the first batch, which would run while the first ingest burst is stored.
        """
        registry.all_metrics()
        return cls(store=context.store, meta=context.meta, settings=context.settings, on_scored=on_scored)

    def judges(self) -> JudgePool:
        """The configured judge and the agents' own, built on first use."""
        with self._lock:
            if self._judges is None:
                self._judges = judge_pool(self._settings)
            return self._judges

    def judge(self) -> JudgeClient | None:
        """The configured judge; None when no LLM endpoint is configured."""
        return self.judges().base

    def close(self) -> None:
        """Close the judge clients' connections."""
        with self._lock:
            if self._judges is not None:
                self._judges.close()
            self._judges = None

    def batched(self, size: int = BATCH_SIZE) -> Batched:
        """This handler as the job runner takes it: ``size`` jobs at a time."""
        return Batched(self.run_batch, size=size)

    def __call__(self, job: Job) -> None:
        """Evaluate one job's call (see ``run_batch``); raises the job's error, if any."""
        error = self.run_batch([job]).get(job.id)
        if error is not None:
            raise error

    def run_batch(self, jobs: Sequence[Job]) -> dict[int, ConvoscopeError]:
        """Evaluate the jobs' calls and store every result; returns the errors of the jobs that failed.

        A call whose audio analysis is still queued is queued again for later (done, not failed: waiting
        must not use up attempts); a call no longer stored is ``NotFound``.
        """
        return per_project(jobs, self._run_project)

    def _run_project(self, project_id: str, jobs: Sequence[Job]) -> dict[int, ConvoscopeError]:
        ready = self._wait_for_audio(project_id, jobs)
        if not ready:
            return {}
        stored = self._store.get_calls(project_id, [job.call_id for job in ready])
        plans = _Plans(ProjectEvaluator(self._meta.project_settings(project_id)), self.judges())
        errors: dict[int, ConvoscopeError] = {}
        items: list[EvalItem] = []
        for job in ready:
            found = stored.get(job.call_id)
            if found is None:
                errors[job.id] = NotFound(f"call {job.call_id} not found")
                continue
            try:
                plan = plans.of(found.call.agent_id, job.params.get("metrics") or None)
            except Exception as exc:  # one agent's bad profile fails that agent's calls only
                errors[job.id] = job_error(exc, [job])
                continue
            # A simulated call is also scored on its scenario's checks, as ``eval_item`` does.
            only = job.params.get("metrics") or None
            metrics = [*plan.metrics, *_scenario_metrics(found.call, plan.metrics, only)]
            context = _context(found.call, found.scores, plan.profile, plan.judge, metrics)
            items.append((found.call, metrics, context))
        results = [result for _, found in evaluate_calls(items) for result in found]
        scored = plans.project.finish(results)
        self._store.insert_scores(project_id, scored)
        if self._on_scored is not None and scored:
            self._on_scored(project_id, [call for call, _, _ in items], scored)
        return errors

    def _wait_for_audio(self, project_id: str, jobs: Sequence[Job]) -> list[Job]:
        """The jobs that may run now; the others, whose audio analysis is queued, are queued again.

        Audio truth (turn-taking from the recording) is about to replace the transcript estimates, so
        evaluating now would store numbers that are known to be superseded (up to ``MAX_AUDIO_WAITS``).
        """
        audio = self._meta.jobs_for_calls(project_id, [job.call_id for job in jobs], kinds={AUDIO_ANALYZE})
        ready: list[Job] = []
        again: list[JobSpec] = []
        later = datetime.now(UTC) + timedelta(seconds=AUDIO_WAIT_S)
        for job in jobs:
            waits = int(job.params.get("audio_waits", 0))
            waiting = any(status.status in _WAITING for status in audio.get(job.call_id, []))
            if waiting and waits < MAX_AUDIO_WAITS:
                params = {**job.params, "audio_waits": waits + 1}
                again.append(JobSpec(EVALS_RUN, job.call_id, params=params, run_after=later))
            else:
                ready.append(job)
        self._meta.enqueue_jobs(project_id, again)
        return ready


@dataclass(frozen=True)
class _Plan:
    """How the calls of one agent are evaluated: its profile, its judge, the metric instances."""

    profile: AgentProfile
    judge: JudgeClient | None
    metrics: list[Metric[Any]]


class _Plans:
    """The plans of one project's batch, each made once per (agent, requested metrics).

    Resolving a profile and building its metrics (parameter validation per metric) cost more than
    evaluating a call; metric instances hold only their parameters, so the calls of a batch share them.
    A failure (a judge key not set) is kept too, and raised again for every call of that agent.
    """

    def __init__(self, project: ProjectEvaluator, judges: JudgePool) -> None:
        self.project = project
        self._judges = judges
        self._made: dict[tuple[str | None, tuple[str, ...] | None], _Plan | Exception] = {}

    def of(self, agent_id: str | None, only: list[str] | None) -> _Plan:
        key = (agent_id, tuple(only) if only else None)
        made = self._made.get(key)
        if made is None:
            try:
                made = self._make(agent_id, only)
            except Exception as exc:
                made = exc
            self._made[key] = made
        if isinstance(made, Exception):
            raise made
        return made

    def _make(self, agent_id: str | None, only: list[str] | None) -> _Plan:
        profile = profile_for(agent_id, self.project.settings)
        judge = self._judges.for_profile(profile)
        metrics = resolve_metrics(
            profile, judge_available=judge is not None, only=only, local=self.project.custom
        )
        return _Plan(profile, judge, metrics)


class EvalRequest(BaseModel):
    """Which stored calls to evaluate, and with which metrics (default: each agent's configured set).

    ``call_ids`` picks calls by id (each must exist); otherwise ``since`` and ``agent_id`` filter the
    project's calls. ``metrics`` names metrics to run instead of the agent's set; an unknown name is
    rejected before anything is queued.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    since: Timestamp | None = None
    agent_id: str | None = None
    call_ids: list[str] = Field(default_factory=list, max_length=10_000)
    metrics: list[str] = Field(default_factory=list)


def select_calls(store: CallStore, project_id: str, request: EvalRequest) -> list[str]:
    """The ids of the calls a request selects; a named call that does not exist is ``NotFound``."""
    return selected_calls(store, project_id, request)


def check_metrics(names: Iterable[str], custom: Mapping[str, object]) -> None:
    """Every name is a registered metric or one of the project's custom ones; else :class:`UnknownMetric`."""
    for name in names:
        if name not in custom:
            registry.get(name)


def judge_pool(settings: Settings) -> JudgePool:
    """The configured judge (if any) and room for the agents' own, with the data directory's cache."""
    return JudgePool.from_settings(settings)


def queue_evaluation(
    store: CallStore, meta: MetadataStore, project_id: str, request: EvalRequest
) -> list[str]:
    """Queue ``evals.run`` for the selected calls; returns their ids. Unknown metrics queue nothing."""
    check_metrics(request.metrics, ProjectEvaluator(meta.project_settings(project_id)).custom)
    call_ids = select_calls(store, project_id, request)
    params: dict[str, Any] = {"metrics": list(request.metrics)} if request.metrics else {}
    meta.enqueue_jobs(project_id, [JobSpec(kind=EVALS_RUN, call_id=c, params=dict(params)) for c in call_ids])
    return call_ids


def failures(meta: MetadataStore, project_id: str, call_ids: Iterable[str]) -> list[tuple[str, str]]:
    """The selected calls whose evaluation job failed, with the error."""
    return failed_jobs(meta, project_id, call_ids, EVALS_RUN)
