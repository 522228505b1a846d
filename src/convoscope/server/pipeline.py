"""What happens to a call after it is stored: the follow-up jobs each capability plans, and their handlers.

Each capability (re-hosting recordings, audio analysis, evaluators, trace assembly) contributes a planner,
which looks at a freshly stored call and names the jobs it needs, and a handler per job kind. This module
is the one place that lists them, so the ingest path stays unaware of what runs after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..model import Call
from ..store.metadata import JobSpec
from . import audio_job, evals_job, otlp_job, recording_job
from .jobs import Batched, JobHandler

if TYPE_CHECKING:
    from .services import Services

__all__ = ["Planner", "job_handlers", "plan_follow_ups", "planners"]

Planner = Callable[[str, Call], Iterable[JobSpec]]
"""(project id, a call as just stored, with its id) -> the jobs it needs."""


def planners() -> list[Planner]:
    """Every capability's planner, in the order their jobs should be queued."""
    found: list[Planner] = []
    found.append(recording_job.plan_recording_fetch)
    found.append(audio_job.plan_audio_analysis)
    found.append(evals_job.plan_evaluation)
    return found


def job_handlers(services: Services) -> dict[str, JobHandler | Batched]:
    """The handler of every job kind (one job at a time, or ``Batched``), bound to the running services."""
    handlers: dict[str, JobHandler | Batched] = {}
    handlers[recording_job.RECORDING_FETCH] = recording_job.RecordingFetchJob.of(services)
    handlers[audio_job.AUDIO_ANALYZE] = audio_job.AudioAnalysisJob.of(services)
    handlers[otlp_job.OTLP_ASSEMBLE] = otlp_job.AssembleJob.of(services).batched()
    handlers[evals_job.EVALS_RUN] = evals_job.EvalsJob.of(services).batched()
    return handlers


def plan_follow_ups(project_id: str, calls: Iterable[Call], plans: Iterable[Planner]) -> list[JobSpec]:
    """The follow-up jobs of freshly stored calls."""
    plan_list = list(plans)
    return [job for call in calls for plan in plan_list for job in plan(project_id, call)]
