"""What happens to a call after it is stored: the capabilities the server composes, in one list.

Each capability (re-hosting recordings, audio analysis, evaluators, trace assembly) is its own package
with a planner, which looks at a freshly stored call and names the jobs it needs, and a handler per job
kind, built over the narrow :class:`~convoscope.runtime.context.JobContext`. This module is the one
place that lists them, so the ingest path stays unaware of what runs after it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from ..alerts.notifiers.deliver import DeliveryJob
from ..alerts.source import StoredAlerts
from ..analysis.job import AudioAnalysisJob, plan_audio_analysis
from ..evals.jobs import EvalsJob, OnScored, plan_evaluation
from ..model import Call
from ..recordings.fetch import RecordingFetchJob, plan_recording_fetch
from ..runtime.context import JobContext, Planner
from ..runtime.jobs import Batched, JobHandler
from ..runtime.kinds import ALERTS_DELIVER, AUDIO_ANALYZE, EVALS_RUN, OTLP_ASSEMBLE, RECORDING_FETCH
from ..store.metadata import JobSpec
from ..traces.otlp import AssembleJob, OtlpIngest

__all__ = ["job_handlers", "plan_follow_ups", "planners"]


def planners() -> list[Planner]:
    """Every capability's planner, in the order their jobs should be queued."""
    return [plan_recording_fetch, plan_audio_analysis, plan_evaluation]


def job_handlers(
    context: JobContext, otlp: OtlpIngest, *, on_scored: OnScored | None = None
) -> dict[str, JobHandler | Batched]:
    """The handler of every job kind (one job at a time, or ``Batched``), over the job context.

    ``otlp`` is the server's OTLP ingest, whose record of open conversations tells the assembly when a
    conversation has gone quiet; ``on_scored`` sees each evaluation batch's results (alert rules). Alert
    deliveries read the notifiers' secrets from this process's environment.
    """
    return {
        RECORDING_FETCH: RecordingFetchJob.of(context),
        AUDIO_ANALYZE: AudioAnalysisJob.of(context),
        OTLP_ASSEMBLE: AssembleJob(context, otlp).batched(),
        EVALS_RUN: EvalsJob.of(context, on_scored=on_scored).batched(),
        ALERTS_DELIVER: DeliveryJob.of(
            context,
            StoredAlerts(context.meta, ui_base_url=context.settings.public_url),
            env=os.environ,
            allowed_networks=context.settings.alerts_allowed_networks,
        ),
    }


def plan_follow_ups(project_id: str, calls: Iterable[Call], plans: Iterable[Planner]) -> list[JobSpec]:
    """The follow-up jobs of freshly stored calls."""
    plan_list = list(plans)
    return [job for call in calls for plan in plan_list for job in plan(project_id, call)]
