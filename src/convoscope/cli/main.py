"""``convoscope``: serve, demo, ingest, calls, keys, schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ..config import load_settings
from ..errors import ConvoscopeError
from ..ingest.canonical import CallLimits, validate_calls
from ..model import Call, CallSource, EndReason
from ..store.base import CallFilter
from ..store.metadata import MetadataStore
from ._shared import DataDir, Project, count_progress
from .audio import app as audio_app
from .backend import open_backend, project_key, read_documents
from .calibrate import calibrate_command
from .evals import eval_command
from .pull import pull
from .sources import app as sources_app

__all__ = ["app"]

app = typer.Typer(help="Test, monitor and evaluate voice AI agents.", no_args_is_help=True)
calls_app = typer.Typer(help="Read stored calls.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage project API keys.", no_args_is_help=True)
app.add_typer(calls_app, name="calls")
app.add_typer(keys_app, name="keys")
app.add_typer(audio_app, name="audio")
app.add_typer(sources_app, name="sources")
app.command()(pull)
app.command("eval")(eval_command)
app.command("calibrate")(calibrate_command)

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")

Host = Annotated[str | None, typer.Option("--host", help="Interface to bind.")]
Port = Annotated[int | None, typer.Option("--port", help="Port to listen on.")]


def _run(action: Callable[[], T]) -> T:
    """Run a command body, turning our errors into one red line and exit code 1."""
    try:
        return action()
    except ConvoscopeError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        details = getattr(exc, "errors", None)
        for detail in (details or [])[:20]:
            err_console.print(f"  {detail.get('loc')}: {detail.get('msg')}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None


@app.command()
def serve(data_dir: DataDir = None, host: Host = None, port: Port = None) -> None:
    """Start the server with the embedded store in the data directory."""
    from ..server.runner import serve as run_server

    settings = load_settings(data_dir=data_dir, host=host, port=port)

    def announce(services: object) -> None:
        console.print(f"convoscope serving {settings.data_dir} at http://{settings.host}:{settings.port}")

    _run(lambda: run_server(settings, before_start=announce))


@app.command()
def demo(
    data_dir: DataDir = None,
    host: Host = None,
    port: Port = None,
    calls: Annotated[int, typer.Option(help="Demo calls to generate on first start.")] = 320,
) -> None:
    """Start the server with demo data (generated once into its own data directory)."""
    from ..server.runner import serve as run_server
    from .demo import seed_demo

    base = load_settings(host=host, port=port)
    settings = base.model_copy(update={"data_dir": data_dir or base.data_dir / "demo"})

    def before_start(services: object) -> None:
        from ..server.services import Services

        assert isinstance(services, Services)
        added = seed_demo(services, count=calls)
        if added:
            console.print(f"seeded {added} demo calls into {settings.data_dir}")
        key = project_key(settings, settings.default_project)
        url = f"http://{settings.host}:{settings.port}"
        # Plain prints: a URL must never be wrapped across lines.
        print(f"\nconvoscope demo is running: open {url}/?key={key}")
        print(f"API key for this project: {key}")
        print(f'try: curl -H "Authorization: Bearer {key}" "{url}/api/v1/calls?limit=3"\n', flush=True)

    _run(lambda: run_server(settings, before_start=before_start))


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="JSON or JSONL files of canonical calls.")],
    data_dir: DataDir = None,
    project: Project = "default",
    batch_size: Annotated[int, typer.Option(help="Calls per request or insert.")] = 500,
) -> None:
    """Ingest calls from files: to the running server, or straight into the store when none runs."""
    settings = load_settings(data_dir=data_dir)
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

    _run(work)


@calls_app.command("list")
def calls_list(
    data_dir: DataDir = None,
    project: Project = "default",
    agent: Annotated[str | None, typer.Option(help="Only this agent.")] = None,
    source: Annotated[CallSource | None, typer.Option(help="Only this source.")] = None,
    end_reason: Annotated[EndReason | None, typer.Option(help="Only this end reason.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only calls with this tag.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the newest calls."""
    settings = load_settings(data_dir=data_dir)
    filters = CallFilter(agent_id=agent, source=source, end_reason=end_reason, tag=tag)

    def work() -> None:
        with open_backend(settings, project=project) as backend:
            page = backend.list_calls(filters, limit=limit, cursor=None)
        if as_json:
            print(page.model_dump_json(indent=2))
            return
        table = Table("id", "started (UTC)", "agent", "source", "dur s", "turns", "tool err", "end reason")
        for c in page.items:
            table.add_row(
                c.id,
                c.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                c.agent_id or "",
                c.source.value,
                f"{c.duration_s:.1f}",
                str(c.turn_count),
                str(c.tool_error_count),
                c.end_reason.value,
            )
        console.print(table)

    _run(work)


@calls_app.command("show")
def calls_show(
    call_id: Annotated[str, typer.Argument(help="The call's id.")],
    data_dir: DataDir = None,
    project: Project = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print the stored call as JSON.")] = False,
) -> None:
    """Show one call with its transcript."""
    settings = load_settings(data_dir=data_dir)

    def work() -> None:
        with open_backend(settings, project=project) as backend:
            stored = backend.get_call(call_id)
        if as_json:
            print(stored.model_dump_json(indent=2))
            return
        call = stored.call
        console.print(
            f"[bold]{call.agent_id or 'call'}[/bold] {call.source.value}:{call.external_id} "
            f"started {call.started_at:%Y-%m-%d %H:%M:%S} UTC, {call.effective_duration_s:.1f} s, "
            f"ended {call.end_reason.value}",
            highlight=False,
        )
        table = Table("#", "role", "start", "end", "text", "e2e s")
        for turn in call.turns:
            e2e = f"{turn.e2e_s:.2f}" if turn.e2e_s is not None else ""
            table.add_row(
                str(turn.index), turn.role.value, f"{turn.start_s:.2f}", f"{turn.end_s:.2f}", turn.text, e2e
            )
        console.print(table)
        for tool in call.tool_calls:
            status = "ok" if tool.success else ("FAILED" if tool.success is False else "?")
            console.print(f"tool {tool.name}({json.dumps(tool.arguments)}) → {status}", highlight=False)
        for score in stored.scores:
            console.print(f"score {score.metric}@{score.version} = {score.value} passed={score.passed}")

    _run(work)


@keys_app.command("create")
def keys_create(
    project: Annotated[str, typer.Option("--project", help="Project the key opens (created if new).")],
    name: Annotated[str, typer.Option(help="A label for the key.")] = "cli",
    data_dir: DataDir = None,
) -> None:
    """Create an API key and print it (shown once; only its hash is stored)."""
    settings = load_settings(data_dir=data_dir)

    def work() -> None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        meta = MetadataStore(settings.resolved_metadata_url)
        try:
            info = meta.ensure_project(project)
            print(meta.create_api_key(info.id, name=name))
        finally:
            meta.close()

    _run(work)


@app.command()
def schema(output: Annotated[Path | None, typer.Option(help="Write to this file.")] = None) -> None:
    """Print the JSON Schema of the canonical Call."""
    text = json.dumps(Call.model_json_schema(), indent=2) + "\n"
    if output:
        output.write_text(text)
    else:
        print(text, end="")
