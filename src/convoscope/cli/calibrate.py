"""``convoscope calibrate METRIC --labels FILE``: a judge metric's agreement with human labels.

Runs the metric on every labelled call (stored calls by id, through the running server when there is
one; inline calls as given), prints accuracy, Cohen's kappa and the confusion matrix, and stores the
agreement in the project's settings, from where it is attached to every result of the metric. The work is
in ``calibrate_run``, imported when the command runs: the evaluators are slow to import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..errors import ConvoscopeError

__all__ = ["calibrate_command"]

console = Console()
err_console = Console(stderr=True)


def calibrate_command(
    metric: Annotated[str, typer.Argument(help="The metric to calibrate, e.g. expected_outcome.")],
    labels: Annotated[
        Path, typer.Option("--labels", help="JSONL, JSON or YAML of {call_id | call, label} entries.")
    ],
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Data directory (default ~/.convoscope).")
    ] = None,
    project: Annotated[str, typer.Option("--project", help="Project name.")] = "default",
    agent: Annotated[
        str | None, typer.Option("--agent", help="Judge every call with this agent's profile.")
    ] = None,
    profiles: Annotated[
        Path | None, typer.Option("--profiles", help="YAML of agent profiles, over the stored ones.")
    ] = None,
    custom: Annotated[
        Path | None, typer.Option("--custom", help="YAML of custom metric definitions to load first.")
    ] = None,
    on: Annotated[
        str, typer.Option("--on", help="Compare labels with the result's value, passed, or auto.")
    ] = "auto",
    store: Annotated[bool, typer.Option(help="Keep the agreement in the project's settings.")] = True,
) -> None:
    """Run a judge metric on human-labelled calls: accuracy, Cohen's kappa, confusion matrix."""
    from .calibrate_run import print_agreement, run_calibration
    from .locate import command_settings

    settings = command_settings(data_dir, reads_only=False)
    try:
        agreement = run_calibration(settings, metric, labels, project, agent, profiles, custom, on, store)
    except ConvoscopeError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    print_agreement(agreement, console)
    if store:
        console.print(f"stored as the calibration of {metric} in project {project}", highlight=False)
