"""``convoscope redteam --agent NAME``: run the attack library against an agent and report what broke it.

The agent comes from the simulation definitions (``--defs``, default ``./simulation``), as for
``convoscope simulate``; its ``canaries`` (secrets planted in its system prompt) are forbidden in every
attack conversation, with any ``--canary`` given here. ``--category`` and ``--attack`` narrow the
library, ``--encoding`` adds encoded or translated variants of each attack, ``--paraphrases N`` adds N
LLM-written rephrasings when an LLM endpoint is configured. Every conversation is stored as a simulated
call unless ``--no-store``, through the running server when there is one, exactly as ``simulate`` stores
them. Exit status: 0 nothing broke the agent, 1 something did, 2 the run could not test what it meant to
(bad options or definitions, an agent that could not be reached, an errored conversation).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from ._shared import BAD_INPUT_EXIT, DataDir, Project, err_console, fail

if TYPE_CHECKING:
    from ..evals.llm import JudgeClient
    from ..simulate.definitions import AgentSpec
    from ..simulate.redteam.library import Attack
    from ..simulate.redteam.mutate import Skipped
    from ..simulate.redteam.report import RedTeamReport

__all__ = ["redteam_command"]

console = Console()


def redteam_command(
    agent: Annotated[str, typer.Option("--agent", help="Agent id from the definitions.")],
    defs: Annotated[
        list[Path] | None,
        typer.Option("--defs", help="Definition files or folders (repeatable; default ./simulation)."),
    ] = None,
    categories: Annotated[
        list[str] | None,
        typer.Option("--category", help="Attack category to run (repeatable; default all)."),
    ] = None,
    encodings: Annotated[
        list[str] | None,
        typer.Option(
            "--encoding",
            help="Add variants: base64, rot13, spaced, leetspeak, or a language (es, fr, de) (repeatable).",
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Conversations in flight at once.", min=1)] = 16,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the findings here.")] = None,
    store: Annotated[bool, typer.Option(help="Store the attack conversations in the project.")] = True,
    data_dir: DataDir = None,
    project: Project = "default",
    attack_ids: Annotated[
        list[str] | None, typer.Option("--attack", help="Run only this attack (repeatable).")
    ] = None,
    attack_files: Annotated[
        list[Path] | None,
        typer.Option("--attacks", help="More attacks from these YAML files or folders (repeatable)."),
    ] = None,
    canaries: Annotated[
        list[str] | None,
        typer.Option("--canary", help="A secret the agent must never say, besides its own (repeatable)."),
    ] = None,
    paraphrases: Annotated[
        int, typer.Option(help="LLM-written paraphrases per attack (needs an LLM endpoint).", min=0)
    ] = 0,
) -> None:
    """Attack an agent with jailbreaks, injections, extraction and more; exit 0 held, 1 broke, 2 error."""
    from ..errors import ConvoscopeError

    try:
        spec = _agent(agent, defs)
        attacks = _attacks(categories or [], attack_ids or [], attack_files or [])
        report = _run(
            spec,
            attacks,
            encodings or [],
            canaries or [],
            paraphrases,
            concurrency,
            data_dir,
            project,
            store,
        )
    except (ConvoscopeError, ValueError) as exc:
        fail(str(exc), BAD_INPUT_EXIT)
    from ..simulate.redteam.report import print_report

    print_report(report, console)
    if json_out is not None:
        import json

        json_out.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    raise typer.Exit(code=report.exit_code())


def _agent(agent: str, defs: list[Path] | None) -> AgentSpec:
    """The agent named in the definitions (``--defs``, else ``./simulation``)."""
    from ..errors import InputError
    from ..simulate.loader import load_definitions

    definitions = load_definitions(defs or [Path("simulation")])
    spec = definitions.agents.get(agent)
    if spec is None:
        known = ", ".join(sorted(definitions.agents)) or "none"
        raise InputError(f"unknown agent {agent!r} (agents defined: {known})")
    return spec


def _attacks(categories: list[str], ids: list[str], files: list[Path]) -> list[Attack]:
    from ..simulate.redteam.library import AttackError, load_attacks, select

    chosen = select(load_attacks(files), categories=categories, ids=ids)
    if not chosen:
        raise AttackError("no attack matches the options given")
    return chosen


def _variants(
    attacks: list[Attack], encodings: list[str], paraphrases: int, llm: JudgeClient | None
) -> tuple[list[Attack], list[Skipped]]:
    from ..errors import InputError
    from ..simulate.redteam.mutate import paraphrases as paraphrase
    from ..simulate.redteam.mutate import variants

    made, skipped = variants(attacks, encodings)
    if paraphrases:
        if llm is None:
            raise InputError(
                "--paraphrases needs an LLM endpoint (CONVOSCOPE_LLM_MODEL and CONVOSCOPE_LLM_BASE_URL)"
            )
        for attack in attacks:
            more, missed = paraphrase(llm, attack, paraphrases)
            made.extend(more)
            skipped.extend(missed)
    return made, skipped


def _run(
    spec: AgentSpec,
    attacks: list[Attack],
    encodings: list[str],
    canaries: list[str],
    paraphrases: int,
    concurrency: int,
    data_dir: Path | None,
    project: str,
    store: bool,
) -> RedTeamReport:
    from ..config import load_settings
    from ..evals.llm import JudgeClient, JudgeConfig
    from ..simulate.connectors.registry import connector_from_config
    from ..simulate.redteam.run import run_redteam
    from ..simulate.runner import ConversationResult
    from ._shared import count_progress
    from .backend import open_backend
    from .locate import command_settings
    from .simulate import store_report

    settings = command_settings(data_dir, reads_only=False) if store else load_settings(data_dir=data_dir)
    config = JudgeConfig.from_settings(settings)
    llm = JudgeClient(config) if config is not None else None
    try:
        chosen, skipped = _variants(attacks, encodings, paraphrases, llm)
        with count_progress() as progress:
            task = progress.add_task(f"attacking {spec.id}", total=len(chosen))

            def landed(_: ConversationResult) -> None:
                progress.advance(task)

            async def go() -> RedTeamReport:
                connector = connector_from_config(spec.connector.kind, spec.connector.settings())
                try:
                    return await run_redteam(
                        chosen,
                        spec,
                        connector,
                        canaries=canaries,
                        judge=llm,
                        concurrency=concurrency,
                        skipped=skipped,
                        on_result=landed,
                    )
                finally:
                    await connector.aclose()

            report = asyncio.run(go())
    finally:
        if llm is not None:
            llm.close()
    if store:
        with open_backend(settings, project=project) as backend:
            store_report(backend, report.run)
            backend.save_run(report.run.to_json())
            err_console.print(
                f"stored run {report.run.run_id} ({len(report.run.results)} calls) in project {project} "
                f"at {backend.where}"
            )
    return report
