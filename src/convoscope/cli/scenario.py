"""``convoscope scenario from-call CALL_ID``: a stored call as a scenario that reproduces it.

A failed production call becomes a regression test in one command: the scenario replays the caller's
lines, answers the agent's tools with what they answered then, and expects what the failed metrics
demanded (see :mod:`convoscope.simulate.from_call` for the rules). The YAML it writes is read by
``convoscope simulate`` unchanged. The call is read through the running server when there is one,
else from the data directory itself. Exit status: 0 written, 2 for a call that does not exist or has
nothing to replay, 1 when the store cannot be read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._shared import BAD_INPUT_EXIT, DataDir, Project, command_group, err_console, fail, run_reporting_errors

__all__ = ["app", "from_call_command"]

app = command_group("Make simulation scenarios (from stored calls).")


@app.command("from-call")
def from_call_command(
    call_id: Annotated[str, typer.Argument(help="The stored call's id.")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write the YAML here (a folder: <scenario id>.yaml in it); default: stdout."
        ),
    ] = None,
    llm: Annotated[
        bool,
        typer.Option(
            "--llm/--no-llm",
            help="Infer the caller's goal, facts and the expected outcome with the configured LLM.",
        ),
    ] = True,
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """Turn a stored call into a scenario and suite that replay it (a failed call becomes a test)."""
    from ..errors import InputError, NotFound
    from ..evals.llm import JudgeClient, JudgeConfig
    from ..simulate.from_call import definitions_yaml, derive_from_call
    from .backend import open_backend
    from .locate import command_settings

    settings = command_settings(data_dir, reads_only=True)

    def work() -> None:
        with open_backend(settings, project=project) as backend:
            try:
                stored = backend.get_call(call_id)
            except (NotFound, InputError) as exc:
                fail(f"unknown call {call_id!r} in project {project!r} ({exc})", BAD_INPUT_EXIT)
        config = JudgeConfig.from_settings(settings) if llm else None
        client = JudgeClient(config) if config is not None else None
        try:
            made = derive_from_call(stored, llm=client)
        except InputError as exc:
            fail(str(exc), BAD_INPUT_EXIT)
        finally:
            if client is not None:
                client.close()
        text = definitions_yaml(made.scenario, made.suite, call_id=made.call_id)
        for note in made.notes:
            err_console.print(f"note: {note}", highlight=False, soft_wrap=True)
        if out is None:
            print(text, end="")
            return
        target = out / f"{made.scenario.id}.yaml" if out.is_dir() else out
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        caller = "scripted replay" + (" + LLM-inferred caller" if made.inferred else "")
        err_console.print(
            f"wrote scenario and suite {made.scenario.id} ({caller}) to {target}; run it with an agent "
            f"defined beside it:\n  convoscope simulate {target} --agent AGENT",
            highlight=False,
            soft_wrap=True,
        )

    run_reporting_errors(work)
