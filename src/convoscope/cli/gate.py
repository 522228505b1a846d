"""``convoscope test``: the CI gate. Run simulation suites against an agent (or check thresholds over
stored calls) and answer with an exit status and the files CI systems read.

``convoscope simulate`` runs one suite for a person at a terminal; a CI job needs more from one command:
every suite (or those named, or the scenarios with a tag), a comparison with the last release's run, a
JUnit file for the test-results tab, a Markdown summary for the job page and the pull request, workflow
annotations, and an exit status a pipeline can branch on: 0 all passed, 1 something failed or regressed,
2 the test itself is broken (agent unreachable, bad definitions, bad options). The calls and runs go to
the server named by ``--server``/``--api-key`` (a shared one CI reaches), else to the data directory's
running server, else into the data directory itself, as with ``simulate``. Without a simulation,
``--since`` with ``--metric NAME>=VALUE`` checks stored calls instead (a nightly check of production).
The verdicts and renderings are in :mod:`convoscope.simulate.gate` and the ``report_*`` modules.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer
from rich.console import Console

from ._shared import BAD_INPUT_EXIT, DataDir, Project, err_console, fail

if TYPE_CHECKING:
    from ..config import Settings
    from ..evals.llm import JudgeClient
    from ..runtime.stores import Stores
    from ..simulate.definitions import AgentSpec, Definitions, Suite
    from ..simulate.gate import GateReport, Threshold
    from ..simulate.runner import ConversationResult, RunReport
    from ..store.base import SeriesPoint, SeriesQuery
    from .backend import Backend

__all__ = ["test_command"]

console = Console()

GITHUB_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
"""Where GitHub Actions reads a step's Markdown summary; the report is appended there when it is set."""
_NOT_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


class _Setup(Exception):
    """A problem with the options or the definitions: the gate cannot run (exit 2)."""


def test_command(
    suite: Annotated[
        list[str] | None, typer.Option("--suite", help="A suite to run (repeatable); default: every suite.")
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Run the scenarios with this tag instead of suites (repeatable)."),
    ] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="Agent id to test; with --since, the stored calls' agent.")
    ] = None,
    defs: Annotated[
        list[Path] | None,
        typer.Option("--defs", help="Definition files or folders (repeatable; default ./simulation)."),
    ] = None,
    iterations: Annotated[int | None, typer.Option(help="Override every suite's iterations.", min=1)] = None,
    concurrency: Annotated[int, typer.Option(help="Conversations in flight at once.", min=1)] = 32,
    agent_version: Annotated[str | None, typer.Option(help="Override the agent's version label.")] = None,
    baseline: Annotated[
        list[str] | None,
        typer.Option("--baseline", help="A kept run to compare its suite's run with (repeatable)."),
    ] = None,
    baseline_agent: Annotated[
        str | None,
        typer.Option("--baseline-agent", help="Run each suite against this agent too, and compare."),
    ] = None,
    server: Annotated[
        str | None, typer.Option("--server", help="A convoscope server to store the calls and runs on (URL).")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="CONVOSCOPE_API_KEY", help="The project's API key on --server."),
    ] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON summary here.")] = None,
    markdown_out: Annotated[
        Path | None, typer.Option("--markdown", help="Write the Markdown report here.")
    ] = None,
    judge_runs: Annotated[
        int,
        typer.Option(
            "--judge-runs", help="Ask each judge metric K times; disagreement is 'split'.", min=1, max=20
        ),
    ] = 1,
    split_fails: Annotated[
        bool, typer.Option("--split-fails", help="A split judge verdict fails the gate.")
    ] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="Check stored calls from this date instead of simulating.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="End of the --since window (default now).")
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", help="With --since: NAME>=VALUE (or <=, >, <); repeatable."),
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="With --since: only calls from this source.")
    ] = None,
    store: Annotated[bool, typer.Option(help="Store the simulated calls and the runs.")] = True,
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """Run simulation suites as a CI gate; exit 0 pass, 1 fail or regression, 2 error.

    Writes JUnit XML (--junit), a JSON summary (--json) and a Markdown report (--markdown, and to
    $GITHUB_STEP_SUMMARY when set); prints ::error annotations when GITHUB_ACTIONS=true. With --since and
    --metric it checks thresholds over stored calls instead of simulating.
    """
    from ..errors import ConvoscopeError

    try:
        if server is not None and not api_key:
            raise _Setup("--server needs --api-key (or CONVOSCOPE_API_KEY)")
        if since is not None or metric or until is not None or source is not None:
            simulation_only = {
                "--suite": suite,
                "--tag": tag,
                "--baseline": baseline,
                "--baseline-agent": baseline_agent,
                "--defs": defs,
                "--iterations": iterations,
                "--agent-version": agent_version,
            }
            given = [name for name, value in simulation_only.items() if value]
            if given or judge_runs != 1:
                raise _Setup(
                    f"--since checks stored calls: {', '.join(given) or '--judge-runs'} is for simulations"
                )
            report = _thresholds(
                since, until, metric or [], agent, source, server, api_key, data_dir, project
            )
        else:
            if agent is None:
                raise _Setup("--agent is required (the agent id to test), unless --since checks stored calls")
            report = _simulate(
                _Options(
                    suites=suite or [],
                    tags=tag or [],
                    agent=agent,
                    defs=defs or [Path("simulation")],
                    iterations=iterations,
                    concurrency=concurrency,
                    agent_version=agent_version,
                    baselines=baseline or [],
                    baseline_agent=baseline_agent,
                    server=server.rstrip("/") if server else None,
                    api_key=api_key,
                    judge_runs=judge_runs,
                    split_fails=split_fails,
                    store=store,
                    data_dir=data_dir,
                    project=project,
                )
            )
    except (_Setup, ConvoscopeError, ValueError) as exc:
        fail(str(exc), BAD_INPUT_EXIT)
    try:
        _emit(report, junit=junit, json_out=json_out, markdown_out=markdown_out)
    except OSError as exc:
        fail(f"cannot write the report: {exc}", BAD_INPUT_EXIT)
    raise typer.Exit(code=report.exit_code())


# ----- outputs


def _emit(
    report: GateReport, *, junit: Path | None, json_out: Path | None, markdown_out: Path | None
) -> None:
    """The verdict line, the annotations (under GitHub Actions) and the files asked for."""
    import json

    from ..simulate.report_junit import junit_xml
    from ..simulate.report_markdown import markdown, workflow_annotations

    totals = report.totals()
    if report.suites:
        console.print(
            f"gate {report.status}: {totals['passed']} passed, {totals['failed']} failed, "
            f"{totals['split']} split, {totals['errored']} errored; {len(report.regressions)} regression(s)",
            highlight=False,
        )
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in workflow_annotations(report):
            print(line, flush=True)
    text = markdown(report)
    summary = os.environ.get(GITHUB_SUMMARY_ENV)
    summary_path = Path(summary) if summary else None
    if markdown_out is not None and not _same(markdown_out, summary_path):
        markdown_out.write_text(text, encoding="utf-8")
    if summary_path is not None:
        with summary_path.open("a", encoding="utf-8") as out:
            out.write(text)
    if junit is not None:
        junit.write_bytes(junit_xml(report))
    if json_out is not None:
        json_out.write_text(json.dumps(report.as_json(), indent=2) + "\n", encoding="utf-8")


def _same(path: Path, other: Path | None) -> bool:
    return other is not None and path.resolve() == other.resolve()


# ----- simulation


@dataclass(frozen=True)
class _Options:
    """The simulation mode's options, checked."""

    suites: list[str]
    tags: list[str]
    agent: str
    defs: list[Path]
    iterations: int | None
    concurrency: int
    agent_version: str | None
    baselines: list[str]
    baseline_agent: str | None
    server: str | None
    api_key: str | None
    judge_runs: int
    split_fails: bool
    store: bool
    data_dir: Path | None
    project: str

    def __post_init__(self) -> None:
        if self.suites and self.tags:
            raise _Setup("give --suite or --tag, not both")
        if self.baselines and self.baseline_agent is not None:
            raise _Setup("give --baseline (kept runs) or --baseline-agent (run it now), not both")


def _chosen_suites(definitions: Definitions, options: _Options) -> list[Suite]:
    """The suites named, or one suite per tag (its scenarios, the neutral persona, once each), or all."""
    from ..simulate.definitions import Suite

    if options.tags:
        chosen: list[Suite] = []
        for tag in dict.fromkeys(options.tags):
            scenarios = sorted(sid for sid, scenario in definitions.scenarios.items() if tag in scenario.tags)
            if not scenarios:
                raise _Setup(f"no scenario is tagged {tag!r}")
            chosen.append(
                Suite(id=f"tag-{_NOT_SLUG.sub('-', tag).strip('-.') or 'tag'}", scenarios=scenarios)
            )
        return chosen
    if options.suites:
        unknown = [name for name in options.suites if name not in definitions.suites]
        if unknown:
            known = ", ".join(sorted(definitions.suites)) or "none"
            raise _Setup(f"unknown suite(s) {', '.join(map(repr, unknown))} (suites defined: {known})")
        return [definitions.suites[name] for name in dict.fromkeys(options.suites)]
    if not definitions.suites:
        raise _Setup(f"no suite in {', '.join(map(str, options.defs))}; define one, or use --tag")
    return [definitions.suites[name] for name in sorted(definitions.suites)]


def _spec(definitions: Definitions, name: str, version: str | None = None) -> AgentSpec:
    spec = definitions.agents.get(name)
    if spec is None:
        known = ", ".join(sorted(definitions.agents)) or "none"
        raise _Setup(f"unknown agent {name!r} (agents defined: {known})")
    return spec if version is None else spec.model_copy(update={"version": version})


@contextmanager
def _backend(options: _Options, settings: Settings) -> Iterator[Backend | None]:
    """Where the calls and runs go: --server, else the data directory's server, else the store; none when
    nothing is stored and no kept run is read."""
    from .backend import HttpBackend, open_backend

    if not options.store and not options.baselines:
        yield None
    elif options.server is not None:
        assert options.api_key is not None
        with closing(HttpBackend(options.server, options.api_key)) as remote:
            yield remote
    else:
        with open_backend(settings, project=options.project) as backend:
            yield backend


def _simulate(options: _Options) -> GateReport:
    from ..config import load_settings
    from ..evals.llm import JudgeClient, JudgeConfig
    from ..simulate.gate import GateReport, suite_outcome
    from ..simulate.loader import load_definitions
    from .backend import HttpBackend
    from .locate import command_settings
    from .runs import print_comparison
    from .simulate import print_summary

    definitions = load_definitions(options.defs)
    suites = _chosen_suites(definitions, options)
    candidate = _spec(definitions, options.agent, options.agent_version)
    reference = _spec(definitions, options.baseline_agent) if options.baseline_agent else None
    local = options.server is None and (options.store or bool(options.baselines))
    settings = (
        command_settings(options.data_dir, reads_only=False)
        if local
        else load_settings(data_dir=options.data_dir)
    )
    config = JudgeConfig.from_settings(settings)
    judge = JudgeClient(config) if config is not None else None
    if judge is None and options.judge_runs > 1:
        err_console.print("note: --judge-runs has no effect: no LLM judge is configured", highlight=False)
    report = GateReport(judge_runs=options.judge_runs, split_fails=options.split_fails, agent=options.agent)
    try:
        with _backend(options, settings) as backend:
            if isinstance(backend, HttpBackend):
                report.server_url = backend.where
            kept = _kept_runs(backend, options.baselines, suites)
            for chosen in suites:
                base: dict[str, Any] | None = kept.get(chosen.id)
                if reference is not None:
                    base = _run(definitions, chosen, reference, options, judge, backend).to_json()
                run = _run(definitions, chosen, candidate, options, judge, backend)
                print_summary(run)
                outcome = suite_outcome(run, baseline=base, server_url=report.server_url)
                split = [case for case in outcome.cases if case.verdict == "split"]
                if split:
                    console.print(
                        f"  {len(split)} split (judge runs disagreed; "
                        f"{'failing' if options.split_fails else 'counted apart'}): "
                        + ", ".join(
                            f"{c.label} ({c.scenario} × {c.persona} #{c.iteration})" for c in split[:10]
                        ),
                        highlight=False,
                        soft_wrap=True,
                    )
                if outcome.comparison is not None:
                    print_comparison(console, outcome.comparison)
                report.suites.append(outcome)
    finally:
        if judge is not None:
            judge.close()
    return report


def _kept_runs(
    backend: Backend | None, run_ids: Sequence[str], suites: Sequence[Suite]
) -> dict[str, dict[str, Any]]:
    """The kept baseline runs by suite; a run of a suite not being run, or two of one suite, is refused."""
    if not run_ids or backend is None:
        return {}
    wanted = {suite.id for suite in suites}
    kept: dict[str, dict[str, Any]] = {}
    for run_id in run_ids:
        found = backend.get_run(run_id)
        suite = str(found.get("suite"))
        if suite not in wanted:
            raise _Setup(f"baseline run {run_id} is a run of suite {suite!r}, which this test does not run")
        if suite in kept:
            raise _Setup(f"two baseline runs of suite {suite!r}: {kept[suite].get('run_id')} and {run_id}")
        kept[suite] = found
    for missing in sorted(wanted - set(kept)):
        err_console.print(
            f"note: no baseline run given for suite {missing}; it is not compared", highlight=False
        )
    return kept


def _run(
    definitions: Definitions,
    suite: Suite,
    spec: AgentSpec,
    options: _Options,
    judge: JudgeClient | None,
    backend: Backend | None,
) -> RunReport:
    """One suite against one agent, scored with the judge metrics asked ``judge_runs`` times, then kept."""
    import asyncio

    from ..config import load_settings
    from ..simulate.connectors.registry import connector_from_config
    from ..simulate.gate import judge_runs_scorer
    from ..simulate.runner import plan, run_suite
    from ..simulate.voice.io import voice_io
    from ._shared import count_progress
    from .simulate import store_report

    work = plan(definitions, suite, iterations=options.iterations)
    scorer = judge_runs_scorer(suite, judge=judge, runs=options.judge_runs)
    with count_progress() as progress:
        task = progress.add_task(f"simulating {suite.id} against {spec.id}", total=len(work))

        def landed(_: ConversationResult) -> None:
            progress.advance(task)

        async def go() -> RunReport:
            connector = connector_from_config(spec.connector.kind, spec.connector.settings())
            try:
                return await run_suite(
                    definitions,
                    suite,
                    spec,
                    connector,
                    scorer=scorer,
                    llm=judge,
                    concurrency=options.concurrency,
                    on_result=landed,
                    items=work,
                    **voice_io(load_settings()),
                )
            finally:
                await connector.aclose()

        report = asyncio.run(go())
    if options.store and backend is not None:
        store_report(backend, report)
        backend.save_run(report.to_json())
        err_console.print(
            f"stored run {report.run_id} ({len(report.results)} calls) in project {options.project} "
            f"at {backend.where}",
            highlight=False,
        )
    return report


# ----- thresholds over stored calls


class _Series(Protocol):
    def series(self, query: SeriesQuery) -> list[SeriesPoint]: ...


class _HttpSeries:
    """The series API of a server (``GET /api/v1/metrics/timeseries``)."""

    def __init__(self, url: str, key: str) -> None:
        import httpx

        self.where = url
        self._client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60.0)

    def series(self, query: SeriesQuery) -> list[SeriesPoint]:
        import httpx

        from ..errors import AuthError, PayloadError, StoreError
        from ..store.base import SeriesPoint
        from ._shared import server_error_message

        params = {
            "field": query.field,
            "aggregate": query.aggregate.value,
            "bucket": query.bucket.value,
            "since": query.since.isoformat(),
            "until": query.until.isoformat(),
        }
        if query.agent_id is not None:
            params["agent"] = query.agent_id
        if query.source is not None:
            params["source"] = query.source.value
        try:
            response = self._client.get("/api/v1/metrics/timeseries", params=params)
        except httpx.HTTPError as exc:
            raise StoreError(f"server at {self.where} did not answer: {exc}") from None
        if response.status_code == 401:
            raise AuthError(server_error_message(response))
        if response.status_code in (400, 422):
            raise PayloadError(server_error_message(response))
        if response.status_code >= 400:
            raise StoreError(f"server answered {response.status_code}: {server_error_message(response)}")
        return [SeriesPoint.model_validate(point) for point in response.json()["points"]]

    def close(self) -> None:
        self._client.close()


class _StoreSeries:
    """The store's series query, in a data directory no server holds."""

    def __init__(self, stores: Stores, project: str) -> None:
        self.where = str(stores.settings.data_dir)
        self._stores = stores
        found = stores.meta.get_project(project)
        if found is None:
            from ..errors import NotFound

            raise NotFound(f"no project {project!r} in {self.where}")
        self._project_id = found.id

    def series(self, query: SeriesQuery) -> list[SeriesPoint]:
        return self._stores.store.series(self._project_id, query)


def _series_source(
    server: str | None, api_key: str | None, data_dir: Path | None, project: str
) -> AbstractContextManager[_Series]:
    from ._shared import server_or_store
    from .locate import command_settings

    if server is not None:
        assert api_key is not None
        return closing(_HttpSeries(server.rstrip("/"), api_key))
    settings = command_settings(data_dir, reads_only=True)

    def remote(url: str, key: str) -> AbstractContextManager[_Series]:
        return closing(_HttpSeries(url, key))

    return server_or_store(settings, project, remote=remote, local=_StoreSeries)


def _parse_thresholds(texts: Sequence[str]) -> list[Threshold]:
    from ..simulate.gate import Threshold

    if not texts:
        raise _Setup("--since checks thresholds: give at least one --metric NAME>=VALUE")
    return [Threshold.parse(text) for text in texts]


def _thresholds(
    since_text: str | None,
    until_text: str | None,
    texts: Sequence[str],
    agent: str | None,
    source_text: str | None,
    server: str | None,
    api_key: str | None,
    data_dir: Path | None,
    project: str,
) -> GateReport:
    from ..model.enums import CallSource
    from ..simulate.gate import GateReport, evaluate_threshold
    from ._shared import parse_since

    if since_text is None:
        raise _Setup("--metric checks stored calls: give --since DATE (the window's start)")
    thresholds = _parse_thresholds(texts)
    since = parse_since(since_text)
    until = parse_since(until_text) or datetime.now(UTC)
    assert since is not None
    if until <= since:
        raise _Setup(f"--until ({until.isoformat()}) must be after --since ({since.isoformat()})")
    try:
        source = CallSource(source_text) if source_text is not None else None
    except ValueError:
        raise _Setup(f"--source must be one of {', '.join(s.value for s in CallSource)}") from None
    report = GateReport(window=(since, until), agent=agent)
    with _series_source(server, api_key, data_dir, project) as series:
        if isinstance(series, _HttpSeries):
            report.server_url = series.where
        for threshold in thresholds:
            points = series.series(threshold.query(since=since, until=until, agent=agent, source=source))
            outcome = evaluate_threshold(threshold, points)
            report.thresholds.append(outcome)
            seen = "no values" if outcome.observed is None else f"{outcome.observed:.4g}"
            verdict = "[green]met[/green]" if outcome.passed else "[red]missed[/red]"
            console.print(
                f"  {threshold.text}: {threshold.describes} {seen} over {outcome.count} values: {verdict}",
                highlight=False,
            )
    missed = len(report.failed_thresholds)
    console.print(
        f"gate {report.status}: {missed} of {len(report.thresholds)} threshold(s) missed", highlight=False
    )
    return report
