"""The work of ``convoscope calibrate`` (the command itself is in ``cli/calibrate.py``, light to import).

Runs the metric on every labelled call (stored calls by id, through the running server when there is
one; inline calls as given), prints accuracy, Cohen's kappa and the confusion matrix, and stores the
agreement in the project's settings, from where it is attached to every result of the metric.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..config import Settings
from ..errors import InputError
from ..evals import registry
from ..evals.base import EvalContext, MetricKind
from ..evals.calibration import SETTINGS_KEY, Agreement, CompareOn, calibrate, read_labels
from ..evals.custom import load_custom_metrics
from ..evals.profiles import load_profiles, profile_for
from ..evals.project import JudgePool, ProjectEvaluator
from ..model import Call
from ..store.metadata import MetadataStore
from ._shared import count_progress
from .backend import open_backend

__all__ = ["print_agreement", "run_calibration"]

err_console = Console(stderr=True)


def print_agreement(agreement: Agreement, out: Console) -> None:
    """The agreement as a summary line and a confusion matrix (rows: people, columns: the judge)."""

    def show(number: float | None) -> str:
        return "n/a" if number is None else f"{number:.3f}"

    out.print(
        f"{agreement.metric}@{agreement.version}: accuracy {show(agreement.accuracy)}, "
        f"Cohen's kappa {show(agreement.kappa)} over {agreement.n} calls "
        f"(compared on {agreement.compared_on}; {agreement.errors} errors)",
        highlight=False,
    )
    table = Table("human \\ judge", *agreement.labels)
    for human in agreement.labels:
        table.add_row(human, *(str(agreement.confusion[human][judge]) for judge in agreement.labels))
    out.print(table)


def _labelled_calls(settings: Settings, project: str, labels: Path) -> list[tuple[Call, str]]:
    entries = read_labels(labels)
    stored_ids = [entry.call_id for entry in entries if entry.call is None and entry.call_id]
    fetched: dict[str, Call] = {}
    if stored_ids:
        with open_backend(settings, project=project) as backend:
            for call_id in stored_ids:
                fetched[call_id] = backend.get_call(call_id).call
    pairs: list[tuple[Call, str]] = []
    for entry in entries:
        call = entry.call if entry.call is not None else fetched[str(entry.call_id)]
        pairs.append((call, entry.label))
    return pairs


def run_calibration(
    settings: Settings,
    metric_name: str,
    labels: Path,
    project: str,
    agent: str | None,
    profiles_file: Path | None,
    custom: Path | None,
    on: str,
    store: bool,
) -> Agreement:
    if on not in ("auto", "value", "passed"):
        raise InputError(f"--on must be auto, value or passed, not {on!r}")
    compare_on: CompareOn = on  # type: ignore[assignment]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    meta = MetadataStore(settings.resolved_metadata_url)
    try:
        project_id = meta.ensure_project(project).id
        document: dict[str, Any] = meta.project_settings(project_id)
        project_metrics = ProjectEvaluator(document).custom
        if custom is not None:
            project_metrics.update({cls.name: cls for cls in load_custom_metrics(custom)})
        defined = project_metrics.get(metric_name)
        if isinstance(defined, str):
            raise InputError(defined)
        metric_class = defined or registry.get(metric_name)
        overrides = load_profiles(profiles_file) if profiles_file is not None else None
        # An agent's own judge (judge_model / judge_base_url in its profile) stands in for a configured one.
        named = profile_for(agent, document, overrides) if agent else None
        judges = JudgePool.from_settings(settings)
        own_judge = named is not None and named.judge_model is not None
        if metric_class.kind is MetricKind.JUDGE and judges.base is None and not own_judge:
            judges.close()
            raise InputError(
                f"{metric_name} is a judge metric and no LLM judge is configured "
                "(set CONVOSCOPE_LLM_MODEL and CONVOSCOPE_LLM_BASE_URL)"
            )

        def context_for(call: Call) -> EvalContext:
            profile = profile_for(agent or call.agent_id, document, overrides)
            scenario = call.metadata.get("scenario")
            return EvalContext(
                profile=profile,
                judge=judges.for_profile(profile),
                scenario=scenario if isinstance(scenario, dict) else None,
            )

        try:
            pairs = _labelled_calls(settings, project, labels)
            # The metric's parameters come from the profile of --agent, else of the first labelled call's
            # agent; each call is still judged against its own agent's prompt, knowledge base and judge.
            first_profile = profile_for(agent or pairs[0][0].agent_id, document, overrides)
            instance = metric_class.from_overrides(first_profile.metrics.get(metric_name))
            first_judge = judges.for_profile(first_profile)
            with count_progress(err_console) as progress:
                task = progress.add_task(f"calibrate {metric_name}", total=len(pairs))
                agreement, _ = calibrate(
                    instance,
                    pairs,
                    context_for,
                    on=compare_on,
                    progress=lambda done: progress.update(task, completed=done),
                )
        finally:
            judges.close()
        agreement = _with_source(agreement, labels, first_judge.model if first_judge is not None else None)
        if store:
            meta.update_project_settings(project_id, (SETTINGS_KEY, metric_name), agreement.as_json())
        return agreement
    finally:
        meta.close()


def _with_source(agreement: Agreement, labels: Path, model: str | None) -> Agreement:
    return replace(agreement, labels_file=str(labels), model=model)
