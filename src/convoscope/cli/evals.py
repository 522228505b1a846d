"""``convoscope eval``: evaluate stored calls (again), with a progress bar.

With a server owning the data directory the calls are queued there (``POST /api/v1/jobs/evals.run``) and
the command follows their progress until every evaluation has finished; otherwise it opens the store under
the directory lock and evaluates the calls itself. Either way new results replace the old ones, so running
it twice is harmless. ``--agents-file`` takes agent profiles from YAML: used as they are for a direct run,
stored as the agents' profiles on the server first otherwise. Bad input (an unknown metric, an unreadable
profile file, a bad date) is one line and exit code 2; evaluations that failed give exit code 1.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from ..errors import ConvoscopeError, InputError, StoreError
from ._shared import (
    DataDir,
    Project,
    count_progress,
    fail,
    locked_services,
    parse_since,
    report_failures,
    server_error_message,
)

if TYPE_CHECKING:
    from ..config import Settings
    from ..evals.base import AgentProfile
    from ..evals.jobs import EvalRequest

__all__ = ["eval_command"]

console = Console()
POLL_S = 0.5
"""How often the progress of queued evaluations is asked for."""
STATUS_CHUNK = 1000
"""Calls asked about per progress request (the server's bound)."""
STORE_EVERY = 200
"""Results are evaluated every this many calls in a direct run."""
_SERVER_TIMEOUT_S = 60.0
_FINISHED = frozenset({"done", "failed"})


def eval_command(
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's calls.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only calls started at or after this date (UTC).")
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", help="Run only this metric (repeatable); default: each agent's set."),
    ] = None,
    call: Annotated[list[str] | None, typer.Option("--call", help="Only this call id (repeatable).")] = None,
    agents_file: Annotated[
        Path | None,
        typer.Option("--agents-file", help="Agent profiles (metrics, thresholds, prompts) in YAML."),
    ] = None,
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """Evaluate stored calls with each agent's metric set (or --metric); new results replace old ones."""
    from ..evals.jobs import EvalRequest
    from ..evals.profiles import load_profiles
    from ..store.lock import running_server_url
    from .locate import command_settings

    try:
        request = EvalRequest(
            since=parse_since(since), agent_id=agent, call_ids=list(call or []), metrics=list(metric or [])
        )
        profiles = load_profiles(agents_file) if agents_file is not None else {}
        settings = command_settings(data_dir, reads_only=True)  # after the checks that need no store
        url = running_server_url(settings.data_dir)
        if url is not None:
            total, failed = _on_server(url, settings, project, request, profiles)
            where = url
        else:
            total, failed = _here(settings, project, request, profiles)
            where = str(settings.data_dir)
    except InputError as exc:
        fail(str(exc))
    except ConvoscopeError as exc:
        fail(str(exc), code=1)
    summary = f"evaluated {total - len(failed)} of {total} calls in {where}"
    report_failures(console, summary, failed)


class _Server:
    """The few API calls the command makes, with the server's errors turned into ours."""

    def __init__(self, url: str, key: str) -> None:
        import httpx

        self._http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=_SERVER_TIMEOUT_S
        )
        self._url = url

    def send(self, method: str, path: str, body: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise StoreError(f"server at {self._url} did not answer: {exc}") from None
        if response.status_code < 400:
            return response.json()
        message = server_error_message(response)
        if response.status_code in (400, 404, 422):
            raise InputError(message)
        raise StoreError(f"server answered {response.status_code}: {message}")

    def close(self) -> None:
        self._http.close()


def _on_server(
    url: str, settings: Settings, project: str, request: EvalRequest, profiles: dict[str, AgentProfile]
) -> tuple[int, list[tuple[str, str]]]:
    """Store the profiles, queue the evaluations and follow them to the end."""
    from ..runtime.kinds import EVALS_RUN
    from .backend import server_key

    server = _Server(url, server_key(settings, project, url))
    try:
        for agent_id, profile in profiles.items():
            server.send("PUT", f"/api/v1/agents/{agent_id}/profile", profile.model_dump(mode="json"))
        queued = server.send("POST", f"/api/v1/jobs/{EVALS_RUN}", request.model_dump(mode="json"))
        call_ids: list[str] = list(queued["call_ids"])
        failed: dict[str, str] = {}
        remaining = list(call_ids)
        with count_progress() as progress:
            task = progress.add_task("evaluating", total=len(call_ids))
            while remaining:
                still: list[str] = []
                for start in range(0, len(remaining), STATUS_CHUNK):
                    chunk = remaining[start : start + STATUS_CHUNK]
                    state = server.send("POST", f"/api/v1/jobs/{EVALS_RUN}/status", {"call_ids": chunk})
                    failed.update(state["errors"])
                    still.extend(c for c in chunk if state["status"].get(c) not in _FINISHED)
                progress.update(task, completed=len(call_ids) - len(still))
                remaining = still
                if remaining:
                    time.sleep(POLL_S)
        return len(call_ids), sorted(failed.items())
    finally:
        server.close()


def _here(
    settings: Settings, project: str, request: EvalRequest, profiles: dict[str, AgentProfile]
) -> tuple[int, list[tuple[str, str]]]:
    """Evaluate on the store itself, under the data directory lock."""
    with locked_services(settings) as services:
        return _evaluate_locally(services, project, request, profiles)


def _evaluate_locally(
    services: Any, project: str, request: EvalRequest, profiles: dict[str, AgentProfile]
) -> tuple[int, list[tuple[str, str]]]:
    from ..evals.jobs import check_metrics, eval_item, judge_pool, select_calls
    from ..evals.profiles import profile_for
    from ..evals.project import ProjectEvaluator
    from ..evals.runner import EvalItem, evaluate_calls
    from ..model import MetricResult

    project_id = services.meta.ensure_project(project).id
    evaluator = ProjectEvaluator(services.meta.project_settings(project_id))
    check_metrics(request.metrics, evaluator.custom)
    call_ids = select_calls(services.store, project_id, request)
    judges = judge_pool(services.settings)
    failed: list[tuple[str, str]] = []

    def items() -> Iterator[EvalItem]:
        for call_id in call_ids:
            stored = services.store.get_call(project_id, call_id)
            if stored is None:
                failed.append((call_id, "call not found"))
                continue
            try:
                profile = profile_for(stored.call.agent_id, evaluator.settings, profiles)
                judge = judges.for_profile(profile)
            except InputError as exc:
                failed.append((call_id, str(exc)))
                continue
            only = request.metrics or None
            local = evaluator.custom
            yield eval_item(stored.call, stored.scores, profile, judge=judge, only=only, local=local)

    pending: list[MetricResult] = []
    evaluated = 0
    try:
        with count_progress() as progress:
            task = progress.add_task("evaluating", total=len(call_ids))
            for _, results in evaluate_calls(items()):
                pending.extend(evaluator.finish(results))
                progress.advance(task)
                evaluated += 1
                if evaluated % STORE_EVERY == 0:
                    services.store.insert_scores(project_id, pending)
                    pending = []
            progress.update(task, completed=len(call_ids))
        if pending:
            services.store.insert_scores(project_id, pending)
    finally:
        judges.close()
    return len(call_ids), failed
