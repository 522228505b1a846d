"""``convoscope audio``: analyse a recording's turn-taking, and re-analyse stored calls with new settings.

``analyze`` works on files alone (no store): a table of the metrics, or with ``--json`` the whole
:class:`~convoscope.audio.report.TurnTakingAnalysis` document (schema in ``docs/schema/turn-taking.json``).
``reanalyze`` queues the ``audio.analyze`` job for stored calls: through the running server's API when one
owns the data directory, else on the store directly, running the jobs before it returns. Bad input (a file
that is not audio, a channel map that does not fit, an unknown parameter) is one line naming the file and
the problem, and exit code 2, like a usage error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from ..errors import ConvoscopeError, InputError, NotFound, StoreError
from ._shared import (
    DataDir,
    Project,
    command_group,
    fail,
    locked_services,
    parse_since,
    report_failures,
    server_error_message,
)

if TYPE_CHECKING:
    from ..analysis.job import ReanalysisRequest
    from ..audio.report import AnalysisParams, TurnTakingAnalysis
    from ..config import Settings
    from ..model import Role

__all__ = ["app"]

app = command_group("Turn-taking analysis of call recordings.")

console = Console()
_SERVER_TIMEOUT_S = 60.0

Params = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        help="Override an analysis parameter, NAME=VALUE (repeatable), e.g. long_silence_s=5, threshold=0.6.",
    ),
]
Vad = Annotated[
    str | None,
    typer.Option("--vad", help="Voice activity detector: silero (default, robust) or webrtc (fast)."),
]


def _overrides(vad: str | None, params: list[str] | None) -> dict[str, str]:
    """The command line's parameter overrides, ``--vad`` included, as NAME -> VALUE strings."""
    from ..audio.report import parse_overrides

    overrides = parse_overrides(params or [])
    if vad is not None:
        overrides["backend"] = vad
    return overrides


def _analysis_params(vad: str | None, params: list[str] | None) -> AnalysisParams:
    from ..audio.report import AnalysisParams

    return AnalysisParams().with_overrides(_overrides(vad, params))


def _channel_map(text: str | None, files: list[Path]) -> list[Role]:
    """``user,agent`` → roles in channel (or file) order; required, because no order is ever assumed."""
    from ..model import Role

    names = ", ".join(str(f) for f in files)
    if text is None:
        raise InputError(
            f"{names}: channel map unknown: not scorable for overlap metrics; say which party is on "
            "which channel (or file) with --channel-map, e.g. --channel-map user,agent"
        )
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        return [Role(part) for part in parts]
    except ValueError:
        raise InputError(
            f"--channel-map {text!r} is not a comma-separated list of roles (user, agent)"
        ) from None


def _format_value(value: float | bool | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def _print_table(analysis: TurnTakingAnalysis) -> None:
    from rich.table import Table

    counts = ", ".join(f"{role.value} {len(spans)} segments" for role, spans in analysis.segments.items())
    console.print(
        f"[bold]{' + '.join(analysis.sources)}[/bold]: {analysis.duration_s:.2f} s at "
        f"{analysis.sample_rate_hz} Hz, VAD {analysis.params.vad.backend}; {counts}",
        highlight=False,
    )
    table = Table("metric", "value", "passed", "source")
    for result in analysis.metrics:
        passed = "" if result.passed is None else ("yes" if result.passed else "[red]NO[/red]")
        value = _format_value(result.value)
        if result.value is None and "not_scorable" in result.evidence:
            value = "not scorable"
        table.add_row(result.metric.removeprefix("turn_taking."), value, passed, result.source.value)
    console.print(table)


@app.command()
def analyze(
    files: Annotated[
        list[Path],
        typer.Argument(help="A stereo recording, or two mono files (one per party).", show_default=False),
    ],
    channel_map: Annotated[
        str | None,
        typer.Option(
            "--channel-map",
            help="Role of each channel (or file) in order, e.g. user,agent. Never guessed.",
        ),
    ] = None,
    vad: Vad = None,
    params: Params = None,
    offset_s: Annotated[
        float, typer.Option("--offset", help="Call time (s) of the recording's first sample.")
    ] = 0.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the analysis document (segments, events, metrics, params).")
    ] = False,
) -> None:
    """Measure turn-taking from a two-channel recording (or a pair of mono files)."""
    if len(files) > 2:
        fail(f"analyze takes one stereo file or two mono files, got {len(files)} files")
    try:
        analysis_params = _analysis_params(vad, params)
        roles = _channel_map(channel_map, files)
        from ..audio.load import load_recording
        from ..audio.report import analyze_audio

        audio = load_recording(
            files[0],
            second=files[1] if len(files) == 2 else None,
            channel_map=roles,
            offset_s=offset_s,
        )
        analysis = analyze_audio(audio, call_id=files[0].stem, params=analysis_params)
    except ConvoscopeError as exc:
        fail(str(exc))
    if as_json:
        sys.stdout.write(analysis.model_dump_json(indent=2) + "\n")
    else:
        _print_table(analysis)


@app.command()
def reanalyze(
    since: Annotated[
        str | None, typer.Option("--since", help="Only calls started at or after this date (UTC).")
    ] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's calls.")] = None,
    call: Annotated[list[str] | None, typer.Option("--call", help="Only this call id (repeatable).")] = None,
    vad: Vad = None,
    params: Params = None,
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """Analyse stored calls' recordings again with new parameters; new results replace old ones.

    With a server running, the calls are queued there and analysed in the background; otherwise they
    are analysed here before the command returns (exit 1 if any failed).
    """
    from ..analysis.job import ReanalysisRequest
    from ..store.lock import running_server_url
    from .locate import command_settings

    settings = command_settings(data_dir, reads_only=True)
    try:
        request = ReanalysisRequest(
            since=parse_since(since),
            agent_id=agent,
            call_ids=list(call or []),
            params=dict(_overrides(vad, params)),
        )
        _analysis_params(vad, params)  # refuse bad parameters before touching the server or the store
        url = running_server_url(settings.data_dir)
        if url is not None:
            queued = _reanalyze_on_server(url, settings, project, request)
            console.print(f"queued {queued} calls for re-analysis on {url}", highlight=False)
            return
        queued, failed = _reanalyze_here(settings, project, request)
    except (InputError, NotFound) as exc:
        fail(str(exc))
    except ConvoscopeError as exc:
        fail(str(exc), code=1)
    summary = f"re-analysed {queued - len(failed)} of {queued} calls in {settings.data_dir}"
    report_failures(console, summary, failed)


def _reanalyze_on_server(url: str, settings: Settings, project: str, request: ReanalysisRequest) -> int:
    """POST the request to the running server; returns how many calls it queued."""
    import httpx

    from ..runtime.kinds import AUDIO_ANALYZE
    from .backend import server_key

    key = server_key(settings, project, url)
    body = request.model_dump_json(exclude_defaults=True)
    try:
        response = httpx.post(
            f"{url}/api/v1/jobs/{AUDIO_ANALYZE}",
            content=body,
            headers={"Authorization": f"Bearer {key}", "content-type": "application/json"},
            timeout=_SERVER_TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        raise StoreError(f"server at {url} did not answer: {exc}") from None
    if response.status_code >= 400:
        message = server_error_message(response)
        if response.status_code == 404:
            raise NotFound(message)
        if response.status_code in (400, 422):
            raise InputError(message)
        raise StoreError(f"server answered {response.status_code}: {message}")
    return int(response.json()["queued"])


def _reanalyze_here(
    settings: Settings, project: str, request: ReanalysisRequest
) -> tuple[int, list[tuple[str, str]]]:
    """Queue and run the jobs on the store itself, under the data directory lock."""
    from ..analysis.job import AudioAnalysisJob, failures, queue_reanalysis
    from ..runtime.jobs import JobRunner
    from ..runtime.kinds import AUDIO_ANALYZE

    with locked_services(settings) as services:
        project_id = services.meta.ensure_project(project).id
        call_ids = queue_reanalysis(services.store, services.meta, project_id, request)
        runner = JobRunner(services.meta, {AUDIO_ANALYZE: AudioAnalysisJob.of(services)})
        while runner.run_once():
            pass
        return len(call_ids), failures(services.meta, project_id, call_ids)
