"""``convoscope``: serve, demo, ingest, calls, keys, schema.

Every command module is imported when the CLI starts (typer reads the commands' signatures), so these
modules import only typer, rich's console and the model's enums at the top; the store, the server, the
audio pipeline and HTTP clients are imported inside the command that uses them. ``convoscope --help``
then starts in a fraction of the time a full import takes (``benchmarks/startup.py`` measures it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from ._shared import DataDir, command_group, run_reporting_errors
from .access import audit_app, keys_app, users_app
from .alerts import app as alerts_app
from .audio import app as audio_app
from .calibrate import calibrate_command
from .calls import app as calls_app
from .evals import eval_command
from .gate import test_command
from .ingest import app as ingest_app
from .load import load_command
from .pull import pull
from .redaction import app as redaction_app
from .redteam import redteam_command
from .retention import app as retention_app
from .retention import delete_command
from .review import app as review_app
from .runs import app as runs_app
from .scenario import app as scenario_app
from .schedules import app as schedules_app
from .simulate import simulate_command
from .sources import app as sources_app
from .traces import app as traces_app

if TYPE_CHECKING:
    pass

__all__ = ["app"]

app = command_group("Test, monitor and evaluate voice AI agents.")
app.add_typer(ingest_app, name="ingest")
app.add_typer(calls_app, name="calls")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(audio_app, name="audio")
app.add_typer(sources_app, name="sources")
app.add_typer(scenario_app, name="scenario")
app.add_typer(runs_app, name="runs")
app.add_typer(alerts_app, name="alerts")
app.add_typer(schedules_app, name="schedules")
app.add_typer(traces_app, name="traces")
app.add_typer(review_app, name="review")
app.add_typer(redaction_app, name="redaction")
app.add_typer(retention_app, name="retention")
app.command()(pull)
app.command("eval")(eval_command)
app.command("calibrate")(calibrate_command)
app.command("simulate")(simulate_command)
app.command("load")(load_command)
app.command("redteam")(redteam_command)
app.command("test")(test_command)
app.command("delete")(delete_command)

console = Console()
err_console = Console(stderr=True)

Host = Annotated[str | None, typer.Option("--host", help="Interface to bind.")]
Port = Annotated[int | None, typer.Option("--port", help="Port to listen on.")]


@app.command()
def serve(data_dir: DataDir = None, host: Host = None, port: Port = None) -> None:
    """Start the server with the embedded store in the data directory."""
    from ..config import load_settings
    from ..server.runner import serve as run_server

    settings = load_settings(data_dir=data_dir, host=host, port=port)

    def announce(services: object) -> None:
        console.print(f"convoscope serving {settings.data_dir} at http://{settings.host}:{settings.port}")

    run_reporting_errors(lambda: run_server(settings, before_start=announce))


@app.command()
def worker(data_dir: DataDir = None) -> None:
    """Drain ingest and run jobs, schedules, alerts and retention for API servers started with
    CONVOSCOPE_RUN_JOBS=false (needs a ClickHouse server and PostgreSQL; start as many as needed)."""
    from ..config import load_settings
    from ..server.worker_process import run_worker

    settings = load_settings(data_dir=data_dir)

    def announce() -> None:
        console.print(f"convoscope worker running (pid {os.getpid()}); stop with Ctrl-C or SIGTERM")

    run_reporting_errors(lambda: run_worker(settings, ready=announce))


@app.command()
def demo(
    data_dir: DataDir = None,
    host: Host = None,
    port: Port = None,
    calls: Annotated[int, typer.Option(help="Demo calls to generate on first start.")] = 320,
) -> None:
    """Start the server with demo data (generated once into its own data directory).

    Other commands find it there while it runs, with no --data-dir needed.
    """
    from ..config import load_settings
    from ..server.runner import serve as run_server
    from .backend import project_key
    from .locate import demo_data_dir

    base = load_settings(host=host, port=port)
    settings = base.model_copy(update={"data_dir": data_dir or demo_data_dir(base)})

    def before_start(services: object) -> None:
        from ..server.services import Services
        from .demo import seed_demo

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

    run_reporting_errors(lambda: run_server(settings, before_start=before_start))


@app.command("reference-agent")
def reference_agent(
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8765,
    fault: Annotated[
        list[str] | None, typer.Option("--fault", help="A fault every request has (repeatable).")
    ] = None,
    slow_s: Annotated[float, typer.Option(help="Delay of the slow_tool fault, in seconds.", min=0.0)] = 2.0,
) -> None:
    """Serve the reference agent (a rule-based appointment line) to simulate against.

    OpenAI-compatible chat at /v1, a webhook at /webhook, a WebSocket at /ws and its tools at /tools;
    a request's model name may add faults (reference-agent+loops+leaks_pii).
    """
    import uvicorn

    from ..demo.agent import Fault, create_app
    from ._shared import fail

    try:
        faults = [Fault(name) for name in fault or []]
    except ValueError as exc:
        known = ", ".join(f.value for f in Fault)
        fail(f"{exc}; known faults: {known}")
    console.print(f"reference agent at http://{host}:{port}/v1 (faults: {', '.join(faults) or 'none'})")
    uvicorn.run(create_app(faults, slow_s=slow_s), host=host, port=port, log_level="warning")


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option(help="Write to this file.")] = None,
    of: Annotated[
        str, typer.Option("--of", help="call (the canonical Call) or simulation (definition files).")
    ] = "call",
) -> None:
    """Print the JSON Schema of the canonical Call, or of simulation definition files."""
    if of == "call":
        from ..model import Call

        document = Call.model_json_schema()
    elif of == "simulation":
        from ..simulate.schema import definitions_schema

        document = definitions_schema()
    else:
        from ._shared import fail

        fail(f"--of must be call or simulation, not {of!r}")
    text = json.dumps(document, indent=2) + "\n"
    if output:
        output.write_text(text)
    else:
        print(text, end="")
