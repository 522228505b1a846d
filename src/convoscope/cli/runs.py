"""``convoscope runs``: the simulation runs kept in a project, and A/B comparisons between two of them."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from ._shared import DataDir, Project, command_group, run_reporting_errors

if TYPE_CHECKING:
    from ..simulate.compare import Comparison
    from .backend import Backend

__all__ = ["app", "print_comparison"]

app = command_group("Simulation runs kept in a project: list, show, compare (A/B).")
console = Console()


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def print_comparison(out: Console, comparison: Comparison) -> None:
    """The side-by-side: each metric's pass rates, the difference with its interval, and the verdict.

    Plain aligned lines, not a table: metric names and intervals must stay whole at 80 columns.
    """
    level = f"{comparison.confidence:.0%}"
    baseline = comparison.baseline_version or comparison.baseline_run
    candidate = comparison.candidate_version or comparison.candidate_run
    out.print(f"{baseline} → {candidate} (pass rates; difference with its {level} interval)", highlight=False)
    rows: list[tuple[str, str, str, str]] = []
    for metric in comparison.metrics:
        base, cand = metric.baseline, metric.candidate
        rates = (
            f"{_percent(base.rate)} ({base.passed}/{base.n}) → {_percent(cand.rate)} ({cand.passed}/{cand.n})"
        )
        delta = "n/a" if metric.delta is None else f"{metric.delta:+.0%}"
        change = f"{delta} [{metric.ci_low:+.0%}, {metric.ci_high:+.0%}]"
        verdict: str = metric.verdict
        if verdict == "no detectable difference":
            verdict = f"no detectable difference at n={base.n}/{cand.n}"
        rows.append((metric.metric, rates, change, verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(3)] if rows else [0, 0, 0]
    for name, rates, change, verdict in rows:
        style = {"better": "green", "worse": "red"}.get(verdict, "")
        shown = f"[{style}]{verdict}[/{style}]" if style else verdict
        out.print(
            f"  {name.ljust(widths[0])}  {rates.ljust(widths[1])}  {change.ljust(widths[2])}  {shown}",
            highlight=False,
            soft_wrap=True,
        )
    regressions = [m.metric for m in comparison.regressions]
    out.print(
        f"detectably worse: {', '.join(regressions)}" if regressions else "no metric is detectably worse"
    )


def _backend(data_dir: DataDir, project: str) -> AbstractContextManager[Backend]:
    from .backend import open_backend
    from .locate import command_settings

    return open_backend(command_settings(data_dir, reads_only=True), project=project)


@app.command("list")
def list_runs(
    suite: Annotated[str | None, typer.Option(help="Only runs of this suite.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only runs against this agent.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """Kept runs, newest first."""

    def work() -> None:
        with _backend(data_dir, project) as backend:
            runs = backend.list_runs(suite=suite, agent=agent, limit=limit)
        # Plain columns, never cut: a run id must be usable as printed (runs show / compare / --baseline).
        rows = [("run", "suite", "agent", "version", "started (UTC)", "passed", "failed", "errored")]
        for run in runs:
            started = str(run["started_at"])[:19].replace("T", " ")
            counts = (str(run["passed"]), str(run["failed"]), str(run["errored"]))
            rows.append((run["id"], run["suite_id"], run["agent_id"], run["agent_version"], started, *counts))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())

    run_reporting_errors(work)


@app.command("show")
def show_run(run_id: str, data_dir: DataDir = None, project: Project = "default") -> None:
    """A kept run's whole result, as JSON."""

    def work() -> None:
        with _backend(data_dir, project) as backend:
            print(json.dumps(backend.get_run(run_id), indent=2))

    run_reporting_errors(work)


@app.command("compare")
def compare(
    baseline: Annotated[str, typer.Argument(help="The run to compare against (A).")],
    candidate: Annotated[str, typer.Argument(help="The run under judgement (B).")],
    confidence: Annotated[float, typer.Option(min=0.5, max=0.999)] = 0.95,
    json_out: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """Compare two kept runs of one suite, metric by metric; exit 1 when a metric is detectably worse."""
    from ..simulate.compare import compare_runs

    def work() -> Comparison:
        with _backend(data_dir, project) as backend:
            first, second = backend.get_run(baseline), backend.get_run(candidate)
        try:
            return compare_runs(first, second, confidence=confidence)
        except ValueError as exc:
            from ..errors import InputError

            raise InputError(str(exc)) from None

    comparison = run_reporting_errors(work)
    if json_out:
        print(json.dumps(comparison.as_json(), indent=2))
    else:
        print_comparison(console, comparison)
    raise typer.Exit(code=1 if comparison.regressions else 0)
