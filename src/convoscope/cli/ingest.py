"""``convoscope ingest``: send calls from files, and look after the requests that could not be stored.

``convoscope ingest FILE...`` sends files (the ``files`` command, taken when the first argument names no
other command); ``ingest failed`` lists the dead letters and ``ingest retry ID`` queues one again. A file
that happens to be called ``failed`` or ``retry`` is sent with ``convoscope ingest files NAME``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from ._shared import DataDir, Project, count_progress, run_reporting_errors
from .dead_letters import failed_command, retry_command

if TYPE_CHECKING:
    from ..model import Call

__all__ = ["app"]

_DEFAULT = "files"


class _FilesByDefault(TyperGroup):
    """A group whose arguments go to ``files`` unless the first one names a command or asks for help."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [_DEFAULT, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_FilesByDefault,
    help="Send calls from files (`convoscope ingest FILE...`); list and retry failed ingest requests.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.command("failed")(failed_command)
app.command("retry")(retry_command)

console = Console()
err_console = Console(stderr=True)


@app.command("files")
def ingest_files(
    files: Annotated[list[Path], typer.Argument(help="JSON or JSONL files of canonical calls.")],
    data_dir: DataDir = None,
    project: Project = "default",
    batch_size: Annotated[int, typer.Option(help="Calls per request or insert.")] = 500,
) -> None:
    """Ingest calls from files: to the running server, or straight into the store when none runs."""
    from ..errors import ConvoscopeError
    from ..ingest.canonical import CallLimits, validate_calls
    from .backend import open_backend, read_documents
    from .locate import command_settings

    settings = command_settings(data_dir, reads_only=False)
    limits = CallLimits(max_batch_calls=max(batch_size, 1))

    def work() -> None:
        batches: list[list[Call]] = []
        for path in files:
            documents = read_documents(path)
            for start in range(0, len(documents), batch_size):
                chunk = documents[start : start + batch_size]
                try:
                    batches.append(validate_calls(chunk, limits))
                except ConvoscopeError as exc:
                    raise type(exc)(f"{path} (calls {start}-{start + len(chunk) - 1}): {exc}") from None
        total = sum(len(b) for b in batches)
        accepted = 0
        with open_backend(settings, project=project) as backend, count_progress(err_console) as progress:
            task = progress.add_task(f"ingest → {backend.where}", total=total)
            for batch in batches:
                accepted += backend.ingest(batch)
                progress.advance(task, len(batch))
        console.print(f"ingested {accepted} calls into project {project}")

    run_reporting_errors(work)
