"""``convoscope simulate SUITE --agent NAME``: run a suite against an agent, store and score every call.

Definitions are YAML files (``--defs``, default: the suite file's folder, else ``./simulation``). Every
simulated conversation is stored as a call (``source=simulation``) in the project, through the running
server when there is one (which then evaluates it as any other call) or in the data directory itself
(where this command stores the scores it computed). The summary prints the pass rate per scenario and
persona and each failure with its reasons. Exit status: 0 every conversation passed, 1 some failed,
2 some errored (the agent could not be reached, stayed silent, answered garbage; or the definitions are
wrong), so CI can tell a regression from a broken test.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from ._shared import BAD_INPUT_EXIT, DataDir, Project, err_console, fail

if TYPE_CHECKING:
    from ..simulate.definitions import AgentSpec, Definitions, Suite
    from ..simulate.runner import ConversationResult, RunReport
    from .backend import Backend

__all__ = ["print_summary", "simulate_command", "store_report"]

console = Console()

STORE_BATCH = 500
"""Calls stored per request (well under the server's batch bound)."""
SHOWN_FAILURES = 20
"""Failed or errored conversations listed under the table (all are in ``--json``)."""


def _definitions(suite: str, defs: list[Path] | None) -> tuple[Definitions, Suite]:
    from ..simulate.loader import load_definitions

    suite_path = Path(suite)
    if defs:
        folders = defs
    elif suite_path.suffix in (".yaml", ".yml") and suite_path.is_file():
        folders = [suite_path.parent]
    else:
        folders = [Path("simulation")]
    definitions = load_definitions(folders)
    if suite_path.is_file():
        from ..simulate.loader import parse_documents

        named = [
            d.data.get("id")
            for d in parse_documents(suite_path.read_text(encoding="utf-8"), str(suite_path))
            if isinstance(d.data, dict) and d.data.get("kind") == "suite"
        ]
        if len(named) != 1:
            fail(f"{suite}: expected exactly one suite in the file, found {len(named)}")
        suite = str(named[0])
    found = definitions.suites.get(suite)
    if found is None:
        known = ", ".join(sorted(definitions.suites)) or "none"
        fail(f"unknown suite {suite!r} (suites in {', '.join(map(str, folders))}: {known})")
    return definitions, found


def print_summary(report: RunReport) -> None:
    """The pass rate per scenario and persona, the totals, and the first failures with their reasons."""
    from rich.table import Table

    table = Table(title=f"{report.suite_id} against {report.agent_id} {report.agent_version}".strip())
    for column in ("scenario", "persona", "passed", "failed", "errored", "pass rate"):
        table.add_column(column, justify="right" if column not in ("scenario", "persona") else "left")
    for cell in report.cells():
        rate = f"{cell.pass_rate:.0%}" if cell.pass_rate is not None else "n/a"
        counts = [str(cell.counts[v]) for v in ("passed", "failed", "errored")]
        table.add_row(cell.scenario, cell.persona, *counts, rate)
    console.print(table)
    totals = report.totals()
    console.print(
        f"run {report.run_id}: {totals['passed']} passed, {totals['failed']} failed, "
        f"{totals['errored']} errored of {len(report.results)}",
        highlight=False,
    )
    bad = [r for r in report.results if r.verdict != "passed"]
    for result in bad[:SHOWN_FAILURES]:
        call = result.outcome.call
        console.print(
            f"  {result.verdict} {call.id or call.external_id} ({result.item.scenario.id} × "
            f"{result.item.persona.id} #{result.item.iteration}): {'; '.join(result.reasons)}",
            highlight=False,
            soft_wrap=True,
        )
    if len(bad) > SHOWN_FAILURES:
        console.print(f"  ... and {len(bad) - SHOWN_FAILURES} more (see --json)", highlight=False)


def simulate_command(
    suite: Annotated[str, typer.Argument(help="Suite id, or a YAML file holding one suite.")],
    agent: Annotated[str, typer.Option("--agent", help="Agent id from the definitions.")],
    defs: Annotated[
        list[Path] | None, typer.Option("--defs", help="Definition files or folders (repeatable).")
    ] = None,
    iterations: Annotated[int | None, typer.Option(help="Override the suite's iterations.", min=1)] = None,
    concurrency: Annotated[int, typer.Option(help="Conversations in flight at once.", min=1)] = 32,
    agent_version: Annotated[str | None, typer.Option(help="Override the agent's version label.")] = None,
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="A kept run id to compare this run with (A/B).")
    ] = None,
    baseline_agent: Annotated[
        str | None,
        typer.Option("--baseline-agent", help="Run the suite against this agent first and compare."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the run's result here.")] = None,
    store: Annotated[bool, typer.Option(help="Store the simulated calls and the run in the project.")] = True,
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """Run a suite of simulated conversations against an agent; exit 0 pass, 1 fail, 2 error.

    With --baseline or --baseline-agent the run is compared with another run of the suite, metric by
    metric; a metric that is detectably worse counts as a failure (exit 1).
    """
    from ..errors import ConvoscopeError, InputError

    try:
        definitions, chosen = _definitions(suite, defs)

        def spec_of(name: str) -> AgentSpec:
            spec = definitions.agents.get(name)
            if spec is None:
                known = ", ".join(sorted(definitions.agents)) or "none"
                raise InputError(f"unknown agent {name!r} (agents defined: {known})")
            return spec

        candidate = spec_of(agent)
        if agent_version is not None:
            candidate = candidate.model_copy(update={"version": agent_version})
        if baseline is not None and baseline_agent is not None:
            raise InputError("give --baseline (a kept run) or --baseline-agent (run it now), not both")
        runner = _Runner(definitions, chosen, iterations, concurrency, data_dir, project, store)
        reference = runner.kept(baseline) if baseline is not None else None
        if baseline_agent is not None:
            reference = runner.run(spec_of(baseline_agent)).to_json()
        report = runner.run(candidate)
    except ConvoscopeError as exc:
        fail(str(exc), BAD_INPUT_EXIT)
    except ValueError as exc:
        fail(str(exc), BAD_INPUT_EXIT)
    print_summary(report)
    code = report.exit_code()
    if reference is not None:
        regressions = _comparison(reference, report.to_json())
        if regressions and code == 0:
            code = 1
    if json_out is not None:
        import json

        json_out.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    raise typer.Exit(code=code)


def _comparison(baseline: dict[str, Any], candidate: dict[str, Any]) -> list[str]:
    """Print the A/B table; returns the metrics that are detectably worse."""
    from ..simulate.compare import compare_runs
    from .runs import print_comparison

    comparison = compare_runs(baseline, candidate)
    print_comparison(console, comparison)
    return [m.metric for m in comparison.regressions]


class _Runner:
    """Runs the suite against an agent and keeps what it produced (calls, scores, the run's result)."""

    def __init__(
        self,
        definitions: Definitions,
        suite: Suite,
        iterations: int | None,
        concurrency: int,
        data_dir: Path | None,
        project: str,
        store: bool,
    ) -> None:
        from ..config import load_settings
        from .locate import command_settings

        self.definitions = definitions
        self.suite = suite
        self.iterations = iterations
        self.concurrency = concurrency
        self.project = project
        self.store = store
        # Without storing, no data directory is needed: only the settings (the LLM endpoint for LLM callers).
        self.settings = (
            command_settings(data_dir, reads_only=False) if store else load_settings(data_dir=data_dir)
        )

    def kept(self, run_id: str) -> dict[str, Any]:
        """A kept run of the same suite."""
        from .backend import open_backend

        with open_backend(self.settings, project=self.project) as backend:
            found = backend.get_run(run_id)
        if found.get("suite") != self.suite.id:
            raise ValueError(f"run {run_id} is a run of suite {found.get('suite')!r}, not {self.suite.id!r}")
        return found

    def run(self, spec: AgentSpec) -> RunReport:
        from ..evals.llm import JudgeClient, JudgeConfig
        from ..simulate.connectors.registry import connector_from_config
        from ..simulate.runner import default_scorer, plan, run_suite
        from ..simulate.voice.io import voice_io
        from ._shared import count_progress
        from .backend import open_backend

        config = JudgeConfig.from_settings(self.settings)
        llm = JudgeClient(config) if config is not None else None
        work = plan(self.definitions, self.suite, iterations=self.iterations)
        try:
            with count_progress() as progress:
                task = progress.add_task(f"simulating {self.suite.id} against {spec.id}", total=len(work))

                def landed(_: ConversationResult) -> None:
                    progress.advance(task)

                async def go() -> RunReport:
                    connector = connector_from_config(spec.connector.kind, spec.connector.settings())
                    try:
                        return await run_suite(
                            self.definitions,
                            self.suite,
                            spec,
                            connector,
                            scorer=default_scorer(self.suite, judge=llm),
                            llm=llm,
                            concurrency=self.concurrency,
                            on_result=landed,
                            items=work,
                            **voice_io(self.settings),
                        )
                    finally:
                        await connector.aclose()

                report = asyncio.run(go())
        finally:
            if llm is not None:
                llm.close()
        if self.store:
            with open_backend(self.settings, project=self.project) as backend:
                store_report(backend, report)
                backend.save_run(report.to_json())
                err_console.print(
                    f"stored run {report.run_id} ({len(report.results)} calls) in project {self.project} "
                    f"at {backend.where}"
                )
        return report


def store_report(backend: Backend, report: RunReport) -> None:
    """Store every call; where this process keeps the scores (no server), keep them under the stored ids."""
    results = report.results
    for start in range(0, len(results), STORE_BATCH):
        batch = results[start : start + STORE_BATCH]
        ids = backend.ingest_calls([r.outcome.call for r in batch])
        scores = []
        for result, call_id in zip(batch, ids, strict=True):
            result.outcome.call = result.outcome.call.model_copy(update={"id": call_id})
            result.scores = [score.model_copy(update={"call_id": call_id}) for score in result.scores]
            scores.extend(result.scores)
        backend.store_scores(scores)
